r"""Voltage-based STDP (Clopath, Büsing, Vasilaki & Gerstner 2010)."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._misc import check_range, check_time_constant_vs_dt, finite, nonnegative, positive
from .abstract import AbstractPlasticity, container_weights
from .stdp import _layout


class VoltageSTDPState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]
    x_pre: Float[Array, " pre"]  # presynaptic trace x̄ [1/ms]
    u_minus: Float[Array, " post"]  # low-pass filtered potential ū- [mV]
    u_plus: Float[Array, " post"]  # low-pass filtered potential ū+ [mV]
    u_bar_bar: Float[Array, " post"]  # slow mean depolarisation ū̄ (homeostasis) [mV]
    clamp: Float[Array, " post"]  # time left with the potential read as v_spike [ms]


class VoltageSTDP(AbstractPlasticity[VoltageSTDPState]):
    r"""Voltage-based STDP (Clopath, Büsing, Vasilaki & Gerstner 2010, Nat Neurosci 13:344).

    The weight depends on presynaptic spikes and on the postsynaptic membrane potential
    $u$ (read through the neuron's `voltage`, e.g. `v` of `LIF`/`AdEx`):

    $$\frac{dw}{dt} = -A_{LTD}\, X(t)\, [\bar u_- - \theta_-]_+
      + A_{LTP}\, \bar x\, [u - \theta_+]_+\, [\bar u_+ - \theta_-]_+,$$

    with $X(t)$ the presynaptic spike train, $\bar u_\pm$ the potential low-pass
    filtered with $\tau_\pm$ ($\tau_\pm d\bar u_\pm/dt = -\bar u_\pm + u$) and $\bar x$
    the presynaptic trace ($\tau_x d\bar x/dt = -\bar x + X$: each spike adds
    $1/\tau_x$, as in NEST's `clopath_synapse`). With `homeostasis=True`, $A_{LTD}$ is
    scaled per postsynaptic neuron by $\bar{\bar u}^2 / u_{ref}^2$, $\bar{\bar u}$ the
    depolarisation $\bar u_- - \theta_-$ low-pass filtered with `tau_homeostasis`.

    Per step $[t, t + dt)$ ($u$ is the potential at its end, when its spikes fall): the
    filters take the exact factor $e^{-dt/\tau}$ towards $u$; a presynaptic spike
    depresses by $A_{LTD} [\bar u_- - \theta_-]_+$; then every synapse potentiates by
    $dt\, A_{LTP}\, \bar x\, [u - \theta_+]_+ [\bar u_+ - \theta_-]_+$ (the rectangle
    rule, NEST's discretisation), each phase clipped to $[0, w_{max}]$; then $\bar x$
    decays and counts the step's presynaptic spikes. A point neuron's reset hides the
    spike's depolarisation that the rule needs for LTP: with `v_spike`, the potential
    is read as `v_spike` for `t_spike` after each postsynaptic spike (the clamp of
    NEST's `aeif_psc_delta_clopath`; without it only the upswing above $\theta_+$ before
    the reset counts). The postsynaptic population must have a membrane potential
    (`AbstractNeuron.voltage`): a rate or binary unit raises a `ValueError`. The
    ModelDB code's 5 ms delay of $\bar u_\pm$ (present in NEST, not in the paper) is
    left out. `VoltageSTDP.clopath2010()` gives the published visual-cortex set.

    **Arguments:**

    - `a_ltd`: Depression amplitude $A_{LTD}$ [weight units/mV], >= 0.
    - `a_ltp`: Potentiation amplitude $A_{LTP}$ [weight units/mV²], >= 0.
    - `theta_minus`: Depression threshold $\theta_-$ [mV], finite.
    - `theta_plus`: Potentiation threshold $\theta_+$ [mV], finite.
    - `tau_x`: Presynaptic trace time constant $\tau_x$ [ms], > 0.
    - `tau_minus`: Time constant of $\bar u_-$ [ms], > 0.
    - `tau_plus`: Time constant of $\bar u_+$ [ms], > 0.
    - `w_max`: Upper weight bound [weight units], > 0; the lower bound is 0.
    - `homeostasis`: Scale $A_{LTD}$ by $\bar{\bar u}^2 / u_{ref}^2$ (default `False`).
      A per-neuron average, so refused on synapses with a compartment each
      (`Compartments(sites="synapse")` or a sites array), whose sites read their own
      potentials.
    - `u_ref_squared`: $u_{ref}^2$ [mV²], > 0 (NEST's default 60 mV²).
    - `tau_homeostasis`: Time constant of $\bar{\bar u}$ [ms], > 0 (default 500 ms).
    - `v_spike`: Potential read during `t_spike` after a postsynaptic spike [mV], or
      `None` (default: the neuron's own potential throughout).
    - `t_spike`: Duration of that clamp [ms], > 0 (default 2 ms).

    The projection's initial weights must lie in `[0, w_max]`.

    !!! example

        ```python
        rule = nj.plasticity.VoltageSTDP.clopath2010(w_max=3.0, v_spike=33.0)
        nj.Projection("in", "adex", nj.connectivity.AllToAll(), weight=1.0, plasticity=rule)
        ```
    """

    a_ltd: Float[Array, ""] = eqx.field(converter=nonnegative("VoltageSTDP a_ltd", "weight units/mV"))
    a_ltp: Float[Array, ""] = eqx.field(converter=nonnegative("VoltageSTDP a_ltp", "weight units/mV^2"))
    theta_minus: Float[Array, ""] = eqx.field(converter=finite("VoltageSTDP theta_minus", "mV"))
    theta_plus: Float[Array, ""] = eqx.field(converter=finite("VoltageSTDP theta_plus", "mV"))
    tau_x: Float[Array, ""] = eqx.field(converter=positive("VoltageSTDP tau_x", "ms"))
    tau_minus: Float[Array, ""] = eqx.field(converter=positive("VoltageSTDP tau_minus", "ms"))
    tau_plus: Float[Array, ""] = eqx.field(converter=positive("VoltageSTDP tau_plus", "ms"))
    w_max: Float[Array, ""] = eqx.field(converter=positive("VoltageSTDP w_max", "weight units"))
    u_ref_squared: Float[Array, ""] = eqx.field(converter=positive("VoltageSTDP u_ref_squared", "mV^2"))
    tau_homeostasis: Float[Array, ""] = eqx.field(converter=positive("VoltageSTDP tau_homeostasis", "ms"))
    v_spike: Float[Array, ""] | None
    t_spike: Float[Array, ""] = eqx.field(converter=positive("VoltageSTDP t_spike", "ms"))
    homeostasis: bool = eqx.field(static=True, default=False)
    changes_weights: ClassVar[bool] = True
    reads_voltage: ClassVar[bool] = True  # the network passes the post potential [mV]

    def __init__(self, a_ltd=14e-5, a_ltp=8e-5, theta_minus=-70.6, theta_plus=-45.3, tau_x=15.0,
                 tau_minus=10.0, tau_plus=7.0, w_max=1.0, homeostasis=False, u_ref_squared=60.0,
                 tau_homeostasis=500.0, v_spike=None, t_spike=2.0):
        self.a_ltd = a_ltd
        self.a_ltp = a_ltp
        self.theta_minus = theta_minus
        self.theta_plus = theta_plus
        self.tau_x = tau_x
        self.tau_minus = tau_minus
        self.tau_plus = tau_plus
        self.w_max = w_max
        self.homeostasis = homeostasis
        self.u_ref_squared = u_ref_squared
        self.tau_homeostasis = tau_homeostasis
        self.v_spike = None if v_spike is None else finite("VoltageSTDP v_spike", "mV")(v_spike)
        self.t_spike = t_spike

    @classmethod
    def clopath2010(cls, **kwargs) -> VoltageSTDP:
        """The visual-cortex parameters of Clopath et al. (2010, table 1b): A_LTD =
        14e-5 /mV, A_LTP = 8e-5 /mV², theta_- = -70.6 mV, theta_+ = -45.3 mV, tau_x =
        15 ms, tau_- = 10 ms, tau_+ = 7 ms (the defaults of NEST's `clopath_synapse`,
        `ClopathArchivingNode` and `aeif_psc_delta_clopath`); `kwargs` override any
        argument (e.g. `w_max`, `v_spike`, `homeostasis`)."""
        params = dict(a_ltd=14e-5, a_ltp=8e-5, theta_minus=-70.6, theta_plus=-45.3, tau_x=15.0,
                      tau_minus=10.0, tau_plus=7.0)
        return cls(**(params | kwargs))

    def init(self, structure: Any, weights: Array | None) -> VoltageSTDPState:
        w = container_weights(structure) if weights is None else weights
        n_post = structure.n_post
        rest = jnp.full((n_post,), self.theta_minus, w.dtype)
        return VoltageSTDPState(
            weights=w,
            x_pre=jnp.zeros((structure.n_pre,), w.dtype),
            u_minus=rest,
            u_plus=rest,
            u_bar_bar=jnp.zeros((n_post,), w.dtype),
            clamp=jnp.zeros((n_post,), w.dtype),
        )

    def weights(self, state: VoltageSTDPState) -> Array:
        return state.weights

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        if post_vars is None:
            raise ValueError(
                "VoltageSTDP reads the postsynaptic membrane potential [mV], but the "
                "postsynaptic neuron has none (AbstractNeuron.voltage is None)."
            )
        dtype = state.weights.dtype
        pre, post = pre.astype(dtype), post.astype(dtype)
        u = jnp.asarray(post_vars, dtype)
        clamp = state.clamp
        if self.v_spike is not None:
            # Read the potential as v_spike for t_spike after each spike (at its end).
            clamp = jnp.where(post > 0, self.t_spike, jnp.maximum(clamp - dt, 0.0))
            u = jnp.where(clamp > 0.5 * dt, self.v_spike, u)
        f_minus, f_plus = jnp.exp(-dt / self.tau_minus), jnp.exp(-dt / self.tau_plus)
        u_minus = u + (state.u_minus - u) * f_minus
        u_plus = u + (state.u_plus - u) * f_plus
        u_bar_bar = state.u_bar_bar
        a_ltd = self.a_ltd
        if self.homeostasis:
            f_h = jnp.exp(-dt / self.tau_homeostasis)
            depol = u_minus - self.theta_minus
            u_bar_bar = depol + (u_bar_bar - depol) * f_h
            a_ltd = a_ltd * u_bar_bar**2 / self.u_ref_squared
        pre_at, post_at, mask = _layout(structure)
        ltd = jnp.maximum(u_minus - self.theta_minus, 0.0) * a_ltd
        w = jnp.where(mask, jnp.clip(state.weights - pre_at(pre) * post_at(ltd), 0.0, self.w_max),
                      state.weights)
        x = state.x_pre * jnp.exp(-dt / self.tau_x)
        ltp = (dt * self.a_ltp * jnp.maximum(u - self.theta_plus, 0.0)
               * jnp.maximum(u_plus - self.theta_minus, 0.0))
        w = jnp.where(mask, jnp.clip(w + pre_at(x) * post_at(ltp), 0.0, self.w_max), w)
        x = x + pre / self.tau_x
        new = VoltageSTDPState(weights=w, x_pre=x, u_minus=u_minus, u_plus=u_plus,
                               u_bar_bar=u_bar_bar, clamp=clamp)
        return new, w

    def check(self, structure: Any, dt: float, name: str) -> None:
        fields = ["a_ltd", "a_ltp", "theta_minus", "theta_plus", "tau_x", "tau_minus", "tau_plus",
                  "w_max", "u_ref_squared", "tau_homeostasis", "t_spike"]
        if self.v_spike is not None:
            fields.append("v_spike")
        for field in fields:
            if np.ndim(getattr(self, field)) != 0:
                raise ValueError(
                    f"projection {name!r}: VoltageSTDP {field} must be a scalar, got shape "
                    f"{np.shape(getattr(self, field))}."
                )
        check_range(self.a_ltd, "VoltageSTDP a_ltd", "weight units/mV", low=0.0)
        check_range(self.a_ltp, "VoltageSTDP a_ltp", "weight units/mV^2", low=0.0)
        check_range(self.theta_minus, "VoltageSTDP theta_minus", "mV")
        check_range(self.theta_plus, "VoltageSTDP theta_plus", "mV")
        if self.v_spike is not None:
            check_range(self.v_spike, "VoltageSTDP v_spike", "mV")
        for field in ("tau_x", "tau_minus", "tau_plus", "tau_homeostasis"):
            check_range(getattr(self, field), f"VoltageSTDP {field}", "ms", low=0.0, low_open=True)
            check_time_constant_vs_dt(getattr(self, field), dt, f"VoltageSTDP {field}")
        check_range(self.t_spike, "VoltageSTDP t_spike", "ms", low=0.0, low_open=True)
        check_range(self.w_max, "VoltageSTDP w_max", "weight units", low=0.0, low_open=True)
        check_range(self.u_ref_squared, "VoltageSTDP u_ref_squared", "mV^2", low=0.0, low_open=True)
