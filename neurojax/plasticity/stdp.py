r"""Spike-timing-dependent plasticity with pair traces."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._misc import check_range, check_time_constant_vs_dt, nonnegative, positive
from .abstract import AbstractPlasticity, container_weights, synapse_mask

_WEIGHT_DEPENDENCE = ("additive", "multiplicative")
_TRACES = ("all_to_all", "nearest")


class PairSTDPState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]
    pre_trace: Float[Array, " pre"]  # presynaptic trace [1]
    post_trace: Float[Array, " post"]  # postsynaptic trace [1]


class PairSTDP(AbstractPlasticity[PairSTDPState]):
    r"""Pair-based STDP with exponential traces (Song, Miller & Abbott 2000; van
    Rossum, Bi & Turrigiano 2000; Morrison, Diesmann & Gerstner 2008).

    A pair of a presynaptic spike at $t_{pre}$ and a postsynaptic spike at $t_{post}$,
    $\Delta t = t_{post} - t_{pre}$, changes the weight by

    $$\Delta w = \begin{cases} a_+ f_+(w)\, e^{-\Delta t/\tau_+} & \Delta t \ge 0 \\
      -a_- f_-(w)\, e^{\Delta t/\tau_-} & \Delta t < 0 \end{cases}$$

    with $f_\pm = 1$ (`"additive"`, hard bounds $[0, w_{max}]$ by clipping) or
    $f_+ = 1 - w/w_{max}$, $f_- = w/w_{max}$ (`"multiplicative"`, soft bounds). Each
    presynaptic neuron keeps a trace $x_{pre}$ (decay $\tau_+$) and each postsynaptic
    neuron a trace $x_{post}$ (decay $\tau_-$), decayed by the exact factor
    $e^{-dt/\tau}$ per step; `"all_to_all"` traces add 1 per spike (every pair
    counts), `"nearest"` traces are reset to 1 (only the nearest neighbour counts).
    Within a step: traces decay; presynaptic spikes depress, $w \mathrel{-}= a_- f_-(w)
    x_{post}$ (postsynaptic spikes of this step not yet counted), and raise $x_{pre}$;
    postsynaptic spikes potentiate, $w \mathrel{+}= a_+ f_+(w) x_{pre}$, and raise
    $x_{post}$. So spikes in the same step ($\Delta t = 0$) potentiate by $a_+$. Spike
    times are the populations' outputs (the transmission delay is not included).
    A presynaptic spike is transmitted with the weight after its own update (NEST's
    order). Only existing synapses change; weights stay in $[0, w_{max}]$.

    **Arguments:**

    - `a_plus`: Potentiation amplitude $a_+$ [weight units: nS or pA, as the
      projection's weight], >= 0.
    - `a_minus`: Depression amplitude $a_-$ [weight units], >= 0.
    - `tau_plus`: Potentiation window (presynaptic trace) $\tau_+$ [ms], > 0.
    - `tau_minus`: Depression window (postsynaptic trace) $\tau_-$ [ms], > 0.
    - `w_max`: Upper weight bound [weight units], > 0; the lower bound is 0.
    - `weight_dependence`: `"additive"` (default) or `"multiplicative"`.
    - `traces`: `"all_to_all"` (default) or `"nearest"`.

    The projection's initial weights must lie in `[0, w_max]`.

    !!! example

        ```python
        stdp = nj.plasticity.PairSTDP(a_plus=1e-3, a_minus=1.05e-3, tau_plus=20.0,
                                      tau_minus=20.0, w_max=0.1)
        ```
    """

    a_plus: Float[Array, ""] = eqx.field(converter=nonnegative("PairSTDP a_plus", "weight units"))
    a_minus: Float[Array, ""] = eqx.field(converter=nonnegative("PairSTDP a_minus", "weight units"))
    tau_plus: Float[Array, ""] = eqx.field(converter=positive("PairSTDP tau_plus", "ms"))
    tau_minus: Float[Array, ""] = eqx.field(converter=positive("PairSTDP tau_minus", "ms"))
    w_max: Float[Array, ""] = eqx.field(converter=positive("PairSTDP w_max", "weight units"))
    weight_dependence: str = eqx.field(static=True, default="additive")
    traces: str = eqx.field(static=True, default="all_to_all")
    changes_weights: ClassVar[bool] = True

    def __init__(self, a_plus=0.005, a_minus=0.00525, tau_plus=20.0, tau_minus=20.0,
                 w_max=1.0, weight_dependence="additive", traces="all_to_all"):
        self.a_plus = a_plus
        self.a_minus = a_minus
        self.tau_plus = tau_plus
        self.tau_minus = tau_minus
        self.w_max = w_max
        self.weight_dependence = weight_dependence
        self.traces = traces

    def __check_init__(self):
        if self.weight_dependence not in _WEIGHT_DEPENDENCE:
            raise ValueError(
                f"PairSTDP weight_dependence must be one of {_WEIGHT_DEPENDENCE}, got "
                f"{self.weight_dependence!r}."
            )
        if self.traces not in _TRACES:
            raise ValueError(f"PairSTDP traces must be one of {_TRACES}, got {self.traces!r}.")

    def init(self, structure: Any, weights: Array | None) -> PairSTDPState:
        w = container_weights(structure) if weights is None else weights
        n_pre, n_post = structure.n_pre, structure.n_post
        return PairSTDPState(
            weights=w,
            pre_trace=jnp.zeros((n_pre,), w.dtype),
            post_trace=jnp.zeros((n_post,), w.dtype),
        )

    def weights(self, state: PairSTDPState) -> Array:
        return state.weights

    def _bump(self, trace, spikes):
        if self.traces == "nearest":
            return jnp.where(spikes > 0, jnp.ones_like(trace), trace)
        return trace + spikes

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        from ..connectivity.weights import DenseWeights

        dtype = state.weights.dtype
        pre, post = pre.astype(dtype), post.astype(dtype)
        x_pre = state.pre_trace * jnp.exp(-dt / self.tau_plus)
        x_post = state.post_trace * jnp.exp(-dt / self.tau_minus)
        w = state.weights
        mask = synapse_mask(structure)
        dense = isinstance(structure, DenseWeights)
        if dense:  # (post, pre)
            post_at = lambda v: jnp.broadcast_to(v[:, None], w.shape)  # noqa: E731
            pre_at = lambda v: jnp.broadcast_to(v[None, :], w.shape)  # noqa: E731
        else:  # rows (pre, out) of targets; padding targets read 0
            tgt = structure.targets
            post_at = lambda v: jnp.take(v, tgt, mode="fill", fill_value=0)  # noqa: E731
            pre_at = lambda v: jnp.broadcast_to(v[:, None], w.shape)  # noqa: E731
        multiplicative = self.weight_dependence == "multiplicative"

        def depress(w):
            f = w / self.w_max if multiplicative else 1.0
            dw = self.a_minus * f * pre_at(pre) * post_at(x_post)
            return jnp.where(mask, w - dw, w)

        def potentiate(w, x_pre):
            f = (1.0 - w / self.w_max) if multiplicative else 1.0
            dw = self.a_plus * f * post_at(post) * pre_at(x_pre)
            return jnp.where(mask, w + dw, w)

        # Event-driven in time: a step without presynaptic (postsynaptic) spikes skips
        # the depression (potentiation) pass over the synapses.
        w = jax.lax.cond(jnp.any(pre != 0), depress, lambda w: w, w)
        x_pre = self._bump(x_pre, pre)
        w = jax.lax.cond(jnp.any(post != 0), potentiate, lambda w, _: w, w, x_pre)
        x_post = self._bump(x_post, post)
        w = jnp.clip(w, 0.0, self.w_max)
        return PairSTDPState(weights=w, pre_trace=x_pre, post_trace=x_post), w

    def check(self, structure: Any, dt: float, name: str) -> None:
        for field in ("a_plus", "a_minus", "tau_plus", "tau_minus", "w_max"):
            if np.ndim(getattr(self, field)) != 0:
                raise ValueError(
                    f"projection {name!r}: PairSTDP {field} must be a scalar, got shape "
                    f"{np.shape(getattr(self, field))}."
                )
        check_range(self.a_plus, "PairSTDP a_plus", "weight units", low=0.0)
        check_range(self.a_minus, "PairSTDP a_minus", "weight units", low=0.0)
        check_range(self.tau_plus, "PairSTDP tau_plus", "ms", low=0.0, low_open=True)
        check_range(self.tau_minus, "PairSTDP tau_minus", "ms", low=0.0, low_open=True)
        check_range(self.w_max, "PairSTDP w_max", "weight units", low=0.0, low_open=True)
        check_time_constant_vs_dt(self.tau_plus, dt, "PairSTDP tau_plus")
        check_time_constant_vs_dt(self.tau_minus, dt, "PairSTDP tau_minus")
