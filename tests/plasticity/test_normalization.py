"""Normalization (exact sums after each normalisation, both modes and directions, dense
and sparse), SynapticScaling (drives LIF rates to the target), Chain (STDP followed by
normalisation inside a network), transforms, gradients and bad parameters."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.plasticity import Chain, Normalization, PairSTDP, SynapticScaling
from neurojax.plasticity.abstract import synapse_mask

DT = 0.1  # [ms]
LAYOUTS = [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")]


def _net(rule, layout, n_pre=30, n_post=8, rate=40.0):
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=-50.0, v_reset=-65.0, t_ref=2.0)
    proj = nj.Projection("in", "out", nj.connectivity.FixedProbability(0.5), weight=nj.Uniform(0.0, 1.0),
                         synapse=nj.synapses.Exponential(5.0), receptor=nj.synapses.Conductance(0.0),
                         layout=layout, plasticity=rule)
    return nj.Network([nj.Population("in", n_pre, nj.inputs.PoissonPopulation(rate=rate)),
                       nj.Population("out", n_post, lif)], [proj],
                      inputs=[nj.inputs.Constant("out", amplitude=120.0)]).build(jax.random.key(3))


def _dense_matrix(model, w):
    """Plastic weights `w` of "in->out" as a (post, pre) matrix, whatever the layout."""
    container = model.projection("in->out").weights
    return np.asarray(eqx.tree_at(lambda c: c.weights, container, w).matrix())


def _sums(matrix, mask, direction):
    m = np.where(mask, matrix, 0.0)
    return m.sum(axis=1 if direction == "incoming" else 0)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("mode", ["multiplicative", "subtractive"])
@pytest.mark.parametrize("direction", ["incoming", "outgoing"])
def test_sums_equal_the_target_after_normalization(layout, mode, direction):
    n = 8 if direction == "incoming" else 30
    target = np.linspace(2.0, 5.0, n)  # one target per neuron
    rule = Normalization(target_sum=target, mode=mode, direction=direction)
    model = _net(rule, layout)
    structure = model.projection("in->out").weights
    state0 = rule.init(structure, None)
    state, w = rule.step(state0, None, None, None, None, DT, structure=structure)
    dense_mask = _dense_matrix(model, synapse_mask(structure).astype(float)) != 0
    before, after = _dense_matrix(model, state0.weights), _dense_matrix(model, w)
    # Exact up to the rounding of one division and a sum of ~15 terms (float64).
    np.testing.assert_allclose(_sums(after, dense_mask, direction), target, rtol=1e-12)
    has = dense_mask.sum(axis=1 if direction == "incoming" else 0)
    if mode == "multiplicative":  # ratios within a neuron are kept
        scale = np.where(dense_mask, after / np.where(before != 0, before, 1.0), np.nan)
        for row in (scale if direction == "incoming" else scale.T):
            vals = row[~np.isnan(row)]
            np.testing.assert_allclose(vals, vals[0], rtol=1e-12)
    else:  # differences within a neuron are kept: one common shift
        shift = np.where(dense_mask, after - before, np.nan)
        expected = (_sums(before, dense_mask, direction) - target) / has
        for row, e in zip(shift if direction == "incoming" else shift.T, expected):
            np.testing.assert_allclose(row[~np.isnan(row)], -e, rtol=1e-10, atol=1e-14)
    assert np.all(after[~dense_mask] == 0)  # no synapse created
    np.testing.assert_array_equal(np.asarray(state.step), 1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_chain_of_stdp_and_normalization_keeps_sums_at_every_normalization(layout):
    # PairSTDP changes weights every step; Normalization restores the incoming sums
    # every 5 ms. Recorded every 5 ms (at the normalisation steps) the sums equal the
    # target exactly, while the weights themselves keep changing.
    target = 6.0
    rule = Chain(PairSTDP(a_plus=0.02, a_minus=0.021, w_max=1.0),
                 Normalization(target_sum=target, every=5.0))
    model = _net(rule, layout)
    res = nj.simulate(model, 100.0, DT, key=jax.random.key(4),
                      record=nj.Record(spikes=["out"], weights=["in->out"], every=5.0))
    mask = _dense_matrix(model, synapse_mask(model.projection("in->out").weights).astype(float)) != 0
    traj = [_dense_matrix(model, w) for w in res.weights["in->out"]]
    for m in traj:
        np.testing.assert_allclose(_sums(m, mask, "incoming"), target, rtol=1e-12)
    assert not np.allclose(traj[0], traj[-1])
    assert res.spikes["out"].sum() > 0  # STDP saw postsynaptic spikes


def test_normalization_leaves_weights_alone_between_normalizations():
    rule = Normalization(target_sum=3.0, every=1.0)  # every 10 steps
    model = _net(rule, LAYOUTS[0])
    structure = model.projection("in->out").weights
    state = rule.init(structure, None)
    w0 = state.weights
    for k in range(1, 11):
        state, w = rule.step(state, None, None, None, None, DT, structure=structure)
        if k < 10:
            np.testing.assert_array_equal(w, w0)
    np.testing.assert_allclose(np.asarray(w).sum(axis=1), 3.0, rtol=1e-12)


def test_synaptic_scaling_drives_lif_rates_to_the_target():
    # van Rossum, Bi & Turrigiano 2000: 20 LIF neurons per group, 100 plastic excitatory
    # inputs each (1000 shared Poisson sources at 10 Hz, p = 0.1). Group "a" starts with
    # weak weights (0.2 nS: 0 Hz over the first 200 ms), group "b" with strong ones
    # (0.6 nS: 26 Hz); scaling
    # (tau = 500 ms, rate estimate over 100 ms) must bring both to 10 Hz within 10 %.
    # Measured over 1-4 s: 10.02 and 9.98 Hz (counting SD for 20 neurons x 3 s ~0.4 Hz);
    # mean weights 0.37 and 0.36 nS.
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0)
    rule = SynapticScaling(target_rate=10.0, tau=500.0, tau_rate=100.0)
    pops = [nj.Population("exc", 1000, nj.inputs.PoissonPopulation(rate=10.0)),
            nj.Population("a", 20, lif), nj.Population("b", 20, lif)]
    projs = [nj.Projection("exc", p, nj.connectivity.FixedProbability(0.1), weight=w,
                           synapse=nj.synapses.Exponential(5.0), receptor=nj.synapses.Conductance(0.0),
                           plasticity=rule) for p, w in (("a", 0.2), ("b", 0.6))]
    model = nj.Network(pops, projs).build(jax.random.key(0))
    res = nj.simulate(model, 4000.0, 0.2, key=jax.random.key(1),
                      record=nj.Record(spikes=["a", "b"], mean_weights=["exc->a", "exc->b"], every=1000.0))
    for p in "ab":
        np.testing.assert_allclose(float(res.rate(p, 1000.0)), 10.0, rtol=0.1)
    w_a, w_b = (np.asarray(res.weights[f"exc->{p}.mean"]) for p in "ab")
    assert w_a[-1] > 1.5 * 0.2 and w_b[-1] < 0.7 * 0.6, (w_a, w_b)  # scaled up / down
    np.testing.assert_allclose(w_a[-1], w_b[-1], rtol=0.15)  # to about the same strength


def test_synaptic_scaling_rate_units_and_jit_equals_eager():
    # With rate units the estimate relaxes to the given rate and the scaling factor per
    # step is exp(dt (target - estimate) / (tau target)): a hand-computed reference.
    structure = nj.connectivity.DenseWeights(jnp.asarray([[1.0, 2.0], [0.5, 0.0]]))
    rule = SynapticScaling(target_rate=5.0, tau=50.0, tau_rate=10.0, spiking=False)
    post = jnp.asarray([8.0, 2.0])

    def run(rule):
        state = rule.init(structure, None)
        for _ in range(20):
            state, _ = rule.step(state, None, post, None, None, 1.0, structure=structure)
        return state

    jitted = jax.jit(run)(rule)
    with jax.disable_jit():
        eager = run(rule)
    np.testing.assert_allclose(jitted.weights, eager.weights, rtol=1e-13)
    est, w = np.full(2, 5.0), np.asarray([[1.0, 2.0], [0.5, 0.0]])
    for _ in range(20):
        est = np.asarray(post) + (est - np.asarray(post)) * np.exp(-1.0 / 10.0)
        w = w * np.exp(1.0 * (5.0 - est) / (50.0 * 5.0))[:, None]
    np.testing.assert_allclose(jitted.weights, w, rtol=1e-12)
    np.testing.assert_allclose(jitted.rate, est, rtol=1e-12)


def test_gradient_wrt_target_rate_matches_finite_differences():
    structure = nj.connectivity.DenseWeights(jnp.asarray([[1.0, 2.0], [0.5, 0.3]]))
    post = jnp.asarray([8.0, 2.0])

    def loss(target):
        rule = SynapticScaling(target_rate=target, tau=50.0, tau_rate=10.0, spiking=False)
        state = rule.init(structure, None)
        state = jax.lax.fori_loop(0, 30, lambda _, s: rule.step(s, None, post, None, None, 1.0,
                                                                 structure=structure)[0], state)
        return jnp.sum(state.weights ** 2)

    x, h = 5.0, 1e-4
    fd = (loss(x + h) - loss(x - h)) / (2 * h)
    np.testing.assert_allclose(jax.grad(loss)(x), fd, rtol=1e-6)  # float64, O(h^2)


@pytest.mark.parametrize("make, match", [
    (lambda: Normalization(target_sum=0.0), r"target_sum \[weight units\] must lie in \(0, inf\)"),
    (lambda: Normalization(mode="divisive"), r"mode must be one of"),
    (lambda: Normalization(direction="both"), r"direction must be one of"),
    (lambda: Normalization(every=-1.0), r"every \[ms\] must lie in \(0, inf\)"),
    (lambda: SynapticScaling(target_rate=0.0), r"target_rate \[Hz\] must lie in \(0, inf\)"),
    (lambda: SynapticScaling(tau=-5.0), r"SynapticScaling tau \[ms\] must lie in \(0, inf\)"),
    (lambda: SynapticScaling(tau_rate=0.0), r"tau_rate \[ms\] must lie in \(0, inf\)"),
    (lambda: Chain(PairSTDP()), r"Chain needs two or more"),
    (lambda: Chain(PairSTDP(), nj.plasticity.TsodyksMarkram()), r"Chain rules must be weight-changing"),
])
def test_bad_parameters_raise_naming_parameter_unit_and_range(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_schedule_and_shapes_raise_at_simulate():
    model = _net(Normalization(target_sum=1.0, every=0.25), LAYOUTS[0])
    with pytest.raises(ValueError, match=r"every \[ms\] = 0.25 must be a whole number of steps"):
        nj.simulate(model, 1.0, DT, key=jax.random.key(0))
    model = _net(Normalization(target_sum=np.ones(3)), LAYOUTS[0])
    with pytest.raises(ValueError, match=r"target_sum must be a scalar or have shape \(8,\)"):
        nj.simulate(model, 1.0, DT, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"initial weights must lie in .*\[0, w_max\] = \[0, 0.5\]"):
        _net(Chain(PairSTDP(w_max=0.5), Normalization()), LAYOUTS[0])


def test_chain_parameters_are_model_parameters_checked_at_simulate():
    model = _net(Chain(PairSTDP(w_max=1.0), Normalization(target_sum=3.0)), LAYOUTS[0])
    names = [k for k in model.params() if ".plasticity." in k]
    assert "in->out.plasticity.rules.0.a_plus" in names
    assert "in->out.plasticity.rules.1.target_sum" in names
    bad = model.replace({"in->out.plasticity.rules.1.target_sum": -1.0})
    with pytest.raises(ValueError, match=r"Normalization target_sum \[weight units\] must lie in \(0, inf\)"):
        nj.simulate(bad, 1.0, DT, key=jax.random.key(0))
