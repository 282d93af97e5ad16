"""Brunel (2000) mean field for the sparse E/I LIF network, shared by the tutorials that
compare simulated rates with it (brunel_regimes, parameter_sweeps).

In the asynchronous state each neuron sees Gaussian input of mean μ(ν) and s.d. σ(ν)
(Brunel 2000 eqs. 4-5) and fires at the Siegert rate φ(μ, σ) (eq. 21); the stationary
rate solves ν = φ(μ(ν), σ(ν)). Parameters of the paper's model A: τ = 20 ms, θ = 20 mV,
V_r = 10 mV, τ_rp = 2 ms, J = 0.1 mV, C_E = 1000, γ = 0.25.

Not a tutorial itself: the leading underscore keeps it out of the test's discovery.
"""

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import erfcx

TAU, THETA, V_R, T_REF, J, C_E, GAMMA = 20e-3, 20.0, 10.0, 2e-3, 0.1, 1000, 0.25  # s, mV


def siegert(mu: float, sigma: float) -> float:
    """Rate [Hz] of a LIF neuron with Gaussian white-noise input of mean `mu` and s.d.
    `sigma` [mV] (Brunel 2000 eq. 21, with erfcx for numerical stability)."""
    integral, _ = quad(lambda u: erfcx(-u), (V_R - mu) / sigma, (THETA - mu) / sigma)
    return 1.0 / (T_REF + TAU * np.sqrt(np.pi) * integral)


def mean_field_rate(g: float, eta: float) -> float:
    """Self-consistent rate [Hz] for relative inhibition `g` and external drive `eta`
    (in units of the threshold rate ν_thr = θ / (J C_E τ))."""
    nu_ext = eta * THETA / (J * C_E * TAU)  # [Hz]

    def excess(nu):
        mu = C_E * J * TAU * (nu_ext + nu * (1 - g * GAMMA))
        sigma = np.sqrt(J * J * C_E * TAU * (nu_ext + nu * (1 + g * g * GAMMA)))
        return siegert(mu, sigma) - nu

    return brentq(excess, 1e-3, 1.0 / T_REF - 1e-3)
