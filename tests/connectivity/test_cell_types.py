"""CellTypeTable: CSV round trip, dict/array constructors, projections, bad input."""

import re

import jax
import numpy as np
import pytest

import neurojax as nj
from neurojax.connectivity import CellTypeTable

TYPES = ["E", "PV", "SST", "VIP"]
P = [[0.12, 0.67, 0.44, 0.13], [0.81, 0.78, 0.37, 0.05],
     [0.78, 0.22, 0.11, 0.51], [0.51, 0.0, 1.0, 0.07]]
S = [[0.10, -0.44, -0.16, -0.06], [0.27, -0.47, -0.18, -0.13],
     [0.09, -0.25, -0.17, -0.15], [0.56, -0.27, -0.17, -0.14]]
INH = ["PV", "SST", "VIP"]


def _table(**kw):
    return CellTypeTable(TYPES, P, S, unit="mV", inhibitory=INH, **kw)


def _write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = "post,pre,p,strength [pA]\nE,E,0.1,2.0\nE,I,0.4,-8.0\nI,E,0.3,5.0\nI,I,0.4,-6.0\n"


def test_csv_round_trip_is_exact(tmp_path):
    # Values that are not short decimals (1/3, 0.1 + 0.2, a subnormal) must come back
    # bit for bit: to_csv writes repr(float), which round-trips exactly.
    p = np.array(P)
    p[0, 0] = 1.0 / 3.0
    s = np.array(S)
    s[1, 0] = 0.1 + 0.2
    s[2, 0] = 5e-324
    table = CellTypeTable(TYPES, p, s, unit="mV", inhibitory=INH,
                          source="line one\n\nline three, with a comma")
    table.to_csv(tmp_path / "a.csv")
    back = CellTypeTable.from_csv(tmp_path / "a.csv", inhibitory=INH)
    assert back == table
    np.testing.assert_array_equal(back.p, p)
    np.testing.assert_array_equal(back.strength, s)
    assert back.source == table.source and back.unit == "mV" and back.types == tuple(TYPES)
    # Writing the read table again gives the identical file.
    back.to_csv(tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_from_dict_equals_arrays_and_any_row_order(tmp_path):
    p = {a: dict(zip(TYPES, row)) for a, row in zip(TYPES, P)}
    s = {a: dict(zip(TYPES, row)) for a, row in zip(TYPES, S)}
    assert CellTypeTable.from_dict(p, s, unit="mV", inhibitory=INH) == _table()
    # Rows in any order; the types are ordered as they first appear (post, then pre).
    lines = GOOD.splitlines()
    path = _write(tmp_path, "\n".join([lines[0], lines[4], lines[2], lines[3], lines[1]]) + "\n")
    t = CellTypeTable.from_csv(path)
    assert t.types == ("I", "E")
    # A comment after the header is skipped (not part of the source).
    path.write_text("# src\n" + "\n".join([lines[0], "# note", *lines[1:]]) + "\n")
    assert CellTypeTable.from_csv(path).source == "src"
    assert t.p[t.index("E"), t.index("I")] == 0.4 and t.strength[t.index("I"), t.index("E")] == 5.0


def test_shipped_campagnola_table_matches_references():
    # REFERENCES.md section 17 Set B, typed in again here from the section's table.
    table = nj.gallery.v1_campagnola_table()
    assert table.types == tuple(TYPES) and table.unit == "mV"
    np.testing.assert_array_equal(table.p, P)
    np.testing.assert_array_equal(table.strength, S)
    assert "Campagnola" in table.source
    assert [table.sign(t) for t in TYPES] == [1, -1, -1, -1]


def test_projections_wire_each_connected_pair():
    pops = [nj.Population(t, n, nj.neurons.LIF()) for t, n in zip(TYPES, (400, 40, 30, 50))]
    syn = {"E": nj.synapses.Exponential(tau=5.0), **{t: nj.synapses.Exponential(tau=10.0) for t in INH}}
    projs = _table().projections(pops, synapse=syn, weight_fn=lambda post, pre, s: 10.0 * s)
    # VIP <- PV has p = 0: no projection; the other 15 pairs have one each.
    assert len(projs) == 15
    by_name = {pr.name: pr for pr in projs}
    assert "PV->VIP" not in by_name
    pr = by_name["SST->VIP"]
    assert (pr.pre, pr.post) == ("SST", "VIP")
    assert pr.connectivity.p == 1.0 and pr.weight == pytest.approx(-1.7)
    assert pr.synapse.tau == 10.0 and by_name["E->PV"].synapse.tau == 5.0
    # Built, each projection has the table's density: Bernoulli(p) over n_pre * n_post
    # pairs (minus autapses within a type), within 5 binomial standard errors.
    model = nj.Network(pops, projs).build(jax.random.key(0))
    sizes = dict(zip(TYPES, (400, 40, 30, 50)))
    for name, pr in by_name.items():
        pairs = sizes[pr.pre] * sizes[pr.post] - (sizes[pr.pre] if pr.pre == pr.post else 0)
        count = int(np.count_nonzero(np.asarray(model.projection(name).weights.matrix())))
        p = float(pr.connectivity.p)
        assert abs(count - p * pairs) <= 5 * np.sqrt(pairs * p * (1 - p)) + 1e-9, name


def test_projections_with_a_distance_dependent_rule_per_pair():
    """The table's p as the peak of a Gaussian distance profile on one torus (each type
    laid out at random with its own seed): each pair's synapse count matches the
    expectation p * n_pre * n_post * 2 pi sigma^2 (sigma << the torus)."""
    C = nj.connectivity
    sizes = dict(zip(TYPES, (1600, 200, 150, 150)))
    pops = [nj.Population(t, n, nj.neurons.LIF(),
                          space=C.Sheet(extent=(1.0, 1.0), layout="random", seed=k))
            for k, (t, n) in enumerate(sizes.items())]
    width = 0.05
    projs = _table().projections(
        pops, synapse=nj.synapses.Exponential(), layout=C.Sparse(),
        connectivity=lambda post, pre, p: C.DistanceDependent(p=p, width=width))
    assert all(isinstance(pr.connectivity, C.DistanceDependent) for pr in projs)
    model = nj.Network(pops, projs).build(jax.random.key(0))
    for pr in projs:
        w = model.projection(pr.name).weights
        count = int(np.asarray(w.targets < w.n_post).sum())
        # Uniformly placed partners: each postsynaptic neuron sees n_pre (n_pre - 1
        # within a type, no autapses) others at uniform positions.
        partners = sizes[pr.pre] - (pr.pre == pr.post)
        mean = pr.connectivity.p * partners * sizes[pr.post] * 2 * np.pi * width**2
        # A sum of independent Bernoullis given the positions: variance <= mean; the
        # random layouts add a little, so allow 5 Poisson standard errors (+1).
        assert abs(count - mean) <= 5 * np.sqrt(mean) + 1, (pr.name, count, mean)


def test_projections_accept_names_and_reject_mismatched_types():
    names = ["E", "PV", "SST", "VIP"]
    projs = _table().projections(names, synapse=nj.synapses.Exponential())
    assert {p.pre for p in projs} == set(names)
    with pytest.raises(ValueError, match=re.escape("table types ['VIP'] have no population")):
        _table().projections(["E", "PV", "SST"], synapse=nj.synapses.Exponential())
    with pytest.raises(ValueError, match=r"populations \['Pyr'\] are not types of the table"):
        _table().projections(["Pyr", "PV", "SST", "VIP", "E"], synapse=nj.synapses.Exponential())
    with pytest.raises(ValueError, match=r"synapse dict .* missing \['VIP'\]"):
        _table().projections(names, synapse={t: nj.synapses.Exponential() for t in names[:3]})


def test_table_rejects_bad_arrays():
    with pytest.raises(ValueError, match=r"p \[dimensionless\] of PV->E must lie in \[0, 1\], got 1.5"):
        CellTypeTable(TYPES, np.where(np.eye(4, k=1) > 0, 1.5, P), S, unit="mV")
    with pytest.raises(ValueError, match=r"p \[dimensionless\] of E->E must lie in \[0, 1\], got nan"):
        CellTypeTable(TYPES, np.where(np.eye(4) > 0, np.nan, P), S, unit="mV")
    with pytest.raises(ValueError, match=r"strength \[mV\] of E->E must be finite"):
        CellTypeTable(TYPES, P, np.where(np.eye(4) > 0, np.inf, S), unit="mV")
    with pytest.raises(ValueError, match=r"shape \(n_types, n_types\) = \(4, 4\)"):
        CellTypeTable(TYPES, np.zeros((4, 3)), S, unit="mV")
    with pytest.raises(ValueError, match="repeated: \\['E'\\]"):
        CellTypeTable(["E", "E", "SST", "VIP"], P, S, unit="mV")
    with pytest.raises(ValueError, match="unit of strength"):
        CellTypeTable(TYPES, P, S, unit="")
    with pytest.raises(ValueError, match="non-numeric"):
        CellTypeTable(TYPES, [["a"] * 4] * 4, S, unit="mV")
    # Signs: a declared inhibitory type with a positive strength, an excitatory one with
    # a negative strength, and (undeclared) a type with both signs.
    s = np.array(S)
    s[2, 1] = 0.25
    with pytest.raises(ValueError, match=r"\[post='SST', pre='PV'\]: strength \[mV\] of "
                                         r"inhibitory presynaptic type 'PV' must lie in \(-inf, 0\]"):
        CellTypeTable(TYPES, P, s, unit="mV", inhibitory=INH)
    with pytest.raises(ValueError, match="'PV' have both signs"):
        CellTypeTable(TYPES, P, s, unit="mV")
    with pytest.raises(ValueError, match=r"\[post='E', pre='PV'\]: strength \[mV\] of excitatory "
                                         r"presynaptic type 'PV' must lie in \[0, inf\)"):
        CellTypeTable(TYPES, P, S, unit="mV", inhibitory=["SST", "VIP"])
    with pytest.raises(ValueError, match=r"inhibitory types \['I'\] are not in the table"):
        CellTypeTable(TYPES, P, S, unit="mV", inhibitory=["I"])
    with pytest.raises(ValueError, match=r"lacks the \(post, pre\) pairs \[\('PV', 'E'\)\]"):
        CellTypeTable.from_dict({"E": {"E": 0.1, "PV": 0.2}, "PV": {"PV": 0.3}},
                                {"E": {"E": 1.0, "PV": -1.0}, "PV": {"E": 1.0, "PV": -1.0}},
                                unit="pA")


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("0.4,-8.0", "abc,-8.0"),
     r"t.csv:3: connection probability p of I->E must be a number, got 'abc'"),
    (GOOD.replace("0.4,-8.0", "0.4,x"), r"t.csv:3: strength \[pA\] of I->E must be a number, got 'x'"),
    (GOOD.replace("0.3,5.0", "1.2,5.0"), r"t.csv:4: connection probability p \[dimensionless\] of "
                                         r"E->I must lie in \[0, 1\], got 1.2"),
    (GOOD.replace("0.3,5.0", "nan,5.0"), r"t.csv:4: .* must lie in \[0, 1\], got nan"),
    (GOOD.replace("0.3,5.0", "0.3,nan"), r"t.csv:4: strength \[pA\] of E->I must be finite"),
    (GOOD.replace("0.3,5.0", "0.3"), r"t.csv:4: expected 4 fields"),
    (GOOD + "E,I,0.2,-1.0\n", r"t.csv:6: duplicate entry post='E', pre='I' \(first on line 3\)"),
    (GOOD.replace("I,I,0.4,-6.0\n", ""), r"missing rows for the \(post, pre\) pairs \[\('I', 'I'\)\]"),
    (GOOD.replace("strength [pA]", "strength"), r"t.csv:1: the header must be"),
    ("# only a comment\n", r"no header"),
    (GOOD.splitlines()[0] + "\n", r"header but no rows"),
    (GOOD.replace("I,E,0.3,5.0", "I,E,0.3,-5.0"), r"'E' have both signs \(.*t.csv:2: 2, .*t.csv:4: -5\)"),
])
def test_from_csv_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        CellTypeTable.from_csv(_write(tmp_path, text))


def test_from_csv_checks_declared_inhibitory_types_with_line(tmp_path):
    path = _write(tmp_path, GOOD.replace("I,I,0.4,-6.0", "I,I,0.4,6.0"))
    with pytest.raises(ValueError, match=r"t.csv:5: strength \[pA\] of inhibitory presynaptic type 'I'"):
        CellTypeTable.from_csv(path, inhibitory=["I"])


def test_conductance_receptors_take_magnitudes(tmp_path):
    # Signed strengths [nS] meet Conductance receptors through weight_fn=abs: inhibition
    # is the receptor's reversal potential. Without it the negative conductance is
    # rejected at build time, naming the projection.
    table = CellTypeTable.from_csv(_write(tmp_path, GOOD.replace("[pA]", "[nS]")), inhibitory=["I"])
    pops = [nj.Population(t, 20, nj.neurons.LIF()) for t in ("E", "I")]
    receptor = {"E": nj.synapses.Conductance(e_rev=0.0), "I": nj.synapses.Conductance(e_rev=-80.0)}
    ok = table.projections(pops, synapse=nj.synapses.Exponential(), receptor=receptor,
                           weight_fn=lambda post, pre, s: abs(s))
    model = nj.Network(pops, ok).build(jax.random.key(0))
    assert float(model.projection("I->E").weights.weights) == 8.0
    bad = table.projections(pops, synapse=nj.synapses.Exponential(), receptor=receptor)
    with pytest.raises(ValueError, match=r"I->E weight .* must lie in \[0"):
        nj.Network(pops, bad).build(jax.random.key(0))
