"""Write your own neuron: a quadratic integrate-and-fire (QIF) population.

The code of docs/guides/custom-neuron.md, run as it stands by tests/test_guides.py
(`python docs/guides/custom_neuron.py` prints what each part checks).
"""

# --8<-- [start:model]
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

import neurojax as nj

jax.config.update("jax_enable_x64", True)  # the f-I check below compares to 0.5 %


class QIFState(eqx.Module):
    """Everything that changes over time: arrays of shape `(n,)`, nothing else."""

    v: Float[Array, " n"]  # membrane potential [mV]
    refractory: Float[Array, " n"]  # time left in the refractory period [ms]


class QIF(nj.AbstractNeuron[QIFState]):
    r"""Quadratic integrate-and-fire neurons (Ermentrout & Kopell 1986; Izhikevich 2007,
    ch. 8), written in neurojax's units:

    $$C_m \frac{dv}{dt} = k\,(v - E_L)(v - v_c) + I(v), \qquad k = \frac{g_L}{v_c - E_L},$$

    rest at $E_L$, the unstable fixed point at the critical potential $v_c$. At `v_peak`
    the neuron spikes; $v$ is set to `v_reset` and held for `t_ref`. Forward Euler on
    the membrane (the drive's current at the start of the step), delta-synapse charge
    at the end of the step.

    **Arguments:**

    - `c_m`: Membrane capacitance [pF].
    - `g_l`: Leak conductance at rest [nS] (the slope of the I-V curve there).
    - `e_l`: Resting potential [mV].
    - `v_c`: Critical potential [mV], above `e_l`.
    - `v_peak`: Spike cut-off [mV], above `v_c`.
    - `v_reset`: Reset potential [mV], below `v_c`.
    - `t_ref`: Absolute refractory period [ms].
    - `surrogate`: Spike function and its surrogate gradient.

    Each parameter is a scalar or an array of shape `(n,)`.
    """

    # Parameters are array fields: leaves that jax.grad differentiates and vmap batches.
    c_m: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=200.0)
    g_l: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=10.0)
    e_l: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=-65.0)
    v_c: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=-50.0)
    v_peak: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=0.0)
    v_reset: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=-60.0)
    t_ref: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=1.0)
    # A module, not a parameter: its slope shapes only the backward pass.
    surrogate: nj.surrogate.AbstractSurrogate = nj.surrogate.FastSigmoid()

    def __check_init__(self):
        # Build-time validation of concrete values (inside jit or vmap the fields are
        # tracers, which `check` below handles).
        if not isinstance(self.v_c, jax.core.Tracer) and np.any(
            np.asarray(self.v_reset) >= np.asarray(self.v_c)
        ):
            raise ValueError("QIF v_reset [mV] must lie below v_c [mV].")

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> QIFState:
        # Deterministic resting state: `key` is unused (it is there for stochastic
        # models); `Population(initial=...)` overrides fields by name.
        v = jnp.broadcast_to(self.e_l, (n,)).astype(float)
        return QIFState(v=v, refractory=jnp.zeros((n,), v.dtype))

    def step(self, state: QIFState, drive: nj.Drive, dt: float):
        k = self.g_l / (self.v_c - self.e_l)  # [nS/mV]
        i_intrinsic = k * (state.v - self.e_l) * (state.v - self.v_c)  # [pA]
        v = state.v + dt * (i_intrinsic + drive.current(state.v)) / self.c_m  # [pA/pF] = [mV/ms]
        v = v + drive.charge(v) / self.c_m  # [mV] = [pA·ms] / [pF]
        # Refractory neurons are held at reset; the input of the step is discarded.
        held = state.refractory > 0.5 * dt
        v = jnp.where(held, self.v_reset, v)
        # The QIF reaches infinity in finite time, but an Euler step crosses the peak by
        # a finite amount and the neuron is reset in that same step. So v is not clipped
        # at the peak: a clipped v would be constant there and pass no gradient to the
        # spike's surrogate.
        spikes = self.surrogate(v - self.v_peak)  # float 0/1, surrogate derivative
        fired = spikes > 0
        # No gradient through the reset (the library's `detach_reset=True` default).
        v = jnp.where(fired, self.v_reset, v)
        refractory = jnp.where(fired, self.t_ref, jnp.maximum(state.refractory - dt, 0.0))
        return QIFState(v=v, refractory=refractory), spikes

    def check(self, n: int, dt: float) -> None:
        # Called once per simulation before tracing the scan, but possibly with traced
        # parameters (under jax.grad, vmap or jit), so only shapes are certain and value
        # checks run on concrete values.
        for name in ("c_m", "g_l", "e_l", "v_c", "v_peak", "v_reset", "t_ref"):
            if jnp.shape(getattr(self, name)) not in ((), (n,)):
                raise ValueError(f"QIF {name} must be a scalar or have shape ({n},), "
                                 f"got {jnp.shape(getattr(self, name))}.")
        tau = self.c_m / self.g_l  # [ms]
        if not isinstance(tau, jax.core.Tracer) and dt > 0.1 * float(jnp.min(tau)):
            raise ValueError(f"QIF forward Euler needs dt [ms] <= tau/10 = "
                             f"{0.1 * float(jnp.min(tau)):g} ms, got dt = {dt:g} ms.")
# --8<-- [end:model]


# --8<-- [start:fi]
def qif_rate(neuron: QIF, current):
    """The QIF's rate [Hz] under a constant current [pA], in closed form: the time from
    v_reset to v_peak is an arctangent integral, plus t_ref."""
    k = float(neuron.g_l / (neuron.v_c - neuron.e_l))
    m = 0.5 * float(neuron.e_l + neuron.v_c)
    d = current / k - (0.5 * float(neuron.v_c - neuron.e_l)) ** 2  # [mV^2], > 0 fires
    root = np.sqrt(np.maximum(d, 1e-12))
    travel = float(neuron.c_m) / (k * root) * (
        np.arctan((float(neuron.v_peak) - m) / root) - np.arctan((float(neuron.v_reset) - m) / root)
    )
    return np.where(d > 0, 1e3 / (travel + float(neuron.t_ref)), 0.0)


def f_i_curve(dt=0.01):
    """100 unconnected QIF neurons, one constant current each: the simulated rates
    (from the mean interspike interval, which unlike a spike count is not rounded to
    whole spikes) against the closed form."""
    currents = np.linspace(0.0, 600.0, 100)  # [pA]; rheobase k (v_c - e_l)^2 / 4 = 37.5
    qif = QIF()
    net = nj.Network([nj.Population("Q", 100, qif)], [],
                     inputs=[nj.inputs.Constant("Q", amplitude=currents)])
    model = net.build(jax.random.key(0))
    res = nj.simulate(model, 500.0, dt, key=jax.random.key(1))
    spikes = np.asarray(res.spikes["Q"])  # (steps, n)
    simulated = np.zeros(100)
    for i in range(100):
        t = res.times()[spikes[:, i] > 0]
        if len(t) >= 3:  # the first ISI starts from rest, not from v_reset
            simulated[i] = 1e3 * (len(t) - 2) / (t[-1] - t[1])
    return currents, simulated, qif_rate(qif, currents)
# --8<-- [end:fi]


# --8<-- [start:network]
def network(n=200):
    """A recurrent E/I network of QIF cells with conductance synapses and noisy input:
    the custom neuron composes with everything else."""
    qif = QIF()
    v0 = {"v": nj.Uniform(-65.0, -55.0)}
    E = nj.Population("E", int(0.8 * n), qif, initial=v0)
    I = nj.Population("I", n - int(0.8 * n), qif, initial=v0)
    p = nj.connectivity.FixedProbability(0.1)
    exc = nj.Projection("E", ["E", "I"], p, weight=2.0, synapse=nj.synapses.Exponential(tau=5.0),
                        receptor=nj.synapses.Conductance(e_rev=0.0))  # [nS], [ms], [mV]
    inh = nj.Projection("I", ["E", "I"], p, weight=8.0, synapse=nj.synapses.Exponential(tau=10.0),
                        receptor=nj.synapses.Conductance(e_rev=-80.0))
    noise = [nj.inputs.OrnsteinUhlenbeck(pop, mean=80.0, sigma=60.0, tau=5.0) for pop in ("E", "I")]
    return nj.Network([E, I], [exc, inh], inputs=noise).build(jax.random.key(0))


def rate(model, key, duration=100.0, truncate=None):
    """Mean E rate [Hz] of one run. Recorded as a population rate (a float running
    mean), because the spike raster is boolean and carries no gradient."""
    res = nj.simulate(model, duration, 0.1, key=key, truncate=truncate,
                      record=nj.Record(spikes=(), rates=["E"]))
    return res.rates["E"].mean()
# --8<-- [end:network]


# --8<-- [start:transforms]
def trials(model, n_trials=4):
    """Independent trials in one compiled call: vmap over the initial-state keys."""
    keys = jax.random.split(jax.random.key(2), n_trials)
    return jax.vmap(lambda key: rate(model, key))(keys)


def rate_vs_drive(model, means):
    """A parameter sweep without recompiling: vmap over the noise mean [pA] of both
    populations (a glob pattern names both inputs' `mean`)."""
    return jax.vmap(lambda mu: rate(model.replace({"*.mean": mu}), jax.random.key(1)))(means)


def subthreshold_gradient(current=20.0):
    """On a smooth path the gradient is exact: one QIF cell below rheobase (37.5 pA),
    its mean potential over 50 ms [mV] as a function of the current [pA], against a
    central finite difference."""
    net = nj.Network([nj.Population("Q", 1, QIF())], [],
                     inputs=[nj.inputs.Constant("Q", amplitude=current)])
    model = net.build(jax.random.key(0))

    def mean_v(i):
        res = nj.simulate(model.replace({"Constant->Q.amplitude": i}), 50.0, 0.1,
                          key=jax.random.key(1), record=nj.Record(spikes=(), v={"Q": None}))
        return res.variables["Q.v"].mean()

    h = 1e-3
    return jax.grad(mean_v)(current), (mean_v(current + h) - mean_v(current - h)) / (2 * h)


def network_gradient(model):
    """d rate / d (mean input current) [Hz/pA] through the network, with surrogate
    spikes and truncated backpropagation (the README's recipe: unbounded, the gradient
    through this recurrent network grows without bound), next to nj.check_grad's
    seed-averaged finite difference. Surrogate gradients are biased; the sign is what
    must agree."""
    loss = lambda mu, key: rate(model.replace({"*.mean": mu}), key, truncate=2.0)
    mean = model.params()["OrnsteinUhlenbeck->E.mean"]
    return nj.check_grad(loss, mean, keys=jax.random.split(jax.random.key(3), 2))
# --8<-- [end:transforms]


if __name__ == "__main__":
    currents, simulated, exact = f_i_curve()
    firing = exact > 5.0
    error = np.abs(simulated[firing] - exact[firing]) / exact[firing]
    print(f"f-I curve: {firing.sum()} firing neurons, largest error {100 * error.max():.2f} % "
          f"of the closed form (up to {exact.max():.0f} Hz)")
    model = network()
    print("E rate per trial [Hz]:", np.round(np.asarray(trials(model)), 2))
    means = jnp.array([40.0, 80.0, 120.0])
    print("E rate vs noise mean [Hz]:", np.round(np.asarray(rate_vs_drive(model, means)), 2))
    grad, fd = subthreshold_gradient()
    print(f"subthreshold d mean(v) / d current: {float(grad):.6f} mV/pA "
          f"(finite difference {float(fd):.6f})")
    print(network_gradient(model))
