r"""Spiking E/PV/SST/VIP network of mouse V1 layer 2/3 wired from the Allen Institute's
synaptic-physiology data (Campagnola et al. 2022, Science; REFERENCES.md §17 Set B).

**Data** (shipped as `data/campagnola2022_v1_l23.csv`, read with
`nj.connectivity.CellTypeTable`; `v1_campagnola_table()` returns it): connection
probabilities $p_{ab}$ and resting PSP amplitudes $A_{ab}$ [mV], `[post, pre]`,
inhibitory entries negative, from AllenInstitute/visual_behavior_ssn_modeling
`model_data.py` (commit 9276999), whose comments cite the bioRxiv v2 "Figure
Supplement 2 Connectivity Matrix" and "Figure 3D, E":

| post \ pre | E | PV | SST | VIP |
|---|---|---|---|---|
| E | 0.12 / 0.10 | 0.67 / −0.44 | 0.44 / −0.16 | 0.13 / −0.06 |
| PV | 0.81 / 0.27 | 0.78 / −0.47 | 0.37 / −0.18 | 0.05 / −0.13 |
| SST | 0.78 / 0.09 | 0.22 / −0.25 | 0.11 / −0.17 | 0.51 / −0.15 |
| VIP | 0.51 / 0.56 | 0.00 / −0.27 | 1.00 / −0.17 | 0.07 / −0.14 |

Population fractions of L2/3 (MICrONS + Lee 2010, §17): E 0.90, PV 0.030, SST 0.021,
VIP 0.049 of `n` neurons.

**Model.** `LIF` neurons with the membrane parameters of Set A (Garcia del Molino et
al. 2017, §17): $\tau_m$ = 28.8 / 8 / 16 / 16 ms and $g_L$ = 6.25 / 10 / 5 / 5 nS for
E / PV / SST / VIP, $E_L = -70$, $V_{th} = -50$, $V_{reset} = -60$ mV, 2 ms refractory.
Bernoulli connectivity with the table's $p$ (`FixedProbability`), current-based
exponential synapses ($\tau_s$ = 5 ms from E, 10 ms from the interneurons), weights
$w_{ab} = A_{ab} / \hat v_{ab}$ [pA], where $\hat v_{ab}$ is the peak PSP per pA of
that synapse onto a type-$a$ neuron at rest (`Exponential.psp_peak`, closed form
$\hat v = \frac{\tau_s}{C_m}(\tau_s/\tau_m)^{\tau_s/(\tau_m-\tau_s)}$): a single
spike then evokes the measured resting PSP. Each population receives an independent
Ornstein–Uhlenbeck background current per neuron (mean `background`, standard
deviation `noise`, 5 ms correlation time) standing for inputs from outside the
network, plus the constant `drive` of the experiment (e.g. `{"VIP": 10.0}` pA).

**Size and scaling.** With `n` neurons the in-degrees are $K_{ab} = p_{ab} N_b$. The
PSPs are the measured ones at `n = N_REF` (3000 neurons: 2700 E, 90 PV, 63 SST, 147
VIP; $K_{E\leftarrow E}$ = 324, $K_{PV\leftarrow E}$ = 2187); at other sizes they are
multiplied by `N_REF / n`, so the mean recurrent input $K_{ab} A_{ab} r_b$ stays that of
the reference size (a 1/K scaling: fluctuations shrink as $1/\sqrt{n}$, which changes
the neurons' gains, so the responses below are only claimed at `n = N_REF`). The
backgrounds were tuned at `n = N_REF` (a mean-field estimate, then a few simulated
corrections) so the baseline rates are about `BASELINE_RATES` (E/PV/SST/VIP ≈
1/8/4.5/4 Hz). VIP's mean background is negative: with these data VIP cells receive so
much excitation from E (p 0.51, 0.56 mV) that a positive background would drive them far
above the other classes.

**Expected** (REFERENCES.md §17, qualitative results 2 and 4) and what the model does
(changes with common random numbers, mean ± s.e. over network realisations; 6 of 1 s in
the quick tutorials/v1_campagnola.py, which the test suite runs, 12 of 2 s in the full
one):

- +10 pA to VIP (`drive={"VIP": 10.0}`): SST falls (−3.6 ± 0.3 Hz; −3.79 ± 0.12 Hz
  in the full run) while VIP rises (+7.7 ± 0.2 Hz) and E rises, but only by
  +0.009 ± 0.002 Hz on 1.08 Hz (full run, 4.9 s.e.; the 6 × 1 s runs give
  +0.011 ± 0.004, 2.6 s.e., so the quick run checks only that E does not fall): with E and
  PV in balance, the SST that VIP silences inhibits E and PV alike, and VIP's own
  synapses onto E nearly cancel the rest.
- +10 pA to PV (`drive={"PV": 10.0}`): PV falls (−0.12 ± 0.03 Hz; −0.082 ± 0.019 Hz in
  the full run) and E with it (−0.094 Hz): the paradoxical response of an
  inhibition-stabilised network. Here it
  is E, SST and VIP together, not E alone, that PV stabilises (E→VIP→SST→E is a
  disinhibitory, positive loop). It is a small-drive effect: at +20 pA PV no longer
  falls (SST and VIP switch).

`MOTIFS` lists the §17 signs, `DRIVES` the drives.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

from .. import inputs, neurons, synapses
from ..connectivity.cell_types import CellTypeTable
from ..distributions import Uniform
from ..network import Network, Population

TYPES = ("E", "PV", "SST", "VIP")
FRACTIONS = {"E": 0.90, "PV": 0.030, "SST": 0.021, "VIP": 0.049}
TAU_M = {"E": 28.8, "PV": 8.0, "SST": 16.0, "VIP": 16.0}  # [ms], Set A
G_L = {"E": 6.25, "PV": 10.0, "SST": 5.0, "VIP": 5.0}  # [nS], Set A
TAU_SYN = {"E": 5.0, "PV": 10.0, "SST": 10.0, "VIP": 10.0}  # [ms], by presynaptic type
N_REF = 3000
# Background currents [pA] (OU means and standard deviations) tuned at n = N_REF.
BACKGROUND = {"E": 148.4, "PV": 107.4, "SST": 64.4, "VIP": -37.5}
NOISE = {"E": 48.8, "PV": 48.4, "SST": 30.7, "VIP": 30.7}
BASELINE_RATES = {"E": 1.0, "PV": 8.0, "SST": 4.5, "VIP": 4.0}  # [Hz], approximate
# The experiments of §17 and the signs of the rate changes they should produce.
DRIVES = {"VIP": 10.0, "PV": 10.0}  # [pA] extra current to the driven type
MOTIFS = {
    "VIP": {"SST": -1, "E": +1},  # §17 result 2: VIP disinhibits E through SST
    "PV": {"PV": -1},  # §17 result 4: paradoxical response of PV
}
_CSV = "campagnola2022_v1_l23.csv"


def v1_campagnola_table() -> CellTypeTable:
    """The Campagnola et al. (2022) L2/3 table shipped with the package: connection
    probabilities and resting PSP amplitudes [mV] between E, PV, SST and VIP."""
    with resources.as_file(resources.files(__package__) / "data" / _CSV) as path:
        return CellTypeTable.from_csv(path, inhibitory=["PV", "SST", "VIP"])


def _lif(t: str) -> neurons.LIF:
    return neurons.LIF(c_m=TAU_M[t] * G_L[t], g_l=G_L[t], e_l=-70.0, v_th=-50.0,
                       v_reset=-60.0, t_ref=2.0)


def v1_campagnola(
    n: int = N_REF,
    drive: Mapping[str, float] | None = None,
    background: Mapping[str, float] | None = None,
    noise: Mapping[str, float] | None = None,
) -> Network:
    """The Campagnola et al. (2022) mouse V1 L2/3 E/PV/SST/VIP spiking network.

    Data, model, scaling and the expected responses are in the module docstring.

    **Arguments:**

    - `n`: Total number of neurons, split by the L2/3 fractions (E 0.90, PV 0.030,
      SST 0.021, VIP 0.049); at least 100 so every type has neurons. PSPs scale by
      `N_REF / n`.
    - `drive`: Extra constant current [pA] per type, e.g. `{"VIP": 10.0}`.
    - `background`: Mean background current [pA] per type (default `BACKGROUND`).
    - `noise`: Standard deviation of the background current [pA] per type (default
      `NOISE`), correlation time 5 ms.
    """
    if not isinstance(n, int) or n < 100:
        raise ValueError(f"v1_campagnola n [neurons] must be an integer in [100, inf), got {n!r}.")
    extra = {t: 0.0 for t in TYPES}
    for name, values in (("drive", drive), ("background", background), ("noise", noise)):
        unknown = sorted(set(values or {}) - set(TYPES))
        if unknown:
            raise ValueError(f"v1_campagnola {name} has unknown cell types {unknown}; "
                             f"the types are {list(TYPES)}.")
    extra.update(drive or {})
    mean = {**BACKGROUND, **(background or {})}
    sd = {**NOISE, **(noise or {})}
    sizes = {t: max(1, round(FRACTIONS[t] * n)) for t in TYPES}
    table = v1_campagnola_table()
    pops = [Population(t, sizes[t], _lif(t), initial={"v": Uniform(-70.0, -50.0)}) for t in TYPES]
    kinetics = {t: synapses.Exponential(tau=TAU_SYN[t]) for t in TYPES}
    scale = N_REF / n

    def weight(post: str, pre: str, psp: float) -> float:
        return scale * psp / float(kinetics[pre].psp_peak(_lif(post)))  # [pA] = [mV] / [mV/pA]

    projections = table.projections(pops, synapse=kinetics, weight_fn=weight)
    background_inputs = [
        inputs.OrnsteinUhlenbeck(t, mean=float(mean[t] + extra[t]), sigma=float(sd[t]), tau=5.0)
        for t in TYPES
    ]
    return Network(pops, projections, inputs=background_inputs)
