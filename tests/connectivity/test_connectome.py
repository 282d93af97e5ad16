"""Connectome edge lists (`FromEdges`): read, validate with the file line, build, write
back exactly; and delays from distance (`DistanceDelay`)."""

import jax
import numpy as np
import pytest

import neurojax as nj

C = nj.connectivity


def _net(rule, n=6, **kw):
    lif = nj.neurons.LIF()
    pop = nj.Population("X", n, lif)
    return nj.Network([pop], [nj.Projection("X", "X", rule, **kw)])


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_edges_build_the_matrix_they_list(tmp_path):
    path = _write(tmp_path, "c.csv", "pre,post,weight,delay\n0,3,0.5,1.5\n2,1,-0.25,2.0\n5,5,1e-3,0.2\n")
    edges = C.FromEdges.read(path)
    model = _net(edges, weight=2.0, layout=C.Sparse()).build(jax.random.key(0))
    w = model.projections[0].weights
    dense = np.zeros((6, 6))
    dense[[3, 1, 5], [0, 2, 5]] = [1.0, -0.5, 2e-3]  # weight column times Projection weight
    got = np.zeros((6, 6))
    t = np.asarray(w.targets)
    rows, cols = np.nonzero(t < 6)
    got[t[rows, cols], rows] = np.asarray(w.weights)[rows, cols]
    np.testing.assert_array_equal(got, dense)
    # Per-synapse delays come from the file; the largest sizes the buffer.
    assert model.projections[0].delay == 2.0
    np.testing.assert_array_equal(np.sort(np.asarray(w.delays)[rows, cols]), [0.2, 1.5, 2.0])


@pytest.mark.parametrize("ext", ["csv", "tsv", "npz"])
def test_write_and_read_back_builds_the_identical_network(tmp_path, ext):
    # A random network's synapses, weights drawn from a distribution (17-digit floats).
    pop = nj.Population("X", 40, nj.neurons.LIF())
    drive = [nj.inputs.Constant("X", amplitude=np.linspace(300.0, 600.0, 40))]
    proj = nj.Projection("X", "X", C.FixedProbability(0.3), weight=nj.distributions.Normal(20.0, 6.0),
                         delay=nj.distributions.Uniform(0.5, 3.0), layout=C.Sparse())
    model = nj.Network([pop], [proj], drive).build(jax.random.key(3))
    edges = C.FromEdges.from_built(model.projections[0])
    edges.write(tmp_path / f"e.{ext}")
    again = C.FromEdges.read(tmp_path / f"e.{ext}")
    rebuilt = nj.Network([pop], [nj.Projection("X", "X", again, layout=C.Sparse())],
                         drive).build(jax.random.key(9))
    a, b = model.projections[0].weights, rebuilt.projections[0].weights
    # Bit-identical: same rows, targets, weights and delays (exact float round trip).
    np.testing.assert_array_equal(np.asarray(a.targets), np.asarray(b.targets))
    np.testing.assert_array_equal(np.asarray(a.weights), np.asarray(b.weights))
    np.testing.assert_array_equal(np.asarray(a.delays), np.asarray(b.delays))
    # ... and so the same simulation (which has spikes to compare).
    r1 = nj.simulate(model, 100.0, 0.1, key=jax.random.key(0))
    r2 = nj.simulate(rebuilt, 100.0, 0.1, key=jax.random.key(0))
    assert np.asarray(r1.spikes["X"]).sum() > 40
    np.testing.assert_array_equal(np.asarray(r1.spikes["X"]), np.asarray(r2.spikes["X"]))


def test_dense_projection_exports_and_named_neurons_map(tmp_path):
    rng = np.random.default_rng(0)
    m = rng.standard_normal((5, 5)) * (rng.random((5, 5)) < 0.5)
    model = _net(C.FromMatrix(m), n=5, layout=C.Dense()).build(jax.random.key(0))
    names = [f"cell_{i}" for i in range(5)]
    C.FromEdges.from_built(model.projections[0]).write(tmp_path / "named.csv", pre_names=names,
                                                       post_names=names)
    assert "cell_" in (tmp_path / "named.csv").read_text()
    back = C.FromEdges.read(tmp_path / "named.csv", pre_names=names, post_names=names)
    rebuilt = _net(back, n=5, layout=C.Dense()).build(jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(rebuilt.projections[0].weights.matrix()), m)


@pytest.mark.parametrize(
    "text, match",
    [
        ("pre,post,weight\n0,1,0.5\n2,3,nan\n", r"c.csv line 3: weight is nan"),
        ("pre,post,delay\n0,1,1.0\n2,3,-0.5\n", r"c.csv line 3: delay \[ms\] is -0.5; it must be finite and in \[0, inf\)"),
        ("pre,post\n0,1\n2,3\n0,1\n", r"c.csv line 4: duplicate edge 0 -> 1 \(first given at line 2\)"),
        ("pre,post,weight\n0,1,0.5\n2,3,abc\n", r"c.csv line 3: weight 'abc' is not a number"),
        ("pre,post\n0,1\nx,3\n", r"c.csv line 3: pre 'x' is not an integer neuron id"),
        ("source,target\n0,1\n", r"c.csv line 1: header .* must name the columns pre, post"),
        ("pre,post\n0,1\n2\n", r"c.csv line 3: 1 cells, the header has 2"),
    ],
)
def test_bad_files_name_the_line(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        C.FromEdges.read(_write(tmp_path, "c.csv", text))


def test_unknown_ids_and_names_name_the_line(tmp_path):
    edges = C.FromEdges.read(_write(tmp_path, "c.csv", "pre,post\n0,1\n2,9\n"))
    with pytest.raises(ValueError, match=r"c.csv line 3: post id 9 is outside the postsynaptic population of 6"):
        _net(edges).build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"c.csv line 2: unknown post neuron 'b'"):
        C.FromEdges.read(_write(tmp_path, "c.csv", "pre,post\na,b\n"), pre_names=["a"], post_names=["a"])
    with pytest.raises(ValueError, match="unknown file type '.xlsx'"):
        C.FromEdges.read(tmp_path / "c.xlsx")
    with pytest.raises(ValueError, match="Projection delay must stay 0"):
        _net(C.FromEdges([0], [1], delay=[1.0]), delay=2.0).build(jax.random.key(0))


def test_delays_from_distance_and_velocity():
    ring = C.Ring(length=1.0)  # [mm]
    pop = nj.Population("X", 10, nj.neurons.LIF(), space=ring)
    proj = nj.Projection("X", "X", C.AllToAll(), delay=C.DistanceDelay(velocity=0.5, offset=0.3),
                         layout=C.Sparse())
    model = nj.Network([pop], [proj]).build(jax.random.key(0))
    w = model.projections[0].weights
    t, d = np.asarray(w.targets), np.asarray(w.delays)
    pre, col = np.nonzero(t < 10)
    post = t[pre, col]
    # Neurons at i / 10 mm on a 1 mm ring: minimum-image distance, exact.
    gap = np.abs(pre - post) / 10.0
    dist = np.minimum(gap, 1.0 - gap)
    np.testing.assert_allclose(d[pre, col], 0.3 + dist / 0.5, rtol=0, atol=1e-12)
    assert model.projections[0].delay == pytest.approx(0.3 + 0.5 / 0.5)
    with pytest.raises(ValueError, match=r"DistanceDelay velocity \[space units/ms\] must"):
        C.DistanceDelay(velocity=0.0)
    with pytest.raises(ValueError, match="DistanceDelay: population 'X' has no space"):
        nj.Network([nj.Population("X", 4, nj.neurons.LIF())],
                   [nj.Projection("X", "X", C.AllToAll(), delay=C.DistanceDelay(1.0))]).build(jax.random.key(0))


def test_a_signed_matrix_splits_into_excitatory_and_inhibitory_parts():
    import scipy.sparse as scipy_sparse  # the test extra has scipy
    rng = np.random.default_rng(1)
    m = rng.standard_normal((6, 6)) * (rng.random((6, 6)) < 0.6)
    for given in (m, scipy_sparse.csr_matrix(m)):
        exc, inh = C.FromMatrix.split_signs(given)
        net = nj.Network([nj.Population("X", 6, nj.neurons.LIF())], [
            nj.Projection("X", "X", exc, receptor=nj.synapses.Conductance(0.0), layout=C.Dense()),
            nj.Projection("X", "X", inh, receptor=nj.synapses.Conductance(-80.0), layout=C.Dense(),
                          name="inh")])
        model = net.build(jax.random.key(0))
        e, i = (np.asarray(p.weights.matrix()) for p in model.projections)
        assert (e >= 0).all() and (i >= 0).all()
        np.testing.assert_array_equal(e - i, m)  # exactly the signed matrix back


def test_a_declared_sign_is_dales_law_for_current_weights():
    lif = nj.neurons.LIF()
    pops = [nj.Population("E", 5, lif, sign=+1), nj.Population("I", 5, lif, sign=-1)]
    ok = nj.Network(pops, [nj.Projection("E", "I", C.AllToAll(), weight=2.0),
                           nj.Projection("I", "E", C.AllToAll(), weight=-3.0)])
    model = ok.build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"I->E weight .* Population 'I' is inhibitory \(sign=-1"):
        nj.Network(pops, [nj.Projection("I", "E", C.AllToAll(), weight=3.0)]).build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"Population 'E' is excitatory"):
        nj.Network(pops, [nj.Projection("E", "I", C.AllToAll(),
                                        weight=nj.distributions.Normal(1.0, 2.0))]).build(jax.random.key(0))
    # An optimiser step that flips a sign is caught before the next run.
    import equinox as eqx
    flipped = eqx.tree_at(lambda m: m.projections[1].weights.weights, model, 1.0)
    with pytest.raises(ValueError, match="Population 'I' is inhibitory"):
        nj.simulate(flipped, 1.0, 0.1, key=jax.random.key(0))
    # Conductances ignore the sign: they are never negative, the reversal decides.
    nj.Network(pops, [nj.Projection("I", "E", C.AllToAll(), weight=3.0,
                                    receptor=nj.synapses.Conductance(-80.0))]).build(jax.random.key(0))
    with pytest.raises(ValueError, match="sign must be"):
        nj.Population("E", 5, lif, sign=2)


@pytest.mark.parametrize("layout", [C.Dense(), C.Sparse(), None])
@pytest.mark.parametrize("weight", ["abc", None, np.array([["a", "b"], ["c", "d"]])])
def test_non_numeric_weights_get_one_message_on_every_layout(layout, weight):
    net = nj.Network([nj.Population("X", 2, nj.neurons.LIF())],
                     [nj.Projection("X", "X", C.AllToAll(), weight=weight, layout=layout)])
    with pytest.raises(ValueError, match=r"X->X weight \[receptor units\] must be a number, a "
                                         r"distribution or an \(n_post, n_pre\) = \(2, 2\) array"):
        net.build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"Projection delay \[ms\] must be a number in \[0, inf\)"):
        nj.Projection("X", "X", C.AllToAll(), delay="1 ms")
