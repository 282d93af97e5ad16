import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from neurojax._abstract import Drive
from neurojax.neurons.lif import LIF
from neurojax.synapses.kinetics import (
    Alpha,
    AlphaState,
    Delta,
    DeltaState,
    DualExponential,
    DualExponentialState,
    Exponential,
    ExponentialState,
)
from neurojax.synapses.receptors import Conductance, Current


def _respond(kinetics, x, dt, state=None):
    """Outputs `s` of every step for arrivals `x` of shape (steps, n)."""
    state = kinetics.init(x.shape[1]) if state is None else state

    def body(s, xk):
        return kinetics.step(s, xk, dt)

    return jax.lax.scan(body, state, jnp.asarray(x, float))[1]


def _impulse(n, steps, weight):
    """One arrival of `weight` (scalar or (n,)) in step 0, nothing afterwards."""
    x = np.zeros((steps, n))
    x[0] = weight
    return x


def _dual_exponential_closed_form(t, w, tau_rise, tau_decay):
    # The peak normalisation written from e^{-t*/tau} = (tau_r/tau_d)^{tau/(tau_d - tau_r)}
    # at t* = tau_d tau_r/(tau_d - tau_r) ln(tau_d/tau_r), independently of the library.
    r = tau_rise / tau_decay
    peak = r ** (tau_rise / (tau_decay - tau_rise)) - r ** (tau_decay / (tau_decay - tau_rise))
    return w / peak * (np.exp(-t / tau_decay) - np.exp(-t / tau_rise))


# ---------------------------------------------------------------------------------------
# Impulse responses against closed forms


def test_exponential_impulse_response_is_exact_on_the_grid():
    tau = np.array([2.0, 5.0, 10.0])
    w = np.array([1.5, -0.7, 3.0])
    dt, steps = 0.1, 600
    s = jax.jit(lambda: _respond(Exponential(tau=tau), _impulse(3, steps, w), dt))()
    t = dt * np.arange(steps)[:, None]
    # The arrival counts fully in its own step (s = w at t = 0) and decays by the exact
    # factor e^{-dt/tau} afterwards, so only float64 rounding of 600 products remains.
    np.testing.assert_allclose(s, w * np.exp(-t / tau), rtol=1e-12, atol=1e-300)


def test_alpha_impulse_response_is_exact_on_the_grid():
    tau = np.array([1.0, 2.0, 7.5])
    w = np.array([2.0, 1.0, -4.0])
    dt, steps = 0.1, 800
    s = jax.jit(lambda: _respond(Alpha(tau=tau), _impulse(3, steps, w), dt))()
    t = dt * np.arange(steps)[:, None]
    # Exact propagation of the 2-D linear system: the grid values of w (t/tau) e^{1-t/tau}
    # up to float64 rounding; the atol covers the exact zero at t = 0.
    np.testing.assert_allclose(s, w * (t / tau) * np.exp(1.0 - t / tau), rtol=1e-12, atol=1e-15)
    # Peak equals the weight at t = tau (a grid point for all three taus).
    peak_steps = np.round(tau / dt).astype(int)
    np.testing.assert_allclose(s[peak_steps, np.arange(3)], w, rtol=1e-12)
    np.testing.assert_array_equal(np.argmax(np.abs(s), axis=0), peak_steps)


def test_dual_exponential_peaks_at_weight_at_t_star_and_matches_closed_form():
    tau_rise, tau_decay, w = 1.0, 5.0, 2.5
    t_star = tau_decay * tau_rise / (tau_decay - tau_rise) * math.log(tau_decay / tau_rise)
    # A dt that puts t* on the grid (step 50), so the sampled peak is the true peak.
    dt, steps = t_star / 50, 1000
    s = jax.jit(
        lambda: _respond(DualExponential(tau_rise, tau_decay), _impulse(1, steps, w), dt)
    )()[:, 0]
    t = dt * np.arange(steps)
    np.testing.assert_allclose(
        s, _dual_exponential_closed_form(t, w, tau_rise, tau_decay), rtol=1e-12, atol=1e-15
    )
    assert int(np.argmax(s)) == 50
    np.testing.assert_allclose(s[50], w, rtol=1e-12)


def test_dual_exponential_per_neuron_time_constants():
    tau_rise = np.array([0.5, 1.0, 2.0])
    tau_decay = np.array([3.0, 10.0, 2.5])
    dt, steps = 0.05, 1200
    s = _respond(DualExponential(tau_rise, tau_decay), _impulse(3, steps, 1.0), dt)
    t = dt * np.arange(steps)[:, None]
    np.testing.assert_allclose(
        s, _dual_exponential_closed_form(t, 1.0, tau_rise, tau_decay), rtol=1e-12, atol=1e-15
    )
    # Off the grid the sampled maximum lies just below the weight, never above it.
    assert np.all(s.max(axis=0) <= 1.0 + 1e-12) and np.all(s.max(axis=0) > 0.99)


def test_delta_passes_arrivals_through_as_instantaneous_charge():
    delta = Delta()
    assert delta.instantaneous and not Exponential().instantaneous
    x = np.random.default_rng(0).normal(size=(20, 4))
    np.testing.assert_array_equal(_respond(delta, x, 0.1), x)
    assert isinstance(delta.init(4), DeltaState)

    # Through a Current receptor the weight is a charge [pA·ms]: an LIF at rest jumps by
    # exactly w / c_m [mV] at the end of the arrival step, with no leak in between.
    lif = LIF(c_m=250.0, g_l=12.5, e_l=-70.0, v_th=-50.0, v_reset=-70.0, t_ref=2.0)
    w = jnp.array([50.0, -25.0])
    _, s = delta.step(delta.init(2), w, 0.1)
    state, _ = lif.step(lif.init(2), Current().drive(s, delta.instantaneous), 0.1)
    np.testing.assert_allclose(state.v, -70.0 + w / 250.0, rtol=1e-14)
    # Through a Conductance the weight is conductance·time [nS·ms]: jump w (E - v) / c_m.
    _, s = delta.step(delta.init(2), jnp.array([2.0, 4.0]), 0.1)
    drive = Conductance(e_rev=0.0).drive(s, delta.instantaneous)
    state, _ = lif.step(lif.init(2), drive, 0.1)
    np.testing.assert_allclose(state.v, -70.0 + np.array([2.0, 4.0]) * 70.0 / 250.0, rtol=1e-14)


# ---------------------------------------------------------------------------------------
# Linearity


@pytest.mark.parametrize(
    "kinetics",
    [Delta(), Exponential(tau=3.0), Alpha(tau=2.0), DualExponential(0.5, 4.0)],
    ids=["delta", "exponential", "alpha", "dual_exponential"],
)
def test_response_is_the_superposition_of_impulse_responses(kinetics):
    rng = np.random.default_rng(1)
    dt, steps, n = 0.1, 300, 3
    # Sparse random weighted arrivals, including several in one step and negative ones.
    x = rng.poisson(0.05, size=(steps, n)) * rng.normal(1.0, 0.5, size=(steps, n))
    h = np.asarray(_respond(kinetics, _impulse(1, steps, 1.0), dt))[:, 0]
    expected = np.stack([np.convolve(x[:, j], h)[:steps] for j in range(n)], axis=1)
    s = _respond(kinetics, x, dt)
    # Exact linear propagation: only rounding of a few hundred terms separates the two.
    np.testing.assert_allclose(s, expected, rtol=1e-10, atol=1e-12)

    y = rng.normal(size=(steps, n)) * (rng.random((steps, n)) < 0.1)
    combined = _respond(kinetics, 2.0 * x - 3.0 * y, dt)
    np.testing.assert_allclose(
        combined, 2.0 * s - 3.0 * _respond(kinetics, y, dt), rtol=1e-10, atol=1e-12
    )


# ---------------------------------------------------------------------------------------
# Initial state


def test_initial_state_outputs_initial_value_then_decays():
    g0 = jnp.array([1.0, 2.0, 0.5])
    dt, steps, tau = 0.1, 100, 4.0
    t = dt * np.arange(steps)[:, None]
    zeros = np.zeros((steps, 3))
    # Without arrivals each kinetics relaxes from `initial` along its slowest mode.
    for kinetics, tau_slow in [
        (Exponential(tau=tau), tau),
        (Alpha(tau=tau), tau),
        (DualExponential(1.0, tau), tau),
    ]:
        s = _respond(kinetics, zeros, dt, state=kinetics.init(3, initial=g0))
        np.testing.assert_allclose(s, np.asarray(g0) * np.exp(-t / tau_slow), rtol=1e-12)


def test_default_initial_state_is_zero_with_the_right_structure():
    assert isinstance(Exponential().init(4), ExponentialState)
    assert isinstance(Alpha().init(4), AlphaState)
    assert isinstance(DualExponential().init(4), DualExponentialState)
    for kinetics in (Exponential(), Alpha(), DualExponential()):
        state = kinetics.init(4)
        for leaf in jax.tree_util.tree_leaves(state):
            assert leaf.shape == (4,) and leaf.dtype == jnp.float64
            np.testing.assert_array_equal(leaf, 0.0)
        # Zero arrivals into the zero state are a fixed point; the structure and dtypes
        # survive a step.
        new, s = kinetics.step(state, jnp.zeros(4), 0.1)
        assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(state)
        np.testing.assert_array_equal(s, 0.0)
        for leaf in jax.tree_util.tree_leaves(new):
            assert leaf.dtype == jnp.float64
            np.testing.assert_array_equal(leaf, 0.0)


def test_delta_rejects_an_initial_value():
    with pytest.raises(ValueError, match="initial"):
        Delta().init(3, initial=jnp.ones(3))


# ---------------------------------------------------------------------------------------
# Receptors


def test_current_receptor_fills_current_or_charge():
    s = jnp.array([1.0, -2.0, 3.0])
    zero = np.zeros(3)
    held = Current().drive(s, False)
    assert isinstance(held, Drive)
    for got, want in zip((held.i, held.g, held.q, held.qg), (s, zero, zero, zero)):
        np.testing.assert_array_equal(got, want)
    jump = Current().drive(s, True)
    for got, want in zip((jump.i, jump.g, jump.q, jump.qg), (zero, zero, s, zero)):
        np.testing.assert_array_equal(got, want)


def test_conductance_receptor_fills_conductance_with_reversal():
    s = jnp.array([1.0, 2.0, 3.0])
    e_rev = jnp.array([0.0, -80.0, 10.0])
    v = jnp.array([-65.0, -50.0, -70.0])
    rec = Conductance(e_rev=e_rev)
    held = rec.drive(s, False)
    np.testing.assert_array_equal(held.i, s * e_rev)
    np.testing.assert_array_equal(held.g, s)
    np.testing.assert_array_equal(held.q, 0.0)
    np.testing.assert_array_equal(held.qg, 0.0)
    # The current g (E - v) [pA] that a neuron sees at potential v [mV].
    np.testing.assert_allclose(held.current(v), s * (e_rev - v), rtol=1e-15)
    jump = rec.drive(s, True)
    np.testing.assert_array_equal(jump.i, 0.0)
    np.testing.assert_array_equal(jump.g, 0.0)
    np.testing.assert_array_equal(jump.q, s * e_rev)
    np.testing.assert_array_equal(jump.qg, s)
    np.testing.assert_allclose(jump.charge(v), s * (e_rev - v), rtol=1e-15)
    assert float(Conductance().e_rev) == 0.0


def test_conductance_rejects_nan_reversal():
    with pytest.raises(ValueError, match=r"e_rev \[mV\]"):
        Conductance(e_rev=float("nan"))


# ---------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
@pytest.mark.parametrize("cls", [Exponential, Alpha])
def test_nonpositive_tau_raises(cls, bad):
    with pytest.raises(ValueError, match=r"tau \[ms\]"):
        cls(tau=bad)


def test_dual_exponential_time_constant_validation():
    with pytest.raises(ValueError, match=r"tau_rise \[ms\]"):
        DualExponential(tau_rise=0.0, tau_decay=5.0)
    with pytest.raises(ValueError, match=r"tau_decay \[ms\]"):
        DualExponential(tau_rise=1.0, tau_decay=-5.0)
    for rise, decay in [(5.0, 5.0), (6.0, 5.0), (np.array([1.0, 3.0]), np.array([2.0, 3.0]))]:
        with pytest.raises(ValueError, match="tau_rise"):
            DualExponential(tau_rise=rise, tau_decay=decay)


def test_dt_too_large_for_the_time_constant_raises():
    Exponential(tau=1.0).check(1.0)
    Alpha(tau=1.0).check(0.5)
    DualExponential(0.5, 5.0).check(0.5)
    Delta().check(10.0)
    with pytest.raises(ValueError, match="synapse tau"):
        Exponential(tau=1.0).check(1.5)
    with pytest.raises(ValueError, match="synapse tau"):
        Alpha(tau=np.array([5.0, 0.2])).check(0.5)
    with pytest.raises(ValueError, match="synapse tau_rise"):
        DualExponential(0.5, 5.0).check(1.0)


# ---------------------------------------------------------------------------------------
# Transformations


def test_jit_and_vmap_over_tau_match_eager_loop():
    dt, steps = 0.1, 30
    x = _impulse(2, steps, np.array([1.0, 2.0]))
    taus = jnp.array([1.0, 3.0, 6.0])

    def run(tau):
        return _respond(Alpha(tau=tau), x, dt)

    batched = jax.jit(jax.vmap(run))(taus)
    with jax.disable_jit():
        looped = np.stack([np.asarray(run(tau)) for tau in taus])
    np.testing.assert_allclose(batched, looped, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("make", [Exponential, Alpha], ids=["exponential", "alpha"])
def test_gradient_wrt_tau_matches_finite_differences(make):
    x = np.random.default_rng(2).random((40, 2))

    @jax.jit
    def loss(tau):
        s = _respond(make(tau=tau), x, 0.1)
        return jnp.sum(s**2)

    check_grads(loss, (jnp.array([2.0, 4.0]),), order=2, modes=["fwd", "rev"])


def test_dual_exponential_gradient_wrt_both_time_constants():
    x = np.random.default_rng(3).random((40, 2))

    @jax.jit
    def loss(tau_rise, tau_decay):
        model = eqx.tree_at(
            lambda m: (m.tau_rise, m.tau_decay), DualExponential(), (tau_rise, tau_decay)
        )
        return jnp.sum(_respond(model, x, 0.1) ** 2)

    # First order keeps compile time down; second-order terms of the same exact
    # propagation are checked for Exponential and Alpha above.
    check_grads(loss, (jnp.array([0.5, 1.0]), jnp.array([3.0, 6.0])), order=1, modes=["fwd", "rev"])


# ---------------------------------------------------------------------------------------
# Graded (rate) input: graded_gain makes the filtered level dt-independent


@pytest.mark.parametrize("kinetics", [Exponential(tau=5.0), Alpha(tau=3.0),
                                      DualExponential(tau_rise=1.0, tau_decay=8.0), Delta()],
                         ids=lambda k: type(k).__name__)
@pytest.mark.parametrize("dt", [0.1, 0.5])
def test_graded_gain_inverts_the_discrete_kernel_sum(kinetics, dt):
    # The kernel's own outputs after a unit arrival, summed over 100 time constants
    # (the tail e^-100 is far below float64 rounding), times the gain: exactly 1 up to
    # the rounding of ~1e4 terms (1e-11). Delta is instantaneous: gain 1.
    steps = int(100 * 8.0 / dt)
    out = _respond(kinetics, _impulse(1, steps, 1.0), dt)
    total = float(jnp.sum(out))
    np.testing.assert_allclose(float(kinetics.graded_gain(dt)) * total, 1.0, rtol=1e-11)


def test_graded_rate_through_exponential_synapses_is_dt_independent():
    # A rate population held at r = 4 (FiringRate with ReLU gain 1, tau = 1e-3 ms, so
    # it settles within its first step) drives a second one through Exponential(tau_s
    # = 5 ms) synapses of weight w = 0.5. The synaptic level obeys tau_s ds/dt = -s +
    # w r exactly on the grid (r held over each step): the level used in step k >= 1
    # (the first arrival lands one step after the first output) is w r (1 - q^k),
    # q = e^{-dt/tau_s}, and the state carries it decayed by q. Compared at dt = 0.1
    # and 0.025 ms with the closed form to 1e-9 relative (the presynaptic rate reaches
    # r to e^{-100} in its first step); before graded_gain the level grew as tau_s / dt
    # (50x at dt = 0.1 ms).
    import neurojax as nj

    r, w, tau_s, duration = 4.0, 0.5, 5.0, 40.0
    relu = nj.neurons.ReLU(gain=1.0)
    net = nj.Network(
        [nj.Population("A", 1, nj.neurons.FiringRate(tau=1e-3, transfer=relu)),
         nj.Population("B", 1, nj.neurons.FiringRate(tau=1.0, transfer=relu))],
        [nj.Projection("A", "B", nj.connectivity.AllToAll(), weight=w,
                       synapse=nj.synapses.Exponential(tau=tau_s))],
        inputs=[nj.inputs.Constant("A", amplitude=r)],
    )
    model = net.build(jax.random.key(0))
    final = []
    for dt in (0.1, 0.025):
        def body(state, _):
            state, _ = model.step(state, 0.0, dt)
            return state, state.synapses[0].s[0]

        _, carried = jax.lax.scan(body, model.init(jax.random.key(0), dt), None,
                                  length=round(duration / dt))
        q = np.exp(-dt / tau_s)
        k = np.arange(len(carried))
        expected = q * w * r * (1.0 - q**k)
        np.testing.assert_allclose(np.asarray(carried), expected, rtol=1e-9, atol=1e-12)
        final.append(float(carried[-1]) / q)
    # The same level at the same time for both dt (the grids differ by one step of
    # transmission delay: dt e^{-t/tau_s}/tau_s ~ 1e-4 relative at 40 ms).
    np.testing.assert_allclose(final[0], final[1], rtol=1e-3)
    np.testing.assert_allclose(final, w * r * (1 - np.exp(-duration / tau_s)), rtol=1e-3)
