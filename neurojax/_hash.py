"""Counter-based random numbers from a 32-bit integer hash, for what must be cheap per
element: procedural connectivity regenerates its synapses from (seed, neuron, k) at
every use (`neurojax.connectivity.procedural`, also in the C++ kernel, bit for bit),
and `Poisson` / `PoissonPopulation(generator="hash")` draw their per-step uniforms from
(seed, step, neuron) (`neurojax.inputs.stochastic`).

Why not `jax.random`: on XLA:CPU its threefry (and `rbg`) cost ~12-17 ns per number
(measured on the 2-core benchmark machine: 16.6 us for the 1000 uniforms of one step of
the Song-Abbott input population, 11.6 ns per number in bulk), while the hash below is
a handful of 32-bit integer operations that XLA vectorises: 0.55 us for the same 1000
uniforms. The hash is a statistical generator, not a cryptographic one, and its
streams are not `jax.random`'s: the same key gives other draws than the default
generator."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, UInt32

GOLDEN = 0x9E3779B9  # 2^32 / golden ratio (odd): the splitmix counter increment
# Stream constants: the weight draws of a synapse hash its target hash with these, so
# they are decorrelated from the target and from each other.
STREAM_1, STREAM_2 = 0x68E31DA4, 0xB5297A4D


def u32(x: int) -> Array:
    return jnp.asarray(x, jnp.uint32)


def lowbias32(x: UInt32[Array, "*shape"]) -> UInt32[Array, "*shape"]:
    """A bijective 32-bit mixer with near-ideal avalanche (C. Wellons, "Prospecting for
    hash functions", 2018); uint32 arithmetic wraps modulo 2^32."""
    x = x ^ (x >> u32(16))
    x = x * u32(0x7FEB352D)
    x = x ^ (x >> u32(15))
    x = x * u32(0x846CA68B)
    return x ^ (x >> u32(16))


def unit_uniform(h: UInt32[Array, "*shape"], dtype, open_at_zero: bool = False):
    """The top 24 bits of `h` as a float in [0, 1) (or (0, 1]): exact in float32."""
    bits = (h >> u32(8)).astype(dtype)
    return (bits + 1 if open_at_zero else bits) * 2.0**-24


def standard_normal(h: UInt32[Array, "*shape"], dtype):
    """A standard normal per hash `h`: Box–Muller from two hashes derived from it; with
    24-bit uniforms the tails are cut at sqrt(2 ln 2^24) = 5.8 standard deviations."""
    u1 = unit_uniform(lowbias32(h ^ u32(STREAM_1)), dtype, open_at_zero=True)
    u2 = unit_uniform(lowbias32(h ^ u32(STREAM_2)), dtype)
    return jnp.sqrt(-2.0 * jnp.log(u1)) * jnp.cos(2.0 * jnp.pi * u2)
