"""neurojax._threefry draws exactly what jax.random draws (same keys, same floats) on
the installed JAX, without the rolled loop of JAX's CPU lowering."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurojax import _threefry

SHAPES = [(), (1,), (5,), (1001,), (3, 7)]
# Compiled (eager, each of the hash's ~100 operations is its own dispatch).
UNIFORM = jax.jit(_threefry.uniform, static_argnums=(1, 2))
NORMAL = jax.jit(_threefry.normal, static_argnums=(1, 2))


def _data(keys):
    return jax.random.key_data(keys) if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) else keys


@pytest.mark.parametrize("make_key", [jax.random.key, jax.random.PRNGKey], ids=["typed", "raw"])
@pytest.mark.parametrize("seed", [0, 12345, 2**31 + 7])
def test_split_uniform_and_normal_equal_jax_random(make_key, seed):
    key = make_key(seed)
    np.testing.assert_array_equal(_data(_threefry.split(key)), _data(jax.random.split(key)))
    dtypes = (jnp.float32, jnp.float64) if jax.config.jax_enable_x64 else (jnp.float32,)
    for shape in SHAPES:
        for dtype in dtypes:
            u = UNIFORM(key, shape, dtype)
            assert u.dtype == dtype and u.shape == shape
            np.testing.assert_array_equal(u, jax.random.uniform(key, shape, dtype))
            np.testing.assert_array_equal(NORMAL(key, shape, dtype),
                                          jax.random.normal(key, shape, dtype))


def test_equal_under_jit_vmap_and_scan():
    keys = jax.random.split(jax.random.key(3), 4)
    ours = jax.jit(jax.vmap(lambda k: _threefry.normal(k, (33,), jnp.float32)))(keys)
    theirs = jax.vmap(lambda k: jax.random.normal(k, (33,), jnp.float32))(keys)
    np.testing.assert_array_equal(ours, theirs)

    def stream(split, uniform):
        def step(key, _):
            key, sub = split(key)
            return key, uniform(sub, (17,), jnp.float32)
        return jax.lax.scan(step, jax.random.key(9), None, length=20)[1]

    np.testing.assert_array_equal(
        jax.jit(lambda: stream(_threefry.split, _threefry.uniform))(),
        stream(jax.random.split, jax.random.uniform))


def test_compiled_draw_on_cpu_has_no_loop():
    # The point of the module: JAX's CPU lowering hashes in a rolled loop, one pass
    # over the array per trip; here the rounds are one fusion.
    # Compiled for the CPU whatever the default backend: the key lives there.
    key = jax.device_put(jax.random.key(0), jax.devices("cpu")[0])
    ours = jax.jit(lambda k: _threefry.uniform(k, (1000,), jnp.float32)).lower(key).compile().as_text()
    theirs = jax.jit(lambda k: jax.random.uniform(k, (1000,), jnp.float32)).lower(key).compile().as_text()
    assert " while(" in theirs  # if JAX unrolls on CPU one day, this module can go
    assert " while(" not in ours


def test_other_prng_implementations_and_modes_fall_back_to_jax_random():
    key = jax.random.key(5, impl="rbg")
    np.testing.assert_array_equal(_threefry.uniform(key, (8,), jnp.float32),
                                  jax.random.uniform(key, (8,), jnp.float32))
    np.testing.assert_array_equal(_data(_threefry.split(key)), _data(jax.random.split(key)))
    with jax.threefry_partitionable(False):
        key = jax.random.key(5)
        np.testing.assert_array_equal(_threefry.normal(key, (8,), jnp.float32),
                                      jax.random.normal(key, (8,), jnp.float32))
