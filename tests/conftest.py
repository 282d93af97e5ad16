import collections
import os
import shutil
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")  # figures are drawn, never shown

import jax
import jax.random as jr
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


# Test modules whose tests may be spread over all workers: the tutorials, the README's
# two tests and the two-process sharding test are independent child processes with no
# module fixture, the guides' module fixtures only load a guide (cheap), and
# tests/test_simulate.py's one module fixture is a 10 ms run of 12 neurons, so a worker
# that runs some of their tests loads what those need. Every other module runs whole on
# one worker. Listed longest first (the order in which their tests are handed out): the
# README (42 + 20 s in CI) and the two-process test (29 s) would otherwise be handed out
# last, as modules of 2 and 1 tests, and keep one worker busy while the other idles.
# tests/test_simulate.py is most of CI phase 3's smoke subset (~130 of its 150 s) and 8
# of phase 2's tests: whole on one worker, it was the length of phase 3. Spread, its 83
# tests took 274 s of CPU time against 260 s whole (-n 2; its programs are shared
# through the run's compilation cache), and 513 s of wall time against 677 s.
_SPREAD_OVER_WORKERS = ("test_tutorials", "test_readme", "test_sharding_processes",
                        "test_guides", "test_simulate")


# The persistent compilation cache of one test run (see `_use_compilation_cache`): the
# controller creates the folder and names it here; pytest-xdist's workers, started after
# `pytest_configure`, inherit the variable and use the same folder.
_CACHE_ENV = "NEUROJAX_TEST_COMPILATION_CACHE_DIR"


def _use_compilation_cache(config):
    """Share compiled programs between the test modules and workers of one run, through a
    JAX persistent compilation cache in a fresh temporary folder (removed at the end).

    Many modules compile the same programs (the same networks and helpers, built from
    new Python closures, so JAX's in-memory caches miss), and `_release_compiled_programs`
    drops every executable after each module; a program already compiled in this run,
    by this worker or another, is then read back from disk instead of compiled again.
    Every program is written, however quick its compilation (JAX's default skips those
    under 1 s), except those with host callbacks (JAX never writes those). Measured
    back to back with `-n 2` on 2 shared cores (without: JAX_ENABLE_COMPILATION_CACHE=
    false), wall / CPU (user+sys): tests/plasticity tests/synapses 262 / 276 s without,
    183 / 234 s with; tests/test_simulate.py tests/test_network.py tests/plasticity
    tests/synapses tests/neurons 1807 / 880 s without, 1130 / 726 s with (the machine
    busier during the first run).

    A user's own JAX_COMPILATION_CACHE_DIR is left as it is. The cache starts empty, so
    no program of an earlier run or another checkout is reused. Tests that count
    compilations (tests/test_simulate.py) still count a program read back from the
    cache: JAX reports `/jax/core/compile/backend_compile_duration` around the cache
    lookup and the compilation alike (jax/_src/interpreters/pxla.py, from the floor
    0.6.1 to 0.10.2; checked)."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    if not hasattr(config, "workerinput") and not os.environ.get(_CACHE_ENV):
        config._neurojax_cache_dir = tempfile.mkdtemp(prefix="neurojax-jax-cache-")
        os.environ[_CACHE_ENV] = config._neurojax_cache_dir
    path = os.environ.get(_CACHE_ENV)
    if not path:
        return
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # -1: no size threshold (0 lets JAX substitute its default minimum).
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    # JAX writes an entry without a lock (jax/_src/lru_cache.py), so a worker may read an
    # entry that another is still writing: the torn entry fails to decompress, and JAX
    # warns and compiles the program itself, which must not fail the test under
    # `filterwarnings = error`. Likewise a failed write only loses the entry.
    config.addinivalue_line(
        "filterwarnings", "ignore:Error reading persistent compilation cache entry:UserWarning")
    config.addinivalue_line(
        "filterwarnings", "ignore:Error writing persistent compilation cache entry:UserWarning")


def pytest_unconfigure(config):
    path = getattr(config, "_neurojax_cache_dir", None)
    if path is not None:  # the controller, which created it
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(_CACHE_ENV, None)


def pytest_configure(config):
    _use_compilation_cache(config)
    # pytest-xdist >= 3.6 hands out work units (modules, or single tests of the spread
    # modules) largest test count first, which sends every single tutorial to the end
    # of the run: the longest of them (v1_campagnola) then ran on one worker while the
    # other waited. The order below is used instead (older xdist has no reordering).
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def _work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to under `--dist loadgroup`: its module, or the
    test itself for the modules in `_SPREAD_OVER_WORKERS`."""
    path = nodeid.split("::", 1)[0]
    if path.rpartition("/")[2].removesuffix(".py") in _SPREAD_OVER_WORKERS:
        return nodeid
    return path


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: absent without it
def pytest_xdist_make_scheduler(config, log):
    """Under `--dist loadgroup` (pyproject.toml), one module is one unit of work, sent
    whole to one worker, except the spread modules, whose tests are units of their own.

    This is what xdist's loadgroup with an `xdist_group` mark per module did, but that
    no longer groups anything under pytest >= 9.2: xdist (3.8.0 included) marks a test's
    group by rewriting `item._nodeid`, and pytest 9.2 keeps the node id in `item._id`,
    so the rewrite is lost and every test became a unit of its own. Each worker then
    ran a share of every module and built its module fixtures again (two 4-device child
    processes for tests/test_sharding_connectivity.py, two for each fixture of
    tests/test_sharding_shard_map.py, two documentation builds, ...). The scheduler is
    xdist's loadscope one (a public class) with the unit chosen here from the node id,
    which does not depend on either package's internals; `loadscopereorder` is turned
    off in `pytest_configure`, so the units are handed out in the order of
    `pytest_collection_modifyitems`."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class _ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return _work_unit(nodeid)

    return _ModuleScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Two things at collection.

    The suite runs on pytest-xdist workers (`-n auto --dist loadgroup` in pyproject.toml).
    Many modules build an expensive network or spawn a 4-device child process once, in a
    module-scoped fixture: each such module is handed to one worker whole (by
    `pytest_xdist_make_scheduler` above), so that the fixture is built once; the
    modules of `_SPREAD_OVER_WORKERS` are spread. The work is ordered longest first (below).

    Tests (or parameters: `pytest.param("native", marks=pytest.mark.native)`) marked
    `native` need the optional compiled CPU kernel: without it (no C++ compiler, or
    installed with NEUROJAX_NO_NATIVE=1) they are skipped, with the reason, and the
    rest of the suite tests the pure-JAX kernels that such an install uses."""
    modules = [item.module.__name__ if item.module is not None else item.nodeid
               for item in items]
    spread = {m: _SPREAD_OVER_WORKERS.index(m.rpartition(".")[2]) for m in modules
              if m.rpartition(".")[2] in _SPREAD_OVER_WORKERS}
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
