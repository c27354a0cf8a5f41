"""Builds the optional C extension `attribution._keccak`; all other metadata is in pyproject.toml.

`optional=True`: without a working C compiler the install still succeeds and attribution falls back to numpy +
safe-pysha3 (same results, slower). No -march flag: the SIMD paths are chosen at run time.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("attribution._keccak", ["attribution/_keccak.c"], extra_compile_args=["-O3"],
                             optional=True)])
