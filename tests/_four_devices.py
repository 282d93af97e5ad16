"""Run a test script in a child process that sees four emulated CPU devices (JAX fixes
its device count at start-up, so it cannot be changed inside the test process).

The child prints one line `RESULT{json}`; `start` launches it (so it can compile while
the module's single-device tests run) and `result` waits for and parses that line.
Every child runs under the suite's configuration (`PREAMBLE`: warnings are errors, x64,
rank promotion raises) and starts its `out` with the device count."""

import json
import os
import subprocess
import sys


PREAMBLE = """\
import json, warnings
warnings.simplefilter("error")
import jax
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
out = {"devices": jax.device_count()}
"""


def start(script_text: str, directory) -> subprocess.Popen:
    script = directory / "child.py"
    script.write_text(PREAMBLE + script_text)
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
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
    return out
