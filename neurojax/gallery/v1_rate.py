r"""Four-population rate model of mouse V1 layer 2/3: E, PV, SST and VIP cells, one
rate unit per population (Garcia del Molino, Yang, Mejias & Yang 2017, eLife
6:e29742; parameters of the Open Source Brain reimplementation, REFERENCES.md §17
Set A).

$$\tau_r \frac{dr_a}{dt} = -r_a + f_a\Big(\sum_b W_{ab} r_b + I_a^{bg} + I_a^{mod}\Big),
\qquad \tau_r = 2\ \text{ms},$$

with $f_a$ the Abbott–Chance transfer (`nj.neurons.AbbottChance`) of population $a$
($V = V_L + I/g_L$, $V_{th} = -50$, $V_r = -60$, $V_L = -70$ mV, $\sigma_V = 1$ mV;
$\tau_m$ = 28.8/8/16/16 ms and $g_L$ = 6.25/10/5/5 nS for E/PV/SST/VIP) and $W$ in
pA/Hz (so $W r$ is a current in pA), `W[post, pre]`:

| post \ pre | E | PV | SST | VIP |
|---|---|---|---|---|
| E | 2.4167 | −0.3329 | −0.8039 | 0 |
| PV | 2.9706 | −3.4554 | −2.1291 | 0 |
| SST | 4.6440 | 0 | 0 | −2.7896 |
| VIP | 0.7162 | 0 | −0.1560 | 0 |

Background currents (pA): low baseline 115.03/233.66/94.31/89.91, which holds the
network at 1/10/3/2 Hz; high baseline 147.25/386.73/40.27/98.44, at 30/50/30/20 Hz.
Every unit starts at its baseline rate (the high-baseline network has a second, nearly
marginal fixed point at lower rates; starting at the baseline keeps simulations and
`nj.theory` on the published one).

Expected results (REFERENCES.md §17, "computed here" numbers; the paper's abstract for
the reversal): +10 pA to VIP (`vip_drive=10.0`) changes the steady rates by
- low baseline: SST −2.4, E +0.26, PV +1.1, VIP +4.7 Hz (VIP disinhibits E through SST);
- high baseline: SST **+9.9**, E +16 Hz (the sign of SST's response reverses).

The units are coupled by `Delta` synapses with no delay, so the network is the smooth
ODE that `nj.ode` integrates and `nj.theory` analyses; `nj.simulate` runs it with the
one-step delay of the fixed-step network, which has the same fixed points.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import connectivity, inputs, neurons, synapses
from ..network import Network, Population, Projection

NAMES = ("E", "PV", "SST", "VIP")
WEIGHTS = np.array([  # [pA/Hz], W[post, pre]
    [2.4167, -0.3329, -0.8039, 0.0],
    [2.9706, -3.4554, -2.1291, 0.0],
    [4.6440, 0.0, 0.0, -2.7896],
    [0.7162, 0.0, -0.1560, 0.0],
])
TAU_M = (28.8, 8.0, 16.0, 16.0)  # [ms]
G_L = (6.25, 10.0, 5.0, 5.0)  # [nS]
BASELINES = {  # background currents [pA] and the rates they hold [Hz]
    "low": ((115.03, 233.66, 94.31, 89.91), (1.0, 10.0, 3.0, 2.0)),
    "high": ((147.25, 386.73, 40.27, 98.44), (30.0, 50.0, 30.0, 20.0)),
}


def v1_rate(baseline: str = "low", vip_drive: float = 0.0, tau_r: float = 2.0) -> Network:
    """The Garcia del Molino et al. (2017) E/PV/SST/VIP rate model.

    **Arguments:**

    - `baseline`: `"low"` (1/10/3/2 Hz) or `"high"` (30/50/30/20 Hz).
    - `vip_drive`: Extra current to VIP [pA] (the modulation: 10 pA in §17).
    - `tau_r`: Rate time constant of every population [ms].
    """
    if baseline not in BASELINES:
        raise ValueError(f"unknown V1 baseline {baseline!r}; choose from {sorted(BASELINES)}.")
    background, rates = BASELINES[baseline]
    pops = [
        Population(name, 1, neurons.FiringRate(
            tau=tau_r, transfer=neurons.AbbottChance(tau_m=tau_m, g_l=g_l, v_l=-70.0,
                                                     v_th=-50.0, v_r=-60.0, sigma_v=1.0)),
            # An array leaf, not a Python float: equal structures for both baselines,
            # so compiled solves are shared (a float would be static to jit).
            initial={"r": jnp.asarray(rate, dtype=float)})
        for name, tau_m, g_l, rate in zip(NAMES, TAU_M, G_L, rates)
    ]
    # One unit per population: a 1x1 all-to-all projection (autapse allowed) per
    # non-zero entry of W carries that entry as its weight leaf.
    projs = [
        Projection(pre, post, connectivity.AllToAll(allow_autapses=True),
                   weight=float(WEIGHTS[i, j]), synapse=synapses.Delta(),
                   receptor=synapses.Current())
        for i, post in enumerate(NAMES) for j, pre in enumerate(NAMES) if WEIGHTS[i, j] != 0.0
    ]
    drive = [inputs.Constant(name, amplitude=float(b)) for name, b in zip(NAMES, background)]
    if vip_drive != 0.0:
        drive.append(inputs.Constant("VIP", amplitude=float(vip_drive)))
    return Network(pops, projs, inputs=drive)
