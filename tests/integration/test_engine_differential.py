"""Differential tests: our engine's greedy tokens against peft and plain transformers on the tiny Llama (fp32).

- every adapter alone: our engine == peft `generate` with that adapter active;
- a mixed batch of 16 adapters (+ base rows) in one engine run: every row == its solo output;
- base rows == plain transformers `generate`.
"""

from __future__ import annotations

import pathlib

import pytest
import torch

from inference.adapters.cache import AdapterCache
from inference.adapters.weights import linear_shapes
from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.lora import LoraPool
from inference.model import BaseModel, load_base_model

PROMPTS = [
    "Decode a JSON document",
    "def dumps(obj, *, skipkeys=False):",
    "The object_hook is an optional function",
    "indent",
    "If ensure_ascii is false, these characters will be output as-is.",
]
MAX_TOKENS = 12


@pytest.fixture(scope="module")
def base(tiny_base_dir: pathlib.Path) -> BaseModel:
    return load_base_model(tiny_base_dir)


def _engine(base: BaseModel, adapters: list[pathlib.Path], max_batch: int = 32) -> tuple[Engine, AdapterCache]:
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    cache = AdapterCache(base.config, pool)
    for p in adapters:
        cache.add(p)
    return Engine(base, cache, EngineConfig(max_batch=max_batch, max_seq_len=128)), cache


def _hf_greedy(model: torch.nn.Module, tokenizer: object, prompt: str) -> list[int]:
    ids = tokenizer(prompt, return_tensors="pt").input_ids  # type: ignore[operator]
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_TOKENS,  # type: ignore
                             do_sample=False)
    return out[0, ids.shape[1]:].tolist()


@pytest.fixture(scope="module")
def peft_reference(tiny_base_dir: pathlib.Path, tiny_adapters: list[pathlib.Path], base: BaseModel
                   ) -> dict[tuple[str | None, str], list[int]]:
    """(adapter dir name or None, prompt) -> greedy tokens from peft (adapter alone) or transformers (base)."""
    import transformers
    from peft import PeftModel

    ref: dict[tuple[str | None, str], list[int]] = {}
    plain = transformers.AutoModelForCausalLM.from_pretrained(tiny_base_dir, dtype=torch.float32).eval()
    for p in PROMPTS:
        ref[(None, p)] = _hf_greedy(plain, base.tokenizer, p)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_base_dir, dtype=torch.float32).eval()
    peft_model = PeftModel.from_pretrained(model, tiny_adapters[0], adapter_name=tiny_adapters[0].name)
    for a in tiny_adapters[1:]:
        peft_model.load_adapter(a, adapter_name=a.name)
    peft_model.eval()
    for a in tiny_adapters:
        peft_model.set_adapter(a.name)
        for p in PROMPTS[:2]:
            ref[(a.name, p)] = _hf_greedy(peft_model, base.tokenizer, p)
    return ref


def test_base_rows_equal_transformers(base: BaseModel, peft_reference: dict[tuple[str | None, str], list[int]]
                                      ) -> None:
    eng, _ = _engine(base, [])
    handles = [eng.submit(GenerationRequest(prompt=p, max_tokens=MAX_TOKENS)) for p in PROMPTS]
    eng.run_until_idle(timeout=120)
    for p, h in zip(PROMPTS, handles, strict=True):
        assert h.result().token_ids == peft_reference[(None, p)], p


def test_each_adapter_alone_equals_peft(base: BaseModel, tiny_adapters: list[pathlib.Path],
                                        peft_reference: dict[tuple[str | None, str], list[int]]) -> None:
    eng, cache = _engine(base, tiny_adapters)
    differs_from_base = 0
    for a in tiny_adapters:
        for p in PROMPTS[:2]:
            h = eng.submit(GenerationRequest(prompt=p, adapter=a.name, max_tokens=MAX_TOKENS))
            eng.run_until_idle(timeout=60)
            got = h.result().token_ids
            assert got == peft_reference[(a.name, p)], (a.name, p)
            differs_from_base += got != peft_reference[(None, p)]
    assert differs_from_base > 0  # the adapters really change the output, so the comparison means something
    cache.close()


def test_mixed_batch_of_16_adapters_equals_solo(base: BaseModel, tiny_adapters: list[pathlib.Path],
                                                peft_reference: dict[tuple[str | None, str], list[int]]) -> None:
    eng, cache = _engine(base, tiny_adapters, max_batch=64)
    jobs: list[tuple[str | None, str]] = [(a.name, p) for a in tiny_adapters for p in PROMPTS[:2]]
    jobs += [(None, p) for p in PROMPTS]
    handles = [eng.submit(GenerationRequest(prompt=p, adapter=a, max_tokens=MAX_TOKENS)) for a, p in jobs]
    eng.run_until_idle(timeout=120)
    assert eng.decode_rows_total / max(1, eng.decode_steps) > 16  # they really ran together
    for job, h in zip(jobs, handles, strict=True):
        assert h.result().token_ids == peft_reference[job], job
    cache.close()


def test_mixed_batch_with_small_token_budget_joins_and_leaves(
        base: BaseModel, tiny_adapters: list[pathlib.Path],
        peft_reference: dict[tuple[str | None, str], list[int]]) -> None:
    """Requests admitted over several steps (prefill budget) and finishing at different lengths still match."""
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    cache = AdapterCache(base.config, pool)
    for p in tiny_adapters:
        cache.add(p)
    eng = Engine(base, cache, EngineConfig(max_batch=5, max_seq_len=128, prefill_token_budget=16))
    jobs = [(a.name, PROMPTS[i % 2]) for i, a in enumerate(tiny_adapters)]
    handles = [eng.submit(GenerationRequest(prompt=p, adapter=a, max_tokens=MAX_TOKENS)) for a, p in jobs]
    eng.run_until_idle(timeout=120)
    for job, h in zip(jobs, handles, strict=True):
        assert h.result().token_ids == peft_reference[job], job
    cache.close()
