r"""Space and features: where neurons sit, what they prefer, and connectivity that
depends on either.

A population is placed in a space by `Population(..., space=...)` and given features
(a preferred orientation, any user coordinate) by `Population(..., features={...})`:

```python
sheet = nj.connectivity.Sheet(extent=(1.0, 1.0), periodic=True)   # a torus [mm]
E = nj.Population("E", 6400, lif, space=sheet,
                  features={"orientation": nj.connectivity.Ring(length=180.0)})
proj = nj.Projection("E", "E", nj.connectivity.DistanceDependent(p=0.2, width=0.1))
tuned = nj.Projection("E", "E", nj.connectivity.FeatureDependent("orientation", p=0.2, kappa=2.0))
```

Spaces (`Ring`, `Line`, `Sheet`, `Positions`) lay `n` neurons out deterministically
(evenly spaced, on a grid, or at given coordinates) and measure displacements, with the
minimum-image convention across periodic boundaries: on a ring of length $L$ two
neurons at $0.05 L$ and $0.95 L$ are $0.1 L$ apart. Pre- and postsynaptic populations
must share one geometry (same kind, extent and periodicity); their layouts may differ
(800 E and 200 I evenly spread over the same ring).

Profiles of the connection probability $p(d) = p \, f(d)$ with $f(0) = 1$:

- `"gaussian"`: $f = \exp(-d^2 / 2\sigma^2)$, `width` $= \sigma$;
- `"exponential"`: $f = \exp(-d / \lambda)$, `width` $= \lambda$;
- `"von_mises"` (`FeatureDependent` on a periodic feature of period $L$):
  $f = \exp(\kappa (\cos(2\pi \Delta / L) - 1))$ (Chariker et al. 2016 use it for
  orientation, $L = 180°$).

Either each pair connects independently with probability $p(d)$ (Bernoulli; the
in-degree of neuron $i$ has mean $\sum_j p_{ij}$ and variance $\sum_j p_{ij}(1-p_{ij})$),
or each postsynaptic neuron draws exactly `in_degree` distinct presynaptic partners with
probability proportional to $f(d)$ (successive sampling without replacement, by the
Gumbel top-k trick). Sampling runs in blocks of postsynaptic rows: memory stays
$O(\text{block} + \text{synapses})$, never an $N \times N$ array; the work is
$O(N_\text{pre} N_\text{post})$ distance evaluations, or, for short-ranged profiles,
$N_\text{post}$ times the neurons within the cutoff radius (a cell list).

These synapses are stored. On regular grids (`Ring`, `Line`, `Sheet(layout="grid")`)
`nj.connectivity.Procedural(out_degree=K, profile=..., width=...)` regenerates the same
profile from a seed at every use instead (O(N) memory, a fixed out-degree).
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import numpy as np

from .._misc import check_range, name_keywords
from .builders import AbstractConnectivity, Synapses, _row_blocks, numpy_rng

__all__ = [
    "AbstractSpace",
    "Ring",
    "Line",
    "Sheet",
    "Positions",
    "DistanceDependent",
    "FeatureDependent",
    "DistanceDelay",
]


class AbstractSpace(eqx.Module):
    """Where `n` neurons sit: `coordinates(n)` of shape `(n, dim)` and the minimum-image
    `displacement` between coordinates."""

    @abc.abstractmethod
    def coordinates(self, n: int) -> np.ndarray:
        """The `(n, dim)` coordinates of `n` neurons laid out in this space."""

    @property
    @abc.abstractmethod
    def geometry(self) -> tuple:
        """What two spaces must share for distances between them to mean anything."""

    @property
    @abc.abstractmethod
    def extent(self) -> tuple[float, ...]:
        """The size of the space along each dimension."""

    @property
    @abc.abstractmethod
    def periodic(self) -> bool:
        """Whether displacements wrap around (ring, torus)."""

    def displacement(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """`a - b` (broadcast, last axis the dimension), wrapped to the nearest image
        across periodic boundaries: each component lies in [-extent/2, extent/2]."""
        d = np.asarray(a, float) - np.asarray(b, float)
        if self.periodic:
            ext = np.asarray(self.extent, float)
            d = d - ext * np.round(d / ext)
        return np.asarray(d)

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Euclidean distance between coordinates (minimum image where periodic)."""
        d = self.displacement(a, b)
        return np.asarray(np.sqrt(np.sum(d * d, axis=-1)))


# How each space spells its size (a wrong keyword's error repeats it): one number for
# the 1-D spaces, one per dimension for the others.
_SIZES = ("Spaces: Ring(length) wraps around and Line(length) does not, one number each; "
          "Sheet(extent=(lx, ly), periodic=...) and Positions(xyz, extent=..., periodic=...) "
          "take one size per dimension.")


def _evenly(n: int, length: float) -> np.ndarray:
    # Cell centres: n neurons tile [0, length) with equal gaps, also across a wrap.
    return ((np.arange(n) + 0.5) * (length / n))[:, None]


@name_keywords(_SIZES)
class Ring(AbstractSpace):
    """A periodic line of circumference `length` (any unit: mm, or degrees for an
    orientation feature), neurons evenly spaced at $(i + 1/2) L / n$.

    **Arguments:**

    - `length`: Circumference, > 0 (the unit of the profile `width`).
    """

    length: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        check_range(self.length, "Ring length", "space units", low=0.0, low_open=True)

    def coordinates(self, n):
        return _evenly(n, self.length)

    @property
    def geometry(self):
        return ("ring", self.length)

    @property
    def extent(self):
        return (self.length,)

    @property
    def periodic(self):
        return True


@name_keywords(_SIZES)
class Line(AbstractSpace):
    """A segment [0, `length`) without wrap-around, neurons evenly spaced.

    **Arguments:**

    - `length`: Length, > 0 (the unit of the profile `width`).
    """

    length: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        check_range(self.length, "Line length", "space units", low=0.0, low_open=True)

    def coordinates(self, n):
        return _evenly(n, self.length)

    @property
    def geometry(self):
        return ("line", self.length)

    @property
    def extent(self):
        return (self.length,)

    @property
    def periodic(self):
        return False


@name_keywords(_SIZES)
class Sheet(AbstractSpace):
    """A 2-D rectangle [0, lx) x [0, ly), a torus when `periodic`.

    **Arguments:**

    - `extent`: `(lx, ly)`, both > 0 (the unit of the profile `width`).
    - `periodic`: Wrap around both edges (a torus), avoiding boundary effects.
    - `layout`: `"grid"` (a square grid of cell centres: `n` must be a perfect square)
      or `"random"` (uniform positions drawn from `seed`, so every build of the
      population places it identically).
    - `seed`: The seed of the random layout.
    """

    extent_: tuple[float, float] = eqx.field(static=True)
    periodic_: bool = eqx.field(static=True)
    layout: str = eqx.field(static=True)
    seed: int = eqx.field(static=True)

    def __init__(self, extent=(1.0, 1.0), periodic=True, layout="grid", seed=0):
        if np.ndim(extent) != 1 or len(extent) != 2:
            raise ValueError(f"Sheet extent must be (lx, ly), got {extent!r}.")
        for v, axis in zip(extent, "xy"):
            check_range(v, f"Sheet extent l{axis}", "space units", low=0.0, low_open=True)
        if layout not in ("grid", "random"):
            raise ValueError(f"Sheet layout must be 'grid' or 'random', got {layout!r}.")
        self.extent_ = (float(extent[0]), float(extent[1]))
        self.periodic_ = bool(periodic)
        self.layout = layout
        self.seed = int(seed)

    def coordinates(self, n):
        lx, ly = self.extent_
        if self.layout == "random":
            rng = np.random.default_rng(self.seed)
            return rng.random((n, 2)) * np.asarray([lx, ly])
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(
                f"Sheet layout 'grid' needs a square number of neurons, got n = {n} "
                f"(nearest: {side * side} or {(side + 1) ** 2}); use layout='random' or "
                "nj.connectivity.Positions for other sizes."
            )
        x, y = np.meshgrid((np.arange(side) + 0.5) * (lx / side),
                           (np.arange(side) + 0.5) * (ly / side), indexing="ij")
        return np.stack([x.ravel(), y.ravel()], axis=1)

    @property
    def geometry(self):
        return ("sheet", self.extent_, self.periodic_)

    @property
    def extent(self):
        return self.extent_

    @property
    def periodic(self):
        return self.periodic_


@name_keywords(_SIZES)
class Positions(AbstractSpace):
    """Given coordinates, e.g. soma positions from a reconstruction.

    **Arguments:**

    - `xyz`: `(n, dim)` coordinates.
    - `extent`: The box size per dimension; needed only when `periodic`.
    - `periodic`: Wrap displacements around the box.
    """

    # Stored as bytes and shape: static fields must be hashable, and an array is not.
    _data: bytes = eqx.field(static=True)
    _shape: tuple[int, int] = eqx.field(static=True)
    extent_: tuple[float, ...] | None = eqx.field(static=True)
    periodic_: bool = eqx.field(static=True)

    def __init__(self, xyz, extent=None, periodic=False):
        xyz = np.asarray(xyz, float)
        if xyz.ndim == 1:
            xyz = xyz[:, None]
        if xyz.ndim != 2 or not np.all(np.isfinite(xyz)):
            raise ValueError(f"Positions xyz must be finite (n, dim) coordinates, got shape {xyz.shape}.")
        if periodic and (extent is None or len(extent) != xyz.shape[1]):
            raise ValueError(
                f"Positions with periodic=True need extent, one size per dimension "
                f"({xyz.shape[1]}), got {extent!r}."
            )
        if extent is not None:
            for v in extent:
                check_range(v, "Positions extent", "space units", low=0.0, low_open=True)
        self._data = np.ascontiguousarray(xyz, np.float64).tobytes()
        self._shape = tuple(xyz.shape)
        self.extent_ = None if extent is None else tuple(float(v) for v in extent)
        self.periodic_ = bool(periodic)

    @property
    def xyz(self) -> np.ndarray:
        """The `(n, dim)` coordinates."""
        return np.frombuffer(self._data, np.float64).reshape(self._shape)

    def coordinates(self, n):
        if n != self.xyz.shape[0]:
            raise ValueError(f"Positions holds {self.xyz.shape[0]} coordinates for a population of {n}.")
        return self.xyz

    @property
    def geometry(self):
        return ("positions", self.xyz.shape[1], self.extent_, self.periodic_)

    @property
    def extent(self):
        return self.extent_ if self.extent_ is not None else tuple(np.ptp(self.xyz, axis=0))

    @property
    def periodic(self):
        return self.periodic_


_PROFILES = ("gaussian", "exponential", "von_mises")


def _profile(d: np.ndarray, kind: str, width: float, period: float | None) -> np.ndarray:
    if kind == "gaussian":
        return np.exp(-0.5 * (d / width) ** 2)
    if kind == "exponential":
        return np.exp(-d / width)
    # von Mises in the (wrapped) difference d on a ring of this period; width = kappa.
    return np.exp(width * (np.cos(2.0 * np.pi * d / period) - 1.0))


# The cell-list sampler ignores partners beyond the radius where the profile has fallen
# to this fraction of its peak: R = 5.7 sigma (Gaussian) or 16.1 lambda (exponential).
# The expected number of synapses missed is at most 1e-7 of the in-degree on a 2-D sheet
# (the tail integral of a Gaussian beyond R is f(R) times the total), 1e-3 synapses in a
# 1e5-neuron network with 100 synapses each: far below any statistical test's reach.
_TAIL = 1e-7
# Post neurons per cell that the cell-list sampler aims at, at least: fewer means a
# Python iteration per handful of neurons.
_MIN_PER_CELL = 32


def _cutoff(kind: str, width: float) -> float | None:
    if kind == "gaussian":
        return width * math.sqrt(2.0 * math.log(1.0 / _TAIL))
    if kind == "exponential":
        return width * math.log(1.0 / _TAIL)
    return None  # von Mises: bounded below by exp(-2 kappa), no useful cutoff


def _draw_rows(rng, f, p, in_degree, self_mask):
    """(row, column) pairs of the synapses drawn for one block of profile values `f`
    (rows: postsynaptic neurons, columns: candidates)."""
    if self_mask is not None:
        f[self_mask] = 0.0
    if in_degree is None:
        return np.nonzero(rng.random(f.shape, dtype=f.dtype) < f.dtype.type(p) * f)
    with np.errstate(divide="ignore"):
        keys = np.log(f) + rng.gumbel(size=f.shape)
    j = np.sort(np.argpartition(-keys, in_degree - 1, axis=1)[:, :in_degree], axis=1).ravel()
    return np.repeat(np.arange(f.shape[0]), in_degree), j


def _profile_of_d2(d2, kind: str, width: float):
    """The Gaussian or exponential profile from squared distances."""
    if kind == "gaussian":
        return np.exp(d2 * (-0.5 / width**2))
    return np.exp(np.sqrt(d2) * (-1.0 / width))


# Candidates whose bound is below p / 2^_TAIL_CLASS share one class: their first-stage
# draws are rare anyway (at most rows x candidates x p / 4096), and fewer classes mean
# fewer, larger array operations.
_TAIL_CLASS = 12
# Gaps drawn per class at once: the mean number of successes plus this many standard
# deviations (and a little), so a class needs a second round with probability ~1e-9.
_GAP_MARGIN = 6.0


def _bernoulli_thinned(rng, rows_xyz, cand_xyz, kind, p, width):
    """Local `(row, candidate)` indices of synapses drawn independently with probability
    `p f(d)` for every pair of a block (rows: postsynaptic neurons of one cell;
    candidates: presynaptic neurons around it, already at their nearest image), exactly
    as one uniform per pair would, without visiting every pair.

    Each candidate's probability is bounded over all rows by `q_j = p f(dmin_j)`, with
    `dmin_j` its distance to the rows' bounding box. Candidates are grouped in classes
    whose bounds lie within a factor 2 (the far tail in one class); in a class of bound
    `q` (its largest), pairs are first drawn with probability `q` by geometric skipping
    over the class's flattened pairs (the gaps between successes are Geometric(q)), then
    each drawn pair is kept with probability `p f(d_ij) / q <= 1`. The product is
    Bernoulli(`p f(d_ij)`) per pair, independently: the law of the direct draw. The work
    is proportional to the first-stage draws, a small multiple of the synapses, instead
    of rows x candidates (16 / p candidates per synapse for a Gaussian cut at 5.7 sigma:
    ~135 at the V1 table's p = 0.12). All classes are drawn in one set of array
    operations."""
    r = rows_xyz.shape[0]
    empty = np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo, hi = rows_xyz.min(axis=0), rows_xyz.max(axis=0)
    gap = np.maximum(np.maximum(lo - cand_xyz, cand_xyz - hi), 0.0)
    q = p * _profile_of_d2(np.sum(gap * gap, axis=1), kind, width)
    live = np.nonzero(q > 0.0)[0]
    if r == 0 or live.size == 0:
        return empty
    cls = np.minimum(np.floor(np.log2(p / q[live])), _TAIL_CLASS).astype(np.int64)
    order = np.argsort(cls, kind="stable")
    cols, cls = live[order], cls[order]
    starts = np.concatenate([[0], np.nonzero(np.diff(cls))[0] + 1])
    q_c = np.maximum.reduceat(q[cols], starts)                # each class's bound
    n_c = r * np.diff(np.concatenate([starts, [cols.size]]))  # pairs per class
    mean = n_c * q_c
    k_c = np.maximum(np.ceil(mean + _GAP_MARGIN * (np.sqrt(mean) + 2.7)), 1).astype(np.int64)
    seg = np.repeat(np.arange(starts.size), k_c)
    # Geometric(q) gaps by inversion, capped at the class's size (a far class may have
    # q ~ 1e-20: its gap must not overflow).
    u = 1.0 - rng.random(seg.size)                            # in (0, 1]
    with np.errstate(divide="ignore"):
        log_miss = np.log1p(-q_c)   # -inf for q = 1: every gap is 1
    gaps = np.minimum(np.floor(np.log(u) / log_miss[seg]) + 1.0, (n_c + 1.0)[seg])
    total = np.cumsum(gaps)
    before = np.concatenate([[0.0], total[np.cumsum(k_c)[:-1] - 1]])
    pos = (total - before[seg] - 1.0).astype(np.int64)      # 0-based within the class
    last = pos[np.cumsum(k_c) - 1]
    short = np.nonzero(last < n_c)[0]  # a class whose draws ended early (p ~ 1e-9)
    keep = pos < n_c[seg]
    pos, seg = pos[keep], seg[keep]
    extra_pos, extra_seg = [pos], [seg]
    for c in short:
        at = int(last[c])
        while at < n_c[c] - 1:
            u = 1.0 - rng.random(int(k_c[c]))
            g = np.minimum(np.floor(np.log(u) / log_miss[c]) + 1.0, n_c[c] + 1.0)
            more = at + np.cumsum(g).astype(np.int64)
            extra_pos.append(more[more < n_c[c]])
            extra_seg.append(np.full(extra_pos[-1].size, c))
            at = int(more[-1])
    pos, seg = np.concatenate(extra_pos), np.concatenate(extra_seg)
    if pos.size == 0:
        return empty
    i, j = pos % r, cols[starts[seg] + pos // r]
    diff = rows_xyz[i] - cand_xyz[j]
    accept = p * _profile_of_d2(np.sum(diff * diff, axis=1), kind, width) / q_c[seg]
    keep = rng.random(pos.size) < accept
    return i[keep], j[keep]


def _sample_in_cells(rng, pre_xyz, post_xyz, space, kind, p, width, in_degree, no_self):
    """The same draw as `_sample_by_profile`, with candidates restricted to the cells
    within the cutoff radius of each postsynaptic cell (a cell list): work proportional
    to N_post x (neurons within the radius) instead of N_post x N_pre. Returns None when
    the neighbourhood covers most of the space anyway, or (fixed in-degree) when some
    neuron has too few candidates inside the radius."""
    radius = _cutoff(kind, width)
    if radius is None:
        return None
    dim = pre_xyz.shape[1]
    periodic = space.periodic
    if periodic:
        lo, span = np.zeros(dim), np.asarray(space.extent, float)
    else:
        lo = np.minimum(pre_xyz.min(0), post_xyz.min(0))
        span = np.maximum(np.maximum(pre_xyz.max(0), post_xyz.max(0)) - lo, 1e-12) * (1 + 1e-9)
    ncell = np.maximum(1, np.floor(span / (radius / 3.0)).astype(np.int64))
    target = max(1, post_xyz.shape[0] // _MIN_PER_CELL)
    if np.prod(ncell) > target:
        shrink = (np.prod(ncell) / target) ** (1.0 / dim)
        ncell = np.maximum(1, np.floor(ncell / shrink).astype(np.int64))
    size = span / ncell
    reach = np.ceil(radius / size).astype(np.int64)
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    offsets = np.stack([g.ravel() for g in grids], axis=1)
    gaps = np.maximum(np.abs(offsets) - 1, 0) * size
    offsets = offsets[np.sum(gaps * gaps, axis=1) < radius * radius]
    if len(offsets) > 0.5 * np.prod(ncell):
        return None
    if periodic and np.any((reach + 1) * size > span / 2):
        # Candidates are unwrapped once per cell (below), which gives every pair its
        # minimum image only while the neighbourhood spans less than half the space.
        return None

    def cells(xyz):
        idx = np.floor((xyz - lo) / size).astype(np.int64)
        return np.mod(idx, ncell) if periodic else np.clip(idx, 0, ncell - 1)

    strides = np.concatenate([np.cumprod(ncell[::-1])[::-1][1:], [1]])
    pre_cell = cells(pre_xyz) @ strides
    pre_order = np.argsort(pre_cell, kind="stable")
    bounds = np.searchsorted(pre_cell[pre_order], np.arange(np.prod(ncell) + 1))
    post_idx = cells(post_xyz)
    post_cell = post_idx @ strides
    post_order = np.argsort(post_cell, kind="stable")
    post_bounds = np.searchsorted(post_cell[post_order], np.arange(np.prod(ncell) + 1))
    need = (in_degree or 0) + int(no_self)
    pre_out, post_out = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for c in np.nonzero(np.diff(post_bounds))[0]:
        rows = post_order[post_bounds[c]:post_bounds[c + 1]]
        nb = post_idx[rows[0]] + offsets
        if periodic:
            nb = np.mod(nb, ncell)
        else:
            nb = nb[np.all((nb >= 0) & (nb < ncell), axis=1)]
        nb = np.unique(nb @ strides)
        cand = pre_order[np.concatenate([np.arange(bounds[b], bounds[b + 1]) for b in nb])]
        if in_degree is not None and cand.size < need:
            return None
        # Candidates moved to their image nearest the cell centre: then plain differences
        # are minimum-image displacements (see the guard above). Squared distances are
        # summed one dimension at a time (a reduction over a length-2 axis is slow).
        centre = lo + (post_idx[rows[0]] + 0.5) * size
        xc = pre_xyz[cand]
        if periodic:
            xc = centre + space.displacement(xc, centre)
        if in_degree is None:
            # Bernoulli: drawn by thinning, with work proportional to the synapses
            # rather than to the rows x candidates pairs (see `_bernoulli_thinned`).
            i, j = _bernoulli_thinned(rng, post_xyz[rows], xc, kind, p, width)
            if no_self:
                keep = rows[i] != cand[j]
                i, j = i[keep], j[keep]
            post_out.append(rows[i])
            pre_out.append(cand[j])
            continue
        # Single precision: probabilities resolved to 6e-8, the uniforms' own resolution.
        d2 = np.zeros((rows.size, cand.size), np.float32)
        for k in range(dim):
            diff = post_xyz[rows, k].astype(np.float32)[:, None] - xc[:, k].astype(np.float32)[None, :]
            d2 += diff * diff
        if kind == "gaussian":
            f = np.exp(d2 * np.float32(-0.5 / width**2))
        else:
            f = np.exp(np.sqrt(d2) * np.float32(-1.0 / width))
        self_mask = (rows[:, None] == cand[None, :]) if no_self else None
        i, j = _draw_rows(rng, f, p, in_degree, self_mask)
        post_out.append(rows[i])
        pre_out.append(cand[j])
    pre, post = np.concatenate(pre_out), np.concatenate(post_out)
    order = np.lexsort((post, pre))
    return Synapses(pre=pre[order], post=post[order])


def _sample_by_profile(rng, pre_xyz, post_xyz, space, kind, p, width, in_degree, no_self):
    """Synapses drawn with probability `p * f(distance)` per pair (Bernoulli), or exactly
    `in_degree` distinct partners per postsynaptic neuron with probability proportional
    to `f` (Gumbel top-k): from a cell list when the profile is short-ranged, otherwise
    one block of postsynaptic rows against all presynaptic neurons at a time."""
    syn = _sample_in_cells(rng, pre_xyz, post_xyz, space, kind, p, width, in_degree, no_self)
    if syn is not None:
        return syn
    n_pre, n_post = pre_xyz.shape[0], post_xyz.shape[0]
    period = space.extent[0] if kind == "von_mises" else None
    pre, post = [np.zeros(0, int)], [np.zeros(0, int)]
    for start, stop in _row_blocks(n_post, n_pre):
        rows = np.arange(start, stop)
        d = space.distance(post_xyz[start:stop, None, :], pre_xyz[None, :, :])
        self_mask = (rows[:, None] == np.arange(n_pre)[None, :]) if no_self else None
        i, j = _draw_rows(rng, _profile(d, kind, width, period), p, in_degree, self_mask)
        post.append(i + start)
        pre.append(j)
    pre, post = np.concatenate(pre), np.concatenate(post)
    order = np.lexsort((post, pre))
    return Synapses(pre=pre[order], post=post[order])


class _ProfileConnectivity(AbstractConnectivity):
    """Shared checks and sampling of `DistanceDependent` and `FeatureDependent`."""

    def sample(self, key, n_pre, n_post, autapses_possible):
        raise ValueError(
            f"{type(self).__name__} needs the populations' {self._needs}; it is sampled by "
            "Network.build from populations that have them (Population(..., "
            f"{'space=' if self._needs == 'space' else 'features='}...))."
        )

    def _check(self, p, width, what):
        if self.in_degree is None:
            check_range(p, f"{type(self).__name__} connection probability p", "", low=0.0, high=1.0)
        else:
            check_range(self.in_degree, f"{type(self).__name__} in_degree", "synapses", low=1.0)
        check_range(width, f"{type(self).__name__} {what}", "space units" if what == "width" else "",
                    low=0.0, low_open=True)

    def _draw(self, key, pre_space, post_space, n_pre, n_post, autapses_possible, kind, width):
        if pre_space.geometry != post_space.geometry:
            raise ValueError(
                f"{type(self).__name__}: the pre- and postsynaptic populations lie in "
                f"different spaces ({pre_space.geometry} and {post_space.geometry}); "
                "distances are defined within one geometry."
            )
        no_self = autapses_possible and not self.allow_autapses
        if self.in_degree is not None and self.in_degree > n_pre - int(no_self):
            raise ValueError(
                f"{type(self).__name__} in_degree [synapses] must lie in [1, {n_pre - int(no_self)}] "
                f"for {n_pre} presynaptic neurons, got {self.in_degree}."
            )
        return _sample_by_profile(
            numpy_rng(key), pre_space.coordinates(n_pre), post_space.coordinates(n_post),
            post_space, kind, self.p, width, self.in_degree, no_self,
        )


class DistanceDependent(_ProfileConnectivity):
    """Connection probability that falls with the distance between neurons (Rosenbaum
    & Doiron 2014; Rosenbaum et al. 2017), in the space of the populations
    (`Population(..., space=...)`), across periodic boundaries by the minimum image.

    **Arguments:**

    - `p`: Peak probability, at distance 0, in [0, 1] (Bernoulli variant).
    - `width`: The profile's length scale, > 0, in the space's unit (Gaussian sigma or
      exponential lambda).
    - `profile`: `"gaussian"` or `"exponential"`.
    - `in_degree`: If given, every postsynaptic neuron gets exactly this many distinct
      partners, drawn with probability proportional to the profile (`p` unused).
    - `allow_autapses`: Keep self-connections when pre and post are one population.
    """

    p: float = eqx.field(static=True, default=1.0)
    width: float = eqx.field(static=True, default=0.1)
    profile: str = eqx.field(static=True, default="gaussian")
    in_degree: int | None = eqx.field(static=True, default=None)
    allow_autapses: bool = eqx.field(static=True, default=False)
    _needs = "space"

    def __check_init__(self):
        if self.profile not in ("gaussian", "exponential"):
            raise ValueError(
                f"DistanceDependent profile must be 'gaussian' or 'exponential', got {self.profile!r}."
            )
        self._check(self.p, self.width, "width")

    def sample_between(self, key, pre, post, autapses_possible):
        for pop in (pre, post):
            if pop.space is None:
                raise ValueError(
                    f"DistanceDependent: population {pop.name!r} has no space; give it "
                    "one, e.g. Population(..., space=nj.connectivity.Ring(length=1.0))."
                )
        return self._draw(key, pre.space, post.space, pre.n, post.n, autapses_possible,
                          self.profile, self.width)


class FeatureDependent(_ProfileConnectivity):
    """Connection probability that falls with the difference between the neurons' values
    of a feature (`Population(..., features={name: space})`), e.g. like-to-like
    connectivity between orientation-tuned neurons (Ko et al. 2011; Chariker et al.
    2016).

    **Arguments:**

    - `feature`: The feature's name in both populations' `features`.
    - `p`: Peak probability, for equal features, in [0, 1] (Bernoulli variant).
    - `kappa`: Concentration of the von Mises profile, > 0 (periodic features), or the
      width of a Gaussian / exponential profile in the feature's unit.
    - `profile`: `"von_mises"` (a periodic feature: a `Ring`), `"gaussian"` or
      `"exponential"`.
    - `in_degree`, `allow_autapses`: As for `DistanceDependent`.
    """

    feature: str = eqx.field(static=True, default="orientation")
    p: float = eqx.field(static=True, default=1.0)
    kappa: float = eqx.field(static=True, default=1.0)
    profile: str = eqx.field(static=True, default="von_mises")
    in_degree: int | None = eqx.field(static=True, default=None)
    allow_autapses: bool = eqx.field(static=True, default=False)
    _needs = "features"

    def __check_init__(self):
        if self.profile not in _PROFILES:
            raise ValueError(f"FeatureDependent profile must be one of {_PROFILES}, got {self.profile!r}.")
        self._check(self.p, self.kappa, "kappa" if self.profile == "von_mises" else "width")

    def sample_between(self, key, pre, post, autapses_possible):
        for pop in (pre, post):
            if self.feature not in pop.features:
                raise ValueError(
                    f"FeatureDependent: population {pop.name!r} has no feature "
                    f"{self.feature!r}; it has {sorted(pop.features)}. Give it one, e.g. "
                    f"features={{{self.feature!r}: nj.connectivity.Ring(length=180.0)}}."
                )
        space = post.features[self.feature]
        if self.profile == "von_mises" and not isinstance(space, Ring):
            raise ValueError(
                f"FeatureDependent profile 'von_mises' needs a periodic feature (a Ring); "
                f"{self.feature!r} of {post.name!r} is a {type(space).__name__}."
            )
        return self._draw(key, pre.features[self.feature], space, pre.n, post.n,
                          autapses_possible, self.profile, self.kappa)


class DistanceDelay(eqx.Module):
    """Per-synapse delays from the distance between the neurons and a conduction
    velocity: `delay = offset + distance / velocity` [ms], for `Projection(delay=...)`
    between populations that lie in one space. Rounded to whole steps of `dt`, at least
    one, synapse by synapse (as every per-synapse delay).

    **Arguments:**

    - `velocity`: Conduction velocity, > 0, in space units per ms (with positions in mm,
      0.2 mm/ms = 0.2 m/s, slow unmyelinated cortical axons; Bringuier et al. 1999).
    - `offset`: Delay at distance 0 [ms], >= 0 (synaptic delay).
    """

    velocity: float = eqx.field(static=True)
    offset: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        check_range(self.velocity, "DistanceDelay velocity", "space units/ms", low=0.0, low_open=True)
        check_range(self.offset, "DistanceDelay offset", "ms", low=0.0)

    def per_synapse(self, pre, post, syn: Synapses) -> np.ndarray:
        """Delays [ms] of the synapses `syn` from population `pre` to `post`."""
        for pop in (pre, post):
            if pop.space is None:
                raise ValueError(
                    f"DistanceDelay: population {pop.name!r} has no space; give it one, "
                    "e.g. Population(..., space=nj.connectivity.Sheet(extent=(1.0, 1.0)))."
                )
        if pre.space.geometry != post.space.geometry:
            raise ValueError(
                f"DistanceDelay: populations {pre.name!r} and {post.name!r} lie in different "
                f"spaces ({pre.space.geometry} and {post.space.geometry})."
            )
        d = post.space.distance(pre.positions[syn.pre], post.positions[syn.post])
        return self.offset + np.asarray(d, float) / self.velocity
