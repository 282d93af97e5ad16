"""Figures of simulation results (matplotlib, no display needed)."""

from __future__ import annotations


from .spikes import population_rate


def raster(result, pops=None, *, max_neurons: int = 500, bin_ms: float = 1.0):
    """Raster (top) and population rate (bottom) of `pops` from a `Result`; returns the
    `Figure`. At most `max_neurons` neurons of each population are drawn."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pops = list(result.spikes) if pops is None else list(pops)
    sizes = dict(result.sizes)
    fig, (ax_r, ax_a) = plt.subplots(2, 1, figsize=(8, 5), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 1]})
    offset = 0
    for k, pop in enumerate(pops):
        times, ids = result.spike_times(pop)
        shown = ids < max_neurons
        color = f"C{k}"
        ax_r.plot(times[shown], ids[shown] + offset, color=color, label=pop,
                  marker="|", markersize=2, linestyle="none")
        centres, rate = population_rate(times, sizes[pop], result.t_start, result.t_stop, bin_ms)
        ax_a.plot(centres, rate, color=color, lw=0.8, label=pop)
        offset += min(sizes[pop], max_neurons)
    ax_r.set_ylabel("neuron")
    ax_r.legend(loc="upper right", markerscale=4)
    ax_a.set_xlabel("time [ms]")
    ax_a.set_ylabel("rate [Hz]")
    ax_r.set_xlim(result.t_start, result.t_stop)
    fig.tight_layout()
    return fig
