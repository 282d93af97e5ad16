import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurojax.surrogate import (
    Arctan,
    Exponential,
    FastSigmoid,
    Sigmoid,
    Triangle,
    spike,
)


# Closed forms of the surrogate derivatives, written independently of the library
# (numpy; the sigmoid one as sech^2, which equals 4 s (1 - s) for s = sigmoid(slope x)).
def _fast_sigmoid(x, b):
    return 1.0 / (1.0 + b * np.abs(x)) ** 2


def _triangle(x, b):
    return np.maximum(0.0, 1.0 - b * np.abs(x))


def _arctan(x, b):
    return 1.0 / (1.0 + (np.pi * b * x) ** 2)


def _exponential(x, b):
    return np.exp(-b * np.abs(x))


def _sigmoid(x, b):
    return 1.0 / np.cosh(b * x / 2.0) ** 2


# (class, closed form, the x at which the derivative is 1/2 when slope = 1 [mV])
SURROGATES = [
    (FastSigmoid, _fast_sigmoid, math.sqrt(2.0) - 1.0),
    (Triangle, _triangle, 0.5),
    (Arctan, _arctan, 1.0 / math.pi),
    (Exponential, _exponential, math.log(2.0)),
    (Sigmoid, _sigmoid, 2.0 * math.acosh(math.sqrt(2.0))),
]
IDS = [cls.__name__ for cls, _, _ in SURROGATES]


def _derivative(fn, x):
    return jax.vmap(jax.grad(fn))(jnp.asarray(x))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("cls", [cls for cls, _, _ in SURROGATES], ids=IDS)
def test_forward_is_exact_heaviside(cls, dtype):
    x = jnp.array(
        [-jnp.inf, -1e3, -1.0, -1e-30, -0.0, 0.0, 1e-30, 1.0, 1e3, jnp.inf], dtype
    )
    expected = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], dtype)
    for fn in (cls(), cls(slope=0.1), cls(slope=50.0)):
        out = fn(x)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, expected)
    if cls is FastSigmoid:
        np.testing.assert_array_equal(spike(x), expected)


@pytest.mark.parametrize("cls, closed_form, _", SURROGATES, ids=IDS)
def test_derivative_matches_closed_form(cls, closed_form, _):
    # Symmetric points near and far from threshold, inside and outside the triangle's
    # support; rtol 1e-12 allows only float64 rounding of the two formulas.
    x = np.array([-3.0, -0.7, -0.2, -0.03, 0.0, 0.03, 0.2, 0.7, 3.0])
    for slope in (0.5, 2.0, 5.0, 20.0):
        d = _derivative(cls(slope=slope), x)
        np.testing.assert_allclose(d, closed_form(x, slope), rtol=1e-12, atol=1e-15)
        assert d[4] == 1.0  # peak value 1 at threshold
        np.testing.assert_allclose(d, d[::-1], rtol=1e-12, atol=1e-15)  # symmetric
        # Decays away from threshold: non-increasing in |x|, strictly below 1 off 0.
        right = np.asarray(d[4:])
        assert np.all(np.diff(right) <= 0.0)
        assert np.all(right[1:] < 1.0)


def test_spike_function_uses_fast_sigmoid():
    x = np.array([-0.4, 0.0, 0.1, 2.0])
    np.testing.assert_allclose(
        _derivative(lambda y: spike(y, 3.0), x), _fast_sigmoid(x, 3.0), rtol=1e-12
    )
    np.testing.assert_array_equal(
        _derivative(spike, x), _derivative(FastSigmoid(slope=5.0), x)
    )


@pytest.mark.parametrize("cls, closed_form, x_half", SURROGATES, ids=IDS)
def test_slope_sets_width(cls, closed_form, x_half):
    # Every surrogate is a function of slope * x, so its half-maximum point is
    # x_half / slope: the width scales exactly as 1/slope.
    for slope in (1.0, 4.0, 10.0):
        d = _derivative(cls(slope=slope), [x_half / slope, -x_half / slope])
        np.testing.assert_allclose(d, [0.5, 0.5], rtol=1e-12)
    # A steeper slope gives a narrower surrogate: smaller derivative off threshold.
    x = jnp.array([0.05, 0.1, 0.15])
    assert np.all(_derivative(cls(slope=10.0), x) < _derivative(cls(slope=2.0), x))


@pytest.mark.parametrize("slope", [0.0, -1.0, float("nan")])
@pytest.mark.parametrize("cls", [cls for cls, _, _ in SURROGATES], ids=IDS)
def test_nonpositive_slope_raises(cls, slope):
    with pytest.raises(ValueError, match=r"slope \[1/mV\]"):
        cls(slope=slope)


@pytest.mark.parametrize("slope", [0.0, -2.0])
def test_spike_function_rejects_nonpositive_slope(slope):
    with pytest.raises(ValueError, match=r"slope \[1/mV\]"):
        spike(jnp.zeros(3), slope)


@pytest.mark.parametrize("cls", [cls for cls, _, _ in SURROGATES], ids=IDS)
def test_slope_is_static_not_a_leaf(cls):
    # The slope is configuration: neurons holding a surrogate stay hashable, and
    # differentiating a model does not produce a gradient for it.
    fn = cls(slope=3.0)
    assert jax.tree_util.tree_leaves(fn) == []
    assert hash(fn) == hash(cls(slope=3.0))


@pytest.mark.parametrize("cls", [cls for cls, _, _ in SURROGATES], ids=IDS)
def test_jit_and_vmap_match_eager(cls):
    fn = cls(slope=4.0)
    x = jnp.linspace(-0.5, 0.5, 12).reshape(3, 4)
    weights = jnp.arange(1.0, 13.0).reshape(3, 4)

    def value_and_surrogate(y, w):
        return fn(y), jax.grad(lambda z: jnp.sum(fn(z) * w))(y)

    eager_out, eager_grad = value_and_surrogate(x, weights)
    jit_out, jit_grad = jax.jit(value_and_surrogate)(x, weights)
    vmap_out, vmap_grad = jax.vmap(value_and_surrogate)(x, weights)
    for out in (jit_out, vmap_out):
        np.testing.assert_array_equal(out, eager_out)
    for grad in (jit_grad, vmap_grad):
        np.testing.assert_allclose(grad, eager_grad, rtol=1e-14)
    # The gradient is the closed form times each element's cotangent weight.
    closed_form = {c: f for c, f, _ in SURROGATES}[cls]
    np.testing.assert_allclose(
        eager_grad, closed_form(np.asarray(x), 4.0) * np.asarray(weights), rtol=1e-12
    )
