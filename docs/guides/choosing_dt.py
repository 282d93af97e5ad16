"""Choosing dt and integrators: errors measured against closed forms and a diffrax reference.

The code of docs/guides/choosing-dt.md, run as it stands by tests/test_guides.py
(`python docs/guides/choosing_dt.py` prints what each part measures).
"""

# --8<-- [start:order]
import functools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import neurojax as nj

jax.config.update("jax_enable_x64", True)  # errors down to 1e-9 are measured below


def order(dts, errors):
    """Convergence order: the slope of log(error) against log(dt), least squares."""
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])
# --8<-- [end:order]


# --8<-- [start:fi]
# Brunel's (2000) LIF in neurojax's units: tau_m = 200 pF / 10 nS = 20 ms, threshold
# 20 mV and reset 10 mV above rest, 2 ms refractory (REFERENCES §3).
LIF = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=0.0, v_th=20.0, v_reset=10.0, t_ref=2.0)
MU = np.linspace(21.0, 60.0, 40)  # steady-state potential mu = I / g_L [mV]


def lif_rate(mu):
    """Closed form [Hz]: 1 / (t_ref + tau ln((mu - V_r) / (mu - theta)))."""
    return 1e3 / (2.0 + 20.0 * np.log((mu - 10.0) / (mu - 20.0)))


def fi_error(dt, duration=200.0):
    """Mean relative error of the simulated rates (from the interspike intervals) over
    40 neurons, one constant current each."""
    net = nj.Network([nj.Population("L", len(MU), LIF)], [],
                     inputs=[nj.inputs.Constant("L", amplitude=10.0 * MU)])  # [pA]
    res = nj.simulate(net.build(jax.random.key(0)), duration, dt, key=jax.random.key(1))
    spikes = np.asarray(res.spikes["L"])
    rates = []
    for i in range(len(MU)):
        t = res.times()[spikes[:, i]]
        rates.append(1e3 * (len(t) - 1) / (t[-1] - t[0]))
    exact = lif_rate(MU)
    return float(np.mean(np.abs(np.array(rates) - exact) / exact))


def fi_error_predicted(dt):
    """Each interspike interval ends at the end of the step in which v crosses the
    threshold: on average dt/2 late, so the rate is low by about nu dt/2."""
    return float(np.mean(lif_rate(MU) * 1e-3 * dt / 2))
# --8<-- [end:fi]


# --8<-- [start:psp]
def psp_error(dt, tau_s=5.0):
    """Relative error of the simulated PSP peak of one exponential current synapse onto
    a passive LIF, against `Exponential.psp_peak` (continuous time)."""
    passive = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-65.0, v_th=1e3, v_reset=-65.0, t_ref=0.0)
    synapse = nj.synapses.Exponential(tau=tau_s)
    steps = int(round(60.0 / dt))
    spikes = np.zeros((steps, 1))
    spikes[int(round(5.0 / dt)), 0] = 1
    net = nj.Network([nj.Population("in", 1, nj.inputs.SpikeTrains(spikes)),
                      nj.Population("P", 1, passive)],
                     [nj.Projection("in", "P", nj.connectivity.AllToAll(), weight=100.0,
                                    synapse=synapse, receptor=nj.synapses.Current())])
    res = nj.simulate(net.build(jax.random.key(0)), 60.0, dt, key=jax.random.key(1),
                      record=nj.Record(spikes=(), v={"P": None}))
    peak = float(np.max(res.variables["P.v"]) + 65.0)
    exact = 100.0 * float(synapse.psp_peak(passive))
    return (peak - exact) / exact
# --8<-- [end:psp]


# --8<-- [start:hh]
HH_DRIVE = nj.Drive.from_current(jnp.full((1,), 2000.0))  # 10 µA/cm²


def hh_fixed_step(integrator, dt, t1=10.0):
    """v(t1) [mV] of one HH cell with a constant current, stepped with `integrator`
    (the fixed-step update that nj.simulate runs)."""
    return float(_hh_steps(nj.neurons.HodgkinHuxley(integrator=integrator), jnp.asarray(dt),
                           jnp.asarray(int(round(t1 / dt)))))


@eqx.filter_jit  # dt and the number of steps are traced: one compilation for all dt
def _hh_steps(hh, dt, n_steps):
    body = lambda _, state: hh.step(state, HH_DRIVE, dt)[0]
    return jax.lax.fori_loop(0, n_steps, body, hh.init(1)).v[0]


@functools.cache  # one adaptive solve serves every comparison
def hh_reference(t1=10.0):
    """The same v(t1) from nj.ode.solve: adaptive Tsit5 at tolerances 1e-11."""
    hh = nj.neurons.HodgkinHuxley()
    sol = nj.ode.solve(hh, t1, n=1, y0=hh.init(1), drive=HH_DRIVE, rtol=1e-11, atol=1e-11,
                       saveat=diffrax.SaveAt(t1=True), max_steps=200_000)
    return float(sol.ys.v[-1, 0])


def hh_errors(integrator, dts):
    reference = hh_reference()
    return np.array([abs(hh_fixed_step(integrator, dt) - reference) for dt in dts])
# --8<-- [end:hh]


# --8<-- [start:checks]
def too_large_dt():
    """The messages a too large dt raises, before anything runs."""
    messages = []
    net = nj.Network([nj.Population("L", 1, LIF)], [])  # tau_m = 20 ms
    try:
        nj.simulate(net.build(jax.random.key(0)), 50.0, 25.0, key=jax.random.key(1))
    except ValueError as err:
        messages.append(str(err))
    try:
        nj.synapses.Exponential(tau=0.5).check(1.0)
    except ValueError as err:
        messages.append(str(err))
    return messages
# --8<-- [end:checks]


FI_DTS = np.array([0.2, 0.1, 0.05, 0.025])
PSP_DTS = np.array([0.4, 0.2, 0.1, 0.05])
HH_DTS = np.array([0.04, 0.02, 0.01])

if __name__ == "__main__":
    fi = np.array([fi_error(dt) for dt in FI_DTS])
    print("LIF f-I mean relative error:", fi, f"order {order(FI_DTS, fi):.2f}; predicted",
          np.array([fi_error_predicted(dt) for dt in FI_DTS]))
    psp = np.array([psp_error(dt) for dt in PSP_DTS])
    print("Exponential PSP peak relative error:", psp, f"order {order(PSP_DTS, np.abs(psp)):.2f}; "
          "dt/(2 tau_s):", PSP_DTS / 10.0)
    for integrator in (nj.neurons.ExponentialEuler(), nj.neurons.RK4()):
        e = hh_errors(integrator, HH_DTS)
        print(f"HH {type(integrator).__name__} |v(10 ms) error| [mV]:", e,
              f"order {order(HH_DTS, e):.2f}")
    for message in too_large_dt():
        print("ValueError:", message)
