import collections
import os

os.environ.setdefault("MPLBACKEND", "Agg")  # figures are drawn, never shown

import jax
import jax.random as jr
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


# Test modules whose tests may be spread over all workers: the tutorials are independent
# processes, and the guides' module fixtures only load a guide (cheap), so a worker that
# runs some of their tests loads what those need. Every other module runs whole on one
# worker. Listed longest first (the order in which their tests are handed out).
_SPREAD_OVER_WORKERS = ("test_tutorials", "test_guides")


def pytest_configure(config):
    # pytest-xdist >= 3.6 hands out work units (modules, or single tests of the spread
    # modules) largest test count first, which sends every single tutorial to the end
    # of the run: the longest of them (v1_campagnola) then ran on one worker while the
    # other waited. The order below is used instead (older xdist has no reordering).
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (its hook has no order)
def pytest_collection_modifyitems(config, items):
    """Three things at collection.

    The suite runs on pytest-xdist workers (`-n auto --dist loadgroup` in pyproject.toml).
    Many modules build an expensive network or spawn a 4-device child process once, in a
    module-scoped fixture: each such module is one `xdist_group`, so that the fixture is
    built on one worker only; the tutorials and guides are spread. The work is ordered
    longest first (below).

    Tests (or parameters: `pytest.param("native", marks=pytest.mark.native)`) marked
    `native` need the optional compiled CPU kernel: without it (no C++ compiler, or
    installed with NEUROJAX_NO_NATIVE=1) they are skipped, with the reason, and the
    rest of the suite tests the pure-JAX kernels that such an install uses."""
    modules = [item.module.__name__ if item.module is not None else item.nodeid
               for item in items]
    spread = {m: _SPREAD_OVER_WORKERS.index(m.rpartition(".")[2]) for m in modules
              if m.rpartition(".")[2] in _SPREAD_OVER_WORKERS}
    for item, module in zip(items, modules):
        if module not in spread:
            item.add_marker(pytest.mark.xdist_group(module))
    # Longest work first, so that the run ends on short modules and no worker idles
    # while another finishes a long one: the spread modules' tests (each tutorial is
    # tens of seconds to minutes; tests/test_tutorials.py lists the slowest first), then
    # the other modules by decreasing number of tests (as xdist would order them). The
    # sort is stable, so each module's tests stay together and in their order.
    count = collections.Counter(modules)
    rank = {id(item): (0, spread[module]) if module in spread else (1, -count[module])
            for item, module in zip(items, modules)}
    items.sort(key=lambda item: rank[id(item)])

    from neurojax.connectivity import native_kernel_available, native_kernel_status

    if native_kernel_available():
        return
    skip = pytest.mark.skip(reason=f"needs the compiled CPU kernel ({native_kernel_status()})")
    for item in items:
        if item.get_closest_marker("native") is not None:
            item.add_marker(skip)


@pytest.fixture
def getkey():
    """A fresh PRNG key on every call, deterministic across runs."""
    state = {"key": jr.key(5678)}

    def _getkey():
        state["key"], sub = jr.split(state["key"])
        return sub

    return _getkey


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled executables after each test module. The suite compiles
    thousands of programs in one process; twice this session XLA:CPU crashed
    (segmentation fault in `backend_compile_and_load`) late in a full run on tests that
    pass alone, so each module starts without the previous modules' executables."""
    yield
    jax.clear_caches()
