# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The Izhikevich (2003) cell gallery
#
# Izhikevich's simple model
#
# $$\dot v = 0.04 v^2 + 5 v + 140 - u + I, \qquad \dot u = a (b v - u), \qquad
# v \ge 30\ \text{mV} \Rightarrow v \leftarrow c,\ u \leftarrow u + d$$
#
# reproduces the main cortical and thalamic firing patterns with four parameters
# (Izhikevich 2003, IEEE Trans. Neural Netw. 14:1569, Fig. 2). This tutorial simulates
# the seven cells of that figure with `nj.simulate` and compares spike counts with the
# reference values of REFERENCES.md section 2:
#
# - RS, IB, CH, FS and LTS under a step I = 10 from v = -65 mV, u = b v;
# - TC released from a hyperpolarising hold (I = -10 until 200 ms, then 0): the
#   rebound burst;
# - RZ at I = 0 kicked by brief pulses: damped subthreshold ringing at its resonance
#   (24.4 Hz), and a spike only when a second pulse arrives one resonance period later.
#
# All eight neurons (two RZ copies, one per pulse protocol) sit in **one** population
# with per-neuron parameters and a per-neuron input waveform, so a single compiled
# `lax.scan` runs the whole figure.

# %%
import argparse
import time
from pathlib import Path

import jax

# Counts are compared with an ODE limit to ±1 spike; float64 keeps round-off out of it.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import neurojax as nj
# The shared reproduced-vs-published table (tutorials/_compare.py).
from _compare import Comparison

parser = argparse.ArgumentParser(description="Izhikevich (2003) Fig. 2 cell gallery")
parser.add_argument("--quick", action="store_true", help="dt = 0.1 ms instead of 0.01 ms")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()  # known args only: also runs inside a notebook
here = Path(globals().get("__file__", "izhikevich_gallery.py")).resolve().parent
out = args.out if args.out is not None else here / "figures"
out.mkdir(parents=True, exist_ok=True)

# Forward Euler converges to the ODE: at dt = 0.01 ms the counts are within ±1 of the
# ODE limit (REFERENCES.md §2). --quick uses dt = 0.1 ms over the same 1000 ms, which
# REFERENCES.md also tabulates ("Euler 0.1 ms"), so both runs have a published target.
DT = 0.1 if args.quick else 0.01
T = 1000.0  # [ms]
t_wall = time.perf_counter()

# %% [markdown]
# ## Cells and protocols
#
# `Izhikevich.preset(name)` holds the published (a, b, c, d). Stacking them gives
# per-neuron parameter arrays of shape (n,). The library's drive is a current [pA];
# with the default `c_m = 1` pF, 10 pA is the paper's I = 10.

# %%
TONIC = ["RS", "IB", "CH", "FS", "LTS"]
CELLS = TONIC + ["TC", "RZ", "RZ"]
presets = [nj.neurons.Izhikevich.preset(c) for c in CELLS]
# TC starts hyperpolarised (REFERENCES.md §2: hold at I = -10 from v0 = -87 mV); RZ
# starts at its resting point v = -62.5 mV, where u = b v makes (v, u) a fixed point.
v0 = [-65.0] * len(TONIC) + [-87.0, -62.5, -62.5]
cells = nj.neurons.Izhikevich(
    **{p: jnp.array([float(getattr(x, p)) for x in presets]) for p in "abcd"},
    v0=jnp.array(v0),
)

# RZ: linearising at rest gives eigenvalues -0.05 ± 0.153i /ms, i.e. a period of
# 2π/0.153 = 41 ms. A pulse of 2.25 for 1 ms is subthreshold on its own; a second one
# a full period later adds to the ringing and fires the cell, one half a period later
# meets the trough and does not. (We found this for amplitudes 2.08-2.44 at
# dt = 0.01 ms; 2.25 is the middle of that window.)
PULSE, WIDTH = 2.25, 1.0  # [pA] = paper units, [ms]
P_RES, P_OFF = 41.0, 20.5  # [ms]
protocols = [[(0.0, T, 10.0)] for _ in TONIC] + [
    [(0.0, 200.0, -10.0)],  # TC: hyperpolarising hold, released at 200 ms
    [(t, t + WIDTH, PULSE) for t in (100.0, 500.0, 500.0 + P_RES)],
    [(t, t + WIDTH, PULSE) for t in (100.0, 500.0, 500.0 + P_OFF)],
]


def piecewise_constant(segments, dt):
    """`Waveform` samples for per-neuron piecewise-constant inputs.

    `segments[j]` lists `(t_on, t_off, amplitude)` of neuron j. The waveform is read at
    the start of each step and interpolated linearly, so every edge gets a sample half
    a step before it: steps starting before the edge see the old value, the others the
    new one."""
    edges = {e for segs in segments for s in segs for e in s[:2]}
    times = np.array(sorted({0.0} | edges | {e - dt / 2 for e in edges if e > 0}))
    values = np.zeros((times.size, len(segments)))
    for j, segs in enumerate(segments):
        for t_on, t_off, amp in segs:
            values[(times >= t_on) & (times < t_off), j] += amp
    return times, values


times, values = piecewise_constant(protocols, DT)
net = nj.Network(
    [nj.Population("cells", len(CELLS), cells)],
    inputs=[nj.inputs.Waveform("cells", times=times, values=values)],
)
model = net.build(jax.random.key(0))
res = nj.simulate(model, T, DT, key=jax.random.key(1),
                  record=nj.Record(spikes=["cells"], v={"cells": None}))

spikes = np.asarray(res.spikes["cells"])  # (steps, n) booleans
v = np.asarray(res.variables["cells.v"])  # (steps, n) [mV], after each step
t = res.times()  # [ms], end of each step
counts = spikes.sum(axis=0)

# %% [markdown]
# ## The paper's own numerics
#
# The figure in the paper was drawn with a 1 ms step: two Euler half-steps for v and u
# updated with the new v (`Izhikevich2003Scheme`). It does not converge to the ODE, so
# its counts are compared with its own published column only.

# %%
paper_cells = nj.neurons.Izhikevich(
    **{p: jnp.array([float(getattr(x, p)) for x in presets[:5]]) for p in "abcd"},
    integrator=nj.neurons.Izhikevich2003Scheme(),
)
paper_net = nj.Network([nj.Population("cells", 5, paper_cells)],
                       inputs=[nj.inputs.Constant("cells", amplitude=10.0)])
paper = nj.simulate(paper_net.build(jax.random.key(0)), T, 1.0, key=jax.random.key(1))
paper_counts = np.asarray(paper.spikes["cells"]).sum(axis=0)

# %% [markdown]
# ## TC rebound and RZ resonance

# %%
i_tc, i_res, i_off = 5, 6, 7
tc_times = t[spikes[:, i_tc]]
tc_rebound = tc_times[(tc_times > 200.0) & (tc_times < 400.0)]
tc_rest = v[-1, i_tc]  # 800 ms after the burst, back at rest at I = 0

# Ringing after the first pulse: a damped sinusoid around rest has its extrema exactly
# half a period apart and their distance from rest decays as exp(-σ t).
rz_rest = v[int(round(99.0 / DT)), i_res]
window = (t > 110.0) & (t < 400.0)
dev = v[window, i_res] - rz_rest
tw = t[window]
ext = np.nonzero(np.diff(np.sign(np.diff(dev))) != 0)[0] + 1
half_period = np.polyfit(np.arange(ext.size), tw[ext], 1)[0]  # [ms]
rz_freq = 1e3 / (2 * half_period)  # [Hz]
rz_damping = -np.polyfit(tw[ext], np.log(np.abs(dev[ext])), 1)[0]  # [1/ms]
rz_spikes = [t[spikes[:, i]] for i in (i_res, i_off)]

# %% [markdown]
# ## Figure
#
# The Euler step resets v within the step that crosses 30 mV, so recorded traces never
# show the peak; as in the paper's code, spikes are drawn up to v = 30 mV.

# %%
v_plot = np.where(spikes, 30.0, v)
views = {c: (0.0, 300.0) for c in TONIC}
views.update(TC=(150.0, 350.0), RZ=(50.0, 650.0))
fig, axes = plt.subplots(4, 2, figsize=(10, 9))
for ax, name in zip(axes.ravel(), TONIC + ["TC", "RZ"]):
    lo, hi = views[name]
    sel = (t >= lo) & (t <= hi)
    if name == "RZ":
        for i, col, gap in ((i_res, "C0", P_RES), (i_off, "C1", P_OFF)):
            ax.plot(t[sel], v_plot[sel, i], color=col, lw=0.8, label=f"pair {gap:g} ms apart")
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    else:
        i = CELLS.index(name)
        ax.plot(t[sel], v_plot[sel, i], color="k", lw=0.8)
    drive = {"TC": "I = -10 → 0 at 200 ms", "RZ": "I = 0 + 1 ms pulses"}.get(name, "I = 10")
    ax.set_title(f"{name}   ({drive})", fontsize=9, loc="left")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-85.0, 35.0)
# The last panel zooms on the ringing after the first pulse, with the fitted envelope.
ax = axes[-1, -1]
zoom = (t >= 100.0) & (t <= 300.0)
ax.plot(t[zoom], v[zoom, i_res] - rz_rest, color="C0", lw=0.8)
envelope = np.abs(dev[ext[0]]) * np.exp(-rz_damping * (t[zoom] - tw[ext[0]]))
ax.plot(t[zoom], envelope, "k--", lw=0.6, label=f"{rz_freq:.1f} Hz, decay {rz_damping:.3f}/ms")
ax.plot(t[zoom], -envelope, "k--", lw=0.6)
ax.set_ylim(-2.0, 3.0)
ax.yaxis.set_tick_params(labelleft=True)
ax.set_ylabel("v - rest [mV]")
ax.legend(loc="upper right", fontsize=7, frameon=False)
ax.set_title("RZ ringing after one subthreshold pulse", fontsize=9, loc="left")
for ax in axes[-1]:
    ax.set_xlabel("time [ms]")
for ax in axes[:, 0]:
    ax.set_ylabel("v [mV]")
fig.suptitle(f"Izhikevich (2003) Fig. 2 cells, forward Euler dt = {DT:g} ms", fontsize=11)
fig.tight_layout()
path = out / "izhikevich_gallery.png"
fig.savefig(path, dpi=110)
plt.close(fig)
print(f"figure: {path}  ({time.perf_counter() - t_wall:.1f} s)")

# %% [markdown]
# ## Reproduced vs published
#
# Reference columns (REFERENCES.md §2): the ODE limit (LSODA with event location), the
# same protocol with forward Euler at dt = 0.1 ms, and the paper's 1 ms scheme. The 1 ms
# map is ill-conditioned for FS and LTS: perturbations at round-off level move their
# counts over 59-72 and 40-50 (see `Izhikevich2003Scheme`), so only RS, IB and CH are
# expected to match it exactly in a jitted run.

# %%
ODE = dict(RS=23, IB=34, CH=87, FS=137, LTS=78)
EULER_01 = dict(RS=23, IB=34, CH=87, FS=131, LTS=77)
PAPER_1MS = dict(RS=20, IB=27, CH=43, FS=63, LTS=44)
TC_REBOUND = [207.8, 214.6, 223.6, 239.8]  # Euler 0.005 ms, REFERENCES.md §2

S2 = "REFERENCES.md §2"
mode = "--quick: dt = 0.1 ms" if args.quick else "full: dt = 0.01 ms"
table = Comparison(
    "Izhikevich (2003) IEEE TNN 14:1569, Fig. 2 -- reproduced vs published "
    "(REFERENCES.md section 2)",
    f"run: {mode}, T = {T:g} ms, forward Euler (IzhikevichEuler); published column for this "
    f"dt: {'Euler 0.1 ms' if args.quick else 'ODE limit'}")
# Counts: ±1 (REFERENCES.md §2: accurate integrators within ±1 of the ODE limit; ±1 also
# covers how a spike at the very end of the window is counted). --quick compares with the
# published Euler 0.1 ms column, the same scheme at the same step, so the same ±1 applies.
for i, c in enumerate(TONIC):
    pub = EULER_01[c] if args.quick else ODE[c]
    table.close(f"{c} spikes in 1000 ms, I = 10", counts[i], pub, atol=1, fmt="d",
                source=f"{S2} {'Euler 0.1 ms' if args.quick else 'ODE limit'} column")
SPREAD_1MS = dict(FS=(59, 72), LTS=(40, 50))  # range under round-off perturbations
for i, c in enumerate(TONIC):
    if c in SPREAD_1MS:
        # Ill-conditioned under the 1 ms map: REFERENCES.md §2 gives the range that
        # perturbations at round-off level spread the count over (published 63 / 44).
        table.within(f"{c} spikes, paper 1 ms scheme", paper_counts[i], *SPREAD_1MS[c], fmt="d",
                     source=f"{S2} published {PAPER_1MS[c]}, round-off range")
    else:
        table.close(f"{c} spikes, paper 1 ms scheme", paper_counts[i], PAPER_1MS[c], atol=1,
                    fmt="d", source=f"{S2} published 1 ms scheme, exact ±1 at the window end")
# The rebound burst: 4 spikes with Euler at 0.005 ms, a single spike under the paper's
# 1 ms scheme, so the count tells a converging integrator from the coarse map.
table.equal("TC rebound spikes after release", tc_rebound.size, len(TC_REBOUND),
            source=f"{S2} Euler 0.005 ms")
# Spike times: forward Euler's error is O(dt) and grows along the burst, as each spike
# starts from where the last one's error left it (at dt = 0.1 ms the 4th spike comes
# 8 ms late). The first spike follows the slow release from -87 mV alone; 0.5 ms at
# dt = 0.1 ms (five steps) and 0.1 ms at dt = 0.01 ms (ten steps) bound its O(dt) shift.
# The later ones are shown, and asserted only at dt = 0.01 ms, within 1 ms.
t_tol = 0.5 if args.quick else 0.1
for k, ref in enumerate(TC_REBOUND):
    x = tc_rebound[k] if k < tc_rebound.size else np.nan
    label = f"TC rebound spike {k + 1} time [ms]"
    if k == 0:
        table.close(label, x, ref, atol=t_tol, fmt=".1f", source=f"{S2} Euler 0.005 ms")
    elif args.quick:
        table.shown(label, f"{x:.1f}", f"{ref:.1f}", "O(dt) error grows along the burst")
    else:
        table.close(label, x, ref, atol=1.0, fmt=".1f", source=f"{S2} Euler 0.005 ms")
# The fixed point (REFERENCES.md: -64.41 mV) in closed form: u = b v and
# 0.04 v² + (5 − b) v + 140 = 0; forward Euler keeps it exactly, and 800 ms after the
# burst (decay 0.087 /ms) the cell has settled to far below 1e-3 mV.
b_tc = float(presets[i_tc].b)
tc_rest_exact = (-(5.0 - b_tc) - np.sqrt((5.0 - b_tc) ** 2 - 4 * 0.04 * 140.0)) / (2 * 0.04)
table.close("TC rest at I = 0 [mV]", tc_rest, tc_rest_exact, atol=1e-3, fmt=".4f",
            source=f"{S2} fixed point -64.41, closed form")
# Ringing after a subthreshold pulse (about 2 mV): the linearisation gives eigenvalues
# -0.05 ± 0.153i /ms. Allow 2 % on the frequency and 10 % on the decay rate for the
# quadratic term at that amplitude and forward Euler's O(dt |λ|) shift. A wrong cell
# fails: b = 0.25 instead of 0.26 already gives -0.127 ± 0.156i /ms at its rest.
table.close("RZ ringing frequency [Hz]", rz_freq, 24.4, rtol=0.02, fmt=".1f",
            source=f"{S2} Im λ / 2π")
table.close("RZ ringing decay rate [1/ms]", rz_damping, 0.050, rtol=0.10,
            source=f"{S2} -Re λ")
# REFERENCES.md §2: "a brief pulse at the right period makes it fire". Our protocol: a
# second pulse one period later fires the cell, half a period later it does not.
table.equal("RZ spikes: pair 41 / 20.5 ms apart",
            f"{rz_spikes[0].size} / {rz_spikes[1].size}", "1 / 0",
            source=f"{S2} resonance (own protocol)")
table.finish()
