"""What the record store alone says about the batch pipeline (`loraledger batcher status`, the batcher's status)."""

from __future__ import annotations

from typing import Any

from attribution.store import RecordStore

__all__ = ["pipeline_status"]


def pipeline_status(store: RecordStore) -> dict[str, Any]:
    """What the store alone says about the pipeline (works on a read-only store, while a batcher runs)."""
    batches = store.batches()
    nxt = store.next_seq()
    finals = [b for b in batches if b.state == "final"]
    last_final = finals[-1].end_seq - 1 if finals else -1
    pending = [b for b in batches if b.state != "final"]
    return {
        "next_seq": nxt,
        "unbatched_records": nxt - (batches[-1].end_seq if batches else 0),
        "backlog_records": nxt - (last_final + 1),
        "last_final_seq": last_final,
        "batches": store.batch_counts(),
        "pending": [{"batch_id": b.batch_id, "first_seq": b.first_seq, "count": b.count, "state": b.state,
                     "tx_hash": None if b.tx_hash is None else "0x" + b.tx_hash.hex(), "nonce": b.nonce,
                     "submissions": len(b.info.get("txs", []))} for b in pending[:20]],
        "last_final": None if not finals else {
            "batch_id": finals[-1].batch_id, "onchain_batch_id": finals[-1].onchain_batch_id,
            "gas_used": finals[-1].info.get("gas_used"), "gas_per_record": finals[-1].info.get("gas_per_record"),
            "l1_fee": finals[-1].info.get("l1_fee")},
        "store": {"used_bytes": store.used_bytes, "full_rejections": store.full_rejections,
                  "disk_alarm": store.disk_alarm},
    }
