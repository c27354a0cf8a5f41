"""The AssetRegistry wrapper (v2): owner-namespaced ids, scheduled changes, two-step asset ownership.

Ids (DESIGN.md "Identities"): `adapterId = keccak256(abi.encode(owner, contentHash))` and `datasetId =
keccak256(abi.encode(owner, datasetKey))`, computed by the contract from the sender; `adapter_id_for` /
`dataset_id_for` compute the same here. Price, provenance and contributor changes are scheduled: they return
the `effectiveAt` from which they apply. The state in effect at a past time is rebuilt by
`attribution.chain.history.RegistryHistory`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount

from attribution.chain.base import Governed, TxResult, b32, checksum
from attribution.hashing import keccak256
from attribution.terms import AdapterTerms, DatasetTerms

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class AssetKind(enum.IntEnum):
    """`IAssetRegistry.AssetKind`: the id spaces of the two-step ownership transfer."""

    DATASET = 0
    BASE_MODEL = 1
    ADAPTER = 2


def adapter_id_for(owner: str, content_hash: bytes | str) -> bytes:
    """The adapter id `owner` gets for `content_hash` (what `registerAdapter` computes on-chain)."""
    return keccak256(abi_encode(["address", "bytes32"], [checksum(owner), b32(content_hash)]))


def dataset_id_for(owner: str, dataset_key: bytes | str) -> bytes:
    """The dataset id `owner` gets for `dataset_key` (what `registerDataset` computes on-chain)."""
    return keccak256(abi_encode(["address", "bytes32"], [checksum(owner), b32(dataset_key)]))


@dataclass(frozen=True)
class Registered:
    """A registration: the new (namespaced) id, when its terms took effect, the transaction."""

    asset_id: bytes
    effective_at: int
    tx: TxResult


@dataclass(frozen=True)
class Scheduled:
    """A scheduled change: the asset and when the change takes effect."""

    asset_id: bytes
    effective_at: int
    tx: TxResult | None


@dataclass(frozen=True)
class BaseModel:
    """A registered base model."""

    model_id: bytes
    owner: str
    uri: str


@dataclass(frozen=True)
class PendingDatasetChange:
    """A dataset's scheduled contributor list."""

    contributors: tuple[str, ...]
    shares_bps: tuple[int, ...]
    effective_at: int


@dataclass(frozen=True)
class PendingAdapterChange:
    """An adapter's scheduled terms."""

    dataset_ids: tuple[bytes, ...]
    weights_bps: tuple[int, ...]
    price_per_m_tokens: int
    effective_at: int


class AssetRegistry(Governed):
    """Datasets, base models and adapters: owner-namespaced ids, scheduled money-moving changes."""

    artifact_name = "AssetRegistry"

    # -- datasets ---------------------------------------------------------------------------------------------

    def register_dataset(self, dataset_key: bytes | str, contributors: Sequence[str], shares_bps: Sequence[int],
                         uri: str = "", *, account: LocalAccount | None = None) -> Registered:
        """Register a dataset owned by the sender; its id is `dataset_id_for(sender, dataset_key)`."""
        tx = self._tx("registerDataset", b32(dataset_key), [checksum(c) for c in contributors],
                      [int(s) for s in shares_bps], uri, account=account)
        ev = self._one_event(tx, "DatasetRegistered")
        return Registered(bytes(ev["datasetId"]), int(ev["effectiveAt"]), tx)

    def schedule_dataset_change(self, dataset_id: bytes | str, contributors: Sequence[str],
                                shares_bps: Sequence[int], *, account: LocalAccount | None = None) -> Scheduled:
        """Owner only: new contributors and shares, in effect from `now + changeDelay`."""
        tx = self._tx("scheduleDatasetChange", b32(dataset_id), [checksum(c) for c in contributors],
                      [int(s) for s in shares_bps], account=account)
        return Scheduled(b32(dataset_id), int(self._one_event(tx, "DatasetChangeScheduled")["effectiveAt"]), tx)

    def cancel_dataset_change(self, dataset_id: bytes | str, *, account: LocalAccount | None = None) -> TxResult:
        """Owner only: cancel the pending change before it takes effect."""
        return self._tx("cancelDatasetChange", b32(dataset_id), account=account)

    def set_dataset_uri(self, dataset_id: bytes | str, uri: str, *, account: LocalAccount | None = None) -> TxResult:
        """Owner only: change the uri (immediate)."""
        return self._tx("setDatasetUri", b32(dataset_id), uri, account=account)

    # -- base models ------------------------------------------------------------------------------------------

    def register_base_model(self, model_id: bytes | str, uri: str = "", *,
                            account: LocalAccount | None = None) -> TxResult:
        """Register a base model (id = its sha256 model id) owned by the sender."""
        return self._tx("registerBaseModel", b32(model_id), uri, account=account)

    def set_base_model_uri(self, model_id: bytes | str, uri: str, *, account: LocalAccount | None = None) -> TxResult:
        """Owner only: change a base model's uri."""
        return self._tx("setBaseModelUri", b32(model_id), uri, account=account)

    # -- adapters ---------------------------------------------------------------------------------------------

    def register_adapter(self, content_hash: bytes | str, base_model_id: bytes | str,
                         dataset_ids: Sequence[bytes | str], weights_bps: Sequence[int], price_per_m_tokens: int,
                         uri: str = "", *, account: LocalAccount | None = None) -> Registered:
        """Register an adapter owned by the sender (starts active); its id is `adapter_id_for(sender, hash)`."""
        tx = self._tx("registerAdapter", b32(content_hash), b32(base_model_id), [b32(d) for d in dataset_ids],
                      [int(w) for w in weights_bps], int(price_per_m_tokens), uri, account=account)
        ev = self._one_event(tx, "AdapterRegistered")
        return Registered(bytes(ev["adapterId"]), int(ev["effectiveAt"]), tx)

    def schedule_adapter_change(self, adapter_id: bytes | str, dataset_ids: Sequence[bytes | str],
                                weights_bps: Sequence[int], price_per_m_tokens: int, *,
                                account: LocalAccount | None = None) -> Scheduled:
        """Owner only: new provenance and price, in effect from `now + changeDelay`."""
        tx = self._tx("scheduleAdapterChange", b32(adapter_id), [b32(d) for d in dataset_ids],
                      [int(w) for w in weights_bps], int(price_per_m_tokens), account=account)
        return Scheduled(b32(adapter_id), int(self._one_event(tx, "AdapterChangeScheduled")["effectiveAt"]), tx)

    def schedule_price(self, adapter_id: bytes | str, price_per_m_tokens: int, *,
                       account: LocalAccount | None = None) -> Scheduled:
        """Owner only: a new price (provenance kept), in effect from `now + changeDelay`."""
        tx = self._tx("schedulePrice", b32(adapter_id), int(price_per_m_tokens), account=account)
        return Scheduled(b32(adapter_id), int(self._one_event(tx, "AdapterChangeScheduled")["effectiveAt"]), tx)

    def cancel_adapter_change(self, adapter_id: bytes | str, *, account: LocalAccount | None = None) -> TxResult:
        """Owner only: cancel the pending change before it takes effect."""
        return self._tx("cancelAdapterChange", b32(adapter_id), account=account)

    def set_adapter_uri(self, adapter_id: bytes | str, uri: str, *, account: LocalAccount | None = None) -> TxResult:
        """Owner only: change the uri (immediate)."""
        return self._tx("setAdapterUri", b32(adapter_id), uri, account=account)

    def set_adapter_active(self, adapter_id: bytes | str, active: bool, *,
                           account: LocalAccount | None = None) -> Scheduled:
        """Owner only: deactivate now, or schedule reactivation at `now + changeDelay` (already active or
        pending: nothing changes and `tx` is None)."""
        if active:
            current = self.adapter(adapter_id)
            if current.active_from:
                return Scheduled(b32(adapter_id), current.active_from, None)
        tx = self._tx("setAdapterActive", b32(adapter_id), bool(active), account=account)
        return Scheduled(b32(adapter_id), int(self._one_event(tx, "AdapterActiveChanged")["effectiveAt"]), tx)

    # -- ownership and governance -----------------------------------------------------------------------------

    def transfer_asset_ownership(self, kind: AssetKind, asset_id: bytes | str, new_owner: str, *,
                                 account: LocalAccount | None = None) -> TxResult:
        """Owner only: offer the asset to `new_owner` (zero address withdraws the offer). The id does not change."""
        return self._tx("transferAssetOwnership", int(kind), b32(asset_id), checksum(new_owner), account=account)

    def accept_asset_ownership(self, kind: AssetKind, asset_id: bytes | str, *,
                               account: LocalAccount | None = None) -> TxResult:
        """Pending owner only: accept the asset."""
        return self._tx("acceptAssetOwnership", int(kind), b32(asset_id), account=account)

    def set_change_delay(self, delay_s: int, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: the delay of future scheduled changes."""
        return self._tx("setChangeDelay", int(delay_s), account=account)

    def set_max_price_per_m_tokens(self, price: int, *, account: LocalAccount | None = None) -> TxResult:
        """Governance only: the price cap of future registrations and changes."""
        return self._tx("setMaxPricePerMTokens", int(price), account=account)

    # -- views ------------------------------------------------------------------------------------------------

    def dataset(self, dataset_id: bytes | str) -> DatasetTerms:
        """A dataset as in effect now (raises `RegistryUnknownDataset` if not registered)."""
        owner, key, contributors, shares, uri = self._call("dataset", b32(dataset_id))
        return DatasetTerms(tuple(contributors), tuple(int(s) for s in shares), dataset_id=b32(dataset_id),
                            owner=owner, dataset_key=bytes(key), uri=uri)

    def pending_dataset_change(self, dataset_id: bytes | str) -> PendingDatasetChange | None:
        """The dataset's pending change (None if none is pending)."""
        contributors, shares, at = self._call("pendingDatasetChange", b32(dataset_id))
        return PendingDatasetChange(tuple(contributors), tuple(int(s) for s in shares), int(at)) if at else None

    def base_model(self, model_id: bytes | str) -> BaseModel:
        """A base model (raises `RegistryUnknownBaseModel` if not registered)."""
        owner, uri = self._call("baseModel", b32(model_id))
        return BaseModel(b32(model_id), owner, uri)

    def adapter(self, adapter_id: bytes | str) -> AdapterTerms:
        """An adapter as in effect now (raises `RegistryUnknownAdapter` if not registered)."""
        owner, content_hash, base, datasets, weights, price, uri, active, active_from = self._call(
            "adapter", b32(adapter_id))
        return AdapterTerms(owner, int(price), tuple(bytes(d) for d in datasets), tuple(int(w) for w in weights),
                            bool(active), adapter_id=b32(adapter_id), content_hash=bytes(content_hash),
                            base_model_id=bytes(base), uri=uri, active_from=int(active_from))

    def pending_adapter_change(self, adapter_id: bytes | str) -> PendingAdapterChange | None:
        """The adapter's pending terms (None if none are pending)."""
        datasets, weights, price, at = self._call("pendingAdapterChange", b32(adapter_id))
        if not at:
            return None
        return PendingAdapterChange(tuple(bytes(d) for d in datasets), tuple(int(w) for w in weights), int(price),
                                    int(at))

    def asset_owner(self, kind: AssetKind, asset_id: bytes | str) -> str:
        """The owner of the asset (zero address if not registered)."""
        return str(self._call("assetOwner", int(kind), b32(asset_id)))

    def pending_asset_owner(self, kind: AssetKind, asset_id: bytes | str) -> str:
        """Who was offered the asset (zero address if nobody)."""
        return str(self._call("pendingAssetOwner", int(kind), b32(asset_id)))

    def dataset_exists(self, dataset_id: bytes | str) -> bool:
        """Whether the dataset is registered."""
        return bool(self._call("datasetExists", b32(dataset_id)))

    def base_model_exists(self, model_id: bytes | str) -> bool:
        """Whether the base model is registered."""
        return bool(self._call("baseModelExists", b32(model_id)))

    def adapter_exists(self, adapter_id: bytes | str) -> bool:
        """Whether the adapter is registered."""
        return bool(self._call("adapterExists", b32(adapter_id)))

    def adapter_id_of(self, owner: str, content_hash: bytes | str) -> bytes:
        """The contract's `adapterIdOf` (equals `adapter_id_for`)."""
        return bytes(self._call("adapterIdOf", checksum(owner), b32(content_hash)))

    def dataset_id_of(self, owner: str, dataset_key: bytes | str) -> bytes:
        """The contract's `datasetIdOf` (equals `dataset_id_for`)."""
        return bytes(self._call("datasetIdOf", checksum(owner), b32(dataset_key)))

    def change_delay(self) -> int:
        """Seconds between scheduling a change and its `effectiveAt`."""
        return int(self._call("changeDelay"))

    def max_price_per_m_tokens(self) -> int:
        """The price cap."""
        return int(self._call("maxPricePerMTokens"))

    def limits(self) -> dict[str, int]:
        """The contract's constants: MAX_ENTRIES, MIN_CHANGE_DELAY, MAX_CHANGE_DELAY, PRICE_LIMIT."""
        return {n: int(self._call(n)) for n in ("MAX_ENTRIES", "MIN_CHANGE_DELAY", "MAX_CHANGE_DELAY", "PRICE_LIMIT")}
