"""Loading the base causal LM from a local Hugging Face directory (safetensors only) and its `modelId`.

`modelId` (DESIGN.md) = sha256 over the weight files sorted by name, each contributing
``name.encode() || 0x00 || sha256(file bytes)`` (32 raw digest bytes). Weight files are the ``*.safetensors``
files directly in the model directory; config and tokenizer files are not part of the id.
"""

from __future__ import annotations

import logging
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import torch
import transformers

from inference.errors import InferenceError
from inference.model_id import model_id_of_files

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "BaseModel",
    "ModelArchitectureUnsupported",
    "ModelError",
    "ModelNotFound",
    "ModelWeightsMissing",
    "compute_model_id",
    "default_dtype",
    "load_base_model",
    "weight_files",
]

logger = logging.getLogger(__name__)

# Decoder-only families whose layers name their projections like Llama (q/k/v/o_proj, gate/up/down_proj),
# which is what the adapter validation and the batched LoRA math rely on.
SUPPORTED_MODEL_TYPES: frozenset[str] = frozenset({"llama", "mistral", "qwen2", "qwen3"})


class ModelError(InferenceError):
    """Root of base-model loading errors."""


class ModelNotFound(ModelError, FileNotFoundError):
    """The model directory does not exist or has no config.json: pass a local Hugging Face model directory."""


class ModelWeightsMissing(ModelError, FileNotFoundError):
    """The model directory has no `*.safetensors` weights (pickle `.bin` weights are never loaded)."""


class ModelArchitectureUnsupported(ModelError, ValueError):
    """The model's architecture is not a supported Llama-family causal LM."""


@dataclass
class BaseModel:
    """The loaded base model: eval mode, no grad, on `device` in `dtype`, with its tokenizer and content id."""

    model: transformers.PreTrainedModel
    tokenizer: transformers.PreTrainedTokenizerBase
    model_id: bytes
    name: str
    path: pathlib.Path

    @property
    def config(self) -> Any:
        """The transformers config of the model (what `load_adapter` validates against)."""
        return self.model.config

    @property
    def device(self) -> torch.device:
        """Device holding the weights."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the weights."""
        return next(self.model.parameters()).dtype


def weight_files(path: str | os.PathLike[str]) -> list[pathlib.Path]:
    """The `*.safetensors` weight files of a model directory, sorted by name; raises if there are none."""
    d = pathlib.Path(path)
    if not d.is_dir():
        raise ModelNotFound(f"model directory {d} does not exist: pass a local Hugging Face model directory "
                            "(or run `loraledger demo init` for the demo model)")
    files = sorted((p for p in d.iterdir() if p.is_file() and p.name.endswith(".safetensors")), key=lambda p: p.name)
    if not files:
        pickled = sorted(p.name for p in d.iterdir() if p.suffix in (".bin", ".pt", ".pth"))
        hint = (f" It holds pickle weights ({', '.join(pickled)}), which are never loaded: convert once with "
                "transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, "
                "safe_serialization=True)." if pickled else "")
        raise ModelWeightsMissing(f"{d} has no *.safetensors weight files.{hint}")
    return files


def compute_model_id(path: str | os.PathLike[str], *, cache: bool = True) -> bytes:
    """The 32-byte modelId of a model directory: sha256 over sorted ``name || 0x00 || sha256(file)``.

    Each file's digest is cached per user, keyed by its path, size, mtime, ctime and inode, so an unchanged model
    is not re-hashed on every start (`inference.model_id`); `cache=False` hashes every byte.
    """
    return model_id_of_files(weight_files(path), cache=cache)


def _resolve_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!s} requested but CUDA is not available: use device='cpu'")
    return dev


def default_dtype(device: str | torch.device) -> torch.dtype:
    """The compute dtype when none is given: bf16 on CUDA (tensor cores, half the weight bytes), fp32 on CPU (exact
    greedy parity with transformers, and the native CPU kernels compute fp32)."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def load_base_model(
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    name: str | None = None,
) -> BaseModel:
    """Load a Llama-family causal LM and its tokenizer from a local directory (safetensors only, no download).

    `dtype` None means `default_dtype(device)`. The model is put in eval mode with gradients disabled on every
    parameter. Raises `ModelNotFound`,
    `ModelWeightsMissing` or `ModelArchitectureUnsupported`.
    """
    d = pathlib.Path(path)
    if not (d / "config.json").is_file():
        raise ModelNotFound(f"{d} has no config.json: pass a local Hugging Face model directory "
                            "(or run `loraledger demo init` for the demo model)")
    weight_files(d)  # refuses missing or pickle-only weights before transformers sees the directory
    try:
        config = transformers.AutoConfig.from_pretrained(d, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ModelArchitectureUnsupported(f"{d}/config.json cannot be read as a transformers config ({e}): "
                                           "use a Llama-family model directory") from e
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelArchitectureUnsupported(
            f"{d}: model_type {model_type!r} is not supported (supported: {', '.join(sorted(SUPPORTED_MODEL_TYPES))}):"
            " serve a Llama-family causal LM")
    dev = _resolve_device(device)
    dtype = dtype or default_dtype(dev)
    model_id = compute_model_id(d)
    model = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=dtype, local_files_only=True,
                                                              use_safetensors=True)
    model = model.to(dev)  # type: ignore[arg-type]  # transformers' .to wrapper is typed oddly
    model.eval()
    model.requires_grad_(False)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ModelNotFound(f"{d} has no usable tokenizer files ({e}): save the tokenizer next to the weights "
                            "(tokenizer.save_pretrained(dir))") from e
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    logger.info("loaded base model %s model_id=%s type=%s device=%s dtype=%s", name or d.name, model_id.hex(),
                model_type, dev, dtype)
    return BaseModel(model=model, tokenizer=tokenizer, model_id=model_id, name=name or d.name, path=d)
