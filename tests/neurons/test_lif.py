import math
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
from jax.test_util import check_grads

from neurojax._abstract import Drive
from neurojax.neurons.lif import (
    ALIF, EIF, LIF, AdEx, AdExState, ALIFState, EIFState, LIFState,
)
from neurojax.surrogate import Triangle

# Brunel (2000) LIF with voltages relative to rest (REFERENCES.md section 3):
# tau_m = c_m / g_l = 20 ms, theta = 20 mV, V_r = 10 mV, tau_rp = 2 ms; mu = I / g_l.
BRUNEL = dict(c_m=250.0, g_l=12.5, e_l=0.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
# EIF of REFERENCES.md section 3 (neuronaldynamics exp_IF.py): tau = 12 ms and
# R = 20 MOhm give g_l = 50 nS and c_m = 600 pF; no refractoriness.
EIF_REF = dict(
    c_m=600.0, g_l=50.0, e_l=-65.0, v_t=-55.0, delta_t=2.0, v_peak=-30.0,
    v_reset=-60.0, t_ref=0.0,
)


def _drive(i, g=0.0, q=0.0, qg=0.0, n=None):
    """A constant `Drive` for `n` neurons; each field a scalar or shape (n,)."""
    fields = [jnp.asarray(x, float) for x in (i, g, q, qg)]
    n = n if n is not None else max(x.size for x in fields)
    return Drive(*(jnp.broadcast_to(x, (n,)) for x in fields))


def _scan(model, drive, dt, steps, state=None):
    """Scan `model.step` under a constant drive; returns (states, spikes) per step."""
    state = model.init(drive.i.shape[0]) if state is None else state

    def body(s, _):
        s, spikes = model.step(s, drive, dt)
        return s, (s, spikes)

    return jax.lax.scan(body, state, None, length=steps)[1]


# Parameters and drive are traced arguments (dt and steps static), so runs that differ
# only in their values share one compilation.
_run = eqx.filter_jit(_scan)


def _spike_steps(spikes):
    return np.nonzero(np.asarray(spikes))[0]


# ---------------------------------------------------------------------------------------
# LIF: analytic solutions


def test_lif_subthreshold_matches_analytic_solution():
    lif = LIF(c_m=250.0, g_l=12.5, e_l=-70.0, v_th=-40.0, v_reset=-70.0, t_ref=2.0)
    # Neuron 0: current only. Neurons 1, 2: a constant conductance with reversal
    # e_syn (i = i0 + g e_syn, as synapses deliver it), so tau = c_m / (g_l + g).
    i0 = np.array([150.0, 100.0, -50.0])
    g = np.array([0.0, 5.0, 20.0])
    e_syn = np.array([0.0, 0.0, -80.0])
    i = i0 + g * e_syn
    dt, steps = 0.1, 1000
    states, spikes = _run(lif, _drive(i, g), dt, steps)

    v_inf = (12.5 * -70.0 + i) / (12.5 + g)
    tau = 250.0 / (12.5 + g)
    t = dt * np.arange(1, steps + 1)[:, None]
    expected = v_inf + (-70.0 - v_inf) * np.exp(-t / tau)
    assert np.all(expected < -40.0) and not np.any(spikes)
    # Exponential Euler is exact for a drive constant over the step; what is left is
    # float64 rounding accumulated over 1000 steps (~1e-13 relative).
    np.testing.assert_allclose(states.v, expected, rtol=1e-12)
    np.testing.assert_array_equal(states.refractory, 0.0)


def _lif_isi(p, i):
    """Analytic ISI [ms] under constant current i [pA]."""
    tau = p["c_m"] / p["g_l"]
    v_inf = p["e_l"] + i / p["g_l"]
    return p["t_ref"] + tau * np.log((v_inf - p["v_reset"]) / (v_inf - p["v_th"]))


def test_lif_interspike_interval_matches_analytic():
    p = dict(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=-50.0, v_reset=-60.0, t_ref=3.0)
    lif = LIF(**p)
    i = np.array([160.0, 250.0, 400.0, 1000.0])
    dt, duration = 0.1, 500.0
    steps = round(duration / dt)
    # Start at the reset potential, out of refractoriness: the first interval is then
    # the free rise v_reset -> v_th, at most one ISI.
    v0 = jnp.full(4, p["v_reset"])
    state = LIFState(v=v0, refractory=jnp.zeros(4))
    _, spikes = _run(lif, _drive(i), dt, steps, state)

    isi = _lif_isi(p, i)
    for k in range(4):
        idx = _spike_steps(spikes[:, k])
        # Spikes are detected at the end of the first step with v >= v_th, so every
        # simulated ISI is the analytic one rounded up to the grid: [ISI, ISI + dt).
        isi_sim = np.diff(idx) * dt
        assert np.all(isi_sim >= isi[k] - 1e-9) and np.all(isi_sim < isi[k] + dt)
        # Hence the count in the run is duration / ISI, up to the grid and the
        # shorter first interval.
        assert duration / (isi[k] + dt) - 1 <= idx.size <= duration / isi[k] + 1


def test_lif_rates_match_brunel_deterministic_table():
    # REFERENCES.md section 3, sigma = 0 rows.
    mu = np.array([20.5, 21.0, 22.0, 25.0, 30.0, 40.0, 60.0])  # [mV]
    nu_ref = np.array([15.901, 20.017, 26.430, 41.715, 63.040, 98.919, 154.730])  # [Hz]
    np.testing.assert_allclose(1e3 / _lif_isi(BRUNEL, mu * 12.5), nu_ref, atol=5e-4)

    dt, steps = 0.01, 100_000  # 1 s
    lif = LIF(**BRUNEL)
    _, spikes = _run(lif, _drive(mu * 12.5), dt, steps)
    for k in range(mu.size):
        isi_steps = set(np.diff(_spike_steps(spikes[:, k])))
        assert len(isi_steps) == 1  # reset to the grid makes the firing exactly periodic
        nu = 1e3 / (isi_steps.pop() * dt)
        # The ISI lies in [ISI, ISI + dt) (grid), so nu in (1/(1/nu + dt), nu]; 5e-4 Hz
        # is the table's rounding. At 154.73 Hz the grid allows -0.24 Hz.
        nu_low = 1e3 / (1e3 / nu_ref[k] + dt)
        assert nu_low - 5e-4 <= nu <= nu_ref[k] + 5e-4


def test_lif_refractory_holds_v_reset_for_round_tref_over_dt():
    dt = 0.1
    t_ref = np.array([0.0, 0.1, 0.3, 2.0, 2.04, 2.06])  # one value per neuron
    held = np.array([0, 1, 3, 20, 20, 21])
    np.testing.assert_array_equal(held, np.round(t_ref / dt))
    lif = LIF(c_m=250.0, g_l=12.5, e_l=-70.0, v_th=-55.0, v_reset=-70.0, t_ref=t_ref)
    # A strong current: outside refractoriness v leaves v_reset within one step.
    states, spikes = _run(lif, _drive(1000.0, n=6), dt, 200)
    for k in range(6):
        v = np.asarray(states.v[:, k])
        first = _spike_steps(spikes[:, k])[0]
        assert np.all(v[first : first + held[k] + 1] == -70.0)  # spike step, then held
        assert v[first + held[k] + 1] > -70.0
        assert not np.any(spikes[first + 1 : first + held[k] + 2, k])


# ---------------------------------------------------------------------------------------
# Delta charge


def test_charge_jumps_v_by_q_over_c_m():
    lif = LIF(c_m=250.0, g_l=12.5, e_l=-70.0, v_th=-40.0, v_reset=-70.0, t_ref=2.0)
    q = jnp.array([100.0, -50.0, 0.0])  # [pA ms]
    state, _ = lif.step(lif.init(3), _drive(0.0, q=q, n=3), 0.1)
    # At rest the leak leaves v at e_l exactly, so the jump is all there is.
    np.testing.assert_array_equal(state.v, -70.0 + q / 250.0)


def test_conductance_charge_jumps_v_by_q_minus_qg_v_over_c_m():
    lif = LIF(c_m=250.0, g_l=12.5, e_l=-70.0, v_th=-40.0, v_reset=-70.0, t_ref=2.0)
    qg = np.array([2.0, 3.0, 0.5])  # [nS ms]
    e_rev = np.array([0.0, -80.0, 0.0])  # [mV]
    i, g = np.array([200.0, 0.0, 50.0]), np.array([0.0, 4.0, 1.0])
    v0 = np.array([-65.0, -60.0, -70.0])
    dt = 0.1
    state = LIFState(v=jnp.asarray(v0), refractory=jnp.zeros(3))
    state, _ = lif.step(state, _drive(i, g, q=qg * e_rev, qg=qg), dt)
    # The charge arrives at the end of the step, after the exact leak update.
    v_inf = (12.5 * -70.0 + i) / (12.5 + g)
    v_pre = v_inf + (v0 - v_inf) * np.exp(-dt * (12.5 + g) / 250.0)
    np.testing.assert_allclose(
        state.v, v_pre + (qg * e_rev - qg * v_pre) / 250.0, rtol=1e-14
    )


# ---------------------------------------------------------------------------------------
# EIF


def test_eif_rheobase():
    p = EIF_REF
    i_rh = p["g_l"] * (p["v_t"] - p["e_l"] - p["delta_t"])
    assert i_rh == 400.0  # [pA] = 0.400 nA, REFERENCES.md section 3
    # The scheme's fixed points are those of the ODE (at a fixed point the held
    # exponential current is exact), so the rheobase does not depend on dt. 0.25 %
    # above it the rate is ~2 Hz, so 1 s shows a spike; below it v settles.
    eif = EIF(**p)
    states, spikes = _run(eif, _drive([0.9975 * i_rh, 1.0025 * i_rh]), 0.01, 100_000)
    assert not np.any(spikes[:, 0])
    assert np.any(spikes[:, 1])
    assert np.max(states.v[:, 0]) < p["v_t"]


def _eif_rates(dt, i):
    eif = EIF(**EIF_REF)
    steps = round(200.0 / dt)
    _, spikes = _run(eif, _drive(i), dt, steps)
    rates = []
    for k in range(len(i)):
        isi_steps = set(np.diff(_spike_steps(spikes[:, k])))
        assert len(isi_steps) == 1  # reset to the grid makes the firing periodic
        rates.append(1e3 / (isi_steps.pop() * dt))
    return np.array(rates)


def test_eif_rates_match_reference_with_first_order_bias():
    i = np.array([450.0, 600.0, 1000.0])  # [pA]
    nu_ref = np.array([17.179, 45.086, 106.535])  # [Hz], REFERENCES.md §3 EIF table, ν column
    p = EIF_REF

    def dv_dt(v, i_k):  # [mV/ms]
        exp_current = p["g_l"] * p["delta_t"] * math.exp((v - p["v_t"]) / p["delta_t"])
        return (-p["g_l"] * (v - p["e_l"]) + exp_current + i_k) / p["c_m"]

    # The table is the period integral T = int dv / (dv/dt) from v_reset to v_peak.
    period = [scipy.integrate.quad(lambda v: 1 / dv_dt(v, i_k), -60.0, -30.0)[0]
              for i_k in i]
    np.testing.assert_allclose(1e3 / np.array(period), nu_ref, rtol=3e-5)
    err_coarse = _eif_rates(0.01, i) / nu_ref - 1
    err_fine = _eif_rates(0.005, i) / nu_ref - 1
    # Both error sources are O(dt) and make spikes late: the exponential current is
    # held at its start-of-step value while v rises (underestimated), and a crossing
    # is detected at the end of its step. At dt = 0.005 ms the bias is below 0.3 %
    # for rates up to 110 Hz (forward Euler, REFERENCES.md: -0.25 % at 1 nA), so allow
    # 0.3 % per 0.005 ms; 3e-5 covers the table's rounding.
    for dt, err in ((0.01, err_coarse), (0.005, err_fine)):
        assert np.all(err < 3e-5)
        assert np.all(err > -0.003 * dt / 0.005)
    # First order: halving dt roughly halves the bias (grid jitter blurs the ratio).
    ratio = err_coarse / err_fine
    assert np.all((ratio > 1.5) & (ratio < 2.5)), ratio


# ---------------------------------------------------------------------------------------
# AdEx


def test_adex_without_adaptation_is_eif():
    p = dict(EIF_REF, t_ref=0.5)
    eif, adex = EIF(**p), AdEx(**p, a=0.0, b=0.0, tau_w=100.0)
    drive = _drive([0.0, 450.0, 1000.0, 3000.0])
    eif_states, eif_spikes = _run(eif, drive, 0.01, 5000)
    adex_states, adex_spikes = _run(adex, drive, 0.01, 5000)
    assert np.sum(eif_spikes) > 10
    # The same arithmetic (i_exp - 0); XLA compiles the two graphs separately, so
    # allow float64 rounding, which the upstroke amplifies to ~1e-13 relative.
    np.testing.assert_allclose(adex_states.v, eif_states.v, rtol=1e-12)
    np.testing.assert_array_equal(adex_spikes, eif_spikes)
    np.testing.assert_array_equal(adex_states.w, 0.0)


def test_adex_subthreshold_steady_state_is_the_fixed_point():
    adex = AdEx()  # Brette & Gerstner (2005) tonic cell
    g_l, e_l, v_t, delta_t, a = 30.0, -70.6, -50.4, 2.0, 4.0
    i = 400.0  # [pA], below 627 pA, where the fixed point vanishes (residual's max)

    def residual(v):  # [pA]; zero where dv/dt = 0 with w = a (v - e_l)
        exp_current = g_l * delta_t * math.exp((v - v_t) / delta_t)
        return -g_l * (v - e_l) + exp_current - a * (v - e_l) + i

    v_star = scipy.optimize.brentq(residual, e_l, v_t, xtol=1e-14)
    # 5 s relaxes the slowest linear mode (tau ~ 125 ms) by e^-40; the scheme's fixed
    # points are exactly the ODE's, so only the relaxation error is left.
    states, spikes = _run(adex, _drive([i]), 0.1, 50_000)
    assert not np.any(spikes)
    np.testing.assert_allclose(states.v[-1], v_star, rtol=0, atol=1e-6)
    np.testing.assert_allclose(states.w[-1], a * (v_star - e_l), rtol=0, atol=1e-6)


def test_adex_spike_triggered_adaptation():
    adex = AdEx()
    dt, b, a, tau_w, e_l = 0.05, 80.5, 4.0, 144.0, -70.6
    states, spikes = _run(adex, _drive([1000.0]), dt, 20_000)
    idx = _spike_steps(spikes[:, 0])
    isi = np.diff(idx) * dt
    # Tonic spiking that adapts: ISIs lengthen to a steady value (~36 ms).
    assert idx.size > 10
    assert np.all(np.diff(isi) >= 0.0)
    assert isi[-1] > 2.0 * isi[0]
    # At each spike w jumps by exactly b on top of its relaxation over the step.
    v, w = np.asarray(states.v[:, 0]), np.asarray(states.w[:, 0])
    w_inf = a * (v[idx - 1] - e_l)
    w_relaxed = w_inf + (w[idx - 1] - w_inf) * np.exp(-dt / tau_w)
    np.testing.assert_allclose(w[idx] - w_relaxed, b, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# ALIF


def _scan_drives(model, drives, dt, state):
    """Scan `model.step` over a per-step `Drive` (leading axis: steps)."""

    def body(s, d):
        s, spikes = model.step(s, d, dt)
        return s, (s, spikes)

    return jax.lax.scan(body, state, drives)[1]


def test_alif_threshold_trace_after_known_spike_train_is_exact():
    # Spikes forced at chosen steps by a delta charge of 25 nC (a 100 mV jump, far above
    # any threshold here); between them the neuron rests at e_l = v_reset. The threshold
    # at every test is then v_th + beta sum_k exp(-(t - t_k) / tau_a) over the earlier
    # spikes, and the state holds that sum plus the step's own spike.
    p = dict(c_m=250.0, g_l=12.5, e_l=-70.0, v_th=-55.0, v_reset=-70.0, t_ref=0.0)
    beta, tau_a, dt, steps = np.array([0.5, 3.0]), np.array([200.0, 1000.0]), 0.5, 3000
    alif = ALIF(**p, beta=beta, tau_a=tau_a)
    spike_steps = np.array([10, 11, 12, 40, 300, 301, 1200, 1201, 1202, 1203, 2500])
    q = np.zeros((steps, 2))
    q[spike_steps] = 25_000.0  # [pA ms]
    zeros = jnp.zeros((steps, 2))
    drives = Drive(zeros, zeros, jnp.asarray(q), zeros)
    states, spikes = jax.jit(_scan_drives, static_argnums=2)(alif, drives, dt, alif.init(2))
    for k in range(2):
        np.testing.assert_array_equal(_spike_steps(spikes[:, k]), spike_steps)
    t = np.arange(steps)[:, None]
    lag = t - spike_steps[None, :]  # steps since each spike, (steps, spikes)
    a = np.where(lag[..., None] >= 0,
                 np.exp(-np.maximum(lag, 0)[..., None] * dt / tau_a), 0.0).sum(1)
    # Float64 rounding of the recursion a <- rho a + z over 3000 steps: ~1e-13 relative.
    np.testing.assert_allclose(states.a, a, rtol=1e-12)
    # The threshold a test sees is the decayed a without the step's own spike.
    before = a - np.asarray(spikes)
    threshold = np.asarray(jax.vmap(alif.threshold)(states))
    np.testing.assert_allclose(threshold, p["v_th"] + beta * a, rtol=1e-12)
    quiet = np.asarray(spikes[:, 0]) == 0
    np.testing.assert_allclose(threshold[quiet], (p["v_th"] + beta * before)[quiet], rtol=1e-12)


def _alif_period(p, i):
    """Period [ms] of the self-consistent periodic orbit under a constant current i [pA]:
    the threshold at a spike is v_th + beta g(T), g(T) = e^{-T/tau_a} / (1 - e^{-T/tau_a})
    (the geometric series of the earlier spikes), and the membrane rises from v_reset as
    the LIF closed form after t_ref: V(T) = v_inf + (v_reset - v_inf) e^{-(T - t_ref)/tau_m}."""
    tau = p["c_m"] / p["g_l"]
    v_inf = p["e_l"] + i / p["g_l"]

    def f(T):  # increasing in T: V rises, the threshold falls
        V = v_inf + (p["v_reset"] - v_inf) * math.exp(-(T - p["t_ref"]) / tau)
        return V - p["v_th"] - p["beta"] * math.exp(-T / p["tau_a"]) / -math.expm1(-T / p["tau_a"])

    return scipy.optimize.brentq(f, p["t_ref"] + 1e-9, 1e5, xtol=1e-12)


def test_alif_steady_period_matches_self_consistent_orbit():
    p = dict(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0,
             beta=1.5, tau_a=300.0)
    i = np.array([250.0, 400.0, 800.0, 1500.0])  # [pA]
    periods = np.array([_alif_period(p, x) for x in i])  # 50.3, 27.9, 15.9, 10.7 ms
    assert np.all(periods > 2.5 * _lif_isi(p, i))  # adaptation matters here
    dt, steps = 0.1, 40_000  # 4 s: the transient of a relaxes as e^{-t / tau_a}
    _, spikes = _run(ALIF(**p), _drive(i), dt, steps)
    for k in range(i.size):
        late = np.diff(_spike_steps(spikes[:, k]))[-30:] * dt  # after >= 2 s
        # The membrane is exact on the grid and the threshold is the continuous
        # geometric series sampled there; what is left is the grid: each crossing is
        # detected up to one step late. A late spike leaves a lower threshold for the
        # next one, so single intervals scatter within dt of T (the orbit can alternate
        # between n and n + 1 steps, e.g. 50.3, 50.3, 50.4 ms at 250 pA), and a delay
        # of d in [0, dt) at every spike gives the period in [T, T + d]: the mean lies
        # in [T, T + dt). Measured: 0.003-0.026 ms above T.
        assert np.all(np.abs(late - periods[k]) < dt), (k, late, periods[k])
        assert periods[k] <= late.mean() < periods[k] + dt, (k, late.mean(), periods[k])


@pytest.mark.parametrize("detach", [True, False])
def test_alif_with_zero_beta_is_lif(detach):
    p = dict(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0)
    rng = np.random.default_rng(0)
    steps, n, dt = 2000, 4, 0.1
    drives = Drive(jnp.asarray(rng.uniform(0.0, 600.0, (steps, n))),
                   jnp.asarray(rng.uniform(0.0, 5.0, (steps, n))),
                   jnp.zeros((steps, n)), jnp.zeros((steps, n)))
    lif = LIF(**p, detach_reset=detach)
    alif = ALIF(**p, beta=0.0, tau_a=100.0, detach_reset=detach)

    def run(model, drives):
        states, spikes = _scan_drives(model, drives, dt, model.init(n))
        return states.v, states.refractory, spikes

    def loss(model, i):
        v, _, z = run(model, eqx.tree_at(lambda d: d.i, drives, drives.i * i[None, :]))
        return jnp.sum(z) + 0.01 * jnp.sum(v)

    out_l, out_a = jax.jit(run)(lif, drives), jax.jit(run)(alif, drives)
    assert float(jnp.sum(out_l[2])) > 20
    for x, y in zip(out_l, out_a):  # the same arithmetic: bit for bit
        np.testing.assert_array_equal(x, y)
    # The adaptation path carries beta * (surrogate) = 0, so the surrogate gradients agree.
    g_l, g_a = (jax.jit(jax.grad(partial(loss, m)))(jnp.ones(n)) for m in (lif, alif))
    assert np.all(np.isfinite(g_l)) and np.any(g_l != 0)
    np.testing.assert_allclose(g_a, g_l, rtol=1e-12)


def test_alif_threshold_gradient_on_a_smooth_path_matches_finite_differences():
    # Spikes forced by charge jumps far above threshold, and rest far below it: the
    # Triangle surrogate (support 2 mV) is exactly 0 at every test, so the loss (the
    # thresholds over the run) is a smooth function of beta and tau_a with the spike
    # times fixed. check_grads: central differences (eps 1e-4) to float64 tolerance.
    p = dict(c_m=250.0, g_l=12.5, e_l=-70.0, v_th=-55.0, v_reset=-70.0, t_ref=0.0)
    steps = 200
    q = np.zeros((steps, 1))
    q[[5, 6, 50, 120]] = 25_000.0
    drives = Drive(jnp.zeros((steps, 1)), jnp.zeros((steps, 1)), jnp.asarray(q),
                   jnp.zeros((steps, 1)))

    def loss(params):
        alif = ALIF(**p, beta=params[0], tau_a=params[1], surrogate=Triangle(0.5, 0.3))
        states, spikes = _scan_drives(alif, drives, 0.5, alif.init(1))
        return jnp.sum((jax.vmap(alif.threshold)(states) - p["v_th"]) ** 2) + jnp.sum(spikes)

    params = jnp.array([2.0, 40.0])
    check_grads(jax.jit(loss), (params,), order=2, modes=["fwd", "rev"])
    assert np.all(np.asarray(jax.grad(loss)(params)) > 0)  # more adaptation, higher A


def _alif_reference(i, beta, tau_a, steps, dt, surrogate_d):
    """Forward-mode d/d(beta) and d/d(tau_a) of (spike count + sum of a at the end) of the
    ALIF recursion with a detached reset, by hand: a <- rho a; u = v_inf + (v - v_inf)
    alpha; s = H(u - v_th - beta a); v' = v_reset if s else u; a <- a + s; through the
    surrogate ds = psi (du - d(beta a))."""
    p = RESET_LIF
    alpha = math.exp(-dt * p["g_l"] / p["c_m"])
    rho = math.exp(-dt / tau_a)
    v_inf = p["e_l"] + i / p["g_l"]
    v, a = np.full(i.shape, p["e_l"]), np.zeros(i.shape)
    dv, da = np.zeros((2,) + i.shape), np.zeros((2,) + i.shape)  # [d/dbeta, d/dtau_a]
    d_count = np.zeros((2,) + i.shape)
    drho = np.array([0.0, rho * dt / tau_a**2])
    for _ in range(steps):
        da = rho * da + drho[:, None] * a
        a = rho * a
        u, du = v_inf + (v - v_inf) * alpha, dv * alpha
        x = u - p["v_th"] - beta * a
        s = x >= 0
        ds = surrogate_d(x) * (du - np.array([1.0, 0.0])[:, None] * a - beta * da)
        v, dv = np.where(s, p["v_reset"], u), np.where(s, 0.0, du)
        a, da = a + s, da + ds
        d_count = d_count + ds
    return d_count + da


def test_alif_surrogate_gradient_matches_hand_written_reference():
    surrogate = Triangle(slope=0.5, amplitude=0.3)
    i = np.array([4000.0, 3700.0, 2400.0, 2900.0])  # [pA]; fire at different steps
    beta, tau_a, dt, steps = 1.5, 30.0, 1.0, 12

    def loss(params):
        alif = ALIF(**RESET_LIF, beta=params[0], tau_a=params[1], surrogate=surrogate)
        states, spikes = _scan(alif, _drive(i), dt, steps)
        return jnp.sum(spikes, 0) + states.a[-1]

    params = jnp.array([beta, tau_a])
    _, spikes = _scan(ALIF(**RESET_LIF, beta=beta, tau_a=tau_a), _drive(i), dt, steps)
    assert np.all(np.sum(spikes, 0) >= 2)
    jac = jax.jit(jax.jacrev(loss))(params)  # (neurons, params)
    triangle = lambda x: 0.3 * np.maximum(0.0, 1.0 - 0.5 * np.abs(x))  # noqa: E731
    ref = _alif_reference(i, beta, tau_a, steps, dt, triangle)
    # The surrogate path is exercised for the first three; the fourth never comes within
    # the 2 mV support, so only the decay of a depends on tau_a there.
    assert np.all(np.abs(ref[0, :3]) > 0.5) and ref[0, 3] == 0.0
    np.testing.assert_allclose(jac.T, ref, rtol=1e-10, atol=1e-14)


def test_alif_runs_inside_a_network_like_its_step():
    import neurojax as nj

    alif = ALIF(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0,
                beta=jnp.array([0.0, 1.5, 3.0]), tau_a=300.0)
    i = jnp.array([400.0, 400.0, 400.0])
    net = nj.Network([nj.Population("A", 3, alif)], [],
                     inputs=[nj.inputs.Constant("A", amplitude=i)]).build(jax.random.key(0))
    res = nj.simulate(net, 500.0, 0.1, key=jax.random.key(0),
                      record=nj.Record(spikes=["A"], a={"A": None}))
    states, spikes = _run(alif, _drive(i), 0.1, 5000)
    np.testing.assert_array_equal(np.asarray(res.spikes["A"]), np.asarray(spikes) > 0)
    counts = np.asarray(spikes).sum(0)
    assert counts[0] > counts[1] > counts[2] > 0  # stronger adaptation, fewer spikes
    np.testing.assert_allclose(np.asarray(res.variables["A.a"])[-1], states.a[-1], rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Invariants and transforms


def _rest_root(g_l, e_l, v_t, delta_t, a):
    """Lower root of (g_l + a)(v - e_l) = g_l delta_t exp((v - v_t)/delta_t) [mV]."""

    def f(v):
        return (g_l + a) * (v - e_l) - g_l * delta_t * math.exp((v - v_t) / delta_t)

    # The residual peaks at v_t + delta_t ln(1 + a/g_l), above the lower root.
    v_max = v_t + delta_t * math.log1p(a / g_l)
    return scipy.optimize.brentq(f, e_l, v_max, xtol=1e-14)


@pytest.mark.parametrize(
    "model",
    [
        LIF(),
        EIF(),
        AdEx(),
        # Per-neuron e_l down to 1.5 delta_t below v_t, where Newton needs more steps.
        EIF(e_l=jnp.array([-65.0, -60.0, -58.0])),
        AdEx(a=jnp.array([0.0, 4.0, 20.0]), e_l=-56.0),
        ALIF(),
    ],
    ids=["LIF", "EIF", "AdEx", "EIF-near-v_t", "AdEx-strong-a", "ALIF"],
)
def test_init_is_a_fixed_point_at_zero_drive(model):
    state0 = model.init(3)
    params = {k: np.broadcast_to(getattr(model, k), (3,)) for k in ("g_l", "e_l")}
    if isinstance(model, (LIF, ALIF)):
        v_rest = params["e_l"]
    else:
        # The exponential current is not zero at e_l, so rest lies above it
        # (0.0136 mV for the EIF defaults).
        a = np.broadcast_to(model.a if isinstance(model, AdEx) else 0.0, (3,))
        v_rest = np.array(
            [
                _rest_root(params["g_l"][k], params["e_l"][k], float(model.v_t),
                           float(model.delta_t), a[k])
                for k in range(3)
            ]
        )
        assert np.all(v_rest > params["e_l"])
    # brentq's xtol is 1e-14 mV; the Newton iterates reach float64 precision.
    np.testing.assert_allclose(state0.v, v_rest, rtol=0, atol=1e-12)
    if isinstance(model, AdEx):
        np.testing.assert_allclose(state0.w, a * (v_rest - params["e_l"]), atol=1e-12)
    states, spikes = _run(model, _drive(0.0, n=3), 0.1, 2000)
    assert not np.any(spikes)
    for name in ("v", "w", "a"):
        if hasattr(state0, name):
            # Stays put to float64 rounding (the fixed point is stable).
            x0 = np.broadcast_to(getattr(state0, name), getattr(states, name).shape)
            np.testing.assert_allclose(getattr(states, name), x0, rtol=0, atol=1e-12)


def test_init_without_a_rest_state_is_finite():
    # v_t - e_l < delta_t: no fixed point at zero drive, the neuron fires at once; init
    # stops at the saddle-node ghost (v_t) instead of diverging.
    eif = EIF(e_l=-56.0, v_t=-55.0, delta_t=2.0)
    np.testing.assert_allclose(eif.init(2).v, -55.0, rtol=1e-12)


@pytest.mark.parametrize("cls", [LIF, ALIF, EIF, AdEx])
def test_step_keeps_structure_and_dtype(cls):
    model = cls()
    state = model.init(4)
    new, spikes = model.step(state, _drive(500.0, n=4), 0.1)
    assert type(new) is {LIF: LIFState, ALIF: ALIFState, EIF: EIFState, AdEx: AdExState}[cls]
    assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(state)
    for x, y in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(state)):
        assert x.shape == y.shape == (4,) and x.dtype == y.dtype
    assert spikes.shape == (4,) and spikes.dtype == state.v.dtype


@pytest.mark.parametrize("cls", [LIF, ALIF, EIF, AdEx])
def test_jit_equals_eager(cls):
    model = cls()
    drive = _drive([0.0, 1500.0, 4000.0])
    dt, steps = 0.1, 100
    states, spikes = _run(model, drive, dt, steps)
    assert np.all(np.sum(spikes[:, 1:], axis=0) >= 1)  # spikes and resets covered
    jitted = [np.asarray(x) for x in jax.tree_util.tree_leaves((states, spikes))]
    with jax.disable_jit():
        state = model.init(3)
        eager = []
        for _ in range(steps):
            state, s = model.step(state, drive, dt)
            eager.append([np.asarray(x) for x in jax.tree_util.tree_leaves((state, s))])
    # Same operations, compiled or not: equal up to XLA's reassociation and fusion.
    for x, y in zip(jitted, map(np.stack, zip(*eager))):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [LIF, ALIF, EIF, AdEx])
def test_vmap_over_g_l_equals_loop(cls):
    g_ls = jnp.linspace(10.0, 40.0, 8)
    drive = _drive([300.0, 900.0])

    def v_trace(g_l):
        states, spikes = _scan(cls(g_l=g_l), drive, 0.1, 300)
        return states.v, spikes

    v_vmap, s_vmap = jax.jit(jax.vmap(v_trace))(g_ls)
    assert 0 < np.sum(s_vmap) < s_vmap.size
    for k, g_l in enumerate(g_ls):
        states, s = _run(cls(g_l=g_l), drive, 0.1, 300)
        # Batched and unbatched kernels may round differently; the exponential
        # upstroke amplifies that to ~5e-12 relative at worst.
        np.testing.assert_allclose(v_vmap[k], states.v, rtol=1e-10)
        np.testing.assert_array_equal(s_vmap[k], s)


# A conductance and a current that keep v below threshold, so the loss is smooth.
GRAD_DRIVE = _drive([100.0, 200.0], g=[3.0, 0.0])
GRAD_PARAMS = jnp.array([250.0, 25.0, -70.0])  # c_m [pF], g_l [nS], e_l [mV]


def _subthreshold_loss(cls, params):
    c_m, g_l, e_l = params
    # With b != 0 the AdEx jump w += b * spike carries the surrogate derivative of the
    # absent spikes into w: right for surrogate training, but not the derivative of
    # this (spike-free) trajectory, which is what finite differences see.
    extra = dict(b=0.0) if cls is AdEx else {}
    states, spikes = _scan(cls(c_m=c_m, g_l=g_l, e_l=e_l, **extra), GRAD_DRIVE, 0.2, 100)
    return jnp.mean((states.v - e_l) ** 2), spikes


@pytest.mark.parametrize("cls", [LIF, ALIF, EIF, AdEx])
def test_gradient_of_subthreshold_loss_matches_finite_differences(cls):
    params = GRAD_PARAMS
    value_and_grad = jax.value_and_grad(partial(_subthreshold_loss, cls), has_aux=True)
    (value, spikes), grad = jax.jit(value_and_grad)(params)
    assert not np.any(spikes) and value > 1.0  # smooth path, nontrivial loss

    def loss(p):
        return _subthreshold_loss(cls, p)[0]

    if cls is LIF:
        # Central differences (eps 1e-4) to check_grads' float64 tolerance (1e-5), at
        # orders 1 and 2, forward and reverse.
        check_grads(jax.jit(loss), (params,), order=2, modes=["fwd", "rev"])
        return
    # check_grads at order 2 compiles ~17 transformed scans (10 s of CPU); for the
    # exponential models, which share the LIF's linear update, compare the
    # reverse-mode gradient with a central difference. Its truncation error
    # (h^2/6) f''' is ~1e-8 relative at h = 1e-4 |p|, and rounding eps |f| / h ~1e-11.
    loss_j = jax.jit(loss)
    h = 1e-4 * jnp.abs(params)
    central = [
        (loss_j(params.at[k].add(h[k])) - loss_j(params.at[k].add(-h[k]))) / (2 * h[k])
        for k in range(3)
    ]
    np.testing.assert_allclose(grad, central, rtol=1e-6)


def test_surrogate_gradient_of_spike_count_wrt_current():
    lif = LIF()

    def spike_count(i):
        _, spikes = _scan(lif, _drive(i, n=4), 0.1, 1000)
        return jnp.sum(spikes)

    i = jnp.asarray(600.0)
    assert float(jax.jit(spike_count)(i)) > 10
    grad = jax.jit(jax.grad(spike_count))(i)
    # More current means more spikes: the surrogate gradient is finite and positive.
    assert np.isfinite(grad) and grad > 0.0


# ---------------------------------------------------------------------------------------
# detach_reset


def test_detach_reset_defaults_to_true_and_is_static():
    for cls in (LIF, ALIF, EIF, AdEx):
        assert cls().detach_reset is True
        assert not any(leaf is True for leaf in jax.tree_util.tree_leaves(cls()))


@pytest.mark.parametrize("cls", [LIF, ALIF, EIF, AdEx])
def test_detach_reset_leaves_the_forward_pass_bit_identical(cls):
    # Three neurons that fire at different rates (and one that stays silent), with
    # refractoriness, over 300 steps.
    lif_like = cls in (LIF, ALIF)
    kwargs = dict(t_ref=1.0) if not lif_like else {}
    drive = _drive([0.0, 700.0, 1500.0] if lif_like else [0.0, 900.0, 2500.0])
    runs = [_run(cls(detach_reset=d, **kwargs), drive, 0.1, 300) for d in (True, False)]
    (states_t, spikes_t), (states_f, spikes_f) = runs
    assert 0 < float(jnp.sum(spikes_t[:, 1])) < float(jnp.sum(spikes_t[:, 2]))
    np.testing.assert_array_equal(spikes_t, spikes_f)
    for a, b in zip(jax.tree_util.tree_leaves(states_t), jax.tree_util.tree_leaves(states_f)):
        np.testing.assert_array_equal(a, b)


# A tiny LIF case with a hand-written forward-mode reference of both variants.
RESET_LIF = dict(c_m=250.0, g_l=12.5, e_l=-70.0, v_th=-55.0, v_reset=-80.0, t_ref=0.0)
# Neuron 0 crosses threshold in step 1 (u = -54.4 mV), neuron 1 stays 0.56 mV below it in
# step 1 and fires in step 2, neuron 2 stays more than 2 mV below it (at most -58.9 mV),
# outside the support of the Triangle surrogate used below.
RESET_I = np.array([4000.0, 3700.0, 1000.0])  # [pA]


def _reset_reference(i, detach, steps, dt, surrogate_d):
    """Forward-mode derivative d(loss)/d(i_k) of the LIF recursion, by hand:
    u = v_inf + (v - v_inf) a; s = H(u - v_th); v' = v_reset if s else u; and, unless the
    reset is detached, dv' gets (v_reset - u) ds. Returns the derivatives of the final v,
    of the sum of v over the steps and of the spike count."""
    p = RESET_LIF
    a = math.exp(-dt * p["g_l"] / p["c_m"])
    v_inf, dv_inf = p["e_l"] + i / p["g_l"], 1.0 / p["g_l"]
    v, dv = np.full(i.shape, p["e_l"]), np.zeros(i.shape)
    d_count, d_v_sum = np.zeros(i.shape), np.zeros(i.shape)
    for _ in range(steps):
        u, du = v_inf + (v - v_inf) * a, dv_inf * (1.0 - a) + dv * a
        s, ds = u >= p["v_th"], surrogate_d(u - p["v_th"]) * du
        v, dv = np.where(s, p["v_reset"], u), np.where(s, 0.0, du)
        if not detach:
            dv = dv + (p["v_reset"] - u) * ds
        d_count, d_v_sum = d_count + ds, d_v_sum + dv
    return dict(v_last=dv, v_sum=d_v_sum, count=d_count)


@pytest.mark.parametrize("detach", [True, False])
def test_detach_reset_gradient_matches_hand_written_reference(detach):
    # Triangle(slope 0.5, amplitude 0.3): support 2 mV, so neuron 2's surrogate is 0.
    surrogate = Triangle(slope=0.5, amplitude=0.3)
    lif = LIF(**RESET_LIF, surrogate=surrogate, detach_reset=detach)

    def loss(i):
        states, spikes = _scan(lif, _drive(i), 1.0, 3)
        return jnp.sum(states.v[-1]) + 10.0 * jnp.sum(spikes)

    i = jnp.asarray(RESET_I)
    _, spikes = _scan(lif, _drive(i), 1.0, 3)
    np.testing.assert_array_equal(spikes[:, :2], [[1, 0], [0, 1], [1, 0]])
    grad = jax.grad(loss)(i)
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(i), grad, rtol=1e-14)
    triangle = lambda x: 0.3 * np.maximum(0.0, 1.0 - 0.5 * np.abs(x))  # noqa: E731
    reference = _reset_reference(RESET_I, detach, 3, 1.0, triangle)
    np.testing.assert_allclose(grad, reference["v_last"] + 10.0 * reference["count"], rtol=1e-12)


def test_detach_reset_removes_exactly_the_reset_path():
    surrogate = Triangle(slope=0.5, amplitude=0.3)

    def grad(detach):  # of the sum of v over the steps
        lif = LIF(**RESET_LIF, surrogate=surrogate, detach_reset=detach)
        return jax.grad(lambda i: jnp.sum(_scan(lif, _drive(i), 1.0, 3)[0].v))(
            jnp.asarray(RESET_I)
        )

    g_detached, g_full = np.asarray(grad(True)), np.asarray(grad(False))
    # The reset path pulls v towards v_reset < v, for the neuron that fired in step 1
    # and for the one just below threshold: more current, more reset, lower v.
    assert g_full[0] < g_detached[0] and g_full[1] < g_detached[1]
    # Neuron 2 never comes within the surrogate's 2 mV support: identical gradients.
    assert g_full[2] == g_detached[2]
    # The difference is the reference's reset-path term, nothing else.
    triangle = lambda x: 0.3 * np.maximum(0.0, 1.0 - 0.5 * np.abs(x))  # noqa: E731
    diff = (_reset_reference(RESET_I, False, 3, 1.0, triangle)["v_sum"]
            - _reset_reference(RESET_I, True, 3, 1.0, triangle)["v_sum"])
    assert np.all(diff[:2] < 0.0) and diff[2] == 0.0
    np.testing.assert_allclose(g_full - g_detached, diff, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("cls", [ALIF, EIF, AdEx])
def test_detach_reset_gradient_is_finite_and_changes_only_through_spikes(cls):
    def spike_count_and_v(i, detach):
        states, spikes = _scan(cls(detach_reset=detach), _drive(i, n=1), 0.1, 400)
        return jnp.sum(spikes) + 0.01 * jnp.sum(states.v)

    i = jnp.asarray({ALIF: 700.0, EIF: 2500.0, AdEx: 900.0}[cls])
    g_t = jax.grad(spike_count_and_v)(i, True)
    g_f = jax.grad(spike_count_and_v)(i, False)
    assert np.isfinite(g_t) and np.isfinite(g_f) and g_t != g_f


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "cls, kwargs, name, unit",
    [
        (LIF, dict(c_m=0.0), "c_m", "pF"),
        (LIF, dict(c_m=-250.0), "c_m", "pF"),
        (EIF, dict(c_m=-1.0), "c_m", "pF"),
        (LIF, dict(g_l=0.0), "g_l", "nS"),
        (AdEx, dict(g_l=-30.0), "g_l", "nS"),
        (LIF, dict(g_l=jnp.array([12.5, -1.0])), "g_l", "nS"),
        (EIF, dict(delta_t=0.0), "delta_t", "mV"),
        (AdEx, dict(delta_t=-2.0), "delta_t", "mV"),
        (AdEx, dict(tau_w=0.0), "tau_w", "ms"),
        (AdEx, dict(tau_w=-144.0), "tau_w", "ms"),
        (LIF, dict(t_ref=-1.0), "t_ref", "ms"),
        (EIF, dict(t_ref=-0.1), "t_ref", "ms"),
        (LIF, dict(v_reset=-55.0, v_th=-55.0), "v_reset", "mV"),
        (LIF, dict(v_reset=-50.0, v_th=-55.0), "v_reset", "mV"),
        (EIF, dict(v_reset=-30.0, v_peak=-30.0), "v_reset", "mV"),
        (EIF, dict(v_t=-20.0, v_peak=-30.0), "v_t", "mV"),
        (LIF, dict(e_l=float("nan")), "e_l", "mV"),
        (LIF, dict(v_th=jnp.array([-55.0, jnp.nan])), "v_th", "mV"),
        (EIF, dict(c_m=float("nan")), "c_m", "pF"),
        (AdEx, dict(b=float("nan")), "b", "pA"),
        (AdEx, dict(a=float("nan")), "a", "nS"),
        (ALIF, dict(beta=-1.0), "beta", "mV"),
        (ALIF, dict(beta=float("nan")), "beta", "mV"),
        (ALIF, dict(tau_a=0.0), "tau_a", "ms"),
        (ALIF, dict(tau_a=jnp.array([700.0, -1.0])), "tau_a", "ms"),
        (ALIF, dict(c_m=-1.0), "c_m", "pF"),
        (ALIF, dict(t_ref=-1.0), "t_ref", "ms"),
        (ALIF, dict(v_reset=-50.0, v_th=-55.0), "v_reset", "mV"),
    ],
)
def test_bad_parameter_raises_naming_it(cls, kwargs, name, unit):
    with pytest.raises(ValueError, match=f"^{name} \\[{unit}\\]"):
        cls(**kwargs)


@pytest.mark.parametrize(
    "model, dt, match",
    [
        (LIF(), 25.0, "tau_m"),  # tau_m = 20 ms
        (EIF(), 2.0, "tau_m"),  # explicit exponential current: dt <= tau_m / 10
        (AdEx(tau_w=5.0), 0.6, "tau_w"),
        (ALIF(), 25.0, "tau_m"),
        (ALIF(tau_a=5.0), 6.0, "tau_a"),  # tau_m = 20 ms allows it, tau_a does not
    ],
)
def test_check_rejects_too_large_dt(model, dt, match):
    model.check(3, 0.1)
    with pytest.raises(ValueError, match=f"dt \\[ms\\].*{match}"):
        model.check(3, dt)


@pytest.mark.parametrize(
    "model, name",
    [
        (LIF(g_l=jnp.full(4, 12.5)), "g_l"),
        (EIF(v_t=jnp.full((3, 1), -55.0)), "v_t"),
        (AdEx(b=jnp.full(2, 80.5)), "b"),
        (ALIF(beta=jnp.full(2, 1.0)), "beta"),
        (ALIF(tau_a=jnp.full(4, 700.0)), "tau_a"),
    ],
)
def test_check_rejects_wrong_shape(model, name):
    message = rf"^{name} must be a scalar or have shape \(3,\)"
    with pytest.raises(ValueError, match=message):
        model.check(3, 0.1)
    # One value per neuron is fine.
    value = float(getattr(model, name).ravel()[0])
    type(model)(**{name: jnp.full(3, value)}).check(3, 0.1)


def test_drive_from_current_is_the_current_with_zero_other_fields():
    i = jnp.array([150.0, -40.0, 0.0])
    d = Drive.from_current(i)
    for field in (d.g, d.q, d.qg):
        np.testing.assert_array_equal(field, jnp.zeros(3))
    np.testing.assert_array_equal(d.i, i)
    # The same LIF step as the four fields spelled out.
    lif = LIF()
    state = lif.init(3)
    a, spikes_a = lif.step(state, d, 0.1)
    b, spikes_b = lif.step(state, _drive(i), 0.1)
    np.testing.assert_array_equal(a.v, b.v)
    np.testing.assert_array_equal(spikes_a, spikes_b)
    # Integer currents become floating point (a neuron integrates them).
    assert jnp.issubdtype(Drive.from_current(jnp.array([1, 2])).i.dtype, jnp.floating)
