r"""Mean-field theory of random and low-rank rate networks (REFERENCES.md §13).

Both act on the network $\dot x_i = -x_i + \sum_j J_{ij} \phi(x_j)$, $\phi = \tanh$,
time in units of $\tau$ (in neurojax: `Rate(tau=1.0, v_rest=0.0, transfer=Tanh())`
coupled through a `FromMatrix` projection), in the limit $N \to \infty$:

- `dmft_variance`: Sompolinsky, Crisanti & Sommers (1988), $J = g\chi$,
  $\chi_{ij} \sim \mathcal N(0, 1/N)$: the variance $\Delta_0 = \langle x^2 \rangle$ of
  the chaotic state, zero for $g \le 1$.
- `low_rank_mean_field`: Mastrogiuseppe & Ostojic (2018), $J = g\chi + m n^T / N$: the
  overlap $\kappa$ and variance $\Delta_0$ of the stationary state.

Gaussian averages $\langle f \rangle = \int Dz\, f(\cdot)$ use 201-point Gauss–Hermite
quadrature (as the reference computation of §13), exact for these smooth integrands to
far below the quoted digits. Both are differentiable (implicit adjoints of the root
finds) and `vmap` over their parameters.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike, Float

# Probabilists' Gauss–Hermite nodes and weights: sum w f(z) = E[f(z)], z ~ N(0, 1).
_Z, _W = np.polynomial.hermite_e.hermegauss(201)
_W = _W / _W.sum()


def _gauss(f, mean, std):
    z = jnp.asarray(_Z)
    return jnp.sum(jnp.asarray(_W) * f(mean + std * z))


def _log_cosh(x):
    # log cosh x = |x| + log1p(e^{-2|x|}) - log 2, without overflow for large |x|.
    a = jnp.abs(x)
    return a + jnp.log1p(jnp.exp(-2.0 * a)) - jnp.log(2.0)


def _scs_residual(delta, g):
    # Delta^2 / 2 - g^2 Var[Phi(sqrt(Delta) z)], Phi = log cosh: its positive root is
    # the chaotic variance (Sompolinsky et al. 1988, "energy conservation" of the
    # autocorrelation's motion).
    s = jnp.sqrt(delta)
    m1 = _gauss(_log_cosh, 0.0, s)
    m2 = _gauss(lambda x: _log_cosh(x) ** 2, 0.0, s)
    return 0.5 * delta**2 - g**2 * (m2 - m1**2)


def dmft_variance(g: Float[ArrayLike, ""]) -> Float[Array, ""]:
    r"""The variance $\Delta_0$ [dimensionless, units of $x^2$] of the chaotic state of
    a random tanh network with coupling gain `g` (Sompolinsky, Crisanti & Sommers 1988):
    the positive root of
    $\Delta_0^2/2 = g^2\,(\langle\Phi^2\rangle - \langle\Phi\rangle^2)$,
    $\Phi = \ln\cosh$, $\langle f\rangle = \int Dz\, f(\sqrt{\Delta_0}\, z)$;
    0 for $g \le 1$ (the quiet state is stable).
    REFERENCES.md §13: 0.2426 at g = 1.2, 0.7477 at g = 1.5.
    """
    g = jnp.asarray(g, dtype=float)
    # Bracket: near 0 the residual is Delta^2 (1 - g^2)/2 < 0 for g > 1; for large
    # Delta, Var[Phi] -> Delta (1 - 2/pi), so the residual is positive beyond
    # 2 g^2 (1 - 2/pi) < 2 g^2 + 1. The lower end 1e-6 (g - 1)^2 stays inside the
    # region where the small-Delta form holds (Delta_0 ~ (g - 1) near onset).
    chaotic = g > 1.0
    g_safe = jnp.where(chaotic, g, 2.0)
    lower = 1e-6 * (g_safe - 1.0) ** 2
    upper = 2.0 * g_safe**2 + 1.0
    sol = optx.root_find(_scs_residual, optx.Bisection(rtol=1e-12, atol=1e-14),
                         0.5 * (lower + upper), g_safe,
                         options=dict(lower=lower, upper=upper), throw=False,
                         max_steps=256)
    return jnp.where(chaotic, sol.value, 0.0)


def _mo_residual(y, args):
    kappa, s = y[0], y[1]
    m_m, m_n, sigma_m, g = args
    mu = m_m * kappa
    std = jnp.abs(s)
    phi_mean = _gauss(jnp.tanh, mu, std)
    phi_sq = _gauss(lambda x: jnp.tanh(x) ** 2, mu, std)
    return jnp.stack([kappa - m_n * phi_mean,
                      s**2 - (g**2 * phi_sq + sigma_m**2 * kappa**2)])


def low_rank_mean_field(
    m_m: Float[ArrayLike, ""],
    m_n: Float[ArrayLike, ""],
    sigma_m: Float[ArrayLike, ""],
    g: Float[ArrayLike, ""],
    kappa0: Float[ArrayLike, ""] = 1.0,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    r"""The stationary mean-field state of a rank-one-plus-random tanh network
    (Mastrogiuseppe & Ostojic 2018), $J = g\chi + m n^T/N$ with $m_i \sim \mathcal
    N(M_m, \Sigma_m^2)$, $n_i \sim \mathcal N(M_n, \Sigma_n^2)$ independent:

    $$\kappa = M_n \langle\phi\rangle,\quad \mu = M_m \kappa,\quad
    \Delta_0 = g^2 \langle\phi^2\rangle + \Sigma_m^2 \kappa^2,\quad
    \langle f\rangle = \int Dz\, f(\mu + \sqrt{\Delta_0} z).$$

    Solved by Newton's method from $\kappa$ = `kappa0`, $\Delta_0 = 1$; the sign of
    `kappa0` picks one of the two symmetric non-trivial states when $M_m M_n > 1$, and
    the trivial $\kappa = 0$ is returned when $M_m M_n < 1$ (for $g < 1$).
    REFERENCES.md §13: $M_m = 2$, $M_n = 1$, $\Sigma_m = 1$, $g = 0.5$ gives
    $\kappa = 0.7929$, $\Delta_0 = 0.8091$.

    **Returns:** $(\kappa, \Delta_0)$ [dimensionless].
    """
    args = tuple(jnp.asarray(a, dtype=float) for a in (m_m, m_n, sigma_m, g))
    y0 = jnp.stack([jnp.asarray(kappa0, dtype=float), jnp.asarray(1.0)])
    sol = optx.root_find(_mo_residual, optx.Newton(rtol=1e-12, atol=1e-12), y0, args,
                         max_steps=256)
    return sol.value[0], sol.value[1] ** 2
