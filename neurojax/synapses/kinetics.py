r"""Synaptic kinetics: how a train of weighted arrivals becomes a synaptic variable.

Every kinetics is linear, so a projection filters the *summed* weighted arrivals of each
postsynaptic neuron rather than each synapse (as NEST and Brian2 do for linear
synapses). Protocol:

```python
state = kinetics.init(n)
state, s = kinetics.step(state, x, dt)  # x: weighted arrivals this step; s: value used this step
```

`s` is in the units of the projection's weight: [pA] for a `Current` receptor, [nS]
for a `Conductance` receptor; for `Delta` it is a charge [pA·ms] or conductance·time
[nS·ms] delivered at once. All kernels are normalised so their **peak equals the
weight**, and all are propagated exactly between steps.

**Graded input.** A rate population's output $r$ is a level, not a train of events.
Sent through `Exponential`, `Alpha` or `DualExponential` kinetics, the arrivals
$W r$ of each step are scaled by `graded_gain(dt)`, the inverse of the kernel's
discrete sum, so that a constant rate settles at $s = W r$ whatever `dt` (for
`Exponential` this is the exact solution of $\tau \dot s = -s + W r$ with $r$ held
over each step). Without it every step would add $W r$ and the level would grow as
$\tau/dt$. `Delta` passes the level $W r$ through unchanged (gain 1).

**Presynaptic kinetics.** `Saturating` (the NMDA gating of Wang 2002) is not linear in
the spike train, so it cannot filter summed arrivals. It is kept once per *presynaptic*
neuron (`presynaptic = True`): the network steps it with the presynaptic population's
spikes (`state = kinetics.init(n_pre)`; `state, s = kinetics.step(state, spikes, dt)`),
and the graded signal $s_j$ travels through the projection's weights (dense or sparse,
with its delays) to become the conductance $\sum_j w_{ij} s_j$ held over the step in
which it arrives. State stays O(N_pre); propagation touches every synapse of a neuron
with $s_j \neq 0$ each step.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._custom_types import PopulationParam
from .._misc import check_time_constant_vs_dt, defer, is_concrete, positive


class AbstractKinetics(eqx.Module):
    """Linear synaptic kinetics driven by weighted arrivals.

    `instantaneous = True` marks kinetics whose output is a charge delivered at once
    (a jump of the membrane potential) rather than a current held over the step.
    """

    instantaneous: ClassVar[bool] = False
    # True: one state per presynaptic neuron, stepped with its spikes; the output is a
    # graded signal propagated through the weights (module docstring).
    presynaptic: ClassVar[bool] = False

    @abc.abstractmethod
    def init(self, n: int, initial: Float[Array, " n"] | None = None):
        """Zero state for `n` postsynaptic neurons, or the state whose output is
        `initial` (used to start a network with random conductances)."""

    @abc.abstractmethod
    def step(self, state, x: Float[Array, " n"], dt: float):
        """Add the arrivals `x`, return `(state, s)` with `s` the value for this step."""

    def check(self, dt: float) -> None:
        """Raise a `ValueError` if `dt` [ms] is too large for these kinetics."""

    def graded_gain(self, dt: float) -> PopulationParam:
        """Factor applied to graded (rate) arrivals so that a constant input level $W r$
        gives $s = W r$ at steady state, for any `dt` [ms]: the inverse of the sum of
        the kernel's outputs after a unit arrival (module docstring). 1 for
        instantaneous kinetics; kinetics with a time course must override it."""
        if self.instantaneous:
            return jnp.asarray(1.0)
        raise NotImplementedError(
            f"{type(self).__name__} kinetics do not define graded_gain(dt), which graded "
            "(rate) presynaptic populations need; define it as the inverse of the sum of "
            "the kernel's outputs after a unit arrival."
        )


class DeltaState(eqx.Module):
    pass


class Delta(AbstractKinetics):
    r"""Instantaneous synapses: each arrival delivers its weight as a charge at once,
    $s(t) = w\,\delta(t)$. With a `Current` receptor the weight is a charge [pA·ms] and
    the postsynaptic potential jumps by $w / C_m$ [mV]; with a `Conductance` receptor it
    is a conductance·time [nS·ms] and the jump is $w (E - v)/C_m$.
    """

    instantaneous: ClassVar[bool] = True

    def init(self, n: int, initial: Float[Array, " n"] | None = None) -> DeltaState:
        if initial is not None:
            raise ValueError("Delta synapses hold no state, so `initial` must be None.")
        return DeltaState()

    def step(self, state: DeltaState, x: Float[Array, " n"], dt: float):
        return state, x


class ExponentialState(eqx.Module):
    s: Float[Array, " n"]  # synaptic variable at the start of the next step


class Exponential(AbstractKinetics):
    r"""Exponentially decaying synapses (Destexhe, Mainen & Sejnowski 1994 first-order):
    $s(t) = w\,e^{-t/\tau}$. An arrival raises $s$ by $w$ in the step it arrives; $s$
    then decays by the exact factor $e^{-dt/\tau}$ per step.

    **Arguments:**

    - `tau`: Decay time constant [ms].
    """

    tau: PopulationParam = eqx.field(converter=positive("tau", "ms"), default=5.0)

    def init(self, n: int, initial: Float[Array, " n"] | None = None) -> ExponentialState:
        s = jnp.zeros((n,), float) if initial is None else jnp.asarray(initial, float)
        return ExponentialState(s=s)

    def step(self, state: ExponentialState, x: Float[Array, " n"], dt: float):
        s = state.s + x
        return ExponentialState(s=s * jnp.exp(-dt / self.tau)), s

    def graded_gain(self, dt: float) -> PopulationParam:
        # Outputs 1, q, q^2, ... after a unit arrival (q = e^{-dt/tau}): sum 1 / (1 - q).
        return -jnp.expm1(-dt / self.tau)

    def check(self, dt: float) -> None:
        check_time_constant_vs_dt(self.tau, dt, "synapse tau")

    def psp_peak(self, neuron) -> PopulationParam:
        r"""Peak postsynaptic potential [mV] per unit weight [pA] of this synapse, with a
        `Current` receptor, onto a `LIF` neuron at rest (divide a PSP amplitude [mV]
        by it to get the weight [pA]).

        The current $w e^{-t/\tau_s}$ into $C_m \dot v = -g_L v + I$ gives
        $v(t) = \frac{w}{C_m}\frac{\tau_m\tau_s}{\tau_m-\tau_s}
        (e^{-t/\tau_m} - e^{-t/\tau_s})$, $\tau_m = C_m/g_L$, which peaks at
        $t^* = \frac{\tau_m\tau_s}{\tau_m-\tau_s}\ln\frac{\tau_m}{\tau_s}$ with

        $$v(t^*) = \frac{w\,\tau_s}{C_m}\Big(\frac{\tau_s}{\tau_m}\Big)^{\tau_s/(\tau_m-\tau_s)}$$

        ($w\tau/(e C_m)$ when $\tau_s = \tau_m$). This is the continuous-time PSP; a
        simulation holds the current fixed over each step, which raises the peak by
        about $dt/(2\tau_s)$ (1 % at dt = 0.1 ms, $\tau_s$ = 5 ms).

        **Arguments:**

        - `neuron`: A `nj.neurons.LIF` (its `c_m` [pF] and `g_l` [nS]).
        """
        from ..neurons.lif import LIF  # neurons import synapse-free modules only

        if not isinstance(neuron, LIF):
            raise ValueError(
                f"Exponential.psp_peak needs a nj.neurons.LIF (the closed form is for a "
                f"leaky membrane without spike currents), got {type(neuron).__name__}."
            )
        tau_s, tau_m = self.tau, neuron.c_m / neuron.g_l
        same = jnp.isclose(tau_m, tau_s, rtol=1e-9, atol=0.0)
        safe = jnp.where(same, 2.0 * tau_s, tau_m)  # keeps the exponent finite (and its gradient)
        factor = jnp.where(same, jnp.exp(-1.0), (tau_s / safe) ** (tau_s / (safe - tau_s)))
        return tau_s / neuron.c_m * factor  # [mV/pA] = [ms] / [pF]


class AlphaState(eqx.Module):
    x: Float[Array, " n"]  # auxiliary (rising) variable [weight units]
    s: Float[Array, " n"]  # synaptic variable [weight units]


class Alpha(AbstractKinetics):
    r"""Alpha-function synapses (Rall 1967): $s(t) = w\,\frac{t}{\tau}e^{1 - t/\tau}$,
    peaking at $w$ after $\tau$. Exact propagation of the linear system
    $\dot x = -x/\tau$, $\dot s = -s/\tau + (e/\tau) x$.

    **Arguments:**

    - `tau`: Time to peak and decay constant [ms].
    """

    tau: PopulationParam = eqx.field(converter=positive("tau", "ms"), default=5.0)

    def init(self, n: int, initial: Float[Array, " n"] | None = None) -> AlphaState:
        z = jnp.zeros((n,), float)
        s = z if initial is None else jnp.asarray(initial, float)
        return AlphaState(x=z, s=s)

    def step(self, state: AlphaState, x: Float[Array, " n"], dt: float):
        decay = jnp.exp(-dt / self.tau)
        x = state.x + x
        s_next = decay * (state.s + (math.e * dt / self.tau) * x)
        return AlphaState(x=decay * x, s=s_next), state.s

    def graded_gain(self, dt: float) -> PopulationParam:
        # Outputs c n q^n (n >= 0) after a unit arrival, c = e dt / tau, q = e^{-dt/tau}:
        # sum c q / (1 - q)^2.
        q = jnp.exp(-dt / self.tau)
        return jnp.expm1(-dt / self.tau) ** 2 / ((math.e * dt / self.tau) * q)

    def check(self, dt: float) -> None:
        check_time_constant_vs_dt(self.tau, dt, "synapse tau")


class DualExponentialState(eqx.Module):
    decay: Float[Array, " n"]  # slow component [weight units]
    rise: Float[Array, " n"]  # fast component [weight units]


class DualExponential(AbstractKinetics):
    r"""Difference-of-exponentials synapses:
    $s(t) = w\,N\,(e^{-t/\tau_d} - e^{-t/\tau_r})$ with $N$ chosen so the peak, at
    $t^* = \frac{\tau_d\tau_r}{\tau_d - \tau_r}\ln\frac{\tau_d}{\tau_r}$, equals $w$.
    Each component decays exactly.

    **Arguments:**

    - `tau_rise`: Rise time constant [ms], smaller than `tau_decay`.
    - `tau_decay`: Decay time constant [ms].
    """

    tau_rise: PopulationParam = eqx.field(converter=positive("tau_rise", "ms"), default=1.0)
    tau_decay: PopulationParam = eqx.field(converter=positive("tau_decay", "ms"), default=5.0)

    def __check_init__(self):
        if is_concrete(self.tau_rise) and is_concrete(self.tau_decay):
            if jnp.any(self.tau_rise >= self.tau_decay):
                raise ValueError(
                    "tau_rise [ms] must lie in (0, tau_decay), got "
                    f"tau_rise={self.tau_rise} and tau_decay={self.tau_decay}."
                )
        else:
            defer(self.tau_decay - self.tau_rise, "tau_rise [ms] must lie in (0, tau_decay)",
                  low=0.0, low_open=True, allow_inf=True)

    @property
    def peak_normalisation(self) -> PopulationParam:
        """$N$ such that the kernel's peak is 1 [dimensionless]."""
        td, tr = self.tau_decay, self.tau_rise
        t_peak = td * tr / (td - tr) * jnp.log(td / tr)
        return 1.0 / (jnp.exp(-t_peak / td) - jnp.exp(-t_peak / tr))

    def init(self, n: int, initial: Float[Array, " n"] | None = None) -> DualExponentialState:
        z = jnp.zeros((n,), float)
        slow = z if initial is None else jnp.asarray(initial, float)
        return DualExponentialState(decay=slow, rise=z)

    def step(self, state: DualExponentialState, x: Float[Array, " n"], dt: float):
        s = state.decay - state.rise
        kick = self.peak_normalisation * x
        slow = (state.decay + kick) * jnp.exp(-dt / self.tau_decay)
        fast = (state.rise + kick) * jnp.exp(-dt / self.tau_rise)
        return DualExponentialState(decay=slow, rise=fast), s

    def graded_gain(self, dt: float) -> PopulationParam:
        # Outputs N (q_d^n - q_r^n) (n >= 1) after a unit arrival: sum
        # N (q_d / (1 - q_d) - q_r / (1 - q_r)).
        def geometric(tau):
            return jnp.exp(-dt / tau) / -jnp.expm1(-dt / tau)

        return 1.0 / (self.peak_normalisation
                      * (geometric(self.tau_decay) - geometric(self.tau_rise)))

    def check(self, dt: float) -> None:
        check_time_constant_vs_dt(self.tau_rise, dt, "synapse tau_rise")


class SaturatingState(eqx.Module):
    x: Float[Array, " n"]  # rise (gating) variable [dimensionless]
    s: Float[Array, " n"]  # open fraction, in [0, 1) [dimensionless]


class Saturating(AbstractKinetics):
    r"""Saturating second-order gating kept per presynaptic neuron (Wang 2002, Neuron
    36:955, NMDA; Wang 1999):

    $$\frac{dx}{dt} = -\frac{x}{\tau_r} + \sum_k \delta(t - t_k), \qquad
    \frac{ds}{dt} = -\frac{s}{\tau_d} + \alpha\,x\,(1 - s).$$

    Non-linear in the spike train ($s$ saturates at 1), so it is `presynaptic`: one state
    per presynaptic neuron, stepped with its spikes, and $s$ (dimensionless, in
    [0, 1)) is transmitted through the weights, which are then the maximal
    conductances [nS] (or currents [pA]).

    **Discretisation.** Each spike raises $x$ by 1 at the end of the step that emits
    it. Over a step, $x$ decays exactly and $s$ is integrated exactly for the step's
    mean of $x$, $\bar x = x_0 \tau_r (1 - e^{-dt/\tau_r})/dt$ (exponential Euler
    with the exact integral of $\alpha x$). Against a high-accuracy ODE solution the
    error of $s$ falls as $dt^2$ (4e-6 at dt = 0.1 ms for a burst that drives $s$ to
    0.99, see the tests). The
    output of a step is $s$ at its end (the time of its spikes), which the target holds
    over the step in which it arrives (one step later with the minimum delay).

    **Arguments:**

    - `tau_rise`: Decay time constant of $x$ [ms] (2 ms in Wang 2002).
    - `tau_decay`: Decay time constant of $s$ [ms] (100 ms in Wang 2002).
    - `alpha`: Saturation rate $\alpha$ [1/ms] (0.5 /ms in Wang 2002).
    """

    tau_rise: PopulationParam = eqx.field(converter=positive("tau_rise", "ms"), default=2.0)
    tau_decay: PopulationParam = eqx.field(converter=positive("tau_decay", "ms"), default=100.0)
    alpha: PopulationParam = eqx.field(converter=positive("alpha", "1/ms"), default=0.5)
    presynaptic: ClassVar[bool] = True

    def init(self, n: int, initial: Float[Array, " n"] | None = None) -> SaturatingState:
        if initial is not None:
            raise ValueError(
                "Saturating kinetics are kept per presynaptic neuron and start closed, "
                "so the Projection's `initial` must be None."
            )
        z = jnp.zeros((n,), float)
        return SaturatingState(x=z, s=z)

    def step(self, state: SaturatingState, x: Float[Array, " n"], dt: float):
        """Advance `(x, s)` over the step, then add this step's spikes `x` (counts);
        returns the state and `s` at the end of the step."""
        decay = jnp.exp(-dt / self.tau_rise)
        x_mean = state.x * self.tau_rise * (1.0 - decay) / dt  # exact mean of x
        a = self.alpha * x_mean  # [1/ms]
        k = a + 1.0 / self.tau_decay  # [1/ms]
        s_inf = a / k
        s = s_inf + (state.s - s_inf) * jnp.exp(-k * dt)
        return SaturatingState(x=state.x * decay + x, s=s), s

    def check(self, dt: float) -> None:
        check_time_constant_vs_dt(self.tau_rise, dt, "synapse tau_rise")
