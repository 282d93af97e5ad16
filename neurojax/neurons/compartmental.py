r"""Multi-compartment neurons: the cable equation on a tree of cylinders.

For compartment $k$ of a `Morphology` with membrane area $A_k = \pi d_k L_k$,

$$C_k \frac{dV_k}{dt} = -\sum_{\rm ch} g_{{\rm ch},k}(t)\,(V_k - E_{\rm ch})
+ \sum_{j \sim k} g_{kj}\,(V_j - V_k) + I_{{\rm syn},k}(V_k),$$

where $j \sim k$ runs over the parent and the children of $k$.

**Unit conversion.** Densities are given per membrane area and turned into the
library's closed system (pF, nS, pA, mV, ms) per compartment. Since
1 µm² = 10⁻⁸ cm² and 1 µF = 10⁶ pF, 1 mS = 10⁶ nS, 1 µA = 10⁶ pA:

- $C_k$ [pF] $= 10^{-2}\, c_m$ [µF/cm²] $\cdot A_k$ [µm²];
- $g_{{\rm ch},k}$ [nS] $= 10^{-2}\, \bar g$ [mS/cm²] $\cdot A_k$ [µm²];
- the axial resistance of half a cylinder is
  $R_k = 10^{-2}\, r_a$ [Ω·cm] $\cdot \frac{L_k/2}{\pi d_k^2/4}$ [µm⁻¹] in [MΩ], and
  the coupling between a compartment and its only child (centre to centre, the
  two halves in series) is $g_{kp}$ [nS] $= 10^{3} / (R_k + R_p)$ [MΩ].

**Branch points.** Children attach at the distal end of their parent. Where a
compartment has two or more children, that end is a junction node without membrane
(like the end nodes of NEURON's sections), linked to each neighbouring centre by its
half-cylinder, $10^3/R_k$ [nS]. Its potential is algebraic (solved with the others
each step, not stored). This keeps the discretisation second order in space at
branch points; coupling the centres pairwise instead would count the parent's
half-cylinder once per child and make the error first order.

**Time stepping** (first order, as NEURON's default backward Euler):

1. each channel's gates advance with exponential Euler at the start-of-step
   voltage (NEURON's `cnexp`): $x \leftarrow x_\infty + (x - x_\infty)e^{-dt/\tau_x}$;
2. with those gates the ionic current is linear in $V$, so the voltage takes a
   fully implicit (backward Euler) step: the tree-structured linear system
   $(C/dt + G_{\rm ion} + G_{\rm syn} - \mathcal{L}_{\rm axial}) V^{t+dt}
   = C V^t / dt + \sum g E + i$ is solved exactly by Hines (1984) elimination,
   leaves to root and back, in the morphology's parent-indexed order. It costs
   $O(n_{\rm comp})$ per cell and is unconditionally stable for the cable;
3. the instantaneous charge of delta synapses is added at the end of the step.

References: Rall (1967); Hines (1984), *Int. J. Bio-Med. Comput.* 15:69;
Carnevale & Hines (2006), *The NEURON Book*, ch. 4-5; Dayan & Abbott (2001), ch. 6.
"""

from __future__ import annotations

import abc
import functools
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from .._abstract import AbstractNeuron, Drive
from .._custom_types import ScalarLike
from .._misc import (
    check_dt,
    check_shape,
    check_time_constant_vs_dt,
    finite,
    is_concrete,
    nonnegative,
    positive,
)
from ..surrogate import AbstractSurrogate, FastSigmoid
from .hh import hh1952_rates
from .morphology import APICAL_DENDRITE, AXON, BASAL_DENDRITE, SOMA, Morphology

CompartmentParam = Float[Array, "*#n_comp"]
"""A density that is a scalar, one value per compartment `(n_comp,)`, or one per cell
and compartment `(n, n_comp)`."""

# [µm²] times a density: µF/cm² -> pF and mS/cm² -> nS (1 µm² = 1e-8 cm², 1 µF = 1e6 pF,
# 1 mS = 1e6 nS).
_PER_UM2 = 1e-2


def _rank2(x: Array) -> Array:
    """A scalar, `(n_comp,)` or `(n, n_comp)` density as a scalar or a rank-2 array,
    so it broadcasts against `(n, n_comp)` state without implicit rank promotion."""
    return x[None, :] if jnp.ndim(x) == 1 else x


def _check_compartment_shape(x: Any, n: int, n_comp: int, name: str) -> None:
    shape = jnp.shape(x)
    if shape not in ((), (n_comp,), (n, n_comp)):
        raise ValueError(
            f"{name} must be a scalar, have shape ({n_comp},) (one value per "
            f"compartment) or ({n}, {n_comp}) (per cell and compartment), got "
            f"shape {shape}."
        )


def hines_solve(
    parent: tuple[int, ...],
    diag: Float[Array, "n n_node"],
    off: Float[Array, "n n_node"],
    rhs: Float[Array, "n n_node"],
) -> Float[Array, "n n_node"]:
    r"""Solve the tree-structured linear system of each of `n` cells (Hines 1984).

    The matrix of a cell has diagonal `diag[k]` and the symmetric off-diagonal entry
    `off[k]` at $(k, \text{parent}[k])$ and $(\text{parent}[k], k)$; `off[0]` is unused.
    `parent` must be parent-indexed (`parent[0] = -1`, `parent[k] < k`). Elimination
    runs from the last node to the root, folding each row into its parent's;
    substitution runs back from the root. Both are `lax.fori_loop`s over nodes,
    vectorised over cells: exact (no fill-in) for any tree, $O(n_{\rm node})$, and
    differentiable.
    """
    p = jnp.asarray(np.maximum(np.asarray(parent), 0))
    # Nodes on the leading axis so each step touches contiguous rows.
    d, b, a = diag.T, rhs.T, off.T
    n_node = d.shape[0]

    def eliminate(i, carry):
        d, b = carry
        k = n_node - 1 - i
        f = a[k] / d[k]
        return d.at[p[k]].add(-f * a[k]), b.at[p[k]].add(-f * b[k])

    d, b = lax.fori_loop(0, n_node - 1, eliminate, (d, b))
    x = jnp.zeros_like(b).at[0].set(b[0] / d[0])

    def substitute(k, x):
        return x.at[k].set((b[k] - a[k] * x[p[k]]) / d[k])

    x = lax.fori_loop(1, n_node, substitute, x)
    return x.T


class AbstractChannel(eqx.Module):
    """An ionic current through the membrane of every compartment.

    Its conductance may depend on gates with their own state; the current is
    $\\bar g(\\text{gates})\\,(V - E)$, linear in $V$ once the gates are fixed, which is
    what lets `Compartmental` treat it implicitly. Densities are scalars, shape
    `(n_comp,)` (e.g. multiplied by `Morphology.mask`) or `(n, n_comp)`.
    """

    @abc.abstractmethod
    def init(self, v: Float[Array, "n n_comp"]) -> Any:
        """Gate state at steady state for the membrane potential `v` [mV]."""

    @abc.abstractmethod
    def step(self, state: Any, v: Float[Array, "n n_comp"], dt: ScalarLike) -> Any:
        """Advance the gates by `dt` [ms] at the fixed potential `v` [mV]."""

    @abc.abstractmethod
    def conductance(self, state: Any) -> tuple[Array, Array]:
        """`(g, g_e)`: the conductance density [mS/cm²] and its product with the
        reversal potential [mS/cm²·mV = µA/cm²], each broadcastable to `(n, n_comp)`."""

    @abc.abstractmethod
    def check(self, n: int, n_comp: int, dt: float, c_m: Array) -> None:
        """Raise a `ValueError` for bad shapes or a `dt` [ms] too large for the
        channel; `c_m` [µF/cm²] is the membrane's specific capacitance."""


class Leak(AbstractChannel):
    r"""Passive leak, $\bar g_L (V - E_L)$; no gates.

    **Arguments:**

    - `g`: Conductance density [mS/cm²]; $R_m = 1/g$ [kΩ·cm²] and
      $\tau_m = c_m / g$ [ms].
    - `e`: Reversal potential [mV].
    """

    g: CompartmentParam = eqx.field(converter=nonnegative("g", "mS/cm²"), default=0.1)
    e: CompartmentParam = eqx.field(converter=finite("e", "mV"), default=-65.0)

    def init(self, v: Float[Array, "n n_comp"]) -> None:
        return None

    def step(self, state: None, v: Float[Array, "n n_comp"], dt: ScalarLike) -> None:
        return None

    def conductance(self, state: None) -> tuple[Array, Array]:
        g = _rank2(self.g)
        return g, g * _rank2(self.e)

    def check(self, n: int, n_comp: int, dt: float, c_m: Array) -> None:
        _check_compartment_shape(self.g, n, n_comp, "Leak g")
        _check_compartment_shape(self.e, n, n_comp, "Leak e")
        if is_concrete(self.g) and is_concrete(c_m):
            g, cm = np.broadcast_arrays(
                np.asarray(_rank2(self.g), float), np.asarray(_rank2(c_m), float)
            )
            leaky = g > 0
            if np.any(leaky):
                # Backward Euler is stable for any dt but only first-order accurate:
                # keep a step within the membrane time constant.
                tau = cm[leaky] / g[leaky]  # [µF/cm²] / [mS/cm²] = [ms]
                check_time_constant_vs_dt(tau, dt, "tau_m = c_m/g (Leak)")
        else:
            g, cm = jnp.broadcast_arrays(_rank2(self.g), _rank2(c_m))
            tau = jnp.where(g > 0, cm / jnp.where(g > 0, g, 1.0), jnp.inf)  # [ms]
            check_time_constant_vs_dt(tau, dt, "tau_m = c_m/g (Leak)")


class HHNaKState(eqx.Module):
    m: Float[Array, "n n_comp"]  # Na activation gate [1]
    h: Float[Array, "n n_comp"]  # Na inactivation gate [1]
    n: Float[Array, "n n_comp"]  # K activation gate [1]


def _hh_gates(v):
    """`(x_inf [1], 1/tau_x = alpha + beta [1/ms])` of the gates m, h and n at `v` [mV]."""
    am, bm, ah, bh, an, bn = hh1952_rates(v)
    return ((am / (am + bm), am + bm), (ah / (ah + bh), ah + bh), (an / (an + bn), an + bn))


class HHNaK(AbstractChannel):
    r"""Hodgkin & Huxley (1952) sodium and potassium currents of the squid axon.

    $$i = \bar g_{Na} m^3 h (V - E_{Na}) + \bar g_K n^4 (V - E_K), \qquad
    \frac{dx}{dt} = \alpha_x(V)(1 - x) - \beta_x(V)\,x,$$

    with the rates of `neurojax.neurons.hh.hh1952_rates` (6.3 °C, rest near −65 mV).
    Gates advance by exponential Euler at the start-of-step voltage (`cnexp`); `check`
    accepts `dt` ≤ 0.1 ms (the fastest gate, m, has τ ≈ 0.1-0.25 ms). At dt = 0.01 ms
    a single compartment fires at 68.20 Hz under 10 µA/cm², against the converged
    68.32 Hz. Add a `Leak(g=0.3, e=-54.387)` for the full HH membrane.

    **Arguments:**

    - `g_na`: Sodium conductance density [mS/cm²].
    - `g_k`: Potassium conductance density [mS/cm²].
    - `e_na`: Sodium reversal potential [mV].
    - `e_k`: Potassium reversal potential [mV].
    """

    g_na: CompartmentParam = eqx.field(converter=nonnegative("g_na", "mS/cm²"), default=120.0)
    g_k: CompartmentParam = eqx.field(converter=nonnegative("g_k", "mS/cm²"), default=36.0)
    e_na: CompartmentParam = eqx.field(converter=finite("e_na", "mV"), default=50.0)
    e_k: CompartmentParam = eqx.field(converter=finite("e_k", "mV"), default=-77.0)
    max_dt: ClassVar[float] = 0.1

    def init(self, v: Float[Array, "n n_comp"]) -> HHNaKState:
        (m, _), (h, _), (n, _) = _hh_gates(v)
        return HHNaKState(m=m, h=h, n=n)

    def step(self, state: HHNaKState, v: Float[Array, "n n_comp"], dt: ScalarLike) -> HHNaKState:
        def relax(x, gate):
            x_inf, rate = gate
            return x_inf + (x - x_inf) * jnp.exp(-dt * rate)  # [1/ms] [ms]

        gm, gh, gn = _hh_gates(v)
        return HHNaKState(m=relax(state.m, gm), h=relax(state.h, gh), n=relax(state.n, gn))

    def conductance(self, state: HHNaKState) -> tuple[Array, Array]:
        g_na = _rank2(self.g_na) * state.m**3 * state.h
        g_k = _rank2(self.g_k) * state.n**4
        return g_na + g_k, g_na * _rank2(self.e_na) + g_k * _rank2(self.e_k)

    def check(self, n: int, n_comp: int, dt: float, c_m: Array) -> None:
        for name in ("g_na", "g_k", "e_na", "e_k"):
            _check_compartment_shape(getattr(self, name), n, n_comp, f"HHNaK {name}")
        if dt > self.max_dt:
            raise ValueError(
                f"dt [ms] = {dt:g} is too large for the HHNaK gates (exponential Euler): "
                f"dt must lie in (0, {self.max_dt:g}]."
            )


class _Topology(NamedTuple):
    """The tree that the voltage solve runs on: the compartments plus one
    zero-capacitance junction node at the distal end of every compartment that has
    two or more children. Built from the static parent tuple; plain numpy."""

    parent: tuple[int, ...]  # parent node of each node, parents first
    parent_array: np.ndarray  # the same as an array
    compartment: np.ndarray  # node index of each compartment
    junctions: np.ndarray  # node indices of the junctions
    half_a: np.ndarray  # compartment whose half-cylinder links a node to its parent
    half_b: np.ndarray  # second half-cylinder in series (valid where has_b)
    has_b: np.ndarray
    is_child: np.ndarray  # every node but the root

    @property
    def n_node(self) -> int:
        return len(self.parent)


@functools.lru_cache(maxsize=128)
def _topology(parent: tuple[int, ...]) -> _Topology:
    n_children = np.bincount(np.asarray(parent[1:], dtype=int), minlength=len(parent))
    node_parent: list[int] = []
    half_a: list[int] = []
    half_b: list[int] = []
    compartment = [0] * len(parent)
    junction: dict[int, int] = {}
    for k, p in enumerate(parent):
        compartment[k] = len(node_parent)
        half_a.append(k)
        if p < 0:
            node_parent.append(-1)
            half_b.append(-1)
        elif n_children[p] == 1:
            # One child: centre to centre through both halves in series.
            node_parent.append(compartment[p])
            half_b.append(p)
        else:
            node_parent.append(junction[p])
            half_b.append(-1)
        if n_children[k] >= 2:
            # The junction sits at the distal end of k, half a cylinder from its centre.
            junction[k] = len(node_parent)
            node_parent.append(compartment[k])
            half_a.append(k)
            half_b.append(-1)
    hb = np.asarray(half_b)
    return _Topology(
        parent=tuple(node_parent),
        parent_array=np.asarray(node_parent),
        compartment=np.asarray(compartment),
        junctions=np.asarray(sorted(junction.values()), dtype=int),
        half_a=np.asarray(half_a),
        half_b=np.maximum(hb, 0),
        has_b=hb >= 0,
        is_child=np.arange(len(node_parent)) > 0,
    )


_SECTIONS = {
    "soma": (SOMA,),
    "axon": (AXON,),
    "basal": (BASAL_DENDRITE,),
    "apical": (APICAL_DENDRITE,),
    "dendrite": (BASAL_DENDRITE, APICAL_DENDRITE),
}


class Compartments(eqx.Module):
    r"""Where a projection or an input acts on a `Compartmental` population: its sites.

    Give exactly one of

    - `index`: a compartment index, or a sequence of them;
    - `section`: an SWC structure identifier (1 soma, 2 axon, 3 basal, 4 apical
      dendrite) or a name, `"soma"`, `"axon"`, `"basal"`, `"apical"` or `"dendrite"`
      (basal and apical): every compartment of that type;
    - `distance`: `(low, high)` [µm]: every compartment whose centre lies at a path
      distance in `[low, high]` from the centre of the root compartment (the soma;
      `Morphology.path_distance`);

    or none of them when `sites` is an array of compartment indices (below).

    `sites` says how the synapses are placed on those compartments:

    - `None` (default): each neuron's drive from the projection (or input) is divided
      among the compartments: equally among listed `index` compartments (a repeated
      index counts as often as it is listed), in proportion to membrane area among
      those of a `section` or `distance` range (a uniform density of synapses). Every
      synapse onto a neuron then shares the same split of its drive.
    - `k` (a positive integer): each neuron gets `k` sites drawn (with replacement, with
      the same probabilities) with `key`, and $1/k$ of its drive at each.
    - `"synapse"`: each synapse $j \to i$ sits on its own compartment $c_{ij}$, drawn
      independently per synapse with `key` with the same probabilities; the drive at
      compartment $c$ of neuron $i$ is the sum over the synapses placed there only.
    - an integer array of shape `(n_post, n_pre)`: the compartment $c_{ij}$ of each
      synapse $j \to i$, read at `[i, j]` like a weight array (entries where the
      connectivity makes no synapse are ignored); give no `index`, `section` or
      `distance` with it.

    The placement is fixed when the network is built; every compartment then receives
    its own drive (the population's drive becomes `(n, n_comp)`), and a
    voltage-dependent receptor (`NMDA`) reads each compartment's own potential. With a
    site per synapse (`"synapse"` or an array) a projection's synapses target
    (neuron, compartment) pairs: its kinetics (unless kept per presynaptic neuron) and
    delay buffer hold one value per pair, shape `(n_post * n_comp,)` flattened as
    `i * n_comp + c`, and a `Dense` layout stores `(n_post * n_comp, n_pre)` weights (a
    `Sparse` layout, chosen by default for spiking sources, stores only the synapses).
    `"synapse"` and arrays place a `Projection`'s synapses; inputs (`OnCompartments`)
    take `None` or `k`.

    **Arguments:**

    - `index`: Compartment index or indices (integers in `[0, n_comp - 1]`).
    - `section`: SWC type (int) or section name (str).
    - `distance`: `(low, high)` path distance from the soma [µm], `0 <= low <= high`.
    - `sites`: `None`, the number of sites drawn per neuron (positive integer),
      `"synapse"`, or an `(n_post, n_pre)` integer array of compartment indices in
      `[0, n_comp - 1]`.
    - `key`: `jax.random` key for drawing `sites` (an integer or `"synapse"`).

    !!! example
        ```python
        nj.Projection("in", "cell", nj.connectivity.AllToAll(), weight=1.0,
                      receptor=nj.synapses.NMDA(),
                      compartments=nj.neurons.Compartments(distance=(200.0, 300.0)))
        # each synapse on its own compartment, drawn by area between 200 and 300 µm:
        nj.neurons.Compartments(distance=(200.0, 300.0), sites="synapse",
                                key=jax.random.key(3))
        # every synapse of presynaptic neuron 0 on compartment 12, of neuron 1 on 40:
        nj.neurons.Compartments(sites=np.broadcast_to([12, 40], (n_post, 2)))
        nj.inputs.OnCompartments(nj.inputs.Constant("cell", 50.0),
                                 nj.neurons.Compartments(index=12))
        ```
    """

    index: tuple[int, ...] | None = eqx.field(static=True, default=None)
    section: int | str | None = eqx.field(static=True, default=None)
    distance: tuple[float, float] | None = eqx.field(static=True, default=None)
    sites: int | str | None = eqx.field(static=True, default=None)
    key: Any = None
    # The (n_post, n_pre) compartment of each synapse when `sites` was an array (then
    # `sites` reads "synapse"); integers, so structure rather than a parameter.
    given: Any = None

    def __init__(self, index=None, section=None, distance=None, sites=None, key=None):
        given_sites = None
        if sites is not None and not isinstance(sites, str) and np.ndim(sites) != 0:
            arr = np.asarray(sites)
            if arr.ndim != 2 or arr.size == 0 or not (
                np.issubdtype(arr.dtype, np.integer)
                or (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)))
            ):
                raise ValueError(
                    "Compartments sites must be None, a positive integer, \"synapse\" or an "
                    "(n_post, n_pre) array of integer compartment indices, got "
                    f"{type(sites).__name__} of shape {np.shape(sites)}."
                )
            given = [name for name, v in (("index", index), ("section", section),
                                          ("distance", distance)) if v is not None]
            if given:
                raise ValueError(
                    f"Compartments sites given as an array places every synapse itself; give "
                    f"no {', '.join(given)} with it."
                )
            given_sites = jnp.asarray(arr.astype(np.int32))
            sites = "synapse"
        else:
            given = [name for name, v in (("index", index), ("section", section),
                                          ("distance", distance)) if v is not None]
            if len(given) != 1:
                raise ValueError(
                    "Compartments needs exactly one of index, section or distance (or a "
                    f"sites array), got {given or 'none'}."
                )
        if index is not None:
            idx = (index,) if np.ndim(index) == 0 else tuple(np.asarray(index).ravel())
            if not idx or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                                  for i in idx):
                raise ValueError(
                    f"Compartments index must be an integer or a non-empty sequence of "
                    f"integers, got {index!r}."
                )
            index = tuple(int(i) for i in idx)
        if section is not None and not (
            (isinstance(section, int) and not isinstance(section, bool))
            or section in _SECTIONS
        ):
            raise ValueError(
                f"Compartments section must be an SWC type (int) or one of "
                f"{sorted(_SECTIONS)}, got {section!r}."
            )
        if distance is not None:
            try:
                low, high = (float(d) for d in distance)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Compartments distance [µm] must be a pair (low, high), got {distance!r}."
                ) from None
            if not (0.0 <= low <= high < np.inf):
                raise ValueError(
                    f"Compartments distance [µm] must satisfy 0 <= low <= high < inf, got "
                    f"({low!r}, {high!r})."
                )
            distance = (low, high)
        if sites is not None and given_sites is None:
            if isinstance(sites, str):
                if sites != "synapse":
                    raise ValueError(
                        "Compartments sites must be None, a positive integer, \"synapse\" or "
                        f"an (n_post, n_pre) array of compartment indices, got {sites!r}."
                    )
            elif isinstance(sites, bool) or int(sites) != sites or sites < 1:
                raise ValueError(
                    f"Compartments sites must be a positive integer or None, got {sites!r}."
                )
            else:
                sites = int(sites)
            if key is None:
                raise ValueError("Compartments sites needs a key (jax.random.key) to draw them.")
        self.index, self.section, self.distance = index, section, distance
        self.sites, self.key, self.given = sites, key, given_sites

    @property
    def per_synapse(self) -> bool:
        """Whether every synapse has its own site (`sites="synapse"` or an array)."""
        return self.sites == "synapse"

    def _probabilities(self, morphology: Morphology, what: str) -> np.ndarray:
        """The probability `(n_comp,)` of each compartment as a site (see the class
        docstring)."""
        n_comp = morphology.n_compartments
        area = np.asarray(morphology.area(), dtype=float)
        if self.index is not None:
            bad = [i for i in self.index if not 0 <= i < n_comp]
            if bad:
                raise ValueError(
                    f"{what}: Compartments index {bad[0]} does not exist; a compartment "
                    f"index must lie in [0, {n_comp - 1}] ({n_comp} compartments)."
                )
            frac = np.zeros(n_comp)
            np.add.at(frac, list(self.index), 1.0 / len(self.index))
            return frac
        if self.section is not None:
            types = _SECTIONS.get(self.section, (self.section,))
            candidates = np.asarray([t in types for t in morphology.compartment_types])
            if not candidates.any():
                have = sorted(set(morphology.compartment_types))
                raise ValueError(
                    f"{what}: Compartments section {self.section!r} (SWC type "
                    f"{', '.join(map(str, types))}) matches no compartment; the morphology "
                    f"has SWC types {have}."
                )
        else:
            low, high = self.distance
            dist = morphology.path_distance()
            candidates = (dist >= low) & (dist <= high)
            if not candidates.any():
                raise ValueError(
                    f"{what}: Compartments distance [µm] ({low:g}, {high:g}) holds no "
                    f"compartment centre; path distances from the soma lie in "
                    f"[0, {dist.max():g}] µm."
                )
        p = np.where(candidates, area, 0.0)
        return p / p.sum()

    def fractions(self, morphology: Morphology, n: int, what: str = "Compartments"
                  ) -> np.ndarray:
        """The fraction of each neuron's drive at each compartment, shape
        `(n, n_comp)` (rows sum to 1), for `n` cells of `morphology`; `what` names the
        projection or input in errors. Not defined with a site per synapse."""
        if self.per_synapse:
            raise ValueError(
                f"{what}: Compartments sites=\"synapse\" (or a sites array) places each "
                "synapse of a Projection on its own compartment; an input's drive is "
                "divided by fractions: use sites=None or a positive integer."
            )
        n_comp = morphology.n_compartments
        p = self._probabilities(morphology, what)
        if self.sites is None:
            return np.broadcast_to(p, (n, n_comp)).copy()
        import jax.random as jr

        draws = np.asarray(jr.choice(self.key, n_comp, (n, self.sites), p=jnp.asarray(p)))
        frac = np.zeros((n, n_comp))
        np.add.at(frac, (np.repeat(np.arange(n), self.sites), draws.ravel()), 1.0 / self.sites)
        return frac

    def synapse_sites(self, morphology: Morphology, post: np.ndarray, pre: np.ndarray,
                      n_post: int, n_pre: int, what: str = "Compartments") -> np.ndarray:
        """The compartment of each synapse `pre[s] -> post[s]` (integers in
        `[0, n_comp - 1]`, shape `post.shape`) with a site per synapse; `what` names
        the projection in errors."""
        n_comp = morphology.n_compartments
        if self.given is not None:
            arr = np.asarray(self.given)
            if arr.shape != (n_post, n_pre):
                raise ValueError(
                    f"{what}: Compartments sites array must have shape (n_post, n_pre) = "
                    f"({n_post}, {n_pre}), got {arr.shape}."
                )
            sites = arr[post, pre]
            bad = np.flatnonzero((sites < 0) | (sites >= n_comp))
            if bad.size:
                s = bad[0]
                raise ValueError(
                    f"{what}: Compartments sites[{int(post[s])}, {int(pre[s])}] = "
                    f"{int(sites[s])} does not exist; a compartment index must lie in "
                    f"[0, {n_comp - 1}] ({n_comp} compartments)."
                )
            return sites.astype(np.int64)
        import jax.random as jr

        p = self._probabilities(morphology, what)
        return np.asarray(jr.choice(self.key, n_comp, (np.size(post),), p=jnp.asarray(p)),
                          dtype=np.int64)


class CompartmentalState(eqx.Module):
    v: Float[Array, "n n_comp"]  # membrane potential of every compartment [mV]
    channels: tuple  # one gate state per channel, in the order of `channels`


class Compartmental(AbstractNeuron[CompartmentalState]):
    r"""A population of `n` multi-compartment neurons of identical morphology.

    $$C_k \frac{dV_k}{dt} = -\sum_{\rm ch} i_{{\rm ch},k}
    + \sum_{j \sim k} g_{kj}(V_j - V_k) + \delta_{k,k_{\rm in}}\, (i - g V_k),$$

    stepped by exponential Euler for the gates and backward Euler for the voltage,
    with a Hines tree solve for the axial coupling (see the module docstring for the
    scheme and the unit conversions: µF/cm², mS/cm² and Ω·cm become pF, nS and nS
    per compartment). The state holds `v` of shape `(n, n_comp)`.

    **Input and output.** A population `Drive` of shape `(n,)` (current
    $i - gV$ and delta charge $q - q_g V$) enters compartment `input_compartment`
    only; one of shape `(n, n_comp)` gives every compartment its own drive (what a
    `Network` builds for projections and inputs placed with `Compartments`). The
    conductance part is treated implicitly in either case.
    The output is a float 0/1 spike on each step where the potential of
    `recording_compartment` crosses `v_th` upwards (from below at the start of the
    step to at or above it at the end), with the surrogate gradient of `surrogate`.
    There is no reset: the channels produce the action potential.

    **Arguments:**

    - `morphology`: The tree of compartments (`Morphology`).
    - `channels`: Tuple of channels present in every compartment (`Leak`, `HHNaK`);
      restrict a channel to some compartments with a density array of shape
      `(n_comp,)`, e.g. `HHNaK(g_na=120.0 * morph.mask(SOMA))`.
    - `c_m`: Specific membrane capacitance [µF/cm²].
    - `r_a`: Axial resistivity [Ω·cm].
    - `v_init`: Initial membrane potential [mV]; `init` puts the gates at steady
      state there, so it is a fixed point when the channels' net current vanishes.
    - `v_th`: Spike detection threshold [mV]; scalar or shape `(n,)`.
    - `input_compartment`: Index of the compartment that receives the `Drive`.
    - `recording_compartment`: Index of the compartment whose crossings are spikes.
    - `surrogate`: Spike function and its surrogate gradient.

    `c_m`, `r_a` and `v_init` are scalars, shape `(n_comp,)` or `(n, n_comp)`.

    !!! example
        ```python
        morph = nj.neurons.ball_and_stick(n_segments=20)
        soma = morph.mask(nj.neurons.morphology.SOMA)
        cell = nj.neurons.Compartmental(
            morph,
            channels=(nj.neurons.HHNaK(g_na=120.0 * soma, g_k=36.0 * soma),
                      nj.neurons.Leak(g=0.3 * soma + 0.1 * (1 - soma), e=-65.0)),
            c_m=1.0, r_a=100.0)
        ```
    """

    morphology: Morphology
    channels: tuple[AbstractChannel, ...] = eqx.field(converter=tuple, default=(Leak(),))
    c_m: CompartmentParam = eqx.field(converter=positive("c_m", "µF/cm²"), default=1.0)
    r_a: CompartmentParam = eqx.field(converter=positive("r_a", "Ω·cm"), default=100.0)
    v_init: CompartmentParam = eqx.field(converter=finite("v_init", "mV"), default=-65.0)
    v_th: Float[Array, "*#n"] = eqx.field(converter=finite("v_th", "mV"), default=0.0)
    input_compartment: int = eqx.field(static=True, default=0)
    recording_compartment: int = eqx.field(static=True, default=0)
    surrogate: AbstractSurrogate = FastSigmoid()

    def __check_init__(self):
        n_comp = self.morphology.n_compartments
        for name in ("input_compartment", "recording_compartment"):
            k = getattr(self, name)
            if not (isinstance(k, int) and 0 <= k < n_comp):
                raise ValueError(f"{name} must be an integer in [0, {n_comp - 1}], got {k!r}.")
        for ch in self.channels:
            if not isinstance(ch, AbstractChannel):
                raise ValueError(f"channels must hold AbstractChannel objects, got {ch!r}.")

    @property
    def n_compartments(self) -> int:
        """Number of compartments per cell."""
        return self.morphology.n_compartments

    def capacitance(self) -> Float[Array, "#n n_comp"]:
        """Membrane capacitance of each compartment [pF], shape `(1, n_comp)` (or
        `(n, n_comp)` when `c_m` is given per cell)."""
        area = self.morphology.area()[None, :] * _PER_UM2
        return _rank2(self.c_m) * area

    def _edge_conductance(self, topo: "_Topology") -> Float[Array, "#n n_node"]:
        """Conductance of each node of the solver tree to its parent [nS] (0 at the
        root), from the half-cylinder resistances."""
        morph = self.morphology
        # Half a cylinder: r_a (L/2) / (pi d^2 / 4) [Ω·cm/µm] = 1e-2 [MΩ] per unit.
        half = _rank2(self.r_a) * (2.0 * morph.length / (jnp.pi * morph.diameter**2))[None, :]
        half = half * 1e-2  # [MΩ]
        r = half[:, topo.half_a] + half[:, topo.half_b] * jnp.asarray(topo.has_b)[None, :]
        return jnp.where(jnp.asarray(topo.is_child)[None, :], 1e3 / r, 0.0)  # 1e3/[MΩ] = [nS]

    def axial_current(self, v: Float[Array, "n n_comp"]) -> Float[Array, "n n_comp"]:
        r"""Net axial current into each compartment, $\sum_j g_{kj}(V_j - V_k)$ [pA], at
        potentials `v` [mV]. Branch points are zero-capacitance junctions, whose
        potential balances the currents through them. The currents sum to zero over a
        cell."""
        topo = _topology(self.morphology.parent)
        n = v.shape[0]
        g = jnp.broadcast_to(self._edge_conductance(topo), (n, topo.n_node))
        ap, junc = topo.parent_array, topo.junctions
        v_node = jnp.zeros((n, topo.n_node), v.dtype).at[:, topo.compartment].set(v)
        # A junction's potential is the conductance-weighted mean of its neighbours'.
        num = jnp.zeros_like(v_node).at[:, ap[1:]].add(g[:, 1:] * v_node[:, 1:])
        den = jnp.zeros_like(v_node).at[:, ap[1:]].add(g[:, 1:])
        num_j = num[:, junc] + g[:, junc] * v_node[:, ap[junc]]
        v_node = v_node.at[:, junc].set(num_j / (den[:, junc] + g[:, junc]))
        i_in = g[:, 1:] * (v_node[:, ap[1:]] - v_node[:, 1:])  # [pA] into each child
        net = jnp.zeros_like(v_node).at[:, 1:].add(i_in).at[:, ap[1:]].add(-i_in)
        return net[:, topo.compartment]

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> CompartmentalState:
        v = jnp.broadcast_to(_rank2(self.v_init), (n, self.n_compartments)).astype(float)
        return CompartmentalState(v=v, channels=tuple(ch.init(v) for ch in self.channels))

    def to_compartments(self, drive: Drive, n: int) -> Drive:
        """A population `Drive` (fields `(n,)` or scalars) as the per-compartment drive
        `(n, n_comp)` that puts it all into `input_compartment`."""
        at_input = jnp.asarray(np.arange(self.n_compartments) == self.input_compartment,
                               dtype=float)[None, :]
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,))[:, None] * at_input, drive)

    def step(
        self, state: CompartmentalState, drive: Drive, dt: ScalarLike
    ) -> tuple[CompartmentalState, Float[Array, " n"]]:
        v = state.v
        n, n_comp = v.shape
        k_in, k_rec = self.input_compartment, self.recording_compartment
        channels = tuple(
            ch.step(s, v, dt) for ch, s in zip(self.channels, state.channels)
        )
        g_dens, ge_dens = jnp.zeros(()), jnp.zeros(())
        for ch, s in zip(self.channels, channels):
            g, ge = ch.conductance(s)
            g_dens, ge_dens = g_dens + g, ge_dens + ge
        area = self.morphology.area()[None, :] * _PER_UM2
        c = jnp.broadcast_to(self.capacitance(), (n, n_comp))  # [pF]
        at_input = jnp.asarray(np.arange(n_comp) == k_in, dtype=v.dtype)[None, :]
        per_compartment = jnp.ndim(drive.g) == 2
        if per_compartment:  # (n, n_comp): each compartment its own drive
            diag = c / dt + g_dens * area + drive.g  # [nS]
            rhs = c / dt * v + ge_dens * area + drive.i  # [pA]
        else:
            diag = c / dt + g_dens * area + drive.g[:, None] * at_input  # [nS]
            rhs = c / dt * v + ge_dens * area + drive.i[:, None] * at_input  # [pA]
        # Junctions (branch points) are nodes without membrane: their rows only carry
        # the axial terms.
        topo = _topology(self.morphology.parent)
        g_ax = jnp.broadcast_to(self._edge_conductance(topo), (n, topo.n_node))
        pos = topo.compartment
        diag = jnp.zeros((n, topo.n_node), v.dtype).at[:, pos].set(diag)
        rhs = jnp.zeros((n, topo.n_node), v.dtype).at[:, pos].set(rhs)
        # Each coupling appears on the diagonal of both the node and its parent.
        diag = (diag + g_ax).at[:, topo.parent_array[1:]].add(g_ax[:, 1:])
        v_new = hines_solve(topo.parent, diag, -g_ax, rhs)[:, pos]
        if per_compartment:
            v_new = v_new + (drive.q - drive.qg * v_new) / c  # [mV] = [pA·ms] / [pF]
        else:
            dv_in = drive.charge(v_new[:, k_in]) / c[:, k_in]  # [mV] = [pA·ms] / [pF]
            v_new = v_new + dv_in[:, None] * at_input
        before = lax.stop_gradient(v[:, k_rec] < self.v_th).astype(v.dtype)
        spikes = before * self.surrogate(v_new[:, k_rec] - self.v_th)
        return CompartmentalState(v=v_new, channels=channels), spikes

    def voltage(self, state: CompartmentalState) -> Float[Array, " n"]:
        """The potential of `input_compartment` [mV], where synaptic drive enters
        unless placed with `Compartments` (whose receptors read `state.v` of their own
        compartments)."""
        return state.v[:, self.input_compartment]

    def check(self, n: int, dt: float) -> None:
        dt = check_dt(dt)
        n_comp = self.n_compartments
        for name in ("c_m", "r_a", "v_init"):
            _check_compartment_shape(getattr(self, name), n, n_comp, name)
        check_shape(self.v_th, n, "v_th")
        for ch in self.channels:
            ch.check(n, n_comp, dt, self.c_m)
