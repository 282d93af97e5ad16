"""Build the optional CPU kernel (neurojax/_native/events.cc) with the XLA FFI headers
that jaxlib ships. If it cannot be built (no C++ compiler, no headers) the install
goes on and neurojax uses its pure-JAX kernels; `neurojax.connectivity.native_kernel_available()`
says which. Everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildWithFFIHeaders(build_ext):
    def build_extension(self, ext):
        try:
            import jax.ffi

            ext.include_dirs.append(jax.ffi.include_dir())
            super().build_extension(ext)
        except Exception as err:  # noqa: BLE001 - any failure means: use pure JAX
            print(f"neurojax: optional CPU kernel not built ({err}); the pure-JAX kernels will be used.")


setup(
    ext_modules=[
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
