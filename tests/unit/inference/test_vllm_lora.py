"""The vLLM backend's adapter bookkeeping without vLLM itself: stable int ids, add-time refusals that name the
limit and the setting, references that keep a removed adapter's copy until its last request ends."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from inference.adapters.identity import adapter_id_of
from inference.adapters.store import ContentStore
from inference.api import AdapterNameTaken, AdapterNotFound, AdapterRankTooLarge, AdapterUnsupportedFeature
from inference.backends.vllm_lora import ZERO_LORA_ID, VllmAdapters, lora_int_id
from inference.demo import load_config


def test_int_ids_stable_and_never_clash() -> None:
    h = bytes.fromhex("00000005") + bytes(28)
    assert lora_int_id(h, set()) == 5 == lora_int_id(h, {7})
    assert lora_int_id(h, {5}) == 6  # a collision takes the next free id
    assert lora_int_id(bytes(32), set()) == 1  # never 0 (vLLM refuses it)
    assert lora_int_id(b"\x7f\xff\xff\xff" + bytes(28), set()) != ZERO_LORA_ID


def test_add_time_refusals_name_the_setting(tiny_base_dir: pathlib.Path, make_adapter: Any,
                                            tmp_path: pathlib.Path) -> None:
    reg = VllmAdapters(ContentStore(tmp_path / "store"), load_config(tiny_base_dir), max_lora_rank=16)
    big = make_adapter(tmp_path / "r32", seed=1, rank=32)
    with pytest.raises(AdapterRankTooLarge, match="engine.max_lora_rank") as e:
        reg.add(adapter_id_of(big), big, "r32")
    assert (e.value.rank, e.value.max_rank) == (32, 16)
    emb = make_adapter(tmp_path / "emb", seed=2, rank=8, targets=("q_proj", "embed_tokens"))
    with pytest.raises(AdapterUnsupportedFeature, match="embed_tokens"):
        reg.add(adapter_id_of(emb), emb, "emb")
    assert reg.list() == [] and not (tmp_path / "store").exists()  # refused before any copy


def test_refs_keep_a_removed_adapter_until_its_last_request(tiny_base_dir: pathlib.Path, make_adapter: Any,
                                                            tmp_path: pathlib.Path) -> None:
    reg = VllmAdapters(ContentStore(tmp_path / "store"), load_config(tiny_base_dir), max_lora_rank=16)
    src = make_adapter(tmp_path / "a", seed=3, rank=8)
    h = adapter_id_of(src)
    a = reg.add(h, src, "a")
    assert a.path == tmp_path / "store" / h.hex() and a.rank == 8
    with pytest.raises(AdapterNameTaken):
        reg.add(h, src, "a")
    held = reg.acquire("a")
    assert reg.remove(h) is None  # in flight: hidden, not freed
    with pytest.raises(AdapterNotFound):
        reg.acquire("a")
    assert a.path.exists()
    assert reg.release(held, tokens=5) is True and not a.path.exists()


def test_backend_choice(tiny_base_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    import importlib.util

    import torch

    from inference.api import EngineConfigInvalid, EngineSpec
    from inference.backends import build_engine, resolve_backend

    spec = EngineSpec(model_dir=tiny_base_dir, adapter_store=tmp_path)
    assert resolve_backend(spec) == "loraledger"
    has_vllm = importlib.util.find_spec("vllm") is not None
    auto = "vllm" if torch.cuda.is_available() and has_vllm else "loraledger"
    assert resolve_backend(EngineSpec(model_dir=tiny_base_dir, adapter_store=tmp_path, backend="auto")) == auto
    with pytest.raises(EngineConfigInvalid, match="loraledger, vllm, auto"):
        resolve_backend(EngineSpec(model_dir=tiny_base_dir, adapter_store=tmp_path, backend="tgi"))
    if not has_vllm:
        with pytest.raises(EngineConfigInvalid, match="make setup-vllm"):
            build_engine(EngineSpec(model_dir=tiny_base_dir, adapter_store=tmp_path, backend="vllm"))
