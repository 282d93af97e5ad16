r"""`fit_steady_states`: fit a rate network's parameters to target steady-state responses
(tuning curves at several stimulus conditions) from many initialisations in one
vmapped, jit-compiled run.

For each initialisation $k$ and condition $c$ (a contrast, an orientation), the network
`set_condition(model_k, c)` has a fixed point $u^*_{kc}$ with rates $r^*_{kc}$; the
loss of initialisation $k$ is the mean squared difference between $r^*_{kc}$ and the
targets over conditions and neurons. Its gradient comes from the implicit function
theorem at the fixed point ($du^*/d\theta = -J^{-1}\partial F/\partial\theta$,
optimistix's implicit adjoint), never from backpropagation through a simulation. Each
optimiser step solves $F(u) = 0$ by Newton's method from the previous step's fixed
point (the parameters moved little), so a step costs a few Newton iterations; a step
after which Newton fails (the update jumped off the branch of fixed points) is
rejected and retried at half the size, so a fit never leaves the branch it starts on; the
first fixed points come from `nj.theory.fixed_point` (relaxation, then Newton), which
selects the stable state the network settles in from rest.

Renner et al. 2020 style connectivity inference (the SSN fitted to tuning data, with
many initialisations to see which weight relations the data pin down) is the main use:
see `tutorials/ssn_inference.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from .. import theory
from .constraints import trainable as _trainable


@dataclasses.dataclass(frozen=True)
class SteadyStateFit:
    """What `fit_steady_states` returns; `K` initialisations, `C` conditions, `N` neurons.

    - `models`: The fitted models, stacked along a leading axis of size `K` (index one
      with `jax.tree.map(lambda x: x[k], models)` or `eqx.filter_vmap`).
    - `losses`: Mean squared error [rate units², e.g. Hz²] of every step and
      initialisation, shape `(steps, K)`.
    - `rates`: Fixed-point rates of the fitted models, shape `(K, C, N)`.
    - `explained_variance`: $1 - \\sum (r - y)^2 / \\sum (y - \\bar y)^2$ of the final
      rates against the targets, over all conditions and neurons, shape `(K,)`.
    - `max_eigenvalue`: Largest real part of the Jacobian's eigenvalues at each final
      fixed point [1/ms], shape `(K, C)`; negative where the fitted state is stable.
    - `converged`: Whether Newton's method converged at the accepted parameters of
      every step, shape `(K,)`. (A proposed step whose fixed points Newton cannot find
      from the previous ones is rejected and retried at half the size.)
    """

    models: Any
    losses: np.ndarray
    rates: np.ndarray
    explained_variance: np.ndarray
    max_eigenvalue: np.ndarray
    converged: np.ndarray

    @property
    def stable(self) -> np.ndarray:
        """Whether each fit's fixed points are all stable, shape `(K,)`."""
        return np.all(self.max_eigenvalue < 0, axis=1)


def _field(u, model):
    return theory.vector_field(model)(u)


def _newton(model, u0, max_steps):
    tol = 1e-10 if u0.dtype == jnp.float64 else 1e-5
    sol = optx.root_find(_field, optx.Newton(rtol=tol, atol=tol), u0, args=model,
                         max_steps=max_steps, throw=False)
    return sol.value, sol.result == optx.RESULTS.successful


def _leading(tree, name: str) -> int:
    sizes = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in jax.tree.leaves(tree)}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"fit_steady_states {name}: every array must share one leading axis; "
                         f"got leading sizes {sorted(sizes)}.")
    return sizes.pop()


def fit_steady_states(
    models: Any,
    set_condition: Callable[[Any, Any], Any],
    conditions: Any,
    targets: Any,
    optimizer: Any,
    steps: int,
    *,
    trainable: Any = None,
    newton_steps: int = 32,
) -> SteadyStateFit:
    r"""Fit rate networks to target fixed-point rates, every initialisation at once.

    **Arguments:**

    - `models`: `K` built rate networks (`NetworkModel`s accepted by
      `nj.theory.fixed_point`, constrained with `nj.train.constrain` or not) stacked
      along a leading axis, e.g. `eqx.filter_vmap(make)(jax.random.split(key, K))`:
      the initialisations.
    - `set_condition`: `set_condition(model, condition) -> model`, the network under
      one stimulus condition (e.g. its input amplitudes set for a contrast).
    - `conditions`: A pytree of arrays with a leading axis of `C` conditions.
    - `targets`: Target rates [the populations' rate units, e.g. Hz], shape `(C, N)` in
      the order of `nj.theory.rates` (populations in model order).
    - `optimizer`: An optax `GradientTransformation`, e.g. `optax.adam(0.02)`.
    - `steps`: Optimiser steps, an integer in [1, inf).
    - `trainable`: Filter spec of the leaves that train (like `nj.train.fit`), built
      for one model, e.g. `nj.train.trainable(model, "*.weight*")`; default every
      parameter of `nj.train.trainable`.
    - `newton_steps`: Newton iterations allowed per solve, an integer in [1, inf).

    Runs as one `jax.jit`-compiled `lax.scan` over steps of a `vmap` over
    initialisations (and conditions). Returns a `SteadyStateFit`.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"fit_steady_states steps [optimiser steps] must be an integer in [1, inf), got {steps!r}.")
    if (isinstance(newton_steps, bool) or not isinstance(newton_steps, (int, np.integer))
            or newton_steps < 1):
        raise ValueError("fit_steady_states newton_steps [iterations] must be an integer in "
                         f"[1, inf), got {newton_steps!r}.")
    k = _leading(eqx.filter(models, eqx.is_array), "models")
    c = _leading(conditions, "conditions")
    targets = jnp.asarray(targets, dtype=float)
    first = jax.tree.map(lambda x: x[0] if eqx.is_array(x) else x, models)
    n = int(theory.rates(first, theory.state_vector(first)).shape[0])
    if targets.shape != (c, n):
        raise ValueError(f"fit_steady_states targets [rates] must have shape (conditions, neurons) "
                         f"= ({c}, {n}), got {targets.shape}.")

    spec = _trainable(first) if trainable is None else trainable
    params, static = eqx.partition(models, spec)
    params, extra = eqx.partition(params, eqx.is_inexact_array)
    static = eqx.combine(static, extra)
    if not jax.tree.leaves(params):
        raise ValueError("fit_steady_states: nothing to train (no float array leaf is trainable).")
    arrays, config = eqx.partition(static, eqx.is_array)

    def model_of(p, a):
        return eqx.combine(p, a, config)

    def solve_all(m, u0):
        def one(cond, u):
            mc = set_condition(m, cond)
            u, ok = _newton(mc, u, newton_steps)
            return theory.rates(mc, u), u, ok
        return jax.vmap(one)(conditions, u0)

    def loss(p, a, u0):
        r, u, ok = solve_all(model_of(p, a), u0)
        return jnp.mean((r - targets) ** 2), (u, jnp.all(ok))

    def step(p, a, u0, opt_state, scale):
        # The loss and its gradient at the accepted parameters `p` (whose fixed points
        # `u0` are known), then a proposed update scaled by `scale`, accepted only if
        # Newton's method finds the fixed points of the new parameters from `u0`: a
        # rejected step halves `scale` and leaves `p`, `u0` and the optimiser state as
        # they were (a backtracking guard against jumping off the branch); an accepted
        # one doubles it back towards 1.
        (value, (u0, ok0)), g = jax.value_and_grad(loss, has_aux=True)(p, a, u0)
        updates, new_state = optimizer.update(g, opt_state, p)
        new_p = eqx.apply_updates(p, jax.tree.map(lambda x: scale * x, updates))
        _, u_new, ok_new = solve_all(model_of(new_p, a), u0)
        finite = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves((g, new_p, u_new))]
        ok = ok0 & jnp.all(ok_new) & jnp.isfinite(value) & jnp.all(jnp.stack(finite))
        keep = lambda new, old: jax.tree.map(lambda x, y: jnp.where(ok, x, y), new, old)
        scale = jnp.where(ok, jnp.minimum(2 * scale, 1.0), 0.5 * scale)
        return keep(new_p, p), keep(u_new, u0), keep(new_state, opt_state), scale, value, ok0

    @jax.jit
    def run(params, arrays):
        def start(p, a):
            m = model_of(p, a)
            return jax.vmap(lambda cond: theory.fixed_point(set_condition(m, cond)))(conditions)

        u0 = jax.vmap(start)(params, arrays)
        opt_state = jax.vmap(optimizer.init)(params)

        def body(carry, _):
            p, u, s, scale, ok_all = carry
            p, u, s, scale, value, ok = jax.vmap(step)(p, arrays, u, s, scale)
            return (p, u, s, scale, ok_all & ok), value

        carry = (params, u0, opt_state, jnp.ones(k), jnp.ones(k, bool))
        (p, u, _, _, ok_all), losses = jax.lax.scan(body, carry, None, length=steps)

        def final(p, a, u):
            m = model_of(p, a)

            def one(cond, u):
                mc = set_condition(m, cond)
                return theory.rates(mc, u), jnp.max(theory.eigenvalues(mc, u).real)
            return jax.vmap(one)(conditions, u)

        r, ev = jax.vmap(final)(p, arrays, u)
        return p, losses, r, ev, ok_all

    p, losses, r, ev, ok = run(params, arrays)
    r = np.asarray(r)
    y = np.asarray(targets)
    resid = np.sum((r - y[None]) ** 2, axis=(1, 2))
    explained = 1.0 - resid / np.sum((y - y.mean()) ** 2)
    return SteadyStateFit(
        models=eqx.combine(p, static),
        losses=np.asarray(losses),
        rates=r,
        explained_variance=explained,
        max_eigenvalue=np.asarray(ev),
        converged=np.asarray(ok),
    )
