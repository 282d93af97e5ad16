r"""Split one network across devices by neurons, with JAX's own sharding.

```python
from neurojax.sharding import neuron_mesh, simulate_sharded

mesh = neuron_mesh()  # one axis over jax.devices(); or any one-axis Mesh
res = simulate_sharded(model, 1000.0, 0.1, key=jax.random.key(1), mesh=mesh)
res = simulate_sharded(model, 1000.0, 0.1, key=jax.random.key(1), method="shard_map")
# or, to keep calling nj.simulate (GSPMD):
model, state = shard_populations(model, model.init(key, 0.1), mesh)
res = nj.simulate(model, 1000.0, 0.1, state=state)
```

Every population's neurons are split into equal contiguous slices, one per device.
Both methods compute the same numbers as one device (identical spikes, state equal
to rounding: a sum split across devices may be added in a different order) and
return the same `Result` as `nj.simulate`, in the original neuron order. They differ
in who decides the communication.

**`method="gspmd"`** (default; `shard_populations` + `nj.simulate`). Per-neuron
parameters and state, the synaptic state and delay ring buffers of the neurons a
projection targets, the rows of dense weight matrices (postsynaptic neurons) and of
sparse weight tables (presynaptic neurons) are placed with a `NamedSharding` over the
mesh's one axis, and the single `jax.jit` in `simulate` is partitioned by XLA's SPMD
partitioner: each device advances its own neurons and the compiler inserts the
collectives that propagation needs. Nothing but placement is needed, the whole run
stays traceable (`jax.jit`/`jax.grad` around it), and the arrays of every population
and input are split; but the collectives are the compiler's choice (e.g. a sparse table split by
presynaptic rows scatters into every device's buffers).

**`method="shard_map"`** (`jax.shard_map`, explicit). Each device holds a local
network: its slice of every population, the projections onto its neurons (dense
rows; sparse synapses whose target is local, re-indexed and re-padded to a common
width; procedural synapses regenerated whole from the same seed, of which each device
adds those onto its own neurons at local indices), their synaptic state and ring
buffers. Once per step every population's
output is all-gathered (`jax.lax.all_gather(..., tiled=True)`), so each device
delivers the spikes of all presynaptic neurons into its own postsynaptic neurons, as
NEST does with MPI: the only communication is one gather of `n` outputs per
population and step, whatever the connectivity. Some work runs unsplit, on every
device, so that the result equals one device's exactly:

- inputs (`Poisson`, `OrnsteinUhlenbeck`, `Constant`, ...) are evaluated for their
  whole target population (a stochastic input draws the same numbers as on one
  device) and each device keeps its slice of the drive; their cost does not shrink
  with the number of devices;
- procedural connectivity (`Procedural`) stores no synapse to regroup: every device
  regenerates the synapses of every active presynaptic neuron and adds those onto its
  own neurons (the adds shrink with the number of devices, the hashing does not);
- a population whose neuron state holds anything but per-neuron arrays (a PRNG key:
  `PoissonPopulation`, asynchronous `Binary`) is advanced whole on every device, with
  the projections onto it; its size need not divide the device count.

Prefer `"shard_map"` for large spiking networks with sparse connectivity, where a
fixed, small exchange per step matters; prefer `"gspmd"` to wrap the whole run in
`jax.jit` or to split input-dominated networks. `"shard_map"` regroups the sparse
tables on the host, so call it outside `jax.jit`; `jax.grad` of a function that
calls it, with respect to float parameters, works.

A per-neuron parameter is recognised by its leading dimension: every parameter array
of a split population whose first axis has the population's length `n` is split,
every other array is copied to all devices (so a per-compartment array whose length
happens to equal `n` is ambiguous: choose another `n` or `"gspmd"`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PRNGKeyArray

from ._abstract import AbstractInput, Drive
from ._misc import is_concrete
from .connectivity.procedural import ProceduralWeights
from .connectivity.weights import ConstrainedWeights, SparseWeights
from .network import BuiltProjection, NetworkModel, NetworkState, Population, SharedProjections
from .simulate import Checkpoint, Record, Result, assemble_result, prepare_run, run_scan, simulate


def mesh_1d(devices: Sequence[jax.Device] | None, axis_name: str) -> Mesh:
    """A one-axis `Mesh` called `axis_name` over `devices` (default `jax.devices()`)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError(f"a {axis_name!r} mesh needs at least one device.")
    return Mesh(np.asarray(devices), (axis_name,))


def gather(tree: Any) -> Any:
    """`tree` with every array that spans several processes gathered whole onto this
    process (`jax.experimental.multihost_utils.process_allgather`); other leaves are
    returned as they are. Across processes (`jax.distributed`), a sharded run's
    `Result` holds global arrays of which each process has its own devices' share:
    `gather(result)` (called by every process) gives each of them the whole result, to
    read, save or plot. Within one process it changes nothing."""
    from jax.experimental import multihost_utils

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return jnp.asarray(multihost_utils.process_allgather(x, tiled=True))
        return x

    return jax.tree.map(one, tree)


def neuron_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis `Mesh` named `"neurons"` over `devices` (default `jax.devices()`)."""
    return mesh_1d(devices, "neurons")


def _axis(mesh: Mesh, what: str = "shard_populations") -> str:
    if not isinstance(mesh, Mesh) or len(mesh.axis_names) != 1:
        raise ValueError(
            f"{what} needs a one-axis jax.sharding.Mesh (e.g. neuron_mesh()), got {mesh!r}."
        )
    return mesh.axis_names[0]


def _check_divisible(pop: Population, n_dev: int) -> None:
    if pop.n % n_dev:
        raise ValueError(
            f"population {pop.name!r} size n [neurons] = {pop.n} must be a multiple of "
            f"the {n_dev} devices of the mesh to be split evenly."
        )


def _place(tree: Any, sizes: tuple[int, ...], mesh: Mesh, axis: int = 0) -> Any:
    """Shard, along `axis`, every array whose length there is one of `sizes` (neuron
    counts); replicate every other array."""
    name = _axis(mesh)

    def put(x):
        if not isinstance(x, jax.Array):
            return x
        spec = [None] * x.ndim
        if x.ndim > axis and x.shape[axis] in sizes:
            spec[axis] = name
        return jax.device_put(x, NamedSharding(mesh, PartitionSpec(*spec)))

    return jax.tree.map(put, tree)


def shard_populations(
    model: NetworkModel, state: NetworkState, mesh: Mesh
) -> tuple[NetworkModel, NetworkState]:
    """Place a built network and its state on `mesh`, each population's neurons split
    evenly across the mesh's one axis (see the module docstring for what is split).

    **Arguments:**

    - `model`: A `NetworkModel` from `Network.build(key)`.
    - `state`: Its state, e.g. `model.init(key, dt)`.
    - `mesh`: A one-axis `jax.sharding.Mesh`, e.g. `neuron_mesh()`.

    **Returns:**

    `(model, state)` with the same values, laid out across the devices; pass them to
    `nj.simulate(model, ..., state=state)`.

    Raises `ValueError` for a mesh with other than one axis and for a population whose
    size is not a multiple of the number of devices.
    """
    if not isinstance(model, NetworkModel) or not isinstance(state, NetworkState):
        raise ValueError(
            "shard_populations needs a built NetworkModel and its NetworkState, got "
            f"{type(model).__name__} and {type(state).__name__}."
        )
    _axis(mesh)
    for pop in model.populations:
        _check_divisible(pop, mesh.devices.size)
    sizes = [pop.n for pop in model.populations]
    populations = tuple(_place(p, (p.n,), mesh) for p in model.populations)
    projections = SharedProjections(tuple(
        # Dense weights are (post, pre): rows follow the targets; sparse tables are
        # (pre, out): rows follow the sources. A shared scalar weight stays one leaf.
        _place(p, (sizes[p.post], sizes[p.pre]), mesh) for p in model.projections
    ), getattr(model.projections, "groups", ()))
    inputs = tuple(
        _place(inp, (sizes[t],), mesh) for inp, t in zip(model.inputs, model.input_targets)
    )
    model = eqx.tree_at(
        lambda m: (m.populations, m.projections, m.inputs), model, (populations, projections, inputs)
    )
    state = eqx.tree_at(
        lambda s: (s.step, s.neurons, s.synapses, s.buffers, s.inputs),
        state,
        (
            _place(state.step, (), mesh),
            tuple(_place(s, (n,), mesh) for s, n in zip(state.neurons, sizes)),
            # Presynaptic kinetics (Saturating) hold one state per presynaptic neuron.
            tuple(_place(s, (sizes[p.pre if p.synapse.presynaptic else p.post],), mesh)
                  for s, p in zip(state.synapses, model.projections)),
            # Ring buffers are (slots, post).
            tuple(
                _place(b, (sizes[p.post],), mesh, axis=1)
                for b, p in zip(state.buffers, model.projections)
            ),
            tuple(_place(s, (sizes[t],), mesh) for s, t in zip(state.inputs, model.input_targets)),
        ),
    )
    return model, state


# --------------------------------------------------------------------------- shard_map


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _per_neuron(x: Any, n: int) -> bool:
    return isinstance(x, jax.Array) and x.ndim >= 1 and x.shape[0] == n and not _is_key(x)


def _splittable(pop: Population, neuron_state: Any) -> bool:
    """Whether a population's state is made of per-neuron arrays only. Anything else
    (a PRNG key, a shared variable) is advanced whole on every device, which keeps the
    run exact: each device draws what one device would."""
    return all(_per_neuron(x, pop.n) for x in jax.tree.leaves(neuron_state))


class _SlicedInput(AbstractInput[Any]):
    """An input evaluated for its whole target population on every device; each
    device keeps its own slice of the drive (inside `jax.shard_map` only)."""

    inner: AbstractInput
    n: int = eqx.field(static=True)  # neurons per device
    axis: str = eqx.field(static=True)
    target: str = eqx.field(static=True)

    def init(self, n: int, *, key: PRNGKeyArray | None = None):
        return self.inner.init(n, key=key)

    def step(self, state, t, dt: float) -> tuple[Any, Drive]:
        state, drive = self.inner.step(state, t, dt)
        start = jax.lax.axis_index(self.axis) * self.n

        def cut(x):
            return jax.lax.dynamic_slice_in_dim(x, start, self.n) if x.ndim else x

        return state, Drive(cut(drive.i), cut(drive.g), cut(drive.q), cut(drive.qg))


def _split_sparse(w: SparseWeights, n_dev: int) -> SparseWeights:
    """For every device, the synapses whose target is one of its `n_post / n_dev`
    neurons, re-indexed to local targets, left-packed in their original order (so each
    target sums its arrivals in the same order as on one device) and padded to a common
    width. The per-device tables are stacked along the rows: `(n_dev * n_pre, width)`,
    split by `PartitionSpec(axis)` into one `(n_pre, width)` table per device."""
    if not is_concrete(w.targets):
        raise ValueError(
            "simulate_sharded(method='shard_map') regroups sparse synapses by target "
            "device and needs concrete targets: call it outside jax.jit."
        )
    targets = np.asarray(w.targets)
    n_pre = targets.shape[0]
    n_local = w.n_post // n_dev
    device = np.arange(n_dev)[:, None, None]
    # Padding entries (target n_post) belong to no device.
    owner = np.where(targets < w.n_post, targets // n_local, n_dev)
    mine = owner[None] == device  # (n_dev, n_pre, max_out)
    counts = mine.sum(axis=2)
    width = max(1, int(counts.max()))
    cols = np.argsort(~mine, axis=2, kind="stable")[..., :width]
    rows = np.broadcast_to(np.arange(n_pre)[None, :, None], cols.shape)
    valid = np.arange(width)[None, None, :] < counts[..., None]
    local = np.where(valid, targets[rows, cols] - device * n_local, n_local)

    def pack(x):
        return jnp.where(jnp.asarray(valid), x[rows, cols], 0.0).reshape(n_dev * n_pre, width)

    return dataclasses.replace(
        w,
        weights=w.weights if w.weights.ndim == 0 else pack(w.weights),
        targets=jnp.asarray(local.reshape(n_dev * n_pre, width), dtype=w.targets.dtype),
        delays=None if w.delays is None else pack(w.delays),
        n_post=n_local,
    )


def _spec(axis: str | None, n: int | None = None):
    """Leaf spec: `P(axis)` for arrays whose leading dimension is `n` (any array with
    `ndim >= 1` when `n` is None), `P()` for other arrays, None for non-arrays."""

    def spec(x):
        if not eqx.is_array(x):
            return None
        split = axis is not None and x.ndim >= 1 and (n is None or _per_neuron(x, n))
        return PartitionSpec(axis) if split else PartitionSpec()

    return spec


class _ShardMapNetwork(eqx.Module):
    """A network laid out for `jax.shard_map`: `local` has each device's static sizes
    (`n / n_dev` neurons per split population) and array leaves arranged so that
    splitting their leading axis over the mesh gives each device its local arrays.
    Its `step` maps the global `NetworkState` (laid out as for one device) to the next
    one, like `NetworkModel.step`: only the step itself is a `shard_map`, and the scan
    and recording around it are `simulate`'s."""

    local: NetworkModel
    split: tuple[bool, ...] = eqx.field(static=True)
    used: tuple[bool, ...] = eqx.field(static=True)  # output propagated by some projection
    mesh: Mesh = eqx.field(static=True)

    @property
    def names(self) -> tuple[str, ...]:  # read by `simulate._sample_block`
        return self.local.names

    @property
    def axis(self) -> str:
        return self.mesh.axis_names[0]

    @property
    def n_dev(self) -> int:
        return self.mesh.devices.size

    def model_specs(self) -> NetworkModel:
        m, axis, d = self.local, self.axis, self.n_dev
        whole = _spec(None)
        pops = tuple(
            Population(p.name, p.n, jax.tree.map(_spec(axis, p.n * d) if s else whole, p.neuron), {})
            for p, s in zip(m.populations, self.split)
        )
        projs = []
        for p in m.projections:
            s = self.split[p.post]
            n_post = m.populations[p.post].n * d
            projs.append(BuiltProjection(
                name=p.name, pre=p.pre, post=p.post,
                weights=jax.tree.map(_spec(axis) if s else whole, p.weights),
                # Presynaptic kinetics run whole on every device (stepped with the
                # gathered presynaptic output).
                synapse=jax.tree.map(
                    _spec(axis, n_post) if s and not p.synapse.presynaptic else whole, p.synapse),
                receptor=jax.tree.map(_spec(axis, n_post) if s else whole, p.receptor),
                delay=p.delay, initial=None,
            ))
        inputs = tuple(jax.tree.map(whole, inp) for inp in m.inputs)
        return NetworkModel(populations=pops, projections=tuple(projs), inputs=inputs,
                            input_targets=m.input_targets,
                            modulators=tuple(jax.tree.map(whole, mod) for mod in m.modulators))

    def state_specs(self, state: NetworkState) -> NetworkState:
        axis, d = self.axis, self.n_dev
        pops = self.local.populations
        whole = _spec(None)
        specs = jax.tree.map(whole, state)
        neurons = tuple(
            jax.tree.map(_spec(axis, p.n * d) if s else whole, x)
            for p, s, x in zip(pops, self.split, state.neurons)
        )
        synapses = tuple(
            jax.tree.map(_spec(axis, pops[p.post].n * d)
                         if self.split[p.post] and not p.synapse.presynaptic else whole, x)
            for p, x in zip(self.local.projections, state.synapses)
        )
        # Ring buffers are (slots, post).
        buffers = tuple(
            PartitionSpec(None, axis) if self.split[p.post] else PartitionSpec()
            for p in self.local.projections
        )
        return eqx.tree_at(
            lambda s: (s.neurons, s.synapses, s.buffers), specs, (neurons, synapses, buffers)
        )

    def output_specs(self) -> tuple[PartitionSpec, ...]:
        return tuple(PartitionSpec(self.axis) if s else PartitionSpec() for s in self.split)

    def place(self, state: NetworkState) -> tuple["_ShardMapNetwork", NetworkState]:
        """Put the model's arrays and `state` on the mesh as `step` expects them."""
        def put(tree, specs):
            return jax.tree.map(
                lambda x, s: jax.device_put(x, NamedSharding(self.mesh, s)), tree, specs
            )

        dyn, static = eqx.partition(self.local, eqx.is_array)
        local = eqx.combine(put(dyn, self.model_specs()), static)
        return eqx.tree_at(lambda m: m.local, self, local), put(state, self.state_specs(state))

    def step(self, state: NetworkState, t, dt: float) -> tuple[NetworkState, tuple]:
        axis = self.axis
        dyn, static = eqx.partition(self.local, eqx.is_array)

        def exchange(i, out):
            if not (self.split[i] and self.used[i]):
                return out
            return jax.lax.all_gather(out, axis, tiled=True)

        def body(dyn, state, t):
            model = eqx.combine(dyn, static)
            return model.step(state, t, dt, exchange=exchange)

        state_specs = self.state_specs(state)
        fn = jax.shard_map(
            body,
            mesh=self.mesh,
            in_specs=(self.model_specs(), state_specs, PartitionSpec()),
            out_specs=(state_specs, self.output_specs()),
            # What is replicated (inputs, whole populations, the step counter) is
            # computed identically on every device from replicated values and gathered
            # outputs; the check that would prove it needs every primitive to carry
            # varying-axis types, which `eqx.error_if` and FFI calls do not.
            check_vma=False,
        )
        return fn(dyn, state, t)


def _split_network(model: NetworkModel, state: NetworkState, mesh: Mesh) -> _ShardMapNetwork:
    """Build the per-device networks of `model` for `jax.shard_map` (see the module
    docstring); `state` (e.g. `model.init(key, dt)`) tells which populations split."""
    axis = _axis(mesh)
    plastic = [p.name for p in model.projections if p.plasticity is not None]
    if plastic:
        raise ValueError(
            f"simulate_sharded(method='shard_map') does not support plastic projections yet "
            f"({plastic}); use method='gspmd', which partitions the plastic state too."
        )
    placed = [p.name for p in model.projections if getattr(p, "compartments", None) is not None
              or getattr(p, "n_comp", None) is not None]
    placed += [f"{type(i).__name__} input to {i.target!r}" for i in model.inputs
               if getattr(i, "fractions", None) is not None]
    if placed:
        raise ValueError(
            "simulate_sharded(method='shard_map') does not support synapses or inputs placed "
            f"on compartments (nj.neurons.Compartments) yet ({placed}); use method='gspmd'."
        )
    n_dev = mesh.devices.size
    split = tuple(_splittable(p, s) for p, s in zip(model.populations, state.neurons))
    for pop, s in zip(model.populations, split):
        if s:
            _check_divisible(pop, n_dev)
    pops = tuple(
        Population(p.name, p.n // n_dev if s else p.n, p.neuron, {})
        for p, s in zip(model.populations, split)
    )
    projs = []
    for p in model.projections:
        if isinstance(p.weights, ConstrainedWeights):
            raise ValueError(
                f"projection {p.name!r} is constrained (nj.train.constrain); shard the "
                "trained model after nj.train.resolve(model), which stores its weights."
            )
        # Dense rows are split by the mesh as they are; sparse tables are regrouped;
        # procedural synapses are regenerated whole on every device, which keeps
        # those onto its own neurons.
        w = p.weights
        if split[p.post] and isinstance(w, SparseWeights):
            w = _split_sparse(w, n_dev)
        elif split[p.post] and isinstance(w, ProceduralWeights):
            w = dataclasses.replace(w, post_axis=axis, n_post_local=w.n_post // n_dev)
        projs.append(BuiltProjection(
            name=p.name, pre=p.pre, post=p.post, weights=w, synapse=p.synapse,
            receptor=p.receptor, delay=p.delay, initial=None,
        ))
    inputs = tuple(
        _SlicedInput(inner=inp, n=pops[t].n, axis=axis, target=inp.target) if split[t] else inp
        for inp, t in zip(model.inputs, model.input_targets)
    )
    local = NetworkModel(populations=pops, projections=tuple(projs), inputs=inputs,
                         input_targets=model.input_targets, modulators=model.modulators)
    n_pop = len(pops)
    return _ShardMapNetwork(
        local=local,
        split=split,
        used=tuple(any(p.pre == i for p in model.projections) for i in range(n_pop)),
        mesh=mesh,
    )


def simulate_sharded(
    model: NetworkModel,
    duration: float,
    dt: float,
    *,
    key: PRNGKeyArray | None = None,
    state: NetworkState | None = None,
    mesh: Mesh | None = None,
    record: Record | None = None,
    checkpoint: bool | int | float | Checkpoint = False,
    truncate: float | int | None = None,
    method: str = "gspmd",
) -> Result:
    """`nj.simulate` with every population split across the devices of `mesh`.

    **Arguments:**

    - `model`, `duration` [ms], `dt` [ms], `key`, `state`, `record`, `checkpoint`,
      `truncate`: as for `nj.simulate`.
    - `mesh`: A one-axis `jax.sharding.Mesh` (default: `neuron_mesh()`, all devices).
    - `method`: `"gspmd"` (the compiler partitions `simulate`) or `"shard_map"` (each
      device advances a local network and outputs are all-gathered every step); see
      the module docstring for when each is preferable.

    Returns the same `Result` as `nj.simulate`, in the original neuron order (recorded
    arrays and the final state stay split across the devices; continue with either
    function). Split populations' sizes must be multiples of the device count.

    Across processes (`jax.distributed.initialize`, one process per host or per local
    device group), every process builds the same model from the same key and calls
    this with a mesh over all processes' devices (`neuron_mesh()` after initialising);
    `gather(result)` then gives each process the whole result (guide "Running on GPU
    and across devices" has the launch recipe).
    """
    if method not in ("gspmd", "shard_map"):
        raise ValueError(f"simulate_sharded method must be 'gspmd' or 'shard_map', got {method!r}.")
    if mesh is not None:
        _axis(mesh, f"simulate_sharded(method={method!r})")
    if state is None:
        if key is None:
            raise ValueError("simulate_sharded needs `key` (a jax.random key) or an initial `state`.")
        state = model.init(key, dt)
    mesh = neuron_mesh() if mesh is None else mesh
    if method == "gspmd":
        model, state = shard_populations(model, state, mesh)
        return simulate(model, duration, dt, state=state, record=record, checkpoint=checkpoint,
                        truncate=truncate)

    if not isinstance(model, NetworkModel):
        raise ValueError(
            f"simulate_sharded needs a built network (Network.build(key)), got {type(model).__name__}."
        )
    run, state = prepare_run(model, duration, dt, state, record, checkpoint, truncate)
    network, state = _split_network(model, state, mesh).place(state)
    state, recorded = run_scan(network, state, run)
    return assemble_result(model, run, state, recorded)
