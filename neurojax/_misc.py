"""Private helpers: parameter conversion and validation with clear errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when `x` holds concrete values (not a tracer), so it can be checked in Python."""
    return not isinstance(x, jax.core.Tracer)


def _describe(x: np.ndarray) -> str:
    if x.size == 1:
        return repr(float(x.reshape(())))
    return f"an array with min {np.nanmin(x):g}, max {np.nanmax(x):g}"


def check_range(
    value: Any,
    name: str,
    unit: str,
    *,
    low: float | int = -math.inf,
    high: float | int = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> None:
    """Raise a `ValueError` naming `name`, its `unit` and the allowed range if a
    concrete `value` is NaN, infinite (unless `allow_inf`, e.g. "no cap") or lies
    outside the range. Traced values pass unchecked."""
    if not is_concrete(value):
        return
    x = np.asarray(value, dtype=float)
    lo = "(" if low_open else "["
    hi = ")" if (high_open or math.isinf(high)) else "]"
    lo = "(" if math.isinf(low) else lo
    allowed = f"{lo}{low:g}, {high:g}{hi}"
    unit_s = f" [{unit}]" if unit else ""
    if np.any(np.isnan(x)):
        raise ValueError(f"{name}{unit_s} contains NaN; allowed range is {allowed}.")
    if not allow_inf and np.any(np.isinf(x)):
        raise ValueError(f"{name}{unit_s} must be finite and lie in {allowed}, got {_describe(x)}.")
    bad_low = (x <= low) if low_open else (x < low)
    bad_high = (x >= high) if high_open else (x > high)
    if np.any(bad_low) or np.any(bad_high):
        raise ValueError(
            f"{name}{unit_s} must lie in {allowed}, got {_describe(x)}."
        )


def param(
    name: str,
    unit: str,
    *,
    low: float | int = -math.inf,
    high: float | int = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> Callable[[Any], jax.Array]:
    """An equinox field converter: `jnp.asarray` plus a range check with a clear error."""

    def convert(value: Any) -> jax.Array:
        check_range(
            value, name, unit, low=low, high=high, low_open=low_open, high_open=high_open,
            allow_inf=allow_inf,
        )
        if isinstance(value, jax.Array):
            return value
        arr = np.asarray(value)
        if arr.dtype.kind in "iub":
            return jnp.asarray(value, dtype=float)
        return jnp.asarray(value)

    return convert


def positive(name: str, unit: str) -> Callable[[Any], jax.Array]:
    """Converter for a strictly positive parameter (time constants, capacitances)."""
    return param(name, unit, low=0.0, low_open=True)


def nonnegative(name: str, unit: str) -> Callable[[Any], jax.Array]:
    """Converter for a non-negative parameter (conductances, refractory periods)."""
    return param(name, unit, low=0.0)


def finite(name: str, unit: str) -> Callable[[Any], jax.Array]:
    """Converter for any finite real parameter (potentials, currents)."""
    return param(name, unit)


def check_shape(value: jax.Array, n: int, name: str) -> None:
    """A population parameter must be a scalar or have shape `(n,)`."""
    shape = jnp.shape(value)
    if shape not in ((), (n,), (1,)):
        raise ValueError(
            f"{name} must be a scalar or have shape ({n},) (one value per neuron), "
            f"got shape {shape}."
        )


def check_dt(dt: Any, name: str = "dt") -> float:
    """`dt` must be a concrete positive finite float [ms]."""
    if not is_concrete(dt):
        raise ValueError(
            f"{name} [ms] must be a concrete Python float (it fixes the number of steps "
            "and delay buffers), not a traced value; mark it static under jit."
        )
    dt_f = float(dt)
    if not (math.isfinite(dt_f) and dt_f > 0.0):
        raise ValueError(f"{name} [ms] must lie in (0, inf), got {dt_f!r}.")
    return dt_f


def min_concrete(x: Any) -> float | None:
    """Smallest value of a concrete array, or None when traced."""
    if not is_concrete(x):
        return None
    return float(np.min(np.asarray(x)))


def check_time_constant_vs_dt(tau: Any, dt: float, name: str, factor: float = 1.0) -> None:
    """Raise if `dt` exceeds `factor` times the time constant `tau` [ms]: the step would
    skip over the dynamics that the time constant describes."""
    tmin = min_concrete(tau)
    if tmin is not None and dt > factor * tmin:
        raise ValueError(
            f"dt [ms] = {dt:g} is too large for {name} [ms] = {tmin:g}: "
            f"dt must lie in (0, {factor * tmin:g}]."
        )


def steps_for(duration: float, dt: float, name: str = "duration") -> int:
    """Number of steps of length `dt` in `duration`; both [ms]. Must divide exactly."""
    check_range(duration, name, "ms", low=0.0, low_open=True)
    n = round(float(duration) / dt)
    if n < 1 or not math.isclose(n * dt, float(duration), rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            f"{name} [ms] = {duration:g} must be a positive multiple of dt [ms] = {dt:g}."
        )
    return n


def check_order(low, high, low_name: str, high_name: str) -> None:
    """Raise a `ValueError` unless concrete `low` lies below `high` (both [mV])."""
    if is_concrete(low) and is_concrete(high):
        if np.any(np.asarray(low) >= np.asarray(high)):
            raise ValueError(
                f"{low_name} [mV] must lie below {high_name} [mV], got "
                f"{low_name}={np.asarray(low)!s} and {high_name}={np.asarray(high)!s}."
            )
