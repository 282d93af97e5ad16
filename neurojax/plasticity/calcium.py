r"""The calcium-based plasticity rule of Graupner & Brunel (2012)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _threefry
from .._misc import (
    check_order,
    check_range,
    check_time_constant_vs_dt,
    finite,
    nonnegative,
    param,
    positive,
)
from .abstract import AbstractPlasticity, container_weights, synapse_mask
from .stdp import _layout

_NAME = "CalciumSTDP"


class CalciumSTDPState(eqx.Module):
    weights: Float[Array, "..."]  # w_down + rho (w_up - w_down) at synapses, 0 elsewhere
    rho: Float[Array, "..."]  # synaptic efficacy, in the container's layout [1]
    c_pre: Float[Array, " pre"]  # calcium from (delayed) presynaptic spikes [1]
    c_post: Float[Array, " post"]  # calcium from postsynaptic spikes [1]
    pending: Float[Array, "delay pre"]  # presynaptic spikes of the last D / dt steps
    head: Array  # slot of `pending` read (and overwritten) in the next step
    key: Array  # PRNG key of the noise, split every step


class CalciumSTDP(AbstractPlasticity[CalciumSTDPState]):
    r"""Calcium-based plasticity (Graupner & Brunel 2012, PNAS 109:3991; noise term as
    corrected in PNAS 110:E1065, 2013).

    Each synapse has a calcium concentration $c$ and an efficacy $\rho$:

    $$\frac{dc}{dt} = -\frac{c}{\tau_{Ca}} + C_{pre}\sum \delta(t - t_{pre} - D)
      + C_{post} \sum \delta(t - t_{post}),$$

    $$\tau \frac{d\rho}{dt} = -\rho(1-\rho)(\rho_\star - \rho)
      + \gamma_p (1-\rho)\,\Theta[c - \theta_p] - \gamma_d\, \rho\, \Theta[c - \theta_d]
      + \sigma \sqrt{\tau}\sqrt{\Theta[c - \theta_p] + \Theta[c - \theta_d]}\;\xi(t).$$

    $c$ is linear in the spikes, so it is kept as one presynaptic and one postsynaptic
    term per neuron, summed per synapse, decayed by the exact factor
    $e^{-dt/\tau_{Ca}}$ per step. A presynaptic spike reaches the calcium $D$ later
    (`delay`, a whole number of steps: a ring of the presynaptic spikes of the last
    $D/dt$ steps); spikes land at the end of their step. $\rho$ advances by an
    Euler-Maruyama step over each step, with $\Theta[c - \theta]$ replaced by the
    exact fraction of the step that the decaying $c$ spends above $\theta$ (so the
    drive integrates the exact time above threshold) and Gaussian noise of variance
    $\sigma^2 (f_p + f_d)\, dt / \tau$. $\rho$ is not clipped.

    The noise needs randomness that the step protocol does not pass: the state holds a
    PRNG key, taken at `init_run` from the network's initial key (so `nj.simulate`'s
    `key` sets it, and `vmap` over keys gives independent runs), split every step.
    `sigma = 0` gives the deterministic rule.

    The delivered weight is $w = w_{down} + \rho\,(w_{up} - w_{down})$ (so
    $b = w_{up} / w_{down}$ in the paper's readout); the initial $\rho$ is read from
    the projection's weights, which must lie in $[w_{down}, w_{up}]$. The rule acts on
    every synapse every step (the $\rho$ dynamics never rests), on `Dense` and
    `Sparse` projections alike; it is differentiable in its parameters (not through
    the threshold crossings' timing, which is piecewise smooth).

    `CalciumSTDP.dp()` is the paper's "DP" set (Fig. 2); `calcium_stdp_change` the
    analytic (Ornstein-Uhlenbeck) approximation of the change in strength after a
    pairing protocol.

    **Arguments:**

    - `tau_ca`: Calcium decay time constant $\tau_{Ca}$ [ms], > 0.
    - `c_pre`: Calcium jump per presynaptic spike $C_{pre}$ [1], >= 0.
    - `c_post`: Calcium jump per postsynaptic spike $C_{post}$ [1], >= 0.
    - `delay`: Presynaptic calcium delay $D$ [ms], >= 0, a multiple of `dt` (static:
      it sizes the state).
    - `theta_d`: Depression threshold $\theta_d$ [1], > 0.
    - `theta_p`: Potentiation threshold $\theta_p$ [1], > 0.
    - `gamma_d`: Depression rate $\gamma_d$ [1], >= 0.
    - `gamma_p`: Potentiation rate $\gamma_p$ [1], >= 0.
    - `sigma`: Noise amplitude $\sigma$ [1], >= 0.
    - `tau`: Efficacy time constant $\tau$ [ms], > 0.
    - `rho_star`: Boundary between the basins of the two stable states $\rho_\star$
      [1], in [0, 1].
    - `w_down`: Weight of the DOWN state $\rho = 0$ [weight units], >= 0.
    - `w_up`: Weight of the UP state $\rho = 1$ [weight units], > `w_down`.

    !!! example

        ```python
        rule = nj.plasticity.CalciumSTDP.dp(w_down=0.2, w_up=1.0)
        nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=0.2, plasticity=rule)
        ```
    """

    tau_ca: Float[Array, ""] = eqx.field(converter=positive(f"{_NAME} tau_ca", "ms"))
    c_pre: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} c_pre", "1"))
    c_post: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} c_post", "1"))
    theta_d: Float[Array, ""] = eqx.field(converter=positive(f"{_NAME} theta_d", "1"))
    theta_p: Float[Array, ""] = eqx.field(converter=positive(f"{_NAME} theta_p", "1"))
    gamma_d: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} gamma_d", "1"))
    gamma_p: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} gamma_p", "1"))
    sigma: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} sigma", "1"))
    tau: Float[Array, ""] = eqx.field(converter=positive(f"{_NAME} tau", "ms"))
    rho_star: Float[Array, ""] = eqx.field(converter=param(f"{_NAME} rho_star", "1", low=0.0, high=1.0))
    w_down: Float[Array, ""] = eqx.field(converter=nonnegative(f"{_NAME} w_down", "weight units"))
    w_up: Float[Array, ""] = eqx.field(converter=finite(f"{_NAME} w_up", "weight units"))
    delay: float = eqx.field(static=True, default=0.0)
    changes_weights: ClassVar[bool] = True

    def __init__(self, tau_ca=20.0, c_pre=1.0, c_post=2.0, delay=13.7, theta_d=1.0, theta_p=1.3,
                 gamma_d=200.0, gamma_p=321.808, sigma=2.8284, tau=150_000.0, rho_star=0.5,
                 w_down=0.2, w_up=1.0):
        self.tau_ca = tau_ca
        self.c_pre = c_pre
        self.c_post = c_post
        self.theta_d = theta_d
        self.theta_p = theta_p
        self.gamma_d = gamma_d
        self.gamma_p = gamma_p
        self.sigma = sigma
        self.tau = tau
        self.rho_star = rho_star
        self.w_down = w_down
        self.w_up = w_up
        check_range(delay, f"{_NAME} delay", "ms", low=0.0)
        self.delay = float(delay)

    def __check_init__(self):
        check_order(self.w_down, self.w_up, f"{_NAME} w_down", f"{_NAME} w_up", "weight units")

    @classmethod
    def dp(cls, w_down=0.2, w_up=1.0, sigma=2.8284) -> "CalciumSTDP":
        """Graupner & Brunel 2012, Fig. 2, "DP" (depression-potentiation) set:
        tau_Ca = 20 ms, C_pre = 1, C_post = 2, D = 13.7 ms, theta_d = 1, theta_p = 1.3,
        gamma_d = 200, gamma_p = 321.808, sigma = 2.8284, tau = 150 s, rho* = 0.5. The
        paper's readout has b = w_up / w_down = 5 (the defaults)."""
        return cls(tau_ca=20.0, c_pre=1.0, c_post=2.0, delay=13.7, theta_d=1.0, theta_p=1.3,
                   gamma_d=200.0, gamma_p=321.808, sigma=sigma, tau=150_000.0, rho_star=0.5,
                   w_down=w_down, w_up=w_up)

    def _delay_steps(self, dt: float) -> int:
        return int(round(self.delay / dt))

    def init(self, structure: Any, weights: Array | None, dt: float | None = None,
             key: Any = None) -> CalciumSTDPState:
        """The initial state; `dt` [ms] is needed when `delay > 0` (it sizes the ring
        of pending presynaptic spikes), `key` seeds the noise (default
        `jax.random.key(0)`)."""
        if self.delay > 0 and dt is None:
            raise ValueError(
                f"{_NAME} with delay [ms] = {self.delay:g} > 0 needs dt to size its state: "
                "call init_run(structure, weights, dt, key) (as NetworkModel.init does)."
            )
        w = container_weights(structure) if weights is None else weights
        rho = (w - self.w_down) / (self.w_up - self.w_down)
        rho = jnp.where(synapse_mask(structure), rho, jnp.zeros_like(rho))
        n_pre, n_post = structure.n_pre, structure.n_post
        d = 0 if self.delay == 0 else self._delay_steps(dt)
        return CalciumSTDPState(
            weights=self._weights(rho, structure),
            rho=rho,
            c_pre=jnp.zeros((n_pre,), w.dtype),
            c_post=jnp.zeros((n_post,), w.dtype),
            pending=jnp.zeros((d, n_pre), w.dtype),
            head=jnp.zeros((), jnp.int32),
            key=jax.random.key(0) if key is None else key,
        )

    def init_run(self, structure, weights, dt, key):
        return self.init(structure, weights, dt=dt, key=key)

    def _weights(self, rho, structure):
        w = self.w_down + rho * (self.w_up - self.w_down)
        return jnp.where(synapse_mask(structure), w, jnp.zeros_like(w))

    def weights(self, state: CalciumSTDPState) -> Array:
        return state.weights

    def step(self, state, pre, post, post_vars, modulators, dt, *, structure):
        dtype = state.rho.dtype
        pre, post = pre.astype(dtype), post.astype(dtype)
        pre_at, post_at, mask = _layout(structure)
        # rho over the step [t_k, t_k + dt], driven by the calcium at t_k (after that
        # time's jumps), which decays exactly: the fraction of the step above theta is
        # clip(tau_Ca ln(c / theta) / dt, 0, 1).
        c = pre_at(state.c_pre) + post_at(state.c_post)
        f_d = _fraction_above(c, self.theta_d, self.tau_ca, dt)
        f_p = _fraction_above(c, self.theta_p, self.tau_ca, dt)
        rho = state.rho
        drift = (-rho * (1.0 - rho) * (self.rho_star - rho) + self.gamma_p * (1.0 - rho) * f_p
                 - self.gamma_d * rho * f_d)
        key, sub = _threefry.split(state.key)
        drive = f_p + f_d
        # Noise only where the calcium is above a threshold: skip the draw in steps
        # where it is nowhere (most steps, at low rates).
        noise = jax.lax.cond(
            jnp.any(drive > 0),
            lambda: self.sigma * jnp.sqrt(drive * (dt / self.tau)) * _threefry.normal(sub, rho.shape, dtype),
            lambda: jnp.zeros_like(rho),
        )
        rho = jnp.where(mask, rho + drift * (dt / self.tau) + noise, rho)
        # Calcium at t_k + dt: decay, then this step's arrivals.
        decay = jnp.exp(-dt / self.tau_ca)
        d = state.pending.shape[0]
        if d == 0:
            arriving, pending, head = pre, state.pending, state.head
        else:
            arriving = state.pending[state.head]
            pending = state.pending.at[state.head].set(pre)
            head = (state.head + 1) % d
        c_pre = state.c_pre * decay + self.c_pre * arriving
        c_post = state.c_post * decay + self.c_post * post
        w = self._weights(rho, structure)
        new = CalciumSTDPState(weights=w, rho=rho, c_pre=c_pre, c_post=c_post, pending=pending,
                               head=head, key=key)
        return new, w

    def check(self, structure: Any, dt: float, name: str) -> None:
        fields = ("tau_ca", "c_pre", "c_post", "theta_d", "theta_p", "gamma_d", "gamma_p",
                  "sigma", "tau", "rho_star", "w_down", "w_up")
        for field in fields:
            if np.ndim(getattr(self, field)) != 0:
                raise ValueError(
                    f"projection {name!r}: {_NAME} {field} must be a scalar, got shape "
                    f"{np.shape(getattr(self, field))}."
                )
        check_time_constant_vs_dt(self.tau_ca, dt, f"{_NAME} tau_ca")
        check_time_constant_vs_dt(self.tau, dt, f"{_NAME} tau")
        d = self.delay / dt
        if self.delay > 0 and (round(d) < 1 or not math.isclose(round(d), d, rel_tol=1e-9, abs_tol=1e-9)):
            raise ValueError(
                f"projection {name!r}: {_NAME} delay [ms] = {self.delay:g} must be 0 or a "
                f"positive multiple of dt [ms] = {dt:g} (the presynaptic calcium arrives "
                "on the grid)."
            )
        w = container_weights(structure)
        try:
            values = np.asarray(w)[np.asarray(synapse_mask(structure))]
            lo, hi = float(self.w_down), float(self.w_up)
        except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
            return  # traced weights or bounds: the optimiser's business
        if values.size and (values.min() < lo or values.max() > hi):
            raise ValueError(
                f"projection {name!r}: initial weights must lie in the bounds of its {_NAME}, "
                f"[w_down, w_up] = [{lo:g}, {hi:g}] [weight units], got min "
                f"{values.min():g}, max {values.max():g}."
            )


def _fraction_above(c, theta, tau_ca, dt):
    """Fraction of a step of `dt` that c(t) = c e^{-t/tau_ca} spends above theta."""
    ratio = jnp.maximum(c / theta, 1.0)  # log(1) = 0: below threshold, no time above
    return jnp.clip(tau_ca * jnp.log(ratio) / dt, 0.0, 1.0)


def time_above_thresholds(rule: CalciumSTDP, delta_t, frequency=1.0):
    """Time [ms] per period that the calcium of a synapse spends above `theta_d` and
    above `theta_p` in the periodic steady state of pairs at `frequency` [Hz] with
    `delta_t` = t_post - t_pre [ms] (the presynaptic calcium arriving `delay` after
    the presynaptic spike). Exact (piecewise exponential calcium)."""
    period = 1000.0 / frequency
    d = jnp.mod(delta_t - rule.delay, period)  # post calcium jump after the pre one
    e_all = jnp.exp(-period / rule.tau_ca)
    # Just after the pre jump (x1) and just after the post jump (x2), periodic.
    x1 = (rule.c_pre + rule.c_post * jnp.exp(-(period - d) / rule.tau_ca)) / (1.0 - e_all)
    x2 = rule.c_post + x1 * jnp.exp(-d / rule.tau_ca)

    def above(theta):
        seg = lambda x, length: jnp.minimum(length, rule.tau_ca * jnp.log(jnp.maximum(x / theta, 1.0)))
        return seg(x1, d) + seg(x2, period - d)

    return above(rule.theta_d), above(rule.theta_p)


def calcium_stdp_change(rule: CalciumSTDP, delta_t, frequency=1.0, n_pairs=60, beta=0.5):
    r"""The change in synaptic strength (after / before) from `n_pairs` pre-post pairs
    at `frequency` [Hz] with `delta_t` = t_post - t_pre [ms], in Graupner & Brunel's
    analytic approximation (their `changeInSynapticStrength`): during the protocol
    $\rho$ is an Ornstein-Uhlenbeck process with rates $\Gamma_{p,d} = \gamma_{p,d}
    \alpha_{p,d}$ ($\alpha$: the fraction of time the calcium spends above each
    threshold, `time_above_thresholds`), neglecting the cubic term; a synapse is UP
    after the protocol if $\rho > \rho_\star$. With a fraction `beta` initially DOWN,
    $b = w_{up}/w_{down}$ and the transition probabilities $U$ (DOWN to UP) and $D$
    (UP to DOWN), the change is
    $[(1-U)\beta + D(1-\beta) + b(U\beta + (1-D)(1-\beta))] / [\beta + (1-\beta) b]$.
    Differentiable in the rule's parameters and `delta_t`."""
    t_d, t_p = time_above_thresholds(rule, delta_t, frequency)
    alpha_d, alpha_p = t_d * frequency * 1e-3, t_p * frequency * 1e-3
    gp, gd = rule.gamma_p * alpha_p, rule.gamma_d * alpha_d
    rho_bar = gp / (gp + gd)
    sigma2 = (alpha_p + alpha_d) * rule.sigma ** 2 / (gp + gd)
    t_total = n_pairs / frequency * 1e3  # [ms]
    decay = jnp.exp(-t_total * (gp + gd) / rule.tau)
    spread = jnp.sqrt(sigma2 * (1.0 - decay ** 2))
    up = 0.5 * (1.0 + jax.scipy.special.erf(-(rule.rho_star - rho_bar + rho_bar * decay) / spread))
    down = 0.5 * (1.0 - jax.scipy.special.erf(-(rule.rho_star - rho_bar + (rho_bar - 1.0) * decay) / spread))
    b = rule.w_up / rule.w_down
    return (((1.0 - up) * beta + down * (1.0 - beta) + b * (up * beta + (1.0 - down) * (1.0 - beta)))
            / (beta + (1.0 - beta) * b))
