"""Spike-train statistics on numpy arrays of spike times [ms] and neuron indices."""

from __future__ import annotations

import numpy as np


def isi_cv(times: np.ndarray, ids: np.ndarray, n: int, *, min_spikes: int = 4) -> float:
    """Mean over neurons (with at least `min_spikes` spikes) of the coefficient of
    variation of their interspike intervals; NaN when no neuron qualifies.

    **Arguments:**

    - `times`: Spike times [ms].
    - `ids`: Neuron index of each spike, in `[0, n)`.
    - `n`: Number of neurons.
    """
    times = np.asarray(times, float)
    ids = np.asarray(ids, int)
    order = np.lexsort((times, ids))
    times, ids = times[order], ids[order]
    counts = np.bincount(ids, minlength=n)
    cvs = []
    start = 0
    for c in counts:
        if c >= min_spikes:
            isi = np.diff(times[start:start + c])
            mean = isi.mean()
            if mean > 0:
                cvs.append(isi.std() / mean)
        start += c
    return float(np.mean(cvs)) if cvs else float("nan")


def population_rate(times: np.ndarray, n: int, t_start: float, t_stop: float, bin_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Population rate A(t) [Hz] in bins of `bin_ms` [ms]: spikes per neuron per second.
    Returns `(bin centres [ms], rate [Hz])`."""
    edges = np.arange(t_start, t_stop + 0.5 * bin_ms, bin_ms)
    counts, _ = np.histogram(np.asarray(times, float), bins=edges)
    return 0.5 * (edges[1:] + edges[:-1]), counts / (n * bin_ms * 1e-3)


def synchrony(times: np.ndarray, n: int, t_start: float, t_stop: float, bin_ms: float = 1.0) -> float:
    """Std/mean of the population rate in `bin_ms` bins: 0 for a perfectly asynchronous
    infinite network, large for synchronous firing (the synchrony index of
    REFERENCES.md section 5)."""
    _, a = population_rate(times, n, t_start, t_stop, bin_ms)
    return float(a.std() / a.mean()) if a.mean() > 0 else float("nan")
