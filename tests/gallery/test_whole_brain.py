"""The whole-brain gallery model: neurolib's Wilson-Cowan equations per region, delays
from tract lengths, global coupling as one differentiable scale, and the rate variant
whose BOLD FC rises with the coupling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import fsolve

import neurojax as nj
from neurojax.gallery.whole_brain import NEUROLIB_WC


def _sc():
    return nj.connectivity.RegionConnectome.synthetic(6, seed=1)


def test_delays_from_tract_lengths_and_structure():
    sc = _sc()
    model = nj.gallery.get("whole_brain", connectome=sc, velocity=10.0).build(jax.random.key(0))
    g = model.projection("global")
    # Per-synapse delays are the tract lengths [mm] / 10 m/s, one per non-zero weight.
    delays = np.sort(np.asarray(g.weights.delays)[np.asarray(g.weights.targets) < sc.n])
    want = np.sort((sc.lengths / 10.0)[sc.weights > 0])
    np.testing.assert_allclose(delays, want)
    assert g.delay == pytest.approx(want.max())
    assert model.names == ("E", "I")
    with pytest.raises(ValueError, match=r"velocity \[m/s\] must lie in \(0, inf\)"):
        nj.gallery.get("whole_brain", connectome=sc, velocity=-1.0)
    with pytest.raises(ValueError, match=r"coupling \[dimensionless\] must lie in \[0, inf\)"):
        nj.gallery.get("whole_brain", coupling=-0.1)
    with pytest.raises(ValueError, match="node must be 'wilson_cowan' or 'rate'"):
        nj.gallery.get("whole_brain", node="hopf")
    with pytest.raises(ValueError, match="RegionConnectome"):
        nj.gallery.get("whole_brain", connectome=np.eye(3))


def test_uncoupled_nodes_settle_on_neurolib_wc_fixed_point():
    # Without coupling and noise every region is one neurolib WC node (refractory factor
    # 1 - r, unshifted sigmoids, I->E and I->I inhibitory): the simulation must settle on
    # the root of neurolib's right-hand side (to the fixed point's accuracy after 300 ms;
    # slowest decay ~1/(2 tau_I) per ms, so the transient is below e^-40).
    e_ext = 0.5
    model = nj.gallery.get("whole_brain", connectome=_sc(), coupling=0.0, sigma=0.0,
                           e_ext=e_ext).build(jax.random.key(0))
    res = nj.simulate(model, 300.0, 0.1, key=jax.random.key(1), record=nj.Record(spikes=()))
    e, i = (np.asarray(s.r) for s in res.state.neurons)
    p = NEUROLIB_WC
    s = lambda x, a, mu: 1.0 / (1.0 + np.exp(-a * (x - mu)))

    def rhs(x):
        E, I = x
        return [-E + (1 - E) * s(p["c_ee"] * E - p["c_ie"] * I + e_ext, p["a_e"], p["mu_e"]),
                -I + (1 - I) * s(p["c_ei"] * E - p["c_ii"] * I, p["a_i"], p["mu_i"])]

    root = fsolve(rhs, [e[0], i[0]], xtol=1e-13)
    np.testing.assert_allclose(e, root[0], atol=1e-9)
    np.testing.assert_allclose(i, root[1], atol=1e-9)


def test_rate_variant_fc_rises_with_coupling_and_is_differentiable():
    sc = nj.connectivity.RegionConnectome.synthetic(8, seed=2)
    base = nj.gallery.get("whole_brain", connectome=sc, node="rate", coupling=1.0,
                          sigma=0.3, e_ext=0.0).build(jax.random.key(0))
    unit = base.params()["global.weight"]
    iu = np.triu_indices(sc.n, 1)

    def mean_fc(k):
        m = base.replace({"global.weight": k * unit})
        res = nj.simulate(m, 10_000.0, 5.0, key=jax.random.key(3), checkpoint=True,
                          record=nj.Record(spikes=(), r={"E": None}, every=10.0))
        fc = nj.analysis.functional_connectivity(res.variables["E.r"])
        return fc[iu].mean()

    # Same noise draws (same key) at both couplings: with K = 0 the regions are
    # independent (mean FC ~ 0 up to the 1/sqrt(1000 samples / 2 correlation steps)
    # ~ 0.05 estimation error), with K near 1/lambda_max they are strongly correlated.
    lam = np.linalg.eigvalsh(sc.weights)[-1]
    # One compiled value-and-gradient serves both couplings (compiling is most of the
    # cost); the gradient flows through the delayed propagation and the noise.
    vg = jax.jit(jax.value_and_grad(mean_fc))
    (low, _), (high, g) = vg(0.0), vg(0.9 / lam)
    low, high, g = float(low), float(high), float(g)
    assert abs(low) < 0.1 and high > low + 0.2, (low, high)
    assert np.isfinite(g) and g > 0
