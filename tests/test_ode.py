"""Tests for `neurojax.ode`: adaptive diffrax integration of smooth single cells and rate
networks, and relaxation to fixed points, against REFERENCES.md sections 1, 4, 7 and 8,
analytic solutions and the fixed-step integrators.

Compilations dominate the run time, so each test compiles one or two solves and reuses
them (module-level functions, `jax.vmap` over the cases).
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from neurojax import ode
from neurojax._abstract import Drive
from neurojax.connectivity.builders import AllToAll
from neurojax.inputs.deterministic import Constant, Waveform
from neurojax.inputs.stochastic import Poisson
from neurojax.network import Network, Population, Projection
from neurojax.neurons.fitzhugh_nagumo import FitzHughNagumo, FitzHughNagumoState
from neurojax.neurons.hh import (
    DEFAULT_AREA,
    RK4,
    HodgkinHuxley,
    HodgkinHuxleyState,
    TraubMiles,
    TraubMilesState,
    WangBuzsaki,
    WangBuzsakiState,
)
from neurojax.neurons.izhikevich import Izhikevich
from neurojax.neurons.lif import LIF
from neurojax.neurons.rate import (
    FiringRate,
    FiringRateState,
    PowerLaw,
    Rate,
    RateState,
    ReLU,
    Sigmoid,
    WilsonCowan,
    WilsonCowanState,
    WilsonCowanSystem,
)
from neurojax.synapses.kinetics import Exponential
from neurojax.synapses.receptors import Conductance

UA_PER_CM2 = DEFAULT_AREA * 1e-2  # [pA per µA/cm²] on the default area (see hh.py)


def _current(i):
    i = jnp.asarray(i, dtype=float)
    z = jnp.zeros_like(i)
    return Drive(i, z, z, z)


def _upward_crossings(t, x, level):
    """Times at which `x` crosses `level` upwards, by linear interpolation on the grid."""
    t, x = np.asarray(t), np.asarray(x)
    k = np.nonzero((x[:-1] < level) & (x[1:] >= level))[0]
    return t[k] + (level - x[k]) / (x[k + 1] - x[k]) * (t[k + 1] - t[k])


def _grid(t1, dt):
    steps = round(t1 / dt)
    return steps, dt * jnp.arange(steps + 1)


# ---------------------------------------------------------------------------------------
# Single cells
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "neuron, state",
    [
        (HodgkinHuxley(), HodgkinHuxleyState(
            v=jnp.array([-50.0, 10.0]), m=jnp.array([0.2, 0.9]), h=jnp.array([0.5, 0.1]),
            n=jnp.array([0.4, 0.6]))),
        (WangBuzsaki(), WangBuzsakiState(v=jnp.array([-50.0, 10.0]),
                                         h=jnp.array([0.5, 0.1]), n=jnp.array([0.4, 0.6]))),
        (TraubMiles(), TraubMilesState(
            v=jnp.array([-50.0, 10.0]), m=jnp.array([0.2, 0.9]), h=jnp.array([0.5, 0.1]),
            n=jnp.array([0.4, 0.6]))),
        (FitzHughNagumo(time_scale=2.0, c_m=3.0),
         FitzHughNagumoState(v=jnp.array([-1.0, 1.5]), w=jnp.array([0.2, -0.3]))),
        (Rate(tau=jnp.array([20.0, 10.0]), v_rest=-70.0, transfer=PowerLaw()),
         RateState(v=jnp.array([-65.0, -72.0]))),
        (FiringRate(tau=5.0, transfer=Sigmoid(gain=2.0, threshold=1.0)),
         FiringRateState(r=jnp.array([0.1, 0.9]))),
        (WilsonCowan(tau=2.0, k_ref=0.7), WilsonCowanState(r=jnp.array([0.1, 0.6]))),
    ],
    ids=["hh", "wang_buzsaki", "traub_miles", "fhn", "rate", "firing_rate", "wilson_cowan"],
)
def test_time_derivative_is_the_fixed_step_limit(neuron, state):
    # (step(y, dt) - y) / dt -> dy/dt for every integrator here (exponential Euler and
    # RK4 are consistent); at dt = 1e-6 ms the O(dt) truncation and the O(eps/dt)
    # rounding are both ~1e-6 relative, so agreement to 1e-4 is a strict check.
    drive = Drive(jnp.array([150.0, -40.0]), jnp.array([3.0, 0.0]), jnp.zeros(2),
                  jnp.zeros(2))  # [pA], [nS]: a current and a conductance
    dt = 1e-6
    stepped, _ = neuron.step(state, drive, dt)
    derivative = neuron.time_derivative(state, drive)
    assert jax.tree.structure(derivative) == jax.tree.structure(state)
    for y, y1, dy in zip(jax.tree.leaves(state), jax.tree.leaves(stepped),
                         jax.tree.leaves(derivative)):
        np.testing.assert_allclose((y1 - y) / dt, dy, rtol=1e-4, atol=1e-6)
    if hasattr(neuron, "rate"):  # the rate a network reads is the step's output
        np.testing.assert_allclose(neuron.rate(stepped), neuron.step(state, drive, dt)[1])


@eqx.filter_jit
def _fixed_step_trace(model, state, drive, dt, steps):
    def body(s, _):
        s, _ = model.step(s, drive, dt)
        return s, s.v

    return jax.lax.scan(body, state, None, length=steps)[1]


def test_hh_adaptive_and_fixed_step_rk4_give_the_same_spikes():
    dt, t1 = 0.01, 100.0
    steps, ts = _grid(t1, dt)
    hh = HodgkinHuxley(integrator=RK4())
    y0 = hh.init(1)
    drive = _current(jnp.full((1,), 10.0 * UA_PER_CM2))  # 10 µA/cm² = 2000 pA
    sol = ode.solve(hh, t1, y0=y0, drive=drive, solver=diffrax.Tsit5(), rtol=1e-8,
                    atol=1e-8, saveat=diffrax.SaveAt(ts=ts))
    v_ode = np.asarray(sol.ys.v[:, 0])
    v_rk4 = np.concatenate([np.asarray(y0.v), np.asarray(_fixed_step_trace(
        hh, y0, drive, dt, steps))[:, 0]])
    spikes_ode = _upward_crossings(ts, v_ode, 0.0)
    spikes_rk4 = _upward_crossings(ts, v_rk4, 0.0)
    assert len(spikes_ode) == len(spikes_rk4) == 7  # 68.3 Hz from rest over 100 ms
    # The issue asks for 0.05 ms. RK4's global error is O(dt^4), ~1e-8 ms in spike time
    # at dt = 0.01 ms (measured 6e-8), so 1e-5 ms still leaves a wide margin.
    np.testing.assert_allclose(spikes_ode, spikes_rk4, rtol=0, atol=1e-5)
    # By the last ISI the run is on the limit cycle (successive ISIs agree to 1e-5 ms):
    # it gives REFERENCES.md §1's LSODA rate 68.324 Hz (measured 68.3237 Hz); 1e-3 Hz is
    # twice the rounding of the printed value.
    rate = 1e3 / np.diff(spikes_ode)[-1]
    assert abs(rate - 68.324) < 1e-3, rate


def test_hh_steady_state_is_the_published_resting_state():
    hh = HodgkinHuxley(integrator=RK4())
    v0 = jnp.full((1,), -60.0)  # depolarised start, gates at their -60 mV steady state
    m, h, n = hh.steady_gates(v0)
    start = HodgkinHuxleyState(v=v0, m=m, h=h, n=n)
    # Newton's method alone (the relaxation path is exercised by the network tests):
    # rest is the only fixed point at I = 0.
    rest = ode.steady_state(hh, y0=start, relax=False)
    # REFERENCES.md §1: -64.996 mV (m 0.0530, h 0.5960, n 0.3177); half the last digit.
    np.testing.assert_allclose(rest.v, -64.996, atol=5e-4)
    for x, ref in ((rest.m, 0.0530), (rest.h, 0.5960), (rest.n, 0.3177)):
        np.testing.assert_allclose(x, ref, atol=5e-5)
    # `init` finds the same point by a different route (Newton on the steady-state
    # current with the gates slaved to v); both converge to rounding.
    np.testing.assert_allclose(rest.v, hh.init(1).v, rtol=1e-10)


def test_fitzhugh_nagumo_limit_cycle_period():
    fhn = FitzHughNagumo()  # a = 0.7, b = 0.8, tau = 12.5; one model unit = 1 ms
    _, ts = _grid(300.0, 0.01)
    drive = lambda t: _current(jnp.full((1,), 0.5))  # noqa: E731  I = 0.5 (c_m = 1)
    sol = ode.solve(fhn, 300.0, drive=drive, saveat=diffrax.SaveAt(ts=ts))
    up = _upward_crossings(ts, sol.ys.v[:, 0], 0.0)
    assert len(up) >= 6
    period = np.diff(up)[-3:]  # after the transient from rest
    np.testing.assert_allclose(period, period[-1], rtol=1e-6)  # settled on the cycle
    # REFERENCES.md §4: 39.48 at I = 0.5, suggested tolerance ±0.5 %.
    np.testing.assert_allclose(period, 39.48, rtol=5e-3)
    # Tighter, against scipy's DOP853 at rtol 1e-12 with event location (39.474415; the
    # published 39.48 is one unit high in its last digit). 1e-4 covers locating the
    # crossings by linear interpolation on the 0.01 grid (cycle-to-cycle spread ~2e-5).
    a, b, tau = 0.7, 0.8, 12.5

    def fhn_field(t, y):
        return [y[0] - y[0] ** 3 / 3 - y[1] + 0.5, (y[0] + a - b * y[1]) / tau]

    def upward(t, y):
        return y[0]

    upward.direction = 1
    ref = solve_ivp(fhn_field, (0.0, 300.0), [-1.199408, -0.624260], method="DOP853",
                    rtol=1e-12, atol=1e-12, events=upward)
    np.testing.assert_allclose(period, np.diff(ref.t_events[0])[-1], atol=1e-4)


def test_kvaerno5_matches_analytic_solution_of_a_stiff_rate_population():
    # Time constants 0.001 and 100 ms (stiffness ratio 1e5) under a Waveform ramp that
    # reaches 1 at 10 ms and then holds: tau dr/dt = -r + I(t), linear transfer.
    tau = jnp.array([1e-3, 100.0])
    units = FiringRate(tau=tau, transfer=ReLU(gain=1.0))
    ramp_input = Waveform("A", times=jnp.array([0.0, 10.0]), values=jnp.array([0.0, 1.0]))
    model = Network([Population("A", 2, units)], inputs=[ramp_input]).build(jax.random.key(0))
    sol = ode.solve_network(model, 30.0, solver=diffrax.Kvaerno5(),
                            saveat=diffrax.SaveAt(ts=jnp.array([5.0, 30.0])))
    tau_np = np.asarray(tau)
    # Ramp a t from r(0) = 0: r = a (t - tau (1 - e^{-t/tau})); then relax towards 1.
    ramp = lambda t: 0.1 * (t - tau_np * (1.0 - np.exp(-t / tau_np)))  # noqa: E731
    exact_30 = 1.0 + (ramp(10.0) - 1.0) * np.exp(-20.0 / tau_np)
    np.testing.assert_allclose(sol.ys[0].r, np.stack([ramp(5.0), exact_30]), rtol=1e-6)
    # An explicit solver would need ~1e5 steps for the 1 µs unit; the implicit one
    # needs a few hundred.
    assert int(sol.stats["num_steps"]) < 2000


# ---------------------------------------------------------------------------------------
# Rate networks
# ---------------------------------------------------------------------------------------


def _pair(names, neurons, weights, inputs=()):
    """Two one-unit populations coupled by `weights[post][pre]`, all-to-all with
    autapses (one unit each), Delta synapses and no delay."""
    projs = [
        Projection(pre, post, AllToAll(allow_autapses=True), weight=float(weights[i][j]))
        for i, post in enumerate(names) for j, pre in enumerate(names)
    ]
    pops = [Population(name, 1, neuron) for name, neuron in zip(names, neurons)]
    return Network(pops, projs, inputs=list(inputs)).build(jax.random.key(0))


def _wilson_cowan(system):
    w = [[system.w_ee, -system.w_ei], [system.w_ie, -system.w_ii]]
    inputs = [Constant("E", amplitude=system.i_e), Constant("I", amplitude=system.i_i)]
    return _pair("EI", system.populations(), w, inputs)


def _wc_state(r_e, r_i):
    # Strongly typed, like a relaxed state, so Newton's compilation is shared.
    return (WilsonCowanState(r=jnp.full((1,), r_e, dtype=float)),
            WilsonCowanState(r=jnp.full((1,), r_i, dtype=float)))


def _rates(model, ys):
    return jnp.concatenate([p.neuron.rate(y) for p, y in zip(model.populations, ys)], axis=-1)


def test_wilson_cowan_fixed_points_including_the_saddle():
    system = WilsonCowanSystem()  # Neuromatch default_pars, REFERENCES.md §7
    model = _wilson_cowan(system)
    # Relaxation finds the two stable fixed points, one per basin; Newton alone, started
    # near it, finds the saddle that relaxation flees. (All three calls share one
    # compilation of the relaxation and one of Newton's method.)
    found = np.stack([
        _rates(model, ode.steady_state(model, y0=_wc_state(0.1, 0.1))),
        _rates(model, ode.steady_state(model, y0=_wc_state(0.9, 0.6))),
        _rates(model, ode.steady_state(model, y0=_wc_state(0.33, 0.17), relax=False)),
    ])
    published = np.array([[0.0, 0.0], [0.938430, 0.672481], [0.336852, 0.168420]])
    # Published to 6 decimals; Newton converges to rounding.
    np.testing.assert_allclose(found, published, atol=5e-7)
    # The points have the published stability: eigenvalues of the Jacobian, written out
    # with F' = a s (1 - s) for the logistic s (tau_E = 1, tau_I = 2 ms).
    def jacobian(r):
        s_e = 1.0 / (1.0 + np.exp(-1.2 * (9.0 * r[0] - 4.0 * r[1] - 2.8)))
        s_i = 1.0 / (1.0 + np.exp(-1.0 * (13.0 * r[0] - 11.0 * r[1] - 4.0)))
        d_e, d_i = 1.2 * s_e * (1.0 - s_e), 1.0 * s_i * (1.0 - s_i)
        return np.array([[-1.0 + 9.0 * d_e, -4.0 * d_e],
                         [13.0 * d_i / 2.0, (-1.0 - 11.0 * d_i) / 2.0]])

    eigs = [np.sort_complex(np.linalg.eigvals(jacobian(r))) for r in found]
    np.testing.assert_allclose(eigs[0], [-0.623 - 0.131j, -0.623 + 0.131j], atol=5e-4)
    np.testing.assert_allclose(eigs[1], [-1.422, -0.960], atol=5e-4)
    np.testing.assert_allclose(eigs[2], [-0.873, 1.057], atol=5e-4)


def _wc_oscillator():
    return WilsonCowanSystem(w_ee=6.4, w_ei=4.8, w_ie=6.0, w_ii=1.2, i_e=0.8, tau_i=2.0)


@eqx.filter_jit
def _wc_fixed_step(neurons, w, h, y0, dt, steps):
    """The fixed-step network update (exponential Euler, rates delivered one step
    later), written out for two one-unit populations; returns the final rates."""

    def body(carry, _):
        states, r = carry
        x = w @ r + h
        new = tuple(nrn.step(s, _current(x[k:k + 1]), dt)[0]
                    for k, (nrn, s) in enumerate(zip(neurons, states)))
        return (new, jnp.concatenate([s.r for s in new])), None

    r0 = jnp.concatenate([s.r for s in y0])
    return jax.lax.scan(body, (y0, r0), None, length=steps)[0][1]


def test_wilson_cowan_limit_cycle_and_fixed_step_convergence():
    system = _wc_oscillator()
    model = _wilson_cowan(system)
    y0 = _wc_state(0.1, 0.1)
    _, ts = _grid(200.0, 0.01)
    sol = ode.solve_network(model, 200.0, y0=y0, saveat=diffrax.SaveAt(ts=ts))
    r_e, r_i = np.asarray(sol.ys[0].r[:, 0]), np.asarray(sol.ys[1].r[:, 0])
    up = _upward_crossings(ts, r_e, 0.4)
    # REFERENCES.md §7, oscillatory set: period 21.52 ms, r_E in [0.087, 0.768]; half
    # the last printed digit (the first 100 ms are the transient).
    np.testing.assert_allclose(np.diff(up)[-3:], 21.52, atol=5e-3)
    late = r_e[ts > 100.0]
    np.testing.assert_allclose([late.min(), late.max()], [0.087, 0.768], atol=5e-4)

    # The fixed-step network (rates delivered one step later, exponential Euler) is a
    # first-order method whose dt -> 0 limit is this ODE: halving dt halves its error.
    t1 = 5.0
    ref = jnp.array([r_e[500], r_i[500]])  # t = 5 ms on the 0.01 ms grid
    w = jnp.array([[system.w_ee, -system.w_ei], [system.w_ie, -system.w_ii]])
    h = jnp.stack([system.i_e, system.i_i])
    errors = []
    for dt in (0.01, 0.005):
        r = _wc_fixed_step(system.populations(), w, h, y0, dt, round(t1 / dt))
        errors.append(float(jnp.max(jnp.abs(r - ref))))
    assert np.isclose(float(ts[500]), t1)
    print(errors)
    assert errors[1] < 1e-2
    np.testing.assert_allclose(errors[0] / errors[1], 2.0, rtol=0.05)


SSN_W = np.array([[1.25, -0.65], [1.2, -0.5]])  # [mV·s]: W [mV·s] @ r [Hz] = [mV]


def _ssn(h):
    """Hennequin et al. (2018) 2-population SSN, REFERENCES.md §8, with input h [mV]."""
    power_law = PowerLaw(k=0.3, n=2.0)  # [Hz/mV²]
    neurons = (Rate(tau=20.0, v_rest=-70.0, transfer=power_law),  # [ms], [mV]
               Rate(tau=10.0, v_rest=-70.0, transfer=power_law))
    inputs = [Constant("E", amplitude=h), Constant("I", amplitude=h)]
    return _pair("EI", neurons, SSN_W, inputs)


def _ssn_rates(model, h, w_ee):
    """Steady-state rates [Hz] with input h [mV] and E->E weight w_ee [mV·s]."""
    h, w_ee = jnp.asarray(h, float), jnp.asarray(w_ee, float)
    model = eqx.tree_at(
        lambda m: (m.inputs[0].amplitude, m.inputs[1].amplitude,
                   m.projections[0].weights.weights),
        model, (h, h, jnp.reshape(w_ee, (1, 1))))
    return _rates(model, ode.steady_state(model))


def test_ssn_steady_states_and_their_weight_gradient():
    model = _ssn(2.0)
    assert model.projections[0].name == "E->E"
    # Same shapes and dtypes throughout, so every call reuses one compilation.
    rates = np.stack([_ssn_rates(model, h, 1.25) for h in (2.0, 5.0)])
    # REFERENCES.md §8 table; agreement to half the last printed digit.
    np.testing.assert_allclose(rates, [[3.2609, 4.2757], [8.4543, 15.7836]], atol=5.01e-5)

    # d r_E / d W_EE at h = 2 mV through the implicit function theorem, against central
    # differences (eps = 1e-5 mV·s: truncation O(eps²) ~ 1e-10 relative, and Newton
    # converges to rounding, so 1e-6 is ample).
    grad = jax.grad(lambda w: _ssn_rates(model, 2.0, w)[0])(jnp.asarray(1.25))
    eps = 1e-5
    up, down = (float(_ssn_rates(model, 2.0, 1.25 + s * eps)[0]) for s in (1, -1))
    np.testing.assert_allclose(grad, (up - down) / (2 * eps), rtol=1e-6)
    assert grad > 0  # more recurrent excitation, more E activity (r_E ~ 3.26 Hz)


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("neuron", [LIF(), Izhikevich()], ids=["lif", "izhikevich"])
def test_threshold_and_reset_models_are_refused(neuron):
    name = type(neuron).__name__
    with pytest.raises(ValueError, match=f"{name} defines no continuous-time vector field"):
        ode.solve(neuron, 10.0)
    with pytest.raises(ValueError, match="nj.simulate"):
        ode.steady_state(neuron)


def test_bad_arguments_raise_clear_errors():
    fhn = FitzHughNagumo()
    with pytest.raises(ValueError, match="t1"):
        ode.solve(fhn, 0.0)
    with pytest.raises(ValueError, match="n = 3 does not match y0"):
        ode.solve(fhn, 1.0, n=3, y0=fhn.init(2))
    with pytest.raises(ValueError, match="constant `drive`"):
        ode.steady_state(fhn, drive=lambda t: _current(jnp.zeros(1)))


def _one_pop_net(neuron=Rate(), **kwargs):
    proj = kwargs.pop("projection", {})
    inputs = kwargs.pop("inputs", ())
    return Network([Population("A", 3, neuron)],
                   [Projection("A", "A", AllToAll(), weight=0.1, **proj)],
                   inputs=inputs).build(jax.random.key(0))


@pytest.mark.parametrize(
    "model, match",
    [
        (lambda: _one_pop_net(LIF()), "population 'A' \\(LIF\\) defines no continuous"),
        (lambda: _one_pop_net(FitzHughNagumo()), "emits spikes"),
        (lambda: _one_pop_net(projection={"synapse": Exponential(tau=5.0)}),
         "'A->A' has Exponential synapses"),
        (lambda: _one_pop_net(projection={"receptor": Conductance(e_rev=0.0)}),
         "Conductance receptor"),
        (lambda: _one_pop_net(projection={"delay": 1.0}), "delay \\[ms\\] = 1"),
        (lambda: _one_pop_net(inputs=[Poisson("A", rate=5.0, n_sources=10, weight=0.1)]),
         "Poisson input to 'A'"),
    ],
    ids=["lif", "hh", "exponential", "conductance", "delay", "poisson"],
)
def test_networks_outside_the_rate_ode_class_are_refused(model, match):
    model = model()
    with pytest.raises(ValueError, match=match):
        ode.solve_network(model, 10.0)
    with pytest.raises(ValueError, match=match):
        ode.steady_state(model)


def test_time_varying_network_input_has_no_steady_state():
    wave = Waveform("A", times=jnp.array([0.0, 10.0]), values=jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="Waveform input to 'A' varies in time"):
        ode.steady_state(_one_pop_net(inputs=[wave]))
