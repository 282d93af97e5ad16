r"""Adaptive, high-accuracy integration with diffrax: `solve`, `solve_network` and
`steady_state`.

The fixed-step simulator (`neurojax.simulate`) trades accuracy for speed and a fixed
time grid. For smooth models the same equations can be handed to an adaptive ODE
solver instead, to get reference trajectories with controlled error, or relaxed to a
fixed point:

```python
import diffrax
import jax.numpy as jnp
import neurojax as nj

hh = nj.neurons.HodgkinHuxley()
i = jnp.full((1,), 2000.0)  # 10 µA/cm² [pA] at the default area
drive = nj.Drive(i, jnp.zeros(1), jnp.zeros(1), jnp.zeros(1))
sol = nj.ode.solve(hh, 100.0, drive=drive,
                   saveat=diffrax.SaveAt(ts=jnp.linspace(0.0, 100.0, 1001)))
sol.ys.v                                       # (1001, 1) membrane potential [mV]
rest = nj.ode.steady_state(hh)                 # HodgkinHuxleyState at rest
```

**Which models.** A neuron model is a smooth ODE when it defines
`time_derivative(state, drive)`, the time derivative of its State [state units/ms]:
`HodgkinHuxley`, `WangBuzsaki`, `TraubMiles`, `FitzHughNagumo`, `Rate`, `FiringRate`
and `WilsonCowan`. Models that reset at a threshold (`LIF`, `ALIF`, `EIF`, `AdEx`,
`Izhikevich`) or update in discrete time (`Binary`) are not, and are refused with a
`ValueError`; simulate them with `neurojax.simulate`.

**Drive.** The vector field sees the current part of a `neurojax.Drive`,
$I(v) = i - g\,v$ [pA]. The charge part (`q`, `qg`, delivered by delta synapses as a
jump at the end of a fixed step) is an impulse, not a vector field, and is ignored.

**Rate networks.** `solve_network` integrates a built `NetworkModel` whose populations
are rate units (`Rate`, `FiringRate`, `WilsonCowan`), coupled by `Delta` synapses with
`Current` receptors and no delay, and driven by `Constant` or `Waveform` inputs:

$$\frac{d y_a}{dt} = F_a\Big(y_a,\; h_a = \sum_b W_{ab}\, r_b(y_b) + I_a(t)\Big),$$

with $W_{ab}$ the `(post, pre)` matrix of each projection (`weights.matrix()`) and
$r_b$ the rate each population emits (`neuron.rate(state)`). It is the limit
$dt \to 0$ of the fixed-step update in which a rate unit reads $W r$ of the previous
step (the one-step transmission delay vanishes with the step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import PRNGKeyArray

from ._abstract import AbstractNeuron, Drive
from ._custom_types import ScalarLike
from ._misc import check_range, is_concrete
from .inputs.deterministic import Constant, Waveform
from .network import NetworkModel
from .synapses.kinetics import Delta
from .synapses.receptors import Current

# `check(n, dt)` also bounds a fixed step against the time constants. An adaptive
# solver picks its own steps, so the model is checked (shapes, values) with a step far
# below any physiological time constant.
_CHECK_DT = 1e-9  # [ms]

_NOT_SMOOTH = (
    "{what} defines no continuous-time vector field (`time_derivative(state, drive)`), "
    "so it cannot be integrated as an ODE: models that reset at a threshold (LIF, ALIF, "
    "EIF, AdEx, Izhikevich) jump discontinuously at every spike, and Binary units update "
    "in discrete time. Simulate it with the fixed-step nj.simulate instead."
)


def _require_smooth(neuron: Any, what: str) -> None:
    if not isinstance(neuron, AbstractNeuron):
        raise ValueError(
            f"{what} must be a neuron model (nj.neurons.*), got {type(neuron).__name__}; "
            "integrate a built network with solve_network."
        )
    if not callable(getattr(neuron, "time_derivative", None)):
        raise ValueError(_NOT_SMOOTH.format(what=what))


def _check_interval(t0: Any, t1: Any) -> None:
    check_range(t0, "t0", "ms")
    check_range(t1, "t1", "ms")
    if is_concrete(t0) and is_concrete(t1) and not float(t1) > float(t0):
        raise ValueError(
            f"t1 [ms] must be greater than t0 [ms] = {float(t0):g}, got {float(t1):g}."
        )


def _size_of(n: int | None, y0: Any) -> int:
    """The population size: `n`, or the length of `y0`'s arrays (they must agree)."""
    if y0 is not None:
        leaves = [x for x in jax.tree.leaves(y0) if eqx.is_array(x)]
        if not leaves or jnp.ndim(leaves[0]) != 1:
            raise ValueError("y0 must be a neuron State whose fields have shape (n,).")
        size = leaves[0].shape[0]
        if n is not None and n != size:
            raise ValueError(f"n = {n} does not match y0, whose fields have shape ({size},).")
        return size
    if n is None:
        return 1
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n [neurons] must be an integer in [1, inf), got {n!r}.")
    return n


def _stop_gradient(tree: Any) -> Any:
    return jax.tree.map(
        lambda x: jax.lax.stop_gradient(x) if eqx.is_inexact_array(x) else x, tree
    )


# ---------------------------------------------------------------------------------------
# Single populations
# ---------------------------------------------------------------------------------------


def _drive_at(drive: Any, t: Any, n: int) -> Drive:
    d = drive(t) if callable(drive) else drive
    # Summed into shape (n,), as the network does before a neuron step.
    return Drive.zeros(n) if d is None else Drive.zeros(n) + d


def _neuron_field(t, y, args):
    neuron, drive, n = args
    return neuron.time_derivative(y, _drive_at(drive, t, n))


def solve(
    neuron: AbstractNeuron,
    t1: ScalarLike,
    *,
    n: int | None = None,
    y0: Any = None,
    drive: Drive | Callable[[Any], Drive] | None = None,
    t0: ScalarLike = 0.0,
    solver: diffrax.AbstractSolver = diffrax.Tsit5(),
    rtol: float = 1e-8,
    atol: float = 1e-8,
    saveat: diffrax.SaveAt | None = None,
    dt0: ScalarLike | None = None,
    max_steps: int | None = 65536,
    adjoint: diffrax.AbstractAdjoint = diffrax.RecursiveCheckpointAdjoint(),
) -> diffrax.Solution:
    r"""Integrate a population of `n` uncoupled neurons from `t0` to `t1` [ms] with an
    adaptive diffrax solver.

    Solves $d\,\text{state}/dt$ = `neuron.time_derivative(state, drive(t))` with error
    control by a `diffrax.PIDController(rtol, atol)`. Use an explicit solver
    (`diffrax.Tsit5()`, the default, or `diffrax.Dopri5()`) for non-stiff runs and
    an implicit one (`diffrax.Kvaerno5()`) for stiff ones.

    **Arguments:**

    - `neuron`: A neuron model with `time_derivative` (see the module docstring).
    - `t1`: End time [ms].
    - `n`: Number of neurons (default: the size of `y0`, or 1).
    - `y0`: Initial State (default `neuron.init(n)`, the resting state).
    - `drive`: `None` (no input), a `Drive` held constant, or a function `t -> Drive`
      of time [ms]. Only its current part $i - g v$ [pA] enters the ODE. A function
      that is an `eqx.Module` is traced (its arrays can be differentiated); a plain
      Python function is static, so a new one recompiles.
    - `t0`: Start time [ms].
    - `solver`: A `diffrax.AbstractSolver`.
    - `rtol`, `atol`: Tolerances of the step-size controller (`atol` in the units of
      each state variable).
    - `saveat`: A `diffrax.SaveAt` (default: the end point only).
    - `dt0`: Initial step [ms] (default: chosen by the controller).
    - `max_steps`: Largest number of solver steps; more raises an error.
    - `adjoint`: How to differentiate the solve (`diffrax.AbstractAdjoint`).

    **Returns:** the `diffrax.Solution`: `sol.ts` [ms], and `sol.ys`, a State of the
    neuron's type whose fields have a leading time axis, e.g. `sol.ys.v` of shape
    `(len(ts), n)`.

    Raises `ValueError` for models that are not smooth ODEs (threshold-and-reset
    neurons), for bad sizes and for `t1 <= t0`.
    """
    _require_smooth(neuron, type(neuron).__name__)
    n = _size_of(n, y0)
    neuron.check(n, _CHECK_DT)
    _check_interval(t0, t1)
    if y0 is None:
        y0 = neuron.init(n)
    return diffrax.diffeqsolve(
        diffrax.ODETerm(_neuron_field),
        solver,
        t0,
        t1,
        dt0,
        y0,
        args=(neuron, drive, n),
        saveat=diffrax.SaveAt(t1=True) if saveat is None else saveat,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        adjoint=adjoint,
    )


# ---------------------------------------------------------------------------------------
# Rate networks
# ---------------------------------------------------------------------------------------


def _check_network(model: NetworkModel, *, autonomous: bool) -> None:
    """Raise a `ValueError` for anything `solve_network` cannot integrate exactly."""
    if not isinstance(model, NetworkModel):
        raise ValueError(
            f"expected a built network (Network.build(key)), got {type(model).__name__}."
        )
    for pop in model.populations:
        what = f"population {pop.name!r} ({type(pop.neuron).__name__})"
        _require_smooth(pop.neuron, what)
        if pop.neuron.spiking or not callable(getattr(pop.neuron, "rate", None)):
            raise ValueError(
                f"{what} emits spikes, which are not a smooth function of its state; "
                "solve_network couples rate units only (Rate, FiringRate, WilsonCowan). "
                "Use nj.ode.solve for a single cell, nj.simulate for spiking networks."
            )
        pop.neuron.check(pop.n, _CHECK_DT)
    for proj in model.projections:
        if getattr(proj, "plasticity", None) is not None:
            raise ValueError(
                f"projection {proj.name!r} has plasticity ({type(proj.plasticity).__name__}); "
                "solve_network (and nj.theory) integrate fixed weights W: a rule's state is "
                "not part of the vector field. Simulate it with nj.simulate, or analyse the "
                "network without the rule (Projection(plasticity=None)) at the weights of "
                "interest."
            )
        if not isinstance(proj.synapse, Delta):
            raise ValueError(
                f"projection {proj.name!r} has {type(proj.synapse).__name__} synapses; "
                "solve_network supports Delta synapses only (instantaneous coupling "
                "h = W r). In the fixed-step network other kinetics add the graded input "
                "W r at every step, so their level scales with 1/dt and has no "
                "continuous-time limit."
            )
        if not isinstance(proj.receptor, Current):
            raise ValueError(
                f"projection {proj.name!r} has a {type(proj.receptor).__name__} receptor; "
                "rate units read a graded input, so solve_network needs Current receptors."
            )
        if proj.delay > 0.0:
            raise ValueError(
                f"projection {proj.name!r} has delay [ms] = {proj.delay:g}; solve_network "
                "needs delay 0 (a delay makes the network a delay differential equation)."
            )
    for inp in model.inputs:
        if not isinstance(inp, (Constant, Waveform)):
            raise ValueError(
                f"{type(inp).__name__} input to {inp.target!r}: solve_network accepts the "
                "deterministic Constant and Waveform inputs only; simulate stochastic "
                "inputs with nj.simulate."
            )
        if autonomous and isinstance(inp, Waveform):
            raise ValueError(
                f"Waveform input to {inp.target!r} varies in time, so the network has no "
                "steady state; use Constant inputs with steady_state."
            )


def _input_drive(inp: Constant | Waveform, t: Any) -> Drive:
    # The value a fixed step would hold over [t, t + dt), in the limit dt -> 0.
    value = inp.amplitude if isinstance(inp, Constant) else inp.value(t)
    return inp.receptor.drive(value, False)


def _network_field(t, y, args):
    model, matrices = args
    rates = [pop.neuron.rate(s) for pop, s in zip(model.populations, y)]
    drives = [Drive.zeros(pop.n) for pop in model.populations]
    for proj, w in zip(model.projections, matrices):
        # The graded input a rate unit reads is W r itself (`drive.graded()`), held like a
        # current: the fixed-step network hands on W r at every step.
        drives[proj.post] = drives[proj.post] + proj.receptor.drive(w @ rates[proj.pre], False)
    for inp, target in zip(model.inputs, model.input_targets):
        drives[target] = drives[target] + _input_drive(inp, t)
    return tuple(
        pop.neuron.time_derivative(s, d) for pop, s, d in zip(model.populations, y, drives)
    )


def _network_y0(model: NetworkModel, y0: Any, key: PRNGKeyArray | None) -> tuple:
    if y0 is not None:
        y0 = tuple(y0)
        if len(y0) != len(model.populations):
            raise ValueError(
                f"y0 must hold one neuron State per population ({len(model.populations)}), "
                f"got {len(y0)}."
            )
        return y0
    if key is not None:
        keys = jax.random.split(key, len(model.populations))
        return tuple(pop.init(k) for pop, k in zip(model.populations, keys))
    needs_key = [pop.name for pop in model.populations if pop.initial]
    if needs_key:
        raise ValueError(
            f"populations {needs_key} have `initial` values; pass `key` to draw them "
            "(or give y0)."
        )
    return tuple(pop.neuron.init(pop.n) for pop in model.populations)


def _matrices(model: NetworkModel) -> tuple:
    # Materialised once per solve rather than at every vector-field evaluation.
    return tuple(proj.weights.matrix() for proj in model.projections)


def _jump_times(model: NetworkModel):
    # Waveforms are piecewise linear: stepping onto their knots keeps the adaptive
    # solver from straddling a kink (which it would only notice as a large error).
    times = [inp.times for inp in model.inputs if isinstance(inp, Waveform)]
    return jnp.concatenate(times) if times else None


def solve_network(
    model: NetworkModel,
    t1: ScalarLike,
    *,
    y0: Any = None,
    key: PRNGKeyArray | None = None,
    t0: ScalarLike = 0.0,
    solver: diffrax.AbstractSolver = diffrax.Tsit5(),
    rtol: float = 1e-8,
    atol: float = 1e-8,
    saveat: diffrax.SaveAt | None = None,
    dt0: ScalarLike | None = None,
    max_steps: int | None = 65536,
    adjoint: diffrax.AbstractAdjoint = diffrax.RecursiveCheckpointAdjoint(),
) -> diffrax.Solution:
    r"""Integrate a rate network from `t0` to `t1` [ms] with an adaptive diffrax solver.

    The network ODE is given in the module docstring: every population's
    `time_derivative` under the input $h = \sum W r + I(t)$ with instantaneous coupling.

    **Arguments:**

    - `model`: A built `NetworkModel` of rate units with `Delta` synapses, `Current`
      receptors, zero delays and `Constant` / `Waveform` inputs.
    - `t1`: End time [ms].
    - `y0`: Initial neuron States, one per population (e.g. `result.state.neurons`).
      Default: each population's resting state, with its `initial` values drawn from
      `key` when it has any.
    - `key`: PRNG key for the populations' `initial` values.
    - `t0`, `solver`, `rtol`, `atol`, `saveat`, `dt0`, `max_steps`, `adjoint`: As in
      `solve`.

    **Returns:** the `diffrax.Solution`; `sol.ys` is a tuple of the populations'
    States, each field with a leading time axis. The rates are
    `model.populations[k].neuron.rate(...)` of them.

    Raises `ValueError` (naming the population, projection or input) for anything that
    is not such a smooth rate network.
    """
    _check_network(model, autonomous=False)
    _check_interval(t0, t1)
    y0 = _network_y0(model, y0, key)
    jump_ts = _jump_times(model)
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    if jump_ts is not None:
        controller = diffrax.ClipStepSizeController(controller, jump_ts=jump_ts)
    return diffrax.diffeqsolve(
        diffrax.ODETerm(_network_field),
        solver,
        t0,
        t1,
        dt0,
        y0,
        args=(model, _matrices(model)),
        saveat=diffrax.SaveAt(t1=True) if saveat is None else saveat,
        stepsize_controller=controller,
        max_steps=max_steps,
        adjoint=adjoint,
    )


# ---------------------------------------------------------------------------------------
# Fixed points
# ---------------------------------------------------------------------------------------


# Module-level functions and event, so that repeated calls hit the compilation caches
# of diffeqsolve and root_find (a fresh closure per call would recompile every time).


def _neuron_root(y, args):
    return _neuron_field(0.0, y, args)


def _network_root(y, args):
    return _network_field(0.0, y, args)


_STEADY_STATE = diffrax.Event(diffrax.steady_state_event())


def steady_state(
    model: AbstractNeuron | NetworkModel,
    *,
    y0: Any = None,
    n: int | None = None,
    drive: Drive | Callable[[Any], Drive] | None = None,
    key: PRNGKeyArray | None = None,
    relax: bool = True,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    solver: diffrax.AbstractSolver = diffrax.Tsit5(),
    max_steps: int = 65536,
) -> Any:
    r"""A fixed point of a smooth neuron model under a constant `drive`, or of a rate
    network with constant inputs: a state where the time derivative vanishes.

    With `relax=True` (default) the model is first integrated from `y0` until
    $\|dy/dt\| < 10^{-6}(1 + \|y\|)$ per ms (a `diffrax.steady_state_event`, with
    `solver` at tolerance 1e-6), which finds the stable fixed point whose basin holds
    `y0`; Newton's method (`optimistix.Newton`) then solves $dy/dt = 0$ from there to
    `rtol`, `atol`. With `relax=False`, Newton's method starts at `y0` itself, which
    also finds unstable fixed points (saddles) near `y0`. A model that settles on a
    limit cycle never reaches the relaxation criterion and raises once `max_steps`
    solver steps are spent.

    Differentiable: the gradient with respect to the model's parameters comes from the
    implicit function theorem at the fixed point (optimistix's implicit adjoint), not
    from backpropagation through the relaxation. Newton's method forms the dense
    Jacobian of the state, so it suits single cells and networks of up to a few
    thousand units.

    **Arguments:**

    - `model`: A neuron with `time_derivative`, or a `NetworkModel` accepted by
      `solve_network` (with `Constant` inputs only).
    - `y0`: Starting State (a neuron State, or one per population). Default: the
      resting state (`neuron.init(n)`, or the populations' initial states).
    - `n`: Number of neurons (single neuron models only; default the size of `y0`, or 1).
    - `drive`: A constant `Drive` (single neuron models only); `None` for no input.
    - `key`: PRNG key for the populations' `initial` values (networks only).
    - `relax`: Integrate to a steady state before Newton's method.
    - `rtol`, `atol`: Newton's convergence tolerances (`atol` in state units).
    - `solver`: The diffrax solver used to relax.
    - `max_steps`: Largest number of relaxation steps.

    **Returns:** the fixed point: a State of the neuron's type, or a tuple of States,
    one per population.
    """
    if isinstance(model, NetworkModel):
        if drive is not None or n is not None:
            raise ValueError(
                "steady_state of a network takes its inputs from the network; `drive` "
                "and `n` apply to single neuron models only."
            )
        _check_network(model, autonomous=True)
        y0 = _network_y0(model, y0, key)
        field, root_fn, args = _network_field, _network_root, (model, _matrices(model))
    else:
        _require_smooth(model, type(model).__name__)
        if callable(drive) or not (drive is None or isinstance(drive, Drive)):
            raise ValueError(
                "steady_state needs a constant `drive` (a Drive or None): a drive that "
                "varies in time leaves no steady state."
            )
        n = _size_of(n, y0)
        model.check(n, _CHECK_DT)
        y0 = model.init(n) if y0 is None else y0
        field, root_fn, args = _neuron_field, _neuron_root, (model, drive, n)
    if relax:
        # No gradient flows through the relaxation: Newton's implicit adjoint below
        # differentiates the fixed point itself, so the relaxation only picks the start.
        frozen = _stop_gradient(args)
        controller = diffrax.PIDController(rtol=1e-6, atol=1e-6)
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field),
            solver,
            0.0,
            jnp.inf,
            None,
            _stop_gradient(y0),
            args=frozen,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=controller,
            event=_STEADY_STATE,
            max_steps=max_steps,
        )
        y0 = jax.tree.map(lambda x: x[-1], sol.ys)
    root = optx.root_find(root_fn, optx.Newton(rtol=rtol, atol=atol), y0, args)
    return root.value
