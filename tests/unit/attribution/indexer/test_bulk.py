"""The bulk record writers (SQLite: one INSERT ... SELECT over column blobs; PostgreSQL: binary COPY) store exactly
what the row path stores, edge values included, on a real SQLite file and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from attribution.indexer.bulk import RecordRows, insert_bulk, insert_rows
from attribution.indexer.db import open_engine
from attribution.indexer.schema import batches, records

I64 = 2**63 - 1


def _rows(node: bytes, batch_id: int, first_seq: int, n: int, seed: int) -> RecordRows:
    rng = np.random.default_rng(seed)
    profile = rng.integers(0, I64, n, dtype=np.int64)
    profile[:3] = [0, I64, 9][:n]  # widest and narrowest decimal widths in one column
    stamps = rng.integers(0, I64, n, dtype=np.int64)
    stamps[0] = I64
    return RecordRows(node, batch_id, first_seq, profile, rng.integers(0, 2**32, n, dtype=np.int64),
                      np.zeros(n, np.int64), stamps, rng.integers(0, 256, (n, 32), dtype=np.uint8),
                      rng.integers(0, 256, (n, 32), dtype=np.uint8), rng.permutation(n).astype(np.int64) + n - 1)


def _batch_row(batch_id: int, node: bytes, first_seq: int, n: int) -> dict[str, object]:
    return {"batch_id": batch_id, "node": node, "root": bytes(32), "first_seq": first_seq, "count": n,
            "da_commitment": b"c", "posted_at": 0, "block_number": batch_id, "block_hash": bytes(32),
            "tx_hash": bytes(32), "log_index": 0}


def _stored(url: str, write: object) -> list[tuple[object, ...]]:
    engine = open_engine(url)
    parts = [(bytes([1]) * 20, 1, 0, 1), (bytes([1]) * 20, 2, 1, 3000), (bytes([2]) * 20, 3, I64 - 4, 5)]
    with engine.begin() as conn:
        for node, batch_id, first, n in parts:
            conn.execute(sa.insert(batches).values(**_batch_row(batch_id, node, first, n)))
            write(conn, _rows(node, batch_id, first, n, seed=batch_id))  # type: ignore[operator]
    with engine.connect() as conn:
        out = [tuple(bytes(x) if isinstance(x, memoryview) else x for x in row)
               for row in conn.execute(sa.select(records).order_by(records.c.node, records.c.seq))]
    engine.dispose()
    return out


def test_bulk_writes_equal_the_row_path_on_sqlite(tmp_path: object) -> None:
    bulk = _stored(f"{tmp_path}/bulk.db", insert_bulk)
    assert len(bulk) == 3006
    assert bulk == _stored(f"{tmp_path}/rows.db", insert_rows)
    assert bulk[-1][1] == I64 and {0, I64} <= {r[3] for r in bulk}  # seq and profile id at the limits


def test_bulk_writes_equal_the_row_path_on_postgresql(postgres_cluster: object) -> None:
    new = postgres_cluster.new_database  # type: ignore[attr-defined]
    bulk = _stored(new(), insert_bulk)
    assert len(bulk) == 3006 and bulk == _stored(new(), insert_rows)
