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
