r"""Cognitive tasks as pure, seeded functions returning batched arrays.

Every task returns `Trials(inputs, targets, mask, labels, conditions)` with a leading
trial axis, so it can be passed to `nj.train.fit` as `data` as it is. Time is binned in
steps of `dt` [ms]; every period length must be a whole number of steps.

```python
trials = nj.train.tasks.perceptual_decision(jax.random.key(0), 256, dt=20.0)
trials.inputs.shape      # (256, steps, 2): evidence, fixation cue
trials.targets.shape     # (256, steps, 1): 0 while fixating, +-1 in the response period
```

Outputs are scored where `mask` is 1 (fixation and response periods); `accuracy`
compares the sign of the mean output over the response period with `labels`.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray


class Trials(eqx.Module):
    """A batch of task trials (a pytree: index, `vmap` or pass to `fit` as is).

    **Fields:**

    - `inputs`: `(trials, steps, n_in)` input channels (task units).
    - `targets`: `(trials, steps, n_out)` desired outputs.
    - `mask`: `(trials, steps, n_out)`, 1 where the output is scored, 0 elsewhere.
    - `labels`: `(trials,)` the correct choice, +1 or -1.
    - `conditions`: `(trials,)` the signed evidence of each trial (e.g. coherence times
      direction), for psychometric curves.
    - `response`: `(trials, steps)` boolean, the response period.
    """

    inputs: Float[Array, "trials steps n_in"]
    targets: Float[Array, "trials steps n_out"]
    mask: Float[Array, "trials steps n_out"]
    labels: Int[Array, " trials"]
    conditions: Float[Array, " trials"]
    response: Array


def _response(resp, n_trials):
    return jnp.broadcast_to(resp[None, :], (n_trials, resp.shape[0]))


def _steps(value: float, name: str, dt: float, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        low = "[0" if allow_zero else "(0"
        raise ValueError(f"{name} [ms] must lie in {low}, inf), got {value!r}.")
    n = round(value / dt)
    if abs(n * dt - value) > 1e-9 * max(value, dt):
        raise ValueError(
            f"{name} [ms] must be a whole number of steps of dt = {dt:g} ms, got {value:g} ms."
        )
    return n


def _check_common(n_trials: int, dt: float) -> None:
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer in [1, inf), got {n_trials!r}.")
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not (0 < dt < math.inf):
        raise ValueError(f"dt [ms] must lie in (0, inf), got {dt!r}.")


def _check_coherences(coherences) -> jnp.ndarray:
    c = np.asarray(coherences, float)
    if c.ndim != 1 or c.size == 0 or np.any(c <= 0) or not np.all(np.isfinite(c)):
        raise ValueError(
            f"coherences must be a non-empty 1-D sequence of values in (0, inf), got {coherences!r}."
        )
    return jnp.asarray(c)


def _periods(dt, **lengths) -> tuple[dict[str, int], int]:
    steps = {k: _steps(v, k, dt, allow_zero=k == "delay") for k, v in lengths.items()}
    return steps, sum(steps.values())


def perceptual_decision(
    key: PRNGKeyArray,
    n_trials: int,
    *,
    dt: float | int = 20.0,
    coherences: Any = (0.05, 0.1, 0.2, 0.4),
    fixation: float | int = 100.0,
    stimulus: float | int = 500.0,
    delay: float | int = 0.0,
    response: float | int = 200.0,
    noise: float | int = 0.5,
) -> Trials:
    r"""Perceptual decision making (random-dots-like evidence integration).

    A noisy scalar stimulus $u_t = c\,d + \sigma \xi_t$ (coherence $c$, direction
    $d = \pm 1$, $\xi_t \sim N(0, 1)$ per step) is shown after a fixation period; after
    an optional delay the fixation cue turns off and the output must report $d$.

    **Arguments:**

    - `key`: PRNG key.
    - `n_trials`: Number of trials.
    - `dt`: Step [ms].
    - `coherences`: Coherences drawn uniformly per trial, values in (0, inf).
    - `fixation`, `stimulus`, `delay`, `response`: Period lengths [ms], whole numbers
      of steps (`delay` may be 0).
    - `noise`: $\sigma$, standard deviation of the stimulus noise per step, >= 0.

    Inputs: channel 0 the stimulus, channel 1 the fixation cue (1 until the response
    period). Target: 0 during fixation, $d$ during the response period (scored there
    and during fixation).
    """
    _check_common(n_trials, dt)
    c = _check_coherences(coherences)
    p, n_steps = _periods(dt, fixation=fixation, stimulus=stimulus, delay=delay, response=response)
    k_c, k_d, k_n = jax.random.split(key, 3)
    coh = c[jax.random.randint(k_c, (n_trials,), 0, c.shape[0])]
    direction = jnp.where(jax.random.bernoulli(k_d, 0.5, (n_trials,)), 1, -1)
    t = jnp.arange(n_steps)
    on = (t >= p["fixation"]) & (t < p["fixation"] + p["stimulus"])
    resp = t >= n_steps - p["response"]
    stim = (coh * direction)[:, None] + noise * jax.random.normal(k_n, (n_trials, n_steps))
    fix = jnp.broadcast_to((~resp)[None, :], stim.shape).astype(float)
    inputs = jnp.stack([jnp.where(on[None, :], stim, 0.0), fix], -1)
    targets = jnp.where(resp[None, :], direction[:, None].astype(float), 0.0)[..., None]
    scored = (t < p["fixation"]) | resp
    mask = jnp.broadcast_to(scored[None, :, None], targets.shape).astype(float)
    return Trials(inputs, targets, mask, direction, coh * direction, _response(resp, n_trials))


def context_dependent_integration(
    key: PRNGKeyArray,
    n_trials: int,
    *,
    dt: float | int = 20.0,
    coherences: Any = (0.05, 0.15, 0.5),
    fixation: float | int = 100.0,
    stimulus: float | int = 500.0,
    delay: float | int = 0.0,
    response: float | int = 200.0,
    noise: float | int = 0.5,
) -> Trials:
    r"""Context-dependent integration (Mante, Sussillo, Shenoy & Newsome 2013).

    Two noisy stimuli (motion and colour, each $c_k d_k + \sigma\xi$ with independent
    coherences and directions) are shown together with a context cue; the output must
    report the direction of the stimulus the context selects and ignore the other.

    **Arguments:** as `perceptual_decision`.

    Inputs: channels 0 and 1 the motion and colour stimuli, 2 and 3 the one-hot
    context (motion, colour; on throughout the trial), 4 the fixation cue. `labels` is
    the relevant direction, `conditions` the relevant signed coherence.
    """
    _check_common(n_trials, dt)
    c = _check_coherences(coherences)
    p, n_steps = _periods(dt, fixation=fixation, stimulus=stimulus, delay=delay, response=response)
    k_c, k_d, k_x, k_n = jax.random.split(key, 4)
    coh = c[jax.random.randint(k_c, (n_trials, 2), 0, c.shape[0])]
    direction = jnp.where(jax.random.bernoulli(k_d, 0.5, (n_trials, 2)), 1, -1)
    context = jax.random.randint(k_x, (n_trials,), 0, 2)
    t = jnp.arange(n_steps)
    on = (t >= p["fixation"]) & (t < p["fixation"] + p["stimulus"])
    resp = t >= n_steps - p["response"]
    stim = (coh * direction)[:, None, :] + noise * jax.random.normal(k_n, (n_trials, n_steps, 2))
    stim = jnp.where(on[None, :, None], stim, 0.0)
    ctx = jnp.broadcast_to(jax.nn.one_hot(context, 2)[:, None, :], (n_trials, n_steps, 2))
    fix = jnp.broadcast_to((~resp)[None, :, None], (n_trials, n_steps, 1)).astype(float)
    inputs = jnp.concatenate([stim, ctx, fix], -1)
    label = jnp.take_along_axis(direction, context[:, None], 1)[:, 0]
    relevant = jnp.take_along_axis(coh * direction, context[:, None], 1)[:, 0]
    targets = jnp.where(resp[None, :], label[:, None].astype(float), 0.0)[..., None]
    scored = (t < p["fixation"]) | resp
    mask = jnp.broadcast_to(scored[None, :, None], targets.shape).astype(float)
    return Trials(inputs, targets, mask, label, relevant.astype(float), _response(resp, n_trials))


def delayed_match_to_sample(
    key: PRNGKeyArray,
    n_trials: int,
    *,
    dt: float | int = 20.0,
    n_stimuli: int = 2,
    fixation: float | int = 100.0,
    sample: float | int = 200.0,
    delay: float | int = 300.0,
    test: float | int = 200.0,
    response: float | int = 200.0,
    noise: float | int = 0.1,
) -> Trials:
    r"""Delayed match-to-sample (working memory).

    A sample stimulus (one of `n_stimuli`, one-hot) is followed by a delay and a test
    stimulus; the output must report +1 if the test matches the sample, -1 otherwise
    (half of the trials match).

    **Arguments:**

    - `key`, `n_trials`, `dt`: As `perceptual_decision`.
    - `n_stimuli`: Number of distinct stimuli, an integer in [2, inf).
    - `fixation`, `sample`, `delay`, `test`, `response`: Period lengths [ms].
    - `noise`: Standard deviation of the input noise per step, >= 0.

    Inputs: channels `0 .. n_stimuli - 1` the stimuli, the last the fixation cue.
    `conditions` holds the sample's index.
    """
    _check_common(n_trials, dt)
    if isinstance(n_stimuli, bool) or not isinstance(n_stimuli, int) or n_stimuli < 2:
        raise ValueError(f"n_stimuli must be an integer in [2, inf), got {n_stimuli!r}.")
    p, n_steps = _periods(dt, fixation=fixation, sample=sample, delay=delay, test=test,
                          response=response)
    k_s, k_m, k_o, k_n = jax.random.split(key, 4)
    s = jax.random.randint(k_s, (n_trials,), 0, n_stimuli)
    match = jax.random.bernoulli(k_m, 0.5, (n_trials,))
    other = (s + jax.random.randint(k_o, (n_trials,), 1, n_stimuli)) % n_stimuli
    test_stim = jnp.where(match, s, other)
    t = jnp.arange(n_steps)
    t_sample = p["fixation"]
    t_test = t_sample + p["sample"] + p["delay"]
    in_sample = (t >= t_sample) & (t < t_sample + p["sample"])
    in_test = (t >= t_test) & (t < t_test + p["test"])
    resp = t >= n_steps - p["response"]
    stim = (in_sample[None, :, None] * jax.nn.one_hot(s, n_stimuli)[:, None, :]
            + in_test[None, :, None] * jax.nn.one_hot(test_stim, n_stimuli)[:, None, :])
    stim = stim + noise * jax.random.normal(k_n, stim.shape)
    fix = jnp.broadcast_to((~resp)[None, :, None], (n_trials, n_steps, 1)).astype(float)
    inputs = jnp.concatenate([stim, fix], -1)
    label = jnp.where(match, 1, -1)
    targets = jnp.where(resp[None, :], label[:, None].astype(float), 0.0)[..., None]
    scored = (t < p["fixation"]) | resp
    mask = jnp.broadcast_to(scored[None, :, None], targets.shape).astype(float)
    return Trials(inputs, targets, mask, label, s.astype(float), _response(resp, n_trials))


def interval_timing(
    key: PRNGKeyArray,
    n_trials: int,
    *,
    dt: float | int = 20.0,
    intervals: Any = (400.0, 600.0, 800.0, 1000.0),
    fixation: float | int = 100.0,
    pulse: float | int = 20.0,
    noise: float | int = 0.0,
) -> Trials:
    r"""Interval timing, ready-set-go (Jazayeri & Shadlen 2010; Wang et al. 2018).

    Two pulses, "ready" and "set", are separated by a sample interval $t_s$; the output
    must then rise as a ramp from 0 at "set" to 1 at $t_s$ after it and stay at 1;
    the produced interval is the time from "set" to the output reaching 1
    (`produced_interval`).

    **Arguments:**

    - `key`, `n_trials`, `dt`: As `perceptual_decision`.
    - `intervals`: Sample intervals $t_s$ [ms] drawn uniformly per trial, each a
      whole number of steps in (0, inf).
    - `fixation`: Time before "ready" [ms].
    - `pulse`: Length of each pulse [ms].
    - `noise`: Standard deviation of the input noise per step, >= 0.

    Inputs: channel 0 the ready and set pulses. Target: the ramp (scored from "set"
    to the end of the trial, `mask`), 0 before it. `conditions` holds $t_s$ [ms];
    `labels` is 1 (no choice); `response` marks the steps after "set".
    """
    _check_common(n_trials, dt)
    ts = np.asarray(intervals, float)
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"intervals [ms] must be a non-empty 1-D sequence, got {intervals!r}.")
    steps_ts = np.array([_steps(float(t), "intervals", dt) for t in ts])
    p, _ = _periods(dt, fixation=fixation, pulse=pulse)
    if np.any(steps_ts < p["pulse"]):
        raise ValueError(f"intervals [ms] must be at least the pulse length {pulse:g} ms, got {intervals!r}.")
    n_steps = p["fixation"] + 2 * int(steps_ts.max()) + p["pulse"]
    k_i, k_n = jax.random.split(key)
    choice = jax.random.randint(k_i, (n_trials,), 0, ts.size)
    t_s = jnp.asarray(steps_ts)[choice]  # [steps]
    t = jnp.arange(n_steps)[None, :]
    ready = p["fixation"]
    t_set = ready + t_s[:, None]
    pulses = ((t >= ready) & (t < ready + p["pulse"])) | ((t >= t_set) & (t < t_set + p["pulse"]))
    inputs = (pulses.astype(float) + noise * jax.random.normal(k_n, pulses.shape))[..., None]
    after = t >= t_set
    ramp = jnp.clip((t - t_set) / t_s[:, None], 0.0, 1.0)
    targets = jnp.where(after, ramp, 0.0)[..., None]
    mask = jnp.ones_like(targets)
    return Trials(inputs, targets, mask, jnp.ones((n_trials,), int),
                  jnp.asarray(ts)[choice], after)


def produced_interval(outputs: Any, trials: Trials, dt: float | int, level: float = 1.0):
    """The interval [ms] each trial's output (channel 0) takes from "set" to first
    reach `level` (the ramp's end at 1.0); the trial's last step if it never does.
    Compare with `trials.conditions` (the sample intervals) for the timing error.
    """
    out = outputs if outputs.ndim == 2 else outputs[..., 0]
    if out.shape != trials.response.shape:
        raise ValueError(
            f"produced_interval: outputs must have shape (trials, steps[, n_out]) = "
            f"{trials.response.shape}, got {outputs.shape}."
        )
    after = trials.response
    n = out.shape[1]
    first_set = jnp.argmax(after, axis=1)
    crossed = after & (out >= level)
    first = jnp.where(jnp.any(crossed, axis=1), jnp.argmax(crossed, axis=1), n - 1)
    return (first - first_set) * dt


def accuracy(outputs: Any, trials: Trials) -> Float[Array, ""]:
    """Fraction of trials whose mean output (channel 0) over the response period has the
    sign of `labels`.

    **Arguments:**

    - `outputs`: `(trials, steps, n_out)` (or `(trials, steps)`) network outputs.
    - `trials`: The `Trials` they answer.
    """
    out = outputs if outputs.ndim == 2 else outputs[..., 0]
    if out.shape != trials.response.shape:
        raise ValueError(
            "accuracy: outputs must have shape (trials, steps[, n_out]) = "
            f"{trials.response.shape}, got {outputs.shape}."
        )
    w = trials.response.astype(out.dtype)
    choice = jnp.sign(jnp.sum(out * w, axis=-1))
    return jnp.mean((choice == trials.labels).astype(float))


_DIGITS_LEVELS = 16.0  # sklearn's digits are 4-bit images: pixel values 0, 1, ..., 16


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not (0 < value < math.inf):
        raise ValueError(f"{name} must lie in (0, inf), got {value!r}.")
    return float(value)


def digits(
    key: PRNGKeyArray,
    *,
    encoding: str = "latency",
    test_fraction: float = 0.2,
    duration: float | int = 20.0,
    dt: float | int = 1.0,
    max_rate: float | int = 200.0,
) -> tuple[Trials, Trials]:
    r"""scikit-learn's handwritten digits (1797 8x8 images, 10 classes; Alpaydin &
    Kaynak 1998, UCI) as spike trains of 64 input channels, one per pixel, split into
    training and held-out trials.

    The data ship with scikit-learn (`sklearn.datasets.load_digits`, no download); it
    is imported here only, and needs the `test` extra (`pip install neurojax[test]`)
    or `pip install scikit-learn`. Each pixel's intensity $u = x/16 \in [0, 1]$ becomes:

    - `encoding="latency"` (time-to-first-spike): one spike in step
      $k = \mathrm{round}((1 - u)(S - 1))$ of the $S$ = `duration / dt` steps, so the
      brightest pixels fire first (step 0) and the faintest last; pixels with $u = 0$
      stay silent. Deterministic; with $S \ge 17$ every grey level gets its own step.
    - `encoding="poisson"` (rate coding): a Bernoulli spike in every step with
      probability $u \cdot$ `max_rate` $\cdot\,dt \cdot 10^{-3}$, i.e. a Poisson train
      of rate $u \cdot$ `max_rate` [Hz] in the limit of small $dt$.

    **Arguments:**

    - `key`: PRNG key: the split (a random permutation of the 1797 images) and the
      Poisson spikes (drawn once; the same key gives the same trials).
    - `encoding`: `"latency"` or `"poisson"`.
    - `test_fraction`: Fraction of the images held out, in (0, 1); the held-out set
      has `ceil(test_fraction * 1797)` images (scikit-learn's `train_test_split`
      convention), each set at least one.
    - `duration`: Length of a trial [ms], in (0, inf), a whole number of steps.
    - `dt`: Step [ms], in (0, inf).
    - `max_rate`: Rate [Hz] of a white pixel (u = 1) under Poisson coding, in
      (0, 1000 / dt] (at most one spike per step).

    Returns `(train, test)`, two `Trials`: `inputs` `(trials, steps, 64)` spikes (0 or
    1, pixels in row-major order), `targets` `(trials, steps, 10)` the one-hot class
    at every step, `mask` ones (the class is scored over the whole trial unless the
    loss chooses otherwise), `labels` the digit 0-9, `conditions` the image's index in
    `load_digits()` (to look the image up), `response` all `True`.

    !!! example
        ```python
        train, test = nj.train.tasks.digits(jax.random.key(0), encoding="latency",
                                            duration=20.0, dt=1.0)
        train.inputs.shape  # (1437, 20, 64)
        ```
    """
    if encoding not in ("latency", "poisson"):
        raise ValueError(f"encoding must be 'latency' or 'poisson', got {encoding!r}.")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)) \
            or not (0 < test_fraction < 1):
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}.")
    dt = _positive(dt, "dt [ms]")
    n_steps = _steps(_positive(duration, "duration [ms]"), "duration", dt)
    max_rate = _positive(max_rate, "max_rate [Hz]")
    if max_rate * dt * 1e-3 > 1:
        raise ValueError(
            f"max_rate [Hz] must lie in (0, 1000 / dt] = (0, {1e3 / dt:g}] (at most one spike "
            f"per step of dt = {dt:g} ms), got {max_rate:g}."
        )
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "nj.train.tasks.digits needs scikit-learn (its bundled digits data set): "
            "pip install 'neurojax[test]' or pip install scikit-learn."
        ) from e
    data = load_digits()
    images = np.asarray(data.data, np.float64) / _DIGITS_LEVELS  # (1797, 64), in [0, 1]
    classes = np.asarray(data.target)
    n = images.shape[0]
    n_test = math.ceil(test_fraction * n)
    if not 1 <= n_test <= n - 1:
        raise ValueError(
            f"test_fraction must leave at least one image in each set, got {test_fraction!r} "
            f"({n_test} of {n} held out)."
        )
    k_split, k_spikes = jax.random.split(key)
    order = np.asarray(jax.random.permutation(k_split, n))
    u = jnp.asarray(images[order])
    if encoding == "latency":
        k = jnp.round((1.0 - u) * (n_steps - 1)).astype(int)  # (n, 64) spike step
        t = jnp.arange(n_steps)[None, :, None]
        spikes = (t == k[:, None, :]) & (u[:, None, :] > 0)
    else:
        p = u * (max_rate * dt * 1e-3)
        spikes = jax.random.uniform(k_spikes, (n, n_steps, u.shape[1])) < p[:, None, :]
    spikes = spikes.astype(jnp.result_type(float))
    labels = jnp.asarray(classes[order])
    targets = jnp.broadcast_to(jax.nn.one_hot(labels, 10)[:, None, :], (n, n_steps, 10))
    index = jnp.asarray(order).astype(spikes.dtype)

    def subset(sl):
        m = len(range(n)[sl])
        return Trials(spikes[sl], targets[sl], jnp.ones((m, n_steps, 10), spikes.dtype),
                      labels[sl], index[sl], jnp.ones((m, n_steps), bool))

    return subset(slice(n_test, None)), subset(slice(0, n_test))
