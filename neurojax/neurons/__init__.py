"""Neuron models. Each follows the step protocol of `neurojax.AbstractNeuron`."""

from .lif import (
    ALIF as ALIF,
    ALIFState as ALIFState,
    AdEx as AdEx,
    AdExState as AdExState,
    EIF as EIF,
    EIFState as EIFState,
    LIF as LIF,
    LIFState as LIFState,
)
from .rate import (
    AbbottChance as AbbottChance,
    AbstractTransfer as AbstractTransfer,
    Binary as Binary,
    BinaryState as BinaryState,
    FiringRate as FiringRate,
    FiringRateState as FiringRateState,
    PowerLaw as PowerLaw,
    Rate as Rate,
    RateState as RateState,
    ReLU as ReLU,
    Sigmoid as Sigmoid,
    Tanh as Tanh,
    WilsonCowan as WilsonCowan,
    WilsonCowanState as WilsonCowanState,
    WilsonCowanSystem as WilsonCowanSystem,
    hopfield_retrieve as hopfield_retrieve,
    hopfield_weights as hopfield_weights,
)
from .izhikevich import (
    AbstractIzhikevichIntegrator as AbstractIzhikevichIntegrator,
    Izhikevich as Izhikevich,
    Izhikevich2003Scheme as Izhikevich2003Scheme,
    IzhikevichEuler as IzhikevichEuler,
    IzhikevichState as IzhikevichState,
)
from .fitzhugh_nagumo import FitzHughNagumo as FitzHughNagumo, FitzHughNagumoState as FitzHughNagumoState
from .compartmental import (
    AbstractChannel as AbstractChannel,
    Compartmental as Compartmental,
    Compartments as Compartments,
    CompartmentalState as CompartmentalState,
    HHNaK as HHNaK,
    HHNaKState as HHNaKState,
    Leak as Leak,
)
from .morphology import (
    Morphology as Morphology,
    ball_and_stick as ball_and_stick,
    cable as cable,
    y_dendrite as y_dendrite,
)
from .hh import (
    AbstractHHIntegrator as AbstractHHIntegrator,
    ExponentialEuler as ExponentialEuler,
    HodgkinHuxley as HodgkinHuxley,
    HodgkinHuxleyState as HodgkinHuxleyState,
    RK4 as RK4,
    TraubMiles as TraubMiles,
    TraubMilesState as TraubMilesState,
    WangBuzsaki as WangBuzsaki,
    WangBuzsakiState as WangBuzsakiState,
)
