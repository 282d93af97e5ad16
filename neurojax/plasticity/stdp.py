r"""Spike-timing-dependent plasticity with pair traces."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _native
from .._misc import after, check_range, check_time_constant_vs_dt, nonnegative, positive
from ..connectivity.weights import compact_events
from .abstract import AbstractPlasticity, container_weights, synapse_mask

_WEIGHT_DEPENDENCE = ("additive", "multiplicative")
_TRACES = ("all_to_all", "nearest")


class PairSTDPState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]
    pre_trace: Float[Array, " pre"]  # presynaptic trace [1]
    post_trace: Float[Array, " post"]  # postsynaptic trace [1]


class PairSTDP(AbstractPlasticity[PairSTDPState]):
    r"""Pair-based STDP with exponential traces (Song, Miller & Abbott 2000; van
    Rossum, Bi & Turrigiano 2000; Morrison, Diesmann & Gerstner 2008).

    A pair of a presynaptic spike at $t_{pre}$ and a postsynaptic spike at $t_{post}$,
    $\Delta t = t_{post} - t_{pre}$, changes the weight by

    $$\Delta w = \begin{cases} a_+ f_+(w)\, e^{-\Delta t/\tau_+} & \Delta t \ge 0 \\
      -a_- f_-(w)\, e^{\Delta t/\tau_-} & \Delta t < 0 \end{cases}$$

    with $f_\pm = 1$ (`"additive"`, hard bounds $[0, w_{max}]$ by clipping) or
    $f_+ = 1 - w/w_{max}$, $f_- = w/w_{max}$ (`"multiplicative"`, soft bounds). Each
    presynaptic neuron keeps a trace $x_{pre}$ (decay $\tau_+$) and each postsynaptic
    neuron a trace $x_{post}$ (decay $\tau_-$), decayed by the exact factor
    $e^{-dt/\tau}$ per step; `"all_to_all"` traces add 1 per spike (every pair
    counts), `"nearest"` traces are reset to 1 (only the nearest neighbour counts).
    Within a step: traces decay; presynaptic spikes depress, $w \mathrel{-}= a_- f_-(w)
    x_{post}$ (postsynaptic spikes of this step not yet counted), and raise $x_{pre}$;
    postsynaptic spikes potentiate, $w \mathrel{+}= a_+ f_+(w) x_{pre}$, and raise
    $x_{post}$; each phase clips to $[0, w_{max}]$. So spikes in the same step
    ($\Delta t = 0$) potentiate by $a_+$. Spike times are the populations' outputs (the
    transmission delay is not included). A presynaptic spike is transmitted with the
    weight after its own update (NEST's order). Only existing synapses change.

    On a `Sparse` projection the update is event-driven: depression touches only the
    synapses of presynaptic neurons that spiked, potentiation only those onto
    postsynaptic neurons that spiked (through the transposed index `Network.build`
    makes); its gradient is that of the same formula over all synapses. On a `Dense`
    projection the formula runs over the matrix in steps with spikes.

    **Arguments:**

    - `a_plus`: Potentiation amplitude $a_+$ [weight units: nS or pA, as the
      projection's weight], >= 0.
    - `a_minus`: Depression amplitude $a_-$ [weight units], >= 0.
    - `tau_plus`: Potentiation window (presynaptic trace) $\tau_+$ [ms], > 0.
    - `tau_minus`: Depression window (postsynaptic trace) $\tau_-$ [ms], > 0.
    - `w_max`: Upper weight bound [weight units], > 0; the lower bound is 0.
    - `weight_dependence`: `"additive"` (default) or `"multiplicative"`.
    - `traces`: `"all_to_all"` (default) or `"nearest"`.

    The projection's initial weights must lie in `[0, w_max]`.

    !!! example

        ```python
        stdp = nj.plasticity.PairSTDP(a_plus=1e-3, a_minus=1.05e-3, tau_plus=20.0,
                                      tau_minus=20.0, w_max=0.1)
        ```
    """

    a_plus: Float[Array, ""] = eqx.field(converter=nonnegative("PairSTDP a_plus", "weight units"))
    a_minus: Float[Array, ""] = eqx.field(converter=nonnegative("PairSTDP a_minus", "weight units"))
    tau_plus: Float[Array, ""] = eqx.field(converter=positive("PairSTDP tau_plus", "ms"))
    tau_minus: Float[Array, ""] = eqx.field(converter=positive("PairSTDP tau_minus", "ms"))
    w_max: Float[Array, ""] = eqx.field(converter=positive("PairSTDP w_max", "weight units"))
    weight_dependence: str = eqx.field(static=True, default="additive")
    traces: str = eqx.field(static=True, default="all_to_all")
    changes_weights: ClassVar[bool] = True

    def __init__(self, a_plus=0.005, a_minus=0.00525, tau_plus=20.0, tau_minus=20.0,
                 w_max=1.0, weight_dependence="additive", traces="all_to_all"):
        self.a_plus = a_plus
        self.a_minus = a_minus
        self.tau_plus = tau_plus
        self.tau_minus = tau_minus
        self.w_max = w_max
        self.weight_dependence = weight_dependence
        self.traces = traces

    def __check_init__(self):
        if self.weight_dependence not in _WEIGHT_DEPENDENCE:
            raise ValueError(
                f"PairSTDP weight_dependence must be one of {_WEIGHT_DEPENDENCE}, got "
                f"{self.weight_dependence!r}."
            )
        if self.traces not in _TRACES:
            raise ValueError(f"PairSTDP traces must be one of {_TRACES}, got {self.traces!r}.")

    def init(self, structure: Any, weights: Array | None) -> PairSTDPState:
        w = container_weights(structure) if weights is None else weights
        n_pre, n_post = structure.n_pre, structure.n_post
        return PairSTDPState(
            weights=w,
            pre_trace=jnp.zeros((n_pre,), w.dtype),
            post_trace=jnp.zeros((n_post,), w.dtype),
        )

    def weights(self, state: PairSTDPState) -> Array:
        return state.weights

    def _bump(self, trace, spikes):
        return bump_trace(trace, spikes, self.traces)

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        from ..connectivity.weights import SparseWeights

        dtype = state.weights.dtype
        pre, post = pre.astype(dtype), post.astype(dtype)
        params = (self.a_plus, self.a_minus, self.w_max)
        mult = self.weight_dependence == "multiplicative"
        if isinstance(structure, SparseWeights) and structure.post_index is not None:
            w, x_pre_new, x_post = _sparse_step(
                state.weights, state.pre_trace, state.post_trace, pre, post,
                params + (self.tau_plus, self.tau_minus), structure.targets,
                structure.post_index, dt, mult, self.traces, structure.chunk, structure.kernel)
            return PairSTDPState(weights=w, pre_trace=x_pre_new, post_trace=x_post), w
        x_pre_new, x_post = pair_traces(state.pre_trace, state.post_trace, pre=pre, dt=dt,
                                        tau_plus=self.tau_plus, tau_minus=self.tau_minus,
                                        traces=self.traces)
        w = _dense_update(state.weights, x_pre_new, x_post, pre, post, params, structure, mult,
                          skip_quiet=True)
        x_post = self._bump(x_post, post)
        return PairSTDPState(weights=w, pre_trace=x_pre_new, post_trace=x_post), w

    def check(self, structure: Any, dt: float, name: str) -> None:
        for field in ("a_plus", "a_minus", "tau_plus", "tau_minus", "w_max"):
            if np.ndim(getattr(self, field)) != 0:
                raise ValueError(
                    f"projection {name!r}: PairSTDP {field} must be a scalar, got shape "
                    f"{np.shape(getattr(self, field))}."
                )
        check_range(self.a_plus, "PairSTDP a_plus", "weight units", low=0.0)
        check_range(self.a_minus, "PairSTDP a_minus", "weight units", low=0.0)
        check_range(self.tau_plus, "PairSTDP tau_plus", "ms", low=0.0, low_open=True)
        check_range(self.tau_minus, "PairSTDP tau_minus", "ms", low=0.0, low_open=True)
        check_range(self.w_max, "PairSTDP w_max", "weight units", low=0.0, low_open=True)
        check_time_constant_vs_dt(self.tau_plus, dt, "PairSTDP tau_plus")
        check_time_constant_vs_dt(self.tau_minus, dt, "PairSTDP tau_minus")


def bump_trace(trace, spikes, traces):
    """A pair trace after this step's `spikes`: `"all_to_all"` adds 1 per spike,
    `"nearest"` resets to 1."""
    if traces == "nearest":
        return jnp.where(spikes > 0, jnp.ones_like(trace), trace)
    return trace + spikes


def pair_traces(pre_trace, post_trace, pre, dt, tau_plus, tau_minus, traces):
    """One step of the pair traces before the weight update: both decay by the exact
    factor $e^{-dt/\tau}$, the presynaptic one then counts this step's `pre` spikes
    (the postsynaptic one counts `post` after the update, with `bump_trace`)."""
    x_pre = pre_trace * jnp.exp(-dt / tau_plus)
    x_post = post_trace * jnp.exp(-dt / tau_minus)
    return bump_trace(x_pre, pre, traces), x_post


def _layout(structure):
    """Broadcasts of per-presynaptic and per-postsynaptic vectors onto the synapses of
    `structure`'s layout, and its synapse mask."""
    from ..connectivity.weights import DenseWeights

    mask = synapse_mask(structure)
    shape = mask.shape
    if isinstance(structure, DenseWeights):  # (post, pre)
        return (lambda v: jnp.broadcast_to(v[None, :], shape),
                lambda v: jnp.broadcast_to(v[:, None], shape), mask)
    tgt = structure.targets  # rows (pre, out); padding targets read 0
    return (lambda v: jnp.broadcast_to(v[:, None], shape),
            lambda v: jnp.take(v, tgt, mode="fill", fill_value=0), mask)


def _dense_update(w, x_pre, x_post, pre, post, params, structure, mult, skip_quiet=False,
                  clip=True):
    """One step's weight update over every synapse of the layout: presynaptic spikes
    depress by a_- f_-(w) x_post (this step's postsynaptic spikes not yet counted), the
    result is clipped to [0, w_max]; then postsynaptic spikes potentiate by
    a_+ f_+(w) x_pre (`x_pre` already counting this step's presynaptic spikes), clipped
    again. `skip_quiet` skips a phase when no neuron spiked (`lax.cond`). `clip=False`
    leaves out the clipping (an unbounded pair-STDP variable, e.g. an eligibility trace
    of `RewardModulated`; `w_max` is then unused with `mult=False`)."""
    a_plus, a_minus, w_max = params
    pre_at, post_at, mask = _layout(structure)
    bound = (lambda x: jnp.clip(x, 0.0, w_max)) if clip else (lambda x: x)

    def depress(w):
        f = w / w_max if mult else 1.0
        return jnp.where(mask, bound(w - a_minus * f * pre_at(pre) * post_at(x_post)), w)

    def potentiate(w):
        f = (1.0 - w / w_max) if mult else 1.0
        return jnp.where(mask, bound(w + a_plus * f * post_at(post) * pre_at(x_pre)), w)

    if not skip_quiet:
        return potentiate(depress(w))
    w = jax.lax.cond(jnp.any(pre != 0), depress, lambda w: w, w)
    return jax.lax.cond(jnp.any(post != 0), potentiate, lambda w: w, w)


def _sparse_step_reference(w, pre_trace, post_trace, pre, post, params, targets, post_index, dt,
                           mult, traces, chunk, kernel):
    """One `PairSTDP.step` on a sparse projection: the traces (`pair_traces`), the
    event-driven update (`_sparse_update`) and the post trace's bump; returns the new
    weights and traces. `params` = (a_plus, a_minus, w_max, tau_plus, tau_minus).

    The same values, in an order XLA can see (`after`): the decayed post trace for the
    update once this step's spikes are known (not one more thunk ready at the start of
    the step), and the trace that replaces the carried one from a read after the update
    (XLA fuses the decay into both readers of the old trace and, unordered, copied the
    carried trace every step)."""
    a_plus, a_minus, w_max, tau_plus, tau_minus = params
    step_traces = functools.partial(pair_traces, pre_trace, pre=pre, dt=dt, tau_plus=tau_plus,
                                    tau_minus=tau_minus, traces=traces)
    x_pre_new, x_post = step_traces(after(post_trace, post))
    w = _sparse_update(w, x_pre_new, x_post, pre, post, (a_plus, a_minus, w_max), targets,
                       post_index, mult, chunk, kernel)
    first = w[..., 0, :1] if w.size else jnp.zeros((1,), w.dtype)  # any weight
    x_post = step_traces(after(post_trace, first))[1]
    return w, x_pre_new, bump_trace(x_post, post, traces)


def _sparse_step(w, pre_trace, post_trace, pre, post, params, targets, post_index, dt, mult,
                 traces, chunk, kernel="auto"):
    """`_sparse_step_reference`, as one call of the compiled CPU kernel where it can
    (`kernel` `"native"`, or `"auto"` on CPU; `neurojax/_native/events.cc`,
    `NeurojaxPairStdpStep`): weights and both traces updated in place, instead of the
    update's call and three elementwise thunks for the traces per step; the same values
    bit for bit on hosts with FMA. Differentiated, it runs the reference (its own
    forward and VJP: the gradient is the reference's)."""
    dtypes = {jnp.result_type(x) for x in (w, pre_trace, post_trace, params[3], params[4])}
    if (kernel in ("loop", "buffer") or not _native.has(_native.PAIR_STDP_STEP)
            or not isinstance(dt, (int, float)) or len(dtypes) != 1):
        return _sparse_step_reference(w, pre_trace, post_trace, pre, post, params, targets,
                                      post_index, dt, mult, traces, chunk, kernel)
    return _fused_sparse_step(w, pre_trace, post_trace, pre, post, tuple(params), targets,
                              post_index, float(dt), bool(mult), traces, chunk, kernel)


@functools.partial(jax.custom_vjp, nondiff_argnums=(8, 9, 10, 11, 12))
def _fused_sparse_step(w, pre_trace, post_trace, pre, post, params, targets, post_index, dt,
                       mult, traces, chunk, kernel):
    native = functools.partial(_native_sparse_step, w, pre_trace, post_trace, pre, post,
                               params, targets, post_index, dt, mult, traces)
    if kernel == "native":
        return native()
    reference = functools.partial(_sparse_step_reference, w, pre_trace, post_trace, pre, post,
                                  params, targets, post_index, dt, mult, traces, chunk, kernel)
    return jax.lax.platform_dependent(cpu=native, default=reference)


def _fused_sparse_step_fwd(w, pre_trace, post_trace, pre, post, params, targets, post_index, dt,
                           mult, traces, chunk, kernel):
    def reference(w, pre_trace, post_trace, pre, post, params):
        return _sparse_step_reference(w, pre_trace, post_trace, pre, post, params, targets,
                                      post_index, dt, mult, traces, chunk, kernel)

    return jax.vjp(reference, w, pre_trace, post_trace, pre, post, params)


def _fused_sparse_step_bwd(dt, mult, traces, chunk, kernel, vjp, ct):
    return (*vjp(ct), None, None)


_fused_sparse_step.defvjp(_fused_sparse_step_fwd, _fused_sparse_step_bwd)


def _native_sparse_step(w, pre_trace, post_trace, pre, post, params, targets, post_index, dt,
                        mult, traces):
    """`_sparse_step_reference` as one call of `NeurojaxPairStdpStep`. The decay factors
    are computed here by XLA, as `pair_traces` computes them."""
    dtype = w.dtype
    a_plus, a_minus, w_max, tau_plus, tau_minus = params
    factors = (jnp.exp(-dt / tau_plus), jnp.exp(-dt / tau_minus))
    return _native_stdp_step_call(mult, traces == "nearest")(
        w, targets.astype(jnp.int32), post_index.astype(jnp.int32), pre.astype(dtype),
        post.astype(dtype), pre_trace, post_trace,
        jnp.stack([jnp.asarray(p, dtype) for p in (a_plus, a_minus, w_max, *factors)]),
    )


class _Rows(eqx.Module):
    """A stand-in sparse structure (targets and size) for `_dense_update`'s layout."""

    targets: Array
    n_post: int = eqx.field(static=True)


@functools.partial(jax.custom_vjp, nondiff_argnums=(8, 9, 10))
def _sparse_update(w, x_pre, x_post, pre, post, params, targets, post_index, mult, chunk,
                   kernel="auto"):
    """`_dense_update` on sparse rows, event-driven: depression touches the rows of the
    presynaptic neurons that spiked, potentiation the synapses (through `post_index`)
    of the postsynaptic neurons that spiked. Its gradient is `_dense_update`'s
    (O(synapses) in the backward pass, like propagation's).

    `kernel` is the projection's (`Sparse(kernel=...)`): `"native"` and `"auto"` on CPU
    run the compiled update (`neurojax/_native/events.cc`: one in-place pass over the
    spiking rows and columns, no thunk per chunk) when the build has it, else, like
    `"loop"` and `"buffer"`, the pure-JAX loops (`_sparse_update_loop`), which define
    the semantics; both give the same weights."""
    args = (w, x_pre, x_post, pre, post, params, targets, post_index, mult)
    loop = functools.partial(_sparse_update_loop, *args, chunk)
    if kernel in ("loop", "buffer") or not _native.has(_native.PAIR_STDP):
        return loop()
    native = functools.partial(_native_sparse_update, *args)
    if kernel == "native":
        return native()
    return jax.lax.platform_dependent(cpu=native, default=loop)


def _native_sparse_update(w, x_pre, x_post, pre, post, params, targets, post_index, mult):
    """`_sparse_update_loop` as one call of the compiled CPU kernel (weights in place)."""
    dtype = w.dtype
    return _native_stdp_call(bool(mult))(
        w, targets.astype(jnp.int32), post_index.astype(jnp.int32), pre.astype(dtype),
        post.astype(dtype), x_pre.astype(dtype), x_post.astype(dtype),
        jnp.stack([jnp.asarray(p, dtype) for p in params]),
    )


# Per argument of the kernel: the rank of one batch member's array, and whether it is
# state (per batch member) rather than connectivity or parameters (possibly shared).
_STDP_CORE = ((2, True), (2, False), (2, False), (1, True), (1, True), (1, True), (1, True),
              (1, False))


def _fold_batch(axis_size, in_batched, args):
    """The pair-STDP kernels' vmap rule: every batch axis of `args` (the weights' leading
    axes) folded into one leading axis, shared connectivity and parameters left
    unbatched (not copied per member). Returns the folded batch shape and the args."""
    w, w_batched = args[0], in_batched[0]
    lead = (axis_size,) + w.shape[1 if w_batched else 0:-2]
    folded = []
    for x, batched, (core, state) in zip(args, in_batched, _STDP_CORE):
        if not batched and x.ndim == core and not state:
            folded.append(x)  # shared by the whole batch
            continue
        if batched:  # (axis, [inner batch axes,] core...)
            mid = x.shape[1:x.ndim - core]
            x = x.reshape((axis_size,) + (1,) * (len(lead) - 1 - len(mid)) + x.shape[1:])
        x = jnp.broadcast_to(x, lead + x.shape[x.ndim - core:])
        folded.append(x.reshape((-1,) + x.shape[len(lead):]))
    return lead, folded


@functools.cache
def _native_stdp_call(mult: bool):
    """The compiled pair-STDP update as a JAX function of unbatched arrays (`w` is
    updated in place: no reshape around it, which would make XLA copy the whole weight
    array twice per step). Its vmap rule folds all batch axes into one leading axis
    (shared connectivity and parameters are not copied), so a vmapped sweep is one call
    that loops over the batch in C++."""

    @jax.custom_batching.custom_vmap
    def call(*args):
        w = args[0]
        return jax.ffi.ffi_call(
            _native.PAIR_STDP, jax.ShapeDtypeStruct(w.shape, w.dtype), input_output_aliases={0: 0}
        )(*args, multiplicative=np.int64(mult))

    @call.def_vmap
    def rule(axis_size, in_batched, *args):
        lead, folded = _fold_batch(axis_size, in_batched, args)
        out = call(*folded)
        return out.reshape(lead + out.shape[1:]), True

    return call


@functools.cache
def _native_stdp_step_call(mult: bool, nearest: bool):
    """The compiled pair-STDP step with traces as a JAX function of unbatched arrays
    (weights and both traces updated in place), batched like `_native_stdp_call`."""

    @jax.custom_batching.custom_vmap
    def call(*args):
        w, x_pre, x_post = args[0], args[5], args[6]
        return jax.ffi.ffi_call(
            _native.PAIR_STDP_STEP,
            tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in (w, x_pre, x_post)),
            input_output_aliases={0: 0, 5: 1, 6: 2},
        )(*args, multiplicative=np.int64(mult), nearest=np.int64(nearest))

    @call.def_vmap
    def rule(axis_size, in_batched, *args):
        lead, folded = _fold_batch(axis_size, in_batched, args)
        outs = call(*folded)
        return tuple(o.reshape(lead + o.shape[1:]) for o in outs), (True, True, True)

    return call


def _sparse_update_loop(w, x_pre, x_post, pre, post, params, targets, post_index, mult, chunk):
    """The pure-JAX `_sparse_update`: depression and potentiation `chunk` rows at a time
    in loops of ceil(events / chunk) iterations."""
    a_plus, a_minus, w_max = params
    n_pre, width = targets.shape
    n_post = post_index.shape[0]
    n_syn = n_pre * width

    def loop(act, n, body, carry):
        ev = compact_events(act)
        rows_all = jnp.concatenate([ev.rows, jnp.full((chunk,), n, ev.rows.dtype)])

        def step(i, carry):
            return body(jax.lax.dynamic_slice_in_dim(rows_all, i * chunk, chunk), carry)

        return jax.lax.fori_loop(0, (ev.count + chunk - 1) // chunk, step, carry)

    def depress_rows(rows, w):
        wr = jnp.take(w, rows, axis=0, mode="fill", fill_value=0)
        tgt = jnp.take(targets, rows, axis=0, mode="fill", fill_value=n_post)
        xp = jnp.take(x_post, tgt, mode="fill", fill_value=0)
        a = jnp.take(pre, rows, mode="fill", fill_value=0)
        f = wr / w_max if mult else 1.0
        new = jnp.clip(wr - a_minus * f * a[:, None] * xp, 0.0, w_max)
        new = jnp.where(tgt < n_post, new, wr)
        return w.at[rows].set(new, mode="drop")

    def potentiate_posts(posts, flat):
        idx = jnp.take(post_index, posts, axis=0, mode="fill", fill_value=n_syn)
        wv = jnp.take(flat, idx, mode="fill", fill_value=0)
        xv = jnp.take(x_pre, idx // width, mode="fill", fill_value=0)
        p = jnp.take(post, posts, mode="fill", fill_value=0)
        f = (1.0 - wv / w_max) if mult else 1.0
        new = jnp.clip(wv + a_plus * f * p[:, None] * xv, 0.0, w_max)
        return flat.at[idx].set(new, mode="drop")

    w = loop(pre, n_pre, depress_rows, w)
    flat = loop(post, n_post, potentiate_posts, w.reshape(-1))
    return flat.reshape(w.shape)


def _sparse_update_fwd(w, x_pre, x_post, pre, post, params, targets, post_index, mult, chunk,
                       kernel="auto"):
    out = _sparse_update(w, x_pre, x_post, pre, post, params, targets, post_index, mult, chunk,
                         kernel)
    return out, (w, x_pre, x_post, pre, post, params, targets, post_index)


def _sparse_update_bwd(mult, chunk, kernel, res, ct):
    w, x_pre, x_post, pre, post, params, targets, post_index = res
    structure = _Rows(targets=targets, n_post=post_index.shape[0])
    _, vjp = jax.vjp(
        lambda *a: _dense_update(*a[:5], a[5], structure, mult), w, x_pre, x_post, pre, post, params
    )
    return (*vjp(ct), None, None)


_sparse_update.defvjp(_sparse_update_fwd, _sparse_update_bwd)
