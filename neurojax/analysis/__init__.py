"""Analysis of simulation results: spike statistics and figures."""

from .spikes import isi_cv as isi_cv, population_rate as population_rate, synchrony as synchrony
