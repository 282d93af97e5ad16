r"""Vogels & Abbott (2005) self-sustained E/I networks, the COBA and CUBA benchmarks 1 and 2
of Brette et al. (2007).

Common: N = 4000 (80 % E, 20 % I), Bernoulli connectivity p = 0.02, LIF with
C_m = 200 pF, g_L = 10 nS (τ_m = 20 ms), V_th = −50 mV, V_reset = −60 mV, t_ref = 5 ms,
exponential synapses τ_e = 5 ms, τ_i = 10 ms, no external input.

Expected statistics (REFERENCES.md section 6; numpy and NEST re-simulations, 1 s,
dt = 0.1 ms): COBA 18.5 ± 1.5 Hz, CUBA 5.5 ± 0.4 Hz, E and I rates nearly equal,
asynchronous irregular firing (ISI CV around 1).

`cobahh` is benchmark 3: the COBA network with Traub–Miles Hodgkin–Huxley cells
(Brian2's `examples/COBAHH.py`). No published rates were available to check it against
(REFERENCES.md section 6 says so); its test checks self-sustained, irregular activity
with nearly equal E and I rates.
"""

from __future__ import annotations

from .. import connectivity, neurons, synapses
from ..distributions import Normal, Uniform
from ..network import Network, Population, Projection
from ..neurons.hh import TraubMiles


# The benchmarks' published configuration, for `neurojax run` and `info`.
PUBLISHED = {"n": 4000, "p": 0.02}
STATISTICS = {
    "coba": "18.5 +- 1.5 Hz, E and I alike, asynchronous irregular (ISI CV near 1)",
    "cuba": "5.5 +- 0.4 Hz, E and I alike, asynchronous irregular (ISI CV near 1)",
    "cobahh": "self-sustained asynchronous irregular activity (no published rates)",
}
_WEIGHTS = {"coba": (6.0, 67.0), "cuba": (16.2, -90.0), "cobahh": (6.0, 67.0)}


def expected(name: str, arguments: dict) -> str:
    """The published statistics of benchmark `name` for the configuration `arguments`
    (every argument of its factory, defaults filled in), with what differs from the
    published configuration."""
    published = {**PUBLISHED, "w_e": _WEIGHTS[name][0], "w_i": _WEIGHTS[name][1]}
    changed = [f"{k}={arguments[k]:g}" for k, v in published.items() if arguments[k] != v]
    if changed:
        # Smaller or rewired networks keep running, but the benchmark numbers are for
        # the published one (fewer synapses per neuron lower the recurrent drive).
        shown = ", ".join(f"{k}={v:g}" for k, v in published.items())
        return (f"{STATISTICS[name]} for {shown}; this run has {', '.join(changed)}: "
                f"no reference statistics")
    return STATISTICS[name]


def _sizes(n) -> tuple[int, int]:
    """(n_E, n_I) for `n` neurons, 80 % excitatory; both at least one neuron."""
    if (isinstance(n, bool) or not isinstance(n, (int, float)) or not float(n).is_integer()
            or n < 2):
        raise ValueError(f"n [neurons] (the total, 80 % excitatory) must be an integer in "
                         f"[2, inf), got {n!r}.")
    n = int(n)
    n_e = min(round(0.8 * n), n - 1)  # round(0.8 n) >= 2 for n >= 2
    return n_e, n - n_e


def _lif(e_l: float) -> neurons.LIF:
    return neurons.LIF(c_m=200.0, g_l=10.0, e_l=e_l, v_th=-50.0, v_reset=-60.0, t_ref=5.0)


def _conductance_network(neuron, n: int, p: float, w_e: float, w_i: float) -> Network:
    """The COBA wiring (Brian's example) for any neuron model: 80 % E, Bernoulli p,
    exponential conductance synapses (5 ms, 0 mV; 10 ms, −80 mV), V ~ N(−65, 5) mV,
    g_e ~ N(40, 15) nS, g_i ~ N(200, 120) nS."""
    n_e, n_i = _sizes(n)
    v0 = {"v": Normal(-65.0, 5.0)}
    E = Population("E", n_e, neuron, initial=v0, sign=+1)
    I = Population("I", n_i, neuron, initial=v0, sign=-1)
    exc = Projection("E", ["E", "I"], connectivity.FixedProbability(p), weight=w_e,
                     synapse=synapses.Exponential(tau=5.0),
                     receptor=synapses.Conductance(e_rev=0.0), initial=Normal(40.0, 15.0))
    inh = Projection("I", ["E", "I"], connectivity.FixedProbability(p), weight=w_i,
                     synapse=synapses.Exponential(tau=10.0),
                     receptor=synapses.Conductance(e_rev=-80.0), initial=Normal(200.0, 120.0))
    return Network([E, I], [exc, inh])


def coba(n: int = 4000, p: float = 0.02, w_e: float = 6.0, w_i: float = 67.0) -> Network:
    """COBA (benchmark 1): conductance-based exponential synapses, E_L = −60 mV,
    E_e = 0 mV, E_i = −80 mV; increments `w_e` = 6 nS and `w_i` = 67 nS. Initial state
    V ~ N(−65, 5) mV, g_e ~ N(40, 15) nS, g_i ~ N(200, 120) nS (Brian's example).

    **Arguments:**

    - `n`: Total number of neurons (80 % excitatory).
    - `p`: Connection probability.
    - `w_e`, `w_i`: Excitatory / inhibitory conductance increments [nS].
    """
    return _conductance_network(_lif(-60.0), n, p, w_e, w_i)


def cuba(n: int = 4000, p: float = 0.02, w_e: float = 16.2, w_i: float = -90.0) -> Network:
    """CUBA (benchmark 2): current-based exponential synapses with E_L = −49 mV (above
    threshold, so neurons fire spontaneously). Brian's voltage increments of 1.62 mV and
    −9 mV are currents `w_e` = 16.2 pA and `w_i` = −90 pA through g_L = 10 nS.
    Initial V ~ U(−60, −50) mV, synapses at 0.

    **Arguments:**

    - `n`: Total number of neurons (80 % excitatory).
    - `p`: Connection probability.
    - `w_e`, `w_i`: Excitatory / inhibitory current increments [pA].
    """
    n_e, n_i = _sizes(n)
    v0 = {"v": Uniform(-60.0, -50.0)}
    E = Population("E", n_e, _lif(-49.0), initial=v0, sign=+1)
    I = Population("I", n_i, _lif(-49.0), initial=v0, sign=-1)
    exc = Projection("E", ["E", "I"], connectivity.FixedProbability(p), weight=w_e,
                     synapse=synapses.Exponential(tau=5.0), receptor=synapses.Current())
    inh = Projection("I", ["E", "I"], connectivity.FixedProbability(p), weight=w_i,
                     synapse=synapses.Exponential(tau=10.0), receptor=synapses.Current())
    return Network([E, I], [exc, inh])


def cobahh(n: int = 4000, p: float = 0.02, w_e: float = 6.0, w_i: float = 67.0) -> Network:
    """COBAHH (benchmark 3): the COBA network with Traub–Miles HH neurons (area
    20000 µm², g_Na 100, g_Kd 30, g_L 0.05 mS/cm², E_L −60, V_T −63 mV), spikes
    detected at −20 mV, conductance synapses as in `coba`. Initial state as in Brian2's
    example: V ~ N(−65, 5) mV, g_e ~ N(40, 15) nS, g_i ~ N(200, 120) nS.

    **Arguments:**

    - `n`: Total number of neurons (80 % excitatory).
    - `p`: Connection probability.
    - `w_e`, `w_i`: Excitatory / inhibitory conductance increments [nS].
    """
    return _conductance_network(TraubMiles(), n, p, w_e, w_i)
