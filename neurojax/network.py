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
   its receptor turns the synaptic variable into a `Drive` for the target population.
2. Every input advances and adds its `Drive`.
3. Every population advances its neurons under the summed drive and emits its output
   (0/1 spikes, or graded rates for rate units).
4. Every projection propagates its presynaptic population's new output through its
   weights into the ring buffer slot `d` steps ahead.

**Delays.** A projection's delay `d` [ms] becomes `max(1, round(d / dt))` steps: the
minimum is one step, so a spike emitted in step `k` first acts in step `k + 1` (as in
Brian2 and NEST). Brunel's D = 1.5 ms at dt = 0.1 ms is 15 steps. Per-synapse delays
(an array or a distribution) are rounded the same way, synapse by synapse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, PRNGKeyArray

from ._abstract import AbstractInput, AbstractModel, AbstractNeuron, Drive
from ._misc import check_dt, check_range, checking, validate
from .connectivity.builders import AbstractConnectivity
from .connectivity.procedural import Procedural, ProceduralWeights
from .connectivity.weights import (
    DEFAULT_CHUNK,
    Dense,
    DenseWeights,
    Sparse,
    SparseWeights,
    compact_events,
    to_ell,
)
from .distributions import AbstractDistribution
from .synapses.kinetics import AbstractKinetics, Delta
from .synapses.receptors import AbstractReceptor, Current


class Population(eqx.Module):
    """A named group of `n` neurons of one model.

    **Arguments:**

    - `name`: Unique name, used by projections, inputs and recordings.
    - `n`: Number of neurons.
    - `neuron`: The neuron model (any `AbstractNeuron`), scalar or per-neuron params.
    - `initial`: Optional initial values of state variables, e.g.
      `{"v": nj.Uniform(-60.0, -50.0)}`: a distribution, a scalar or an `(n,)` array
      per variable name (units of that variable).
    """

    name: str = eqx.field(static=True)
    n: int = eqx.field(static=True)
    neuron: AbstractNeuron
    initial: dict[str, Any] = eqx.field(default_factory=dict)

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
      distribution or `(n_post, n_pre)` array read per synapse. At least one step.
    - `layout`: `nj.connectivity.Dense()`, `nj.connectivity.Sparse(chunk=..., kernel=...,
      capacity=...)` or `None` to choose: dense for graded (rate) presynaptic output or
      density above 25 %, otherwise sparse event-driven.
    - `initial`: Optional initial value of the synaptic variable (e.g. a distribution
      of conductances [nS]), per postsynaptic neuron.
    - `name`: Optional name; defaults to `"pre->post"`.
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

    def __init__(self, pre, post, connectivity, weight=1.0, synapse=Delta(), receptor=Current(),
                 delay=0.0, layout=None, initial=None, name=None):
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
        if not isinstance(connectivity, AbstractConnectivity):
            raise ValueError(
                "Projection connectivity must be a connectivity rule (nj.connectivity.*), "
                f"got {type(connectivity).__name__}."
            )
        if np.ndim(delay) == 0 and not isinstance(delay, AbstractDistribution):
            check_range(delay, "Projection delay", "ms", low=0.0)

    @property
    def posts(self) -> tuple[str, ...]:
        return (self.post,) if isinstance(self.post, str) else self.post


class BuiltProjection(eqx.Module):
    """A projection with its synapses materialised (see `Projection`)."""

    name: str = eqx.field(static=True)
    pre: int = eqx.field(static=True)
    post: int = eqx.field(static=True)
    weights: DenseWeights | SparseWeights | ProceduralWeights
    synapse: AbstractKinetics
    receptor: AbstractReceptor
    delay: float = eqx.field(static=True)  # homogeneous delay, or the largest one [ms]
    initial: Any

    def delay_steps(self, dt: float) -> int:
        return max(1, int(round(self.delay / dt)))


class NetworkState(eqx.Module):
    step: Int[Array, ""]  # steps taken since init; time is step * dt [ms]
    neurons: tuple  # one state per population
    synapses: tuple  # one kinetics state per projection
    buffers: tuple  # one (slots, n_post) ring buffer per projection
    inputs: tuple  # one state per input


class NetworkModel(AbstractModel[NetworkState]):
    """A built network: every parameter is an array leaf (differentiable, vmappable,
    replaceable with `eqx.tree_at` or `replace` without rebuilding connectivity)."""

    populations: tuple[Population, ...]
    projections: tuple[BuiltProjection, ...]
    inputs: tuple[AbstractInput, ...]
    input_targets: tuple[int, ...] = eqx.field(static=True)

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
            n_post = self.populations[proj.post].n
            init = proj.initial
            if isinstance(init, AbstractDistribution):
                init = init.sample(k, (n_post,))
            elif init is not None:
                init = jnp.broadcast_to(jnp.asarray(init, float), (n_post,))
            synapses.append(proj.synapse.init(n_post, init))
            buffers.append(jnp.zeros((proj.delay_steps(dt), n_post), float))
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
        )

    def step(
        self, state: NetworkState, t, dt: float, *, exchange: Callable | None = None
    ) -> tuple[NetworkState, tuple]:
        """Advance every component by `dt` [ms] in the order of the module docstring;
        returns the new state and each population's output (spikes or rates).

        `exchange`, if given, maps each population's index and output to the output
        that its projections propagate (an all-gather across devices when the neurons
        are split over a mesh, see `neurojax.sharding`)."""
        k = state.step
        drives = [Drive.zeros(pop.n) for pop in self.populations]
        synapses, buffers = [], []
        for proj, syn, buf in zip(self.projections, state.synapses, state.buffers):
            slot = k % buf.shape[0]
            arrivals = buf[slot]
            buffers.append(buf.at[slot].set(0.0))
            syn, s = proj.synapse.step(syn, arrivals, dt)
            synapses.append(syn)
            drives[proj.post] = drives[proj.post] + proj.receptor.drive(s, proj.synapse.instantaneous)
        inputs = []
        for inp, target, inp_state in zip(self.inputs, self.input_targets, state.inputs):
            inp_state, d = inp.step(inp_state, t, dt)
            inputs.append(inp_state)
            drives[target] = drives[target] + d
        neurons, outputs = [], []
        for pop, neu, drive in zip(self.populations, state.neurons, drives):
            neu, out = pop.neuron.step(neu, drive, dt)
            neurons.append(neu)
            outputs.append(out)
        presynaptic = (
            outputs if exchange is None else [exchange(i, o) for i, o in enumerate(outputs)]
        )
        # Compact each population's events once, however many sparse projections it has.
        events = {
            proj.pre: compact_events(presynaptic[proj.pre])
            for proj in self.projections
            if proj.weights.event_driven
        }
        for j, proj in enumerate(self.projections):
            buffers[j] = proj.weights.deliver(
                buffers[j], presynaptic[proj.pre], k, proj.delay_steps(dt), dt, events.get(proj.pre)
            )
        new = NetworkState(
            step=k + 1,
            neurons=tuple(neurons),
            synapses=tuple(synapses),
            buffers=tuple(buffers),
            inputs=tuple(inputs),
        )
        return new, tuple(outputs)


def _split(key, n):
    return jax.random.split(key, max(n, 1))[:n]


class Network(eqx.Module):
    """An unbuilt network: populations, projections and inputs as plain data.

    `build(key)` validates names and samples connectivity into a `NetworkModel`.
    """

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    inputs: tuple[AbstractInput, ...]

    def __init__(self, populations: Sequence[Population], projections: Sequence[Projection] = (),
                 inputs: Sequence[AbstractInput] = ()):
        self.populations = tuple(populations)
        self.projections = tuple(projections)
        self.inputs = tuple(inputs)
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

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise ValueError(f"unknown population {name!r}; the network has {[p.name for p in self.populations]}.")

    def build(self, key: PRNGKeyArray) -> NetworkModel:
        """Sample connectivity, weights and delays into arrays; returns the model."""
        names = [p.name for p in self.populations]
        keys = _split(key, sum(len(p.posts) for p in self.projections) + len(self.populations))
        built, i = [], 0
        for proj in self.projections:
            for post_name in proj.posts:
                built.append(self._build_projection(proj, names.index(proj.pre), names.index(post_name), keys[i]))
                i += 1
        for pop, k in zip(self.populations, keys[i:]):
            _check_initial_names(pop, k)
        return NetworkModel(
            populations=self.populations,
            projections=tuple(built),
            inputs=self.inputs,
            input_targets=tuple(names.index(inp.target) for inp in self.inputs),
        )

    def _build_projection(self, proj: Projection, pre: int, post: int, key) -> BuiltProjection:
        pre_pop, post_pop = self.populations[pre], self.populations[post]
        n_pre, n_post = pre_pop.n, post_pop.n
        name = proj.name or f"{pre_pop.name}->{post_pop.name}"
        if len(proj.posts) > 1 and proj.name:
            name = f"{proj.name}:{post_pop.name}"
        k_syn, k_w, k_d = jax.random.split(key, 3)
        if isinstance(proj.connectivity, Procedural):
            # Synapses are regenerated from a seed at each step: nothing is sampled here.
            container = proj.connectivity.build(
                k_syn, n_pre, n_post, pre == post, proj.weight, proj.delay, proj.layout, name
            )
            return BuiltProjection(
                name=name, pre=pre, post=post, weights=container, synapse=proj.synapse,
                receptor=proj.receptor, delay=float(proj.delay), initial=proj.initial,
            )
        syn = proj.connectivity.sample(k_syn, n_pre, n_post, pre == post)
        weights = _per_synapse(proj.weight, syn, n_pre, n_post, k_w, f"{name} weight", "receptor units")
        if syn.values is not None:
            # A scalar weight scales the matrix entries (None from _per_synapse means
            # the scalar `proj.weight`, which must not be dropped here).
            weights = syn.values * (float(proj.weight) if weights is None else weights)
        if np.ndim(proj.delay) == 0 and not isinstance(proj.delay, AbstractDistribution):
            delays, max_delay = None, float(proj.delay)
        else:
            delays = _per_synapse(proj.delay, syn, n_pre, n_post, k_d, f"{name} delay", "ms")
            check_range(delays, f"{name} delay", "ms", low=0.0)
            max_delay = float(delays.max()) if delays.size else 0.0
        layout = proj.layout
        if layout is None:
            density = syn.pre.size / float(n_pre * n_post)
            dense = (not pre_pop.neuron.spiking) or density > 0.25
            layout = Dense() if dense and delays is None else Sparse()
        if isinstance(layout, Dense):
            if delays is not None:
                raise ValueError(
                    f"{name}: per-synapse delays need the Sparse layout; got layout=Dense()."
                )
            w = np.zeros((n_post, n_pre))
            np.add.at(w, (syn.post, syn.pre), 1.0 if weights is None else weights)
            container = DenseWeights(weights=jnp.asarray(w * (proj.weight if weights is None else 1.0)))
        else:
            per_syn = {}
            if weights is not None:
                per_syn["weights"] = weights
            if delays is not None:
                per_syn["delays"] = delays
            targets, packed = to_ell(syn.pre, syn.post, n_pre, n_post, per_syn)
            w = packed["weights"] if weights is not None else np.asarray(proj.weight, float)
            container = SparseWeights(
                weights=jnp.asarray(w, float),
                targets=jnp.asarray(targets),
                delays=jnp.asarray(packed["delays"]) if delays is not None else None,
                n_post=n_post,
                chunk=DEFAULT_CHUNK if layout.chunk is None else layout.chunk,
                kernel=layout.kernel,
                capacity=layout.capacity,
            )
        return BuiltProjection(
            name=name, pre=pre, post=post, weights=container, synapse=proj.synapse,
            receptor=proj.receptor, delay=max_delay, initial=proj.initial,
        )


def _per_synapse(spec, syn, n_pre, n_post, key, what, unit):
    """Per-synapse values from a scalar (returns None: homogeneous), a distribution or
    a (n_post, n_pre) array."""
    if isinstance(spec, AbstractDistribution):
        return np.asarray(spec.sample(key, (syn.pre.size,)), float)
    arr = np.asarray(spec, dtype=float)
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
