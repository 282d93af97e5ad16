r"""Hodgkin-Huxley-type conductance-based neurons: `HodgkinHuxley`, `WangBuzsaki`,
`TraubMiles`.

Each model is a single compartment with voltage-gated sodium and potassium currents and a
leak,

$$C_m \frac{dv}{dt} = -\sum_k g_k(x, v)\,(v - E_k) + I(v), \qquad
\frac{dx}{dt} = \phi\,[\alpha_x(v)(1 - x) - \beta_x(v)\,x],$$

where $I(v)$ = `drive.current(v)` is the synaptic and injected current (see
`neurojax.Drive`) and $\phi$ a temperature factor. Delta-synapse charge `drive.charge(v)`
arrives at the end of the step as a jump $Q/C_m$.

**Units.** Parameters are absolute, in the library's units: $C_m$ [pF], conductances
[nS], currents [pA]. The defaults are the published densities on a membrane of area
`DEFAULT_AREA` = 20 000 µm² (the area of the Brette et al. 2007 COBAHH benchmark cell,
giving $C_m$ = 200 pF like the library's point neurons). Over an area $A$ [µm²],

- 1 µF/cm² is $A \cdot 10^{-2}$ pF,
- 1 mS/cm² is $A \cdot 10^{-2}$ nS,
- 1 µA/cm² is $A \cdot 10^{-8}\,\text{cm}^2/\text{µm}^2 \cdot 10^{6}\,\text{pA/µA}
  = A \cdot 10^{-2}$ pA,

so with the default area 1 µA/cm² is 200 pA. `Model.from_densities(area=..., c_m=...,
g_na=...)` builds a model from densities instead.

**Integrators** are objects (`integrator=ExponentialEuler()` or `RK4()`), shared by all
models here. Spikes are float 0/1 values emitted when $v$ crosses the detection threshold
`v_th` upwards within a step ($v_{prev} < v_{th} \le v$); the voltage is not reset.

The rate functions (`hh1952_rates`, `wang_buzsaki_rates`, `traub_miles_rates`) are pure
module-level functions so that multi-compartment models can reuse them.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._abstract import AbstractNeuron, Drive
from .._custom_types import PopulationParam, ScalarLike
from .._misc import (
    check_dt,
    check_shape,
    check_time_constant_vs_dt,
    finite,
    is_concrete,
    nonnegative,
    positive,
)
from ..surrogate import AbstractSurrogate, FastSigmoid

DEFAULT_AREA = 20000.0
"""Membrane area [µm²] for which the models' default absolute parameters are given."""

_PER_DENSITY = 1e-2
# [pF per (µF/cm²·µm²)] = [nS per (mS/cm²·µm²)] = [pA per (µA/cm²·µm²)]:
# 1 µm² = 1e-8 cm², and µF→pF, mS→nS, µA→pA are each a factor 1e6.

HH_REFERENCE_TEMPERATURE = 6.3
"""Temperature [°C] at which the Hodgkin & Huxley (1952) rates were measured."""


# ---------------------------------------------------------------------------------------
# Rate functions
# ---------------------------------------------------------------------------------------


def exprel(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    r"""$(e^x - 1)/x$ with its removable singularity at $x = 0$ filled in.

    Values and derivatives stay finite at and near 0: there the series
    $1 + x/2 + x^2/6 + x^3/24$ is used (its truncation error is below 1e-14 for
    $|x| < 10^{-3}$), and the division only ever sees a safe denominator
    (jax-md `safe_mask` style), so no NaN leaks into gradients.
    """
    small = jnp.abs(x) < 1e-3
    x_safe = jnp.where(small, 1.0, x)
    series = 1.0 + x * (0.5 + x * (1.0 / 6.0 + x / 24.0))
    return jnp.where(small, series, jnp.expm1(x_safe) / x_safe)


_Rates = tuple[
    Float[Array, "*shape"],
    Float[Array, "*shape"],
    Float[Array, "*shape"],
    Float[Array, "*shape"],
    Float[Array, "*shape"],
    Float[Array, "*shape"],
]


def hh1952_rates(v: Float[Array, "*shape"]) -> _Rates:
    r"""Opening and closing rates of the Hodgkin & Huxley (1952) squid-axon gates.

    With $u = v + 65$ [mV] (the original depolarisation-positive variable),

    $$\alpha_m = \frac{0.1(25-u)}{e^{(25-u)/10}-1},\ \beta_m = 4e^{-u/18},\
    \alpha_h = 0.07e^{-u/20},\ \beta_h = \frac{1}{e^{(30-u)/10}+1},\
    \alpha_n = \frac{0.01(10-u)}{e^{(10-u)/10}-1},\ \beta_n = 0.125e^{-u/80}.$$

    The removable singularities of $\alpha_m$ at $u = 25$ and $\alpha_n$ at $u = 10$
    are filled in (see `exprel`), so values and gradients are finite everywhere.

    **Arguments:**

    - `v`: Membrane potential [mV], any shape.

    **Returns:** `(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)` [1/ms] at 6.3 °C
    (no temperature factor), each of the shape of `v`.
    """
    u = v + 65.0
    alpha_m = 1.0 / exprel((25.0 - u) / 10.0)  # 0.1 * 10 * x / (e^x - 1)
    beta_m = 4.0 * jnp.exp(-u / 18.0)
    alpha_h = 0.07 * jnp.exp(-u / 20.0)
    beta_h = 1.0 / (jnp.exp((30.0 - u) / 10.0) + 1.0)
    alpha_n = 0.1 / exprel((10.0 - u) / 10.0)  # 0.01 * 10 * x / (e^x - 1)
    beta_n = 0.125 * jnp.exp(-u / 80.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def wang_buzsaki_rates(v: Float[Array, "*shape"]) -> _Rates:
    r"""Gate rates of the Wang & Buzsáki (1996) interneuron, without the factor $\phi$.

    $$\alpha_m = \frac{-0.1(v+35)}{e^{-(v+35)/10}-1},\ \beta_m = 4e^{-(v+60)/18},\
    \alpha_h = 0.07e^{-(v+58)/20},\ \beta_h = \frac{1}{e^{-(v+28)/10}+1},$$
    $$\alpha_n = \frac{-0.01(v+34)}{e^{-(v+34)/10}-1},\ \beta_n = 0.125e^{-(v+44)/80}.$$

    **Arguments:**

    - `v`: Membrane potential [mV], any shape.

    **Returns:** `(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)` [1/ms].
    """
    alpha_m = 1.0 / exprel(-(v + 35.0) / 10.0)
    beta_m = 4.0 * jnp.exp(-(v + 60.0) / 18.0)
    alpha_h = 0.07 * jnp.exp(-(v + 58.0) / 20.0)
    beta_h = 1.0 / (jnp.exp(-(v + 28.0) / 10.0) + 1.0)
    alpha_n = 0.1 / exprel(-(v + 34.0) / 10.0)
    beta_n = 0.125 * jnp.exp(-(v + 44.0) / 80.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def traub_miles_rates(v: Float[Array, "*shape"], v_t: Any = -63.0) -> _Rates:
    r"""Gate rates of the Traub & Miles (1991) cell as used in the COBAHH benchmark.

    With $w = v - V_T$ [mV],

    $$\alpha_m = \frac{0.32(13-w)}{e^{(13-w)/4}-1},\
    \beta_m = \frac{0.28(w-40)}{e^{(w-40)/5}-1},\
    \alpha_h = 0.128e^{(17-w)/18},\ \beta_h = \frac{4}{1+e^{(40-w)/5}},$$
    $$\alpha_n = \frac{0.032(15-w)}{e^{(15-w)/5}-1},\ \beta_n = 0.5e^{(10-w)/40}$$

    (Brette et al. 2007, benchmark 3; Brian2 `examples/COBAHH.py`).

    **Arguments:**

    - `v`: Membrane potential [mV], any shape.
    - `v_t`: Offset $V_T$ of the rate curves [mV], scalar or broadcastable to `v`.

    **Returns:** `(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)` [1/ms].
    """
    w = v - v_t
    alpha_m = 1.28 / exprel((13.0 - w) / 4.0)  # 0.32 * 4 * x / (e^x - 1)
    beta_m = 1.4 / exprel((w - 40.0) / 5.0)  # 0.28 * 5 * x / (e^x - 1)
    alpha_h = 0.128 * jnp.exp((17.0 - w) / 18.0)
    beta_h = 4.0 / (1.0 + jnp.exp((40.0 - w) / 5.0))
    alpha_n = 0.16 / exprel((15.0 - w) / 5.0)  # 0.032 * 5 * x / (e^x - 1)
    beta_n = 0.5 * jnp.exp((10.0 - w) / 40.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


# ---------------------------------------------------------------------------------------
# Integrators
# ---------------------------------------------------------------------------------------

_Gates = tuple[Float[Array, " n"], ...]


class AbstractHHIntegrator(eqx.Module):
    """One step of a conductance-based membrane and its gating variables.

    The largest step a model accepts depends on the integrator; see each model's
    `max_dt` (integrators other than `RK4` get the exponential-Euler bound).
    """

    @abc.abstractmethod
    def __call__(
        self,
        neuron: "AbstractConductanceNeuron",
        v: Float[Array, " n"],
        gates: _Gates,
        drive: Drive,
        dt: ScalarLike,
    ) -> tuple[Float[Array, " n"], _Gates]:
        """Advance `v` [mV] and the gates [1] of `neuron` by `dt` [ms] under `drive`."""


class ExponentialEuler(AbstractHHIntegrator):
    r"""Exponential Euler (Brian2 `exponential_euler`, NEURON `cnexp`), first order.

    With all variables frozen at their start-of-step values, each gate relaxes exactly
    towards $x_\infty = \alpha/(\alpha+\beta)$ with $\tau_x = 1/(\alpha+\beta)$, and
    $v$ relaxes exactly towards $v_\infty = (\sum_k g_k E_k + i)/(\sum_k g_k + g)$ with
    time constant $C_m/(\sum_k g_k + g)$:

    $$x' = x_\infty + (x - x_\infty) e^{-\Delta t/\tau_x}, \qquad
    v' = v + \Delta t\,\frac{I_{tot}(v)}{C_m}\,\frac{1 - e^{-z}}{z},\
    z = \Delta t\,\frac{\sum_k g_k + g}{C_m}.$$

    Unconditionally stable (every update is a convex combination), so gates stay in
    [0, 1]; the error comes from freezing the rates and conductances over the step.
    """

    def __call__(
        self,
        neuron: "AbstractConductanceNeuron",
        v: Float[Array, " n"],
        gates: _Gates,
        drive: Drive,
        dt: ScalarLike,
    ) -> tuple[Float[Array, " n"], _Gates]:
        alphas, betas = neuron.gate_rates(v)
        new_gates = []
        for x, a, b in zip(gates, alphas, betas):
            rate = a + b  # 1/tau_x [1/ms], positive since beta > 0
            x_inf = a / rate
            new_gates.append(x_inf + (x - x_inf) * jnp.exp(-dt * rate))
        g, g_e = neuron.ionic_conductance(v, gates)
        g_tot = g + drive.g  # [nS]
        i_tot = g_e - g * v + drive.current(v)  # [pA]
        # exprel keeps the update finite when the total conductance is zero.
        v_new = v + dt * i_tot / neuron.c_m * exprel(-dt * g_tot / neuron.c_m)
        return v_new, tuple(new_gates)


class RK4(AbstractHHIntegrator):
    r"""Classical fourth-order Runge-Kutta on $(v, x_1, \dots)$ with the drive held fixed
    over the step (its voltage dependence $i - g\,v$ is kept).

    Explicit, so it is only stable while $\Delta t$ stays within about 2.8 times the
    fastest active time constant; during the upstroke that is the membrane's
    $C_m/\sum_k g_k$ (~0.02 ms for HH), not a gate's.
    """

    def __call__(
        self,
        neuron: "AbstractConductanceNeuron",
        v: Float[Array, " n"],
        gates: _Gates,
        drive: Drive,
        dt: ScalarLike,
    ) -> tuple[Float[Array, " n"], _Gates]:
        y0 = (v, gates)

        def f(y):
            return neuron.vector_field(y[0], y[1], drive)

        def axpy(a, dy, y):
            return jax.tree.map(lambda yi, dyi: yi + a * dyi, y, dy)

        k1 = f(y0)
        k2 = f(axpy(0.5 * dt, k1, y0))
        k3 = f(axpy(0.5 * dt, k2, y0))
        k4 = f(axpy(dt, k3, y0))
        y1 = jax.tree.map(
            lambda y, a, b, c, d: y + dt / 6.0 * (a + 2.0 * b + 2.0 * c + d),
            y0, k1, k2, k3, k4,
        )
        return y1


# ---------------------------------------------------------------------------------------
# Shared model machinery
# ---------------------------------------------------------------------------------------

_State = TypeVar("_State")


class AbstractConductanceNeuron(AbstractNeuron[_State]):
    """A single-compartment neuron with sodium, potassium and leak conductances.

    Shared here: stepping with the model's `integrator`, spike detection, the resting
    state, construction from densities and the checks. A concrete model gives its gate
    rates, the open fractions of its channels, its largest accepted step and the packing
    of its State.
    """

    c_m: eqx.AbstractVar[PopulationParam]
    g_na: eqx.AbstractVar[PopulationParam]
    g_k: eqx.AbstractVar[PopulationParam]
    g_l: eqx.AbstractVar[PopulationParam]
    e_na: eqx.AbstractVar[PopulationParam]
    e_k: eqx.AbstractVar[PopulationParam]
    e_l: eqx.AbstractVar[PopulationParam]
    v_th: eqx.AbstractVar[PopulationParam]
    integrator: eqx.AbstractVar[AbstractHHIntegrator]
    surrogate: eqx.AbstractVar[AbstractSurrogate]

    @abc.abstractmethod
    def gate_rates(
        self, v: Float[Array, " n"]
    ) -> tuple[tuple[Float[Array, " n"], ...], tuple[Float[Array, " n"], ...]]:
        """`(alphas, betas)` [1/ms] of the dynamic gates at `v` [mV], temperature factor
        included, in the order of the State's gate fields."""

    @abc.abstractmethod
    def open_fractions(
        self, v: Float[Array, " n"], gates: _Gates
    ) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
        """Open fractions [1] of the sodium and potassium channels ($m^3h$, $n^4$)."""

    @abc.abstractmethod
    def max_dt(self) -> ScalarLike:
        """The largest step [ms] that `check` accepts with this model's integrator (a
        traced scalar when the temperature factor is traced)."""

    @abc.abstractmethod
    def _gates_of(self, state: _State) -> _Gates: ...

    @abc.abstractmethod
    def _state_of(self, v: Float[Array, " n"], gates: _Gates) -> _State: ...

    @classmethod
    def from_densities(cls, area: float = DEFAULT_AREA, **kwargs: Any):
        """Build the model from membrane densities over an area `area` [µm²].

        `c_m` is given in [µF/cm²] and `g_na`, `g_k`, `g_l` in [mS/cm²]; those left out
        take the model's default densities. Other keyword arguments (potentials,
        integrator, ...) are passed on unchanged. A current density of 1 µA/cm² is
        `area * 1e-2` pA on this model.
        """
        if not (np.isfinite(area) and area > 0):
            raise ValueError(f"area [µm²] must lie in (0, inf), got {area!r}.")
        scale = area * _PER_DENSITY
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        for name in ("c_m", "g_na", "g_k", "g_l"):
            density = kwargs.get(name, defaults[name] / (DEFAULT_AREA * _PER_DENSITY))
            kwargs[name] = jnp.asarray(density) * scale
        return cls(**kwargs)

    def ionic_conductance(
        self, v: Float[Array, " n"], gates: _Gates
    ) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
        r"""`(g, g_e)`: the total ionic conductance $\sum_k g_k$ [nS] and
        $\sum_k g_k E_k$ [pA], so that the ionic current is $g_e - g\,v$ [pA]."""
        na_open, k_open = self.open_fractions(v, gates)
        g_na = self.g_na * na_open
        g_k = self.g_k * k_open
        g = g_na + g_k + self.g_l
        g_e = g_na * self.e_na + g_k * self.e_k + self.g_l * self.e_l
        return g, g_e

    def vector_field(
        self, v: Float[Array, " n"], gates: _Gates, drive: Drive
    ) -> tuple[Float[Array, " n"], _Gates]:
        """`(dv/dt [mV/ms], dx/dt [1/ms] for each gate)` under `drive`."""
        alphas, betas = self.gate_rates(v)
        g, g_e = self.ionic_conductance(v, gates)
        dv = (g_e - g * v + drive.current(v)) / self.c_m  # [pA]/[pF] = [mV/ms]
        dx = tuple(a * (1.0 - x) - b * x for x, a, b in zip(gates, alphas, betas))
        return dv, dx

    def time_derivative(self, state: _State, drive: Drive) -> _State:
        """The time derivative of `state` under `drive`, as a State: $dv/dt$ [mV/ms] and
        $dx/dt$ [1/ms] per gate. The continuous-time model that `neurojax.ode.solve`
        integrates; a delta-synapse charge (`drive.q`, `drive.qg`) is an impulse, not
        part of the vector field."""
        v = state.v  # pyright: ignore[reportAttributeAccessIssue]
        dv, dx = self.vector_field(v, self._gates_of(state), drive)
        return self._state_of(dv, dx)

    def steady_gates(self, v: Float[Array, " n"]) -> _Gates:
        r"""The gates at their steady state $\alpha/(\alpha+\beta)$ at `v` [mV]."""
        alphas, betas = self.gate_rates(v)
        return tuple(a / (a + b) for a, b in zip(alphas, betas))

    def steady_state_current(self, v: Float[Array, " n"]) -> Float[Array, " n"]:
        """Ionic current [pA] at `v` [mV] with every gate at its steady state."""
        g, g_e = self.ionic_conductance(v, self.steady_gates(v))
        return g_e - g * v

    def resting_potential(self, n: int) -> Float[Array, " n"]:
        """The potential [mV] where `steady_state_current` vanishes, by Newton's method
        started at `e_l` (12 iterations with steps capped at 20 mV; `HodgkinHuxley` and
        `WangBuzsaki` converge to rounding within 7). Differentiable."""
        v0 = jnp.broadcast_to(self.e_l, (n,)).astype(float)
        return lax.fori_loop(0, 12, _newton_step, (self, v0))[1]

    def step(self, state: _State, drive: Drive, dt: ScalarLike):
        v_prev = state.v  # pyright: ignore[reportAttributeAccessIssue]
        v, gates = self.integrator(self, v_prev, self._gates_of(state), drive, dt)
        v = v + drive.charge(v) / self.c_m  # [mV] = [pA·ms] / [pF]
        # Upward crossing, v_prev < v_th <= v; both factors carry surrogate gradients.
        crossed_now = self.surrogate(v - self.v_th)
        spikes = crossed_now * (1.0 - self.surrogate(v_prev - self.v_th))
        return self._state_of(v, gates), spikes

    def check(self, n: int, dt: float) -> None:
        dt = check_dt(dt)
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, jax.Array):
                check_shape(value, n, field.name)
        check_time_constant_vs_dt(
            self.max_dt(),
            dt,
            f"the largest step of {type(self).__name__} with "
            f"{type(self.integrator).__name__}",
        )


def _newton_step(_, carry):
    # Module level with the neuron in the carry, so that eager `init` calls reuse the
    # compiled loop body instead of compiling a fresh closure each time.
    neuron, v = carry
    i, di_dv = jax.jvp(neuron.steady_state_current, (v,), (jnp.ones_like(v),))
    return neuron, v - jnp.clip(i / di_dv, -20.0, 20.0)


def _area_default(density: float) -> float:
    """A default absolute value [pF or nS] from a density [µF/cm² or mS/cm²]."""
    return density * DEFAULT_AREA * _PER_DENSITY


def _speedup(phi: Any, reference: float) -> Any:
    """How much faster than at `reference` the kinetics run, `max(phi / reference, 1)`:
    a float, or a traced scalar when `phi` is traced (the step bound is then checked at
    run time, see `neurojax._misc.deferred_checks`)."""
    if is_concrete(phi):
        return max(float(np.max(np.asarray(phi))) / reference, 1.0)
    return jnp.maximum(jnp.max(phi) / reference, 1.0)


def _bound(
    integrator: AbstractHHIntegrator, exponential_euler: float, rk4: float
) -> float:
    """A model's largest step [ms] for its integrator."""
    return rk4 if isinstance(integrator, RK4) else exponential_euler


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------


class HodgkinHuxleyState(eqx.Module):
    v: Float[Array, " n"]  # membrane potential [mV]
    m: Float[Array, " n"]  # sodium activation [1]
    h: Float[Array, " n"]  # sodium inactivation [1]
    n: Float[Array, " n"]  # potassium activation [1]


class HodgkinHuxley(AbstractConductanceNeuron[HodgkinHuxleyState]):
    r"""The Hodgkin & Huxley (1952) squid giant axon, in absolute voltage (rest -65 mV).

    $$C_m \frac{dv}{dt} = -g_{Na} m^3 h (v - E_{Na}) - g_K n^4 (v - E_K)
    - g_L (v - E_L) + I(v),$$
    $$\frac{dx}{dt} = \phi\,[\alpha_x(v)(1-x) - \beta_x(v)x],\quad x \in \{m, h, n\},
    \quad \phi = Q_{10}^{(T - 6.3\,°C)/10},$$

    with the rates of `hh1952_rates`. The defaults are the 1952 densities (1 µF/cm²;
    120, 36, 0.3 mS/cm²; $E_{Na}$ = 50, $E_K$ = -77, $E_L$ = -54.387 mV) over
    `DEFAULT_AREA` = 20 000 µm², i.e. 200 pF, 24 000, 7 200 and 60 nS; use
    `HodgkinHuxley.from_densities(area, ...)` for other areas. 1 µA/cm² is
    `area * 1e-2` pA (200 pA by default).

    `init` returns the resting fixed point (-64.996 mV for the defaults; gates at
    steady state). Integrated with `integrator` (default `ExponentialEuler()`, the
    Brian2/NEURON scheme; `RK4()` for accuracy). A spike is emitted when $v$ crosses
    `v_th` upwards; there is no reset.

    Reference: Hodgkin & Huxley (1952), J Physiol 117:500-544.

    **Arguments:**

    - `c_m`: Membrane capacitance [pF].
    - `g_na`, `g_k`, `g_l`: Maximal sodium, potassium and leak conductances [nS].
    - `e_na`, `e_k`, `e_l`: Reversal potentials [mV].
    - `temperature`: Temperature [°C]; 6.3 reproduces the 1952 rates exactly.
    - `q10`: Temperature coefficient of the gating rates [1].
    - `v_th`: Spike detection threshold [mV].
    - `integrator`: An `AbstractHHIntegrator`.
    - `surrogate`: Spike function and its surrogate gradient.

    Each parameter is a scalar or an array of shape `(n,)`.

    !!! example
        ```python
        hh = nj.neurons.HodgkinHuxley(integrator=nj.neurons.RK4())
        state = hh.init(10)
        i_10 = 10.0 * nj.neurons.hh.DEFAULT_AREA * 1e-2  # 10 µA/cm² in [pA]
        ```
    """

    c_m: PopulationParam = eqx.field(
        converter=positive("c_m", "pF"), default=_area_default(1.0)
    )
    g_na: PopulationParam = eqx.field(
        converter=nonnegative("g_na", "nS"), default=_area_default(120.0)
    )
    g_k: PopulationParam = eqx.field(
        converter=nonnegative("g_k", "nS"), default=_area_default(36.0)
    )
    g_l: PopulationParam = eqx.field(
        converter=positive("g_l", "nS"), default=_area_default(0.3)
    )
    e_na: PopulationParam = eqx.field(converter=finite("e_na", "mV"), default=50.0)
    e_k: PopulationParam = eqx.field(converter=finite("e_k", "mV"), default=-77.0)
    e_l: PopulationParam = eqx.field(converter=finite("e_l", "mV"), default=-54.387)
    temperature: PopulationParam = eqx.field(
        converter=finite("temperature", "°C"), default=HH_REFERENCE_TEMPERATURE
    )
    q10: PopulationParam = eqx.field(converter=positive("q10", ""), default=3.0)
    v_th: PopulationParam = eqx.field(converter=finite("v_th", "mV"), default=0.0)
    integrator: AbstractHHIntegrator = ExponentialEuler()
    surrogate: AbstractSurrogate = FastSigmoid()

    @property
    def phi(self) -> PopulationParam:
        """Temperature factor of the gating rates [1]."""
        return self.q10 ** ((self.temperature - HH_REFERENCE_TEMPERATURE) / 10.0)

    def gate_rates(self, v):
        am, bm, ah, bh, an, bn = hh1952_rates(v)
        phi = self.phi
        return (phi * am, phi * ah, phi * an), (phi * bm, phi * bh, phi * bn)

    def open_fractions(self, v, gates):
        m, h, n = gates
        return m**3 * h, n**4

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> HodgkinHuxleyState:
        v = self.resting_potential(n)
        return self._state_of(v, self.steady_gates(v))

    def max_dt(self) -> ScalarLike:
        """0.1 ms with `ExponentialEuler` and 0.05 ms with `RK4` at 6.3 °C, divided by
        the temperature factor when the kinetics are faster.

        At 0.1 ms exponential Euler fires 4.8 % slower than the converged 68.32 Hz at
        10 µA/cm² (9 % at 0.2 ms; at 0.3 ms repetitive firing at 6.5 µA/cm² is lost).
        RK4 is within 0.02 % at 0.05 ms, stable at 0.07 ms and diverges at 0.1 ms.
        """
        speedup = _speedup(self.phi, 1.0)
        return _bound(self.integrator, 0.1, 0.05) / speedup

    def _gates_of(self, state: HodgkinHuxleyState) -> _Gates:
        return state.m, state.h, state.n

    def _state_of(self, v, gates) -> HodgkinHuxleyState:
        m, h, n = gates
        return HodgkinHuxleyState(v=v, m=m, h=h, n=n)


class WangBuzsakiState(eqx.Module):
    v: Float[Array, " n"]  # membrane potential [mV]
    h: Float[Array, " n"]  # sodium inactivation [1]
    n: Float[Array, " n"]  # potassium activation [1]


class WangBuzsaki(AbstractConductanceNeuron[WangBuzsakiState]):
    r"""The Wang & Buzsáki (1996) fast-spiking hippocampal interneuron.

    $$C_m \frac{dv}{dt} = -g_{Na} m_\infty(v)^3 h (v - E_{Na}) - g_K n^4 (v - E_K)
    - g_L (v - E_L) + I(v),$$
    $$m_\infty = \frac{\alpha_m}{\alpha_m + \beta_m},\qquad
    \frac{dx}{dt} = \phi\,[\alpha_x(1-x) - \beta_x x],\quad x \in \{h, n\},$$

    with the rates of `wang_buzsaki_rates`; sodium activation is instantaneous. The
    defaults are the published densities (1 µF/cm²; 35, 9, 0.1 mS/cm²; $E_{Na}$ = 55,
    $E_K$ = -90, $E_L$ = -65 mV; $\phi$ = 5) over `DEFAULT_AREA` = 20 000 µm².

    `init` returns the resting fixed point (-64.02 mV for the defaults). The default
    integrator is `RK4()`: with `ExponentialEuler`, $m_\infty$ would be frozen at its
    start-of-step value along with the gates, which costs 11-13 % of the firing rate
    at dt = 0.05 ms (Brian2's example avoids exponential Euler for this model too).

    Reference: Wang & Buzsáki (1996), J Neurosci 16:6402-6413.

    **Arguments:**

    - `c_m`: Membrane capacitance [pF].
    - `g_na`, `g_k`, `g_l`: Maximal sodium, potassium and leak conductances [nS].
    - `e_na`, `e_k`, `e_l`: Reversal potentials [mV].
    - `phi`: Temperature factor of the h and n kinetics [1].
    - `v_th`: Spike detection threshold [mV].
    - `integrator`: An `AbstractHHIntegrator`.
    - `surrogate`: Spike function and its surrogate gradient.

    Each parameter is a scalar or an array of shape `(n,)`.

    !!! example
        ```python
        wb = nj.neurons.WangBuzsaki()
        state = wb.init(100)
        drive = nj.Drive.zeros(100)  # at rest; 1 µA/cm² is 200 pA in drive.i
        state, spikes = wb.step(state, drive, 0.05)
        ```
    """

    c_m: PopulationParam = eqx.field(
        converter=positive("c_m", "pF"), default=_area_default(1.0)
    )
    g_na: PopulationParam = eqx.field(
        converter=nonnegative("g_na", "nS"), default=_area_default(35.0)
    )
    g_k: PopulationParam = eqx.field(
        converter=nonnegative("g_k", "nS"), default=_area_default(9.0)
    )
    g_l: PopulationParam = eqx.field(
        converter=positive("g_l", "nS"), default=_area_default(0.1)
    )
    e_na: PopulationParam = eqx.field(converter=finite("e_na", "mV"), default=55.0)
    e_k: PopulationParam = eqx.field(converter=finite("e_k", "mV"), default=-90.0)
    e_l: PopulationParam = eqx.field(converter=finite("e_l", "mV"), default=-65.0)
    phi: PopulationParam = eqx.field(converter=positive("phi", ""), default=5.0)
    v_th: PopulationParam = eqx.field(converter=finite("v_th", "mV"), default=-20.0)
    integrator: AbstractHHIntegrator = RK4()
    surrogate: AbstractSurrogate = FastSigmoid()

    def gate_rates(self, v):
        _, _, ah, bh, an, bn = wang_buzsaki_rates(v)
        return (self.phi * ah, self.phi * an), (self.phi * bh, self.phi * bn)

    def open_fractions(self, v, gates):
        h, n = gates
        am, bm, *_ = wang_buzsaki_rates(v)
        return (am / (am + bm)) ** 3 * h, n**4

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> WangBuzsakiState:
        v = self.resting_potential(n)
        return self._state_of(v, self.steady_gates(v))

    def max_dt(self) -> ScalarLike:
        """0.1 ms with `RK4` and 0.05 ms with `ExponentialEuler` at $\\phi$ = 5,
        shortened in proportion for larger $\\phi$.

        RK4 is within 0.1 % of the converged rates at 0.5-5 µA/cm² at 0.1 ms (and stable
        at 0.2 ms). Freezing $m_\\infty$ over a step is costly: exponential Euler fires
        11-13 % slower at 0.05 ms and 18-23 % slower at 0.1 ms.
        """
        speedup = _speedup(self.phi, 5.0)
        return _bound(self.integrator, 0.05, 0.1) / speedup

    def _gates_of(self, state: WangBuzsakiState) -> _Gates:
        return state.h, state.n

    def _state_of(self, v, gates) -> WangBuzsakiState:
        h, n = gates
        return WangBuzsakiState(v=v, h=h, n=n)


class TraubMilesState(eqx.Module):
    v: Float[Array, " n"]  # membrane potential [mV]
    m: Float[Array, " n"]  # sodium activation [1]
    h: Float[Array, " n"]  # sodium inactivation [1]
    n: Float[Array, " n"]  # potassium (delayed rectifier) activation [1]


class TraubMiles(AbstractConductanceNeuron[TraubMilesState]):
    r"""The Traub & Miles (1991) pyramidal cell as in the COBAHH benchmark (Brette et al.
    2007, benchmark 3; Brian2 `examples/COBAHH.py`; NEST `hh_cond_exp_traub`).

    $$C_m \frac{dv}{dt} = -g_{Na} m^3 h (v - E_{Na}) - g_K n^4 (v - E_K)
    - g_L (v - E_L) + I(v),\qquad
    \frac{dx}{dt} = \alpha_x(1-x) - \beta_x x,$$

    with the rates of `traub_miles_rates` (offset `v_t`). Defaults: area 20 000 µm²,
    1 µF/cm² (200 pF), $g_L$ = 0.05 mS/cm² (10 nS), $g_{Na}$ = 100 mS/cm² (20 µS),
    $g_K$ = 30 mS/cm² (6 µS), $E_L$ = -60, $E_K$ = -90, $E_{Na}$ = 50, $V_T$ = -63 mV,
    and the benchmark's spike detection at -20 mV. The benchmark integrates it with
    exponential Euler at dt = 0.1 ms (the default integrator here).

    **No resting state.** With these parameters the sodium window current near $E_L$
    exceeds the leak, the only equilibrium (-34 mV) is unstable, and without input the
    cell fires by itself at about 13.9 Hz; in the benchmark network inhibition holds it
    down. `init` therefore starts at $v = E_L$ with the gates at their steady state
    there, as the benchmark starts near $E_L$.

    Reference: Traub & Miles (1991), Neuronal Networks of the Hippocampus; Brette et al.
    (2007), J Comput Neurosci 23:349-398.

    **Arguments:**

    - `c_m`: Membrane capacitance [pF].
    - `g_na`, `g_k`, `g_l`: Maximal sodium, potassium and leak conductances [nS].
    - `e_na`, `e_k`, `e_l`: Reversal potentials [mV].
    - `v_t`: Offset of the rate curves [mV].
    - `v_th`: Spike detection threshold [mV].
    - `integrator`: An `AbstractHHIntegrator`.
    - `surrogate`: Spike function and its surrogate gradient.

    Each parameter is a scalar or an array of shape `(n,)`.

    !!! example
        ```python
        cell = nj.neurons.TraubMiles()  # exponential Euler, as in the benchmark
        cell.check(4000, 0.1)
        state = cell.init(4000)
        ```
    """

    c_m: PopulationParam = eqx.field(
        converter=positive("c_m", "pF"), default=_area_default(1.0)
    )
    g_na: PopulationParam = eqx.field(
        converter=nonnegative("g_na", "nS"), default=_area_default(100.0)
    )
    g_k: PopulationParam = eqx.field(
        converter=nonnegative("g_k", "nS"), default=_area_default(30.0)
    )
    g_l: PopulationParam = eqx.field(
        converter=positive("g_l", "nS"), default=_area_default(0.05)
    )
    e_na: PopulationParam = eqx.field(converter=finite("e_na", "mV"), default=50.0)
    e_k: PopulationParam = eqx.field(converter=finite("e_k", "mV"), default=-90.0)
    e_l: PopulationParam = eqx.field(converter=finite("e_l", "mV"), default=-60.0)
    v_t: PopulationParam = eqx.field(converter=finite("v_t", "mV"), default=-63.0)
    v_th: PopulationParam = eqx.field(converter=finite("v_th", "mV"), default=-20.0)
    integrator: AbstractHHIntegrator = ExponentialEuler()
    surrogate: AbstractSurrogate = FastSigmoid()

    def gate_rates(self, v):
        am, bm, ah, bh, an, bn = traub_miles_rates(v, self.v_t)
        return (am, ah, an), (bm, bh, bn)

    def open_fractions(self, v, gates):
        m, h, n = gates
        return m**3 * h, n**4

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> TraubMilesState:
        v = jnp.broadcast_to(self.e_l, (n,)).astype(float)
        return self._state_of(v, self.steady_gates(v))

    def max_dt(self) -> ScalarLike:
        """0.1 ms (the benchmark's step) with `ExponentialEuler`, 0.05 ms with `RK4`.

        At 0.1 ms exponential Euler fires 6-10 % slower than the converged rates at
        0.5-5 µA/cm²; RK4 is within 0.01 % at 0.05 ms, stable at 0.07 ms and diverges
        at 0.1 ms.
        """
        return _bound(self.integrator, 0.1, 0.05)

    def _gates_of(self, state: TraubMilesState) -> _Gates:
        return state.m, state.h, state.n

    def _state_of(self, v, gates) -> TraubMilesState:
        m, h, n = gates
        return TraubMilesState(v=v, m=m, h=h, n=n)
