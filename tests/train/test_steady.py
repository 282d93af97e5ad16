"""`nj.train.fit_steady_states`: fits to known fixed points from several inits at once."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neurojax as nj
from neurojax.train import fit_steady_states


def _ssn(w):
    """The 2-population SSN of Hennequin et al. 2018 (REFERENCES.md §8), input h to both."""
    pl = nj.neurons.PowerLaw(k=0.3, n=2.0)
    pops = [nj.Population("E", 1, nj.neurons.Rate(tau=20.0, v_rest=-70.0, transfer=pl)),
            nj.Population("I", 1, nj.neurons.Rate(tau=10.0, v_rest=-70.0, transfer=pl))]
    names = "EI"
    projs = [nj.Projection(pre, post, nj.connectivity.AllToAll(allow_autapses=True),
                           weight=float(w[i][j]))
             for i, post in enumerate(names) for j, pre in enumerate(names)]
    inputs = [nj.inputs.Constant(p, amplitude=1.0) for p in names]
    return nj.Network(pops, projs, inputs=inputs).build(jax.random.key(0))


def _at(m, h):
    return eqx.tree_at(lambda m: (m.inputs[0].amplitude, m.inputs[1].amplitude), m, (h, h))


W_TRUE = [[1.25, -0.65], [1.2, -0.5]]


def test_fit_recovers_the_fixed_points_of_a_known_ssn():
    truth = _ssn(W_TRUE)
    hs = jnp.array([1.0, 5.0, 15.0])  # [mV], supralinear to sublinear regime
    targets = jnp.stack([nj.theory.rates(_at(truth, h), nj.theory.fixed_point(_at(truth, h)))
                         for h in hs])
    # Two initialisations: J_EE and J_II 10 % off in opposite directions.
    starts = [_ssn([[1.25 * f, -0.65], [1.2, -0.5 / f]]) for f in (0.9, 1.1)]
    models = jax.tree.map(lambda *x: jnp.stack(x) if eqx.is_array(x[0]) else x[0], *starts)
    spec = nj.train.trainable(truth, include=["E->E.weight", "I->I.weight"])
    fits = fit_steady_states(models, _at, hs, targets, optax.adam(0.02), 100, trainable=spec)
    assert fits.losses.shape == (100, 2) and fits.rates.shape == (2, 3, 2)
    assert fits.converged.all() and fits.stable.all()
    # Noise-free data of the model's own form: the loss must fall by orders of
    # magnitude from its start; EV > 0.999 (the issue asks > 0.95 on noisy data).
    assert np.all(fits.losses[-1] < 1e-3 * fits.losses[0])
    assert np.all(fits.explained_variance > 0.999)
    # The fitted rates match a fresh fixed-point solve of the fitted models (the
    # reported rates are real fixed points), to 1e-3 Hz (float32 Newton, tolerance
    # 1e-5 relative, on rates of up to ~40 Hz).
    for k in range(2):
        m = jax.tree.map(lambda x: x[k] if eqx.is_array(x) else x, fits.models)
        again = nj.theory.rates(_at(m, hs[-1]), nj.theory.fixed_point(_at(m, hs[-1])))
        np.testing.assert_allclose(fits.rates[k, -1], again, atol=1e-3)
    # The untrained weights did not move.
    for name in ("E->I.weight", "I->E.weight"):
        np.testing.assert_array_equal(fits.models.params()[name], models.params()[name])


def test_bad_arguments_name_the_parameter():
    m = _ssn(W_TRUE)
    models = jax.tree.map(lambda x: jnp.stack([x, x]) if eqx.is_array(x) else x, m)
    hs = jnp.array([1.0, 2.0])
    with pytest.raises(ValueError, match="steps"):
        fit_steady_states(models, _at, hs, jnp.zeros((2, 2)), optax.adam(0.01), 0)
    with pytest.raises(ValueError, match=r"targets \[rates\].*\(2, 2\)"):
        fit_steady_states(models, _at, hs, jnp.zeros((3, 2)), optax.adam(0.01), 5)
    with pytest.raises(ValueError, match="newton_steps"):
        fit_steady_states(models, _at, hs, jnp.zeros((2, 2)), optax.adam(0.01), 5, newton_steps=0)
