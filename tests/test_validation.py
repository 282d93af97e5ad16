"""Parameter validation of traced values: a parameter swept with `vmap`, passed through
`jit` after `eqx.tree_at`, or changed by an optimiser step inside `jit` is checked
before the run, with the same information (component, parameter, unit, allowed range)
as the `ValueError` raised for a concrete value.

Every network here is tiny (4 neurons, 1 ms) so each compilation is cheap.
"""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurojax._misc import deferred_checks, guard, positive, validate
from neurojax.connectivity.builders import AllToAll
from neurojax.inputs.deterministic import Constant
from neurojax.inputs.stochastic import Poisson
from neurojax.network import Network, Population, Projection
from neurojax.neurons.hh import HodgkinHuxley
from neurojax.neurons.lif import LIF
from neurojax.neurons.rate import PowerLaw, Rate
from neurojax.simulate import Record, simulate
from neurojax.synapses.kinetics import DualExponential, Exponential
from neurojax.synapses.receptors import Conductance

DT = 0.1  # [ms]
T = 1.0  # [ms]
N = 4
KEY = jax.random.key(1)
RATES = Record(spikes=(), rates=["E"])


def _lif_net():
    """Four LIF neurons with conductance-based recurrent synapses and a constant
    current strong enough to make them fire within 1 ms."""
    lif = LIF(c_m=100.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=0.5)
    rec = Projection("E", "E", AllToAll(), weight=0.5, synapse=Exponential(tau=5.0),
                     receptor=Conductance(e_rev=0.0))
    net = Network([Population("E", N, lif, initial={"v": -51.0})], [rec],
                  inputs=[Constant("E", amplitude=600.0)])
    return net.build(jax.random.key(0))


MODEL = _lif_net()


def _rate(model):
    return simulate(model, T, DT, key=KEY, record=RATES).rates["E"]


def _lif(model):
    return model.populations[0].neuron


def _raises_naming(*parts):
    """`pytest.raises` for a runtime error whose message contains every part in order."""
    return pytest.raises(Exception, match=".*".join(re.escape(p) for p in parts))


@pytest.mark.parametrize(
    "field, values, unit, allowed",
    [
        ("g_l", [10.0, -10.0, 12.0], "nS", "(0, inf)"),
        ("c_m", [100.0, 150.0, 0.0], "pF", "(0, inf)"),
        ("t_ref", [0.5, -1.0, 1.0], "ms", "[0, inf)"),
    ],
)
def test_vmap_over_lif_parameter_with_one_invalid_value_raises_naming_it(field, values, unit, allowed):
    def run(x):
        return _rate(eqx.tree_at(lambda m: getattr(_lif(m), field), MODEL, x))

    with _raises_naming("population 'E' (LIF)", f"{field} [{unit}]", allowed):
        jax.vmap(run)(jnp.asarray(values))


def test_vmap_over_membrane_time_constant_below_dt_raises_naming_tau_m():
    # c_m = 0.5 pF gives tau_m = 0.05 ms < dt: valid ranges, invalid for this dt.
    def run(c_m):
        return _rate(eqx.tree_at(lambda m: _lif(m).c_m, MODEL, c_m))

    with _raises_naming("dt [ms] = 0.1", "tau_m = c_m/g_l"):
        jax.vmap(run)(jnp.asarray([100.0, 0.5]))


def test_jit_of_model_modified_with_tree_at_raises():
    bad = eqx.tree_at(lambda m: _lif(m).g_l, MODEL, jnp.asarray(-1.0))
    with _raises_naming("g_l [nS]", "(0, inf)"):
        jax.jit(_rate)(bad)
    with _raises_naming("v_reset [mV] must lie below v_th [mV]"):
        jax.jit(_rate)(eqx.tree_at(lambda m: _lif(m).v_reset, MODEL, jnp.asarray(-40.0)))


def test_concrete_model_modified_with_tree_at_raises_value_error():
    bad = eqx.tree_at(lambda m: _lif(m).g_l, MODEL, jnp.asarray(-1.0))
    with pytest.raises(ValueError, match=re.escape("population 'E' (LIF): g_l [nS] must lie in (0, inf), got -1.0")):
        _rate(bad)


def test_optimiser_step_inside_jit_that_leaves_the_range_raises():
    def loss(model):
        return jnp.sum(_rate(model))

    @jax.jit
    def train_step(model, lr):
        # A gradient-free stand-in for an optimiser step: it pushes g_l down by lr.
        model = eqx.tree_at(lambda m: _lif(m).g_l, model, _lif(model).g_l - lr)
        # eqx.filter_grad, as the README says: a model also holds integer leaves
        # (synapse counts, indices), which jax.grad refuses.
        return loss(model), eqx.filter_grad(loss)(model)

    train_step(MODEL, 1.0)  # g_l = 9 nS: fine
    with _raises_naming("g_l [nS]", "(0, inf)"):
        train_step(MODEL, 20.0)  # g_l = -10 nS


def test_valid_traced_values_give_the_same_result_as_concrete_ones():
    g_ls = [8.0, 10.0, 14.0]
    batched = jax.vmap(lambda g: _rate(eqx.tree_at(lambda m: _lif(m).g_l, MODEL, g)))(
        jnp.asarray(g_ls)
    )
    for g, r in zip(g_ls, batched):
        eager = _rate(eqx.tree_at(lambda m: _lif(m).g_l, MODEL, jnp.asarray(g)))
        np.testing.assert_array_equal(np.asarray(r), np.asarray(eager))
    assert np.all(np.asarray(batched).sum(axis=-1) > 0)  # the neurons do fire


def test_vmap_over_synapse_tau_checks_range_and_dt():
    def run(tau):
        return _rate(eqx.tree_at(lambda m: m.projections[0].synapse.tau, MODEL, tau))

    with _raises_naming("projection 'E->E'", "tau [ms]", "(0, inf)"):
        jax.vmap(run)(jnp.asarray([5.0, -5.0]))
    with _raises_naming("dt [ms] = 0.1", "synapse tau"):
        jax.vmap(run)(jnp.asarray([5.0, 0.05]))


def test_jit_over_poisson_input_rate_raises():
    net = Network([Population("E", N, LIF())], [],
                  inputs=[Poisson("E", rate=100.0, n_sources=10, weight=50.0)])
    model = net.build(jax.random.key(0))
    bad = eqx.tree_at(lambda m: m.inputs[0].rate, model, jnp.asarray(-5.0))
    with _raises_naming("Poisson input to 'E'", "rate [Hz]", "[0, inf)"):
        jax.jit(_rate)(bad)


def test_vmap_over_rate_neuron_and_transfer_parameters_raises():
    net = Network([Population("E", N, Rate(tau=10.0, transfer=PowerLaw(k=0.3, n=2.0)))],
                  inputs=[Constant("E", amplitude=1.0)])
    model = net.build(jax.random.key(0))

    def run(tau, k):
        m = eqx.tree_at(lambda m: m.populations[0].neuron.tau, model, tau)
        return _rate(eqx.tree_at(lambda m: m.populations[0].neuron.transfer.k, m, k))

    jax.vmap(run)(jnp.asarray([10.0, 20.0]), jnp.asarray([0.3, 0.5]))
    with _raises_naming("population 'E' (Rate)", "tau [ms]"):
        jax.vmap(run)(jnp.asarray([10.0, -20.0]), jnp.asarray([0.3, 0.5]))
    with _raises_naming("population 'E' (Rate)", "k [rate/input^n]"):
        jax.vmap(run)(jnp.asarray([10.0, 20.0]), jnp.asarray([0.3, -0.5]))


def test_validate_defers_hodgkin_huxley_checks_when_traced():
    # Checked without a simulation: the deferred checks of a traced HH neuron, fused
    # into one runtime check on a value. A higher temperature speeds up the kinetics
    # and shortens the largest accepted step below dt.
    @jax.jit
    def check(g_na, temperature):
        neuron = eqx.tree_at(lambda h: (h.g_na, h.temperature), HodgkinHuxley(),
                             (g_na, temperature))
        with deferred_checks() as checks:
            validate(neuron)
            neuron.check(N, DT)
        return guard(jnp.zeros(()), checks)

    check(jnp.asarray(1.0), jnp.asarray(6.3))
    with _raises_naming("g_na [nS]", "[0, inf)"):
        check(jnp.asarray(-1.0), jnp.asarray(6.3))
    with _raises_naming("dt [ms] = 0.1 is too large for the largest step of HodgkinHuxley"):
        check(jnp.asarray(1.0), jnp.asarray(40.0))


def test_large_traced_values_are_checked_under_vmap():
    # A value of more than _FUSE_MAX elements is reduced to one flag before the fused
    # check (an unbatched weight matrix is not broadcast to the batch); its failure is
    # still reported with its own message.
    from neurojax._misc import check_range

    def check(w, tau):
        with deferred_checks() as checks:
            check_range(w, "w", "nS", low=0.0, low_open=True)
            check_range(tau, "tau", "ms", low=0.0, low_open=True)
        return guard(jnp.zeros(()), checks)

    run = jax.jit(jax.vmap(check, in_axes=(None, 0)))
    w = jnp.ones((40, 40))
    run(w, jnp.ones(3))
    with _raises_naming("w [nS]"):
        run(w.at[3, 5].set(-1.0), jnp.ones(3))
    with _raises_naming("tau [ms]"):
        run(w, jnp.array([1.0, -1.0, 1.0]))


def test_large_traced_values_that_must_be_finite_are_checked_by_one_sum():
    # A large value that must only be finite (a Waveform's values, a weight matrix) is
    # checked by a float sum that is NaN iff an element is NaN or infinite: every
    # such element is still caught, batched or not, and named by its own message.
    from neurojax._misc import check_range

    def check(v, w):
        with deferred_checks() as checks:
            check_range(v, "values", "pA")
            check_range(w, "w", "nS", low=0.0)
        return guard(jnp.zeros(()), checks)

    run = jax.jit(jax.vmap(check, in_axes=(0, None)))
    v, w = jnp.full((2, 40, 30), -3.0e38), jnp.ones((40, 40))  # large finite values pass
    run(v, w)
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        with _raises_naming("values [pA]"):
            run(v.at[1, 7, 29].set(bad), w)
    with _raises_naming("w [nS]"):
        run(v, w.at[0, 0].set(jnp.inf))


def test_dual_exponential_rise_below_decay_is_checked_when_traced():
    @jax.jit
    def check(tau_rise):
        syn = eqx.tree_at(lambda s: s.tau_rise, DualExponential(1.0, 5.0), tau_rise)
        with deferred_checks() as checks:
            validate(syn)
        return guard(jnp.zeros(()), checks)

    check(jnp.asarray(2.0))
    with _raises_naming("tau_rise [ms] must lie in (0, tau_decay)"):
        check(jnp.asarray(6.0))


def test_traced_values_outside_deferred_checks_still_pass_the_converters():
    # Building a module under jit keeps working (checks of traced values need a
    # deferred_checks block and a guard to run).
    jax.jit(lambda g: LIF(g_l=g).g_l)(jnp.asarray(-1.0))
    convert = positive("tau", "ms")
    assert convert.range.name == "tau" and convert.range.unit == "ms"
