"""LORALEDGER_KERNELS=compiled: the portable forward with its elementwise chains through torch.compile.

One engine run of a mixed batch (LoRA ranks 4/8/16 and base rows, prefill and decode) on the compiled path gives the
same greedy tokens as the eager torch path, makes no native call, and reports its compile time. On CPU only forwards
large enough to repay a compiled call use the compiled pieces (`compiled.use_compiled`).
"""

from __future__ import annotations

import pathlib

import pytest
import torch

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
    monkeypatch.setattr(compiled, "CPU_MIN_ELEMENTS", 0)  # every forward through the compiled pieces, tiny or not
    monkeypatch.setenv(kernels.ENV, "torch")
    eager, eng = _run(tiny_base_dir, adapters)
    assert not eng.fwd.ops.compiled
    monkeypatch.setenv(kernels.ENV, "compiled")
    assert kernels.selected() == "compiled" and not kernels.native_enabled()
    got, eng = _run(tiny_base_dir, adapters)
    assert eng.fwd.ops.compiled and not eng.fwd.native_attention_ok
    assert got == eager
    assert compiled.compile_seconds() > 0  # the first calls compiled graphs, and that time was counted


def test_compiled_pieces_only_for_forwards_that_repay_them() -> None:
    cpu = torch.device("cpu")
    assert not compiled.use_compiled(cpu, 32, 512)  # a decode step of 32 rows: eager is faster on CPU
    assert compiled.use_compiled(cpu, 1024, 512)  # a prefill wave: the fused loops win
    assert compiled.use_compiled(cpu, compiled.CPU_MIN_ELEMENTS // 512, 512)
    assert compiled.use_compiled(torch.device("cuda"), 1, 512)  # accelerators: always compiled


@pytest.mark.slow
def test_small_cpu_forwards_take_the_eager_pieces(monkeypatch: pytest.MonkeyPatch, tiny_base_dir: pathlib.Path,
                                                  tiny_adapters: list[pathlib.Path]) -> None:
    """The tiny model's forwards are far below the CPU threshold: the compiled path calls no compiled piece, and
    lowering the threshold routes the same run through them (counted through the shared compiled `Ops`)."""
    monkeypatch.setenv(kernels.ENV, "compiled")
    calls = {"n": 0}
    shared = compiled.ops(True)
    for name in ("add_norm", "rope_qk", "gate_mul"):
        fn = getattr(shared, name)

        def counted(*args: object, _fn: object = fn) -> object:
            calls["n"] += 1
            return _fn(*args)  # type: ignore[operator]

        monkeypatch.setattr(shared, name, counted)
    eager, _ = _run(tiny_base_dir, tiny_adapters[:1])
    assert calls["n"] == 0
    monkeypatch.setattr(compiled, "CPU_MIN_ELEMENTS", 0)
    got, _ = _run(tiny_base_dir, tiny_adapters[:1])
    assert calls["n"] > 0
    assert got == eager
