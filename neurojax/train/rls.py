r"""`force`: recursive-least-squares (FORCE) training of a rate network's recurrent
weights so that its units' rates follow target time courses, with only a chosen
fraction of the synapses plastic (Partial In-Network training, PINning; Rajan, Harvey &
Tank 2016).

```python
plastic = nj.train.Mask.presynaptic(jax.random.key(1), (n, n), 0.12)  # PINning, p = 12 %
result = nj.train.force(model, target, projection="X->X", plastic=plastic, dt=1.0,
                        trials=50, alpha=1.0, key=jax.random.key(2))
result.model          # the trained network; result.pvar: pVar of every training trial
```

At every `every`-th step of a run of the network (its own `step`, inputs included), the
error of the postsynaptic rates against the target, $e = r_{post}(t) - f(t)$, updates the
plastic weights by recursive least squares (Sussillo & Abbott 2009; Haykin 2002 ch. 9),
with the presynaptic rates $\rho = r_{pre}[C](t - \Delta t)$ that produced this step's
input as regressors:

$$k = P\rho, \qquad c = \frac{1}{1 + \rho^\top k}, \qquad P \leftarrow P - c\, k k^\top,
\qquad J_{RC} \leftarrow J_{RC} - c\, e_R\, k^\top,$$

$P(0) = I/\alpha$. The plastic synapses are the block $R \times C$ of `plastic`: the inputs
of rows $R$ from presynaptic columns $C$ (in Rajan et al. 2016 every row, and the outgoing
weights of a fraction $p$ of the units). Every row sees the same regressors, so one
$|C| \times |C|$ matrix $P$ serves all rows (the standard efficient form). $P$ carries over
from one trial to the next; each trial starts from the same initial state. All other
weights are never written, so they stay bit-identical.

On a linear problem (outputs $z = J\rho$) one pass of these updates gives exactly the
ridge-regression solution $J = (\alpha J_0 + Z\rho^\top)(\rho\rho^\top + \alpha I)^{-1}$;
on a rate network the error is that of the rates, as in the PINning and CURBD code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._misc import check_dt
from ..connectivity.weights import DenseWeights
from .constraints import Mask


@dataclasses.dataclass(frozen=True)
class ForceResult:
    """What `force` returns.

    - `model`: The network with the trained weights (only the plastic entries changed).
    - `pvar`: pVar of the rates against the target on each training trial (while the
      weights were learning), shape `(trials,)`; see `pvar`.
    - `rates`: Rates of the postsynaptic population on the last training trial, shape
      `(steps, n_post)`.
    """

    model: Any
    pvar: np.ndarray
    rates: np.ndarray


def pvar(rates: Float[ArrayLike, "..."], target: Float[ArrayLike, "..."]) -> Array:
    r"""Fraction of the target's variance that `rates` explain (Rajan et al. 2016):

    $$\mathrm{pVar} = 1 - \frac{\|r - f\|_F^2}{\|f - \bar f\|_F^2},$$

    $\bar f$ the mean of the target over units and time. 1 is a perfect match; 0 is no
    better than the target's mean; it can be negative.

    **Arguments:**

    - `rates`: Activity, shape `(steps, n)` (any leading shape equal to the target's).
    - `target`: Target activity, the same shape.
    """
    rates, target = jnp.asarray(rates), jnp.asarray(target)
    if rates.shape != target.shape:
        raise ValueError(
            f"pvar rates must have the target's shape {target.shape}, got {rates.shape}."
        )
    return 1.0 - jnp.sum((rates - target) ** 2) / jnp.sum((target - jnp.mean(target)) ** 2)


def _rls_update(P, w_block, rho, err):
    """One recursive-least-squares step: `P` (k, k), `w_block` (rows, k), regressors
    `rho` (k,), a-priori error `err` (rows,). Returns the new `P` and weight block."""
    k = P @ rho
    c = 1.0 / (1.0 + rho @ k)
    return P - c * jnp.outer(k, k), w_block - c * jnp.outer(err, k)


def _block(plastic, n_post: int, n_pre: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a rows x columns `plastic` mask (a `Mask` or a boolean array)."""
    mask = plastic.mask if isinstance(plastic, Mask) else plastic
    try:
        mask = np.asarray(mask)
    except Exception as error:  # a tracer: the block must be known when tracing
        raise ValueError(
            "force plastic must be a concrete boolean (n_post, n_pre) array or Mask, not a "
            "traced value."
        ) from error
    if mask.shape != (n_post, n_pre):
        raise ValueError(
            f"force plastic must have the weights' shape (n_post, n_pre) = ({n_post}, "
            f"{n_pre}), got {mask.shape}."
        )
    if mask.dtype != bool and not np.all((mask == 0) | (mask == 1)):
        raise ValueError("force plastic must be boolean (True where a weight trains).")
    mask = mask.astype(bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("force plastic selects no weight; set at least one entry.")
    block = np.zeros_like(mask)
    block[np.ix_(rows, cols)] = True
    if not np.array_equal(block, mask):
        raise ValueError(
            "force plastic must be a block of rows x columns (the inputs of some "
            "postsynaptic neurons from the same presynaptic neurons, so that one RLS matrix "
            "serves every row), e.g. nj.train.Mask.presynaptic(key, shape, p): the outgoing "
            "weights of a fraction p of the neurons (Rajan et al. 2016)."
        )
    return rows, cols


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"force {name} must be an integer in [1, inf), got {value!r}.")
    return int(value)


def force(
    model,
    target: Float[ArrayLike, "..."],
    *,
    projection: str,
    plastic,
    dt: float,
    key,
    trials: int = 1,
    alpha: float = 1.0,
    every: int = 1,
    state=None,
) -> ForceResult:
    r"""Train the plastic weights of a network's projection by recursive least squares
    (FORCE; Sussillo & Abbott 2009) so that the postsynaptic rates follow `target`;
    with a fraction of the weights plastic this is PINning (Rajan, Harvey & Tank 2016).
    See the module docstring for the update. Runs as one `jax.jit`-compiled `lax.scan`
    over trials and steps.

    **Arguments:**

    - `model`: A built network (`nj.Network.build`) whose projection `projection` has a
      dense `(n_post, n_pre)` weight matrix, no plasticity rule, and graded (rate)
      populations at both ends.
    - `target`: Target rates of the postsynaptic population, shape `(steps, n_post)`,
      one row per step of `dt`; a trial lasts `steps * dt` [ms].
    - `projection`: Name of the trained projection (e.g. `"X->X"`).
    - `plastic`: Which weights train: a `nj.train.Mask` or boolean `(n_post, n_pre)`
      array forming a block of rows x columns, e.g. `Mask.presynaptic(key, shape, p)`.
    - `dt`: Time step [ms].
    - `key`: PRNG key for the initial state (`model.init`) when `state` is not given.
    - `trials`: Number of training trials, an integer in [1, inf).
    - `alpha`: Regulariser [rate²] of RLS, $P(0) = I/\alpha$, in (0, inf): small alpha
      learns fast, large alpha slowly.
    - `every`: Update the weights every `every` steps, an integer in [1, inf).
    - `state`: Optional initial `NetworkState` of every trial (default
      `model.init(key, dt)`).

    **Returns:** a `ForceResult`.

    !!! example
        ```python
        plastic = nj.train.Mask.presynaptic(jax.random.key(1), (500, 500), 0.12)
        res = nj.train.force(model, target, projection="X->X", plastic=plastic,
                             dt=1.0, trials=40, key=jax.random.key(2))
        print(res.pvar[-1])
        ```
    """
    dt = check_dt(dt)
    trials = _positive_int(trials, "trials")
    every = _positive_int(every, "every")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not (
        0.0 < float(alpha) < np.inf
    ):
        raise ValueError(f"force alpha [rate²] must be a number in (0, inf), got {alpha!r}.")
    if not hasattr(model, "projection") or not hasattr(model, "step"):
        raise ValueError(
            f"force model must be a built network (nj.Network(...).build(key)), got "
            f"{type(model).__name__}."
        )
    j = model._projection_index(projection)
    proj = model.projections[j]
    pre, post = model.populations[proj.pre], model.populations[proj.post]
    if not isinstance(proj.weights, DenseWeights) or proj.weights.counts is not None:
        raise ValueError(
            f"force projection {projection!r} must have a dense (n_post, n_pre) weight "
            "matrix: build it with layout=nj.connectivity.Dense() and per-synapse weights "
            "(e.g. connectivity FromMatrix)."
        )
    if proj.plasticity is not None or proj.n_comp is not None:
        raise ValueError(
            f"force projection {projection!r} must have no plasticity rule and no "
            "per-synapse compartments."
        )
    for pop in (pre, post):
        if pop.neuron.spiking:
            raise ValueError(
                f"force needs rate populations; population {pop.name!r} spikes."
            )
    target = jnp.asarray(target, float)
    if target.ndim != 2 or target.shape[1] != post.n or target.shape[0] < 1:
        raise ValueError(
            f"force target must have shape (steps, n_post) = (steps, {post.n}) for "
            f"population {post.name!r}, got {target.shape}."
        )
    if not bool(jnp.all(jnp.isfinite(target))):
        raise ValueError("force target must be finite (no NaN or inf).")
    rows, cols = _block(plastic, post.n, pre.n)
    model.check(dt)
    if state is None:
        state = model.init(key, dt)
    model, p, rates = _train(model, state, target, jnp.asarray(rows), jnp.asarray(cols),
                             jnp.asarray(float(alpha)), j, every, trials, dt)
    return ForceResult(model=model, pvar=np.asarray(p), rates=np.asarray(rates))


@eqx.filter_jit
def _train(model, state0, target, rows, cols, alpha, j, every, trials, dt):
    proj = model.projections[j]
    get_w = lambda m: m.projections[j].weights.weights  # noqa: E731
    n_pre = model.populations[proj.pre].n
    n_cols = cols.shape[0]
    steps = target.shape[0]
    ix = jnp.ix_(rows, cols)
    var = jnp.sum((target - jnp.mean(target)) ** 2)

    def step(carry, x):
        st, w, P, rho_prev, sse = carry
        f, i = x
        st, outs = eqx.tree_at(get_w, model, w).step(st, st.step * dt, dt)
        r_post, r_pre = outs[proj.post], outs[proj.pre]
        err = r_post - f

        def learn(args):
            P, w = args
            P, block = _rls_update(P, w[ix], rho_prev[cols], err[rows])
            return P, w.at[ix].set(block)

        P, w = jax.lax.cond(i % every == 0, learn, lambda args: args, (P, w))
        return (st, w, P, r_pre, sse + jnp.sum(err**2)), r_post

    def trial(carry, _):
        w, P, _ = carry
        init = (state0, w, P, jnp.zeros(n_pre, float), jnp.zeros((), float))
        (_, w, P, _, sse), rates = jax.lax.scan(step, init, (target, jnp.arange(steps)))
        return (w, P, rates), 1.0 - sse / var  # only the last trial's rates are kept

    P0 = jnp.eye(n_cols) / alpha
    (w, _, rates), p = jax.lax.scan(trial, (get_w(model), P0, jnp.zeros_like(target)), None,
                                    length=trials)
    return eqx.tree_at(get_w, model, w), p, rates
