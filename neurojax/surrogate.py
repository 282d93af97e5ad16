r"""Spike functions with surrogate gradients.

The forward pass is the Heaviside step $H(x)$ (a float 0/1 spike when the membrane
potential crosses threshold, $x = v - v_{th}$ [mV]); the backward pass replaces the
Dirac delta $H'(x)$ by a smooth pseudo-derivative (Neftci, Mostafa & Zenke 2019; Zenke &
Ganguli 2018)

$$\frac{\partial H}{\partial x} \approx \gamma\, f(\beta x),$$

with a shape $f$ that peaks at $f(0) = 1$, a `slope` $\beta$ [1/mV] that sets its width
and an `amplitude` $\gamma$ (dimensionless; the "dampening factor", 0.3 in Bellec et al.
2020) that scales it. Each surrogate is an `equinox.Module` whose configuration is
static: a surrogate has no array leaves, is hashable, and the neuron that holds it stays
a plain pytree of parameters.

**Support.** `surrogate.support` is the half-width [mV] of the derivative's support:
the derivative is exactly zero wherever `jnp.abs(x) > support` (compared in `x`'s dtype),
and `support` is `None` when the derivative is nonzero everywhere. `Triangle` has
compact support $1/\beta$; any surrogate can be truncated with
`Truncated(surrogate, width)`. A backward pass may skip every neuron whose potential is
farther than `support` from threshold: its surrogate derivative, and so every gradient
through its spike, is exactly zero.

**Overflow.** Every derivative is written so that it is finite for any finite or
infinite `x` at any positive slope, in float32 and float64 (no $e^{+|\beta x|}$ or ratio
of large numbers is ever formed).

!!! example
    ```python
    spike = nj.surrogate.FastSigmoid(slope=10.0, amplitude=0.3)
    s = spike(v - v_th)            # 0/1 forward
    jax.grad(lambda v: spike(v - v_th).sum())(v)   # smooth backward
    sparse = nj.surrogate.Truncated(spike, width=0.5)   # derivative 0 beyond 0.5 mV
    ```
"""

from __future__ import annotations

import abc
import functools
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def _check_positive(value, name: str, unit: str) -> None:
    """Raise unless `value` is a finite number in (0, inf) (static configuration)."""
    try:
        ok = math.isfinite(float(value)) and float(value) > 0.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"surrogate {name} {unit} must lie in (0, inf), got {value!r}.")


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _heaviside(surrogate: "AbstractSurrogate", x):
    return jnp.where(x >= 0, 1.0, 0.0).astype(x.dtype)


@_heaviside.defjvp
def _heaviside_jvp(surrogate, primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return _heaviside(surrogate, x), surrogate.derivative(x) * x_dot


class AbstractSurrogate(eqx.Module):
    """A Heaviside spike function whose derivative is replaced by a surrogate.

    Subclasses give `derivative(x)` (the pseudo-derivative [1/mV]) and `support` (the
    half-width [mV] outside which it is exactly zero, or `None`); calling a surrogate
    gives the 0/1 step forward and `derivative` backward.
    """

    @abc.abstractmethod
    def derivative(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """The surrogate derivative [1/mV] at `x` [mV], in `x`'s dtype."""

    @property
    @abc.abstractmethod
    def support(self) -> float | None:
        """Half-width [mV] of the derivative's support, or `None` for full support.

        The derivative is exactly zero wherever `jnp.abs(x) > support` (in `x`'s
        dtype), so a backward pass may skip those elements."""

    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """0/1 spikes where `x >= 0`, with the surrogate derivative."""
        return _heaviside(self, x)


class AbstractShapeSurrogate(AbstractSurrogate):
    r"""A surrogate $\gamma f(\beta x)$ given by a shape $f$ with $f(0) = 1$.

    **Arguments:**

    - `slope`: $\beta$ [1/mV], in (0, inf); the width scales as $1/\beta$.
    - `amplitude`: $\gamma$ (dimensionless), in (0, inf); the derivative's peak value.
      Values below 1 dampen the gradient through each spike, which keeps the
      gradients of long or recurrent runs from growing (Bellec et al. 2020 use 0.3).
    """

    slope: float = eqx.field(static=True, default=5.0)
    amplitude: float = eqx.field(static=True, default=1.0)
    # Half-width of f's support in units of beta x (None: f > 0 everywhere).
    shape_support: ClassVar[float | None] = None

    def __check_init__(self):
        _check_positive(self.slope, "slope", "[1/mV]")
        _check_positive(self.amplitude, "amplitude", "(dimensionless)")

    @staticmethod
    @abc.abstractmethod
    def shape(z: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """The shape $f(z)$ at $z = \\beta x$ (dimensionless), $f(0) = 1$."""

    @property
    def support(self) -> float | None:
        if self.shape_support is None:
            return None
        return self.shape_support / self.slope

    def derivative(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        d = self.amplitude * self.shape(self.slope * x)
        if self.support is not None:
            # Exactly zero outside the documented support, whatever the rounding of
            # slope * x at its edge.
            d = jnp.where(jnp.abs(x) <= self.support, d, 0.0)
        return d.astype(x.dtype)


class FastSigmoid(AbstractShapeSurrogate):
    r"""SuperSpike surrogate (Zenke & Ganguli 2018): $\gamma(1+\beta|x|)^{-2}$.

    Full support; `Truncated(FastSigmoid(...), width)` cuts it off at `width` [mV]."""

    @staticmethod
    def shape(z):
        # Squaring the reciprocal, not dividing by a square: no overflow at any z.
        return (1.0 / (1.0 + jnp.abs(z))) ** 2


class Triangle(AbstractShapeSurrogate):
    r"""Triangle (Esser et al. 2016; Bellec et al. 2018): $\gamma\max(0, 1-\beta|x|)$.

    Compact support: `support` $= 1/\beta$ [mV]."""

    shape_support: ClassVar[float | None] = 1.0

    @staticmethod
    def shape(z):
        return jnp.maximum(0.0, 1.0 - jnp.abs(z))


class Arctan(AbstractShapeSurrogate):
    r"""Arctangent (Fang et al. 2021): $\gamma/(1+(\pi\beta x)^2)$."""

    @staticmethod
    def shape(z):
        return 1.0 / (1.0 + (jnp.pi * z) ** 2)


class Exponential(AbstractShapeSurrogate):
    r"""Exponential (Shrestha & Orchard 2018): $\gamma e^{-\beta|x|}$."""

    @staticmethod
    def shape(z):
        return jnp.exp(-jnp.abs(z))


class Sigmoid(AbstractShapeSurrogate):
    r"""Derivative of a logistic sigmoid, scaled to $\gamma$ at 0:
    $4\gamma\sigma(\beta x)(1-\sigma(\beta x)) = \gamma\,\mathrm{sech}^2(\beta x/2)$."""

    @staticmethod
    def shape(z):
        # 4 e / (1 + e)^2 with e = exp(-|z|) <= 1: no overflow, and full relative
        # accuracy in the tails, where 4 s (1 - s) rounds 1 - s to 0 (float32: |z| > 17).
        e = jnp.exp(-jnp.abs(z))
        return 4.0 * e / (1.0 + e) ** 2


class Truncated(AbstractSurrogate):
    r"""`surrogate` with its derivative set to zero beyond `width` [mV]:

    $$\partial H(x) \approx \begin{cases} f(x) & |x| \le w \\ 0 & |x| > w \end{cases}$$

    where $f$ is `surrogate.derivative`. The derivative jumps to zero at $\pm w$; the
    forward pass is unchanged. Gives a full-support surrogate (e.g. a truncated fast
    sigmoid) compact support, so that the backward pass can skip neurons far from
    threshold.

    **Arguments:**

    - `surrogate`: The surrogate to truncate.
    - `width`: Half-width $w$ [mV] of the support, in (0, inf).

    `support` is `width`, or the inner surrogate's own support if that is narrower.

    !!! example
        ```python
        spike = nj.surrogate.Truncated(nj.surrogate.FastSigmoid(slope=10.0), width=0.3)
        ```
    """

    surrogate: AbstractSurrogate
    width: float = eqx.field(static=True)

    def __check_init__(self):
        _check_positive(self.width, "width", "[mV]")

    @property
    def support(self) -> float | None:
        inner = self.surrogate.support
        return self.width if inner is None else min(self.width, inner)

    def derivative(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        d = self.surrogate.derivative(x)
        return jnp.where(jnp.abs(x) <= self.width, d, 0.0).astype(x.dtype)


def spike(x: Float[Array, "*shape"], slope: float = 5.0) -> Float[Array, "*shape"]:
    """Heaviside spike with the fast-sigmoid (SuperSpike) surrogate of `slope` [1/mV]."""
    # Through FastSigmoid so that a slope <= 0 raises instead of giving a derivative
    # with a pole at |x| = 1/|slope|.
    return FastSigmoid(slope=slope)(x)


def _reset(
    v: Float[Array, " n"],
    spikes: Float[Array, " n"],
    v_reset: Float[Array, "*#n"],
    detach: bool,
) -> Float[Array, " n"]:
    r"""`v_reset` where `spikes` is 1, else `v`; with the reset's surrogate gradient
    unless `detach`.

    Forward this is `jnp.where(spikes > 0, v_reset, v)` in both cases (bit for bit).
    With `detach=True` no gradient flows through the spike into the reset (the reset
    uses `stop_gradient(spikes)`); with `detach=False` the reset is differentiated as
    $v (1 - s) + v_{reset} s$, adding $(v_{reset} - v)\,\partial s$ to the tangent
    (Zenke & Vogels 2021 compare the two).
    """
    if detach:
        return jnp.where(jax.lax.stop_gradient(spikes) > 0, v_reset, v)
    return _reset_through_spike(v, spikes, jnp.broadcast_to(v_reset, v.shape))


@jax.custom_jvp
def _reset_through_spike(v, spikes, v_reset):
    return jnp.where(spikes > 0, v_reset, v)


@_reset_through_spike.defjvp
def _reset_through_spike_jvp(primals, tangents):
    v, spikes, v_reset = primals
    v_dot, spikes_dot, v_reset_dot = tangents
    # A v that overshot to +-inf (explicit integrators under huge drive) is replaced by
    # v_reset anyway; its factor is set to 0 so that 0 * inf cannot make a NaN.
    jump = jnp.where(jnp.isfinite(v), v_reset - v, 0.0)
    out = jnp.where(spikes > 0, v_reset, v)
    return out, jnp.where(spikes > 0, v_reset_dot, v_dot) + jump * spikes_dot
