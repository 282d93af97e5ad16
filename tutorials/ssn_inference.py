# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Inferring SSN connectivity from tuning curves, from many initialisations
#
# Kraynyukova, Renner et al. (bioRxiv 2020; "Renner et al. 2020" in REFERENCES.md §14,
# identification unverified) fit a stabilised supralinear E/I network (SSN) to
# visual responses at several contrasts and ask which properties of the fitted
# connectivity the data actually determine. Here the same question is asked of
# synthetic data with a known answer: a ground-truth SSN on an orientation ring
# (E and I rings of `Rate` units with a `PowerLaw` transfer, von Mises connection
# profiles of amplitude $J_{ab}$ and concentration $\kappa_{ab}$, as `nj.train.Profile`
# constraints) produces tuning curves at several contrasts; noise is added; and
# `nj.train.fit_steady_states` fits the eight connection parameters by Adam from many
# random initialisations in one vmapped run, the gradient of the steady state coming
# from the implicit function theorem.
#
# What is reproduced: the *procedure* (an SSN fitted to multi-contrast tuning data,
# many fits compared); no published number exists for it (REFERENCES.md §14), so the
# checks are against the known ground truth: every accepted fit explains > 95 % of the
# variance of the data (issue 8's acceptance), and the table reports how much each
# fitted parameter and each weight relation (the determinant $J_{EE}J_{II} -
# J_{EI}J_{IE}$ and ratios such as $J_{EI}/J_{II}$) spreads across the fits (coefficient
# of variation): the relations with a small spread are those the data pin down.

# %%
import argparse
import time
from pathlib import Path

import jax

# Newton's method to 1e-10 needs float64.
jax.config.update("jax_enable_x64", True)

import equinox as eqx
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optax

import neurojax as nj
# The shared reproduced-vs-published table (tutorials/_compare.py).
from _compare import Comparison

parser = argparse.ArgumentParser(description="SSN connectivity inference from tuning curves")
parser.add_argument("--quick", action="store_true", help="fewer neurons, fits and steps")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()  # known args only: also runs inside a notebook
here = Path(globals().get("__file__", "ssn_inference.py")).resolve().parent
out = args.out if args.out is not None else here / "figures"
out.mkdir(parents=True, exist_ok=True)
t_wall = time.perf_counter()

if args.quick:
    N, FITS, STEPS = 12, 8, 400        # neurons per ring, initialisations, Adam steps
else:
    N, FITS, STEPS = 24, 16, 600
CONTRASTS = np.array([0.1, 0.2, 0.4, 0.7, 1.0, 1.5])
NOISE = 0.5        # [Hz] standard deviation of the measurement noise
LR = 0.02

# %% [markdown]
# ## The ground-truth network
#
# $\tau_a \dot v_a = -v_a + v_{rest} + h_a(c) + \sum_b W_{ab} r_b$, $r = k[v - v_{rest}]_+^2$
# with $k = 0.04$, $\tau_E = 20$, $\tau_I = 10$ ms (the SSN of REFERENCES.md §8 with
# the commonly quoted $k$); $W_{ab}(\theta) = J_{ab}/N \cdot e^{\kappa_{ab}(\cos 2\theta - 1)}$
# between neurons whose preferred orientations differ by $\theta$; the input
# $h(c) = 20\,c\, e^{\cos 2\theta_{pref} - 1}$ mV for a grating at 0° of contrast $c$.

# %%
ORI = nj.connectivity.Ring(length=180.0)
PAIRS = ("E->E", "E->I", "I->E", "I->I")
TRUE = {"E->E": (10.0, 1.5), "E->I": (9.6, 1.5), "I->E": (-5.2, 1.0), "I->I": (-4.0, 1.0)}
pref = np.arange(N) * 180.0 / N
tuning = 20.0 * np.exp(np.cos(np.deg2rad(2 * pref)) - 1.0)  # [mV] at contrast 1

power_law = nj.neurons.PowerLaw(k=0.04, n=2.0)
pops = [nj.Population("E", N, nj.neurons.Rate(tau=20.0, v_rest=-70.0, transfer=power_law),
                      features={"ori": ORI}),
        nj.Population("I", N, nj.neurons.Rate(tau=10.0, v_rest=-70.0, transfer=power_law),
                      features={"ori": ORI})]
projs = [nj.Projection(p.split("->")[0], p.split("->")[1],
                       nj.connectivity.AllToAll(allow_autapses=True), weight=1.0) for p in PAIRS]
inputs = [nj.inputs.Constant(p, amplitude=jnp.asarray(tuning)) for p in "EI"]
built = nj.Network(pops, projs, inputs=inputs).build(jax.random.key(0))


truth = nj.train.constrain(built, {
    p: nj.train.Profile(TRUE[p][0] / N, TRUE[p][1], profile="von_mises", feature="ori")
    for p in PAIRS})


def make(params):
    """The network with connection amplitudes J (amplitude x N, mV) and concentrations
    kappa, set on the free parameters (`model.replace`)."""
    return truth.replace({**{f"{p}.weight.free.amplitude": jnp.asarray(params[p][0] / N) for p in PAIRS},
                          **{f"{p}.weight.free.log_kappa": jnp.log(params[p][1]) for p in PAIRS}})


def set_contrast(m, c):
    h = c * jnp.asarray(tuning)
    return eqx.tree_at(lambda m: (m.inputs[0].amplitude, m.inputs[1].amplitude), m, (h, h))


true_rates = np.stack([np.asarray(nj.theory.rates(set_contrast(truth, c), nj.theory.fixed_point(
    set_contrast(truth, c)))) for c in CONTRASTS])
rng = np.random.default_rng(0)
data = true_rates + NOISE * rng.normal(size=true_rates.shape)
print(f"ground truth: peak E rate {true_rates[:, 0].round(2)} Hz over contrasts {CONTRASTS}")

# %% [markdown]
# ## Many initialisations, one vmapped fit
#
# Each initialisation draws every $|J_{ab}|$ and $\kappa_{ab}$ from the truth times a
# log-uniform factor in [2/3, 3/2] (draws whose network is not stable at every contrast
# are redrawn, checked with `nj.theory.eigenvalues`); `eqx.filter_vmap` stacks them.
# Only the eight profile parameters train.

# %%
def draw():
    while True:
        f = np.exp(rng.uniform(-np.log(1.5), np.log(1.5), size=(4, 2)))
        params = {p: (TRUE[p][0] * f[i, 0], TRUE[p][1] * f[i, 1]) for i, p in enumerate(PAIRS)}
        m = make(params)
        try:
            ok = all(float(jnp.max(nj.theory.eigenvalues(mc, nj.theory.fixed_point(mc)).real)) < 0
                     and float(jnp.max(nj.theory.rates(mc, nj.theory.fixed_point(mc)))) < 500.0
                     for mc in (set_contrast(m, c) for c in CONTRASTS))
        except Exception:  # Newton did not converge: a runaway network
            ok = False
        if ok:
            return m


inits = [draw() for _ in range(FITS)]
models = jax.tree.map(lambda *x: jnp.stack(x) if eqx.is_array(x[0]) else x[0], *inits)
spec = nj.train.trainable(truth, include="*.weight.free.*")
t0 = time.perf_counter()
fits = nj.train.fit_steady_states(models, set_contrast, jnp.asarray(CONTRASTS), data,
                                  optax.adam(LR), STEPS, trainable=spec)
t_fit = time.perf_counter() - t0
ev_truth = 1 - np.sum((fits.rates - true_rates[None]) ** 2, axis=(1, 2)) / np.sum(
    (true_rates - true_rates.mean()) ** 2)
print(f"{FITS} fits of {STEPS} steps in {t_fit:.1f} s; explained variance of the data "
      f"{np.round(fits.explained_variance, 3)}")

# %% [markdown]
# ## Which relations are invariant?
#
# A fit is *accepted* when it explains > 95 % of the data's variance with stable
# fixed points. The others mostly end in one local minimum (EV ~ 0.65) where $J_{II}$
# has shrunk to ~0.2 and $J_{EI}$, $J_{IE}$ grew: the reason for many initialisations.
# (At 2 x 32 units and 32 fits of 800 steps only 38 % of the fits were accepted; the
# full mode here, 2 x 24 units and 16 fits, accepts 56 %.) Over the accepted fits, the coefficient of variation (std / |mean|) of
# each parameter and of weight relations.

# %%
def fitted(m, p):
    free = m.params()
    return (float(free[f"{p}.weight.free.amplitude"]) * N,
            float(np.exp(free[f"{p}.weight.free.log_kappa"])))


ok = (fits.explained_variance > 0.95) & fits.stable & fits.converged


def relations(batch):
    """The fitted quantities of a batch of models, each an array over the batch."""
    rows = [{p: fitted(jax.tree.map(lambda x: x[k] if eqx.is_array(x) else x, batch), p)
             for p in PAIRS} for k in range(FITS)]
    J = {p: np.abs(np.array([r[p][0] for r in rows])) for p in PAIRS}
    q = {f"J_{p[0]}{p[-1]}": J[p] for p in PAIRS}
    q |= {f"kappa_{p[0]}{p[-1]}": np.array([r[p][1] for r in rows]) for p in PAIRS}
    return q | {"det J = J_EE J_II - J_EI J_IE": J["E->E"] * J["I->I"] - J["I->E"] * J["E->I"],
                "J_EI / J_II": J["I->E"] / J["I->I"], "J_EE / J_IE": J["E->E"] / J["E->I"]}


quantities, initial = relations(fits.models), relations(models)
truth_q = {f"J_{p[0]}{p[-1]}": abs(TRUE[p][0]) for p in PAIRS} | {f"kappa_{p[0]}{p[-1]}": TRUE[p][1] for p in PAIRS}
truth_q |= {"det J = J_EE J_II - J_EI J_IE": 10.0 * 4.0 - 5.2 * 9.6, "J_EI / J_II": 5.2 / 4.0,
            "J_EE / J_IE": 10.0 / 9.6}
cv = {name: float(np.std(v[ok]) / abs(np.mean(v[ok]))) if ok.sum() > 1 else np.nan
      for name, v in quantities.items()}
cv_init = {name: float(np.std(v) / abs(np.mean(v))) for name, v in initial.items()}
for name, v in quantities.items():
    print(f"{name:32s} truth {truth_q[name]:7.3f}  fitted {np.mean(v[ok]):7.3f} ± {np.std(v[ok]):.3f}"
          f"  CV {cv[name]:.3f} (initial CV {cv_init[name]:.3f})")
if (~ok).any():  # where the rejected fits ended: a local minimum of the loss?
    print("rejected fits (EV, J_EE, J_EI, J_IE, J_II, kappa_EE, kappa_EI, kappa_IE, kappa_II):")
    for k in np.flatnonzero(~ok):
        print(f"  {fits.explained_variance[k]:.3f}",
              " ".join(f"{quantities[q][k]:6.2f}" for q in list(quantities)[:8]))
invariant = sorted(cv, key=cv.get)[:3]
print("most invariant across fits:", invariant)

# %% [markdown]
# ## Figure

# %%
fig, ax = plt.subplots(1, 3, figsize=(14, 4))
best = int(np.argmax(fits.explained_variance))
for i, c in enumerate(CONTRASTS):
    ax[0].plot(pref, data[i, :N], "o", ms=3, color=plt.cm.viridis(i / len(CONTRASTS)))
    ax[0].plot(pref, fits.rates[best, i, :N], "-", color=plt.cm.viridis(i / len(CONTRASTS)),
               label=f"c = {c:g}")
ax[0].set(xlabel="preferred orientation [deg]", ylabel="E rate [Hz]",
          title="data (dots) and best fit (lines)")
ax[0].legend(fontsize=7)
ax[1].semilogy(fits.losses)
ax[1].set(xlabel="Adam step", ylabel="MSE [Hz²]", title=f"{FITS} initialisations")
names = list(cv)
ax[2].barh(range(len(names)), [cv[n] for n in names])
ax[2].set_yticks(range(len(names)), names, fontsize=7)
ax[2].set(xlabel="CV across accepted fits", title="spread of fitted quantities")
fig.tight_layout()
path = out / "ssn_inference.png"
fig.savefig(path, dpi=110)
plt.close(fig)
print(f"figure: {path}  ({time.perf_counter() - t_wall:.1f} s)")

# %% [markdown]
# ## Table

# %%
table = Comparison(
    "SSN connectivity inference from tuning curves (Renner et al. 2020 style, REFERENCES.md §14)",
    f"{'quick' if args.quick else 'full'} run: 2 x {N} units, {len(CONTRASTS)} contrasts, "
    f"{FITS} initialisations x {STEPS} Adam steps in {t_fit:.0f} s")
table.within("fraction of fits accepted (EV > 0.95, stable)", ok.mean(), 0.5, 1.0,
             source="most random starts should reach the data")
table.within("explained variance of the data, median fit", np.median(fits.explained_variance),
             0.95, 1.0, source="issue 8: > 0.95")
table.within("explained variance of the noise-free truth, worst accepted fit",
             ev_truth[ok].min() if ok.any() else np.nan, 0.95, 1.0,
             source="the ground-truth responses are recovered, not only the noisy data")
for name in invariant:
    table.shown(f"CV of {name} (among the 3 smallest)", f"{cv[name]:.3f}", "-",
                f"initial CV {cv_init[name]:.3f}; fitted {np.mean(quantities[name][ok]):.3f}, "
                f"truth {truth_q[name]:.3f}")
DET = "det J = J_EE J_II - J_EI J_IE"
# The invariant combination is recovered, not only made consistent across fits: its
# mean over accepted fits within 15 % of the truth (the fits' spread, CV ~0.07, is the
# scale of what noise in the tuning curves leaves undetermined).
table.close("det J, mean over accepted fits", np.mean(quantities[DET][ok]), truth_q[DET],
            rtol=0.15, source="the ground truth's J_EE J_II - J_EI J_IE")
# Fitting shrinks the spread of the most invariant quantity well below that of the
# starts (Renner et al.: weight relations are constrained, single weights less so).
best = invariant[0]
table.holds(f"CV of {best}: fitted < half the initial", f"{cv[best]:.3f}",
            f"< {0.5 * cv_init[best]:.3f}", cv[best] < 0.5 * cv_init[best],
            source="the most invariant quantity is determined by the data")
table.shown("largest CV", f"{max(cv.values()):.3f} ({max(cv, key=cv.get)})", "-",
            "the least determined quantity")
table.finish()
