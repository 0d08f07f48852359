"""Build of the Cython kernels (the rest of the metadata lives in pyproject.toml).

Environment switches:
  NEOCLI_NO_OPENMP=1   build without OpenMP (kernels then run on one thread)
  NEOCLI_DEBUG=1       bounds/wraparound checks on, -O0 -g (the CI debug build)
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

openmp = os.environ.get("NEOCLI_NO_OPENMP", "") not in ("1", "true", "yes")
debug = os.environ.get("NEOCLI_DEBUG", "") in ("1", "true", "yes")

# Decisions D10: no -march=native / -ffast-math; no FMA contraction, which would
# change float results relative to the reference.
compile_args = ["-O0", "-g"] if debug else ["-O3"]
compile_args += ["-ffp-contract=off", "-fno-strict-aliasing", "-fno-math-errno"]
link_args = []
if openmp and sys.platform != "win32":
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "cdivision": True,
    "embedsignature": True,
}

# The shared .pxd files and the C header are listed as dependencies so that a change
# to them rebuilds the extensions that include them.
shared = ["cython_core/_kernel.pxd", "cython_core/_rng.pxd", "cython_core/_omp.pxd"]
extensions = [
    Extension(
        "neocli._core",
        ["cython_core/_core.pyx"],
        include_dirs=["cython_core"],
        depends=shared,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
    Extension(
        "neocli._predictive",
        ["cython_core/_predictive.pyx"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
    Extension(
        "neocli._image",
        ["cython_core/_image.pyx"],
        include_dirs=["cython_core"],
        # The SOM inner loops, plain C (static functions included by _image.c).
        depends=shared + ["cython_core/som_kernel.h"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
]

# The debug build generates its C into its own directory: cythonize only compares
# timestamps, so sharing cython_core/*.c would silently reuse a release .c for a
# debug build (no checks compiled in) or a debug .c for a release build.
setup(ext_modules=cythonize(extensions, compiler_directives=directives, include_path=["cython_core"],
                            build_dir="build/cython-debug" if debug else None))
