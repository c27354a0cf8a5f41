"""Tiered adapter cache: device (slots in the LoRA pool), host (loaded `LoraWeights`), disk (registered files).

- Budgets are exact byte budgets per tier (plus optional adapter counts, like vLLM's `max_loras`/`max_cpu_loras`):
  the sum of resident adapters' bytes never exceeds a tier's budget. Device bytes are an adapter's pool footprint
  (`LoraPool.slot_nbytes`, rank rounded to its bucket), host bytes its `LoraWeights.nbytes`, disk bytes its files.
  Every loaded copy on the host counts, including one that only waits to be copied to the device.
- Eviction is LRU per tier; pinned adapters are never evicted; an adapter used by a running row (`activate`) is
  never evicted from the device, and one whose requests wait for the device keeps its host copy. A load that finds
  no host room waits (its requests with it) until room can be made, like a device full of busy adapters.
- `acquire` (at submit) counts a reference and prefetches: the loader (`inference.adapters.loader`: load jobs,
  retries, the loader thread) moves disk -> host while the engine keeps computing; `activate` (engine thread, at
  admission) moves host -> device, evicting idle device adapters.
- Hot add/remove: `add` validates (the named errors of `inference.adapters.errors`) before anything changes;
  `remove` hides the adapter at once and frees it when its last in-flight request releases it (a load of it in
  flight is dropped when it finishes).
- With a CUDA pool the host tier holds pinned (page-locked) tensors, so host -> device copies run asynchronously.
"""

from __future__ import annotations

import logging
import os
import pathlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

from inference.adapters.entry import AdapterBudgetExceeded, AdapterLoadFailed, CacheBudgets, _dir_bytes, _Entry
from inference.adapters.errors import AdapterNotFound
from inference.adapters.identity import adapter_id_of, parse_id
from inference.adapters.loader import DEFAULT_RETRY_DELAYS, AdapterLoader
from inference.adapters.weights import DEFAULT_MAX_BYTES, DEFAULT_MAX_RANK, LoraWeights, load_adapter
from inference.api import AdapterInfo, AdapterNameTaken
from inference.lora import LoraPool, PoolSlot

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "AdapterBudgetExceeded",
    "AdapterCache",
    "AdapterInfo",
    "AdapterLoadFailed",
    "AdapterNameTaken",
    "CacheBudgets",
    "TIERS",
]

logger = logging.getLogger(__name__)

TIERS = ("device", "host", "disk")


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
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        self.base_config = base_config
        self.pool = pool
        self.budgets = budgets or CacheBudgets()
        load = loader or (lambda p: load_adapter(p, base_config, max_rank=max_rank, max_bytes=max_bytes,
                                                 dtype=pool.dtype, device="cpu"))
        # page-locked host copies let the pool's host -> device copies run without blocking; only CUDA has them
        self.pin_host_memory = torch.device(pool.device).type == "cuda"
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)  # signalled when a load finishes or a job is queued
        self._entries: dict[bytes, _Entry] = {}
        self._names: dict[str, bytes] = {}
        self._host_lru: OrderedDict[bytes, _Entry] = OrderedDict()
        self._device_lru: OrderedDict[bytes, _Entry] = OrderedDict()
        self.host_used = 0
        self.device_used = 0
        self.disk_used = 0
        self.evictions = {"device": 0, "host": 0}
        self._loads = AdapterLoader(self._cond, load, live=self._live, host_room_possible=self._host_room_possible,
                                    insert_host=self._insert_host, pin_host_memory=self.pin_host_memory,
                                    prefetch=prefetch, retry_delays=retry_delays)

    # ---------------------------------------------------------------- lifecycle

    def set_ready_callback(self, fn: Callable[[], None]) -> None:
        """Called (from the loader thread) whenever an adapter finished loading, so the engine can admit."""
        self._loads.ready = fn

    @property
    def loader_faults(self) -> int:
        """Exceptions the loader thread caught outside the loader itself (bugs, reported on the adapter)."""
        return self._loads.faults

    def close(self) -> None:
        """Stop the loader thread (pending loads are dropped; a later request queues its load again)."""
        self._loads.close()

    def __enter__(self) -> AdapterCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- hot add / remove

    def add(self, path: str | os.PathLike[str], name: str | None = None, *, validate: bool = True,
            expected_id: bytes | None = None) -> bytes:
        """Register an adapter directory; returns its id (the same content again: a no-op).

        With `validate` it is loaded and checked first (named errors, no change), its bytes hashing to `expected_id`."""
        p = pathlib.Path(path)
        name = name or p.name
        weights = self._loads.load(p, expected_id, str(p)) if validate else None
        adapter_id = weights.adapter_id if weights is not None else adapter_id_of(p)  # the id of the bytes loaded
        b = self.budgets
        if weights is not None and ((b.host_bytes is not None and weights.nbytes > b.host_bytes)
                                    or b.max_host_adapters == 0):
            raise AdapterBudgetExceeded(f"adapter {p} needs {weights.nbytes} host bytes, more than the whole host "
                                        f"budget ({b.host_bytes} bytes, {b.max_host_adapters} adapters): raise it "
                                        "or use a smaller rank", adapter=str(p))
        with self._cond:
            e = self._entries.get(adapter_id)
            if e is not None:
                if e.removing:  # re-added while its removal waits for in-flight requests: take it back
                    if name in self._names:
                        raise AdapterNameTaken(f"adapter name {name!r} is already used by "
                                               f"0x{self._names[name].hex()}: remove that adapter or add this one "
                                               "under another name", adapter=name)
                    e.removing = False
                    e.name = name
                    self._names[name] = adapter_id
                if weights is not None and e.load_error is not None:
                    e.load_error, e.error_sticky = None, False  # it loads now: whatever failed before is gone
                return adapter_id
            if name in self._names:
                raise AdapterNameTaken(f"adapter name {name!r} is already used by 0x{self._names[name].hex()}: "
                                       "remove that adapter or add this one under another name", adapter=name)
            disk = _dir_bytes(p)
            cap = b.disk_bytes
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
                self._insert_host(e, weights)  # no room (all pinned or busy): it stays on disk until requested
        logger.info("adapter added: 0x%s (%s)", adapter_id.hex(), name)
        return adapter_id

    def remove(self, name_or_id: str | bytes) -> bool:
        """Hide the adapter from new requests; free it now (True) or when its in-flight requests finish (False)."""
        with self._cond:
            e = self._lookup(name_or_id)
            e.removing = True
            self._names.pop(e.name, None)
            if e.refs == 0:
                self._drop(e)
                return True
        logger.info("adapter 0x%s removal deferred: %d requests in flight", e.adapter_id.hex(), e.refs)
        return False

    def _drop(self, e: _Entry) -> None:
        self._evict_device(e)
        self._evict_host(e)
        if self._entries.get(e.adapter_id) is e:
            self.disk_used -= e.disk_bytes
            del self._entries[e.adapter_id]
        self._loads.cancel(e)
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

    def _live(self, e: _Entry) -> bool:
        return self._entries.get(e.adapter_id) is e

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
        """The adapter's tier, sizes, pin, references, hits, tokens, load times and last load error."""
        with self._lock:
            return self._info(self._lookup(name_or_id))

    def list(self) -> list[AdapterInfo]:
        """Every adapter that new requests may use."""
        with self._lock:
            return [self._info(e) for e in self._entries.values() if not e.removing]

    def _info(self, e: _Entry) -> AdapterInfo:
        err = e.load_error
        return AdapterInfo(adapter_id=e.adapter_id, name=e.name, tier=e.tier, path=e.path, rank=e.rank,
                           host_bytes=e.host.nbytes if e.host is not None else 0, device_bytes=e.device_bytes,
                           disk_bytes=e.disk_bytes, pinned=e.pinned, refs=e.refs, hits=e.hits, tokens=e.tokens,
                           load_ms=e.load_ms, device_ms=e.device_ms, loading=e.load is not None,
                           load_error=f"{type(err).__name__}: {err}" if err is not None else None)

    # ---------------------------------------------------------------- pin

    def pin(self, name_or_id: str | bytes) -> None:
        """Never evict this adapter from the tiers it reaches; loads it to host now if it is on disk (waiting for a
        load already in flight rather than starting a second one)."""
        with self._lock:
            e = self._lookup(name_or_id)
            was, e.pinned = e.pinned, True
        try:
            w = self._loads.load_sync(e)
            with self._lock:
                if w is not None and e.host is None and e.slot is None:
                    raise AdapterBudgetExceeded(f"no host room to pin {e.name}: the host budget is held by pinned "
                                                "adapters or ones waiting for the device; unpin some or raise the "
                                                "host budget", adapter=e.name)
        except BaseException:
            with self._lock:
                e.pinned = was
            raise

    def unpin(self, name_or_id: str | bytes) -> None:
        """Make the adapter evictable again."""
        with self._lock:
            self._lookup(name_or_id).pinned = False
            self._loads.kick_room_waiters()

    # ---------------------------------------------------------------- requests (engine side)

    def acquire(self, name_or_id: str | bytes) -> tuple[bytes, str]:
        """A request will use this adapter: count a reference, prefetch it; returns (adapter_id, tier now)."""
        with self._cond:
            e = self._lookup(name_or_id)
            e.refs += 1
            e.hits += 1
            if e.load_error is not None and not e.error_sticky:
                e.load_error = None  # the last load failed for a passing reason: this request tries again
            tier = e.tier
            if e.host is not None:
                self._host_lru.move_to_end(e.adapter_id)
            if tier == "disk" and self._loads.prefetch:
                self._loads.maybe_enqueue(e)
        return e.adapter_id, tier

    def release(self, adapter_id: bytes, tokens: int = 0) -> None:
        """The request finished (or never ran); a pending removal completes with the last release."""
        with self._cond:
            e = self._entries.get(adapter_id)
            if e is None or e.refs <= 0:
                if e is not None:
                    logger.warning("adapter 0x%s released more often than acquired: ignored", adapter_id.hex())
                return
            e.refs -= 1
            e.tokens += tokens
            if e.removing and e.refs == 0 and e.active == 0:
                self._drop(e)
            elif e.refs == 0:
                self._loads.kick_room_waiters()  # its host copy became evictable

    def activate(self, adapter_id: bytes) -> PoolSlot | None:
        """Make the adapter device-resident for a running row; None while it loads or the device is full of busy
        adapters (the request keeps waiting). Raises the adapter's load error if loading failed."""
        w: LoraWeights | None = None
        if not self._loads.prefetch:  # load on this thread (outside the lock: other threads keep using the cache)
            with self._lock:
                e = self._entry(adapter_id)
                need = e.slot is None and e.host is None and e.load_error is None
            if need:
                w = self._loads.load_sync(e)
        with self._cond:
            return self._activate(self._entry(adapter_id), w)

    def _entry(self, adapter_id: bytes) -> _Entry:
        e = self._entries.get(adapter_id)
        if e is None:
            raise AdapterNotFound(f"adapter 0x{adapter_id.hex()} was removed from this node: add it again",
                                  adapter="0x" + adapter_id.hex())
        return e

    def _activate(self, e: _Entry, loaded: LoraWeights | None) -> PoolSlot | None:
        if e.load_error is not None:
            raise e.load_error
        if e.slot is None:
            w = e.host or loaded
            if w is None:
                if self._loads.prefetch:
                    self._loads.maybe_enqueue(e)
                return None
            if not self._make_device_room(e, w):
                return None
            t0 = time.perf_counter()
            e.slot = self.pool.alloc(w.rank, w.a, w.b, w.scaling, w.target_modules)
            e.device_ms = (time.perf_counter() - t0) * 1e3
            e.device_bytes = self.pool.slot_nbytes(w.rank, w.target_modules)
            self.device_used += e.device_bytes
            self._device_lru[e.adapter_id] = e
            self._loads.kick_room_waiters()  # its host copy became evictable
        e.active += 1
        self._device_lru.move_to_end(e.adapter_id)
        return e.slot

    def deactivate(self, adapter_id: bytes) -> None:
        """A running row using this adapter left the batch."""
        with self._lock:
            e = self._entries.get(adapter_id)
            if e is not None and e.active > 0:
                e.active -= 1

    def preload(self, name_or_id: str | bytes, *, device: bool = False) -> float:
        """Load now on the calling thread (disk -> host, and -> device if asked); returns the milliseconds taken.

        Waits for a load of it already in flight instead of starting a second one. With `device`, the copy to the
        device has completed when this returns."""
        t0 = time.perf_counter()
        with self._lock:
            e = self._lookup(name_or_id)
        while True:
            w = self._loads.load_sync(e)
            with self._cond:
                if w is None and e.host is None and e.slot is None:
                    continue  # evicted again between the load and here
                if device:
                    slot = self._activate(e, w)
                    if slot is None:
                        raise AdapterBudgetExceeded(f"no room on the device for {e.name}: every resident adapter is "
                                                    "busy or pinned", adapter=e.name)
                    e.active -= 1
                elif w is not None and e.host is None:
                    raise AdapterBudgetExceeded(f"no host room for {e.name}: the host budget is held by pinned "
                                                "adapters or ones waiting for the device", adapter=e.name)
                break
        if device and self.pool.device.type != "cpu":
            torch.accelerator.synchronize(self.pool.device)  # the pool's copies may be asynchronous
        return (time.perf_counter() - t0) * 1e3


    # ---------------------------------------------------------------- tier accounting

    def _host_evictable(self, v: _Entry, e: _Entry) -> bool:
        # pinned stays; so does a copy that requests wait to move to the device (else loads could evict each other)
        return v is not e and not v.pinned and not (v.refs > 0 and v.slot is None)

    def _host_room_possible(self, e: _Entry, nbytes: int) -> bool:
        """Whether evicting every evictable host adapter would make room for `nbytes` more (lock held)."""
        b = self.budgets
        free = [v for v in self._host_lru.values() if self._host_evictable(v, e)]
        if b.host_bytes is not None and self.host_used - sum(v.host.nbytes for v in free if v.host) + nbytes > \
                b.host_bytes:
            return False
        return b.max_host_adapters is None or len(self._host_lru) - len(free) < b.max_host_adapters

    def _insert_host(self, e: _Entry, w: LoraWeights) -> bool:
        """Put loaded weights in the host tier, evicting LRU; False when they cannot fit now (or ever: then the
        adapter's error is set)."""
        b = self.budgets
        if (b.host_bytes is not None and w.nbytes > b.host_bytes) or b.max_host_adapters == 0:
            e.load_error = AdapterBudgetExceeded(
                f"adapter {e.name} needs {w.nbytes} host bytes, more than the whole host budget ({b.host_bytes} bytes, "
                f"{b.max_host_adapters} adapters): raise it or use a smaller rank", adapter=e.name)
            e.error_sticky = True
            return False
        if not self._host_room_possible(e, w.nbytes):
            return False
        while ((b.host_bytes is not None and self.host_used + w.nbytes > b.host_bytes)
               or (b.max_host_adapters is not None and len(self._host_lru) >= b.max_host_adapters)):
            victim = next(v for v in self._host_lru.values() if self._host_evictable(v, e))
            self._evict_host(victim)
            self.evictions["host"] += 1
        e.host = w
        e.room_for = None
        self.host_used += w.nbytes
        self._host_lru[e.adapter_id] = e
        return True

    def _evict_host(self, e: _Entry) -> None:
        if e.host is None:
            return
        self.host_used -= e.host.nbytes
        e.host = None
        if self._host_lru.get(e.adapter_id) is e:
            del self._host_lru[e.adapter_id]

    def _make_device_room(self, e: _Entry, w: LoraWeights) -> bool:
        need = self.pool.slot_nbytes(w.rank, w.target_modules)
        b = self.budgets
        if b.device_bytes is not None and need > b.device_bytes:
            err = AdapterBudgetExceeded(f"adapter {e.name} needs {need} device bytes, more than the whole device "
                                        f"budget ({b.device_bytes}): raise it or use a smaller rank", adapter=e.name)
            e.load_error, e.error_sticky = err, True
            raise err
        while ((b.device_bytes is not None and self.device_used + need > b.device_bytes)
               or (b.max_device_adapters is not None and len(self._device_lru) >= b.max_device_adapters)):
            victim = next((v for v in self._device_lru.values() if not v.pinned and v.active == 0), None)
            if victim is None:
                return False
            self._evict_device(victim)
            self.evictions["device"] += 1
        return True

    def _evict_device(self, e: _Entry) -> None:
        if e.slot is None:
            return
        self.pool.free(e.slot)
        e.slot = None
        self.device_used -= e.device_bytes
        e.device_bytes = 0
        if self._device_lru.get(e.adapter_id) is e:
            del self._device_lru[e.adapter_id]

    def stats(self) -> dict[str, int]:
        """Bytes and adapter counts per tier."""
        with self._lock:
            return {"device_bytes": self.device_used, "host_bytes": self.host_used, "disk_bytes": self.disk_used,
                    "device_adapters": len(self._device_lru), "host_adapters": len(self._host_lru),
                    "adapters": sum(1 for e in self._entries.values() if not e.removing),
                    "loading": sum(1 for e in self._entries.values() if e.load is not None),
                    "waiting_for_host_room": len(self._loads.room_waiters)}
