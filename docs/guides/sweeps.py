"""Running sweeps: one compiled call over a grid of parameters, seeds or both.

The code of docs/guides/sweeps.md, run as it stands by tests/test_guides.py
(`python docs/guides/sweeps.py`).
"""

# --8<-- [start:model]
import jax
import jax.numpy as jnp
import numpy as np

import neurojax as nj

# Brunel's network (regime C) at a small size (1200 E, 300 I; in-degrees as published), built once: its connectivity is drawn
# here, and every grid point below shares it.
model = nj.gallery.get("brunel", n_e=1200).build(jax.random.key(0))
print(list(model.params()))   # the names to sweep over: "E.v_th", "E->{E,I}.weight", ...


def rate(g, seed, truncate=None):
    """E's rate [Hz] after 50 ms, with relative inhibition `g` and the run's random seed
    (`truncate` [ms]: backpropagation through time truncated to that window)."""
    w_e = model.params()["E->{E,I}.weight"]          # one weight [pA ms] onto E and I
    m = model.replace({"I->*.weight": -g * w_e})     # by name; glob patterns allowed
    # The population rate recorded in 10 ms blocks: cheap, and differentiable (a
    # boolean raster carries no gradient, so `res.rate` of it has none).
    res = nj.simulate(m, 200.0, 0.1, key=jax.random.key(seed), truncate=truncate,
                      record=nj.Record(spikes=(), rates=["E"], every=10.0))
    return res.rates["E"][5:].mean()
# --8<-- [end:model]


# --8<-- [start:grid]
def grid():
    """The outer product of the axes: one leading axis per axis, in keyword order."""
    gs = jnp.array([3.0, 4.0, 5.0, 6.0])
    return gs, nj.sweep(rate, g=gs, seed=jnp.arange(3))        # shape (4, 3)


def paired():
    """`zip=True` pairs the axes element by element (equal lengths)."""
    return nj.sweep(rate, g=jnp.array([4.0, 5.0]), seed=jnp.array([7, 8]), zip=True)  # (2,)


def in_batches():
    """`batch_size` bounds memory: at most that many points at once, one compilation."""
    return nj.sweep(rate, g=jnp.linspace(3.0, 6.0, 8), seed=jnp.array([0]), batch_size=4)
# --8<-- [end:grid]


# --8<-- [start:reuse]
# `nj.sweep` traces `fn` afresh, so each call compiles. Under `jax.jit` the axes are
# arguments: a second grid of the same shape runs without compiling again.
sweep_g = jax.jit(lambda gs: nj.sweep(rate, g=gs, seed=jnp.array([0])))
# --8<-- [end:reuse]


# --8<-- [start:grad]
def sensitivity(g):
    """d rate / d g [Hz] at every point of a grid: `jax.grad` inside `fn`, vmapped by the
    sweep, averaged over seeds. The gradient flows through the spikes by surrogate
    gradients; in this strongly recurrent network it grows without bound over a long
    history, so backpropagation is truncated to 5 ms (a few synaptic delays of 1.5 ms:
    shorter than one delay, no path from the inhibitory weight to E's spikes is left
    and the gradient is exactly zero)."""
    def slope(g, seed):
        return jax.grad(rate)(g, seed, truncate=5.0)
    return nj.sweep(slope, g=g, seed=jnp.arange(4)).mean(axis=1)


def finite_difference(g, h=0.2):
    """The central difference of the seed-averaged rate, to compare with."""
    up = nj.sweep(rate, g=g + h, seed=jnp.arange(4)).mean(axis=1)
    down = nj.sweep(rate, g=g - h, seed=jnp.arange(4)).mean(axis=1)
    return (up - down) / (2 * h)
# --8<-- [end:grad]


def loop(gs, seeds):
    """The same grid as a Python loop (to compare with the sweep)."""
    return np.array([[float(rate(g, s)) for s in seeds] for g in gs])


if __name__ == "__main__":
    gs, rates = grid()
    for g, r in zip(np.asarray(gs), np.asarray(rates)):
        print(f"g = {g:.0f}: E rate {r.mean():6.2f} Hz (seeds: {np.round(r, 2)})")
    print("paired:", np.asarray(paired()))
    print("in batches of 4:", np.asarray(in_batches()).ravel())
    print("jitted sweep twice:", np.asarray(sweep_g(jnp.array([4.0, 5.0]))).ravel(),
          np.asarray(sweep_g(jnp.array([4.5, 5.5]))).ravel())
    print("d rate / d g [Hz], truncated BPTT:", np.asarray(sensitivity(jnp.array([5.0, 6.0]))),
          "finite difference:", np.asarray(finite_difference(jnp.array([5.0, 6.0]))))
