"""load_adapter on valid adapters: tensors, rank, scaling and targets equal what peft itself loads."""

from __future__ import annotations

import pathlib

import pytest
import torch
import transformers
from peft import PeftModel

from inference.adapters.identity import adapter_id_of
from inference.adapters.weights import LoraWeights, linear_shapes, load_adapter, parse_lora_key

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def base_config(tiny_base_dir: pathlib.Path) -> transformers.PretrainedConfig:
    return transformers.AutoConfig.from_pretrained(tiny_base_dir)


def test_parse_lora_key() -> None:
    assert parse_lora_key("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight") == (3, "q_proj", "A")
    assert parse_lora_key("base_model.model.model.layers.12.mlp.down_proj.lora_B.weight") == (12, "down_proj", "B")
    assert parse_lora_key("base_model.model.lm_head.lora_A.weight") is None
    assert parse_lora_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight") is None


def test_linear_shapes_follow_gqa(base_config: transformers.PretrainedConfig) -> None:
    s = linear_shapes(base_config)
    assert s["q_proj"] == (64, 64)
    assert s["k_proj"] == (64, 32)  # 2 kv heads x head_dim 16
    assert s["o_proj"] == (64, 64)
    assert s["down_proj"] == (128, 64)


def test_valid_adapter_matches_peft(tmp_path: pathlib.Path, tiny_base_dir: pathlib.Path, make_adapter,
                                    base_config: transformers.PretrainedConfig) -> None:
    d = make_adapter(tmp_path / "a", seed=7, rank=4, targets=("q_proj", "k_proj", "down_proj"), alpha=12)
    w = load_adapter(d, base_config)
    assert isinstance(w, LoraWeights)
    assert w.name == "a"
    assert w.rank == 4
    assert w.scaling == pytest.approx(3.0)
    assert w.target_modules == ("q_proj", "k_proj", "down_proj")
    assert w.layers == (0, 1)
    assert w.adapter_id == adapter_id_of(d)
    assert len(w.a) == len(w.b) == 6
    assert w.nbytes == sum(t.numel() * 4 for t in [*w.a.values(), *w.b.values()])

    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_base_dir, dtype=torch.float32)
    pm = PeftModel.from_pretrained(base, d)
    layer = pm.base_model.model.model.layers[1]
    assert torch.equal(w.a[(1, "k_proj")], layer.self_attn.k_proj.lora_A["default"].weight)
    assert torch.equal(w.b[(1, "down_proj")], layer.mlp.down_proj.lora_B["default"].weight)
    assert w.scaling == pytest.approx(layer.self_attn.q_proj.scaling["default"])
    assert torch.count_nonzero(w.b[(0, "q_proj")]) > 0


def test_rslora_scaling(tmp_path: pathlib.Path, make_adapter, base_config: transformers.PretrainedConfig) -> None:
    import json

    d = make_adapter(tmp_path / "rs", seed=1, rank=16, alpha=8)
    cfg = json.loads((d / "adapter_config.json").read_text())
    cfg["use_rslora"] = True
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    assert load_adapter(d, base_config).scaling == pytest.approx(8 / 4)


def test_dtype_device_and_to(tmp_path: pathlib.Path, make_adapter, base_config: transformers.PretrainedConfig) -> None:
    d = make_adapter(tmp_path / "b", seed=2, rank=8)
    w32 = load_adapter(d, base_config)
    w16 = load_adapter(d, base_config, dtype=torch.bfloat16, name="custom")
    assert w16.name == "custom"
    assert all(t.dtype == torch.bfloat16 for t in w16.a.values())
    assert w16.nbytes * 2 == w32.nbytes
    moved = w32.to("cpu", torch.float16)
    assert moved is not w32 and moved.nbytes == w16.nbytes
    assert all(t.dtype == torch.float16 for t in moved.b.values())
    assert moved.adapter_id == w32.adapter_id
    assert w32.to("cpu") is w32


def test_missing_alpha_uses_peft_default(tmp_path: pathlib.Path, make_adapter,
                                         base_config: transformers.PretrainedConfig) -> None:
    import json

    from peft import LoraConfig

    d = make_adapter(tmp_path / "na", seed=1, rank=4, alpha=16)
    cfg = json.loads((d / "adapter_config.json").read_text())
    del cfg["lora_alpha"]
    (d / "adapter_config.json").write_text(json.dumps(cfg))
    assert load_adapter(d, base_config).scaling == pytest.approx(LoraConfig().lora_alpha / 4)
