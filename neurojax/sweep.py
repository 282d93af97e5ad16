r"""`sweep`: map a function of parameters over a grid, vectorised and sharded.

```python
def rate(w_e, w_i):
    m = model.replace({"E->*.weight": w_e, "I->*.weight": w_i})
    return nj.simulate(m, 500.0, 0.1, key=key).rate("E", t_start=100.0)

rates = nj.sweep(rate, w_e=jnp.linspace(2.0, 8.0, 16), w_i=jnp.linspace(40.0, 90.0, 8))
rates.shape  # (16, 8): one leading axis per named axis, in keyword order
```

The grid is flattened into one batch axis, padded to a multiple of the device count,
laid out across `jax.devices()` on a one-axis `Mesh`, and fed to `jax.vmap(fn)` under
`jax.shard_map` in one `jax.jit`: every device evaluates its share of the grid, so
there is no home-made distribution layer.
Unlike Brian2 or NEST, no point of the grid rebuilds or recompiles the model.
"""

from __future__ import annotations

import builtins
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
from jax.experimental import multihost_utils
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec
from jaxtyping import Array, PyTree

from .sharding import mesh_1d

_AXIS = "batch"


def _check_axes(fn: Callable, axes: dict[str, Any], zipped: bool) -> dict[str, Array]:
    if not axes:
        raise ValueError("sweep needs at least one named axis, e.g. sweep(fn, w_e=jnp.linspace(0, 1, 5)).")
    values = {}
    for name, v in axes.items():
        if isinstance(v, jax.Array) and jnp.issubdtype(v.dtype, jax.dtypes.prng_key):
            raise ValueError(f"sweep axis {name!r} holds PRNG keys; sweep numbers (e.g. seeds) instead.")
        v = jnp.asarray(v)
        if v.ndim != 1 or v.shape[0] == 0:
            raise ValueError(
                f"sweep axis {name!r} must be a non-empty 1-D array of values, got shape {v.shape}."
            )
        values[name] = v
    if zipped:
        lengths = {name: v.shape[0] for name, v in values.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"sweep with zip=True needs axes of equal length, got {lengths}.")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and some callables have no signature
        return values
    try:
        signature.bind(**dict.fromkeys(values, 0.0))
    except TypeError as e:
        raise ValueError(
            f"sweep axes {list(values)} do not match the arguments of fn{signature}: {e}."
        ) from None
    return values


class _Point(eqx.Module):
    """`fn` at one grid point as a jaxpr whose closed-over arrays are leaves (`consts`),
    so that jit takes them as arguments instead of baking them in as constants."""

    jaxpr: Any = eqx.field(static=True)
    consts: list
    out_tree: Any = eqx.field(static=True)

    def __call__(self, params: dict[str, Array]):
        out = jax.core.eval_jaxpr(self.jaxpr, self.consts, *jax.tree.leaves(params))
        return jax.tree.unflatten(self.out_tree, out)


def _trace_point(fn: Callable, example: dict[str, Array]) -> _Point:
    closed, shape = jax.make_jaxpr(lambda p: fn(**p), return_shape=True)(example)
    return _Point(closed.jaxpr, list(closed.consts), jax.tree.structure(shape))


@eqx.filter_jit
def _run(point: _Point, flat: dict[str, Array], mesh: Mesh, chunks: int):
    """`point` over `flat` (padded batch), `chunks` pieces in sequence; each piece is
    split across the mesh."""
    # shard_map, not GSPMD: each device runs the vmapped function on its own share, so
    # operations the SPMD partitioner cannot split (the compiled CPU propagation
    # kernel is an opaque custom call) still run batch-parallel, never replicated.
    spec = PartitionSpec(_AXIS)
    piece = jax.shard_map(
        lambda consts, p: jax.vmap(eqx.tree_at(lambda q: q.consts, point, consts))(p),
        mesh=mesh, in_specs=(PartitionSpec(), spec), out_specs=spec,
        # Closed-over arrays are replicated inputs; without the varying-axis check
        # JAX transposes them with a conservative psum, so gradients stay exact.
        check_vma=False,
    )
    if chunks == 1:
        return piece(point.consts, flat)
    stacked = jax.tree.map(lambda x: x.reshape(chunks, -1), flat)
    _, out = jax.lax.scan(lambda carry, p: (carry, piece(point.consts, p)), None, stacked)
    return jax.tree.map(lambda y: y.reshape((-1,) + y.shape[2:]), out)


def sweep(
    fn: Callable[..., PyTree[Array]],
    /,
    *,
    zip: bool = False,
    batch_size: int | None = None,
    flat: bool = False,
    devices: Sequence[jax.Device] | None = None,
    **axes: Any,
) -> PyTree[Array] | tuple[PyTree[Array], dict[str, Array]]:
    """Evaluate `fn(**params)` at every point of a parameter grid.

    **Arguments:**

    - `fn`: Called as `fn(**params)` with one traced scalar per named axis (in the
      axis' dtype); returns a pytree of arrays (e.g. a rate [Hz], or a whole
      `Result`). It typically swaps a parameter into an already built model with
      `eqx.tree_at` and simulates it; nothing is rebuilt and everything `fn` closes
      over is shared by all grid points.
    - `zip`: `False` (default): the grid is the outer product of the axes.
      `True`: the axes are paired element by element (they must have equal lengths).
    - `batch_size`: Evaluate at most this many grid points at once (rounded up to a
      multiple of the device count), in a `lax.scan` over chunks, to bound memory;
      every chunk has the same shape, so there is one compilation. Default: all at once.
    - `flat`: Return the outputs with one flat leading axis of grid points, together
      with the grid (`{name: values}` of that length), instead of one leading axis
      per named axis.
    - `devices`: Devices to spread the grid over (default `jax.devices()`).
    - `**axes`: Named non-empty 1-D arrays of parameter values, one per argument of
      `fn`. (`zip`, `batch_size`, `flat` and `devices` are reserved names.)

    **Returns:**

    `fn`'s outputs with leading axes of shape `(len(a1), len(a2), ...)` in the order
    the axes were given (`(len(a1),)` with `zip=True`), or with `flat=True` the pair
    `(outputs with leading axis (points,), grid)`.

    `fn` is traced once and each call of `sweep` compiles once (a new `fn` closure
    per call, so repeated sweeps recompile; wrap the sweep in `jax.jit` to reuse it).
    The flattened grid is padded to a multiple of the batch (and the device count)
    with copies of its last point, so `fn` is only ever called at valid parameters;
    the padding is dropped before returning. Across devices the batch is split over a
    one-axis `Mesh` with `jax.shard_map`; the result equals a Python loop over the grid. `sweep` also works inside `jax.jit`
    and `jax.grad` (it only uses traceable operations).

    Raises `ValueError` for an axis that is not a non-empty 1-D array, for `zip=True`
    with unequal lengths, for axis names `fn` does not accept (or arguments of `fn`
    without an axis or default), and for a bad `batch_size`.

    !!! example

        ```python
        def rate(w_e):
            m = model.replace({"E->*.weight": w_e})
            return nj.simulate(m, 200.0, 0.1, key=key).rate("E")

        rates = nj.sweep(rate, w_e=jnp.linspace(2.0, 8.0, 32), batch_size=8)
        ```
    """
    values = _check_axes(fn, axes, zip)
    mesh = mesh_1d(devices, _AXIS)
    n_dev = mesh.devices.size
    names = list(values)
    if zip:
        grid_shape: tuple[int, ...] = (values[names[0]].shape[0],)
        grid = dict(values)
    else:
        grid_shape = tuple(v.shape[0] for v in values.values())
        grid = dict(builtins.zip(names, (g.ravel() for g in jnp.meshgrid(*values.values(), indexing="ij"))))
    n_points = math.prod(grid_shape)

    if batch_size is None:
        chunk = -(-n_points // n_dev) * n_dev
    else:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"sweep batch_size [grid points] must be an integer in [1, inf), got {batch_size!r}.")
        chunk = -(-min(batch_size, n_points) // n_dev) * n_dev
    chunks = -(-n_points // chunk)
    pad = chunks * chunk - n_points
    padded = {k: jnp.concatenate([v, jnp.broadcast_to(v[-1], (pad,))]) if pad else v for k, v in grid.items()}

    # Every array `fn` reads from outside (closed-over or global: the model's arrays,
    # or tracers of an outer transform) becomes an argument of the jitted run rather
    # than a constant baked into the program.
    point = _trace_point(fn, {k: v[0] for k, v in padded.items()})
    out = _run(point, padded, mesh, chunks)
    leaves = jax.tree.leaves(out)
    if jax.process_count() > 1 and not any(isinstance(y, jax.core.Tracer) for y in leaves):
        # Across processes (jax.distributed) each holds its devices' share of the grid:
        # gather the whole grid on every process, so all of them return the same result.
        # (Under an outer jax.jit the caller receives the global array; gather it there.)
        out = jax.tree.map(jnp.asarray, multihost_utils.process_allgather(out, tiled=True))

    def unpad(y):
        y = y[:n_points] if pad else y
        return y if flat else y.reshape(grid_shape + y.shape[1:])

    out = jax.tree.map(unpad, out)
    return (out, grid) if flat else out
