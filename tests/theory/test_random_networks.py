"""Mean field of random (Sompolinsky et al. 1988) and low-rank (Mastrogiuseppe &
Ostojic 2018) tanh networks against REFERENCES.md §13."""

import jax
import jax.numpy as jnp
import numpy as np

import neurojax as nj


def test_dmft_variance_matches_published_values_and_differentiates():
    # §13: Delta_0 = 0 for g <= 1, 0.2426 at g = 1.2, 0.7477 at g = 1.5 (4 decimals,
    # from fsolve with the same 201-point quadrature: half the last digit).
    gains = jnp.array([0.5, 0.9, 1.2, 1.5])
    np.testing.assert_allclose(jax.vmap(nj.theory.dmft_variance)(gains),
                               [0.0, 0.0, 0.2426, 0.7477], atol=5e-5)
    # Implicit-adjoint gradient against central differences (eps 1e-5: truncation
    # ~1e-10; bisection converges to 1e-14).
    eps = 1e-5
    fd = (nj.theory.dmft_variance(1.5 + eps) - nj.theory.dmft_variance(1.5 - eps)) / (2 * eps)
    np.testing.assert_allclose(jax.grad(nj.theory.dmft_variance)(1.5), fd, rtol=1e-6)


def test_low_rank_mean_field_table():
    # §13, M_n = 1, Sigma_m = 1: (M_m, g) -> (kappa, Delta_0), 4 decimals; the trivial
    # state below M_m M_n = 1.
    cases = [((0.8, 0.5), (0.0, 0.0)), ((1.5, 0.0), (0.6253, 0.3910)),
             ((1.5, 0.5), (0.5733, 0.4467)), ((2.0, 0.5), (0.7929, 0.8091))]
    for (m_m, g), expected in cases:
        kappa, delta = nj.theory.low_rank_mean_field(m_m, 1.0, 1.0, g)
        np.testing.assert_allclose([kappa, delta], expected, atol=5e-5)
    # Both signs of kappa are solutions above the transition (the sign of the start).
    minus, _ = nj.theory.low_rank_mean_field(2.0, 1.0, 1.0, 0.5, kappa0=-1.0)
    np.testing.assert_allclose(minus, -0.7929, atol=5e-5)
