"""Balloon-Windkessel BOLD against a high-accuracy diffrax solution, its closed-form
steady state and its impulse response; functional connectivity and FC similarity."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.analysis import bold as bold_mod


def _reference(z_fn, t1, ts):
    """The same ODE (s, ln f, ln v, ln q) solved by diffrax Dopri8 at rtol = atol =
    1e-11, with the input z(t) given as a function of time [s]."""
    p = bold_mod.HAEMODYNAMICS
    args = (p["kappa"], p["gamma"], p["tau"], p["alpha"], p["e0"])

    def f(t, x, _):
        return bold_mod._vector_field(x, z_fn(t), *args)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(f), diffrax.Dopri8(), 0.0, t1, 1e-3, jnp.zeros((4, 1)),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=1e-11, atol=1e-11,
                                                  jump_ts=jnp.arange(0.0, t1, 1.0)),
        max_steps=100000,
    )
    return jax.vmap(lambda x: bold_mod._signal(x, p["e0"], p["v0"]))(sol.ys)[:, 0]


def test_matches_high_accuracy_ode_solution():
    # A 1 s-long block of input every 4 s (piecewise constant, so the zero-order hold of
    # the RK4 scan is exact when samples do not straddle a jump: dt divides 1 s).
    dt = 10.0  # [ms]
    t1 = 30.0  # [s]
    n = int(t1 * 1000 / dt)
    t_end = (np.arange(n) + 1) * dt * 1e-3
    t_mid = t_end - 0.5 * dt * 1e-3
    z = 0.5 * ((t_mid % 4.0) < 1.0)
    y = np.asarray(nj.analysis.balloon_windkessel(z, dt))
    ref = np.asarray(_reference(lambda t: 0.5 * ((t % 4.0) < 1.0), t1, jnp.asarray(t_end)))
    # RK4's global error is O(dt^4): (10 ms / ~1 s time scales)^4 ~ 1e-8 relative, so
    # 1e-6 of the peak is a loose bound that still catches any error in the equations
    # (a wrong coefficient changes y at the percent level).
    scale = np.abs(ref).max()
    assert scale > 1e-3
    np.testing.assert_allclose(y, ref, atol=1e-6 * scale)


def test_rest_and_closed_form_steady_state():
    y = nj.analysis.balloon_windkessel(jnp.zeros((100, 3)), 10.0)
    # Rest is a fixed point: exactly, up to rounding of 1 - (1 - E0)^(1/f) at f = 1.
    np.testing.assert_allclose(np.asarray(y), 0.0, atol=1e-15)
    # After 200 s of constant input every transient (slowest rate ~0.3/s) has decayed
    # to e^-60; the scan must land on the closed-form steady state (to RK4 accuracy).
    z = jnp.array([0.1, 0.5, 1.0])
    y = nj.analysis.balloon_windkessel(jnp.broadcast_to(z, (20000, 3)), 10.0)
    np.testing.assert_allclose(np.asarray(y[-1]), np.asarray(nj.analysis.bold_steady_state(z)),
                               rtol=1e-8)
    assert np.all(np.diff(np.asarray(nj.analysis.bold_steady_state(z))) > 0)  # monotone


def test_impulse_response_shape():
    # A 100 ms pulse: the canonical haemodynamic response rises, peaks 3-6 s after the
    # stimulus (Friston et al. 2000 Fig. 3; Buxton et al. 1998), falls below baseline
    # (the post-stimulus undershoot, from the slow venous volume) and returns to rest.
    dt = 10.0
    z = jnp.zeros(4000).at[:10].set(1.0)
    y = np.asarray(nj.analysis.balloon_windkessel(z, dt))
    t_peak = (np.argmax(y) + 1) * dt * 1e-3
    assert 3.0 <= t_peak <= 6.0, t_peak
    assert y.min() < -0.05 * y.max()  # undershoot of at least 5 % of the peak
    assert np.argmin(y) > np.argmax(y)
    assert abs(y[-1]) < 1e-3 * y.max()  # back to rest after 40 s
    # Linear in a small input: doubling the pulse doubles the response to 1 %.
    y2 = np.asarray(nj.analysis.balloon_windkessel(0.02 * z, dt))
    y1 = np.asarray(nj.analysis.balloon_windkessel(0.01 * z, dt))
    np.testing.assert_allclose(y2, 2.0 * y1, atol=0.01 * np.abs(y2).max())


def test_differentiable_and_bad_input():
    z = jnp.ones((500, 2)) * 0.3
    g = jax.grad(lambda a: nj.analysis.balloon_windkessel(a * z, 10.0).sum())(1.0)
    assert np.isfinite(g) and g > 0
    with pytest.raises(ValueError, match=r"dt \[ms\] must lie in \(0, 100\]"):
        nj.analysis.balloon_windkessel(z, 0.0)
    with pytest.raises(ValueError, match=r"kappa \[1/s\] must lie in \(0, inf\)"):
        nj.analysis.balloon_windkessel(z, 10.0, kappa=-1.0)
    with pytest.raises(ValueError, match=r"e0 \[dimensionless\] must lie in \(0, 1\)"):
        nj.analysis.balloon_windkessel(z, 10.0, e0=1.0)
    with pytest.raises(ValueError, match="shape"):
        nj.analysis.balloon_windkessel(jnp.ones((2, 2, 2)), 10.0)


def test_functional_connectivity_and_similarity():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6))
    fc = np.asarray(nj.analysis.functional_connectivity(x))
    np.testing.assert_allclose(fc, np.corrcoef(x.T), atol=1e-12)
    np.testing.assert_allclose(np.diag(fc), 1.0, atol=1e-12)
    assert float(nj.analysis.fc_similarity(fc, fc)) == pytest.approx(1.0)
    iu = np.triu_indices(6, 1)
    other = np.corrcoef(rng.standard_normal((500, 6)).T)
    np.testing.assert_allclose(float(nj.analysis.fc_similarity(fc, other)),
                               np.corrcoef(fc[iu], other[iu])[0, 1], atol=1e-12)
    g = jax.grad(lambda a: nj.analysis.fc_similarity(
        nj.analysis.functional_connectivity(x + a * x[:, :1]), other))(0.1)
    assert np.isfinite(g)
    with pytest.raises(ValueError, match="same shape"):
        nj.analysis.fc_similarity(fc, fc[:3, :3])
    with pytest.raises(ValueError, match="samples >= 2"):
        nj.analysis.functional_connectivity(x[:1])


def test_steady_initial_state_has_no_transient():
    # Started at the steady state of its first sample, a constant input gives a constant
    # BOLD signal equal to the closed form (no tens-of-seconds transient).
    z = jnp.broadcast_to(jnp.array([0.2, 0.7]), (300, 2))
    y = np.asarray(nj.analysis.balloon_windkessel(z, 10.0, initial="steady"))
    np.testing.assert_allclose(y, np.broadcast_to(np.asarray(nj.analysis.bold_steady_state(z[0])), y.shape),
                               rtol=1e-10)
    with pytest.raises(ValueError, match="initial must be None, 'steady'"):
        nj.analysis.balloon_windkessel(z, 10.0, initial="rest")
