"""Continuation of fixed points over an input or a parameter (`nj.theory.continuation`)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurojax as nj

from ._nets import ssn, ssn_at, tsodyks


def test_ssn_branch_over_input_matches_published_points_and_stability():
    # Warm-started Newton along h = 0.5 ... 20 mV (both populations, REFERENCES.md §8):
    # the published fixed points, stable all along, eigenvalues real at low input and
    # complex (damped oscillations, §8 point 3) at h = 10-20 mV.
    base = ssn(0.5)
    hs = jnp.linspace(0.5, 20.0, 40)  # steps of 0.5 mV
    branch = nj.theory.continuation(base, ssn_at, hs)
    assert bool(branch.converged.all()) and bool(branch.stable.all())
    r = np.asarray(branch.rates)
    for h, r_e, r_i in ((1.0, 0.4747, 0.5161), (5.0, 8.4543, 15.7836),
                        (15.0, 11.2093, 35.2291), (20.0, 11.0875, 42.7385)):
        k = int(np.argmin(np.abs(np.asarray(hs) - h)))
        np.testing.assert_allclose(r[k], [r_e, r_i], atol=5.01e-5)  # 4 decimals
    kinds = [nj.theory.KINDS[int(k)] for k in branch.kind]
    assert kinds[0] == "stable node" and kinds[-1] == "stable focus"
    at_10 = int(np.argmin(np.abs(np.asarray(hs) - 10.0)))
    np.testing.assert_allclose(branch.eigenvalues[at_10] * 1e3, [-105 - 39j, -105 + 39j],
                               atol=0.5)  # [1/s], published to 1 s^-1
    # r_E supersaturates (peaks near 15 mV, §8) while r_I keeps rising.
    assert 12.0 <= float(hs[np.argmax(r[:, 0])]) <= 17.0
    assert np.all(np.diff(r[:, 1]) > 0)


def test_extra_drive_branch_is_linear_in_the_threshold_linear_regime():
    # Extra drive S_i to I of the Tsodyks network: dI*/dS_i = -0.125, dE*/dS_i =
    # -0.2083 (REFERENCES.md §7) along the whole branch, with the table's end points.
    branch = nj.theory.continuation(tsodyks(), "I", jnp.linspace(0.0, 1.0, 11))
    assert bool(branch.converged.all()) and bool(branch.stable.all())
    np.testing.assert_allclose(np.diff(branch.rates[:, 1]) / 0.1, -0.125, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(branch.rates)[[0, 5, 10]],
                               [[0.708333, 0.625], [0.604167, 0.5625], [0.5, 0.5]], atol=1e-6)


def test_continuation_vmaps_and_differentiates_under_jit():
    # A batch of two SSNs (W_EE = 1.2, 1.25) traced together equals each traced alone,
    # and the gradient of a branch summary w.r.t. W_EE matches central differences
    # (eps 1e-5 mV·s; Newton's implicit adjoint at every point of the scan).
    base = ssn(1.0)
    hs = jnp.linspace(1.0, 3.0, 3)

    def with_w(w):
        return eqx.tree_at(lambda m: m.projections[0].weights.weights, base,
                           jnp.reshape(w, (1, 1)))

    @jax.jit
    def summary(w):
        return jnp.sum(nj.theory.continuation(with_w(w), ssn_at, hs).rates[:, 0])

    batch = jax.vmap(summary)(jnp.array([1.2, 1.25]))
    np.testing.assert_allclose(batch[1], summary(1.25), rtol=1e-10)
    eps = 1e-5
    fd = (summary(1.25 + eps) - summary(1.25 - eps)) / (2 * eps)
    np.testing.assert_allclose(jax.grad(summary)(1.25), fd, rtol=1e-6)


def test_bad_parameter_names_the_argument():
    with pytest.raises(ValueError, match="parameter must name a population"):
        nj.theory.continuation(tsodyks(), "X", jnp.zeros(3))
    with pytest.raises(ValueError, match="values must be a non-empty 1-D array"):
        nj.theory.continuation(tsodyks(), "I", jnp.zeros(0))
