"""Scaling benchmark: COBA with 80 excitatory + 20 inhibitory synapses per neuron at 4k,
16k, 64k, 256k and 1M neurons, neurojax vs Brian2 and BrainPy (up to ``--anchor-max-n``)
when installed.

    python benchmarks/scaling.py [--quick] [--max-n N] [--anchor-max-n N] [--duration MS]
                                 [--procedural]

Up to 64k neurons every neuron has a fixed in-degree (`FixedInDegree`): with the
in-degree fixed, the mean-field input of every neuron is the same at every size, so the
network stays in one regime and the run time per neuron-step shows how the kernels
scale. Stored synapses take n x ~100 indices, so from 256k neurons on the network uses
**procedural connectivity** (`Procedural`: each neuron's targets are regenerated from a
seed whenever it spikes, O(N) memory) with the same mean in-degrees: each E neuron has
80 targets among the E neurons and 20 among the I neurons, each I neuron 80 among E and
20 among I, drawn uniformly, so the in-degrees are Binomial with means 80 E + 20 I
(their spread raises the rate a little: 18-19 Hz at 16k against 14-15 Hz with fixed
in-degrees). ``--procedural`` uses it at every size, to compare sizes with one rule.
``--max-n`` defaults to 64k to keep the default run short; 256k and 1M run on a 2-core
CPU in minutes (1M, 100 ms: about 25 s, 0.5-0.6 GB peak RSS of which 0.3 GB is the JAX
runtime itself).

Weights: the COBA increments of the 4k reference network (6 nS, 67 nS) let the activity
die out within 300 ms once every neuron receives exactly 80 + 20 inputs (measured: 12.8,
11.0, 2.9, 0 Hz in successive 100 ms), because a fixed in-degree removes the spread of
input that sustains the self-sustained state. They are scaled by 1.5 (9 nS, 100.5 nS),
which sustains 13-16 Hz at 4k and 16k over 1 s for every seed tried. There is no
published rate for this variant, so the check is a sanity range (sustained, not
saturated): 8-25 Hz, for both rules.
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

SIZES = (4_000, 16_000, 64_000, 256_000, 1_000_000)
K_E, K_I = 80, 20
W_E, W_I = 6.0 * 1.5, 67.0 * 1.5  # [nS], see the module docstring
RATE_RANGE = (8.0, 25.0)  # sanity range, not a published reference
PROCEDURAL_FROM = 256_000  # smallest size that uses procedural connectivity by default


def network(n: int, procedural: bool = False):
    """COBA (gallery parameters) with in-degrees `K_E`, `K_I` (fixed, or their mean with
    `procedural`) and weights `W_E`, `W_I`."""
    import neurojax as nj
    from neurojax.connectivity.procedural import Procedural
    from neurojax.distributions import Normal

    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=5.0)
    n_e = int(round(0.8 * n))
    v0 = {"v": Normal(-65.0, 5.0)}
    E = nj.Population("E", n_e, lif, initial=v0)
    I = nj.Population("I", n - n_e, lif, initial=v0)
    if procedural:
        # p = K / n_pre gives out-degrees K * n_post / n_pre: mean in-degree K from each
        # presynaptic population, onto E and onto I alike.
        rule_e, rule_i = Procedural(p=K_E / n_e), Procedural(p=K_I / (n - n_e))
    else:
        rule_e, rule_i = nj.connectivity.FixedInDegree(K_E), nj.connectivity.FixedInDegree(K_I)
    exc = nj.Projection("E", ["E", "I"], rule_e, weight=W_E,
                        synapse=nj.synapses.Exponential(tau=5.0),
                        receptor=nj.synapses.Conductance(e_rev=0.0), initial=Normal(40.0, 15.0))
    inh = nj.Projection("I", ["E", "I"], rule_i, weight=W_I,
                        synapse=nj.synapses.Exponential(tau=10.0),
                        receptor=nj.synapses.Conductance(e_rev=-80.0), initial=Normal(200.0, 120.0))
    return nj.Network([E, I], [exc, inh])


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=200.0, quick_duration=50.0)
    p.set_defaults(repeats=2)
    p.add_argument("--max-n", type=int, default=64_000,
                   help="largest network [neurons] (default 64k; up to 1M, see the docstring)")
    p.add_argument("--procedural", action="store_true",
                   help=f"procedural connectivity at every size (default: from {PROCEDURAL_FROM:,})")
    p.add_argument("--anchor-max-n", type=int, default=16_000,
                   help="largest network also run in Brian2 / BrainPy")
    args = finish_args(p.parse_args(argv))
    sizes = [n for n in SIZES if n <= args.max_n]
    if args.quick:
        sizes = sizes[:2]

    import neurojax as nj

    rows = []
    for n in sizes:
        procedural = args.procedural or n >= PROCEDURAL_FROM
        rule = "procedural" if procedural else "fixed in-degree"
        print(f"  {label(n)} neurons ({rule}) ...", flush=True)
        model, build_s = timed_build(network(n, procedural), args.seed)
        record = nj.Record(spikes=(), rates=list(model.names), every=args.duration)
        run, compile_s = prepare(model, args.duration, args.dt, args.seed, record)
        params = {"n": n, "k_e": K_E, "k_i": K_I, "w_e": W_E, "w_i": W_I, "dt": args.dt,
                  "duration": args.duration, "seed": args.seed}
        # The anchors build fixed in-degrees: compared only with the same rule.
        with_anchors = n <= args.anchor_max_n and not procedural
        anchors = start_anchors(args, "scaling", params) if with_anchors else []
        times, rec, peak = alternate(run, anchors, args.repeats)
        rates = rates_of(model, rec)
        check_rates(f"scaling {label(n)}", rates, *RATE_RANGE, "sanity range of this variant")
        steps = round(args.duration / args.dt)
        size_rows = [{"name": f"neurojax {label(n)}", "status": "ok", "n": n, "connectivity": rule,
                      "build_s": build_s, "compile_s": compile_s, "run_s": median(times),
                      "run_s_all": times, "s_per_sim_s": median(times) / args.duration * 1e3,
                      "ns_per_neuron_step": median(times) / (steps * n) * 1e9,
                      "peak_mb": peak, "rates_hz": rates,
                      "note": "procedural" if procedural else ""}]
        for a in anchors:
            size_rows.append({**a.row(f"{a.sim} {label(n)}"), "n": n})
        flag_anchor_rates(size_rows[1:], *RATE_RANGE)
        for r in size_rows:
            if r.get("run_s"):
                r["ratio"] = r["run_s"] / size_rows[0]["run_s"]
        rows += size_rows
    skipped = [label(n) for n in SIZES if n > args.max_n]
    title = (f"COBA, in-degree {K_E} E + {K_I} I (fixed; mean with procedural connectivity, "
             f"{'all sizes' if args.procedural else f'from {label(PROCEDURAL_FROM)}'}), "
             f"w = {W_E:g} / {W_I:g} nS: {args.duration:g} ms at dt = {args.dt:g} ms")
    if skipped:
        title += f"\n(not run: {', '.join(skipped)} > --max-n)"
    return report("scaling", args, rows, title, config={
        "sizes": sizes, "k_e": K_E, "k_i": K_I, "w_e": W_E, "w_i": W_I, "dt": args.dt,
        "duration": args.duration, "seed": args.seed, "skipped": skipped,
        "procedural": "all" if args.procedural else f">= {PROCEDURAL_FROM}"},
        baseline=None, ratio_note="run time / neurojax run time at the same size")


if __name__ == "__main__":
    main(sys.argv[1:])
