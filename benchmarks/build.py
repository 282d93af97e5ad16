"""Building structured connectivity: a distance-dependent network on a torus (Gaussian
profile, Rosenbaum & Doiron 2014 style) of 100k neurons and ~10M synapses, drawn by
the cell-list sampler, beside the all-pairs sampler on the same network at a size it
can afford (its cost grows as N^2, the cell list's as N x neighbours).

    python benchmarks/build.py [--quick] [--n N] [--synapses K] [--width SIGMA]

Every row builds a `Network` of LIF neurons with `Network.build` (sampling, packing
into the sparse container, weight checks) and reports the build time, the synapse
count and the mean in-degree against its expectation (the row fails if they differ by
more than 1 %, so a fast but wrong build cannot pass). The issue's target: 100k
neurons and 10M synapses in at most 10 s on this 2-core machine, also for a network
wired from a four-type table (E, PV, SST, VIP: the Campagnola et al. 2022 table of the
gallery's `v1_campagnola`, 16 distance-dependent projections on one torus).

Three more rows compare the stored `DistanceDependent` with its procedural variant,
`Procedural(out_degree=K, profile="gaussian", width=...)`, on one grid torus of the same
size (316^2 = 99856 neurons for 100k, K = 100): build time, the bytes the built model
holds, the build's peak memory (process RSS added), and the time of one delivery with
every neuron active (all 10M synapses scattered, regenerated for the procedural one;
compiled first, best of 3), the cost that procedural connectivity pays per event
instead of memory; a third row gives the uniform `Procedural(out_degree=K)` with the
same pure-JAX kernel for context. `--procedural-only` runs just these three rows.
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


def _table_row(name, nj, jax, np, n, k, seed):
    """The issue's four-type case: the Campagnola et al. 2022 V1 L2/3 table (E, PV, SST,
    VIP at the gallery's fractions) on one torus, each pair distance-dependent with the
    table's p as the peak of a Gaussian profile whose width is chosen for a mean
    in-degree of `k` over the network (16 projections)."""
    import math
    import time

    from neurojax.gallery.v1_campagnola import FRACTIONS

    C = nj.connectivity
    table = nj.gallery.v1_campagnola_table()
    sizes = {t: max(1, round(FRACTIONS[t] * n)) for t in table.types}
    idx = {t: i for i, t in enumerate(table.types)}
    # Expected synapses = sum over pairs of p n_pre n_post 2 pi sigma^2 (uniform
    # positions, sigma << the torus; n_pre - 1 within a type).
    pair_sum = sum(table.p[idx[post], idx[pre]] * (sizes[pre] - (pre == post)) * sizes[post]
                   for post in table.types for pre in table.types)
    total = sum(sizes.values())
    width = math.sqrt(k * total / (2 * math.pi * pair_sum))
    pops = [nj.Population(t, sizes[t], nj.neurons.LIF(),
                          space=C.Sheet(extent=(1.0, 1.0), layout="random", seed=i))
            for i, t in enumerate(table.types)]
    projs = table.projections(
        pops, synapse=nj.synapses.Exponential(), layout=C.Sparse(),
        weight_fn=lambda post, pre, s: 10.0 * s,
        connectivity=lambda post, pre, p: C.DistanceDependent(p=p, width=width))
    net = nj.Network(pops, projs)
    t0 = time.perf_counter()
    model = net.build(jax.random.key(seed))
    build_s = time.perf_counter() - t0
    synapses = sum(int(np.asarray(pr.weights.targets < pr.weights.n_post).sum())
                   for pr in model.projections)
    expected = k * total
    ok = abs(synapses / expected - 1) < 0.01
    return {"name": name, "n": total, "build_s": build_s, "synapses": synapses,
            "mean_in_degree": synapses / total, "expected_in_degree": k,
            "synapses_per_s": synapses / build_s,
            "status": "ok" if ok else f"FAILED: {synapses} synapses vs {expected} expected"}


def _grid_rows(nj, jax, np, n, k, width, seed):
    """The stored and the procedural distance-dependent network on one grid torus."""
    import math
    import time

    import equinox as eqx
    import jax.numpy as jnp

    from _common import PeakMemory

    C = nj.connectivity
    side = math.isqrt(n)
    n = side * side
    sheet = C.Sheet(extent=(1.0, 1.0), periodic=True, layout="grid")
    pop = nj.Population("E", n, nj.neurons.LIF(), space=sheet)
    p = k / (n * 2 * math.pi * width**2)  # as `_network`: expected in-degree k
    rules = {
        f"stored grid N={n}": (C.DistanceDependent(p=p, width=width), C.Sparse()),
        f"procedural grid N={n}": (C.Procedural(out_degree=k, profile="gaussian", width=width),
                                   C.Sparse(kernel="loop")),
        # Context for the delivery time: uniform targets, same pure-JAX loop kernel.
        f"procedural uniform N={n}": (C.Procedural(out_degree=k), C.Sparse(kernel="loop")),
    }
    rows = []
    for name, (rule, layout) in rules.items():
        net = nj.Network([pop], [nj.Projection("E", "E", rule, layout=layout)])
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            model = net.build(jax.random.key(seed))
            jax.block_until_ready(jax.tree.leaves(eqx.filter(model, eqx.is_array)))
            build_s = time.perf_counter() - t0
        w = model.projections[0].weights
        held = sum(x.nbytes for x in jax.tree.leaves(eqx.filter(w, eqx.is_array)))
        buffer, act = jnp.zeros((2, n)), jnp.ones(n)
        deliver = jax.jit(lambda w, b, a: w.deliver(b, a, jnp.asarray(0, jnp.int32), 1, 0.1))
        jax.block_until_ready(deliver(w, buffer, act))
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = jax.block_until_ready(deliver(w, buffer, act))
            times.append(time.perf_counter() - t0)
        synapses = int(round(float(out.sum())))  # unit weights: the delivered total
        ok = abs(synapses / n / k - 1) < 0.01
        rows.append({"name": name, "n": n, "build_s": build_s, "synapses": synapses,
                     "mean_in_degree": synapses / n, "expected_in_degree": k,
                     "synapses_per_s": synapses / build_s, "model_mb": held / 2**20,
                     "build_peak_mb": mem.delta_mb, "deliver_all_s": min(times),
                     "status": "ok" if ok else f"FAILED: mean in-degree {synapses / n:.2f} vs {k}"})
    return rows


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=0.0, quick_duration=0.0)
    p.add_argument("--n", type=int, default=100_000, help="neurons on the torus")
    p.add_argument("--synapses", type=int, default=100, help="expected in-degree")
    p.add_argument("--width", type=float, default=0.015, help="Gaussian sigma [sheet units]")
    p.add_argument("--all-pairs-n", type=int, default=20_000,
                   help="size of the network built by the all-pairs sampler for comparison")
    p.add_argument("--procedural-only", action="store_true",
                   help="only the stored / procedural grid rows")
    args = finish_args(p.parse_args(argv))
    if args.quick:
        args.width *= (args.n / 20_000) ** 0.5  # the same neurons within a width
        args.n, args.all_pairs_n = 20_000, 10_000

    import jax
    import numpy as np

    import neurojax as nj

    # Warm up (imports, the first jax.random calls) outside the timings.
    _row("warm-up", nj, jax, np, 400, 10, 0.1, args.seed)
    grid = _grid_rows(nj, jax, np, args.n, args.synapses, args.width, args.seed)
    stored, proc, uniform = grid
    grid_extra = {
        "procedural_over_stored": {
            "build_s": proc["build_s"] / stored["build_s"],
            "model_mb": proc["model_mb"] / stored["model_mb"],
            "build_peak_mb": (proc["build_peak_mb"] / stored["build_peak_mb"]
                              if stored["build_peak_mb"] else None),
            "deliver_all_s": proc["deliver_all_s"] / stored["deliver_all_s"],
        },
        "profile_over_uniform_deliver_all_s": proc["deliver_all_s"] / uniform["deliver_all_s"],
    }
    for r in grid:
        r["note"] = (f"{r['synapses']} synapses, model {r['model_mb'] * 2**20:.4g} B, build peak "
                     f"+{r['build_peak_mb']:.0f} MB, all-active delivery {r['deliver_all_s']:.3g} s")
    if args.procedural_only:
        report("build", args, grid, "Stored vs procedural distance-dependent network",
               config=vars(args).copy(), extra=grid_extra, baseline=None,
               ratio_note=f"procedural / stored: {grid_extra['procedural_over_stored']}")
        if any(r["status"] != "ok" for r in grid):
            sys.exit(1)
        return
    # The comparison pair: one network, small enough for all pairs, narrow enough for
    # the cell list (cutoff radius 5.7 sigma well below the torus).
    small_width, small_k = 0.03, 30
    rows = [
        _row(f"cell list N={args.n}", nj, jax, np, args.n, args.synapses, args.width, args.seed),
        _row(f"cell list N={args.all_pairs_n}", nj, jax, np, args.all_pairs_n, small_k,
             small_width, args.seed),
        _row(f"all pairs N={args.all_pairs_n}", nj, jax, np, args.all_pairs_n, small_k,
             small_width, args.seed, force_all_pairs=True),
        # Quick: a fifth of the in-degree, so that the profile stays short-ranged at
        # 20k neurons (the cell list; with 100 synapses each it would span the torus).
        _table_row(f"4-type table N={args.n}", nj, jax, np, args.n,
                   args.synapses // 5 if args.quick else args.synapses, args.seed),
    ]
    for r in rows:
        r["note"] = (f"{r['synapses']} synapses, {r['synapses_per_s']:.3g}/s, in-degree "
                     f"{r['mean_in_degree']:.2f} (expected {r['expected_in_degree']})")
    same = rows[2]["build_s"] / rows[1]["build_s"]
    rows += grid
    report("build", args, rows, "Building a distance-dependent network (Network.build)",
           config=vars(args).copy(), extra={"all_pairs_over_cells": same, **grid_extra},
           baseline=None,
           ratio_note=f"build time, all pairs / cell list, at N={args.all_pairs_n}: {same:.1f}x")
    if any(r["status"] != "ok" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
