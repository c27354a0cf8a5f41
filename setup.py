"""Builds the optional C extensions `attribution._keccak` and `inference._kernels`; all other metadata is in
pyproject.toml.

Optional: without a working C compiler the install still succeeds; attribution falls back to numpy +
safe-pysha3 (same results, slower) and the engine to torch's SDPA for decode attention. Under `CI=true` they are
required: a failed build fails the install instead of turning their tests into skips (tests/conftest.py checks the
same at the start of a pytest run). No -march flag: the SIMD paths are chosen at run time.
"""

import os

from setuptools import Extension, setup

OPTIONAL = os.environ.get("CI", "").strip().lower() != "true"

setup(ext_modules=[
    Extension("attribution._keccak", ["attribution/_keccak.c"], extra_compile_args=["-O3"], optional=OPTIONAL),
    Extension("inference._kernels", ["inference/_kernels.c"], extra_compile_args=["-O3"], optional=OPTIONAL),
])
