"""Write your own input: a sinusoidal current and random telegraph noise.

The code of docs/guides/custom-input.md, run as it stands by tests/test_guides.py
(`python docs/guides/custom_input.py` prints what each part checks).
"""

# --8<-- [start:sine]
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

import neurojax as nj

jax.config.update("jax_enable_x64", True)  # the checks below compare to 1e-6


class SineState(eqx.Module):
    """A stateless input still returns a State: an empty module."""


class Sine(nj.AbstractInput[SineState]):
    r"""A sinusoidal current into every neuron of `target`,

    $$I(t) = \text{offset} + \text{amplitude}\,\sin(2\pi f t + \varphi).$$

    Evaluated at the middle of each step (the neuron holds the drive over the step, and
    the midpoint makes that second-order accurate in `dt`).

    **Arguments:**

    - `target`: Name of the target population.
    - `amplitude`: Amplitude [pA]. Scalar or shape `(n,)`.
    - `frequency`: Frequency $f$ [Hz]. Scalar or shape `(n,)`.
    - `offset`: Constant part [pA].
    - `phase`: Phase $\varphi$ at $t = 0$ [rad].
    """

    target: str = eqx.field(static=True)  # static: a name, not a parameter
    amplitude: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray)
    frequency: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray)
    offset: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=0.0)
    phase: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray, default=0.0)

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> SineState:
        return SineState()

    def step(self, state: SineState, t, dt: float) -> tuple[SineState, nj.Drive]:
        omega = 2e-3 * jnp.pi * self.frequency  # [rad/ms] from [Hz]
        current = self.offset + self.amplitude * jnp.sin(omega * (t + 0.5 * dt) + self.phase)
        # A current: voltage-independent i [pA]; no conductance, no instantaneous charge.
        return state, nj.Drive.from_current(current)

    def check(self, n: int, dt: float) -> None:
        for name in ("amplitude", "frequency", "offset", "phase"):
            if jnp.shape(getattr(self, name)) not in ((), (n,)):
                raise ValueError(f"Sine({self.target!r}) {name} must be a scalar or have "
                                 f"shape ({n},), got {jnp.shape(getattr(self, name))}.")
# --8<-- [end:sine]


# --8<-- [start:response]
# A passive membrane: LIF with the threshold out of reach, so v stays linear.
PASSIVE = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=1e3, v_reset=-65.0, t_ref=0.0)


def membrane_response(frequencies, amplitude=20.0, dt=0.05, duration=500.0):
    """One passive neuron per frequency [Hz] (a frequency per neuron); the amplitude of
    v [mV] over the last 200 ms, against the low-pass filter's closed form
    (amplitude / g_L) / sqrt(1 + (omega tau_m)^2)."""
    n = len(frequencies)
    net = nj.Network([nj.Population("P", n, PASSIVE)], [],
                     inputs=[Sine("P", amplitude=amplitude, frequency=jnp.asarray(frequencies))])
    res = nj.simulate(net.build(jax.random.key(0)), duration, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=(), v={"P": None}))
    # The last 200 ms (10 tau_m after the start, and a whole period from 5 Hz up).
    v = np.asarray(res.variables["P.v"])[-int(200.0 / dt):]  # (steps, n)
    simulated = 0.5 * (v.max(axis=0) - v.min(axis=0))
    tau = float(PASSIVE.c_m / PASSIVE.g_l)  # [ms]
    omega = 2e-3 * np.pi * np.asarray(frequencies)
    return simulated, amplitude / float(PASSIVE.g_l) / np.sqrt(1.0 + (omega * tau) ** 2)


def response_gradient(frequency=10.0, h=1e-4):
    """d (mean squared deviation of v) / d frequency [mV^2/Hz] through the scan, against
    a central finite difference: a smooth path, so the gradient is exact."""
    net = nj.Network([nj.Population("P", 1, PASSIVE)], [],
                     inputs=[Sine("P", amplitude=20.0, frequency=frequency)])
    model = net.build(jax.random.key(0))

    def power(f):
        res = nj.simulate(model.replace({"Sine->P.frequency": f}), 200.0, 0.1,
                          key=jax.random.key(1), record=nj.Record(spikes=(), v={"P": None}))
        v = res.variables["P.v"]
        return jnp.mean((v - jnp.mean(v)) ** 2)

    return jax.grad(power)(frequency), (power(frequency + h) - power(frequency - h)) / (2 * h)
# --8<-- [end:response]


# --8<-- [start:telegraph]
class TelegraphState(eqx.Module):
    key: PRNGKeyArray  # split every step: the input's own randomness
    on: Float[Array, " n"]  # 1.0 where the current is on, else 0.0


class Telegraph(nj.AbstractInput[TelegraphState]):
    r"""Random telegraph noise: per neuron, a current that switches on at rate
    `rate_on` and off at rate `rate_off` (a two-state Markov process; on for a fraction
    $r_{on} / (r_{on} + r_{off})$ of the time).

    **Arguments:**

    - `target`: Name of the target population.
    - `amplitude`: Current while on [pA].
    - `rate_on`, `rate_off`: Switching rates [Hz].
    """

    target: str = eqx.field(static=True)
    amplitude: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray)
    rate_on: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray)
    rate_off: Float[Array, "*#n"] = eqx.field(converter=jnp.asarray)

    def init(self, n: int, *, key: PRNGKeyArray | None = None) -> TelegraphState:
        # Randomness arrives as a key, never from a global seed; simulate passes each
        # input its own key from the one given to simulate (or to model.init).
        if key is None:
            raise ValueError(f"Telegraph({self.target!r}) needs a key.")
        key, sub = jax.random.split(key)
        p_on = self.rate_on / (self.rate_on + self.rate_off)
        # Start in the stationary distribution, so there is no transient.
        on = (jax.random.uniform(sub, (n,)) < p_on).astype(float)
        return TelegraphState(key=key, on=on)

    def step(self, state: TelegraphState, t, dt: float):
        key, sub = jax.random.split(state.key)
        # Exact switching probabilities over dt for a two-state process with rates in Hz.
        total = (self.rate_on + self.rate_off) * 1e-3  # [1/ms]
        p_on = self.rate_on / (self.rate_on + self.rate_off)
        relax = jnp.exp(-total * dt)
        p_next_on = p_on + (state.on - p_on) * relax  # P(on after dt | state now)
        on = (jax.random.uniform(sub, state.on.shape) < p_next_on).astype(state.on.dtype)
        current = self.amplitude * state.on
        return TelegraphState(key=key, on=on), nj.Drive.from_current(current)
# --8<-- [end:telegraph]


# --8<-- [start:trials]
def telegraph_trials(n_trials=8, n=50, duration=500.0):
    """Independent trials in one call (vmap over keys): the mean potential [mV] of each
    trial's passive neurons, which should average E_L + p_on amplitude / g_L."""
    net = nj.Network([nj.Population("P", n, PASSIVE)], [],
                     inputs=[Telegraph("P", amplitude=100.0, rate_on=20.0, rate_off=60.0)])
    model = net.build(jax.random.key(0))

    def mean_v(key):
        res = nj.simulate(model, duration, 0.1, key=key,
                          record=nj.Record(spikes=(), v={"P": None}, every=1.0))
        return res.variables["P.v"][50:].mean()  # after 50 ms (2.5 tau_m)

    means = jax.vmap(mean_v)(jax.random.split(jax.random.key(5), n_trials))
    expected = float(PASSIVE.e_l) + 0.25 * 100.0 / float(PASSIVE.g_l)  # p_on = 20/80
    return means, expected
# --8<-- [end:trials]


if __name__ == "__main__":
    freqs = np.array([5.0, 10.0, 20.0, 50.0, 100.0])
    simulated, exact = membrane_response(freqs)
    print("response amplitude [mV]:", np.round(simulated, 4), "closed form:", np.round(exact, 4))
    grad, fd = response_gradient()
    print(f"d power / d frequency: {float(grad):.8f} (finite difference {float(fd):.8f}) mV^2/Hz")
    means, expected = telegraph_trials()
    print("mean v per trial [mV]:", np.round(np.asarray(means), 3), "expected", expected)
