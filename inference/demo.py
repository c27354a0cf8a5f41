"""Demo assets made locally, with no download: a BPE tokenizer and a small Llama trained on text that ships with
Python itself, LoRA adapters each trained on a different stdlib package's docstrings, and synthetic adapters.

`init_demo` writes ``<dir>/model`` (HF directory: safetensors + tokenizer), ``<dir>/adapters/<name>`` (peft
directories) and ``<dir>/manifest.json``; `synth_adapters` writes N random adapters for load tests.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import logging
import os
import pathlib
import sysconfig
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from inference.adapters.identity import CONFIG_NAME, WEIGHTS_NAME
from inference.adapters.weights import MODULE_ORDER, linear_shapes
from inference.errors import InferenceError

__all__ = [
    "DemoError",
    "build_llama",
    "lora_config_dict",
    "stdlib_docs",
    "train_tokenizer",
    "write_adapter_dir",
    "write_random_adapter",
]

logger = logging.getLogger(__name__)

BOS, EOS, PAD = "<s>", "</s>", "<pad>"


class DemoError(InferenceError):
    """Building demo assets failed (bad arguments, unreadable stdlib text, or an incomplete demo directory)."""


def _module_files(module: str) -> list[pathlib.Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise DemoError(f"stdlib module {module!r} not found in this Python: pick another module name")
    if spec.submodule_search_locations:
        root = pathlib.Path(next(iter(spec.submodule_search_locations)))
        return sorted(p for p in root.rglob("*.py") if "test" not in p.parts)
    return [pathlib.Path(spec.origin)]


def stdlib_docs(module: str, *, max_chars: int | None = None) -> str:
    """The docstrings (module, classes, functions) of a stdlib module or package, joined by blank lines."""
    parts: list[str] = []
    for f in _module_files(module):
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 20:
                    parts.append(doc.strip())
    text = "\n\n".join(parts)
    if not text:
        raise DemoError(f"stdlib module {module!r} has no docstrings to train on: pick another module")
    return text[:max_chars] if max_chars else text


def python_license() -> str:
    """The LICENSE.txt shipped with this Python installation ('' if the install lacks it)."""
    p = pathlib.Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    return p.read_text(encoding="utf-8", errors="replace") if p.is_file() else ""


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> transformers.PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (deterministic for the same texts) with <s>, </s>, <pad> special tokens.

    Encoding prepends <s> like Llama's tokenizer; decoding is byte-exact for any UTF-8 text.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                                padding_side="left")


def build_llama(
    tokenizer: transformers.PreTrainedTokenizerBase,
    *,
    hidden: int,
    layers: int,
    heads: int,
    kv_heads: int | None = None,
    intermediate: int,
    seed: int,
    max_positions: int = 2048,
    initializer_range: float = 0.02,
) -> transformers.LlamaForCausalLM:
    """A random-init Llama sized as asked, with the tokenizer's vocab and special ids (seeded, deterministic)."""
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads or heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=initializer_range,
    )
    gen = torch.random.fork_rng()
    with gen:
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    model.eval()
    return model


def lora_config_dict(*, rank: int, alpha: float, targets: Sequence[str], base: str = "") -> dict[str, Any]:
    """An adapter_config.json body for plain LoRA, as peft writes it (only the fields peft needs to load it)."""
    return {
        "base_model_name_or_path": base or None,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": rank,
        "target_modules": sorted(targets),
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }


def write_adapter_dir(out_dir: str | os.PathLike[str], config: dict[str, Any],
                      tensors: dict[str, torch.Tensor]) -> pathlib.Path:
    """Write a peft adapter directory (adapter_config.json + adapter_model.safetensors)."""
    d = pathlib.Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / WEIGHTS_NAME), metadata={"format": "pt"})
    return d


def _peft_key(layer: int, module: str, ab: str) -> str:
    parent = "self_attn" if module in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    return f"base_model.model.model.layers.{layer}.{parent}.{module}.lora_{ab}.weight"


def random_lora_tensors(base_config: Any, *, seed: int, rank: int, targets: Sequence[str],
                        a_std: float | None = None, b_std: float = 0.05) -> dict[str, torch.Tensor]:
    """Seeded random lora_A/lora_B tensors (B non-zero, unlike peft's init) in peft's saved key layout."""
    shapes = linear_shapes(base_config)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for layer in range(int(base_config.num_hidden_layers)):
        for module in (m for m in MODULE_ORDER if m in targets):
            in_f, out_f = shapes[module]
            std_a = a_std if a_std is not None else in_f ** -0.5
            out[_peft_key(layer, module, "A")] = torch.randn(rank, in_f, generator=gen) * std_a
            out[_peft_key(layer, module, "B")] = torch.randn(out_f, rank, generator=gen) * b_std
    return out


def write_random_adapter(out_dir: str | os.PathLike[str], base_config: Any, *, seed: int, rank: int = 16,
                         targets: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj"), alpha: float | None = None,
                         base: str = "") -> pathlib.Path:
    """Write one synthetic adapter with seeded random A and B (a valid peft directory)."""
    tensors = random_lora_tensors(base_config, seed=seed, rank=rank, targets=targets)
    cfg = lora_config_dict(rank=rank, alpha=alpha if alpha is not None else 2 * rank, targets=targets, base=base)
    return write_adapter_dir(out_dir, cfg, tensors)


def dataset_id(text: str) -> bytes:
    """datasetId of a demo dataset: sha256 of its UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).digest()
