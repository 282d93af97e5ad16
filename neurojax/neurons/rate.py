r"""Rate and binary units: `Rate`, `FiringRate`, `WilsonCowan`, `Binary`, and the
transfer functions `ReLU`, `Sigmoid`, `Tanh`, `PowerLaw`, `AbbottChance`.

These units emit graded rates (`spiking = False`); projections propagate them through
the same weights as spikes. A unit reads `drive.graded()` = `i + q` (see `neurojax.Drive`) as its
input $h$, a graded signal in the units of the projection's weights (for the
stabilised supralinear network, mV: weights in [mV·s] times rates in [Hz]).

Two forms of rate dynamics are provided, as two final classes:

- `Rate` (voltage form; Ahmadian et al. 2013, Hennequin et al. 2018):
  $\tau \dot v = -v + v_{rest} + h$, $r = f(v - v_{rest})$. The state is a
  membrane-potential-like variable, the rate is read out instantaneously.
- `FiringRate` (rate form; Wilson & Cowan 1972, Dayan & Abbott 2001 ch. 7):
  $\tau \dot r = -r + f(h)$. The state is the rate itself.

`WilsonCowan` is the rate form with the refractory factor $(1 - k_{ref} r)$.
All three are integrated with exponential Euler, exact for input held over a step.

`hopfield_weights` and `hopfield_retrieve` build and run a Hopfield (1982)
associative memory on `Binary` units; `WilsonCowanSystem` evaluates the
two-population Wilson–Cowan vector field for tests and theory.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._abstract import AbstractNeuron, Drive
from .._custom_types import PopulationParam
from .._misc import (
    check_order,
    check_shape,
    check_time_constant_vs_dt,
    finite,
    nonnegative,
    param,
    positive,
)
from ..surrogate import AbstractSurrogate, FastSigmoid

# ------------------------------------------------------------------------------------
# Transfer functions
# ------------------------------------------------------------------------------------


class AbstractTransfer(eqx.Module):
    """A static nonlinearity $r = f(x)$ from input $x$ to rate $r$.

    Parameters are differentiable leaves, scalars or one value per neuron (shape `(n,)`).
    """

    @abc.abstractmethod
    def __call__(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """The rate for input `x`."""

    def check(self, n: int) -> None:
        """Raise a `ValueError` if a parameter is neither a scalar nor of shape `(n,)`."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, jax.Array):
                check_shape(value, n, f"transfer.{f.name}")


class ReLU(AbstractTransfer):
    r"""Threshold-linear transfer, optionally saturating.

    $$f(x) = \min\big(g\,[x - \theta]_+,\; r_{max}\big)$$

    **Arguments:**

    - `gain`: Slope $g$ [rate/input, e.g. Hz/mV], non-negative.
    - `threshold`: Threshold $\theta$ [input, e.g. mV].
    - `max_rate`: Saturation $r_{max}$ [rate, e.g. Hz], positive; `inf` (default)
      for none (Tsodyks et al. 1997 cap it at 1).
    """

    gain: PopulationParam = eqx.field(
        converter=nonnegative("gain", "rate/input"), default=1.0
    )
    threshold: PopulationParam = eqx.field(
        converter=finite("threshold", "input"), default=0.0
    )
    max_rate: PopulationParam = eqx.field(
        converter=param("max_rate", "rate", low=0.0, low_open=True, allow_inf=True),
        default=float("inf"),
    )

    def __call__(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        return _relu(jnp.asarray(x), self.gain, self.threshold, self.max_rate)


@jax.custom_jvp
def _relu(x, gain, threshold, max_rate):
    """min(gain max(x - threshold, 0), max_rate), with exactly the derivatives of
    jnp.maximum and jnp.minimum (1, 1/2 at a tie, 0). jnp's rules divide two selects
    per function; in a scan's forward pass that is two float arrays computed and stored
    per step for the backward pass (the transfer of a trained rate network). Here the
    derivative with respect to `x` is one product of selects (one array), and
    parameters that are not differentiated (symbolic zero tangents) cost nothing."""
    return jnp.minimum(gain * jnp.maximum(x - threshold, 0.0), max_rate)


def _relu_jvp(primals, tangents):
    x, gain, threshold, max_rate = primals
    tx, tg, tth, tr = tangents
    y = x - threshold
    above = jnp.maximum(y, 0.0)
    scaled = gain * above  # what jnp.minimum compares with max_rate
    out = jnp.minimum(scaled, max_rate)
    d_above = jnp.where(y > 0, 1.0, jnp.where(y == 0, 0.5, 0.0))
    d_out = jnp.where(scaled < max_rate, 1.0, jnp.where(scaled == max_rate, 0.5, 0.0))
    zero = lambda t: type(t) is jax.custom_derivatives.SymbolicZero
    terms = []
    if not zero(tx):
        terms.append((d_out * gain * d_above) * tx)
    if not zero(tth):
        terms.append(-(d_out * gain * d_above) * tth)
    if not zero(tg):
        terms.append(d_out * above * tg)
    if not zero(tr):
        terms.append((1.0 - d_out) * tr)
    t_out = functools.reduce(lambda a, b: a + b, terms) if terms else jnp.zeros_like(out)
    return out, jnp.broadcast_to(t_out, out.shape).astype(out.dtype)


_relu.defjvp(_relu_jvp, symbolic_zeros=True)


class Sigmoid(AbstractTransfer):
    r"""Logistic transfer, plain or in Wilson and Cowan's shifted form.

    $$f(x) = \frac{r_{max}}{1 + e^{-a (x - \theta)}}
    \;\Big[\, - \frac{r_{max}}{1 + e^{a\theta}} \text{ if shifted} \Big]$$

    The shifted form (Wilson & Cowan 1972; Neuromatch Academy W2D4) has $f(0) = 0$,
    so zero activity is a fixed point without input.

    **Arguments:**

    - `gain`: Slope $a$ [1/input, e.g. 1/mV], positive.
    - `threshold`: Half-activation point $\theta$ [input, e.g. mV].
    - `max_rate`: Saturation $r_{max}$ [rate, e.g. Hz], positive; 1 for the
      dimensionless Wilson–Cowan activity.
    - `shifted`: Subtract $f(0)$ of the unshifted curve (static flag).
    """

    gain: PopulationParam = eqx.field(converter=positive("gain", "1/input"), default=1.0)
    threshold: PopulationParam = eqx.field(
        converter=finite("threshold", "input"), default=0.0
    )
    max_rate: PopulationParam = eqx.field(
        converter=positive("max_rate", "rate"), default=1.0
    )
    shifted: bool = eqx.field(static=True, default=False)

    def __call__(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        r = jax.nn.sigmoid(self.gain * (jnp.asarray(x) - self.threshold))
        if self.shifted:
            # 1/(1 + e^{a theta}) = sigmoid(-a theta), without overflow for large a theta.
            r = r - jax.nn.sigmoid(-self.gain * self.threshold)
        return self.max_rate * r


class Tanh(AbstractTransfer):
    r"""Hyperbolic-tangent transfer (Sompolinsky, Crisanti & Sommers 1988).

    $$f(x) = r_{max} \tanh\big(g (x - \theta)\big)$$

    **Arguments:**

    - `gain`: Slope $g$ [1/input], positive.
    - `threshold`: Centre $\theta$ [input].
    - `max_rate`: Amplitude $r_{max}$ [rate], positive.
    """

    gain: PopulationParam = eqx.field(converter=positive("gain", "1/input"), default=1.0)
    threshold: PopulationParam = eqx.field(
        converter=finite("threshold", "input"), default=0.0
    )
    max_rate: PopulationParam = eqx.field(
        converter=positive("max_rate", "rate"), default=1.0
    )

    def __call__(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        return self.max_rate * jnp.tanh(self.gain * (jnp.asarray(x) - self.threshold))


class PowerLaw(AbstractTransfer):
    r"""Rectified power law of the stabilised supralinear network (Ahmadian et al. 2013).

    $$f(x) = k\,[x]_+^{\,n}$$

    **Arguments:**

    - `k`: Gain [rate/input^n, e.g. Hz/mV^n], positive (0.3 in Hennequin et al. 2018).
    - `n`: Exponent [dimensionless], non-negative (2 in the SSN).
    """

    k: PopulationParam = eqx.field(converter=positive("k", "rate/input^n"), default=0.3)
    n: PopulationParam = eqx.field(converter=nonnegative("n", ""), default=2.0)

    def __call__(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        x = jnp.asarray(x)
        above = x > 0
        # x**n at x <= 0 would give 0**0 = 1 and an infinite or NaN derivative in x and
        # n; evaluating it at 1 there and masking keeps both value and gradients right.
        safe = jnp.where(above, x, 1.0)
        return jnp.where(above, self.k * safe**self.n, 0.0)


class AbbottChance(AbstractTransfer):
    r"""Abbott–Chance transfer of a current to a rate (Abbott & Chance 2005; the V1 rate
    model of Garcia del Molino et al. 2017, REFERENCES.md §17 Set A).

    $$V = V_L + \frac{h}{g_L}, \qquad
    f(h) = \frac{V - V_{th}}{\tau_m (V_{th} - V_r)\,\big(1 - e^{-(V - V_{th})/\sigma_V}\big)}$$

    with $h$ the input current [pA] and $f$ in Hz (the $1/\tau_m$ in 1/ms is scaled by
    1000). It rises exponentially below threshold and linearly, with slope
    $1/(\tau_m (V_{th} - V_r))$ per mV, above; at $V = V_{th}$ it is
    $\sigma_V / (\tau_m (V_{th} - V_r))$. Evaluated as $\sigma_V\, x / (1 - e^{-x})$ with
    $x = (V - V_{th})/\sigma_V$ in a form that neither overflows for large $|x|$ nor
    divides 0 by 0 at $x = 0$, so its value and derivative are finite everywhere.

    **Arguments:**

    - `tau_m`: Membrane time constant $\tau_m$ [ms], positive.
    - `g_l`: Leak conductance $g_L$ [nS], positive.
    - `v_l`: Leak reversal $V_L$ [mV].
    - `v_th`: Threshold $V_{th}$ [mV].
    - `v_r`: Reset $V_r$ [mV], below `v_th`.
    - `sigma_v`: Noise width $\sigma_V$ [mV], positive.
    """

    tau_m: PopulationParam = eqx.field(converter=positive("tau_m", "ms"), default=20.0)
    g_l: PopulationParam = eqx.field(converter=positive("g_l", "nS"), default=10.0)
    v_l: PopulationParam = eqx.field(converter=finite("v_l", "mV"), default=-70.0)
    v_th: PopulationParam = eqx.field(converter=finite("v_th", "mV"), default=-50.0)
    v_r: PopulationParam = eqx.field(converter=finite("v_r", "mV"), default=-60.0)
    sigma_v: PopulationParam = eqx.field(converter=positive("sigma_v", "mV"), default=1.0)

    def __check_init__(self):
        check_order(self.v_r, self.v_th, "v_r", "v_th")

    def __call__(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        v = self.v_l + jnp.asarray(x) / self.g_l  # [mV] = [mV] + [pA] / [nS]
        z = (v - self.v_th) / self.sigma_v
        # z / (1 - e^{-z}) = z / -expm1(-z) for z > 0 and z e^z / expm1(z) for z < 0
        # (no overflow either side); near 0 its series 1 + z/2 + z^2/12 (error
        # O(z^4) < 1e-17 for |z| < 1e-4) avoids 0/0 in value and gradient.
        small = jnp.abs(z) < 1e-4
        zs = jnp.where(small, 1.0, z)
        pos = zs / -jnp.expm1(-jnp.maximum(zs, 1e-4))
        neg = zs * jnp.exp(jnp.minimum(zs, -1e-4)) / jnp.expm1(jnp.minimum(zs, -1e-4))
        g = jnp.where(small, 1.0 + z / 2.0 + z * z / 12.0, jnp.where(zs > 0, pos, neg))
        # [Hz] = 1e3 [1/ms]: sigma_V g / (tau_m (V_th - V_r)) is in 1/ms.
        return 1e3 * self.sigma_v * g / (self.tau_m * (self.v_th - self.v_r))


# ------------------------------------------------------------------------------------
# Rate units
# ------------------------------------------------------------------------------------


def _relax(x, x_inf, dt, tau):
    """Exact solution of tau dx/dt = x_inf - x over dt with x_inf held fixed."""
    return x_inf + (x - x_inf) * jnp.exp(-dt / tau)


def _check_dt_vs_tau(tau, dt):
    # Exponential Euler is stable for any dt, but the input (and, in a network, the
    # recurrent rates it is made of) is held over the step: the update lags the input
    # by one step, an O(dt/tau) error, and a recurrent loop with held input loses
    # stability once dt/tau times the loop gain exceeds ~2. With dt > tau a unit
    # relaxes almost fully to a stale input every step, so we require dt <= tau.
    check_time_constant_vs_dt(tau, dt, "tau")


class RateState(eqx.Module):
    v: Float[Array, " n"]  # membrane-potential-like variable [mV]


class Rate(AbstractNeuron[RateState]):
    r"""Rate units in voltage form (the SSN of Ahmadian et al. 2013; Hennequin et al.
    2018).

    $$\tau \frac{dv}{dt} = -v + v_{rest} + h, \qquad r = f(v - v_{rest}),$$

    with $h$ = `drive.graded()` [mV] and transfer function $f$ (e.g. `PowerLaw(k=0.3, n=2)`).
    Integrated with exponential Euler, exact for input constant over a step; the output
    is the rate at the end of the step. Under constant input $v$ relaxes to
    $v_{rest} + h$ and $r$ to $f(h)$.

    **Arguments:**

    - `tau`: Time constant [ms], positive.
    - `transfer`: Transfer function from $v - v_{rest}$ [mV] to rate [Hz].
    - `v_rest`: Resting potential [mV].

    Parameters are scalars or arrays of shape `(n,)`.

    !!! example
        ```python
        e_and_i = nj.neurons.Rate(tau=jnp.array([20.0, 10.0]), v_rest=-70.0,
                                  transfer=nj.neurons.PowerLaw(k=0.3, n=2.0))
        ```
    """

    spiking: ClassVar[bool] = False

    tau: PopulationParam = eqx.field(converter=positive("tau", "ms"), default=10.0)
    transfer: AbstractTransfer = ReLU()
    v_rest: PopulationParam = eqx.field(converter=finite("v_rest", "mV"), default=0.0)

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> RateState:
        return RateState(v=jnp.broadcast_to(self.v_rest, (n,)).astype(float))

    def step(
        self, state: RateState, drive: Drive, dt: float
    ) -> tuple[RateState, Float[Array, " n"]]:
        v = _relax(state.v, self.v_rest + drive.graded(), dt, self.tau)
        return RateState(v=v), self.transfer(v - self.v_rest)

    def rate(self, state: RateState) -> Float[Array, " n"]:
        """The rate $f(v - v_{rest})$ [Hz] that `step` emits for `state`."""
        return self.transfer(state.v - self.v_rest)

    def time_derivative(self, state: RateState, drive: Drive) -> RateState:
        """$dv/dt$ [mV/ms] under `drive`, as a State (used by `neurojax.ode`)."""
        return RateState(v=(self.v_rest + drive.graded() - state.v) / self.tau)

    def check(self, n: int, dt: float) -> None:
        check_shape(self.tau, n, "tau")
        check_shape(self.v_rest, n, "v_rest")
        self.transfer.check(n)
        _check_dt_vs_tau(self.tau, dt)


class FiringRateState(eqx.Module):
    r: Float[Array, " n"]  # rate [Hz, or the transfer's rate unit]


class FiringRate(AbstractNeuron[FiringRateState]):
    r"""Rate units in rate form (Wilson & Cowan 1972; Dayan & Abbott 2001, ch. 7).

    $$\tau \frac{dr}{dt} = -r + f(h),$$

    with $h$ = `drive.graded()` [input units] and transfer function $f$. Integrated with
    exponential Euler, exact for input constant over a step. `init` starts at $f(0)$,
    the fixed point without input.

    **Arguments:**

    - `tau`: Time constant [ms], positive.
    - `transfer`: Transfer function from input to rate [e.g. Hz].

    !!! example
        ```python
        units = nj.neurons.FiringRate(tau=10.0, transfer=nj.neurons.Tanh())
        ```
    """

    spiking: ClassVar[bool] = False

    tau: PopulationParam = eqx.field(converter=positive("tau", "ms"), default=10.0)
    transfer: AbstractTransfer = ReLU()

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> FiringRateState:
        r = self.transfer(jnp.zeros((n,)))
        return FiringRateState(r=jnp.broadcast_to(r, (n,)).astype(float))

    def step(
        self, state: FiringRateState, drive: Drive, dt: float
    ) -> tuple[FiringRateState, Float[Array, " n"]]:
        r = _relax(state.r, self.transfer(drive.graded()), dt, self.tau)
        return FiringRateState(r=r), r

    def rate(self, state: FiringRateState) -> Float[Array, " n"]:
        """The rate [Hz] that `step` emits for `state`: the state itself."""
        return state.r

    def time_derivative(self, state: FiringRateState, drive: Drive) -> FiringRateState:
        """$dr/dt$ [rate/ms] under `drive`, as a State (used by `neurojax.ode`)."""
        return FiringRateState(r=(self.transfer(drive.graded()) - state.r) / self.tau)

    def check(self, n: int, dt: float) -> None:
        check_shape(self.tau, n, "tau")
        self.transfer.check(n)
        _check_dt_vs_tau(self.tau, dt)


class WilsonCowanState(eqx.Module):
    r: Float[Array, " n"]  # activity (fraction of active cells) [dimensionless]


class WilsonCowan(AbstractNeuron[WilsonCowanState]):
    r"""One Wilson–Cowan population (Wilson & Cowan 1972) with refractoriness.

    $$\tau \frac{dr}{dt} = -r + (1 - k_{ref}\, r)\, F(h),$$

    with $h$ = `drive.graded()` (the weighted activity of the other populations plus external
    input, coupling $w_{EE}$ etc. coming from projections) and $F$ by default the
    shifted sigmoid. $k_{ref} = 0$ gives the Neuromatch Academy form used in
    REFERENCES.md §7; $k_{ref} = 1$ the original refractory factor $(1 - r)$.

    With $F$ held over a step the equation is linear in $r$, so exponential Euler with
    the effective rate $\lambda = (1 + k_{ref} F)/\tau$ and target
    $r_\infty = F/(1 + k_{ref} F)$ is exact for constant input. It needs
    $1 + k_{ref} F > 0$, true for $F \ge 0$ or for the shifted sigmoid with
    $k_{ref}\, r_{max} \le 1$.

    **Arguments:**

    - `tau`: Time constant [ms], positive.
    - `transfer`: $F$, from input to activity [dimensionless]. Default: the shifted
      sigmoid with the Neuromatch E parameters ($a = 1.2$, $\theta = 2.8$).
    - `k_ref`: Refractory coefficient [1/activity], non-negative.

    See `WilsonCowanSystem` for the two-population vector field.

    !!! example
        ```python
        e = nj.neurons.WilsonCowan(tau=1.0, transfer=nj.neurons.Sigmoid(
            gain=1.2, threshold=2.8, shifted=True))
        ```
    """

    spiking: ClassVar[bool] = False

    tau: PopulationParam = eqx.field(converter=positive("tau", "ms"), default=1.0)
    transfer: AbstractTransfer = Sigmoid(gain=1.2, threshold=2.8, shifted=True)
    k_ref: PopulationParam = eqx.field(converter=nonnegative("k_ref", "1/activity"),
                                       default=0.0)

    def _target(self, h):
        f = self.transfer(h)
        lam = 1.0 + self.k_ref * f  # [dimensionless]; rate lam/tau [1/ms]
        return f / lam, lam

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> WilsonCowanState:
        r_inf, _ = self._target(jnp.zeros((n,)))
        return WilsonCowanState(r=jnp.broadcast_to(r_inf, (n,)).astype(float))

    def step(
        self, state: WilsonCowanState, drive: Drive, dt: float
    ) -> tuple[WilsonCowanState, Float[Array, " n"]]:
        r_inf, lam = self._target(drive.graded())
        r = _relax(state.r, r_inf, dt * lam, self.tau)
        return WilsonCowanState(r=r), r

    def rate(self, state: WilsonCowanState) -> Float[Array, " n"]:
        """The activity [dimensionless] that `step` emits for `state`: the state itself."""
        return state.r

    def time_derivative(self, state: WilsonCowanState, drive: Drive) -> WilsonCowanState:
        """$dr/dt$ [1/ms] under `drive`, as a State (used by `neurojax.ode`)."""
        f = self.transfer(drive.graded())
        return WilsonCowanState(r=(f - (1.0 + self.k_ref * f) * state.r) / self.tau)

    def check(self, n: int, dt: float) -> None:
        check_shape(self.tau, n, "tau")
        check_shape(self.k_ref, n, "k_ref")
        self.transfer.check(n)
        _check_dt_vs_tau(self.tau, dt)


class WilsonCowanSystem(eqx.Module):
    r"""The two-population (E, I) Wilson–Cowan vector field, for tests and theory.

    $$\tau_E \dot r_E = -r_E + (1 - k_{ref} r_E)\,F_E(w_{EE} r_E - w_{EI} r_I + I_E),$$
    $$\tau_I \dot r_I = -r_I + (1 - k_{ref} r_I)\,F_I(w_{IE} r_E - w_{II} r_I + I_I),$$

    with $F_X$ the shifted sigmoid of gain $a_X$ and threshold $\theta_X$. Defaults are
    the Neuromatch Academy W2D4 `default_pars` (REFERENCES.md §7), with $k_{ref} = 0$.
    `populations()` returns the matching pair of `WilsonCowan` neurons, so that a
    network built from them with these weights simulates this very system.

    **Arguments:**

    - `tau_e`, `tau_i`: Time constants [ms].
    - `a_e`, `theta_e`, `a_i`, `theta_i`: Sigmoid gains [dimensionless] and thresholds
      [dimensionless].
    - `w_ee`, `w_ei`, `w_ie`, `w_ii`: Coupling strengths, all non-negative (the sign of
      inhibition is in the equation) [dimensionless].
    - `i_e`, `i_i`: External inputs [dimensionless].
    - `k_ref`: Refractory coefficient [dimensionless].
    """

    tau_e: Float[Array, ""] = eqx.field(converter=positive("tau_e", "ms"), default=1.0)
    tau_i: Float[Array, ""] = eqx.field(converter=positive("tau_i", "ms"), default=2.0)
    a_e: Float[Array, ""] = eqx.field(converter=positive("a_e", ""), default=1.2)
    theta_e: Float[Array, ""] = eqx.field(converter=finite("theta_e", ""), default=2.8)
    a_i: Float[Array, ""] = eqx.field(converter=positive("a_i", ""), default=1.0)
    theta_i: Float[Array, ""] = eqx.field(converter=finite("theta_i", ""), default=4.0)
    w_ee: Float[Array, ""] = eqx.field(converter=nonnegative("w_ee", ""), default=9.0)
    w_ei: Float[Array, ""] = eqx.field(converter=nonnegative("w_ei", ""), default=4.0)
    w_ie: Float[Array, ""] = eqx.field(converter=nonnegative("w_ie", ""), default=13.0)
    w_ii: Float[Array, ""] = eqx.field(converter=nonnegative("w_ii", ""), default=11.0)
    i_e: Float[Array, ""] = eqx.field(converter=finite("i_e", ""), default=0.0)
    i_i: Float[Array, ""] = eqx.field(converter=finite("i_i", ""), default=0.0)
    k_ref: Float[Array, ""] = eqx.field(converter=nonnegative("k_ref", ""), default=0.0)

    def populations(self) -> tuple[WilsonCowan, WilsonCowan]:
        """The E and I populations as `WilsonCowan` neurons (coupling not included)."""
        e = WilsonCowan(tau=self.tau_e, k_ref=self.k_ref, transfer=Sigmoid(
            gain=self.a_e, threshold=self.theta_e, shifted=True))
        i = WilsonCowan(tau=self.tau_i, k_ref=self.k_ref, transfer=Sigmoid(
            gain=self.a_i, threshold=self.theta_i, shifted=True))
        return e, i

    def inputs(self, r: Float[Array, "2"]) -> Float[Array, "2"]:
        """Total inputs $(h_E, h_I)$ at activities `r` $= (r_E, r_I)$."""
        return jnp.stack([
            self.w_ee * r[0] - self.w_ei * r[1] + self.i_e,
            self.w_ie * r[0] - self.w_ii * r[1] + self.i_i,
        ])

    def vector_field(self, r: Float[Array, "2"]) -> Float[Array, "2"]:
        """$dr/dt$ [1/ms] at activities `r` $= (r_E, r_I)$."""
        e, i = self.populations()
        h = self.inputs(r)
        f = jnp.stack([e.transfer(h[0]), i.transfer(h[1])])
        tau = jnp.stack([self.tau_e, self.tau_i])
        return (-r + (1.0 - self.k_ref * r) * f) / tau

    def __call__(
        self, t: float, y: Float[Array, "2"], args: object = None
    ) -> Float[Array, "2"]:
        """The vector field in diffrax's `ODETerm` signature `f(t, y, args)`."""
        return self.vector_field(y)


# ------------------------------------------------------------------------------------
# Binary units and the Hopfield network
# ------------------------------------------------------------------------------------


class BinaryState(eqx.Module):
    s: Float[Array, " n"]  # unit states: 0/1, or -1/+1 when symmetric
    key: PRNGKeyArray | None  # picks the units to update (asynchronous only)


class Binary(AbstractNeuron[BinaryState]):
    r"""McCulloch–Pitts threshold units (McCulloch & Pitts 1943; Hopfield 1982).

    $$s_i \leftarrow H(h_i - \theta) \in \{0, 1\}
    \quad\text{or, if symmetric,}\quad s_i \leftarrow 2H(h_i - \theta) - 1 \in \{-1, 1\},$$

    with $h$ = `drive.graded()` and $H(0) = 1$. Time is discrete: each `step` is one update
    and `dt` is not used. Synchronous units all update every step (Little 1974).
    Asynchronous units update `n_update` distinct units drawn uniformly at random each
    step (default 1, Hopfield's scheme; then $n$ steps are one sweep on average) and
    keep the others; the PRNG key lives in the state and is split every step. In a
    network the input is computed from the previous step's states, so with
    `n_update = 1` each update sees the current state of all other units.

    The forward pass is the exact step function; its derivative is the `surrogate`'s,
    so binary networks can be trained.

    **Arguments:**

    - `threshold`: Threshold $\theta$ [input units]. Scalar or shape `(n,)`.
    - `symmetric`: Emit $\pm 1$ instead of $0/1$ (static).
    - `asynchronous`: Update a random subset per step instead of all units (static).
    - `n_update`: Units updated per asynchronous step (static), in $[1, n]$.
    - `surrogate`: Step function and its surrogate gradient.

    !!! example
        ```python
        units = nj.neurons.Binary(symmetric=True, asynchronous=True)
        state = units.init(100, key=jax.random.key(0))
        ```
    """

    spiking: ClassVar[bool] = False

    threshold: PopulationParam = eqx.field(converter=finite("threshold", "input"),
                                           default=0.0)
    symmetric: bool = eqx.field(static=True, default=False)
    asynchronous: bool = eqx.field(static=True, default=False)
    n_update: int = eqx.field(static=True, default=1)
    surrogate: AbstractSurrogate = FastSigmoid()

    def __check_init__(self):
        if not (isinstance(self.n_update, int) and self.n_update >= 1):
            raise ValueError(f"n_update must be an integer >= 1, got {self.n_update!r}.")

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> BinaryState:
        """All units off (0, or -1 when symmetric). Asynchronous units need `key`."""
        if self.asynchronous and key is None:
            raise ValueError(
                "Binary(asynchronous=True).init needs a PRNG key: init(n, key=key); it "
                "picks which units update at each step."
            )
        s = jnp.full((n,), -1.0 if self.symmetric else 0.0)
        return BinaryState(s=s, key=key if self.asynchronous else None)

    def step(
        self, state: BinaryState, drive: Drive, dt: float
    ) -> tuple[BinaryState, Float[Array, " n"]]:
        # Broadcast: a drive or threshold may be a scalar shared by all units.
        target = jnp.broadcast_to(self.surrogate(drive.graded() - self.threshold), state.s.shape)
        if self.symmetric:
            target = 2.0 * target - 1.0
        if not self.asynchronous:
            return BinaryState(s=target, key=None), target
        if state.key is None:
            raise ValueError(
                "asynchronous Binary units need state.key; use init(n, key=key)."
            )
        n = state.s.shape[0]
        if self.n_update > n:
            raise ValueError(f"n_update = {self.n_update} exceeds the {n} units.")
        key, sub = jr.split(state.key)
        if self.n_update == 1:
            chosen = jr.randint(sub, (1,), 0, n)
        else:
            chosen = jr.choice(sub, n, (self.n_update,), replace=False)
        update = jnp.zeros((n,), bool).at[chosen].set(True)
        s = jnp.where(update, target, state.s)
        return BinaryState(s=s, key=key), s

    def check(self, n: int, dt: float) -> None:
        check_shape(self.threshold, n, "threshold")
        if self.asynchronous and self.n_update > n:
            raise ValueError(f"n_update must lie in [1, {n}] (the population size), "
                             f"got {self.n_update}.")


def hopfield_weights(patterns: Float[ArrayLike, "p n"]) -> Float[Array, "n n"]:
    r"""Hebbian weights of a Hopfield (1982) network storing $\pm 1$ `patterns`.

    $$W_{ij} = \frac{1}{N} \sum_\mu \xi_i^\mu \xi_j^\mu, \qquad W_{ii} = 0.$$

    **Arguments:**

    - `patterns`: Shape `(p, n)`, entries $\pm 1$.

    **Returns:** the `(n, n)` weight matrix [dimensionless].
    """
    xi = jnp.asarray(patterns)
    n = xi.shape[1]
    return (xi.T @ xi) * (1.0 - jnp.eye(n, dtype=xi.dtype)) / n


def hopfield_retrieve(
    weights: Float[ArrayLike, "n n"],
    cue: Float[ArrayLike, " n"],
    steps: int,
    key: PRNGKeyArray | None,
    asynchronous: bool = True,
    *,
    target: Float[ArrayLike, " n"] | None = None,
) -> tuple[Float[Array, " n"], Float[Array, ""]]:
    r"""Run a Hopfield network of symmetric `Binary` units (threshold 0) from `cue`.

    **Arguments:**

    - `weights`: `(n, n)` weights, e.g. from `hopfield_weights`.
    - `cue`: Initial $\pm 1$ state.
    - `steps`: Number of updates. Asynchronous: one random unit per step, so `n`
      steps are one sweep on average. Synchronous: all units per step.
    - `key`: PRNG key choosing the updated units; may be `None` if synchronous.
    - `asynchronous`: Update one unit at a time (Hopfield 1982) instead of all.
    - `target`: Pattern to compare with (default: the cue).

    **Returns:** the final state and its overlap $m = \xi \cdot s / N$ with `target`.
    """
    # An analysis helper with its own scan rather than `nj.simulate`: one population,
    # one dense recurrent matrix and no delays or recording need no network machinery,
    # and a plain scan keeps this jit- and vmap-able over cues, keys and weights.
    weights = jnp.asarray(weights)
    cue = jnp.asarray(cue)
    units = Binary(symmetric=True, asynchronous=asynchronous)
    if asynchronous and key is None:
        raise ValueError("hopfield_retrieve(asynchronous=True) needs a PRNG key.")
    state = BinaryState(s=cue, key=key if asynchronous else None)
    zero = jnp.zeros_like(cue)

    def body(state, _):
        state, _ = units.step(state, Drive(weights @ state.s, zero, zero, zero), 1.0)
        return state, None

    state, _ = jax.lax.scan(body, state, None, length=steps)
    xi = cue if target is None else jnp.asarray(target)
    return state.s, jnp.dot(xi, state.s) / cue.shape[0]

