"""Network construction and the network step: update order, delays and build-time checks.

Arrivals are read off a postsynaptic LIF with e_l = 0 that starts at rest: its potential
stays exactly 0 until a delta-synapse charge w [pA·ms] arrives and makes it jump by
w / c_m [mV] in the step of arrival, so the step of every arrival is visible exactly.
"""

import math

import jax
import numpy as np
import pytest

from neurojax.connectivity.builders import AllToAll, FixedProbability, FromMatrix
from neurojax.connectivity.weights import Dense, Sparse, SparseWeights
from neurojax.distributions import Normal, Uniform
from neurojax.inputs.deterministic import Constant, Waveform
from neurojax.network import Network, NetworkModel, Population, Projection
from neurojax.neurons.lif import LIF
from neurojax.simulate import Record, simulate
from neurojax.synapses.kinetics import Delta, Exponential
from neurojax.synapses.receptors import Current

DT = 0.1  # [ms]
C_M, G_L = 250.0, 12.5  # [pF], [nS]: tau_m = 20 ms
LIF_0 = LIF(c_m=C_M, g_l=G_L, e_l=0.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
KICK_STEP = 2  # the presynaptic neurons are driven to fire in this step only


def _kick(target):
    # Waveform samples at the start of each step (t = step * dt): 1e5 pA held for one
    # step lifts v by ~40 mV, far over threshold, only in step KICK_STEP; refractoriness
    # and the later zero drive keep the neuron silent afterwards.
    times = DT * np.arange(KICK_STEP + 2)
    values = np.zeros(KICK_STEP + 2)
    values[KICK_STEP] = 1e5
    return Waveform(target, times=times, values=values)


def _run(net, duration, record):
    model = net.build(jax.random.key(0))
    return model, simulate(model, duration, DT, key=jax.random.key(1), record=record)


def _arrival_steps(v):
    """Steps in which each column of `v` (steps, n) first leaves exactly 0."""
    v = np.asarray(v)
    return [int(np.flatnonzero(v[:, j])[0]) if np.any(v[:, j]) else None for j in range(v.shape[1])]


# ---------------------------------------------------------------------------------------
# Update order and homogeneous delays


def test_single_spike_arrives_after_delay_steps():
    # One presynaptic neuron, four postsynaptic neurons, one projection each (selecting
    # its target with FromMatrix), so each projection's delay shows in its own neuron.
    # d = 0 and 0.04 ms both round to the one-step minimum; 0.16 ms rounds to 2 steps;
    # Brunel's D = 1.5 ms at dt = 0.1 ms is 15 steps. Layouts alternate so both
    # containers' ring buffers are checked.
    delays = [0.0, 0.04, 0.16, 1.5]
    expected = [1, 1, 2, 15]
    weights = [25.0, 50.0, 75.0, 100.0]  # [pA·ms]
    projections = []
    for j, (d, w) in enumerate(zip(delays, weights)):
        select = np.zeros((4, 1))
        select[j, 0] = 1.0
        projections.append(Projection(
            "pre", "post", FromMatrix(select), weight=w, synapse=Delta(), receptor=Current(),
            delay=d, layout=Dense() if j % 2 else Sparse(), name=f"d{j}",
        ))
    net = Network([Population("pre", 1, LIF_0), Population("post", 4, LIF_0)], projections,
                  inputs=[_kick("pre")])
    # 0.04 and 0.16 ms are not whole steps: each warns, saying what it became.
    with pytest.warns(UserWarning) as warned:
        model, res = _run(net, 2.0, Record(spikes=["pre"], v={"post": None}))
    messages = sorted(str(w.message) for w in warned)
    assert messages == [
        "projection 'd1': delay 0.04 ms is not a multiple of dt = 0.1 ms; rounded to 0.1 ms (1 step).",
        "projection 'd2': delay 0.16 ms is not a multiple of dt = 0.1 ms; rounded to 0.2 ms (2 steps).",
    ]

    # The input acts in the step it is sampled for, so the only spike is in KICK_STEP.
    assert np.flatnonzero(np.asarray(res.spikes["pre"])[:, 0]).tolist() == [KICK_STEP]
    assert [p.delay_steps(DT) for p in model.projections] == expected
    v = np.asarray(res.variables["post.v"])
    assert _arrival_steps(v) == [KICK_STEP + d for d in expected]
    # The jump is the charge over the capacitance (exact up to rounding).
    jumps = v[[KICK_STEP + d for d in expected], np.arange(4)]
    np.testing.assert_allclose(jumps, np.asarray(weights) / C_M, rtol=1e-12)


def test_spike_times_are_step_ends():
    # A spike detected in step k is reported at the end of that step, (k + 1) dt.
    net = Network([Population("pre", 1, LIF_0)], inputs=[_kick("pre")])
    _, res = _run(net, 1.0, Record(spikes=["pre"]))
    times, ids = res.spike_times("pre")
    np.testing.assert_allclose(times, [(KICK_STEP + 1) * DT], rtol=1e-12)
    assert ids.tolist() == [0]


def test_exponential_synapse_acts_in_the_step_of_arrival():
    # An exponential current synapse adds its weight to s in the arrival step and the
    # neuron integrates s over that step (exponential Euler, exact for held input):
    # v = (w / g_l) (1 - exp(-dt / tau_m)); then s decays by exp(-dt / tau_s) per step.
    w, tau_s, delay = 100.0, 2.0, 0.5
    net = Network(
        [Population("pre", 1, LIF_0), Population("post", 1, LIF_0)],
        [Projection("pre", "post", AllToAll(), weight=w, synapse=Exponential(tau=tau_s),
                    receptor=Current(), delay=delay)],
        inputs=[_kick("pre")],
    )
    _, res = _run(net, 2.0, Record(spikes=(), v={"post": None}))
    v = np.asarray(res.variables["post.v"])[:, 0]
    k = KICK_STEP + round(delay / DT)
    assert _arrival_steps(v[:, None]) == [k]
    np.testing.assert_allclose(v[k], w / G_L * (1.0 - math.exp(-DT * G_L / C_M)), rtol=1e-12)
    # Next step: v relaxes towards the decayed current's v_inf.
    s1 = w * math.exp(-DT / tau_s)
    v_inf = s1 / G_L
    e = math.exp(-DT * G_L / C_M)
    np.testing.assert_allclose(v[k + 1], v_inf + (v[k] - v_inf) * e, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Heterogeneous delays


def test_per_synapse_delays_each_arrive_at_their_own_step():
    # Two presynaptic neurons fire together; each of the six synapses has its own delay
    # and weight, so the increment of each postsynaptic potential, once the exact leak
    # factor is removed, is w / c_m at step KICK_STEP + max(1, round(d / dt)) and zero
    # elsewhere. 0.31 ms -> 3 steps, 2.26 ms -> 23 steps, 0.0 -> the 1-step minimum.
    delays = np.array([[0.0, 0.31], [1.0, 0.5], [2.26, 1.5]])  # (n_post, n_pre) [ms]
    weights = np.array([[25.0, 50.0], [75.0, 100.0], [125.0, 150.0]])  # [pA·ms]
    net = Network(
        [Population("pre", 2, LIF_0), Population("post", 3, LIF_0)],
        [Projection("pre", "post", AllToAll(), weight=weights, delay=delays)],
        inputs=[_kick("pre")],
    )
    model, res = _run(net, 3.0, Record(spikes=["pre"], v={"post": None}))
    assert np.flatnonzero(np.asarray(res.spikes["pre"]).any(axis=1)).tolist() == [KICK_STEP]
    container = model.projections[0].weights
    assert isinstance(container, SparseWeights)
    np.testing.assert_array_equal(np.asarray(container.matrix()), weights)

    steps = np.maximum(1, np.round(delays / DT)).astype(int)
    expected = np.zeros((30, 3))
    for post in range(3):
        for pre in range(2):
            expected[KICK_STEP + steps[post, pre], post] += weights[post, pre] / C_M
    v = np.asarray(res.variables["post.v"])
    leak = math.exp(-DT * G_L / C_M)  # e_l = 0: v decays by this factor per step
    increments = v - np.concatenate([np.zeros((1, 3)), v[:-1]]) * leak
    np.testing.assert_allclose(increments, expected, rtol=0, atol=1e-12)


def test_delays_from_a_distribution_are_rounded_per_synapse():
    # Sampled delays live in the built container; each synapse (one per post neuron)
    # must arrive at max(1, round(d / dt)) steps after the presynaptic spike.
    n_post = 6
    net = Network(
        [Population("pre", 1, LIF_0), Population("post", n_post, LIF_0)],
        [Projection("pre", "post", AllToAll(), weight=25.0, delay=Uniform(0.0, 2.0))],
        inputs=[_kick("pre")],
    )
    model, res = _run(net, 3.0, Record(spikes=(), v={"post": None}))
    c = model.projections[0].weights
    d = np.zeros(n_post)
    d[np.asarray(c.targets)[0]] = np.asarray(c.delays)[0]
    assert len(set(np.maximum(1, np.round(d / DT)).tolist())) > 2  # the delays differ
    assert model.projections[0].delay == pytest.approx(d.max())
    expected = KICK_STEP + np.maximum(1, np.round(d / DT)).astype(int)
    assert _arrival_steps(res.variables["post.v"]) == expected.tolist()


# ---------------------------------------------------------------------------------------
# Building


def test_build_materialises_weights_in_the_chosen_layout():
    # The same FromMatrix connectivity times a scalar weight gives the same matrix in
    # both containers; `layout=None` picks Dense above 25 % density.
    m = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, -3.0]])  # (n_post, n_pre)
    pops = [Population("a", 3, LIF_0), Population("b", 2, LIF_0)]
    for layout in (Dense(), Sparse(), None):
        net = Network(pops, [Projection("a", "b", FromMatrix(m), weight=0.5, layout=layout)])
        proj = net.build(jax.random.key(0)).projections[0]
        np.testing.assert_array_equal(np.asarray(proj.weights.matrix()), 0.5 * m)
        assert isinstance(proj.weights, SparseWeights) == isinstance(layout, Sparse)


def test_projection_to_several_populations_builds_one_each():
    pops = [Population("E", 5, LIF_0), Population("I", 3, LIF_0)]
    net = Network(pops, [Projection("E", ["E", "I"], AllToAll(), weight=1.0)])
    model = net.build(jax.random.key(0))
    assert isinstance(model, NetworkModel)
    assert [p.name for p in model.projections] == ["E->E", "E->I"]
    # No autapses by default within a population.
    np.testing.assert_array_equal(np.asarray(model.projection("E->E").weights.matrix()),
                                  1.0 - np.eye(5))
    np.testing.assert_array_equal(np.asarray(model.projection("E->I").weights.matrix()),
                                  np.ones((3, 5)))


def test_build_is_deterministic_in_the_key():
    pops = [Population("E", 10, LIF_0)]
    net = Network(pops, [Projection("E", "E", FixedProbability(0.2), weight=Normal(1.0, 0.2),
                                    layout=Sparse())])
    m1 = net.build(jax.random.key(3)).projections[0].weights.matrix()
    m2 = net.build(jax.random.key(3)).projections[0].weights.matrix()
    m3 = net.build(jax.random.key(4)).projections[0].weights.matrix()
    np.testing.assert_array_equal(np.asarray(m1), np.asarray(m2))
    assert not np.array_equal(np.asarray(m1), np.asarray(m3))


def test_initial_values_are_drawn_per_neuron():
    pop = Population("E", 50, LIF_0, initial={"v": Uniform(2.0, 5.0), "refractory": 1.0})
    model = Network([pop]).build(jax.random.key(0))
    state = model.init(jax.random.key(1), DT)
    v = np.asarray(state.neurons[0].v)
    assert v.shape == (50,) and np.all((v >= 2.0) & (v < 5.0)) and np.std(v) > 0.5
    np.testing.assert_array_equal(np.asarray(state.neurons[0].refractory), np.ones(50))
    assert state.buffers == () and int(state.step) == 0


def test_ring_buffer_has_one_slot_per_delay_step():
    net = Network([Population("E", 4, LIF_0)],
                  [Projection("E", "E", AllToAll(), weight=1.0, delay=1.5)])
    state = net.build(jax.random.key(0)).init(jax.random.key(1), DT)
    assert state.buffers[0].shape == (15, 4)


# ---------------------------------------------------------------------------------------
# Bad input: a ValueError that names the parameter, its unit or range


def _pops():
    return [Population("E", 4, LIF_0), Population("I", 2, LIF_0)]


@pytest.mark.parametrize("n", [0, -3])
def test_population_size_must_be_a_positive_integer(n):
    with pytest.raises(ValueError, match=r"size n \[neurons\] must lie in \[1, inf\)"):
        Population("E", n, LIF_0)


def test_population_needs_a_name():
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        Population("", 3, LIF_0)


def test_duplicate_population_names_are_rejected():
    with pytest.raises(ValueError, match=r"unique; repeated: \['E'\]"):
        Network([Population("E", 4, LIF_0), Population("E", 2, LIF_0)])


def test_network_needs_a_population():
    with pytest.raises(ValueError, match="at least one Population"):
        Network([])


@pytest.mark.parametrize("pre, post", [("X", "E"), ("E", "X"), ("E", ["I", "X"])])
def test_projection_with_unknown_population_is_rejected(pre, post):
    with pytest.raises(ValueError, match=r"unknown population 'X'; the network has \['E', 'I'\]"):
        Network(_pops(), [Projection(pre, post, AllToAll())])


def test_input_with_unknown_target_is_rejected():
    with pytest.raises(ValueError, match=r"Constant targets unknown population 'X'"):
        Network(_pops(), inputs=[Constant("X", amplitude=1.0)])


def test_projection_needs_a_connectivity_rule():
    with pytest.raises(ValueError, match="connectivity must be a connectivity rule"):
        Projection("E", "I", np.ones((2, 4)))


@pytest.mark.parametrize("delay", [-0.1, math.nan])
def test_negative_or_nan_scalar_delay_is_rejected(delay):
    with pytest.raises(ValueError, match=r"Projection delay \[ms\]"):
        Projection("E", "I", AllToAll(), delay=delay)


def test_negative_per_synapse_delay_is_rejected():
    delays = np.full((2, 4), 1.0)
    delays[1, 2] = -0.5
    net = Network(_pops(), [Projection("E", "I", AllToAll(), delay=delays)])
    with pytest.raises(ValueError, match=r"E->I delay \[ms\] must lie in \[0, inf\)"):
        net.build(jax.random.key(0))
    # A distribution with negative support fails the same way once sampled.
    net = Network(_pops(), [Projection("E", "I", AllToAll(), delay=Normal(-5.0, 0.1))])
    with pytest.raises(ValueError, match=r"E->I delay \[ms\] must lie in \[0, inf\)"):
        net.build(jax.random.key(0))


@pytest.mark.parametrize("what", ["weight", "delay"])
def test_per_synapse_array_must_have_shape_post_pre(what):
    wrong = np.ones((4, 2))  # (n_pre, n_post): transposed
    net = Network(_pops(), [Projection("E", "I", AllToAll(), **{what: wrong})])
    with pytest.raises(ValueError, match=rf"E->I {what} .* shape \(n_post, n_pre\) = \(2, 4\), got \(4, 2\)"):
        net.build(jax.random.key(0))


def test_nan_weights_are_rejected():
    m = np.ones((2, 4))
    m[1, 3] = np.nan
    net = Network(_pops(), [Projection("E", "I", FromMatrix(m))])
    with pytest.raises(ValueError, match=r"FromMatrix matrix contains NaN \(first at post=1, pre=3\)"):
        net.build(jax.random.key(0))
    net = Network(_pops(), [Projection("E", "I", AllToAll(), weight=m)])
    with pytest.raises(ValueError, match=r"E->I weight \[receptor units\] contains NaN"):
        net.build(jax.random.key(0))


def test_from_matrix_shape_must_match_populations():
    net = Network(_pops(), [Projection("E", "I", FromMatrix(np.ones((4, 2))))])
    with pytest.raises(ValueError, match=r"shape \(n_post, n_pre\) = \(2, 4\), got \(4, 2\)"):
        net.build(jax.random.key(0))


def test_per_synapse_delays_need_the_sparse_layout():
    net = Network(_pops(), [Projection("E", "I", AllToAll(), delay=np.ones((2, 4)), layout=Dense())])
    with pytest.raises(ValueError, match="per-synapse delays need the Sparse layout"):
        net.build(jax.random.key(0))


def test_initial_value_for_unknown_state_variable_is_rejected():
    net = Network([Population("E", 4, LIF_0, initial={"u": 0.0})])
    with pytest.raises(ValueError, match=r"initial value for unknown state variable 'u'; LIF has \['v', 'refractory'\]"):
        net.build(jax.random.key(0))


def test_unknown_names_on_the_built_model_are_rejected():
    model = Network(_pops(), [Projection("E", "I", AllToAll())]).build(jax.random.key(0))
    assert model.index("I") == 1
    with pytest.raises(ValueError, match=r"unknown population 'X'; the network has \['E', 'I'\]"):
        model.index("X")
    with pytest.raises(ValueError, match=r"unknown projection 'I->E'; the network has \['E->I'\]"):
        model.projection("I->E")


@pytest.mark.parametrize("dt", [0.0, -0.1, math.inf, math.nan])
def test_model_check_rejects_bad_dt(dt):
    model = Network(_pops()).build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"dt \[ms\] must lie in \(0, inf\)"):
        model.check(dt)


def test_model_check_rejects_dt_too_large_for_a_time_constant():
    model = Network(_pops(), [Projection("E", "I", AllToAll(), synapse=Exponential(tau=0.5))]).build(
        jax.random.key(0))
    model.check(0.5)
    with pytest.raises(ValueError, match=r"dt \[ms\] = 1 is too large for synapse tau \[ms\] = 0.5"):
        model.check(1.0)
    with pytest.raises(ValueError, match=r"too large for tau_m = c_m/g_l \[ms\] = 20"):
        Network(_pops()).build(jax.random.key(0)).check(25.0)


def test_rate_units_receive_graded_input_through_delta_projections():
    # Two FiringRate populations coupled through Delta synapses: the input of a rate
    # unit is W r from the previous step (delay one step), so the network must follow
    # r_k = f(h_k) + (r_{k-1} - f(h_k)) e^{-dt/tau} with h_k = W r_{k-1} + I, exactly.
    import jax.numpy as jnp

    import neurojax as nj

    tau, dt, steps = 10.0, 0.1, 200
    unit = nj.neurons.FiringRate(tau=tau, transfer=nj.neurons.ReLU())
    w = np.array([[0.0, 0.5, -0.3], [0.8, 0.0, 0.2], [0.1, -0.4, 0.0]])
    net = nj.Network(
        [nj.Population("R", 3, unit)],
        [nj.Projection("R", "R", nj.connectivity.FromMatrix(w), synapse=nj.synapses.Delta())],
        inputs=[nj.inputs.Constant("R", amplitude=jnp.array([1.0, 2.0, 0.5]))],
    )
    model = net.build(jax.random.key(0))
    res = nj.simulate(model, steps * dt, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=(), r={"R": None}))
    r = np.zeros(3)
    trace = []
    for _ in range(steps):
        h = w @ r + np.array([1.0, 2.0, 0.5])
        target = np.maximum(h, 0.0)
        r = target + (r - target) * np.exp(-dt / tau)
        trace.append(r)
    np.testing.assert_allclose(np.asarray(res.variables["R.r"]), np.array(trace), rtol=1e-12, atol=1e-14)
    # The coupling matters: without it the trajectory differs.
    assert np.max(np.abs(np.array(trace)[-1] - np.array([1.0, 2.0, 0.5]) * (1 - np.exp(-steps * dt / tau)))) > 1e-2


# ---------------------------------------------------------------------------------------
# One parameter per physical quantity: scalar weights stay scalar leaves in every layout,
# and params() / replace() name them.


def _ei_net(layout):
    E = Population("E", 40, LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0))
    I = Population("I", 10, LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0))
    return Network(
        [E, I],
        [Projection("E", ["E", "I"], FixedProbability(0.3), weight=30.0, layout=layout),
         Projection("I", ["E", "I"], FixedProbability(0.3), weight=-60.0, layout=layout,
                    synapse=Exponential(tau=5.0))],
        inputs=[Constant("E", amplitude=250.0), Constant("I", amplitude=230.0)],
    )


@pytest.mark.parametrize("layout", [Dense(), Sparse()])
def test_scalar_weight_stays_one_scalar_leaf(layout):
    model = _ei_net(layout).build(jax.random.key(0))
    container = model.projection("I->E").weights
    assert np.ndim(container.weights) == 0
    m = np.asarray(container.matrix())
    # Every existing synapse carries the one weight; the structure is untouched.
    assert set(np.unique(m)) <= {0.0, -60.0} and (m != 0).mean() > 0.2


def test_dense_scalar_weight_counts_multapses():
    from neurojax.connectivity.weights import DenseWeights

    counts = np.array([[0, 2], [1, 0]], np.uint8)
    w = DenseWeights(weights=jax.numpy.asarray(1.5), counts=jax.numpy.asarray(counts))
    np.testing.assert_array_equal(w.matrix(), 1.5 * counts)
    buf = w.deliver(jax.numpy.zeros((2, 2)), jax.numpy.array([1.0, 1.0]), jax.numpy.asarray(0), 1, DT)
    np.testing.assert_array_equal(buf[1], [3.0, 1.5])
    with pytest.raises(ValueError, match="scalar weight"):
        DenseWeights(weights=jax.numpy.asarray(1.5))


def _mean_rate(model):
    res = simulate(model, 60.0, DT, key=jax.random.key(1), truncate=2.0,
                   record=Record(spikes=(), rates=["E"]))
    return res.rates["E"].mean()


def test_dense_and_sparse_scalar_weights_simulate_and_differentiate_alike():
    dense = _ei_net(Dense()).build(jax.random.key(0))
    sparse = _ei_net(Sparse()).build(jax.random.key(0))
    # Same key, same sampled synapses: the layouts differ only in how they propagate.
    np.testing.assert_array_equal(dense.projection("E->E").weights.matrix(),
                                  sparse.projection("E->E").weights.matrix())
    loss = lambda w, m: _mean_rate(m.replace({"E->{E,I}.weight": w}))
    r_d, g_d = jax.value_and_grad(loss)(30.0, dense)
    r_s, g_s = jax.value_and_grad(loss)(30.0, sparse)
    assert float(r_d) > 0
    # float32 sums in a different order (matvec vs scatter): agreement to ~1e-5 relative.
    np.testing.assert_allclose(r_d, r_s, rtol=1e-5)
    np.testing.assert_allclose(g_d, g_s, rtol=1e-4)


def test_params_names_every_float_parameter():
    model = _ei_net(None).build(jax.random.key(0))
    p = model.params()
    assert {"E.v_th", "I.c_m", "E->{E,I}.weight", "I->{E,I}.weight", "I->I.synapse.tau",
            "Constant->E.amplitude", "Constant->I.amplitude"} <= set(p)
    assert float(p["I->{E,I}.weight"]) == -60.0 and float(p["I->E.synapse.tau"]) == 5.0
    # One scalar weight for two targets is one parameter, not one per target.
    assert "I->E.weight" not in p and "I->I.weight" not in p
    # Structure (indices, counts) is not a parameter.
    assert not any("targets" in k or "counts" in k for k in p)


def test_replace_sets_named_and_globbed_parameters():
    model = _ei_net(None).build(jax.random.key(0))
    new = model.replace({"I->*.weight": -80.0, "E.v_th": np.linspace(-52, -48, 40)})
    p = new.params()
    assert float(p["I->{E,I}.weight"]) == -80.0
    assert float(new.projection("I->E").weights.weights) == float(new.projection("I->I").weights.weights) == -80.0
    np.testing.assert_allclose(p["E.v_th"], np.linspace(-52, -48, 40), rtol=1e-6)
    # Everything else is the same object content, and the original is unchanged.
    assert float(model.params()["I->{E,I}.weight"]) == -60.0
    np.testing.assert_array_equal(p["E->{E,I}.weight"], model.params()["E->{E,I}.weight"])


def test_replace_vmaps_like_a_loop():
    model = _ei_net(None).build(jax.random.key(0))
    ws = jax.numpy.array([20.0, 30.0, 40.0])
    batched = jax.vmap(lambda w: _mean_rate(model.replace({"E->*.weight": w})))(ws)
    looped = [_mean_rate(model.replace({"E->*.weight": w})) for w in ws]
    np.testing.assert_allclose(batched, looped, rtol=1e-6)


def test_replace_rejects_unknown_names_and_wrong_shapes():
    model = _ei_net(None).build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"no parameter matches 'I->\{E,I\}\.wieght'.*I->\{E,I\}\.weight"):
        model.replace({"I->{E,I}.wieght": 1.0})
    with pytest.raises(ValueError, match=r"'I->E\.weight' is not a parameter of its own.*'I->\{E,I\}\.weight'"):
        model.replace({"I->E.weight": 1.0})
    with pytest.raises(ValueError, match=r"'E\.v_th' has shape \(\).*\(3,\).*\(40,\) per neuron"):
        model.replace({"E.v_th": np.zeros(3)})


# ---------------------------------------------------------------------------------------
# Weights are checked: finite, and never a negative conductance.

from neurojax.synapses.receptors import Conductance  # noqa: E402


@pytest.mark.parametrize("weight", [-30.0, Normal(1.0, 3.0), "matrix"])
@pytest.mark.parametrize("layout", [Dense(), Sparse()])
def test_negative_conductance_weight_is_rejected_at_build(weight, layout):
    conn = FixedProbability(0.5)
    if isinstance(weight, str):
        conn, weight = FromMatrix(-np.ones((10, 10))), 1.0
    net = Network([Population("E", 10, LIF_0)],
                  [Projection("E", "E", conn, weight=weight, layout=layout,
                              receptor=Conductance(e_rev=-80.0))])
    with pytest.raises(ValueError, match=r"E->E weight \[nS.*must lie in \[0, inf\).*negative reversal"):
        net.build(jax.random.key(0))


def test_negative_current_weight_is_allowed():
    net = Network([Population("E", 10, LIF_0)],
                  [Projection("E", "E", FixedProbability(0.5), weight=-30.0, receptor=Current())])
    assert float(net.build(jax.random.key(0)).params()["E->E.weight"]) == -30.0


@pytest.mark.parametrize("value", [-3.0, float("nan")])
def test_traced_weights_are_checked_at_run_time(value):
    net = Network([Population("E", 10, LIF_0)],
                  [Projection("E", "E", FixedProbability(0.5), weight=3.0,
                              receptor=Conductance(e_rev=-80.0))])
    model = net.build(jax.random.key(0))
    run = jax.jit(lambda w: simulate(model.replace({"E->E.weight": w}), 1.0, DT,
                                     key=jax.random.key(1)).state.step)
    assert int(run(2.0)) == 10
    with pytest.raises((RuntimeError, ValueError),
                       match=r"E->E weight \[nS.*must be finite and lie in \[0, inf\)"):
        jax.block_until_ready(run(value))


def test_ordering_synaptic_writes_changes_no_value(monkeypatch):
    """The step writes each synapse's new state only after its postsynaptic neurons'
    new state (`_ordered_after`, an `after` select), so that XLA need not copy the
    synaptic states every step (benchmarks/README.md, issue 15). That is an ordering
    hint only: a compiled COBA run, its final state and the gradient of its final
    potentials are the same bit for bit without it."""
    import equinox as eqx
    import jax.numpy as jnp

    import neurojax.gallery
    import neurojax.network as network

    model = neurojax.gallery.get("coba", n=400).build(jax.random.key(0))
    state0 = model.init(jax.random.key(1), 0.1)

    def run(state):
        def body(s, _):
            s, out = model.step(s, s.step * 0.1, 0.1)
            return s, out
        return jax.lax.scan(body, state, None, length=200)

    def loss(state):
        final, _ = run(state)
        return jnp.mean(final.neurons[0].v) + jnp.mean(final.neurons[1].v)

    def results():
        # fresh functions: traced again, with the ordering as patched now
        out = jax.jit(lambda s: run(s))(state0)
        grad = jax.jit(lambda s: eqx.filter_grad(loss)(s))(state0)
        return jax.tree_util.tree_leaves((out, grad)), sum(float(jnp.sum(o)) for o in out[1])

    ordered, n_spikes = results()
    monkeypatch.setattr(network, "_ordered_after", lambda tree, dep: tree)
    plain, _ = results()
    assert n_spikes > 0
    assert len(ordered) == len(plain)
    for a, b in zip(ordered, plain):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
