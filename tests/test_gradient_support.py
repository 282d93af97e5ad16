"""The event-driven backward pass of sparse propagation (issue 16): with a compact-support
surrogate, the VJP visits only the rows in the presynaptic gradient support or active,
and every gradient w.r.t. parameters equals the dense-equivalent VJP's.

The reference is the same model with the same surrogate derivative but its support
hidden (`_FullSupport`), which makes the network pass `support=None`, i.e. the dense
VJP that touches every synapse."""

import dataclasses
import functools
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax._abstract import Drive
from neurojax.connectivity.weights import SparseWeights, to_ell
from neurojax.surrogate import AbstractSurrogate, FastSigmoid, Truncated

# As in tests/connectivity/test_weights.py; "native" needs the compiled kernel.
KERNELS = [pytest.param("native", marks=pytest.mark.native), "loop", "buffer"]
TRUNCATED = Truncated(FastSigmoid(slope=2.0, amplitude=0.3), width=1.0)  # support 1 mV


class _FullSupport(AbstractSurrogate):
    """`inner`'s derivative, bit for bit, with its support hidden (`None`)."""

    inner: AbstractSurrogate

    def derivative(self, x):
        return self.inner.derivative(x)

    @property
    def support(self):
        return None


# ------------------------------------------------------------------- the container VJP

N_PRE, N_POST, SLOTS, DT = 40, 25, 5, 0.1
STEP = jnp.asarray(7)


def _sparse(kernel, scalar, with_delays, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.random((N_POST, N_PRE)) < 0.2
    mask[:, :3] = False  # rows with no synapse
    post, pre = np.nonzero(mask)
    per_syn = {} if scalar else {"weights": rng.normal(1.0, 0.5, size=pre.size)}
    if with_delays:
        per_syn["delays"] = rng.uniform(0.1, 0.45, size=pre.size)  # 1-5 steps
    targets, packed = to_ell(pre, post, N_PRE, N_POST, per_syn)
    return SparseWeights(
        weights=jnp.asarray(0.7 if scalar else packed["weights"]),
        targets=jnp.asarray(targets),
        delays=jnp.asarray(packed["delays"]) if with_delays else None,
        n_post=N_POST, chunk=4, kernel=kernel, capacity=None,  # several chunks / passes of 4
    )


@pytest.mark.parametrize(
    "scalar,with_delays", [(False, True), (True, False)],
    ids=["per_synapse-heterogeneous_delays", "scalar_weight-homogeneous_delay"],
)
@pytest.mark.parametrize("kernel", KERNELS)
def test_support_vjp_equals_dense_vjp_on_support_and_active_rows(kernel, scalar, with_delays):
    sparse = _sparse(kernel, scalar, with_delays)
    rng = np.random.default_rng(1)
    act = jnp.asarray((rng.random(N_PRE) < 0.3).astype(float))
    support = jnp.asarray(rng.random(N_PRE) < 0.4)
    buf = jnp.asarray(rng.normal(size=(SLOTS, N_POST)))
    cot = jnp.asarray(rng.normal(size=(SLOTS, N_POST)))

    def loss(w, a, b, mask):
        s = eqx.tree_at(lambda s: s.weights, sparse, w)
        return jnp.sum(cot * s.deliver(b, a, STEP, 3, DT, support=mask))

    args = (sparse.weights, act, buf)
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    dense = grad(*args, None)
    compact = grad(*args, support)
    # The forward pass ignores the mask.
    np.testing.assert_array_equal(
        sparse.deliver(buf, act, STEP, 3, DT, support=support), sparse.deliver(buf, act, STEP, 3, DT)
    )
    # Weights and buffer: exact on every entry (rows with act == 0 have a zero weight
    # cotangent anyway). Same products, summed in another order: float64 rounding.
    for got, want in [(compact[0], dense[0]), (compact[2], dense[2])]:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # Activity: the dense value on the visited rows, exactly 0 elsewhere.
    visited = np.asarray(support) | (np.asarray(act) != 0)
    assert 0 < visited.sum() < N_PRE
    np.testing.assert_allclose(compact[1][visited], dense[1][visited], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(compact[1][~visited], 0.0)
    assert np.any(np.asarray(dense[1])[~visited] != 0.0)  # the skipped rows were not trivial


# ------------------------------------------------- the compiled backward kernel (CPU)


def _vjp_case(scalar, with_delays, dtype, seed=0):
    """A container, its arguments and a cotangent for `_support_vjp` (to which the
    tests pass the kernel): graded and negative activity, a support that overlaps it."""
    sparse = _sparse("loop", scalar, with_delays, seed)  # constructible without the kernel
    sparse = eqx.tree_at(lambda s: s.weights, sparse, sparse.weights.astype(dtype))
    if with_delays:
        sparse = eqx.tree_at(lambda s: s.delays, sparse, sparse.delays.astype(dtype))
    rng = np.random.default_rng(seed + 1)
    act = jnp.asarray((rng.random(N_PRE) < 0.3) * rng.choice([1.0, 0.5, -2.0], N_PRE), dtype)
    support = jnp.asarray(rng.random(N_PRE) < 0.4)
    g_buffer = jnp.asarray(rng.normal(size=(SLOTS, N_POST)), dtype)
    return sparse, act, support, g_buffer


def _support_vjp(sparse, act, support, g_buffer, step=STEP, kernel="native"):
    from neurojax.connectivity.weights import _support_vjp as vjp

    return vjp(sparse.weights, act, sparse.targets, (step, sparse.delays, None, None), support,
               g_buffer, (kernel, 4, 8, False), SLOTS, 3, DT)


def _pure_vjp(sparse, act, support, g_buffer, step=STEP):
    from neurojax.connectivity.weights import _support_vjp_loop

    return _support_vjp_loop(sparse.weights, act, sparse.targets,
                             (step, sparse.delays, None, None), support, g_buffer,
                             ("loop", 4, 8, False), SLOTS, 3, DT)


def _assert_matches_pure(native, pure, visited, rtol):
    """The native `(g_w, g_act)` against the pure-JAX loop's. The weight cotangent per
    synapse is the same product: bit for bit. The sums (activity; a scalar weight's
    cotangent) have the same terms in another order (XLA:CPU reduces in vector lanes,
    the kernel in order): equal to rounding, `rtol` relative to the largest entry."""
    (g_w, g_act), (g_w_ref, g_act_ref) = native, pure
    assert g_w.dtype == g_w_ref.dtype and g_act.dtype == g_act_ref.dtype
    if g_w.ndim:
        np.testing.assert_array_equal(g_w, g_w_ref)
    else:
        np.testing.assert_allclose(g_w, g_w_ref, rtol=rtol, atol=0.0)
    scale = float(np.max(np.abs(g_act_ref)))
    np.testing.assert_allclose(g_act, g_act_ref, rtol=rtol, atol=rtol * scale)
    np.testing.assert_array_equal(np.asarray(g_act)[~visited], 0.0)  # exactly 0, as pure JAX's


SUPPORT_CASES = pytest.mark.parametrize(
    "scalar,with_delays", [(False, True), (False, False), (True, False), (True, True)],
    ids=["per_synapse-heterogeneous", "per_synapse-homogeneous", "scalar-homogeneous",
         "scalar-heterogeneous"],
)


@pytest.mark.native
@SUPPORT_CASES
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_native_support_vjp_equals_the_pure_jax_loop(scalar, with_delays, dtype):
    from neurojax import _native

    # This checkout's build must have the kernel (rebuild an older one: pip install -e .).
    assert _native.has(_native.SUPPORT_VJP), f"no native backward kernel ({_native.status()[1]})"
    sparse, act, support, g_buffer = _vjp_case(scalar, with_delays, dtype)
    visited = np.asarray(support) | (np.asarray(act) != 0)
    assert 0 < visited.sum() < N_PRE
    pure = jax.jit(_pure_vjp)(sparse, act, support, g_buffer)
    native = jax.jit(_support_vjp)(sparse, act, support, g_buffer)
    _assert_matches_pure(native, pure, visited, rtol=1e-6 if dtype == jnp.float32 else 1e-13)
    # Eager (one op at a time) is the same call: bit for bit.
    for got, want in zip(_support_vjp(sparse, act, support, g_buffer), native):
        np.testing.assert_array_equal(got, want)
    # "auto" on the CPU is the native kernel, "loop" the pure-JAX loop (compiled programs).
    for kernel, has_call in (("auto", True), ("loop", False)):
        text = jax.jit(functools.partial(_support_vjp, kernel=kernel)).lower(
            sparse, act, support, g_buffer).compile().as_text()
        assert (_native.SUPPORT_VJP in text) == has_call, kernel


@pytest.mark.native
@SUPPORT_CASES
def test_native_support_vjp_under_vmap_equals_one_member_at_a_time(scalar, with_delays):
    # A vmapped batch (activity, support, cotangent and step per member; weights shared
    # or per member) is one call of the kernel: each member's result is that of its own
    # call, bit for bit, and the pure-JAX loop's to rounding. Nested vmap folds both axes.
    sparse, act, support, g_buffer = _vjp_case(scalar, with_delays, jnp.float64)
    rng = np.random.default_rng(3)
    acts = jnp.stack([act, act[::-1], jnp.zeros_like(act)])
    supports = jnp.stack([support, ~support, support])
    g_buffers = jnp.asarray(rng.normal(size=(3, SLOTS, N_POST)))
    steps = jnp.asarray([7, 8, 12])
    scales = jnp.asarray([1.0, -0.5, 2.0])

    def one(scale, a, s, g, step):
        scaled = eqx.tree_at(lambda m: m.weights, sparse, scale * sparse.weights)
        return _support_vjp(scaled, a, s, g, step)

    shared = jax.jit(jax.vmap(one, in_axes=(None, 0, 0, 0, 0)))(1.0, acts, supports, g_buffers, steps)
    per_member = jax.jit(jax.vmap(one))(scales, acts, supports, g_buffers, steps)
    nested = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, 0, 0, 0, None)), in_axes=(None, 0, 0, 0, 0)))(
        scales, jnp.stack([acts, acts]), jnp.stack([supports, supports]),
        jnp.stack([g_buffers, g_buffers]), steps[:2])
    for b in range(3):
        visited = np.asarray(supports[b]) | (np.asarray(acts[b]) != 0)
        for got, scale in ((jax.tree.map(lambda x: x[b], shared), 1.0),
                           (jax.tree.map(lambda x: x[b], per_member), scales[b])):
            want = jax.jit(one)(scale, acts[b], supports[b], g_buffers[b], steps[b])
            for x, y in zip(got, want):
                np.testing.assert_array_equal(x, y)
            scaled = eqx.tree_at(lambda m: m.weights, sparse, scale * sparse.weights)
            _assert_matches_pure(got, _pure_vjp(scaled, acts[b], supports[b], g_buffers[b], steps[b]),
                                 visited, rtol=1e-13)
    for i in range(2):
        for b in range(3):
            want = jax.jit(one)(scales[b], acts[b], supports[b], g_buffers[b], steps[i])
            for x, y in zip(jax.tree.map(lambda x: x[i, b], nested), want):
                np.testing.assert_array_equal(x, y)


@pytest.mark.native
def test_a_build_without_the_backward_kernel_runs_the_pure_jax_loop(monkeypatch):
    # A compiled library from before NeurojaxSupportVjp existed has the propagation
    # kernels only: kernel="native" then differentiates through the pure-JAX loop.
    from neurojax import _native

    sparse, act, support, g_buffer = _vjp_case(False, True, jnp.float64)
    monkeypatch.setattr(_native, "_OPTIONAL", _native._OPTIONAL - {_native.SUPPORT_VJP})
    assert not _native.has(_native.SUPPORT_VJP) and _native.available()
    fn = jax.jit(lambda *args: _support_vjp(*args))  # a new trace, not the cached one
    assert _native.SUPPORT_VJP not in fn.lower(sparse, act, support, g_buffer).as_text()
    for got, want in zip(fn(sparse, act, support, g_buffer), _pure_vjp(sparse, act, support, g_buffer)):
        np.testing.assert_array_equal(got, want)


def test_auto_backward_compiles_to_the_pure_jax_loop_off_the_cpu():
    # What "auto" differentiates on a GPU, seen by lowering for CUDA: the pure-JAX loop,
    # no native CPU kernel (forward or backward).
    from neurojax import _native

    sparse, act, support, g_buffer = _vjp_case(False, True, jnp.float64)
    fn = jax.jit(functools.partial(_support_vjp, kernel="auto")).trace(sparse, act, support, g_buffer)
    text = fn.lower(lowering_platforms=("cuda",)).as_text()
    assert "stablehlo.while" in text and _native.SUPPORT_VJP not in text


# ------------------------------------------------------------------ the neuron's mask


# A wider support here: within 1 mV below v_peak EIF and AdEx run away within a step.
WIDE = Truncated(FastSigmoid(slope=2.0, amplitude=0.3), width=8.0)


def _neurons():
    kw = dict(surrogate=WIDE)
    return [
        nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=0.3, **kw),
        nj.neurons.EIF(**kw),
        nj.neurons.AdEx(v_peak=-30.0, **kw),  # as close to v_t as EIF's
        nj.neurons.ALIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=0.3,
                        beta=2.0, tau_a=50.0, **kw),
    ]


@pytest.mark.parametrize("neuron", _neurons(), ids=["LIF", "EIF", "AdEx", "ALIF"])
def test_gradient_support_covers_every_nonzero_spike_derivative(neuron):
    """A neuron whose spike has a non-zero derivative w.r.t. anything (state, drive,
    parameters) must be in the mask; the mask must exclude most neurons here."""
    n, dt = 400, 0.1
    rng = np.random.default_rng(3)
    state = neuron.init(n)
    lif = isinstance(neuron, (nj.neurons.LIF, nj.neurons.ALIF))
    th = neuron.v_th if lif else neuron.v_peak
    if isinstance(neuron, nj.neurons.ALIF):
        # Adapted thresholds 0-6 mV above v_th (a in [0, 3), beta = 2 mV).
        a = jnp.asarray(rng.uniform(0.0, 3.0, n))
        state = eqx.tree_at(lambda s: s.a, state, a)
        th = neuron.v_th + neuron.beta * a
    # Half the potentials within 3 mV of the spike threshold, half below: in the 20 mV
    # below v_th (LIF), or from 20 mV below to 14 mV above v_t (EIF, AdEx: some end
    # the step within `support` of v_peak, the others spike or stay far below); a few
    # refractory neurons, and a drive that makes some cross.
    low = neuron.v_th + rng.uniform(-20.0, 0.0, n) if lif else neuron.v_t + rng.uniform(-20.0, 14.0, n)
    v = jnp.asarray(np.where(rng.random(n) < 0.5, th + rng.uniform(-3.0, 3.0, n), low))
    refractory = jnp.asarray(np.where(rng.random(n) < 0.1, 0.2, 0.0))
    state = eqx.tree_at(lambda s: (s.v, s.refractory), state, (v, refractory))
    i = jnp.asarray(rng.normal(0.0, 100.0, n))

    def out(params, v, i):
        st = eqx.tree_at(lambda s: s.v, state, v)
        drive = eqx.tree_at(lambda d: d.i, Drive.zeros(n), i)
        return eqx.combine(params, static).step(st, drive, dt)

    params, static = eqx.partition(neuron, eqx.is_inexact_array)
    new, spikes = out(params, v, i)
    mask = np.asarray(neuron.gradient_support(new, spikes))
    tangent = jax.tree.map(jnp.ones_like, (params, v, i))
    _, (_, d_spikes) = jax.jvp(out, (params, v, i), tangent)
    nonzero = np.asarray(d_spikes) != 0
    assert nonzero.sum() > 0 and mask.sum() < 0.8 * n  # the mask does skip neurons
    assert np.all(mask[nonzero])  # a superset of where the gradient can be non-zero
    # Full-support surrogate: no mask (the dense VJP).
    full = dataclasses.replace(neuron, surrogate=_FullSupport(WIDE))
    assert full.gradient_support(new, spikes) is None


def test_graded_populations_have_no_gradient_support():
    rate = nj.neurons.Rate()
    state = rate.init(5)
    _, out = rate.step(state, Drive.zeros(5), 0.1)
    assert rate.gradient_support(state, out) is None


# ----------------------------------------------------------- through a whole network


def _network(surrogate, kernel):
    """A recurrent LIF population with two sparse projections onto itself: excitatory
    with per-synapse weights and heterogeneous delays (1-5 steps), inhibitory with a
    homogeneous 0.5 ms delay; constant drive."""
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=1.0,
                         surrogate=surrogate)
    layout = nj.connectivity.Sparse(kernel=kernel, chunk=4)
    syn = nj.synapses.Exponential(tau=5.0)
    exc = nj.Projection("E", "E", nj.connectivity.FixedProbability(0.2),
                        weight=nj.distributions.Uniform(20.0, 40.0), synapse=syn,
                        delay=nj.distributions.Uniform(0.1, 0.5), layout=layout, name="exc")
    inh = nj.Projection("E", "E", nj.connectivity.FixedProbability(0.1), weight=-60.0,
                        synapse=syn, delay=0.5, layout=layout, name="inh")
    pop = nj.Population("E", 64, lif, initial={"v": nj.distributions.Uniform(-60.0, -50.0)})
    return nj.Network([pop], [exc, inh], inputs=[nj.inputs.Constant("E", amplitude=150.0)])


@functools.cache  # one compilation per configuration for the whole module
def _loss_and_grads(surrogate, kernel, batched=True, remat=False):
    """Loss and gradient w.r.t. every float leaf (weights, neuron parameters, the
    drive) of 20 ms (200 steps) of `_network`, vmapped over the drive's amplitude [pA]
    (or not), in one jit; with `remat`, each step under `jax.checkpoint`. The scan runs the network's step directly (what `simulate`
    scans), which compiles faster than `simulate` with its recording."""
    model = _network(surrogate, kernel).build(jax.random.key(0))
    state = model.init(jax.random.key(1), 0.1)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss(params, a):
        m = eqx.tree_at(lambda m: m.inputs[0].amplitude, eqx.combine(params, static), a)

        def body(s, t):
            s, out = m.step(s, t, 0.1)
            # The spikes (through every surrogate) and the voltage (through the resets).
            return s, jnp.mean(out[0]) + 1e-2 * jnp.mean(s.neurons[0].v)

        body = jax.checkpoint(body) if remat else body
        return jnp.sum(jax.lax.scan(body, state, 0.1 * jnp.arange(200.0))[1])

    fn = jax.value_and_grad(loss, argnums=(0, 1))
    return jax.jit(jax.vmap(fn, in_axes=(None, 0)) if batched else fn), params


AMPLITUDES = jnp.asarray([150.0, 170.0])


@pytest.mark.parametrize("kernel", KERNELS)
def test_network_gradients_equal_the_dense_vjp(kernel):
    fn, params = _loss_and_grads(TRUNCATED, kernel)
    value, (g, g_amp) = fn(params, AMPLITUDES)
    fn_d, params_d = _loss_and_grads(_FullSupport(TRUNCATED), kernel)
    value_d, (g_d, g_amp_d) = fn_d(params_d, AMPLITUDES)
    np.testing.assert_array_equal(value, value_d)  # the forward pass is the same
    leaves = jax.tree.leaves(g) + [g_amp]
    leaves_d = jax.tree.leaves(g_d) + [g_amp_d]
    assert len(leaves) == len(leaves_d) >= 8
    for got, want in zip(leaves, leaves_d):
        # The same products, summed in another order (float64); rtol 1e-9 leaves
        # room for that rounding to grow over 200 steps of a spiking network.
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.max(np.abs(want)))
    assert all(np.all(np.isfinite(x)) for x in leaves)
    assert sum(np.count_nonzero(x) for x in leaves) > 100  # not a vacuous comparison


@pytest.mark.native
@pytest.mark.parametrize("remat", [False, True], ids=["scan", "scan-of-checkpointed-steps"])
def test_network_gradient_with_the_native_backward_equals_the_pure_jax_loop(remat):
    """The gradient of a vmapped spiking simulation (a `lax.scan`, its steps under
    `jax.checkpoint` or not) with the native backward kernel ("native": forward and
    backward compiled) equals the pure-JAX kernels' ("loop"): same products, summed
    in another order (float64)."""
    fn, params = _loss_and_grads(TRUNCATED, "native", remat=remat)
    value, (g, g_amp) = fn(params, AMPLITUDES)
    fn_l, params_l = _loss_and_grads(TRUNCATED, "loop", remat=remat)
    value_l, (g_l, g_amp_l) = fn_l(params_l, AMPLITUDES)
    np.testing.assert_allclose(value, value_l, rtol=1e-12)
    leaves, leaves_l = jax.tree.leaves(g) + [g_amp], jax.tree.leaves(g_l) + [g_amp_l]
    assert len(leaves) == len(leaves_l) >= 8
    for got, want in zip(leaves, leaves_l):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.max(np.abs(want)))
    assert sum(np.count_nonzero(x) for x in leaves) > 100  # not a vacuous comparison


def test_network_gradient_support_skips_most_rows_and_vmap_equals_loop():
    """The mask the network passes excludes most neurons in most steps (the saving is
    real), and the vmapped support-path gradient equals unbatched runs."""
    model = _network(TRUNCATED, "loop").build(jax.random.key(0))
    state = model.init(jax.random.key(1), 0.1)

    def support_fraction(m):
        def body(s, t):
            s, out = m.step(s, t, 0.1)
            return s, jnp.mean(m.populations[0].neuron.gradient_support(s.neurons[0], out[0]))
        return jax.lax.scan(body, state, 0.1 * jnp.arange(200.0))[1]

    fraction = np.asarray(jax.jit(support_fraction)(model))
    assert 0.0 < fraction.mean() < 0.3
    fn, params = _loss_and_grads(TRUNCATED, "loop")
    batched = fn(params, AMPLITUDES)
    one, _ = _loss_and_grads(TRUNCATED, "loop", batched=False)
    # Rounding only: per-synapse weight cotangents are summed over steps by scatter-adds
    # (`_event_weight_gradient`), whose order XLA picks per program (float64).
    for i in range(2):
        for got, want in zip(jax.tree.leaves(batched), jax.tree.leaves(one(params, AMPLITUDES[i]))):
            np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)))


def test_plain_forward_run_compiles_without_the_mask():
    """The support mask is only a residual of the VJP: a run that takes no gradient
    compiles to the same program whether the surrogate has compact support or not."""
    programs = []
    for surrogate in (TRUNCATED, _FullSupport(TRUNCATED)):
        model = _network(surrogate, "loop").build(jax.random.key(0))
        state = model.init(jax.random.key(1), 0.1)
        params, static = eqx.partition(model, eqx.is_inexact_array)

        def run(params):
            m = eqx.combine(params, static)
            return jax.lax.scan(lambda s, t: m.step(s, t, 0.1), state, 0.1 * jnp.arange(10.0))[1]

        hlo = jax.jit(run).lower(params).compile().as_text()
        programs.append(sorted(re.findall(r" = [^ ]+ ([a-z][a-z\-]*)\(", hlo)))
    assert len(programs[0]) > 50 and programs[0] == programs[1]
