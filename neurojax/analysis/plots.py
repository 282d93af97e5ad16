"""Figures of simulation results (matplotlib; the backend is left to the caller)."""

from __future__ import annotations

from .spikes import population_rate


def raster(result, pops=None, *, max_neurons: int = 500, bin_ms: float = 1.0, ax=None):
    """Raster and population rate of `pops` from a `Result`; returns the `Figure`.

    `ax=None` makes a new figure (raster on top, rate below); one matplotlib `Axes`
    draws only the raster into it; a pair `(raster_ax, rate_ax)` draws both. At most
    `max_neurons` neurons of each population are drawn; the rate is binned in `bin_ms`
    [ms] bins. The backend is the caller's choice (set `MPLBACKEND=Agg` for files only).
    By default every recorded spiking population is drawn; graded populations (rate
    units, `result.graded`) have no spikes and are left out.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        fig, (ax_r, ax_a) = plt.subplots(2, 1, figsize=(8, 5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    elif isinstance(ax, (tuple, list)):
        if len(ax) != 2:
            raise ValueError(f"raster ax= must be one Axes or a pair (raster, rate), got {len(ax)} axes.")
        ax_r, ax_a = ax
        fig = ax_r.figure
    else:
        ax_r, ax_a, fig = ax, None, ax.figure

    graded = getattr(result, "graded", ())
    pops = [p for p in result.spikes if p not in graded] if pops is None else list(pops)
    sizes = dict(result.sizes)
    offset = 0
    for k, pop in enumerate(pops):
        times, ids = result.spike_times(pop)
        shown = ids < max_neurons
        color = f"C{k}"
        ax_r.plot(times[shown], ids[shown] + offset, color=color, label=pop,
                  marker="|", markersize=2, linestyle="none")
        if ax_a is not None:
            centres, rate = population_rate(times, sizes[pop], result.t_start, result.t_stop, bin_ms)
            ax_a.plot(centres, rate, color=color, lw=0.8, label=pop)
        offset += min(sizes[pop], max_neurons)
    ax_r.set_ylabel("neuron")
    if pops:  # (a legend without entries warns)
        ax_r.legend(loc="upper right", markerscale=4)
    ax_r.set_xlim(result.t_start, result.t_stop)
    if ax_a is None:
        ax_r.set_xlabel("time [ms]")
    else:
        ax_a.set_xlabel("time [ms]")
        ax_a.set_ylabel("rate [Hz]")
    if ax is None:
        fig.tight_layout()
    return fig
