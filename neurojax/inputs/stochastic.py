r"""Stochastic inputs: independent Poisson drive, Poisson source populations and
Ornstein–Uhlenbeck noise. Each keeps its PRNG key in its state (seeded by `init`) and
splits it once per step, so runs are reproducible and vmappable over keys.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._abstract import AbstractInput, AbstractNeuron, Drive
from .._custom_types import PopulationParam
from .._misc import check_range, check_shape, check_time_constant_vs_dt, finite, nonnegative, positive
from ..synapses.kinetics import AbstractKinetics, Delta
from ..synapses.receptors import AbstractReceptor, Current


def _require_key(key, what):
    if key is None:
        raise ValueError(f"{what} is stochastic: init needs a PRNG key (key=jax.random.key(...)).")
    return key


_INVERSION_MAX_MEAN = 16.0


def poisson_counts(key: PRNGKeyArray, lam: Float[Array, " n"]) -> Float[Array, " n"]:
    """Exact Poisson draws with means `lam`.

    One uniform per neuron is inverted through the cumulative distribution, a
    vectorised loop of about max(count) iterations (`jax.random.poisson`'s per-element
    rejection loops are several times slower on CPU and slow to compile). Means above
    16 are split into `m` equal parts whose independent counts are summed (a sum of
    Poisson variables is Poisson), which keeps `exp(-mean)` far from underflow."""
    lam_max = jnp.max(lam)
    parts = jnp.maximum(1.0, jnp.ceil(lam_max / _INVERSION_MAX_MEAN))
    lam_part = lam / parts
    part_max = lam_max / parts
    # The cap only guards float rounding of a CDF that saturates just below u.
    cap = part_max + 12.0 * jnp.sqrt(part_max) + 30.0
    p0 = jnp.exp(-lam_part)

    def one_part(_, carry):
        total, key = carry
        key, sub = jax.random.split(key)
        u = jax.random.uniform(sub, lam.shape, lam.dtype)

        def cond(c):
            i, _, _, cdf = c
            return jnp.any(u > cdf) & (i < cap)

        def body(c):
            i, count, p, cdf = c
            count = count + (u > cdf)
            p = p * lam_part / (i + 1.0)
            return i + 1.0, count, p, cdf + p

        init = (jnp.zeros((), lam.dtype), jnp.zeros_like(lam), p0, p0)
        return total + jax.lax.while_loop(cond, body, init)[1], key

    init = (jnp.zeros_like(lam), key)
    return jax.lax.fori_loop(0, parts.astype(jnp.int32), one_part, init)[0]


class PoissonState(eqx.Module):
    key: PRNGKeyArray
    synapse: eqx.Module  # state of the kinetics filtering the arrivals
    arrivals: Float[Array, " n"]  # spikes that arrived in the last step, per neuron


class Poisson(AbstractInput[PoissonState]):
    r"""Independent Poisson drive to every neuron of `target`: each neuron receives
    `n_sources` independent Poisson spike trains of rate `rate`, each through a synapse
    of weight `weight`. The number of arrivals in a step is drawn exactly as
    $\mathrm{Poisson}(n_{sources}\,\nu\,dt)$ (Brunel 2000's external drive).

    **Arguments:**

    - `target`: Name of the target population.
    - `rate`: Rate of each source [Hz]. Scalar or shape `(n,)`.
    - `n_sources`: Number of independent sources per neuron.
    - `weight`: Weight of each source's synapse, in the receptor's units.
    - `synapse`: Kinetics filtering the arrivals (default `Delta()`).
    - `receptor`: `Current()` (default) or `Conductance(e_rev)`.
    """

    target: str = eqx.field(static=True)
    rate: PopulationParam = eqx.field(converter=nonnegative("rate", "Hz"))
    n_sources: int = eqx.field(static=True, default=1)
    weight: PopulationParam = eqx.field(converter=finite("weight", "receptor units"), default=1.0)
    synapse: AbstractKinetics = Delta()
    receptor: AbstractReceptor = Current()

    def __check_init__(self):
        check_range(self.n_sources, "n_sources", "sources", low=1.0)

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> PoissonState:
        key = _require_key(key, f"Poisson({self.target!r})")
        return PoissonState(key=key, synapse=self.synapse.init(n), arrivals=jnp.zeros((n,), float))

    def step(self, state: PoissonState, t, dt: float) -> tuple[PoissonState, Drive]:
        key, sub = jax.random.split(state.key)
        shape = state.arrivals.shape
        lam = self.n_sources * self.rate * (dt * 1e-3)  # [Hz]·[ms]·1e-3 = expected arrivals
        counts = poisson_counts(sub, jnp.broadcast_to(lam, shape).astype(state.arrivals.dtype))
        syn, s = self.synapse.step(state.synapse, self.weight * counts, dt)
        new = PoissonState(key=key, synapse=syn, arrivals=counts)
        return new, self.receptor.drive(s, self.synapse.instantaneous)

    def check(self, n: int, dt: float) -> None:
        check_shape(self.rate, n, f"Poisson({self.target!r}) rate")
        check_shape(self.weight, n, f"Poisson({self.target!r}) weight")
        self.synapse.check(dt)


class PoissonPopulationState(eqx.Module):
    key: PRNGKeyArray
    spikes: Float[Array, " n"]  # spikes emitted in the last step


class PoissonPopulation(AbstractNeuron[PoissonPopulationState]):
    r"""A population of independent Poisson spike generators, used as a source
    `Population` whose spikes reach other populations through ordinary projections.
    Each neuron spikes in a step with probability $\nu\,dt$ (Bernoulli approximation of
    a Poisson process, exact to $O((\nu dt)^2)$); input drive is ignored.

    **Arguments:**

    - `rate`: Firing rate [Hz], scalar or shape `(n,)`; `rate * dt` must stay below 0.1
      so that two spikes per step stay negligible.
    """

    rate: PopulationParam = eqx.field(converter=nonnegative("rate", "Hz"))

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> PoissonPopulationState:
        key = _require_key(key, "PoissonPopulation")
        return PoissonPopulationState(key=key, spikes=jnp.zeros((n,), float))

    def step(self, state: PoissonPopulationState, drive: Drive, dt: float):
        key, sub = jax.random.split(state.key)
        p = self.rate * (dt * 1e-3)
        spikes = (jax.random.uniform(sub, state.spikes.shape) < p).astype(state.spikes.dtype)
        return PoissonPopulationState(key=key, spikes=spikes), spikes

    def check(self, n: int, dt: float) -> None:
        check_shape(self.rate, n, "PoissonPopulation rate")
        check_range(
            self.rate, "PoissonPopulation rate", "Hz", low=0.0, high=0.1 / (dt * 1e-3),
            high_open=True,
        )


class OrnsteinUhlenbeckState(eqx.Module):
    key: PRNGKeyArray
    x: Float[Array, " n"]  # current value [pA] or [nS]


class OrnsteinUhlenbeck(AbstractInput[OrnsteinUhlenbeckState]):
    r"""Ornstein–Uhlenbeck noise, independent per neuron:

    $$\tau \,dx = (\mu - x)\,dt + \sigma\sqrt{2\tau}\,dW,$$

    stationary mean $\mu$ and standard deviation $\sigma$. Updated with the exact
    transition $x \leftarrow \mu + (x-\mu)e^{-dt/\tau} + \sigma\sqrt{1-e^{-2dt/\tau}}\,\xi$
    (Gillespie 1996), so its statistics do not depend on `dt`. With a
    `Conductance(e_rev)` receptor it is the point-conductance model of Destexhe et al.
    (2001).

    **Arguments:**

    - `target`: Name of the target population.
    - `mean`: Stationary mean $\mu$ [pA] (or [nS]).
    - `sigma`: Stationary standard deviation $\sigma$ [pA] (or [nS]).
    - `tau`: Correlation time $\tau$ [ms].
    - `receptor`: `Current()` (default) or `Conductance(e_rev)`.
    """

    target: str = eqx.field(static=True)
    mean: PopulationParam = eqx.field(converter=finite("mean", "pA or nS"), default=0.0)
    sigma: PopulationParam = eqx.field(converter=nonnegative("sigma", "pA or nS"), default=1.0)
    tau: PopulationParam = eqx.field(converter=positive("tau", "ms"), default=5.0)
    receptor: AbstractReceptor = Current()

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> OrnsteinUhlenbeckState:
        key = _require_key(key, f"OrnsteinUhlenbeck({self.target!r})")
        key, sub = jax.random.split(key)
        # Start from the stationary distribution so there is no transient.
        x = self.mean + self.sigma * jax.random.normal(sub, (n,))
        return OrnsteinUhlenbeckState(key=key, x=x)

    def step(self, state: OrnsteinUhlenbeckState, t, dt: float):
        key, sub = jax.random.split(state.key)
        decay = jnp.exp(-dt / self.tau)
        noise = self.sigma * jnp.sqrt(1.0 - decay**2) * jax.random.normal(sub, state.x.shape)
        x_next = self.mean + (state.x - self.mean) * decay + noise
        return OrnsteinUhlenbeckState(key=key, x=x_next), self.receptor.drive(state.x, False)

    def check(self, n: int, dt: float) -> None:
        for name in ("mean", "sigma", "tau"):
            check_shape(getattr(self, name), n, f"OrnsteinUhlenbeck({self.target!r}) {name}")
        check_time_constant_vs_dt(self.tau, dt, "OrnsteinUhlenbeck tau")
