"""The content-addressed, read-only copies of adapters that an engine loads.

The node checks an adapter's content hash (against the AssetRegistry) on the files it was pointed at; those files
may change afterwards (an operator edits them, a sync tool rewrites them), and an engine may read them again much
later (ours after an eviction, vLLM on first use). So the engine loads a copy instead: `ContentStore.put` copies the
two adapter files into ``<root>/<content hash hex>/``, hashes the copy, refuses it when the hash is not the one
checked (`AdapterContentChanged`), and makes files and directory read-only. A copy is shared by every add of the
same content and removed with `drop` when the engine no longer serves it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import stat
import tempfile
import threading

from inference.adapters.identity import CONFIG_NAME, WEIGHTS_NAME, adapter_id_of, weights_path
from inference.api import AdapterContentChanged

__all__ = ["ContentStore"]

_READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_READ_ONLY_DIR = _READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


class ContentStore:
    """``<root>/<content hash hex>/`` holds one adapter's config and safetensors file, read-only."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = pathlib.Path(root)
        self._lock = threading.Lock()

    def path_of(self, content_hash: bytes) -> pathlib.Path:
        """Where the copy of `content_hash` lives (whether or not it exists)."""
        return self.root / content_hash.hex()

    def put(self, src: pathlib.Path, content_hash: bytes) -> pathlib.Path:
        """The read-only copy of the adapter directory `src`, whose files must hash to `content_hash`."""
        dest = self.path_of(content_hash)
        with self._lock:
            if dest.is_dir() and adapter_id_of(dest) == content_hash:
                return dest
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{content_hash.hex()[:16]}-", dir=self.root))
            try:
                shutil.copyfile(src / CONFIG_NAME, tmp / CONFIG_NAME)
                shutil.copyfile(weights_path(src), tmp / WEIGHTS_NAME)
                got = adapter_id_of(tmp)
                if got != content_hash:
                    raise AdapterContentChanged(
                        f"the files of {src} changed after their content hash was checked (checked 0x"
                        f"{content_hash.hex()}, now 0x{got.hex()}): add the adapter again so the new files are "
                        "checked", adapter=str(src))
                for f in tmp.iterdir():
                    f.chmod(_READ_ONLY_FILE)
                if dest.exists():  # a damaged copy (hash mismatch): replace it
                    _remove(dest)
                tmp.chmod(_READ_ONLY_DIR)
                tmp.rename(dest)
            except BaseException:
                _remove(tmp)
                raise
        return dest

    def drop(self, content_hash: bytes) -> None:
        """Remove the copy of `content_hash` (nothing if there is none)."""
        with self._lock:
            _remove(self.path_of(content_hash))


def _remove(path: pathlib.Path) -> None:
    if not path.exists():
        return
    path.chmod(0o700)  # a read-only directory's entries cannot be unlinked
    shutil.rmtree(path, ignore_errors=True)
