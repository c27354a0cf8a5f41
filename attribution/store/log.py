"""The durable record log: SQLite in WAL mode with group commit, one store per node.

`RecordStore.append(pending)` returns the record's `seq` only once the record is on disk. Appends from many
threads or tasks join the *current group*; one committer thread writes a whole group in one transaction
(`PRAGMA synchronous=FULL`, so the WAL is fsync'd at commit), assigns the group consecutive seqs after the last
committed one, and then releases every caller of the group at once. So seqs are gap-free per node, assigned at
commit, and a seq a caller saw is never lost, even on `kill -9` (SQLite replays the WAL on the next open).

Disk use is bounded by `max_bytes` (database + WAL, less SQLite's free pages) and by the real free space of the
file system (`min_free_bytes`). Past either, `append` raises `StoreFullError`, increments `full_rejections` and
raises the `disk_alarm` flag (both exported as metrics); a record is refused loudly, never dropped silently. If
the committer thread dies, every waiting and every later `append` raises `StoreError` instead of blocking.

The `batches` table and retention are a `BatchLog` (`attribution.store.batches`) that the store owns as
`batch_log`, on the store's connections; the store's `create_batch`, `set_batch_state`, `prune`, ... hand over to
it. The errors are in `attribution.store.errors`. Every name is importable from here.
"""

from __future__ import annotations

import asyncio
import contextlib
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

import numpy as np

from attribution.records import PendingRecord, Profile, Record, RecordColumns
from attribution.store.batches import BATCH_STATES, Batch, BatchLog
from attribution.store.checks import check_int
from attribution.store.errors import (
    BatchError,
    BatchStateError,
    RecordNotFoundError,
    StoreClosedError,
    StoreDeadError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
    StoreTypeError,
)
from attribution.store.schema import (
    connect,
    disk_usage,
    free_bytes,
    init_schema,
    meta_node,
    read_schema,
    release_lock,
    take_lock,
)
from attribution.store.schema import node_address as parse_node

__all__ = [
    "StoreError",
    "StoreFullError",
    "StoreClosedError",
    "StoreLockedError",
    "StoreReadOnlyError",
    "StoreTypeError",
    "StoreDeadError",
    "RecordNotFoundError",
    "BatchError",
    "BatchStateError",
    "Batch",
    "BATCH_STATES",
    "RecordStore",
]

logger = logging.getLogger(__name__)

_EST_ROW_BYTES = 128  # generous estimate of one record's share of the file (row + b-tree), for the disk bound
_FREE_CHECK_S = 0.5  # how stale the free-space reading may get before an append refreshes it


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
    (the CLI, while a node runs); then `node_address` may be omitted. `min_free_bytes` is the free space the file
    system must keep; `archive_dir` is where `prune` moves the payloads of pruned batches (None: they stay in the
    database). `commit_delay_s` (like PostgreSQL's `commit_delay`): once a record waits, the committer waits this
    long more so that records arriving meanwhile share the transaction and its fsync (a commit's CPU cost is
    mostly the fsync, whatever its size: docs/attribution.md); 0 commits at once. `appender=False` opens writable
    for batches only (a standalone batcher beside the node): it takes no append lock and runs no committer, and sees
    the node's new records as they commit. Use as a context manager or call `close()`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        node_address: bytes | str | None = None,
        max_bytes: int = 8 << 30,
        readonly: bool = False,
        min_free_bytes: int = 256 << 20,
        archive_dir: str | os.PathLike[str] | None = None,
        appender: bool = True,
        commit_delay_s: float = 0.0,
    ) -> None:
        if not 0.0 <= commit_delay_s <= 1.0:
            raise ValueError(f"commit_delay_s must be in [0, 1] seconds, got {commit_delay_s}")
        self.path = Path(path)
        self.commit_delay_s = commit_delay_s
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.archive_dir = None if archive_dir is None else Path(archive_dir)
        self.readonly = readonly
        self.appender = appender and not readonly
        self.full_rejections = 0  # metric: appends refused by the disk bound
        self.disk_alarm = False  # metric: the last check found the disk bound or the free-space floor crossed
        self._dead: BaseException | None = None
        self._free = free_bytes(self.path)
        self._free_at = time.monotonic()
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
            self.node = meta_node(self._read, self.path)
            if node_address is not None and parse_node(node_address) != self.node:
                raise StoreError(f"store {self.path} belongs to node 0x{self.node.hex()}")
            self.batch_log = BatchLog(self.path, self._read, self._read_lock, None, self.next_seq,
                                      schema=read_schema(self._read), archive_dir=self.archive_dir)
            self._next_seq = self._max_seq() + 1
            self._used = disk_usage(self.path, self._read, self._read_lock)
            self._load_contexts()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.appender and not self.path.exists():
            raise StoreError(f"no record store at {self.path}; start the node once to create it")
        if self.appender:
            self._lock_fd = take_lock(self.path)
        try:
            self._write = connect(self.path)
            self.node = init_schema(self._write, self.path, node_address)
            self._read = connect(self.path)
            self._batch_conn = connect(self.path)
        except BaseException:
            release_lock(self._lock_fd)
            self._lock_fd = None
            raise
        self.batch_log = BatchLog(self.path, self._read, self._read_lock, self._batch_conn, self.next_seq,
                                  archive_dir=self.archive_dir)
        self._next_seq = self._max_seq() + 1
        self._used = disk_usage(self.path, self._read, self._read_lock)
        self._load_contexts()
        if not self.appender:
            return
        self._thread = threading.Thread(target=self._committer, name=f"record-store-{self.path.name}", daemon=True)
        self._thread.start()

    # --- setup ---------------------------------------------------------------------------------------------

    def _max_seq(self) -> int:
        """The highest seq ever stored: pruned records leave their batch behind, so the batches count too."""
        with self._read_lock:
            row = self._read.execute("SELECT MAX(seq) FROM records").fetchone()
            brow = self._read.execute("SELECT MAX(first_seq + count) FROM batches").fetchone()
        top = -1 if row[0] is None else int(row[0])
        return max(top, -1 if brow[0] is None else int(brow[0]) - 1)

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
        if not self.appender:
            raise StoreReadOnlyError(f"{self.path} was opened for batches only (appender=False); the node appends")
        for r in records:
            self._check_record(r)
        with self._mutex:
            if self._closed:
                raise StoreClosedError(f"record store {self.path} is closed")
            if self._dead is not None or (self._thread is not None and not self._thread.is_alive()):
                raise StoreDeadError(f"record store {self.path}: the committer thread died ({self._dead!r}); "
                                     "restart the process (stored records are safe)")
            group = self._current
            queued = len(group.records) + len(records)
            now = time.monotonic()
            if now - self._free_at > _FREE_CHECK_S:
                self._free, self._free_at = free_bytes(self.path), now
            extra = queued * _EST_ROW_BYTES
            if self._used + extra > self.max_bytes or self._free - extra < self.min_free_bytes:
                self.full_rejections += len(records)
                self.disk_alarm = True
                logger.error("record store full: %d bytes used of max %d, %d bytes free (floor %d); refusing %d "
                             "record(s)", self._used, self.max_bytes, self._free, self.min_free_bytes, len(records))
                raise StoreFullError(
                    f"record store {self.path} is full ({self._used} of max_bytes={self.max_bytes}, {self._free} "
                    f"bytes free of min_free_bytes={self.min_free_bytes}); raise store.max_bytes, free disk, or "
                    "let the batcher catch up and prune")
            self.disk_alarm = False
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
        if isinstance(group.error, StoreDeadError):
            raise group.error
        if group.error is not None:
            raise StoreError(f"append failed, record not stored: {group.error}") from group.error
        return group.first_seq + index

    def _wait(self, group: _Group) -> None:
        # poll for a dead committer: an Event.wait() without a timeout would block forever
        while not group.done.wait(0.5):
            if self._thread is not None and not self._thread.is_alive() and not group.done.is_set():
                raise StoreDeadError(f"record store {self.path}: the committer thread died ({self._dead!r}); "
                                     "this record was not stored; restart the process")

    def append(self, pending: PendingRecord) -> int:
        """Store one record durably; returns its seq once committed (blocks for the group's fsync)."""
        group, index, _ = self._enqueue((pending,))
        self._wait(group)
        return self._result(group, index)

    def append_many(self, pendings: Sequence[PendingRecord]) -> list[int]:
        """Store several records durably, in order, with consecutive seqs; returns them once committed."""
        if not pendings:
            return []
        group, index, _ = self._enqueue(pendings)
        self._wait(group)
        first = self._result(group, index)
        return list(range(first, first + len(pendings)))

    async def append_async(self, pending: PendingRecord) -> int:
        """`append` for asyncio: awaits the group commit without blocking the event loop."""
        group, index, fut = self._enqueue((pending,), asyncio.get_running_loop())
        assert fut is not None
        await fut
        return self._result(group, index)

    def _committer(self) -> None:
        group: _Group | None = None
        try:
            while True:
                with self._mutex:
                    while not self._current.records and not self._closed:
                        self._wakeup.wait()
                    if not self._current.records and self._closed:
                        return
                    delay = 0.0 if self._closed else self.commit_delay_s
                if delay > 0:  # let the rest of a burst (a decode step finishes many answers at once) join
                    time.sleep(delay)
                with self._mutex:
                    group = self._current
                    self._current = _Group()
                self._commit_group(group)
                group = None
        except BaseException as e:  # the thread is going away: fail every waiter instead of hanging them
            logger.critical("record store committer died: %r; appends now raise", e)
            with self._mutex:
                self._dead = e
                failed = [g for g in (group, self._current) if g is not None]
                self._current = _Group()
            for g in failed:
                if not g.done.is_set():
                    g.error = StoreDeadError(f"the committer thread died ({e!r}); this record was not stored; "
                                             "restart the process")
                    self._release(g)

    def _release(self, group: _Group) -> None:
        with self._mutex:
            group.done.set()
            waiters = list(group.async_waiters.items())
        for loop, futs in waiters:
            with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, futs)

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
            self._used = disk_usage(self.path, self._read, self._read_lock)
            self._free, self._free_at = free_bytes(self.path), time.monotonic()
        self._release(group)

    # --- reads ---------------------------------------------------------------------------------------------

    def next_seq(self) -> int:
        """The seq the next committed record will get (= number of records stored)."""
        if not self.appender:
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
        """The record with this seq (from the payload of its batch once pruned); `RecordNotFoundError` if none."""
        check_int(seq, "seq")
        with self._read_lock:
            row = self._read.execute("SELECT seq, ctx_id, body FROM records WHERE seq = ?", (seq,)).fetchone()
        if row is not None:
            return self._row_to_record(row)
        batch = self.batch_of(seq)
        if batch is not None and batch.pruned:
            from attribution.records.payload import record_at  # the payload codec is only needed for pruned records

            payload = self.batch_payload(batch.batch_id)
            if payload is not None:
                return record_at(payload, seq - batch.first_seq)
        raise RecordNotFoundError(f"no record with seq {seq}; this store holds seqs [0, {self.next_seq()})")

    def range(self, start: int, end: int) -> list[Record]:
        """Records with `start <= seq < end`, in seq order (only the rows stored: pruned ones are left out)."""
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

    def columns(self, start: int, end: int) -> RecordColumns:
        """Records `[start, end)` as `RecordColumns`, straight from the rows (no `Record` objects: the sealing path).

        All of them must be stored (not pruned) and share one chainId and ledger; else `BatchError`.
        """
        check_int(start, "start")
        check_int(end, "end")
        if end <= start:
            raise BatchError(f"empty range [{start}, {end})")
        with self._read_lock:
            rows = self._read.execute("SELECT ctx_id, body FROM records WHERE seq >= ? AND seq < ? ORDER BY seq",
                                      (start, end)).fetchall()
        if len(rows) != end - start:
            raise BatchError(f"records [{start}, {end}) are not all stored ({len(rows)} found); seal only stored, "
                             "unpruned records")
        ctx = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        body = np.frombuffer(b"".join(r[1] for r in rows), _BODY_DTYPE)
        used = np.unique(ctx)
        if int(used.max()) >= len(self._contexts):
            self._load_contexts()
        keys = [self._contexts[int(c)] for c in used]
        domains = {(k[0], k[1]) for k in keys}
        if len(domains) != 1:
            raise BatchError(f"records [{start}, {end}) span {len(domains)} (chainId, ledger) pairs; a batch holds "
                             "one: cut the batch where the deployment changed")
        chain_id, ledger = next(iter(domains))
        remap = np.zeros(int(used.max()) + 1, np.int64)
        remap[used] = np.arange(len(used))
        return RecordColumns(
            chain_id, ledger, self.node, tuple(Profile(k[2], k[3], k[4], k[5]) for k in keys),
            seqs=np.arange(start, end, dtype=np.uint64), profile_idx=remap[ctx],
            prompt_tokens=body["pt"], completion_tokens=body["ct"], timestamps=body["ts"],
            io_hashes=body["io"])

    def domain_of(self, seq: int) -> tuple[int, bytes]:
        """(chainId, ledger) of a stored record, cheaply (for cutting batches where a deployment changed)."""
        with self._read_lock:
            row = self._read.execute("SELECT ctx_id FROM records WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise RecordNotFoundError(f"no stored record with seq {seq}")
        if row[0] >= len(self._contexts):
            self._load_contexts()
        key = self._contexts[row[0]]
        return key[0], key[1]

    def domain_end(self, start: int, end: int) -> int:
        """The first seq in `[start, end)` whose (chainId, ledger) differs from `start`'s, or `end`."""
        if end <= start:
            return end
        chain_id, ledger = self.domain_of(start)
        with self._ctx_lock:
            same = [i for i, k in enumerate(self._contexts) if k[0] == chain_id and k[1] == ledger]
        marks = ",".join("?" * len(same))
        with self._read_lock:
            row = self._read.execute(
                f"SELECT MIN(seq) FROM records WHERE seq > ? AND seq < ? AND ctx_id NOT IN ({marks})",
                (start, end, *same)).fetchone()
        return end if row[0] is None else int(row[0])

    # --- batches and retention (the batch log's) ---------------------------------------------------------------

    def last_batch(self) -> Batch | None:
        """The batch with the highest first seq, or None."""
        return self.batch_log.last_batch()

    def create_batch(self, first_seq: int, count: int, root: bytes | None = None,
                     payload: bytes | None = None) -> Batch:
        """Seal `[first_seq, first_seq + count)` as a new batch (`BatchLog.create_batch`)."""
        return self.batch_log.create_batch(first_seq, count, root, payload)

    def get_batch(self, batch_id: int) -> Batch:
        """The batch with this local id; `BatchError` if none."""
        return self.batch_log.get_batch(batch_id)

    def batch_payload(self, batch_id: int) -> bytes | None:
        """The `LLB2` payload of a batch (from the database or its archive file), or None if none was kept."""
        return self.batch_log.batch_payload(batch_id)

    def set_batch_state(self, batch_id: int, state: str, **fields: Any) -> Batch:
        """Move a batch forward, recording what the step produced (`BatchLog.set_batch_state`)."""
        return self.batch_log.set_batch_state(batch_id, state, **fields)

    def batch_of(self, seq: int) -> Batch | None:
        """The batch that holds `seq`, or None while the record is not yet in a batch."""
        return self.batch_log.batch_of(seq)

    def batches(self, state: str | None = None) -> list[Batch]:
        """All batches (optionally only those in `state`), by first seq."""
        return self.batch_log.batches(state)

    def batch_counts(self) -> dict[str, int]:
        """Number of batches in each state (every state present, 0 when none)."""
        return self.batch_log.batch_counts()

    def unbatched_start(self) -> int:
        """The first seq not in any batch (where the next batch starts)."""
        return self.batch_log.unbatched_start()

    def unseal_from(self, batch_id: int) -> int:
        """Delete batch `batch_id` and every later (still sealed) batch; returns how many (`BatchLog.unseal_from`)."""
        return self.batch_log.unseal_from(batch_id)

    def prune(self, retention_s: float = 0.0, *, limit: int = 64) -> int:
        """Delete the record rows of `final` batches older than `retention_s` (`BatchLog.prune`); returns rows
        deleted. The disk bound then counts the space they freed."""
        deleted = self.batch_log.prune(retention_s, limit=limit)
        if deleted:
            self._used = disk_usage(self.path, self._read, self._read_lock)
        return deleted

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
            release_lock(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(futs: list[asyncio.Future[int]]) -> None:
    for fut in futs:
        if not fut.done():  # a cancelled caller's future is done already
            fut.set_result(0)


_BODY_DTYPE = np.dtype([("pt", ">u4"), ("ct", ">u4"), ("ts", ">u8"), ("io", "u1", (32,))])
