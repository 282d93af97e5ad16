"""Analysis of simulation results: spike-train statistics, population measures,
figures, BOLD (Balloon–Windkessel) and functional connectivity.

Spike trains enter as spike-time arrays `(times [ms], ids)` (`spike_arrays(res, pop)`
for a `Result`; `NaN` times pad trials to one length) or as binned counts
`(..., n, bins)` (`bin_spikes`, or `binned(res, pop, bin_ms)`). Everything in JAX is
`jit`-able and `vmap`-able over trials:

- rates: `firing_rates`, `population_activity`, `instantaneous_rate` (Gaussian,
  rectangular or causal exponential kernel; `rate_kernel`), and the numpy
  `population_rate`;
- variability: `cv` and `cv2` (per neuron), `fano_factor`, and the numpy population
  summary `isi_cv`;
- correlations: `correlation_matrix`, `mean_correlation`, `cross_correlogram`;
- population: `power_spectrum` (Welch), `synchrony_chi` (Golomb), and the numpy
  `synchrony` (std/mean of the population rate);
- tuning: `tuning_curve`, `preferred_stimulus`, `selectivity_index`;
- dimensionality: `participation_ratio`, `pca`.

Where Elephant defines a measure the definitions are Elephant's; tests/analysis
compares them with Elephant on the same spike trains to 1e-9.
"""

from .spikes import isi_cv as isi_cv, population_rate as population_rate, synchrony as synchrony
from .spiketrains import (
    bin_spikes as bin_spikes,
    binned as binned,
    correlation_matrix as correlation_matrix,
    cross_correlogram as cross_correlogram,
    cv as cv,
    cv2 as cv2,
    fano_factor as fano_factor,
    firing_rates as firing_rates,
    instantaneous_rate as instantaneous_rate,
    mean_correlation as mean_correlation,
    population_activity as population_activity,
    rate_kernel as rate_kernel,
    spike_arrays as spike_arrays,
)
from .population import (
    participation_ratio as participation_ratio,
    pca as pca,
    power_spectrum as power_spectrum,
    preferred_stimulus as preferred_stimulus,
    selectivity_index as selectivity_index,
    synchrony_chi as synchrony_chi,
    tuning_curve as tuning_curve,
)
from .bold import (
    balloon_windkessel as balloon_windkessel,
    bold_steady_state as bold_steady_state,
    fc_similarity as fc_similarity,
    functional_connectivity as functional_connectivity,
)
