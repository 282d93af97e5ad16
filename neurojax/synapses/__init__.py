"""Synaptic kinetics (`Delta`, `Exponential`, `Alpha`, `DualExponential`) and receptors
(`Current`, `Conductance`)."""

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
)
from .receptors import (
    AbstractReceptor as AbstractReceptor,
    Conductance as Conductance,
    Current as Current,
)
