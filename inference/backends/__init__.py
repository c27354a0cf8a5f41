"""Engine backends behind `inference.api.EngineClient`, and `build_engine`, the one factory the node calls.

- `embedded`: ours (the default): CPU and tests, `make run`;
- `vllm`: vLLM's `AsyncLLM` (V1 engine) with one `LoRARequest` per adapter; installed by `make setup-vllm`.
"""

from __future__ import annotations

import importlib.util
import logging

from inference.api import BACKENDS, EngineClient, EngineConfigInvalid, EngineSpec

__all__ = ["build_engine", "resolve_backend"]

logger = logging.getLogger(__name__)


def resolve_backend(spec: EngineSpec) -> str:
    """The backend `spec.backend` names; "auto" is vLLM where CUDA and the vllm package are both present."""
    if spec.backend not in BACKENDS:
        raise EngineConfigInvalid(f"engine.backend {spec.backend!r} is not one of {', '.join(BACKENDS)}")
    if spec.backend != "auto":
        return spec.backend
    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None:
        return "vllm"
    return "loraledger"


def build_engine(spec: EngineSpec) -> EngineClient:
    """The configured engine, not yet started (call `start()`)."""
    backend = resolve_backend(spec)
    logger.info("engine backend: %s", backend)
    if backend == "vllm":
        from inference.backends.vllm_engine import VllmEngine

        return VllmEngine(spec)
    from inference.backends.embedded import EmbeddedEngine

    return EmbeddedEngine(spec)
