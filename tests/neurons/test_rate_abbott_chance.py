"""The Abbott–Chance transfer (neurojax/neurons/rate.py, `AbbottChance`) used by the V1
gallery model: its formula, its limits and finite derivatives at and far from
threshold. (A separate file from test_rate.py only to keep parallel edits apart.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from neurojax.neurons.rate import AbbottChance


def _formula(h, tau_m, g_l, v_l=-70.0, v_th=-50.0, v_r=-60.0, sigma=1.0):
    # REFERENCES.md §17 Set A, evaluated directly (mpmath-free: float64 away from x = 0).
    v = v_l + h / g_l
    x = v - v_th
    return 1e3 * x / (tau_m * (v_th - v_r) * (1.0 - np.exp(-x / sigma)))


def test_matches_formula_and_limits():
    f = AbbottChance(tau_m=28.8, g_l=6.25)
    h = np.array([0.0, 50.0, 100.0, 115.03, 124.0, 126.0, 150.0, 400.0])  # [pA]
    # Away from threshold (V = -50 mV at h = 125 pA) the direct formula is accurate to
    # rounding, so 1e-12 relative.
    np.testing.assert_allclose(f(jnp.asarray(h)), _formula(h, 28.8, 6.25), rtol=1e-12)
    # At threshold the limit sigma / (tau_m (V_th - V_r)) [1/ms] = 3.4722 Hz, and the
    # series branch joins the exact one smoothly (within 1e-12 across |x| = 1e-4).
    np.testing.assert_allclose(f(125.0), 1e3 / (28.8 * 10.0), rtol=1e-15)
    for x in (0.99e-4, 1.01e-4, -0.99e-4, -1.01e-4):  # [mV] from threshold
        np.testing.assert_allclose(f(125.0 + 6.25 * x), _formula(125.0 + 6.25 * x, 28.8, 6.25),
                                   rtol=1e-11)
    # Far below threshold: exponentially small, never NaN; far above: linear.
    assert 0.0 <= float(f(-1e5)) < 1e-300 or float(f(-1e5)) == 0.0
    np.testing.assert_allclose(f(1e5), _formula(1e5, 28.8, 6.25), rtol=1e-12)


def test_derivatives_are_finite_and_correct():
    f = AbbottChance(tau_m=16.0, g_l=5.0)
    # Threshold is at 100 pA here: the series branch (100), just off it, both tails.
    h = jnp.array([100.0, 100.0 + 1e-6, 0.0, -1e4, 1e4])
    check_grads(f, (h,), order=1, modes=["fwd", "rev"])
    assert np.all(np.isfinite(jax.vmap(jax.grad(f))(h)))


def test_v_r_must_lie_below_v_th():
    with pytest.raises(ValueError, match=r"v_r \[mV\] must lie below v_th"):
        AbbottChance(v_r=-40.0)
