r"""Spike functions with surrogate gradients.

The forward pass is the Heaviside step $H(x)$ (a float 0/1 spike when the membrane
potential crosses threshold, $x = v - v_{th}$ [mV]); the backward pass replaces the
Dirac delta $H'(x)$ by a smooth pseudo-derivative of width set by `slope` [1/mV]
(Neftci, Mostafa & Zenke 2019; Zenke & Ganguli 2018). Each surrogate below is an
`equinox.Module`, so `slope` is static configuration and the neuron that holds it stays
hashable.

!!! example
    ```python
    spike = nj.surrogate.FastSigmoid(slope=10.0)
    s = spike(v - v_th)            # 0/1 forward
    jax.grad(lambda v: spike(v - v_th).sum())(v)   # smooth backward
    ```
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def _make(derivative):
    @jax.custom_jvp
    def fn(x, slope):
        return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)

    @fn.defjvp
    def fn_jvp(primals, tangents):
        x, slope = primals
        x_dot, _ = tangents
        return fn(x, slope), derivative(x, slope) * x_dot

    return fn


def _fast_sigmoid_d(x, slope):
    return 1.0 / (1.0 + slope * jnp.abs(x)) ** 2


def _triangle_d(x, slope):
    return jnp.maximum(0.0, 1.0 - slope * jnp.abs(x))


def _arctan_d(x, slope):
    return 1.0 / (1.0 + (jnp.pi * slope * x) ** 2)


def _exponential_d(x, slope):
    return jnp.exp(-slope * jnp.abs(x))


def _sigmoid_d(x, slope):
    s = jax.nn.sigmoid(slope * x)
    return 4.0 * s * (1.0 - s)


_fast_sigmoid = _make(_fast_sigmoid_d)
_triangle = _make(_triangle_d)
_arctan = _make(_arctan_d)
_exponential = _make(_exponential_d)
_sigmoid = _make(_sigmoid_d)


class AbstractSurrogate(eqx.Module):
    """A Heaviside spike function whose derivative is replaced by a surrogate.

    All surrogates have value 1 at the threshold's derivative peak, `x = 0`.
    """

    slope: float = eqx.field(static=True, default=5.0)

    def __check_init__(self):
        if not (float(self.slope) > 0.0):
            raise ValueError(
                f"surrogate slope [1/mV] must lie in (0, inf), got {self.slope!r}."
            )

    @abc.abstractmethod
    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """0/1 spikes where `x >= 0`, with the surrogate derivative."""


class FastSigmoid(AbstractSurrogate):
    r"""SuperSpike surrogate (Zenke & Ganguli 2018): $\partial H \approx (1+\beta|x|)^{-2}$."""

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        return _fast_sigmoid(x, jnp.asarray(self.slope, x.dtype))


class Triangle(AbstractSurrogate):
    r"""Triangle (Esser et al. 2016; Bellec et al. 2018): $\max(0, 1-\beta|x|)$."""

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        return _triangle(x, jnp.asarray(self.slope, x.dtype))


class Arctan(AbstractSurrogate):
    r"""Arctangent (Fang et al. 2021): $1/(1+(\pi\beta x)^2)$."""

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        return _arctan(x, jnp.asarray(self.slope, x.dtype))


class Exponential(AbstractSurrogate):
    r"""Exponential (Shrestha & Orchard 2018): $e^{-\beta|x|}$."""

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        return _exponential(x, jnp.asarray(self.slope, x.dtype))


class Sigmoid(AbstractSurrogate):
    r"""Derivative of a logistic sigmoid, scaled to 1 at 0: $4\sigma(\beta x)(1-\sigma(\beta x))$."""

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        return _sigmoid(x, jnp.asarray(self.slope, x.dtype))


def spike(x: Float[Array, "*shape"], slope: float = 5.0) -> Float[Array, "*shape"]:
    """Heaviside spike with the fast-sigmoid (SuperSpike) surrogate of `slope` [1/mV]."""
    # Through FastSigmoid so that a slope <= 0 raises instead of giving a derivative
    # with a pole at |x| = 1/|slope|.
    return FastSigmoid(slope=slope)(x)
