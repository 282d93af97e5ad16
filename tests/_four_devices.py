"""Run a test script in a child process that sees four emulated CPU devices (JAX fixes
its device count at start-up, so it cannot be changed inside the test process).

The child prints one line `RESULT{json}`; `start` launches it (so it can compile while
the module's single-device tests run) and `result` waits for and parses that line.
Every child runs under the suite's configuration (`PREAMBLE`: warnings are errors, x64,
rank promotion raises), imports the neurojax of the test process, and starts its `out`
with the device count and that neurojax's path."""

import json
import os
import pathlib
import subprocess
import sys

import neurojax


PREAMBLE = """\
import json, warnings
warnings.simplefilter("error")
import jax
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
import neurojax
out = {"devices": jax.device_count(), "neurojax": neurojax.__file__}
"""


def start(script_text: str, directory) -> subprocess.Popen:
    script = directory / "child.py"
    script.write_text(PREAMBLE + script_text)
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    # The child imports the neurojax this process imported: a script's own folder,
    # not the working directory, starts its import path, and an editable install may
    # point at another checkout.
    root = str(pathlib.Path(neurojax.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, env.get("PYTHONPATH")) if x)
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def result(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-4000:]
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT"))
    out = json.loads(line[len("RESULT"):])
    assert out["devices"] == 4
    assert out["neurojax"] == neurojax.__file__, "the child imported another neurojax"
    return out
