"""Writing a verified batch's records fast, and deferring the secondary indexes of `records` while far behind.

The row path (`sa.insert(records)` with one dict per record) is the reference: simple, dialect-neutral, and what a
test compares the bulk path with. The bulk path builds the rows column-wise from the decoded payload's numpy
arrays and hands them to the driver in one call, with no Python object made per record: SQLite gets one
`INSERT ... SELECT` whose parameters are whole columns (hashes joined, integers as fixed-width decimal digits) cut
into rows by a recursive CTE inside SQLite, one `sqlite3_step` with the GIL released, about twice as fast as
`executemany` of tuples; PostgreSQL gets one binary `COPY` whose rows are laid out by a numpy structured array
(every column has a fixed width).

Deferred indexes: maintaining `ix_records_profile` and `ix_records_timestamp` row by row while a million records
arrive costs more than building them once from sorted data. When a round has many records to verify, the
follower drops them, writes, and creates them again at the end of the round. The drop and the `CREATE INDEX`
statements that bring them back are written to `meta` in one transaction, and the re-creation and the removal of
that key are one transaction too: a kill at any point leaves either the indexes or the statements to rebuild
them. `db.migrate` runs those statements before any migration (a migration always sees the schema its revision
expects), and the next follower round finishes the job otherwise. The primary key stays: it keeps `(node, seq)`
unique and serves record look-ups and the per-batch deletes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex, DropIndex

from attribution.indexer.schema import meta, records

__all__ = ["RecordRows", "insert_rows", "insert_bulk", "defer_indexes", "restore_indexes", "deferred_indexes",
           "DEFER_INDEXES_KEY"]

log = logging.getLogger(__name__)

#: meta key holding the JSON list of `CREATE INDEX` statements of the indexes dropped for a catch-up.
DEFER_INDEXES_KEY = "deferred_indexes"

_COLUMNS = ("node", "seq", "batch_id", "profile_id", "prompt_tokens", "completion_tokens", "timestamp", "io_hash",
            "leaf", "tree_index")
_DIGIT_COLUMNS = ("profile_id", "prompt_tokens", "completion_tokens", "timestamp", "tree_index")


@dataclass(frozen=True)
class RecordRows:
    """The records of one batch, column-wise (all arrays `[count]`, hashes `[count, 32]` uint8)."""

    node: bytes
    batch_id: int
    first_seq: int
    profile_id: np.ndarray  # int64
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    timestamp: np.ndarray  # int64 (checked to fit)
    io_hash: np.ndarray  # [count, 32] uint8
    leaf: np.ndarray  # [count, 32] uint8
    tree_index: np.ndarray  # int64

    @classmethod
    def of(cls, node: bytes, batch_id: int, first_seq: int, profile_ids: Sequence[int], profile_idx: np.ndarray,
           prompt_tokens: np.ndarray, completion_tokens: np.ndarray, timestamps: np.ndarray, io_hashes: np.ndarray,
           tree: bytes, tree_indices: Sequence[int]) -> RecordRows:
        """Gather the columns: profile ids by each record's profile index, leaves from the tree array."""
        ti = np.asarray(tree_indices, dtype=np.int64)
        nodes = np.frombuffer(tree, dtype=np.uint8).reshape(-1, 32)
        return cls(node, batch_id, first_seq, np.asarray(profile_ids, dtype=np.int64)[np.asarray(profile_idx)],
                   np.asarray(prompt_tokens, dtype=np.int64), np.asarray(completion_tokens, dtype=np.int64),
                   np.asarray(timestamps).astype(np.int64), np.ascontiguousarray(io_hashes, dtype=np.uint8),
                   nodes[ti], ti)

    def __len__(self) -> int:
        return len(self.tree_index)

    def dicts(self) -> list[dict[str, Any]]:
        """One dict per record: the row path's parameters."""
        io, lf = self.io_hash.tobytes(), self.leaf.tobytes()
        return [{"node": self.node, "seq": self.first_seq + i, "batch_id": self.batch_id, "profile_id": pid,
                 "prompt_tokens": pt, "completion_tokens": ct, "timestamp": ts, "io_hash": io[32 * i: 32 * i + 32],
                 "leaf": lf[32 * i: 32 * i + 32], "tree_index": ti}
                for i, (pid, pt, ct, ts, ti) in enumerate(zip(
                    self.profile_id.tolist(), self.prompt_tokens.tolist(), self.completion_tokens.tolist(),
                    self.timestamp.tolist(), self.tree_index.tolist(), strict=True))]

    def sqlite_params(self) -> dict[str, Any]:
        """The parameters of `_SQLITE_INSERT`: every column of the batch as one blob (integers as fixed-width
        decimal digits with their width in `w_<column>`, hashes joined), so no Python object is made per record."""
        params: dict[str, Any] = {"n": len(self), "node": self.node, "first": self.first_seq, "batch": self.batch_id,
                                  "io_hash": self.io_hash.tobytes(), "leaf": self.leaf.tobytes()}
        for name in _DIGIT_COLUMNS:
            params[name], params[f"w_{name}"] = _digits(getattr(self, name))
        return params

    def pgcopy(self) -> bytes:
        """The rows in PostgreSQL's binary COPY format (header, rows, trailer)."""
        n = len(self)
        fields: list[tuple[str, Any]] = [("nfields", ">i2")]
        widths = {"node": 20, "io_hash": 32, "leaf": 32}
        for name in _COLUMNS:
            fields += [(f"{name}_len", ">i4"), (name, f"V{widths[name]}" if name in widths else ">i8")]
        rows = np.zeros(n, dtype=np.dtype(fields))
        rows["nfields"] = len(_COLUMNS)
        for name in _COLUMNS:
            rows[f"{name}_len"] = widths.get(name, 8)
        rows["node"] = np.frombuffer(self.node, dtype="V20")[0]
        rows["seq"] = np.arange(self.first_seq, self.first_seq + n, dtype=np.int64)
        rows["batch_id"] = self.batch_id
        for name in ("profile_id", "prompt_tokens", "completion_tokens", "timestamp", "tree_index"):
            rows[name] = getattr(self, name)
        rows["io_hash"] = self.io_hash.view("V32").reshape(n)
        rows["leaf"] = self.leaf.view("V32").reshape(n)
        return b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + b"\xff\xff"


_POW10 = 10 ** np.arange(18, -1, -1, dtype=np.int64)


def _digits(values: np.ndarray) -> tuple[bytes, int]:
    """Non-negative int64s as one blob of fixed-width ASCII decimals, and the width (the largest value's digits:
    at most 19 for 2**63 - 1)."""
    v = np.asarray(values, dtype=np.int64)
    width = len(str(int(v.max()))) if len(v) else 1
    return ((v[:, None] // _POW10[19 - width:]) % 10 + 48).astype(np.uint8).tobytes(), width


def _sqlite_insert() -> str:
    """One INSERT ... SELECT that cuts every row out of the column blobs of `RecordRows.sqlite_params`: a
    recursive CTE counts k = 0..n-1, `substr` of a blob is O(1), and `CAST` of decimal digits gives the INTEGER
    the row path stores. The whole batch is one `sqlite3_step`, run with the GIL released."""
    exprs = []
    for name in _COLUMNS:
        if name == "node":
            exprs.append(":node")
        elif name == "seq":
            exprs.append(":first + k")
        elif name == "batch_id":
            exprs.append(":batch")
        elif name in ("io_hash", "leaf"):
            exprs.append(f"substr(:{name}, 32 * k + 1, 32)")
        else:
            exprs.append(f"CAST(substr(:{name}, :w_{name} * k + 1, :w_{name}) AS INTEGER)")
    # INSERT first: Python's sqlite3 opens its implicit transaction only for statements that start with it
    return (f"INSERT INTO records ({', '.join(_COLUMNS)}) WITH RECURSIVE i(k) AS (SELECT 0 UNION ALL "
            f"SELECT k + 1 FROM i WHERE k + 1 < :n) SELECT {', '.join(exprs)} FROM i")


_SQLITE_INSERT = _sqlite_insert()


def insert_rows(conn: Connection, rows: RecordRows) -> None:
    """The row path: SQLAlchemy Core `insert` with one dict per record."""
    conn.execute(sa.insert(records), rows.dicts())


def insert_bulk(conn: Connection, rows: RecordRows) -> None:
    """The bulk path: one `INSERT ... SELECT` over column blobs on SQLite, binary `COPY` on PostgreSQL (else the
    row path)."""
    raw: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        if len(rows):
            cur = raw.cursor()
            try:
                cur.execute(_SQLITE_INSERT, rows.sqlite_params())
            finally:
                cur.close()
    elif conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY records ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(rows.pgcopy())
    else:
        insert_rows(conn, rows)


def _deferrable() -> list[sa.Index]:
    return sorted(records.indexes, key=lambda ix: str(ix.name))


def deferred_indexes(conn: Connection) -> list[str]:
    """The `CREATE INDEX` statements of indexes dropped for a catch-up and not yet rebuilt (empty: none)."""
    if not sa.inspect(conn).has_table(meta.name):
        return []
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == DEFER_INDEXES_KEY)).scalar()
    return [] if value is None else list(json.loads(value))


def defer_indexes(conn: Connection) -> list[str]:
    """Drop the secondary indexes of `records`, remembering how to rebuild them; returns their names."""
    if deferred_indexes(conn):
        return []
    indexes = _deferrable()
    ddl = [str(CreateIndex(ix, if_not_exists=True).compile(dialect=conn.dialect)) for ix in indexes]
    conn.execute(sa.insert(meta).values(key=DEFER_INDEXES_KEY, value=json.dumps(ddl)))
    for ix in indexes:
        conn.execute(DropIndex(ix, if_exists=True))
    names = [str(ix.name) for ix in indexes]
    log.info("deferred indexes %s for the catch-up", ", ".join(names))
    return names


def restore_indexes(conn: Connection) -> int:
    """Rebuild the indexes `defer_indexes` dropped (no-op when none are); returns how many statements ran."""
    ddl = deferred_indexes(conn)
    if ddl and conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")  # sort in memory (default 64MB)
    for stmt in ddl:
        conn.exec_driver_sql(stmt)
    if ddl:
        conn.execute(sa.delete(meta).where(meta.c.key == DEFER_INDEXES_KEY))
        log.info("rebuilt %d deferred indexes", len(ddl))
    return len(ddl)
