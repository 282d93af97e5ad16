"""Cognitive tasks: shapes, seeded determinism, the structure of each trial, and clear
errors for inconsistent lengths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurojax.train import tasks


def test_perceptual_decision_structure():
    tr = tasks.perceptual_decision(jax.random.key(0), 64, dt=20.0, coherences=(0.1, 0.4),
                                   fixation=100.0, stimulus=400.0, response=200.0, noise=0.0)
    assert tr.inputs.shape == (64, 35, 2) and tr.targets.shape == (64, 35, 1)
    assert tr.mask.shape == (64, 35, 1) and tr.labels.shape == (64,)
    x = np.asarray(tr.inputs)
    # Without noise the stimulus is exactly coherence x direction during the 20 stimulus steps.
    np.testing.assert_array_equal(x[:, 5:25, 0], np.broadcast_to(np.asarray(tr.conditions)[:, None], (64, 20)))
    assert np.all(x[:, :5, 0] == 0) and np.all(x[:, 25:, 0] == 0)
    assert np.all(x[:, :25, 1] == 1) and np.all(x[:, 25:, 1] == 0)  # fixation cue
    np.testing.assert_array_equal(np.sign(tr.conditions), tr.labels)
    assert set(np.abs(np.asarray(tr.conditions)).round(6)) == {0.1, 0.4}
    # Scored during fixation (target 0) and response (target = label), not the stimulus.
    m = np.asarray(tr.mask[0, :, 0])
    assert m[:5].all() and not m[5:25].any() and m[25:].all()
    np.testing.assert_array_equal(tr.targets[:, 25, 0], tr.labels)
    # A perfect responder scores 1, the opposite one 0.
    assert float(tasks.accuracy(tr.targets, tr)) == 1.0
    assert float(tasks.accuracy(-tr.targets, tr)) == 0.0
    # Seeded: the same key gives the same trials.
    again = tasks.perceptual_decision(jax.random.key(0), 64, dt=20.0, coherences=(0.1, 0.4),
                                      fixation=100.0, stimulus=400.0, response=200.0, noise=0.0)
    assert np.array_equal(again.inputs, tr.inputs)


def test_context_dependent_integration_labels_follow_the_context():
    tr = tasks.context_dependent_integration(jax.random.key(1), 200, noise=0.0)
    x = np.asarray(tr.inputs)
    ctx = x[:, 0, 2:4].argmax(-1)
    stim = x[:, 6, 0:2]  # during the stimulus period
    np.testing.assert_array_equal(np.sign(stim[np.arange(200), ctx]), tr.labels)
    # Both contexts and disagreeing stimuli occur: the task is not solvable from one channel.
    assert 0 < ctx.mean() < 1 and np.any(np.sign(stim[:, 0]) != np.sign(stim[:, 1]))


def test_delayed_match_to_sample_labels():
    tr = tasks.delayed_match_to_sample(jax.random.key(2), 200, n_stimuli=3, noise=0.0)
    x = np.asarray(tr.inputs)
    sample = x[:, 5, :3].argmax(-1)   # fixation 5 steps, sample 10, delay 15, test 10
    test = x[:, 30, :3].argmax(-1)
    np.testing.assert_array_equal(sample, np.asarray(tr.conditions).astype(int))
    np.testing.assert_array_equal(np.where(sample == test, 1, -1), tr.labels)
    assert 0.3 < np.mean(np.asarray(tr.labels) == 1) < 0.7
    assert np.all(x[:, 15:30, :3] == 0)  # nothing shown during the delay


def test_inconsistent_lengths_are_clear_errors():
    with pytest.raises(ValueError, match=r"stimulus \[ms\] must be a whole number of steps of dt = 20 ms"):
        tasks.perceptual_decision(jax.random.key(0), 4, stimulus=410.0)
    with pytest.raises(ValueError, match=r"response \[ms\] must lie in \(0, inf\)"):
        tasks.perceptual_decision(jax.random.key(0), 4, response=0.0)
    with pytest.raises(ValueError, match=r"coherences must be a non-empty 1-D sequence of values in \(0, inf\)"):
        tasks.context_dependent_integration(jax.random.key(0), 4, coherences=())
    with pytest.raises(ValueError, match=r"n_stimuli must be an integer in \[2, inf\)"):
        tasks.delayed_match_to_sample(jax.random.key(0), 4, n_stimuli=1)
    with pytest.raises(ValueError, match=r"n_trials must be an integer in \[1, inf\)"):
        tasks.perceptual_decision(jax.random.key(0), 0)
    tr = tasks.perceptual_decision(jax.random.key(0), 4)
    with pytest.raises(ValueError, match=r"outputs must have shape \(trials, steps\[, n_out\]\)"):
        tasks.accuracy(jnp.zeros((4, 3)), tr)


def test_interval_timing_ramp_and_produced_interval():
    tr = tasks.interval_timing(jax.random.key(3), 50, dt=20.0, intervals=(400.0, 800.0))
    x = np.asarray(tr.inputs[..., 0])
    for i in range(5):
        onsets = np.flatnonzero(np.diff(np.concatenate([[0.0], x[i]])) > 0)
        # ready at 100 ms (step 5); set t_s later: onsets differ by t_s / dt steps.
        assert onsets.tolist() == [5, 5 + int(tr.conditions[i] / 20.0)]
    # The target itself produces exactly the sample interval.
    np.testing.assert_array_equal(tasks.produced_interval(tr.targets, tr, 20.0), tr.conditions)
    assert set(np.asarray(tr.conditions).tolist()) == {400.0, 800.0}
    with pytest.raises(ValueError, match=r"intervals \[ms\] must be a whole number of steps"):
        tasks.interval_timing(jax.random.key(0), 4, intervals=(410.0,))
