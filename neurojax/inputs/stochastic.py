r"""Stochastic inputs: independent Poisson drive, Poisson source populations and
Ornstein–Uhlenbeck noise. Each keeps its PRNG key in its state (seeded by `init`) and
splits it once per step, so runs are reproducible and vmappable over keys.

**Gradients with respect to a Poisson rate.** The exact samplers draw integer counts
(0/1 spikes), which are piecewise constant in the rate: their true derivative is zero
almost everywhere and says nothing about how the expected loss changes with the rate.
So `Poisson` and `PoissonPopulation` refuse to be differentiated with respect to `rate`
by default (`rate_gradient=None`): `jax.grad`, `jax.jvp` or `eqx.filter_grad` that asks
for that derivative raises a `ValueError` (differentiating anything else, with the rate
held fixed, works as before). With `rate_gradient="straight_through"` the forward draws
stay exact and bit-identical, and the backward pass uses the straight-through pathwise
derivative $\partial\,\mathrm{count} / \partial \lambda := 1$, where
$\lambda = E[\mathrm{count}]$ is the draw's mean.

*Why this estimator, and its bias.* It is the derivative of the mean,
$dE[\mathrm{count}]/d\lambda = 1$, applied per draw: exact, with zero variance, for any
loss that is linear in the counts (e.g. the mean input to a linear synapse), and
unbiased for the mean pathway of any network. It ignores that the count's variance
(also $\lambda$) and its discreteness change with the rate, so for nonlinear losses it
is biased: for $L = \mathrm{count}^2$ it gives $E[2\,\mathrm{count}] = 2\lambda$ where
$dE[L]/d\lambda = 1 + 2\lambda$. The alternatives are worse where inputs live (per-step
means $\lambda \ll 1$): the ratio estimator $\mathrm{count}/\lambda$ is zero on every
empty step and has variance $1/\lambda$; the Gaussian reparameterisation
$1 + (\mathrm{count} - \lambda)/(2\lambda)$ captures the variance term only under a
Gaussian approximation that fails at small $\lambda$, with variance $1/(4\lambda)$;
score-function estimators are unbiased but need a baseline and many samples.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, Float, PRNGKeyArray, UInt32

from .. import _threefry
from .._abstract import AbstractInput, AbstractNeuron, Drive
from .._hash import GOLDEN, STREAM_1, lowbias32, standard_normal, u32, unit_uniform
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

    def uniforms(key, _):
        key, sub = _threefry.split(key)
        return key, _threefry.uniform(sub, lam.shape, lam.dtype)

    return _inverted_poisson(uniforms, key, lam)


def _inverted_poisson(uniforms, stream, lam: Float[Array, " n"]) -> Float[Array, " n"]:
    """`poisson_counts` with the uniforms of part `i` from
    `uniforms(stream, i) -> (stream, u)`."""
    lam_max = jnp.max(lam)
    parts = jnp.maximum(1.0, jnp.ceil(lam_max / _INVERSION_MAX_MEAN))
    lam_part = lam / parts
    part_max = lam_max / parts
    # The cap only guards float rounding of a CDF that saturates just below u.
    cap = part_max + 12.0 * jnp.sqrt(part_max) + 30.0
    p0 = jnp.exp(-lam_part)

    def one_part(i, carry):
        total, stream = carry
        stream, u = uniforms(stream, i)

        def cond(c):
            i, _, _, cdf = c
            return jnp.any(u > cdf) & (i < cap)

        def body(c):
            i, count, p, cdf = c
            count = count + (u > cdf)
            p = p * lam_part / (i + 1.0)
            return i + 1.0, count, p, cdf + p

        init = (jnp.zeros((), lam.dtype), jnp.zeros_like(lam), p0, p0)
        return total + jax.lax.while_loop(cond, body, init)[1], stream

    init = (jnp.zeros_like(lam), stream)
    return jax.lax.fori_loop(0, parts.astype(jnp.int32), one_part, init)[0]


GENERATORS = ("jax", "hash")


def _check_generator(value, owner: str) -> None:
    if value not in GENERATORS:
        raise ValueError(f"{owner} generator must be one of {GENERATORS}, got {value!r}.")


class HashStream(eqx.Module):
    """The per-step random stream of an input with `generator="hash"`: a 32-bit seed
    drawn from the input's key by `init`, and the number of steps taken. Step `k`'s
    uniform for neuron `i` (and part `j` of a split Poisson mean) is a hash of
    `(seed, k, j, i)` (`neurojax._hash`), so a run continued from a saved state draws
    what one longer run would, and a vmapped batch of keys draws independent streams.
    The step count is 32-bit: the stream repeats after 2^32 steps (5 simulated days at
    dt = 0.1 ms)."""

    seed: UInt32[Array, ""]
    step: UInt32[Array, ""]

    @classmethod
    def from_key(cls, key: PRNGKeyArray) -> "HashStream":
        return cls(seed=jax.random.bits(key, (), jnp.uint32), step=u32(0))

    def _hashes(self, part, shape: tuple[int, ...]) -> UInt32[Array, "*shape"]:
        """One hash per element for this step and `part` (0 unless a Poisson mean is
        split)."""
        step_key = lowbias32(lowbias32(self.step ^ self.seed) + self.seed)
        part_key = lowbias32(step_key ^ (jnp.asarray(part, jnp.uint32) * u32(STREAM_1)))
        index = jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape)
        return lowbias32(part_key + index * u32(GOLDEN))

    def uniforms(self, part, shape: tuple[int, ...], dtype) -> Float[Array, "*shape"]:
        """This step's uniforms in [0, 1) (24 bits, as `jax.random.uniform` in float32)
        for `part`."""
        return unit_uniform(self._hashes(part, shape), dtype)

    def normals(self, shape: tuple[int, ...], dtype) -> Float[Array, "*shape"]:
        """This step's standard normals (`neurojax._hash.standard_normal`, the
        Box-Muller transform procedural weights use; tails cut at 5.8 standard
        deviations, a probability of 7e-9)."""
        return standard_normal(self._hashes(0, shape), dtype)

    def advanced(self) -> "HashStream":
        return HashStream(seed=self.seed, step=self.step + u32(1))


def _stream_init(key: PRNGKeyArray, generator: str):
    """The state's `key` field: the PRNG key itself, or its `HashStream`."""
    return key if generator == "jax" else HashStream.from_key(key)


def _stream_step(stream, generator: str):
    """(the state's next stream, this step's: a key to sample with, or the HashStream)."""
    if generator == "jax":
        return tuple(_threefry.split(stream))
    return stream.advanced(), stream


def _hash_poisson_counts(stream: HashStream, lam: Float[Array, " n"]) -> Float[Array, " n"]:
    """`poisson_counts` with this step's uniforms from `stream`."""
    return _inverted_poisson(lambda s, i: (s, s.uniforms(i, lam.shape, lam.dtype)), stream, lam)


def _hash_bernoulli(stream: HashStream, p: Float[Array, " n"]) -> Float[Array, " n"]:
    """`_bernoulli` with this step's uniforms from `stream`."""
    return (stream.uniforms(0, p.shape, p.dtype) < p).astype(p.dtype)


RATE_GRADIENTS = (None, "straight_through")


def _check_rate_gradient(value, owner: str) -> None:
    if value not in RATE_GRADIENTS:
        raise ValueError(
            f"{owner} rate_gradient must be one of {RATE_GRADIENTS}, got {value!r}."
        )


def _bernoulli(key: PRNGKeyArray, p: Float[Array, " n"]) -> Float[Array, " n"]:
    """0/1 draws with probabilities `p` (a float array of `p`'s dtype)."""
    return (_threefry.uniform(key, p.shape, p.dtype) < p).astype(p.dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2))
def _draw(sample_fn, rate_gradient, owner, key, mean):
    """`sample_fn(key, mean)`, a draw with expectation `mean`, with the derivative of
    `rate_gradient` with respect to `mean` (module docstring)."""
    return sample_fn(key, mean)


def _draw_jvp(sample_fn, rate_gradient, owner, primals, tangents):
    key, mean = primals
    _, mean_dot = tangents
    out = _draw(sample_fn, rate_gradient, owner, key, mean)
    if isinstance(mean_dot, SymbolicZero):  # the rate is not being differentiated
        return out, jnp.zeros_like(out)
    if rate_gradient is None:
        raise ValueError(
            f"{owner}: cannot differentiate the exact sampler with respect to the "
            "Poisson rate (its draws are integers, piecewise constant in the rate, so "
            "the derivative would silently be 0). Either build it with "
            "rate_gradient='straight_through' (exact draws, d count / d mean := 1; see "
            "neurojax.inputs.stochastic), or keep the rate out of the differentiated "
            "arguments (e.g. eqx.partition the model, or jax.lax.stop_gradient the "
            "rate)."
        )
    return out, mean_dot  # straight-through: d count / d mean = 1


_draw.defjvp(_draw_jvp, symbolic_zeros=True)


class PoissonState(eqx.Module):
    key: PRNGKeyArray | HashStream  # HashStream with generator="hash"
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
    - `rate_gradient`: `None` (default): differentiating with respect to `rate` raises
      a `ValueError`. `"straight_through"`: exact draws, with
      $\partial\,\mathrm{count}/\partial\,\mathrm{rate} := n_{sources}\,dt$ (the
      derivative of the mean count; unbiased for losses linear in the counts, biased
      otherwise, see the module docstring).
    - `generator`: Where the per-step uniforms come from. `"jax"` (default):
      `jax.random` (threefry), split once per step; the numbers are `jax.random`'s bit
      for bit, drawn on CPU with the hash's rounds unrolled (`neurojax._threefry`:
      ~4 ns per uniform, against ~16 ns through JAX's rolled CPU lowering). `"hash"`: a
      counter-based 32-bit hash of (seed, step, neuron) (`HashStream`), several times
      cheaper still per number on CPU (~0.5 ns), where the draws can dominate a step
      (benchmarks/README.md, Plasticity); the draws have the same distribution but are
      other numbers.
    """

    target: str = eqx.field(static=True)
    rate: PopulationParam = eqx.field(converter=nonnegative("rate", "Hz"))
    n_sources: int = eqx.field(static=True, default=1)
    weight: PopulationParam = eqx.field(converter=finite("weight", "receptor units"), default=1.0)
    synapse: AbstractKinetics = Delta()
    receptor: AbstractReceptor = Current()
    rate_gradient: str | None = eqx.field(static=True, default=None)
    generator: str = eqx.field(static=True, default="jax")

    def __check_init__(self):
        check_range(self.n_sources, "n_sources", "sources", low=1.0)
        _check_rate_gradient(self.rate_gradient, f"Poisson({self.target!r})")
        _check_generator(self.generator, f"Poisson({self.target!r})")

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> PoissonState:
        key = _require_key(key, f"Poisson({self.target!r})")
        return PoissonState(key=_stream_init(key, self.generator), synapse=self.synapse.init(n),
                            arrivals=jnp.zeros((n,), float))

    def step(self, state: PoissonState, t, dt: float) -> tuple[PoissonState, Drive]:
        key, sub = _stream_step(state.key, self.generator)
        shape = state.arrivals.shape
        lam = self.n_sources * self.rate * (dt * 1e-3)  # [Hz]·[ms]·1e-3 = expected arrivals
        lam = jnp.broadcast_to(lam, shape).astype(state.arrivals.dtype)
        sampler = poisson_counts if self.generator == "jax" else _hash_poisson_counts
        counts = _draw(sampler, self.rate_gradient, f"Poisson({self.target!r})", sub, lam)
        syn, s = self.synapse.step(state.synapse, self.weight * counts, dt)
        new = PoissonState(key=key, synapse=syn, arrivals=counts)
        return new, self.receptor.drive(s, self.synapse.instantaneous)

    def check(self, n: int, dt: float) -> None:
        check_shape(self.rate, n, f"Poisson({self.target!r}) rate")
        check_shape(self.weight, n, f"Poisson({self.target!r}) weight")
        self.synapse.check(dt)


class PoissonPopulationState(eqx.Module):
    key: PRNGKeyArray | HashStream  # HashStream with generator="hash"
    spikes: Float[Array, " n"]  # spikes emitted in the last step


class PoissonPopulation(AbstractNeuron[PoissonPopulationState]):
    r"""A population of independent Poisson spike generators, used as a source
    `Population` whose spikes reach other populations through ordinary projections.
    Each neuron spikes in a step with probability $\nu\,dt$ (Bernoulli approximation of
    a Poisson process, exact to $O((\nu dt)^2)$); input drive is ignored.

    **Arguments:**

    - `rate`: Firing rate [Hz], scalar or shape `(n,)`; `rate * dt` must stay below 0.1
      so that two spikes per step stay negligible.
    - `rate_gradient`: `None` (default): differentiating with respect to `rate` raises
      a `ValueError`. `"straight_through"`: exact draws, with
      $\partial\,\mathrm{spike}/\partial\,\mathrm{rate} := dt$ (the derivative of the
      spike probability; see `neurojax.inputs.stochastic`).
    - `generator`: `"jax"` (default) or `"hash"`, as for `Poisson`: with `"hash"` the
      1000 inputs of the Song-Abbott model draw a step in 0.55 us instead of 16.6 us.
    """

    rate: PopulationParam = eqx.field(converter=nonnegative("rate", "Hz"))
    rate_gradient: str | None = eqx.field(static=True, default=None)
    generator: str = eqx.field(static=True, default="jax")

    def __check_init__(self):
        _check_rate_gradient(self.rate_gradient, "PoissonPopulation")
        _check_generator(self.generator, "PoissonPopulation")

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> PoissonPopulationState:
        key = _require_key(key, "PoissonPopulation")
        return PoissonPopulationState(key=_stream_init(key, self.generator),
                                      spikes=jnp.zeros((n,), float))

    def step(self, state: PoissonPopulationState, drive: Drive, dt: float):
        key, sub = _stream_step(state.key, self.generator)
        p = jnp.broadcast_to(self.rate * (dt * 1e-3), state.spikes.shape)
        sampler = _bernoulli if self.generator == "jax" else _hash_bernoulli
        spikes = _draw(sampler, self.rate_gradient, "PoissonPopulation", sub,
                       p.astype(state.spikes.dtype))
        return PoissonPopulationState(key=key, spikes=spikes), spikes

    def check(self, n: int, dt: float) -> None:
        check_shape(self.rate, n, "PoissonPopulation rate")
        check_range(
            self.rate, "PoissonPopulation rate", "Hz", low=0.0, high=0.1 / (dt * 1e-3),
            high_open=True,
        )


class OrnsteinUhlenbeckState(eqx.Module):
    key: PRNGKeyArray | HashStream  # HashStream with generator="hash"
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
    - `generator`: `"jax"` (default) or `"hash"`, as for `Poisson`; with `"hash"` the
      normals are Box-Muller transforms of the hashed uniforms.
    """

    target: str = eqx.field(static=True)
    mean: PopulationParam = eqx.field(converter=finite("mean", "pA or nS"), default=0.0)
    sigma: PopulationParam = eqx.field(converter=nonnegative("sigma", "pA or nS"), default=1.0)
    tau: PopulationParam = eqx.field(converter=positive("tau", "ms"), default=5.0)
    receptor: AbstractReceptor = Current()
    generator: str = eqx.field(static=True, default="jax")

    def __check_init__(self):
        _check_generator(self.generator, f"OrnsteinUhlenbeck({self.target!r})")

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> OrnsteinUhlenbeckState:
        key = _require_key(key, f"OrnsteinUhlenbeck({self.target!r})")
        key, sub = jax.random.split(key)
        # Start from the stationary distribution so there is no transient.
        x = self.mean + self.sigma * jax.random.normal(sub, (n,))
        return OrnsteinUhlenbeckState(key=_stream_init(key, self.generator), x=x)

    def step(self, state: OrnsteinUhlenbeckState, t, dt: float):
        key, sub = _stream_step(state.key, self.generator)
        decay = jnp.exp(-dt / self.tau)
        xi = (_threefry.normal(sub, state.x.shape, jnp.result_type(float)) if self.generator == "jax"
              else sub.normals(state.x.shape, state.x.dtype))
        noise = self.sigma * jnp.sqrt(1.0 - decay**2) * xi
        x_next = self.mean + (state.x - self.mean) * decay + noise
        return OrnsteinUhlenbeckState(key=key, x=x_next), self.receptor.drive(state.x, False)

    def check(self, n: int, dt: float) -> None:
        for name in ("mean", "sigma", "tau"):
            check_shape(getattr(self, name), n, f"OrnsteinUhlenbeck({self.target!r}) {name}")
        check_time_constant_vs_dt(self.tau, dt, "OrnsteinUhlenbeck tau")
