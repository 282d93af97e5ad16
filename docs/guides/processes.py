"""One program, started once per process: a sharded COBA network and a sharded sweep
across processes with `jax.distributed`.

    python docs/guides/processes.py PROCESS_ID NUM_PROCESSES COORDINATOR   # each process
    python docs/guides/processes.py                                        # one process

Every process runs the same code on the same model (built from the same key); JAX
splits the work over all processes' devices and `gather` gives each process the
whole result. It prints one line, `RESULT{json}`, which tests/test_sharding_processes.py
compares with a one-process run.
"""

import json
import sys

import jax

jax.config.update("jax_enable_x64", True)
# CPU collectives between processes (gloo); GPUs use NCCL without this line.
jax.config.update("jax_cpu_collectives_implementation", "gloo")

if len(sys.argv) > 1:
    process_id, num_processes, coordinator = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    # Before anything touches a device. Under SLURM (or another supported cluster)
    # `jax.distributed.initialize()` with no arguments reads all three from the job.
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)

import jax.numpy as jnp
import numpy as np

import neurojax as nj
from neurojax.sharding import gather, neuron_mesh, simulate_sharded

# Every process builds the identical model: same gallery entry, same key.
model = nj.gallery.get("coba", n=400, p=0.1).build(jax.random.key(0))


def rate(w):
    """Mean E rate [Hz] over 40 ms with excitatory weight `w` [nS]."""
    m = model.replace({"E->*.weight": w})  # the one weight of Projection("E", ["E", "I"])
    res = nj.simulate(m, 40.0, 0.1, key=jax.random.key(1),
                      record=nj.Record(spikes=(), rates=["E"], every=40.0))
    return res.rates["E"][0]


# A sweep spreads its grid over jax.devices(), i.e. over all processes, and returns the
# whole grid on every process.
rates = nj.sweep(rate, w=jnp.linspace(4.0, 8.0, 4))
out = {"processes": jax.process_count(), "devices": jax.device_count(),
       "sweep": np.asarray(rates).tolist()}

# One network split by neurons over all processes' devices, with either method.
for method in ("gspmd", "shard_map"):
    res = simulate_sharded(model, 40.0, 0.1, key=jax.random.key(1), mesh=neuron_mesh(),
                           method=method)
    res = gather(res)  # every process now holds the whole Result
    out[method] = {"spikes": np.asarray(res.spikes["E"]).nonzero()[1].tolist(),
                   "v": np.asarray(res.state.neurons[0].v).tolist()}
print("RESULT" + json.dumps(out), flush=True)
