"""Every tutorial runs in quick mode, writes its figure and ends with a table of the
numbers it reproduced next to the published ones."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.py"))
# Quick mode is meant to finish within a minute on two busy cores; the limit only
# catches a hang, so that one stuck tutorial cannot stall the suite.
TIMEOUT_S = 300


def test_tutorials_are_discovered():
    names = {p.stem for p in TUTORIALS}
    assert {"izhikevich_gallery", "hopfield_retrieval", "brunel_regimes"} <= names


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_quick(script, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path / "figures")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert list((tmp_path / "figures").glob("*.png")), f"{script.name} wrote no PNG"

    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    headers = [i for i, line in enumerate(lines) if "published" in line.lower()]
    assert headers, f"{script.name} printed no reproduced-vs-published table"
    # The script must end with the table: its last header is followed by rows of
    # numbers, none of which failed to compute.
    rows = lines[headers[-1] + 1:]
    assert len(rows) >= 2, f"{script.name}: the table has no rows:\n{proc.stdout}"
    assert all(any(c.isdigit() for c in row) for row in rows), proc.stdout
    assert not any("nan" in row.lower().split() for row in rows), proc.stdout
