"""Write your own synapse kinetics: a second-order rise-and-decay synapse.

The code of docs/guides/custom-synapse.md, run as it stands by tests/test_guides.py
(`python docs/guides/custom_synapse.py` prints what each part checks).
"""

# --8<-- [start:kinetics]
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

import neurojax as nj

jax.config.update("jax_enable_x64", True)  # the checks below compare to 1e-9


class RiseDecayState(eqx.Module):
    """One value per postsynaptic neuron: kinetics filter the summed weighted arrivals."""

    x: Float[Array, " n"]  # rise (gating) variable [weight units]
    s: Float[Array, " n"]  # synaptic variable [weight units]


class RiseDecay(nj.synapses.AbstractKinetics):
    r"""Second-order kinetics written as a cascade (the form Brian2 and NEST models use):

    $$\frac{dx}{dt} = -\frac{x}{\tau_r} + \sum_k w_k\,\delta(t - t_k), \qquad
      \frac{ds}{dt} = -\frac{s}{\tau_d} + \frac{c\,x}{\tau_r},$$

    whose impulse response is $s(t) = w\,N\,(e^{-t/\tau_d} - e^{-t/\tau_r})$, with $c$
    chosen so that the peak equals $w$. Both variables are propagated exactly over a
    step (the system is linear with constant coefficients).

    **Arguments:**

    - `tau_rise`: Rise time constant $\tau_r$ [ms], below `tau_decay`.
    - `tau_decay`: Decay time constant $\tau_d$ [ms].
    """

    tau_rise: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=1.0)
    tau_decay: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=5.0)

    def _gain(self):
        """c such that the impulse response peaks at w (the peak time t* solves ds/dt = 0)."""
        tr, td = self.tau_rise, self.tau_decay
        t_peak = tr * td / (td - tr) * jnp.log(td / tr)
        return (td - tr) / (td * (jnp.exp(-t_peak / td) - jnp.exp(-t_peak / tr)))

    def init(self, n: int, initial: Float[Array, " n"] | None = None) -> RiseDecayState:
        z = jnp.zeros((n,), float)
        return RiseDecayState(x=z, s=z if initial is None else jnp.asarray(initial, float))

    def step(self, state: RiseDecayState, x: Float[Array, " n"], dt: float):
        tr, td = self.tau_rise, self.tau_decay
        qr, qd = jnp.exp(-dt / tr), jnp.exp(-dt / td)
        rise = state.x + x  # this step's arrivals enter the rise variable
        # Exact solution over dt of the cascade, s driven by x(t) = rise e^{-t/tau_r}.
        s = state.s * qd + self._gain() * rise * td / (td - tr) * (qd - qr)
        # The value used this step is s at its start: the kernel sampled at 0, dt, 2 dt...
        return RiseDecayState(x=rise * qr, s=s), state.s

    def graded_gain(self, dt: float):
        # A rate level W r arriving every step must settle at s = W r: divide by the
        # sum of the kernel's samples after a unit arrival, N (q_d/(1-q_d) - q_r/(1-q_r)).
        tr, td = self.tau_rise, self.tau_decay
        geometric = lambda tau: jnp.exp(-dt / tau) / -jnp.expm1(-dt / tau)
        return (td - tr) / (self._gain() * td * (geometric(td) - geometric(tr)))

    def check(self, dt: float) -> None:
        # Once per simulation, possibly with traced parameters (under grad or vmap):
        # value checks run on concrete values only. As the library's kinetics do, a
        # step must not exceed the fastest time constant.
        tr, td = self.tau_rise, self.tau_decay
        if isinstance(tr, jax.core.Tracer) or isinstance(td, jax.core.Tracer):
            return
        if np.any(np.asarray(tr) <= 0) or np.any(np.asarray(tr) >= np.asarray(td)):
            raise ValueError("RiseDecay tau_rise [ms] must lie in (0, tau_decay).")
        if dt > float(np.min(tr)):
            raise ValueError(f"dt [ms] = {dt:g} is too large for RiseDecay tau_rise [ms] = "
                             f"{float(np.min(tr)):g}: dt must lie in (0, {float(np.min(tr)):g}].")
# --8<-- [end:kinetics]


# --8<-- [start:impulse]
def kernel(t, tau_rise=1.0, tau_decay=5.0):
    """The closed-form impulse response for unit weight: peak 1 at t*."""
    t_peak = tau_rise * tau_decay / (tau_decay - tau_rise) * np.log(tau_decay / tau_rise)
    shape = lambda t: np.exp(-t / tau_decay) - np.exp(-t / tau_rise)
    return shape(t) / shape(t_peak)


def impulse_response(kinetics, dt=0.1, steps=300):
    """The kinetics' own outputs after one unit arrival, stepped directly."""
    arrivals = jnp.zeros((steps, 1)).at[0, 0].set(1.0)
    step = lambda state, x: kinetics.step(state, x, dt)
    _, s = jax.lax.scan(step, kinetics.init(1), arrivals)
    return np.asarray(s[:, 0])


def graded_level(kinetics, level=3.0, dt=0.1, steps=2000):
    """A constant graded input W r = `level`, scaled by graded_gain(dt), settles at it."""
    arrivals = jnp.full((steps, 1), level * kinetics.graded_gain(dt))
    _, s = jax.lax.scan(lambda state, x: kinetics.step(state, x, dt), kinetics.init(1), arrivals)
    return float(s[-1, 0])
# --8<-- [end:impulse]


# --8<-- [start:network]
PASSIVE = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=1e3, v_reset=-65.0, t_ref=0.0)
ARRIVAL = 10.0  # [ms]


def psp_model(weight=50.0, dt=0.1, duration=60.0):
    """One spike at 10 ms through a RiseDecay current synapse [pA] onto a passive cell."""
    spikes = np.zeros((int(round(duration / dt)), 1))
    spikes[int(round(ARRIVAL / dt)), 0] = 1
    pops = [nj.Population("in", 1, nj.inputs.SpikeTrains(spikes)),
            nj.Population("P", 1, PASSIVE)]
    proj = nj.Projection("in", "P", nj.connectivity.AllToAll(), weight=weight,
                         synapse=RiseDecay(tau_rise=1.0, tau_decay=5.0),
                         receptor=nj.synapses.Current())
    return nj.Network(pops, [proj]).build(jax.random.key(0))


def psp(model, dt=0.1, duration=60.0):
    res = nj.simulate(model, duration, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=(), v={"P": None}))
    v = res.variables["P.v"][:, 0] - PASSIVE.e_l  # recorded at the end of each step
    return dt * np.arange(1, v.shape[0] + 1), v


def psp_closed_form(t, weight=50.0, tau_rise=1.0, tau_decay=5.0):
    """The PSP [mV] of the current w N (e^{-t/td} - e^{-t/tr}) into C dv/dt = -g_L v + I:
    each exponential current e^{-t/tau} gives (1/C) tau_m tau/(tau_m - tau)
    (e^{-t/tau_m} - e^{-t/tau})."""
    tau_m, c = float(PASSIVE.c_m / PASSIVE.g_l), float(PASSIVE.c_m)
    t = np.maximum(t, 0.0)
    t_peak = tau_rise * tau_decay / (tau_decay - tau_rise) * np.log(tau_decay / tau_rise)
    n = 1.0 / (np.exp(-t_peak / tau_decay) - np.exp(-t_peak / tau_rise))
    part = lambda tau: tau_m * tau / (tau_m - tau) * (np.exp(-t / tau_m) - np.exp(-t / tau))
    return weight * n / c * (part(tau_decay) - part(tau_rise))
# --8<-- [end:network]


# --8<-- [start:transforms]
def peak_vs_tau_decay(model, taus):
    """PSP peaks [mV] for several decay times in one compiled call (vmap)."""
    peak = lambda tau: psp(model.replace({"in->P.synapse.tau_decay": tau}))[1].max()
    return jax.jit(jax.vmap(peak))(taus)


def gradient(model, tau=5.0):
    """d(mean depolarisation over the run)/d(tau_decay) [mV/ms]: autodiff against a
    central finite difference (a smooth path: the cell never fires)."""
    f = lambda tau: psp(model.replace({"in->P.synapse.tau_decay": tau}))[1].mean()
    h = 1e-4
    return jax.grad(f)(jnp.asarray(tau)), (f(tau + h) - f(tau - h)) / (2 * h)
# --8<-- [end:transforms]


if __name__ == "__main__":
    dt = 0.1
    simulated = impulse_response(RiseDecay())
    exact = kernel(np.arange(300) * dt)
    print(f"impulse response: largest error {np.abs(simulated - exact).max():.1e} "
          f"(peak {simulated.max():.6f}); library DualExponential differs by "
          f"{np.abs(simulated - impulse_response(nj.synapses.DualExponential(1.0, 5.0))).max():.1e}")
    print(f"graded level 3.0 settles at {graded_level(RiseDecay()):.9f}")
    model = psp_model()
    t, v = psp(model)
    v = np.asarray(v)
    exact = psp_closed_form(t - ARRIVAL)
    print(f"PSP peak {v.max():.5f} mV (closed form {exact.max():.5f}); "
          f"peak time {t[v.argmax()] - ARRIVAL:.2f} ms (closed form {t[exact.argmax()] - ARRIVAL:.2f})")
    print("peaks vs tau_decay [mV]:", np.asarray(peak_vs_tau_decay(model, jnp.array([3.0, 5.0, 8.0]))))
    g, fd = gradient(model)
    print(f"d mean v / d tau_decay = {float(g):.8f} (finite difference {float(fd):.8f})")
