"""Disputes in the index: every `BatchDisputes` event stored as it happened (`dispute_events`), and each dispute's
state folded from its events when asked (docs/disputes.md has the games; docs/indexer.md the JSON).

Storing events and folding on read keeps reorg safety the same as for batches: a rollback deletes the events above
the common ancestor and every dispute they touched reads as it stood there. A dispute's life in events:

    ChallengeOpened ─┬─▶ ChallengeAnswered                    answered (the node was honest; bond to the node)
                     └─▶ FaultProven [+ BatchMarkedUnavailable] upheld (settleExpired after the deadline)
    FaultProven [+ CommissionProven]                           upheld at once (equivocation, commission, overdue)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from attribution.hashing import to_checksum_address
from attribution.indexer.queries import QueryError
from attribution.indexer.schema import dispute_events

__all__ = ["KINDS", "STATUSES", "REASONS", "DisputeLogs", "DisputeReader", "fold"]

#: `IBatchDisputes.Kind`, `Status` (as JSON shows them; `none` is never shown) and `CommissionReason`.
KINDS = ("omission", "equivocation", "commission", "availability")
STATUSES = ("open", "answered", "upheld")
REASONS = ("wrong_chain", "wrong_ledger", "wrong_node", "seq_out_of_range", "receipt_conflict")
MAX_LIMIT = 1000


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and abs(v) > 2**53:
        return str(v)  # JSON readers lose precision past 2**53
    return v


class DisputeLogs:
    """Turns raw logs of one `BatchDisputes` into `dispute_events` rows (the follower's side)."""

    def __init__(self, contract: Any) -> None:
        self.contract = contract
        self.address = contract.address

    def row(self, log: Any, block_timestamp: int) -> dict[str, Any] | None:
        """The row of one raw log (None for a log this contract's ABI does not know)."""
        ev = self.contract.decode_log(log)
        if ev is None:
            return None
        a = dict(ev.args)
        batch_id = int(a.get("batchId", 0) or 0)
        node = a.get("node")
        return {"block_number": int(log["blockNumber"]), "log_index": int(log["logIndex"]),
                "block_hash": bytes(log["blockHash"]), "block_timestamp": int(block_timestamp),
                "tx_hash": bytes(log["transactionHash"]), "event": ev.name,
                "dispute_id": int(a["disputeId"]) if "disputeId" in a else None,
                "node": bytes.fromhex(str(node)[2:]) if node else None,
                "batch_id": batch_id or None,
                "args": json.dumps({k: _plain(v) for k, v in a.items()}, sort_keys=True)}


def _at(row: Any) -> dict[str, Any]:
    return {"blockNumber": int(row.block_number), "timestamp": int(row.block_timestamp),
            "txHash": "0x" + bytes(row.tx_hash).hex()}


def fold(rows: Iterable[Any]) -> dict[int, dict[str, Any]]:
    """Each dispute's JSON from its events (rows in chain order): see docs/indexer.md "Disputes"."""
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row.dispute_id is None:
            continue  # Withdrawn: a payout, no dispute
        a = json.loads(row.args)
        did = int(row.dispute_id)
        d = out.get(did)
        if d is None:
            d = out[did] = {"disputeId": did, "kind": None, "status": "open", "node": None, "batchId": None,
                            "index": None, "leaf": None, "challenger": None, "bond": "0", "deadline": None,
                            "opened": None, "closed": None, "answerer": None, "evidence": None, "slashed": "0",
                            "toChallenger": "0", "toTreasury": "0", "reason": None, "markedUnavailable": False}
        ev = row.event
        if "kind" in a:
            d["kind"] = KINDS[int(a["kind"])]
        if "node" in a:
            d["node"] = to_checksum_address(a["node"])
        if int(a.get("batchId", 0) or 0):
            d["batchId"] = int(a["batchId"])
        if ev == "ChallengeOpened":
            d.update(index=int(a["index"]), leaf=None if int(a["leaf"], 16) == 0 else a["leaf"],
                     challenger=to_checksum_address(a["challenger"]), bond=str(a["bond"]),
                     deadline=int(a["deadline"]), opened=_at(row))
        elif ev == "ChallengeAnswered":
            d.update(status="answered", answerer=to_checksum_address(a["answerer"]), evidence=a["evidence"],
                     closed=_at(row))
            if d["kind"] == "availability":
                d["leaf"] = a["evidence"]  # the published chunk's keccak, as the contract stores it
        elif ev == "FaultProven":
            if d["opened"] is None:
                d["opened"] = _at(row)  # an instant proof opens and closes in one transaction
                d["index"] = int(a["index"])
            d.update(status="upheld", challenger=to_checksum_address(a["challenger"]), slashed=str(a["slashed"]),
                     toChallenger=str(a["toChallenger"]), toTreasury=str(a["toTreasury"]), closed=_at(row))
        elif ev == "CommissionProven":
            d.update(reason=REASONS[int(a["reason"])], leaf=a["leaf"])
        elif ev == "BatchMarkedUnavailable":
            d["markedUnavailable"] = True
    return out


_ORDER = (dispute_events.c.block_number, dispute_events.c.log_index)


class DisputeReader:
    """Read side: disputes folded from `dispute_events`, by id, node, batch, kind and status."""

    @staticmethod
    def _fold_ids(conn: Connection, ids: sa.Select[Any]) -> list[dict[str, Any]]:
        rows = conn.execute(sa.select(dispute_events).where(dispute_events.c.dispute_id.in_(ids)).order_by(*_ORDER))
        return sorted(fold(rows).values(), key=lambda d: int(d["disputeId"]))

    def disputes(self, conn: Connection, *, node: bytes | None = None, batch_id: int | None = None,
                 kind: str | None = None, status: str | None = None, limit: int = 100,
                 offset: int = 0) -> list[dict[str, Any]]:
        """Disputes newest first, optionally of one node, one batch, one kind and/or one status."""
        if kind is not None and kind not in KINDS:
            raise QueryError(f"kind {kind!r}: choose one of {', '.join(KINDS)}")
        if status is not None and status not in STATUSES:
            raise QueryError(f"status {status!r}: choose one of {', '.join(STATUSES)}")
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            raise QueryError(f"limit must be in [1, {MAX_LIMIT}] and offset >= 0")
        ids = sa.select(dispute_events.c.dispute_id).where(dispute_events.c.dispute_id.is_not(None))
        if node is not None:
            ids = ids.where(dispute_events.c.node == node)
        if batch_id is not None:
            ids = ids.where(dispute_events.c.batch_id == batch_id)
        found = [d for d in self._fold_ids(conn, ids.distinct())
                 if (kind is None or d["kind"] == kind) and (status is None or d["status"] == status)]
        return found[::-1][offset:offset + limit]

    def dispute(self, conn: Connection, dispute_id: int) -> dict[str, Any] | None:
        """One dispute (None when not indexed)."""
        found = self._fold_ids(conn, sa.select(dispute_events.c.dispute_id).where(
            dispute_events.c.dispute_id == dispute_id))
        return found[0] if found else None

    def unavailable(self, conn: Connection, batch_ids: Sequence[int] | None = None) -> set[int]:
        """The batches (of `batch_ids`, or all) marked unavailable in the indexed blocks."""
        q = sa.select(dispute_events.c.batch_id).where(dispute_events.c.event == "BatchMarkedUnavailable")
        if batch_ids is not None:
            q = q.where(dispute_events.c.batch_id.in_(list(batch_ids)))
        return {int(b) for b in conn.execute(q).scalars()}

    def batch_summary(self, conn: Connection, batch_id: int) -> dict[str, Any]:
        """What a batch's JSON carries: `unavailable` and its disputes (oldest first)."""
        found = self.disputes(conn, batch_id=batch_id, limit=MAX_LIMIT)[::-1]
        return {"unavailable": any(d["markedUnavailable"] for d in found), "disputes": found}

    def node_summary(self, conn: Connection, node: bytes) -> dict[str, Any]:
        """What a node's JSON carries: stake slashed in total, disputes per status, every dispute (newest first)."""
        found = self.disputes(conn, node=node, limit=MAX_LIMIT)
        counts = {s: sum(d["status"] == s for d in found) for s in STATUSES}
        return {"slashed": str(sum(int(d["slashed"]) for d in found)), "disputeCounts": counts,
                "unavailableBatches": sorted(int(d["batchId"]) for d in found if d["markedUnavailable"]),
                "disputes": found}

    def counts(self, conn: Connection) -> dict[str, int]:
        """Disputes per status (the status route)."""
        found = self._fold_ids(conn, sa.select(dispute_events.c.dispute_id).distinct())
        return {s: sum(d["status"] == s for d in found) for s in STATUSES}
