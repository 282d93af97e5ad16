r"""Neuron morphologies as trees of cylindrical compartments.

A `Morphology` lists compartments in a *parent-indexed* (topological) order: compartment
0 is the root (usually the soma) and every other compartment `k` has a parent
`parent[k] < k`. This is the order in which the Hines elimination of
`neurojax.neurons.Compartmental` runs (leaves to root, then root to leaves).

Morphologies come from SWC files (`Morphology.from_swc`) or from the builders
`cable`, `ball_and_stick` and `y_dendrite`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._misc import positive

SOMA, AXON, BASAL_DENDRITE, APICAL_DENDRITE = 1, 2, 3, 4
"""SWC structure identifiers (Cannon et al. 1998): the `types` of compartments."""


class Morphology(eqx.Module):
    r"""A tree of cylindrical compartments.

    **Arguments:**

    - `parent`: Parent index of each compartment (static). `parent[0] == -1` (the
      root) and `0 <= parent[k] < k` for `k >= 1`.
    - `length`: Length of each cylinder [µm], shape `(n_comp,)`.
    - `diameter`: Diameter of each cylinder [µm], shape `(n_comp,)`.
    - `types`: SWC structure identifier of each compartment (static; 1 soma, 2 axon,
      3 basal dendrite, 4 apical dendrite). Defaults to 1 for the root and 3 for
      the others.

    `length` and `diameter` are differentiable leaves; the topology is static, so a
    change of topology recompiles while a change of geometry does not.

    !!! example
        ```python
        morph = nj.neurons.ball_and_stick(soma_diameter=20.0, dendrite_length=500.0,
                                          dendrite_diameter=2.0, n_segments=50)
        morph = nj.neurons.Morphology.from_swc("cell.swc")
        ```
    """

    parent: tuple[int, ...] = eqx.field(static=True, converter=lambda p: _ints(p))
    length: Float[Array, " n_comp"] = eqx.field(converter=positive("length", "µm"))
    diameter: Float[Array, " n_comp"] = eqx.field(converter=positive("diameter", "µm"))
    types: tuple[int, ...] | None = eqx.field(
        static=True, default=None, converter=lambda t: None if t is None else _ints(t)
    )

    def __check_init__(self):
        n_comp = len(self.parent)
        if n_comp == 0:
            raise ValueError("parent must list at least one compartment (the root).")
        if self.parent[0] != -1:
            raise ValueError(f"parent[0] must be -1 (the root), got {self.parent[0]}.")
        for k, p in enumerate(self.parent[1:], start=1):
            if not 0 <= p < k:
                raise ValueError(
                    f"parent[{k}] must lie in [0, {k - 1}] (parents precede their "
                    f"children), got {p}."
                )
        for name in ("length", "diameter"):
            shape = jnp.shape(getattr(self, name))
            if shape != (n_comp,):
                raise ValueError(
                    f"{name} [µm] must have shape ({n_comp},) (one value per "
                    f"compartment), got shape {shape}."
                )
        if self.types is not None and len(self.types) != n_comp:
            raise ValueError(
                f"types must have {n_comp} entries (one per compartment), got "
                f"{len(self.types)}."
            )

    @property
    def n_compartments(self) -> int:
        """Number of compartments."""
        return len(self.parent)

    @property
    def compartment_types(self) -> tuple[int, ...]:
        """SWC structure identifier of each compartment."""
        if self.types is not None:
            return self.types
        return (SOMA,) + (BASAL_DENDRITE,) * (self.n_compartments - 1)

    def area(self) -> Float[Array, " n_comp"]:
        """Lateral membrane area $\\pi d L$ of each compartment [µm²]."""
        return jnp.pi * self.diameter * self.length

    def path_distance(self) -> np.ndarray:
        """Path distance [µm] along the tree from the centre of the root compartment
        (the soma) to the centre of every compartment, shape `(n_comp,)` (NEURON's
        `distance()` from `soma(0.5)`). Children attach at their parent's distal end.
        Computed from concrete lengths (numpy), e.g. when a network is built."""
        length = np.asarray(self.length, dtype=float)
        dist = np.zeros(self.n_compartments)
        for k, p in enumerate(self.parent[1:], start=1):
            dist[k] = dist[p] + length[p] / 2.0 + length[k] / 2.0
        return dist

    def mask(self, *types: int) -> Float[Array, " n_comp"]:
        """Float 0/1 per compartment: 1 where the SWC type is one of `types`.

        Multiply a channel density by it to place the channel, e.g.
        `HHNaK(g_na=120.0 * morph.mask(SOMA), ...)`.
        """
        return jnp.asarray([float(t in types) for t in self.compartment_types])

    @classmethod
    def from_swc(cls, path: str | os.PathLike) -> "Morphology":
        r"""Read an SWC file (Cannon et al. 1998).

        Each line holds `id type x y z radius parent` (µm; `parent = -1` for the
        root); `#` starts a comment. The file must describe one tree. Samples are
        turned into compartments as follows:

        - the root sample becomes a cylinder of length and diameter $2r$, which has
          the surface of a sphere of radius $r$ (NEURON's single-point soma);
        - every other sample becomes the cylinder from its parent sample to itself:
          length = the distance between the two points, diameter = $2r$ of the child.

        Compartments are renumbered in a topological (parents-first) order; samples
        already in that order keep it. Multi-point somas are not merged: each soma
        sample becomes a compartment like any other.

        Raises a `ValueError` naming the line for a malformed file: wrong number of
        columns, non-numeric fields, duplicate ids, a non-positive radius, a parent
        that does not exist, a cycle, more than one root, or two coincident points.
        """
        path = os.fspath(path)
        ids: list[int] = []
        types: dict[int, int] = {}
        xyz: dict[int, np.ndarray] = {}
        radius: dict[int, float] = {}
        parent: dict[int, int] = {}
        line_of: dict[int, int] = {}
        with open(path) as f:
            for lineno, raw in enumerate(f, start=1):
                text = raw.split("#", 1)[0].strip()
                if not text:
                    continue
                where = f"{path}, line {lineno}"
                cols = text.split()
                if len(cols) != 7:
                    raise ValueError(
                        f"{where}: an SWC line needs 7 columns (id type x y z radius "
                        f"parent), got {len(cols)}: {raw.strip()!r}."
                    )
                try:
                    sid, stype, spar = int(cols[0]), int(cols[1]), int(cols[6])
                    x, y, z, r = (float(c) for c in cols[2:6])
                except ValueError:
                    raise ValueError(
                        f"{where}: id, type and parent must be integers and x, y, z, "
                        f"radius numbers, got {raw.strip()!r}."
                    ) from None
                if sid in line_of:
                    raise ValueError(
                        f"{where}: duplicate sample id {sid} (first on line "
                        f"{line_of[sid]})."
                    )
                if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
                    raise ValueError(f"{where}: coordinates must be finite numbers.")
                if not (r > 0.0 and math.isfinite(r)):
                    raise ValueError(
                        f"{where}: radius [µm] must lie in (0, inf), got {r!r}."
                    )
                if spar == sid:
                    raise ValueError(f"{where}: sample {sid} is its own parent (a cycle).")
                ids.append(sid)
                types[sid], xyz[sid], radius[sid] = stype, np.array([x, y, z]), r
                parent[sid], line_of[sid] = spar, lineno
        if not ids:
            raise ValueError(f"{path}: no samples found.")
        roots = [i for i in ids if parent[i] == -1]
        for i in ids:
            if parent[i] != -1 and parent[i] not in line_of:
                raise ValueError(
                    f"{path}, line {line_of[i]}: parent {parent[i]} of sample {i} does "
                    "not exist."
                )
        if len(roots) != 1:
            lines = ", ".join(str(line_of[i]) for i in roots) or "none"
            raise ValueError(
                f"{path}: an SWC file must hold exactly one root (parent -1); found "
                f"{len(roots)} (lines {lines})."
            )
        children: dict[int, list[int]] = {i: [] for i in ids}
        for i in ids:
            if parent[i] != -1:
                children[parent[i]].append(i)
        # Depth-first from the root, children in file order: this keeps a file that is
        # already parents-first (the usual case) in its own order for unbranched runs.
        order: list[int] = []
        stack = [roots[0]]
        while stack:
            i = stack.pop()
            order.append(i)
            stack.extend(reversed(children[i]))
        if len(order) != len(ids):
            reached = set(order)
            i = next(i for i in ids if i not in reached)
            raise ValueError(
                f"{path}, line {line_of[i]}: sample {i} is not connected to the root "
                "(its parents form a cycle)."
            )
        index = {sid: k for k, sid in enumerate(order)}
        lengths, diameters = [], []
        for sid in order:
            if parent[sid] == -1:
                lengths.append(2.0 * radius[sid])
            else:
                dist = float(np.linalg.norm(xyz[sid] - xyz[parent[sid]]))
                if not dist > 0.0:
                    raise ValueError(
                        f"{path}, line {line_of[sid]}: sample {sid} coincides with its "
                        "parent, which gives a compartment of zero length."
                    )
                lengths.append(dist)
            diameters.append(2.0 * radius[sid])
        return cls(
            parent=[-1 if parent[s] == -1 else index[parent[s]] for s in order],
            length=np.asarray(lengths),
            diameter=np.asarray(diameters),
            types=[types[s] for s in order],
        )

    def to_swc(self, path: str | os.PathLike) -> None:
        """Write the morphology as an SWC file that `from_swc` reads back exactly.

        The tree keeps its topology, lengths and diameters; the 3-D layout is
        invented (children laid out along +x, branches offset in y). SWC stores the
        root as a single point, read back as a cylinder of length = diameter, so the
        root's length must equal its diameter.
        """
        length = np.asarray(self.length, dtype=float)
        diameter = np.asarray(self.diameter, dtype=float)
        if not np.isclose(length[0], diameter[0], rtol=1e-12, atol=0.0):
            raise ValueError(
                "to_swc: the root compartment's length [µm] must equal its diameter "
                f"[µm] (SWC stores it as a sphere), got {length[0]!r} and {diameter[0]!r}."
            )
        pos = np.zeros((self.n_compartments, 3))
        n_children = [0] * self.n_compartments
        rows = [f"1 {self.compartment_types[0]} 0 0 0 {diameter[0] / 2:.17g} -1"]
        for k in range(1, self.n_compartments):
            p = self.parent[k]
            # A unit direction per child keeps each segment's length exact.
            angle = 0.3 * n_children[p]
            n_children[p] += 1
            pos[k] = pos[p] + length[k] * np.array([math.cos(angle), math.sin(angle), 0.0])
            x, y, z = (f"{c:.17g}" for c in pos[k])
            rows.append(
                f"{k + 1} {self.compartment_types[k]} {x} {y} {z} "
                f"{diameter[k] / 2:.17g} {p + 1}"
            )
        with open(path, "w") as f:
            f.write("# written by neurojax.neurons.Morphology.to_swc\n")
            f.write("\n".join(rows) + "\n")


def cable(n_segments: int, length: float, diameter: float) -> Morphology:
    """An unbranched cable of `length` [µm] and `diameter` [µm] cut into `n_segments`
    equal compartments; compartment 0 is the end at $x = 0$ (all type 3)."""
    n_segments = _count(n_segments, "n_segments")
    return Morphology(
        parent=range(-1, n_segments - 1),
        length=np.full(n_segments, float(length) / n_segments),
        diameter=np.full(n_segments, float(diameter)),
        types=[BASAL_DENDRITE] * n_segments,
    )


def ball_and_stick(
    soma_diameter: float = 20.0,
    dendrite_length: float = 500.0,
    dendrite_diameter: float = 2.0,
    n_segments: int = 25,
) -> Morphology:
    """A spherical soma (compartment 0: a cylinder of length = diameter =
    `soma_diameter` [µm], the sphere's surface) with one unbranched dendrite of
    `dendrite_length` [µm] and `dendrite_diameter` [µm] in `n_segments` compartments."""
    n_segments = _count(n_segments, "n_segments")
    return Morphology(
        parent=range(-1, n_segments),
        length=np.r_[float(soma_diameter), np.full(n_segments, dendrite_length / n_segments)],
        diameter=np.r_[float(soma_diameter), np.full(n_segments, float(dendrite_diameter))],
        types=[SOMA] + [BASAL_DENDRITE] * n_segments,
    )


def y_dendrite(
    trunk_length: float = 200.0,
    trunk_diameter: float = 2.0,
    branch_length: float | Sequence[float] = 200.0,
    branch_diameter: float | Sequence[float] = 1.26,
    n_trunk: int = 20,
    n_branch: int = 20,
) -> Morphology:
    """A Y-shaped dendrite: a trunk of `n_trunk` compartments starting at compartment 0,
    then two daughter branches of `n_branch` compartments each, both children of the
    trunk's last compartment. Compartments `n_trunk ... n_trunk + n_branch - 1` form
    the first branch, the rest the second.

    `branch_length` and `branch_diameter` [µm] are one value for both branches or a
    pair (first, second). The default diameters satisfy Rall's 3/2 rule
    ($2 \\cdot 1.26^{3/2} \\approx 2^{3/2}$). All lengths and diameters in [µm].
    """
    n_trunk = _count(n_trunk, "n_trunk")
    n_branch = _count(n_branch, "n_branch")
    bl = np.broadcast_to(np.asarray(branch_length, dtype=float), (2,))
    bd = np.broadcast_to(np.asarray(branch_diameter, dtype=float), (2,))
    fork = n_trunk - 1
    parent = list(range(-1, n_trunk - 1))
    for b in range(2):
        first = n_trunk + b * n_branch
        parent += [fork] + list(range(first, first + n_branch - 1))
    return Morphology(
        parent=parent,
        length=np.r_[
            np.full(n_trunk, trunk_length / n_trunk),
            np.full(n_branch, bl[0] / n_branch),
            np.full(n_branch, bl[1] / n_branch),
        ],
        diameter=np.r_[
            np.full(n_trunk, float(trunk_diameter)),
            np.full(n_branch, bd[0]),
            np.full(n_branch, bd[1]),
        ],
        types=[BASAL_DENDRITE] * (n_trunk + 2 * n_branch),
    )


def _ints(values) -> tuple[int, ...]:
    return tuple(int(i) for i in values)


def _count(value: int, name: str) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
