"""Recording and saving: what to keep from a run, and how to store it.

The code of docs/guides/recording.md, run as it stands by tests/test_guides.py
(`python docs/guides/recording.py`). The NWB part needs pynwb (the `nwb` extra).
"""

# --8<-- [start:record]
import jax
import numpy as np

import neurojax as nj

# Brunel's network (regime C) at a small size: 1100 E and 275 I neurons.
model = nj.gallery.get("brunel", n_e=1100).build(jax.random.key(0))

record = nj.Record(
    spikes=["E", "I"],          # the raster of both populations, every step
    rates=["E"],                # E's population rate [Hz], once per block
    every=0.5,                  # block length [ms] for rates and variables
    v={"E": slice(0, 5), "I": [3, 7]},   # membrane potential [mV] of 5 E and 2 I cells
    refractory={"E": slice(0, 2)},       # any state variable, by its field name
)
res = nj.simulate(model, 100.0, 0.1, key=jax.random.key(1), record=record)
# --8<-- [end:record]


# --8<-- [start:read]
def summary(res):
    """What a Result holds and the helpers that read it."""
    times, neurons = res.spike_times("E")     # [ms] (the end of each emitting step), indices
    return {
        "raster E (steps, n)": res.spikes["E"].shape,          # booleans
        "E.v (blocks, cells)": res.variables["E.v"].shape,      # one sample per 0.5 ms
        "E rate per block (blocks,)": res.rates["E"].shape,
        "E spikes": len(times),
        "E rate after 20 ms [Hz]": float(res.rate("E", t_start=20.0)),
        "I ISI CV": res.isi_cv("I", t_start=20.0),
        "cells of I.v": dict(res.indices)["I.v"],
    }
# --8<-- [end:read]


# --8<-- [start:save]
def save_and_load(res, folder):
    """`.npz`: numpy's own format, an exact round trip (the final state is not saved;
    use `equinox.tree_serialise_leaves` for that)."""
    path = f"{folder}/brunel.npz"
    res.save(path)
    return nj.Result.load(path)


def nwb_round_trip(res, folder):
    """NWB: the field's exchange format, readable by any NWB tool; also exact."""
    path = f"{folder}/brunel.nwb"
    nj.io.write_nwb(res, path, session_description="Brunel 2000, regime C, N_E = 1100")
    return nj.io.read_nwb(path)
# --8<-- [end:save]


def same(a, b):
    """Whether two Results hold the same recordings, times and metadata."""
    return (a.dt == b.dt and a.t_start == b.t_start and a.every == b.every
            and a.sizes == b.sizes and a.indices == b.indices
            and all(set(getattr(a, g)) == set(getattr(b, g)) and all(
                np.array_equal(np.asarray(getattr(a, g)[k]), np.asarray(getattr(b, g)[k]))
                for k in getattr(a, g)) for g in ("spikes", "rates", "variables")))


if __name__ == "__main__":
    import tempfile

    for key, value in summary(res).items():
        print(f"{key}: {value}")
    with tempfile.TemporaryDirectory() as folder:
        print("npz round trip exact:", same(res, save_and_load(res, folder)))
        print("NWB round trip exact:", same(res, nwb_round_trip(res, folder)))
