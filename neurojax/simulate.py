r"""`simulate`: the library's one `lax.scan`, with recording and results.

```python
res = nj.simulate(model, duration=1000.0, dt=0.1, key=jax.random.key(1),
                  record=nj.Record(spikes=["E"], v={"E": slice(0, 50)}, every=1.0))
res.rate("E", t_start=200.0)
```

The run is a scan over blocks of `every` ms (an inner scan of `every / dt` steps):
spikes are kept for every step, state variables and population rates once per block,
so memory stays bounded by what `Record` asks for. `checkpoint` rematerialises
segments of steps in the backward pass, independently of `every` (BPTT memory ~
segments + one segment of steps instead of all steps; `True` picks ~sqrt(steps) steps,
`Checkpoint(levels=L)` nests L levels of segments);
`progress=True` runs the outer scan in chunks and drives a tqdm bar.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import json
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from ._misc import (after, check_dt, deferred_checks, error_if, functional_checks_active,
                    guard, is_concrete, steps_for)
from .network import NetworkModel, NetworkState, presample


def _selection(sel, n: int, what: str) -> tuple[int, ...] | None:
    """Normalise a neuron selection to a hashable tuple of indices (None = all)."""
    if sel is None or sel is True:
        return None
    if isinstance(sel, slice):
        return tuple(range(*sel.indices(n)))
    idx = np.asarray(sel)
    if idx.dtype == bool:
        idx = np.nonzero(idx)[0]
    idx = idx.astype(int).ravel()
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ValueError(f"{what} selects neurons outside [0, {n}).")
    return tuple(int(i) % n for i in idx)


@dataclasses.dataclass(frozen=True, init=False)
class Record:
    """What a simulation keeps.

    **Arguments:**

    - `spikes`: Population names whose outputs are kept at every step, `True` for all
      populations (default) or `()` for none. Spiking populations' 0/1 spikes are
      stored as booleans, or as floats (which carry the surrogate gradient, e.g. of
      `res.rate(pop)` or a loss of the raster) with `float_spikes=True`; by default
      (`float_spikes=None`) as floats when `simulate` is differentiated (see
      `simulate`) and as booleans otherwise. Graded populations (neurons with
      `spiking = False`: rate units, binary units) always keep their outputs as
      floats, e.g. a rate unit's rate [Hz] at every step.
    - `rates`: Population names whose population-averaged rate [Hz] is kept per block
      (differentiable; cheap): spikes per neuron per second for spiking populations,
      the mean output over neurons and steps for graded ones (the rate [Hz] of rate
      units; the mean activity of binary units).
    - `every`: Block length [ms] for state variables and rates (default: `dt`).
    - `weights`: Names of plastic projections whose whole weight array is kept per
      block, in `res.weights[name]` of shape `(blocks, *layout)` (the layout of
      `NetworkModel.plastic_weights`); for small projections.
    - `mean_weights`: Names of plastic projections whose mean weight over existing
      synapses [weight units] is kept per block, in `res.weights[name + ".mean"]`,
      shape `(blocks,)`.
    - `**variables`: State variables to keep per block, e.g. `v={"E": slice(0, 50)}`
      (a slice, index array, boolean mask or `None` for all neurons).
    """

    spikes: tuple[str, ...] | bool
    rates: tuple[str, ...]
    every: float | None
    float_spikes: bool | None
    variables: tuple[tuple[str, str, Any], ...]
    weights: tuple[str, ...]
    mean_weights: tuple[str, ...]

    def __init__(self, spikes=True, rates=(), every=None, float_spikes=None, weights=(),
                 mean_weights=(), **variables):
        for arg, value in (("weights", weights), ("mean_weights", mean_weights)):
            # A mapping would pass as the sequence of its keys, its values ignored.
            if (isinstance(value, (str, Mapping))
                    or not all(isinstance(v, str) for v in value)):
                raise ValueError(
                    f"Record {arg}= must be a sequence of projection names, e.g. "
                    f"{arg}=['E->E'], got {value!r} (whole weight arrays: weights=, "
                    "their mean: mean_weights=)."
                )
        object.__setattr__(self, "weights", tuple(weights))
        object.__setattr__(self, "mean_weights", tuple(mean_weights))
        object.__setattr__(self, "spikes", spikes if isinstance(spikes, bool) else tuple(spikes))
        object.__setattr__(self, "rates", tuple(rates))
        object.__setattr__(self, "every", None if every is None else float(every))
        object.__setattr__(self, "float_spikes", None if float_spikes is None else bool(float_spikes))
        items = []
        for var, pops in sorted(variables.items()):
            if not isinstance(pops, Mapping):
                raise ValueError(
                    f"Record {var}= must map population names to neuron selections, "
                    f"e.g. {var}={{'E': slice(0, 10)}}; got {type(pops).__name__}."
                )
            for pop, sel in sorted(pops.items()):
                if isinstance(sel, slice):
                    sel = ("slice", sel.start, sel.stop, sel.step)
                elif sel is not None and sel is not True:
                    sel = ("index", tuple(np.asarray(sel).ravel().tolist()))
                items.append((var, pop, sel))
        object.__setattr__(self, "variables", tuple(items))


@dataclasses.dataclass(frozen=True)
class _Plan:
    """A `Record` resolved against a model: hashable, static under jit."""

    spikes: tuple[int, ...]
    rates: tuple[int, ...]
    variables: tuple[tuple[str, int, tuple[int, ...] | None], ...]
    float_spikes: bool
    block_steps: int
    weights: tuple[int, ...] = ()
    mean_weights: tuple[int, ...] = ()
    graded: tuple[int, ...] = ()  # populations whose outputs are graded (spiking = False)


def _default_checkpoint_steps(n_steps: int, block_steps: int) -> int:
    """`checkpoint=True`'s segment [steps]: about sqrt(n_steps), a multiple or a divisor
    of the recording block. With segments of k steps the backward pass keeps n/k
    segment-start states plus the per-step residuals of the one segment it is
    differentiating, ~ n/k + k states (a step's residuals are its input state, see
    `_rematerialised`), least at k = sqrt(n): e.g. 200 instead of 10,000 for 1 s at dt = 0.1 ms.
    Among the allowed lengths the one with the least n/k + k is taken."""
    b = block_steps
    small = [d for d in range(1, math.isqrt(b) + 1) if b % d == 0]
    m = math.sqrt(n_steps) / b
    multiples = {min(max(1, x), n_steps // b) * b for x in (math.floor(m), math.ceil(m))}
    candidates = set(small) | {b // d for d in small} | multiples
    return min(sorted(candidates), key=lambda k: n_steps / k + k)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Nested (multi-level) checkpointing, for `simulate(checkpoint=Checkpoint(levels=L))`.

    With `L` levels the run is a scan of checkpointed segments of ~n^(L/(L+1)) steps,
    each a scan of checkpointed segments of ~n^((L-1)/(L+1)) steps, and so on down to
    segments of ~n^(1/(L+1)) steps (n: the number of steps; every length a multiple or
    a divisor of `Record.every`). The backward pass keeps ~n^(1/(L+1)) segment-start
    states per level plus one innermost segment's per-step residuals, ~(L + 1) n^(1/(L+1))
    states in all instead of n (Griewank's recursive checkpointing), and runs the
    forward steps up to L more times. `levels=1` is `checkpoint=True` (segments of
    ~sqrt(n) steps, one extra forward pass); for 1 s at dt = 0.1 ms, L = 1, 2, 3 keep
    ~200, ~65, ~40 states' worth (segments of 100; 464 and 22; 1000, 100 and 10 steps).
    Buffers that do not depend on the segments (the sparse projections' backward)
    set a floor, and past ~3 levels the plan grows again (1 s of COBA-4k: 35, 16, 13,
    15 MB for L = 1-4); compilation takes longer with every level. Results and gradients are the same as without checkpointing.

    !!! example

        ```python
        loss = lambda m: nj.simulate(m, 1000.0, 0.1, key=key,
                                     checkpoint=nj.Checkpoint(levels=3)).rate("E")
        grads = eqx.filter_grad(loss)(model)
        ```

    **Arguments:**

    - `levels`: Number of nested checkpointed scans, an integer >= 1 (default 1). Runs
      too short for that many distinct segment lengths get fewer levels.
    """

    levels: int = 1

    def __post_init__(self):
        levels = self.levels
        if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or levels < 1:
            raise ValueError(f"Checkpoint levels must be an integer >= 1, got {levels!r}.")
        object.__setattr__(self, "levels", int(levels))


def _nested_checkpoint_steps(n_steps: int, block_steps: int, levels: int) -> tuple[int, ...]:
    """`Checkpoint(levels)`'s segment lengths [steps], outermost first, strictly
    decreasing, each a multiple or a divisor of the recording block. The backward pass
    keeps n/k_1 + k_1/k_2 + ... + k_(L-1)/k_L + k_L states, least when every ratio is
    q = n^(1/(L+1)): k_i ~ q^(L+1-i). Each is the allowed length nearest its ideal (in
    ratio); lengths that coincide with a longer one, or span the whole run, are dropped
    (short runs get fewer levels)."""
    if levels == 1:
        return (_default_checkpoint_steps(n_steps, block_steps),)
    b, n = block_steps, n_steps
    divisors = [d for d in range(1, b + 1) if b % d == 0]
    q = n ** (1.0 / (levels + 1))
    segments: list[int] = []
    for i in range(1, levels + 1):
        ideal = q ** (levels + 1 - i)
        multiples = {min(max(1, x), n // b) * b for x in (math.floor(ideal / b), math.ceil(ideal / b))}
        k = min(sorted(set(divisors) | multiples), key=lambda k: abs(math.log(k / ideal)))
        if k < n and (not segments or k < segments[-1]):
            segments.append(k)
    return tuple(segments) or (_default_checkpoint_steps(n_steps, block_steps),)


def _checkpoint_steps(checkpoint, dt: float, n_steps: int, block_steps: int) -> tuple[int, ...]:
    """Validate `simulate(checkpoint=...)` and resolve it to `_run`'s segment lengths in
    steps, outermost first (empty: no checkpointing), each a multiple or a divisor of
    `block_steps`."""
    if checkpoint is None or checkpoint is False:
        return ()
    if checkpoint is True:
        return (_default_checkpoint_steps(n_steps, block_steps),)
    if isinstance(checkpoint, Checkpoint):
        return _nested_checkpoint_steps(n_steps, block_steps, checkpoint.levels)
    duration, every = n_steps * dt, block_steps * dt
    k = _window_steps(
        checkpoint, "checkpoint", dt, n_steps,
        "checkpoint must be False, True (segments of ~sqrt(steps) steps), a segment "
        f"length [ms] in (0, duration = {duration:g}] or nj.Checkpoint(levels=...)",
    )
    if k % block_steps and block_steps % k:
        raise ValueError(
            f"checkpoint [ms] = {float(checkpoint):g} must be a multiple or a divisor of "
            f"Record every [ms] = {every:g} (segments hold whole recording blocks, or "
            "split each block evenly)."
        )
    return (k,)


def _truncate_steps(truncate, dt: float, n_steps: int) -> int | None:
    """Validate `simulate(truncate=...)` [ms] and resolve it to steps (None: full BPTT)."""
    if truncate is None:
        return None
    return _window_steps(
        truncate, "truncate", dt, n_steps,
        "truncate [ms] must be None (full backpropagation through time) or a window "
        f"length [ms] in (0, duration = {n_steps * dt:g}], a multiple of dt",
    )


def _window_steps(value, name: str, dt: float, n_steps: int, expected: str) -> int:
    """A length [ms] (`checkpoint`, `truncate`) in steps: a concrete real number, a
    positive multiple of `dt`, at most the run; `expected` says what else it may be."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not is_concrete(value):
        raise ValueError(f"{expected}, got {value!r}.")
    k = steps_for(value, dt, name)
    if k > n_steps:
        raise ValueError(
            f"{name} [ms] must lie in (0, duration = {n_steps * dt:g}], got {float(value):g}."
        )
    return k


def _cut_gradient(state: NetworkState, truncate: int | None, rules: tuple = ()) -> NetworkState:
    """Stop the gradient through `state` at the start of every truncation window but
    the first (steps k, 2k, ... counted by `state.step`, i.e. from `init`; the initial
    state's own dependence on parameters belongs to the first window): a select per
    state leaf, so the windows need not align with recording blocks or checkpoint
    segments, nor with the chunks of `progress=True`.

    Plastic weights are not cut: `rules` (the projections' plasticity, None where
    static) name them (`rule.weights(state)`, a leaf of the rule's state). They are the
    slow variables through which a rule acts: a weight change made in one window moves
    every later one, so cutting them would leave a learning rate's gradient only the
    last window's change (the E rate of a 500-neuron E/I network under `InhibitorySTDP`,
    200 ms in 5 ms windows, d rate / d eta at eta = 0.05: -83 Hz with them cut (one
    seed), -1850 kept (mean of 6 seeds), against a central finite difference of -1170
    over the same 6 seeds). Across windows a weight's gradient
    passes through the rule's own update (an integrator), not through the chaotic
    spiking dynamics that truncation bounds."""
    if truncate is None:
        return state
    boundary = (state.step % truncate == 0) & (state.step > 0)

    # The weights' leaves (found by identity: `rule.weights` returns a leaf of the rule's
    # state; a rule whose weights are computed keeps them cut), left uncut.
    kept = [rule.weights(p) for rule, p in zip(rules, state.plastic)
            if rule is not None and p is not None and rule.changes_weights]

    def cut(x):
        if not eqx.is_inexact_array(x) or any(x is w for w in kept):
            return x
        return jnp.where(boundary, jax.lax.stop_gradient(x), x)

    return jax.tree_util.tree_map(cut, state)


def _differentiated(tree) -> bool:
    """Whether a float leaf of `tree` carries a tangent here: `jax.grad` (`vjp`, `jvp`,
    `eqx.filter_grad`, ...) was entered around this call, also inside `jit` or `vmap`,
    but not across a `jit` or `jax.checkpoint` that encloses the call inside the
    differentiated function (those trace it first and differentiate the trace). A
    custom JVP identity, whose rule JAX runs only for inputs that carry a tangent,
    records whether it ran; its output is unused, so nothing reaches the compiled run."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree)
              if eqx.is_inexact_array(x) and isinstance(x, jax.core.Tracer)]
    if not leaves:
        return False
    ran = []

    @jax.custom_jvp
    def probe(xs):
        return xs

    @probe.defjvp
    def _probe_jvp(primals, tangents):
        ran.append(True)
        return primals[0], tangents[0]

    probe(leaves)
    return bool(ran)


def _plan(model: NetworkModel, record: Record, dt: float, n_steps: int, state) -> _Plan:
    names = model.names
    float_spikes = record.float_spikes
    if float_spikes is None:
        float_spikes = _differentiated((model, state))
    if record.spikes is True:
        spikes = tuple(range(len(names)))
    elif record.spikes is False:
        spikes = ()
    else:
        spikes = tuple(model.index(p) for p in record.spikes)
    rates = tuple(model.index(p) for p in record.rates)
    variables = []
    for var, pop, sel in record.variables:
        i = model.index(pop)
        n = model.populations[i].n
        neuron_state = state.neurons[i]
        if not isinstance(getattr(neuron_state, var, None), jax.Array):
            fields = [f for f in neuron_state.__dataclass_fields__
                      if isinstance(getattr(neuron_state, f), jax.Array)]
            raise ValueError(
                f"cannot record {var!r} of population {pop!r}: "
                f"{type(model.populations[i].neuron).__name__} state has {fields}."
            )
        if isinstance(sel, tuple) and sel and sel[0] == "slice":
            sel = slice(*sel[1:])
        elif isinstance(sel, tuple) and sel and sel[0] == "index":
            sel = np.asarray(sel[1])  # keep a boolean mask boolean (not 0/1 indices)
        variables.append((var, i, _selection(sel, n, f"Record {var}[{pop!r}]")))
    every = dt if record.every is None else record.every
    block_steps = steps_for(every, dt, "Record every")
    if n_steps % block_steps:
        raise ValueError(
            f"duration [ms] = {n_steps * dt:g} must be a multiple of Record every [ms] = {every:g}."
        )
    plastic = {}
    for arg in ("weights", "mean_weights"):
        plastic[arg] = []
        for name in getattr(record, arg, ()):
            j = model._projection_index(name)
            if model.projections[j].plasticity is None:
                raise ValueError(
                    f"Record {arg}=[{name!r}]: projection {name!r} has no plasticity, so its "
                    "weights do not change (read them from the model: "
                    "model.plastic_weights(state, name) or model.projection(name).weights)."
                )
            plastic[arg].append(j)
    graded = tuple(i for i, p in enumerate(model.populations) if not p.neuron.spiking)
    return _Plan(spikes, rates, tuple(variables), float_spikes, block_steps,
                 tuple(plastic["weights"]), tuple(plastic["mean_weights"]), graded)


class Recorded(dict):
    """A dict of recordings (`Result.spikes`, `rates`, `variables`, `weights`) whose
    missing key says what was recorded and how to record the rest, instead of a bare
    `KeyError: 'E'` (rates, for one, are recorded only for the populations named in
    `Record(rates=...)`). A pytree like a dict (its values in sorted key order), so a
    `Result` passes through `jit`, `vmap` and `grad` as before."""

    def __init__(self, what: str = "recordings", items=()):
        super().__init__(items)
        self.what = what

    def __missing__(self, key):
        recorded = sorted(self)
        how = {
            "spikes": f"record=nj.Record(spikes=[{key!r}]) (spikes=True, the default: every "
                      "population)",
            "rates": f"record=nj.Record(rates=[{key!r}]) (rates are recorded only for the "
                     "populations named there)",
            "variables": "record=nj.Record(<variable>={'<population>': None}), e.g. "
                         "nj.Record(v={'E': None}) for res.variables['E.v']",
            "weights": f"record=nj.Record(weights=[...]) or nj.Record(mean_weights=[...]) (keys "
                       "'<projection>' and '<projection>.mean') for a plastic projection",
        }.get(self.what, "nj.Record")
        raise KeyError(f"{self.what} of {key!r} were not recorded (recorded: {recorded}); "
                       f"record them with {how}.")

    def __repr__(self):
        return f"Recorded({self.what!r}, {dict.__repr__(self)})"


def _recorded_flatten_with_keys(d: Recorded):
    keys = tuple(sorted(d))
    return [(jax.tree_util.DictKey(k), d[k]) for k in keys], (d.what, keys)


def _recorded_flatten(d: Recorded):
    keys = tuple(sorted(d))
    return [d[k] for k in keys], (d.what, keys)


def _recorded_unflatten(aux, children) -> Recorded:
    what, keys = aux
    return Recorded(what, zip(keys, children))


jax.tree_util.register_pytree_with_keys(Recorded, _recorded_flatten_with_keys,
                                        _recorded_unflatten, _recorded_flatten)


def _recorded(what: str):
    return lambda items: items if isinstance(items, Recorded) else Recorded(what, items)


class Result(eqx.Module):
    """What a simulation recorded, plus its final state.

    **Fields:**

    - `spikes`: `{population: array (steps, n)}` of each step's output: booleans for
      spiking populations (floats with `Record(float_spikes=True)`, and by default
      when `simulate` is differentiated), the graded outputs as floats for populations
      in `graded` (a rate unit's rate [Hz]).
    - `rates`: `{population: array (blocks,)}` population-averaged rate [Hz] per block
      (for a graded population the mean output, see `Record`).
    - `variables`: `{"pop.var": array (blocks, k)}` state samples at the end of blocks.
    - `state`: The final `NetworkState` (continue with `simulate(..., state=res.state)`).
    - `dt`, `t_start`, `every`: Step [ms], start time [ms], block length [ms].
    - `sizes`: `{population: n}` of the recorded populations.
    - `indices`: `{"pop.var": neuron indices}` of recorded variables.
    - `weights`: `{projection: array (blocks, *layout)}` and `{projection + ".mean":
      array (blocks,)}` of plastic weights recorded at the end of blocks
      (`Record(weights=..., mean_weights=...)`).
    - `graded`: Names of the populations whose outputs are graded (neurons with
      `spiking = False`, e.g. rate units): `rate` and `neuron_rates` average their
      outputs instead of counting spikes.

    `spikes`, `rates`, `variables` and `weights` are `Recorded` dicts: a key that was
    not recorded raises a `KeyError` that lists what was and says how to record it.
    """

    spikes: dict[str, Array] = eqx.field(converter=_recorded("spikes"))
    rates: dict[str, Array] = eqx.field(converter=_recorded("rates"))
    variables: dict[str, Array] = eqx.field(converter=_recorded("variables"))
    state: NetworkState | None
    dt: float = eqx.field(static=True)
    t_start: float = eqx.field(static=True)
    every: float = eqx.field(static=True)
    sizes: tuple[tuple[str, int], ...] = eqx.field(static=True)
    indices: tuple[tuple[str, tuple[int, ...]], ...] = eqx.field(static=True)
    weights: dict[str, Array] = eqx.field(default_factory=dict, converter=_recorded("weights"))
    graded: tuple[str, ...] = eqx.field(static=True, default=())

    # ------------------------------------------------------------------ access
    def _spikes(self, pop: str) -> Array:
        if pop not in self.spikes:
            raise ValueError(
                f"spikes of population {pop!r} were not recorded; recorded: {sorted(self.spikes)}."
            )
        return self.spikes[pop]

    @property
    def n_steps(self) -> int:
        some = next(iter(self.spikes.values()), None)
        if some is not None:
            return some.shape[-2]
        some = next(iter(self.rates.values()), None)
        if some is not None:
            return some.shape[-1] * round(self.every / self.dt)
        return 0

    @property
    def t_stop(self) -> float:
        """End time of the run [ms]."""
        return self.t_start + self.n_steps * self.dt

    def _window(self, t_start, t_stop):
        t0 = self.t_start if t_start is None else float(t_start)
        t1 = self.t_stop if t_stop is None else float(t_stop)
        if not (self.t_start <= t0 < t1 <= self.t_stop + 1e-9):
            raise ValueError(
                f"time window [ms] must lie within [{self.t_start:g}, {self.t_stop:g}] "
                f"with t_start < t_stop, got [{t0:g}, {t1:g}]."
            )
        i0 = int(round((t0 - self.t_start) / self.dt))
        i1 = int(round((t1 - self.t_start) / self.dt))
        return i0, i1

    def rate(self, pop: str, t_start: float | None = None, t_stop: float | None = None) -> Array:
        """Mean firing rate of population `pop` over neurons and the window [Hz] (for a
        graded population, its mean output: the rate [Hz] of rate units). Counted from
        the recorded raster, so its derivative is the surrogate gradient where the
        raster holds floats (`Record.float_spikes`: by default when `simulate` is
        differentiated) and 0 where it holds booleans."""
        return jnp.mean(self.neuron_rates(pop, t_start, t_stop), axis=-1)

    def neuron_rates(self, pop: str, t_start: float | None = None, t_stop: float | None = None) -> Array:
        """Firing rate of each neuron of `pop` over the window [Hz], shape `(..., n)`:
        spikes per second, or for a graded population (in `graded`) the mean of its
        outputs over the window's steps (a rate unit's output is its rate [Hz])."""
        i0, i1 = self._window(t_start, t_stop)
        s = self._spikes(pop)[..., i0:i1, :].astype(float)
        if pop in self.graded:
            return jnp.mean(s, axis=-2)
        return jnp.sum(s, axis=-2) / ((i1 - i0) * self.dt * 1e-3)

    def times(self) -> np.ndarray:
        """Time [ms] at the end of each step (when spikes are detected)."""
        return self.t_start + self.dt * np.arange(1, self.n_steps + 1)

    def spike_times(self, pop: str) -> tuple[np.ndarray, np.ndarray]:
        """`(times [ms], neuron indices)` of every spike of `pop`, in time order. A graded
        population (in `graded`) has no spikes: its outputs are `spikes[pop]`."""
        if pop in self.graded:
            raise ValueError(
                f"population {pop!r} has graded outputs (rate units), not spikes: read them "
                f"from res.spikes[{pop!r}] (steps, n), or its mean with res.rate({pop!r}).")
        s = np.asarray(self._spikes(pop))
        if s.ndim != 2:
            raise ValueError("spike_times needs an unbatched result; index the batch first.")
        steps, neurons = np.nonzero(s)
        return self.t_start + self.dt * (steps + 1), neurons

    def isi_cv(self, pop: str, t_start: float | None = None, min_spikes: int = 4) -> float:
        """Mean coefficient of variation of interspike intervals over neurons of `pop`
        with at least `min_spikes` spikes after `t_start` [ms] (NaN if none)."""
        from .analysis.spikes import isi_cv

        times, ids = self.spike_times(pop)
        keep = times >= (self.t_start if t_start is None else t_start)
        return isi_cv(times[keep], ids[keep], dict(self.sizes)[pop], min_spikes=min_spikes)

    # ------------------------------------------------------------------ output
    def raster(self, pops=None, *, max_neurons: int = 500, bin_ms: float = 1.0, ax=None):
        """Raster plot and population rate of `pops` (default all recorded); returns the
        matplotlib `Figure`. `ax`: draw into these axes instead of a new figure (one
        `Axes`: the raster only; a pair: raster and rate)."""
        from .analysis.plots import raster

        return raster(self, pops, max_neurons=max_neurons, bin_ms=bin_ms, ax=ax)

    def to_numpy(self) -> dict[str, np.ndarray]:
        """All recorded arrays as numpy, keyed `spikes.E`, `rates.E`, `variables.E.v`,
        `weights.E->E` (recorded plastic weights)."""
        out = {f"spikes.{k}": np.asarray(v) for k, v in self.spikes.items()}
        out.update({f"rates.{k}": np.asarray(v) for k, v in self.rates.items()})
        out.update({f"variables.{k}": np.asarray(v) for k, v in self.variables.items()})
        out.update({f"weights.{k}": np.asarray(v) for k, v in self.weights.items()})
        return out

    def save(self, path) -> None:
        """Write the recorded data and metadata to an `.npz` file (exact round-trip with
        `Result.load`; the final state is not saved — use `eqx.tree_serialise_leaves`)."""
        meta = {"dt": self.dt, "t_start": self.t_start, "every": self.every,
                "sizes": [list(x) for x in self.sizes],
                "indices": [[k, list(v)] for k, v in self.indices], "format": 1,
                "graded": list(self.graded)}
        arrays = self.to_numpy()
        with open(path, "wb") as f:
            np.savez(f, __meta__=np.asarray(json.dumps(meta)), **arrays)

    def to_nwb(self, path, **kwargs) -> None:
        """Write this result to the NWB file `path`: `nj.io.write_nwb(self, path,
        **kwargs)` (spikes as units named by population, recorded variables with their
        units, session metadata such as `model=` and `seed=`). Needs pynwb (the `nwb`
        extra); read it back with `nj.io.read_nwb`."""
        from .io import write_nwb

        write_nwb(self, path, **kwargs)

    @classmethod
    def load(cls, path) -> "Result":
        """Read a file written by `save`."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            groups: dict[str, dict] = {"spikes": {}, "rates": {}, "variables": {}, "weights": {}}
            for key in data.files:
                if key == "__meta__":
                    continue
                group, name = key.split(".", 1)
                groups[group][name] = jnp.asarray(data[key])
        return cls(
            spikes=groups["spikes"], rates=groups["rates"], variables=groups["variables"],
            state=None, dt=meta["dt"], t_start=meta["t_start"],
            every=meta["every"], sizes=tuple((k, int(v)) for k, v in meta["sizes"]),
            indices=tuple((k, tuple(v)) for k, v in meta["indices"]), weights=groups["weights"],
            graded=tuple(meta.get("graded", ())),
        )


def _sample_block(model, plan, state):
    out = {}
    for var, i, idx in plan.variables:
        x = getattr(state.neurons[i], var)
        out[f"{model.names[i]}.{var}"] = x if idx is None else x[jnp.asarray(idx)]
    if plan.weights or plan.mean_weights:
        from .plasticity.abstract import synapse_mask

        for j in plan.weights:
            proj = model.projections[j]
            out[f"weights:{proj.name}"] = model.plastic_weights(state, proj.name)
        for j in plan.mean_weights:
            proj = model.projections[j]
            w = model.plastic_weights(state, proj.name)
            mask = synapse_mask(proj.weights)
            out[f"weights:{proj.name}.mean"] = jnp.sum(jnp.where(mask, w, 0.0)) / jnp.maximum(
                jnp.sum(mask), 1)
    return out


def _segmented_scan(body, carry, length: int, segments: tuple[int, ...], xs=None):
    """`lax.scan(body, carry, xs, length=length)`, rematerialised in the backward pass
    in nested segments: a scan of `jax.checkpoint`-ed segments of `segments[0]`
    iterations, each a scan of checkpointed segments of `segments[1]`, and so on (no
    checkpointing when `segments` is empty). A segment length that does not divide its
    parent's ends it with one shorter segment; inner levels at least as long as their
    parent segment are skipped. Same outputs. `xs` (None, or a pytree of arrays with
    leading axis `length`) is split along with the iterations."""
    if not segments:
        return jax.lax.scan(body, carry, xs, length=length)
    segment, inner = segments[0], segments[1:]

    def run(n):
        shorter = tuple(k for k in inner if k < n)
        return jax.checkpoint(lambda c, x: _segmented_scan(body, c, n, shorter, x))

    full, rest = divmod(length, segment)
    pieces = []
    if full:
        head = jax.tree_util.tree_map(
            lambda x: x[:full * segment].reshape((full, segment) + x.shape[1:]), xs)
        carry, ys = jax.lax.scan(lambda c, x: run(segment)(c, x), carry, head, length=full)
        pieces.append(jax.tree_util.tree_map(lambda y: y.reshape((-1,) + y.shape[2:]), ys))
    if rest:
        carry, ys = run(rest)(carry, jax.tree_util.tree_map(lambda x: x[full * segment:], xs))
        pieces.append(ys)
    if len(pieces) == 1:
        return carry, pieces[0]
    return carry, jax.tree_util.tree_map(lambda *ys: jnp.concatenate(ys), *pieces)


def _rematerialised(step, dt: float, remat: bool = True):
    """`step(state, t, dt)` as a function of `(state, t, sampled)` (`sampled`: the
    step's pre-sampled inputs, `network.presample`, or None) whose backward pass keeps only
    its inputs (the state entering the step) and recomputes the step's intermediate
    values from them (`jax.checkpoint`; matrix products, if any, are kept). A plain
    forward run compiles to the same program (checkpointing only acts under
    differentiation), and gradients are identical (the same operations run on the same
    values).

    Why: under `jax.grad`, the scan otherwise stacks every intermediate of the step that
    its VJP reads (for COBA-4k ~33 arrays of one value per neuron, ~180 kB per step,
    against ~64 kB of state). Writing them, and initialising those stacks (XLA fills
    and copies each one before the loop: a fresh multi-MB buffer per residual), cost
    more than the forward step itself; recomputing the step's elementwise arithmetic in
    the backward pass costs less than a forward step (the propagation kernels are not
    rerun: the VJP does not need their output). Measured with `benchmarks/bptt.py
    --truncate 1` (see benchmarks/README.md, issue 16). This is per-step
    checkpointing; `simulate(checkpoint=...)` adds segments on top of it."""
    def run(state, t, sampled):  # `sampled`: the step's pre-sampled inputs, or None
        if sampled is None:
            return step(state, t, dt)
        return step(state, t, dt, sampled=sampled)

    if not remat:  # the plain step, for networks of rate units (see `_run`)
        return run
    return jax.checkpoint(run, prevent_cse=False, policy=jax.checkpoint_policies.dots_saveable)


def _rate_sums(sums: tuple, outs: tuple, pops: tuple[int, ...]) -> tuple:
    """The running rate sums `sums` plus this step's summed outputs of populations
    `pops`, each population's sum computed after the previous population's new running
    sum (`after`; the same values bit for bit; ordered on the running sum rather than on
    the bare step sum, which XLA then kept as one more thunk per step).

    Why chained: XLA:CPU's thunk executor hands half of its ready thunks to its thread
    pool whenever more than 8 are ready at once, and a for-loop whose step hands off
    once goes on from whichever thread finishes last, so the whole loop moved between
    the two pool threads every step (the other one spinning) instead of staying on the
    calling thread. Unchained, every population's reduction was ready at once, with
    the ring-buffer clears and the synaptic writes, when the last neuron update
    finished: in COBA-4k's forward pass with a scalar loss (`jit(lambda m:
    mean_rate(simulate(m)))`, XLA's default schedule) that made 9, and the forward
    pass took 1.7x the CPU time of the same loss compiled with
    `GRADIENT_COMPILER_OPTIONS`, or of the run returning its recordings (whose buffer
    assignment, and so the executor's dependency graph, differs). Chained, at most 8
    in every variant checked, and the scalar loss costs what the others do
    (benchmarks/README.md, issue 16)."""
    out, prev = [], None
    for acc, i in zip(sums, pops):
        x = outs[i] if prev is None else after(outs[i], prev)
        prev = acc + jnp.sum(x)
        out.append(prev)
    return tuple(out)


@eqx.filter_jit
def _run(stepper, state: NetworkState, n_blocks: int, dt: float, plan: _Plan,
         checkpoint: int | tuple[int, ...] | None, sizes: tuple[int, ...], dtypes: tuple, *,
         truncate: int | None = None, probe: Array | None = None, probe_start: int | Array = 0):
    """The scan: `n_blocks` blocks of `plan.block_steps` steps of `stepper.step` (a
    `NetworkModel`, or the per-device network of `neurojax.sharding`), recording what
    `plan` asks. `sizes` and output `dtypes` are the populations' (for the rates).

    `checkpoint` is a segment length in steps, or nested segment lengths (outermost
    first, from `_checkpoint_steps`; None, False or (): none): segments of that many
    steps are rematerialised in the backward pass, whole groups of blocks (a multiple of
    the block) or parts of every block (a divisor of it). Levels of whole blocks nest
    in the scan over blocks, levels inside a block in each block's scan over steps.
    Either way the same steps run in the same order, so results and gradients do
    not depend on it. `truncate` (steps; None: full BPTT) stops the gradient through
    the state every `truncate` steps, counted by `state.step` (from `init`).

    `probe` (from `_guard_gradient`; None: none) is a zero array `(steps of the whole
    run + 1, columns)`: rows `probe_start` to `probe_start + n_blocks * block_steps` are
    fed to this run's steps with the scan's inputs, and `_watch` makes row k's cotangent
    say which state variables' cotangents were non-finite at step k (NaN) in the backward
    pass. The probe is returned unchanged as a third output."""

    stepper = _resolve_constraints(stepper)
    b = plan.block_steps
    # Time-only inputs (Waveforms) sampled for every step before the scan and fed to it
    # as per-step inputs, one (n_blocks, b, ...) array per sampled input (None: none).
    sampled = presample(stepper, state.step, n_blocks * b, dt) if isinstance(
        stepper, NetworkModel) else None
    rows = None if probe is None else jax.lax.dynamic_slice_in_dim(probe, probe_start, n_blocks * b)
    # Blocks of one step (recording every step, the default) have no block axis: the
    # steps' inputs and recordings keep their (steps, ...) shape. A (steps, 1, ...)
    # reshape before and after the scan would cost nothing alone, but under `vmap`
    # it moves the batch axis to the front (jax's reshape batching rule), so XLA
    # transposed the whole batch's inputs and recordings between the batch-major and
    # the scan's time-major layouts, forward and backward.
    xs = None if sampled is None and rows is None else jax.tree_util.tree_map(
        lambda x: x if b == 1 else x.reshape((n_blocks, b) + x.shape[1:]), (sampled, rows))

    # Per step, only what is recorded leaves the loop: spike rasters (as bools unless
    # float_spikes; graded outputs as they are) and, for rates, one running sum per
    # population in the carry.
    # Stacking whole output vectors to average them afterwards would write n floats
    # per population per step, which cost twice the neuron updates of COBA-4k.
    # Spiking networks rematerialise each step in the backward pass (`_rematerialised`:
    # COBA-4k fwd + bwd 10.4x -> 8.4x the forward pass); networks of rate units only do
    # not: their step is one matrix product (kept anyway) and a few elementwise
    # operations, whose recomputation cost more than storing them (Dale rate RNN of
    # benchmarks/fit_overhead.py: 1.36x -> 1.29x the hand-written JAX model without it).
    step = _rematerialised(stepper.step, dt, remat=len(plan.graded) < len(sizes))
    # Plastic rules whose weights keep their gradient across truncation windows.
    rules = tuple(p.plasticity for p in stepper.projections) if isinstance(
        stepper, NetworkModel) else ()

    def inner(carry, x):
        state, sums = carry
        sampled, row = (None, None) if x is None else x
        state = _cut_gradient(state, truncate, rules)
        if row is not None:
            state = _watch(state, row)
        state, outs = step(state, state.step * dt, sampled)
        sums = _rate_sums(sums, outs, plan.rates)
        spikes = tuple(outs[i] if plan.float_spikes or i in plan.graded else outs[i] > 0
                       for i in plan.spikes)
        return (state, sums), spikes

    if checkpoint is True:
        raise TypeError("_run takes segment lengths in steps: resolve them with _checkpoint_steps.")
    if checkpoint is None or checkpoint is False:
        checkpoint = ()
    segments = (checkpoint,) if isinstance(checkpoint, int) else tuple(checkpoint)
    if any(k % b and b % k for k in segments):
        raise ValueError(f"checkpoint segments ({segments} steps) must be multiples or divisors of {b}.")
    within = tuple(k for k in segments if k < b)  # segments inside each block [steps]
    across = tuple(k // b for k in segments if k >= b)  # segments of whole blocks [blocks]

    def block(state, x):
        zero = tuple(jnp.zeros((), dtypes[i]) for i in plan.rates)
        if b == 1:  # the step itself (see `xs`): its recordings have no block axis
            (state, sums), spikes = inner((state, zero), x)
        else:
            (state, sums), spikes = _segmented_scan(inner, (state, zero), b, within, x)
        # Spikes per neuron per second [Hz]; a graded output's mean (already a rate).
        rates = tuple(acc / (b * sizes[i]) if i in plan.graded else acc / (b * sizes[i] * dt * 1e-3)
                      for acc, i in zip(sums, plan.rates))
        return state, (spikes, rates, _sample_block(stepper, plan, state))

    state, recorded = _segmented_scan(block, state, n_blocks, across, xs)
    return (state, recorded) if probe is None else (state, recorded, probe)


def _resolve_constraints(stepper):
    """`stepper` with every `ConstrainedWeights` replaced by the plain container of its
    weights (`resolved()`), once, before the scan. Inside the step, a constrained
    projection would apply its constraint (e.g. Dale's `sign * softplus(free)`) at every
    step, and the backward pass its VJP on the whole weight matrix at every step (a
    third of the backward pass of the 200-unit rate RNN of fit_overhead.py); resolved
    here, the weight cotangent is summed over the steps and mapped to `free` once.
    Same values; gradients equal up to the order of summation."""
    from .connectivity.weights import ConstrainedWeights

    def is_constrained(x):
        return isinstance(x, ConstrainedWeights)

    return jax.tree_util.tree_map(lambda x: x.resolved() if is_constrained(x) else x, stepper,
                                  is_leaf=is_constrained)


def _run_args(model: NetworkModel, state: NetworkState) -> tuple[tuple[int, ...], tuple]:
    """`_run`'s population sizes and output dtypes."""
    sizes = tuple(p.n for p in model.populations)
    return sizes, tuple(_output_dtype(model, state, i) for i in range(len(sizes)))


def _output_dtype(model: NetworkModel, state: NetworkState, i: int):
    """dtype of population `i`'s output (the float dtype of its state)."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(state.neurons[i], eqx.is_inexact_array))
    return leaves[0].dtype if leaves else jnp.result_type(float)


def _nonfinite_flags(model: NetworkModel, state: NetworkState) -> list:
    """One flag per population: NaN or infinity anywhere in its neurons' state or its
    incoming synapses (no state variable of a neurojax model is infinite legitimately)."""
    flags = []
    for i, _ in enumerate(model.populations):
        leaves = jax.tree_util.tree_leaves(eqx.filter(state.neurons[i], eqx.is_inexact_array))
        for j, proj in enumerate(model.projections):
            if proj.post == i:
                leaves += jax.tree_util.tree_leaves(eqx.filter(state.synapses[j], eqx.is_inexact_array))
        flags.append(jnp.any(jnp.stack([~jnp.all(jnp.isfinite(x)) for x in leaves]))
                     if leaves else jnp.asarray(False))
    return flags


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _checked(x, bad, messages):
    """`x`, with an equinox runtime error (message `messages[i]` for the first flagged
    population `i`) if any flag in `bad` is set: in the forward pass, and again on the
    cotangent in the backward pass. A loss's gradient does not need the forward value
    of `x`, so without the backward check XLA would drop it from `jax.grad`."""
    return x + _error_zero(bad, messages, x.dtype)


def _error_zero(bad, messages, dtype):
    """-0.0 of `dtype`, through equinox's error check on `bad`: adding it to an array
    is the identity bit for bit (x + -0.0 is x for every x, -0.0 and NaN included)
    and ties the array to the check. Why not `eqx.branched_error_if(x, ...)` on the
    array itself: its conditional takes the array through, which XLA copies (two
    passes over a batch's whole recording, forward and backward); the scalar's
    conditional costs nothing and the addition fuses into the array's producer."""
    return error_if(jnp.asarray(-0.0, dtype), jnp.any(bad), jnp.argmax(bad), messages)


def _checked_fwd(x, bad, messages):
    return _checked(x, bad, messages), bad


def _checked_bwd(messages, bad, ct):
    return ct + _error_zero(bad, messages, ct.dtype), None


_checked.defvjp(_checked_fwd, _checked_bwd)


@jax.custom_vjp
def _nan_gradient_if(x, anchor, nan_zero):
    """`x` as it is; in the backward pass `anchor`'s cotangent is `nan_zero` (0, or NaN
    where a check failed) in every element, so that the gradient of everything `anchor`
    depends on is NaN where the check failed and unchanged elsewhere (x + 0 is x).
    `anchor`: the final state's float leaves, which depend on every parameter of the
    run's dynamics."""
    return x


def _nan_gradient_if_fwd(x, anchor, nan_zero):
    return x, (anchor, nan_zero)


def _nan_gradient_if_bwd(res, ct):
    anchor, nan_zero = res
    poison = jax.tree_util.tree_map(
        lambda a: jnp.broadcast_to(nan_zero.astype(a.dtype), a.shape), anchor)
    return ct, poison, jnp.zeros_like(nan_zero)


_nan_gradient_if.defvjp(_nan_gradient_if_fwd, _nan_gradient_if_bwd)


#: XLA options for compiling a gradient through `simulate` on CPU:
#: `from neurojax.simulate import GRADIENT_COMPILER_OPTIONS`, then
#: `jax.jit(jax.value_and_grad(loss), compiler_options=GRADIENT_COMPILER_OPTIONS)`
#: (or `eqx.filter_jit(..., compiler_options=...)`, or `.compile(compiler_options=...)`
#: on a lowered function). `nj.train.fit` compiles its steps with them. They change
#: the order in which XLA schedules the program's operations (XLA's memory-optimised
#: scheduler instead of its default), not the operations: gradients are the same bit
#: for bit. Why: XLA:CPU runs the thunks of each step of the backward loop in the order
#: of their data dependencies, and hands half of its ready queue to its thread pool
#: whenever more than 8 are ready at once; with the default schedule (and the buffer
#: reuse that follows from it) the backward step of COBA-4k had up to 2 such hand-offs
#: per step, each leaving the step's critical path waiting for a second thread (~70 us
#: per step, traced, on a busy 2-core machine); with this schedule it has none, and
#: fwd + bwd of COBA-4k takes 0.75-0.80x the CPU time (`checkpoint=True`: 0.85-0.88x;
#: benchmarks/README.md, issue 16). The option is a field of XLA's DebugOptions that
#: only XLA:CPU reads (jax applies compile options to that backend-independent proto;
#: not tried on GPU here). It is not applied to `simulate`'s own forward runs, whose
#: program stays as it was.
GRADIENT_COMPILER_OPTIONS: dict[str, str] = {
    "xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}

_NONFINITE_GRADIENTS_ALLOWED = contextvars.ContextVar("nonfinite_gradients_allowed", default=False)


@contextlib.contextmanager
def allow_nonfinite_gradients():
    """Within this block, `simulate` traced for `jax.grad` returns non-finite gradients
    as they are instead of raising (for tools that report them, such as
    `nj.check_grad`, or an optimiser that skips such steps, e.g.
    `optax.apply_if_finite`). It acts when a function is traced: a function jitted
    outside the block keeps the check it was compiled with."""
    token = _NONFINITE_GRADIENTS_ALLOWED.set(True)
    try:
        yield
    finally:
        _NONFINITE_GRADIENTS_ALLOWED.reset(token)


def _guard_gradient(model: NetworkModel, like: Callable[[], NetworkState], dt: float,
                    n_steps: int) -> tuple[NetworkModel, Array | None]:
    """The model, unchanged, except that a non-finite gradient with respect to any of
    its float parameters raises an equinox runtime error naming them (the forward pass
    was finite: `_checked` catches a forward blow-up). A surrogate gradient that grows
    through a recurrent network overflows in the backward pass only, and an optimiser
    fed NaN would silently destroy the model (the gradients issue measured exactly
    that: Adam sitting at `w = nan`). One check at the end of the backward pass, on
    every parameter's cotangent; nothing in the forward pass.

    Also returns the gradient probe for `_run` (None when nothing is differentiated or
    the checks are off): a float32 zero of shape `(n_steps + 1, columns)`. Row k's
    cotangent, filled in by `_watch` during the backward pass, is NaN in the columns of
    the state variables (of `like()`, a state of the run's structure, or its shapes)
    whose cotangent was non-finite at step k of the run, and the last row's, filled in
    by `_stamp`, holds the run's first step, so that the error can name the step and
    the variable where the gradient first became non-finite."""
    if _NONFINITE_GRADIENTS_ALLOWED.get():
        return model, None
    params, rest = eqx.partition(model, eqx.is_inexact_array)
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    if not flat or not any(isinstance(x, jax.core.Tracer) for _, x in flat):
        return model, None  # nothing is differentiated
    from .network import _parameter_paths

    friendly = {id(get(model)): name for name, get in _parameter_paths(model).items()}
    variables = _watched_names(model, like())
    # One guard per leaf: a custom VJP's outputs all count as differentiated once one
    # input is, so a single guard over every leaf would make JAX compute cotangents
    # (e.g. per-synapse weight gradients) that nobody asked for. Each guard also emits
    # a zero probe; their sum feeds the scan, so every differentiated guard receives
    # the probe's cotangent (what `_watch` recorded).
    guarded = [_finite_gradient(x, _GradientMessages(
        friendly.get(id(x), jax.tree_util.keystr(path)), dt, variables, n_steps))
        for path, x in flat]
    probe = functools.reduce(lambda a, b: a + b, [p for _, p in guarded])
    leaves = [x for x, _ in guarded]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), rest), probe


def _is_float(x) -> bool:
    """A floating-point array, or the shape of one (`jax.eval_shape`)."""
    dtype = getattr(x, "dtype", None)
    return dtype is not None and hasattr(x, "shape") and jnp.issubdtype(dtype, jnp.inexact)


def _watched_names(model: NetworkModel, like: NetworkState) -> tuple[tuple[str, str], ...]:
    """(population, state variable) of each float leaf that `_watch` checks, in its
    order: every population's neuron state, then every projection's synapse state and
    delay buffer (attributed to the projection's target population)."""
    names = []
    for path, x in jax.tree_util.tree_flatten_with_path(_watched_state(like))[0]:
        if not _is_float(x):
            continue
        group, k, rest = path[0].idx, path[1].idx, jax.tree_util.keystr(path[2:])
        if group == 0:
            pop = model.names[k]
            names.append((pop, f"{pop}{rest}"))
        else:
            proj = model.projections[k]
            what = "synapse state" if group == 1 else "delay buffer"
            names.append((model.names[proj.post], f"{proj.name} {what}{rest}"))
    return tuple(names)


def _watched_state(state: NetworkState) -> tuple:
    return state.neurons, state.synapses, state.buffers


def _watch(state: NetworkState, row: Array) -> NetworkState:
    """`state` unchanged; in the backward pass, the cotangent of `row` (this step's row
    of the gradient probe, one column per watched float leaf and at least two) becomes
    NaN in the columns of the leaves whose cotangent (d loss / d state at the start of
    this step) has a NaN or an infinity, else 0."""
    flat, treedef = jax.tree_util.tree_flatten(_watched_state(state))
    where = [i for i, x in enumerate(flat) if _is_float(x)]
    if not where:
        return state
    floats = _watch_leaves([flat[i] for i in where], row)
    for i, x in zip(where, floats):
        flat[i] = x
    neurons, synapses, buffers = jax.tree_util.tree_unflatten(treedef, flat)
    return dataclasses.replace(state, neurons=neurons, synapses=synapses, buffers=buffers)


@jax.custom_vjp
def _watch_leaves(leaves, row):
    return leaves


def _watch_leaves_fwd(leaves, row):
    return leaves, row.shape


def _watch_leaves_bwd(shape, ct_leaves):
    # sum(c * 0) is 0 when every entry of c is finite and NaN otherwise (0 * inf is NaN),
    # and cannot overflow: one fused reduction per leaf and step, nothing else. Summed
    # over a batch (the probe is shared by the trials of a vmap), a NaN stays a NaN. The
    # search for the step runs once, after the backward pass (`_finite_gradient_bwd`).
    flags = jnp.stack([jnp.sum(c * 0) for c in ct_leaves]).astype(jnp.float32)
    return ct_leaves, jnp.zeros(shape, jnp.float32).at[:flags.shape[0]].set(flags)


_watch_leaves.defvjp(_watch_leaves_fwd, _watch_leaves_bwd)


@jax.custom_vjp
def _stamp(probe, step):
    """`probe` unchanged; in the backward pass, the last row of its cotangent becomes
    `(step, 1, 0, ...)`: the run's first step (from init), readable as the ratio of the
    two entries even after the rows of a batch of trials are summed."""
    return probe


def _stamp_fwd(probe, step):
    return probe, step


def _stamp_bwd(step, ct):
    last = jnp.zeros(ct.shape[1], ct.dtype).at[0].set(step.astype(ct.dtype)).at[1].set(1.0)
    return ct.at[-1].set(last), None


_stamp.defvjp(_stamp_fwd, _stamp_bwd)


@dataclasses.dataclass(frozen=True)
class _GradientMessages:
    """The error messages of one parameter's gradient check, by index: 0 when no state
    cotangent became non-finite, else 1 + step * len(variables) + variable (what
    `_watch` recorded). Built on demand: a run has too many steps to list them."""

    name: str
    dt: float
    variables: tuple[tuple[str, str], ...]
    n_steps: int = 0  # the run's steps (rows of the probe but its last)

    def __len__(self) -> int:
        return 2**31 - 1  # any int32 index

    def __getitem__(self, index: int) -> str:
        head = (f"the gradient with respect to {self.name} is NaN or infinite while the "
                "simulation itself stayed finite")
        advice = ("Pass truncate= (a window of a few ms) to simulate, lower the surrogate's "
                  "amplitude, or shorten the run (README, Gradients).")
        if index == 0 or not self.variables:
            return (f"{head}: the surrogate gradient grew without bound through the "
                    f"recurrent dynamics. {advice}")
        step, k = divmod(index - 1, len(self.variables))
        pop, variable = self.variables[k]
        t = step * self.dt
        return (f"{head}: the backward pass first turned non-finite at step {step} "
                f"(t = {t:g} to {t + self.dt:g} ms from init), in population {pop} "
                f"(gradient with respect to {variable}); it was finite for every later "
                f"step. The surrogate gradient grew without bound through the recurrent "
                f"dynamics up to there. {advice}")


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _finite_gradient(x, messages):
    columns = max(len(messages.variables), 2)
    return x, jnp.zeros((messages.n_steps + 1, columns), jnp.float32)


def _finite_gradient_fwd(x, messages):
    return _finite_gradient(x, messages), None


def _finite_gradient_bwd(messages, _, cts):
    ct, ct_probe = cts
    n = max(len(messages.variables), 1)
    # Row k: NaN where variable j's cotangent was non-finite at step k of the run
    # (`_watch`). The backward pass meets the steps from the last to the first, so the
    # latest flagged step is where backpropagation overflowed (every earlier step
    # inherits the NaN); its first flagged variable is named.
    flags = jnp.isnan(ct_probe[:-1, :n])
    rows = jnp.any(flags, axis=1)
    last = rows.shape[0] - 1 - jnp.argmax(rows[::-1])
    k = jnp.argmax(flags[last])
    # The run's first step from init (`_stamp`: (step, 1), summed alike over a batch).
    step0 = jnp.round(ct_probe[-1, 0] / jnp.maximum(ct_probe[-1, 1], 1.0)).astype(jnp.int32)
    index = jnp.where(jnp.any(rows), 1 + (step0 + last) * n + k, 0)
    return (eqx.branched_error_if(ct, ~jnp.all(jnp.isfinite(ct)), index, messages),)


_finite_gradient.defvjp(_finite_gradient_fwd, _finite_gradient_bwd)


def _blow_up_message(names) -> str:
    return (f"the simulation produced NaN or infinity in population(s) {list(names)} "
            "(numerical blow-up): reduce dt or check parameters and inputs.")


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """A run resolved against a model and its initial state: everything `simulate`
    compiles, hashable (static under `jit`). Made by `prepare_run`; run by `run_scan`
    (or compiled ahead of time with `compile_scan`), its recordings turned into a
    `Result` by `assemble_result`. `simulate` is exactly these three calls; they are
    public for tools that time compilation separately (the CLI, the benchmarks) and
    for steppers other than the model itself (`neurojax.sharding`)."""

    plan: _Plan
    n_steps: int
    dt: float
    segment: tuple[int, ...]  # checkpoint segments [steps], outermost first (): none
    window: int | None  # truncation window [steps]
    sizes: tuple[int, ...]  # population sizes (rates)
    dtypes: tuple  # population output dtypes (rate accumulators)
    t_start: float  # time of the initial state [ms]

    @property
    def n_blocks(self) -> int:
        return self.n_steps // self.plan.block_steps


def _check_model_and_time(model, duration, dt) -> tuple[float, int, list]:
    """Validated `dt` and number of steps; `model` must be a built network valid at `dt`
    (concrete parameters are checked now; the checks of traced ones are returned, for
    `_guard_state`)."""
    dt = check_dt(dt)
    if not isinstance(model, NetworkModel):
        raise ValueError(
            f"simulate needs a built network (Network.build(key)), got {type(model).__name__}."
        )
    n_steps = steps_for(duration, dt)
    with deferred_checks() as traced_checks:
        model.check(dt)
    return dt, n_steps, traced_checks


def prepare_run(model: NetworkModel, duration: float, dt: float, state: NetworkState,
                record: Record | None = None, checkpoint: bool | int | float | Checkpoint = False,
                truncate: float | int | None = None) -> tuple[PreparedRun, NetworkState]:
    """Validate `simulate`'s arguments against `model` and `state` and resolve them
    (see `simulate` for their meaning); raises `ValueError` naming a bad one. Returns
    the run and the state to start it from: `state`, carrying the runtime check of the
    model's traced parameters (unchanged when they are concrete)."""
    dt, n_steps, traced_checks = _check_model_and_time(model, duration, dt)
    return _prepare(model, dt, n_steps, traced_checks, state, record, checkpoint, truncate)


def _prepare(model, dt, n_steps, traced_checks, state, record, checkpoint, truncate):
    """`prepare_run` after `_check_model_and_time` (which `simulate` runs before `init`)."""
    plan = _plan(model, Record() if record is None else record, dt, n_steps, state)
    sizes, dtypes = _run_args(model, state)
    run = PreparedRun(
        plan=plan, n_steps=n_steps, dt=dt,
        segment=_checkpoint_steps(checkpoint, dt, n_steps, plan.block_steps),
        window=_truncate_steps(truncate, dt, n_steps), sizes=sizes, dtypes=dtypes,
        t_start=float(state.step) * dt if is_concrete(state.step) else 0.0,
    )
    return run, _guard_state(state, traced_checks)


def _scan_args(stepper, state: NetworkState, run: PreparedRun, n_blocks: int | None):
    n = run.n_blocks if n_blocks is None else n_blocks
    return (stepper, state, n, run.dt, run.plan, run.segment, run.sizes, run.dtypes)


def run_scan(stepper, state: NetworkState, run: PreparedRun, n_blocks: int | None = None, *,
             probe: Array | None = None, probe_start: int | Array = 0):
    """The compiled scan of `run` (`n_blocks` recording blocks, default all) from
    `state`: returns `(final state, recordings)` for `assemble_result`. `stepper` is the
    model, or anything with its `step` (the per-device network of `neurojax.sharding`).
    `probe`: `simulate`'s gradient probe (internal), threaded through the steps and
    returned third."""
    return _run(*_scan_args(stepper, state, run, n_blocks), truncate=run.window, probe=probe,
                probe_start=probe_start)


def compile_scan(stepper, state: NetworkState, run: PreparedRun):
    """`run_scan` compiled ahead of time (to time compilation apart from running):
    returns `f(stepper, state) -> (final state, recordings)` for steppers and states of
    the same structure, shapes and dtypes."""
    compiled = _run.lower(*_scan_args(stepper, state, run, None), truncate=run.window).compile()

    def call(stepper, state):
        return compiled(*_scan_args(stepper, state, run, None), truncate=run.window)

    return call


def assemble_result(model: NetworkModel, run: PreparedRun, state: NetworkState, recorded) -> Result:
    """The `Result` of `run_scan`'s recordings, after the blow-up check."""
    return _result(model, run.plan, state, recorded, run.n_steps, run.dt, run.t_start)


def simulate(
    model: NetworkModel,
    duration: float,
    dt: float,
    *,
    key: PRNGKeyArray | None = None,
    state: NetworkState | None = None,
    record: Record | None = None,
    progress: bool = False,
    checkpoint: bool | int | float | Checkpoint = False,
    truncate: float | int | None = None,
) -> Result:
    """Simulate a built network for `duration` [ms] in steps of `dt` [ms].

    **Arguments:**

    - `model`: A `NetworkModel` from `Network.build(key)`.
    - `duration`: Length of the run [ms], a multiple of `dt` (and of `record.every`).
    - `dt`: Time step [ms]; a Python float (static under `jax.jit`).
    - `key`: PRNG key for the initial state (needed unless `state` is given).
    - `state`: Continue from this state (e.g. `previous.state`) instead of `init`.
    - `record`: What to keep (default: every population's spikes).
    - `progress`: Show a tqdm progress bar (the run is split into chunks).
    - `checkpoint`: Rematerialise the forward pass in segments during the backward pass
      (`jax.checkpoint`), to take gradients of long runs in less memory. `False`: no
      checkpointing (the gradient keeps the state entering every step; in networks with
      a spiking population each step's intermediate values are recomputed in the
      backward pass, rate networks keep them). `True`: segments of
      about sqrt(steps) steps (the backward pass then keeps ~ steps / k segment-start
      states plus one segment's k steps' states, least at k = sqrt(steps); e.g.
      1 s at dt = 0.1 ms keeps ~200 steps' worth instead of 10,000). A number: the
      segment length [ms], in (0, duration], a multiple of `dt` and a multiple or a
      divisor of `record.every` (a segment holds whole recording blocks or splits every
      block evenly; it need not divide `duration`, the last segment is then shorter).
      `nj.Checkpoint(levels=L)`: nested checkpointing, segments of segments (L levels
      of ~steps^(i/(L+1)) steps), keeping ~(L + 1) steps^(1/(L+1)) states' worth, for up
      to L extra forward passes; `Checkpoint(levels=1)` is `True`. On 1 s of COBA-4k
      (rates every step, CPU) XLA plans 35, 16, 13, 15 MB for the gradient with
      L = 1, 2, 3, 4 (the forward pass: 2.1 MB; several MB of the sparse projections'
      backward buffers remain whatever L, and a 4th level costs more than it saves),
      at about the same fwd+bwd time (~9 s), but compiling takes 11 s for L = 1 and
      22-88 s for L = 2-4: `True` stays the default choice, more levels are for runs
      whose gradient does not fit. Results are identical with or without it; the
      backward pass runs the forward steps again (once per level, at most).
    - `truncate`: Truncated backpropagation through time: a window [ms] (a multiple of
      `dt`, in (0, duration]); the gradient through the network state is stopped at
      the start of every window (every `truncate` ms from `init`), so a recorded value
      is differentiated through at most the last `truncate` ms of dynamics, while
      parameters still get gradient from every step. Plastic weights are the exception:
      their gradient is kept across windows (a rule's weight change in one window still
      moves the loss in every later one; cut, a learning rate's gradient would see only
      the last window's change), while the neurons, synapses, inputs and the rules'
      traces are cut. Bounds the growth of surrogate
      gradients in recurrent spiking networks (see the README's gradient recipe), at
      the price of ignoring influences longer than the window. `None` (default): full
      backpropagation. The forward pass is unchanged.

    Pure and traceable: `jax.jit` (with `duration`, `dt`, `record`, `progress`,
    `checkpoint`, `truncate` static), `jax.vmap` over models or keys, and `jax.grad` of a
    loss of the result all work. Parameters are checked before the run: a concrete value
    outside its range raises `ValueError`; a traced one (swept with `vmap`, passed
    through `jit`, changed by an optimiser step inside `jit`) raises an equinox runtime
    error with the same information (component, parameter, unit, allowed range), from
    one fused check before the scan. A run that ends with NaN or infinity in any
    population's state raises `FloatingPointError` naming the population; under a trace
    (`jit`, `vmap`, `grad`) every returned array carries the check, so the error is an
    equinox runtime error whatever part of the result a caller keeps. A gradient that
    overflows in the backward pass of a finite run raises an equinox runtime error naming
    the parameter (`"E->E.weight"`), the step and the population (and state variable)
    where the backward pass first turned non-finite, instead of handing NaN to an
    optimiser. That step is the latest one, in run time, whose state gradient is NaN or
    infinite: the backward pass meets it first (it runs from the end of the run to its
    start), the gradient was finite at every later step, and every earlier step inherits
    the NaN, so it is where backpropagation overflowed (with `truncate`, the latest such
    step of any window). Each step's state gradient is checked for this (5-14 % of
    the time of a COBA-4k gradient on CPU); `nj.allow_nonfinite_gradients()` turns the
    checks off.
    Forward-mode differentiation (`jax.jvp`, `jax.jacfwd`) through `simulate` is not
    supported: propagation and these checks define reverse-mode rules only.
    """
    # Validate once, before init, whose errors would be less direct.
    dt, n_steps, traced_checks = _check_model_and_time(model, duration, dt)
    if state is None and key is None:
        raise ValueError("simulate needs `key` (a jax.random key) or an initial `state`.")
    model, probe = _guard_gradient(
        model, lambda: state if state is not None else _state_shapes(model, key, dt), dt,
        n_steps)
    if state is None:
        state = model.init(key, dt)
    if probe is not None:
        probe = _stamp(probe, state.step)
    run, state = _prepare(model, dt, n_steps, traced_checks, state, record, checkpoint, truncate)
    chunks = [run.n_blocks]
    if progress:
        from tqdm.auto import tqdm

        chunk = _chunk_size(run.n_blocks)
        chunks = [chunk] * (run.n_blocks // chunk)
    bar = tqdm(total=run.n_steps, unit="step", desc="simulate") if progress else None
    pieces = []
    done = 0  # steps run so far (the probe rows of the next chunk start there)
    try:
        for chunk in chunks:
            # `probe_start` as an array (traced, not a static Python int), so that the
            # chunks of `progress=True` share one compilation, with a probe too.
            out = run_scan(model, state, run, chunk, probe=probe,
                           probe_start=jnp.asarray(done, jnp.int32))
            state, piece = out[:2]
            probe = out[2] if probe is not None else None
            pieces.append(piece)
            done += chunk * run.plan.block_steps
            if bar is not None:
                bar.update(chunk * run.plan.block_steps)
    finally:
        if bar is not None:
            bar.close()
    recorded = pieces[0] if len(pieces) == 1 else jax.tree_util.tree_map(
        lambda *xs: jnp.concatenate(xs), *pieces)
    return assemble_result(model, run, state, recorded)


def _state_shapes(model: NetworkModel, key, dt: float):
    """The shapes and dtypes of `model.init(key, dt)`, without computing it."""
    return jax.eval_shape(lambda k: model.init(k, dt), jax.ShapeDtypeStruct(jnp.shape(key), key.dtype))


def _guard_state(state: NetworkState, checks: list) -> NetworkState:
    """Attach the checks of traced parameters that `model.check` deferred (swept,
    passed through jit, changed by an optimiser step) as one fused runtime check that
    runs once, before the scan. The check guards a scalar zero that is added to every
    numeric array of the initial state, so that whatever a caller keeps depends on it
    (the step counter alone is never read by a network without projections, so the check
    would be removed with it); guarding the state itself would make the check's
    callback carry the whole state and cost compile time. PRNG keys are left alone."""
    if not checks:
        return state
    if functional_checks_active():
        # A float zero, NaN if a check fails (see `functional_checks`): added to the
        # float leaves, it makes every float the run computes NaN.
        dtypes = [x.dtype for x in jax.tree_util.tree_leaves(state)
                  if _not_key(x) and jnp.issubdtype(x.dtype, jnp.inexact)]
        nan_zero = guard(jnp.asarray(-0.0, jnp.result_type(*dtypes) if dtypes else float), checks)
        return jax.tree_util.tree_map(
            lambda x: x + nan_zero.astype(x.dtype)
            if _not_key(x) and jnp.issubdtype(x.dtype, jnp.inexact) else x, state)
    zero = guard(jnp.zeros((), jnp.int32), checks)

    def attach(x):
        if _not_key(x) and (jnp.issubdtype(x.dtype, jnp.inexact) or jnp.issubdtype(x.dtype, jnp.integer)):
            return x + zero.astype(x.dtype)
        return x

    return jax.tree_util.tree_map(attach, state)


def _not_key(x) -> bool:
    return eqx.is_array(x) and not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _result(model: NetworkModel, plan: _Plan, state: NetworkState, recorded, n_steps: int,
            dt: float, t_start: float) -> Result:
    """The `Result` of `_run`'s recordings, after the NaN check."""

    spikes_blocks, rates_blocks, variables = recorded
    weights = {k[len("weights:"):]: v for k, v in variables.items() if k.startswith("weights:")}
    variables = {k: v for k, v in variables.items() if not k.startswith("weights:")}
    names = model.names
    # (blocks, block steps, n) -> (steps, n); blocks of one step are recorded as
    # (steps, n) already (`_run`).
    spikes = {
        names[i]: s if plan.block_steps == 1 else s.reshape(s.shape[:-3] + (n_steps,) + s.shape[-1:])
        for i, s in zip(plan.spikes, spikes_blocks)
    }
    rates = {names[i]: r for i, r in zip(plan.rates, rates_blocks)}
    flags = _nonfinite_flags(model, state)
    if all(is_concrete(f) for f in flags):
        bad = [names[i] for i, f in enumerate(flags) if bool(np.any(np.asarray(f)))]
        if bad:
            raise FloatingPointError(_blow_up_message(bad))
    else:
        # Under a trace (jit, vmap, grad) the check must travel with every output the
        # caller can return: a check attached only to the final state is dead code when
        # a loss reads just the rates, and XLA removes it. (Not on the whole state:
        # error_if's callback cannot carry PRNG-key leaves, so its step counter.)
        bad = jnp.stack(flags)
        messages = tuple(_blow_up_message([name]) for name in names)

        def checked(x):
            if eqx.is_inexact_array(x):
                return _checked(x, bad, messages)
            return error_if(x, jnp.any(bad), jnp.argmax(bad), messages)

        if functional_checks_active():
            # A `checkify` check (see `functional_checks`), and, in place of the NaN
            # that `functional_checks` puts into a failed check's value, NaN gradients:
            # the outputs are left as they are and the final state's cotangent is NaN
            # where the check fails, so every gradient upstream of the state is NaN
            # (`fit` tests the gradients after every step). NaN in the outputs
            # themselves would cost a pass over every recording (two thirds of `fit`'s
            # overhead on benchmarks/fit_overhead.py's rate RNN) to catch what mostly
            # is NaN already (the rates of a rate network that blew up).
            nan_zero = error_if(jnp.asarray(0.0, jnp.float32), bad, jnp.argmax(bad), messages)
            spikes, rates, variables, weights = _nan_gradient_if(
                (spikes, rates, variables, weights), eqx.filter(state, eqx.is_inexact_array),
                nan_zero)
        else:
            spikes, rates, variables, weights = jax.tree_util.tree_map(
                checked, (spikes, rates, variables, weights))
            state = eqx.tree_at(lambda s: s.step, state, checked(state.step))
    sizes = tuple((p.name, p.n) for p in model.populations)
    indices = tuple(
        (f"{names[i]}.{var}", tuple(range(model.populations[i].n)) if idx is None else idx)
        for var, i, idx in plan.variables
    )
    return Result(
        spikes=spikes, rates=rates, variables=variables, state=state, dt=dt, t_start=t_start,
        every=plan.block_steps * dt, sizes=sizes, indices=indices, weights=weights,
        graded=tuple(names[i] for i in plan.graded),
    )


def _chunk_size(n_blocks: int) -> int:
    """Largest divisor of `n_blocks` giving at least ~20 progress updates, so every chunk
    has the same length and compiles once."""
    target = max(1, n_blocks // 20)
    for d in range(target, 0, -1):
        if n_blocks % d == 0:
            return d
    return 1
