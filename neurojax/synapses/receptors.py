r"""Receptors: how a synaptic variable $s$ acts on the postsynaptic membrane.

A `Current` receptor injects $s$ [pA] directly; a `Conductance` receptor opens a
conductance $s$ [nS] with reversal potential $E$, giving $s\,(E - v)$ [pA]. Both are
written into a `neurojax.Drive`, which keeps the current linear in $v$ so neuron
integrators can treat conductances exactly.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._abstract import Drive
from .._custom_types import PopulationParam
from .._misc import finite


class AbstractReceptor(eqx.Module):
    @abc.abstractmethod
    def drive(self, s: Float[Array, "*#n"], instantaneous: bool) -> Drive:
        """The `Drive` produced by synaptic variable `s` (a charge when `instantaneous`)."""


class Current(AbstractReceptor):
    """Current-based receptor: the synaptic variable is a current [pA] (or, for delta
    kinetics, a charge [pA·ms]); positive excites, negative inhibits."""

    def drive(self, s: Float[Array, "*#n"], instantaneous: bool) -> Drive:
        z = jnp.zeros_like(s)
        return Drive(z, z, s, z) if instantaneous else Drive(s, z, z, z)


class Conductance(AbstractReceptor):
    r"""Conductance-based receptor: the synaptic variable is a conductance $g$ [nS]
    (or, for delta kinetics, a conductance·time [nS·ms]) giving current $g(E - v)$.

    **Arguments:**

    - `e_rev`: Reversal potential $E$ [mV] (0 for AMPA, about −80 for GABA-A).
    """

    e_rev: PopulationParam = eqx.field(converter=finite("e_rev", "mV"), default=0.0)

    def drive(self, s: Float[Array, "*#n"], instantaneous: bool) -> Drive:
        z = jnp.zeros_like(s)
        if instantaneous:
            return Drive(z, z, s * self.e_rev, s)
        return Drive(s * self.e_rev, s, z, z)
