"""Costs besides the task, each against a value computed by hand."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.train import add_noise, rate_cost, spike_count_cost, weight_l1, weight_l2, wiring_cost


def test_rate_cost_on_arrays_and_results():
    rates = jnp.asarray([[1.0, 3.0], [2.0, 4.0]])
    assert float(rate_cost(rates, power=1)) == 2.5  # (1 + 3 + 2 + 4) / 4
    assert float(rate_cost(rates)) == 7.5  # (1 + 9 + 4 + 16) / 4
    pop = nj.Population("R", 2, nj.neurons.FiringRate(tau=5.0, transfer=nj.neurons.Tanh()))
    model = nj.Network([pop], inputs=[nj.inputs.Constant("R", amplitude=0.4)]).build(jax.random.key(0))
    res = nj.simulate(model, 2.0, 0.5, key=jax.random.key(0), record=nj.Record(spikes=(), rates=["R"]))
    assert float(rate_cost(res)) == pytest.approx(float(np.mean(np.asarray(res.rates["R"]) ** 2)),
                                                  rel=1e-12)
    with pytest.raises(ValueError, match=r"rates of \['E'\] were not recorded"):
        rate_cost(res, "E")


def test_spike_count_cost():
    spikes = jnp.asarray([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # (steps, n)
    assert float(spike_count_cost(spikes)) == pytest.approx(4.0 / 3.0)  # counts 2, 0, 2
    with pytest.raises(ValueError, match=r"shape \(steps, n\)"):
        spike_count_cost(jnp.ones(3))
    pop = nj.Population("E", 3, nj.neurons.LIF())
    net = nj.Network([pop], inputs=[nj.inputs.Constant("E", amplitude=500.0)])
    res = nj.simulate(net.build(jax.random.key(0)), 50.0, 0.1, key=jax.random.key(0),
                      record=nj.Record(spikes=["E"], float_spikes=True))
    expected = np.asarray(res.spikes["E"]).sum(axis=0).mean()
    assert expected > 0 and float(spike_count_cost(res)) == pytest.approx(expected)


def test_weight_l1_l2_count_every_synapse():
    w = jnp.asarray([[1.0, -2.0], [0.0, 3.0]])
    assert float(weight_l1(w)) == 6.0 and float(weight_l2(w)) == 14.0
    pops = [nj.Population("A", 3, nj.neurons.LIF()), nj.Population("B", 2, nj.neurons.LIF())]
    projs = [nj.Projection("A", "B", nj.connectivity.AllToAll(), weight=-0.5,
                           layout=nj.connectivity.Dense()),
             nj.Projection("B", "A", nj.connectivity.AllToAll(), weight=2.0,
                           layout=nj.connectivity.Sparse(kernel="loop"))]
    model = nj.Network(pops, projs).build(jax.random.key(0))
    # A->B: 6 synapses of -0.5; B->A: 6 synapses of 2.0 (a shared scalar weight each).
    assert float(weight_l1(model, "A->B")) == pytest.approx(3.0)
    assert float(weight_l1(model)) == pytest.approx(3.0 + 12.0)
    assert float(weight_l2(model)) == pytest.approx(6 * 0.25 + 6 * 4.0)
    # Constrained (per-synapse, sparse with padding): same totals.
    constrained = nj.train.constrain(model, {"B->A": nj.train.Bounded(max_change=1.0)})
    assert float(weight_l1(constrained, "B->A")) == pytest.approx(12.0, rel=1e-12)
    with pytest.raises(ValueError, match="no projection matches"):
        weight_l1(model, "X->Y")


def test_wiring_cost():
    w = jnp.asarray([[0.0, 2.0], [-1.0, 0.0]])
    xy = jnp.asarray([[0.0, 0.0], [3.0, 4.0]])  # 5 apart
    assert float(wiring_cost(w, xy)) == pytest.approx(2.0 * 5.0 + 1.0 * 5.0)
    post = jnp.asarray([[0.0, 0.0], [0.0, 1.0]])
    # |w| x distance: (0,0)-(3,4): 5 for w=2; (0,1)-(0,0): 1 for w=-1.
    assert float(wiring_cost(w, xy, post)) == pytest.approx(2.0 * 5.0 + 1.0 * 1.0)
    g = jax.grad(lambda p: wiring_cost(jnp.ones((2, 2)), p))(xy)  # coinciding pairs: finite
    assert np.all(np.isfinite(np.asarray(g)))
    with pytest.raises(ValueError, match=r"weights \(n_post, n_pre\)"):
        wiring_cost(jnp.ones((3, 2)), xy)


def test_add_noise_perturbs_float_leaves_only():
    tree = {"x": jnp.zeros(20000), "n": jnp.arange(3)}
    noisy = add_noise(tree, 0.5, jax.random.key(0))
    assert np.array_equal(noisy["n"], tree["n"])
    # std of 20000 draws: within 3 standard errors (0.5 / sqrt(2 * 20000) = 0.0025).
    assert float(jnp.std(noisy["x"])) == pytest.approx(0.5, abs=0.0075)
    g = jax.grad(lambda x: jnp.sum(add_noise(x, 0.1, jax.random.key(1))))(jnp.ones(3))
    np.testing.assert_array_equal(g, 1.0)
    assert eqx.tree_equal(add_noise(tree, 0.0, jax.random.key(0)), tree)
