"""The StandardMerkleTree over attribution records, on the fast path (hand-rolled fixed-layout leaves, C keccak)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attribution.merkle import MerkleTreeError, StandardMerkleTree
from attribution.records.record import (
    RECORD_TYPES,
    Record,
    RecordColumns,
    RecordValidationError,
    record_leaves,
)

__all__ = ["record_tree"]


def _record_leaf_hash(value: Any) -> bytes:
    if isinstance(value, Record):
        return value.leaf()
    return Record.from_abi_values(value).leaf()


def record_tree(records: Sequence[Record] | RecordColumns, leaves: Sequence[bytes] | bytes | None = None
                ) -> StandardMerkleTree:
    """The StandardMerkleTree over attribution records (types `RECORD_TYPES`), built on the fast path.

    `records` is a list of `Record`s or a `RecordColumns` (the hot path: no per-record Python object; its values
    become `Record`s only when asked for). `get_proof` also takes a `Record` (or its 12 values) to look up, and
    `dump()` writes the values as OZ values. Pass `leaves` (a list of 32-byte hashes or all of them joined) if
    already computed, e.g. from a decoded payload.
    """
    if len(records) == 0:
        raise MerkleTreeError("Expected non-zero number of leaves")
    if leaves is None:
        columns = records if isinstance(records, RecordColumns) else _columns(records)
        hashes: Sequence[bytes] | bytes = columns.leaf_bytes() if columns is not None else record_leaves(
            records)
    else:
        hashes = leaves
    if len(hashes) != len(records) * (32 if isinstance(hashes, bytes) else 1):
        raise MerkleTreeError(f"{len(records)} records but leaves for a different number")
    tree, indices = StandardMerkleTree._prepare(hashes, True)
    return StandardMerkleTree(tree, records, indices, RECORD_TYPES, leaf_hash=_record_leaf_hash,
                              to_oz_value=Record.oz_values)


def _columns(records: Sequence[Record]) -> RecordColumns | None:
    """Columns of records of one (chainId, ledger, node), or None when they mix domains."""
    try:
        return RecordColumns.from_records(records)
    except RecordValidationError:  # Records are valid, so this is "several domains": leaves per domain
        return None
