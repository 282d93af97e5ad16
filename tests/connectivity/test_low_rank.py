"""`LowRank` connectivity (Mastrogiuseppe & Ostojic 2018; REFERENCES.md §13): the built
matrix is m n^T / N + g chi, and the simulated network's activity along m matches the
mean-field theory (`nj.theory.low_rank_mean_field`) on both sides of M_m M_n = 1."""

import jax
import numpy as np
import pytest

import neurojax as nj

C = nj.connectivity


def _tanh_network(rule, n, start):
    units = nj.neurons.Rate(tau=1.0, v_rest=0.0, transfer=nj.neurons.Tanh())
    pop = nj.Population("X", n, units, initial={"v": start})
    return nj.Network([pop], [nj.Projection("X", "X", rule)])


def test_built_matrix_is_the_low_rank_part_plus_the_random_part():
    rng = np.random.default_rng(0)
    m, n = rng.standard_normal((50, 2)), rng.standard_normal((50, 2))
    model = _tanh_network(C.LowRank(m, n), 50, 0.0).build(jax.random.key(0))
    np.testing.assert_allclose(model.projections[0].weights.matrix(), m @ n.T / 50, rtol=1e-14)
    # The random part: entries of (J - m n^T / N) sqrt(N) / g are standard normal.
    noisy = _tanh_network(C.LowRank(m, n, g=0.7), 50, 0.0).build(jax.random.key(1))
    chi = (np.asarray(noisy.projections[0].weights.matrix()) - m @ n.T / 50) * np.sqrt(50) / 0.7
    # 2500 draws: mean within 4 standard errors (0.08) of 0, std within 5 % of 1.
    assert abs(chi.mean()) < 0.08 and abs(chi.std() - 1.0) < 0.05


def _kappa_and_variance(m_m, seed, sign=1.0, n=2000):
    rule = C.LowRank.gaussian(jax.random.key(seed), n, m_m, 1.0, 1.0, 1.0, g=0.5)
    model = _tanh_network(rule, n, sign * 0.5 * rule.m[:, 0]).build(jax.random.key(seed + 100))
    res = nj.simulate(model, 100.0, 0.1, key=jax.random.key(0), record=nj.Record(spikes=()))
    x = np.asarray(res.state.neurons[0].v)
    return np.mean(rule.n[:, 0] * np.tanh(x)), np.var(x)


def test_activity_along_m_matches_mean_field_theory():
    # §13: x = 0 below M_m M_n = 1 ...
    assert abs(_kappa_and_variance(0.8, 0)[0]) < 1e-6
    # ... and kappa = 0.7929, Delta_0 = 0.8091 at M_m = 2, g = 0.5 (theory to 5e-5). One
    # N = 4000 realisation lies within 8 % (§13's tolerance: the realised overlap n^T m / N
    # fluctuates by O(1/sqrt N)); the mean of three N = 2000 realisations has about the
    # same spread, so 8 % again.
    kappa_theory, delta_theory = nj.theory.low_rank_mean_field(2.0, 1.0, 1.0, 0.5)
    runs = np.array([_kappa_and_variance(2.0, s) for s in range(3)])
    np.testing.assert_allclose(runs.mean(0), [kappa_theory, delta_theory], rtol=0.08)
    # The sign of kappa follows the initial condition (both states are stable).
    assert _kappa_and_variance(2.0, 0, sign=-1.0)[0] == pytest.approx(-runs[0, 0], rel=1e-6)


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="one rank"):
        C.LowRank(np.ones((5, 2)), np.ones((5, 1)))
    with pytest.raises(ValueError, match=r"LowRank g must lie in \[0, inf\)"):
        C.LowRank(np.ones(5), np.ones(5), g=-1.0)
    with pytest.raises(ValueError, match="LowRank m contains NaN"):
        C.LowRank(np.full(5, np.nan), np.ones(5))
    with pytest.raises(ValueError, match="n_post = 4 rows"):
        _tanh_network(C.LowRank(np.ones(5), np.ones(4)), 4, 0.0).build(jax.random.key(0))
