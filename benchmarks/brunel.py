"""Brunel (2000) benchmark at full size: regime C (asynchronous irregular, g = 5,
eta = 2), N_E = 10000, N_I = 2500, C_E = 1000, C_I = 250, D = 1.5 ms, external Poisson
drive (``nj.gallery.get("brunel")``), neurojax vs Brian2 and BrainPy when installed.

    python benchmarks/brunel.py [--quick] [--duration MS] [--repeats N] [--anchors LIST]

The protocol of REFERENCES.md section 5: 1.5 s at dt = 0.1 ms, the rate measured after
the first 0.5 s and checked (+-3 % of the NEST / numpy simulations) before any time is
printed. One timed run by default (a run is about a minute on a loaded 2-core CPU).
"""

from __future__ import annotations

import sys

from _common import (
    alternate,
    check_rates,
    finish_args,
    flag_anchor_rates,
    median,
    parser,
    prepare,
    rates_of,
    report,
    start_anchors,
    timed_build,
)

# REFERENCES.md section 5, regime C: numpy 37.57 / 37.71 Hz, NEST 37.26 / 37.50 Hz
# (E / I); suggested acceptance +-3 % of the simulated values.
RATE_E = (37.57 * 0.97, 37.57 * 1.03)
RATE_I = (37.71 * 0.97, 37.71 * 1.03)
SKIP_MS = 500.0
BLOCK_MS = 100.0


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=1500.0, quick_duration=300.0)
    p.set_defaults(repeats=1)
    p.add_argument("--n-e", type=int, default=10000, help="excitatory neurons (N_I = N_E / 4)")
    args = finish_args(p.parse_args(argv))

    import neurojax as nj

    model, build_s = timed_build(nj.gallery.get("brunel", regime="C", n_e=args.n_e), args.seed)
    record = nj.Record(spikes=(), rates=list(model.names), every=BLOCK_MS)
    if args.duration % BLOCK_MS:
        raise SystemExit(f"--duration must be a multiple of {BLOCK_MS:g} ms.")
    run, compile_s = prepare(model, args.duration, args.dt, args.seed, record)
    checked = args.n_e == 10000 and args.duration >= SKIP_MS + 1000.0
    skip = SKIP_MS if checked else 0.0
    params = {"n_e": args.n_e, "c_e": 1000, "g": 5.0, "eta": 2.0, "j": 0.1, "delay": 1.5,
              "dt": args.dt, "duration": args.duration, "seed": args.seed, "skip_ms": skip}
    anchors = start_anchors(args, "brunel", params)
    times, rec, peak = alternate(run, anchors, args.repeats)
    rates = rates_of(model, rec, skip_blocks=int(skip / BLOCK_MS))
    if checked:
        why = "REFERENCES.md section 5, regime C, +-3 % of 37.57 / 37.71 Hz"
        check_rates("Brunel C", {"E": rates["E"]}, *RATE_E, why)
        check_rates("Brunel C", {"I": rates["I"]}, *RATE_I, why)
    rows = [{"name": "neurojax", "status": "ok", "build_s": build_s, "compile_s": compile_s,
             "run_s": median(times), "run_s_all": times, "peak_mb": peak, "rates_hz": rates}]
    if not checked:
        rows[0]["note"] = "rates not checked (reference: N_E = 10000, 1.5 s, rate after 0.5 s)"
    rows += [a.row() for a in anchors]
    if checked:
        flag_anchor_rates(rows[1:], RATE_E[0], RATE_I[1])
    # The same network with the external Poisson drive drawn by the counter-based hash
    # (`Poisson(generator="hash")`) instead of threefry, whose 12 500 uniforms per step
    # are a third of the default row's step on CPU. Its rates are checked the same way.
    import dataclasses

    net = nj.gallery.get("brunel", regime="C", n_e=args.n_e)
    hashed = nj.Network(net.populations, net.projections,
                        inputs=[dataclasses.replace(i, generator="hash") for i in net.inputs])
    model_h, build_h = timed_build(hashed, args.seed)
    run_h, compile_h = prepare(model_h, args.duration, args.dt, args.seed, record)
    times_h, rec_h, peak_h = alternate(run_h, [], args.repeats)
    rates_h = rates_of(model_h, rec_h, skip_blocks=int(skip / BLOCK_MS))
    if checked:
        check_rates("Brunel C, generator='hash'", {"E": rates_h["E"]}, *RATE_E, why)
        check_rates("Brunel C, generator='hash'", {"I": rates_h["I"]}, *RATE_I, why)
    rows.insert(1, {"name": 'neurojax, generator="hash"', "status": "ok", "build_s": build_h,
                    "compile_s": compile_h, "run_s": median(times_h), "run_s_all": times_h,
                    "peak_mb": peak_h, "rates_hz": rates_h, **({} if checked else {"note": rows[0]["note"]})})
    title = (f"Brunel 2000 regime C, N_E = {args.n_e}: {args.duration:g} ms at dt = {args.dt:g} ms, "
             f"rates after {skip:g} ms (reference 37.6 Hz)")
    return report("brunel", args, rows, title, config=params)


if __name__ == "__main__":
    main(sys.argv[1:])
