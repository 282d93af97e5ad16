"""`nj.theory` fixed points, Jacobians and classification on built rate networks:
analytic linear and threshold-linear networks, Wilson–Cowan (REFERENCES.md §7), the
implicit-function-theorem gradient, jit and vmap over models, and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.connectivity.builders import FromMatrix
from neurojax.inputs.deterministic import Constant
from neurojax.network import Network, Population, Projection

from ._nets import BETA, TSODYKS_J, TSODYKS_TAU, set_input, tsodyks, wilson_cowan


def test_vector_field_is_the_models_own_time_derivative():
    # The field on the flat state is the network field of nj.ode (every population's
    # own time_derivative): at any state it equals -r + G(J r + S) over tau, written out.
    model = tsodyks()
    u = jnp.array([0.3, 0.2])
    h = TSODYKS_J @ np.asarray(u) + np.array([5.0, 0.0])
    expected = (-np.asarray(u) + np.minimum(BETA * np.maximum(h, 0.0), 1.0)) / np.array(TSODYKS_TAU)
    np.testing.assert_allclose(nj.theory.vector_field(model)(u), expected, rtol=1e-14)
    np.testing.assert_allclose(nj.theory.rates(model, u), u)  # FiringRate: state = rate


def test_vector_field_is_the_small_dt_limit_of_the_simulated_step():
    # The network nj.simulate steps (exponential Euler, rates delivered one step later)
    # moves the state by dt * field + O(dt²) per step: the theory's field is the limit
    # of the simulated model's own step. After a few steps the delay buffer holds
    # W r(u) of the current state, so one more step gives the difference quotient.
    model = tsodyks()
    errors = []
    for dt in (1e-3, 5e-4):
        state = nj.simulate(model, 3 * dt, dt, key=jax.random.key(0)).state
        u0 = nj.theory.state_vector(model, state.neurons)
        new, _ = model.step(state, 3 * dt, dt)
        quotient = (nj.theory.state_vector(model, new.neurons) - u0) / dt
        errors.append(float(jnp.max(jnp.abs(quotient - nj.theory.vector_field(model)(u0)))))
    # First order: the error halves with dt (and is ~dt/tau of the field, 0.05/ms).
    assert errors[0] < 1e-4
    np.testing.assert_allclose(errors[0] / errors[1], 2.0, rtol=0.05)


def test_linear_network_fixed_point_and_jacobian_are_analytic():
    # Five threshold-linear units driven well above threshold, so every unit stays in
    # the linear regime: tau dr/dt = -r + W r + h, fixed point (1 - W)^-1 h, Jacobian
    # (W - 1) / tau (rows scaled by 1/tau).
    rng = np.random.default_rng(0)
    w = 0.4 * rng.standard_normal((5, 5)) / np.sqrt(5)
    h = 1.0 + rng.random(5)
    tau = np.array([5.0, 10.0, 15.0, 20.0, 25.0])  # [ms]
    units = nj.neurons.FiringRate(tau=jnp.asarray(tau), transfer=nj.neurons.ReLU())
    model = Network([Population("A", 5, units)], [Projection("A", "A", FromMatrix(w))],
                    inputs=[Constant("A", amplitude=jnp.asarray(h))]).build(jax.random.key(0))
    r_star = np.linalg.solve(np.eye(5) - w, h)
    assert np.all(r_star > 0.1)  # the premise: all units in the linear regime

    fps = nj.theory.fixed_points(model, key=jax.random.key(1), n_starts=8, spread=2.0)
    assert bool(fps.converged.all())
    found = fps.unique()
    assert found.states.shape == (1, 5)  # eight starts, one fixed point
    # Newton on a linear system converges to rounding (condition number ~ 3 here).
    np.testing.assert_allclose(found.states[0], r_star, rtol=1e-12)
    jac_exact = (w - np.eye(5)) / tau[:, None]
    np.testing.assert_allclose(nj.theory.jacobian(model, found.states[0]), jac_exact,
                               atol=1e-15)
    ev = np.linalg.eigvals(jac_exact)
    np.testing.assert_allclose(np.sort_complex(np.asarray(found.eigenvalues[0])),
                               np.sort_complex(ev), atol=1e-12)
    assert found.names() == [nj.theory.KINDS[nj.theory.classify(ev)]]


def test_tsodyks_fixed_points_jacobian_and_batch_over_models():
    # REFERENCES.md §7: E*, I* for S_i = 0, 0.5, 1 (1e-6), eigenvalues -0.095 ± 0.122i.
    base = tsodyks()
    models = eqx.filter_vmap(lambda s: set_input(base, 1, s))(jnp.array([0.0, 0.5, 1.0]))
    guesses = jnp.array([[0.1, 0.1], [0.5, 0.5], [0.9, 0.2]])
    batched = eqx.filter_vmap(lambda m: nj.theory.fixed_points(m, guesses))(models)
    assert bool(batched.converged.all())
    # All three starts find the same (unique, linear-regime) point.
    assert batched.distinct.sum(axis=1).tolist() == [1, 1, 1]
    table = np.array([[0.708333, 0.625000], [0.604167, 0.562500], [0.500000, 0.500000]])
    np.testing.assert_allclose(batched.states[:, 0], table, atol=1e-6)
    # The batch equals one call per model (transform invariance).
    for k, s in enumerate((0.0, 0.5, 1.0)):
        single = nj.theory.fixed_points(set_input(base, 1, s), guesses)
        np.testing.assert_allclose(single.states, batched.states[k], rtol=1e-12)

    # Jacobian in the linear regime, written out: [[(-1 + b Jee)/te, -b Jei/te],
    # [b Jie/ti, (-1 - b Jii)/ti]]; exact up to rounding.
    (te, ti), b = TSODYKS_TAU, BETA
    exact = np.array([[(-1 + b * 25) / te, -b * 25 / te], [b * 15 / ti, (-1 - b * 7) / ti]])
    np.testing.assert_allclose(nj.theory.jacobian(base, batched.states[0, 0]), exact,
                               atol=1e-15)
    ev = batched.eigenvalues[0, 0]
    np.testing.assert_allclose(np.sort_complex(np.asarray(ev)),
                               [-0.095 - 0.122j, -0.095 + 0.122j], atol=5e-4)  # 3 decimals
    assert nj.theory.KINDS[int(batched.kind[0, 0])] == "stable focus"


def test_wilson_cowan_three_fixed_points_from_one_multistart_call():
    # REFERENCES.md §7, Neuromatch default_pars: (0, 0) stable (eig -0.623 ± 0.131i),
    # (0.336852, 0.168420) saddle (1.057, -0.873), (0.938430, 0.672481) stable
    # (-0.960, -1.422). A 5 x 5 grid of starts over the unit square, one vmapped call.
    model = wilson_cowan()
    grid = jnp.stack(jnp.meshgrid(jnp.linspace(0.0, 1.0, 5), jnp.linspace(0.0, 1.0, 5)),
                     -1).reshape(-1, 2)
    found = nj.theory.fixed_points(model, grid).unique()
    published = np.array([[0.0, 0.0], [0.336852, 0.168420], [0.938430, 0.672481]])
    # Published to 6 decimals; Newton converges to rounding.
    np.testing.assert_allclose(found.rates, published, atol=5e-7)
    assert found.names() == ["stable focus", "saddle", "stable node"]
    np.testing.assert_allclose(found.eigenvalues[0], [-0.623 - 0.131j, -0.623 + 0.131j],
                               atol=5e-4)
    np.testing.assert_allclose(found.eigenvalues[1], [1.057, -0.873], atol=5e-4)
    np.testing.assert_allclose(found.eigenvalues[2], [-0.960, -1.422], atol=5e-4)

    # The table gives 3 decimals; the issue asks for 1e-4. Against the closed-form
    # Jacobian at the fixed points found (numpy, independent of jax.jacfwd):
    # J = [[(-1 + w_EE F_E') / tau_E, -w_EI F_E' / tau_E],
    #      [w_IE F_I' / tau_I, (-1 - w_II F_I') / tau_I]], F'(x) = a s (1 - s) with
    # s = 1 / (1 + e^{-a (x - theta)}). Both are exact to rounding: 1e-9.
    def sigmoid_slope(x, a, theta):
        sig = 1.0 / (1.0 + np.exp(-a * (x - theta)))
        return a * sig * (1.0 - sig)

    for (r_e, r_i), eig in zip(np.asarray(found.rates), np.asarray(found.eigenvalues)):
        f_e = sigmoid_slope(9.0 * r_e - 4.0 * r_i, 1.2, 2.8)
        f_i = sigmoid_slope(13.0 * r_e - 11.0 * r_i, 1.0, 4.0)
        jac = np.array([[(-1.0 + 9.0 * f_e) / 1.0, -4.0 * f_e / 1.0],
                        [13.0 * f_i / 2.0, (-1.0 - 11.0 * f_i) / 2.0]])
        np.testing.assert_allclose(np.sort_complex(eig), np.sort_complex(np.linalg.eigvals(jac)),
                                   atol=1e-9)

    # (Eigenvalues are listed largest real part first, then by imaginary part.)
    # Relaxation from the same starts reaches only the two attractors.
    relaxed = nj.theory.fixed_points(model, grid, method="relax").unique()
    np.testing.assert_allclose(relaxed.rates, published[[0, 2]], atol=5e-7)

    # Oscillatory set (§7): the fixed point (0.57042, 0.27061) is an unstable focus
    # (0.107 ± 0.562i) for tau_I = 2 ms and a stable focus (-0.828 ± 0.789i) for 0.5 ms.
    for tau_i, kind, eig in ((2.0, "unstable focus", 0.107 + 0.562j),
                             (0.5, "stable focus", -0.828 + 0.789j)):
        system = nj.neurons.WilsonCowanSystem(w_ee=6.4, w_ei=4.8, w_ie=6.0, w_ii=1.2,
                                              i_e=0.8, tau_i=tau_i)
        osc = nj.theory.fixed_points(wilson_cowan(system), jnp.array([[0.5, 0.3]]))
        np.testing.assert_allclose(osc.rates[0], [0.57042, 0.27061], atol=5e-6)
        assert osc.names() == [kind]
        np.testing.assert_allclose(osc.eigenvalues[0], [eig.conjugate(), eig], atol=5e-4)


def test_fixed_point_gradient_by_implicit_function_theorem():
    # In the linear regime of the Tsodyks network dI*/dS_i = b (1 - b Jee) / det =
    # -0.125 and dE*/dS_i = -0.2083 (REFERENCES.md §7): the IFT gradient is exact.
    base = tsodyks()

    # Jitted so each transform compiles once instead of running op by op.
    @jax.jit
    def steady(s_i):
        return nj.theory.fixed_point(set_input(base, 1, s_i))

    jac = jax.jit(jax.jacfwd(steady))(0.5)
    b, det = BETA, (1 - BETA * 25) * (1 + BETA * 7) + BETA**2 * 25 * 15
    np.testing.assert_allclose(jac[1], b * (1 - b * 25) / det, rtol=1e-9)
    np.testing.assert_allclose(jac[1], -0.125, rtol=1e-9)
    np.testing.assert_allclose(jac[0], -0.2083, atol=5e-5)  # published to 4 decimals
    grad_rev = jax.jit(jax.grad(lambda s: steady(s)[1]))(0.5)
    np.testing.assert_allclose(grad_rev, -0.125, rtol=1e-9)

    # A nonlinear case, Wilson–Cowan's upper state, against central differences
    # (eps = 1e-5: truncation ~ eps² |r'''| ~ 1e-10, Newton converges to rounding).
    wc = wilson_cowan()
    up = jnp.array([0.9, 0.7])

    # The multistart solver's Newton (optimistix, implicit adjoint) is used here; it
    # is the same kind of solve as fixed_point's.
    @jax.jit
    def upper(i_e):
        return nj.theory.fixed_points(set_input(wc, 0, i_e), up[None]).states[0, 0]

    eps = 1e-5
    fd = (upper(0.1 + eps) - upper(0.1 - eps)) / (2 * eps)
    np.testing.assert_allclose(jax.jit(jax.grad(upper))(0.1), fd, rtol=1e-6)


def test_fixed_points_under_jit_match_eager():
    base = tsodyks()
    starts = jnp.array([[0.2, 0.2], [0.8, 0.8]])

    @jax.jit
    def solve(s_i):
        return nj.theory.fixed_points(set_input(base, 1, s_i), starts).states

    np.testing.assert_allclose(solve(0.5), nj.theory.fixed_points(set_input(base, 1, 0.5),
                                                                  starts).states, rtol=1e-14)


def test_bad_input_names_the_argument():
    lif = Network([Population("E", 10, nj.neurons.LIF())]).build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"model: population 'E' \(LIF\) emits spikes.*mean-field"):
        nj.theory.fixed_points(lif, jnp.zeros((1, 10)))
    # Discrete-time units have no vector field to differentiate.
    binary = Network([Population("B", 4, nj.neurons.Binary())]).build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"model: population 'B' \(Binary\) defines no continuous-time"):
        nj.theory.jacobian(binary, jnp.zeros(4))
    model = tsodyks()
    with pytest.raises(ValueError, match="method must be 'newton' or 'relax'"):
        nj.theory.fixed_points(model, jnp.zeros((1, 2)), method="bisect")
    with pytest.raises(ValueError, match=r"initial_guesses must have shape \(starts, 2\)"):
        nj.theory.fixed_points(model, jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match="needs initial_guesses or a key"):
        nj.theory.fixed_points(model)
    with pytest.raises(ValueError, match=r"spread \[state units\]"):
        nj.theory.fixed_points(model, key=jax.random.key(0), spread=-1.0)
    with pytest.raises(ValueError, match=r"u must be a flat state vector of shape \(2,\)"):
        nj.theory.jacobian(model, jnp.zeros(3))
    with pytest.raises(ValueError, match=r"initial_guesses \[state units\] contains NaN"):
        nj.theory.fixed_points(model, jnp.full((1, 2), jnp.nan))


def test_public_names():
    # STYLE.md 8.6: the public names are a contract.
    import types

    public = {k for k, v in vars(nj.theory).items()
              if not k.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == {
        "KINDS", "Branch", "FixedPoints", "SlowPoints", "ISN", "by_population", "check_rate_network",
        "classify", "continuation", "dmft_variance", "eigenvalues", "fixed_point", "fixed_points", "is_isn",
        "jacobian", "low_rank_mean_field", "lyapunov_exponent", "paradoxical_response", "population_slices",
        "rates", "slow_points", "state_vector", "vector_field", "with_extra_drive",
        "LIFMeanField", "lif_mean_field", "log_siegert", "siegert", "lyapunov_spectrum",
        "lif_transfer_function", "lif_variance_transfer_function",
    }
    assert "AbbottChance" in vars(nj.neurons)
