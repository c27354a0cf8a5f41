"""The `modelId` hash of a base model's weight files, with a per-user cache so an unchanged model is hashed once.

`modelId` = sha256 over the weight files sorted by name, each contributing ``name || 0x00 || sha256(file bytes)``
(see `inference.model.compute_model_id`). Hashing reads every weight byte (seconds to minutes for a large model),
so the per-file digests are cached in a small JSON file keyed by the file's absolute path and its
``(size, mtime_ns, ctime_ns, inode)``: any write, `touch`, replacement or copy over the file changes one of them
and the file is hashed again. ctime and inode cannot be set back by a user, so a file replaced by one with the same
size and a restored mtime (``cp -p``, ``touch -d``) is still re-hashed.

Where: ``$LORALEDGER_CACHE_DIR/model-ids.json``, else ``$XDG_CACHE_HOME/loraledger/model-ids.json``, else
``~/.cache/loraledger/model-ids.json``. The model directory itself is never written (it may be read-only or
shared). The cache is only an optimisation: an unreadable or corrupt cache file is ignored (files are hashed),
one that cannot be written is skipped with a debug log, writes are atomic (temp file + rename), and entries for
files that no longer exist are pruned on each write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pathlib
import tempfile
from collections.abc import Sequence
from typing import Any

__all__ = ["CACHE_ENV", "cache_path", "file_sha256", "model_id_of_files"]

logger = logging.getLogger(__name__)

CACHE_ENV = "LORALEDGER_CACHE_DIR"
CACHE_NAME = "model-ids.json"
_VERSION = 1
_CHUNK = 1 << 20


def cache_path() -> pathlib.Path:
    """Where the per-file digests are cached (see the module docstring)."""
    d = os.environ.get(CACHE_ENV)
    if d:
        return pathlib.Path(d) / CACHE_NAME
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg) if xdg else pathlib.Path.home() / ".cache"
    return base / "loraledger" / CACHE_NAME


def file_sha256(path: pathlib.Path) -> bytes:
    """sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.digest()


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read(path: pathlib.Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        logger.debug("model id cache %s unreadable (%s): hashing the weight files", path, e)
        return {}
    if not isinstance(data, dict) or data.get("version") != _VERSION or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _write(path: pathlib.Path, fresh: dict[str, Any]) -> None:
    files = _read(path)  # merge with what other processes wrote meanwhile
    files.update(fresh)
    files = {k: v for k, v in files.items() if os.path.exists(k)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".model-ids-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": _VERSION, "files": files}, f, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as e:
        logger.debug("model id cache %s not written (%s): the next start hashes the files again", path, e)


def model_id_of_files(files: Sequence[pathlib.Path], *, cache: bool = True) -> bytes:
    """sha256 over ``name || 0x00 || sha256(file)`` of `files` (already sorted by name), using the digest cache."""
    where = cache_path() if cache else None
    known = _read(where) if where is not None else {}
    fresh: dict[str, Any] = {}
    outer = hashlib.sha256()
    for f in files:
        key = str(pathlib.Path(f).resolve())
        before = _stamp(os.stat(f))
        hit = known.get(key)
        digest: bytes | None = None
        if isinstance(hit, dict) and hit.get("stat") == before and isinstance(hit.get("sha256"), str):
            with contextlib.suppress(ValueError):
                digest = bytes.fromhex(hit["sha256"])
        if digest is None or len(digest) != 32:
            digest = file_sha256(f)
            if _stamp(os.stat(f)) == before:  # not written while we read it: the digest belongs to this stamp
                fresh[key] = {"stat": before, "sha256": digest.hex()}
        outer.update(f.name.encode() + b"\x00" + digest)
    if where is not None and fresh:
        _write(where, fresh)
    return outer.digest()
