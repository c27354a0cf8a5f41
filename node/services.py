"""What one node process holds: the base model, the engine and adapter cache, the catalogue, the record store and
receipt signer, metrics and rate limits. `build_services(settings)` wires them; `close()` takes them down in order.

The chain is read once at start (chain id, ledger address, registry entries of the served adapters); after that
only the catalogue's background refresh talks to it, so nothing in the request path waits on the chain.
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
from typing import Any

from node.catalogue import Catalogue, ChainRegistry, OpenRegistry, RegistryReader
from node.errors import UsageError
from node.metrics import NodeMetrics
from node.ratelimit import RateLimits
from node.recorder import Recorder
from node.settings import Settings

__all__ = ["Services", "build_services", "open_store"]

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """The node's parts, shared by every route (`request.app.state.services`)."""

    settings: Settings
    engine: Any
    cache: Any
    tokenizer: Any
    model_id: bytes
    model_name: str
    catalogue: Catalogue
    metrics: NodeMetrics
    limits: RateLimits
    recorder: Recorder | None
    store: Any
    chain_id: int | None = None
    ledger: bytes | None = None
    accepting: bool = True
    detached: set[asyncio.Task[Any]] = field(default_factory=set)  # drains of cancelled requests (still recorded)
    inflight: set[Any] = field(default_factory=set)  # engine handles of requests being served
    _stop_refresh: threading.Event = field(default_factory=threading.Event)
    _refresh_thread: threading.Thread | None = None
    allowed_roots: list[pathlib.Path] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

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
        from inference.adapters.identity import adapter_id_of

        name = name or path.name
        if name == self.model_name or self.catalogue.get(name) is not None:
            from inference.adapters.cache import AdapterNameTaken

            raise AdapterNameTaken(f"the name {name!r} is already served: remove it first or pick another name",
                                   adapter=name)
        content_hash = adapter_id_of(path)  # refuses non-safetensors adapters with a named error
        same = self.catalogue.by_content_hash(content_hash)
        if same is not None:
            from inference.adapters.cache import AdapterNameTaken

            raise AdapterNameTaken(f"these adapter files are already served as {same.name!r}: use that name",
                                   adapter=name)
        entry = self.catalogue.add(name, content_hash, adapter_id)  # registry check before any loading
        try:
            # the cache hashes the bytes it loads in the same read: files swapped since the check are refused
            self.cache.add(path, name, expected_id=content_hash)
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
        self.cache.remove(entry.content_hash)
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
        """Stop the refresher, the engine, the cache loader; flush and close the store."""
        self._stop_refresh.set()
        self.engine.stop()
        if self.cache is not None:
            self.cache.close()
        if self.store is not None:
            self.store.close()
        logger.info("node stopped; record store flushed")


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


def build_services(settings: Settings) -> Services:
    """Load the model, start the engine, open the store, read the chain; raises `UsageError` on bad config."""
    import torch

    from inference.adapters.cache import AdapterCache, CacheBudgets
    from inference.engine import Engine, EngineConfig
    from inference.errors import InferenceError
    from inference.lora import LoraPool
    from inference.model import load_base_model

    e = settings.engine
    threads = apply_engine_threads(e.threads)
    try:
        base = load_base_model(e.model_dir, dtype=getattr(torch, e.dtype), device=e.device, name=e.model_name)
    except InferenceError as err:
        raise UsageError(f"engine.model_dir: {err}") from err
    from inference.adapters.weights import linear_shapes

    cfg = base.model.config
    pool = LoraPool(linear_shapes(cfg), cfg.num_hidden_layers, device=base.model.device, dtype=base.dtype)
    a = settings.adapters
    cache = AdapterCache(cfg, pool, CacheBudgets(device_bytes=a.device_bytes, host_bytes=a.host_bytes))
    engine = Engine(base, cache, EngineConfig(max_batch=e.max_batch, max_queue=e.max_queue,
                                              max_seq_len=e.max_seq_len))

    store = recorder = None
    chain_id = ledger = None
    registry: RegistryReader = OpenRegistry()
    metrics = NodeMetrics(max_batch=e.max_batch, max_lora=e.max_batch)
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
    catalogue = Catalogue(registry, refresh_s=a.refresh_s)
    services = Services(settings=settings, engine=engine, cache=cache, tokenizer=base.tokenizer,
                        model_id=base.model_id, model_name=base.name, catalogue=catalogue, metrics=metrics,
                        limits=RateLimits(settings.node.requests_per_minute, settings.node.tokens_per_minute),
                        recorder=recorder, store=store, chain_id=chain_id, ledger=ledger)
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
    engine.start()
    services.start_refresh()
    return services
