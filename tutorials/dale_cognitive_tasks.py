# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A Dale's-law rate RNN on working memory, context and timing tasks
#
# `dale_decision_making` trains an excitatory-inhibitory rate network (80 % E, 20 % I)
# on perceptual decision making. Here the same network, with recurrent weights
# W = sign * softplus(theta) (`nj.train.Dale`: every neuron's outgoing weights keep one
# sign), is trained with `nj.train.fit` on the other three tasks of
# `nj.train.tasks` (Song, Yang & Wang 2016 trained E/I networks on the same family):
#
# - **delayed match-to-sample** (working memory): a sample, a delay, a test stimulus;
#   report whether the test matches the sample;
# - **context-dependent integration** (Mante et al. 2013): two noisy stimuli and a
#   context cue; report the direction of the stimulus the context selects;
# - **interval timing** (ready-set-go, Jazayeri & Shadlen 2010): after "set" the output
#   must ramp to 1 in the interval shown between "ready" and "set". The produced
#   interval t_p is read where the output crosses 0.9 (`tasks.produced_interval(...,
#   level=0.9)`, divided by 0.9: the target ramp crosses 0.9 at 0.9 t_s); a trained
#   output that levels off just below 1 would never cross 1 itself.
#
# Each is trained twice, with and without the constraint (Cornford et al. 2021 found
# no cost of sign constraints). The sign of every presynaptic column is checked after
# **every** optimiser step: a `fit` metric counts the weights whose sign disagrees with
# their neuron's, evaluated after each step (`eval_every=1`).
#
# All three tasks are padded to the same number of input channels and the same trial
# length (zero input, unscored, before the trial starts), and scored by the same masked
# squared error, so the two networks' training steps compile once for all tasks (`fit`
# caches its compiled step across calls).

# %%
import argparse
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optax

import neurojax as nj
from neurojax.train import tasks
# The shared reproduced-vs-published table (tutorials/_compare.py).
from _compare import Comparison

parser = argparse.ArgumentParser(description="train a Dale's-law RNN on three cognitive tasks")
parser.add_argument("--quick", action="store_true", help="a smaller network, shorter training")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()  # known args only: also runs inside a notebook
here = Path(globals().get("__file__", "dale_cognitive_tasks.py")).resolve().parent
out = args.out if args.out is not None else here / "figures"
out.mkdir(parents=True, exist_ok=True)
t_wall = time.perf_counter()

DT = 20.0  # [ms]
if args.quick:
    N, STEPS, BATCH, N_TRAIN = 64, 200, 32, 512
    INTERVALS = (300.0, 400.0, 500.0)
else:
    N, STEPS, BATCH, N_TRAIN = 128, 1000, 64, 1024
    INTERVALS = (400.0, 600.0, 800.0, 1000.0)
# Interval timing learns slowest (the output must first stay at 0 until "set", then
# ramp at a rate set by the remembered interval): more steps.
TASK_STEPS = {"interval timing": 500 if args.quick else 2 * STEPS}
N_E = int(0.8 * N)
N_IN = 5  # the most input channels of the three tasks (context-dependent integration)
LR = 1e-2
# The unconstrained weights are trained directly; the Dale ones through softplus, whose
# slope at the initial magnitudes (~0.5 / sqrt(N)) is ~0.05, so the same Adam step moves
# them ~20x less. At 1e-2 the unconstrained network's recurrent loop ran away on the
# timing task (full run: error 149 %); it trains at a smaller rate.
LR_FREE = 2e-3
TASKS = {
    "delayed match-to-sample": lambda k, n: tasks.delayed_match_to_sample(k, n, dt=DT),
    "context-dependent integration": lambda k, n: tasks.context_dependent_integration(
        k, n, dt=DT, coherences=(0.1, 0.2, 0.4), noise=0.3),
    "interval timing": lambda k, n: tasks.interval_timing(k, n, dt=DT, intervals=INTERVALS),
}

# %% [markdown]
# ## Tasks on a common shape
#
# Every task's trials are padded in front to the longest trial (unscored steps with
# zero input, during which the network sits at its resting state) and to 5 input
# channels. The context-dependent task uses coherences 0.1-0.4 with noise 0.3 per step.

# %%
def make_trials(task, key, n):
    return TASKS[task](key, n)


raw = {t: (make_trials(t, jax.random.key(1), N_TRAIN), make_trials(t, jax.random.key(2), 512))
       for t in TASKS}
T = max(tr.inputs.shape[1] for tr, _ in raw.values())


def pad(tr):
    before = T - tr.inputs.shape[1]
    p3 = ((0, 0), (before, 0), (0, 0))
    return tasks.Trials(
        inputs=jnp.pad(tr.inputs, ((0, 0), (before, 0), (0, N_IN - tr.inputs.shape[2]))),
        targets=jnp.pad(tr.targets, p3), mask=jnp.pad(tr.mask, p3), labels=tr.labels,
        conditions=tr.conditions, response=jnp.pad(tr.response, ((0, 0), (before, 0))))


data = {t: (pad(a), pad(b)) for t, (a, b) in raw.items()}
print(f"{T} steps of {DT:g} ms per trial; N = {N} ({N_E} E)")

# %% [markdown]
# ## Network
#
# As in `dale_decision_making`: rectified-linear rate units (tau = 100 ms), inputs
# through trainable weights as a `Waveform` each trial replaces, a constant drive of
# 0.1, a linear readout of the excitatory rates, balanced initial weights and no
# self-connections.

# %%
sign = np.where(np.arange(N) < N_E, 1.0, -1.0)
no_self = ~np.eye(N, dtype=bool)
rng = np.random.default_rng(0)
w0 = np.abs(rng.normal(size=(N, N))) * 0.5 / np.sqrt(N)
w0[:, N_E:] *= -N_E / (N - N_E)
np.fill_diagonal(w0, 0.0)
w_in0 = rng.normal(size=(N, N_IN)) * 0.5

pop = nj.Population("R", N, nj.neurons.FiringRate(tau=100.0, transfer=nj.neurons.ReLU()))
rec = nj.Projection("R", "R", nj.connectivity.AllToAll(), weight=w0,
                    layout=nj.connectivity.Dense())
drive = nj.inputs.Waveform("R", times=jnp.arange(T) * DT, values=jnp.zeros((T, N)))
bias = nj.inputs.Constant("R", amplitude=0.1)
net = nj.Network([pop], [rec], inputs=[drive, bias]).build(jax.random.key(0))
dale_net = nj.train.constrain(net, {"R->R": nj.train.Dale(sign, mask=no_self)})


def make(network):
    return {"net": network, "w_in": jnp.asarray(w_in0), "w_out": jnp.zeros(N_E),
            "b_out": jnp.zeros(())}


def outputs(m, inputs):
    """Readout (steps,) and rates (steps, N) of one trial."""
    network = eqx.tree_at(lambda n: n.inputs[0].values, m["net"], inputs @ m["w_in"].T)
    res = nj.simulate(network, T * DT, DT, key=jax.random.key(0), record=nj.Record(spikes=["R"]))
    r = res.spikes["R"]
    return r[:, :N_E] @ m["w_out"] + m["b_out"], r


def loss(m, trial, key):
    out, r = outputs(m, trial.inputs)
    err = trial.mask[:, 0] * (out - trial.targets[:, 0]) ** 2
    return jnp.sum(err) / jnp.sum(trial.mask) + 1e-3 * nj.train.rate_cost(r)


def sign_flips(m, trial, key):
    """Recurrent weights whose sign disagrees with their presynaptic neuron's."""
    w = m["net"].projections[0].weights.matrix()
    return jnp.sum(w * sign[None, :] < 0).astype(float)


# The sign check needs no trials: the evaluation set of `fit` is one trial, so that
# checking after every step costs little.
batch_outputs = jax.jit(jax.vmap(lambda m, x: outputs(m, x)[0], in_axes=(None, 0)))

# %% [markdown]
# ## Training
#
# `STEPS` Adam steps per task and network (more on timing, `TASK_STEPS`); `eval_every=1`
# evaluates the sign metric after each update of the Dale network. Only the recurrent weights (free values), the input and the
# output weights train.

# %%
# One optimizer object per network: `fit` reuses its compiled step across calls with
# the same loss, optimizer and metric objects (and model structure).
OPTIMIZERS = {"Dale": optax.adam(LR), "free": optax.adam(LR_FREE)}


def train_on(task, model, check_every, kind):
    train, _ = data[task]
    steps = TASK_STEPS.get(task, STEPS)
    one = jax.tree.map(lambda x: x[:1], train)
    spec = nj.train.trainable(model, include=["*.weights.free", "*.weights.weights", "*w_in*",
                                              "*w_out*", "*b_out*"])
    return nj.train.fit(model, loss, train, OPTIMIZERS[kind], steps, jax.random.key(0),
                        batch_size=BATCH, eval_data=one, eval_every=check_every,
                        metrics={"sign_flips": sign_flips}, trainable=spec, progress=False)


LEVEL = 0.9


def timing_error(outs, trials):
    """Mean |t_p - t_s| / t_s, with t_p the time from "set" to the output crossing
    `LEVEL` divided by `LEVEL` (the target ramp crosses it at LEVEL * t_s)."""
    t_p = np.asarray(tasks.produced_interval(outs, trials, DT, level=LEVEL)) / LEVEL
    t_s = np.asarray(trials.conditions)
    return float(np.mean(np.abs(t_p - t_s) / t_s))


# Quick mode compares with the unconstrained network on the two choice tasks only
# (to stay within ~40 s); the full run on all three.
COMPARED = list(TASKS)[:2] if args.quick else list(TASKS)
results, scores, seconds = {}, {}, {}
for task in TASKS:
    _, held_out = data[task]
    # Signs checked after every step of the Dale network; the unconstrained one is
    # evaluated at the end only.
    for kind, network, every in (("Dale", dale_net, 1), ("free", net, 10**9)):
        if kind == "free" and task not in COMPARED:
            continue
        t0 = time.perf_counter()
        res = train_on(task, make(network), every, kind)
        seconds[task, kind] = time.perf_counter() - t0
        outs = batch_outputs(res.model, held_out.inputs)
        if task == "interval timing":
            score = timing_error(outs, held_out)
        else:
            score = float(tasks.accuracy(outs, held_out))
        results[task, kind], scores[task, kind] = res, score
        print(f"{task:<30} {kind:<5} score {score:.3f}  final loss {res.losses[-1]:.4f}  "
              f"max sign flips after a step {int(res.metrics['sign_flips'].max())}  "
              f"({seconds[task, kind]:.1f} s)")

# %% [markdown]
# ## Figure: losses, a timing example, and the trained Dale weights

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
for task in TASKS:
    axes[0].plot(results[task, "Dale"].losses, label=f"{task}, Dale")
    if (task, "free") in results:
        axes[0].plot(results[task, "free"].losses, "--", alpha=0.6)
axes[0].set(xlabel="Adam step", ylabel="training loss (dashed: unconstrained)", yscale="log")
axes[0].legend(fontsize=7)
_, timing = data["interval timing"]
outs = np.asarray(batch_outputs(results["interval timing", "Dale"].model, timing.inputs[:8]))
for i in range(8):
    line, = axes[1].plot(np.arange(T) * DT, outs[i], lw=1)
    axes[1].plot(np.arange(T) * DT, timing.targets[i, :, 0], ":", color=line.get_color())
axes[1].set(xlabel="time [ms]", ylabel="output (dotted: target ramp)", title="interval timing")
ts = np.asarray(timing.conditions)
produced = np.asarray(tasks.produced_interval(
    batch_outputs(results["interval timing", "Dale"].model, timing.inputs), timing, DT,
    level=LEVEL)) / LEVEL
for t in np.unique(ts):
    axes[2].plot(t, produced[ts == t].mean(), "o", color="C0")
axes[2].plot([ts.min(), ts.max()], [ts.min(), ts.max()], "k--", lw=1)
axes[2].set(xlabel="sample interval [ms]", ylabel="produced interval [ms]", title="Dale RNN")
w = np.asarray(results["delayed match-to-sample", "Dale"].model["net"].projections[0]
               .weights.matrix())
lim = np.abs(w).max()
axes[3].imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
axes[3].set(title="W after match-to-sample (cols: pre)", xlabel="pre", ylabel="post")
fig.tight_layout()
path = out / "dale_cognitive_tasks.png"
fig.savefig(path, dpi=110)
plt.close(fig)
print(f"figure: {path}  ({time.perf_counter() - t_wall:.1f} s)")

# %% [markdown]
# ## Table
#
# The full run (`python tutorials/dale_cognitive_tasks.py`: N = 128, 1000 Adam steps of
# 64 trials per network on the choice tasks, 2000 on timing, intervals 400-1000 ms)
# asserts the thresholds and compares with the unconstrained network on all
# three tasks. Quick mode (run by the tests: N = 64, 200 steps of 32 trials, 500 on
# timing, intervals 300-500 ms) asserts the same accuracy thresholds (both choice
# tasks reach them in 200 steps), a timing error below 15 % instead of 10 % (500
# steps gave 6.6 % here, but 400 gave 20 %: the error is still falling steeply, so a
# different CPU's rounding could land above 10 %), the signs after every update, and the
# 5-point comparison on the two choice tasks only (training the unconstrained
# network on timing too would take quick mode past ~40 s).
#
# Full run, 2026-12-06 (2-core CPU under load, 316 s): held-out accuracy 1.000
# (match-to-sample) and 0.990 (context) for both networks; timing error 3.1 % (Dale)
# and 5.0 % (unconstrained); no sign flip after any of 4000 updates.

# %%
ACC = {"delayed match-to-sample": 0.90, "context-dependent integration": 0.85}
TIMING = 0.10 if not args.quick else 0.15
table = Comparison(
    "Dale's-law rate RNN on three cognitive tasks (Song et al. 2016; Cornford et al. 2021)",
    f"{'quick' if args.quick else 'full'} run: N = {N} ({N_E} E), {STEPS} Adam steps of "
    f"{BATCH} trials per task and network ({TASK_STEPS['interval timing']} on timing); "
    f"{time.perf_counter() - t_wall:.0f} s")
for task, lo in ACC.items():
    table.within(f"{task}: held-out accuracy, Dale", scores[task, "Dale"], lo, 1.0,
                 source=f"issue 8: > {100 * lo:.0f} %")
    table.close(f"{task}: unconstrained minus Dale", scores[task, "free"] - scores[task, "Dale"],
                0.0, atol=0.05, source="Cornford et al. 2021: no cost of the constraint")
table.within("interval timing: |t_p - t_s| / t_s, Dale", scores["interval timing", "Dale"],
             0.0, TIMING, source="issue 8: < 10 %" + ("" if not args.quick else "; quick: < 15 %"))
if "interval timing" in COMPARED:
    table.close("interval timing: unconstrained minus Dale error",
                scores["interval timing", "free"] - scores["interval timing", "Dale"], 0.0,
                atol=0.05, source="within 5 points")
flips = max(int(results[t, "Dale"].metrics["sign_flips"].max()) for t in TASKS)
n_checked = sum(len(results[t, "Dale"].metrics["sign_flips"]) for t in TASKS)
table.equal(f"Dale: sign flips after any of {n_checked} updates", flips, 0,
            source="W = sign * softplus(theta)")
table.shown("unconstrained: sign flips at the end",
            ", ".join(str(int(results[t, "free"].metrics["sign_flips"][-1])) for t in COMPARED),
            "-", "without the constraint weights change sign freely")
table.finish()
