r"""Integrate-and-fire neurons: `LIF`, `ALIF`, `EIF` and `AdEx`.

All of them share one membrane equation with conductance-based and current-based drive
(see `neurojax.Drive`),

$$C_m \frac{dv}{dt} = -g_L (v - E_L) + I_{\rm intr}(v, w) + i - g\,v,$$

where $I_{\rm intr}$ is zero (LIF), the exponential spike current
$g_L \Delta_T e^{(v - V_T)/\Delta_T}$ (EIF), or that current minus an adaptation current
$w$ (AdEx); `ALIF` is `LIF` with an adaptive threshold. The linear part is integrated
exactly over a step with the effective conductance $g_L + g$ (exponential Euler); the
intrinsic current is held at its start-of-step value. For LIF this is exact for drive
that is constant over the step. Delta-synapse charge $Q(v)$ arrives at the end of the
step as a jump $Q/C_m$.

Spike, reset and refractoriness: a neuron spikes when $v$ reaches threshold at the end
of a step; $v$ is set to `v_reset` and held there (input discarded) for `t_ref`, i.e.
`round(t_ref / dt)` steps, as in NEST and Brian2.

Gradients: the spike carries the `surrogate` derivative. With `detach_reset=True` (the
default) the reset $v \leftarrow v_{reset}$ passes no gradient through the spike (it uses
`stop_gradient(spikes)`; snnTorch, Norse and SpyTorch do the same, and Zenke & Vogels
2021 found it harmless and stabilising); with `detach_reset=False` it is differentiated
as $v(1-s) + v_{reset}\,s$, adding $(v_{reset} - v)\,\partial s$. The forward pass is
identical. Each passage near threshold then multiplies the backpropagated $v$-gradient by
about $1 - \gamma\,(v_{th} - v_{reset})$ (surrogate amplitude $\gamma$), i.e. -14 for
$\gamma = 1$ and a 15 mV reset: in a 100-neuron recurrent LIF network the weight
gradient overflowed float32 within 100 steps with `detach_reset=False` and stayed finite
with `True`; with $\gamma = 0.3$ the undetached reset trained better on 2 of 3 seeds and
not at all on the third. Use `False` only with a dampened surrogate,
$\gamma \lesssim 1/(v_{th} - v_{reset})$. AdEx's spike-triggered increment
$w \leftarrow w + b$ always carries the spike's surrogate gradient (it is a current that
shapes later dynamics, like a synapse), and so does ALIF's threshold jump
$a \leftarrow a + 1$ (Bellec et al. 2020's eligibility trace keeps that path).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._abstract import AbstractNeuron, Drive
from .._custom_types import PopulationParam
from .._misc import (
    check_order,
    check_shape,
    check_time_constant_vs_dt,
    finite,
    nonnegative,
    positive,
)
from ..surrogate import AbstractSurrogate, FastSigmoid, _reset


def _exponential_euler(v, drive: Drive, c_m, g_l, e_l, i_intrinsic, dt):
    """Exact update of the linear membrane over `dt` with conductances held fixed."""
    g_tot = g_l + drive.g  # [nS]
    v_inf = (g_l * e_l + drive.i + i_intrinsic) / g_tot  # [mV] = [pA] / [nS]
    v = v_inf + (v - v_inf) * jnp.exp(-dt * g_tot / c_m)  # c_m/g [pF/nS = ms]
    return v + drive.charge(v) / c_m  # [mV] = [pA·ms] / [pF]


def _fire_and_reset(v, refractory, v_spike, v_reset, t_ref, surrogate, detach_reset, dt):
    """Clamp refractory neurons, emit spikes where `v >= v_spike`, reset them."""
    held = refractory > 0.5 * dt
    v = jnp.where(held, v_reset, v)
    spikes = surrogate(v - v_spike)
    fired = spikes > 0
    v = _reset(v, spikes, v_reset, detach_reset)
    refractory = jnp.where(fired, t_ref, jnp.maximum(refractory - dt, 0.0))
    return v, refractory, spikes, fired


def _near_threshold(surrogate, v, v_spike, spikes):
    """`gradient_support` of a neuron that spiked where `v - v_spike >= 0`.

    A neuron that did not spike was not reset, so its end-of-step `v` is the potential
    its spike function saw (a refractory neuron held at `v_reset` included); one that
    spiked was reset, and is in the mask through its spike. The comparison is the
    surrogate's own (`|x| <= support` in `x`'s dtype), so the mask is exactly where
    the derivative may be non-zero."""
    if surrogate.support is None:
        return None
    return jnp.logical_or(spikes != 0, jnp.abs(v - v_spike) <= surrogate.support)


class LIFState(eqx.Module):
    v: Float[Array, " n"]  # membrane potential [mV]
    refractory: Float[Array, " n"]  # time left in the refractory period [ms]


class LIF(AbstractNeuron[LIFState]):
    r"""Leaky integrate-and-fire neurons (Lapicque 1907; Tuckwell 1988).

    $$C_m \frac{dv}{dt} = -g_L (v - E_L) + I(v), \qquad v \ge v_{th} \Rightarrow
    \text{spike}, \; v \leftarrow v_{reset} \text{ for } t_{ref}.$$

    Integrated exactly for drive constant over a step (exponential Euler). Under a
    constant current the interspike interval is
    $t_{ref} + \tau_m \ln\frac{v_\infty - v_{reset}}{v_\infty - v_{th}}$ with
    $\tau_m = C_m/g_L$ and $v_\infty = E_L + I/g_L$.

    **Arguments:**

    - `c_m`: Membrane capacitance [pF].
    - `g_l`: Leak conductance [nS]; $\tau_m = C_m/g_L$ [ms].
    - `e_l`: Leak reversal (resting) potential [mV].
    - `v_th`: Spike threshold [mV].
    - `v_reset`: Reset potential [mV], below `v_th`.
    - `t_ref`: Absolute refractory period [ms].
    - `surrogate`: Spike function and its surrogate gradient.
    - `detach_reset`: If `True` (default), no gradient flows through the spike into the
      reset of $v$; if `False`, the reset is differentiated too (module docstring).

    Each parameter is a scalar or an array of shape `(n,)`.

    !!! example
        ```python
        lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0,
                             v_reset=-60.0, t_ref=5.0)
        ```
    """

    c_m: PopulationParam = eqx.field(converter=positive("c_m", "pF"), default=250.0)
    g_l: PopulationParam = eqx.field(converter=positive("g_l", "nS"), default=12.5)
    e_l: PopulationParam = eqx.field(converter=finite("e_l", "mV"), default=-70.0)
    v_th: PopulationParam = eqx.field(converter=finite("v_th", "mV"), default=-55.0)
    v_reset: PopulationParam = eqx.field(converter=finite("v_reset", "mV"), default=-70.0)
    t_ref: PopulationParam = eqx.field(converter=nonnegative("t_ref", "ms"), default=2.0)
    surrogate: AbstractSurrogate = FastSigmoid()
    detach_reset: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        check_order(self.v_reset, self.v_th, "v_reset", "v_th")

    @property
    def tau_m(self) -> PopulationParam:
        """Membrane time constant [ms]."""
        return self.c_m / self.g_l

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> LIFState:
        v = jnp.broadcast_to(self.e_l, (n,)).astype(float)
        return LIFState(v=v, refractory=jnp.zeros((n,), v.dtype))

    def gradient_support(self, state: LIFState, output: Float[Array, " n"]
                         ) -> Bool[Array, " n"] | None:
        """Neurons within `surrogate.support` [mV] of `v_th` or spiking; `None` for a
        full-support surrogate (see `AbstractNeuron.gradient_support`)."""
        return _near_threshold(self.surrogate, state.v, self.v_th, output)

    def step(self, state: LIFState, drive: Drive, dt: float):
        v = _exponential_euler(state.v, drive, self.c_m, self.g_l, self.e_l, 0.0, dt)
        v, refractory, spikes, _ = _fire_and_reset(
            v, state.refractory, self.v_th, self.v_reset, self.t_ref, self.surrogate,
            self.detach_reset, dt,
        )
        return LIFState(v=v, refractory=refractory), spikes

    def check(self, n: int, dt: float) -> None:
        for name in ("c_m", "g_l", "e_l", "v_th", "v_reset", "t_ref"):
            check_shape(getattr(self, name), n, name)
        check_time_constant_vs_dt(self.tau_m, dt, "tau_m = c_m/g_l")


class ALIFState(eqx.Module):
    v: Float[Array, " n"]  # membrane potential [mV]
    a: Float[Array, " n"]  # threshold adaptation (exponentially filtered spike count) [1]
    refractory: Float[Array, " n"]  # time left in the refractory period [ms]


class ALIF(AbstractNeuron[ALIFState]):
    r"""Adaptive leaky integrate-and-fire neurons: `LIF` with a spike-triggered threshold
    (Bellec et al. 2018, LSNN; 2020, e-prop).

    $$C_m \frac{dv}{dt} = -g_L (v - E_L) + I(v), \qquad
    \frac{da}{dt} = -\frac{a}{\tau_a} + \sum_k \delta(t - t_k), \qquad
    A = v_{th} + \beta a,$$

    a spike when $v \ge A$, then $v \leftarrow v_{reset}$ for $t_{ref}$ as in `LIF`.
    Each spike raises the threshold by $\beta$ [mV], which relaxes back to `v_th` with
    $\tau_a$ (hundreds of ms to seconds), so the neuron keeps a memory of its recent
    activity far beyond $\tau_m$.

    **Update over a step** (exact for the equation above): $a \leftarrow \rho a$ with
    $\rho = e^{-dt/\tau_a}$; the membrane as `LIF`; a spike if
    $v \ge v_{th} + \beta a$; then $a \leftarrow a + z$. Hence
    $a(t) = \sum_{t_k < t} e^{-(t - t_k)/\tau_a}$ at each threshold test (and the state
    holds $a$ just after the step's jump). Bellec et al. (2020) write
    $a^{t+1} = \rho a^t + z^t$ with the test at $v^t \ge v_{th} + \beta a^t$, i.e. the
    last spike counts 1 rather than $\rho$: their threshold is this one with
    $\beta_{Bellec} = \beta \rho$ (a 0.05 % difference at their dt = 1 ms, $\tau_a$ = 2 s).
    The continuous-time form is used because $\beta$ and $\tau_a$ then mean the same
    at every dt, and because a neuron that did not spike ends the step with exactly the
    $a$ its threshold test used (so `gradient_support` is exact).

    The surrogate sees $v - A$ (threshold-relative), so the spike's derivative reaches
    $v$, $a$, `v_th` and $\beta$; the jump $a \leftarrow a + z$ carries it too (whatever
    `detach_reset`, which concerns the reset of $v$ only). With $\beta = 0$ the neuron is
    exactly `LIF`. Under a constant current the periodic orbit has period $T$ solving
    $T = t_{ref} + \tau_m \ln\frac{v_\infty - v_{reset}}{v_\infty - A^*}$ with
    $A^* = v_{th} + \beta\, e^{-T/\tau_a} / (1 - e^{-T/\tau_a})$ (the threshold at the
    spike, from the geometric series of earlier spikes).

    **Arguments:**

    - `c_m`, `g_l`, `e_l`, `v_th`, `v_reset`, `t_ref`: as for `LIF` [pF, nS, mV, mV, mV,
      ms]; `v_th` is the baseline threshold.
    - `beta`: Threshold increment per spike [mV], in [0, inf).
    - `tau_a`: Adaptation time constant [ms], in (0, inf).
    - `surrogate`: Spike function and its surrogate gradient.
    - `detach_reset`: If `True` (default), no gradient flows through the spike into the
      reset of $v$; if `False`, the reset is differentiated too (module docstring).

    Each parameter is a scalar or an array of shape `(n,)`; a mix of `beta = 0` (LIF)
    and adaptive neurons in one population is the LSNN of Bellec et al. (2018). The
    defaults are `LIF`'s with a moderate adaptation ($\beta$ = 1 mV, $\tau_a$ = 700 ms),
    not a fit to data.

    !!! example
        ```python
        alif = nj.neurons.ALIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0,
                               v_reset=-60.0, t_ref=2.0, beta=1.0, tau_a=700.0)
        ```
    """

    c_m: PopulationParam = eqx.field(converter=positive("c_m", "pF"), default=250.0)
    g_l: PopulationParam = eqx.field(converter=positive("g_l", "nS"), default=12.5)
    e_l: PopulationParam = eqx.field(converter=finite("e_l", "mV"), default=-70.0)
    v_th: PopulationParam = eqx.field(converter=finite("v_th", "mV"), default=-55.0)
    v_reset: PopulationParam = eqx.field(converter=finite("v_reset", "mV"), default=-70.0)
    t_ref: PopulationParam = eqx.field(converter=nonnegative("t_ref", "ms"), default=2.0)
    beta: PopulationParam = eqx.field(converter=nonnegative("beta", "mV"), default=1.0)
    tau_a: PopulationParam = eqx.field(converter=positive("tau_a", "ms"), default=700.0)
    surrogate: AbstractSurrogate = FastSigmoid()
    detach_reset: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        check_order(self.v_reset, self.v_th, "v_reset", "v_th")

    @property
    def tau_m(self) -> PopulationParam:
        """Membrane time constant [ms]."""
        return self.c_m / self.g_l

    def threshold(self, state: ALIFState) -> Float[Array, " n"]:
        """The adaptive threshold $v_{th} + \beta a$ [mV] of `state`."""
        return self.v_th + self.beta * state.a

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> ALIFState:
        v = jnp.broadcast_to(self.e_l, (n,)).astype(float)
        zeros = jnp.zeros((n,), v.dtype)
        return ALIFState(v=v, a=zeros, refractory=zeros)

    def gradient_support(self, state: ALIFState, output: Float[Array, " n"]
                         ) -> Bool[Array, " n"] | None:
        """Neurons within `surrogate.support` [mV] of their adaptive threshold or
        spiking; `None` for a full-support surrogate (see
        `AbstractNeuron.gradient_support`). A neuron that did not spike ends the step
        with the `a` its threshold test used, so the mask is exact."""
        return _near_threshold(self.surrogate, state.v, self.threshold(state), output)

    def step(self, state: ALIFState, drive: Drive, dt: float):
        v = _exponential_euler(state.v, drive, self.c_m, self.g_l, self.e_l, 0.0, dt)
        a = state.a * jnp.exp(-dt / self.tau_a)  # exact decay over the step
        v, refractory, spikes, _ = _fire_and_reset(
            v, state.refractory, self.v_th + self.beta * a, self.v_reset, self.t_ref,
            self.surrogate, self.detach_reset, dt,
        )
        return ALIFState(v=v, a=a + spikes, refractory=refractory), spikes

    def check(self, n: int, dt: float) -> None:
        for name in ("c_m", "g_l", "e_l", "v_th", "v_reset", "t_ref", "beta", "tau_a"):
            check_shape(getattr(self, name), n, name)
        check_time_constant_vs_dt(self.tau_m, dt, "tau_m = c_m/g_l")
        check_time_constant_vs_dt(self.tau_a, dt, "tau_a")


class EIFState(eqx.Module):
    v: Float[Array, " n"]  # membrane potential [mV]
    refractory: Float[Array, " n"]  # time left in the refractory period [ms]


def _exp_current(v, g_l, v_t, delta_t, v_peak):
    # v above v_peak is a spike in this very step, so bounding the exponent there only
    # avoids inf * 0 in the reset branch; it never changes a subthreshold value.
    return g_l * delta_t * jnp.exp((jnp.minimum(v, v_peak) - v_t) / delta_t)  # [pA]


def _rest(g_l, e_l, v_t, delta_t, a):
    r"""Resting potential [mV]: the lower root of
    $(g_L + a)(v - E_L) = g_L \Delta_T e^{(v - V_T)/\Delta_T}$, above `e_l` because the
    exponential current is not zero there (0.014 mV for the EIF defaults)."""
    # Newton from e_l: the residual is concave and negative at e_l, so the iterates
    # rise monotonically to the lower root (8 steps reach float64 precision unless
    # the root is within 0.1 delta_t of the saddle-node); capping them at the
    # residual's maximum keeps them finite when there is no root (a neuron that fires
    # at zero drive).
    v_max = v_t + delta_t * jnp.log1p(a / g_l)
    v = e_l
    for _ in range(8):
        ex = jnp.exp((v - v_t) / delta_t)
        residual = (g_l + a) * (v - e_l) - g_l * delta_t * ex  # [pA]
        v = jnp.minimum(v - residual / (g_l + a - g_l * ex), v_max)
    return v


class EIF(AbstractNeuron[EIFState]):
    r"""Exponential integrate-and-fire neurons (Fourcaud-Trocmé et al. 2003).

    $$C_m \frac{dv}{dt} = -g_L (v - E_L) + g_L \Delta_T e^{(v - V_T)/\Delta_T} + I(v),$$

    with a spike when $v$ reaches `v_peak`, then reset and refractoriness. The rheobase
    of a constant current is $g_L (V_T - E_L - \Delta_T)$. The exponential current is
    held at its start-of-step value and the linear part integrated exactly
    (first-order; the rate bias is below 0.3 % at dt = 0.005 ms for rates under 110 Hz).

    **Arguments:**

    - `c_m`: Membrane capacitance [pF].
    - `g_l`: Leak conductance [nS].
    - `e_l`: Leak reversal potential [mV].
    - `v_t`: Rheobase (soft) threshold $V_T$ [mV].
    - `delta_t`: Slope factor $\Delta_T$ [mV], positive.
    - `v_peak`: Spike cut-off [mV], above `v_t`.
    - `v_reset`: Reset potential [mV].
    - `t_ref`: Absolute refractory period [ms].
    - `surrogate`: Spike function and its surrogate gradient.
    - `detach_reset`: If `True` (default), no gradient flows through the spike into the
      reset of $v$; if `False`, the reset is differentiated too (module docstring).
    """

    c_m: PopulationParam = eqx.field(converter=positive("c_m", "pF"), default=600.0)
    g_l: PopulationParam = eqx.field(converter=positive("g_l", "nS"), default=50.0)
    e_l: PopulationParam = eqx.field(converter=finite("e_l", "mV"), default=-65.0)
    v_t: PopulationParam = eqx.field(converter=finite("v_t", "mV"), default=-55.0)
    delta_t: PopulationParam = eqx.field(converter=positive("delta_t", "mV"), default=2.0)
    v_peak: PopulationParam = eqx.field(converter=finite("v_peak", "mV"), default=-30.0)
    v_reset: PopulationParam = eqx.field(converter=finite("v_reset", "mV"), default=-60.0)
    t_ref: PopulationParam = eqx.field(converter=nonnegative("t_ref", "ms"), default=0.0)
    surrogate: AbstractSurrogate = FastSigmoid()
    detach_reset: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        check_order(self.v_t, self.v_peak, "v_t", "v_peak")
        check_order(self.v_reset, self.v_peak, "v_reset", "v_peak")

    @property
    def tau_m(self) -> PopulationParam:
        """Membrane time constant [ms]."""
        return self.c_m / self.g_l

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> EIFState:
        v_rest = _rest(self.g_l, self.e_l, self.v_t, self.delta_t, 0.0)
        v = jnp.broadcast_to(v_rest, (n,)).astype(float)
        return EIFState(v=v, refractory=jnp.zeros((n,), v.dtype))

    def gradient_support(self, state: EIFState, output: Float[Array, " n"]
                         ) -> Bool[Array, " n"] | None:
        """Neurons within `surrogate.support` [mV] of `v_peak` or spiking; `None` for a
        full-support surrogate (see `AbstractNeuron.gradient_support`)."""
        return _near_threshold(self.surrogate, state.v, self.v_peak, output)

    def step(self, state: EIFState, drive: Drive, dt: float):
        i_exp = _exp_current(state.v, self.g_l, self.v_t, self.delta_t, self.v_peak)
        v = _exponential_euler(state.v, drive, self.c_m, self.g_l, self.e_l, i_exp, dt)
        v, refractory, spikes, _ = _fire_and_reset(
            v, state.refractory, self.v_peak, self.v_reset, self.t_ref, self.surrogate,
            self.detach_reset, dt,
        )
        return EIFState(v=v, refractory=refractory), spikes

    def check(self, n: int, dt: float) -> None:
        for name in ("c_m", "g_l", "e_l", "v_t", "delta_t", "v_peak", "v_reset", "t_ref"):
            check_shape(getattr(self, name), n, name)
        # The exponential current is explicit: the upstroke's time scale is
        # tau_m * delta_t / (v - v_t), so a step must be a small fraction of tau_m.
        check_time_constant_vs_dt(self.tau_m, dt, "tau_m = c_m/g_l", factor=0.1)


class AdExState(eqx.Module):
    v: Float[Array, " n"]  # membrane potential [mV]
    w: Float[Array, " n"]  # adaptation current [pA]
    refractory: Float[Array, " n"]  # time left in the refractory period [ms]


class AdEx(AbstractNeuron[AdExState]):
    r"""Adaptive exponential integrate-and-fire neurons (Brette & Gerstner 2005).

    $$C_m \frac{dv}{dt} = -g_L (v - E_L) + g_L \Delta_T e^{(v - V_T)/\Delta_T} - w + I(v),
    \qquad \tau_w \frac{dw}{dt} = a (v - E_L) - w,$$

    and at a spike ($v \ge$ `v_peak`): $v \leftarrow v_{reset}$, $w \leftarrow w + b$.
    Both equations use exponential Euler with the other variable held at its
    start-of-step value (first order). With `a = b = 0` it is exactly `EIF`.

    **Arguments:**

    - `c_m`, `g_l`, `e_l`, `v_t`, `delta_t`, `v_peak`, `v_reset`, `t_ref`: as for `EIF`
      [pF, nS, mV, mV, mV, mV, mV, ms].
    - `a`: Subthreshold adaptation conductance [nS].
    - `b`: Spike-triggered adaptation increment [pA].
    - `tau_w`: Adaptation time constant [ms].
    - `surrogate`: Spike function and its surrogate gradient.
    - `detach_reset`: If `True` (default), no gradient flows through the spike into the
      reset of $v$; if `False`, the reset is differentiated too (module docstring).

    Defaults are the tonic-spiking cell of Brette & Gerstner (2005), Table 1.
    """

    c_m: PopulationParam = eqx.field(converter=positive("c_m", "pF"), default=281.0)
    g_l: PopulationParam = eqx.field(converter=positive("g_l", "nS"), default=30.0)
    e_l: PopulationParam = eqx.field(converter=finite("e_l", "mV"), default=-70.6)
    v_t: PopulationParam = eqx.field(converter=finite("v_t", "mV"), default=-50.4)
    delta_t: PopulationParam = eqx.field(converter=positive("delta_t", "mV"), default=2.0)
    v_peak: PopulationParam = eqx.field(converter=finite("v_peak", "mV"), default=0.0)
    v_reset: PopulationParam = eqx.field(converter=finite("v_reset", "mV"), default=-70.6)
    t_ref: PopulationParam = eqx.field(converter=nonnegative("t_ref", "ms"), default=0.0)
    a: PopulationParam = eqx.field(converter=finite("a", "nS"), default=4.0)
    b: PopulationParam = eqx.field(converter=finite("b", "pA"), default=80.5)
    tau_w: PopulationParam = eqx.field(converter=positive("tau_w", "ms"), default=144.0)
    surrogate: AbstractSurrogate = FastSigmoid()
    detach_reset: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        check_order(self.v_t, self.v_peak, "v_t", "v_peak")
        check_order(self.v_reset, self.v_peak, "v_reset", "v_peak")

    @property
    def tau_m(self) -> PopulationParam:
        """Membrane time constant [ms]."""
        return self.c_m / self.g_l

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> AdExState:
        v_rest = _rest(self.g_l, self.e_l, self.v_t, self.delta_t, self.a)
        v = jnp.broadcast_to(v_rest, (n,)).astype(float)
        w = jnp.broadcast_to(self.a * (v_rest - self.e_l), (n,)).astype(v.dtype)
        return AdExState(v=v, w=w, refractory=jnp.zeros((n,), v.dtype))

    def gradient_support(self, state: AdExState, output: Float[Array, " n"]
                         ) -> Bool[Array, " n"] | None:
        """Neurons within `surrogate.support` [mV] of `v_peak` or spiking; `None` for a
        full-support surrogate (see `AbstractNeuron.gradient_support`)."""
        return _near_threshold(self.surrogate, state.v, self.v_peak, output)

    def step(self, state: AdExState, drive: Drive, dt: float):
        i_exp = _exp_current(state.v, self.g_l, self.v_t, self.delta_t, self.v_peak)
        v = _exponential_euler(
            state.v, drive, self.c_m, self.g_l, self.e_l, i_exp - state.w, dt
        )
        w_inf = self.a * (state.v - self.e_l)  # [pA] = [nS] [mV]
        w = w_inf + (state.w - w_inf) * jnp.exp(-dt / self.tau_w)
        v, refractory, spikes, fired = _fire_and_reset(
            v, state.refractory, self.v_peak, self.v_reset, self.t_ref, self.surrogate,
            self.detach_reset, dt,
        )
        w = w + spikes * self.b
        return AdExState(v=v, w=w, refractory=refractory), spikes

    def check(self, n: int, dt: float) -> None:
        for name in ("c_m", "g_l", "e_l", "v_t", "delta_t", "v_peak", "v_reset",
                     "t_ref", "a", "b", "tau_w"):
            check_shape(getattr(self, name), n, name)
        check_time_constant_vs_dt(self.tau_m, dt, "tau_m = c_m/g_l", factor=0.1)
        check_time_constant_vs_dt(self.tau_w, dt, "tau_w", factor=0.1)
