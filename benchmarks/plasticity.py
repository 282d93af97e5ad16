"""Plasticity benchmark: the cost of plastic synapses, side by side in one run.

    python benchmarks/plasticity.py [--quick] [--cases LIST] [--repeats N] [--anchors LIST]

Three cases (issue 14), each neurojax against Brian2 (cpp_standalone and runtime) when
it is installed (``pip install -e ".[bench]"``; "not installed" otherwise):

- ``coba``: COBA-4k (Vogels & Abbott 2005, the gallery model) for 1 s, static and with
  pair STDP on E->E (Song et al. 2000 window, A+ = 0.01 w_max, A- = 1.05 A+, 20 ms,
  w_max = 2 w_e; Brian2 with its STDP example's idiom, event-driven traces). Goal: the
  plastic run at most 2x the static one, and at least 2x faster than Brian2.
- ``song_abbott``: one LIF neuron, 1000 plastic Poisson inputs at 15 Hz, 100 s (the
  Brian2 example ``synapses/STDP.py``, as tutorials/stdp_and_stp.py runs it); a second
  neurojax row draws the inputs with ``PoissonPopulation(generator="hash")``.
- ``vogels2011``: 10 000 LIF neurons (80 % E), p = 0.02, conductance synapses, 200 pA
  background, inhibitory STDP on I->E (Vogels et al. 2011, eta = 0.01, rho0 = 3 Hz,
  20 ms; the Brian2 example ``frompapers/Vogels_et_al_2011.py``), 10 s.

Build, compile and run times are reported separately (the median of the repeats is the
run time, with their spread); `ratio` is a row's run time over the neurojax plastic row of its case
(> 1: slower than neurojax). Times on a shared machine are noisy: compare the ratios of
one run (the simulators are timed alternately), not absolute times.
"""

from __future__ import annotations

import sys

from _common import (
    Anchor,
    alternate,
    finish_args,
    median,
    parser,
    prepare,
    rates_of,
    report,
    start_anchors,
    timed_build,
)

CASES = ("coba", "song_abbott", "vogels2011")
BRIAN2 = ("brian2-runtime", "brian2-cpp")
# Simulated time [ms]: (full, --quick) per case.
DURATIONS = {"coba": (1000.0, 200.0), "song_abbott": (100_000.0, 2000.0),
             "vogels2011": (10_000.0, 500.0)}
# REFERENCES.md section 6: 18.5 +- 1.5 Hz for static COBA-4k over 1 s (coba.py's range).
COBA_RATES = (15.0, 22.0)


# ----------------------------------------------------------------------------- models
def coba_network(plastic: bool, seed_params: dict):
    """COBA-4k (the gallery wiring), E->E split from E->I so that E->E can carry
    `PairSTDP` (w_max = 2 w_e, A+ = 0.01 w_max, A- = 1.05 A+, tau = 20 ms)."""
    import neurojax as nj
    from neurojax.gallery.vogels_abbott import _lif

    n, p, w_e, w_i = (seed_params[k] for k in ("n", "p", "w_e", "w_i"))
    n_e = int(round(0.8 * n))
    v0 = {"v": nj.Normal(-65.0, 5.0)}
    neuron = _lif(-60.0)
    E = nj.Population("E", n_e, neuron, initial=v0, sign=+1)
    I = nj.Population("I", n - n_e, neuron, initial=v0, sign=-1)
    exc = dict(synapse=nj.synapses.Exponential(tau=5.0),
               receptor=nj.synapses.Conductance(e_rev=0.0), initial=nj.Normal(40.0, 15.0))
    inh = dict(synapse=nj.synapses.Exponential(tau=10.0),
               receptor=nj.synapses.Conductance(e_rev=-80.0), initial=nj.Normal(200.0, 120.0))
    w_max = 2.0 * w_e
    stdp = nj.plasticity.PairSTDP(a_plus=0.01 * w_max, a_minus=0.0105 * w_max, tau_plus=20.0,
                                  tau_minus=20.0, w_max=w_max) if plastic else None
    projections = [
        nj.Projection("E", "E", nj.connectivity.FixedProbability(p), weight=w_e,
                      plasticity=stdp, **exc),
        nj.Projection("E", "I", nj.connectivity.FixedProbability(p), weight=w_e, **exc),
        nj.Projection("I", ["E", "I"], nj.connectivity.FixedProbability(p), weight=w_i, **inh),
    ]
    return nj.Network([E, I], projections)


def song_abbott_network(params: dict, generator: str = "jax"):
    """tutorials/stdp_and_stp.py's Song-Abbott model (Brian2's STDP example); `generator`
    is the input population's random generator (`PoissonPopulation(generator=...)`)."""
    import neurojax as nj

    g_l = 10.0  # [nS]
    w_max = 0.01 * g_l * 60.0  # [pA] = g_max g_l (E_e - v_r)
    a = 0.01 * w_max
    lif = nj.neurons.LIF(c_m=100.0, g_l=g_l, e_l=-74.0, v_th=-54.0, v_reset=-60.0, t_ref=0.0)
    stdp = nj.plasticity.PairSTDP(a_plus=a, a_minus=1.05 * a, tau_plus=20.0, tau_minus=20.0,
                                  w_max=w_max)
    return nj.Network(
        [nj.Population("in", params["n_in"], nj.inputs.PoissonPopulation(rate=15.0,
                                                                         generator=generator)),
         nj.Population("out", 1, lif, initial={"v": -60.0})],
        [nj.Projection("in", "out", nj.connectivity.AllToAll(), weight=nj.Uniform(0.0, w_max),
                       synapse=nj.synapses.Exponential(5.0), receptor=nj.synapses.Current(),
                       plasticity=stdp)])


def vogels2011_network(params: dict):
    """Vogels et al. (2011) as Brian2's example writes it: C_m = 200 pF, g_l = 10 nS,
    E_l = reset = -60 mV, threshold -50 mV, 5 ms refractory, 200 pA background;
    AMPA 5 ms (0 mV, 0.3 nS from E to all), GABA 10 ms (-80 mV; I->I 3 nS; I->E
    plastic from 0 with `InhibitorySTDP(eta=0.01, rho0=3 Hz, tau=20 ms, w_max=100 nS)`);
    V ~ U(-60, -50) mV at the start."""
    import neurojax as nj

    n, p = params["n"], params["p"]
    n_e = int(round(0.8 * n))
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0)
    v0 = {"v": nj.Uniform(-60.0, -50.0)}
    E = nj.Population("E", n_e, lif, initial=v0, sign=+1)
    I = nj.Population("I", n - n_e, lif, initial=v0, sign=-1)
    ampa = dict(synapse=nj.synapses.Exponential(tau=5.0), receptor=nj.synapses.Conductance(e_rev=0.0))
    gaba = dict(synapse=nj.synapses.Exponential(tau=10.0),
                receptor=nj.synapses.Conductance(e_rev=-80.0))
    istdp = nj.plasticity.InhibitorySTDP(eta=0.01, rho0=3.0, tau_stdp=20.0, w_max=100.0)
    return nj.Network(
        [E, I],
        [nj.Projection("E", ["E", "I"], nj.connectivity.FixedProbability(p), weight=0.3, **ampa),
         nj.Projection("I", "I", nj.connectivity.FixedProbability(p), weight=3.0, **gaba),
         nj.Projection("I", "E", nj.connectivity.FixedProbability(p), weight=0.0,
                       plasticity=istdp, **gaba)],
        inputs=[nj.inputs.Constant("E", amplitude=200.0), nj.inputs.Constant("I", amplitude=200.0)])


# ----------------------------------------------------------------------------- timing
def neurojax_row(name: str, network, args, duration: float, anchors: list[Anchor]) -> dict:
    """Build, compile and time `network` for `duration` [ms], alternating with `anchors`."""
    import neurojax as nj

    model, build_s = timed_build(network, args.seed)
    record = nj.Record(spikes=(), rates=list(model.names), every=duration)
    run, compile_s = prepare(model, duration, args.dt, args.seed, record)
    times, rec, peak = alternate(run, anchors, args.repeats)
    return {"name": name, "status": "ok", "build_s": build_s, "compile_s": compile_s,
            "run_s": median(times), "run_s_all": times, "peak_mb": peak,
            "rates_hz": rates_of(model, rec), "duration_ms": duration}


def brian2_anchors(args, case: str, params: dict) -> tuple[list[Anchor], list[dict]]:
    """The Brian2 anchors of `--anchors` (others have no plastic model here: a row says so)."""
    wanted = [a for a in args.anchor_list if a in BRIAN2]
    skipped = [{"name": f"{a} ({case})", "status": "not run: no plastic model written for it"}
               for a in args.anchor_list if a not in BRIAN2]
    sub = type(args)(**{**vars(args), "anchor_list": wanted})
    return start_anchors(sub, case, params), skipped


def anchor_rows(anchors: list[Anchor], case: str, duration: float) -> list[dict]:
    rows = []
    for a in anchors:
        row = a.row(f"{a.sim} ({case})")
        row["duration_ms"] = duration
        rows.append(row)
    return rows


def ratios(rows: list[dict], baseline: str, case: str) -> None:
    """`ratio` of every row of `case` = its run time / the `baseline` row's."""
    base = next(r for r in rows if r["name"] == baseline)
    for r in rows:
        if r.get("case") == case and r.get("run_s") and base.get("run_s"):
            r["ratio"] = r["run_s"] / base["run_s"]


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=0.0, quick_duration=0.0)
    p._option_string_actions["--duration"].help = (
        "simulated time [ms] for every case (default per case: "
        + ", ".join(f"{c} {full:g} ({quick:g} with --quick)" for c, (full, quick) in DURATIONS.items())
        + ")")
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated cases to run ({', '.join(CASES)})")
    args = finish_args(p.parse_args(argv))
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in CASES]
    if bad:
        raise SystemExit(f"unknown case(s) {bad}; choose from {list(CASES)}.")
    if args.duration:  # an explicit --duration applies to every case
        durations = {c: args.duration for c in cases}
    else:
        durations = {c: DURATIONS[c][1 if args.quick else 0] for c in cases}

    rows, summary, config = [], {}, {"dt": args.dt, "seed": args.seed, "durations_ms": durations}
    if "coba" in cases:
        d = durations["coba"]
        params = {"n": 4000, "p": 0.02, "w_e": 6.0, "w_i": 67.0, "dt": args.dt, "duration": d,
                  "seed": args.seed}
        static = neurojax_row("neurojax COBA-4k static", coba_network(False, params), args, d, [])
        anchors, skipped = brian2_anchors(args, "coba_stdp", params)
        plastic = neurojax_row("neurojax COBA-4k + PairSTDP", coba_network(True, params), args, d,
                               anchors)
        if d >= 1000.0:
            bad_rates = {k: v for k, v in static["rates_hz"].items()
                         if not COBA_RATES[0] <= v <= COBA_RATES[1]}
            if bad_rates:
                raise SystemExit(f"static COBA-4k rates {bad_rates} outside {COBA_RATES} Hz "
                                 "(REFERENCES.md section 6); not timing a wrong run.")
        else:
            static["note"] = "rates not checked (reference: 1 s)"
        case_rows = [static, plastic] + anchor_rows(anchors, "coba_stdp", d) + skipped
        for r in case_rows:
            r["case"] = "coba"
        rows += case_rows
        ratios(rows, plastic["name"], "coba")
        summary["coba_plastic_over_static"] = plastic["run_s"] / static["run_s"]
        config["coba"] = params

    if "song_abbott" in cases:
        d = durations["song_abbott"]
        params = {"n_in": 1000, "rate": 15.0, "dt": args.dt, "duration": d, "seed": args.seed}
        anchors, skipped = brian2_anchors(args, "song_abbott", params)
        row = neurojax_row("neurojax Song-Abbott", song_abbott_network(params), args, d, anchors)
        # The same model with the inputs' counter-based hash generator: threefry's 1000
        # uniforms per step are most of the default row's step on CPU.
        hashed = neurojax_row('neurojax Song-Abbott, generator="hash"',
                              song_abbott_network(params, "hash"), args, d, [])
        case_rows = [row, hashed] + anchor_rows(anchors, "song_abbott", d) + skipped
        for r in case_rows:
            r["case"] = "song_abbott"
        rows += case_rows
        ratios(rows, row["name"], "song_abbott")
        summary["song_abbott_run_s_per_simulated_s"] = row["run_s"] / (d * 1e-3)
        summary["song_abbott_hash_run_s_per_simulated_s"] = hashed["run_s"] / (d * 1e-3)
        config["song_abbott"] = params

    if "vogels2011" in cases:
        d = durations["vogels2011"]
        params = {"n": 10_000, "p": 0.02, "dt": args.dt, "duration": d, "seed": args.seed}
        anchors, skipped = brian2_anchors(args, "vogels2011", params)
        row = neurojax_row("neurojax Vogels 2011", vogels2011_network(params), args, d, anchors)
        case_rows = [row] + anchor_rows(anchors, "vogels2011", d) + skipped
        for r in case_rows:
            r["case"] = "vogels2011"
        rows += case_rows
        ratios(rows, row["name"], "vogels2011")
        summary["vogels2011_run_s_per_simulated_s"] = row["run_s"] / (d * 1e-3)
        config["vogels2011"] = params

    title = ("Plasticity: " + "; ".join(f"{c} {durations[c]:g} ms" for c in cases)
             + f" at dt = {args.dt:g} ms")
    payload = report("plasticity", args, rows, title, config=config, extra=summary, baseline=None,
                     ratio_note="run time / run time of the neurojax plastic row of the same "
                                "case (medians of the alternated repeats; > 1: slower than neurojax)")
    for k, v in summary.items():
        print(f"{k}: {v:.3f}")
    return payload


if __name__ == "__main__":
    main(sys.argv[1:])
