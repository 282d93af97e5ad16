"""RewardModulated (three-factor R-STDP) and the network's modulator plumbing
(`nj.inputs.Modulator`): the closed-form eligibility integral for one pair and a reward
pulse, no reward -> no change (exactly), closed-loop modulators, the rewarded pathway
alone grows, transforms, gradients and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.plasticity import RewardModulated

DT = 0.1  # [ms]
STEPS = 3000
W0 = 0.5  # [pA·ms]
A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS, TAU_E = 1.0, 1.2, 17.0, 34.0, 100.0
ETA = 0.01  # [1/ms]


def _trains(times, n=1):
    return nj.inputs.SpikeTrains.from_times(times, np.zeros(len(times), int), n, STEPS, DT)


def _model(rule, modulators, pre_times=(50.0,), post_times=(60.0,), layout=None, extra=()):
    proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=W0, layout=layout,
                         plasticity=rule)
    pops = [nj.Population("pre", 1, _trains(pre_times)), nj.Population("post", 1, _trains(post_times)),
            *extra]
    return nj.Network(pops, [proj], modulators=modulators).build(jax.random.key(0))


def _with_spikes(model, pre_times, post_times):
    return eqx.tree_at(lambda m: (m.populations[0].neuron.spikes, m.populations[1].neuron.spikes),
                       model, (_trains(pre_times).spikes, _trains(post_times).spikes))


def _final_weight(model):
    res = nj.simulate(model, STEPS * DT, DT, key=jax.random.key(0), record=nj.Record(spikes=()))
    return model.plastic_weights(res.state, "pre->post").ravel()[0]


def _rule(**kw):
    args = dict(eta=ETA, tau_e=TAU_E, a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU_PLUS,
                tau_minus=TAU_MINUS, w_max=10.0)
    return RewardModulated(**(args | kw))


def _eligibility(t, t_pre, t_post):
    """e(t) of one pair (t >= both spikes): the pair-STDP window, then decay with tau_e."""
    delta = t_post - t_pre
    amp = A_PLUS * np.exp(-delta / TAU_PLUS) if delta >= 0 else -A_MINUS * np.exp(delta / TAU_MINUS)
    return amp * np.exp(-(t - max(t_pre, t_post)) / TAU_E)


# A reward pulse of height R on [T, T + D): onsets between grid points so that the
# rewarded steps are exactly those starting in [200.1, 250.1) (t = k dt rounds).
R, T_ON, D = 2.0, 200.05, 50.0
T_GRID = 200.1  # first rewarded step start [ms]


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")])
def test_pair_then_reward_pulse_gives_the_closed_form_eligibility_integral(layout):
    # M(t) sits at the baseline b = 0.5 except for the pulse (M - b = R there).
    pulse = nj.inputs.Pulses([T_ON], R, D)
    reward = nj.inputs.Modulator("dopamine", lambda t: 0.5 + pulse(t))
    model = _model(_rule(baseline=0.5), [reward], layout=layout)
    for t_pre, t_post in [(50.0, 60.0), (80.0, 60.0), (100.0, 100.0), (120.0, 150.0)]:
        dw = float(_final_weight(_with_spikes(model, [t_pre], [t_post]))) - W0
        # dw = eta R int_T^{T+D} e(t) dt = eta R e(T) tau_e (1 - exp(-D/tau_e)).
        expected = ETA * R * _eligibility(T_GRID, t_pre, t_post) * TAU_E * (1 - np.exp(-D / TAU_E))
        # Exact in exact arithmetic (e decays by one rounded factor per step and the
        # per-step integrals sum a geometric series): float64 rounding over ~2500 steps
        # is ~1e-13 relative; 1e-9 is far inside the brief's 1e-6.
        np.testing.assert_allclose(dw, expected, rtol=1e-9)
        assert abs(dw) > 1e-3  # not trivially zero


def test_baseline_minus_modulator_sets_the_sign_and_depression_is_bounded_at_zero():
    # A negative e (post before pre) under reward depresses; a reward below baseline
    # inverts it; large changes stop at the bounds.
    reward = nj.inputs.Modulator("dopamine", nj.inputs.Pulses([T_ON], R, D))
    post_pre = _with_spikes(_model(_rule(), [reward]), [70.0], [60.0])
    assert float(_final_weight(post_pre)) < W0
    below = _with_spikes(_model(_rule(baseline=3.0), [reward]), [70.0], [60.0])
    assert float(_final_weight(below)) > W0
    big = _with_spikes(_model(_rule(eta=10.0, w_max=1.0), [reward]), [50.0, 55.0], [60.0])
    assert float(_final_weight(big)) == 1.0


def test_no_reward_changes_no_weight_exactly():
    # Rich activity (many pairs, both signs): M == baseline (a constant 0.3, or 0 with
    # baseline 0) leaves every weight bit-for-bit where it started.
    pre_times = list(np.arange(20.0, 280.0, 7.0))
    post_times = list(np.arange(23.0, 280.0, 11.0))
    for value, baseline in [(0.3, 0.3), (0.0, 0.0)]:
        mod = nj.inputs.Modulator("dopamine", lambda t, v=value: v)
        model = _model(_rule(baseline=baseline), [mod], pre_times, post_times)
        res = nj.simulate(model, STEPS * DT, DT, key=jax.random.key(0), record=nj.Record(spikes=()))
        assert float(model.plastic_weights(res.state, "pre->post")[0, 0]) == W0
        assert float(jnp.abs(res.state.plastic[0].eligibility).max()) > 0.1  # e did move


def test_closed_loop_modulator_reads_the_network_activity():
    # The reward is the output of a "critic" population (spikes at 100 ms and 180 ms):
    # each rewarded step adds eta * R * e(t) * tau_e (1 - exp(-dt/tau_e)).
    critic = nj.Population("critic", 1, _trains([100.0, 180.0]))
    mod = nj.inputs.Modulator("dopamine", lambda t, s: R * s[0], source="critic")
    model = _model(_rule(), [mod], extra=[critic])
    dw = float(_final_weight(model)) - W0
    step_int = TAU_E * (1 - np.exp(-DT / TAU_E))
    # A spike "at t" is emitted by the step starting at t - dt.
    expected = ETA * R * step_int * sum(_eligibility(t - DT, 50.0, 60.0) for t in (100.0, 180.0))
    np.testing.assert_allclose(dw, expected, rtol=1e-9)  # as in the closed-form test


@pytest.mark.parametrize("closed_loop", [False, True])
def test_reward_raises_the_weights_of_the_rewarded_pathway_only(closed_loop):
    # Issue 14: two pathways A and B (10 inputs each) onto one LIF neuron. A fires a
    # volley every 100 ms that makes the neuron fire 1-3 ms later (pre before post: a
    # positive eligibility); B fires at random (Poisson 10 Hz). Open loop: a reward
    # pulse follows each A volley by 20 ms. Closed loop: the reward is computed from
    # the network's own activity, a "critic" LIF unit that fires 20 ms after each spike
    # of the neuron (the delay of its input projection holds the memory), read by the
    # modulator. Either way A's weights rise, B's do not.
    steps = 8000
    n = 10
    onsets = np.arange(50.0, steps * DT - 100.0, 100.0)
    rng = np.random.default_rng(0)
    a_times = np.repeat(onsets, n) + rng.uniform(0.0, 1.0, onsets.size * n)
    a_ids = np.tile(np.arange(n), onsets.size)
    b_times = rng.uniform(0.0, steps * DT - 1.0, int(10.0 * n * steps * DT / 1000.0))
    b_ids = rng.integers(0, n, b_times.size)
    A = nj.inputs.SpikeTrains.from_times(a_times, a_ids, n, steps, DT)
    B = nj.inputs.SpikeTrains.from_times(b_times, b_ids, n, steps, DT)
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=-50.0, v_reset=-65.0, t_ref=2.0)
    # Izhikevich's (2007) depression-dominated window, a_- / a_+ = 1.5, tau_+- = 20 ms:
    # with a_- = a_+, B's spikes that help the neuron fire (pre before post) bias e_B up.
    rule = RewardModulated(eta=0.05, tau_e=50.0, a_plus=1.0, a_minus=1.5, tau_plus=20.0,
                           tau_minus=20.0, w_max=30.0)
    w0 = 3.0  # [nS·ms]: one A volley (10 x 3 nS·ms) fires the neuron, B alone does not
    projs = [nj.Projection(src, "out", nj.connectivity.AllToAll(), weight=w0,
                           synapse=nj.synapses.Exponential(5.0),
                           receptor=nj.synapses.Conductance(0.0), plasticity=rule)
             for src in ("A", "B")]
    pops = [nj.Population("A", n, A), nj.Population("B", n, B), nj.Population("out", 1, lif)]
    if closed_loop:
        pops.append(nj.Population("critic", 1, lif))
        projs.append(nj.Projection("out", "critic", nj.connectivity.AllToAll(), weight=4000.0,
                                   delay=20.0))  # a 20 mV jump [pA·ms / pF]: one spike each
        # One step of height 30 per critic spike (30 * dt = 3 ms x 1, less than a pulse:
        # every spike is rewarded, and more A weight means more spikes).
        reward = nj.inputs.Modulator("dopamine", lambda t, s: 30.0 * s[0], source="critic")
    else:
        reward = nj.inputs.Modulator("dopamine", nj.inputs.Pulses(onsets + 20.0, 1.0, 10.0))
    net = nj.Network(pops, projs, modulators=[reward])
    model = net.build(jax.random.key(0))
    res = nj.simulate(model, steps * DT, DT, key=jax.random.key(1), record=nj.Record(spikes=["out", "critic"] if closed_loop else ["out"]))
    n_out = int(np.asarray(res.spikes["out"]).sum())
    dw_a = float(model.plastic_weights(res.state, "A->out").mean()) - w0
    dw_b = float(model.plastic_weights(res.state, "B->out").mean()) - w0
    print(f"out spikes {n_out}, A volleys {onsets.size}; mean dw A {dw_a:+.4f}, B {dw_b:+.4f} [nS·ms]")
    assert n_out >= onsets.size  # every volley fired the neuron
    if closed_loop:
        assert int(np.asarray(res.spikes["critic"]).sum()) >= onsets.size
    # Measured (float64), open loop: 20 spikes, mean dw A +4.51, B +0.11 [nS·ms] (B: 2.5 %
    # of A); closed loop: 16 spikes, A +2.60, B -0.04 (1.4 %).
    assert dw_a > 2.0  # A grows by far
    assert abs(dw_b) < 0.1 * dw_a  # B stays put (random timing: e averages out)


def _grad_model():
    reward = nj.inputs.Modulator("dopamine", nj.inputs.Pulses([T_ON], R, D))
    return _with_spikes(_model(_rule(), [reward]), [50.0, 90.0], [60.0, 85.0])


def _loss(model, eta, amp):
    model = model.replace({"pre->post.plasticity.eta": eta, "dopamine.signal.amplitude": amp})
    return (_final_weight(model) - 0.3) ** 2


def test_jit_equals_eager_and_vmap_equals_a_loop():
    model = _grad_model()
    etas = jnp.array([0.0, 0.005, 0.02])
    eager = [float(_loss(model, e, R)) for e in etas]
    jitted = [float(jax.jit(_loss)(model, e, R)) for e in etas]
    vmapped = jax.vmap(_loss, in_axes=(None, 0, None))(model, etas, R)
    np.testing.assert_allclose(jitted, eager, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(vmapped), eager, rtol=1e-12)
    assert len(set(np.round(eager, 12))) == 3


def test_gradient_wrt_eta_and_reward_matches_finite_differences():
    # Fixed spike trains, weights inside the bounds: the loss is smooth in eta and R.
    model = _grad_model()
    eta, amp, h = 0.01, 2.0, 1e-6
    g_eta, g_amp = jax.grad(_loss, argnums=(1, 2))(model, eta, amp)
    fd_eta = (_loss(model, eta + h, amp) - _loss(model, eta - h, amp)) / (2 * h)
    fd_amp = (_loss(model, eta, amp + h) - _loss(model, eta, amp - h)) / (2 * h)
    # Central differences of a quadratic in eta and R: exact up to float64 rounding of
    # the loss (~1e-16 / 1e-6 ~ 1e-10 relative); 1e-6 leaves room.
    np.testing.assert_allclose(float(g_eta), float(fd_eta), rtol=1e-6)
    np.testing.assert_allclose(float(g_amp), float(fd_amp), rtol=1e-6)
    assert abs(float(g_eta)) > 1e-3


def test_a_missing_modulator_raises_at_build_and_at_simulate():
    rule = _rule(modulator="reward")
    with pytest.raises(ValueError, match="reads the modulator 'reward'.*supplies none"):
        _model(rule, [])
    wrong = nj.inputs.Modulator("dopamine", lambda t: 1.0)
    with pytest.raises(ValueError, match=r"modulator 'reward'.*\['dopamine'\]"):
        _model(rule, [wrong])
    model = _model(rule, [nj.inputs.Modulator("reward", lambda t: 1.0)])
    stripped = eqx.tree_at(lambda m: m.modulators, model, ())
    with pytest.raises(ValueError, match="reads the modulator 'reward'"):
        nj.simulate(stripped, 10.0, DT, key=jax.random.key(0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(eta=-1.0), r"eta \[1/ms\].*\[0, inf\)"),
    (dict(tau_e=0.0), r"tau_e \[ms\].*\(0, inf\)"),
    (dict(a_plus=-0.1), r"a_plus \[weight units\]"),
    (dict(w_max=0.0), r"w_max \[weight units\].*\(0, inf\)"),
    (dict(baseline=np.nan), r"baseline \[modulator units\]"),
    (dict(traces="all"), "traces must be one of"),
    (dict(modulator=""), "modulator must be the name"),
])
def test_bad_parameters_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _rule(**kwargs)


def test_bad_modulators_raise_clear_errors():
    pops = [nj.Population("pre", 1, _trains([1.0]))]
    with pytest.raises(ValueError, match="signal must be callable"):
        nj.inputs.Modulator("dopamine", 1.0)
    with pytest.raises(ValueError, match="reads unknown population 'nope'"):
        nj.Network(pops, modulators=[nj.inputs.Modulator("d", lambda t, s: s, source="nope")])
    with pytest.raises(ValueError, match="names must be unique"):
        nj.Network(pops, modulators=[nj.inputs.Modulator("d", lambda t: 0.0)] * 2)
    with pytest.raises(ValueError, match="must be nj.inputs.Modulator"):
        nj.Network(pops, modulators=[lambda t: 0.0])
    with pytest.raises(ValueError, match=r"Pulses duration \[ms\]"):
        nj.inputs.Pulses([1.0], 1.0, 0.0)
    with pytest.raises(ValueError, match="too large for RewardModulated tau_plus"):
        nj.simulate(_model(_rule(tau_plus=0.05), [nj.inputs.Modulator("dopamine", lambda t: 0.0)]),
                    1.0, DT, key=jax.random.key(0))
