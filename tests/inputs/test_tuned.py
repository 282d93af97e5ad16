"""`Tuned` inputs: the rate of each neuron's drive follows its preferred feature value
(von Mises on a periodic feature, Gaussian on a line, Naka–Rushton in contrast)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj

RING = nj.connectivity.Ring(length=180.0)  # orientation [deg]


def _model(inp, n=36, features={"orientation": RING}):
    pop = nj.Population("E", n, nj.neurons.LIF(), features=features)
    return nj.Network([pop], [], [inp]).build(jax.random.key(0))


def test_rates_follow_the_von_mises_and_naka_rushton_formula():
    inp = nj.inputs.Tuned("E", "orientation", stimulus=40.0, contrast=0.3, rate=20.0,
                          baseline=2.0, kappa=1.5, c50=0.2, exponent=2.0)
    tuned = _model(inp).inputs[0]
    theta = (np.arange(36) + 0.5) * 5.0  # preferred orientations: centres of 36 equal bins
    g = 0.3**2 / (0.3**2 + 0.2**2)
    expected = 2.0 + 20.0 * g * np.exp(1.5 * (np.cos(2 * np.pi * (theta - 40.0) / 180.0) - 1))
    np.testing.assert_allclose(tuned.rates(), expected, rtol=1e-12)
    # Periodic: a stimulus at 40 + 180 deg is the same grating.
    shifted = _model(nj.inputs.Tuned("E", "orientation", 220.0, 0.3, 20.0, 2.0, 1.5, c50=0.2)).inputs[0]
    np.testing.assert_allclose(shifted.rates(), expected, rtol=1e-12)
    # A non-periodic feature has a Gaussian profile of width kappa; linear in contrast.
    line = _model(nj.inputs.Tuned("E", "x", stimulus=0.5, contrast=0.5, rate=10.0, kappa=0.1),
                  n=10, features={"x": nj.connectivity.Line(length=1.0)}).inputs[0]
    x = (np.arange(10) + 0.5) / 10.0
    np.testing.assert_allclose(line.rates(), 5.0 * np.exp(-0.5 * ((x - 0.5) / 0.1) ** 2), rtol=1e-12)


@pytest.mark.parametrize("generator", ["jax", "hash"])
def test_arrivals_have_the_tuned_means_and_a_stimulus_sweep_is_one_vmap(generator):
    inp = nj.inputs.Tuned("E", "orientation", stimulus=90.0, contrast=1.0, rate=40.0,
                          baseline=5.0, kappa=2.0, n_sources=50, generator=generator)
    tuned = _model(inp).inputs[0]
    dt, steps = 0.1, 20000  # 2 s

    @jax.jit
    def counts(stimulus, key):
        t = _with_stimulus(tuned, stimulus)
        state = t.init(36, key=key)

        def body(s, _):
            s, _d = t.step(s, 0.0, dt)
            return s, s.arrivals
        return jax.lax.scan(body, state, None, length=steps)[1].sum(0)

    stimuli = jnp.array([0.0, 90.0])
    swept = jax.vmap(counts, in_axes=(0, None))(stimuli, jax.random.key(1))
    looped = jnp.stack([counts(s, jax.random.key(1)) for s in stimuli])
    np.testing.assert_array_equal(swept, looped)  # vmap over stimuli == a loop
    for s, c in zip(stimuli, np.asarray(swept)):
        lam = np.asarray(_with_stimulus(tuned, s).rates()) * 50 * steps * dt * 1e-3
        z = (c - lam) / np.sqrt(lam)
        # Poisson counts: each z ~ N(0, 1); over 36 neurons all within 4.5 sd (p ~ 2e-4).
        assert np.all(np.abs(z) < 4.5), z
        # and the sum of squares is chi-square with 36 dof: below its 99.9 % point 67.99.
        assert np.sum(z**2) < 67.99


def _with_stimulus(inp, s):
    import equinox as eqx
    return eqx.tree_at(lambda i: i.stimulus, inp, s)


def test_a_network_driven_by_a_grating_is_tuned_to_it():
    # LIF neurons with preferred orientations, driven by a 60-deg grating: the most
    # active neurons prefer orientations near 60 deg.
    pop = nj.Population("E", 90, nj.neurons.LIF(), features={"orientation": RING})
    grating = nj.inputs.Tuned("E", "orientation", stimulus=60.0, rate=2000.0, baseline=500.0,
                              kappa=2.0, n_sources=10, weight=40.0)
    res = nj.simulate(nj.Network([pop], [], [grating]).build(jax.random.key(0)), 500.0, 0.1,
                      key=jax.random.key(2))
    rates = np.asarray(res.spikes["E"]).sum(0) / 0.5
    pref = (np.arange(90) + 0.5) * 2.0
    near, far = rates[np.abs(pref - 60.0) <= 10], rates[np.abs(pref - 150.0) <= 10]
    assert near.mean() > 5 * max(far.mean(), 1.0), (near.mean(), far.mean())


def test_bad_tuned_input_names_the_problem():
    with pytest.raises(ValueError, match="has no feature 'orientation'"):
        _model(nj.inputs.Tuned("E", "orientation", 0.0), features={})
    with pytest.raises(ValueError, match=r"Tuned kappa must lie in \(0, inf\)"):
        nj.inputs.Tuned("E", "orientation", 0.0, kappa=0.0)
    with pytest.raises(ValueError, match=r"contrast"):
        nj.inputs.Tuned("E", "orientation", 0.0, contrast=-1.0)
    with pytest.raises(ValueError, match="not bound"):
        nj.inputs.Tuned("E", "orientation", 0.0).rates()
    with pytest.raises(ValueError, match=r"Tuned\('E'\) generator must be one of"):
        nj.inputs.Tuned("E", "orientation", 0.0, generator="threefry")
