r"""Inhibition stabilisation and the paradoxical response (Tsodyks, Skaggs, Sejnowski &
McNaughton 1997; Ozeki et al. 2009; Sanzeni et al. 2020).

A network is *inhibition-stabilised* (ISN) at a fixed point when its excitatory
sub-network, with inhibition held fixed at its steady level, would be unstable on its
own, while the full network is stable: the E-E block $J_{EE}$ of the Jacobian has an
eigenvalue with positive real part, and every eigenvalue of the full Jacobian $J$ has a
negative one. In a 2-population threshold-linear network this is $\beta J_{ee} > 1$;
in the SSN it is $W_{EE}\, f'(V_E) > 1$ (REFERENCES.md §§7, 8).

The signature of an ISN is the *paradoxical response*: extra excitatory drive to the
inhibitory population lowers its steady rate. `paradoxical_response` computes the
change of every population's steady rate when one population gets extra drive, by
linear response ($\Delta u^* = -J^{-1}\,\partial F/\partial \delta\ \delta$) or by
solving for the new fixed point.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from .._misc import check_range
from ..network import NetworkModel
from .steady_states import (
    _args,
    _as_vector,
    _field,
    _jacobian,
    _names,
    _population_index,
    by_population,
    check_rate_network,
    fixed_point,
    population_slices,
    rates,
    with_extra_drive,
)


class ISN(eqx.Module):
    """The result of `is_isn`.

    **Fields:**

    - `isn`: Inhibition-stabilised: `ee_max_real > 0` and `stable`.
    - `stable`: Every eigenvalue of the full Jacobian has negative real part.
    - `ee_max_real`: Largest real part of the eigenvalues of the E-E block [1/ms]
      (positive: the excitatory sub-network alone is unstable).
    - `max_real`: Largest real part of the full Jacobian's eigenvalues [1/ms].
    """

    isn: Bool[Array, "*batch"]
    stable: Bool[Array, "*batch"]
    ee_max_real: Float[Array, "*batch"]
    max_real: Float[Array, "*batch"]

    def __repr__(self) -> str:  # the values, not equinox's shapes (`ISN(isn=bool[], ...)`)
        return eqx.tree_pformat(self, short_arrays=False)


def _indices(model: NetworkModel, names) -> jnp.ndarray:
    slices = population_slices(model)
    idx = [i for k in names for i in range(slices[model.names[k]].start,
                                            slices[model.names[k]].stop)]
    return jnp.asarray(idx, dtype=jnp.int32)


def is_isn(
    model: NetworkModel,
    fixed_point: Float[ArrayLike, " N"],
    excitatory: str | Sequence[str] = "E",
) -> ISN:
    r"""The ISN test at `fixed_point`: the excitatory sub-network alone unstable
    (its Jacobian block has an eigenvalue with positive real part) while the full
    network is stable.

    **Arguments:**

    - `model`: A built rate network.
    - `fixed_point`: A flat state vector (from `fixed_point` / `fixed_points`).
    - `excitatory`: Name(s) of the excitatory populations (default `"E"`).

    **Returns:** an `ISN`.
    """
    check_rate_network(model)
    u = _as_vector(model, fixed_point, "fixed_point")
    return _is_isn(model, u, _indices(model, _names(model, excitatory, "excitatory")))


@eqx.filter_jit
def _is_isn(model, u, idx):
    jac = _jacobian(u, _args(model))
    ee = jac[idx][:, idx]
    ee_max = jnp.max(jnp.linalg.eigvals(ee).real)
    full_max = jnp.max(jnp.linalg.eigvals(jac).real)
    stable = full_max < 0
    return ISN(isn=(ee_max > 0) & stable, stable=stable, ee_max_real=ee_max,
               max_real=full_max)


def paradoxical_response(
    model: NetworkModel,
    population: str,
    delta: Float[ArrayLike, "*n"],
    *,
    fixed_point: Float[ArrayLike, " N"] | None = None,
    method: str = "linear",
) -> dict[str, Array]:
    r"""The change of every population's steady rate when `population` gets an extra
    constant drive `delta`.

    `method="linear"`: linear response at the fixed point,
    $\Delta r = \frac{\partial r}{\partial u}\, J^{-1}\, \frac{\partial F}{\partial \delta}\,(-\delta)$,
    i.e. `delta` times the derivative of the steady rates with respect to the drive
    (exact in the limit of small `delta`; in threshold-linear networks exact as long as
    no unit crosses a threshold or a cap).
    `method="solve"`: the difference of the rates at the fixed point with the extra
    drive, found by relaxing from the old one (the state a simulation would settle in),
    and at the old one.

    **Arguments:**

    - `model`: A built rate network.
    - `population`: Name of the population that gets the extra drive.
    - `delta`: Extra drive [that population's input units: pA for the Abbott–Chance
      units of the V1 model, mV for the SSN, ...], scalar or one value per neuron.
      Must be finite.
    - `fixed_point`: The fixed point to respond from (a flat state vector). Default:
      `fixed_point(model)`, the stable point reached from the initial state.
    - `method`: `"linear"` or `"solve"`.

    **Returns:** a dict from population name to the change of its rates [rate units],
    each of shape `(n,)`.

    !!! example
        ```python
        d = nj.theory.paradoxical_response(model, "I", 0.1)
        bool(d["I"][0] < 0)       # paradoxical: more drive to I, less I activity
        ```
    """
    check_rate_network(model)
    _population_index(model, population, "population")
    check_range(delta, "delta", "input units")
    if method not in ("linear", "solve"):
        raise ValueError(f"method must be 'linear' or 'solve', got {method!r}.")
    delta = jnp.asarray(delta, dtype=float)
    if fixed_point is None:
        u = _fixed_point_default(model)
    else:
        u = _as_vector(model, fixed_point, "fixed_point")
    if method == "linear":
        dr = _linear_response(model, population, delta, u)
    else:
        moved = with_extra_drive(model, population, delta)
        u1 = _fixed_point_default(moved, u)
        dr = rates(model, u1) - rates(model, u)
    return by_population(model, dr)


def _fixed_point_default(model, guess=None):
    return fixed_point(model, guess)


@eqx.filter_jit
def _linear_response(model, population, delta, u):
    def field_with(d):
        return _field(u, _args(with_extra_drive(model, population, d)))

    zero = jnp.zeros_like(delta)
    # dF/d(delta) . delta: a JVP, so delta may be a scalar or per-neuron.
    _, df = jax.jvp(field_with, (zero,), (delta,))
    jac = _jacobian(u, _args(model))
    du = -jnp.linalg.solve(jac, df)
    _, dr = jax.jvp(lambda x: rates(model, x), (u,), (du,))
    return dr
