"""Run the whole benchmark suite and print one table.

    python benchmarks/run.py [--quick] [--cases coba,cuba,...] [--anchors LIST] [--max-n N]

Each case runs in its own process (a clean JAX runtime, and peak memory that belongs
to that case alone): coba, cuba, scaling, brunel, sweep, bptt. Each writes
``benchmarks/results/<case>.json``; this script gathers them into one table (and
``benchmarks/results/summary.json``). A case that fails its rate check, or crashes, is
shown as FAILED with its last message and makes the exit status non-zero. Brian2 and
BrainPy rows appear when the ``bench`` extra is installed (``pip install -e
".[bench]"``); otherwise they say "not installed".
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RESULTS, machine, table  # noqa: E402

CASES = ("coba", "cuba", "scaling", "brunel", "sweep", "bptt")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {CASES}")
    p.add_argument("--quick", action="store_true", help="short runs (smoke test; rates not checked)")
    p.add_argument("--anchors", default="auto", help="passed to each case: auto, none or a list")
    p.add_argument("--max-n", type=int, default=None, help="passed to scaling.py")
    p.add_argument("--repeats", type=int, default=None, help="passed to each case")
    args = p.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; choose from {CASES}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    rows, failed = [], []
    for case in cases:
        cmd = [sys.executable, str(HERE / f"{case}.py"), "--anchors", args.anchors]
        if args.quick:
            cmd.append("--quick")
        if args.repeats is not None:
            cmd += ["--repeats", str(args.repeats)]
        if case == "scaling" and args.max_n is not None:
            cmd += ["--max-n", str(args.max_n)]
        out = RESULTS / f"{case}.json"
        started = time.time()
        print(f"== {case}: {' '.join(cmd[1:])}", flush=True)
        proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
        wall = time.time() - started
        fresh = out.exists() and out.stat().st_mtime >= started
        if proc.returncode != 0 or not fresh:
            last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            sys.stderr.write(proc.stderr)
            rows.append({"case": case, "name": "FAILED", "status": f"FAILED: {last}"[:200]})
            failed.append(case)
            print(f"== {case}: FAILED after {wall:.0f} s", flush=True)
            continue
        data = json.loads(out.read_text())
        for r in data["rows"]:
            rows.append({"case": case, **r})
        print(f"== {case}: done in {wall:.0f} s", flush=True)

    print()
    print("Summary (times in s; ratio = run time over the case's baseline row, see each case's note)")
    lines = table(rows).splitlines()
    print(f"{'case':<9}" + lines[0])
    for r, line in zip(rows, lines[1:]):
        print(f"{r['case']:<9}" + line)
    m = machine()
    print(f"backend {m['backend']} ({m['device']}), jax {m['jax']}, {m['cores']} cores, "
          f"load {m['loadavg']}; peak memory: {m['memory']}")
    (RESULTS / "summary.json").write_text(json.dumps({"machine": m, "rows": rows}, indent=2))
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
