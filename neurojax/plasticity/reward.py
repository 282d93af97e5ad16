r"""Three-factor (reward-modulated) STDP: an eligibility trace gated by a modulator."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._misc import check_range, check_time_constant_vs_dt, finite, nonnegative, positive
from .abstract import AbstractPlasticity, container_weights
from .stdp import _TRACES, _dense_update, _layout, bump_trace, pair_traces


class RewardModulatedState(eqx.Module):
    weights: Float[Array, "..."]  # plastic weights, in the container's layout [weight units]
    eligibility: Float[Array, "..."]  # eligibility trace e per synapse [weight units]
    pre_trace: Float[Array, " pre"]  # presynaptic pair trace [1]
    post_trace: Float[Array, " post"]  # postsynaptic pair trace [1]


class RewardModulated(AbstractPlasticity[RewardModulatedState]):
    r"""Reward-modulated STDP, a three-factor rule (Izhikevich 2007; Frémaux, Sprekeler &
    Gerstner 2013; review: Frémaux & Gerstner 2016).

    Each synapse keeps an eligibility trace $e$ that pair-STDP drives and that decays
    with $\tau_e$; the weight changes only where a neuromodulator $M(t)$ departs from
    its baseline $b$:

    $$\frac{de}{dt} = -\frac{e}{\tau_e} + \mathrm{STDP}(t), \qquad
      \frac{dw}{dt} = \eta\,\big(M(t) - b\big)\, e, \qquad 0 \le w \le w_{max}.$$

    $\mathrm{STDP}(t)$ is `PairSTDP`'s additive pair term on the same traces (a pair at
    $\Delta t = t_{post} - t_{pre}$ adds $a_+ e^{-\Delta t/\tau_+}$ for $\Delta t \ge 0$
    and $-a_- e^{\Delta t/\tau_-}$ otherwise; same trace variants and within-step
    order), without bounds on $e$. $M$ is the network's modulator named `modulator`
    (`nj.inputs.Modulator`, evaluated at the start of each step and held over it; a
    scalar, or one value per postsynaptic neuron, which synapses placed on compartments
    of that neuron with `Compartments(sites="synapse")` all read). Integration is exact for a $M$ that
    is constant over each step $[t, t + dt)$ (the step's spikes fall at its end): first
    $w \mathrel{+}= \eta (M(t) - b)\, e(t)\, \tau_e (1 - e^{-dt/\tau_e})$, the integral
    of $\eta (M - b) e$ over the step, clipped to $[0, w_{max}]$; then $e$ decays by
    $e^{-dt/\tau_e}$ and takes the step's pairs. So a pair followed by a reward pulse of
    height $R$ on $[T, T + D)$ (on the step grid) changes the weight by
    $\eta (R - b)\, e(T)\, \tau_e (1 - e^{-D/\tau_e})$, the continuous-time integral, and
    $M \equiv b$ changes no weight (exactly). Only existing synapses change. The update runs over every
    synapse of the container's layout in every step (dense or sparse rows): a
    modulator acts on all synapses at once, so there is no event-driven shortcut.

    **Arguments:**

    - `eta`: Learning rate $\eta$ [1/ms per modulator unit], >= 0.
    - `tau_e`: Eligibility time constant $\tau_e$ [ms], > 0 (Izhikevich 2007: 1000 ms).
    - `a_plus`, `a_minus`: Pair amplitudes $a_\pm$ of the eligibility [weight units], >= 0.
    - `tau_plus`, `tau_minus`: Pair windows $\tau_\pm$ [ms], > 0.
    - `w_max`: Upper weight bound [weight units], > 0; the lower bound is 0.
    - `baseline`: Modulator baseline $b$ [modulator units], finite (e.g. the expected
      reward, for a reward-prediction-error rule).
    - `modulator`: Name of the `nj.inputs.Modulator` to read (default `"dopamine"`); a
      network without it raises a `ValueError` when built or simulated.
    - `traces`: `"all_to_all"` (default) or `"nearest"`, as in `PairSTDP`.

    The projection's initial weights must lie in `[0, w_max]`.

    !!! example

        ```python
        rule = nj.plasticity.RewardModulated(eta=0.01, tau_e=200.0, a_plus=1.0,
                                             a_minus=1.0, w_max=2.0)
        reward = nj.inputs.Modulator("dopamine", nj.inputs.Pulses([300.0], 1.0, 50.0))
        net = nj.Network(pops, [nj.Projection("A", "out", conn, plasticity=rule)],
                         modulators=[reward])
        ```
    """

    eta: Float[Array, ""] = eqx.field(converter=nonnegative("RewardModulated eta", "1/ms"))
    tau_e: Float[Array, ""] = eqx.field(converter=positive("RewardModulated tau_e", "ms"))
    a_plus: Float[Array, ""] = eqx.field(converter=nonnegative("RewardModulated a_plus", "weight units"))
    a_minus: Float[Array, ""] = eqx.field(converter=nonnegative("RewardModulated a_minus", "weight units"))
    tau_plus: Float[Array, ""] = eqx.field(converter=positive("RewardModulated tau_plus", "ms"))
    tau_minus: Float[Array, ""] = eqx.field(converter=positive("RewardModulated tau_minus", "ms"))
    w_max: Float[Array, ""] = eqx.field(converter=positive("RewardModulated w_max", "weight units"))
    baseline: Float[Array, ""] = eqx.field(converter=finite("RewardModulated baseline", "modulator units"))
    modulator: str = eqx.field(static=True, default="dopamine")
    traces: str = eqx.field(static=True, default="all_to_all")
    changes_weights: ClassVar[bool] = True

    def __init__(self, eta=0.01, tau_e=1000.0, a_plus=1.0, a_minus=1.5, tau_plus=20.0,
                 tau_minus=20.0, w_max=1.0, baseline=0.0, modulator="dopamine",
                 traces="all_to_all"):
        self.eta = eta
        self.tau_e = tau_e
        self.a_plus = a_plus
        self.a_minus = a_minus
        self.tau_plus = tau_plus
        self.tau_minus = tau_minus
        self.w_max = w_max
        self.baseline = baseline
        self.modulator = modulator
        self.traces = traces

    def __check_init__(self):
        if not isinstance(self.modulator, str) or not self.modulator:
            raise ValueError(
                f"RewardModulated modulator must be the name of a nj.inputs.Modulator, got "
                f"{self.modulator!r}."
            )
        if self.traces not in _TRACES:
            raise ValueError(f"RewardModulated traces must be one of {_TRACES}, got {self.traces!r}.")

    def init(self, structure: Any, weights: Array | None) -> RewardModulatedState:
        w = container_weights(structure) if weights is None else weights
        return RewardModulatedState(
            weights=w,
            eligibility=jnp.zeros_like(w),
            pre_trace=jnp.zeros((structure.n_pre,), w.dtype),
            post_trace=jnp.zeros((structure.n_post,), w.dtype),
        )

    def weights(self, state: RewardModulatedState) -> Array:
        return state.weights

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        if modulators is None or self.modulator not in modulators:
            have = [] if modulators is None else sorted(modulators)
            raise ValueError(
                f"RewardModulated reads the modulator {self.modulator!r}, but the network "
                f"supplies {have or 'none'} (nj.Network(..., modulators=[...]))."
            )
        dtype = state.weights.dtype
        pre, post = pre.astype(dtype), post.astype(dtype)
        x_pre, x_post = pair_traces(state.pre_trace, state.post_trace, pre, dt,
                                    self.tau_plus, self.tau_minus, self.traces)
        _, post_at, mask = _layout(structure)
        m = jnp.asarray(modulators[self.modulator], dtype)
        if m.ndim == 1:
            m = post_at(m)  # one value per postsynaptic neuron
        # Over the step [t, t + dt) M is held at M(t) and e decays freely from its value
        # at t (this step's spikes are emitted at t + dt): the exact integral of
        # eta (M - b) e over the step.
        gain = self.eta * (m - self.baseline) * self.tau_e * -jnp.expm1(-dt / self.tau_e)
        w = jnp.where(mask, jnp.clip(state.weights + gain * state.eligibility, 0.0, self.w_max),
                      state.weights)
        # Then the eligibility decays and takes this step's pairs: PairSTDP's additive
        # update on the same traces, without bounds.
        e = state.eligibility * jnp.exp(-dt / self.tau_e)
        e = _dense_update(e, x_pre, x_post, pre, post, (self.a_plus, self.a_minus, self.w_max),
                          structure, False, skip_quiet=True, clip=False)
        x_post = bump_trace(x_post, post, self.traces)
        new = RewardModulatedState(weights=w, eligibility=e, pre_trace=x_pre, post_trace=x_post)
        return new, w

    def check(self, structure: Any, dt: float, name: str) -> None:
        fields = ("eta", "tau_e", "a_plus", "a_minus", "tau_plus", "tau_minus", "w_max", "baseline")
        for field in fields:
            if np.ndim(getattr(self, field)) != 0:
                raise ValueError(
                    f"projection {name!r}: RewardModulated {field} must be a scalar, got shape "
                    f"{np.shape(getattr(self, field))}."
                )
        check_range(self.eta, "RewardModulated eta", "1/ms", low=0.0)
        check_range(self.a_plus, "RewardModulated a_plus", "weight units", low=0.0)
        check_range(self.a_minus, "RewardModulated a_minus", "weight units", low=0.0)
        for field in ("tau_e", "tau_plus", "tau_minus"):
            check_range(getattr(self, field), f"RewardModulated {field}", "ms", low=0.0, low_open=True)
            check_time_constant_vs_dt(getattr(self, field), dt, f"RewardModulated {field}")
        check_range(self.w_max, "RewardModulated w_max", "weight units", low=0.0, low_open=True)
        check_range(self.baseline, "RewardModulated baseline", "modulator units")
