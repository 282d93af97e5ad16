"""External inputs: `Constant`, `Waveform`, `Poisson` (independent drive),
`PoissonPopulation` and `SpikeTrains` (source populations), `OrnsteinUhlenbeck`, and
`Tuned` (Poisson drive tuned to a feature of the target, e.g. an oriented grating)."""

from .._abstract import AbstractInput as AbstractInput
from .deterministic import (
    Constant as Constant,
    SpikeTrains as SpikeTrains,
    SpikeTrainsState as SpikeTrainsState,
    Waveform as Waveform,
)
from .stochastic import (
    OrnsteinUhlenbeck as OrnsteinUhlenbeck,
    OrnsteinUhlenbeckState as OrnsteinUhlenbeckState,
    Poisson as Poisson,
    PoissonPopulation as PoissonPopulation,
    PoissonPopulationState as PoissonPopulationState,
    PoissonState as PoissonState,
)
from .tuned import Tuned as Tuned
