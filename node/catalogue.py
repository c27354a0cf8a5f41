"""The node's adapter catalogue: human name -> contentHash (the loaded bytes) -> registered adapterId + provenance.

DESIGN.md "Identities": a node serves an adapter under a registered `adapterId` only if the AssetRegistry's
`contentHash` for that id equals the hash of the bytes it loaded, and the adapter is active. The catalogue checks
that when an adapter is added, keeps the answer in memory (the hot path never waits on the chain), and re-reads
every entry in the background (`refresh()`), so a deactivation or a provenance change reaches new answers within
`refresh_s`.

The registry is reached through the small `RegistryReader` protocol. `ChainRegistry` reads the AssetRegistry
through `attribution.chain`: an adapter's id is `keccak256(abi.encode(owner, contentHash))`; the operator names it
(a manifest's `registered_adapter_id`, the admin API's `adapter_id`) or the node tries the namespaces of its
trusted owners (`adapters.owners`; on the devnet the demo owner): both go through `lookup(content_hash, adapter_id)`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from attribution.terms import AdapterTerms
from node.errors import NodeError

__all__ = [
    "AdapterNotRegistered",
    "AdapterNotServable",
    "Catalogue",
    "CatalogueEntry",
    "ChainRegistry",
    "OpenRegistry",
    "RegistryReader",
]

logger = logging.getLogger(__name__)


class AdapterNotServable(NodeError, ValueError):
    """The registry refuses this adapter here (unregistered, inactive, or another contentHash): fix the registry
    entry or load the registered bytes."""


class AdapterNotRegistered(AdapterNotServable):
    """No AssetRegistry entry has this adapter id: register the adapter (`loraledger devnet up` registers the
    demo's) or name its registered adapterId."""


class RegistryReader(Protocol):
    """Reads adapter entries from the AssetRegistry (or stands in for it without a chain)."""

    def lookup(self, content_hash: bytes, adapter_id: bytes | None) -> AdapterTerms | None:
        """The entry for `adapter_id` (default: the id the registry gives `content_hash`), None if unregistered."""
        ...


class ChainRegistry:
    """`RegistryReader` over `attribution.chain.assets.AssetRegistry` (v2: adapterId = keccak256(owner, contentHash)).

    An adapter named without an id is looked up under each trusted owner's namespace (`owners`), in order.
    """

    def __init__(self, assets: Any, owners: Sequence[str] = ()) -> None:
        self.assets = assets
        self.owners = list(owners)

    def lookup(self, content_hash: bytes, adapter_id: bytes | None) -> AdapterTerms | None:
        """Read the registry entry of `adapter_id`, or of the first owner's id for `content_hash`."""
        from attribution.chain.assets import adapter_id_for

        candidates = [adapter_id] if adapter_id else [adapter_id_for(o, content_hash) for o in self.owners]
        for aid in candidates:
            if not self.assets.adapter_exists(aid):
                continue
            terms: AdapterTerms = self.assets.adapter(aid)
            return terms
        return None


class OpenRegistry:
    """Stand-in without a chain (benchmarks with attribution off): every adapter is its own id, no provenance."""

    def lookup(self, content_hash: bytes, adapter_id: bytes | None) -> AdapterTerms | None:
        """Always servable."""
        return AdapterTerms(owner="", price_per_m_tokens=0, adapter_id=adapter_id or content_hash,
                            content_hash=content_hash)


@dataclass(frozen=True)
class CatalogueEntry:
    """One served adapter: its name, the hash of the loaded bytes, its registered id and provenance."""

    name: str
    content_hash: bytes
    adapter_id: bytes
    owner: str
    dataset_ids: tuple[bytes, ...]
    weights_bps: tuple[int, ...]
    active: bool
    checked_at: float
    refused: str | None = None  # why the last refresh refused it (then requests get AdapterNotServable)


class Catalogue:
    """Served adapters by name and by contentHash, checked against a `RegistryReader`; thread-safe."""

    def __init__(self, registry: RegistryReader, *, refresh_s: float = 30.0) -> None:
        self.registry = registry
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._by_name: dict[str, CatalogueEntry] = {}
        self._by_hash: dict[bytes, str] = {}

    @staticmethod
    def _check(name: str, content_hash: bytes, p: AdapterTerms | None, adapter_id: bytes | None) -> None:
        shown = "0x" + (adapter_id or content_hash).hex()
        if p is None:
            raise AdapterNotRegistered(f"adapter {name!r} ({shown}) is not registered in the AssetRegistry: register "
                                       "it first (or name its registered adapterId)")
        if p.content_hash != content_hash:
            raise AdapterNotServable(f"adapter {name!r}: the registry's contentHash 0x{p.content_hash.hex()} for "
                                     f"{shown} differs from the loaded files' 0x{content_hash.hex()}: load the "
                                     "registered files or register these")
        if not p.active:
            raise AdapterNotServable(f"adapter {name!r} ({shown}) is inactive in the AssetRegistry: its owner must "
                                     "reactivate it")

    def add(self, name: str, content_hash: bytes, adapter_id: bytes | None = None) -> CatalogueEntry:
        """Check the adapter against the registry and serve it under `name`; raises `AdapterNotServable`."""
        p = self.registry.lookup(content_hash, adapter_id)
        self._check(name, content_hash, p, adapter_id)
        assert p is not None
        entry = CatalogueEntry(name=name, content_hash=content_hash, adapter_id=p.adapter_id, owner=p.owner,
                               dataset_ids=p.dataset_ids, weights_bps=p.weights_bps, active=p.active,
                               checked_at=time.time())
        with self._lock:
            self._by_name[name] = entry
            self._by_hash[content_hash] = name
        logger.info("catalogue: serving %s content_hash=0x%s adapter_id=0x%s", name, content_hash.hex(),
                    p.adapter_id.hex())
        return entry

    def remove(self, name: str) -> CatalogueEntry | None:
        """Stop serving `name`."""
        with self._lock:
            e = self._by_name.pop(name, None)
            if e is not None:
                self._by_hash.pop(e.content_hash, None)
            return e

    def get(self, name: str) -> CatalogueEntry | None:
        """The entry served under `name` (refused ones included; see `servable`)."""
        with self._lock:
            return self._by_name.get(name)

    def by_content_hash(self, content_hash: bytes) -> CatalogueEntry | None:
        """The entry whose loaded bytes hash to `content_hash` (what the engine's Usage carries)."""
        with self._lock:
            name = self._by_hash.get(content_hash)
            return None if name is None else self._by_name.get(name)

    def find(self, name_or_id: str) -> CatalogueEntry | None:
        """By name, or by 0x-hex registered adapterId or contentHash."""
        e = self.get(name_or_id)
        if e is not None:
            return e
        text = name_or_id.lower().removeprefix("0x")
        if len(text) == 64:
            with self._lock:
                for entry in self._by_name.values():
                    if text in (entry.adapter_id.hex(), entry.content_hash.hex()):
                        return entry
        return None

    def entries(self) -> list[CatalogueEntry]:
        """Every served entry, by name."""
        with self._lock:
            return sorted(self._by_name.values(), key=lambda e: e.name)

    @staticmethod
    def servable(entry: CatalogueEntry) -> None:
        """Raise `AdapterNotServable` if the last refresh refused the entry."""
        if entry.refused is not None:
            raise AdapterNotServable(entry.refused)

    def refresh(self) -> int:
        """Re-read every entry from the registry (call from a background thread); returns how many changed."""
        changed = 0
        for e in self.entries():
            try:
                p = self.registry.lookup(e.content_hash, e.adapter_id)
                self._check(e.name, e.content_hash, p, e.adapter_id)
                assert p is not None
                new = replace(e, owner=p.owner, dataset_ids=p.dataset_ids, weights_bps=p.weights_bps,
                              active=p.active, checked_at=time.time(), refused=None)
            except AdapterNotServable as err:
                new = replace(e, active=False, checked_at=time.time(), refused=str(err))
            except Exception as err:  # noqa: BLE001 - the chain is down: keep serving what was checked
                logger.warning("catalogue refresh of %s failed (%s); keeping the last checked entry", e.name, err)
                continue
            if (new.refused, new.dataset_ids, new.weights_bps, new.active) != (
                    e.refused, e.dataset_ids, e.weights_bps, e.active):
                changed += 1
                logger.info("catalogue: %s changed in the registry (%s)", e.name, new.refused or "provenance")
            with self._lock:
                if e.name in self._by_name:
                    self._by_name[e.name] = new
        return changed
