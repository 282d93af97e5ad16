"""Runs across processes with `jax.distributed`: two local processes (CPU collectives
over gloo stand in for hosts, one device each) run a sharded COBA network with both
methods and a sharded sweep, and every process gets results identical to one process
running everything (spikes exact, states to rounding of sums split across devices)."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np

import neurojax

# The guide's program ("Running across devices and processes"), started per process.
PROGRAM = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guides" / "processes.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _start(pids):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one device per process
    root = str(pathlib.Path(neurojax.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, env.get("PYTHONPATH")) if x)
    port = str(_free_port())
    args = [[]] if pids is None else [[str(pid), "2", f"localhost:{port}"] for pid in pids]
    procs = [subprocess.Popen([sys.executable, str(PROGRAM), *a], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a in args]
    return procs


def _collect(procs):
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        line = [x for x in stdout.splitlines() if x.startswith("RESULT")]
        assert line, stdout[-2000:] + stderr[-2000:]
        results.append(json.loads(line[-1][len("RESULT"):]))
    return results


def test_two_processes_equal_one():
    # The one-process reference and the two processes run at the same time.
    single_proc, pair_procs = _start(None), _start([0, 1])
    (single,), pair = _collect(single_proc), _collect(pair_procs)
    assert single["processes"] == 1 and single["devices"] == 1
    for got in pair:
        assert got["processes"] == 2 and got["devices"] == 2
        # The sweep's grid points are split between the processes and gathered back:
        # the same arithmetic per point, so the same rates exactly.
        assert got["sweep"] == single["sweep"]
        for method in ("gspmd", "shard_map"):
            assert got[method]["spikes"] == single[method]["spikes"], method
            assert len(got[method]["spikes"]) > 50  # the network is active
            # Membrane potentials: sums split across devices are added in another order.
            np.testing.assert_allclose(got[method]["v"], single[method]["v"], rtol=0, atol=1e-9)
