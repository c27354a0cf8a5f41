"""The durable record log: SQLite in WAL mode with group commit, one store per node.

`RecordStore.append(pending)` returns the record's `seq` only once the record is on disk. Appends from many
threads or tasks join the *current group*; one committer thread writes a whole group in one transaction
(`PRAGMA synchronous=FULL`, so the WAL is fsync'd at commit), assigns the group consecutive seqs after the last
committed one, and then releases every caller of the group at once. So seqs are gap-free per node, assigned at
commit, and a seq a caller saw is never lost, even on `kill -9` (SQLite replays the WAL on the next open).

Disk use is bounded by `max_bytes` (database + WAL). Past it `append` raises `StoreFullError` and increments
`full_rejections` (a counter the node exports as a metric); a record is refused loudly, never dropped silently.

The `batches` table tracks what the batcher did with ranges of seqs: `sealed -> dispersed -> posted -> final`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution.errors import AttributionError
from attribution.records import PendingRecord, Record

__all__ = [
    "StoreError",
    "StoreFullError",
    "StoreClosedError",
    "StoreLockedError",
    "StoreReadOnlyError",
    "RecordNotFoundError",
    "BatchError",
    "BatchStateError",
    "Batch",
    "BATCH_STATES",
    "RecordStore",
]

logger = logging.getLogger(__name__)

BATCH_STATES = ("sealed", "dispersed", "posted", "final")
_EST_ROW_BYTES = 128  # generous estimate of one record's share of the file (row + b-tree), for the disk bound
_SCHEMA_VERSION = 1


class StoreError(AttributionError):
    """A record-store operation failed."""


class StoreFullError(StoreError, OSError):
    """The store reached its disk bound (`max_bytes`) and refuses new records.

    Raise the bound (`store.max_bytes` in the settings), free disk, or let the batcher post and prune.
    """


class StoreClosedError(StoreError, RuntimeError):
    """The store was closed; open a new `RecordStore`."""


class StoreLockedError(StoreError, OSError):
    """Another process holds the store's write lock; only one node process may append to a store."""


class StoreReadOnlyError(StoreError, PermissionError):
    """The store was opened read-only (`readonly=True`); open it writable to append or change batches."""


class RecordNotFoundError(StoreError, LookupError):
    """No record with that seq is stored (yet); `next_seq()` says how far the log goes."""


class BatchError(StoreError, ValueError):
    """A batch does not fit the log: wrong first seq, empty, or past the stored records."""


class BatchStateError(BatchError):
    """A batch state change that is not allowed (states only move forward: sealed, dispersed, posted, final)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """One local batch: the seqs `[first_seq, first_seq + count)` and what happened to them so far.

    `batch_id` is local to this store; `onchain_batch_id` is the ledger's id once posted. `root` is the Merkle
    root, `commitment` the DA commitment, `tx_hash` the postBatch transaction.
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

    @property
    def end_seq(self) -> int:
        """One past the batch's last seq."""
        return self.first_seq + self.count


@dataclass
class _Group:
    """Records waiting for the same transaction; its callers are released together."""

    records: list[PendingRecord] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    first_seq: int = -1
    error: BaseException | None = None
    async_waiters: dict[asyncio.AbstractEventLoop, list[asyncio.Future[int]]] = field(default_factory=dict)


def _s64(v: int) -> int:
    """uint64 -> SQLite's signed INTEGER (bit-identical)."""
    return v - (1 << 64) if v >= 1 << 63 else v


def _u64(v: int) -> int:
    return v + (1 << 64) if v < 0 else v


_BODY = struct.Struct(">IIQ32s")  # promptTokens | completionTokens | timestamp | ioHash = 48 bytes
_ContextKey = tuple[int, bytes, bytes, bytes, tuple[bytes, ...], tuple[int, ...]]


class RecordStore:
    """Durable, gap-free, per-node log of attribution records (SQLite WAL + group commit). See the module doc.

    `RecordStore(path, node_address, max_bytes=...)` opens or creates the store for `node_address` (20 bytes or
    hex) and takes an exclusive lock file, so only one process appends. `readonly=True` opens for reading only
    (the CLI, while a node runs); then `node_address` may be omitted. Use as a context manager or call `close()`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        node_address: bytes | str | None = None,
        max_bytes: int = 8 << 30,
        readonly: bool = False,
        max_group: int = 65_536,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.readonly = readonly
        self.max_group = max_group
        self.full_rejections = 0  # metric: appends refused by the disk bound
        self.commits = 0  # metric: group transactions committed
        self.appended = 0  # metric: records committed by this process
        self._closed = False
        self._lock_fd: int | None = None
        self._mutex = threading.Lock()
        self._read_lock = threading.Lock()
        self._ctx_lock = threading.Lock()
        self._wakeup = threading.Condition(self._mutex)
        self._current = _Group()
        self._contexts: list[_ContextKey] = []  # ctx_id -> context
        self._ctx_ids: dict[_ContextKey, int] = {}
        self._thread: threading.Thread | None = None
        if readonly:
            if not self.path.exists():
                raise StoreError(f"no record store at {self.path}; start the node once to create it")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._read = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._read.execute("PRAGMA query_only=ON")
            self.node = self._meta_node()
            if node_address is not None and self._addr(node_address) != self.node:
                raise StoreError(f"store {self.path} belongs to node 0x{self.node.hex()}")
            self._next_seq = self._max_seq() + 1
            self._used = self._disk_usage()
            self._load_contexts()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._write = self._connect()
            self._init_schema(node_address)
            self._read = self._connect()
            self._batch_conn = self._connect()
        except BaseException:
            self._release_lock()
            raise
        self._next_seq = self._max_seq() + 1
        self._used = self._disk_usage()
        self._load_contexts()
        self._thread = threading.Thread(target=self._committer, name=f"record-store-{self.path.name}", daemon=True)
        self._thread.start()

    # --- setup ---------------------------------------------------------------------------------------------

    @staticmethod
    def _addr(value: bytes | str) -> bytes:
        b = bytes.fromhex(value[2:] if value.startswith("0x") else value) if isinstance(value, str) else bytes(value)
        if len(b) != 20:
            raise StoreError(f"node address must be 20 bytes, got {len(b)}")
        return b

    def _take_lock(self) -> None:
        fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise StoreLockedError(f"{self.path} is in use by another process; stop it or use readonly=True") from e
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA journal_size_limit=67108864")  # truncate the WAL after checkpoints: it counts too
        return conn

    def _init_schema(self, node_address: bytes | str | None) -> None:
        c = self._write
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            # a context is what many records share (chain, ledger, model, adapter, datasets, weights); a record
            # row is its seq, its context and a fixed 48-byte body, so a group commit binds 3 values per record
            c.execute(
                "CREATE TABLE IF NOT EXISTS contexts (ctx_id INTEGER PRIMARY KEY, chain_id INTEGER NOT NULL, "
                "ledger BLOB NOT NULL, model_id BLOB NOT NULL, adapter_id BLOB NOT NULL, dataset_ids BLOB NOT NULL, "
                "weights_bps BLOB NOT NULL)")
            c.execute("CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, ctx_id INTEGER NOT NULL, "
                      "body BLOB NOT NULL)")
            c.execute(
                "CREATE TABLE IF NOT EXISTS batches (batch_id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "first_seq INTEGER NOT NULL UNIQUE, count INTEGER NOT NULL CHECK (count > 0), "
                "state TEXT NOT NULL CHECK (state IN ('sealed','dispersed','posted','final')), root BLOB, "
                "commitment BLOB, tx_hash BLOB, onchain_batch_id INTEGER, created_at REAL NOT NULL, "
                "updated_at REAL NOT NULL)")
            row = c.execute("SELECT value FROM meta WHERE key='node'").fetchone()
            if row is None:
                if node_address is None:
                    raise StoreError(f"new store {self.path} needs node_address")
                self.node = self._addr(node_address)
                c.execute("INSERT INTO meta VALUES ('node', ?), ('schema', ?)", (self.node, _SCHEMA_VERSION))
            else:
                self.node = bytes(row[0])
                if node_address is not None and self._addr(node_address) != self.node:
                    raise StoreError(f"store {self.path} belongs to node 0x{self.node.hex()}, not "
                                     f"0x{self._addr(node_address).hex()}; use one store per node")
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _meta_node(self) -> bytes:
        try:
            row = self._read.execute("SELECT value FROM meta WHERE key='node'").fetchone()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a record store: {e}") from e
        if row is None:
            raise StoreError(f"{self.path} is not an initialised record store")
        return bytes(row[0])

    def _max_seq(self) -> int:
        with self._read_lock:
            row = self._read.execute("SELECT MAX(seq) FROM records").fetchone()
        return -1 if row[0] is None else int(row[0])

    def _disk_usage(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += os.path.getsize(str(self.path) + suffix)
        return total

    # --- appends -------------------------------------------------------------------------------------------

    def _check_record(self, pending: PendingRecord) -> None:
        if not isinstance(pending, PendingRecord):
            raise TypeError(f"append takes a PendingRecord, got {type(pending).__name__}")
        if pending.node != self.node:
            raise StoreError(f"record is for node 0x{pending.node.hex()} but this store is 0x{self.node.hex()}")

    def _enqueue(self, records: Sequence[PendingRecord],
                 loop: asyncio.AbstractEventLoop | None = None) -> tuple[_Group, int, asyncio.Future[int] | None]:
        if self.readonly:
            raise StoreReadOnlyError(f"{self.path} was opened read-only")
        for r in records:
            self._check_record(r)
        with self._mutex:
            if self._closed:
                raise StoreClosedError(f"record store {self.path} is closed")
            group = self._current
            queued = len(group.records) + len(records)
            if self._used + queued * _EST_ROW_BYTES > self.max_bytes:
                self.full_rejections += len(records)
                logger.error("record store full: %d bytes used of max %d; refusing %d record(s)",
                             self._used, self.max_bytes, len(records))
                raise StoreFullError(
                    f"record store {self.path} is full ({self._used} of max_bytes={self.max_bytes}); raise "
                    "store.max_bytes, free disk, or let the batcher catch up and prune")
            index = len(group.records)
            group.records.extend(records)
            fut = None
            if loop is not None:  # one plain future per caller: cheap, and cancelling one leaves the others alone
                fut = loop.create_future()
                group.async_waiters.setdefault(loop, []).append(fut)
            if index == 0:
                self._wakeup.notify()
        return group, index, fut

    @staticmethod
    def _result(group: _Group, index: int) -> int:
        if group.error is not None:
            raise StoreError(f"append failed, record not stored: {group.error}") from group.error
        return group.first_seq + index

    def append(self, pending: PendingRecord) -> int:
        """Store one record durably; returns its seq once committed (blocks for the group's fsync)."""
        group, index, _ = self._enqueue((pending,))
        group.done.wait()
        return self._result(group, index)

    def append_many(self, pendings: Sequence[PendingRecord]) -> list[int]:
        """Store several records durably, in order, with consecutive seqs; returns them once committed."""
        if not pendings:
            return []
        group, index, _ = self._enqueue(pendings)
        group.done.wait()
        first = self._result(group, index)
        return list(range(first, first + len(pendings)))

    async def append_async(self, pending: PendingRecord) -> int:
        """`append` for asyncio: awaits the group commit without blocking the event loop."""
        group, index, fut = self._enqueue((pending,), asyncio.get_running_loop())
        assert fut is not None
        await fut
        return self._result(group, index)

    def _committer(self) -> None:
        while True:
            with self._mutex:
                while not self._current.records and not self._closed:
                    self._wakeup.wait()
                if not self._current.records and self._closed:
                    return
                group = self._current
                self._current = _Group()
            self._commit_group(group)

    def _commit_group(self, group: _Group) -> None:
        first = self._next_seq
        new_contexts: list[tuple[int, _ContextKey]] = []
        try:
            ctx_ids = self._ctx_ids
            pack = _BODY.pack
            rows = []
            for i, r in enumerate(group.records):
                key = (r.chain_id, r.ledger, r.model_id, r.adapter_id, r.dataset_ids, r.weights_bps)
                ctx = ctx_ids.get(key)
                if ctx is None:
                    ctx = ctx_ids[key] = len(self._contexts) + len(new_contexts)
                    new_contexts.append((ctx, key))
                rows.append((first + i, ctx, pack(r.prompt_tokens, r.completion_tokens, r.timestamp, r.io_hash)))
            c = self._write
            c.execute("BEGIN IMMEDIATE")
            try:
                if new_contexts:
                    c.executemany("INSERT INTO contexts VALUES (?,?,?,?,?,?,?)",
                                  [(ctx, _s64(k[0]), k[1], k[2], k[3], b"".join(k[4]),
                                    b"".join(w.to_bytes(2, "big") for w in k[5])) for ctx, k in new_contexts])
                c.executemany("INSERT INTO records VALUES (?,?,?)", rows)
                c.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    c.execute("ROLLBACK")
                raise
        except Exception as e:  # every caller of the group learns it failed; none got a seq
            logger.exception("group commit of %d record(s) failed", len(group.records))
            for _, key in new_contexts:
                self._ctx_ids.pop(key, None)
            group.error = e
        else:
            with self._ctx_lock:  # a reader may have loaded them already, right after the commit
                for ctx, key in new_contexts:
                    if ctx == len(self._contexts):
                        self._contexts.append(key)
            self._next_seq = first + len(group.records)
            self.commits += 1
            self.appended += len(group.records)
            group.first_seq = first
            self._used = self._disk_usage()
        with self._mutex:
            group.done.set()
            waiters = list(group.async_waiters.items())
        for loop, futs in waiters:
            with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, futs)

    # --- reads ---------------------------------------------------------------------------------------------

    def next_seq(self) -> int:
        """The seq the next committed record will get (= number of records stored)."""
        if self.readonly:
            return self._max_seq() + 1
        return self._next_seq

    @property
    def used_bytes(self) -> int:
        """Bytes on disk (database + WAL) at the last commit; compared against `max_bytes`."""
        return self._used

    def _load_contexts(self) -> None:
        """Read contexts this process has not seen (all at open; later the ones a reader meets first)."""
        with self._ctx_lock, self._read_lock:
            rows = self._read.execute(
                "SELECT ctx_id, chain_id, ledger, model_id, adapter_id, dataset_ids, weights_bps FROM contexts "
                "WHERE ctx_id >= ? ORDER BY ctx_id", (len(self._contexts),)).fetchall()
            for ctx, chain_id, ledger, model_id, adapter_id, ds, ws in rows:
                if ctx != len(self._contexts):
                    raise StoreError(f"{self.path}: context table is not dense at {ctx}; the file is damaged")
                ds, ws = bytes(ds), bytes(ws)
                key: _ContextKey = (
                    _u64(chain_id), bytes(ledger), bytes(model_id), bytes(adapter_id),
                    tuple(ds[i:i + 32] for i in range(0, len(ds), 32)),
                    tuple(int.from_bytes(ws[i:i + 2], "big") for i in range(0, len(ws), 2)))
                self._contexts.append(key)
                self._ctx_ids[key] = ctx

    def _row_to_record(self, row: tuple[Any, ...]) -> Record:
        seq, ctx, body = row
        if ctx >= len(self._contexts):
            self._load_contexts()
        chain_id, ledger, model_id, adapter_id, ds, ws = self._contexts[ctx]
        pt, ct, ts, ioh = _BODY.unpack(body)
        return Record(chain_id=chain_id, ledger=ledger, node=self.node, seq=seq, model_id=model_id,
                      adapter_id=adapter_id, dataset_ids=ds, weights_bps=ws, prompt_tokens=pt,
                      completion_tokens=ct, timestamp=ts, io_hash=ioh)

    def get(self, seq: int) -> Record:
        """The record with this seq; `RecordNotFoundError` if none is stored."""
        with self._read_lock:
            row = self._read.execute("SELECT seq, ctx_id, body FROM records WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"no record with seq {seq}; this store holds seqs [0, {self.next_seq()})")
        return self._row_to_record(row)

    def range(self, start: int, end: int) -> list[Record]:
        """Records with `start <= seq < end`, in seq order (only those stored)."""
        with self._read_lock:
            rows = self._read.execute(
                "SELECT seq, ctx_id, body FROM records WHERE seq >= ? AND seq < ? ORDER BY seq",
                (start, end)).fetchall()
        return [self._row_to_record(r) for r in rows]

    def iter_range(self, start: int, end: int, chunk: int = 10_000) -> Iterator[Record]:
        """Like `range` but streams in chunks, for exports of many records."""
        pos = start
        while pos < end:
            part = self.range(pos, min(end, pos + chunk))
            if not part:
                return
            yield from part
            pos = part[-1].seq + 1

    # --- batches -------------------------------------------------------------------------------------------

    def _batch_write(self) -> sqlite3.Connection:
        if self.readonly:
            raise StoreReadOnlyError(f"{self.path} was opened read-only")
        return self._batch_conn

    @staticmethod
    def _row_to_batch(row: tuple[Any, ...]) -> Batch:
        bid, first, count, state, root, com, tx, onchain, created, updated = row
        return Batch(bid, first, count, state, None if root is None else bytes(root),
                     None if com is None else bytes(com), None if tx is None else bytes(tx), onchain, created, updated)

    _BATCH_COLS = ("batch_id, first_seq, count, state, root, commitment, tx_hash, onchain_batch_id, created_at, "
                   "updated_at")

    def last_batch(self) -> Batch | None:
        """The batch with the highest first seq, or None."""
        with self._read_lock:
            row = self._read.execute(
                f"SELECT {self._BATCH_COLS} FROM batches ORDER BY first_seq DESC LIMIT 1").fetchone()
        return None if row is None else self._row_to_batch(row)

    def create_batch(self, first_seq: int, count: int, root: bytes | None = None) -> Batch:
        """Seal `[first_seq, first_seq + count)` as a new batch (state `sealed`). Batches tile the log.

        `first_seq` must be where the previous batch ended (0 for the first) and all its records stored.
        """
        last = self.last_batch()
        expected = 0 if last is None else last.end_seq
        if first_seq != expected:
            raise BatchError(f"next batch must start at seq {expected}, got {first_seq}")
        if count <= 0:
            raise BatchError(f"a batch needs at least one record, got count={count}")
        if first_seq + count > self.next_seq():
            raise BatchError(f"batch [{first_seq}, {first_seq + count}) goes past the stored records "
                             f"(next seq {self.next_seq()})")
        now = time.time()
        c = self._batch_write()
        cur = c.execute("INSERT INTO batches (first_seq, count, state, root, created_at, updated_at) "
                        "VALUES (?, ?, 'sealed', ?, ?, ?)", (first_seq, count, root, now, now))
        assert cur.lastrowid is not None
        return self.get_batch(cur.lastrowid)

    def get_batch(self, batch_id: int) -> Batch:
        """The batch with this local id; `BatchError` if none."""
        with self._read_lock:
            row = self._read.execute(f"SELECT {self._BATCH_COLS} FROM batches WHERE batch_id = ?",
                                     (batch_id,)).fetchone()
        if row is None:
            raise BatchError(f"no batch with id {batch_id}")
        return self._row_to_batch(row)

    def set_batch_state(
        self,
        batch_id: int,
        state: str,
        *,
        root: bytes | None = None,
        commitment: bytes | None = None,
        tx_hash: bytes | None = None,
        onchain_batch_id: int | None = None,
    ) -> Batch:
        """Move a batch forward (sealed -> dispersed -> posted -> final), recording what the step produced."""
        if state not in BATCH_STATES:
            raise BatchStateError(f"unknown batch state {state!r}; one of {', '.join(BATCH_STATES)}")
        current = self.get_batch(batch_id)
        if BATCH_STATES.index(state) < BATCH_STATES.index(current.state):
            raise BatchStateError(f"batch {batch_id} is {current.state}; cannot go back to {state}")
        self._batch_write().execute(
            "UPDATE batches SET state = ?, root = COALESCE(?, root), commitment = COALESCE(?, commitment), "
            "tx_hash = COALESCE(?, tx_hash), onchain_batch_id = COALESCE(?, onchain_batch_id), updated_at = ? "
            "WHERE batch_id = ?", (state, root, commitment, tx_hash, onchain_batch_id, time.time(), batch_id))
        return self.get_batch(batch_id)

    def batch_of(self, seq: int) -> Batch | None:
        """The batch that holds `seq`, or None while the record is not yet in a batch."""
        with self._read_lock:
            row = self._read.execute(
                f"SELECT {self._BATCH_COLS} FROM batches WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1",
                (seq,)).fetchone()
        if row is None:
            return None
        b = self._row_to_batch(row)
        return b if seq < b.end_seq else None

    def batches(self, state: str | None = None) -> list[Batch]:
        """All batches (optionally only those in `state`), by first seq."""
        q = f"SELECT {self._BATCH_COLS} FROM batches"
        args: tuple[Any, ...] = ()
        if state is not None:
            q += " WHERE state = ?"
            args = (state,)
        with self._read_lock:
            rows = self._read.execute(q + " ORDER BY first_seq", args).fetchall()
        return [self._row_to_batch(r) for r in rows]

    # --- lifecycle -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is queued, stop the committer and close the database (idempotent)."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            self._wakeup.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._read_lock:
            self._read.close()
        if not self.readonly:
            self._batch_conn.close()
            self._write.close()
            self._release_lock()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(futs: list[asyncio.Future[int]]) -> None:
    for fut in futs:
        if not fut.done():  # a cancelled caller's future is done already
            fut.set_result(0)
