r"""`check_grad`: a model's gradient against central finite differences.

Surrogate gradients are not the derivative of the (piecewise constant) spiking forward
pass, so the question a user has before fitting is not "is the gradient exact" but
"does it point the way the loss actually moves, and by how much does it over- or
under-state the slope". `check_grad` answers it per parameter:

```python
report = nj.check_grad(loss, model, where=lambda m: (m.inputs[0].weight,),
                       keys=jax.random.split(jax.random.key(0), 16))
print(report)             # one row per parameter: gradient, finite difference, ratio, sign
assert report.signs_agree
```

For each checked leaf $p$ the gradient $g$ is projected on a direction $d$ (1 for a
scalar; a fixed random $\pm1$ pattern for an array) and compared with the central
difference $[L(p + h d) - L(p - h d)] / 2h$. For a stochastic model `loss(params, key)`
is averaged over `keys`, with the same keys at $p \pm h d$ (common random numbers), so
the finite difference measures the slope of the seed-averaged loss and its standard
error across keys says whether a sign disagreement is meaningful.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..simulate import allow_nonfinite_gradients


@dataclasses.dataclass(frozen=True)
class GradCheckRow:
    """One checked parameter (a leaf of `params`).

    - `name`: Its path in `params` (`jax.tree_util.keystr`).
    - `size`: Number of elements.
    - `step`: Finite-difference step $h$ (in the parameter's own unit).
    - `gradient`: Directional derivative $g \\cdot d$ from `jax.grad`.
    - `finite_difference`: Central difference of the (seed-averaged) loss.
    - `fd_stderr`: Standard error of the finite difference across keys (0 without keys).
    """

    name: str
    size: int
    step: float
    gradient: float
    finite_difference: float
    fd_stderr: float

    @property
    def ratio(self) -> float:
        """gradient / finite difference (inf where the difference is 0)."""
        if self.finite_difference == 0.0:
            return math.inf if self.gradient != 0.0 else 1.0
        return self.gradient / self.finite_difference

    @property
    def sign_agrees(self) -> bool:
        """Whether gradient and finite difference have the same sign (0 matches 0)."""
        return bool(np.sign(self.gradient) == np.sign(self.finite_difference))


@dataclasses.dataclass(frozen=True)
class GradCheck:
    """The result of `check_grad`: one `GradCheckRow` per checked leaf, and the loss."""

    rows: tuple[GradCheckRow, ...]
    loss: float

    @property
    def signs_agree(self) -> bool:
        """Every checked parameter's gradient has the sign of its finite difference."""
        return all(r.sign_agrees for r in self.rows)

    def ratios(self) -> dict[str, float]:
        """gradient / finite difference per parameter name."""
        return {r.name: r.ratio for r in self.rows}

    def table(self) -> str:
        """The rows as a fixed-width text table."""
        head = (f"{'parameter':<40} {'size':>6} {'step':>9} {'gradient':>12} "
                f"{'finite diff':>12} {'+-':>9} {'ratio':>8} sign")
        lines = [head]
        for r in self.rows:
            lines.append(
                f"{r.name[-40:]:<40} {r.size:>6} {r.step:>9.2g} {r.gradient:>12.5g} "
                f"{r.finite_difference:>12.5g} {r.fd_stderr:>9.2g} {r.ratio:>8.3g} "
                f"{'ok' if r.sign_agrees else 'WRONG'}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"loss {self.loss:.6g}\n{self.table()}"


def _selection(params: Any, where: Callable[[Any], Any] | None) -> Any:
    """Boolean filter spec: True on the inexact array leaves to check."""
    inexact = jax.tree.map(eqx.is_inexact_array, params)
    if where is None:
        return inexact
    spec = jax.tree.map(lambda _: False, params)
    try:
        spec = eqx.tree_at(where, spec, replace_fn=lambda node: jax.tree.map(lambda _: True, node))
    except Exception as err:  # noqa: BLE001 - re-raised with the parameter's name
        raise ValueError(f"check_grad where= must select leaves of params: {err}") from err
    return jax.tree.map(lambda a, b: a and b, spec, inexact)


def check_grad(
    loss: Callable[..., Any],
    params: Any,
    *,
    where: Callable[[Any], Any] | None = None,
    keys: Sequence[Any] | jax.Array | None = None,
    step: float = 2e-2,
    relative: bool = True,
    seed: int = 0,
) -> GradCheck:
    """Compare `jax.grad(loss)` with central finite differences, per parameter.

    **Arguments:**

    - `loss`: `loss(params) -> scalar`, or `loss(params, key) -> scalar` when `keys`
      is given (e.g. a rate from `nj.simulate(params, ..., key=key)`).
    - `params`: A pytree (a built model, a dict of arrays...). Its inexact array
      leaves are the candidates; integer and static leaves are never perturbed.
    - `where`: Optional `where(params) -> leaf or tuple of leaves/subtrees` (as in
      `eqx.tree_at`) selecting what to check; default every inexact leaf.
    - `keys`: PRNG keys to average a stochastic loss over (a batch of keys, e.g.
      `jax.random.split(key, 16)`); the same keys are used at every perturbation.
    - `step`: Finite-difference step $h$; relative to the leaf's root-mean-square value
      when `relative` (falling back to absolute for a leaf that is 0), else absolute.
      Dimensionless if relative, else in the parameter's unit; in (0, inf). The default,
      2 %, suits spiking models, whose rates move by whole spikes: at much smaller steps
      the difference measures which few spikes moved, not the slope (COBA-4k's E->E
      weight: 107 Hz/nS at 0.1 %, 7.5 at 2 %). For smooth models 1e-3 is more accurate
      (truncation error O(h^2)).
    - `seed`: Seed of the random ±1 direction used for array leaves.

    **Returns:** a `GradCheck` (`print(report)` gives the table; `report.ratios()`,
    `report.signs_agree`).

    The finite difference is of the same loss the gradient is of, so a ratio far from
    1 with agreeing signs is the surrogate's bias (expected for spiking models; see the
    README's gradient recipe), and a sign disagreement larger than `fd_stderr` means
    the gradient points the wrong way at this operating point.
    """
    if not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
        raise ValueError(f"check_grad step [relative, or the parameter's unit] must lie in (0, inf), got {step!r}.")
    spec = _selection(params, where)
    diff, static = eqx.partition(params, spec)
    named = jax.tree_util.tree_flatten_with_path(diff)[0]
    if not named:
        raise ValueError(
            "check_grad found no inexact array leaf to check in params"
            + (" under where=" if where is not None else "")
            + "; integer and static fields cannot be differentiated."
        )

    if keys is None:
        def per_key(d):
            return jnp.reshape(loss(eqx.combine(d, static)), ())[None]
    else:
        if not isinstance(keys, jax.Array):
            keys = jnp.stack(list(keys))
        if keys.ndim < 1 or keys.shape[0] < 1:
            raise ValueError(
                f"check_grad keys must be a non-empty batch of PRNG keys "
                f"(e.g. jax.random.split(key, 16)), got shape {keys.shape}."
            )

        def per_key(d):
            return jax.vmap(lambda k: jnp.reshape(loss(eqx.combine(d, static), k), ()))(keys)

    losses = eqx.filter_jit(per_key)
    # A non-finite gradient is a result to report here (a NaN row), not an error.
    with allow_nonfinite_gradients():
        value, grads = eqx.filter_jit(eqx.filter_value_and_grad(lambda d: jnp.mean(per_key(d))))(diff)
    flat_grads = jax.tree_util.tree_leaves(grads)

    rng = np.random.default_rng(seed)
    leaves, treedef = jax.tree_util.tree_flatten(diff)
    rows = []
    for i, ((path, x), g) in enumerate(zip(named, flat_grads)):
        x = jnp.asarray(x)
        direction = (np.ones(x.shape) if x.size == 1
                     else rng.choice([-1.0, 1.0], size=x.shape)).astype(x.dtype)
        scale = float(jnp.sqrt(jnp.mean(jnp.square(x)))) if relative else 1.0
        h = step * (scale if scale > 0 else 1.0)

        def shifted(sign, i=i, x=x, direction=direction, h=h):
            moved = list(leaves)
            moved[i] = x + sign * h * direction
            return jax.tree_util.tree_unflatten(treedef, moved)

        up = np.asarray(losses(shifted(+1.0)), dtype=float)
        down = np.asarray(losses(shifted(-1.0)), dtype=float)
        per = (up - down) / (2.0 * h)
        se = float(per.std(ddof=1) / math.sqrt(per.size)) if per.size > 1 else 0.0
        rows.append(GradCheckRow(
            name=jax.tree_util.keystr(path) or "params", size=int(x.size), step=h,
            gradient=float(jnp.sum(g * direction)), finite_difference=float(per.mean()),
            fd_stderr=se,
        ))
    return GradCheck(rows=tuple(rows), loss=float(value))
