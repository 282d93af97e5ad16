"""Newton–Krylov fixed points from many starts, deduplication before the
eigendecomposition, non-converged starts, and slow points (Sussillo & Barak 2013), on
networks whose fixed and slow points are known in closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.connectivity.builders import FromMatrix
from neurojax.inputs.deterministic import Constant
from neurojax.network import Network, Population, Projection


def tanh_network(w, drive=None):
    """du/dt = -u + W tanh(u) + I (tau = 1 ms, Rate units; REFERENCES.md §13)."""
    n = w.shape[0]
    units = nj.neurons.Rate(tau=1.0, v_rest=0.0, transfer=nj.neurons.Tanh())
    inputs = [] if drive is None else [Constant("X", amplitude=drive)]
    return Network([Population("X", n, units)], [Projection("X", "X", FromMatrix(w))],
                   inputs=inputs).build(jax.random.key(0))


def bisect(f, lo, hi):
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(lo) * f(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def test_krylov_finds_the_dense_newton_points():
    # A driven random tanh network (g = 1.5, N = 30): the matrix-free Newton-Krylov
    # path (BiCGStab, the default for large networks; GMRES is tested below)
    # must land on the same points as dense Newton from every start, with the
    # same eigenvalues, kinds and deduplication. Both stop at Newton's step tolerance
    # 1e-10 (relative to 1 + |u|) on a Jacobian of condition ~10, hence 1e-8.
    n = 30
    rng = np.random.default_rng(3)
    w = 1.5 * rng.standard_normal((n, n)) / np.sqrt(n)
    model = tanh_network(w, drive=jnp.asarray(0.5 * rng.standard_normal(n)))
    starts = 2.0 * jax.random.normal(jax.random.key(4), (16, n))
    dense = nj.theory.fixed_points(model, starts, linear_solver="dense")
    krylov = nj.theory.fixed_points(model, starts, linear_solver="bicgstab")
    assert bool(dense.converged.all()) and bool(krylov.converged.all())
    assert float(jnp.max(jnp.abs(dense.states))) > 0.1  # a non-trivial point
    np.testing.assert_allclose(krylov.states, dense.states, atol=1e-8)
    np.testing.assert_allclose(krylov.eigenvalues, dense.eigenvalues, atol=1e-8)
    assert krylov.names() == dense.names()
    np.testing.assert_array_equal(krylov.distinct, dense.distinct)


def test_uncoupled_bistable_units_all_27_points_with_their_stability():
    # Three uncoupled units du/dt = -u + 2 tanh(u): each has the fixed points 0
    # (unstable, slope -1 + 2 = 1) and ±u* with u* = 2 tanh(u*) (stable, slope
    # -1 + 2 sech²u* < 0). The network has 3³ = 27 fixed points: 8 stable nodes (all
    # units at ±u*), 1 unstable node (all at 0) and 18 saddles. Starts: two per unit
    # and basin ({-2.5, -2}, {-0.3, 0.3}, {2, 2.5}), 6³ = 216, so each point is reached
    # 8 times and deduplication must keep exactly 27. The Krylov path is forced.
    model = tanh_network(2.0 * np.eye(3))
    axis = np.array([-2.5, -2.0, -0.3, 0.3, 2.0, 2.5])
    starts = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    fps = nj.theory.fixed_points(model, starts, linear_solver="gmres")
    assert int(fps.n_failed) == 0 and bool(fps.converged.all())
    assert int(fps.distinct.sum()) == 27
    u_star = bisect(lambda u: -u + 2 * np.tanh(u), 1.0, 3.0)  # 1.9150...
    expected = np.stack(np.meshgrid(*[[-u_star, 0.0, u_star]] * 3, indexing="ij"),
                        -1).reshape(-1, 3)
    found = np.asarray(fps.unique().states)
    # Newton's tolerance 1e-10 on a well-conditioned Jacobian (slopes 1 and -0.84).
    for point in expected:
        assert np.min(np.max(np.abs(found - point), axis=1)) < 1e-9
    names = fps.unique().names()
    assert (names.count("stable node"), names.count("saddle"),
            names.count("unstable node")) == (8, 18, 1)
    # Every row carries the eigenvalues of the point it reached (shared, not recomputed):
    # the diagonal slopes, -1 + 2 sech²(u).
    slopes = np.sort(-1.0 + 2.0 / np.cosh(np.asarray(fps.states)) ** 2, axis=1)[:, ::-1]
    np.testing.assert_allclose(np.asarray(fps.eigenvalues.real), slopes, atol=1e-9)

    # Non-converged starts are reported, not dropped: Newton needs ~5 steps from these
    # starts (quadratic convergence from an error of ~0.6 to 1e-10); capped at 2 steps
    # none converges (the same starts converged above, so the cap is the cause).
    capped = nj.theory.fixed_points(model, starts, linear_solver="gmres", max_steps=2)
    assert int(capped.n_failed) == len(starts) and not bool(capped.distinct.any())
    assert set(capped.names()) == {"not converged"}
    assert bool(jnp.isnan(capped.eigenvalues).all()) and not bool(capped.stable.any())
    assert capped.states.shape == starts.shape  # the rows stay, where Newton stopped


def test_slow_point_is_the_ghost_of_a_saddle_node():
    # One unit du/dt = F(u) = -u + 2 tanh(u) + 0.6. F has a local minimum at
    # u_s = -arccosh(sqrt 2) (F'(u_s) = 0) where F(u_s) = 0.0672 > 0: past the
    # saddle-node bifurcation the left fixed points are gone and their ghost is a slow
    # point, a local minimum of q = F²/2 with q = F(u_s)²/2; the only fixed point is
    # the root u_f ≈ 2.577 (q = 0). Starts on both sides find both.
    model = tanh_network(np.array([[2.0]]), drive=0.6)
    sp = nj.theory.slow_points(model, jnp.linspace(-3.0, 3.0, 13)[:, None])
    assert int(sp.n_failed) == 0
    found = sp.unique()
    assert found.states.shape == (2, 1)
    f = lambda u: -u + 2.0 * np.tanh(u) + 0.6
    u_s, u_f = -np.arccosh(np.sqrt(2.0)), bisect(f, 2.0, 3.0)
    # Fixed point first (q = 0 to rounding). Levenberg-Marquardt stops on its step
    # size (1e-10); the fixed point is a simple root, so it is accurate to that.
    np.testing.assert_allclose(found.states[0, 0], u_f, atol=1e-9)
    assert float(found.speed[0]) < 1e-20
    # At the slow point q is flat to second order, q - q_s ~ F F'' (u - u_s)² / 2, so
    # the position is resolved to ~sqrt(eps · q / q'') ~ 1e-7 and the speed to ~1e-14.
    np.testing.assert_allclose(found.states[1, 0], u_s, atol=1e-6)
    np.testing.assert_allclose(found.speed[1], 0.5 * f(u_s) ** 2, rtol=1e-8)


def test_bad_input_names_the_argument():
    model = tanh_network(2.0 * np.eye(3))
    with pytest.raises(ValueError, match="linear_solver must be one of"):
        nj.theory.fixed_points(model, jnp.zeros((1, 3)), linear_solver="cg")
    with pytest.raises(ValueError, match="slow_points needs initial_guesses or a key"):
        nj.theory.slow_points(model)
    with pytest.raises(ValueError, match=r"initial_guesses must have shape \(starts, 3\)"):
        nj.theory.slow_points(model, jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"spread \[state units\]"):
        nj.theory.slow_points(model, key=jax.random.key(0), spread=-1.0)
    lif = Network([Population("E", 4, nj.neurons.LIF())]).build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"model: population 'E' \(LIF\) emits spikes"):
        nj.theory.slow_points(lif, jnp.zeros((1, 4)))
