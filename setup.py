"""Build the optional CPU kernel (neurojax/_native/events.cc) with the XLA FFI headers
that jaxlib ships. If it cannot be built (no C++ compiler, no headers) the install
goes on and neurojax uses its pure-JAX kernels; `neurojax.connectivity.native_kernel_status()`
says which and why. `NEUROJAX_NO_NATIVE=1` skips the build on purpose.

The jaxlib version the kernel is compiled against is baked into the library
(`NeurojaxBuildJaxlib()`); at import neurojax only registers the kernel when that
version's major.minor equals the runtime jaxlib's (see neurojax/_native/__init__.py).
Everything else about the package is in pyproject.toml."""

import importlib.metadata
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SKIP = os.environ.get("NEUROJAX_NO_NATIVE", "").strip().lower() not in ("", "0", "false", "no")


class BuildWithFFIHeaders(build_ext):
    def build_extension(self, ext):
        try:
            import jax.ffi

            ext.include_dirs.append(jax.ffi.include_dir())
            jaxlib_version = importlib.metadata.version("jaxlib")
            ext.define_macros.append(("NEUROJAX_BUILD_JAXLIB", f'"{jaxlib_version}"'))
            super().build_extension(ext)
            print(f"neurojax: optional CPU kernel built against jaxlib {jaxlib_version}.")
        except Exception as err:  # noqa: BLE001 - any failure means: use pure JAX
            print(f"neurojax: optional CPU kernel not built ({err}); the pure-JAX kernels will be used.")


if SKIP:
    print("neurojax: NEUROJAX_NO_NATIVE is set: the optional CPU kernel is not built.")

setup(
    ext_modules=[] if SKIP else [
        Extension(
            "neurojax._native._events",
            sources=["neurojax/_native/events.cc"],
            language="c++",
            extra_compile_args=["-O3", "-std=c++17", "-Wno-return-type"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildWithFFIHeaders},
)
