r"""e-prop: online learning of recurrent spiking networks (Bellec et al. 2020).

BPTT keeps every step's state for the backward pass, so its memory grows with the
trial length $T$. e-prop factorises the gradient of a loss $E$ into a *learning signal*
$L_j^t$ (the readout error sent back to neuron $j$) and an *eligibility trace*
$e_{ji}^t$ (how synapse $i \to j$ affected $z_j^t$ through $j$'s own state), both
computed forward in time:

$$\frac{dE}{dW_{ji}} \approx \sum_t L_j^t\, \bar e_{ji}^t, \qquad
L_j^t = \sum_k B_{jk}\, \frac{\partial E}{\partial y_k^t}, \qquad
\bar e_{ji}^t = \kappa\, \bar e_{ji}^{t-1} + e_{ji}^t,$$

with the eligibility vector $\epsilon_{ji}^t = \frac{\partial h_j^t}{\partial h_j^{t-1}}
\epsilon_{ji}^{t-1} + \frac{\partial h_j^t}{\partial W_{ji}}$ and
$e_{ji}^t = \frac{\partial z_j^t}{\partial h_j^{t-1}} \epsilon_{ji}^{t-1} +
\frac{\partial z_j^t}{\partial W_{ji}}$ (Bellec et al. 2020, eqs. 13-14, 28; for a LIF
neuron $\epsilon_{ji}^t$ is the presynaptic spike train low-pass filtered with the
membrane's decay and $e_{ji}^t = \psi_j^t \bar z_i^t$). Here the per-neuron derivatives
($\partial h^t / \partial h^{t-1}$, a $k \times k$ matrix for a neuron with $k$ state
variables, and the derivatives with respect to the synaptic charge and the input
current) come from a forward-mode linearisation of the population's own
`neuron.step`, so the same code serves LIF and adaptive neurons, and the dynamics are
exactly those `nj.simulate` integrates. For `nj.neurons.ALIF` (state $v$, $a$) the
linearisation yields the adaptation component of the eligibility vector,
$\epsilon^a_{ji} \leftarrow \psi_j \epsilon^v_{ji} + (\rho - \psi_j \beta)\,
\epsilon^a_{ji}$ and $e_{ji} = \psi_j (\epsilon^v_{ji} - \beta \epsilon^a_{ji})$
(Bellec et al. 2020, Methods; up to this library's hard reset and its decay of $a$
before the threshold test), without which the estimate would miss the threshold's
memory of the neuron's own spikes; `AdEx` works the same way. The memory is that of the traces,
$O(k N (N + n_{in}))$ per trial, whatever $T$.

The readout is leaky, $y^t = \kappa y^{t-1} + W^{out} z^t$, output $y^t + b$, with
$\kappa = e^{-dt/\tau_{out}}$ (`leaky_readout`). Feedback $B$ is either the readout's
own weights (`"symmetric"`, $B = W^{out\,\top}$) or any fixed matrix (random feedback,
Lillicrap et al. 2016). Without recurrent weights and with symmetric feedback the
estimate is the exact gradient (the factorisation only drops the paths through other
neurons' spikes); with recurrence it is an approximation.

`eprop_loss` returns the masked mean squared readout error of one trial; its value is
exact and its gradient (under `jax.grad`, hence `nj.train.fit`) is the e-prop estimate,
computed in the forward pass and passed back through a custom VJP. Parameterisations
upstream of the weight matrix (e.g. `nj.train.Dale`) are differentiated as usual, so
Dale's law holds after every update.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._abstract import Drive
from ..synapses import Current, Delta


def _kappa(dt, tau_out) -> float:
    for name, value in (("dt", dt), ("tau_out", tau_out)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0 < value < math.inf):
            raise ValueError(f"{name} [ms] must lie in (0, inf), got {value!r}.")
    return math.exp(-dt / tau_out)


def leaky_readout(spikes: Array, w_out: Array, b_out: Array, *, dt: float, tau_out: float
                  ) -> Array:
    r"""The leaky readout of a spike train: $y^t = \kappa y^{t-1} + W^{out} z^t$,
    returned as $y^t + b$, with $\kappa = e^{-dt/\tau_{out}}$.

    **Arguments:**

    - `spikes`: `(steps, n)` spikes (0/1 floats, e.g. `Record(float_spikes=True)`).
    - `w_out`: `(n_out, n)` readout weights.
    - `b_out`: `(n_out,)` bias.
    - `dt`: Step [ms], in (0, inf).
    - `tau_out`: Readout time constant [ms], in (0, inf).
    """
    kappa = _kappa(dt, tau_out)
    drive = spikes @ w_out.T

    def step(y, x):
        y = kappa * y + x
        return y, y

    _, y = jax.lax.scan(step, jnp.zeros(drive.shape[1:], drive.dtype), drive)
    return y + b_out[None, :]


def _recurrent(net, projection):
    """(population index, projection index) of the trained recurrent projection, checked."""
    from ..network import NetworkModel

    if not isinstance(net, NetworkModel):
        raise ValueError(f"eprop net must be a built network (Network.build), got {type(net)}.")
    if projection is None:
        cands = [j for j, p in enumerate(net.projections) if p.pre == p.post]
        if len(cands) != 1:
            raise ValueError(
                "eprop projection: pass the name of the recurrent projection to train; the "
                f"network has {[p.name for p in net.projections]}.")
        j = cands[0]
    else:
        j = net._projection_index(projection)
    proj = net.projections[j]
    pop = net.populations[proj.post]
    if proj.pre != proj.post:
        raise ValueError(f"eprop projection {proj.name!r} must be recurrent (pre == post).")
    if len(net.projections) != 1:
        raise ValueError(
            "eprop supports a network with exactly one projection (the recurrent one); got "
            f"{[p.name for p in net.projections]}.")
    if not pop.neuron.spiking:
        raise ValueError(f"eprop population {pop.name!r} must be spiking.")
    if not isinstance(proj.synapse, Delta) or not isinstance(proj.receptor, Current):
        raise ValueError(
            f"eprop projection {proj.name!r} must use synapse=Delta() and receptor=Current() "
            f"(charge [pA ms] per spike), got {type(proj.synapse).__name__} and "
            f"{type(proj.receptor).__name__}.")
    if proj.plasticity is not None or proj.compartments is not None:
        raise ValueError(f"eprop projection {proj.name!r} must be static and point-neuron.")
    return proj.post, j


def _check_trial(inputs, targets, mask, w_in, w_out, b_out, n, feedback):
    if inputs.ndim != 2:
        raise ValueError(f"eprop inputs must have shape (steps, n_in), got {inputs.shape}.")
    steps, n_in = inputs.shape
    if w_in.shape != (n, n_in):
        raise ValueError(f"eprop w_in [pA] must have shape ({n}, {n_in}), got {w_in.shape}.")
    if w_out.ndim != 2 or w_out.shape[1] != n:
        raise ValueError(f"eprop w_out must have shape (n_out, {n}), got {w_out.shape}.")
    n_out = w_out.shape[0]
    if b_out.shape != (n_out,):
        raise ValueError(f"eprop b_out must have shape ({n_out},), got {b_out.shape}.")
    for name, x in (("targets", targets), ("mask", mask)):
        if x.shape != (steps, n_out):
            raise ValueError(
                f"eprop {name} must have shape (steps, n_out) = ({steps}, {n_out}) like the "
                f"inputs and the readout, got {x.shape}.")
    if isinstance(feedback, str):
        if feedback != "symmetric":
            raise ValueError(
                f"eprop feedback must be 'symmetric' or an (n_out, n) = ({n_out}, {n}) array "
                f"of fixed (e.g. random) feedback weights, got {feedback!r}.")
    elif jnp.shape(feedback) != (n_out, n):
        raise ValueError(
            f"eprop feedback must be 'symmetric' or an (n_out, n) = ({n_out}, {n}) array, "
            f"got shape {jnp.shape(feedback)}.")


def _scan(params, net, pop_i, inputs, targets, mask, feedback, dt, kappa, collect=True):
    """The forward pass with eligibility traces: (loss, grads, readout, spikes)."""
    w_rec, w_in, w_out, b_out = params
    pop = net.populations[pop_i]
    neuron, proj = pop.neuron, net.projections[0]
    n, n_in = w_in.shape
    h0 = pop.init(jax.random.key(0))
    h_leaves, h_def = jax.tree.flatten(h0)
    k = len(h_leaves)
    B = jax.lax.stop_gradient(w_out) if isinstance(feedback, str) else jnp.asarray(feedback)
    norm = jnp.maximum(jnp.sum(mask), 1.0)
    inp_states = tuple(inp.init(net.populations[t].n, key=jax.random.key(0))
                       for inp, t in zip(net.inputs, net.input_targets))

    def cell(hl, arr, i_in, ext):
        d = ext + proj.receptor.drive(arr, True) + Drive(i_in, jnp.zeros(n), jnp.zeros(n),
                                                         jnp.zeros(n))
        h, z = neuron.step(jax.tree.unflatten(h_def, hl), d, dt)
        return jax.tree.leaves(h), z

    def step(carry, xs):
        (idx, hl, z_prev, st, eps_r, eps_i, eb_r, eb_i, zhat, y, g_r, g_i, g_o, g_b, loss) = carry
        u, tgt, m = xs
        t = idx * dt
        ext = Drive.zeros(n)
        new_st = []
        for inp, target, s in zip(net.inputs, net.input_targets, st):
            s, d = inp.step(s, t, dt)
            new_st.append(s)
            if target == pop_i:
                ext = ext + d
        arr = w_rec @ z_prev
        i_in = w_in @ u
        (hl_new, z), lin = jax.linearize(lambda a, b, c: cell(a, b, c, ext), hl, arr, i_in)
        zeros_h = [jnp.zeros_like(x) for x in hl]
        tangents = [([jnp.ones_like(x) if j == m_ else jnp.zeros_like(x)
                      for j, x in enumerate(hl)], jnp.zeros(n), jnp.zeros(n)) for m_ in range(k)]
        tangents += [(zeros_h, jnp.ones(n), jnp.zeros(n)), (zeros_h, jnp.zeros(n), jnp.ones(n))]
        outs = [lin(*tan) for tan in tangents]
        A = jnp.stack([jnp.stack(o[0]) for o in outs[:k]], 1)  # (k', k, n): dh'[k'] / dh[k]
        c = jnp.stack([o[1] for o in outs[:k]])                 # (k, n): dz / dh[k]
        b_q, d_q = jnp.stack(outs[k][0]), outs[k][1]             # (k, n), (n,)
        b_i, d_i = jnp.stack(outs[k + 1][0]), outs[k + 1][1]
        e_r = jnp.einsum("mj,mji->ji", c, eps_r) + d_q[:, None] * z_prev[None, :]
        e_i = jnp.einsum("mj,mji->ji", c, eps_i) + d_i[:, None] * u[None, :]
        eps_r = jnp.einsum("pmj,mji->pji", A, eps_r) + b_q[:, :, None] * z_prev[None, None, :]
        eps_i = jnp.einsum("pmj,mji->pji", A, eps_i) + b_i[:, :, None] * u[None, None, :]
        eb_r = kappa * eb_r + e_r
        eb_i = kappa * eb_i + e_i
        z = jax.lax.stop_gradient(z)
        zhat = kappa * zhat + z
        y = kappa * y + w_out @ z
        out = y + b_out
        err = 2.0 * m * (out - tgt) / norm  # dE / dy^t
        loss = loss + jnp.sum(m * (out - tgt) ** 2) / norm
        sig = B.T @ err  # learning signal L_j^t
        g_r = g_r + sig[:, None] * eb_r
        g_i = g_i + sig[:, None] * eb_i
        g_o = g_o + err[:, None] * zhat[None, :]
        g_b = g_b + err
        carry = (idx + 1, hl_new, z, tuple(new_st), eps_r, eps_i, eb_r, eb_i, zhat, y, g_r, g_i, g_o,
                 g_b, loss)
        return carry, ((out, z) if collect else None)

    f = w_rec.dtype
    n_out = w_out.shape[0]
    carry = (jnp.zeros((), jnp.int32), h_leaves, jnp.zeros(n, f), inp_states, jnp.zeros((k, n, n), f),
             jnp.zeros((k, n, n_in), f), jnp.zeros((n, n), f), jnp.zeros((n, n_in), f),
             jnp.zeros(n, f), jnp.zeros(n_out, f), jnp.zeros((n, n), f), jnp.zeros((n, n_in), f),
             jnp.zeros((n_out, n), f), jnp.zeros(n_out, f), jnp.zeros((), f))
    steps = inputs.shape[0]
    carry, ys = jax.lax.scan(step, carry, (inputs, targets, mask))
    loss, grads = carry[-1], (carry[10], carry[11], carry[12], carry[13])
    return (loss, grads) + (ys if collect else (None, None))


@eqx.filter_custom_vjp
def _eprop_core(params, net, pop_i, inputs, targets, mask, feedback, dt, kappa):
    return _scan(params, net, pop_i, inputs, targets, mask, feedback, dt, kappa, False)[0]


@_eprop_core.def_fwd
def _eprop_fwd(perturbed, params, net, pop_i, inputs, targets, mask, feedback, dt, kappa):
    loss, grads, _, _ = _scan(params, net, pop_i, inputs, targets, mask, feedback, dt, kappa,
                              False)
    return loss, grads


@_eprop_core.def_bwd
def _eprop_bwd(grads, g_loss, perturbed, params, net, pop_i, inputs, targets, mask, feedback,
               dt, kappa):
    return jax.tree.map(lambda g, p: g_loss * g if p else None, grads, perturbed)


def _prepare(net, w_in, w_out, b_out, inputs, targets, mask, dt, tau_out, feedback, projection):
    kappa = _kappa(dt, tau_out)
    pop_i, j = _recurrent(net, projection)
    n = net.populations[pop_i].n
    inputs, targets, mask = (jnp.asarray(x, float) for x in (inputs, targets, mask))
    w_in, w_out, b_out = (jnp.asarray(x) for x in (w_in, w_out, b_out))
    _check_trial(inputs, targets, mask, w_in, w_out, b_out, n, feedback)
    net.check(dt)
    w_rec = net.projections[j].weights.matrix()
    return (w_rec, w_in, w_out, b_out), pop_i, inputs, targets, mask, kappa


def eprop_loss(net: Any, w_in: Array, w_out: Array, b_out: Array, inputs: Array,
               targets: Array, mask: Array, *,
               dt: float, tau_out: float, feedback: Any = "symmetric",
               projection: str | None = None) -> Array:
    r"""Masked mean squared error of a leaky readout of one trial, whose gradient is the
    e-prop estimate (module docstring).

    The network runs exactly as `nj.simulate` runs it: the population's own neuron step,
    the recurrent projection's charge $W z^{t-1}$ (delta synapses, one-step delay), the
    network's inputs (e.g. a `Constant` bias), plus the task input current
    $W^{in} u^t$ [pA]. The loss is
    $\sum_t \sum_k m_k^t (y_k^t + b_k - y_k^{*t})^2 / \sum m$ with
    `leaky_readout`.

    `jax.grad` of it with respect to the recurrent weights (through any constraint such
    as `nj.train.Dale`), `w_in`, `w_out` and `b_out` gives e-prop's estimate; other leaves
    of `net` (time constants, thresholds) get zero gradient.

    **Arguments:**

    - `net`: A built network with one spiking population and one recurrent `Dense`
      projection (`Delta()` synapse, `Current()` receptor).
    - `w_in`: `(n, n_in)` input weights [pA per input unit].
    - `w_out`: `(n_out, n)` readout weights; `b_out`: `(n_out,)` bias.
    - `inputs`, `targets`, `mask`: One trial, `(steps, n_in)`, `(steps, n_out)`,
      `(steps, n_out)` (e.g. a slice of `nj.train.tasks` trials).
    - `dt`: Step [ms], in (0, inf); `tau_out`: readout time constant [ms], in (0, inf).
    - `feedback`: `"symmetric"` ($B = W^{out\top}$) or a fixed `(n_out, n)` array
      (random feedback).
    - `projection`: Name of the recurrent projection (default: the only one).
    """
    params, pop_i, inputs, targets, mask, kappa = _prepare(
        net, w_in, w_out, b_out, inputs, targets, mask, dt, tau_out, feedback, projection)
    # Only `params` carry a gradient (the weight matrix was read from `net` above, through
    # any constraint); the rest of the network passes none.
    fixed = jax.tree.map(lambda x: jax.lax.stop_gradient(x) if eqx.is_inexact_array(x) else x,
                         (net, inputs, targets, mask, feedback))
    return _eprop_core(params, fixed[0], pop_i, *fixed[1:], dt, kappa)


def eprop_run(net: Any, w_in, w_out, b_out, inputs, targets, mask, *, dt: float,
              tau_out: float, feedback: Any = "symmetric", projection: str | None = None):
    """The e-prop forward pass of one trial, as a dict: `loss`, `readout` `(steps, n_out)`
    (with bias), `spikes` `(steps, n)` and `grads`, the e-prop estimate as
    `{"w_rec", "w_in", "w_out", "b_out"}` (with respect to the recurrent weight *matrix*,
    not to a constraint's free parameters). Arguments as `eprop_loss`."""
    params, pop_i, inputs, targets, mask, kappa = _prepare(
        net, w_in, w_out, b_out, inputs, targets, mask, dt, tau_out, feedback, projection)
    loss, grads, out, z = _scan(params, net, pop_i, inputs, targets, mask, feedback, dt, kappa)
    return {"loss": loss, "readout": out, "spikes": z,
            "grads": dict(zip(("w_rec", "w_in", "w_out", "b_out"), grads))}
