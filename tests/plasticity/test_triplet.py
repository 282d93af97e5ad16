"""TripletSTDP: the pairing-protocol table and the Poisson drift (BCM threshold) of
REFERENCES §10, nearest-spike traces, bounds, dense == sparse, jit, vmap, gradients and
bad parameters."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.plasticity import TripletSTDP

# ----------------------------------------------------------------------------------------
# Pairing protocol (REFERENCES §10): 60 pairs, dt = +-10 ms, f = 0.1, 1, 10, 20 Hz.

FREQS = (0.1, 1.0, 10.0, 20.0)  # [Hz]
DELTAS = (10.0, -10.0)  # t_post - t_pre [ms]
N_PAIRS, T0 = 60, 100.0  # pairs, time of the first pair [ms]
PAIR_DT = 10.0  # [ms]: every spike time (multiples of 10 ms) falls on the grid
# REFERENCES §10 table: total dw for (minimal, +10), (minimal, -10), (full, +10), (full, -10).
TABLE = {0.1: (0.00000, -0.31662, 0.00000, -0.31216), 1.0: (0.00003, -0.31662, 0.00007, -0.31216),
         10.0: (0.11864, -0.33221, 0.13205, -0.33362), 20.0: (0.22780, -0.34173, 0.24696, -0.35162)}


def _pairing_times(f, delta):
    t_pre = T0 + np.arange(N_PAIRS) * 1000.0 / f
    return t_pre, t_pre + delta


def _reference_dw(rule, pre_times, post_times):
    """Independent event-by-event evaluation of the triplet rule in continuous time
    (float64, exact exponentials between events; no two events coincide here)."""
    p = {k: float(getattr(rule, k)) for k in ("a2_plus", "a3_plus", "a2_minus", "a3_minus",
                                               "tau_plus", "tau_x", "tau_minus", "tau_y")}
    events = sorted([(t, 0) for t in pre_times] + [(t, 1) for t in post_times])
    r1 = r2 = o1 = o2 = 0.0
    w, last = 0.0, events[0][0]
    for t, kind in events:
        gap = t - last
        r1 *= math.exp(-gap / p["tau_plus"]); r2 *= math.exp(-gap / p["tau_x"])
        o1 *= math.exp(-gap / p["tau_minus"]); o2 *= math.exp(-gap / p["tau_y"])
        last = t
        if kind == 0:
            w -= o1 * (p["a2_minus"] + p["a3_minus"] * r2)
            r1 += 1.0; r2 += 1.0
        else:
            w += r1 * (p["a2_plus"] + p["a3_plus"] * o2)
            o1 += 1.0; o2 += 1.0
    return w


def test_pairing_protocol_table():
    # One network, 8 independent synapses (pre i -> post i) per parameter set: each
    # synapse runs one (frequency, timing) case; both sets in the same run.
    cases = [(f, d) for f in FREQS for d in DELTAS]
    n = len(cases)
    steps = int(round((T0 + (N_PAIRS - 1) * 1000.0 / 0.1 + 20.0) / PAIR_DT)) + 1
    pre_t, pre_i, post_t, post_i = [], [], [], []
    for i, (f, d) in enumerate(cases):
        tp, tq = _pairing_times(f, d)
        pre_t += list(tp); pre_i += [i] * N_PAIRS
        post_t += list(tq); post_i += [i] * N_PAIRS
    pre = nj.inputs.SpikeTrains.from_times(pre_t, np.array(pre_i), n, steps, PAIR_DT)
    post = nj.inputs.SpikeTrains.from_times(post_t, np.array(post_i), n, steps, PAIR_DT)
    rules = {"minimal": TripletSTDP.visual_cortex_minimal(), "full": TripletSTDP.visual_cortex_full()}
    w0 = 1.0  # [weight units]; w_max = inf and w stays > 0.6: no bound is ever active
    projs = [nj.Projection("pre", "post", nj.connectivity.FromMatrix(np.eye(n)), weight=w0,
                           layout=nj.connectivity.Dense(), plasticity=rule, name=name) for name, rule in rules.items()]
    net = nj.Network([nj.Population("pre", n, pre), nj.Population("post", n, post)], projs)
    model = net.build(jax.random.key(0))
    res = nj.simulate(model, steps * PAIR_DT, PAIR_DT, key=jax.random.key(0), record=nj.Record(spikes=()))
    for col, name in enumerate(rules):
        dw = np.diag(np.asarray(model.plastic_weights(res.state, name))) - w0
        for i, (f, d) in enumerate(cases):
            ref = _reference_dw(rules[name], *_pairing_times(f, d))
            # Event-exact on the grid (exact per-step decay factors, float64): agrees with
            # the continuous-time event evaluation to rounding; 1e-6 relative as in §10
            # (atol for the 0.1 Hz "+10" cases, dw ~ 1e-8, set by A2+ = 5e-10 or 0).
            np.testing.assert_allclose(dw[i], ref, rtol=1e-6, atol=1e-12)
            # The published table, to its 5 printed decimals.
            table = TABLE[f][2 * col + (0 if d > 0 else 1)]
            assert abs(dw[i] - table) <= 5e-6 + 1e-9, (name, f, d, dw[i], table)
    # Sjöström et al. 2001: no LTP at low frequency, LTP at 20 Hz for pre-before-post.
    dw_min = np.diag(np.asarray(model.plastic_weights(res.state, "minimal"))) - w0
    assert dw_min[0] < 1e-6 and dw_min[6] > 0.2


# ----------------------------------------------------------------------------------------
# Poisson drift (REFERENCES §10): independent Poisson trains, minimal model.

def _drift(rule, rho_pre, rho_post):
    """<dw/dt> [weight units / s] for independent Poisson trains at rates [Hz]."""
    s = 1e-3  # [s/ms]
    a2p, a3p, a2m, a3m = (float(getattr(rule, k)) for k in ("a2_plus", "a3_plus", "a2_minus", "a3_minus"))
    tp, tm, tx, ty = (float(getattr(rule, k)) * s for k in ("tau_plus", "tau_minus", "tau_x", "tau_y"))
    return rho_pre * rho_post * (a2p * tp - a2m * tm + a3p * tp * ty * rho_post - a3m * tm * tx * rho_pre)


def test_minimal_model_bcm_threshold():
    rule = TripletSTDP.visual_cortex_minimal()
    theta = float(rule.a2_minus * rule.tau_minus / (rule.a3_plus * rule.tau_plus * rule.tau_y)) * 1e3
    assert abs(theta - 19.22) < 5e-3  # §10: 19.22 Hz, to its printed digits
    np.testing.assert_allclose(_drift(rule, 10.0, 5.0), -8.8513e-3, rtol=1e-4)  # §10 analytic
    np.testing.assert_allclose(_drift(rule, 10.0, 40.0), 0.10347, rtol=1e-4)


def test_poisson_drift_matches_the_mean_field_formula():
    # 2 x 500 independent synapses (pre i -> post i; pre at 10 Hz, post at 5 Hz for the
    # first half, 40 Hz for the second), dt = 0.1 ms. dw is measured from t = 0.5 s
    # (after the traces' ~tau_y = 114 ms start-up) to 3.5 s, so E[dw] = drift * 3 s.
    n, dt, t_burn, t_end = 500, 0.1, 500.0, 3500.0
    rule = TripletSTDP.visual_cortex_minimal()
    rates = np.r_[np.full(n, 5.0), np.full(n, 40.0)]
    net = nj.Network(
        [nj.Population("pre", 2 * n, nj.inputs.PoissonPopulation(rate=10.0)),
         nj.Population("post", 2 * n, nj.inputs.PoissonPopulation(rate=rates))],
        [nj.Projection("pre", "post", nj.connectivity.FromMatrix(np.eye(2 * n)), weight=1.0,
                       layout=nj.connectivity.Sparse(kernel="loop"), plasticity=rule)])
    model = net.build(jax.random.key(0))
    res = nj.simulate(model, t_end, dt, key=jax.random.key(11),
                      record=nj.Record(spikes=(), weights=["pre->post"], every=t_burn))
    w = np.asarray(res.weights["pre->post"])[:, :, 0]  # (blocks, pre) rows: synapse i at row i
    dw = (w[-1] - w[0]) / ((t_end - t_burn) * 1e-3)  # [weight units / s]
    for half, rho_post in ((slice(0, n), 5.0), (slice(n, 2 * n), 40.0)):
        mean, sem = dw[half].mean(), dw[half].std(ddof=1) / np.sqrt(n)
        expected = _drift(rule, 10.0, rho_post)
        # Monte Carlo: 3 SEM (SEM ~2-3 % of the drift here). The grid's own bias is
        # O(dt / 2 tau_plus) = 0.3 %, and the per-step Bernoulli trains (p <= 0.004)
        # match Poisson rates to 0.2 %: both far inside it.
        assert abs(mean - expected) < 3 * sem, (rho_post, mean, expected, sem)
        assert sem < 0.1 * abs(expected)  # the test resolves the drift's size and sign


# ----------------------------------------------------------------------------------------
# Small given spike trains: nearest traces, bounds, layouts, transforms, gradients.

DT, STEPS, W0 = 0.1, 1500, 0.5


def _model(rule, pre_times, post_times, layout=None, weight=W0):
    pre = nj.inputs.SpikeTrains.from_times(pre_times, np.zeros(len(pre_times), int), 1, STEPS, DT)
    post = nj.inputs.SpikeTrains.from_times(post_times, np.zeros(len(post_times), int), 1, STEPS, DT)
    proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=weight, layout=layout,
                         plasticity=rule)
    net = nj.Network([nj.Population("pre", 1, pre), nj.Population("post", 1, post)], [proj])
    return net.build(jax.random.key(0))


def _final(model):
    res = nj.simulate(model, STEPS * DT, DT, key=jax.random.key(0), record=nj.Record(spikes=()))
    return model.plastic_weights(res.state, "pre->post").ravel()[0]


PRE, POST = [20.0, 50.0, 60.0, 90.0], [30.0, 45.0, 70.0, 80.0, 100.0]
PARAMS = dict(a2_plus=0.01, a3_plus=0.02, a2_minus=0.012, a3_minus=0.005, tau_plus=17.0,
              tau_x=80.0, tau_minus=34.0, tau_y=100.0, w_max=1.0)


@pytest.mark.parametrize("traces", ["all_to_all", "nearest"])
def test_nearest_and_all_to_all_traces_against_an_event_reference(traces):
    rule = TripletSTDP(**PARAMS, traces=traces)
    dw = float(_final(_model(rule, PRE, POST))) - W0
    # Event reference; nearest: every trace reset to 1 at its neuron's spike.
    p = PARAMS
    events = sorted([(t, 0) for t in PRE] + [(t, 1) for t in POST])
    tr = dict(r1=0.0, r2=0.0, o1=0.0, o2=0.0)
    taus = dict(r1=p["tau_plus"], r2=p["tau_x"], o1=p["tau_minus"], o2=p["tau_y"])
    ref, last = 0.0, 0.0
    for t, kind in events:
        for k in tr:
            tr[k] *= math.exp(-(t - last) / taus[k])
        last = t
        bump = (lambda x: 1.0) if traces == "nearest" else (lambda x: x + 1.0)
        if kind == 0:
            ref -= tr["o1"] * (p["a2_minus"] + p["a3_minus"] * tr["r2"])
            tr["r1"], tr["r2"] = bump(tr["r1"]), bump(tr["r2"])
        else:
            ref += tr["r1"] * (p["a2_plus"] + p["a3_plus"] * tr["o2"])
            tr["o1"], tr["o2"] = bump(tr["o1"]), bump(tr["o2"])
    np.testing.assert_allclose(dw, ref, rtol=1e-12)  # exact decay factors, float64 rounding


def test_weights_stay_within_the_bounds():
    times = list(np.arange(10.0, 140.0, 5.0))
    up = _model(TripletSTDP(a2_plus=0.3, a3_plus=0.3, a2_minus=0.0, a3_minus=0.0, w_max=1.0),
                times, [t + 1.0 for t in times])
    down = _model(TripletSTDP(a2_plus=0.0, a3_plus=0.0, a2_minus=0.3, a3_minus=0.3, w_max=1.0),
                  times, [t - 1.0 for t in times])
    assert float(_final(up)) == 1.0 and float(_final(down)) == 0.0


def test_dense_and_sparse_layouts_learn_the_same_weights():
    n_pre, n_post = 20, 8
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=-50.0, v_reset=-65.0, t_ref=2.0)
    rule = TripletSTDP(**{**PARAMS, "a2_plus": 0.02, "a3_plus": 0.03})

    def build(layout):
        proj = nj.Projection("in", "out", nj.connectivity.FixedProbability(0.5),
                             weight=nj.Uniform(0.0, 1.0), synapse=nj.synapses.Exponential(5.0),
                             receptor=nj.synapses.Conductance(0.0), layout=layout, plasticity=rule)
        return nj.Network([nj.Population("in", n_pre, nj.inputs.PoissonPopulation(rate=40.0)),
                           nj.Population("out", n_post, lif)], [proj],
                          inputs=[nj.inputs.Constant("out", amplitude=120.0)]).build(jax.random.key(3))

    dense, sparse = build(nj.connectivity.Dense()), build(nj.connectivity.Sparse(kernel="loop"))
    run = lambda m: nj.simulate(m, 100.0, DT, key=jax.random.key(4), record=nj.Record(spikes=["out"]))
    rd, rs = run(dense), run(sparse)
    assert rs.spikes["out"].sum() > 0
    np.testing.assert_array_equal(rd.spikes["out"], rs.spikes["out"])
    ws = sparse.projection("in->out").weights
    ws_dense = eqx.tree_at(lambda c: c.weights, ws, sparse.plastic_weights(rs.state, "in->out")).matrix()
    wd = dense.plastic_weights(rd.state, "in->out")
    # Same arithmetic per synapse; delivered sums differ in addition order only.
    np.testing.assert_allclose(wd, ws_dense, rtol=1e-12, atol=1e-14)
    assert not np.allclose(wd, dense.projection("in->out").weights.matrix())


def test_jit_equals_eager_and_vmap_equals_a_loop():
    model = _model(TripletSTDP(**PARAMS), PRE, POST, layout=nj.connectivity.Sparse(kernel="loop"))
    # The rule's step on given spikes, eagerly (op by op) vs a jitted scan; the whole
    # network eagerly costs ~0.2 s per step, too slow for the suite. Dense layout (the
    # sparse one equals it: test_dense_and_sparse_layouts_learn_the_same_weights).
    rule = TripletSTDP(**PARAMS)
    structure = _model(rule, PRE, POST, layout=nj.connectivity.Dense()).projection("pre->post").weights
    pre = jnp.zeros((30, 1)).at[jnp.array([5, 15]), 0].set(1.0)
    post = jnp.zeros((30, 1)).at[jnp.array([10, 22, 27]), 0].set(1.0)

    def step(state, spikes):
        state, w = rule.step(state, spikes[0], spikes[1], None, None, DT, structure=structure)
        return state, w

    state0 = rule.init(structure, None)
    jitted = jax.jit(lambda s: jax.lax.scan(step, s, (pre, post))[1])(state0)
    with jax.disable_jit():
        state, eager = state0, []
        for k in range(30):
            state, w = step(state, (pre[k], post[k]))
            eager.append(w)
    assert float(jnp.abs(jitted[-1] - W0).max()) > 1e-3  # the spikes changed the weight
    np.testing.assert_allclose(jitted, jnp.stack(eager), rtol=1e-13)

    def final(a3_plus, tau_y):
        return _final(model.replace({"pre->post.plasticity.a3_plus": a3_plus,
                                     "pre->post.plasticity.tau_y": tau_y}))

    a, tau = jnp.array([0.0, 0.02, 0.05]), jnp.array([50.0, 100.0, 200.0])
    np.testing.assert_allclose(jax.vmap(final)(a, tau), [final(x, y) for x, y in zip(a, tau)], rtol=1e-13)


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")])
def test_gradient_wrt_triplet_parameters_matches_finite_differences(layout):
    # Given spike trains, weights inside the bounds throughout: the final weight is
    # smooth in the amplitudes and time constants.
    model = _model(TripletSTDP(**PARAMS), PRE, POST, layout=layout)
    names = ["pre->post.plasticity.a3_plus", "pre->post.plasticity.a3_minus",
             "pre->post.plasticity.tau_y"]
    x0 = [jnp.asarray(PARAMS[n.rsplit(".", 1)[1]]) for n in names]

    def loss(xs):
        return _final(model.replace(dict(zip(names, xs)))) ** 2

    grads = jax.grad(loss)(x0)
    for i, x in enumerate(x0):
        h = 1e-4 * float(x)
        up, down = list(x0), list(x0)
        up[i], down[i] = x + h, x - h
        fd = (loss(up) - loss(down)) / (2 * h)
        np.testing.assert_allclose(grads[i], fd, rtol=1e-6)  # float64, O(h^2) truncation
        assert grads[i] != 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(tau_plus=-1.0), r"tau_plus \[ms\] must lie in \(0, inf\)"),
    (dict(tau_x=0.0), r"tau_x \[ms\] must lie in \(0, inf\)"),
    (dict(tau_minus=-5.0), r"tau_minus \[ms\] must lie in \(0, inf\)"),
    (dict(tau_y=0.0), r"tau_y \[ms\] must lie in \(0, inf\)"),
    (dict(a3_plus=-0.1), r"a3_plus \[weight units\] must lie in \[0, inf\)"),
    (dict(a2_minus=-0.1), r"a2_minus \[weight units\] must lie in \[0, inf\)"),
    (dict(w_max=0.0), r"w_max \[weight units\] must lie in \(0, inf\)"),
    (dict(w_max=float("nan")), r"w_max \[weight units\] contains NaN"),
    (dict(traces="all"), r"traces must be one of"),
])
def test_bad_parameters_raise_naming_parameter_unit_and_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TripletSTDP(**kwargs)


def test_bad_values_set_later_and_initial_weights_outside_bounds_raise():
    model = _model(TripletSTDP(**PARAMS), PRE, POST)
    with pytest.raises(ValueError, match=r"TripletSTDP tau_y \[ms\] must lie in \(0, inf\)"):
        _final(model.replace({"pre->post.plasticity.tau_y": -1.0}))
    with pytest.raises(ValueError, match=r"dt \[ms\] = 0.1 is too large for TripletSTDP tau_x"):
        _final(model.replace({"pre->post.plasticity.tau_x": 0.05}))
    with pytest.raises(ValueError, match=r"initial weights must lie in .*\[0, w_max\] = \[0, 1\]"):
        _model(TripletSTDP(**PARAMS), PRE, POST, weight=1.5)
