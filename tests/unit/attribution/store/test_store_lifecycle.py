"""Record store lifecycle: type checks at the API, a dead committer, real free space, pruning, columnar reads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attribution.records import PendingRecord
from attribution.records.payload import encode_batch
from attribution.records.tree import record_tree
from attribution.store import (
    BatchStateError,
    RecordStore,
    StoreDeadError,
    StoreFullError,
    StoreTypeError,
)
from attribution.store.schema import disk_usage, free_bytes
from tests.unit.attribution.factories import CHAIN_ID, LEDGER, NODE, pending, random_records


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = RecordStore(tmp_path / "records.db", NODE)
    yield s
    s.close()


def _readable(path: Path) -> None:
    """Everything a reader does still works (a fresh read-only open included)."""
    with RecordStore(path, readonly=True) as ro:
        ro.batches()
        ro.last_batch()
        for seq in range(ro.next_seq()):
            ro.batch_of(seq)
            ro.get(seq)


HEX_ROOT = "0x" + "ab" * 32


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"root": HEX_ROOT}, "root must be raw bytes, got a str"),
    ({"root": b"\x01" * 31}, "root must be 32 bytes"),
    ({"root": 5}, "root must be bytes"),
    ({"payload": "LLB2"}, "payload must be raw bytes"),
    ({"first_seq": "0"}, "first_seq must be an int"),
    ({"first_seq": 0.0}, "first_seq must be an int"),
    ({"count": True}, "count must be an int"),
])
def test_create_batch_refuses_each_wrong_type_and_stays_readable(store: RecordStore, kwargs: dict[str, Any],
                                                                   match: str) -> None:
    store.append_many([pending() for _ in range(3)])
    args: dict[str, Any] = {"first_seq": 0, "count": 3, "root": b"\x01" * 32, **kwargs}
    with pytest.raises(StoreTypeError, match=match):
        store.create_batch(**args)
    assert store.batches() == []
    _readable(store.path)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"tx_hash": HEX_ROOT}, "tx_hash must be raw bytes, got a str"),
    ({"tx_hash": b"\x02" * 20}, "tx_hash must be 32 bytes"),
    ({"commitment": "0x0100d0"}, "commitment must be raw bytes"),
    ({"root": HEX_ROOT}, "root must be raw bytes"),
    ({"onchain_batch_id": "7"}, "onchain_batch_id must be an int"),
    ({"onchain_batch_id": -1}, "onchain_batch_id must be in"),
    ({"nonce": 1.5}, "nonce must be an int"),
    ({"block_number": b"\x01"}, "block_number must be an int"),
    ({"info": {"fee": object()}}, "info must be JSON"),
    ({"info": ["x"]}, "info must be a mapping"),
])
def test_set_batch_state_refuses_each_wrong_type_and_stays_readable(store: RecordStore, kwargs: dict[str, Any],
                                                                      match: str) -> None:
    store.append_many([pending() for _ in range(3)])
    b = store.create_batch(0, 3, root=b"\x01" * 32)
    with pytest.raises(StoreTypeError, match=match):
        store.set_batch_state(b.batch_id, "posted", **kwargs)
    assert store.get_batch(b.batch_id) == b  # nothing was written
    _readable(store.path)


def test_schema1_file_with_a_hex_root_is_repaired_on_open(tmp_path: Path) -> None:
    """A store written by the old API (hex TEXT root) opens, migrates, and every read works."""
    path = tmp_path / "old.db"
    with RecordStore(path, NODE) as s:
        s.append_many([pending() for _ in range(2)])
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE batches")
    conn.execute("CREATE TABLE batches (batch_id INTEGER PRIMARY KEY AUTOINCREMENT, first_seq INTEGER NOT NULL "
                 "UNIQUE, count INTEGER NOT NULL CHECK (count > 0), state TEXT NOT NULL CHECK (state IN "
                 "('sealed','dispersed','posted','final')), root BLOB, commitment BLOB, tx_hash BLOB, "
                 "onchain_batch_id INTEGER, created_at REAL NOT NULL, updated_at REAL NOT NULL)")
    conn.execute("INSERT INTO batches (first_seq, count, state, root, tx_hash, created_at, updated_at) "
                 "VALUES (0, 2, 'posted', ?, ?, 1, 1)", (HEX_ROOT, "0x" + "cd" * 32))
    conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema'")
    conn.commit()
    conn.close()
    with RecordStore(path, NODE) as s:
        (b,) = s.batches()
        assert b.root == b"\xab" * 32 and b.tx_hash == b"\xcd" * 32 and b.state == "posted"
        assert s.set_batch_state(b.batch_id, "final").state == "final"
    _readable(path)


def test_submitted_state_and_reorg_back_to_dispersed(store: RecordStore) -> None:
    store.append_many([pending() for _ in range(2)])
    b = store.create_batch(0, 2, root=b"\x01" * 32, payload=b"p")
    b = store.set_batch_state(b.batch_id, "dispersed", commitment=b"\x01\x00\xd0")
    b = store.set_batch_state(b.batch_id, "submitted", tx_hash=b"\x02" * 32, nonce=4, info={"tip": 7})
    b = store.set_batch_state(b.batch_id, "posted", block_number=9, onchain_batch_id=3, info={"gas_used": 100})
    assert (b.nonce, b.block_number, b.onchain_batch_id, dict(b.info)) == (4, 9, 3, {"tip": 7, "gas_used": 100})
    b = store.set_batch_state(b.batch_id, "dispersed", reorg=True)
    assert (b.state, b.tx_hash, b.nonce, b.onchain_batch_id, b.commitment) == (
        "dispersed", None, None, None, b"\x01\x00\xd0")
    b = store.set_batch_state(b.batch_id, "final")
    with pytest.raises(BatchStateError, match="reorg only"):
        store.set_batch_state(b.batch_id, "sealed", reorg=True)
    with pytest.raises(BatchStateError, match="cannot go back"):
        store.set_batch_state(b.batch_id, "posted")
    assert store.batch_counts() == {"sealed": 0, "dispersed": 0, "submitted": 0, "posted": 0, "final": 1}


def test_append_raises_when_the_committer_thread_died(store: RecordStore) -> None:
    assert store.append(pending()) == 0
    entered = threading.Event()

    def die(group: Any) -> None:
        entered.set()
        raise SystemExit("simulated thread death")  # a fault the real thread cannot be made to hit on demand

    store._commit_group = die  # type: ignore[method-assign]
    with pytest.raises(StoreDeadError, match="committer thread died"):
        store.append(pending())
    assert entered.is_set()
    with pytest.raises(StoreDeadError, match="restart the process"):
        store.append(pending())
    assert store.get(0).seq == 0


def test_free_space_floor_refuses_and_raises_the_alarm(tmp_path: Path) -> None:
    with RecordStore(tmp_path / "r.db", NODE, min_free_bytes=0) as s:
        s.append(pending())
        assert not s.disk_alarm
        s.min_free_bytes = free_bytes(s.path) + (1 << 40)  # more than this disk has: the real statvfs decides
        s._free_at = 0.0
        with pytest.raises(StoreFullError, match="bytes free of min_free_bytes"):
            s.append(pending())
        assert s.disk_alarm and s.full_rejections == 1 and s.next_seq() == 1
        s.min_free_bytes = 0
        s._free_at = 0.0
        assert s.append(pending()) == 1 and not s.disk_alarm


def _seal(store: RecordStore, first: int, count: int) -> Any:
    cols = store.columns(first, first + count)
    recs = store.range(first, first + count)
    payload = encode_batch(CHAIN_ID, LEDGER, NODE, first, recs)
    root = bytes.fromhex(record_tree(cols).root[2:])
    return store.create_batch(first, count, root=root, payload=payload)


@pytest.mark.parametrize("archive", [False, True])
def test_prune_final_batches_keeps_every_record_readable(tmp_path: Path, archive: bool) -> None:
    path = tmp_path / "r.db"
    with RecordStore(path, NODE, archive_dir=tmp_path / "archive" if archive else None) as s:
        pendings = [pending(prompt_tokens=i) for i in range(30)]
        s.append_many(pendings)
        b1, b2 = _seal(s, 0, 10), _seal(s, 10, 10)
        s.set_batch_state(b1.batch_id, "final")
        s.set_batch_state(b2.batch_id, "posted")
        assert s.prune(retention_s=3600) == 0  # too recent
        assert s.prune(retention_s=0) == 10  # only the final one
        assert s.get_batch(b1.batch_id).pruned and not s.get_batch(b2.batch_id).pruned
        assert s.range(0, 30)[0].seq == 10  # rows of batch 1 are gone ...
        assert [s.get(i) for i in range(30)] == [p.with_seq(i) for i, p in enumerate(pendings)]  # ... not records
        assert s.append(pending()) == 30  # seqs continue
        assert (tmp_path / "archive").exists() == archive
    with RecordStore(path, NODE) as s:
        assert s.next_seq() == 31
        assert s.get(3) == pendings[3].with_seq(3)


def test_prune_frees_pages_for_reuse(tmp_path: Path) -> None:
    with RecordStore(tmp_path / "r.db", NODE) as s:
        s.append_many([pending() for _ in range(3000)])
        b = _seal(s, 0, 3000)
        s.set_batch_state(b.batch_id, "final")
        s._batch_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = disk_usage(s.path, s._read, s._read_lock)
        assert s.prune() == 3000
        assert s.used_bytes < before  # the rows' pages are free for new records: the bound counts them so


def test_columns_match_records_and_refuse_pruned_or_missing(store: RecordStore) -> None:
    recs = random_records(200, seed=3, n_profiles=5)
    store.append_many([PendingRecord(r.chain_id, r.ledger, r.node, r.model_id, r.adapter_id, r.dataset_ids,
                                     r.weights_bps, r.prompt_tokens, r.completion_tokens, r.timestamp, r.io_hash)
                       for r in recs])
    cols = store.columns(20, 170)
    assert list(cols) == recs[20:170]
    assert np.array_equal(cols.seqs, np.arange(20, 170, dtype=np.uint64))
    assert record_tree(cols).root == record_tree(recs[20:170]).root
    with pytest.raises(Exception, match="not all stored"):
        store.columns(150, 250)


def test_columns_refuse_two_deployments_and_domain_end_finds_the_cut(store: RecordStore) -> None:
    other = PendingRecord(CHAIN_ID, b"\x11" * 20, NODE, b"\x01" * 32, b"\x00" * 32, (), (), 1, 1, 1, b"\x02" * 32)
    store.append_many([pending(), pending(), other, pending()])
    with pytest.raises(Exception, match="span 2"):
        store.columns(0, 4)
    assert store.domain_end(0, 4) == 2 and store.domain_end(2, 4) == 3 and store.domain_end(3, 4) == 4




def test_unseal_from_only_touches_sealed_batches(store: RecordStore) -> None:
    store.append_many([pending() for _ in range(6)])
    b1 = store.create_batch(0, 2, root=b"\x01" * 32, payload=b"a")
    b2 = store.create_batch(2, 2, root=b"\x01" * 32, payload=b"b")
    store.create_batch(4, 2, root=b"\x01" * 32, payload=b"c")
    store.set_batch_state(b1.batch_id, "dispersed")
    with pytest.raises(BatchStateError, match="only sealed"):
        store.unseal_from(b1.batch_id)
    assert store.unseal_from(b2.batch_id) == 2
    assert [b.batch_id for b in store.batches()] == [b1.batch_id] and store.unbatched_start() == 2
    assert store.batch_payload(b1.batch_id) == b"a"
