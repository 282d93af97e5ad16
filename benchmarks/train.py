"""Training-step benchmark: time per optimisation step (BPTT + Adam) of a recurrent
spiking classifier, neurojax beside the same model in plain JAX and, where installed,
snnTorch (torch eager) and Spyx.

    python benchmarks/train.py [--quick] [--batch B] [--steps T] [--repeats N]

The model (the gradients issue's yardstick): 700 input channels with Bernoulli spikes
(p = 0.02 per channel and step), 256 recurrent current-based LIF units (tau_m = 10 ms,
threshold 1 mV, reset to 0, fast-sigmoid surrogate), 20 leaky readouts (tau = 10 ms);
T = 100 steps of dt = 1 ms, batch 64, loss = cross-entropy of the time-averaged readouts
against random labels, Adam (lr 1e-3) on the three weight matrices. neurojax runs it
as a `Network`: a `SpikeTrains` input population, trials swapped in under `jax.vmap`,
gradients with respect to named parameters (`model.replace`). Two neurojax rows differ
only in the input projection's layout: `Sparse` (event-driven: a step touches the rows
of the ~14 channels that spiked) and `Dense` (a matrix-vector product, what dense
frameworks do); both must give the same losses (checked before any time is printed).

Reported per row: compile time, and the best time per optimisation step over
`--repeats` timed steps (after the `--updates` steps whose losses are compared);
`ratio` is each row's step time over the Dense neurojax row's (`AllToAll` picks the
Dense layout by default).

The Sparse row's weight gradient is event-driven under `vmap` too: JAX transposes the
propagation's weight tangent into a scatter-add at the rows that spiked, with the trials'
cotangents summed inside it (`_event_weight_gradient` in neurojax/connectivity/weights.py).
Before, the custom VJP returned each trial's full `(n_pre, out_degree)` weight cotangent
in every step and JAX summed them afterwards (5.6x the CPU time). On this CPU the Dense
row stays faster for this all-to-all input: a batched matrix product is cheaper here
than XLA's serial scatter of ~14 rows per trial and step (benchmarks/README.md).
"""

from __future__ import annotations

import importlib.util
import sys
import time

from _common import machine, parser, report  # noqa: F401

N_IN, N_REC, N_OUT = 700, 256, 20
P_IN = 0.02  # input spike probability per channel and step
TAU = 10.0  # [ms] membrane (recurrent and readout)
DT = 1.0  # [ms]
LR = 1e-3


def main(argv=None):
    p = parser(__doc__.split("\n")[0], duration=100.0, quick_duration=20.0)
    p.set_defaults(repeats=5, dt=DT)
    p.add_argument("--batch", type=int, default=64, help="trials per optimisation step")
    p.add_argument("--updates", type=int, default=3,
                   help="optimisation steps whose losses must agree between the variants")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = args.quick_duration if args.quick else args.default_duration
    if args.quick:
        args.repeats, args.batch = 2, min(args.batch, 8)
    steps = int(round(args.duration / args.dt))

    import jax
    import jax.numpy as jnp
    import numpy as np

    data_key, label_key = jax.random.split(jax.random.key(args.seed))
    spikes = jax.random.bernoulli(data_key, P_IN, (args.batch, steps, N_IN)).astype(jnp.uint8)
    labels = jax.random.randint(label_key, (args.batch,), 0, N_OUT)
    init = _initial_weights(args.seed)

    rows, losses = [], {}
    for name, make in (("neurojax (Sparse input)", lambda: _neurojax(args, "sparse", init)),
                       ("neurojax (Dense input)", lambda: _neurojax(args, "dense", init)),
                       ("plain JAX (hand-written)", lambda: _plain_jax(args, init))):
        update, params, opt_state = make()
        row, losses[name] = _time_jax(name, update, params, opt_state, spikes, labels, args)
        rows.append(row)
    for name, runner in (("snnTorch (torch eager)", _snntorch), ("Spyx", _spyx)):
        rows.append(runner(name, args, init, np.asarray(spikes), np.asarray(labels)))

    # The two layouts are the same model: identical losses up to float32 summation order.
    a, b = losses["neurojax (Sparse input)"], losses["neurojax (Dense input)"]
    if not np.allclose(a, b, rtol=1e-4):
        raise SystemExit(f"train: Sparse and Dense input layouts give different losses {a} vs {b}: "
                         "not timing a wrong run.")
    for r in rows:
        r.setdefault("rates_hz", None)
    title = (f"Training step: {N_IN} inputs (p = {P_IN}/step) -> {N_REC} LIF -> {N_OUT} readouts, "
             f"{steps} steps of {args.dt:g} ms, batch {args.batch}, BPTT + Adam; losses of the first "
             f"{args.updates} steps: " + "; ".join(f"{k}: {' '.join(f'{x:.4f}' for x in v)}"
                                                   for k, v in losses.items()))
    report("train", args, rows, title,
           {"n_in": N_IN, "n_rec": N_REC, "n_out": N_OUT, "p_in": P_IN, "steps": steps,
            "dt_ms": args.dt, "batch": args.batch, "lr": LR},
           extra={"losses": losses}, baseline="neurojax (Dense input)",
           ratio_note="time per optimisation step / that of 'neurojax (Dense input)'")


def _initial_weights(seed):
    """One draw of the three weight matrices (post, pre), shared by every variant.
    Scales: ~14 input spikes per step at 40 pA*ms / 100 pF (0.4 mV per spike, sd) bring
    units to threshold within a few steps; the recurrent and readout weights are
    smaller (fan-in 256)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rec = rng.normal(0.0, 10.0, (N_REC, N_REC)).astype(np.float32)
    np.fill_diagonal(rec, 0.0)  # AllToAll onto the same population has no autapses
    return {
        "in": rng.normal(0.0, 40.0, (N_REC, N_IN)).astype(np.float32),
        "rec": rec,
        "out": rng.normal(0.0, 0.5, (N_OUT, N_REC)).astype(np.float32),
    }


def _cross_entropy(logits, labels):
    import jax
    import jax.numpy as jnp

    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))


def _neurojax(args, layout, init):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import neurojax as nj

    c = nj.connectivity
    steps = int(round(args.duration / args.dt))
    lif = nj.neurons.LIF(c_m=100.0, g_l=100.0 / TAU, e_l=0.0, v_th=1.0, v_reset=0.0, t_ref=0.0,
                         surrogate=nj.surrogate.FastSigmoid(slope=10.0))
    readout = nj.neurons.Rate(tau=TAU, transfer=nj.neurons.ReLU())
    input_layout = c.Sparse() if layout == "sparse" else c.Dense()
    net = nj.Network(
        [nj.Population("in", N_IN, nj.inputs.SpikeTrains(np.zeros((steps, N_IN), np.uint8))),
         nj.Population("rec", N_REC, lif),
         nj.Population("out", N_OUT, readout)],
        [nj.Projection("in", "rec", c.AllToAll(), weight=init["in"], layout=input_layout),
         nj.Projection("rec", "rec", c.AllToAll(), weight=init["rec"], layout=c.Dense()),
         nj.Projection("rec", "out", c.AllToAll(), weight=init["out"], layout=c.Dense())],
    )
    model = net.build(jax.random.key(args.seed))
    names = ("in->rec.weight", "rec->rec.weight", "rec->out.weight")
    params = {k: model.params()[k] for k in names}
    record = nj.Record(spikes=(), **{"v": {"out": None}})
    key = jax.random.key(0)  # nothing in this model is random: the key is unused

    def trial_logits(params, trial):
        m = eqx.tree_at(lambda m: m.population("in").neuron.spikes, model.replace(params), trial)
        res = nj.simulate(m, args.duration, args.dt, key=key, record=record)
        return jnp.mean(res.variables["out.v"], axis=0)

    def loss(params, spikes, labels):
        logits = jax.vmap(trial_logits, in_axes=(None, 0))(params, spikes)
        return _cross_entropy(logits, labels)

    opt = optax.adam(LR)

    @jax.jit
    def update(params, opt_state, spikes, labels):
        value, grads = jax.value_and_grad(loss)(params, spikes, labels)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return update, params, opt.init(params)


def _plain_jax(args, init):
    """The same equations written directly: exponential Euler for the membranes, input
    charge arriving one step after the spike (neurojax's minimum delay), fast sigmoid
    surrogate, reset to 0 without gradient through the reset."""
    import jax
    import jax.numpy as jnp
    import optax

    decay = float(jnp.exp(-args.dt / TAU))
    c_m = 100.0

    @jax.custom_jvp
    def spike(x):
        return (x >= 0).astype(x.dtype)

    @spike.defjvp
    def _spike_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return spike(x), dx / (1.0 + 10.0 * jnp.abs(x)) ** 2

    def trial_logits(w, trial):
        def body(carry, x):
            v, r, s_prev, x_prev = carry
            # Charges emitted last step arrive now (jump q / c_m), then the leak.
            v = v * decay + (w["in"] @ x_prev + w["rec"] @ s_prev) / c_m
            s = spike(v - 1.0)
            v = v * (1.0 - jax.lax.stop_gradient(s))
            r = r * decay + (1.0 - decay) * (w["out"] @ s_prev)
            return (v, r, s, x), r

        zeros = (jnp.zeros(N_REC), jnp.zeros(N_OUT), jnp.zeros(N_REC), jnp.zeros(N_IN))
        _, rs = jax.lax.scan(body, zeros, trial.astype(jnp.float32))
        return jnp.mean(rs, axis=0)

    def loss(w, spikes, labels):
        return _cross_entropy(jax.vmap(trial_logits, in_axes=(None, 0))(w, spikes), labels)

    opt = optax.adam(LR)

    @jax.jit
    def update(params, opt_state, spikes, labels):
        value, grads = jax.value_and_grad(loss)(params, spikes, labels)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    params = {k: jnp.asarray(v) for k, v in init.items()}
    return update, params, opt.init(params)


def _time_jax(name, update, params, opt_state, spikes, labels, args):
    import jax

    t0 = time.perf_counter()
    compiled = update.lower(params, opt_state, spikes, labels).compile()
    compile_s = time.perf_counter() - t0
    losses = []
    for _ in range(args.updates):
        params, opt_state, value = compiled(params, opt_state, spikes, labels)
        losses.append(float(value))
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        params, opt_state, value = compiled(params, opt_state, spikes, labels)
        jax.block_until_ready(params)
        times.append(time.perf_counter() - t0)
    return ({"name": name, "status": "ok", "compile_s": compile_s, "run_s": min(times),
             "run_s_all": times, "note": f"{1e3 * min(times):.1f} ms/step"}, losses)


def _snntorch(name, args, init, spikes, labels):
    if importlib.util.find_spec("snntorch") is None or importlib.util.find_spec("torch") is None:
        return {"name": name, "status": "not installed (pip install snntorch torch)"}
    import numpy as np
    import snntorch as snn
    import torch

    torch.manual_seed(args.seed)
    beta = float(np.exp(-args.dt / TAU))
    w_in = torch.nn.Parameter(torch.tensor(init["in"] / 100.0))
    w_rec = torch.nn.Parameter(torch.tensor(init["rec"] / 100.0))
    w_out = torch.nn.Parameter(torch.tensor(init["out"]))
    lif = snn.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero",
                    spike_grad=snn.surrogate.fast_sigmoid(slope=10.0))
    opt = torch.optim.Adam([w_in, w_rec, w_out], lr=LR)
    x = torch.tensor(spikes, dtype=torch.float32).transpose(0, 1)  # (steps, batch, in)
    y = torch.tensor(labels, dtype=torch.long)

    def step():
        opt.zero_grad()
        mem = torch.zeros(x.shape[1], N_REC)
        s = torch.zeros(x.shape[1], N_REC)
        r = torch.zeros(x.shape[1], N_OUT)
        x_prev = torch.zeros(x.shape[1], N_IN)
        acc = 0.0
        for t in range(x.shape[0]):
            cur = x_prev @ w_in.T + s @ w_rec.T
            r = r * beta + (1 - beta) * (s @ w_out.T)
            s, mem = lif(cur, mem)
            x_prev = x[t]
            acc = acc + r
        loss = torch.nn.functional.cross_entropy(acc / x.shape[0], y)
        loss.backward()
        opt.step()
        return loss.item()

    first_loss = step()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    # snnTorch's Leaky resets in the step after a spike (its reset reads the previous
    # membrane), so its loss differs slightly from the others'; printed to show it is
    # the same task at the same scale.
    return {"name": name, "status": "ok", "compile_s": 0.0, "run_s": min(times), "run_s_all": times,
            "note": f"{1e3 * min(times):.1f} ms/step, first loss {first_loss:.4f}"}


def _spyx(name, args, init, spikes, labels):
    if importlib.util.find_spec("spyx") is None:
        return {"name": name, "status": "not installed (pip install spyx)"}
    return {"name": name, "status": "installed, but not wired into this benchmark yet"}


if __name__ == "__main__":
    sys.exit(main())
