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

from tests.fixtures.models import TINY_SEED, TINY_VOCAB

# vLLM starts its engine core in a spawned process: no inherited threads (pytest's, torch's) in the child
os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
os.environ.setdefault("OMP_NUM_THREADS", "1")
if multiprocessing.get_start_method(allow_none=True) is None:
    multiprocessing.set_start_method("spawn")


def build_vllm_tiny_base(out_dir: pathlib.Path) -> pathlib.Path:
    """The tiny Llama with 32-wide heads (deterministic)."""
    from inference.demo import build_llama, stdlib_docs, train_tokenizer

    tok = train_tokenizer([stdlib_docs("json", max_chars=20_000)], vocab_size=TINY_VOCAB)
    model = build_llama(tok, hidden=128, layers=2, heads=4, kv_heads=2, intermediate=256, seed=TINY_SEED,
                        max_positions=512, initializer_range=0.1)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The tiny Llama vLLM can run (heads 32 wide)."""
    return build_vllm_tiny_base(tmp_path_factory.mktemp("tiny-base-vllm") / "tiny-llama")
