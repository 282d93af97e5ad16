"""`nj.train.tasks.digits`: scikit-learn's digits as latency or Poisson spike trains,
split into training and held-out trials."""

import jax
import numpy as np
import pytest

from neurojax.train import tasks

sklearn_datasets = pytest.importorskip("sklearn.datasets")  # the `test` extra installs it
DIGITS = sklearn_datasets.load_digits()
N_IMAGES = 1797


def _images(trials):
    """The 4-bit images (0..16) and classes of `trials`, looked up by `conditions`."""
    index = np.asarray(trials.conditions).astype(int)
    return DIGITS.data[index], DIGITS.target[index]


def test_split_sizes_and_labels():
    train, test = tasks.digits(jax.random.key(0), test_fraction=0.25, duration=2.0, dt=1.0)
    # ceil(0.25 * 1797) = 450 held out (scikit-learn's train_test_split convention).
    assert test.inputs.shape == (450, 2, 64) and train.inputs.shape == (1347, 2, 64)
    assert train.targets.shape == (1347, 2, 10) and train.mask.shape == (1347, 2, 10)
    assert test.labels.shape == (450,) and test.response.shape == (450, 2)
    # The two sets are disjoint and together hold every image once.
    i_train = np.asarray(train.conditions).astype(int)
    i_test = np.asarray(test.conditions).astype(int)
    assert sorted(np.concatenate([i_train, i_test]).tolist()) == list(range(N_IMAGES))
    # Labels are the images' classes; targets their one-hot code at every step.
    for trials in (train, test):
        _, classes = _images(trials)
        np.testing.assert_array_equal(trials.labels, classes)
        np.testing.assert_array_equal(np.asarray(trials.targets).argmax(-1),
                                      np.broadcast_to(classes[:, None], trials.response.shape))


def test_latency_code_brighter_pixels_fire_earlier():
    # 17 steps: intensity x = 1..16 fires once, in step 16 - x (white first, at step 0);
    # black pixels (x = 0) stay silent.
    train, _ = tasks.digits(jax.random.key(1), encoding="latency", duration=17.0, dt=1.0)
    x, _ = _images(train)
    spikes = np.asarray(train.inputs)
    counts = spikes.sum(1)
    np.testing.assert_array_equal(counts, (x > 0).astype(float))
    first = spikes.argmax(1)  # (trials, 64) the spike's step
    np.testing.assert_array_equal(first[x > 0], (16 - x[x > 0]).astype(int))
    # The ordering itself, pairwise within each image: brighter -> strictly earlier.
    for img, t in zip(x[:50], first[:50]):
        xi, ti = img[img > 0], t[img > 0]
        brighter = xi[:, None] > xi[None, :]
        assert brighter.any() and np.all((ti[:, None] < ti[None, :])[brighter])
    # With fewer steps than grey levels, the order is kept without ties broken wrongly:
    # a brighter pixel never fires later.
    coarse, _ = tasks.digits(jax.random.key(1), encoding="latency", duration=5.0, dt=1.0)
    t = np.asarray(coarse.inputs).argmax(1)
    on = x > 0
    for img, ti, o in zip(x[:50], t[:50], on[:50]):
        brighter = img[o][:, None] > img[o][None, :]
        assert np.all((ti[o][:, None] <= ti[o][None, :])[brighter])


def test_poisson_rate_is_proportional_to_intensity():
    # max_rate = 1000 Hz at dt = 1 ms: a pixel of intensity u spikes in each step with
    # probability u. Pooled over every pixel of a grey level in the held-out set and 20
    # steps, the spike fraction is a binomial mean; it must lie within 5 standard errors
    # sqrt(u (1 - u) / N) of u (a false failure for one of the 17 levels has
    # probability ~1e-5).
    _, test = tasks.digits(jax.random.key(2), encoding="poisson", test_fraction=0.3,
                           duration=20.0, dt=1.0, max_rate=1000.0)
    x, _ = _images(test)
    spikes = np.asarray(test.inputs)
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    for level in range(17):
        sel = spikes.transpose(0, 2, 1)[x == level]  # (pixels, steps)
        n = sel.size
        u = level / 16
        se = np.sqrt(u * (1 - u) / n)
        assert abs(sel.mean() - u) <= 5 * se + 1e-12, (level, sel.mean(), u, n)
    # Halving max_rate halves the rate (same key: the same uniforms, so exactly a
    # thinning: no spike appears that the faster train lacked).
    _, half = tasks.digits(jax.random.key(2), encoding="poisson", test_fraction=0.3,
                           duration=20.0, dt=1.0, max_rate=500.0)
    slow = np.asarray(half.inputs)
    assert np.all(slow <= spikes)
    ratio = slow.sum() / spikes.sum()
    # About 1.2e5 spikes in total: the ratio's standard error is ~0.002.
    assert abs(ratio - 0.5) < 0.01, ratio


def test_seeded_determinism():
    a = tasks.digits(jax.random.key(3), encoding="poisson", duration=10.0, dt=1.0)
    b = tasks.digits(jax.random.key(3), encoding="poisson", duration=10.0, dt=1.0)
    c = tasks.digits(jax.random.key(4), encoding="poisson", duration=10.0, dt=1.0)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1].conditions, c[1].conditions)  # another split
    assert not np.array_equal(a[0].inputs, c[0].inputs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(test_fraction=0.0), r"test_fraction must lie in \(0, 1\)"),
    (dict(test_fraction=1.0), r"test_fraction must lie in \(0, 1\)"),
    (dict(test_fraction=0.9999), r"test_fraction must leave at least one image"),
    (dict(duration=0.0), r"duration \[ms\] must lie in \(0, inf\)"),
    (dict(duration=-5.0), r"duration \[ms\] must lie in \(0, inf\)"),
    (dict(dt=0.0), r"dt \[ms\] must lie in \(0, inf\)"),
    (dict(duration=10.5, dt=1.0), r"duration \[ms\] must be a whole number of steps"),
    (dict(encoding="rate"), r"encoding must be 'latency' or 'poisson'"),
    (dict(encoding="poisson", max_rate=2000.0, dt=1.0), r"max_rate \[Hz\] must lie in \(0, 1000 / dt\] = \(0, 1000\]"),
    (dict(max_rate=0.0), r"max_rate \[Hz\] must lie in \(0, inf\)"),
])
def test_bad_input_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tasks.digits(jax.random.key(0), **kwargs)
