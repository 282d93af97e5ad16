"""nj.analysis against Elephant (Denker et al. 2018) on the same spike trains, to
1e-9, wherever both define the measure the same way. Elephant is an optional test
dependency (the `crosscheck` extra of pyproject.toml, installed by CI phase 1)."""

import numpy as np
import pytest

elephant = pytest.importorskip("elephant", reason="the Elephant cross-check needs the crosscheck extra")
neo = pytest.importorskip("neo", reason="the Elephant cross-check needs the crosscheck extra")
pq = pytest.importorskip("quantities", reason="the Elephant cross-check needs the crosscheck extra")

from elephant import kernels, statistics  # noqa: E402
from elephant.conversion import BinnedSpikeTrain  # noqa: E402
from elephant.spike_train_correlation import (  # noqa: E402
    correlation_coefficient,
    cross_correlation_histogram,
)

import neurojax as nj  # noqa: E402

A = nj.analysis
# quantities 0.16 deprecates an argument that Elephant 1.2 still passes (no effect).
pytestmark = pytest.mark.filterwarnings("ignore:The 'copy' argument in Quantity is deprecated")
N, T_STOP = 8, 2000.0  # neurons, [ms]
# 1e-9: both sides compute the same sums in float64 (Elephant's FFT convolutions
# carry ~1e-15 relative rounding); anything larger is a difference of definition.
RTOL = 1e-9


@pytest.fixture(scope="module")
def trains():
    """Gamma (shape 2) trains of 10-40 Hz, with a few shared spikes so that the pairs
    correlate, plus the neo SpikeTrains of the same times."""
    rng = np.random.default_rng(11)
    times, ids = [], []
    shared = rng.uniform(0.0, T_STOP, 30)
    for i in range(N):
        isi = rng.gamma(2.0, 1e3 / (2.0 * rng.uniform(10.0, 40.0)), size=200)
        t = np.cumsum(isi)
        t = np.sort(np.concatenate([t[t < T_STOP], shared[rng.random(30) < 0.5]]))
        times.append(t)
        ids.append(np.full(len(t), i))
    sts = [neo.SpikeTrain(t * pq.ms, t_start=0.0 * pq.ms, t_stop=T_STOP * pq.ms) for t in times]
    return np.concatenate(times), np.concatenate(ids), sts


def test_cv_and_cv2_equal_elephant(trains):
    times, ids, sts = trains
    cv, cv2 = np.asarray(A.cv(times, ids, N)), np.asarray(A.cv2(times, ids, N))
    for i, st in enumerate(sts):
        isi = statistics.isi(st).magnitude
        np.testing.assert_allclose(cv[i], statistics.cv(isi), rtol=RTOL)
        np.testing.assert_allclose(cv2[i], statistics.cv2(isi), rtol=RTOL)


def test_fano_factor_equals_elephant(trains):
    times, ids, sts = trains
    counts = A.bin_spikes(times, ids, N, 0.0, T_STOP, T_STOP)[:, 0]  # one count per train
    np.testing.assert_allclose(float(A.fano_factor(counts)), statistics.fanofactor(sts), rtol=RTOL)


def test_binning_and_correlation_coefficients_equal_elephant(trains):
    times, ids, sts = trains
    binned = BinnedSpikeTrain(sts, bin_size=5.0 * pq.ms, t_start=0.0 * pq.ms, t_stop=T_STOP * pq.ms)
    counts = np.asarray(A.bin_spikes(times, ids, N, 0.0, T_STOP, 5.0))
    np.testing.assert_array_equal(counts, binned.to_array())
    np.testing.assert_allclose(np.asarray(A.correlation_matrix(counts)), correlation_coefficient(binned),
                               rtol=RTOL)


def test_cross_correlogram_equals_elephant(trains):
    times, ids, sts = trains
    counts = np.asarray(A.bin_spikes(times, ids, N, 0.0, T_STOP, 2.0))
    for i, j in ((0, 1), (3, 5)):
        bi = BinnedSpikeTrain(sts[i], bin_size=2.0 * pq.ms, t_start=0.0 * pq.ms, t_stop=T_STOP * pq.ms)
        bj = BinnedSpikeTrain(sts[j], bin_size=2.0 * pq.ms, t_start=0.0 * pq.ms, t_stop=T_STOP * pq.ms)
        for coefficient in (False, True):
            cch, lags = cross_correlation_histogram(bi, bj, window=[-10, 10], border_correction=False,
                                                    binary=False, cross_correlation_coefficient=coefficient)
            ours_lags, ours = A.cross_correlogram(counts[i], counts[j], 2.0, 20.0, coefficient=coefficient)
            np.testing.assert_array_equal(ours_lags, 2.0 * lags)
            np.testing.assert_allclose(np.asarray(ours), cch.magnitude[:, 0], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("kernel", ["gaussian", "rectangular", "exponential"])
def test_instantaneous_rate_equals_elephant(trains, kernel):
    times, ids, sts = trains
    sigma = 4.0  # [ms]: cutoff * sigma / bin = 20 bins, so both sample the kernel at j * 1 ms
    k = {"gaussian": kernels.GaussianKernel, "rectangular": kernels.RectangularKernel,
         "exponential": kernels.ExponentialKernel}[kernel](sigma=sigma * pq.ms)
    ref = statistics.instantaneous_rate(sts, sampling_period=1.0 * pq.ms, kernel=k, center_kernel=False)
    counts = A.bin_spikes(times, ids, N, 0.0, T_STOP, 1.0)
    ours = np.asarray(A.instantaneous_rate(counts, 1.0, sigma, kernel))
    np.testing.assert_allclose(ours, ref.rescale(pq.Hz).magnitude.T, rtol=RTOL, atol=1e-9)
