"""Type aliases shared across neurojax (see STYLE.md section 7)."""

from typing import Union

from jaxtyping import Array, ArrayLike, Float, Int

ScalarLike = Union[float, int, Float[ArrayLike, ""]]
"""A Python number or a 0-d array."""

PopulationParam = Float[Array, "*#n"]
"""A parameter that is a scalar or holds one value per neuron."""

SynapseParam = Float[Array, "*#syn"]
"""A parameter that is a scalar or holds one value per synapse."""

Spikes = Float[Array, " n"]
"""Float 0/1 spike indicators (or graded rates for rate units), one per neuron."""

IndexArray = Int[Array, "..."]
