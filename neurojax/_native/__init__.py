"""Optional compiled kernels for XLA:CPU, registered through `jax.ffi`.

`pip install` compiles `events.cc` (setup.py; it needs a C++17 compiler and the XLA
FFI headers that jaxlib ships; `NEUROJAX_NO_NATIVE=1` skips it). The build is
optional: without it, or on platforms other than CPU, neurojax uses its pure-JAX
kernels, which define the semantics and are tested against the compiled ones.

The library records the jaxlib it was compiled against (`NeurojaxBuildJaxlib()`). The
kernels are registered only when that version's major.minor equals the runtime
jaxlib's: a kernel built against other FFI headers (a build environment that resolved
another jaxlib, or jaxlib upgraded after the install) is refused, and `status()` says
why, rather than risking a call across a changed FFI ABI.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import importlib.metadata
import pathlib

import jax

DELIVER_EVENTS = "neurojax_deliver_events"
DELIVER_PROCEDURAL = "neurojax_deliver_procedural"
PAIR_STDP = "neurojax_pair_stdp"
PAIR_STDP_STEP = "neurojax_pair_stdp_step"
SUPPORT_VJP = "neurojax_support_vjp"
TAKE_SLOT = "neurojax_take_slot"
# The calling convention this package uses (NeurojaxKernelVersion in events.cc): a
# build of another version is treated as absent, like a failed build.
KERNEL_VERSION = 2


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def runtime_jaxlib() -> str:
    try:
        return importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:  # e.g. a source build of jaxlib
        from jaxlib import version

        return version.__version__


@functools.cache
def status() -> tuple[bool, str]:
    """`(available, reason)`: whether the compiled CPU kernels are registered with XLA,
    and in words why or why not. Loads and registers them on the first call."""
    here = pathlib.Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_events{suffix}"
        if path.exists():
            break
    else:
        return False, (
            "not built: the install did not compile neurojax/_native/events.cc (no C++17 "
            "compiler, or NEUROJAX_NO_NATIVE was set); the pure-JAX kernels are used"
        )
    try:
        lib = ctypes.cdll.LoadLibrary(str(path))
    except OSError as err:
        return False, f"not loaded ({err}); the pure-JAX kernels are used"
    try:
        lib.NeurojaxKernelVersion.restype = ctypes.c_int32
        version = lib.NeurojaxKernelVersion()
    except AttributeError:  # a build from before the version was recorded
        version = 1
    if version != KERNEL_VERSION:
        return False, (
            f"refused: {path.name} has calling convention {version}, this package needs "
            f"{KERNEL_VERSION} (a build left from an older events.cc); rebuild it with "
            "`pip install -e .`. The pure-JAX kernels are used"
        )
    runtime = runtime_jaxlib()
    try:
        lib.NeurojaxBuildJaxlib.restype = ctypes.c_char_p
        built = lib.NeurojaxBuildJaxlib().decode()
    except AttributeError:  # a build from before the version was recorded
        built = "unknown"
    if built == "unknown" or _major_minor(built) != _major_minor(runtime):
        return False, (
            f"refused: {path.name} was built against jaxlib {built}, but jaxlib {runtime} "
            "is installed (the XLA FFI may differ between releases); rebuild it against "
            "the installed jaxlib with `pip install --no-build-isolation -e .` (or upgrade "
            "jaxlib to the build's). The pure-JAX kernels are used"
        )
    try:
        for name, symbol in ((DELIVER_EVENTS, lib.NeurojaxDeliverEvents),
                             (DELIVER_PROCEDURAL, lib.NeurojaxDeliverProcedural)):
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(symbol), platform="cpu")
    except (AttributeError, RuntimeError) as err:  # a stale or foreign build; XLA's own
        # FFI API version check raises XlaRuntimeError (a RuntimeError)
        return False, f"not registered ({err}); the pure-JAX kernels are used"
    _register_optional(lib)
    return True, f"built against jaxlib {built}, running under jaxlib {runtime}"


_OPTIONAL: set[str] = set()


def _register_optional(lib) -> None:
    """Register the kernels a build may lack (added after calling convention 2, e.g.
    the pair-STDP update and its step with traces, the backward pass over the
    gradient support): one missing
    from an older build leaves that work to pure JAX, and the propagation kernels
    still run."""
    for name, symbol in ((PAIR_STDP, "NeurojaxPairStdp"), (PAIR_STDP_STEP, "NeurojaxPairStdpStep"),
                         (SUPPORT_VJP, "NeurojaxSupportVjp"), (TAKE_SLOT, "NeurojaxTakeSlot")):
        try:
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)),
                                        platform="cpu")
        except (AttributeError, RuntimeError):
            continue
        _OPTIONAL.add(name)


def available() -> bool:
    """Whether the compiled CPU kernels were built and are registered with XLA."""
    return status()[0]


def has(target: str) -> bool:
    """Whether the optional kernel `target` (e.g. `PAIR_STDP`) is registered: the
    compiled kernels are available and this build has it."""
    return available() and target in _OPTIONAL
