"""`nj.train.fit`: optax loop with minibatches, evaluation, early stopping,
checkpoint/resume and a non-finite guard."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neurojax as nj
from neurojax.train import Dale, Frozen, constrain, fit, trainable


def _regression(n_trials=64, seed=0):
    """Noisy linear data y = x @ w_true + 0.5 with a known answer."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_trials, 3))
    w_true = np.array([1.0, -2.0, 0.5])
    return (jnp.asarray(x), jnp.asarray(x @ w_true + 0.5)), w_true


def _mse(model, trial, key):
    x, y = trial
    return (x @ model["w"] + model["b"] - y) ** 2


def _noisy_mse(model, trial, key):
    # Uses the per-trial key, so resuming must reproduce the keys too.
    x, y = trial
    return (x @ model["w"] + model["b"] + 0.1 * jax.random.normal(key) - y) ** 2


def _init():
    return {"w": jnp.zeros(3), "b": jnp.asarray(0.0)}


def test_fit_recovers_a_known_linear_model(capsys):
    data, w_true = _regression()
    res = fit(_init(), _mse, data, optax.adam(0.1), 300, jax.random.key(0), batch_size=16,
              progress=True)
    # Noise-free data: the optimum is exact; adam at lr 0.1 for 300 steps gets within 1e-2.
    np.testing.assert_allclose(res.model["w"], w_true, atol=1e-2)
    assert float(res.model["b"]) == pytest.approx(0.5, abs=1e-2)
    assert res.losses.shape == (300,) and res.losses[-1] < 1e-3 * res.losses[0]
    assert res.eval_steps.tolist() == [100, 200, 300]
    assert "300/300" in capsys.readouterr().err  # the progress bar ran to the end


def test_evaluation_metrics_and_early_stopping():
    data, _ = _regression()
    # Held-out targets of the opposite sign: training makes the held-out loss worse
    # from the first evaluation on, so patience=2 stops after the third evaluation.
    eval_data = (data[0], -data[1])
    metrics = {"abs_error": lambda m, t, k: jnp.abs(t[0] @ m["w"] + m["b"] - t[1])}
    res = fit(_init(), _mse, data, optax.sgd(0.01), 1000, jax.random.key(0),
              eval_data=eval_data, eval_every=10, patience=2, metrics=metrics, progress=False)
    assert res.stopped_early and res.steps_run == 30
    assert res.eval_steps.tolist() == [10, 20, 30]
    assert np.all(np.diff(res.eval_losses) > 0)
    assert res.metrics["abs_error"].shape == (3,)
    # The best model is the one at the first evaluation (step 10), not the last one.
    best = jax.vmap(lambda x, y: _mse(res.best_model, (x, y), None))(*eval_data).mean()
    assert float(best) == pytest.approx(res.eval_losses[0], rel=1e-12)


def test_resume_continues_bit_identically(tmp_path):
    # Minibatches (batch_size) and a loss that uses its per-trial keys: both must be
    # reproduced after the resume.
    batch_size = 8
    data, _ = _regression()
    eval_data = _regression(16, seed=1)[0]
    kw = dict(batch_size=batch_size, eval_data=eval_data, eval_every=4, progress=False)
    whole = fit(_init(), _noisy_mse, data, optax.adam(0.05), 12, jax.random.key(3), **kw)
    path = tmp_path / "run.eqx"
    first = fit(_init(), _noisy_mse, data, optax.adam(0.05), 8, jax.random.key(3),
                checkpoint=path, **kw)
    assert path.exists() and first.steps_run == 8
    # The resumed run starts from a fresh model: everything comes from the checkpoint.
    resumed = fit(_init(), _noisy_mse, data, optax.adam(0.05), 12, jax.random.key(3),
                  checkpoint=path, resume=True, **kw)
    assert np.array_equal(resumed.losses, whole.losses)
    assert np.array_equal(resumed.eval_losses, whole.eval_losses)
    for a, b in zip(jax.tree.leaves(resumed.model), jax.tree.leaves(whole.model)):
        assert np.array_equal(a, b)


def test_resumed_chunks_reuse_the_compiled_step(tmp_path):
    # A loss that counts its traces: each compilation of the step (or of the
    # evaluation) traces it once, a cached call never does.
    traces = []

    def counted(model, trial, key):
        traces.append(1)
        return _noisy_mse(model, trial, key)

    data, _ = _regression()
    opt = optax.adam(0.05)
    kw = dict(batch_size=8, eval_every=3, progress=False)
    whole = fit(_init(), counted, data, opt, 9, jax.random.key(5), **kw)
    first_run = len(traces)
    assert first_run > 0
    path = tmp_path / "chunks.eqx"
    for steps in (3, 6, 9):  # three resumed chunks of the same run
        chunk = fit(_init(), counted, data, opt, steps, jax.random.key(5), checkpoint=path,
                    resume=True, **kw)
    # No new trace after the first run: the three chunks reused its compiled programs.
    assert len(traces) == first_run
    assert np.array_equal(chunk.losses, whole.losses)
    for a, b in zip(jax.tree.leaves(chunk.model), jax.tree.leaves(whole.model)):
        assert np.array_equal(a, b)
    # A model of another structure (shape) compiles afresh: the cache is keyed on it.
    fit({"w": jnp.zeros(3), "b": jnp.zeros(2)}, counted, data, opt, 1, jax.random.key(5), **kw)
    assert len(traces) > first_run


def test_resume_without_a_checkpoint_file_starts_afresh(tmp_path):
    data, _ = _regression()
    res = fit(_init(), _mse, data, optax.adam(0.05), 5, jax.random.key(0),
              checkpoint=tmp_path / "new.eqx", resume=True, progress=False)
    assert res.steps_run == 5 and (tmp_path / "new.eqx").exists()


def test_non_finite_loss_or_gradient_stops_with_a_clear_error():
    data, _ = _regression()

    def nan_loss(model, trial, key):
        return jnp.log(model["b"] - 1.0) + _mse(model, trial, key)  # log(-1) = nan

    with pytest.raises(FloatingPointError, match=r"loss is nan at step 1"):
        fit(_init(), nan_loss, data, optax.sgd(0.1), 5, jax.random.key(0), progress=False)

    def nan_gradient(model, trial, key):
        # sqrt at 0: infinite derivative times 0 is NaN in the backward pass only.
        return 0.0 * jnp.sqrt(model["b"] - model["b"]) + _mse(model, trial, key)

    with pytest.raises(FloatingPointError, match=r"gradient of \[\"\['b'\]\"\] .* at step 1"):
        fit(_init(), nan_gradient, data, optax.sgd(0.1), 5, jax.random.key(0), progress=False)


def test_a_check_inside_the_loss_names_the_step_and_its_message():
    # A runtime check in the loss (as a solver that does not converge raises inside
    # nj.theory.fixed_point) fires once the parameter passes 0.5: sgd(0.2) from b = 0
    # under a constant gradient of -1 evaluates b = 0, 0.2, 0.4, then 0.6 at step 4. The
    # error names the step and gives the check's own message, not XLA's traceback.
    data, _ = _regression()

    def checked_loss(model, trial, key):
        b = eqx.error_if(model["b"], model["b"] > 0.5, "the solver did not converge")
        return -b + 0.0 * _mse(model, trial, key)

    with pytest.raises(RuntimeError, match=r"^fit: at step 4, a check inside the loss failed: "
                                           r"the solver did not converge \(if"):
        fit(_init(), checked_loss, data, optax.sgd(0.2), 5, jax.random.key(0), progress=False)


def test_frozen_and_untrainable_leaves_do_not_change():
    data, _ = _regression()
    model = {"w": jnp.zeros(3), "b": Frozen(jnp.asarray(0.25))}
    loss = lambda m, t, k: (t[0] @ m["w"] + m["b"].get() - t[1]) ** 2  # noqa: E731
    res = fit(model, loss, data, optax.adam(0.1), 20, jax.random.key(0), progress=False)
    assert float(res.model["b"].value) == 0.25 and np.any(res.model["w"] != 0)
    spec = trainable(_init(), include="*'b'*")  # leaf names are keystr paths: "['b']"
    res = fit(_init(), _mse, data, optax.adam(0.1), 20, jax.random.key(0), trainable=spec,
              progress=False)
    assert np.all(res.model["w"] == 0) and float(res.model["b"]) != 0


SIGN = np.array([1.0, 1.0, -1.0])


def _dale_network():
    """Three rate units, 2 E + 1 I, under Dale's law."""
    pop = nj.Population("R", 3, nj.neurons.FiringRate(tau=5.0, transfer=nj.neurons.Tanh()))
    w = np.full((3, 3), 0.3) * SIGN[None, :]
    proj = nj.Projection("R", "R", nj.connectivity.AllToAll(), weight=w)
    net = nj.Network([pop], [proj], inputs=[nj.inputs.Constant("R", amplitude=0.4)])
    return constrain(net.build(jax.random.key(0)), {"R->R": Dale(SIGN)})


def _rate_loss(m, target, key):
    # The population rate (the tanh units' mean output) at the end of a 2 ms run,
    # against a target.
    res = nj.simulate(m, 2.0, 0.5, key=key, record=nj.Record(spikes=(), rates=["R"]))
    return (res.rates["R"][-1] - target[0]) ** 2


def test_fit_a_dale_constrained_rate_network():
    # Fitted so that the population rate hits a target; the Dale signs must hold after
    # the fit and the loss must fall.
    sign, loss = SIGN, _rate_loss
    model = _dale_network()
    targets = jnp.asarray([[0.075], [0.09]])  # two "trials" with nearby target rates

    res = fit(model, loss, targets, optax.adam(0.3), 40, jax.random.key(0),
              trainable=trainable(model, "*.weight*"), progress=False)
    assert res.losses[-1] < 0.1 * res.losses[0]
    w_fit = np.asarray(res.model.projections[0].weights.matrix())
    assert np.all(w_fit * sign[None, :] >= 0)


def test_bad_arguments_are_clear_errors(tmp_path):
    data, _ = _regression(8)
    args = (_init(), _mse, data, optax.sgd(0.1))
    with pytest.raises(ValueError, match=r"batch_size \[trials\] must lie in \[1, 8\]"):
        fit(*args, 5, jax.random.key(0), batch_size=9, progress=False)
    with pytest.raises(ValueError, match=r"steps \[optimiser steps\] must be an integer in \[1, inf\)"):
        fit(*args, 0, jax.random.key(0), progress=False)
    with pytest.raises(ValueError, match="same leading \\(trial\\) axis"):
        fit(_init(), _mse, (data[0], data[1][:4]), optax.sgd(0.1), 5, jax.random.key(0))
    with pytest.raises(ValueError, match="patience .* needs eval_data"):
        fit(*args, 5, jax.random.key(0), patience=2, progress=False)
    with pytest.raises(ValueError, match="resume=True needs checkpoint="):
        fit(*args, 5, jax.random.key(0), resume=True, progress=False)


def test_resume_a_constrained_network_bit_identically(tmp_path):
    # A NetworkModel (integer structure, a ConstrainedWeights container, neuron
    # parameters left untrained) through the checkpoint: same losses and parameters.
    model = _dale_network()
    targets = jnp.asarray([[0.15], [0.18], [0.2]])
    kw = dict(batch_size=2, trainable=trainable(model, "*.weight*"), progress=False)
    whole = fit(model, _rate_loss, targets, optax.adam(0.3), 4, jax.random.key(1), **kw)
    path = tmp_path / "net.eqx"
    fit(model, _rate_loss, targets, optax.adam(0.3), 2, jax.random.key(1), checkpoint=path, **kw)
    resumed = fit(model, _rate_loss, targets, optax.adam(0.3), 4, jax.random.key(1),
                  checkpoint=path, resume=True, **kw)
    assert np.array_equal(resumed.losses, whole.losses)
    for a, b in zip(jax.tree.leaves(resumed.model), jax.tree.leaves(whole.model)):
        assert np.array_equal(a, b)


def test_an_overflowing_simulation_gradient_stops_fit_naming_step_and_population():
    # A recurrent network whose surrogate (amplitude 1e6) makes the backward pass
    # overflow within 30 ms while the forward pass stays finite: fit stops at its first
    # optimiser step, and the message carries simulate's diagnosis (parameter,
    # simulation step, population) instead of handing NaN to Adam.
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0,
                         surrogate=nj.surrogate.FastSigmoid(slope=5.0, amplitude=1e6))
    model = nj.Network(
        [nj.Population("E", 100, lif)],
        [nj.Projection("E", "E", nj.connectivity.FixedProbability(0.2), weight=40.0,
                       synapse=nj.synapses.Exponential(tau=5.0))],
        inputs=[nj.inputs.Constant("E", amplitude=260.0)],
    ).build(jax.random.key(0))

    def loss(m, target, key):
        res = nj.simulate(m, 30.0, 0.1, key=key, record=nj.Record(spikes=(), rates=["E"]))
        return (res.rates["E"].mean() - target) ** 2

    with pytest.raises(FloatingPointError,
                       match=r"fit: at step 1 .*E->E\.weight is NaN or infinite .*non-finite "
                             r"at step \d+ \(t = [\d.]+ to [\d.]+ ms from init\), in population E"):
        fit(model, loss, jnp.asarray([10.0]), optax.adam(0.1), 3, jax.random.key(0),
            trainable=nj.train.trainable(model, "E->E.weight"), progress=False)


def _rate_units(tau=10.0, weight=0.0):
    pop = nj.Population("R", 2, nj.neurons.FiringRate(tau=tau, transfer=nj.neurons.ReLU()))
    proj = nj.Projection("R", "R", nj.connectivity.AllToAll(), weight=weight,
                         layout=nj.connectivity.Dense())
    return nj.Network([pop], [proj], inputs=[nj.inputs.Constant("R", amplitude=1.0)]).build(
        jax.random.key(0))


def test_simulates_runtime_checks_still_stop_fit_with_their_own_message():
    # fit's steps trace simulate's runtime checks with checkify (no host callback) and
    # rerun a failed step with equinox's checks for the message. Two checks that fire
    # only after some steps: a time constant trained below 0 (sgd(1) under a constant
    # gradient of 4 evaluates tau = 10, 6, 2, then -2 at step 4) and a
    # recurrent weight trained past the point where the rates grow without bound and
    # overflow within the run (its first step's model, weight 0, is finite).
    net = _rate_units()

    def rates(m, key):
        record = nj.Record(spikes=(), rates=["R"])
        return nj.simulate(m, 5.0, 1.0, key=key, record=record).rates["R"]

    def tau_loss(m, trial, key):
        return 4.0 * m.populations[0].neuron.tau + 0.0 * rates(m, key).sum()

    def mapped_tau_loss(m, trial, key):
        # The same check with simulate under lax.map (a loop, which jax's checkify
        # loses under grad: fit finds the NaN that the failed check leaves instead).
        r = jax.lax.map(lambda a: rates(eqx.tree_at(lambda x: x.inputs[0].amplitude, m, a), key),
                        jnp.asarray([1.0, 2.0]))
        return 4.0 * m.populations[0].neuron.tau + 0.0 * r.sum()

    for loss in (tau_loss, mapped_tau_loss):
        with pytest.raises(RuntimeError, match=r"^fit: at step 4, a check inside the loss "
                                               r"failed: .*tau \[ms\] must"):
            fit(net, loss, jnp.zeros(1), optax.sgd(1.0), 5, jax.random.key(0),
                trainable=trainable(net, "R.tau"), progress=False)

    def blow_up_loss(m, trial, key):
        return -nj.simulate(m, 1000.0, 1.0, key=key,
                            record=nj.Record(spikes=(), rates=["R"])).rates["R"].mean()

    with pytest.raises(FloatingPointError, match=r"^fit: at step 2 \(the model before it is "
                                                 r"finite\): .*NaN or infinity in "
                                                 r"population\(s\) \['R'\]"):
        fit(net, blow_up_loss, jnp.zeros(1), optax.sgd(1e3), 5, jax.random.key(0),
            trainable=trainable(net, "R->R.weight"), progress=False)


def test_a_blow_up_inside_a_loop_stops_fit_where_the_loss_reads_only_finite_values():
    # simulate under lax.map (a loop, whose checks jax's checkify loses under grad) and
    # a loss that reads the first 5 ms of a 200 ms run only: once sgd has made the
    # recurrent weight large, the rates overflow after those 5 ms, so the loss and, in
    # the backward pass, the gradient through the first 5 steps stay finite. fit learns
    # of the blow-up from the NaN gradients that simulate's failed check leaves
    # (`simulate._nan_gradient_if`); without them it would train on silently.
    net = _rate_units()

    def early_rates_loss(m, trial, key):
        def run(amplitude):
            m_a = eqx.tree_at(lambda x: x.inputs[0].amplitude, m, amplitude)
            return nj.simulate(m_a, 200.0, 1.0, key=key,
                               record=nj.Record(spikes=(), rates=["R"])).rates["R"][:5]
        return -jax.lax.map(run, jnp.asarray([1.0, 2.0])).mean()

    with pytest.raises(FloatingPointError, match=r"NaN or infinity in population\(s\) \['R'\]"):
        fit(net, early_rates_loss, jnp.zeros(1), optax.sgd(1e3), 20, jax.random.key(0),
            trainable=trainable(net, "R->R.weight"), progress=False)


def test_a_failed_final_state_check_in_fits_steps_makes_the_gradients_nan_not_the_outputs():
    # Under fit's functional checks, simulate's check of its final state leaves the
    # outputs as they are and makes the cotangent of the final state (the anchor) NaN
    # where the check fails: the value is unchanged, every gradient through the anchor
    # is NaN, and without a failure the gradient is the plain one bit for bit.
    from neurojax.simulate import _nan_gradient_if

    x = jnp.arange(3.0)

    def f(w, nan_zero):
        anchor = {"v": jnp.ones(2) * w ** 2}
        return jnp.sum(_nan_gradient_if(x * w, anchor, nan_zero))

    plain = jax.value_and_grad(lambda w: jnp.sum(x * w))(2.0)
    assert jax.value_and_grad(f)(2.0, jnp.asarray(0.0)) == plain
    value, grad = jax.value_and_grad(f)(2.0, jnp.asarray(jnp.nan))
    assert value == plain[0] and np.isnan(grad)


def test_a_check_inside_the_simulation_loop_stops_fit_with_its_message():
    # A strict event buffer (an explicit Sparse capacity) checks every step inside the
    # scan, in the propagation's custom VJP (an equinox check in fit's steps too): the
    # error must come out of the loop under grad and name the overflow.
    # 20 neurons driven above threshold fire together in the first steps, 20 > 4.
    lif = nj.neurons.LIF(c_m=200.0, g_l=10.0, e_l=-60.0, v_th=-50.0, v_reset=-60.0, t_ref=2.0)
    net = nj.Network(
        [nj.Population("E", 20, lif)],
        [nj.Projection("E", "E", nj.connectivity.FixedProbability(0.5), weight=0.1,
                       layout=nj.connectivity.Sparse(capacity=4, kernel="buffer"))],
        inputs=[nj.inputs.Constant("E", amplitude=400.0)],
    ).build(jax.random.key(0))

    def loss(m, target, key):
        rates = nj.simulate(m, 20.0, 0.1, key=key, record=nj.Record(spikes=(), rates=["E"])).rates
        return (rates["E"].mean() - target) ** 2

    with pytest.raises(RuntimeError, match=r"^fit: at step 1, a check inside the loss failed: "
                                           r"event buffer overflow: more than capacity = 4"):
        fit(net, loss, jnp.asarray([10.0]), optax.adam(0.1), 3, jax.random.key(0),
            trainable=trainable(net, "E->E.weight"), progress=False)


def test_fit_steps_hold_no_host_callback():
    # A program with a host callback (equinox's runtime checks) runs synchronously on
    # the CPU, ~7 % slower for the rate RNN of benchmarks/fit_overhead.py: fit's steps
    # trace simulate's checks with checkify instead. The checked step keeps them.
    from neurojax.train import fitting

    net = _rate_units(weight=0.5)
    def loss(m, trial, key):
        return nj.simulate(m, 5.0, 1.0, key=key,
                           record=nj.Record(spikes=(), rates=["R"])).rates["R"].mean()

    params, static = eqx.partition(net, trainable(net, "R->R.weight"))
    arrays, config = eqx.partition(static, eqx.is_array)
    opt = optax.sgd(0.1)
    trees = (params, opt.init(params), arrays, jnp.zeros(1))
    spec = fitting._StepSpec(loss, opt, (), config, None, 1,
                             tuple(jax.tree.structure(x) for x in trees))
    args = (*(jax.tree.leaves(x) for x in trees), jax.random.key(0), np.uint32(0))
    hlo = {diagnose: fitting._train_step.lower(spec, diagnose, *args).compile().as_text()
           for diagnose in (False, True)}
    callback = re.compile(r'custom_call_target="[^"]*callback')  # a host callback's call
    assert not callback.search(hlo[False])
    assert callback.search(hlo[True])


def test_steps_without_simulates_gradient_checks_match_the_checked_steps(monkeypatch):
    # fit's steps leave out simulate's gradient checks (they are run only to diagnose a
    # step whose gradient is non-finite): the losses and the trained parameters are
    # those of steps with the checks, bit for bit. A rate network driven by a Waveform
    # set from each trial (the sampled-input path), minibatches and a constraint.
    from neurojax.train import fitting

    n, steps = 4, 12
    sign = np.array([1.0, 1.0, 1.0, -1.0])
    pop = nj.Population("R", n, nj.neurons.FiringRate(tau=10.0, transfer=nj.neurons.ReLU()))
    proj = nj.Projection("R", "R", nj.connectivity.AllToAll(), weight=np.full((n, n), 0.2) * sign,
                         layout=nj.connectivity.Dense())
    drive = nj.inputs.Waveform("R", times=jnp.arange(steps) * 1.0, values=jnp.zeros((steps, n)))
    net = nj.Network([pop], [proj], inputs=[drive]).build(jax.random.key(0))
    model = {"net": constrain(net, {"R->R": Dale(sign)}), "w_in": jnp.full((n,), 0.5)}
    rng = np.random.default_rng(0)
    data = (jnp.asarray(rng.normal(size=(16, steps))), jnp.asarray(rng.normal(size=(16,))))

    def loss(m, trial, key):
        u, target = trial
        network = eqx.tree_at(lambda x: x.inputs[0].values, m["net"], jnp.outer(u, m["w_in"]))
        r = nj.simulate(network, steps * 1.0, 1.0, key=key, record=nj.Record(spikes=["R"]))
        return (r.spikes["R"][-1].mean() - target) ** 2

    kw = dict(batch_size=4, progress=False, trainable=trainable(model, include=["*.free", "*w_in*"]))
    fast = fit(model, loss, data, optax.adam(0.05), 5, jax.random.key(2), **kw)
    train_step = fitting._train_step
    monkeypatch.setattr(fitting, "_train_step",
                        lambda spec, diagnose, *args: train_step(spec, True, *args))
    checked = fit(model, loss, data, optax.adam(0.05), 5, jax.random.key(2), **kw)
    assert np.all(np.isfinite(fast.losses)) and len(set(fast.losses)) > 1
    np.testing.assert_array_equal(fast.losses, checked.losses)
    for a, b in zip(jax.tree.leaves(fast.model), jax.tree.leaves(checked.model)):
        np.testing.assert_array_equal(a, b)
