"""Cost of the backward-pass NaN/overflow checks of ``nj.simulate`` (issue 16): the
gradient of COBA's mean E and I rate w.r.t. every float leaf, compiled with the checks
(the default: each parameter's gradient is checked, and each step's state gradient is
watched so that an overflow names its step and population) and without them (inside
``nj.allow_nonfinite_gradients()``), timed alternately in one process.

    python benchmarks/gradient_checks.py [--n N] [--duration MS] [--repeats R]

The run must be short enough for the gradient of this chaotic network to stay finite
in float32 (it overflows after ~100 ms; see bptt.py), else the checked variant raises.
Prints both medians, their ratio, and whether the two gradients are identical (they
must be: the checks are identities).
"""

from __future__ import annotations

import argparse
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=4000, help="number of neurons")
    p.add_argument("--duration", type=float, default=50.0, help="simulated time [ms]")
    p.add_argument("--dt", type=float, default=0.1, help="time step [ms]")
    p.add_argument("--repeats", type=int, default=9, help="timed runs of each variant")
    args = p.parse_args(argv)

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import neurojax as nj

    model = nj.gallery.get("coba", n=args.n).build(jax.random.key(0))
    state = model.init(jax.random.key(1), args.dt)
    record = nj.Record(rates=list(model.names))

    def loss(m):
        res = nj.simulate(m, args.duration, args.dt, state=state, record=record)
        return sum(jnp.mean(r) for r in res.rates.values()) / len(res.rates)

    checked = eqx.filter_jit(eqx.filter_value_and_grad(loss)).lower(model).compile()
    with nj.allow_nonfinite_gradients():  # acts when traced: compile inside
        unchecked = eqx.filter_jit(eqx.filter_value_and_grad(lambda m: loss(m))).lower(model).compile()
    times, grads = {"checked": [], "unchecked": []}, {}
    for _ in range(args.repeats):  # alternate, so machine load hits both alike
        for name, fn in (("checked", checked), ("unchecked", unchecked)):
            t0 = time.perf_counter()
            out = jax.block_until_ready(fn(model))
            times[name].append(time.perf_counter() - t0)
            grads[name] = [np.asarray(x) for x in
                           jax.tree.leaves(eqx.filter(out[1], eqx.is_inexact_array))]
    same = all(np.array_equal(a, b) for a, b in zip(grads["checked"], grads["unchecked"]))
    c, u = float(np.median(times["checked"])), float(np.median(times["unchecked"]))
    print(f"COBA-{args.n}, {args.duration:g} ms at dt = {args.dt:g} ms, fwd+bwd "
          f"(median of {args.repeats}): with checks {c * 1e3:.1f} ms, without "
          f"{u * 1e3:.1f} ms, ratio {c / u:.3f}; gradients identical: {same}")
    if not same:
        raise SystemExit("gradient_checks: the checks changed the gradient.")


if __name__ == "__main__":
    main()
