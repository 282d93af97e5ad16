r"""Costs besides the task: energy (rates, spike counts), weight L1 / L2, wiring length,
and noise injection for robustness. Each is a plain differentiable function, to be added
to any loss with a weight of the user's choice:

```python
def loss(model, trial, key):
    res = nj.simulate(model, 500.0, 1.0, key=key, record=nj.Record(spikes=(), rates=["R"]))
    return (task_loss(res, trial)
            + 1e-4 * nj.train.rate_cost(res)                     # [Hz]^2 -> energy
            + 1e-3 * nj.train.weight_l2(model, "R->R")
            + 1e-3 * nj.train.wiring_cost(model.projection("R->R").weights.matrix(), xy))
```
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..connectivity.weights import DenseWeights


def _populations(res, names, available: dict, what: str) -> list[str]:
    if names is None:
        chosen = sorted(available)
    else:
        chosen = [names] if isinstance(names, str) else list(names)
        missing = [p for p in chosen if p not in available]
        if missing:
            raise ValueError(f"{what} of {missing} were not recorded; recorded: {sorted(available)}.")
    if not chosen:
        raise ValueError(f"no {what} were recorded (nj.Record({what}=[...])).")
    return chosen


def rate_cost(x: Any, populations: str | Sequence[str] | None = None, *, power: float | int = 2.0):
    r"""Energy cost of firing: the mean of $r^p$ over time (and neurons, or populations).

    **Arguments:**

    - `x`: An `nj.Result` of a spiking network (its recorded population `rates` [Hz]
      are used) or an array of rates of any shape: for rate units, their outputs
      recorded with `nj.Record(spikes=[...], float_spikes=True)`, `(steps, n)`.
    - `populations`: With a `Result`, the populations to include (default: every
      recorded one); their costs are averaged.
    - `power`: $p$; 2 (default) penalises high rates most, 1 is the mean rate [Hz].

    Returns a scalar in [Hz]$^p$.
    """
    from ..simulate import Result

    if isinstance(x, Result):
        pops = _populations(x, populations, x.rates, "rates")
        return jnp.mean(jnp.stack([jnp.mean(x.rates[p] ** power) for p in pops]))
    return jnp.mean(jnp.asarray(x) ** power)


def spike_count_cost(x: Any, populations: str | Sequence[str] | None = None):
    r"""Energy cost of spiking: the mean number of spikes per neuron over the run.

    **Arguments:**

    - `x`: An `nj.Result` (its recorded `spikes`; record them with
      `nj.Record(float_spikes=True)` for surrogate gradients) or an array of shape
      `(steps, n)` of 0/1 spikes.
    - `populations`: With a `Result`, the populations to include (default: every
      recorded one); their counts are averaged over all their neurons.

    Returns a scalar [spikes per neuron]; divide by the duration for a rate.
    """
    from ..simulate import Result

    if isinstance(x, Result):
        pops = _populations(x, populations, x.spikes, "spikes")
        counts = [jnp.sum(jnp.asarray(x.spikes[p], float), axis=-2) for p in pops]
        return jnp.mean(jnp.concatenate([c.reshape(-1) for c in counts]))
    x = jnp.asarray(x, float)
    if x.ndim < 2:
        raise ValueError(f"spike_count_cost needs spikes of shape (steps, n), got shape {x.shape}.")
    return jnp.mean(jnp.sum(x, axis=-2))


def _synaptic_weights(model: Any, projections: str | Sequence[str]) -> list[tuple[Array, Any]]:
    """`(weights, multiplicity)` per selected projection (or per array given): a shared
    scalar weight stands for `multiplicity` synapses (1 otherwise)."""
    from ..connectivity.weights import ConstrainedWeights, SparseWeights
    from ..network import NetworkModel

    if not isinstance(model, NetworkModel):
        return [(jnp.asarray(w), 1.0) for w in jax.tree.leaves(model)]
    patterns = [projections] if isinstance(projections, str) else list(projections)
    chosen = [p for p in model.projections
              if any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns)]
    if not chosen:
        raise ValueError(
            f"no projection matches {patterns}; the network has {[p.name for p in model.projections]}."
        )
    out = []
    for p in chosen:
        c = p.weights
        if isinstance(c, DenseWeights) and c.counts is not None:
            out.append((c.weights, c.counts.astype(float)))
        elif isinstance(c, SparseWeights) and jnp.ndim(c.weights) == 0:
            out.append((c.weights, jnp.sum(c.targets < c.n_post).astype(float)))
        elif isinstance(c, ConstrainedWeights) and isinstance(c.base, SparseWeights):
            out.append((c.matrix(), 1.0))  # its padding entries need not be 0
        else:
            out.append((c.weights, 1.0))  # a matrix, or per-synapse values (padding 0)
    return out


def weight_l1(model: Any, projections: str | Sequence[str] = "*"):
    r"""$\sum |w|$ over the synapses of the chosen projections.

    **Arguments:**

    - `model`: A `NetworkModel`, or an array / pytree of weight arrays.
    - `projections`: With a network, projection names or glob patterns (default all).

    Returns a scalar in the weights' units (a shared scalar weight counts once per
    synapse it stands for).
    """
    return sum(jnp.sum(jnp.abs(w) * c) for w, c in _synaptic_weights(model, projections))


def weight_l2(model: Any, projections: str | Sequence[str] = "*"):
    r"""$\sum w^2$ over the synapses of the chosen projections (arguments as in
    `weight_l1`), in the weights' units squared."""
    return sum(jnp.sum(w**2 * c) for w, c in _synaptic_weights(model, projections))


def wiring_cost(
    weights: Float[Array, "post pre"],
    positions: Float[Array, "pre dims"],
    post_positions: Float[Array, "post dims"] | None = None,
):
    r"""Wiring length: $\sum_{ij} |W_{ij}| \, \lVert x^{post}_i - x^{pre}_j \rVert$.

    Long connections cost more than short ones of the same strength (Achterberg et al.
    2023's spatially embedded RNNs; Fig. 3E of the issue).

    **Arguments:**

    - `weights`: `(n_post, n_pre)` weight matrix (e.g. `projection.weights.matrix()`).
    - `positions`: `(n_pre, dims)` positions of the presynaptic neurons (any length
      unit, e.g. [um]).
    - `post_positions`: `(n_post, dims)` positions of the postsynaptic neurons; `None`
      (default): the same as `positions` (a recurrent projection).

    Returns a scalar in [weight units x length units]. Differentiable in the weights
    and the positions (the distance's gradient is taken as 0 where two positions
    coincide).
    """
    w = jnp.asarray(weights)
    pre = jnp.asarray(positions, float)
    post = pre if post_positions is None else jnp.asarray(post_positions, float)
    if w.ndim != 2 or pre.ndim != 2 or post.ndim != 2 or w.shape != (post.shape[0], pre.shape[0]) \
            or pre.shape[1] != post.shape[1]:
        raise ValueError(
            "wiring_cost needs weights (n_post, n_pre), positions (n_pre, dims) and "
            f"post_positions (n_post, dims); got {w.shape}, {pre.shape}, {post.shape}."
        )
    d2 = jnp.sum((post[:, None, :] - pre[None, :, :]) ** 2, axis=-1)
    safe = d2 > 0
    dist = jnp.where(safe, jnp.sqrt(jnp.where(safe, d2, 1.0)), 0.0)
    return jnp.sum(jnp.abs(w) * dist)


def add_noise(tree: Any, std: Any, key: PRNGKeyArray):
    r"""`tree` with independent Gaussian noise of standard deviation `std` added to every
    float array leaf, for training that is robust to noise: on the inputs of a trial
    (`add_noise(inputs, 0.1, key)`), or on the parameters (`add_noise(model, 0.01,
    key)` perturbs every weight and time constant; pass `eqx.partition`'s trainable part
    to perturb only those).

    **Arguments:**

    - `tree`: An array or any pytree; integer leaves and non-arrays are left alone.
    - `std`: Noise standard deviation in the leaves' units, >= 0 (a scalar, or a pytree
      of scalars matching `tree`).
    - `key`: PRNG key.

    Differentiable in `tree` (the noise is a constant shift).
    """
    import equinox as eqx

    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, max(1, len(leaves)))
    stds = jax.tree.leaves(std) if not isinstance(std, (int, float)) else [std] * len(leaves)
    if len(stds) != len(leaves):
        stds = [std] * len(leaves)
    out = []
    for leaf, k, s in zip(leaves, keys, stds):
        if eqx.is_inexact_array(leaf):
            leaf = leaf + s * jax.random.normal(k, jnp.shape(leaf), leaf.dtype)
        out.append(leaf)
    return jax.tree.unflatten(treedef, out)
