"""One registration of an adapter in the tiered cache (`inference.adapters.cache`): where its bytes are, its load
state and counters; the per-tier budgets; the cache's own errors."""

from __future__ import annotations

import itertools
import pathlib
from dataclasses import dataclass

from inference.adapters.errors import AdapterError
from inference.adapters.weights import LoraWeights
from inference.lora import PoolSlot

__all__ = ["AdapterBudgetExceeded", "AdapterLoadFailed", "CacheBudgets"]

_gens = itertools.count(1)


class AdapterBudgetExceeded(AdapterError, ValueError):
    """The adapter does not fit a tier's budget even when empty (or the disk budget is full): raise the budget."""


class AdapterLoadFailed(AdapterError):
    """Loading failed for a reason other than the adapter's content (an I/O error that outlasted the retries, an
    unexpected fault): its waiting requests fail, the next request for it tries again."""


@dataclass(frozen=True)
class CacheBudgets:
    """Byte budgets (and optional adapter counts) per tier; None means unlimited."""

    device_bytes: int | None = None
    host_bytes: int | None = None
    disk_bytes: int | None = None
    max_device_adapters: int | None = None
    max_host_adapters: int | None = None


class _Entry:
    """One registration of an adapter. A remove + add of the same content makes a new entry (a new `gen`)."""

    def __init__(self, adapter_id: bytes, name: str, path: pathlib.Path, disk_bytes: int) -> None:
        self.adapter_id = adapter_id
        self.gen = next(_gens)
        self.name = name
        self.path = path
        self.disk_bytes = disk_bytes
        self.host: LoraWeights | None = None
        self.slot: PoolSlot | None = None
        self.device_bytes = 0
        self.load: str | None = None  # None | "queued" | "running"
        self.load_token = 0  # bumped by every claim: a job or waiter holding an older token is stale
        self.attempts = 0  # transient failures of the current load so far
        self.load_error: AdapterError | None = None
        self.error_sticky = False  # content or budget error: refused until remove + add
        self.room_for: int | None = None  # host bytes a finished load found no room for: it waits for room
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
