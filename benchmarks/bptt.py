"""BPTT benchmark: time and peak memory of forward + backward (reverse-mode gradient)
through 1 s of a 4000-neuron LIF network (COBA-4k), with and without
``checkpoint=True`` in ``nj.simulate``.

    python benchmarks/bptt.py [--quick] [--duration MS] [--every MS] [--checkpoint MS]
                              [--levels L [L ...]] [--repeats N]

The loss is the mean E and I population rate (surrogate gradients through every
spike); the gradient is taken with respect to every floating-point leaf of the built
model (weights, neuron parameters). This network is chaotic, and the surrogate gradient
of its rate grows by orders of magnitude every few tens of ms (|grad| ~ 1e6 after 20 ms)
until it overflows float32: the benchmark measures the cost of BPTT, and checks that the
forward loss is COBA's reference rate and that both variants give the same gradient
entry by entry, but a finite gradient needs a non-chaotic network or a gentler
surrogate. The rates are recorded every step by default (``Record.every = dt``, the
default recording); ``checkpoint=True`` rematerialises segments of ~sqrt(steps) steps
(100 steps = 10 ms for 1 s at dt = 0.1 ms) whatever the recording, so memory should
follow segments + one segment of steps instead of all steps. ``--checkpoint MS`` sets the
segment length instead; ``--levels 1 2 3 4`` compares nested checkpointing
(``nj.Checkpoint(levels=L)``, segments of ~steps^(i/(L+1)) steps) at each L instead.

Memory is reported two ways: XLA's own buffer plan of the compiled gradient
(``memory_analysis()``: temporaries + arguments + outputs; exact and noise-free), and
the measured peak — the accelerator's ``peak_bytes_in_use`` on GPU/TPU, else the
process's peak RSS during the run (Linux VmHWM, reset first; jax reports no device
memory stats on CPU and tracemalloc cannot see XLA's buffers).
"""

from __future__ import annotations

import sys

from _common import PeakMemory, check_rates, finish_args, memory_method, parser, report, timed_build

# The loss is COBA-4k's mean rate over 1 s: REFERENCES.md section 6 (see coba.py).
RATE_RANGE = (15.0, 22.0)


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=1000.0, quick_duration=100.0)
    p.set_defaults(repeats=1)  # one fwd+bwd of 1 s is ~30 s on a loaded 2-core CPU
    p.add_argument("--n", type=int, default=4000, help="number of neurons")
    p.add_argument("--every", type=float, default=None,
                   help="recording block of the rates [ms] (default dt: the default Record)")
    p.add_argument("--checkpoint", type=float, default=None,
                   help="checkpoint segment [ms] (default: checkpoint=True, ~sqrt(steps) steps)")
    p.add_argument("--levels", type=int, nargs="+", default=None,
                   help="nested checkpointing: one row per nj.Checkpoint(levels=L)")
    args = finish_args(p.parse_args(argv))

    import time

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import neurojax as nj

    model, build_s = timed_build(nj.gallery.get("coba", n=args.n), args.seed)
    state = model.init(jax.random.key(args.seed + 1), args.dt)
    # The default recording (every spike, every step) plus the rates the loss needs.
    record = nj.Record(rates=list(model.names), every=args.every)

    def make(checkpoint):
        def loss(m):
            res = nj.simulate(m, args.duration, args.dt, state=state, record=record,
                              checkpoint=checkpoint)
            return sum(jnp.mean(r) for r in res.rates.values()) / len(res.rates)

        if checkpoint is None:  # the forward pass alone: the memory yardstick
            return eqx.filter_jit(lambda m: (loss(m), None))
        return eqx.filter_jit(eqx.filter_value_and_grad(loss))

    segment = True if args.checkpoint is None else args.checkpoint
    checkpoints = ([nj.Checkpoint(levels=L) for L in args.levels] if args.levels
                   else [segment])
    variants = (None, False, *checkpoints)
    rows, grads, plans = [], {}, {}
    runs = {}
    for checkpoint in variants:
        fn = make(checkpoint)
        t0 = time.perf_counter()
        compiled = fn.lower(model).compile()
        compile_s = time.perf_counter() - t0
        runs[checkpoint] = (compiled, compile_s)
        try:
            # equinox's Compiled wraps jax's (`.compiled`).
            ma = getattr(compiled, "compiled", compiled).memory_analysis()
            plans[checkpoint] = (ma.temp_size_in_bytes + ma.argument_size_in_bytes
                                 + ma.output_size_in_bytes) / 2**20
        except Exception:  # not every backend implements it
            plans[checkpoint] = None

    times = {v: [] for v in variants}
    peaks = {v: 0.0 for v in variants}
    deltas = {v: 0.0 for v in variants}
    for _ in range(args.repeats):  # alternate, so machine load hits all alike
        for checkpoint in variants:
            compiled = runs[checkpoint][0]
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                value, grad = compiled(model)
                jax.block_until_ready((value, grad))
                times[checkpoint].append(time.perf_counter() - t0)
            peaks[checkpoint] = max(peaks[checkpoint], mem.mb or 0.0)
            deltas[checkpoint] = max(deltas[checkpoint], mem.delta_mb or 0.0)
            grads[checkpoint] = (float(value), grad)

    leaves = {k: [np.asarray(x) for x in jax.tree.leaves(eqx.filter(g[1], eqx.is_inexact_array))]
              for k, g in grads.items() if k is not None}
    if not all(grads[False][0] == grads[c][0] == grads[None][0] for c in checkpoints):
        raise SystemExit("bptt: the checkpointed forward pass gives a different loss: not timing a wrong run.")
    if args.n == 4000 and args.duration >= 1000.0:
        check_rates("BPTT COBA-4k", {"E and I": grads[False][0]}, *RATE_RANGE,
                    "the loss is the mean rate: REFERENCES.md section 6")
    # Rematerialisation recomputes the same forward ops, so both gradients must agree,
    # entry by entry (non-finite entries included; float32 reassociation allowed).
    same = all(np.allclose(a, b, rtol=1e-4, atol=0.0, equal_nan=True)
               for c in checkpoints for a, b in zip(leaves[False], leaves[c]))
    if not same:
        raise SystemExit("bptt: the checkpointed gradient differs: not timing a wrong run.")
    finite = [np.isfinite(a) for a in leaves[False]]
    finite_fraction = float(sum(f.sum() for f in finite) / sum(f.size for f in finite))
    largest = max((float(np.max(np.abs(a[f]))) for a, f in zip(leaves[False], finite) if f.any()),
                  default=float("nan"))

    rate = grads[False][0]
    names = {None: "forward only", False: "fwd+bwd",
             **{c: f"fwd+bwd, checkpoint={c}" for c in checkpoints}}
    for checkpoint in variants:
        name = names[checkpoint]
        rows.append({"name": name, "status": "ok", "build_s": build_s,
                     "compile_s": runs[checkpoint][1], "run_s": min(times[checkpoint]),
                     "run_s_all": times[checkpoint], "peak_mb": peaks[checkpoint] or None,
                     "peak_increase_mb": deltas[checkpoint],
                     "xla_buffers_mb": plans[checkpoint], "rates_hz": {"mean": rate}})
    every = args.dt if args.every is None else args.every
    title = (f"BPTT through COBA-{args.n}: {args.duration:g} ms at dt = {args.dt:g} ms, "
             f"rates recorded every {every:g} ms, checkpoint={', '.join(map(str, checkpoints))}; "
             "gradient of the mean "
             "rate w.r.t. all float leaves")
    payload = report("bptt", args, rows, title, config={
        "n": args.n, "dt": args.dt, "duration": args.duration, "every": every,
        "checkpoint": segment, "levels": args.levels, "seed": args.seed}, extra={
                                   "peak_memory_method": memory_method(),
                                   "gradient_finite_fraction": finite_fraction,
                                   "largest_finite_gradient": largest},
        baseline="fwd+bwd")
    for r in rows:
        plan = r["xla_buffers_mb"]
        plan = "n/a" if plan is None else f"{plan:.0f} MB"
        print(f"{r['name']:<40} XLA buffer plan {plan}; measured peak - memory at start: "
              f"{r['peak_increase_mb']:.0f} MB")
    print(f"peak [MB]: {memory_method()}")
    for checkpoint in (False, *checkpoints):
        print(f"{names[checkpoint]}: {min(times[checkpoint]):.1f} s; peak {peaks[checkpoint] / peaks[None]:.2f}x the forward "
              f"pass's; XLA buffer plan {plans[checkpoint] / plans[None]:.2f}x"
              if peaks[None] and plans[None] and plans[checkpoint] else "")
    print(f"checkpointed gradient = plain gradient; finite entries {finite_fraction:.0%}, "
          f"largest |finite entry| {largest:.3g}")
    if finite_fraction < 1.0:
        print("(the surrogate gradient of this chaotic network's rate grows without bound over "
              "time and overflows float32; time and memory are measured all the same)")
    return payload


if __name__ == "__main__":
    main(sys.argv[1:])
