r"""Short-term synaptic plasticity: Tsodyks–Markram depression and facilitation."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._custom_types import PopulationParam
from .._misc import check_range, nonnegative, param, positive
from .abstract import AbstractPlasticity


class TsodyksMarkramState(eqx.Module):
    u: Float[Array, " pre"]  # utilisation u+ just after the last spike [1]
    x: Float[Array, " pre"]  # available resources x+ just after the last spike [1]
    last: Int[Array, " pre"]  # step of the last spike (0 before any: then u = 0, x = 1)
    step: Int[Array, ""]  # steps taken
    efficacy: Float[Array, " pre"]  # u+ x- of this step's spikes [1] (0 without a spike)


class TsodyksMarkram(AbstractPlasticity[TsodyksMarkramState]):
    r"""Tsodyks–Markram short-term depression and facilitation (Tsodyks, Pawelzik &
    Markram 1998; Markram, Wang & Tsodyks 1998), one `(u, x)` per presynaptic neuron.

    Between spikes the resources $x$ recover to 1 and the utilisation $u$ decays to 0,

    $$\frac{dx}{dt} = \frac{1 - x}{\tau_d}, \qquad \frac{du}{dt} = -\frac{u}{\tau_f},$$

    and at a presynaptic spike $u$ jumps first, $u^+ = u^- + U(1 - u^-)$, the spike is
    transmitted with efficacy $u^+ x^-$ (its weight times $u^+ x^-$), and $x^+ = x^- -
    u^+ x^-$. The first spike of a rested synapse has efficacy $U$. The update is
    event-driven and exact: at a spike the variables are decayed from the previous
    spike in closed form (no per-step integration), which gives the recursion of NEST's
    `tsodyks2_synapse` for a train with intervals $\Delta$:
    $u_{n+1} = U + u_n(1-U)e^{-\Delta/\tau_f}$,
    $x_{n+1} = 1 + (x_n - u_n x_n - 1)e^{-\Delta/\tau_d}$, PSC$_n \propto u_n x_n$.
    With $\tau_f = 0$ (pure depression) $u = U$ at every spike.

    Because the parameters are per presynaptic neuron, the state is `(n_pre,)` and
    the rule scales presynaptic activity (`transmit`) rather than weights, so it costs
    O(n_pre) per step and leaves the projection's weights (and their gradient) intact.
    Spike times are those of the presynaptic population's output (transmission delay
    comes after). Graded (rate) presynaptic output is treated as a spike count.

    **Arguments:**

    - `U`: Utilisation increment, the efficacy of the first spike [1], in (0, 1].
      Scalar or shape `(n_pre,)`.
    - `tau_d`: Recovery (depression) time constant $\tau_d$ (`tau_rec`) [ms], > 0.
    - `tau_f`: Facilitation time constant $\tau_f$ (`tau_fac`) [ms], >= 0; 0 means
      no facilitation.

    !!! example

        ```python
        dep = nj.plasticity.TsodyksMarkram(U=0.5, tau_d=800.0, tau_f=0.0)
        proj = nj.Projection("in", "out", nj.connectivity.AllToAll(), weight=100.0,
                             synapse=nj.synapses.Exponential(3.0), plasticity=dep)
        ```
    """

    U: PopulationParam = eqx.field(
        converter=param("TsodyksMarkram U", "1", low=0.0, high=1.0, low_open=True)
    )
    tau_d: PopulationParam = eqx.field(converter=positive("TsodyksMarkram tau_d", "ms"))
    tau_f: PopulationParam = eqx.field(converter=nonnegative("TsodyksMarkram tau_f", "ms"))

    def __init__(self, U=0.5, tau_d=800.0, tau_f=0.0):
        self.U = U
        self.tau_d = tau_d
        self.tau_f = tau_f

    def init(self, structure: Any, weights: Array | None) -> TsodyksMarkramState:
        n_pre = structure.n_pre
        dtype = jnp.result_type(float)
        zeros = jnp.zeros((n_pre,), dtype)
        return TsodyksMarkramState(
            u=zeros, x=jnp.ones((n_pre,), dtype), last=jnp.zeros((n_pre,), jnp.int32),
            step=jnp.zeros((), jnp.int32), efficacy=zeros,
        )

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure=None):
        k = state.step + 1
        gap = (k - state.last).astype(state.u.dtype) * dt  # [ms] since the last spike
        tau_f = jnp.asarray(self.tau_f)
        # tau_f = 0: u decays to 0 at once; guarded so the gradient stays finite.
        facilitating = tau_f > 0
        decay_f = jnp.where(facilitating, jnp.exp(-gap / jnp.where(facilitating, tau_f, 1.0)), 0.0)
        decay_d = jnp.exp(-gap / self.tau_d)
        u_minus = state.u * decay_f
        x_minus = 1.0 + (state.x - 1.0) * decay_d
        u_plus = u_minus + self.U * (1.0 - u_minus)
        efficacy = u_plus * x_minus
        spiking = pre > 0
        new = TsodyksMarkramState(
            u=jnp.where(spiking, u_plus, state.u),
            x=jnp.where(spiking, x_minus - efficacy, state.x),
            last=jnp.where(spiking, k, state.last),
            step=k,
            efficacy=jnp.where(spiking, efficacy, jnp.zeros_like(efficacy)),
        )
        return new, None

    def transmit(self, state: TsodyksMarkramState, pre):
        return pre * state.efficacy

    def check(self, structure: Any, dt: float, name: str) -> None:
        for field, value in (("U", self.U), ("tau_d", self.tau_d), ("tau_f", self.tau_f)):
            shape = np.shape(value)
            if shape not in ((), (1,), (structure.n_pre,)):
                raise ValueError(
                    f"projection {name!r}: TsodyksMarkram {field} must be a scalar or have "
                    f"shape (n_pre,) = ({structure.n_pre},) (one value per presynaptic "
                    f"neuron), got shape {shape}."
                )
        check_range(self.U, "TsodyksMarkram U", "1", low=0.0, high=1.0, low_open=True)
        check_range(self.tau_d, "TsodyksMarkram tau_d", "ms", low=0.0, low_open=True)
        check_range(self.tau_f, "TsodyksMarkram tau_f", "ms", low=0.0)


def steady_state_ratio(U, tau_d, tau_f, rate):
    r"""Analytic steady-state PSC amplitude relative to the first, $A_{st}/A_1 =
    u_{st} x_{st} / U$, for a regular train at `rate` [Hz] (Tsodyks & Markram 1997;
    REFERENCES §9):
    $u_{st} = U / (1 - (1-U)e^{-\Delta/\tau_f})$,
    $x_{st} = (1 - e^{-\Delta/\tau_d}) / (1 - (1-u_{st})e^{-\Delta/\tau_d})$,
    $\Delta = 1000/\text{rate}$ [ms]."""
    isi = 1000.0 / jnp.asarray(rate, float)
    tau_f = jnp.asarray(tau_f, float)
    ef = jnp.where(tau_f > 0, jnp.exp(-isi / jnp.where(tau_f > 0, tau_f, 1.0)), 0.0)
    ed = jnp.exp(-isi / tau_d)
    u = U / (1.0 - (1.0 - U) * ef)
    x = (1.0 - ed) / (1.0 - (1.0 - u) * ed)
    return u * x / U
