r"""Linear readouts of task variables from activity: ridge regression for continuous
variables, multinomial logistic regression for classes (a choice, a stimulus identity),
with the penalty chosen by cross-validation.

```python
dec = nj.train.fit_decoder(activity, choice, alpha=1.0)   # activity (samples, features)
pred = nj.train.decode(dec, new_activity)
dec = nj.train.fit_decoder(activity, choice, alpha=(0.01, 0.1, 1.0, 10.0), folds=5,
                           key=jax.random.key(0))         # alpha chosen by CV
dec.cv_score                                              # R^2 of the chosen alpha
clf = nj.train.fit_decoder(activity, labels, alpha=1.0, kind="logistic", folds=5)
nj.train.decode(clf, new_activity)                        # predicted labels
```
"""

from __future__ import annotations

import functools
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


class Decoder(eqx.Module):
    r"""A fitted linear readout $\hat y = X W + b$ (ridge), or class scores $X W + b$
    whose largest entry names the predicted class (logistic).

    **Fields:**

    - `weights`: `(features, targets)` readout weights (`targets` = classes for
      logistic).
    - `bias`: `(targets,)` intercept.
    - `alpha`: The penalty used.
    - `cv_score`: Mean held-out score of that penalty over the folds: $R^2$ (ridge)
      or the fraction classified correctly (logistic); NaN without cross-validation.
    - `kind`: `"ridge"` or `"logistic"`.
    - `classes`: The class labels, in the order of the columns (logistic), else None.
    """

    weights: Float[Array, "features targets"]
    bias: Float[Array, " targets"]
    alpha: float = eqx.field(static=True)
    cv_score: float = eqx.field(static=True, default=float("nan"))
    kind: str = eqx.field(static=True, default="ridge")
    classes: Any = None


def _ridge(x, y, alpha):
    mx, my = jnp.mean(x, axis=0), jnp.mean(y, axis=0)
    xc, yc = x - mx[None, :], y - my[None, :]
    gram = xc.T @ xc + alpha * jnp.eye(x.shape[1], dtype=x.dtype)
    w = jnp.linalg.solve(gram, xc.T @ yc)
    return w, my - mx @ w


@functools.partial(jax.jit, static_argnames=("n_classes", "iterations"))
def _logistic(x, y_index, weight, n_classes, alpha, iterations=200):
    """Multinomial logistic regression: minimise the cross-entropy summed over the
    samples of `weight` 1 (0 leaves a sample out, so every fold has the same shapes and
    one compilation serves them all) plus alpha |W|^2 (intercept unpenalised), with
    L-BFGS from zero."""
    import optax

    def f(params):
        w, b = params
        logits = x @ w + b[None, :]
        nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), y_index[:, None], 1)[:, 0]
        ce = jnp.sum(weight * nll)
        return ce + alpha * jnp.sum(w**2)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(f)
    params = (jnp.zeros((x.shape[1], n_classes)), jnp.zeros(n_classes))

    def step(carry, _):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
        return (optax.apply_updates(params, updates), state), value

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=iterations)
    return params


def _r2(y, pred):
    ss_res = jnp.sum((y - pred) ** 2)
    ss_tot = jnp.sum((y - jnp.mean(y, axis=0)[None, :]) ** 2)
    return 1.0 - ss_res / ss_tot


def fit_decoder(
    activity: Any,
    target: Any,
    alpha: Any = 1.0,
    *,
    kind: str = "ridge",
    folds: int | None = None,
    key: PRNGKeyArray | None = None,
) -> Decoder:
    r"""Fit a linear readout of `target` from `activity`.

    `kind="ridge"` minimises $\lVert Y - XW - b\rVert^2 + \alpha \lVert W \rVert^2$
    in closed form; `kind="logistic"` minimises the summed multinomial cross-entropy
    of the classes plus $\alpha \lVert W \rVert^2$ (L-BFGS, 200 iterations). The
    intercept is not penalised.

    **Arguments:**

    - `activity`: `(samples, features)`, e.g. rates of every neuron per trial/time bin.
    - `target`: Ridge: `(samples,)` or `(samples, targets)` task variable(s) to read
      out (a choice as +-1, a coherence). Logistic: `(samples,)` class labels (any
      values, at least two distinct).
    - `alpha`: Ridge penalty >= 0 [units of activity squared], or a sequence of them to
      choose from by cross-validation.
    - `kind`: `"ridge"` (default) or `"logistic"`.
    - `folds`: Number of cross-validation folds, an integer in [2, samples]; needed
      when `alpha` is a sequence (default then 5), optional otherwise (to report
      `cv_score`).
    - `key`: PRNG key shuffling the samples into folds (default: no shuffle).

    Returns a `Decoder` fitted on all samples with the chosen `alpha`.
    """
    if kind not in ("ridge", "logistic"):
        raise ValueError(f"fit_decoder kind must be 'ridge' or 'logistic', got {kind!r}.")
    x = jnp.asarray(activity, float)
    y = jnp.asarray(target, float)
    classes = None
    if kind == "logistic":
        if y.ndim != 1:
            raise ValueError(f"fit_decoder kind='logistic' needs (samples,) class labels, got shape {y.shape}.")
        classes, y_index = np.unique(np.asarray(target), return_inverse=True)
        if classes.size < 2:
            raise ValueError("fit_decoder kind='logistic' needs at least two classes in target.")
        y_index = jnp.asarray(y_index.reshape(-1))
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
                if kind == "ridge":
                    w, b = _ridge(x[train], y2[train], a)
                    fold_scores.append(float(_r2(y2[test], x[test] @ w + b[None, :])))
                else:
                    weight = jnp.zeros(n).at[train].set(1.0)
                    w, b = _logistic(x, y_index, weight, classes.size, a)
                    pred = jnp.argmax(x[test] @ w + b[None, :], axis=1)
                    fold_scores.append(float(jnp.mean(pred == y_index[test])))
            scores.append(float(np.mean(fold_scores)))
    best = int(np.nanargmax(scores)) if folds is not None else 0
    if kind == "ridge":
        w, b = _ridge(x, y2, alphas[best])
    else:
        w, b = _logistic(x, y_index, jnp.ones(n), classes.size, alphas[best])
    return Decoder(weights=w, bias=b, alpha=float(alphas[best]), cv_score=scores[best],
                   kind=kind, classes=None if classes is None else jnp.asarray(classes))


def decode(decoder: Decoder, activity: Any) -> Array:
    """The readout of `activity` `(samples, features)`: $X W + b$ of shape
    `(samples, targets)` for ridge, the predicted class labels `(samples,)` for
    logistic."""
    x = jnp.asarray(activity, float)
    if x.ndim != 2 or x.shape[1] != decoder.weights.shape[0]:
        raise ValueError(
            f"decode activity must be (samples, {decoder.weights.shape[0]}), got shape {x.shape}."
        )
    scores = x @ decoder.weights + decoder.bias[None, :]
    if decoder.kind == "logistic":
        return decoder.classes[jnp.argmax(scores, axis=1)]
    return scores
