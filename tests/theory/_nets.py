"""Small rate networks of REFERENCES.md §§7, 8 built with the library, shared by the
theory tests."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import neurojax as nj
from neurojax.connectivity.builders import AllToAll
from neurojax.inputs.deterministic import Constant
from neurojax.network import Network, Population, Projection

BETA = 0.1  # Tsodyks et al. 1997 gain [1/input]
TSODYKS_J = np.array([[25.0, -25.0], [15.0, -7.0]])  # J[post, pre], inhibition negative
TSODYKS_TAU = (10.0, 5.0)  # [ms]
SSN_W = np.array([[1.25, -0.65], [1.2, -0.5]])  # [mV·s] @ [Hz] = [mV]


def pair(names, neurons, weights, inputs=()):
    """Two one-unit populations coupled by `weights[post][pre]` (all-to-all with the
    autapse, Delta synapses, no delay)."""
    projs = [
        Projection(pre, post, AllToAll(allow_autapses=True), weight=float(weights[i][j]))
        for i, post in enumerate(names) for j, pre in enumerate(names)
    ]
    pops = [Population(name, 1, neuron) for name, neuron in zip(names, neurons)]
    return Network(pops, projs, inputs=list(inputs)).build(jax.random.key(0))


def tsodyks(j_ee=25.0, s_e=5.0, s_i=0.0):
    """Tsodyks et al. (1997) threshold-linear E/I network, BDT `Tsodyks1997.m`
    parameters (REFERENCES.md §7): G(x) = beta [x]+ capped at 1."""
    g = nj.neurons.ReLU(gain=BETA, max_rate=1.0)
    units = [nj.neurons.FiringRate(tau=tau, transfer=g) for tau in TSODYKS_TAU]
    w = TSODYKS_J.copy()
    w[0, 0] = j_ee
    return pair("EI", units, w, [Constant("E", amplitude=s_e), Constant("I", amplitude=s_i)])


def set_input(model, index, value):
    """`model` with the amplitude of its `index`-th input replaced (traceable)."""
    return eqx.tree_at(lambda m: m.inputs[index].amplitude, model,
                       jnp.asarray(value, dtype=float))


def wilson_cowan(system=None):
    """The Wilson–Cowan system (Neuromatch parameters by default) as a network."""
    system = nj.neurons.WilsonCowanSystem() if system is None else system
    w = [[system.w_ee, -system.w_ei], [system.w_ie, -system.w_ii]]
    inputs = [Constant("E", amplitude=system.i_e), Constant("I", amplitude=system.i_i)]
    return pair("EI", system.populations(), w, inputs)


def ssn(h=2.0):
    """Hennequin et al. (2018) 2-population SSN (REFERENCES.md §8), input h [mV] to
    both populations."""
    power_law = nj.neurons.PowerLaw(k=0.3, n=2.0)  # [Hz/mV²]
    units = (nj.neurons.Rate(tau=20.0, v_rest=-70.0, transfer=power_law),
             nj.neurons.Rate(tau=10.0, v_rest=-70.0, transfer=power_law))
    return pair("EI", units, SSN_W, [Constant("E", amplitude=h), Constant("I", amplitude=h)])


def ssn_at(model, h):
    """The SSN with input h [mV] to both populations (traceable in h)."""
    h = jnp.asarray(h, dtype=float)
    return eqx.tree_at(lambda m: (m.inputs[0].amplitude, m.inputs[1].amplitude), model, (h, h))
