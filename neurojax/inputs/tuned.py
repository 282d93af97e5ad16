r"""Inputs that follow structure: `Tuned`, Poisson drive whose rate depends on each
neuron's preferred feature value (an oriented grating of a given contrast).

$$\nu_i = \nu_0 + \nu_{max}\, g(c)\, f(\theta_i - \theta_s),\qquad
g(c) = c \;\text{or}\; \frac{c^n}{c^n + c_{50}^n}\;\text{(Naka–Rushton)},$$

with $\theta_i$ neuron $i$'s value of the feature (`Population(..., features=...)`),
$\theta_s$ the stimulus and $f$ a von Mises profile on a periodic feature of period $L$,
$f = \exp(\kappa(\cos(2\pi\Delta/L) - 1))$, or a Gaussian of width $\sigma$ on a line.
The stimulus, contrast and rates are parameters (leaves), so a tuning curve is one
`vmap` over stimuli and a contrast sweep needs no rebuild.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._abstract import AbstractInput, Drive
from .._custom_types import ScalarLike
from .._misc import check_range, finite, nonnegative
from ..synapses.kinetics import AbstractKinetics, Delta
from ..synapses.receptors import AbstractReceptor, Current
from .stochastic import Poisson, PoissonState, _check_generator

__all__ = ["Tuned"]


class Tuned(AbstractInput[PoissonState]):
    """Poisson drive tuned to a feature of the target population: each neuron receives
    `n_sources` Poisson trains whose rate peaks when the stimulus matches its preferred
    value (see the module docstring for the formula).

    **Arguments:**

    - `target`: Name of the target population, which has the feature.
    - `feature`: Name of the feature (`Population(..., features={feature: space})`).
    - `stimulus`: The stimulus value, in the feature's unit (e.g. 45 [deg]).
    - `contrast`: Stimulus contrast, >= 0 (1 = full contrast).
    - `rate`: Peak rate added at full drive [Hz], >= 0.
    - `baseline`: Untuned rate [Hz], >= 0.
    - `kappa`: Von Mises concentration (periodic feature), or the Gaussian width in the
      feature's unit (non-periodic), > 0.
    - `c50`, `exponent`: Naka–Rushton contrast response $c^n / (c^n + c_{50}^n)$;
      `c50=None` (default) makes the drive linear in contrast.
    - `n_sources`, `weight`, `synapse`, `receptor`, `rate_gradient`, `generator`: As for
      `Poisson`.

    !!! example
        ```python
        ring = nj.connectivity.Ring(length=180.0)                       # orientation [deg]
        E = nj.Population("E", 1000, lif, features={"orientation": ring})
        grating = nj.inputs.Tuned("E", "orientation", stimulus=45.0, contrast=0.5,
                                  rate=20.0, baseline=2.0, kappa=2.0, n_sources=100)
        ```
    """

    target: str = eqx.field(static=True)
    feature: str = eqx.field(static=True)
    stimulus: ScalarLike = eqx.field(converter=finite("stimulus", "feature units"))
    contrast: ScalarLike = eqx.field(converter=nonnegative("contrast", ""), default=1.0)
    rate: ScalarLike = eqx.field(converter=nonnegative("rate", "Hz"), default=10.0)
    baseline: ScalarLike = eqx.field(converter=nonnegative("baseline", "Hz"), default=0.0)
    kappa: ScalarLike = eqx.field(converter=finite("kappa", ""), default=2.0)
    c50: ScalarLike | None = None
    exponent: float = eqx.field(static=True, default=2.0)
    n_sources: int = eqx.field(static=True, default=1)
    weight: ScalarLike = eqx.field(converter=finite("weight", "receptor units"), default=1.0)
    synapse: AbstractKinetics = Delta()
    receptor: AbstractReceptor = Current()
    rate_gradient: str | None = eqx.field(static=True, default=None)
    generator: str = eqx.field(static=True, default="jax")
    # Filled by `Network.build` from the target population (structure, not a parameter).
    preferred: Float[Array, " n"] | None = None
    period: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_range(self.kappa, "Tuned kappa", "", low=0.0, low_open=True)
        if self.c50 is not None:
            check_range(self.c50, "Tuned c50", "", low=0.0, low_open=True)
        check_range(self.exponent, "Tuned exponent", "", low=0.0, low_open=True)
        check_range(self.n_sources, "Tuned n_sources", "sources", low=1.0)
        _check_generator(self.generator, f"Tuned({self.target!r})")

    def bind(self, population) -> Tuned:
        """This input with the target population's preferred values filled in."""
        space = population.features.get(self.feature)
        if space is None:
            raise ValueError(
                f"Tuned input to {population.name!r}: the population has no feature "
                f"{self.feature!r} (it has {sorted(population.features)}); give it one, e.g. "
                "Population(..., features={'orientation': nj.connectivity.Ring(length=180.0)})."
            )
        period = float(space.extent[0]) if space.periodic else None
        return dataclasses.replace(
            self, preferred=jnp.asarray(population.feature(self.feature), float), period=period
        )

    def rates(self) -> Float[Array, " n"]:
        """Each neuron's total source rate [Hz] for the current stimulus and contrast."""
        if self.preferred is None:
            raise ValueError(f"Tuned({self.target!r}) is not bound to a population; build the Network first.")
        delta = jax.lax.stop_gradient(self.preferred) - self.stimulus
        if self.period is not None:
            profile = jnp.exp(self.kappa * (jnp.cos(2.0 * jnp.pi * delta / self.period) - 1.0))
        else:
            profile = jnp.exp(-0.5 * (delta / self.kappa) ** 2)
        c = jnp.asarray(self.contrast, float)
        if self.c50 is not None:
            c = c**self.exponent / (c**self.exponent + jnp.asarray(self.c50, float) ** self.exponent)
        return self.baseline + self.rate * c * profile

    def _poisson(self) -> Poisson:
        return Poisson(self.target, rate=self.rates(), n_sources=self.n_sources, weight=self.weight,
                       synapse=self.synapse, receptor=self.receptor, rate_gradient=self.rate_gradient,
                       generator=self.generator)

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> PoissonState:
        return Poisson(self.target, rate=0.0, n_sources=self.n_sources, weight=self.weight,
                       synapse=self.synapse, receptor=self.receptor,
                       generator=self.generator).init(n, key=key)

    def step(self, state: PoissonState, t, dt: float) -> tuple[PoissonState, Drive]:
        return self._poisson().step(state, t, dt)

    def check(self, n: int, dt: float) -> None:
        if self.preferred is not None and self.preferred.shape != (n,):
            raise ValueError(f"Tuned({self.target!r}) was bound to {self.preferred.shape[0]} neurons, the target has {n}.")
        self.synapse.check(dt)
