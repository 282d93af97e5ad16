r"""Connectomes as edge lists: read, validate, build, write back.

An edge list names each synapse by its presynaptic and postsynaptic neuron, with an
optional weight factor and delay:

```text
pre,post,weight,delay
0,3,0.5,1.5
0,7,-0.25,2.0
```

```python
edges = nj.connectivity.FromEdges.read("connectome.csv")        # or .tsv / .npz
proj = nj.Projection("X", "X", edges, weight=0.1)                 # weight scales the column
edges.write("copy.csv")                                           # exact round trip
nj.connectivity.FromEdges.from_built(model.projections[0]).write("built.npz")
```

Neurons may be named (`pre` / `post` holding strings, e.g. cell ids of an EM
connectome): `read(path, pre_names=..., post_names=...)` maps names to indices, in the
order of the population, and names the file line of an unknown one. Duplicate edges,
NaN or infinite weights, negative or non-finite delays, non-numeric cells and ids outside
the populations are errors that name the file and line. Weights are written with 17
significant digits, so a written and re-read connectome builds the identical network.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import equinox as eqx
import numpy as np

from .builders import AbstractConnectivity, Synapses

__all__ = ["FromEdges"]

_COLUMNS = ("pre", "post", "weight", "delay")


class FromEdges(AbstractConnectivity):
    """Synapses listed edge by edge (a connectome): presynaptic and postsynaptic indices,
    optional weight factors (times the projection's `weight`, as with `FromMatrix`) and
    optional per-synapse delays [ms] (then the projection's `delay` must stay 0).

    **Arguments:**

    - `pre`, `post`: Integer indices of each synapse's neurons, in `[0, n)`.
    - `weight`: Per-synapse weight factors (default: 1 for every synapse).
    - `delay`: Per-synapse delays [ms], >= 0 (default: the projection's delay).
    - `source`: Where the edges came from (a file name), used in error messages.
    - `lines`: The file line of each edge, used in error messages.

    Use `read` / `write` for CSV, TSV and NPZ files and `from_built` to export a built
    projection.
    """

    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray | None
    delay: np.ndarray | None
    source: str = eqx.field(static=True, default="edges")
    lines: np.ndarray | None = None

    def __init__(self, pre, post, weight=None, delay=None, *, source="edges", lines=None):
        pre, post = np.asarray(pre), np.asarray(post)
        self.source = str(source)
        self.lines = None if lines is None else np.asarray(lines, dtype=np.int64)
        for what, ids in (("pre", pre), ("post", post)):
            if ids.ndim != 1 or ids.shape != pre.shape:
                raise ValueError(
                    f"FromEdges {what} must be a 1-D array with one entry per edge; got "
                    f"pre of shape {pre.shape} and post of shape {post.shape}."
                )
            if ids.size and not np.issubdtype(ids.dtype, np.integer):
                if not np.all(np.equal(np.mod(ids.astype(float), 1), 0)):
                    raise ValueError(
                        f"FromEdges {what} ids must be integers (or read() with names); "
                        f"got {ids.dtype}."
                    )
            if ids.size and ids.min() < 0:
                i = int(np.argmin(ids))
                raise ValueError(f"{self._where(i)}: {what} id {ids[i]} is negative; "
                                 "ids must lie in [0, n).")
        self.pre, self.post = pre.astype(np.int64), post.astype(np.int64)
        self.weight = self._per_edge(weight, "weight", "", low=-np.inf)
        self.delay = self._per_edge(delay, "delay", " [ms]", low=0.0)
        self._check_duplicates()

    # -- validation -----------------------------------------------------------------

    def _where(self, i: int) -> str:
        return f"FromEdges {self.source} {_line(self.lines, i)}"

    def _per_edge(self, values, what, unit, low):
        if values is None:
            return None
        arr = np.asarray(values)
        if arr.shape != self.pre.shape:
            raise ValueError(
                f"FromEdges {what}{unit} must have one entry per edge ({self.pre.size}), "
                f"got shape {arr.shape}."
            )
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError):
            raise ValueError(f"FromEdges {what}{unit} must be numeric, got {arr.dtype}.") from None
        bad = ~np.isfinite(arr) | (arr < low)
        if bad.any():
            i = int(np.argmax(bad))
            allowed = "finite" if low == -np.inf else f"finite and in [{low:g}, inf)"
            raise ValueError(f"{self._where(i)}: {what}{unit} is {float(arr[i])!r}; it must be {allowed}.")
        return arr

    def _check_duplicates(self) -> None:
        if self.pre.size < 2:
            return
        order = np.lexsort((self.post, self.pre))
        same = (np.diff(self.pre[order]) == 0) & (np.diff(self.post[order]) == 0)
        if same.any():
            k = int(np.argmax(same))
            i, j = sorted((int(order[k]), int(order[k + 1])))
            raise ValueError(
                f"{self._where(j)}: duplicate edge {self.pre[j]} -> {self.post[j]} (first "
                f"given at {_line(self.lines, i)}); give each synapse once "
                "(sum the weights of repeated contacts)."
            )

    # -- building ---------------------------------------------------------------------

    def sample(self, key, n_pre, n_post, autapses_possible):
        for what, ids, n in (("pre", self.pre, n_pre), ("post", self.post, n_post)):
            if ids.size and ids.max() >= n:
                i = int(np.argmax(ids >= n))
                raise ValueError(
                    f"{self._where(i)}: {what} id {ids[i]} is outside the {what}synaptic "
                    f"population of {n} neurons (ids lie in [0, {n}))."
                )
        order = np.lexsort((self.post, self.pre))
        return Synapses(
            pre=self.pre[order],
            post=self.post[order],
            values=None if self.weight is None else self.weight[order],
            delays=None if self.delay is None else self.delay[order],
        )

    # -- files ------------------------------------------------------------------------

    @classmethod
    def read(cls, path: str | os.PathLike, *, pre_names: Sequence[str] | None = None,
             post_names: Sequence[str] | None = None) -> FromEdges:
        """Read an edge list from `.csv`, `.tsv` (a header row naming `pre`, `post` and
        optionally `weight`, `delay` [ms]) or `.npz` (arrays of those names).

        `pre_names` / `post_names` map neuron names in the file to indices (the i-th
        name is neuron i); without them the ids must be integers."""
        path = os.fspath(path)
        source = os.path.basename(path)
        ext = os.path.splitext(path)[1].lower()
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as f:
                missing = [c for c in ("pre", "post") if c not in f.files]
                if missing:
                    raise ValueError(f"FromEdges {source}: missing arrays {missing}; the file has {f.files}.")
                cols = {c: f[c] for c in _COLUMNS if c in f.files}
            lines = None
        elif ext in (".csv", ".tsv"):
            cols, lines = _read_table(path, source, "\t" if ext == ".tsv" else ",")
        else:
            raise ValueError(f"FromEdges.read: unknown file type {ext!r} of {path!r}; use .csv, .tsv or .npz.")
        for what, names in (("pre", pre_names), ("post", post_names)):
            if names is not None:
                cols[what] = _map_names(cols[what], names, what, source, lines)
            elif cols[what].dtype.kind in "US":
                cols[what] = _parse_numbers(cols[what], what, source, lines, integer=True)
        for what in ("weight", "delay"):
            if what in cols and cols[what].dtype.kind in "US":
                cols[what] = _parse_numbers(cols[what], what, source, lines, integer=False)
        return cls(cols["pre"], cols["post"], cols.get("weight"), cols.get("delay"),
                   source=source, lines=lines)

    def write(self, path: str | os.PathLike, *, pre_names: Sequence[str] | None = None,
              post_names: Sequence[str] | None = None) -> None:
        """Write the edge list to `.csv`, `.tsv` or `.npz` (by extension); weights and
        delays with 17 significant digits, so `read` gives back the identical edges.
        `pre_names` / `post_names` write neuron names instead of indices."""
        path = os.fspath(path)
        ext = os.path.splitext(path)[1].lower()
        cols = {"pre": self.pre, "post": self.post}
        for what, names in (("pre", pre_names), ("post", post_names)):
            if names is not None:
                names = np.asarray(names, dtype=str)
                if cols[what].size and cols[what].max() >= names.size:
                    raise ValueError(f"FromEdges.write {what}_names has {names.size} names, "
                                     f"but ids reach {cols[what].max()}.")
                cols[what] = names[cols[what]]
        if self.weight is not None:
            cols["weight"] = self.weight
        if self.delay is not None:
            cols["delay"] = self.delay
        if ext == ".npz":
            np.savez(path, **cols)
        elif ext in (".csv", ".tsv"):
            with open(path, "w", newline="") as f:
                out = csv.writer(f, delimiter="\t" if ext == ".tsv" else ",")
                out.writerow(list(cols))
                text = [c.astype(str) if c.dtype.kind in "iuUS" else
                        np.char.mod("%.17g", c) for c in cols.values()]
                out.writerows(zip(*text))
        else:
            raise ValueError(f"FromEdges.write: unknown file type {ext!r} of {path!r}; use .csv, .tsv or .npz.")

    @classmethod
    def from_built(cls, projection) -> FromEdges:
        """The edges of a built projection (`model.projections[i]`): its synapses with
        their weights (the projection's full weight, so rebuild with `weight=1`) and
        per-synapse delays where it has them."""
        w = projection.weights
        if hasattr(w, "targets"):  # SparseWeights: (n_pre, max_out) rows, padded with n_post
            targets = np.asarray(w.targets)
            pre, col = np.nonzero(targets < w.n_post)
            post = targets[pre, col]
            weights = np.asarray(w.weights, float)
            weight = np.broadcast_to(weights, targets.shape)[pre, col] if weights.ndim else np.full(pre.size, float(weights))
            delay = None if w.delays is None else np.asarray(w.delays, float)[pre, col]
        elif hasattr(w, "counts"):  # DenseWeights
            if w.counts is not None and int(np.asarray(w.counts).max(initial=0)) > 1:
                raise ValueError(
                    f"FromEdges.from_built: projection {projection.name!r} has repeated "
                    "synapses between one pair (counts > 1), which an edge list cannot hold."
                )
            structure = np.asarray(w.counts if w.counts is not None else w.weights)
            post, pre = np.nonzero(structure)
            weight = np.asarray(w.matrix(), float)[post, pre]
            delay = None
        else:
            raise ValueError(
                f"FromEdges.from_built: projection {projection.name!r} stores no synapses "
                f"({type(w).__name__}); procedural connectivity has no edge list."
            )
        return cls(pre, post, weight, delay, source=f"projection {projection.name!r}")


def _read_table(path: str, source: str, delimiter: str):
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if not rows:
        raise ValueError(f"FromEdges {source} is empty; expected a header row with pre, post[, weight, delay].")
    header = [h.strip().lower() for h in rows[0]]
    unknown = [h for h in header if h not in _COLUMNS]
    if unknown or "pre" not in header or "post" not in header:
        raise ValueError(
            f"FromEdges {source} line 1: header {rows[0]} must name the columns pre, post "
            f"and optionally weight, delay [ms]; unknown: {unknown}."
        )
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(c.strip() for c in r)]
    for line, r in body:
        if len(r) != len(header):
            raise ValueError(f"FromEdges {source} line {line}: {len(r)} cells, the header has {len(header)}.")
    lines = np.array([line for line, _ in body], dtype=np.int64)
    cols = {h: np.array([r[j].strip() for _, r in body], dtype=str) for j, h in enumerate(header)}
    return cols, lines


def _line(lines, i: int) -> str:
    return f"edge {i}" if lines is None else f"line {int(lines[i])}"


def _parse_numbers(cells, what, source, lines, integer):
    out = np.empty(cells.size, dtype=np.int64 if integer else float)
    for i, c in enumerate(cells):
        try:
            out[i] = int(c) if integer else float(c)
        except ValueError:
            kind = "an integer neuron id (or pass names to read())" if integer else "a number"
            raise ValueError(f"FromEdges {source} {_line(lines, i)}: {what} {str(c)!r} is not {kind}.") from None
    return out


def _map_names(cells, names, what, source, lines):
    index = {str(n): i for i, n in enumerate(names)}
    if len(index) != len(names):
        raise ValueError(f"FromEdges.read {what}_names contains repeated names.")
    cells = np.asarray(cells).astype(str)
    out = np.empty(cells.size, dtype=np.int64)
    for i, c in enumerate(cells):
        if c not in index:
            raise ValueError(
                f"FromEdges {source} {_line(lines, i)}: unknown {what} neuron {str(c)!r} (not in "
                f"{what}_names, which has {len(index)} names)."
            )
        out[i] = index[c]
    return out
