r"""Connectivity builders: rules that decide which synapses exist.

A builder is sampled once, at `Network.build(key)`, into index lists; the synapses are
then stored in a `DenseWeights` or `SparseWeights` container (see `weights.py`). The
matrix convention throughout is **(post, pre)**: row $i$ of a weight matrix holds the
inputs of postsynaptic neuron $i$, so the summed input is $W r$.
"""

from __future__ import annotations

import abc
import dataclasses

import equinox as eqx
import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from .._misc import check_range


def numpy_rng(key: PRNGKeyArray) -> np.random.Generator:
    """A numpy generator seeded deterministically from a JAX key. Connectivity is
    sampled once outside any trace, where numpy's set-sampling is far cheaper."""
    bits = np.asarray(jax.random.bits(key, (4,), dtype=np.uint32))
    return np.random.default_rng(bits)


@dataclasses.dataclass(frozen=True)
class Synapses:
    """Sampled synapses: parallel index arrays and optional per-synapse values."""

    pre: np.ndarray  # presynaptic index of each synapse
    post: np.ndarray  # postsynaptic index of each synapse
    values: np.ndarray | None = None  # per-synapse weight factors (FromMatrix)
    delays: np.ndarray | None = None  # per-synapse delays [ms] (FromEdges)


class AbstractConnectivity(eqx.Module):
    @abc.abstractmethod
    def sample(
        self, key: PRNGKeyArray, n_pre: int, n_post: int, autapses_possible: bool
    ) -> Synapses:
        """Sample synapses between `n_pre` and `n_post` neurons. `autapses_possible` is
        True when pre and post are the same population."""

    def sample_between(self, key: PRNGKeyArray, pre, post, autapses_possible: bool) -> Synapses:
        """Sample synapses between two `Population`s; what `Network.build` calls. Rules
        that need more than the sizes (positions, features) override it."""
        return self.sample(key, pre.n, post.n, autapses_possible)


# Rows of random draws are generated in blocks of about this many entries, which bounds
# the temporaries (a few arrays of this size) however large the projection.
_BLOCK_ENTRIES = 1 << 22


def _row_blocks(n_rows: int, width: int):
    """Consecutive `(start, stop)` row ranges of about `_BLOCK_ENTRIES` entries."""
    step = max(1, _BLOCK_ENTRIES // max(width, 1))
    return [(s, min(s + step, n_rows)) for s in range(0, n_rows, step)]


def _distinct_per_row(rng: np.random.Generator, n_rows: int, k: int, n: int) -> np.ndarray:
    """Shape `(n_rows, k)`: each row a uniformly random k-subset of `range(n)`, sorted.

    Each row keeps its distinct values and redraws only the duplicates, i.i.d.
    uniform, until it has `k`: the row is the set of the first `k` distinct values of
    an i.i.d. uniform stream, whose law is invariant under relabelling the values and
    hence uniform over k-subsets. When `k > n / 2` the complement (`n - k` values) is
    drawn instead, so a redraw always succeeds with probability >= 1/2 and the loop
    ends after O(log k) rounds."""
    if 2 * k > n:
        excluded = _distinct_per_row(rng, n_rows, n - k, n)
        keep = np.ones((n_rows, n), bool)
        keep[np.arange(n_rows)[:, None], excluded] = False
        return np.nonzero(keep)[1].reshape(n_rows, k)
    picks = np.sort(rng.integers(0, n, size=(n_rows, k)), axis=1)
    rows = np.arange(n_rows)
    while k > 1:
        sub = picks[rows]
        dup = sub[:, 1:] == sub[:, :-1]
        bad = dup.any(axis=1)
        if not bad.any():
            break
        rows, sub, dup = rows[bad], sub[bad], dup[bad]
        sub[:, 1:][dup] = rng.integers(0, n, size=int(dup.sum()))
        picks[rows] = np.sort(sub, axis=1)
    return picks


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    # np.unique hashes first in numpy 2, which is several times slower on large arrays.
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if x.size else x


def _distinct_sorted(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """`m` distinct integers drawn uniformly from `range(n)` (n may exceed 2**32), sorted;
    the same redraw-the-missing argument as `_distinct_per_row`, for `m <= n / 2`."""
    chosen = _sorted_unique(rng.integers(0, n, size=m))
    while chosen.size < m:
        new = _sorted_unique(rng.integers(0, n, size=m - chosen.size))
        pos = np.minimum(np.searchsorted(chosen, new), chosen.size - 1)
        new = new[chosen[pos] != new]
        # Merging two sorted runs: the stable sort (timsort) is linear here.
        chosen = np.sort(np.concatenate([chosen, new]), kind="stable")
    return chosen


def _skip_self(picks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Map draws from `range(n - 1)` to `range(n)` without the row's own index; the map
    is increasing, so sorted rows stay sorted."""
    return picks + (picks >= rows)


class AllToAll(AbstractConnectivity):
    """Every presynaptic neuron connects to every postsynaptic neuron.

    **Arguments:**

    - `allow_autapses`: Keep self-connections when pre and post are one population.
    """

    allow_autapses: bool = eqx.field(static=True, default=False)

    def sample(self, key, n_pre, n_post, autapses_possible):
        post, pre = np.meshgrid(np.arange(n_post), np.arange(n_pre), indexing="ij")
        pre, post = pre.ravel(), post.ravel()
        if autapses_possible and not self.allow_autapses:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return Synapses(pre=pre, post=post)


class FixedProbability(AbstractConnectivity):
    """Each possible synapse exists independently with probability `p`
    (Erdős–Rényi / Bernoulli connectivity, as in Vogels & Abbott 2005).

    **Arguments:**

    - `p`: Connection probability, in [0, 1].
    - `allow_autapses`: Keep self-connections when pre and post are one population.
    """

    p: float = eqx.field(static=True)
    allow_autapses: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        check_range(self.p, "connection probability p", "", low=0.0, high=1.0)

    def sample(self, key, n_pre, n_post, autapses_possible):
        rng = numpy_rng(key)
        no_self = autapses_possible and not self.allow_autapses
        n_choices = n_post - 1 if no_self else n_post
        pre, post = [], []
        # Pairs are flat indices `row * n_choices + column` of one block of rows. Above
        # p = 1/4, Bernoulli draws of every pair cost at most 4x the synapses made;
        # below, the block's synapse count is Binomial(pairs, p) and the pairs a uniform
        # subset of that size, which is the same law (i.i.d. Bernoulli(p) per pair).
        dense = self.p > 0.25
        width = n_choices if dense else int(np.ceil(self.p * n_choices))
        for start, stop in _row_blocks(n_pre, width):
            pairs = (stop - start) * n_choices
            if dense:
                flat = np.flatnonzero(rng.random(pairs) < self.p)
            else:
                flat = _distinct_sorted(rng, int(rng.binomial(pairs, self.p)), pairs)
            rows, cols = np.divmod(flat, n_choices) if n_choices else (flat, flat)
            rows = rows + start
            pre.append(rows)
            post.append(_skip_self(cols, rows) if no_self else cols)
        if not pre:
            return Synapses(pre=np.zeros(0, int), post=np.zeros(0, int))
        return Synapses(pre=np.concatenate(pre).astype(int, copy=False),
                        post=np.concatenate(post).astype(int, copy=False))


class FixedInDegree(AbstractConnectivity):
    """Each postsynaptic neuron receives exactly `k` synapses from distinct,
    randomly chosen presynaptic neurons (Brunel 2000's $C_E$, $C_I$).

    **Arguments:**

    - `k`: In-degree, at most the number of presynaptic candidates.
    - `allow_autapses`: Keep self-connections when pre and post are one population.
    """

    k: int = eqx.field(static=True)
    allow_autapses: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        check_range(self.k, "in-degree k", "synapses", low=0.0)

    def sample(self, key, n_pre, n_post, autapses_possible):
        no_self = autapses_possible and not self.allow_autapses
        candidates = n_pre - 1 if no_self else n_pre
        if self.k > candidates:
            raise ValueError(
                f"in-degree k [synapses] must lie in [0, {candidates}] for {n_pre} "
                f"presynaptic neurons, got {self.k}."
            )
        rng = numpy_rng(key)
        blocks = [np.zeros((0, self.k), int)]
        for start, stop in _row_blocks(n_post, candidates if 2 * self.k > candidates else self.k):
            picks = _distinct_per_row(rng, stop - start, self.k, candidates)
            if no_self:
                picks = _skip_self(picks, np.arange(start, stop)[:, None])
            blocks.append(picks)
        pre = np.concatenate(blocks).ravel()
        post = np.broadcast_to(np.arange(n_post)[:, None], (n_post, self.k)).ravel()
        return Synapses(pre=pre.astype(int, copy=False), post=post)


class FromMatrix(AbstractConnectivity):
    """Synapses and their weights read from a matrix of shape **(n_post, n_pre)**,
    dense (numpy / JAX) or `scipy.sparse`. Non-zero entries become synapses whose weight
    is the entry times the projection's `weight` (default 1).

    **Arguments:**

    - `matrix`: The (post, pre) weight matrix, e.g. a connectome.
    """

    matrix: object

    @classmethod
    def split_signs(cls, matrix) -> tuple["FromMatrix", "FromMatrix"]:
        """A signed matrix (dense or `scipy.sparse`, shape (n_post, n_pre)) as two
        non-negative ones: the excitatory part (positive entries) and the magnitudes of
        the inhibitory part (negative entries), e.g. for conductance-based projections
        whose weights are never negative:

        ```python
        exc, inh = nj.connectivity.FromMatrix.split_signs(connectome)
        nj.Projection("X", "X", exc, weight=1.0, receptor=nj.synapses.Conductance(0.0))
        nj.Projection("X", "X", inh, weight=1.0, receptor=nj.synapses.Conductance(-80.0))
        ```
        """
        if hasattr(matrix, "tocsr"):  # scipy.sparse
            m = matrix.tocsr()
            return cls(m.multiply(m > 0)), cls(-m.multiply(m < 0))
        m = np.asarray(matrix, dtype=float)
        return cls(np.where(m > 0, m, 0.0)), cls(np.where(m < 0, -m, 0.0))

    def sample(self, key, n_pre, n_post, autapses_possible):
        m = self.matrix
        if hasattr(m, "tocoo"):  # scipy.sparse
            coo = m.tocoo()
            shape, post, pre, vals = coo.shape, coo.row, coo.col, coo.data
        else:
            dense = np.asarray(m, dtype=float)
            shape = dense.shape
            if dense.ndim != 2:
                raise ValueError(
                    f"FromMatrix matrix must be 2-D (n_post, n_pre), got shape {shape}."
                )
            post, pre = np.nonzero(dense)
            vals = dense[post, pre]
            if np.isnan(dense).any():
                bad = np.argwhere(np.isnan(dense))[0]
                raise ValueError(
                    f"FromMatrix matrix contains NaN (first at post={bad[0]}, "
                    f"pre={bad[1]}); weights must be finite."
                )
        if tuple(shape) != (n_post, n_pre):
            raise ValueError(
                f"FromMatrix matrix must have shape (n_post, n_pre) = ({n_post}, {n_pre}), "
                f"got {tuple(shape)}."
            )
        vals = np.asarray(vals, dtype=float)
        if not np.all(np.isfinite(vals)):
            raise ValueError("FromMatrix matrix contains NaN or inf; weights must be finite.")
        order = np.lexsort((post, pre))
        return Synapses(
            pre=np.asarray(pre)[order].astype(int),
            post=np.asarray(post)[order].astype(int),
            values=vals[order],
        )


def low_rank_factors(m, n, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """`m`, `n` as float64 `(n_post, rank)` and `(n_pre, rank)` arrays (a vector is rank
    one); a `ValueError` naming `owner` if the ranks differ."""
    m, n = np.asarray(m, np.float64), np.asarray(n, np.float64)
    m = m[:, None] if m.ndim == 1 else m
    n = n[:, None] if n.ndim == 1 else n
    if m.ndim != 2 or n.ndim != 2 or m.shape[1] != n.shape[1]:
        raise ValueError(
            f"{owner} m and n must be (n_post, rank) and (n_pre, rank) with one rank, "
            f"got shapes {m.shape} and {n.shape}."
        )
    return m, n


class LowRank(AbstractConnectivity):
    r"""All-to-all connectivity with a low-rank structured part plus a random part
    (Mastrogiuseppe & Ostojic 2018):

    $$J_{ij} = \frac{1}{N} \sum_{r} m_{ir} n_{jr} + g\,\chi_{ij},
    \qquad \chi_{ij} \sim \mathcal N(0, 1/N),$$

    with $N$ the number of presynaptic neurons and $\chi$ drawn from the build key. The
    entries are the synapses' weight factors (times the projection's `weight`, as with
    `FromMatrix`); the vectors stay on this object for theory (`nj.theory`), e.g. the
    outlier eigenvalue $n^T m / N$ and `nj.theory.low_rank_mean_field`.

    **Arguments:**

    - `m`: `(n_post,)` or `(n_post, rank)` left vectors.
    - `n`: `(n_pre,)` or `(n_pre, rank)` right vectors.
    - `g`: Strength of the random part, >= 0 (0: purely low rank).
    - `allow_autapses`: Keep the diagonal when pre and post are one population (the
      model's $J_{ii}$; default True, as in the paper).
    """

    m: np.ndarray
    n: np.ndarray
    g: float = eqx.field(static=True, default=0.0)
    allow_autapses: bool = eqx.field(static=True, default=True)

    def __init__(self, m, n, g=0.0, allow_autapses=True):
        m, n = low_rank_factors(m, n, "LowRank")
        check_range(m, "LowRank m", "")
        check_range(n, "LowRank n", "")
        check_range(g, "LowRank g", "", low=0.0)
        self.m, self.n, self.g, self.allow_autapses = m, n, float(g), bool(allow_autapses)

    @classmethod
    def gaussian(cls, key: PRNGKeyArray, n_neurons: int, mean_m: float, mean_n: float,
                 sigma_m: float = 1.0, sigma_n: float = 1.0, g: float = 0.0) -> "LowRank":
        """Rank one with independent $m_i \\sim \\mathcal N(M_m, \\Sigma_m^2)$ and
        $n_i \\sim \\mathcal N(M_n, \\Sigma_n^2)$ (the paper's unit-rank ensemble)."""
        check_range(sigma_m, "LowRank sigma_m", "", low=0.0)
        check_range(sigma_n, "LowRank sigma_n", "", low=0.0)
        z = numpy_rng(key).standard_normal((2, n_neurons))
        return cls(mean_m + sigma_m * z[0], mean_n + sigma_n * z[1], g=g)

    def sample(self, key, n_pre, n_post, autapses_possible):
        if self.m.shape[0] != n_post or self.n.shape[0] != n_pre:
            raise ValueError(
                f"LowRank m must have n_post = {n_post} rows and n the n_pre = {n_pre} rows, "
                f"got {self.m.shape[0]} and {self.n.shape[0]}."
            )
        values = self.m @ self.n.T / n_pre
        if self.g:
            values = values + self.g * numpy_rng(key).standard_normal((n_post, n_pre)) / np.sqrt(n_pre)
        pre, post = np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij")
        pre, post = pre.ravel(), post.ravel()  # ordered by pre, then post
        if autapses_possible and not self.allow_autapses:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return Synapses(pre=pre, post=post, values=values[post, pre])
