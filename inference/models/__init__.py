"""Model forwards the engine can run; each reads a transformers model's weights (see `inference.models.llama`)."""

from inference.models.llama import LlamaForward

__all__ = ["LlamaForward"]
