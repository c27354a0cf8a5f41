"""Tiered adapter cache: device (slots in the LoRA pool), host (loaded `LoraWeights`), disk (registered files).

- Budgets are exact byte budgets per tier (plus optional adapter counts, like vLLM's `max_loras`/`max_cpu_loras`):
  the sum of resident adapters' bytes never exceeds a tier's budget. Device bytes are an adapter's pool footprint
  (`LoraPool.slot_nbytes`, rank rounded to its bucket), host bytes its `LoraWeights.nbytes`, disk bytes its files.
- Eviction is LRU per tier; pinned adapters are never evicted; an adapter used by a running row (`activate`) is
  never evicted from the device.
- `acquire` (at submit) counts a reference and prefetches: a loader thread moves disk -> host while the engine keeps
  computing; `activate` (engine thread, at admission) moves host -> device, evicting idle device adapters.
- Hot add/remove: `add` validates (the named errors of `inference.adapters.errors`) before anything changes;
  `remove` hides the adapter at once and frees it when its last in-flight request releases it.
"""

from __future__ import annotations

import logging
import os
import pathlib
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inference.adapters.errors import AdapterError, AdapterNotFound
from inference.adapters.identity import adapter_id_of, parse_id
from inference.adapters.weights import DEFAULT_MAX_BYTES, DEFAULT_MAX_RANK, LoraWeights, load_adapter
from inference.lora import LoraPool, PoolSlot

__all__ = [
    "AdapterBudgetExceeded",
    "AdapterCache",
    "AdapterInfo",
    "AdapterNameTaken",
    "CacheBudgets",
    "TIERS",
]

logger = logging.getLogger(__name__)

TIERS = ("device", "host", "disk")


class AdapterBudgetExceeded(AdapterError, ValueError):
    """The adapter does not fit a tier's budget even when empty (or the disk budget is full): raise the budget."""


class AdapterNameTaken(AdapterError, ValueError):
    """Another adapter already uses that name: remove it first or pick another name."""


@dataclass(frozen=True)
class CacheBudgets:
    """Byte budgets (and optional adapter counts) per tier; None means unlimited."""

    device_bytes: int | None = None
    host_bytes: int | None = None
    disk_bytes: int | None = None
    max_device_adapters: int | None = None
    max_host_adapters: int | None = None


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter's state in the cache (for `GET /v1/adapters/{id}` and `/v1/models`)."""

    adapter_id: bytes
    name: str
    tier: str
    path: pathlib.Path
    rank: int | None
    host_bytes: int
    device_bytes: int
    disk_bytes: int
    pinned: bool
    refs: int
    hits: int
    tokens: int
    load_ms: float | None  # last disk -> host load
    device_ms: float | None  # last host -> device copy


class _Entry:
    def __init__(self, adapter_id: bytes, name: str, path: pathlib.Path, disk_bytes: int) -> None:
        self.adapter_id = adapter_id
        self.name = name
        self.path = path
        self.disk_bytes = disk_bytes
        self.host: LoraWeights | None = None
        self.staged: LoraWeights | None = None  # loaded but not admitted to the host tier (all of it pinned)
        self.slot: PoolSlot | None = None
        self.device_bytes = 0
        self.loading = False
        self.load_error: BaseException | None = None
        self.refs = 0
        self.active = 0
        self.pinned = False
        self.removing = False
        self.hits = 0
        self.tokens = 0
        self.load_ms: float | None = None
        self.device_ms: float | None = None
        self.rank: int | None = None

    @property
    def tier(self) -> str:
        if self.slot is not None:
            return "device"
        if self.host is not None:
            return "host"
        return "disk"


def _dir_bytes(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


class AdapterCache:
    """The adapters a node can serve, and where each one is now (device, host or disk)."""

    def __init__(
        self,
        base_config: Any,
        pool: LoraPool,
        budgets: CacheBudgets | None = None,
        *,
        loader: Callable[[pathlib.Path], LoraWeights] | None = None,
        max_rank: int = DEFAULT_MAX_RANK,
        max_bytes: int = DEFAULT_MAX_BYTES,
        prefetch: bool = True,
    ) -> None:
        self.base_config = base_config
        self.pool = pool
        self.budgets = budgets or CacheBudgets()
        self._loader = loader or (lambda p: load_adapter(p, base_config, max_rank=max_rank, max_bytes=max_bytes,
                                                         dtype=pool.dtype, device="cpu"))
        self._lock = threading.RLock()
        self._entries: dict[bytes, _Entry] = {}
        self._names: dict[str, bytes] = {}
        self._host_lru: OrderedDict[bytes, None] = OrderedDict()
        self._device_lru: OrderedDict[bytes, None] = OrderedDict()
        self.host_used = 0
        self.device_used = 0
        self.disk_used = 0
        self.evictions = {"device": 0, "host": 0}
        self._ready: Callable[[], None] = lambda: None
        self._prefetch = prefetch
        self._jobs: queue.SimpleQueue[_Entry | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def set_ready_callback(self, fn: Callable[[], None]) -> None:
        """Called (from the loader thread) whenever an adapter finished loading, so the engine can admit."""
        self._ready = fn

    def close(self) -> None:
        """Stop the loader thread (pending loads are dropped)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> AdapterCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- hot add / remove

    def add(self, path: str | os.PathLike[str], name: str | None = None, *, validate: bool = True) -> bytes:
        """Register an adapter directory; with `validate` it is loaded and checked first (named errors, no change).

        Returns its adapter id. Adding the same content again is a no-op returning the same id.
        """
        p = pathlib.Path(path)
        adapter_id = adapter_id_of(p)
        name = name or p.name
        weights = self._loader(p) if validate else None  # raises the named validation errors; nothing changed yet
        with self._lock:
            e = self._entries.get(adapter_id)
            if e is not None and not e.removing:
                return adapter_id
            if e is not None:  # re-added while its removal waits for in-flight requests: take it back
                e.removing = False
                self._names[e.name] = adapter_id
                return adapter_id
            if name in self._names:
                raise AdapterNameTaken(f"adapter name {name!r} is already used by 0x{self._names[name].hex()}: "
                                       "remove that adapter or add this one under another name", adapter=name)
            disk = _dir_bytes(p)
            cap = self.budgets.disk_bytes
            if cap is not None and self.disk_used + disk > cap:
                raise AdapterBudgetExceeded(f"adding {p} ({disk} bytes) would exceed the disk budget "
                                            f"({self.disk_used}/{cap} bytes used): remove adapters or raise the "
                                            "disk budget", adapter=str(p))
            e = _Entry(adapter_id, name, p, disk)
            self._entries[adapter_id] = e
            self._names[name] = adapter_id
            self.disk_used += disk
            if weights is not None:
                e.rank = weights.rank
                self._insert_host(e, weights)
        logger.info("adapter added: 0x%s (%s)", adapter_id.hex(), name)
        return adapter_id

    def remove(self, name_or_id: str | bytes) -> bool:
        """Hide the adapter from new requests; free it now (True) or when its in-flight requests finish (False)."""
        with self._lock:
            e = self._lookup(name_or_id)
            e.removing = True
            self._names.pop(e.name, None)
            if e.refs == 0:
                self._drop(e)
                return True
        logger.info("adapter 0x%s removal deferred: %d requests in flight", e.adapter_id.hex(), e.refs)
        return False

    def _drop(self, e: _Entry) -> None:
        if e.slot is not None:
            self._evict_device(e)
        if e.host is not None:
            self._evict_host(e)
        e.staged = None
        self.disk_used -= e.disk_bytes
        del self._entries[e.adapter_id]
        logger.info("adapter removed: 0x%s", e.adapter_id.hex())

    # ---------------------------------------------------------------- lookup

    def _lookup(self, name_or_id: str | bytes) -> _Entry:
        if isinstance(name_or_id, bytes):
            aid: bytes | None = name_or_id
        else:
            aid = self._names.get(name_or_id) or parse_id(name_or_id)
        e = self._entries.get(aid) if aid is not None else None
        if e is None or e.removing:
            shown = name_or_id if isinstance(name_or_id, str) else "0x" + name_or_id.hex()
            raise AdapterNotFound(f"no adapter {shown!r} on this node: add it first (POST /v1/adapters) or check "
                                  "the name", adapter=shown)
        return e

    def resolve(self, name_or_id: str | bytes) -> bytes:
        """The adapter id of a name, hex id or raw id; raises AdapterNotFound."""
        with self._lock:
            return self._lookup(name_or_id).adapter_id

    def __contains__(self, name_or_id: object) -> bool:
        if not isinstance(name_or_id, str | bytes):
            return False
        try:
            self.resolve(name_or_id)
        except AdapterNotFound:
            return False
        return True

    def tier_of(self, name_or_id: str | bytes) -> str:
        """"device", "host" or "disk"."""
        with self._lock:
            return self._lookup(name_or_id).tier

    def info(self, name_or_id: str | bytes) -> AdapterInfo:
        """The adapter's tier, sizes, pin, references, hits, tokens and load times."""
        with self._lock:
            return self._info(self._lookup(name_or_id))

    def list(self) -> list[AdapterInfo]:
        """Every adapter that new requests may use."""
        with self._lock:
            return [self._info(e) for e in self._entries.values() if not e.removing]

    def _info(self, e: _Entry) -> AdapterInfo:
        return AdapterInfo(adapter_id=e.adapter_id, name=e.name, tier=e.tier, path=e.path, rank=e.rank,
                           host_bytes=e.host.nbytes if e.host is not None else 0, device_bytes=e.device_bytes,
                           disk_bytes=e.disk_bytes, pinned=e.pinned, refs=e.refs, hits=e.hits, tokens=e.tokens,
                           load_ms=e.load_ms, device_ms=e.device_ms)

    # ---------------------------------------------------------------- pin

    def pin(self, name_or_id: str | bytes) -> None:
        """Never evict this adapter from the tiers it reaches; loads it to host now if it is on disk."""
        with self._lock:
            e = self._lookup(name_or_id)
            e.pinned = True
            need_load = e.host is None and e.slot is None
        if need_load:
            self._load(e)

    def unpin(self, name_or_id: str | bytes) -> None:
        """Make the adapter evictable again."""
        with self._lock:
            self._lookup(name_or_id).pinned = False

    # ---------------------------------------------------------------- requests (engine side)

    def acquire(self, name_or_id: str | bytes) -> tuple[bytes, str]:
        """A request will use this adapter: count a reference, prefetch it; returns (adapter_id, tier now)."""
        with self._lock:
            e = self._lookup(name_or_id)
            e.refs += 1
            e.hits += 1
            tier = e.tier
            if e.host is not None:
                self._host_lru.move_to_end(e.adapter_id)
            if tier == "disk" and e.staged is None and not e.loading and self._prefetch:
                self._enqueue(e)
        return e.adapter_id, tier

    def release(self, adapter_id: bytes, tokens: int = 0) -> None:
        """The request finished (or never ran); a pending removal completes with the last release."""
        with self._lock:
            e = self._entries.get(adapter_id)
            if e is None:
                return
            e.refs -= 1
            e.tokens += tokens
            if e.removing and e.refs == 0 and e.active == 0:
                self._drop(e)

    def activate(self, adapter_id: bytes) -> PoolSlot | None:
        """Make the adapter device-resident for a running row; None while it loads or the device is full of busy
        adapters (the request keeps waiting). Raises the adapter's load error if loading failed."""
        with self._lock:
            e = self._entries[adapter_id]
            if e.load_error is not None:
                raise e.load_error
            if e.slot is None:
                w = e.host or e.staged
                if w is None:
                    if not e.loading:
                        if self._prefetch:
                            self._enqueue(e)
                        else:
                            self._load_locked(e)
                            w = e.host or e.staged
                    if w is None:
                        return None
                if not self._make_device_room(e, w):
                    return None
                t0 = time.perf_counter()
                e.slot = self.pool.alloc(w.rank, w.a, w.b, w.scaling, w.target_modules)
                e.device_ms = (time.perf_counter() - t0) * 1e3
                e.device_bytes = self.pool.slot_nbytes(w.rank, w.target_modules)
                self.device_used += e.device_bytes
                self._device_lru[e.adapter_id] = None
                e.staged = None
            e.active += 1
            self._device_lru.move_to_end(e.adapter_id)
            return e.slot

    def deactivate(self, adapter_id: bytes) -> None:
        """A running row using this adapter left the batch."""
        with self._lock:
            e = self._entries.get(adapter_id)
            if e is not None:
                e.active -= 1

    def preload(self, name_or_id: str | bytes, *, device: bool = False) -> float:
        """Load now on the calling thread (disk -> host, and -> device if asked); returns the milliseconds taken."""
        t0 = time.perf_counter()
        with self._lock:
            e = self._lookup(name_or_id)
            if e.host is None and e.slot is None and e.staged is None:
                self._load_locked(e)
            if device:
                slot = self.activate(e.adapter_id)
                if slot is None:
                    raise AdapterBudgetExceeded(f"no room on the device for {e.name}: every resident adapter is busy "
                                                "or pinned", adapter=e.name)
                e.active -= 1
        return (time.perf_counter() - t0) * 1e3

    # ---------------------------------------------------------------- loading

    def _enqueue(self, e: _Entry) -> None:
        e.loading = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="adapter-loader", daemon=True)
            self._thread.start()
        self._jobs.put(e)

    def _worker(self) -> None:
        while True:
            e = self._jobs.get()
            if e is None:
                return
            self._load(e)
            self._ready()

    def _load(self, e: _Entry) -> None:
        t0 = time.perf_counter()
        try:
            w: LoraWeights | None = self._loader(e.path)
            err: BaseException | None = None
        except AdapterError as exc:
            w, err = None, exc
            logger.warning("adapter 0x%s failed to load: %s", e.adapter_id.hex(), exc)
        except Exception as exc:  # never let the loader thread die: the error belongs to this adapter's requests
            w, err = None, AdapterError(f"adapter {e.name} failed to load from {e.path}: {exc}", adapter=e.name)
            err.__cause__ = exc
            logger.warning("adapter 0x%s failed to load: %s", e.adapter_id.hex(), exc)
        with self._lock:
            e.loading = False
            if err is not None:
                e.load_error = err
            elif w is not None and e.adapter_id in self._entries and e.host is None and e.slot is None:
                e.load_ms = (time.perf_counter() - t0) * 1e3
                e.rank = w.rank
                self._insert_host(e, w)

    def _load_locked(self, e: _Entry) -> None:
        # synchronous load while holding the lock (no prefetch thread, or an explicit preload)
        e.loading = True
        self._load(e)

    # ---------------------------------------------------------------- tier accounting

    def _insert_host(self, e: _Entry, w: LoraWeights) -> None:
        b = self.budgets
        if b.host_bytes is not None and w.nbytes > b.host_bytes:
            e.staged = w
            return
        while ((b.host_bytes is not None and self.host_used + w.nbytes > b.host_bytes)
               or (b.max_host_adapters is not None and len(self._host_lru) >= b.max_host_adapters)):
            victim = next((self._entries[a] for a in self._host_lru if not self._entries[a].pinned), None)
            if victim is None:  # all pinned: keep the weights staged for the device only
                e.staged = w
                return
            self._evict_host(victim)
        e.host = w
        self.host_used += w.nbytes
        self._host_lru[e.adapter_id] = None

    def _evict_host(self, e: _Entry) -> None:
        assert e.host is not None
        self.host_used -= e.host.nbytes
        e.host = None
        self._host_lru.pop(e.adapter_id, None)
        self.evictions["host"] += 1

    def _make_device_room(self, e: _Entry, w: LoraWeights) -> bool:
        need = self.pool.slot_nbytes(w.rank, w.target_modules)
        b = self.budgets
        if b.device_bytes is not None and need > b.device_bytes:
            err = AdapterBudgetExceeded(f"adapter {e.name} needs {need} device bytes, more than the whole device "
                                        f"budget ({b.device_bytes}): raise it or use a smaller rank", adapter=e.name)
            e.load_error = err
            raise err
        while ((b.device_bytes is not None and self.device_used + need > b.device_bytes)
               or (b.max_device_adapters is not None and len(self._device_lru) >= b.max_device_adapters)):
            victim = next((self._entries[a] for a in self._device_lru
                           if not self._entries[a].pinned and self._entries[a].active == 0), None)
            if victim is None:
                return False
            self._evict_device(victim)
        return True

    def _evict_device(self, e: _Entry) -> None:
        assert e.slot is not None
        self.pool.free(e.slot)
        e.slot = None
        self.device_used -= e.device_bytes
        e.device_bytes = 0
        self._device_lru.pop(e.adapter_id, None)
        self.evictions["device"] += 1

    def stats(self) -> dict[str, int]:
        """Bytes and adapter counts per tier."""
        with self._lock:
            return {"device_bytes": self.device_used, "host_bytes": self.host_used, "disk_bytes": self.disk_used,
                    "device_adapters": len(self._device_lru), "host_adapters": len(self._host_lru),
                    "adapters": sum(1 for e in self._entries.values() if not e.removing)}
