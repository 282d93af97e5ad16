"""A pytest plugin that lists the tests which reach a propagation-kernel choice that an
install without the compiled kernel (NEUROJAX_NO_NATIVE=1) makes differently: the
input of .ci/phase2-tests.txt's single tests within the connectivity modules.

Where `.ci/kernel_probe.py` looks at the networks a test builds, this one records the
decisions themselves, in the library: every call of `native_kernel_available()` from
the sparse and procedural propagation ("auto": the compiled kernel, or else the pure-JAX
loop) and of `_native.has(...)` (the backward pass over the gradient support and the
sparse pair-STDP update, for "auto" and "native"). A kernel named "loop" or "buffer"
reaches none of them and runs the same code with or without the compiled kernel.
JAX's caches are cleared before each test, so that a test whose program another test
compiled traces it again (and is seen); a decision made while a module is imported, or
in a fixture's setup, is reported as such, and such a module is kept whole. Run it
where the compiled kernel is absent (the install of CI phase 2, or a copy of the tree
without neurojax/_native/_events*.so), from the repository root:

    PYTHONPATH=$PWD:.ci python -m pytest -p kernel_path_probe -n 0 <test files>

writes kernel-path-probe.json (test id -> the phases that reached a decision)."""
import json

import jax

# The running test and phase, kept by kernel_probe's hook wrapper (this plugin's own
# hooks below; importing kernel_probe registers none of its hooks).
from kernel_probe import CUR, _wrap

HITS = {}


def _record(name):
    where = CUR[0] if CUR[0] is not None else ("<import/collect>", "import")
    HITS.setdefault(where[0], set()).add(f"{where[1]}:{name}")


def _wrap_call(fn, name):
    def wrapped(*args, **kwargs):
        _record(name)
        return fn(*args, **kwargs)
    return wrapped


def pytest_configure(config):
    import neurojax._native as native
    import neurojax.connectivity.procedural as procedural
    import neurojax.connectivity.weights as weights

    weights.native_kernel_available = _wrap_call(weights.native_kernel_available,
                                                 "weights.native_kernel_available")
    procedural.native_kernel_available = _wrap_call(procedural.native_kernel_available,
                                                    "procedural.native_kernel_available")
    orig_has = native.has
    native.has = lambda target: (_record(f"_native.has({target})"), orig_has(target))[1]


pytest_runtest_setup = _wrap("setup", before_setup=jax.clear_caches)
pytest_runtest_call = _wrap("call")
pytest_runtest_teardown = _wrap("teardown")


def pytest_sessionfinish(session):
    with open("kernel-path-probe.json", "w") as f:
        json.dump({k: sorted(v) for k, v in sorted(HITS.items())}, f, indent=1)
