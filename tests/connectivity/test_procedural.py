"""Procedural connectivity: synapses regenerated from a seed equal their dense matrix,
follow the documented statistics, and give dense-equivalent gradients in O(N) memory."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.test_util import check_grads

from neurojax.connectivity.builders import FromMatrix
from neurojax.connectivity.procedural import Procedural, ProceduralWeights
from neurojax.connectivity.spatial import Line, Positions, Ring, Sheet
from neurojax.connectivity.weights import Dense, Sparse
from neurojax.distributions import LogNormal, Normal, Uniform
from neurojax.inputs.deterministic import Constant
from neurojax.network import Network, Population, Projection
from neurojax.neurons.lif import LIF
from neurojax.simulate import Record, simulate
from neurojax.synapses.kinetics import Exponential
from neurojax.synapses.receptors import Conductance

N_PRE, N_POST, SLOTS, DT, K = 40, 25, 5, 0.1, 6
STEP = jnp.asarray(7, jnp.int32)  # with delay 3 and 5 slots, writes slot 0
DELAY_STEPS = 3
# Chi-square / KS statistics beyond their 1e-6 tail: a false failure is a 1e-6 event.
ALPHA = 1e-6


def _weights(weight=1.5, seed=0, chunk=4, n_pre=N_PRE, n_post=N_POST, k=K, recurrent=False,
             kernel="loop"):
    return Procedural(out_degree=k).build(
        jax.random.key(seed), n_pre, n_post, recurrent, weight=weight,
        layout=Sparse(chunk=chunk, kernel=kernel),
    )


def _activity(kind, n=N_PRE, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "few_spikes":  # fewer events than one chunk
        act = np.zeros(n)
        act[[5, 17]] = 1.0
    elif kind == "burst":  # every neuron at once: ceil(40 / 4) = 10 chunks
        act = np.ones(n)
    elif kind == "graded":  # signed rates and exact zeros
        act = rng.normal(size=n) * (rng.random(n) < 0.7)
    else:
        act = np.zeros(n)
    return jnp.asarray(act)


def _buffer(seed=2, n_post=N_POST):
    # Non-zero: delivery must add to what is already scheduled.
    return jnp.asarray(np.random.default_rng(seed).normal(size=(SLOTS, n_post)))


@eqx.filter_jit
def _deliver(weights, buffer, act):
    return weights.deliver(buffer, act, STEP, DELAY_STEPS, DT)


def _dense_reference(weights, buffer, act):
    slot = (int(STEP) + DELAY_STEPS) % SLOTS
    return buffer.at[slot].add(weights.matrix() @ act)


def _synapse_table(w: ProceduralWeights):
    tgt, _ = w.synapses()
    return np.asarray(tgt)


# ---------------------------------------------------------------------------------------
# Forward: deliver equals the dense matrix, and the matrix lists the rule's synapses


@pytest.mark.native
@pytest.mark.parametrize("kind", ["few_spikes", "burst", "graded"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_native_kernel_regenerates_the_same_synapses(kind, recurrent):
    # The C++ hash must be bit-identical to the JAX one: same targets, so the same sums
    # (up to the order of additions).
    n = N_POST if recurrent else N_PRE
    native = _weights(kernel="native", recurrent=recurrent, n_pre=n)
    loop = _weights(kernel="loop", recurrent=recurrent, n_pre=n)
    act, buf = _activity(kind, n=n), _buffer()
    want = _dense_reference(loop, buf, act)
    np.testing.assert_allclose(_deliver(native, buf, act), want, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(_deliver(loop, buf, act), want, rtol=1e-13, atol=1e-13)
    # auto picks the native kernel on CPU.
    auto = _weights(kernel="auto", recurrent=recurrent, n_pre=n)
    np.testing.assert_allclose(_deliver(auto, buf, act), want, rtol=1e-13, atol=1e-13)


@pytest.mark.native
def test_native_kernel_at_a_million_targets_matches_the_jax_hash():
    # Large n_post exercises the full 32x32-bit product of the target draw.
    w = _weights(kernel="native", n_pre=8, n_post=1_000_003, k=50)
    act = jnp.zeros(8).at[jnp.asarray([1, 6])].set(1.0)
    got = _deliver(w, jnp.zeros((SLOTS, 1_000_003)), act)
    tgt = _synapse_table(w)
    want = np.zeros(1_000_003)
    np.add.at(want, tgt[[1, 6]].ravel(), 1.5)
    np.testing.assert_array_equal(np.asarray(got[(7 + DELAY_STEPS) % SLOTS]), want)


@pytest.mark.native
def test_native_kernel_under_vmap_equals_loop():
    native = _weights(kernel="native")
    scales = jnp.asarray([0.5, -1.0, 2.0])
    acts = jnp.asarray((np.random.default_rng(3).random((3, N_PRE)) < 0.3).astype(float))
    buf = _buffer()

    def run(scale, act):
        return eqx.tree_at(lambda m: m.weights, native, scale * native.weights).deliver(
            buf, act, STEP, DELAY_STEPS, DT)

    got = jax.jit(jax.vmap(run))(scales, acts)
    for i in range(3):
        np.testing.assert_allclose(got[i], run(scales[i], acts[i]), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    "weight, recurrent",
    [(1.5, False), (1.5, True), (Normal(1.0, 0.5), True), (Uniform(-1.0, 2.0), False),
     (LogNormal(0.0, 0.3), True)],
    ids=["scalar", "scalar_recurrent", "normal_recurrent", "uniform", "lognormal_recurrent"],
)
def test_deliver_equals_dense_matrix_in_the_due_slot(weight, recurrent):
    n_post = N_PRE if recurrent else N_POST
    w = _weights(weight, n_post=n_post, recurrent=recurrent)
    buffer = _buffer(n_post=n_post)
    for kind in ("few_spikes", "burst", "graded", "silent"):  # one compilation for all
        act = _activity(kind)
        np.testing.assert_allclose(
            _deliver(w, buffer, act), _dense_reference(w, buffer, act), rtol=1e-12, atol=1e-12,
            err_msg=kind,
        )


def test_matrix_lists_the_synapses_of_sample_and_every_row_has_k():
    rule = Procedural(out_degree=K)
    key = jax.random.key(3)
    w = rule.build(key, N_PRE, N_POST, False, weight=2.0)
    syn = rule.sample(key, N_PRE, N_POST, False)
    dense = np.zeros((N_POST, N_PRE))
    np.add.at(dense, (syn.post, syn.pre), 2.0)
    np.testing.assert_array_equal(w.matrix(), dense)
    # Out-degree exactly K, multapses counted: column sums of the unit-weight matrix.
    np.testing.assert_array_equal(np.bincount(syn.pre, minlength=N_PRE), K)
    assert 0 <= syn.post.min() and syn.post.max() < N_POST


def test_same_seed_same_synapses_different_seed_different_ones():
    a, b, c = _weights(seed=0), _weights(seed=0), _weights(seed=1)
    np.testing.assert_array_equal(a.matrix(), b.matrix())
    # 240 synapses among 1000 pairs: two independent graphs agreeing by chance on more
    # than half their synapses is astronomically unlikely.
    same = np.mean(_synapse_table(a) == _synapse_table(c))
    assert same < 0.5 and int(a.seed) != int(c.seed)


def test_recurrent_excludes_autapses_unless_allowed():
    n, k = 300, 50
    rule = Procedural(out_degree=k)
    syn = rule.sample(jax.random.key(0), n, n, True)
    assert not np.any(syn.pre == syn.post)
    # Allowed: each neuron hits itself Binomial(50, 1/300) times; over 300 neurons the
    # expected count is 50 (P(none) = e^-50).
    syn = Procedural(out_degree=k, allow_autapses=True).sample(jax.random.key(0), n, n, True)
    assert np.any(syn.pre == syn.post)
    # `p` gives K = round(p * candidates).
    w = Procedural(p=0.1).build(jax.random.key(0), n, n, True)
    assert w.k == round(0.1 * (n - 1)) and w.exclude_self


# ---------------------------------------------------------------------------------------
# Statistics of the regenerated graph


def test_targets_uniform_and_in_degree_binomial():
    n_pre, n_post, k = 2000, 500, 50
    syn = Procedural(out_degree=k).sample(jax.random.key(7), n_pre, n_post, False)
    in_degree = np.bincount(syn.post, minlength=n_post)
    # Targets i.i.d. uniform: in-degrees are multinomial with total n_pre * k, so the
    # chi-square statistic against the mean n_pre * k / n_post = 200 has 499 dof.
    mean = n_pre * k / n_post
    assert in_degree.mean() == mean
    chi2 = np.sum((in_degree - mean) ** 2 / mean)
    assert chi2 < scipy.stats.chi2.isf(ALPHA, n_post - 1)
    # ... and not too uniform either: a lattice-like generator gives chi2 ~ 0.
    assert chi2 > scipy.stats.chi2.ppf(ALPHA, n_post - 1)
    # Within a row, targets are drawn with replacement: the number of repeated pairs
    # (sum over (pre, post) of C(m, 2)) has mean n_pre C(k, 2) / n_post = 4900 and
    # variance about equal to its mean (nearly Poisson); 5 standard deviations.
    m = np.bincount(syn.pre * n_post + syn.post, minlength=n_pre * n_post)
    repeats = np.sum(m * (m - 1) // 2)
    expected = n_pre * k * (k - 1) / 2 / n_post
    assert abs(repeats - expected) < 5 * np.sqrt(expected)


@pytest.mark.parametrize("lag", ["next_synapse", "next_neuron"])
def test_consecutive_hashes_are_independent(lag):
    # Joint frequencies of (target of synapse 0, target of synapse 1) of one neuron, or
    # of synapse 0 of neurons j and j + 1, over 10 x 10 cells: independence gives a
    # uniform table (chi-square with 99 dof).
    n_pre, n_post = 20_000, 10
    tgt = _synapse_table(_weights(n_pre=n_pre, n_post=n_post, k=2, seed=11))
    a, b = (tgt[:, 0], tgt[:, 1]) if lag == "next_synapse" else (tgt[:-1, 0], tgt[1:, 0])
    counts = np.bincount(a * n_post + b, minlength=n_post**2)
    expected = a.size / n_post**2
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < scipy.stats.chi2.isf(ALPHA, n_post**2 - 1)


@pytest.mark.parametrize(
    "dist, cdf",
    [
        (Normal(1.0, 0.5), scipy.stats.norm(1.0, 0.5).cdf),
        (Uniform(-1.0, 2.0), scipy.stats.uniform(-1.0, 3.0).cdf),
        (LogNormal(0.5, 0.3), scipy.stats.lognorm(0.3, scale=np.exp(0.5)).cdf),
    ],
    ids=["normal", "uniform", "lognormal"],
)
def test_regenerated_weights_follow_their_distribution(dist, cdf):
    # 60000 synapse weights against the exact law (Kolmogorov-Smirnov): detects a
    # deviation of the CDF of about 0.01. The Box-Muller tails cut at 5.8 standard
    # deviations remove a mass of 7e-9, far below what the test resolves.
    w = _weights(dist, n_pre=2000, k=30)
    _, values = w.synapses()
    assert scipy.stats.kstest(np.asarray(values).ravel(), cdf).pvalue > ALPHA


# ---------------------------------------------------------------------------------------
# Transformations and gradients


def test_jit_equals_eager():
    w = _weights(Normal(1.0, 0.5))
    buffer, act = _buffer(), _activity("graded")
    eager = w.deliver(buffer, act, STEP, DELAY_STEPS, DT)
    np.testing.assert_allclose(_deliver(w, buffer, act), eager, rtol=1e-14, atol=1e-14)


def test_vmap_over_weight_equals_loop():
    w = _weights()
    buffer, act = _buffer(), _activity("graded")
    scales = jnp.asarray([0.5, -1.0, 3.0])

    def run(s):
        return _deliver(eqx.tree_at(lambda m: m.weights, w, s), buffer, act)

    batched = jax.vmap(run)(scales)
    for i, s in enumerate(scales):
        np.testing.assert_allclose(batched[i], run(s), rtol=1e-14, atol=1e-14)


def _loss(deliver):
    # Smooth in the delivered input and sensitive to every slot and target.
    def loss(weights_leaf, act, w, buffer):
        out = deliver(eqx.tree_at(lambda m: m.weights, w, weights_leaf), buffer, act)
        probe = jnp.asarray(np.random.default_rng(5).normal(size=out.shape))
        return jnp.sum(jnp.tanh(out) * probe)

    return loss


@pytest.mark.parametrize("weight", [1.5, Normal(1.0, 0.5)], ids=["scalar", "normal"])
def test_gradient_matches_dense_equivalent_and_finite_differences(weight):
    # `act` has zeros: the dense-equivalent gradient reaches silent neurons too (the
    # surrogate gradient of neurons that did not spike needs it).
    w = _weights(weight)
    buffer, act = _buffer(), _activity("graded")
    loss = jax.jit(_loss(lambda w, b, a: w.deliver(b, a, STEP, DELAY_STEPS, DT)))
    ref = _loss(_dense_reference)
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 3)))(w.weights, act, w, buffer)
    grad_ref = jax.grad(ref, argnums=(0, 1, 3))(w.weights, act, w, buffer)
    for g, r in zip(jax.tree.leaves(grad[:2]), jax.tree.leaves(grad_ref[:2])):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad[2], grad_ref[2], rtol=1e-12)  # identity in buffer
    # The custom VJP defines only reverse mode; central differences check it.
    # (check_grads perturbs with numpy arrays; the annotations want JAX arrays.)
    check_grads(lambda p, a: loss(jax.tree.map(jnp.asarray, p), jnp.asarray(a), w, buffer),
                (w.weights, act), order=1, modes=["rev"])


# ---------------------------------------------------------------------------------------
# In a network


def _network(n, rule, k_e=8, k_i=2, layout=None):
    # COBA-like E/I network driven by a constant conductance-free current (all spiking).
    lif = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0)
    n_e = int(0.8 * n)
    pops = [Population("E", n_e, lif), Population("I", n - n_e, lif)]
    exc = Projection("E", ["E", "I"], rule(k_e), weight=6.0, synapse=Exponential(5.0),
                     receptor=Conductance(0.0), delay=0.3, layout=layout)
    inh = Projection("I", ["E", "I"], rule(k_i), weight=30.0, synapse=Exponential(10.0),
                     receptor=Conductance(-80.0), delay=0.3, layout=layout)
    drive = [Constant("E", amplitude=120.0), Constant("I", amplitude=115.0)]
    return Network(pops, [exc, inh], inputs=drive)


def test_network_equals_the_same_synapses_stored():
    # The procedural network and one storing its regenerated matrices (FromMatrix,
    # event-driven) receive identical inputs: same spikes for 60 ms (float sums in a
    # different order could differ in the last bit; none flips a spike here).
    n = 200
    net = _network(n, lambda k: Procedural(out_degree=k), layout=Sparse(chunk=8))
    proc = net.build(jax.random.key(0))
    mats = {p.name: np.asarray(p.weights.matrix()) for p in proc.projections}
    projs = [
        Projection(p.pre, post, FromMatrix(mats[f"{p.pre}->{post}"] / p.weight), weight=p.weight,
                   synapse=p.synapse, receptor=p.receptor, delay=p.delay, layout=Sparse(chunk=8))
        for p in net.projections for post in p.posts
    ]
    stored = Network(net.populations, projs, net.inputs).build(jax.random.key(0))
    res_p = simulate(proc, 60.0, DT, key=jax.random.key(1))
    res_s = simulate(stored, 60.0, DT, key=jax.random.key(1))
    assert float(res_p.rate("E")) > 5.0  # the recurrence is exercised
    for pop in ("E", "I"):
        np.testing.assert_array_equal(res_p.spikes[pop], res_s.spikes[pop])


def test_large_network_holds_o_n_memory():
    # 200k neurons x 100 synapses: stored targets alone would take 80 MB (int32); the
    # procedural model holds a seed and a weight per projection, and its state (neuron
    # variables, synaptic variables, 3-slot delay buffers) is O(N).
    n = 200_000
    model = _network(n, lambda k: Procedural(out_degree=k), k_e=80, k_i=20).build(jax.random.key(0))
    model_bytes = sum(x.nbytes for x in jax.tree.leaves(eqx.filter(model, eqx.is_array)))
    assert model_bytes < 1_000_000
    res = simulate(model, 2.0, DT, key=jax.random.key(1),
                   record=Record(spikes=False, rates=["E"], every=2.0))
    state_bytes = sum(x.nbytes for x in jax.tree.leaves(eqx.filter(res.state, eqx.is_array)))
    assert model_bytes + state_bytes < 50_000_000
    assert np.isfinite(float(res.rates["E"][-1]))


# ---------------------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, r"exactly one of out_degree \[synapses\]"),
        ({"out_degree": 5, "p": 0.1}, "exactly one of out_degree"),
        ({"out_degree": -1}, r"out_degree \[synapses\] must be an integer in \[0, inf\)"),
        ({"out_degree": True}, r"out_degree \[synapses\] must be an integer"),
        ({"p": 1.5}, r"p \(mean connection probability\) must lie in \[0, 1\]"),
    ],
)
def test_bad_rule_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Procedural(**kwargs)


def test_non_integer_out_degree_raises():
    # Under the test suite's jaxtyping hook the `int` annotation rejects it first
    # (TypeError); without the hook the range check does (ValueError).
    with pytest.raises((TypeError, ValueError), match="out_degree"):
        Procedural(out_degree=2.5)


def _build_one(**proj_kwargs):
    pops = [Population("A", 10, LIF()), Population("B", 1, LIF())]
    post = proj_kwargs.pop("post", "B")
    proj = Projection("A", post, Procedural(out_degree=3), **proj_kwargs)
    return Network(pops, [proj]).build(jax.random.key(0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"delay": Uniform(1.0, 2.0)}, r"A->B: Procedural supports one homogeneous delay \[ms\]"),
        ({"weight": np.ones((1, 10))}, r"A->B weight \[receptor units\] must be a scalar, Normal"),
        ({"weight": float("nan")}, r"A->B weight \[receptor units\] contains NaN"),
        ({"layout": Dense()}, r"A->B: Procedural .* not Dense\(\)"),
        ({"layout": Sparse(kernel="buffer")}, r"A->B: Procedural propagates with kernel"),
        # "native" stands for Sparse(kernel="native"), built in the test: building it
        # here, at import, would fail the collection where the kernel was not built.
        pytest.param({"layout": "native", "weight": Normal(1.0, 0.1)},
                     r"A->B: the native procedural kernel .* scalar", marks=pytest.mark.native),
        ({"post": "A", "weight": 1.0}, None),  # recurrent A->A is fine
    ],
)
def test_bad_projection_arguments_raise(kwargs, match):
    if kwargs.get("layout") == "native":
        kwargs = {**kwargs, "layout": Sparse(kernel="native")}
    if match is None:
        _build_one(**kwargs)
        return
    with pytest.raises(ValueError, match=match):
        _build_one(**kwargs)


def test_no_candidate_target_raises():
    with pytest.raises(ValueError, match=r"n_post \[neurons\] must lie in \[2, inf\)"):
        Procedural(out_degree=1).build(jax.random.key(0), 1, 1, True)


@pytest.mark.parametrize("n_pre", [40, 640_000, 10_000_000])
def test_one_default_chunk_with_or_without_a_sparse_layout(n_pre):
    # n_pre / 10000 within [16, 256], whether the layout is None or a Sparse that
    # names only the kernel; an explicit chunk wins.
    rule, key = Procedural(out_degree=1), jax.random.key(0)
    want = min(256, max(16, n_pre // 10_000))
    for layout in (None, Sparse(), Sparse(kernel="loop")):
        assert rule.build(key, n_pre, 5, False, layout=layout).chunk == want
    assert rule.build(key, n_pre, 5, False, layout=Sparse(chunk=7)).chunk == 7


# ---------------------------------------------------------------------------------------
# Distance-dependent variant: Procedural(out_degree=K, profile=..., width=...) on grids


def _spatial_weights(space, n, profile="gaussian", width=0.02, k=K, seed=0, n_post=None,
                     recurrent=True, weight=1.5, chunk=8):
    n_post = n if n_post is None else n_post
    post_space = space
    return Procedural(out_degree=k, profile=profile, width=width).build(
        jax.random.key(seed), n, n_post, recurrent, weight=weight,
        layout=Sparse(chunk=chunk, kernel="loop"), pre_space=space, post_space=post_space,
    )


# Listing the synapses compiled once: op by op (eagerly), the spatial draw's dozens of
# operations each compile on their own, several seconds per call on a loaded CPU.
_targets_jit = eqx.filter_jit(lambda w: w.synapses()[0])
_matrix_jit = eqx.filter_jit(lambda w: w.matrix())


def _spatial_targets_np(w):
    return np.asarray(_targets_jit(w))


def _cell_masses_1d(profile, width, n, length, periodic=True):
    """P(offset m) for m in [-n//2, n - n//2): the mass of the displacement density on
    the grid cell [(m - 1/2) h, (m + 1/2) h), h = length / n, summed over the periodic
    images (x ± length) when periodic."""
    h = length / n
    m = np.arange(-(n // 2), n - n // 2)
    cdf = (scipy.stats.norm(scale=width) if profile == "gaussian"
           else scipy.stats.laplace(scale=width)).cdf
    images = (-length, 0.0, length) if periodic else (0.0,)
    return m, sum(cdf((m + 0.5) * h + s) - cdf((m - 0.5) * h + s) for s in images)


def _cell_masses_2d(profile, width, side, length):
    """P(offset (a, b)) on a side x side torus grid of square cells: a product of 1-D
    cell masses for the Gaussian (independent components); for the exponential
    (density exp(-r / lambda) / (2 pi lambda^2), not separable) a midpoint rule with
    16 x 16 points per cell over the 3 x 3 periodic images (its error, ~1e-4 relative
    on the cells next to the centre, is far below the KS resolution; the cusp at r = 0
    lies in the excluded centre cell)."""
    m, p1 = _cell_masses_1d(profile, width, side, length)
    if profile == "gaussian":
        return m, np.outer(p1, p1)
    h, sub = length / side, 16
    u = ((m[:, None] - 0.5) + (np.arange(sub)[None, :] + 0.5) / sub).ravel() * h
    dens = 0.0
    for sx in (-length, 0.0, length):
        for sy in (-length, 0.0, length):
            r = np.hypot(u[:, None] + sx, u[None, :] + sy)
            dens = dens + np.exp(-r / width) / (2 * np.pi * width**2)
    mass = dens.reshape(side, sub, side, sub).sum(axis=(1, 3)) * (h / sub) ** 2
    return m, mass


def _ks_discrete(keys, law_keys, law_p, n):
    """KS statistic of observed values `keys` (integers: |offset| or squared offset)
    against the discrete law P(law_keys) and its p-value from the continuous KS law.
    For a discrete null the statistic is stochastically smaller than for a continuous
    one, so this p-value is conservative: a false failure has probability <= ALPHA."""
    support = np.unique(law_keys)
    null = np.cumsum(np.bincount(np.searchsorted(support, law_keys), weights=law_p,
                                 minlength=support.size))
    null = null / null[-1]
    emp = np.searchsorted(np.sort(keys), support, side="right") / keys.size
    d = np.max(np.abs(emp - null))
    return d, scipy.stats.kstwo.sf(d, n)


@pytest.mark.parametrize("profile, dim, law", [
    ("gaussian", 1, scipy.stats.halfnorm(scale=0.3)),
    ("exponential", 1, scipy.stats.expon(scale=0.3)),
    ("gaussian", 2, scipy.stats.rayleigh(scale=0.3)),
    ("exponential", 2, scipy.stats.gamma(2, scale=0.3)),
])
def test_displacements_follow_the_profile_radially(profile, dim, law):
    # Before the grid: the distance |displacement| of 100k hashed draws follows the
    # radial law of a density proportional to the profile in `dim` dimensions (1-D:
    # half-normal, exponential; 2-D: Rayleigh, Gamma(2)). The 24-bit uniforms cut the
    # tails at 5.8 sigma / 16.6 lambda: ~1e-7 of the mass, far below the KS
    # resolution 1/sqrt(1e5); the threshold is the KS 1e-6 tail (a false failure is a
    # 1e-6 event).
    from neurojax.connectivity.procedural import _displacements, _lowbias32

    h = _lowbias32(jnp.arange(100_000, dtype=jnp.uint32))
    disp = np.stack([np.asarray(x) for x in _displacements(h, profile, 0.3, dim, jnp.float64)],
                    axis=1)
    assert disp.shape == (100_000, dim)
    assert scipy.stats.kstest(np.hypot.reduce(disp, axis=1) if dim == 2 else np.abs(disp[:, 0]),
                              law.cdf).pvalue > ALPHA
    # Isotropic: in 2-D the angle is uniform; in 1-D the sign is a fair coin.
    if dim == 2:
        angle = np.arctan2(disp[:, 1], disp[:, 0])
        assert scipy.stats.kstest(angle, scipy.stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > ALPHA
    else:
        assert abs(np.mean(disp[:, 0] > 0) - 0.5) < 5 * 0.5 / np.sqrt(100_000)


def _offsets(tgt, shape):
    """Minimum-image grid offsets (target - presynaptic neuron) per dimension."""
    n_pre = tgt.shape[0]
    pre = np.broadcast_to(np.arange(n_pre)[:, None], tgt.shape)
    out, t, p = [], tgt, pre
    for n in reversed(shape):
        out.append(((t % n) - (p % n) + n // 2) % n - n // 2)
        t, p = t // n, p // n
    return out[::-1]


@pytest.mark.parametrize("profile", ["gaussian", "exponential"])
@pytest.mark.parametrize("space", ["ring", "torus"])
def test_grid_targets_follow_the_discretised_profile_across_periodic_boundaries(profile, space):
    # Each synapse lands on the grid cell holding x_j + displacement (wrapped), so the
    # minimum-image offset m has P(m) = the profile's mass on cell m summed over the
    # periodic images, conditioned on m != 0 (autapses redrawn). KS on the distance
    # against that discrete law (conservative, see `_ks_discrete`), at the 1e-6 tail,
    # for all synapses and for those of neurons within two widths of an edge (whose
    # targets cross the boundary). Power: the same samples reject the law of a width
    # 5 % larger (a 5 % width error moves the CDF by ~0.02, the critical D is ~0.01).
    if space == "ring":
        n, length, width, k = 400, 1.0, 0.02, 200  # h = 0.0025: width = 8 grid spacings
        w = _spatial_weights(Ring(length), n, profile, width, k=k)
        shape = (n,)
    else:
        side, length, width, k = 48, 1.0, 0.04, 20  # h = 0.021: width ~ 2 grid spacings
        n = side * side
        w = _spatial_weights(Sheet((length, length), periodic=True), n, profile, width, k=k)
        shape = (side, side)
    tgt = _spatial_targets_np(w)
    offs = _offsets(tgt, shape)
    assert np.all(tgt != np.arange(n)[:, None])
    key = sum(o.astype(np.int64) ** 2 for o in offs)  # squared distance / h^2

    def law(width):
        if space == "ring":
            m, p = _cell_masses_1d(profile, width, n, length)
            return m**2, np.where(m == 0, 0.0, p)
        m, p = _cell_masses_2d(profile, width, side, length)
        sq = m[:, None] ** 2 + m[None, :] ** 2
        return sq.ravel(), np.where(sq == 0, 0.0, p).ravel()

    law_keys, law_p = law(width)
    pos = (np.arange(n)[:, None] // np.asarray([n // s for s in shape]) % np.asarray(shape)
           + 0.5) * (length / np.asarray(shape))
    near_edge = np.any((pos < 2 * width) | (pos > length - 2 * width), axis=1)
    crossing = np.zeros(tgt.shape, bool)
    for d, s in enumerate(shape):
        src = np.broadcast_to((np.arange(n)[:, None] // (n // s)) % s, tgt.shape)
        crossing |= (src + offs[d] < 0) | (src + offs[d] >= s)
    assert crossing[near_edge].mean() > 0.1  # the edge subset does wrap
    for sel in (slice(None), near_edge):
        keys = key[sel].ravel()
        d, pvalue = _ks_discrete(keys, law_keys, law_p, keys.size)
        assert pvalue > ALPHA, (d, keys.size)
    d_alt, p_alt = _ks_discrete(key.ravel(), *law(1.05 * width), key.size)
    assert p_alt < ALPHA, d_alt


def test_non_periodic_edges_redraw_and_renormalise_the_profile():
    # On a Line, draws outside [0, length) are redrawn: a neuron j near the edge has
    # P(m) proportional to the cell mass of m for m in [-j, n - 1 - j] (not 0), and
    # still K synapses. KS on the signed offsets of the five neurons nearest each edge
    # against the mixture of their laws; clipping instead (the outside mass piled on
    # the edge neuron) is rejected by the same samples.
    n, width, k = 200, 0.02, 1000  # h = 0.005: width = 4 grid spacings
    w = _spatial_weights(Line(1.0), n, "gaussian", width, k=k)
    tgt = _spatial_targets_np(w)
    assert tgt.shape == (n, k) and np.all(tgt != np.arange(n)[:, None])
    edge = np.r_[0:5, n - 5:n]
    obs = (tgt[edge] - edge[:, None]).ravel()
    m = np.arange(-n + 1, n)
    cdf = scipy.stats.norm(scale=width / (1.0 / n)).cdf  # in grid spacings
    cell = cdf(m + 0.5) - cdf(m - 0.5)

    def mixture(clip):
        total = np.zeros(m.size)
        for j in edge:
            p = np.where((m >= -j) & (m <= n - 1 - j) & (m != 0), cell, 0.0)
            if clip:  # the mass beyond each edge on the edge neuron
                p[m == -j] += cdf(-j - 0.5)
                p[m == n - 1 - j] += 1.0 - cdf(n - 1 - j + 0.5)
            total += p / p.sum()
        return total / edge.size

    def ks(p):
        null = np.cumsum(p)
        emp = np.searchsorted(np.sort(obs), m, side="right") / obs.size
        d = np.max(np.abs(emp - null))
        return scipy.stats.kstwo.sf(d, obs.size)

    assert ks(mixture(clip=False)) > ALPHA
    assert ks(mixture(clip=True)) < ALPHA


def test_spatial_in_degree_mean_and_variance_match_theory():
    # In-degree of i: a sum over presynaptic j and their K synapses of independent
    # Bernoulli(P_ji) draws. Mean K n_pre / n_post exactly (the total is K n_pre);
    # variance K sum_j P_ji (1 - P_ji) = K (1 - sum_m P_m^2) on a periodic grid with
    # n_pre = n_post (P_m the law of offset m, autapse excluded). Gaussian width of one
    # grid spacing: 0.67 K, far below the uniform rule's ~K. The sample variance of
    # 20000 near-Poisson counts has a relative standard deviation sqrt(2 / 20000) = 1 %;
    # 5 % is 5 of them.
    n, k = 20_000, 20
    w = _spatial_weights(Ring(1.0), n, "gaussian", 1.0 / n, k=k, chunk=64)
    deg = np.bincount(_spatial_targets_np(w).ravel(), minlength=n)
    m, p = _cell_masses_1d("gaussian", 1.0 / n, n, 1.0)
    p = np.where(m == 0, 0.0, p)
    p /= p.sum()
    var = k * (1.0 - np.sum(p**2))
    assert deg.mean() == k
    assert abs(deg.var() / var - 1.0) < 0.05, (deg.var(), var)
    assert var < 0.7 * k
    # Between grids of different sizes (40 x 40 onto 20 x 20): mean K n_pre / n_post.
    sheet = Sheet((1.0, 1.0))
    w = Procedural(out_degree=7, profile="exponential", width=0.05).build(
        jax.random.key(1), 1600, 400, False, pre_space=sheet, post_space=sheet)
    deg = np.bincount(_spatial_targets_np(w).ravel(), minlength=400)
    assert deg.sum() == 7 * 1600 and deg.mean() == 7 * 1600 / 400


def test_spatial_deliver_jit_eager_dense_vmap_over_seeds():
    w = _spatial_weights(Ring(1.0), N_PRE, "exponential", 0.05, weight=Normal(1.0, 0.5))
    buffer, act = _buffer(n_post=N_PRE), _activity("graded")
    eager = w.deliver(buffer, act, STEP, DELAY_STEPS, DT)
    np.testing.assert_allclose(_deliver(w, buffer, act), eager, rtol=1e-14, atol=1e-14)
    slot = (int(STEP) + DELAY_STEPS) % SLOTS
    np.testing.assert_allclose(eager, buffer.at[slot].add(_matrix_jit(w) @ act), rtol=1e-12,
                               atol=1e-12)
    # vmap over seeds: each member equals its own unbatched delivery; seeds differ.
    seeds = jnp.asarray([0, 1, 2**31 + 5], jnp.uint32)

    def run(s):
        return _deliver(eqx.tree_at(lambda m: m.seed, w, s), buffer, act)

    batched = jax.vmap(run)(seeds)
    for i, s in enumerate(seeds):
        np.testing.assert_allclose(batched[i], run(s), rtol=1e-14, atol=1e-14)
    assert not np.allclose(batched[0], batched[1])


def test_spatial_gradient_matches_dense_equivalent():
    # The custom VJP regenerates the spatial synapses in its backward pass: gradients
    # w.r.t. the weight and the presynaptic activity equal the dense matrix's. (Weight
    # distributions share the uniform rule's code path, tested above; one compilation
    # less here.)
    w = _spatial_weights(Sheet((1.0, 1.0), periodic=False), 36, "gaussian", 0.2, weight=1.5)
    buffer, act = _buffer(n_post=36), _activity("graded", n=36)
    loss = _loss(lambda w, b, a: w.deliver(b, a, STEP, DELAY_STEPS, DT))
    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))(w.weights, act, w, buffer)
    grad_ref = jax.jit(jax.grad(_loss(_dense_reference), argnums=(0, 1)))(
        w.weights, act, w, buffer)
    for g, r in zip(jax.tree.leaves(grad), jax.tree.leaves(grad_ref)):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)


def test_spatial_network_equals_the_same_synapses_stored():
    # E (160) and I (40) on one ring: the procedural network and one storing its
    # regenerated matrices spike identically for 40 ms (as the uniform test above).
    lif = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0)
    ring = Ring(1.0)
    pops = [Population("E", 160, lif, space=ring), Population("I", 40, lif, space=ring)]

    def rule(k, profile):
        return Procedural(out_degree=k, profile=profile, width=0.05)

    projs = [
        Projection("E", ["E", "I"], rule(8, "gaussian"), weight=6.0, synapse=Exponential(5.0),
                   receptor=Conductance(0.0), delay=0.3, layout=Sparse(chunk=8)),
        Projection("I", ["E", "I"], rule(2, "exponential"), weight=30.0,
                   synapse=Exponential(10.0), receptor=Conductance(-80.0), delay=0.3,
                   layout=Sparse(chunk=8)),
    ]
    net = Network(pops, projs, inputs=[Constant("E", amplitude=120.0),
                                       Constant("I", amplitude=115.0)])
    proc = net.build(jax.random.key(0))
    assert all(p.weights.spatial is not None for p in proc.projections)
    mats = {p.name: np.asarray(_matrix_jit(p.weights)) for p in proc.projections}
    stored = Network(pops, [
        Projection(p.pre, post, FromMatrix(mats[f"{p.pre}->{post}"] / p.weight), weight=p.weight,
                   synapse=p.synapse, receptor=p.receptor, delay=p.delay, layout=Sparse(chunk=8))
        for p in projs for post in p.posts
    ], net.inputs).build(jax.random.key(0))
    res_p = simulate(proc, 40.0, DT, key=jax.random.key(1))
    res_s = simulate(stored, 40.0, DT, key=jax.random.key(1))
    assert float(res_p.rate("E")) > 5.0
    for pop in ("E", "I"):
        np.testing.assert_array_equal(res_p.spikes[pop], res_s.spikes[pop])
    # sample_between lists the synapses that build regenerates from the same key.
    syn = rule(8, "gaussian").sample_between(jax.random.key(3), pops[0], pops[0], True)
    w = rule(8, "gaussian").build(jax.random.key(3), 160, 160, True, pre_space=ring,
                                  post_space=ring)
    np.testing.assert_array_equal(syn.pre, np.repeat(np.arange(160), 8))
    np.testing.assert_array_equal(syn.post, _spatial_targets_np(w).ravel())
    with pytest.raises(ValueError, match="needs the populations' space"):
        rule(8, "gaussian").sample(jax.random.key(3), 160, 160, True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"out_degree": 5, "profile": "gaussian", "width": 0.0},
         r"Procedural width \[space units\] must lie in \(0, inf\), got 0"),
        ({"out_degree": 5, "profile": "gaussian", "width": -0.1},
         r"Procedural width \[space units\] must lie in \(0, inf\)"),
        ({"out_degree": 5, "profile": "gaussian"}, r"needs width \[space units\] in \(0, inf\)"),
        ({"out_degree": -1, "profile": "gaussian", "width": 0.1},
         r"out_degree \[synapses\] must be an integer in \[0, inf\)"),
        ({"p": 0.1, "profile": "gaussian", "width": 0.1}, r"takes out_degree \[synapses\]"),
        ({"out_degree": 5, "profile": "von_mises", "width": 0.1}, "profile must be None"),
        ({"out_degree": 5, "width": 0.1}, r"width \[space units\] is the length scale"),
    ],
)
def test_bad_spatial_rule_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Procedural(**kwargs)


def _build_spatial(pre_space, post_space=None, n=16, rule=None, layout=None):
    post_space = pre_space if post_space is None else post_space
    pops = [Population("A", n, LIF(), space=pre_space), Population("B", n, LIF(), space=post_space)]
    rule = rule or Procedural(out_degree=3, profile="gaussian", width=0.1)
    return Network(pops, [Projection("A", "B", rule, layout=layout)]).build(jax.random.key(0))


@pytest.mark.parametrize(
    "pre_space, post_space, n, match",
    [
        (Sheet(layout="random"), None, 16,
         r"A->B: Procedural profile 'gaussian' .* layout Sheet\(layout='random'\) has none\. "
         r"Use the stored nj.connectivity.DistanceDependent"),
        (Positions(np.random.default_rng(0).random((16, 2))), None, 16,
         r"layout Positions has none. Use the stored nj.connectivity.DistanceDependent"),
        (None, None, 16, r"A->B: Procedural profile 'gaussian' needs both populations in a space"),
        (Ring(1.0), Ring(2.0), 16, "different spaces"),
        (Sheet(), None, 15, r"Sheet layout 'grid' needs a square number of neurons, got n = 15"),
    ],
)
def test_bad_spatial_projection_arguments_raise(pre_space, post_space, n, match):
    with pytest.raises(ValueError, match=match):
        _build_spatial(pre_space, post_space, n)


@pytest.mark.native
def test_native_kernel_with_a_profile_raises():
    with pytest.raises(ValueError, match=r"A->B: the native procedural kernel regenerates "
                       r"uniform targets; a distance profile \('gaussian'\)"):
        _build_spatial(Ring(1.0), layout=Sparse(kernel="native"))
