import os

os.environ.setdefault("MPLBACKEND", "Agg")  # figures are drawn, never shown

import jax
import jax.random as jr
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


# A module-scoped fixture that clears JAX's caches; every module has it, and it costs
# nothing to set up again on another worker.
_CHEAP_SHARED_FIXTURES = {"_release_compiled_programs"}


def _shared_fixture_groups(items):
    """Map each test that uses an expensive shared fixture (a module-, package- or
    session-scoped fixture of this suite: a built network, a loaded guide, a 4-device
    child process) to an `xdist_group` name: the tests of one module that share such
    fixtures, directly or through a chain of tests, form one group (union-find over the
    fixture names), so that each fixture is built on one worker only. Tests without one
    get no group and are spread over the workers one by one."""
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    shared = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        module = item.nodeid.split("::")[0]
        names = [f"{module}::{name}" for name, defs in info.name2fixturedefs.items()
                 if defs and defs[-1].scope != "function" and defs[-1].baseid
                 and name not in _CHEAP_SHARED_FIXTURES]
        if names:
            shared[item] = names
            for other in names[1:]:
                parent[find(other)] = find(names[0])
    return {item: find(names[0]) for item, names in shared.items()}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (its hook has no order)
def pytest_collection_modifyitems(config, items):
    """Two things at collection.

    The suite runs on pytest-xdist workers (`-n auto --dist loadgroup` in pyproject.toml).
    Tests that share an expensive module-scoped fixture run on one worker, as one
    `xdist_group` (see `_shared_fixture_groups`), so the fixture is built once; every
    other test (most of the suite, the tutorials included) is spread over the workers
    test by test, so that no large module keeps one worker busy while the other idles.

    Tests (or parameters: `pytest.param("native", marks=pytest.mark.native)`) marked
    `native` need the optional compiled CPU kernel: without it (no C++ compiler, or
    installed with NEUROJAX_NO_NATIVE=1) they are skipped, with the reason, and the
    rest of the suite tests the pure-JAX kernels that such an install uses."""
    for item, group in _shared_fixture_groups(items).items():
        item.add_marker(pytest.mark.xdist_group(group))

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
