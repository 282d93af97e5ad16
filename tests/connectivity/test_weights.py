import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import neurojax as nj
from neurojax import _native
from neurojax.connectivity.weights import (
    DenseWeights,
    Sparse,
    SparseWeights,
    native_kernel_available,
    native_kernel_status,
    take_slot,
    to_ell,
)

N_PRE, N_POST, SLOTS, DT = 40, 25, 5, 0.1
# Every propagation kernel must compute the same sums ("buffer" with room for every
# neuron, so that it never overflows here; overflow has its own test). "native" is
# skipped, with the reason, where the compiled kernel was not built (tests/conftest.py).
KERNELS = [pytest.param("native", marks=pytest.mark.native), "loop", "buffer"]


def _synapses(seed=0, p=0.2):
    """Random (pre, post) synapses with per-synapse weights: rows of different lengths,
    and three presynaptic neurons without any synapse (rows of padding only)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((N_POST, N_PRE)) < p
    mask[:, :3] = False
    post, pre = np.nonzero(mask)
    return pre, post, rng.normal(1.0, 0.5, size=pre.size)


def _containers(seed=0, chunk=4, scalar_weight=None, delays=None, kernel="loop", capacity=N_PRE):
    """The same synapses as a `SparseWeights` (ELL) and a `DenseWeights` built
    independently with numpy."""
    pre, post, w = _synapses(seed)
    if scalar_weight is not None:
        w = np.full(pre.size, scalar_weight)
    per_syn = {} if scalar_weight is not None else {"weights": w}
    if delays is not None:
        per_syn["delays"] = delays(pre.size)
    targets, packed = to_ell(pre, post, N_PRE, N_POST, per_syn)
    sparse = SparseWeights(
        weights=jnp.asarray(packed["weights"] if scalar_weight is None else scalar_weight, float),
        targets=jnp.asarray(targets),
        delays=None if delays is None else jnp.asarray(packed["delays"]),
        n_post=N_POST,
        chunk=chunk,
        kernel=kernel,
        capacity=capacity,
    )
    dense = np.zeros((N_POST, N_PRE))
    np.add.at(dense, (post, pre), w)
    return sparse, DenseWeights(weights=jnp.asarray(dense)), (pre, post, w, per_syn.get("delays"))


def _activity(kind, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "few_spikes":  # fewer events than one chunk
        act = np.zeros(N_PRE)
        act[[5, 17]] = 1.0
    elif kind == "burst":  # every neuron at once: ceil(40 / 4) = 10 chunks
        act = np.ones(N_PRE)
    elif kind == "random_spikes":
        act = (rng.random(N_PRE) < 0.4).astype(float)
    elif kind == "graded":  # rates, signed values and exact zeros
        act = rng.normal(size=N_PRE) * (rng.random(N_PRE) < 0.7)
    else:  # silent
        act = np.zeros(N_PRE)
    return jnp.asarray(act)


def _buffer(seed=2):
    # A non-zero buffer: delivery must add to what is already scheduled.
    return jnp.asarray(np.random.default_rng(seed).normal(size=(SLOTS, N_POST)))


STEP = jnp.asarray(7, jnp.int32)  # with delay 3 and 5 slots, wraps around to slot 0


@eqx.filter_jit
def _deliver(weights, buffer, act, step, delay_steps):
    # Compiled once per container structure: eager dispatch of the event loop is slow.
    return weights.deliver(buffer, act, step, delay_steps, DT)


# ---------------------------------------------------------------------------------------
# Forward: sparse equals dense


def test_sparse_matrix_equals_dense_matrix():
    sparse, dense, _ = _containers()
    np.testing.assert_array_equal(sparse.matrix(), dense.matrix())
    assert sparse.n_pre == dense.n_pre == N_PRE and sparse.n_post == dense.n_post == N_POST


@pytest.mark.parametrize("kind", ["few_spikes", "burst", "random_spikes", "graded", "silent"])
@pytest.mark.parametrize("scalar", [False, True], ids=["per_synapse", "scalar_weight"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_sparse_deliver_equals_dense_deliver(kind, scalar, kernel):
    sparse, dense, _ = _containers(scalar_weight=0.7 if scalar else None, kernel=kernel)
    act, buf = _activity(kind), _buffer()
    got = _deliver(sparse, buf, act, STEP, 3)
    want = _deliver(dense, buf, act, STEP, 3)
    expected = np.asarray(buf).copy()
    expected[(7 + 3) % SLOTS] += np.asarray(dense.matrix()) @ np.asarray(act)
    # Scatter-add and matmul sum the same products in different orders.
    np.testing.assert_allclose(want, expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    if kind == "silent":
        np.testing.assert_array_equal(got, buf)


@pytest.mark.parametrize("chunk", [1, 3, 16, 64])
def test_every_event_is_delivered_whatever_the_chunk(chunk):
    sparse, dense, _ = _containers(chunk=chunk)
    act = _activity("burst")
    got = _deliver(sparse, jnp.zeros((SLOTS, N_POST)), act, STEP, 1)
    want = _deliver(dense, jnp.zeros((SLOTS, N_POST)), act, STEP, 1)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_sparse_chunk_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="chunk"):
        Sparse(chunk=0)


def test_sparse_kernel_and_capacity_are_checked():
    with pytest.raises(ValueError, match="kernel must be one of"):
        Sparse(kernel="gpu")
    with pytest.raises(ValueError, match=r"capacity \[active neurons per step\]"):
        Sparse(capacity=0)
    sparse, _, _ = _containers()
    with pytest.raises(ValueError, match="SparseWeights kernel must be one of"):
        SparseWeights(weights=sparse.weights, targets=sparse.targets, delays=None,
                      n_post=N_POST, kernel="fast")


@pytest.mark.skipif(
    os.environ.get("NEUROJAX_NO_NATIVE", "").strip().lower() not in ("", "0", "false", "no"),
    reason="installed with NEUROJAX_NO_NATIVE: the compiled kernel is skipped on purpose",
)
def test_native_kernel_is_built_by_the_install():
    # pip install compiles neurojax/_native/events.cc where a C++ compiler exists (as on
    # every machine this project tests on); a silent fallback would hide a broken build,
    # or one against another jaxlib than the one installed.
    assert native_kernel_available(), native_kernel_status()
    assert native_kernel_status().startswith("built against jaxlib")
    assert Sparse(kernel="native").kernel == "native"


@pytest.mark.native
def test_native_kernel_built_against_another_jaxlib_is_refused(monkeypatch):
    # The library records the jaxlib it was compiled against; under another major.minor
    # it must not be registered (the XLA FFI may have changed), and the reason is kept.
    monkeypatch.setattr(_native, "runtime_jaxlib", lambda: "0.1.0")
    ok, reason = _native.status.__wrapped__()
    assert not ok
    assert "refused" in reason and "but jaxlib 0.1.0 is installed" in reason


def test_without_the_kernel_auto_is_the_pure_jax_loop_and_native_says_why(monkeypatch):
    # What an install without a compiler (or with NEUROJAX_NO_NATIVE=1) gets, on any
    # install: "auto" falls back to the pure-JAX loop, an explicit "native" is a clear
    # error that carries the reason.
    reason = "not built: the install did not compile neurojax/_native/events.cc"
    monkeypatch.setattr(_native, "status", lambda: (False, reason))
    assert not native_kernel_available() and native_kernel_status() == reason
    with pytest.raises(ValueError, match="kernel='native' needs the compiled CPU kernel.*not built"):
        Sparse(kernel="native")
    auto, _, _ = _containers(kernel="auto", delays=_delays())
    loop, _, _ = _containers(kernel="loop", delays=_delays())
    act, buf = _activity("burst"), _buffer()
    deliver = jax.jit(lambda s, b, a: s.deliver(b, a, STEP, 3, DT))
    np.testing.assert_allclose(deliver(auto, buf, act), deliver(loop, buf, act), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kind", ["few_spikes", "random_spikes", "burst"])
def test_auto_kernel_equals_the_pure_jax_loop(kind):
    auto, _, _ = _containers(kernel="auto", delays=_delays())
    loop, _, _ = _containers(kernel="loop", delays=_delays())
    act, buf = _activity(kind), _buffer()
    np.testing.assert_allclose(
        _deliver(auto, buf, act, STEP, 3), _deliver(loop, buf, act, STEP, 3), rtol=1e-13, atol=1e-13
    )


@pytest.mark.native
def test_native_kernel_on_another_platform_is_a_clear_error(monkeypatch):
    sparse, _, _ = _containers(kernel="native")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    with pytest.raises(ValueError, match="kernel='native' is a CPU kernel, but JAX runs on 'gpu'"):
        jax.eval_shape(lambda b: sparse.deliver(b, _activity("burst"), STEP, 1, DT), _buffer())


def test_explicit_capacity_overflow_is_an_error_not_a_silent_drop():
    # An explicit capacity is strict: the user asked for that buffer size and no more.
    sparse, dense, _ = _containers(kernel="buffer", capacity=8)
    buf = jnp.zeros((SLOTS, N_POST))
    act = jnp.zeros(N_PRE).at[jnp.arange(8)].set(1.0)  # exactly fills the buffer
    np.testing.assert_allclose(
        _deliver(sparse, buf, act, STEP, 1), _deliver(dense, buf, act, STEP, 1), rtol=1e-13, atol=1e-13
    )
    # The message names the layout argument that fixes it.
    with pytest.raises(Exception, match=r"event buffer overflow(.|\n)*Sparse\(capacity=\.\.\.\)"):
        jax.block_until_ready(_deliver(sparse, buf, _activity("burst"), STEP, 1))


@pytest.mark.native
def test_native_kernel_under_nested_vmap_equals_loop():
    native, _, _ = _containers(kernel="native", delays=_delays())
    rng = np.random.default_rng(8)
    acts = jnp.asarray((rng.random((3, 2, N_PRE)) < 0.3).astype(float))
    scales = jnp.asarray([0.5, -1.0, 2.0])
    buf = _buffer()

    def run(scale, act):
        s = eqx.tree_at(lambda m: m.weights, native, scale * native.weights)
        return s.deliver(buf, act, STEP, 3, DT)

    # Outer axis over weights and activity, inner axis over activity only: the batching
    # rule must fold both into one call and broadcast the shared connectivity.
    got = jax.jit(jax.vmap(jax.vmap(run, in_axes=(None, 0))))(scales, acts)
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(got[i, j], run(scales[i], acts[i, j]), rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------------------
# Heterogeneous delays


def _delays(seed=3):
    # Delays [ms] of 0 (delivered after the one-step minimum) to 0.5 ms = 5 steps at
    # dt = 0.1, with jitter well inside half a step so the rounding is unambiguous.
    def draw(size):
        rng = np.random.default_rng(seed)
        d = rng.integers(0, SLOTS + 1, size=size) * DT + rng.uniform(-0.03, 0.03, size=size)
        return d.clip(0.0)

    return draw


def _scatter_reference(weights_ell, act, buf, targets, delays_ell, step):
    """Synapse-by-synapse scatter written with plain jnp (autodiff-able): the ring-buffer
    slot of each synapse is `(step + max(1, round(delay / dt))) % slots`."""
    d = np.maximum(1, np.round(np.asarray(delays_ell) / DT)).astype(int)
    slots = (step + d) % SLOTS
    w = jnp.broadcast_to(weights_ell, targets.shape)
    return buf.at[slots, targets].add(w * act[:, None], mode="drop")


@pytest.mark.parametrize("kind", ["few_spikes", "burst", "graded"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_heterogeneous_delays_land_in_their_slots(kind, kernel):
    sparse, _, (pre, post, w, delays) = _containers(delays=_delays(), kernel=kernel)
    act, buf = _activity(kind), _buffer()
    got = _deliver(sparse, buf, act, STEP, 99)  # the homogeneous delay is ignored
    # Independent reference: one synapse at a time, in Python.
    expected = np.asarray(buf).copy()
    for j, i, wj, dj in zip(pre, post, w, delays):
        steps = max(1, int(round(dj / DT)))
        expected[(7 + steps) % SLOTS, i] += wj * float(act[j])
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    # Every delay from the minimum one step up to the buffer length was exercised.
    used = {max(1, int(round(d / DT))) for d in delays}
    assert used == set(range(1, SLOTS + 1))


def test_single_synapse_delay_reaches_the_read_slot_after_d_steps():
    # One synapse 0 -> 1 with delay 0.3 ms at dt = 0.1 ms: an event emitted in step k is
    # read in step k + 3, i.e. it sits in slot (k + 3) % slots.
    sparse = SparseWeights(
        weights=jnp.asarray([[2.0]]), targets=jnp.asarray([[1]], jnp.int32),
        delays=jnp.asarray([[0.3]]), n_post=2,
    )
    for k in range(6):
        buf = _deliver(sparse, jnp.zeros((4, 2)), jnp.ones(1), jnp.asarray(k, jnp.int32), 1)
        expected = np.zeros((4, 2))
        expected[(k + 3) % 4, 1] = 2.0
        np.testing.assert_array_equal(buf, expected)


# ---------------------------------------------------------------------------------------
# Custom VJP


def _loss_fn(deliver, cot):
    # A generic linear functional of the buffer: checks every entry of the cotangent.
    return lambda *args: jnp.sum(cot * deliver(*args))


@pytest.mark.parametrize("with_delays", [False, True], ids=["homogeneous", "heterogeneous"])
@pytest.mark.parametrize("scalar", [False, True], ids=["per_synapse", "scalar_weight"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_custom_vjp_equals_dense_autodiff(scalar, with_delays, kernel):
    sparse, _, _ = _containers(
        scalar_weight=0.7 if scalar else None, delays=_delays() if with_delays else None,
        kernel=kernel,
    )
    act, buf = _activity("random_spikes"), _buffer()
    cot = jnp.asarray(np.random.default_rng(4).normal(size=(SLOTS, N_POST)))

    def event_driven(w, a, b):
        return eqx.tree_at(lambda s: s.weights, sparse, w).deliver(b, a, STEP, 3, DT)

    if with_delays:
        def reference(w, a, b):
            return _scatter_reference(w, a, b, sparse.targets, sparse.delays, 7)
    else:
        # Dense autodiff: through the (post, pre) matrix the ELL weights scatter into.
        def reference(w, a, b):
            m = eqx.tree_at(lambda s: s.weights, sparse, w).matrix()
            return b.at[(7 + 3) % SLOTS].add(m @ a)

    args = (sparse.weights, act, buf)
    np.testing.assert_allclose(event_driven(*args), reference(*args), rtol=1e-13, atol=1e-13)
    got = jax.jit(jax.grad(_loss_fn(event_driven, cot), argnums=(0, 1, 2)))(*args)
    want = jax.jit(jax.grad(_loss_fn(reference, cot), argnums=(0, 1, 2)))(*args)
    for g, r in zip(got, want):
        assert g.shape == r.shape
        # Same products summed in a different order: equal to float64 rounding.
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-13)
    # The point of the custom VJP: silent neurons still get the gradient W^T g that a
    # surrogate needs, although the forward pass never touched their rows.
    silent = np.nonzero(np.asarray(act) == 0)[0]
    has_synapses = silent[silent >= 3]
    assert has_synapses.size > 0 and np.all(np.asarray(got[1])[has_synapses] != 0.0)
    np.testing.assert_array_equal(got[1][:3], 0.0)  # rows with no synapse at all


@pytest.mark.parametrize("kinds", [("few_spikes", "random_spikes", "silent"),
                                   ("few_spikes", "burst", "graded")],
                         ids=["first_events_only", "with_later_events"])
@pytest.mark.parametrize("with_delays", [False, True], ids=["homogeneous", "heterogeneous"])
@pytest.mark.parametrize("kernel", KERNELS)
def test_per_synapse_weight_gradient_under_vmap(kernel, with_delays, kinds):
    """Per-synapse weights shared by a vmapped batch of trials (each with its own
    activity, buffer and step): `grad` of the batch's loss, where JAX sums the trials'
    cotangents inside the event-driven scatter (`_event_weight_gradient`), and `vmap`
    of per-trial `grad`s both equal plain autodiff of a synapse-by-synapse reference.
    One batch has at most `_FIRST_EVENTS` events per trial, the other a trial with more
    (`burst`: all 40 rows), whose later rows take the conditional pass."""
    from neurojax.connectivity.weights import _FIRST_EVENTS

    sparse, _, _ = _containers(delays=_delays() if with_delays else None, kernel=kernel)
    acts = jnp.stack([_activity(k) for k in kinds])
    counts = np.count_nonzero(np.asarray(acts), axis=1)
    assert (counts.max() > _FIRST_EVENTS) == ("burst" in kinds)
    bufs = jnp.stack([_buffer(seed) for seed in (2, 3, 4)])
    steps = jnp.asarray([7, 8, 12], jnp.int32)
    cots = jnp.asarray(np.random.default_rng(9).normal(size=(3, SLOTS, N_POST)))

    def event_driven(w, a, b, step):
        return eqx.tree_at(lambda s: s.weights, sparse, w).deliver(b, a, step, 3, DT)

    if with_delays:
        def reference(w, a, b, step):
            return _scatter_reference(w, a, b, sparse.targets, sparse.delays, step)
    else:
        def reference(w, a, b, step):
            m = eqx.tree_at(lambda s: s.weights, sparse, w).matrix()
            return b.at[(step + 3) % SLOTS].add(m @ a)

    def per_trial(deliver):
        return lambda w, a, b, step, cot: jnp.sum(cot * deliver(w, a, b, step))

    def batch(deliver):
        trials = jax.vmap(per_trial(deliver), in_axes=(None, 0, 0, 0, 0))
        return lambda w: jnp.sum(trials(w, acts, bufs, steps, cots))

    args = (acts, bufs, steps, cots)
    for grads in (lambda d: jax.grad(batch(d))(sparse.weights),
                  lambda d: jax.vmap(jax.grad(per_trial(d)), in_axes=(None, 0, 0, 0, 0))(
                      sparse.weights, *args)):
        got = jax.jit(lambda: grads(event_driven))()
        want = jax.jit(lambda: grads(reference))()
        assert got.shape == want.shape
        # Same products, summed over trials in another order: float64 rounding.
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
        assert np.count_nonzero(np.asarray(got)) > 10  # not a vacuous comparison
    if kernel == "loop":
        # The later rows' pass stays a conditional under vmap (its predicate is whether
        # any trial has more events), not a select that would run it in every step.
        text = jax.jit(jax.grad(batch(event_driven))).lower(sparse.weights).as_text()
        assert "stablehlo.case" in text


def test_undifferentiated_weights_cost_no_event_weight_gradient():
    """Differentiating with respect to activity and buffer only (per-synapse weights
    held fixed): the event-driven weight gradient is skipped (a symbolic zero tangent),
    so the program has none of its conditionals; with the weights, it has them."""
    sparse, _, _ = _containers(kernel="loop")
    act, buf = _activity("burst"), _buffer()

    def loss(w, a, b):
        return jnp.sum(jnp.sin(eqx.tree_at(lambda s: s.weights, sparse, w).deliver(b, a, STEP, 3, DT)))

    without = jax.jit(jax.grad(loss, argnums=(1, 2))).lower(sparse.weights, act, buf).as_text()
    with_w = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(sparse.weights, act, buf).as_text()
    assert "stablehlo.case" not in without and "stablehlo.case" in with_w
    got = jax.grad(loss, argnums=(1, 2))(sparse.weights, act, buf)
    want = jax.grad(loss, argnums=(0, 1, 2))(sparse.weights, act, buf)[1:]
    for g, r in zip(got, want):
        np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("scalar", [False, True], ids=["per_synapse", "scalar_weight"])
def test_custom_vjp_matches_finite_differences(scalar):
    sparse, _, _ = _containers(scalar_weight=0.7 if scalar else None, delays=_delays())
    cot = jnp.asarray(np.random.default_rng(5).normal(size=(SLOTS, N_POST)))
    buf = _buffer()

    @jax.jit
    def loss(w, act):
        # check_grads evaluates at perturbed numpy points; the annotations want jax arrays.
        w, act = jnp.asarray(w), jnp.asarray(act)
        out = eqx.tree_at(lambda s: s.weights, sparse, w).deliver(buf, act, STEP, 3, DT)
        return jnp.sum(cot * out)

    # Graded activity without exact zeros: finite differences of an inactive row would
    # step it into the active set, where the function is still the same bilinear form.
    act = jnp.asarray(np.random.default_rng(6).normal(size=N_PRE))
    check_grads(loss, (sparse.weights, act), order=1, modes=["rev"])
    check_grads(loss, (sparse.weights, _activity("random_spikes")), order=1, modes=["rev"])


# ---------------------------------------------------------------------------------------
# Transformations


@pytest.mark.parametrize("kernel", KERNELS)
def test_jit_equals_eager(kernel):
    sparse, _, _ = _containers(delays=_delays(), kernel=kernel)
    act, buf = _activity("graded"), _buffer()
    deliver = jax.jit(lambda s, b, a, k: s.deliver(b, a, k, 2, DT))
    for k in range(3):
        step = jnp.asarray(k, jnp.int32)
        np.testing.assert_array_equal(deliver(sparse, buf, act, step), sparse.deliver(buf, act, step, 2, DT))


@pytest.mark.parametrize("kernel", KERNELS)
def test_vmap_over_activity_and_weights_equals_loop(kernel):
    sparse, dense, _ = _containers(kernel=kernel)
    rng = np.random.default_rng(7)
    acts = jnp.asarray((rng.random((4, N_PRE)) < rng.uniform(0.05, 0.9, size=(4, 1))).astype(float))
    scales = jnp.asarray([0.5, 1.0, -2.0, 3.0])
    buf = _buffer()

    @jax.jit
    def run(scale, act):
        s = eqx.tree_at(lambda m: m.weights, sparse, scale * sparse.weights)
        return s.deliver(buf, act, STEP, 3, DT)

    batched = jax.vmap(run)(scales, acts)
    for b, (scale, act) in enumerate(zip(scales, acts)):
        np.testing.assert_allclose(batched[b], run(scale, act), rtol=1e-13, atol=1e-13)
        want = buf.at[(7 + 3) % SLOTS].add(scale * dense.weights @ act)
        np.testing.assert_allclose(batched[b], want, rtol=1e-13, atol=1e-13)

    # Per-example gradients through the custom VJP under vmap.
    cot = jnp.asarray(rng.normal(size=(SLOTS, N_POST)))
    grad = jax.jit(jax.grad(lambda scale, act: jnp.sum(cot * run(scale, act)), argnums=(0, 1)))
    g_batched = jax.vmap(grad)(scales, acts)
    for b, (scale, act) in enumerate(zip(scales, acts)):
        g_scale, g_act = grad(scale, act)
        np.testing.assert_allclose(g_batched[0][b], g_scale, rtol=1e-12)
        np.testing.assert_allclose(g_batched[1][b], g_act, rtol=1e-12, atol=1e-13)
        # Dense reference: d/d act of sum(cot[slot] * scale W act) = scale W^T cot[slot].
        np.testing.assert_allclose(
            g_act, scale * dense.weights.T @ cot[(7 + 3) % SLOTS], rtol=1e-12, atol=1e-13
        )


@pytest.mark.parametrize("n", [1, 31, 32, 33, 100, 1000])
@pytest.mark.parametrize("p", [0.0, 0.01, 0.3, 1.0])
def test_compact_events_equals_nonzero(n, p):
    from neurojax.connectivity import compact_events

    rng = np.random.default_rng(n)
    act = jnp.asarray((rng.random(n) < p) * rng.normal(size=n))
    events = jax.jit(compact_events)(act)
    expected = np.nonzero(np.asarray(act))[0]
    assert int(events.count) == expected.size
    np.testing.assert_array_equal(np.asarray(events.rows)[: expected.size], expected)
    assert np.all(np.asarray(events.rows)[expected.size:] == n)


# ---------------------------------------------------------------------------------------
# The adaptive event buffer (kernel="buffer", capacity=None: what "auto" runs on GPU/TPU)


def _integer_valued(sparse, buf):
    # Integer weights and buffer entries: every kernel's sums are exact whatever the
    # order of the additions, so kernels and the dense product must agree bit for bit.
    w = jnp.round(4.0 * sparse.weights)
    return eqx.tree_at(lambda s: s.weights, sparse, w), jnp.round(4.0 * buf)


@pytest.mark.parametrize("with_delays", [False, True], ids=["homogeneous", "heterogeneous"])
def test_adaptive_buffer_delivers_bursts_beyond_its_capacity_exactly(with_delays):
    delays = _delays() if with_delays else None
    adaptive, _, _ = _containers(kernel="buffer", capacity=None, delays=delays)
    loop, _, _ = _containers(kernel="loop", delays=delays)
    # The default capacity is a tenth of the 40 presynaptic neurons (at least one chunk
    # of 4): 4 rows, so a burst of 40 events needs the buffer and nine further passes.
    assert adaptive.capacity is None
    buf = _buffer()
    adaptive, buf = _integer_valued(adaptive, buf)
    loop, _ = _integer_valued(loop, buf)
    m = np.asarray(adaptive.matrix())
    rng = np.random.default_rng(9)
    acts = jnp.asarray(np.stack([
        np.ones(N_PRE),                                   # 10 times the capacity
        np.r_[np.ones(5), np.zeros(N_PRE - 5)],           # one row beyond it
        (rng.random(N_PRE) < 0.5).astype(float),          # several passes, scattered rows
        np.r_[np.zeros(N_PRE - 4), np.ones(4)],           # exactly full: no extra pass
        np.zeros(N_PRE),                                  # silent
    ]))
    for act in acts:
        got = _deliver(adaptive, buf, act, STEP, 3)
        np.testing.assert_array_equal(got, _deliver(loop, buf, act, STEP, 3))
        if not with_delays:
            want = np.asarray(buf).copy()
            want[(7 + 3) % SLOTS] += m @ np.asarray(act)
            np.testing.assert_array_equal(got, want)
    # Under vmap the batch members need different numbers of passes (10, 2, ..., 0):
    # the loop runs the largest number and must leave the others' results unchanged.
    scales = jnp.asarray([1.0, -2.0, 3.0, 0.5, 2.0])

    def run(s, scale, act):
        s = eqx.tree_at(lambda m: m.weights, s, scale * s.weights)
        return s.deliver(buf, act, STEP, 3, DT)

    got = jax.jit(jax.vmap(run, in_axes=(None, 0, 0)))(adaptive, scales, acts)
    want = jax.jit(jax.vmap(run, in_axes=(None, 0, 0)))(loop, scales, acts)
    np.testing.assert_array_equal(got, want)
    for b in range(len(acts)):
        scaled = eqx.tree_at(lambda m: m.weights, loop, scales[b] * loop.weights)
        np.testing.assert_array_equal(got[b], _deliver(scaled, buf, acts[b], STEP, 3))


def test_auto_compiles_to_the_adaptive_buffer_off_the_cpu():
    # What "auto" runs on a GPU, seen on a CPU-only install by lowering for CUDA: the
    # buffer kernel with its overflow passes (the only loop), no strict overflow error
    # (a host callback) and no native CPU kernel.
    from neurojax import _native

    sparse, _, _ = _containers(kernel="auto", capacity=None)
    deliver = jax.jit(lambda b, a: sparse.deliver(b, a, STEP, 1, DT))
    lowered = deliver.trace(_buffer(), _activity("burst")).lower(lowering_platforms=("cuda",))
    text = lowered.as_text()
    assert "stablehlo.while" in text
    assert "callback" not in text and _native.DELIVER_EVENTS not in text


def test_sparse_layout_defaults_reach_the_container():
    # Sparse() leaves chunk and capacity to the container: 16 rows per loop iteration
    # and the adaptive event buffer (capacity None); explicit values pass through.
    pops = [nj.Population("A", 30, nj.neurons.LIF()), nj.Population("B", 5, nj.neurons.LIF())]

    def built(layout):
        proj = nj.Projection("A", "B", nj.connectivity.FixedProbability(0.2), layout=layout)
        return nj.Network(pops, [proj]).build(jax.random.key(0)).projections[0].weights

    w = built(Sparse(kernel="buffer"))
    assert (w.chunk, w.kernel, w.capacity) == (16, "buffer", None)
    w = built(Sparse(chunk=3, capacity=9))
    assert (w.chunk, w.kernel, w.capacity) == (3, "auto", 9)
    with pytest.raises(ValueError, match="chunk"):
        Sparse(chunk=True)


# ---------------------------------------------------------------------------------------
# Taking the slot due now out of a ring buffer (read and clear)


def _take_reference(buffer, step):
    slot = int(step) % buffer.shape[0]
    return buffer.at[slot].set(0.0), buffer[slot]


def _assert_taken(got, buffer, step):
    cleared, row = _take_reference(buffer, step)
    np.testing.assert_array_equal(got[0], cleared)
    np.testing.assert_array_equal(got[1], row)


@pytest.mark.parametrize("native", [pytest.param(True, marks=pytest.mark.native), False],
                         ids=["native", "xla"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_take_slot_reads_and_clears_the_slot_due_now(native, dtype):
    buf = _buffer().astype(dtype)
    take = jax.jit(lambda b, k: take_slot(b, k, native=native))
    for k in (0, 3, SLOTS, 2 * SLOTS + 4):  # wraps around the slots
        step = jnp.asarray(k, jnp.int32)
        got = take(buf, step)
        assert got[0].dtype == dtype and got[1].shape == (N_POST,)
        _assert_taken(got, buf, step)
        _assert_taken(take_slot(buf, step, native=native), buf, step)  # eager = jit
    # Batched buffers, with one step for all (a sweep) or one per member, and nested.
    bufs = jnp.stack([buf, 2.0 * buf, buf + 1.0])
    steps = jnp.asarray([1, 7, 13], jnp.int32)
    one = jax.vmap(lambda b: take_slot(b, jnp.asarray(4, jnp.int32), native=native))(bufs)
    each = jax.vmap(lambda b, k: take_slot(b, k, native=native))(bufs, steps)
    nested = jax.vmap(jax.vmap(lambda b, k: take_slot(b, k, native=native), (0, None)),
                      (None, 0))(bufs, steps)
    for i in range(3):
        _assert_taken((one[0][i], one[1][i]), bufs[i], 4)
        _assert_taken((each[0][i], each[1][i]), bufs[i], steps[i])
        for j in range(3):
            _assert_taken((nested[0][i, j], nested[1][i, j]), bufs[j], steps[i])


@pytest.mark.native
def test_native_take_slot_gradient_equals_the_xla_one():
    buf = _buffer()
    weights = jnp.asarray(np.random.default_rng(4).normal(size=(SLOTS, N_POST)))

    def loss(b, native):
        cleared, row = take_slot(b, jnp.asarray(8, jnp.int32), native=native)
        return jnp.sum(weights * cleared ** 2) + jnp.sum(jnp.sin(row))

    # The kernel's tangent is the pure-JAX one (it is linear), so they agree exactly.
    np.testing.assert_array_equal(jax.grad(loss)(buf, True), jax.grad(loss)(buf, False))
    bufs = jnp.stack([buf, -buf])
    np.testing.assert_array_equal(jax.vmap(jax.grad(loss), (0, None))(bufs, True),
                                  jax.vmap(jax.grad(loss), (0, None))(bufs, False))
    check_grads(lambda b: loss(jnp.asarray(b), True), (buf,), order=2, modes=("fwd", "rev"))


@pytest.mark.native
def test_carried_ring_buffer_is_not_copied_around_the_native_kernels():
    # The step of a delayed sparse projection: take the slot due now, deliver this
    # step's spikes. Passed to the kernels at its own rank, the carried buffer is
    # updated in place; a reshape to (1, slots, n) around the calls made XLA copy it
    # whole twice per step (Brunel's 600 kB buffers: 0.73x the step's CPU time without).
    sparse, _, _ = _containers(kernel="native")

    def run(buf):
        def step(carry, k):
            buf, total = carry
            buf, arrivals = take_slot(buf, k, native=True)
            act = (jnp.arange(N_PRE) % 7 == k % 7).astype(buf.dtype)
            buf = sparse.deliver(buf, act, k, 3, DT)
            return (buf, total + arrivals), None

        return jax.lax.scan(step, (buf, jnp.zeros(N_POST)), jnp.arange(50, dtype=jnp.int32))[0]

    # The buffer is donated, so that the only copies left would be the step's.
    hlo = jax.jit(run, donate_argnums=0).lower(_buffer()).compile().as_text()
    buffer_shape = f"[{SLOTS},{N_POST}]"
    copies = [line for line in hlo.splitlines()
              if " copy(" in line and buffer_shape in line.split("=")[1].split("copy(")[0]]
    assert not copies, copies
    # and the values are those of the pure-JAX read and clear
    def reference(buf):
        total = jnp.zeros(N_POST)
        for k in range(50):
            buf, arrivals = _take_reference(buf, k)
            act = (jnp.arange(N_PRE) % 7 == k % 7).astype(buf.dtype)
            buf = sparse.deliver(buf, act, jnp.asarray(k, jnp.int32), 3, DT)
            total = total + arrivals
        return buf, total

    for got, want in zip(jax.jit(run)(_buffer()), reference(_buffer())):
        np.testing.assert_array_equal(got, want)
