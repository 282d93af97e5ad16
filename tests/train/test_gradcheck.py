"""`nj.check_grad`: gradient vs central finite differences, per parameter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.train import check_grad


def _scaled_gradient(factor):
    """x -> sum(x**2) whose gradient is replaced by `factor` times the true one."""

    @jax.custom_jvp
    def f(x):
        return jnp.sum(x**2)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return f(x), factor * jnp.sum(2.0 * x * dx)

    return f


def test_exact_gradients_give_ratio_one():
    # A smooth loss: the central difference has error O(h^2) = O(1e-6) relative at
    # h = 1e-3 x rms(x), so the ratio is 1 to 1e-5.
    params = {"a": jnp.asarray(1.5), "b": jnp.arange(1.0, 5.0)}
    report = check_grad(lambda p: jnp.sin(p["a"]) * jnp.sum(p["b"] ** 3), params, step=1e-3)
    assert [r.name for r in report.rows] == ["['a']", "['b']"]
    for r in report.rows:
        assert r.ratio == pytest.approx(1.0, rel=1e-5)
    assert report.signs_agree
    assert report.loss == pytest.approx(np.sin(1.5) * 100.0)
    assert "ratio" in report.table() and "WRONG" not in str(report)


@pytest.mark.parametrize("factor", [2.0, -0.5])
def test_a_biased_gradient_is_reported_as_such(factor):
    # The custom gradient is `factor` times the true one: the report must say so (the
    # finite difference is of the forward pass, which the custom rule does not change).
    # sum(x^2) is quadratic: its central difference is exact at any step.
    report = check_grad(lambda p: _scaled_gradient(factor)(p), jnp.asarray([0.3, -1.2, 2.0]))
    (row,) = report.rows
    assert row.ratio == pytest.approx(factor, rel=1e-5)
    assert row.sign_agrees is (factor > 0)
    assert report.signs_agree is (factor > 0)


def test_where_selects_leaves_and_skips_integers():
    params = {"w": jnp.asarray(2.0), "tau": jnp.asarray(10.0), "n": jnp.asarray(3)}
    loss = lambda p: p["w"] ** 2 / p["tau"] * p["n"]  # noqa: E731
    report = check_grad(loss, params, where=lambda p: p["tau"])
    assert [r.name for r in report.rows] == ["['tau']"]
    # d/dtau (w^2 n / tau) = -w^2 n / tau^2 = -0.12
    assert report.rows[0].gradient == pytest.approx(-0.12, rel=1e-12)
    assert check_grad(loss, params).ratios().keys() == {"['w']", "['tau']"}


def test_stochastic_loss_is_seed_averaged_with_common_random_numbers():
    # L(p, key) = p * z(key) + p^2 with z ~ N(1, 1): the seed-averaged slope is
    # mean(z) + 2p, and with common random numbers the finite difference of each key is
    # exact up to O(h^2), so gradient and finite difference agree to 1e-6 whatever the
    # keys, and the standard error across keys is std(z)/sqrt(64) ~ 0.125.
    keys = jax.random.split(jax.random.key(0), 64)

    def loss(p, key):
        return p * (1.0 + jax.random.normal(key)) + p**2

    report = check_grad(loss, jnp.asarray(0.7), keys=keys)
    (row,) = report.rows
    z = jax.vmap(jax.random.normal)(keys)
    assert row.gradient == pytest.approx(float(jnp.mean(1.0 + z)) + 1.4, rel=1e-10)
    assert row.finite_difference == pytest.approx(row.gradient, rel=1e-6)
    assert 0.07 < row.fd_stderr < 0.2


def test_on_a_neurojax_rate_network():
    # A smooth rate network (tanh units, AllToAll): the simulated loss is a smooth
    # function of every parameter, so the check must give ratios of 1 (to 1e-4: h = 1e-3
    # relative, O(h^2) truncation and float64 round-off ~1e-13 / h).
    pop = nj.Population("R", 4, nj.neurons.FiringRate(tau=5.0, transfer=nj.neurons.Tanh()))
    proj = nj.Projection("R", "R", nj.connectivity.AllToAll(), weight=0.5,
                         synapse=nj.synapses.Delta())
    net = nj.Network([pop], [proj], inputs=[nj.inputs.Constant("R", amplitude=0.4)])
    model = net.build(jax.random.key(0))

    def loss(m):
        res = nj.simulate(m, 5.0, 0.1, key=jax.random.key(1),
                          record=nj.Record(spikes=(), rates=["R"], every=0.5))
        return jnp.sum(res.rates["R"] * jnp.linspace(1.0, 2.0, res.rates["R"].shape[-1]))

    report = check_grad(loss, model, where=lambda m: (m.projections[0].weights.weights,
                                                      m.inputs[0].amplitude), step=1e-3)
    assert len(report.rows) == 2
    for row in report.rows:
        assert row.ratio == pytest.approx(1.0, rel=1e-4), report.table()


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"step .* \(0, inf\)"):
        check_grad(lambda p: p**2, jnp.asarray(1.0), step=0.0)
    with pytest.raises(ValueError, match="no inexact array leaf"):
        check_grad(lambda p: p * 2, {"n": jnp.asarray(3)})
    with pytest.raises(ValueError, match="non-empty batch of PRNG keys"):
        check_grad(lambda p, k: p**2, jnp.asarray(1.0), keys=jax.random.key(0))
    with pytest.raises(ValueError, match="where= must select"):
        check_grad(lambda p: p["a"] ** 2, {"a": jnp.asarray(1.0)}, where=lambda p: p["missing"])


def test_a_nan_gradient_is_a_wrong_sign():
    # jnp.sqrt at 0 has an infinite derivative; times 0 gives NaN in the backward pass.
    report = check_grad(lambda p: jnp.sqrt(p["x"] - p["x"]) * 0.0 + p["y"], {"x": jnp.asarray(1.0),
                                                                          "y": jnp.asarray(2.0)})
    by_name = {r.name: r for r in report.rows}
    assert not by_name["['x']"].sign_agrees
    assert not report.signs_agree
    assert np.isnan(by_name["['x']"].gradient)
