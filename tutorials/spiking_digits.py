# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A spiking classifier of handwritten digits, trained with surrogate gradients
#
# Issue 8's spiking benchmark: a feed-forward network of leaky integrate-and-fire neurons,
# trained by backpropagation through time with surrogate gradients (Neftci, Mostafa &
# Zenke 2019) through `nj.train.fit` and optax, must classify scikit-learn's bundled
# handwritten digits (1797 images of 8x8 pixels, 16 grey levels; Alpaydin & Kaynak
# 1998) with at least 97 % accuracy on held-out images, after at most 2 minutes of
# training on a CPU. For scale: a non-spiking multilayer perceptron
# (`sklearn.neural_network.MLPClassifier`, 512 ReLU units) reaches about 98 % on the
# same split, a logistic regression about 96 %.
#
# `nj.train.tasks.digits` turns each image into 64 spike trains (one per pixel) and
# holds out 20 % of the images. Here the code is time-to-first-spike (latency): a pixel
# of intensity u fires once, in step round((1 - u) * 15) of a 16 ms window, the
# brightest first; black pixels stay silent.
#
# The network: 64 input channels (`SpikeTrains`) -> 512 LIF neurons -> 10 leaky
# readout units (`Rate`, non-spiking); the class is the readout with the largest mean
# membrane potential over the trial (cross-entropy on those means). Which synapse turns
# a latency into something a LIF neuron can use matters: with instantaneous synapses
# (each input spike a voltage jump) a neuron with a long membrane time constant only
# counts which pixels are on, and the network stalls near the accuracy of a perceptron
# on binarised images (about 92-94 % in our trials). With slow exponential synapses
# (tau = 100 ms, longer than the trial) each input spike injects a nearly constant
# current from its arrival on, so by time T the charge it has delivered grows with
# T - t_spike, i.e. linearly with the pixel's intensity: the hidden layer sees the grey
# levels again.

# %%
import argparse
import os
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

parser = argparse.ArgumentParser(description="train a spiking LIF classifier on sklearn's digits")
parser.add_argument("--quick", action="store_true", help="fewer optimiser steps")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()  # known args only: also runs inside a notebook
here = Path(globals().get("__file__", "spiking_digits.py")).resolve().parent
out = args.out if args.out is not None else here / "figures"
out.mkdir(parents=True, exist_ok=True)
t_wall = time.perf_counter()

DT = 1.0            # [ms]
WINDOW = 16.0       # [ms] latency code: one step per grey level 1..16
DURATION = 24.0     # [ms] simulated: the window plus 8 ms for the last inputs to act
N_HIDDEN = 512
TAU_M = 100.0       # [ms] hidden membrane time constant (C_m = 100 pF, g_L = 1 nS)
TAU_SYN = 100.0     # [ms] input synapses: nearly a step current over the 24 ms trial
TAU_OUT = 20.0      # [ms] readout units
LOGIT_SCALE = 10.0  # readout potential [mV] -> logit
DROP = 0.1          # input spikes dropped at random in training (augmentation)
LR, BATCH = 5e-3, 64
if args.quick:
    STEPS, EVAL_EVERY, TARGET = 400, 100, 0.85
else:
    STEPS, EVAL_EVERY, TARGET = 2000, 250, 0.97
TIME_LIMIT = 120.0  # [s] of training (issue 8)

# %% [markdown]
# ## Data and network
#
# The images are encoded once (`digits` is pure and seeded: the key fixes the split).
# Each trial's spikes replace the input population's `SpikeTrains` (`eqx.tree_at`),
# which `fit` maps over the trials of a minibatch with `jax.vmap`. Weights are in the
# units of their receptors: input currents [pA] through exponential synapses, hidden
# spikes as charges [pA ms] onto the readouts.

# %%
train, test = tasks.digits(jax.random.key(0), encoding="latency", test_fraction=0.2,
                           duration=WINDOW, dt=DT)
print(f"{train.labels.shape[0]} training and {test.labels.shape[0]} held-out images, "
      f"inputs {train.inputs.shape[1:]} (steps, pixels)")
rng = np.random.default_rng(0)
c = nj.connectivity
hidden = nj.neurons.LIF(c_m=100.0, g_l=100.0 / TAU_M, e_l=0.0, v_th=1.0, v_reset=0.0,
                        t_ref=0.0, surrogate=nj.surrogate.FastSigmoid(slope=5.0))
net = nj.Network(
    [nj.Population("in", 64, nj.inputs.SpikeTrains(np.zeros((int(WINDOW / DT), 64), np.uint8))),
     nj.Population("hid", N_HIDDEN, hidden),
     nj.Population("out", 10, nj.neurons.Rate(tau=TAU_OUT, transfer=nj.neurons.ReLU()))],
    [nj.Projection("in", "hid", c.AllToAll(), layout=c.Dense(),
                   synapse=nj.synapses.Exponential(tau=TAU_SYN),
                   # ~30 pixels are on per image; 3.5 pA each (sd) brings v to ~1 mV
                   weight=rng.normal(0.0, 3.5, (N_HIDDEN, 64))),
     nj.Projection("hid", "out", c.AllToAll(), layout=c.Dense(),
                   weight=rng.normal(0.0, 1.0 / np.sqrt(N_HIDDEN), (10, N_HIDDEN)))])
model = net.build(jax.random.key(0))
record = nj.Record(spikes=["hid"], v={"out": None})


def run(m, spikes):
    """Logits (10,) and the hidden raster (steps, N_HIDDEN) of one trial. The input
    population replays `spikes` and is silent after its last row."""
    m = eqx.tree_at(lambda m: m.population("in").neuron.spikes, m, spikes.astype(jnp.uint8))
    res = nj.simulate(m, DURATION, DT, key=jax.random.key(0), record=record)
    return LOGIT_SCALE * jnp.mean(res.variables["out.v"], axis=0), res.spikes["hid"]


def loss(m, trial, key):
    keep = jax.random.bernoulli(key, 1.0 - DROP, trial.inputs.shape)
    logits, _ = run(m, trial.inputs * keep)
    return -jax.nn.log_softmax(logits)[trial.labels]


def correct(m, trial, key):
    return (jnp.argmax(run(m, trial.inputs)[0]) == trial.labels).astype(float)


# %% [markdown]
# ## Training
#
# Adam with a cosine-decaying learning rate on the two weight matrices (the time
# constants and thresholds stay fixed), minibatches of 64 images; `fit` evaluates the
# held-out accuracy every `EVAL_EVERY` steps. The training time is `fit`'s wall time,
# compilation and evaluations included.

# %%
spec = nj.train.trainable(model, include=["*.weight*"])
t0 = time.perf_counter()
result = nj.train.fit(model, loss, train, optax.adam(optax.cosine_decay_schedule(LR, STEPS)),
                      STEPS, jax.random.key(1), batch_size=BATCH, eval_data=test,
                      eval_every=EVAL_EVERY, metrics={"accuracy": correct}, trainable=spec,
                      progress=False)
t_train = time.perf_counter() - t0
acc = float(result.metrics["accuracy"][-1])
load = os.getloadavg()[0]  # [processes] the machine is shared: report how busy
print(f"held-out accuracy {acc:.4f} after {STEPS} steps, {t_train:.1f} s of training "
      f"(median step {1e3 * np.median(result.step_seconds[1:]):.1f} ms; load average {load:.1f})")
for s, a in zip(result.eval_steps, result.metrics["accuracy"]):
    print(f"  step {s:5d}: held-out accuracy {a:.4f}")

# %% [markdown]
# ## Evaluation: confusion matrix, activity, and non-spiking references

# %%
logits, hid = jax.vmap(run, in_axes=(None, 0))(result.model, test.inputs)
pred = np.asarray(jnp.argmax(logits, -1))
labels = np.asarray(test.labels)
confusion = np.zeros((10, 10), int)
np.add.at(confusion, (labels, pred), 1)
per_class = confusion.diagonal() / confusion.sum(1)
spikes_per_neuron = float(np.asarray(hid).sum(1).mean())
acc_check = float(np.mean(pred == labels))
print(f"per-class accuracy {np.round(per_class, 3)}; hidden spikes per neuron per image "
      f"{spikes_per_neuron:.2f}")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

images = load_digits().data / 16.0
i_train, i_test = (np.asarray(t.conditions).astype(int) for t in (train, test))
y_train = np.asarray(train.labels)
acc_logreg = LogisticRegression(max_iter=2000).fit(images[i_train], y_train).score(
    images[i_test], labels)
if not args.quick:
    from sklearn.neural_network import MLPClassifier

    acc_mlp = MLPClassifier((N_HIDDEN,), max_iter=500, random_state=0).fit(
        images[i_train], y_train).score(images[i_test], labels)
    print(f"same split: logistic regression {acc_logreg:.4f}, MLP ({N_HIDDEN} ReLU) {acc_mlp:.4f}")

# %% [markdown]
# ## Figure

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
img = images[i_test[0]].reshape(8, 8)
axes[0].imshow(img, cmap="gray_r")
axes[0].set(title=f"held-out image (digit {labels[0]})", xticks=[], yticks=[])
t_sp, ch = np.nonzero(np.asarray(test.inputs[0]))
axes[1].scatter(t_sp * DT, ch, s=12, c=img.ravel()[ch], cmap="viridis", vmin=0, vmax=1)
axes[1].set(xlim=(-0.5, DURATION), xlabel="time [ms]", ylabel="pixel",
            title="latency code (colour: intensity)")
axes[2].plot(result.eval_steps, result.metrics["accuracy"], "o-", label="held-out")
axes[2].axhline(TARGET, color="k", ls="--", lw=1, label=f"target {TARGET:g}")
axes[2].set(xlabel="Adam step", ylabel="accuracy", title=f"training ({t_train:.0f} s)")
axes[2].legend()
axes[3].imshow(confusion, cmap="Blues")
for (i, j), n in np.ndenumerate(confusion):
    if n:
        axes[3].text(j, i, str(n), ha="center", va="center", fontsize=6)
axes[3].set(xlabel="predicted", ylabel="true", title="confusion (held-out)",
            xticks=range(10), yticks=range(10))
fig.tight_layout()
path = out / "spiking_digits.png"
fig.savefig(path, dpi=110)
plt.close(fig)
print(f"figure: {path}  ({time.perf_counter() - t_wall:.1f} s)")

# %% [markdown]
# ## Table
#
# How much rests on the split: 360 held-out images make one image 0.28 points. With
# the split keys 1 and 2 instead of 0 (same network and training, measured once each on
# this machine) the spiking network reached 0.969 and 0.972 against the MLP's 0.972
# and 0.978 on the same splits: within 0.3-0.6 points of its non-spiking counterpart
# every time, but the 97 % line is met on two of the three splits, not all. The split
# key 0 is the one this tutorial was written with (chosen before the others were run).
#
# The quick run trains 400 steps and is checked against 0.85 instead of 0.97: in our
# runs 400 steps reached 0.93-0.95, and 0.85 (eight times chance, 0.1) leaves room for
# other machines without accepting a network that has not learnt.

# %%
table = Comparison(
    "Spiking LIF classifier on scikit-learn's digits (issue 8; Neftci et al. 2019)",
    f"{'quick' if args.quick else 'full'} run: 64 -> {N_HIDDEN} LIF -> 10 readouts, latency "
    f"code, {STEPS} Adam steps of {BATCH} images, {t_train:.0f} s of training at load "
    f"average {load:.1f} (2 cores); float32; {time.perf_counter() - t_wall:.0f} s in all")
table.within("held-out accuracy", acc, TARGET, 1.0,
             source="issue 8: >= 97 % (quick: >= 0.85, see above)")
table.within("training wall time [s]", t_train, 0.0, TIME_LIMIT, fmt=".1f",
             source="issue 8: <= 2 min on this CPU")
table.close("accuracy recomputed from the confusion matrix", acc_check, acc, atol=1e-6,
            fmt=".4f", source="fit's metric vs a separate vmapped evaluation")
table.within("lowest per-class accuracy", float(per_class.min()),
             0.9 if not args.quick else 0.6, 1.0,
             source="every digit is learnt, not only the easy ones")
table.equal("input spikes per image = pixels on",
            bool(np.array_equal(np.asarray(test.inputs).sum(1), images[i_test] > 0)), True,
            source="latency code: one spike per non-black pixel")
table.shown("logistic regression, same split", f"{acc_logreg:.4f}", "~0.96",
            "non-spiking reference (scikit-learn)")
if not args.quick:
    table.close(f"spiking vs MLP ({N_HIDDEN} ReLU), same split", acc, acc_mlp, atol=0.02,
                source="scikit-learn MLPClassifier: the non-spiking counterpart")
table.shown("hidden spikes per neuron per image", f"{spikes_per_neuron:.2f}", "-",
            "activity level of the trained network")
table.finish()
