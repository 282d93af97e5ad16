r"""Split one network across devices by neurons, with JAX's own sharding.

```python
from neurojax.sharding import neuron_mesh, simulate_sharded

mesh = neuron_mesh()  # one axis over jax.devices(); or any one-axis Mesh
res = simulate_sharded(model, 1000.0, 0.1, key=jax.random.key(1), mesh=mesh)
# or, to keep calling nj.simulate:
model, state = shard_populations(model, model.init(key, 0.1), mesh)
res = nj.simulate(model, 1000.0, 0.1, state=state)
```

Every population's neurons are split into equal contiguous slices, one per device:
per-neuron parameters and state, the synaptic state and delay ring buffers of the
neurons a projection targets, the rows of dense weight matrices (postsynaptic
neurons) and of sparse weight tables (presynaptic neurons). These arrays are placed
with a `NamedSharding` over the mesh's one axis, and the single `jax.jit` in
`simulate` is partitioned by XLA's SPMD partitioner (GSPMD): each device advances
its own neurons, and the collectives that propagation needs (the spikes of every
step gathered onto every device, as NEST does with MPI) are inserted by the
compiler. Scalars, step counters and keys are replicated.

The partitioned program computes the same numbers as the unpartitioned one:
identical spikes, state equal to rounding (a sum split across devices may be added
in a different order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PRNGKeyArray

from .network import NetworkModel, NetworkState
from .simulate import Record, Result, simulate


def mesh_1d(devices: Sequence[jax.Device] | None, axis_name: str) -> Mesh:
    """A one-axis `Mesh` called `axis_name` over `devices` (default `jax.devices()`)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError(f"a {axis_name!r} mesh needs at least one device.")
    return Mesh(np.asarray(devices), (axis_name,))


def neuron_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis `Mesh` named `"neurons"` over `devices` (default `jax.devices()`)."""
    return mesh_1d(devices, "neurons")


def _axis(mesh: Mesh) -> str:
    if not isinstance(mesh, Mesh) or len(mesh.axis_names) != 1:
        raise ValueError(
            "shard_populations needs a one-axis jax.sharding.Mesh (e.g. neuron_mesh()), "
            f"got {mesh!r}."
        )
    return mesh.axis_names[0]


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
    n_dev = mesh.devices.size
    for pop in model.populations:
        if pop.n % n_dev:
            raise ValueError(
                f"population {pop.name!r} size n [neurons] = {pop.n} must be a multiple of "
                f"the {n_dev} devices of the mesh to be split evenly."
            )
    sizes = [pop.n for pop in model.populations]
    populations = tuple(_place(p, (p.n,), mesh) for p in model.populations)
    projections = tuple(
        # Dense weights are (post, pre): rows follow the targets; sparse tables are
        # (pre, out): rows follow the sources.
        _place(p, (sizes[p.post], sizes[p.pre]), mesh) for p in model.projections
    )
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
            tuple(_place(s, (sizes[p.post],), mesh) for s, p in zip(state.synapses, model.projections)),
            # Ring buffers are (slots, post).
            tuple(
                _place(b, (sizes[p.post],), mesh, axis=1)
                for b, p in zip(state.buffers, model.projections)
            ),
            tuple(_place(s, (sizes[t],), mesh) for s, t in zip(state.inputs, model.input_targets)),
        ),
    )
    return model, state


def simulate_sharded(
    model: NetworkModel,
    duration: float,
    dt: float,
    *,
    key: PRNGKeyArray | None = None,
    state: NetworkState | None = None,
    mesh: Mesh | None = None,
    record: Record | None = None,
    checkpoint: bool = False,
) -> Result:
    """`nj.simulate` with every population split across the devices of `mesh`.

    **Arguments:**

    - `model`, `duration` [ms], `dt` [ms], `key`, `state`, `record`, `checkpoint`: as
      for `nj.simulate`.
    - `mesh`: A one-axis `jax.sharding.Mesh` (default: `neuron_mesh()`, all devices).

    Returns the same `Result` as `nj.simulate` (recorded arrays and final state stay
    split across the devices). Population sizes must be multiples of the device count.
    """
    if state is None:
        if key is None:
            raise ValueError("simulate_sharded needs `key` (a jax.random key) or an initial `state`.")
        state = model.init(key, dt)
    mesh = neuron_mesh() if mesh is None else mesh
    model, state = shard_populations(model, state, mesh)
    return simulate(model, duration, dt, state=state, record=record, checkpoint=checkpoint)
