"""Every tutorial runs in quick mode, writes its figure and ends with a table of the
numbers it reproduced next to the published ones; the table asserts each row against
its tolerance (tutorials/_compare.py), so a tutorial that reproduces wrong numbers
exits with status 1 and fails here."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIAL_DIR = Path(__file__).resolve().parents[1] / "tutorials"
# Modules with a leading underscore are helpers shared by the tutorials, not tutorials.
# The slowest in quick mode first (as CI measured them, 2026-12-07): the suite runs
# the longest work first (tests/conftest.py), so that none of these starts last and
# keeps one worker busy while the others idle. The order changes nothing else.
SLOWEST_FIRST = ("v1_campagnola", "fit_spiking_network", "rajan2016_sequences",
                 "wang2002_decision", "random_and_low_rank", "parameter_sweeps",
                 "whole_brain_fc", "spiking_decision_eprop", "brunel_phase_diagram",
                 "dale_decision_making", "dale_cognitive_tasks", "ssn_inference",
                 "inhibition_stabilization", "learn_plasticity_parameter", "spiking_digits",
                 "stdp_and_stp")
TUTORIALS = sorted(
    (p for p in TUTORIAL_DIR.glob("*.py") if not p.name.startswith("_")),
    key=lambda p: (SLOWEST_FIRST.index(p.stem) if p.stem in SLOWEST_FIRST
                   else len(SLOWEST_FIRST), p.stem),
)
# Quick mode is meant to finish within a minute on two busy cores; the limit only
# catches a hang, so that one stuck tutorial cannot stall the suite.
TIMEOUT_S = 300
# Each tutorial checks several published numbers; fewer would mean rows were dropped
# from its table or turned into unchecked ones.
MIN_CHECKS = 5


def test_tutorials_are_discovered():
    names = {p.stem for p in TUTORIALS}
    assert {"izhikevich_gallery", "hopfield_retrieval", "brunel_regimes", "hh_fi_curve",
            "brunel_phase_diagram",
            "dendritic_attenuation"} <= names


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_quick(script, tmp_path):
    # Run this checkout's neurojax, not whichever one is installed.
    path = os.pathsep.join(filter(None, [str(TUTORIAL_DIR.parent),
                                         os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=path)
    # The run's persistent compilation cache (tests/conftest.py), so that the programs a
    # tutorial shares with the others and with the suite (mostly JAX's small eager
    # kernels: key splits, broadcasts, arithmetic on small arrays) are read back instead
    # of compiled. Measured (--quick, CPU time): brunel_phase_diagram on an empty cache
    # 34.7 -> 33.6 s (13 of 175 programs found, its own repeats), parameter_sweeps after
    # it 45.0 -> 42.7 s (27 of 157 found). A user's own JAX_COMPILATION_CACHE_DIR, if
    # set, is inherited as it is.
    cache = os.environ.get("NEUROJAX_TEST_COMPILATION_CACHE_DIR")
    if cache and not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        env.update(JAX_COMPILATION_CACHE_DIR=cache,
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path / "figures")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    # A row outside its tolerance makes the tutorial exit with status 1.
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert list((tmp_path / "figures").glob("*.png")), f"{script.name} wrote no PNG"
    found = re.findall(r"^checks within tolerance: (\d+) of (\d+)$", proc.stdout, re.M)
    assert found, f"{script.name} printed no reproduced-vs-published table:\n{proc.stdout}"
    passed, total = map(int, found[-1])
    assert passed == total >= MIN_CHECKS, proc.stdout
    # The table is the last thing printed.
    assert proc.stdout.rstrip().splitlines()[-1].startswith("checks within tolerance")


def test_a_row_outside_its_tolerance_fails_the_tutorial(tmp_path):
    # The mechanism the tests above rely on: one wrong number among correct ones makes
    # the script exit with status 1 and name the row.
    script = tmp_path / "wrong.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(TUTORIAL_DIR)!r})\n"
        "from _compare import Comparison\n"
        "t = Comparison('title', 'run')\n"
        "t.close('right', 1.0, 1.0, atol=0.1)\n"
        "t.close('wrong', 1.2, 1.0, rtol=0.1)\n"
        "t.shown('unchecked', 'x', 'y', 'why')\n"
        "t.finish()\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert "checks within tolerance: 1 of 2" in proc.stdout
    assert "FAIL wrong" in proc.stderr
