"""One parameter per physical quantity: the shared weight of a multi-target projection
(`SharedProjections`) and the named `params()` / `replace()` helpers (issue 16)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax import ode
from neurojax.connectivity import Dense, FixedProbability, Sparse
from neurojax.connectivity.builders import AllToAll
from neurojax.distributions import Normal
from neurojax.inputs.deterministic import Constant
from neurojax.network import Network, Population, Projection, SharedProjections
from neurojax.neurons.lif import LIF
from neurojax.neurons.rate import FiringRate, ReLU
from neurojax.simulate import Record, simulate
from neurojax.synapses.kinetics import Exponential

DT = 0.1
LIF_0 = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0)


def _net(layout=None, inh_weight=-60.0, name=None):
    E, I = Population("E", 20, LIF_0), Population("I", 5, LIF_0)
    return Network(
        [E, I],
        [Projection("E", ["E", "I"], FixedProbability(0.3), weight=30.0, layout=layout),
         Projection("I", ["E", "I"], FixedProbability(0.3), weight=inh_weight, layout=layout,
                    synapse=Exponential(tau=5.0), name=name)],
        inputs=[Constant("E", amplitude=250.0), Constant("I", amplitude=230.0)],
    )


def _split_net(layout=None):
    """`_net` with I's two targets as separate projections (two weight leaves). The
    build keys run over the targets in order, so the synapses are the same."""
    net = _net(layout)
    inh = net.projections[1]
    return Network(net.populations,
                   [net.projections[0]]
                   + [Projection("I", post, inh.connectivity, weight=-60.0, layout=layout,
                                 synapse=inh.synapse) for post in ("E", "I")],
                   inputs=net.inputs)


def _mean_rate(model):
    res = simulate(model, 30.0, DT, key=jax.random.key(1), truncate=2.0,
                   record=Record(spikes=(), rates=["E"]))
    return res.rates["E"].mean()


# ---------------------------------------------------------------------------------------
# One leaf for one weight.


@pytest.mark.parametrize("layout", [Dense(), Sparse()])
def test_multi_target_scalar_weight_is_one_leaf(layout):
    model = _net(layout).build(jax.random.key(0))
    split = _split_net(layout).build(jax.random.key(0))
    assert isinstance(model.projections, SharedProjections)
    assert model.projections.groups == (("E->{E,I}", (0, 1)), ("I->{E,I}", (2, 3)))
    # Written with separate projections for I's targets, the network has one weight
    # leaf more (E's two targets share theirs in both).
    assert len(jax.tree.leaves(split)) - len(jax.tree.leaves(model)) == 1
    ie, ii = model.projection("I->E").weights, model.projection("I->I").weights
    assert ie.weights is ii.weights and float(ie.weights) == -60.0
    # Same synapses as the split network: sharing changes storage, not structure.
    for name in ("I->E", "I->I"):
        np.testing.assert_array_equal(model.projection(name).weights.matrix(),
                                      split.projection(name).weights.matrix())
    weights = {k for k in model.params() if k.endswith(".weight")}
    assert weights == {"E->{E,I}.weight", "I->{E,I}.weight"}
    assert {"I->E.weight", "I->I.weight"} <= set(split.params())


def test_named_multi_target_projection_names_its_shared_weight():
    p = _net(name="inh").build(jax.random.key(0)).params()
    assert float(p["inh.weight"]) == -60.0 and "inh:E.synapse.tau" in p


@pytest.mark.parametrize("weight", [Normal(-60.0, 5.0), "matrix"])
def test_per_synapse_weights_are_not_shared(weight):
    if isinstance(weight, str):
        weight = -60.0 * np.ones((20, 5))  # an (n_post, n_pre) array fits only I->E
        net = Network([Population("E", 20, LIF_0), Population("I", 5, LIF_0)],
                      [Projection("I", ["E"], FixedProbability(0.3), weight=weight)])
        assert net.build(jax.random.key(0)).projections.groups == ()
        return
    model = _net(inh_weight=weight).build(jax.random.key(0))
    assert [g for g, _ in model.projections.groups] == ["E->{E,I}"]
    assert "I->E.weight" in model.params() and "I->I.weight" in model.params()


def test_tree_at_on_either_target_sets_both():
    model = _net().build(jax.random.key(0))
    for j in (2, 3):
        new = eqx.tree_at(lambda m: m.projections[j].weights.weights, model, jnp.asarray(-80.0))
        assert float(new.projection("I->E").weights.weights) == -80.0
        assert float(new.projection("I->I").weights.weights) == -80.0
        assert float(model.projection("I->I").weights.weights) == -60.0  # a copy
        assert new.projections.groups == model.projections.groups


def test_partition_combine_and_serialisation_keep_the_shared_leaf(tmp_path):
    model = _net().build(jax.random.key(0))
    arrays, static = eqx.partition(model, eqx.is_inexact_array)
    again = eqx.combine(arrays, static)
    assert again.projection("I->I").weights.weights is again.projection("I->E").weights.weights
    changed = model.replace({"I->{E,I}.weight": -75.0})
    eqx.tree_serialise_leaves(tmp_path / "m.eqx", changed)
    loaded = eqx.tree_deserialise_leaves(tmp_path / "m.eqx", model)
    assert float(loaded.projection("I->E").weights.weights) == -75.0
    assert float(loaded.projection("I->I").weights.weights) == -75.0


def test_constraining_one_target_ends_only_its_groups_sharing():
    model = _net(Sparse()).build(jax.random.key(0))
    constrained = nj.train.constrain(model, {"I->E": nj.train.Dale(-1)})
    # I->E now has per-synapse free values; I->I keeps its scalar, now its own; the E
    # group is untouched.
    assert constrained.projections.groups == (("E->{E,I}", (0, 1)),)
    p = constrained.params()
    assert "I->E.weight.free" in p and float(p["I->I.weight"]) == -60.0
    assert "E->{E,I}.weight" in p
    resolved = nj.train.resolve(constrained)
    np.testing.assert_allclose(resolved.projection("I->E").weights.matrix(),
                               model.projection("I->E").weights.matrix(), rtol=1e-6)


# ---------------------------------------------------------------------------------------
# Gradients through the shared leaf.


def _fan_out(w, h=2.0):
    """One rate unit A (linear, tau 10 ms) exciting itself and a unit B through one
    Projection("A", ["A", "B"]) with one weight w, input h to A. Fixed point:
    r_A = h / (1 - w), r_B = w h / (1 - w) for w < 1."""
    units = FiringRate(tau=10.0, transfer=ReLU(gain=1.0))
    return Network([Population("A", 1, units), Population("B", 1, units)],
                   [Projection("A", ["A", "B"], AllToAll(allow_autapses=True), weight=w)],
                   inputs=[Constant("A", amplitude=h)]).build(jax.random.key(0))


def test_shared_weight_gradient_matches_analytic_derivative_and_sum_of_targets():
    model = _fan_out(0.5)
    assert model.params()["A->{A,B}.weight"].shape == ()

    def r_b(m):
        ys = ode.steady_state(m)
        return ys[1].r[0]

    # One compilation for the value and the finite differences, one for the gradient.
    r_of_w = jax.jit(lambda w: r_b(model.replace({"A->{A,B}.weight": w})))
    w, h = 0.5, 2.0
    # Steady state first: r_B = w h / (1 - w) = 2 at w = 1/2. Newton converges to its
    # rtol 1e-10, so 1e-8 is ample.
    np.testing.assert_allclose(r_of_w(w), w * h / (1 - w), rtol=1e-8)
    # d r_B / d w through both targets = h / (1 - w)^2 = 8 (the A->A path gives
    # w h / (1 - w)^2 = 4, the A->B path h / (1 - w) = 4). Implicit differentiation
    # through Newton's solution: accurate to ~1e-8.
    grad = jax.jit(jax.grad(r_of_w))(w)
    np.testing.assert_allclose(grad, h / (1 - w) ** 2, rtol=1e-7)
    # eqx.filter_grad of the model has one cotangent for the leaf, the same total.
    g_model = eqx.filter_jit(eqx.filter_grad(r_b))(model)
    np.testing.assert_allclose(g_model.projections[0].weights.weights, grad, rtol=1e-12)
    # Central differences (eps 1e-5: truncation O(eps^2) ~ 1e-10 relative).
    eps = 1e-5
    up, down = (float(r_of_w(w + s * eps)) for s in (1, -1))
    np.testing.assert_allclose(grad, (up - down) / (2 * eps), rtol=1e-6)


def test_spiking_shared_gradient_is_the_sum_over_its_targets():
    model = _net(Sparse()).build(jax.random.key(0))
    split = _split_net(Sparse()).build(jax.random.key(0))
    g_shared = jax.grad(lambda w: _mean_rate(model.replace({"I->{E,I}.weight": w})))(-60.0)
    g_each = jax.grad(lambda w: _mean_rate(split.replace({"I->E.weight": w[0], "I->I.weight": w[1]})))(
        jnp.array([-60.0, -60.0]))
    # Same synapses, same run: the one leaf's derivative is the sum over its targets
    # (float64; the two differ only in summation order).
    np.testing.assert_allclose(g_shared, g_each.sum(), rtol=1e-9)
    assert np.isfinite(g_shared) and float(g_shared) != 0.0


# ---------------------------------------------------------------------------------------
# params() / replace(): round trip, transforms, errors.


def test_params_replace_round_trip():
    model = _net().build(jax.random.key(0))
    p = model.params()
    same = model.replace(p)
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(same)):
        np.testing.assert_array_equal(a, b)
    bumped = {k: v + 1.0 for k, v in p.items()}
    q = model.replace(bumped).params()
    assert set(q) == set(p)
    for k in p:
        np.testing.assert_allclose(q[k], bumped[k], rtol=1e-12, err_msg=k)


def test_replace_under_jit_equals_eager():
    model = _net().build(jax.random.key(0))
    f = lambda w, g_l: _mean_rate(model.replace({"I->{E,I}.weight": w, "E.g_l": g_l}))  # noqa: E731
    eager = f(-50.0, 9.0)
    np.testing.assert_allclose(jax.jit(f)(-50.0, 9.0), eager, rtol=1e-12)
    assert float(eager) > 0


def test_sweep_over_replace_equals_a_loop():
    model = _net().build(jax.random.key(0))
    ws = jnp.array([-600.0, -300.0, -60.0])  # [pA]
    swept = nj.sweep(lambda w: _mean_rate(model.replace({"I->{E,I}.weight": w})), w=ws)
    looped = [_mean_rate(model.replace({"I->{E,I}.weight": w})) for w in ws]
    np.testing.assert_allclose(swept, looped, rtol=1e-12)
    assert swept[0] < swept[1] < swept[2]  # weaker inhibition, more E activity


def test_replace_errors_name_the_parameter():
    model = _net().build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"no parameter matches 'E\.c_n'.*'E\.c_m'"):
        model.replace({"E.c_n": 200.0})
    with pytest.raises(ValueError, match=r"'I->I\.weight' is not a parameter of its own.*"
                                         r"\['I->E', 'I->I'\].*'I->\{E,I\}\.weight'"):
        model.replace({"I->I.weight": -50.0})
    with pytest.raises(ValueError, match=r"'I->\{E,I\}\.weight' has shape \(\); got a value of shape \(5,\)"):
        model.replace({"I->{E,I}.weight": np.zeros(5)})
    with pytest.raises(ValueError, match=r"'E\.c_m' has shape \(\).*\(3,\).*\(20,\) per neuron"):
        model.replace({"E.c_m": np.ones(3)})
