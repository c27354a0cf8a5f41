"""The vLLM backend with LoRA disabled (`VllmEngine(spec, lora=False)`, what `loraledger bench serving --peers
--vllm-no-lora` measures as vLLM's fastest base-only reference): base-model greedy tokens identical to our engine's
on the same weights, and adapters refused with a clear error at add time and on a request. One engine for the module.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from inference.api import AdapterError, EngineClient, EngineSpec, GenerationRequest, RequestInvalid, content_hash_of
from inference.backends import build_engine

pytestmark = pytest.mark.timeout(1800)

PROMPTS = ["Decode a JSON document", "def dumps(obj, *, skipkeys=False):", "indent"]
MAX_TOKENS = 10


def _spec(base: pathlib.Path, store: pathlib.Path, backend: str) -> EngineSpec:
    return EngineSpec(model_dir=base, adapter_store=store, backend=backend, device="cpu", dtype="float32",
                      max_batch=8, max_queue=64, max_seq_len=128)


@pytest.fixture(scope="module")
def no_lora(tiny_base_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from inference.backends.vllm_engine import VllmEngine

    eng = VllmEngine(_spec(tiny_base_dir, tmp_path_factory.mktemp("nolora-store"), "vllm"), lora=False)
    eng.start()
    try:
        eng.wait_ready(900)
        yield eng
    finally:
        eng.stop()


def _tokens(eng: EngineClient) -> list[list[int]]:
    handles = [eng.submit(GenerationRequest(prompt=p, max_tokens=MAX_TOKENS, ignore_eos=True)) for p in PROMPTS]
    return [h.result(timeout=600).token_ids for h in handles]


def test_base_tokens_equal_ours(no_lora: Any, tiny_base_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    assert not no_lora.lora and no_lora.engine_args().enable_lora is False
    ours = build_engine(_spec(tiny_base_dir, tmp_path / "ours-store", "loraledger"))
    ours.start()
    try:
        mine = _tokens(ours)
    finally:
        ours.stop()
    theirs = _tokens(no_lora)
    assert theirs == mine and all(len(t) == MAX_TOKENS for t in theirs)


def test_adapters_refused(no_lora: Any, make_adapter: Any, tmp_path: pathlib.Path) -> None:
    p = make_adapter(tmp_path / "a", seed=7)
    with pytest.raises(AdapterError, match="LoRA disabled"):
        no_lora.add_adapter(content_hash_of(p), p, p.name)
    with pytest.raises(RequestInvalid, match="LoRA disabled.*without an adapter"):
        no_lora.submit(GenerationRequest(prompt="indent", adapter=p.name, max_tokens=2))
    assert no_lora.adapters() == []
