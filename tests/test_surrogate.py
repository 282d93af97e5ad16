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


# --- amplitude (dampening) -------------------------------------------------------------

from neurojax.surrogate import AbstractSurrogate, Truncated  # noqa: E402


@pytest.mark.parametrize("cls, closed_form, _", SURROGATES, ids=IDS)
def test_amplitude_scales_the_derivative(cls, closed_form, _):
    # derivative = amplitude * shape(slope x): peak value amplitude, width unchanged.
    x = np.array([-0.7, -0.03, 0.0, 0.2, 3.0])
    for amplitude in (0.3, 1.0, 2.5):
        d = _derivative(cls(slope=2.0, amplitude=amplitude), x)
        np.testing.assert_allclose(d, amplitude * closed_form(x, 2.0), rtol=1e-12, atol=1e-15)
        assert d[2] == amplitude
    # The forward pass does not depend on it.
    np.testing.assert_array_equal(cls(amplitude=0.3)(jnp.asarray(x)), cls()(jnp.asarray(x)))


@pytest.mark.parametrize("value", [0.0, -0.3, float("nan"), float("inf")])
@pytest.mark.parametrize("cls", [cls for cls, _, _ in SURROGATES], ids=IDS)
def test_invalid_amplitude_or_slope_raises_naming_parameter_unit_and_range(cls, value):
    with pytest.raises(ValueError, match=r"amplitude \(dimensionless\) must lie in \(0, inf\)"):
        cls(amplitude=value)
    with pytest.raises(ValueError, match=r"slope \[1/mV\] must lie in \(0, inf\)"):
        cls(slope=value)


def test_amplitude_is_static_configuration():
    # Slope and amplitude only shape the backward pass: the loss does not depend on
    # them, so as leaves their gradient would be identically zero. Static, they keep
    # surrogates leafless and hashable, and distinct values are distinct configurations.
    fn = Sigmoid(slope=3.0, amplitude=0.3)
    assert jax.tree_util.tree_leaves(fn) == []
    assert hash(fn) == hash(Sigmoid(slope=3.0, amplitude=0.3))
    assert fn != Sigmoid(slope=3.0, amplitude=0.5)


# --- compact support ------------------------------------------------------------------


def test_support_property():
    assert Triangle(slope=4.0).support == 0.25
    for cls in (FastSigmoid, Arctan, Exponential, Sigmoid):
        assert cls(slope=4.0).support is None
    assert Truncated(FastSigmoid(slope=10.0), width=0.3).support == 0.3
    # The narrower of the two supports.
    assert Truncated(Triangle(slope=4.0), width=1.0).support == 0.25
    assert Truncated(Triangle(slope=4.0), width=0.1).support == 0.1
    assert isinstance(Truncated(FastSigmoid(), width=1.0), AbstractSurrogate)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize(
    "fn",
    [Triangle(slope=3.0), Triangle(slope=49.0, amplitude=0.3),
     Truncated(FastSigmoid(slope=10.0), width=0.3), Truncated(Sigmoid(slope=0.1), width=7.0),
     Truncated(Triangle(slope=3.0), width=1.0)],
    ids=["Triangle", "Triangle49", "TruncatedFastSigmoid", "TruncatedSigmoid", "TruncatedTriangle"],
)
def test_derivative_is_exactly_zero_beyond_support_and_unchanged_inside(fn, dtype):
    w = jnp.asarray(fn.support, dtype)
    # The edge itself, the next representable values either side, and far points.
    edge = jnp.stack([w, jnp.nextafter(w, jnp.asarray(0, dtype)), jnp.nextafter(w, jnp.asarray(1e9, dtype))])
    x = jnp.concatenate([edge, -edge, jnp.array([0.0, 0.5, 2.0, 1e4, -1e4], dtype) * w])
    d = _derivative(fn, x)
    outside = np.abs(np.asarray(x)) > np.asarray(w)
    assert outside.sum() == 5
    assert np.all(np.asarray(d)[outside] == 0.0)
    assert np.all(np.isfinite(np.asarray(d)))
    if isinstance(fn, Truncated):  # inside: the inner surrogate's derivative
        inside = ~outside
        np.testing.assert_array_equal(
            np.asarray(d)[inside], np.asarray(_derivative(fn.surrogate, x))[inside]
        )
    np.testing.assert_array_equal(fn(x), (np.asarray(x) >= 0).astype(np.dtype(dtype)))


def test_truncated_fast_sigmoid_closed_form():
    fn = Truncated(FastSigmoid(slope=10.0, amplitude=0.3), width=0.3)
    x = np.array([-1.0, -0.31, -0.3, -0.1, 0.0, 0.05, 0.3, 0.31, 2.0])
    expected = np.where(np.abs(x) <= 0.3, 0.3 * _fast_sigmoid(x, 10.0), 0.0)
    np.testing.assert_allclose(_derivative(fn, x), expected, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("width", [0.0, -1.0, float("nan"), float("inf")])
def test_truncated_rejects_invalid_width(width):
    with pytest.raises(ValueError, match=r"width \[mV\] must lie in \(0, inf\)"):
        Truncated(FastSigmoid(), width=width)


# --- overflow safety ------------------------------------------------------------------

ALL = [cls for cls, _, _ in SURROGATES] + [lambda **kw: Truncated(FastSigmoid(**kw), width=50.0)]
ALL_IDS = IDS + ["TruncatedFastSigmoid"]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("cls", ALL, ids=ALL_IDS)
def test_value_and_derivative_finite_for_large_inputs_at_any_slope(cls, dtype):
    # |x| up to 1e4 mV (and beyond, to inf) at slopes 1e-3..1e3 [1/mV], i.e. |slope x|
    # up to 1e7: no exp of a large positive number, no inf/inf. (snnTorch's sigmoid
    # surrogate returns NaN beyond |u| ~ 3.5 at slope 25.)
    x = jnp.concatenate([
        jnp.linspace(-1e4, 1e4, 101, dtype=dtype),
        jnp.array([-jnp.inf, -3.6, -3.5, -1e-30, 0.0, 1e-30, 3.5, 3.6, jnp.inf], dtype),
    ])
    value_and_grad = jax.vmap(jax.value_and_grad(lambda y, f: f(y)), in_axes=(0, None))
    for slope, amplitude in ((1e-3, 1.0), (1.0, 0.3), (25.0, 1.0), (1e3, 0.3)):
        fn = cls(slope=slope, amplitude=amplitude)
        value, grad = value_and_grad(x, fn)
        assert value.dtype == grad.dtype == dtype
        assert np.all(np.isfinite(np.asarray(value)))
        assert np.all(np.isfinite(np.asarray(grad)))
        assert np.all((np.asarray(grad) >= 0.0) & (np.asarray(grad) <= amplitude))
    # Second derivative (e.g. for Hessian-vector products) is finite in range.
    second = jax.vmap(jax.grad(jax.grad(cls(slope=1e3))))(x[:101])
    assert np.all(np.isfinite(np.asarray(second)))


@pytest.mark.parametrize("cls, closed_form, _", SURROGATES, ids=IDS)
def test_float32_derivative_keeps_relative_accuracy_in_the_tails(cls, closed_form, _):
    # Fail-before: Sigmoid's 4 s (1 - s) rounded 1 - s to 0 in float32 beyond
    # |slope x| ~ 17, giving 0 where the derivative is 4e-8..1e-34.
    z = np.array([0.5, 5.0, 17.0, 20.0, 40.0, 70.0])
    expected = closed_form(np.concatenate([z, -z]), 1.0)
    d = _derivative(cls(slope=1.0), jnp.asarray(np.concatenate([z, -z]), jnp.float32))
    keep = expected > 1e-30  # stay above float32's normal range
    np.testing.assert_allclose(np.asarray(d)[keep], expected[keep], rtol=1e-5)


@pytest.mark.parametrize("cls", ALL, ids=ALL_IDS)
def test_jit_and_vmap_match_eager_with_amplitude(cls):
    fn = cls(slope=4.0, amplitude=0.3)
    x = jnp.linspace(-0.5, 0.5, 12).reshape(3, 4)

    def surrogate_grad(y):
        return jax.grad(lambda z: jnp.sum(fn(z) * jnp.arange(1.0, 13.0).reshape(3, 4)))(y)

    eager = surrogate_grad(x)
    np.testing.assert_allclose(jax.jit(surrogate_grad)(x), eager, rtol=1e-14)
    np.testing.assert_allclose(
        jax.vmap(lambda y: jax.grad(lambda z: jnp.sum(fn(z)))(y))(x),
        jax.vmap(jax.vmap(jax.grad(fn)))(x), rtol=1e-14,
    )
