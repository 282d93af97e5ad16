"""NWB round trip (neurojax.io): spikes, times, rates and recorded variables come back
exactly, and the file is a standard NWB file that pynwb reads with units and
population names. Needs pynwb (the `nwb` extra); skipped, with that reason, without it."""

import jax
import numpy as np
import pytest

import neurojax as nj

pynwb = pytest.importorskip(
    "pynwb", reason="pynwb not installed: the nwb extra (pip install -e '.[nwb]') reads and writes NWB files"
)


@pytest.fixture(scope="module")
def result():
    # Brunel's regime C, small: delta synapses, delays and Poisson input, so spikes of
    # both populations fill many steps; v and refractory of a few neurons, E's rate.
    model = nj.gallery.get("brunel", n_e=1100).build(jax.random.key(0))
    return nj.simulate(model, 50.0, 0.1, key=jax.random.key(1), record=nj.Record(
        spikes=["E", "I"], rates=["E"], every=0.5,
        v={"E": slice(0, 5), "I": [3, 7]}, refractory={"E": slice(0, 2)}))


def test_round_trip_is_exact(result, tmp_path):
    path = tmp_path / "brunel.nwb"
    nj.io.write_nwb(result, path)
    back = nj.io.read_nwb(path)
    assert sum(int(np.asarray(s).sum()) for s in result.spikes.values()) > 100
    assert back.dt == result.dt and back.t_start == result.t_start and back.every == result.every
    assert back.sizes == result.sizes and back.indices == result.indices
    np.testing.assert_array_equal(back.times(), result.times())
    for group in ("spikes", "rates", "variables"):
        original, read = getattr(result, group), getattr(back, group)
        assert set(read) == set(original), group
        for name in original:
            a, b = np.asarray(original[name]), np.asarray(read[name])
            assert a.dtype == b.dtype and a.shape == b.shape, name
            np.testing.assert_array_equal(a, b, err_msg=name)
    for pop in ("E", "I"):
        for x, y in zip(result.spike_times(pop), back.spike_times(pop)):
            np.testing.assert_array_equal(x, y)


def test_file_is_standard_nwb_with_units_and_populations(result, tmp_path):
    path = tmp_path / "brunel.nwb"
    nj.io.write_nwb(result, path, session_description="Brunel regime C")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert nwb.session_description == "Brunel regime C"
        units = nwb.units.to_dataframe()
        # One row per neuron, silent ones included, named by population and index.
        assert len(units) == 1375
        assert (units["population"] == "E").sum() == 1100 and (units["population"] == "I").sum() == 275
        row = units[(units["population"] == "I") & (units["neuron_index"] == 7)].iloc[0]
        times, ids = result.spike_times("I")
        np.testing.assert_allclose(row["spike_times"], times[ids == 7] * 1e-3, rtol=1e-12)
        series = nwb.processing["neurojax"]["E.v"]
        # Stored in mV, read as volts through NWB's conversion factor; the unit came
        # from LIFState's field documentation.
        assert series.unit == "volts" and series.conversion == 1e-3
        np.testing.assert_allclose(series.starting_time, (result.t_start + 0.5) * 1e-3)
        assert series.rate == pytest.approx(2000.0)
        assert "[mV]" in series.description and "population E" in series.description
        refractory = nwb.processing["neurojax"]["E.refractory"]
        assert refractory.unit == "seconds" and refractory.conversion == 1e-3
        assert nwb.processing["neurojax"]["E.rate"].unit == "Hz"


def test_batched_result_and_foreign_file_are_refused(result, tmp_path):
    batched = jax.tree_util.tree_map(lambda x: x[None], result)
    with pytest.raises(ValueError, match="unbatched Result"):
        nj.io.write_nwb(batched, tmp_path / "batched.nwb")
    import datetime

    plain = pynwb.NWBFile(session_description="x", identifier="x",
                          session_start_time=datetime.datetime.now(datetime.timezone.utc))
    with pynwb.NWBHDF5IO(str(tmp_path / "plain.nwb"), "w") as io:
        io.write(plain)
    with pytest.raises(ValueError, match="not written by neurojax.io.write_nwb"):
        nj.io.read_nwb(tmp_path / "plain.nwb")



def _e_to_x(source, weights):
    """`source` (a neuron model for 30 E cells) -> 8 LIF cells X through a Delta
    projection; E's and X's spikes recorded."""
    lif = nj.neurons.LIF(c_m=250.0, g_l=12.5, e_l=0.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    proj = nj.Projection("E", "X", nj.connectivity.FromMatrix(weights), weight=1.0,
                         synapse=nj.synapses.Delta(), receptor=nj.synapses.Current(),
                         layout=nj.connectivity.Dense())
    drive = [nj.inputs.Poisson("E", rate=6000.0, n_sources=1, weight=100.0)]
    if isinstance(source, nj.inputs.SpikeTrains):
        drive = []  # a replayed population ignores drive
    net = nj.Network([nj.Population("E", 30, source), nj.Population("X", 8, lif)], [proj],
                     inputs=drive)
    return nj.simulate(net.build(jax.random.key(0)), 100.0, 0.1, key=jax.random.key(1),
                       record=nj.Record(spikes=["E", "X"]))


def test_spike_trains_from_an_nwb_file_replay_as_a_population(tmp_path):
    # E's spikes, written to NWB and read back, replayed by nj.inputs.SpikeTrains: the
    # population they drive fires exactly as it did when E was simulated.
    weights = np.asarray(jax.random.uniform(jax.random.key(2), (8, 30), minval=0.0, maxval=400.0))
    lif = nj.neurons.LIF(c_m=250.0, g_l=12.5, e_l=0.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    original = _e_to_x(lif, weights)
    nj.io.write_nwb(original, tmp_path / "source.nwb")
    read = nj.io.read_nwb(tmp_path / "source.nwb")
    times, neurons = read.spike_times("E")
    source = nj.inputs.SpikeTrains.from_times(times, neurons, 30, read.n_steps, read.dt)
    replayed = _e_to_x(source, weights)
    assert np.asarray(original.spikes["E"]).sum() > 50 and np.asarray(original.spikes["X"]).sum() > 10
    np.testing.assert_array_equal(np.asarray(replayed.spikes["E"]), np.asarray(original.spikes["E"]))
    np.testing.assert_array_equal(np.asarray(replayed.spikes["X"]), np.asarray(original.spikes["X"]))


def test_result_to_nwb_names_the_model_and_session(result, tmp_path):
    path = tmp_path / "brunel.nwb"
    result.to_nwb(path, model="brunel", seed=1)
    session = nj.io.read_nwb_session(path)
    assert session == {"model": "brunel", "seed": 1, "dt": 0.1, "t_start": 0.0,
                       "duration": pytest.approx(50.0), "session_description":
                       "neurojax simulation of brunel"}
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert nwb.session_description == "neurojax simulation of brunel"
        assert "model = brunel" in nwb.notes and "seed = 1" in nwb.notes
    back = nj.io.read_nwb(path)
    for pop in ("E", "I"):
        np.testing.assert_array_equal(np.asarray(back.spikes[pop]), np.asarray(result.spikes[pop]))


def test_graded_populations_round_trip_as_time_series(tmp_path):
    # Rate units (graded outputs, recorded as floats) next to spiking LIF cells: the
    # rates go to a TimeSeries "R.output" [Hz] at every step, the spikes to units.
    rate = nj.Population("R", 3, nj.neurons.FiringRate(tau=10.0, transfer=nj.neurons.ReLU()))
    lif = nj.Population("E", 4, nj.neurons.LIF())
    net = nj.Network([rate, lif], inputs=[nj.inputs.Constant("R", amplitude=np.array([1.0, 2.0, 3.0])),
                                          nj.inputs.Constant("E", amplitude=1000.0)])
    res = nj.simulate(net.build(jax.random.key(0)), 10.0, 0.1, key=jax.random.key(1),
                      record=nj.Record(rates=["R", "E"], every=1.0, v={"E": None}))
    path = tmp_path / "mixed.nwb"
    res.to_nwb(path)
    back = nj.io.read_nwb(path)
    assert back.graded == res.graded == ("R",)
    assert list(back.spikes) == list(res.spikes)
    for group in ("spikes", "rates", "variables"):
        for name, a in getattr(res, group).items():
            b = getattr(back, group)[name]
            assert a.dtype == b.dtype and a.shape == b.shape, name
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    assert float(back.rate("R")) == float(res.rate("R"))
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert set(nwb.units.to_dataframe()["population"]) == {"E"}  # rate units: no spikes
        series = nwb.processing["neurojax"]["R.output"]
        assert series.unit == "Hz" and series.rate == pytest.approx(1e4)
        np.testing.assert_allclose(series.starting_time, 1e-4)
        np.testing.assert_array_equal(series.data[()], np.asarray(res.spikes["R"]))


def test_spike_trains_from_nwb_replay_in_their_steps(tmp_path):
    # from_nwb on the file itself: E's replay and the population it drives are exact.
    weights = np.asarray(jax.random.uniform(jax.random.key(2), (8, 30), minval=0.0, maxval=400.0))
    lif = nj.neurons.LIF(c_m=250.0, g_l=12.5, e_l=0.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
    original = _e_to_x(lif, weights)
    original.to_nwb(tmp_path / "source.nwb")
    source = nj.inputs.SpikeTrains.from_nwb(tmp_path / "source.nwb", "E", dt=0.1)
    assert source.spikes.shape == (1000, 30)
    replayed = _e_to_x(source, weights)
    np.testing.assert_array_equal(np.asarray(replayed.spikes["E"]), np.asarray(original.spikes["E"]))
    np.testing.assert_array_equal(np.asarray(replayed.spikes["X"]), np.asarray(original.spikes["X"]))
    with pytest.raises(ValueError, match=r"no units of population 'Q'.*populations: \['E', 'X'\]"):
        nj.inputs.SpikeTrains.from_nwb(tmp_path / "source.nwb", "Q", dt=0.1)
    with pytest.raises(ValueError, match=r"dt \[ms\] must be positive"):
        nj.inputs.SpikeTrains.from_nwb(tmp_path / "source.nwb", "E", dt=-0.1)


def test_spike_trains_from_a_foreign_nwb_file(tmp_path):
    # A file written by pynwb alone (no population column, no neurojax metadata): unit
    # i is neuron i; a spike at t [s] is emitted by the step that ends at t, t_start
    # shifts the replay and steps cuts it.
    import datetime

    nwb = pynwb.NWBFile(session_description="recording", identifier="x",
                        session_start_time=datetime.datetime.now(datetime.timezone.utc))
    nwb.add_unit(spike_times=[0.0015, 0.0031])  # 1.5 ms, 3.1 ms
    nwb.add_unit(spike_times=[0.0002])
    with pynwb.NWBHDF5IO(str(tmp_path / "rec.nwb"), "w") as io:
        io.write(nwb)
    trains = nj.inputs.SpikeTrains.from_nwb(tmp_path / "rec.nwb", dt=0.1)
    expected = np.zeros((31, 2), np.uint8)
    expected[[14, 30], 0] = 1  # steps ending at 1.5 and 3.1 ms
    expected[1, 1] = 1  # the step ending at 0.2 ms
    np.testing.assert_array_equal(np.asarray(trains.spikes), expected)
    shifted = nj.inputs.SpikeTrains.from_nwb(tmp_path / "rec.nwb", dt=0.1, t_start=1.0, steps=10)
    expected = np.zeros((10, 2), np.uint8)
    expected[4, 0] = 1  # 1.5 ms - 1 ms: the step ending at 0.5 ms; 3.1 ms is past 10 steps
    np.testing.assert_array_equal(np.asarray(shifted.spikes), expected)
    with pytest.raises(ValueError, match="no population column"):
        nj.inputs.SpikeTrains.from_nwb(tmp_path / "rec.nwb", "E", dt=0.1)
