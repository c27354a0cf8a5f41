"""What one node process holds: the engine (an `inference.api.EngineClient`: ours or vLLM), the catalogue, the record
store and receipt signer, the batcher (`batcher.enabled`), the dispute responder (`disputes.respond`), metrics and
rate limits. `build_services(settings)` wires them; `close()` takes them down in order. The node reaches the engine
only through that protocol and `inference.build_engine`.

The chain is read once at start (chain id, ledger address, registry entries of the served adapters); after that
only the catalogue's background refresh and the batcher's and the responder's own threads talk to it, so nothing in
the request path waits on the chain, DA, the batcher or the responder.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from node.catalogue import Catalogue, ChainRegistry, OpenRegistry, RegistryReader
from node.errors import UsageError
from node.metrics import NodeMetrics
from node.ratelimit import RateLimits
from node.recorder import Recorder
from node.settings import Settings

if TYPE_CHECKING:
    from inference.api import EngineClient

__all__ = ["Services", "build_services", "engine_spec", "open_store"]

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """The node's parts, shared by every route (`request.app.state.services`)."""

    settings: Settings
    engine: EngineClient
    catalogue: Catalogue
    metrics: NodeMetrics
    limits: RateLimits
    recorder: Recorder | None
    store: Any
    batcher: Any = None  # attribution.batcher.Batcher run inside the node (None: off, or `batcher run` apart)
    responder: Any = None  # attribution.responder.Responder: answers challenges against the node (None: off)
    chain_id: int | None = None
    ledger: bytes | None = None
    accepting: bool = True
    detached: set[asyncio.Task[Any]] = field(default_factory=set)  # drains of cancelled requests (still recorded)
    inflight: set[Any] = field(default_factory=set)  # engine handles of requests being served
    _stop_refresh: threading.Event = field(default_factory=threading.Event)
    _refresh_thread: threading.Thread | None = None
    allowed_roots: list[pathlib.Path] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    @property
    def model_id(self) -> bytes:
        """The base model's id."""
        return self.engine.model_id

    @property
    def model_name(self) -> str:
        """The `model` name clients use for the base model."""
        return self.engine.model_name

    @property
    def tokenizer(self) -> Any:
        """The engine's tokenizer."""
        return self.engine.tokenizer

    def start_refresh(self) -> None:
        """Re-read the registry every `adapters.refresh_s` on a background thread."""
        def loop() -> None:
            while not self._stop_refresh.wait(self.settings.adapters.refresh_s):
                try:
                    self.catalogue.refresh()
                except Exception:  # noqa: BLE001 - never let the refresher die
                    logger.exception("catalogue refresh failed")

        self._refresh_thread = threading.Thread(target=loop, name="catalogue-refresh", daemon=True)
        self._refresh_thread.start()

    def add_adapter(self, path: pathlib.Path, name: str | None = None, adapter_id: bytes | None = None) -> Any:
        """Validate and load an adapter directory, check it against the registry, serve it; returns its entry."""
        from inference.api import AdapterNameTaken, content_hash_of

        name = name or path.name
        if name == self.model_name or self.catalogue.get(name) is not None:
            raise AdapterNameTaken(f"the name {name!r} is already served: remove it first or pick another name",
                                   adapter=name)
        content_hash = content_hash_of(path)  # refuses non-safetensors adapters with a named error
        same = self.catalogue.by_content_hash(content_hash)
        if same is not None:
            raise AdapterNameTaken(f"these adapter files are already served as {same.name!r}: use that name",
                                   adapter=name)
        entry = self.catalogue.add(name, content_hash, adapter_id)  # registry check before any loading
        try:
            # the engine loads a read-only copy whose hash it checks again: the bytes served are the bytes checked
            self.engine.add_adapter(content_hash, path, name)
        except BaseException:
            self.catalogue.remove(name)
            raise
        return entry

    def remove_adapter(self, name_or_id: str) -> Any:
        """Stop serving an adapter (in-flight requests finish); returns the removed entry or None."""
        entry = self.catalogue.find(name_or_id)
        if entry is None:
            return None
        self.catalogue.remove(entry.name)
        self.engine.remove_adapter(entry.content_hash)
        return entry

    async def drain(self, deadline_s: float) -> None:
        """Stop admitting; let in-flight requests finish for `deadline_s`, then cut them (still recorded)."""
        self.accepting = False
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while self.inflight and loop.time() < end:
            await asyncio.sleep(0.05)
        for handle in list(self.inflight):
            handle.cancel()
        end = loop.time() + 10
        while (self.inflight or self.detached) and loop.time() < end:
            await asyncio.sleep(0.05)

    def close(self) -> None:
        """Stop the refresher and the engine; flush and close the store; then stop the batcher (after
        the store, so a pass under way when the last answers were recorded still finishes and persists its step)."""
        self._stop_refresh.set()
        if self.responder is not None:  # before the store it reads from closes
            from node.responder import close_responder

            close_responder(self.responder)
            self.responder = None
            logger.info("dispute responder stopped")
        self.engine.stop()
        try:
            if self.store is not None:
                self.store.close()
                logger.info("record store flushed")
        finally:
            if self.batcher is not None:
                from node.batcher import close_batcher

                close_batcher(self.batcher)
                self.batcher = None
                logger.info("batcher stopped")
        logger.info("node stopped")


def _manifest_adapters(manifest: pathlib.Path) -> list[tuple[pathlib.Path, str, bytes | None]]:
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        out = []
        for a in data["adapters"]:
            registered = a.get("registered_adapter_id")  # v2 manifests map contentHash -> adapterId
            out.append((manifest.parent / a["path"], str(a["name"]),
                        bytes.fromhex(registered[2:]) if registered else None))
        return out
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"cannot read adapters.manifest {manifest}: {e}; rerun `loraledger demo init` or unset "
                         "adapters.manifest") from e


def open_store(settings: Settings, node: bytes) -> Any:
    """The node's `RecordStore` with the `[store]` settings: path, disk bound, free-space floor, archive dir, commit
    delay.

    Retention is the batcher's (`batcher.retention_s`): it prunes final batches, which the store's bounds rely on.
    """
    from attribution.store import RecordStore

    st = settings.store
    return RecordStore(st.path, node, max_bytes=st.max_bytes, min_free_bytes=st.min_free_bytes,
                       archive_dir=st.archive_dir, commit_delay_s=st.commit_delay_ms / 1000)


def engine_threads(configured: int | None) -> int:
    """`engine.threads`, or by default the cores this process may use (its affinity, not the machine's count),
    minus one for the HTTP, recording and batching threads when there are more than two."""
    if configured is not None:
        return configured
    cores = len(os.sched_getaffinity(0))
    return cores - 1 if cores > 2 else cores


def apply_engine_threads(configured: int | None) -> int:
    """Set torch's intra- and inter-op threads before the engine starts; returns the intra-op count."""
    import torch

    n = engine_threads(configured)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # fixed once any inter-op work ran in this process (a second node in tests): keep it
        pass
    logger.info("engine: %d torch threads (%d cores usable by this process)", n, len(os.sched_getaffinity(0)))
    return n


def engine_spec(settings: Settings) -> Any:
    """The `inference.api.EngineSpec` of the `[engine]` and `[adapters]` settings."""
    from inference.api import EngineSpec

    e, a = settings.engine, settings.adapters
    return EngineSpec(model_dir=e.model_dir, model_name=e.model_name, backend=e.backend, device=e.device,
                      dtype=e.dtype, max_batch=e.max_batch, max_queue=e.max_queue, max_seq_len=e.max_seq_len,
                      device_bytes=a.device_bytes, host_bytes=a.host_bytes,
                      adapter_store=a.store_dir or settings.store.path.parent / "adapter-store",
                      max_loras=e.max_loras, max_cpu_loras=e.max_cpu_loras, max_lora_rank=e.max_lora_rank,
                      tensor_parallel_size=e.tensor_parallel_size, gpu_memory_utilization=e.gpu_memory_utilization,
                      kv_cache_gib=e.kv_cache_gib)


def build_services(settings: Settings) -> Services:
    """Build the engine and start it (vLLM starts in the background: `/readyz` says when it is up), open the store,
    read the chain; raises `UsageError` on bad config."""
    from inference import InferenceError, build_engine

    e = settings.engine
    a = settings.adapters
    threads = apply_engine_threads(e.threads)  # before the model loads
    try:
        engine = build_engine(engine_spec(settings))
    except InferenceError as err:
        raise UsageError(f"engine: {err}") from err

    store = recorder = batcher = responder = None
    chain_id = ledger = None
    registry: RegistryReader = OpenRegistry()
    metrics = NodeMetrics(max_batch=e.max_batch, max_lora=engine.stats().max_loras)
    metrics.engine_threads.set(threads)
    if settings.node.attribution or a.require_registered:
        from attribution.chain.errors import ChainError, SignerError
        from attribution.chain.redact import redact_url
        from node.chain import connect_chain, signer_params

        signer = signer_params(settings, dev_index=settings.node.node_dev_index) if settings.node.attribution else None
        try:
            chain = connect_chain(settings, signer=signer)
            contracts = chain.contracts
        except SignerError as err:
            raise UsageError(f"node key: {err}") from err
        except ChainError as err:
            raise UsageError(f"cannot read the chain at {redact_url(settings.chain.rpc_url)}: {err}; start it "
                             "(`loraledger devnet up`) or fix chain.rpc_url") from err
        chain_id, deployment = chain.chain_id, chain.need_deployment()
        ledger = bytes.fromhex(deployment.address("AttributionLedger")[2:])
        if a.require_registered:
            owners = list(a.owners)
            demo_owner = deployment.devnet.get("demo", {}).get("owner")
            if not owners and demo_owner:
                owners = [demo_owner]  # the devnet: adapters of the demo, registered by `devnet up`
            registry = ChainRegistry(contracts.assets, owners)
        if settings.node.attribution:
            from attribution.records.receipt import ReceiptSigner
            from attribution.store import StoreError

            assert chain.account is not None  # connect loaded the signer it was given
            receipts = ReceiptSigner(chain.account, chain_id, ledger)
            try:
                store = open_store(settings, receipts.node)
            except StoreError as err:
                raise UsageError(f"store.path {settings.store.path}: {err}") from err
            recorder = Recorder(store, receipts, chain_id, ledger, metrics.records_stored)
            logger.info("node 0x%s on chain %d, ledger 0x%s, records in %s (next seq %d)", receipts.node.hex(),
                        chain_id, ledger.hex(), settings.store.path, store.next_seq())
            if settings.batcher.enabled:
                from node.batcher import build_batcher

                try:
                    batcher = build_batcher(settings, metrics=metrics.batcher_metrics())
                except BaseException:
                    store.close()
                    raise
            if settings.disputes.respond:
                from node.responder import build_responder

                try:  # one nonce owner for the node's key: the batcher's tx manager when it runs here
                    responder = build_responder(settings, store, metrics=metrics.responder_metrics(),
                                                txmgr=batcher.txmgr if batcher is not None else None)
                except BaseException:
                    if batcher is not None:
                        from node.batcher import close_batcher

                        close_batcher(batcher)
                    store.close()
                    raise
    catalogue = Catalogue(registry, refresh_s=a.refresh_s)
    services = Services(settings=settings, engine=engine, catalogue=catalogue, metrics=metrics,
                        limits=RateLimits(settings.node.requests_per_minute, settings.node.tokens_per_minute),
                        recorder=recorder, store=store, batcher=batcher, responder=responder, chain_id=chain_id,
                        ledger=ledger)
    adapters: list[tuple[pathlib.Path, str, bytes | None]] = [(d, d.name, None) for d in a.dirs]
    if a.manifest is not None and a.manifest.is_file():
        adapters += _manifest_adapters(a.manifest)
    roots = list(a.allowed_roots) or sorted({d.parent for d, _, _ in adapters})
    services.allowed_roots = [pathlib.Path(os.path.realpath(r)) for r in roots]
    try:
        for path, name, adapter_id in adapters:
            services.add_adapter(path, name, adapter_id)
    except Exception as err:
        services.close()
        raise UsageError(f"adapter {path}: {err}") from err
    if batcher is not None:
        from node.batcher import start_batcher

        try:
            start_batcher(batcher, "stop that batcher, or set batcher.enabled = false to keep it and run this node "
                          "without its own")
        except UsageError:
            services.close()
            raise
    if responder is not None:
        responder.start()
    engine.start()
    services.start_refresh()
    return services
