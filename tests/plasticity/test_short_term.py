"""TsodyksMarkram short-term plasticity: the event recursion, steady state and published
amplitudes of REFERENCES §9, in the rule alone and in a network; transforms, gradients
and bad parameters."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.plasticity import TsodyksMarkram, steady_state_ratio

DT = 0.5  # [ms]; 20 Hz is 100 steps per interval

# REFERENCES §9 (NEST tsodyks2_synapse, 20 Hz): (U, tau_d, tau_f, A_n/A_1 for n = 1..6, A_st/A_1).
PUBLISHED = [
    (0.5, 800.0, 0.0, [1, 0.5303, 0.3097, 0.2060, 0.1574, 0.1345], 0.11425),
    (0.03, 130.0, 530.0, [1, 1.8442, 2.5245, 3.0592, 3.4760, 3.8020], 5.51618),
    (0.67, 450.0, 0.0, [1, 0.4005, 0.2234, 0.1711, 0.1557, 0.1511], 0.14923),
    (0.1, 100.0, 1000.0, [1, 1.7435, 2.2200, 2.5053, 2.6799, 2.7976], 3.35522),
    (0.2, 200.0, 1500.0, [1, 1.4975, 1.5313, 1.3764, 1.2292, 1.1437], 1.07482),
]


class _Structure(eqx.Module):
    n_pre: int = eqx.field(static=True)


def _efficacies(rule, rate, n_spikes, dt=DT):
    """The efficacy u+ x- of each spike of a regular train at `rate` [Hz] (first spike
    at the first step), from the rule's own step, in one scan."""
    period = round(1000.0 / rate / dt)
    pre = (jnp.arange(n_spikes * period) % period == 0).astype(float)[:, None]
    state = rule.init(_Structure(1), None)

    def body(s, p):
        s, _ = rule.step(s, p, jnp.zeros(1), None, None, dt)
        return s, rule.transmit(s, p)[0]

    _, out = jax.lax.scan(body, state, pre)
    return out[::period]


def _recursion(U, tau_d, tau_f, isi, n):
    """REFERENCES §9 event recursion (u1 = U, x1 = 1), in numpy."""
    u, x, out = U, 1.0, []
    ef = np.exp(-isi / tau_f) if tau_f > 0 else 0.0
    ed = np.exp(-isi / tau_d)
    for _ in range(n):
        out.append(u * x)
        u, x = U + u * (1 - U) * ef, 1 + (x - u * x - 1) * ed
    return np.array(out)


@pytest.mark.parametrize("U, tau_d, tau_f, amplitudes, steady", PUBLISHED)
def test_train_matches_recursion_steady_state_and_published_amplitudes(U, tau_d, tau_f, amplitudes, steady):
    eff = np.asarray(_efficacies(TsodyksMarkram(U=U, tau_d=tau_d, tau_f=tau_f), 20.0, 400))
    # The rule is event-exact (closed-form decay over whole-step intervals, 50 ms exactly):
    # only rounding separates it from the recursion and the closed form; 1e-12 is the
    # tolerance REFERENCES §9 gives for event-based implementations.
    np.testing.assert_allclose(eff, _recursion(U, tau_d, tau_f, 50.0, 400), rtol=1e-12)
    np.testing.assert_allclose(eff[-1] / U, steady_state_ratio(U, tau_d, tau_f, 20.0), rtol=1e-12)
    # The published table has 4 (train) and 5 (steady state) decimals.
    np.testing.assert_allclose(eff[:6] / U, amplitudes, atol=5e-5)
    np.testing.assert_allclose(eff[-1] / U, steady, atol=5e-6)


def test_depressing_steady_state_times_rate_approaches_one_over_tau_d():
    # REFERENCES §9: U = 0.5, tau_d = 800 ms: A_st * f = 1.2048 / 1.2270 / 1.2384 [A Hz]
    # at 50 / 100 / 200 Hz (A_1 = A U), approaching 1000 / tau_d = 1.25.
    rule = TsodyksMarkram(U=0.5, tau_d=800.0, tau_f=0.0)
    for rate, published in ((50.0, 1.2048), (100.0, 1.2270), (200.0, 1.2384)):
        eff = _efficacies(rule, rate, 200, dt=0.1)
        np.testing.assert_allclose(float(eff[-1]) * rate, published, atol=5e-5)  # 4 decimals
        np.testing.assert_allclose(float(eff[-1]) / 0.5, steady_state_ratio(0.5, 800.0, 0.0, rate), rtol=1e-12)


def test_depressing_and_facilitating_sets_behave_as_named():
    dep = np.asarray(_efficacies(TsodyksMarkram(U=0.5, tau_d=800.0, tau_f=0.0), 20.0, 10))
    fac = np.asarray(_efficacies(TsodyksMarkram(U=0.03, tau_d=130.0, tau_f=530.0), 20.0, 10))
    assert np.all(np.diff(dep) < 0) and np.all(np.diff(fac[:6]) > 0)


def _network(U=0.5, tau_d=800.0, tau_f=0.0, weight=50.0, layout=None, plastic=True, steps=2400):
    """A regular 20 Hz train (spikes every 50 ms from 10 ms) onto a subthreshold LIF
    (e_l = 0) through delta synapses."""
    times = 10.0 + 50.0 * np.arange(steps * 0.1 // 50.0)
    src = nj.inputs.SpikeTrains.from_times(times, np.zeros(times.size, int), 1, steps, 0.1)
    lif = nj.neurons.LIF(c_m=250.0, g_l=12.5, e_l=0.0, v_th=1e3, v_reset=0.0, t_ref=0.0)
    rule = TsodyksMarkram(U=U, tau_d=tau_d, tau_f=tau_f) if plastic else None
    proj = nj.Projection("in", "out", nj.connectivity.AllToAll(), weight=weight,
                         synapse=nj.synapses.Delta(), layout=layout, plasticity=rule)
    return nj.Network([nj.Population("in", 1, src), nj.Population("out", 1, lif)], [proj])


def _jumps(model, steps=2400):
    res = nj.simulate(model, steps * 0.1, 0.1, key=jax.random.key(0),
                      record=nj.Record(spikes=(), v={"out": None}))
    v = np.concatenate([[0.0], np.asarray(res.variables["out.v"])[:, 0]])
    return v, res


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")])
def test_network_psc_amplitudes_follow_the_recursion(layout):
    # The jump of the potential in a step is v[k+1] - v[k] exp(-dt / tau_m) (exact
    # integration of the leak, tau_m = 20 ms), so plastic / static jump = efficacy.
    key = jax.random.key(1)
    v_p, res = _jumps(_network(layout=layout).build(key))
    v_s, _ = _jumps(_network(layout=layout, plastic=False).build(key))
    decay = np.exp(-0.1 / 20.0)
    dv_p, dv_s = v_p[1:] - decay * v_p[:-1], v_s[1:] - decay * v_s[:-1]
    arrivals = dv_s > 0.1
    assert arrivals.sum() == 4
    # Ratios of two float64 simulations that differ only by the efficacy factor.
    np.testing.assert_allclose(dv_p[arrivals] / dv_s[arrivals] / 0.5,
                               _recursion(0.5, 800.0, 0.0, 50.0, 4) / 0.5, rtol=1e-9)
    assert isinstance(res.state.plastic[0], nj.plasticity.TsodyksMarkramState)


def test_jit_equals_eager():
    # 65 ms: the spikes at 10 and 60 ms, so the second arrives depressed (eager runs
    # op by op, ~0.1 s per step here: the shortest run that still tests the recovery).
    model = _network(steps=1200).build(jax.random.key(0))
    v_jit, _ = _jumps(model, 650)
    assert np.sum(np.diff(v_jit) > 0.01) == 2  # both arrivals (0.1 and 0.053 mV) in the window
    with jax.disable_jit():
        v_eager, _ = _jumps(model, 650)
    np.testing.assert_allclose(v_jit, v_eager, rtol=1e-12, atol=1e-12)


def test_vmap_over_rule_parameters_equals_a_loop():
    model = _network(steps=1200).build(jax.random.key(0))
    us = jnp.array([0.2, 0.5, 0.9])
    taus = jnp.array([100.0, 400.0, 800.0])

    def final_v(u, tau):
        m = model.replace({"in->out.plasticity.U": u, "in->out.plasticity.tau_d": tau})
        return nj.simulate(m, 120.0, 0.1, key=jax.random.key(0),
                           record=nj.Record(spikes=(), v={"out": None})).variables["out.v"][:, 0]

    batched = jax.vmap(final_v)(us, taus)
    looped = np.stack([final_v(u, t) for u, t in zip(us, taus)])
    np.testing.assert_allclose(batched, looped, rtol=1e-12, atol=1e-12)


def test_gradient_matches_central_finite_differences():
    # The presynaptic train is given, the postsynaptic LIF stays subthreshold, so the
    # mean potential is a smooth function of U, tau_d, tau_f and the weight.
    model = _network(U=0.3, tau_d=300.0, tau_f=200.0, steps=1200).build(jax.random.key(0))
    names = ["in->out.plasticity.U", "in->out.plasticity.tau_d", "in->out.plasticity.tau_f",
             "in->out.weight"]

    def loss(values):
        m = model.replace(dict(zip(names, values)))
        res = nj.simulate(m, 120.0, 0.1, key=jax.random.key(0),
                          record=nj.Record(spikes=(), v={"out": None}))
        return jnp.mean(res.variables["out.v"])

    x0 = [jnp.asarray(v) for v in (0.3, 300.0, 200.0, 50.0)]
    grads = jax.grad(loss)(x0)
    for i, x in enumerate(x0):
        h = 1e-4 * float(x)
        up = list(x0); up[i] = x + h
        down = list(x0); down[i] = x - h
        fd = (loss(up) - loss(down)) / (2 * h)
        # Central differences in float64 with h = 1e-4 relative: truncation O(h^2) ~ 1e-8
        # relative, rounding ~ 1e-16 / 1e-4; 1e-6 leaves room for both.
        np.testing.assert_allclose(grads[i], fd, rtol=1e-6)
        assert np.isfinite(grads[i]) and grads[i] != 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(U=0.0), r"U \[1\] must lie in \(0, 1\]"),
    (dict(U=1.5), r"U \[1\] must lie in \(0, 1\]"),
    (dict(tau_d=-1.0), r"tau_d \[ms\] must lie in \(0, inf\)"),
    (dict(tau_d=0.0), r"tau_d \[ms\] must lie in \(0, inf\)"),
    (dict(tau_f=-5.0), r"tau_f \[ms\] must lie in \[0, inf\)"),
])
def test_bad_parameters_raise_naming_parameter_unit_and_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TsodyksMarkram(**kwargs)


def test_bad_parameter_set_after_build_is_caught_by_simulate():
    model = _network(steps=100).build(jax.random.key(0))
    bad = model.replace({"in->out.plasticity.U": 2.0})
    with pytest.raises(ValueError, match=r"U \[1\] must lie in \(0, 1\]"):
        nj.simulate(bad, 10.0, 0.1, key=jax.random.key(0))


def test_per_neuron_parameters_must_match_the_presynaptic_population():
    net = _network(steps=100)
    proj = net.projections[0]
    bad = nj.Network(net.populations, [eqx.tree_at(lambda p: p.plasticity, proj,
                                                    TsodyksMarkram(U=np.full(3, 0.5)))])
    with pytest.raises(ValueError, match=r"U must be a scalar or have shape \(n_pre,\) = \(1,\)"):
        nj.simulate(bad.build(jax.random.key(0)), 10.0, 0.1, key=jax.random.key(0))
