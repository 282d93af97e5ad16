# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Parameter sweeps: one compiled call over a grid
#
# `nj.sweep(fn, **axes)` evaluates `fn(**point)` at every point of a grid of parameter
# values. `fn` swaps the values into an already built model (by name with
# `model.replace`, or with `eqx.tree_at`) and simulates it; `nj.sweep` traces it once,
# `jax.vmap`s it over the flattened grid and compiles the whole grid as one program.
# Nothing is rebuilt per point.
#
# We sweep a time constant, a weight and a seed, and check each sweep against a
# published or analytic result:
#
# 1. **a single LIF neuron**: the f-I curve over input x membrane time constant,
#    against the closed form (REFERENCES.md section 3);
# 2. **the Brunel (2000) network** over the relative inhibition g and the external drive
#    η: the regimes change across the grid; the grid points A and C against the
#    published rates and the mean field (REFERENCES.md section 5);
# 3. **the COBA network over seeds**: the mean and spread of the rate against
#    18.5 ± 1.5 Hz (REFERENCES.md section 6);
# 4. that the sweep is **one compilation**, and that it **equals a Python loop** exactly.

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

# Double precision: near rheobase the membrane creeps towards threshold by ~1e-3 mV per
# step, and float32 rounding over a thousand steps would move a crossing by a step.
jax.config.update("jax_enable_x64", True)

import neurojax as nj
# The shared reproduced-vs-published table (tutorials/_compare.py).
from _compare import Comparison

parser = argparse.ArgumentParser(description="Parameter sweeps with nj.sweep")
parser.add_argument("--quick", action="store_true",
                    help="Brunel N_E = 4000 on a 4 x 2 grid for 300 ms; COBA over 8 seeds")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()  # known args only: also runs inside a notebook
here = Path(globals().get("__file__", "parameter_sweeps.py")).resolve().parent
out = args.out if args.out is not None else here / "figures"
out.mkdir(parents=True, exist_ok=True)

DT = 0.1  # [ms]
if args.quick:
    # N_E = 4000: a quarter of each neuron's inputs are shared (C_E = 1000), which raises
    # the rate in C by about 3 % (tutorials/brunel_regimes.py, tests/gallery); and the
    # small network's rate fluctuates slowly, so 250 ms after a 50 ms transient leaves a
    # sampling error of ~2 % (see the table's tolerances).
    N_E, BRUNEL_T, BRUNEL_T0 = 4000, 300.0, 50.0
    G_AXIS, ETA_AXIS = [3.0, 4.0, 5.0, 6.0], [1.0, 2.0]
    N_SEEDS = 8
else:
    # The published size and 1 s of analysis after 0.5 s, as in REFERENCES.md section 5
    # (roughly ten minutes on two busy CPU cores; not timed here, estimated from quick).
    N_E, BRUNEL_T, BRUNEL_T0 = 10000, 1500.0, 500.0
    G_AXIS, ETA_AXIS = [3.0, 4.0, 5.0, 6.0], [1.0, 2.0]
    N_SEEDS = 16
t_wall = time.perf_counter()

# Count XLA compilations: JAX reports every backend compilation to this listener.
compilations = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: compilations.append(duration)
    if event == "/jax/core/compile/backend_compile_duration" else None)

# %% [markdown]
# ## 1. The LIF f-I curve over current x time constant
#
# One LIF neuron with Brunel's parameters (voltages relative to rest: θ = 20 mV,
# V_r = 10 mV, τ_rp = 2 ms) receives a constant current I, i.e. a mean input
# μ = I / g_L. Without noise it fires periodically at
#
# f = 1 / (τ_rp + τ_m ln((μ − V_r) / (μ − θ))),   μ > θ
#
# (the σ → 0 limit of the Siegert formula). We sweep μ and τ_m = C_m / g_L (C_m changes,
# g_L stays 12.5 nS, so μ does not depend on τ_m). `fn` returns the mean interspike
# interval between the first and the last spike of a 1 s run.

# %%
G_L, THETA, V_R, T_REF = 12.5, 20.0, 10.0, 2.0  # [nS], [mV], [mV], [ms]
lif = nj.neurons.LIF(c_m=250.0, g_l=G_L, e_l=0.0, v_th=THETA, v_reset=V_R, t_ref=T_REF)
cell = nj.Network([nj.Population("N", 1, lif, initial={"v": V_R})],
                  inputs=[nj.inputs.Constant("N", amplitude=0.0)]).build(jax.random.key(0))
T_FI = 1000.0  # [ms]


def fi_isi(mu, tau):
    """Mean ISI [ms] of the cell driven at mean input `mu` [mV] with τ_m = `tau` [ms]."""
    m = cell.replace({"Constant->N.amplitude": mu * G_L, "N.c_m": tau * G_L})  # I [pA] = μ g_L; C_m [pF] = τ g_L
    s = nj.simulate(m, T_FI, DT, key=jax.random.key(0)).spikes["N"][:, 0]
    t = DT * jnp.arange(1, s.shape[0] + 1)  # spikes are detected at the end of a step
    first = jnp.min(jnp.where(s, t, jnp.inf))
    last = jnp.max(jnp.where(s, t, -jnp.inf))
    return (last - first) / (s.sum() - 1)


# REFERENCES.md section 3 tabulates μ = 20.5 ... 60 mV at τ = 20 ms; add points between.
MU_TABLE = [20.5, 21.0, 22.0, 25.0, 30.0, 40.0, 60.0]
MU_RATE_TABLE = [15.901, 20.017, 26.430, 41.715, 63.040, 98.919, 154.730]  # [Hz]
MU = jnp.asarray(np.unique(np.r_[MU_TABLE, np.linspace(20.2, 60.0, 34)]))
TAU = jnp.array([5.0, 10.0, 20.0, 40.0])

# %% [markdown]
# `nj.sweep` compiles once per call (it traces a fresh `fn` each time). To reuse the
# compiled program for new grid values, wrap the sweep in `jax.jit`: the axes become
# arguments, and a second grid of the same shape runs without compiling.

# %%
fi_sweep = jax.jit(lambda mu, tau: nj.sweep(fi_isi, mu=mu, tau=tau))

n0, t0 = len(compilations), time.perf_counter()
isi = np.asarray(fi_sweep(MU, TAU))  # (len(MU), len(TAU)) [ms]
t_first, n_first = time.perf_counter() - t0, len(compilations) - n0
# Same shapes, other values (time constants 1 % longer): no new compilation. (Made
# beforehand: even an eager `TAU * 1.01` compiles a small kernel of its own.)
TAU_2 = TAU * 1.01
n0, t0 = len(compilations), time.perf_counter()
isi_2 = np.asarray(fi_sweep(MU, TAU_2))
t_second, n_second = time.perf_counter() - t0, len(compilations) - n0
print(f"f-I sweep, {MU.size} x {TAU.size} = {MU.size * TAU.size} points of {T_FI:g} ms: "
      f"first call {t_first:.2f} s ({n_first} compilation), "
      f"second call {t_second:.3f} s ({n_second} compilations)")

mu_g, tau_g = np.meshgrid(np.asarray(MU), np.asarray(TAU), indexing="ij")
t_int = tau_g * np.log((mu_g - V_R) / (mu_g - THETA))  # time from reset to threshold [ms]
isi_exact = T_REF + t_int

# %% [markdown]
# **Tolerance.** The membrane update is exact for a constant input, but a threshold
# crossing is only detected at the end of the step in which it happens, and the
# refractory clamp releases on a step boundary. So every interval is τ_rp plus the
# crossing time *rounded up to a whole step*:
#
# ISI_dt = τ_rp + dt ⌈t_cross / dt⌉,   0 ≤ ISI_dt − ISI ≤ dt,
#
# i.e. the rate is low by at most f² dt (0.6 % at 155 Hz with dt = 0.1 ms). We check both
# the one-sided bound against the closed form and the step-rounded value itself
# (to 1e-9 ms: double-precision rounding of the spike times).

# %%
err = isi - isi_exact  # [ms]
# The second grid, from the reused program, obeys the same bound.
t_int_2 = 1.01 * tau_g * np.log((mu_g - V_R) / (mu_g - THETA))
err_2 = isi_2 - (T_REF + t_int_2)
err_all = np.r_[err.ravel(), err_2.ravel()]
isi_dt = T_REF + DT * np.ceil(t_int / DT - 1e-9)
print(f"ISI - closed form (both grids): {err_all.min():.4f} ... {err_all.max():.4f} ms (dt = {DT} ms); "
      f"max |ISI - step-rounded| = {np.abs(isi - isi_dt).max():.1e} ms")

# Exactly a Python loop: the vmapped program and one unbatched `fi_isi` per point do the
# same elementwise arithmetic, so the results agree bit for bit.
loop_points = [(0, 2), (MU.size - 1, 0)]
loop_equal = all(float(fi_isi(MU[i], TAU[j])) == isi[i, j] for i, j in loop_points)

# %% [markdown]
# ## 2. The Brunel (2000) network over g x η
#
# The gallery's Brunel network (`nj.gallery.get("brunel")`, delta synapses, C_E = 1000,
# C_I = 250, J = 0.1 mV) has the relative inhibition g in the inhibitory weights
# (−g J C_m, scalars in the built model) and η in the rate of the external Poisson
# inputs (η ν_thr); `nj.gallery.brunel_parameters(g, eta)` names both, for
# `model.replace`. `fn` swaps them and returns the E rate after a transient and the
# synchrony index σ/μ of the population rate A(t) in 1 ms bins. Only the rates per 1 ms
# block are recorded, not the raster, so the batch stays small.

# %%
brunel = nj.gallery.get("brunel", regime="C", n_e=N_E).build(jax.random.key(0))


def brunel_at(g, eta):
    """The built Brunel model with relative inhibition g and external drive eta."""
    return brunel.replace(nj.gallery.brunel_parameters(g, eta))


def brunel_stats(g, eta):
    m = brunel_at(g, eta)
    res = nj.simulate(m, BRUNEL_T, DT, key=jax.random.key(1),
                      record=nj.Record(spikes=(), rates=["E", "I"], every=1.0))
    skip = round(BRUNEL_T0)  # 1 ms blocks
    r_e, r_i = res.rates["E"][skip:], res.rates["I"][skip:]
    a = (4 * r_e + r_i) / 5  # all neurons (N_I = N_E / 4)
    return {"rate_e": r_e.mean(), "rate_i": r_i.mean(), "sync": a.std() / a.mean()}


t0 = time.perf_counter()
stats = nj.sweep(brunel_stats, g=jnp.array(G_AXIS), eta=jnp.array(ETA_AXIS),
                 batch_size=None if args.quick else 4)
stats = {k: np.asarray(v) for k, v in stats.items()}
print(f"Brunel sweep, {len(G_AXIS)} x {len(ETA_AXIS)} points, N_E = {N_E}, "
      f"{BRUNEL_T:g} ms: {time.perf_counter() - t0:.1f} s")
for j, eta in enumerate(ETA_AXIS):
    print(f"  eta = {eta:g}: rate E " + ", ".join(
        f"g={g:g} {stats['rate_e'][i, j]:.1f} Hz" for i, g in enumerate(G_AXIS)))

# %% [markdown]
# The mean field (Brunel 2000 eqs. 4-5 and 21): in the asynchronous state each neuron
# sees Gaussian input of mean μ(ν) and s.d. σ(ν) and fires at the Siegert rate; the
# stationary rate solves ν = φ(μ(ν), σ(ν)). It is accurate in the asynchronous
# irregular region (C) and only a guide in the oscillatory ones.

# %%
# `nj.theory.lif_mean_field` solves it on the same swapped models, as one more sweep:
# the theory reads the weights, in-degrees and drive from the model that was simulated.
mf = nj.sweep(lambda g, eta: nj.theory.lif_mean_field(brunel_at(g, eta)).rates["E"],
              g=jnp.array(G_AXIS), eta=jnp.array(ETA_AXIS))
mf = np.asarray(mf)
iA, jA = G_AXIS.index(3.0), ETA_AXIS.index(2.0)
iC, jC = G_AXIS.index(5.0), ETA_AXIS.index(2.0)

# %% [markdown]
# ## 3. The COBA network over seeds
#
# The COBA network's activity sustains itself, and its rate depends on the seed:
# REFERENCES.md quotes 17.0-19.5 Hz for seeds 0-2 (numpy and NEST), "18.5 ± 1.5 Hz".
# There a seed draws both the random connectivity and the initial V, g_e and g_i, and
# most of the spread comes from the connectivity (one network over initial states
# scatters by only 0.2-0.4 Hz). So we sweep over whole networks, as
# `neurojax run coba --seed S` does: connectivity from key S, initial state from S + 1.
#
# A seed is a number on a sweep axis (`nj.sweep` refuses PRNG keys as axes). The
# initial state is drawn inside `fn` from `jax.random.key(seed + 1)`; the connectivity
# cannot be built inside `fn` (Bernoulli wiring has a random number of synapses, hence
# data-dependent shapes), so we build one network per seed beforehand, pad their
# synapse tables to a common width (padding entries target `n_post` and are dropped,
# the documented `SparseWeights` convention), stack their arrays, and let `fn` index
# the stack with the seed.

# %%
T_COBA = 1000.0  # [ms], the published protocol
nets = [nj.gallery.get("coba").build(jax.random.key(s)) for s in range(N_SEEDS)]
widths = [max(n.projections[k].weights.targets.shape[1] for n in nets)
          for k in range(len(nets[0].projections))]


def pad(net):
    """`net` with every synapse table padded to the common width."""
    ws = [p.weights for p in net.projections]
    return eqx.tree_at(
        lambda m: [p.weights.targets for p in m.projections], net,
        [jnp.pad(w.targets, ((0, 0), (0, widths[k] - w.targets.shape[1])),
                 constant_values=w.n_post) for k, w in enumerate(ws)])


parts = [eqx.partition(pad(n), eqx.is_array) for n in nets]
stacked = jax.tree.map(lambda *x: jnp.stack(x), *[arrays for arrays, _ in parts])
static = parts[0][1]  # everything but arrays is the same for every seed


def coba_rates(seed):
    net = eqx.combine(jax.tree.map(lambda x: x[seed], stacked), static)
    res = nj.simulate(net, T_COBA, DT, key=jax.random.key(seed + 1),
                      record=nj.Record(spikes=(), rates=["E", "I"], every=1.0))
    return jnp.stack([res.rates["E"].mean(), res.rates["I"].mean()])


t0 = time.perf_counter()
seeds = jnp.arange(N_SEEDS)
coba_r = np.asarray(nj.sweep(coba_rates, seed=seeds))  # (seeds, [E, I]) [Hz]
print(f"COBA over {N_SEEDS} seeds, {T_COBA:g} ms: {time.perf_counter() - t0:.1f} s; "
      f"E rates " + ", ".join(f"{r:.2f}" for r in coba_r[:, 0]) + " Hz")
# One point of the network sweep against a plain, unbatched run of the unpadded network.
plain = nj.simulate(nets[1], T_COBA, DT, key=jax.random.key(2),
                    record=nj.Record(spikes=(), rates=["E", "I"], every=1.0))
coba_loop = np.array([plain.rates["E"].mean(), plain.rates["I"].mean()])
coba_loop_diff = float(np.abs(coba_loop - coba_r[1]).max())
print(f"COBA seed 1, sweep vs plain call: max |difference| = {coba_loop_diff:.2e} Hz")

# %% [markdown]
# ## Figure

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
ax = axes[0]
mu_fine = np.linspace(20.05, 60.0, 400)
for j, tau in enumerate(np.asarray(TAU)):
    ax.plot(mu_fine, 1e3 / (T_REF + tau * np.log((mu_fine - V_R) / (mu_fine - THETA))),
            color=f"C{j}", lw=1)
    ax.plot(np.asarray(MU), 1e3 / isi[:, j], "o", color=f"C{j}", ms=3,
            label=f"τ_m = {tau:g} ms")
ax.plot(MU_TABLE, MU_RATE_TABLE, "kx", ms=6, label="REFERENCES §3 (τ_m = 20)")
ax.set_xlabel("μ = I / g_L [mV]")
ax.set_ylabel("rate [Hz]")
ax.set_title("LIF f-I: one sweep (dots) vs closed form (lines)", fontsize=10)
ax.legend(fontsize=8)

ax = axes[1]
im = ax.imshow(np.log10(stats["rate_e"].T), origin="lower", cmap="viridis", aspect="auto")
for i in range(len(G_AXIS)):
    for j in range(len(ETA_AXIS)):
        bright = np.log10(stats["rate_e"][i, j]) > np.log10(stats["rate_e"]).mean()
        ax.text(i, j, f"{stats['rate_e'][i, j]:.0f} Hz\nσ/μ {stats['sync'][i, j]:.2f}",
                ha="center", va="center", fontsize=8, color="k" if bright else "w")
ax.set_xticks(range(len(G_AXIS)), [f"{g:g}" for g in G_AXIS])
ax.set_yticks(range(len(ETA_AXIS)), [f"{e:g}" for e in ETA_AXIS])
ax.set_xlabel("g (relative inhibition)")
ax.set_ylabel("η = ν_ext / ν_thr")
ax.set_title(f"Brunel E rate, N_E = {N_E} (A: g 3, η 2; C: g 5, η 2)", fontsize=10)
fig.colorbar(im, ax=ax, label="log10 rate [Hz]")

ax = axes[2]
bins = np.arange(np.floor(coba_r.min()) - 0.5, np.ceil(coba_r.max()) + 1.0, 0.5)
ax.hist(coba_r[:, 0], bins=bins, color="C0", alpha=0.7, label="E")
ax.hist(coba_r[:, 1], bins=bins, color="C3", histtype="step", lw=2, label="I")
ax.axvspan(17.0, 20.0, color="0.85", zorder=0, label="18.5 ± 1.5 Hz (REFERENCES §6)")
ax.axvline(coba_r[:, 0].mean(), color="C0", ls="--", label="mean E")
ax.set_xlabel("rate over 1 s [Hz]")
ax.set_ylabel("seeds")
ax.set_title(f"COBA over {N_SEEDS} seeds (one sweep)", fontsize=10)
ax.set_ylim(0, ax.get_ylim()[1] * 1.5)
ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()
path = out / "parameter_sweeps.png"
fig.savefig(path, dpi=110)
plt.close(fig)
print(f"figure: {path}  ({time.perf_counter() - t_wall:.1f} s)")

# %% [markdown]
# ## Reproduced vs published

# %%
mode = "--quick" if args.quick else "full"
table = Comparison(
    "Parameter sweeps with nj.sweep -- reproduced vs analytic / published",
    f"run: {mode}, dt = {DT} ms; f-I {MU.size} x {TAU.size} points; Brunel N_E = {N_E}, "
    f"{len(G_AXIS)} x {len(ETA_AXIS)} points, {BRUNEL_T - BRUNEL_T0:g} ms after "
    f"{BRUNEL_T0:g} ms; COBA {N_SEEDS} seeds x {T_COBA:g} ms")
S3, S5, S6 = "REFERENCES.md §3", "REFERENCES.md §5", "REFERENCES.md §6"
# 1. f-I: the discretisation bound derived above, on every grid point.
table.within("f-I: min over 2 grids of ISI - closed form [ms]", err_all.min(), 0.0, DT, fmt=".4f",
             source="0 ≤ error ≤ dt: crossing detected at the step's end")
table.within("f-I: max over 2 grids of ISI - closed form [ms]", err_all.max(), 0.0, DT, fmt=".4f",
             source="0 ≤ error ≤ dt: crossing detected at the step's end")
table.close("f-I: max |ISI - step-rounded closed form| [ms]", np.abs(isi - isi_dt).max(),
            0.0, atol=1e-9, fmt=".1e", source="τ_rp + dt⌈t_cross/dt⌉, float64 rounding")
# The tabulated rates at τ_m = 20 ms: low by at most f² dt (0.6 % at 155 Hz); 1 %.
j20 = int(np.flatnonzero(np.asarray(TAU) == 20.0)[0])
for mu_ref, f_ref in zip(MU_TABLE, MU_RATE_TABLE):
    if mu_ref in (21.0, 60.0):
        i = int(np.flatnonzero(np.asarray(MU) == mu_ref)[0])
        table.close(f"f-I: rate at μ = {mu_ref:g} mV, τ_m = 20 ms [Hz]", 1e3 / isi[i, j20],
                    f_ref, rtol=0.01, fmt=".2f", source=f"{S3} σ = 0 (error ≤ f² dt)")
# 4. One compilation, and equal to a Python loop.
table.equal("f-I: compilations, first jitted sweep", n_first, 1,
            source="jax.monitoring backend-compile events")
table.equal("f-I: compilations, second grid (same shapes)", n_second, 0,
            source="jax.monitoring backend-compile events")
table.equal("f-I: sweep == Python loop (2 points, bitwise)", loop_equal, True,
            source="same elementwise arithmetic")
# 2. Brunel: A and C are grid points; tolerances as in tutorials/brunel_regimes.py.
# Full size: REFERENCES.md's ±3 %. Quick: at N_E = 4000 shared inputs raise the rate by
# about 3 %, and the rate fluctuates slowly: 50 ms means of the E rate in C scattered by
# s.d. 1.9 Hz over 800 ms (one run of ours), a standard error of ~0.85 Hz (2.3 %) for a
# 250 ms mean. 3 % + 3 % + 2 x 2.3 % is about ±8 %; a wrong g or η is far outside (the
# neighbouring grid points g = 4 and 6 fire at ~107 and ~23 Hz).
tol_c = 0.08 if args.quick else 0.03
table.close("Brunel A (g 3, η 2): rate E [Hz]", stats["rate_e"][iA, jA], 333.5, rtol=0.03,
            fmt=".1f", source=f"{S5} numpy 333.49 / NEST 333.48")
table.close("Brunel C (g 5, η 2): rate E [Hz]", stats["rate_e"][iC, jC], 37.6, rtol=tol_c,
            fmt=".1f", source=f"{S5} numpy 37.57 / NEST 37.26"
            + (" (quick: +3 % finite size, 250 ms)" if args.quick else ""))
table.close("Brunel C: rate E vs mean field [Hz]", stats["rate_e"][iC, jC], mf[iC, jC],
            rtol=tol_c, fmt=".2f", source=f"{S5} acceptance ±3 % of MF in C")
table.close("Brunel C: mean-field rate [Hz]", mf[iC, jC], 37.95, atol=0.005, fmt=".2f",
            source=f"{S5} MF ν₀")
# A's volleys (two clusters alternating every D) set σ/μ of A(t), not N or the seed.
table.close("Brunel A: sigma/mu A(1 ms)", stats["sync"][iA, jA], 0.71, atol=0.05, fmt=".2f",
            source=f"{S5} numpy 0.71 / NEST 0.71")
r_eta2 = stats["rate_e"][:, jA]
table.holds("Brunel η 2: rate falls as g grows", " > ".join(f"{r:.0f}" for r in r_eta2),
            "A (333 Hz) > ... > C (38 Hz)", bool(np.all(np.diff(r_eta2) < 0)),
            source=f"{S5}: SR at g 3, AI at g 5")
# The grid point nearest D (g 4.5, η 0.9), the slow synchronous irregular state, is the
# most synchronous one of the three (REFERENCES' ordering D > B > A >~ C). (A >~ C is a
# full-size property: at N_E = 4000 shared inputs lift C's σ/μ to ~0.9.)
iD, jD = G_AXIS.index(5.0), ETA_AXIS.index(1.0)
sync = stats["sync"]
table.holds("Brunel σ/μ: near-D (g 5, η 1) > A, C",
            f"{sync[iD, jD]:.2f} > {sync[iA, jA]:.2f}, {sync[iC, jC]:.2f}", "D > B > A >~ C",
            bool(sync[iD, jD] > max(sync[iA, jA], sync[iC, jC])),
            source=f"{S5} acceptance ordering, D's nearest grid point")
for i, g in enumerate(G_AXIS):
    for j, eta in enumerate(ETA_AXIS):
        if (i, j) not in ((iA, jA), (iC, jC)):
            table.shown(f"Brunel g {g:g}, η {eta:g}: rate E vs MF [Hz]",
                        f"{stats['rate_e'][i, j]:.1f}", f"{mf[i, j]:.1f}",
                        "no published value; MF only a guide outside AI")
# 3. COBA over seeds.
mean_e, sd_e = coba_r[:, 0].mean(), coba_r[:, 0].std(ddof=1)
table.within("COBA: mean E rate over seeds [Hz]", mean_e, 17.0, 20.0, fmt=".2f",
             source=f"{S6} 18.5 ± 1.5 Hz")
table.within("COBA: mean I rate over seeds [Hz]", coba_r[:, 1].mean(), 17.0, 20.0, fmt=".2f",
             source=f"{S6} 18.5 ± 1.5 Hz, E and I nearly equal")
# The published spread: ±1.5 Hz (about 8 %); the six numpy and NEST runs have s.d.
# 1.0 Hz. A s.d. from a few seeds is itself uncertain by ~25 % (8 seeds), so a factor
# of 2 either way: 0.5-3 Hz. A sweep that reused one network, or one initial state,
# would show far less (one network over initial states: ~0.4 Hz).
table.within("COBA: seed-to-seed s.d. of E rate [Hz]", sd_e, 0.5, 3.0, fmt=".2f",
             source=f"{S6} ±1.5 Hz, about ±8 %")
table.close("COBA: sweep vs plain call, seed 1 [Hz]", coba_loop_diff, 0.0, atol=1e-9,
            fmt=".1e", source="the unpadded network, unbatched")
table.finish()
