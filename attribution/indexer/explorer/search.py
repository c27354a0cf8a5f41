"""The search box: any record (`node/seq`), batch number, node or account address, transaction hash, adapter or
dataset id, to the stable URL of the page that shows it."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from attribution.hashing import to_checksum_address
from attribution.indexer.registry import registry_history
from attribution.indexer.schema import batches, profile_datasets, profiles

__all__ = ["resolve"]

_RECORD = re.compile(r"^(?:0x)?([0-9a-fA-F]{40})\s*[/:#]\s*(\d+)$")
_ADDRESS = re.compile(r"^(?:0x)?([0-9a-fA-F]{40})$")
_HASH = re.compile(r"^(?:0x)?([0-9a-fA-F]{64})$")
MAX_QUERY = 200


def resolve(conn: Connection, query: str) -> str | None:
    """The explorer path for `query`, or None when nothing indexed matches it."""
    q = query.strip()[:MAX_QUERY]
    if m := _RECORD.match(q):
        return f"/explorer/record/{to_checksum_address(bytes.fromhex(m[1]))}/{int(m[2])}"
    if q.isdigit():
        found = conn.execute(sa.select(batches.c.batch_id).where(batches.c.batch_id == int(q))).first()
        return f"/explorer/batch/{int(q)}" if found else None
    if m := _ADDRESS.match(q):
        raw = bytes.fromhex(m[1])
        is_node = conn.execute(sa.select(batches.c.batch_id).where(batches.c.node == raw).limit(1)).first()
        return f"/explorer/{'node' if is_node else 'account'}/{to_checksum_address(raw)}"
    if m := _HASH.match(q):
        raw = bytes.fromhex(m[1])
        hit = conn.execute(sa.select(batches.c.batch_id).where(batches.c.tx_hash == raw)).first()
        if hit:
            return f"/explorer/batch/{int(hit.batch_id)}"
        return _asset(conn, raw)
    return None


def _asset(conn: Connection, raw: bytes) -> str | None:
    key = "0x" + raw.hex()
    if conn.execute(sa.select(profiles.c.profile_id).where(profiles.c.adapter_id == raw).limit(1)).first():
        return f"/explorer/adapter/{key}"
    if conn.execute(sa.select(profile_datasets.c.profile_id).where(profile_datasets.c.dataset_id == raw)
                    .limit(1)).first():
        return f"/explorer/dataset/{key}"
    history = registry_history(conn)
    if history is not None:
        if raw in history.adapter_ids:
            return f"/explorer/adapter/{key}"
        if raw in history.dataset_ids:
            return f"/explorer/dataset/{key}"
    return None
