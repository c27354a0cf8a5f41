"""Fixtures of the vLLM backend's tests (run by `make test-vllm` in .venv-vllm; one vLLM engine per module).

`tiny_base_dir` is overridden here: vLLM's CPU attention takes head sizes of 32 and up, the shared tiny Llama's
heads are 16 wide. Same recipe otherwise (hidden 128, 4 heads of 32, 2 kv heads, 2 layers, vocab ~512), so
`make_adapter` and the node fixtures of tests/integration/node build on it unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import pathlib

import pytest

from tests.fixtures.models import build_tiny_base

# vLLM starts its engine core in a spawned process: no inherited threads (pytest's, torch's) in the child
os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
os.environ.setdefault("OMP_NUM_THREADS", "1")
if multiprocessing.get_start_method(allow_none=True) is None:
    multiprocessing.set_start_method("spawn")


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The tiny Llama vLLM can run (heads 32 wide)."""
    return build_tiny_base(tmp_path_factory.mktemp("tiny-base-vllm") / "tiny-llama", hidden=128, intermediate=256)
