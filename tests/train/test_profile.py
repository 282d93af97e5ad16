"""`nj.train.Profile`: weights set by a distance or feature profile with a differentiable
amplitude and width on the built support (issue 10, "structured weights whose parameters
are differentiable when the support is fixed")."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neurojax as nj

jax.config.update("jax_enable_x64", True)

N = 120
RING = nj.connectivity.Ring(length=1.0)


def _rate_net(layout, space=RING, n=N, p=0.5, drive=1.0, **pop_kw):
    pop = nj.Population("E", n, nj.neurons.Rate(tau=10.0, transfer=nj.neurons.ReLU()),
                        space=space, **pop_kw)
    proj = nj.Projection("E", "E", nj.connectivity.DistanceDependent(p=p, width=0.2),
                         weight=0.01, layout=layout)
    return nj.Network([pop], [proj], inputs=[nj.inputs.Constant("E", amplitude=drive)])


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse()],
                         ids=["dense", "sparse"])
@pytest.mark.parametrize("kind", ["gaussian", "exponential"])
def test_profile_weights_on_a_torus_equal_the_closed_form(layout, kind):
    # A 2-D torus: distances across the edges and corners by the minimum image.
    sheet = nj.connectivity.Sheet(extent=(1.0, 1.0))   # a 10 x 10 grid
    model = _rate_net(layout, space=sheet, n=100, p=0.6).build(jax.random.key(1))
    built = np.asarray(model.projections[0].weights.matrix())
    c = nj.train.constrain(model, {"E->E": nj.train.Profile(0.03, 0.15, profile=kind)})
    xyz = sheet.coordinates(100)
    d = sheet.distance(xyz[:, None, :], xyz[None, :, :])      # (post, pre), numpy
    f = np.exp(-0.5 * (d / 0.15) ** 2) if kind == "gaussian" else np.exp(-d / 0.15)
    expected = np.where(built != 0, 0.03 * f, 0.0)
    # Same float64 formula in another order: agreement to rounding.
    np.testing.assert_allclose(np.asarray(c.projections[0].weights.matrix()), expected,
                               rtol=1e-12, atol=1e-15)
    assert (built != 0).sum() > 500  # the support is the built one, not all pairs
    # Pairs straddling the torus' corner are near neighbours: (0.05, 0.05) and
    # (0.95, 0.95) are 0.1 * sqrt(2) apart.
    assert d[0, 99] == pytest.approx(0.1 * np.sqrt(2.0), rel=1e-12)


def test_von_mises_feature_profile_equals_the_closed_form():
    ori = nj.connectivity.Ring(length=180.0)
    pop = nj.Population("E", 60, nj.neurons.Rate(tau=10.0), features={"orientation": ori})
    proj = nj.Projection("E", "E", nj.connectivity.FeatureDependent(p=0.7, kappa=1.0),
                         weight=0.01, layout=nj.connectivity.Sparse())
    model = nj.Network([pop], [proj]).build(jax.random.key(2))
    built = np.asarray(model.projections[0].weights.matrix())
    c = nj.train.constrain(model, {"E->E": nj.train.Profile(
        0.05, 2.0, profile="von_mises", feature="orientation")})
    assert "E->E.weight.free.log_kappa" in c.params()
    theta = ori.coordinates(60)[:, 0]
    f = np.exp(2.0 * (np.cos(2 * np.pi * (theta[:, None] - theta[None, :]) / 180.0) - 1.0))
    np.testing.assert_allclose(np.asarray(c.projections[0].weights.matrix()),
                               np.where(built != 0, 0.05 * f, 0.0), rtol=1e-12, atol=1e-15)


def _loss(model, target_shape):
    """Mean squared distance of the steady rates (after 200 ms) to a target."""
    res = nj.simulate(model, 200.0, 0.5, key=jax.random.key(0),
                      record=nj.Record(spikes=(), rates=(), v={"E": None}, every=200.0))
    return jnp.mean((res.variables["E.v"][-1] - target_shape) ** 2)


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse()],
                         ids=["dense", "sparse"])
def test_profile_gradient_matches_finite_differences(layout):
    bump = jnp.exp(-0.5 * ((jnp.arange(N) + 0.5) / N - 0.5) ** 2 / 0.05 ** 2)
    net = _rate_net(layout)
    net = nj.Network(net.populations, net.projections,
                     inputs=[nj.inputs.Constant("E", amplitude=bump)])
    model = nj.train.constrain(net.build(jax.random.key(0)),
                               {"E->E": nj.train.Profile(0.05, 0.1)})
    target = 1.5 * bump
    names = ["E->E.weight.free.amplitude", "E->E.weight.free.log_width"]
    values = {k: model.params()[k] for k in names}
    grad = jax.grad(lambda v: _loss(model.replace(v), target))(values)
    for k in names:
        h = 1e-5
        up = _loss(model.replace({**values, k: values[k] + h}), target)
        down = _loss(model.replace({**values, k: values[k] - h}), target)
        # Smooth path (a linear-threshold rate network above threshold everywhere),
        # float64: the central difference's error is O(h^2) ~ 1e-10 relative.
        np.testing.assert_allclose(float(grad[k]), float((up - down) / (2 * h)), rtol=1e-6)


def test_fit_recovers_the_profile_width_and_amplitude():
    """A ring rate network's response to a localised input, generated with amplitude 0.02
    and width 0.08: L-BFGS from 0.01 and 0.15 recovers both (the support is the same).
    The recurrent loop gain stays below 1 (a N p sqrt(2 pi) sigma ~ 0.4), so the steady
    state exists and is unique."""
    bump = jnp.exp(-0.5 * ((jnp.arange(N) + 0.5) / N - 0.3) ** 2 / 0.05 ** 2)
    net = _rate_net(nj.connectivity.Sparse(), p=0.8)
    net = nj.Network(net.populations, net.projections,
                     inputs=[nj.inputs.Constant("E", amplitude=bump)])
    built = net.build(jax.random.key(3))
    truth = nj.train.constrain(built, {"E->E": nj.train.Profile(0.02, 0.08)})
    target = nj.simulate(truth, 200.0, 0.5, key=jax.random.key(0),
                         record=nj.Record(spikes=(), v={"E": None}, every=200.0)).variables["E.v"][-1]
    model = nj.train.constrain(built, {"E->E": nj.train.Profile(0.01, 0.15)})
    names = ["E->E.weight.free.amplitude", "E->E.weight.free.log_width"]
    values = {k: model.params()[k] for k in names}
    # L-BFGS: two parameters of very different scales (0.02 pA ms and log 0.15), a
    # smooth loss; a first-order method with one learning rate would need thousands of
    # steps.
    loss_fn = lambda v: _loss(model.replace(v), target)  # noqa: E731
    opt = optax.lbfgs()
    state = opt.init(values)
    value_and_grad = optax.value_and_grad_from_state(loss_fn)

    @jax.jit
    def step(values, state):
        loss, g = value_and_grad(values, state=state)
        updates, state = opt.update(g, state, values, value=loss, grad=g, value_fn=loss_fn)
        return optax.apply_updates(values, updates), state, loss

    for _ in range(25):
        values, state, loss = step(values, state)
    # The response is a smooth, identifiable function of (a, sigma) here (each changes
    # the bump's height and spread differently): both come back to 1 %.
    assert float(values[names[0]]) == pytest.approx(0.02, rel=0.01)
    assert float(jnp.exp(values[names[1]])) == pytest.approx(0.08, rel=0.01)


def test_profile_bad_input():
    with pytest.raises(ValueError, match=r"width \[space units\] must lie in \(0, inf\)"):
        nj.train.Profile(1.0, 0.0)
    with pytest.raises(ValueError, match="profile must be one of"):
        nj.train.Profile(1.0, 0.1, profile="box")
    with pytest.raises(ValueError, match="amplitude must be finite"):
        nj.train.Profile(float("nan"), 0.1)
    # No space on the population.
    pop = nj.Population("E", 10, nj.neurons.Rate(tau=10.0))
    model = nj.Network([pop], [nj.Projection("E", "E", nj.connectivity.AllToAll(),
                                             weight=0.01)]).build(jax.random.key(0))
    with pytest.raises(ValueError, match="has no space"):
        nj.train.constrain(model, {"E->E": nj.train.Profile(1.0, 0.1)})
    # A von Mises profile needs a ring.
    sheet = _rate_net(nj.connectivity.Dense(), space=nj.connectivity.Sheet(
        extent=(1.0, 1.0)), n=16).build(jax.random.key(0))
    with pytest.raises(ValueError, match="periodic one-dimensional"):
        nj.train.constrain(sheet, {"E->E": nj.train.Profile(1.0, 1.0, profile="von_mises")})
    # Outside constrain it cannot know the positions.
    with pytest.raises(ValueError, match="reads the populations' positions"):
        nj.train.constrain_weights(sheet.projections[0].weights, nj.train.Profile(1.0, 0.1))
