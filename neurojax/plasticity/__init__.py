"""Synaptic plasticity rules whose state lives in `NetworkState.plastic`: short-term
(`TsodyksMarkram`), spike-timing (`PairSTDP`, `TripletSTDP`), calcium-based
(`CalciumSTDP` and its analytic `calcium_stdp_change`), voltage-based (`VoltageSTDP`),
inhibitory (`InhibitorySTDP`), rate-based (`BCM`, `Oja`), homeostatic
(`Normalization`, `SynapticScaling`), three-factor (`RewardModulated`), and `Chain`
to run several weight-changing rules on one projection."""

from .abstract import AbstractPlasticity as AbstractPlasticity
from .calcium import (
    CalciumSTDP as CalciumSTDP,
    CalciumSTDPState as CalciumSTDPState,
    calcium_stdp_change as calcium_stdp_change,
    time_above_thresholds as time_above_thresholds,
)
from .inhibitory import InhibitorySTDP as InhibitorySTDP, InhibitorySTDPState as InhibitorySTDPState
from .normalization import (
    Chain as Chain,
    Normalization as Normalization,
    NormalizationState as NormalizationState,
    SynapticScaling as SynapticScaling,
    SynapticScalingState as SynapticScalingState,
)
from .rate_rules import BCM as BCM, BCMState as BCMState, Oja as Oja, OjaState as OjaState
from .reward import RewardModulated as RewardModulated, RewardModulatedState as RewardModulatedState
from .short_term import (
    TsodyksMarkram as TsodyksMarkram,
    TsodyksMarkramState as TsodyksMarkramState,
    steady_state_ratio as steady_state_ratio,
)
from .stdp import PairSTDP as PairSTDP, PairSTDPState as PairSTDPState
from .triplet import TripletSTDP as TripletSTDP, TripletSTDPState as TripletSTDPState
from .voltage import VoltageSTDP as VoltageSTDP, VoltageSTDPState as VoltageSTDPState
