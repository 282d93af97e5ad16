"""Thunk count of the compiled COBA-4k / CUBA-4k step and its cost against the
neuron-only floor (issue 15).

    python benchmarks/thunks.py [--quick] [--n N] [--duration MS] [--repeats N] [--out FILE]
                                [--grad W]

On XLA:CPU every instruction of the compiled scan body that is not fused into another
(a loop fusion, a copy, a custom call such as the event kernel, ...) runs as one
"thunk" per step, at a fixed cost of ~0.4 us each; for small and low-rate networks
that fixed cost, not the synaptic work, sets the run time. This script compiles the
same scan that `nj.simulate` runs (`neurojax.simulate.compile_scan`, recording the
rates of each population once per run, as coba.py / cuba.py do), finds the body of
its outer while loop in the optimized HLO (`compiled.as_text()`) and counts its
instructions by kind, for the model and for the neuron-only floor (the same
populations without projections); then it times both (median of `--repeats`, runs
alternated) and prints the per-step cost as a multiple of the floor, both in wall time
and in the CPU time of this process (`time.process_time`): on a shared machine the wall
time of a microsecond step swings 2x with the load of other jobs, while the CPU time it
consumes stays within a few percent, so compare variants by CPU time. The JSON goes to
`benchmarks/results/thunks.json`.

`--grad W` also compiles the gradient of the mean rate (as `bptt.py --truncate W`:
every neuron's surrogate `Truncated(FastSigmoid(5, 0.3), W)` [mV], rates recorded every
step, 20 ms) and counts the thunks of its two step loops: the forward pass under
`grad` (which also writes what the backward pass keeps) and the backward step (whose
nested while loops, the sparse projections' backward, count one each here).
"""

from __future__ import annotations

import re
import statistics
import sys
import time

from _common import RESULTS, machine, parser, finish_args, timed_build

# Instructions that cost nothing at run time (no thunk): they name or reinterpret a
# buffer.
FREE = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "after-all",
        "opt-barrier", "partition-id", "replica-id"}


def _computations(hlo: str) -> dict[str, list[str]]:
    """Instruction lines of each computation of an HLO module's text."""
    comps, name, body = {}, None, []
    for line in hlo.splitlines():
        m = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if m and not line.startswith(" "):
            name, body = m.group(1), []
            continue
        if line.startswith("}") and name is not None:
            comps[name] = body
            name = None
            continue
        if name is not None and "=" in line:
            body.append(line.strip())
    return comps


def _opcode(line: str) -> str:
    # "%name = f32[4000]{0} opcode(args), ..." or "ROOT %name = (..) tuple(...)"
    rhs = line.split(" = ", 1)[1]
    # skip the shape (which may be a tuple with nested parentheses)
    depth, i = 0, 0
    while i < len(rhs):
        c = rhs[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == " " and depth == 0:
            break
        i += 1
    m = re.match(r"\s*([\w\-]+)", rhs[i:])
    return m.group(1) if m else "?"


def _by_kind(lines: list[str]) -> dict[str, int]:
    """Thunks of one computation by kind: its instructions that are not free, fusions by
    their kind (kLoop, kInput, kOutput...)."""
    c = {}
    for line in lines:
        op = _opcode(line)
        if op in FREE:
            continue
        if op == "fusion":
            kind = re.search(r"kind=(k\w+)", line)
            op = f"fusion:{kind.group(1)}" if kind else "fusion"
        c[op] = c.get(op, 0) + 1
    return c


def step_thunks(hlo: str) -> dict:
    """Counts by kind of the thunks of the largest while-loop body of `hlo` (the scan
    over steps; the outer scan over recording blocks holds it)."""
    comps = _computations(hlo)
    bodies = set()
    for lines in comps.values():
        for line in lines:
            if _opcode(line) == "while":
                m = re.search(r"body=%?([\w.\-]+)", line)
                if m:
                    bodies.add(m.group(1))
    # the innermost step loop: the body with the most non-free instructions that does
    # not itself contain the step loop (a body holding a while is the block loop,
    # unless the while is a kernel's own loop, which is small).
    counts = {b: _by_kind(comps[b]) for b in bodies if b in comps}
    body = max(counts, key=lambda b: sum(counts[b].values()))
    c = counts[body]
    total = sum(c.values())
    return {"body": body, "thunks": total,
            "fusions": sum(v for k, v in c.items() if k.startswith("fusion")),
            "copies": c.get("copy", 0) + c.get("copy-start", 0),
            "custom_calls": c.get("custom-call", 0),
            "by_kind": dict(sorted(c.items()))}


def loop_bodies(hlo: str) -> dict[str, dict]:
    """Thunk counts by kind of every while-loop body of `hlo`, and whether the body
    belongs to a backward pass."""
    comps = _computations(hlo)
    out = {}
    for lines in comps.values():
        for line in lines:
            m = re.search(r"body=%?([\w.\-]+)", line) if _opcode(line) == "while" else None
            if m and m.group(1) in comps:
                c = _by_kind(comps[m.group(1)])
                # Instructions of the backward pass carry "transpose(" in their op_name.
                out[m.group(1)] = (c, any("transpose(" in x for x in comps[m.group(1)]))
    return out


def grad_thunks(net, args) -> dict:
    """Thunks per step of the forward and backward loops of the gradient of the mean
    rate of `net` over 20 ms with bptt.py's compact-support surrogate (`args.grad` mV).
    The largest loop body of each pass is its step loop (the backward pass's
    instructions are named transpose(...) in the HLO metadata)."""
    import dataclasses

    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import neurojax as nj

    model, _ = timed_build(net, args.seed)
    spike = nj.surrogate.FastSigmoid(slope=5.0, amplitude=0.3)
    for i, pop in enumerate(model.populations):
        neuron = dataclasses.replace(pop.neuron, surrogate=nj.surrogate.Truncated(spike, width=args.grad))
        model = eqx.tree_at(lambda m, i=i: m.populations[i].neuron, model, neuron)
    state = model.init(jax.random.key(args.seed + 1), args.dt)
    record = nj.Record(rates=list(model.names))

    def loss(m):
        res = nj.simulate(m, 20.0, args.dt, state=state, record=record)
        return sum(jnp.mean(r) for r in res.rates.values()) / len(res.rates)

    with nj.allow_nonfinite_gradients():
        compiled = eqx.filter_jit(eqx.filter_value_and_grad(loss)).lower(model).compile()
    bodies = loop_bodies(compiled.compiled.as_text())
    fwd, bwd = (max((c for c, backward in bodies.values() if backward == b),
                    key=lambda c: sum(c.values())) for b in (False, True))
    return {kind: {"thunks": sum(c.values()), "by_kind": dict(sorted(c.items()))}
            for kind, c in (("forward", fwd), ("backward", bwd))}


def one_population(net, seed: int):
    """`net` (the gallery's COBA / CUBA: E and I with the same neuron model) as Brian2
    writes it: one population of all neurons and one projection per presynaptic
    population onto all of them, with the built model's own synapses and weights (a
    `FromMatrix` projection per presynaptic population, zero columns for the other one)
    and the same kinetics, receptors and initial state distributions. Half the
    populations, projections and kernel calls of the model: what merging populations of
    the same model (issue 15) would save. Its initial state is drawn differently, so
    compare its cost, not its spikes."""
    import dataclasses

    import jax
    import numpy as np

    import neurojax as nj

    model = net.build(jax.random.key(seed))
    sizes = [q.n for q in net.populations]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    names = list(model.names)
    merged = dataclasses.replace(net.populations[0], name="N", n=int(offsets[-1]), sign=None)
    projections = []
    for spec in net.projections:  # one spec per presynaptic population ("E" -> ["E", "I"])
        j = names.index(spec.pre)
        m = np.zeros((offsets[-1], offsets[-1]), np.float32)
        for built in model.projections:
            if built.pre == j:
                i = built.post
                m[offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]] = np.asarray(
                    built.weights.matrix())
        projections.append(dataclasses.replace(
            spec, pre="N", post="N", connectivity=nj.connectivity.FromMatrix(m), weight=1.0,
            name=None, layout=nj.connectivity.Sparse()))
    return nj.Network([merged], projections, inputs=[])


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=1000.0, quick_duration=100.0)
    p.add_argument("--n", type=int, default=4000, help="number of neurons (80 %% excitatory)")
    p.add_argument("--cases", default="coba,cuba", help="gallery models to compile")
    p.add_argument("--variants", action="store_true",
                   help="also time the decomposition variants: the projections without synapses "
                        "(p = 1e-6), with the native and the pure-JAX kernels, and the floor and "
                        "the whole network with all neurons in one population (what merging E "
                        "and I would save)")
    p.add_argument("--grad", type=float, default=None, metavar="W",
                   help="also count the thunks of the gradient's forward and backward step loops, "
                        "with the compact-support surrogate of bptt.py --truncate W [mV]")
    p.add_argument("--hlo", default=None, help="write the optimized HLO of each model to this prefix")
    args = finish_args(p.parse_args(argv))

    import jax

    import neurojax as nj
    from neurojax.simulate import _run, _scan_args, prepare_run

    n_steps = round(args.duration / args.dt)
    out = {"config": {"n": args.n, "dt": args.dt, "duration": args.duration,
                      "seed": args.seed, "repeats": args.repeats},
           "machine": machine(), "cases": {}}
    for case in args.cases.split(","):
        net = nj.gallery.get(case, n=args.n)
        variants = {"model": net, "floor": nj.Network(net.populations, [])}
        if args.variants:
            import dataclasses

            from _common import with_kernel

            tiny = nj.gallery.get(case, n=args.n, p=1e-6)
            variants["p=1e-6"] = tiny
            variants["p=1e-6 loop"] = with_kernel(tiny, "loop")
            variants["p=1e-6 buffer"] = with_kernel(tiny, "buffer")
            merged = dataclasses.replace(net.populations[0], n=sum(q.n for q in net.populations))
            variants["floor, 1 pop"] = nj.Network([merged], [])
            variants["1 pop"] = one_population(net, args.seed)
        runs, res = {}, {}
        for label, network in variants.items():
            model, _ = timed_build(network, args.seed)
            record = nj.Record(spikes=(), rates=list(model.names), every=args.duration)
            state = model.init(jax.random.key(args.seed + 1), args.dt)
            prepared, state = prepare_run(model, args.duration, args.dt, state, record)
            sargs = _scan_args(model, state, prepared, None)
            compiled = _run.lower(*sargs, truncate=prepared.window).compile()
            hlo = compiled.compiled.as_text()  # equinox wraps jax.stages.Compiled
            if args.hlo:
                with open(f"{args.hlo}{case}-{label}.hlo", "w") as f:
                    f.write(hlo)
            res[label] = step_thunks(hlo)

            def run(compiled=compiled, sargs=sargs, prepared=prepared):
                t0, c0 = time.perf_counter(), time.process_time()
                jax.block_until_ready(compiled(*sargs, truncate=prepared.window))
                return time.perf_counter() - t0, time.process_time() - c0

            run()  # warm-up
            runs[label] = run
        times = {label: [] for label in runs}
        cpu = {label: [] for label in runs}
        for _ in range(args.repeats):  # alternate model and floor
            for label, run in runs.items():
                wall, c = run()
                times[label].append(wall)
                cpu[label].append(c)
        for label in runs:
            med, cmed = statistics.median(times[label]), statistics.median(cpu[label])
            res[label].update(run_s_all=times[label], run_s=med, step_us=med / n_steps * 1e6,
                              cpu_s_all=cpu[label], cpu_s=cmed, cpu_step_us=cmed / n_steps * 1e6)
        res["x_floor"] = res["model"]["step_us"] / res["floor"]["step_us"]
        res["cpu_x_floor"] = res["model"]["cpu_step_us"] / res["floor"]["cpu_step_us"]
        out["cases"][case] = res
        for label in variants:
            r = res[label]
            print(f"{case}-{args.n} {label:<13} thunks {r['thunks']:3d} (fusions {r['fusions']}, "
                  f"copies {r['copies']}, custom calls {r['custom_calls']}); "
                  f"wall {r['step_us']:.1f} us/step (median of {args.repeats}: "
                  + ", ".join(f"{t / n_steps * 1e6:.1f}" for t in r["run_s_all"]) + "), "
                  f"CPU {r['cpu_step_us']:.2f} us/step ("
                  + ", ".join(f"{t / n_steps * 1e6:.2f}" for t in r["cpu_s_all"]) + ")")
            print(f"    {r['by_kind']}")
        print(f"{case}-{args.n}: {res['x_floor']:.2f}x the neuron-only floor (wall), "
              f"{res['cpu_x_floor']:.2f}x (CPU time)")
        if args.grad is not None:
            res["grad"] = grad_thunks(net, args)
            print(f"{case}-{args.n} under grad: forward step {res['grad']['forward']['thunks']} thunks "
                  f"{res['grad']['forward']['by_kind']}, backward step {res['grad']['backward']['thunks']} "
                  f"thunks {res['grad']['backward']['by_kind']}")
    path = args.out or RESULTS / "thunks.json"
    import json
    import pathlib
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
