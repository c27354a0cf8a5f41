"""Record store: durable appends with group commit, gap-free seqs, disk bound, batches, read-only access."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from attribution.store import (
    BatchError,
    BatchStateError,
    RecordNotFoundError,
    RecordStore,
    StoreClosedError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from tests.unit.attribution.factories import LEDGER, NODE, pending


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = RecordStore(tmp_path / "records.db", NODE)
    yield s
    s.close()


def test_append_get_range_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with RecordStore(path, NODE) as s:
        recs = [pending(prompt_tokens=i) for i in range(5)]
        assert [s.append(r) for r in recs[:2]] == [0, 1]
        assert s.append_many(recs[2:]) == [2, 3, 4]
        assert s.next_seq() == 5
        assert s.get(3) == recs[3].with_seq(3)
        assert [r.seq for r in s.range(1, 4)] == [1, 2, 3]
        assert [r.prompt_tokens for r in s.iter_range(0, 100, chunk=2)] == [0, 1, 2, 3, 4]
        with pytest.raises(RecordNotFoundError, match="seqs \\[0, 5\\)"):
            s.get(5)
    with RecordStore(path, NODE) as s:
        assert s.next_seq() == 5 and s.append(pending()) == 5
        assert s.get(0) == recs[0].with_seq(0)


def test_concurrent_threads_get_gap_free_seqs_of_their_own_records(store: RecordStore) -> None:
    got: dict[int, int] = {}
    lock = threading.Lock()

    def worker(tag: int) -> None:
        for _ in range(100):
            seq = store.append(pending(prompt_tokens=tag))
            with lock:
                got[seq] = tag

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(800))
    assert all(store.get(seq).prompt_tokens == tag for seq, tag in got.items())
    assert store.commits < 800  # appends shared transactions


def test_async_appends_share_commits(store: RecordStore) -> None:
    async def run() -> list[int]:
        return await asyncio.gather(*(store.append_async(pending(prompt_tokens=i)) for i in range(500)))

    seqs = asyncio.run(run())
    assert sorted(seqs) == list(range(500))
    assert [store.get(s).prompt_tokens for s in seqs] == list(range(500))
    assert store.commits < 50


def test_commit_delay_lets_a_burst_share_one_commit(tmp_path: Path) -> None:
    """Appends that arrive one after another (each thread waits for its own commit) share one transaction when the
    committer waits `commit_delay_s` after the first; without the delay the first commits alone."""
    def burst(s: RecordStore) -> list[int]:
        seqs: list[int] = []
        lock = threading.Lock()
        start = threading.Barrier(8)

        def one(i: int) -> None:
            start.wait()
            seq = s.append(pending(prompt_tokens=i))
            with lock:
                seqs.append(seq)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(seqs)

    with RecordStore(tmp_path / "delayed.db", NODE, commit_delay_s=0.2) as s:
        assert burst(s) == list(range(8))
        assert s.commits == 1
        assert sorted(r.prompt_tokens for r in s.range(0, 8)) == list(range(8))
    with pytest.raises(ValueError, match="commit_delay_s"):
        RecordStore(tmp_path / "bad.db", NODE, commit_delay_s=5)


def test_disk_bound_refuses_loudly(tmp_path: Path) -> None:
    with RecordStore(tmp_path / "r.db", NODE, max_bytes=10**9) as probe:
        base = probe.used_bytes
    with RecordStore(tmp_path / "r.db", NODE, max_bytes=base + 64 * 1024) as s:
        stored = 0
        with pytest.raises(StoreFullError, match="max_bytes"):
            for _ in range(10_000):
                s.append(pending())
                stored += 1
        assert 0 < stored < 10_000
        assert s.full_rejections == 1
        assert s.next_seq() == stored  # the refused record got no seq and nothing was dropped silently
        with pytest.raises(StoreFullError):
            s.append_many([pending(), pending()])
        assert s.full_rejections == 3
        assert s.get(stored - 1).seq == stored - 1


def test_one_writer_per_store_and_readonly_readers(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with RecordStore(path, NODE) as s:
        s.append(pending())
        with pytest.raises(StoreLockedError):
            RecordStore(path, NODE)
        with RecordStore(path, readonly=True) as ro:
            assert ro.node == NODE and ro.get(0).seq == 0
            s.append(pending())
            assert ro.next_seq() == 2
            with pytest.raises(StoreReadOnlyError):
                ro.append(pending())
    with pytest.raises(StoreError, match="belongs to node"):
        RecordStore(path, LEDGER)
    with pytest.raises(StoreError, match="no record store"):
        RecordStore(tmp_path / "missing.db", readonly=True)


def test_foreign_node_and_closed(store: RecordStore) -> None:
    with pytest.raises(StoreError, match="this store is"):
        store.append(pending(node=LEDGER))
    store.close()
    with pytest.raises(StoreClosedError):
        store.append(pending())


class _FailingInserts:
    """A write connection whose INSERT fails: a disk fault SQLite cannot be made to produce on demand."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    def close(self) -> None:
        self._conn.close()


def test_failed_commit_gives_no_seq_and_keeps_the_log_gap_free(store: RecordStore) -> None:
    assert store.append(pending()) == 0
    real = store._write
    store._write = _FailingInserts(real)  # type: ignore[assignment]
    with pytest.raises(StoreError, match="not stored"):
        store.append(pending())
    store._write = real
    assert store.append(pending()) == 1


def test_batches_tile_the_log_and_move_forward(store: RecordStore) -> None:
    store.append_many([pending() for _ in range(10)])
    with pytest.raises(BatchError, match="start at seq 0"):
        store.create_batch(1, 3)
    with pytest.raises(BatchError, match="past the stored records"):
        store.create_batch(0, 11)
    b1 = store.create_batch(0, 4, root=b"\x01" * 32)
    assert (b1.state, b1.first_seq, b1.count, b1.root) == ("sealed", 0, 4, b"\x01" * 32)
    with pytest.raises(BatchError, match="start at seq 4"):
        store.create_batch(3, 2)
    b2 = store.create_batch(4, 6)
    b1 = store.set_batch_state(b1.batch_id, "dispersed", commitment=b"\x01\x00\xd0")
    b1 = store.set_batch_state(b1.batch_id, "posted", tx_hash=b"\x02" * 32, onchain_batch_id=7)
    assert (b1.state, b1.commitment, b1.onchain_batch_id, b1.root) == ("posted", b"\x01\x00\xd0", 7, b"\x01" * 32)
    with pytest.raises(BatchStateError, match="cannot go back"):
        store.set_batch_state(b1.batch_id, "sealed")
    with pytest.raises(BatchStateError, match="unknown batch state"):
        store.set_batch_state(b1.batch_id, "lost")
    assert store.batch_of(3) == b1 and store.batch_of(4) == b2 and store.batch_of(10) is None
    assert [b.batch_id for b in store.batches("sealed")] == [b2.batch_id]
    assert store.last_batch() == b2
