# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Working memory held by synaptic facilitation (Mongillo, Barak & Tsodyks 2008)
#
# Mongillo, Barak & Tsodyks (2008, Science 319:1543) proposed that an item is held in
# working memory not by persistent spiking but by the facilitation of the recurrent
# synapses of the neurons that coded for it: after a cue, the utilisation $u$ of those
# synapses stays high for about $\tau_F$ (1.5 s) while the resources $x$ recover within
# $\tau_D$ (0.2 s), so the group's synapses are transiently stronger and the group can
# be reactivated by a non-specific input. This tutorial reproduces (REFERENCES.md §16):
#
# 1. **The synaptic memory trace**: the Tsodyks–Markram state right after a 350 ms
#    cue train at 20 and 40 Hz (U = 0.2, $\tau_D$ = 0.2 s, $\tau_F$ = 1.5 s) and the
#    efficacy $u^+x^-$ of a probe spike after 0.2 / 1 / 2 s of silence.
# 2. **The network**: LIF excitatory and inhibitory populations (the parameters of
#    §16, scaled down, see below), five selective groups of excitatory neurons with
#    potentiated, facilitating recurrent synapses (`nj.plasticity.TsodyksMarkram` on
#    E→E), a 350 ms cue to one group, a delay with the group at low rate, and a
#    non-specific 250 ms readout signal to all excitatory neurons that reactivates the
#    cued group but not the others.

# %%
import argparse
import time
from pathlib import Path

import jax

# The synaptic numbers of §16 are compared at 1e-6 and the event recursion at 1e-12.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import neurojax as nj
# The shared reproduced-vs-published table (tutorials/_compare.py).
from _compare import Comparison

parser = argparse.ArgumentParser(description="Mongillo, Barak & Tsodyks 2008 working memory")
parser.add_argument("--quick", action="store_true",
                    help="one seed instead of four")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()  # known args only: also runs inside a notebook
here = Path(globals().get("__file__", "mongillo2008_working_memory.py")).resolve().parent
out = args.out if args.out is not None else here / "figures"
out.mkdir(parents=True, exist_ok=True)
t_wall = time.perf_counter()

U, TAU_D, TAU_F = 0.2, 200.0, 1500.0  # [1], [ms], [ms]; REFERENCES.md §16

# %% [markdown]
# ## 1. The synaptic memory trace
#
# Six presynaptic `SpikeTrains` neurons: three replay the 20 Hz cue (7 spikes, 350 ms)
# and three the 40 Hz cue (14 spikes), each followed by one probe spike 200 ms, 1 s or
# 2 s after the last cue spike. Each drives one subthreshold LIF neuron through a
# delta synapse with weight $C_m$ [pA·ms], so the membrane potential jumps by the
# efficacy $u^+x^-$ [mV] at every arrival; with the leak integrated exactly the jump
# in step $k$ is $v_{k+1} - v_k e^{-dt/\tau_m}$. The state $(u, x)$ right after the
# cue is read from `res.state.plastic` of a run that stops after the cue and is then
# continued (`state=`) to the probes.
#
# A note on §16's table: its $(u, x)$ right after the cue are those of this rule ($u$
# decays to 0 between spikes, NEST's `tsodyks2_synapse`; MBT's equations relax $u$ to
# U instead, which gives u = 0.790 after the 20 Hz cue), but its probe efficacies
# (0.487 / 0.577 / 0.473 and 0.544 / 0.645 / 0.509) are reproduced only by letting $u$
# relax to U during the silence (computed by hand: 0.4867 / 0.5771 / 0.4733 and
# 0.5436 / 0.6454 / 0.5087). The two halves of the table use different conventions,
# so the probes are checked against the rule's own event recursion (to 1e-10) and
# §16's probe values are shown, not asserted.

# %%
DT_SYN = 0.5  # [ms]: every spike time below is on the grid
GAPS = (200.0, 1000.0, 2000.0)  # [ms] of silence before the probe
CUES = {20.0: 7, 40.0: 14}  # rate [Hz]: spikes in 350 ms
T_CUE_SYN, T_SYN = 400.0, 2800.0  # [ms]
steps_syn = int(T_SYN / DT_SYN)
raster = np.zeros((steps_syn, 6), np.uint8)
last_cue = {}
for i, (rate, n_spk) in enumerate(CUES.items()):
    times = np.arange(n_spk) * 1000.0 / rate  # [ms]
    last_cue[rate] = times[-1]
    for j, gap in enumerate(GAPS):
        for t in (*times, times[-1] + gap):
            raster[int(round(t / DT_SYN)), 3 * i + j] = 1
C_M = 15.0  # [pF]; g_l = 1 nS: tau_m = 15 ms
probe_lif = nj.neurons.LIF(c_m=C_M, g_l=1.0, e_l=0.0, v_th=1e6, v_reset=0.0, t_ref=0.0)
syn_model = nj.Network(
    [nj.Population("pre", 6, nj.inputs.SpikeTrains(raster)),
     nj.Population("post", 6, probe_lif)],
    [nj.Projection("pre", "post", nj.connectivity.FromMatrix(np.eye(6)), weight=C_M,
                   layout=nj.connectivity.Dense(),
                   plasticity=nj.plasticity.TsodyksMarkram(U=U, tau_d=TAU_D, tau_f=TAU_F))],
).build(jax.random.key(0))
rec_syn = nj.Record(spikes=(), v={"post": None})
cue_run = nj.simulate(syn_model, T_CUE_SYN, DT_SYN, key=jax.random.key(1), record=rec_syn)
after_cue = cue_run.state.plastic[0]  # u+, x+ just after each neuron's last (cue) spike
probe_run = nj.simulate(syn_model, T_SYN - T_CUE_SYN, DT_SYN, state=cue_run.state,
                        record=rec_syn)
v = np.concatenate([np.zeros((1, 6)), np.asarray(cue_run.variables["post.v"]),
                    np.asarray(probe_run.variables["post.v"])])
jumps = v[1:] - v[:-1] * np.exp(-DT_SYN / (C_M / 1.0))  # [mV] = efficacy


def recursion(rate, n_spk, gap):
    """The rule's event recursion (NEST tsodyks2_synapse, u decays to 0 between
    spikes): (u+, x+) after the cue and the probe's efficacy u+ x-."""
    isi = 1000.0 / rate
    u, x = 0.0, 1.0
    for k in range(n_spk):
        if k:
            u, x = u * np.exp(-isi / TAU_F), 1 + (x - 1) * np.exp(-isi / TAU_D)
        u = u + U * (1 - u)
        x = x - u * x
    u_m, x_m = u * np.exp(-gap / TAU_F), 1 + (x - 1) * np.exp(-gap / TAU_D)
    return u, x, (u_m + U * (1 - u_m)) * x_m


syn = {}  # rate: (u after cue, x after cue, [probe efficacies], [recursion])
for i, (rate, n_spk) in enumerate(CUES.items()):
    probes = [jumps[int(round((last_cue[rate] + g) / DT_SYN)) + 1, 3 * i + j]  # arrival: next step
              for j, g in enumerate(GAPS)]
    syn[rate] = (float(after_cue.u[3 * i]), float(after_cue.x[3 * i]), probes,
                 [recursion(rate, n_spk, g)[2] for g in GAPS])
    print(f"{rate:g} Hz cue: u = {syn[rate][0]:.4f}, x = {syn[rate][1]:.4f}; probe efficacy "
          + ", ".join(f"{e:.4f}" for e in probes) + f" after {GAPS} ms")
rec_err = max(abs(p / r - 1) for s in syn.values() for p, r in zip(s[2], s[3]))
first_eff = jumps[1, 0]  # the first cue spike of a rested synapse: efficacy U

# %% [markdown]
# ## 2. The network
#
# REFERENCES.md §16 (the parameters of the re-implementation by Tiddia et al., stated
# there to follow MBT 2008): LIF neurons with $\tau$ = 15 ms (E) and 10 ms (I),
# threshold 20 mV, reset 16 mV (E) and 13 mV (I), refractory 2 ms; PSPs $J_{IE}$ =
# 0.135, $J_{EI}$ = 0.25, $J_{II}$ = 0.20 mV; E→E $J_b$ = 0.10 mV, $J_p$ = 0.45 mV
# within a selective group and on a fraction $\gamma_0$ = 0.1 of the
# non-selective→selective synapses; connection probability c = 0.2; p = 5 selective
# groups of f = 0.1 of the excitatory neurons; delays uniform in (0.1, 1) ms; external
# input of mean $\mu_E$, $\mu_I$ = 20.5 mV with Gaussian fluctuations of σ = 1 mV. Only
# E→E synapses are short-term plastic: the PSP of a spike is $J\,u^+x^-$.
#
# Choices of this tutorial (not from §16):
#
# * **Size**: $N_E$ = 8000 s, $N_I$ = 2000 s with s = 0.2, and every $J$ multiplied by
#   1/s, which keeps the mean recurrent input (c N J) of the full network; the
#   fluctuations of the recurrent input grow by $1/\sqrt{s}$. The regime depends on s at
#   fixed $\mu_E$: at s = 0.5 the cued group kept firing at ~8 Hz through the delay (closer
#   to persistent activity), so both modes use s = 0.2: `--quick` one seed, the full
#   run four.
# * **Units**: $g_L$ = 1 nS, so a current in pA is a potential in mV, $C_m = \tau$
#   [pF], and a delta synapse of weight $J C_m$ [pA·ms] makes a jump of $J$ mV.
# * **Noise**: Ornstein–Uhlenbeck current with σ = 1 mV and a 1 ms correlation time;
#   $\mu_E$ = 23.7 mV (§16: Tiddia's value for the bistable regime with population
#   spikes); dt = 0.2 ms, delays
#   uniform in (0.2, 1) ms (at least one step).
# * **Rule convention**: `TsodyksMarkram` is NEST's `tsodyks2_synapse` ($u$ decays to
#   0 between spikes, to U in MBT's equations); this changes the resting efficacy of
#   the first spike of a burst by nothing (both are U) and the facilitated efficacy
#   a few tens of percent (part 1).
# * **Protocol**: cue (external input × 1.15) to group 0 from 300 to 650 ms; readout
#   (× 1.05 to every excitatory neuron) from 1600 to 1850 ms, 950 ms after the cue.
#
# The run is continued in 50 ms chunks (`state=res.state`, one compilation): after
# each chunk the current $u(t)$, $x(t)$ of every presynaptic neuron are computed from
# the rule state in `res.state.plastic` (the values just after each neuron's last
# spike and the step of that spike, decayed in closed form to the end of the chunk).

# %%
SCALE = 0.2
SEEDS = [0] if args.quick else [0, 1, 2, 3]
N_E, N_I = int(8000 * SCALE), int(2000 * SCALE)
C, P, F, GAMMA0 = 0.2, 5, 0.1, 0.10
J_IE, J_EI, J_II, J_B, J_P = 0.135, 0.25, 0.20, 0.10, 0.45  # [mV]
MU_E, MU_I, SIGMA = 23.7, 20.5, 1.0  # [mV]
TAU_E, TAU_I = 15.0, 10.0  # [ms]
DT, CHUNK, T_RUN = 0.2, 50.0, 2500.0  # [ms]
CUE_ON, CUE_LEN, READ_ON, READ_LEN = 300.0, 350.0, 1600.0, 250.0  # [ms]
n_sel = int(F * N_E)
group = np.full(N_E, -1)  # -1: non-selective
for g in range(P):
    group[g * n_sel:(g + 1) * n_sel] = g


def build(seed):
    """The network with its E->E matrix drawn from `seed` (numpy) and built from it."""
    rng = np.random.default_rng(seed)
    exists = rng.random((N_E, N_E)) < C  # (post, pre)
    np.fill_diagonal(exists, False)
    J = np.full((N_E, N_E), J_B)
    J[(group[:, None] == group[None, :]) & (group[:, None] >= 0)] = J_P
    ns_to_s = (group[:, None] >= 0) & (group[None, :] < 0)
    J[ns_to_s & (rng.random((N_E, N_E)) < GAMMA0)] = J_P
    w_ee = np.where(exists, J / SCALE * TAU_E, 0.0)  # [pA ms] = [mV] [pF], C_m = tau
    eps = 1e-3  # [ms]: steps of the Waveform (interpolated between samples)
    times = np.array([0.0, CUE_ON - eps, CUE_ON, CUE_ON + CUE_LEN - eps, CUE_ON + CUE_LEN,
                      READ_ON - eps, READ_ON, READ_ON + READ_LEN - eps, READ_ON + READ_LEN])
    extra = np.zeros((times.size, N_E))  # [pA] added to the external mean
    extra[2:4, group == 0] = 0.15 * MU_E  # cue: x 1.15 to group 0
    extra[6:8, :] = 0.05 * MU_E  # readout: x 1.05 to all E
    delay = nj.Uniform(0.2, 1.0)
    lif_e = nj.neurons.LIF(c_m=TAU_E, g_l=1.0, e_l=0.0, v_th=20.0, v_reset=16.0, t_ref=2.0)
    lif_i = nj.neurons.LIF(c_m=TAU_I, g_l=1.0, e_l=0.0, v_th=20.0, v_reset=13.0, t_ref=2.0)
    net = nj.Network(
        [nj.Population("E", N_E, lif_e, initial={"v": nj.Uniform(10.0, 20.0)}, sign=1),
         nj.Population("I", N_I, lif_i, initial={"v": nj.Uniform(10.0, 20.0)}, sign=-1)],
        [nj.Projection("E", "E", nj.connectivity.FromMatrix(w_ee), delay=delay,
                       plasticity=nj.plasticity.TsodyksMarkram(U=U, tau_d=TAU_D, tau_f=TAU_F)),
         nj.Projection("E", "I", nj.connectivity.FixedProbability(C),
                       weight=J_IE / SCALE * TAU_I, delay=delay),
         nj.Projection("I", "E", nj.connectivity.FixedProbability(C),
                       weight=-J_EI / SCALE * TAU_E, delay=delay),
         nj.Projection("I", "I", nj.connectivity.FixedProbability(C),
                       weight=-J_II / SCALE * TAU_I, delay=delay)],
        [nj.inputs.OrnsteinUhlenbeck("E", mean=MU_E, sigma=SIGMA, tau=1.0),
         nj.inputs.OrnsteinUhlenbeck("I", mean=MU_I, sigma=SIGMA, tau=1.0),
         nj.inputs.Waveform("E", times=times, values=extra)])
    return net.build(jax.random.key(seed))


def run(seed):
    """Spikes of E (steps, N_E) and the current u, x of every E neuron's synapses at
    the end of each chunk (chunks, N_E)."""
    model = build(seed)
    record = nj.Record(spikes=["E"])
    state, key = None, jax.random.key(100 + seed)
    spikes, us, xs = [], [], []
    for _ in range(int(T_RUN / CHUNK)):
        key, sub = jax.random.split(key)
        res = nj.simulate(model, CHUNK, DT, key=sub, state=state, record=record)
        state = res.state
        tm = state.plastic[0]
        since = (tm.step - tm.last) * DT  # [ms] since each neuron's last spike
        us.append(np.asarray(tm.u * jnp.exp(-since / TAU_F)))
        xs.append(np.asarray(1.0 + (tm.x - 1.0) * jnp.exp(-since / TAU_D)))
        spikes.append(np.asarray(res.spikes["E"]))
    return np.concatenate(spikes), np.array(us), np.array(xs)


t0 = time.perf_counter()
runs = [run(s) for s in SEEDS]
t_net = time.perf_counter() - t0
print(f"network: N_E = {N_E}, N_I = {N_I}, {len(SEEDS)} x {T_RUN / 1000:g} s in {t_net:.1f} s")

# %% [markdown]
# Measures, per seed: group rates [Hz] in 10 ms bins; the mean $u$ of the cued group
# and of the other selective groups at the start of the readout (950 ms after the cue);
# the rate of the cued group and of the other groups during the readout relative to
# the 250 ms before it; and the intervals between the cued group's reactivations in
# the delay (10 ms bins above 10 Hz, about 10x the other groups' rate, separated by at
# least 50 ms).

# %%
BIN = 10.0  # [ms]
t_chunk = (np.arange(int(T_RUN / CHUNK)) + 1) * CHUNK  # chunk ends [ms]
t_bin = (np.arange(int(T_RUN / BIN)) + 0.5) * BIN


def group_rates(spikes):
    """(groups + 1, bins) rates [Hz]: the selective groups 0..P-1, then non-selective."""
    per_bin = spikes.reshape(-1, int(BIN / DT), N_E).sum(1)  # (bins, N_E)
    rows = [per_bin[:, group == g].mean(1) for g in (*range(P), -1)]
    return np.array(rows) * 1000.0 / BIN


def window(t, lo, hi):
    return (t > lo) & (t <= hi)


stats = []
for spikes, us, xs in runs:
    r = group_rates(spikes)
    i_read = int(np.flatnonzero(t_chunk == READ_ON)[0])  # chunk ending at the readout onset
    read, before = window(t_bin, READ_ON, READ_ON + READ_LEN), window(t_bin, READ_ON - READ_LEN, READ_ON)
    delay = window(t_bin, CUE_ON + CUE_LEN, READ_ON)
    high = np.flatnonzero(delay & (r[0] > 10.0))
    events = high[np.concatenate([[True], np.diff(high) > 5])] if high.size else high
    stats.append(dict(
        rates=r, u_cued=us[:, group == 0].mean(1), u_other=us[:, (group >= 1)].mean(1),
        x_cued=xs[:, group == 0].mean(1),
        u_read_cued=us[i_read, group == 0].mean(), u_read_other=us[i_read, group >= 1].mean(),
        cue_rate=r[0, window(t_bin, CUE_ON, CUE_ON + CUE_LEN)].mean(),
        delay_rate=r[0, delay].mean(), delay_other=r[1:P, delay].mean(), spont=r[:, t_bin <= CUE_ON].mean(),
        read_gain_cued=r[0, read].mean() / max(r[0, before].mean(), 1e-9),
        read_gain_other=r[1:P, read].mean() / max(r[1:P, before].mean(), 1e-9),
        read_cued=r[0, read].mean(), read_other=r[1:P, read].mean(),
        peak_cued=r[0, read].max(), peak_other=r[1:P, read].mean(0).max(),
        intervals=np.diff(t_bin[events])))
    s = stats[-1]
    print(f"cue {s['cue_rate']:.1f} Hz, delay {s['delay_rate']:.1f} Hz, spontaneous "
          f"{s['spont']:.1f} Hz; u at readout cued {s['u_read_cued']:.3f} vs others "
          f"{s['u_read_other']:.3f}; readout rate cued {s['read_cued']:.1f} Hz "
          f"(x{s['read_gain_cued']:.2f}) vs others {s['read_other']:.1f} Hz "
          f"(x{s['read_gain_other']:.2f}); peak {s['peak_cued']:.0f} vs {s['peak_other']:.0f} Hz; reactivation intervals {s['intervals']} ms")

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 7))
ax = axes[0, 0]
for i, rate in enumerate(CUES):
    gaps = np.linspace(0.0, 2500.0, 200)
    ax.plot(gaps / 1000, [recursion(rate, CUES[rate], g)[2] for g in gaps], label=f"{rate:g} Hz cue")
    ax.plot(np.array(GAPS) / 1000, syn[rate][2], "ko", ms=4)
ax.axhline(U, color="grey", lw=0.6, ls=":")
ax.set(xlabel="silence after the cue [s]", ylabel="efficacy $u^+x^-$ of a probe spike",
       title="synaptic memory trace (dots: neurojax)")
ax.legend(fontsize=7)
spikes0, _, _ = runs[0]
ax = axes[0, 1]
show = np.concatenate([np.flatnonzero(group == g)[:40] for g in (*range(P), -1)])
tt, nn = np.nonzero(spikes0[:, show])
ax.plot(tt * DT / 1000, nn, "k.", ms=0.6)
ax.axvspan(CUE_ON / 1000, (CUE_ON + CUE_LEN) / 1000, color="tab:orange", alpha=0.2, label="cue")
ax.axvspan(READ_ON / 1000, (READ_ON + READ_LEN) / 1000, color="tab:green", alpha=0.2, label="readout")
ax.set(xlabel="time [s]", ylabel="neuron (40 per group, cued first)",
       title="raster")
ax.legend(fontsize=7, loc="upper right")
ax = axes[1, 0]
s0 = stats[0]
ax.plot(t_bin / 1000, s0["rates"][0], label="cued group")
ax.plot(t_bin / 1000, s0["rates"][1:P].mean(0), label="other selective groups")
ax.plot(t_bin / 1000, s0["rates"][P], label="non-selective", lw=0.7)
ax.set(xlabel="time [s]", ylabel="rate [Hz] (10 ms bins)", title="population rates")
ax.legend(fontsize=7)
ax = axes[1, 1]
ax.plot(t_chunk / 1000, s0["u_cued"], label="u, cued")
ax.plot(t_chunk / 1000, s0["x_cued"], label="x, cued")
ax.plot(t_chunk / 1000, s0["u_other"], label="u, other groups")
ax.set(xlabel="time [s]", ylabel="synaptic variable", ylim=(0, 1.05),
       title="E->E synaptic state (group means)")
ax.legend(fontsize=7)
fig.tight_layout()
path = out / "mongillo2008_working_memory.png"
fig.savefig(path, dpi=110)
plt.close(fig)
print(f"figure: {path}  ({time.perf_counter() - t_wall:.1f} s)")

# %% [markdown]
# ## Reproduced vs published
#
# REFERENCES.md §16. The synaptic numbers right after the cue are computed there from
# the event recursion (tolerance 1e-6, at their printed 4 decimals: ± 5e-5). The
# network results are qualitative in §16 ("test them qualitatively"): the acceptance
# bounds below are this tutorial's.

# %%
S16 = "REFERENCES.md §16"
table = Comparison(
    "Mongillo, Barak & Tsodyks 2008: working memory by synaptic facilitation -- reproduced "
    "vs published (REFERENCES.md section 16)",
    f"run: {'--quick' if args.quick else 'full'}: N_E = {N_E}, N_I = {N_I} (J x {1 / SCALE:g}), "
    f"{len(SEEDS)} seed(s) x {T_RUN / 1000:g} s, dt = {DT:g} ms; synapses dt = {DT_SYN:g} ms")
PUB_UX = {20.0: (0.7372, 0.0787), 40.0: (0.9053, 0.0123)}
PUB_EFF = {20.0: "0.487 / 0.577 / 0.473", 40.0: "0.544 / 0.645 / 0.509"}
for rate in CUES:
    table.close(f"u right after the {rate:g} Hz cue", syn[rate][0], PUB_UX[rate][0], atol=5e-5,
                fmt=".4f", source=f"{S16} table (4 decimals)")
    table.close(f"x right after the {rate:g} Hz cue", syn[rate][1], PUB_UX[rate][1], atol=5e-5,
                fmt=".4f", source=f"{S16} table (4 decimals)")
# The potential is a float64 linear sum over a 15 ms leak: the jumps carry ~1e-13 rounding.
table.close("probe efficacy max rel. deviation from recursion", rec_err, 0.0, atol=1e-10,
            fmt=".1e", source="tsodyks2 event recursion, 6 probes")
table.close("efficacy of a rested synapse", first_eff, U, atol=1e-10, fmt=".4f", source=f"{S16} U = 0.2")
table.holds("efficacy 1 s after the 20 / 40 Hz cue",
            f"{syn[20.0][2][1]:.3f} / {syn[40.0][2][1]:.3f}", "> 2 U = 0.4",
            min(syn[20.0][2][1], syn[40.0][2][1]) > 2 * U, source=f"{S16} 'about 3x' U")
for rate in CUES:
    table.shown(f"probe efficacy after 0.2 / 1 / 2 s, {rate:g} Hz cue",
                " / ".join(f"{e:.3f}" for e in syn[rate][2]), PUB_EFF[rate],
                "§16 lets u decay to U in the silence, to 0 in the cue; the rule: to 0")
for k, s in enumerate(stats):
    tag = f"seed {SEEDS[k]}: "
    table.holds(tag + "cued group fires during the cue", f"{s['cue_rate']:.1f} Hz",
                "> 5x spontaneous", s["cue_rate"] > 5 * s["spont"], source=f"{S16} cue x 1.15")
    table.holds(tag + "u of the cued group at readout", f"{s['u_read_cued']:.3f}",
                "> 2x other groups", s["u_read_cued"] > 2 * s["u_read_other"],
                source=f"{S16} memory in elevated u")
    table.holds(tag + "cued group at low rate in the delay", f"{s['delay_rate']:.1f} Hz",
                "< cue rate / 2", s["delay_rate"] < 0.5 * s["cue_rate"],
                source=f"{S16} not persistent spiking")
    table.holds(tag + "cued group vs others in the delay",
                f"{s['delay_rate']:.1f} / {s['delay_other']:.1f} Hz", "cued > others",
                s["delay_rate"] > s["delay_other"], source=f"{S16} spontaneous reactivations")
    table.shown(tag + "readout peak rate (10 ms) cued / other groups pooled",
                f"{s['peak_cued']:.0f} / {s['peak_other']:.0f} Hz", "cued > others",
                "one 250 ms window per seed: see the mean over seeds")
    table.shown(tag + "readout rate / rate in the 250 ms before, cued / others",
                f"x{s['read_gain_cued']:.2f} / x{s['read_gain_other']:.2f}", "cued reactivated",
                "the cued group's own reactivations precede the readout")
    iv = s["intervals"]
    table.shown(tag + "reactivation intervals in the delay [ms]",
                " ".join(f"{x:.0f}" for x in iv) or "none", "0.1-0.3 s",
                "§16 [unverified]; weak events in this scaled network")
# The readout response of one 250 ms window depends on where the cued group is in its
# own reactivation cycle (x depleted right after one): it is checked on the mean over
# seeds (the full run: 4 seeds; in 4 seeds the pooled peak was 18 / 8 / 18 / 21 Hz vs
# 3-4 Hz, so one seed can fall to 2x).
peak_c, peak_o = (np.mean([s[k] for s in stats]) for k in ("peak_cued", "peak_other"))
read_c, read_o = (np.mean([s[k] for s in stats]) for k in ("read_cued", "read_other"))
table.holds(f"readout peak rate cued / others, mean of {len(SEEDS)} seed(s)",
            f"{peak_c:.0f} / {peak_o:.0f} Hz", "cued > 2x others", peak_c > 2 * peak_o,
            source=f"{S16} non-specific readout reactivates the cued group")
table.holds(f"readout mean rate cued / others, mean of {len(SEEDS)} seed(s)",
            f"{read_c:.1f} / {read_o:.1f} Hz", "cued > 1.5x others", read_c > 1.5 * read_o,
            source=f"{S16} non-specific readout reactivates the cued group")
table.finish()
