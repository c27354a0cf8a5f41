"""Durable, content-addressed blob storage for the DA server.

Layout under the data dir::

    blobs/<payload keccak hex>        the payload
    blobs/<payload keccak hex>.cert   its certificate (ABI bytes); written last, so it marks the blob visible
    tmp/                              files being written; emptied on start
    sequence                          the next daSequence (decimal), replaced atomically

Every file is written to `tmp/`, fsync'd, renamed into place, and the directory fsync'd before the put returns, so a
crash at any moment leaves either the whole blob with its certificate or nothing visible. Blobs are keyed by the
payload keccak, which the certificate carries: that is the index from commitment to blob, and it survives restarts.
All methods block (disk I/O); the server calls them from threads.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from pathlib import Path

from attribution.da.errors import DAStorageError

logger = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
    """fsync a directory so renames and creations inside it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Write `data` to `path` atomically: temp file in `tmp_dir`, fsync, rename, fsync the target directory."""
    tmp = tmp_dir / f"{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class BlobStore:
    """Payloads and their certificates on disk, keyed by payload keccak; plus the durable daSequence counter."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.blob_dir = data_dir / "blobs"
        self.tmp_dir = data_dir / "tmp"
        self._sequence_path = data_dir / "sequence"
        self._lock = threading.Lock()
        try:
            self.blob_dir.mkdir(parents=True, exist_ok=True)
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DAStorageError(f"cannot create the DA data dir {data_dir}: {e}; check path and permissions") from e
        self._recover()
        self._next_sequence = self._read_sequence()

    def _recover(self) -> None:
        """Drop what a crash left half-written: temp files, and payloads whose certificate never landed."""
        removed = 0
        for tmp in self.tmp_dir.iterdir():
            tmp.unlink(missing_ok=True)
            removed += 1
        for path in self.blob_dir.iterdir():
            if path.suffix == "" and not path.with_suffix(".cert").exists():
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            logger.warning("removed %d partial file(s) left by an interrupted put", removed)
            fsync_dir(self.blob_dir)

    def _read_sequence(self) -> int:
        try:
            return int(self._sequence_path.read_text().strip() or "0")
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as e:
            raise DAStorageError(f"DA sequence file {self._sequence_path} is unreadable: {e}; restore it") from e

    def _paths(self, payload_keccak: bytes) -> tuple[Path, Path]:
        name = payload_keccak.hex()
        return self.blob_dir / name, self.blob_dir / f"{name}.cert"

    def allocate_sequence(self) -> int:
        """The next daSequence, persisted before it is returned so it is never handed out twice."""
        with self._lock:
            seq = self._next_sequence
            try:
                write_durably(self._sequence_path, str(seq + 1).encode(), self.tmp_dir)
            except OSError as e:
                raise DAStorageError(f"cannot persist the DA sequence: {e}; free disk space") from e
            self._next_sequence = seq + 1
            return seq

    def find_certificate(self, payload_keccak: bytes) -> bytes | None:
        """The stored certificate for this payload keccak, or None when the payload is not stored."""
        _, cert_path = self._paths(payload_keccak)
        try:
            return cert_path.read_bytes()
        except FileNotFoundError:
            return None

    def read_payload(self, payload_keccak: bytes) -> bytes:
        """The stored payload; raise `DAStorageError` when its file is missing although its certificate exists."""
        blob_path, _ = self._paths(payload_keccak)
        try:
            return blob_path.read_bytes()
        except OSError as e:
            raise DAStorageError(f"payload {payload_keccak.hex()} is missing from {blob_path}: {e}") from e

    def write(self, payload_keccak: bytes, payload: bytes, certificate: bytes) -> None:
        """Store payload then certificate, each durably; the blob becomes visible only once both are on disk."""
        blob_path, cert_path = self._paths(payload_keccak)
        try:
            write_durably(blob_path, payload, self.tmp_dir)
            write_durably(cert_path, certificate, self.tmp_dir)
        except OSError as e:
            raise DAStorageError(f"cannot store payload {payload_keccak.hex()}: {e}; free disk space") from e

    def count(self) -> int:
        """Number of visible blobs."""
        return sum(1 for p in self.blob_dir.iterdir() if p.suffix == ".cert")
