"""The record store's `batches` table and retention: `BatchLog`, the part of `RecordStore` that the batcher drives.

The `batches` table tracks what the batcher did with ranges of seqs:
`sealed -> dispersed -> submitted -> posted -> final` (a reorg may send a `posted` batch back to `dispersed`).
A sealed batch keeps its `LLB2` payload; once a batch is `final` and older than the retention, `prune` deletes its
record rows (the payload, in the database or an archive file, still answers `get(seq)`), so the log does not only
grow. Every value is type-checked before it is written: nothing a caller passes can leave the store unreadable.

`RecordStore` (in `attribution.store.log`) owns one `BatchLog`, built on the store's connections, as
`store.batch_log`; its methods are also the store's (`store.create_batch(...)`). The tables' DDL and the
schema-1 migration are here too, so the batches' format has one home.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution.store.checks import check_bytes, check_int, repair_blob
from attribution.store.errors import BatchError, BatchStateError, StoreError, StoreReadOnlyError, StoreTypeError

__all__ = ["BATCH_STATES", "SCHEMA_VERSION", "Batch", "BatchLog", "create_batch_tables", "migrate_v1"]

logger = logging.getLogger(__name__)

BATCH_STATES = ("sealed", "dispersed", "submitted", "posted", "final")
SCHEMA_VERSION = 2  # of the store file; 2 added the `submitted` state, the tx fields and the payloads


@dataclass(frozen=True, slots=True)
class Batch:
    """One local batch: the seqs `[first_seq, first_seq + count)` and what happened to them so far.

    `batch_id` is local to this store; `onchain_batch_id` is the ledger's id once posted. `root` is the Merkle
    root, `commitment` the DA commitment, `tx_hash` the (latest) postBatch transaction and `nonce` its nonce,
    `block_number` the block of its receipt. `info` holds what the steps measured (fees, gas, L1 fee, DA latency).
    `pruned` is True once the record rows are gone (the payload still answers).
    """

    batch_id: int
    first_seq: int
    count: int
    state: str
    root: bytes | None
    commitment: bytes | None
    tx_hash: bytes | None
    onchain_batch_id: int | None
    created_at: float
    updated_at: float
    nonce: int | None = None
    block_number: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    pruned: bool = False

    @property
    def end_seq(self) -> int:
        """One past the batch's last seq."""
        return self.first_seq + self.count


class BatchLog:
    """The batches table and retention of one record store (see the module doc); `RecordStore.batch_log`.

    It shares the store's connections: `read` (with `read_lock`, the store's reader) for queries and `write` (None
    when the store is read-only) for its own transactions, so the batcher's writes never wait for a group commit.
    `next_seq` says where the stored records end (a batch may not go past it). `schema` is the store file's
    schema version, for a read-only store that an old version wrote.
    """

    def __init__(self, path: Path, read: sqlite3.Connection, read_lock: threading.Lock,
                 write: sqlite3.Connection | None, next_seq: Callable[[], int], *, schema: int = SCHEMA_VERSION,
                 archive_dir: Path | None = None) -> None:
        self.path = path
        self.archive_dir = archive_dir
        self.pruned_records = 0  # metric: record rows deleted by `prune` in this process
        self._read = read
        self._read_lock = read_lock
        self._write = write
        self._next_seq = next_seq
        self._schema = schema

    # --- batches -------------------------------------------------------------------------------------------

    def _batch_write(self) -> sqlite3.Connection:
        if self._write is None:
            raise StoreReadOnlyError(f"{self.path} was opened read-only")
        return self._write

    @staticmethod
    def _row_to_batch(row: tuple[Any, ...]) -> Batch:
        (bid, first, count, state, root, com, tx, onchain, created, updated, nonce, block, info, pruned) = row
        try:
            info_d = json.loads(info) if info else {}
        except ValueError:
            info_d = {"unreadable_info": str(info)[:200]}
        return Batch(bid, first, count, state, repair_blob(root), repair_blob(com), repair_blob(tx),
                     onchain if isinstance(onchain, int) else None, created, updated,
                     nonce if isinstance(nonce, int) else None, block if isinstance(block, int) else None,
                     info_d if isinstance(info_d, dict) else {}, bool(pruned))

    _BATCH_COLS = ("batch_id, first_seq, count, state, root, commitment, tx_hash, onchain_batch_id, created_at, "
                   "updated_at, nonce, block_number, info, pruned")

    def _batch_query(self, where: str, args: tuple[Any, ...], tail: str = "") -> list[Batch]:
        with self._read_lock:
            if self._schema < 2:
                raise StoreError(f"{self.path} has schema {self._schema}; open it writable once (start the node or "
                                 "the batcher) to migrate it")
            rows = self._read.execute(f"SELECT {self._BATCH_COLS} FROM batches {where} {tail}", args).fetchall()
        return [self._row_to_batch(r) for r in rows]

    def last_batch(self) -> Batch | None:
        """The batch with the highest first seq, or None."""
        rows = self._batch_query("", (), "ORDER BY first_seq DESC LIMIT 1")
        return rows[0] if rows else None

    def create_batch(self, first_seq: int, count: int, root: bytes | None = None,
                     payload: bytes | None = None) -> Batch:
        """Seal `[first_seq, first_seq + count)` as a new batch (state `sealed`), with its root and payload.

        `first_seq` must be where the previous batch ended (0 for the first) and all its records stored. `root`
        is the 32-byte Merkle root as bytes (not 0x-hex); `payload` the `LLB2` bytes. Root, payload and the
        batch row are written in one transaction.
        """
        check_int(first_seq, "first_seq")
        check_int(count, "count")
        check_bytes(root, "root", 32)
        check_bytes(payload, "payload")
        last = self.last_batch()
        expected = 0 if last is None else last.end_seq
        if first_seq != expected:
            raise BatchError(f"next batch must start at seq {expected}, got {first_seq}")
        if count <= 0:
            raise BatchError(f"a batch needs at least one record, got count={count}")
        if first_seq + count > self._next_seq():
            raise BatchError(f"batch [{first_seq}, {first_seq + count}) goes past the stored records "
                             f"(next seq {self._next_seq()})")
        now = time.time()
        c = self._batch_write()
        c.execute("BEGIN IMMEDIATE")
        try:
            cur = c.execute("INSERT INTO batches (first_seq, count, state, root, created_at, updated_at) "
                            "VALUES (?, ?, 'sealed', ?, ?, ?)", (first_seq, count, root, now, now))
            assert cur.lastrowid is not None
            if payload is not None:
                c.execute("INSERT INTO batch_payloads VALUES (?, ?)", (cur.lastrowid, payload))
            c.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
            raise
        return self.get_batch(cur.lastrowid)

    def get_batch(self, batch_id: int) -> Batch:
        """The batch with this local id; `BatchError` if none."""
        check_int(batch_id, "batch_id")
        rows = self._batch_query("WHERE batch_id = ?", (batch_id,))
        if not rows:
            raise BatchError(f"no batch with id {batch_id}")
        return rows[0]

    def batch_payload(self, batch_id: int) -> bytes | None:
        """The `LLB2` payload of a batch (from the database or its archive file), or None if none was kept."""
        with self._read_lock:
            row = self._read.execute("SELECT payload FROM batch_payloads WHERE batch_id = ?", (batch_id,)).fetchone()
        if row is not None:
            return bytes(row[0])
        batch = self.get_batch(batch_id)
        path = batch.info.get("archive")
        if isinstance(path, str):
            try:
                return Path(path).read_bytes()
            except OSError as e:
                raise StoreError(f"archived payload of batch {batch_id} at {path} is unreadable: {e}; restore the "
                                 "archive or fetch the payload from DA by its commitment") from e
        return None

    def set_batch_state(
        self,
        batch_id: int,
        state: str,
        *,
        root: bytes | None = None,
        commitment: bytes | None = None,
        tx_hash: bytes | None = None,
        onchain_batch_id: int | None = None,
        nonce: int | None = None,
        block_number: int | None = None,
        info: Mapping[str, Any] | None = None,
        reorg: bool = False,
    ) -> Batch:
        """Move a batch forward (sealed -> dispersed -> submitted -> posted -> final), recording what the step
        produced. Hashes and roots are bytes (not 0x-hex); `info` is merged into the stored JSON.

        `reorg=True` sends a `submitted`/`posted` batch back to `dispersed` (its tx fields are cleared): the
        batcher does this when the transaction's receipt vanished (before `final`; a `final` batch only when
        a reorg deeper than the confirmation depth dropped it).
        """
        check_int(batch_id, "batch_id")
        if not isinstance(state, str) or state not in BATCH_STATES:
            raise BatchStateError(f"unknown batch state {state!r}; one of {', '.join(BATCH_STATES)}")
        check_bytes(root, "root", 32)
        check_bytes(commitment, "commitment")
        check_bytes(tx_hash, "tx_hash", 32)
        for name, v in (("onchain_batch_id", onchain_batch_id), ("nonce", nonce), ("block_number", block_number)):
            if v is not None:
                check_int(v, name)
        info_json = None
        if info is not None:
            if not isinstance(info, Mapping):
                raise StoreTypeError(f"info must be a mapping, got {type(info).__name__}")
            try:
                json.dumps(dict(info), allow_nan=False)
            except (TypeError, ValueError) as e:
                raise StoreTypeError(f"info must be JSON-serialisable: {e}") from e
        current = self.get_batch(batch_id)
        if reorg:
            if state != "dispersed" or current.state not in ("submitted", "posted", "final"):
                raise BatchStateError(f"batch {batch_id} is {current.state}; a reorg only sends a submitted, "
                                      "posted (or, past the confirmation depth, final) batch back to dispersed")
        elif BATCH_STATES.index(state) < BATCH_STATES.index(current.state):
            raise BatchStateError(f"batch {batch_id} is {current.state}; cannot go back to {state}")
        if info is not None:
            info_json = json.dumps({**current.info, **dict(info)}, allow_nan=False)
        if reorg:
            self._batch_write().execute(
                "UPDATE batches SET state = 'dispersed', tx_hash = NULL, nonce = NULL, block_number = NULL, "
                "onchain_batch_id = NULL, info = COALESCE(?, info), updated_at = ? WHERE batch_id = ?",
                (info_json, time.time(), batch_id))
            return self.get_batch(batch_id)
        self._batch_write().execute(
            "UPDATE batches SET state = ?, root = COALESCE(?, root), commitment = COALESCE(?, commitment), "
            "tx_hash = COALESCE(?, tx_hash), onchain_batch_id = COALESCE(?, onchain_batch_id), "
            "nonce = COALESCE(?, nonce), block_number = COALESCE(?, block_number), info = COALESCE(?, info), "
            "updated_at = ? WHERE batch_id = ?",
            (state, root, commitment, tx_hash, onchain_batch_id, nonce, block_number, info_json, time.time(),
             batch_id))
        return self.get_batch(batch_id)

    def batch_of(self, seq: int) -> Batch | None:
        """The batch that holds `seq`, or None while the record is not yet in a batch."""
        rows = self._batch_query("WHERE first_seq <= ?", (seq,), "ORDER BY first_seq DESC LIMIT 1")
        if not rows:
            return None
        return rows[0] if seq < rows[0].end_seq else None

    def batches(self, state: str | None = None) -> list[Batch]:
        """All batches (optionally only those in `state`), by first seq."""
        if state is None:
            return self._batch_query("", (), "ORDER BY first_seq")
        return self._batch_query("WHERE state = ?", (state,), "ORDER BY first_seq")

    def batch_counts(self) -> dict[str, int]:
        """Number of batches in each state (every state present, 0 when none)."""
        with self._read_lock:
            rows = self._read.execute("SELECT state, COUNT(*) FROM batches GROUP BY state").fetchall()
        counts = dict.fromkeys(BATCH_STATES, 0)
        counts.update({str(s): int(n) for s, n in rows})
        return counts

    def unbatched_start(self) -> int:
        """The first seq not in any batch (where the next batch starts)."""
        last = self.last_batch()
        return 0 if last is None else last.end_seq

    def unseal_from(self, batch_id: int) -> int:
        """Delete batch `batch_id` and every later batch, all of which must still be `sealed` (nothing of them left
        this store): the batcher re-splits a payload the DA refused for size. Returns how many were deleted."""
        check_int(batch_id, "batch_id")
        first = self.get_batch(batch_id).first_seq
        later = self._batch_query("WHERE first_seq >= ?", (first,))
        moved = [b for b in later if b.state != "sealed"]
        if moved:
            raise BatchStateError(f"batch {moved[0].batch_id} is {moved[0].state}; only sealed batches can be "
                                  "re-split")
        c = self._batch_write()
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("DELETE FROM batch_payloads WHERE batch_id IN (SELECT batch_id FROM batches WHERE first_seq "
                      ">= ?)", (first,))
            c.execute("DELETE FROM batches WHERE first_seq >= ?", (first,))
            c.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
            raise
        return len(later)

    # --- retention -----------------------------------------------------------------------------------------

    def prune(self, retention_s: float = 0.0, *, limit: int = 64) -> int:
        """Delete the record rows of `final` batches finalised at least `retention_s` ago; returns rows deleted.

        The batch's payload stays (in the database, or moved to `archive_dir/<first_seq>-<count>.llb2` first,
        durably), so `get(seq)` and the proof route keep working. At most `limit` batches per call.
        """
        if retention_s < 0:
            raise StoreTypeError(f"retention_s must be >= 0, got {retention_s}")
        cutoff = time.time() - retention_s
        todo = self._batch_query("WHERE state = 'final' AND pruned = 0 AND updated_at <= ?", (cutoff,),
                                 f"ORDER BY first_seq LIMIT {int(limit)}")
        deleted = 0
        c = self._batch_write()
        for b in todo:
            with self._read_lock:
                has_payload = self._read.execute("SELECT 1 FROM batch_payloads WHERE batch_id = ?",
                                                 (b.batch_id,)).fetchone() is not None
            if not has_payload:
                continue  # a batch sealed without its payload (schema 1): its rows are the only copy
            archive: str | None = None
            if self.archive_dir is not None:
                payload = self.batch_payload(b.batch_id)
                assert payload is not None
                self.archive_dir.mkdir(parents=True, exist_ok=True)
                target = self.archive_dir / f"{b.first_seq:020d}-{b.count}.llb2"
                _write_durably(target, payload)
                archive = str(target.resolve())
            c.execute("BEGIN IMMEDIATE")
            try:
                cur = c.execute("DELETE FROM records WHERE seq >= ? AND seq < ?", (b.first_seq, b.end_seq))
                if archive is not None:
                    c.execute("DELETE FROM batch_payloads WHERE batch_id = ?", (b.batch_id,))
                    info = json.dumps({**b.info, "archive": archive})
                    c.execute("UPDATE batches SET pruned = 1, info = ? WHERE batch_id = ?", (info, b.batch_id))
                else:
                    c.execute("UPDATE batches SET pruned = 1 WHERE batch_id = ?", (b.batch_id,))
                c.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    c.execute("ROLLBACK")
                raise
            deleted += cur.rowcount
        if deleted:
            self.pruned_records += deleted
            with contextlib.suppress(sqlite3.Error):  # move the deletions into the file, so its pages read as free
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            logger.info("pruned %d record rows of %d final batch(es)", deleted, len(todo))
        return deleted


def _write_durably(path: Path, data: bytes) -> None:
    """Write a file atomically and durably (temp file, fsync, rename, fsync the directory)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_BATCHES_DDL = (
    "CREATE TABLE {name} (batch_id INTEGER PRIMARY KEY AUTOINCREMENT, first_seq INTEGER NOT NULL UNIQUE, "
    "count INTEGER NOT NULL CHECK (count > 0), "
    "state TEXT NOT NULL CHECK (state IN ('sealed','dispersed','submitted','posted','final')), "
    "root BLOB CHECK (root IS NULL OR (typeof(root) = 'blob' AND length(root) = 32)), "
    "commitment BLOB CHECK (commitment IS NULL OR typeof(commitment) = 'blob'), "
    "tx_hash BLOB CHECK (tx_hash IS NULL OR (typeof(tx_hash) = 'blob' AND length(tx_hash) = 32)), "
    "onchain_batch_id INTEGER CHECK (onchain_batch_id IS NULL OR typeof(onchain_batch_id) = 'integer'), "
    "created_at REAL NOT NULL, updated_at REAL NOT NULL, nonce INTEGER, block_number INTEGER, info TEXT, "
    "pruned INTEGER NOT NULL DEFAULT 0)")


def create_batch_tables(c: sqlite3.Connection, *, fresh: bool) -> None:
    """Create the `batch_payloads` table, and the `batches` table in a `fresh` store (inside the caller's
    transaction; an existing schema-1 `batches` table is left for `migrate_v1`)."""
    if fresh:
        c.execute(_BATCHES_DDL.format(name="batches"))
    c.execute("CREATE TABLE IF NOT EXISTS batch_payloads (batch_id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")


def migrate_v1(c: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the `submitted` state, tx fields, payloads; repair hex-string roots/hashes written by the old
    API (they made every read fail). Inside the caller's transaction."""
    c.execute(_BATCHES_DDL.format(name="batches_v2"))
    rows = c.execute("SELECT batch_id, first_seq, count, state, root, commitment, tx_hash, onchain_batch_id, "
                     "created_at, updated_at FROM batches").fetchall()
    fixed = []
    for bid, first, count, state, root, com, tx, onchain, created, updated in rows:
        fixed.append((bid, first, count, state, repair_blob(root), repair_blob(com), repair_blob(tx),
                      onchain if isinstance(onchain, int) else None, created, updated))
    c.executemany("INSERT INTO batches_v2 (batch_id, first_seq, count, state, root, commitment, tx_hash, "
                  "onchain_batch_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)", fixed)
    c.execute("DROP TABLE batches")
    c.execute("ALTER TABLE batches_v2 RENAME TO batches")
    c.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
    logger.info("record store migrated to schema %d (%d batches)", SCHEMA_VERSION, len(rows))
