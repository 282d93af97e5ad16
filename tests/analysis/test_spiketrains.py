"""neurojax/analysis/spiketrains.py on surrogate spike trains with known statistics
(homogeneous Poisson, gamma renewal, correlated Poisson by thinning a shared mother
process), plus transform invariance, the Result adapters and input errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import neurojax as nj

A = nj.analysis


def renewal_trains(rng, n, rate_hz, t_stop_ms, shape=1.0):
    """Gamma renewal trains of shape `shape` (1: Poisson) and rate `rate_hz`, started
    in equilibrium well enough for the statistics here (first spike after one ISI)."""
    mean_isi = 1e3 / rate_hz
    k = int(2 * t_stop_ms / mean_isi + 50)
    isi = rng.gamma(shape, mean_isi / shape, size=(n, k))
    t = np.cumsum(isi, axis=1)
    ids = np.broadcast_to(np.arange(n)[:, None], t.shape)
    keep = t < t_stop_ms
    return t[keep], ids[keep]


def mip_trains(rng, n, rate_hz, c, t_stop_ms):
    """Correlated Poisson trains by thinning (Kuhn et al. 2003, MIP): a mother Poisson
    train of rate rate/c; each neuron keeps each mother spike with probability c, so
    each train is Poisson of rate `rate_hz` and the spike-count correlation of any two
    is exactly c in any window."""
    m = rng.poisson(rate_hz / c * t_stop_ms * 1e-3)
    mother = rng.uniform(0.0, t_stop_ms, m)
    keep = rng.random((n, m)) < c
    ids = np.broadcast_to(np.arange(n)[:, None], keep.shape)
    return np.broadcast_to(mother, keep.shape)[keep], ids[keep]


def test_poisson_cv_cv2_and_fano_are_one():
    rng = np.random.default_rng(1)
    n, t_stop = 200, 10_000.0
    times, ids = renewal_trains(rng, n, 20.0, t_stop)
    cv = np.asarray(A.cv(times, ids, n))
    cv2 = np.asarray(A.cv2(times, ids, n))
    # ~200 ISIs per neuron; the per-neuron estimates scatter by ~1/sqrt(200) and the
    # tolerance is 4 SEM of their mean over neurons (their spread measured here) plus
    # the O(1/ISIs) estimator bias (< 1/100 for a sample CV of 200 exponentials).
    for x in (cv, cv2):
        sem = x.std() / math.sqrt(n)
        assert abs(x.mean() - 1.0) < 4 * sem + 0.01
    counts = A.bin_spikes(times, ids, n, 0.0, t_stop, 100.0)  # 100 windows of 100 ms
    ff = np.asarray(A.fano_factor(counts, ddof=1))
    # Var of a Poisson sample Fano factor with m windows is ~2/(m-1) (+ 1/(m mean)):
    # 4 SEM of the mean over neurons.
    sem = ff.std() / math.sqrt(n)
    assert abs(ff.mean() - 1.0) < 4 * sem
    # ddof=0 is (m-1)/m times ddof=1 exactly
    np.testing.assert_allclose(np.asarray(A.fano_factor(counts)), ff * 99 / 100, rtol=1e-12)


@pytest.mark.parametrize("shape", [4.0, 0.5])
def test_gamma_process_cv_and_cv2_match_their_analytic_values(shape):
    rng = np.random.default_rng(2)
    n = 100
    times, ids = renewal_trains(rng, n, 20.0, 20_000.0, shape=shape)
    cv = np.asarray(A.cv(times, ids, n))
    cv2 = np.asarray(A.cv2(times, ids, n))
    k = shape
    cv2_exact = scipy.special.gamma(2 * k) / (k * scipy.special.gamma(k) ** 2 * 4 ** (k - 1))
    # ~400 ISIs per neuron: 4 SEM over neurons plus the O(1/ISIs) bias bound (0.01).
    for x, exact in ((cv, 1 / math.sqrt(k)), (cv2, cv2_exact)):
        assert abs(x.mean() - exact) < 4 * x.std() / math.sqrt(n) + 0.01 * exact


def test_regular_trains_have_zero_cv_and_the_old_summary_agrees():
    times = np.concatenate([np.arange(5.0, 1000.0, 10.0), np.arange(3.0, 1000.0, 25.0)])
    ids = np.concatenate([np.zeros(100, int), np.ones(40, int)])
    np.testing.assert_allclose(np.asarray(A.cv(times, ids, 3))[:2], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(A.cv2(times, ids, 3))[:2], 0.0, atol=1e-12)
    assert np.isnan(np.asarray(A.cv(times, ids, 3))[2])  # silent neuron
    rng = np.random.default_rng(3)
    t, i = renewal_trains(rng, 20, 20.0, 2000.0)
    # isi_cv (numpy, population mean over neurons with >= 4 spikes) = nanmean of cv
    np.testing.assert_allclose(A.isi_cv(t, i, 20), np.nanmean(np.asarray(A.cv(t, i, 20, min_isis=3))),
                               rtol=1e-12)


def test_cv_ignores_nan_padding_and_spike_order():
    rng = np.random.default_rng(4)
    t, i = renewal_trains(rng, 5, 30.0, 1000.0)
    perm = rng.permutation(len(t))
    padded_t = np.concatenate([t[perm], np.full(7, np.nan)])
    padded_i = np.concatenate([i[perm], np.zeros(7, int)])
    for f in (A.cv, A.cv2):
        np.testing.assert_allclose(np.asarray(f(padded_t, padded_i, 5)), np.asarray(f(t, i, 5)),
                                   rtol=1e-12)


def test_mip_correlated_poisson_has_the_known_count_correlation():
    rng = np.random.default_rng(5)
    n, c, t_stop = 10, 0.3, 100_000.0
    times, ids = mip_trains(rng, n, 10.0, c, t_stop)
    counts = A.bin_spikes(times, ids, n, 0.0, t_stop, 20.0)  # 5000 bins
    r = np.asarray(A.correlation_matrix(counts))
    np.testing.assert_allclose(np.diag(r), 1.0, rtol=1e-12)
    # The standard error of a sample correlation with B bins is (1 - c^2)/sqrt(B) =
    # 0.013; the mean over pairs is at least as precise: 4 standard errors.
    assert abs(float(A.mean_correlation(counts)) - c) < 4 * (1 - c * c) / math.sqrt(5000)
    # independent trains: ~0
    t0, i0 = renewal_trains(rng, n, 10.0, t_stop)
    assert abs(float(A.mean_correlation(A.bin_spikes(t0, i0, n, 0.0, t_stop, 20.0)))) < 4 / math.sqrt(5000)


def test_silent_neurons_are_left_out_of_correlations():
    rng = np.random.default_rng(6)
    counts = rng.poisson(2.0, size=(4, 50)).astype(float)
    counts[2] = 0.0
    r = np.asarray(A.correlation_matrix(counts))
    assert np.all(np.isnan(r[2])) and np.all(np.isnan(r[:, 2]))
    keep = [0, 1, 3]
    ref = np.corrcoef(counts[keep])
    np.testing.assert_allclose(r[np.ix_(keep, keep)], ref, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(A.correlation_matrix(counts.astype(int))), r)  # int counts
    iu = np.triu_indices(3, 1)
    np.testing.assert_allclose(float(A.mean_correlation(counts)), ref[iu].mean(), rtol=1e-12)
    assert np.isnan(float(A.mean_correlation(np.zeros((3, 10)))))


def test_cross_correlogram_finds_a_known_delay_and_its_lag_zero_coefficient_is_pearson():
    rng = np.random.default_rng(7)
    x = rng.poisson(0.2, size=2000).astype(float)
    y = np.roll(x, 3)  # y fires 3 bins after x
    y[:3] = 0.0
    lags, c = A.cross_correlogram(x, y, 2.0, 10.0)
    assert lags[np.argmax(np.asarray(c))] == 6.0  # 3 bins of 2 ms
    direct = [np.sum(x[max(0, -l):len(x) - max(0, l)] * y[max(0, l):len(y) - max(0, -l)])
              for l in range(-5, 6)]
    np.testing.assert_allclose(np.asarray(c), direct, rtol=1e-12)
    _, rho = A.cross_correlogram(x, y, 2.0, 10.0, coefficient=True)
    np.testing.assert_allclose(float(rho[5]), np.corrcoef(x, y)[0, 1], rtol=1e-10)


def test_rates_and_kernels_conserve_spikes():
    rng = np.random.default_rng(8)
    counts = rng.poisson(0.05, size=(3, 400)).astype(float)
    np.testing.assert_allclose(np.asarray(A.firing_rates(counts, 1.0)), counts.sum(1) / 0.4, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(A.population_activity(counts, 1.0)), counts.mean(0) * 1e3,
                               rtol=1e-12)
    for kernel in ("gaussian", "rectangular", "exponential"):
        _, k = A.rate_kernel(kernel, 5.0, 1.0)
        # sampled densities of unit area (Riemann sum; the rectangular one is exact up
        # to its grid: 2*ceil(sqrt(3)*5) - 1 = 17 samples of 1/(2 sqrt(3) 5) ms^-1; the
        # exponential's 26 samples at j = 0..25 ms sum to (1 - e^{-26/5})/(1 - e^{-1/5})/5,
        # ~1.10: the left-rectangle rule, as Elephant samples it)
        expected = {"gaussian": 1.0, "rectangular": 17 / (10 * math.sqrt(3)),
                    "exponential": (1 - math.exp(-5.2)) / (1 - math.exp(-0.2)) / 5.0}[kernel]
        np.testing.assert_allclose(k.sum() * 1e-3, expected, rtol=1e-6)
        # away from the edges, a single spike at bin 200 gives the kernel back
        one = np.zeros((1, 400))
        one[0, 200] = 1.0
        r = np.asarray(A.instantaneous_rate(one, 1.0, 5.0, kernel))[0]
        np.testing.assert_allclose(r[200 - 25:200 + 26], k, rtol=1e-12, atol=1e-12)
    causal = np.asarray(A.instantaneous_rate(one, 1.0, 5.0, "exponential"))[0]
    assert np.all(causal[:200] == 0.0)  # the causal kernel never sees the future


def test_binned_and_spike_arrays_read_a_result_batched_or_not():
    rng = np.random.default_rng(9)
    raster = rng.random((2, 300, 6)) < 0.05  # (batch, steps, n), dt = 0.1 ms
    res = nj.Result(spikes={"E": jnp.asarray(raster)}, rates={}, variables={}, state=None,
                    dt=0.1, t_start=10.0, every=1.0, sizes=(("E", 6),), indices=())
    counts = np.asarray(A.binned(res, "E", 1.0))
    assert counts.shape == (2, 6, 30)
    times, ids, n = A.spike_arrays(res, "E")
    assert n == 6 and times.shape[0] == 2
    for b in range(2):
        one = nj.Result(spikes={"E": jnp.asarray(raster[b])}, rates={}, variables={}, state=None,
                        dt=0.1, t_start=10.0, every=1.0, sizes=(("E", 6),), indices=())
        t_ref, i_ref = one.spike_times("E")
        ok = np.isfinite(times[b])
        np.testing.assert_array_equal(times[b][ok], t_ref)
        np.testing.assert_array_equal(ids[b][ok], i_ref)
        # a step's spike counts in the bin holding the step
        np.testing.assert_array_equal(counts[b], np.asarray(A.bin_spikes(t_ref - 0.05, i_ref, 6, 10.0, 40.0, 1.0)))
    # vmap over the batch (NaN-padded) equals a loop over unpadded trials
    got = jax.vmap(lambda t, i: A.cv(t, i, n))(jnp.asarray(times), jnp.asarray(ids))
    for b in range(2):  # (padding is ignored: test_cv_ignores_nan_padding_and_spike_order)
        np.testing.assert_allclose(np.asarray(got[b]), np.asarray(A.cv(times[b], ids[b], n)), rtol=1e-12)
    window = np.asarray(A.binned(res, "E", 2.0, t_start=20.0, t_stop=30.0))
    np.testing.assert_array_equal(window, counts[..., 10:20].reshape(2, 6, 5, 2).sum(-1))


def test_vmap_equals_loop_and_jit_equals_eager():
    # (the binned-count functions run jitted cores; jit of the spike-time functions,
    # whose wrappers validate on the host, is checked below)
    rng = np.random.default_rng(10)
    counts = jnp.asarray(rng.poisson(0.3, size=(3, 5, 200)).astype(float))  # (trials, n, bins)
    fns = {
        "fano": lambda c: A.fano_factor(c),
        "corr": A.correlation_matrix,
        "mean_corr": A.mean_correlation,
        "rate": lambda c: A.instantaneous_rate(c, 1.0, 3.0),
        "ccg": lambda c: A.cross_correlogram(c[0], c[1], 1.0, 5.0)[1],
    }
    for name, f in fns.items():
        batched = jax.vmap(f)(counts)
        for b in range(3):
            np.testing.assert_allclose(np.asarray(batched[b]), np.asarray(f(counts[b])), rtol=1e-12,
                                       err_msg=name)
    t, i = renewal_trains(rng, 4, 50.0, 500.0)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda t, i: A.cv2(t, i, 4))(t, i)),
                               np.asarray(A.cv2(t, i, 4)), rtol=1e-12)
    np.testing.assert_array_equal(
        np.asarray(jax.jit(lambda t, i: A.bin_spikes(t, i, 4, 0.0, 500.0, 5.0))(t, i)),
        np.asarray(A.bin_spikes(t, i, 4, 0.0, 500.0, 5.0)))


def test_bad_input_raises_a_clear_error():
    t, i = np.array([1.0, 2.0]), np.array([0, 1])
    with pytest.raises(ValueError, match=r"bin_ms \[ms\]"):
        A.bin_spikes(t, i, 2, 0.0, 10.0, -1.0)
    with pytest.raises(ValueError, match=r"t_stop \[ms\] must be greater"):
        A.bin_spikes(t, i, 2, 10.0, 10.0, 1.0)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 1\]"):
        A.bin_spikes(t, np.array([0, 2]), 2, 0.0, 10.0, 1.0)
    with pytest.raises(ValueError, match=r"ids must lie"):
        A.cv(t, np.array([-1, 0]), 2)
    with pytest.raises(ValueError, match=r"sigma_ms \[ms\]"):
        A.instantaneous_rate(np.zeros((2, 10)), 1.0, 0.0)
    with pytest.raises(ValueError, match=r"kernel must be one of"):
        A.instantaneous_rate(np.zeros((2, 10)), 1.0, 1.0, "box")
    with pytest.raises(ValueError, match=r"multiple of bin_ms"):
        A.cross_correlogram(np.zeros(10), np.zeros(10), 2.0, 3.0)
    res = nj.Result(spikes={"E": jnp.zeros((100, 2), bool)}, rates={}, variables={}, state=None,
                    dt=0.1, t_start=0.0, every=1.0, sizes=(("E", 2),), indices=())
    with pytest.raises(ValueError, match=r"multiple of the time step"):
        A.binned(res, "E", 0.25)
