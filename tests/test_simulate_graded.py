"""Recording graded populations (neurons with `spiking = False`): their outputs come back
as floats without `float_spikes`, and `rates` / `rate()` / `neuron_rates()` give their
mean output (a rate unit's rate [Hz]), not output * 1000 / dt; spiking populations
keep compact boolean rasters and spike-count rates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj

DT, T, TAU = 0.1, 20.0, 10.0
DRIVE = np.array([10.0, 20.0, 30.0])  # graded input of the rate units [input units]


def _mixed(amplitude=jnp.asarray(DRIVE)):
    """Rate units R (tau dr/dt = -r + [h]_+ under constant h) next to LIF cells E
    driven above threshold (no projections: each population has its own input)."""
    rate = nj.Population("R", 3, nj.neurons.FiringRate(tau=TAU, transfer=nj.neurons.ReLU()))
    lif = nj.Population("E", 4, nj.neurons.LIF())
    net = nj.Network([rate, lif], inputs=[nj.inputs.Constant("R", amplitude=amplitude),
                                          nj.inputs.Constant("E", amplitude=1000.0)])
    return net.build(jax.random.key(0))


def _analytic_rates():
    # Exponential Euler is exact for constant input: r(t_k) = h (1 - exp(-t_k / tau))
    # from r(0) = f(0) = 0 at the end of step k (t_k = k dt).
    t = DT * np.arange(1, round(T / DT) + 1)
    return DRIVE[None, :] * (1.0 - np.exp(-t[:, None] / TAU))


@pytest.fixture(scope="module")
def result():
    return nj.simulate(_mixed(), T, DT, key=jax.random.key(1),
                       record=nj.Record(rates=["R", "E"], every=1.0))


def test_graded_outputs_are_recorded_as_floats_and_spikes_as_bools(result):
    assert result.graded == ("R",)
    assert result.spikes["R"].dtype == jnp.float64 and result.spikes["E"].dtype == jnp.bool_
    # rtol 1e-12: the same closed form up to float64 round-off over 200 steps.
    np.testing.assert_allclose(np.asarray(result.spikes["R"]), _analytic_rates(), rtol=1e-12)
    assert np.asarray(result.spikes["E"]).sum() >= 8  # the LIF cells do spike, repeatedly


def test_rates_of_graded_populations_are_their_mean_output(result):
    r = _analytic_rates()
    blocks = r.reshape(-1, 10, 3).mean(axis=(1, 2))  # 1 ms blocks of 10 steps
    np.testing.assert_allclose(np.asarray(result.rates["R"]), blocks, rtol=1e-12)
    np.testing.assert_allclose(result.neuron_rates("R"), r.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.rate("R", t_start=5.0, t_stop=15.0),
                               r[50:150].mean(), rtol=1e-12)
    # Spiking populations still count spikes per second [Hz].
    s = np.asarray(result.spikes["E"], float)
    np.testing.assert_allclose(result.rate("E"), s.sum() / (4 * T * 1e-3), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(result.rates["E"]),
                               s.reshape(-1, 10, 4).sum(axis=(1, 2)) / (4 * 1.0e-3), rtol=1e-12)


def test_float_spikes_still_gives_float_spikes_and_graded_is_unchanged(result):
    res = nj.simulate(_mixed(), T, DT, key=jax.random.key(1),
                      record=nj.Record(float_spikes=True))
    assert res.spikes["E"].dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(res.spikes["E"]), np.asarray(result.spikes["E"], float))
    np.testing.assert_array_equal(np.asarray(res.spikes["R"]), np.asarray(result.spikes["R"]))


def test_symmetric_binary_units_keep_their_sign():
    # -1/+1 units: a boolean raster would map both "off" (-1) and 0 to False.
    units = nj.neurons.Binary(symmetric=True)
    net = nj.Network([nj.Population("B", 4, units)],
                     inputs=[nj.inputs.Constant("B", amplitude=jnp.asarray([1.0, -1.0, 2.0, -2.0]))])
    res = nj.simulate(net.build(jax.random.key(0)), 1.0, DT, key=jax.random.key(1),
                      record=nj.Record(rates=["B"]))
    np.testing.assert_array_equal(np.asarray(res.spikes["B"]), np.tile([1.0, -1.0, 1.0, -1.0], (10, 1)))
    np.testing.assert_array_equal(np.asarray(res.rates["B"]), np.zeros(10))  # mean activity


def test_save_load_keeps_graded_populations(result, tmp_path):
    result.save(tmp_path / "r.npz")
    back = nj.Result.load(tmp_path / "r.npz")
    assert back.graded == ("R",)
    assert back.spikes["R"].dtype == jnp.float64
    assert float(back.rate("R")) == float(result.rate("R"))


def test_gradient_of_a_graded_rate_matches_the_analytic_derivative():
    # d mean(rates) / d h_i = mean_t (1 - exp(-t / tau)) / 3 for each unit (the
    # recording is linear in h above threshold): exact up to round-off.
    def loss(amplitude):
        res = nj.simulate(_mixed(amplitude), T, DT, key=jax.random.key(1),
                          record=nj.Record(spikes=["R"], rates=["R"], every=1.0))
        return jnp.mean(res.rates["R"]) + res.rate("R")

    g = jax.grad(loss)(jnp.asarray(DRIVE))
    t = DT * np.arange(1, round(T / DT) + 1)
    np.testing.assert_allclose(g, np.full(3, 2.0 * np.mean(1.0 - np.exp(-t / TAU)) / 3.0), rtol=1e-12)


def test_graded_populations_have_no_spike_times_and_raster_leaves_them_out(result):
    with pytest.raises(ValueError, match=r"population 'R' has graded outputs \(rate units\), not spikes"):
        result.spike_times("R")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = result.raster()
    raster_ax = fig.axes[0]
    # One population drawn (E), with E's spikes; no legend entry for R.
    assert [t.get_text() for t in raster_ax.get_legend().get_texts()] == ["E"]
    assert raster_ax.lines[0].get_xdata().size == np.asarray(result.spikes["E"]).sum()
    plt.close(fig)
    only_graded = nj.simulate(_mixed(), 1.0, DT, key=jax.random.key(1), record=nj.Record(spikes=["R"]))
    plt.close(only_graded.raster())  # an empty raster, without a warning
