"""Synaptic plasticity rules whose state lives in `NetworkState.plastic`
(`TsodyksMarkram` short-term plasticity, `PairSTDP`, `TripletSTDP`, the calcium-based
`CalciumSTDP` and its analytic `calcium_stdp_change`)."""

from .abstract import AbstractPlasticity as AbstractPlasticity
from .short_term import (
    TsodyksMarkram as TsodyksMarkram,
    TsodyksMarkramState as TsodyksMarkramState,
    steady_state_ratio as steady_state_ratio,
)
from .stdp import PairSTDP as PairSTDP, PairSTDPState as PairSTDPState
from .triplet import TripletSTDP as TripletSTDP, TripletSTDPState as TripletSTDPState
