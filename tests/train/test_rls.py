"""`nj.train.force` (neurojax/train/rls.py; recursive least squares / PINning, Rajan, Harvey &
Tank 2016): the RLS update is exact least squares on a linear problem (shared P, and one P per
row for an arbitrary mask), only the plastic weights change, force matches a NumPy loop of the
same algorithm (block and arbitrary masks), the per-row path equals the shared one on a block,
a small network learns its target, and bad input is named."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.connectivity.builders import FromMatrix
from neurojax.train.rls import _block, _learn, _per_row, _rls_update, _train

N, T = 30, 120


def _model(n=N, g=1.5, seed=0):
    chi = np.random.default_rng(seed).standard_normal((n, n)) / np.sqrt(n)
    units = nj.neurons.Rate(tau=10.0, v_rest=0.0, transfer=nj.neurons.Tanh())
    net = nj.Network([nj.Population("X", n, units)], [nj.Projection("X", "X", FromMatrix(g * chi))],
                     inputs=[nj.inputs.Constant("X", amplitude=0.3)])
    return net.build(jax.random.key(0))


def _target(n=N, steps=T):
    t = np.arange(steps)[:, None]
    centers = np.linspace(0, steps, n)[None, :]
    return jnp.asarray(0.8 * np.exp(-0.5 * ((t - centers) / (0.15 * steps)) ** 2))


def test_rls_update_is_exact_least_squares_on_a_linear_readout():
    # z(t) = W rho(t): one pass of RLS from W0 with P(0) = I / alpha is the ridge
    # solution (alpha W0 + Z^T R)(R^T R + alpha I)^-1, and as alpha -> 0 least squares.
    rng = np.random.default_rng(0)
    steps, k, rows = 200, 8, 3
    rho = rng.standard_normal((steps, k))
    w_true = rng.standard_normal((rows, k))
    z = rho @ w_true.T + 0.1 * rng.standard_normal((steps, rows))  # not exactly solvable
    w0 = rng.standard_normal((rows, k))

    def run(alpha):
        def body(carry, x):
            P, w = carry
            r, zt = x
            return _rls_update(P, w, r, w @ r - zt), None
        (_, w), _ = jax.lax.scan(body, (jnp.eye(k) / alpha, jnp.asarray(w0)), (rho, z))
        return np.asarray(w)

    for alpha in (1.0, 10.0):
        ridge = (alpha * w0 + z.T @ rho) @ np.linalg.inv(rho.T @ rho + alpha * np.eye(k))
        np.testing.assert_allclose(run(alpha), ridge, rtol=0, atol=1e-10)
    lstsq = np.linalg.lstsq(rho, z, rcond=None)[0].T
    np.testing.assert_allclose(run(1e-9), lstsq, rtol=0, atol=1e-8)


def test_per_row_rls_is_each_rows_own_ridge_solution_on_its_own_regressors():
    # An arbitrary mask: row i trains only its inputs C_i (different sizes, one row none),
    # the rest of the row is fixed and still drives the output, z_i = w_i . rho. One pass
    # of force's per-row update (`_learn`, padded to k = max |C_i|) from w0 gives, for
    # each row, the ridge solution on its own regressors R_{C_i} and its own residual
    # target y_i = z_i - R_{not C_i} w0_{i, not C_i}:
    #   w_{i, C_i} = (alpha w0_{i, C_i} + y_i^T R_{C_i}) (R_{C_i}^T R_{C_i} + alpha I)^-1.
    rng = np.random.default_rng(0)
    steps, n_post, n_pre = 200, 6, 9
    mask = rng.random((n_post, n_pre)) < 0.4
    mask[2] = False                       # a row with no plastic input
    mask[4] = True                        # a row with every input plastic
    mask[5] = False
    mask[5, 3] = True                     # a row with a single one
    assert _block(mask) is None
    rho = rng.standard_normal((steps, n_pre))
    z = rho @ rng.standard_normal((n_post, n_pre)).T + 0.1 * rng.standard_normal((steps, n_post))
    w0 = rng.standard_normal((n_post, n_pre))
    rows, index = map(jnp.asarray, _per_row(mask))
    assert index.shape == (n_post - 1, n_pre)  # row 2 left out; k = 9 from row 4

    def run(alpha):
        P0 = jnp.broadcast_to(jnp.eye(index.shape[1]) / alpha, (rows.size, *2 * index.shape[1:]))

        def body(carry, x):
            P, w = carry
            r, zt = x
            return _learn(P, w, r, (w @ r - zt)[rows], rows, index), None
        (_, w), _ = jax.lax.scan(body, (P0, jnp.asarray(w0)), (rho, z))
        return np.asarray(w)

    for alpha in (1.0, 10.0):
        w = run(alpha)
        assert np.array_equal(w[~mask], w0[~mask])  # bit for bit
        for i in range(n_post):
            c = np.flatnonzero(mask[i])
            if c.size == 0:
                continue
            y = z[:, i] - rho[:, ~mask[i]] @ w0[i, ~mask[i]]
            ridge = np.linalg.solve(rho[:, c].T @ rho[:, c] + alpha * np.eye(c.size),
                                    alpha * w0[i, c] + rho[:, c].T @ y)
            # Float64 rounding of 200 rank-one updates of a 9 x 9 problem: 1e-12.
            np.testing.assert_allclose(w[i, c], ridge, rtol=0, atol=1e-12)


def test_per_row_path_equals_the_shared_path_on_a_block_mask():
    # On a block every row has the same regressors, so every per-row P_i follows the
    # shared P exactly: the same arithmetic, differing at most in the order of the
    # reductions (P rho, rho . k; 9 terms) that vmap may pick. Such rounding differences
    # (~1e-15 per update, 5 trials x 120 updates) can grow through the chaotic (g = 1.5)
    # rates before the next update reads them; 1e-9 on O(1) weights leaves room for that
    # growth while any real difference (one wrong row or column: O(0.1-1)) fails. On CPU
    # the two are bit-identical.
    n, trials = N, 5
    model, f = _model(), _target()
    mask = np.array(nj.train.Mask.presynaptic(jax.random.key(1), (n, n), 0.3).mask)
    mask[:7] = False  # a block of some rows only
    (rows, cols), (prow, index) = _block(mask), _per_row(mask)
    assert np.array_equal(rows, prow) and np.all(index == cols[None, :])
    state, one = model.init(jax.random.key(2), 1.0), jnp.asarray(1.0)
    shared = _train(model, state, f, jnp.asarray(rows), jnp.asarray(cols), one, 0, 1, trials, 1.0)
    per_row = _train(model, state, f, jnp.asarray(prow), jnp.asarray(index), one, 0, 1, trials,
                     1.0)
    w0 = np.asarray(model.projections[0].weights.weights)
    ws, wr = (np.asarray(r[0].projections[0].weights.weights) for r in (shared, per_row))
    assert np.abs(ws - w0)[mask].min() > 0 and np.abs(ws - w0).max() > 0.5  # it did train
    np.testing.assert_allclose(wr, ws, rtol=0, atol=1e-9)
    np.testing.assert_allclose(per_row[1], shared[1], rtol=0, atol=1e-9)  # pVar per trial
    # And force picks the shared path for a block: the same result.
    res = nj.train.force(model, f, projection="X->X", plastic=mask, dt=1.0, trials=trials,
                         key=jax.random.key(2))
    assert np.array_equal(np.asarray(res.model.projections[0].weights.weights), ws)


def test_an_arbitrary_mask_matches_a_numpy_loop_of_per_row_rls():
    # A random 30 % of the synapses (not a block): each row i runs RLS with its own
    # P_i over its own plastic inputs C_i, on the error of its own rate. The untrained
    # weights stay bit-identical.
    n, steps, trials, every, alpha = 12, 30, 3, 2, 0.5
    model, f = _model(n=n), np.asarray(_target(n=n, steps=steps))
    mask = np.array(nj.train.Mask.fraction(jax.random.key(4), (n, n), 0.3).mask)
    mask[3] = False  # a row that stays fixed
    plastic = nj.train.Mask(mask)
    assert _block(mask) is None
    res = nj.train.force(model, f, projection="X->X", plastic=plastic, dt=1.0, trials=trials,
                         every=every, alpha=alpha, key=jax.random.key(3))
    w = np.array(model.projections[0].weights.weights)
    C = [np.flatnonzero(mask[i]) for i in range(n)]
    P = [np.eye(c.size) / alpha for c in C]
    decay, pv = np.exp(-1.0 / 10.0), []
    for _ in range(trials):
        v, r_prev, w_sent, sse = np.zeros(n), np.zeros(n), w.copy(), 0.0
        for k in range(steps):
            h = w_sent @ r_prev + 0.3
            v = h + (v - h) * decay
            r = np.tanh(v)
            w_sent = w.copy()
            e = r - f[k]
            sse += e @ e
            if k % every == 0:
                for i, c in enumerate(C):
                    if c.size:
                        rho = r_prev[c]
                        kk = P[i] @ rho
                        g = 1.0 / (1.0 + rho @ kk)
                        P[i] -= g * np.outer(kk, kk)
                        w[i, c] -= g * e[i] * kk
            r_prev = r
        pv.append(1.0 - sse / np.sum((f - f.mean()) ** 2))
    w1 = np.asarray(res.model.projections[0].weights.weights)
    np.testing.assert_allclose(w1, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.pvar, pv, rtol=1e-12)
    w0 = np.asarray(model.projections[0].weights.weights)
    assert np.array_equal(w1[~mask], w0[~mask]) and np.all(w1[mask] != w0[mask])


def test_only_plastic_weights_change_and_the_rest_are_bit_identical():
    model = _model()
    plastic = nj.train.Mask.presynaptic(jax.random.key(1), (N, N), 0.2)
    res = nj.train.force(model, _target(), projection="X->X", plastic=plastic, dt=1.0,
                         trials=2, key=jax.random.key(2))
    w0 = np.asarray(model.projections[0].weights.weights)
    w1 = np.asarray(res.model.projections[0].weights.weights)
    mask = np.asarray(plastic.mask)
    assert mask.sum() == N * 6 and np.all(mask.all(axis=0) | ~mask.any(axis=0))  # whole columns
    assert np.array_equal(w1[~mask], w0[~mask])  # bit for bit
    assert np.all(w1[mask] != w0[mask])
    # Everything but the trained matrix is the same object content.
    same = jax.tree_util.tree_map(lambda a, b: bool(np.array_equal(a, b)),
                                  model.populations, res.model.populations)
    assert all(jax.tree_util.tree_leaves(same))
    assert res.pvar.shape == (2,) and res.rates.shape == (T, N)


def test_matches_a_numpy_loop_of_the_same_algorithm():
    # An eager NumPy reference: exponential-Euler tanh units, the drive of step k is
    # W r(k-1) with the weights in force at step k-1, RLS every `every` steps on the
    # error r(k) - f(k) with regressors r(k-1) of the plastic columns, P carried over.
    n, steps, trials, every, alpha = 12, 30, 3, 2, 0.5
    model, f = _model(n=n), np.asarray(_target(n=n, steps=steps))
    plastic = nj.train.Mask.presynaptic(jax.random.key(1), (n, n), 0.25)
    res = nj.train.force(model, f, projection="X->X", plastic=plastic, dt=1.0, trials=trials,
                         every=every, alpha=alpha, key=jax.random.key(3))
    w = np.array(model.projections[0].weights.weights)
    cols = np.flatnonzero(np.asarray(plastic.mask).any(axis=0))
    P, decay, pv = np.eye(cols.size) / alpha, np.exp(-1.0 / 10.0), []
    for _ in range(trials):
        v, r_prev, w_sent, sse = np.zeros(n), np.zeros(n), w.copy(), 0.0
        for k in range(steps):
            h = w_sent @ r_prev + 0.3
            v = h + (v - h) * decay
            r = np.tanh(v)
            w_sent = w.copy()
            e = r - f[k]
            sse += e @ e
            if k % every == 0:
                rho = r_prev[cols]
                kk = P @ rho
                c = 1.0 / (1.0 + rho @ kk)
                P -= c * np.outer(kk, kk)
                w[:, cols] -= c * np.outer(e, kk)
            r_prev = r
        pv.append(1.0 - sse / np.sum((f - f.mean()) ** 2))
    np.testing.assert_allclose(res.model.projections[0].weights.weights, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.pvar, pv, rtol=1e-12)
    np.testing.assert_allclose(res.rates[-1], r, rtol=1e-12)


def test_a_small_network_learns_its_target_and_pvar_rises():
    # Every weight plastic (FORCE); each trial starts at the target's first rates.
    n, steps = 50, 300
    target = np.asarray(_target(n=n, steps=steps))
    chi = np.random.default_rng(0).standard_normal((n, n)) / np.sqrt(n)
    units = nj.neurons.Rate(tau=10.0, v_rest=0.0, transfer=nj.neurons.Tanh())
    net = nj.Network([nj.Population("X", n, units, initial={"v": np.arctanh(target[0])})],
                     [nj.Projection("X", "X", FromMatrix(1.5 * chi))])
    model = net.build(jax.random.key(0))
    res = nj.train.force(model, target, projection="X->X",
                         plastic=np.ones((n, n), bool), dt=1.0, trials=20, key=jax.random.key(2))
    assert res.pvar[-1] > 0.8 and res.pvar[-1] > res.pvar[0] + 0.5, res.pvar
    # The trained network, run without learning, follows the target far better than the
    # untrained one (at this small N the chaotic rest drifts: 0.58 here; the tutorial's
    # N = 400-500 networks reach pVar > 0.8 without learning).
    def free(m):
        out = nj.simulate(m, duration=steps * 1.0, dt=1.0, key=jax.random.key(2),
                          record=nj.Record(spikes=["X"]))
        return float(nj.train.pvar(out.spikes["X"], target))

    before, after = free(model), free(res.model)
    assert after > 0.5 and after > before + 0.5, (before, after)


def test_pvar_of_the_target_is_one_and_of_its_mean_is_zero():
    f = _target()
    assert float(nj.train.pvar(f, f)) == 1.0
    np.testing.assert_allclose(nj.train.pvar(jnp.full_like(f, jnp.mean(f)), f), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="rates"):
        nj.train.pvar(f[:-1], f)


def test_bad_arguments_raise_naming_them():
    model, f = _model(), _target()
    kw = dict(projection="X->X", dt=1.0, key=jax.random.key(0))
    good = nj.train.Mask.presynaptic(jax.random.key(1), (N, N), 0.2)
    with pytest.raises(ValueError, match="plastic must have the weights' shape"):
        nj.train.force(model, f, plastic=np.ones((N, N + 1), bool), **kw)
    with pytest.raises(ValueError, match="plastic selects no weight"):
        nj.train.force(model, f, plastic=np.zeros((N, N), bool), **kw)
    with pytest.raises(ValueError, match="plastic must be boolean"):
        nj.train.force(model, f, plastic=np.full((N, N), 0.5), **kw)
    # A non-block mask needs one P per row: 30 rows of up to k x k floats, over the bound.
    scattered = nj.train.Mask.fraction(jax.random.key(1), (N, N), 0.2)
    with pytest.raises(ValueError, match="max_p_bytes"):
        nj.train.force(model, f, plastic=scattered, max_p_bytes=1000, **kw)
    for bad in (0, -1.0, True, float("nan")):
        with pytest.raises(ValueError, match="max_p_bytes"):
            nj.train.force(model, f, plastic=scattered, max_p_bytes=bad, **kw)
    for alpha in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            nj.train.force(model, f, plastic=good, alpha=alpha, **kw)
    with pytest.raises(ValueError, match="target must have shape"):
        nj.train.force(model, f[:, :-1], plastic=good, **kw)
    with pytest.raises(ValueError, match="trials"):
        nj.train.force(model, f, plastic=good, trials=0, **kw)
    with pytest.raises(ValueError, match="unknown projection"):
        nj.train.force(model, f, plastic=good, **{**kw, "projection": "Y->X"})
    with pytest.raises(ValueError, match="fraction"):
        nj.train.Mask.presynaptic(jax.random.key(1), (N, N), 1.5)
    # Projections whose drive is not sum_j w_ij rho_j of a rate population's input.
    rate_post = dict(dt=1.0, key=jax.random.key(0), plastic=np.ones((2, 4), bool))
    units = nj.neurons.Rate(tau=10.0, v_rest=0.0, transfer=nj.neurons.Tanh())
    lif = nj.neurons.LIF()
    for post, proj_kw, match in (
        (lif, {}, "must end on a rate population"),
        (units, dict(receptor=nj.synapses.Conductance(e_rev=0.0)), "Current receptor"),
        (units, dict(synapse=nj.synapses.Exponential(tau=np.array([5.0, 6.0]))),
         "linear synapse kinetics"),
    ):
        net = nj.Network([nj.Population("S", 4, units), nj.Population("R", 2, post)],
                         [nj.Projection("S", "R", FromMatrix(np.ones((2, 4))),
                                        layout=nj.connectivity.Dense(), **proj_kw)])
        with pytest.raises(ValueError, match=match):
            nj.train.force(net.build(jax.random.key(0)), np.zeros((5, 2)), projection="S->R",
                           **rate_post)


def _readout(pre_spiking, n_s=10, n_r=3, steps=60, delay=0.0, tau_s=20.0, seed=0):
    """A presynaptic population S (LIF, or Rate units) driven by frozen noise, projecting
    through Exponential(tau_s) synapses with `delay` [ms] onto a rate readout R."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps) * 1.0
    decay = np.exp(-1.0 / 50.0)
    noise, h = rng.standard_normal((steps, n_s)), np.zeros((steps, n_s))
    for k in range(1, steps):
        h[k] = decay * h[k - 1] + np.sqrt(1 - decay**2) * noise[k]
    if pre_spiking:
        pre = nj.neurons.LIF()
        drive = [nj.inputs.Constant("S", amplitude=rng.uniform(150.0, 250.0, n_s)),
                 nj.inputs.Waveform("S", times=t, values=60.0 * h)]
    else:
        pre = nj.neurons.Rate(tau=10.0, v_rest=0.0, transfer=nj.neurons.Tanh())
        drive = [nj.inputs.Waveform("S", times=t, values=h)]
    readout = nj.neurons.Rate(tau=5.0, v_rest=0.0, transfer=nj.neurons.Tanh())
    net = nj.Network(
        [nj.Population("S", n_s, pre), nj.Population("R", n_r, readout)],
        [nj.Projection("S", "R", FromMatrix(0.01 * rng.standard_normal((n_r, n_s))),
                       synapse=nj.synapses.Exponential(tau=tau_s), delay=delay,
                       layout=nj.connectivity.Dense())],
        inputs=drive)
    return net.build(jax.random.key(0)), t


@pytest.mark.parametrize("pre_spiking", [True, False])
def test_filtered_presynaptic_activity_matches_a_numpy_loop(pre_spiking):
    # Spiking FORCE (Nicola & Clopath 2017): the regressors of a projection with a
    # delay (here 2 steps) and Exponential kinetics are each presynaptic neuron's output
    # delayed and filtered by the same kinetics (graded outputs scaled by the network's
    # graded gain 1 - e^{-dt/tau}), i.e. what it contributes to the drive sum_j w_ij s_j.
    # The reference steps the readout exactly as the network does: the weighted
    # arrivals, sent with the weights in force when they left, are filtered after the sum.
    n_s, n_r, steps, trials, every, alpha, tau_s, d = 10, 3, 60, 2, 1, 50.0, 20.0, 2
    model, t = _readout(pre_spiking, n_s, n_r, steps, delay=2.0, tau_s=tau_s)
    f = 0.5 * np.sin(2 * np.pi * t[:, None] / 40.0 + np.arange(n_r))
    mask = np.random.default_rng(1).random((n_r, n_s)) < 0.5
    assert _block(mask) is None
    res = nj.train.force(model, f, projection="S->R", plastic=mask, dt=1.0, trials=trials,
                         every=every, alpha=alpha, key=jax.random.key(3))
    out = nj.simulate(model, duration=steps * 1.0, dt=1.0, key=jax.random.key(3),
                      record=nj.Record(spikes=["S"]))
    a = np.asarray(out.spikes["S"])  # S does not depend on the trained weights
    if pre_spiking:
        assert 0 < a.sum() and set(np.unique(a)) == {0.0, 1.0}
    q = np.exp(-1.0 / tau_s)
    gain = 1.0 if pre_spiking else 1.0 - q
    w = np.array(model.projections[0].weights.weights)
    C = [np.flatnonzero(mask[i]) for i in range(n_r)]
    P = [np.eye(c.size) / alpha for c in C]
    decay = np.exp(-1.0 / 5.0)
    for _ in range(trials):
        v, s_post, buf = np.zeros(n_r), np.zeros(n_r), np.zeros((d, n_r))
        s_pre, sent = np.zeros(n_s), np.zeros((d, n_s))
        for k in range(steps):
            slot = k % d
            s_post = s_post + buf[slot] * gain  # post side: filter of the weighted sum
            buf[slot] = 0.0
            hk = s_post
            s_post = s_post * q
            v = hk + (v - hk) * decay
            r = np.tanh(v)
            s_pre = s_pre + sent[slot] * gain   # regressors: per presynaptic neuron
            rho = s_pre
            s_pre = s_pre * q
            buf[slot] += w @ a[k]
            e = r - f[k]
            if k % every == 0:
                for i, c in enumerate(C):
                    kk = P[i] @ rho[c]
                    g = 1.0 / (1.0 + rho[c] @ kk)
                    P[i] -= g * np.outer(kk, kk)
                    w[i, c] -= g * e[i] * kk
            sent[slot] = a[k]
    w1 = np.asarray(res.model.projections[0].weights.weights)
    np.testing.assert_allclose(w1, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.rates[-1], r, rtol=0, atol=1e-12)
    w0 = np.asarray(model.projections[0].weights.weights)
    assert np.array_equal(w1[~mask], w0[~mask])
    # Exactly the plastic weights from neurons that were active changed (a silent one's
    # regressor stays 0, so RLS leaves its weights alone).
    assert np.array_equal(w1 != w0, mask & np.any(a != 0, axis=0)[None, :])


def test_a_spiking_population_trains_a_rate_readout():
    # Spiking FORCE in its readout form: 100 LIF neurons driven by frozen noise, their
    # spikes filtered by Exponential(5 ms) synapses onto two Tanh readout units that must
    # follow phase-shifted sinusoids (period 100 ms). The drive filters the weighted sum,
    # so an update acts over tau_s and the readout's tau: a larger alpha (30) than the
    # rate network's keeps RLS from overshooting (alpha = 1 gives pVar ~ 0 here).
    model, t = _readout(True, n_s=100, n_r=2, steps=500, tau_s=5.0)
    target = 0.5 * np.sin(2 * np.pi * t[:, None] / 100.0 + np.array([0.0, 1.5]))
    res = nj.train.force(model, target, projection="S->R", plastic=np.ones((2, 100), bool),
                         dt=1.0, trials=10, alpha=30.0, key=jax.random.key(2))

    def free(m):
        out = nj.simulate(m, duration=500.0, dt=1.0, key=jax.random.key(2),
                          record=nj.Record(spikes=["R"]))
        return float(nj.train.pvar(out.spikes["R"], target))

    before, after = free(model), free(res.model)
    assert res.pvar[-1] > res.pvar[0] + 0.5, res.pvar
    assert after > 0.6 and after > before + 0.6, (before, after)
