r"""Inhibitory spike-timing-dependent plasticity (Vogels et al. 2011)."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._misc import after, check_range, check_time_constant_vs_dt, nonnegative, param, positive
from .abstract import AbstractPlasticity, container_weights
from .stdp import _dense_update, _sparse_update


class InhibitorySTDPState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]
    pre_trace: Float[Array, " pre"]  # presynaptic trace [1]
    post_trace: Float[Array, " post"]  # postsynaptic trace [1]


class InhibitorySTDP(AbstractPlasticity[InhibitorySTDPState]):
    r"""Symmetric inhibitory STDP that sets a target postsynaptic rate (Vogels,
    Sprekeler, Zenke, Clopath & Gerstner 2011, Science 334:1569), for inhibitory ->
    excitatory synapses (weights are inhibitory strengths, >= 0).

    Each presynaptic and each postsynaptic neuron keeps a trace $x$ that adds 1 per
    spike and decays with $\tau_{STDP}$ (exact factor $e^{-dt/\tau_{STDP}}$ per step):

    $$\text{pre spike: } w \mathrel{+}= \eta\,(x_{post} - \alpha), \qquad
      \text{post spike: } w \mathrel{+}= \eta\, x_{pre}, \qquad
      \alpha = 2 \rho_0 \tau_{STDP}.$$

    A pair at $\Delta t = t_{post} - t_{pre}$ changes the weight by
    $\eta\,(e^{-|\Delta t|/\tau_{STDP}} - \alpha)$ (a symmetric window with a constant
    depression per presynaptic spike). For uncorrelated spikes the mean drift is
    $\eta \rho_{pre} (2\rho_{post}\tau_{STDP} - \alpha)$: inhibition grows while the
    postsynaptic rate exceeds $\rho_0$ and shrinks below it, so the rate settles at
    $\rho_0$. Within a step, presynaptic spikes act first (this step's postsynaptic
    spikes not yet in $x_{post}$), then postsynaptic spikes ($x_{pre}$ counting this
    step's presynaptic spikes), each phase clipping to $[0, w_{max}]$; so
    $\Delta t = 0$ gives $\eta(1 - \alpha)$. The update order and the event-driven
    `Sparse` update (with its custom gradient) are `PairSTDP`'s.

    **Arguments:**

    - `eta`: Learning rate $\eta$ [weight units], >= 0.
    - `rho0`: Target postsynaptic rate $\rho_0$ [Hz], >= 0.
    - `tau_stdp`: Trace time constant $\tau_{STDP}$ [ms], > 0.
    - `w_max`: Upper weight bound [weight units], > 0 (default `inf`: only the lower
      bound 0).

    The projection's initial weights must lie in `[0, w_max]`.

    !!! example

        ```python
        istdp = nj.plasticity.InhibitorySTDP(eta=1e-2, rho0=3.0, tau_stdp=20.0)
        ```
    """

    eta: Float[Array, ""] = eqx.field(converter=nonnegative("InhibitorySTDP eta", "weight units"))
    rho0: Float[Array, ""] = eqx.field(converter=nonnegative("InhibitorySTDP rho0", "Hz"))
    tau_stdp: Float[Array, ""] = eqx.field(converter=positive("InhibitorySTDP tau_stdp", "ms"))
    w_max: Float[Array, ""] = eqx.field(
        converter=param("InhibitorySTDP w_max", "weight units", low=0.0, low_open=True, allow_inf=True)
    )
    changes_weights: ClassVar[bool] = True

    def __init__(self, eta=1e-2, rho0=3.0, tau_stdp=20.0, w_max=float("inf")):
        self.eta = eta
        self.rho0 = rho0
        self.tau_stdp = tau_stdp
        self.w_max = w_max

    @property
    def alpha(self) -> Float[Array, ""]:
        """The depression per presynaptic spike in trace units, $2\\rho_0\\tau_{STDP}$ [1]."""
        return 2.0 * self.rho0 * 1e-3 * self.tau_stdp  # [Hz] * [ms] * 1e-3 = [1]

    def init(self, structure: Any, weights: Array | None) -> InhibitorySTDPState:
        w = container_weights(structure) if weights is None else weights
        return InhibitorySTDPState(
            weights=w,
            pre_trace=jnp.zeros((structure.n_pre,), w.dtype),
            post_trace=jnp.zeros((structure.n_post,), w.dtype),
        )

    def weights(self, state: InhibitorySTDPState) -> Array:
        return state.weights

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        from ..connectivity.weights import SparseWeights

        dtype = state.weights.dtype
        pre, post = pre.astype(dtype), post.astype(dtype)
        decay = jnp.exp(-dt / self.tau_stdp)
        x_pre = state.pre_trace * decay + pre
        # PairSTDP's additive update with a_+ = eta and a_- = -eta applied to
        # (x_post - alpha): pre spikes add eta (x_post - alpha), post spikes eta x_pre.
        params = (self.eta, -self.eta, self.w_max)
        if isinstance(structure, SparseWeights) and structure.post_index is not None:
            # The same values in the order of PairSTDP.step (see there and `after`).
            shifted = after(state.post_trace, post) * decay - self.alpha
            w = _sparse_update(state.weights, x_pre, shifted, pre, post, params,
                               structure.targets, structure.post_index, False, structure.chunk,
                               structure.kernel)
            first = w[..., 0, :1] if w.size else jnp.zeros((1,), dtype)  # any weight
            x_post = after(state.post_trace, first) * decay
        else:
            x_post = state.post_trace * decay
            shifted = x_post - self.alpha
            w = _dense_update(state.weights, x_pre, shifted, pre, post, params, structure, False,
                              skip_quiet=True)
        return InhibitorySTDPState(weights=w, pre_trace=x_pre, post_trace=x_post + post), w

    def check(self, structure: Any, dt: float, name: str) -> None:
        for field in ("eta", "rho0", "tau_stdp", "w_max"):
            if np.ndim(getattr(self, field)) != 0:
                raise ValueError(
                    f"projection {name!r}: InhibitorySTDP {field} must be a scalar, got shape "
                    f"{np.shape(getattr(self, field))}."
                )
        check_range(self.eta, "InhibitorySTDP eta", "weight units", low=0.0)
        check_range(self.rho0, "InhibitorySTDP rho0", "Hz", low=0.0)
        check_range(self.tau_stdp, "InhibitorySTDP tau_stdp", "ms", low=0.0, low_open=True)
        check_range(self.w_max, "InhibitorySTDP w_max", "weight units", low=0.0, low_open=True,
                    allow_inf=True)
        check_time_constant_vs_dt(self.tau_stdp, dt, "InhibitorySTDP tau_stdp")
