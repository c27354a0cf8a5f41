"""Registry state at a time, from the AssetRegistry events the indexer stored: the chain layer's
`RegistryHistory` (scheduled changes apply from their `effectiveAt`, cancellations drop them, deactivation is
immediate) rebuilt offline from the `registry_events` table, so the indexer and the rewards rule read the same
history the same way."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from attribution.chain.artifacts import ArtifactStore
from attribution.chain.base import EventLog
from attribution.chain.history import HistoryNotSynced, RegistryHistory, RegistryState
from attribution.indexer.schema import blocks, meta, registry_events

__all__ = ["HistoryNotSynced", "registry_history", "state_json"]

_INPUTS: dict[str, list[dict[str, Any]]] = {}


def _inputs(event: str) -> list[dict[str, Any]]:
    if not _INPUTS:
        for item in ArtifactStore().load("AssetRegistry").abi:
            if item.get("type") == "event":
                _INPUTS[str(item["name"])] = list(item["inputs"])
    return _INPUTS.get(event, [])


def _restore(value: Any, abi_type: str) -> Any:
    """A JSON-stored event argument back in the Python type web3 decodes it to."""
    if abi_type.endswith("[]"):
        return [_restore(v, abi_type[:-2]) for v in value]
    if abi_type.startswith("bytes"):
        return bytes.fromhex(str(value)[2:])
    if abi_type.startswith(("uint", "int")):
        return int(value)
    return value


def registry_history(conn: Connection) -> RegistryHistory | None:
    """The history of every stored registry event up to the index's cursor (None before the first page)."""
    cursor = conn.execute(sa.select(meta.c.value).where(meta.c.key == "cursor")).scalar()
    if cursor is None:
        return None
    times = {int(n): int(t) for n, t in conn.execute(sa.select(blocks.c.number, blocks.c.timestamp))}
    events = []
    for r in conn.execute(sa.select(registry_events).order_by(registry_events.c.block_number,
                                                              registry_events.c.log_index)):
        raw = json.loads(r.args)
        args = {i["name"]: _restore(raw[i["name"]], str(i["type"])) for i in _inputs(str(r.event)) if i["name"] in raw}
        events.append(EventLog(name=str(r.event), args=args, block_number=int(r.block_number),
                               log_index=int(r.log_index), tx_hash=""))
        times[int(r.block_number)] = int(r.block_timestamp)
    synced = max((n for n in times if n <= int(cursor)), default=None)
    if synced is None:
        return None
    return RegistryHistory.from_events(events, times, synced)


def state_json(state: RegistryState) -> dict[str, Any]:
    """JSON view of a `RegistryState` (0x-hex ids)."""
    def h(b: bytes) -> str:
        return "0x" + bytes(b).hex()

    return {
        "at": state.timestamp,
        "adapters": {h(k): {"owner": a.owner, "contentHash": h(a.content_hash), "baseModelId": h(a.base_model_id),
                            "datasetIds": [h(d) for d in a.dataset_ids], "weightsBps": list(a.weights_bps),
                            "pricePerMTokens": str(a.price_per_m_tokens), "active": a.active, "uri": a.uri}
                     for k, a in state.adapters.items()},
        "datasets": {h(k): {"owner": d.owner, "datasetKey": h(d.dataset_key), "contributors": list(d.contributors),
                            "sharesBps": list(d.shares_bps), "uri": d.uri} for k, d in state.datasets.items()},
        "baseModels": {h(k): {"owner": m.owner, "uri": m.uri} for k, m in state.base_models.items()},
    }

