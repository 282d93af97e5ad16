# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A spatial network: distance-dependent wiring, conduction delays, local activity
#
# Cortical neurons connect mostly to their neighbours, with a probability that falls
# with distance (Gaussian profiles of a few hundred µm; Rosenbaum, Smith, Kohn, Rubin &
# Doiron 2017, Nat Neurosci 20:107), and spikes travel along axons at a finite speed.
# Two consequences seen in recordings: a local stimulus evokes local activity, and
# spike-count correlations between neurons fall with the distance between them (Smith
# & Kohn 2008, J Neurosci 28:12591), while staying weak overall in an asynchronous,
# balanced state (Ecker et al. 2010; Renart et al. 2010).
#
# This tutorial builds such a network on a 1 mm × 1 mm torus:
#
# - neurons on a grid: `Population(..., space=nj.connectivity.Sheet(periodic=True))`;
# - `DistanceDependent(p, width)` projections (a cell list draws them: candidates within
#   5.7 widths only), checked against the Gaussian profile by a chi-square test;
# - delays from distance: `DistanceDelay(velocity, offset)`;
# - Dale's law declared on the populations (`sign=+1` / `-1`);
#
# then stimulates a disc of E cells and measures how rates and pairwise correlations
# depend on distance.

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
from scipy import stats

import neurojax as nj
# The shared reproduced-vs-published table (tutorials/_compare.py).
from _compare import Comparison

parser = argparse.ArgumentParser(description="Spatial network on a torus")
parser.add_argument("--quick", action="store_true", help="a shorter run")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()  # known args only: also runs inside a notebook
here = Path(globals().get("__file__", "spatial_network.py")).resolve().parent
out = args.out if args.out is not None else here / "figures"
out.mkdir(parents=True, exist_ok=True)
t_wall = time.perf_counter()

T = 1200.0 if args.quick else 4000.0  # [ms]
T0, DT, WINDOW = 200.0, 0.1, 50.0  # transient, step, counting window [ms]

# %% [markdown]
# ## The network
#
# 3600 E and 900 I LIF neurons (20 ms, threshold 15 mV above rest) on grids over the
# same torus (positions in mm). E→E and E→I: $p = 0.5$, $\sigma = 50$ µm; I→E and I→I:
# $p = 0.8$, $\sigma = 100$ µm (inhibition broader, as in Rosenbaum et al. 2017's
# stable regime); delta synapses of 0.2 mV, inhibition 5× stronger; delays
# $1\,\mathrm{ms} + d / (0.5\,\mathrm{mm/ms})$. Every neuron gets 1000 background
# Poisson sources at 6 Hz; E cells within 150 µm of the centre get 200 more at 10 Hz.

# %%
C = nj.connectivity
TORUS = C.Sheet(extent=(1.0, 1.0), periodic=True)  # [mm]
J, G = 50.0, 5.0  # [pA ms] (0.2 mV); relative inhibition
lif = nj.neurons.LIF()
start = {"v": nj.distributions.Uniform(-70.0, -56.0)}
E = nj.Population("E", 3600, lif, space=TORUS, initial=start, sign=+1)
I = nj.Population("I", 900, lif, space=TORUS, initial=start, sign=-1)
delay = C.DistanceDelay(velocity=0.5, offset=1.0)
projections = [
    nj.Projection("E", ["E", "I"], C.DistanceDependent(p=0.5, width=0.05), weight=J, delay=delay),
    nj.Projection("I", ["E", "I"], C.DistanceDependent(p=0.8, width=0.1), weight=-G * J, delay=delay),
]
xy = E.positions  # (3600, 2) [mm]
to_centre = np.sqrt(np.sum((xy - 0.5) ** 2, axis=1))  # no wrap needed from the centre
stimulated = to_centre < 0.15
inputs = [nj.inputs.Poisson("E", rate=6.0, n_sources=1000, weight=J),
          nj.inputs.Poisson("I", rate=6.0, n_sources=1000, weight=J),
          nj.inputs.Poisson("E", rate=jnp.asarray(np.where(stimulated, 10.0, 0.0)), n_sources=200,
                            weight=J)]
t0 = time.perf_counter()
model = nj.Network([E, I], projections, inputs).build(jax.random.key(0))
build_s = time.perf_counter() - t0

# %% [markdown]
# The E→E synapses as drawn: connected fraction per distance bin against
# $p \exp(-d^2 / 2\sigma^2)$ (minimum image on the torus), and the delays against
# $1 + d / 0.5$ ms.

# %%
ee = model.projections[0].weights
targets = np.asarray(ee.targets)
pre, col = np.nonzero(targets < E.n)
post = targets[pre, col]
raw = xy[:, None, :] - xy[None, :, :]
dist = np.sqrt(np.sum((raw - np.round(raw)) ** 2, axis=-1))  # (post, pre) [mm]
prob = 0.5 * np.exp(-0.5 * (dist / 0.05) ** 2)
np.fill_diagonal(prob, 0.0)
edges = np.linspace(0.0, 0.2, 11)
b = np.digitize(dist, edges) - 1
inside = (b >= 0) & (b < 10)
observed = np.bincount(b[post, pre][inside[post, pre]], minlength=10)
expected = np.bincount(b[inside], weights=prob[inside], minlength=10)
variance = np.bincount(b[inside], weights=(prob * (1 - prob))[inside], minlength=10)
keep = variance > 5
chi2_p = stats.chi2.sf(np.sum((observed - expected)[keep] ** 2 / variance[keep]), keep.sum())
in_degree = np.bincount(post, minlength=E.n)
delay_error = np.max(np.abs(np.asarray(ee.delays)[pre, col] - (1.0 + dist[post, pre] / 0.5)))
print(f"built in {build_s:.1f} s; E->E in-degree {in_degree.mean():.2f} "
      f"(expected {prob.sum(1).mean():.2f}); chi-square p {chi2_p:.3f}")

# %% [markdown]
# ## Activity: rates and correlations against distance

# %%
t0 = time.perf_counter()
res = nj.simulate(model, T, DT, key=jax.random.key(1), record=nj.Record(spikes=["E"]))
spikes = np.asarray(res.spikes["E"])[round(T0 / DT):]
print(f"{T:g} ms simulated in {time.perf_counter() - t0:.1f} s")
rates = spikes.sum(0) / ((T - T0) * 1e-3)  # [Hz]
rate_near, rate_far = rates[stimulated].mean(), rates[to_centre > 0.3].mean()
radial_edges = np.linspace(0.0, 0.5, 11)
radial = [rates[(to_centre >= lo) & (to_centre < hi)].mean()
          for lo, hi in zip(radial_edges[:-1], radial_edges[1:])]

# Spike counts in 50 ms windows of 800 active, unstimulated neurons; pairs binned by
# distance.
counts = spikes.reshape(-1, round(WINDOW / DT), E.n).sum(1)
varies = counts.std(0) > 0  # a correlation needs a count that varies
sel = np.nonzero((rates > 1.0) & (to_centre > 0.3) & varies)[0][:800]
corr = np.corrcoef(counts[:, sel].T)
iu = np.triu_indices(len(sel), 1)
pair_d, pair_r = dist[sel][:, sel][iu], corr[iu]
corr_edges = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5]
corr_bins = []
for lo, hi in zip(corr_edges[:-1], corr_edges[1:]):
    r = pair_r[(pair_d >= lo) & (pair_d < hi)]
    corr_bins.append((0.5 * (lo + hi), r.mean(), r.std() / np.sqrt(r.size)))
near, far = corr_bins[0], corr_bins[-1]
print("correlation vs distance:", [(round(c, 3), round(m, 4)) for c, m, _ in corr_bins])

# %% [markdown]
# ## Figure

# %%
fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
mid = 0.5 * (edges[1:] + edges[:-1])
n_pairs = np.bincount(b[inside], minlength=10)
ax[0].plot(1e3 * mid, observed / n_pairs, "o", label="drawn")
ax[0].plot(1e3 * mid, expected / n_pairs, "k-", label="p exp(-d^2 / 2 sigma^2)")
ax[0].set(xlabel="distance [um]", ylabel="connection probability", title="E->E wiring on the torus")
ax[0].legend()
im = ax[1].imshow(rates.reshape(60, 60).T, origin="lower", extent=(0, 1, 0, 1), cmap="magma")
fig.colorbar(im, ax=ax[1], label="rate [Hz]")
ax[1].set(xlabel="x [mm]", ylabel="y [mm]", title="E rates, disc stimulated")
c_mid, c_mean, c_se = map(np.asarray, zip(*corr_bins))
ax[2].errorbar(1e3 * c_mid, c_mean, yerr=2 * c_se, fmt="o-")
ax[2].axhline(0.0, color="gray", lw=0.8)
ax[2].set(xlabel="distance [um]", ylabel="spike-count correlation (50 ms)", title="correlation vs distance")
fig.tight_layout()
fig.savefig(out / "spatial_network.png", dpi=120)

# %% [markdown]
# ## Reproduced vs published

# %%
table = Comparison("Spatial network on a torus (distance-dependent wiring and delays)",
                   f"3600 E + 900 I LIF, {T:g} ms (first {T0:g} ms left out), dt = {DT} ms")
# A correct sampler gives p > 1e-3 in 999 of 1000 draws.
table.holds("E->E wiring vs Gaussian profile (chi-square p)", f"{chi2_p:.3f}", "> 0.001",
            chi2_p > 1e-3, source="Rosenbaum et al. 2017 profile, 10 bins to 200 um")
# 3600 in-degrees, each Bernoulli-sum variance ~28: the mean's s.e. is 0.09 (0.3 %); 1 %.
table.close("E->E mean in-degree", in_degree.mean(), prob.sum(1).mean(), rtol=0.01, fmt=".2f",
            source="sum of p f(d) over partners")
# Delays are stored in single precision: 1e-6 ms is 8x the rounding of a 2 ms delay.
table.close("delay - (1 ms + d / 0.5 mm/ms), max [ms]", delay_error, 0.0, atol=1e-6, fmt=".1e",
            source="DistanceDelay definition")
table.holds("stimulated disc vs far rate [Hz]", f"{rate_near:.1f} vs {rate_far:.1f}", "near > 2 x far",
            rate_near > 2 * rate_far, source="local stimulus, local response")
table.holds("correlation, < 50 um vs 300-500 um",
            f"{near[1]:.4f} vs {far[1]:.4f}", "falls with distance",
            near[1] - far[1] > 4 * np.hypot(near[2], far[2]),
            source="Smith & Kohn 2008 (difference > 4 s.e.)")
table.within("mean spike-count correlation, all pairs", pair_r.mean(), -0.05, 0.05, fmt=".4f",
             source="weak in the asynchronous state (Ecker 2010; Renart 2010)")
table.shown("build time of the network [s]", f"{build_s:.1f}", "-", "machine-dependent")
print(f"wall time {time.perf_counter() - t_wall:.1f} s")
table.finish()
