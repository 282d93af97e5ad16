"""BPTT benchmark: time and peak memory of forward + backward (reverse-mode gradient)
through 1 s of a 4000-neuron LIF network (COBA-4k), with and without
``checkpoint=True`` in ``nj.simulate``.

    python benchmarks/bptt.py [--quick] [--duration MS] [--every MS] [--checkpoint MS]
                              [--levels L [L ...]] [--repeats N] [--truncate W]
                              [--stored-steps] [--pure-backward] [--default-scheduler]

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

``--truncate W`` gives every neuron the compact-support surrogate
``Truncated(FastSigmoid(slope=5, amplitude=A), width=W)`` [mV] (issue 16; A from
``--amplitude``, default 0.3): the sparse propagation's backward
pass then visits only the rows of neurons within W mV of threshold or spiking (the
event-driven VJP) instead of every synapse. It also runs the dense-equivalent VJP of the
same surrogate (its support hidden) once, checks that both gradients agree to rtol 1e-5,
and reports the fraction of neurons in the gradient support per step. Times are the
median of the repeats (run alternately, so load hits all variants alike); the ratio
fwd+bwd / forward is taken within this one process.

``--pure-backward`` adds two rows (with ``--truncate``): fwd+bwd without and with
``checkpoint=True`` with the sparse backward pass in pure JAX (the compacted loop that
ran before the native backward kernel ``NeurojaxSupportVjp``; that kernel disabled
while these variants are traced), to measure the kernel in the same process. Their
gradient is compared with the native one like the dense-equivalent VJP's.

The gradients are compiled with ``neurojax.simulate.GRADIENT_COMPILER_OPTIONS`` (XLA:CPU's
memory-optimised schedule, as ``nj.train.fit`` compiles its steps), the forward pass
with XLA's defaults (as ``nj.simulate`` runs it). ``--default-scheduler`` adds the two
gradients compiled with XLA's defaults (the benchmark before 2026-12-07) and the
forward pass compiled with the gradient's options, checked to give the same values bit
for bit; see benchmarks/README.md (issue 16) for why both yardsticks are reported.

``--stored-steps`` adds a row for the backward pass as it was before issue 16's
per-step rematerialisation: every step's intermediates stored (``simulate``'s private
``_rematerialised`` replaced by the plain step while that variant is traced), without
segments, to measure that change in the same process.

Memory is reported two ways: XLA's own buffer plan of the compiled gradient
(``memory_analysis()``: temporaries + arguments + outputs; exact and noise-free), and
the measured peak — the accelerator's ``peak_bytes_in_use`` on GPU/TPU, else the
process's peak RSS during the run (Linux VmHWM, reset first; jax reports no device
memory stats on CPU and tracemalloc cannot see XLA's buffers).
"""

from __future__ import annotations

import contextlib
import functools
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
    p.add_argument("--truncate", type=float, default=None,
                   help="compact-support surrogate: Truncated(FastSigmoid(slope=5, "
                        "amplitude=A), width) [mV]")
    p.add_argument("--amplitude", type=float, default=0.3,
                   help="surrogate amplitude A with --truncate (Bellec et al. 2020's 0.3)")
    p.add_argument("--stored-steps", action="store_true",
                   help="also time fwd+bwd with every step's intermediates stored (no per-step "
                        "rematerialisation: the backward pass before issue 16)")
    p.add_argument("--default-scheduler", action="store_true",
                   help="also time fwd+bwd (plain and checkpoint=True) compiled with XLA's default "
                        "schedule instead of neurojax.simulate.GRADIENT_COMPILER_OPTIONS, and the "
                        "forward pass compiled with those options")
    p.add_argument("--pure-backward", action="store_true",
                   help="also time fwd+bwd (plain and checkpoint=True) with the sparse backward "
                        "pass in pure JAX (native backward kernel disabled; with --truncate)")
    args = finish_args(p.parse_args(argv))

    import time

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import neurojax as nj
    from neurojax.simulate import GRADIENT_COMPILER_OPTIONS

    model, build_s = timed_build(nj.gallery.get("coba", n=args.n), args.seed)
    state = model.init(jax.random.key(args.seed + 1), args.dt)
    support, dense_model, dense_rel = None, None, None
    if args.truncate is not None:
        spike = nj.surrogate.FastSigmoid(slope=5.0, amplitude=args.amplitude)
        model = _with_surrogate(model, lambda s: nj.surrogate.Truncated(spike, width=args.truncate))
        dense_model = _with_surrogate(model, _FullSupport)
        support = _support_fraction(model, state, args)
    # The default recording (every spike, every step) plus the rates the loss needs.
    record = nj.Record(rates=list(model.names), every=args.every)

    def make(checkpoint, options):
        def loss(m):
            res = nj.simulate(m, args.duration, args.dt, state=state, record=record,
                              checkpoint=checkpoint)
            return sum(jnp.mean(r) for r in res.rates.values()) / len(res.rates)

        if checkpoint is None:  # the forward pass alone: the memory yardstick
            return eqx.filter_jit(lambda m: (loss(m), None), compiler_options=options)
        return eqx.filter_jit(eqx.filter_value_and_grad(loss), compiler_options=options)

    segment = True if args.checkpoint is None else args.checkpoint
    checkpoints = ([nj.Checkpoint(levels=L) for L in args.levels] if args.levels
                   else [segment])
    # With --truncate, also the dense-equivalent VJP of the same surrogate ("dense").
    pure = ("pure", "pure-checkpoint") if args.pure_backward else ()
    # Gradients are compiled with GRADIENT_COMPILER_OPTIONS (as nj.train.fit does);
    # the plain forward pass with XLA's defaults (as nj.simulate runs it).
    # --default-scheduler: the gradients with XLA's defaults, and the forward pass with
    # the gradient's options, beside them.
    schedulers = (("default", "default-checkpoint", "forward-options")
                  if args.default_scheduler else ())
    variants = (None, False, *checkpoints, *(("stored",) if args.stored_steps else ()),
                *(("dense",) if dense_model is not None else ()), *pure, *schedulers)
    models = {v: dense_model if v == "dense" else model for v in variants}
    rows, grads, plans = [], {}, {}
    runs = {}
    for checkpoint in variants:
        options = ({} if checkpoint in (None, "default", "default-checkpoint") else
                   GRADIENT_COMPILER_OPTIONS)
        fn = make(False if checkpoint in ("dense", "stored", "pure", "default") else
                  segment if checkpoint in ("pure-checkpoint", "default-checkpoint") else
                  None if checkpoint == "forward-options" else checkpoint, options)
        t0 = time.perf_counter()
        # The gradient of this chaotic network may overflow (see above): time it anyway.
        with (nj.allow_nonfinite_gradients(), _stored_steps(checkpoint == "stored"),
              _pure_backward(checkpoint in pure)):
            compiled = fn.lower(models[checkpoint]).compile()
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
                value, grad = compiled(models[checkpoint])
                jax.block_until_ready((value, grad))
                times[checkpoint].append(time.perf_counter() - t0)
            peaks[checkpoint] = max(peaks[checkpoint], mem.mb or 0.0)
            deltas[checkpoint] = max(deltas[checkpoint], mem.delta_mb or 0.0)
            grads[checkpoint] = (float(value), grad)

    leaves = {k: [np.asarray(x) for x in jax.tree.leaves(eqx.filter(g[1], eqx.is_inexact_array))]
              for k, g in grads.items() if k is not None}
    if dense_model is not None:
        # The event-driven VJP against the dense-equivalent one (same surrogate
        # derivative, support hidden): same gradient up to float32 reassociation.
        # Reported: the largest relative difference over the finite entries (NaN and
        # inf must sit at the same entries). The gradient of this chaotic network grows
        # ~1e4x per 50 ms with cancellations in some sums (g_l), which amplifies float32
        # rounding: 5e-6 at 50 ms, 3e-5 at 200 ms (float64: see the tests, 1e-9).
        dense_rel = _max_rel(leaves[False], leaves["dense"], "the dense VJP")
        if grads["dense"][0] != grads[False][0] or dense_rel > 1e-3:
            raise SystemExit(f"bptt: the event-driven gradient differs from the dense VJP's (rel {dense_rel:.2g}).")
    pure_rel = None
    if pure:
        # The native backward kernel against the pure-JAX loop: the same products,
        # summed in another order (float32 rounding, amplified like dense_rel's).
        pure_rel = _max_rel(leaves[False], leaves["pure"], "the pure-JAX backward")
        if grads["pure"][0] != grads[False][0] or pure_rel > 1e-3:
            raise SystemExit(f"bptt: the native backward gradient differs from pure JAX's (rel {pure_rel:.2g}).")
    if schedulers:
        # The schedule orders the same operations: the same values, bit for bit.
        pairs = ((False, "default"), (checkpoints[0], "default-checkpoint"))
        if grads["forward-options"][0] != grads[None][0] or not all(
                grads[a][0] == grads[b][0] and all(np.array_equal(x, y, equal_nan=True)
                                                   for x, y in zip(leaves[a], leaves[b]))
                for a, b in pairs):
            raise SystemExit("bptt: XLA's default schedule gives other values: not timing a wrong run.")
    same_as_plain = [*checkpoints, *(("stored",) if args.stored_steps else ())]
    if not all(grads[False][0] == grads[c][0] == grads[None][0] for c in same_as_plain):
        raise SystemExit("bptt: the checkpointed forward pass gives a different loss: not timing a wrong run.")
    if args.n == 4000 and args.duration >= 1000.0:
        check_rates("BPTT COBA-4k", {"E and I": grads[False][0]}, *RATE_RANGE,
                    "the loss is the mean rate: REFERENCES.md section 6")
    # Rematerialisation recomputes the same forward ops, so both gradients must agree,
    # entry by entry (non-finite entries included; float32 reassociation allowed).
    same = all(np.allclose(a, b, rtol=1e-4, atol=0.0, equal_nan=True)
               for c in same_as_plain for a, b in zip(leaves[False], leaves[c]))
    if not same:
        raise SystemExit("bptt: the checkpointed gradient differs: not timing a wrong run.")
    finite = [np.isfinite(a) for a in leaves[False]]
    finite_fraction = float(sum(f.sum() for f in finite) / sum(f.size for f in finite))
    largest = max((float(np.max(np.abs(a[f]))) for a, f in zip(leaves[False], finite) if f.any()),
                  default=float("nan"))

    rate = grads[False][0]
    names = {None: "forward only", False: "fwd+bwd",
             **{c: f"fwd+bwd, checkpoint={c}" for c in checkpoints},
             "stored": "fwd+bwd, every step's intermediates stored",
             "dense": "fwd+bwd, dense-equivalent VJP",
             "pure": "fwd+bwd, pure-JAX backward loop",
             "pure-checkpoint": f"fwd+bwd, checkpoint={segment}, pure-JAX backward loop",
             "default": "fwd+bwd, XLA's default schedule",
             "default-checkpoint": f"fwd+bwd, checkpoint={segment}, XLA's default schedule",
             "forward-options": "forward only, GRADIENT_COMPILER_OPTIONS"}
    for checkpoint in variants:
        name = names[checkpoint]
        rows.append({"name": name, "status": "ok", "build_s": build_s,
                     "compile_s": runs[checkpoint][1], "run_s": float(np.median(times[checkpoint])),
                     "run_s_all": times[checkpoint], "peak_mb": peaks[checkpoint] or None,
                     "peak_increase_mb": deltas[checkpoint],
                     "xla_buffers_mb": plans[checkpoint], "rates_hz": {"mean": rate}})
    every = args.dt if args.every is None else args.every
    title = (f"BPTT through COBA-{args.n}: {args.duration:g} ms at dt = {args.dt:g} ms, "
             f"rates recorded every {every:g} ms, checkpoint={', '.join(map(str, checkpoints))}; "
             "gradient of the mean "
             "rate w.r.t. all float leaves"
             + ("" if args.truncate is None else
                f"; surrogate truncated at {args.truncate:g} mV (event-driven VJP)"))
    payload = report("bptt", args, rows, title, config={
        "n": args.n, "dt": args.dt, "duration": args.duration, "every": every,
        "checkpoint": segment, "levels": args.levels, "seed": args.seed,
        "truncate": args.truncate}, extra={
                                   "support_fraction": support,
                                   "event_vs_dense_max_rel_diff": dense_rel,
                                   "native_vs_pure_backward_max_rel_diff": pure_rel,
                                   "peak_memory_method": memory_method(),
                                   "gradient_finite_fraction": finite_fraction,
                                   "largest_finite_gradient": largest},
        baseline="forward only",
        ratio_note="run time / forward-only run time (median of the repeats each)")
    for r in rows:
        plan = r["xla_buffers_mb"]
        plan = "n/a" if plan is None else f"{plan:.0f} MB"
        print(f"{r['name']:<40} XLA buffer plan {plan}; measured peak - memory at start: "
              f"{r['peak_increase_mb']:.0f} MB")
    print(f"peak [MB]: {memory_method()}")
    if support is not None:
        print(f"gradient support (within {args.truncate:g} mV of threshold or spiking): "
              f"{support['mean']:.1%} of neurons per step on average, {support['max']:.1%} at most; "
              f"event-driven gradient vs dense-equivalent VJP's: largest relative difference "
              f"{dense_rel:.2g} (finite entries)")
    if pure_rel is not None:
        print(f"native backward kernel vs pure-JAX loop: largest relative difference {pure_rel:.2g} "
              "(finite entries)")
    for checkpoint in variants[1:]:
        print(f"{names[checkpoint]}: {np.median(times[checkpoint]):.2f} s = "
              f"{np.median(times[checkpoint]) / np.median(times[None]):.1f}x the forward pass; peak {peaks[checkpoint] / peaks[None]:.2f}x the forward "
              f"pass's; XLA buffer plan {plans[checkpoint] / plans[None]:.2f}x"
              if peaks[None] and plans[None] and plans[checkpoint] else "")
    print(f"checkpointed gradient = plain gradient; finite entries {finite_fraction:.0%}, "
          f"largest |finite entry| {largest:.3g}")
    if finite_fraction < 1.0:
        print("(the surrogate gradient of this chaotic network's rate grows without bound over "
              "time and overflows float32; time and memory are measured all the same)")
    return payload


@contextlib.contextmanager
def _stored_steps(active):
    """While tracing, `simulate` differentiates the plain step (its intermediates
    stored per step) instead of the rematerialised one, if `active`."""
    import jax

    simulate = sys.modules["neurojax.simulate"]
    original = simulate._rematerialised
    if active:
        # `simulate`'s jitted scan would otherwise reuse its trace of the other variants.
        jax.clear_caches()
        simulate._rematerialised = lambda step, dt: (lambda state, t: step(state, t, dt))
    try:
        yield
    finally:
        simulate._rematerialised = original
        if active:
            jax.clear_caches()


def _max_rel(got, want, what):
    """Largest relative difference of two gradients over the entries finite in both;
    NaN and inf must sit at the same entries."""
    import numpy as np

    rel = 0.0
    for a, b in zip(got, want):
        fin = np.isfinite(b)
        if not np.array_equal(fin, np.isfinite(a)) or not np.array_equal(np.isnan(a), np.isnan(b)):
            raise SystemExit(f"bptt: the event-driven gradient is non-finite elsewhere than {what}'s.")
        if fin.any():
            rel = max(rel, float(np.max(np.abs(a[fin] - b[fin]) / np.maximum(np.abs(b[fin]), 1e-30))))
    return rel


@contextlib.contextmanager
def _pure_backward(active):
    """While tracing, the sparse backward pass runs the pure-JAX loop instead of the
    native kernel (as a build without `NeurojaxSupportVjp` does), if `active`."""
    import jax

    native = sys.modules["neurojax._native"]
    original = native.has
    if active:
        jax.clear_caches()  # `simulate`'s jitted scan would reuse its other trace
        native.has = lambda target: target != native.SUPPORT_VJP and original(target)
    try:
        yield
    finally:
        native.has = original
        if active:
            jax.clear_caches()


def _with_surrogate(model, make):
    """`model` with each population's spike surrogate `s` replaced by `make(s)`."""
    import dataclasses

    import equinox as eqx

    for i, pop in enumerate(model.populations):
        neuron = dataclasses.replace(pop.neuron, surrogate=make(pop.neuron.surrogate))
        model = eqx.tree_at(lambda m, i=i: m.populations[i].neuron, model, neuron)
    return model


@functools.cache
def _full_support_class():
    import neurojax as nj

    class FullSupport(nj.surrogate.AbstractSurrogate):
        """`inner`'s derivative with its support hidden: the dense-equivalent VJP."""

        inner: nj.surrogate.AbstractSurrogate

        def derivative(self, x):
            return self.inner.derivative(x)

        @property
        def support(self):
            return None

    return FullSupport


def _FullSupport(inner):
    return _full_support_class()(inner)


def _support_fraction(model, state, args):
    """Mean and largest fraction of neurons in the gradient support per step."""
    import jax
    import jax.numpy as jnp

    n_steps = int(round(args.duration / args.dt))

    def body(s, t):
        s, out = model.step(s, t, args.dt)
        masks = [p.neuron.gradient_support(n, o)
                 for p, n, o in zip(model.populations, s.neurons, out)]
        return s, jnp.mean(jnp.concatenate(masks).astype(jnp.float32))

    frac = jax.jit(lambda: jax.lax.scan(body, state, args.dt * jnp.arange(n_steps))[1])()
    return {"mean": float(jnp.mean(frac)), "max": float(jnp.max(frac))}


if __name__ == "__main__":
    main(sys.argv[1:])
