r"""Wang (2002) decision-making network: winner-take-all competition between two
selective excitatory groups through slow NMDA reverberation.

Source: X.-J. Wang, "Probabilistic decision making by slow reverberation in cortical
circuits", Neuron 36:955-968 (2002), Experimental Procedures; the NMDA gating and the
magnesium block as in Wang 1999 / Jahr & Stevens 1990. Brian2's
`examples/frompapers/Wang_2002.py` (Wimmer & Stimberg) is an independent transcription
whose values agree with these.

**Network.** N_E = 1600 pyramidal cells and N_I = 400 interneurons, all-to-all. A
fraction f = 0.15 of the E cells forms each of two selective groups `"E1"` and `"E2"`
(240 cells each); the remaining 1120 are the non-selective group `"E0"`; `"I"` are the
interneurons. LIF neurons: E: C_m = 0.5 nF, g_L = 25 nS, t_ref = 2 ms; I: C_m = 0.2 nF,
g_L = 20 nS, t_ref = 1 ms; both E_L = -70 mV, V_th = -50 mV, V_reset = -55 mV.

**Synapses** (conductances per synapse, onto E / onto I): recurrent AMPA 0.05 / 0.04 nS
(Exponential, 2 ms), NMDA 0.165 / 0.13 nS (`Saturating`: tau_rise 2 ms, tau_decay
100 ms, alpha 0.5 /ms; `NMDA` receptor, [Mg2+] = 1 mM), GABA_A 1.3 / 1.0 nS
(Exponential, 5 ms, E = -70 mV); E_AMPA = E_NMDA = 0 mV; delay 0.5 ms. Within a selective
group the recurrent excitatory weights are multiplied by w+ = 1.7; from the other
selective group and from E0 onto a selective group by
w- = 1 - f (w+ - 1)/(1 - f) = 0.876; all others by 1. Recurrent conductances scale as
1600/N_E and 400/N_I when the network is resized (as Brian2's example does), keeping
the mean recurrent input.

**Inputs.** Every neuron receives background AMPA input from 800 external cells at
3 Hz (2.4 kHz in all; 2.1 nS onto E, 1.62 nS onto I). The stimulus is one Poisson train
per selective cell at rate mu0 (1 + c) for E1 and mu0 (1 - c) for E2 (mu0 = 40 Hz,
c the coherence as a fraction; the paper's rho_A = rho_B = mu0/100 per % coherence),
through the external AMPA synapse, from `stim_on` to `stim_off`.

**Departure from the paper:** the stimulus rates are held constant during the stimulus;
the paper (and Brian2) redraw them every 50 ms from a Gaussian with sigma = 4 Hz.

**Expected** (paper, Results): spontaneous state with E cells at a few Hz (about 2 Hz)
and interneurons higher; under a stimulus one selective
group ramps up and wins (tens of Hz) while the other is suppressed, the favoured group
winning more often at higher coherence (about 50 % correct at c = 0, ~100 % at 51.2 %).
Measured here (dt = 0.1 ms, stimulus from 300 ms): full size, spontaneous E 1.9 Hz and
I 6.7 Hz; at c = 0.512 E1 won 4 of 4 trials at ~33 Hz (E2 ~1.7 Hz), crossing 15 Hz
275-500 ms after onset. At N_E = 400, N_I = 100 (32 trials per coherence): 41, 59, 69,
75, 75, 100 % correct at c = 0, 3.2, 6.4, 12.8, 25.6, 51.2 %.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from .. import connectivity, neurons, synapses
from .._abstract import AbstractInput
from .._custom_types import PopulationParam
from .._misc import check_shape, finite, nonnegative, param, positive
from ..distributions import Uniform
from ..inputs.stochastic import Poisson, PoissonState
from ..network import Network, Population, Projection

STATISTICS = (
    "spontaneous: E ~2 Hz, I higher; stimulus: winner-take-all, the group favoured "
    "by the coherence wins more often (~50 % correct at c = 0, ~100 % at c = 0.512)"
)
PUBLISHED = {"n_e": 1600, "n_i": 400, "f": 0.15, "w_plus": 1.7}


def expected(arguments: dict) -> str:
    changed = [f"{k}={arguments[k]:g}" for k, v in PUBLISHED.items() if arguments[k] != v]
    if changed:
        return (f"{STATISTICS} for the published network; this run has "
                f"{', '.join(changed)}: qualitative agreement only")
    return STATISTICS


class Stimulus(AbstractInput[PoissonState]):
    r"""Independent Poisson trains, one per neuron of `target`, at `rate` while
    `start <= t < stop`, through an exponential AMPA-like conductance synapse (the
    random-dots stimulus of Wang 2002).

    **Arguments:**

    - `target`: Name of the target population.
    - `rate`: Rate of each train [Hz], >= 0. Scalar or shape `(n,)`.
    - `start`, `stop`: Stimulus interval [ms].
    - `weight`: Conductance of each arrival [nS], >= 0.
    - `tau`: Decay time constant of the synapse [ms] (2 ms, AMPA).
    - `e_rev`: Reversal potential [mV] (0 mV, AMPA).
    """

    target: str = eqx.field(static=True)
    rate: PopulationParam = eqx.field(converter=nonnegative("rate", "Hz"))
    start: PopulationParam = eqx.field(converter=finite("start", "ms"), default=0.0)
    stop: PopulationParam = eqx.field(converter=param("stop", "ms", allow_inf=True),
                                      default=math.inf)
    weight: PopulationParam = eqx.field(converter=nonnegative("weight", "nS"), default=2.1)
    tau: PopulationParam = eqx.field(converter=positive("tau", "ms"), default=2.0)
    e_rev: PopulationParam = eqx.field(converter=finite("e_rev", "mV"), default=0.0)

    def _poisson(self, rate) -> Poisson:
        p = Poisson(self.target, rate=0.0, weight=1.0, synapse=synapses.Exponential(2.0),
                    receptor=synapses.Conductance(0.0))
        return eqx.tree_at(
            lambda q: (q.rate, q.weight, q.synapse.tau, q.receptor.e_rev), p,
            (rate, self.weight, self.tau, self.e_rev),
        )

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> PoissonState:
        return self._poisson(self.rate).init(n, key=key)

    def step(self, state: PoissonState, t, dt: float):
        on = (t >= self.start) & (t < self.stop)
        return self._poisson(jnp.where(on, self.rate, 0.0)).step(state, t, dt)

    def check(self, n: int, dt: float) -> None:
        check_shape(self.rate, n, f"Stimulus({self.target!r}) rate")
        self._poisson(self.rate).check(n, dt)


def wang2002(
    coherence: float = 0.0,
    n_e: int = 1600,
    n_i: int = 400,
    f: float = 0.15,
    w_plus: float = 1.7,
    mu0: float = 40.0,
    stim_on: float = 500.0,
    stim_off: float = 1500.0,
    ext_rate: float = 2400.0,
    mg: float = 1.0,
    delay: float = 0.5,
) -> Network:
    """The Wang (2002) decision network (module docstring), unbuilt.

    **Arguments:**

    - `coherence`: Motion coherence c as a fraction in [-1, 1] (0.512 is 51.2 %); E1
      is favoured for c > 0.
    - `n_e`, `n_i`: Numbers of E and I cells (1600, 400); recurrent conductances scale
      as 1600/n_e and 400/n_i.
    - `f`: Fraction of E cells in each selective group (0.15).
    - `w_plus`: Potentiation within a selective group (1.7).
    - `mu0`: Stimulus rate at zero coherence [Hz] (40; 0 switches the stimulus off).
    - `stim_on`, `stim_off`: Stimulus interval [ms].
    - `ext_rate`: Total background rate onto each neuron [Hz] (2400 = 800 x 3 Hz).
    - `mg`: Extracellular magnesium [mM] (1).
    - `delay`: Synaptic delay [ms] (0.5).

    Populations: `"E1"`, `"E2"` (selective), `"E0"` (non-selective), `"I"`. The stimulus
    inputs are `Stimulus` on E1 and E2: sweep the coherence of a built model with
    `model.replace({"Stimulus->E1.rate": mu0 * (1 + c), "Stimulus->E2.rate": mu0 * (1 - c)})`.
    """
    if not -1.0 <= coherence <= 1.0:
        raise ValueError(f"wang2002: coherence [fraction] must lie in [-1, 1], got {coherence}.")
    if not 0.0 < f < 0.5:
        raise ValueError(f"wang2002: f [fraction of E cells per group] must lie in (0, 0.5), got {f}.")
    n_sel = int(round(f * n_e))
    n_non = n_e - 2 * n_sel
    if n_sel < 1 or n_non < 1 or n_i < 1:
        raise ValueError(
            f"wang2002: n_e = {n_e}, n_i = {n_i}, f = {f} leave an empty group; n_e [cells] "
            "must make f * n_e >= 1 and n_e - 2 f n_e >= 1, n_i [cells] >= 1."
        )
    w_minus = 1.0 - f * (w_plus - 1.0) / (1.0 - f)
    scale_e, scale_i = 1600.0 / n_e, 400.0 / n_i
    e_params = dict(c_m=500.0, g_l=25.0, e_l=-70.0, v_th=-50.0, v_reset=-55.0, t_ref=2.0)
    i_params = dict(c_m=200.0, g_l=20.0, e_l=-70.0, v_th=-50.0, v_reset=-55.0, t_ref=1.0)
    v0 = {"v": Uniform(-60.0, -50.0)}
    pops = [
        Population("E1", n_sel, neurons.LIF(**e_params), initial=v0),
        Population("E2", n_sel, neurons.LIF(**e_params), initial=v0),
        Population("E0", n_non, neurons.LIF(**e_params), initial=v0),
        Population("I", n_i, neurons.LIF(**i_params), initial=v0),
    ]
    # Conductances per synapse [nS] onto E / onto I (Wang 2002, Experimental Procedures).
    g_ampa = {"E": 0.05 * scale_e, "I": 0.04 * scale_e}
    g_nmda = {"E": 0.165 * scale_e, "I": 0.13 * scale_e}
    g_gaba = {"E": 1.3 * scale_i, "I": 1.0 * scale_i}
    g_ext = {"E": 2.1, "I": 1.62}
    ampa = synapses.Exponential(tau=2.0)
    nmda = synapses.Saturating(tau_rise=2.0, tau_decay=100.0, alpha=0.5)
    gaba = synapses.Exponential(tau=5.0)
    all_to_all = connectivity.AllToAll(allow_autapses=True)

    def factor(pre: str, post: str) -> float:
        if post == "E0" or post == "I":
            return 1.0
        return w_plus if pre == post else w_minus  # onto a selective group

    projections = []
    for pre in ("E1", "E2", "E0"):
        for post in ("E1", "E2", "E0", "I"):
            kind = "I" if post == "I" else "E"
            w = factor(pre, post)
            projections.append(Projection(
                pre, post, all_to_all, weight=w * g_ampa[kind], synapse=ampa,
                receptor=synapses.Conductance(e_rev=0.0), delay=delay, name=f"{pre}->{post}:AMPA",
            ))
            projections.append(Projection(
                pre, post, all_to_all, weight=w * g_nmda[kind], synapse=nmda,
                receptor=synapses.NMDA(e_rev=0.0, mg=mg), delay=delay, name=f"{pre}->{post}:NMDA",
            ))
    for post in ("E1", "E2", "E0", "I"):
        kind = "I" if post == "I" else "E"
        projections.append(Projection(
            "I", post, all_to_all, weight=g_gaba[kind], synapse=gaba,
            receptor=synapses.Conductance(e_rev=-70.0), delay=delay, name=f"I->{post}:GABA",
        ))
    inputs = [
        Poisson(name, rate=ext_rate, n_sources=1, weight=g_ext["I" if name == "I" else "E"],
                synapse=ampa, receptor=synapses.Conductance(e_rev=0.0))
        for name in ("E1", "E2", "E0", "I")
    ]
    inputs += [
        Stimulus("E1", rate=mu0 * (1.0 + coherence), start=stim_on, stop=stim_off,
                 weight=g_ext["E"]),
        Stimulus("E2", rate=mu0 * (1.0 - coherence), start=stim_on, stop=stim_off,
                 weight=g_ext["E"]),
    ]
    return Network(pops, projections, inputs=inputs)
