r"""Lyapunov exponents of a rate network, from the model's own vector field.

Sompolinsky, Crisanti & Sommers (1988): in $\dot x = -x + J \tanh(x)$ with
$J_{ij} \sim \mathcal N(0, g^2/N)$ the quiet state is stable for $g < 1$ and the
activity is chaotic for $g > 1$ (REFERENCES.md §13). The sign of the largest Lyapunov
exponent tells the two apart; the spectrum (`lyapunov_spectrum`, Benettin et al. 1980
QR method) gives the attractor's dimension and entropy rate as well.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._misc import check_range
from ..network import NetworkModel
from .steady_states import _args, _as_vector, _field, check_rate_network, state_vector


def lyapunov_exponent(
    model: NetworkModel,
    duration: float,
    dt: float,
    *,
    key: PRNGKeyArray,
    u0: Float[ArrayLike, " N"] | None = None,
    transient: float = 0.0,
    scale: float = 1.0,
) -> Float[Array, ""]:
    r"""The largest Lyapunov exponent [1/ms] of the network's flow.

    The state is integrated with classical RK4 at step `dt`, and a tangent vector with
    the exact linearisation of that RK4 map (`jax.jvp` of the step: the model's own
    Jacobian, no finite differences); the tangent is renormalised every step and the
    exponent is the mean growth rate of its log-norm after `transient`:
    $\lambda = \frac{1}{T} \sum_k \log \|\delta u_{k+1}\| / \|\delta u_k\|$.
    The estimate converges as $T \to \infty$; for a stable fixed point it tends to the
    largest real part of the Jacobian's eigenvalues there.

    **Arguments:**

    - `model`: A built rate network.
    - `duration`: Integration time $T$ [ms] after `transient`.
    - `dt`: RK4 step [ms], small against the fastest time constant.
    - `key`: PRNG key for the initial tangent vector and, without `u0`, for the initial
      state ($u_0$ = `state_vector(model)` plus Gaussian noise of s.d. `scale`).
    - `u0`: Initial state (flat state vector) [state units].
    - `transient`: Time [ms] integrated (and renormalised) before the average starts.
    - `scale`: S.d. of the random initial state around the resting state [state units].

    **Returns:** the exponent [1/ms] (a scalar array; `jit`/`vmap` over models work).
    """
    check_rate_network(model)
    check_range(duration, "duration", "ms", low=0.0, low_open=True)
    check_range(dt, "dt", "ms", low=0.0, low_open=True)
    check_range(transient, "transient", "ms", low=0.0)
    n_avg, n_skip = round(float(duration) / float(dt)), round(float(transient) / float(dt))
    if n_avg < 1:
        raise ValueError(f"duration [ms] must cover at least one step of dt = {dt:g} ms.")
    k_state, k_tangent = jax.random.split(key)
    base = state_vector(model)
    if u0 is None:
        u0 = base + scale * jax.random.normal(k_state, base.shape)
    else:
        u0 = _as_vector(model, u0, "u0")
    v0 = jax.random.normal(k_tangent, base.shape)
    return _lyapunov(model, u0, v0 / jnp.linalg.norm(v0), jnp.asarray(dt, dtype=float),
                     n_skip, n_avg)


@eqx.filter_jit
def _lyapunov(model, u0, v0, dt, n_skip, n_avg):
    rk4 = _rk4(model, dt)

    def body(carry, _):
        u, v = carry
        u, v = jax.jvp(rk4, (u,), (v,))
        norm = jnp.linalg.norm(v)
        return (u, v / norm), jnp.log(norm)

    carry, _ = jax.lax.scan(body, (u0, v0), None, length=n_skip)
    _, logs = jax.lax.scan(body, carry, None, length=n_avg)
    return jnp.sum(logs) / (n_avg * dt)


def lyapunov_spectrum(
    model: NetworkModel,
    duration: float,
    dt: float,
    n_exponents: int | None = None,
    *,
    key: PRNGKeyArray,
    u0: Float[ArrayLike, " N"] | None = None,
    transient: float = 0.0,
    scale: float = 1.0,
    orthonormalize_every: int = 1,
) -> Float[Array, " k"]:
    r"""The `n_exponents` largest Lyapunov exponents [1/ms] of the network's flow, in
    decreasing order (Benettin, Galgani, Giorgilli & Strelcyn 1980; the QR method).

    The state is integrated with classical RK4 at step `dt` as in `lyapunov_exponent`,
    and $k$ tangent vectors with the exact linearisation of that RK4 map (one
    `jax.linearize` per step, applied to all $k$ columns at once: the model's own
    Jacobian, no finite differences). Every `orthonormalize_every` steps the tangent
    matrix is re-orthonormalised by a QR decomposition, $Q R = V$, and
    $\lambda_i = \frac{1}{T}\sum \log |R_{ii}|$ over the averaging time $T$ =
    `duration`. With $k = N$ the exponents sum to the mean of $\log|\det D\Phi|/dt$
    of the RK4 map (phase-space contraction; tested). At a stable fixed point they
    tend to the real parts of the Jacobian's eigenvalues.

    **Arguments:**

    - `model`: A built rate network.
    - `duration`: Averaging time $T$ [ms] after `transient`.
    - `dt`: RK4 step [ms], small against the fastest time constant.
    - `n_exponents`: How many exponents (the largest ones), 1 to N; default N.
    - `key`: PRNG key for the initial tangent vectors and, without `u0`, for the
      initial state ($u_0$ = `state_vector(model)` plus Gaussian noise of s.d. `scale`).
    - `u0`: Initial state (flat state vector) [state units].
    - `transient`: Time [ms] integrated (and orthonormalised) before the average starts.
    - `scale`: S.d. of the random initial state around the resting state [state units].
    - `orthonormalize_every`: Steps between QR decompositions (>= 1); larger is cheaper
      but must stay below the steps over which tangent vectors align or overflow.

    **Returns:** the exponents [1/ms], shape `(n_exponents,)`, decreasing.
    """
    check_rate_network(model)
    check_range(duration, "duration", "ms", low=0.0, low_open=True)
    check_range(dt, "dt", "ms", low=0.0, low_open=True)
    check_range(transient, "transient", "ms", low=0.0)
    base = state_vector(model)
    n = base.shape[0]
    k = n if n_exponents is None else n_exponents
    if not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(
            f"n_exponents must be an integer in [1, {n}] (the state dimension), got {k!r}."
        )
    if not isinstance(orthonormalize_every, int) or orthonormalize_every < 1:
        raise ValueError(
            f"orthonormalize_every [steps] must be an integer >= 1, got {orthonormalize_every!r}."
        )
    every = orthonormalize_every
    n_avg = round(float(duration) / (float(dt) * every))
    n_skip = round(float(transient) / (float(dt) * every))
    if n_avg < 1:
        raise ValueError(
            f"duration [ms] must cover at least one orthonormalisation interval "
            f"({every} steps of dt = {dt:g} ms)."
        )
    k_state, k_tangent = jax.random.split(key)
    if u0 is None:
        u0 = base + scale * jax.random.normal(k_state, base.shape)
    else:
        u0 = _as_vector(model, u0, "u0")
    q0, _ = jnp.linalg.qr(jax.random.normal(k_tangent, (n, k), dtype=base.dtype))
    return _spectrum(model, u0, q0, jnp.asarray(dt, dtype=float), every, n_skip, n_avg)


@eqx.filter_jit
def _spectrum(model, u0, q0, dt, every, n_skip, n_avg):
    rk4 = _rk4(model, dt)

    def advance(carry, _):
        u, v = carry
        u, tangent = jax.linearize(rk4, u)
        return (u, jax.vmap(tangent, in_axes=1, out_axes=1)(v)), None

    def block(carry, _):
        carry, _ = jax.lax.scan(advance, carry, None, length=every)
        u, v = carry
        q, r = jnp.linalg.qr(v)
        d = jnp.diagonal(r)
        # Keep Q's orientation continuous (R with a positive diagonal).
        q = q * jnp.sign(jnp.where(d == 0, 1.0, d))[None, :]
        return (u, q), jnp.log(jnp.abs(d))

    carry, _ = jax.lax.scan(block, (u0, q0), None, length=n_skip)
    _, logs = jax.lax.scan(block, carry, None, length=n_avg)
    exponents = jnp.sum(logs, axis=0) / (n_avg * every * dt)
    return jnp.sort(exponents)[::-1]


def _rk4(model, dt):
    args = _args(model)

    def rk4(u):
        k1 = _field(u, args)
        k2 = _field(u + 0.5 * dt * k1, args)
        k3 = _field(u + 0.5 * dt * k2, args)
        k4 = _field(u + dt * k3, args)
        return u + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    return rk4
