# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Decision making by slow reverberation (Wang 2002)
#
# Wang (2002, Neuron 36:955) showed that a cortical network with two groups of
# pyramidal cells, each selective for one of two choices, strong recurrent excitation
# within each group mediated by slow **NMDA** receptors and shared inhibition, makes
# categorical choices out of noisy evidence: under a random-dots stimulus of coherence
# $c$, the two groups first ramp up together, then one wins (tens of Hz) and suppresses
# the other. The fraction of correct choices rises with $c$ (the psychometric curve,
# ~50 % at $c = 0$, ~100 % at 51.2 %), and decisions are faster at higher coherence.
#
# The model (`nj.gallery.get("wang2002")`) uses two pieces built for it:
#
# - `nj.synapses.NMDA`: the magnesium block $B(v) = 1/(1 + [\mathrm{Mg}]/3.57\,
#   e^{-0.062 v})$ of Jahr & Stevens (1990), evaluated at the postsynaptic potential;
# - `nj.synapses.Saturating`: the saturating NMDA gating
#   $\dot x = -x/\tau_r + \sum_k \delta(t - t_k)$,
#   $\dot s = -s/\tau_d + \alpha x (1 - s)$, kept once per presynaptic neuron and
#   transmitted through the weights.
#
# All trials of the psychometric curve run as **one vmapped batch**: the coherence
# enters through the two stimulus rates, swapped in with `model.replace`, so the
# network is built and compiled once.

# %%
import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import neurojax as nj
# The shared reproduced-vs-published table (tutorials/_compare.py).
from _compare import Comparison

parser = argparse.ArgumentParser(description="Wang 2002 decision network")
parser.add_argument("--quick", action="store_true", help="small network, few trials")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()  # known args only: also runs inside a notebook
here = Path(globals().get("__file__", "wang2002_decision.py")).resolve().parent
out = args.out if args.out is not None else here / "figures"
out.mkdir(parents=True, exist_ok=True)
t_wall = time.perf_counter()

# %% [markdown]
# ## Set-up
#
# `--quick` runs the network scaled to N_E = 400, N_I = 100 (recurrent conductances
# scaled by 4, so the mean input is the paper's and only finite-size noise grows) with
# a few trials per coherence; the default runs the published size with more trials
# (long on a CPU: one 2 s trial of the full network takes ~40 s on one core).

# %%
if args.quick:
    N_E, N_I, TRIALS, COHERENCES = 400, 100, 16, (0.0, 0.128, 0.512)
else:
    N_E, N_I, TRIALS, COHERENCES = 1600, 400, 32, (0.0, 0.032, 0.064, 0.128, 0.256, 0.512)
STIM_ON, DURATION, DT, BLOCK = 300.0, 1500.0, 0.1, 25.0  # [ms]
THRESHOLD = 15.0  # [Hz] decision threshold on a group's rate (choice of this tutorial)
MU0 = 40.0  # [Hz] stimulus rate at zero coherence

model = nj.gallery.get("wang2002", n_e=N_E, n_i=N_I, stim_on=STIM_ON,
                       stim_off=DURATION).build(jax.random.key(0))
record = nj.Record(spikes=(), rates=("E1", "E2", "E0", "I"), every=BLOCK)


def trial(c, key):
    """Population rates [Hz] per block of one trial at coherence c (E1 favoured)."""
    m = model.replace({"Stimulus->E1.rate": MU0 * (1 + c), "Stimulus->E2.rate": MU0 * (1 - c)})
    return nj.simulate(m, DURATION, DT, key=key, record=record).rates


cs = jnp.repeat(jnp.asarray(COHERENCES), TRIALS)
keys = jax.random.split(jax.random.key(1), cs.size)
t0 = time.perf_counter()
rates = jax.jit(jax.vmap(trial))(cs, keys)
rates = {k: np.asarray(v) for k, v in rates.items()}  # (trials, blocks)
elapsed = time.perf_counter() - t0
print(f"{cs.size} trials of {DURATION:g} ms (N = {N_E + N_I}) in one batch: {elapsed:.1f} s "
      f"including compilation, {cs.size / elapsed:.2f} trials/s")

# %% [markdown]
# ## Choices, reaction times and the psychometric curve
#
# A trial's choice is the first selective group whose rate (25 ms blocks) crosses
# 15 Hz after stimulus onset (the higher rate if both cross in the same block), and its
# reaction time is that crossing; a trial where neither crosses is decided by the larger
# rate over the last 200 ms.

# %%
t_blocks = (np.arange(rates["E1"].shape[1]) + 1) * BLOCK  # block ends [ms]
after = t_blocks > STIM_ON
r1, r2 = rates["E1"], rates["E2"]
choice, rt = np.zeros(cs.size, int), np.full(cs.size, np.nan)
late = t_blocks > DURATION - 200.0
for k in range(cs.size):
    cross1 = np.flatnonzero(after & (r1[k] > THRESHOLD))
    cross2 = np.flatnonzero(after & (r2[k] > THRESHOLD))
    first1 = cross1[0] if cross1.size else np.inf
    first2 = cross2[0] if cross2.size else np.inf
    if np.isfinite(min(first1, first2)):
        first = int(min(first1, first2))
        if first1 == first2:  # both cross in the same block: the higher rate wins
            choice[k] = 1 if r1[k, first] >= r2[k, first] else 2
        else:
            choice[k] = 1 if first1 < first2 else 2
        rt[k] = t_blocks[first] - STIM_ON
    else:
        choice[k] = 1 if r1[k, late].mean() >= r2[k, late].mean() else 2
cs_np = np.asarray(cs)
correct = {c: np.mean(choice[cs_np == c] == 1) for c in COHERENCES}
mean_rt = {c: np.nanmean(rt[cs_np == c]) for c in COHERENCES}
# Winner and loser at the highest coherence, where every trial has decided by the end.
top = np.asarray(cs) == COHERENCES[-1]
winner_rate = np.mean(np.maximum(r1[top][:, late].mean(1), r2[top][:, late].mean(1)))
loser_rate = np.mean(np.minimum(r1[top][:, late].mean(1), r2[top][:, late].mean(1)))
pre = (t_blocks > 100.0) & (t_blocks <= STIM_ON)  # spontaneous, after 100 ms settling
spont_e = np.mean([rates[p][:, pre].mean() for p in ("E1", "E2", "E0")])
spont_i = rates["I"][:, pre].mean()
for c in COHERENCES:
    print(f"coherence {100 * c:5.1f} %: {100 * correct[c]:5.1f} % correct, "
          f"mean reaction time {mean_rt[c]:6.0f} ms ({TRIALS} trials)")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for c, colour in zip(COHERENCES, plt.cm.viridis(np.linspace(0, 0.9, len(COHERENCES)))):
    k = int(np.flatnonzero(cs_np == c)[0])
    axes[0].plot(t_blocks, r1[k], color=colour, label=f"E1, c = {100 * c:g} %")
    axes[0].plot(t_blocks, r2[k], color=colour, ls="--")
axes[0].axvline(STIM_ON, color="k", lw=0.5)
axes[0].axhline(THRESHOLD, color="grey", lw=0.5, ls=":")
axes[0].set(xlabel="time [ms]", ylabel="rate [Hz]", title="E1 (solid) vs E2 (dashed)")
axes[0].legend(fontsize=7)
axes[1].plot([100 * c for c in COHERENCES], [100 * correct[c] for c in COHERENCES], "o-")
axes[1].set(xscale="symlog", xlabel="coherence [%]", ylabel="% correct", ylim=(0, 105),
            title="psychometric curve")
axes[2].plot([100 * c for c in COHERENCES], [mean_rt[c] for c in COHERENCES], "o-")
axes[2].set(xscale="symlog", xlabel="coherence [%]", ylabel="reaction time [ms]",
            title="chronometric curve")
fig.tight_layout()
fig.savefig(out / "wang2002_decision.png", dpi=110)

# %% [markdown]
# ## Reproduced vs published
#
# Published values are Wang (2002): spontaneous rates (pyramidal cells about 2 Hz,
# interneurons higher), winner-take-all with the winner at tens of Hz, and the
# psychometric curve (~100 % correct at 51.2 %, rising from chance at 0 %).
# With a few trials per point the quick run checks these loosely: the curve must rise
# from its lowest to its highest coherence and may dip between neighbours only within
# binomial noise.

# %%
table = Comparison("Wang 2002 decision network",
                   f"N_E = {N_E}, N_I = {N_I}, {TRIALS} trials per coherence, dt = {DT} ms")
table.within("spontaneous E rate [Hz]", spont_e, 0.5, 5.0, fmt=".2f", source="Wang 2002, spontaneous state")
table.within("spontaneous I rate [Hz]", spont_i, 4.0, 20.0, fmt=".2f", source="Wang 2002, spontaneous state")
table.within("winner rate at 51.2 %, last 200 ms [Hz]", winner_rate, 15.0, 60.0, fmt=".1f",
             source="Wang 2002 (tens of Hz)")
table.holds("loser suppressed at 51.2 %", f"{loser_rate:.1f} Hz", "< winner / 2",
            loser_rate < 0.5 * winner_rate, source="winner-take-all, Wang 2002")
table.within("% correct at 51.2 %", 100 * correct[0.512], 75.0, 100.0, fmt=".0f",
             source="Wang 2002 psychometric curve")
ordered = [correct[c] for c in COHERENCES]
# Binomial noise: the difference of two fractions of TRIALS trials has a standard error
# of at most sqrt(2 * 0.25 / TRIALS) (18 % at 16 trials): a step may fall by two of
# them, and the ends (50 % and ~100 % in the paper) must differ by more than one.
se = np.sqrt(0.5 / TRIALS)
slack = 2.0 * se
table.holds("% correct rises with coherence",
            " ".join(f"{100 * x:.0f}" for x in ordered), f"monotone +- {100 * slack:.0f} %",
            all(b >= a - slack for a, b in zip(ordered, ordered[1:]))
            and ordered[-1] - ordered[0] > se,
            source="Wang 2002 psychometric curve")
table.shown("% correct at 0 %", f"{100 * correct[0.0]:.0f}", "50", f"{TRIALS} trials: too few")
table.shown("mean RT at the lowest / highest coherence [ms]",
            f"{mean_rt[COHERENCES[0]]:.0f} / {mean_rt[COHERENCES[-1]]:.0f}",
            "falls with coherence", "few trials; shown only")
print(f"wall time {time.perf_counter() - t_wall:.0f} s")
table.finish()
