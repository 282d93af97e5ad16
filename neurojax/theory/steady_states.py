r"""Fixed points, Jacobians and their stability for a built rate network.

Everything here reads the network's equations from the built model itself: the vector
field is `neurojax.ode`'s network field, i.e. every population's own
`time_derivative` (the $dt \to 0$ limit of its `step`, tested in `tests/test_ode.py`)
under the input $h = \sum_b W_{ab} r_b + I_a$ that the fixed-step network delivers.
Nothing in `neurojax.theory` writes the equations a second time, so a fixed point,
a Jacobian or a paradoxical response is a statement about the very model that
`nj.simulate` runs.

**State vector.** Theory works on the flat vector $u$ of all populations' neuron
States (`jax.flatten_util.ravel_pytree` of the tuple of States, populations in the
network's order). For the rate units (`Rate`, `FiringRate`, `WilsonCowan`) that is
one value per neuron: $v$ [mV] for `Rate`, the rate itself for the other two.
`rates(model, u)` gives the rates the populations emit in that state and
`by_population(model, x)` splits a per-neuron vector by population name.

**Which models.** Built `NetworkModel`s of rate units coupled by `Delta` synapses with
`Current` receptors and no delay, driven by `Constant` inputs (what
`nj.ode.steady_state` accepts). Spiking networks are refused: their fixed points are
those of a mean-field theory, not of the simulated equations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Int, PRNGKeyArray

from .. import ode
from .._misc import check_range
from ..inputs.deterministic import Constant
from ..network import NetworkModel

# Names of the `kind` codes returned by `classify`.
KINDS: tuple[str, ...] = (
    "stable node", "stable focus", "saddle", "unstable node", "unstable focus",
    "non-hyperbolic", "not converged",
)
# `fixed_points` marks a start that did not converge with the last code (`classify`
# never returns it: it classifies eigenvalues).
_NOT_CONVERGED = len(KINDS) - 1



def _tolerances(rtol, atol, tol=None):
    """Default solver tolerances for the working precision: Newton converges to ~1e-15
    relative in float64, so 1e-10 leaves a margin; float32 resolves ~1e-7, so 1e-5.
    The residual / deduplication tolerance `tol` is 1e-6 (float64) or 1e-3 (float32)."""
    x64 = jax.config.jax_enable_x64
    default = 1e-10 if x64 else 1e-5
    rtol = default if rtol is None else rtol
    atol = default if atol is None else atol
    tol = (1e-6 if x64 else 1e-3) if tol is None else tol
    return rtol, atol, tol


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def check_rate_network(model: Any, name: str = "model") -> None:
    """Raise a `ValueError` naming the argument `name` unless `model` is a built rate
    network whose fixed points are those of a smooth ODE (see the module docstring)."""
    if not isinstance(model, NetworkModel):
        raise ValueError(
            f"{name} must be a built rate network (nj.Network(...).build(key)), got "
            f"{type(model).__name__}."
        )
    for pop in model.populations:
        if getattr(pop.neuron, "spiking", False):
            raise ValueError(
                f"{name}: population {pop.name!r} ({type(pop.neuron).__name__}) emits "
                "spikes, so the network has no smooth vector field and its fixed points "
                "are not those of the simulated equations. nj.theory's fixed points, "
                "Jacobians and paradoxical responses need rate units (Rate, FiringRate, "
                "WilsonCowan); describe a spiking network by its mean-field rate model "
                "(e.g. the LIF mean field of Brunel 2000) or simulate it with nj.simulate."
            )
    try:
        ode._check_network(model, autonomous=True)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def _population_index(model: NetworkModel, population: Any, name: str) -> int:
    if not isinstance(population, str) or population not in model.names:
        raise ValueError(
            f"{name} must name a population of the network, one of {list(model.names)}, "
            f"got {population!r}."
        )
    return model.names.index(population)


# ---------------------------------------------------------------------------------------
# The flat state vector
# ---------------------------------------------------------------------------------------


def _template(model: NetworkModel) -> tuple:
    # Only the structure and shapes matter (for ravel/unravel); the resting states.
    return tuple(pop.neuron.init(pop.n) for pop in model.populations)


def _unravel(model: NetworkModel) -> Callable:
    return ravel_pytree(_template(model))[1]


def population_slices(model: NetworkModel) -> dict[str, slice]:
    """Where each population's state lies in the flat state vector (static)."""
    out, start = {}, 0
    for pop, state in zip(model.populations, _template(model)):
        size = ravel_pytree(state)[0].shape[0]
        out[pop.name] = slice(start, start + size)
        start += size
    return out


def state_vector(model: NetworkModel, states: Any = None, *,
                 key: PRNGKeyArray | None = None) -> Float[Array, " N"]:
    """The flat state vector $u$ of a tuple of population States (e.g. a solution of
    `nj.ode.steady_state`, or `result.state.neurons`). Default: the populations' initial
    states, with their `initial` values drawn from `key` (default `jax.random.key(0)`;
    constants need no key)."""
    if states is None:
        key = jax.random.key(0) if key is None else key
        keys = jax.random.split(key, len(model.populations))
        states = tuple(pop.init(k) for pop, k in zip(model.populations, keys))
    return ravel_pytree(tuple(states))[0].astype(float)


def _as_vector(model: NetworkModel, u: Any, name: str) -> Float[Array, " N"]:
    if isinstance(u, (tuple, list)):
        u = ravel_pytree(tuple(u))[0]
    u = jnp.asarray(u, dtype=float)
    size = sum(s.stop - s.start for s in population_slices(model).values())
    if u.shape != (size,):
        raise ValueError(
            f"{name} must be a flat state vector of shape ({size},) (see "
            f"nj.theory.state_vector) or a tuple of population States, got shape {u.shape}."
        )
    return u


def _field(u: Float[Array, " N"], args: tuple) -> Float[Array, " N"]:
    # Module level (not a closure), so repeated solves hit optimistix's and diffrax's
    # compilation caches.
    model, matrices = args
    dy = ode._network_field(0.0, _unravel(model)(u), (model, matrices))
    return ravel_pytree(dy)[0]


def _ode_field(t, u, args):
    return _field(u, args)


def _args(model: NetworkModel) -> tuple:
    return (model, ode._matrices(model))


def vector_field(model: NetworkModel) -> Callable[[Float[Array, " N"]], Float[Array, " N"]]:
    r"""The network's vector field $u \mapsto du/dt$ on the flat state vector, from the
    model's own `time_derivative`s (see the module docstring). Units: state units per
    ms (mV/ms for `Rate`, Hz/ms for `FiringRate`).

    The returned function closes over `model`; differentiate with respect to the model
    by calling `vector_field` inside the differentiated function.

    !!! example
        ```python
        f = nj.theory.vector_field(model)
        f(nj.theory.state_vector(model))    # du/dt at the initial state
        ```
    """
    check_rate_network(model)
    args = _args(model)
    return lambda u: _field(jnp.asarray(u, dtype=float), args)


def rates(model: NetworkModel, u: Float[ArrayLike, " N"]) -> Float[Array, " N"]:
    """The rates every neuron emits in state `u` (each population's `neuron.rate`),
    concatenated in population order [the populations' rate units, e.g. Hz]."""
    states = _unravel(model)(jnp.asarray(u, dtype=float))
    return jnp.concatenate([pop.neuron.rate(s) for pop, s in zip(model.populations, states)])


def by_population(model: NetworkModel, x: Float[ArrayLike, " N"]) -> dict[str, Array]:
    """Split a per-neuron vector (a state vector, rates, a response) by population name."""
    x = jnp.asarray(x)
    return {name: x[s] for name, s in population_slices(model).items()}


# ---------------------------------------------------------------------------------------
# Jacobian, eigenvalues, classification
# ---------------------------------------------------------------------------------------


def _jacobian(u, args):
    return jax.jacfwd(_field)(u, args)


def jacobian(model: NetworkModel, u: Any) -> Float[Array, "N N"]:
    r"""The Jacobian $\partial \dot u_i / \partial u_j$ [1/ms] of the vector field at
    state `u` (a flat state vector or a tuple of States), by `jax.jacfwd`.

    Rectified transfer functions (`ReLU`, `PowerLaw`) have kinks; there the Jacobian is
    the one-sided derivative JAX picks, so a fixed point lying exactly on a kink should
    be read with care."""
    check_rate_network(model)
    return _jacobian_jit(_as_vector(model, u, "u"), _args(model))


_jacobian_jit = eqx.filter_jit(_jacobian)


def _sorted_eigenvalues(jac):
    ev = jnp.linalg.eigvals(jac)
    # Largest real part first (the slowest or most unstable mode), then by imaginary
    # part, so that batches and repeated calls list the same eigenvalue in the same slot.
    order = jnp.lexsort((ev.imag, -ev.real))
    return ev[order]


def eigenvalues(model: NetworkModel, u: Any) -> Complex[Array, " N"]:
    """Eigenvalues [1/ms] of the Jacobian at `u`, largest real part first."""
    return _eigenvalues_jit(jacobian(model, u))


_eigenvalues_jit = jax.jit(lambda jac: _sorted_eigenvalues(jac))


def classify(ev: Complex[ArrayLike, " N"], tol: float = 1e-9) -> Int[Array, ""]:
    r"""Classify a fixed point by its Jacobian eigenvalues [1/ms] (any order).

    Returns an index into `nj.theory.KINDS`: 0 stable node, 1 stable focus, 2 saddle,
    3 unstable node, 4 unstable focus, 5 non-hyperbolic (an eigenvalue with
    $|\mathrm{Re}\,\lambda| \le$ `tol`). In more than two dimensions "node" or "focus"
    refers to the leading eigenvalue (largest real part for a stable point, the one
    that governs the approach; largest real part for an unstable one, the one that
    governs the departure): complex leading eigenvalues mean damped or growing
    oscillations. For two variables this is the textbook classification.
    """
    ev = jnp.asarray(ev)
    re = ev.real
    scale = 1.0 + jnp.max(jnp.abs(ev))
    lead = ev[jnp.argmax(re)]
    complex_lead = jnp.abs(lead.imag) > tol * scale
    marginal = jnp.any(jnp.abs(re) <= tol * scale)
    stable = jnp.all(re < 0)
    unstable = jnp.all(re > 0)
    kind = jnp.where(stable, jnp.where(complex_lead, 1, 0),
                     jnp.where(unstable, jnp.where(complex_lead, 4, 3), 2))
    return jnp.where(marginal, 5, kind).astype(jnp.int32)


# ---------------------------------------------------------------------------------------
# Fixed points
# ---------------------------------------------------------------------------------------


def fixed_point(
    model: NetworkModel,
    initial_guess: Any = None,
    *,
    relax: bool = True,
    key: PRNGKeyArray | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> Float[Array, " N"]:
    r"""One fixed point $u^*$ (a flat state vector), differentiable with respect to the
    model's parameters by the implicit function theorem.

    With `relax=True` the network is first integrated from `initial_guess` (diffrax
    Tsit5, at most 4096 steps) until it settles, which selects the stable fixed point in
    whose basin the guess lies; `nj.ode.steady_state`'s Newton's method then solves
    $du/dt = 0$ from there. With `relax=False` Newton's method starts at the guess
    itself (and may find saddles). A network that never settles (a limit cycle) hands
    its last state to Newton, which may then return the unstable point inside the
    cycle: check `eigenvalues` when in doubt. Newton raises if it does not converge.
    `jax.grad` of a function of $u^*$ uses
    $du^*/d\theta = -J^{-1}\,\partial F/\partial\theta$ (no backpropagation
    through the relaxation).

    **Arguments:**

    - `model`: A built rate network (see the module docstring).
    - `initial_guess`: A flat state vector or a tuple of States. Default: the initial
      states (`state_vector(model, key=key)`).
    - `relax`: Relax by integration before Newton's method.
    - `key`: PRNG key for the populations' `initial` values (default guess only).
    - `rtol`, `atol`: Newton's tolerances (`atol` in state units). Default 1e-10 in
      float64, 1e-5 in float32.

    **Returns:** $u^*$ [state units], shape `(N,)`.
    """
    check_rate_network(model)
    rtol, atol, _ = _tolerances(rtol, atol)
    u0 = (state_vector(model, key=key) if initial_guess is None
          else _as_vector(model, initial_guess, "initial_guess"))
    if relax:
        # Our own relaxation rather than steady_state's: its event shares the solver's
        # tolerance (1e-6), and near a fixed point the step-size controller's error
        # then keeps |du/dt| above the threshold (the high-baseline V1 model never
        # stopped). Here the solver runs 100x tighter than the event, and a start that
        # never settles hands its last state to Newton instead of raising.
        u0 = _relax_jit(ode._stop_gradient(u0), ode._stop_gradient(_args(model)), 4096)
    # Newton's method with the implicit-function-theorem adjoint: the differentiable part.
    y = ode.steady_state(model, y0=_unravel(model)(u0), relax=False, rtol=rtol, atol=atol)
    return ravel_pytree(tuple(y))[0]


# Size above which `linear_solver="auto"` switches from dense LU to Newton-Krylov. Below
# it an LU of the N x N Jacobian costs less than the ~10 matrix-free products a GMRES
# cycle needs; above it the O(N^3) LU per start and Newton step dominates.
_KRYLOV_FROM = 128
class _Inexact(lx.AbstractLinearSolver):
    """A Krylov solver run for a fixed budget of products, whose answer Newton's method
    accepts whether or not it met its own tolerance: an inexact Newton-Krylov step.
    Newton's convergence test and `fixed_points`' residual check judge the result, not
    the linear solver (lineax's GMRES also asks every component of the solution to
    settle to `atol + rtol |y|`, which components near zero rarely do within a few
    cycles, so it would report stagnation for steps that serve Newton well)."""

    solver: lx.AbstractLinearSolver

    def init(self, operator, options):
        return self.solver.init(operator, options)

    def compute(self, state, vector, options):
        solution, _, stats = self.solver.compute(state, vector, options)
        return solution, lx.RESULTS.successful, stats

    def transpose(self, state, options):
        return self.solver.transpose(state, options)

    def conj(self, state, options):
        return self.solver.conj(state, options)

    def assume_full_rank(self):
        return self.solver.assume_full_rank()


# The Krylov solves make Newton's method an inexact Newton method: each step's solve
# aims at a 1000-fold (BiCGStab) or 100-fold (GMRES) smaller residual within a fixed
# budget, which keeps Newton's convergence fast (at least that factor per step where
# the solve meets its aim, quadratic where it does better); Newton's own rtol/atol
# decide when the fixed point is found, and a start whose steps do not converge is
# reported as such. BiCGStab (2 products per iteration, tested every iteration) is the
# default: on the N = 1000 tanh network of benchmarks/theory.py it needed the fewest
# products. lineax's GMRES runs whole cycles of `restart` products and tests only
# between them; short cycles stall on indefinite Jacobians (GMRES(8) reduced the
# residual of a 30-unit g = 1.5 network's Jacobian by only 35 % in 3 cycles), so its
# cycle is long (30): robust, but more products per step.
_KRYLOV = {
    "bicgstab": lambda: _Inexact(lx.BiCGStab(rtol=1e-3, atol=0.0, max_steps=100)),
    "gmres": lambda: _Inexact(lx.GMRES(rtol=1e-2, atol=0.0, restart=30, max_steps=2,
                                       stagnation_iters=2)),
}


def _linear_solver(name: str, size: int) -> lx.AbstractLinearSolver:
    if name == "auto":
        name = "bicgstab" if size > _KRYLOV_FROM else "dense"
    if name in _KRYLOV:
        return _KRYLOV[name]()
    return lx.AutoLinearSolver(well_posed=None)  # dense LU (optimistix's default)


def _newton(u0, args, rtol, atol, max_steps, linear_solver="dense"):
    solver = optx.Newton(rtol=rtol, atol=atol,
                         linear_solver=_linear_solver(linear_solver, u0.shape[0]))
    sol = optx.root_find(_field, solver, u0, args, max_steps=max_steps, throw=False)
    return sol.value, sol.result == optx.RESULTS.successful


_STEADY = diffrax.Event(diffrax.steady_state_event(rtol=1e-6, atol=1e-6))


def _relax(u0, args, max_steps):
    # Integrate until the RMS of du/dt falls below 1e-6 (1 + RMS of u) per ms, with the
    # solver 100x more accurate than that threshold; no error if a start never settles
    # (a limit cycle, a slow drift): Newton's polish after it decides.
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_ode_field), diffrax.Tsit5(), 0.0, jnp.inf, None, u0, args=args,
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-8),
        event=_STEADY, max_steps=max_steps, throw=False,
    )
    return sol.ys[-1]


_relax_jit = eqx.filter_jit(_relax)


class FixedPoints(eqx.Module):
    """The result of `fixed_points`: one row per starting point (fixed shapes, so it
    can be computed under `jit` and `vmap`). Rows where `distinct` is true are the
    deduplicated fixed points; `unique()` drops the others (outside `jit`).

    A start that did not converge is never dropped silently: its row has
    `converged` false, NaN eigenvalues and the kind "not converged"; `n_failed` counts
    them.

    **Fields:**

    - `states`: Fixed points found, `(starts, N)` [state units] (for a start that did
      not converge, where Newton's method stopped).
    - `rates`: The rates emitted at them, `(starts, N)` [rate units].
    - `converged`: Newton converged and the residual is small, `(starts,)`.
    - `distinct`: Converged and not a repeat of an earlier row, `(starts,)`.
    - `eigenvalues`: Jacobian eigenvalues [1/ms], largest real part first, `(starts, N)`:
      computed once per distinct point and shared by the rows that repeat it; NaN for
      starts that did not converge.
    - `kind`: Index into `nj.theory.KINDS`, `(starts,)`; "not converged" for starts
      that did not converge.
    """

    states: Float[Array, "*batch starts N"]
    rates: Float[Array, "*batch starts N"]
    converged: Bool[Array, "*batch starts"]
    distinct: Bool[Array, "*batch starts"]
    eigenvalues: Complex[Array, "*batch starts N"]
    kind: Int[Array, "*batch starts"]

    @property
    def stable(self) -> Bool[Array, "*batch starts"]:
        """All eigenvalues have negative real part (false for starts that did not
        converge)."""
        return jnp.all(self.eigenvalues.real < 0, axis=-1)

    @property
    def n_failed(self) -> Int[Array, "*batch"]:
        """How many starts did not converge."""
        return jnp.sum(~self.converged, axis=-1)

    def unique(self) -> "FixedPoints":
        """The distinct fixed points only, ordered by their first rate (not under `jit`:
        the number of distinct points is data-dependent)."""
        keep = np.asarray(self.distinct)
        if keep.ndim != 1:
            raise ValueError("unique() needs an unbatched result; index the batch first.")
        idx = np.nonzero(keep)[0]
        idx = idx[np.lexsort(np.asarray(self.rates)[idx].T[::-1])]
        return jax.tree.map(lambda x: x[idx], self)

    def names(self) -> list[str]:
        """The `KINDS` name of every row."""
        return [KINDS[int(k)] for k in np.asarray(self.kind).reshape(-1)]


_LINEAR_SOLVERS = ("auto", "dense", "gmres", "bicgstab")


def _starts(model, initial_guesses, key, n_starts, spread, fn):
    """Validated starting points `(starts, N)` (shared by fixed and slow points)."""
    u_init = state_vector(model)
    if initial_guesses is None:
        if key is None:
            raise ValueError(f"{fn} needs initial_guesses or a key to draw starts.")
        if not (isinstance(n_starts, int) and n_starts >= 1):
            raise ValueError(f"n_starts must be an integer >= 1, got {n_starts!r}.")
        check_range(spread, "spread", "state units", low=0.0)
        box = jax.random.uniform(key, (n_starts, u_init.shape[0]), minval=-1.0, maxval=1.0)
        half = jnp.broadcast_to(jnp.asarray(spread, dtype=float), u_init.shape)
        return u_init[None, :] + half[None, :] * box
    guesses = jnp.asarray(initial_guesses, dtype=float)
    if guesses.ndim != 2 or guesses.shape[1] != u_init.shape[0]:
        raise ValueError(
            f"initial_guesses must have shape (starts, {u_init.shape[0]}), got "
            f"{guesses.shape}."
        )
    check_range(guesses, "initial_guesses", "state units")
    return guesses


def fixed_points(
    model: NetworkModel,
    initial_guesses: Float[ArrayLike, "starts N"] | None = None,
    *,
    key: PRNGKeyArray | None = None,
    n_starts: int = 32,
    spread: float | Float[ArrayLike, " N"] = 1.0,
    method: str = "newton",
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 256,
    relax_max_steps: int = 4096,
    tol: float | None = None,
    linear_solver: str = "auto",
) -> FixedPoints:
    r"""All the fixed points that a batch of starting points lead to, in one vmapped
    call, with their Jacobian eigenvalues, classification and deduplication.

    `method="newton"` runs Newton's method (`optimistix.Newton`) from every start and
    finds stable and unstable fixed points alike; `method="relax"` first integrates the
    network from every start with diffrax until it settles (stable fixed points only,
    each start ending in its basin's attractor) and then polishes with Newton.
    A start that does not converge (Newton diverging, a limit cycle) is reported in
    `converged` (and `n_failed`, kind "not converged"), never raised or dropped.

    Newton's step solves $J \delta = -F$. For large networks (the default above 128
    state variables) it is a Newton-Krylov method: a lineax Krylov solver (BiCGStab or
    GMRES) on the matrix-free Jacobian-vector product (`jax.linearize` of the field),
    so no $N \times N$ Jacobian is formed or factorised while solving, and under
    `vmap` the products of all starts become one matrix product. The converged points are
    then deduplicated, and the Jacobian (`jax.jacfwd`) and its eigenvalues are computed
    once per distinct point only (under a `vmap` over models every row pays for them).

    Fixed points are differentiable with respect to the model's parameters (Newton's
    implicit adjoint), and the whole call can be `jax.vmap`ped over a batch of models.

    **Arguments:**

    - `model`: A built rate network (see the module docstring).
    - `initial_guesses`: Starting points, `(starts, N)` flat state vectors [state units].
    - `key`: Without `initial_guesses`, draw `n_starts` starts uniformly in
      $u_0 \pm$ `spread` around the initial state $u_0$ (`state_vector(model)`).
    - `n_starts`: Number of random starts.
    - `spread`: Half-width of the box of random starts [state units]; scalar or `(N,)`.
    - `method`: `"newton"` or `"relax"`.
    - `rtol`, `atol`: Newton's tolerances (`atol` in state units). Default 1e-10 in
      float64, 1e-5 in float32.
    - `max_steps`: Newton's iteration limit; `relax_max_steps` the relaxation's.
    - `tol`: Two points closer than `tol (1 + |u|)` (max norm) are the same point; a
      residual $|du/dt|$ above `tol` [state units/ms] marks a start as not converged.
      Default 1e-6 in float64, 1e-3 in float32.
    - `linear_solver`: Newton's linear solve: `"dense"` (LU of the Jacobian),
      `"bicgstab"` (Newton-Krylov with BiCGStab, matrix-free: fewest products),
      `"gmres"` (Newton-Krylov with GMRES(30): more products per step, does not break
      down) or `"auto"` (dense up to 128 state variables, BiCGStab above). All find the
      same points to Newton's tolerances.

    **Returns:** a `FixedPoints`.

    !!! example
        ```python
        fps = nj.theory.fixed_points(model, key=jax.random.key(0), n_starts=64)
        fps.unique().rates, fps.unique().names(), fps.n_failed
        ```
    """
    check_rate_network(model)
    rtol, atol, tol = _tolerances(rtol, atol, tol)
    if method not in ("newton", "relax"):
        raise ValueError(f"method must be 'newton' or 'relax', got {method!r}.")
    if linear_solver not in _LINEAR_SOLVERS:
        raise ValueError(
            f"linear_solver must be one of {_LINEAR_SOLVERS}, got {linear_solver!r}."
        )
    guesses = _starts(model, initial_guesses, key, n_starts, spread, "fixed_points")
    return _fixed_points(model, guesses, method, rtol, atol, max_steps, relax_max_steps,
                         tol, linear_solver)


def _deduplicate(u, ok, tol):
    """(distinct, representative): row i repeats the first converged row j <= i within
    `tol (1 + max(|u_i|, |u_j|))` (max norm); a converged row is its own first."""
    size = jnp.max(jnp.abs(u), axis=1)

    def row(ui_mi):
        ui, mi = ui_mi
        close = jnp.max(jnp.abs(u - ui[None, :]), axis=1) <= tol * (1.0 + jnp.maximum(size, mi))
        return jnp.argmax(close & ok)  # first converged row close to this one

    # Row by row (in blocks): the (starts, starts, N) differences are never stored.
    first = jax.lax.map(row, (u, size), batch_size=64)
    index = jnp.arange(u.shape[0])
    distinct = ok & (first == index)
    return distinct, jnp.where(ok, first, index)


@eqx.filter_jit
def _fixed_points(model, guesses, method, rtol, atol, max_steps, relax_max_steps, tol,
                  linear_solver="dense"):
    args = _args(model)

    def solve(u0):
        if method == "relax":
            u0 = ode._stop_gradient(_relax(u0, ode._stop_gradient(args), relax_max_steps))
        u, ok = _newton(u0, args, rtol, atol, max_steps, linear_solver)
        residual = jnp.max(jnp.abs(_field(u, args)))
        return u, ok & (residual <= tol) & jnp.all(jnp.isfinite(u))

    u, ok = jax.vmap(solve)(guesses)
    r = jax.vmap(lambda x: rates(model, x))(u)
    distinct, rep = _deduplicate(ode._stop_gradient(u), ok, tol)

    # Jacobian eigenvalues once per distinct point: inside lax.map, lax.cond skips the
    # O(N^3) eigendecomposition of every other row (a vmap over models turns the cond
    # into a select, so there every row is computed, as before).
    nan = jnp.full(u.shape[1], jnp.nan, dtype=jnp.result_type(u.dtype, jnp.complex64))

    def spectrum(ui_d):
        ui, d = ui_d
        return jax.lax.cond(d, lambda x: _sorted_eigenvalues(_jacobian(x, args)).astype(nan.dtype),
                            lambda x: nan, ui)

    ev = jax.lax.map(spectrum, (u, distinct))[rep]
    kind = jnp.where(ok, jax.vmap(classify)(ev), _NOT_CONVERGED).astype(jnp.int32)
    return FixedPoints(u, r, ok, distinct, jnp.where(ok[:, None], ev, nan), kind)


# ---------------------------------------------------------------------------------------
# Slow points (Sussillo & Barak 2013)
# ---------------------------------------------------------------------------------------


class SlowPoints(eqx.Module):
    r"""The result of `slow_points`: one row per starting point (fixed shapes).

    **Fields:**

    - `states`: Local minima of the speed found, `(starts, N)` [state units].
    - `rates`: The rates emitted there, `(starts, N)` [rate units].
    - `speed`: $q = |du/dt|^2 / 2$ there, `(starts,)` [(state units/ms)²]: zero (to
      rounding) at a fixed point, small but positive at a slow point.
    - `converged`: The point is stationary, $\max_i |\partial q/\partial u_i| \le$
      `tol`, `(starts,)`; `n_failed` counts the others.
    - `distinct`: Converged and not a repeat of an earlier row, `(starts,)`.
    """

    states: Float[Array, "*batch starts N"]
    rates: Float[Array, "*batch starts N"]
    speed: Float[Array, "*batch starts"]
    converged: Bool[Array, "*batch starts"]
    distinct: Bool[Array, "*batch starts"]

    @property
    def n_failed(self) -> Int[Array, "*batch"]:
        """How many starts did not converge."""
        return jnp.sum(~self.converged, axis=-1)

    def unique(self) -> "SlowPoints":
        """The distinct points only, slowest first (not under `jit`)."""
        keep = np.asarray(self.distinct)
        if keep.ndim != 1:
            raise ValueError("unique() needs an unbatched result; index the batch first.")
        idx = np.nonzero(keep)[0]
        idx = idx[np.argsort(np.asarray(self.speed)[idx], kind="stable")]
        return jax.tree.map(lambda x: x[idx], self)


def slow_points(
    model: NetworkModel,
    initial_guesses: Float[ArrayLike, "starts N"] | None = None,
    *,
    key: PRNGKeyArray | None = None,
    n_starts: int = 32,
    spread: float | Float[ArrayLike, " N"] = 1.0,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 256,
    tol: float | None = None,
) -> SlowPoints:
    r"""Fixed and slow points (Sussillo & Barak 2013): local minima of the speed
    $q(u) = |F(u)|^2 / 2$ of the network's vector field $F$, from a batch of starts in
    one vmapped call.

    Fixed points are the minima with $q = 0$; slow points are minima with small
    positive $q$, where the flow nearly stops (the ghost of a fixed point that a
    parameter change destroyed, the slow manifold of a trained network). $q$ is a sum of
    squares, so it is minimised with Levenberg–Marquardt (`optimistix.least_squares` on
    the residual $F$), the method suited to it: Gauss–Newton near fixed points,
    gradient descent on $q$ where the Jacobian is singular. Each step solves a dense
    least-squares system, $O(N^3)$ per start; for large networks whose fixed points
    alone are wanted, `fixed_points` (Newton–Krylov) is faster.

    **Arguments:** as for `fixed_points` (`initial_guesses` or `key`, `n_starts`,
    `spread`; `rtol`, `atol` the minimiser's tolerances, default 1e-10 in float64 and
    1e-5 in float32; `max_steps`; `tol` the deduplication tolerance and the bound on
    $|\nabla q|$ [(state units)/ms²] that marks a start as converged).

    **Returns:** a `SlowPoints`.

    !!! example
        ```python
        sp = nj.theory.slow_points(model, key=jax.random.key(0), n_starts=256)
        slow = sp.unique()
        slow.states[slow.speed < 1e-4]
        ```
    """
    check_rate_network(model)
    rtol, atol, tol = _tolerances(rtol, atol, tol)
    guesses = _starts(model, initial_guesses, key, n_starts, spread, "slow_points")
    return _slow_points(model, guesses, rtol, atol, max_steps, tol)


@eqx.filter_jit
def _slow_points(model, guesses, rtol, atol, max_steps, tol):
    args = _args(model)
    solver = optx.LevenbergMarquardt(rtol=rtol, atol=atol)

    def solve(u0):
        sol = optx.least_squares(_field, solver, u0, args, max_steps=max_steps,
                                 throw=False)
        u = sol.value
        f, vjp = jax.vjp(lambda x: _field(x, args), u)
        speed = 0.5 * jnp.sum(f**2)
        # Converged where q is stationary: |grad q| = |J^T F| <= tol. Not the
        # minimiser's own flag: at a slow point (q > 0) its step-size test can stall at
        # rounding level and report max_steps at a point that is stationary to 1e-15.
        grad = vjp(f)[0]
        ok = jnp.all(jnp.isfinite(u)) & (jnp.max(jnp.abs(grad)) <= tol)
        return u, speed, ok

    u, speed, ok = jax.vmap(solve)(guesses)
    distinct, _ = _deduplicate(ode._stop_gradient(u), ok, tol)
    return SlowPoints(u, jax.vmap(lambda x: rates(model, x))(u), speed, ok, distinct)


# ---------------------------------------------------------------------------------------
# Extra drive to one population (paradoxical responses, continuation over an input)
# ---------------------------------------------------------------------------------------


def with_extra_drive(model: NetworkModel, population: str,
                     delta: Float[ArrayLike, "*n"]) -> NetworkModel:
    """`model` with an extra `Constant` input of `delta` to every neuron of
    `population` [that population's input units: pA, mV, ...]. The extra drive is an
    ordinary input of the network, so it enters the equations exactly as a
    `nj.inputs.Constant` would in a simulation."""
    index = _population_index(model, population, "population")
    check_range(delta, "delta", "input units")
    extra = Constant(population, amplitude=jnp.asarray(delta, dtype=float))
    # `replace` rather than the constructor: robust to fields NetworkModel may gain.
    return dataclasses.replace(model, inputs=(*model.inputs, extra),
                               input_targets=(*model.input_targets, index))


def _names(model: NetworkModel, names: str | Sequence[str], argname: str) -> list[int]:
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError(f"{argname} must name at least one population.")
    return [_population_index(model, n, argname) for n in names]
