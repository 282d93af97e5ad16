"""VoltageSTDP (Clopath et al. 2010): the weight change for a given voltage trace equals
an independent numpy integration, the network hands the rule the postsynaptic
potential (an AdEx run replayed in numpy), the frequency dependence of pairing
(Clopath 2010 Fig. 2b), the published parameters, transforms and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.plasticity import VoltageSTDP

DT = 0.1  # [ms]


def _reference(rule, w0, pre, post, u, dt=DT):
    """The rule's equations in plain numpy, step by step: `pre` (steps, n_pre) and
    `post` (steps, n_post) spikes, `u` (steps, n_post) the potential at each step's
    end [mV]; `w0` (n_post, n_pre). Returns the final weights."""
    p = {k: float(getattr(rule, k)) for k in ("a_ltd", "a_ltp", "theta_minus", "theta_plus", "tau_x",
                                              "tau_minus", "tau_plus", "w_max", "u_ref_squared",
                                              "tau_homeostasis", "t_spike")}
    n_post, n_pre = w0.shape
    w = np.array(w0, float)
    um = np.full(n_post, p["theta_minus"])
    up = um.copy()
    ubb = np.zeros(n_post)
    clamp = np.zeros(n_post)
    x = np.zeros(n_pre)
    for k in range(u.shape[0]):
        uk = np.array(u[k], float)
        if rule.v_spike is not None:
            clamp = np.where(post[k] > 0, p["t_spike"], np.maximum(clamp - dt, 0.0))
            uk = np.where(clamp > dt / 2, float(rule.v_spike), uk)
        um = uk + (um - uk) * np.exp(-dt / p["tau_minus"])
        up = uk + (up - uk) * np.exp(-dt / p["tau_plus"])
        a_ltd = np.full(n_post, p["a_ltd"])
        if rule.homeostasis:
            depol = um - p["theta_minus"]
            ubb = depol + (ubb - depol) * np.exp(-dt / p["tau_homeostasis"])
            a_ltd = p["a_ltd"] * ubb**2 / p["u_ref_squared"]
        for i in range(n_post):
            for j in range(n_pre):
                if pre[k, j]:
                    w[i, j] = min(max(w[i, j] - a_ltd[i] * max(um[i] - p["theta_minus"], 0.0), 0.0), p["w_max"])
        x = x * np.exp(-dt / p["tau_x"])
        for i in range(n_post):
            ltp = dt * p["a_ltp"] * max(uk[i] - p["theta_plus"], 0.0) * max(up[i] - p["theta_minus"], 0.0)
            for j in range(n_pre):
                w[i, j] = min(max(w[i, j] + x[j] * ltp, 0.0), p["w_max"])
        x = x + pre[k] / p["tau_x"]
    return w


def _structure(n_pre, n_post, w0):
    pops = [nj.Population("pre", n_pre, nj.inputs.PoissonPopulation(rate=1.0)),
            nj.Population("post", n_post, nj.neurons.AdEx())]
    proj = nj.Projection("pre", "post", nj.connectivity.FromMatrix(w0), layout=nj.connectivity.Dense(),
                         plasticity=VoltageSTDP())
    return nj.Network(pops, [proj]).build(jax.random.key(0)).projection("pre->post").weights


def _scan(rule, structure, pre, post, u):
    def body(state, xs):
        state, _ = rule.step(state, *xs, None, DT, structure=structure)
        return state, None

    state, _ = jax.lax.scan(body, rule.init(structure, None), (pre, post, u))
    return state.weights


def _synthetic(steps=3000, n_pre=2, n_post=3, seed=0):
    """A synthetic potential: slow depolarising bumps and brief excursions above
    theta_+ (as during spikes), per postsynaptic neuron; random pre and post spikes."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * DT
    u = np.stack([-70.6 + 12.0 * np.sin(2 * np.pi * t / (60.0 + 17 * i)) ** 2
                  + 60.0 * np.exp(-(((t - 80.0 - 70 * i) % 150.0) / 3.0) ** 2)
                  for i in range(n_post)], axis=1)
    pre = (rng.random((steps, n_pre)) < 0.004).astype(float)
    post = (rng.random((steps, n_post)) < 0.002).astype(float)
    return pre, post, u


@pytest.mark.parametrize("kwargs", [dict(), dict(homeostasis=True, tau_homeostasis=50.0),
                                    dict(v_spike=33.0, t_spike=2.0)])
def test_weight_change_for_a_given_voltage_equals_the_numpy_integral(kwargs):
    rule = VoltageSTDP.clopath2010(w_max=1.0, a_ltd=1e-3, a_ltp=2e-3, **kwargs)
    w0 = np.array([[0.5, 0.3], [0.2, 0.6], [0.4, 0.4]])
    pre, post, u = _synthetic()
    got = np.asarray(_scan(rule, _structure(2, 3, w0), jnp.asarray(pre), jnp.asarray(post), jnp.asarray(u)))
    want = _reference(rule, w0, pre, post, u)
    assert np.abs(want - w0).max() > 0.01
    # Both terms act on this trace: LTD alone lowers weights, LTP alone raises them.
    ltd_only = _reference(eqx.tree_at(lambda r: r.a_ltp, rule, jnp.asarray(0.0)), w0, pre, post, u)
    ltp_only = _reference(eqx.tree_at(lambda r: r.a_ltd, rule, jnp.asarray(0.0)), w0, pre, post, u)
    assert (ltd_only < w0 - 1e-3).all() and (ltp_only > w0 + 1e-3).all()
    # Same float64 arithmetic in another order (numpy loop vs XLA): ~1e-15; the brief
    # asks 1e-6, 1e-10 is "exact" with room for reassociation.
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def _pairing(freqs=(1.0, 10.0, 20.0, 40.0, 50.0), n_pairs=5, amp=8000.0, rule=None):
    """Clopath 2010 Fig. 2b / Sjöström 2001: 5 pairings of a presynaptic spike with a
    postsynaptic spike 10 ms later (+10) or earlier (-10), at each frequency; one AdEx
    neuron per condition (one compiled run), the post spike elicited by a 2 ms current
    pulse. Returns {(f, +-10): relative weight change} and the post spike counts."""
    conds = [(f, s) for f in freqs for s in (10.0, -10.0)]
    n = len(conds)
    t0 = 50.0
    dur = t0 + n_pairs * 1000.0 / min(freqs) + 50.0
    steps = int(round(dur / DT))
    pre_t, pre_i, pulses = [], [], []
    for i, (f, s) in enumerate(conds):
        for k in range(n_pairs):
            t = t0 + k * 1000.0 / f
            pre_t.append(t)
            pre_i.append(i)
            pulses.append((i, t + s - 2.0))  # the spike comes ~2 ms into the pulse
    grid = np.arange(0.0, dur + DT, DT / 2)
    values = np.zeros((grid.size, n))
    for i, on in pulses:
        values[(grid >= on) & (grid < on + 2.0), i] = amp
    rule = rule or VoltageSTDP.clopath2010(w_max=2.0, v_spike=33.0, t_spike=2.0)
    pre = nj.inputs.SpikeTrains.from_times(np.array(pre_t), np.array(pre_i), n, steps, DT)
    proj = nj.Projection("pre", "post", nj.connectivity.FromMatrix(np.eye(n)), weight=0.5,
                         synapse=nj.synapses.Exponential(2.0), receptor=nj.synapses.Conductance(0.0),
                         plasticity=rule)
    net = nj.Network([nj.Population("pre", n, pre), nj.Population("post", n, nj.neurons.AdEx())],
                     [proj], inputs=[nj.inputs.Waveform("post", grid, values)])
    model = net.build(jax.random.key(0))
    res = nj.simulate(model, dur, DT, key=jax.random.key(0), record=nj.Record(spikes=["post"]))
    w = np.asarray(model.plastic_weights(res.state, "pre->post")).ravel()  # one synapse per row
    counts = np.asarray(res.spikes["post"]).sum(0)
    return {c: (w[i] - 0.5) / 0.5 for i, c in enumerate(conds)}, counts


def test_pairing_frequency_dependence_as_in_clopath_fig_2b():
    dw, counts = _pairing()
    assert (counts == 5).all()  # one postsynaptic spike per pairing
    for (f, s), v in dw.items():
        print(f"{f:4.0f} Hz {s:+.0f} ms: {100 * v:+6.2f} %")
    # Post-pre (-10 ms) depresses at low frequency and potentiates at 40-50 Hz (the
    # LTD -> LTP crossover of Fig. 2b); pre-post (+10 ms) potentiates at 40-50 Hz.
    # Measured (float64, 5 pairings, w0 = 0.5): post-pre -1.92, -1.67, -0.90, +2.97,
    # +6.08 % at 1, 10, 20, 40, 50 Hz; pre-post +6.98, +6.44, +6.29, +7.40, +8.39 %.
    # Unlike Fig. 2b, pre-post also potentiates at low frequency here (the point AdEx
    # has no spike afterdepolarisation or adaptive threshold, and the 5 ms delay of the
    # filtered potentials in the ModelDB code is left out), so that is not asserted.
    assert dw[(1.0, -10.0)] < 0 and dw[(10.0, -10.0)] < 0
    assert dw[(40.0, -10.0)] > 0 and dw[(50.0, -10.0)] > 0
    assert dw[(50.0, 10.0)] > 0 and dw[(40.0, 10.0)] > 0
    post_pre = [dw[(f, -10.0)] for f in (1.0, 10.0, 20.0, 40.0, 50.0)]
    assert np.all(np.diff(post_pre) > 0)  # monotone in frequency


def test_network_hands_the_rule_the_postsynaptic_potential():
    # An AdEx neuron driven by Poisson inputs through a VoltageSTDP projection: the
    # learned weights equal the numpy integration of the recorded spikes and potential.
    n_pre, steps = 20, 3000
    rule = VoltageSTDP.clopath2010(w_max=5.0, a_ltd=2e-3, a_ltp=5e-4, v_spike=33.0)
    proj = nj.Projection("in", "out", nj.connectivity.AllToAll(), weight=nj.Uniform(1.0, 3.0),
                         synapse=nj.synapses.Exponential(5.0), receptor=nj.synapses.Conductance(0.0),
                         plasticity=rule)
    net = nj.Network([nj.Population("in", n_pre, nj.inputs.PoissonPopulation(rate=30.0)),
                      nj.Population("out", 2, nj.neurons.AdEx())], [proj],
                     inputs=[nj.inputs.Constant("out", amplitude=500.0)])
    model = net.build(jax.random.key(2))
    res = nj.simulate(model, steps * DT, DT, key=jax.random.key(3),
                      record=nj.Record(spikes=["in", "out"], v={"out": None}))
    w0 = np.asarray(model.projection("in->out").weights.matrix())
    pre, post = np.asarray(res.spikes["in"], float), np.asarray(res.spikes["out"], float)
    assert post.sum() >= 4
    want = _reference(rule, w0, pre, post, np.asarray(res.variables["out.v"]))
    got = np.asarray(model.plastic_weights(res.state, "in->out"))
    assert np.abs(want - w0).max() > 0.01
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)  # as above


def test_clopath2010_parameters():
    # Clopath et al. 2010 (visual cortex), checked against NEST's defaults
    # (ClopathArchivingNode: A_LTD 14e-5, A_LTP 8e-5, theta_+ -45.3, theta_- -70.6,
    # u_ref^2 60; clopath_synapse: tau_x 15 ms) and Brian2's Clopath example (tau_- 10,
    # tau_+ 7 ms).
    r = VoltageSTDP.clopath2010()
    got = [float(getattr(r, k)) for k in ("a_ltd", "a_ltp", "theta_minus", "theta_plus", "tau_x",
                                          "tau_minus", "tau_plus", "u_ref_squared")]
    assert got == [14e-5, 8e-5, -70.6, -45.3, 15.0, 10.0, 7.0, 60.0]
    assert float(VoltageSTDP.clopath2010(w_max=3.0).w_max) == 3.0


def test_jit_equals_eager_and_vmap_equals_a_loop():
    w0 = np.array([[0.5, 0.3], [0.2, 0.6], [0.4, 0.4]])
    pre, post, u = (jnp.asarray(a) for a in _synthetic(steps=500))
    structure = _structure(2, 3, w0)

    def final(a_ltp):
        rule = VoltageSTDP.clopath2010(w_max=1.0, a_ltd=1e-3, a_ltp=a_ltp)
        return _scan(rule, structure, pre, post, u)

    values = jnp.array([1e-5, 1e-4, 3e-4])
    eager = np.stack([np.asarray(final(v)) for v in values])
    np.testing.assert_allclose(np.asarray(jax.jit(final)(values[1])), eager[1], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.vmap(final)(values)), eager, rtol=1e-12)


def test_a_postsynaptic_neuron_without_potential_raises():
    pre = nj.Population("pre", 2, nj.inputs.PoissonPopulation(rate=10.0))
    for neuron in (nj.neurons.Rate(tau=10.0), nj.neurons.Binary()):
        proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=0.5,
                             plasticity=VoltageSTDP())
        with pytest.raises(ValueError, match=r"VoltageSTDP reads the postsynaptic membrane potential \[mV\]"):
            nj.Network([pre, nj.Population("post", 2, neuron)], [proj]).build(jax.random.key(0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(a_ltd=-1.0), r"a_ltd \[weight units/mV\].*\[0, inf\)"),
    (dict(a_ltp=-1.0), r"a_ltp \[weight units/mV\^2\]"),
    (dict(theta_plus=np.inf), r"theta_plus \[mV\]"),
    (dict(tau_x=0.0), r"tau_x \[ms\].*\(0, inf\)"),
    (dict(tau_minus=-1.0), r"tau_minus \[ms\]"),
    (dict(w_max=0.0), r"w_max \[weight units\]"),
    (dict(u_ref_squared=0.0), r"u_ref_squared \[mV\^2\]"),
    (dict(v_spike=np.nan), r"v_spike \[mV\]"),
    (dict(t_spike=0.0), r"t_spike \[ms\]"),
])
def test_bad_parameters_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VoltageSTDP(**kwargs)


def test_dt_larger_than_a_filter_time_constant_raises():
    rule = VoltageSTDP(tau_plus=0.05)
    pops = [nj.Population("pre", 1, nj.inputs.PoissonPopulation(rate=10.0)),
            nj.Population("post", 1, nj.neurons.AdEx())]
    model = nj.Network(pops, [nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=0.5,
                                            plasticity=rule)]).build(jax.random.key(0))
    with pytest.raises(ValueError, match="too large for VoltageSTDP tau_plus"):
        nj.simulate(model, 1.0, DT, key=jax.random.key(0))
