"""Spaces, distance- and feature-dependent connectivity: the sampled synapses follow the
requested profile (across periodic boundaries too), in-degrees match their theory, and
bad input is refused with the parameter named."""

import jax
import numpy as np
import pytest
from scipy import stats

import neurojax as nj
from neurojax.connectivity import spatial

C = nj.connectivity
LIF = nj.neurons.LIF()


def _synapses(pre, post, rule, key=0):
    return rule.sample_between(jax.random.key(key), pre, post, pre is post)


def test_minimum_image_across_periodic_boundaries():
    ring = C.Ring(length=1.0)
    np.testing.assert_allclose(ring.distance(np.array([0.05]), np.array([0.95])), 0.1, atol=1e-15)
    torus = C.Sheet(extent=(1.0, 2.0), periodic=True)
    np.testing.assert_allclose(torus.distance(np.array([0.05, 0.1]), np.array([0.95, 1.9])),
                               np.hypot(0.1, 0.2), atol=1e-15)
    flat = C.Sheet(extent=(1.0, 2.0), periodic=False)
    np.testing.assert_allclose(flat.distance(np.array([0.05, 0.1]), np.array([0.95, 1.9])),
                               np.hypot(0.9, 1.8), atol=1e-15)
    np.testing.assert_allclose(C.Line(length=1.0).distance(np.array([0.05]), np.array([0.95])), 0.9)


def test_layouts():
    np.testing.assert_allclose(C.Ring(length=2.0).coordinates(4)[:, 0], [0.25, 0.75, 1.25, 1.75])
    grid = C.Sheet(extent=(1.0, 1.0)).coordinates(9)
    assert grid.shape == (9, 2)
    np.testing.assert_allclose(np.unique(grid[:, 0]), [1 / 6, 0.5, 5 / 6])
    rand = C.Sheet(layout="random", seed=3).coordinates(10)
    np.testing.assert_array_equal(rand, C.Sheet(layout="random", seed=3).coordinates(10))
    pop = nj.Population("E", 4, LIF, space=C.Ring(), features={"ori": C.Ring(length=180.0)})
    np.testing.assert_allclose(pop.feature("ori"), [22.5, 67.5, 112.5, 157.5])
    assert pop.positions.shape == (4, 1)


def _binned_chi2(d_all, connected, prob, edges):
    """Chi-square of connected-pair counts per distance bin against their expectation
    sum(p) over the bin's pairs (each pair an independent Bernoulli draw)."""
    b = np.digitize(d_all, edges) - 1
    ok = (b >= 0) & (b < len(edges) - 1)
    observed = np.bincount(b[ok], weights=connected[ok], minlength=len(edges) - 1)
    expected = np.bincount(b[ok], weights=prob[ok], minlength=len(edges) - 1)
    variance = np.bincount(b[ok], weights=(prob * (1 - prob))[ok], minlength=len(edges) - 1)
    keep = variance > 5.0  # the normal approximation of each bin's count holds
    chi2 = np.sum((observed - expected)[keep] ** 2 / variance[keep])
    return observed, expected, stats.chi2.sf(chi2, keep.sum())


@pytest.fixture
def sampler_path(monkeypatch):
    """Records which sampler drew: the cell list ("cells") or all pairs ("all")."""
    used = []
    cells = spatial._sample_in_cells

    def spy(*args):
        syn = cells(*args)
        used.append("all" if syn is None else "cells")
        return syn

    monkeypatch.setattr(spatial, "_sample_in_cells", spy)
    return used


# Wide profiles are drawn against all pairs, narrow ones from a cell list (candidates
# within the cutoff radius only): both must give the profile, across the boundary too.
@pytest.mark.parametrize("profile, width, path", [
    ("gaussian", 0.05, "all"), ("exponential", 0.05, "all"),
    ("gaussian", 0.01, "cells"), ("exponential", 0.008, "cells"),
])
def test_distance_profile_on_a_ring_including_across_the_boundary(profile, width, path, sampler_path):
    n, p = 1500, 0.4
    pop = nj.Population("E", n, LIF, space=C.Ring(length=1.0))
    syn = _synapses(pop, pop, C.DistanceDependent(p=p, width=width, profile=profile))
    assert sampler_path == [path]
    x = pop.positions[:, 0]
    raw = x[:, None] - x[None, :]  # (post, pre)
    d = np.abs(raw - np.round(raw))
    f = np.exp(-0.5 * (d / width) ** 2) if profile == "gaussian" else np.exp(-d / width)
    prob = p * f
    np.fill_diagonal(prob, 0.0)
    conn = np.zeros((n, n))
    conn[syn.post, syn.pre] = 1.0
    assert conn.sum() == syn.pre.size  # no pair twice
    edges = np.linspace(0.0, 4 * width, 17)
    # Tolerance: a correct sampler passes p-value > 1e-3 in 999 of 1000 seeds.
    _, _, pval = _binned_chi2(d.ravel(), conn.ravel(), prob.ravel(), edges)
    assert pval > 1e-3
    # Pairs that are close only across the wrap (raw separation > L/2) connect at the
    # profile's rate of their wrapped distance: the periodic boundary is done right.
    across = (np.abs(raw) > 0.5).ravel()
    obs, exp, pval = _binned_chi2(d.ravel()[across], conn.ravel()[across], prob.ravel()[across], edges)
    assert obs.sum() > 1000 * (width / 0.05) ** 2 and pval > 1e-3  # fewer pairs when narrow


# The cell list draws Bernoulli synapses by thinning, in rounds of geometric gaps; a
# margin of 0 draws too few gaps at first, so most classes need further rounds (the
# path that the default margin takes with probability ~1e-9): both give the profile.
@pytest.mark.parametrize("margin", [6.0, 0.0], ids=["one-round", "more-rounds"])
def test_cell_list_on_a_torus_gives_the_profile_across_edges_and_corners(
        sampler_path, margin, monkeypatch):
    monkeypatch.setattr(spatial, "_GAP_MARGIN", margin)
    n, p, width = 3600, 0.8, 0.02
    pop = nj.Population("E", n, LIF, space=C.Sheet(extent=(1.0, 1.0), periodic=True))
    syn = _synapses(pop, pop, C.DistanceDependent(p=p, width=width))
    assert sampler_path == ["cells"]
    xy = pop.positions
    raw = xy[:, None, :] - xy[None, :, :]
    wrapped = raw - np.round(raw)
    d = np.sqrt(np.sum(wrapped**2, axis=-1))
    prob = p * np.exp(-0.5 * (d / width) ** 2)
    np.fill_diagonal(prob, 0.0)
    conn = np.zeros((n, n))
    conn[syn.post, syn.pre] = 1.0
    edges = np.linspace(0.0, 4 * width, 17)
    _, _, pval = _binned_chi2(d.ravel(), conn.ravel(), prob.ravel(), edges)
    assert pval > 1e-3  # a correct sampler passes in 999 of 1000 seeds
    # Pairs near only through an edge or a corner of the torus connect at their wrapped
    # distance's rate.
    across = np.any(np.abs(raw) > 0.5, axis=-1).ravel()
    obs, _, pval = _binned_chi2(d.ravel()[across], conn.ravel()[across], prob.ravel()[across], edges)
    assert obs.sum() > 500 and pval > 1e-3


def test_in_degree_mean_and_variance_match_bernoulli_theory_for_100k_neurons():
    # 100k postsynaptic neurons on a ring drawing from 800 presynaptic ones: in-degree i
    # is a sum of independent Bernoulli(p_ij), mean sum_j p_ij, variance
    # sum_j p_ij (1 - p_ij). Over 1e5 neurons the sample mean's relative error is
    # ~1e-4 and the sample variance's ~sqrt(2 / 1e5) = 0.45 %: 1 % (2.2 sigma) is the
    # issue's bound, 1.5 % keeps the check at > 3 sigma for a correct sampler.
    pre = nj.Population("E", 800, LIF, space=C.Ring(length=1.0))
    post = nj.Population("P", 100_000, LIF, space=C.Ring(length=1.0))
    syn = _synapses(pre, post, C.DistanceDependent(p=0.5, width=0.02))
    k = np.bincount(syn.post, minlength=post.n)
    xp, xq = pre.positions[:, 0], post.positions[:, 0]
    raw = xq[:, None] - xp[None, :]
    prob = 0.5 * np.exp(-0.5 * ((raw - np.round(raw)) / 0.02) ** 2)
    mean_theory = prob.sum(1)
    var_theory = np.mean((prob * (1 - prob)).sum(1)) + np.var(mean_theory)
    assert abs(k.mean() / mean_theory.mean() - 1) < 0.01
    assert abs(k.var() / var_theory - 1) < 0.015


@pytest.mark.parametrize("n, width, path", [(2000, 0.06, "all"), (20000, 0.003, "cells")])
def test_fixed_in_degree_draws_partners_by_the_profile(n, width, path, sampler_path):
    k = 40
    pop = nj.Population("E", n, LIF, space=C.Ring(length=1.0))
    syn = _synapses(pop, pop, C.DistanceDependent(width=width, in_degree=k))
    assert sampler_path == [path]
    np.testing.assert_array_equal(np.bincount(syn.post, minlength=n), k)
    assert not np.any(syn.pre == syn.post)
    assert np.unique(syn.post * n + syn.pre).size == syn.pre.size  # distinct partners
    # Successive sampling without replacement by weight f: with 40 draws among >= 120
    # neurons within 2 sigma the law is not exactly f, but the mean partner distance is
    # close to the f-weighted one (sigma sqrt(2/pi) on the continuum), far from
    # uniform (0.25); 10 % covers the without-replacement flattening.
    x = pop.positions[:, 0]
    raw = x[syn.post] - x[syn.pre]
    d = np.abs(raw - np.round(raw))
    assert abs(d.mean() / (width * np.sqrt(2 / np.pi)) - 1) < 0.1


def test_von_mises_feature_profile():
    n, p, kappa = 1200, 0.5, 2.0
    pop = nj.Population("E", n, LIF, features={"ori": C.Ring(length=180.0)})
    syn = _synapses(pop, pop, C.FeatureDependent("ori", p=p, kappa=kappa))
    th = pop.feature("ori")
    raw = th[:, None] - th[None, :]
    dth = np.abs(raw - 180.0 * np.round(raw / 180.0))
    prob = p * np.exp(kappa * (np.cos(2 * np.pi * dth / 180.0) - 1))
    np.fill_diagonal(prob, 0.0)
    conn = np.zeros((n, n))
    conn[syn.post, syn.pre] = 1.0
    _, _, pval = _binned_chi2(dth.ravel(), conn.ravel(), prob.ravel(), np.linspace(0, 90, 19))
    assert pval > 1e-3  # as above: a correct sampler passes in 999 of 1000 seeds


def test_torus_connects_across_corners_and_a_flat_sheet_does_not():
    def corner_partners(periodic):
        pop = nj.Population("E", 900, LIF, space=C.Sheet(periodic=periodic))
        syn = _synapses(pop, pop, C.DistanceDependent(p=1.0, width=0.05))
        xy = pop.positions
        corner = np.argmin(xy.sum(1))  # the neuron nearest (0, 0)
        partners = syn.pre[syn.post == corner]
        return np.sum(xy[partners].max(1) > 0.9)  # partners across an edge
    assert corner_partners(True) > 0
    assert corner_partners(False) == 0


def test_deterministic_given_a_key_and_simulates():
    pop = nj.Population("E", 400, LIF, space=C.Ring())
    rule = C.DistanceDependent(p=0.3, width=0.05)
    a, b, c = (_synapses(pop, pop, rule, key) for key in (1, 1, 2))
    np.testing.assert_array_equal(a.pre, b.pre)
    assert a.pre.size != c.pre.size or not np.array_equal(a.pre, c.pre)
    net = nj.Network(
        [pop], [nj.Projection("E", "E", rule, weight=0.5, synapse=nj.synapses.Exponential(tau=5.0))],
        [nj.inputs.Constant("E", amplitude=400.0)],
    )
    res = nj.simulate(net.build(jax.random.key(0)), 50.0, 0.1, key=jax.random.key(1))
    assert float(res.rate("E")) > 0


def test_bad_input_names_the_parameter():
    ring = C.Ring()
    with pytest.raises(ValueError, match=r"DistanceDependent width \[space units\] must lie in \(0, inf\)"):
        C.DistanceDependent(width=0.0)
    with pytest.raises(ValueError, match=r"connection probability p must lie in \[0, 1\]"):
        C.DistanceDependent(p=1.5)
    with pytest.raises(ValueError, match="profile must be 'gaussian' or 'exponential'"):
        C.DistanceDependent(profile="box")
    with pytest.raises(ValueError, match=r"Ring length \[space units\]"):
        C.Ring(length=-1.0)
    # A wrong keyword names the ones the space takes and how the others spell a size.
    with pytest.raises(TypeError, match=r"Ring\(\) got an unexpected keyword argument 'extent'; "
                                        r"Ring takes length\. Spaces: Ring\(length\)"):
        C.Ring(extent=180.0)
    with pytest.raises(TypeError, match=r"Sheet\(\) got an unexpected keyword argument 'length'; "
                                        r"Sheet takes extent, periodic, layout, seed\."):
        C.Sheet(length=1.0)
    with pytest.raises(TypeError, match=r"Line\(\) got unexpected keyword arguments 'extent', "
                                        r"'periodic'; Line takes length\."):
        C.Line(extent=1.0, periodic=True)
    with pytest.raises(TypeError, match=r"Positions takes xyz, extent, periodic\."):
        C.Positions(np.zeros((3, 2)), box=(1.0, 1.0))
    assert C.Ring(180.0) == C.Ring(length=180.0)  # positional and keyword still work
    assert C.Sheet((2.0, 1.0), False).geometry == ("sheet", (2.0, 1.0), False)
    a = nj.Population("A", 10, LIF, space=ring)
    b = nj.Population("B", 10, LIF, space=C.Ring(length=2.0))
    with pytest.raises(ValueError, match="different spaces"):
        _synapses(a, b, C.DistanceDependent())
    with pytest.raises(ValueError, match=r"in_degree \[synapses\] must lie in \[1, 9\]"):
        _synapses(a, a, C.DistanceDependent(in_degree=10))
    with pytest.raises(ValueError, match="has no feature 'ori'"):
        _synapses(a, a, C.FeatureDependent("ori"))
    c = nj.Population("C", 10, LIF, features={"x": C.Line()})
    with pytest.raises(ValueError, match="'von_mises' needs a periodic feature"):
        _synapses(c, c, C.FeatureDependent("x"))
    with pytest.raises(ValueError, match="Positions holds 3 coordinates for a population of 10"):
        nj.Population("E", 10, LIF, space=C.Positions(np.zeros((3, 2))))
