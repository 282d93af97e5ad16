"""COBA-4k benchmark: build, compile and run time of 1 s of the Vogels-Abbott network.

    python benchmarks/coba.py [--duration MS] [--repeats N] [--n N]

Prints a table and writes benchmarks/results/coba.json. Rates are checked against the
reference range (REFERENCES.md section 6) before any time is reported, so a fast but
wrong run is visible. The "floor" row is the same scan with the synapses removed
(neuron updates only); the ratio of the two is the cost of synaptic propagation.
Times on a shared machine are noisy: compare ratios from one run, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import jax

import neurojax as nj
from neurojax._misc import steps_for
from neurojax.simulate import Record, _plan, _run


def measure(network, duration, dt, repeats, seed=0):
    t0 = time.perf_counter()
    model = network.build(jax.random.key(seed))
    build_s = time.perf_counter() - t0
    state = model.init(jax.random.key(seed + 1), dt)
    record = Record(spikes=(), rates=list(model.names), every=duration)
    plan = _plan(model, record, dt, steps_for(duration, dt), state)
    n_blocks = steps_for(duration, dt) // plan.block_steps
    t0 = time.perf_counter()
    compiled = _run.lower(model, state, n_blocks, dt, plan, False).compile()
    compile_s = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, rec = compiled(model, state, n_blocks, dt, plan, False)
        jax.block_until_ready(rec)
        runs.append(time.perf_counter() - t0)
    rates = {name: float(r[0]) for name, r in zip(model.names, rec[1])}
    return {"build_s": build_s, "compile_s": compile_s, "run_s": min(runs),
            "run_s_all": runs, "rates_hz": rates}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated time [ms]")
    parser.add_argument("--dt", type=float, default=0.1, help="time step [ms]")
    parser.add_argument("--n", type=int, default=4000, help="number of neurons")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best is kept)")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results" / "coba.json"))
    args = parser.parse_args(argv)

    net = nj.gallery.get("coba", n=args.n)
    full = measure(net, args.duration, args.dt, args.repeats)
    floor = measure(nj.Network(net.populations, []), args.duration, args.dt, args.repeats)
    if args.n == 4000 and args.duration >= 1000.0:
        for pop, rate in full["rates_hz"].items():
            # REFERENCES.md section 6: 18.5 +- 1.5 Hz across seeds; allow the seed spread.
            if not 15.0 <= rate <= 22.0:
                raise SystemExit(f"COBA rate of {pop} is {rate:.2f} Hz, outside [15, 22] Hz: not timing a wrong run.")
    steps = steps_for(args.duration, args.dt)
    print(f"COBA-{args.n}, {args.duration:g} ms at dt = {args.dt:g} ms on {jax.default_backend()} "
          f"({platform.processor() or platform.machine()})")
    print(f"{'case':<22}{'build [s]':>10}{'compile [s]':>12}{'run [s]':>10}{'us/step':>10}  rates [Hz]")
    for name, r in (("neurojax", full), ("floor (no synapses)", floor)):
        rates = ", ".join(f"{k} {v:.2f}" for k, v in r["rates_hz"].items())
        print(f"{name:<22}{r['build_s']:>10.2f}{r['compile_s']:>12.2f}{r['run_s']:>10.3f}"
              f"{r['run_s'] / steps * 1e6:>10.1f}  {rates}")
    print(f"run time / floor = {full['run_s'] / floor['run_s']:.1f}x")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"case": f"coba-{args.n}", "duration_ms": args.duration, "dt_ms": args.dt,
                               "backend": jax.default_backend(), "jax": jax.__version__,
                               "neurojax": full, "floor": floor}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
