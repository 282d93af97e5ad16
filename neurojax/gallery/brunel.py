r"""Brunel (2000) sparse E/I network of LIF neurons with delta synapses.

τ dV/dt = −V + R I(t), with each presynaptic spike making V jump by J (E) or −gJ (I)
after the delay D = 1.5 ms; V ≥ θ = 20 mV → spike, V ← V_r = 10 mV, refractory 2 ms
(voltages relative to rest). Fixed in-degrees C_E = ε N_E, C_I = ε N_I, J = 0.1 mV,
and C_E independent external Poisson inputs of rate ν_ext = η ν_thr per neuron with
ν_thr = θ / (J C_E τ).

Regimes of Brunel 2000 Fig. 8 (REFERENCES.md section 5, full size N_E = 10000):

| regime | g | η | rate (Hz) | ISI CV |
|---|---|---|---|---|
| A: synchronous regular | 3 | 2 | 333.5 | 0.001 |
| B: synchronous irregular, fast | 6 | 4 | — | 0.7–0.85 |
| C: asynchronous irregular | 5 | 2 | 37.6 | 0.42 |
| D: synchronous irregular, slow | 4.5 | 0.9 | — | 0.7–0.85 |

In the library's units the LIF has C_m = 250 pF, g_L = 12.5 nS (τ = 20 ms); a jump of J
[mV] is a delta-synapse charge J·C_m [pA·ms].
"""

from __future__ import annotations

from .. import connectivity, inputs, neurons, synapses
from ..distributions import Uniform
from ..network import Network, Population, Projection

REGIMES = {"A": (3.0, 2.0), "B": (6.0, 4.0), "C": (5.0, 2.0), "D": (4.5, 0.9)}
# Brunel 2000 Fig. 8 at N_E = 10000 (the table above), for `neurojax run` and `info`.
STATISTICS = {
    "A": "synchronous regular, 333.5 Hz, ISI CV 0.001",
    "B": "synchronous irregular (fast), ISI CV 0.7-0.85",
    "C": "asynchronous irregular, 37.6 Hz, ISI CV 0.42",
    "D": "synchronous irregular (slow), ISI CV 0.7-0.85",
}
# The arguments the published statistics were computed with, besides g and eta.
_PUBLISHED = {"j": 0.1, "c_e": 1000, "delay": 1.5}


def expected(arguments: dict) -> str:
    """The published statistics for the configuration `arguments` (every argument of
    `brunel`, defaults filled in), or why there are none."""
    regime, g, eta = arguments["regime"], arguments["g"], arguments["eta"]
    if regime not in REGIMES:
        return f"unknown regime {regime!r}"
    g0, eta0 = REGIMES[regime]
    g = g0 if g is None else g
    eta = eta0 if eta is None else eta
    # Explicit g and eta may land on another regime's point of the phase diagram.
    matches = [r for r, point in REGIMES.items() if point == (g, eta)]
    changed = [f"{k}={arguments[k]:g}" for k, v in _PUBLISHED.items() if arguments[k] != v]
    if not matches:
        return (f"g={g:g}, eta={eta:g} is none of the published regimes "
                f"(A-D: {_points()}): no reference statistics")
    if changed:
        return (f"regime {matches[0]} with {', '.join(changed)} (published: j=0.1 mV, "
                f"c_e=1000, delay=1.5 ms): no reference statistics")
    return f"regime {matches[0]} (g={g:g}, eta={eta:g}): {STATISTICS[matches[0]]} at N_E=10000"


def _points() -> str:
    return ", ".join(f"{r} g={g:g} eta={eta:g}" for r, (g, eta) in REGIMES.items())


def brunel(
    regime: str = "C",
    n_e: int = 10000,
    g: float | None = None,
    eta: float | None = None,
    j: float = 0.1,
    c_e: int = 1000,
    delay: float = 1.5,
) -> Network:
    """The Brunel (2000) network.

    **Arguments:**

    - `regime`: "A", "B", "C" or "D" (sets `g` and `eta` unless they are given).
    - `n_e`: Number of excitatory neurons (N_I = N_E / 4), more than `c_e`. The
      in-degrees stay `c_e` and `c_e / 4`, so the mean-field statistics do not depend
      on `n_e` (shared inputs make small networks more synchronous).
    - `g`: Relative inhibitory strength.
    - `eta`: External rate relative to threshold, ν_ext / ν_thr.
    - `j`: Excitatory jump J [mV].
    - `c_e`: Excitatory in-degree C_E (also the number of external inputs).
    - `delay`: Transmission delay D [ms].
    """
    if regime not in REGIMES:
        raise ValueError(f"unknown Brunel regime {regime!r}; choose from {sorted(REGIMES)}.")
    if n_e <= c_e:
        raise ValueError(
            f"Brunel n_e [neurons] must exceed the in-degree c_e = {c_e} (distinct "
            f"presynaptic partners without autapses), got n_e = {n_e}; lower c_e too."
        )
    g0, eta0 = REGIMES[regime]
    g = g0 if g is None else g
    eta = eta0 if eta is None else eta
    n_i = n_e // 4
    c_i = c_e // 4
    tau, theta, c_m = 20.0, 20.0, 250.0
    lif = neurons.LIF(c_m=c_m, g_l=c_m / tau, e_l=0.0, v_th=theta, v_reset=10.0, t_ref=2.0)
    v0 = {"v": Uniform(0.0, theta)}
    E = Population("E", n_e, lif, initial=v0, sign=+1)
    I = Population("I", n_i, lif, initial=v0, sign=-1)
    charge = j * c_m  # [pA·ms] = [mV] [pF]
    exc = Projection("E", ["E", "I"], connectivity.FixedInDegree(c_e), weight=charge,
                     synapse=synapses.Delta(), receptor=synapses.Current(), delay=delay)
    inh = Projection("I", ["E", "I"], connectivity.FixedInDegree(c_i), weight=-g * charge,
                     synapse=synapses.Delta(), receptor=synapses.Current(), delay=delay)
    nu_thr = theta / (j * c_e * tau) * 1e3  # [Hz]
    drive = [
        inputs.Poisson(pop, rate=eta * nu_thr, n_sources=c_e, weight=charge)
        for pop in ("E", "I")
    ]
    return Network([E, I], [exc, inh], inputs=drive)


def brunel_parameters(g, eta, j: float = 0.1, c_e: int = 1000) -> dict:
    """The built Brunel network's parameters for relative inhibition `g` and external
    drive `eta`, by name, for `model.replace`: the unit conversions of `brunel` done
    once, so that a sweep or a fit over (g, η) needs no tree surgery.

    Returns `{"I->{E,I}.weight": -g J C_m [pA·ms], "Poisson->*.rate": η ν_thr [Hz]}`
    (the one inhibitory weight both targets share, and the rate of every external
    source). `g` and `eta` may be traced (jit, vmap, grad); `j` [mV] and `c_e` must be
    the values the model was built with.

    !!! example

        ```python
        model = nj.gallery.get("brunel", regime="C").build(jax.random.key(0))
        regime_d = model.replace(nj.gallery.brunel_parameters(g=4.5, eta=0.9))
        rates = nj.sweep(lambda g: rate(model.replace(nj.gallery.brunel_parameters(g, 2.0))),
                         g=jnp.linspace(3.0, 6.0, 8))
        ```
    """
    tau, theta, c_m = 20.0, 20.0, 250.0  # as in `brunel`: [ms], [mV], [pF]
    charge = j * c_m  # [pA·ms] = [mV] [pF]
    nu_thr = theta / (j * c_e * tau) * 1e3  # [Hz]
    return {"I->{E,I}.weight": -g * charge, "Poisson->*.rate": eta * nu_thr}
