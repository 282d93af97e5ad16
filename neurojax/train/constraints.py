r"""Biological constraints as parameterisations: Dale's law, DANNs, masks, bounds, freezing.

A constraint maps free parameters to weights that obey it, so every optimiser step
gives valid weights by construction (nothing is clipped after the fact):

| constraint | weights from free parameters $\theta$ |
|---|---|
| `Dale(sign)` | $W_{ij} = s_j \, \mathrm{softplus}(\theta_{ij})$ (or $\mathrm{relu}$), sign $s_j$ per presynaptic neuron |
| `DANN(n_inhibitory)` | $W = W_{EE} - W_{EI} W_{IE}$, each factor $\mathrm{softplus}(\theta)$ (Cornford et al. 2021) |
| `Mask(mask)` | $W = \theta$ where the mask is set, the initial $w_0$ elsewhere (bit for bit) |
| `Profile(a, sigma)` | $W_{ij} = a\, f(d_{ij}/\sigma)$ on the built synapses, $d_{ij}$ the distance (or feature difference) |
| `Bounded(lo, hi, max_change)` | $W = m + h \tanh(\theta)$ within $[\max(lo, w_0 - c), \min(hi, w_0 + c)]$ |

On a built network, `constrain` puts a constraint on projections chosen by name; the
projection's container becomes a `nj.connectivity.ConstrainedWeights`, which computes
its weights from the free values at every step, on the dense and the sparse
(event-driven) layouts alike:

```python
model = net.build(jax.random.key(0))
model = nj.train.constrain(model, {"E->*": nj.train.Dale(+1), "I->*": nj.train.Dale(-1)})
model.params()["E->E.weight.free"]          # what an optimiser trains
```

`trainable(model, include, exclude)` selects which parameters a fit trains (the rest
are frozen through `eqx.partition` / `eqx.combine`), and `Frozen` marks a part of any
pytree as never trained.

A constraint also works on its own, on any weight array:

```python
dale = nj.train.Dale(sign)          # sign: (n_pre,) of +1 / -1
theta = dale.init(w)                # free parameters giving w
w = dale.apply(theta, w)            # (post, pre) weights with exact signs
```
"""

from __future__ import annotations

import abc
import dataclasses
import fnmatch
import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ..connectivity.builders import low_rank_factors
from ..connectivity.procedural import ProceduralWeights
from ..connectivity.weights import ConstrainedWeights, DenseWeights, SparseWeights

_MAGNITUDES = ("softplus", "relu")


def _inverse_softplus(y):
    # log(exp(y) - 1), stable for large and small positive y.
    return y + jnp.log(-jnp.expm1(-y))


def _magnitude(kind: str, theta):
    return jax.nn.softplus(theta) if kind == "softplus" else jax.nn.relu(theta)


def _inverse_magnitude(kind: str, m, valid=None):
    """Free values whose magnitude is `m` >= 0. Softplus never reaches 0: entries of 0
    start at a floor of 1e-6 times the largest magnitude (1e-6 if all are 0)."""
    m = jnp.asarray(m, float)
    if kind == "relu":
        return m
    scale = jnp.max(jnp.where(valid, m, 0.0)) if valid is not None else jnp.max(m, initial=0.0)
    floor = 1e-6 * jnp.where(scale > 0, scale, 1.0)
    return _inverse_softplus(jnp.maximum(m, floor))


def _check_magnitude(owner: str, magnitude: str) -> None:
    if magnitude not in _MAGNITUDES:
        raise ValueError(f"{owner} magnitude must be one of {_MAGNITUDES}, got {magnitude!r}.")


class AbstractConstraint(eqx.Module):
    """A map from free parameters to weights that obey a constraint.

    Subclasses implement `init(weights, valid=None) -> free` (free parameters that
    give, or come closest to, `weights`) and `apply(free, w0) -> weights` (the
    constrained weights; `w0` are the initial weights, used by constraints that keep
    entries at or near their initial value). `valid` marks the entries that are
    synapses (False on the padding of a sparse layout), so checks skip the rest.

    `_bind(layout)` adapts the constraint to a container's layout: the weights of a
    dense container are `(n_post, n_pre)` and those of a sparse one `(n_pre, max_out)`.
    """

    @abc.abstractmethod
    def init(self, weights: Float[Array, "..."], valid: Bool[Array, "..."] | None = None) -> Any:
        """Free parameters for the weights `weights`."""

    @abc.abstractmethod
    def apply(self, free: Any, w0: Float[Array, "..."]) -> Float[Array, "..."]:
        """The constrained weights from the free parameters `free`."""

    def _bind(self, layout: _Layout) -> AbstractConstraint:
        return self

    def _place(self, pre, post) -> AbstractConstraint:
        """The constraint with what it reads from the projection's populations (`pre`,
        `post`: `nj.Population`) fixed; called by `constrain` before `_bind`."""
        return self

    def _resolve(self, weights, valid) -> AbstractConstraint:
        """The constraint with anything read from the initial weights fixed."""
        return self


class _Layout(eqx.Module):
    """How a container stores its synapses: `dense` (post, pre) or sparse (pre, out)
    with `targets`; `valid` marks real synapses (not padding)."""

    shape: tuple[int, ...] = eqx.field(static=True)
    n_pre: int = eqx.field(static=True)
    n_post: int = eqx.field(static=True)
    dense: bool = eqx.field(static=True)
    targets: Any = None

    @property
    def pre_axis(self) -> int:
        return -1 if self.dense else 0

    @property
    def valid(self):
        return None if self.dense else self.targets < self.n_post

    def gather(self, matrix, name: str):
        """A `(n_post, n_pre)` array in this layout (padding reads as 0 / False)."""
        matrix = jnp.asarray(matrix)
        if matrix.shape != (self.n_post, self.n_pre):
            raise ValueError(
                f"{name} must have shape (n_post, n_pre) = ({self.n_post}, {self.n_pre}), "
                f"got {matrix.shape}."
            )
        if self.dense:
            return matrix
        pre = jnp.broadcast_to(jnp.arange(self.n_pre)[:, None], self.targets.shape)
        return matrix.at[self.targets, pre].get(mode="fill", fill_value=0)


def _as_sign(sign):
    """Signs as int8 (never a float leaf that an optimiser could train)."""
    if sign is None:
        return None
    s = np.asarray(sign)
    if s.ndim > 1 or s.size == 0 or not np.all((s == 1) | (s == -1)):
        raise ValueError(
            "Dale sign must be +1 or -1 (a scalar, or one per presynaptic neuron, "
            f"shape (n_pre,)), got {sign!r}."
        )
    return s.astype(np.int8)


def _as_mask(mask):
    """A mask as booleans (never a float leaf that an optimiser could train)."""
    if mask is None:
        return None
    return mask.astype(bool) if isinstance(mask, jax.Array) else np.asarray(mask, bool)


class Dale(AbstractConstraint):
    r"""Dale's law: every presynaptic neuron's outgoing weights keep one sign.

    $$W_{ij} = s_j \, g(\theta_{ij}), \qquad g = \mathrm{softplus} \text{ or } \mathrm{relu},$$

    with $s_j = \pm 1$ the sign of presynaptic neuron $j$ (excitatory +1, inhibitory
    -1). Softplus keeps every synapse able to learn (a weight approaches 0 but never
    reaches it); relu allows exact zeros, and a weight that reaches 0 stops learning
    (as in sign-constrained RNNs, Song, Yang & Wang 2016). Weights initialised at 0
    start, with softplus, at 1e-6 times the largest magnitude.

    **Arguments:**

    - `sign`: +1 or -1 for the whole projection, an array of shape `(n_pre,)` with
      one sign per presynaptic neuron, or `None`: the presynaptic population's declared
      sign (`Population(..., sign=+1)`) when `constrain` applies it to a network that
      has one, otherwise each neuron's sign read from its initial weights (an error if a
      neuron has weights of both signs).
    - `magnitude`: `"softplus"` (default) or `"relu"`.
    - `mask`: Optional boolean `(n_post, n_pre)` array of the synapses that exist;
      the others stay exactly 0 (for a connectome on a dense layout; a sparse layout
      holds only existing synapses anyway).

    !!! example
        ```python
        sign = jnp.where(jnp.arange(100) < 80, 1, -1)   # 80 % E, 20 % I
        model = nj.train.constrain(model, {"R->R": nj.train.Dale(sign)})
        ```
    """

    sign: Any = eqx.field(default=None, converter=_as_sign)
    magnitude: str = eqx.field(static=True, default="softplus")
    mask: Any = eqx.field(default=None, converter=_as_mask)
    pre_axis: int = eqx.field(static=True, default=-1)

    def __check_init__(self):
        _check_magnitude("Dale", self.magnitude)

    def _bind(self, layout: _Layout) -> Dale:
        sign = self.sign
        if sign is not None and np.ndim(sign) == 1 and np.shape(sign)[0] != layout.n_pre:
            raise ValueError(
                f"Dale sign must have one entry per presynaptic neuron, shape ({layout.n_pre},); "
                f"got shape {np.shape(sign)}."
            )
        mask = None if self.mask is None else layout.gather(self.mask, "Dale mask").astype(bool)
        if not layout.dense:
            mask = layout.valid if mask is None else mask & layout.valid
        return Dale(sign=sign, magnitude=self.magnitude, mask=mask, pre_axis=layout.pre_axis)

    def _signs(self, weights, valid):
        """Per-presynaptic-neuron signs, shaped to broadcast against `weights`."""
        shape = [1] * jnp.ndim(weights)
        shape[self.pre_axis] = -1
        if self.sign is not None:
            s = jnp.asarray(self.sign, jnp.int8)
            return s if s.ndim == 0 else s.reshape(shape)
        w = jnp.where(valid, weights, 0.0) if valid is not None else weights
        other = tuple(a for a in range(w.ndim) if a != w.ndim + self.pre_axis and a != self.pre_axis)
        has_neg = np.asarray(jnp.any(w < 0, axis=other))
        has_pos = np.asarray(jnp.any(w > 0, axis=other))
        mixed = np.flatnonzero(has_neg & has_pos)
        if mixed.size:
            raise ValueError(
                "Dale(sign=None) reads each presynaptic neuron's sign from its weights, but "
                f"presynaptic neuron(s) {mixed[:10].tolist()} have weights of both signs; "
                "give sign= explicitly (+1 or -1 per presynaptic neuron)."
            )
        return jnp.where(jnp.asarray(has_neg), -1, 1).astype(jnp.int8).reshape(shape)

    def init(self, weights, valid=None):
        weights = jnp.asarray(weights, float)
        if self.mask is not None:
            valid = self.mask if valid is None else valid & self.mask
        s = self._signs(weights, valid)
        wrong = (weights * s) < 0
        if valid is not None:
            wrong = wrong & valid
        if np.any(np.asarray(wrong)):
            idx = np.argwhere(np.asarray(wrong))[0].tolist()
            raise ValueError(
                f"Dale sign disagrees with the initial weights: weight at index {idx} is "
                f"{float(weights[tuple(idx)]):g} but its presynaptic neuron's sign is "
                f"{int(jnp.broadcast_to(s, weights.shape)[tuple(idx)]):+d}; signs must match "
                "the populations (e.g. +1 for excitatory, -1 for inhibitory neurons)."
            )
        return _inverse_magnitude(self.magnitude, jnp.abs(weights), valid)

    def _resolve(self, weights, valid) -> Dale:
        if self.sign is not None:
            return self
        # Keep the signs read from the initial weights: a weight may later approach 0.
        valid = self.mask if valid is None else (valid if self.mask is None else valid & self.mask)
        s = self._signs(jnp.asarray(weights, float), valid)
        return Dale(sign=np.asarray(s).reshape(-1), magnitude=self.magnitude, mask=self.mask,
                    pre_axis=self.pre_axis)

    def apply(self, free, w0=None):
        if self.sign is None:
            raise ValueError(
                "Dale.apply needs the signs: give sign= (+1 or -1 per presynaptic neuron); "
                "Dale(sign=None) reads them from the weights only inside nj.train.constrain."
            )
        s = self._signs(free, None)
        w = s.astype(free.dtype) * _magnitude(self.magnitude, free)
        return w if self.mask is None else jnp.where(self.mask, w, 0.0)


class DANN(AbstractConstraint):
    r"""Dale's ANN (Cornford et al. 2021): excitatory projections with feedforward
    inhibition through `n_inhibitory` interneurons,

    $$W = W_{EE} - W_{EI} W_{IE}, \qquad W_{EE}, W_{EI}, W_{IE} \ge 0,$$

    each factor the softplus (or relu) of free values. $W$ itself may have either sign,
    but every path has a fixed sign: the presynaptic neurons are excitatory, the
    interneurons inhibitory. Initialised as in Cornford et al.: $W_{EE}$ from the
    magnitudes of the initial weights, each interneuron receiving the mean excitatory
    input ($W_{IE}$ rows = column means of $W_{EE}$) and $W_{EI} = 1 / n_i$, so the
    initial $W$ is balanced (each column sums to 0). Dense layout only.

    **Arguments:**

    - `n_inhibitory`: Number of interneurons $n_i$, an integer in [1, inf).
    - `magnitude`: `"softplus"` (default) or `"relu"`.

    The free parameters are the tuple `(theta_ee, theta_ei, theta_ie)` of shapes
    `(n_post, n_pre)`, `(n_post, n_inhibitory)`, `(n_inhibitory, n_pre)`.
    """

    n_inhibitory: Any = eqx.field(static=True)
    magnitude: str = eqx.field(static=True, default="softplus")

    def __check_init__(self):
        _check_magnitude("DANN", self.magnitude)
        if isinstance(self.n_inhibitory, bool) or not isinstance(self.n_inhibitory, int) or self.n_inhibitory < 1:
            raise ValueError(
                f"DANN n_inhibitory [neurons] must be an integer in [1, inf), got {self.n_inhibitory!r}."
            )

    def _bind(self, layout: _Layout) -> DANN:
        if not layout.dense:
            raise ValueError(
                "DANN needs the dense layout (its weights are a matrix product); build the "
                "projection with layout=nj.connectivity.Dense()."
            )
        return self

    def init(self, weights, valid=None):
        weights = jnp.asarray(weights, float)
        if weights.ndim != 2:
            raise ValueError(f"DANN weights must be a (n_post, n_pre) matrix, got shape {weights.shape}.")
        w_ee = jnp.abs(weights)
        w_ie = jnp.broadcast_to(jnp.mean(w_ee, axis=0), (self.n_inhibitory, weights.shape[1]))
        w_ei = jnp.full((weights.shape[0], self.n_inhibitory), 1.0 / self.n_inhibitory)
        inv = lambda m: _inverse_magnitude(self.magnitude, m)  # noqa: E731
        return (inv(w_ee), inv(w_ei), inv(w_ie))

    def apply(self, free, w0=None):
        ee, ei, ie = (_magnitude(self.magnitude, f) for f in free)
        return ee - ei @ ie


class Mask(AbstractConstraint):
    r"""Only the masked entries train; the others keep their initial values exactly.

    $$W = \begin{cases} \theta & \text{mask set} \\ w_0 & \text{otherwise}\end{cases}$$

    A connectome mask (only existing synapses train, absent ones stay 0) or a
    trainable-fraction mask (`Mask.fraction`, Rajan, Harvey & Tank 2016). The unmasked
    entries are selected with `jnp.where`, so they stay bit-identical whatever the
    optimiser does to their free values (weight decay included).

    **Arguments:**

    - `mask`: Boolean array of shape `(n_post, n_pre)` (for a sparse layout it is read
      at each synapse), True where the weight trains.
    """

    mask: Any = eqx.field(converter=_as_mask)

    def __check_init__(self):
        if np.ndim(self.mask) < 1:
            raise ValueError(f"Mask mask must be a boolean (n_post, n_pre) array, got {self.mask!r}.")

    @classmethod
    def fraction(cls, key: PRNGKeyArray, shape: tuple[int, ...], fraction: float | int) -> Mask:
        """A mask with `round(fraction * size)` entries set, chosen uniformly at random.

        **Arguments:**

        - `key`: PRNG key.
        - `shape`: The weights' shape, `(n_post, n_pre)`.
        - `fraction`: Fraction of entries that train, in (0, 1].
        """
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
            raise ValueError(f"Mask.fraction fraction must lie in (0, 1], got {fraction!r}.")
        size = math.prod(shape)
        k = max(1, round(fraction * size))
        chosen = jax.random.permutation(key, size)[:k]
        return cls(jnp.zeros(size, bool).at[chosen].set(True).reshape(shape))

    @classmethod
    def presynaptic(cls, key: PRNGKeyArray, shape: tuple[int, int], fraction: float | int) -> Mask:
        """A mask of all the outgoing weights of `round(fraction * n_pre)` presynaptic
        neurons chosen uniformly at random: whole columns of the `(n_post, n_pre)` weights,
        as in PINning (Rajan, Harvey & Tank 2016), so a fraction of about `fraction` of the
        synapses trains. A block, which `nj.train.force` trains with one shared RLS
        matrix (any other mask takes one matrix per postsynaptic row).

        **Arguments:**

        - `key`: PRNG key.
        - `shape`: The weights' shape, `(n_post, n_pre)`.
        - `fraction`: Fraction of presynaptic neurons whose outgoing weights train, in (0, 1].
        """
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
            raise ValueError(f"Mask.presynaptic fraction must lie in (0, 1], got {fraction!r}.")
        if len(shape) != 2:
            raise ValueError(f"Mask.presynaptic shape must be (n_post, n_pre), got {shape!r}.")
        n_post, n_pre = shape
        k = max(1, round(fraction * n_pre))
        chosen = jax.random.permutation(key, n_pre)[:k]
        cols = jnp.zeros(n_pre, bool).at[chosen].set(True)
        return cls(jnp.broadcast_to(cols, (n_post, n_pre)))

    def _bind(self, layout: _Layout) -> Mask:
        return Mask(layout.gather(self.mask, "Mask mask").astype(bool))

    def _check_shape(self, weights):
        if jnp.shape(self.mask) != jnp.shape(weights):
            raise ValueError(
                f"Mask mask must have the weights' shape {jnp.shape(weights)}, got "
                f"{jnp.shape(self.mask)}."
            )

    def init(self, weights, valid=None):
        weights = jnp.asarray(weights, float)
        self._check_shape(weights)
        return weights

    def apply(self, free, w0):
        return jnp.where(jnp.asarray(self.mask, bool), free, w0)


class LowRankFactors(AbstractConstraint):
    r"""Train the structured part of a low-rank connectivity, keeping its random part:

    $$W = W_0 + \frac{m n^T - m_0 n_0^T}{N},$$

    with $m$ `(n_post, rank)` and $n$ `(n_pre, rank)` the free parameters, starting at
    the vectors the network was built from (`nj.connectivity.LowRank`'s `m` and `n`),
    and $N$ = `n_pre`. For `LowRank(m0, n0, g)` weights $W_0 = m_0 n_0^T / N + g\chi$,
    so $W = m n^T / N + g\chi$ at every step: the factors are differentiable while
    $\chi$ stays fixed. Dense layout only (the support is all pairs).

    **Arguments:**

    - `m`, `n`: The initial factors, `(n_post,)` / `(n_post, rank)` and `(n_pre,)` /
      `(n_pre, rank)`, e.g. `rule.m, rule.n` of the `LowRank` rule.

    !!! example
        ```python
        rule = nj.connectivity.LowRank.gaussian(key, 500, 2.0, 1.0, g=0.5)
        model = nj.train.constrain(model, {"X->X": nj.train.LowRankFactors(rule.m, rule.n)})
        model.params()["X->X.weight.free.m"]        # (500, 1), what an optimiser trains
        ```
    """

    # Stored as bytes (static): the initial factors are structure, not leaves an
    # optimiser could move.
    m_bytes: bytes = eqx.field(static=True)
    n_bytes: bytes = eqx.field(static=True)
    m_shape: tuple[int, int] = eqx.field(static=True)
    n_shape: tuple[int, int] = eqx.field(static=True)

    def __init__(self, m, n):
        m, n = low_rank_factors(m, n, "LowRankFactors")
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(n))):
            raise ValueError("LowRankFactors m and n must be finite.")
        self.m_bytes, self.n_bytes = m.tobytes(), n.tobytes()
        self.m_shape, self.n_shape = m.shape, n.shape

    @property
    def m0(self) -> np.ndarray:
        return np.frombuffer(self.m_bytes, np.float64).reshape(self.m_shape)

    @property
    def n0(self) -> np.ndarray:
        return np.frombuffer(self.n_bytes, np.float64).reshape(self.n_shape)

    def _bind(self, layout: _Layout) -> LowRankFactors:
        if not layout.dense:
            raise ValueError("LowRankFactors needs the Dense layout (all pairs are synapses).")
        if self.m_shape[0] != layout.n_post or self.n_shape[0] != layout.n_pre:
            raise ValueError(
                f"LowRankFactors m and n must have n_post = {layout.n_post} and n_pre = "
                f"{layout.n_pre} rows, got {self.m_shape[0]} and {self.n_shape[0]}."
            )
        return self

    def init(self, weights, valid=None):
        dtype = jnp.result_type(float)
        return {"m": jnp.asarray(self.m0, dtype), "n": jnp.asarray(self.n0, dtype)}

    def apply(self, free, w0):
        dtype = jnp.result_type(w0)
        m0, n0 = jnp.asarray(self.m0, dtype), jnp.asarray(self.n0, dtype)
        return w0 + (free["m"] @ free["n"].T - m0 @ n0.T) / self.n_shape[0]


_PROFILE_KINDS = ("gaussian", "exponential", "von_mises")


class Profile(AbstractConstraint):
    r"""Weights set by a profile of the distance between neurons (or of the difference
    of a feature), with a differentiable amplitude and width, on a fixed support:

    $$W_{ij} = a\, f(d_{ij} / \sigma) \text{ for every existing synapse}, \quad 0 \text{ elsewhere},$$

    with $f(x) = e^{-x^2/2}$ (Gaussian), $e^{-x}$ (exponential), or for a periodic
    feature of period $L$ the von Mises profile $e^{\kappa(\cos(2\pi d / L) - 1)}$.
    $d_{ij}$ is the distance in the populations' space (minimum image across periodic
    boundaries), or the difference of the feature named by `feature`. The synapses that
    exist are those the network was built with (e.g. by `DistanceDependent` or
    `FeatureDependent`, whose probability profile may differ from this strength
    profile); only $a$ and the width are free, so the profile's shape is fitted while
    the support stays fixed (the connectivity issue's "structured weights whose
    parameters are differentiable when the support is fixed").

    The free parameters are `"amplitude"` (the weight at $d = 0$, in the receptor's
    unit; its sign is the projection's) and `"log_width"` ($\log \sigma$, $\sigma$ in
    the space's or feature's unit; for `"von_mises"`, `"log_kappa"` = $\log \kappa$):
    positive widths by construction.

    **Arguments:**

    - `amplitude`: The initial weight at distance 0 (units of the receptor), finite.
    - `width`: The initial width $\sigma$ (> 0, the space's unit), or for `"von_mises"`
      the concentration $\kappa$ (> 0).
    - `profile`: `"gaussian"` (default), `"exponential"` or `"von_mises"` (a feature or
      space that is a `Ring`).
    - `feature`: The name of a feature of both populations (`Population(features=...)`),
      or `None` (default): their `space`.

    Works on dense and sparse layouts, through `nj.train.constrain` only (it reads the
    populations' positions):

    !!! example
        ```python
        model = nj.train.constrain(model, {"E->E": nj.train.Profile(2.0, 0.1)})
        model.params()["E->E.weight.free.log_width"]   # trained with the amplitude
        ```
    """

    amplitude: float = eqx.field(static=True)
    width: float = eqx.field(static=True)
    profile: str = eqx.field(static=True, default="gaussian")
    feature: str | None = eqx.field(static=True, default=None)
    # Fixed by `_place` (coordinates as bytes: structure, never a trainable leaf).
    pre_bytes: bytes | None = eqx.field(static=True, default=None)
    post_bytes: bytes | None = eqx.field(static=True, default=None)
    dim: int = eqx.field(static=True, default=1)
    extent: tuple | None = eqx.field(static=True, default=None)
    # Fixed by `_bind` / `_resolve`: the synapses that exist, and where they point.
    targets: Any = None
    support: Any = None
    dense: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if self.profile not in _PROFILE_KINDS:
            raise ValueError(f"Profile profile must be one of {_PROFILE_KINDS}, got {self.profile!r}.")
        what = "kappa" if self.profile == "von_mises" else "width [space units]"
        for name, value in (("amplitude", self.amplitude), (what, self.width)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise ValueError(f"Profile {name} must be a number, got {type(value).__name__}.")
        if not math.isfinite(self.amplitude):
            raise ValueError(f"Profile amplitude must be finite, got {self.amplitude}.")
        if not (math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"Profile {what} must lie in (0, inf), got {self.width}.")

    def _space(self, pop):
        if self.feature is None:
            if pop.space is None:
                raise ValueError(
                    f"Profile: population {pop.name!r} has no space; give it one "
                    "(Population(..., space=nj.connectivity.Ring(length=1.0))) or name a "
                    "feature (Profile(..., feature='orientation'))."
                )
            return pop.space
        if self.feature not in pop.features:
            raise ValueError(
                f"Profile: population {pop.name!r} has no feature {self.feature!r}; it has "
                f"{sorted(pop.features)}."
            )
        return pop.features[self.feature]

    def _place(self, pre, post) -> Profile:
        pre_space, post_space = self._space(pre), self._space(post)
        if pre_space.geometry != post_space.geometry:
            raise ValueError(
                f"Profile: populations {pre.name!r} and {post.name!r} lie in different spaces "
                f"({pre_space.geometry} and {post_space.geometry})."
            )
        if self.profile == "von_mises" and not (pre_space.periodic and len(pre_space.extent) == 1):
            raise ValueError(
                f"Profile 'von_mises' needs a periodic one-dimensional space or feature (a Ring); "
                f"{pre.name!r} has a {type(pre_space).__name__}."
            )
        xyz_pre = np.asarray(pre_space.coordinates(pre.n), np.float64)
        xyz_post = np.asarray(post_space.coordinates(post.n), np.float64)
        return dataclasses.replace(
            self, pre_bytes=xyz_pre.tobytes(), post_bytes=xyz_post.tobytes(),
            dim=xyz_pre.shape[1], extent=tuple(pre_space.extent) if pre_space.periodic else None)

    def _bind(self, layout: _Layout) -> Profile:
        if self.pre_bytes is None:
            raise ValueError(
                "Profile reads the populations' positions: apply it with "
                "nj.train.constrain(model, {projection: Profile(...)})."
            )
        n_pre = len(self.pre_bytes) // (8 * self.dim)
        n_post = len(self.post_bytes) // (8 * self.dim)
        if (n_pre, n_post) != (layout.n_pre, layout.n_post):
            raise ValueError(
                f"Profile was placed for {n_pre} -> {n_post} neurons but the projection has "
                f"{layout.n_pre} -> {layout.n_post}."
            )
        targets = None if layout.dense else layout.targets
        return dataclasses.replace(self, targets=targets, dense=layout.dense)

    def _resolve(self, weights, valid) -> Profile:
        # The support: the synapses the network was built with (bool, never trained).
        support = (jnp.asarray(weights) != 0) if self.dense else valid
        return dataclasses.replace(self, support=support)

    def init(self, weights, valid=None):
        dtype = jnp.result_type(float)
        name = "log_kappa" if self.profile == "von_mises" else "log_width"
        return {"amplitude": jnp.asarray(self.amplitude, dtype),
                name: jnp.asarray(math.log(self.width), dtype)}

    def distances(self, dtype=None) -> Float[Array, "..."]:
        """The distance [space units] of every pair, in the layout's shape: `(n_post,
        n_pre)` for a dense projection, `(n_pre, max_out)` (padding: 0) for a sparse
        one; for `"von_mises"` the wrapped signed difference."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        pre = jnp.asarray(np.frombuffer(self.pre_bytes, np.float64).reshape(-1, self.dim), dtype)
        post = jnp.asarray(np.frombuffer(self.post_bytes, np.float64).reshape(-1, self.dim), dtype)
        if self.dense:
            disp = post[:, None, :] - pre[None, :, :]
        else:
            n_post = post.shape[0]
            safe = jnp.minimum(self.targets, n_post - 1)
            disp = post[safe] - pre[:, None, :]
        if self.extent is not None:
            ext = jnp.asarray(self.extent, dtype).reshape((1,) * (disp.ndim - 1) + (-1,))
            disp = disp - ext * jnp.round(disp / ext)
        if self.profile == "von_mises":
            return disp[..., 0]
        return jnp.sqrt(jnp.sum(disp * disp, axis=-1))

    def apply(self, free, w0=None):
        dtype = jnp.result_type(free["amplitude"])
        d = self.distances(dtype)
        if self.profile == "von_mises":
            kappa = jnp.exp(free["log_kappa"])
            f = jnp.exp(kappa * (jnp.cos(2.0 * jnp.pi * d / self.extent[0]) - 1.0))
        else:
            x = d / jnp.exp(free["log_width"])
            f = jnp.exp(-0.5 * x * x) if self.profile == "gaussian" else jnp.exp(-x)
        return jnp.where(self.support, free["amplitude"] * f, 0.0)


class Bounded(AbstractConstraint):
    r"""Each weight within bounds, and within `max_change` of its initial value.

    With both bounds finite (after intersecting $[lo, hi]$ with
    $[w_0 - c, w_0 + c]$ when `max_change` $c$ is given),

    $$W = m + h \tanh\theta, \qquad m = \tfrac{lo' + hi'}{2},\ h = \tfrac{hi' - lo'}{2},$$

    with one finite bound $W = lo + \mathrm{softplus}(\theta)$ or
    $hi - \mathrm{softplus}(\theta)$. The result is also clipped to the bounds, which
    changes nothing but floating-point rounding, so the bounds hold exactly. An initial
    weight on a bound starts a hair (1e-6 of the interval) inside it, where the
    gradient is not zero.

    **Arguments:**

    - `lo`, `hi`: Bounds in the weights' units, `lo < hi` (`-inf` / `inf`: none).
    - `max_change`: Largest allowed $|W - w_0|$ in the weights' units, in (0, inf),
      or `None` (no limit).

    !!! example
        ```python
        nj.train.Bounded(max_change=0.1)      # each weight within 0.1 of its start
        nj.train.Bounded(lo=0.0, hi=2.0)
        ```
    """

    lo: float | int = eqx.field(static=True, default=-math.inf)
    hi: float | int = eqx.field(static=True, default=math.inf)
    max_change: float | int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        for name in ("lo", "hi"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                raise ValueError(f"Bounded {name} must be a number (inf for no bound), got {v!r}.")
        if not self.lo < self.hi:
            raise ValueError(
                f"Bounded needs lo < hi, got lo = {self.lo!r} and hi = {self.hi!r}."
            )
        if self.max_change is not None and not (
            isinstance(self.max_change, (int, float)) and 0.0 < self.max_change < math.inf
        ):
            raise ValueError(
                f"Bounded max_change must lie in (0, inf) or be None, got {self.max_change!r}."
            )
        if math.isinf(self.lo) and math.isinf(self.hi) and self.max_change is None:
            raise ValueError("Bounded needs a finite lo or hi, or max_change.")

    def _bounds(self, w0):
        lo = jnp.full(jnp.shape(w0), self.lo, float)
        hi = jnp.full(jnp.shape(w0), self.hi, float)
        if self.max_change is not None:
            lo = jnp.maximum(lo, w0 - self.max_change)
            hi = jnp.minimum(hi, w0 + self.max_change)
        return lo, hi

    def init(self, weights, valid=None):
        w = jnp.asarray(weights, float)
        outside = (w < self.lo) | (w > self.hi)
        if valid is not None:
            outside = outside & valid
        if np.any(np.asarray(outside)):
            raise ValueError(
                f"Bounded: initial weights must lie in [lo, hi] = [{self.lo:g}, {self.hi:g}], "
                f"got values in [{float(jnp.min(w)):g}, {float(jnp.max(w)):g}]."
            )
        lo, hi = self._bounds(w)
        if self.max_change is not None or not (math.isinf(self.lo) or math.isinf(self.hi)):
            p = (w - lo) / (hi - lo)
            p = jnp.clip(p, 1e-6, 1 - 1e-6)
            if valid is not None:
                p = jnp.where(valid, p, 0.5)
            theta = jnp.arctanh(2.0 * p - 1.0)
            if self.max_change is not None and math.isinf(self.lo) and math.isinf(self.hi):
                theta = jnp.zeros_like(w)  # exactly at the start: tanh(0) = 0
            return theta
        gap = (w - self.lo) if math.isfinite(self.lo) else (self.hi - w)
        if valid is not None:
            gap = jnp.where(valid, gap, 1.0)
        return _inverse_magnitude("softplus", gap)

    def apply(self, free, w0):
        w0 = jnp.asarray(w0, float)
        lo, hi = self._bounds(w0)
        if self.max_change is not None or not (math.isinf(self.lo) or math.isinf(self.hi)):
            if self.max_change is not None and math.isinf(self.lo) and math.isinf(self.hi):
                w = w0 + self.max_change * jnp.tanh(free)
            else:
                w = 0.5 * (lo + hi) + 0.5 * (hi - lo) * jnp.tanh(free)
        elif math.isfinite(self.lo):
            w = self.lo + jax.nn.softplus(free)
        else:
            w = self.hi - jax.nn.softplus(free)
        return jnp.clip(w, lo, hi)


class Frozen(eqx.Module):
    """Marks a part of a pytree as never trained: `trainable` (and so `fit`) leaves
    every leaf inside a `Frozen` out of the trained partition. Read the value with
    `.value`; gradients through it are stopped as well.

    **Fields:**

    - `value`: Any pytree.
    """

    value: Any

    def get(self):
        """The value, with gradients stopped."""
        return jax.lax.stop_gradient(self.value)


def _layout(container) -> _Layout:
    if isinstance(container, DenseWeights):
        return _Layout(shape=(container.n_post, container.n_pre), n_pre=container.n_pre,
                       n_post=container.n_post, dense=True)
    return _Layout(shape=container.targets.shape, n_pre=container.n_pre, n_post=container.n_post,
                   dense=False, targets=container.targets)


def _per_synapse(container):
    """The container with one weight per synapse (a shared scalar weight expanded)."""
    if isinstance(container, DenseWeights):
        return container if container.counts is None else DenseWeights(weights=container.matrix())
    if jnp.ndim(container.weights) == 0:
        valid = container.targets < container.n_post
        w = jnp.where(valid, container.weights, 0.0).astype(float)
        return eqx.tree_at(lambda c: c.weights, container, w)
    return container


def constrain_weights(container, constraint: AbstractConstraint) -> ConstrainedWeights:
    """A weights container (`DenseWeights` or `SparseWeights`) under `constraint`.

    A shared scalar weight is first expanded to one weight per synapse. The free
    parameters are initialised from the container's weights (see each constraint)."""
    if isinstance(container, ConstrainedWeights):
        raise ValueError("these weights are already constrained; constrain the original container.")
    if isinstance(container, ProceduralWeights):
        raise ValueError(
            "a Procedural projection regenerates its weights from a seed and has no stored "
            "weights to constrain; use a stored layout (Dense() or Sparse())."
        )
    if not isinstance(container, (DenseWeights, SparseWeights)):
        raise ValueError(
            f"constrain needs DenseWeights or SparseWeights, got {type(container).__name__}."
        )
    if not isinstance(constraint, AbstractConstraint):
        raise ValueError(
            f"constraint must be an nj.train constraint (Dale, DANN, Mask, Bounded), got "
            f"{type(constraint).__name__}."
        )
    # A dense container from a connectivity rule records which synapses exist (its
    # counts); the others are no synapses, not weights at 0, and stay absent.
    exists = None
    if isinstance(container, DenseWeights) and container.counts is not None:
        exists = container.counts > 0
    base = _per_synapse(container)
    layout = _layout(base)
    valid = layout.valid if exists is None else exists
    bound = constraint._bind(layout)
    bound = bound._resolve(base.weights, valid)
    free = bound.init(base.weights, valid)
    return ConstrainedWeights(base=base, constraint=bound, free=free, exists=exists)


def constrain(model, constraints: dict[str, AbstractConstraint]):
    """A copy of a built network with constraints on the projections named.

    **Arguments:**

    - `model`: A `NetworkModel` (from `Network.build`).
    - `constraints`: `{projection name or glob pattern: constraint}`; e.g.
      `{"E->*": Dale(+1), "I->*": Dale(-1)}` or `{"R->R": Mask(connectome)}`; the name
      of a multi-target projection's shared weight (`"I->{E,I}"`, as `model.params()`
      shows it) selects each of its targets. Every pattern must match at least one
      projection, and a projection at most one pattern. `Dale()` takes each
      projection's sign from its presynaptic population (`Population(sign=...)`),
      except on a `Conductance` (or `NMDA`) receptor, whose weights are conductances
      and stay >= 0 (inhibition comes from the reversal potential).

    Returns the model with each matched projection's weights in a
    `nj.connectivity.ConstrainedWeights`; its free parameters appear in
    `model.params()` as `"<projection>.weight.free..."`.
    """
    names = [p.name for p in model.projections]
    # A multi-target projection's shared weight is named after the group in
    # `model.params()` ("I->{E,I}.weight"), so the group's name selects all its targets.
    groups = getattr(model.projections, "groups", ())
    aliases = {j: [name] for j, name in enumerate(names)}
    for group, members in groups:
        for j in members:
            aliases[j].append(group)
    chosen: dict[int, AbstractConstraint] = {}
    for pattern, constraint in constraints.items():
        hits = [j for j in aliases if any(fnmatch.fnmatchcase(n, pattern) for n in aliases[j])]
        if not hits:
            shown = names + [group for group, _ in groups]
            raise ValueError(
                f"constrain: no projection matches {pattern!r}; the network has {shown}."
            )
        for j in hits:
            if j in chosen:
                raise ValueError(f"constrain: projection {names[j]!r} matches more than one pattern.")
            chosen[j] = constraint
    projections = list(model.projections)
    for j, constraint in chosen.items():
        proj = projections[j]
        declared = model.populations[proj.pre].sign
        if isinstance(constraint, Dale) and _is_conductance(proj.receptor):
            # A conductance is never negative whatever the population's sign: the
            # reversal potential makes it inhibitory, so Dale's law keeps it >= 0.
            if constraint.sign is not None and np.any(np.asarray(constraint.sign) != 1):
                raise ValueError(
                    f"constrain: projection {proj.name!r} has a Conductance receptor, whose "
                    "weights are never negative (inhibition is a negative reversal potential); "
                    "Dale's law keeps them >= 0: use Dale() or Dale(+1)."
                )
            declared = 1
        if isinstance(constraint, Dale) and declared is not None:
            if constraint.sign is None:
                constraint = Dale(sign=declared, magnitude=constraint.magnitude, mask=constraint.mask)
            elif np.ndim(constraint.sign) == 0 and int(constraint.sign) != declared:
                raise ValueError(
                    f"constrain: projection {proj.name!r} gets Dale({int(constraint.sign):+d}), but "
                    f"population {model.populations[proj.pre].name!r} declares sign={declared:+d}."
                )
        try:
            constraint = constraint._place(model.populations[proj.pre], model.populations[proj.post])
            container = constrain_weights(proj.weights, constraint)
        except ValueError as err:
            raise ValueError(f"projection {proj.name!r}: {err}") from None
        projections[j] = eqx.tree_at(lambda p: p.weights, proj, container)
    return eqx.tree_at(lambda m: m.projections, model, _regroup(model, projections))


def _is_conductance(receptor) -> bool:
    from ..synapses import Conductance, NMDA

    return isinstance(receptor, (Conductance, NMDA))


def resolve(model):
    """A copy of a network with every constrained projection's container replaced by the
    plain one holding its current weights (`ConstrainedWeights.resolved()`): for
    analysis, saving or sharding a trained model, where the free parameters no longer
    matter. Differentiable; the constraint is no longer enforced on the copy."""
    projections = tuple(
        eqx.tree_at(lambda p: p.weights, proj, proj.weights.resolved())
        if isinstance(proj.weights, ConstrainedWeights) else proj
        for proj in model.projections
    )
    return eqx.tree_at(lambda m: m.projections, model, _regroup(model, projections))


def _regroup(model, projections):
    """`projections` keeping the model's shared weights (`SharedProjections`) for the
    groups whose targets all still hold their plain scalar weight: a constrained target
    has per-synapse free values, which ends its group's sharing."""
    from ..network import SharedProjections

    return SharedProjections(projections, getattr(model.projections, "groups", ()))


def _patterns(spec) -> tuple[str, ...]:
    return (spec,) if isinstance(spec, str) else tuple(spec)


def trainable(model, include: str | Sequence[str] = "*", exclude: str | Sequence[str] = ()):
    """Which leaves of `model` a fit trains: a pytree of booleans shaped like `model`
    (an `eqx.partition` filter spec).

    For a `NetworkModel` the candidates are the parameters of `model.params()` (so
    connectivity, delays and a constrained projection's fixed data are never trained),
    selected by name: a parameter trains if it matches a glob in `include` and none in
    `exclude`, e.g. `trainable(model, "*.weight*")` (the weights only) or
    `trainable(model, exclude="*.tau")`. For another pytree the candidates are its
    float array leaves, named by `jax.tree_util.keystr` of their path (e.g.
    `".layers[0].weight"`). Leaves inside a `Frozen`, and a `ConstrainedWeights`'
    structure and constraint, never train.
    """
    from ..network import NetworkModel, _parameter_paths

    include, exclude = _patterns(include), _patterns(exclude)

    def chosen(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in include) and not any(
            fnmatch.fnmatchcase(name, p) for p in exclude
        )

    is_frozen = lambda x: isinstance(x, Frozen)  # noqa: E731
    # A Frozen node becomes one False: a prefix of its subtree in the filter spec.
    false = jax.tree.map(lambda _: False, model, is_leaf=is_frozen)
    if isinstance(model, NetworkModel):
        getters = [get for name, get in _parameter_paths(model).items() if chosen(name)]
    else:
        getters = []
        leaves = jax.tree_util.tree_flatten_with_path(
            model, is_leaf=lambda x: isinstance(x, (Frozen, ConstrainedWeights))
        )[0]
        for path, leaf in leaves:
            if isinstance(leaf, Frozen):
                continue
            if isinstance(leaf, ConstrainedWeights):
                for sub, x in jax.tree_util.tree_flatten_with_path(leaf.free)[0]:
                    name = jax.tree_util.keystr(path) + ".free" + jax.tree_util.keystr(sub)
                    if eqx.is_inexact_array(x) and chosen(name):
                        getters.append(_path_getter(path + (jax.tree_util.GetAttrKey("free"),) + sub))
                continue
            if eqx.is_inexact_array(leaf) and chosen(jax.tree_util.keystr(path)):
                getters.append(_path_getter(path))
    getters = [g for g in getters if eqx.is_inexact_array(g(model))]
    if not getters:
        return false
    return eqx.tree_at(lambda t: tuple(g(t) for g in getters), false, tuple(True for _ in getters))


def _path_getter(path):
    def get(tree):
        for key in path:
            if isinstance(key, jax.tree_util.GetAttrKey):
                tree = getattr(tree, key.name)
            elif isinstance(key, jax.tree_util.SequenceKey):
                tree = tree[key.idx]
            elif isinstance(key, jax.tree_util.DictKey):
                tree = tree[key.key]
            else:
                raise ValueError(f"trainable: unsupported path element {key!r}.")
        return tree

    return get
