"""Serving one base model with many LoRA adapters: model loading, adapters, batching engine.

This package is the only importer of torch, transformers and peft. It never imports `attribution` or `node`.
"""

from inference.errors import InferenceError

__all__ = ["InferenceError"]
