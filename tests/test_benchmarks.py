"""The benchmark scripts' command lines: every script answers `--help` (argparse
formats every help string then, so a stray `%` in one crashes it)."""

import pathlib
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


def test_the_benchmark_scripts_are_found():
    assert {"coba.py", "cuba.py", "run.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_runs(script):
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_thunk_count_of_a_scan_body():
    """benchmarks/thunks.py counts the instructions of the compiled scan body by kind:
    a carried vector updated by one elementwise expression is one loop fusion, and a
    second, independent carried vector adds at least one more (XLA:CPU does not fuse
    multiple outputs); the kinds add up to the total and constants, parameters and
    tuples (no run-time work) are not counted."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from thunks import step_thunks
    finally:
        sys.path.remove(str(BENCHMARKS))

    def scan(*xs):
        def body(c, _):
            return tuple(jnp.exp(-x) * 0.5 + 1.0 for x in c), None
        return jax.lax.scan(body, xs, None, length=10)[0]

    one = step_thunks(jax.jit(scan).lower(jnp.ones(1000)).compile().as_text())
    two = step_thunks(jax.jit(scan).lower(jnp.ones(1000), jnp.ones(500)).compile().as_text())
    for r in (one, two):
        assert r["thunks"] == sum(r["by_kind"].values())
        assert not {"parameter", "constant", "tuple", "get-tuple-element"} & set(r["by_kind"])
    assert one["fusions"] >= 1
    assert two["fusions"] > one["fusions"]
    assert one["custom_calls"] == 0


@pytest.mark.parametrize("case", ["coba", "cuba"])
def test_the_compiled_step_copies_each_carried_array_at_most_once(case):
    """The compiled step of COBA / CUBA (the scan `nj.simulate` runs) copies no more
    arrays than the scan carries: XLA copies each loop-carried array at the top of the
    step (benchmarks/README.md, issue 15), and any copy beyond that is a buffer rebuilt
    where it should be updated in place. A ring buffer cleared by broadcasting a fresh
    zero row instead of a scatter at its slot did that: 4 more copies (17 for 13 carried
    arrays) and a COBA-4k step 1.4x slower (benchmarks/thunks.py), with the same
    spikes, which no other test sees. The synaptic states are not copied at all: the
    network step writes them only after the neurons' new state (`after`), which
    removed their 4 copies (13 -> 9 for 13 carried arrays, at n = 400 to 8000)."""
    import jax

    import neurojax as nj
    from neurojax.simulate import _run, _scan_args, prepare_run

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from thunks import step_thunks
    finally:
        sys.path.remove(str(BENCHMARKS))

    model = nj.gallery.get(case, n=400).build(jax.random.key(0))
    state = model.init(jax.random.key(1), 0.1)
    record = nj.Record(spikes=(), rates=list(model.names), every=10.0)
    prepared, state = prepare_run(model, 10.0, 0.1, state, record)
    hlo = _run.lower(*_scan_args(model, state, prepared, None),
                     truncate=prepared.window).compile().compiled.as_text()
    carried = len(jax.tree_util.tree_leaves(state))
    counts = step_thunks(hlo)
    assert counts["custom_calls"] in (0, 4)  # the native kernel, one call per target
    assert 0 < counts["copies"] <= carried, counts
    synaptic = len(jax.tree_util.tree_leaves(state.synapses))
    assert synaptic == 4
    assert counts["copies"] <= carried - synaptic, counts
