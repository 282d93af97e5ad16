r"""The plasticity protocol: rules whose state lives in `NetworkState.plastic`.

A rule is attached to a projection (`nj.Projection(..., plasticity=rule)`). Its
parameters are model leaves (trained by gradient, swept by `vmap`); everything it
changes during a run (traces, resources, the plastic weights themselves) is its
state, held in `state.plastic[j]` for projection `j`, created by `init` from the
model's weights and returned by `nj.simulate` in `res.state`:

```python
rule_state = rule.init_run(structure, weights, dt, key)  # at NetworkModel.init
rule_state, weights = rule.step(rule_state, pre, post, post_vars, modulators, dt,
                                structure=structure)   # once per network step
```

`structure` is the projection's weight container (`DenseWeights` or `SparseWeights`),
whose layout the plastic weights share (`(n_post, n_pre)` for dense, `(n_pre, max_out)`
rows for sparse). `weights` returned by `step` are delivered in this step (`None`: the
projection's own model weights). `transmit(rule_state, pre)` scales presynaptic
activity by a per-presynaptic-neuron efficacy before delivery (identity by default):
the cheap exact form of short-term plasticity with homogeneous parameters, which
changes no weight.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Generic, TypeVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

_State = TypeVar("_State")


class AbstractPlasticity(eqx.Module, Generic[_State]):
    """A synaptic plasticity rule (see the module docstring for the protocol).

    `changes_weights = True` marks rules whose state carries plastic weights (then
    `weights(state)` returns them, in the layout of the projection's container).
    """

    changes_weights: ClassVar[bool] = False

    @abc.abstractmethod
    def init(self, structure: Any, weights: Array | None) -> _State:
        """The rule's initial state for a projection with container `structure`,
        whose model weights in the container's layout are `weights`."""

    @abc.abstractmethod
    def step(
        self,
        state: _State,
        pre: Float[Array, " pre"],
        post: Float[Array, " post"],
        post_vars: Any,
        modulators: Any,
        dt: float,
        *,
        structure: Any,
    ) -> tuple[_State, Array | None]:
        """Advance by one step of `dt` [ms], given this step's presynaptic and
        postsynaptic outputs (spikes 0/1); returns the new state and the weights to
        deliver this step's presynaptic activity with (`None`: the model's)."""

    def init_run(self, structure: Any, weights: Array | None, dt: float, key: Any) -> _State:
        """The initial state for a run in steps of `dt` [ms], with the PRNG `key` for
        the rule's random draws; `NetworkModel.init` calls this. By default
        `init(structure, weights)`: rules whose state depends on `dt` (a delay line in
        steps) or that draw random numbers (noise) override it."""
        return self.init(structure, weights)

    def transmit(self, state: _State, pre: Float[Array, " pre"]) -> Float[Array, " pre"]:
        """Presynaptic activity as delivered this step (after `step`); identity."""
        return pre

    def weights(self, state: _State) -> Array | None:
        """The current plastic weights (`None` for rules that change none)."""
        return None

    def check(self, structure: Any, dt: float, name: str) -> None:
        """Raise a `ValueError` if the rule cannot run on this projection or at this
        `dt` [ms]; `name` is the projection's, for the message."""


def container_weights(structure: Any) -> Array:
    """The model weights of a container in its own layout, one value per stored
    synapse slot: `(n_post, n_pre)` for dense, `(n_pre, max_out)` (0 at padding) for
    sparse. A scalar weight is broadcast over the existing synapses."""
    from ..connectivity.weights import DenseWeights, SparseWeights

    if isinstance(structure, DenseWeights):
        return structure.matrix()
    if isinstance(structure, SparseWeights):
        w = jnp.broadcast_to(structure.weights, structure.targets.shape)
        return jnp.where(structure.targets < structure.n_post, w, jnp.zeros_like(w))
    raise TypeError(f"no plastic weights for a {type(structure).__name__}")


def synapse_mask(structure: Any) -> Array:
    """Which slots of the container's layout hold a synapse (boolean, same shape as
    `container_weights`)."""
    from ..connectivity.weights import DenseWeights

    if isinstance(structure, DenseWeights):
        if structure.counts is not None:
            return structure.counts > 0
        return structure.weights != 0
    return structure.targets < structure.n_post
