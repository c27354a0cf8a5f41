"""The Llama-family architectures the engine serves, each against transformers' own forward (fp32, greedy tokens).

Tiny random-init models from transformers' config classes (nothing downloaded), saved and loaded like a real base:
- Llama (GQA), Mistral (sliding window no shorter than the engine's max_seq_len), Qwen2 (q/k/v biases), Qwen3 (q/k
  RMSNorm, head_dim not hidden/heads): a mixed batch of prompts of different lengths in one engine run must give
  exactly the greedy tokens of transformers' full forward;
- a sliding window shorter than max_seq_len (Mistral, Qwen2 with use_sliding_window) is refused with
  `SlidingWindowUnsupported`, naming the window and the fix;
- any other architecture (Gemma: Llama-shaped, but different norm and embedding scaling) is refused with
  `ModelArchitectureUnsupported` naming the supported list.
"""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

import pytest
import torch
import transformers

from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.model import BaseModel, ModelArchitectureUnsupported, load_base_model
from inference.models.llama import SlidingWindowUnsupported

VOCAB = 512  # the tiny tokenizer's vocabulary (tests/fixtures/models.py)
MAX_SEQ = 48
NEW_TOKENS = 10
PROMPTS = [[5, 17, 42, 7, 99, 3, 250, 11, 64], [300, 2], [8, 8, 9, 120, 77, 401], [45]]
COMMON: dict[str, Any] = {
    "vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 128, "initializer_range": 0.2, "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
}


ARCHS: dict[str, Any] = {
    "llama": lambda: transformers.LlamaConfig(**COMMON),
    "mistral": lambda: transformers.MistralConfig(**COMMON, sliding_window=MAX_SEQ),
    "qwen2": lambda: transformers.Qwen2Config(**COMMON),  # q/k/v biases
    "qwen3": lambda: transformers.Qwen3Config(**COMMON, head_dim=32),
}


def _save(tmp: pathlib.Path, tiny_base_dir: pathlib.Path, cfg: transformers.PretrainedConfig,
          seed: int) -> pathlib.Path:
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():  # non-trivial norms and biases (they init to ones / zeros)
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.2)
    d = tmp / cfg.model_type
    model.save_pretrained(d, safe_serialization=True)
    for f in tiny_base_dir.iterdir():  # the tiny tokenizer (the engine only needs it for text, unused here)
        if f.name.startswith(("tokenizer", "special_tokens")):
            shutil.copy(f, d / f.name)
    return d


def _hf_greedy(model: Any, prompt: list[int]) -> list[int]:
    seq = torch.tensor([prompt])
    out = []
    with torch.inference_mode():
        for _ in range(NEW_TOKENS):
            t = model(seq).logits[0, -1].argmax()
            out.append(int(t))
            seq = torch.cat([seq, t.view(1, 1)], dim=1)
    return out


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_greedy_tokens_equal_transformers(arch: str, tmp_path: pathlib.Path, tiny_base_dir: pathlib.Path) -> None:
    cfg = ARCHS[arch]()
    base = load_base_model(_save(tmp_path, tiny_base_dir, cfg, seed=sum(map(ord, arch))))
    assert base.config.model_type == arch
    if arch == "qwen2":
        assert base.model.model.layers[0].self_attn.q_proj.bias is not None
    if arch == "qwen3":
        assert base.model.model.layers[0].self_attn.q_norm is not None and base.config.head_dim == 32
    expected = [_hf_greedy(base.model, p) for p in PROMPTS]
    assert len({tuple(t) for t in expected}) > 1  # the tiny model says different things to different prompts
    eng = Engine(base, None, EngineConfig(max_batch=8, max_seq_len=MAX_SEQ, detokenize=False))
    handles = [eng.submit(GenerationRequest(prompt_ids=p, max_tokens=NEW_TOKENS, ignore_eos=True)) for p in PROMPTS]
    eng.run_until_idle(timeout=120)
    assert [h.result().token_ids for h in handles] == expected


def test_sliding_window_shorter_than_max_seq_len_is_refused(tmp_path: pathlib.Path,
                                                            tiny_base_dir: pathlib.Path) -> None:
    for cfg in (transformers.MistralConfig(**COMMON, sliding_window=32),
                transformers.Qwen2Config(**COMMON, use_sliding_window=True, sliding_window=32, max_window_layers=0)):
        base = load_base_model(_save(tmp_path / cfg.model_type, tiny_base_dir, cfg, seed=5))
        with pytest.raises(SlidingWindowUnsupported, match="sliding window of 32 tokens") as exc:
            Engine(base, None, EngineConfig(max_seq_len=MAX_SEQ))
        assert "max_seq_len" in str(exc.value) and isinstance(exc.value, ModelArchitectureUnsupported)
        Engine(base, None, EngineConfig(max_batch=1, max_seq_len=32))  # within the window: every token sees all


def test_other_architectures_are_refused() -> None:
    cfg = transformers.GemmaConfig(**{**COMMON, "head_dim": 16})
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    base = BaseModel(model=model, tokenizer=None, model_id=bytes(32), name="gemma",  # type: ignore[arg-type]
                     path=pathlib.Path("gemma"))
    with pytest.raises(ModelArchitectureUnsupported, match="'gemma'.*llama, mistral, qwen2, qwen3"):
        Engine(base, None, EngineConfig(max_seq_len=MAX_SEQ))
