"""neurojax/analysis/population.py on data with known answers: Welch spectra (scipy's
welch; a sinusoidally modulated Poisson population), Golomb's chi (synchronous vs
independent trains), tuning curves of a known cosine, and participation ratio / PCA
of data with an exactly known covariance."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

import neurojax as nj

A = nj.analysis


def test_power_spectrum_matches_scipy_welch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 1000))
    for seg, m in ((None, 256), (100.0, 200), (75.0, 150)):  # dt = 0.5 ms
        f, p = A.power_spectrum(x, 0.5, segment_ms=seg)
        f_ref, p_ref = scipy.signal.welch(x, fs=2000.0, nperseg=m)
        np.testing.assert_allclose(f, f_ref, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(p), p_ref, rtol=1e-10)


def test_sinusoidally_modulated_poisson_population_peaks_at_its_frequency():
    # r(t) = r0 (1 + m sin(2 pi f t)): the population activity A(t) has a spectral
    # line at f on a flat Poisson floor r0/N (Hz^2/Hz, one-sided 2 r0 / N / 2 ...);
    # the peak must be the bin at f (resolution 1000/segment_ms = 2 Hz).
    rng = np.random.default_rng(1)
    n, bins, dt, f0 = 100, 4000, 1.0, 40.0
    t = dt * np.arange(bins)
    rate = 20.0 * (1.0 + 0.5 * np.sin(2 * math.pi * f0 * t * 1e-3))
    counts = rng.poisson(rate * dt * 1e-3, size=(n, bins)).astype(float)
    f, p = A.power_spectrum(A.population_activity(counts, dt), dt, segment_ms=500.0)
    p = np.asarray(p)
    assert f[np.argmax(p[1:]) + 1] == f0
    # Poisson floor: A = counts/(N dt) has variance r0/(N dt) per sample, i.e. a flat
    # one-sided density 2 r0 / N [Hz^2/Hz] = 0.4; its Welch estimate over 15 segments
    # scatters by ~1/sqrt(15 * ~bins): the median of the high band is within 15 %.
    floor = np.median(p[(f > 100.0) & (f < 450.0)])
    assert abs(floor / (2 * 20.0 / n) - 1.0) < 0.15


def test_synchrony_chi_is_one_for_identical_and_one_over_sqrt_n_for_independent_trains():
    rng = np.random.default_rng(2)
    n, bins = 50, 4000
    one = rng.poisson(0.1, size=bins).astype(float)
    np.testing.assert_allclose(float(A.synchrony_chi(np.tile(one, (n, 1)))), 1.0, rtol=1e-12)
    counts = rng.poisson(0.1, size=(n, bins)).astype(float)
    chi = float(A.synchrony_chi(counts))
    # chi^2 = 1/N + O(sqrt(2/bins)/N) scatter of the variance ratio (relative error of
    # a variance from 4000 samples ~ 2.2 %, 4 of those); N = 50 -> chi ~ 0.141.
    assert abs(chi**2 * n - 1.0) < 4 * math.sqrt(2.0 / bins) + 1.0 / bins * n
    # voltage-like traces: a shared sinusoid plus private noise of equal variance gives
    # chi^2 = (1/2 + 1/(2N)) / 1 -> ~0.51
    t = np.arange(bins)
    v = np.sin(2 * math.pi * t / 100.0)[None] + rng.normal(scale=math.sqrt(0.5), size=(n, bins))
    assert abs(float(A.synchrony_chi(v)) ** 2 - (0.5 + 0.5 / n)) < 0.05
    batched = jax.vmap(A.synchrony_chi)(jnp.stack([jnp.asarray(counts), jnp.asarray(v)]))
    np.testing.assert_allclose(np.asarray(batched), [chi, float(A.synchrony_chi(v))], rtol=1e-12)


def test_tuning_curve_preferred_stimulus_and_selectivity_of_a_known_cosine():
    rng = np.random.default_rng(3)
    angles = np.arange(0.0, 180.0, 22.5)  # 8 orientations
    theta0 = np.array([45.0, 112.5])
    a, b = 10.0, np.array([4.0, 8.0])
    stim = np.repeat(angles, 5)
    mean = a + b[None] * np.cos(2 * np.pi * (stim[:, None] - theta0[None]) / 180.0)
    values, curve = A.tuning_curve(mean, stim)  # noiseless: exact
    np.testing.assert_allclose(np.asarray(values), angles)
    np.testing.assert_allclose(np.asarray(A.preferred_stimulus(values, curve)), theta0)
    np.testing.assert_allclose(np.asarray(A.selectivity_index(values, curve)), b / (2 * a), rtol=1e-12)
    noisy = mean + rng.normal(size=mean.shape)
    _, c = A.tuning_curve(noisy, stim)
    np.testing.assert_allclose(np.asarray(c)[:, 0],
                               [noisy[stim == v, 0].mean() for v in angles], rtol=1e-12)
    _, missing = A.tuning_curve(noisy, stim, values=np.array([0.0, 1.0]))
    assert np.all(np.isnan(np.asarray(missing)[1]))
    # a response at a single direction is fully selective (DSI 1 with period 360)
    single = np.zeros(8)
    single[3] = 5.0
    assert float(A.selectivity_index(np.arange(0.0, 360.0, 45.0), single, 360.0)) == pytest.approx(1.0)


def _data_with_covariance(rng, eigenvalues, samples):
    """Data whose sample covariance (ddof=1) is exactly Q diag(eigenvalues) Q^T."""
    n = len(eigenvalues)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    z = rng.normal(size=(samples, n))
    z -= z.mean(0)
    z, _ = np.linalg.qr(z)  # orthonormal, zero-mean columns
    x = q @ np.diag(np.sqrt(eigenvalues)) @ z.T * math.sqrt(samples - 1)
    return x + rng.normal(size=(n, 1)), q


def test_participation_ratio_and_pca_of_an_exactly_known_covariance():
    rng = np.random.default_rng(4)
    lam = np.array([4.0, 2.0, 1.0, 1.0, 0.5, 0.0])
    x, q = _data_with_covariance(rng, lam, 300)
    np.testing.assert_allclose(float(A.participation_ratio(x)), lam.sum() ** 2 / np.sum(lam**2), rtol=1e-10)
    comps, var, ratio = A.pca(x, 3)
    np.testing.assert_allclose(np.asarray(var), lam[:3], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(ratio), lam[:3] / lam.sum(), rtol=1e-10)
    for k in range(2):  # eigenvectors of the distinct eigenvalues 4 and 2, up to sign (1 is double)
        np.testing.assert_allclose(abs(float(np.asarray(comps)[k] @ q[:, k])), 1.0, rtol=1e-10)
    # isotropic: PR = n; one dimension: PR = 1
    iso, _ = _data_with_covariance(rng, np.ones(6), 300)
    np.testing.assert_allclose(float(A.participation_ratio(iso)), 6.0, rtol=1e-10)
    line, _ = _data_with_covariance(rng, np.array([3.0, 0, 0, 0]), 300)
    np.testing.assert_allclose(float(A.participation_ratio(line)), 1.0, rtol=1e-10)
    # differentiable without an eigendecomposition: gradient vs central difference
    d = rng.normal(size=x.shape)
    g = jax.grad(lambda s: A.participation_ratio(jnp.asarray(x) + s * d))(0.0)
    h = 1e-6
    fd = (float(A.participation_ratio(x + h * d)) - float(A.participation_ratio(x - h * d))) / (2 * h)
    np.testing.assert_allclose(float(g), fd, rtol=1e-6)
    with pytest.raises(ValueError, match="pca k must lie"):
        A.pca(x, 7)


def test_bad_input_raises_a_clear_error():
    with pytest.raises(ValueError, match=r"dt_ms \[ms\]"):
        A.power_spectrum(np.zeros(100), -1.0)
    with pytest.raises(ValueError, match=r"segment_ms \[ms\]"):
        A.power_spectrum(np.zeros(100), 1.0, segment_ms=500.0)
    with pytest.raises(ValueError, match="one stimulus value per trial"):
        A.tuning_curve(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match=r"period_deg \[deg\]"):
        A.selectivity_index(np.zeros(3), np.ones(3), 0.0)


def test_smooth_measures_have_finite_difference_gradients():
    # Correlations, chi and kernel rates are smooth in the data (e.g. a rate model's
    # output): the gradient along a random direction matches a central difference
    # (h = 1e-6 in float64: truncation ~h^2, rounding ~1e-16/h, so rtol 1e-6).
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 60)) + 2.0
    d = rng.normal(size=x.shape)
    h = 1e-6
    # one compiled function exercising all three (a sum of them)
    def f(c):
        return (A.mean_correlation(A.instantaneous_rate(c, 1.0, 2.0)) + A.synchrony_chi(c)
                + 1e-3 * A.instantaneous_rate(c, 1.0, 2.0, "exponential").var())

    along = jax.jit(lambda s: f(jnp.asarray(x) + s * d))
    g = jax.jit(jax.grad(along))(0.0)
    fd = (float(along(h)) - float(along(-h))) / (2 * h)
    np.testing.assert_allclose(float(g), fd, rtol=1e-6)
    assert abs(float(g)) > 1e-3  # not a vanishing gradient
