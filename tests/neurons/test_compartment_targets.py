"""Tests for synapses and inputs placed on compartments: `nj.neurons.Compartments`,
`nj.inputs.OnCompartments` and `Projection(..., compartments=...)`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj
from neurojax.neurons.compartmental import Compartmental, Compartments, Leak
from neurojax.neurons.morphology import BASAL_DENDRITE, SOMA, ball_and_stick, y_dendrite

G_LEAK, R_A, C_M, E_REST = 0.1, 100.0, 1.0, -65.0  # [mS/cm²], [Ω·cm], [µF/cm²], [mV]
SOMA_D, L_DEND, D_DEND, N_SEG = 20.0, 500.0, 2.0, 50  # [µm], [µm], [µm], compartments


def passive(morph, **kw):
    return Compartmental(morph, (Leak(g=G_LEAK, e=E_REST),), c_m=C_M, r_a=R_A,
                         v_init=E_REST, **kw)


def one_spike(steps, at=0):
    """A one-neuron SpikeTrains source that spikes in step `at`."""
    return nj.inputs.SpikeTrains(np.eye(1, steps, at).T)  # (steps, 1)


def test_somatic_psp_area_attenuates_with_distance_as_the_cable_predicts():
    # A delta current synapse (charge Q) at distance x on the dendrite of a passive ball
    # and stick. The time integral of the somatic PSP is Q times the transfer resistance
    # K(x, soma) = K(soma, x) (reciprocity) = R_N cosh((L - x)/λ) / cosh(L/λ), with
    # R_N = 1/(G_s + G_d), G_d = tanh(L/λ)/R_∞ (Rall 1959; REFERENCES §dendrites).
    # Backward Euler conserves the integral exactly (sum of C(V_{n+1} - V_n) = -dt G
    # sum V), so what remains is the spatial discretisation: the dendrite's Δx/λ = 0.014
    # gives ~1e-5, the soma node half a soma from the dendrite's origin ~1e-4 (as in
    # tutorials/dendritic_attenuation.py): rtol 5e-4. A λ off by 1 % moves the tip
    # value by ~0.5 %, ten times the tolerance.
    morph = ball_and_stick(SOMA_D, L_DEND, D_DEND, N_SEG)
    dx = L_DEND / N_SEG
    dt, duration, q = 0.1, 250.0, 100.0  # [ms], [ms] = 25 τ_m, [pA·ms]
    steps = int(round(duration / dt))
    sites = [5, 20, 35, 50]  # dendritic compartments (1..N_SEG)
    dist = morph.path_distance()
    pops = [nj.Population("src", 1, one_spike(steps))]
    projs = []
    for k in sites:
        name = f"x{k}"
        pops.append(nj.Population(name, 1, passive(morph)))
        # A path-distance window around the centre of compartment k picks it alone.
        window = (dist[k] - dx / 4, dist[k] + dx / 4)
        projs.append(nj.Projection("src", name, nj.connectivity.AllToAll(), weight=q,
                                   compartments=Compartments(distance=window)))
    model = nj.Network(pops, projs).build(jax.random.key(0))
    for j, k in enumerate(sites):
        frac = np.asarray(model.projections[j].compartments)
        assert frac.shape == (1, N_SEG + 1) and frac[0, k] == 1.0 and frac.sum() == 1.0
    res = nj.simulate(model, duration, dt, key=jax.random.key(1), record=nj.Record(
        spikes=(), v={f"x{k}": None for k in sites}, every=dt))
    area = np.array([np.sum(np.asarray(res.variables[f"x{k}.v"])[:, 0, 0] - E_REST) * dt
                     for k in sites])  # [mV·ms]

    r_m = 1e3 / G_LEAK  # [Ω·cm²]
    lam = np.sqrt(D_DEND * 1e-4 * r_m / (4 * R_A)) * 1e4  # [µm]
    r_inf = 4 * R_A * lam * 1e-4 / (np.pi * (D_DEND * 1e-4) ** 2) * 1e-6  # [MΩ]
    g_soma = G_LEAK * 1e-2 * np.pi * SOMA_D * SOMA_D  # [nS]
    g_dend = np.tanh(L_DEND / lam) / r_inf * 1e3  # [nS]
    r_n = 1e3 / (g_soma + g_dend)  # [MΩ]
    x = (np.asarray(sites) - 0.5) * dx  # from the dendrite's origin [µm]
    transfer = r_n * np.cosh((L_DEND - x) / lam) / np.cosh(L_DEND / lam)  # [MΩ]
    expected = q * transfer * 1e-3  # [pA·ms]·[MΩ] = 1e-3 [mV·ms]
    np.testing.assert_allclose(area, expected, rtol=5e-4)
    assert np.all(np.diff(area) < 0)  # farther synapses give smaller somatic PSPs


def test_index_target_equals_the_input_compartment():
    # Placing a projection (NMDA: reads the site's own potential) and an input on
    # compartment k is the same model as a cell whose input_compartment is k.
    morph = ball_and_stick(n_segments=6)
    k, steps, dt = 5, 60, 0.1
    src = nj.Population("src", 1, one_spike(steps, at=3))
    kw = dict(weight=2.0, synapse=nj.synapses.Exponential(tau=5.0),
              receptor=nj.synapses.NMDA(mg=1.0))

    def build(placed):
        cell = passive(morph) if placed else passive(morph, input_compartment=k)
        where = Compartments(index=k) if placed else None
        inp = nj.inputs.Constant("cell", amplitude=30.0)
        inp = nj.inputs.OnCompartments(inp, where) if placed else inp
        return nj.Network([src, nj.Population("cell", 1, cell)],
                          [nj.Projection("src", "cell", nj.connectivity.AllToAll(),
                                         compartments=where, **kw)],
                          inputs=[inp]).build(jax.random.key(0))

    rec = nj.Record(spikes=(), v={"cell": None}, every=dt)
    v = [np.asarray(nj.simulate(build(p), steps * dt, dt, key=jax.random.key(1), record=rec).variables["cell.v"])
         for p in (False, True)]
    assert np.max(np.abs(v[1][:, 0, k] - E_REST)) > 1.0  # the synapse acts
    np.testing.assert_allclose(v[1], v[0], rtol=0, atol=1e-12)


def test_fractions_of_sections_distances_and_drawn_sites():
    morph = y_dendrite(n_trunk=4, n_branch=3)  # 10 compartments, all basal
    types = [SOMA] + [BASAL_DENDRITE] * 9
    morph = nj.neurons.Morphology(morph.parent, morph.length, morph.diameter, types)
    area = np.asarray(morph.area())
    f = Compartments(section="dendrite").fractions(morph, 2)
    np.testing.assert_allclose(f[0], np.r_[0.0, area[1:]] / area[1:].sum(), rtol=1e-12)
    np.testing.assert_allclose(Compartments(index=[2, 2, 7]).fractions(morph, 1)[0],
                               np.eye(10)[2] * 2 / 3 + np.eye(10)[7] / 3, rtol=1e-12)
    dist = morph.path_distance()
    np.testing.assert_allclose(dist[4], dist[3] + 25.0 + 200.0 / 6, rtol=1e-12)
    far = dist >= 300.0
    drawn = Compartments(distance=(300.0, 1e4), sites=5, key=jax.random.key(1))
    f = drawn.fractions(morph, 40)
    np.testing.assert_allclose(f.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(f[:, ~far] == 0.0) and np.all(f[:, far].sum(axis=0) > 0.0)
    assert np.all(np.isin(np.round(f * 5, 9), np.arange(6)))  # multiples of 1/5


def _nmda_model(n_seg=4, steps=15):
    morph = ball_and_stick(n_segments=n_seg)
    net = nj.Network(
        [nj.Population("src", 1, one_spike(steps, at=0)),
         nj.Population("cell", 1, passive(morph))],
        [nj.Projection("src", "cell", nj.connectivity.AllToAll(), weight=3.0,
                       synapse=nj.synapses.Exponential(tau=4.0),
                       receptor=nj.synapses.NMDA(),
                       compartments=Compartments(index=[n_seg - 1, n_seg]))],
    )
    return net.build(jax.random.key(0))


def _soma_loss(model, dt=0.1, steps=15):
    res = nj.simulate(model, steps * dt, dt, key=jax.random.key(1), record=nj.Record(
        spikes=(), v={"cell": None}, every=dt))
    return jnp.mean(res.variables["cell.v"][:, 0, 0] - E_REST)


def test_jit_equals_eager_and_weight_gradient_matches_finite_differences():
    model = _nmda_model()
    name = "src->cell.weight"

    def loss(w):
        return _soma_loss(model.replace({name: w}))

    # The network step (per-compartment drive, NMDA at each site's potential) gives
    # the same states op by op as compiled in a scan (4 steps: the spike of step 0
    # acts from step 1; op by op the Hines loops cost ~0.5 s a step).
    dt, steps = 0.1, 4
    state0 = model.init(jax.random.key(1), dt)

    def run(state):
        return jax.lax.scan(lambda st, k: (model.step(st, k * dt, dt)[0], st.neurons[1].v),
                            state, jnp.arange(steps))[1]

    with jax.disable_jit():
        st, eager = state0, []
        for k in range(steps):
            eager.append(st.neurons[1].v)
            st = model.step(st, k * dt, dt)[0]
    compiled = jax.jit(run)(state0)
    np.testing.assert_allclose(compiled, jnp.stack(eager), rtol=0, atol=1e-12)
    assert float(loss(3.0)) > 1e-3  # the distal NMDA synapses reach the soma
    grad = float(jax.grad(loss)(3.0))
    # Central differences in float64: truncation O(h²) with h = 1e-3 nS on a smooth
    # function of w (the block is smooth; no spikes) is far below 1e-6 relative.
    h = 1e-3
    fd = (float(loss(3.0 + h)) - float(loss(3.0 - h))) / (2 * h)
    assert grad > 0
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_bad_targets_raise_errors_naming_the_parameter():
    morph = ball_and_stick(n_segments=4)  # 5 compartments
    cell = nj.Population("cell", 2, passive(morph))
    src = nj.Population("src", 1, one_spike(5))
    lif = nj.Population("lif", 2, nj.neurons.LIF())
    rate = nj.Population("rate", 2, nj.neurons.Rate())

    def build(post, compartments, receptor=nj.synapses.Current()):
        proj = nj.Projection("src", post, nj.connectivity.AllToAll(), receptor=receptor,
                             compartments=compartments)
        return nj.Network([src, cell, lif, rate], [proj]).build(jax.random.key(0))

    with pytest.raises(ValueError, match=r"src->cell: Compartments index 7 does not exist.*\[0, 4\]"):
        build("cell", Compartments(index=[1, 7]))
    with pytest.raises(ValueError, match=r"section must be an SWC type .*got 'dendrites'"):
        Compartments(section="dendrites")
    with pytest.raises(ValueError, match=r"section 4 \(SWC type 4\) matches no compartment"):
        build("cell", Compartments(section=4))
    with pytest.raises(ValueError, match=r"distance \[µm\] \(900, 1000\) holds no"):
        build("cell", Compartments(distance=(900.0, 1000.0)))
    with pytest.raises(ValueError, match=r"src->lif: compartments is given, but population 'lif'"):
        build("lif", Compartments(index=0))
    with pytest.raises(ValueError, match="exactly one of index, section or distance"):
        Compartments(index=1, section="soma")
    with pytest.raises(ValueError, match="sites needs a key"):
        Compartments(section="dendrite", sites=3)
    with pytest.raises(ValueError, match="NMDA is voltage-dependent.*'rate'"):
        build("rate", None, receptor=nj.synapses.NMDA())
    with pytest.raises(ValueError, match=r"OnCompartments\(Constant\) input to 'lif'.*no compartments"):
        nj.Network([lif], inputs=[nj.inputs.OnCompartments(
            nj.inputs.Constant("lif", 1.0), Compartments(index=0))]).build(jax.random.key(0))
    with pytest.raises(ValueError, match=r"OnCompartments\(Constant\) input to 'cell': Compartments index 5"):
        nj.Network([cell], inputs=[nj.inputs.OnCompartments(
            nj.inputs.Constant("cell", 1.0), Compartments(index=5))]).build(jax.random.key(0))
