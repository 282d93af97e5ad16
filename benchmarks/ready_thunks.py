"""How many thunks XLA:CPU's executor has ready at once in the compiled step loop of
COBA-4k's forward pass (issue 16).

    python benchmarks/ready_thunks.py [--duration MS] [--n N]

XLA:CPU runs each step of a loop as a graph of thunks built from their buffer
conflicts; its executor pops them in FIFO order and hands half of its ready queue to its
thread pool whenever more than 8 are ready after a pop. A step that hands off once runs
on from whichever thread finishes last, so the loop can move to the pool and stay there,
costing far more than the hand-off saves (see benchmarks/README.md, issue 16). This
script compiles the variants below with `TF_CPP_VMODULE=thunk_executor=6` (it re-runs
itself with it: the log level must be set before jax starts), reads the executor's
dependency graph of every non-trivial thunk sequence from the log, replays it
sequentially (FIFO, no hand-offs: the same order a step that never hands off runs in) and
prints, for each step loop's body, the pops after which more than 8 were ready. An
empty list means no hand-off. Which thunks are ready together follows from XLA's buffer
assignment, which changes with everything in the program (even with the run's length),
so check the program you care about.

Variants: bptt.py's forward pass (`--truncate 1`: a scalar loss, the mean rate, with
every step's rate recorded), compiled with XLA's defaults and with
`neurojax.simulate.GRADIENT_COMPILER_OPTIONS`; the same run returning the recorded rates;
coba.py's and cuba.py's runs (`compile_scan`, rates recorded once per run).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

_LOG = "NEUROJAX_READY_THUNKS_CHILD"


def graphs(log: str) -> list[list[tuple[str, list[str]]]]:
    """Every logged executor graph of more than 10 thunks: (name, dependencies) per
    thunk, in sequence order."""
    lines = log.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = re.search(r"ThunkExecutor: #thunks=(\d+)", line)
        if not m or int(m.group(1)) <= 10:
            continue
        nodes = []
        for entry in lines[i + 1:i + 1 + int(m.group(1))]:
            mm = re.search(r"op_name=([^,]+), kind=[\w-]+, dependencies=\[([^\]]*)", entry)
            if mm is None:  # a line cut short: stop at what was logged
                break
            nodes.append((mm.group(1), [d.strip() for d in mm.group(2).split(",") if d.strip()]))
        out.append(nodes)
    return out


def replay(nodes, threshold: int = 8) -> list[tuple[str, int]]:
    """Sequential FIFO replay: (thunk just popped, ready thunks left) wherever more than
    `threshold` were left, i.e. where the executor would hand off."""
    index = {name: i for i, (name, _) in enumerate(nodes)}
    outs = [[] for _ in nodes]
    count = [0] * len(nodes)
    for j, (_, deps) in enumerate(nodes):
        for d in deps:
            if d in index:
                outs[index[d]].append(j)
                count[j] += 1
    ready = [i for i in range(len(nodes)) if count[i] == 0]
    events = []
    while ready:
        i = ready.pop(0)
        if len(ready) > threshold:
            events.append((nodes[i][0], len(ready)))
        for o in sorted(outs[i]):
            count[o] -= 1
            if count[o] == 0:
                ready.append(o)
    return events


def _child(variant: str, duration: float, n: int) -> None:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import neurojax as nj
    from neurojax.simulate import GRADIENT_COMPILER_OPTIONS

    import bptt
    from _common import prepare

    model = nj.gallery.get("cuba" if variant == "cuba.py" else "coba", n=n).build(jax.random.key(0))
    if variant in ("coba.py", "cuba.py"):
        run, _ = prepare(model, duration, 0.1, 0,
                         nj.Record(spikes=(), rates=list(model.names), every=duration))
        run()
        return
    state = model.init(jax.random.key(1), 0.1)
    spike = nj.surrogate.FastSigmoid(slope=5.0, amplitude=0.3)
    model = bptt._with_surrogate(model, lambda s: nj.surrogate.Truncated(spike, width=1.0))
    record = nj.Record(rates=list(model.names))

    def rates(m):
        return nj.simulate(m, duration, 0.1, state=state, record=record).rates

    def loss(m):
        r = rates(m)
        return sum(jnp.mean(x) for x in r.values()) / len(r)

    fn = {"loss, default": eqx.filter_jit(loss),
          "loss, options": eqx.filter_jit(loss, compiler_options=GRADIENT_COMPILER_OPTIONS),
          "rates, default": eqx.filter_jit(rates)}[variant]
    jax.block_until_ready(fn.lower(model).compile()(model))


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=200.0, help="run length [ms]")
    p.add_argument("--n", type=int, default=4000, help="number of neurons")
    args = p.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="thunk_executor=6")
    for variant in ("loss, default", "loss, options", "rates, default", "coba.py", "cuba.py"):
        env[_LOG] = variant
        log = subprocess.run([sys.executable, os.path.abspath(__file__),
                              f"--duration={args.duration}", f"--n={args.n}"],
                             env=env, cwd=here, capture_output=True, text=True, check=True).stderr
        # The step loop's body: the logged graphs other than the entry computation (the
        # last, largest one) and the small helper sequences.
        found = graphs(log)
        bodies = [g for g in found[:-1] if len(g) > 20]
        print(f"{variant:16s} " + "; ".join(
            f"{len(g)} thunks, more than 8 ready after {replay(g) or 'none'}" for g in bodies))


if __name__ == "__main__":
    if os.environ.get(_LOG):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        a = {k: v for k, v in (x.lstrip("-").split("=") for x in sys.argv[1:])}
        _child(os.environ[_LOG], float(a["duration"]), int(a["n"]))
    else:
        main(sys.argv[1:])
