"""Where `nj.train.fit`'s overhead goes: the loss of fit_overhead.py alone (N = 200 Dale
rate RNN, batch 64, `jax.value_and_grad`), neurojax against the same model written by
hand in plain JAX, with single causes switched off to measure what each costs.

    python benchmarks/fit_ablation.py [--quick] [--rounds R]

Rows (each compiled ahead of time, then called in turn, one call per row per
iteration, `--rounds` x 10 iterations, so that load on a shared machine falls on all of
them alike):

- `hand-written`: the rate RNN written with `jax.lax.scan` (the baseline);
- `neurojax`: the loss through `nj.simulate` as it is;
- `- gradient checks`: under `nj.allow_nonfinite_gradients()` (no per-step probe of the
  state cotangents, no check of the parameters' gradients): what the checks cost, and
  the loss and gradient that `nj.train.fit`'s steps compute (it tests the gradients
  after each step and reruns only a non-finite step with the checks);
- `+ Waveform looked up in the step`: the time-varying input looked up by time inside
  every step, as before it was sampled before the scan: what pre-sampling saves;
- `Waveform interpolated (off grid)`: the sampled input computed by the general
  interpolation (gathers; backward: a product with the interpolation weights) although
  its samples lie on the step grid: what taking them as a slice saves;
- `Waveform = its samples (bound)`: the sampled input replaced by the waveform's values
  as they are (they are on the step grid here): a bound on what sampling still costs.

`ratio` is the median over iterations of (row time / hand-written time of the same
iteration); `cpu` the ratio of median process CPU times (all threads), which a busy
machine disturbs less than wall time. The first losses must agree (checked first).
"""

from __future__ import annotations

import contextlib
import sys
import time

from _common import parser, report
from fit_overhead import dale_rnn_problem


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=0.0, quick_duration=0.0)
    p.add_argument("--n", type=int, default=200, help="rate units (default 200; 50 with --quick)")
    p.add_argument("--batch", type=int, default=64, help="trials (default 64; 16 with --quick)")
    p.add_argument("--rounds", type=int, default=8, help="x 10 iterations (default 8)")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.batch, args.rounds = 50, 16, 1

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import neurojax as nj
    from neurojax import network as network_module
    from neurojax.inputs import deterministic
    from neurojax.inputs.deterministic import Waveform

    N, B = args.n, args.batch
    pb = dale_rnn_problem(N, args.seed)  # the model and loss of fit_overhead.py
    n_steps = pb.n_steps
    batch = jax.tree.map(lambda x: x[:B], pb.train)
    params, static = eqx.partition(pb.model, pb.spec)
    hand_params = pb.hand_params

    def nj_loss(m, trial):
        return pb.loss(m, trial, None)

    def hand_loss(q, trial):
        return pb.hand_loss(q, trial, None)

    def patched(obj, name, value):
        @contextlib.contextmanager
        def cm():
            old = getattr(obj, name)
            setattr(obj, name, value)
            try:
                yield
            finally:
                setattr(obj, name, old)
        return cm

    def compiled(loss, q, combine, ctx=contextlib.nullcontext):
        def f(q, batch):
            return jax.value_and_grad(
                lambda q: jnp.mean(jax.vmap(loss, (None, 0))(combine(q), batch)))(q)
        with ctx():
            c = jax.jit(f).lower(q, batch).compile()
        jax.clear_caches()  # the next variant traces simulate afresh
        return lambda: c(q, batch)

    nj_combine = lambda q: eqx.combine(q, static)  # noqa: E731
    variants = {
        "hand-written": compiled(hand_loss, hand_params, lambda q: q),
        "neurojax": compiled(nj_loss, params, nj_combine),
        "- gradient checks": compiled(nj_loss, params, nj_combine, nj.allow_nonfinite_gradients),
        "+ Waveform looked up in step": compiled(
            nj_loss, params, nj_combine, patched(network_module, "_sampler", lambda inp: None)),
        "Waveform interpolated (off grid)": compiled(
            nj_loss, params, nj_combine,
            patched(deterministic, "_on_grid", lambda t, times, lo: (jnp.asarray(False), lo[0]))),
        "Waveform = samples (bound)": compiled(
            nj_loss, params, nj_combine, patched(Waveform, "sample", lambda self, t: self.values)),
    }
    first = {k: float(f()[0]) for k, f in variants.items()}
    vals = np.array(list(first.values()))
    if not np.allclose(vals, vals[0], rtol=1e-5):
        raise SystemExit(f"fit_ablation: the variants' losses differ {first}: not timing them.")

    wall = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    for _ in range(args.rounds * 10):
        for k, f in variants.items():
            c0, t0 = time.process_time(), time.perf_counter()
            jax.block_until_ready(f())
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    base, base_cpu = np.array(wall["hand-written"]), np.median(cpu["hand-written"])
    rows = []
    for k in variants:
        ratio = float(np.median(np.array(wall[k]) / base))
        rows.append({"name": k, "status": "ok", "run_s": float(np.median(wall[k])),
                     "ratio": ratio, "cpu_ratio": float(np.median(cpu[k]) / base_cpu),
                     "run_s_all": wall[k], "rates_hz": None,
                     "note": f"{1e3 * np.median(wall[k]):.2f} ms, cpu ratio "
                             f"{np.median(cpu[k]) / base_cpu:.2f}, loss {first[k]:.5f}"})
    title = (f"fit ablation: loss + gradient of the Dale rate RNN (N = {N}, batch {B}, "
             f"{n_steps} steps); {args.rounds * 10} alternating iterations")
    report("fit_ablation", args, rows, title, {"n": N, "batch": B, "trial_steps": int(n_steps),
                                               "iterations": args.rounds * 10},
           baseline=None,
           ratio_note="median over iterations of time / hand-written time of the same "
                      "iteration")


if __name__ == "__main__":
    sys.exit(main())
