"""Random initial values and per-synapse parameters: `Normal`, `Uniform`, `LogNormal`.

A distribution is sampled once, at build or init time, with an explicit key:

```python
nj.Projection("E", "I", nj.connectivity.FixedProbability(0.1), weight=nj.Normal(2.0, 0.5))
nj.Population("E", 100, lif, initial={"v": nj.Uniform(-60.0, -50.0)})
```
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._custom_types import ScalarLike
from ._misc import check_range


class AbstractDistribution(eqx.Module):
    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """Draw independent values of the given shape."""


class Normal(AbstractDistribution):
    """Normal distribution with `mean` and standard deviation `std` (same unit as the
    quantity sampled)."""

    mean: ScalarLike
    std: ScalarLike

    def __check_init__(self):
        check_range(self.std, "Normal std", "", low=0.0)

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        return self.mean + self.std * jax.random.normal(key, shape)


class Uniform(AbstractDistribution):
    """Uniform distribution on `[low, high)`."""

    low: ScalarLike
    high: ScalarLike

    def __check_init__(self):
        check_range(self.high - self.low, "Uniform high - low", "", low=0.0)

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        return jax.random.uniform(key, shape, minval=self.low, maxval=self.high)


class LogNormal(AbstractDistribution):
    """Log-normal distribution whose logarithm has mean `mu` and std `sigma`; its
    values are positive (useful for weights that must keep their sign)."""

    mu: ScalarLike
    sigma: ScalarLike

    def __check_init__(self):
        check_range(self.sigma, "LogNormal sigma", "", low=0.0)

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        return jnp.exp(self.mu + self.sigma * jax.random.normal(key, shape))
