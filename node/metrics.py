"""Prometheus metrics of one node: our names with per-adapter labels, plus the llm-d model-server names.

The `vllm:*` gauges are what an llm-d / Gateway API inference router scrapes to balance many nodes with adapter
affinity: `vllm:num_requests_waiting`, `vllm:num_requests_running`, `vllm:kv_cache_usage_perc` (the engine's own
statistics, `EngineClient.stats()`: vLLM's scheduler stats on the vLLM backend; ours preallocates K/V per row, so its
use is running rows / rows) and `vllm:lora_requests_info` (value: the time of the
last change; labels: the adapters running and waiting, comma-separated, and `max_lora`).
Each app has its own `CollectorRegistry` (no global state, so tests can build many apps).
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Multiset
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from attribution.batcher.metrics import BatcherMetrics

if TYPE_CHECKING:
    from attribution.responder.metrics import ResponderMetrics
    from inference.api import EngineClient

__all__ = ["NodeMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class _LoraInfo:
    """Collector for `vllm:lora_requests_info` built from the live waiting/running adapter multisets."""

    def __init__(self, owner: NodeMetrics) -> None:
        self.owner = owner

    def collect(self) -> Any:
        o = self.owner
        with o._lock:
            running = ",".join(sorted(o._running_adapters))
            waiting = ",".join(sorted(o._waiting_adapters))
            changed = o._lora_changed
        fam = GaugeMetricFamily("vllm:lora_requests_info", "Running and waiting LoRA adapters (llm-d affinity)",
                                labels=["running_lora_adapters", "waiting_lora_adapters", "max_lora"])
        fam.add_metric([running, waiting, str(o.max_lora)], changed)
        yield fam

    def describe(self) -> list[Any]:
        return []


class NodeMetrics:
    """All metrics of one node and the bookkeeping of which adapters are waiting or running."""

    def __init__(self, *, max_batch: int, max_lora: int) -> None:
        self.registry = CollectorRegistry()
        self.max_batch = max_batch
        self.max_lora = max_lora
        r = self.registry
        self.requests = Counter("loraledger_requests", "Answered requests", ["adapter", "finish_reason"], registry=r)
        self.rejected = Counter("loraledger_requests_rejected", "Requests refused before work", ["code"], registry=r)
        self.tokens = Counter("loraledger_tokens", "Tokens processed", ["adapter", "kind"], registry=r)
        self.tier_hits = Counter("loraledger_adapter_cache_hits", "Requests by the adapter's cache tier at admission",
                                 ["adapter", "tier"], registry=r)
        self.load_ms = Gauge("loraledger_adapter_load_ms", "Last disk->host load of the adapter (ms)", ["adapter"],
                             registry=r)
        self.queue_depth = Gauge("loraledger_queue_depth", "Requests waiting for a row", registry=r)
        self.engine_threads = Gauge("loraledger_engine_threads", "torch threads the engine runs with "
                                    "(engine.threads)", registry=r)
        self.ttft = Histogram("loraledger_time_to_first_token_seconds", "Time to first token", ["adapter"],
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.tpot = Histogram("loraledger_time_per_output_token_seconds", "Time per output token after the first",
                              ["adapter"], buckets=_TOKEN_BUCKETS, registry=r)
        self.records_stored = Counter("loraledger_records_stored", "Attribution records durably stored", registry=r)
        self.store_bytes = Gauge("loraledger_store_bytes", "Bytes used by the record store", registry=r)
        self.records_refused = Counter("loraledger_records_refused", "Answers not sent because their record could "
                                       "not be stored (the client got a 503; alarm on any)", ["code"], registry=r)
        self.store_full = Gauge("loraledger_store_full", "1 while the record store refuses records for disk space "
                                "(store.max_bytes or store.min_free_bytes)", registry=r)
        self.vllm_waiting = Gauge("vllm:num_requests_waiting", "Requests waiting (llm-d)", registry=r)
        self.vllm_running = Gauge("vllm:num_requests_running", "Requests running (llm-d)", registry=r)
        self.vllm_kv = Gauge("vllm:kv_cache_usage_perc", "K/V cache rows in use, 0..1 (llm-d)", registry=r)
        self._lock = threading.Lock()
        self._batcher: BatcherMetrics | None = None
        self._responder: ResponderMetrics | None = None
        self._waiting_adapters: Multiset[str] = Multiset()
        self._running_adapters: Multiset[str] = Multiset()
        self._lora_changed = time.time()
        r.register(_LoraInfo(self))  # type: ignore[arg-type]

    def batcher_metrics(self) -> BatcherMetrics:
        """The metrics of a batcher run inside the node process, in this registry (so on the node's `/metrics`).

        Pass them as `Batcher(..., metrics=node_metrics.batcher_metrics())`; made once, later calls return them.
        """
        if self._batcher is None:
            self._batcher = BatcherMetrics(registry=self.registry)
        return self._batcher

    def responder_metrics(self) -> ResponderMetrics:
        """The dispute responder's metrics in this registry (on the node's `/metrics`); made once."""
        if self._responder is None:
            from attribution.responder.metrics import ResponderMetrics

            self._responder = ResponderMetrics(registry=self.registry)
        return self._responder

    def _touch(self) -> None:
        self._lora_changed = time.time()
        self._waiting_adapters += Multiset()  # drop zero counts
        self._running_adapters += Multiset()

    def waiting(self, adapter: str | None) -> None:
        """A request was admitted to the queue."""
        if adapter:
            with self._lock:
                self._waiting_adapters[adapter] += 1
                self._touch()

    def started(self, adapter: str | None) -> None:
        """A request produced its first token."""
        if adapter:
            with self._lock:
                self._waiting_adapters[adapter] -= 1
                self._running_adapters[adapter] += 1
                self._touch()

    def finished(self, adapter: str | None, was_running: bool) -> None:
        """A request finished (or failed) either while waiting or while running."""
        if adapter:
            with self._lock:
                (self._running_adapters if was_running else self._waiting_adapters)[adapter] -= 1
                self._touch()

    def render(self, engine: EngineClient, store: Any) -> bytes:
        """Update the sampled gauges from the engine's own statistics and render the text exposition."""
        stats = engine.stats()
        self.queue_depth.set(stats.queued)
        self.vllm_waiting.set(stats.queued)
        self.vllm_running.set(stats.running)
        self.vllm_kv.set(stats.kv_cache_usage)
        if store is not None:
            self.store_bytes.set(store.used_bytes)
            self.store_full.set(1 if store.disk_alarm else 0)
        for info in engine.adapters():
            if info.load_ms is not None:
                self.load_ms.labels(info.name).set(info.load_ms)
        return generate_latest(self.registry)
