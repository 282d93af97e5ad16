"""The step protocol shared by every component that evolves in time.

```python
state = component.init(n, key=None)
state, out = component.step(state, inputs, dt)
```
"""

from __future__ import annotations

import abc
from typing import ClassVar, Generic, TypeVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

_State = TypeVar("_State")


class Drive(eqx.Module):
    r"""Everything that synapses and inputs deliver to a population in one step.

    The membrane current at potential $v$ is $I(v) = i - g\,v$ [pA] and the charge
    delivered instantaneously at the end of the step (delta synapses) is
    $Q(v) = q - q_g\,v$ [pA·ms = fC]. Current-based inputs add to `i` and `q`;
    a conductance $g_k$ with reversal $E_k$ adds $g_k E_k$ to `i` and $g_k$ to
    `g` (likewise for `q`, `qg`). Keeping the drive linear in $v$ lets integrators
    treat conductances exactly (exponential Euler with an effective time constant).

    Rate units read `graded()` = `i + q` as their input (a graded signal in the units
    of the projection's weights): delta-synapse arrivals act as instantaneous input.

    **Fields:**

    - `i`: Voltage-independent current [pA].
    - `g`: Total conductance [nS].
    - `q`: Voltage-independent charge delivered this step [pA·ms].
    - `qg`: Conductance·time delivered this step [nS·ms].

    Each field has shape `(n,)`, or `()` when the same for every neuron (inputs may
    return scalars; the network sums everything into shape `(n,)` before a neuron
    step, so neuron models always see shape `(n,)`).
    """

    i: Float[Array, "*#n"]
    g: Float[Array, "*#n"]
    q: Float[Array, "*#n"]
    qg: Float[Array, "*#n"]

    @classmethod
    def zeros(cls, n: int, dtype=None) -> "Drive":
        z = jnp.zeros((n,), dtype=dtype if dtype is not None else float)
        return cls(z, z, z, z)

    def current(self, v: Float[Array, " n"]) -> Float[Array, " n"]:
        """Total current at membrane potential `v` [mV], in [pA]."""
        return self.i - self.g * v

    def charge(self, v: Float[Array, " n"]) -> Float[Array, " n"]:
        """Instantaneous charge at membrane potential `v` [mV], in [pA·ms]."""
        return self.q - self.qg * v

    def graded(self) -> Float[Array, "*#n"]:
        """The input of a rate unit: held input `i` plus instantaneous arrivals `q`
        (so `W r` propagated through `Delta` synapses reaches it undelayed by kinetics)."""
        return self.i + self.q

    def __add__(self, other: "Drive") -> "Drive":
        return Drive(
            self.i + other.i, self.g + other.g, self.q + other.q, self.qg + other.qg
        )


class AbstractModel(eqx.Module, Generic[_State]):
    """Anything that evolves in time with `init` and a pure `step`."""

    @abc.abstractmethod
    def step(self, state: _State, inputs, dt: float):
        """Advance `state` by `dt` [ms]; returns `(state, outputs)`."""


class AbstractNeuron(AbstractModel[_State]):
    """A population of `n` neurons of one model.

    Parameters are scalars or arrays of shape `(n,)`. `init(n, key=None)` returns the
    resting state; `step(state, drive, dt)` returns the new state and the output: float
    0/1 spikes for spiking models (`spiking = True`) or graded rates for rate models.
    """

    spiking: ClassVar[bool] = True

    @abc.abstractmethod
    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> _State:
        """The resting state of `n` neurons (random where the model says so)."""

    @abc.abstractmethod
    def step(
        self, state: _State, drive: Drive, dt: float
    ) -> tuple[_State, Float[Array, " n"]]:
        """Advance by `dt` [ms] under `drive`; returns `(state, output)`."""

    def check(self, n: int, dt: float) -> None:
        """Raise a `ValueError` if parameters do not fit `n` neurons or `dt` [ms] is
        too large for this model. Called once before a simulation (not traced)."""


class AbstractInput(AbstractModel[_State]):
    """External drive to one population, named by `target`.

    `init(n, *, key=None)` returns the input's state for a target of `n` neurons;
    `step(state, t, dt)` returns `(state, drive)` with `drive` a `Drive` for the step
    starting at time `t` [ms].
    """

    target: eqx.AbstractVar[str]

    @abc.abstractmethod
    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> _State:
        """The initial state for a target population of `n` neurons."""

    @abc.abstractmethod
    def step(self, state: _State, t, dt: float) -> tuple[_State, Drive]:
        """The drive for the step starting at `t` [ms]."""

    def check(self, n: int, dt: float) -> None:
        """Raise a `ValueError` if parameters do not fit `n` neurons or `dt` [ms]."""
