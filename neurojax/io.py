r"""Results in the field's data format: NWB (Neurodata Without Borders) files.

```python
res = nj.simulate(model, 1000.0, 0.1, key=key,
                  record=nj.Record(spikes=["E", "I"], rates=["E"], v={"E": slice(0, 10)}))
res.to_nwb("coba.nwb", model="coba", seed=1)   # or nj.io.write_nwb(res, "coba.nwb", ...)
res2 = nj.io.read_nwb("coba.nwb")      # the same spikes, times and recorded variables
nj.io.read_nwb_session("coba.nwb")     # {"model": "coba", "seed": 1, "dt": 0.1, ...}
```

Needs pynwb (`pip install -e ".[nwb]"`); `import neurojax` does not.

**Layout of the file**, readable by any NWB tool (`pynwb.NWBHDF5IO(path).read()`):

- `units`: one row per recorded neuron of a spiking population, firing or not, with
  its `spike_times` [s] and two columns, `population` (its population's name) and
  `neuron_index` (its index in that population).
- `processing["neurojax"]`: one `TimeSeries` per recorded state variable, named
  `"<population>.<variable>"` (shape `(samples, neurons)`, one sample at the end of
  every `Record.every` block; the neurons are listed in its description), and one per
  population rate, `"<population>.rate"` [Hz]. Data are stored in neurojax's units
  with NWB's `conversion` factor to SI: the membrane potential `v` is stored in mV with
  `unit="volts"` and `conversion=1e-3`, so NWB tools read volts and the stored numbers
  stay exactly those simulated. Graded populations (rate units, `Result.graded`) have
  no spikes: their outputs at every step are a `TimeSeries` `"<population>.output"`
  (a rate unit's rate [Hz]; a binary unit's state, dimensionless).
- Session metadata: `session_description` names the model (given as `model=`), and
  `notes` gives the model, seed, dt [ms], start and duration [ms] as text.
- `scratch["neurojax"]`: what `read_nwb` needs to rebuild the `Result` exactly (dt,
  t_start, every, the population sizes, the recorded neuron indices, the dtypes, the
  graded populations, model and seed).

Spike trains in an NWB file (written here or by any NWB tool) replay as a source
population that drives others through ordinary projections:

```python
source = nj.inputs.SpikeTrains.from_nwb("coba.nwb", "E", dt=0.1)
```

Times are kept exactly: `dt` and `t_start` are stored, and spike times [s] are mapped
back to the step they were emitted in (a spike of step `k` is at
$t_{start} + (k + 1)\,dt$, the end of the step).
"""

from __future__ import annotations

import datetime
import json
import os
import re

import jax.numpy as jnp
import numpy as np

from .simulate import Result

_FORMAT = 1

# neurojax's units -> (NWB unit, conversion factor to it): the data stay in neurojax's
# units and NWB readers multiply by the factor.
_SI = {
    "mV": ("volts", 1e-3),
    "ms": ("seconds", 1e-3),
    "pA": ("amperes", 1e-12),
    "nS": ("siemens", 1e-9),
    "pF": ("farads", 1e-12),
    "Hz": ("Hz", 1.0),
    "1": ("dimensionless", 1.0),
}


def _state_units(state) -> dict[str, str]:
    """`{field: unit}` of a neuron State class, from the `# ... [unit]` comment that the
    style guide puts on every field (`v: Float[Array, " n"]  # membrane potential [mV]`).
    Variable names alone do not tell: FitzHugh-Nagumo's `v` is dimensionless."""
    import inspect

    try:
        source = inspect.getsource(type(state))
    except (OSError, TypeError):
        return {}
    found = {}
    for match in re.finditer(r"^\s+(\w+)\s*:[^#\n]*#[^\n]*\[([^\]]+)\]\s*$", source, re.M):
        found.setdefault(match.group(1), match.group(2).strip())
    return found


def _variable_units(result: Result, units: dict[str, str] | None) -> dict[str, str]:
    """The neurojax unit of every recorded variable `"pop.var"`: given in `units`, else
    read from its population's State class, else "n/a"."""
    by_pop = {}
    if result.state is not None:
        for (pop, _), neuron_state in zip(result.sizes, result.state.neurons):
            by_pop[pop] = _state_units(neuron_state)
    out = {}
    for name in result.variables:
        pop, var = name.split(".", 1)
        out[name] = (units or {}).get(name) or by_pop.get(pop, {}).get(var) or "n/a"
    return out


def _require_pynwb():
    try:
        import pynwb  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "neurojax.io needs pynwb: pip install -e '.[nwb]' (or pip install pynwb)."
        ) from e
    return pynwb


def write_nwb(
    result: Result,
    path: str | os.PathLike,
    *,
    session_description: str = "neurojax simulation",
    identifier: str | None = None,
    session_start_time: datetime.datetime | None = None,
    units: dict[str, str] | None = None,
    model: str | None = None,
    seed: int | None = None,
) -> None:
    """Write a simulation `Result` to the NWB file `path` (overwritten if it exists).

    **Arguments:**

    - `result`: An unbatched `Result` (index a vmapped one first).
    - `path`: The `.nwb` file to write.
    - `session_description`, `identifier`, `session_start_time`: NWB's required
      session metadata (defaults: "neurojax simulation" (of `model`), a fresh UUID,
      now in UTC).
    - `units`: neurojax units of recorded variables by name, e.g. `{"E.v": "mV"}`.
      By default each variable's unit is read from its neuron's State class (the
      `[unit]` its field documents), which needs `result.state` (a loaded `Result`
      has none). `"mV"`, `"ms"`, `"pA"`, `"nS"`, `"pF"`, `"Hz"` and `"1"` are stored
      with NWB's SI unit and conversion factor; any other unit is stored as given
      with conversion 1. A graded population's outputs `"<pop>.output"` default to
      `"Hz"` (a rate unit's rate; `"1"` for binary units).
    - `model`, `seed`: The model's name (e.g. a gallery name) and the seed of the run,
      stored as session metadata (`read_nwb_session`).

    Raises a `ValueError` for a batched result.
    """
    pynwb = _require_pynwb()
    import uuid

    for group in (result.spikes, result.rates, result.variables):
        for name, x in group.items():
            if np.ndim(x) != (1 if group is result.rates else 2):
                raise ValueError(
                    f"write_nwb needs an unbatched Result; {name!r} has shape {np.shape(x)} "
                    "(index the batch first, e.g. jax.tree_util.tree_map(lambda x: x[0], res))."
                )
    variable_units = _variable_units(result, units)
    graded = tuple(getattr(result, "graded", ()))
    if model is not None and session_description == "neurojax simulation":
        session_description = f"neurojax simulation of {model}"
    session = {"model": model, "seed": seed, "dt": result.dt, "t_start": result.t_start,
               "duration": result.t_stop - result.t_start}
    nwb = pynwb.NWBFile(
        session_description=session_description,
        notes="; ".join(f"{k} = {v}" for k, v in session.items())
        + " (times [ms]; NWB times are in s)",
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=session_start_time or datetime.datetime.now(datetime.timezone.utc),
        source_script="neurojax.io.write_nwb",
        source_script_file_name="neurojax/io.py",
    )

    # Spikes: a unit per recorded neuron, so silent neurons and population sizes survive.
    nwb.add_unit_column(name="population", description="neurojax population name")
    nwb.add_unit_column(name="neuron_index", description="index of the neuron in its population")
    sizes = dict(result.sizes)
    for pop, raster in result.spikes.items():
        if pop in graded:
            continue  # graded outputs are not spikes: a TimeSeries below
        raster = np.asarray(raster)
        steps, neurons = np.nonzero(raster)
        times_s = (result.t_start + result.dt * (steps + 1)) * 1e-3  # [s] from [ms]
        order = np.argsort(neurons, kind="stable")  # spikes grouped by neuron, time-ordered
        bounds = np.searchsorted(neurons[order], np.arange(sizes[pop] + 1))
        for i in range(sizes[pop]):
            nwb.add_unit(spike_times=times_s[order[bounds[i]:bounds[i + 1]]],
                         population=pop, neuron_index=i)

    module = nwb.create_processing_module(
        name="neurojax", description="state variables and population rates recorded by neurojax"
    )
    # Samples are taken at the end of each `every` block.
    start_s = (result.t_start + result.every) * 1e-3
    rate_hz = 1e3 / result.every
    indices = dict(result.indices)
    for name, data in result.variables.items():
        pop, var = name.split(".", 1)
        unit = variable_units[name]
        si, conversion = _SI.get(unit, (unit, 1.0))
        module.add(pynwb.TimeSeries(
            name=name, data=np.asarray(data), unit=si, conversion=conversion,
            starting_time=start_s, rate=rate_hz,
            description=f"{var} [{unit}] of neurons {list(indices[name])} of population {pop}",
        ))
    states = dict(zip((p for p, _ in result.sizes), result.state.neurons)) if result.state else {}
    for pop in graded:
        if pop not in result.spikes:
            continue
        binary = type(states.get(pop)).__name__ == "BinaryState"
        unit = (units or {}).get(f"{pop}.output") or ("1" if binary else "Hz")
        si, conversion = _SI.get(unit, (unit, 1.0))
        module.add(pynwb.TimeSeries(
            name=f"{pop}.output", data=np.asarray(result.spikes[pop]), unit=si,
            conversion=conversion, starting_time=(result.t_start + result.dt) * 1e-3,
            rate=1e3 / result.dt,
            description=f"graded output [{unit}] of every neuron of population {pop} "
                        "at the end of every step",
        ))
    for pop, data in result.rates.items():
        module.add(pynwb.TimeSeries(
            name=f"{pop}.rate", data=np.asarray(data), unit="Hz", starting_time=start_s,
            rate=rate_hz, description=f"mean firing rate of population {pop} per block [Hz]",
        ))

    meta = {
        "format": _FORMAT, "dt": result.dt, "t_start": result.t_start, "every": result.every,
        "sizes": [list(x) for x in result.sizes],
        "indices": [[k, list(v)] for k, v in result.indices],
        "n_steps": result.n_steps,
        "spikes": {k: str(np.asarray(v).dtype) for k, v in result.spikes.items()},
        "graded": list(graded), "model": model, "seed": seed,
    }
    nwb.add_scratch(json.dumps(meta), name="neurojax",
                    description="neurojax Result metadata for neurojax.io.read_nwb (JSON)")
    with pynwb.NWBHDF5IO(os.fspath(path), "w") as io:
        io.write(nwb)


def _meta(nwb, path) -> dict:
    """The JSON that `write_nwb` keeps in `scratch["neurojax"]`."""
    if "neurojax" not in nwb.scratch:
        raise ValueError(f"{os.fspath(path)!r} was not written by neurojax.io.write_nwb.")
    text = nwb.scratch["neurojax"].data
    text = text[()] if hasattr(text, "shape") else text  # an h5py dataset or a str
    meta = json.loads(text.decode() if isinstance(text, bytes) else str(text))
    if meta["format"] != _FORMAT:
        raise ValueError(f"unknown neurojax NWB format {meta['format']!r}.")
    return meta


def read_nwb_session(path: str | os.PathLike) -> dict:
    """The session metadata of a file written by `write_nwb`: `{"model", "seed",
    "dt" [ms], "t_start" [ms], "duration" [ms], "session_description"}` (`model` and
    `seed` are `None` where they were not given)."""
    pynwb = _require_pynwb()
    with pynwb.NWBHDF5IO(os.fspath(path), "r") as io:
        nwb = io.read()
        meta = _meta(nwb, path)
        return {"model": meta.get("model"), "seed": meta.get("seed"), "dt": meta["dt"],
                "t_start": meta["t_start"], "duration": meta["n_steps"] * meta["dt"],
                "session_description": nwb.session_description}


def read_nwb(path: str | os.PathLike) -> Result:
    """Read a `Result` written by `write_nwb`: identical spikes, graded outputs, rates,
    recorded variables, times and population sizes (the final state is not stored:
    `state` is `None`; the session metadata is `read_nwb_session`'s)."""
    pynwb = _require_pynwb()
    with pynwb.NWBHDF5IO(os.fspath(path), "r") as io:
        nwb = io.read()
        meta = _meta(nwb, path)
        dt, t_start, n_steps = meta["dt"], meta["t_start"], meta["n_steps"]
        graded = tuple(meta.get("graded", ()))
        sizes = dict((k, int(v)) for k, v in meta["sizes"])
        spikes = {pop: np.zeros((n_steps, sizes[pop]), dtype)
                  for pop, dtype in meta["spikes"].items() if pop not in graded}
        if nwb.units is not None:
            table = nwb.units
            for row in range(len(table)):
                pop = table["population"][row]
                times_ms = np.asarray(table["spike_times"][row]) * 1e3
                # The step each spike ends; rounding undoes the [ms] -> [s] round-off.
                steps = np.rint((times_ms - t_start) / dt).astype(np.int64) - 1
                spikes[pop][steps, int(table["neuron_index"][row])] = 1
        variables, rates = {}, {}
        module = nwb.processing["neurojax"]
        recorded = dict(meta["indices"])
        for name, series in module.data_interfaces.items():
            data = jnp.asarray(np.asarray(series.data[()]))
            if name.endswith(".output") and name[: -len(".output")] in graded and name not in recorded:
                spikes[name[: -len(".output")]] = data
            elif re.fullmatch(r".+\.rate", name) and name not in recorded:
                rates[name[: -len(".rate")]] = data
            else:
                variables[name] = data
    return Result(
        spikes={k: jnp.asarray(spikes[k]) for k in meta["spikes"]}, rates=rates,
        variables=variables, state=None, dt=dt, t_start=t_start, every=meta["every"],
        sizes=tuple((k, int(v)) for k, v in meta["sizes"]),
        indices=tuple((k, tuple(v)) for k, v in meta["indices"]), graded=graded,
    )
