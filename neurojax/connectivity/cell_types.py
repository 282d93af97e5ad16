r"""Cell-type tables: connection probabilities and strengths between cell types.

A `CellTypeTable` holds, for every pair of types (e.g. E, PV, SST, VIP), the
probability $p_{ab}$ that a neuron of type $b$ contacts a neuron of type $a$ and the
strength $s_{ab}$ of such a connection, both indexed **[post, pre]** like every matrix
in the library. It is read from (and written to) a CSV file of one row per pair,

```text
# Campagnola et al. 2022, mouse V1 L2/3 (comment lines start with '#')
post,pre,p,strength [mV]
E,E,0.12,0.1
E,PV,0.67,-0.44
...
```

and turned into one `Projection` per connected pair (`FixedProbability(p)`) for the
populations named after the types:

```python
table = nj.connectivity.CellTypeTable.from_csv("v1.csv", inhibitory=["PV", "SST", "VIP"])
projs = table.projections(pops, synapse=nj.synapses.Exponential(tau=5.0),
                          weight_fn=lambda post, pre, psp: psp / peak[post, pre])
```

Strengths are signed (inhibitory entries negative, the convention of REFERENCES.md
§17) and carry the unit written in the header (a PSP amplitude [mV], a current [pA],
a conductance [nS]...): `projections` uses them as the synaptic weight as they are,
or through `weight_fn`, which converts them into the receptor's units.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..synapses.kinetics import AbstractKinetics
from ..synapses.receptors import AbstractReceptor, Current
from .builders import FixedProbability

_HEADER = ("post", "pre", "p")
_STRENGTH = re.compile(r"^strength \[(?P<unit>[^\[\]]+)\]$")


class CellTypeTable:
    """Connection probabilities and signed strengths between cell types, `[post, pre]`.

    **Arguments:**

    - `types`: Names of the cell types, e.g. `("E", "PV", "SST", "VIP")`; they name the
      populations the table wires (`projections`).
    - `p`: `(n_types, n_types)` connection probabilities [dimensionless], in [0, 1];
      `p[a, b]` is the probability that a given type-`b` neuron contacts a given type-`a`
      neuron.
    - `strength`: `(n_types, n_types)` signed strengths in `unit`, finite; entries of an
      inhibitory presynaptic type are <= 0, of an excitatory one >= 0 (every column has
      one sign, Dale's law).
    - `unit`: The unit of `strength`, e.g. `"mV"` (PSP amplitudes), `"pA"`, `"nS"`.
    - `inhibitory`: Optional presynaptic types declared inhibitory: their strengths must
      be <= 0 and every other type's >= 0. Without it only Dale's law is checked.
    - `source`: Where the numbers come from (written as comment lines of the CSV).

    Every check raises a `ValueError` naming the entry (and, from a file, its line).

    !!! example
        ```python
        table = nj.connectivity.CellTypeTable(
            ["E", "I"], p=[[0.1, 0.4], [0.3, 0.4]],
            strength=[[0.2, -0.8], [0.5, -0.6]], unit="mV", inhibitory=["I"])
        ```
    """

    types: tuple[str, ...]
    p: np.ndarray
    strength: np.ndarray
    unit: str
    source: str

    def __init__(self, types: Sequence[str], p: Any, strength: Any, *, unit: str,
                 inhibitory: Iterable[str] | None = None, source: str = "",
                 _where: Callable[[str, str], str] | None = None):
        types = tuple(types)
        where = _where or (lambda post, pre: f"entry [post={post!r}, pre={pre!r}]")
        for t in types:
            if not isinstance(t, str) or not t.strip() or t != t.strip():
                raise ValueError(
                    f"CellTypeTable types must be non-empty names without surrounding "
                    f"spaces, got {t!r}."
                )
        if not types:
            raise ValueError("CellTypeTable needs at least one type.")
        repeated = sorted({t for t in types if types.count(t) > 1})
        if repeated:
            raise ValueError(f"CellTypeTable types must be unique; repeated: {repeated}.")
        if not isinstance(unit, str) or not unit.strip() or "[" in unit or "]" in unit:
            raise ValueError(
                f"CellTypeTable unit of strength must be a non-empty unit name such as "
                f"'mV', 'pA' or 'nS' (no brackets), got {unit!r}."
            )
        n = len(types)
        arrays = {}
        for name, value in (("p", p), ("strength", strength)):
            try:
                arr = np.array(value, dtype=float)
            except (TypeError, ValueError):
                raise ValueError(
                    f"CellTypeTable {name} must be a numeric (n_types, n_types) = ({n}, {n}) "
                    f"array [post, pre], got non-numeric values."
                ) from None
            if arr.shape != (n, n):
                raise ValueError(
                    f"CellTypeTable {name} must have shape (n_types, n_types) = ({n}, {n}) "
                    f"[post, pre] for types {list(types)}, got {arr.shape}."
                )
            arr.setflags(write=False)
            arrays[name] = arr
        p, strength = arrays["p"], arrays["strength"]
        for i, post in enumerate(types):
            for j, pre in enumerate(types):
                _check_p(p[i, j], where(post, pre), post, pre)
                _check_strength(strength[i, j], unit, where(post, pre), post, pre)
        if inhibitory is not None:
            inhibitory = [inhibitory] if isinstance(inhibitory, str) else list(inhibitory)
            unknown = [t for t in inhibitory if t not in types]
            if unknown:
                raise ValueError(
                    f"CellTypeTable inhibitory types {unknown} are not in the table's types "
                    f"{list(types)}."
                )
        for j, pre in enumerate(types):
            column = strength[:, j]
            if inhibitory is not None:
                bad = np.flatnonzero(column > 0 if pre in inhibitory else column < 0)
                if bad.size:
                    i = int(bad[0])
                    kind, allowed = (("inhibitory", "(-inf, 0]") if pre in inhibitory
                                     else ("excitatory", "[0, inf)"))
                    raise ValueError(
                        f"CellTypeTable {where(types[i], pre)}: strength [{unit}] of "
                        f"{kind} presynaptic type {pre!r} must lie in {allowed} (inhibitory "
                        f"entries are negative), got {column[i]:g}."
                    )
            elif (column > 0).any() and (column < 0).any():
                i_pos, i_neg = int(np.flatnonzero(column > 0)[0]), int(np.flatnonzero(column < 0)[0])
                raise ValueError(
                    f"CellTypeTable strengths [{unit}] of presynaptic type {pre!r} have both "
                    f"signs ({where(types[i_pos], pre)}: {column[i_pos]:g}, "
                    f"{where(types[i_neg], pre)}: {column[i_neg]:g}); a type is excitatory "
                    f"(>= 0) or inhibitory (<= 0) onto every target (Dale's law)."
                )
        self.types, self.p, self.strength = types, p, strength
        self.unit, self.source = unit.strip(), str(source)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_dict(cls, p: Mapping[str, Mapping[str, float]],
                  strength: Mapping[str, Mapping[str, float]], *, unit: str,
                  inhibitory: Iterable[str] | None = None, source: str = "") -> CellTypeTable:
        """A table from nested dicts `p[post][pre]` and `strength[post][pre]`; every pair
        of types must be present in both (`p = 0` for no connection). The types are
        ordered as the keys of `p` first appear (post, then pre)."""
        types: list[str] = []
        for table in (p, strength):
            for post, row in table.items():
                if not isinstance(row, Mapping):
                    raise ValueError(
                        f"CellTypeTable.from_dict needs nested dicts [post][pre]; the row "
                        f"for post={post!r} is a {type(row).__name__}."
                    )
                for t in (post, *row):
                    if t not in types:
                        types.append(t)
        arrays = []
        for name, table in (("p", p), ("strength", strength)):
            missing = [(a, b) for a in types for b in types if b not in table.get(a, {})]
            if missing:
                raise ValueError(
                    f"CellTypeTable.from_dict {name} lacks the (post, pre) pairs {missing}; "
                    f"every pair of types {types} needs a value (p = 0 for no connection)."
                )
            arrays.append([[table[a][b] for b in types] for a in types])
        return cls(types, arrays[0], arrays[1], unit=unit, inhibitory=inhibitory, source=source)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, *,
                 inhibitory: Iterable[str] | None = None) -> CellTypeTable:
        """Read a table written by `to_csv` (or by hand): optional `#` comment lines (those
        before the header are the `source`; later ones are skipped), the header `post,pre,p,strength [<unit>]`, then one row per (post,
        pre) pair of types. Errors name the file and line: a wrong header or number of
        fields, a non-numeric, NaN or infinite value, `p` outside [0, 1], a repeated or
        missing pair, a strength of the wrong sign."""
        path = os.fspath(path)
        comments: list[str] = []
        entries: dict[tuple[str, str], tuple[float, float, int]] = {}
        types: list[str] = []
        header = unit = None
        with open(path, newline="", encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                text = line.rstrip("\r\n")
                if text.startswith("#"):
                    if header is None:  # leading comments are the source; later ones notes
                        comments.append(text[1:].removeprefix(" "))
                    continue
                if not text.strip():
                    continue
                fields = [x.strip() for x in next(csv.reader([text]))]
                at = f"{path}:{lineno}"
                if header is None:
                    match = _STRENGTH.match(fields[3]) if len(fields) == 4 else None
                    if tuple(fields[:3]) != _HEADER or match is None:
                        raise ValueError(
                            f"{at}: the header must be 'post,pre,p,strength [<unit>]' (e.g. "
                            f"'strength [mV]'), got {text!r}."
                        )
                    header, unit = fields, match["unit"].strip()
                    continue
                if len(fields) != 4:
                    raise ValueError(
                        f"{at}: expected 4 fields (post, pre, p, strength [{unit}]), got "
                        f"{len(fields)}: {text!r}."
                    )
                post, pre, p_text, s_text = fields
                for t in (post, pre):
                    if not t:
                        raise ValueError(f"{at}: empty cell-type name in {text!r}.")
                p_value = _number(p_text, at, "connection probability p", "", post, pre)
                s_value = _number(s_text, at, "strength", unit, post, pre)
                _check_p(p_value, at, post, pre)
                _check_strength(s_value, unit, at, post, pre)
                if (post, pre) in entries:
                    raise ValueError(
                        f"{at}: duplicate entry post={post!r}, pre={pre!r} (first on line "
                        f"{entries[(post, pre)][2]})."
                    )
                entries[(post, pre)] = (p_value, s_value, lineno)
                for t in (post, pre):
                    if t not in types:
                        types.append(t)
        if header is None:
            raise ValueError(f"{path}: no header 'post,pre,p,strength [<unit>]' found.")
        if not entries:
            raise ValueError(f"{path}: the table has a header but no rows.")
        missing = [(a, b) for a in types for b in types if (a, b) not in entries]
        if missing:
            raise ValueError(
                f"{path}: missing rows for the (post, pre) pairs {missing}; every pair of "
                f"the types {types} needs a row (p = 0 for no connection)."
            )
        p = [[entries[(a, b)][0] for b in types] for a in types]
        s = [[entries[(a, b)][1] for b in types] for a in types]
        return cls(types, p, s, unit=unit, inhibitory=inhibitory, source="\n".join(comments),
                   _where=lambda post, pre: f"{path}:{entries[(post, pre)][2]}")

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the table in the format `from_csv` reads; `from_csv` gives back an
        equal table (every float is written with `repr`, which round-trips exactly)."""
        with open(os.fspath(path), "w", newline="", encoding="utf-8") as f:
            for line in self.source.split("\n") if self.source else []:
                f.write(f"# {line}\n" if line else "#\n")
            w = csv.writer(f, lineterminator="\n")
            w.writerow([*_HEADER, f"strength [{self.unit}]"])
            for i, post in enumerate(self.types):
                for j, pre in enumerate(self.types):
                    w.writerow([post, pre, repr(float(self.p[i, j])),
                                repr(float(self.strength[i, j]))])

    # ------------------------------------------------------------------ queries
    def index(self, name: str) -> int:
        """Position of type `name` in `types`."""
        if name not in self.types:
            raise ValueError(f"unknown cell type {name!r}; the table has {list(self.types)}.")
        return self.types.index(name)

    def sign(self, pre: str) -> int:
        """+1 if type `pre` excites (some strength > 0), -1 if it inhibits, 0 if all its
        strengths are zero."""
        column = self.strength[:, self.index(pre)]
        return 1 if (column > 0).any() else (-1 if (column < 0).any() else 0)

    def projections(
        self,
        populations: Sequence[Any],
        *,
        synapse: AbstractKinetics | Mapping[str, AbstractKinetics],
        receptor: AbstractReceptor | Mapping[str, AbstractReceptor] = Current(),
        weight_fn: Callable[[str, str, float], float] | None = None,
        delay: float = 0.0,
        layout: Any = None,
        allow_autapses: bool = False,
        connectivity: Callable[[str, str, float], Any] | None = None,
    ) -> list:
        """One `Projection` per pair with `p > 0`: `FixedProbability(p)` (or the rule
        `connectivity` returns) from the population named `pre` onto the one named
        `post`, named `"pre->post"`.

        **Arguments:**

        - `populations`: The `Population`s (or their names), one per type of the table,
          named exactly as the types.
        - `synapse`: Kinetics, or a dict from presynaptic type to kinetics.
        - `receptor`: Receptor, or a dict from presynaptic type to receptor (default
          `Current()`).
        - `weight_fn`: `(post, pre, strength) -> weight` in the receptor's units (e.g. a
          PSP amplitude [mV] to a current [pA]); by default the strength is the weight.
          With `Conductance` receptors return magnitudes (e.g. `abs`): inhibition is
          the receptor's negative reversal potential, and a negative conductance is
          rejected when the network is built.
        - `delay`, `layout`: As in `Projection`.
        - `allow_autapses`: Keep self-connections within a type.
        - `connectivity`: `(post, pre, p) -> rule`, the connectivity rule of each pair
          from the table's probability, e.g. for populations in one space
          `lambda post, pre, p: nj.connectivity.DistanceDependent(p=p, width=0.05)`
          (the table's p is then the peak probability). Default: `FixedProbability(p)`.
        """
        from ..network import Population, Projection  # network imports this package

        names = [pop.name if isinstance(pop, Population) else pop for pop in populations]
        for n in names:
            if not isinstance(n, str):
                raise ValueError(
                    f"CellTypeTable.projections populations must be Populations or their "
                    f"names, got {type(n).__name__}."
                )
        no_population = [t for t in self.types if t not in names]
        not_in_table = [n for n in names if n not in self.types]
        if no_population or not_in_table:
            parts = []
            if no_population:
                parts.append(f"table types {no_population} have no population")
            if not_in_table:
                parts.append(f"populations {not_in_table} are not types of the table")
            raise ValueError(
                f"CellTypeTable.projections: {'; '.join(parts)} (table types "
                f"{list(self.types)}, populations {names}); name each population after "
                f"its type."
            )
        synapses = _per_type(synapse, "synapse", self.types, AbstractKinetics)
        receptors = _per_type(receptor, "receptor", self.types, AbstractReceptor)
        out = []
        for i, post in enumerate(self.types):
            for j, pre in enumerate(self.types):
                p = float(self.p[i, j])
                if p == 0.0:
                    continue
                s = float(self.strength[i, j])
                w = s if weight_fn is None else weight_fn(post, pre, s)
                rule = (FixedProbability(p, allow_autapses=allow_autapses)
                        if connectivity is None else connectivity(post, pre, p))
                out.append(Projection(
                    pre, post, rule, weight=w,
                    synapse=synapses[pre], receptor=receptors[pre], delay=delay,
                    layout=layout, name=f"{pre}->{post}"))
        return out

    # ------------------------------------------------------------------ dunder
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CellTypeTable):
            return NotImplemented
        return (self.types == other.types and self.unit == other.unit
                and self.source == other.source and np.array_equal(self.p, other.p)
                and np.array_equal(self.strength, other.strength))

    __hash__ = None  # type: ignore[assignment]  # mutable-looking arrays: not hashable

    def __repr__(self) -> str:
        return f"CellTypeTable(types={list(self.types)}, unit={self.unit!r})"

    def __str__(self) -> str:
        width = max(8, *(len(t) + 2 for t in self.types))
        corner = "post \\ pre"
        lines = [f"p / strength [{self.unit}], [post, pre]",
                 f"{corner:<{width}}" + "".join(f"{t:>16}" for t in self.types)]
        for i, post in enumerate(self.types):
            cells = "".join(f"{self.p[i, j]:>7.3g} / {self.strength[i, j]:<6.3g}"
                            for j in range(len(self.types)))
            lines.append(f"{post:<{width}}{cells}")
        return "\n".join(lines)


def _number(text: str, at: str, name: str, unit: str, post: str, pre: str) -> float:
    try:
        return float(text)
    except ValueError:
        unit_s = f" [{unit}]" if unit else ""
        raise ValueError(
            f"{at}: {name}{unit_s} of {pre}->{post} must be a number, got {text!r}."
        ) from None


def _check_p(value: float, at: str, post: str, pre: str) -> None:
    if not (0.0 <= value <= 1.0):  # also catches NaN
        raise ValueError(
            f"CellTypeTable {at}: connection probability p [dimensionless] of {pre}->{post} "
            f"must lie in [0, 1], got {value:g}."
        )


def _check_strength(value: float, unit: str, at: str, post: str, pre: str) -> None:
    if not math.isfinite(value):
        raise ValueError(
            f"CellTypeTable {at}: strength [{unit}] of {pre}->{post} must be finite "
            f"(in (-inf, inf)), got {value:g}."
        )


def _per_type(value, what: str, types: tuple[str, ...], kind: type) -> dict:
    if isinstance(value, kind):
        return {t: value for t in types}
    if isinstance(value, Mapping):
        missing = [t for t in types if t not in value]
        extra = [t for t in value if t not in types]
        if missing or extra:
            raise ValueError(
                f"CellTypeTable.projections {what} dict must have one entry per presynaptic "
                f"type {list(types)}; missing {missing}, unknown {extra}."
            )
        for t, v in value.items():
            if not isinstance(v, kind):
                raise ValueError(
                    f"CellTypeTable.projections {what} for type {t!r} must be a "
                    f"{kind.__name__}, got {type(v).__name__}."
                )
        return dict(value)
    raise ValueError(
        f"CellTypeTable.projections {what} must be a {kind.__name__} or a dict from "
        f"presynaptic type to one, got {type(value).__name__}."
    )
