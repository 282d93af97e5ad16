"""Every connectivity container and propagation kernel under both scale-out methods of
`simulate_sharded` equals one device: identical rasters, state equal to rounding.

The containers split differently under `method="shard_map"`: dense rows follow the
mesh, sparse tables are regrouped by target device on the host, and procedural
synapses are regenerated whole on every device, each keeping those onto its own
neurons (a device that kept the global target indices wrote into the wrong columns
of its local ring buffer, or past its end, without any error). Under `"gspmd"` the
compiler partitions the same program.

All four-device cases run in one child process (see `tests/_four_devices.py`), each
case compiled three times (one device, shard_map, gspmd); native-kernel cases are
left out when the compiled kernel is not built.
"""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurojax.connectivity.procedural import Procedural, ProceduralWeights
from neurojax.connectivity.weights import Sparse
from neurojax.distributions import Uniform
from neurojax.inputs.deterministic import Constant
from neurojax.network import Network, Population, Projection
from neurojax.neurons.lif import LIF
from neurojax.sharding import neuron_mesh, simulate_sharded
from neurojax.simulate import Record, simulate

from . import _four_devices


# (case name, container, kernel): the cases the child runs.
CASES = [
    ("dense", "dense", None),
    ("sparse-native", "sparse", "native"),
    ("sparse-loop", "sparse", "loop"),
    ("sparse-buffer", "sparse", "buffer"),
    ("procedural-native", "procedural", "native"),
    ("procedural-loop", "procedural", "loop"),
    # A weight distribution is drawn per synapse by the pure-JAX loop ("auto").
    ("procedural-normal-weights", "procedural", "auto"),
]
METHODS = ("shard_map", "gspmd")


def test_one_device_mesh_procedural_equals_simulate():
    # The procedural shard_map path (per-device copy, axis_index offset, filtered
    # targets) under this suite's runtime type checks; one device holds everything.
    lif = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0)
    model = Network(
        [Population("E", 12, lif, initial={"v": Uniform(-60.0, -50.0)})],
        [Projection("E", "E", Procedural(out_degree=6), weight=30.0, delay=0.3,
                    layout=Sparse(kernel="loop"))],
        inputs=[Constant("E", amplitude=250.0)],
    ).build(jax.random.key(0))
    rec = Record(spikes=True, v={"E": None}, every=1.0)
    ref = simulate(model, 5.0, 0.1, key=jax.random.key(1), record=rec)
    out = simulate_sharded(model, 5.0, 0.1, key=jax.random.key(1), record=rec,
                           mesh=neuron_mesh(jax.devices()[:1]), method="shard_map")
    assert int(ref.spikes["E"].sum()) >= 4
    np.testing.assert_array_equal(np.asarray(out.spikes["E"]), np.asarray(ref.spikes["E"]))
    np.testing.assert_allclose(np.asarray(out.variables["E.v"]), np.asarray(ref.variables["E.v"]),
                               rtol=0.0, atol=1e-12)


def test_procedural_weights_checks_its_slice_of_the_targets():
    w = Procedural(out_degree=2).build(jax.random.key(0), 4, 8, False)
    # A ring buffer of another width (e.g. one device's slice given to a copy that
    # delivers to the whole population) is an error, not writes to wrong columns.
    with pytest.raises(ValueError, match="ring buffer holds 2 postsynaptic neurons, .* to 8"):
        w.deliver(jnp.zeros((1, 2)), jnp.ones(4), jnp.asarray(0), 0, 0.1)
    with pytest.raises(ValueError, match="both post_axis .* and n_post_local"):
        ProceduralWeights(seed=w.seed, weights=w.weights, n_pre=4, n_post=8, k=2,
                          post_axis="neurons")
    with pytest.raises(ValueError, match=r"n_post_local .* \[1, n_post = 8\], got 9"):
        ProceduralWeights(seed=w.seed, weights=w.weights, n_pre=4, n_post=8, k=2,
                          post_axis="neurons", n_post_local=9)


# --------------------------------------------------------------------------- 4 devices

_CHILD = textwrap.dedent(
    r'''
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np
    from neurojax.connectivity.builders import FixedProbability
    from neurojax.connectivity.procedural import Procedural
    from neurojax.connectivity.weights import Dense, Sparse, native_kernel_available
    from neurojax.distributions import Normal, Uniform
    from neurojax.inputs.deterministic import Constant
    from neurojax.network import Network, Population, Projection
    from neurojax.neurons.lif import LIF
    from neurojax.sharding import simulate_sharded
    from neurojax.simulate import Record, simulate
    from neurojax.synapses.kinetics import Exponential
    from neurojax.synapses.receptors import Conductance

    DT, T = 0.1, 20.0  # [ms]
    KEY = jax.random.key(1)
    lif = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0)
    v0 = {"v": Uniform(-60.0, -50.0)}

    def network(container, kernel, normal_weights, n_e=80, n_i=20, k=(16, 20)):
        """E -> E, I (recurrent: targets exclude the neuron itself; onto I: another
        population size, so other device offsets) and I -> E, all in one container;
        E's weights drawn per synapse from a normal distribution or all equal."""
        if container == "dense":
            conn, layout = FixedProbability, (lambda: Dense())
            exc, inh = conn(k[0] / n_e), conn(k[1] / n_e)
        elif container == "sparse":
            # capacity: every neuron may fire in one step (no overflow error).
            layout = lambda: Sparse(kernel=kernel, chunk=4, capacity=n_e)
            exc, inh = FixedProbability(k[0] / n_e), FixedProbability(k[1] / n_e)
        else:
            layout = lambda: Sparse(kernel=kernel, chunk=4)
            exc, inh = Procedural(out_degree=k[0]), Procedural(out_degree=k[1])
        w_exc = Normal(3.0, 0.5) if normal_weights else 3.0
        return Network(
            [Population("E", n_e, lif, initial=v0), Population("I", n_i, lif, initial=v0)],
            [Projection("E", ["E", "I"], exc, weight=w_exc, synapse=Exponential(tau=5.0),
                        receptor=Conductance(e_rev=0.0), delay=0.5, layout=layout()),
             Projection("I", "E", inh, weight=20.0, synapse=Exponential(tau=10.0),
                        receptor=Conductance(e_rev=-80.0), layout=layout())],
            inputs=[Constant("E", amplitude=jnp.linspace(180.0, 320.0, n_e)),
                    Constant("I", amplitude=jnp.linspace(150.0, 260.0, n_i))],
        ).build(jax.random.key(0))

    rec = Record(spikes=True, v={"E": None, "I": None}, every=1.0)

    def floats(r):
        return jax.tree.leaves(eqx.filter((r.variables, r.state), eqx.is_inexact_array))

    cases = {}
    for name, container, kernel in CASES:
        if kernel == "native" and not native_kernel_available():
            continue
        # Stored synapses all draw their weights; procedural ones in one case only
        # (the compiled procedural kernel takes one weight).
        model = network(container, kernel, container != "procedural" or name.endswith("weights"))
        single = simulate(model, T, DT, key=KEY, record=rec)
        ref_spikes = {p: np.asarray(single.spikes[p]) for p in single.spikes}
        ref_floats = [np.asarray(x) for x in floats(single)]
        case = {"n_spikes": {p: int(s.sum()) for p, s in ref_spikes.items()}}
        for method in METHODS:
            split = simulate_sharded(model, T, DT, key=KEY, record=rec, method=method)
            # Compared in numpy: every eager jax op on a new shape would compile.
            spikes = {p: np.asarray(split.spikes[p]) for p in split.spikes}
            case[method] = {
                "n_spikes": {p: int(s.sum()) for p, s in spikes.items()},
                "spikes_equal": all(np.array_equal(ref_spikes[p], spikes[p]) for p in ref_spikes),
                "n_float_leaves": len(floats(split)),
                "max_diff": max(float(np.max(np.abs(a - np.asarray(b)), initial=0.0))
                                for a, b in zip(ref_floats, floats(split))),
            }
        cases[name] = case
    out["cases"] = cases

    # Gradient through the procedural custom VJP on per-device copies: each device
    # regenerates every synapse and keeps the cotangents of its own targets; the
    # all-gather's transpose sums the presynaptic parts and shard_map's transpose the
    # parts of the (replicated) weight. The default kernel ("auto": the platform's
    # choice, made by XLA) runs forward.
    small = network("procedural", "auto", False, n_e=16, n_i=8, k=(6, 4))
    rate_rec = Record(spikes=False, rates=["E", "I"], every=DT)

    def loss(params, method):
        amp, w = params
        m = eqx.tree_at(lambda m: (m.inputs[0].amplitude, m.projections[0].weights.weights),
                        small, (amp, w))
        if method is None:
            r = simulate(m, 5.0, DT, key=KEY, record=rate_rec)
        else:
            r = simulate_sharded(m, 5.0, DT, key=KEY, record=rate_rec, method=method)
        return jnp.sum(r.rates["E"]) + 2.0 * jnp.sum(r.rates["I"])

    params = (small.inputs[0].amplitude, small.projections[0].weights.weights)
    l_single, g_single = jax.value_and_grad(loss)(params, None)
    l_split, g_split = jax.value_and_grad(loss)(params, "shard_map")
    g_single, g_split = [np.asarray(g) for g in g_single], [np.asarray(g) for g in g_split]
    out["loss"] = [float(l_single), float(l_split)]
    out["grad_scale"] = [float(np.max(np.abs(g))) for g in g_single]
    out["grad_max_diff"] = [float(np.max(np.abs(a - b))) for a, b in zip(g_single, g_split)]
    print("RESULT" + json.dumps(out))
    '''
)


@pytest.fixture(scope="module", autouse=True)
def _child(tmp_path_factory):
    """Start the four-device child when the module starts, so that it compiles while
    the single-device tests run."""
    script = f"CASES = {CASES!r}\nMETHODS = {METHODS!r}\n" + _CHILD
    proc = _four_devices.start(script, tmp_path_factory.mktemp("sharding_connectivity"))
    yield proc
    _four_devices.stop(proc)


@pytest.fixture(scope="module")
def four_devices(_child):
    return _four_devices.result(_child)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name, container, kernel", [
    # The suite's `native` mark skips the native cases, with the reason, without the kernel.
    pytest.param(*c, id=c[0], marks=pytest.mark.native if c[2] == "native" else ())
    for c in CASES
])
def test_container_split_equals_single_device(four_devices, name, container, kernel, method):
    case = four_devices["cases"][name]
    # Both populations fire, so equal rasters are not equal silences.
    assert all(n > 10 for n in case["n_spikes"].values()), case["n_spikes"]
    got = case[method]
    assert got["spikes_equal"], (case["n_spikes"], got["n_spikes"])
    assert got["n_float_leaves"] > 5
    # Each target sums its arrivals in the same order as on one device.
    assert got["max_diff"] <= 1e-12, got["max_diff"]


def test_procedural_gradient_equals_single_device(four_devices):
    out = four_devices
    loss_single, loss_split = out["loss"]
    assert loss_single > 0.0 and abs(loss_split - loss_single) <= 1e-12 * loss_single
    # With respect to E's drive and to the E -> E weight; neither trivially zero.
    assert all(s > 1e-3 for s in out["grad_scale"]), out["grad_scale"]
    for diff, scale in zip(out["grad_max_diff"], out["grad_scale"]):
        assert diff <= 1e-9 * scale, (diff, scale)
