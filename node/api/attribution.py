"""`GET /v1/attribution/records/{seq}` and `GET /v1/attribution/batches/{id}`: what the node stored and where it
is on its way to the chain (`stored|sealed|dispersed|posted|final`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from attribution.store import BatchError, RecordNotFoundError
from node.api.errors import APIError

__all__ = ["router"]

router = APIRouter(tags=["attribution"])


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def _batch(b: Any) -> dict[str, Any]:
    return {"batch_id": b.batch_id, "onchain_batch_id": b.onchain_batch_id, "first_seq": b.first_seq,
            "count": b.count, "state": b.state, "root": _hex(b.root), "da_commitment": _hex(b.commitment),
            "tx_hash": _hex(b.tx_hash)}


def _store(request: Request) -> Any:
    s = request.app.state.services
    if s.store is None:
        raise APIError(404, "this node runs with attribution off: it keeps no records", code="attribution_off")
    return s.store


def _int_param(raw: str, name: str) -> int:
    if not raw.isdigit() or len(raw) > 20:
        raise APIError(400, f"{name} must be a non-negative integer, got {raw!r}", param=name, code="invalid_value")
    return int(raw)


@router.get("/v1/attribution/records/{seq}", summary="One attribution record and its status")
async def get_record(request: Request, seq: str) -> dict[str, Any]:
    """The record, its leaf, status, batch and (once sealed with a root) its Merkle proof."""
    store = _store(request)
    n = _int_param(seq, "seq")
    try:
        record = store.get(n)
    except (RecordNotFoundError, OverflowError) as e:
        raise APIError(404, f"no record with seq {n} on this node (next seq {store.next_seq()})", param="seq",
                       code="record_not_found") from e
    batch = store.batch_of(n)
    proof = None
    if batch is not None and batch.root is not None:
        from attribution.records.tree import record_tree

        tree = record_tree(store.range(batch.first_seq, batch.end_seq))
        proof = tree.get_proof(n - batch.first_seq)
    return {"seq": n, "record": record.to_json(), "leaf": "0x" + record.leaf().hex(),
            "status": "stored" if batch is None else batch.state,
            "batch": None if batch is None else _batch(batch), "proof": proof}


@router.get("/v1/attribution/batches/{batch_id}", summary="One batch")
async def get_batch(request: Request, batch_id: str) -> dict[str, Any]:
    """A batch of records: range, state, root, DA commitment, transaction."""
    store = _store(request)
    n = _int_param(batch_id, "batch_id")
    try:
        return _batch(store.get_batch(n))
    except (BatchError, OverflowError) as e:
        raise APIError(404, f"no batch {n} on this node", param="batch_id", code="batch_not_found") from e
