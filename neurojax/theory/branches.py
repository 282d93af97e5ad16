r"""Natural-parameter continuation of a fixed point over an input or a parameter."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Int

from ..network import NetworkModel
from .steady_states import (
    _args,
    _as_vector,
    _field,
    _jacobian,
    _newton,
    _population_index,
    _sorted_eigenvalues,
    _tolerances,
    check_rate_network,
    classify,
    fixed_point,
    rates,
    with_extra_drive,
)


class Branch(eqx.Module):
    """A branch of fixed points traced by `continuation`, one row per value.

    **Fields:**

    - `values`: The parameter values, `(k,)` [the parameter's unit].
    - `states`: Fixed points, `(k, N)` [state units].
    - `rates`: Rates at them, `(k, N)` [rate units].
    - `converged`: Newton converged with a small residual, `(k,)`.
    - `eigenvalues`: Jacobian eigenvalues [1/ms], largest real part first, `(k, N)`.
    - `kind`: Index into `nj.theory.KINDS`, `(k,)`.
    - `stable`: All eigenvalues with negative real part, `(k,)`.
    """

    values: Float[Array, "*batch k"]
    states: Float[Array, "*batch k N"]
    rates: Float[Array, "*batch k N"]
    converged: Bool[Array, "*batch k"]
    eigenvalues: Complex[Array, "*batch k N"]
    kind: Int[Array, "*batch k"]
    stable: Bool[Array, "*batch k"]


def continuation(
    model: NetworkModel,
    parameter: str | Callable[[NetworkModel, Array], NetworkModel],
    values: Float[ArrayLike, " k"],
    *,
    initial_guess: Float[ArrayLike, " N"] | None = None,
    relax_first: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 256,
    tol: float | None = None,
) -> Branch:
    r"""Trace a fixed point over `values` of an input or a parameter, each solve
    warm-started at the previous point (one `lax.scan` of Newton solves), with the
    Jacobian's eigenvalues and the stability along the branch.

    The first point is `fixed_point(set(model, values[0]), initial_guess)` (relaxed to
    the stable point in the guess's basin when `relax_first`); the others continue
    from it. Natural-parameter continuation follows the branch while it exists: past a
    fold (saddle-node) the solve jumps to another branch or fails, which `converged`
    and a jump in `states` reveal; use steps small against the distance to a fold.

    Differentiable with respect to the model's parameters (each Newton solve has an
    implicit adjoint), and `jax.vmap`pable over models.

    **Arguments:**

    - `model`: A built rate network.
    - `parameter`: A population name: `values` are an extra constant drive to it (in
      its input units, see `with_extra_drive`); or a function `(model, value) -> model`
      that sets the parameter, e.g.
      `lambda m, h: eqx.tree_at(lambda m: m.inputs[0].amplitude, m, h)`.
    - `values`: The parameter values, shape `(k,)`, in the order to follow them.
    - `initial_guess`: Start of the first solve (flat state vector). Default: the
      initial state.
    - `relax_first`: Relax to a stable point for the first value (otherwise Newton from
      the guess).
    - `rtol`, `atol`, `max_steps`: Newton's tolerances and iteration limit (defaults
      as in `fixed_points`).
    - `tol`: Residual $|du/dt|$ [state units/ms] above which a point is not converged
      (default 1e-6 in float64, 1e-3 in float32).

    **Returns:** a `Branch`.

    !!! example
        ```python
        branch = nj.theory.continuation(model, "E", jnp.linspace(0.0, 20.0, 41))
        branch.rates[:, 0], branch.stable
        ```
    """
    check_rate_network(model)
    rtol, atol, tol = _tolerances(rtol, atol, tol)
    if isinstance(parameter, str):
        _population_index(model, parameter, "parameter")
        setter = _ExtraDrive(parameter)
    elif callable(parameter):
        setter = parameter
    else:
        raise ValueError(
            "parameter must be a population name or a function (model, value) -> model, "
            f"got {type(parameter).__name__}."
        )
    values = jnp.asarray(values, dtype=float)
    if values.ndim != 1 or values.shape[0] < 1:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {values.shape}.")
    first = setter(model, values[0])
    check_rate_network(first, "parameter(model, value)")
    guess = None if initial_guess is None else _as_vector(model, initial_guess, "initial_guess")
    u0 = fixed_point(first, guess, relax=relax_first)
    return _continue(model, setter, values, u0, rtol, atol, max_steps, tol)


class _ExtraDrive(eqx.Module):
    # A hashable setter (equal for equal names), so repeated calls reuse a compilation.
    name: str = eqx.field(static=True)

    def __call__(self, model: NetworkModel, value: Array) -> NetworkModel:
        return with_extra_drive(model, self.name, value)


@eqx.filter_jit
def _continue(model, setter, values, u0, rtol, atol, max_steps, tol):
    def body(u_prev, v):
        m = setter(model, v)
        args = _args(m)
        u, ok = _newton(u_prev, args, rtol, atol, max_steps)
        ok = ok & (jnp.max(jnp.abs(_field(u, args))) <= tol) & jnp.all(jnp.isfinite(u))
        ev = _sorted_eigenvalues(_jacobian(u, args))
        # Keep the last good point as the next warm start.
        return jnp.where(ok, u, u_prev), (u, rates(m, u), ok, ev, classify(ev))

    _, (u, r, ok, ev, kind) = jax.lax.scan(body, u0, values)
    return Branch(values, u, r, ok, ev, kind, jnp.all(ev.real < 0, axis=-1))
