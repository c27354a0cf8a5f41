"""adapterId is content-addressed and follows the documented byte layout; modelId likewise for base weights."""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
from collections.abc import Callable

import pytest
from safetensors.torch import load_file, save_file

from inference.adapters.identity import adapter_id_from, adapter_id_of, canonical_json, parse_id
from inference.model import ModelWeightsMissing, compute_model_id

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def adapter(tmp_path: pathlib.Path, make_adapter: Callable[..., pathlib.Path]) -> pathlib.Path:
    return make_adapter(tmp_path / "x", seed=11, rank=4)


def test_canonical_json_golden() -> None:
    assert canonical_json({"b": [1, 2.5, None], "a": {"z": True, "y": "é"}}) == \
        '{"a":{"y":"é","z":true},"b":[1,2.5,null]}'.encode()


def test_adapter_id_is_documented_layout(adapter: pathlib.Path) -> None:
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    raw = (adapter / "adapter_model.safetensors").read_bytes()
    expected = hashlib.sha256(json.dumps(cfg, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
                              + raw).digest()
    assert adapter_id_of(adapter) == expected == adapter_id_from(cfg, raw)
    assert len(expected) == 32


def test_adapter_id_stable_across_copies_and_formatting(adapter: pathlib.Path, tmp_path: pathlib.Path) -> None:
    first = adapter_id_of(adapter)
    assert adapter_id_of(adapter) == first
    copy = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(adapter, copy)
    assert adapter_id_of(copy) == first
    cfg = json.loads((copy / "adapter_config.json").read_text())
    (copy / "adapter_config.json").write_text(json.dumps(dict(reversed(list(cfg.items()))), indent=7))
    assert adapter_id_of(copy) == first


def test_changed_tensor_gives_new_id(adapter: pathlib.Path) -> None:
    before = adapter_id_of(adapter)
    tensors = load_file(adapter / "adapter_model.safetensors")
    key = sorted(tensors)[0]
    tensors[key][0, 0] += 1e-3
    save_file(tensors, adapter / "adapter_model.safetensors")
    assert adapter_id_of(adapter) != before


def test_changed_config_value_gives_new_id(adapter: pathlib.Path) -> None:
    before = adapter_id_of(adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["lora_alpha"] = cfg["lora_alpha"] + 1
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    assert adapter_id_of(adapter) != before


def test_different_seeds_different_ids(tmp_path: pathlib.Path, make_adapter: Callable[..., pathlib.Path]) -> None:
    a = make_adapter(tmp_path / "a", seed=1)
    b = make_adapter(tmp_path / "b", seed=2)
    a2 = make_adapter(tmp_path / "a2", seed=1)
    assert adapter_id_of(a) != adapter_id_of(b)
    assert adapter_id_of(a) == adapter_id_of(a2)


def test_parse_id() -> None:
    h = "ab" * 32
    assert parse_id(h) == bytes.fromhex(h) == parse_id("0x" + h) == parse_id("0X" + h.upper())
    assert parse_id("ab" * 31) is None
    assert parse_id("zz" * 32) is None
    assert parse_id("adapter-name") is None


# ------------------------------------------------------------------------------------------------- modelId


def test_model_id_documented_layout_and_stable(tiny_base_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    files = sorted(p for p in tiny_base_dir.iterdir() if p.suffix == ".safetensors")
    outer = hashlib.sha256()
    for f in files:
        outer.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    assert compute_model_id(tiny_base_dir) == outer.digest()

    from tests.fixtures.models import build_tiny_base

    rebuilt = build_tiny_base(tmp_path / "again")
    assert compute_model_id(rebuilt) == compute_model_id(tiny_base_dir)


def test_model_id_ignores_tokenizer_and_config_but_not_weights(tiny_base_dir: pathlib.Path,
                                                               tmp_path: pathlib.Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(tiny_base_dir, d)
    mid = compute_model_id(d)
    (d / "tokenizer_config.json").write_text("{}")
    assert compute_model_id(d) == mid
    (d / "model.safetensors").rename(d / "model-00001-of-00001.safetensors")
    assert compute_model_id(d) != mid  # the file name is part of the id
    (d / "model-00001-of-00001.safetensors").rename(d / "model.safetensors")
    with open(d / "model.safetensors", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    assert compute_model_id(d) != mid


def test_model_id_needs_safetensors(tmp_path: pathlib.Path) -> None:
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ModelWeightsMissing, match="pytorch_model.bin"):
        compute_model_id(tmp_path)


def test_fixture_adapters_do_not_depend_on_the_tmp_path(tmp_path: pathlib.Path,
                                                        make_adapter: Callable[..., pathlib.Path]) -> None:
    cfg = json.loads((make_adapter(tmp_path / "p", seed=1) / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "tiny-llama"
