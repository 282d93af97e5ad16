"""Command line: `neurojax run NAME`, `neurojax list`, `neurojax info NAME`, `neurojax bench [--quick ...]`.

```
neurojax run coba --duration 1000 --dt 0.1 --seed 0 --out neurojax-out
```

prints the model as configured (with `--set` overrides) and the statistics it should
reproduce, per-population rates and ISI CVs with build, compile and run times, and writes
`NAME_raster.png` and `NAME_result.npz` (see `nj.Result.load`) into `--out`.
`neurojax info NAME` prints a gallery model's source, its arguments with their defaults
and the published statistics.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
import types
import typing


class _UsageError(Exception):
    """A bad command line value: printed as one line, exit status 2."""


def _convert(entry, key: str, value: str, item: str):
    """`value` as the type the gallery factory declares for argument `key`, so that
    `--set n=abc` fails here, naming the option, and not deep inside the factory."""
    import inspect

    parameters = inspect.signature(entry.factory).parameters
    if key not in parameters:
        raise _UsageError(f"--set {item}: {entry.name} has no argument {key!r}; "
                          f"its arguments: {', '.join(parameters)} (see `neurojax info {entry.name}`)")
    default = parameters[key].default
    try:
        hint = typing.get_type_hints(entry.factory).get(key)
    except (NameError, TypeError):  # an annotation that does not resolve: parse as JSON
        hint = None
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if type(None) in kinds and value.lower() in ("none", "null"):
        return None
    for kind in kinds:
        if kind is bool:
            if value.lower() in ("true", "false"):
                return value.lower() == "true"
        elif kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        elif kind is str:
            return value
    if hint is None or kinds == (typing.Any,):
        # Undeclared: JSON where it parses (numbers, lists), otherwise a string.
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    names = " or ".join("None" if k is type(None) else getattr(k, "__name__", str(k)) for k in kinds)
    raise _UsageError(f"--set {item}: {key} takes {names} (default {default!r}), got {value!r}")


def _overrides(entry, args) -> dict:
    overrides = dict(entry.full if args.full else entry.small)
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise _UsageError(f"--set {item}: expected ARG=VALUE, e.g. --set regime=A")
        overrides[key] = _convert(entry, key, value, item)
    return overrides


def _run(args) -> int:
    import jax

    from . import gallery
    from .simulate import Record, assemble_result, compile_scan, prepare_run, simulate

    entry = gallery.info(args.name)
    overrides = _overrides(entry, args)
    duration = entry.duration if args.duration is None else args.duration
    dt = entry.dt if args.dt is None else args.dt

    t0 = time.perf_counter()
    model = gallery.get(args.name, **overrides).build(jax.random.key(args.seed))
    build_s = time.perf_counter() - t0

    model.check(dt)
    state = model.init(jax.random.key(args.seed + 1), dt)
    run, state = prepare_run(model, duration, dt, state, Record())
    if args.progress:
        # Chunks of the scan, each compiled on first use: compilation is in the run time.
        t0 = time.perf_counter()
        res = simulate(model, duration, dt, state=state, record=Record(), progress=True)
        jax.block_until_ready(res.spikes)
        compile_s, run_s = None, time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        compiled = compile_scan(model, state, run)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        final, recorded = compiled(model, state)
        jax.block_until_ready(recorded)
        run_s = time.perf_counter() - t0
        res = assemble_result(model, run, final, recorded)

    # The header names the model as run: the arguments that differ from the factory's
    # defaults and the statistics of that configuration (not the default's).
    arguments = entry.arguments(**overrides)
    defaults = entry.arguments()
    changed = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                        for k, v in arguments.items() if v != defaults[k])
    print(f"neurojax run {args.name}{f' ({changed})' if changed else ''}: "
          f"{sum(n for _, n in res.sizes)} neurons, {duration:g} ms at dt = {dt:g} ms")
    print(f"expected: {entry.source}: {entry.expected_fn(arguments)}")
    t_start = min(duration / 2, 200.0)
    print(f"{'population':>10} {'n':>7} {'rate [Hz]':>10} {'ISI CV':>7}   (after {t_start:g} ms)")
    for name, n in res.sizes:
        pop = model.population(name)
        if not pop.neuron.spiking:
            # Rate units emit graded rates, not spikes: report the population's mean
            # rate at the end of the run (no ISI).
            state = res.state.neurons[model.index(name)]
            rate = float(pop.neuron.rate(state).mean())
            print(f"{name:>10} {n:>7} {rate:>10.2f} {'-':>7}   (rate unit, end of run)")
            continue
        rate = float(res.rate(name, t_start=t_start))
        cv = res.isi_cv(name, t_start=t_start)
        print(f"{name:>10} {n:>7} {rate:>10.2f} {cv:>7.2f}")
    compiled_in = "in the run" if compile_s is None else f"{compile_s:.2f} s"
    print(f"build {build_s:.2f} s | compile {compiled_in} | run {run_s:.2f} s "
          f"({run_s / (duration * 1e-3):.2f} s per simulated second, {jax.default_backend()})")

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")  # the command only writes files (the library leaves the backend alone)
    import matplotlib.pyplot as plt

    fig = res.raster()
    fig.savefig(out / f"{args.name}_raster.png", dpi=120)
    plt.close(fig)
    res.save(out / f"{args.name}_result.npz")
    print(f"wrote {out / (args.name + '_raster.png')} and {out / (args.name + '_result.npz')}")
    return 0


def _list(args) -> int:
    from . import gallery

    for name in gallery.names():
        print(f"{name:>8}  {gallery.info(name).reference}")
    return 0


def _info(args) -> int:
    import inspect

    from . import gallery

    entry = gallery.info(args.name)
    factory = entry.factory
    doc = inspect.getdoc(factory) or ""
    # The module, not inspect.getsourcefile(factory): under the jaxtyping import hook
    # the factory is a wrapper defined in jaxtyping.
    module = sys.modules[factory.__module__]
    print(f"{entry.name}: {doc.splitlines()[0] if doc else factory.__name__}")
    print(f"source: {entry.source}")
    print(f"code: {factory.__module__}.{factory.__qualname__} ({module.__file__})")
    print(f"run: {entry.duration:g} ms at dt = {entry.dt:g} ms"
          + "".join(f"; {label} {_fmt(d)}" for label, d in
                    (("default run", entry.small), ("--full", entry.full)) if d))
    print("arguments (default: description; change with --set ARG=VALUE):")
    described = _argument_docs(doc)
    for name, p in inspect.signature(factory).parameters.items():
        print(f"  {name} = {p.default!r}: {described.get(name, '')}".rstrip(": "))
    print("published statistics:")
    for configuration, statistics in entry.statistics:
        print(f"  {configuration}: {statistics}")
    if module.__doc__:
        print()
        print(inspect.cleandoc(module.__doc__))
    return 0


def _fmt(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items())


def _argument_docs(doc: str) -> dict:
    """`{name: description}` from a docstring's `**Arguments:**` list (`- `name`: ...`,
    continuation lines indented; one item may name several arguments)."""
    found, current = {}, []
    for line in doc.split("**Arguments:**", 1)[-1].splitlines() if "**Arguments:**" in doc else []:
        stripped = line.strip()
        if stripped.startswith("- `"):
            names_part, _, text = stripped[2:].partition(": ")
            current = [n.strip(" `") for n in names_part.split(",")]
            for n in current:
                found[n] = text
        elif stripped and current and line.startswith(" "):
            for n in current:
                found[n] += " " + stripped
        elif not stripped:
            current = []
    return found


def _bench(args) -> int:
    script = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
    if not script.exists():
        print("benchmarks/ is not installed with the package; run from a source checkout.")
        return 2
    os.execv(sys.executable, [sys.executable, str(script), *args.extra])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="neurojax", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate a gallery model and summarise it")
    run.add_argument("name", help="gallery model (see `neurojax list`)")
    run.add_argument("--duration", type=float, default=None, help="run length [ms]")
    run.add_argument("--dt", type=float, default=None, help="time step [ms]")
    run.add_argument("--seed", type=int, default=0, help="seed for build and initial state")
    run.add_argument("--out", default="neurojax-out", help="folder for the figure and results")
    run.add_argument("--full", action="store_true", help="use the published network size")
    run.add_argument("--progress", action="store_true", help="show a progress bar")
    run.add_argument("--set", action="append", metavar="ARG=VALUE",
                     help="override a gallery argument, e.g. --set regime=A")
    run.set_defaults(fn=_run)
    lst = sub.add_parser("list", help="list the gallery models")
    lst.set_defaults(fn=_list)
    inf = sub.add_parser("info", help="a gallery model's source, arguments and statistics")
    inf.add_argument("name", help="gallery model (see `neurojax list`)")
    inf.set_defaults(fn=_info)
    bench = sub.add_parser(
        "bench", help="run the benchmark suite (benchmarks/run.py; e.g. --quick, --cases coba,cuba)"
    )
    bench.set_defaults(fn=_bench)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":
        # The subcommand's parser, so the usage printed is that of `run` (or `info`),
        # whose options the user was reaching for.
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        code = args.fn(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below, not at exit
        return code
    except (ValueError, _UsageError) as e:
        print(f"neurojax: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader left (`neurojax info brunel | head`): stop quietly, as other
        # command line tools do, instead of a traceback; send what Python still
        # flushes at exit to /dev/null (the Python docs' recipe for SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
