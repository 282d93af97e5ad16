import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse

from neurojax.connectivity.builders import (
    AllToAll,
    FixedInDegree,
    FixedProbability,
    FromMatrix,
    Synapses,
)
from neurojax.connectivity.weights import Dense, DenseWeights, Sparse, SparseWeights
from neurojax.network import Network, Population, Projection
from neurojax.neurons.lif import LIF


def _pairs(syn: Synapses) -> set[tuple[int, int]]:
    return set(zip(syn.pre.tolist(), syn.post.tolist()))


def _assert_valid(syn: Synapses, n_pre: int, n_post: int):
    assert syn.pre.shape == syn.post.shape and syn.pre.ndim == 1
    assert np.issubdtype(syn.pre.dtype, np.integer) and np.issubdtype(syn.post.dtype, np.integer)
    if syn.pre.size:
        assert 0 <= syn.pre.min() and syn.pre.max() < n_pre
        assert 0 <= syn.post.min() and syn.post.max() < n_post
    # No synapse is sampled twice.
    assert len(_pairs(syn)) == syn.pre.size


# ---------------------------------------------------------------------------------------
# FixedProbability


@pytest.mark.parametrize(
    "n_pre, n_post, recurrent", [(400, 400, True), (300, 200, False)], ids=["recurrent", "bipartite"]
)
def test_fixed_probability_out_degree_is_binomial(getkey, n_pre, n_post, recurrent):
    p = 0.1
    syn = FixedProbability(p).sample(getkey(), n_pre, n_post, recurrent)
    _assert_valid(syn, n_pre, n_post)
    n_choices = n_post - 1 if recurrent else n_post
    out_degree = np.bincount(syn.pre, minlength=n_pre)
    # Out-degrees are i.i.d. Binomial(n_choices, p): their mean has standard error
    # sqrt(n_choices p (1-p) / n_pre) (0.30 here); 5 standard errors make a false failure
    # a ~1e-6 event while a 4 % bias in p would already be caught.
    var = n_choices * p * (1 - p)
    assert abs(out_degree.mean() - n_choices * p) < 5 * np.sqrt(var / n_pre)
    # Their sample variance has standard error ~ var sqrt(2 / (n_pre - 1)) (binomial ~
    # normal at these counts): rules out e.g. a fixed out-degree (variance 0).
    assert abs(out_degree.var(ddof=1) - var) < 5 * var * np.sqrt(2 / (n_pre - 1))
    # Every (pre, post) pair is an independent Bernoulli draw, so in-degrees are i.i.d.
    # Binomial(n_pre', p) too; their variance rules out targets chosen non-uniformly.
    in_degree = np.bincount(syn.post, minlength=n_post)
    var_in = (n_pre - 1 if recurrent else n_pre) * p * (1 - p)
    assert abs(in_degree.var(ddof=1) - var_in) < 5 * var_in * np.sqrt(2 / (n_post - 1))


def test_fixed_probability_autapses(getkey):
    n = 200
    syn = FixedProbability(0.3).sample(getkey(), n, n, True)
    assert syn.pre.size > 0 and not np.any(syn.pre == syn.post)
    # Between different populations index equality is not a self-connection.
    syn = FixedProbability(0.5).sample(getkey(), n, n, False)
    assert np.any(syn.pre == syn.post)
    # With autapses allowed they occur ~ Binomial(200, 0.5) times (P(none) = 2^-200).
    syn = FixedProbability(0.5, allow_autapses=True).sample(getkey(), n, n, True)
    assert np.any(syn.pre == syn.post)


def test_fixed_probability_extremes_are_exact(getkey):
    n = 30
    syn = FixedProbability(1.0).sample(getkey(), n, n, True)
    _assert_valid(syn, n, n)
    assert _pairs(syn) == {(i, j) for i in range(n) for j in range(n) if i != j}
    syn = FixedProbability(1.0, allow_autapses=True).sample(getkey(), n, n, True)
    assert syn.pre.size == n * n
    syn = FixedProbability(0.0).sample(getkey(), n, 2 * n, False)
    assert syn.pre.size == 0 and syn.post.size == 0


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_fixed_probability_outside_unit_interval_raises(p):
    with pytest.raises(ValueError, match="connection probability p"):
        FixedProbability(p)


# ---------------------------------------------------------------------------------------
# FixedInDegree


@pytest.mark.parametrize(
    "n_pre, n_post, recurrent", [(100, 100, True), (60, 150, False)], ids=["recurrent", "bipartite"]
)
def test_fixed_in_degree_is_exact_with_distinct_partners(getkey, n_pre, n_post, recurrent):
    k = 20
    syn = FixedInDegree(k).sample(getkey(), n_pre, n_post, recurrent)
    _assert_valid(syn, n_pre, n_post)  # includes: no pre chosen twice for one post
    np.testing.assert_array_equal(np.bincount(syn.post, minlength=n_post), k)
    if recurrent:
        assert not np.any(syn.pre == syn.post)
    # Each post draws its k partners uniformly from `candidates`, so the out-degree of a
    # presynaptic neuron is Binomial(posts it may reach, k / candidates); the spread of
    # out-degrees (tolerance: 5 standard errors of a sample variance) rules out a biased
    # choice of partners. Draws without replacement inflate it by candidates/(c-1) ~ 1 %.
    candidates = n_pre - 1 if recurrent else n_pre
    reach = n_post - 1 if recurrent else n_post
    q = k / candidates
    out_degree = np.bincount(syn.pre, minlength=n_pre)
    assert out_degree.mean() == pytest.approx(k * n_post / n_pre)
    var = reach * q * (1 - q)
    assert abs(out_degree.var(ddof=1) - var) < 5 * var * np.sqrt(2 / (n_pre - 1))


def test_fixed_in_degree_can_use_every_candidate(getkey):
    n = 12
    syn = FixedInDegree(n - 1).sample(getkey(), n, n, True)
    assert _pairs(syn) == {(i, j) for i in range(n) for j in range(n) if i != j}
    syn = FixedInDegree(n, allow_autapses=True).sample(getkey(), n, n, True)
    assert syn.pre.size == n * n and len(_pairs(syn)) == n * n


def test_fixed_in_degree_too_large_raises(getkey):
    with pytest.raises(ValueError, match=r"in-degree k \[synapses\] must lie in \[0, 9\]"):
        FixedInDegree(10).sample(getkey(), 10, 5, True)
    with pytest.raises(ValueError, match=r"in-degree k .* \[0, 10\]"):
        FixedInDegree(11).sample(getkey(), 10, 5, False)
    with pytest.raises(ValueError, match="in-degree k"):
        FixedInDegree(-1)


# ---------------------------------------------------------------------------------------
# AllToAll


def test_all_to_all_counts(getkey):
    syn = AllToAll().sample(getkey(), 7, 5, False)
    _assert_valid(syn, 7, 5)
    assert syn.pre.size == 35
    syn = AllToAll().sample(getkey(), 6, 6, True)
    assert syn.pre.size == 30 and not np.any(syn.pre == syn.post)
    syn = AllToAll(allow_autapses=True).sample(getkey(), 6, 6, True)
    assert syn.pre.size == 36 and len(_pairs(syn)) == 36


# ---------------------------------------------------------------------------------------
# FromMatrix


def _matrix(n_post=4, n_pre=6):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(n_post, n_pre)) * (rng.random((n_post, n_pre)) < 0.5)
    assert np.count_nonzero(m) > 0
    return m


def _to_dense(syn: Synapses, n_post: int, n_pre: int) -> np.ndarray:
    out = np.zeros((n_post, n_pre))
    np.add.at(out, (syn.post, syn.pre), syn.values)
    return out


@pytest.mark.parametrize(
    "convert",
    [np.asarray, jnp.asarray, scipy.sparse.csr_matrix, scipy.sparse.coo_matrix],
    ids=["numpy", "jax", "csr", "coo"],
)
def test_from_matrix_reads_post_pre_orientation(getkey, convert):
    m = _matrix()
    syn = FromMatrix(convert(m)).sample(getkey(), 6, 4, False)
    _assert_valid(syn, 6, 4)
    assert syn.pre.size == np.count_nonzero(m)
    # Row i of the (n_post, n_pre) matrix holds the inputs of postsynaptic neuron i.
    np.testing.assert_array_equal(_to_dense(syn, 4, 6), m)


def test_from_matrix_shape_mismatch_raises(getkey):
    m = _matrix()
    # The (pre, post) transpose is the classic mistake: it must not be read silently.
    for bad in (m.T, scipy.sparse.csr_matrix(m.T)):
        with pytest.raises(ValueError, match=r"shape \(n_post, n_pre\) = \(4, 6\), got \(6, 4\)"):
            FromMatrix(bad).sample(getkey(), 6, 4, False)
    with pytest.raises(ValueError, match="2-D"):
        FromMatrix(np.ones(6)).sample(getkey(), 6, 1, False)


def test_from_matrix_nan_raises(getkey):
    m = _matrix()
    m[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN \(first at post=2, pre=3\)"):
        FromMatrix(m).sample(getkey(), 6, 4, False)
    with pytest.raises(ValueError, match="NaN"):
        FromMatrix(scipy.sparse.csr_matrix(m)).sample(getkey(), 6, 4, False)
    m[2, 3] = np.inf
    with pytest.raises(ValueError, match="finite"):
        FromMatrix(m).sample(getkey(), 6, 4, False)


@pytest.mark.parametrize("layout", [Dense(), Sparse(chunk=2)], ids=["dense", "sparse"])
def test_from_matrix_weights_survive_network_build(getkey, layout):
    m = np.abs(_matrix())
    lif = LIF()
    net = Network(
        [Population("A", 6, lif), Population("B", 4, lif)],
        [Projection("A", "B", FromMatrix(m), weight=2.0, layout=layout)],
    )
    weights = net.build(getkey()).projection("A->B").weights
    assert isinstance(weights, DenseWeights if isinstance(layout, Dense) else SparseWeights)
    # The projection's weight multiplies the matrix entries.
    np.testing.assert_allclose(weights.matrix(), 2.0 * m, rtol=1e-15)


# ---------------------------------------------------------------------------------------
# Determinism


@pytest.mark.parametrize(
    "rule", [FixedProbability(0.2), FixedInDegree(5)], ids=["fixed_probability", "fixed_in_degree"]
)
def test_same_key_same_synapses(rule):
    key = jax.random.key(3)
    a = rule.sample(key, 50, 40, False)
    b = rule.sample(key, 50, 40, False)
    np.testing.assert_array_equal(a.pre, b.pre)
    np.testing.assert_array_equal(a.post, b.post)
    c = rule.sample(jax.random.key(4), 50, 40, False)
    assert _pairs(a) != _pairs(c)


# ---------------------------------------------------------------------------------------
# Vectorised sampling: exact laws, checked over many independent rows


@pytest.fixture
def small_blocks(monkeypatch):
    """Rows are sampled in blocks of `_BLOCK_ENTRIES` entries; shrink the blocks so the
    tests below cross many block boundaries."""
    import neurojax.connectivity.builders as builders

    monkeypatch.setattr(builders, "_BLOCK_ENTRIES", 1000)


def _pattern_chi2(patterns: np.ndarray, probs: np.ndarray) -> tuple[float, int]:
    """Chi-square statistic of observed pattern codes against their exact probabilities."""
    counts = np.bincount(patterns, minlength=probs.size)
    expected = patterns.size * probs
    return float(np.sum((counts - expected) ** 2 / expected)), probs.size - 1


# A chi-square statistic above its 1e-6 upper quantile makes a false failure a 1e-6
# event; with 20000 rows a bias of ~2 % in any pattern probability already fails.
_CHI2_ALPHA = 1e-6


@pytest.mark.parametrize("k", [2, 3], ids=["rejection", "complement"])
def test_fixed_in_degree_partner_sets_are_uniform(getkey, small_blocks, k):
    import scipy.stats

    # 20000 postsynaptic neurons each choose k of 5 presynaptic neurons: all C(5, k) = 10
    # partner sets must be equally likely (k = 3 > 5 / 2 takes the complement route).
    n_pre, n_post = 5, 20_000
    syn = FixedInDegree(k).sample(getkey(), n_pre, n_post, False)
    _assert_valid(syn, n_pre, n_post)
    np.testing.assert_array_equal(np.bincount(syn.post, minlength=n_post), k)
    codes = np.zeros(n_post, int)
    np.add.at(codes, syn.post, 2**syn.pre)  # bit mask of each row's partner set
    subsets = [m for m in range(2**n_pre) if bin(m).count("1") == k]
    assert set(np.unique(codes)) <= set(subsets)
    index = np.searchsorted(subsets, codes)
    stat, dof = _pattern_chi2(index, np.full(len(subsets), 1 / len(subsets)))
    assert stat < scipy.stats.chi2.isf(_CHI2_ALPHA, dof)


@pytest.mark.parametrize("p", [0.1, 0.6], ids=["sparse_draw", "dense_draw"])
def test_fixed_probability_pairs_are_independent_bernoulli(getkey, small_blocks, p):
    import scipy.stats

    # 20000 presynaptic neurons each connect to a subset of 4 targets; with i.i.d.
    # Bernoulli(p) pairs, subset S has probability p^|S| (1 - p)^(4 - |S|). The 16
    # pattern frequencies test the marginal p and the independence within a row.
    n_pre, n_post = 20_000, 4
    syn = FixedProbability(p).sample(getkey(), n_pre, n_post, False)
    _assert_valid(syn, n_pre, n_post)
    codes = np.zeros(n_pre, int)
    np.add.at(codes, syn.pre, 2**syn.post)
    size = np.array([bin(m).count("1") for m in range(2**n_post)])
    probs = p**size * (1 - p) ** (n_post - size)
    stat, dof = _pattern_chi2(codes, probs)
    assert stat < scipy.stats.chi2.isf(_CHI2_ALPHA, dof)


@pytest.mark.parametrize(
    "rule",
    [FixedInDegree(40), FixedInDegree(700), FixedProbability(0.05), FixedProbability(0.5)],
    ids=["in_degree", "in_degree_dense", "probability", "probability_dense"],
)
def test_recurrent_sampling_has_no_autapses_or_multapses(getkey, small_blocks, rule):
    n = 1000
    syn = rule.sample(getkey(), n, n, True)
    _assert_valid(syn, n, n)  # no pair twice
    assert syn.pre.size > 0 and not np.any(syn.pre == syn.post)
    if isinstance(rule, FixedInDegree):
        np.testing.assert_array_equal(np.bincount(syn.post, minlength=n), rule.k)
    else:
        # Total count ~ Binomial(n (n - 1), p): 5 standard deviations.
        pairs = n * (n - 1)
        assert abs(syn.pre.size - pairs * rule.p) < 5 * np.sqrt(pairs * rule.p * (1 - rule.p))
