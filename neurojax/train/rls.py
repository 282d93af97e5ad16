r"""`force`: recursive-least-squares (FORCE) training of a network's projection onto rate
units (a rate network's recurrent weights, or a spiking population's readout) so that
the units' rates follow target time courses, with only a chosen set of the synapses
plastic (Partial In-Network training, PINning; Rajan, Harvey & Tank 2016).

```python
plastic = nj.train.Mask.presynaptic(jax.random.key(1), (n, n), 0.12)  # PINning, p = 12 %
result = nj.train.force(model, target, projection="X->X", plastic=plastic, dt=1.0,
                        trials=50, alpha=1.0, key=jax.random.key(2))
result.model          # the trained network; result.pvar: pVar of every training trial
```

At every `every`-th step of a run of the network (its own `step`, inputs included), the
error of the postsynaptic rates against the target, $e = r_{post}(t) - f(t)$, updates the
plastic weights by recursive least squares (Sussillo & Abbott 2009; Haykin 2002 ch. 9).
The regressors $\rho_j$ are what presynaptic neuron $j$ contributes to this step's
synaptic drive $s_i = \sum_j J_{ij}\rho_j$: its output sent the projection's delay ago,
filtered by the projection's (linear) kinetics, with the gain the network gives graded
arrivals. For rates through the default `Delta` synapses and delay, that is
$\rho = r_{pre}(t - \Delta t)$; for a spiking presynaptic population through
`Exponential` synapses, the synaptically filtered spike trains, as in FORCE training of
spiking networks (Nicola & Clopath 2017, who train the decoders of a readout of these
traces; here the readout is a rate population). With $C$ the plastic columns:

$$k = P\rho, \qquad c = \frac{1}{1 + \rho^\top k}, \qquad P \leftarrow P - c\, k k^\top,
\qquad J_{RC} \leftarrow J_{RC} - c\, e_R\, k^\top,$$

$P(0) = I/\alpha$. Which synapses train is any boolean mask `plastic`; row $i$'s plastic
inputs are its columns $C_i$, and every other weight is never written, so it stays
bit-identical. $P$ carries over from one trial to the next; each trial starts from the
same initial state.

- **A block** $R \times C$ (every plastic row has the same plastic inputs, e.g.
  `Mask.presynaptic`: the outgoing weights of a fraction $p$ of the units, as in Rajan
  et al. 2016): every row sees the same regressors, so one $|C| \times |C|$ matrix $P$
  serves all rows (the standard efficient form; $O(|C|^2)$ memory,
  $O(|C|^2 + |R||C|)$ work per update).
- **Any other mask** (a random fraction of the synapses, `Mask.fraction`; a connectome
  whose existing synapses train): row $i$ has its own regressors $\rho_i = r_{pre}[C_i]$
  and its own $P_i$ (per-neuron RLS: the shared $P$ assumes shared regressors), updated
  by the same equations with $e_i$ alone. The $P_i$ are padded to $k = \max_i |C_i|$
  (a padded slot has regressor 0, which leaves the result unchanged) and updated
  together by `jax.vmap`, so training stays one compiled scan. Memory:
  $n_R k^2$ floats for the $n_R$ rows with a plastic input (`force` refuses more than
  `max_p_bytes`); work $O(n_R k^2)$ per update. On a block the two forms are the same
  arithmetic, and tests/train/test_rls.py checks that they give the same weights.

On a linear problem (outputs $z = J\rho$) one pass of these updates gives exactly the
ridge-regression solution $J = (\alpha J_0 + Z\rho^\top)(\rho\rho^\top + \alpha I)^{-1}$,
and with a per-row mask each row's own ridge solution on its own regressors (its fixed
weights' contribution moved to the target side):
$J_{iC_i} = (\alpha J^0_{iC_i} + y_i \rho_{C_i}^\top)(\rho_{C_i}\rho_{C_i}^\top + \alpha I)^{-1}$,
$y_i = z_i - J^0_{i\bar C_i}\rho_{\bar C_i}$. On a network the error is that of the
rates, as in the PINning and CURBD code, so it lags an update by the units' time
constant; with `Exponential`, `Alpha` or `DualExponential` kinetics the network filters
the weighted *sum* of arrivals (kinetics module), so an update also reaches the drive
only over the synaptic time course. RLS then overshoots at small `alpha`; a larger one
(slower learning, e.g. 30 for 5 ms synapses onto 5 ms readout units) converges
(tests/train/test_rls.py).
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
from ..connectivity.weights import DenseWeights, read_slot, set_slot
from ..synapses.receptors import Current
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


def _plastic_mask(plastic, n_post: int, n_pre: int) -> np.ndarray:
    """`plastic` (a `Mask` or a boolean array) as a concrete boolean `(n_post, n_pre)` array."""
    mask = plastic.mask if isinstance(plastic, Mask) else plastic
    try:
        mask = np.asarray(mask)
    except Exception as error:  # a tracer: which weights train must be known when tracing
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
    if not mask.any():
        raise ValueError("force plastic selects no weight; set at least one entry.")
    return mask


def _block(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows and columns of `mask` if it is exactly the block rows x columns (every
    plastic row has the same plastic inputs), else None."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if mask[np.ix_(rows, cols)].all():  # then nothing outside rows x cols is set either
        return rows, cols
    return None


def _per_row(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a plastic input and, for each, its plastic columns padded to
    `k = max_i |C_i|` with the out-of-range index `n_pre` (shape `(rows, k)`): a padded
    slot reads a regressor of 0 and is never written back."""
    n_pre = mask.shape[1]
    rows = np.flatnonzero(mask.any(axis=1))
    k = int(mask[rows].sum(axis=1).max())
    index = np.full((rows.size, k), n_pre, dtype=np.int32)
    for slot, i in enumerate(rows):
        cols = np.flatnonzero(mask[i])
        index[slot, : cols.size] = cols
    return rows, index


# Default bound on the per-row RLS matrices (`force`'s `max_p_bytes`): 2 GiB, which a
# laptop holds twice over (the scan may keep an old and a new copy of its carry).
MAX_P_BYTES = 2**31


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
    max_p_bytes: int | float = MAX_P_BYTES,
) -> ForceResult:
    r"""Train the plastic weights of a network's projection by recursive least squares
    (FORCE; Sussillo & Abbott 2009) so that the postsynaptic rates follow `target`;
    with a fraction of the weights plastic this is PINning (Rajan, Harvey & Tank 2016).
    See the module docstring for the update, the shared-P (block mask) and per-row
    (any mask) forms, and their memory. Runs as one `jax.jit`-compiled `lax.scan` over
    trials and steps.

    **Arguments:**

    - `model`: A built network (`nj.Network.build`) whose projection `projection` has a
      dense `(n_post, n_pre)` weight matrix (so one delay for all synapses), a `Current` receptor,
      linear kinetics with scalar parameters (`Delta`, `Exponential`, `Alpha`,
      `DualExponential`), no plasticity rule, and ends on a graded (rate) population;
      the presynaptic population may be graded or spiking (spiking FORCE: its filtered
      spike trains are the regressors).
    - `target`: Target rates of the postsynaptic population, shape `(steps, n_post)`,
      one row per step of `dt`; a trial lasts `steps * dt` [ms].
    - `projection`: Name of the trained projection (e.g. `"X->X"`).
    - `plastic`: Which weights train: a `nj.train.Mask` or boolean `(n_post, n_pre)`
      array of any pattern. A block of rows x columns (e.g.
      `Mask.presynaptic(key, shape, p)`) trains with one shared RLS matrix; any other
      mask (e.g. `Mask.fraction(key, shape, p)`, or a connectome's existing synapses)
      with one matrix per postsynaptic row over its own plastic inputs, $n_R k^2$ floats
      for $n_R$ plastic rows and $k$ the most plastic inputs of one row.
    - `dt`: Time step [ms].
    - `key`: PRNG key for the initial state (`model.init`) when `state` is not given.
    - `trials`: Number of training trials, an integer in [1, inf).
    - `alpha`: Regulariser of RLS in the regressors' units squared ([rate²] for a rate
      presynaptic population; filtered spike counts squared for a spiking one),
      $P(0) = I/\alpha$, in (0, inf): small alpha learns fast, large alpha slowly.
    - `every`: Update the weights every `every` steps, an integer in [1, inf).
    - `state`: Optional initial `NetworkState` of every trial (default
      `model.init(key, dt)`).
    - `max_p_bytes`: Largest memory [bytes] the per-row RLS matrices may take, in
      (0, inf] (default 2 GiB); a non-block `plastic` that needs more raises a
      `ValueError`. E.g. 1000 rows with k = 500 plastic inputs each need
      1000 * 500^2 * 8 bytes = 2 GB in float64.

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
    if proj.plasticity is not None or proj.n_comp is not None or proj.compartments is not None:
        raise ValueError(
            f"force projection {projection!r} must have no plasticity rule and no "
            "compartments."
        )
    if post.neuron.spiking:
        raise ValueError(
            f"force compares the postsynaptic rates with the target, so projection "
            f"{projection!r} must end on a rate population; {post.name!r} spikes. For "
            "spiking FORCE (Nicola & Clopath 2017) train the projection from the spiking "
            "population onto a rate readout population."
        )
    if not isinstance(proj.receptor, Current):
        raise ValueError(
            f"force projection {projection!r} must have a Current receptor (its drive is "
            f"then linear in the weights), got {type(proj.receptor).__name__}."
        )
    if proj.synapse.presynaptic or any(
        jnp.ndim(leaf) != 0 for leaf in jax.tree_util.tree_leaves(eqx.filter(proj.synapse,
                                                                             eqx.is_array))
    ):
        raise ValueError(
            f"force projection {projection!r} needs linear synapse kinetics with one time "
            "course for every synapse (Delta, or Exponential, Alpha, DualExponential with "
            f"scalar time constants), got {proj.synapse!r}: the regressors are each "
            "presynaptic neuron's activity filtered by them."
        )
    target = jnp.asarray(target, float)
    if target.ndim != 2 or target.shape[1] != post.n or target.shape[0] < 1:
        raise ValueError(
            f"force target must have shape (steps, n_post) = (steps, {post.n}) for "
            f"population {post.name!r}, got {target.shape}."
        )
    if not bool(jnp.all(jnp.isfinite(target))):
        raise ValueError("force target must be finite (no NaN or inf).")
    if isinstance(max_p_bytes, bool) or not isinstance(
        max_p_bytes, (int, float, np.integer, np.floating)
    ) or not 0 < max_p_bytes:  # NaN fails the comparison
        raise ValueError(
            f"force max_p_bytes [bytes] must be a number in (0, inf], got {max_p_bytes!r}."
        )
    mask = _plastic_mask(plastic, post.n, pre.n)
    block = _block(mask)
    if block is not None:  # one shared P over the block's columns
        rows, index = block
    else:  # one P per plastic row, over its own inputs
        rows, index = _per_row(mask)
        n_bytes = rows.size * index.shape[1] ** 2 * jnp.dtype(float).itemsize
        if n_bytes > max_p_bytes:
            raise ValueError(
                f"force plastic is not a block of rows x columns, so each of its "
                f"{rows.size} plastic rows needs its own RLS matrix of k x k = "
                f"{index.shape[1]} x {index.shape[1]} (k: the most plastic inputs of one "
                f"row), {n_bytes / 2**30:.2f} GiB in all, over max_p_bytes = "
                f"{max_p_bytes / 2**30:.2f} GiB. Train fewer inputs per row, use a block "
                "mask (nj.train.Mask.presynaptic: one shared matrix), or raise max_p_bytes."
            )
    model.check(dt)
    if state is None:
        state = model.init(key, dt)
    model, p, rates = _train(model, state, target, jnp.asarray(rows), jnp.asarray(index),
                             jnp.asarray(float(alpha)), j, every, trials, dt)
    return ForceResult(model=model, pvar=np.asarray(p), rates=np.asarray(rates))


def _learn(P, w, rho, err, rows, index):
    """One RLS update of the plastic weights of `w` (n_post, n_pre) from the regressors
    `rho` (n_pre,) and the errors `err` (rows,) of the plastic rows `rows`.

    Shared form (`index` the block's columns, shape `(k,)`; `P` shape `(k, k)`): every row
    has the same regressors `rho[index]`, so one `P` serves them all. Per-row form
    (`index` shape `(rows, k)`, padded with `n_pre`; `P` shape `(rows, k, k)`): row i
    updates its own `P_i` from its own regressors. A padded slot reads the regressor 0,
    so its entries of the gain `P_i rho_i` are exactly 0, `P_i`'s padded row and column
    keep their initial values (0 off the diagonal), and the result equals the unpadded
    update; the padded slots are dropped when the weights are written back."""
    if index.ndim == 1:
        ix = jnp.ix_(rows, index)
        P, block = _rls_update(P, w[ix], rho[index], err)
        return P, w.at[ix].set(block)
    r = jnp.broadcast_to(rows[:, None], index.shape)
    rho = jnp.concatenate([rho, jnp.zeros(1, rho.dtype)])[index]  # (rows, k), 0 at padding
    block = w.at[r, index].get(mode="fill", fill_value=0.0)  # (rows, k)
    P, block = jax.vmap(_rls_update)(P, block[:, None, :], rho, err[:, None])
    return P, w.at[r, index].set(block[:, 0, :], mode="drop")


@eqx.filter_jit
def _train(model, state0, target, rows, index, alpha, j, every, trials, dt):
    """`trials` trials of RLS training (see `force`); `rows`, `index` as in `_learn`."""
    proj = model.projections[j]
    get_w = lambda m: m.projections[j].weights.weights  # noqa: E731
    n_pre = model.populations[proj.pre].n
    steps = target.shape[0]
    var = jnp.sum((target - jnp.mean(target)) ** 2)
    # The regressors are what each presynaptic neuron contributes to the synaptic drive
    # this step, s_i = sum_j w_ij rho_j: its output `delay` steps ago (the network's ring
    # buffer, replayed per presynaptic neuron in `sent`) passed through the projection's
    # linear kinetics (one copy per presynaptic neuron in `syn`), with the gain the network
    # gives graded arrivals. For rates through Delta synapses, rho = r_pre(t - dt); for
    # spikes through Exponential synapses, the filtered spike trains (Nicola & Clopath 2017).
    kinetics, delay = proj.synapse, proj.delay_steps(dt)
    graded = not (model.populations[proj.pre].neuron.spiking or kinetics.instantaneous)
    gain = kinetics.graded_gain(dt) if graded else None

    def step(carry, x):
        st, w, P, sent, syn, sse = carry
        f, i = x
        slot = st.step % delay  # the network's own buffer slot for this step's arrivals
        arrivals = read_slot(sent, slot)
        if gain is not None:
            arrivals = arrivals * gain
        syn, rho = kinetics.step(syn, arrivals, dt)
        st, outs = eqx.tree_at(get_w, model, w).step(st, st.step * dt, dt)
        r_post = outs[proj.post]
        err = r_post - f

        def learn(args):
            return _learn(*args, rho, err[rows], rows, index)

        P, w = jax.lax.cond(i % every == 0, learn, lambda args: args, (P, w))
        sent = set_slot(sent, slot, outs[proj.pre])  # arrives `delay` steps from now
        return (st, w, P, sent, syn, sse + jnp.sum(err**2)), r_post

    def trial(carry, _):
        w, P, _ = carry
        init = (state0, w, P, jnp.zeros((delay, n_pre), float), kinetics.init(n_pre),
                jnp.zeros((), float))
        (_, w, P, *_, sse), rates = jax.lax.scan(step, init, (target, jnp.arange(steps)))
        return (w, P, rates), 1.0 - sse / var  # only the last trial's rates are kept

    k = index.shape[-1]
    P0 = jnp.broadcast_to(jnp.eye(k) / alpha, (*index.shape[:-1], k, k))  # I / alpha per P
    (w, _, rates), p = jax.lax.scan(trial, (get_w(model), P0, jnp.zeros_like(target)), None,
                                    length=trials)
    return eqx.tree_at(get_w, model, w), p, rates
