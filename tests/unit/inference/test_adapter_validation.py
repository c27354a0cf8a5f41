"""Every invalid adapter is refused with its own named error, and the message says what to fix.

Adapters are real peft saves (make_adapter, or peft with the refused feature switched on), then broken on disk
in one way each.
"""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from inference.adapters.errors import (
    AdapterConfigInvalid,
    AdapterError,
    AdapterNotFound,
    AdapterNotSafetensors,
    AdapterRankTooLarge,
    AdapterShapeMismatch,
    AdapterTargetModuleUnknown,
    AdapterTooLarge,
    AdapterUnsupportedFeature,
    AdapterWeightsInvalid,
)
from inference.adapters.weights import load_adapter
from inference.errors import InferenceError

pytestmark = pytest.mark.timeout(120)

CFG = "adapter_config.json"
ST = "adapter_model.safetensors"
Q0A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
Q0B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"


@pytest.fixture(scope="module")
def base_config(tiny_base_dir: pathlib.Path) -> transformers.PretrainedConfig:
    return transformers.AutoConfig.from_pretrained(tiny_base_dir)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, make_adapter: Callable[..., pathlib.Path]) -> pathlib.Path:
    return make_adapter(tmp_path_factory.mktemp("good") / "good", seed=3, rank=8, targets=("q_proj", "v_proj"))


@pytest.fixture
def copy_of(good: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    d = tmp_path / "broken"
    shutil.copytree(good, d)
    return d


def edit_config(d: pathlib.Path, **changes: Any) -> None:
    cfg = json.loads((d / CFG).read_text())
    cfg.update(changes)
    (d / CFG).write_text(json.dumps(cfg))


def edit_tensors(d: pathlib.Path, fn: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = load_file(d / ST)
    fn(tensors)
    save_file(tensors, d / ST)


def peft_adapter(tmp_path: pathlib.Path, tiny_base_dir: pathlib.Path, **lora_kwargs: Any) -> pathlib.Path:
    """Save a real peft adapter with the given LoraConfig options (how users hit the unsupported features)."""
    from peft import LoraConfig, get_peft_model

    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_base_dir, dtype=torch.float32)
    kwargs: dict[str, Any] = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"}
    kwargs.update(lora_kwargs)
    out = tmp_path / "peft"
    get_peft_model(base, LoraConfig(**kwargs)).save_pretrained(out, safe_serialization=True)
    return out


def test_good_adapter_loads(good: pathlib.Path, base_config: Any) -> None:
    assert load_adapter(good, base_config).rank == 8


def test_errors_share_the_package_roots() -> None:
    for cls in (AdapterNotSafetensors, AdapterRankTooLarge, AdapterTargetModuleUnknown, AdapterShapeMismatch,
                AdapterTooLarge, AdapterConfigInvalid, AdapterUnsupportedFeature, AdapterWeightsInvalid):
        assert issubclass(cls, AdapterError) and issubclass(cls, InferenceError) and issubclass(cls, ValueError)
        assert cls.__doc__
    assert issubclass(AdapterNotFound, LookupError) and issubclass(AdapterNotFound, AdapterError)


# --------------------------------------------------------------------------------------------- files and config


def test_missing_directory(tmp_path: pathlib.Path, base_config: Any) -> None:
    with pytest.raises(AdapterNotFound, match="does not exist"):
        load_adapter(tmp_path / "nope", base_config)


def test_missing_config(copy_of: pathlib.Path, base_config: Any) -> None:
    (copy_of / CFG).unlink()
    with pytest.raises(AdapterConfigInvalid, match="save_pretrained"):
        load_adapter(copy_of, base_config)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"r": NaN}'])
def test_config_not_a_json_object(copy_of: pathlib.Path, base_config: Any, text: str) -> None:
    (copy_of / CFG).write_text(text)
    with pytest.raises(AdapterConfigInvalid):
        load_adapter(copy_of, base_config)


def test_pickle_bin_refused_with_conversion_hint(copy_of: pathlib.Path, base_config: Any) -> None:
    tensors = load_file(copy_of / ST)
    (copy_of / ST).unlink()
    torch.save(tensors, copy_of / "adapter_model.bin")
    with pytest.raises(AdapterNotSafetensors, match="adapter_model.bin") as e:
        load_adapter(copy_of, base_config)
    assert "st.save_file" in str(e.value) and "safe_serialization=True" in str(e.value)


def test_no_weights_at_all(copy_of: pathlib.Path, base_config: Any) -> None:
    (copy_of / ST).unlink()
    with pytest.raises(AdapterNotSafetensors, match="has no adapter_model.safetensors"):
        load_adapter(copy_of, base_config)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"peft_type": "IA3"}, "expected 'LORA'"),
        ({"peft_type": None}, "expected 'LORA'"),
        ({"r": 0}, "positive integer"),
        ({"r": "8"}, "positive integer"),
        ({"r": True}, "positive integer"),
        ({"lora_alpha": -1}, "positive finite"),
        ({"lora_alpha": "16"}, "positive finite"),
    ],
)
def test_config_sanity(copy_of: pathlib.Path, base_config: Any, changes: dict[str, Any], match: str) -> None:
    edit_config(copy_of, **changes)
    with pytest.raises(AdapterConfigInvalid, match=match):
        load_adapter(copy_of, base_config)


def test_rank_cap(copy_of: pathlib.Path, base_config: Any) -> None:
    with pytest.raises(AdapterRankTooLarge, match="max_rank=4") as e:
        load_adapter(copy_of, base_config, max_rank=4)
    assert (e.value.rank, e.value.max_rank) == (8, 4)
    assert "retrain with r <= 4" in str(e.value)
    assert load_adapter(copy_of, base_config, max_rank=8).rank == 8


def test_size_limit(copy_of: pathlib.Path, base_config: Any) -> None:
    size = (copy_of / ST).stat().st_size
    with pytest.raises(AdapterTooLarge, match="smaller rank") as e:
        load_adapter(copy_of, base_config, max_bytes=size - 1)
    assert (e.value.nbytes, e.value.max_bytes) == (size, size - 1)
    assert load_adapter(copy_of, base_config, max_bytes=size).rank == 8


# ------------------------------------------------------------------------------------------ unsupported features


@pytest.mark.parametrize(
    ("lora_kwargs", "feature"),
    [
        ({"use_dora": True}, "use_dora"),
        ({"bias": "lora_only"}, "bias"),
        ({"bias": "all"}, "bias"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"target_modules": ["embed_tokens"]}, "embedding_lora"),
        ({"lora_bias": True}, "lora_bias"),
        ({"rank_pattern": {"q_proj": 2}}, "rank_pattern"),
    ],
)
def test_unsupported_peft_features_refused_by_name(tmp_path: pathlib.Path, tiny_base_dir: pathlib.Path,
                                                   base_config: Any, lora_kwargs: dict[str, Any],
                                                   feature: str) -> None:
    d = peft_adapter(tmp_path, tiny_base_dir, **lora_kwargs)
    with pytest.raises(AdapterUnsupportedFeature, match="not supported") as e:
        load_adapter(d, base_config)
    assert e.value.feature == feature


@pytest.mark.parametrize(
    ("key", "feature"),
    [
        ("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", "use_dora"),
        ("base_model.model.model.embed_tokens.lora_embedding_A", "embedding_lora"),
        ("base_model.model.lm_head.lora_A.weight", "embedding_lora"),
        ("base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias", "lora_bias"),
        ("base_model.model.model.norm.weight", "modules_to_save"),
    ],
)
def test_unsupported_tensors_refused_even_if_config_hides_them(copy_of: pathlib.Path, base_config: Any, key: str,
                                                               feature: str) -> None:
    edit_tensors(copy_of, lambda t: t.__setitem__(key, torch.ones(4)))
    with pytest.raises(AdapterUnsupportedFeature) as e:
        load_adapter(copy_of, base_config)
    assert e.value.feature == feature


# ------------------------------------------------------------------------------------------- targets and shapes


def test_config_target_unknown_to_the_base(copy_of: pathlib.Path, base_config: Any) -> None:
    edit_config(copy_of, target_modules=["c_attn", "q_proj"])
    with pytest.raises(AdapterTargetModuleUnknown, match="'c_attn'"):
        load_adapter(copy_of, base_config)


def test_tensor_for_a_layer_the_base_lacks(copy_of: pathlib.Path, base_config: Any) -> None:
    def add_layer_5(t: dict[str, torch.Tensor]) -> None:
        t[Q0A.replace("layers.0", "layers.5")] = t[Q0A].clone()
        t[Q0B.replace("layers.0", "layers.5")] = t[Q0B].clone()

    edit_tensors(copy_of, add_layer_5)
    with pytest.raises(AdapterTargetModuleUnknown, match="layer 5 but the base model has 2 layers"):
        load_adapter(copy_of, base_config)


@pytest.mark.parametrize("bad", ["self_attn.gate_proj", "mlp.q_proj", "self_attn.qkv_proj"])
def test_tensor_for_a_module_the_base_lacks(copy_of: pathlib.Path, base_config: Any, bad: str) -> None:
    def rename(t: dict[str, torch.Tensor]) -> None:
        t[Q0A.replace("self_attn.q_proj", bad)] = t.pop(Q0A)
        t[Q0B.replace("self_attn.q_proj", bad)] = t.pop(Q0B)

    edit_tensors(copy_of, rename)
    with pytest.raises(AdapterTargetModuleUnknown, match="does not have"):
        load_adapter(copy_of, base_config)


def test_adapter_for_a_different_base_shape(tmp_path: pathlib.Path, base_config: Any) -> None:
    from inference.demo import write_random_adapter

    wider = transformers.LlamaConfig(hidden_size=96, num_hidden_layers=2, num_attention_heads=4,
                                     num_key_value_heads=2, intermediate_size=128, vocab_size=512)
    d = write_random_adapter(tmp_path / "wide", wider, seed=1, rank=4)
    with pytest.raises(AdapterShapeMismatch, match=r"expected \[4, 64\].*different base model"):
        load_adapter(d, base_config)


def test_tensor_rank_differs_from_config_r(copy_of: pathlib.Path, base_config: Any) -> None:
    edit_config(copy_of, r=4)
    with pytest.raises(AdapterShapeMismatch, match="rank 4"):
        load_adapter(copy_of, base_config)


def test_b_transposed(copy_of: pathlib.Path, base_config: Any) -> None:
    edit_tensors(copy_of, lambda t: t.__setitem__(Q0B, t[Q0B].T.contiguous()))
    with pytest.raises(AdapterShapeMismatch, match=r"expected \[64, 8\]"):
        load_adapter(copy_of, base_config)


# -------------------------------------------------------------------------------------------------- weights


def test_corrupt_safetensors(copy_of: pathlib.Path, base_config: Any) -> None:
    (copy_of / ST).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage" + bytes(20))
    with pytest.raises(AdapterWeightsInvalid, match="not a readable safetensors"):
        load_adapter(copy_of, base_config)


def test_truncated_safetensors(copy_of: pathlib.Path, base_config: Any) -> None:
    raw = (copy_of / ST).read_bytes()
    (copy_of / ST).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AdapterWeightsInvalid):
        load_adapter(copy_of, base_config)


def test_empty_tensor_file(copy_of: pathlib.Path, base_config: Any) -> None:
    save_file({}, copy_of / ST)
    with pytest.raises(AdapterWeightsInvalid, match="no tensors"):
        load_adapter(copy_of, base_config)


def test_missing_lora_b(copy_of: pathlib.Path, base_config: Any) -> None:
    edit_tensors(copy_of, lambda t: t.pop(Q0B))
    with pytest.raises(AdapterWeightsInvalid, match="has lora_A but no lora_B"):
        load_adapter(copy_of, base_config)


def test_non_finite_values(copy_of: pathlib.Path, base_config: Any) -> None:
    def poison(t: dict[str, torch.Tensor]) -> None:
        t[Q0B][0, 0] = float("nan")

    edit_tensors(copy_of, poison)
    with pytest.raises(AdapterWeightsInvalid, match="layer 0 q_proj holds NaN or Inf"):
        load_adapter(copy_of, base_config)


def test_inf_in_a_later_module_is_named(copy_of: pathlib.Path, base_config: Any) -> None:
    key = Q0A.replace("layers.0.", "layers.1.").replace("q_proj", "v_proj")

    def poison(t: dict[str, torch.Tensor]) -> None:
        t[key][1, 2] = float("-inf")

    edit_tensors(copy_of, poison)
    with pytest.raises(AdapterWeightsInvalid, match="layer 1 v_proj holds NaN or Inf"):
        load_adapter(copy_of, base_config)


def test_huge_finite_values_load_and_overflow_a_narrow_dtype(copy_of: pathlib.Path, base_config: Any) -> None:
    """Values whose sum overflows fp32 are still finite (the one-pass check must not refuse them); the same values
    do not fit fp16, which is named as a range problem, not as NaN/Inf in the file."""
    def huge(t: dict[str, torch.Tensor]) -> None:
        t[Q0B][0, :4] = 3e38

    edit_tensors(copy_of, huge)
    w = load_adapter(copy_of, base_config)
    assert float(w.b[(0, "q_proj")][0, 0]) == pytest.approx(3e38, rel=1e-6)
    with pytest.raises(AdapterWeightsInvalid, match="beyond torch.float16's range"):
        load_adapter(copy_of, base_config, dtype=torch.float16)


def test_integer_tensor(copy_of: pathlib.Path, base_config: Any) -> None:
    edit_tensors(copy_of, lambda t: t.__setitem__(Q0A, t[Q0A].to(torch.int32)))
    with pytest.raises(AdapterWeightsInvalid, match="floating point"):
        load_adapter(copy_of, base_config)


def test_base_model_mismatch_only_warns(copy_of: pathlib.Path, base_config: Any,
                                       caplog: pytest.LogCaptureFixture) -> None:
    edit_config(copy_of, base_model_name_or_path="/somewhere/other-model")
    with caplog.at_level(logging.WARNING, logger="inference.adapters.weights"):
        w = load_adapter(copy_of, base_config)
    assert w.rank == 8
    assert "other-model" in caplog.text and "tiny-llama" in caplog.text
