"""Where adapters come from: one local peft directory, or a catalogue directory holding many of them.

A catalogue is a plain directory whose immediate subdirectories are peft adapter directories (each with
``adapter_config.json`` and ``adapter_model.safetensors``); the subdirectory name is the adapter's name. The
directory is rescanned on every `list()`, so adapters added or removed on disk appear or vanish without a restart.
Lookups accept a name or an adapterId in hex (``0x`` optional). Ids are cached per file size and mtime.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import tempfile
import threading

from inference.adapters.errors import AdapterConfigInvalid, AdapterNotFound
from inference.adapters.identity import CONFIG_NAME, WEIGHTS_NAME, adapter_id_of, parse_id, read_config, weights_path

__all__ = ["NAME_PATTERN", "CatalogueSource", "LocalSource"]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _stamp(d: pathlib.Path) -> tuple[int, int, int, int]:
    c, w = (d / CONFIG_NAME).stat(), (d / WEIGHTS_NAME).stat()
    return c.st_mtime_ns, c.st_size, w.st_mtime_ns, w.st_size


class LocalSource:
    """A single adapter directory, exposed with the same interface as `CatalogueSource`."""

    def __init__(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        self.path = pathlib.Path(path)
        self.name = name or self.path.name
        if not (self.path / CONFIG_NAME).is_file():
            raise AdapterNotFound(f"{self.path} is not a peft adapter directory (no {CONFIG_NAME})",
                                  adapter=str(self.path))

    def list(self) -> dict[str, pathlib.Path]:
        """name -> directory (one entry)."""
        return {self.name: self.path}

    def path_of(self, name_or_id: str) -> pathlib.Path:
        """The directory if `name_or_id` is this adapter's name or id, else `AdapterNotFound`."""
        if name_or_id == self.name:
            return self.path
        want = parse_id(name_or_id)
        if want is not None and want == adapter_id_of(self.path):
            return self.path
        raise AdapterNotFound(f"adapter {name_or_id!r} not found: this source only holds {self.name!r}",
                              adapter=name_or_id)


class CatalogueSource:
    """A directory of peft adapter directories: name -> dir, lookup by name or adapterId, hot add/remove."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False) -> None:
        self.root = pathlib.Path(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        if not self.root.is_dir():
            raise AdapterNotFound(f"adapter catalogue {self.root} does not exist: create it or point the node at "
                                  "a directory of peft adapter directories", adapter=str(self.root))
        self._ids: dict[pathlib.Path, tuple[tuple[int, int, int, int], bytes]] = {}
        self._lock = threading.Lock()

    def list(self) -> dict[str, pathlib.Path]:
        """name -> adapter directory, for every subdirectory holding an adapter_config.json (sorted by name)."""
        out: dict[str, pathlib.Path] = {}
        for p in sorted(self.root.iterdir(), key=lambda p: p.name):
            if p.is_dir() and not p.name.startswith(".") and (p / CONFIG_NAME).is_file():
                out[p.name] = p
        return out

    def __contains__(self, name_or_id: object) -> bool:
        if not isinstance(name_or_id, str):
            return False
        try:
            self.path_of(name_or_id)
        except AdapterNotFound:
            return False
        return True

    def id_of(self, name: str) -> bytes:
        """The adapterId of the adapter called `name` (hashed once per file change)."""
        return self._id_at(self.path_of(name))

    def _id_at(self, d: pathlib.Path) -> bytes:
        weights_path(d)  # names the problem (pickle or missing) before stat() fails
        stamp = _stamp(d)
        with self._lock:
            hit = self._ids.get(d)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        aid = adapter_id_of(d)
        with self._lock:
            self._ids[d] = (stamp, aid)
        return aid

    def ids(self) -> dict[str, bytes]:
        """name -> adapterId for every adapter with a safetensors file (others are skipped; load them for why)."""
        out: dict[str, bytes] = {}
        for name, d in self.list().items():
            if (d / WEIGHTS_NAME).is_file():
                out[name] = self._id_at(d)
        return out

    def path_of(self, name_or_id: str) -> pathlib.Path:
        """The directory of the adapter named `name_or_id`, or whose adapterId is `name_or_id` in hex."""
        if NAME_PATTERN.match(name_or_id):
            d = self.root / name_or_id
            if (d / CONFIG_NAME).is_file():
                return d
        want = parse_id(name_or_id)
        if want is not None:
            for d in self.list().values():
                if (d / WEIGHTS_NAME).is_file() and self._id_at(d) == want:
                    return d
        raise AdapterNotFound(f"adapter {name_or_id!r} is not in catalogue {self.root}: check the name or id "
                              "(`GET /v1/models` lists them) or add the adapter directory there", adapter=name_or_id)

    def add(self, src: str | os.PathLike[str], name: str | None = None, *, overwrite: bool = False) -> pathlib.Path:
        """Copy adapter directory `src` into the catalogue as `name` (atomically: a reader never sees half of it)."""
        s = pathlib.Path(src)
        read_config(s)
        weights_path(s)
        name = name or s.name
        if not NAME_PATTERN.match(name):
            raise AdapterConfigInvalid(f"adapter name {name!r} is invalid: use letters, digits, '.', '_' or '-' "
                                       "(at most 128, not starting with '.', '_' or '-')", adapter=name)
        dest = self.root / name
        if dest.exists() and not overwrite:
            raise AdapterConfigInvalid(f"adapter {name!r} already exists in {self.root}: remove it first or pass "
                                       "overwrite=True", adapter=name)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
        try:
            for f in (CONFIG_NAME, WEIGHTS_NAME):
                shutil.copy2(s / f, tmp / f)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    def remove(self, name_or_id: str) -> pathlib.Path:
        """Delete an adapter directory from the catalogue; returns the path it had."""
        d = self.path_of(name_or_id)
        shutil.rmtree(d)
        with self._lock:
            self._ids.pop(d, None)
        return d
