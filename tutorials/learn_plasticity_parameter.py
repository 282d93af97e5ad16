# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Learning a plasticity parameter by gradient descent
#
# A plasticity rule's parameters are model leaves (`model.params()`, e.g.
# `"in->out.plasticity.a_minus"`), so a loss on what the rule did during a run can be
# differentiated with respect to them through `nj.simulate`, spikes and all (surrogate
# gradients), and fitted with optax. This tutorial:
#
# 1. sets up LIF neurons driven by Poisson inputs, 100 of them through `PairSTDP`
#    synapses (Song, Miller & Abbott 2000 parameters, REFERENCES.md §10);
# 2. checks the gradient of the mean final weight with respect to the depression
#    amplitude $A_-$ against a seed-averaged central finite difference (`nj.check_grad`)
#    and against the mean-field slope of additive pair STDP (Kempter, Gerstner &
#    van Hemmen 1999);
# 3. learns $A_-$ with Adam so that the mean weight after 0.5 s reaches a target, and
#    compares the learned $A_-$ with the mean-field prediction.
#
# **Why this case is smooth.** For Poisson presynaptic trains the depression a synapse
# collects, $A_- \sum_{\text{pre}} x_{post}(t_{pre})$, has expectation
# $A_-\,\nu_{pre}\,\nu_{post}\,\tau_-\,T$ exactly (a Poisson spike at $t$ is independent
# of the past that set $x_{post}(t)$), and potentiation likewise
# $A_+\,\nu_{pre}\,\nu_{post}\,\tau_+\,T$ plus the causal pre-before-post correlation,
# which is negligible for weak synapses. The plastic synapses here are weak (together
# ~0.03 pA against a ~190 pA Poisson background), so the post rate hardly depends on
# them and the mean final weight is, to that order, linear in $A_-$:
#
# $$\bar w(T) \approx w_0 + T\,\nu_{pre}\,\nu_{post}\,(A_+\tau_+ - A_-\tau_-).$$
#
# The gradient through the spikes (the surrogate path: weights → membrane potential →
# post spikes → traces) is then small, and `jax.grad` matches the finite difference.
# With strong plastic synapses near threshold that path dominates and the surrogate
# over- or under-states it: `nj.check_grad` is the tool to see that before fitting.

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
import optax

import neurojax as nj
# The shared reproduced-vs-published table (tutorials/_compare.py).
from _compare import Comparison

parser = argparse.ArgumentParser(description="Learn a PairSTDP parameter by gradient descent")
parser.add_argument("--quick", action="store_true",
                    help="fewer seeds for the gradient check (4, not 16) and the evaluation (16, not 32)")
parser.add_argument("--out", type=Path, default=None, help="folder for the figure")
args, _ = parser.parse_known_args()
out = args.out or Path(__file__).resolve().parent / "figures"
out.mkdir(parents=True, exist_ok=True)
t_wall = time.perf_counter()

# %% [markdown]
# ## 1. The network
#
# Ten LIF neurons ($C_m$ = 100 pF, $g_l$ = 10 nS, $E_l$ = −74 mV, threshold −54 mV,
# reset −60 mV: the Song-Abbott neuron of REFERENCES.md §10) each receive 100 static
# Poisson inputs at 10 Hz (38 pA, exponential 5 ms current synapses), which set the
# output rate (~35 Hz), and 100 plastic Poisson inputs at 10 Hz through `PairSTDP`
# ($A_+ = 0.01\,w_{max}$, $\tau_\pm$ = 20 ms, $w_{max}$ = 0.1 pA, all weights starting at
# $w_{max}/2$). The fitted parameter is $A_-$, started at Song et al.'s
# $1.05\,A_+$.

# %%
DT, T = 0.1, 500.0  # [ms]
N_IN, N_BG, N_OUT, RATE = 100, 100, 10, 10.0  # [Hz]
W_BG, W_MAX = 38.0, 0.1  # [pA]
A_PLUS, TAU = 0.01 * W_MAX, 20.0  # [pA], [ms]
A_MINUS0 = 1.05 * A_PLUS
W0, TARGET = 0.5, 0.47  # mean weight / w_max: initial and target after T
NAME = "in->out.plasticity.a_minus"

lif = nj.neurons.LIF(c_m=100.0, g_l=10.0, e_l=-74.0, v_th=-54.0, v_reset=-60.0, t_ref=0.0)
net = nj.Network(
    [nj.Population("bg", N_BG, nj.inputs.PoissonPopulation(rate=RATE)),
     nj.Population("in", N_IN, nj.inputs.PoissonPopulation(rate=RATE)),
     nj.Population("out", N_OUT, lif, initial={"v": -60.0})],
    [nj.Projection("bg", "out", nj.connectivity.AllToAll(), weight=W_BG,
                   synapse=nj.synapses.Exponential(5.0), receptor=nj.synapses.Current()),
     nj.Projection("in", "out", nj.connectivity.AllToAll(), weight=W0 * W_MAX,
                   synapse=nj.synapses.Exponential(5.0), receptor=nj.synapses.Current(),
                   plasticity=nj.plasticity.PairSTDP(a_plus=A_PLUS, a_minus=A_MINUS0,
                                                     tau_plus=TAU, tau_minus=TAU, w_max=W_MAX))])
model = net.build(jax.random.key(0))


def run(a_minus, key):
    """Mean final weight / w_max and the output rate [Hz] of one run."""
    m = model.replace({NAME: a_minus})
    res = nj.simulate(m, T, DT, key=key, record=nj.Record(spikes=["out"]))
    w = m.plastic_weights(res.state, "in->out")
    return jnp.mean(w) / W_MAX, jnp.mean(res.spikes["out"]) / (DT * 1e-3)


def loss(params, key):
    """Squared distance of one run's mean final weight from the target."""
    return (run(A_PLUS * jnp.exp(params["log_ratio"]), key)[0] - TARGET) ** 2


batch = jax.jit(jax.vmap(run, in_axes=(None, 0)))


def pairings(rate_post):
    """nu_pre nu_post (T - tau) [1/ms]: the expected sum of the post trace over the pre
    spikes of one synapse, per ms of tau (the post traces start at 0, so the first ~tau
    of the run, with fewer post spikes behind it, counts as T - tau)."""
    return RATE * 1e-3 * rate_post * 1e-3 * (T - TAU)


def mean_field_slope(rate_post):
    """d(mean w / w_max) / dA- = -nu_pre nu_post (T - tau) tau_- / w_max [1/pA]."""
    return -pairings(rate_post) * TAU / W_MAX


# %% [markdown]
# ## 2. The gradient at the start
#
# `nj.check_grad` compares `jax.grad` of the seed-averaged loss with the central
# difference of the same seed-averaged loss (common random numbers, so the difference
# measures the slope, not the seeds), at a 2 % step of the fitted parameter
# $\theta = \log(A_-/A_+)$. The mean-field slope needs the output rate, measured on the
# same seeds.

# %%
n_check = 4 if args.quick else 16
check_keys = jax.random.split(jax.random.key(1), n_check)
params = {"log_ratio": jnp.log(jnp.asarray(A_MINUS0 / A_PLUS, jnp.float32))}
report = nj.check_grad(loss, params, keys=check_keys)
print(report)
row = report.rows[0]
w_start, rate_start = (np.asarray(x) for x in batch(jnp.asarray(A_MINUS0, jnp.float32), check_keys))
# d loss / d theta = 2 (w - target) * dw/dA- * A-: the mean-field slope in those units.
mf_grad = float(np.mean(2 * (w_start - TARGET) * mean_field_slope(rate_start) * A_MINUS0))
print(f"start: mean w/w_max {w_start.mean():.4f}, rate {rate_start.mean():.1f} Hz; "
      f"d loss / d theta: grad {row.gradient:.4g}, finite difference {row.finite_difference:.4g} "
      f"(+- {row.fd_stderr:.2g}), mean field {mf_grad:.4g}")

# %% [markdown]
# ## 3. Adam on $\log(A_-/A_+)$
#
# Each step averages the loss over 4 fresh seeds (a new batch of Poisson inputs every
# step: stochastic gradient descent on the expected loss).

# %%
N_STEPS, N_BATCH = 16, 4
# Learning rate 0.12 decaying (cosine) to 0.012: large first steps, then averaging out
# the noise of the 4-seed batches; b1 = 0.5 (less momentum than the default 0.9) keeps
# the steps from overshooting the optimum of this one-parameter, near-quadratic loss.
opt = optax.adam(optax.cosine_decay_schedule(0.12, N_STEPS, alpha=0.1), b1=0.5)
opt_state = opt.init(params)


@jax.jit
def train_step(params, opt_state, key):
    keys = jax.random.split(key, N_BATCH)
    value, grads = jax.value_and_grad(
        lambda p: jnp.mean(jax.vmap(lambda k: loss(p, k))(keys)))(params)
    updates, opt_state = opt.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, value


history = []
key = jax.random.key(2)
t0 = time.perf_counter()
for i in range(N_STEPS):
    key, sub = jax.random.split(key)
    params, opt_state, value = train_step(params, opt_state, sub)
    history.append((float(value), float(A_PLUS * jnp.exp(params["log_ratio"]))))
t_train = time.perf_counter() - t0
a_learned = history[-1][1]
print("A-/A+ along the steps: " + ", ".join(f"{h[1] / A_PLUS:.3f}" for h in history))
print(f"Adam: {N_STEPS} steps in {t_train:.1f} s; loss {history[0][0]:.2e} -> {history[-1][0]:.2e}; "
      f"A-/A+ {A_MINUS0 / A_PLUS:.3f} -> {a_learned / A_PLUS:.3f}")

# %% [markdown]
# ## 4. Held-out evaluation and the mean-field prediction
#
# The learned $A_-$ on seeds not used in training: the mean final weight, and the $A_-$
# that the mean-field formula above predicts for the target at the measured output rate,
# $A_-^* = [A_+\tau_+ + (w_0 - w^*)\,w_{max} / ((T - \tau)\,\nu_{pre}\nu_{post})] / \tau_-$
# ($T - \tau$: the post traces start at zero).

# %%
n_eval = 16 if args.quick else 32
eval_keys = jax.random.split(jax.random.key(3), n_eval)
w_end, rate_end = (np.asarray(x) for x in batch(jnp.asarray(a_learned, jnp.float32), eval_keys))
w_before = np.asarray(batch(jnp.asarray(A_MINUS0, jnp.float32), eval_keys)[0])
reduction = (w_before.mean() - TARGET) ** 2 / (w_end.mean() - TARGET) ** 2
w_sem = w_end.std(ddof=1) / np.sqrt(n_eval)
a_star = (A_PLUS * TAU + (W0 - TARGET) * W_MAX / pairings(rate_end.mean())) / TAU
print(f"held out ({n_eval} seeds): mean w/w_max {w_end.mean():.4f} +- {w_sem:.4f} (target {TARGET}), "
      f"rate {rate_end.mean():.1f} Hz; learned A-/A+ {a_learned / A_PLUS:.3f}, "
      f"mean field {a_star / A_PLUS:.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
ax = axes[0]
ax.semilogy(np.arange(1, N_STEPS + 1), [h[0] for h in history], "o-", ms=3)
ax.set(xlabel="Adam step", ylabel="loss $(\\bar w/w_{max} - 0.47)^2$", title="training loss")
ax = axes[1]
ax.plot(np.arange(0, N_STEPS + 1), [A_MINUS0 / A_PLUS] + [h[1] / A_PLUS for h in history], "o-",
        ms=3, label="Adam")
ax.axhline(a_star / A_PLUS, color="k", lw=0.8, ls="--", label="mean field $A_-^*$")
ax.set(xlabel="Adam step", ylabel="$A_-/A_+$", title="learned depression amplitude")
ax.legend(fontsize=8)
fig.tight_layout()
path = out / "learn_plasticity_parameter.png"
fig.savefig(path, dpi=110)
plt.close(fig)
print(f"figure: {path}  ({time.perf_counter() - t_wall:.1f} s)")

# %% [markdown]
# ## Reproduced vs expected
#
# The finite difference and the mean-field formula (Kempter, Gerstner & van Hemmen
# 1999; the additive pair rule of Song, Miller & Abbott 2000, REFERENCES.md §10) are
# the references; the tolerances are justified next to each row.

# %%
S10 = "REFERENCES.md §10 pair STDP; Kempter et al. 1999 mean field"
table = Comparison(
    "Learning a PairSTDP parameter (A-) by gradient descent -- gradient and result vs "
    "finite differences and the mean-field drift of additive STDP",
    f"run: {'--quick' if args.quick else 'full'}: {N_OUT} LIF x ({N_IN} plastic + {N_BG} "
    f"static) Poisson inputs, {T:g} ms at dt = {DT:g} ms; {n_check} seeds for the check, "
    f"{N_STEPS} Adam steps x {N_BATCH} seeds, {n_eval} held-out seeds")
# The remaining gap is the surrogate path through the post spikes (weak synapses: a
# few %) plus the finite difference's own noise (fd_stderr); 10 % bounds both.
table.close("grad / finite difference at the start", row.ratio, 1.0, rtol=0.10, fmt=".3f",
            source=f"nj.check_grad, {n_check} seeds, step 2 %")
table.holds("gradient sign", "agrees" if row.sign_agrees else "WRONG", "agrees",
            row.sign_agrees, source="nj.check_grad")
# Exact in expectation for Poisson inputs up to the start transient (counted as
# T - tau); the finite difference itself sits ~5 % below it (measured: the post neurons'
# own start from rest and the sampled rate), the surrogate path adds ~1 %: 10 %.
table.close("grad / mean-field slope at the start", row.gradient / mf_grad, 1.0, rtol=0.10,
            fmt=".3f", source=S10)
# The target is 0.03 below the start; 0.005 (1/6 of the distance) is ~2.5 standard
# errors of the held-out mean at 16 seeds (one seed's mean weight varies by ~0.008 with
# its output spike count), and the 4-seed Adam steps leave A- itself a little noisy.
table.close("held-out mean w/w_max after training", float(w_end.mean()), TARGET, atol=0.005,
            fmt=".4f", source=f"target, {n_eval} held-out seeds")
# The held-out distance to the target shrinks at least 5x (squared: 25x).
table.within("held-out (w - target)^2: before / after", reduction, 25.0, np.inf, fmt=".0f",
             source="Adam converges")
# The mean-field slope is ~5 % off (row above), which moves the predicted imbalance
# A-/A+ - 1 (~0.75) by ~5 %, i.e. A-/A+ by ~2 %; the 4-seed Adam steps leave the learned
# value a few % noisy: 8 %.
table.close("learned A-/A+ vs mean-field A-*/A+", a_learned / A_PLUS, a_star / A_PLUS, rtol=0.08,
            fmt=".3f", source=S10)
table.shown("output rate at the end [Hz]", f"{rate_end.mean():.1f}", "-",
            "set by the static background")
table.finish()
