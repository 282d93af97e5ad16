"""Neuron models. Each follows the step protocol of `neurojax.AbstractNeuron`."""

from .lif import (
    AdEx as AdEx,
    AdExState as AdExState,
    EIF as EIF,
    EIFState as EIFState,
    LIF as LIF,
    LIFState as LIFState,
)
