"""Brunel (2000) regime A at full size through the event-buffer kernel: every event of
its synchronous volleys is delivered, spike for spike as by the loop kernel.

    python benchmarks/brunel_buffer.py [--duration MS] [--n-e N] [--kernels LIST]

Regime A (g = 3, eta = 2, synchronous regular, 333 Hz) fires in volleys of thousands
of neurons per 0.1 ms step, many times the default event buffer of the "buffer" kernel
(a tenth of each population), which is what `kernel="auto"` runs on GPU/TPU. The
buffer kernel with its default `capacity=None` must deliver the overflow (further
passes) rather than raise or drop events. Each kernel runs the same network (same
connectivity, initial state and Poisson drive); the script fails unless every spike
raster equals the first kernel's, and reports spike counts, the largest volley per
step against the default capacity, and compile and run times. The charges are
integer multiples of 25 pA ms, so sums are exact in any order and equality is exact.

A check, not a suite case (`run.py` does not run it): a few minutes on a loaded 2-core
CPU for the default 200 ms. On a GPU, add `auto` to `--kernels` to run the default
path itself. Writes ``benchmarks/results/brunel_buffer.json``.
"""

from __future__ import annotations

import sys

import numpy as np
from _common import alternate, finish_args, median, parser, prepare, report, timed_build, with_kernel

SKIP_MS = 100.0


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=200.0, quick_duration=50.0)
    p.set_defaults(repeats=1, anchors="none")
    p.add_argument("--n-e", type=int, default=10000, help="excitatory neurons (N_I = N_E / 4)")
    p.add_argument("--kernels", default="loop,buffer",
                   help="comma-separated kernels to compare (the first is the reference)")
    args = finish_args(p.parse_args(argv))

    import neurojax as nj
    from neurojax.connectivity.weights import DEFAULT_CHUNK, _capacity

    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    network = nj.gallery.get("brunel", regime="A", n_e=args.n_e)
    record = nj.Record(spikes=True, rates=["E", "I"], every=10.0)
    rows, rasters = [], {}
    for kernel in kernels:
        model, build_s = timed_build(with_kernel(network, kernel), args.seed)
        run, compile_s = prepare(model, args.duration, args.dt, args.seed, record)
        times, rec, peak = alternate(run, [], args.repeats)
        spikes = {name: np.asarray(s).reshape(-1, s.shape[-1]) for name, s in zip(model.names, rec[0])}
        rasters[kernel] = spikes
        skip = int(SKIP_MS / 10.0) if args.duration > SKIP_MS else 0
        rates = {name: float(np.mean(np.asarray(r)[skip:])) for name, r in zip(model.names, rec[1])}
        per_step = {name: s.sum(axis=1) for name, s in spikes.items()}
        capacity = {p.name: _capacity(None, p.n, DEFAULT_CHUNK) for p in network.populations}
        rows.append({
            "name": f"neurojax, kernel={kernel}", "status": "ok", "build_s": build_s,
            "compile_s": compile_s, "run_s": median(times), "run_s_all": times, "peak_mb": peak,
            "rates_hz": rates,
            "spikes": {name: int(s.sum()) for name, s in spikes.items()},
            "max_events_per_step": {name: int(c.max()) for name, c in per_step.items()},
            "default_capacity": capacity,
            "steps_over_capacity": {name: int((c > capacity[name]).sum())
                                    for name, c in per_step.items()},
        })
        print(f"{kernel}: {rows[-1]['spikes']} spikes, largest volley per step "
              f"{rows[-1]['max_events_per_step']} (default capacity {capacity}; steps over it "
              f"{rows[-1]['steps_over_capacity']}), run {median(times):.1f} s", flush=True)

    reference = kernels[0]
    identical = {}
    for kernel in kernels[1:]:
        same = all(np.array_equal(rasters[kernel][n], rasters[reference][n])
                   for n in rasters[reference])
        identical[kernel] = same
        rows[kernels.index(kernel)]["note"] = (
            f"spikes identical to kernel={reference}" if same
            else f"SPIKES DIFFER from kernel={reference}")
    params = {"regime": "A", "n_e": args.n_e, "c_e": 1000, "g": 3.0, "eta": 2.0, "j": 0.1,
              "delay": 1.5, "dt": args.dt, "duration": args.duration, "seed": args.seed,
              "rates_after_ms": SKIP_MS if args.duration > SKIP_MS else 0.0}
    title = (f"Brunel 2000 regime A, N_E = {args.n_e}: {args.duration:g} ms at dt = {args.dt:g} ms, "
             f"kernels {', '.join(kernels)} (reference 333.5 Hz)")
    report("brunel_buffer", args, rows, title, config=params, extra={"identical": identical},
           baseline=f"neurojax, kernel={reference}")
    if not all(identical.values()):
        raise SystemExit(f"spike rasters differ from kernel={reference}: {identical}")


if __name__ == "__main__":
    main(sys.argv[1:])
