r"""Mean field of networks of leaky integrate-and-fire neurons (Amit & Brunel 1997;
Brunel 2000; Fourcaud & Brunel 2002).

In the diffusion approximation each LIF neuron of population $a$ sees Gaussian white
noise of mean $\mu_a$ and standard deviation $\sigma_a$,

$$\tau_m \dot V = -(V - E_L) + \mu_a - E_L + \sigma_a \sqrt{\tau_m}\,\xi(t),$$

$$\mu_a = E_L + \frac{I_a}{g_L} + \tau_m \sum_b \nu_b\, K_{ab} \langle J_{ab} \rangle,
\qquad \sigma_a^2 = \tau_m \sum_b \nu_b\, K_{ab} \langle J_{ab}^2 \rangle,$$

where $K_{ab}\langle J_{ab}\rangle$ is the summed PSP jump [mV] a neuron of $a$ receives
from one spike of every neuron of $b$ (total weight of the projection / number of
postsynaptic neurons, converted to mV), the external Poisson sources counting as
populations of their own. It then fires at the Siegert rate (Brunel 2000 eq. 21,
REFERENCES.md §3)

$$\frac{1}{\nu} = \tau_{ref} + \tau_m \sqrt\pi
\int_{(V_r - \mu)/\sigma}^{(\theta - \mu)/\sigma} e^{u^2}(1 + \operatorname{erf} u)\,du,$$

and the stationary rates solve $\nu_a = \phi(\mu_a(\nu), \sigma_a(\nu))$.

`lif_mean_field(model)` reads all of this from a built `NetworkModel` (the model that
`nj.simulate` runs: the same weights, in-degrees, input rates and neuron parameters),
so a sweep or a gradient of the mean-field rate goes through the very parameters that
are simulated. Synapses: `Delta` (a jump of $w / C_m$ [mV] per spike, $w$ a charge in
pA·ms) and `Exponential` (charge $w\tau_s$, with the Fourcaud & Brunel 2002 threshold
shift $\sigma \alpha/2 \sqrt{\tau_s/\tau_m}$, $\alpha = \sqrt2|\zeta(1/2)|$, valid for
$\tau_s \ll \tau_m$), both with `Current` receptors; inputs `Poisson` and `Constant`.
Conductance-based synapses, other inputs and other neurons are refused with a
`ValueError`, as they need another theory.

The integral is evaluated in log space with composite Gauss–Legendre quadrature, so
rates from $10^{-300}$ Hz to $1/\tau_{ref}$ stay finite and differentiable; the self-
consistent rates come from Newton's method on the log-rates (`optimistix`, implicit
differentiation), so `jax.grad` of a mean-field rate with respect to any model
parameter is the implicit-function-theorem derivative.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax.scipy.special import log_ndtr
from jaxtyping import Array, ArrayLike, Float

from .._misc import is_concrete
from ..connectivity.weights import ConstrainedWeights, DenseWeights, SparseWeights
from ..inputs.deterministic import Constant
from ..inputs.stochastic import Poisson
from ..network import NetworkModel
from ..neurons.lif import LIF
from ..synapses.kinetics import Delta, Exponential
from ..synapses.receptors import Current

# Fourcaud & Brunel (2002): alpha = sqrt(2) |zeta(1/2)|, zeta(1/2) = -1.4603545088...
ALPHA_FOURCAUD_BRUNEL = math.sqrt(2.0) * 1.4603545088095868

# Composite Gauss–Legendre rule on [-1, 1]: 16 panels of 12 nodes. The integrand
# e^{u^2}(1 + erf u) is smooth; over the bounds met in practice (|u| < 40) this
# reproduces scipy's adaptive quadrature to ~1e-9 relative (tests/theory).
_PANELS, _NODES = 16, 12
_x, _w = np.polynomial.legendre.leggauss(_NODES)
_edges = np.linspace(-1.0, 1.0, _PANELS + 1)
_half = 0.5 * (_edges[1:] - _edges[:-1])
_mid = 0.5 * (_edges[1:] + _edges[:-1])
_GL_X = (_mid[:, None] + _half[:, None] * _x[None, :]).ravel()
_GL_LOGW = np.log((_half[:, None] * _w[None, :]).ravel())


def _log_erfcx(x):
    # log(e^{x^2} erfc x) = x^2 + log 2 + log Phi(-sqrt(2) x), stable for all x.
    return x * x + jnp.log(2.0) + log_ndtr(-jnp.sqrt(2.0) * x)


def _log_siegert_integral(lower, upper):
    """log of the integral of e^{u^2}(1 + erf u) = erfcx(-u) from `lower` to `upper`
    (lower < upper)."""
    half = 0.5 * (upper - lower)
    mid = 0.5 * (upper + lower)
    batch = (1,) * half.ndim + (-1,)
    nodes = jnp.reshape(jnp.asarray(_GL_X, dtype=half.dtype), batch)
    u = mid[..., None] + half[..., None] * nodes
    terms = _log_erfcx(-u) + jnp.reshape(jnp.asarray(_GL_LOGW, dtype=half.dtype), batch)
    return jax.nn.logsumexp(terms, axis=-1) + jnp.log(half)


def log_siegert(mu, sigma, tau_m, v_th, v_reset, t_ref, tau_s=0.0):
    """`log(siegert(...))` [log Hz], finite for vanishing rates (see `siegert`)."""
    # A negative sigma would otherwise pass as noiseless (sigma > 0 selects the noisy
    # branch) and give a silently wrong rate. Checked where the value is known (eager
    # calls); inside jit the callers (lif_mean_field) build sigma as a square root.
    if is_concrete(sigma) and bool(np.any(np.asarray(sigma) < 0)):
        raise ValueError("siegert: sigma [mV] must be >= 0 (0 gives the noiseless rate), "
                         f"got {np.asarray(sigma)}.")
    mu, sigma, tau_m, v_th, v_reset, t_ref, tau_s = jnp.broadcast_arrays(
        *(jnp.asarray(a, dtype=float) for a in (mu, sigma, tau_m, v_th, v_reset, t_ref, tau_s))
    )
    noisy = sigma > 0
    s = jnp.where(noisy, sigma, 1.0)
    shift = s * 0.5 * ALPHA_FOURCAUD_BRUNEL * jnp.sqrt(tau_s / tau_m)
    log_integral = _log_siegert_integral((v_reset + shift - mu) / s, (v_th + shift - mu) / s)
    # 1/nu [ms] = t_ref + tau sqrt(pi) I, summed in log space (t_ref = 0 allowed).
    log_period = jnp.logaddexp(jnp.log(t_ref), jnp.log(tau_m * math.sqrt(math.pi)) + log_integral)
    # sigma = 0: the deterministic rate [t_ref + tau ln((mu - V_r)/(mu - theta))]^-1,
    # zero (log = -inf) at or below threshold.
    above = mu > v_th
    gap = jnp.where(above, mu - v_th, 1.0)
    det_period = t_ref + tau_m * jnp.log(jnp.where(above, mu - v_reset, 2.0) / gap)
    log_det = jnp.where(above, -jnp.log(jnp.where(above, det_period, 1.0)), -jnp.inf)
    return jnp.where(noisy, -log_period, log_det) + jnp.log(1e3)  # 1/ms -> Hz


def siegert(
    mu: Float[ArrayLike, "*b"],
    sigma: Float[ArrayLike, "*b"],
    tau_m: Float[ArrayLike, "*b"],
    v_th: Float[ArrayLike, "*b"],
    v_reset: Float[ArrayLike, "*b"],
    t_ref: Float[ArrayLike, "*b"],
    tau_s: Float[ArrayLike, "*b"] = 0.0,
) -> Float[Array, "*b"]:
    r"""Firing rate [Hz] of a LIF neuron driven by Gaussian white noise of mean `mu`
    and standard deviation `sigma` [mV] (Siegert 1951; Brunel 2000 eq. 21):
    $1/\nu = \tau_{ref} + \tau_m\sqrt\pi \int_{(V_r-\mu)/\sigma}^{(\theta-\mu)/\sigma}
    e^{u^2}(1+\operatorname{erf}u)\,du$ with $\tau_m \dot V = -V + \mu +
    \sigma\sqrt{\tau_m}\xi$ (voltages on any common scale). `sigma = 0` gives the
    deterministic rate $[\tau_{ref} + \tau_m \ln\frac{\mu-V_r}{\mu-\theta}]^{-1}$ (0 at
    or below threshold). `tau_s > 0` [ms] adds the Fourcaud & Brunel (2002) correction
    for synaptic filtering (thresholds shifted by $\sigma\alpha/2\sqrt{\tau_s/\tau_m}$).

    Broadcasts over its arguments, differentiable in all of them, jit/vmap-safe.
    REFERENCES.md §3: $\nu(\mu = 20, \sigma = 5) = 27.341$ Hz for $\tau_m = 20$ ms,
    $\theta = 20$, $V_r = 10$ mV, $\tau_{ref} = 2$ ms.

    **Arguments:** `mu`, `sigma`, `v_th`, `v_reset` [mV]; `tau_m`, `t_ref`, `tau_s` [ms].
    """
    return jnp.exp(log_siegert(mu, sigma, tau_m, v_th, v_reset, t_ref, tau_s))


class LIFMeanField(eqx.Module):
    """Stationary mean-field state of a LIF network (`lif_mean_field`).

    **Fields:**

    - `rates`: Rate of each population [Hz], by name.
    - `mu`: Mean free membrane potential of each population [mV] (absolute, i.e.
      including the resting potential).
    - `sigma`: Standard deviation of its input noise [mV].
    - `residual`: Largest |log(phi(nu) / nu)| at the solution (0 at an exact fixed
      point; a large value means Newton did not converge from `rates0`).
    """

    rates: dict[str, Float[Array, ""]]
    mu: dict[str, Float[Array, ""]]
    sigma: dict[str, Float[Array, ""]]
    residual: Float[Array, ""]


class _Coupling(eqx.Module):
    # Per postsynaptic population a: mu_a = base_a + tau_a (S1_ab nu_b + ext1_a), in
    # [mV] with rates in [Hz]; sigma_a^2 = tau_a (S2_ab nu_b + ext2_a).
    base: Array
    s1: Array  # [mV] summed jumps per presynaptic rate unit (pre spike / s)
    s2: Array  # [mV^2]
    ext1: Array  # [mV / s]: external sources' jump times rate
    ext2: Array  # [mV^2 / s]
    tau_m: Array
    v_th: Array
    v_reset: Array
    t_ref: Array
    tau_s: Array


def _uniform(x, what: str) -> Array:
    """A population parameter that must be the same for every neuron, as a scalar."""
    x = jnp.asarray(x)
    if x.ndim == 0:
        return x
    if is_concrete(x) and not np.allclose(np.asarray(x), np.asarray(x).ravel()[0]):
        raise ValueError(
            f"lif_mean_field needs homogeneous populations, but {what} varies across "
            "neurons; the mean field of one population describes identical neurons."
        )
    return jnp.mean(x)


def _weight_sums(structure, name: str) -> tuple[Array, Array]:
    """(sum of w, sum of w^2) over a projection's synapses."""
    if isinstance(structure, ConstrainedWeights):
        structure = structure.resolved()
    if isinstance(structure, DenseWeights):
        w = jnp.asarray(structure.weights)
        if structure.counts is not None:  # counts[i, j] synapses of weight w[i, j]
            n = structure.counts
            return jnp.sum(n * w), jnp.sum(n * w**2)
        return jnp.sum(w), jnp.sum(w**2)
    if isinstance(structure, SparseWeights):
        exists = structure.targets < structure.n_post
        w = jnp.where(exists, jnp.broadcast_to(structure.weights, exists.shape), 0.0)
        return jnp.sum(w), jnp.sum(w**2)
    raise ValueError(
        f"lif_mean_field: projection {name!r} uses {type(structure).__name__} "
        "connectivity, whose synapses are not stored; use stored (Dense or Sparse) "
        "connectivity for the mean field."
    )


def _charge_factor(synapse, receptor, what: str) -> tuple[Array, Array]:
    """Charge per unit weight [ms] (w times it is the charge in pA ms) and the
    synaptic time constant [ms] of a synapse, or a ValueError."""
    if not isinstance(receptor, Current):
        raise ValueError(
            f"lif_mean_field: {what} has a {type(receptor).__name__} receptor; the LIF "
            "mean field (diffusion approximation) covers current-based synapses "
            "(Current) only."
        )
    if isinstance(synapse, Delta):
        return jnp.asarray(1.0), jnp.asarray(0.0)
    if isinstance(synapse, Exponential):
        tau = _uniform(synapse.tau, f"the synapse tau of {what}")
        return tau, tau
    raise ValueError(
        f"lif_mean_field: {what} has {type(synapse).__name__} kinetics; supported are "
        "Delta and Exponential synapses."
    )


def _coupling(model: NetworkModel) -> tuple[list[str], _Coupling]:
    if not isinstance(model, NetworkModel):
        raise TypeError(
            f"lif_mean_field needs a built network (Network.build(key)), got "
            f"{type(model).__name__}."
        )
    pops = model.populations
    names = [p.name for p in pops]
    n_pop = len(pops)
    for p in pops:
        if not isinstance(p.neuron, LIF):
            raise ValueError(
                f"lif_mean_field: population {p.name!r} has {type(p.neuron).__name__} "
                "neurons; the theory is that of LIF neurons (nj.neurons.LIF)."
            )
    c_m = jnp.stack([_uniform(p.neuron.c_m, f"{p.name}.c_m") for p in pops])
    g_l = jnp.stack([_uniform(p.neuron.g_l, f"{p.name}.g_l") for p in pops])
    e_l = jnp.stack([_uniform(p.neuron.e_l, f"{p.name}.e_l") for p in pops])
    tau_m = c_m / g_l
    s1 = [[jnp.asarray(0.0)] * n_pop for _ in range(n_pop)]
    s2 = [[jnp.asarray(0.0)] * n_pop for _ in range(n_pop)]
    ext1 = [jnp.asarray(0.0)] * n_pop
    ext2 = [jnp.asarray(0.0)] * n_pop
    current = [jnp.asarray(0.0)] * n_pop
    # Concrete synaptic time constants per population (0 for Delta), checked below.
    tau_s: list[set[float]] = [set() for _ in range(n_pop)]
    taus: list[Array] = [jnp.asarray(0.0)] * n_pop
    # Time constants and rates: ms and Hz, so tau_m * nu carries a factor 1e-3.
    for proj in model.projections:
        a, b = proj.post, proj.pre
        factor, ts = _charge_factor(proj.synapse, proj.receptor, f"projection {proj.name!r}")
        total, total2 = _weight_sums(proj.weights, proj.name)
        n_post = pops[a].n
        jump = factor / c_m[a]  # [mV] per unit weight
        s1[a][b] = s1[a][b] + total * jump / n_post
        s2[a][b] = s2[a][b] + total2 * jump**2 / n_post
        taus[a] = jnp.maximum(taus[a], ts)
        if is_concrete(ts):
            tau_s[a].add(float(ts))
    for inp, a in zip(model.inputs, model.input_targets):
        what = f"input {type(inp).__name__} onto {names[a]!r}"
        if isinstance(inp, Poisson):
            factor, ts = _charge_factor(inp.synapse, inp.receptor, what)
            jump = _uniform(inp.weight, f"the weight of {what}") * factor / c_m[a]
            rate = _uniform(inp.rate, f"the rate of {what}")
            ext1[a] = ext1[a] + inp.n_sources * rate * jump
            ext2[a] = ext2[a] + inp.n_sources * rate * jump**2
            taus[a] = jnp.maximum(taus[a], ts)
            if is_concrete(ts):
                tau_s[a].add(float(ts))
        elif isinstance(inp, Constant):
            if not isinstance(inp.receptor, Current):
                raise ValueError(f"lif_mean_field: {what} must be a Current (pA) input.")
            current[a] = current[a] + _uniform(inp.amplitude, f"the amplitude of {what}")
        else:
            raise ValueError(
                f"lif_mean_field: {what} is not covered; the mean field takes Poisson "
                "and Constant inputs (stationary drive)."
            )
    for a, concrete in enumerate(tau_s):
        if len(concrete) > 1:
            raise ValueError(
                f"lif_mean_field: population {names[a]!r} receives synapses with "
                f"different time constants {sorted(concrete)} ms; the Fourcaud-Brunel "
                "correction needs one synaptic time constant per population."
            )
    return names, _Coupling(
        base=e_l + jnp.stack(current) / g_l,
        s1=jnp.stack([jnp.stack(r) for r in s1]),
        s2=jnp.stack([jnp.stack(r) for r in s2]),
        ext1=jnp.stack(ext1),
        ext2=jnp.stack(ext2),
        tau_m=tau_m,
        v_th=jnp.stack([_uniform(p.neuron.v_th, f"{p.name}.v_th") for p in pops]),
        v_reset=jnp.stack([_uniform(p.neuron.v_reset, f"{p.name}.v_reset") for p in pops]),
        t_ref=jnp.stack([_uniform(p.neuron.t_ref, f"{p.name}.t_ref") for p in pops]),
        tau_s=jnp.stack(taus),
    )


def _moments(c: _Coupling, nu):
    tau = c.tau_m * 1e-3  # [s], rates in Hz
    mu = c.base + tau * (c.s1 @ nu + c.ext1)
    var = tau * (c.s2 @ nu + c.ext2)
    return mu, jnp.sqrt(jnp.maximum(var, 0.0))


def _log_residual(log_nu, c: _Coupling):
    mu, sigma = _moments(c, jnp.exp(log_nu))
    return log_siegert(mu, sigma, c.tau_m, c.v_th, c.v_reset, c.t_ref, c.tau_s) - log_nu


def lif_mean_field(
    model: NetworkModel,
    rates0: dict[str, float] | None = None,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 256,
) -> LIFMeanField:
    r"""The stationary rates of a built LIF network in the diffusion approximation
    (module docstring): $\nu_a = \phi(\mu_a(\nu), \sigma_a(\nu))$ with $\phi$ the
    Siegert rate, solved by Newton's method on $\log\nu$ from `rates0` [Hz, by
    population name; default 10 Hz each].

    The result is differentiable with respect to every model parameter that enters
    (weights, in-degrees through the stored synapses, Poisson rates and weights,
    Constant currents, neuron parameters) by implicit differentiation, and works under
    `jit` and `vmap` (e.g. over `nj.sweep` points).

    REFERENCES.md §5 (Brunel 2000, model A): regime C ($g = 5$, $\eta = 2$) has
    $\nu_0 = 37.95$ Hz, $\mu = 21.03$, $\sigma = 7.68$ mV; regime A ($g = 3$)
    $\nu_0 = 327.0$ Hz.

    **Arguments:**

    - `model`: A built `NetworkModel` of `LIF` populations with current-based `Delta`
      or `Exponential` synapses, `Poisson` and `Constant` inputs.
    - `rates0`: Initial rates [Hz] by population name (a multistable network may have
      several solutions; Newton finds the one near `rates0`).
    - `rtol`, `atol`: Newton tolerances on $\log\nu$ (default 1e-10 in float64, 1e-5
      in float32).
    - `max_steps`: Newton iterations before giving up.

    **Returns:** `LIFMeanField` (rates [Hz], mu, sigma [mV], residual).
    """
    names, c = _coupling(model)
    rates0 = {} if rates0 is None else dict(rates0)
    unknown = set(rates0) - set(names)
    if unknown:
        raise ValueError(
            f"lif_mean_field rates0 names unknown populations {sorted(unknown)}; the "
            f"model has {names}."
        )
    for k, v in rates0.items():
        if is_concrete(v) and not float(v) > 0:
            raise ValueError(
                f"lif_mean_field rates0[{k!r}] [Hz] must be > 0 (Newton runs on log "
                f"rates), got {v}."
            )
    x64 = jax.config.jax_enable_x64
    default = 1e-10 if x64 else 1e-5
    y0 = jnp.log(jnp.stack([jnp.asarray(rates0.get(n, 10.0), dtype=float) for n in names]))
    solver = optx.Newton(rtol=default if rtol is None else rtol,
                         atol=default if atol is None else atol)
    sol = optx.root_find(_log_residual, solver, y0, c, max_steps=max_steps, throw=False)
    log_nu = sol.value
    nu = jnp.exp(log_nu)
    mu, sigma = _moments(c, nu)
    residual = jnp.max(jnp.abs(_log_residual(log_nu, c)))
    return LIFMeanField(
        rates={n: nu[i] for i, n in enumerate(names)},
        mu={n: mu[i] for i, n in enumerate(names)},
        sigma={n: sigma[i] for i, n in enumerate(names)},
        residual=residual,
    )
