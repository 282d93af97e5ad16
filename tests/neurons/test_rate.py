"""Tests for rate and binary units (neurojax/neurons/rate.py)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from jax.test_util import check_grads

from neurojax._abstract import Drive
from neurojax.neurons.rate import (
    Binary,
    BinaryState,
    FiringRate,
    FiringRateState,
    PowerLaw,
    Rate,
    RateState,
    ReLU,
    Sigmoid,
    Tanh,
    WilsonCowan,
    WilsonCowanState,
    WilsonCowanSystem,
    hopfield_retrieve,
    hopfield_weights,
)


def _drive(i):
    z = jnp.zeros_like(i)
    return Drive(i, z, z, z)


def _run(model, state, inputs, dt):
    """Scan `model.step` over `inputs` of shape (steps, n); returns (state, outputs)."""

    def body(state, i):
        return model.step(state, _drive(i), dt)

    return jax.lax.scan(body, state, inputs)


def _run_constant(model, state, h, dt, steps):
    return _run(model, state, jnp.broadcast_to(h, (steps,) + h.shape), dt)


# ------------------------------------------------------------------------------------
# Transfer functions
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("relu", [ReLU(), ReLU(gain=2.0, threshold=0.5),
                                  ReLU(gain=2.0, threshold=0.5, max_rate=5.0),
                                  ReLU(max_rate=1.0)])
def test_relu_equals_max_min_with_their_derivatives_bit_for_bit(relu):
    # ReLU is written with selects (one boolean residual each in a scan's backward
    # pass) but must be exactly jnp.minimum(g * jnp.maximum(x - theta, 0), r_max):
    # values (NaN and infinities included: a blow-up stays visible) and derivatives
    # with respect to x and every parameter, 1/2 at ties (x = theta, rate = r_max)
    # as jnp's max and min define them; with max_rate concrete (folded away when
    # infinite) and traced (jit over the module).
    def reference(f, x):
        return jnp.minimum(f.gain * jnp.maximum(x - f.threshold, 0.0), f.max_rate)

    x = jnp.array([-2.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 5.0, jnp.nan, jnp.inf, -jnp.inf])
    finite = x[:8]  # includes both ties for every parameter set above
    for call in (lambda f, x: f(x), jax.jit(lambda f, x: f(x))):
        np.testing.assert_array_equal(call(relu, x), reference(relu, x))
        np.testing.assert_array_equal(jax.vmap(jax.grad(lambda v: call(relu, v)))(finite),
                                      jax.vmap(jax.grad(lambda v: reference(relu, v)))(finite))
        for name in ("gain", "threshold", "max_rate"):
            def total(value, fn):
                return jnp.sum(fn(eqx.tree_at(lambda f: getattr(f, name), relu, value), finite))
            value = getattr(relu, name)
            np.testing.assert_array_equal(jax.grad(total)(value, call),
                                          jax.grad(total)(value, reference))


def test_transfer_functions_match_their_formulas():
    x = jnp.array([-3.0, -0.5, 0.0, 0.7, 2.0, 9.0])
    xn = np.asarray(x)
    np.testing.assert_allclose(
        ReLU(gain=2.0, threshold=0.5)(x), 2.0 * np.maximum(xn - 0.5, 0.0), rtol=1e-15
    )
    np.testing.assert_allclose(
        ReLU(gain=2.0, threshold=0.5, max_rate=5.0)(x),
        np.minimum(2.0 * np.maximum(xn - 0.5, 0.0), 5.0),
        rtol=1e-15,
    )
    a, th = 1.2, 2.8
    plain = 3.0 / (1.0 + np.exp(-a * (xn - th)))
    np.testing.assert_allclose(Sigmoid(gain=a, threshold=th, max_rate=3.0)(x), plain,
                               rtol=1e-14)
    shifted = 1.0 / (1.0 + np.exp(-a * (xn - th))) - 1.0 / (1.0 + np.exp(a * th))
    np.testing.assert_allclose(Sigmoid(gain=a, threshold=th, shifted=True)(x), shifted,
                               rtol=1e-13, atol=1e-16)
    assert float(Sigmoid(gain=a, threshold=th, shifted=True)(jnp.array(0.0))) == 0.0
    np.testing.assert_allclose(Tanh(gain=0.5, threshold=1.0, max_rate=2.0)(x),
                               2.0 * np.tanh(0.5 * (xn - 1.0)), rtol=1e-14)
    np.testing.assert_allclose(PowerLaw(k=0.3, n=2.0)(x),
                               0.3 * np.maximum(xn, 0.0) ** 2, rtol=1e-15)


def test_power_law_is_zero_below_threshold_with_finite_gradients():
    x = jnp.array([-1.0, 0.0, 2.0])
    # n = 0 is a step k H(x) (x > 0), not 0**0 = 1 at x <= 0.
    np.testing.assert_array_equal(PowerLaw(k=0.5, n=0.0)(x), [0.0, 0.0, 0.5])

    def total(x, k, n):
        return PowerLaw(k=k, n=n)(x).sum()

    gx, gk, gn = jax.grad(total, argnums=(0, 1, 2))(x, jnp.array(0.3), jnp.array(1.5))
    assert np.all(np.isfinite(gx)) and np.isfinite(gk) and np.isfinite(gn)
    np.testing.assert_allclose(gx, [0.0, 0.0, 0.3 * 1.5 * np.sqrt(2.0)], rtol=1e-14)
    np.testing.assert_allclose(gn, 0.3 * 2.0**1.5 * np.log(2.0), rtol=1e-14)


# ------------------------------------------------------------------------------------
# Analytic solutions and invariants
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transfer",
    [ReLU(gain=2.0, threshold=1.0), PowerLaw(k=0.3, n=2.0)],
    ids=["relu", "power_law"],
)
def test_rate_steady_state_under_constant_input(transfer):
    h = jnp.array([-2.0, 0.5, 1.0, 3.0, 7.5])  # [mV], below and above threshold
    model = Rate(tau=jnp.array([5.0, 10.0, 20.0, 10.0, 3.0]), v_rest=-70.0,
                 transfer=transfer)
    state, r = _run_constant(model, model.init(5), h, 0.5, 2000)  # 1 s >= 50 tau
    # After 50 tau the transient is e^-50 ~ 2e-22 of the initial distance: the only
    # error left is rounding, so 1e-10 leaves margin.
    np.testing.assert_allclose(state.v, -70.0 + h, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r[-1], transfer(h), rtol=1e-10, atol=1e-10)


def test_rate_forms_steady_states_under_constant_input():
    h = jnp.array([-1.0, 0.0, 2.0, 6.0])
    sig = Sigmoid(gain=1.2, threshold=2.8, shifted=True)
    fr = FiringRate(tau=2.0, transfer=sig)
    _, r = _run_constant(fr, fr.init(4), h, 0.1, 1000)  # 100 ms = 50 tau
    np.testing.assert_allclose(r[-1], sig(h), rtol=1e-10, atol=1e-12)
    wc = WilsonCowan(tau=2.0, transfer=sig, k_ref=0.8)
    _, r = _run_constant(wc, wc.init(4), h, 0.1, 1000)
    f = np.asarray(sig(h))
    # Fixed point of -r + (1 - k r) F = 0.
    np.testing.assert_allclose(r[-1], f / (1.0 + 0.8 * f), rtol=1e-10, atol=1e-12)


def test_voltage_form_relaxes_exactly_exponentially():
    tau = jnp.array([20.0, 10.0, 3.0])
    model = Rate(tau=tau, v_rest=-70.0, transfer=PowerLaw(k=0.3, n=2.0))
    v0 = jnp.array([-80.0, -65.0, -70.0])
    h = jnp.array([4.0, -2.0, 1.5])
    dt, steps = 0.1, 500

    def body(state, _):
        state, r = model.step(state, _drive(h), dt)
        return state, (state.v, r)

    _, (v, r) = jax.lax.scan(body, RateState(v=v0), None, length=steps)
    t = dt * np.arange(1, steps + 1)[:, None]
    v_inf = -70.0 + np.asarray(h)
    v_exact = v_inf + (np.asarray(v0) - v_inf) * np.exp(-t / np.asarray(tau))
    # Exponential Euler is the exact solution for constant input; 1e-12 is rounding
    # (each step multiplies by a rounded e^{-dt/tau}, ~1e-16 relative per step).
    np.testing.assert_allclose(v, v_exact, rtol=1e-12)
    # The rate squares v - v_rest, which cancels near rest: compare it absolutely.
    np.testing.assert_allclose(r, 0.3 * np.maximum(v_exact + 70.0, 0.0) ** 2, rtol=1e-12,
                               atol=1e-12)


def test_wilson_cowan_relaxes_exactly_exponentially_with_refractoriness():
    sig = Sigmoid(gain=1.0, threshold=1.0)
    model = WilsonCowan(tau=4.0, transfer=sig, k_ref=1.0)
    h = jnp.array([0.3, 2.0])
    r0 = jnp.array([0.9, 0.05])
    dt, steps = 0.2, 100
    _, r = _run_constant(model, WilsonCowanState(r=r0), h, dt, steps)
    f = np.asarray(sig(h))
    lam = 1.0 + f
    t = dt * np.arange(1, steps + 1)[:, None]
    exact = f / lam + (np.asarray(r0) - f / lam) * np.exp(-lam * t / 4.0)
    np.testing.assert_allclose(r, exact, rtol=1e-12)


@pytest.mark.parametrize(
    "model",
    [
        Rate(tau=10.0, v_rest=-70.0, transfer=PowerLaw()),
        FiringRate(tau=10.0, transfer=Sigmoid(gain=2.0, threshold=1.0)),  # f(0) > 0
        WilsonCowan(tau=1.0, k_ref=1.0),
        WilsonCowan(tau=1.0, k_ref=0.5, transfer=Sigmoid(gain=1.0, threshold=2.0)),
    ],
    ids=["rate", "firing_rate", "wilson_cowan", "wilson_cowan_unshifted"],
)
def test_init_is_fixed_point_and_step_keeps_structure(model):
    state = model.init(3)
    new, out = model.step(state, _drive(jnp.zeros(3)), 0.1)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-300)
    assert out.shape == (3,) and not model.spiking


# ------------------------------------------------------------------------------------
# Published references: SSN and Wilson-Cowan
# ------------------------------------------------------------------------------------

SSN_W = np.array([[1.25, -0.65], [1.2, -0.5]])  # [mV·s]: W [mV·s] @ r [Hz] = [mV]
SSN_TABLE = {  # REFERENCES.md §8, Hennequin et al. 2018: h [mV] -> (r_E, r_I) [Hz]
    0.5: (0.0917, 0.0950),
    1.0: (0.4747, 0.5161),
    2.0: (3.2609, 4.2757),
    5.0: (8.4543, 15.7836),
}


def _ssn_fixed_point(h):
    """Newton's method on u = h + W k [u]_+^2 (u = V - V_rest [mV])."""
    u = np.array([1.0, 1.0])
    for _ in range(100):
        f = u - h - SSN_W @ (0.3 * np.maximum(u, 0.0) ** 2)
        jac = np.eye(2) - SSN_W * (0.6 * np.maximum(u, 0.0))[None, :]
        u = u - np.linalg.solve(jac, f)
    return 0.3 * u**2


def test_ssn_two_populations_reach_published_fixed_points():
    model = Rate(tau=jnp.array([20.0, 10.0]), v_rest=-70.0,
                 transfer=PowerLaw(k=0.3, n=2.0))
    w = jnp.asarray(SSN_W)
    model.check(2, 0.1)

    def relax(h):
        def body(carry, _):
            state, r = carry  # rates of the previous step, as a projection delivers
            state, r = model.step(state, _drive(h + w @ r), 0.1)
            return (state, r), None

        (_, r), _ = jax.lax.scan(body, (model.init(2), jnp.zeros(2)), None, length=20000)
        return r

    hs = np.array(list(SSN_TABLE))
    rates = np.asarray(jax.jit(jax.vmap(relax))(jnp.asarray(hs)))  # 2 s of relaxation
    for h, r in zip(hs, rates):
        # The one-step-delayed exponential Euler map has exactly the ODE's fixed points
        # (v = v_rest + h + W r there), so after 2 s (>= 40 of the slowest relaxation
        # times, ~ 50 ms) the rates equal the root-finding solution to ~1e-11. We ask
        # 1e-8 relative, and agreement with the table to half its last printed digit
        # (5e-5 Hz; a 1e-4 relative tolerance would be finer than the table at 0.0950).
        np.testing.assert_allclose(r, _ssn_fixed_point(h), rtol=1e-8)
        np.testing.assert_allclose(r, SSN_TABLE[float(h)], rtol=0, atol=5.01e-5)


def _wilson_cowan_pair(system, r0, dt, steps):
    """E and I as two `WilsonCowan` populations coupled by the system's weights, with
    one-step-delayed rates as a projection delivers them. Returns (steps, 2) rates."""
    e, i = system.populations()

    def body(carry, _):
        se, si = carry
        h = system.inputs(jnp.concatenate([se.r, si.r]))
        se, re = e.step(se, _drive(h[:1]), dt)
        si, ri = i.step(si, _drive(h[1:]), dt)
        return (se, si), jnp.concatenate([re, ri])

    start = (WilsonCowanState(r=r0[:1]), WilsonCowanState(r=r0[1:]))
    return jax.lax.scan(body, start, None, length=steps)[1]


OSCILLATORY = dict(w_ee=6.4, w_ei=4.8, w_ie=6.0, w_ii=1.2, i_e=0.8)  # REFERENCES §7


def test_wilson_cowan_default_parameters_converge_to_stable_fixed_points():
    system = WilsonCowanSystem()
    starts = jnp.array([[0.05, 0.05], [0.2, 0.1], [0.5, 0.3], [1.0, 0.9], [0.6, 0.1]])
    expected = np.array([[0, 0], [0, 0], [0.938430, 0.672481], [0.938430, 0.672481],
                         [0.938430, 0.672481]])
    run = jax.jit(jax.vmap(lambda r0: _wilson_cowan_pair(system, r0, 0.01, 5000)[-1]))
    # Fixed points of the discrete map are the ODE's; after 50 ms (>= 30 relaxation
    # times, slowest |Re eig| = 0.62/ms) only the 6-digit rounding of the reference
    # (5e-7) remains, well inside REFERENCES' 1e-4 for time integration.
    np.testing.assert_allclose(run(starts), expected, rtol=0, atol=1e-4)


def test_wilson_cowan_system_jacobian_matches_published_eigenvalues():
    # REFERENCES §7 quotes eigenvalues [1/ms] to 3 decimals: tolerance 1e-3.
    cases = [
        (WilsonCowanSystem(), [0.0, 0.0], [-0.623 - 0.131j, -0.623 + 0.131j]),
        (WilsonCowanSystem(), [0.336852, 0.168420], [-0.873, 1.057]),
        (WilsonCowanSystem(), [0.938430, 0.672481], [-1.422, -0.960]),
        (WilsonCowanSystem(tau_i=2.0, **OSCILLATORY), [0.57042, 0.27061],
         [0.107 - 0.562j, 0.107 + 0.562j]),
        (WilsonCowanSystem(tau_i=0.5, **OSCILLATORY), [0.57042, 0.27061],
         [-0.828 - 0.789j, -0.828 + 0.789j]),
    ]
    field_and_jacobian = jax.jit(
        lambda system, r: (system.vector_field(r), jax.jacfwd(system.vector_field)(r))
    )
    for system, r, eig in cases:
        # The quoted fixed points have 5-6 digits, so the field vanishes to ~1e-5.
        field, jac = field_and_jacobian(system, jnp.asarray(r))
        assert np.max(np.abs(field)) < 2e-5
        found = np.linalg.eigvals(np.asarray(jac))
        found = found[np.lexsort((found.imag, found.real))]
        np.testing.assert_allclose(found, eig, atol=1e-3)


def test_wilson_cowan_populations_step_along_the_system_vector_field():
    system = WilsonCowanSystem(k_ref=0.7, i_e=0.5)
    r0 = jnp.array([0.3, 0.2])
    dt = 1e-6
    r1 = _wilson_cowan_pair(system, r0, dt, 1)[0]
    # One step is exact for held input, so (r1 - r0)/dt = f(r0) + O(dt).
    np.testing.assert_allclose((r1 - r0) / dt, system.vector_field(r0), rtol=1e-5)


def test_wilson_cowan_oscillatory_set_limit_cycle_and_stable_focus():
    dt = 0.002
    cycle = _wilson_cowan_pair(WilsonCowanSystem(tau_i=2.0, **OSCILLATORY),
                               jnp.array([0.3, 0.2]), dt, 150_000)
    r_e = np.asarray(cycle[75_000:, 0])  # discard 150 ms of transient, keep 150 ms
    mid = 0.5 * (r_e.max() + r_e.min())
    up = np.nonzero((r_e[:-1] < mid) & (r_e[1:] >= mid))[0]
    crossings = up + (mid - r_e[up]) / (r_e[up + 1] - r_e[up])
    period = np.mean(np.diff(crossings)) * dt
    # The held coupling makes the scheme first order: the period is 21.529 ms at
    # dt = 0.001 and 21.538 at 0.002, converging to the reference 21.52 ms (+0.1 %),
    # inside the requested 1 %; likewise the range within 1e-3 of [0.087, 0.768].
    assert len(up) >= 6
    np.testing.assert_allclose(period, 21.52, rtol=0.01)
    np.testing.assert_allclose([r_e.min(), r_e.max()], [0.087, 0.768], atol=0.005)

    focus = _wilson_cowan_pair(WilsonCowanSystem(tau_i=0.5, **OSCILLATORY),
                               jnp.array([0.3, 0.2]), 0.01, 10_000)
    np.testing.assert_allclose(focus[-1], [0.57042, 0.27061], atol=1e-4)


# ------------------------------------------------------------------------------------
# Binary units and Hopfield networks
# ------------------------------------------------------------------------------------


def test_binary_synchronous_threshold_update():
    h = jnp.array([0.0, 0.5, 1.0, -1.0])
    units = Binary(threshold=0.5)
    state, s = units.step(units.init(4), _drive(h), 1.0)
    np.testing.assert_array_equal(s, [0.0, 1.0, 1.0, 0.0])  # H(0) = 1: fires at threshold
    sym = Binary(threshold=jnp.array([0.0, 0.6, 0.5, -2.0]), symmetric=True)
    np.testing.assert_array_equal(sym.init(4).s, -np.ones(4))
    _, s = sym.step(sym.init(4), _drive(h), 1.0)
    np.testing.assert_array_equal(s, [1.0, -1.0, 1.0, 1.0])
    _, s = units.step(units.init(4), _drive(jnp.array(0.7)), 1.0)  # a shared scalar drive
    np.testing.assert_array_equal(s, np.ones(4))
    assert not Binary.spiking


def _mutual_inhibition(units, state, steps):
    """Two +-1 units inhibiting each other, W = [[0, -1], [-1, 0]]."""
    w = jnp.array([[0.0, -1.0], [-1.0, 0.0]])

    def body(state, _):
        state, s = units.step(state, _drive(w @ state.s), 1.0)
        return state, s

    return jax.lax.scan(body, state, None, length=steps)[1]


def test_binary_synchronous_and_asynchronous_differ_as_expected(getkey):
    # From (+1, +1) both units see -1. Updated together they flip together forever
    # (the period-2 cycle of synchronous dynamics); updated one at a time, the first to
    # flip silences the other's drive and the pair settles into (+1, -1) or (-1, +1).
    sync = Binary(symmetric=True)
    traj = _mutual_inhibition(sync, BinaryState(s=jnp.ones(2), key=None), 6)
    np.testing.assert_array_equal(traj, [[-1, -1], [1, 1]] * 3)

    asyn = Binary(symmetric=True, asynchronous=True)
    run = jax.jit(lambda key: _mutual_inhibition(asyn, BinaryState(jnp.ones(2), key), 30))
    for _ in range(5):
        traj = np.asarray(run(getkey()))
        assert np.all(np.abs(np.diff(np.vstack([np.ones(2), traj]), axis=0)).sum(1) <= 2)
        np.testing.assert_array_equal(traj[-1].sum(), 0.0)  # one up, one down
        np.testing.assert_array_equal(traj[-1], traj[-10])  # and it stays there


def test_binary_asynchronous_updates_exactly_n_update_units(getkey):
    # Input -s makes every unit's target the opposite of its state, so each step flips
    # exactly the units it updates.
    units = Binary(symmetric=True, asynchronous=True, n_update=2)
    state = units.init(5, key=getkey())
    step = jax.jit(lambda state: units.step(state, _drive(-state.s), 1.0))
    for _ in range(10):
        new, s = step(state)
        assert int(jnp.sum(s != state.s)) == 2
        state = new
    one = Binary(asynchronous=True)
    state = one.init(5, key=getkey())
    s_prev = state.s
    step = jax.jit(lambda state: one.step(state, _drive(jnp.ones(5)), 1.0))
    for _ in range(40):
        state, s = step(state)
        assert int(jnp.sum(s != s_prev)) <= 1
        s_prev = s
    # All 5 units are drawn within 40 uniform draws with probability > 0.99 (the seed
    # is fixed, so this is deterministic).
    np.testing.assert_array_equal(s, np.ones(5))


def test_binary_asynchronous_requires_a_key_and_valid_n_update():
    with pytest.raises(ValueError, match="key"):
        Binary(asynchronous=True).init(3)
    with pytest.raises(ValueError, match="n_update"):
        Binary(asynchronous=True, n_update=0)
    with pytest.raises(ValueError, match="n_update"):
        Binary(asynchronous=True, n_update=4).check(3, 1.0)
    with pytest.raises(ValueError, match="threshold"):
        Binary(threshold=jnp.zeros(2)).check(3, 1.0)


def test_hopfield_weights_are_hebbian_with_zero_diagonal():
    xi = jnp.array([[1.0, -1.0, 1.0, 1.0], [1.0, 1.0, -1.0, 1.0]])
    w = np.asarray(hopfield_weights(xi))
    expected = (np.outer(xi[0], xi[0]) + np.outer(xi[1], xi[1])) / 4.0
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_array_equal(w, expected)


N_HOPFIELD = 200


def _hopfield_overlaps(weights, cued, sign, keys, asynchronous, steps):
    """Final overlaps with each of the `cued` patterns, started from `pattern * sign`."""

    def one(pattern, key):
        return hopfield_retrieve(weights, pattern * sign, steps, key, asynchronous,
                                 target=pattern)[1]

    return jax.vmap(one)(cued, keys)


def test_hopfield_retrieves_below_and_fails_above_capacity():
    # Capacity is alpha_c ~ 0.138 N (Amit, Gutfreund & Sompolinsky 1985). At 0.05 N
    # the retrieval state has an error fraction < 1e-3, so from overlap 0.6 (20 % of
    # bits flipped) almost every pattern is cleaned to m > 0.95 (we ask 90 % of the
    # cues; all reach m = 1 at this seed). At 0.25 N no retrieval state exists and the
    # dynamics drift from the cue to spurious states: the median overlap falls below
    # 0.5, under even the corrupted cue's 0.6 (0.27 at this seed, 0.27-0.49 over seeds
    # 0-5 with N = 200 and 10 cues).
    n = N_HOPFIELD
    k_pat, k_flip, k_run = jr.split(jr.key(0), 3)
    xi = jr.rademacher(k_pat, (n // 4, n)).astype(float)
    sign = jnp.ones(n).at[jr.permutation(k_flip, n)[: n // 5]].set(-1.0)
    keys = jr.split(k_run, 10)
    # Weights and cues have the same shapes at both loads: one compilation per scheme.
    run = jax.jit(_hopfield_overlaps, static_argnums=(4, 5))
    w_low = hopfield_weights(xi[: n // 20])
    low = np.asarray(run(w_low, xi[:10], sign, keys, True, 20 * n))
    assert np.mean(low > 0.95) >= 0.9
    low_sync = np.asarray(run(w_low, xi[:10], sign, keys, False, 20))
    assert np.mean(low_sync > 0.95) >= 0.9
    high = np.asarray(run(hopfield_weights(xi), xi[:10], sign, keys, True, 20 * n))
    assert np.median(high) < 0.5


# ------------------------------------------------------------------------------------
# Transformations and gradients
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, key",
    [
        (Rate(tau=jnp.array([5.0, 8.0, 12.0]), v_rest=-70.0, transfer=PowerLaw()), None),
        (FiringRate(tau=4.0, transfer=Tanh(gain=0.7)), None),
        (WilsonCowan(tau=2.0, k_ref=1.0), None),
        (Binary(threshold=0.1, asynchronous=True), jr.key(3)),
    ],
    ids=["rate", "firing_rate", "wilson_cowan", "binary_async"],
)
def test_jit_equals_eager(model, key):
    inputs = 3.0 * jnp.sin(jnp.outer(jnp.arange(60.0), jnp.array([0.1, 0.3, 0.7])))
    state0 = model.init(3, key=key)
    jitted = jax.jit(lambda s: _run(model, s, inputs, 0.5))(state0)[1]
    state, eager = state0, []
    for i in inputs:
        state, out = model.step(state, _drive(i), 0.5)
        eager.append(out)
    np.testing.assert_allclose(jitted, np.stack(eager), rtol=1e-13, atol=1e-15)


def test_vmap_over_tau_equals_loop():
    h = jnp.array([1.0, 2.5])

    def trace(tau):
        model = Rate(tau=tau, v_rest=-70.0, transfer=PowerLaw(k=0.3, n=2.0))
        return _run_constant(model, model.init(2), h, 0.1, 200)[1]

    taus = jnp.array([2.0, 5.0, 20.0])
    batched = jax.vmap(trace)(taus)
    looped = np.stack([trace(t) for t in taus])
    np.testing.assert_allclose(batched, looped, rtol=1e-13)


def test_gradients_match_finite_differences():
    h = jnp.array([1.0, 2.0, 3.0])

    def rate_loss(tau, k, n):
        model = Rate(tau=tau, v_rest=-70.0, transfer=PowerLaw(k=k, n=n))
        return jnp.mean(_run_constant(model, model.init(3), h, 0.5, 20)[1] ** 2)

    # Smooth path: v - v_rest > 0 after the first step, where k x^n is analytic.
    # Jitted so that check_grads' many evaluations reuse one compilation; first order
    # in both modes (second order costs ~10 compilations, too slow for this suite).
    check_grads(jax.jit(rate_loss), (jnp.array(10.0), jnp.array(0.3), jnp.array(2.0)),
                order=1, modes=["fwd", "rev"])

    def wc_loss(tau, gain, k_ref):
        model = WilsonCowan(tau=tau, k_ref=k_ref,
                            transfer=Sigmoid(gain=gain, threshold=2.8, shifted=True))
        return jnp.sum(_run_constant(model, model.init(3), h, 0.1, 20)[1])

    check_grads(jax.jit(wc_loss), (jnp.array(1.5), jnp.array(1.2), jnp.array(0.5)),
                order=1, modes=["fwd", "rev"])


# ------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: Rate(tau=0.0), "tau"),
        (lambda: Rate(tau=jnp.array([5.0, -1.0])), "tau"),
        (lambda: Rate(v_rest=float("nan")), "v_rest"),
        (lambda: FiringRate(tau=-2.0), "tau"),
        (lambda: WilsonCowan(k_ref=-0.1), "k_ref"),
        (lambda: PowerLaw(n=-1.0), "n"),
        (lambda: PowerLaw(k=0.0), "k"),
        (lambda: ReLU(gain=-1.0), "gain"),
        (lambda: ReLU(max_rate=0.0), "max_rate"),
        (lambda: Sigmoid(gain=0.0), "gain"),
        (lambda: Tanh(max_rate=-1.0), "max_rate"),
        (lambda: WilsonCowanSystem(tau_e=0.0), "tau_e"),
        (lambda: WilsonCowanSystem(w_ei=-4.0), "w_ei"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(build, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        build()


def test_check_rejects_bad_shapes_and_large_dt():
    model = Rate(tau=jnp.array([20.0, 10.0]), transfer=PowerLaw(k=jnp.array([0.3, 0.2])))
    model.check(2, 10.0)
    with pytest.raises(ValueError, match="tau"):
        model.check(2, 10.5)  # dt above the smallest tau
    with pytest.raises(ValueError, match="tau"):
        model.check(3, 0.1)
    with pytest.raises(ValueError, match="transfer.k"):
        Rate(transfer=PowerLaw(k=jnp.array([0.3, 0.2]))).check(3, 0.1)
    with pytest.raises(ValueError, match="k_ref"):
        WilsonCowan(k_ref=jnp.ones(2)).check(3, 0.1)
    with pytest.raises(ValueError, match="tau"):
        FiringRate(tau=1.0).check(4, 2.0)
    assert isinstance(FiringRate().init(2), FiringRateState)
    assert eqx.tree_equal(WilsonCowan().init(2), WilsonCowanState(r=jnp.zeros(2)))
