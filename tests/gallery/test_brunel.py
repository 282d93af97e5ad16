"""`brunel_parameters`: (g, eta) of the built Brunel network by name."""

import jax
import jax.numpy as jnp
import numpy as np

import neurojax as nj
from neurojax.gallery import brunel, brunel_parameters

KEY = jax.random.key(0)


def test_brunel_parameters_set_g_and_eta_as_a_rebuild_would():
    # Small in-degree so the build is quick; g and eta do not touch the connectivity,
    # so the same key gives the same synapses and only the parameters differ.
    base = brunel(regime="C", n_e=200, c_e=100).build(KEY)
    target = brunel(regime="D", n_e=200, c_e=100).build(KEY)  # g = 4.5, eta = 0.9
    moved = base.replace(brunel_parameters(4.5, 0.9, c_e=100))
    for a, b in zip(jax.tree.leaves(moved), jax.tree.leaves(target)):
        np.testing.assert_allclose(a, b, rtol=1e-12)  # the same float64 arithmetic
    assert float(base.params()["I->{E,I}.weight"]) == -5.0 * 0.1 * 250.0  # -g J C_m [pA ms]
    # Brunel 2000: nu_thr = theta / (J C_E tau) = 20 / (0.1 * 100 * 20 ms) = 100 Hz.
    np.testing.assert_allclose(moved.params()["Poisson->E.rate"], 0.9 * 100.0, rtol=1e-12)


def test_brunel_parameters_are_traceable():
    base = brunel(regime="C", n_e=200, c_e=100).build(KEY)
    weight = jax.jit(jax.vmap(
        lambda g: base.replace(brunel_parameters(g, 2.0, c_e=100)).params()["I->{E,I}.weight"]))
    np.testing.assert_allclose(weight(jnp.array([3.0, 6.0])), [-75.0, -150.0], rtol=1e-12)
    grad = jax.grad(lambda eta: base.replace(brunel_parameters(5.0, eta, c_e=100)).inputs[0].rate)(2.0)
    np.testing.assert_allclose(grad, 100.0, rtol=1e-12)  # d(eta nu_thr)/d eta = nu_thr [Hz]
