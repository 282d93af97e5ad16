"""The README's quickstart is a contract with new users: it must run as written."""

import os
import pathlib
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_quickstart_runs(tmp_path):
    text = README.read_text()
    code = text.split("## Quickstart", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-2000:]
    rate, cv = map(float, done.stdout.split()[-2:])
    assert rate > 0.0 and cv > 0.0
    assert (tmp_path / "raster.png").stat().st_size > 1000
