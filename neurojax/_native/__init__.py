"""Optional compiled kernels for XLA:CPU, registered through `jax.ffi`.

`pip install` compiles `events.cc` (setup.py; it needs a C++17 compiler and the XLA
FFI headers that jaxlib ships). The build is optional: without it, or on platforms
other than CPU, neurojax uses its pure-JAX kernels, which define the semantics and
are tested against the compiled ones.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import pathlib

import jax

DELIVER_EVENTS = "neurojax_deliver_events"
DELIVER_PROCEDURAL = "neurojax_deliver_procedural"
# The calling convention this package uses (NeurojaxKernelVersion in events.cc): a
# build of another version is treated as absent, like a failed build.
KERNEL_VERSION = 2


@functools.cache
def available() -> bool:
    """Whether the compiled CPU kernels were built and are registered with XLA."""
    here = pathlib.Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_events{suffix}"
        if path.exists():
            break
    else:
        return False
    try:
        lib = ctypes.cdll.LoadLibrary(str(path))
        version = lib.NeurojaxKernelVersion
        version.restype = ctypes.c_int32
        if version() != KERNEL_VERSION:
            return False
        for name, symbol in ((DELIVER_EVENTS, lib.NeurojaxDeliverEvents),
                             (DELIVER_PROCEDURAL, lib.NeurojaxDeliverProcedural)):
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(symbol), platform="cpu")
    except (OSError, AttributeError):  # a stale or foreign build: use pure JAX
        return False
    return True
