"""Ridge decoders on synthetic data with a known answer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurojax.train import decode, fit_decoder


def _data(n=400, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    w = np.array([[1.0, 0.0], [-2.0, 1.0], [0.0, 0.5], [0.5, 0.0], [0.0, -1.0]])
    y = x @ w + np.array([0.3, -0.7]) + noise * rng.normal(size=(n, 2))
    return jnp.asarray(x), jnp.asarray(y), w


def test_noise_free_readout_is_exact():
    x, y, w = _data()
    dec = fit_decoder(x, y, alpha=0.0)
    # alpha = 0 is least squares: exact on noise-free data up to float64 round-off.
    np.testing.assert_allclose(dec.weights, w, atol=1e-10)
    np.testing.assert_allclose(dec.bias, [0.3, -0.7], atol=1e-10)
    np.testing.assert_allclose(decode(dec, x), y, atol=1e-10)
    one = fit_decoder(x, y[:, 0], alpha=0.0)
    assert one.weights.shape == (5, 1)


def test_ridge_shrinks_towards_zero_by_the_closed_form():
    # With centred orthonormal-like features the ridge solution is (X'X + a I)^-1 X'y;
    # check against numpy's solve of the same normal equations.
    x, y, _ = _data(noise=0.5)
    dec = fit_decoder(x, y, alpha=50.0)
    xc, yc = np.asarray(x) - np.asarray(x).mean(0), np.asarray(y) - np.asarray(y).mean(0)
    expected = np.linalg.solve(xc.T @ xc + 50.0 * np.eye(5), xc.T @ yc)
    np.testing.assert_allclose(dec.weights, expected, rtol=1e-10)
    assert np.linalg.norm(dec.weights) < np.linalg.norm(fit_decoder(x, y, 0.0).weights)


def test_cross_validation_picks_a_sensible_alpha():
    # Noisy, few samples, many useless features: heavy ridge must beat none, and a
    # huge penalty (predicting the mean, R^2 ~ 0) must lose.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 30))
    y = x[:, 0] + 0.5 * rng.normal(size=100)
    dec = fit_decoder(x, y, alpha=(1e-6, 10.0, 1e6), folds=5, key=jax.random.key(0))
    # The best possible R^2 is 1 / (1 + 0.25) = 0.8; 30 features from 80 training
    # samples cost some of it.
    assert dec.alpha == 10.0 and 0.5 < dec.cv_score < 0.8


def test_logistic_decoder_recovers_separable_classes():
    # Three classes, each a Gaussian cloud around its own mean 4 standard deviations
    # apart: the Bayes error is < 1 %, so held-out accuracy must exceed 0.95.
    rng = np.random.default_rng(2)
    means = np.array([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    labels = rng.integers(0, 3, size=300)
    x = means[labels] + rng.normal(size=(300, 2))
    names = np.array([10, 20, 30])[labels]  # any label values
    dec = fit_decoder(x, names, alpha=(0.01, 1.0), kind="logistic", folds=3, key=jax.random.key(0))
    assert dec.cv_score > 0.95 and dec.classes.tolist() == [10, 20, 30]
    pred = decode(dec, means)
    assert pred.tolist() == [10, 20, 30]


def test_bad_input_is_a_clear_error():
    x, y, _ = _data(20)
    with pytest.raises(ValueError, match=r"activity must be \(samples, features\)"):
        fit_decoder(x[0], y)
    with pytest.raises(ValueError, match=r"samples = 20"):
        fit_decoder(x, y[:10])
    with pytest.raises(ValueError, match=r"alpha must be >= 0"):
        fit_decoder(x, y, alpha=-1.0)
    with pytest.raises(ValueError, match=r"folds must be an integer in \[2, 20\]"):
        fit_decoder(x, y, folds=1)
    with pytest.raises(ValueError, match="kind must be 'ridge' or 'logistic'"):
        fit_decoder(x, y, kind="svm")
    with pytest.raises(ValueError, match="at least two classes"):
        fit_decoder(x, np.ones(20), kind="logistic")
    with pytest.raises(ValueError, match=r"decode activity must be \(samples, 5\)"):
        decode(fit_decoder(x, y), x[:, :3])
