"""Units and conversions: the gallery's COBA network from NEST and Brian2 parameter sets.

The code of docs/guides/units.md, run as it stands by tests/test_guides.py
(`python docs/guides/units.py` prints what each part checks).
"""

# --8<-- [start:convert]
import jax
import jax.numpy as jnp
import numpy as np

import neurojax as nj

jax.config.update("jax_enable_x64", True)

# neurojax's unit for each physical dimension, and its size in SI units.
NEUROJAX_UNITS = {"s": ("ms", 1e-3), "V": ("mV", 1e-3), "S": ("nS", 1e-9),
                  "F": ("pF", 1e-12), "A": ("pA", 1e-12), "Hz": ("Hz", 1.0),
                  "C": ("pA·ms", 1e-15)}  # charge: a delta synapse's weight
PREFIXES = {"": 1.0, "k": 1e3, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12}


def to_neurojax(value, unit: str) -> float:
    """`value` in `unit` (e.g. "nS", "uS", "F", "mV") expressed in neurojax's unit for
    that dimension (nS, pF, mV, ms, pA, Hz, pA·ms)."""
    for base, (_, size) in NEUROJAX_UNITS.items():
        prefix = unit[: len(unit) - len(base)]
        if unit.endswith(base) and prefix in PREFIXES:
            return float(value) * PREFIXES[prefix] / size
    raise ValueError(f"unknown unit {unit!r}")
# --8<-- [end:convert]


# --8<-- [start:parameters]
# NEST (iaf_cond_exp; pynest/examples/brette_et_al_2007/coba.py): NEST's units are
# neurojax's (pF, nS, mV, ms), and an inhibitory weight is negative: its sign selects
# the inhibitory port, the conductance increment is its magnitude.
NEST = {
    "neuron": {"C_m": 200.0, "g_L": 10.0, "E_L": -60.0, "V_th": -50.0, "V_reset": -60.0,
               "t_ref": 5.0, "E_ex": 0.0, "E_in": -80.0, "tau_syn_ex": 5.0, "tau_syn_in": 10.0},
    "weight_ex": 6.0, "weight_in": -67.0,  # [nS]
}

# Brian2 quantities, as `float(q)` gives them: SI base units. Brian's COBA writes the
# conductances in units of g_L (we = 0.6, wi = 6.7): multiplied by g_L they are siemens.
BRIAN2 = {
    "taum": (20e-3, "s"), "gl": (10e-9, "S"), "El": (-60e-3, "V"), "Vt": (-50e-3, "V"),
    "Vr": (-60e-3, "V"), "refractory": (5e-3, "s"), "Ee": (0.0, "V"), "Ei": (-80e-3, "V"),
    "taue": (5e-3, "s"), "taui": (10e-3, "s"),
    "we": (0.6 * 10e-9, "S"), "wi": (6.7 * 10e-9, "S"),
}


def from_nest(nest):
    p = nest["neuron"]
    return dict(c_m=p["C_m"], g_l=p["g_L"], e_l=p["E_L"], v_th=p["V_th"],
                v_reset=p["V_reset"], t_ref=p["t_ref"], e_e=p["E_ex"], e_i=p["E_in"],
                tau_e=p["tau_syn_ex"], tau_i=p["tau_syn_in"],
                w_e=nest["weight_ex"], w_i=abs(nest["weight_in"]))


def from_brian2(brian):
    nj_ = {k: to_neurojax(*v) for k, v in brian.items()}
    return dict(c_m=nj_["taum"] * nj_["gl"],  # C_m = tau_m g_L: 1 ms · 1 nS = 1 pF
                g_l=nj_["gl"], e_l=nj_["El"], v_th=nj_["Vt"], v_reset=nj_["Vr"],
                t_ref=nj_["refractory"], e_e=nj_["Ee"], e_i=nj_["Ei"],
                tau_e=nj_["taue"], tau_i=nj_["taui"], w_e=nj_["we"], w_i=nj_["wi"])
# --8<-- [end:parameters]


# --8<-- [start:network]
def coba(p, n=4000, prob=0.02):
    """The COBA network from converted parameters, in neurojax: pF, nS, mV, ms."""
    lif = nj.neurons.LIF(c_m=p["c_m"], g_l=p["g_l"], e_l=p["e_l"], v_th=p["v_th"],
                         v_reset=p["v_reset"], t_ref=p["t_ref"])
    n_e = int(round(0.8 * n))
    v0 = {"v": nj.Normal(-65.0, 5.0)}  # [mV]
    E = nj.Population("E", n_e, lif, initial=v0, sign=+1)
    I = nj.Population("I", n - n_e, lif, initial=v0, sign=-1)
    wiring = nj.connectivity.FixedProbability(prob)
    exc = nj.Projection("E", ["E", "I"], wiring, weight=p["w_e"],
                        synapse=nj.synapses.Exponential(tau=p["tau_e"]),
                        receptor=nj.synapses.Conductance(e_rev=p["e_e"]),
                        initial=nj.Normal(40.0, 15.0))  # [nS]
    inh = nj.Projection("I", ["E", "I"], wiring, weight=p["w_i"],
                        synapse=nj.synapses.Exponential(tau=p["tau_i"]),
                        receptor=nj.synapses.Conductance(e_rev=p["e_i"]),
                        initial=nj.Normal(200.0, 120.0))
    return nj.Network([E, I], [exc, inh])


def same_as_gallery(network, key=jax.random.key(0), rtol=0.0):
    """True if `network` builds to the gallery's COBA, leaf by leaf (same key): the same
    structure, integer leaves (connectivity) equal, float leaves within `rtol`."""
    ours = network.build(key)
    gallery = nj.gallery.get("coba").build(key)
    leaves, treedef = jax.tree_util.tree_flatten(ours)
    gallery_leaves, gallery_treedef = jax.tree_util.tree_flatten(gallery)
    return treedef == gallery_treedef and all(
        np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype
        and np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=0.0)
        for a, b in zip(leaves, gallery_leaves))
# --8<-- [end:network]


# --8<-- [start:delta]
def delta_jump(jump_mv=0.5, c_m=250.0, dt=0.1):
    """NEST's iaf_psc_delta and Brian2's `on_pre="v += J"` weights are voltage jumps
    J [mV]; neurojax's Delta synapse with a Current receptor delivers a charge
    q = J C_m [pA·ms] (1 mV · 1 pF = 1 pA·ms). Returns the simulated jump [mV]."""
    spikes = np.zeros((20, 1))
    spikes[5, 0] = 1
    cell = nj.neurons.LIF(c_m=c_m, g_l=1e-6, e_l=-70.0, v_th=1e3, v_reset=-70.0, t_ref=0.0)
    net = nj.Network([nj.Population("in", 1, nj.inputs.SpikeTrains(spikes)),
                      nj.Population("P", 1, cell)],
                     [nj.Projection("in", "P", nj.connectivity.AllToAll(), weight=jump_mv * c_m,
                                    synapse=nj.synapses.Delta(), receptor=nj.synapses.Current())])
    res = nj.simulate(net.build(jax.random.key(0)), 2.0, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=(), v={"P": None}))
    v = np.asarray(res.variables["P.v"][:, 0])
    return v.max() - v.min()
# --8<-- [end:delta]


if __name__ == "__main__":
    # NEST's numbers are neurojax's: exactly equal. Brian2's SI floats carry decimal
    # round-off (0.6 * 10e-9 S is 6.000000000000001 nS): equal to 1e-12.
    for name, params, rtol in (("NEST", from_nest(NEST), 0.0),
                               ("Brian2", from_brian2(BRIAN2), 1e-12)):
        print(f"{name} -> neurojax:", params)
        print(f"  builds to the gallery's COBA leaf by leaf (rtol {rtol:g}): "
              f"{same_as_gallery(coba(params), rtol=rtol)}")
    print(f"0.5 mV jump through a Delta synapse of 0.5 * 250 pA·ms: {delta_jump():.9f} mV")
