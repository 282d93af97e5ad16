"""PairSTDP: the exponential window (REFERENCES §10) for single pairs, trace variants,
weight dependence and bounds, dense == sparse, the Song-Abbott bimodal distribution,
transforms, gradients and bad parameters."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.plasticity import PairSTDP

DT = 0.1  # [ms]
STEPS = 1500
W0, W_MAX = 0.5, 1.0  # [pA·ms]


def _trains(pre_times, post_times, n_pre=1, n_post=1):
    pre = nj.inputs.SpikeTrains.from_times(pre_times, np.zeros(len(pre_times), int), n_pre, STEPS, DT)
    post = nj.inputs.SpikeTrains.from_times(post_times, np.zeros(len(post_times), int), n_post, STEPS, DT)
    return pre, post


def _model(rule, pre_times=(50.0,), post_times=(60.0,), layout=None, weight=W0):
    pre, post = _trains(pre_times, post_times)
    proj = nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=weight,
                         layout=layout, plasticity=rule)
    net = nj.Network([nj.Population("pre", 1, pre), nj.Population("post", 1, post)], [proj])
    return net.build(jax.random.key(0))


def _final_weight(model, record=None, truncate=None):
    res = nj.simulate(model, STEPS * DT, DT, key=jax.random.key(0), truncate=truncate,
                      record=record or nj.Record(spikes=()))
    return model.plastic_weights(res.state, "pre->post").ravel()[0], res


def _with_spikes(model, pre_times, post_times):
    """`model` replaying other spike times (same shapes: no recompilation)."""
    pre, post = _trains(pre_times, post_times)
    return eqx.tree_at(lambda m: (m.populations[0].neuron.spikes, m.populations[1].neuron.spikes),
                       model, (pre.spikes, post.spikes))


A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS = 0.01, 0.012, 17.0, 34.0
DELTAS = [-60.0, -20.0, -5.0, -0.5, 0.0, 0.5, 5.0, 20.0, 60.0]  # t_post - t_pre [ms]


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")])
def test_single_pair_weight_change_is_the_exponential_window(layout):
    rule = PairSTDP(a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU_PLUS, tau_minus=TAU_MINUS, w_max=W_MAX)
    model = _model(rule, layout=layout)
    for delta in DELTAS:
        m = _with_spikes(model, [80.0], [80.0 + delta])
        dw = float(_final_weight(m)[0]) - W0
        expected = A_PLUS * np.exp(-delta / TAU_PLUS) if delta >= 0 else -A_MINUS * np.exp(delta / TAU_MINUS)
        # Traces decay by exp(-dt/tau) per step: |dt| / dt products of one rounded factor,
        # a relative error of a few 1e-14 at most; 1e-12 is "tight" with room.
        np.testing.assert_allclose(dw, expected, rtol=1e-12, atol=1e-15)


def test_multiplicative_window_scales_with_distance_to_the_bounds():
    rule = PairSTDP(a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU_PLUS, tau_minus=TAU_MINUS,
                    w_max=W_MAX, weight_dependence="multiplicative")
    model = _model(rule, weight=0.25)
    for delta in (-10.0, 10.0):
        dw = float(_final_weight(_with_spikes(model, [50.0], [50.0 + delta]))[0]) - 0.25
        expected = (A_PLUS * (1 - 0.25 / W_MAX) * np.exp(-delta / TAU_PLUS) if delta > 0
                    else -A_MINUS * (0.25 / W_MAX) * np.exp(delta / TAU_MINUS))
        np.testing.assert_allclose(dw, expected, rtol=1e-12)  # as in the additive window


@pytest.mark.parametrize("traces", ["all_to_all", "nearest"])
def test_all_to_all_traces_sum_pairs_nearest_takes_the_latest(traces):
    rule = PairSTDP(a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU_PLUS, tau_minus=TAU_MINUS,
                    w_max=W_MAX, traces=traces)
    model = _with_spikes(_model(rule), [40.0, 50.0], [60.0])
    dw = float(_final_weight(model)[0]) - W0
    pairs = np.exp(-10.0 / TAU_PLUS) + (np.exp(-20.0 / TAU_PLUS) if traces == "all_to_all" else 0.0)
    np.testing.assert_allclose(dw, A_PLUS * pairs, rtol=1e-12)


def test_weights_stay_within_the_bounds():
    pre_times = np.arange(10.0, 140.0, 5.0)
    # Strong potentiation: post 1 ms after every pre spike drives w to w_max, not past it.
    up = _with_spikes(_model(PairSTDP(a_plus=0.3, a_minus=0.0, w_max=W_MAX)), pre_times, pre_times + 1.0)
    # Strong depression: post 1 ms before every pre spike drives w to 0, not below.
    down = _with_spikes(_model(PairSTDP(a_plus=0.0, a_minus=0.3, w_max=W_MAX)), pre_times, pre_times - 1.0)
    rec = nj.Record(spikes=(), weights=["pre->post"], mean_weights=["pre->post"], every=1.0)
    w_up, res_up = _final_weight(up, rec)
    w_down, res_down = _final_weight(down, rec)
    assert float(w_up) == W_MAX and float(w_down) == 0.0
    for res in (res_up, res_down):
        traj = np.asarray(res.weights["pre->post"])
        assert traj.shape == (STEPS // 10, 1, 1)
        assert traj.min() >= 0.0 and traj.max() <= W_MAX
        np.testing.assert_array_equal(np.asarray(res.weights["pre->post.mean"]), traj[:, 0, 0])


def _poisson_net(rule, layout, static=False):
    n_pre, n_post = 40, 10
    pre = nj.inputs.PoissonPopulation(rate=40.0)
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=-50.0, v_reset=-65.0, t_ref=2.0)
    proj = nj.Projection("in", "out", nj.connectivity.FixedProbability(0.5), weight=nj.Uniform(0.0, 1.0),
                         synapse=nj.synapses.Exponential(5.0), receptor=nj.synapses.Conductance(0.0),
                         layout=layout, plasticity=None if static else rule)
    return nj.Network([nj.Population("in", n_pre, pre), nj.Population("out", n_post, lif)], [proj],
                      inputs=[nj.inputs.Constant("out", amplitude=120.0)]).build(jax.random.key(3))


def _run(model, t=300.0):
    return nj.simulate(model, t, DT, key=jax.random.key(4), record=nj.Record(spikes=["out"]))


@pytest.mark.parametrize("kernel", ["loop", "buffer", pytest.param("native", marks=pytest.mark.native)])
def test_dense_and_sparse_layouts_learn_the_same_weights(kernel):
    # Every propagation kernel delivers the plastic weights (one deliver path).
    rule = PairSTDP(a_plus=0.02, a_minus=0.021, w_max=1.0)
    dense = _poisson_net(rule, nj.connectivity.Dense())
    sparse = _poisson_net(rule, nj.connectivity.Sparse(kernel=kernel))
    rd, rs = _run(dense), _run(sparse)
    np.testing.assert_array_equal(rd.spikes["out"], rs.spikes["out"])
    wd = np.asarray(dense.plastic_weights(rd.state, "in->out"))  # (post, pre)
    ws = sparse.projection("in->out").weights
    ws_dense = np.asarray(eqx_replace_weights(ws, sparse.plastic_weights(rs.state, "in->out")).matrix())
    # Same arithmetic per synapse; the sums delivered differ only in the order of
    # additions (float64), so spikes agree and weights to rounding.
    np.testing.assert_allclose(wd, ws_dense, rtol=1e-12, atol=1e-14)
    assert not np.allclose(wd, np.asarray(dense.projection("in->out").weights.matrix()))


def eqx_replace_weights(container, w):
    return eqx.tree_at(lambda c: c.weights, container, w)


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")])
def test_a_rule_that_changes_nothing_gives_the_static_result(layout):
    rule = PairSTDP(a_plus=0.0, a_minus=0.0, w_max=1.0)
    plastic, static = _poisson_net(rule, layout), _poisson_net(rule, layout, static=True)
    rp, rs = _run(plastic), _run(static)
    np.testing.assert_array_equal(rp.spikes["out"], rs.spikes["out"])
    np.testing.assert_allclose(rp.state.neurons[1].v, rs.state.neurons[1].v, rtol=1e-12)
    assert rs.state.plastic == (None,)


def test_jit_equals_eager():
    rule = PairSTDP(a_plus=0.02, a_minus=0.021, w_max=1.0)
    model = _poisson_net(rule, nj.connectivity.Sparse(kernel="loop"))
    res = _run(model, 30.0)
    with jax.disable_jit():
        eager = _run(model, 30.0)
    np.testing.assert_array_equal(res.spikes["out"], eager.spikes["out"])
    np.testing.assert_allclose(res.state.plastic[0].weights, eager.state.plastic[0].weights, rtol=1e-12)


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")])
def test_vmap_over_rule_parameters_equals_a_loop(layout):
    model = _with_spikes(_model(PairSTDP(a_plus=A_PLUS, a_minus=A_MINUS, w_max=W_MAX), layout=layout),
                         [20.0, 50.0, 90.0], [30.0, 45.0, 100.0])

    def final(a_plus, tau_minus):
        m = model.replace({"pre->post.plasticity.a_plus": a_plus,
                           "pre->post.plasticity.tau_minus": tau_minus})
        return _final_weight(m)[0]

    a = jnp.array([0.001, 0.01, 0.05])
    tau = jnp.array([10.0, 20.0, 40.0])
    np.testing.assert_allclose(jax.vmap(final)(a, tau), [final(x, y) for x, y in zip(a, tau)], rtol=1e-14)


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")])
def test_gradient_wrt_rule_parameters_matches_finite_differences(layout):
    # Given spike trains and weights inside the bounds: the final weight is a smooth
    # function of the amplitudes, time constants and the initial weight. The sparse
    # layout's event-driven update has a custom VJP (the dense formula's): checked here.
    model = _with_spikes(_model(PairSTDP(a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU_PLUS,
                                         tau_minus=TAU_MINUS, w_max=W_MAX), layout=layout),
                         [20.0, 50.0, 90.0], [30.0, 45.0, 100.0])
    names = ["pre->post.plasticity.a_plus", "pre->post.plasticity.a_minus",
             "pre->post.plasticity.tau_plus", "pre->post.plasticity.tau_minus", "pre->post.weight"]
    x0 = [jnp.asarray(v) for v in (A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS, W0)]

    def loss(xs):
        return _final_weight(model.replace(dict(zip(names, xs))))[0] ** 2

    grads = jax.grad(loss)(x0)
    for i, x in enumerate(x0):
        h = 1e-4 * float(x)
        up = list(x0); up[i] = x + h
        down = list(x0); down[i] = x - h
        fd = (loss(up) - loss(down)) / (2 * h)
        # float64 central differences, h = 1e-4 relative: O(h^2) truncation.
        np.testing.assert_allclose(grads[i], fd, rtol=1e-6)
        assert grads[i] != 0


@pytest.mark.parametrize("layout", [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop"),
                                    nj.connectivity.Sparse()])
def test_truncated_bptt_keeps_the_gradient_through_the_plastic_weights(layout):
    # Given spike trains, the amplitudes and the initial weight reach the final weight
    # only through the weights' own updates, across every window: truncated BPTT
    # (`truncate=5.0`, 30 windows) must give the full gradient, d w_end / d w0 = 1 (no
    # bound reached) among them. Were the weights cut at each window like the rest of
    # the state, only the last window's updates would count (d w_end / d w0 = 0). The
    # time constants act through the traces, which truncation does cut: not compared.
    model = _with_spikes(_model(PairSTDP(a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU_PLUS,
                                         tau_minus=TAU_MINUS, w_max=W_MAX), layout=layout),
                         [20.0, 50.0, 90.0, 121.0], [30.0, 45.0, 100.0, 120.0])
    names = ["pre->post.plasticity.a_plus", "pre->post.plasticity.a_minus", "pre->post.weight"]
    x0 = {n: jnp.asarray(v) for n, v in zip(names, (A_PLUS, A_MINUS, W0))}

    def final_weight(params, truncate):
        return _final_weight(model.replace(params), truncate=truncate)[0]

    full = jax.grad(final_weight)(x0, None)
    truncated = jax.grad(final_weight)(x0, 5.0)
    for name in names:
        # The same float64 operations on the weights' path, with and without the cuts.
        np.testing.assert_allclose(truncated[name], full[name], rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(truncated["pre->post.weight"], 1.0, rtol=1e-12)
    assert truncated["pre->post.plasticity.a_plus"] > 0 > truncated["pre->post.plasticity.a_minus"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(tau_plus=-1.0), r"tau_plus \[ms\] must lie in \(0, inf\)"),
    (dict(tau_minus=0.0), r"tau_minus \[ms\] must lie in \(0, inf\)"),
    (dict(a_plus=-0.1), r"a_plus \[weight units\] must lie in \[0, inf\)"),
    (dict(a_minus=-0.1), r"a_minus \[weight units\] must lie in \[0, inf\)"),
    (dict(w_max=0.0), r"w_max \[weight units\] must lie in \(0, inf\)"),
    (dict(weight_dependence="log"), r"weight_dependence must be one of"),
    (dict(traces="all"), r"traces must be one of"),
])
def test_bad_parameters_raise_naming_parameter_unit_and_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PairSTDP(**kwargs)


def test_initial_weights_outside_the_bounds_raise():
    with pytest.raises(ValueError, match=r"initial weights must lie in .*\[0, w_max\] = \[0, 1\]"):
        _model(PairSTDP(w_max=1.0), weight=1.5)


def test_a_rule_on_procedural_connectivity_raises():
    with pytest.raises(ValueError, match="Procedural connectivity"):
        nj.Projection("pre", "post", nj.connectivity.Procedural(out_degree=1), plasticity=PairSTDP())


def test_a_non_rule_raises_and_recording_static_weights_raises():
    with pytest.raises(ValueError, match="plasticity must be a plasticity rule"):
        nj.Projection("pre", "post", nj.connectivity.AllToAll(), plasticity="stdp")
    model = _model(None)
    with pytest.raises(ValueError, match="has no plasticity"):
        nj.simulate(model, 10.0, DT, key=jax.random.key(0), record=nj.Record(weights=["pre->post"]))


def test_song_abbott_weights_move_to_the_bounds():
    # REFERENCES §10 (Song, Miller & Abbott 2000 as in Brian2's STDP example): 1000
    # Poisson inputs at 15 Hz onto one LIF, additive STDP, A+ = 0.01 g_max, A- = 1.05 A+.
    # The full 100 s run and the published acceptance (> 40 % within 10 % of the bounds,
    # mean 0.44 +- 0.03) are in tutorials/stdp_and_stp.py; here 20 s, where the
    # uniform initial weights (20 % within 10 % of the bounds, SD 1.3 % for 1000
    # synapses) have already moved out: > 25 % near the bounds is ~4 SD past uniform.
    g_l, w_max = 10.0, 0.01 * 10.0 * 60.0  # [nS], [pA] = g_max g_l (E_e - v_r)
    lif = nj.neurons.LIF(c_m=100.0, g_l=g_l, e_l=-74.0, v_th=-54.0, v_reset=-60.0, t_ref=0.0)
    a = 0.01 * w_max
    net = nj.Network(
        [nj.Population("in", 1000, nj.inputs.PoissonPopulation(rate=15.0)),
         nj.Population("out", 1, lif, initial={"v": -60.0})],
        [nj.Projection("in", "out", nj.connectivity.AllToAll(), weight=nj.Uniform(0.0, w_max),
                       synapse=nj.synapses.Exponential(5.0), receptor=nj.synapses.Current(),
                       plasticity=PairSTDP(a_plus=a, a_minus=1.05 * a, tau_plus=20.0,
                                           tau_minus=20.0, w_max=w_max))])
    model = net.build(jax.random.key(0))
    res = nj.simulate(model, 20_000.0, DT, key=jax.random.key(1),
                      record=nj.Record(spikes=["out"], mean_weights=["in->out"], every=1000.0))
    w0 = np.asarray(model.plastic_weights(model.init(jax.random.key(1), DT), "in->out")).ravel() / w_max
    w = np.asarray(model.plastic_weights(res.state, "in->out")).ravel() / w_max
    near0, near = np.mean((w0 < 0.1) | (w0 > 0.9)), np.mean((w < 0.1) | (w > 0.9))
    assert near0 < 0.23 and near > 0.25, (near0, near)
    assert w.min() >= 0.0 and w.max() <= 1.0
    assert np.var(w) > np.var(w0)  # spreading toward the bounds
    # Depression dominates (A- tau- > A+ tau+), so the mean weight falls from ~0.5.
    assert float(res.weights["in->out.mean"][-1]) / w_max < float(np.mean(w0))


@pytest.mark.native
@pytest.mark.parametrize("mult", [False, True])
def test_native_sparse_update_equals_the_pure_jax_loop(mult):
    # The compiled pair-STDP update (kernel "native"/"auto" on CPU) against the pure-JAX
    # loops that define it: graded pre amplitudes, negative a_- (InhibitorySTDP's use),
    # clipping at both bounds, several steps and a vmapped batch of parameters.
    from neurojax import _native
    from neurojax.connectivity.weights import to_ell, transposed_index
    from neurojax.plasticity.stdp import _sparse_update

    # The compiled library is built from this checkout's events.cc, so it must have the
    # update; a library built from older source fails here (rebuild: pip install -e .).
    assert _native.has(_native.PAIR_STDP), f"no compiled pair-STDP update ({_native.status()[1]})"
    rng = np.random.default_rng(1)
    n_pre, n_post = 150, 120
    pre_i, post_i = np.nonzero(rng.random((n_pre, n_post)) < 0.15)
    targets, packed = to_ell(pre_i, post_i, n_pre, n_post, {"w": rng.uniform(0, 1, pre_i.size)})
    index = jnp.asarray(transposed_index(targets, n_post))
    targets = jnp.asarray(targets)

    def update(kernel, w, xs, params):
        x_pre, x_post, pre, post = xs
        return _sparse_update(w, x_pre, x_post, pre, post, params, targets, index, mult, 16,
                              kernel)

    w_native = w_loop = jnp.asarray(packed["w"], jnp.float32)
    for a_minus in (0.3, -0.3, 0.3):
        xs = (jnp.asarray(rng.random(n_pre) * 3, jnp.float32),
              jnp.asarray(rng.random(n_post) * 3, jnp.float32),
              jnp.asarray((rng.random(n_pre) < 0.2) * rng.choice([1.0, 0.6], n_pre), jnp.float32),
              jnp.asarray(rng.random(n_post) < 0.2, jnp.float32))
        params = (jnp.float32(0.4), jnp.float32(a_minus), jnp.float32(1.0))
        w_native = jax.jit(update, static_argnums=0)("native", w_native, xs, params)
        w_loop = jax.jit(update, static_argnums=0)("loop", w_loop, xs, params)
        np.testing.assert_allclose(w_native, w_loop, rtol=1e-6, atol=1e-7)
    assert np.any(np.asarray(w_native) == 0.0) and np.any(np.asarray(w_native) == 1.0)
    assert np.any(np.asarray(w_native) != packed["w"].astype(np.float32))

    batch = (jnp.array([0.4, 0.1], jnp.float32), jnp.array([0.3, 0.05], jnp.float32),
             jnp.array([1.0, 2.0], jnp.float32))
    ws = jnp.stack([w_loop, 0.5 * w_loop])
    swept = {k: jax.vmap(lambda w, p, k=k: update(k, w, xs, p))(ws, batch) for k in ("native", "loop")}
    np.testing.assert_allclose(swept["native"], swept["loop"], rtol=1e-6, atol=1e-7)


def _host_has_fma() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " fma " in f.read()
    except OSError:
        return False


@pytest.mark.native
@pytest.mark.parametrize("traces", ["all_to_all", "nearest"])
@pytest.mark.parametrize("mult", [False, True])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_native_step_with_traces_equals_the_reference(dtype, mult, traces):
    # PairSTDP's whole step on a sparse projection as one compiled call
    # (`NeurojaxPairStdpStep`: traces decayed and bumped in the kernel, weights and traces
    # in place) against the reference step that defines it (`_sparse_step_reference`:
    # traces in XLA, then the update). With the compiled update in the reference the two
    # round identically where XLA fuses multiply-adds (hosts with FMA): bit for bit; the
    # pure-JAX loop agrees to rounding. Also a vmapped batch, and the gradient (the
    # reference's, through the custom VJP).
    from neurojax import _native
    from neurojax.connectivity.weights import to_ell, transposed_index
    from neurojax.plasticity.stdp import _sparse_step, _sparse_step_reference

    assert _native.has(_native.PAIR_STDP_STEP), f"no compiled STDP step ({_native.status()[1]})"
    rng = np.random.default_rng(2)
    n_pre, n_post = 150, 120
    pre_i, post_i = np.nonzero(rng.random((n_pre, n_post)) < 0.15)
    targets, packed = to_ell(pre_i, post_i, n_pre, n_post, {"w": rng.uniform(0, 1, pre_i.size)})
    index = jnp.asarray(transposed_index(targets, n_post))
    targets = jnp.asarray(targets)

    def step(kernel, state, spikes, params, reference=False):
        f = _sparse_step_reference if reference else _sparse_step
        return f(*state, *spikes, params, targets, index, 0.1, mult, traces, 16, kernel)

    w0 = jnp.asarray(packed["w"], dtype)
    init = (w0, jnp.asarray(rng.random(n_pre), dtype), jnp.asarray(rng.random(n_post), dtype))
    states = {"native": init, "reference": init, "loop": init}
    exact = _host_has_fma()
    for a_minus in (0.3, -0.3, 0.3):
        spikes = (jnp.asarray((rng.random(n_pre) < 0.2) * rng.choice([1.0, 0.6], n_pre), dtype),
                  jnp.asarray(rng.random(n_post) < 0.2, dtype))
        params = tuple(jnp.asarray(p, dtype) for p in (0.4, a_minus, 1.0, 17.0, 34.0))
        for kernel in states:
            states[kernel] = jax.jit(step, static_argnums=(0, 4))(
                "loop" if kernel == "loop" else "native", states[kernel], spikes, params,
                kernel == "reference")
        for got, want, loop in zip(states["native"], states["reference"], states["loop"]):
            assert got.dtype == dtype
            if exact:
                np.testing.assert_array_equal(got, want)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(got, loop, rtol=1e-6, atol=1e-7)
    w = np.asarray(states["native"][0])
    assert np.any(w == 0.0) and np.any(w == 1.0) and np.any(w != packed["w"].astype(dtype))

    batch = tuple(jnp.asarray(p, dtype) for p in ([0.4, 0.1], [0.3, 0.05], [1.0, 2.0], [17.0, 5.0],
                                                  [34.0, 8.0]))
    stacked = tuple(jnp.stack([x, 0.5 * x]) for x in states["native"])
    swept = {k: jax.vmap(lambda s, p, k=k: step(k, s, spikes, p))(stacked, batch)
             for k in ("native", "loop")}
    for got, want in zip(swept["native"], swept["loop"]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)

    def loss(kernel, state, params, reference=False):
        w, x_pre, x_post = step(kernel, state, spikes, params, reference)
        return jnp.sum(w ** 2) + jnp.sum(x_pre * w[:, 0]) + jnp.sum(x_post ** 2)

    g_native = jax.jit(jax.grad(loss, argnums=(1, 2)), static_argnums=(0, 3))(
        "native", states["native"], params)
    g_reference = jax.jit(jax.grad(loss, argnums=(1, 2)), static_argnums=(0, 3))(
        "native", states["native"], params, True)
    for got, want in zip(jax.tree.leaves(g_native), jax.tree.leaves(g_reference)):
        np.testing.assert_array_equal(got, want)
