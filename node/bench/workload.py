"""The serving bench's models and workload: random-init Llamas (no download) and seeded request mixes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["SEED", "Work", "build_model", "workload", "zipf_choices"]

SEED = 20240611


@dataclass
class Work:
    """One benchmark request: prompt ids and the forced number of completion tokens."""

    prompt: list[int]
    out: int


def build_model(spec: dict[str, int], device: str, dtype: torch.dtype, seed: int = SEED) -> Any:
    """A random-init Llama of the given size (no download)."""
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=spec["vocab"], hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
        num_attention_heads=spec["heads"], num_key_value_heads=spec["heads"], intermediate_size=spec["intermediate"],
        max_position_embeddings=512, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = None  # lengths are forced: EOS never ends a row early
    model.generation_config.pad_token_id = 0
    return model.to(device=device, dtype=dtype).eval()  # type: ignore[call-arg]


def workload(n: int, vocab: int, seed: int = SEED) -> list[Work]:
    """n requests: prompt lengths uniform 16-128, output lengths uniform 8-96, ids avoiding the special tokens."""
    rng = random.Random(seed)
    return [Work([rng.randrange(3, vocab) for _ in range(rng.randint(16, 128))], rng.randint(8, 96))
            for _ in range(n)]


def zipf_choices(n: int, k: int, s: float = 1.0, seed: int = SEED) -> list[int]:
    """n draws from Zipf(s) popularity over k items (item 0 most popular)."""
    rng = random.Random(seed + 1)
    weights = [1.0 / (i + 1) ** s for i in range(k)]
    return rng.choices(range(k), weights=weights, k=n)
