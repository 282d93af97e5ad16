"""Private helpers: parameter conversion and validation with clear errors.

Concrete values are checked in Python and raise a `ValueError` at once. Traced values
(a parameter swept with `vmap`, passed through `jit` or differentiated with `grad`)
cannot be checked in Python: inside a `deferred_checks()` block the same checks record
the value, its range and a message instead, and `guard` fuses all of them into one
vectorised comparison and one `eqx.branched_error_if` on a value the computation uses. `simulate` does this once per
run, before the scan (see `validate` and `NetworkModel.check`).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jax.experimental import checkify


@jax.custom_jvp
def after(x: jax.Array, dep: jax.Array) -> jax.Array:
    """`x`, bit for bit, as a value that XLA computes only once `dep` (broadcastable to
    `x`) is computed: selected on `dep > inf`, which is false for every float (NaN
    included). Its derivative passes `x`'s tangent as it is and none through `dep` (a
    custom JVP: with the select's own derivative, the gradient of a COBA run differed
    from the same run without the hint in the last bits, 1e-14 relative in float64).

    An ordering hint for XLA:CPU, where a step's thunks run in the order of their data
    dependencies. It is used (a) so that a carried array is overwritten only after its
    old value's last read, which XLA otherwise ensures by copying the array every step,
    and (b) so that work that can wait does not add to the thunks ready at the same time
    early in a step: XLA:CPU's thunk executor hands half of its ready thunks to its
    thread pool whenever more than 8 are ready at once, which on a busy 2-core machine
    costs more than it saves (plastic COBA-4k: 27.5-29.2 against 43.7-47.5 us of CPU
    per step; benchmarks/README.md, "Plasticity"). Which thunks are ready together
    depends on the whole step (and on XLA's buffer assignment), so each use is checked
    by measurement."""
    return jnp.where(dep > jnp.inf, jnp.zeros_like(x), x)


@after.defjvp
def _after_jvp(primals, tangents):
    x, dep = primals
    return after(x, dep), tangents[0]


def is_concrete(x: Any) -> bool:
    """True when `x` holds concrete values (not a tracer), so it can be checked in Python."""
    return not isinstance(x, jax.core.Tracer)


# ------------------------------------------------------------------------ runtime checks
# Inside `functional_checks()`, neurojax's runtime checks are `checkify.check`s rather
# than equinox's host callbacks (see `error_if`).
_FUNCTIONAL: contextvars.ContextVar[bool] = contextvars.ContextVar("_FUNCTIONAL", default=False)

# The message of a runtime check traced as a `checkify.check`: the caller reruns the
# failed computation with equinox's checks for the check's own message (`nj.train.fit`).
FUNCTIONAL_CHECK_MESSAGE = "a neurojax runtime check failed"


@contextlib.contextmanager
def functional_checks() -> Iterator[None]:
    """Within this block (at trace time) neurojax's runtime checks are traced as
    `jax.experimental.checkify.check`s, which the caller must functionalise: trace the
    function with `checkify.checkify` and read the returned error. `nj.train.fit`'s
    steps do this.

    Why: equinox's checks (`eqx.error_if`) call back to Python at run time, and XLA's
    CPU client runs a program that holds a host callback synchronously, in the calling
    thread: the Dale rate RNN step of benchmarks/fit_overhead.py took 1.07x the time of
    the same program without the callbacks (a 40-step scan and its gradient: 9.26 against
    8.64 ms). `checkify` threads a flag through the program instead.

    A failed check also turns its float value to NaN (`error_if`), because jax 0.10's
    `checkify` loses the checks made inside a loop that `grad` differentiates (a loss
    that runs `simulate` under `lax.map`): the NaN then reaches the loss or its
    gradient, which the caller checks too. `simulate`'s check of its final state puts
    the NaN into the gradients instead (NaN in every recording would cost a pass over
    each), so in that loop a blow-up whose outputs stay finite, such as spike trains,
    is caught through the gradients of the parameters that the network's state depends
    on, not through those of a readout alone. (`checkify` inside `grad` instead keeps
    them, but fails on custom VJPs with integer arguments, as the sparse propagation's.)
    Checks made inside a custom VJP's forward pass stay equinox's (the strict event
    buffer of `Sparse(capacity=...)`, checked in every step)."""
    token = _FUNCTIONAL.set(True)
    try:
        yield
    finally:
        _FUNCTIONAL.reset(token)


def error_if(x: Any, pred: Any, index: Any, messages: list[str] | tuple[str, ...]) -> Any:
    """`eqx.branched_error_if(x, pred, index, messages)`: `x`, with a runtime error
    carrying `messages[index]` where `pred` is true; neurojax's one way to check values
    at run time. Inside `functional_checks()` a `checkify.check` with
    `FUNCTIONAL_CHECK_MESSAGE` instead (kept whether or not `x` is used), and `x`
    (if a float array; else as it is) with NaN where any `pred` is true: `x + -0.0`
    otherwise, the identity bit for bit (see `functional_checks`)."""
    if _FUNCTIONAL.get():
        failed = jnp.any(pred)
        checkify.check(~failed, FUNCTIONAL_CHECK_MESSAGE)
        if eqx.is_inexact_array(x):
            return x + jnp.where(failed, jnp.nan, -0.0).astype(x.dtype)
        return x
    return eqx.branched_error_if(x, pred, index, messages)


def functional_checks_active() -> bool:
    """True inside `functional_checks()`."""
    return _FUNCTIONAL.get()


# ----------------------------------------------------------------------------- deferral
# Checks of traced values collected by `deferred_checks()` (`_Deferred`: value, range,
# message). `None` outside such a block, where traced values pass unchecked (e.g.
# converters that run while a module is built under jit).
_PENDING: contextvars.ContextVar[list | None] = contextvars.ContextVar("_PENDING", default=None)
# Where the values being checked live, e.g. "population 'E' (LIF)", prefixed to messages.
_WHERE: contextvars.ContextVar[str] = contextvars.ContextVar("_WHERE", default="")

_TRACED_NOTE = " (checked at run time: the value is traced under jit, vmap or grad)"


@contextlib.contextmanager
def deferred_checks() -> Iterator[list]:
    """Collect the checks of traced values made inside the block (see `guard`)."""
    token = _PENDING.set([])
    try:
        yield _PENDING.get()
    finally:
        _PENDING.reset(token)


@contextlib.contextmanager
def checking(where: str) -> Iterator[None]:
    """Name the component whose values are checked inside the block in error messages."""
    token = _WHERE.set(where)
    try:
        yield
    finally:
        _WHERE.reset(token)


def _where(message: str) -> str:
    where = _WHERE.get()
    return f"{where}: {message}" if where else message


@dataclasses.dataclass(frozen=True)
class _Deferred:
    """A traced `value` whose elements must lie in the range (see `defer`)."""

    value: Any
    low: float
    high: float
    low_open: bool
    high_open: bool
    allow_inf: bool
    message: str


def defer(
    value: Any,
    message: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> None:
    """Record a check of a traced `value`: every element must be a number in the range
    (NaN never is; infinities only with `allow_inf`). `message` names the parameter,
    its unit and the allowed range. Does nothing outside a `deferred_checks()` block."""
    pending = _PENDING.get()
    if pending is not None:
        pending.append(_Deferred(value, low, high, low_open, high_open, allow_inf,
                                 _where(message) + _TRACED_NOTE))


def _bounds(c: _Deferred, dtype: np.dtype) -> tuple[Any, Any, bool, bool]:
    """`c`'s range in `dtype` as `(low, high, low_closed, high_closed)`; without
    `allow_inf` an infinite bound becomes the largest finite number, closed, so the
    infinities fall outside the range. (Open bounds are compared as such, not moved to
    the next number: next to 0 that is a subnormal, which XLA on CPU flushes to 0.)"""
    big = np.finfo(dtype).max
    low, high = dtype.type(c.low), dtype.type(c.high)
    low_closed, high_closed = not c.low_open, not c.high_open
    if not c.allow_inf:
        if np.isinf(low):
            low, low_closed = -big, True
        if np.isinf(high):
            high, high_closed = big, True
    return low, high, low_closed, high_closed


# Checked values with more elements than this are reduced to one flag each before the
# fused check: under `jax.vmap` an unbatched value (a weight matrix) concatenated with
# batched ones (a Waveform's values) would otherwise be broadcast to the batch, copying
# and comparing it once per batch member (3x a rate RNN's forward pass, fit_overhead).
_FUSE_MAX = 1024


def guard(x: Any, checks: list) -> Any:
    """Return `x` with every deferred check attached as one fused runtime check: the
    small checked values are raveled into one vector and compared once against
    per-element bounds (large ones are each reduced to one flag first), so the compiled
    cost hardly grows with the number of checks; one `eqx.branched_error_if` raises the
    message of the first failing check. `x` must be used by the computation, or the
    check is removed with it."""
    if not checks:
        return x
    values = [jnp.ravel(jnp.asarray(c.value)) for c in checks]
    dtype = np.dtype(jnp.result_type(float, *[v.dtype for v in values]))
    small = [i for i, v in enumerate(values) if v.size <= _FUSE_MAX]
    oks, owners = [], []
    if small:
        cols: list[list[np.ndarray]] = [[], [], [], [], []]
        for i in small:
            bounds = (*_bounds(checks[i], dtype), i)
            for col, item, kind in zip(cols, bounds, (dtype, dtype, bool, bool, np.int32)):
                col.append(np.full(values[i].shape, item, kind))
        low, high, low_closed, high_closed, owner = (np.concatenate(col) for col in cols)
        oks.append(_in_range(jnp.concatenate([values[i].astype(dtype) for i in small]),
                             low, high, low_closed, high_closed))
        owners.append(owner)
    for i, v in enumerate(values):
        if v.size > _FUSE_MAX:
            c = checks[i]
            finite_only = (c.low, c.high, c.allow_inf) == (-math.inf, math.inf, False)
            if finite_only and _FUNCTIONAL.get():
                # Under `functional_checks` (`fit`'s steps) a large value that must only
                # be finite is not checked apart: a NaN or infinity in it that changes
                # the run reaches the state, whose blow-up check fails, and `fit` then
                # reruns the step with every check, this one first. (The pass over a
                # batch's Waveform values cost ~3 % of fit_overhead's step; an element
                # that never reaches the state changes no result.)
                continue
            if finite_only:
                # Finite values only: one float sum, NaN iff an element is NaN or
                # infinite (x * 0 is 0 for finite x, NaN otherwise). The comparisons
                # below are the same test, but XLA's CPU backend wrote their boolean
                # per element to memory before reducing it (a pass over a batch's
                # whole Waveform values in fit_overhead's loss).
                oks.append(jnp.isfinite(jnp.sum(v.astype(dtype) * 0))[None])
            else:
                oks.append(jnp.all(_in_range(v.astype(dtype), *_bounds(c, dtype)))[None])
            owners.append(np.array([i], np.int32))
    if not oks:
        return x
    ok = jnp.concatenate(oks)
    index = jnp.asarray(np.concatenate(owners))[jnp.argmin(ok)]
    return error_if(x, ~jnp.all(ok), index, [c.message for c in checks])


def _in_range(values, low, high, low_closed, high_closed):
    # NaN fails every comparison, so it is caught with the values out of range.
    return ((values > low) | (low_closed & (values == low))) & (
        (values < high) | (high_closed & (values == high)))


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
    outside the range. A traced value is checked at run time inside a
    `deferred_checks()` block and passes unchecked elsewhere."""
    lo = "(" if low_open else "["
    hi = ")" if (high_open or math.isinf(high)) else "]"
    lo = "(" if math.isinf(low) else lo
    allowed = f"{lo}{low:g}, {high:g}{hi}"
    unit_s = f" [{unit}]" if unit else ""
    if not is_concrete(value):
        finite_s = "" if allow_inf else "be finite and "
        defer(value, f"{name}{unit_s} must {finite_s}lie in {allowed}", low=low, high=high,
              low_open=low_open, high_open=high_open, allow_inf=allow_inf)
        return
    name = _where(name)
    try:
        x = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}{unit_s} must be a number in {allowed}, got "
                         f"{type(value).__name__} {value!r:.60}.") from None
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
    """An equinox field converter: `jnp.asarray` plus a range check with a clear error.

    The converter carries its range (`convert.range`), so that `validate` can check the
    field again where the value is used: a converter runs only when a module is built,
    not when `eqx.tree_at` replaces a leaf or a transform traces a built model."""
    spec = _Range(name, unit, low, high, low_open, high_open, allow_inf)

    def convert(value: Any) -> jax.Array:
        spec.check(value)
        if isinstance(value, jax.Array):
            return value
        arr = np.asarray(value)
        if arr.dtype.kind in "iub":
            return jnp.asarray(value, dtype=float)
        return jnp.asarray(value)

    convert.range = spec  # type: ignore[attr-defined]
    return convert


@dataclasses.dataclass(frozen=True)
class _Range:
    """The allowed range of a parameter (see `check_range`)."""

    name: str
    unit: str
    low: float | int
    high: float | int
    low_open: bool
    high_open: bool
    allow_inf: bool

    def check(self, value: Any) -> None:
        check_range(
            value, self.name, self.unit, low=self.low, high=self.high,
            low_open=self.low_open, high_open=self.high_open, allow_inf=self.allow_inf,
        )


def _submodules(value: Any) -> list:
    return [x for x in jtu.tree_leaves(value, is_leaf=lambda x: isinstance(x, eqx.Module))
            if isinstance(x, eqx.Module)]


def validate(module: Any) -> None:
    """Check every parameter of `module` (an `eqx.Module`, or a pytree of them) and of
    the modules inside it against the range of its field's converter, and run their
    `__check_init__` checks again (orderings such as `v_reset < v_th`). Concrete values
    raise a `ValueError`; traced values are deferred (see `deferred_checks`). This
    catches values that never went through a converter: leaves replaced with
    `eqx.tree_at`, batches under `vmap`, optimiser steps."""
    if not isinstance(module, eqx.Module):
        for sub in _submodules(module):
            validate(sub)
        return
    for field in dataclasses.fields(module):
        if field.metadata.get("static", False):
            continue
        value = getattr(module, field.name, None)
        spec = getattr(field.metadata.get("converter"), "range", None)
        if spec is not None and value is not None:
            spec.check(value)
        for sub in _submodules(value):
            validate(sub)
    for cls in type(module).__mro__:
        check_init = cls.__dict__.get("__check_init__")
        if check_init is not None:
            check_init(module)


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
    if tmin is None:
        if _PENDING.get() is None:
            return
        bound = name if factor == 1.0 else f"{factor:g} * ({name})"
        # factor * tau >= dt for every element (an infinite tau, e.g. no leak, is fine).
        defer(factor * jnp.asarray(tau), f"dt [ms] = {dt:g} is too large for {name} [ms]: "
              f"dt must lie in (0, {bound}]", low=dt, allow_inf=True)
    elif dt > factor * tmin:
        raise ValueError(_where(
            f"dt [ms] = {dt:g} is too large for {name} [ms] = {tmin:g}: "
            f"dt must lie in (0, {factor * tmin:g}]."
        ))


def steps_for(duration: float, dt: float, name: str = "duration") -> int:
    """Number of steps of length `dt` in `duration`; both [ms]. Must divide exactly."""
    check_range(duration, name, "ms", low=0.0, low_open=True)
    n = round(float(duration) / dt)
    if n < 1 or not math.isclose(n * dt, float(duration), rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            f"{name} [ms] = {duration:g} must be a positive multiple of dt [ms] = {dt:g}."
        )
    return n


def check_order(low, high, low_name: str, high_name: str, unit: str = "mV") -> None:
    """Raise a `ValueError` unless concrete `low` lies below `high` (both [`unit`]);
    traced values are deferred (see `deferred_checks`)."""
    if is_concrete(low) and is_concrete(high):
        if np.any(np.asarray(low) >= np.asarray(high)):
            raise ValueError(_where(
                f"{low_name} [{unit}] must lie below {high_name} [{unit}], got "
                f"{low_name}={np.asarray(low)!s} and {high_name}={np.asarray(high)!s}."
            ))
    elif _PENDING.get() is not None:
        defer(jnp.asarray(high) - jnp.asarray(low),
              f"{low_name} [{unit}] must lie below {high_name} [{unit}]",
              low=0.0, low_open=True, allow_inf=True)


def name_keywords(note: str = "") -> Callable[[type], type]:
    """Class decorator: a keyword argument the class does not take raises a `TypeError`
    that names the keywords it does take (and `note`, e.g. how related classes spell
    the same thing), instead of Python's bare "unexpected keyword argument". The
    signature seen by `inspect` and the docs stays the class's own."""

    def decorate(cls: type) -> type:
        init = cls.__init__
        accepted = [p.name for p in inspect.signature(init).parameters.values()
                    if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            unknown = [k for k in kwargs if k not in accepted]
            if unknown:
                many = len(unknown) > 1
                raise TypeError(
                    f"{cls.__name__}() got {'' if many else 'an '}unexpected keyword "
                    f"argument{'s' if many else ''} {', '.join(map(repr, unknown))}; "
                    f"{cls.__name__} takes {', '.join(accepted) or 'no keywords'}."
                    + (f" {note}" if note else "")
                )
            init(self, *args, **kwargs)

        cls.__init__ = __init__
        return cls

    return decorate
