r"""Receptors: how a synaptic variable $s$ acts on the postsynaptic membrane.

A `Current` receptor injects $s$ [pA] directly; a `Conductance` receptor opens a
conductance $s$ [nS] with reversal potential $E$, giving $s\,(E - v)$ [pA]. Both are
written into a `neurojax.Drive`, which keeps the current linear in $v$ so neuron
integrators can treat conductances exactly.

A voltage-dependent receptor (`NMDA`, `voltage_dependent = True`) has a conductance
that depends on the postsynaptic potential. The network passes it the potential at the
start of the step, $v_0$ (the neuron's `voltage(state)`), and it writes the conductance
$g(v_0)$ into the `Drive`, held over the step like any other conductance. This
operator splitting is first-order: the error of the potential is $O(dt)$ (tested
against a high-accuracy solution: at dt = 0.1 ms it is far below the 1 mV scale of
spiking dynamics). A neuron without a membrane potential (rate units, `Binary`) cannot
take such a receptor: `Network.build` raises a `ValueError`.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._abstract import Drive
from .._custom_types import PopulationParam
from .._misc import finite, nonnegative, positive


class AbstractReceptor(eqx.Module):
    """How a synaptic variable acts on the membrane.

    `voltage_dependent = True` marks receptors whose conductance depends on the
    postsynaptic potential: `drive` then needs `v`, the potential at the start of the
    step [mV], which the network reads from the postsynaptic neuron's state."""

    voltage_dependent: ClassVar[bool] = False

    @abc.abstractmethod
    def drive(self, s: Float[Array, "*#n"], instantaneous: bool,
              v: Float[Array, "*#n"] | None = None) -> Drive:
        """The `Drive` produced by synaptic variable `s` (a charge when `instantaneous`);
        `v` [mV] is the postsynaptic potential, used by voltage-dependent receptors."""


class Current(AbstractReceptor):
    """Current-based receptor: the synaptic variable is a current [pA] (or, for delta
    kinetics, a charge [pA·ms]); positive excites, negative inhibits."""

    def drive(self, s: Float[Array, "*#n"], instantaneous: bool,
              v: Float[Array, "*#n"] | None = None) -> Drive:
        z = jnp.zeros_like(s)
        return Drive(z, z, s, z) if instantaneous else Drive(s, z, z, z)


class Conductance(AbstractReceptor):
    r"""Conductance-based receptor: the synaptic variable is a conductance $g$ [nS]
    (or, for delta kinetics, a conductance·time [nS·ms]) giving current $g(E - v)$.

    **Arguments:**

    - `e_rev`: Reversal potential $E$ [mV] (0 for AMPA, about −80 for GABA-A).
    """

    e_rev: PopulationParam = eqx.field(converter=finite("e_rev", "mV"), default=0.0)

    def drive(self, s: Float[Array, "*#n"], instantaneous: bool,
              v: Float[Array, "*#n"] | None = None) -> Drive:
        return _conductance_drive(s, self.e_rev, instantaneous)


def _conductance_drive(g, e_rev, instantaneous: bool) -> Drive:
    z = jnp.zeros_like(g)
    if instantaneous:
        return Drive(z, z, g * e_rev, g)
    return Drive(g * e_rev, g, z, z)


class NMDA(AbstractReceptor):
    r"""NMDA receptor with the voltage-dependent magnesium block of Jahr & Stevens
    (1990, J Neurosci 10:3178), in the form used by Wang (2002, Neuron 36:955):

    $$I = g\,s\,B(v)\,(E - v), \qquad
    B(v) = \frac{1}{1 + \frac{[\mathrm{Mg}^{2+}]}{K_{Mg}}\,e^{-\beta v}},$$

    with $K_{Mg}$ = 3.57 mM and $\beta$ = 0.062 /mV. The synaptic variable $g\,s$ is a
    conductance [nS] (weight [nS] times the kinetics' output; with `Saturating` kinetics
    $s \in [0, 1)$ is the open fraction). The block is evaluated at the postsynaptic
    potential at the start of each step and held over the step (module docstring:
    first-order splitting). Works with any neuron whose `voltage(state)` is a membrane
    potential in mV (LIF family, HH, Izhikevich, `Compartmental` at its input
    compartment, or at each compartment it is placed on with
    `Projection(..., compartments=nj.neurons.Compartments(...))`).

    **Arguments:**

    - `e_rev`: Reversal potential $E$ [mV] (0 for NMDA).
    - `mg`: Extracellular magnesium concentration $[\mathrm{Mg}^{2+}]$ [mM], >= 0
      (0 removes the block; 1 mM in Wang 2002).
    - `mg_half`: $K_{Mg}$ [mM], > 0 (3.57 mM, Jahr & Stevens 1990).
    - `beta`: Voltage sensitivity $\beta$ [1/mV], > 0 (0.062 /mV, Jahr & Stevens 1990).
    """

    e_rev: PopulationParam = eqx.field(converter=finite("e_rev", "mV"), default=0.0)
    mg: PopulationParam = eqx.field(converter=nonnegative("mg", "mM"), default=1.0)
    mg_half: PopulationParam = eqx.field(converter=positive("mg_half", "mM"), default=3.57)
    beta: PopulationParam = eqx.field(converter=positive("beta", "1/mV"), default=0.062)
    voltage_dependent: ClassVar[bool] = True

    def block(self, v: Float[Array, "*#n"]) -> Float[Array, "*#n"]:
        """The unblocked fraction $B(v)$ at potential `v` [mV], in (0, 1]."""
        return 1.0 / (1.0 + (self.mg / self.mg_half) * jnp.exp(-self.beta * v))

    def drive(self, s: Float[Array, "*#n"], instantaneous: bool,
              v: Float[Array, "*#n"] | None = None) -> Drive:
        if v is None:
            raise ValueError(
                "NMDA receptor: drive needs the postsynaptic membrane potential v [mV] "
                "(a voltage-dependent receptor; use it on a Projection onto a population "
                "whose neuron has a membrane potential)."
            )
        return _conductance_drive(s * self.block(v), self.e_rev, instantaneous)
