"""`sweep` (grids of parameters, vmapped and sharded) and `sharding` (one network split
across devices by neurons).

The multi-device checks run in one child process with four XLA host (CPU) devices:
the device count is fixed when jax initialises, and this process already has one.
The child compiles three small simulations (single device, neuron-sharded, and a
sharded sweep); its Python-loop reference reuses the first compilation.
"""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from neurojax.inputs.deterministic import Constant
from neurojax.network import Network, Population
from neurojax.neurons.lif import LIF
from neurojax.sharding import shard_populations, simulate_sharded
from neurojax.sweep import sweep

from . import _four_devices


def _f(a, b):
    """Asymmetric in its arguments, with a vector and a tree output, so that a swapped
    axis order or a misplaced grid point changes the result."""
    return {"y": jnp.sin(a) * b + a, "v": jnp.stack([a, b, a * b])}


A = jnp.linspace(-1.0, 2.0, 3)
B = jnp.array([0.5, 1.5, -2.0, 3.0])


def _loop(fn, points):
    outs = [fn(**p) for p in points]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)


def _close(x, y, rtol=1e-14):
    # vmapped and scalar evaluations of the same elementwise ops: equal to rounding.
    for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=0.0)


def test_outer_grid_equals_python_loop_in_axis_order():
    out = sweep(_f, a=A, b=B)
    assert out["y"].shape == (3, 4) and out["v"].shape == (3, 4, 3)
    ref = _loop(_f, [{"a": a, "b": b} for a in A for b in B])
    _close(jax.tree.map(lambda x: x.reshape((12,) + x.shape[2:]), out), ref)
    # Keyword order sets the axis order.
    swapped = sweep(_f, b=B, a=A)
    assert swapped["y"].shape == (4, 3)
    _close(swapped["y"], out["y"].T)


def test_zip_pairs_values_and_equals_python_loop():
    b = B[:3]
    out = sweep(_f, a=A, b=b, zip=True)
    assert out["y"].shape == (3,) and out["v"].shape == (3, 3)
    _close(out, _loop(_f, [{"a": x, "b": y} for x, y in zip(A, b)]))


def test_flat_returns_points_and_grid():
    out, grid = sweep(_f, a=A, b=B, flat=True)
    assert set(grid) == {"a", "b"} and grid["a"].shape == grid["b"].shape == (12,)
    np.testing.assert_array_equal(np.asarray(grid["a"]), np.repeat(np.asarray(A), 4))
    np.testing.assert_array_equal(np.asarray(grid["b"]), np.tile(np.asarray(B), 3))
    _close(out, jax.vmap(_f)(grid["a"], grid["b"]))


def test_axes_keep_their_dtypes():
    out = sweep(lambda n, x: (n, x), n=jnp.arange(3), x=jnp.array([0.5, 1.0]))
    assert out[0].dtype == jnp.arange(3).dtype and out[1].dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(out[0]), np.repeat(np.arange(3), 2).reshape(3, 2))


@pytest.fixture(scope="module")
def unchunked():
    return sweep(_f, a=A, b=B)


@pytest.mark.parametrize("batch_size", [1, 5, 12, 100])
def test_batch_size_chunks_equal_unchunked_and_trace_once(batch_size, unchunked):
    traces = []

    def f(a, b):
        traces.append(None)  # runs once per trace, not per grid point
        return _f(a, b)

    chunked = sweep(f, a=A, b=B, batch_size=batch_size)
    # One trace whatever the number of chunks (12 for batch_size=1): the chunks are a
    # scan over identically shaped pieces, so there is one compilation too.
    assert len(traces) == 1
    _close(chunked, unchunked)


def test_fn_may_close_over_arrays_and_tracers():
    # What fn closes over is lifted into arguments: works under jit and grad, and the
    # gradient flows to the closed-over value. d/dx sum_a (a x)^2 = 2 x sum_a a^2.
    a = jnp.array([1.0, 2.0, 3.0])

    def loss(x):
        return jnp.sum(sweep(lambda a: (a * x) ** 2, a=a))

    assert float(jax.jit(loss)(2.0)) == pytest.approx(4.0 * 14.0, rel=1e-14)
    assert float(jax.grad(loss)(2.0)) == pytest.approx(2.0 * 2.0 * 14.0, rel=1e-14)


def _reads_global(a):
    return a * B[1]


def test_explicit_devices_and_global_arrays():
    # A function without a closure that reads a global array still sees its values.
    _close(sweep(_reads_global, a=A, devices=jax.devices()), A * B[1])


def test_fn_defaults_and_kwargs_are_allowed():
    out = sweep(lambda a, b=2.0: a * b, a=A)
    _close(out, A * 2.0)
    out = sweep(lambda **p: p["a"] - p["c"], a=A, c=B[:3], zip=True)
    _close(out, A - B[:3])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "at least one named axis"),
        ({"a": 1.0, "b": B}, "axis 'a' must be a non-empty 1-D array.*shape \\(\\)"),
        ({"a": jnp.ones((2, 2)), "b": B}, "axis 'a' must be a non-empty 1-D array.*\\(2, 2\\)"),
        ({"a": jnp.zeros((0,)), "b": B}, "axis 'a' must be a non-empty 1-D array"),
        ({"a": A, "b": B, "zip": True}, "equal length.*'a': 3, 'b': 4"),
        ({"a": A, "c": B}, "do not match the arguments of fn"),  # unknown argument c
        ({"a": A}, "do not match the arguments of fn"),  # b has no axis and no default
        ({"a": A, "b": B, "batch_size": 0}, "batch_size .* \\[1, inf\\)"),
        ({"a": A, "b": B, "batch_size": -3}, "batch_size .* got -3"),
        ({"a": jax.random.split(jax.random.key(0), 3), "b": B}, "PRNG keys"),
        ({"a": A, "b": B, "devices": []}, "mesh needs at least one device"),
    ],
)
def test_bad_axes_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sweep(_f, **kwargs)


def _tiny_net(n=8):
    lif = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0)
    return Network([Population("E", n, lif)], inputs=[Constant("E", amplitude=100.0)])


def test_shard_populations_rejects_bad_mesh_and_missing_key():
    model = _tiny_net().build(jax.random.key(0))
    state = model.init(jax.random.key(1), 0.1)
    two_axes = Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("a", "b"))
    with pytest.raises(ValueError, match="one-axis jax.sharding.Mesh"):
        shard_populations(model, state, two_axes)
    with pytest.raises(ValueError, match="needs `key`"):
        simulate_sharded(model, 1.0, 0.1)


# --------------------------------------------------------------------------- 4 devices

_CHILD = textwrap.dedent(
    r'''
    import jax.numpy as jnp
    import equinox as eqx
    import numpy as np
    from neurojax.connectivity.builders import FixedProbability
    from neurojax.connectivity.weights import Dense, Sparse
    from neurojax.distributions import Normal, Uniform
    from neurojax.inputs.deterministic import Constant
    from neurojax.network import Network, Population, Projection
    from neurojax.neurons.lif import LIF
    from neurojax.sharding import neuron_mesh, shard_populations, simulate_sharded
    from neurojax.simulate import Record, simulate
    from neurojax.sweep import sweep
    from neurojax.synapses.kinetics import Exponential
    from neurojax.synapses.receptors import Conductance

    DT, T = 0.1, 10.0  # [ms]
    KEY = jax.random.key(1)
    REC = Record(spikes=True, rates=["E"], v={"E": None, "I": None}, every=1.0)

    # 160 E + 40 I LIF cells: E projections dense (per-synapse weights, 0.5 ms
    # delay), I -> E sparse and event-driven, graded constant drive so the cells
    # desynchronise.
    lif = LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0)
    v0 = {"v": Uniform(-60.0, -50.0)}
    amp_e = jnp.linspace(150.0, 250.0, 160)  # [pA]
    net = Network(
        [Population("E", 160, lif, initial=v0), Population("I", 40, lif, initial=v0)],
        [Projection("E", ["E", "I"], FixedProbability(0.1), weight=Normal(3.0, 0.5),
                    synapse=Exponential(tau=5.0), receptor=Conductance(e_rev=0.0),
                    delay=0.5, layout=Dense()),
         Projection("I", "E", FixedProbability(0.2), weight=20.0,
                    synapse=Exponential(tau=10.0), receptor=Conductance(e_rev=-80.0),
                    layout=Sparse(chunk=4))],
        inputs=[Constant("E", amplitude=amp_e), Constant("I", amplitude=180.0)],
    )
    model = net.build(jax.random.key(0))

    # --- one network split by neurons
    single = simulate(model, T, DT, key=KEY, record=REC)
    split = simulate_sharded(model, T, DT, key=KEY, record=REC)
    split_state = split.state
    out["n_spikes"] = {p: int(single.spikes[p].sum()) for p in single.spikes}
    # Compared in numpy: every eager jax op on a new shape would compile.
    single, split = jax.tree.map(np.asarray, (single, split))
    out["spikes_equal"] = all(
        np.array_equal(single.spikes[p], split.spikes[p]) for p in single.spikes)
    out["max_diff"] = max(
        float(np.max(np.abs(a - b), initial=0.0))
        for a, b in zip(jax.tree.leaves((single.variables, single.rates, single.state)),
                        jax.tree.leaves((split.variables, split.rates, split.state))))
    v = split_state.neurons[0].v
    out["v_shard_shape"] = list(v.sharding.shard_shape(v.shape))
    out["v_devices"] = len(v.sharding.device_set)
    buf = split_state.buffers[0]
    out["buffer_shard_shape"] = list(buf.sharding.shard_shape(buf.shape))
    try:
        odd = Network([Population("A", 42, lif)], inputs=[Constant("A", amplitude=100.0)])
        m = odd.build(jax.random.key(0))
        shard_populations(m, m.init(KEY, DT), neuron_mesh())
        out["odd_error"] = None
    except ValueError as e:
        out["odd_error"] = str(e)

    # --- a sweep of the same network over 4 devices vs a Python loop (the loop's
    # runs have the shapes of `single`, so they reuse its compilation)
    def run(scale, i_i):
        m = eqx.tree_at(lambda m: (m.inputs[0].amplitude, m.inputs[1].amplitude),
                        model, (amp_e * scale, i_i))
        return simulate(m, T, DT, key=KEY, record=REC)

    scales, i_is = jnp.array([0.8, 1.0, 1.3]), jnp.array([150.0, 260.0])  # 6 points -> 8
    swept = jax.tree.map(np.asarray, sweep(run, scale=scales, i_i=i_is))
    loop = [[jax.tree.map(np.asarray, run(s, i)) for i in i_is] for s in scales]
    out["sweep_shape"] = list(swept.spikes["E"].shape)
    out["sweep_spikes_equal"] = all(
        np.array_equal(swept.spikes[p][a, b], loop[a][b].spikes[p])
        for p in ("E", "I") for a in range(3) for b in range(2))
    out["sweep_max_diff"] = max(
        float(np.max(np.abs(swept.variables[k][a, b] - loop[a][b].variables[k])))
        for k in swept.variables for a in range(3) for b in range(2))
    out["sweep_rates"] = swept.rates["E"].mean(-1).tolist()

    # --- cheap function: 4 devices vs 1, padding, chunks, output layout
    f = lambda a, b: jnp.stack([jnp.sin(a) * b, a - b])
    a, b = jnp.linspace(0.0, 1.0, 3), jnp.arange(3.0)  # 9 points -> 12 on 4 devices
    one = sweep(f, a=a, b=b, devices=jax.devices()[:1])
    out["cheap_equal"] = all(
        np.array_equal(np.asarray(one), np.asarray(sweep(f, a=a, b=b, **kw)))
        for kw in ({}, {"batch_size": 5}, {"batch_size": 1}))
    even = sweep(f, a=jnp.linspace(0.0, 1.0, 4), b=b)  # 12 points: no padding
    out["even_devices"] = len(even.sharding.device_set)
    print("RESULT" + json.dumps(out))
    '''
)


@pytest.fixture(scope="module", autouse=True)
def _child(tmp_path_factory):
    """Start the four-device child when the module starts, so that it compiles while
    the single-device tests run."""
    proc = _four_devices.start(_CHILD, tmp_path_factory.mktemp("sweep"))
    yield proc
    _four_devices.stop(proc)


@pytest.fixture(scope="module")
def four_devices(_child):
    return _four_devices.result(_child)


def test_neuron_sharded_network_equals_single_device(four_devices):
    out = four_devices
    # A test that cannot fail on a silent network: both populations must fire.
    assert out["n_spikes"]["E"] > 20 and out["n_spikes"]["I"] > 20
    assert out["spikes_equal"]
    # Same arithmetic, possibly split sums: equal to x64 rounding.
    assert out["max_diff"] <= 1e-12
    # Each device holds a quarter of every population and of its synaptic buffers.
    assert out["v_shard_shape"] == [40] and out["v_devices"] == 4
    assert out["buffer_shard_shape"][1] == 40


def test_uneven_population_split_raises(four_devices):
    msg = four_devices["odd_error"]
    assert msg is not None and "'A'" in msg and "42" in msg and "4 devices" in msg


def test_sharded_sweep_of_network_equals_python_loop(four_devices):
    out = four_devices
    assert out["sweep_shape"] == [3, 2, 100, 160]  # (scale, i_i, steps, E cells)
    assert out["sweep_spikes_equal"]
    # Batched and unbatched matrix products may round differently.
    assert out["sweep_max_diff"] <= 1e-9
    rates = np.asarray(out["sweep_rates"])
    # The grid points really differ: more drive to E raises the E rate.
    assert np.all(np.diff(rates, axis=0) > 0)


def test_sharded_sweep_equals_single_device(four_devices):
    assert four_devices["cheap_equal"]
    assert four_devices["even_devices"] == 4
