"""LORALEDGER_KERNELS picks the kernel path for the whole package (`inference.kernels`).

- an unknown value is refused with the list of choices;
- ``native`` on a machine that cannot run the kernels raises `KernelsUnavailable` (engine and pool alike), ``auto``
  falls back to torch there;
- ``torch`` forces the portable path even where the native kernels run: an engine run makes zero native calls
  (counted at `kernels.ext`, the one place every native call goes through), while ``auto`` makes some.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

from inference import kernels
from inference.errors import InferenceError
from inference.lora import LoraPool
from tests.fixtures.kernels import CountingKernels

SHAPES = {"q_proj": (32, 32), "v_proj": (32, 16)}


class _NoAvx512:
    """The extension on a CPU without AVX-512: `available()` is false (this machine's CPU cannot say so on demand)."""

    def available(self) -> bool:
        return False


def test_mode_parses_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kernels.ENV, raising=False)
    assert kernels.mode() == "auto"
    for v, want in (("torch", "torch"), (" Native ", "native"), ("", "auto"), ("AUTO", "auto")):
        monkeypatch.setenv(kernels.ENV, v)
        assert kernels.mode() == want
    monkeypatch.setenv(kernels.ENV, "avx2")
    with pytest.raises(InferenceError, match="auto, native, torch"):
        kernels.mode()
    with pytest.raises(InferenceError, match="LORALEDGER_KERNELS='avx2'"):
        LoraPool(SHAPES, 1)


@pytest.mark.parametrize("ext", [None, _NoAvx512()], ids=["not-built", "no-avx512"])
def test_native_where_it_cannot_run(monkeypatch: pytest.MonkeyPatch, ext: Any) -> None:
    monkeypatch.setattr(kernels, "ext", ext)
    ok, why = kernels.native_status()
    assert not ok and ("not built" in why if ext is None else "AVX-512" in why)
    monkeypatch.setenv(kernels.ENV, "auto")
    assert kernels.selected() == "torch" and not LoraPool(SHAPES, 1).native
    monkeypatch.setenv(kernels.ENV, "native")
    with pytest.raises(kernels.KernelsUnavailable, match=re.escape(f"LORALEDGER_KERNELS=native but {why}")):
        kernels.native_enabled()
    with pytest.raises(kernels.KernelsUnavailable, match="LORALEDGER_KERNELS=torch"):
        LoraPool(SHAPES, 1)


def test_torch_forces_the_portable_path_where_native_runs(
        monkeypatch: pytest.MonkeyPatch, tiny_base_dir: pathlib.Path, tiny_adapters: list[pathlib.Path]) -> None:
    ok, why = kernels.native_status()
    if not ok:
        pytest.skip(f"native kernels cannot run here ({why}): nothing to force off")
    from inference.adapters.cache import AdapterCache
    from inference.adapters.weights import linear_shapes
    from inference.engine import Engine, EngineConfig, GenerationRequest
    from inference.model import load_base_model

    base = load_base_model(tiny_base_dir)
    counter = CountingKernels(kernels.ext)
    monkeypatch.setattr(kernels, "ext", counter)

    def run(mode: str) -> tuple[list[list[int]], dict[str, int]]:
        monkeypatch.setenv(kernels.ENV, mode)
        counter.calls.clear()
        pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
        cache = AdapterCache(base.config, pool)
        for p in tiny_adapters[:3]:
            cache.add(p)
        eng = Engine(base, cache, EngineConfig(max_batch=8, max_seq_len=64))
        assert pool.native is (mode == "auto") and eng.fwd.native_attention_ok is (mode == "auto")
        try:
            hs = [eng.submit(GenerationRequest(prompt_ids=[5, 6, 7, 8 + i], adapter=a, max_tokens=6, ignore_eos=True))
                  for i, a in enumerate([tiny_adapters[0].name, None, tiny_adapters[2].name])]
            eng.run_until_idle(timeout=60)
            return [h.result().token_ids for h in hs], {k: v for k, v in counter.calls.items()
                                                        if k not in ("available", "simd")}
        finally:
            eng.stop()
            cache.close()

    torch_tokens, torch_calls = run("torch")
    native_tokens, native_calls = run("auto")
    assert torch_calls == {}, torch_calls  # not one native kernel call under LORALEDGER_KERNELS=torch
    assert all(native_calls.get(f, 0) > 0 for f in ("decode", "lora", "add_rmsnorm", "silu_mul")), native_calls
    assert torch_tokens == native_tokens and all(len(t) == 6 for t in torch_tokens)
