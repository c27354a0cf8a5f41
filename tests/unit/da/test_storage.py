"""Durable blob store: atomic visibility, recovery after a crash, durable daSequence."""

from __future__ import annotations

from pathlib import Path

from attribution.da.codec import keccak256
from attribution.da.storage import BlobStore


def test_write_find_read(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    key = keccak256(b"payload")
    assert store.find_certificate(key) is None
    store.write(key, b"payload", b"cert")
    assert store.find_certificate(key) == b"cert"
    assert store.read_payload(key) == b"payload"
    assert store.count() == 1
    assert list(store.tmp_dir.iterdir()) == []


def test_recovery_drops_partial_puts(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    done, half = keccak256(b"done"), keccak256(b"half")
    store.write(done, b"done", b"cert-done")
    # a crash after the payload rename but before the certificate landed, plus a leftover temp file
    (store.blob_dir / half.hex()).write_bytes(b"half")
    (store.tmp_dir / "x.tmp").write_bytes(b"partial")
    reopened = BlobStore(tmp_path)
    assert reopened.find_certificate(half) is None
    assert not (reopened.blob_dir / half.hex()).exists()
    assert list(reopened.tmp_dir.iterdir()) == []
    assert reopened.read_payload(done) == b"done"


def test_sequence_is_durable_and_monotonic(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    assert [store.allocate_sequence() for _ in range(3)] == [0, 1, 2]
    assert BlobStore(tmp_path).allocate_sequence() == 3
