"""The plasticity seat: `NetworkState.plastic`, initialisation from the model's weights,
a user-defined rule through the protocol, weight recording, and the transposed index."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.connectivity.weights import transposed_index
from neurojax.plasticity import AbstractPlasticity, PairSTDP, TsodyksMarkram

DT = 0.1


def _net(rule, layout, weight=0.5):
    pre = nj.inputs.PoissonPopulation(rate=50.0)
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=-50.0, v_reset=-65.0, t_ref=2.0)
    return nj.Network(
        [nj.Population("in", 30, pre), nj.Population("out", 12, lif)],
        [nj.Projection("in", "out", nj.connectivity.FixedProbability(0.3), weight=weight,
                       synapse=nj.synapses.Exponential(5.0), layout=layout, plasticity=rule)],
        inputs=[nj.inputs.Constant("out", amplitude=200.0)],
    ).build(jax.random.key(0))


LAYOUTS = [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("weight", [0.5, "uniform"])
def test_plastic_state_starts_at_the_model_weights(layout, weight):
    w = nj.Uniform(0.0, 1.0) if weight == "uniform" else weight
    model = _net(PairSTDP(w_max=1.0), layout, w)
    state = model.init(jax.random.key(1), DT)
    container = model.projection("in->out").weights
    np.testing.assert_array_equal(
        eqx.tree_at(lambda c: c.weights, container, state.plastic[0].weights).matrix(),
        container.matrix())
    assert len(state.plastic) == 1 and state.plastic[0].pre_trace.shape == (30,)


def test_static_projections_hold_no_plastic_state():
    model = _net(None, LAYOUTS[1])
    state = model.init(jax.random.key(1), DT)
    assert state.plastic == (None,)
    assert jax.tree_util.tree_leaves(state.plastic) == []
    assert model.projection("in->out").weights.post_index is None
    assert "in->out.plasticity.a_plus" not in model.params()


def test_rule_parameters_are_named_model_parameters():
    model = _net(PairSTDP(a_plus=0.01, w_max=1.0), LAYOUTS[0])
    assert float(model.params()["in->out.plasticity.a_plus"]) == 0.01
    m2 = model.replace({"in->out.plasticity.a_plus": 0.02})
    assert float(m2.projections[0].plasticity.a_plus) == 0.02


@pytest.mark.parametrize("layout", LAYOUTS)
def test_recorded_weights_and_means_match_the_final_state(layout):
    model = _net(PairSTDP(a_plus=0.05, a_minus=0.05, w_max=1.0), layout)
    res = nj.simulate(model, 50.0, DT, key=jax.random.key(2),
                      record=nj.Record(spikes=(), weights=["in->out"], mean_weights=["in->out"], every=5.0))
    w = res.weights["in->out"]
    final = model.plastic_weights(res.state, "in->out")
    assert w.shape == (10,) + final.shape
    np.testing.assert_array_equal(w[-1], final)
    container = model.projection("in->out").weights
    matrix = np.asarray(eqx.tree_at(lambda c: c.weights, container, final).matrix())
    exists = np.asarray(container.matrix()) != 0
    np.testing.assert_allclose(res.weights["in->out.mean"][-1], matrix[exists].mean(), rtol=1e-12)
    assert not np.allclose(w[0], w[-1])  # the rule did change the weights


def test_short_term_rule_reports_the_model_weights():
    model = _net(TsodyksMarkram(U=0.3, tau_d=200.0, tau_f=50.0), LAYOUTS[1])
    res = nj.simulate(model, 20.0, DT, key=jax.random.key(2), record=nj.Record(spikes=(), weights=["in->out"]))
    np.testing.assert_array_equal(res.weights["in->out"][-1], model.plastic_weights(res.state, "in->out"))


class _Halve(AbstractPlasticity):
    """A user-defined rule: delivers half the model weights, counts presynaptic spikes."""

    def init(self, structure, weights):
        return jnp.zeros(structure.n_pre)

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        return state + pre, None

    def transmit(self, state, pre):
        return 0.5 * pre


def test_a_user_defined_rule_runs_through_the_protocol():
    model, static = _net(_Halve(), LAYOUTS[1], 0.8), _net(None, LAYOUTS[1], 0.4)
    a = nj.simulate(model, 50.0, DT, key=jax.random.key(2))
    b = nj.simulate(static, 50.0, DT, key=jax.random.key(2))
    np.testing.assert_array_equal(a.spikes["out"], b.spikes["out"])
    np.testing.assert_array_equal(a.state.plastic[0], np.asarray(a.spikes["in"]).sum(0))


def test_transposed_index_lists_each_synapse_once():
    targets = np.array([[0, 2, 3], [1, 3, 3], [2, 3, 3]])  # n_post = 3: padding 3
    index = transposed_index(targets, 3)
    flat = targets.ravel()
    for p in range(3):
        ids = index[p][index[p] < flat.size]
        assert sorted(ids.tolist()) == np.nonzero(flat == p)[0].tolist()


def test_recorded_weights_survive_save_and_load(tmp_path):
    model = _net(PairSTDP(a_plus=0.05, a_minus=0.05, w_max=1.0), LAYOUTS[0])
    res = nj.simulate(model, 20.0, DT, key=jax.random.key(2),
                      record=nj.Record(spikes=["out"], weights=["in->out"], mean_weights=["in->out"], every=5.0))
    res.save(tmp_path / "r.npz")
    back = nj.Result.load(tmp_path / "r.npz")
    assert set(back.weights) == {"in->out", "in->out.mean"}
    for k in back.weights:
        np.testing.assert_array_equal(back.weights[k], res.weights[k])


def test_ode_and_theory_refuse_plastic_projections():
    rate = nj.neurons.Rate(tau=10.0)
    net = nj.Network([nj.Population("r", 3, rate)],
                     [nj.Projection("r", "r", nj.connectivity.AllToAll(), weight=0.1,
                                    plasticity=TsodyksMarkram(U=0.5, tau_d=100.0))],
                     inputs=[nj.inputs.Constant("r", amplitude=1.0)])
    model = net.build(jax.random.key(0))
    with pytest.raises(ValueError, match="has plasticity"):
        nj.ode.steady_state(model)


def test_sharded_runs_gspmd_and_refuses_shard_map():
    from neurojax.sharding import neuron_mesh, simulate_sharded

    model = _net(PairSTDP(a_plus=0.05, a_minus=0.05, w_max=1.0), LAYOUTS[1])
    mesh = neuron_mesh(jax.devices()[:1])
    ref = nj.simulate(model, 20.0, DT, key=jax.random.key(1))
    out = simulate_sharded(model, 20.0, DT, key=jax.random.key(1), mesh=mesh, method="gspmd")
    np.testing.assert_array_equal(out.spikes["out"], ref.spikes["out"])
    np.testing.assert_array_equal(out.state.plastic[0].weights, ref.state.plastic[0].weights)
    with pytest.raises(ValueError, match="shard_map.*does not support plastic projections"):
        simulate_sharded(model, 20.0, DT, key=jax.random.key(1), mesh=mesh, method="shard_map")


@pytest.mark.parametrize("value", ["in->out", {"in->out": "mean"}, ["in->out", 3]])
def test_record_weights_need_a_sequence_of_names(value):
    # A mapping passed as the sequence of its keys, its values silently ignored.
    for arg in ("weights", "mean_weights"):
        with pytest.raises(ValueError, match=rf"Record {arg}= must be a sequence of projection names"):
            nj.Record(**{arg: value})


@pytest.mark.parametrize("layout", LAYOUTS)
def test_initial_weights_outside_the_rule_bounds_raise_also_under_jit(layout):
    # The check runs on the concrete weights of a model that a jitted function closes
    # over: there `weights != 0` (the dense synapse mask) and `np.max(w_max)` used to be
    # staged out as tracers, so jit (and nj.check_grad, which jits) failed on a dense
    # plastic projection with per-synapse weights.
    good = _net(PairSTDP(w_max=1.0), layout, nj.Uniform(0.0, 1.0))
    run = lambda m: nj.simulate(m, 2.0, DT, key=jax.random.key(1)).state.plastic[0].weights  # noqa: E731
    np.testing.assert_array_equal(jax.jit(lambda: run(good))(), run(good))
    match = r"projection 'in->out': initial weights must lie in the bounds of its PairSTDP, \[0, w_max\] = \[0, 1\]"
    with pytest.raises(ValueError, match=match):  # at build
        _net(PairSTDP(w_max=1.0), layout, nj.Uniform(0.0, 1.5))
    bad = eqx.tree_at(lambda m: m.projections[0].weights.weights, good,
                      1.5 * good.projections[0].weights.weights)
    with pytest.raises(ValueError, match=match):
        run(bad)
    with pytest.raises(ValueError, match=match):
        jax.jit(lambda: run(bad))()
