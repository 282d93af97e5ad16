"""Constraint parameterisations: exact after every optimiser step, on dense and sparse
layouts, differentiable, and clear errors for bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neurojax as nj
from neurojax.train import Bounded, DANN, Dale, Frozen, Mask, constrain, trainable

N = 10
SIGN = np.where(np.arange(N) < 8, 1.0, -1.0)  # 80 % excitatory, 20 % inhibitory


def _weights(seed=0):
    return np.abs(np.random.default_rng(seed).normal(size=(N, N))) * SIGN[None, :] * 0.3


def _rate_model(layout, weight=None, connectivity=None):
    pop = nj.Population("R", N, nj.neurons.FiringRate(tau=5.0, transfer=nj.neurons.Tanh()))
    proj = nj.Projection("R", "R", connectivity or nj.connectivity.AllToAll(),
                         weight=_weights() if weight is None else weight, layout=layout)
    net = nj.Network([pop], [proj], inputs=[nj.inputs.Constant("R", amplitude=0.4)])
    return net.build(jax.random.key(0))


LAYOUTS = [nj.connectivity.Dense(), nj.connectivity.Sparse(kernel="loop")]
LAYOUT_IDS = ["dense", "sparse"]


def _random_steps(model, optimizer, n_steps, key):
    """Apply `n_steps` optimiser updates with large random gradients to the trainable
    parameters; returns the model after every step (stacked)."""
    params, static = eqx.partition(model, trainable(model, "*.weight*"))
    opt_state = optimizer.init(params)

    def body(carry, k):
        params, opt_state = carry
        leaves, treedef = jax.tree.flatten(params)
        ks = jax.random.split(k, len(leaves))
        grads = jax.tree.unflatten(treedef, [10.0 * jax.random.normal(kk, x.shape)
                                             for kk, x in zip(ks, leaves)])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state), params

    _, history = jax.lax.scan(body, (params, opt_state), jax.random.split(key, n_steps))
    return static, history


def _matrices(static, history):
    return jax.vmap(lambda p: eqx.combine(p, static).projections[0].weights.matrix())(history)


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_dale_signs_exact_after_many_random_steps(layout):
    model = constrain(_rate_model(layout), {"R->R": Dale(SIGN)})
    # AllToAll has no self-connections: the dense diagonal starts at the softplus floor.
    np.testing.assert_allclose(model.projections[0].weights.matrix(), _weights() * (1 - np.eye(N)),
                               atol=1e-6)
    static, history = _random_steps(model, optax.adam(1.0), 200, jax.random.key(1))
    w = np.asarray(_matrices(static, history))
    assert np.all(w * SIGN[None, None, :] >= 0.0)  # every step, every synapse
    assert np.ptp(w) > 1.0  # the steps did move the weights


def test_dale_sign_read_from_the_weights_and_per_projection():
    # Two populations, signs per projection; sparse FixedProbability with a scalar weight.
    pops = [nj.Population("E", 8, nj.neurons.FiringRate(tau=5.0, transfer=nj.neurons.Tanh())),
            nj.Population("I", 2, nj.neurons.FiringRate(tau=5.0, transfer=nj.neurons.Tanh()))]
    projs = [nj.Projection("E", ["E", "I"], nj.connectivity.FixedProbability(0.5), weight=0.2,
                           layout=nj.connectivity.Sparse(kernel="loop")),
             nj.Projection("I", "E", nj.connectivity.FixedProbability(0.5), weight=-0.4,
                           layout=nj.connectivity.Sparse(kernel="loop"))]
    model = nj.Network(pops, projs).build(jax.random.key(0))
    before = [np.asarray(p.weights.matrix()) for p in model.projections]
    model = constrain(model, {"E->*": Dale(+1), "I->*": Dale()})
    for p, w in zip(model.projections, before):
        # Only existing synapses: the structure is unchanged, values equal to 1e-12.
        np.testing.assert_allclose(p.weights.matrix(), w, atol=1e-12)
    static, history = _random_steps(model, optax.sgd(0.5), 30, jax.random.key(2))
    matrices = jax.jit(jax.vmap(lambda p: [q.weights.matrix() for q in eqx.combine(p, static).projections]))
    for w, s, b in zip(matrices(history), [1, 1, -1], before):
        assert np.all(np.asarray(w) * s >= 0)
        assert np.all(np.asarray(w)[:, b == 0] == 0)  # no synapse created


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_mask_keeps_frozen_entries_bit_identical(layout):
    model = _rate_model(layout)
    mask = Mask.fraction(jax.random.key(3), (N, N), 0.2)
    assert int(np.sum(mask.mask)) == 20
    model = constrain(model, {"R->R": mask})
    w0 = np.asarray(model.projections[0].weights.matrix())
    # adamw decays every free value, masked or not: the frozen weights must not move.
    static, history = _random_steps(model, optax.adamw(0.5, weight_decay=0.1), 50,
                                    jax.random.key(4))
    w = np.asarray(_matrices(static, history))
    frozen = ~np.asarray(mask.mask)
    assert np.array_equal(w[:, frozen], np.broadcast_to(w0[frozen], (50, frozen.sum())))
    trained = np.asarray(mask.mask) & (w0 != 0)
    assert np.all(np.any(w[-1] != w0, axis=None)) and np.all(w[-1][trained] != w0[trained])


def test_connectome_mask_never_creates_a_synapse():
    connectome = np.random.default_rng(5).random((N, N)) < 0.3
    model = constrain(_rate_model(nj.connectivity.Dense(), weight=_weights() * connectome),
                      {"R->R": Mask(connectome)})
    static, history = _random_steps(model, optax.adam(0.5), 50, jax.random.key(6))
    w = np.asarray(_matrices(static, history))
    assert np.all(w[:, ~connectome] == 0.0)


@pytest.mark.parametrize("constraint", [Dale(+1), Bounded(lo=0.0, hi=2.0), Mask(np.ones((N, N), bool))],
                         ids=["dale", "bounded", "mask"])
def test_constraints_never_create_synapses_a_dense_random_projection_lacks(constraint):
    # FixedProbability on the dense layout with a scalar weight records which synapses
    # exist (counts): its zeros are absent synapses, not weights at 0. Before, Dale gave
    # them the 1e-6 floor and they trained like synapses (a fixed point moved by 1e-4).
    rule = nj.connectivity.FixedProbability(0.3)
    model = _rate_model(nj.connectivity.Dense(), weight=0.25, connectivity=rule)
    w0 = np.asarray(model.projections[0].weights.matrix())
    exists = w0 != 0
    assert 0 < exists.mean() < 1
    constrained = constrain(model, {"R->R": constraint})
    # Unchanged at the start: exactly, or within the softplus round trip's rounding.
    np.testing.assert_allclose(np.asarray(constrained.projections[0].weights.matrix()), w0,
                               rtol=1e-12, atol=0)
    static, history = _random_steps(constrained, optax.adam(0.5), 50, jax.random.key(8))
    w = np.asarray(_matrices(static, history))
    assert np.all(w[:, ~exists] == 0.0)
    assert np.ptp(w[:, exists]) > 0.05  # the existing synapses did train


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("bounds", [dict(lo=-0.5, hi=0.5), dict(max_change=0.05),
                                    dict(lo=-0.6, hi=1.0, max_change=0.1), dict(lo=-1.0)])
def test_bounds_hold_after_many_random_steps(layout, bounds):
    w_init = np.clip(_weights(), -0.5, 0.5)
    model = constrain(_rate_model(layout, weight=w_init), {"R->R": Bounded(**bounds)})
    w0 = np.asarray(_rate_model(layout, weight=w_init).projections[0].weights.matrix())
    # The parameterisation starts at the initial weights (a weight on a bound starts
    # 1e-6 of the interval inside it).
    np.testing.assert_allclose(model.projections[0].weights.matrix(), w0, atol=2e-6)
    static, history = _random_steps(model, optax.adam(1.0), 100, jax.random.key(7))
    w = np.asarray(_matrices(static, history))
    lo, hi = bounds.get("lo", -np.inf), bounds.get("hi", np.inf)
    if "max_change" in bounds:
        # The padding of the sparse layout and absent synapses read as 0 in matrix().
        exists = np.asarray(_rate_model(layout).projections[0].weights.matrix()) != 0
        # Exact in floating point: within [w0 - c, w0 + c] as rounded (|w - w0| itself
        # may exceed c by one rounding of the subtraction).
        c = bounds["max_change"]
        assert np.all((w >= w0 - c) & (w <= w0 + c)) and np.all(np.abs(w - w0) <= c * (1 + 1e-12))
    assert np.all((w >= lo) & (w <= hi))
    assert np.ptp(w) > 0.05


def test_dann_factors_and_balanced_initialisation():
    model = constrain(_rate_model(nj.connectivity.Dense()), {"R->R": DANN(3)})
    cw = model.projections[0].weights
    ee, ei, ie = (jax.nn.softplus(f) for f in cw.free)
    assert ee.shape == (N, N) and ei.shape == (N, 3) and ie.shape == (3, N)
    np.testing.assert_allclose(cw.matrix(), ee - ei @ ie, rtol=1e-12)
    # Cornford et al.'s initialisation subtracts each column's mean: columns sum to 0
    # (up to the 1e-6 softplus floor on the zero diagonal, times N).
    np.testing.assert_allclose(np.sum(cw.matrix(), axis=0), 0.0, atol=1e-4)
    static, history = _random_steps(model, optax.adam(1.0), 20, jax.random.key(8))
    last = eqx.combine(jax.tree.map(lambda x: x[-1], history), static).projections[0].weights
    assert all(np.all(np.asarray(jax.nn.softplus(f)) >= 0) for f in last.free)


@pytest.mark.parametrize("constraint,layout", [
    (Dale(SIGN), nj.connectivity.Dense()), (Dale(SIGN), nj.connectivity.Sparse(kernel="loop")),
    (Bounded(lo=-1.0, hi=1.0), nj.connectivity.Dense()), (Mask(np.eye(N) == 0), nj.connectivity.Dense()),
    (DANN(2), nj.connectivity.Dense())], ids=["dale", "dale-sparse", "bounded", "mask", "dann"])
def test_gradient_matches_finite_differences(constraint, layout):
    # A smooth rate network (tanh units): the loss is a smooth function of the free
    # parameters, so the gradient through the constraint and simulate (the sparse
    # layout through its custom VJP) must match central differences (h = 1e-3
    # relative: O(h^2) truncation, float64 round-off).
    model = constrain(_rate_model(layout), {"R->R": constraint})

    def loss(m):
        res = nj.simulate(m, 5.0, 0.1, key=jax.random.key(1),
                          record=nj.Record(spikes=(), rates=["R"], every=0.5))
        return jnp.sum(res.rates["R"] * jnp.linspace(1.0, 2.0, res.rates["R"].shape[-1]))

    report = nj.check_grad(loss, model, where=lambda m: m.projections[0].weights.free, step=1e-3)
    for row in report.rows:
        assert row.ratio == pytest.approx(1.0, rel=1e-4), report.table()


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_constrained_projection_simulates_like_its_weights(layout):
    model = _rate_model(layout)
    constrained = constrain(model, {"R->R": Bounded(max_change=0.1)})
    rec = nj.Record(spikes=(), rates=["R"])
    a = nj.simulate(model, 5.0, 0.1, key=jax.random.key(1), record=rec).rates["R"]
    b = nj.simulate(constrained, 5.0, 0.1, key=jax.random.key(1), record=rec).rates["R"]
    # max_change starts at tanh(0) = 0: the same weights; sums in a different order.
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_a_spiking_sparse_network_runs_and_differentiates_under_dale():
    pop = nj.Population("E", 20, nj.neurons.LIF(), initial={"v": nj.Uniform(-65.0, -50.0)})
    proj = nj.Projection("E", "E", nj.connectivity.FixedProbability(0.3), weight=20.0,
                         synapse=nj.synapses.Exponential(tau=5.0),
                         layout=nj.connectivity.Sparse(kernel="loop"))
    net = nj.Network([pop], [proj], inputs=[nj.inputs.Constant("E", amplitude=400.0)])
    model = constrain(net.build(jax.random.key(0)), {"E->E": Dale(+1)})

    def loss(m):
        res = nj.simulate(m, 10.0, 0.1, key=jax.random.key(1),
                          record=nj.Record(spikes=(), rates=["E"]))
        return jnp.mean(res.rates["E"])

    g = eqx.filter_grad(loss)(model).projections[0].weights.free
    assert np.all(np.isfinite(np.asarray(g))) and np.any(np.asarray(g) != 0)


def test_trainable_selects_by_name_and_frozen_never_trains():
    model = constrain(_rate_model(nj.connectivity.Dense()), {"R->R": Dale(SIGN)})
    assert "R->R.weight.free" in model.params()
    spec = trainable(model, "*.weight*")
    params, _ = eqx.partition(model, spec)
    assert [x.shape for x in jax.tree.leaves(params)] == [(N, N)]
    spec = trainable(model, exclude=["R.*", "*.weight*"])
    assert [x.shape for x in jax.tree.leaves(eqx.partition(model, spec)[0])] == [()]  # amplitude
    tree = {"a": jnp.ones(3), "b": Frozen(jnp.ones(2)), "n": jnp.arange(3)}
    params, _ = eqx.partition(tree, trainable(tree))
    assert [x.shape for x in jax.tree.leaves(params)] == [(3,)]


def test_resolve_gives_the_plain_container_with_the_same_weights():
    for layout in LAYOUTS:
        model = constrain(_rate_model(layout), {"R->R": Dale(SIGN)})
        plain = nj.train.resolve(model)
        assert type(plain.projections[0].weights) is type(model.projections[0].weights.base)
        np.testing.assert_array_equal(plain.projections[0].weights.matrix(),
                                      model.projections[0].weights.matrix())


def test_standalone_use_on_a_matrix():
    w = jnp.asarray(_weights())
    dale = Dale(SIGN)
    np.testing.assert_allclose(dale.apply(dale.init(w)), w, atol=1e-6 * np.abs(w).max())


def test_bad_input_is_a_clear_error():
    dense = _rate_model(nj.connectivity.Dense())
    sparse = _rate_model(nj.connectivity.Sparse())
    with pytest.raises(ValueError, match=r"Mask mask must have shape \(n_post, n_pre\) = \(10, 10\)"):
        constrain(dense, {"R->R": Mask(np.ones((3, 3), bool))})
    with pytest.raises(ValueError, match=r"Bounded needs lo < hi, got lo = 1.0 and hi = 1.0"):
        Bounded(lo=1.0, hi=1.0)
    with pytest.raises(ValueError, match=r"max_change must lie in \(0, inf\)"):
        Bounded(max_change=-0.1)
    for fraction in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"fraction must lie in \(0, 1\]"):
            Mask.fraction(jax.random.key(0), (N, N), fraction)
    with pytest.raises(ValueError, match=r"sign must have one entry per presynaptic neuron, shape \(10,\)"):
        constrain(dense, {"R->R": Dale(np.ones(4))})
    with pytest.raises(ValueError, match="Dale sign must be \\+1 or -1"):
        Dale(np.zeros(N))
    with pytest.raises(ValueError, match="Dale sign disagrees with the initial weights"):
        constrain(dense, {"R->R": Dale(+1)})  # the last two neurons are inhibitory
    with pytest.raises(ValueError, match="have weights of both signs"):
        constrain(_rate_model(nj.connectivity.Dense(), weight=np.random.default_rng(0).normal(size=(N, N))),
                  {"R->R": Dale()})
    with pytest.raises(ValueError, match="DANN needs the dense layout"):
        constrain(sparse, {"R->R": DANN(2)})
    with pytest.raises(ValueError, match=r"n_inhibitory \[neurons\] must be an integer in \[1, inf\)"):
        DANN(0)
    with pytest.raises(ValueError, match=r"initial weights must lie in \[lo, hi\]"):
        constrain(dense, {"R->R": Bounded(lo=0.0, hi=1.0)})
    with pytest.raises(ValueError, match="no projection matches 'X->Y'"):
        constrain(dense, {"X->Y": Dale(+1)})


def test_dale_reads_the_populations_declared_sign():
    lif = nj.neurons.LIF()
    pops = [nj.Population("E", 8, lif, sign=+1), nj.Population("I", 4, lif, sign=-1)]
    projs = [nj.Projection("E", ["E", "I"], nj.connectivity.FixedProbability(0.5), weight=3.0),
             nj.Projection("I", ["E", "I"], nj.connectivity.FixedProbability(0.5), weight=-9.0)]
    model = nj.Network(pops, projs).build(jax.random.key(0))
    constrained = nj.train.constrain(model, {"*": nj.train.Dale()})
    for proj, sign in zip(constrained.projections, (1, 1, -1, -1)):
        assert int(proj.weights.constraint.sign) == sign
    with pytest.raises(ValueError, match=r"gets Dale\(-1\), but population 'E' declares sign=\+1"):
        nj.train.constrain(model, {"E->*": nj.train.Dale(-1)})
    # The shared weight's name in model.params() selects each target of the group.
    assert "I->{E,I}.weight" in model.params()
    by_group = nj.train.constrain(model, {"I->{E,I}": nj.train.Dale()})
    assert [type(p.weights).__name__ for p in by_group.projections] == [
        type(p.weights).__name__ for p in model.projections[:2]] + ["ConstrainedWeights"] * 2
    with pytest.raises(ValueError, match=r"matches more than one pattern"):
        nj.train.constrain(model, {"I->{E,I}": nj.train.Dale(), "I->E": nj.train.Dale()})
    with pytest.raises(ValueError, match=r"the network has \['E->E', 'E->I', 'I->E', 'I->I', "
                                         r"'E->\{E,I\}', 'I->\{E,I\}'\]"):
        nj.train.constrain(model, {"X->Y": nj.train.Dale()})


def _low_rank_model(g=0.5, n=60, seed=0):
    rule = nj.connectivity.LowRank.gaussian(jax.random.key(seed), n, 2.0, 1.0, 1.0, 1.0, g=g)
    units = nj.neurons.Rate(tau=1.0, v_rest=0.0, transfer=nj.neurons.Tanh())
    pop = nj.Population("X", n, units, initial={"v": 0.5 * rule.m[:, 0]})
    net = nj.Network([pop], [nj.Projection("X", "X", rule, layout=nj.connectivity.Dense())])
    return rule, net.build(jax.random.key(seed + 1))


def test_low_rank_factors_train_the_structure_and_keep_the_random_part():
    rule, model = _low_rank_model()
    constrained = constrain(model, {"X->X": nj.train.LowRankFactors(rule.m, rule.n)})
    w0 = np.asarray(model.projections[0].weights.matrix())
    # Unchanged at the start, bit for bit.
    np.testing.assert_array_equal(np.asarray(constrained.projections[0].weights.matrix()), w0)
    chi = w0 - rule.m @ rule.n.T / 60

    def loss(m):
        res = nj.simulate(m, 20.0, 0.1, key=jax.random.key(0), record=nj.Record(spikes=()))
        return jnp.mean(jnp.tanh(res.state.neurons[0].v) ** 2)

    params, static = eqx.partition(constrained, trainable(constrained, "*.weight.free*"))
    grads = eqx.filter_grad(lambda p: loss(eqx.combine(p, static)))(params)
    g_m = grads.projections[0].weights.free["m"]
    # Central finite differences along a random direction of m: a smooth rate network,
    # float64; 1e-5 relative covers the O(h^2) truncation at h = 1e-5.
    direction = jax.random.normal(jax.random.key(3), g_m.shape)

    def shifted(h):
        return eqx.tree_at(lambda m: m.projections[0].weights.free["m"], constrained,
                           constrained.projections[0].weights.free["m"] + h * direction)

    fd = (loss(shifted(1e-5)) - loss(shifted(-1e-5))) / 2e-5
    np.testing.assert_allclose(float(jnp.sum(g_m * direction)), float(fd), rtol=1e-5)
    # After optimiser steps the weights are still m n^T / N + the same g chi.
    opt = optax.adam(0.05)
    state = opt.init(params)
    for _ in range(3):
        grads = eqx.filter_grad(lambda p: loss(eqx.combine(p, static)))(params)
        updates, state = opt.update(grads, state, params)
        params = eqx.apply_updates(params, updates)
    trained = eqx.combine(params, static).projections[0].weights
    m, n = np.asarray(trained.free["m"]), np.asarray(trained.free["n"])
    assert not np.allclose(m, rule.m)
    np.testing.assert_allclose(np.asarray(trained.matrix()) - m @ n.T / 60, chi, atol=1e-12)
    with pytest.raises(ValueError, match="LowRankFactors needs the Dense layout"):
        constrain(_sparse_low_rank(rule), {"X->X": nj.train.LowRankFactors(rule.m, rule.n)})
    with pytest.raises(ValueError, match="one rank"):
        nj.train.LowRankFactors(np.ones((60, 2)), np.ones((60, 1)))


def _sparse_low_rank(rule):
    units = nj.neurons.Rate(tau=1.0, v_rest=0.0, transfer=nj.neurons.Tanh())
    net = nj.Network([nj.Population("X", 60, units)],
                     [nj.Projection("X", "X", rule, layout=nj.connectivity.Sparse())])
    return net.build(jax.random.key(0))


def test_dale_on_conductance_synapses_keeps_weights_nonnegative():
    # Conductances are never negative, also from a population declared inhibitory: the
    # reversal potential makes them inhibitory, so Dale's law keeps every weight >= 0.
    lif = nj.neurons.LIF()
    pops = [nj.Population("E", 8, lif, sign=+1), nj.Population("I", 4, lif, sign=-1)]
    gaba = dict(receptor=nj.synapses.Conductance(e_rev=-80.0))
    projs = [nj.Projection("E", ["E", "I"], nj.connectivity.FixedProbability(0.5), weight=3.0,
                           receptor=nj.synapses.Conductance(e_rev=0.0)),
             nj.Projection("I", ["E", "I"], nj.connectivity.FixedProbability(0.5), weight=9.0, **gaba)]
    model = nj.Network(pops, projs).build(jax.random.key(0))
    constrained = nj.train.constrain(model, {"*": nj.train.Dale()})
    for proj in constrained.projections:
        assert int(proj.weights.constraint.sign) == 1
        assert np.all(np.asarray(proj.weights.resolved().weights) >= 0)
    with pytest.raises(ValueError, match=r"projection 'I->E' has a Conductance receptor, whose "
                                         r"weights are never negative"):
        nj.train.constrain(model, {"I->E": nj.train.Dale(-1)})
