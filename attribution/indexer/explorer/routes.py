"""The explorer's JSON endpoints (`/v1/explorer/...`): what the look-up pages and plots read. Errors are the
indexer's JSON errors (400 bad parameter, 404 not indexed)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from attribution.indexer.api import Conn, Disputes, Read
from attribution.indexer.explorer.chainview import ChainView
from attribution.indexer.explorer.config import ExplorerConfig
from attribution.indexer.explorer.lookups import (
    account_usage_per_epoch,
    adapters_using,
    asset_history,
    batch_records,
    node_record_count,
    parse_node,
    records_per_hour,
    usage_per_epoch,
)
from attribution.indexer.explorer.search import resolve
from attribution.indexer.queries import NotFound, QueryError, parse_bytes
from attribution.indexer.registry import registry_history, state_json
from attribution.rewards import RewardsError, checksum

__all__ = ["router"]


def _config(request: Request) -> ExplorerConfig:
    config: ExplorerConfig = request.app.state.explorer
    return config


def _view(request: Request) -> ChainView:
    view: ChainView = request.app.state.chain_view
    return view


Config = Annotated[ExplorerConfig, Depends(_config)]
View = Annotated[ChainView, Depends(_view)]

router = APIRouter(prefix="/v1/explorer", tags=["explorer"])


@router.get("/config")
def config(cfg: Config) -> dict[str, Any]:
    """Chain, contracts, reward token, and the RPC and DA URLs the pages suggest."""
    return cfg.to_json()


@router.get("/search")
def search(q: str, conn: Conn) -> dict[str, Any]:
    """The page for any id, address, tx hash, batch number or node/seq."""
    path = resolve(conn, q)
    if path is None:
        raise NotFound(f"nothing indexed matches {q[:80]!r}: try an id (0x…), an address, a tx hash, a batch number "
                       "or node/seq")
    return {"path": path}


@router.get("/batches/{batch_id}")
def batch(batch_id: int, conn: Conn, reader: Read, disputes: Disputes) -> dict[str, Any]:
    """A batch with its verdict, its disputes (and whether they made it unavailable) and its first records."""
    return {"batch": {**reader.batch(conn, batch_id), **disputes.batch_summary(conn, batch_id)},
            "records": batch_records(conn, batch_id)}


@router.get("/disputes")
def disputes_list(conn: Conn, disputes: Disputes, status: str | None = None, kind: str | None = None,
                  limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """The disputes page: newest first, per status totals."""
    return {"disputes": disputes.disputes(conn, status=status, kind=kind, limit=limit, offset=offset),
            "counts": disputes.counts(conn), "limit": limit, "offset": offset}


@router.get("/nodes/{node}")
def node(node: str, conn: Conn, reader: Read, view: View, disputes: Disputes) -> dict[str, Any]:
    """A node's batches, records per hour, bond, fee credit, every batch whose verdict is not ok, and its disputes
    with the stake slashed in total."""
    raw, addr = parse_node(node)
    found = reader.batches(conn, node=addr, limit=1000)
    summary = disputes.node_summary(conn, raw)
    gone = set(summary["unavailableBatches"])
    found = [{**b, "unavailable": b["batchId"] in gone} for b in found]
    return {"node": addr, **view.node(addr), "records": node_record_count(conn, raw),
            "recordsPerHour": records_per_hour(conn, raw), "batches": found[-100:][::-1],
            "notOk": [b for b in found if b["verdict"] not in ("ok", "pending") or b["unavailable"]], **summary}


@router.get("/adapters/{adapter_id}")
def adapter(adapter_id: str, conn: Conn, view: View) -> dict[str, Any]:
    """An adapter's terms now, price history (with `effectiveAt`), registry events, usage and fees per epoch."""
    raw = parse_bytes(adapter_id, 32, "adapter_id")
    history = registry_history(conn)
    key = "0x" + raw.hex()
    state = None if history is None else state_json(history.at(history.synced_timestamp, allow_future=True))
    events = asset_history(conn, "adapterId", raw)
    prices = [{"effectiveAt": e["effectiveAt"], "pricePerMTokens": str(e["terms"]["pricePerMTokens"])}
              for e in events if "pricePerMTokens" in e["terms"]]
    return {"adapterId": key, "state": None if state is None else state["adapters"].get(key), "history": events,
            "prices": prices, "epochs": usage_per_epoch(conn, history, view.epochs(), adapter=raw)}


@router.get("/datasets/{dataset_id}")
def dataset(dataset_id: str, conn: Conn, view: View) -> dict[str, Any]:
    """A dataset's contributors now, registry events, adapters that used it, usage and fees per epoch."""
    raw = parse_bytes(dataset_id, 32, "dataset_id")
    history = registry_history(conn)
    key = "0x" + raw.hex()
    state = None if history is None else state_json(history.at(history.synced_timestamp, allow_future=True))
    node_bps, adapter_bps = view.shares()
    return {"datasetId": key, "state": None if state is None else state["datasets"].get(key),
            "history": asset_history(conn, "datasetId", raw), "adapters": adapters_using(conn, raw),
            "epochs": usage_per_epoch(conn, history, view.epochs(), dataset=raw,
                                      dataset_share_bps=10_000 - node_bps - adapter_bps)}


@router.get("/accounts/{account}")
def account(account: str, conn: Conn, view: View) -> dict[str, Any]:
    """An account's earnings per epoch (from each epoch's rewards payload on DA), claimed and claimable, and its
    usage per epoch: the tokens of the verified records whose fees paid it (as node, adapter owner or contributor)."""
    try:
        addr = checksum(account)
    except RewardsError as e:
        raise QueryError(f"account must be a 0x address of 20 bytes: {e}") from e
    return {**view.account(addr), "usage": account_usage_per_epoch(conn, registry_history(conn), view.epochs(), addr)}
