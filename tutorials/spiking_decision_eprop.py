# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A spiking Dale's-law network on perceptual decision making: BPTT and e-prop
#
# The spiking counterpart of `dale_decision_making.py`: a recurrent network of
# leaky integrate-and-fire neurons (80 % excitatory, 20 % inhibitory, every neuron's
# outgoing weights of one sign through `nj.train.Dale`) is trained on the random-dots-like
# decision task of `nj.train.tasks.perceptual_decision`, read out by a leaky readout
# ($\tau_{out}$ = 20 ms, `nj.train.leaky_readout`). It is trained twice, from the same
# start, with `nj.train.fit`:
#
# - **BPTT** with surrogate gradients (Bellec et al. 2020's pseudo-derivative,
#   a triangle of peak 0.3) through `nj.simulate`;
# - **e-prop** (Bellec et al. 2020, Nat. Commun. 11:3625): `nj.train.eprop_loss`, whose
#   gradient is computed forward in time from eligibility traces and a learning signal
#   (the readout error sent back through the readout weights, symmetric feedback), so
#   its memory does not grow with the trial length.
#
# Bellec et al. (2020) report e-prop close to BPTT on their tasks (e.g. TIMIT frame error
# 0.3 % points apart for LSNNs, Fig. 2); issue 8 asks for BPTT > 85 % and e-prop within 10
# points of it. The reference accuracy is again the ideal observer's,
# P(correct | c) = Phi(c sqrt(T) / sigma).

# %%
import argparse
import math
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

parser = argparse.ArgumentParser(description="BPTT and e-prop on a spiking Dale network")
parser.add_argument("--quick", action="store_true", help="a smaller network, fewer steps")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()  # known args only: also runs inside a notebook
here = Path(globals().get("__file__", "spiking_decision_eprop.py")).resolve().parent
out = args.out if args.out is not None else here / "figures"
out.mkdir(parents=True, exist_ok=True)
t_wall = time.perf_counter()

DT, TAU_OUT = 5.0, 20.0          # [ms]
TASK = dict(dt=DT, coherences=(0.05, 0.1, 0.2, 0.4), fixation=50.0, stimulus=300.0,
            response=100.0, noise=0.25)
if args.quick:
    N, STEPS, CHUNKS, BATCH, N_EVAL, LR = 40, 40, 2, 16, 128, 2e-2
else:
    N, STEPS, CHUNKS, BATCH, N_EVAL, LR = 100, 240, 4, 16, 512, 2e-2
N_E = int(0.8 * N)

# %% [markdown]
# ## Network
#
# LIF neurons in reduced units (C = 20 pF, g_L = 1 nS: tau_m = 20 ms; rest and reset 0,
# threshold 1 mV, 5 ms refractory), a constant bias of 1.05 pA (v_inf = 1.05 mV: a slow
# tonic firing), delta synapses (a spike moves its targets by w / C mV one step later).
# The task inputs reach every neuron through trainable weights `w_in` [pA]; the readout
# reads all neurons.

# %%
train = tasks.perceptual_decision(jax.random.key(1), 512, **TASK)
held_out = tasks.perceptual_decision(jax.random.key(2), N_EVAL, **TASK)
n_steps = train.inputs.shape[1]
sign = np.where(np.arange(N) < N_E, 1.0, -1.0)
rng = np.random.default_rng(0)
w0 = np.abs(rng.normal(size=(N, N))) * 4.0 / np.sqrt(N)   # [pA ms]
w0[:, N_E:] *= -N_E / (N - N_E)
np.fill_diagonal(w0, 0.0)

lif = nj.neurons.LIF(c_m=20.0, g_l=1.0, e_l=0.0, v_th=1.0, v_reset=0.0, t_ref=5.0,
                     surrogate=nj.surrogate.Triangle(slope=1.0, amplitude=0.3))
pop = nj.Population("R", N, lif)
rec = nj.Projection("R", "R", nj.connectivity.AllToAll(), weight=w0,
                    layout=nj.connectivity.Dense())
drive = nj.inputs.Waveform("R", times=jnp.arange(n_steps) * DT, values=jnp.zeros((n_steps, N)))
bias = nj.inputs.Constant("R", amplitude=1.05)
net = nj.Network([pop], [rec], inputs=[drive, bias]).build(jax.random.key(0))
dale_net = nj.train.constrain(net, {"R->R": nj.train.Dale(sign, mask=~np.eye(N, dtype=bool))})
model0 = {"net": dale_net, "w_in": jnp.asarray(rng.normal(size=(N, 2)) * 1.0),
          "w_out": jnp.zeros((1, N)), "b_out": jnp.zeros(1)}


def simulate(m, inputs):
    """Readout (steps, 1) and spikes (steps, N) of one trial, through `nj.simulate`."""
    steps = inputs.shape[0]
    network = eqx.tree_at(lambda n: (n.inputs[0].times, n.inputs[0].values), m["net"],
                          (jnp.arange(steps) * DT, inputs @ m["w_in"].T))
    res = nj.simulate(network, steps * DT, DT, key=jax.random.key(0),
                      record=nj.Record(spikes=["R"], float_spikes=True))
    z = res.spikes["R"]
    return nj.train.leaky_readout(z, m["w_out"], m["b_out"], dt=DT, tau_out=TAU_OUT), z


def bptt_loss(m, trial, key):
    y, _ = simulate(m, trial.inputs)
    return jnp.sum(trial.mask * (y - trial.targets) ** 2) / jnp.sum(trial.mask)


def eprop_loss(m, trial, key):
    return nj.train.eprop_loss(m["net"], m["w_in"], m["w_out"], m["b_out"], trial.inputs,
                               trial.targets, trial.mask, dt=DT, tau_out=TAU_OUT)


def correct(m, trial, key):
    y, _ = simulate(m, trial.inputs)
    return (jnp.sign(jnp.sum(y[:, 0] * trial.response)) == trial.labels).astype(float)


# %% [markdown]
# ## Training: the same model, loss and optimiser; only the gradient differs

# %%
spec = nj.train.trainable(model0, include=["*.weights.free", "*w_in*", "*w_out*", "*b_out*"])
results, seconds, signs_ok = {}, {}, {}
for name, loss in (("BPTT", bptt_loss), ("e-prop", eprop_loss)):
    t0 = time.perf_counter()
    ok, res = True, None
    for chunk in range(1, CHUNKS + 1):
        res = nj.train.fit(model0 if res is None else res.model, loss, train, optax.adam(LR),
                           STEPS // CHUNKS, jax.random.fold_in(jax.random.key(0), chunk),
                           batch_size=BATCH, eval_data=held_out, eval_every=STEPS // CHUNKS,
                           metrics={"accuracy": correct}, trainable=spec, progress=False)
        w = np.asarray(res.model["net"].projections[0].weights.matrix())
        ok &= bool(np.all(w * sign[None, :] >= 0))
        print(f"{name}: step {STEPS * chunk // CHUNKS}, held-out accuracy "
              f"{res.metrics['accuracy'][-1]:.3f}")
    results[name], seconds[name], signs_ok[name] = res, time.perf_counter() - t0, ok
acc = {k: float(r.metrics["accuracy"][-1]) for k, r in results.items()}
print(acc, seconds)

# %% [markdown]
# ## Memory at two trial lengths
#
# XLA's compiled memory analysis of one trial's gradient (`temp_size_in_bytes`: the
# scratch memory of the compiled program, which holds BPTT's stored states) at the task's
# length T and at 4 T (the trial repeated four times).

# %%
def temp_bytes(loss, length):
    trial = jax.tree.map(lambda x: x[0], train)
    reps = length // n_steps
    trial = tasks.Trials(*(jnp.concatenate([x] * reps) for x in (trial.inputs, trial.targets, trial.mask)),
                         trial.labels, trial.conditions,
                         jnp.concatenate([trial.response] * reps))
    params, static = eqx.partition(model0, spec)
    grad = jax.jit(jax.grad(lambda p, t: loss(eqx.combine(p, static), t, None)))
    return grad.lower(params, trial).compile().memory_analysis().temp_size_in_bytes


memory = {name: [temp_bytes(loss, n_steps * r) for r in (1, 4)]
          for name, loss in (("BPTT", bptt_loss), ("e-prop", eprop_loss))}
for name, (m1, m4) in memory.items():
    print(f"{name}: {m1 / 1e6:.2f} MB at T = {n_steps} steps, {m4 / 1e6:.2f} MB at 4 T "
          f"(x {m4 / m1:.2f})")

# %% [markdown]
# ## Psychometric curves and learning curves

# %%
T_STIM = round(TASK["stimulus"] / DT)
coh = np.asarray(TASK["coherences"])
ideal = np.array([0.5 * (1 + math.erf(c * math.sqrt(T_STIM) / TASK["noise"] / math.sqrt(2)))
                  for c in coh])
abs_c = np.abs(np.asarray(held_out.conditions))
by_coh = {}
for name, r in results.items():
    per_trial = np.asarray(jax.vmap(correct, in_axes=(None, 0, None))(r.model, held_out, None))
    by_coh[name] = np.array([np.mean(per_trial[np.isclose(abs_c, c)]) for c in coh])

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for name, r in results.items():
    axes[0].plot(r.losses, label=name, alpha=0.8)
    axes[1].semilogx(coh, by_coh[name], "o-", label=name)
axes[0].set(xlabel="Adam step", ylabel="training loss", yscale="log")
axes[0].legend()
axes[1].semilogx(coh, ideal, "k--", label="ideal observer")
axes[1].set(xlabel="coherence", ylabel="P(correct)", ylim=(0.45, 1.02))
axes[1].set_xticks(coh, [f"{c:g}" for c in coh])
axes[1].minorticks_off()
axes[1].legend()
x = np.arange(2)
for i, name in enumerate(memory):
    axes[2].bar(x + 0.4 * i, np.asarray(memory[name]) / 1e6, 0.4, label=name)
axes[2].set_xticks(x + 0.2, [f"T = {n_steps}", f"4 T = {4 * n_steps}"])
axes[2].set(ylabel="compiled temp memory [MB]", title="gradient of one trial")
axes[2].legend()
fig.tight_layout()
path = out / "spiking_decision_eprop.png"
fig.savefig(path, dpi=110)
plt.close(fig)
print(f"figure: {path}  ({time.perf_counter() - t_wall:.1f} s)")

# %% [markdown]
# ## Table
#
# Quick mode (40 neurons, 40 Adam steps) checks lower bars than the full run (100
# neurons, 240 steps): BPTT > 0.80 (in full mode > 0.85, issue 8), and e-prop within 10
# points of BPTT in both.

# %%
table = Comparison(
    "Spiking Dale E/I network on perceptual decision making: BPTT vs e-prop "
    "(Bellec et al. 2020)",
    f"{'quick' if args.quick else 'full'} run: N = {N} ({N_E} E), {STEPS} Adam steps of "
    f"{BATCH} trials; {time.perf_counter() - t_wall:.0f} s")
table.within("held-out accuracy, BPTT", acc["BPTT"], 0.80 if args.quick else 0.85, 1.0,
             source="issue 8: > 85 % (quick mode: > 80 %)")
table.within("e-prop minus BPTT accuracy", acc["e-prop"] - acc["BPTT"], -0.10, 1.0,
             source="issue 8: within 10 points")
table.equal("signs exact after every chunk, BPTT", signs_ok["BPTT"], True,
            source="Dale parameterisation")
table.equal("signs exact after every chunk, e-prop", signs_ok["e-prop"], True,
            source="Dale parameterisation")
table.within("e-prop memory growth, 4 T / T", memory["e-prop"][1] / memory["e-prop"][0],
             0.0, 1.1, source="constant in the trial length (Bellec et al. 2020)")
table.within("BPTT memory growth, 4 T / T", memory["BPTT"][1] / memory["BPTT"][0], 2.0,
             math.inf, source="BPTT stores every step (grows ~linearly)")
table.shown("accuracy at the highest coherence, BPTT / e-prop / ideal",
            f"{by_coh['BPTT'][-1]:.2f} / {by_coh['e-prop'][-1]:.2f}", f"{ideal[-1]:.2f}",
            "ideal observer Phi(c sqrt(T) / sigma)")
table.shown("training time, BPTT / e-prop [s]", f"{seconds['BPTT']:.0f} / {seconds['e-prop']:.0f}",
            "-", "wall-clock on a shared machine, not asserted")
table.finish()
