"""Serving one base model with many LoRA adapters: model loading, adapters, batching engine, engine backends.

This package is the only importer of torch, transformers, peft and vllm. It never imports `attribution` or `node`.
Callers drive an engine through `inference.api.EngineClient`, built by `build_engine(spec)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inference.errors import InferenceError

if TYPE_CHECKING:
    from inference.api import EngineClient, EngineSpec

__all__ = ["InferenceError", "build_engine"]


def build_engine(spec: EngineSpec) -> EngineClient:
    """The engine `spec` configures (ours, or vLLM): see `inference.backends.build_engine`."""
    from inference.backends import build_engine as build

    return build(spec)
