r"""Homeostatic and heterosynaptic weight rules: `Normalization` (fixed sum of a
neuron's weights), `SynapticScaling` (multiplicative scaling towards a target rate), and
`Chain`, which runs several weight-changing rules on one projection in turn (e.g.
`Chain(PairSTDP(...), Normalization(...))`)."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._misc import check_range, check_time_constant_vs_dt, positive
from .abstract import AbstractPlasticity, container_weights
from .stdp import _layout

_MODES = ("multiplicative", "subtractive")
_DIRECTIONS = ("incoming", "outgoing")


def _per_neuron_sums(values, structure, direction):
    """Sums of `values` (in the container's layout, 0 where there is no synapse) over
    each postsynaptic neuron's incoming (`"incoming"`) or each presynaptic neuron's
    outgoing (`"outgoing"`) synapses."""
    from ..connectivity.weights import DenseWeights

    if isinstance(structure, DenseWeights):  # (post, pre)
        return jnp.sum(values, axis=1 if direction == "incoming" else 0)
    if direction == "outgoing":  # rows (pre, out)
        return jnp.sum(values, axis=1)
    n_post = structure.n_post  # padding targets (= n_post) land in a dropped segment
    return jax.ops.segment_sum(values.ravel(), structure.targets.ravel(), n_post + 1)[:n_post]


def _check_scalar_or_per_neuron(value, n, field, rule, name):
    if np.ndim(value) != 0 and np.shape(value) != (n,):
        raise ValueError(
            f"projection {name!r}: {rule} {field} must be a scalar or have shape ({n},) "
            f"(one value per neuron), got shape {np.shape(value)}."
        )


class NormalizationState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]
    step: Int[Array, ""]  # steps taken


class Normalization(AbstractPlasticity[NormalizationState]):
    r"""Heterosynaptic normalisation: every `every` ms the weights of each neuron are
    rescaled so that their sum over the neuron's incoming (or outgoing) synapses equals
    `target_sum` exactly (von der Malsburg 1973; Miller & MacKay 1994):

    - `"multiplicative"`: $w_{ij} \leftarrow w_{ij}\, S / \sum_j w_{ij}$ (neurons whose
      sum is 0 are left alone); keeps the weights' signs and ratios.
    - `"subtractive"`: $w_{ij} \leftarrow w_{ij} - (\sum_j w_{ij} - S) / n_i$ with $n_i$
      the neuron's number of synapses; keeps the differences (weights can become
      negative: pair it with a rule that bounds them, or accept it).

    On its own it only rescales the model's weights; its use is after a Hebbian rule on
    the same projection, `Chain(PairSTDP(...), Normalization(...))`. Between
    normalisations the weights are unchanged; the first is at time `every` (the model's
    initial weights are delivered unnormalised until then).

    **Arguments:**

    - `target_sum`: The sum $S$ [weight units], > 0; a scalar or one per neuron.
    - `mode`: `"multiplicative"` (default) or `"subtractive"`.
    - `direction`: `"incoming"` (default: each postsynaptic neuron's inputs) or
      `"outgoing"` (each presynaptic neuron's outputs).
    - `every`: Interval between normalisations [ms], a whole number of steps; `None`
      (default): every step.

    !!! example

        ```python
        norm = nj.plasticity.Normalization(target_sum=10.0, every=100.0)
        ```
    """

    target_sum: Float[Array, "*n"] = eqx.field(converter=positive("Normalization target_sum", "weight units"))
    mode: str = eqx.field(static=True, default="multiplicative")
    direction: str = eqx.field(static=True, default="incoming")
    every: float | None = eqx.field(static=True, default=None)
    changes_weights: ClassVar[bool] = True

    def __init__(self, target_sum=1.0, mode="multiplicative", direction="incoming", every=None):
        self.target_sum = target_sum
        self.mode = mode
        self.direction = direction
        self.every = None if every is None else float(every)

    def __check_init__(self):
        if self.mode not in _MODES:
            raise ValueError(f"Normalization mode must be one of {_MODES}, got {self.mode!r}.")
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"Normalization direction must be one of {_DIRECTIONS}, got {self.direction!r}.")
        if self.every is not None:
            check_range(self.every, "Normalization every", "ms", low=0.0, low_open=True)

    def init(self, structure: Any, weights: Array | None) -> NormalizationState:
        w = container_weights(structure) if weights is None else weights
        return NormalizationState(weights=w, step=jnp.zeros((), jnp.int32))

    def weights(self, state: NormalizationState) -> Array:
        return state.weights

    def normalize(self, w: Array, structure: Any) -> Array:
        """`w` (in `structure`'s layout) normalised once."""
        pre_at, post_at, mask = _layout(structure)
        at = post_at if self.direction == "incoming" else pre_at
        w0 = jnp.where(mask, w, jnp.zeros_like(w))
        total = _per_neuron_sums(w0, structure, self.direction)
        target = jnp.broadcast_to(self.target_sum, total.shape).astype(w.dtype)
        if self.mode == "multiplicative":
            safe = jnp.where(total != 0, total, jnp.ones_like(total))
            factor = jnp.where(total != 0, target / safe, jnp.ones_like(total))
            new = w * at(factor)
        else:
            count = _per_neuron_sums(mask.astype(w.dtype), structure, self.direction)
            shift = (total - target) / jnp.maximum(count, 1.0)
            new = w - at(shift)
        return jnp.where(mask, new, w)

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        k = state.step + 1
        if self.every is None:
            w = self.normalize(state.weights, structure)
        else:
            period = max(1, round(self.every / dt))
            w = jax.lax.cond(k % period == 0, lambda w: self.normalize(w, structure), lambda w: w,
                             state.weights)
        return NormalizationState(weights=w, step=k), w

    def check(self, structure: Any, dt: float, name: str) -> None:
        n = structure.n_post if self.direction == "incoming" else structure.n_pre
        _check_scalar_or_per_neuron(self.target_sum, n, "target_sum", "Normalization", name)
        check_range(self.target_sum, "Normalization target_sum", "weight units", low=0.0, low_open=True)
        if self.every is not None:
            steps = self.every / dt
            if steps < 1.0 - 1e-9 or abs(steps - round(steps)) > 1e-6 * steps:
                raise ValueError(
                    f"projection {name!r}: Normalization every [ms] = {self.every:g} must be a "
                    f"whole number of steps of dt [ms] = {dt:g}."
                )


class SynapticScalingState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]
    rate: Float[Array, " post"]  # running estimate of each postsynaptic neuron's rate [Hz]


class SynapticScaling(AbstractPlasticity[SynapticScalingState]):
    r"""Homeostatic synaptic scaling (Turrigiano et al. 1998; van Rossum, Bi &
    Turrigiano 2000): each postsynaptic neuron scales all its incoming weights by a
    common factor that moves its rate towards `target_rate`,

    $$\tau \frac{dw_{ij}}{dt} = w_{ij}\,\frac{\rho_{target} - \hat\rho_i}{\rho_{target}},
      \qquad \tau_\rho \frac{d\hat\rho_i}{dt} = \rho_i(t) - \hat\rho_i,$$

    where $\hat\rho_i$ is a running estimate of the neuron's rate [Hz] (in the rule's
    state, starting at $\rho_{target}$). Per step the estimate relaxes exactly towards
    this step's rate (`post / dt` for spikes, `post` itself for rate units), and the
    weights are multiplied by $\exp(dt\,(\rho_{target} - \hat\rho_i)/(\tau
    \rho_{target}))$, which keeps their signs and ratios. Choose $\tau \gg \tau_\rho$ (a
    slow scaling of a well-estimated rate) to avoid oscillations.

    **Arguments:**

    - `target_rate`: $\rho_{target}$ [Hz], > 0; a scalar or one per postsynaptic neuron.
    - `tau`: Scaling time constant $\tau$ [ms], > 0.
    - `tau_rate`: Rate-estimate time constant $\tau_\rho$ [ms], > 0.
    - `spiking`: `True` (default) when the postsynaptic outputs are spikes (0/1 per
      step), `False` for rate units.

    !!! example

        ```python
        scaling = nj.plasticity.SynapticScaling(target_rate=5.0, tau=1000.0, tau_rate=100.0)
        ```
    """

    target_rate: Float[Array, "*post"] = eqx.field(converter=positive("SynapticScaling target_rate", "Hz"))
    tau: Float[Array, ""] = eqx.field(converter=positive("SynapticScaling tau", "ms"))
    tau_rate: Float[Array, ""] = eqx.field(converter=positive("SynapticScaling tau_rate", "ms"))
    spiking: bool = eqx.field(static=True, default=True)
    changes_weights: ClassVar[bool] = True

    def __init__(self, target_rate=5.0, tau=1000.0, tau_rate=100.0, spiking=True):
        self.target_rate = target_rate
        self.tau = tau
        self.tau_rate = tau_rate
        self.spiking = spiking

    def init(self, structure: Any, weights: Array | None) -> SynapticScalingState:
        w = container_weights(structure) if weights is None else weights
        rate = jnp.broadcast_to(self.target_rate, (structure.n_post,)).astype(w.dtype)
        return SynapticScalingState(weights=w, rate=rate)

    def weights(self, state: SynapticScalingState) -> Array:
        return state.weights

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        w = state.weights
        now = post.astype(w.dtype) * (1e3 / dt if self.spiking else 1.0)  # [Hz]
        decay = jnp.exp(-dt / self.tau_rate)
        rate = now + (state.rate - now) * decay
        _, post_at, mask = _layout(structure)
        factor = jnp.exp(dt * (self.target_rate - rate) / (self.tau * self.target_rate))
        w = jnp.where(mask, w * post_at(factor), w)
        return SynapticScalingState(weights=w, rate=rate), w

    def check(self, structure: Any, dt: float, name: str) -> None:
        _check_scalar_or_per_neuron(self.target_rate, structure.n_post, "target_rate",
                                    "SynapticScaling", name)
        for field in ("tau", "tau_rate"):
            if np.ndim(getattr(self, field)) != 0:
                raise ValueError(f"projection {name!r}: SynapticScaling {field} must be a scalar, "
                                 f"got shape {np.shape(getattr(self, field))}.")
        check_range(self.target_rate, "SynapticScaling target_rate", "Hz", low=0.0, low_open=True)
        check_range(self.tau, "SynapticScaling tau", "ms", low=0.0, low_open=True)
        check_range(self.tau_rate, "SynapticScaling tau_rate", "ms", low=0.0, low_open=True)
        check_time_constant_vs_dt(self.tau, dt, "SynapticScaling tau")
        check_time_constant_vs_dt(self.tau_rate, dt, "SynapticScaling tau_rate")


class Chain(AbstractPlasticity[tuple]):
    r"""Several weight-changing rules on one projection, applied in turn each step:
    each rule starts from the weights the previous one returned (the first from the
    last one's), and the last one's weights are delivered. Its state is the tuple of the
    rules' states. Typical: a Hebbian rule and a normalisation,
    `Chain(PairSTDP(...), Normalization(target_sum=...))`.

    **Arguments:**

    - `*rules`: Two or more weight-changing rules (`changes_weights = True`), whose
      states hold the plastic weights in a field `weights`.

    The rules' parameters are model parameters named by position, e.g.
    `"E->E.plasticity.rules.0.a_plus"` (`model.params()`, `model.replace`).

    !!! example

        ```python
        rule = nj.plasticity.Chain(nj.plasticity.PairSTDP(w_max=1.0),
                                   nj.plasticity.Normalization(target_sum=5.0, every=100.0))
        ```
    """

    rules: tuple[AbstractPlasticity, ...]
    changes_weights: ClassVar[bool] = True

    def __init__(self, *rules):
        self.rules = tuple(rules)

    def __check_init__(self):
        if len(self.rules) < 2:
            raise ValueError(f"Chain needs two or more plasticity rules, got {len(self.rules)}.")
        for r in self.rules:
            if not isinstance(r, AbstractPlasticity) or not r.changes_weights:
                raise ValueError(
                    "Chain rules must be weight-changing plasticity rules (e.g. PairSTDP, BCM, "
                    f"Normalization), got {type(r).__name__}."
                )

    def init(self, structure: Any, weights: Array | None) -> tuple:
        return tuple(r.init(structure, weights) for r in self.rules)

    def weights(self, state: tuple) -> Array:
        return self.rules[-1].weights(state[-1])

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        w = self.weights(state)
        new = []
        for rule, s in zip(self.rules, state):
            s = eqx.tree_at(lambda s: s.weights, s, w)
            s, w = rule.step(s, pre, post, post_vars, modulators, dt, structure=structure)
            new.append(s)
        return tuple(new), w

    def transmit(self, state: tuple, pre: Float[Array, " pre"]) -> Float[Array, " pre"]:
        for rule, s in zip(self.rules, state):
            pre = rule.transmit(s, pre)
        return pre

    def check(self, structure: Any, dt: float, name: str) -> None:
        for rule in self.rules:
            rule.check(structure, dt, name)

    @property
    def w_max(self):
        """The smallest `w_max` of the rules that have one (`None` if none does): the
        bounds the initial weights must respect."""
        bounds = [r.w_max for r in self.rules if getattr(r, "w_max", None) is not None]
        return None if not bounds else jnp.min(jnp.stack([jnp.asarray(b) for b in bounds]))
