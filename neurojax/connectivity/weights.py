r"""Weight containers and synaptic propagation.

A projection's synapses live in one of two containers (a third, regenerated from a
seed, is in `procedural.py`):

- `DenseWeights`: a `(post, pre)` matrix; propagation is a matrix–vector product. Best
  for dense or all-to-all connectivity and for graded (rate) signals.
- `SparseWeights`: rows of presynaptic neurons padded to a common out-degree (ELL
  layout). Propagation is **event-driven**: only the rows of neurons whose output is
  non-zero in this step are added, so work scales with (events × out-degree), not with
  the number of synapses, and no event is ever dropped. The kernel is chosen per
  backend (see `Sparse`): a compiled row loop on CPU (`neurojax/_native`), a
  fixed-size event buffer on GPU/TPU (with further passes for a step that overflows
  it), a chunked scatter loop in pure JAX everywhere.
  One custom VJP, shared by all kernels, gives the exact dense-equivalent gradient
  w.r.t. weights *and* presynaptic activity, including the surrogate gradient into
  neurons that did not spike. Given the presynaptic gradient support (a
  compact-support surrogate, see `SparseWeights.deliver`), it visits only the rows of
  neurons near threshold or active, with the same gradients w.r.t. parameters.

Both write into a post-side ring buffer of shape `(slots, n_post)` so homogeneous
delays, per-synapse heterogeneous delays and the one-step minimum delay share one
mechanism: an event emitted in step $k$ with delay $d$ steps is read in step $k + d$.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, Bool, Float, Int, Integer

from .. import _native

# Active rows per iteration of the "loop" kernel of stored synapses when `Sparse` gives
# none (`Procedural` has its own default, `procedural._default_chunk`).
DEFAULT_CHUNK = 16


class DenseWeights(eqx.Module):
    """Synaptic weights as a dense matrix.

    **Fields:**

    - `weights`: Shape `(n_post, n_pre)` (one weight per synapse), or a scalar: one
      weight for every synapse in `counts`, kept a single leaf so that fitting or
      sweeping "the weight" is one parameter. Units of the projection's receptor ([nS]
      for conductance, [pA] for current, [pA·ms] or [nS·ms] for delta kinetics).
    - `counts`: With a scalar weight, the number of synapses from each presynaptic onto
      each postsynaptic neuron (0 where none), an integer `(n_post, n_pre)` array, so
      gradients and optimisers never see (or change) the structure; `None` with a
      weight matrix.
    """

    weights: Float[Array, "post pre"] | Float[Array, ""]
    counts: Integer[Array, "post pre"] | None = None
    # Dense propagation touches every synapse; it needs no compacted events.
    event_driven: ClassVar[bool] = False

    def __check_init__(self):
        if self.counts is None and jnp.ndim(self.weights) < 2:
            raise ValueError(
                "DenseWeights needs a (n_post, n_pre) weight matrix, or a scalar weight "
                f"with the synapse counts; got weights of shape {jnp.shape(self.weights)} "
                "and no counts."
            )

    @property
    def _shape(self) -> tuple[int, int]:
        return (self.weights if self.counts is None else self.counts).shape

    @property
    def n_post(self) -> int:
        return self._shape[0]

    @property
    def n_pre(self) -> int:
        return self._shape[1]

    def matrix(self) -> Float[Array, "post pre"]:
        if self.counts is None:
            return self.weights
        return self.weights * self.counts.astype(jnp.result_type(self.weights, float))

    def deliver(
        self,
        buffer: Float[Array, "slots post"],
        act: Float[Array, " pre"],
        step: Int[Array, ""],
        delay_steps: int,
        dt: float,
        events: Events | None = None,
        weights: Float[Array, "post pre"] | None = None,
        support: Bool[Array, " pre"] | None = None,
    ) -> Float[Array, "slots post"]:
        """Add `weights @ act` into the slot read `delay_steps` steps from now
        (`events` and `support` are unused: dense propagation and its matrix-product
        VJP touch every synapse). `weights`, if given, is a `(n_post, n_pre)` matrix
        used instead of the stored weights (a plastic projection's current weights,
        from `NetworkState.plastic`)."""
        if weights is not None:
            psp = weights @ act
        elif self.counts is None:
            psp = self.weights @ act
        else:
            # XLA hoists the (loop-invariant) conversion of the counts out of the scan.
            psp = self.weights * (self.counts.astype(act.dtype) @ act)
        if buffer.shape[0] == 1:
            # One slot (no delay beyond the step): the slot is known statically, so the
            # sum is a plain addition, without the scatter's slot index, which every
            # step computed, bounds-checked and stored for the backward pass (the Dale
            # rate RNN of benchmarks/fit_overhead.py: forward step 15 -> 8 thunks,
            # backward 13 -> 11; a dense COBA-1000 step 48 -> 45 thunks, same CPU time).
            return buffer + psp.astype(buffer.dtype)[None]
        # A scatter at the traced slot: it updates the carried buffer in place, where
        # rebuilding it (a broadcast of read + psp) made XLA copy it every step (a
        # dense COBA-1000 step 1.2x slower).
        return buffer.at[(step + delay_steps) % buffer.shape[0]].add(psp.astype(buffer.dtype))


def read_slot(buffer: Float[Array, "slots post"], slot: Int[Array, ""]) -> Float[Array, " post"]:
    """Row `slot` of a ring buffer (`slot` in range: a step count modulo the slots).
    With one slot (a projection without delay beyond the step) the row is read
    statically, so no slot index is computed, stored for the backward pass or
    bounds-checked in every step."""
    if buffer.shape[0] == 1:
        return buffer[0]
    return jax.lax.dynamic_index_in_dim(buffer, slot, keepdims=False)


def take_slot(buffer: Float[Array, "slots post"], step: Int[Array, ""], *, native: bool
              ) -> tuple[Float[Array, "slots post"], Float[Array, " post"]]:
    """`(buffer with slot step % slots zeroed, that slot's row)`: the arrivals due now
    taken out of a ring buffer of more than one slot.

    With `native` (a projection whose compiled kernel adds to the buffer), on CPU and
    where the build has it, one call of the compiled `neurojax_take_slot` does both:
    then it is the carried buffer's only reader and XLA updates the buffer in place,
    where the synapse's fusions reading the slot unordered with the delivery kernel
    made XLA copy the whole buffer up to three times per step (Brunel's 15-slot
    buffers; benchmarks/README.md, issue 15). Elsewhere, and on other platforms, a
    dynamic slice and update. Same values bit for bit; linear in `buffer`, with the
    tangent of the pure-JAX form."""
    slot = step % buffer.shape[0]
    if not (native and _native.has(_native.TAKE_SLOT)):
        return _take_slot_xla(buffer, slot)
    return jax.lax.platform_dependent(buffer, slot, cpu=_take_slot_native, default=_take_slot_xla)


def _take_slot_xla(buffer, slot):
    buffer = jnp.asarray(buffer)  # also a tangent given as a numpy array
    return set_slot(buffer, slot, jnp.zeros(buffer.shape[1:], buffer.dtype)), read_slot(buffer, slot)


@jax.custom_jvp
def _take_slot_native(buffer, slot):
    return _take_slot_call(buffer, jnp.reshape(slot, (1,)).astype(jnp.int32))


@_take_slot_native.defjvp
def _take_slot_native_jvp(primals, tangents):
    buffer, slot = primals
    return _take_slot_native(buffer, slot), _take_slot_xla(tangents[0], slot)


@jax.custom_batching.custom_vmap
def _take_slot_call(buffer, step):
    """The compiled kernel on a buffer `(slots, n)`, or `(B, slots, n)` with `step` of
    size 1 or B; the buffer is passed at its own rank, as to `native_call`."""
    return jax.ffi.ffi_call(
        _native.TAKE_SLOT,
        (jax.ShapeDtypeStruct(buffer.shape, buffer.dtype),
         jax.ShapeDtypeStruct(buffer.shape[:-2] + buffer.shape[-1:], buffer.dtype)),
        input_output_aliases={0: 0},
    )(buffer, step)


@_take_slot_call.def_vmap
def _take_slot_call_vmap(axis_size, in_batched, buffer, step):
    (buffer, step), member = _batch_ring((buffer, step), in_batched, 0)
    (buffer, step), old = _fold_batch(axis_size, in_batched, (buffer, step), (True, False))
    lead = (axis_size,) + ((old,) if not member else ())
    out, row = _take_slot_call(buffer, step)
    return (out.reshape(lead + out.shape[1:]), row.reshape(lead + row.shape[1:])), (True, True)


def set_slot(buffer: Float[Array, "slots post"], slot: Int[Array, ""],
             row: Float[Array, " post"]) -> Float[Array, "slots post"]:
    """`buffer` with row `slot` replaced by `row` (`buffer.at[slot].set(row)`, as a
    dynamic update slice rather than a bounds-checked scatter; static for one slot)."""
    if buffer.shape[0] == 1:
        return jnp.broadcast_to(row.astype(buffer.dtype), buffer.shape)
    return jax.lax.dynamic_update_index_in_dim(buffer, row.astype(buffer.dtype), slot, 0)


def _padded_take(x, idx, fill):
    return jnp.take(x, idx, axis=0, mode="fill", fill_value=fill)


def _slots(step, delay_steps, delays_ms, rows, n_slots, dt):
    """Ring-buffer slot of each synapse in `rows` for events emitted at `step`."""
    if delays_ms is None:
        return (step + delay_steps) % n_slots
    d = jnp.maximum(1, jnp.round(_padded_take(delays_ms, rows, 0.0) / dt)).astype(jnp.int32)
    return (step + d) % n_slots


_BLOCK = 32
_BIT = np.arange(_BLOCK, dtype=np.uint32)  # bit j of a block's mask is neuron j's activity
_BELOW = np.array([(1 << j) - 1 for j in range(_BLOCK)], np.uint32)  # the bits below j


class Events(eqx.Module):
    """The active (non-zero) entries of a population's output in one step, compacted.

    **Fields:**

    - `rows`: Indices of active neurons in increasing order, then padding `n`; shape `(n,)`.
    - `count`: Number of active neurons.
    """

    rows: Int[Array, " n"]
    count: Int[Array, ""]


def compact_events(act: Float[Array, " n"]) -> Events:
    """Compact the active entries of `act`.

    `jnp.nonzero` lowers to a cumulative sum that XLA:CPU evaluates slowly; here each
    block of 32 neurons becomes a 32-bit activity mask, a neuron's rank within its block
    is the population count of the mask's bits below it, and a short cumulative sum
    over blocks adds the ranks of the blocks before; one scatter then places the
    indices. O(n) integer work, vectorised; measured on this project's 2-core CPU:
    3 us for 4000 neurons (50 us for `jnp.nonzero`), 0.34 ms for a million.
    """
    n = act.shape[0]
    n_blocks = -(-n // _BLOCK)
    active = jnp.pad(act != 0, (0, n_blocks * _BLOCK - n)).reshape(n_blocks, _BLOCK)
    mask = jnp.sum(active.astype(jnp.uint32) << jnp.asarray(_BIT)[None, :], axis=1, dtype=jnp.uint32)
    within = jax.lax.population_count(mask[:, None] & jnp.asarray(_BELOW)[None, :])
    per_block = jax.lax.population_count(mask).astype(jnp.int32)
    before = jnp.cumsum(per_block) - per_block
    position = (within.astype(jnp.int32) + before[:, None]).reshape(-1)[:n]
    dest = jnp.where(active.reshape(-1)[:n], position, n)
    rows = jnp.full((n,), n, jnp.int32).at[dest].set(jnp.arange(n, dtype=jnp.int32), mode="drop")
    return Events(rows=rows, count=jnp.sum(per_block))


def _row_synapses(rows, act, targets, slot_info, n_slots, n_post, delay_steps, dt):
    """For presynaptic `rows` (padding `n_pre`): each row's activity and each synapse's
    index in the flattened `(n_slots, n_post)` ring buffer (past its end for padding)."""
    step, delays_ms, _, _ = slot_info
    a = _padded_take(act, rows, 0.0)
    tgt = _padded_take(targets, rows, n_post)
    if n_slots == 1:
        return a, tgt  # padding targets (== n_post == flat size) are dropped
    slots = _slots(step, delay_steps, delays_ms, rows, n_slots, dt)
    # Padding targets (== n_post) map past the end of the buffer and are dropped.
    return a, jnp.where(tgt < n_post, slots * n_post + tgt, n_slots * n_post)


def _scatter_rows(rows, flat, weights, act, targets, slot_info, n_slots, delay_steps, dt):
    """Scatter-add the synapses of presynaptic `rows` (padding `n_pre`) into `flat`."""
    a, idx = _row_synapses(rows, act, targets, slot_info, n_slots, flat.shape[0] // n_slots,
                           delay_steps, dt)
    w = weights if weights.ndim == 0 else _padded_take(weights, rows, 0.0)
    vals = jnp.broadcast_to(w * a[:, None], idx.shape)
    return flat.at[idx.ravel()].add(vals.ravel(), mode="drop")


def _loop_deliver(weights, act, buffer, targets, slot_info, chunk, n_slots, delay_steps, dt):
    # Scatter the compacted active rows `chunk` at a time: the loop runs
    # ceil(count / chunk) times, so work follows the number of events.
    _, _, rows_all, count = slot_info
    rows_all = jnp.concatenate([rows_all, jnp.full((chunk,), act.shape[0], rows_all.dtype)])

    def body(i, flat):
        rows = jax.lax.dynamic_slice_in_dim(rows_all, i * chunk, chunk)
        return _scatter_rows(rows, flat, weights, act, targets, slot_info, n_slots, delay_steps, dt)

    flat = jax.lax.fori_loop(0, (count + chunk - 1) // chunk, body, buffer.reshape(-1))
    return flat.reshape(buffer.shape)


def _buffer_deliver(weights, act, buffer, targets, slot_info, capacity, strict, n_slots,
                    delay_steps, dt):
    # One batched gather/scatter of a fixed number (`capacity`) of event rows: no
    # data-dependent loop in the common case, which suits accelerators.
    _, _, rows_all, count = slot_info
    n_pre = act.shape[0]
    capacity = min(capacity, n_pre)
    flat = _scatter_rows(
        rows_all[:capacity], buffer.reshape(-1), weights, act, targets, slot_info, n_slots,
        delay_steps, dt,
    )
    if strict:
        # An explicit `Sparse(capacity=...)`: more events is an error, never a drop.
        flat = eqx.error_if(
            flat,
            count > capacity,
            f"event buffer overflow: more than capacity = {capacity} presynaptic neurons "
            "were active in one step, and their spikes would be lost. Build the projection "
            "with layout=nj.connectivity.Sparse(capacity=...) large enough for the largest "
            "burst (up to the presynaptic population size), or with Sparse(capacity=None) "
            "(the default), whose buffer kernel delivers any overflow in further passes.",
        )
        return flat.reshape(buffer.shape)

    # Adaptive (capacity=None, what "auto" runs on GPU/TPU): the events beyond the
    # buffer are delivered in further passes of `capacity` rows each, in a loop of
    # ceil(count / capacity) - 1 iterations, which is none in the common case.
    # Why further passes rather than `lax.cond` into the loop kernel:
    # - an overflowing step (a synchronous burst) takes a few large batched scatters
    #   (ceil(n_pre / capacity) at most, 10 with the default capacity) instead of
    #   ceil(count / chunk) small ones;
    # - under `vmap` a `cond` with a batched predicate becomes a `select` that runs
    #   both branches, i.e. the whole loop kernel in every step of every batch member,
    #   whereas a loop with a batched trip count runs as many passes as the batch
    #   member with the most events needs (none when no member overflows). Each pass
    #   is computed for every member and discarded (masked) for those already done,
    #   so a step of a batch costs (passes of its largest burst) x (batch size)
    #   scatters of `capacity` rows: a batch pays for its most synchronous member.
    # Unbatched, both cost one predicate test per step when nothing overflows (on GPU
    # a small device-to-host read of the loop condition, as a `cond` would need).
    positions = jnp.arange(capacity, dtype=rows_all.dtype)

    def overflow_pass(i, flat):
        # Rows i * capacity ... (i + 1) * capacity - 1 of the compacted events; the
        # slice start is clamped to keep it inside `rows_all`, and rows before the
        # intended start (already delivered) are masked to the padding row n_pre.
        start = i * capacity
        clamped = jnp.minimum(start, n_pre - capacity)
        rows = jax.lax.dynamic_slice_in_dim(rows_all, clamped, capacity)
        rows = jnp.where(clamped + positions >= start, rows, n_pre)
        return _scatter_rows(rows, flat, weights, act, targets, slot_info, n_slots,
                             delay_steps, dt)

    n_passes = (count + capacity - 1) // capacity
    flat = jax.lax.fori_loop(1, n_passes, overflow_pass, flat)
    return flat.reshape(buffer.shape)


def _fold_batch(axis_size: int, in_batched, args, per_batch: tuple[bool, ...]):
    """The vmap rule of the compiled kernels: a new batch axis of `axis_size` is folded
    into the arguments' leading one (size `old`), so the kernel loops over
    `axis_size * old` members in C++. An unbatched argument of leading size 1 that is
    not per-member state (`per_batch[i]` False: connectivity, weights) stays shared
    and is not copied. Returns the folded arguments and `old`."""
    old = max(x.shape[1] if b else x.shape[0] for x, b in zip(args, in_batched))
    total = axis_size * old

    def fold(x, batched, state):
        if not batched:
            if x.shape[0] == 1 and not state:
                return x  # shared by the whole batch
            x = jnp.broadcast_to(x[None], (axis_size,) + x.shape)
        x = jnp.broadcast_to(x, (axis_size, old) + x.shape[2:])
        return x.reshape((total,) + x.shape[2:])

    return [fold(x, b, p) for x, b, p in zip(args, in_batched, per_batch)], old


def _batch_ring(args, in_batched, alias: int):
    """`args` with the ring buffer `args[alias]` given the leading batch axis of the
    other arguments where it is one member's `(slots, n)` (then every other argument
    has a leading size of 1), and whether it was."""
    buffer = args[alias]
    member = buffer.ndim - in_batched[alias] == 2
    if member:
        buffer = buffer[:, None] if in_batched[alias] else buffer[None]
        args = args[:alias] + (buffer,) + args[alias + 1:]
    return args, member


@functools.cache
def native_call(target: str, per_batch: tuple[bool, ...], alias: int, attrs: tuple):
    """A compiled CPU kernel (`neurojax/_native/events.cc`) as a JAX function of arrays
    that all carry a leading batch axis (size 1 when unbatched), except the ring buffer
    (argument `alias`), which an unbatched call passes as it is, `(slots, n)`; it
    returns the buffer, updated in place. (A reshape to `(1, slots, n)` between the
    loop-carried buffer and the call made XLA copy the whole buffer twice per step: it
    does not alias through the bitcast; benchmarks/README.md, issue 15.)
    `per_batch[i]` says whether argument `i` is per batch member (state) rather than
    possibly shared (connectivity, weights); `attrs` are the kernel's `(name, value)`
    attributes.

    The custom vmap rule folds new batch axes into the leading one, so a vmapped sweep
    is one call that loops over the batch in C++, with shared arguments not copied."""

    @jax.custom_batching.custom_vmap
    def call(*args):
        buffer = args[alias]
        return jax.ffi.ffi_call(
            target, jax.ShapeDtypeStruct(buffer.shape, buffer.dtype), input_output_aliases={alias: 0}
        )(*args, **dict(attrs))

    @call.def_vmap
    def rule(axis_size, in_batched, *args):
        args, member = _batch_ring(args, in_batched, alias)
        folded, old = _fold_batch(axis_size, in_batched, args, per_batch)
        out = call(*folded)
        return out.reshape((axis_size,) + ((old,) if not member else ()) + out.shape[1:]), True

    return call


def _require_native() -> None:
    if not _native.available():  # also registers the kernels with XLA on first use
        raise ValueError(
            "kernel='native' needs the compiled CPU kernel, which this install does not have "
            f"({native_kernel_status()})."
        )


def _require_cpu() -> None:
    """An explicit kernel='native' on another platform would only fail when XLA lowers
    it, with an unhelpful message; say so at trace time instead ('auto' lets XLA pick)."""
    backend = jax.default_backend()
    if backend != "cpu":
        raise ValueError(
            f"kernel='native' is a CPU kernel, but JAX runs on {backend!r}: use "
            "kernel='auto' (which picks 'buffer' there), 'buffer' or 'loop'."
        )


def _native_deliver(weights, act, buffer, targets, slot_info, n_slots, delay_steps, dt):
    _require_native()
    step, delays_ms, _, _ = slot_info
    dtype = buffer.dtype
    w = weights.astype(dtype)
    delays = jnp.zeros((1, 0), dtype) if delays_ms is None else delays_ms.astype(dtype)[None]
    call = native_call(
        _native.DELIVER_EVENTS, (True, False, False, False, True, True), 4,
        (("delay_steps", np.int64(delay_steps)), ("dt", np.float64(dt))),
    )
    return call(
        act.astype(dtype)[None],
        w.reshape((1,)) if w.ndim == 0 else w[None],
        targets.astype(jnp.int32)[None],
        delays,
        buffer,
        jnp.reshape(step, (1,)).astype(jnp.int32),
    )


def native_kernel_available() -> bool:
    """Whether the compiled CPU propagation kernel was built by `pip install` (else
    the pure-JAX kernels are used on CPU too)."""
    return _native.available()


def native_kernel_status() -> str:
    """Why the compiled CPU propagation kernel is or is not used, in words: not built
    (no compiler, or `NEUROJAX_NO_NATIVE=1` at install), refused (built against another
    jaxlib major.minor than the one installed), or built against which jaxlib."""
    return _native.status()[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8, 9))
def _sparse_deliver(weights, act, buffer, targets, slot_info, support, spec, n_slots,
                    delay_steps, dt):
    # `support` only shapes the backward pass (a residual): the forward ignores it, so
    # XLA drops its computation from a plain (not differentiated) simulation.
    kernel, chunk, capacity, strict = spec
    args = (weights, act, buffer, targets, slot_info)
    loop = functools.partial(_loop_deliver, *args, chunk, n_slots, delay_steps, dt)
    batched = functools.partial(
        _buffer_deliver, *args, capacity, strict, n_slots, delay_steps, dt
    )
    native = functools.partial(_native_deliver, *args, n_slots, delay_steps, dt)
    if kernel == "loop":
        return loop()
    if kernel == "buffer":
        return batched()
    if kernel == "native":
        _require_cpu()
        return native()
    # "auto": XLA picks the branch of the platform it compiles for.
    return jax.lax.platform_dependent(
        cpu=native if native_kernel_available() else loop, default=batched
    )


def _sparse_deliver_fwd(weights, act, buffer, targets, slot_info, support, spec, n_slots,
                        delay_steps, dt):
    out = _sparse_deliver(weights, act, buffer, targets, slot_info, support, spec, n_slots,
                          delay_steps, dt)
    return out, (weights, act, targets, slot_info, support)


def _sparse_deliver_bwd(spec, n_slots, delay_steps, dt, res, cotangents):
    weights, act, targets, slot_info, support = res
    g_buffer = cotangents
    # Per-synapse weights take their gradient event by event in `_event_weight_gradient`
    # (their primal here is stop_gradient'ed): only a scalar weight's cotangent is wanted.
    weight_grad = weights.ndim == 0
    if support is not None:
        g_w, g_act = _support_vjp(weights, act, targets, slot_info, support, g_buffer, spec,
                                  n_slots, delay_steps, dt, weight_grad)
        return (g_w if weight_grad else None), g_act, g_buffer, None, None, None
    step, delays_ms, _, _ = slot_info
    rows = jnp.arange(act.shape[0])
    # Cotangent seen by each synapse; the padding target n_post reads as zero.
    if delays_ms is None:
        # One slot for every synapse: a 1-D gather from that slot's row is much cheaper
        # on XLA:CPU than the 2-D gather with broadcast slot indices (benchmarks/train.py).
        slot = _slots(step, delay_steps, None, rows, n_slots, dt)
        g_syn = _padded_take(g_buffer[slot], targets, 0.0)
    else:
        slots = _slots(step, delay_steps, delays_ms, rows, n_slots, dt)
        g_syn = g_buffer.at[slots, targets].get(mode="fill", fill_value=0.0)
    w = jnp.broadcast_to(weights, targets.shape)
    g_act = jnp.sum(w * g_syn, axis=1)
    if not weight_grad:
        return None, g_act, g_buffer, None, None, None
    return jnp.sum(act[:, None] * g_syn), g_act, g_buffer, None, None, None


def _support_vjp(weights, act, targets, slot_info, support, g_buffer, spec, n_slots,
                 delay_steps, dt, weight_grad=True):
    """The VJP w.r.t. `weights` and `act` over the rows in `support` or active only.

    The weight cotangent `act[i] g_syn[i, k]` is zero on every row with `act[i] == 0`;
    the activity cotangent `sum_k w[i, k] g_syn[i, k]` is needed only where the
    presynaptic spike function's surrogate derivative can be non-zero (`support`, from
    `AbstractNeuron.gradient_support`): elsewhere the surrogate multiplies it by an
    exact 0, so every gradient w.r.t. parameters is unchanged. Only the union of both
    row sets is visited; the other rows get 0. On CPU with `"native"` or `"auto"` one
    call of the compiled kernel does it (`_native_support_vjp`); elsewhere the
    pure-JAX loop (`_support_vjp_loop`), which defines the semantics. Why a kernel:
    the loop's compaction and its gather/compute/scatter per chunk were ~30 % of
    COBA-4k's fwd + bwd on XLA:CPU for ~1 % of the rows (benchmarks/README.md).
    """
    kernel = spec[0]
    args = (weights, act, targets, slot_info, support, g_buffer)
    loop = functools.partial(_support_vjp_loop, *args, spec, n_slots, delay_steps, dt,
                             weight_grad)
    # The compiled kernel is optional within a build (one from before it existed has
    # only the propagation kernels): without it every kernel runs the pure-JAX loop.
    if kernel in ("loop", "buffer") or not _native.has(_native.SUPPORT_VJP):
        return loop()
    native = functools.partial(_native_support_vjp, *args, delay_steps, dt, weight_grad)
    if kernel == "native":
        _require_cpu()
        return native()
    # "auto": XLA picks the branch of the platform it compiles for.
    return jax.lax.platform_dependent(cpu=native, default=loop)


def _support_vjp_loop(weights, act, targets, slot_info, support, g_buffer, spec, n_slots,
                      delay_steps, dt, weight_grad=True):
    """`_support_vjp` in pure JAX, on any platform: the reference the compiled kernel
    is tested against. The union of the supported and active rows is compacted (as the
    forward compacts events) and visited `chunk` rows at a time."""
    kernel, chunk, capacity, _ = spec
    step, delays_ms, _, _ = slot_info
    n_pre, n_post = act.shape[0], g_buffer.shape[1]
    # The buffer kernel's batched width suits accelerators; on CPU small chunks.
    width = min(capacity, n_pre) if kernel == "buffer" else chunk
    events = compact_events(jnp.logical_or(support, act != 0).astype(act.dtype))
    rows_all = jnp.concatenate([events.rows, jnp.full((width,), n_pre, events.rows.dtype)])
    g_row = g_buffer[(step + delay_steps) % n_slots] if delays_ms is None else None

    def body(i, carry):
        g_act, g_w = carry
        rows = jax.lax.dynamic_slice_in_dim(rows_all, i * width, width)
        tgt = _padded_take(targets, rows, n_post)
        if delays_ms is None:
            g_syn = _padded_take(g_row, tgt, 0.0)
        else:
            slots = _slots(step, delay_steps, delays_ms, rows, n_slots, dt)
            g_syn = g_buffer.at[slots, tgt].get(mode="fill", fill_value=0.0)
        w = weights if weights.ndim == 0 else _padded_take(weights, rows, 0.0)
        a = _padded_take(act, rows, 0.0)
        g_act = g_act.at[rows].set(jnp.sum(w * g_syn, axis=1), mode="drop")
        if weights.ndim == 0:
            g_w = g_w + jnp.sum(a[:, None] * g_syn)
        elif weight_grad:
            g_w = g_w.at[rows].set(a[:, None] * g_syn, mode="drop")
        return g_act, g_w

    dtype = jnp.result_type(act, g_buffer)  # as the dense-equivalent VJP's
    init = (jnp.zeros(act.shape, dtype),
            jnp.zeros(jnp.shape(weights) if weight_grad else (), dtype))
    g_act, g_w = jax.lax.fori_loop(0, (events.count + width - 1) // width, body, init)
    return g_w, g_act


def _native_support_vjp(weights, act, targets, slot_info, support, g_buffer, delay_steps, dt,
                        weight_grad=True):
    """`_support_vjp_loop` as one call of the compiled CPU kernel
    (`NeurojaxSupportVjp` in `neurojax/_native/events.cc`): one pass over the rows,
    skipping blocks of 64 with neither support nor activity, no compaction and no
    loop of gathers and scatters. Same values: bit for bit for the weight cotangent
    per synapse (the same products); the sums (the activity cotangent, a scalar
    weight's) have the same terms in another order, so they agree to rounding:
    XLA:CPU reduces a row in vector lanes whose number depends on the host, the
    kernel in order (a scalar weight's sum over rows accumulated in float64)."""
    step, delays_ms, _, _ = slot_info
    dtype = jnp.result_type(act, g_buffer)  # as the dense-equivalent VJP's
    w = jnp.asarray(weights).astype(dtype)
    delays = jnp.zeros((1, 0), dtype) if delays_ms is None else delays_ms.astype(dtype)[None]
    # Without `weight_grad` the kernel returns one sum per batch member instead of the
    # per-synapse array (unused: see `_event_weight_gradient`).
    call = _support_vjp_call((("delay_steps", np.int64(delay_steps)), ("dt", np.float64(dt))),
                             w.ndim > 0 and weight_grad)
    g_act, g_w = call(
        act.astype(dtype)[None],
        support.astype(jnp.bool_)[None],
        w.reshape((1,)) if w.ndim == 0 else w[None],
        targets.astype(jnp.int32)[None],
        delays,
        g_buffer.astype(dtype)[None],
        jnp.reshape(step, (1,)).astype(jnp.int32),
    )
    return (g_w[0] if w.ndim and weight_grad else g_w.reshape(())), g_act[0]


# Per argument of the backward kernel: whether it is state (per batch member) rather
# than connectivity or weights (possibly shared by a vmapped batch).
_SUPPORT_VJP_STATE = (True, True, False, False, False, True, True)


@functools.cache
def _support_vjp_call(attrs: tuple, per_synapse_gw: bool):
    """The compiled backward kernel as a JAX function of arrays with a leading batch
    axis (size 1 unbatched), returning `(g_act, g_w)`. Its vmap rule folds new batch
    axes into the leading one as `native_call`'s does (shared connectivity and weights
    are not copied), so the backward pass of a vmapped sweep is one call per step."""

    @jax.custom_batching.custom_vmap
    def call(act, support, weights, targets, delays, g_buffer, step):
        batch = g_buffer.shape[0]
        g_w_shape = (batch,) + (weights.shape[1:] if per_synapse_gw else ())
        return jax.ffi.ffi_call(
            _native.SUPPORT_VJP,
            (jax.ShapeDtypeStruct(act.shape, act.dtype),
             jax.ShapeDtypeStruct(g_w_shape, g_buffer.dtype)),
        )(act, support, weights, targets, delays, g_buffer, step, **dict(attrs))

    @call.def_vmap
    def rule(axis_size, in_batched, *args):
        folded, old = _fold_batch(axis_size, in_batched, args, _SUPPORT_VJP_STATE)
        outs = call(*folded)
        return tuple(o.reshape((axis_size, old) + o.shape[1:]) for o in outs), (True, True)

    return call


_sparse_deliver.defvjp(_sparse_deliver_fwd, _sparse_deliver_bwd)


# Events whose weight gradient is taken unconditionally in every step (per trial); more
# take a second pass over all rows, only in steps where some trial of a vmapped batch
# has more (`_event_weight_gradient`).
_FIRST_EVENTS = 32


@jax.custom_batching.custom_vmap
def _in_any_trial(flag):
    """`flag` itself; under `vmap`, whether it holds in any batch member (unbatched),
    so that a conditional on it stays a conditional instead of becoming a select that
    runs both branches. Used only on values without a gradient (a count test)."""
    return flag


@_in_any_trial.def_vmap
def _in_any_trial_vmap(axis_size, in_batched, flag):
    return (jnp.any(flag) if in_batched[0] else flag), False


@functools.partial(jax.custom_jvp, nondiff_argnums=(5, 6, 7))
def _event_weight_gradient(weights, act, targets, slot_info, out, n_slots, delay_steps, dt):
    """`out` (the ring buffer after `_sparse_deliver` with constant weights), with the
    derivative of event-driven propagation with respect to per-synapse `weights`:
    the tangent adds `act[i] dw[i, k]` at each synapse of the active rows
    (`slot_info`'s compacted events), at the forward pass's indices (`_row_synapses`).

    Why a JVP rule rather than the custom VJP's weight cotangent: JAX transposes this
    rule itself, into a gather of the buffer's cotangent at those synapses and a
    scatter-add into the weights' cotangent at the event rows. Under `vmap` over
    trials with shared weights, the scatter's indices are batched and its operand is
    not, so the batch is summed inside the scatter, touching the rows that spiked in
    each trial. The custom VJP's cotangent is batched wherever its inputs are, so JAX
    materialised every trial's `(n_pre, max_out)` weight cotangent in every step and
    summed it afterwards (benchmarks/train.py: 5.6x the CPU time per optimisation
    step). Outside `vmap` this costs 1.1x the custom VJP's time (a conditional and the
    first events' gathers per step). Values: the same products `act[i] g_syn[i, k]`
    per synapse; sums over a batch and over steps in another order (rounding only).
    Weights that are not differentiated (a symbolic zero tangent) cost nothing.

    The first `_FIRST_EVENTS` events of a step are taken in every step (gathered
    rows); the others in a conditional that runs only in steps where some trial has
    more (`_in_any_trial`), as one pass over every synapse with the activity of the
    first events' rows masked out."""
    return out


def _event_weight_gradient_jvp(n_slots, delay_steps, dt, primals, tangents):
    weights, act, targets, slot_info, out = primals
    w_dot, out_dot = tangents[0], tangents[4]
    if isinstance(out_dot, SymbolicZero):
        out_dot = jnp.zeros_like(out)
    if isinstance(w_dot, SymbolicZero):  # the weights are not differentiated: no cost
        return out, out_dot
    step, delays_ms, rows, count = slot_info
    n_post = out.shape[1]
    n_first = min(_FIRST_EVENTS, rows.shape[0])
    # What does not depend on the tangent is computed here, outside the conditional's
    # branches, with the gathers' and scatters' indices in their final form (`lax`
    # calls, not `.at[]`, which builds them inside) and, where possible, the stored
    # arrays themselves: the rematerialised step is not hoisted out of the loop, so an
    # index array built per step is a pass over the synapses in every step (stacking
    # slots with targets there cost ~10 % of a single-trial 4000-neuron gradient).
    first_rows = rows[:n_first]
    a, idx = _row_synapses(first_rows, act, targets, slot_info, n_slots, n_post, delay_steps, dt)
    row_index, syn_index = first_rows[:, None], idx.reshape(-1, 1)

    def first(buffer_dot):
        w = jax.lax.gather(w_dot, row_index, _ROW_GATHER, (1, w_dot.shape[1]),
                           mode=jax.lax.GatherScatterMode.FILL_OR_DROP, fill_value=0)
        vals = (w * a[:, None]).reshape(-1)
        flat = jax.lax.scatter_add(buffer_dot.reshape(-1), syn_index, vals, _ELEMENT_SCATTER,
                                   mode=jax.lax.GatherScatterMode.FILL_OR_DROP)
        return flat.reshape(buffer_dot.shape)

    if rows.shape[0] == n_first:
        return out, first(out_dot)
    # The rows after the first n_first events (rows are in increasing order).
    later = jnp.where(jnp.arange(act.shape[0]) > rows[n_first - 1], act, 0.0)
    if delays_ms is None:
        # One slot for every synapse: scatter by target alone (the stored targets as
        # indices, a reshape: no index array is built in the step), then add the row.
        target_index = targets.reshape(-1, 1)
        slot = (step + delay_steps) % n_slots

        def later_tangent(vals, buffer_shape):
            psp = jax.lax.scatter_add(jnp.zeros(buffer_shape[1:], vals.dtype), target_index,
                                      vals, _ELEMENT_SCATTER,
                                      mode=jax.lax.GatherScatterMode.FILL_OR_DROP)
            return jnp.zeros(buffer_shape, vals.dtype).at[slot].set(psp)
    else:
        # Each synapse's slot relative to this step (its slot is `(step + d) % n_slots`,
        # as in `_slots`), flattened with its target; padding past the end.
        d = jnp.maximum(1, jnp.round(delays_ms / dt)).astype(jnp.int32) % n_slots
        rel_index = jnp.where(targets < n_post, d * n_post + targets,
                              n_slots * n_post).reshape(-1, 1)
        start = (n_slots - step % n_slots) % n_slots  # rel[(j - step) % n] lands in slot j

        def later_tangent(vals, buffer_shape):
            rel = jax.lax.scatter_add(jnp.zeros(n_slots * n_post, vals.dtype), rel_index, vals,
                                      _ELEMENT_SCATTER,
                                      mode=jax.lax.GatherScatterMode.FILL_OR_DROP)
            rel = rel.reshape(buffer_shape)
            return jax.lax.dynamic_slice_in_dim(jnp.concatenate([rel, rel]), start, n_slots)

    def add_later(buffer_dot):
        # Every synapse's tangent, with the indices as stored (unbatched), so that
        # under vmap only `later` is per trial.
        vals = (later[:, None] * jnp.broadcast_to(w_dot, targets.shape)).reshape(-1)
        return buffer_dot + later_tangent(vals, buffer_dot.shape)

    # The first events outside the conditional: inside, their per-trial indices would
    # be its residuals, which the forward pass's conditional returns (zeros from the
    # branch that does not use them) in every step: 0.72x the CPU time per training
    # step (benchmarks/train.py) with them outside, the same outside vmap.
    return out, jax.lax.cond(_in_any_trial(count > n_first), add_later, lambda b: b,
                             first(out_dot))


_event_weight_gradient.defjvp(_event_weight_gradient_jvp, symbolic_zeros=True)


_ROW_GATHER = jax.lax.GatherDimensionNumbers(
    offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,))
_ELEMENT_SCATTER = jax.lax.ScatterDimensionNumbers(
    update_window_dims=(), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0,))


class SparseWeights(eqx.Module):
    """Synapses stored row-by-presynaptic-neuron (ELL), propagated event by event.

    **Fields:**

    - `weights`: A scalar (one weight for every synapse) or shape `(n_pre, max_out)`
      per synapse; padding entries are 0. Units of the projection's receptor.
    - `targets`: Postsynaptic index of each synapse, shape `(n_pre, max_out)`; padding
      entries hold `n_post`.
    - `delays`: `None` (the projection's homogeneous delay) or per-synapse delays [ms]
      of shape `(n_pre, max_out)`.
    - `n_post`: Number of postsynaptic neurons.
    - `chunk`, `kernel`, `capacity`: The propagation kernel, see `Sparse` (`chunk`
      is an integer here; `capacity=None` is the adaptive event buffer, a number the
      strict one).
    - `post_index`: The transposed index, built by `Network.build` for projections
      whose plasticity changes weights (else `None`): for each postsynaptic neuron the
      flat positions (`row * max_out + column`) of its incoming synapses, padded with
      `n_pre * max_out`; shape `(n_post, max_in)`. Post-triggered plasticity updates
      touch only the synapses of the neurons that spiked.
    """

    weights: Float[Array, "*pre_out"]
    targets: Int[Array, "pre out"]
    delays: Float[Array, "pre out"] | None
    n_post: int = eqx.field(static=True)
    chunk: int = eqx.field(static=True, default=DEFAULT_CHUNK)
    kernel: str = eqx.field(static=True, default="auto")
    capacity: int | None = eqx.field(static=True, default=None)
    post_index: Int[Array, "post in"] | None = None
    # `deliver` takes the presynaptic population's `compact_events`, computed once.
    event_driven: ClassVar[bool] = True

    def __check_init__(self):
        _check_kernel("SparseWeights", self.kernel, self.capacity)

    @property
    def n_pre(self) -> int:
        return self.targets.shape[0]

    def matrix(self) -> Float[Array, "post pre"]:
        """The equivalent dense `(post, pre)` matrix (for analysis and tests)."""
        w = jnp.broadcast_to(self.weights, self.targets.shape)
        pre = jnp.broadcast_to(jnp.arange(self.n_pre)[:, None], self.targets.shape)
        return (
            jnp.zeros((self.n_post, self.n_pre), w.dtype)
            .at[self.targets, pre]
            .add(w, mode="drop")
        )

    def deliver(
        self,
        buffer: Float[Array, "slots post"],
        act: Float[Array, " pre"],
        step: Int[Array, ""],
        delay_steps: int,
        dt: float,
        events: Events | None = None,
        weights: Float[Array, "pre out"] | None = None,
        support: Bool[Array, " pre"] | None = None,
    ) -> Float[Array, "slots post"]:
        """Scatter-add the rows of active presynaptic neurons into the ring buffer.
        `events` is `compact_events(act)`, passed in when several projections share
        one presynaptic population so it is computed once. `weights`, if given, has
        the shape of `targets` and is used instead of the stored weights (a plastic
        projection's current weights, from `NetworkState.plastic`): the same kernels
        and the same custom VJP serve static and plastic projections.

        `support`, if given, is the presynaptic population's gradient support (see
        `AbstractNeuron.gradient_support`): the neurons whose `act` can carry a
        gradient at all. The backward pass then computes the cotangents of `act` and
        of the weights only on the rows in `support` or with `act != 0` (zeros
        elsewhere), instead of on every synapse; gradients w.r.t. parameters are
        unchanged. `None` (default) gives the dense-equivalent VJP. The forward
        pass does not use it."""
        events = compact_events(act) if events is None else events
        w = self.weights if weights is None else weights
        # Per-synapse weights: their gradient is taken event by event (see
        # `_event_weight_gradient`), so the custom VJP sees them as constants.
        per_synapse = jnp.ndim(w) > 0
        slot_info = (step, self.delays, events.rows, events.count)
        out = _sparse_deliver(
            jax.lax.stop_gradient(w) if per_synapse else w,
            act,
            buffer,
            self.targets,
            slot_info,
            support,
            (
                self.kernel,
                self.chunk,
                _capacity(self.capacity, self.n_pre, self.chunk),
                self.capacity is not None,  # strict: an explicit capacity raises on overflow
            ),
            buffer.shape[0],
            delay_steps,
            dt,
        )
        if per_synapse:
            out = _event_weight_gradient(w, act, self.targets, slot_info, out,
                                         buffer.shape[0], delay_steps, dt)
        return out


def transposed_index(targets: np.ndarray, n_post: int) -> np.ndarray:
    """`SparseWeights.post_index` for ELL `targets` (padding `n_post`): row `p` holds
    the flat positions of the synapses onto `p`, padded with `targets.size`."""
    flat = np.asarray(targets).ravel()
    ids = np.nonzero(flat < n_post)[0]
    order, posts, col, width = _padded_rows(flat[ids], n_post)
    index = np.full((n_post, width), flat.size, dtype=np.int32)
    index[posts, col] = ids[order]
    return index


def _padded_rows(rows: np.ndarray, n_rows: int):
    """Stable order of entries grouped by `rows`, their sorted rows, their column in a
    padded `(n_rows, width)` layout, and `width` (the longest row, at least 1)."""
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    counts = np.bincount(rows, minlength=n_rows)
    width = max(1, int(counts.max()) if counts.size else 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, rows, np.arange(rows.size) - np.repeat(starts, counts), width


def to_ell(
    pre: np.ndarray,
    post: np.ndarray,
    n_pre: int,
    n_post: int,
    per_synapse: dict[str, np.ndarray],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Pack synapse lists into padded rows per presynaptic neuron.

    Returns `targets` of shape `(n_pre, max_out)` (padding `n_post`) and each array of
    `per_synapse` laid out the same way (padding 0)."""
    order, pre, col, width = _padded_rows(pre, n_pre)
    post = post[order]
    targets = np.full((n_pre, width), n_post, dtype=np.int32)
    targets[pre, col] = post
    packed = {}
    for name, values in per_synapse.items():
        arr = np.zeros((n_pre, width), dtype=float)
        arr[pre, col] = np.asarray(values, dtype=float)[order]
        packed[name] = arr
    return targets, packed


class Dense(eqx.Module):
    """Layout choice: store a projection as a dense `(post, pre)` matrix."""


KERNELS = ("auto", "native", "loop", "buffer")


def _capacity(capacity: int | None, n_pre: int, chunk: int) -> int:
    # Default event buffer: a tenth of the presynaptic population in one step (a
    # population rate of 1 kHz at dt = 0.1 ms), at least one chunk.
    return capacity if capacity is not None else max(chunk, -(-n_pre // 10))


class Sparse(eqx.Module):
    """Layout choice: store a projection row-by-presynaptic-neuron and propagate events.

    **Arguments:**

    - `kernel`: How the rows of active presynaptic neurons reach the ring buffer:

        - `"native"`: a compiled row loop on CPU (`neurojax/_native/events.cc`, built
          by `pip install` when a C++ compiler is present; see
          `native_kernel_available()`): one pass over the presynaptic outputs and one
          add per synaptic event, no compaction. CPU only.
        - `"loop"`: pure JAX: the compacted active rows are scatter-added `chunk` at a
          time in a loop of ceil(events / chunk) iterations. Any platform, any burst.
        - `"buffer"`: pure JAX: one batched gather/scatter of a fixed-size event
          buffer of `capacity` rows per step, no data-dependent loop in the common
          case (suits GPU/TPU). With `capacity=None` (the default) a step with more
          active neurons delivers the rest in further passes of `capacity` rows, so
          any burst is delivered (a synchronous volley costs ceil(events / capacity)
          passes). With an explicit `capacity` the buffer is strict: a step with more
          active neurons raises an error at run time (naming `Sparse(capacity=...)`)
          rather than drop spikes or take extra passes.
        - `"auto"` (default): `"native"` on CPU when it was built, else `"loop"`
          there; `"buffer"` on GPU/TPU (adaptive, or strict when `capacity` is
          given). Chosen by XLA for the platform it compiles for.

    - `chunk`: Active rows per iteration of `"loop"` [rows], an integer in [1, inf), or
      `None` (default) for the connectivity's own default: 16 for stored synapses,
      which suits cortical rates in networks of a few thousand neurons (4000 neurons at
      20 Hz, dt = 0.1 ms emit about 8 per step), and n_pre / 10000 within [16, 256] for
      `Procedural`. About the typical number of spikes per step is best.
    - `capacity`: Rows of the `"buffer"` kernel's event buffer [active neurons per
      step], an integer in [1, inf), or `None` (default): a tenth of the presynaptic
      population (at least one chunk), with overflow passes. Giving a number makes
      the buffer strict (see `kernel`). `Procedural` has no buffer kernel and ignores
      it.

    All kernels compute the same sums (up to the order of floating-point additions)
    and share one custom VJP, so gradients do not depend on the choice.
    """

    chunk: int | None = eqx.field(static=True, default=None)
    kernel: str = eqx.field(static=True, default="auto")
    capacity: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.chunk is not None and (
            isinstance(self.chunk, bool) or not isinstance(self.chunk, int) or self.chunk < 1
        ):
            raise ValueError(
                "Sparse chunk [rows per iteration] must be an integer in [1, inf) or None, "
                f"got {self.chunk!r}."
            )
        _check_kernel("Sparse", self.kernel, self.capacity)


def _check_kernel(owner: str, kernel: str, capacity: int | None) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"{owner} kernel must be one of {KERNELS}, got {kernel!r}.")
    if kernel == "native" and not native_kernel_available():
        raise ValueError(
            f"{owner} kernel='native' needs the compiled CPU kernel, which this install "
            "does not have (pip install builds it when a C++17 compiler is present; "
            f"{native_kernel_status()}); use kernel='auto' or 'loop'."
        )
    if capacity is not None and (
        isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
    ):
        raise ValueError(
            f"{owner} capacity [active neurons per step] must be an integer in [1, inf) "
            f"or None, got {capacity!r}."
        )


class ConstrainedWeights(eqx.Module):
    """A projection's weights computed from free parameters by a constraint (Dale's law,
    a mask, bounds; see `nj.train.constrain`), on a dense or sparse layout.

    The weights used by `deliver` and `matrix` are `constraint.apply(free, base.weights)`
    at every call, so any value of `free` (any optimiser step) gives weights that obey
    the constraint exactly. Only `free` is a trainable parameter (it is what
    `NetworkModel.params` lists as `"<projection>.weight.free..."`); `base` keeps the
    structure (targets, delays, kernel) and the initial weights, and `constraint` its
    fixed data (signs, mask, bounds).

    **Fields:**

    - `base`: The `DenseWeights` (a `(n_post, n_pre)` matrix) or `SparseWeights`
      (per-synapse `(n_pre, max_out)` values) container that was constrained; its
      `weights` are the initial weights $w_0$ (units of the projection's receptor).
    - `constraint`: The bound constraint (`nj.train.Dale`, `DANN`, `Mask`, `Bounded`).
    - `free`: The free parameters (a pytree of float arrays).
    - `exists`: For a dense layout built from connectivity that records which synapses
      exist (a `DenseWeights` with `counts`), a boolean `(n_post, n_pre)` array of them:
      the others stay exactly 0 whatever the constraint and the optimiser do, so
      training never creates a synapse. `None`: every entry of the layout is a synapse
      (a sparse layout holds only existing synapses).
    """

    base: DenseWeights | SparseWeights
    constraint: eqx.Module
    free: object
    exists: Bool[Array, "post pre"] | None = None

    @property
    def event_driven(self) -> bool:
        return self.base.event_driven

    @property
    def weights(self) -> Float[Array, "..."]:
        """The constrained weights, shaped like `base.weights`."""
        w = self.constraint.apply(self.free, self.base.weights)
        return w if self.exists is None else jnp.where(self.exists, w, jnp.zeros_like(w))

    @property
    def n_pre(self) -> int:
        return self.base.n_pre

    @property
    def n_post(self) -> int:
        return self.base.n_post

    def resolved(self) -> DenseWeights | SparseWeights:
        """The plain container holding the constrained weights."""
        return eqx.tree_at(lambda b: b.weights, self.base, self.weights)

    def matrix(self) -> Float[Array, "post pre"]:
        return self.resolved().matrix()

    def deliver(self, buffer, act, step, delay_steps, dt, events=None, support=None):
        """`deliver` of the base container with the constrained weights."""
        return self.resolved().deliver(buffer, act, step, delay_steps, dt, events,
                                       support=support)
