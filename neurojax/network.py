r"""Networks as data: `Population`, `Projection`, `Network`, and the built `NetworkModel`.

```python
net = nj.Network([E, I], [exc, inh], inputs=[drive])
model = net.build(jax.random.key(0))     # connectivity sampled into arrays, once
state = model.init(jax.random.key(1), dt=0.1)
state, outputs = model.step(state, t, dt)
```

**Update order within one step** of length `dt` starting at time `t = step * dt`:

1. Every projection reads the slot of its ring buffer due now (events emitted `d`
   steps ago), clears it, and advances its synaptic kinetics with those arrivals;
   its receptor turns the synaptic variable into a `Drive` for the target population
   (a voltage-dependent receptor, e.g. `NMDA`, reads the target's potential at the
   start of the step). With presynaptic kinetics (`Saturating`) the slot holds the
   conductance itself, held over the step.
2. Every input advances and adds its `Drive`.
3. Every population advances its neurons under the summed drive and emits its output
   (0/1 spikes, or graded rates for rate units).
4. Every projection propagates its presynaptic population's new output through its
   weights into the ring buffer slot `d` steps ahead; a projection with presynaptic
   kinetics first steps them with that output and propagates the graded $s$ instead.
   A plastic projection's rule steps first, on this step's pre and post outputs, the
   postsynaptic neuron state (its potential for a rule with `reads_voltage`) and the
   network's modulators (`Network(..., modulators=[nj.inputs.Modulator(...)])`,
   evaluated at `t`, closed-loop ones on this step's outputs), as the dict
   `{name: value}` (`None` without modulators).

**Delays.** A projection's delay `d` [ms] becomes `max(1, round(d / dt))` steps: the
minimum is one step, so a spike emitted in step `k` first acts in step `k + 1` (as in
Brian2 and NEST). Brunel's D = 1.5 ms at dt = 0.1 ms is 15 steps. Per-synapse delays
(an array or a distribution) are rounded the same way, synapse by synapse.
"""

from __future__ import annotations

import copy
import difflib
import warnings
import math
import fnmatch
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, PRNGKeyArray

from ._abstract import AbstractInput, AbstractModel, AbstractNeuron, Drive
from ._misc import (after, check_dt, check_range, checking, is_concrete as checking_concrete,
                    validate)
from .connectivity.builders import AbstractConnectivity
from .connectivity.spatial import AbstractSpace, DistanceDelay
from .connectivity.procedural import Procedural, ProceduralWeights
from .connectivity.weights import (
    DEFAULT_CHUNK,
    ConstrainedWeights,
    Dense,
    DenseWeights,
    Sparse,
    SparseWeights,
    compact_events,
    read_slot,
    take_slot,
    to_ell,
    transposed_index,
)
from .distributions import AbstractDistribution
from .plasticity.abstract import AbstractPlasticity
from .synapses.kinetics import AbstractKinetics, Delta
from .inputs.placement import OnCompartments
from .neurons.compartmental import Compartmental, Compartments
from .synapses.receptors import NMDA, AbstractReceptor, Conductance, Current


class Population(eqx.Module):
    """A named group of `n` neurons of one model.

    **Arguments:**

    - `name`: Unique name, used by projections, inputs and recordings.
    - `n`: Number of neurons.
    - `neuron`: The neuron model (any `AbstractNeuron`), scalar or per-neuron params.
    - `initial`: Optional initial values of state variables, e.g.
      `{"v": nj.Uniform(-60.0, -50.0)}`: a distribution, a scalar or an `(n,)` array
      per variable name (units of that variable).
    - `space`: Where the neurons sit (`nj.connectivity.Ring`, `Line`, `Sheet`,
      `Positions`), for distance-dependent connectivity and analysis (`positions`).
    - `features`: Named features of each neuron, each laid out like a space, e.g.
      `{"orientation": nj.connectivity.Ring(length=180.0)}` (evenly spread preferred
      orientations [deg]), for feature-dependent connectivity and tuned inputs.
    - `sign`: Dale's law for the population's outgoing synapses: `+1` (excitatory),
      `-1` (inhibitory) or `None` (not declared). With a `Current` receptor every
      weight of its projections must have this sign; `Conductance` weights are never
      negative (the reversal potential makes a synapse inhibitory). Checked when the
      network is built and before every run (so an optimiser step that flips a sign is
      caught), and read by `nj.train` constraints.
    """

    name: str = eqx.field(static=True)
    n: int = eqx.field(static=True)
    neuron: AbstractNeuron
    initial: dict[str, Any] = eqx.field(default_factory=dict)
    space: AbstractSpace | None = eqx.field(static=True, default=None)
    features: dict[str, AbstractSpace] = eqx.field(static=True, default_factory=dict)
    sign: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Population name must be a non-empty string, got {self.name!r}.")
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(
                f"Population {self.name!r} size n [neurons] must lie in [1, inf), got {self.n!r}."
            )
        if not isinstance(self.neuron, AbstractNeuron):
            raise ValueError(
                f"Population {self.name!r} neuron must be a neuron model "
                f"(nj.neurons.*), got {type(self.neuron).__name__}."
            )
        if self.space is not None and not isinstance(self.space, AbstractSpace):
            raise ValueError(
                f"Population {self.name!r} space must be a space (nj.connectivity.Ring, "
                f"Line, Sheet, Positions), got {type(self.space).__name__}."
            )
        for fname, fspace in self.features.items():
            if not isinstance(fspace, AbstractSpace):
                raise ValueError(
                    f"Population {self.name!r} feature {fname!r} must be laid out by a space "
                    f"(e.g. nj.connectivity.Ring(length=180.0)), got {type(fspace).__name__}."
                )
        for sp in [self.space, *self.features.values()]:
            if sp is not None:
                sp.coordinates(self.n)  # a layout that cannot hold n neurons fails here
        if self.sign not in (None, 1, -1) or isinstance(self.sign, bool):
            raise ValueError(
                f"Population {self.name!r} sign must be +1 (excitatory), -1 (inhibitory) "
                f"or None, got {self.sign!r}."
            )

    @property
    def positions(self) -> np.ndarray:
        """The `(n, dim)` coordinates of the neurons in `space`."""
        if self.space is None:
            raise ValueError(f"Population {self.name!r} has no space (Population(..., space=...)).")
        return self.space.coordinates(self.n)

    def feature(self, name: str) -> np.ndarray:
        """The `(n,)` values of feature `name` (e.g. preferred orientations [deg])."""
        if name not in self.features:
            raise ValueError(f"Population {self.name!r} has no feature {name!r}; it has {sorted(self.features)}.")
        return self.features[name].coordinates(self.n)[:, 0]

    def init(self, key: PRNGKeyArray):
        """The neuron state, with the `initial` values drawn."""
        k_neuron, k_init = jax.random.split(key)
        state = self.neuron.init(self.n, key=k_neuron)
        for name, k in zip(sorted(self.initial), jax.random.split(k_init, max(1, len(self.initial)))):
            spec = self.initial[name]
            if isinstance(spec, AbstractDistribution):
                value = spec.sample(k, (self.n,))
            else:
                value = jnp.broadcast_to(jnp.asarray(spec, float), (self.n,))
            old = getattr(state, name)
            state = eqx.tree_at(lambda s: getattr(s, name), state, value.astype(old.dtype))
        return state


class Projection(eqx.Module):
    """Synapses from one population onto one or more populations.

    **Arguments:**

    - `pre`: Name of the presynaptic population.
    - `post`: Name, or list of names, of postsynaptic populations (one projection each).
    - `connectivity`: Which synapses exist (`nj.connectivity.*`).
    - `weight`: Synaptic weight in the receptor's units ([nS] for `Conductance`, [pA] for
      `Current`; [nS·ms] / [pA·ms] with `Delta` kinetics): a scalar, a distribution
      sampled per synapse, or a `(n_post, n_pre)` array read at each synapse. With
      `FromMatrix` it multiplies the matrix entries.
    - `synapse`: Kinetics (`Delta`, `Exponential`, `Alpha`, `DualExponential`).
    - `receptor`: `Current()` or `Conductance(e_rev)`.
    - `delay`: Transmission delay [ms]: a scalar or, for heterogeneous delays, a
      distribution or `(n_post, n_pre)` array read per synapse, or
      `nj.connectivity.DistanceDelay(velocity)` (populations in a space). At least one
      step.
    - `layout`: `nj.connectivity.Dense()`, `nj.connectivity.Sparse(chunk=..., kernel=...,
      capacity=...)` or `None` to choose: dense for graded (rate) presynaptic output or
      density above 25 %, otherwise sparse event-driven.
    - `initial`: Optional initial value of the synaptic variable (e.g. a distribution
      of conductances [nS]), per postsynaptic neuron.
    - `name`: Optional name; defaults to `"pre->post"`.
    - `compartments`: Where the synapses sit on a `Compartmental` target
      (`nj.neurons.Compartments(index=..., section=..., distance=..., sites=...)`): each
      postsynaptic neuron's drive is divided among those compartments (`sites` None or
      `k`), or each synapse sits on its own compartment (`sites="synapse"`, drawn per
      synapse, or an `(n_post, n_pre)` array of compartment indices) and each
      compartment receives the drive of the synapses there; a voltage-dependent
      receptor reads each compartment's own potential, and so does a voltage-reading
      plasticity rule (`VoltageSTDP`; with shared fractions, the fraction-weighted
      mean potential of the sites). `None` (default): the target's
      `input_compartment` (and any other target population).
    - `plasticity`: Optional plasticity rule (`nj.plasticity.*`, e.g. `TsodyksMarkram`,
      `PairSTDP`). Its parameters are model leaves; its state (traces, resources, the
      plastic weights) lives in `NetworkState.plastic` (see `NetworkState`), is
      initialised from this projection's weights by `NetworkModel.init` and is returned
      by `nj.simulate` in `res.state`. Needs stored synapses (`Dense` or `Sparse`
      layout, not `Procedural`). `None` (default): a static projection, which runs
      exactly the code it ran before plasticity existed.
    """

    pre: str = eqx.field(static=True)
    post: str | tuple[str, ...] = eqx.field(static=True)
    connectivity: AbstractConnectivity
    weight: Any = 1.0
    synapse: AbstractKinetics = Delta()
    receptor: AbstractReceptor = Current()
    delay: Any = 0.0
    layout: Dense | Sparse | None = None
    initial: Any = None
    name: str | None = eqx.field(static=True, default=None)
    plasticity: AbstractPlasticity | None = None
    compartments: Compartments | None = None

    def __init__(self, pre, post, connectivity, weight=1.0, synapse=Delta(), receptor=Current(),
                 delay=0.0, layout=None, initial=None, name=None, plasticity=None,
                 compartments=None):
        self.pre = pre
        self.post = post if isinstance(post, str) else tuple(post)
        self.connectivity = connectivity
        self.weight = weight
        self.synapse = synapse
        self.receptor = receptor
        self.delay = delay
        self.layout = layout
        self.initial = initial
        self.name = name
        self.plasticity = plasticity
        self.compartments = compartments
        if compartments is not None and not isinstance(compartments, Compartments):
            raise ValueError(
                "Projection compartments must be nj.neurons.Compartments(...) or None, got "
                f"{type(compartments).__name__}."
            )
        if plasticity is not None and not isinstance(plasticity, AbstractPlasticity):
            raise ValueError(
                "Projection plasticity must be a plasticity rule (nj.plasticity.*) or None, "
                f"got {type(plasticity).__name__}."
            )
        if plasticity is not None and isinstance(connectivity, Procedural):
            raise ValueError(
                "Projection plasticity needs stored synapses, but Procedural connectivity "
                "regenerates them every step and has no place for plastic weights or "
                "per-synapse state; use a stored connectivity (e.g. FixedProbability) with "
                "layout Dense() or Sparse()."
            )
        if not isinstance(connectivity, AbstractConnectivity):
            raise ValueError(
                "Projection connectivity must be a connectivity rule (nj.connectivity.*), "
                f"got {type(connectivity).__name__}."
            )
        if np.ndim(delay) == 0 and not isinstance(delay, (AbstractDistribution, DistanceDelay)):
            check_range(delay, "Projection delay", "ms", low=0.0)

    @property
    def posts(self) -> tuple[str, ...]:
        return (self.post,) if isinstance(self.post, str) else self.post


class BuiltProjection(eqx.Module):
    """A projection with its synapses materialised (see `Projection`)."""

    name: str = eqx.field(static=True)
    pre: int = eqx.field(static=True)
    post: int = eqx.field(static=True)
    weights: DenseWeights | SparseWeights | ProceduralWeights | ConstrainedWeights
    synapse: AbstractKinetics
    receptor: AbstractReceptor
    delay: float = eqx.field(static=True)  # homogeneous delay, or the largest one [ms]
    initial: Any
    plasticity: AbstractPlasticity | None = None
    # (n_post, n_comp) fraction of each neuron's drive per compartment, or None (the
    # target's input compartment); structure, read under stop_gradient.
    compartments: Array | None = None
    # With a site per synapse (Compartments(sites="synapse" or an array)): the target's
    # number of compartments n_comp. The synapses then target (neuron i, compartment c)
    # pairs, flattened as i * n_comp + c: the container's n_post, the kinetics and the
    # delay buffer have n_post * n_comp entries. None otherwise.
    n_comp: int | None = eqx.field(static=True, default=None)

    def delay_steps(self, dt: float) -> int:
        return max(1, int(round(self.delay / dt)))

    def n_targets(self, n_post: int) -> int:
        """Entries of the kinetics and delay buffer for a target of `n_post` neurons:
        `n_post`, or `n_post * n_comp` with a site per synapse."""
        return n_post * (self.n_comp or 1)


class SharedProjections(tuple):
    """The built projections of a network (a tuple of `BuiltProjection`s) in which the
    targets of one multi-target `Projection` given one scalar weight share that weight
    as one leaf.

    `Projection("I", ["E", "I"], ..., weight=-60.0)` builds one `BuiltProjection` per
    target (each has its own synapses, kinetics and buffer), but "the inhibitory
    weight" is one physical quantity, so it is one parameter: the pytree holds it once
    (in the group's first projection) and every other projection of the group reads
    that same leaf. Hence `jax.grad` returns one derivative for it (the sum over the
    targets), `eqx.tree_at(lambda m: m.projections[j].weights.weights, ...)` on any
    target of the group sets it for all, and `model.params()` names it once
    (`"I->{E,I}.weight"`, or `"<name>.weight"` for a named projection). Indexing and
    iterating are those of a tuple.

    **Arguments:**

    - `projections`: The `BuiltProjection`s.
    - `groups`: `((name, (j0, j1, ...)), ...)`: the parameter name of each shared weight
      and the indices of the projections sharing it. A group is kept only while every
      member holds a scalar weight in a plain (unconstrained) container; e.g.
      `nj.train.constrain` gives a projection per-synapse free values, which ends its
      sharing.
    """

    groups: tuple[tuple[str, tuple[int, ...]], ...]

    def __new__(cls, projections=(), groups=()):
        projections = list(projections)
        kept = tuple(
            (name, tuple(idx)) for name, idx in groups
            if len(idx) > 1 and all(_scalar_weight(projections[j]) for j in idx)
        )
        for _, idx in kept:  # every target reads the group's first weight
            for j in idx[1:]:
                projections[j] = _with_weight(projections[j], projections[idx[0]].weights.weights)
        self = super().__new__(cls, projections)
        self.groups = kept
        return self

    def __repr__(self) -> str:
        return f"SharedProjections({tuple.__repr__(self)}, groups={self.groups!r})"

    def _followers(self) -> set[int]:
        return {j for _, idx in self.groups for j in idx[1:]}


def _scalar_weight(proj) -> bool:
    """Whether `proj` is a projection whose plain container holds one scalar weight."""
    container = getattr(proj, "weights", None)
    return (isinstance(container, (DenseWeights, SparseWeights))
            and getattr(container, "weights", None) is not None
            and jnp.ndim(container.weights) == 0)


def _with_weight(proj, w):
    """`proj` with its container's weight field set to `w` (any object: a leaf, a
    tracer, `None`, a placeholder of a pytree transformation). Bypasses the
    constructors on purpose, as pytree unflattening does."""
    if not isinstance(proj, BuiltProjection) or not hasattr(proj.weights, "weights"):
        return proj
    container = copy.copy(proj.weights)
    object.__setattr__(container, "weights", w)
    new = copy.copy(proj)
    object.__setattr__(new, "weights", container)
    return new


def _flatten_shared(p: SharedProjections, keys: bool):
    followers = p._followers()
    children = [_with_weight(proj, None) if j in followers else proj for j, proj in enumerate(p)]
    if keys:
        children = [(jax.tree_util.SequenceKey(j), c) for j, c in enumerate(children)]
    return tuple(children), p.groups


def _unflatten_shared(groups, children) -> SharedProjections:
    children = list(children)
    for _, idx in groups:
        lead = children[idx[0]]
        if isinstance(lead, BuiltProjection) and hasattr(lead.weights, "weights"):
            for j in idx[1:]:
                children[j] = _with_weight(children[j], lead.weights.weights)
    out = tuple.__new__(SharedProjections, children)
    out.groups = groups  # no re-validation: the leaves may be placeholders here
    return out


jax.tree_util.register_pytree_with_keys(
    SharedProjections,
    lambda p: _flatten_shared(p, True),
    _unflatten_shared,
    lambda p: _flatten_shared(p, False),
)


class NetworkState(eqx.Module):
    """The state of a built network.

    `plastic[j]` is the state of projection `j`'s plasticity rule (`None` for a static
    projection): traces and, for weight-changing rules, the current plastic weights
    (`model.plastic_weights(state, name)` reads them by projection name)."""

    step: Int[Array, ""]  # steps taken since init; time is step * dt [ms]
    neurons: tuple  # one state per population
    synapses: tuple  # one kinetics state per projection (per pre neuron if presynaptic)
    buffers: tuple  # one (slots, n_post) ring buffer per projection
    inputs: tuple  # one state per input
    plastic: tuple = ()  # one plasticity rule state (or None) per projection


class NetworkModel(AbstractModel[NetworkState]):
    """A built network: every parameter is an array leaf (differentiable, vmappable,
    replaceable with `eqx.tree_at` or `replace` without rebuilding connectivity)."""

    populations: tuple[Population, ...]
    projections: tuple[BuiltProjection, ...]
    inputs: tuple[AbstractInput, ...]
    input_targets: tuple[int, ...] = eqx.field(static=True)
    modulators: tuple = ()  # nj.inputs.Modulator signals for plasticity rules

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.populations)

    def index(self, name: str) -> int:
        """Index of the population called `name`."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(
                f"unknown population {name!r}; the network has {list(self.names)}."
            ) from None

    def population(self, name: str) -> Population:
        return self.populations[self.index(name)]

    def projection(self, name: str) -> BuiltProjection:
        for p in self.projections:
            if p.name == name:
                return p
        raise ValueError(
            f"unknown projection {name!r}; the network has {[p.name for p in self.projections]}."
        )

    def params(self) -> dict[str, Array]:
        """The model's parameters by name: every float array that a user may fit or
        sweep, keyed `"<owner>.<field>"`.

        Owners are populations (`"E.v_th"`, `"E.surrogate.slope"`), projections by
        name (`"E->E.weight"` the weight, a scalar when one weight serves every synapse,
        `"E->E.synapse.tau"`, `"E->E.receptor.e_rev"`) and inputs as
        `"<Type>-><target>"` (`"Poisson->E.rate"`; `"#2"`, `"#3"`... tell repeats
        apart). One scalar weight given to a multi-target `Projection("I", ["E", "I"])`
        is one parameter, `"I->{E,I}.weight"` (`"<name>.weight"` for a named
        projection), shared by its targets (see `SharedProjections`); their kinetics
        stay per target (`"I->E.synapse.tau"`). Connectivity (indices, counts, delays)
        is structure, not a parameter.

        Every value is in the model's units (see the component's docstring: [ms],
        [mV], [pF], [nS], [pA], [Hz]; a weight in its receptor's units), as stored in
        the built model: e.g. an input's `rate` is the rate of each source [Hz].

        !!! example

            ```python
            model.params()["I->{E,I}.weight"]                    # -60.0 [pA]
            fast = model.replace({"E.tau_m": 10.0, "Poisson->E.rate": 12.0})
            jax.grad(lambda w: loss(model.replace({"I->{E,I}.weight": w})))(-60.0)
            ```
        """
        return {name: get(self) for name, get in _parameter_paths(self).items()}

    def replace(self, values: dict[str, Any]) -> NetworkModel:
        """A copy of the model with the named parameters set (names as in `params`).

        A name may be a glob pattern that sets every parameter it matches:
        `"I->*.weight"` sets every weight of the projections from `I` (the one shared
        leaf `"I->{E,I}.weight"` of `Projection("I", ["E", "I"], ..., weight=-60.0)`,
        or one value for each of separately weighted targets), `"*.tau_m"` every
        population's time constant. Differentiable and vmappable like `eqx.tree_at`
        (which it calls), e.g. `jax.grad(lambda w: loss(model.replace({"I->*.weight":
        w})))(w0)` is the total derivative through every synapse it sets. A value keeps
        the parameter's shape (a scalar may be given for an array; a population's or an
        input's scalar may become one value per neuron). Unknown names raise a
        `ValueError` listing close matches; a wrong shape one naming the parameter and
        the shapes it accepts. Ranges are checked when the model is simulated.
        """
        paths = _parameter_paths(self)
        getters, new = [], []
        for pattern, value in values.items():
            names = [n for n in paths if fnmatch.fnmatchcase(n, pattern)]
            if not names:
                for group, idx in _groups(self):
                    targets = [self.projections[j].name for j in idx]
                    if any(fnmatch.fnmatchcase(f"{t}.weight", pattern) for t in targets):
                        raise ValueError(
                            f"replace: {pattern!r} is not a parameter of its own: projections "
                            f"{targets} share one weight (one scalar given to a multi-target "
                            f"Projection), named {group + '.weight'!r}; set that, or give the "
                            "targets separate Projections to weight them separately."
                        )
                close = difflib.get_close_matches(pattern, list(paths), n=5, cutoff=0.5)
                raise ValueError(
                    f"replace: no parameter matches {pattern!r}"
                    + (f"; did you mean {close}?" if close else "")
                    + " See model.params() for the names."
                )
            for name in names:
                old = paths[name](self)
                getters.append(paths[name])
                new.append(_like(name, value, old, self._neurons_of(name)))
        if not getters:
            return self
        return eqx.tree_at(lambda m: tuple(get(m) for get in getters), self, tuple(new))

    def _neurons_of(self, name: str) -> int | None:
        """Size of the population that a per-neuron value of parameter `name` would
        have (None for projection parameters, whose shapes are fixed)."""
        owner = name.split(".", 1)[0]
        if owner in self.names:
            return self.population(owner).n
        for i, inp_name in enumerate(_input_names(self)):
            if owner == inp_name:
                return self.populations[self.input_targets[i]].n
        return None

    def check(self, dt: float) -> None:
        """Validate every component against `dt` [ms]: shapes, every parameter's range
        (again, since `eqx.tree_at` and transforms bypass the converters that checked
        it at construction) and `dt` against the time constants. A concrete violation
        raises a `ValueError` naming the component, the parameter, its unit and the
        allowed range. Traced values are checked only inside a
        `neurojax._misc.deferred_checks()` block, which collects them for one fused
        runtime check (`simulate` does this)."""
        dt = check_dt(dt)
        for pop in self.populations:
            with checking(f"population {pop.name!r} ({type(pop.neuron).__name__})"):
                validate(pop.neuron)
                validate(pop.initial)
                pop.neuron.check(pop.n, dt)
        for proj in self.projections:
            with checking(f"projection {proj.name!r}"):
                validate((proj.synapse, proj.receptor, proj.initial))
                proj.synapse.check(dt)
                _check_weights(proj.name, proj.weights, proj.receptor, self.populations[proj.pre])
                _warn_rounded_delays(proj, dt)
                if proj.plasticity is not None:
                    validate(proj.plasticity)
                    proj.plasticity.check(proj.weights, dt, proj.name)
                    _check_plastic_weights(proj)
                    _check_rule_inputs(proj, self.populations[proj.post], self.modulators)
        for inp, target in zip(self.inputs, self.input_targets):
            with checking(f"{type(inp).__name__} input to {self.populations[target].name!r}"):
                validate(inp)
                inp.check(self.populations[target].n, dt)

    def init(self, key: PRNGKeyArray, dt: float) -> NetworkState:
        """Initial state for steps of `dt` [ms] (which sizes the delay buffers)."""
        dt = check_dt(dt)
        k_pop, k_proj, k_inp = jax.random.split(key, 3)
        neurons = tuple(
            pop.init(k) for pop, k in zip(self.populations, _split(k_pop, len(self.populations)))
        )
        synapses, buffers = [], []
        for proj, k in zip(self.projections, _split(k_proj, len(self.projections))):
            n_post = proj.n_targets(self.populations[proj.post].n)
            init = proj.initial
            if isinstance(init, AbstractDistribution):
                init = init.sample(k, (n_post,))
            elif init is not None:
                init = jnp.broadcast_to(jnp.asarray(init, float), (n_post,))
            n_syn = self.populations[proj.pre].n if proj.synapse.presynaptic else n_post
            synapses.append(proj.synapse.init(n_syn, init))
            buffers.append(jnp.zeros((proj.delay_steps(dt), n_post), float))
        # Rules' random draws (e.g. CalciumSTDP's noise) from a key folded off `key`,
        # which leaves every other draw of this function as it was.
        k_plastic = jax.random.fold_in(key, 0x504C)
        plastic = tuple(
            None if proj.plasticity is None
            else proj.plasticity.init_run(proj.weights, None, dt, jax.random.fold_in(k_plastic, j))
            for j, proj in enumerate(self.projections)
        )
        inputs = tuple(
            inp.init(self.populations[t].n, key=k)
            for inp, t, k in zip(self.inputs, self.input_targets, _split(k_inp, len(self.inputs)))
        )
        return NetworkState(
            step=jnp.zeros((), jnp.int32),
            neurons=neurons,
            synapses=tuple(synapses),
            buffers=tuple(buffers),
            inputs=inputs,
            plastic=plastic,
        )

    def plastic_weights(self, state: NetworkState, name: str) -> Array:
        """The current weights of the plastic projection `name` in `state` (e.g.
        `res.state`), in the layout of its container: `(n_post, n_pre)` for `Dense`,
        rows `(n_pre, max_out)` for `Sparse` (0 at padding; `weights.targets` says where
        each goes). With a site per synapse (`Compartments(sites="synapse")` or a sites
        array) the targets are (neuron, compartment) pairs `i * n_comp + c`: Dense
        weights are `(n_post * n_comp, n_pre)`, and a sparse target `t` is neuron
        `t // n_comp`. For a rule that changes no weight (e.g. `TsodyksMarkram`), the
        model's weights."""
        j = self._projection_index(name)
        proj = self.projections[j]
        rule_state = state.plastic[j] if len(state.plastic) > j else None
        w = None if proj.plasticity is None or rule_state is None else proj.plasticity.weights(rule_state)
        if w is None:
            from .plasticity.abstract import container_weights
            return container_weights(proj.weights)
        return w

    def _projection_index(self, name: str) -> int:
        for j, p in enumerate(self.projections):
            if p.name == name:
                return j
        raise ValueError(
            f"unknown projection {name!r}; the network has {[p.name for p in self.projections]}."
        )

    def step(
        self, state: NetworkState, t, dt: float, *, exchange: Callable | None = None,
        sampled: tuple | None = None,
    ) -> tuple[NetworkState, tuple]:
        """Advance every component by `dt` [ms] in the order of the module docstring;
        returns the new state and each population's output (spikes or rates).

        `exchange`, if given, maps each population's index and output to the output
        that its projections propagate (an all-gather across devices when the neurons
        are split over a mesh, see `neurojax.sharding`). `sampled`, if given, holds one
        entry per input: None, or this step's value of an input that `simulate`
        sampled before its scan (`presample`), which then replaces the input's own
        lookup by time."""
        k = state.step
        drives = [Drive.zeros(pop.n) for pop in self.populations]
        # Per-compartment drives (n, n_comp) of Compartmental targets of projections and
        # inputs placed with `Compartments`, by population index.
        at_sites: dict[int, Drive] = {}
        synapses, buffers = [], []
        pending_clear = {}  # plastic projections' slots, cleared after their rule's step
        for proj, syn, buf in zip(self.projections, state.synapses, state.buffers):
            if buf.shape[0] > 1 and proj.plasticity is None and _native_kernel(proj.weights):
                # Read and cleared by one compiled call, the carried buffer's only reader,
                # so that the delivery kernel below updates it in place (`take_slot`;
                # Brunel's 15-slot buffers were copied whole twice per step: 0.73x the
                # step's CPU time). Not for one slot, where the copies are small and the
                # call cost more than it saved (COBA-4k 1.04x, CUBA-4k 1.07x), nor for
                # dense delivery (Wang 2002: 1.19x wall; benchmarks/README.md).
                cleared, arrivals = take_slot(buf, k, native=True)
            else:
                slot = k % buf.shape[0]
                arrivals = read_slot(buf, slot)
                # Cleared in place by a scatter at the (traced) slot, also with one slot:
                # a fresh zero buffer instead (`set_slot`, which broadcasts then) is not
                # updated in place by the native kernel that adds to it (aliased input),
                # so XLA copied every ring buffer each step and COBA-4k's step went from
                # 19 to 28 us (benchmarks/thunks.py: 17 copies instead of 13).
                if buf.shape[0] == 1 and _dense(proj.weights):
                    # One slot added to by a dense product (no kernel that updates the
                    # buffer in place): a fresh zero, with no traced slot index to
                    # compute, bounds-check and store for the backward pass every step.
                    cleared = jnp.zeros_like(buf)
                elif proj.plasticity is None:
                    cleared = buf.at[slot].set(0.0)
                else:
                    cleared = None  # cleared after the synapse step, below
            buffers.append(cleared)
            if proj.synapse.presynaptic:
                s = arrivals  # sum_j w_ij s_j, stepped in phase 4; held over this step
            else:
                if not (self.populations[proj.pre].neuron.spiking or proj.synapse.instantaneous):
                    # A rate is a level: filtered to s = W r at steady state for any dt.
                    arrivals = arrivals * proj.synapse.graded_gain(dt)
                syn, s = proj.synapse.step(syn, arrivals, dt)
            synapses.append(syn)
            if buffers[-1] is None:
                # A plastic projection's slot is cleared once its synapse has read it and
                # its rule has stepped (`after`, below, in the plastic branch): the same
                # values, but with PairSTDP's ordering XLA:CPU then has at most 8 thunks
                # ready at once in a plastic COBA-4k step (9 before, so it handed work to
                # its thread pool every step: 43.7-47.5 -> 27.5-29.2 us of CPU per step).
                # Not done for static projections: the static step (8 at most as it is)
                # would then start with 10 ready.
                pending_clear[len(buffers) - 1] = (buf, slot, s)
            if proj.n_comp is not None:
                # A site per synapse: s holds one value per (neuron, compartment) pair.
                n = self.populations[proj.post].n
                v = state.neurons[proj.post].v if proj.receptor.voltage_dependent else None
                d = _at_sites(proj.receptor, jnp.reshape(s, (n, proj.n_comp)),
                              proj.synapse.instantaneous, v)
                at_sites[proj.post] = d if proj.post not in at_sites else at_sites[proj.post] + d
                continue
            if proj.compartments is not None:
                v = state.neurons[proj.post].v if proj.receptor.voltage_dependent else None
                d = _on_compartments(proj.receptor.drive(s, proj.synapse.instantaneous)
                                     if v is None else None, proj.compartments, proj.receptor,
                                     s, proj.synapse.instantaneous, v)
                at_sites[proj.post] = d if proj.post not in at_sites else at_sites[proj.post] + d
                continue
            if proj.receptor.voltage_dependent:
                post = self.populations[proj.post]
                v = post.neuron.voltage(state.neurons[proj.post])
                d = proj.receptor.drive(s, proj.synapse.instantaneous, v)
            else:
                d = proj.receptor.drive(s, proj.synapse.instantaneous)
            drives[proj.post] = drives[proj.post] + d
        inputs = []
        if sampled is None:
            sampled = (None,) * len(self.inputs)
        for inp, target, inp_state, x in zip(self.inputs, self.input_targets, state.inputs,
                                             sampled):
            if x is None:
                inp_state, d = inp.step(inp_state, t, dt)
            else:
                inp_state, d = _sampler(inp).sampled_step(inp_state, x, dt)
            inputs.append(inp_state)
            if isinstance(inp, OnCompartments):
                d = _on_compartments(d, inp.fractions)
                at_sites[target] = d if target not in at_sites else at_sites[target] + d
            else:
                drives[target] = drives[target] + d
        for i, d in at_sites.items():
            pop = self.populations[i]
            drives[i] = d + pop.neuron.to_compartments(drives[i], pop.n)
        neurons, outputs = [], []
        for pop, neu, drive in zip(self.populations, state.neurons, drives):
            neu, out = pop.neuron.step(neu, drive, dt)
            neurons.append(neu)
            outputs.append(out)
        # A synapse's new state is written only once its postsynaptic population's new
        # state is computed (`after`): the old synaptic state is read twice, by the
        # synapse step and again inside the neuron step's fusions (where XLA recomputes
        # s = s_old + arrivals), and without the order XLA copied every synaptic state
        # at the start of every step so as to write the new one in place (COBA-4k and
        # CUBA-4k: 13 -> 9 copies per step; benchmarks/README.md, issue 15). Ordered on
        # the neurons' new state rather than on their output: the output (spikes) is
        # cheap, so XLA recomputed it inside each synapse's fusion and a plastic COBA-4k
        # step then had 9 thunks ready at once (thread-pool hand-off, 29 -> 38 us).
        # Same values bit for bit.
        for j, proj in enumerate(self.projections):
            if not proj.synapse.presynaptic:
                synapses[j] = _ordered_after(synapses[j], _late(neurons[proj.post],
                                                               outputs[proj.post]))
        presynaptic = (
            outputs if exchange is None else [exchange(i, o) for i, o in enumerate(outputs)]
        )
        # Compact each population's events once, however many sparse projections it has.
        events = {
            proj.pre: compact_events(presynaptic[proj.pre])
            for proj in self.projections
            if proj.weights.event_driven and not proj.synapse.presynaptic
        }
        # Where each population's output can carry a gradient (compact-support
        # surrogates only, else None): a residual of the sparse VJP, which skips the
        # other rows; a plain forward run never computes it (XLA drops it).
        support = {
            i: self.populations[i].neuron.gradient_support(neurons[i], outputs[i])
            for i in events
        } if exchange is None else {}
        plastic = list(state.plastic) if state.plastic else [None] * len(self.projections)
        # Neuromodulators (three-factor rules): evaluated once per step after the neurons,
        # closed-loop ones on this step's (whole, exchanged) outputs of their sources.
        modulators = None
        if self.modulators:
            modulators = {m.name: m.value(t, _activity(self, m, presynaptic)) for m in self.modulators}
        for j, proj in enumerate(self.projections):
            act, ev = presynaptic[proj.pre], events.get(proj.pre)
            mask = support.get(proj.pre)
            if proj.synapse.presynaptic:
                synapses[j], act = proj.synapse.step(synapses[j], act, dt)
                ev = mask = None  # the graded s is active wherever it is non-zero
            if proj.plasticity is None:
                buffers[j] = proj.weights.deliver(buffers[j], act, k, proj.delay_steps(dt), dt, ev,
                                                  support=mask)
                continue
            # A plastic projection: the rule advances on this step's pre and post
            # outputs and says which weights (and presynaptic efficacy) to deliver.
            rule = proj.plasticity
            post_vars, post_out = neurons[proj.post], presynaptic[proj.post]
            if getattr(rule, "reads_voltage", False):  # e.g. VoltageSTDP: the potential [mV]
                post_vars = _rule_voltage(self.populations[proj.post].neuron, post_vars, proj)
            mods = modulators
            if proj.n_comp is not None:
                # Targets are (neuron, compartment) pairs: each pair sees its neuron's
                # output (and, above, its own compartment's potential), and a modulator
                # with one value per postsynaptic neuron its neuron's value.
                post_out = jnp.repeat(post_out, proj.n_comp)
                n_post = self.populations[proj.post].n
                if mods:
                    mods = {name: jnp.repeat(m, proj.n_comp) if m.shape == (n_post,) else m
                            for name, m in mods.items()}
            plastic[j], w = rule.step(
                plastic[j], act, post_out, post_vars, mods, dt,
                structure=proj.weights,
            )
            if j in pending_clear:
                # Ordered after a weight the rule returns when it has one (a kernel's
                # output, which XLA cannot recompute inside the clearing fusion), not after
                # the synapse's output s: XLA recomputes s from the old synaptic state
                # there, and then copied that state every step to update it in place
                # (plastic COBA-4k: one copy of E->E's conductances per step).
                buf, slot, s = pending_clear.pop(j)
                dep = w.reshape(-1)[:1] if w is not None and w.size else s
                buffers[j] = after(buf, dep).at[slot].set(0.0)
            buffers[j] = proj.weights.deliver(
                buffers[j], rule.transmit(plastic[j], act), k, proj.delay_steps(dt), dt, ev,
                weights=w,
            )
        new = NetworkState(
            step=k + 1,
            neurons=tuple(neurons),
            synapses=tuple(synapses),
            buffers=tuple(buffers),
            inputs=tuple(inputs),
            plastic=tuple(plastic),
        )
        return new, tuple(outputs)


def _late(state, out):
    """An array of a population's new `state` with the shape of its output `out` (the
    first such leaf: the potential of a spiking neuron), else `out`: a value computed
    from the whole step's drive, to order writes after (`_ordered_after`)."""
    for leaf in jax.tree.leaves(state):
        if jnp.shape(leaf) == jnp.shape(out) and jnp.issubdtype(jnp.result_type(leaf),
                                                                jnp.floating):
            return leaf
    return out


def _ordered_after(tree, dep):
    """`tree` with each floating array leaf of `dep`'s shape computed after `dep`
    (`after`); other leaves (one value per compartment site, scalars) as they are."""
    shape = jnp.shape(dep)
    return jax.tree.map(
        lambda a: after(a, dep) if jnp.shape(a) == shape and jnp.issubdtype(
            jnp.result_type(a), jnp.floating) else a, tree)


def _native_kernel(weights) -> bool:
    """Whether a projection's container may deliver with a compiled CPU kernel (an
    event-driven layout of kernel "auto" or "native"), which adds into the carried ring
    buffer in place."""
    if isinstance(weights, ConstrainedWeights):
        weights = weights.base
    return weights.event_driven and getattr(weights, "kernel", None) in ("auto", "native")


def _dense(weights) -> bool:
    """Whether a projection's container delivers by a dense product (`DenseWeights`,
    also under a constraint), not by a kernel that adds into the buffer in place."""
    if isinstance(weights, ConstrainedWeights):
        weights = weights.base
    return isinstance(weights, DenseWeights)


def _split(key, n):
    return jax.random.split(key, max(n, 1))[:n]


# Largest pre-sampled input [elements] that `presample` builds regardless of the input's
# own size: 2^18 elements, 1 MB in float32 (2 MB in float64), per input and per run (per
# trial under vmap; per chunk with progress=True).
PRESAMPLE_ELEMENTS = 2**18


def _sampler(inp):
    """The input that computes `inp`'s values before a run: a `Waveform` (its value is
    a function of time alone), also placed with `OnCompartments`, whose drive is then
    divided as usual; None for any other input (stepped as usual, e.g. a stochastic
    input, whose state and keys are untouched)."""
    from .inputs.deterministic import Waveform

    inner = inp.input if isinstance(inp, OnCompartments) else inp
    return inner if isinstance(inner, Waveform) else None


def presample(model: NetworkModel, step0, n_steps: int, dt: float) -> tuple | None:
    """The values of `model`'s time-only inputs (`Waveform`s) at the start of each of
    the `n_steps` steps from step `step0` (times `(step0 + k) * dt` [ms], the very
    values the steps would compute), one entry per input: an array `(n_steps, *n)`,
    or None for an input left to its own step. None if no input is sampled.

    `simulate` feeds these arrays to its scan as per-step inputs (`xs`): the step then
    reads its row instead of finding the row and the interpolation fraction by time,
    scalar work that XLA fused into the per-element loops over the neurons (forward and
    backward), and the backward pass stacks the rows' cotangents and maps them to the
    waveform's samples once, after the scan.

    Memory: an input is sampled only if the array is at most `PRESAMPLE_ELEMENTS`
    elements or no larger than its own `values` (a waveform sampled at least as
    finely as the steps), so a long run never holds a sampled copy much larger than
    its inputs; larger ones are looked up in the step as before."""
    out = []
    for inp in model.inputs:
        src = _sampler(inp)
        if src is not None:
            cols = src.values.shape[1:]
            size = n_steps * int(np.prod(cols, dtype=int))
            if size > max(PRESAMPLE_ELEMENTS, src.values.size):
                src = None
        if src is None:
            out.append(None)
            continue
        step = jnp.asarray(step0)
        times = (step + jnp.arange(n_steps, dtype=step.dtype)) * dt
        out.append(src.sample(times))
    return tuple(out) if any(x is not None for x in out) else None


def _at_sites(receptor, s, instantaneous, v=None):
    """The per-compartment drive `(n, n_comp)` of a projection with a site per synapse,
    from its synaptic variable `s` `(n, n_comp)` (the synapses at each site summed) and,
    for a voltage-dependent receptor, each compartment's potential `v` `(n, n_comp)`
    [mV]; the receptor's parameters (scalars or `(n,)`) broadcast per compartment by the
    vmap."""
    if v is None:
        return jax.vmap(lambda sc: receptor.drive(sc, instantaneous),
                        in_axes=1, out_axes=1)(s)
    return jax.vmap(lambda sc, vc: receptor.drive(sc, instantaneous, vc),
                    in_axes=1, out_axes=1)(s, v)


def _rule_voltage(neuron, neuron_state, proj):
    """The postsynaptic potential [mV] a voltage-reading plasticity rule of `proj` sees:
    with a site per synapse, each (neuron, compartment) pair's own potential,
    `(n_post * n_comp,)`; with shared fractions (`Compartments`, `sites` None or `k`),
    the potential of each neuron's sites averaged with their fractions of the drive
    (the site's own potential when there is one); otherwise the neuron's `voltage`
    (a `Compartmental` cell's `input_compartment`, where the drive then enters)."""
    if proj.n_comp is not None:
        return jnp.reshape(neuron_state.v, (-1,))
    if proj.compartments is not None:
        return jnp.sum(jax.lax.stop_gradient(proj.compartments) * neuron_state.v, axis=1)
    return neuron.voltage(neuron_state)


def _on_compartments(d, fractions, receptor=None, s=None, instantaneous=False, v=None):
    """The per-compartment drive `(n, n_comp)` that puts `fractions` `(n, n_comp)` of
    each neuron's drive `d` (fields `(n,)` or scalars) at each compartment. A
    voltage-dependent `receptor` is evaluated per compartment instead, on its share of
    the synaptic variable `s` `(n,)` at that compartment's potential `v` `(n, n_comp)`
    (its parameters, scalars or `(n,)`, broadcast per compartment by the vmap)."""
    fractions = jax.lax.stop_gradient(fractions)
    n = fractions.shape[0]
    if v is None:
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,))[:, None] * fractions, d)
    return _at_sites(receptor, jnp.broadcast_to(s, (n,))[:, None] * fractions, instantaneous, v)


def _activity(model: NetworkModel, modulator, outputs):
    """The outputs a closed-loop modulator reads (None in open loop)."""
    sources = modulator.sources
    if not sources:
        return None
    acts = tuple(outputs[model.index(name)] for name in sources)
    return acts[0] if isinstance(modulator.source, str) else acts


class Network(eqx.Module):
    """An unbuilt network: populations, projections and inputs as plain data.

    `build(key)` validates names and samples connectivity into a `NetworkModel`.
    """

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    inputs: tuple[AbstractInput, ...]
    modulators: tuple = ()

    def __init__(self, populations: Sequence[Population], projections: Sequence[Projection] = (),
                 inputs: Sequence[AbstractInput] = (), modulators: Sequence[Any] = ()):
        self.populations = tuple(populations)
        self.projections = tuple(projections)
        self.inputs = tuple(inputs)
        self.modulators = tuple(modulators)
        names = [p.name for p in self.populations]
        if not names:
            raise ValueError("a Network needs at least one Population.")
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"population names must be unique; repeated: {sorted(dup)}.")
        for proj in self.projections:
            for name in (proj.pre, *proj.posts):
                if name not in names:
                    raise ValueError(
                        f"Projection refers to unknown population {name!r}; the network has {names}."
                    )
        for inp in self.inputs:
            if not isinstance(inp, AbstractInput):
                raise ValueError(f"inputs must be nj.inputs.* objects, got {type(inp).__name__}.")
            if inp.target not in names:
                raise ValueError(
                    f"{type(inp).__name__} targets unknown population {inp.target!r}; "
                    f"the network has {names}."
                )
        _check_modulator_list(self.modulators, names)

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise ValueError(f"unknown population {name!r}; the network has {[p.name for p in self.populations]}.")

    def build(self, key: PRNGKeyArray) -> NetworkModel:
        """Sample connectivity, weights and delays into arrays; returns the model."""
        names = [p.name for p in self.populations]
        keys = _split(key, sum(len(p.posts) for p in self.projections) + len(self.populations))
        built, groups, i = [], [], 0
        for proj in self.projections:
            first = len(built)
            for post_name in proj.posts:
                built.append(self._build_projection(proj, names.index(proj.pre), names.index(post_name), keys[i]))
                i += 1
            if len(proj.posts) > 1 and _is_scalar_spec(proj.weight):
                # One scalar weight for every target is one parameter (SharedProjections
                # keeps the group only if every target stores it as a scalar).
                shared = proj.name or f"{proj.pre}->{{{','.join(proj.posts)}}}"
                groups.append((shared, tuple(range(first, len(built)))))
        for pop, k in zip(self.populations, keys[i:]):
            _check_initial_names(pop, k)
        for inp in self.inputs:
            _check_input_synapse(inp)
        for proj in built:
            if proj.plasticity is not None:
                _check_rule_inputs(proj, self.populations[proj.post], self.modulators)
        return NetworkModel(
            populations=self.populations,
            projections=SharedProjections(built, groups),
            inputs=tuple(inp.bind(self.population(inp.target)) for inp in self.inputs),
            input_targets=tuple(names.index(inp.target) for inp in self.inputs),
            modulators=self.modulators,
        )

    def _build_projection(self, proj: Projection, pre: int, post: int, key) -> BuiltProjection:
        pre_pop, post_pop = self.populations[pre], self.populations[post]
        n_pre, n_post = pre_pop.n, post_pop.n
        name = proj.name or f"{pre_pop.name}->{post_pop.name}"
        if len(proj.posts) > 1 and proj.name:
            name = f"{proj.name}:{post_pop.name}"
        k_syn, k_w, k_d = jax.random.split(key, 3)
        _check_receptor(name, proj, pre_pop, post_pop)
        per_synapse = proj.compartments is not None and proj.compartments.per_synapse
        if per_synapse and isinstance(proj.connectivity, Procedural):
            raise ValueError(
                f"{name}: Compartments sites=\"synapse\" (or a sites array) places every "
                "stored synapse, but Procedural connectivity regenerates its synapses each "
                "step; use a stored connectivity (e.g. FixedProbability) or sites=None / k."
            )
        if isinstance(proj.connectivity, Procedural):
            # Synapses are regenerated from a seed at each step: nothing is sampled here.
            container = proj.connectivity.build(
                k_syn, n_pre, n_post, pre == post, proj.weight, proj.delay, proj.layout, name,
                pre_space=pre_pop.space, post_space=post_pop.space,
            )
            return BuiltProjection(
                name=name, pre=pre, post=post, weights=container, synapse=proj.synapse,
                receptor=proj.receptor, delay=float(proj.delay), initial=proj.initial,
                compartments=_compartment_fractions(name, proj, post_pop),
            )  # Projection refuses plasticity with Procedural connectivity
        syn = proj.connectivity.sample_between(k_syn, pre_pop, post_pop, pre == post)
        # Where each synapse delivers: its postsynaptic neuron, or with a site per synapse
        # the (neuron, compartment) pair i * n_comp + c_ij (n_tgt such targets).
        tgt, n_tgt, n_comp = syn.post, n_post, None
        if per_synapse:
            _compartment_fractions(name, proj, post_pop)  # a Compartmental target
            if proj.initial is not None:
                raise ValueError(
                    f"{name}: initial must be None with Compartments sites=\"synapse\" (or a "
                    "sites array): the synaptic variable is kept per (neuron, compartment) "
                    "pair and starts at 0."
                )
            n_comp = post_pop.neuron.morphology.n_compartments
            sites = proj.compartments.synapse_sites(post_pop.neuron.morphology, syn.post,
                                                    syn.pre, n_post, n_pre, name)
            tgt, n_tgt = syn.post * n_comp + sites, n_post * n_comp
        weights = _per_synapse(proj.weight, syn, n_pre, n_post, k_w, f"{name} weight", "receptor units")
        if syn.values is not None:
            # A scalar weight scales the matrix entries (None from _per_synapse means
            # the scalar `proj.weight`, which must not be dropped here).
            weights = syn.values * (float(proj.weight) if weights is None else weights)
        if syn.delays is not None:
            if isinstance(proj.delay, (AbstractDistribution, DistanceDelay)) or np.any(np.asarray(proj.delay) != 0):
                raise ValueError(
                    f"{name}: the connectivity ({type(proj.connectivity).__name__}) gives "
                    "per-synapse delays, so the Projection delay must stay 0 (give delays once)."
                )
            delays = np.asarray(syn.delays, float)
            check_range(delays, f"{name} delay", "ms", low=0.0)
            max_delay = float(delays.max()) if delays.size else 0.0
        elif isinstance(proj.delay, DistanceDelay):
            delays = proj.delay.per_synapse(pre_pop, post_pop, syn)
            max_delay = float(delays.max()) if delays.size else 0.0
        elif np.ndim(proj.delay) == 0 and not isinstance(proj.delay, AbstractDistribution):
            delays, max_delay = None, float(proj.delay)
        else:
            delays = _per_synapse(proj.delay, syn, n_pre, n_post, k_d, f"{name} delay", "ms")
            check_range(delays, f"{name} delay", "ms", low=0.0)
            max_delay = float(delays.max()) if delays.size else 0.0
        layout = proj.layout
        if layout is None:
            density = syn.pre.size / float(n_pre * n_tgt)
            dense = (not pre_pop.neuron.spiking) or density > 0.25
            layout = Dense() if dense and delays is None else Sparse()
        if isinstance(layout, Dense):
            if delays is not None:
                raise ValueError(
                    f"{name}: per-synapse delays need the Sparse layout; got layout=Dense()."
                )
            if weights is None:
                # A scalar weight stays one leaf; the structure is integer counts.
                counts = np.zeros((n_tgt, n_pre), np.int32)
                np.add.at(counts, (tgt, syn.pre), 1)
                small = np.uint8 if counts.max(initial=0) <= np.iinfo(np.uint8).max else np.int32
                container = DenseWeights(weights=jnp.asarray(proj.weight, float),
                                         counts=jnp.asarray(counts.astype(small)))
            else:
                w = np.zeros((n_tgt, n_pre))
                np.add.at(w, (tgt, syn.pre), weights)
                container = DenseWeights(weights=jnp.asarray(w))
        else:
            per_syn = {}
            if weights is not None:
                per_syn["weights"] = weights
            if delays is not None:
                per_syn["delays"] = delays
            targets, packed = to_ell(syn.pre, tgt, n_pre, n_tgt, per_syn)
            w = packed["weights"] if weights is not None else np.asarray(proj.weight, float)
            container = SparseWeights(
                weights=jnp.asarray(w, float),
                targets=jnp.asarray(targets),
                delays=jnp.asarray(packed["delays"]) if delays is not None else None,
                n_post=n_tgt,
                chunk=DEFAULT_CHUNK if layout.chunk is None else layout.chunk,
                kernel=layout.kernel,
                capacity=layout.capacity,
                # Post-triggered plasticity updates need post -> synapse ids.
                post_index=(jnp.asarray(transposed_index(targets, n_tgt))
                            if proj.plasticity is not None and proj.plasticity.changes_weights
                            else None),
            )
        _check_weights(name, container, proj.receptor, pre_pop)
        built = BuiltProjection(
            name=name, pre=pre, post=post, weights=container, synapse=proj.synapse,
            receptor=proj.receptor, delay=max_delay, initial=proj.initial,
            plasticity=proj.plasticity,
            compartments=None if per_synapse else _compartment_fractions(name, proj, post_pop),
            n_comp=n_comp,
        )
        if proj.plasticity is not None:
            _check_plastic_weights(built)
            if per_synapse:
                _check_rule_on_sites(name, proj.plasticity)
        return built


def _is_scalar_spec(weight) -> bool:
    """Whether a `Projection` weight is one number (not a distribution or an array)."""
    if isinstance(weight, AbstractDistribution) or weight is None:
        return False
    try:
        return bool(np.ndim(weight) == 0 and np.isfinite(float(weight)))
    except (TypeError, ValueError):
        return False


def _check_plastic_weights(proj: BuiltProjection) -> None:
    """A weight-changing rule with bounds `[0, w_max]` needs initial weights inside
    them (concrete weights only; traced ones are the optimiser's business)."""
    rule = proj.plasticity
    if getattr(rule, "w_max", None) is None or not rule.changes_weights:
        return
    from .plasticity.abstract import container_weights, synapse_mask

    # Eagerly on concrete values, also while `jit` traces a function that closes over
    # the model (there `weights != 0` would otherwise be staged out as a tracer).
    with jax.ensure_compile_time_eval():
        w_max = rule.w_max
        w, mask = container_weights(proj.weights), synapse_mask(proj.weights)
    if not (checking_concrete(w) and checking_concrete(mask) and checking_concrete(w_max)):
        return
    # numpy, not jax, arrays: np.max(jax array) calls its .max(), staged under jit.
    w, mask, w_max = np.asarray(w), np.asarray(mask), float(np.max(np.asarray(w_max)))
    values = w[mask]
    if values.size and (values.min() < 0 or values.max() > w_max):
        raise ValueError(
            f"projection {proj.name!r}: initial weights must lie in the bounds of its "
            f"{type(rule).__name__}, [0, w_max] = [0, {w_max:g}] [weight units], "
            f"got min {values.min():g}, max {values.max():g}."
        )


def _check_rule_on_sites(name: str, rule: AbstractPlasticity) -> None:
    """With a site per synapse a rule sees (neuron, compartment) pairs as its
    postsynaptic units: each pair gets its neuron's output, its neuron's value of a
    per-neuron modulator and its own compartment's potential, so spike traces, rate
    estimates and filtered potentials stay right. A rule that sums over a neuron's
    incoming synapses, takes a parameter per postsynaptic neuron, or keeps a per-neuron
    average of the potential (Clopath's homeostasis) would act per pair instead:
    refused."""
    from .plasticity.normalization import Chain, Normalization, SynapticScaling
    from .plasticity.voltage import VoltageSTDP

    for r in rule.rules if isinstance(rule, Chain) else (rule,):
        if isinstance(r, VoltageSTDP) and r.homeostasis:
            raise ValueError(
                f"{name}: VoltageSTDP(homeostasis=True) scales A_LTD per postsynaptic neuron "
                "by its filtered depolarisation, but with Compartments sites=\"synapse\" (or "
                "a sites array) each (neuron, compartment) pair filters its own potential, so "
                "the sites of one neuron would get different scalings; use homeostasis=False "
                "or place the synapses with sites=None or k."
            )
        if isinstance(r, Normalization) and r.direction == "incoming":
            raise ValueError(
                f"{name}: Normalization(direction='incoming') sums each postsynaptic "
                "neuron's incoming weights, but with Compartments sites=\"synapse\" (or a "
                "sites array) the synapses target (neuron, compartment) pairs; place them "
                "with sites=None or k, or normalise direction='outgoing'."
            )
        if isinstance(r, SynapticScaling) and np.ndim(r.target_rate) != 0:
            raise ValueError(
                f"{name}: SynapticScaling target_rate [Hz] per postsynaptic neuron (shape "
                f"{np.shape(r.target_rate)}) is not supported with Compartments "
                "sites=\"synapse\" (or a sites array); give a scalar target_rate or place "
                "the synapses with sites=None or k."
            )


def _check_modulator_list(modulators: tuple, names: list[str]) -> None:
    """Modulators are `nj.inputs.Modulator`s with unique names whose sources exist."""
    from .inputs.modulator import Modulator

    seen = []
    for m in modulators:
        if not isinstance(m, Modulator):
            raise ValueError(f"modulators must be nj.inputs.Modulator objects, got {type(m).__name__}.")
        if m.name in seen:
            raise ValueError(f"modulator names must be unique; repeated: {m.name!r}.")
        seen.append(m.name)
        for src in m.sources:
            if src not in names:
                raise ValueError(
                    f"Modulator({m.name!r}) reads unknown population {src!r}; the network has {names}."
                )


def _check_rule_inputs(proj: BuiltProjection, post: Population, modulators: tuple) -> None:
    """A rule that reads a modulator (`rule.modulator`, a name) needs that modulator in
    the network; one that reads the postsynaptic potential (`rule.reads_voltage`) needs
    a neuron that has one (`AbstractNeuron.voltage`)."""
    rule = proj.plasticity
    wanted = getattr(rule, "modulator", None)
    have = [m.name for m in modulators]
    if wanted is not None and wanted not in have:
        raise ValueError(
            f"projection {proj.name!r}: {type(rule).__name__} reads the modulator {wanted!r}, "
            f"but the network supplies {have or 'none'}; add "
            f"nj.Network(..., modulators=[nj.inputs.Modulator({wanted!r}, signal)])."
        )
    if getattr(rule, "reads_voltage", False):
        if jax.eval_shape(lambda: post.neuron.voltage(post.init(jax.random.key(0)))) is None:
            raise ValueError(
                f"projection {proj.name!r}: {type(rule).__name__} reads the postsynaptic "
                f"membrane potential [mV], but {type(post.neuron).__name__} population "
                f"{post.name!r} has none (AbstractNeuron.voltage is None, e.g. a rate or "
                "binary unit); use a spiking neuron with a potential (LIF, AdEx, ...)."
            )


def _warn_rounded_delays(proj: BuiltProjection, dt: float) -> None:
    """Warn, saying to what, when a projection's delay is not a whole number of steps
    of `dt` (it is rounded to whole steps, at least one; a zero delay means the one-step
    minimum, silently). Per-synapse delays (arrays, distributions) are rounded synapse
    by synapse as documented, without a warning: continuous distributions would always
    warn. `warnings.simplefilter("error")` turns the warning into an error for a user
    who needs delays exact."""
    container = getattr(proj.weights, "base", proj.weights)  # a ConstrainedWeights' structure
    if getattr(container, "delays", None) is not None or proj.delay <= 0:
        return
    steps = max(1, round(proj.delay / dt))
    if abs(proj.delay - steps * dt) > 1e-6 * max(proj.delay, dt):
        warnings.warn(
            f"projection {proj.name!r}: delay {proj.delay:g} ms is not a multiple of "
            f"dt = {dt:g} ms; rounded to {steps * dt:g} ms ({steps} step{'s' if steps > 1 else ''}).",
            stacklevel=6,
        )


def _check_receptor(name: str, proj: Projection, pre_pop: Population,
                    post_pop: Population) -> None:
    """A voltage-dependent receptor needs a membrane potential on the target;
    per-presynaptic-neuron kinetics count spikes (a spiking source) and start closed
    (no `initial`)."""
    if proj.receptor.voltage_dependent:
        neuron = post_pop.neuron
        if neuron.voltage(neuron.init(1, key=jax.random.key(0))) is None:
            raise ValueError(
                f"{name}: receptor {type(proj.receptor).__name__} is voltage-dependent and "
                f"needs a postsynaptic membrane potential v [mV], but population "
                f"{post_pop.name!r} ({type(neuron).__name__}) has none; use Conductance or "
                "Current, or a neuron with a membrane potential (LIF, EIF, AdEx, HH, ...)."
            )
    if proj.synapse.presynaptic and not pre_pop.neuron.spiking:
        raise ValueError(
            f"{name}: synapse {type(proj.synapse).__name__} counts presynaptic spikes, but "
            f"population {pre_pop.name!r} ({type(pre_pop.neuron).__name__}) emits graded "
            "rates; use a spiking source or linear kinetics (Delta, Exponential, ...)."
        )
    if proj.synapse.presynaptic and proj.initial is not None:
        raise ValueError(
            f"{name}: initial must be None with {type(proj.synapse).__name__} kinetics "
            "(kept per presynaptic neuron, they start closed)."
        )


def _compartment_fractions(name: str, proj: Projection, post_pop: Population) -> Array | None:
    """The `(n_post, n_comp)` fractions of `proj.compartments` on its target, or None;
    a `Compartments` target needs a `Compartmental` population."""
    if proj.compartments is None:
        return None
    if not isinstance(post_pop.neuron, Compartmental):
        raise ValueError(
            f"{name}: compartments is given, but population {post_pop.name!r} "
            f"({type(post_pop.neuron).__name__}) has no compartments; Compartments "
            "targets need nj.neurons.Compartmental neurons (omit compartments otherwise)."
        )
    if proj.compartments.per_synapse:
        return None  # placed synapse by synapse (BuiltProjection.n_comp)
    return jnp.asarray(proj.compartments.fractions(post_pop.neuron.morphology, post_pop.n, name))


def _check_input_synapse(inp: AbstractInput) -> None:
    """An input steps its own synapse without the target's potential or per-source
    state: voltage-dependent receptors and presynaptic kinetics need a Projection (from
    a `PoissonPopulation`, say)."""
    what = f"{type(inp).__name__} input to {inp.target!r}"
    receptor, synapse = getattr(inp, "receptor", None), getattr(inp, "synapse", None)
    if getattr(receptor, "voltage_dependent", False):
        raise ValueError(
            f"{what}: receptor {type(receptor).__name__} is voltage-dependent, which inputs "
            "do not support; drive the population through a Projection from a "
            "nj.inputs.PoissonPopulation instead."
        )
    if getattr(synapse, "presynaptic", False):
        raise ValueError(
            f"{what}: synapse {type(synapse).__name__} is kept per presynaptic neuron, which "
            "inputs do not support; use a Projection from a nj.inputs.PoissonPopulation."
        )


def _check_weights(name: str, container, receptor, pre: Population) -> None:
    """Weights are finite, and a conductance is never negative: a "-30 nS inhibitory
    conductance" would open a channel with a negative conductance, i.e. excite (a
    network built that way ran at 170 Hz). Inhibition is a conductance with a negative
    reversal potential (`Conductance(e_rev=-80.0)`). With a `Current` receptor, a
    presynaptic population that declares its `sign` (Dale's law) fixes the sign of every
    weight. Traced weights (replaced by an optimiser, swept) are checked at run time
    like every other parameter."""
    if isinstance(container, ProceduralWeights):
        return  # its weight distribution is checked when it is built
    conductance = isinstance(receptor, (Conductance, NMDA))
    unit = "nS or nS*ms (Conductance receptor)" if conductance else "pA or pA*ms (Current receptor)"
    low, high = -math.inf, math.inf
    if conductance or pre.sign == 1:
        low = 0.0
    elif pre.sign == -1:
        high = 0.0
    try:
        check_range(container.weights, f"{name} weight", unit, low=low, high=high)
    except ValueError as err:
        if conductance:
            raise ValueError(f"{err} Inhibition is a Conductance with a negative reversal "
                             "potential (e.g. Conductance(e_rev=-80.0)), not a negative weight.") from None
        if pre.sign is not None:
            kind = "excitatory" if pre.sign == 1 else "inhibitory"
            raise ValueError(f"{err} Population {pre.name!r} is {kind} (sign={pre.sign:+d}, "
                             "Dale's law): all its outgoing weights share that sign.") from None
        raise


def _per_synapse(spec, syn, n_pre, n_post, key, what, unit):
    """Per-synapse values from a scalar (returns None: homogeneous), a distribution or
    a (n_post, n_pre) array."""
    if isinstance(spec, AbstractDistribution):
        return np.asarray(spec.sample(key, (syn.pre.size,)), float)
    try:
        if spec is None:
            raise TypeError
        arr = np.asarray(spec, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"{what} [{unit}] must be a number, a distribution or an (n_post, n_pre) = "
            f"({n_post}, {n_pre}) array of numbers, got {type(spec).__name__} {spec!r:.60}."
        ) from None
    if arr.ndim == 0:
        check_range(arr, what, unit)
        return None
    if arr.shape != (n_post, n_pre):
        raise ValueError(
            f"{what} [{unit}] array must have shape (n_post, n_pre) = ({n_post}, {n_pre}), "
            f"got {arr.shape}."
        )
    check_range(arr, what, unit)
    return arr[syn.post, syn.pre]


def _check_initial_names(pop: Population, key) -> None:
    state = pop.neuron.init(pop.n, key=key)
    for name in pop.initial:
        if not hasattr(state, name) or not isinstance(getattr(state, name), jax.Array):
            fields = [f for f in state.__dataclass_fields__ if isinstance(getattr(state, f), jax.Array)]
            raise ValueError(
                f"Population {pop.name!r} initial value for unknown state variable {name!r}; "
                f"{type(pop.neuron).__name__} has {fields}."
            )


def _input_names(model: NetworkModel) -> list[str]:
    names, seen = [], {}
    for inp, t in zip(model.inputs, model.input_targets):
        base = f"{type(inp).__name__}->{model.populations[t].name}"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return names


def _getter(root: Callable, path) -> Callable:
    """`m -> root(m)` followed by the attribute / index steps of a tree path."""

    def get(m):
        x = root(m)
        for key in path:
            if isinstance(key, jax.tree_util.GetAttrKey):
                x = getattr(x, key.name)
            elif isinstance(key, jax.tree_util.SequenceKey):
                x = x[key.idx]
            else:
                x = x[key.key]
        return x

    return get


def _path_name(path) -> str:
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.GetAttrKey):
            parts.append(key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
        else:
            parts.append(str(key.key))
    return ".".join(parts)


def _parameter_paths(model: NetworkModel) -> dict[str, Callable]:
    """Name -> getter of every float parameter leaf (see `NetworkModel.params`)."""
    out: dict[str, Callable] = {}

    def add(owner: str, root: Callable, tree: Any, prefix: str = "") -> None:
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            if eqx.is_inexact_array(leaf):
                name = ".".join(filter(None, [owner, prefix, _path_name(path)]))
                out[name] = _getter(root, path)

    for i, pop in enumerate(model.populations):
        add(pop.name, lambda m, i=i: m.populations[i].neuron, pop.neuron)
    shared = {idx[0]: name for name, idx in _groups(model)}
    followers = {j for _, idx in _groups(model) for j in idx[1:]}
    for j, proj in enumerate(model.projections):
        # The container's weight field is the one parameter; the rest is structure. A
        # constrained projection's parameters are the constraint's free values. A
        # weight shared by the targets of one Projection is named once, by the group.
        if j in followers:
            pass
        elif j in shared:
            add(shared[j], lambda m, j=j: m.projections[j].weights.weights, proj.weights.weights,
                "weight")
        elif isinstance(proj.weights, ConstrainedWeights):
            add(proj.name, lambda m, j=j: m.projections[j].weights.free, proj.weights.free,
                "weight.free")
        else:
            add(proj.name, lambda m, j=j: m.projections[j].weights.weights, proj.weights.weights,
                "weight")
        add(proj.name, lambda m, j=j: m.projections[j].synapse, proj.synapse, "synapse")
        add(proj.name, lambda m, j=j: m.projections[j].receptor, proj.receptor, "receptor")
        if proj.plasticity is not None:
            add(proj.name, lambda m, j=j: m.projections[j].plasticity, proj.plasticity, "plasticity")
    for k, name in enumerate(_input_names(model)):
        add(name, lambda m, k=k: m.inputs[k], model.inputs[k])
    for k, mod in enumerate(model.modulators):
        add(mod.name, lambda m, k=k: m.modulators[k].signal, mod.signal, "signal")
    return out


def _groups(model: NetworkModel) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The shared-weight groups of a model's projections (see `SharedProjections`)."""
    return getattr(model.projections, "groups", ())


def _like(name: str, value: Any, old: Array, n_neurons: int | None) -> Array:
    """`value` as a replacement for the parameter `name` currently equal to `old`."""
    value = jnp.asarray(value, dtype=old.dtype)
    if value.shape == old.shape:
        return value
    if value.ndim == 0:
        return jnp.broadcast_to(value, old.shape)
    if old.ndim == 0 and n_neurons is not None and value.shape == (n_neurons,):
        return value
    allowed = f"{old.shape}" + ("" if n_neurons is None else f" or ({n_neurons},) per neuron")
    raise ValueError(
        f"replace: {name!r} has shape {old.shape}; got a value of shape {value.shape} "
        f"(allowed: a scalar, {allowed})."
    )
