"""`simulate`, `Record` and `Result`: transforms (jit, vmap, grad), recording, and errors.

Every simulation here is small (a dozen neurons, at most 10 ms), and runs that
only differ in parameter values share one compilation.
"""

import contextlib
import math
import re
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pytest

from neurojax.connectivity.builders import AllToAll, FixedProbability
from neurojax.connectivity.weights import Dense, Sparse, SparseWeights
from neurojax.distributions import Normal, Uniform
from neurojax import network as network_module
from neurojax.inputs.deterministic import Constant, Waveform
from neurojax.inputs.stochastic import OrnsteinUhlenbeck
from neurojax.network import Network, Population, Projection
from neurojax.neurons.lif import LIF
from neurojax.neurons.rate import FiringRate, Tanh
from neurojax.simulate import Checkpoint, Record, Result, simulate
from neurojax.surrogate import FastSigmoid
from neurojax.synapses.kinetics import Exponential
from neurojax.synapses.receptors import Conductance, Current

simulate_module = sys.modules["neurojax.simulate"]  # the module (`simulate` is the function)

DT = 0.1  # [ms]
T = 10.0  # [ms]
N = 12
# tau_m = 10 ms; 600 pA gives v_inf = 0 mV, far above threshold, so every neuron fires
# every ~3 ms (enough spikes in 10 ms for rates and ISIs).
LIF_P = LIF(c_m=100.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=1.0)


def _spiking_net(layout=Dense(), n=N, delay=0.5):
    """Recurrent excitatory LIF population with per-synapse weights, a 0.5 ms delay,
    random initial potentials and a constant current. (No noise input: random number
    generation triples XLA compile time, and the tests compile many variants.)"""
    pop = Population("E", n, LIF_P, initial={"v": Uniform(-60.0, -50.0)})
    rec = Projection("E", "E", FixedProbability(0.3), weight=Normal(20.0, 5.0),
                     synapse=Exponential(tau=5.0), receptor=Current(), delay=delay, layout=layout)
    return Network([pop], [rec], inputs=[Constant("E", amplitude=600.0)])


MODEL = _spiking_net().build(jax.random.key(0))
KEY = jax.random.key(1)
REC_ALL = Record(rates=["E"], v={"E": None}, refractory={"E": None})
MASK = np.isin(np.arange(N), [2, 3, 11])
# Decimated, with a slice and a boolean mask; shared by several tests (one compilation).
REC_SEL = Record(spikes=(), rates=["E"], every=0.5, v={"E": slice(1, 9, 3)}, refractory={"E": MASK})


@pytest.fixture(scope="module")
def base():
    """The reference run: every step's spikes, rates and state variables."""
    return simulate(MODEL, T, DT, key=KEY, record=REC_ALL)


def _amplitude(model, amp):
    return eqx.tree_at(lambda m: m.inputs[0].amplitude, model, amp)


def _tree_equal(a, b, rtol=0.0):
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=0)


def _recorded(res):
    return res.spikes, res.rates, res.variables


def test_base_run_fires_and_has_the_documented_shapes(base):
    n_steps = round(T / DT)
    assert base.spikes["E"].shape == (n_steps, N) and base.spikes["E"].dtype == bool
    assert base.rates["E"].shape == (n_steps,)
    assert base.variables["E.v"].shape == (n_steps, N)
    assert base.n_steps == n_steps and base.t_start == 0.0 and base.t_stop == pytest.approx(T)
    assert dict(base.sizes) == {"E": N}
    assert int(base.state.step) == n_steps
    # Not trivially silent nor saturated: the tests below compare real activity.
    assert 10 < int(base.spikes["E"].sum()) < N * n_steps // 10


def test_an_unrecorded_key_says_what_was_recorded_and_how_to_record_it():
    # A bare KeyError: 'E' left a user guessing that rates are recorded only when named.
    res = simulate(MODEL, T, DT, key=KEY)  # the default Record: every population's spikes
    with pytest.raises(KeyError, match=r"rates of 'E' were not recorded \(recorded: \[\]\); "
                                       r"record them with record=nj.Record\(rates=\['E'\]\)"):
        res.rates["E"]
    with pytest.raises(KeyError, match=r"variables of 'E.v' were not recorded .*"
                                       r"nj.Record\(v=\{'E': None\}\)"):
        res.variables["E.v"]
    with pytest.raises(KeyError, match=r"weights of 'E->E' were not recorded .*mean_weights"):
        res.weights["E->E"]
    # The Result that comes out of jit keeps it, and its recordings flatten as dicts do.
    sim = jax.jit(lambda m: simulate(m, T, DT, key=KEY, record=Record(spikes=(), rates=["E"])))
    out = sim(MODEL)
    np.testing.assert_array_equal(out.rates["E"], simulate(MODEL, T, DT, key=KEY, record=REC_ALL).rates["E"])
    with pytest.raises(KeyError, match=r"spikes of 'E' were not recorded \(recorded: \[\]\)"):
        out.spikes["E"]
    assert jax.tree_util.tree_flatten_with_path(out.rates)[0][0][0] == (jax.tree_util.DictKey("E"),)
    assert dict(out.rates).keys() == {"E"} and isinstance(out.rates, dict)


# ---------------------------------------------------------------------------------------
# Transforms


def test_jit_equals_eager_and_disable_jit(base):
    sim = jax.jit(simulate, static_argnames=("duration", "dt", "record", "progress", "checkpoint"))
    res = sim(MODEL, duration=T, dt=DT, key=KEY, record=REC_ALL)
    # Same XLA kernels elementwise, so the runs agree to rounding; spikes exactly.
    _tree_equal(_recorded(res), _recorded(base), rtol=1e-12)
    _tree_equal(res.state.neurons, base.state.neurons, rtol=1e-12)
    # Op by op (lax.scan runs as a Python loop); 1 ms keeps it short.
    short = 1.0
    k = round(short / DT)
    with jax.disable_jit():
        slow = simulate(MODEL, short, DT, key=KEY, record=REC_ALL)
    np.testing.assert_array_equal(np.asarray(slow.spikes["E"]), np.asarray(base.spikes["E"][:k]))
    np.testing.assert_allclose(np.asarray(slow.variables["E.v"]),
                               np.asarray(base.variables["E.v"][:k]), rtol=1e-12)


def test_vmap_over_parameters_and_keys_equals_loop():
    # Eight models (drive and synaptic time constant set with eqx.tree_at) and eight keys
    # (initial potentials), batched in one vmap, against a Python loop.
    amps = jnp.linspace(300.0, 1000.0, 8)  # [pA]
    taus = jnp.linspace(2.0, 9.0, 8)  # [ms]
    keys = jax.random.split(jax.random.key(7), 8)

    def run(amp, tau, key):
        model = _amplitude(MODEL, amp)
        model = eqx.tree_at(lambda m: m.projections[0].synapse.tau, model, tau)
        res = simulate(model, T, DT, key=key, record=REC_SEL)
        return res.rates["E"], res.variables["E.v"], res.variables["E.refractory"]

    batched = jax.vmap(run)(amps, taus, keys)
    looped = [run(a, t, k) for a, t, k in zip(amps, taus, keys)]
    for b, loop in zip(batched, zip(*looped)):
        np.testing.assert_allclose(np.asarray(b), np.stack([np.asarray(x) for x in loop]), rtol=1e-12)
    # The sweep did something: more drive, more spikes; other keys, other potentials.
    rates = np.asarray(batched[0]).mean(axis=1)
    assert rates[-1] > rates[0]
    v = np.asarray(batched[1])
    assert not np.array_equal(v[0], v[1])


@contextlib.contextmanager
def _count_compilations():
    """Count XLA compilations and jaxpr traces started inside the block."""
    events = []

    def listener(event, duration, **kwargs):
        if event in ("/jax/core/compile/backend_compile_duration",
                     "/jax/core/compile/jaxpr_trace_duration"):
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        # Public from jax 0.9; the private function it wraps exists from the floor (0.6.1).
        unregister = getattr(jax.monitoring, "unregister_event_duration_listener", None)
        if unregister is None:
            from jax._src.monitoring import _unregister_event_duration_listener_by_callback as unregister
        unregister(listener)


def test_new_parameter_values_do_not_recompile():
    # A duration used by no other test, so the first call must compile and the counter
    # is seen to work; the second call, with other weights, time constant and drive of
    # the same shapes, must reuse everything.
    duration = 4.2
    model2 = _amplitude(MODEL, jnp.asarray(150.0))
    model2 = eqx.tree_at(lambda m: m.projections[0].synapse.tau, model2, jnp.asarray(3.0))
    model2 = eqx.tree_at(lambda m: m.projections[0].weights.weights, model2,
                         2.0 * MODEL.projections[0].weights.weights)
    with _count_compilations() as first:
        r1 = simulate(MODEL, duration, DT, key=KEY)
    with _count_compilations() as second:
        r2 = simulate(model2, duration, DT, key=KEY)
    assert len(first) > 0
    assert second == []
    assert not np.array_equal(np.asarray(r1.state.neurons[0].v), np.asarray(r2.state.neurons[0].v))


# ---------------------------------------------------------------------------------------
# Gradients


@eqx.filter_jit
def _rate_and_grads(model, checkpoint=False):
    """Mean population rate [Hz] and its gradient w.r.t. the whole model."""

    def loss(model):
        res = simulate(model, T, DT, key=KEY, record=Record(spikes=(), rates=["E"], every=1.0),
                       checkpoint=checkpoint)
        return jnp.mean(res.rates["E"])

    return eqx.filter_value_and_grad(loss)(model)


def test_surrogate_gradient_of_rate_is_finite_and_positive_for_excitation():
    rate, grads = _rate_and_grads(MODEL)
    g_amp = grads.inputs[0].amplitude
    g_w = grads.projections[0].weights.weights
    assert np.isfinite(g_amp) and np.all(np.isfinite(np.asarray(g_w)))
    # More excitatory drive or stronger excitatory synapses raise the rate. The
    # surrogate gradient has the sign of the true (step-wise) change: 200 pA more drive
    # fires more spikes.
    assert g_amp > 0
    assert float(jnp.sum(g_w)) > 0
    rate_up, _ = _rate_and_grads(_amplitude(MODEL, jnp.asarray(800.0)))
    assert rate_up > rate


def test_rate_of_the_default_raster_carries_the_surrogate_gradient():
    # res.rate(pop) counts the recorded raster. Differentiated, the default Record keeps
    # it as floats, so its gradient is the one of the recorded rates (same spikes, same
    # surrogate); it was silently 0 with the booleans a plain run keeps.
    def from_raster(amp, record=None):
        return simulate(_amplitude(MODEL, amp), T, DT, key=KEY, record=record).rate("E")

    def from_rates(amp):
        res = simulate(_amplitude(MODEL, amp), T, DT, key=KEY,
                       record=Record(spikes=(), rates=["E"], every=T))
        return res.rates["E"][0]

    amp = jnp.asarray(600.0)
    want = jax.grad(from_rates)(amp)
    assert want > 0
    for grad in (jax.grad(from_raster), jax.jit(jax.grad(from_raster))):
        np.testing.assert_allclose(grad(amp), want, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(from_raster))(jnp.stack([amp, amp])),
                               [want, want], rtol=1e-6)
    # Not differentiated, the raster stays boolean (a quarter of the memory); an explicit
    # float_spikes=False keeps booleans (and no gradient) under grad too.
    assert simulate(MODEL, T, DT, key=KEY).spikes["E"].dtype == jnp.bool_
    assert jax.jit(lambda a: simulate(_amplitude(MODEL, a), T, DT, key=KEY).spikes["E"])(
        amp).dtype == jnp.bool_
    assert jax.grad(lambda a: from_raster(a, Record(float_spikes=False)))(amp) == 0.0


def test_checkpoint_gives_same_values_and_gradients():
    rate, grads = _rate_and_grads(MODEL)
    rate_c, grads_c = _rate_and_grads(MODEL, checkpoint=True)
    assert rate_c == rate
    _tree_equal(eqx.filter(grads_c, eqx.is_inexact_array), eqx.filter(grads, eqx.is_inexact_array),
                rtol=1e-12)


@eqx.filter_jit
def _result_and_grads(model, every, checkpoint):
    """The whole `Result` and the gradient of a loss of its rates and voltages."""

    def loss(model):
        res = simulate(model, T, DT, key=KEY, checkpoint=checkpoint,
                       record=Record(rates=["E"], v={"E": slice(0, 4)}, every=every))
        return jnp.mean(res.rates["E"]) + 0.01 * jnp.mean(res.variables["E.v"]), res

    return eqx.filter_value_and_grad(loss, has_aux=True)(model)


# 100 steps. (every [steps], checkpoint [steps]): True = 10 steps of 10 one-step blocks;
# 7 steps do not divide 100 (14 segments and one of 2 steps); 15 steps are 3 blocks of 5
# (6 segments and one of 2 blocks); 5 steps split every 10-step block in two; True with
# 10-step blocks is one block per segment. Nested: 2 levels of (22, 5) steps and 3 of
# (32, 10, 3) (neither divides 100, nor its parent); (20, 5) steps with 10-step blocks
# (2 blocks, then halves of a block); (30, 10, 5) steps with 5-step blocks.
@pytest.mark.parametrize("every, checkpoint", [
    (None, True), (None, 0.7), (0.5, 1.5), (1.0, 0.5), (1.0, True),
    (None, Checkpoint(levels=2)), (None, Checkpoint(levels=3)), (1.0, Checkpoint(levels=2)),
    (0.5, Checkpoint(levels=3)),
])
def test_checkpoint_segments_give_identical_results_and_gradients(every, checkpoint):
    (_, plain), grads = _result_and_grads(MODEL, every, False)
    (_, ckpt), grads_c = _result_and_grads(MODEL, every, checkpoint)
    assert int(plain.spikes["E"].sum()) > 10
    _tree_equal(ckpt, plain)
    _tree_equal(eqx.filter(grads_c, eqx.is_inexact_array), eqx.filter(grads, eqx.is_inexact_array),
                rtol=1e-12)


def test_default_checkpoint_segment_is_about_sqrt_steps():
    from neurojax.simulate import _checkpoint_steps

    assert _checkpoint_steps(True, 0.1, 10_000, 1) == (100,)
    assert _checkpoint_steps(True, 0.1, 10_000, 30) == (90,)  # whole 30-step blocks
    assert _checkpoint_steps(True, 0.1, 10_000, 1000) == (100,)  # a divisor of the block
    assert _checkpoint_steps(True, 0.1, 10_000, 10_000) == (100,)
    assert _checkpoint_steps(True, 0.1, 2, 2) in ((1,), (2,))
    assert _checkpoint_steps(False, 0.1, 10_000, 1) == ()
    assert _checkpoint_steps(2.5, 0.1, 10_000, 5) == (25,)
    assert _checkpoint_steps(Checkpoint(levels=1), 0.1, 10_000, 30) == (90,)


def test_nested_checkpoint_segments_are_about_powers_of_steps():
    from neurojax.simulate import _checkpoint_steps

    # L levels: segments of ~n^(i/(L+1)) steps, outermost first.
    assert _checkpoint_steps(Checkpoint(levels=2), 0.1, 10_000, 1) == (464, 22)
    assert _checkpoint_steps(Checkpoint(levels=3), 0.1, 10_000, 1) == (1000, 100, 10)
    # Multiples or divisors of a 30-step block: whole blocks, then parts of a block.
    assert _checkpoint_steps(Checkpoint(levels=3), 0.1, 10_000, 30) == (990, 90, 10)
    # A short run gets fewer distinct levels.
    assert _checkpoint_steps(Checkpoint(levels=4), 0.1, 4, 1) == (3, 2, 1)


def _gradient_temp_bytes(checkpoint, n_steps, model=MODEL):
    def loss(model):
        res = simulate(model, n_steps * DT, DT, key=KEY, record=Record(rates=["E"]),
                       checkpoint=checkpoint)
        return jnp.mean(res.rates["E"])

    compiled = eqx.filter_jit(eqx.filter_grad(loss)).lower(model).compile()
    return compiled.compiled.memory_analysis().temp_size_in_bytes


def test_rematerialised_steps_give_the_gradient_of_a_plain_scan():
    """`simulate` rematerialises each step in the backward pass (it keeps the state
    entering each step, not the step's intermediates): the gradient is still the one
    of a plain `lax.scan` over `model.step`. (The saving shows on large networks:
    benchmarks/bptt.py; on these 12 neurons the state, with its delay ring, is as large
    as the step's intermediates.)"""
    n_steps = 400
    state = MODEL.init(KEY, DT)

    def by_simulate(model):
        res = simulate(model, n_steps * DT, DT, state=state, record=Record(spikes=(), rates=["E"]))
        return jnp.mean(res.rates["E"])

    def by_scan(model):
        def body(s, t):
            s, out = model.step(s, t, DT)
            return s, jnp.sum(out[0])
        counts = jax.lax.scan(body, state, DT * jnp.arange(n_steps))[1]
        return jnp.mean(counts / (N * DT * 1e-3))  # [Hz], as Result.rates

    fns = [eqx.filter_jit(eqx.filter_value_and_grad(f)) for f in (by_simulate, by_scan)]
    (v1, g1), (v2, g2) = (f(MODEL) for f in fns)
    np.testing.assert_allclose(v1, v2, rtol=1e-14)
    leaves1 = jax.tree.leaves(eqx.filter(g1, eqx.is_inexact_array))
    leaves2 = jax.tree.leaves(eqx.filter(g2, eqx.is_inexact_array))
    assert len(leaves1) == len(leaves2) >= 6
    assert sum(np.count_nonzero(x) for x in leaves2) > 10  # not a vacuous comparison
    for a, b in zip(leaves1, leaves2):
        # The same operations on the same values; only the order of a few float64 sums
        # (rates per step, then their mean) differs: rtol 1e-10 over 400 steps.
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * float(np.max(np.abs(b))))


def test_checkpoint_true_plans_much_less_gradient_memory_with_per_step_recording():
    # Default recording (every = dt), 400 steps: the default segment is 20 steps, so the
    # backward pass keeps ~20 segment states + 20 steps instead of 400 steps. XLA's
    # buffer plan (exact, noise-free) shrinks ~6.5x (254 kB -> 39 kB).
    plain = _gradient_temp_bytes(False, 400)
    ckpt = _gradient_temp_bytes(True, 400)
    assert ckpt < plain / 4, (ckpt, plain)


def test_nested_checkpoint_plans_less_gradient_memory_with_more_levels():
    # 1000 steps, every = dt. A 5 ms delay makes the state (the 50-slot spike ring) large
    # next to the parameters, whose cotangent each nested scan accumulates on its own.
    # The backward pass keeps ~(L + 1) n^(1/(L+1)) states: ~63, ~30, ~23 for L = 1, 2, 3.
    # XLA's plan (jax 0.10): 209 kB, 140 kB, 132 kB. The step from 2 to 3 levels is small
    # (~6 %) and the plan is the compiler's, so only "not more" is asserted for it.
    model = _spiking_net(delay=5.0).build(jax.random.key(0))
    one, two, three = (_gradient_temp_bytes(c, 1000, model)
                       for c in (True, Checkpoint(levels=2), Checkpoint(levels=3)))
    assert three <= two < 0.8 * one, (one, two, three)


@pytest.mark.parametrize("checkpoint, match", [
    (0.0, r"checkpoint \[ms\] must lie in \(0, inf\)"),
    (-1.0, r"checkpoint \[ms\] must lie in \(0, inf\)"),
    (float("nan"), r"checkpoint \[ms\] contains NaN"),
    (0.15, r"checkpoint \[ms\] = 0.15 must be a positive multiple of dt"),
    (20.0, r"checkpoint \[ms\] must lie in \(0, duration = 10\]"),
    (0.3, r"checkpoint \[ms\] = 0.3 must be a multiple or a divisor of Record every \[ms\] = 0.5"),
    (1.2, r"checkpoint \[ms\] = 1.2 must be a multiple or a divisor of Record every \[ms\] = 0.5"),
])
def test_bad_checkpoint_is_rejected(checkpoint, match):
    with pytest.raises(ValueError, match=match):
        simulate(MODEL, T, DT, key=KEY, record=Record(every=0.5), checkpoint=checkpoint)


@pytest.mark.parametrize("levels", [0, -2, True])
def test_bad_checkpoint_levels_are_rejected(levels):
    with pytest.raises(ValueError, match=r"Checkpoint levels must be an integer >= 1, got"):
        Checkpoint(levels=levels)


def test_dense_and_sparse_layouts_agree_in_values_and_gradients():
    # One network, two containers for the same sampled synapses. The sparse custom VJP
    # must give the dense matmul's gradient, for the weights and for the surrogate
    # gradient into presynaptic neurons (through the input amplitude).
    sparse = _spiking_net(Sparse()).build(jax.random.key(0))
    rate_d, g_d = _rate_and_grads(MODEL)
    rate_s, g_s = _rate_and_grads(sparse)
    sparse_w = sparse.projections[0].weights
    assert isinstance(sparse_w, SparseWeights)
    mask = np.asarray(sparse_w.matrix()) != 0
    np.testing.assert_array_equal(np.asarray(MODEL.projections[0].weights.weights) != 0, mask)
    np.testing.assert_allclose(rate_s, rate_d, rtol=1e-12)
    np.testing.assert_allclose(g_s.inputs[0].amplitude, g_d.inputs[0].amplitude, rtol=1e-9)
    # Map the per-synapse (ELL) gradient onto the (post, pre) matrix.
    g_sparse = np.asarray(eqx.tree_at(lambda w: w.weights, sparse_w,
                                      g_s.projections[0].weights.weights).matrix())
    g_dense = np.asarray(g_d.projections[0].weights.weights)
    assert np.any(g_sparse != 0)
    np.testing.assert_allclose(g_sparse[mask], g_dense[mask], rtol=1e-9, atol=1e-12)


def _rate_net(layout, n=4):
    rng = np.random.default_rng(0)
    w = rng.normal(0.0, 0.6, (n, n))  # (post, pre) [input units per rate unit]
    # Parameters as strongly typed arrays, so perturbed copies share one compilation.
    units = FiringRate(tau=jnp.asarray(2.0), transfer=Tanh())
    return Network(
        [Population("R", n, units)],
        [Projection("R", "R", AllToAll(), weight=w, layout=layout, delay=0.3)],
        inputs=[Constant("R", amplitude=jnp.asarray(rng.normal(0.5, 0.5, n)))],
    ).build(jax.random.key(0))


def _rate_loss(model):
    res = simulate(model, 5.0, DT, key=KEY,
                   record=Record(spikes=(), r={"R": None}, every=0.5))
    r = res.variables["R.r"]
    c = jnp.cos(jnp.arange(r.size, dtype=float)).reshape(r.shape)  # a fixed readout
    return jnp.sum(c * r)


_rate_loss_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(_rate_loss))


def test_rate_network_gradients_match_finite_differences_in_both_layouts():
    # Graded tanh units start at r = 0, so the sparse path starts with no active rows and
    # must still propagate gradients into them; the loss is smooth, so central
    # differences (eps = 1e-5, error O(eps^2) ~ 1e-10 relative) must match to 1e-6.
    grads = {}
    for layout in (Dense(), Sparse()):
        model = _rate_net(layout)
        loss, g = _rate_loss_and_grad(model)
        grads[type(layout).__name__] = (model, loss, g)
        for get in (lambda m: m.projections[0].weights.weights, lambda m: m.inputs[0].amplitude,
                    lambda m: m.populations[0].neuron.tau):
            # Perturbations in numpy: same dtypes and shapes, so no new compilation.
            x = np.asarray(get(model))
            direction = np.random.default_rng(1).normal(size=x.shape)
            eps = 1e-5
            up, _ = _rate_loss_and_grad(eqx.tree_at(get, model, jnp.asarray(x + eps * direction)))
            down, _ = _rate_loss_and_grad(eqx.tree_at(get, model, jnp.asarray(x - eps * direction)))
            fd = (float(up) - float(down)) / (2 * eps)
            np.testing.assert_allclose(np.sum(np.asarray(get(g)) * direction), fd, rtol=1e-6)
    (_, loss_d, g_d), (m_s, loss_s, g_s) = grads["Dense"], grads["Sparse"]
    assert isinstance(m_s.projections[0].weights, SparseWeights)
    np.testing.assert_allclose(loss_s, loss_d, rtol=1e-12)
    w_s = m_s.projections[0].weights
    g_sparse = np.asarray(eqx.tree_at(lambda w: w.weights, w_s, g_s.projections[0].weights.weights).matrix())
    off_diagonal = ~np.eye(4, dtype=bool)  # AllToAll has no autapses
    np.testing.assert_allclose(g_sparse[off_diagonal],
                               np.asarray(g_d.projections[0].weights.weights)[off_diagonal], rtol=1e-10)
    np.testing.assert_allclose(g_s.inputs[0].amplitude, g_d.inputs[0].amplitude, rtol=1e-10)


# ---------------------------------------------------------------------------------------
# Progress and continuation


def test_progress_bar_gives_the_same_result(base):
    # Also the integer-index selection (negative indices wrap), against the full record.
    rec = Record(rates=["E"], v={"E": np.array([5, 0, -1])})
    res = simulate(MODEL, T, DT, key=KEY, record=rec, progress=True)
    assert dict(res.indices) == {"E.v": (5, 0, N - 1)}
    np.testing.assert_array_equal(np.asarray(res.spikes["E"]), np.asarray(base.spikes["E"]))
    np.testing.assert_array_equal(np.asarray(res.rates["E"]), np.asarray(base.rates["E"]))
    np.testing.assert_array_equal(np.asarray(res.variables["E.v"]),
                                  np.asarray(base.variables["E.v"])[:, [5, 0, N - 1]])
    _tree_equal(res.state, base.state)


def test_progress_chunks_share_one_compilation():
    # 4.4 ms (a duration no other test runs) in 22 chunks of 2 steps: every chunk has the
    # same length, so the chunked scan compiles once (each chunk compiled anew before: 22
    # compilations, ~1 s each). Measured: 2 (the chunk's scan and the concatenation of
    # the chunks' recordings), against 23 before.
    simulate(MODEL, 4.4, DT, key=KEY)  # the initial state's and the plain run's programs
    with _count_compilations() as events:
        res = simulate(MODEL, 4.4, DT, key=KEY, progress=True)
    compiled = [e for e in events if e == "/jax/core/compile/backend_compile_duration"]
    assert res.spikes["E"].shape == (44, N)
    # Upper bound 5, not the measured 2: JAX may add a small helper program (a
    # conversion, the progress bar's host callback) across versions, and the lowest
    # supported JAX runs this too; one compilation per chunk would give >= 22.
    assert 1 <= len(compiled) <= 5, len(compiled)


def test_continuing_from_state_equals_one_long_run(base):
    first = simulate(MODEL, T / 2, DT, key=KEY, record=REC_ALL)
    rest = simulate(MODEL, T / 2, DT, state=first.state, record=REC_ALL)
    assert rest.t_start == pytest.approx(T / 2)
    joined = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, b]), _recorded(first), _recorded(rest))
    _tree_equal(joined, _recorded(base))
    _tree_equal(rest.state, base.state)
    np.testing.assert_allclose(rest.times(), base.times()[round(T / 2 / DT):], rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Record and Result


def test_decimation_and_neuron_selection(base):
    mask = MASK
    res = simulate(MODEL, T, DT, key=KEY, record=REC_SEL)
    blocks = round(T / 0.5)
    assert res.spikes == {}
    assert res.variables["E.v"].shape == (blocks, 3)
    assert res.variables["E.refractory"].shape == (blocks, 3)
    assert dict(res.indices) == {"E.v": (1, 4, 7), "E.refractory": (2, 3, 11)}
    assert res.every == pytest.approx(0.5)
    # State variables are sampled at the end of each block of 5 steps.
    end_of_block = slice(4, None, 5)
    np.testing.assert_array_equal(np.asarray(res.variables["E.v"]),
                                  np.asarray(base.variables["E.v"])[end_of_block][:, [1, 4, 7]])
    np.testing.assert_array_equal(np.asarray(res.variables["E.refractory"]),
                                  np.asarray(base.variables["E.refractory"])[end_of_block][:, mask])
    # The block rate is the spike count over neurons and the block, per second.
    counts = np.asarray(base.spikes["E"]).reshape(blocks, 5, N).sum(axis=(1, 2))
    np.testing.assert_allclose(np.asarray(res.rates["E"]), counts / (N * 0.5e-3), rtol=1e-12)
    # Without spikes, the step count comes from the rates.
    assert res.n_steps == round(T / DT)


def test_rates_agree_with_spikes(base):
    s = np.asarray(base.spikes["E"], float)
    np.testing.assert_allclose(np.asarray(base.rates["E"]), s.mean(axis=1) / (DT * 1e-3), rtol=1e-12)
    np.testing.assert_allclose(base.neuron_rates("E"), s.sum(axis=0) / (T * 1e-3), rtol=1e-12)
    np.testing.assert_allclose(base.rate("E"), s.sum() / (N * T * 1e-3), rtol=1e-12)
    # A window counts steps ending in (t_start, t_stop].
    np.testing.assert_allclose(base.rate("E", t_start=2.0, t_stop=7.0),
                               s[20:70].sum() / (N * 5.0e-3), rtol=1e-12)
    times, ids = base.spike_times("E")
    steps, neurons = np.nonzero(s)
    np.testing.assert_allclose(times, (steps + 1) * DT, rtol=1e-12)
    np.testing.assert_array_equal(ids, neurons)
    assert np.all(np.diff(times) >= 0)


def test_isi_cv_matches_a_direct_computation(base):
    times, ids = base.spike_times("E")
    cvs = []
    for i in range(N):
        t = np.sort(times[ids == i])
        if t.size >= 3:
            isi = np.diff(t)
            cvs.append(isi.std() / isi.mean())
    assert len(cvs) > 0
    np.testing.assert_allclose(base.isi_cv("E", min_spikes=3), np.mean(cvs), rtol=1e-12)
    assert math.isnan(base.isi_cv("E", min_spikes=10_000))


def test_raster_returns_a_figure(base):
    fig = base.raster()
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        assert len(fig.axes) == 2
    finally:
        plt.close(fig)


def test_raster_draws_into_given_axes(base):
    fig, (ax_r, ax_a) = plt.subplots(2, 1)
    try:
        assert base.raster(ax=ax_r) is fig  # raster only: the given axes, no new figure
        assert len(fig.axes) == 2 and len(ax_r.lines) == 1 and len(ax_a.lines) == 0
        times, ids = base.spike_times("E")
        np.testing.assert_array_equal(ax_r.lines[0].get_xdata(), times)
        assert base.raster(ax=(ax_r, ax_a)) is fig  # raster and population rate
        assert len(ax_a.lines) == 1 and len(fig.axes) == 2
    finally:
        plt.close(fig)


def test_to_numpy_and_save_load_round_trip(base, tmp_path):
    arrays = base.to_numpy()
    assert set(arrays) == {"spikes.E", "rates.E", "variables.E.v", "variables.E.refractory"}
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    path = tmp_path / "run.npz"
    base.save(path)
    loaded = Result.load(path)
    assert loaded.state is None
    assert (loaded.dt, loaded.t_start, loaded.every, loaded.sizes, loaded.indices) == (
        base.dt, base.t_start, base.every, base.sizes, base.indices)
    for k, a in loaded.to_numpy().items():
        assert a.dtype == arrays[k].dtype
        np.testing.assert_array_equal(a, arrays[k])
    assert loaded.rate("E") == base.rate("E")


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("dt", [0.0, -0.1, math.nan, math.inf])
def test_bad_dt_is_rejected(dt):
    with pytest.raises(ValueError, match=r"dt \[ms\] must lie in \(0, inf\)"):
        simulate(MODEL, T, dt, key=KEY)


def test_dt_too_large_for_the_model_is_rejected():
    # tau_m = 10 ms, synapse tau = 5 ms.
    with pytest.raises(ValueError, match=r"dt \[ms\] = 8 is too large for synapse tau \[ms\] = 5"):
        simulate(MODEL, 80.0, 8.0, key=KEY)
    slow_synapse = eqx.tree_at(lambda m: m.projections[0].synapse.tau, MODEL, jnp.asarray(50.0))
    with pytest.raises(ValueError, match=r"dt \[ms\] = 20 is too large for tau_m = c_m/g_l \[ms\] = 10"):
        simulate(slow_synapse, 80.0, 20.0, key=KEY)


@pytest.mark.parametrize("duration", [10.05, 0.0, -1.0])
def test_duration_must_be_a_positive_multiple_of_dt(duration):
    with pytest.raises(ValueError, match=r"duration \[ms\]"):
        simulate(MODEL, duration, DT, key=KEY)


def test_record_every_must_divide_duration_and_be_a_multiple_of_dt():
    with pytest.raises(ValueError, match=r"multiple of Record every \[ms\] = 3"):
        simulate(MODEL, T, DT, key=KEY, record=Record(every=3.0))
    with pytest.raises(ValueError, match=r"Record every \[ms\] = 0.15 must be a positive multiple of dt"):
        simulate(MODEL, T, DT, key=KEY, record=Record(every=0.15))


@pytest.mark.parametrize("record", [
    Record(spikes=["X"]),
    Record(rates=["X"]),
    Record(v={"X": None}),
])
def test_record_of_unknown_population_is_rejected(record):
    with pytest.raises(ValueError, match=r"unknown population 'X'; the network has \['E'\]"):
        simulate(MODEL, T, DT, key=KEY, record=record)


def test_record_of_unknown_variable_is_rejected():
    with pytest.raises(ValueError, match=r"cannot record 'w' of population 'E': LIF state has \['v', 'refractory'\]"):
        simulate(MODEL, T, DT, key=KEY, record=Record(w={"E": None}))
    with pytest.raises(ValueError, match=r"must map population names to neuron selections"):
        Record(v=slice(0, 3))
    with pytest.raises(ValueError, match=r"selects neurons outside \[0, 12\)"):
        simulate(MODEL, T, DT, key=KEY, record=Record(v={"E": [0, 12]}))


def test_simulate_needs_a_key_or_state():
    with pytest.raises(ValueError, match="needs `key`"):
        simulate(MODEL, T, DT)


def test_result_window_outside_the_run_is_rejected(base):
    with pytest.raises(ValueError, match=r"time window \[ms\] must lie within \[0, 10\]"):
        base.rate("E", t_start=5.0, t_stop=12.0)
    with pytest.raises(ValueError, match="spikes of population 'I' were not recorded"):
        base.rate("I")


def _blow_up_net(noise=False):
    # A negative conductance of 1e5 nS makes the effective leak g_l + g negative, so
    # exponential Euler grows by exp(dt |g_l + g| / c_m) = e^100 per step: v overflows to
    # -inf within a few steps and then turns NaN. Every value passes the build-time
    # checks (conductance inputs may be negative), so only the run can catch it.
    stable = Population("ok", 3, LIF_P)
    unstable = Population("bad", 2, LIF_P)
    inputs = [Constant("ok", amplitude=50.0),
              Constant("bad", amplitude=-1e5, receptor=Conductance(e_rev=0.0))]
    if noise:  # a PRNG key in the state, which the traced NaN check must cope with
        inputs.append(OrnsteinUhlenbeck("ok", mean=0.0, sigma=10.0, tau=2.0))
    return Network([stable, unstable], inputs=inputs).build(jax.random.key(0))


def test_numerical_blow_up_raises_floating_point_error_naming_the_population():
    with pytest.raises(FloatingPointError, match=r"NaN or infinity in population\(s\) \['bad'\]"):
        simulate(_blow_up_net(), 5.0, DT, key=KEY)


def test_numerical_blow_up_under_jit_raises_naming_the_population():
    sim = jax.jit(simulate, static_argnames=("duration", "dt"))
    # The same run without the blow-up passes the traced check.
    fine = eqx.tree_at(lambda m: m.inputs[1].amplitude, _blow_up_net(noise=True), jnp.asarray(5.0))
    jax.block_until_ready(sim(fine, duration=5.0, dt=DT, key=KEY))
    # The runtime error's type depends on how XLA surfaces callback errors; its message
    # is equinox's.
    with pytest.raises((RuntimeError, ValueError), match=r"NaN or infinity in population\(s\) \['bad'\]"):
        jax.block_until_ready(sim(_blow_up_net(noise=True), duration=5.0, dt=DT, key=KEY))


def _mean_rate_of_ok(model):
    res = simulate(model, 5.0, DT, key=KEY, record=Record(spikes=(), rates=["ok"]))
    return res.rates["ok"].mean()


@pytest.mark.parametrize("transform", ["jit", "grad", "vmap"])
def test_blow_up_is_reported_when_only_a_rate_is_returned(transform):
    # The failing population is not the one whose rate is returned, and the final
    # state is discarded: the check must travel with the rates themselves (a check on
    # the state alone is dead code that XLA removes, and the run returned 0.0 silently).
    bad = _blow_up_net()
    fine = eqx.tree_at(lambda m: m.inputs[1].amplitude, bad, jnp.asarray(5.0))
    if transform == "jit":
        fn = jax.jit(_mean_rate_of_ok)
    elif transform == "grad":
        fn = eqx.filter_jit(eqx.filter_grad(_mean_rate_of_ok))
    else:
        def fn(m):
            batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]) if eqx.is_inexact_array(x) else x, m)
            axes = jax.tree_util.tree_map(lambda x: 0 if eqx.is_inexact_array(x) else None, m)
            return jax.vmap(_mean_rate_of_ok, in_axes=(axes,))(batch)
    jax.block_until_ready(fn(fine))
    with pytest.raises((RuntimeError, ValueError), match=r"NaN or infinity in population\(s\) \['bad'\]"):
        jax.block_until_ready(fn(bad))


def _exploding_gradient_net(amplitude):
    # A recurrent network firing at ~180 Hz whose surrogate (amplitude 1e6) makes the
    # backward pass overflow float32 within 30 ms while the forward pass stays finite.
    lif = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0,
              surrogate=FastSigmoid(slope=5.0, amplitude=amplitude))
    return Network(
        [Population("E", 100, lif)],
        [Projection("E", "E", FixedProbability(0.2), weight=40.0, synapse=Exponential(tau=5.0))],
        inputs=[Constant("E", amplitude=260.0)],
    ).build(jax.random.key(0))


def _rate_of_weight(model):
    def rate(w):
        res = simulate(model.replace({"E->E.weight": w}), 30.0, DT, key=KEY,
                       record=Record(spikes=(), rates=["E"]))
        return res.rates["E"].mean()

    return rate


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_non_finite_gradient_raises_naming_the_parameter(transform):
    def wrap(fn):
        g = jax.grad(fn)
        if transform == "jit":
            return jax.jit(g)
        if transform == "vmap":
            return lambda w: jax.vmap(g)(jnp.stack([w, w + 1.0]))
        return g

    # A gentle surrogate: the same network's gradient is finite and no check fires.
    assert np.all(np.isfinite(wrap(_rate_of_weight(_exploding_gradient_net(0.01)))(40.0)))
    model = _exploding_gradient_net(1e6)
    assert np.isfinite(_rate_of_weight(model)(40.0))  # the forward pass is finite
    with pytest.raises((RuntimeError, ValueError),
                       match=r"gradient with respect to E->E\.weight is NaN or infinite"):
        jax.block_until_ready(wrap(_rate_of_weight(model))(40.0))


def _feedforward_exploding_net():
    # I first in the list, driven by E (whose recurrent surrogate explodes) and
    # feeding nothing back: the loss reads I's rate, yet only E's state cotangent
    # (and its E->E synapse's) can overflow.
    def lif(amplitude):
        return LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0,
                   surrogate=FastSigmoid(slope=5.0, amplitude=amplitude))
    return Network(
        [Population("I", 50, lif(0.01)), Population("E", 100, lif(1e6))],
        [Projection("E", "E", FixedProbability(0.2), weight=40.0, synapse=Exponential(tau=5.0)),
         Projection("E", "I", FixedProbability(0.2), weight=20.0, synapse=Exponential(tau=5.0))],
        inputs=[Constant("E", amplitude=260.0), Constant("I", amplitude=150.0)],
    ).build(jax.random.key(0))


def _last_non_finite_step_by_hand(model, n_steps, pop):
    """Independent search: the run's steps written out (`model.step` in a scan), the
    backward pass done step by step with `jax.vjp` for the loss `simulate`'s
    `rates[pop].mean()` is, and the last step whose state cotangent (neurons, synapses,
    delay buffers) is non-finite, with which populations' neuron states are."""
    i_pop = model.names.index(pop)
    scale = 1.0 / (n_steps * model.populations[i_pop].n * DT * 1e-3)  # d rate / d spike

    def fwd(state, _):
        return model.step(state, state.step * DT, DT)[0], state

    _, states = jax.lax.scan(fwd, model.init(KEY, DT), None, length=n_steps)

    def bwd(ct, state):
        floats, rest = eqx.partition(state, eqx.is_inexact_array)

        def step(f):
            new, outs = model.step(eqx.combine(f, rest), state.step * DT, DT)
            return eqx.filter(new, eqx.is_inexact_array), outs[i_pop]

        out, vjp = jax.vjp(step, floats)
        (ct,) = vjp((ct, jnp.full_like(out[1], scale)))
        watched = (ct.neurons, ct.synapses, ct.buffers)
        bad = ~jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(watched)]))
        per_pop = jnp.stack([~jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in
                                                  jax.tree_util.tree_leaves(n)]))
                             for n in ct.neurons])
        return ct, (bad, per_pop)

    final = eqx.filter(model.init(KEY, DT), eqx.is_inexact_array)
    zero = jax.tree_util.tree_map(jnp.zeros_like, final)
    _, (bad, per_pop) = jax.jit(lambda s: jax.lax.scan(bwd, zero, s, reverse=True))(states)
    bad, per_pop = np.asarray(bad), np.asarray(per_pop)
    assert bad.any() and not bad[-1]
    k = int(np.flatnonzero(bad)[-1])
    return k, [model.names[i] for i in np.flatnonzero(per_pop[k])]


def _rate_of(model, pop, duration, name="E->E.weight"):
    def rate(w):
        res = simulate(model.replace({name: w}), duration, DT, key=KEY,
                       record=Record(spikes=(), rates=[pop]))
        return res.rates[pop].mean()

    return rate


@pytest.mark.parametrize("transform", ["jit", "vmap"])
def test_non_finite_gradient_names_the_step_and_population_found_by_hand(transform):
    model = _feedforward_exploding_net()
    duration = 30.0
    rate = _rate_of(model, "I", duration)
    assert np.isfinite(rate(40.0))  # the forward pass is finite
    k, pops = _last_non_finite_step_by_hand(model, round(duration / DT), "I")
    assert pops == ["E"]  # the by-hand search agrees that only E overflows
    g = jax.jit(jax.grad(rate)) if transform == "jit" else (
        lambda w: jax.vmap(jax.grad(rate))(jnp.stack([w, w])))
    t = k * DT
    with pytest.raises((RuntimeError, ValueError),
                       match=rf"E->E\.weight is NaN or infinite .* non-finite at step {k} "
                             rf"\(t = {t:g} to {t + DT:g} ms from init\), in population E "
                             r"\(gradient with respect to E\.v\)"):
        jax.block_until_ready(g(40.0))


def test_step_report_follows_the_run_length():
    # The cotangent grows with the history it crosses from the end of the run, so the
    # step where it overflows moves with the run's length: the reported step follows
    # the by-hand search for a 20 ms and a 30 ms run alike.
    model = _exploding_gradient_net(1e6)
    found = []
    for duration in (20.0, 30.0):
        k, pops = _last_non_finite_step_by_hand(model, round(duration / DT), "E")
        assert pops == ["E"]
        with pytest.raises((RuntimeError, ValueError), match=rf"non-finite at step {k} "):
            jax.block_until_ready(jax.jit(jax.grad(_rate_of(model, "E", duration)))(40.0))
        found.append(k)
    assert found[0] < found[1]


def test_gradient_watch_leaves_finite_gradients_identical():
    # The watch and the checks are identities: the same gradients, bit for bit, with
    # them (the default) and without (allow_nonfinite_gradients), under jit and vmap,
    # with checkpointing and truncation.
    from neurojax import allow_nonfinite_gradients

    model = _feedforward_exploding_net()
    model = eqx.tree_at(lambda m: m.populations[1].neuron.surrogate,
                        model, FastSigmoid(slope=5.0, amplitude=0.01))
    w = jnp.asarray(40.0)
    for kwargs in ({}, {"checkpoint": True, "truncate": 5.0}):
        def rate(w):
            res = simulate(model.replace({"E->E.weight": w}), 20.0, DT, key=KEY,
                           record=Record(spikes=(), rates=["I"]), **kwargs)
            return res.rates["I"].mean()

        grad = jax.jit(jax.vmap(jax.grad(rate)))
        checked = np.asarray(grad(jnp.stack([w, w + 2.0])))
        with allow_nonfinite_gradients():
            unchecked = np.asarray(jax.jit(jax.vmap(jax.grad(rate)))(jnp.stack([w, w + 2.0])))
        assert np.all(np.isfinite(checked)) and np.all(checked != 0)
        np.testing.assert_array_equal(checked, unchecked)


def test_allow_nonfinite_gradients_returns_them_and_check_grad_reports_them():
    from neurojax import allow_nonfinite_gradients
    from neurojax.train import check_grad

    rate = _rate_of_weight(_exploding_gradient_net(1e6))
    with allow_nonfinite_gradients():
        assert not np.isfinite(jax.grad(rate)(40.0))
    # check_grad's job is to report such a gradient: a NaN row, not an exception.
    report = check_grad(rate, jnp.asarray(40.0), step=0.05)
    assert not np.isfinite(report.rows[0].gradient)
    assert np.isfinite(report.rows[0].finite_difference)


# ---------------------------------------------------------------------------------------
# Truncated backpropagation through time


def _readout(r):
    c = jnp.cos(jnp.arange(r.size, dtype=float)).reshape(r.shape)  # a fixed readout
    return jnp.sum(c * r)


def _windowed_losses(model, truncate):
    """Loss of 6 ms of the rate network: one run with `truncate`, and the reference: two
    3 ms runs, the second from the first's final state held constant (stop_gradient)."""
    rec = Record(spikes=(), r={"R": None}, every=0.5)
    whole = simulate(model, 6.0, DT, key=KEY, record=rec, truncate=truncate)
    first = simulate(model, 3.0, DT, key=KEY, record=rec)
    held = jax.tree_util.tree_map(
        lambda x: jax.lax.stop_gradient(x) if eqx.is_inexact_array(x) else x, first.state)
    second = simulate(model, 3.0, DT, state=held, record=rec)
    reference = jnp.concatenate([first.variables["R.r"], second.variables["R.r"]])
    return _readout(whole.variables["R.r"]), _readout(reference)


def test_truncated_bptt_equals_windows_differentiated_separately():
    # Truncation at 3 ms must give exactly the gradient of the two windows whose second
    # starts from a constant state: same forward values, same gradients (to round-off).
    model = _rate_net(Dense())
    (loss_t, loss_ref), (g_t, g_ref) = (
        eqx.filter_jit(lambda m: _windowed_losses(m, 3.0))(model),
        (eqx.filter_jit(eqx.filter_grad(lambda m: _windowed_losses(m, 3.0)[0]))(model),
         eqx.filter_jit(eqx.filter_grad(lambda m: _windowed_losses(m, 3.0)[1]))(model)),
    )
    np.testing.assert_allclose(loss_t, loss_ref, rtol=1e-12)
    _tree_equal(eqx.filter(g_t, eqx.is_inexact_array), eqx.filter(g_ref, eqx.is_inexact_array),
                rtol=1e-10)
    # ... and it is a real truncation: the full gradient differs.
    g_full = eqx.filter_jit(eqx.filter_grad(lambda m: _windowed_losses(m, None)[0]))(model)
    w_t = np.asarray(g_t.projections[0].weights.weights)
    w_full = np.asarray(g_full.projections[0].weights.weights)
    assert np.max(np.abs(w_t - w_full)) > 1e-3 * np.max(np.abs(w_full))
    # A window as long as the run is full backpropagation (the initial state is a constant).
    g_long = eqx.filter_jit(eqx.filter_grad(lambda m: _windowed_losses(m, 6.0)[0]))(model)
    np.testing.assert_allclose(np.asarray(g_long.projections[0].weights.weights), w_full, rtol=1e-12)


@pytest.mark.parametrize("truncate, match", [
    (0.0, r"truncate \[ms\] must lie in \(0, inf\), got 0.0"),
    (0.25, r"truncate \[ms\] = 0.25 must be a positive multiple of dt \[ms\] = 0.1"),
    (20.0, r"truncate \[ms\] must lie in \(0, duration = 10\]"),
    (True, r"truncate \[ms\] must be None"),
])
def test_bad_truncate_is_rejected(truncate, match):
    with pytest.raises(ValueError, match=match):
        simulate(MODEL, T, DT, key=KEY, truncate=truncate)


# ---------------------------------------------------------------------------------------
# Time-only inputs sampled before the scan (`network.presample`)


def _driven_rate_net():
    """Five rate units with a delayed (0.3 ms: three buffer slots) recurrent projection,
    driven by a per-neuron Waveform whose samples fall between steps, a shared 1-D
    Waveform and Ornstein-Uhlenbeck noise (stochastic: stepped in the scan as before)."""
    n = 5
    rng = np.random.default_rng(3)
    pop = Population("R", n, FiringRate(tau=2.0, transfer=Tanh()))
    rec = Projection("R", "R", AllToAll(), weight=rng.normal(size=(n, n)) * 0.5, delay=0.3,
                     layout=Dense())
    wave = Waveform("R", times=np.linspace(0.05, 2.95, 13), values=rng.normal(size=(13, n)))
    shared = Waveform("R", times=[0.5, 1.0, 2.0], values=[1.0, -1.0, 0.5])
    noise = OrnsteinUhlenbeck("R", mean=0.0, sigma=0.3, tau=1.0)
    return Network([pop], [rec], inputs=[wave, shared, noise]).build(jax.random.key(0))


DRIVEN = _driven_rate_net()


@contextlib.contextmanager
def _lookup_in_step():
    """Runs traced inside this block look Waveforms up by time inside each step (the
    code before pre-sampling): no input has a sampler, and no compilation from outside
    the block is reused."""
    saved = network_module._sampler
    network_module._sampler = lambda inp: None
    jax.clear_caches()
    try:
        yield
    finally:
        network_module._sampler = saved
        jax.clear_caches()


@pytest.mark.parametrize("kwargs", [
    {}, {"checkpoint": True}, {"record": Record(rates=["R"], every=0.5, r={"R": None})},
    {"progress": True},
], ids=["plain", "checkpoint", "blocks", "chunks"])
def test_presampled_waveforms_equal_the_lookup_in_the_step(kwargs):
    # Pre-sampling computes each step's value by the very arithmetic of the step
    # (value((step0 + k) * dt); `Waveform.sample` equals `value` to a few ulp, checked in
    # tests/inputs), so a run matches the in-step lookup, noise included (the OU input
    # keeps its keys), and continued from a state. Not always bit for bit: XLA's CPU
    # backend contracts a * b + c into fused multiply-adds inside a fusion, and the
    # interpolation's last multiply-add is fused with the drive's sums in the step but
    # not in the sampling, so values may differ in the last bit: float64 round-off of a
    # few ulps per step over 20 steps of a contracting network, < 1e-12 relative.
    sampled = []
    spy = lambda *a: sampled.append(network_module.presample(*a)) or sampled[-1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(simulate_module, "presample", spy)
        jax.clear_caches()
        new = simulate(DRIVEN, 2.0, DT, key=KEY, **kwargs)
        new2 = simulate(DRIVEN, 1.0, DT, state=new.state, **kwargs)
    assert sampled and all(s is not None and s[2] is None for s in sampled)
    with _lookup_in_step():
        old = simulate(DRIVEN, 2.0, DT, key=KEY, **kwargs)
        old2 = simulate(DRIVEN, 1.0, DT, state=old.state, **kwargs)
    for a, b in [(new, old), (new2, old2)]:
        for x, y in zip(jax.tree_util.tree_leaves((a.spikes, a.rates, a.variables)),
                        jax.tree_util.tree_leaves((b.spikes, b.rates, b.variables))):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)
        for x, y in zip(jax.tree_util.tree_leaves(eqx.filter(a.state, eqx.is_inexact_array)),
                        jax.tree_util.tree_leaves(eqx.filter(b.state, eqx.is_inexact_array))):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)


def _wave_loss(values, model=DRIVEN):
    m = eqx.tree_at(lambda m: m.inputs[0].values, model, values)
    r = simulate(m, 2.0, DT, key=KEY, record=Record(spikes=["R"])).spikes["R"]
    return jnp.sum(r ** 2 * jnp.arange(1, 21)[:, None])


def test_presampled_waveform_gradient_equals_lookup_and_finite_differences():
    values = DRIVEN.inputs[0].values
    grad = jax.jit(jax.grad(_wave_loss))(values)
    with _lookup_in_step():
        grad_old = jax.jit(jax.grad(_wave_loss))(values)
    # The same per-step cotangents, summed in another order (after the scan instead of
    # in each step): float64 round-off, ~1e-16 relative per addition over 20 steps.
    np.testing.assert_allclose(grad, grad_old, rtol=1e-12, atol=1e-14)
    assert np.max(np.abs(grad)) > 1e-3  # the samples do reach the loss
    # Central differences on a smooth (tanh) network: O(h^2) = 1e-10 truncation error.
    loss = jax.jit(_wave_loss)
    h = 1e-5
    for idx in [(0, 0), (4, 2), (12, 4)]:
        e = jnp.zeros_like(values).at[idx].set(h)
        fd = (loss(values + e) - loss(values - e)) / (2 * h)
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-6, atol=1e-9)


def test_presampled_waveform_jit_equals_eager_and_vmap_equals_loop():
    values = jnp.array([1.0, -0.5])[:, None, None] * DRIVEN.inputs[0].values[None]
    batched = jax.vmap(_wave_loss)(values)
    with jax.disable_jit():
        eager = [_wave_loss(v) for v in values]
    # The eager run evaluates op by op (no XLA fusion): float64 round-off only.
    np.testing.assert_allclose(batched, eager, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(_wave_loss)(values[1]), eager[1], rtol=1e-12)


def test_presample_skips_inputs_whose_samples_would_be_large():
    # Sampled only when the (steps, n) array has at most PRESAMPLE_ELEMENTS elements or
    # no more than the waveform's own samples.
    shapes = lambda m, steps: jax.eval_shape(lambda: network_module.presample(m, 0, steps, DT))
    limit = network_module.PRESAMPLE_ELEMENTS
    small = shapes(DRIVEN, 100)
    assert small[0].shape == (100, 5) and small[1].shape == (100,) and small[2] is None
    long = limit // 5 + 1  # the per-neuron waveform's samples would exceed the limit
    out = shapes(DRIVEN, long)
    assert out[0] is None and out[1].shape == (long,)
    assert shapes(DRIVEN, limit + 1) is None  # nothing sampled at all
    fine = eqx.tree_at(lambda m: (m.inputs[0].times, m.inputs[0].values), DRIVEN,
                       (jnp.arange(long + 1) * DT, jnp.zeros((long + 1, 5))))
    assert shapes(fine, long)[0].shape == (long, 5)  # no larger than its own samples


def test_non_finite_gradient_step_is_the_same_in_chunks_segments_and_continued_runs():
    # The probe's rows are the run's steps: fed in chunks (progress=True, each chunk
    # its own rows), through checkpointed segments, or for a run continued from a
    # state at step 100 (its first step stamped into the probe), the reported step is
    # the same step counted from init.
    model = _feedforward_exploding_net()

    def reported(duration, state=None, **kwargs):
        def rate(w):
            res = simulate(model.replace({"E->E.weight": w}), duration, DT,
                           key=None if state is not None else KEY, state=state,
                           record=Record(spikes=(), rates=["I"]), **kwargs)
            return res.rates["I"].mean()
        with pytest.raises((RuntimeError, ValueError), match="non-finite at step") as err:
            jax.block_until_ready(jax.jit(jax.grad(rate))(40.0))
        return re.search(r"non-finite at step (\d+) ", str(err.value)).group(1)

    steps = {reported(30.0), reported(30.0, progress=True), reported(30.0, checkpoint=True),
             reported(20.0, state=simulate(model, 10.0, DT, key=KEY, record=Record(spikes=())).state)}
    assert len(steps) == 1 and int(steps.pop()) > 100
