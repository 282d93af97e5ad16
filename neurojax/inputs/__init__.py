"""External inputs: `Constant`, `Waveform`, `Poisson` (independent drive),
`PoissonPopulation` and `SpikeTrains` (source populations), `OrnsteinUhlenbeck`,
`Tuned` (Poisson drive tuned to a feature of the target, e.g. an oriented grating),
`OnCompartments` (any input placed on chosen compartments of a `Compartmental` target), and
`Modulator` (a named neuromodulatory signal for three-factor plasticity, e.g. with `Pulses`).
The stochastic ones draw with `jax.random` by default or, with `generator="hash"`, from a
`HashStream` (a counter-based hash, ~30x cheaper per number on CPU)."""

from .._abstract import AbstractInput as AbstractInput
from .deterministic import (
    Constant as Constant,
    SpikeTrains as SpikeTrains,
    SpikeTrainsState as SpikeTrainsState,
    Waveform as Waveform,
)
from .stochastic import (
    HashStream as HashStream,
    OrnsteinUhlenbeck as OrnsteinUhlenbeck,
    OrnsteinUhlenbeckState as OrnsteinUhlenbeckState,
    Poisson as Poisson,
    PoissonPopulation as PoissonPopulation,
    PoissonPopulationState as PoissonPopulationState,
    PoissonState as PoissonState,
)
from .tuned import Tuned as Tuned
from .modulator import Modulator as Modulator, Pulses as Pulses
from .placement import OnCompartments as OnCompartments
