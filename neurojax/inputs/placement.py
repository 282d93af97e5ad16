"""`OnCompartments`: an input placed on chosen compartments of a `Compartmental`
population."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._abstract import AbstractInput, Drive
from ..neurons.compartmental import Compartmental, Compartments


class OnCompartments(AbstractInput[Any]):
    """Any input, delivered to chosen compartments of its `Compartmental` target.

    Wraps `input` (a `Constant`, `Waveform`, `Poisson`, ...): its drive for each neuron
    is divided among the sites given by `compartments` (see
    `nj.neurons.Compartments`), so each compartment receives its own drive, instead of
    all of it entering the target's `input_compartment`. The fractions are fixed when
    the network is built (`bind`); the wrapped input's parameters stay leaves
    (`model.params()` names them `"OnCompartments-><target>.input.<field>"`).

    **Arguments:**

    - `input`: The input to place (its `target` is this input's target).
    - `compartments`: Where it acts (`nj.neurons.Compartments`).

    !!! example
        ```python
        tip = nj.inputs.OnCompartments(nj.inputs.Constant("cell", amplitude=20.0),
                                       nj.neurons.Compartments(index=25))
        ```
    """

    target: str = eqx.field(static=True)
    input: AbstractInput
    compartments: Compartments
    fractions: Float[Array, "n n_comp"] | None = None  # set by `bind`

    def __init__(self, input: AbstractInput, compartments: Compartments,
                 fractions: Float[Array, "n n_comp"] | None = None):
        if not isinstance(input, AbstractInput) or isinstance(input, OnCompartments):
            raise ValueError(
                f"OnCompartments input must be an input (nj.inputs.*, not itself an "
                f"OnCompartments), got {type(input).__name__}."
            )
        if not isinstance(compartments, Compartments):
            raise ValueError(
                "OnCompartments compartments must be nj.neurons.Compartments(...), got "
                f"{type(compartments).__name__}."
            )
        self.target = input.target
        self.input, self.compartments, self.fractions = input, compartments, fractions

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> Any:
        return self.input.init(n, key=key)

    def step(self, state: Any, t, dt: float) -> tuple[Any, Drive]:
        """The wrapped input's drive (fields `(n,)` or scalars); the network divides it
        among the compartments by `fractions`."""
        return self.input.step(state, t, dt)

    def bind(self, population) -> "OnCompartments":
        """Resolve the sites on the target population (which must be `Compartmental`)."""
        what = f"OnCompartments({type(self.input).__name__}) input to {population.name!r}"
        if not isinstance(population.neuron, Compartmental):
            raise ValueError(
                f"{what}: compartments is given, but population {population.name!r} "
                f"({type(population.neuron).__name__}) has no compartments; OnCompartments "
                "needs nj.neurons.Compartmental neurons."
            )
        inner = self.input.bind(population)
        frac = self.compartments.fractions(population.neuron.morphology, population.n, what)
        return OnCompartments(inner, self.compartments, jnp.asarray(frac))

    def check(self, n: int, dt: float) -> None:
        self.input.check(n, dt)
