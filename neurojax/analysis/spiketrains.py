r"""Spike-train statistics in JAX: binning, firing rates, kernel rate estimates, ISI CV
and CV2, Fano factor, spike-count correlations and cross-correlograms.

Two representations, both with fixed shapes so that every function is `jit`-able and
`vmap`-able over trials:

- **spike-time arrays** `(times [ms], ids)`, shape `(k,)` each, padded with `NaN`
  times where trials have different spike counts (a `NaN` time is not a spike; its id
  is ignored). `spike_arrays(res, pop)` gives them for a `Result`, batched or not.
- **binned counts** `(..., n, bins)`: `bin_spikes(times, ids, n, t_start, t_stop,
  bin_ms)` for spike-time arrays, `binned(res, pop, bin_ms)` for a `Result`.

```python
counts = nj.analysis.binned(res, "E", bin_ms=5.0)            # (n, bins)
rho = nj.analysis.mean_correlation(counts)                    # spike-count correlation
times, ids, n = nj.analysis.spike_arrays(res, "E")
cv = nj.analysis.cv(times, ids, n)                           # (n,), NaN if < 2 ISIs
```

Definitions follow Elephant (Denker et al. 2018) wherever Elephant defines the measure,
and the tests compare with it to 1e-9: `cv` is `elephant.statistics.cv` of each
neuron's ISIs, `cv2` is `elephant.statistics.cv2` (Holt et al. 1996, J Neurophysiol
75:1806), `fano_factor` with `ddof=0` is `elephant.statistics.fanofactor`,
`correlation_matrix` is `elephant.spike_train_correlation.correlation_coefficient`,
`cross_correlogram` is `cross_correlation_histogram` (`border_correction=False`,
window `[-L, L]`) and `instantaneous_rate` is `elephant.statistics.instantaneous_rate`
(with `center_kernel=False`, when `cutoff * sigma_ms / bin_ms` is an integer).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._misc import check_range, is_concrete

KERNELS = ("gaussian", "rectangular", "exponential")


# --------------------------------------------------------------------------- binning
def _n_bins(name: str, t_start: float, t_stop: float, bin_ms: float) -> int:
    check_range(bin_ms, f"{name} bin_ms", "ms", low=0.0, low_open=True)
    check_range(t_start, f"{name} t_start", "ms")
    check_range(t_stop, f"{name} t_stop", "ms")
    if not float(t_stop) > float(t_start):
        raise ValueError(f"{name} t_stop [ms] must be greater than t_start, got t_start = "
                         f"{float(t_start):g}, t_stop = {float(t_stop):g}.")
    bins = int(math.floor((float(t_stop) - float(t_start)) / float(bin_ms) + 1e-9))
    if bins < 1:
        raise ValueError(f"{name} bin_ms [ms] must be at most t_stop - t_start = "
                         f"{float(t_stop) - float(t_start):g}, got {float(bin_ms):g}.")
    return bins


def _check_ids(name: str, ids, times, n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} n (number of neurons) must be a positive integer, got {n!r}.")
    if is_concrete(ids) and is_concrete(times):
        i = np.asarray(ids)
        t = np.asarray(times, float)
        if i.shape != t.shape:
            raise ValueError(f"{name} times and ids must have the same shape, got {t.shape} "
                             f"and {i.shape}.")
        bad = np.isfinite(t) & ((i < 0) | (i >= n))
        if np.any(bad):
            raise ValueError(f"{name} ids must lie in [0, {n - 1}] (n = {n}), got "
                             f"{int(i[bad][0])}.")


def bin_spikes(
    times: Real[ArrayLike, " k"],
    ids: ArrayLike,
    n: int,
    t_start: float,
    t_stop: float,
    bin_ms: float,
) -> Float[Array, "n bins"]:
    """Spike counts of each neuron in consecutive bins of `bin_ms`.

    Bin `j` is the half-open interval `[t_start + j bin_ms, t_start + (j + 1) bin_ms)`;
    there are `floor((t_stop - t_start) / bin_ms)` bins, and spikes after the last
    full bin (or outside `[t_start, t_stop)`) are not counted, as in Elephant's
    `BinnedSpikeTrain`.

    **Arguments:**

    - `times`: Spike times [ms], shape `(k,)`; `NaN` entries are padding (no spike).
    - `ids`: Neuron index of each spike, in `[0, n)`, shape `(k,)`.
    - `n`: Number of neurons.
    - `t_start`, `t_stop`: Window [ms], `t_stop > t_start`.
    - `bin_ms`: Bin width [ms], positive.

    **Returns:** counts, shape `(n, bins)` (float).
    """
    bins = _n_bins("bin_spikes", t_start, t_stop, bin_ms)
    _check_ids("bin_spikes", ids, times, n)
    return _bin_spikes(jnp.asarray(times, float), jnp.asarray(ids), float(t_start), float(bin_ms),
                       n=n, bins=bins)


@functools.partial(jax.jit, static_argnames=("n", "bins"))
def _bin_spikes(t, ids, t_start, bin_ms, *, n, bins):
    i = ids.astype(jnp.int32)
    k = jnp.floor((t - t_start) / bin_ms)
    valid = jnp.isfinite(t) & (k >= 0) & (k < bins)
    flat = jnp.where(valid, i * bins + jnp.where(valid, k, 0).astype(jnp.int32), n * bins)
    counts = jnp.zeros(n * bins + 1, t.dtype).at[flat].add(1.0)
    return counts[:-1].reshape(n, bins)


def binned(res, pop: str, bin_ms: float, t_start: float | None = None,
           t_stop: float | None = None) -> Float[Array, "*batch n bins"]:
    """Spike counts of population `pop` of a `Result` in bins of `bin_ms`, shape
    `(..., n, bins)` (leading axes: the batch of a vmapped simulation).

    Counted per time step from the recorded raster: a step's spike (reported at the
    step's end, as `Result.spike_times` does) counts in the bin that holds the step,
    so the counts equal `bin_spikes(times - dt / 2, ids, ...)`.

    **Arguments:**

    - `res`: A `Result` that recorded `pop`'s spikes.
    - `pop`: Population name.
    - `bin_ms`: Bin width [ms], a positive multiple of the time step `res.dt`.
    - `t_start`, `t_stop`: Window [ms] (default the whole run); the bins start at
      `t_start` and the last incomplete bin is dropped.
    """
    check_range(bin_ms, "binned bin_ms", "ms", low=0.0, low_open=True)
    per = int(round(float(bin_ms) / res.dt))
    if per < 1 or abs(per * res.dt - float(bin_ms)) > 1e-9 * float(bin_ms):
        raise ValueError(f"binned bin_ms [ms] must be a positive multiple of the time step "
                         f"dt = {res.dt:g} ms, got {float(bin_ms):g}.")
    i0, i1 = res._window(t_start, t_stop)
    bins = (i1 - i0) // per
    if bins < 1:
        raise ValueError(f"binned bin_ms [ms] must be at most the window length "
                         f"{(i1 - i0) * res.dt:g}, got {float(bin_ms):g}.")
    s = jnp.asarray(res._spikes(pop))[..., i0:i0 + bins * per, :].astype(float)
    s = s.reshape(*s.shape[:-2], bins, per, s.shape[-1]).sum(axis=-2)
    return jnp.swapaxes(s, -1, -2)


def spike_arrays(res, pop: str, t_start: float | None = None,
                 t_stop: float | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """`(times [ms], ids, n)` of the spikes of `pop` in a `Result`, in time order.

    For a batched result (a vmapped simulation) `times` and `ids` have shape
    `(..., k)` with `k` the largest spike count of any batch member; the other members
    are padded with `NaN` times (id 0), which every function here ignores, so
    `jax.vmap(lambda t, i: cv(t, i, n))(times, ids)` runs over the batch.

    **Arguments:**

    - `res`: A `Result` that recorded `pop`'s spikes.
    - `pop`: Population name.
    - `t_start`, `t_stop`: Window [ms] (default the whole run): spikes of the steps
      that lie in it.
    """
    i0, i1 = res._window(t_start, t_stop)
    s = np.asarray(res._spikes(pop))[..., i0:i1, :]
    n = s.shape[-1]
    batch = s.shape[:-2]
    flat = s.reshape(-1, *s.shape[-2:])
    found = [np.nonzero(f) for f in flat]
    k = max((len(st) for st, _ in found), default=0)
    times = np.full((len(found), k), np.nan)
    ids = np.zeros((len(found), k), dtype=np.int64)
    for b, (st, nr) in enumerate(found):
        times[b, :len(st)] = res.t_start + res.dt * (i0 + st + 1)
        ids[b, :len(st)] = nr
    return times.reshape(*batch, k), ids.reshape(*batch, k), n


# --------------------------------------------------------------------------- rates
def firing_rates(counts: Real[ArrayLike, "*batch n bins"], bin_ms: float) -> Float[Array, "*batch n"]:
    """Mean firing rate of each neuron [Hz] over all bins of `counts` (bins of
    `bin_ms` [ms])."""
    check_range(bin_ms, "firing_rates bin_ms", "ms", low=0.0, low_open=True)
    c = jnp.asarray(counts, float)
    return c.sum(axis=-1) / (c.shape[-1] * float(bin_ms) * 1e-3)


def population_activity(counts: Real[ArrayLike, "*batch n bins"], bin_ms: float) -> Float[Array, "*batch bins"]:
    r"""Population activity $A(t)$ [Hz]: spikes per neuron per second in each bin of
    `bin_ms` [ms] (the mean over neurons of `counts`, shape `(..., n, bins)`)."""
    check_range(bin_ms, "population_activity bin_ms", "ms", low=0.0, low_open=True)
    return jnp.asarray(counts, float).mean(axis=-2) / (float(bin_ms) * 1e-3)


def rate_kernel(kernel: str, sigma_ms: float, bin_ms: float, cutoff: float = 5.0
                ) -> tuple[np.ndarray, np.ndarray]:
    r"""The smoothing kernel of `instantaneous_rate`, sampled at lags `j * bin_ms`,
    `j = -H..H`, `H = ceil(cutoff * sigma_ms / bin_ms)`. Each kernel is a probability
    density of standard deviation `sigma_ms` (Elephant's convention):

    - `"gaussian"`: $e^{-t^2/2\sigma^2}/(\sqrt{2\pi}\sigma)$;
    - `"rectangular"`: $1/(2\tau)$ for $|t| < \tau = \sqrt 3 \sigma$, else 0;
    - `"exponential"`: causal, $e^{-t/\sigma}/\sigma$ for $t \ge 0$, else 0 (the rate
      at $t$ sees only spikes up to $t$).

    **Returns:** `(lags [ms], values [Hz])` (density in 1/ms times 1000).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")
    check_range(sigma_ms, "instantaneous_rate sigma_ms", "ms", low=0.0, low_open=True)
    check_range(bin_ms, "instantaneous_rate bin_ms", "ms", low=0.0, low_open=True)
    check_range(cutoff, "instantaneous_rate cutoff", "kernel standard deviations", low=0.0,
                low_open=True)
    sigma, h = float(sigma_ms), float(bin_ms)
    half = math.ceil(cutoff * sigma / h - 1e-9)
    t = h * np.arange(-half, half + 1)
    if kernel == "gaussian":
        k = np.exp(-0.5 * (t / sigma) ** 2) / (math.sqrt(2.0 * math.pi) * sigma)
    elif kernel == "rectangular":
        tau = math.sqrt(3.0) * sigma
        k = (np.abs(t) < tau) / (2.0 * tau)
    else:
        k = np.where(t >= 0, np.exp(-np.maximum(t, 0.0) / sigma), 0.0) / sigma
    return t, 1e3 * k


def instantaneous_rate(
    counts: Real[ArrayLike, "*batch n bins"],
    bin_ms: float,
    sigma_ms: float,
    kernel: str = "gaussian",
    *,
    cutoff: float = 5.0,
) -> Float[Array, "*batch n bins"]:
    r"""Time-resolved firing rate [Hz]: the binned spike train convolved with a kernel
    of unit area,

    $$r(t_i) = \sum_{j=-H}^{H} c_{i-j}\, K(j\,\Delta),$$

    with counts $c$ in bins of width $\Delta$ = `bin_ms` and $K$ from `rate_kernel`
    (zero counts assumed outside the window, so the estimate dips within a kernel
    width of the edges). Elephant's `instantaneous_rate` with the same kernel,
    `sampling_period = bin_ms`, `center_kernel=False`, `trim=False`.

    **Arguments:**

    - `counts`: Spike counts, shape `(..., n, bins)` (e.g. from `bin_spikes` or
      `binned`; fine bins, e.g. 1 ms, give a smooth estimate).
    - `bin_ms`: Their bin width [ms], positive.
    - `sigma_ms`: Kernel standard deviation [ms], positive.
    - `kernel`: `"gaussian"`, `"rectangular"` or `"exponential"` (causal).
    - `cutoff`: Kernel support in standard deviations (each side), positive.
    """
    _, k = rate_kernel(kernel, sigma_ms, bin_ms, cutoff)
    c = jnp.asarray(counts, float)
    return _smooth(c, jnp.asarray(k, c.dtype))


@jax.jit
def _smooth(c, kk):
    half = (kk.shape[0] - 1) // 2
    flat = c.reshape(-1, c.shape[-1])
    padded = jnp.pad(flat, ((0, 0), (half, half)))
    out = jax.vmap(lambda row: jnp.convolve(row, kk, mode="valid", precision="highest"))(padded)
    return out.reshape(c.shape)


# --------------------------------------------------------------------------- ISIs
def _isis(times, ids, n):
    """ISIs in (neuron, time) order: `(isi [ms], valid, owner)` with `owner` the neuron
    of each ISI (`n` for entries that are not ISIs)."""
    t = jnp.asarray(times, float)
    valid = jnp.isfinite(t)
    key = jnp.where(valid, jnp.asarray(ids).astype(jnp.int32), n)
    t0 = jnp.where(valid, t, 0.0)
    order = jnp.lexsort((t0, key))
    t_s, k_s = t0[order], key[order]
    same = (k_s[1:] == k_s[:-1]) & (k_s[1:] < n)
    return t_s[1:] - t_s[:-1], same, jnp.where(same, k_s[1:], n)


def _segment_mean(x, valid, owner, n):
    count = jax.ops.segment_sum(valid.astype(x.dtype), owner, n + 1)[:n]
    total = jax.ops.segment_sum(jnp.where(valid, x, 0.0), owner, n + 1)[:n]
    return total / jnp.maximum(count, 1.0), count


def cv(times: Real[ArrayLike, " k"], ids: ArrayLike, n: int, *, min_isis: int = 2) -> Float[Array, " n"]:
    r"""Coefficient of variation of each neuron's interspike intervals,
    $\mathrm{CV} = \sigma_{\rm ISI}/\mu_{\rm ISI}$ (standard deviation with `ddof=0`,
    as `elephant.statistics.cv` and `scipy.stats.variation`). 1 for a Poisson
    process, $1/\sqrt{k}$ for a gamma process of shape $k$, 0 for regular firing.

    **Arguments:**

    - `times`: Spike times [ms], shape `(k,)`, any order; `NaN` entries are padding.
    - `ids`: Neuron index of each spike, in `[0, n)`.
    - `n`: Number of neurons.
    - `min_isis`: Neurons with fewer ISIs get `NaN` (at least 2).

    **Returns:** CV per neuron, shape `(n,)`; `nanmean` of it is the population CV.
    """
    _check_ids("cv", ids, times, n)
    if min_isis < 2:
        raise ValueError(f"cv min_isis must be at least 2, got {min_isis}.")
    return _cv(jnp.asarray(times, float), jnp.asarray(ids), n=n, min_isis=min_isis)


@functools.partial(jax.jit, static_argnames=("n", "min_isis"))
def _cv(times, ids, *, n, min_isis):
    isi, same, owner = _isis(times, ids, n)
    mean, count = _segment_mean(isi, same, owner, n)
    dev = isi - jnp.concatenate([mean, jnp.zeros(1, mean.dtype)])[owner]
    var, _ = _segment_mean(dev * dev, same, owner, n)
    ok = (count >= min_isis) & (mean > 0)
    return jnp.where(ok, jnp.sqrt(var) / jnp.where(ok, mean, 1.0), jnp.nan)


def cv2(times: Real[ArrayLike, " k"], ids: ArrayLike, n: int, *, min_isis: int = 2) -> Float[Array, " n"]:
    r"""CV2 of each neuron (Holt et al. 1996), the mean over consecutive ISI pairs of
    $2|I_{k+1} - I_k| / (I_{k+1} + I_k)$: a local measure of irregularity, insensitive
    to slow rate changes. 1 for a Poisson process; for a gamma process of shape $k$,
    $\Gamma(2k) / (k\,\Gamma(k)^2\,4^{k-1})$. `elephant.statistics.cv2` of the ISIs.

    **Arguments:** as `cv` (`min_isis` at least 2: one ISI pair).
    """
    _check_ids("cv2", ids, times, n)
    if min_isis < 2:
        raise ValueError(f"cv2 min_isis must be at least 2, got {min_isis}.")
    return _cv2(jnp.asarray(times, float), jnp.asarray(ids), n=n, min_isis=min_isis)


@functools.partial(jax.jit, static_argnames=("n", "min_isis"))
def _cv2(times, ids, *, n, min_isis):
    isi, same, owner = _isis(times, ids, n)
    pair = same[1:] & same[:-1]
    a, b = isi[:-1], isi[1:]
    total = jnp.where(pair, a + b, 1.0)
    term = 2.0 * jnp.abs(b - a) / total
    value, pairs = _segment_mean(term, pair, jnp.where(pair, owner[1:], n), n)
    return jnp.where(pairs >= min_isis - 1, value, jnp.nan)


# --------------------------------------------------------------------------- counts
def fano_factor(counts: Real[ArrayLike, "*batch windows"], *, ddof: int = 0) -> Float[Array, "*batch"]:
    """Fano factor of spike counts, variance / mean over the last axis (windows or
    trials); `NaN` where the mean count is 0. 1 for a Poisson process in any window.

    **Arguments:**

    - `counts`: Spike counts, e.g. `bin_spikes(..., bin_ms=window)` (shape `(n,
      windows)`: one Fano factor per neuron) or one count per trial on the last axis.
    - `ddof`: Delta degrees of freedom of the variance; 0 (Elephant's
      `fanofactor`, numpy's `var`) has expectation `(m - 1)/m` for a Poisson process
      with `m` windows, 1 is unbiased.
    """
    c = jnp.asarray(counts, float)
    m = c.shape[-1]
    if m - ddof < 1:
        raise ValueError(f"fano_factor needs more than ddof = {ddof} windows, got {m}.")
    return _fano(c, ddof=ddof)


@functools.partial(jax.jit, static_argnames=("ddof",))
def _fano(c, *, ddof):
    mean = c.mean(axis=-1)
    var = jnp.sum((c - mean[..., None]) ** 2, axis=-1) / (c.shape[-1] - ddof)
    return jnp.where(mean > 0, var / jnp.where(mean > 0, mean, 1.0), jnp.nan)


def correlation_matrix(counts: Real[ArrayLike, "*batch n bins"]) -> Float[Array, "*batch n n"]:
    """Pearson correlation coefficients between the binned spike counts of all pairs
    of neurons (Elephant's `correlation_coefficient`, numpy's `corrcoef`).

    Neurons whose count does not vary over the bins (silent ones, in particular) have
    no defined correlation: their row and column are `NaN`, diagonal included.

    **Arguments:**

    - `counts`: Spike counts, shape `(..., n, bins)`, at least 2 bins. The bin width
      sets the time scale of the correlation (Cohen & Kohn 2011).
    """
    c = jnp.asarray(counts, float)
    if c.ndim < 2 or c.shape[-1] < 2:
        raise ValueError(f"correlation_matrix needs counts of shape (..., n, bins >= 2), got {c.shape}.")
    return _corr(c)


@jax.jit
def _corr(c):
    xc = c - c.mean(axis=-1, keepdims=True)
    cov = xc @ jnp.swapaxes(xc, -1, -2)
    var = jnp.diagonal(cov, axis1=-2, axis2=-1)
    ok = var > 0
    sd = jnp.where(ok, jnp.sqrt(jnp.where(ok, var, 1.0)), jnp.nan)
    return cov / (sd[..., :, None] * sd[..., None, :])


def mean_correlation(counts: Real[ArrayLike, "*batch n bins"]) -> Float[Array, "*batch"]:
    """Mean spike-count correlation coefficient over all pairs of distinct neurons
    whose counts vary (the `NaN` rows of `correlation_matrix`, e.g. silent neurons,
    are left out); `NaN` if fewer than two neurons qualify."""
    return _mean_corr(correlation_matrix(counts))


@jax.jit
def _mean_corr(r):
    n = r.shape[-1]
    iu = np.triu_indices(n, k=1)
    pairs = r[..., iu[0], iu[1]]
    ok = jnp.isfinite(pairs)
    total = jnp.sum(jnp.where(ok, pairs, 0.0), axis=-1)
    num = ok.sum(axis=-1)
    return jnp.where(num > 0, total / jnp.maximum(num, 1), jnp.nan)


def cross_correlogram(
    x: Real[ArrayLike, "*batch bins"],
    y: Real[ArrayLike, "*batch bins"],
    bin_ms: float,
    max_lag_ms: float,
    *,
    coefficient: bool = False,
) -> tuple[np.ndarray, Float[Array, "*batch lags"]]:
    r"""Cross-correlogram of two binned spike trains,

    $$C(\tau) = \sum_t x_t\, y_{t+\tau}, \qquad \tau = -L..L \text{ bins},$$

    so a peak at positive lag means `y` fires after `x` (Elephant's
    `cross_correlation_histogram(x, y)`, no border correction). With
    `coefficient=True` it is normalised to the cross-correlation coefficient
    $(C(\tau) - N_x N_y / T) / \sqrt{(\sum x^2 - N_x^2/T)(\sum y^2 - N_y^2/T)}$
    ($N$: spike counts, $T$: bins; Elephant's `cross_correlation_coefficient=True`),
    which at lag 0 is the Pearson correlation of the counts.

    **Arguments:**

    - `x`, `y`: Spike counts, shape `(..., bins)` (broadcast against each other:
      `x[:, None]` and `y[None]` give all pairs of two populations).
    - `bin_ms`: Their bin width [ms], positive.
    - `max_lag_ms`: Largest lag [ms], a non-negative multiple of `bin_ms`, shorter
      than the train.

    **Returns:** `(lags [ms], C)`, `C` of shape `(..., 2L + 1)` [spike pairs, or
    dimensionless with `coefficient=True`].
    """
    check_range(bin_ms, "cross_correlogram bin_ms", "ms", low=0.0, low_open=True)
    check_range(max_lag_ms, "cross_correlogram max_lag_ms", "ms", low=0.0)
    lag = int(round(float(max_lag_ms) / float(bin_ms)))
    if abs(lag * float(bin_ms) - float(max_lag_ms)) > 1e-9 * max(float(max_lag_ms), 1.0):
        raise ValueError(f"cross_correlogram max_lag_ms [ms] must be a multiple of bin_ms = "
                         f"{float(bin_ms):g}, got {float(max_lag_ms):g}.")
    x, y = jnp.asarray(x, float), jnp.asarray(y, float)
    x, y = jnp.broadcast_arrays(x, y)
    t = x.shape[-1]
    if lag >= t:
        raise ValueError(f"cross_correlogram max_lag_ms [ms] must be shorter than the trains "
                         f"({t} bins of {float(bin_ms):g} ms), got {float(max_lag_ms):g}.")
    return float(bin_ms) * np.arange(-lag, lag + 1), _ccg(x, y, lag=lag, coefficient=coefficient)


@functools.partial(jax.jit, static_argnames=("lag", "coefficient"))
def _ccg(x, y, *, lag, coefficient):
    t = x.shape[-1]
    yp = jnp.pad(y, [(0, 0)] * (y.ndim - 1) + [(lag, lag)])
    idx = np.arange(2 * lag + 1)[:, None] + np.arange(t)[None, :]
    c = jnp.einsum("...t,...lt->...l", x, yp[..., idx], precision="highest")
    if coefficient:
        nx, ny = x.sum(-1), y.sum(-1)
        sxy = jnp.sqrt((jnp.sum(x * x, -1) - nx**2 / t) * (jnp.sum(y * y, -1) - ny**2 / t))
        c = (c - (nx * ny / t)[..., None]) / sxy[..., None]
    return c
