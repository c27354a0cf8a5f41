"""Durable blob store: atomic visibility, recovery after a crash, durable daSequence."""

from __future__ import annotations

from pathlib import Path

import pytest

from attribution.da.errors import DAStorageError
from attribution.da.storage import BlobStore
from attribution.hashing import keccak256


def test_write_find_read(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    key = keccak256(b"payload")
    assert store.find_certificate(key) is None
    assert store.read(key) is None
    store.write(key, b"payload", b"cert")
    assert store.find_certificate(key) == b"cert"
    assert store.read(key) == (b"cert", b"payload")
    assert store.count() == 1
    assert list(store.tmp_dir.iterdir()) == []
    assert (store.blob_dir / f"{key.hex()}.blob").read_bytes() == b"\x00\x00\x00\x04certpayload"


def test_empty_payload(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    store.write(keccak256(b""), b"", b"c")
    assert store.read(keccak256(b"")) == (b"c", b"")


def test_recovery_drops_temp_files(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    done = keccak256(b"done")
    store.write(done, b"done", b"cert-done")
    # a crash mid-write leaves only a temp file, never a visible blob
    (store.tmp_dir / f"{keccak256(b'half').hex()}.blob.123.tmp").write_bytes(b"\x00\x00\x00\x09cert-half" + b"ha")
    reopened = BlobStore(tmp_path)
    assert list(reopened.tmp_dir.iterdir()) == []
    assert reopened.find_certificate(keccak256(b"half")) is None
    assert reopened.read(done) == (b"cert-done", b"done")


def test_truncated_blob_file_is_a_storage_error(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    key = keccak256(b"x")
    (store.blob_dir / f"{key.hex()}.blob").write_bytes(b"\x00\x00\x00\x10short")
    with pytest.raises(DAStorageError, match="truncated"):
        store.read(key)


def test_sequence_is_durable_and_monotonic(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    assert [store.allocate_sequence() for _ in range(3)] == [0, 1, 2]
    assert BlobStore(tmp_path).allocate_sequence() == 3
