"""NMDA (voltage-dependent receptor) and Saturating (presynaptic) kinetics."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import neurojax as nj
from neurojax.synapses import NMDA, Conductance, Saturating

# ---------------------------------------------------------------------------------------
# NMDA magnesium block


def test_block_matches_jahr_stevens_formula():
    v = np.linspace(-80.0, 40.0, 121)
    for mg in (0.0, 1.0, 2.0):
        expected = 1.0 / (1.0 + mg / 3.57 * np.exp(-0.062 * v))  # Jahr & Stevens 1990
        got = np.asarray(NMDA(mg=mg).block(jnp.asarray(v)))
        # Same closed form in float64: only rounding differs.
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    b = np.asarray(NMDA(mg=1.0).block(jnp.asarray(v)))
    assert np.all(np.diff(b) > 0)  # relief of the block with depolarisation
    assert 0.02 < b[0] < 0.03 and b[-1] > 0.97  # 2.4 % open at -80 mV, 97.7 % at +40 mV


def test_nmda_drive_is_conductance_at_start_of_step_potential():
    r = NMDA(e_rev=0.0, mg=1.0)
    s = jnp.array([1.0, 2.0])
    v = jnp.array([-70.0, -20.0])
    d = r.drive(s, False, v)
    g = s * r.block(v)
    np.testing.assert_allclose(d.g, g)
    np.testing.assert_allclose(d.current(v), g * (0.0 - v))
    dq = r.drive(s, True, v)  # delta kinetics: a conductance*time
    np.testing.assert_allclose(dq.qg, g)
    with pytest.raises(ValueError, match="membrane potential v"):
        r.drive(s, False)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"mg": -1.0}, "mg"), ({"mg_half": 0.0}, "mg_half"), ({"beta": -0.062}, "beta"),
     ({"e_rev": float("nan")}, "e_rev")],
)
def test_nmda_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=rf"{name}.*\[") as err:
        NMDA(**kwargs)
    assert name in str(err.value)


def _one_to_one(post_neuron, receptor=None, synapse=None, pre_spikes=None, weight=1.0):
    pre_spikes = np.zeros((10, 1)) if pre_spikes is None else pre_spikes
    pre = nj.Population("pre", pre_spikes.shape[1], nj.inputs.SpikeTrains(pre_spikes))
    post = nj.Population("post", 1, post_neuron)
    proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=weight,
                         synapse=synapse or Saturating(), receptor=receptor or NMDA())
    return nj.Network([pre, post], [proj])


def test_nmda_onto_neuron_without_voltage_raises():
    net = _one_to_one(nj.neurons.Rate())
    with pytest.raises(ValueError, match=r"receptor NMDA is voltage-dependent.*v \[mV\]"):
        net.build(jax.random.key(0))
    # a spiking model whose v is dimensionless is refused too
    with pytest.raises(ValueError, match="FitzHughNagumo"):
        _one_to_one(nj.neurons.FitzHughNagumo()).build(jax.random.key(0))


def test_nmda_or_saturating_on_an_input_raises():
    pop = nj.Population("E", 2, nj.neurons.LIF())
    bad = nj.inputs.Poisson("E", rate=10.0, weight=1.0, receptor=NMDA())
    with pytest.raises(ValueError, match="receptor NMDA is voltage-dependent"):
        nj.Network([pop], inputs=[bad]).build(jax.random.key(0))
    bad = nj.inputs.Poisson("E", rate=10.0, weight=1.0, synapse=Saturating(),
                            receptor=Conductance())
    with pytest.raises(ValueError, match="synapse Saturating is kept per presynaptic"):
        nj.Network([pop], inputs=[bad]).build(jax.random.key(0))


def test_saturating_with_initial_raises():
    pre = nj.Population("pre", 1, nj.inputs.SpikeTrains(np.zeros((10, 1))))
    post = nj.Population("post", 1, nj.neurons.LIF())
    proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=1.0,
                         synapse=Saturating(), receptor=NMDA(), initial=0.5)
    with pytest.raises(ValueError, match="initial must be None with Saturating"):
        nj.Network([pre, post], [proj]).build(jax.random.key(0))


def test_saturating_from_a_rate_population_raises():
    pre = nj.Population("pre", 2, nj.neurons.Rate())
    post = nj.Population("post", 1, nj.neurons.LIF())
    proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=1.0,
                         synapse=Saturating(), receptor=Conductance())
    with pytest.raises(ValueError, match="Saturating counts presynaptic spikes"):
        nj.Network([pre, post], [proj]).build(jax.random.key(0))


def test_negative_nmda_weight_raises():
    net = _one_to_one(nj.neurons.LIF(), weight=-1.0)
    with pytest.raises(ValueError, match="weight"):
        net.build(jax.random.key(0))


# ---------------------------------------------------------------------------------------
# Saturating kinetics against a high-accuracy ODE solution

TAU_R, TAU_D, ALPHA = 2.0, 100.0, 0.5  # Wang 2002 NMDA
SPIKE_TIMES = np.array([5.0, 12.0, 14.0, 16.0, 18.0, 20.0, 60.0, 61.0, 62.0, 63.0, 64.0, 65.0])
T_END = 150.0


def _reference_xs(t_eval):
    """x(t), s(t) of dx/dt = -x/tau_r + sum delta, ds/dt = -s/tau_d + alpha x (1 - s),
    integrated piecewise between spikes (x jumps by 1) with Radau at rtol 1e-11."""

    def f(t, y):
        x, s = y
        return [-x / TAU_R, -s / TAU_D + ALPHA * x * (1 - s)]

    edges = np.concatenate([[0.0], SPIKE_TIMES, [T_END]])
    y = np.array([0.0, 0.0])
    out = np.zeros((len(t_eval), 2))
    for a, b in zip(edges[:-1], edges[1:]):
        sol = solve_ivp(f, (a, b), y, method="Radau", rtol=1e-11, atol=1e-13, dense_output=True)
        mask = (t_eval > a) & (t_eval <= b)
        out[mask] = sol.sol(t_eval[mask]).T
        y = sol.y[:, -1] + (np.array([1.0, 0.0]) if b in SPIKE_TIMES else 0.0)
    return out


def _library_s(dt):
    steps = int(round(T_END / dt))
    spikes = np.zeros((steps, 1))
    # A spike at t is added at the end of the step ending at t (step t/dt - 1).
    spikes[np.round(SPIKE_TIMES / dt).astype(int) - 1, 0] = 1.0
    kin = Saturating(tau_rise=TAU_R, tau_decay=TAU_D, alpha=ALPHA)

    def body(st, sp):
        return kin.step(st, sp, dt)

    _, s = jax.lax.scan(body, kin.init(1), jnp.asarray(spikes))
    return np.arange(1, steps + 1) * dt, np.asarray(s[:, 0])


def test_saturating_matches_ode_solution_and_converges():
    errors = []
    for dt in (0.2, 0.1, 0.05):
        t, s = _library_s(dt)
        ref = _reference_xs(t)[:, 1]
        errors.append(np.max(np.abs(s - ref)))
    # The s it reaches (0.986 after the burst) makes saturation matter: a linear filter
    # would exceed 1.
    t, s = _library_s(0.1)
    assert 0.85 < s.max() < 1.0
    # Exponential Euler with the exact mean of x: second order. Measured max errors at
    # dt = 0.2, 0.1, 0.05 ms are 1.6e-5, 4.1e-6, 1.0e-6 on s in [0, 1) (ratio 4.0): a
    # 4e-6 error on the open fraction is far below anything the network resolves; the
    # bound 1e-5 leaves a factor 2.4.
    assert errors[1] < 1e-5, errors
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    assert all(3.5 < r < 4.5 for r in ratios), (errors, ratios)


# ---------------------------------------------------------------------------------------
# One NMDA synapse onto a passive LIF: potential against a high-accuracy solution

C_M, G_L, E_L = 500.0, 25.0, -70.0  # Wang 2002 pyramidal cell
G_NMDA = 150.0  # [nS], large so that the block's voltage dependence matters


def _reference_v(t_eval):
    """(x, s, v) of the saturating gating and C dv/dt = -g_L (v - E_L) - g s B(v) v."""

    def f(t, y):
        x, s, v = y
        b = 1.0 / (1.0 + np.exp(-0.062 * v) / 3.57)
        return [-x / TAU_R, -s / TAU_D + ALPHA * x * (1 - s),
                (-G_L * (v - E_L) - G_NMDA * s * b * v) / C_M]

    edges = np.concatenate([[0.0], SPIKE_TIMES, [T_END]])
    y = np.array([0.0, 0.0, E_L])
    out = np.zeros(len(t_eval))
    for a, b in zip(edges[:-1], edges[1:]):
        sol = solve_ivp(f, (a, b), y, method="Radau", rtol=1e-11, atol=1e-12, dense_output=True)
        mask = (t_eval > a) & (t_eval <= b)
        out[mask] = sol.sol(t_eval[mask])[2]
        y = sol.y[:, -1] + (np.array([1.0, 0.0, 0.0]) if b in SPIKE_TIMES else 0.0)
    return out


def _passive_lif():
    return nj.neurons.LIF(c_m=C_M, g_l=G_L, e_l=E_L, v_th=1e3, v_reset=-70.0, t_ref=0.0)


def _network_v(dt, layout=None, weight=G_NMDA, n_steps=None):
    steps = int(round(T_END / dt)) if n_steps is None else n_steps
    spikes = np.zeros((steps, 1))
    k = np.round(SPIKE_TIMES / dt).astype(int) - 1
    spikes[k[k < steps], 0] = 1.0
    pre = nj.Population("pre", 1, nj.inputs.SpikeTrains(spikes))
    post = nj.Population("post", 1, _passive_lif())
    proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=weight,
                         synapse=Saturating(TAU_R, TAU_D, ALPHA), receptor=NMDA(mg=1.0),
                         layout=layout)
    return nj.Network([pre, post], [proj]).build(jax.random.key(0)), steps


def _run_v(model, dt, steps):
    state = model.init(jax.random.key(1), dt)

    def body(st, k):
        st, _ = model.step(st, k * dt, dt)
        return st, st.neurons[1].v[0]

    return jax.lax.scan(body, state, jnp.arange(steps))[1]


def test_nmda_synapse_potential_matches_ode_and_converges_first_order():
    errors = []
    for dt in (0.2, 0.1, 0.05):
        model, steps = _network_v(dt)
        v = np.asarray(_run_v(model, dt, steps))
        t = np.arange(1, steps + 1) * dt
        errors.append(np.max(np.abs(v - _reference_v(t))))
    # The depolarisation is tens of mV (the block is relieved as v rises).
    model, steps = _network_v(0.1)
    v = np.asarray(_run_v(model, 0.1, steps))
    assert v.max() - E_L > 40.0  # peaks near -19 mV
    # Holding the conductance (gating and block) at its start-of-step value is first
    # order: measured 0.42, 0.21, 0.10 mV at dt = 0.2, 0.1, 0.05 ms for a 51 mV
    # response (errors halve with dt); 0.3 mV at dt = 0.1 leaves ~40 % margin.
    assert errors[1] < 0.3, errors
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    assert all(1.7 < r < 2.3 for r in ratios), (errors, ratios)


def test_dense_and_sparse_and_jit_agree():
    dt = 0.1
    dense, steps = _network_v(dt, layout=nj.connectivity.Dense(), n_steps=400)
    sparse, _ = _network_v(dt, layout=nj.connectivity.Sparse(), n_steps=400)
    assert isinstance(sparse.projections[0].weights, nj.connectivity.SparseWeights)
    v_dense = np.asarray(jax.jit(_run_v, static_argnums=(1, 2))(dense, dt, steps))
    v_sparse = np.asarray(jax.jit(_run_v, static_argnums=(1, 2))(sparse, dt, steps))
    np.testing.assert_allclose(v_sparse, v_dense, rtol=1e-12, atol=1e-10)  # same sums
    # eager is slow (~0.15 s a step): 14 steps of 0.5 ms, spike in step 9
    coarse, _ = _network_v(0.5, n_steps=14)
    v_jit = np.asarray(jax.jit(_run_v, static_argnums=(1, 2))(coarse, 0.5, 14))
    with jax.disable_jit():
        v_eager = np.asarray(_run_v(coarse, 0.5, 14))
    assert v_jit[-1] > E_L + 0.01  # the NMDA current has begun
    np.testing.assert_allclose(v_eager, v_jit, rtol=1e-12, atol=1e-10)


def test_many_to_many_graded_signal_through_weights():
    """Post neuron i's conductance is sum_j w_ij s_j with s_j each pre neuron's own
    saturating gating (dense and sparse, random weights and connectivity)."""
    dt, steps, n_pre, n_post = 0.1, 300, 12, 5
    rng = np.random.default_rng(0)
    spikes = (rng.random((steps, n_pre)) < 0.02).astype(float)
    w = rng.uniform(0.5, 2.0, (n_post, n_pre)) * (rng.random((n_post, n_pre)) < 0.5)
    kin = Saturating(TAU_R, TAU_D, ALPHA)
    _, s = jax.lax.scan(lambda st, sp: kin.step(st, sp, dt), kin.init(n_pre), jnp.asarray(spikes))
    expected = np.asarray(s) @ w.T  # (steps, n_post): conductance sent after step k
    for layout in (nj.connectivity.Dense(), nj.connectivity.Sparse()):
        pre = nj.Population("pre", n_pre, nj.inputs.SpikeTrains(spikes))
        post = nj.Population("post", n_post, _passive_lif())
        proj = nj.Projection("pre", "post", nj.connectivity.FromMatrix(w), weight=1.0,
                             synapse=kin, receptor=NMDA(mg=0.0), layout=layout)
        model = nj.Network([pre, post], [proj]).build(jax.random.key(0))
        state = model.init(jax.random.key(1), dt)
        assert state.synapses[0].s.shape == (n_pre,)  # O(N_pre) state

        def body(st, k):
            g = st.buffers[0][k % st.buffers[0].shape[0]]  # what this step will hold
            st, _ = model.step(st, k * dt, dt)
            return st, g

        g = np.asarray(jax.lax.scan(body, state, jnp.arange(steps))[1])
        # conductance held in step k+1 is what was sent after step k (one-step delay)
        np.testing.assert_allclose(g[1:], expected[:-1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse()],
                         ids=["dense", "sparse"])
def test_gradient_wrt_weight_matches_finite_differences(layout):
    dt = 0.1
    model, steps = _network_v(dt, layout=layout, n_steps=800)

    def loss(w):
        m = model.replace({"pre->post.weight": w})
        return jnp.mean(_run_v(m, dt, steps) - E_L)

    w0 = jnp.asarray(G_NMDA)
    g = jax.grad(loss)(w0)
    h = 1e-4
    fd = (loss(w0 + h) - loss(w0 - h)) / (2 * h)
    # Central differences in float64 on a smooth (non-spiking) loss: truncation
    # O(h^2 * loss''') and rounding ~1e-16/h are both < 1e-8 relative.
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    assert g > 0


def test_nmda_reads_the_input_compartment_and_hh_potential():
    """Any neuron with a potential takes NMDA: HH (state v) and a passive cable, whose
    synapses act at `input_compartment` (its potential is what the block sees)."""
    from neurojax.neurons.compartmental import Compartmental, Leak
    from neurojax.neurons.morphology import cable

    cell = Compartmental(cable(5, 500.0, 1.0), (Leak(g=0.1, e=-70.0),), v_init=-70.0,
                         input_compartment=4)
    state = cell.init(3)
    v = state.v.at[:, 4].set(-20.0)
    np.testing.assert_allclose(cell.voltage(eqx.tree_at(lambda s: s.v, state, v)), -20.0)
    dt, steps = 0.1, 300
    for neuron in (nj.neurons.HodgkinHuxley(), cell):
        spikes = np.zeros((steps, 1))
        spikes[[10, 20, 30], 0] = 1.0
        peaks = []
        for w in (0.0, 50.0):  # [nS]
            pre = nj.Population("pre", 1, nj.inputs.SpikeTrains(spikes))
            post = nj.Population("post", 1, neuron)
            proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=w,
                                 synapse=Saturating(), receptor=NMDA())
            model = nj.Network([pre, post], [proj]).build(jax.random.key(0))
            st = model.init(jax.random.key(1), dt)

            def body(st, k, model=model):
                st, _ = model.step(st, k * dt, dt)
                return st, neuron.voltage(st.neurons[1])[0]

            peaks.append(float(jnp.max(jax.lax.scan(body, st, jnp.arange(steps))[1])))
        assert peaks[1] > peaks[0] + 0.5, (type(neuron).__name__, peaks)  # depolarised
