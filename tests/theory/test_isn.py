"""Inhibition stabilisation and the paradoxical response on built rate networks:
Tsodyks et al. 1997 (REFERENCES.md §7) on both sides of beta J_ee = 1, and the SSN of
Hennequin et al. 2018 (§8): fixed points, the ISN onset, local exponents and
paradoxical changes."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

import neurojax as nj

from ._nets import BETA, SSN_W, ssn, ssn_at, tsodyks


@pytest.mark.parametrize("j_ee", [25.0, 10.5, 9.5, 5.0])
def test_tsodyks_paradox_appears_exactly_when_beta_jee_exceeds_one(j_ee):
    # Linear regime: dI*/dS_i = b (1 - b Jee) / det, det = (1 - b Jee)(1 + b Jii)
    # + b² Jei Jie (REFERENCES.md §7): -0.125 at Jee = 25, +0.0109 at Jee = 5; the sign
    # flips at b Jee = 1, tested just above (10.5) and below (9.5) it.
    model = tsodyks(j_ee)
    u = nj.theory.fixed_point(model)
    assert bool(jnp.all((u > 0) & (u < 1)))  # the premise: linear regime (no cap)
    b = BETA
    det = (1 - b * j_ee) * (1 + b * 7) + b**2 * 25 * 15
    slope = b * (1 - b * j_ee) / det
    delta = 0.01
    for method in ("linear", "solve"):
        d = nj.theory.paradoxical_response(model, "I", delta, fixed_point=u, method=method)
        # Threshold-linear without crossings: linear response is exact, and Newton
        # solves the shifted linear system to rounding.
        np.testing.assert_allclose(d["I"][0] / delta, slope, rtol=1e-9, atol=1e-12)
    isn = nj.theory.is_isn(model, u, excitatory="E")
    assert bool(isn.stable)
    # The E-E block alone: (-1 + b Jee) / tau_E, exactly.
    np.testing.assert_allclose(isn.ee_max_real, (-1 + b * j_ee) / 10.0, rtol=1e-12)
    assert bool(isn.isn) == (b * j_ee > 1) == bool(d["I"][0] < 0)
    assert f"isn=Array({bool(isn.isn)}, dtype=bool)" in repr(isn)  # values, not bool[]
    if j_ee == 25.0:
        np.testing.assert_allclose(slope, -0.125, rtol=1e-12)
        np.testing.assert_allclose(d["E"][0] / delta, -0.2083, atol=5e-5)  # 4 decimals
    if j_ee == 5.0:
        np.testing.assert_allclose(d["I"][0] / delta, 0.0109, atol=5e-5)


SSN_TABLE = {  # REFERENCES.md §8: h [mV] -> r_E, r_I [Hz], ISN, I/E input ratio
    0.5: (0.0917, 0.0950, False, 0.538),
    1.0: (0.4747, 0.5161, False, 0.565),
    2.0: (3.2609, 4.2757, True, 0.682),
    5.0: (8.4543, 15.7836, True, 0.971),
    15.0: (11.2093, 35.2291, True, 1.634),
    20.0: (11.0875, 42.7385, True, 2.004),
    50.0: (6.2104, 81.8664, True, 6.855),
}


def test_ssn_fixed_points_isn_and_input_ratio_batched_over_inputs():
    base = ssn()
    hs = jnp.array(list(SSN_TABLE))
    models = eqx.filter_vmap(lambda h: ssn_at(base, h))(hs)

    def analyse(m):
        u = nj.theory.fixed_point(m)
        return nj.theory.rates(m, u), nj.theory.is_isn(m, u)

    r, isn = eqx.filter_vmap(analyse)(models)
    table = np.array(list(SSN_TABLE.values()))
    # Published to 4 decimals: half the last digit.
    np.testing.assert_allclose(r, table[:, :2], atol=5.01e-5)
    assert np.asarray(isn.isn).tolist() == [bool(x) for x in table[:, 2]]
    assert bool(isn.stable.all())
    ratio = -SSN_W[0, 1] * r[:, 1] / (SSN_W[0, 0] * r[:, 0])
    np.testing.assert_allclose(ratio, table[:, 3], atol=5.01e-4)


def test_ssn_isn_onset_local_exponents_and_eigenvalues():
    base = ssn()

    @jax.jit
    def ee_max(h):
        m = ssn_at(base, h)
        return nj.theory.is_isn(m, nj.theory.fixed_point(m)).ee_max_real

    # ISN onset: the E-E block's eigenvalue crosses 0 at h = 1.0457 mV (published to
    # 4 decimals); brentq to 1e-10 mV.
    onset = brentq(lambda h: float(ee_max(h)), 0.5, 2.0, xtol=1e-10)
    np.testing.assert_allclose(onset, 1.0457, atol=5e-5)
    # ... where u_E = 4/3 mV exactly (W_EE n k u_E = 1): r_E = k u_E² = 0.5333 Hz.
    m = ssn_at(base, onset)
    np.testing.assert_allclose(nj.theory.rates(m, nj.theory.fixed_point(m))[0],
                               0.3 * (4 / 3) ** 2, rtol=1e-8)

    # Local exponent d log r_E / d log h from the implicit-function-theorem gradient
    # of the fixed point (§8: 2.04, 2.59, 0.49, 0.20, -0.12, -0.93, two decimals).
    def log_r_e(log_h):
        m = ssn_at(base, jnp.exp(log_h))
        return jnp.log(nj.theory.rates(m, nj.theory.fixed_point(m))[0])

    hs = jnp.array([0.1, 1.0, 5.0, 10.0, 20.0, 40.0])
    exponents = [float(jax.grad(log_r_e)(jnp.log(h))) for h in hs]
    np.testing.assert_allclose(exponents, [2.04, 2.59, 0.49, 0.20, -0.12, -0.93], atol=5e-3)

    # Damped oscillations at h = 10: eigenvalues -105 ± 39i per s (§8, to 1 s^-1).
    m = ssn_at(base, 10.0)
    ev = nj.theory.eigenvalues(m, nj.theory.fixed_point(m)) * 1e3  # [1/s] = 1e3 [1/ms]
    np.testing.assert_allclose(ev, [-105 - 39j, -105 + 39j], atol=0.5)


def test_ssn_paradoxical_response_to_extra_input_to_i():
    # +0.1 mV to I only (§8): at h = 15, dr_I = -0.686, dr_E = -0.457 Hz (paradoxical);
    # at h = 1 (below the ISN onset), dr_I = +0.012 Hz. Published to 3 decimals.
    base = ssn()
    for h, d_e, d_i in ((15.0, -0.457, -0.686), (1.0, None, 0.012)):
        m = ssn_at(base, h)
        solved = nj.theory.paradoxical_response(m, "I", 0.1, method="solve")
        np.testing.assert_allclose(solved["I"], [d_i], atol=5e-4)
        if d_e is not None:
            np.testing.assert_allclose(solved["E"], [d_e], atol=5e-4)
        linear = nj.theory.paradoxical_response(m, "I", 0.1)
        assert np.sign(linear["I"][0]) == np.sign(d_i)
        if h == 15.0:
            # Linear response differs from the finite change by O(delta²) (curvature
            # of the power law): within 2 % at h = 15 mV. At h = 1 mV the 0.1 mV step
            # is a tenth of the input on a supralinear curve (r ~ h^2.6), so only the
            # sign is compared there (linear: +0.0082 Hz).
            np.testing.assert_allclose(linear["I"], solved["I"], rtol=0.02)


def test_paradoxical_response_is_differentiable_and_vmappable():
    # d(dr_I)/dW_EE by reverse mode through the linear response (Jacobian solve and
    # IFT fixed point) against central differences (eps 1e-5 mV·s: truncation ~1e-10).
    base = ssn_at(ssn(), 15.0)

    def response(w_ee):
        m = eqx.tree_at(lambda m: m.projections[0].weights.weights, base,
                        jnp.reshape(w_ee, (1, 1)))
        return nj.theory.paradoxical_response(m, "I", 0.1)["I"][0]

    eps = 1e-5
    fd = (response(1.25 + eps) - response(1.25 - eps)) / (2 * eps)
    np.testing.assert_allclose(jax.grad(response)(1.25), fd, rtol=1e-5)
    batch = jax.vmap(response)(jnp.array([1.2, 1.25]))
    np.testing.assert_allclose(batch[1], response(1.25), rtol=1e-12)


def test_bad_population_and_delta_name_the_argument():
    model = tsodyks()
    with pytest.raises(ValueError, match=r"population must name a population.*\['E', 'I'\]"):
        nj.theory.paradoxical_response(model, "PV", 0.1)
    with pytest.raises(ValueError, match=r"delta \[input units\] must be finite"):
        nj.theory.paradoxical_response(model, "I", float("inf"))
    with pytest.raises(ValueError, match=r"delta \[input units\] contains NaN"):
        nj.theory.paradoxical_response(model, "I", float("nan"))
    with pytest.raises(ValueError, match="excitatory must name a population"):
        nj.theory.is_isn(model, jnp.zeros(2), excitatory="X")
    with pytest.raises(ValueError, match="method must be 'linear' or 'solve'"):
        nj.theory.paradoxical_response(model, "I", 0.1, method="guess")


def test_float32_solves_converge_at_working_precision():
    # Without x64, Newton's default tolerance follows float32 (1e-5, not 1e-10, which
    # float32 cannot resolve: the solve would never stop). The SSN at h = 15 mV then
    # reproduces §8 to the published digits.
    with jax.enable_x64(False):
        m = ssn_at(ssn(), 15.0)
        r = nj.theory.rates(m, nj.theory.fixed_point(m))
        d = nj.theory.paradoxical_response(m, "I", 0.1, method="solve")
        assert r.dtype == jnp.float32
        np.testing.assert_allclose(r, [11.2093, 35.2291], atol=5e-4)
        np.testing.assert_allclose([d["E"][0], d["I"][0]], [-0.457, -0.686], atol=1e-3)
