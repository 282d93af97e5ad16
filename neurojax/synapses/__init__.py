"""Synaptic kinetics (`Delta`, `Exponential`, `Alpha`, `DualExponential`, and the
presynaptic `Saturating`) and receptors (`Current`, `Conductance`, voltage-dependent
`NMDA`)."""

from .kinetics import (
    AbstractKinetics as AbstractKinetics,
    Alpha as Alpha,
    AlphaState as AlphaState,
    Delta as Delta,
    DeltaState as DeltaState,
    DualExponential as DualExponential,
    DualExponentialState as DualExponentialState,
    Exponential as Exponential,
    ExponentialState as ExponentialState,
    Saturating as Saturating,
    SaturatingState as SaturatingState,
)
from .receptors import (
    AbstractReceptor as AbstractReceptor,
    Conductance as Conductance,
    Current as Current,
    NMDA as NMDA,
)
