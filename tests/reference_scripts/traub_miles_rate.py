"""Spontaneous firing rate of the COBAHH (Traub–Miles) cell, with scipy only.

The equations are those of Brian2's `examples/COBAHH.py` (Brette et al. 2007 benchmark
3), per membrane area (the 20 000 µm² area cancels): C_m = 1 µF/cm², g_L = 0.05,
g_Na = 100, g_Kd = 30 mS/cm²; E_L = −60, E_Na = 50, E_K = −90, V_T = −63 mV; no
synaptic input. With these parameters the cell has no stable rest and fires on its own.

Protocol (that of `tests/neurons/test_hh.py`): start at v = E_L with the gates at their
steady state there, integrate 400 ms with LSODA (rtol = atol = 1e-9), locate the upward
crossings of −20 mV as events, and report (k − 1) / (t_k − t_1), the rate over all
k crossings.

    python -m tests.reference_scripts.traub_miles_rate   # prints 13.855 Hz
"""

import numpy as np
from scipy.integrate import solve_ivp

C_M, G_L, G_NA, G_KD = 1.0, 0.05, 100.0, 30.0  # [µF/cm²], [mS/cm²]
E_L, E_NA, E_K, V_T = -60.0, 50.0, -90.0, -63.0  # [mV]
V_SPIKE = -20.0  # [mV]


def _vtrap(x, y):
    """x / (exp(x / y) − 1), continuous at x = 0."""
    return y * (1.0 - x / (2.0 * y)) if abs(x / y) < 1e-6 else x / np.expm1(x / y)


def rates(v):
    """(α, β) [1/ms] of m, n, h, as written in Brian2's COBAHH example."""
    a_m = 0.32 * _vtrap(13.0 - v + V_T, 4.0)
    b_m = 0.28 * _vtrap(v - V_T - 40.0, 5.0)
    a_n = 0.032 * _vtrap(15.0 - v + V_T, 5.0)
    b_n = 0.5 * np.exp((10.0 - v + V_T) / 40.0)
    a_h = 0.128 * np.exp((17.0 - v + V_T) / 18.0)
    b_h = 4.0 / (1.0 + np.exp((40.0 - v + V_T) / 5.0))
    return (a_m, b_m), (a_n, b_n), (a_h, b_h)


def field(t, y):
    v, m, n, h = y
    (a_m, b_m), (a_n, b_n), (a_h, b_h) = rates(v)
    i_ion = G_L * (v - E_L) + G_NA * m**3 * h * (v - E_NA) + G_KD * n**4 * (v - E_K)
    return [-i_ion / C_M, a_m * (1 - m) - b_m * m, a_n * (1 - n) - b_n * n,
            a_h * (1 - h) - b_h * h]


def spontaneous_rate(t_end=400.0, rtol=1e-9):
    """Rate [Hz] over all −20 mV crossings of a `t_end` [ms] run from v = E_L."""
    y0 = [E_L] + [a / (a + b) for a, b in rates(E_L)]

    def crossing(t, y):
        return y[0] - V_SPIKE

    crossing.direction = 1.0
    sol = solve_ivp(field, (0.0, t_end), y0, method="LSODA", rtol=rtol, atol=rtol,
                    events=crossing)
    t = sol.t_events[0]
    return 1000.0 * (t.size - 1) / (t[-1] - t[0])


if __name__ == "__main__":
    print(f"{spontaneous_rate():.3f} Hz")
