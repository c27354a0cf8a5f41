"""`GET /v1/attribution/records/{seq}` and `GET /v1/attribution/batches/{id}`: what the node stored and where it
is on its way to the chain (`stored|sealed|dispersed|posted|final`)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
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


_MAX_ID = 2**63 - 1  # SQLite's largest integer: no seq or batch id can be above it


def _int_param(raw: str, name: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20 or int(raw) > _MAX_ID:
        raise APIError(400, f"{name} must be an integer from 0 to {_MAX_ID}, got {raw[:40]!r}", param=name,
                       code="invalid_value")
    return int(raw)


@router.get("/v1/attribution/records/{seq}", summary="One attribution record and its status")
async def get_record(request: Request, seq: str) -> dict[str, Any]:
    """The record, its leaf, status, batch and (once sealed with a root) its Merkle proof."""
    store = _store(request)
    n = _int_param(seq, "seq")
    # SQLite reads and the batch's Merkle tree (thousands of keccaks) run in a thread, never on the event loop;
    # the tree of a sealed batch is built once and shared by every read of its records
    try:
        record, batch = await asyncio.to_thread(lambda: (store.get(n), store.batch_of(n)))
    except (RecordNotFoundError, OverflowError) as e:
        raise APIError(404, f"no record with seq {n} on this node (next seq {store.next_seq()})", param="seq",
                       code="record_not_found") from e
    proof = None
    if batch is not None and batch.root is not None:
        tree = await _trees(request).get(store, batch)
        proof = tree.get_proof(n - batch.first_seq)
    return {"seq": n, "record": record.to_json(), "leaf": "0x" + record.leaf().hex(),
            "status": "stored" if batch is None else batch.state,
            "batch": None if batch is None else _batch(batch), "proof": proof}


class BatchTrees:
    """The Merkle trees of the last few sealed batches read, each built once in a thread (concurrent reads of one
    batch wait for the same build)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._builds: OrderedDict[tuple[int, bytes], asyncio.Future[Any]] = OrderedDict()

    async def get(self, store: Any, batch: Any) -> Any:
        """The tree of `batch` (its records from `store`)."""
        key = (batch.batch_id, batch.root)
        fut = self._builds.get(key)
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(_build_tree, store, batch.first_seq, batch.end_seq))
            self._builds[key] = fut
            fut.add_done_callback(lambda f: self._forget_failed(key, f))
            while len(self._builds) > self.size:
                self._builds.popitem(last=False)
        else:
            self._builds.move_to_end(key)
        return await asyncio.shield(fut)

    def _forget_failed(self, key: tuple[int, bytes], fut: asyncio.Future[Any]) -> None:
        if (fut.cancelled() or fut.exception() is not None) and self._builds.get(key) is fut:
            del self._builds[key]


def _build_tree(store: Any, first: int, end: int) -> Any:
    from attribution.records.tree import record_tree

    return record_tree(store.range(first, end))


def _trees(request: Request) -> BatchTrees:
    state = request.app.state
    trees = getattr(state, "batch_trees", None)
    if trees is None:
        trees = state.batch_trees = BatchTrees()
    return trees


@router.get("/v1/attribution/batches/{batch_id}", summary="One batch")
async def get_batch(request: Request, batch_id: str) -> dict[str, Any]:
    """A batch of records: range, state, root, DA commitment, transaction."""
    store = _store(request)
    n = _int_param(batch_id, "batch_id")
    try:
        return _batch(store.get_batch(n))
    except (BatchError, OverflowError) as e:
        raise APIError(404, f"no batch {n} on this node", param="batch_id", code="batch_not_found") from e
