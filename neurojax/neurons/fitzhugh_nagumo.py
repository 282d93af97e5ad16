r"""FitzHugh-Nagumo relaxation oscillators: `FitzHughNagumo`.

$$\frac{dv}{ds} = v - \frac{v^3}{3} - w + I, \qquad \frac{dw}{ds} = \frac{v + a - b w}{\tau},$$

in FitzHugh's dimensionless variables, with model time $s = t / $ `time_scale`
($t$ [ms]). The model is a continuous oscillator; as a spiking population it emits a
float 0/1 event when $v$ crosses `v_th` upwards.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._abstract import AbstractNeuron, Drive
from .._custom_types import PopulationParam
from .._misc import check_shape, check_time_constant_vs_dt, finite, param, positive
from ..surrogate import AbstractSurrogate, FastSigmoid


class FitzHughNagumoState(eqx.Module):
    v: Float[Array, " n"]  # fast (voltage-like) variable [1]
    w: Float[Array, " n"]  # slow recovery variable [1]


class FitzHughNagumo(AbstractNeuron[FitzHughNagumoState]):
    r"""FitzHugh-Nagumo neurons (FitzHugh 1961; Nagumo, Arimoto & Yoshizawa 1962).

    $$\frac{dv}{ds} = v - \frac{v^3}{3} - w + I, \qquad
    \frac{dw}{ds} = \frac{v + a - b\,w}{\tau}, \qquad s = t / T,$$

    where $v$, $w$, $I$ and the model time $s$ are dimensionless and $T$ = `time_scale`
    [ms per model time unit] maps them to the library's step `dt` [ms]: one step
    advances the model by $\Delta s = $ `dt / time_scale`. The input is
    $I$ = `drive.current(v) / c_m`, read numerically (the drive's `v` is this model's
    dimensionless $v$, so conductance input has no physical meaning here; use
    current input). A delta-synapse charge $Q$ [pA·ms] is a jump
    $\Delta v = Q / (c_m T)$, the same area as a current $Q/\Delta t$ held over a step.
    With the defaults (`time_scale = 1`, `c_m = 1`) a drive of 0.5 pA is $I = 0.5$ and
    a step of 0.1 ms is 0.1 model time units.

    Integrated with the classical fourth-order Runge-Kutta method, the input
    re-evaluated at each stage (its voltage dependence $i - g v$ is kept). The model
    time derivative is the pure method `vector_field(v, w, i)`, so an adaptive solver
    can reuse it. `init` returns the fixed point at $I = 0$, which is unique for
    $0 \le b < 1$ (the cubic nullcline then meets the line $w = (v + a)/b$ once).

    With $a = 0.7$, $b = 0.8$, $\tau = 12.5$ (the defaults) the rest state at $I = 0$
    is $(v^*, w^*) = (-1.199408, -0.624260)$; it loses stability in a subcritical Hopf
    bifurcation at $I = 0.331281$, beyond which the neuron fires on a relaxation cycle
    of period 39.48 model time units at $I = 0.5$ (REFERENCES.md §4).

    Output: a float 0/1 spike in the step in which $v$ goes from below `v_th` to at or
    above it; its surrogate derivative flows through the end-of-step $v$.

    **Arguments:**

    - `a`: Offset of the recovery nullcline [1].
    - `b`: Recovery self-coupling [1], in [0, 1).
    - `tau`: Recovery time constant [model time units].
    - `time_scale`: Duration of one model time unit [ms].
    - `c_m`: Scale from the library's current to the model's input $I$ [pF].
    - `v_th`: Event threshold on $v$ [1].
    - `surrogate`: Spike function and its surrogate gradient.

    Each parameter is a scalar or an array of shape `(n,)`.

    !!! example
        ```python
        fhn = nj.neurons.FitzHughNagumo(time_scale=1.0)   # 1 model unit = 1 ms
        state = fhn.init(10)
        i, z = jnp.full((10,), 0.5), jnp.zeros(10)   # 0.5 pA is I = 0.5 with c_m = 1
        state, spikes = fhn.step(state, nj.Drive(i, z, z, z), 0.1)
        ```
    """

    a: PopulationParam = eqx.field(converter=finite("a", ""), default=0.7)
    b: PopulationParam = eqx.field(
        converter=param("b", "", low=0.0, high=1.0, high_open=True), default=0.8
    )
    tau: PopulationParam = eqx.field(
        converter=positive("tau", "model time units"), default=12.5
    )
    time_scale: PopulationParam = eqx.field(
        converter=positive("time_scale", "ms"), default=1.0
    )
    c_m: PopulationParam = eqx.field(converter=positive("c_m", "pF"), default=1.0)
    v_th: PopulationParam = eqx.field(converter=finite("v_th", ""), default=1.0)
    surrogate: AbstractSurrogate = FastSigmoid()

    def vector_field(
        self, v: Float[Array, "*n"], w: Float[Array, "*n"], i: Float[Array, "*n"]
    ) -> tuple[Float[Array, "*n"], Float[Array, "*n"]]:
        """$(dv/ds, dw/ds)$ per model time unit at `v`, `w` and input `i` (all [1])."""
        dv = v - v * v * v / 3.0 + i - w
        dw = (v + self.a - self.b * w) / self.tau
        return dv, dw

    def time_derivative(
        self, state: FitzHughNagumoState, drive: Drive
    ) -> FitzHughNagumoState:
        """$(dv/dt, dw/dt)$ [1/ms] under `drive`, as a State: `vector_field` at
        $I$ = `drive.current(v) / c_m`, divided by `time_scale` [ms per model time unit].
        The continuous-time model that `neurojax.ode.solve` integrates; a delta-synapse
        charge (`drive.q`, `drive.qg`) is an impulse, not part of the vector field."""
        dv, dw = self.vector_field(state.v, state.w, drive.current(state.v) / self.c_m)
        return FitzHughNagumoState(v=dv / self.time_scale, w=dw / self.time_scale)

    def resting_state(self) -> tuple[Float[Array, "*#n"], Float[Array, "*#n"]]:
        r"""The fixed point $(v^*, w^*)$ at $I = 0$.

        $v^*$ is the real root of $v^3 + p v + q = 0$ with $p = 3(1 - b)/b > 0$ and
        $q = 3a/b$ (Cardano, one real root since $p > 0$), written as
        $r - p/(3r)$ with $r = \sqrt[3]{-q/2 - \operatorname{sign}(q)\sqrt{q^2/4 + p^3/27}}$
        so that no two terms of similar size cancel. For $b = 0$, $v^* = -a$.
        Then $w^* = v^* - v^{*3}/3$.
        """
        b_pos = self.b > 0
        b_safe = jnp.where(b_pos, self.b, 1.0)  # keeps b = 0 out of the divisions
        p = 3.0 * (1.0 - b_safe) / b_safe
        q = 3.0 * self.a / b_safe
        # sign(0) would give r = 0 and divide by zero below; a = 0 takes the + branch.
        sign_q = jnp.where(q >= 0, 1.0, -1.0)
        r = jnp.cbrt(-0.5 * q - sign_q * jnp.sqrt(0.25 * q * q + p * p * p / 27.0))
        v = jnp.where(b_pos, r - p / (3.0 * r), -self.a)
        return v, v - v * v * v / 3.0

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> FitzHughNagumoState:
        v, w = self.resting_state()
        v = jnp.broadcast_to(v, (n,)).astype(float)
        return FitzHughNagumoState(v=v, w=jnp.broadcast_to(w, (n,)).astype(v.dtype))

    def step(
        self, state: FitzHughNagumoState, drive: Drive, dt: float
    ) -> tuple[FitzHughNagumoState, Float[Array, " n"]]:
        h = dt / self.time_scale  # [model time units] = [ms] / [ms per unit]

        def f(v, w):
            return self.vector_field(v, w, drive.current(v) / self.c_m)

        v0, w0 = state.v, state.w
        k1v, k1w = f(v0, w0)
        k2v, k2w = f(v0 + 0.5 * h * k1v, w0 + 0.5 * h * k1w)
        k3v, k3w = f(v0 + 0.5 * h * k2v, w0 + 0.5 * h * k2w)
        k4v, k4w = f(v0 + h * k3v, w0 + h * k3w)
        v = v0 + h / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v)
        w = w0 + h / 6.0 * (k1w + 2.0 * k2w + 2.0 * k3w + k4w)
        v = v + drive.charge(v) / (self.c_m * self.time_scale)
        # An upward crossing: only neurons that started below threshold can fire, so a
        # neuron resting above v_th (strong input) does not emit an event every step.
        spikes = jnp.where(v0 < self.v_th, self.surrogate(v - self.v_th), 0.0)
        return FitzHughNagumoState(v=v, w=w), spikes

    def voltage(self, state: FitzHughNagumoState) -> None:
        """None: $v$ is dimensionless, not a membrane potential in mV."""
        return None

    def check(self, n: int, dt: float) -> None:
        for name in ("a", "b", "tau", "time_scale", "c_m", "v_th"):
            check_shape(getattr(self, name), n, name)
        # RK4 is stable for h |lambda| up to 2.79 on the negative real axis. On the
        # relaxation cycle |v| <= 2.1, so the fast rate |1 - v^2| is at most 3.4 and
        # h <= 0.82 would do; h <= 0.5 leaves room for inputs that push |v| further.
        check_time_constant_vs_dt(self.time_scale, dt, "time_scale", factor=0.5)
        # The recovery equation's rates are of order 1/tau per model unit (b/tau for its
        # self-decay, 1/tau for its drive by v): the step must resolve tau as well.
        check_time_constant_vs_dt(
            self.time_scale * self.tau, dt, "time_scale * tau", factor=0.5
        )
