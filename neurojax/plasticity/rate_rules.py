r"""Hebbian rules for rate networks: `BCM` (sliding threshold) and `Oja`
(normalised Hebbian learning, principal component)."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._misc import check_range, check_time_constant_vs_dt, nonnegative, positive
from .abstract import AbstractPlasticity, container_weights
from .stdp import _layout


def _check_scalars(rule: Any, fields: tuple[str, ...], name: str) -> None:
    for field in fields:
        if np.ndim(getattr(rule, field)) != 0:
            raise ValueError(
                f"projection {name!r}: {type(rule).__name__} {field} must be a scalar, got "
                f"shape {np.shape(getattr(rule, field))}."
            )


class BCMState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]
    theta: Float[Array, " post"]  # sliding threshold, running average of y^2 [Hz^2]


class BCM(AbstractPlasticity[BCMState]):
    r"""The BCM rule with a sliding threshold (Bienenstock, Cooper & Munro 1982), in the
    form of Intrator & Cooper (1992): for presynaptic rate $x$ and postsynaptic rate $y$

    $$\frac{dw}{dt} = \eta\, x\, y\, (y - \theta), \qquad
      \tau_\theta \frac{d\theta}{dt} = y^2 - \theta,$$

    one threshold $\theta$ per postsynaptic neuron (a running average of $y^2$, in the
    rule's state, starting at 0). Per step of `dt`: the weights take an Euler step with
    the threshold before this step, $w \mathrel{+}= dt\,\eta\,x\,y\,(y - \theta)$, then
    the threshold relaxes exactly towards this step's $y^2$,
    $\theta \leftarrow y^2 + (\theta - y^2) e^{-dt/\tau_\theta}$. With $K$ linearly
    independent input patterns shown with probabilities $p_k$ the stable fixed points are
    selective: the response to one pattern is $1/p_k$ (the threshold), the others 0.

    Meant for rate populations (`pre` and `post` are rates [Hz]); the weights are not
    bounded (the threshold stabilises them). Works on `Dense` and `Sparse` projections
    (the formula runs over every stored synapse each step).

    **Arguments:**

    - `eta`: Learning rate $\eta$ [weight units / (ms · Hz³)], >= 0.
    - `tau_theta`: Threshold averaging time $\tau_\theta$ [ms], > 0.

    !!! example

        ```python
        bcm = nj.plasticity.BCM(eta=0.002, tau_theta=100.0)
        ```
    """

    eta: Float[Array, ""] = eqx.field(converter=nonnegative("BCM eta", "weight units / (ms Hz^3)"))
    tau_theta: Float[Array, ""] = eqx.field(converter=positive("BCM tau_theta", "ms"))
    changes_weights: ClassVar[bool] = True

    def __init__(self, eta=0.002, tau_theta=100.0):
        self.eta = eta
        self.tau_theta = tau_theta

    def init(self, structure: Any, weights: Array | None) -> BCMState:
        w = container_weights(structure) if weights is None else weights
        return BCMState(weights=w, theta=jnp.zeros((structure.n_post,), w.dtype))

    def weights(self, state: BCMState) -> Array:
        return state.weights

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        dtype = state.weights.dtype
        x, y = pre.astype(dtype), post.astype(dtype)
        pre_at, post_at, mask = _layout(structure)
        dw = dt * self.eta * pre_at(x) * post_at(y * (y - state.theta))
        w = jnp.where(mask, state.weights + dw, state.weights)
        y2 = y * y
        theta = y2 + (state.theta - y2) * jnp.exp(-dt / self.tau_theta)
        return BCMState(weights=w, theta=theta), w

    def check(self, structure: Any, dt: float, name: str) -> None:
        _check_scalars(self, ("eta", "tau_theta"), name)
        check_range(self.eta, "BCM eta", "weight units / (ms Hz^3)", low=0.0)
        check_range(self.tau_theta, "BCM tau_theta", "ms", low=0.0, low_open=True)
        check_time_constant_vs_dt(self.tau_theta, dt, "BCM tau_theta")


class OjaState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]


class Oja(AbstractPlasticity[OjaState]):
    r"""Oja's (1982) rule: Hebbian learning with a decay that normalises each
    postsynaptic neuron's incoming weight vector. For presynaptic rates $x$ and
    postsynaptic rate $y$

    $$\frac{dw}{dt} = \eta\, y\, (x - y\, w),$$

    integrated with Euler steps, $w \mathrel{+}= dt\,\eta\,y\,(x - y w)$. For a linear
    neuron $y = w \cdot x$ fed zero-mean inputs with covariance $C$, $w$ converges to the
    unit-norm principal eigenvector of $C$ (up to sign).

    Meant for rate populations (`pre`, `post` rates; the weights are in units of
    post/pre rate so that $y = w \cdot x$). Works on `Dense` and `Sparse` projections
    (the formula runs over every stored synapse each step).

    **Arguments:**

    - `eta`: Learning rate $\eta$ [1 / (ms · Hz²)], >= 0.

    !!! example

        ```python
        oja = nj.plasticity.Oja(eta=1e-3)
        ```
    """

    eta: Float[Array, ""] = eqx.field(converter=nonnegative("Oja eta", "1 / (ms Hz^2)"))
    changes_weights: ClassVar[bool] = True

    def __init__(self, eta=1e-3):
        self.eta = eta

    def init(self, structure: Any, weights: Array | None) -> OjaState:
        return OjaState(weights=container_weights(structure) if weights is None else weights)

    def weights(self, state: OjaState) -> Array:
        return state.weights

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        w = state.weights
        x, y = pre.astype(w.dtype), post.astype(w.dtype)
        pre_at, post_at, mask = _layout(structure)
        dw = dt * self.eta * post_at(y) * (pre_at(x) - post_at(y) * w)
        w = jnp.where(mask, w + dw, w)
        return OjaState(weights=w), w

    def check(self, structure: Any, dt: float, name: str) -> None:
        _check_scalars(self, ("eta",), name)
        check_range(self.eta, "Oja eta", "1 / (ms Hz^2)", low=0.0)
