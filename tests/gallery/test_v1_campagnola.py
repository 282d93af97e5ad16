"""The Campagnola et al. (2022) V1 L2/3 spiking network (REFERENCES.md §17 Set B): the PSP
to weight conversion, the wiring from the shipped table, and the §17 motifs in simulation."""

import importlib
import math

import jax
import numpy as np
import pytest

import neurojax as nj

# The module (the package attribute nj.gallery.v1_campagnola is its factory function).
v1 = importlib.import_module("neurojax.gallery.v1_campagnola")


def _single_psp_peak(lif, syn, dt, duration=150.0):
    """Peak depolarisation [mV] of `lif` after one spike through `syn` (weight 1 pA)."""
    steps = int(round(duration / dt))
    spikes = np.zeros((steps, 1))
    spikes[0, 0] = 1.0
    net = nj.Network(
        [nj.Population("pre", 1, nj.inputs.SpikeTrains(spikes)), nj.Population("post", 1, lif)],
        [nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=1.0, synapse=syn)])
    res = nj.simulate(net.build(jax.random.key(0)), duration, dt, key=jax.random.key(0),
                      record=nj.Record(spikes=(), v={"post": None}))
    return float(np.max(np.asarray(res.variables["post.v"])[:, 0]) - float(lif.e_l))


@pytest.mark.parametrize("tau_s, c_m, g_l", [
    (5.0, 180.0, 6.25),  # E -> E
    (5.0, 80.0, 10.0),  # E -> PV (tau_m = 8 ms)
    (10.0, 80.0, 10.0),  # PV -> PV (tau_s > tau_m)
    (10.0, 80.0, 5.0),  # SST -> VIP
    (5.0, 100.0, 20.0),  # tau_s = tau_m: the e^-1 limit of the closed form
])
def test_psp_peak_closed_form_matches_single_synapse_simulation(tau_s, c_m, g_l):
    lif = nj.neurons.LIF(c_m=c_m, g_l=g_l, e_l=-70.0, v_th=0.0, v_reset=-80.0, t_ref=2.0)
    syn = nj.synapses.Exponential(tau=tau_s)
    closed = float(syn.psp_peak(lif))
    for dt in (0.01, 0.005):
        # The simulation holds w e^{-k dt / tau_s} over step k, so its current integral
        # (and, the membrane being linear, its whole PSP to first order) is larger by the
        # exact factor x / (1 - e^{-x}), x = dt / tau_s (1 + dt/(2 tau_s) + ...). With it
        # the closed form agrees to 1e-6: what is left is the O(x^2) difference in shape
        # and reading the peak on the time grid (measured residual ~1e-8).
        x = dt / tau_s
        assert _single_psp_peak(lif, syn, dt) == pytest.approx(closed * x / -math.expm1(-x), rel=1e-6)


def test_weights_give_the_measured_psps():
    # Each projection's weight is the PSP of the table divided by the peak per pA of its
    # synapse onto its target type: a single spike evokes the measured resting PSP.
    net = nj.gallery.get("v1_campagnola")
    table = nj.gallery.v1_campagnola_table()
    sizes = {p.name: p.n for p in net.populations}
    assert sizes == {"E": 2700, "PV": 90, "SST": 63, "VIP": 147}  # fractions of 3000
    projs = {p.name: p for p in net.projections}
    assert len(projs) == 15 and "PV->VIP" not in projs  # p(VIP <- PV) = 0
    lifs = {p.name: p.neuron for p in net.populations}
    for i, post in enumerate(table.types):
        for j, pre in enumerate(table.types):
            if table.p[i, j] == 0:
                continue
            pr = projs[f"{pre}->{post}"]
            assert pr.connectivity.p == table.p[i, j]
            psp = pr.weight * float(pr.synapse.psp_peak(lifs[post]))
            assert psp == pytest.approx(table.strength[i, j], rel=1e-12)
    # At twice the size the PSPs halve (mean recurrent input unchanged).
    big = {p.name: p for p in nj.gallery.get("v1_campagnola", n=6000).projections}
    assert big["E->E"].weight == pytest.approx(projs["E->E"].weight / 2, rel=1e-12)


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match=r"drive has unknown cell types \['Pyr'\]"):
        nj.gallery.get("v1_campagnola", drive={"Pyr": 10.0})
    with pytest.raises(ValueError, match=r"n \[neurons\] must be an integer in \[100, inf\)"):
        nj.gallery.get("v1_campagnola", n=50)
    assert "disinhibits" in nj.gallery.info("v1_campagnola").expected(drive={"VIP": 10.0})
    assert "paradoxical" in nj.gallery.info("v1_campagnola").expected(drive={"PV": 10.0})


def _stacked_responses(n_seeds, duration, t_start, block=100.0):
    """Population rates [Hz] of `n_seeds` network realisations (build seeds 0, 1, ...)
    under no drive, +DRIVES["VIP"] pA to VIP and +DRIVES["PV"] pA to PV: shape
    (seed, condition, type). The three conditions of a realisation share its initial
    state and background noise (common random numbers), so their differences are the
    responses to the drive. Realisations are stacked (sparse rows padded to a common
    width; the padding points past the last neuron and is dropped) and run as one
    vmapped simulation, compiled once."""
    import equinox as eqx
    import jax.numpy as jnp

    models = [nj.gallery.get("v1_campagnola").build(jax.random.key(s)) for s in range(n_seeds)]
    for j, proj in enumerate(models[0].projections):
        if not hasattr(proj.weights, "targets"):
            continue  # dense: one shape for every realisation
        width = max(m.projections[j].weights.targets.shape[1] for m in models)
        for i, m in enumerate(models):
            t = m.projections[j].weights.targets
            t = jnp.pad(t, ((0, 0), (0, width - t.shape[1])), constant_values=proj.weights.n_post)
            models[i] = eqx.tree_at(lambda mm: mm.projections[j].weights.targets, m, t)
    static = eqx.filter(models[0], eqx.is_array, inverse=True)
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[eqx.filter(m, eqx.is_array) for m in models])
    names = [f"OrnsteinUhlenbeck->{t}.mean" for t in v1.TYPES]
    base = jnp.array([float(models[0].params()[k]) for k in names])
    conditions = jnp.stack([base, base.at[3].add(v1.DRIVES["VIP"]), base.at[1].add(v1.DRIVES["PV"])])

    def rates(arrays, means, key):
        model = eqx.combine(arrays, static).replace(dict(zip(names, means)))
        res = nj.simulate(model, duration, 0.1, key=key,
                          record=nj.Record(spikes=(), rates=v1.TYPES, every=block))
        skip = int(round(t_start / block))
        return jnp.stack([res.rates[t][skip:].mean() for t in v1.TYPES])

    run = jax.vmap(jax.vmap(rates, in_axes=(None, 0, None)), in_axes=(0, None, 0))
    return np.asarray(run(stacked, conditions, jax.random.split(jax.random.key(7), n_seeds)))


def test_section_17_motifs_vip_disinhibition_and_paradoxical_pv():
    # Six realisations, 1 s each, rates from 200 ms on. A sign is reproduced when the
    # mean change lies at least 3 standard errors (spread over realisations / sqrt(6))
    # on the expected side of zero: under a t distribution with 5 degrees of freedom a
    # wrong sign passes with probability below 1.5 %.
    out = _stacked_responses(n_seeds=6, duration=1000.0, t_start=200.0)
    base, delta = out[:, 0], out[:, 1:] - out[:, :1]
    mean, se = delta.mean(axis=0), delta.std(axis=0, ddof=1) / np.sqrt(len(delta))
    i = {t: k for k, t in enumerate(v1.TYPES)}
    # Baseline near the tuned rates (model docstring): within 50 % (the tuning target,
    # not a published number; the background was tuned on other noise seeds).
    for t, r in v1.BASELINE_RATES.items():
        assert abs(base[:, i[t]].mean() - r) < 0.5 * r, (t, base[:, i[t]].mean())
    vip, pv = 0, 1
    # §17 result 2: driving VIP lowers SST (and VIP itself rises).
    assert mean[vip, i["SST"]] < -3 * se[vip, i["SST"]], (mean[vip], se[vip])
    assert mean[vip, i["VIP"]] > 3 * se[vip, i["VIP"]]
    # ... and raises E. In this data set the rise is small: with E and PV balanced, the
    # SST that VIP removes inhibits E and PV alike, and VIP's own synapses onto E nearly
    # cancel what is left (measured +0.011 +- 0.004 Hz on 1.07 Hz here, 2.6 s.e.). At
    # this size and length what is resolved is that E does not fall; the full tutorial
    # (12 realisations of 2 s) resolves the rise (+0.009 +- 0.002 Hz, 4.9 s.e.).
    assert mean[vip, i["E"]] > -3 * se[vip, i["E"]], (mean[vip], se[vip])
    # §17 result 4: driving PV lowers PV (paradoxical response), and E with it.
    assert mean[pv, i["PV"]] < -3 * se[pv, i["PV"]], (mean[pv], se[pv])
    assert mean[pv, i["E"]] < -3 * se[pv, i["E"]]
