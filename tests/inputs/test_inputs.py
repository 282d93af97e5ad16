import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurojax._abstract import Drive
from neurojax.inputs.deterministic import Constant, Waveform
from neurojax.inputs.stochastic import OrnsteinUhlenbeck, Poisson, PoissonPopulation
from neurojax.network import Network, Population
from neurojax.neurons.lif import LIF
from neurojax.simulate import Record, simulate
from neurojax.synapses.kinetics import Delta, Exponential
from neurojax.synapses.receptors import Conductance, Current
from neurojax.distributions import Normal


@eqx.filter_jit
def _run_input(inp, n, steps, dt, key):
    """Scan an input's `step` over `steps` steps; returns the stacked per-step
    `(drive, arrivals or None)`."""
    state = inp.init(n, key=key)

    def body(s, t):
        s, drive = inp.step(s, t, dt)
        return s, (drive, getattr(s, "arrivals", None))

    return jax.lax.scan(body, state, dt * jnp.arange(steps))[1]


def _assert_fields(drive, i=0.0, g=0.0, q=0.0, qg=0.0, rtol=1e-15):
    for got, want in zip((drive.i, drive.g, drive.q, drive.qg), (i, g, q, qg)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=0.0)


# ---------------------------------------------------------------------------------------
# Constant


def test_constant_gives_the_amplitude():
    inp = Constant("E", amplitude=200.0)
    inp.check(4, 0.1)
    state, drive = inp.step(inp.init(4), 0.0, 0.1)
    _assert_fields(drive, i=200.0)
    # Per-neuron amplitudes through a conductance: g = amplitude, i = amplitude * e_rev.
    amp = jnp.array([1.0, 2.0, 3.0])
    inp = Constant("E", amplitude=amp, receptor=Conductance(e_rev=-80.0))
    inp.check(3, 0.1)
    _, drive = inp.step(inp.init(3), 5.0, 0.1)
    _assert_fields(drive, i=np.asarray(amp) * -80.0, g=amp)
    v = jnp.array([-70.0, -60.0, -50.0])
    np.testing.assert_allclose(drive.current(v), np.asarray(amp) * (-80.0 - np.asarray(v)))


def test_constant_validation():
    with pytest.raises(ValueError, match=r"amplitude"):
        Constant("E", amplitude=float("nan"))
    with pytest.raises(ValueError, match=r"amplitude must be a scalar or have shape \(4,\)"):
        Constant("E", amplitude=jnp.ones(3)).check(4, 0.1)


# ---------------------------------------------------------------------------------------
# Waveform


def test_waveform_interpolates_linearly_and_holds_its_ends():
    times, values = np.array([0.0, 10.0, 20.0, 25.0]), np.array([0.0, 100.0, 50.0, -20.0])
    inp = Waveform("E", times=times, values=values)
    inp.check(3, 0.1)
    t = np.array([-5.0, 0.0, 2.5, 10.0, 17.5, 22.0, 25.0, 40.0])
    expected = np.interp(t, times, values)  # np.interp also holds the end values
    step = jax.jit(lambda t: inp.step(inp.init(3), t, 0.1)[1])
    for tk, want in zip(t, expected):
        _assert_fields(step(tk), i=want, rtol=1e-14)
    np.testing.assert_allclose(expected[[0, -1]], [0.0, -20.0])


def test_waveform_per_neuron_columns():
    rng = np.random.default_rng(0)
    times = np.array([1.0, 2.0, 4.0, 8.0])
    values = rng.normal(size=(4, 3))
    inp = Waveform("E", times=times, values=values, receptor=Conductance(e_rev=-10.0))
    inp.check(3, 0.1)
    value = jax.jit(lambda t: inp.value(t))
    for t in [0.0, 1.0, 1.3, 2.0, 3.9, 7.0, 8.0, 100.0]:
        want = np.array([np.interp(t, times, values[:, j]) for j in range(3)])
        np.testing.assert_allclose(value(t), want, rtol=1e-14, atol=1e-15)
        _, drive = inp.step(inp.init(3), t, 0.1)
        _assert_fields(drive, i=-10.0 * want, g=want, rtol=1e-14)


def test_waveform_gradient_reaches_the_two_bracketing_rows():
    # d value(t) / d values: weight 1 - f on the row at or before t, f on the next one
    # (one row past either end), nothing elsewhere.
    times = np.array([1.0, 2.0, 4.0, 8.0])
    values = jnp.zeros((4, 3))
    c = jnp.array([1.0, -2.0, 0.5])
    for t, rows in [(0.0, {0: 1.0}), (1.0, {0: 1.0}), (3.0, {1: 0.5, 2: 0.5}),
                    (7.0, {2: 0.25, 3: 0.75}), (8.0, {3: 1.0}), (100.0, {3: 1.0})]:
        grad = jax.jit(jax.grad(lambda v: Waveform("E", times=times, values=v).value(t) @ c))(values)
        want = np.zeros((4, 3))
        for row, weight in rows.items():
            want[row] = weight * np.asarray(c)
        np.testing.assert_allclose(grad, want, rtol=1e-14, atol=1e-15)


def test_waveform_validation():
    with pytest.raises(ValueError, match="strictly increasing"):
        Waveform("E", times=[0.0, 2.0, 1.0], values=[0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"values must have shape \(3,\)"):
        Waveform("E", times=[0.0, 1.0, 2.0], values=[0.0, 1.0])
    with pytest.raises(ValueError, match="3 columns"):
        Waveform("E", times=[0.0, 1.0], values=np.zeros((2, 4))).check(3, 0.1)


# ---------------------------------------------------------------------------------------
# Poisson


@pytest.mark.parametrize("generator", ["jax", "hash"])
def test_poisson_arrival_counts_have_poisson_mean_and_variance(getkey, generator):
    # Two groups of 100 neurons: 50 sources at 10 Hz or 40 Hz, dt = 0.1 ms, so
    # lambda = n_sources rate dt = 0.05 or 0.2 arrivals per step.
    rate = jnp.concatenate([jnp.full(100, 10.0), jnp.full(100, 40.0)])
    inp = Poisson("E", rate=rate, n_sources=50, weight=2.0, generator=generator)
    inp.check(200, 0.1)
    drive, arrivals = _run_input(inp, 200, 2000, 0.1, getkey())
    # Delta kinetics + Current receptor: weight * count as an instantaneous charge.
    _assert_fields(drive, q=2.0 * np.asarray(arrivals))
    counts = np.asarray(arrivals)
    np.testing.assert_array_equal(counts, np.round(counts))
    for group, lam in [(slice(0, 100), 0.05), (slice(100, 200), 0.2)]:
        c = counts[:, group].ravel()
        n = c.size  # 2e5 independent Poisson(lam) draws
        # Standard errors: of the mean sqrt(lam / n); of the sample variance
        # sqrt((mu4 - sigma^4) / n) with the Poisson mu4 = lam + 3 lam^2. 5 of them put a
        # false failure at ~1e-6 while a 3 % rate error (e.g. a wrong 1e-3) is caught.
        assert abs(c.mean() - lam) < 5 * np.sqrt(lam / n)
        assert abs(c.var() - lam) < 5 * np.sqrt((lam + 2 * lam**2) / n)


def test_poisson_filters_arrivals_through_its_kinetics_and_receptor(getkey):
    kinetics = Exponential(tau=2.0)
    inp = Poisson("E", rate=200.0, n_sources=20, weight=1.5, synapse=kinetics,
                  receptor=Conductance(e_rev=-75.0))
    drive, arrivals = _run_input(inp, 10, 500, 0.1, getkey())
    # Independently: the same kinetics driven by the recorded weighted arrivals.
    s = jax.lax.scan(
        lambda st, x: kinetics.step(st, x, 0.1), kinetics.init(10), 1.5 * arrivals
    )[1]
    assert np.asarray(arrivals).sum() > 100
    np.testing.assert_allclose(drive.g, s, rtol=1e-14)
    np.testing.assert_allclose(drive.i, -75.0 * np.asarray(s), rtol=1e-14)
    np.testing.assert_array_equal(drive.q, 0.0)


def test_poisson_drive_gives_the_expected_mean_membrane_drift(getkey):
    # 1000 LIF neurons (tau_m = c_m / g_l = 20 ms, threshold out of reach) each receive
    # 100 sources at 10 Hz through delta current synapses of w = 25 pA·ms (0.1 mV jumps).
    c_m, g_l, w, n, dt, steps = 250.0, 12.5, 25.0, 1000, 0.1, 500
    lif = LIF(c_m=c_m, g_l=g_l, e_l=0.0, v_th=1000.0, v_reset=0.0, t_ref=0.0)
    drive = Poisson("E", rate=10.0, n_sources=100, weight=w, synapse=Delta(), receptor=Current())
    model = Network([Population("E", n, lif)], [], inputs=[drive]).build(getkey())
    res = simulate(model, steps * dt, dt, key=getkey(), record=Record(spikes=(), v={"E": None}))
    v = np.asarray(res.variables["E.v"])  # (steps, n): v after each step [mV]

    # Shot noise: v_k = sum_{j<k} a^{k-1-j} (w / c_m) N_j with a = e^{-dt/tau_m}, N_j ~
    # Poisson(lam) independent, lam = n_sources rate dt. Mean and variance exactly:
    lam = 100 * 10.0 * dt * 1e-3
    a = np.exp(-dt * g_l / c_m)
    k = np.arange(1, steps + 1)
    mean = (w / c_m) * lam * (1 - a**k) / (1 - a)
    var = (w / c_m) ** 2 * lam * (1 - a ** (2 * k)) / (1 - a**2)
    # The stationary drift is tau_m w n_sources rate / c_m = 2 mV (Brunel's mu = C J nu tau).
    assert abs(mean[-1] / (1 - a**steps) - 2.0) < 0.01
    # Each step's population mean within 5 standard errors sqrt(var / n) (false-failure
    # odds ~6e-7 per step, < 3e-4 over all 500 steps); the SE is 0.5 % of the drift.
    np.testing.assert_array_less(np.abs(v.mean(axis=1) - mean), 5 * np.sqrt(var / n))
    # The spread at the end: 5 SE of a sample variance of ~Gaussian data (~900 arrivals
    # per neuron contribute, so the skew is small).
    assert abs(v[-1].var(ddof=1) - var[-1]) < 5 * var[-1] * np.sqrt(2 / (n - 1))


def test_poisson_validation():
    with pytest.raises(ValueError, match=r"rate \[Hz\]"):
        Poisson("E", rate=-1.0)
    with pytest.raises(ValueError, match="n_sources"):
        Poisson("E", rate=1.0, n_sources=0)
    with pytest.raises(ValueError, match=r"rate must be a scalar or have shape \(5,\)"):
        Poisson("E", rate=jnp.ones(4)).check(5, 0.1)
    with pytest.raises(ValueError, match="synapse tau"):
        Poisson("E", rate=1.0, synapse=Exponential(tau=0.5)).check(5, 1.0)


# ---------------------------------------------------------------------------------------
# PoissonPopulation


@pytest.mark.parametrize("generator", ["jax", "hash"])
def test_poisson_population_rate_matches_within_statistical_tolerance(getkey, generator):
    rate = jnp.concatenate([jnp.full(250, 20.0), jnp.full(250, 50.0)])
    pop = PoissonPopulation(rate=rate, generator=generator)
    dt, steps = 0.1, 2000
    pop.check(500, dt)

    @jax.jit
    def run(key, drive_i):
        # A huge drive must change nothing: a source population ignores its input.
        drive = Drive(jnp.full(500, drive_i), jnp.zeros(500), jnp.zeros(500), jnp.zeros(500))
        body = lambda s, _: pop.step(s, drive, dt)
        return jax.lax.scan(body, pop.init(500, key=key), None, length=steps)[1]

    key = getkey()
    spikes = np.asarray(run(key, 0.0))
    np.testing.assert_array_equal(spikes, np.asarray(run(key, 1e6)))
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    for group, nu in [(slice(0, 250), 20.0), (slice(250, 500), 50.0)]:
        p = nu * dt * 1e-3
        count = spikes[:, group].sum()
        trials = steps * 250  # 5e5 independent Bernoulli(p) steps per group
        # 5 binomial standard errors: 10 % of the rate at 20 Hz, 6.3 % at 50 Hz.
        assert abs(count - trials * p) < 5 * np.sqrt(trials * p * (1 - p))
        rate_hz = count / (trials * dt * 1e-3)
        assert abs(rate_hz - nu) < 5 * np.sqrt(trials * p * (1 - p)) / (trials * dt * 1e-3)


def test_poisson_population_check_rejects_rate_dt_of_a_tenth_or_more():
    PoissonPopulation(rate=999.0).check(3, 0.1)  # rate dt = 0.0999
    for rate, dt in [(1000.0, 0.1), (2000.0, 0.1), (100.0, 1.0)]:
        with pytest.raises(ValueError, match=r"PoissonPopulation rate \[Hz\]"):
            PoissonPopulation(rate=rate).check(3, dt)
    with pytest.raises(ValueError, match=r"rate must be a scalar or have shape \(3,\)"):
        PoissonPopulation(rate=jnp.ones(2)).check(3, 0.1)


# ---------------------------------------------------------------------------------------
# Ornstein-Uhlenbeck


def _sum_weighted(rho_terms, length):
    """sum_{m=-(length-1)}^{length-1} (length - |m|) rho_terms(m), vectorised."""
    m = np.arange(-(length - 1), length)
    return np.sum((length - np.abs(m)) * rho_terms(m))


@pytest.mark.parametrize("generator", ["jax", "hash"])
@pytest.mark.parametrize("dt", [0.1, 1.0])
def test_ornstein_uhlenbeck_stationary_statistics(getkey, dt, generator):
    mu, sigma, tau, n, duration = 3.0, 2.0, 5.0, 400, 400.0
    inp = OrnsteinUhlenbeck("E", mean=mu, sigma=sigma, tau=tau, generator=generator)
    inp.check(n, dt)
    steps = round(duration / dt)
    drive, _ = _run_input(inp, n, steps, dt, getkey())
    x = np.asarray(drive.i)  # (steps, n), the value used in each step [pA]
    for field in (drive.g, drive.q, drive.qg):
        np.testing.assert_array_equal(field, 0.0)
    y = x - mu

    # The samples are an exact discretisation (the update is the exact transition and
    # init draws from the stationary law), so for ANY dt they form a Gaussian AR(1)
    # series with lag-m correlation rho_m = a^|m|, a = e^{-dt/tau}. The standard errors
    # below are the exact ones of each estimator for such a series over n independent
    # neurons; tolerances are 5 of them (false failure ~1e-6 per check).
    a = np.exp(-dt / tau)
    rho = lambda m: a ** np.abs(m)
    K = steps
    se_mean = sigma * np.sqrt(_sum_weighted(rho, K) / (n * K**2))
    assert abs(x.mean() - mu) < 5 * se_mean
    # Second moment about the known mean: Cov(y_j^2, y_k^2) = 2 sigma^4 rho^2.
    se_var = sigma**2 * np.sqrt(2 * _sum_weighted(lambda m: rho(m) ** 2, K) / (n * K**2))
    assert abs(np.mean(y**2) - sigma**2) < 5 * se_var
    assert se_var < 0.05 * sigma**2  # the test resolves a 25 % error in the variance

    # Autocorrelation e^{-lag/tau} at lags given in ms, the same whatever dt is.
    for lag in [2.0, 5.0, 10.0]:
        L = round(lag / dt)
        M = K - L
        r = np.mean(y[:-L] * y[L:]) / sigma**2
        # Isserlis: Cov(y_j y_{j+L}, y_k y_{k+L}) = sigma^4 (rho_m^2 + rho_{m+L} rho_{m-L}).
        terms = lambda m: rho(m) ** 2 + rho(m + L) * rho(m - L)
        se_r = np.sqrt(_sum_weighted(terms, M) / (n * M**2))
        assert abs(r - np.exp(-lag / tau)) < 5 * se_r
        assert se_r < 0.03


def test_ornstein_uhlenbeck_conductance_receptor(getkey):
    inp = OrnsteinUhlenbeck("E", mean=10.0, sigma=1.0, tau=3.0, receptor=Conductance(e_rev=-80.0))
    drive, _ = _run_input(inp, 5, 50, 0.1, getkey())
    assert np.all(np.asarray(drive.g) != 0.0)
    np.testing.assert_allclose(drive.i, -80.0 * np.asarray(drive.g), rtol=1e-15)
    np.testing.assert_array_equal(drive.q, 0.0)


def test_ornstein_uhlenbeck_validation():
    with pytest.raises(ValueError, match=r"sigma \[pA or nS\]"):
        OrnsteinUhlenbeck("E", sigma=-1.0)
    with pytest.raises(ValueError, match=r"tau \[ms\]"):
        OrnsteinUhlenbeck("E", tau=0.0)
    with pytest.raises(ValueError, match="OrnsteinUhlenbeck tau"):
        OrnsteinUhlenbeck("E", tau=0.5).check(3, 1.0)
    with pytest.raises(ValueError, match=r"mean must be a scalar or have shape \(3,\)"):
        OrnsteinUhlenbeck("E", mean=jnp.zeros(2)).check(3, 0.1)


# ---------------------------------------------------------------------------------------
# Keys


@pytest.mark.parametrize(
    "inp",
    [Poisson("E", rate=5.0), PoissonPopulation(rate=5.0), OrnsteinUhlenbeck("E")],
    ids=["poisson", "poisson_population", "ornstein_uhlenbeck"],
)
def test_stochastic_inputs_need_a_key(inp):
    with pytest.raises(ValueError, match="PRNG key"):
        inp.init(4)


@pytest.mark.parametrize("generator", ["jax", "hash"])
def test_same_key_same_noise_and_vmap_over_keys(getkey, generator):
    inp = Poisson("E", rate=100.0, n_sources=10, generator=generator)
    key = getkey()
    a, _ = _run_input(inp, 8, 100, 0.1, key)
    b, _ = _run_input(inp, 8, 100, 0.1, key)
    np.testing.assert_array_equal(a.q, b.q)
    keys = jax.random.split(getkey(), 3)
    batched = jax.vmap(lambda k: _run_input(inp, 8, 100, 0.1, k)[0].q)(keys)
    for i in range(3):
        np.testing.assert_array_equal(batched[i], _run_input(inp, 8, 100, 0.1, keys[i])[0].q)
    assert not np.array_equal(batched[0], batched[1])


@pytest.mark.parametrize("lam", [0.3, 7.0, 40.0, 250.0])
def test_poisson_counts_mean_and_variance_for_small_and_split_means(lam):
    # Means above 16 are drawn as sums of equal parts; both paths must be Poisson:
    # mean and variance equal lam. Tolerances are 5 standard errors of the estimates
    # (sd of the sample mean sqrt(lam/N); of the sample variance about lam sqrt(2/N)).
    import jax.numpy as jnp

    from neurojax.inputs.stochastic import poisson_counts

    n = 100_000
    x = np.asarray(jax.jit(poisson_counts)(jax.random.key(11), jnp.full((n,), lam)))
    assert np.all(x == np.round(x)) and x.min() >= 0
    assert abs(x.mean() - lam) < 5 * np.sqrt(lam / n)
    assert abs(x.var() - lam) < 5 * lam * np.sqrt(2.0 / n + 1.0 / (lam * n))


@pytest.mark.parametrize("lam", [0.3, 7.0, 40.0, 250.0])
def test_hash_poisson_counts_mean_and_variance_for_small_and_split_means(lam):
    # As above for generator="hash", whose split means draw each part's uniforms from
    # another part key of the same step: the parts must be independent for the sum's
    # variance to be lam (correlated parts would inflate it by up to the number of
    # parts, 16 at lam = 250). Same 5-standard-error tolerances.
    from neurojax.inputs.stochastic import HashStream, _hash_poisson_counts

    n = 100_000
    stream = HashStream.from_key(jax.random.key(11))
    x = np.asarray(jax.jit(_hash_poisson_counts)(stream, jnp.full((n,), lam)))
    assert np.all(x == np.round(x)) and x.min() >= 0
    assert abs(x.mean() - lam) < 5 * np.sqrt(lam / n)
    assert abs(x.var() - lam) < 5 * lam * np.sqrt(2.0 / n + 1.0 / (lam * n))


def test_hash_generator_draws_are_uncorrelated_across_neurons_and_steps(getkey):
    # The hash of (seed, step, neuron) must not tie neighbouring neurons or successive
    # steps together. 200 sources at p = 0.05 for 5000 steps: the correlation of two
    # neurons' spike trains and the lag-1 autocorrelation of each train estimate 0 with
    # standard error 1/sqrt(5000) = 0.014; the mean over neuron pairs (199 adjacent
    # pairs, and pairs 64 apart) and over neurons has a standard error ~1/sqrt(5000 * 199)
    # = 1e-3, so |mean| < 5e-3 is 5 s.e. (a mixer leaking the index into the next draw
    # gives correlations of order 0.1). The per-neuron counts are binomial: their
    # variance across neurons is n p (1 - p) within 5 s.e. of a sample variance.
    pop = PoissonPopulation(rate=500.0, generator="hash")
    n, steps, dt = 200, 5000, 0.1
    body = lambda s, _: pop.step(s, Drive.zeros(n), dt)  # noqa: E731
    x = np.asarray(jax.jit(lambda k: jax.lax.scan(body, pop.init(n, key=k), None, length=steps)[1])(
        getkey()))
    z = (x - x.mean(0)) / x.std(0)
    for shift in (1, 64):
        assert abs(np.mean(z[:, shift:] * z[:, :-shift])) < 5e-3
    assert abs(np.mean(z[1:] * z[:-1])) < 5e-3
    p, counts = 0.05, x.sum(0)
    var = steps * p * (1 - p)
    assert abs(counts.var(ddof=1) - var) < 5 * var * np.sqrt(2.0 / (n - 1))


def test_hash_normals_are_standard_normal(getkey):
    # OrnsteinUhlenbeck(generator="hash")'s Box-Muller normals: 200 000 draws have the
    # standard normal's mean, variance and tail fractions beyond 1, 2 and 3 within 5
    # standard errors (binomial s.e. of each fraction; the s.e. of the variance is
    # sqrt(2 / n)). A wrong transform (e.g. a missing factor 2 in sqrt(-2 ln u)) moves
    # the variance by far more.
    from scipy.stats import norm

    from neurojax.inputs.stochastic import HashStream

    n = 200_000
    z = np.asarray(jax.jit(lambda k: HashStream.from_key(k).normals((n,), jnp.float32))(getkey()),
                   np.float64)
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2.0 / n)
    for c in (1.0, 2.0, 3.0):
        p = 2 * norm.sf(c)
        assert abs(np.mean(np.abs(z) > c) - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_hash_generator_continues_a_run_and_differs_between_keys(getkey):
    # Its state counts the steps: two runs of 50 steps (the second from the first's
    # state) draw what one run of 100 does, and other keys draw other streams.
    pop = PoissonPopulation(rate=300.0, generator="hash")
    step = jax.jit(lambda s: pop.step(s, Drive.zeros(64), 0.1))

    def run(state, steps):
        out = []
        for _ in range(steps):
            state, spikes = step(state)
            out.append(spikes)
        return state, np.stack(out)

    key = getkey()
    _, whole = run(pop.init(64, key=key), 100)
    state, first = run(pop.init(64, key=key), 50)
    _, second = run(state, 50)
    np.testing.assert_array_equal(whole, np.concatenate([first, second]))
    _, other = run(pop.init(64, key=getkey()), 100)
    assert not np.array_equal(whole, other)


def test_generator_validation():
    with pytest.raises(ValueError, match="generator must be one of"):
        PoissonPopulation(rate=5.0, generator="mt19937")
    with pytest.raises(ValueError, match=r"Poisson\('E'\) generator"):
        Poisson("E", rate=5.0, generator="numpy")
    with pytest.raises(ValueError, match=r"OrnsteinUhlenbeck\('E'\) generator"):
        OrnsteinUhlenbeck("E", generator="hash32")


# ---------------------------------------------------------------------------------------
# Gradients with respect to a Poisson rate


def _one_step(inp, n, key, dt=0.1):
    """The draws (counts or spikes) of one step of `inp` (a Poisson input or source)."""
    state = inp.init(n, key=key)
    if isinstance(inp, Poisson):
        return inp.step(state, 0.0, dt)[0].arrivals
    return inp.step(state, Drive.zeros(n), dt)[1]


def _with_rate(inp, rate):
    return eqx.tree_at(lambda m: m.rate, inp, rate)


SOURCES = [
    (Poisson("E", rate=40.0, n_sources=50), "Poisson\\('E'\\)", 50 * 0.1 * 1e-3),
    (PoissonPopulation(rate=40.0), "PoissonPopulation", 0.1 * 1e-3),
    (Poisson("E", rate=40.0, n_sources=50, generator="hash"), "Poisson\\('E'\\)", 50 * 0.1 * 1e-3),
    (PoissonPopulation(rate=40.0, generator="hash"), "PoissonPopulation", 0.1 * 1e-3),
]
SOURCE_IDS = ["poisson", "poisson_population", "poisson_hash", "poisson_population_hash"]


@pytest.mark.parametrize("inp, owner, _", SOURCES, ids=SOURCE_IDS)
def test_differentiating_the_exact_sampler_wrt_rate_raises(inp, owner, _):
    # Fail-before: the gradient was silently 0 (integer draws), in both modes.
    key = jax.random.key(3)
    mean_draw = lambda r: jnp.mean(_one_step(_with_rate(inp, r), 4, key))  # noqa: E731
    message = owner + r": cannot differentiate .* Poisson rate .*rate_gradient='straight_through'"
    with pytest.raises(ValueError, match=message):
        jax.grad(mean_draw)(jnp.asarray(40.0))
    with pytest.raises(ValueError, match=message):
        jax.jvp(mean_draw, (jnp.asarray(40.0),), (jnp.asarray(1.0),))
    with pytest.raises(ValueError, match=message):  # a whole-model gradient asks for it too
        eqx.filter_grad(lambda m: jnp.mean(_one_step(m, 4, key)))(inp)
    # Without a tangent on the rate nothing changes: values, and vmap over rates.
    np.testing.assert_array_equal(
        jax.vmap(mean_draw)(jnp.array([40.0, 40.0])), jnp.full(2, mean_draw(40.0))
    )


def test_gradient_wrt_other_parameters_with_poisson_drive_still_works(getkey):
    # The rate is held fixed (a symbolic-zero tangent through the scan, with and
    # without checkpointing): no error, and both rate_gradient modes give the same
    # gradient with respect to the input's weight and the neurons' capacitance.
    lif = LIF(c_m=250.0, g_l=12.5, e_l=0.0, v_th=1000.0, v_reset=0.0, t_ref=0.0)
    build_key, run_key = getkey(), getkey()

    def grads(mode, checkpoint):
        drive = Poisson("E", rate=10.0, n_sources=100, weight=25.0, rate_gradient=mode)
        model = Network([Population("E", 8, lif)], [], inputs=[drive]).build(build_key)

        def loss(weight, c_m):
            m = eqx.tree_at(lambda m: (m.inputs[0].weight, m.populations[0].neuron.c_m),
                            model, (weight, c_m))
            res = simulate(m, 20.0, 0.1, key=run_key, checkpoint=checkpoint,
                           record=Record(spikes=(), v={"E": None}))
            return jnp.mean(res.variables["E.v"])

        return jax.grad(loss, argnums=(0, 1))(jnp.asarray(25.0), jnp.asarray(250.0))

    reference = grads(None, False)
    assert all(np.isfinite(g) and g != 0.0 for g in reference)
    for mode, checkpoint in [(None, True), ("straight_through", False)]:
        for g, r in zip(grads(mode, checkpoint), reference):
            np.testing.assert_allclose(g, r, rtol=1e-12)


@pytest.mark.parametrize("inp, _, slope", SOURCES, ids=SOURCE_IDS)
def test_straight_through_rate_gradient_matches_the_analytic_mean_slope(inp, _, slope):
    # lambda = 0.2 arrivals per step (Poisson: 50 sources at 40 Hz) or p = 0.004 (source).
    st = dataclasses.replace(inp, rate_gradient="straight_through")
    n, rate = 20_000, jnp.asarray(40.0)
    draws = eqx.filter_jit(_one_step)
    mean_draw = lambda r, key, m: jnp.mean(_one_step(_with_rate(m, r), n, key))  # noqa: E731
    grad = eqx.filter_jit(jax.grad(mean_draw))
    for seed in range(3):
        key = jax.random.key(seed)
        # Forward draws exact and bit-identical to the default mode.
        np.testing.assert_array_equal(draws(st, n, key), draws(inp, n, key))
        # d count / d rate := d E[count] / d rate per draw: deterministic, so the
        # seed-averaged gradient equals n_sources dt (Poisson) or dt (source) [1/Hz]
        # with zero standard error, to rounding.
        np.testing.assert_allclose(grad(rate, key, st), slope, rtol=1e-12)
    # jit == eager; vmap over rates.
    np.testing.assert_allclose(jax.grad(mean_draw)(rate, key, st), slope, rtol=1e-12)
    np.testing.assert_allclose(
        eqx.filter_jit(jax.vmap(jax.grad(mean_draw), in_axes=(0, None, None)))(
            jnp.array([5.0, 40.0, 90.0]), key, st
        ),
        np.full(3, slope), rtol=1e-12,
    )
    # The analytic slope itself, from the exact sampler: central differences with common
    # random numbers (the inversion sampler is monotone in its mean), each neuron an
    # independent estimate; 5 standard errors of their mean (false failure ~6e-7).
    h = 20.0  # [Hz]; E[draw] is linear in the rate, so any h is unbiased
    key = jax.random.key(7)
    diff = np.asarray(draws(_with_rate(inp, rate + h), n, key)
                      - draws(_with_rate(inp, rate - h), n, key)) / (2 * h)
    assert abs(diff.mean() - slope) < 5 * diff.std(ddof=1) / np.sqrt(n)


def test_straight_through_is_biased_for_nonlinear_losses_as_documented():
    # For L = count^2 the estimator's expectation is 2 lambda dlambda/drate; the true
    # dE[L]/drate is (1 + 2 lambda) dlambda/drate (the docstring's example).
    inp = Poisson("E", rate=40.0, n_sources=50, rate_gradient="straight_through")
    n, lam, dlam = 50_000, 0.2, 50 * 0.1 * 1e-3
    key = jax.random.key(1)
    g = jax.grad(lambda r: jnp.mean(_one_step(_with_rate(inp, r), n, key) ** 2))(
        jnp.asarray(40.0)
    )
    counts = np.asarray(_one_step(inp, n, key))
    np.testing.assert_allclose(g, 2 * counts.mean() * dlam, rtol=1e-12)
    # 2 mean(count) is within 5 SE (2 sqrt(lam / n)) of 2 lambda, 1 dlambda below truth.
    assert abs(g / dlam - 2 * lam) < 5 * 2 * np.sqrt(lam / n)
    assert abs(g / dlam - (1 + 2 * lam)) > 0.9


def test_rate_gradient_validation():
    for make in (lambda v: Poisson("E", rate=1.0, rate_gradient=v),
                 lambda v: PoissonPopulation(rate=1.0, rate_gradient=v)):
        with pytest.raises(ValueError, match=r"rate_gradient must be one of \(None, 'straight_through'\)"):
            make("gaussian")
        assert make(None).rate_gradient is None


# ---------------------------------------------------------------------------------------
# SpikeTrains: a source population that replays given spikes.

from neurojax.connectivity.builders import FixedProbability  # noqa: E402
from neurojax.connectivity.weights import Dense, Sparse  # noqa: E402
from neurojax.inputs.deterministic import SpikeTrains  # noqa: E402
from neurojax.network import Projection  # noqa: E402

_DT = 0.1  # [ms]


def _raster(key, steps, n, p):
    return np.asarray(jax.random.bernoulli(key, p, (steps, n)), np.uint8)


def test_spike_trains_replay_their_rows_then_fall_silent():
    spikes = _raster(jax.random.key(0), 30, 12, 0.2)
    net = Network([Population("in", 12, SpikeTrains(spikes))])
    res = simulate(net.build(jax.random.key(0)), 5.0, _DT, key=jax.random.key(1))
    out = np.asarray(res.spikes["in"])
    assert out.shape == (50, 12)
    np.testing.assert_array_equal(out[:30], spikes.astype(bool))
    assert not out[30:].any()


def test_spike_times_of_a_result_replay_in_the_same_steps():
    # Record a Poisson source, then replay its spike times: the same raster, step by step.
    net = Network([Population("src", 40, PoissonPopulation(rate=300.0))])
    res = simulate(net.build(jax.random.key(0)), 20.0, _DT, key=jax.random.key(3))
    times, neurons = res.spike_times("src")
    assert times.size > 100
    replay = SpikeTrains.from_times(times, neurons, 40, 200, _DT)
    np.testing.assert_array_equal(np.asarray(replay.spikes, bool), np.asarray(res.spikes["src"]))


def _driven(spikes, layout):
    n_in = spikes.shape[1]
    post = LIF(c_m=250.0, g_l=12.5, e_l=0.0, v_th=1e3, v_reset=0.0)  # never fires: v is the readout
    return Network(
        [Population("in", n_in, SpikeTrains(spikes)), Population("out", 7, post)],
        [Projection("in", "out", FixedProbability(0.5), weight=Normal(50.0, 10.0), layout=layout)],
    ).build(jax.random.key(2))


def _v_out(model, duration=4.0):
    res = simulate(model, duration, _DT, key=jax.random.key(1), record=Record(spikes=(), v={"out": None}))
    return res.variables["out.v"]


def test_spike_trains_drive_sparse_and_dense_projections_alike():
    spikes = _raster(jax.random.key(1), 40, 30, 0.05)
    v_sparse = _v_out(_driven(spikes, Sparse()))
    v_dense = _v_out(_driven(spikes, Dense()))
    assert np.abs(np.asarray(v_dense)).max() > 1.0  # the input does arrive
    np.testing.assert_allclose(v_sparse, v_dense, rtol=1e-5, atol=1e-5)


def test_trials_vmap_like_a_loop_and_spikes_are_not_a_gradient_leaf():
    model = _driven(_raster(jax.random.key(1), 40, 30, 0.05), Sparse())
    trials = np.stack([_raster(jax.random.key(k), 40, 30, 0.05) for k in range(3)])

    def with_trial(trial):
        return eqx.tree_at(lambda m: m.population("in").neuron.spikes, model, trial)

    batched = jax.vmap(lambda t: _v_out(with_trial(t)))(jnp.asarray(trials))
    for k in range(3):
        np.testing.assert_allclose(batched[k], _v_out(with_trial(jnp.asarray(trials[k]))), rtol=1e-6)
    grads = eqx.filter_grad(lambda m: _v_out(m).sum())(model)
    assert grads.population("in").neuron.spikes is None
    assert np.abs(np.asarray(grads.projection("in->out").weights.weights)).sum() > 0


@pytest.mark.parametrize("bad", [np.full((3, 2), 0.5), -np.ones((3, 2)), np.full((3, 2), np.nan)])
def test_spike_trains_refuse_what_is_not_a_count(bad):
    with pytest.raises(ValueError, match="SpikeTrains spikes must be spike counts"):
        SpikeTrains(bad)


def test_spike_trains_shape_and_times_are_checked():
    net = Network([Population("in", 5, SpikeTrains(np.zeros((3, 4))))])
    with pytest.raises(ValueError, match=r"shape \(steps, n\) = \(steps, 5\)"):
        simulate(net.build(jax.random.key(0)), 1.0, _DT, key=jax.random.key(1))
    with pytest.raises(ValueError, match=r"times \[ms\] must lie in \[0, steps \* dt\]"):
        SpikeTrains.from_times([0.5, 2.0], [0, 1], 4, 10, _DT)
    with pytest.raises(ValueError, match=r"neurons must be integer indices in \[0, 4\)"):
        SpikeTrains.from_times([0.5, 0.6], [0, 4], 4, 10, _DT)


def test_waveform_sample_equals_value_at_every_time():
    # `simulate` samples a run's steps with `sample` before its scan; each row must be
    # what `value` (the lookup a step would do) returns at that time, including times
    # before, between, on and after the samples: the same formula, the row found by a
    # binary search instead of a masked reduction, so equal up to the compiler's
    # rounding of the fraction (a few ulp of the values: atol 4 eps max|values|).
    rng = np.random.default_rng(1)
    times = np.array([0.05, 0.4, 0.45, 1.3, 2.0])
    for values in (rng.normal(size=(5, 3)), rng.normal(size=5)):
        inp = Waveform("E", times=times, values=values)
        t = jnp.arange(30) * 0.1
        sampled = jax.jit(lambda t: inp.sample(t))(t)
        value = jax.jit(lambda tk: inp.value(tk))
        looked_up = jnp.stack([value(tk) for tk in t])
        np.testing.assert_allclose(sampled, looked_up, rtol=0,
                                   atol=4 * np.finfo(float).eps * np.abs(values).max())
        assert sampled.shape == (30,) + values.shape[1:]


def test_waveform_sample_memory_grows_with_steps_plus_samples_not_their_product():
    # A long run against a finely sampled waveform (CI ran out of memory on a 5.1 s
    # pairing protocol with a 0.05 ms waveform when sampling compared every step with
    # every sample): XLA's plan for sampling 20,000 steps of a 20,000-sample,
    # 10-column waveform must stay within a few arrays of (steps + samples) x columns
    # (one (steps, samples) float64 array alone would be 3.2 GB).
    steps, k, n = 20_000, 20_000, 10
    inp = Waveform("E", times=jnp.arange(k) * 0.05, values=jnp.ones((k, n)))
    t = jnp.arange(steps) * 0.05
    compiled = jax.jit(lambda t: inp.sample(t)).lower(t).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    assert temp <= 8 * (steps + k) * n * 8, temp


def test_waveform_sample_gradient_by_matrix_equals_the_gathers_transpose(monkeypatch):
    # The backward pass of `sample` multiplies by the interpolation weights instead of
    # scattering every step's two rows; it must give the gathers' own gradient with
    # respect to the samples and to the sample times (same terms, summed in another
    # order: float64 round-off, < 1e-13 relative over 30 steps).
    from neurojax.inputs import deterministic

    rng = np.random.default_rng(2)
    times = jnp.array([0.05, 0.4, 0.45, 1.3, 2.0])
    values = jnp.asarray(rng.normal(size=(5, 3)))
    c = jnp.asarray(rng.normal(size=(30, 3)))
    t = jnp.arange(30) * 0.1

    def loss(v, tm):
        return jnp.sum(c * Waveform("E", times=tm, values=v).sample(t))

    by_matrix = jax.jit(jax.grad(loss, argnums=(0, 1)))(values, times)
    monkeypatch.setattr(deterministic, "_MATRIX_ELEMENTS", 0)  # the gathers' transpose
    by_scatter = jax.jit(jax.grad(loss, argnums=(0, 1)))(values, times)
    for a, b in zip(by_matrix, by_scatter):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert np.all(np.abs(by_matrix[0]) > 0) and np.any(np.abs(by_matrix[1]) > 0)


@pytest.mark.parametrize("by_matrix", [True, False])
@pytest.mark.parametrize("dt", [0.125, 0.1])
def test_waveform_on_the_step_grid_is_a_slice_equal_to_the_interpolation(monkeypatch, by_matrix, dt):
    # A waveform sampled at its own sample times (a task's inputs given at the model's
    # dt, the run starting on a sample) is taken as a slice of its samples, decided when
    # the program runs (here the sample times and the first step are jit arguments):
    # the samples exactly; the general interpolation (forced here) gives the same bit
    # for bit, values and gradients with respect to the samples and the sample times,
    # for dt = 0.125 (exact in binary) and dt = 0.1 (where XLA's fused multiply-add
    # would make the fraction ~1e-16 instead of 0 without `_lookup`'s correction).
    # Off the grid (shifted times, a run that starts before or ends after the samples,
    # a finer step) the general path runs.
    from neurojax.inputs import deterministic

    if not by_matrix:
        monkeypatch.setattr(deterministic, "_MATRIX_ELEMENTS", 0)  # the scatter-add
    rng = np.random.default_rng(4)
    k = 12
    grid = jnp.arange(k) * dt
    values = jnp.asarray(rng.normal(size=(k, 3)))
    c = jnp.asarray(rng.normal(size=(2 * k, 3)))

    def loss(v, tm, first, steps, step_dt):
        t = (first + jnp.arange(steps)) * step_dt
        out = Waveform("E", times=tm, values=v).sample(t)
        return jnp.sum(c[:steps] * out), out

    @functools.partial(jax.jit, static_argnums=(2, 3))
    def on_grid(tm, first, steps, step_dt):  # times computed and compared in one program
        t = (first + jnp.arange(steps)) * step_dt
        return deterministic._on_grid(t, tm, deterministic._lookup(t, tm)[0])[0]

    def run(tm, first, steps, step_dt):  # traced afresh: the patch below acts on tracing
        f = jax.value_and_grad(lambda v, tm, first: loss(v, tm, first, steps, step_dt),
                               argnums=(0, 1), has_aux=True)
        return jax.jit(f)(values, tm, first)

    cases = [(grid, 0, k, dt, True),  # every sample (the last: its lookup's fraction is 1)
             (grid, 3, 5, dt, True), (grid, 11, 1, dt, True),
             (grid + 0.5 * dt, 0, 6, dt, False),  # between samples
             (grid, 8, 6, dt, False),  # past the last sample: held
             (grid, -2, 5, dt, False),  # before the first: held
             (grid, 0, 20, 0.5 * dt, False),  # a finer step
             (grid, 0, 2 * k, dt, False)]  # more steps than samples
    for tm, first, steps, step_dt, expect in cases:
        assert bool(on_grid(tm, first, steps, step_dt)) is expect, (first, steps, step_dt)
        (_, fast), grads = run(tm, first, steps, step_dt)
        with monkeypatch.context() as m:
            m.setattr(deterministic, "_on_grid",
                      lambda t, times, lo: (jnp.asarray(False), jnp.zeros((), lo.dtype)))
            (_, general), general_grads = run(tm, first, steps, step_dt)
        for a, b in zip((fast, *grads), (general, *general_grads)):
            np.testing.assert_array_equal(a, b)
        if expect:
            np.testing.assert_array_equal(fast, values[first:first + steps])
            want = np.zeros((k, 3))
            want[first:first + steps] = c[:steps]
            np.testing.assert_array_equal(grads[0], want)
