"""neurojax: differentiable, JAX-native simulation of biologically grounded neural circuits.

```python
import neurojax as nj
```
"""

from . import analysis as analysis
from . import connectivity as connectivity
from . import gallery as gallery
from . import inputs as inputs
from . import io as io
from . import neurons as neurons
from . import ode as ode
from . import plasticity as plasticity
from . import surrogate as surrogate
from . import sharding as sharding
from . import synapses as synapses
from . import theory as theory
from . import train as train
from ._abstract import (
    AbstractInput as AbstractInput,
    AbstractModel as AbstractModel,
    AbstractNeuron as AbstractNeuron,
    Drive as Drive,
)
from .distributions import LogNormal as LogNormal, Normal as Normal, Uniform as Uniform
from .network import (
    Network as Network,
    NetworkModel as NetworkModel,
    NetworkState as NetworkState,
    Population as Population,
    Projection as Projection,
)
from .simulate import (
    Checkpoint as Checkpoint,
    Record as Record,
    Result as Result,
    allow_nonfinite_gradients as allow_nonfinite_gradients,
    simulate as simulate,
)
from .sweep import sweep as sweep
from .train import check_grad as check_grad

__version__ = "0.1.0"
