"""Overhead of `nj.train.fit`: time per optimisation step of the Dale rate RNN of
tutorials/dale_decision_making.py trained with `fit`, beside the same model and loss
written by hand in plain JAX (`jax.lax.scan`) and optax.

    python benchmarks/fit_overhead.py [--quick] [--n N] [--batch B] [--steps S] [--rounds R]

The model: N rate units (80 % excitatory, 20 % inhibitory; tau = 100 ms, ReLU, dt = 20 ms)
with Dale-constrained recurrent weights W = sign * softplus(theta) (`nj.train.Dale`,
no self-connections), two trainable input weights per unit, a constant drive of 0.1 and a
linear readout of the excitatory rates; the loss is the masked squared error of the
readout on `nj.train.tasks.perceptual_decision` trials (45 steps) plus 1e-3 times the
mean squared rate; Adam (lr 1e-2) on theta, the input and readout weights; minibatches of
B trials drawn without replacement, one PRNG key per step.

Three rows:

- `fit`: `nj.train.fit(..., progress=False)`, the per-step times it reports
  (`FitResult.step_seconds`: the jitted step plus the host read of the loss and the
  non-finite flags that it waits for);
- `plain loop, neurojax model`: the same loss (calling `nj.simulate`) in a hand-written
  `jax.jit` step and Python loop: `fit`'s own overhead;
- `plain JAX (hand-written)`: the rate RNN written directly with `jax.lax.scan` and
  optax, no neurojax at all: the overhead of the whole library on this model.

The first losses of the three must agree (checked before any time is printed: the same
model). The variants alternate in one process for `--rounds` rounds of `--steps` steps
each (so that load on a shared machine falls on all of them alike); `run [s]` is the
median step time over all rounds, `ratio` the ratio of medians to the hand-written
row. Compile time is reported apart: `fit`'s is its first step minus the median step,
the plain variants' the ahead-of-time `lower().compile()`.
"""

from __future__ import annotations

import sys
import time

from _common import parser, report

DT = 20.0  # [ms]
TAU = 100.0  # [ms]
LR = 1e-2
TASK = dict(dt=DT, coherences=(0.05, 0.1, 0.2, 0.4), fixation=100.0, stimulus=500.0,
            response=200.0, noise=0.15)



def dale_rnn_problem(n: int, seed: int):
    """The benchmarked model, shared with fit_ablation.py: the task's trials (`train`,
    `n_steps` per trial), the neurojax model (`model`, its trainable filter `spec`) and
    loss `loss(m, trial, key)`, and the same model written by hand in plain JAX
    (`hand_loss(p, trial, key)` on `hand_params`, theta = the Dale parameters of
    `model`)."""
    import types

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import neurojax as nj
    from neurojax.train import tasks

    N = n
    n_e = int(0.8 * N)
    train = tasks.perceptual_decision(jax.random.key(1), 512, **TASK)
    n_steps = train.inputs.shape[1]
    sign = np.where(np.arange(N) < n_e, 1.0, -1.0)
    rng = np.random.default_rng(seed)
    w0 = np.abs(rng.normal(size=(N, N))) * 0.5 / np.sqrt(N)
    w0[:, n_e:] *= -n_e / (N - n_e)
    np.fill_diagonal(w0, 0.0)
    w_in0 = rng.normal(size=(N, 2)) * 0.5
    mask = ~np.eye(N, dtype=bool)

    # ---------------------------------------------------------------- neurojax model
    pop = nj.Population("R", N, nj.neurons.FiringRate(tau=TAU, transfer=nj.neurons.ReLU()))
    rec = nj.Projection("R", "R", nj.connectivity.AllToAll(), weight=w0,
                        layout=nj.connectivity.Dense())
    drive = nj.inputs.Waveform("R", times=jnp.arange(n_steps) * DT,
                               values=jnp.zeros((n_steps, N)))
    bias = nj.inputs.Constant("R", amplitude=0.1)
    net = nj.Network([pop], [rec], inputs=[drive, bias]).build(jax.random.key(0))
    net = nj.train.constrain(net, {"R->R": nj.train.Dale(sign, mask=mask)})
    model = {"net": net, "w_in": jnp.asarray(w_in0), "w_out": jnp.zeros(n_e),
             "b_out": jnp.zeros(())}
    spec = nj.train.trainable(model, include=["*.weights.free", "*w_in*", "*w_out*", "*b_out*"])

    def loss(m, trial, key):
        network = eqx.tree_at(lambda n: n.inputs[0].values, m["net"], trial.inputs @ m["w_in"].T)
        r = nj.simulate(network, n_steps * DT, DT, key=jax.random.key(0),
                        record=nj.Record(spikes=["R"])).spikes["R"]
        out = r[:, :n_e] @ m["w_out"] + m["b_out"]
        err = trial.mask[:, 0] * (out - trial.targets[:, 0]) ** 2
        return jnp.sum(err) / jnp.sum(trial.mask) + 1e-3 * nj.train.rate_cost(r)

    # ------------------------------------------------------------ hand-written JAX
    decay = float(np.exp(-DT / TAU))
    sign_j, mask_j = jnp.asarray(sign), jnp.asarray(mask, float)

    def hand_loss(p, trial, key):
        w = sign_j[None, :] * jax.nn.softplus(p["theta"]) * mask_j
        u = trial.inputs @ p["w_in"].T + 0.1

        def body(r, u_t):
            # Exponential Euler with the input (recurrent rates of the last step) held.
            r_inf = jax.nn.relu(w @ r + u_t)
            r = r_inf + (r - r_inf) * decay
            return r, r

        _, rs = jax.lax.scan(body, jnp.zeros(N), u)
        out = rs[:, :n_e] @ p["w_out"] + p["b_out"]
        err = trial.mask[:, 0] * (out - trial.targets[:, 0]) ** 2
        return jnp.sum(err) / jnp.sum(trial.mask) + 1e-3 * jnp.mean(rs ** 2)

    theta0 = jnp.asarray(net.projections[0].weights.free)
    hand_params = {"theta": theta0, "w_in": jnp.asarray(w_in0, theta0.dtype),
                   "w_out": jnp.zeros(n_e, theta0.dtype), "b_out": jnp.zeros((), theta0.dtype)}
    return types.SimpleNamespace(train=train, n_steps=n_steps, n_e=n_e, model=model, spec=spec,
                                 loss=loss, hand_loss=hand_loss, hand_params=hand_params)


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=0.0, quick_duration=0.0)
    p.set_defaults(dt=DT)
    p.add_argument("--n", type=int, default=200, help="rate units (default 200; 50 with --quick)")
    p.add_argument("--batch", type=int, default=64, help="trials per step (default 64; 16 with --quick)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per round (default 30)")
    p.add_argument("--rounds", type=int, default=5, help="alternations of the variants (default 5)")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.batch, args.steps, args.rounds = 50, 16, 10, 2

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import neurojax as nj

    N, B = args.n, args.batch
    pb = dale_rnn_problem(N, args.seed)
    train, n_steps, n_e, model, spec, loss = (pb.train, pb.n_steps, pb.n_e, pb.model,
                                              pb.spec, pb.loss)
    opt = optax.adam(LR)
    n_trials = train.labels.shape[0]

    def make_step(loss_fn, combine):
        def step(params, state, i):
            k_batch, k_loss = jax.random.split(jax.random.fold_in(jax.random.key(0), i))
            idx = jax.random.choice(k_batch, n_trials, (B,), replace=False)
            batch = jax.tree.map(lambda x: x[idx], train)

            def batch_loss(p):
                keys = jax.random.split(k_loss, B)
                return jnp.mean(jax.vmap(loss_fn, in_axes=(None, 0, 0))(combine(p), batch, keys))

            value, grads = jax.value_and_grad(batch_loss)(params)
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state, value
        return jax.jit(step)

    # ------------------------------------------------ plain loop around the neurojax loss
    nj_params, nj_static = eqx.partition(model, spec)
    nj_params = jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), nj_params)
    nj_step = make_step(loss, lambda p: eqx.combine(p, nj_static))

    # ------------------------------------------------------------ hand-written JAX
    hand_loss, hand_params = pb.hand_loss, pb.hand_params
    hand_step = make_step(hand_loss, lambda p: p)

    # --------------------------------------------------------------- compile, check
    def compile_plain(step, params):
        state = opt.init(params)
        t0 = time.perf_counter()
        compiled = step.lower(params, state, np.uint32(0)).compile()
        return compiled, state, time.perf_counter() - t0

    nj_compiled, nj_state, nj_compile_s = compile_plain(nj_step, nj_params)
    hand_compiled, hand_state, hand_compile_s = compile_plain(hand_step, hand_params)

    def run_fit(steps):
        return nj.train.fit(model, loss, train, opt, steps, jax.random.key(0), batch_size=B,
                            eval_every=steps, progress=False, trainable=spec)

    first = run_fit(1)
    fit_first_s = float(first.step_seconds[0])
    first_losses = {"fit": float(first.losses[0]),
                    "plain loop, neurojax model": float(nj_compiled(nj_params, nj_state,
                                                                    np.uint32(0))[2]),
                    "plain JAX (hand-written)": float(hand_compiled(hand_params, hand_state,
                                                                    np.uint32(0))[2])}
    vals = np.array(list(first_losses.values()))
    if not np.allclose(vals, vals[0], rtol=1e-4):
        raise SystemExit(f"fit_overhead: the variants' first losses differ {first_losses}: "
                         "not the same model, not timing it.")

    # ------------------------------------------------------------ alternate, time
    times = {k: [] for k in first_losses}

    def time_plain(compiled, params, state, steps):
        out = []
        for i in range(steps):
            t0 = time.perf_counter()
            params, state, value = compiled(params, state, np.uint32(i))
            float(value)  # the host read fit does too (its loss history)
            out.append(time.perf_counter() - t0)
        return out

    for _ in range(args.rounds):
        times["fit"] += list(run_fit(args.steps).step_seconds)
        times["plain loop, neurojax model"] += time_plain(nj_compiled, nj_params, nj_state,
                                                          args.steps)
        times["plain JAX (hand-written)"] += time_plain(hand_compiled, hand_params, hand_state,
                                                        args.steps)

    med = {k: float(np.median(v)) for k, v in times.items()}
    compile_s = {"fit": fit_first_s - med["fit"], "plain loop, neurojax model": nj_compile_s,
                 "plain JAX (hand-written)": hand_compile_s}
    base = med["plain JAX (hand-written)"]
    rows = [{"name": k, "status": "ok", "compile_s": compile_s[k], "run_s": med[k],
             "ratio": med[k] / base, "run_s_all": times[k], "rates_hz": None,
             "note": f"{1e3 * med[k]:.2f} ms/step, first loss {first_losses[k]:.5f}"}
            for k in times]
    title = (f"fit overhead: Dale rate RNN, N = {N} ({n_e} E), {n_steps} steps of {DT:g} ms, "
             f"batch {B}, Adam; medians of {args.rounds} x {args.steps} steps per variant, "
             f"alternating")
    report("fit_overhead", args, rows, title,
           {"n": N, "n_e": n_e, "batch": B, "trial_steps": int(n_steps), "dt_ms": DT,
            "steps_per_round": args.steps, "rounds": args.rounds, "lr": LR},
           extra={"first_losses": first_losses,
                  "fit_over_hand_written": med["fit"] / base,
                  "fit_over_plain_loop": med["fit"] / med["plain loop, neurojax model"]},
           baseline=None,
           ratio_note="median time per step / that of 'plain JAX (hand-written)'")
    print(f"fit / plain loop (same neurojax loss): {med['fit'] / med['plain loop, neurojax model']:.3f}; "
          f"fit / hand-written JAX: {med['fit'] / base:.3f}")


if __name__ == "__main__":
    sys.exit(main())
