"""Building structured connectivity: a distance-dependent network on a torus (Gaussian
profile, Rosenbaum & Doiron 2014 style) of 100k neurons and ~10M synapses, drawn by
the cell-list sampler, beside the all-pairs sampler on the same network at a size it
can afford (its cost grows as N^2, the cell list's as N x neighbours).

    python benchmarks/build.py [--quick] [--n N] [--synapses K] [--width SIGMA]

Every row builds a `Network` of LIF neurons with `Network.build` (sampling, packing
into the sparse container, weight checks) and reports the build time, the synapse
count and the mean in-degree against its expectation (the row fails if they differ by
more than 1 %, so a fast but wrong build cannot pass). The issue's target: 100k
neurons and 10M synapses in at most 10 s on this 2-core machine.
"""

from __future__ import annotations

import sys

from _common import finish_args, parser, report


def _network(nj, n, k, width, layout_seed=0):
    C = nj.connectivity
    sheet = C.Sheet(extent=(1.0, 1.0), periodic=True, layout="random", seed=layout_seed)
    pop = nj.Population("E", n, nj.neurons.LIF(), space=sheet)
    # Peak probability for an expected in-degree k: k = p N 2 pi sigma^2 on a torus
    # much larger than sigma.
    import math
    p = k / (n * 2 * math.pi * width**2)
    if p > 1:
        raise SystemExit(f"in-degree {k} with width {width} needs p = {p:.2f} > 1; widen the profile.")
    proj = nj.Projection("E", "E", C.DistanceDependent(p=p, width=width), layout=C.Sparse())
    return nj.Network([pop], [proj]), p


def _row(name, nj, jax, np, n, k, width, seed, force_all_pairs=False):
    import time

    from neurojax.connectivity import spatial

    net, p = _network(nj, n, k, width)
    original = spatial._sample_in_cells
    if force_all_pairs:
        spatial._sample_in_cells = lambda *a: None
    try:
        t0 = time.perf_counter()
        model = net.build(jax.random.key(seed))
        build_s = time.perf_counter() - t0
    finally:
        spatial._sample_in_cells = original
    targets = np.asarray(model.projections[0].weights.targets)
    synapses = int((targets < n).sum())
    # Expected in-degree on the continuum torus minus the autapse: k (1 - 1/N) ~ k.
    ok = abs(synapses / n / k - 1) < 0.01
    return {"name": name, "n": n, "build_s": build_s, "synapses": synapses,
            "mean_in_degree": synapses / n, "expected_in_degree": k,
            "synapses_per_s": synapses / build_s,
            "status": "ok" if ok else f"FAILED: mean in-degree {synapses / n:.2f} vs {k}"}


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=0.0, quick_duration=0.0)
    p.add_argument("--n", type=int, default=100_000, help="neurons on the torus")
    p.add_argument("--synapses", type=int, default=100, help="expected in-degree")
    p.add_argument("--width", type=float, default=0.015, help="Gaussian sigma [sheet units]")
    p.add_argument("--all-pairs-n", type=int, default=20_000,
                   help="size of the network built by the all-pairs sampler for comparison")
    args = finish_args(p.parse_args(argv))
    if args.quick:
        args.width *= (args.n / 20_000) ** 0.5  # the same neurons within a width
        args.n, args.all_pairs_n = 20_000, 10_000

    import jax
    import numpy as np

    import neurojax as nj

    # Warm up (imports, the first jax.random calls) outside the timings.
    _row("warm-up", nj, jax, np, 400, 10, 0.1, args.seed)
    # The comparison pair: one network, small enough for all pairs, narrow enough for
    # the cell list (cutoff radius 5.7 sigma well below the torus).
    small_width, small_k = 0.03, 30
    rows = [
        _row(f"cell list N={args.n}", nj, jax, np, args.n, args.synapses, args.width, args.seed),
        _row(f"cell list N={args.all_pairs_n}", nj, jax, np, args.all_pairs_n, small_k,
             small_width, args.seed),
        _row(f"all pairs N={args.all_pairs_n}", nj, jax, np, args.all_pairs_n, small_k,
             small_width, args.seed, force_all_pairs=True),
    ]
    for r in rows:
        r["note"] = (f"{r['synapses']} synapses, {r['synapses_per_s']:.3g}/s, in-degree "
                     f"{r['mean_in_degree']:.2f} (expected {r['expected_in_degree']})")
    same = rows[2]["build_s"] / rows[1]["build_s"]
    report("build", args, rows, "Building a distance-dependent network (Network.build)",
           config=vars(args).copy(), extra={"all_pairs_over_cells": same}, baseline=None,
           ratio_note=f"build time, all pairs / cell list, at N={args.all_pairs_n}: {same:.1f}x")
    if any(r["status"] != "ok" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
