"""`simulate_sharded(method="shard_map")`: one network split by neurons with
`jax.shard_map`, outputs all-gathered every step, compared with `simulate` on one
device.

The four-device checks run in one child process with four XLA host (CPU) devices
(the device count is fixed when jax initialises, and this process already has one).
The child runs without the jaxtyping/beartype import hook, which would cost it
several seconds of imports; the one-device test here runs the same code under it.
"""

import textwrap

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from neurojax.connectivity.builders import FixedProbability
from neurojax.connectivity.weights import Sparse
from neurojax.distributions import Uniform
from neurojax.inputs.deterministic import Constant
from neurojax.network import Network, Population, Projection
from neurojax.neurons.lif import LIF
from neurojax.sharding import neuron_mesh, simulate_sharded
from neurojax.simulate import Record, simulate

from . import _four_devices

_LIF = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0)


def _tiny_model():
    # Recurrent sparse excitation with a 3-step delay.
    net = Network(
        [Population("E", 8, _LIF, initial={"v": Uniform(-60.0, -50.0)})],
        [Projection("E", "E", FixedProbability(0.5), weight=30.0, delay=0.3, layout=Sparse())],
        inputs=[Constant("E", amplitude=250.0)],
    )
    return net.build(jax.random.key(0))


def test_rejects_bad_mesh_and_method():
    model = _tiny_model()
    two_axes = Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("a", "b"))
    with pytest.raises(ValueError, match="shard_map.*one-axis jax.sharding.Mesh"):
        simulate_sharded(model, 1.0, 0.1, key=jax.random.key(1), mesh=two_axes, method="shard_map")
    with pytest.raises(ValueError, match="method must be 'gspmd' or 'shard_map', got 'mpi'"):
        simulate_sharded(model, 1.0, 0.1, key=jax.random.key(1), method="mpi")


def test_one_device_mesh_equals_simulate():
    # The whole shard_map path (local tables, sliced inputs, gathers over a one-device
    # axis) under this suite's runtime type checks; nothing is split, so the numbers
    # are the same.
    model = _tiny_model()
    rec = Record(spikes=True, v={"E": None}, every=1.0)
    ref = simulate(model, 5.0, 0.1, key=jax.random.key(1), record=rec)
    out = simulate_sharded(model, 5.0, 0.1, key=jax.random.key(1), record=rec,
                           mesh=neuron_mesh(jax.devices()[:1]), method="shard_map")
    assert int(ref.spikes["E"].sum()) >= 4  # not a silent run
    np.testing.assert_array_equal(np.asarray(out.spikes["E"]), np.asarray(ref.spikes["E"]))
    np.testing.assert_allclose(np.asarray(out.variables["E.v"]), np.asarray(ref.variables["E.v"]),
                               rtol=0.0, atol=1e-12)
    assert (out.sizes, out.indices, out.t_stop) == (ref.sizes, ref.indices, ref.t_stop)


# --------------------------------------------------------------------------- 4 devices

_CHILD = textwrap.dedent(
    r'''
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np
    from neurojax.connectivity.builders import FixedProbability
    from neurojax.connectivity.weights import Dense, Sparse
    from neurojax.distributions import Normal, Uniform
    from neurojax.inputs.deterministic import Constant
    from neurojax.inputs.stochastic import OrnsteinUhlenbeck, Poisson, PoissonPopulation
    from neurojax.network import Network, Population, Projection
    from neurojax.neurons.lif import LIF
    from neurojax.sharding import simulate_sharded
    from neurojax.simulate import Record, simulate
    from neurojax.synapses.kinetics import Delta, Exponential, Saturating
    from neurojax.synapses.receptors import NMDA, Conductance, Current

    DT, T = 0.1, 10.0  # [ms]
    KEY = jax.random.key(1)

    # COBA-like: 160 E + 40 I LIF cells with conductance synapses. E -> E, I: dense,
    # per-synapse weights, 0.5 ms (5-step) delay, random initial conductances. I -> E:
    # sparse and event-driven with per-synapse delays in [0.1, 1.5] ms. A Poisson
    # source population of 30 (not a multiple of 4: it runs whole on every device)
    # drives E and I through sparse delta synapses. Inputs: graded constant current
    # and OU noise into E, Poisson drive into I.
    lif = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0)
    v0 = {"v": Uniform(-60.0, -50.0)}
    net = Network(
        [Population("E", 160, lif, initial=v0), Population("I", 40, lif, initial=v0),
         Population("P", 30, PoissonPopulation(rate=50.0))],
        [Projection("E", ["E", "I"], FixedProbability(0.1), weight=Normal(3.0, 0.5),
                    synapse=Exponential(tau=5.0), receptor=Conductance(e_rev=0.0),
                    delay=0.5, layout=Dense(), initial=Uniform(0.0, 5.0)),
         Projection("I", "E", FixedProbability(0.2), weight=Normal(20.0, 3.0),
                    synapse=Exponential(tau=10.0), receptor=Conductance(e_rev=-80.0),
                    delay=Uniform(0.1, 1.5), layout=Sparse(chunk=4)),
         Projection("P", ["E", "I"], FixedProbability(0.3), weight=30.0, synapse=Delta(),
                    receptor=Current(), layout=Sparse())],
        inputs=[Constant("E", amplitude=jnp.linspace(150.0, 250.0, 160)),
                OrnsteinUhlenbeck("E", mean=0.0, sigma=30.0, tau=5.0),
                Poisson("I", rate=2000.0, weight=40.0)],
    )
    model = net.build(jax.random.key(0))
    rec = Record(spikes=True, rates=["E"], v={"E": None, "I": slice(0, 40, 3)}, every=1.0)
    single = simulate(model, T, DT, key=KEY, record=rec)
    split = simulate_sharded(model, T, DT, key=KEY, record=rec, method="shard_map")
    v, buf, key = split.state.neurons[0].v, split.state.buffers[1], split.state.neurons[2].key
    out["v_shard_shape"] = list(v.sharding.shard_shape(v.shape))
    out["buffer_shard_shape"] = list(buf.sharding.shard_shape(buf.shape))
    out["key_shard_shape"] = list(key.sharding.shard_shape(key.shape))
    out["n_spikes"] = {p: int(single.spikes[p].sum()) for p in single.spikes}
    out["shapes_equal"] = all(single.spikes[p].shape == split.spikes[p].shape for p in single.spikes)
    out["meta_equal"] = (single.sizes, single.indices, single.every) == (split.sizes, split.indices, split.every)

    def floats(r):
        return jax.tree.leaves(eqx.filter((r.variables, r.rates, r.state), eqx.is_inexact_array))

    @jax.jit
    def keys(r):
        return [jax.random.key_data(x) for x in jax.tree.leaves(r.state)
                if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)]

    # Compared in numpy: every eager jax op on a new shape would compile.
    out["spikes_equal"] = all(
        np.array_equal(np.asarray(single.spikes[p]), np.asarray(split.spikes[p])) for p in single.spikes)
    out["n_float_leaves"] = len(floats(single))
    out["max_diff"] = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0))
        for a, b in zip(floats(single), floats(split)))
    out["n_keys"] = len(keys(single))
    out["keys_equal"] = all(np.array_equal(np.asarray(a), np.asarray(b))
                            for a, b in zip(keys(single), keys(split)))

    # Gradient of a smooth function of the recorded rates (surrogate gradients) with
    # respect to the per-neuron drive of E: crosses the all-gather (its transpose is a
    # reduce-scatter), the sparse custom VJP on local tables and the inputs evaluated
    # whole. A small deterministic E/I network keeps the two compilations short.
    small = Network(
        [Population("E", 16, lif, initial=v0), Population("I", 8, lif, initial=v0)],
        [Projection("E", ["E", "I"], FixedProbability(0.3), weight=Normal(3.0, 0.5),
                    synapse=Exponential(tau=5.0), receptor=Conductance(e_rev=0.0),
                    delay=0.3, layout=Dense()),
         Projection("I", "E", FixedProbability(0.5), weight=20.0, synapse=Exponential(tau=10.0),
                    receptor=Conductance(e_rev=-80.0), layout=Sparse())],
        inputs=[Constant("E", amplitude=jnp.linspace(150.0, 300.0, 16)),
                Constant("I", amplitude=250.0)],
    ).build(jax.random.key(2))
    rate_rec = Record(spikes=False, rates=["E", "I"], every=DT)

    def loss(amp, method):
        m = eqx.tree_at(lambda m: m.inputs[0].amplitude, small, amp)
        if method is None:
            r = simulate(m, 5.0, DT, key=KEY, record=rate_rec)
        else:
            r = simulate_sharded(m, 5.0, DT, key=KEY, record=rate_rec, method=method)
        return jnp.sum(r.rates["E"]) + 2.0 * jnp.sum(r.rates["I"])

    amp = small.inputs[0].amplitude
    g_single = np.asarray(jax.grad(loss)(amp, None))
    g_split = np.asarray(jax.grad(loss)(amp, "shard_map"))
    out["grad_scale"] = float(np.max(np.abs(g_single)))
    out["grad_max_diff"] = float(np.max(np.abs(g_single - g_split)))

    # Presynaptic kinetics (one state per presynaptic neuron, run whole on every device
    # with the gathered spikes) and a voltage-dependent receptor (reads the local v),
    # dense and sparse, against one device; GSPMD too.
    sat = Network(
        [Population("E", 16, lif, initial=v0)],
        [Projection("E", "E", FixedProbability(0.5), weight=3.0, synapse=Saturating(),
                    receptor=NMDA(), delay=0.3, layout=Dense(), name="dense"),
         Projection("E", "E", FixedProbability(0.5), weight=2.0,
                    synapse=Saturating(tau_decay=50.0), receptor=NMDA(), layout=Sparse(),
                    name="sparse")],
        inputs=[Constant("E", amplitude=jnp.linspace(200.0, 300.0, 16))],
    ).build(jax.random.key(3))
    rec_v = Record(spikes=True, v={"E": None}, every=1.0)
    ref = simulate(sat, T, DT, key=KEY, record=rec_v)
    out["nmda_spikes"] = int(ref.spikes["E"].sum())
    out["nmda_diff"] = {}
    for method in ("shard_map", "gspmd"):
        got = simulate_sharded(sat, T, DT, key=KEY, record=rec_v, method=method)
        out["nmda_diff"][method] = [
            float(np.max(np.abs(np.asarray(got.variables["E.v"]) - np.asarray(ref.variables["E.v"])))),
            bool(np.array_equal(np.asarray(got.spikes["E"]), np.asarray(ref.spikes["E"])))]

    try:
        odd = Network([Population("A", 42, lif)], inputs=[Constant("A", amplitude=100.0)])
        simulate_sharded(odd.build(jax.random.key(0)), 1.0, DT, key=KEY, method="shard_map")
        out["odd_error"] = None
    except ValueError as e:
        out["odd_error"] = str(e)
    print("RESULT" + json.dumps(out))
    '''
)


@pytest.fixture(scope="module", autouse=True)
def _child(tmp_path_factory):
    """Start the four-device child when the module starts, so that it compiles while
    the single-device tests run."""
    proc = _four_devices.start(_CHILD, tmp_path_factory.mktemp("shard_map"))
    yield proc
    _four_devices.stop(proc)


@pytest.fixture(scope="module")
def four_devices(_child):
    return _four_devices.result(_child)


def test_split_network_equals_single_device(four_devices):
    out = four_devices
    # Every population fires, so equal rasters are not equal silences.
    assert all(n > 10 for n in out["n_spikes"].values()), out["n_spikes"]
    assert out["shapes_equal"] and out["meta_equal"]
    assert out["spikes_equal"]
    # Same arithmetic on the same numbers (inputs and the Poisson source drawn whole,
    # each target's arrivals summed in the same order): equal to x64 rounding.
    assert out["n_float_leaves"] > 10
    assert out["max_diff"] <= 1e-12
    # The PRNG keys of the inputs and of the Poisson source advanced identically.
    assert out["n_keys"] == 3 and out["keys_equal"]


def test_split_layout(four_devices):
    out = four_devices
    # E's neurons and the ring buffer of E -> I (5 slots) are split four ways; the
    # Poisson source's key is whole on every device.
    assert out["v_shard_shape"] == [40]
    assert out["buffer_shard_shape"] == [5, 10]
    assert out["key_shard_shape"] == []


def test_gradient_equals_single_device(four_devices):
    out = four_devices
    assert out["grad_scale"] > 1.0  # the surrogate gradient is not trivially zero
    # Same derivative arithmetic, sums possibly regrouped: equal to rounding.
    assert out["grad_max_diff"] <= 1e-9 * out["grad_scale"]


def test_population_not_divisible_by_devices_raises(four_devices):
    msg = four_devices["odd_error"]
    assert msg is not None and "'A'" in msg and "42" in msg and "4 devices" in msg


def test_presynaptic_kinetics_and_nmda_split_equal_single_device(four_devices):
    out = four_devices
    assert out["nmda_spikes"] > 10, out["nmda_spikes"]
    for method, (diff, spikes_equal) in out["nmda_diff"].items():
        # Same arithmetic on the same numbers; sums over presynaptic neurons may be
        # regrouped by GSPMD: equal to x64 rounding.
        assert spikes_equal and diff <= 1e-9, (method, diff)
