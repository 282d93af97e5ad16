"""The guides' code (docs/guides/*.py, included in their pages) runs and does what the
pages say: a custom neuron and a custom input simulated in a Network, vmapped and
differentiated."""

import importlib.util
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

GUIDES = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guides"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"guide_{name}", GUIDES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def neuron_guide():
    return _load("custom_neuron")


@pytest.fixture(scope="module")
def input_guide():
    return _load("custom_input")


def test_custom_neuron_matches_its_closed_form_f_i_curve(neuron_guide):
    currents, simulated, exact = neuron_guide.f_i_curve()
    firing = exact > 5.0
    assert firing.sum() >= 80
    np.testing.assert_allclose(simulated[firing], exact[firing], rtol=5e-3)
    # Below rheobase (37.5 pA) nothing fires.
    assert np.all(simulated[currents < 37.0] == 0.0)


def test_custom_neuron_in_a_network_vmapped_and_differentiated(neuron_guide):
    model = neuron_guide.network()
    rates = np.asarray(neuron_guide.trials(model))
    assert rates.shape == (4,) and np.all((rates > 1.0) & (rates < 50.0))
    assert len(set(rates.round(6))) == 4  # independent trials, not one copied
    swept = np.asarray(neuron_guide.rate_vs_drive(model, jnp.array([40.0, 80.0, 120.0])))
    assert np.all(np.diff(swept) > 0)
    grad, fd = neuron_guide.subthreshold_gradient()
    np.testing.assert_allclose(float(grad), float(fd), rtol=1e-6)
    report = neuron_guide.network_gradient(model)
    (row,) = report.rows
    # Spiking path: the surrogate gradient is biased (much smaller here; the guide
    # says so), but finite and of the finite difference's sign, which is well resolved.
    assert np.isfinite(row.gradient) and row.gradient > 0
    assert row.finite_difference > 3 * row.fd_stderr and report.signs_agree


def test_custom_neuron_check_rejects_bad_shapes_and_dt(neuron_guide):
    qif = neuron_guide.QIF(v_c=jnp.full(3, -50.0))
    with pytest.raises(ValueError, match=r"QIF v_c must be a scalar or have shape \(5,\)"):
        qif.check(5, 0.1)
    with pytest.raises(ValueError, match="QIF forward Euler needs dt"):
        neuron_guide.QIF().check(5, 5.0)
    with pytest.raises(ValueError, match="v_reset"):
        neuron_guide.QIF(v_reset=-40.0)


def test_custom_input_sine_response_and_gradient(input_guide):
    simulated, exact = input_guide.membrane_response(np.array([5.0, 10.0, 20.0, 50.0, 100.0]))
    np.testing.assert_allclose(simulated, exact, rtol=2e-3)
    grad, fd = input_guide.response_gradient()
    np.testing.assert_allclose(float(grad), float(fd), rtol=1e-6)


def test_custom_input_telegraph_trials_are_independent_and_unbiased(input_guide):
    means, expected = input_guide.telegraph_trials()
    means = np.asarray(means)
    assert len(set(means.round(9))) == len(means)
    sem = means.std(ddof=1) / np.sqrt(len(means))
    assert abs(means.mean() - expected) < 4 * sem + 0.05, (means, expected)


@pytest.fixture(scope="module")
def recording_guide():
    return _load("recording")


def test_recording_guide_reads_and_saves_exactly(recording_guide, tmp_path):
    res = recording_guide.res
    summary = recording_guide.summary(res)
    assert summary["raster E (steps, n)"] == (1000, 1100)
    assert summary["E.v (blocks, cells)"] == (200, 5)
    assert summary["cells of I.v"] == (3, 7)
    assert summary["E spikes"] > 1000
    assert recording_guide.same(res, recording_guide.save_and_load(res, tmp_path))


def test_recording_guide_nwb_round_trip(recording_guide, tmp_path):
    pytest.importorskip("pynwb", reason="pynwb not installed: the nwb extra "
                        "(pip install -e '.[nwb]') reads and writes NWB files")
    res = recording_guide.res
    assert recording_guide.same(res, recording_guide.nwb_round_trip(res, tmp_path))


@pytest.fixture(scope="module")
def training_guide():
    return _load("training")


def test_training_guide_fits_under_dale(training_guide):
    g = training_guide
    assert g.signs_hold(g.model) and g.signs_hold(g.trained) and g.signs_hold(g.plain)
    # The fit moves the E rate towards its target: the loss falls by at least half.
    assert g.result.losses[-1] < 0.5 * g.result.losses[0]
    assert g.checkpoint.exists() and g.result.eval_steps.tolist() == [20, 40, 60]
    assert "E->E.weight.free" in g.model.params()
