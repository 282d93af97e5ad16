"""`jax.random`'s split, uniform and normal draws, bit for bit, with the threefry hash's
rounds unrolled on CPU.

The stochastic inputs (`Poisson`, `PoissonPopulation`, `OrnsteinUhlenbeck`) split their
key and draw a uniform or normal per neuron in every step. On CPU, JAX lowers the
threefry2x32 hash with its 5 groups of rounds in a rolled `fori_loop` (to keep compile
times short), so each draw is a while loop whose trips each pass over the whole array:
12 500 uniforms took ~200 us per step against ~45 us with the rounds unrolled into one
fusion, as JAX lowers them on GPU (benchmarks/README.md, issue 15). This module hashes
with the same operations unrolled, in jnp, and builds `split`, `uniform` and `normal`
on it exactly as `jax.random` does in its default (`jax_threefry_partitionable`) mode:
the same keys and the same floats, which tests/inputs/test_threefry.py checks against
`jax.random` on the installed JAX.

Where that would not hold (a key of another PRNG implementation, or the partitionable
mode switched off) and off the CPU, `jax.random` itself is called.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x, d: int):
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def _hash(k1, k2, x1, x2):
    """threefry2x32 of the counters `(x1, x2)` under the key `(k1, k2)`: 20 rounds and 5
    key injections (Salmon et al. 2011), in the order of JAX's unrolled lowering."""
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = x1 ^ _rotate_left(x2, r)
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _counters(shape):
    """The high and low 32 bits of a 64-bit iota of `shape` (`prng.iota_2x32_shape`)."""
    size = int(np.prod(shape, dtype=np.int64))
    if size > 2**32:
        raise ValueError(f"neurojax draws at most 2**32 values at once, got shape {shape}.")
    lo = jax.lax.iota(jnp.uint32, size).reshape(shape)
    return jnp.zeros(shape, jnp.uint32), lo


def _applies(key) -> bool:
    """Whether the unrolled hash reproduces `jax.random` for `key` (a typed threefry key
    or a raw uint32[2] key of the default threefry implementation)."""
    if not jax.config.jax_threefry_partitionable:
        return False
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.shape == () and str(jax.random.key_impl(key)) == "threefry2x32"
    return key.shape == (2,) and key.dtype == jnp.uint32 and jax.config.jax_default_prng_impl == "threefry2x32"


def _key_words(key):
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return data[0], data[1]


def _cpu_or_jax(key, ours, theirs, *operands):
    if not _applies(key):
        return theirs(key, *operands)
    return jax.lax.platform_dependent(key, *operands, cpu=ours, default=theirs)


def split(key):
    """`jax.random.split(key)`: two new keys, stacked like it (same type as `key`)."""

    def ours(key):
        k1, k2 = _key_words(key)
        b1, b2 = _hash(k1, k2, *_counters((2,)))
        words = jnp.stack([b1, b2], axis=-1)
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(words, impl=jax.random.key_impl(key))
        return words

    return _cpu_or_jax(key, ours, jax.random.split)


def _bits(key, shape, dtype):
    """`jax.random.bits` of `dtype`'s width (32 or 64) in the partitionable mode."""
    k1, k2 = _key_words(key)
    b1, b2 = _hash(k1, k2, *_counters(shape))
    if jnp.dtype(dtype).itemsize == 8:
        return (b1.astype(jnp.uint64) << np.uint64(32)) | b2.astype(jnp.uint64)
    return b1 ^ b2


def _uniform_from(key, shape, dtype, minval, maxval):
    """`jax.random.uniform` (`jax._src.random.core._uniform`), for float32 or float64."""
    finfo = jnp.finfo(dtype)
    uint = jnp.uint64 if finfo.bits == 64 else jnp.uint32
    bits = _bits(key, shape, dtype)
    one = np.array(1.0, dtype).view(uint)
    floats = jax.lax.bitcast_convert_type(
        (bits >> uint(finfo.bits - finfo.nmant)) | one, dtype) - jnp.array(1.0, dtype)
    minval, maxval = jnp.asarray(minval, dtype), jnp.asarray(maxval, dtype)
    return jax.lax.max(minval, floats * (maxval - minval) + minval)


def uniform(key, shape: tuple[int, ...], dtype):
    """`jax.random.uniform(key, shape, dtype)` in [0, 1), for float32 or float64."""
    shape, dtype = tuple(shape), jnp.dtype(dtype)
    if dtype not in (jnp.float32, jnp.float64):
        return jax.random.uniform(key, shape, dtype)
    return _cpu_or_jax(key, lambda k: _uniform_from(k, shape, dtype, 0.0, 1.0),
                       lambda k: jax.random.uniform(k, shape, dtype))


def normal(key, shape: tuple[int, ...], dtype):
    """`jax.random.normal(key, shape, dtype)`, for float32 or float64
    (`jax._src.random.core._normal_real`: sqrt(2) erfinv(u), u uniform in (-1, 1))."""
    shape, dtype = tuple(shape), jnp.dtype(dtype)
    if dtype not in (jnp.float32, jnp.float64):
        return jax.random.normal(key, shape, dtype)

    def ours(k):
        lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
        u = _uniform_from(k, shape, dtype, lo, np.array(1.0, dtype))
        return jax.lax.mul(np.array(np.sqrt(2), dtype), jax.lax.erf_inv(u))

    return _cpu_or_jax(key, ours, lambda k: jax.random.normal(k, shape, dtype))
