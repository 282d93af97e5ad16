"""Synaptic plasticity rules whose state lives in `NetworkState.plastic`
(`TsodyksMarkram` short-term plasticity, `PairSTDP`, `InhibitorySTDP`, the rate rules
`BCM` and `Oja`, `Normalization`, `SynapticScaling` and their `Chain`)."""

from .abstract import AbstractPlasticity as AbstractPlasticity
from .inhibitory import InhibitorySTDP as InhibitorySTDP, InhibitorySTDPState as InhibitorySTDPState
from .normalization import (
    Chain as Chain,
    Normalization as Normalization,
    NormalizationState as NormalizationState,
    SynapticScaling as SynapticScaling,
    SynapticScalingState as SynapticScalingState,
)
from .rate_rules import BCM as BCM, BCMState as BCMState, Oja as Oja, OjaState as OjaState
from .short_term import (
    TsodyksMarkram as TsodyksMarkram,
    TsodyksMarkramState as TsodyksMarkramState,
    steady_state_ratio as steady_state_ratio,
)
from .stdp import PairSTDP as PairSTDP, PairSTDPState as PairSTDPState
