r"""Izhikevich (2003) simple spiking neurons: `Izhikevich` and its two integrators.

$$\frac{dv}{dt} = 0.04 v^2 + 5 v + 140 - u + I, \qquad \frac{du}{dt} = a (b v - u),
\qquad v \ge v_{peak} \Rightarrow v \leftarrow c,\; u \leftarrow u + d,$$

with $v$ [mV], $t$ [ms] and $u$, $I$ in the paper's units [mV/ms].

**Input mapping.** The library delivers a current [pA] (`neurojax.Drive`); the paper's
$I$ is `drive.current(v) / c_m` with a capacitance-like scale `c_m` [pF] (pA/pF = mV/ms).
With the default `c_m = 1.0` a drive of 10 pA is numerically the paper's $I = 10$.
Delta-synapse charge `drive.charge(v)` [pA·ms] is a jump of `charge / c_m` [mV].

**Integrators** are objects (`integrator=IzhikevichEuler()` or `Izhikevich2003Scheme()`):
forward Euler at the user's step, which converges to the ODE, and the paper's own 1 ms
scheme, which reproduces the published spike trains but not the ODE (REFERENCES.md §2).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._abstract import AbstractNeuron, Drive
from .._custom_types import PopulationParam
from .._misc import check_shape, check_time_constant_vs_dt, finite, positive
from ..surrogate import AbstractSurrogate, FastSigmoid, _reset
from .._misc import check_order


class IzhikevichState(eqx.Module):
    v: Float[Array, " n"]  # membrane potential [mV]
    u: Float[Array, " n"]  # recovery variable [mV/ms]


class AbstractIzhikevichIntegrator(eqx.Module):
    """One step of `Izhikevich` neurons, spike detection and reset included.

    `max_dt` [ms] is the largest step that `check` accepts with this integrator.
    """

    max_dt: eqx.AbstractClassVar[float]

    @abc.abstractmethod
    def __call__(
        self, neuron: "Izhikevich", state: IzhikevichState, drive: Drive, dt: float
    ) -> tuple[IzhikevichState, Float[Array, " n"]]:
        """Advance `state` of `neuron` by `dt` [ms]; returns `(state, spikes)`."""

    def check(self, neuron: "Izhikevich", dt: float) -> None:
        """Raise a `ValueError` if `dt` [ms] is too large for this integrator."""
        if dt > self.max_dt:
            raise ValueError(
                f"dt [ms] = {dt:g} is too large for {type(self).__name__}: dt must lie "
                f"in (0, {self.max_dt:g}]."
            )
        # Explicit in u: forward Euler of du/dt = -a u is monotone only for dt |a| < 1;
        # a tenth of the recovery time scale keeps its error at the percent level.
        check_time_constant_vs_dt(
            1.0 / jnp.abs(neuron.a), dt, "1/|a| (recovery time scale)", factor=0.1
        )


class IzhikevichEuler(AbstractIzhikevichIntegrator):
    r"""Forward Euler at the step `dt`, with reset at the end of the step.

    $$v' = v + \Delta t\, f(v, u, I(v)) + Q(v')/c_m, \qquad
    u' = u + \Delta t\, a (b v - u),$$

    and if $v' \ge v_{peak}$: spike, $v' \leftarrow c$, $u' \leftarrow u' + d$. Both
    equations use the start-of-step values (NEST `izhikevich` with
    `consistent_integration=True`). First order; spike counts over 1 s converge to the
    ODE limit within ±1 at dt ≤ 0.01 ms (REFERENCES.md §2).

    **Overflow.** The quadratic is evaluated only at the start-of-step $v$, which is
    below $v_{peak}$ because any neuron that reached it was reset at the end of the
    previous step; $v^2$ therefore stays bounded. The new $v'$ may overshoot $v_{peak}$
    by any amount (under a huge drive even to `inf`); it is replaced by $c$ in the same
    step and never enters $u$. The only place where the overshoot would be multiplied is
    the delta-conductance charge $q_g v'$: it is evaluated at $\min(v', v_{peak})$, which
    changes nothing for neurons below $v_{peak}$ and keeps $0 \cdot \infty$ out of the
    ones that spike in this step anyway.
    """

    # The largest step Izhikevich's own figure code (figure1.m, 2004) uses with this
    # scheme. Counts are then qualitatively right but not converged (FS fires 131 spikes
    # at 0.1 ms against 137 in the ODE limit); use dt <= 0.01 ms for quantitative work.
    max_dt: ClassVar[float] = 0.5

    def __call__(
        self, neuron: "Izhikevich", state: IzhikevichState, drive: Drive, dt: float
    ) -> tuple[IzhikevichState, Float[Array, " n"]]:
        v, u = state.v, state.u
        dv, du = neuron.vector_field(v, u, drive.current(v) / neuron.c_m)
        v_new = v + dt * dv
        v_new = v_new + drive.charge(jnp.minimum(v_new, neuron.v_peak)) / neuron.c_m
        u_new = u + dt * du
        spikes = neuron.surrogate(v_new - neuron.v_peak)
        v_new = _reset(v_new, spikes, neuron.c, neuron.detach_reset)
        u_new = u_new + neuron.d * spikes
        return IzhikevichState(v=v_new, u=u_new), spikes


class Izhikevich2003Scheme(AbstractIzhikevichIntegrator):
    r"""The numerical scheme of Izhikevich (2003), meant for dt = 1 ms.

    At the start of a step, neurons with $v \ge v_{peak}$ are reset ($v \leftarrow c$,
    $u \leftarrow u + d$); then $v$ is advanced by two Euler half-steps of $\Delta t/2$,
    and $u$ by one Euler step that uses the *new* $v$:

    $$v_{1/2} = v + \tfrac{\Delta t}{2} f(v, u, I), \quad
    v' = v_{1/2} + \tfrac{\Delta t}{2} f(v_{1/2}, u, I), \quad
    u' = u + \Delta t\, a (b v' - u).$$

    This is the paper's MATLAB code and NEST `izhikevich` with
    `consistent_integration=False`. The spike is emitted at the end of the step in which
    $v'$ reaches $v_{peak}$ (as NEST does); the state keeps the overshoot $v'$ until
    the reset at the start of the next step, as in the paper's code, so `state.v` can lie
    above $v_{peak}$ on a spike step. It reproduces the published spike trains; it does
    *not* converge to the ODE (FS fires 63 spikes in 1 s at I = 10 against 137).

    The 1 ms map is ill-conditioned for some cells: the overshoot $v'$ (up to ~1500 mV)
    enters $u$ through $a b v'$, and whether $v$ lands just below or above $v_{peak}$
    decides the next overshoot. At I = 10 a perturbation of $v_0$ by 1e-10 mV moves the
    1 s count of FS over 59–72 and of LTS over 40–50 (RS, IB, CH stay within ±1), so the
    published 63 and 44 are reproduced exactly only with the same rounding: op-by-op
    evaluation gives them, while a jitted run, where XLA fuses multiply-adds, is
    one more rounding-level perturbation.

    Delta-synapse charge $Q$ [pA·ms] is spread as a current $Q/\Delta t$ over the step,
    which is how the paper's network adds a synaptic weight to $I$ for one step.

    **Overflow.** The reset at the start of the step brings $v$ below $v_{peak}$ before
    the first half-step; the second half-step and the $u$ update do see the overshoot
    $v_{1/2}$ and $v'$ (a few hundred to a few thousand mV for $I$ of order 10), exactly
    as published. Nothing is clipped; with a drive of order $10^3$ mV/ms or more the
    scheme itself diverges, which a finer step with `IzhikevichEuler` avoids.
    """

    # The published step. Larger half-steps put the upstroke's overshoot, and with it
    # b v' in the u update, out of all proportion.
    max_dt: ClassVar[float] = 1.0

    def __call__(
        self, neuron: "Izhikevich", state: IzhikevichState, drive: Drive, dt: float
    ) -> tuple[IzhikevichState, Float[Array, " n"]]:
        # The spike emitted at the end of the previous step; the same surrogate value, so
        # the gradient of the d increment is the one of that spike.
        spiked = neuron.surrogate(state.v - neuron.v_peak)
        v = _reset(state.v, spiked, neuron.c, neuron.detach_reset)
        u = state.u + neuron.d * spiked
        for _ in range(2):
            i = (drive.current(v) + drive.charge(v) / dt) / neuron.c_m
            dv, _ = neuron.vector_field(v, u, i)
            v = v + 0.5 * dt * dv
        _, du = neuron.vector_field(v, u, jnp.zeros_like(v))
        u = u + dt * du
        spikes = neuron.surrogate(v - neuron.v_peak)
        return IzhikevichState(v=v, u=u), spikes


# name: (a [1/ms], b [1/ms], c [mV], d [mV/ms], v0 [mV])
_PRESETS: dict[str, tuple[float, float, float, float, float]] = {
    # Izhikevich (2003) Fig. 2; v0 = -65 as in the paper's network code.
    "RS": (0.02, 0.2, -65.0, 8.0, -65.0),
    "IB": (0.02, 0.2, -55.0, 4.0, -65.0),
    "CH": (0.02, 0.2, -50.0, 2.0, -65.0),
    "FS": (0.1, 0.2, -65.0, 2.0, -65.0),
    "LTS": (0.02, 0.25, -65.0, 2.0, -65.0),
    "TC": (0.02, 0.25, -65.0, 0.05, -65.0),
    "RZ": (0.1, 0.26, -65.0, 2.0, -65.0),
    # Izhikevich (2004) Fig. 1, values and v0 from the author's figure1.m.
    "tonic_spiking": (0.02, 0.2, -65.0, 6.0, -70.0),
    "phasic_spiking": (0.02, 0.25, -65.0, 6.0, -64.0),
    "tonic_bursting": (0.02, 0.2, -50.0, 2.0, -70.0),
    "phasic_bursting": (0.02, 0.25, -55.0, 0.05, -64.0),
    "mixed_mode": (0.02, 0.2, -55.0, 4.0, -70.0),
    "spike_frequency_adaptation": (0.01, 0.2, -65.0, 8.0, -70.0),
    "class_2": (0.2, 0.26, -65.0, 0.0, -64.0),
    "spike_latency": (0.02, 0.2, -65.0, 6.0, -70.0),
    "subthreshold_oscillations": (0.05, 0.26, -60.0, 0.0, -62.0),
    "resonator": (0.1, 0.26, -60.0, -1.0, -62.0),
    "rebound_spike": (0.03, 0.25, -60.0, 4.0, -64.0),
    "rebound_burst": (0.03, 0.25, -52.0, 0.0, -64.0),
    "threshold_variability": (0.03, 0.25, -60.0, 4.0, -64.0),
    "bistability": (0.1, 0.26, -60.0, 0.0, -61.0),
    "inhibition_induced_spiking": (-0.02, -1.0, -60.0, 8.0, -63.8),
    # d = 0 from the author's izh.m table: with figure1.m's d = -2 the bursts end only
    # under that script's 0.5 ms semi-implicit step, not in the ODE limit.
    "inhibition_induced_bursting": (-0.026, -1.0, -45.0, 0.0, -63.8),
}

_PRESET_LOOKUP = {name.lower(): name for name in _PRESETS}


class Izhikevich(AbstractNeuron[IzhikevichState]):
    r"""Izhikevich (2003) simple model of spiking neurons.

    $$\frac{dv}{dt} = 0.04 v^2 + 5 v + 140 - u + \frac{I(v)}{c_m}, \qquad
    \frac{du}{dt} = a (b v - u),$$

    and when $v \ge v_{peak}$: spike, $v \leftarrow c$, $u \leftarrow u + d$. Here
    $I(v)$ = `drive.current(v)` [pA] and `c_m` [pF] maps it to the paper's input in
    [mV/ms]; with the default `c_m = 1` a drive of 10 pA is the paper's $I = 10$. The
    coefficients 0.04 [1/(mV·ms)], 5 [1/ms] and 140 [mV/ms] are fixed, as in the paper.

    Integrated by `integrator`: `IzhikevichEuler()` (default; forward Euler, converges
    to the ODE) or `Izhikevich2003Scheme()` (the paper's 1 ms scheme). `init` starts at
    $v = v_0$, $u = b v_0$, which is not a fixed point (the paper's convention).

    **Arguments:**

    - `a`: Recovery rate [1/ms].
    - `b`: Sensitivity of $u$ to $v$ [1/ms] ($u$ is in [mV/ms]).
    - `c`: Reset potential [mV], below `v_peak`.
    - `d`: Increment of $u$ at a spike [mV/ms].
    - `v_peak`: Spike cut-off [mV] (30 in the paper).
    - `v0`: Initial membrane potential [mV], below `v_peak`.
    - `c_m`: Scale from the library's current to the paper's input [pF].
    - `integrator`: An `AbstractIzhikevichIntegrator`.
    - `surrogate`: Spike function and its surrogate gradient.
    - `detach_reset`: If `True` (default), no gradient flows through the spike into the
      reset $v \leftarrow c$ (`stop_gradient(spikes)`, as snnTorch, Norse and SpyTorch
      do; harmless and stabilising per Zenke & Vogels 2021); if `False`, the reset is
      differentiated as $v(1-s) + c\,s$. The forward pass is identical. The increment
      $u \leftarrow u + d\,s$ always carries the spike's surrogate gradient.

    Each of `a`, `b`, `c`, `d`, `v_peak`, `v0`, `c_m` is a scalar or has shape `(n,)`.
    Defaults are the regular-spiking (RS) cell.

    **Presets** (`Izhikevich.preset(name, **overrides)`): $a, b, c, d, v_0$; "I" is the
    drive [mV/ms] the source used to show the behaviour.

    | name | a | b | c | d | v0 | I | source |
    |---|---|---|---|---|---|---|---|
    | `RS` regular spiking | 0.02 | 0.2 | −65 | 8 | −65 | 10 | 2003 Fig. 2 |
    | `IB` intrinsically bursting | 0.02 | 0.2 | −55 | 4 | −65 | 10 | 2003 Fig. 2 |
    | `CH` chattering | 0.02 | 0.2 | −50 | 2 | −65 | 10 | 2003 Fig. 2 |
    | `FS` fast spiking | 0.1 | 0.2 | −65 | 2 | −65 | 10 | 2003 Fig. 2 |
    | `LTS` low-threshold spiking | 0.02 | 0.25 | −65 | 2 | −65 | 10 | 2003 Fig. 2 |
    | `TC` thalamo-cortical | 0.02 | 0.25 | −65 | 0.05 | −65 | 1.5; −25 → 0 (rebound) | 2003 Fig. 2 |
    | `RZ` resonator | 0.1 | 0.26 | −65 | 2 | −65 | pulses | 2003 Fig. 2 |
    | `tonic_spiking` | 0.02 | 0.2 | −65 | 6 | −70 | 14 | 2004 (A) |
    | `phasic_spiking` | 0.02 | 0.25 | −65 | 6 | −64 | 0.5 | 2004 (B) |
    | `tonic_bursting` | 0.02 | 0.2 | −50 | 2 | −70 | 15 | 2004 (C) |
    | `phasic_bursting` | 0.02 | 0.25 | −55 | 0.05 | −64 | 0.6 | 2004 (D) |
    | `mixed_mode` | 0.02 | 0.2 | −55 | 4 | −70 | 10 | 2004 (E) |
    | `spike_frequency_adaptation` | 0.01 | 0.2 | −65 | 8 | −70 | 30 | 2004 (F) |
    | `class_2` | 0.2 | 0.26 | −65 | 0 | −64 | ramp −0.5 + 0.015 t | 2004 (H) |
    | `spike_latency` | 0.02 | 0.2 | −65 | 6 | −70 | 7.04 for 3 ms | 2004 (I) |
    | `subthreshold_oscillations` | 0.05 | 0.26 | −60 | 0 | −62 | 2 for 5 ms | 2004 (J) |
    | `resonator` | 0.1 | 0.26 | −60 | −1 | −62 | 0.65 pulse pairs | 2004 (K) |
    | `rebound_spike` | 0.03 | 0.25 | −60 | 4 | −64 | −15 for 5 ms | 2004 (M) |
    | `rebound_burst` | 0.03 | 0.25 | −52 | 0 | −64 | −15 for 5 ms | 2004 (N) |
    | `threshold_variability` | 0.03 | 0.25 | −60 | 4 | −64 | 1, −6, 1 pulses | 2004 (O) |
    | `bistability` | 0.1 | 0.26 | −60 | 0 | −61 | 0.24 + 1 pulses | 2004 (P) |
    | `inhibition_induced_spiking` | −0.02 | −1 | −60 | 8 | −63.8 | 80 → 75 | 2004 (S) |
    | `inhibition_induced_bursting` | −0.026 | −1 | −45 | 0 | −63.8 | 80 → 75 | 2004 (T), `izh.m` |

    Sources: "2003 Fig. 2" is Izhikevich (2003), IEEE Trans. Neural Netw. 14:1569, as
    reproduced in REFERENCES.md §2 and in the author's `figure1.m`; "2004 (X)" is panel
    X of Fig. 1 of Izhikevich (2004), IEEE Trans. Neural Netw. 15:1063, with the values,
    v0 and input of the author's `figure1.m` (the script that draws both figures). The
    author's parameter table `izh.m` (reproduced e.g. in ModelDB's `izhi2003a.mod`)
    agrees except for two rows: for bistability it gives (1, 1.5, −60, 0) with I = −65
    (the values above are the figure's), and for inhibition-induced bursting d = 0
    where `figure1.m` has d = −2; d = 0 is used because with d = −2 the bursts end only
    under `figure1.m`'s own scheme (dt = 0.5 ms, $u$ updated with the new $v$) and run
    away in the ODE limit. `figure1.m` integrates the 2004 panels with forward Euler at
    0.1–0.5 ms and $u$ updated with the new $v$; the behaviours named above were checked
    in the ODE limit (`IzhikevichEuler`, dt = 0.01 ms) by the tests, except that
    bistability's switch-off pulse is timed for `figure1.m`'s scheme. Left out: class 1
    excitability (G) and integrator (L), which `figure1.m` runs with a modified
    $0.04 v^2 + 4.1 v + 108$; accommodation (R), run there with
    $du/dt = a\,b\,(v + 65)$; and the depolarising after-potential (Q; 1, 0.2, −60,
    −21), whose single spike needs `figure1.m`'s 0.1 ms semi-implicit step (in the ODE
    limit the same values fire repetitively). Names are case-insensitive.

    !!! example
        ```python
        fs = nj.neurons.Izhikevich.preset("FS")
        paper = nj.neurons.Izhikevich.preset("RS", integrator=Izhikevich2003Scheme())
        ```
    """

    a: PopulationParam = eqx.field(converter=finite("a", "1/ms"), default=0.02)
    b: PopulationParam = eqx.field(converter=finite("b", "1/ms"), default=0.2)
    c: PopulationParam = eqx.field(converter=finite("c", "mV"), default=-65.0)
    d: PopulationParam = eqx.field(converter=finite("d", "mV/ms"), default=8.0)
    v_peak: PopulationParam = eqx.field(converter=finite("v_peak", "mV"), default=30.0)
    v0: PopulationParam = eqx.field(converter=finite("v0", "mV"), default=-65.0)
    c_m: PopulationParam = eqx.field(converter=positive("c_m", "pF"), default=1.0)
    integrator: AbstractIzhikevichIntegrator = IzhikevichEuler()
    surrogate: AbstractSurrogate = FastSigmoid()
    detach_reset: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        check_order(self.c, self.v_peak, "c", "v_peak")
        check_order(self.v0, self.v_peak, "v0", "v_peak")

    @classmethod
    def preset_names(cls) -> tuple[str, ...]:
        """The names accepted by `preset`."""
        return tuple(_PRESETS)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "Izhikevich":
        """The named cell type of the table above; `overrides` replace any field."""
        key = _PRESET_LOOKUP.get(name.lower()) if isinstance(name, str) else None
        if key is None:
            raise ValueError(
                f"Unknown Izhikevich preset {name!r}; valid names are "
                f"{', '.join(_PRESETS)}."
            )
        a, b, c, d, v0 = _PRESETS[key]
        kwargs: dict[str, Any] = dict(a=a, b=b, c=c, d=d, v0=v0)
        kwargs.update(overrides)
        return cls(**kwargs)

    def vector_field(
        self, v: Float[Array, "*n"], u: Float[Array, "*n"], i: Float[Array, "*n"]
    ) -> tuple[Float[Array, "*n"], Float[Array, "*n"]]:
        """$(dv/dt, du/dt)$ [mV/ms, mV/ms²] at `v` [mV], `u` [mV/ms] and the paper's
        input `i` [mV/ms] (already divided by `c_m`)."""
        dv = 0.04 * v * v + 5.0 * v + 140.0 - u + i
        du = self.a * (self.b * v - u)
        return dv, du

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> IzhikevichState:
        v = jnp.broadcast_to(self.v0, (n,)).astype(float)
        u = jnp.broadcast_to(self.b * self.v0, (n,)).astype(v.dtype)
        return IzhikevichState(v=v, u=u)

    def step(
        self, state: IzhikevichState, drive: Drive, dt: float
    ) -> tuple[IzhikevichState, Float[Array, " n"]]:
        return self.integrator(self, state, drive, dt)

    def check(self, n: int, dt: float) -> None:
        for name in ("a", "b", "c", "d", "v_peak", "v0", "c_m"):
            check_shape(getattr(self, name), n, name)
        self.integrator.check(self, dt)
