"""Named ready-made models used by the CLI, tutorials and benchmarks.

```python
nj.gallery.names()                       # ['brunel', 'coba', 'cobahh', 'cuba', 'v1_rate']
net = nj.gallery.get("coba", n=1000)     # an unbuilt Network
nj.gallery.info("coba").duration         # suggested run length [ms]
```
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

from ..network import Network
from .brunel import brunel
from .v1_rate import v1_rate
from .vogels_abbott import coba, cobahh, cuba


@dataclasses.dataclass(frozen=True)
class GalleryEntry:
    """A gallery model: its factory, suggested run, the sizes for `--full`, and the
    published statistics it should reproduce."""

    name: str
    factory: Callable[..., Network]
    duration: float  # suggested run length [ms]
    dt: float  # suggested step [ms]
    reference: str  # source and expected statistics
    small: dict  # overrides for the quick default run
    full: dict  # overrides for the published size


_ENTRIES = {
    "brunel": GalleryEntry(
        "brunel", brunel, 1000.0, 0.1,
        "Brunel 2000, regime C (g=5, eta=2): 37.6 Hz, ISI CV 0.42 at N_E=10000",
        small={"n_e": 4000}, full={"n_e": 10000},
    ),
    "coba": GalleryEntry(
        "coba", coba, 1000.0, 0.1,
        "Vogels & Abbott 2005 / Brette et al. 2007 benchmark 1: 18.5 +- 1.5 Hz, AI",
        small={}, full={},
    ),
    "cobahh": GalleryEntry(
        "cobahh", cobahh, 1000.0, 0.1,
        "Brette et al. 2007 benchmark 3 (Traub-Miles HH, COBA synapses): self-sustained AI",
        small={}, full={},
    ),
    "cuba": GalleryEntry(
        "cuba", cuba, 1000.0, 0.1,
        "Vogels & Abbott 2005 / Brette et al. 2007 benchmark 2: 5.5 +- 0.4 Hz, AI",
        small={}, full={},
    ),
    "v1_rate": GalleryEntry(
        "v1_rate", v1_rate, 200.0, 0.1,
        "Garcia del Molino et al. 2017 E/PV/SST/VIP rate model: low baseline 1/10/3/2 Hz; "
        "+10 pA to VIP: SST -2.4, E +0.26 Hz (low), SST +9.9, E +16 Hz (high baseline)",
        small={}, full={},
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
    try:
        inspect.signature(entry.factory).bind(**overrides)
    except TypeError as e:
        raise ValueError(f"bad override for gallery model {name!r}: {e}") from None
    return entry.factory(**overrides)
