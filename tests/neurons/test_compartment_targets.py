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


# A site per synapse: Compartments(sites="synapse" | (n_post, n_pre) array).

def _site_net(sites, weight, layout, receptor=nj.synapses.Current(), synapse=nj.synapses.Delta(),
              spikes=None, steps=8, n_seg=4):
    """Three spiking sources onto two passive ball-and-stick cells (5 compartments),
    each synapse on its own compartment."""
    if spikes is None:
        spikes = (np.random.default_rng(0).random((steps, 3)) < 0.5).astype(float)
    net = nj.Network(
        [nj.Population("src", 3, nj.inputs.SpikeTrains(spikes)),
         nj.Population("cell", 2, passive(ball_and_stick(n_segments=n_seg)))],
        [nj.Projection("src", "cell", nj.connectivity.AllToAll(), weight=weight, layout=layout,
                       synapse=synapse, receptor=receptor, compartments=sites)])
    return net.build(jax.random.key(0)), spikes


SITES = np.array([[0, 2, 2], [4, 1, 3]])  # compartment of synapse j -> i at [i, j]
WEIGHTS = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # [pA·ms]


@pytest.mark.parametrize("layout, receptor, synapse", [
    (nj.connectivity.Dense(), nj.synapses.Current(), nj.synapses.Delta()),
    (nj.connectivity.Sparse(), nj.synapses.NMDA(), nj.synapses.Exponential(tau=2.0)),
])
def test_per_synapse_sites_deliver_each_synapse_to_its_own_compartment(layout, receptor, synapse):
    # Synapses with given sites: what arrives at compartment c of cell i on each step
    # is the sum of w_ij over the sources j that spiked and sit at c (numpy), exactly;
    # and the voltages equal those of the same synapses split into one projection per
    # compartment, each placed with Compartments(index=c) (the shared-fraction path,
    # itself checked against input_compartment above), with delta current synapses
    # and with NMDA (the block read at each compartment's own potential).
    model, spikes = _site_net(Compartments(sites=SITES), WEIGHTS, layout, receptor, synapse)
    steps, n_comp = spikes.shape[0], 5
    assert model.projections[0].n_comp == n_comp
    state = model.init(jax.random.key(1), 0.1)

    def body(st, k):
        st, _ = model.step(st, k * 0.1, 0.1)
        return st, (st.buffers[0][0], st.neurons[1].v)

    _, (arrivals, v) = jax.lax.scan(body, state, jnp.arange(steps))
    want = np.zeros((steps, 2, n_comp))
    for i in range(2):
        for j in range(3):
            want[:, i, SITES[i, j]] += WEIGHTS[i, j] * spikes[:, j]
    np.testing.assert_array_equal(np.asarray(arrivals).reshape(steps, 2, n_comp), want)

    split = nj.Network(
        [nj.Population("src", 3, nj.inputs.SpikeTrains(spikes)),
         nj.Population("cell", 2, passive(ball_and_stick(n_segments=4)))],
        [nj.Projection("src", "cell", nj.connectivity.AllToAll(), weight=WEIGHTS * (SITES == c),
                       synapse=synapse, receptor=receptor, compartments=Compartments(index=c),
                       name=f"c{c}") for c in range(n_comp)],
    ).build(jax.random.key(0))
    _, v_split = jax.lax.scan(lambda st, k: (split.step(st, k * 0.1, 0.1)[0],) * 2,
                              split.init(jax.random.key(1), 0.1), jnp.arange(steps))
    assert np.abs(np.asarray(v) - E_REST).max() > 1e-3  # the synapses act
    # Same sums in a different order: float64 round-off only.
    np.testing.assert_allclose(v, v_split.neurons[1].v, rtol=0, atol=1e-12)


def test_drawn_synapse_sites_follow_membrane_area_within_the_allowed_compartments():
    # sites="synapse" draws each synapse's compartment independently with probability
    # area_c / sum(area) among the allowed ones: over 20000 synapses each frequency is
    # within 5 binomial standard deviations of it (a false alarm ~1e-6 per bin), and
    # no synapse falls outside the distance window.
    morph = y_dendrite(n_trunk=4, n_branch=3)
    dist, area = morph.path_distance(), np.asarray(morph.area())
    allowed = (dist >= 100.0) & (dist <= 1e4)
    n_post, n_pre = 100, 200
    post, pre = np.repeat(np.arange(n_post), n_pre), np.tile(np.arange(n_pre), n_post)
    where = Compartments(distance=(100.0, 1e4), sites="synapse", key=jax.random.key(3))
    sites = where.synapse_sites(morph, post, pre, n_post, n_pre)
    assert sites.shape == post.shape and np.all(allowed[sites])
    p = np.where(allowed, area, 0.0) / area[allowed].sum()
    freq = np.bincount(sites, minlength=len(p)) / sites.size
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / sites.size))


def _polsky_cell(n_branch=8, n_seg=8):
    """The passive pyramidal cell of tutorials/dendritic_attenuation.py: a 30 µm soma
    and `n_branch` thin basal branches (300 µm x 0.5 µm, `n_seg` compartments each)."""
    parent, lengths, diams = [-1], [30.0], [30.0]
    for b in range(n_branch):
        first = len(parent)
        parent += [0] + list(range(first, first + n_seg - 1))
        lengths += [300.0 / n_seg] * n_seg
        diams += [0.5] * n_seg
    morph = nj.neurons.Morphology(parent, np.asarray(lengths), np.asarray(diams),
                                  [SOMA] + [BASAL_DENDRITE] * (n_branch * n_seg))
    return passive(morph)


def test_clustered_nmda_synapses_sum_supralinearly_spread_ones_about_linearly():
    # Polsky, Mel & Schiller (2004) in one projection with a site per synapse: m = 8
    # NMDA synapses (1 nS, τ = 50 ms) from 8 sources that spike together, on the
    # distal half of one branch (clustered) or one per branch at 3/4 of its length
    # (spread). Rows of one population: all 8 together, or synapse k alone (weight
    # rows), so the linear sum is the sum of the single-synapse somatic peaks. As in
    # the tutorial (which gives 2.1 and 1.06 at this dt): the clustered ratio is
    # supralinear (> 1.5, an NMDA branch spike) and the spread one within 10 % of 1.
    m, n_seg, dt, duration = 8, 8, 0.1, 40.0

    def on_branch(b, frac):
        return 1 + b * n_seg + min(int(frac * n_seg), n_seg - 1)

    clustered = [on_branch(0, 0.5 + 0.5 * k / m) for k in range(m)]
    spread = [on_branch(b, 0.75) for b in range(m)]
    steps = int(round(duration / dt))
    src = nj.inputs.SpikeTrains(np.repeat(np.eye(1, steps, 50).T, m, axis=1))
    rows = np.concatenate([np.ones((1, m)), np.eye(m)])  # together, then each alone
    weight = np.concatenate([rows, rows])  # [nS]
    sites = np.concatenate([np.tile(clustered, (m + 1, 1)), np.tile(spread, (m + 1, 1))])
    net = nj.Network(
        [nj.Population("syn", m, src), nj.Population("cell", 2 * (m + 1), _polsky_cell(m, n_seg))],
        [nj.Projection("syn", "cell", nj.connectivity.AllToAll(), weight=weight,
                       synapse=nj.synapses.Exponential(tau=50.0), receptor=nj.synapses.NMDA(),
                       compartments=Compartments(sites=sites))])
    res = nj.simulate(net.build(jax.random.key(0)), duration, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=(), v={"cell": None}, every=dt))
    peak = (np.asarray(res.variables["cell.v"])[:, :, 0] - E_REST).max(axis=0)  # [mV]
    ratio_clustered = peak[0] / peak[1:m + 1].sum()
    ratio_spread = peak[m + 1] / peak[m + 2:].sum()
    assert ratio_clustered > 1.5
    assert abs(ratio_spread - 1.0) < 0.1


def _drawn_site_net(layout, steps=8):
    """`_site_net` with sites drawn per synapse on the dendrite and NMDA synapses with
    exponential kinetics: on passive cells a smooth function of the weight [nS]."""
    where = Compartments(section="dendrite", sites="synapse", key=jax.random.key(5))
    return _site_net(where, 3.0, layout, receptor=nj.synapses.NMDA(),
                     synapse=nj.synapses.Exponential(tau=4.0), steps=steps)[0]


def _somatic_v(model, w, dt=0.1, steps=8):
    res = nj.simulate(model.replace({"src->cell.weight": w}), steps * dt, dt,
                      key=jax.random.key(1), record=nj.Record(spikes=(), v={"cell": None},
                                                              every=dt))
    return res.variables["cell.v"][:, :, 0]


def test_per_synapse_sites_dense_and_sparse_layouts_agree():
    # The same drawn sites stored as a (n_post * n_comp, n_pre) matrix or as sparse
    # rows: the same sums in another order, so float64 round-off (atol 1e-12 mV).
    dense, sparse = (_drawn_site_net(lay) for lay in (nj.connectivity.Dense(),
                                                       nj.connectivity.Sparse()))
    assert dense.projections[0].weights.weights.shape == ()  # one scalar weight leaf
    v_dense, v_sparse = _somatic_v(dense, 3.0), _somatic_v(sparse, 3.0)
    assert float(jnp.max(v_dense - E_REST)) > 1e-3  # the synapses reach the soma
    np.testing.assert_allclose(v_sparse, v_dense, rtol=0, atol=1e-12)


def test_per_synapse_sites_jit_equals_eager():
    # One network step op by op equals the compiled step, from a state whose delay
    # buffer holds the first spikes' arrivals (so the step runs the per-site kinetics
    # and the NMDA block at each site; op by op the Hines loops cost seconds a step).
    model, dt = _drawn_site_net(nj.connectivity.Dense()), 0.1
    step = jax.jit(lambda st, t: model.step(st, t, dt)[0])
    state = step(model.init(jax.random.key(1), dt), 0.0)
    assert float(jnp.abs(state.buffers[0]).max()) > 0
    compiled = step(state, dt)
    with jax.disable_jit():
        eager = model.step(state, dt, dt)[0]
    for a, b in zip(jax.tree.leaves(compiled), jax.tree.leaves(eager)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_per_synapse_sites_weight_gradient_matches_finite_differences():
    # d(mean somatic depolarisation)/d(weight) through the sparse event-driven path
    # equals central differences: h = 1e-3 nS on a smooth (passive, subthreshold)
    # function, truncation O(h²) far below the 1e-6 relative tolerance in float64.
    model = _drawn_site_net(nj.connectivity.Sparse())

    def loss(w):
        return jnp.mean(_somatic_v(model, w) - E_REST)

    grad, h = float(jax.grad(loss)(3.0)), 1e-3
    fd = (float(loss(3.0 + h)) - float(loss(3.0 - h))) / (2 * h)
    assert grad > 0
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_bad_per_synapse_sites_raise_errors_naming_the_parameter():
    cell = nj.Population("cell", 2, passive(ball_and_stick(n_segments=4)))  # 5 compartments
    src = nj.Population("src", 3, one_spike(5))
    lif = nj.Population("lif", 2, nj.neurons.LIF())

    def build(compartments, post="cell", **kw):
        proj = nj.Projection("src", post, kw.pop("connectivity", nj.connectivity.AllToAll()),
                             compartments=compartments, **kw)
        return nj.Network([src, cell, lif], [proj]).build(jax.random.key(0))

    bad = SITES.copy()
    bad[1, 2] = 9
    with pytest.raises(ValueError, match=r"src->cell: Compartments sites\[1, 2\] = 9 does not "
                                         r"exist.*\[0, 4\] \(5 compartments\)"):
        build(Compartments(sites=bad))
    with pytest.raises(ValueError, match=r"sites\[0, 0\] = -1 does not exist"):
        build(Compartments(sites=np.full((2, 3), -1)))
    with pytest.raises(ValueError, match=r"sites array must have shape \(n_post, n_pre\) = "
                                         r"\(2, 3\), got \(3, 2\)"):
        build(Compartments(sites=SITES.T))
    with pytest.raises(ValueError, match=r"src->lif: compartments is given, but population 'lif'"):
        build(Compartments(sites=SITES), post="lif")
    with pytest.raises(ValueError, match=r"src->lif: compartments is given"):
        build(Compartments(index=1, sites="synapse", key=jax.random.key(0)), post="lif")
    with pytest.raises(ValueError, match=r"sites must be None, a positive integer, \"synapse\".*"
                                         r"got 'synapses'"):
        Compartments(index=1, sites="synapses", key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"array of integer compartment indices, got ndarray"):
        Compartments(sites=np.full((2, 3), 1.5))
    with pytest.raises(ValueError, match=r"sites given as an array .* give no index"):
        Compartments(index=1, sites=SITES)
    with pytest.raises(ValueError, match="sites needs a key"):
        Compartments(index=1, sites="synapse")
    with pytest.raises(ValueError, match=r"src->cell: Compartments index 5 does not exist"):
        build(Compartments(index=[1, 5], sites="synapse", key=jax.random.key(0)))
    with pytest.raises(ValueError, match=r"src->cell: initial must be None with Compartments"):
        build(Compartments(sites=SITES), synapse=nj.synapses.Exponential(tau=2.0), initial=1.0)
    with pytest.raises(ValueError, match=r"src->cell: .*Procedural connectivity regenerates"):
        build(Compartments(sites=SITES),
              connectivity=nj.connectivity.Procedural(out_degree=1))
    with pytest.raises(ValueError, match=r"src->cell: Normalization\(direction='incoming'\) "
                                         r"sums each postsynaptic neuron's"):
        build(Compartments(sites=SITES), plasticity=nj.plasticity.Chain(
            nj.plasticity.PairSTDP(), nj.plasticity.Normalization(target_sum=1.0)), weight=0.1)
    with pytest.raises(ValueError, match=r"src->cell: SynapticScaling target_rate \[Hz\] per "
                                         r"postsynaptic neuron"):
        build(Compartments(sites=SITES),
              plasticity=nj.plasticity.SynapticScaling(target_rate=np.array([5.0, 6.0])))
    for rule in (nj.plasticity.VoltageSTDP(homeostasis=True),
                 nj.plasticity.Chain(nj.plasticity.PairSTDP(),
                                     nj.plasticity.VoltageSTDP(homeostasis=True))):
        with pytest.raises(ValueError, match=r"src->cell: VoltageSTDP\(homeostasis=True\) "
                                             r"scales A_LTD per postsynaptic neuron"):
            build(Compartments(sites=SITES), plasticity=rule, weight=0.1)
    with pytest.raises(ValueError, match=r"OnCompartments\(Constant\) input to 'cell': "
                                         r"Compartments sites=\"synapse\""):
        nj.Network([cell], inputs=[nj.inputs.OnCompartments(
            nj.inputs.Constant("cell", 1.0), Compartments(sites=SITES))]).build(jax.random.key(0))


# Plastic projections onto compartments.

def _spiking_cell(n):
    """Passive cells whose somatic crossings of -60 mV (5 mV above rest) are spikes."""
    return nj.Population("cell", n, passive(ball_and_stick(n_segments=4), v_th=-60.0))


@pytest.mark.parametrize("where, layout", [
    (Compartments(sites=np.array([[1, 2, 4], [3, 3, 0]])), nj.connectivity.Sparse()),
    (Compartments(section="dendrite"), nj.connectivity.Dense()),
])
def test_stdp_onto_compartments_learns_as_onto_a_point_neuron_with_the_same_spikes(where, layout):
    # Pair STDP on synapses placed on compartments (a site per synapse, sparse: the
    # post-triggered updates go through the (neuron, compartment) index; or shared
    # fractions, dense) sees the same pre and post spikes as a point target that
    # replays them, so it learns the same weights. The cells' spikes are imposed by a
    # strong somatic synapse from a driver; the plastic synapses (0.5 pA·ms) are weak.
    # The same additions in the same order: agreement to float64 round-off.
    dt, steps, n_pre, w0 = 0.1, 300, 3, 0.5
    pre = (np.random.default_rng(1).random((steps, n_pre)) < 0.03).astype(float)
    drive = np.zeros((steps, 2))
    drive[50::80, 0] = drive[90::80, 1] = 1.0
    rule = nj.plasticity.PairSTDP(a_plus=0.01, a_minus=0.012, tau_plus=17.0, tau_minus=34.0)
    model = nj.Network(
        [nj.Population("pre", n_pre, nj.inputs.SpikeTrains(pre)),
         nj.Population("drv", 2, nj.inputs.SpikeTrains(drive)), _spiking_cell(2)],
        [nj.Projection("drv", "cell", nj.connectivity.FromMatrix(np.eye(2)), weight=300.0),
         nj.Projection("pre", "cell", nj.connectivity.AllToAll(), weight=w0, plasticity=rule,
                       layout=layout, compartments=where, name="plastic")],
    ).build(jax.random.key(0))
    res = nj.simulate(model, steps * dt, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=["cell"]))
    post = np.asarray(res.spikes["cell"], float)
    assert post.sum(axis=0).min() >= 3  # every cell spikes on each driver spike

    point = nj.Network(
        [nj.Population("pre", n_pre, nj.inputs.SpikeTrains(pre)),
         nj.Population("post", 2, nj.inputs.SpikeTrains(post))],
        [nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=w0, plasticity=rule,
                       layout=nj.connectivity.Dense())]).build(jax.random.key(0))
    want = np.asarray(point.plastic_weights(
        nj.simulate(point, steps * dt, dt, key=jax.random.key(1), record=nj.Record(spikes=())).state,
        "pre->post"))
    got = np.asarray(model.plastic_weights(res.state, "plastic"))
    if where.per_synapse:  # rows (n_pre, n_post) of targets i * n_comp + c
        targets = np.asarray(model.projection("plastic").weights.targets)
        got_matrix = np.zeros_like(want)
        got_matrix[targets // 5, np.arange(n_pre)[:, None]] = got
        got = got_matrix
    assert np.abs(want - w0).max() > 0.01  # the weights moved
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_voltage_stdp_reads_the_potential_of_the_compartment_where_the_synapse_sits():
    # One synapse on the tip of a ball and stick whose tip is held depolarised (a
    # constant current there: tip ≈ -38 mV, soma ≈ -45 mV), under Clopath's rule:
    # with its site given per synapse the rule reads the tip's potential; placed with
    # Compartments(index=[tip - 1, tip]) (half of the drive at each) it reads the mean
    # of the two. The learned weights equal the numpy integration of the rule
    # (tests/plasticity/test_voltage.py) on those recorded potentials, to round-off
    # (rtol 1e-10 as there); on the soma's potential the result differs by ~0.6.
    from tests.plasticity.test_voltage import _reference

    dt, steps, tip = 0.1, 400, 4
    pre = (np.random.default_rng(2).random((steps, 1)) < 0.05).astype(float)
    rule = nj.plasticity.VoltageSTDP.clopath2010(w_max=5.0, a_ltd=2e-3, a_ltp=5e-4)
    cell = nj.Population("cell", 1, passive(ball_and_stick(n_segments=4), v_th=100.0))
    model = nj.Network(
        [nj.Population("pre", 1, nj.inputs.SpikeTrains(pre)), cell],
        [nj.Projection("pre", "cell", nj.connectivity.AllToAll(), weight=1.0, plasticity=rule,
                       compartments=Compartments(sites=[[tip]]), name="site"),
         nj.Projection("pre", "cell", nj.connectivity.AllToAll(), weight=1.0, plasticity=rule,
                       compartments=Compartments(index=[tip - 1, tip]), name="shared")],
        inputs=[nj.inputs.OnCompartments(nj.inputs.Constant("cell", amplitude=100.0),
                                         Compartments(index=tip))],
    ).build(jax.random.key(0))
    res = nj.simulate(model, steps * dt, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=(), v={"cell": None}))
    v = np.asarray(res.variables["cell.v"])[:, 0]  # (steps, n_comp) [mV]
    assert v[-1, tip] > -40.0 and v[-1, 0] < -44.0
    no_post, w0 = np.zeros((steps, 1)), np.ones((1, 1))
    at_tip = _reference(rule, w0, pre, no_post, v[:, [tip]])
    mean = _reference(rule, w0, pre, no_post, 0.5 * (v[:, [tip - 1]] + v[:, [tip]]))
    at_soma = _reference(rule, w0, pre, no_post, v[:, [0]])
    assert abs(float(at_tip[0, 0] - at_soma[0, 0])) > 0.3
    np.testing.assert_allclose(model.plastic_weights(res.state, "site").ravel(), at_tip.ravel(),
                               rtol=1e-10)
    np.testing.assert_allclose(model.plastic_weights(res.state, "shared").ravel(), mean.ravel(),
                               rtol=1e-10)


# Every plasticity rule on a projection with a site per synapse: the rule sees the
# (neuron, compartment) pairs as its postsynaptic units, each with its neuron's spikes,
# so it must learn what it learns onto point neurons that replay those spikes; VoltageSTDP
# reads each site's own potential (below). Refused at build time, with the reason
# (test_bad_per_synapse_sites_raise_errors_naming_the_parameter): Normalization
# incoming, SynapticScaling with a target rate per neuron, VoltageSTDP with homeostasis.
PAIR_SITES = np.array([[1, 2, 4], [3, 3, 0]])  # two synapses of cell 1 share compartment 3


def _dopamine(t):
    """A modulator with one value per postsynaptic neuron (2 cells) [1]."""
    return jnp.stack([jnp.sin(t / 3.0), 0.5 + jnp.cos(t / 7.0)])


PLASTIC_RULES = {
    # name: (rule, initial weight [pA·ms], modulator signal or None)
    "PairSTDP": (nj.plasticity.PairSTDP(a_plus=0.01, a_minus=0.012, tau_plus=17.0,
                                        tau_minus=34.0), 0.5, None),
    "PairSTDP nearest, multiplicative": (nj.plasticity.PairSTDP(
        a_plus=0.05, a_minus=0.06, weight_dependence="multiplicative", traces="nearest"),
        0.5, None),
    "TripletSTDP": (nj.plasticity.TripletSTDP(a2_plus=5e-4, a3_plus=6.2e-4, a2_minus=1e-4,
                                              a3_minus=1e-5), 0.5, None),
    "InhibitorySTDP": (nj.plasticity.InhibitorySTDP(eta=0.01, rho0=20.0), 0.5, None),
    # sigma = 0: the noise draw has the layout's shape, (n_post * n_comp, n_pre) on
    # pairs against (n_post, n_pre), so only the deterministic part can agree.
    # Small calcium jumps: the presynaptic calcium (~0.8 at these rates) then hovers
    # below theta_d and postsynaptic spikes take it over theta_d or theta_p for a
    # while, so the synapses differ (larger jumps keep every synapse above both).
    "CalciumSTDP": (nj.plasticity.CalciumSTDP(c_pre=0.01, c_post=0.3, delay=0.0, sigma=0.0,
                                              tau=500.0), 0.5, None),
    "BCM": (nj.plasticity.BCM(eta=0.5, tau_theta=5.0), 0.5, None),
    "Oja": (nj.plasticity.Oja(eta=0.3), 0.5, None),
    "SynapticScaling": (nj.plasticity.SynapticScaling(target_rate=20.0, tau=50.0,
                                                      tau_rate=5.0), 0.5, None),
    "Chain(PairSTDP, outgoing Normalization)": (nj.plasticity.Chain(
        nj.plasticity.PairSTDP(a_plus=0.005, a_minus=0.006),
        nj.plasticity.Normalization(target_sum=np.array([1.0, 1.2, 0.8]), direction="outgoing",
                                    every=5.0)), 0.5, None),
    "RewardModulated, one value per neuron": (nj.plasticity.RewardModulated(
        eta=0.01, tau_e=20.0, a_plus=1.0, a_minus=1.2), 0.5, _dopamine),
    "RewardModulated, scalar": (nj.plasticity.RewardModulated(
        eta=0.01, tau_e=20.0, a_plus=1.0, a_minus=1.2), 0.5, lambda t: jnp.cos(t / 5.0)),
}


def _plastic_nets(rule, w0, signal, layout, steps=300, dt=0.1):
    """Three sources (~5 kHz: a spike in half of the steps, so that the rules reading
    coincident pre and post spikes, BCM and Oja, act) onto two passive ball-and-stick cells through `rule`,
    each synapse on its own compartment (PAIR_SITES); the cells' spikes are imposed by
    a strong somatic synapse from a driver. Returns the
    built model, the sources' and the cells' spikes."""
    pre = (np.random.default_rng(1).random((steps, 3)) < 0.5).astype(float)
    drive = np.zeros((steps, 2))
    drive[50::80, 0] = drive[90::80, 1] = 1.0
    mods = [] if signal is None else [nj.inputs.Modulator("dopamine", signal)]
    model = nj.Network(
        [nj.Population("pre", 3, nj.inputs.SpikeTrains(pre)),
         nj.Population("drv", 2, nj.inputs.SpikeTrains(drive)), _spiking_cell(2)],
        [nj.Projection("drv", "cell", nj.connectivity.FromMatrix(np.eye(2)), weight=300.0),
         # Conductance synapses reversing at rest [nS·ms]: they cannot hold the cells
         # above threshold however large the rules make them.
         nj.Projection("pre", "cell", nj.connectivity.AllToAll(), weight=w0, plasticity=rule,
                       layout=layout, compartments=Compartments(sites=PAIR_SITES),
                       receptor=nj.synapses.Conductance(e_rev=E_REST), name="plastic")],
        modulators=mods,
    ).build(jax.random.key(0))
    return model, pre


def _as_matrix(model, w, n_post=2, n_pre=3):
    """Plastic weights of the per-site projection in the point layout (n_post, n_pre)."""
    w, n_comp = np.asarray(w), model.projection("plastic").n_comp
    out = np.full((n_post, n_pre), np.nan)
    weights = model.projection("plastic").weights
    if isinstance(weights, nj.connectivity.SparseWeights):  # rows (pre, out) of i * n_comp + c
        targets = np.asarray(weights.targets)
        for j in range(n_pre):
            for k, t in enumerate(targets[j]):
                if t < n_post * n_comp:
                    out[t // n_comp, j] = w[j, k]
    else:  # (n_post * n_comp, n_pre): synapse i <- j in row i * n_comp + site
        for i in range(n_post):
            for j in range(n_pre):
                out[i, j] = w[i * n_comp + PAIR_SITES[i, j], j]
    return out


@pytest.mark.parametrize("layout", [nj.connectivity.Sparse(), nj.connectivity.Dense()],
                         ids=["sparse", "dense"])
@pytest.mark.parametrize("name", list(PLASTIC_RULES))
def test_every_rule_on_per_synapse_sites_learns_as_onto_point_neurons(name, layout):
    # Each rule on synapses with their own sites sees the same presynaptic spikes and,
    # at each (neuron, compartment) pair, its neuron's spikes (and modulator value), so
    # it learns what it learns onto point neurons replaying those spikes (a dense point
    # projection): the same arithmetic per synapse, so float64 round-off (atol 1e-12;
    # outgoing Normalization sums a column with the other compartments' empty rows).
    rule, w0, signal = PLASTIC_RULES[name]
    dt, steps = 0.1, 300
    model, pre = _plastic_nets(rule, w0, signal, layout, steps, dt)
    res = nj.simulate(model, steps * dt, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=["cell"]))
    post = np.asarray(res.spikes["cell"], float)
    assert post.sum(axis=0).min() >= 2  # every cell spikes (on most driver spikes)
    mods = [] if signal is None else [nj.inputs.Modulator("dopamine", signal)]
    point = nj.Network(
        [nj.Population("pre", 3, nj.inputs.SpikeTrains(pre)),
         nj.Population("post", 2, nj.inputs.SpikeTrains(post))],
        [nj.Projection("pre", "post", nj.connectivity.AllToAll(), weight=w0, plasticity=rule,
                       layout=nj.connectivity.Dense())], modulators=mods,
    ).build(jax.random.key(0))
    want = np.asarray(point.plastic_weights(
        nj.simulate(point, steps * dt, dt, key=jax.random.key(1),
                    record=nj.Record(spikes=())).state, "pre->post"))
    got = _as_matrix(model, model.plastic_weights(res.state, "plastic"))
    moved = np.abs(want - w0)
    assert moved.max() > 1e-2 and (moved > 1e-6).sum() >= 4  # the rule acts on most synapses
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("layout", [nj.connectivity.Sparse(), nj.connectivity.Dense()],
                         ids=["sparse", "dense"])
def test_voltage_stdp_with_per_synapse_sites_reads_each_synapse_s_own_compartment(layout):
    # Clopath's rule on six synapses with their own sites (PAIR_SITES, two of them on
    # one compartment) of two ball-and-stick cells whose tips are held depolarised (a
    # constant current there; tip ≈ -38 mV, soma ≈ -45 mV, so LTP and LTD both act):
    # each synapse's weight equals the numpy integration of the rule
    # (tests/plasticity/test_voltage.py) on the recorded potential of its own
    # compartment, to round-off (rtol 1e-10 as there).
    from tests.plasticity.test_voltage import _reference

    dt, steps, tip = 0.1, 300, 4
    pre = (np.random.default_rng(2).random((steps, 3)) < 0.05).astype(float)
    rule = nj.plasticity.VoltageSTDP.clopath2010(w_max=5.0, a_ltd=2e-3, a_ltp=5e-4)
    cell = nj.Population("cell", 2, passive(ball_and_stick(n_segments=4), v_th=100.0))
    model = nj.Network(
        [nj.Population("pre", 3, nj.inputs.SpikeTrains(pre)), cell],
        [nj.Projection("pre", "cell", nj.connectivity.AllToAll(), weight=1.0, plasticity=rule,
                       layout=layout, compartments=Compartments(sites=PAIR_SITES),
                       name="plastic")],
        inputs=[nj.inputs.OnCompartments(nj.inputs.Constant("cell", amplitude=100.0),
                                         Compartments(index=tip))],
    ).build(jax.random.key(0))
    res = nj.simulate(model, steps * dt, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=(), v={"cell": None}))
    v = np.asarray(res.variables["cell.v"])  # (steps, 2, n_comp) [mV]
    no_post, w0 = np.zeros((steps, 1)), np.ones((1, 1))
    want = np.array([[_reference(rule, w0, pre[:, [j]], no_post, v[:, i, [PAIR_SITES[i, j]]])[0, 0]
                      for j in range(3)] for i in range(2)])
    # On the soma's potential the weights would differ: the sites matter.
    at_soma = np.array([[_reference(rule, w0, pre[:, [j]], no_post, v[:, i, [0]])[0, 0]
                         for j in range(3)] for i in range(2)])
    assert np.abs(want - at_soma).max() > 0.1
    got = _as_matrix(model, model.plastic_weights(res.state, "plastic"))
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("layout", [nj.connectivity.Sparse(), nj.connectivity.Dense()],
                         ids=["sparse", "dense"])
def test_tsodyks_markram_on_per_synapse_sites_scales_each_synapse_s_arrivals(layout):
    # Short-term plasticity is kept per presynaptic neuron and scales its spikes before
    # delivery, so each synapse placed on its own compartment delivers w_ij u_n x_n per
    # spike of source j; u_n x_n from the exact between-spike solution of the
    # Tsodyks-Markram equations (the recursion of NEST's tsodyks2_synapse), in numpy.
    # The same products in the same order: exact up to float64 round-off (1e-12).
    dt, steps, U, tau_d, tau_f = 0.1, 40, 0.3, 5.0, 2.0  # [ms], -, [1], [ms], [ms]
    spikes = (np.random.default_rng(3).random((steps, 3)) < 0.3).astype(float)
    model = nj.Network(
        [nj.Population("src", 3, nj.inputs.SpikeTrains(spikes)),
         nj.Population("cell", 2, passive(ball_and_stick(n_segments=4)))],
        [nj.Projection("src", "cell", nj.connectivity.AllToAll(), weight=WEIGHTS, layout=layout,
                       plasticity=nj.plasticity.TsodyksMarkram(U=U, tau_d=tau_d, tau_f=tau_f),
                       compartments=Compartments(sites=SITES))]).build(jax.random.key(0))

    def body(st, k):
        st, _ = model.step(st, k * dt, dt)
        return st, st.buffers[0][0]

    _, arrivals = jax.lax.scan(body, model.init(jax.random.key(1), dt), jnp.arange(steps))
    efficacy = np.zeros((steps, 3))
    for j in range(3):
        u, x, last = 0.0, 1.0, 0
        for k in range(steps):
            if spikes[k, j]:
                gap = (k + 1 - last) * dt
                u_minus, x_minus = u * np.exp(-gap / tau_f), 1.0 + (x - 1.0) * np.exp(-gap / tau_d)
                u = u_minus + U * (1.0 - u_minus)
                efficacy[k, j], x, last = u * x_minus, x_minus - u * x_minus, k + 1
    assert efficacy[spikes > 0].min() < 0.8 * U  # depression acts
    want = np.zeros((steps, 2, 5))
    for i in range(2):
        for j in range(3):
            want[:, i, SITES[i, j]] += WEIGHTS[i, j] * spikes[:, j] * efficacy[:, j]
    np.testing.assert_allclose(np.asarray(arrivals).reshape(steps, 2, 5), want, rtol=0, atol=1e-12)
