"""LORALEDGER_KERNELS=compiled: the portable forward with its elementwise chains through torch.compile.

One engine run of a mixed batch (LoRA ranks 4/8/16 and base rows, prefill and decode) on the compiled path gives the
same greedy tokens as the eager torch path, makes no native call, and reports its compile time.
"""

from __future__ import annotations

import pathlib

import pytest

from inference import compiled, kernels
from inference.adapters.cache import AdapterCache
from inference.adapters.weights import linear_shapes
from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.lora import LoraPool
from inference.model import load_base_model

PROMPTS = ["Decode a JSON document", "def dumps(obj, *, skipkeys=False):", "indent"]


def _run(tiny_base_dir: pathlib.Path, adapters: list[pathlib.Path]) -> tuple[list[list[int]], Engine]:
    base = load_base_model(tiny_base_dir)
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    cache = AdapterCache(base.config, pool)
    for p in adapters:
        cache.add(p)
    eng = Engine(base, cache, EngineConfig(max_batch=8, max_seq_len=96))
    jobs = [(a.name if a is not None else None, p) for a in [*adapters, None] for p in PROMPTS[:2]]
    handles = [eng.submit(GenerationRequest(prompt=p, adapter=a, max_tokens=6, ignore_eos=True)) for a, p in jobs]
    eng.run_until_idle(timeout=300)
    cache.close()
    return [h.result().token_ids for h in handles], eng


@pytest.mark.slow
def test_compiled_path_equals_torch_path(monkeypatch: pytest.MonkeyPatch, tiny_base_dir: pathlib.Path,
                                         tiny_adapters: list[pathlib.Path]) -> None:
    adapters = tiny_adapters[:3]  # ranks 4, 8, 16
    monkeypatch.setenv(kernels.ENV, "torch")
    eager, eng = _run(tiny_base_dir, adapters)
    assert not eng.fwd.ops.compiled
    monkeypatch.setenv(kernels.ENV, "compiled")
    assert kernels.selected() == "compiled" and not kernels.native_enabled()
    got, eng = _run(tiny_base_dir, adapters)
    assert eng.fwd.ops.compiled and not eng.fwd.native_attention_ok
    assert got == eager
    assert compiled.compile_seconds() > 0  # the first calls compiled graphs, and that time was counted
