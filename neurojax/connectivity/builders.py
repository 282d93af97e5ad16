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


class AbstractConnectivity(eqx.Module):
    @abc.abstractmethod
    def sample(
        self, key: PRNGKeyArray, n_pre: int, n_post: int, autapses_possible: bool
    ) -> Synapses:
        """Sample synapses between `n_pre` and `n_post` neurons. `autapses_possible` is
        True when pre and post are the same population."""


def _choose_excluding(rng, n, k, exclude):
    """`k` distinct integers from `range(n)`, never `exclude` (when not None)."""
    if exclude is None:
        return rng.choice(n, size=k, replace=False)
    picks = rng.choice(n - 1, size=k, replace=False)
    return picks + (picks >= exclude)


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
        counts = rng.binomial(n_choices, self.p, size=n_pre)
        pre = np.repeat(np.arange(n_pre), counts)
        post = np.concatenate(
            [np.sort(_choose_excluding(rng, n_post, int(c), i if no_self else None))
             for i, c in enumerate(counts)]
            or [np.zeros(0, int)]
        )
        return Synapses(pre=pre, post=post.astype(int))


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
        pre = np.concatenate(
            [_choose_excluding(rng, n_pre, self.k, j if no_self else None)
             for j in range(n_post)]
            or [np.zeros(0, int)]
        )
        post = np.repeat(np.arange(n_post), self.k)
        return Synapses(pre=pre.astype(int), post=post)


class FromMatrix(AbstractConnectivity):
    """Synapses and their weights read from a matrix of shape **(n_post, n_pre)**,
    dense (numpy / JAX) or `scipy.sparse`. Non-zero entries become synapses whose weight
    is the entry times the projection's `weight` (default 1).

    **Arguments:**

    - `matrix`: The (post, pre) weight matrix, e.g. a connectome.
    """

    matrix: object

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
