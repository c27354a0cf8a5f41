"""The record store's file: opening a connection, the tables and their schema version, and whose store it is.

A store belongs to one node (`meta.node`); its `schema` is 2 (see `batches.SCHEMA_VERSION`); a schema-1 file is
migrated when it is first opened writable. The record tables are here; the batches' are in `batches`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from pathlib import Path

from attribution.store.batches import SCHEMA_VERSION, create_batch_tables, migrate_v1
from attribution.store.errors import StoreError, StoreLockedError

__all__ = ["connect", "disk_usage", "free_bytes", "init_schema", "meta_node", "node_address", "read_schema",
           "release_lock", "take_lock"]


def node_address(value: bytes | str) -> bytes:
    """A node address as 20 bytes, from bytes or hex; `StoreError` otherwise."""
    b = bytes.fromhex(value[2:] if value.startswith("0x") else value) if isinstance(value, str) else bytes(value)
    if len(b) != 20:
        raise StoreError(f"node address must be 20 bytes, got {len(b)}")
    return b


def connect(path: Path) -> sqlite3.Connection:
    """A writable connection in WAL mode with every commit fsync'd (`synchronous=FULL`): a seq a caller saw is
    never lost."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA journal_size_limit=67108864")  # truncate the WAL after checkpoints: it counts too
    return conn


def init_schema(c: sqlite3.Connection, path: Path, node: bytes | str | None) -> bytes:
    """Create the tables (or migrate a schema-1 file) in one transaction; returns the store's node address.

    A new store needs `node`; an existing one refuses another node's address.
    """
    c.execute("BEGIN IMMEDIATE")
    try:
        fresh = c.execute("SELECT name FROM sqlite_master WHERE name='batches'").fetchone() is None
        c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        # a context is what many records share (chain, ledger, model, adapter, datasets, weights); a record
        # row is its seq, its context and a fixed 48-byte body, so a group commit binds 3 values per record
        c.execute(
            "CREATE TABLE IF NOT EXISTS contexts (ctx_id INTEGER PRIMARY KEY, chain_id INTEGER NOT NULL, "
            "ledger BLOB NOT NULL, model_id BLOB NOT NULL, adapter_id BLOB NOT NULL, dataset_ids BLOB NOT NULL, "
            "weights_bps BLOB NOT NULL)")
        c.execute("CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, ctx_id INTEGER NOT NULL, "
                  "body BLOB NOT NULL)")
        create_batch_tables(c, fresh=fresh)
        row = c.execute("SELECT value FROM meta WHERE key='node'").fetchone()
        if row is None:
            if node is None:
                raise StoreError(f"new store {path} needs node_address")
            owner = node_address(node)
            c.execute("INSERT INTO meta VALUES ('node', ?), ('schema', ?)", (owner, SCHEMA_VERSION))
        else:
            if read_schema(c) < 2:
                migrate_v1(c)
            owner = bytes(row[0])
            if node is not None and node_address(node) != owner:
                raise StoreError(f"store {path} belongs to node 0x{owner.hex()}, not 0x{node_address(node).hex()}; "
                                 "use one store per node")
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return owner


def read_schema(conn: sqlite3.Connection) -> int:
    """The file's schema version (1 when it predates the version row)."""
    row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    return 1 if row is None else int(row[0])


def meta_node(conn: sqlite3.Connection, path: Path) -> bytes:
    """The node address the store at `path` belongs to; `StoreError` when the file is no record store."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='node'").fetchone()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} is not a record store: {e}") from e
    if row is None:
        raise StoreError(f"{path} is not an initialised record store")
    return bytes(row[0])


def take_lock(path: Path) -> int:
    """Lock `<path>.lock` for this process (one appender per store); returns the descriptor to release."""
    fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        os.close(fd)
        raise StoreLockedError(f"{path} is in use by another process; stop it or use readonly=True") from e
    return fd


def release_lock(fd: int | None) -> None:
    """Release a lock from `take_lock` (nothing when `fd` is None)."""
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def free_bytes(path: Path) -> int:
    """Free bytes the file system gives this (unprivileged) process where the store at `path` lives."""
    try:
        st = os.statvfs(path.parent if path.parent.exists() else Path.cwd())
    except OSError:
        return 1 << 62  # unknown: do not refuse on a failed probe; max_bytes still bounds the file
    return int(st.f_bavail) * int(st.f_frsize)


def disk_usage(path: Path, conn: sqlite3.Connection, lock: threading.Lock) -> int:
    """Database + WAL bytes, less the database's free pages (reused before the file grows)."""
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += os.path.getsize(str(path) + suffix)
    with contextlib.suppress(sqlite3.Error), lock:
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        total -= int(free) * int(page)
    return max(0, total)
