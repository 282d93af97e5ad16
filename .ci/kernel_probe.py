"""A pytest plugin that lists the tests whose networks use the kernel choice, the input
of .ci/phase2-tests.txt (CI phase 2 runs those without the compiled kernel).

It records, per test and phase (collection, setup, call), every `Network.build` whose
model holds a container with a `kernel` field of "auto" or "native": the only
containers whose propagation (and plastic update) NEUROJAX_NO_NATIVE=1 switches to
the pure-JAX kernels. A network without one (dense or rate projections only, or sparse
ones that name "loop" / "buffer") runs the same code with or without the compiled
kernel. Builds in child processes (tests/_four_devices.py, subprocess scripts) are not
seen: such modules are judged by reading their scripts. Usage, from the repository root:

    PYTHONPATH=$PWD:.ci python -m pytest -p kernel_probe -n 0 <test files>

writes kernel-probe-<worker>.json (test id -> what it built) in the working directory."""
import json, os
import pytest
import jax

CUR = [None]
HITS = {}


def _kernels(model):
    found = set()
    def visit(x):
        k = getattr(x, "kernel", None)
        if isinstance(k, str):
            found.add((type(x).__name__, k))
        return False
    jax.tree_util.tree_flatten(model, is_leaf=lambda x: visit(x))
    return found


def pytest_configure(config):
    import neurojax.network as net
    orig = net.Network.build

    def build(self, *a, **k):
        m = orig(self, *a, **k)
        ks = _kernels(m)
        where = CUR[0] if CUR[0] is not None else ("<import/collect>", "import")
        if any(k in ("auto", "native") for _, k in ks):
            HITS.setdefault(where[0], set()).add(where[1] + ":" + ",".join(sorted(f"{a}={b}" for a, b in ks)))
        return m

    net.Network.build = build


def _wrap(phase, before_setup=None):
    """A hook wrapper that keeps `CUR` at the running test and phase (shared with
    .ci/kernel_path_probe.py, which clears JAX's caches before each setup)."""
    @pytest.hookimpl(hookwrapper=True)
    def hook(item, *a, **k):
        if phase == "setup" and before_setup is not None:
            before_setup()
        CUR[0] = (item.nodeid, phase)
        yield
        CUR[0] = None
    return hook


pytest_runtest_setup = _wrap("setup")
pytest_runtest_call = _wrap("call")
pytest_runtest_teardown = _wrap("teardown")


def pytest_collectstart(collector):
    CUR[0] = (getattr(collector, "nodeid", "?"), "collect")


def pytest_sessionfinish(session):
    wid = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"kernel-probe-{wid}.json", "w") as f:
        json.dump({k: sorted(v) for k, v in HITS.items()}, f, indent=0)
