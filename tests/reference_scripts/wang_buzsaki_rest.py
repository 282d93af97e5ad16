"""Resting potential of the Wang–Buzsáki (1996) interneuron, with scipy only.

Wang & Buzsáki (1996, J Neurosci 16:6402), per unit area: C_m = 1 µF/cm²,
g_Na = 35, g_K = 9, g_L = 0.1 mS/cm²; E_Na = 55, E_K = −90, E_L = −65 mV; m is
instantaneous and h, n relax at φ = 5 times their rates (φ does not move the rest):

    α_m = 0.1 (V + 35) / (1 − exp(−(V + 35)/10)),  β_m = 4 exp(−(V + 60)/18)
    α_h = 0.07 exp(−(V + 58)/20),                   β_h = 1 / (1 + exp(−(V + 28)/10))
    α_n = 0.01 (V + 34) / (1 − exp(−(V + 34)/10)),  β_n = 0.125 exp(−(V + 44)/80)

At rest every gate is at its steady state x∞ = α/(α + β) and the ionic current vanishes.
The rest is the only root between −80 and −60 mV (between −60 and −55 mV the sodium
window current makes a second, unstable equilibrium), solved with brentq.

    python -m tests.reference_scripts.wang_buzsaki_rest   # prints -64.0176 mV
"""

import numpy as np
from scipy.optimize import brentq


def steady_state_current(v):
    """Ionic current [µA/cm²] at `v` [mV] with the gates at steady state."""
    a_m = 0.1 * (v + 35.0) / (1.0 - np.exp(-(v + 35.0) / 10.0))
    b_m = 4.0 * np.exp(-(v + 60.0) / 18.0)
    a_h = 0.07 * np.exp(-(v + 58.0) / 20.0)
    b_h = 1.0 / (1.0 + np.exp(-(v + 28.0) / 10.0))
    a_n = 0.01 * (v + 34.0) / (1.0 - np.exp(-(v + 34.0) / 10.0))
    b_n = 0.125 * np.exp(-(v + 44.0) / 80.0)
    m, h, n = a_m / (a_m + b_m), a_h / (a_h + b_h), a_n / (a_n + b_n)
    return 35.0 * m**3 * h * (v - 55.0) + 9.0 * n**4 * (v + 90.0) + 0.1 * (v + 65.0)


def resting_potential():
    """The V [mV] where the steady-state current vanishes."""
    return brentq(steady_state_current, -80.0, -60.0, xtol=1e-12)


if __name__ == "__main__":
    print(f"{resting_potential():.4f} mV")
