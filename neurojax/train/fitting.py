r"""`fit`: optimise any model (a built network, or any pytree) with optax.

```python
def loss(model, trial, key):            # one trial: a slice of `data`'s leading axis
    inputs, targets, mask = trial
    out = run(model, inputs, key)
    return jnp.sum(mask * (out - targets) ** 2) / jnp.sum(mask)

result = nj.train.fit(model, loss, (inputs, targets, mask), optax.adam(1e-2), steps=500,
                      key=jax.random.key(0), batch_size=32, eval_data=held_out,
                      eval_every=50, patience=5, checkpoint="run.eqx", resume=True)
result.model, result.losses, result.eval_losses
```

Each step draws `batch_size` trials without replacement (all trials, in order, when
`batch_size=None`), evaluates `loss` on each with `jax.vmap` (one PRNG key per trial),
averages, and applies one optax update to the trainable leaves: a single
`jax.jit`-compiled function of (parameters, optimiser state, step key, data). The
compiled step is cached across calls: a second `fit` with the same `loss`, `optimizer`
and `metrics` objects and a model of the same structure (same shapes, dtypes and
non-array settings) does not compile again, so a run resumed in chunks compiles once.
The key of step $i$ is `jax.random.fold_in(key, i)`, so a run resumed from a checkpoint
at step $i$ draws the same batches and noise as an uninterrupted one and continues bit
for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jax.experimental import checkify

from .._misc import functional_checks
from ..simulate import GRADIENT_COMPILER_OPTIONS, allow_nonfinite_gradients
from .constraints import trainable as _trainable

# The evaluation key is fold_in(key, _EVAL_FOLD), never a training step's key.
_EVAL_FOLD = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What `fit` returns.

    - `model`: The model after the last step taken.
    - `best_model`: The model at the best evaluation loss (the last model without
      `eval_data`).
    - `losses`: Training loss of every step taken, shape `(steps_run,)` (mean over the
      step's minibatch).
    - `eval_steps`: Steps after which the model was evaluated (1-based counts of steps
      taken), shape `(k,)`.
    - `eval_losses`: Mean loss over `eval_data` at those steps, shape `(k,)`.
    - `metrics`: `{name: (k,) array}`, each metric's mean over `eval_data` (over the
      training data without it) at those steps.
    - `stopped_early`: Whether `patience` stopped the run before `steps`.
    - `step_seconds`: Wall time [s] of each step taken in this call (the first one
      includes compilation), for timing; shape `(steps taken in this call,)`.
    """

    model: Any
    best_model: Any
    losses: np.ndarray
    eval_steps: np.ndarray
    eval_losses: np.ndarray
    metrics: dict[str, np.ndarray]
    stopped_early: bool
    step_seconds: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def steps_run(self) -> int:
        return int(self.losses.shape[0])


def _n_trials(data, name: str) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"fit {name} must hold at least one array with a leading trial axis.")
    sizes = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            f"fit {name}: every array must have the same leading (trial) axis; got leading "
            f"sizes {sorted(np.shape(x)[0] if np.ndim(x) else 'scalar' for x in leaves)}."
        )
    (n,) = sizes
    if n < 1:
        raise ValueError(f"fit {name} must hold at least one trial, got 0.")
    return n


def _check_int(value, name: str, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"fit {name} must be an integer in [{low}, inf), got {value!r}.")


def _leaf_names(model, params) -> list[str]:
    """A readable name for each leaf of `params` (in flatten order): the
    `model.params()` name for a network, else the path."""
    from ..network import NetworkModel, _parameter_paths

    by_id = {}
    if isinstance(model, NetworkModel):
        by_id = {id(get(model)): name for name, get in _parameter_paths(model).items()}
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names.append(by_id.get(id(leaf), jax.tree_util.keystr(path)))
    return names


def _strong(tree):
    return jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype) if eqx.is_array(x) else x, tree)


def _mean_over_trials(fn, model, data, key, n):
    keys = jax.random.split(key, n)
    return jnp.mean(jax.vmap(fn, in_axes=(None, 0, 0))(model, data, keys))


def _static_key(leaf):
    """What identifies a non-array leaf of the fixed model part in the step cache: its
    type and value when hashable (a float, a string), else its identity."""
    try:
        hash(leaf)
    except TypeError:
        return (type(leaf), "id", id(leaf))
    return (type(leaf), leaf)


class _StepSpec:
    """The static part of a `fit` step: loss, optimizer, metrics, the non-array part of
    the model, and the batching. Equal (and equally hashed) for two `fit` calls with the
    same loss/optimizer/metric objects and a model of the same structure, so that
    `jax.jit` reuses the compiled step across calls.

    `treedefs`: the structures of the parameters, the optimiser state, the fixed
    arrays and the data, which `_train_step` takes as lists of their leaves (None:
    `_evaluate` only, which takes them whole)."""

    def __init__(self, loss, optimizer, metrics, config, batch_size, n, treedefs=None):
        self.loss, self.optimizer, self.metrics = loss, optimizer, metrics
        self.config, self.batch_size, self.n = config, batch_size, n
        self.treedefs = treedefs
        leaves, treedef = jax.tree.flatten(config)
        self._key = (
            _IdKey(loss), _IdKey(optimizer), tuple((k, _IdKey(f)) for k, f in metrics),
            treedef, tuple(_static_key(x) for x in leaves), batch_size, n,
            None if treedefs is None else tuple(_static_key(t) for t in treedefs),
        )

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _StepSpec) and self._key == other._key


class _IdKey:
    """Identity comparison for objects that may define a costly or array-valued `==`."""

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, _IdKey) and other.obj is self.obj


@functools.partial(jax.jit, static_argnums=(0, 1),
                   compiler_options=GRADIENT_COMPILER_OPTIONS)
def _train_step(spec, diagnose, params, opt_state, arrays, data, key, i):
    """One optimiser step on the leaves of the parameters, the optimiser state, the
    fixed arrays and the data (lists, in the order of `spec.treedefs`): the leaves of
    the new parameters and optimiser state, (loss, one "all
    finite" flag per trainable leaf's gradient) for the host, and the `checkify`
    error of neurojax's runtime checks (None with `diagnose=True`).

    `diagnose=False` (every step): the loss is differentiated under
    `allow_nonfinite_gradients()`, so `simulate` adds no gradient checks of its own
    (no per-step probe of the state cotangents in the backward scan, no check of
    each differentiated model leaf's cotangent), and under `functional_checks()`
    inside `checkify.checkify`, so that its other runtime checks (a state that turned
    NaN, parameters out of range) are a flag in the returned error, and NaN in their
    values, rather than host callbacks (`neurojax._misc.functional_checks`); the flags
    and the error are the checks, read by `fit` after every step. `diagnose=True`: the
    same step with `simulate`'s checks as they are outside `fit`, compiled and run by
    `fit` only after a step reported a non-finite gradient or a failed check, to raise
    the diagnosis (the check's own message; for a gradient, the parameter and the
    simulation step and population where the backward pass first turned non-finite).

    Why two: the gradient checks are identities on finite gradients (same values, bit
    for bit) but cost ~0.1x of the Dale rate RNN's step (benchmarks/fit_ablation.py),
    and a program with equinox's host callbacks runs synchronously, ~0.07x slower
    (`neurojax._misc.functional_checks`), both paid at every step for a diagnosis
    needed at most once per run, when training stops. The step is deterministic (same
    parameters, data, key), so the rerun meets the same failure.

    Compiled with `neurojax.simulate.GRADIENT_COMPILER_OPTIONS` (XLA:CPU's
    memory-optimised schedule; same values, no thread-pool hand-offs in COBA-4k's
    backward step; see there).

    Why leaves: `fit` keeps the parameters and the optimiser state as lists of arrays
    between steps, so that a step's call flattens and rebuilds no equinox module in
    Python (a call returned in 0.52 instead of 0.82 ms for the ~12 ms step of the Dale
    rate RNN of fit_overhead.py)."""
    params, opt_state, arrays, data = (jax.tree.unflatten(t, x) for t, x in zip(
        spec.treedefs, (params, opt_state, arrays, data)))
    n, batch_size = spec.n, spec.batch_size
    b = n if batch_size is None else batch_size
    k_batch, k_loss = jax.random.split(jax.random.fold_in(key, i))
    if batch_size is None:
        batch = data
    else:
        idx = jax.random.choice(k_batch, n, (b,), replace=False)
        batch = jax.tree.map(lambda x: x[idx], data)

    def batch_loss(p):
        return _mean_over_trials(spec.loss, eqx.combine(p, arrays, spec.config), batch, k_loss, b)

    if diagnose:
        value, grads = jax.value_and_grad(batch_loss)(params)
        error = None
    else:
        with allow_nonfinite_gradients(), functional_checks():
            error, (value, grads) = checkify.checkify(jax.value_and_grad(batch_loss))(params)
    updates, new_opt_state = spec.optimizer.update(grads, opt_state, params)
    new_params = eqx.apply_updates(params, updates)
    # The loss and, per leaf, "all finite", in one array for the host.
    finite = [jnp.all(jnp.isfinite(g)).astype(value.dtype) for g in jax.tree.leaves(grads)]
    return (jax.tree.leaves(new_params), jax.tree.leaves(new_opt_state),
            jnp.stack([value, *finite]), error)


@functools.partial(jax.jit, static_argnums=0)
def _evaluate(spec, params, arrays, data, eval_key):
    m = eqx.combine(params, arrays, spec.config)
    size = _n_trials(data, "eval_data")
    fns = {"loss": spec.loss, **dict(spec.metrics)}
    return {k: _mean_over_trials(fn, m, data, eval_key, size) for k, fn in fns.items()}


def _save(path: str, params, best_params, opt_state, key, step: int, record: dict) -> None:
    tmp = path + ".tmp"
    leaves = (params, best_params, opt_state, jax.random.key_data(key), jnp.asarray(step))
    with open(tmp, "wb") as f:
        eqx.tree_serialise_leaves(f, leaves)
    with open(tmp + ".json", "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)  # the pair is replaced only once both are written
    os.replace(tmp + ".json", path + ".json")


def _load(path: str, params, opt_state, key):
    like = (params, params, opt_state, jax.random.key_data(key), jnp.asarray(0))
    with open(path, "rb") as f:
        params, best, opt_state, key_data, step = eqx.tree_deserialise_leaves(f, like)
    with open(path + ".json") as f:
        record = json.load(f)
    return params, best, opt_state, jax.random.wrap_key_data(key_data), int(step), record


def _runtime_check_message(error: Exception) -> str | None:
    """The message of a runtime check that fired inside the jitted training step (an
    equinox runtime error, wrapped by XLA: `simulate`'s NaN/infinity check, a solver
    that did not converge in `nj.theory.fixed_point`, ...), or None for any other error."""
    match = re.search(r"EquinoxRuntimeError: (.*?)(?:\n|$)", str(error))
    return None if match is None else match.group(1).strip()


def fit(
    model: Any,
    loss: Callable,
    data: Any,
    optimizer: Any,
    steps: int,
    key: Any,
    *,
    batch_size: int | None = None,
    eval_data: Any = None,
    eval_every: int = 100,
    patience: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    metrics: Mapping[str, Callable] | None = None,
    trainable: Any = None,
) -> FitResult:
    """Train `model` with `optimizer` on `loss` over the trials in `data`.

    **Arguments:**

    - `model`: A `NetworkModel` (constrained with `nj.train.constrain` or not) or any
      pytree of parameters.
    - `loss`: `loss(model, trial, key) -> scalar`, the loss of one trial; `trial` is
      `data` with the leading (trial) axis indexed away, `key` a PRNG key for that
      trial (for noise, or `nj.simulate`'s initial state). Usable with `jax.vmap`.
    - `data`: A pytree of arrays sharing a leading trial axis, e.g.
      `(inputs, targets, mask)` from `nj.train.tasks`.
    - `optimizer`: An optax `GradientTransformation`, e.g. `optax.adam(1e-2)`.
    - `steps`: Number of optimiser steps, an integer in [1, inf) (the total, counting
      those of a resumed run).
    - `key`: PRNG key; step $i$ uses `jax.random.fold_in(key, i)` for its minibatch and
      its per-trial keys.
    - `batch_size`: Trials per step, an integer in [1, number of trials], drawn without
      replacement; `None` (default): every trial, every step.
    - `eval_data`: Held-out trials (like `data`); evaluated every `eval_every` steps
      and after the last step, with a fixed key.
    - `eval_every`: Steps between evaluations, an integer in [1, inf).
    - `patience`: Stop after this many evaluations in a row without a lower held-out
      loss, an integer in [1, inf), or `None` (never). Needs `eval_data`.
    - `checkpoint`: Path of a checkpoint file, written after every evaluation and at
      the end: the trainable leaves, the optimiser state, the PRNG key and the step
      (`eqx.tree_serialise_leaves`), and the best model so far, with the loss history
      beside it in
      `<checkpoint>.json`.
    - `resume`: Continue from `checkpoint` if that file exists (else start afresh):
      the resumed run gives the same losses and parameters, bit for bit, as one
      without the interruption.
    - `progress`: Show a tqdm progress bar with the loss and the metrics.
    - `metrics`: `{name: fn(model, trial, key) -> scalar}`, e.g. an accuracy; each is
      averaged over the evaluation trials and shown and recorded at every evaluation.
    - `trainable`: Which leaves train: a filter spec for `eqx.partition` (a pytree of
      booleans like `nj.train.trainable(model, "*.weight*")`); default
      `nj.train.trainable(model)` (every parameter, nothing inside `nj.train.Frozen`).

    Returns a `FitResult`. Raises `FloatingPointError` naming the step and the
    parameter when the loss or a gradient becomes NaN or infinite (the returned
    models are never non-finite), and `ValueError` for bad arguments. When the loss
    runs `nj.simulate`, the error also names the simulation step and population where
    the gradient (or the run) turned non-finite: the forward checks fire in the step
    itself; a step with a non-finite gradient is run again with `simulate`'s gradient
    checks, which the regular steps leave out (they cost ~0.1x of a small model's
    step, for a diagnosis needed once).
    """
    _check_int(steps, "steps [optimiser steps]")
    _check_int(eval_every, "eval_every [steps]")
    n = _n_trials(data, "data")
    if batch_size is not None:
        _check_int(batch_size, "batch_size [trials]")
        if batch_size > n:
            raise ValueError(
                f"fit batch_size [trials] must lie in [1, {n}] (the number of trials in data), "
                f"got {batch_size}."
            )
    if eval_data is not None:
        _n_trials(eval_data, "eval_data")  # checks that its leaves agree on the trials
    if patience is not None:
        _check_int(patience, "patience [evaluations]")
        if eval_data is None:
            raise ValueError("fit patience (early stopping) needs eval_data (held-out trials).")
    if resume and checkpoint is None:
        raise ValueError("fit resume=True needs checkpoint= (the file to resume from).")
    metrics = dict(metrics or {})

    spec = _trainable(model) if trainable is None else trainable
    params, static = eqx.partition(model, spec)
    # Only float arrays train, whatever the filter spec marks.
    params, extra = eqx.partition(params, eqx.is_inexact_array)
    static = eqx.combine(static, extra)
    if not jax.tree.leaves(params):
        raise ValueError("fit: nothing to train (no float array leaf is trainable).")
    names = _leaf_names(model, params)
    # Strong dtypes from the start: a weak-typed scalar (jnp.asarray(0.0)) would become
    # strong after the first update and make the step compile twice.
    params = _strong(params)
    opt_state = _strong(optimizer.init(params))

    # The arrays of the fixed part of the model and the data are jit arguments (not
    # constants baked into the program); its non-array part, the loss, the metrics and
    # the optimizer are one hashable static argument of the module-level jitted
    # functions below, so a second `fit` call with the same ones (a resumed chunk, a
    # new run of the same model) reuses the compiled step. `jax.jit` flattens
    # arguments in C++, which keeps the per-step dispatch cost of a large model small
    # (eqx.filter_jit partitions every call in Python).
    arrays, config = eqx.partition(static, eqx.is_array)
    spec_ = _StepSpec(loss, optimizer, tuple(metrics.items()), config, batch_size, n)
    evaluate = functools.partial(_evaluate, spec_)

    eval_key = jax.random.fold_in(key, _EVAL_FOLD)
    start, losses, record = 0, [], {"eval_steps": [], "eval": []}
    best_params, best_loss, since_best = params, math.inf, 0
    path = None if checkpoint is None else os.fspath(checkpoint)
    if resume and os.path.exists(path):
        params, best_params, opt_state, key, start, record = _load(path, params, opt_state, key)
        losses = list(record.pop("losses"))
        best_loss, since_best = record.pop("best_loss"), record.pop("since_best")
        eval_key = jax.random.fold_in(key, _EVAL_FOLD)
        if start > steps:
            raise ValueError(f"fit steps must be at least the checkpoint's step {start}, got {steps}.")

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc="fit", unit="step")

    def run_eval(step_count):
        nonlocal best_params, best_loss, since_best
        data_e = eval_data if eval_data is not None else data
        values = {k: float(v) for k, v in evaluate(params, arrays, data_e, eval_key).items()}
        record["eval_steps"].append(step_count)
        record["eval"].append(values)
        if values["loss"] < best_loss:
            best_loss, since_best, best_params = values["loss"], 0, params
        else:
            since_best += 1
        if bar is not None:
            bar.set_postfix({"loss": f"{losses[-1]:.4g}",
                             **{f"eval_{k}": f"{v:.4g}" for k, v in values.items()}})

    def save(step_count):
        if path is not None:
            _save(path, params, best_params, opt_state, key, step_count,
                  dict(record, losses=losses, best_loss=best_loss, since_best=since_best))

    # The step takes and returns leaves (see `_train_step`); the loop keeps the
    # parameters and optimiser state as leaves and rebuilds them where they are read.
    trees = (params, opt_state, arrays, data)
    step_spec = _StepSpec(loss, optimizer, tuple(metrics.items()), config, batch_size, n,
                          tuple(jax.tree.structure(x) for x in trees))
    train_step = functools.partial(_train_step, step_spec)
    p_leaves, s_leaves, a_leaves, d_leaves = (jax.tree.leaves(x) for x in trees)

    stopped, seconds = False, []
    try:
        for i in range(start, steps):
            t0 = time.perf_counter()
            try:
                new_params, new_opt_state, checks, error = train_step(
                    False, p_leaves, s_leaves, a_leaves, d_leaves, key, np.uint32(i)
                )
                checks = np.asarray(checks)  # waits for the step
                # A runtime check inside the loss that failed, or None (no error: the
                # step ran with the checks themselves).
                failed = None if error is None else error.get()
                if failed is not None or not np.all(checks[1:] != 0):
                    # The same step again with simulate's checks, which raise its
                    # diagnosis (see _train_step).
                    np.asarray(train_step(True, p_leaves, s_leaves, a_leaves, d_leaves, key,
                                          np.uint32(i))[2])
                if failed is not None:  # the rerun raises; this if it ever did not
                    raise RuntimeError(f"fit: at step {i + 1}, {failed}, and did not fail "
                                       "again when the step was repeated to diagnose it.")
            except Exception as e:  # a check inside the loss fired during this step
                message = _runtime_check_message(e)
                if message is None:
                    raise
                if "NaN or infinit" in message:  # simulate's check
                    raise FloatingPointError(
                        f"fit: at step {i + 1} (the model before it is finite): {message}") from e
                raise RuntimeError(
                    f"fit: at step {i + 1}, a check inside the loss failed: {message} (if the "
                    "previous steps moved the model too far, lower the learning rate)") from e
            seconds.append(time.perf_counter() - t0)
            value, finite = float(checks[0]), checks[1:] != 0
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"fit: the loss is {value} at step {i + 1} (the model before it is finite); "
                    "lower the learning rate, clip gradients (optax.clip_by_global_norm) or "
                    "check the loss for divisions by zero."
                )
            if not finite.all():
                bad = [names[j] for j in np.flatnonzero(~finite)]
                raise FloatingPointError(
                    f"fit: the gradient of {bad} has NaN or infinite entries at step {i + 1} "
                    f"(loss {value:.6g}); lower the learning rate, clip gradients "
                    "(optax.clip_by_global_norm) or use nj.simulate(truncate=...) for long "
                    "spiking runs."
                )
            p_leaves, s_leaves = new_params, new_opt_state
            losses.append(value)
            if bar is not None:
                bar.update(1)
                if not record["eval"]:
                    bar.set_postfix(loss=f"{value:.4g}")
            done = i + 1
            if done % eval_every == 0 or done == steps:
                params, opt_state = (jax.tree.unflatten(t, x) for t, x in zip(
                    step_spec.treedefs, (p_leaves, s_leaves)))
                run_eval(done)
                save(done)
                if patience is not None and since_best >= patience:
                    stopped = done < steps
                    break
    finally:
        if bar is not None:
            bar.close()

    params, opt_state = (jax.tree.unflatten(t, x) for t, x in zip(step_spec.treedefs,
                                                                   (p_leaves, s_leaves)))
    if not record["eval"] or record["eval_steps"][-1] != len(losses):
        if len(losses) > start:  # a run that took steps but ended between evaluations
            run_eval(len(losses))
            save(len(losses))
    if eval_data is None:
        best_params = params
    evals = record["eval"]
    return FitResult(
        model=eqx.combine(params, static),
        best_model=eqx.combine(best_params, static),
        losses=np.asarray(losses, float),
        eval_steps=np.asarray(record["eval_steps"], int),
        eval_losses=np.asarray([e["loss"] for e in evals], float),
        metrics={k: np.asarray([e[k] for e in evals], float) for k in metrics},
        stopped_early=stopped,
        step_seconds=np.asarray(seconds, float),
    )
