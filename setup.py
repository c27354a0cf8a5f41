"""Builds the optional C extensions `attribution._keccak` and `inference._kernels`; all other metadata is in
pyproject.toml.

`optional=True`: without a working C compiler the install still succeeds; attribution falls back to numpy +
safe-pysha3 (same results, slower) and the engine to torch's SDPA for decode attention. No -march flag: the SIMD
paths are chosen at run time.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("attribution._keccak", ["attribution/_keccak.c"], extra_compile_args=["-O3"], optional=True),
    Extension("inference._kernels", ["inference/_kernels.c"], extra_compile_args=["-O3"], optional=True),
])
