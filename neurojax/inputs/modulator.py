r"""Neuromodulatory signals for three-factor plasticity: `Modulator` and `Pulses`.

A `Modulator` is a named global signal $M(t)$ (dopamine, reward, a teaching signal)
that a `Network(..., modulators=[...])` evaluates once per step and hands to every
plasticity rule as the dict `modulators = {name: value}` (step protocol:
`rule.step(rule_state, pre, post, post_vars, modulators, dt)`); a rule such as
`nj.plasticity.RewardModulated(modulator="dopamine")` reads its own entry. It drives
no neuron.

**Open loop.** `Modulator("dopamine", signal)` with `signal(t) -> value` (`t` [ms], the
start of the step). `signal` may be any function of `t`; to sweep, vmap or
differentiate its parameters, make it an `equinox.Module` whose array fields are the
parameters (as `Pulses` is): they are then model leaves, named
`"<name>.signal.<field>"` by `model.params()`.

**Closed loop.** `Modulator("reward", signal, source="out")` calls
`signal(t, activity)` with the output of population `"out"` in this step (after the
neurons have stepped, before the rules step; a tuple of names gives a tuple of
outputs), so a reward can be computed from the network's own spikes, e.g.
`lambda t, s: s[0]` (reward whenever neuron 0 fires). A reward that needs memory of
past activity (a delayed reward, a dopamine concentration that decays, a running
average to subtract) is computed by a population of its own (e.g. a `nj.neurons.Rate`
unit, or a LIF "critic" fed by the relevant projections),
whose output the modulator reads: the memory then lives in that population's state,
delays come from its projections, and everything stays inside the one `lax.scan`.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._misc import finite, positive


class Modulator(eqx.Module):
    """A global neuromodulatory signal, delivered to plasticity rules by name (see the
    module docstring).

    **Arguments:**

    - `name`: The name under which rules read it (e.g. `"dopamine"`); unique within a
      network.
    - `signal`: `t -> value` (open loop), or `(t, activity) -> value` with `source`;
      `t` is the start of the step [ms]. The value is a scalar (or any array a rule
      accepts, e.g. one value per postsynaptic neuron) in the rule's modulator units
      (dimensionless for `RewardModulated`). An `equinox.Module` callable keeps its
      parameters traceable.
    - `source`: Optional name (or tuple of names) of the population(s) whose output in
      this step `signal` receives as `activity` (closed loop).

    !!! example

        ```python
        reward = nj.inputs.Modulator("dopamine", nj.inputs.Pulses([500.0], 1.0, 20.0))
        net = nj.Network(pops, projs, inputs, modulators=[reward])
        ```
    """

    name: str = eqx.field(static=True)
    signal: Any  # a callable (checked in __check_init__)
    source: str | tuple[str, ...] | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Modulator name must be a non-empty string, got {self.name!r}.")
        if not callable(self.signal):
            raise ValueError(
                f"Modulator({self.name!r}) signal must be callable: t -> value, or "
                f"(t, activity) -> value with source; got {type(self.signal).__name__}."
            )
        sources = (self.source,) if isinstance(self.source, str) else self.source
        if sources is not None and not all(isinstance(s, str) for s in sources):
            raise ValueError(
                f"Modulator({self.name!r}) source must be a population name or a tuple of "
                f"names, got {self.source!r}."
            )

    @property
    def sources(self) -> tuple[str, ...]:
        """The names of the populations it reads (empty in open loop)."""
        if self.source is None:
            return ()
        return (self.source,) if isinstance(self.source, str) else tuple(self.source)

    def value(self, t, activity: Any = None) -> Array:
        """The signal at time `t` [ms] (given the sources' `activity` in closed loop)."""
        if self.source is None:
            return jnp.asarray(self.signal(t))
        return jnp.asarray(self.signal(t, activity))


class Pulses(eqx.Module):
    r"""Rectangular pulses: `amplitude` during $[T_k, T_k + \mathrm{duration})$ for each
    onset $T_k$ in `times`, 0 elsewhere (overlapping pulses add). A callable for
    `Modulator` whose amplitude and times are traceable parameters (the value is
    piecewise constant in `times`, so its gradient w.r.t. them is 0).

    **Arguments:**

    - `times`: Pulse onsets $T_k$ [ms], shape `(k,)`.
    - `amplitude`: Pulse height [modulator units], scalar or shape `(k,)`.
    - `duration`: Pulse length [ms], > 0.
    """

    times: Float[Array, " k"] = eqx.field(converter=finite("Pulses times", "ms"))
    amplitude: Float[Array, "*k"] = eqx.field(converter=finite("Pulses amplitude", "modulator units"))
    duration: Float[Array, ""] = eqx.field(converter=positive("Pulses duration", "ms"))

    def __check_init__(self):
        if self.times.ndim != 1:
            raise ValueError(f"Pulses times [ms] must be a 1-D array, got shape {self.times.shape}.")
        if self.amplitude.ndim > 1 or (self.amplitude.ndim == 1 and self.amplitude.shape != self.times.shape):
            raise ValueError(
                f"Pulses amplitude must be a scalar or have the shape of times {self.times.shape}, "
                f"got {self.amplitude.shape}."
            )

    def __call__(self, t) -> Float[Array, ""]:
        on = (t >= self.times) & (t < self.times + self.duration)
        return jnp.sum(jnp.where(on, self.amplitude, jnp.zeros_like(self.amplitude)))
