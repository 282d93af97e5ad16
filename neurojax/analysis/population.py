r"""Population-level analysis in JAX: power spectra, Golomb's synchrony measure,
tuning curves and dimensionality (participation ratio, PCA). Every function works on
the last axes of its input, so leading axes (trials) broadcast and `vmap` works.

```python
counts = nj.analysis.binned(res, "E", bin_ms=1.0)
f, psd = nj.analysis.power_spectrum(nj.analysis.population_activity(counts, 1.0), 1.0,
                                    segment_ms=256.0)
chi = nj.analysis.synchrony_chi(counts)                       # spike-count version
chi_v = nj.analysis.synchrony_chi(jnp.swapaxes(res.variables["E.v"], -1, -2))
```
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._misc import check_range


def power_spectrum(
    signal: Real[ArrayLike, "*batch samples"],
    dt_ms: float,
    *,
    segment_ms: float | None = None,
) -> tuple[np.ndarray, Float[Array, "*batch freqs"]]:
    r"""One-sided power spectral density by Welch's method.

    The signal is cut into segments of `segment_ms` overlapping by half, each segment
    has its mean removed and is multiplied by a periodic Hann window
    $w_k = \tfrac12 - \tfrac12\cos(2\pi k/M)$, and the periodograms
    $2|\mathrm{DFT}(w x)|^2 / (f_s \sum_k w_k^2)$ (not doubled at 0 Hz and at the
    Nyquist frequency) are averaged: `scipy.signal.welch(x, fs, nperseg=M)` with its
    defaults. Its integral over frequency is the signal's variance.

    **Arguments:**

    - `signal`: Samples on the last axis, e.g. the population activity $A(t)$ [Hz]
      from `population_activity` (then the PSD is in Hz²/Hz).
    - `dt_ms`: Sample interval [ms], positive ($f_s = 1000/dt$ Hz).
    - `segment_ms`: Segment length [ms] (sets the frequency resolution
      $1000/\text{segment\_ms}$ Hz); default 256 samples or the whole signal if shorter.

    **Returns:** `(frequencies [Hz], psd [signal unit² / Hz])`.
    """
    check_range(dt_ms, "power_spectrum dt_ms", "ms", low=0.0, low_open=True)
    x = jnp.asarray(signal, float)
    total = x.shape[-1]
    if segment_ms is None:
        m = min(256, total)
    else:
        check_range(segment_ms, "power_spectrum segment_ms", "ms", low=2.0 * float(dt_ms),
                    high=total * float(dt_ms) * (1 + 1e-12))
        m = int(round(float(segment_ms) / float(dt_ms)))
    if m < 2:
        raise ValueError(f"power_spectrum needs at least 2 samples, got {total}.")
    fs = 1e3 / float(dt_ms)
    return np.fft.rfftfreq(m, d=1.0 / fs), _welch(x, fs, m=m)


@functools.partial(jax.jit, static_argnames=("m",))
def _welch(x, fs, *, m):
    step = m - m // 2
    starts = np.arange(0, x.shape[-1] - m + 1, step)
    w = 0.5 - 0.5 * np.cos(2.0 * math.pi * np.arange(m) / m)
    seg = x[..., starts[:, None] + np.arange(m)[None, :]]
    seg = seg - seg.mean(axis=-1, keepdims=True)
    spec = jnp.abs(jnp.fft.rfft(seg * jnp.asarray(w, x.dtype).reshape((1,) * (seg.ndim - 1) + (m,)), axis=-1)) ** 2 / (fs * float(np.sum(w * w)))
    scale = np.full(m // 2 + 1, 2.0)
    scale[0] = 1.0
    if m % 2 == 0:
        scale[-1] = 1.0
    psd = spec.mean(axis=-2)
    return psd * jnp.asarray(scale, x.dtype).reshape((1,) * (psd.ndim - 1) + scale.shape)


def synchrony_chi(x: Real[ArrayLike, "*batch n samples"]) -> Float[Array, "*batch"]:
    r"""Golomb's synchrony measure $\chi$ (Golomb & Rinzel 1993; Golomb 2007,
    Scholarpedia 2:1347):

    $$\chi^2 = \frac{\mathrm{Var}_t\big[\tfrac1N\sum_i x_i(t)\big]}
                    {\tfrac1N\sum_i \mathrm{Var}_t[x_i(t)]}.$$

    1 for identical activity, about $1/\sqrt N$ for $N$ independent units (plus a
    finite-sample bias of order $1/\sqrt{\text{samples}}$). $x$ may be membrane
    potentials (the original definition; `jnp.swapaxes(res.variables["E.v"], -1, -2)`)
    or binned spike counts / smoothed rates (`binned`, `instantaneous_rate`).
    `NaN` when no unit varies.

    **Arguments:**

    - `x`: Activity, shape `(..., n, samples)`.
    """
    return _chi(jnp.asarray(x, float))


@jax.jit
def _chi(v):
    pop = v.mean(axis=-2).var(axis=-1)
    single = v.var(axis=-1).mean(axis=-1)
    ok = single > 0
    return jnp.where(ok, jnp.sqrt(pop / jnp.where(ok, single, 1.0)), jnp.nan)


# --------------------------------------------------------------------------- tuning
def tuning_curve(
    responses: Real[ArrayLike, "trials *n"],
    stimulus: Real[ArrayLike, " m"],
    values: Real[ArrayLike, " k"] | None = None,
) -> tuple[Array, Float[Array, "k *n"]]:
    """Mean response to each stimulus value: the tuning curve.

    **Arguments:**

    - `responses`: One response per trial (e.g. a rate [Hz] or a spike count), shape
      `(trials,)` or `(trials, n)` for `n` neurons.
    - `stimulus`: The stimulus value of each trial (e.g. an orientation [deg]).
    - `values`: The stimulus values to average over (trials match a value exactly);
      default the distinct values of `stimulus` (needs a concrete `stimulus`: pass
      `values` under `jit`). A value no trial has gets `NaN`.

    **Returns:** `(values, curve)`, `curve` of shape `(k,)` or `(k, n)`.
    """
    r = jnp.asarray(responses, float)
    s = jnp.asarray(stimulus)
    if s.ndim != 1 or r.shape[0] != s.shape[0]:
        raise ValueError(f"tuning_curve needs one stimulus value per trial: responses "
                         f"{r.shape}, stimulus {s.shape}.")
    vals = jnp.asarray(np.unique(np.asarray(s)) if values is None else values)
    return vals, _tuning(r, s, vals)


@jax.jit
def _tuning(r, s, vals):
    match = (s[:, None] == vals[None, :]).astype(r.dtype)  # (trials, k)
    count = match.sum(axis=0)
    total = jnp.tensordot(match, r, axes=(0, 0))
    count = count.reshape(count.shape + (1,) * (r.ndim - 1))
    return jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan)


def preferred_stimulus(values: ArrayLike, curve: Real[ArrayLike, "k *n"]) -> Array:
    """The stimulus value with the largest mean response, per neuron (`curve` from
    `tuning_curve`)."""
    return jnp.asarray(values)[jnp.argmax(jnp.asarray(curve), axis=0)]


def selectivity_index(angles_deg: Real[ArrayLike, " k"], curve: Real[ArrayLike, "k *n"],
                      period_deg: float = 180.0) -> Float[Array, "*n"]:
    r"""Orientation (period 180°) or direction (period 360°) selectivity index by the
    vector sum, $|\sum_k r_k e^{2\pi i\theta_k/P}| / \sum_k r_k$ (one minus the
    circular variance; Ringach et al. 2002): 0 for a flat tuning curve, 1 for a
    response at a single angle; $b/2a$ for $r = a + b\cos(2\pi(\theta - \theta_0)/P)$
    sampled at equally spaced angles.

    **Arguments:**

    - `angles_deg`: Stimulus angles [deg], shape `(k,)`.
    - `curve`: Non-negative mean responses, shape `(k,)` or `(k, n)`.
    - `period_deg`: Period of the stimulus [deg], positive (180: orientation,
      360: direction).
    """
    check_range(period_deg, "selectivity_index period_deg", "deg", low=0.0, low_open=True)
    return _selectivity(jnp.asarray(curve, float), jnp.asarray(angles_deg, float), float(period_deg))


@jax.jit
def _selectivity(r, angles, period):
    phase = 2.0 * math.pi * angles / period
    phase = phase.reshape(phase.shape + (1,) * (r.ndim - 1))
    c = jnp.sum(r * jnp.cos(phase), axis=0)
    s = jnp.sum(r * jnp.sin(phase), axis=0)
    return jnp.sqrt(c * c + s * s) / jnp.sum(r, axis=0)


# --------------------------------------------------------------------------- dimensionality
@jax.jit
def _cov(v):
    xc = v - v.mean(axis=-1, keepdims=True)
    return xc @ jnp.swapaxes(xc, -1, -2) / (v.shape[-1] - 1)


def _covariance(x):
    v = jnp.asarray(x, float)
    if v.ndim < 2 or v.shape[-1] < 2:
        raise ValueError(f"needs data of shape (..., n, samples >= 2), got {v.shape}.")
    return _cov(v)


def participation_ratio(x: Real[ArrayLike, "*batch n samples"]) -> Float[Array, "*batch"]:
    r"""Participation ratio of the covariance eigenvalues $\lambda_i$,
    $\mathrm{PR} = (\sum_i\lambda_i)^2 / \sum_i\lambda_i^2 = \mathrm{tr}(C)^2 /
    \mathrm{tr}(C^2)$ (Gao et al. 2017; Recanatesi et al. 2019): between 1 (one
    dimension) and $n$ (equal variance in all directions). Differentiable (no
    eigendecomposition).

    **Arguments:**

    - `x`: Activity, shape `(..., n, samples)` (e.g. binned counts or rates).
    """
    return _pr(_covariance(x))


@jax.jit
def _pr(c):
    tr = jnp.trace(c, axis1=-2, axis2=-1)
    return tr * tr / jnp.sum(c * c, axis=(-2, -1))


def pca(x: Real[ArrayLike, "n samples"], k: int | None = None
        ) -> tuple[Float[Array, "k n"], Float[Array, " k"], Float[Array, " k"]]:
    """Principal components of activity `x` (shape `(n, samples)`), from the
    eigendecomposition of the sample covariance (`ddof=1`).

    **Arguments:**

    - `x`: Activity, shape `(n, samples)`.
    - `k`: Number of components, in `[1, n]` (default all).

    **Returns:** `(components, explained_variance, explained_variance_ratio)`:
    unit-norm components as rows, shape `(k, n)`, in decreasing order of variance,
    each signed so that its largest-magnitude loading is positive; the variance along
    each [unit of x squared] and its fraction of the total. Project with
    `components @ (x - x.mean(-1, keepdims=True))`.
    """
    c = _covariance(x)
    n = c.shape[-1]
    k = n if k is None else k
    if not 1 <= k <= n:
        raise ValueError(f"pca k must lie in [1, {n}], got {k}.")
    return _pca(c, k=k)


@functools.partial(jax.jit, static_argnames=("k",))
def _pca(c, *, k):
    lam, vec = jnp.linalg.eigh(c)
    lam, vec = lam[::-1][:k], vec[:, ::-1][:, :k].T
    big = jnp.take_along_axis(vec, jnp.argmax(jnp.abs(vec), axis=-1)[:, None], axis=-1)
    vec = vec * jnp.sign(big)
    return vec, lam, lam / jnp.trace(c)
