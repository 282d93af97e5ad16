"""Theory on the same model objects: fixed points, Jacobians and stability of built
rate networks, inhibition stabilisation and paradoxical responses, continuation, the
largest Lyapunov exponent, the mean field of random and low-rank rate networks
(see `neurojax.theory.steady_states` for the conventions), and the diffusion-
approximation mean field of LIF networks (`siegert`, `lif_mean_field`: Brunel 2000,
with the Fourcaud & Brunel 2002 correction for synaptic filtering) with its linear
response to a modulated input mean or variance (`lif_transfer_function`,
`lif_variance_transfer_function`: Brunel & Hakim 1999, by threshold integration)."""

from .chaos import lyapunov_exponent as lyapunov_exponent, lyapunov_spectrum as lyapunov_spectrum
from .branches import Branch as Branch, continuation as continuation
from .steady_states import (
    KINDS as KINDS,
    FixedPoints as FixedPoints,
    SlowPoints as SlowPoints,
    by_population as by_population,
    check_rate_network as check_rate_network,
    classify as classify,
    eigenvalues as eigenvalues,
    fixed_point as fixed_point,
    fixed_points as fixed_points,
    jacobian as jacobian,
    population_slices as population_slices,
    rates as rates,
    slow_points as slow_points,
    state_vector as state_vector,
    vector_field as vector_field,
    with_extra_drive as with_extra_drive,
)
from .isn import ISN as ISN, is_isn as is_isn, paradoxical_response as paradoxical_response
from .random_networks import (
    dmft_variance as dmft_variance,
    low_rank_mean_field as low_rank_mean_field,
)
from .diffusion import (
    LIFMeanField as LIFMeanField,
    lif_mean_field as lif_mean_field,
    log_siegert as log_siegert,
    siegert as siegert,
)
from .transfer import (
    lif_transfer_function as lif_transfer_function,
    lif_variance_transfer_function as lif_variance_transfer_function,
)
