r"""The largest Lyapunov exponent of a rate network, from the model's own vector field.

Sompolinsky, Crisanti & Sommers (1988): in $\dot x = -x + J \tanh(x)$ with
$J_{ij} \sim \mathcal N(0, g^2/N)$ the quiet state is stable for $g < 1$ and the
activity is chaotic for $g > 1$ (REFERENCES.md §13). The sign of the largest Lyapunov
exponent tells the two apart.
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
    args = _args(model)

    def rk4(u):
        k1 = _field(u, args)
        k2 = _field(u + 0.5 * dt * k1, args)
        k3 = _field(u + 0.5 * dt * k2, args)
        k4 = _field(u + dt * k3, args)
        return u + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    def body(carry, _):
        u, v = carry
        u, v = jax.jvp(rk4, (u,), (v,))
        norm = jnp.linalg.norm(v)
        return (u, v / norm), jnp.log(norm)

    carry, _ = jax.lax.scan(body, (u0, v0), None, length=n_skip)
    _, logs = jax.lax.scan(body, carry, None, length=n_avg)
    return jnp.sum(logs) / (n_avg * dt)
