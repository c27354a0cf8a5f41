"""Our engine behind `EngineClient`: the base model, the LoRA pool, the tiered adapter cache and the
continuous-batching `Engine` (inference.engine), built from an `EngineSpec`."""

from __future__ import annotations

import asyncio
import logging
import pathlib

import torch

from inference.adapters.cache import AdapterCache, CacheBudgets
from inference.adapters.store import ContentStore
from inference.adapters.weights import linear_shapes
from inference.api import (
    AdapterInfo,
    EngineSpec,
    EngineStats,
    EngineStopped,
    GenerationRequest,
    RequestHandle,
)
from inference.chat import chat_template_of
from inference.engine import Engine, EngineConfig
from inference.lora import LoraPool
from inference.model import load_base_model

__all__ = ["EmbeddedEngine"]

logger = logging.getLogger(__name__)


class EmbeddedEngine:
    """`EngineClient` over our engine: requests run on its step thread, adapters live in its tiered cache."""

    backend = "loraledger"

    def __init__(self, spec: EngineSpec) -> None:
        base = load_base_model(spec.model_dir, dtype=getattr(torch, spec.dtype), device=spec.device,
                               name=spec.model_name)
        cfg = base.model.config
        pool = LoraPool(linear_shapes(cfg), cfg.num_hidden_layers, device=base.model.device, dtype=base.dtype)
        self.cache = AdapterCache(cfg, pool, CacheBudgets(device_bytes=spec.device_bytes, host_bytes=spec.host_bytes))
        self.engine = Engine(base, self.cache, EngineConfig(max_batch=spec.max_batch, max_queue=spec.max_queue,
                                                            max_seq_len=spec.max_seq_len))
        self.store = ContentStore(spec.adapter_store)
        self.model_id: bytes = base.model_id
        self.model_name: str = base.name
        self.tokenizer = base.tokenizer
        self.chat_template = chat_template_of(base.tokenizer)
        self._max_batch = spec.max_batch
        self._stopped = False

    @property
    def ready(self) -> bool:
        """Whether the step thread runs."""
        return self.engine._thread is not None and not self._stopped

    @property
    def status(self) -> str:
        """"ready", "not started" or "stopped"."""
        return "ready" if self.ready else ("stopped" if self._stopped else "not started")

    def start(self) -> None:
        """Start the step thread."""
        self.engine.start()

    def stop(self) -> None:
        """Stop the step thread (unfinished requests fail with EngineStopped) and the adapter loader."""
        self._stopped = True
        self.engine.stop()
        self.cache.close()

    def submit(self, req: GenerationRequest, *, loop: asyncio.AbstractEventLoop | None = None) -> RequestHandle:
        """Queue a request on the engine."""
        if self._stopped:
            raise EngineStopped("the engine is stopped: resubmit to a running node")
        return self.engine.submit(req, loop=loop)

    def add_adapter(self, content_hash: bytes, path: pathlib.Path, name: str) -> None:
        """Validate and load the content-addressed copy of `path` into the host tier (named errors otherwise)."""
        copy = self.store.put(path, content_hash)
        self.cache.add(copy, name, expected_id=content_hash)  # hashed again in the read that loads it

    def remove_adapter(self, content_hash: bytes) -> None:
        """Hide it at once; free it (and its copy) when its last in-flight request ends."""
        if self.cache.remove(content_hash):
            self.store.drop(content_hash)

    def pin_adapter(self, content_hash: bytes, pinned: bool = True) -> None:
        """Pin (loads it to host now) or unpin."""
        if pinned:
            self.cache.pin(content_hash)
        else:
            self.cache.unpin(content_hash)

    def adapter_info(self, content_hash: bytes) -> AdapterInfo | None:
        """The cache's view of one adapter."""
        if content_hash not in self.cache:
            return None
        try:
            return self.cache.info(content_hash)
        except LookupError:  # removed meanwhile
            return None

    def adapters(self) -> list[AdapterInfo]:
        """Every served adapter."""
        return self.cache.list()

    def stats(self) -> EngineStats:
        """Our K/V cache is preallocated per row, so its use is running rows / max_batch."""
        queued, running = self.engine.queued, self.engine.running
        return EngineStats(queued=queued, running=running, kv_cache_usage=running / max(1, self.engine.kv.rows),
                           max_loras=self._max_batch)
