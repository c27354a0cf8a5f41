"""Durable, content-addressed blob storage for the DA server.

Layout under the data dir::

    blobs/<payload keccak hex>.blob   u32 big-endian certificate length ‖ certificate (ABI bytes) ‖ payload
    tmp/                              files being written; emptied on start
    sequence                          the next daSequence (decimal), replaced atomically

A blob file is written to `tmp/`, fsync'd, renamed into `blobs/`, and `blobs/` fsync'd before the put returns: one
rename makes payload and certificate visible together, so a crash at any moment leaves the whole blob or nothing.
Blobs are keyed by the payload keccak, which the certificate carries: that is the index from commitment to blob,
and it survives restarts. All methods block (disk I/O); the server calls them from threads.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from pathlib import Path
from typing import BinaryIO

from attribution.da.errors import DAQuotaExceeded, DAStorageError

logger = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
    """fsync a directory so renames and creations inside it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, parts: list[bytes], tmp_dir: Path) -> None:
    """Write `parts` to `path` atomically: temp file in `tmp_dir`, fsync, rename, fsync the target directory."""
    tmp = tmp_dir / f"{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for part in parts:
            view = memoryview(part)
            while view:
                view = view[os.write(fd, view) :]
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

    def __init__(self, data_dir: Path, quota_bytes: int | None = None) -> None:
        self.data_dir = data_dir
        self.quota_bytes = quota_bytes  # None: no quota (the disk's free space is the only bound)
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
        self.used_bytes = sum(p.stat().st_size for p in self.blob_dir.iterdir() if p.suffix == ".blob")

    def check_quota(self, nbytes: int) -> None:
        """Raise `DAQuotaExceeded` if storing `nbytes` more would pass the quota."""
        if self.quota_bytes is not None and self.used_bytes + nbytes > self.quota_bytes:
            raise DAQuotaExceeded(f"the DA store holds {self.used_bytes} bytes and its quota is {self.quota_bytes}; "
                                  f"a {nbytes}-byte payload does not fit: the operator must raise --quota-bytes or "
                                  "move old blobs to an archive")

    def _recover(self) -> None:
        """Drop what a crash left half-written: temp files (a blob is only visible once renamed into place)."""
        removed = 0
        for tmp in self.tmp_dir.iterdir():
            tmp.unlink(missing_ok=True)
            removed += 1
        if removed:
            logger.warning("removed %d temp file(s) left by an interrupted put", removed)
            fsync_dir(self.tmp_dir)

    def _read_sequence(self) -> int:
        try:
            return int(self._sequence_path.read_text().strip() or "0")
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as e:
            raise DAStorageError(f"DA sequence file {self._sequence_path} is unreadable: {e}; restore it") from e

    def _path(self, payload_keccak: bytes) -> Path:
        return self.blob_dir / f"{payload_keccak.hex()}.blob"

    def allocate_sequence(self) -> int:
        """The next daSequence, persisted before it is returned so it is never handed out twice."""
        with self._lock:
            seq = self._next_sequence
            try:
                write_durably(self._sequence_path, [str(seq + 1).encode()], self.tmp_dir)
            except OSError as e:
                raise DAStorageError(f"cannot persist the DA sequence: {e}; free disk space") from e
            self._next_sequence = seq + 1
            return seq

    def find_certificate(self, payload_keccak: bytes) -> bytes | None:
        """The stored certificate for this payload keccak, or None when the payload is not stored."""
        try:
            with open(self._path(payload_keccak), "rb") as f:
                return _read_exact(f, int.from_bytes(_read_exact(f, 4), "big"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise DAStorageError(f"blob {payload_keccak.hex()} is unreadable: {e}") from e

    def read(self, payload_keccak: bytes) -> tuple[bytes, bytes] | None:
        """`(certificate, payload)` for this payload keccak, or None when it is not stored."""
        try:
            with open(self._path(payload_keccak), "rb") as f:
                certificate = _read_exact(f, int.from_bytes(_read_exact(f, 4), "big"))
                return certificate, f.read()
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise DAStorageError(f"blob {payload_keccak.hex()} is unreadable: {e}") from e

    def write(self, payload_keccak: bytes, payload: bytes, certificate: bytes) -> None:
        """Store certificate and payload in one file, durably; visible only once complete (a payload certified
        again replaces its file)."""
        try:
            replaced = self._path(payload_keccak).stat().st_size
        except FileNotFoundError:
            replaced = 0
        size = 4 + len(certificate) + len(payload) - replaced
        with self._lock:
            self.check_quota(size)
            self.used_bytes += size  # reserved before the write, so concurrent puts cannot pass the quota together
        try:
            write_durably(self._path(payload_keccak), [len(certificate).to_bytes(4, "big"), certificate, payload],
                          self.tmp_dir)
        except OSError as e:
            with self._lock:
                self.used_bytes -= size
            raise DAStorageError(f"cannot store payload {payload_keccak.hex()}: {e}; free disk space") from e

    def count(self) -> int:
        """Number of stored blobs."""
        return sum(1 for p in self.blob_dir.iterdir() if p.suffix == ".blob")


def open_blob(blob_dir: Path, payload_keccak: bytes) -> tuple[BinaryIO, bytes, int] | None:
    """Open a blob for streaming: `(file positioned at the payload, certificate, payload length)`, or None.

    The caller closes the file. Used by GET so a 16 MiB payload is never held in memory whole.
    """
    path = blob_dir / f"{payload_keccak.hex()}.blob"
    try:
        f = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DAStorageError(f"blob {payload_keccak.hex()} is unreadable: {e}") from e
    try:
        certificate = _read_exact(f, int.from_bytes(_read_exact(f, 4), "big"))
        length = os.fstat(f.fileno()).st_size - 4 - len(certificate)
    except (OSError, ValueError) as e:
        f.close()
        raise DAStorageError(f"blob {payload_keccak.hex()} is unreadable: {e}") from e
    return f, certificate, length


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"truncated blob file: wanted {n} bytes, got {len(data)}")
    return data
