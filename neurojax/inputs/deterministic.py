"""Deterministic inputs: `Constant`, `Waveform` (any sampled time course) and
`SpikeTrains` (a source population that replays given spikes)."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, UInt8

from .._abstract import AbstractInput, AbstractNeuron, Drive
from .._custom_types import PopulationParam
from .._misc import check_shape, finite, is_concrete
from ..synapses.receptors import AbstractReceptor, Current


class NoState(eqx.Module):
    pass


class Constant(AbstractInput[NoState]):
    """A constant drive to every neuron of `target`.

    **Arguments:**

    - `target`: Name of the target population.
    - `amplitude`: Current [pA] with the default `Current()` receptor, or conductance
      [nS] with a `Conductance` receptor. Scalar or shape `(n,)`.
    - `receptor`: How the amplitude acts on the membrane.

    !!! example
        ```python
        nj.inputs.Constant("I", amplitude=200.0)  # 200 pA into every I cell
        ```
    """

    target: str = eqx.field(static=True)
    amplitude: PopulationParam = eqx.field(converter=finite("amplitude", "pA or nS"))
    receptor: AbstractReceptor = Current()

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> NoState:
        return NoState()

    def step(self, state: NoState, t, dt: float) -> tuple[NoState, Drive]:
        return state, self.receptor.drive(self.amplitude, False)

    def check(self, n: int, dt: float) -> None:
        check_shape(self.amplitude, n, f"Constant({self.target!r}) amplitude")


class Waveform(AbstractInput[NoState]):
    """A drive that follows a sampled time course, linearly interpolated at the start
    of each step and held constant outside the sampled range.

    **Arguments:**

    - `target`: Name of the target population.
    - `times`: Sample times [ms], shape `(k,)`, strictly increasing.
    - `values`: Samples [pA] (or [nS] with a `Conductance` receptor), shape `(k,)` for
      the same drive to every neuron or `(k, n)` per neuron.
    - `receptor`: How the value acts on the membrane.
    """

    target: str = eqx.field(static=True)
    times: Float[Array, " k"] = eqx.field(converter=finite("times", "ms"))
    values: Float[Array, "k *n"] = eqx.field(converter=finite("values", "pA or nS"))
    receptor: AbstractReceptor = Current()

    def __check_init__(self):
        if self.times.ndim != 1 or self.times.shape[0] < 1:
            raise ValueError(f"Waveform times [ms] must be a non-empty 1-D array, got shape {self.times.shape}.")
        if self.values.ndim not in (1, 2) or self.values.shape[0] != self.times.shape[0]:
            raise ValueError(
                f"Waveform values must have shape ({self.times.shape[0]},) or "
                f"({self.times.shape[0]}, n) to match times, got {self.values.shape}."
            )
        if is_concrete(self.times) and np.any(np.diff(np.asarray(self.times)) <= 0):
            raise ValueError("Waveform times [ms] must be strictly increasing.")

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> NoState:
        return NoState()

    def value(self, t) -> Float[Array, "*n"]:
        """The interpolated value at time `t` [ms]."""
        if self.values.ndim == 1:
            return jnp.interp(t, self.times, self.values)
        return _interp_columns(t, self.times, self.values)

    def sample(self, times: Float[Array, " steps"]) -> Float[Array, "steps *n"]:
        """The interpolated values at every time of `times` [ms] at once: row `k` is
        `value(times[k])` by the same formula (equal to it up to a few ulp: the
        compiler may round the fraction differently).
        `simulate` samples a run's steps with it before its scan and hands each step
        its row (`sampled_step`), instead of looking the value up inside every step."""
        if self.values.ndim == 1 or self.times.shape[0] == 1:
            return jax.vmap(self.value)(times)
        return _sample_columns(times, self.times, self.values)

    def sampled_step(self, state: NoState, value: Float[Array, "*n"], dt: float
                     ) -> tuple[NoState, Drive]:
        """`step` for a step whose value [pA or nS] was computed beforehand by
        `sample`."""
        return state, self.receptor.drive(value, False)

    def step(self, state: NoState, t, dt: float) -> tuple[NoState, Drive]:
        return self.sampled_step(state, self.value(t), dt)

    def check(self, n: int, dt: float) -> None:
        if self.values.ndim == 2 and self.values.shape[1] != n:
            raise ValueError(
                f"Waveform({self.target!r}) values must have {n} columns (one per neuron), "
                f"got shape {self.values.shape}."
            )


def _interp_columns(t, times, values):
    """Linear interpolation of every column of `values` at scalar time `t` (held at the
    first and last samples outside `times`).

    Written for `simulate`'s scan, where it runs every step:
    - the two rows are read as one `dynamic_slice`, not two gathers: the backward pass
      then adds each step's cotangent into the carried cotangent of `values` in place,
      where a gather's transpose (a scatter into a fresh zero array of the shape of
      `values`) cost O(rows) per step, O(rows^2) per run;
    - the row and the fraction are reductions over `times` (not a binary search:
      `jnp.searchsorted`'s default is a while loop nested in every step, and XLA fuses
      the scalar arithmetic of an unrolled one into the per-element loops that use it,
      recomputing it for every element); a reduction's result is computed once;
    - `(1 - f) a + f b` needs no per-element select at the ends (f is 0 or 1 there, and
      the sample is returned exactly), unlike `a + f (b - a)`, which it matches to
      rounding between samples."""
    k = times.shape[0]
    if k == 1:
        return values[0]
    lo = jnp.clip(jnp.sum(times <= t) - 1, 0, k - 2)  # rows lo and lo + 1 bracket t
    spans = jnp.diff(times)
    ratio = jnp.where(spans > 0, (t - times[:-1]) / jnp.where(spans > 0, spans, 1.0), 0.0)
    frac = jnp.clip(jnp.sum(jnp.where(jnp.arange(k - 1) == lo, ratio, 0.0)), 0.0, 1.0)
    pair = jax.lax.dynamic_slice_in_dim(values, lo, 2, axis=0)
    return pair[0] * (1.0 - frac) + pair[1] * frac


# Largest interpolation matrix (steps x samples) [elements] whose transpose
# `_sample_columns` multiplies by in the backward pass (1 MB in float32); larger ones
# take the gathers' own transpose, a scatter-add.
_MATRIX_ELEMENTS = 2**18


def _sample_columns(t, times, values):
    """`_interp_columns` at every time of `t` at once: the same row and fraction (the
    same reductions over `times`, per time) and the same `(1 - f) a + f b`, so each row
    is what the step's lookup returns (to a few ulp). The rows are read with two gathers;
    in the backward pass their cotangents reach `values` through one matrix product
    with the (steps, samples) interpolation weights (each row: 1 - f at `lo`, f at
    `lo + 1`) instead of a scatter-add of every step's two rows, which XLA's CPU
    backend runs as a loop over rows (a quarter of the fit_overhead loss's time).
    When the times fall on consecutive samples (`_on_grid`), the rows are one slice
    of `values` instead, and their backward pass that slice's transpose."""
    lo, frac = _lookup(t, times)
    on, first = _on_grid(t, times, lo)
    return _sample_rows(values, lo, frac, on, first,
                        t.shape[0] * times.shape[0] <= _MATRIX_ELEMENTS)


def _lookup(t, times):
    """For every time of `t` [ms], the row `lo` of `times` such that rows `lo` and
    `lo + 1` bracket it, and the interpolation fraction in [0, 1]."""
    k = times.shape[0]
    # The row by binary search and the fraction from that row alone: O(steps log k)
    # work and O(steps) memory. With strictly increasing `times` (Waveform checks them)
    # the count of samples <= t is `searchsorted(..., side="right")`, and the step's
    # masked sum over rows adds zeros to this one ratio: the same formula.
    # (Comparing every step with every sample, as the step does once per step, would
    # hold (steps, k) arrays: 42 GB for 5.1 s of steps against a 0.05 ms waveform.)
    lo = jnp.clip(jnp.searchsorted(times, t, side="right") - 1, 0, k - 2)
    span = times[lo + 1] - times[lo]
    ratio = jnp.clip(jnp.where(span > 0, (t - times[lo]) / jnp.where(span > 0, span, 1.0), 0.0),
                     0.0, 1.0)
    # At a sample's own time the fraction is exactly 0 (or 1 at the last sample), so
    # that the row is that sample, bit for bit, and equals `_on_grid`'s slice. XLA may
    # contract a time computed in the same program (`(step + j) * dt`) and the
    # subtraction above into one fused multiply-add that skips the product's rounding:
    # ~1e-16 instead of 0 for dt = 0.1 ms, exact in neither. Set by a zero-derivative
    # correction (r + (0 - r) is exactly 0, r + (1 - r) exactly 1 for r near 1), so
    # the derivative with respect to the times is still the ratio's.
    exact = jnp.where(t == times[lo], 0.0, jnp.where(t == times[lo + 1], 1.0, ratio))
    return lo, ratio + jax.lax.stop_gradient(exact - ratio)


def _on_grid(t, times, lo):
    """Whether every time of `t` [ms] is a sample time and they are consecutive
    samples, `t == times[first:first + steps]` (compared exactly), and `first`.

    Why: a waveform given on the simulation's step grid (its sample times are the
    step times, e.g. a task's inputs at the model's dt) is sampled at its own sample
    times, where the value is the sample itself; the gathers and their backward pass
    (a dense (steps, samples) product, or a scatter-add) then amount to a slice of
    `values` and its transpose. The test runs when the program does, O(steps) scalar
    work once per run: under `nj.train.fit` (and any jit that takes the model as an
    argument) the waveform's times and the run's first step are traced, so no Python
    value can decide it.
    The gathers give the same values there (`_lookup` makes the fractions exactly 0
    or 1 at sample times), so only the backward pass takes the slice's transpose; the
    test compares the times themselves, as `_lookup` does.
    """
    steps, k = t.shape[0], times.shape[0]
    if steps > k:  # steps consecutive samples do not fit: never on the grid
        return jnp.asarray(False), jnp.zeros((), lo.dtype)
    # `lo` is the last sample at or before t (clipped to k - 2: the last sample's own
    # time has lo = k - 2).
    row = lo + (t == times[lo + 1]).astype(lo.dtype)
    first = row[0]
    on = jnp.all((t == times[row]) & (row == first + jnp.arange(steps, dtype=lo.dtype)))
    return on, first


def _rows(values, lo, frac):
    a, b = jnp.take(values, lo, axis=0), jnp.take(values, lo + 1, axis=0)
    return a * (1.0 - frac)[:, None] + b * frac[:, None]


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _sample_rows(values, lo, frac, on, first, by_matrix: bool):
    """`_rows(values, lo, frac)`, which is `values[first:first + steps]` where `on`
    (the times are the samples' own, `_on_grid`). Backward pass: that slice's
    transpose there; else the product with the interpolation weights (`by_matrix`) or
    the gathers' scatter-add. The cotangent of `frac` is `(b - a) . ct` either way (as the gathers'
    own; XLA drops it when the sample times are not differentiated)."""
    return _sample_rows_fwd(values, lo, frac, on, first, by_matrix)[0]


def _sample_rows_fwd(values, lo, frac, on, first, by_matrix):
    # The gathers either way: on the grid they return the slice's values exactly
    # (fractions exactly 0 or 1, `_lookup`), and XLA fuses them with their consumer
    # (the transpose to the scan's time-major layout), where a conditional would copy
    # its result.
    return _rows(values, lo, frac), (values, lo, frac, on, first)


def _sample_rows_bwd(by_matrix, res, ct):
    values, lo, frac, on, first = res

    def general(ct):
        if not by_matrix:  # the gathers' transpose: two scatter-adds of the steps' rows
            ct_a, ct_b = ct * (1.0 - frac)[:, None], ct * frac[:, None]
            return jnp.zeros_like(values).at[lo].add(ct_a).at[lo + 1].add(ct_b)
        rows = jnp.arange(values.shape[0])
        weights = (jnp.where(rows[None, :] == lo[:, None], (1.0 - frac)[:, None], 0.0)
                   + jnp.where(rows[None, :] == (lo + 1)[:, None], frac[:, None], 0.0))
        return (weights.T @ ct).astype(values.dtype)  # weights: (steps, k)

    if lo.shape[0] > values.shape[0]:
        ct_values = general(ct)
    else:
        ct_values = jax.lax.cond(
            on, lambda ct: jax.lax.dynamic_update_slice_in_dim(
                jnp.zeros_like(values), ct.astype(values.dtype), first, axis=0),
            general, ct)
    # d row / d frac = b - a (used only where `times` are differentiated).
    a, b = jnp.take(values, lo, axis=0), jnp.take(values, lo + 1, axis=0)
    ct_frac = jnp.sum((b - a) * ct, axis=1).astype(frac.dtype)
    return ct_values, None, ct_frac, None, None


_sample_rows.defvjp(_sample_rows_fwd, _sample_rows_bwd)


class SpikeTrainsState(eqx.Module):
    step: Int[Array, ""]  # steps emitted so far


class SpikeTrains(AbstractNeuron[SpikeTrainsState]):
    r"""A source population that replays given spikes: row `k` of `spikes` is its
    output in step `k` of the run (the step from $k\,dt$ to $(k+1)\,dt$), and it is
    silent after the last row. Its spikes reach other populations through ordinary
    projections, so a `Sparse` projection from it propagates only the spikes that
    occur (input spike rasters are sparse). Drive onto it is ignored.

    **Arguments:**

    - `spikes`: Shape `(steps, n)`, the number of spikes (usually 0 or 1) of each
      neuron in each step; stored as `uint8`, which keeps it out of gradients and
      optimisers (it is data, not a parameter). Swap in another trial with
      `eqx.tree_at(lambda m: m.population("in").neuron.spikes, model, trial)`, also
      under `jax.vmap` over a batch of trials.

    `SpikeTrains.from_times(times, neurons, n, steps, dt)` builds one from spike times,
    `SpikeTrains.from_nwb(path, population, dt=dt)` from the units of an NWB file.
    """

    spikes: UInt8[Array, "steps n"] = eqx.field(converter=lambda x: _as_counts(x))

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> SpikeTrainsState:
        if self.spikes.ndim != 2 or self.spikes.shape[-1] != n:
            raise ValueError(
                f"SpikeTrains spikes must have shape (steps, n) = (steps, {n}), got "
                f"{self.spikes.shape}."
            )
        return SpikeTrainsState(step=jnp.zeros((), jnp.int32))

    def step(self, state: SpikeTrainsState, drive: Drive, dt: float):
        k = state.step
        row = jnp.take(self.spikes, jnp.minimum(k, self.spikes.shape[0] - 1), axis=0)
        out = jnp.where(k < self.spikes.shape[0], row, 0).astype(jnp.result_type(float))
        return SpikeTrainsState(step=k + 1), out

    def check(self, n: int, dt: float) -> None:
        if self.spikes.shape[-1] != n:
            raise ValueError(
                f"SpikeTrains spikes must have shape (steps, n) = (steps, {n}), got "
                f"{self.spikes.shape}."
            )

    @classmethod
    def from_times(cls, times, neurons, n: int, steps: int, dt: float) -> SpikeTrains:
        """Spikes of neuron `neurons[i]` at `times[i]` [ms] in a run of `steps` steps
        of `dt` [ms]. A spike at time t is emitted by the step that ends at t, or by the
        first step ending after it (t = 0 by step 0), so spike times read from a
        `Result` (which reports the end of the emitting step) replay in their steps."""
        times, neurons = np.asarray(times, float), np.asarray(neurons)
        if times.shape != neurons.shape or times.ndim != 1:
            raise ValueError(
                f"SpikeTrains.from_times: times [ms] and neurons must be 1-D of equal "
                f"length, got shapes {times.shape} and {neurons.shape}."
            )
        # Relative slack for times computed as (k + 1) * dt in floating point.
        k = np.maximum(np.ceil(times / dt - 1e-6) - 1, 0)
        if np.any(~np.isfinite(times)) or np.any(times < 0) or np.any(k >= steps):
            raise ValueError(
                f"SpikeTrains.from_times: times [ms] must lie in [0, steps * dt] = "
                f"[0, {steps * dt}], got range [{times.min()}, {times.max()}]."
            )
        if np.any((neurons < 0) | (neurons >= n)) or not np.issubdtype(neurons.dtype, np.integer):
            raise ValueError(
                f"SpikeTrains.from_times: neurons must be integer indices in [0, {n}), got "
                f"{neurons.dtype} values in [{neurons.min()}, {neurons.max()}]."
            )
        counts = np.zeros((steps, n), np.int64)
        np.add.at(counts, (k.astype(int), neurons), 1)
        return cls(spikes=counts)


    @classmethod
    def from_nwb(cls, path, population: str | None = None, *, dt: float,
                 steps: int | None = None, t_start: float | None = None) -> SpikeTrains:
        """Replay the spike trains of an NWB file's `units` table (written by
        `nj.io.write_nwb` or any NWB tool; needs pynwb).

        **Arguments:**

        - `path`: The `.nwb` file.
        - `population`: Keep the units whose `population` column is this name (the
          column `write_nwb` writes); `None` keeps all units. Neuron `i` is the unit
          whose `neuron_index` column is `i` where the table has that column, else the
          `i`-th kept unit in table order.
        - `dt`: Time step of the run that replays them [ms].
        - `steps`: Length of the replay [steps]; default: the recorded run's (files
          from `write_nwb`) or up to the last spike.
        - `t_start`: Time [ms] in the file that becomes time 0 of the replay (default
          0, or the recorded run's start for files from `write_nwb`); spikes before
          it or after `steps` steps are left out.

        Spike times [s] are mapped to the step that ends at them (`from_times`), so a
        result written with `write_nwb` replays in the very steps it was simulated in.
        """
        from ..io import _require_pynwb

        if not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"SpikeTrains.from_nwb: dt [ms] must be positive and finite, got {dt!r}.")
        pynwb = _require_pynwb()
        with pynwb.NWBHDF5IO(str(path), "r") as io:
            nwb = io.read()
            table = nwb.units
            if table is None or len(table) == 0:
                raise ValueError(f"SpikeTrains.from_nwb: {str(path)!r} has no units (spike trains).")
            columns = set(table.colnames)
            rows = list(range(len(table)))
            if population is not None:
                if "population" not in columns:
                    raise ValueError(
                        f"SpikeTrains.from_nwb: {str(path)!r} has no population column in its "
                        f"units table; pass population=None to replay all {len(rows)} units.")
                names = [str(table["population"][r]) for r in rows]
                rows = [r for r, name in zip(rows, names) if name == population]
                if not rows:
                    raise ValueError(
                        f"SpikeTrains.from_nwb: no units of population {population!r} in "
                        f"{str(path)!r}; populations: {sorted(set(names))}.")
            if "neuron_index" in columns:
                index = np.asarray([int(table["neuron_index"][r]) for r in rows])
            else:
                index = np.arange(len(rows))
            trains = [np.asarray(table["spike_times"][r], float) * 1e3 for r in rows]  # [ms]
            meta = {}
            if "neurojax" in nwb.scratch:
                from ..io import _meta

                meta = _meta(nwb, path)
        if t_start is None:
            t_start = meta["t_start"] if meta else 0.0
        if steps is None and meta:
            steps = max(1, round(meta["n_steps"] * meta["dt"] / dt))
        n = int(index.max()) + 1
        if population is not None and meta:
            n = dict(meta["sizes"]).get(population, n)
        times = np.concatenate(trains) - t_start if trains else np.zeros(0)
        neurons = np.concatenate([np.full(len(t), i) for t, i in zip(trains, index)])
        if steps is None:
            last = times.max() if times.size else 0.0
            steps = max(1, int(np.ceil(last / dt - 1e-6)))
        # Spikes within the replay: (0, steps * dt], with from_times's round-off slack.
        keep = (times > -1e-6 * dt) & (np.ceil(times / dt - 1e-6) <= steps)
        return cls.from_times(np.maximum(times[keep], 0.0), neurons[keep].astype(int), n,
                              steps, dt)


def _as_counts(x) -> Array:
    """Spike counts as uint8, refusing what is not a count (negative, fractional, NaN,
    above 255): a silent cast would replay other spikes than the ones given."""
    if isinstance(x, jax.Array) and x.dtype == jnp.uint8:
        return x
    arr = np.asarray(x)
    if arr.dtype == bool:
        return jnp.asarray(arr, jnp.uint8)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr) | (arr < 0) | (arr > 255) | (arr != np.round(arr))
    if np.any(bad):
        raise ValueError(
            "SpikeTrains spikes must be spike counts per step: integers in [0, 255]; got "
            f"{np.count_nonzero(bad)} other entries (the first is {arr[bad].flat[0]})."
        )
    return jnp.asarray(arr.astype(np.uint8))
