import os

os.environ.setdefault("MPLBACKEND", "Agg")  # figures are drawn, never shown

import jax
import jax.random as jr
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


# Test modules whose tests are independent processes with no shared fixture: pytest-xdist
# may spread their tests over all workers. Every other module runs whole on one worker.
_SPREAD_OVER_WORKERS = {"test_tutorials"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (its hook has no order)
def pytest_collection_modifyitems(config, items):
    """Two things at collection.

    The suite runs on pytest-xdist workers (`-n auto --dist loadgroup` in pyproject.toml).
    Many modules build an expensive network or spawn a 4-device child process once, in a
    module-scoped fixture: each such module is one `xdist_group`, so that the fixture is
    built on one worker only; the tutorials (each its own subprocess) are spread.

    Tests (or parameters: `pytest.param("native", marks=pytest.mark.native)`) marked
    `native` need the optional compiled CPU kernel: without it (no C++ compiler, or
    installed with NEUROJAX_NO_NATIVE=1) they are skipped, with the reason, and the
    rest of the suite tests the pure-JAX kernels that such an install uses."""
    for item in items:
        module = item.module.__name__ if item.module is not None else item.nodeid
        if module.rpartition(".")[2] not in _SPREAD_OVER_WORKERS:
            item.add_marker(pytest.mark.xdist_group(module))

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
