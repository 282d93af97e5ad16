"""Tests for `neurojax.neurons.compartmental` and `neurojax.neurons.morphology`."""

import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from neurojax._abstract import Drive
from neurojax.neurons.compartmental import (
    Compartmental,
    CompartmentalState,
    HHNaK,
    HHNaKState,
    Leak,
    hines_solve,
)
from neurojax.neurons.hh import RK4, HodgkinHuxley
from neurojax.neurons.morphology import (
    SOMA,
    Morphology,
    ball_and_stick,
    cable,
    y_dendrite,
)

DATA = pathlib.Path(__file__).parent / "data"

# Passive membrane used throughout: R_m = 1/g = 10 kΩ·cm², tau_m = c_m R_m = 10 ms.
G_LEAK = 0.1  # [mS/cm²]
R_A = 100.0  # [Ω·cm]


def space_constant(d):
    """lambda = sqrt(d R_m / (4 R_a)) [µm] for diameter d [µm]."""
    r_m = 1e3 / G_LEAK  # [Ω·cm²]
    return np.sqrt(d * 1e-4 * r_m / (4 * R_A)) * 1e4


def r_inf(d):
    """Input resistance of a semi-infinite cable, 4 R_a lambda / (pi d²) [MΩ]."""
    return 4 * R_A * space_constant(d) * 1e-4 / (np.pi * (d * 1e-4) ** 2) * 1e-6


def passive(morph, **kw):
    """A passive cell whose leak reverses at 0 mV, its initial potential."""
    return Compartmental(morph, (Leak(g=G_LEAK, e=0.0),), c_m=1.0, r_a=R_A, v_init=0.0, **kw)


def hh_channels(g_na=120.0, g_k=36.0, where=1.0):
    """The HH 1952 membrane (REFERENCES.md §1) on the compartments where `where` is 1."""
    return (HHNaK(g_na=g_na * where, g_k=g_k * where), Leak(g=0.3, e=-54.387))


def run(model, i_ext, dt, state=None, g_ext=None, q_ext=None):
    """Step `model` under current `i_ext` [pA], shape (steps, n), into its input
    compartment (optionally also conductance `g_ext` [nS] to 0 mV and delta charge
    `q_ext` [pA·ms]). Returns the final state, v (steps, n, n_comp) and spikes."""
    state = model.init(i_ext.shape[1]) if state is None else state
    z = jnp.zeros_like(i_ext)
    xs = (i_ext, z if g_ext is None else g_ext, z if q_ext is None else q_ext)

    def body(s, x):
        i, g, q = x
        s, spikes = model.step(s, Drive(i, g, q, jnp.zeros_like(i)), dt)
        return s, (s.v, spikes)

    return jax.lax.scan(body, state, xs)


# dt is traced, so runs that differ only in dt or parameter values share one compile.
run_jit = jax.jit(run)


def constant(i, steps, n=1):
    return jnp.full((steps, n), float(i))


# --------------------------------------------------------------------- cable theory


def long_cable(r_a=R_A):
    """100 compartments over 1.5 lambda (750 µm) of a 1 µm cable: h = dx/lambda = 0.015."""
    return Compartmental(cable(100, 750.0, 1.0), (Leak(g=G_LEAK, e=0.0),), r_a=r_a,
                         v_init=0.0)


# Backward Euler's steady state is the exact steady state of the discretised cable
# whatever dt; 400 steps of 0.5 ms shrink the slowest mode (tau <= 10 ms) by
# (1 + 0.05)^-400 < 1e-8.
SS_DT = 0.5
SS_DRIVE = constant(10.0, 400)  # [pA]


def test_passive_cable_steady_state_matches_cosh_attenuation_and_input_resistance():
    d = 1.0
    lam = space_constant(d)  # 500 µm
    model = long_cable()
    n_comp, length = model.n_compartments, 750.0
    dx = length / n_comp
    h = dx / lam
    i_inj = 10.0  # [pA]
    state, (v, _) = run_jit(model, SS_DRIVE, SS_DT)
    assert jnp.max(jnp.abs(v[-1] - v[-2])) < 1e-9 * v[-1, 0, 0]
    v = np.asarray(state.v[0])
    x = (np.arange(n_comp) + 0.5) * dx  # compartment centres [µm]

    # The discrete solution is exactly cosh(mu (N - 1/2 - k)) with 2 cosh(mu) - 2 = h²,
    # i.e. mu = h (1 - h²/24 + ...), so the attenuation ratio relative to compartment 0
    # deviates from cosh((L-x)/lambda)/cosh((L-x_0)/lambda) by at most
    # (L/lambda) tanh(L/lambda) h²/24 = 1.27e-5 (relative; that is what we get), below
    # the tolerance (L/lambda) h²/24 = 1.41e-5.
    ratio = v / v[0]
    expected = np.cosh((length - x) / lam) / np.cosh((length - x[0]) / lam)
    tol = (length / lam) * h**2 / 24
    np.testing.assert_allclose(ratio, expected, rtol=tol, atol=0)
    assert ratio[-1] == pytest.approx(1 / np.cosh(length / lam), rel=0.02)  # = 0.42

    # Potential at the first centre vs V(x) = I R_inf cosh((L-x)/lambda) / sinh(L/lambda);
    # the injected current enters through a sealed end, reproduced by the ghost-node
    # symmetry of compartment 0, so the error is O(h²) = 2.3e-4.
    v_analytic = i_inj * r_inf(d) * np.cosh((length - x[0]) / lam) / np.sinh(length / lam)
    assert v[0] == pytest.approx(v_analytic * 1e-3, rel=h**2)  # [pA·MΩ] = 1e-3 [mV]
    # Input resistance at the end x = 0, half a compartment of axial resistance beyond
    # the first centre: R_in = R_inf coth(L/lambda) = 703.33 MΩ (we get 703.35).
    r_half = R_A * (dx / 2) / (np.pi * d**2 / 4) * 1e-2  # [MΩ]
    r_in = v[0] / i_inj * 1e3 + r_half  # [MΩ]
    assert r_in == pytest.approx(r_inf(d) / np.tanh(length / lam), rel=h**2)


def test_y_dendrite_obeying_rall_rule_matches_equivalent_cylinder():
    # Rall (1959): two daughters with d_b^(3/2) summing to d_t^(3/2) and equal
    # electrotonic lengths act like a cylinder of diameter d_t and electrotonic length
    # L_t/lambda_t + L_b/lambda_b. Branch points are junction nodes, so the discretised
    # tree keeps the O(h²) accuracy of the cable (here h² = 1e-4).
    d_t = 2.0
    d_b = d_t * 2 ** (-2 / 3)
    lam_t, lam_b = space_constant(d_t), space_constant(d_b)
    n_seg = 50
    morph = y_dendrite(0.5 * lam_t, d_t, 0.5 * lam_b, d_b, n_seg, n_seg)
    state, _ = run_jit(passive(morph), SS_DRIVE, SS_DT)
    h = 0.5 / n_seg
    l_eq = 1.0
    v_analytic = 10.0 * r_inf(d_t) * np.cosh(l_eq - h / 2) / np.sinh(l_eq) * 1e-3  # [mV]
    assert float(state.v[0, 0]) == pytest.approx(v_analytic, rel=h**2)


def test_y_dendrite_symmetric_branches_have_identical_voltages():
    n_trunk, n_branch = 8, 10
    morph = y_dendrite(n_trunk=n_trunk, n_branch=n_branch)
    model = Compartmental(morph, hh_channels(), input_compartment=0)
    # A 1 nA step from rest fires action potentials that invade both branches.
    _, (v, spikes) = run_jit(model, constant(1000.0, 400), 0.025)
    first = v[..., n_trunk : n_trunk + n_branch]
    second = v[..., n_trunk + n_branch :]
    assert jnp.max(v) > 0.0 and jnp.sum(spikes) >= 1
    assert jnp.max(first[..., -1]) > 0.0  # the spike reached the branch tips
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-9)


def test_y_dendrite_conserves_current():
    morph = y_dendrite(150.0, 2.0, (120.0, 80.0), (1.2, 0.8), n_trunk=6, n_branch=7)
    model = passive(morph, input_compartment=3)
    n, dt = 2, 0.1
    v = jnp.asarray(10.0 * np.random.default_rng(0).normal(size=(n, morph.n_compartments)))
    i_inj = jnp.array([50.0, -20.0])

    @jax.jit
    def one_step(model, v):
        z = jnp.zeros(n)
        new, _ = model.step(CompartmentalState(v=v, channels=(None,)),
                            Drive(i_inj, z, z, z), dt)
        return model.axial_current(v), new.v, model.axial_current(new.v)

    i_ax, v_new, i_ax_new = one_step(model, v)
    # Axial currents only move charge between compartments: they sum to zero.
    np.testing.assert_allclose(jnp.sum(i_ax, axis=1), 0.0, atol=1e-9 * jnp.max(jnp.abs(i_ax)))
    # One backward-Euler step solves C (V' - V)/dt = -g_L V' + I_axial(V') + I_inj
    # exactly (junction nodes included), so summed over the cell the injected current
    # is the capacitive plus the leak current.
    c = model.capacitance()
    g_l = G_LEAK * morph.area()[None, :] * 1e-2  # [nS]
    inj = jnp.zeros_like(v).at[:, 3].set(i_inj)
    i_cap = c * (v_new - v) / dt
    residual = i_cap + g_l * v_new - i_ax_new - inj
    np.testing.assert_allclose(residual, 0.0, atol=1e-10 * jnp.max(jnp.abs(i_cap)))
    np.testing.assert_allclose(jnp.sum(i_cap + g_l * v_new, axis=1), i_inj, rtol=1e-10)


def test_hines_solve_matches_dense_solve_on_a_branched_tree():
    parent = (-1, 0, 1, 1, 0, 4, 2, 2, 5)
    n_node = len(parent)
    rng = np.random.default_rng(1)
    off = jnp.asarray(-rng.uniform(0.5, 2.0, (2, n_node)))
    diag = jnp.asarray(5.0 + rng.uniform(size=(2, n_node)))
    rhs = jnp.asarray(rng.normal(size=(2, n_node)))
    x = jax.jit(hines_solve, static_argnums=0)(parent, diag, off, rhs)
    for cell in range(2):
        a = np.diag(np.asarray(diag[cell]))
        for k in range(1, n_node):
            a[k, parent[k]] = a[parent[k], k] = off[cell, k]
        np.testing.assert_allclose(x[cell], np.linalg.solve(a, rhs[cell]), rtol=1e-12)


@jax.jit
def explicit_euler(model, i_ext, dt):
    """Forward Euler of the passive cable, written out independently of the solver
    (the axial currents are checked against the implicit step above)."""
    c = model.capacitance()
    g_l = G_LEAK * model.morphology.area()[None, :] * 1e-2  # [nS]

    def body(v, i):
        inj = jnp.zeros_like(v).at[:, 0].set(i)
        v = v + dt * (-g_l * v + model.axial_current(v) + inj) / c  # [pA/pF] = [mV/ms]
        return v, v

    return jax.lax.scan(body, jnp.zeros((1, model.n_compartments)), i_ext)[1]


def test_implicit_solver_is_stable_where_explicit_euler_blows_up():
    # 2 µm compartments: C = 0.063 pF and g_axial = 393 nS, so explicit Euler needs
    # dt < C / (2 g_axial) = 8e-5 ms; at dt = 0.025 ms its fastest mode grows ~600x a step.
    d, length = 1.0, 400.0
    model = passive(cable(200, length, d))
    i_inj = constant(10.0, 200)
    _, (v_implicit, _) = run_jit(model, i_inj, 0.025)
    v_explicit = explicit_euler(model, i_inj, 0.025)
    assert not bool(jnp.all(jnp.isfinite(v_explicit)) and jnp.max(jnp.abs(v_explicit)) < 1e6)
    # Backward Euler keeps the maximum principle: charging from rest under a
    # depolarising step, every compartment rises monotonically and stays below the
    # steady state at the injection site, I R_inf coth(L/lambda) (+ O(h²)).
    assert bool(jnp.all(jnp.isfinite(v_implicit)))
    assert float(jnp.min(jnp.diff(v_implicit[:, 0], axis=0))) >= 0.0
    v_ss = 10.0 * r_inf(d) / np.tanh(length / space_constant(d)) * 1e-3  # [mV]
    assert 0.0 < float(jnp.max(v_implicit)) < v_ss
    # Where explicit Euler is stable (dt = 5e-5 ms) the two first-order schemes agree
    # to O(dt / tau_axial) ~ 1 %, after the sharpest transients have decayed.
    _, (v_imp, _) = run_jit(model, i_inj, 5e-5)
    v_exp = explicit_euler(model, i_inj, 5e-5)
    np.testing.assert_allclose(v_exp[-1, 0, :5], v_imp[-1, 0, :5], rtol=0.02)
    assert float(jnp.max(jnp.abs(v_exp))) < 1.0


# ------------------------------------------------------------------------ active cells


def spike_times(spikes, dt):
    return np.nonzero(np.asarray(spikes)[:, 0])[0] * dt


def single_compartment_hh(v_init=-65.0):
    """100 µm² of HH membrane: 1 µF/cm² -> 1 pF and 1 µA/cm² -> 1 pA."""
    return Compartmental(cable(1, 100.0 / np.pi, 1.0), hh_channels(), v_init=v_init)


# 1000 ms at dt = 0.01 ms of 0, 5, 6.5 and 10 µA/cm².
HH_DT = 0.01
HH_DRIVE = jnp.repeat(jnp.array([[0.0, 5.0, 6.5, 10.0]]), 100_000, axis=0)


def test_single_compartment_hh_matches_reference_rest_and_rates():
    model = single_compartment_hh()
    assert float(model.capacitance()[0, 0]) == pytest.approx(1.0, rel=1e-12)
    state, (v, spikes) = run_jit(model, HH_DRIVE, HH_DT)
    # REFERENCES.md §1: rest -64.996 mV (±0.05), reached from -65 mV.
    assert float(state.v[0, 0]) == pytest.approx(-64.996, abs=0.05)
    assert float(jnp.sum(spikes[:, 0])) == 0.0
    # Peak of the first spike from rest at 5 µA/cm²: +39.05 mV (±1).
    assert float(jnp.max(v[:2000, 1, 0])) == pytest.approx(39.05, abs=1.0)
    # f-I at 6.5 / 10 µA/cm²: 55.06 / 68.32 Hz (1/mean ISI after 200 ms), ±1 % at
    # dt <= 0.01 ms for a first-order scheme (we get 54.95 / 68.20 Hz).
    for cell, rate_ref in ((2, 55.06), (3, 68.32)):
        t = spike_times(spikes[:, cell : cell + 1], HH_DT)
        rate = 1000.0 / np.mean(np.diff(t[t > 200.0]))
        assert rate == pytest.approx(rate_ref, rel=0.01)


def test_single_compartment_matches_hodgkin_huxley_spike_times():
    # The point-neuron model over the same 100 µm², integrated with RK4 (converged to
    # 0.01 % at dt = 0.05 ms, so a reference here), from the same resting state.
    hh = HodgkinHuxley.from_densities(area=100.0, integrator=RK4())

    @jax.jit
    def run_hh(drive):
        def body(s, i):
            z = jnp.zeros_like(i)
            return hh.step(s, Drive(i, z, z, z), HH_DT)

        rest = hh.init(drive.shape[1])
        return rest.v[0], jax.lax.scan(body, rest, drive)[1]

    v_rest, spikes_hh = run_hh(HH_DRIVE)
    assert float(v_rest) == pytest.approx(-64.996, abs=1e-3)
    _, (_, spikes) = run_jit(single_compartment_hh(v_init=v_rest), HH_DRIVE, HH_DT)
    for cell in (1, 2, 3):
        t = spike_times(spikes[:, cell : cell + 1], HH_DT)
        t_hh = spike_times(spikes_hh[:, cell : cell + 1], HH_DT)
        assert t.size == t_hh.size >= 1
        # Our first-order scheme's rate is within 0.2 % of the converged one, so spike
        # times drift by at most 0.3 % of the elapsed time (plus a step or two of
        # grid jitter): 0.05 ms at the first spike, 3 ms after a second.
        np.testing.assert_array_less(np.abs(t - t_hh), 0.003 * t_hh + 2 * HH_DT)


def ball_and_stick_hh(g_na=120.0, **kw):
    """HH soma (20 µm sphere) with a passive 400 µm x 2 µm dendrite in 20 compartments."""
    morph = ball_and_stick(soma_diameter=20.0, dendrite_length=400.0,
                           dendrite_diameter=2.0, n_segments=20)
    return Compartmental(morph, hh_channels(g_na=g_na, where=morph.mask(SOMA)), **kw)


# 100 ms at dt = 0.025 ms; cell 0 gets no input, cell 1 a 400 pA step.
BAS_DT = 0.025
BAS_DRIVE = jnp.concatenate([constant(0.0, 4000), constant(400.0, 4000)], axis=1)


@pytest.fixture(scope="module")
def ball_and_stick_run():
    model = ball_and_stick_hh()
    return model, run_jit(model, BAS_DRIVE, BAS_DT)


def test_ball_and_stick_with_hh_soma_fires_repetitively(ball_and_stick_run):
    model, (state, (v, spikes)) = ball_and_stick_run
    quiet, stepped = spike_times(spikes[:, :1], BAS_DT), spike_times(spikes[:, 1:], BAS_DT)
    assert quiet.size == 0
    assert stepped.size >= 5
    isi = np.diff(stepped)
    assert np.std(isi[1:]) < 0.05 * np.mean(isi[1:])  # tonic, regular firing
    # The spike decays passively along the dendrite.
    peaks = jnp.max(v[:, 1], axis=0)
    assert peaks[0] > 20.0 and bool(jnp.all(jnp.diff(peaks) < 0))
    assert jax.tree.structure(state) == jax.tree.structure(model.init(2))
    gates = state.channels[0]
    assert isinstance(gates, HHNaKState) and gates.m.shape == (2, 21)
    for x in (gates.m, gates.h, gates.n):
        assert bool(jnp.all((x >= 0) & (x <= 1)))


def test_spikes_are_upward_crossings_at_the_recording_compartment(ball_and_stick_run):
    _, (_, (v, s_soma)) = ball_and_stick_run
    at_dend = ball_and_stick_hh(recording_compartment=2, v_th=-30.0)
    _, (_, s_dend) = run_jit(at_dend, BAS_DRIVE, BAS_DT)
    # The spike reaches about -5 mV in compartment 2 and repolarises below -60 mV.
    for s, k, th in ((s_soma, 0, 0.0), (s_dend, 2, -30.0)):
        vk = np.asarray(v[:, 1, k])
        crossings = np.sum((vk[1:] >= th) & (vk[:-1] < th)) + (vk[0] >= th)
        assert np.sum(np.asarray(s[:, 1])) == crossings >= 2
        assert set(np.unique(np.asarray(s))) <= {0.0, 1.0}


# ------------------------------------------------------------------------- invariants


def test_init_is_a_fixed_point_and_step_keeps_structure_and_dtype():
    model = long_cable()
    state = model.init(1)
    new, (v, spikes) = run_jit(model, jnp.zeros_like(SS_DRIVE), SS_DT)
    np.testing.assert_array_equal(v, 0.0)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    assert new.v.dtype == state.v.dtype == spikes.dtype and spikes.shape == (400, 1)


def test_drive_conductance_and_charge_enter_the_input_compartment():
    morph = cable(1, 100.0 / np.pi, 1.0)  # 1 pF, g_L = 0.1 nS
    model = Compartmental(morph, (Leak(g=G_LEAK, e=-70.0),), v_init=-70.0)
    steps = 200
    q = jnp.zeros((steps, 1)).at[0].set(5.0)
    g = jnp.full((steps, 1), 0.3).at[0].set(0.0)
    _, (v, _) = run_jit(model, jnp.zeros((steps, 1)), 1.0, None, g, q)
    # Charge: a delta synapse of 5 pA·ms on a 1 pF membrane jumps v by 5 mV.
    assert float(v[0, 0, 0]) == pytest.approx(-65.0, abs=1e-12)
    # Conductance: g_syn = 0.3 nS to 0 mV settles at (0.1 (-70) + 0.3 * 0) / 0.4
    # (time constant 1 pF / 0.4 nS = 2.5 ms; 200 ms is converged).
    assert float(v[-1, 0, 0]) == pytest.approx(-17.5, abs=1e-9)


# ------------------------------------------------------------------------------- SWC


def test_swc_fixture_parses_to_expected_tree():
    morph = Morphology.from_swc(DATA / "small_neuron.swc")
    assert morph.parent == (-1, 0, 1, 2, 2, 0, 5)
    np.testing.assert_allclose(morph.length, [10.0, 5.0, 10.0, 10.0, 10.0, 5.0, 5.0])
    np.testing.assert_allclose(morph.diameter, [10.0, 2.0, 2.0, 1.0, 1.0, 1.5, 1.5])
    assert morph.types == (1, 3, 3, 3, 3, 2, 2)
    # The root's cylinder (length = diameter = 2r) has the sphere's surface 4 pi r².
    assert float(morph.area()[0]) == pytest.approx(4 * np.pi * 5.0**2)


def test_swc_round_trip(tmp_path):
    morph = Morphology.from_swc(DATA / "small_neuron.swc")
    morph.to_swc(tmp_path / "out.swc")
    again = Morphology.from_swc(tmp_path / "out.swc")
    assert again.parent == morph.parent and again.types == morph.types
    np.testing.assert_allclose(again.length, morph.length, rtol=1e-14)
    np.testing.assert_allclose(again.diameter, morph.diameter, rtol=1e-14)
    # A builder's morphology survives the trip too (the soma is a sphere).
    bas = ball_and_stick(n_segments=4)
    bas.to_swc(tmp_path / "bas.swc")
    bas2 = Morphology.from_swc(tmp_path / "bas.swc")
    np.testing.assert_allclose(bas2.length, bas.length, rtol=1e-14)
    with pytest.raises(ValueError, match="root compartment's length"):
        cable(3, 30.0, 1.0).to_swc(tmp_path / "cable.swc")


def test_swc_children_before_parents_are_reordered(tmp_path):
    lines = (DATA / "small_neuron.swc").read_text().splitlines()
    (tmp_path / "rev.swc").write_text("\n".join(reversed(lines)) + "\n")
    morph = Morphology.from_swc(tmp_path / "rev.swc")
    ref = Morphology.from_swc(DATA / "small_neuron.swc")
    assert all(p < k for k, p in enumerate(morph.parent) if k)
    np.testing.assert_allclose(np.sort(morph.length), np.sort(ref.length))
    assert float(jnp.sum(morph.area())) == pytest.approx(float(jnp.sum(ref.area())))


GOOD = ["1 1 0 0 0 5 -1", "2 3 5 0 0 1 1", "3 3 10 0 0 1 2"]


@pytest.mark.parametrize(
    "bad_line, lineno, message",
    [
        ("3 3 10 0 0 1 7", 3, "parent 7 of sample 3 does not exist"),
        ("3 3 10 0 0 0 2", 3, r"radius \[µm\] must lie in \(0, inf\)"),
        ("3 3 10 0 0 -1 2", 3, r"radius \[µm\] must lie in \(0, inf\)"),
        ("3 3 10 0 0 1", 3, "needs 7 columns"),
        ("3 3 ten 0 0 1 2", 3, "must be integers"),
        ("2 3 10 0 0 1 1", 3, "duplicate sample id 2"),
        ("3 3 5 0 0 1 2", 3, "coincides with its parent"),
        ("3 3 10 0 0 1 3", 3, "its own parent"),
    ],
)
def test_malformed_swc_raises_naming_the_line(tmp_path, bad_line, lineno, message):
    path = tmp_path / "bad.swc"
    path.write_text("\n".join(GOOD[:2] + [bad_line]) + "\n")
    with pytest.raises(ValueError, match=rf"line {lineno}: .*{message}"):
        Morphology.from_swc(path)


def test_swc_cycle_and_second_root_raise(tmp_path):
    path = tmp_path / "cycle.swc"
    path.write_text("1 1 0 0 0 5 -1\n2 3 5 0 0 1 3\n3 3 9 0 0 1 2\n")
    with pytest.raises(ValueError, match="line 2: sample 2 is not connected.*cycle"):
        Morphology.from_swc(path)
    path.write_text("1 1 0 0 0 5 -1\n2 1 50 0 0 5 -1\n")
    with pytest.raises(ValueError, match=r"exactly one root.*lines 1, 2"):
        Morphology.from_swc(path)


# ------------------------------------------------------------------ transforms, grads


def test_jit_equals_eager():
    # The smallest tree with a junction node; 3 steps of two cells.
    morph = y_dendrite(n_trunk=1, n_branch=1)
    model = Compartmental(morph, hh_channels(), input_compartment=1)
    drive = jnp.array([[800.0, 50.0]] * 3)
    _, (v_jit, s_jit) = run_jit(model, drive, 0.025)
    with jax.disable_jit():
        _, (v_eager, s_eager) = run(model, drive, 0.025)
    np.testing.assert_allclose(v_jit, v_eager, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(s_jit, s_eager)


def test_vmap_over_axial_resistivity_equals_loop():
    def final_v(r_a):
        return run(long_cable(r_a), SS_DRIVE, SS_DT)[0].v

    r_as = jnp.array([50.0, 100.0, 200.0])
    batched = jax.jit(jax.vmap(final_v))(r_as)
    for k, r_a in enumerate(r_as):
        np.testing.assert_allclose(
            batched[k], run_jit(long_cable(r_a), SS_DRIVE, SS_DT)[0].v, rtol=1e-12
        )
    assert not np.allclose(batched[0], batched[2])


def test_vmap_over_sodium_conductance_equals_loop():
    def soma_v_and_spikes(g_na):
        _, (v, s) = run(ball_and_stick_hh(g_na), BAS_DRIVE, BAS_DT)
        return v[:, 1, 0], s[:, 1]

    g_nas = jnp.array([0.0, 80.0, 120.0])
    v_b, s_b = jax.jit(jax.vmap(soma_v_and_spikes))(g_nas)
    for k, g_na in enumerate(g_nas):
        _, (v_k, s_k) = run_jit(ball_and_stick_hh(g_na), BAS_DRIVE, BAS_DT)
        np.testing.assert_allclose(v_b[k], v_k[:, 1, 0], rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(s_b[k], s_k[:, 1])
    assert float(jnp.sum(s_b[0])) == 0.0 and float(jnp.sum(s_b[2])) >= 5


def test_gradients_of_passive_loss_match_finite_differences():
    morph = y_dendrite(100.0, 1.5, 80.0, 1.0, n_trunk=1, n_branch=1)
    t = jnp.arange(20) * 0.1
    drive = (20.0 * jnp.sin(t / 1.5) + 10.0)[:, None]

    @jax.jit
    def loss(r_a, c_m, g_leak):
        model = Compartmental(morph, (Leak(g=g_leak, e=-65.0),), c_m=c_m, r_a=r_a)
        _, (v, _) = run(model, drive, 0.1)
        return jnp.mean((v[:, 0, -1] + 60.0) ** 2) + jnp.mean(v[:, 0, 0])

    # Arguments rescaled to O(1) so one central-difference eps fits all three.
    # First order only: second-order checks through the scan of Hines loops cost
    # ~15 s of compilation, beyond this file's budget.
    check_grads(lambda a, b, c: loss(a * 150.0, b * 0.9, c * 0.12),
                (1.0, 1.0, 1.0), order=1, modes=["fwd", "rev"], eps=1e-4)
    # The loss does depend on all three (so the check above is not vacuous).
    base = float(loss(150.0, 0.9, 0.12))
    for args in ((165.0, 0.9, 0.12), (150.0, 0.99, 0.12), (150.0, 0.9, 0.132)):
        assert abs(float(loss(*args)) - base) > 1e-6 * abs(base)


def test_surrogate_gradient_through_spikes_is_finite_and_positive():
    morph = ball_and_stick(n_segments=3)
    soma = morph.mask(SOMA)
    drive = constant(1.0, 800)  # 20 ms

    def n_spikes(amplitude):
        model = Compartmental(morph, hh_channels(where=soma))
        return jnp.sum(run(model, drive * amplitude, 0.025)[1][1])

    count, grad = jax.jit(jax.value_and_grad(n_spikes))(jnp.array(400.0))
    # More current brings the crossings earlier and pushes v further over threshold,
    # so the surrogate derivative of the spike count is positive.
    assert float(count) >= 1 and bool(jnp.isfinite(grad)) and float(grad) > 0


# --------------------------------------------------------------------------- checks


def test_check_accepts_valid_and_rejects_bad_shapes_and_dt():
    morph = ball_and_stick(n_segments=4)  # 5 compartments
    soma = morph.mask(SOMA)
    model = Compartmental(morph, hh_channels(where=soma), c_m=jnp.ones(5), v_th=jnp.zeros(3))
    model.check(3, 0.025)
    model.check(3, 0.1)
    with pytest.raises(ValueError, match=r"dt \[ms\] = 0.2 is too large for the HHNaK"):
        model.check(3, 0.2)
    with pytest.raises(ValueError, match=r"v_th must be a scalar or have shape \(4,\)"):
        model.check(4, 0.025)
    with pytest.raises(ValueError, match=r"c_m must be a scalar, have shape \(5,\)"):
        Compartmental(morph, c_m=jnp.ones(4)).check(3, 0.025)
    with pytest.raises(ValueError, match=r"HHNaK g_na must be a scalar"):
        Compartmental(morph, (HHNaK(g_na=jnp.ones(3)),)).check(2, 0.025)
    with pytest.raises(ValueError, match=r"tau_m = c_m/g \(Leak\)"):
        Compartmental(morph, (Leak(g=1.0),)).check(1, 2.0)  # tau_m = 1 ms
    with pytest.raises(ValueError, match=r"dt \[ms\] must lie in \(0, inf\)"):
        Compartmental(morph).check(1, -0.1)


def test_bad_parameters_raise_naming_them():
    morph = cable(3, 30.0, 1.0)
    with pytest.raises(ValueError, match=r"r_a \[Ω·cm\] must lie in \(0, inf\)"):
        Compartmental(morph, r_a=-1.0)
    with pytest.raises(ValueError, match=r"c_m \[µF/cm²\]"):
        Compartmental(morph, c_m=0.0)
    with pytest.raises(ValueError, match=r"g_na \[mS/cm²\] must lie in \[0, inf\)"):
        HHNaK(g_na=-1.0)
    with pytest.raises(ValueError, match=r"input_compartment must be an integer in \[0, 2\]"):
        Compartmental(morph, input_compartment=3)
    with pytest.raises(ValueError, match=r"diameter \[µm\] must lie in \(0, inf\)"):
        Morphology(parent=[-1, 0], length=[1.0, 1.0], diameter=[1.0, 0.0])
    with pytest.raises(ValueError, match=r"parent\[2\] must lie in \[0, 1\]"):
        Morphology(parent=[-1, 0, 2], length=[1.0] * 3, diameter=[1.0] * 3)
    with pytest.raises(ValueError, match=r"length \[µm\] must have shape \(2,\)"):
        Morphology(parent=[-1, 0], length=[1.0] * 3, diameter=[1.0] * 2)
    with pytest.raises(ValueError, match="n_segments must be a positive integer"):
        cable(0, 30.0, 1.0)


def test_parameters_are_differentiable_leaves():
    model = Compartmental(ball_and_stick(n_segments=2), hh_channels())
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    # length, diameter, g_na, g_k, e_na, e_k, g, e, c_m, r_a, v_init, v_th
    assert len(leaves) == 12
