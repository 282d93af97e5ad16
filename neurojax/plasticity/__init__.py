"""Synaptic plasticity rules whose state lives in `NetworkState.plastic`
(`TsodyksMarkram` short-term plasticity, `PairSTDP`, the three-factor
`RewardModulated`, the voltage-based `VoltageSTDP`)."""

from .abstract import AbstractPlasticity as AbstractPlasticity
from .short_term import (
    TsodyksMarkram as TsodyksMarkram,
    TsodyksMarkramState as TsodyksMarkramState,
    steady_state_ratio as steady_state_ratio,
)
from .stdp import PairSTDP as PairSTDP, PairSTDPState as PairSTDPState
from .reward import RewardModulated as RewardModulated, RewardModulatedState as RewardModulatedState
from .voltage import VoltageSTDP as VoltageSTDP, VoltageSTDPState as VoltageSTDPState
