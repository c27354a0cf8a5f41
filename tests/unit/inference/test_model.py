"""load_base_model: eval/no-grad/dtype/device, id, tokenizer, and named errors for bad directories."""

from __future__ import annotations

import pathlib
import shutil

import pytest
import torch
import transformers

from inference.errors import InferenceError
from inference.model import (
    BaseModel,
    ModelArchitectureUnsupported,
    ModelError,
    ModelNotFound,
    ModelWeightsMissing,
    compute_model_id,
    load_base_model,
)

pytestmark = pytest.mark.timeout(120)


def test_load(tiny_base_dir: pathlib.Path) -> None:
    bm = load_base_model(tiny_base_dir)
    assert isinstance(bm, BaseModel)
    assert bm.name == "tiny-llama" and bm.path == tiny_base_dir
    assert bm.model_id == compute_model_id(tiny_base_dir) and len(bm.model_id) == 32
    assert not bm.model.training
    assert not any(p.requires_grad for p in bm.model.parameters())
    assert bm.dtype == torch.float32 and bm.device == torch.device("cpu")
    assert bm.config.model_type == "llama"
    ids = bm.tokenizer("The JSON decoder")["input_ids"]
    assert ids[0] == bm.tokenizer.bos_token_id
    assert bm.tokenizer.decode(ids, skip_special_tokens=True) == "The JSON decoder"
    assert bm.tokenizer.pad_token_id is not None and bm.tokenizer.eos_token_id is not None
    with torch.no_grad():
        logits = bm.model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(bm.tokenizer))


def test_load_bf16_and_name(tiny_base_dir: pathlib.Path) -> None:
    bm = load_base_model(tiny_base_dir, dtype=torch.bfloat16, name="demo-base")
    assert bm.dtype == torch.bfloat16 and bm.name == "demo-base"


def test_same_weights_as_transformers(tiny_base_dir: pathlib.Path) -> None:
    ref = transformers.AutoModelForCausalLM.from_pretrained(tiny_base_dir, dtype=torch.float32)
    bm = load_base_model(tiny_base_dir)
    for (n1, p1), (n2, p2) in zip(ref.state_dict().items(), bm.model.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)


def test_missing_dir(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ModelNotFound, match="demo init"):
        load_base_model(tmp_path / "nope")


def test_no_safetensors(tiny_base_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    d = tmp_path / "m"
    shutil.copytree(tiny_base_dir, d)
    (d / "model.safetensors").rename(d / "pytorch_model.bin")
    with pytest.raises(ModelWeightsMissing, match="safe_serialization=True"):
        load_base_model(d)


def test_unsupported_architecture(tmp_path: pathlib.Path) -> None:
    cfg = transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64, n_positions=32)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ModelArchitectureUnsupported, match="'gpt2'"):
        load_base_model(tmp_path / "gpt2")


def test_missing_tokenizer(tiny_base_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy2(tiny_base_dir / f, d / f)
    with pytest.raises(ModelNotFound, match="tokenizer"):
        load_base_model(d)


def test_error_hierarchy() -> None:
    assert issubclass(ModelNotFound, FileNotFoundError) and issubclass(ModelNotFound, ModelError)
    assert issubclass(ModelArchitectureUnsupported, ValueError) and issubclass(ModelError, InferenceError)
