"""The AssetRegistry state in effect at any time, rebuilt from its events (DESIGN.md "Rewards": registry state at
time t; invariant 7: no change reaches back to usage that already happened).

    history = RegistryHistory.from_chain(contracts.assets)        # reads events from the deployment block
    state = history.at(batch.posted_at)                           # RegistryState: adapters, datasets, models
    state.adapters[adapter_id].price_per_m_tokens
    history.adapter_at(adapter_id, t)                              # one asset, without building the whole state
    history.sync()                                                 # read the events of new blocks

Rules, as the contract applies them (contracts/interfaces/IAssetRegistry.sol):
- `*Registered` puts the asset's terms in effect from its `effectiveAt` (the registration block's timestamp).
- `*ChangeScheduled` puts complete new terms in effect from its `effectiveAt`; `*ChangeCancelled` removes the
  pending change with that `effectiveAt`. One change is pending per asset at a time.
- `AdapterActiveChanged(false, t)` deactivates from t and drops a reactivation still pending after t;
  `AdapterActiveChanged(true, t)` reactivates from t.
- Ownership transfers and uri changes are immediate: in effect from their block's timestamp.
A state "at t" includes every change with `effectiveAt <= t`. The history knows the chain up to `synced_block`
(its timestamp `synced_timestamp`); asking for a later time raises `HistoryNotSynced`, because a change made in
a block not read yet could already apply (a deactivation is immediate).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from attribution.chain.assets import AssetKind, AssetRegistry, BaseModel
from attribution.chain.base import EventLog, b32
from attribution.chain.errors import ChainError
from attribution.terms import AdapterTerms, DatasetTerms

T = TypeVar("T")

#: The AssetRegistry events the history reads.
HISTORY_EVENTS: tuple[str, ...] = (
    "DatasetRegistered", "DatasetChangeScheduled", "DatasetChangeCancelled", "DatasetUriChanged",
    "BaseModelRegistered", "BaseModelUriChanged",
    "AdapterRegistered", "AdapterChangeScheduled", "AdapterChangeCancelled", "AdapterUriChanged",
    "AdapterActiveChanged", "AssetOwnershipTransferred",
)


class HistoryNotSynced(ChainError, ValueError):
    """The time asked for lies after the last block the history has read; `sync()` first (or ask earlier)."""


BaseModelState = BaseModel


@dataclass(frozen=True)
class RegistryState:
    """Every asset registered by `timestamp`, with the terms in effect at `timestamp`."""

    timestamp: int
    adapters: Mapping[bytes, AdapterTerms]
    datasets: Mapping[bytes, DatasetTerms]
    base_models: Mapping[bytes, BaseModelState]


class _Timeline(Generic[T]):
    """Values with the time they take effect from, kept sorted by it (the contract only appends later times)."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.values: list[T] = []

    def add(self, effective_at: int, value: T, *, supersede_after: int | None = None) -> None:
        """Append; with `supersede_after`, first drop entries that would take effect after that time."""
        if supersede_after is not None:
            cut = bisect.bisect_right(self.times, supersede_after)
            del self.times[cut:], self.values[cut:]
        if self.times and effective_at < self.times[-1]:
            raise ChainError(f"registry events out of order (effectiveAt {effective_at} after {self.times[-1]}); "
                             "rebuild the history from the deployment block")
        self.times.append(effective_at)
        self.values.append(value)

    def cancel(self, effective_at: int) -> None:
        """Remove the pending entry that takes effect at `effective_at`."""
        for i in range(len(self.times) - 1, -1, -1):
            if self.times[i] == effective_at:
                del self.times[i], self.values[i]
                return

    def at(self, t: int) -> T | None:
        """The value in effect at `t` (None before the first)."""
        i = bisect.bisect_right(self.times, t)
        return self.values[i - 1] if i else None

    def pending(self, t: int) -> list[tuple[int, T]]:
        """Entries that take effect after `t`."""
        i = bisect.bisect_right(self.times, t)
        return list(zip(self.times[i:], self.values[i:], strict=True))


@dataclass
class _Adapter:
    content_hash: bytes
    base_model_id: bytes
    registered_at: int
    terms: _Timeline[tuple[tuple[bytes, ...], tuple[int, ...], int]] = field(default_factory=_Timeline)
    active: _Timeline[bool] = field(default_factory=_Timeline)
    owner: _Timeline[str] = field(default_factory=_Timeline)
    uri: _Timeline[str] = field(default_factory=_Timeline)


@dataclass
class _Dataset:
    dataset_key: bytes
    registered_at: int
    terms: _Timeline[tuple[tuple[str, ...], tuple[int, ...]]] = field(default_factory=_Timeline)
    owner: _Timeline[str] = field(default_factory=_Timeline)
    uri: _Timeline[str] = field(default_factory=_Timeline)


@dataclass
class _BaseModel:
    registered_at: int
    owner: _Timeline[str] = field(default_factory=_Timeline)
    uri: _Timeline[str] = field(default_factory=_Timeline)


class RegistryHistory:
    """The AssetRegistry's history: what was in effect when. Build with `from_chain` (or `from_events`)."""

    def __init__(self) -> None:
        self._adapters: dict[bytes, _Adapter] = {}
        self._datasets: dict[bytes, _Dataset] = {}
        self._models: dict[bytes, _BaseModel] = {}
        self.registry: AssetRegistry | None = None
        #: the last block read (inclusive) and its timestamp; -1 / -1 before anything was read.
        self.synced_block = -1
        self.synced_timestamp = -1
        self._block_times: dict[int, int] = {}

    # -- building ---------------------------------------------------------------------------------------------

    @classmethod
    def from_chain(cls, registry: AssetRegistry, *, from_block: int | None = None,
                   to_block: int | str = "latest") -> RegistryHistory:
        """Read every AssetRegistry event from `from_block` (default: the deployment block the wrapper was bound
        with) to `to_block` (default: the head; pass a finalized block to ignore reorgs) and rebuild the history."""
        history = cls()
        history.registry = registry
        history.synced_block = registry.start_block(from_block) - 1
        history.sync(to_block)
        return history

    @classmethod
    def from_events(cls, events: Iterable[EventLog], block_timestamps: Mapping[int, int],
                    synced_block: int) -> RegistryHistory:
        """Rebuild from already decoded events (chain order) and the timestamps of their blocks (offline use)."""
        history = cls()
        history._block_times.update(block_timestamps)
        for ev in events:
            history._apply(ev)
        history.synced_block = synced_block
        history.synced_timestamp = history._block_time(synced_block)
        return history

    def sync(self, to_block: int | str = "latest") -> int:
        """Read the events of the blocks after `synced_block` up to `to_block`; returns how many were applied."""
        if self.registry is None:
            raise ChainError("this history was built offline (from_events); it cannot sync")
        client = self.registry.client
        end = client.block_number() if to_block == "latest" else int(to_block)
        if end <= self.synced_block:
            return 0
        count = 0
        for ev in self.registry.events(list(HISTORY_EVENTS), from_block=self.synced_block + 1, to_block=end):
            self._apply(ev)
            count += 1
        self.synced_block = end
        self.synced_timestamp = self._block_time(end)
        return count

    def _block_time(self, block: int) -> int:
        if block not in self._block_times:
            if self.registry is None:
                raise ChainError(f"no timestamp for block {block}; pass it in block_timestamps")
            self._block_times[block] = self.registry.client.block_timestamp(block)
        return self._block_times[block]

    def _apply(self, ev: EventLog) -> None:
        a: dict[str, Any] = ev.args
        name = ev.name
        if name == "DatasetRegistered":
            at = int(a["effectiveAt"])
            d = _Dataset(bytes(a["datasetKey"]), at)
            d.terms.add(at, (tuple(a["contributors"]), tuple(int(s) for s in a["sharesBps"])))
            d.owner.add(at, str(a["owner"]))
            d.uri.add(at, str(a["uri"]))
            self._datasets[bytes(a["datasetId"])] = d
        elif name == "DatasetChangeScheduled":
            self._dataset(a["datasetId"]).terms.add(
                int(a["effectiveAt"]), (tuple(a["contributors"]), tuple(int(s) for s in a["sharesBps"])))
        elif name == "DatasetChangeCancelled":
            self._dataset(a["datasetId"]).terms.cancel(int(a["effectiveAt"]))
        elif name == "DatasetUriChanged":
            self._dataset(a["datasetId"]).uri.add(self._block_time(ev.block_number), str(a["uri"]))
        elif name == "BaseModelRegistered":
            at = self._block_time(ev.block_number)
            m = _BaseModel(at)
            m.owner.add(at, str(a["owner"]))
            m.uri.add(at, str(a["uri"]))
            self._models[bytes(a["modelId"])] = m
        elif name == "BaseModelUriChanged":
            self._model(a["modelId"]).uri.add(self._block_time(ev.block_number), str(a["uri"]))
        elif name == "AdapterRegistered":
            at = int(a["effectiveAt"])
            ad = _Adapter(bytes(a["contentHash"]), bytes(a["baseModelId"]), at)
            ad.terms.add(at, (tuple(bytes(x) for x in a["datasetIds"]), tuple(int(w) for w in a["weightsBps"]),
                              int(a["pricePerMTokens"])))
            ad.active.add(at, True)
            ad.owner.add(at, str(a["owner"]))
            ad.uri.add(at, str(a["uri"]))
            self._adapters[bytes(a["adapterId"])] = ad
        elif name == "AdapterChangeScheduled":
            self._adapter(a["adapterId"]).terms.add(
                int(a["effectiveAt"]), (tuple(bytes(x) for x in a["datasetIds"]),
                                        tuple(int(w) for w in a["weightsBps"]), int(a["pricePerMTokens"])))
        elif name == "AdapterChangeCancelled":
            self._adapter(a["adapterId"]).terms.cancel(int(a["effectiveAt"]))
        elif name == "AdapterUriChanged":
            self._adapter(a["adapterId"]).uri.add(self._block_time(ev.block_number), str(a["uri"]))
        elif name == "AdapterActiveChanged":
            at, active = int(a["effectiveAt"]), bool(a["active"])
            # A deactivation is immediate and erases a reactivation still pending (the contract zeroes activeFrom).
            self._adapter(a["adapterId"]).active.add(at, active, supersede_after=None if active else at)
        elif name == "AssetOwnershipTransferred":
            at, owner, kind = self._block_time(ev.block_number), str(a["newOwner"]), AssetKind(int(a["kind"]))
            target = (self._dataset(a["id"]) if kind == AssetKind.DATASET else
                      self._model(a["id"]) if kind == AssetKind.BASE_MODEL else self._adapter(a["id"]))
            target.owner.add(at, owner)

    def _adapter(self, adapter_id: Any) -> _Adapter:
        try:
            return self._adapters[bytes(adapter_id)]
        except KeyError:
            raise ChainError(f"event for adapter 0x{bytes(adapter_id).hex()} before its registration; rebuild the "
                             "history from the deployment block") from None

    def _dataset(self, dataset_id: Any) -> _Dataset:
        try:
            return self._datasets[bytes(dataset_id)]
        except KeyError:
            raise ChainError(f"event for dataset 0x{bytes(dataset_id).hex()} before its registration; rebuild the "
                             "history from the deployment block") from None

    def _model(self, model_id: Any) -> _BaseModel:
        try:
            return self._models[bytes(model_id)]
        except KeyError:
            raise ChainError(f"event for base model 0x{bytes(model_id).hex()} before its registration; rebuild "
                             "the history from the deployment block") from None

    # -- queries ----------------------------------------------------------------------------------------------

    def _check_time(self, t: int, allow_future: bool) -> None:
        if not allow_future and t > self.synced_timestamp:
            raise HistoryNotSynced(f"time {t} is after the last block read ({self.synced_block}, timestamp "
                                   f"{self.synced_timestamp}); call sync() first")

    def adapter_at(self, adapter_id: bytes | str, t: int, *, allow_future: bool = False) -> AdapterTerms | None:
        """The adapter's terms in effect at `t` (None if not registered by then)."""
        self._check_time(t, allow_future)
        ad = self._adapters.get(b32(adapter_id))
        if ad is None or ad.registered_at > t:
            return None
        terms, active, owner, uri = ad.terms.at(t), ad.active.at(t), ad.owner.at(t), ad.uri.at(t)
        assert terms is not None and owner is not None  # registration set both at registered_at <= t
        return AdapterTerms(owner, terms[2], terms[0], terms[1], bool(active), adapter_id=b32(adapter_id),
                            content_hash=ad.content_hash, base_model_id=ad.base_model_id, uri=uri or "")

    def dataset_at(self, dataset_id: bytes | str, t: int, *, allow_future: bool = False) -> DatasetTerms | None:
        """The dataset's contributors and shares in effect at `t` (None if not registered by then)."""
        self._check_time(t, allow_future)
        d = self._datasets.get(b32(dataset_id))
        if d is None or d.registered_at > t:
            return None
        terms, owner, uri = d.terms.at(t), d.owner.at(t), d.uri.at(t)
        assert terms is not None and owner is not None
        return DatasetTerms(terms[0], terms[1], dataset_id=b32(dataset_id), owner=owner, dataset_key=d.dataset_key,
                            uri=uri or "")

    def base_model_at(self, model_id: bytes | str, t: int, *, allow_future: bool = False) -> BaseModelState | None:
        """The base model at `t` (None if not registered by then)."""
        self._check_time(t, allow_future)
        m = self._models.get(b32(model_id))
        if m is None or m.registered_at > t:
            return None
        return BaseModelState(b32(model_id), m.owner.at(t) or "", m.uri.at(t) or "")

    def at(self, t: int, *, allow_future: bool = False) -> RegistryState:
        """Every asset registered by `t` with its terms in effect at `t`."""
        self._check_time(t, allow_future)
        adapters = {i: s for i in self._adapters if (s := self.adapter_at(i, t, allow_future=True)) is not None}
        datasets = {i: d for i in self._datasets if (d := self.dataset_at(i, t, allow_future=True)) is not None}
        models = {i: m for i in self._models if (m := self.base_model_at(i, t, allow_future=True)) is not None}
        return RegistryState(t, adapters, datasets, models)

    def change_times(self, asset_id: bytes | str) -> list[int]:
        """Every time at which an adapter's or dataset's money-moving terms (or active flag) change, in order."""
        key = b32(asset_id)
        if key in self._adapters:
            ad = self._adapters[key]
            return sorted(set(ad.terms.times) | set(ad.active.times))
        if key in self._datasets:
            return list(self._datasets[key].terms.times)
        raise KeyError(f"unknown asset 0x{key.hex()}")

    @property
    def adapter_ids(self) -> list[bytes]:
        """Every adapter registered in the blocks read."""
        return list(self._adapters)

    @property
    def dataset_ids(self) -> list[bytes]:
        """Every dataset registered in the blocks read."""
        return list(self._datasets)
