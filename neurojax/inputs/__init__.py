"""External inputs: `Constant`, `Waveform`, `Poisson` (independent drive),
`PoissonPopulation` (source population), `OrnsteinUhlenbeck`."""

from .._abstract import AbstractInput as AbstractInput
from .deterministic import Constant as Constant, Waveform as Waveform
from .stochastic import (
    OrnsteinUhlenbeck as OrnsteinUhlenbeck,
    OrnsteinUhlenbeckState as OrnsteinUhlenbeckState,
    Poisson as Poisson,
    PoissonPopulation as PoissonPopulation,
    PoissonPopulationState as PoissonPopulationState,
    PoissonState as PoissonState,
)
