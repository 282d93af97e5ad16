"""Analysis of simulation results: spike statistics, figures, BOLD (Balloon–Windkessel)
and functional connectivity."""

from .spikes import isi_cv as isi_cv, population_rate as population_rate, synchrony as synchrony
from .bold import (
    balloon_windkessel as balloon_windkessel,
    bold_steady_state as bold_steady_state,
    fc_similarity as fc_similarity,
    functional_connectivity as functional_connectivity,
)
