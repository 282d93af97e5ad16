"""Parameter-sweep benchmark: 64 COBA-1000 networks with different excitatory weights,
run as one vmapped call over a batch of models vs a Python loop over the models.

    python benchmarks/sweep.py [--quick] [--batch N] [--duration MS] [--repeats N]

The batch is made the way DESIGN.md promises (no rebuild, no recompilation): the built
model's scalar excitatory weight (a leaf of its `SparseWeights`) is set with
`eqx.tree_at` inside a function that is `eqx.filter_vmap`-ed over the 64 weights; only
that leaf gets a batch axis, so connectivity is shared. The loop runs the same compiled
single-network scan once per model. Before any time is printed, the vmapped rates must
equal the loop's (both run the same arithmetic) — a sweep that is fast but wrong fails.

COBA-1000 uses p = 0.08 so that every neuron receives the input of the 4000-neuron
reference network (64 E + 16 I synapses on average); at p = 0.02 a 1000-neuron
network falls silent within a few hundred ms. Weights sweep 4-8 nS around the
reference 6 nS. The anchor is a Brian2 runtime loop over the same weights (one network
restored, its weight set and re-run per point: Brian2's idiom, no recompilation).
"""

from __future__ import annotations

import sys

from _common import PeakMemory, finish_args, parser, report, start_anchors, timed_build

N = 1000
P_CONN = 0.02 * 4000 / N


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=200.0, quick_duration=50.0)
    p.add_argument("--batch", type=int, default=64, help="number of networks")
    p.add_argument("--w-min", type=float, default=4.0, help="smallest excitatory weight [nS]")
    p.add_argument("--w-max", type=float, default=8.0, help="largest excitatory weight [nS]")
    args = finish_args(p.parse_args(argv))

    import time

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import neurojax as nj
    from neurojax.simulate import compile_scan, prepare_run, run_scan

    model, build_s = timed_build(nj.gallery.get("coba", n=N, p=P_CONN), args.seed)
    exc = [i for i, proj in enumerate(model.projections) if model.names[proj.pre] == "E"]

    def where(m):
        return tuple(m.projections[i].weights.weights for i in exc)

    def set_weight(w):
        return eqx.tree_at(where, model, replace=(w,) * len(exc))

    # vmap axes of a batched model: 0 on the excitatory weights, None (shared) elsewhere.
    axes = jax.tree.map(lambda _: None, model)
    axes = eqx.tree_at(where, axes, replace=(0,) * len(exc), is_leaf=lambda x: x is None)
    ws = jnp.linspace(args.w_min, args.w_max, args.batch, dtype=jnp.result_type(float))
    t0 = time.perf_counter()
    batch = eqx.filter_vmap(set_weight, out_axes=axes)(ws)
    jax.block_until_ready(batch)
    batch_s = time.perf_counter() - t0

    dt = args.dt
    state = model.init(jax.random.key(args.seed + 1), dt)
    record = nj.Record(spikes=(), rates=list(model.names), every=args.duration)
    prepared, state = prepare_run(model, args.duration, dt, state, record)

    def rates_one(m):
        _, rec = run_scan(m, state, prepared)
        return jnp.stack([r[0] for r in rec[1]])  # (populations,)

    t0 = time.perf_counter()
    vmapped = eqx.filter_jit(eqx.filter_vmap(rates_one, in_axes=(axes,))).lower(batch).compile()
    v_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = compile_scan(model, state, prepared)
    l_compile = time.perf_counter() - t0

    def run_vmap():
        t0 = time.perf_counter()
        out = vmapped(batch)
        jax.block_until_ready(out)
        return time.perf_counter() - t0, np.asarray(out)

    def run_loop():
        t0 = time.perf_counter()
        outs = []
        for w in ws:
            _, rec = single(set_weight(w), state)
            outs.append(jnp.stack([r[0] for r in rec[1]]))
        out = jnp.stack(outs)
        jax.block_until_ready(out)
        return time.perf_counter() - t0, np.asarray(out)

    # The anchor: Brian2's runtime target looping over the same weights (one network,
    # restored and re-run per weight). Other anchors have no comparable sweep here.
    args.anchor_list = [a for a in args.anchor_list if a == "brian2-runtime"]
    anchors = start_anchors(args, "sweep", {
        "n": N, "p": P_CONN, "w_e": float(ws[0]), "w_i": 67.0, "dt": dt,
        "duration": args.duration, "seed": args.seed, "weights": np.asarray(ws).tolist()})

    v_times, l_times, v_peak, l_peak = [], [], 0.0, 0.0
    for _ in range(args.repeats):  # alternate, so machine load hits all alike
        with PeakMemory() as mem:
            t, v_rates = run_vmap()
        v_times.append(t)
        v_peak = max(v_peak, mem.mb or 0.0)
        with PeakMemory() as mem:
            t, l_rates = run_loop()
        l_times.append(t)
        l_peak = max(l_peak, mem.mb or 0.0)
        for a in anchors:
            a.run()
    for a in anchors:
        a.close()

    # Same arithmetic batched or not; allow float32 reassociation in the batched scatter
    # (1e-3 Hz on rates of ~10 Hz) but no real difference.
    diff = float(np.max(np.abs(v_rates - l_rates)))
    if not diff <= 1e-3 * max(1.0, float(np.max(np.abs(l_rates)))):
        raise SystemExit(f"sweep: vmapped rates differ from the loop's by {diff:.3g} Hz: not timing a wrong sweep.")
    if not np.all(np.isfinite(v_rates)):
        raise SystemExit("sweep: non-finite rates.")

    def summary(r):
        return {name: float(np.mean(r[:, i])) for i, name in enumerate(model.names)}

    rows = [
        {"name": f"neurojax vmap ({args.batch} nets)", "status": "ok", "build_s": build_s + batch_s,
         "compile_s": v_compile, "run_s": min(v_times), "run_s_all": v_times, "peak_mb": v_peak or None,
         "rates_hz": summary(v_rates)},
        {"name": f"neurojax loop ({args.batch} nets)", "status": "ok", "build_s": build_s,
         "compile_s": l_compile, "run_s": min(l_times), "run_s_all": l_times, "peak_mb": l_peak or None,
         "rates_hz": summary(l_rates)},
    ] + [a.row(f"Brian2 runtime loop ({args.batch} nets)") for a in anchors]
    title = (f"Sweep: {args.batch} COBA-{N} networks (p = {P_CONN:g}), w_e = {args.w_min:g}-{args.w_max:g} nS, "
             f"{args.duration:g} ms at dt = {dt:g} ms; rates are means over the batch")
    extra = {"weights_ns": np.asarray(ws).tolist(),
             "rates_vs_weight_hz": {name: v_rates[:, i].tolist() for i, name in enumerate(model.names)},
             "max_rate_difference_hz": diff}
    payload = report("sweep", args, rows, title, config={
        "n": N, "p": P_CONN, "batch": args.batch, "dt": dt, "duration": args.duration,
        "seed": args.seed}, extra=extra, baseline=f"neurojax vmap ({args.batch} nets)")
    e = v_rates[:, 0]
    print(f"E rate vs w_e: {e[0]:.2f} Hz at {float(ws[0]):g} nS ... {e[-1]:.2f} Hz at {float(ws[-1]):g} nS; "
          f"vmapped = loop to {diff:.2g} Hz")
    return payload


if __name__ == "__main__":
    main(sys.argv[1:])
