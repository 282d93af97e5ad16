"""neurojax: differentiable, JAX-native simulation of neural circuits."""

from . import neurons as neurons
from . import surrogate as surrogate
from ._abstract import AbstractModel as AbstractModel, AbstractNeuron as AbstractNeuron, Drive as Drive

__version__ = "0.1.0"
