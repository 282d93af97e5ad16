r"""Triplet spike-timing-dependent plasticity (Pfister & Gerstner 2006)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._misc import check_range, check_time_constant_vs_dt, nonnegative, param, positive
from .abstract import AbstractPlasticity, container_weights
from .stdp import _dense_update, _sparse_update

_TRACES = ("all_to_all", "nearest")
_NAME = "TripletSTDP"


class TripletSTDPState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]
    r1: Float[Array, " pre"]  # fast presynaptic trace, decay tau_plus [1]
    r2: Float[Array, " pre"]  # slow presynaptic trace, decay tau_x [1]
    o1: Float[Array, " post"]  # fast postsynaptic trace, decay tau_minus [1]
    o2: Float[Array, " post"]  # slow postsynaptic trace, decay tau_y [1]


class TripletSTDP(AbstractPlasticity[TripletSTDPState]):
    r"""Triplet STDP (Pfister & Gerstner 2006, J Neurosci 26:9673).

    Each presynaptic neuron keeps two traces, $r_1$ (decay $\tau_+$) and $r_2$
    (decay $\tau_x$), each postsynaptic neuron two, $o_1$ (decay $\tau_-$) and $o_2$
    (decay $\tau_y$), decayed by the exact factor $e^{-dt/\tau}$ per step. A
    presynaptic spike depresses and a postsynaptic spike potentiates:

    $$\text{pre: } w \mathrel{-}= o_1 \left(A_2^- + A_3^- r_2(t-\epsilon)\right),\quad
      \text{post: } w \mathrel{+}= r_1 \left(A_2^+ + A_3^+ o_2(t-\epsilon)\right),$$

    after which the spiking neuron's traces are raised: by 1 (`"all_to_all"`: every
    pair and triplet counts) or to 1 (`"nearest"`: the nearest-spike model, every
    trace reset to 1). $r_2$ and $o_2$ enter *before* their own spike's bump (the
    $t - \epsilon$ of the paper). The order within a step is PairSTDP's: traces decay;
    presynaptic spikes depress (with $o_1$ not yet counting this step's postsynaptic
    spikes) and raise $r_1, r_2$; postsynaptic spikes potentiate (with $r_1$ counting
    this step's presynaptic spikes, so $\Delta t = 0$ potentiates) and raise
    $o_1, o_2$. The update is additive with hard bounds $[0, w_{max}]$ (clipped after
    each phase); `w_max = inf` leaves the weights unbounded above (the lower bound 0
    stays). Spike times are the populations' outputs (the transmission delay is not
    included); only existing synapses change.

    The update is PairSTDP's with per-neuron amplitudes, $A_2^- + A_3^- r_2$ for each
    presynaptic and $A_2^+ + A_3^+ o_2$ for each postsynaptic neuron, and shares its
    machinery: event-driven on a `Sparse` projection (depression touches the rows of
    the presynaptic neurons that spiked, potentiation the synapses onto the
    postsynaptic neurons that spiked; gradient of the dense formula), the dense
    formula in steps with spikes on a `Dense` one. Differentiable in every parameter.

    For independent Poisson trains at rates $\rho_{pre}, \rho_{post}$ the mean drift
    is $\langle \dot w\rangle = \rho_{pre}\rho_{post}[A_2^+\tau_+ - A_2^-\tau_- +
    A_3^+\tau_+\tau_y\rho_{post} - A_3^-\tau_-\tau_x\rho_{pre}]$: for the minimal
    model a BCM rule with threshold $A_2^-\tau_-/(A_3^+\tau_+\tau_y)$ on the
    postsynaptic rate (19.22 Hz).

    The paper's visual-cortex fits are the constructors `visual_cortex_minimal()`,
    `visual_cortex_full()` (all-to-all) and `visual_cortex_nearest_minimal()`.

    **Arguments:**

    - `a2_plus`: Pair potentiation amplitude $A_2^+$ [weight units], >= 0.
    - `a3_plus`: Triplet potentiation amplitude $A_3^+$ [weight units], >= 0.
    - `a2_minus`: Pair depression amplitude $A_2^-$ [weight units], >= 0.
    - `a3_minus`: Triplet depression amplitude $A_3^-$ [weight units], >= 0.
    - `tau_plus`: Fast presynaptic trace $r_1$ time constant $\tau_+$ [ms], > 0.
    - `tau_x`: Slow presynaptic trace $r_2$ time constant $\tau_x$ [ms], > 0.
    - `tau_minus`: Fast postsynaptic trace $o_1$ time constant $\tau_-$ [ms], > 0.
    - `tau_y`: Slow postsynaptic trace $o_2$ time constant $\tau_y$ [ms], > 0.
    - `w_max`: Upper weight bound [weight units], in (0, inf] (inf: no upper bound);
      the lower bound is 0.
    - `traces`: `"all_to_all"` (default) or `"nearest"`.

    The projection's initial weights must lie in `[0, w_max]`.

    !!! example

        ```python
        rule = nj.plasticity.TripletSTDP.visual_cortex_minimal(w_max=1.0)
        nj.Projection("in", "out", nj.connectivity.AllToAll(), weight=0.5, plasticity=rule)
        ```
    """

    a2_plus: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} a2_plus", "weight units"))
    a3_plus: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} a3_plus", "weight units"))
    a2_minus: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} a2_minus", "weight units"))
    a3_minus: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} a3_minus", "weight units"))
    tau_plus: Float[Array, ""] = eqx.field(converter=positive(f"{_NAME} tau_plus", "ms"))
    tau_x: Float[Array, ""] = eqx.field(converter=positive(f"{_NAME} tau_x", "ms"))
    tau_minus: Float[Array, ""] = eqx.field(converter=positive(f"{_NAME} tau_minus", "ms"))
    tau_y: Float[Array, ""] = eqx.field(converter=positive(f"{_NAME} tau_y", "ms"))
    w_max: Float[Array, ""] = eqx.field(
        converter=param(f"{_NAME} w_max", "weight units", low=0.0, low_open=True, allow_inf=True)
    )
    traces: str = eqx.field(static=True, default="all_to_all")
    changes_weights: ClassVar[bool] = True

    def __init__(self, a2_plus=5e-10, a3_plus=6.2e-3, a2_minus=7e-3, a3_minus=2.3e-4,
                 tau_plus=16.8, tau_x=101.0, tau_minus=33.7, tau_y=125.0, w_max=1.0,
                 traces="all_to_all"):
        self.a2_plus = a2_plus
        self.a3_plus = a3_plus
        self.a2_minus = a2_minus
        self.a3_minus = a3_minus
        self.tau_plus = tau_plus
        self.tau_x = tau_x
        self.tau_minus = tau_minus
        self.tau_y = tau_y
        self.w_max = w_max
        self.traces = traces

    def __check_init__(self):
        if self.traces not in _TRACES:
            raise ValueError(f"{_NAME} traces must be one of {_TRACES}, got {self.traces!r}.")

    # Pfister & Gerstner 2006, Table 3 (visual cortex, Sjöström et al. 2001 data), as
    # quoted in REFERENCES.md §10. tau_plus = 16.8 and tau_minus = 33.7 ms throughout.

    @classmethod
    def visual_cortex_minimal(cls, w_max=math.inf) -> "TripletSTDP":
        """Pfister & Gerstner 2006, visual cortex, minimal all-to-all model: A2+ = 0,
        A3+ = 6.5e-3, A2- = 7.1e-3, A3- = 0, tau_y = 114 ms (tau_x unused; set to
        101 ms). Amplitudes are relative to the weight scale; `w_max` [weight units]."""
        return cls(a2_plus=0.0, a3_plus=6.5e-3, a2_minus=7.1e-3, a3_minus=0.0, tau_plus=16.8,
                   tau_x=101.0, tau_minus=33.7, tau_y=114.0, w_max=w_max)

    @classmethod
    def visual_cortex_full(cls, w_max=math.inf) -> "TripletSTDP":
        """Pfister & Gerstner 2006, visual cortex, full all-to-all model: A2+ = 5e-10,
        A3+ = 6.2e-3, A2- = 7e-3, A3- = 2.3e-4, tau_x = 101 ms, tau_y = 125 ms."""
        return cls(a2_plus=5e-10, a3_plus=6.2e-3, a2_minus=7e-3, a3_minus=2.3e-4, tau_plus=16.8,
                   tau_x=101.0, tau_minus=33.7, tau_y=125.0, w_max=w_max)

    @classmethod
    def visual_cortex_nearest_minimal(cls, w_max=math.inf) -> "TripletSTDP":
        """Pfister & Gerstner 2006, visual cortex, minimal nearest-spike model:
        A2+ = 0, A3+ = 5e-2, A2- = 8e-3, A3- = 0, tau_y = 40 ms, nearest-spike traces."""
        return cls(a2_plus=0.0, a3_plus=5e-2, a2_minus=8e-3, a3_minus=0.0, tau_plus=16.8,
                   tau_x=101.0, tau_minus=33.7, tau_y=40.0, w_max=w_max, traces="nearest")

    def init(self, structure: Any, weights: Array | None) -> TripletSTDPState:
        w = container_weights(structure) if weights is None else weights
        pre = jnp.zeros((structure.n_pre,), w.dtype)
        post = jnp.zeros((structure.n_post,), w.dtype)
        return TripletSTDPState(weights=w, r1=pre, r2=pre, o1=post, o2=post)

    def weights(self, state: TripletSTDPState) -> Array:
        return state.weights

    def _bump(self, trace, spikes):
        if self.traces == "nearest":
            return jnp.where(spikes > 0, jnp.ones_like(trace), trace)
        return trace + spikes

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        from ..connectivity.weights import SparseWeights

        dtype = state.weights.dtype
        pre, post = pre.astype(dtype), post.astype(dtype)
        r1 = state.r1 * jnp.exp(-dt / self.tau_plus)
        r2 = state.r2 * jnp.exp(-dt / self.tau_x)
        o1 = state.o1 * jnp.exp(-dt / self.tau_minus)
        o2 = state.o2 * jnp.exp(-dt / self.tau_y)
        # PairSTDP's update with unit amplitudes and per-neuron ones folded into the
        # spikes: depression o1 * pre * (A2- + A3- r2), potentiation
        # r1 * post * (A2+ + A3+ o2), with r2 and o2 before this step's bumps.
        pre_amp = pre * (self.a2_minus + self.a3_minus * r2)
        post_amp = post * (self.a2_plus + self.a3_plus * o2)
        r1_new = self._bump(r1, pre)
        one = jnp.ones((), dtype)
        params = (one, one, self.w_max)
        if isinstance(structure, SparseWeights) and structure.post_index is not None:
            w = _sparse_update(state.weights, r1_new, o1, pre_amp, post_amp, params,
                               structure.targets, structure.post_index, False, structure.chunk,
                               structure.kernel)
        else:
            w = _dense_update(state.weights, r1_new, o1, pre_amp, post_amp, params, structure,
                              False, skip_quiet=True)
        new = TripletSTDPState(weights=w, r1=r1_new, r2=self._bump(r2, pre),
                               o1=self._bump(o1, post), o2=self._bump(o2, post))
        return new, w

    def check(self, structure: Any, dt: float, name: str) -> None:
        fields = ("a2_plus", "a3_plus", "a2_minus", "a3_minus", "tau_plus", "tau_x",
                  "tau_minus", "tau_y", "w_max")
        for field in fields:
            if np.ndim(getattr(self, field)) != 0:
                raise ValueError(
                    f"projection {name!r}: {_NAME} {field} must be a scalar, got shape "
                    f"{np.shape(getattr(self, field))}."
                )
        for field in fields[:4]:
            check_range(getattr(self, field), f"{_NAME} {field}", "weight units", low=0.0)
        for field in fields[4:8]:
            check_range(getattr(self, field), f"{_NAME} {field}", "ms", low=0.0, low_open=True)
            check_time_constant_vs_dt(getattr(self, field), dt, f"{_NAME} {field}")
        check_range(self.w_max, f"{_NAME} w_max", "weight units", low=0.0, low_open=True,
                    allow_inf=True)
