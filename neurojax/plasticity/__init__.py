"""Synaptic plasticity rules whose state lives in `NetworkState.plastic`
(`TsodyksMarkram` short-term plasticity, `PairSTDP`, `TripletSTDP`, the calcium-based
`CalciumSTDP` and its analytic `calcium_stdp_change`, the three-factor
`RewardModulated`, the voltage-based `VoltageSTDP`)."""

from .abstract import AbstractPlasticity as AbstractPlasticity
from .calcium import (
    CalciumSTDP as CalciumSTDP,
    CalciumSTDPState as CalciumSTDPState,
    calcium_stdp_change as calcium_stdp_change,
    time_above_thresholds as time_above_thresholds,
)
from .short_term import (
    TsodyksMarkram as TsodyksMarkram,
    TsodyksMarkramState as TsodyksMarkramState,
    steady_state_ratio as steady_state_ratio,
)
from .stdp import PairSTDP as PairSTDP, PairSTDPState as PairSTDPState
from .triplet import TripletSTDP as TripletSTDP, TripletSTDPState as TripletSTDPState
from .reward import RewardModulated as RewardModulated, RewardModulatedState as RewardModulatedState
from .voltage import VoltageSTDP as VoltageSTDP, VoltageSTDPState as VoltageSTDPState
