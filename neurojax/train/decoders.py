r"""Linear readouts of task variables from activity (ridge regression, cross-validated).

```python
dec = nj.train.fit_decoder(activity, choice, alpha=1.0)   # activity (samples, features)
pred = nj.train.decode(dec, new_activity)
dec = nj.train.fit_decoder(activity, choice, alpha=(0.01, 0.1, 1.0, 10.0), folds=5,
                           key=jax.random.key(0))         # alpha chosen by CV
dec.cv_score                                              # R^2 of the chosen alpha
```
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


class Decoder(eqx.Module):
    r"""A fitted linear readout $\hat y = X W + b$.

    **Fields:**

    - `weights`: `(features, targets)` readout weights.
    - `bias`: `(targets,)` intercept.
    - `alpha`: The ridge penalty used.
    - `cv_score`: Mean held-out $R^2$ of that penalty over the folds (NaN without
      cross-validation).
    """

    weights: Float[Array, "features targets"]
    bias: Float[Array, " targets"]
    alpha: float = eqx.field(static=True)
    cv_score: float = eqx.field(static=True, default=float("nan"))


def _ridge(x, y, alpha):
    mx, my = jnp.mean(x, axis=0), jnp.mean(y, axis=0)
    xc, yc = x - mx[None, :], y - my[None, :]
    gram = xc.T @ xc + alpha * jnp.eye(x.shape[1], dtype=x.dtype)
    w = jnp.linalg.solve(gram, xc.T @ yc)
    return w, my - mx @ w


def _r2(y, pred):
    ss_res = jnp.sum((y - pred) ** 2)
    ss_tot = jnp.sum((y - jnp.mean(y, axis=0)[None, :]) ** 2)
    return 1.0 - ss_res / ss_tot


def fit_decoder(
    activity: Any,
    target: Any,
    alpha: Any = 1.0,
    *,
    folds: int | None = None,
    key: PRNGKeyArray | None = None,
) -> Decoder:
    r"""Fit a ridge-regression readout of `target` from `activity`.

    Minimises $\lVert Y - XW - b\rVert^2 + \alpha \lVert W \rVert^2$ in closed form
    (the intercept is not penalised).

    **Arguments:**

    - `activity`: `(samples, features)`, e.g. rates of every neuron per trial/time bin.
    - `target`: `(samples,)` or `(samples, targets)` task variable(s) to read out (a
      choice as +-1, a coherence, a one-hot class).
    - `alpha`: Ridge penalty >= 0 [units of activity squared], or a sequence of them to
      choose from by cross-validation.
    - `folds`: Number of cross-validation folds, an integer in [2, samples]; needed
      when `alpha` is a sequence (default then 5), optional otherwise (to report
      `cv_score`).
    - `key`: PRNG key shuffling the samples into folds (default: no shuffle).

    Returns a `Decoder` fitted on all samples with the chosen `alpha`.
    """
    x = jnp.asarray(activity, float)
    y = jnp.asarray(target, float)
    if x.ndim != 2:
        raise ValueError(f"fit_decoder activity must be (samples, features), got shape {x.shape}.")
    y2 = y[:, None] if y.ndim == 1 else y
    if y2.ndim != 2 or y2.shape[0] != x.shape[0]:
        raise ValueError(
            f"fit_decoder target must be (samples,) or (samples, targets) with samples = "
            f"{x.shape[0]}, got shape {y.shape}."
        )
    alphas = [alpha] if np.ndim(alpha) == 0 else list(alpha)
    if not alphas or any(not np.isfinite(a) or a < 0 for a in alphas):
        raise ValueError(f"fit_decoder alpha must be >= 0 (or a non-empty sequence of such), got {alpha!r}.")
    if folds is None and len(alphas) > 1:
        folds = 5
    n = x.shape[0]
    scores = [float("nan")] * len(alphas)
    if folds is not None:
        if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= n:
            raise ValueError(f"fit_decoder folds must be an integer in [2, {n}], got {folds!r}.")
        order = np.arange(n) if key is None else np.asarray(jax.random.permutation(key, n))
        parts = np.array_split(order, folds)
        scores = []
        for a in alphas:
            fold_scores = []
            for k in range(folds):
                test = parts[k]
                train = np.concatenate([parts[j] for j in range(folds) if j != k])
                w, b = _ridge(x[train], y2[train], a)
                fold_scores.append(float(_r2(y2[test], x[test] @ w + b[None, :])))
            scores.append(float(np.mean(fold_scores)))
    best = int(np.nanargmax(scores)) if folds is not None else 0
    w, b = _ridge(x, y2, alphas[best])
    return Decoder(weights=w, bias=b, alpha=float(alphas[best]), cv_score=scores[best])


def decode(decoder: Decoder, activity: Any) -> Float[Array, "samples targets"]:
    """The readout $X W + b$ of `activity` `(samples, features)`, shape `(samples, targets)`."""
    x = jnp.asarray(activity, float)
    if x.ndim != 2 or x.shape[1] != decoder.weights.shape[0]:
        raise ValueError(
            f"decode activity must be (samples, {decoder.weights.shape[0]}), got shape {x.shape}."
        )
    return x @ decoder.weights + decoder.bias[None, :]
