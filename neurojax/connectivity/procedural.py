r"""Procedural connectivity: synapses regenerated from a seed at every use, never stored.

A `Procedural` projection keeps only a 32-bit seed and its weight parameters, so a
network of $N$ neurons with $K$ synapses each needs $O(N)$ memory instead of $O(NK)$
(1M neurons × 100 synapses would take 400 MB of target indices alone as
`SparseWeights`). Each time a presynaptic neuron $j$ emits an event, its $K$ targets
(and per-synapse weights, if drawn from a distribution) are recomputed from a
counter-based hash of (seed, $j$, $k$) for $k = 0 \dots K-1$: a few 32-bit integer
operations per synapse (the lowbias32 finaliser of C. Wellons, applied to a
splitmix-style counter), much cheaper than drawing from a threefry key per synapse.
This is the approach of GeNN's procedural connectivity (Knight & Nowotny 2021,
*Nature Computational Science* 1:136).

With a distance `profile` (`Procedural(out_degree=K, profile="gaussian", width=...)`)
on a regular grid (`Ring`, `Line`, `Sheet(layout="grid")`), the same hash draws each
synapse's displacement from the profile instead of a uniform target: the spatial
connectivity of `DistanceDependent` without storing it (see `_spatial_targets`).
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, UInt32

from .._hash import (
    GOLDEN as _GOLDEN,
    STREAM_1 as _STREAM_1,
    STREAM_2 as _STREAM_2,
    lowbias32 as _lowbias32,
    standard_normal as _standard_normal,
    u32 as _u32,
    unit_uniform as _unit_uniform,
)
from .._misc import check_range
from ..distributions import AbstractDistribution, LogNormal, Normal, Uniform
from .builders import AbstractConnectivity, Synapses
from .spatial import Line, Ring, Sheet
from .. import _native
from .weights import (
    Dense,
    Events,
    Sparse,
    _padded_take,
    _require_cpu,
    _require_native,
    compact_events,
    native_call,
    native_kernel_available,
)

# ----------------------------------------------------------------------------- hashing

def _mulhi(h: UInt32[Array, "*shape"], n: int) -> UInt32[Array, "*shape"]:
    """`floor(h * n / 2^32)`, a value in `range(n)`, computed from 16-bit halves so it
    needs no 64-bit integers (JAX runs in 32 bits unless x64 is enabled). Each value is
    hit by floor or ceil of 2^32 / n hashes: a relative bias below n / 2^32."""
    a_hi, a_lo = h >> _u32(16), h & _u32(0xFFFF)
    b_hi, b_lo = _u32(n >> 16), _u32(n & 0xFFFF)
    hi_lo, lo_hi = a_hi * b_lo, a_lo * b_hi
    carry = ((a_lo * b_lo) >> _u32(16)) + (hi_lo & _u32(0xFFFF)) + (lo_hi & _u32(0xFFFF))
    return a_hi * b_hi + (hi_lo >> _u32(16)) + (lo_hi >> _u32(16)) + (carry >> _u32(16))


def _synapse_hashes(
    seed: UInt32[Array, ""], rows: Int[Array, " rows"], k: int
) -> UInt32[Array, "rows k"]:
    """One 32-bit hash per synapse `(row, 0..k-1)`: a per-row key, then a counter."""
    r = rows.astype(jnp.uint32)
    # The seed enters twice, before and after a mixing round, so that seeds differing
    # by a xor or a shift do not give relabelled copies of one graph.
    row_key = _lowbias32(_lowbias32(r ^ seed) + seed)
    counter = jnp.arange(k, dtype=jnp.uint32)[None, :] * _u32(_GOLDEN)
    return _lowbias32(row_key[:, None] + counter)


def _targets(
    h: UInt32[Array, "rows k"], rows: Int[Array, " rows"], n_post: int, exclude_self: bool
) -> Int[Array, "rows k"]:
    """Postsynaptic index of each synapse: uniform over `range(n_post)`, or over the
    `n_post - 1` neurons other than the row's own index when `exclude_self`."""
    if not exclude_self:
        return _mulhi(h, n_post).astype(jnp.int32)
    t = _mulhi(h, n_post - 1)
    return (t + (t >= rows.astype(jnp.uint32)[:, None]).astype(jnp.uint32)).astype(jnp.int32)


WeightSpec = Float[Array, ""] | Normal | Uniform | LogNormal


def _weight_values(weights: WeightSpec, h: UInt32[Array, "rows k"]):
    """Per-synapse weights regenerated from the synapse hashes (a scalar if homogeneous)."""
    if isinstance(weights, Normal):
        return weights.mean + weights.std * _standard_normal(h, jnp.result_type(weights.mean))
    if isinstance(weights, LogNormal):
        z = _standard_normal(h, jnp.result_type(weights.mu))
        return jnp.exp(weights.mu + weights.sigma * z)
    if isinstance(weights, Uniform):
        u = _unit_uniform(_lowbias32(h ^ _u32(_STREAM_1)), jnp.result_type(weights.low))
        return weights.low + (weights.high - weights.low) * u
    return weights


class _Spatial(NamedTuple):
    """Static description of a distance-dependent procedural projection: both
    populations on regular grids of one geometry (hashable: part of the jit cache key)."""

    profile: str  # "gaussian" or "exponential"
    width: float  # sigma or lambda [space units]
    extent: tuple[float, ...]  # the space's size per dimension [space units]
    periodic: bool
    pre_shape: tuple[int, ...]  # grid points per dimension: (n,) or (side, side)
    post_shape: tuple[int, ...]


class _Spec(NamedTuple):
    """Static description of a procedural projection (hashable: a jit cache key)."""

    n_post: int  # targets are drawn from range(n_post), whatever slice is delivered
    k: int
    exclude_self: bool
    chunk: int
    kernel: str
    spatial: _Spatial | None = None


def _local_targets(tgt: Int[Array, "*shape"], start: Int[Array, ""] | None, n_local: int):
    """Indices of targets in the delivered slice `[start, start + n_local)` of the
    postsynaptic population, relative to `start`, and whether each is in it
    (`start=None`: the whole population, every target)."""
    if start is None:
        return tgt, jnp.ones(tgt.shape, bool)
    local = tgt - start
    return local, (local >= 0) & (local < n_local)


def _synapses(seed, weights, rows, spec: _Spec):
    h = _synapse_hashes(seed, rows, spec.k)
    if spec.spatial is None:
        tgt = _targets(h, rows, spec.n_post, spec.exclude_self)
    else:
        tgt = _spatial_targets(h, rows, spec.spatial, spec.exclude_self)
    return tgt, _weight_values(weights, h)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _all_synapses(seed, weights, n_pre: int, spec: _Spec):
    # Compiled once per projection shape: called outside any jit (listing synapses
    # for analysis, `sample_between`), the spatial draw's ~100 operations would each be
    # compiled and dispatched on their own (seconds on a loaded 2-core CPU). Inside a
    # traced function it is inlined like any other.
    return _synapses(seed, weights, jnp.arange(n_pre, dtype=jnp.int32), spec)


# ----------------------------------------------------------------------------- space

# The displacement draws hash the synapse hash with this stream constant first, so they
# are decorrelated from the weight draws (streams 1 and 2 of the same hash).
_STREAM_SPACE = 0x2C1B3C6D
_STREAM_3 = 0x297A2D39
# Draws of one synapse tried before the deterministic fallback (see `_spatial_targets`).
_MAX_DRAWS = 16


def _grid_positions(
    rows: Int[Array, " rows"], shape: tuple[int, ...], extent: tuple[float, ...], dtype
) -> list[Float[Array, " rows"]]:
    """Coordinates of grid neurons, one array per dimension, as the spaces lay them out:
    cell centres `(i + 1/2) * extent / n`, the last index fastest (`Sheet`'s `"ij"`
    meshgrid: neuron `ix * side + iy`)."""
    idx, rest = [], rows
    for n in reversed(shape):
        idx.append(rest % n)
        rest = rest // n
    idx = idx[::-1]
    return [(i.astype(dtype) + 0.5) * (ext / n) for i, n, ext in zip(idx, shape, extent)]


# Coordinates are kept as one array per dimension, never stacked on a last axis: XLA's
# CPU backend fuses a stacked (..., 2) result element by element and recomputed the
# hashes, logarithm and polynomials for each coordinate (measured 2x slower).


def _grid_index(
    pos: list[Float[Array, "*shape"]], shape: tuple[int, ...], extent: tuple[float, ...]
) -> Int[Array, "*shape"]:
    """The grid neuron nearest each position in the space (`pos`, one array per
    dimension, within `[0, extent]`): the one whose cell `[i, i + 1) * extent / n`
    holds it, per dimension."""
    flat = None
    for x, n, ext in zip(pos, shape, extent):
        i = jnp.clip(jnp.floor(x * (n / ext)), 0, n - 1).astype(jnp.int32)
        flat = i if flat is None else flat * n + i
    return flat


def _displacements(h: UInt32[Array, "*shape"], profile: str, width: float, dim: int, dtype):
    """One displacement per hash, as `dim` arrays of `h`'s shape [space units], with density
    proportional to the profile `f(|x|)` in `dim` dimensions:

    - Gaussian, `f = exp(-d^2 / 2 sigma^2)`: Box–Muller, `r = sigma sqrt(-2 ln u1)` at a
      uniform angle `2 pi u2` (in 1-D, its cosine: a normal component);
    - exponential, `f = exp(-d / lambda)`: in 1-D a Laplace draw `±lambda (-ln u1)`; in
      2-D the radius has density `r exp(-r / lambda) / lambda^2`, a Gamma(2, lambda)
      law, drawn as the sum of two exponential draws `-lambda (ln u1 + ln u3)` (its
      inverse CDF needs the Lambert W_{-1} function; the sum has exactly that law), at
      a uniform angle `2 pi u2`.

    The uniforms have 24 bits, so the tails are cut at 5.8 sigma (Gaussian) and
    16.6 lambda (1-D exponential; 2-D: the sum of two, each cut there)."""
    u1 = _unit_uniform(_lowbias32(h ^ _u32(_STREAM_1)), dtype, open_at_zero=True)
    u2 = _unit_uniform(_lowbias32(h ^ _u32(_STREAM_2)), dtype)
    if profile == "gaussian":
        r = width * jnp.sqrt(-2.0 * jnp.log(u1))
    elif dim == 1:
        r = -width * jnp.log(u1)
    else:
        u3 = _unit_uniform(_lowbias32(h ^ _u32(_STREAM_3)), dtype, open_at_zero=True)
        r = -width * (jnp.log(u1) + jnp.log(u3))
    if dim == 1:
        if profile == "gaussian":
            return [r * _cos_sin_turns(u2)[0]]
        return [jnp.where(u2 < 0.5, -r, r)]
    cos, sin = _cos_sin_turns(u2)
    return [r * cos, r * sin]


def _cos_sin_turns(u):
    """`cos(2 pi u)` and `sin(2 pi u)` for `u` in [0, 1]: the nearest quarter turn `q`,
    then Taylor polynomials on the remaining angle in [-pi/4, pi/4] (truncation error
    below 1e-11), rotated by `q` quarter turns. XLA's CPU `cos` / `sin` cost ~17 ns
    each in float32 (range reduction for any argument); this is a few multiply-adds,
    and it made the distance-dependent regeneration several times faster."""
    q = jnp.floor(4.0 * u + 0.5)
    phi = (2.0 * jnp.pi) * (u - 0.25 * q)
    p2 = phi * phi
    s = phi * (1 - p2 / 6 * (1 - p2 / 20 * (1 - p2 / 42 * (1 - p2 / 72 * (1 - p2 / 110)))))
    c = 1 - p2 / 2 * (1 - p2 / 12 * (1 - p2 / 30 * (1 - p2 / 56 * (1 - p2 / 90 * (1 - p2 / 132)))))
    quadrant = q.astype(jnp.int32) % 4
    cos = jnp.select([quadrant == 0, quadrant == 1, quadrant == 2], [c, -s, -c], s)
    sin = jnp.select([quadrant == 0, quadrant == 1, quadrant == 2], [s, c, -s], -c)
    return cos, sin


def _accept(draw, tgt, done):
    """Targets and acceptance after one more draw: a new accepted draw replaces the
    kept target of a synapse not yet accepted."""
    t, ok = draw
    return jnp.where(~done & ok, t, tgt), done | ok


def _spatial_targets(
    h: UInt32[Array, "rows k"], rows: Int[Array, " rows"], sp: _Spatial, exclude_self: bool
) -> Int[Array, "rows k"]:
    """Postsynaptic index of each synapse of a distance-dependent projection: the grid
    neuron nearest the presynaptic neuron's position plus a displacement drawn from the
    profile (`_displacements`), wrapped across periodic boundaries.

    A draw is rejected and redrawn from the next hash of the synapse when it lands
    outside a non-periodic space, or on the presynaptic neuron itself when autapses are
    excluded: the accepted draw follows the profile conditioned on landing on an
    allowed neuron (near an edge of a `Line` or a non-periodic `Sheet` the profile is
    renormalised to the space; the out-degree stays K). After `_MAX_DRAWS` rejected
    draws, a deterministic fallback keeps the first draw, clipped to the space's edge,
    and replaces the presynaptic neuron by its grid neighbour along the last dimension.
    With rejection probability q per draw the fallback concerns a fraction q^16 of the
    synapses: below 1e-10 for q < 1/4, e.g. a Gaussian width of a grid spacing on a
    ring, whose own cell holds 38 % of the draws, gives 2e-7."""
    dtype = jnp.result_type(float)
    dim = len(sp.extent)
    shape = h.shape
    # Every synapse as one element of flat arrays: its space hash, presynaptic neuron
    # and that neuron's coordinates.
    g = _lowbias32(h ^ _u32(_STREAM_SPACE)).ravel()
    pre = jnp.broadcast_to(rows[:, None], shape).ravel()
    origin = [jnp.broadcast_to(x[:, None], shape).ravel()
              for x in _grid_positions(rows, sp.pre_shape, sp.extent, dtype)]

    def attempt(i, g, pre, origin):
        disp = _displacements(
            _lowbias32(g + i.astype(jnp.uint32) * _u32(_GOLDEN)), sp.profile, sp.width, dim, dtype
        )
        pos = [x0 + dx for x0, dx in zip(origin, disp)]
        ok = jnp.ones(g.shape, bool)
        if sp.periodic:
            pos = [jnp.mod(x, ext) for x, ext in zip(pos, sp.extent)]
        else:
            for x, ext in zip(pos, sp.extent):
                ok = ok & (x >= 0.0) & (x < ext)
        pos = [jnp.clip(x, 0.0, ext) for x, ext in zip(pos, sp.extent)]
        tgt = _grid_index(pos, sp.post_shape, sp.extent)
        if exclude_self:
            ok = ok & (tgt != pre)
        return tgt, ok

    first, ok = attempt(jnp.asarray(0, jnp.int32), g, pre, origin)
    if not (exclude_self or not sp.periodic):
        return first.reshape(shape)  # on a torus or ring every draw is accepted
    # Draws 1, 2, ... for the synapses not yet accepted, over all of them (gathering
    # the few rejected ones, `jnp.nonzero`, costs about a pass on CPU; so did an
    # unconditional second draw), until every one is accepted or `_MAX_DRAWS` were
    # made; the first draw stays where none is accepted.
    tgt, done = jax.lax.while_loop(
        lambda c: (c[0] < _MAX_DRAWS) & ~jnp.all(c[2]),
        lambda c: (c[0] + 1, *_accept(attempt(c[0], g, pre, origin), c[1], c[2])),
        (jnp.asarray(1, jnp.int32), first, ok),
    )[1:]
    tgt, done = tgt.reshape(shape), done.reshape(shape)
    if exclude_self:
        # The fallback: the first draw (kept in `tgt` where never accepted), clipped to
        # the space, moved off the presynaptic neuron to its neighbour along the last
        # dimension (the next index, or the previous one at the last grid point).
        n_last = sp.post_shape[-1]
        last = rows[:, None] % n_last
        neighbour = jnp.where(last + 1 < n_last, rows[:, None] + 1, rows[:, None] - 1)
        tgt = jnp.where(~done & (tgt == rows[:, None]), neighbour, tgt)
    return tgt


# ----------------------------------------------------------------------------- delivery

# Rows regenerated per iteration of the backward pass: about this many synapses, so its
# temporaries stay small however large the projection.
_GRAD_BLOCK_SYNAPSES = 1 << 16


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _procedural_deliver(weights, act, buffer, seed, where, spec: _Spec):
    # where = (active rows, their count, ring-buffer slot, first target held by
    # `buffer` or None when it holds the whole population).
    loop = functools.partial(_loop_deliver, weights, act, buffer, seed, where, spec)
    if spec.kernel == "loop" or isinstance(weights, AbstractDistribution) or spec.spatial:
        # The compiled kernel regenerates uniform targets with a scalar weight: weight
        # draws and distance profiles take the pure-JAX loop.
        return loop()
    native = functools.partial(
        _native_deliver, weights, act, buffer, seed, where[2], where[3], spec
    )
    if spec.kernel == "native":
        _require_cpu()
        return native()
    return jax.lax.platform_dependent(
        cpu=native if native_kernel_available() else loop, default=loop
    )


def _native_deliver(weight, act, buffer, seed, slot, start, spec: _Spec):
    # The row loop of neurojax/_native/events.cc with the same hash: no compaction,
    # one pass over `act`, k hashes and adds per event. The slot is passed as the step
    # with no delay; targets outside `[start, start + buffer width)` are skipped.
    _require_native()
    dtype = buffer.dtype
    call = native_call(
        _native.DELIVER_PROCEDURAL, (True, False, False, False, True, True), 4,
        (("k", np.int64(spec.k)), ("exclude_self", np.int64(spec.exclude_self)),
         ("delay_steps", np.int64(0)), ("n_post", np.int64(spec.n_post))),
    )
    return call(
        act.astype(dtype)[None],
        jnp.reshape(weight, (1,)).astype(dtype),
        jnp.reshape(seed, (1,)).astype(jnp.uint32),
        jnp.zeros((1,), jnp.int32) if start is None else jnp.reshape(start, (1,)).astype(jnp.int32),
        buffer,
        jnp.reshape(slot, (1,)).astype(jnp.int32),
    )


def _loop_deliver(weights, act, buffer, seed, where, spec: _Spec):
    rows_all, count, slot, start = where
    n_pre, n_local = act.shape[0], buffer.shape[1]
    flat_size = buffer.size
    chunk = spec.chunk

    # Like `_sparse_deliver`: ceil(count / chunk) iterations over the compacted active
    # rows, each regenerating `chunk` rows of synapses and scatter-adding them.
    def scatter_rows(i, flat):
        rows = jax.lax.dynamic_slice_in_dim(rows_all, i * chunk, chunk)
        a = _padded_take(act, rows, 0.0)
        tgt, w = _synapses(seed, weights, rows, spec)
        local, held = _local_targets(tgt, start, n_local)
        # Padding rows (== n_pre) and targets outside the buffer's slice write past
        # the end of the buffer and are dropped.
        idx = jnp.where((rows[:, None] < n_pre) & held, slot * n_local + local, flat_size)
        vals = jnp.broadcast_to(w * a[:, None], idx.shape)
        return flat.at[idx.ravel()].add(vals.ravel(), mode="drop")

    n_chunks = (count + chunk - 1) // chunk
    rows_all = jnp.concatenate([rows_all, jnp.full((chunk,), n_pre, rows_all.dtype)])
    flat = jax.lax.fori_loop(0, n_chunks, scatter_rows, buffer.reshape(-1))
    return flat.reshape(buffer.shape)


def _procedural_deliver_fwd(weights, act, buffer, seed, where, spec):
    out = _procedural_deliver(weights, act, buffer, seed, where, spec)
    # O(n_pre) residuals: the synapses are regenerated in the backward pass.
    return out, (weights, act, seed, where[2], where[3])


def _procedural_deliver_bwd(spec, res, g_buffer):
    weights, act, seed, slot, start = res
    g_row = g_buffer[slot]
    n_local = g_row.shape[0]
    n_pre = act.shape[0]
    block = max(1, min(n_pre, _GRAD_BLOCK_SYNAPSES // max(spec.k, 1)))
    n_blocks = -(-n_pre // block)
    act_pad = jnp.pad(act, (0, n_blocks * block - n_pre))

    # The delivered input's contribution to the loss, for one block of rows; its
    # gradient is the dense-equivalent one, for every row (spiking or not), which the
    # surrogate gradient of the presynaptic neurons needs.
    def contribution(weights, a, rows):
        tgt, w = _synapses(seed, weights, rows, spec)
        local, held = _local_targets(tgt, start, n_local)
        # Synapses onto neurons outside the buffer's slice deliver nothing here.
        g = jnp.where(held, g_row[jnp.where(held, local, 0)], 0.0)
        return jnp.sum(a[:, None] * w * g)

    grad = jax.grad(contribution, argnums=(0, 1))

    def body(i, carry):
        g_w, g_act = carry
        rows = i * block + jnp.arange(block, dtype=jnp.int32)
        gw, ga = grad(weights, jax.lax.dynamic_slice_in_dim(act_pad, i * block, block), rows)
        g_w = jax.tree.map(jnp.add, g_w, gw)
        return g_w, jax.lax.dynamic_update_slice_in_dim(g_act, ga, i * block, axis=0)

    zeros = (jax.tree.map(jnp.zeros_like, weights), jnp.zeros_like(act_pad))
    g_w, g_act = jax.lax.fori_loop(0, n_blocks, body, zeros)
    return g_w, g_act[:n_pre], g_buffer, None, None


_procedural_deliver.defvjp(_procedural_deliver_fwd, _procedural_deliver_bwd)


class ProceduralWeights(eqx.Module):
    """Synapses regenerated from a seed at every use (built by `Procedural`).

    Memory is O(1) per projection: the seed, the weight parameters and static sizes.
    `deliver` is event-driven like `SparseWeights.deliver` (ceil(events / chunk)
    iterations, no event dropped), and its custom VJP gives the dense-equivalent
    gradient w.r.t. the weight parameters and the presynaptic activity, regenerating
    every synapse in the backward pass (O(synapses) compute, O(n_pre) residuals).

    **Fields:**

    - `seed`: 32-bit seed of the synapse hash (a uint32 scalar).
    - `weights`: A scalar weight shared by every synapse, or a `Normal`, `Uniform` or
      `LogNormal` whose (scalar array) parameters are differentiable leaves and whose
      draws are regenerated per synapse. Units of the projection's receptor.
    - `n_pre`, `n_post`: Population sizes.
    - `k`: Synapses per presynaptic neuron.
    - `exclude_self`: Targets exclude the presynaptic neuron's own index (no autapses).
    - `chunk`: Active rows regenerated and scattered per loop iteration (`Procedural`
      sets n_pre / 10000 within [16, 256] unless its layout gives one).
    - `spatial`: `None` (uniform targets), or the static description of a distance
      profile on grids (`Procedural(profile=...)`; see `_spatial_targets`).
    - `kernel`: `"auto"` (the compiled CPU row loop on CPU when it was built, the
      weight is a scalar and there is no distance profile, else the pure-JAX loop, on every platform: there is no event
      buffer, so no burst can overflow), `"native"` or `"loop"`; see
      `nj.connectivity.Sparse`.
    - `post_axis`, `n_post_local`: Set by `simulate_sharded(method="shard_map")` for
      the copy each device holds (both `None` otherwise): inside `jax.shard_map` over
      the mesh axis `post_axis`, device `i` owns the postsynaptic neurons
      `[i * n_post_local, (i + 1) * n_post_local)` and its ring buffer has
      `n_post_local` columns. Every device regenerates the same synapses (targets
      drawn from all `n_post` neurons, from the same hashes) and delivers only those
      onto its own neurons, at local indices; `synapses()` and `matrix()` still
      describe the whole projection.
    """

    seed: UInt32[Array, ""]
    weights: WeightSpec
    n_pre: int = eqx.field(static=True)
    n_post: int = eqx.field(static=True)
    k: int = eqx.field(static=True)
    exclude_self: bool = eqx.field(static=True, default=False)
    chunk: int = eqx.field(static=True, default=16)
    kernel: str = eqx.field(static=True, default="auto")
    post_axis: str | None = eqx.field(static=True, default=None)
    n_post_local: int | None = eqx.field(static=True, default=None)
    spatial: _Spatial | None = eqx.field(static=True, default=None)
    # `deliver` takes the presynaptic population's `compact_events`, computed once.
    event_driven: ClassVar[bool] = True

    def __check_init__(self):
        if (self.post_axis is None) != (self.n_post_local is None):
            raise ValueError(
                "ProceduralWeights needs both post_axis (a mesh axis name) and "
                "n_post_local [neurons per device] or neither; got "
                f"post_axis={self.post_axis!r}, n_post_local={self.n_post_local!r}."
            )
        if self.spatial is not None and (
            math.prod(self.spatial.pre_shape) != self.n_pre
            or math.prod(self.spatial.post_shape) != self.n_post
        ):
            raise ValueError(
                f"ProceduralWeights spatial grids {self.spatial.pre_shape} -> "
                f"{self.spatial.post_shape} [neurons per dimension] must hold n_pre = "
                f"{self.n_pre} and n_post = {self.n_post} neurons."
            )
        if self.n_post_local is not None and not 1 <= self.n_post_local <= self.n_post:
            raise ValueError(
                f"ProceduralWeights n_post_local [neurons per device] must lie in "
                f"[1, n_post = {self.n_post}], got {self.n_post_local!r}."
            )

    @property
    def _spec(self) -> _Spec:
        return _Spec(self.n_post, self.k, self.exclude_self, self.chunk, self.kernel,
                     self.spatial)

    def synapses(self) -> tuple[Int[Array, "pre k"], Float[Array, "*pre_k"]]:
        """Every synapse, regenerated: targets of shape `(n_pre, k)` and the weights
        (a scalar, or shape `(n_pre, k)` for a distribution). O(synapses) memory."""
        return _all_synapses(self.seed, self.weights, self.n_pre, self._spec)

    def matrix(self) -> Float[Array, "post pre"]:
        """The equivalent dense `(post, pre)` matrix (for analysis and tests at small n);
        multapses add up."""
        tgt, w = self.synapses()
        pre = jnp.broadcast_to(jnp.arange(self.n_pre)[:, None], tgt.shape)
        w = jnp.broadcast_to(w, tgt.shape)
        return jnp.zeros((self.n_post, self.n_pre), w.dtype).at[tgt, pre].add(w)

    def deliver(
        self,
        buffer: Float[Array, "slots post"],
        act: Float[Array, " pre"],
        step: Int[Array, ""],
        delay_steps: int,
        dt: float,
        events: Events | None = None,
        support: Bool[Array, " pre"] | None = None,
    ) -> Float[Array, "slots post"]:
        """Regenerate the synapses of active presynaptic neurons and scatter-add
        `weight * act` into the slot read `delay_steps` steps from now. `events` is
        `compact_events(act)`, computed once per presynaptic population. `support` is
        unused (the backward pass regenerates every row; see `SparseWeights.deliver`). With
        `post_axis` set (inside `jax.shard_map`), `buffer` holds this device's
        `n_post_local` neurons and only the synapses onto them are added."""
        events = compact_events(act) if events is None else events
        slot = (step + delay_steps) % buffer.shape[0]
        start = None
        if self.post_axis is not None:
            start = jax.lax.axis_index(self.post_axis).astype(jnp.int32) * self.n_post_local
        width = self.n_post if self.n_post_local is None else self.n_post_local
        if buffer.shape[1] != width:
            raise ValueError(
                f"ProceduralWeights.deliver: the ring buffer holds {buffer.shape[1]} "
                f"postsynaptic neurons, but this projection delivers to {width}."
            )
        return _procedural_deliver(
            self.weights, act, buffer, self.seed, (events.rows, events.count, slot, start),
            self._spec,
        )


# ----------------------------------------------------------------------------- the rule


def _seed(key: PRNGKeyArray) -> UInt32[Array, ""]:
    return jax.random.bits(key, (), dtype=jnp.uint32)


class Procedural(AbstractConnectivity):
    r"""Procedural connectivity: each presynaptic neuron makes exactly `out_degree`
    synapses onto targets drawn uniformly **with replacement**, regenerated from a seed
    at every use instead of stored (see the module docstring; O(N) memory).

    Statistics, with $K$ = out-degree and $c$ candidate targets ($c = n_{post}$, or
    $n_{post} - 1$ in a recurrent projection without autapses, which are excluded by
    default as in the other rules):

    - out-degree exactly $K$ (counting multapses);
    - in-degree of each neuron $\sim \mathrm{Binomial}(n'_{pre} K, 1/c)$ with
      $n'_{pre}$ the presynaptic neurons that may reach it: mean
      $K n_{pre} / n_{post}$ ($K$ when recurrent), variance just below the mean.
      This spread of inputs differs from `FixedInDegree` (variance 0) and is
      close to `FixedProbability(K / c)` (variance $K(1 - K/c)$);
    - multapses: a pair has $\mathrm{Binomial}(K, 1/c)$ synapses, so some target of a
      neuron repeats with probability about $1 - e^{-K(K-1)/2c}$ (0.3 % of neurons for
      $K$ = 80 among 1M, 55 % among 4000); they add up.

    Weights are the projection's `weight`: a scalar, or `Normal`, `Uniform` or
    `LogNormal`, drawn per synapse from the same hash (Box–Muller normals, tails cut at
    5.8 standard deviations). Delays are the projection's homogeneous `delay`; per-synapse
    delays or weight arrays need stored synapses (`FixedInDegree`, `FixedProbability`)
    and raise `ValueError`. A `Sparse(chunk=..., kernel=...)` layout sets the rows
    regenerated per loop iteration and the kernel (`"auto"`, `"native"` or `"loop"`;
    there is no event buffer, so `capacity` is ignored and `"buffer"` raises); the
    default chunk, with `layout=None` or `Sparse()` alike, is n_pre / 10000 within
    [16, 256] (see `_default_chunk`); `Dense()` raises.

    **Distance-dependent variant.** With `profile="gaussian"` or `"exponential"` and a
    `width`, the populations' space (`Population(..., space=...)`) must be a regular
    grid: a `Ring`, a `Line` or a `Sheet(layout="grid")` (a square number of neurons;
    pre and post of one geometry, their grids may differ). Each presynaptic neuron $j$
    still makes exactly $K$ synapses; the target of synapse $k$ is the postsynaptic
    grid neuron nearest $x_j + \delta_{jk}$, where the displacement $\delta_{jk}$ is
    drawn from the hash with density proportional to the profile of `DistanceDependent`
    ($f(d) = e^{-d^2/2\sigma^2}$ or $e^{-d/\lambda}$; Box–Muller for the Gaussian, a
    Gamma(2, $\lambda$) radius at a uniform angle for the 2-D exponential) and wrapped
    across periodic boundaries. So the expected number of synapses from $j$ onto $i$ is
    $K$ times the profile's normalised density integrated over $i$'s grid cell: the
    spatial profile of `DistanceDependent(p=...)` at a fixed out-degree (on a periodic
    grid with a width of a few grid spacings or more, where the cell average of $f$ is
    close to its value at the grid point, `DistanceDependent(p=p)` has about the same
    expected matrix for $K = p \sum_i f(d_{ij})$). On a non-periodic `Line` or `Sheet`, draws landing
    outside are redrawn (rejection): neurons near an edge keep $K$ synapses, with the
    profile renormalised to the space. Draws landing on the neuron itself are redrawn
    when autapses are excluded; after 16 rejected draws of one synapse a documented
    deterministic fallback applies (see `_spatial_targets`; a fraction $q^{16}$ of the
    synapses, $q$ the rejection probability of one draw). The in-degree of neuron $i$
    is a sum of independent Bernoulli draws: mean $K n_{pre} / n_{post}$, variance
    $K \sum_j P_{ji}(1 - P_{ji})$ with $P_{ji}$ the probability that one synapse of $j$
    lands on $i$ (on a periodic grid with $n_{pre} = n_{post}$:
    $K(1 - \sum_m P_m^2)$ over grid offsets $m$, below the uniform rule's). Random
    layouts (`Sheet(layout="random")`, `Positions`) have no nearest-grid-point map:
    use the stored `DistanceDependent`. The compiled kernel regenerates uniform targets
    only: `kernel="auto"` takes the pure-JAX loop and `"native"` raises.

    **Arguments:**

    - `out_degree`: Synapses per presynaptic neuron $K$ [synapses], in [0, inf).
    - `p`: Alternatively, a mean connection probability in [0, 1]: $K = \mathrm{round}(p\,c)$
      (uniform targets only; a profile takes `out_degree`).
    - `allow_autapses`: Let a recurrent projection's targets include the neuron itself.
    - `profile`: `None` (uniform targets), `"gaussian"` or `"exponential"` (targets
      displaced from the presynaptic neuron by draws from the profile).
    - `width`: The profile's length scale [space units] in (0, inf): the Gaussian
      $\sigma$ or the exponential $\lambda$, as in `DistanceDependent`.

    !!! example

        ```python
        exc = nj.Projection("E", ["E", "I"], nj.connectivity.Procedural(out_degree=80),
                            weight=9.0, synapse=nj.synapses.Exponential(5.0),
                            receptor=nj.synapses.Conductance(0.0))
        # 100k neurons on a 1 mm x 1 mm torus, 100 synapses each within ~0.05 mm:
        sheet = nj.connectivity.Sheet(extent=(1.0, 1.0), periodic=True, layout="grid")
        E = nj.Population("E", 316**2, nj.neurons.LIF(), space=sheet)
        local = nj.Projection("E", "E", nj.connectivity.Procedural(
                                  out_degree=100, profile="gaussian", width=0.05),  # [mm]
                              weight=1.0, synapse=nj.synapses.Exponential(5.0),
                              receptor=nj.synapses.Conductance(0.0))
        ```
    """

    out_degree: int | None = eqx.field(static=True, default=None)
    p: float | None = eqx.field(static=True, default=None)
    allow_autapses: bool = eqx.field(static=True, default=False)
    profile: str | None = eqx.field(static=True, default=None)
    width: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if (self.out_degree is None) == (self.p is None):
            raise ValueError(
                "Procedural needs exactly one of out_degree [synapses] (an integer in "
                "[0, inf)) or p (a mean connection probability in [0, 1]); got "
                f"out_degree={self.out_degree!r}, p={self.p!r}."
            )
        if self.out_degree is not None:
            d = self.out_degree
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0:
                raise ValueError(
                    f"Procedural out_degree [synapses] must be an integer in [0, inf), "
                    f"got {d!r}."
                )
        else:
            check_range(self.p, "Procedural p (mean connection probability)", "", low=0.0, high=1.0)
        if self.profile is None:
            if self.width is not None:
                raise ValueError(
                    "Procedural width [space units] is the length scale of a distance "
                    "profile; give profile='gaussian' or 'exponential' with it."
                )
            return
        if self.profile not in ("gaussian", "exponential"):
            raise ValueError(
                "Procedural profile must be None (uniform targets), 'gaussian' or "
                f"'exponential', got {self.profile!r}."
            )
        if self.p is not None:
            raise ValueError(
                "Procedural with a distance profile takes out_degree [synapses] (an "
                "integer in [0, inf)), not p; for a peak probability use the stored "
                "DistanceDependent(p=...)."
            )
        if self.width is None:
            raise ValueError(
                f"Procedural profile {self.profile!r} needs width [space units] in (0, inf)."
            )
        check_range(self.width, "Procedural width", "space units", low=0.0, low_open=True)

    def _exclude_self(self, autapses_possible: bool) -> bool:
        return autapses_possible and not self.allow_autapses

    def degree(self, n_post: int, autapses_possible: bool) -> int:
        """Synapses per presynaptic neuron for `n_post` targets."""
        if self.out_degree is not None:
            return int(self.out_degree)
        return int(round(self.p * (n_post - self._exclude_self(autapses_possible))))

    def build(
        self,
        key: PRNGKeyArray,
        n_pre: int,
        n_post: int,
        autapses_possible: bool,
        weight: Any = 1.0,
        delay: Any = 0.0,
        layout: Dense | Sparse | None = None,
        name: str = "projection",
        pre_space: Any = None,
        post_space: Any = None,
    ) -> ProceduralWeights:
        """The `ProceduralWeights` container of a projection (what `Network.build` calls,
        with the populations' spaces); `sample(key, ...)` (`sample_between` with a
        profile) with the same key lists the same synapses."""
        if isinstance(delay, (AbstractDistribution, eqx.Module)) or np.ndim(delay) != 0:
            raise ValueError(
                f"{name}: Procedural supports one homogeneous delay [ms] (a scalar in "
                "[0, inf)); per-synapse delays need stored synapses (FixedInDegree, "
                "FixedProbability)."
            )
        if isinstance(layout, Dense):
            raise ValueError(
                f"{name}: Procedural regenerates synapses from a seed; use layout=None "
                "or Sparse(chunk=..., kernel=...), not Dense()."
            )
        kernel = "auto" if layout is None else layout.kernel
        if kernel == "buffer":
            raise ValueError(
                f"{name}: Procedural propagates with kernel 'auto', 'native' or 'loop', "
                "not 'buffer'."
            )
        if kernel == "native" and isinstance(weight, AbstractDistribution):
            raise ValueError(
                f"{name}: the native procedural kernel regenerates targets with a scalar "
                "weight; a weight distribution needs kernel='loop' or 'auto'."
            )
        if kernel == "native" and self.profile is not None:
            raise ValueError(
                f"{name}: the native procedural kernel regenerates uniform targets; a "
                f"distance profile ({self.profile!r}) needs kernel='loop' or 'auto' (which "
                "takes the pure-JAX loop)."
            )
        spatial = None
        if self.profile is not None:
            spatial = self._spatial(pre_space, post_space, n_pre, n_post, name)
        exclude_self = self._exclude_self(autapses_possible)
        k = self.degree(n_post, autapses_possible)
        if k > 0 and n_post - exclude_self < 1:
            raise ValueError(
                f"{name}: Procedural has no candidate target: n_post [neurons] must lie "
                f"in [{1 + exclude_self}, inf) without autapses, got {n_post}."
            )
        return ProceduralWeights(
            seed=_seed(key),
            weights=_weight_leaves(weight, name),
            n_pre=n_pre,
            n_post=n_post,
            k=k,
            exclude_self=exclude_self,
            chunk=(
                _default_chunk(n_pre) if layout is None or layout.chunk is None else layout.chunk
            ),
            kernel=kernel,
            spatial=spatial,
        )

    def _spatial(self, pre_space, post_space, n_pre, n_post, name) -> _Spatial:
        """The grids of both populations, checked (a profile needs regular grids)."""
        if pre_space is None or post_space is None:
            raise ValueError(
                f"{name}: Procedural profile {self.profile!r} needs both populations in a "
                "space, e.g. Population(..., space=nj.connectivity.Sheet(extent=(1.0, 1.0), "
                "layout='grid'))."
            )
        if pre_space.geometry != post_space.geometry:
            raise ValueError(
                f"{name}: the pre- and postsynaptic populations lie in different spaces "
                f"({pre_space.geometry} and {post_space.geometry}); distances are defined "
                "within one geometry."
            )
        shapes = []
        for space, n in ((pre_space, n_pre), (post_space, n_post)):
            if isinstance(space, (Ring, Line)):
                shapes.append((n,))
            elif isinstance(space, Sheet) and space.layout == "grid":
                side = math.isqrt(n)
                if side * side != n:
                    raise ValueError(
                        f"{name}: Sheet layout 'grid' needs a square number of neurons, got "
                        f"n = {n} (nearest: {side * side} or {(side + 1) ** 2})."
                    )
                shapes.append((side, side))
            else:
                layout = (f"Sheet(layout={space.layout!r})" if isinstance(space, Sheet)
                          else type(space).__name__)
                raise ValueError(
                    f"{name}: Procedural profile {self.profile!r} maps displaced targets to "
                    "the nearest neuron of a regular grid (Ring, Line or "
                    f"Sheet(layout='grid')); the layout {layout} has none. Use the stored "
                    "nj.connectivity.DistanceDependent for random or given positions."
                )
        return _Spatial(
            profile=self.profile, width=float(self.width),
            extent=tuple(float(e) for e in post_space.extent),
            periodic=bool(post_space.periodic), pre_shape=shapes[0], post_shape=shapes[1],
        )

    def sample_between(self, key, pre, post, autapses_possible):
        """The synapses that `Network.build` regenerates between two `Population`s,
        listed (O(synapses) memory); needed with a profile (positions come from the
        populations' spaces)."""
        if self.profile is None:
            return self.sample(key, pre.n, post.n, autapses_possible)
        w = self.build(key, pre.n, post.n, autapses_possible, layout=Sparse(kernel="loop"),
                       name=f"{pre.name}->{post.name}", pre_space=pre.space,
                       post_space=post.space)
        tgt, _ = w.synapses()
        return Synapses(pre=np.repeat(np.arange(pre.n), w.k),
                        post=np.asarray(tgt, dtype=int).ravel())

    def sample(self, key, n_pre, n_post, autapses_possible):
        """The synapses `build(key, ...)` regenerates, listed (O(synapses) memory)."""
        if self.profile is not None:
            raise ValueError(
                f"Procedural profile {self.profile!r} needs the populations' space; list "
                "its synapses with sample_between(key, pre, post, autapses_possible) or "
                "ProceduralWeights.synapses()."
            )
        k = self.degree(n_post, autapses_possible)
        rows = jnp.arange(n_pre, dtype=jnp.int32)
        tgt = _targets(_synapse_hashes(_seed(key), rows, k), rows, n_post,
                       self._exclude_self(autapses_possible))
        return Synapses(pre=np.repeat(np.arange(n_pre), k), post=np.asarray(tgt, dtype=int).ravel())


def _default_chunk(n_pre: int) -> int:
    """Rows per iteration when the layout gives no chunk: n_pre / 10000, i.e. a tenth
    of the n_pre / 1000 events per step that `n_pre` neurons emit at 10 Hz and
    dt = 0.1 ms, within [16, 256]. Each iteration has a fixed cost and the last one
    wastes up to a chunk of padding rows; on this project's 2-core CPU, 64 rows beat
    16 (4x) and 256 (1.6x) for 1500 events among 800k neurons, and 16 suits networks
    of a few thousand neurons."""
    return int(min(256, max(16, n_pre // 10_000)))


def _weight_leaves(weight: Any, name: str) -> WeightSpec:
    """The projection's weight as differentiable float leaves."""
    if isinstance(weight, (Normal, Uniform, LogNormal)):
        return jax.tree.map(lambda x: jnp.asarray(x, float), weight)
    if isinstance(weight, AbstractDistribution) or np.ndim(weight) != 0:
        raise ValueError(
            f"{name} weight [receptor units] must be a scalar, Normal, Uniform or LogNormal "
            f"for Procedural (regenerated per synapse); got {type(weight).__name__}. "
            "Weight arrays need stored synapses (FixedInDegree, FixedProbability)."
        )
    check_range(weight, f"{name} weight", "receptor units")
    return jnp.asarray(weight, float)
