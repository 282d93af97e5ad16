"""Deterministic inputs: `Constant` and `Waveform` (any sampled time course)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._abstract import AbstractInput, Drive
from .._custom_types import PopulationParam
from .._misc import check_shape, finite, is_concrete
from ..synapses.receptors import AbstractReceptor, Current


class NoState(eqx.Module):
    pass


class Constant(AbstractInput[NoState]):
    """A constant drive to every neuron of `target`.

    **Arguments:**

    - `target`: Name of the target population.
    - `amplitude`: Current [pA] with the default `Current()` receptor, or conductance
      [nS] with a `Conductance` receptor. Scalar or shape `(n,)`.
    - `receptor`: How the amplitude acts on the membrane.

    !!! example
        ```python
        nj.inputs.Constant("I", amplitude=200.0)  # 200 pA into every I cell
        ```
    """

    target: str = eqx.field(static=True)
    amplitude: PopulationParam = eqx.field(converter=finite("amplitude", "pA or nS"))
    receptor: AbstractReceptor = Current()

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> NoState:
        return NoState()

    def step(self, state: NoState, t, dt: float) -> tuple[NoState, Drive]:
        return state, self.receptor.drive(self.amplitude, False)

    def check(self, n: int, dt: float) -> None:
        check_shape(self.amplitude, n, f"Constant({self.target!r}) amplitude")


class Waveform(AbstractInput[NoState]):
    """A drive that follows a sampled time course, linearly interpolated at the start
    of each step and held constant outside the sampled range.

    **Arguments:**

    - `target`: Name of the target population.
    - `times`: Sample times [ms], shape `(k,)`, strictly increasing.
    - `values`: Samples [pA] (or [nS] with a `Conductance` receptor), shape `(k,)` for
      the same drive to every neuron or `(k, n)` per neuron.
    - `receptor`: How the value acts on the membrane.
    """

    target: str = eqx.field(static=True)
    times: Float[Array, " k"] = eqx.field(converter=finite("times", "ms"))
    values: Float[Array, "k *n"] = eqx.field(converter=finite("values", "pA or nS"))
    receptor: AbstractReceptor = Current()

    def __check_init__(self):
        if self.times.ndim != 1 or self.times.shape[0] < 1:
            raise ValueError(f"Waveform times [ms] must be a non-empty 1-D array, got shape {self.times.shape}.")
        if self.values.ndim not in (1, 2) or self.values.shape[0] != self.times.shape[0]:
            raise ValueError(
                f"Waveform values must have shape ({self.times.shape[0]},) or "
                f"({self.times.shape[0]}, n) to match times, got {self.values.shape}."
            )
        if is_concrete(self.times) and np.any(np.diff(np.asarray(self.times)) <= 0):
            raise ValueError("Waveform times [ms] must be strictly increasing.")

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> NoState:
        return NoState()

    def value(self, t) -> Float[Array, "*n"]:
        """The interpolated value at time `t` [ms]."""
        if self.values.ndim == 1:
            return jnp.interp(t, self.times, self.values)
        return _interp_columns(t, self.times, self.values)

    def step(self, state: NoState, t, dt: float) -> tuple[NoState, Drive]:
        return state, self.receptor.drive(self.value(t), False)

    def check(self, n: int, dt: float) -> None:
        if self.values.ndim == 2 and self.values.shape[1] != n:
            raise ValueError(
                f"Waveform({self.target!r}) values must have {n} columns (one per neuron), "
                f"got shape {self.values.shape}."
            )


def _interp_columns(t, times, values):
    """Linear interpolation of every column of `values` at scalar time `t`."""
    idx = jnp.clip(jnp.searchsorted(times, t, side="right") - 1, 0, times.shape[0] - 1)
    nxt = jnp.minimum(idx + 1, times.shape[0] - 1)
    span = times[nxt] - times[idx]
    frac = jnp.where(span > 0, (t - times[idx]) / jnp.where(span > 0, span, 1.0), 0.0)
    frac = jnp.clip(frac, 0.0, 1.0)
    return values[idx] + frac * (values[nxt] - values[idx])
