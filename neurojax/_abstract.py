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
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray, Real

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

    @classmethod
    def from_current(cls, i: Real[ArrayLike, "*#n"]) -> "Drive":
        """A drive of current `i` [pA] alone: no conductance and no instantaneous charge
        (the other three fields are zeros of `i`'s shape), e.g. to step a neuron by hand
        with `neuron.step(state, nj.Drive.from_current(jnp.full((n,), 200.0)), dt)`."""
        i = jnp.asarray(i)
        if not jnp.issubdtype(i.dtype, jnp.floating):
            i = i.astype(float)
        zero = jnp.zeros_like(i)
        return cls(i, zero, zero, zero)

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
    r"""A population of `n` neurons of one model: the protocol every neuron follows.

    A neuron model is an immutable `equinox.Module`. Its array fields are the
    parameters (leaves that `jax.grad` differentiates and `jax.vmap` batches), each a
    scalar shared by the population or an array of shape `(n,)`, one value per neuron;
    pass them through a converter (`converter=jnp.asarray`, or one that also checks the
    range and raises a `ValueError` naming the parameter, its unit and the allowed
    range). Configuration that is not differentiated (flags, a surrogate's slope) is a
    static field or a module field. Everything that changes over time lives in a
    separate State: an `equinox.Module` named `<Model>State` whose fields are arrays of
    shape `(n,)`, with no `__init__`. The model holds no `n`: one model object serves
    populations of any size.

    **Methods to implement:**

    - `init(n, *, key=None) -> State`: the resting state of `n` neurons, with explicit
      dtypes (ideally a fixed point at zero drive). `key` is a `jax.random` key for
      models whose initial state is random; deterministic models ignore it.
      `Population(initial={"v": ...})` then overrides state fields by name, so the
      field names are the names users write (`Record(v=...)` records them too).
    - `step(state, drive, dt) -> (state, output)`: advance by `dt` [ms] under `drive`,
      a `Drive` whose fields have shape `(n,)`. Read the membrane current at potential
      `v` with `drive.current(v)` [pA] (conductances included: hold them over the step
      or integrate them exactly, as the library's exponential Euler does) and add the
      instantaneous delta-synapse charge `drive.charge(v)` [pA·ms] at the end of the
      step (a jump of `charge / c_m` [mV]); rate models read `drive.graded()`. Return
      the new State and the output of shape `(n,)`: for spiking models float 0/1
      spikes from a surrogate spike function (`neurojax.surrogate`, whose derivative is
      what gradients see; detected at the end of the step), for rate models
      (`spiking = False`) the graded rates. The step must be pure: no side effects, no
      Python `if` on array values (use `jnp.where`), no global state or RNG (a
      stochastic model keeps a key in its State and splits it each step). Guard
      singular branches so gradients stay finite.
    - `check(n, dt)` (optional): raise a `ValueError` if the parameters do not fit `n`
      neurons (shape `()` or `(n,)`) or `dt` [ms] is too large for the model's time
      constants. Called once before a simulation, outside the scan, but possibly with
      traced parameters (under `jax.grad`, `jax.vmap` or `jax.jit`): check shapes
      always, values only when concrete.
    - `voltage(state)` (optional): the membrane potential [mV] of shape `(n,)` at which
      voltage-dependent receptors (`NMDA`) act, or `None`. The default reads the
      state's `v` for spiking models; override it if `v` is not a potential in mV.

    **Class variable:** `spiking` (default `True`): whether the output is spikes,
    which sets the default layout of outgoing projections (dense for rate units) and
    what `Record` keeps.

    Units are the library's: ms, mV, pF, nS, pA, Hz (nS·mV = pA, pA/pF = mV/ms). A
    `Network` calls `init` once per population and `step` once per time step, after
    synapses and inputs have summed their drive and before its output is propagated.

    !!! example
        The guide "Write your own neuron" (`docs/guides/custom_neuron.py`) builds a
        complete model; in outline:

        ```python
        class QIFState(eqx.Module):
            v: Float[Array, " n"]           # membrane potential [mV]
            refractory: Float[Array, " n"]  # time left in the refractory period [ms]

        class QIF(nj.AbstractNeuron[QIFState]):
            c_m: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=200.0)
            ...
            def init(self, n, *, key=None):
                v = jnp.broadcast_to(self.e_l, (n,)).astype(float)
                return QIFState(v=v, refractory=jnp.zeros((n,), v.dtype))

            def step(self, state, drive, dt):
                ...  # integrate, then spikes = self.surrogate(v - self.v_peak)
                return QIFState(v=v, refractory=refractory), spikes
        ```
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

    def voltage(self, state: _State) -> Float[Array, " n"] | None:
        """The membrane potential [mV] at which synapses act, shape `(n,)`, or `None`
        for a model without one. Voltage-dependent receptors (`NMDA`) read it at the
        start of each step. The default is the state's `v` for spiking models and
        `None` for rate units (`spiking = False`); override it where `v` is not a
        potential in mV or not of shape `(n,)`."""
        if not self.spiking:
            return None
        v = getattr(state, "v", None)
        return v if isinstance(v, jnp.ndarray) and jnp.ndim(v) == 1 else None

    def gradient_support(
        self, state: _State, output: Float[Array, " n"]
    ) -> Bool[Array, " n"] | None:
        """The neurons whose `output` of this step can carry a gradient, or `None`.

        `state` and `output` are what `step` just returned. A spike's surrogate
        derivative is exactly zero away from threshold when the surrogate has compact
        support (`surrogate.support`); every gradient through those neurons' outputs
        is then zero, and sparse propagation's backward pass may skip their rows
        (`SparseWeights.deliver(support=...)`). The mask must include every neuron
        whose derivative can be non-zero (a superset is exact, only slower). The
        default `None` (every neuron, the dense-equivalent VJP) suits models with
        full-support surrogates and graded outputs; `LIF`, `ALIF`, `EIF` and `AdEx`
        override it. Only the backward pass uses it."""
        return None


class AbstractInput(AbstractModel[_State]):
    """External drive to one population, named by `target`: the protocol every input
    follows.

    An input is an immutable `equinox.Module` with a static `target: str` field (the
    name of the population it drives). Its array fields are parameters (scalars or
    arrays of shape `(n,)` for the target's `n` neurons), which `model.params()` names
    `"<Type>-><target>.<field>"`; whatever changes over time, including a stochastic
    input's PRNG key, lives in its State (an `equinox.Module`, possibly empty).

    **Methods to implement:**

    - `init(n, *, key=None) -> State`: the state for a target of `n` neurons. A
      stochastic input needs `key` (raise a `ValueError` without one), keeps a key in
      its State and splits it at every step; ideally it starts in its stationary
      distribution.
    - `step(state, t, dt) -> (state, drive)`: the `Drive` for the step from `t` to
      `t + dt` [ms], with fields of shape `(n,)` or `()`: a current adds to `i` [pA]; a
      conductance $g$ [nS] with reversal $E$ [mV] adds $gE$ to `i` and $g$ to `g`;
      delta-like arrivals go to `q` [pA·ms] and `qg` [nS·ms]. A receptor field
      (`neurojax.synapses.Current()` or `Conductance(e_rev)`) builds it with
      `receptor.drive(value, instantaneous)`. Pure, as a neuron's step.
    - `check(n, dt)` (optional): raise a `ValueError` if parameters do not fit `n`
      neurons or `dt` [ms]; called once before a simulation, possibly with traced
      parameters (check shapes always, values only when concrete).

    A `Network(..., inputs=[...])` advances its inputs after the synapses and adds
    their drive to the target's before the neurons step. The guide "Write your own
    input" (`docs/guides/custom_input.py`) builds a deterministic and a stochastic one.
    """

    target: eqx.AbstractVar[str]

    @abc.abstractmethod
    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> _State:
        """The initial state for a target population of `n` neurons."""

    @abc.abstractmethod
    def step(self, state: _State, t, dt: float) -> tuple[_State, Drive]:
        """The drive for the step starting at `t` [ms]."""

    def bind(self, population) -> "AbstractInput":
        """This input fitted to its target `Population` (called by `Network.build`); an
        input that reads the population's features or positions (`Tuned`) fills them in
        here. The default returns the input unchanged."""
        return self

    def check(self, n: int, dt: float) -> None:
        """Raise a `ValueError` if parameters do not fit `n` neurons or `dt` [ms]."""
