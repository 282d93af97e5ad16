"""Shared machinery of the benchmark cases: timing, peak memory, rate checks, the
anchor workers (Brian2, BrainPy), the result table and the JSON files.

Every case reports build, compile and run time separately, the rates (checked against
the reference range before any time is printed, so a fast but wrong run is visible)
and peak memory, and writes ``benchmarks/results/<case>.json`` with one row per
simulator or variant.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from _anchors import SIMULATORS, peak_rss_mb, reset_peak_rss, rss_mb  # noqa: E402


# ----------------------------------------------------------------------------- CLI
def parser(description: str, *, duration: float, quick_duration: float) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--duration", type=float, default=None,
                   help=f"simulated time [ms] (default {duration:g}, {quick_duration:g} with --quick)")
    p.add_argument("--dt", type=float, default=0.1, help="time step [ms]")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per simulator, alternated (the median is the run time)")
    p.add_argument("--seed", type=int, default=0, help="seed for connectivity and initial state")
    p.add_argument("--quick", action="store_true", help="short run (smoke test; rates not checked)")
    p.add_argument("--anchors", default="auto",
                   help="comma-separated simulators to compare with "
                        f"({', '.join(SIMULATORS)}), 'auto' (all; those not installed say so) "
                        "or 'none'")
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/<case>.json)")
    p.set_defaults(default_duration=duration, quick_duration=quick_duration)
    return p


def finish_args(args):
    if args.duration is None:
        args.duration = args.quick_duration if args.quick else args.default_duration
    if args.quick:
        args.repeats = min(args.repeats, 2)
    if args.anchors in ("auto", "all"):
        args.anchor_list = list(SIMULATORS)
    elif args.anchors == "none":
        args.anchor_list = []
    else:
        args.anchor_list = [a.strip() for a in args.anchors.split(",") if a.strip()]
        bad = [a for a in args.anchor_list if a not in SIMULATORS]
        if bad:
            raise SystemExit(f"unknown anchor(s) {bad}; choose from {list(SIMULATORS)}.")
    return args


# ----------------------------------------------------------------------------- memory
def memory_method() -> str:
    import jax

    stats = jax.devices()[0].memory_stats()
    if stats and "peak_bytes_in_use" in stats:
        return "device peak_bytes_in_use (jax memory_stats; cumulative since process start)"
    return "process peak RSS (Linux VmHWM, reset before each run; includes the Python/JAX runtime)"


class PeakMemory:
    """Peak memory of the code run inside the `with` block [MB]: the accelerator's
    `peak_bytes_in_use` where JAX reports it (GPU/TPU), else the process's peak RSS
    (reset at entry; jax reports no memory stats on CPU, and tracemalloc would not see
    XLA's buffers)."""

    def __enter__(self):
        import jax

        self.device = jax.devices()[0]
        stats = self.device.memory_stats()
        self.on_device = bool(stats and "peak_bytes_in_use" in stats)
        if self.on_device:
            self.base_mb = stats["bytes_in_use"] / 2**20
        else:
            reset_peak_rss()
            self.base_mb = rss_mb()
        self.mb = None
        return self

    def __exit__(self, *exc):
        if self.on_device:
            self.mb = self.device.memory_stats()["peak_bytes_in_use"] / 2**20
        else:
            self.mb = peak_rss_mb()
        # What the block added on top of what was resident when it started [MB].
        self.delta_mb = None if self.mb is None or self.base_mb is None else self.mb - self.base_mb
        return False


# ----------------------------------------------------------------------------- neurojax
def prepare(model, duration: float, dt: float, seed: int, record, checkpoint: bool = False):
    """Initial state and the AOT-compiled scan of `nj.simulate` (the same scan that
    `simulate` runs, `neurojax.simulate.compile_scan`); returns `(run, compile_s)` where
    `run()` does one timed run and returns `(seconds, recorded)`."""
    import jax

    from neurojax.simulate import compile_scan, prepare_run

    model.check(dt)
    state = model.init(jax.random.key(seed + 1), dt)
    prepared, state = prepare_run(model, duration, dt, state, record, checkpoint)
    t0 = time.perf_counter()
    compiled = compile_scan(model, state, prepared)
    compile_s = time.perf_counter() - t0

    def run():
        t0 = time.perf_counter()
        _, rec = compiled(model, state)
        jax.block_until_ready(rec)
        return time.perf_counter() - t0, rec

    return run, compile_s


def rates_of(model, rec, skip_blocks: int = 0) -> dict[str, float]:
    """Population rates [Hz] averaged over the run (after the first `skip_blocks`
    blocks of `Record.every`), from a `Record(rates=...)` run."""
    import numpy as np

    return {name: float(np.mean(np.asarray(r)[..., skip_blocks:]))
            for name, r in zip(model.names, rec[1])}


def timed_build(network, seed: int):
    import jax

    t0 = time.perf_counter()
    model = network.build(jax.random.key(seed))
    jax.block_until_ready(model)
    return model, time.perf_counter() - t0


def with_kernel(network, kernel: str):
    """`network` with every projection stored `Sparse(kernel=kernel)` (see
    `nj.connectivity.Sparse`), to compare propagation kernels on one model."""
    import equinox as eqx

    import neurojax as nj

    layout = nj.connectivity.Sparse(kernel=kernel)
    projections = [
        eqx.tree_at(lambda q: q.layout, p, layout, is_leaf=lambda x: x is None)
        for p in network.projections
    ]
    return nj.Network(network.populations, projections, network.inputs)


def variant_row(name: str, network, args, record) -> dict:
    """Build, compile and time a variant of the case's model (no anchors): a row."""
    model, build_s = timed_build(network, args.seed)
    run, compile_s = prepare(model, args.duration, args.dt, args.seed, record)
    times, rec, peak = alternate(run, [], args.repeats)
    return {"name": name, "status": "ok", "build_s": build_s, "compile_s": compile_s,
            "run_s": median(times), "run_s_all": times, "peak_mb": peak,
            "rates_hz": rates_of(model, rec)}


def floor_rows(network, args, record) -> list[dict]:
    """The neuron-only floor: the same populations and scan without any projection
    (unless `--no-floor`)."""
    import neurojax as nj

    if args.no_floor:
        return []
    return [variant_row("neurojax floor (no synapses)", nj.Network(network.populations, []),
                        args, record)]


def floor_summary(rows: list[dict], n_steps: int) -> dict:
    """Per-step cost of the default run, of the floor and their ratio (for the JSON;
    `report` prints it)."""
    main = next(r for r in rows if r["name"] == "neurojax")
    floor = next((r for r in rows if r["name"].startswith("neurojax floor")), None)
    if floor is None:
        return {}
    step_us, floor_us = main["run_s"] / n_steps * 1e6, floor["run_s"] / n_steps * 1e6
    return {"step_us": step_us, "floor_step_us": floor_us, "x_floor": step_us / floor_us}


def vogels_abbott_case(case: str, doc: str, argv, weights: tuple[float, float],
                       rate_range: tuple[float, float], reference: str) -> dict:
    """The COBA or CUBA case (`case`, with the gallery model's `weights` (w_e, w_i)):
    neurojax against the anchors, then the pure-JAX kernel rows and the neuron-only
    floor; rates are checked against `rate_range` (`reference` says where it comes
    from) at the reference size before any time is printed."""
    p = parser(doc.split("\n")[0], duration=1000.0, quick_duration=200.0)
    p.add_argument("--n", type=int, default=4000, help="number of neurons (80 %% excitatory)")
    kernel_argument(p)
    args = finish_args(p.parse_args(argv))

    import neurojax as nj

    net = nj.gallery.get(case, n=args.n)
    model, build_s = timed_build(net, args.seed)
    record = nj.Record(spikes=(), rates=list(model.names), every=args.duration)
    run, compile_s = prepare(model, args.duration, args.dt, args.seed, record)
    params = {"n": args.n, "p": 0.02, "w_e": weights[0], "w_i": weights[1], "dt": args.dt,
              "duration": args.duration, "seed": args.seed}
    anchors = start_anchors(args, case, params)
    times, rec, peak = alternate(run, anchors, args.repeats)
    rates = rates_of(model, rec)
    checked = args.n == 4000 and args.duration >= 1000.0
    if checked:
        check_rates(f"{case.upper()}-4k", rates, *rate_range, reference)
    rows = [{"name": "neurojax", "status": "ok", "build_s": build_s, "compile_s": compile_s,
             "run_s": median(times), "run_s_all": times, "peak_mb": peak, "rates_hz": rates}]
    if not checked:
        rows[0]["note"] = "rates not checked (reference: n = 4000, 1 s)"
    rows += [a.row() for a in anchors]
    if checked:
        flag_anchor_rates(rows[1:], *rate_range)
    rows += kernel_rows(net, args, record)
    rows += floor_rows(net, args, record)
    title = (f"{case.upper()}-{args.n}: {args.duration:g} ms at dt = {args.dt:g} ms "
             f"(Vogels & Abbott 2005; reference {rate_range[0]:g}-{rate_range[1]:g} Hz at n = 4000, 1 s)")
    return report(case, args, rows, title, config=params,
                  extra=floor_summary(rows, round(args.duration / args.dt)))


def kernel_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-floor", action="store_true", help="skip the neuron-only floor row")
    p.add_argument("--kernels", default="loop",
                   help="comma-separated propagation kernels to time besides the default "
                        "'auto' (native, loop, buffer; '' for none)")


def kernel_rows(network, args, record) -> list[dict]:
    """One row per extra propagation kernel of `--kernels`."""
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    return [variant_row(f"neurojax, kernel={k}", with_kernel(network, k), args, record)
            for k in kernels]


# ----------------------------------------------------------------------------- anchors
class Anchor:
    """One anchor simulator in its own worker process (see `_anchors.py`)."""

    def __init__(self, sim: str, case: str, params: dict, log):
        self.sim = sim
        self.status = "ok"
        self.reason = None
        self.runs = []
        self.rates = None
        self.peak_mb = None
        self.extra = {}
        self.log_name = log.name
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_anchors.py")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1, cwd=str(HERE),
        )
        reply = self._ask(json.dumps({"sim": sim, "case": case, "params": params}))
        if reply is None or reply.get("status") != "ok":
            self.status = "unavailable"
            self.reason = (reply or {}).get("reason", f"worker died (see {log.name})")
            self.close()
            return
        self.build_s = reply["build_s"]
        self.compile_s = reply["compile_s"]
        self.version = reply.get("version")

    def _ask(self, line: str):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            out = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            return None
        return json.loads(out) if out else None

    def run(self) -> None:
        if self.status != "ok":
            return
        reply = self._ask("run")
        if reply is None or "error" in reply:
            self.status = "failed"
            self.reason = (reply or {}).get("error", f"worker died (see {self.log_name})")
            self.close()
            return
        self.runs.append(reply["run_s"])
        self.rates = reply["rates_hz"]
        if reply.get("peak_mb") is not None:
            self.peak_mb = max(self.peak_mb or 0.0, reply["peak_mb"])
        self.extra.update({k: v for k, v in reply.items()
                           if k not in ("run_s", "rates_hz", "peak_mb")})

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def row(self, label: str | None = None) -> dict:
        name = label or self.sim
        if self.status != "ok":
            return {"name": name, "status": f"{self.status}: {self.reason}"}
        return {"name": name, "status": "ok", "version": self.version,
                "build_s": self.build_s, "compile_s": self.compile_s,
                "run_s": median(self.runs) if self.runs else None, "run_s_all": self.runs,
                "peak_mb": self.peak_mb, "rates_hz": self.rates, **self.extra}


def start_anchors(args, case: str, params: dict) -> list[Anchor]:
    """Start (build and compile) each requested anchor, one after the other so their
    build and compile times are not measured under each other's load."""
    if not args.anchor_list:
        return []
    path = pathlib.Path(tempfile.gettempdir()) / f"neurojax-bench-{case}.log"
    log = open(path, "a")
    anchors = []
    for sim in args.anchor_list:
        print(f"  starting {sim} (its output: {path}) ...", flush=True)
        anchors.append(Anchor(sim, case, params, log))
    return anchors


def median(times: list[float]) -> float:
    """A row's run time: the median of its repeats (alternated with the other
    simulators), so that a ratio is not one lucky or unlucky run (issue 15)."""
    return statistics.median(times)


def spread(times: list[float]) -> float | None:
    """(max - min) / median of a row's repeats: how much to trust its run time."""
    return (max(times) - min(times)) / statistics.median(times) if len(times) > 1 else None


def alternate(nj_run, anchors: list[Anchor], repeats: int):
    """Time `repeats` runs of neurojax and of every anchor, interleaved (nj, a1, a2, ...,
    nj, a1, ...) so that load from other processes hits all simulators alike. Returns
    neurojax's run times, its last recorded output and its peak memory [MB]."""
    times, rec, peak = [], None, 0.0
    for _ in range(repeats):
        with PeakMemory() as mem:
            t, rec = nj_run()
        times.append(t)
        peak = max(peak, mem.mb or 0.0)
        for a in anchors:
            a.run()
    for a in anchors:
        a.close()
    return times, rec, peak or None


# ----------------------------------------------------------------------------- checks
def check_rates(what: str, rates: dict[str, float], low: float, high: float, why: str) -> None:
    """Stop before any time is printed if neurojax's rates leave the reference range."""
    for pop, r in rates.items():
        if not low <= r <= high:
            raise SystemExit(
                f"{what}: rate of {pop} is {r:.2f} Hz, outside the reference range "
                f"[{low:g}, {high:g}] Hz ({why}). Not timing a wrong run."
            )


def flag_anchor_rates(rows: list[dict], low: float, high: float) -> None:
    """Mark anchors whose rates leave the range (reported, not fatal: they are not ours)."""
    for row in rows:
        rates = row.get("rates_hz")
        if row.get("status") == "ok" and rates and any(not low <= r <= high for r in rates.values()):
            row["note"] = (row.get("note", "") + f" rates outside [{low:g}, {high:g}] Hz").strip()


# ----------------------------------------------------------------------------- output
def machine() -> dict:
    import jax

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"backend": jax.default_backend(), "device": str(jax.devices()[0]),
            "jax": jax.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "loadavg": load, "memory": memory_method()}


def _fmt(x, spec):
    # A missing value is a "-" in the same column width (spec ">10.2f" -> ">10").
    return format(x, spec) if isinstance(x, (int, float)) else format("-", spec.split(".")[0])


def add_ratios(rows: list[dict], baseline: str) -> None:
    """`ratio` = run time of the row / run time of `baseline` (> 1: slower than it)."""
    base = next((r for r in rows if r["name"] == baseline), None)
    for r in rows:
        if base and base.get("run_s") and r.get("run_s"):
            r["ratio"] = r["run_s"] / base["run_s"]


def table(rows: list[dict]) -> str:
    """The result rows as a fixed-width table."""
    lines = [f"{'simulator / variant':<30}{'build [s]':>10}{'compile [s]':>12}{'run [s]':>10}"
             f"{'spread':>8}{'peak [MB]':>10}{'ratio':>7}  rates [Hz] / status"]
    for r in rows:
        if r.get("status", "ok") != "ok":
            lines.append(f"{r['name']:<30}{'-':>10}{'-':>12}{'-':>10}{'-':>8}{'-':>10}{'-':>7}  "
                         f"{r['status']}")
            continue
        runs = r.get("run_s_all") or []
        spread_pct = None if spread(runs) is None else 100 * spread(runs)
        rates = ", ".join(f"{k} {v:.2f}" for k, v in (r.get("rates_hz") or {}).items())
        note = f"  [{r['note']}]" if r.get("note") else ""
        lines.append(
            f"{r['name']:<30}{_fmt(r.get('build_s'), '>10.2f')}{_fmt(r.get('compile_s'), '>12.2f')}"
            f"{_fmt(r.get('run_s'), '>10.3f')}{_fmt(spread_pct, '>7.0f')}"
            f"{'%' if spread_pct is not None else ' '}{_fmt(r.get('peak_mb'), '>10.0f')}"
            f"{_fmt(r.get('ratio'), '>7.2f')}  {rates}{note}")
    return "\n".join(lines)


def report(case: str, args, rows: list[dict], title: str, config: dict, extra: dict | None = None,
           baseline: str | None = "neurojax", ratio_note: str | None = None) -> dict:
    """Print the table and write the JSON file of a case. `ratio` is each row's run time
    over the `baseline` row's (or set by the case, explained by `ratio_note`)."""
    if baseline is not None:
        add_ratios(rows, baseline)
        ratio_note = ratio_note or (f"run time / run time of {baseline!r} (run time: the median of "
                                    f"the alternated repeats; spread: (max - min) / median)")
    print(title)
    print(table(rows))
    if ratio_note:
        print(f"ratio = {ratio_note}.")
    out = pathlib.Path(args.out) if args.out else RESULTS / f"{case}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"case": case, "title": title, "ratio": ratio_note, "config": config,
               "machine": machine(), "rows": rows, **(extra or {})}
    out.write_text(json.dumps(payload, indent=2))
    if "x_floor" in payload:
        print(f"per step: {payload['step_us']:.1f} us, neuron-only floor {payload['floor_step_us']:.1f} us: "
              f"{payload['x_floor']:.1f}x the floor")
    print(f"wrote {out}")
    return payload
