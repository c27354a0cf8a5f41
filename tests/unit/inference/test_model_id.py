"""modelId digest cache: an unchanged model directory is hashed once; a touched, rewritten or replaced weight file
is hashed again; a broken cache file is ignored. Reads are counted through `file_sha256`, the only reader."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

from inference import model_id as mid
from inference.model import compute_model_id


@pytest.fixture()
def model_dir(tiny_base_dir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.setenv(mid.CACHE_ENV, str(tmp_path / "cache"))
    d = tmp_path / "model"
    shutil.copytree(tiny_base_dir, d)
    # a second weight file, so that a change to one file must leave the other's cached digest in use
    shutil.copy2(d / "model.safetensors", d / "extra.safetensors")
    return d


@pytest.fixture()
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = mid.file_sha256

    def counting(path: pathlib.Path) -> bytes:
        seen.append(path.name)
        return real(path)

    monkeypatch.setattr(mid, "file_sha256", counting)
    return seen


def test_second_call_reads_no_weights(model_dir: pathlib.Path, reads: list[str]) -> None:
    first = compute_model_id(model_dir)
    assert sorted(reads) == ["extra.safetensors", "model.safetensors"]
    assert mid.cache_path().is_file() and mid.cache_path().parent == pathlib.Path(os.environ[mid.CACHE_ENV])
    reads.clear()
    assert compute_model_id(model_dir) == first
    assert reads == []
    assert compute_model_id(model_dir, cache=False) == first  # the cached id is the real one
    assert sorted(reads) == ["extra.safetensors", "model.safetensors"]
    assert not any(p.name.startswith("model-ids") for p in model_dir.iterdir())  # the model dir is never written


def test_touched_or_modified_file_is_rehashed(model_dir: pathlib.Path, reads: list[str]) -> None:
    first = compute_model_id(model_dir)
    f = model_dir / "model.safetensors"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touch: same bytes
    reads.clear()
    assert compute_model_id(model_dir) == first
    assert reads == ["model.safetensors"]  # only the touched file

    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF  # one weight byte changes (same size)
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with its old mtime restored
    reads.clear()
    changed = compute_model_id(model_dir)
    assert reads == ["model.safetensors"]
    assert changed != first and changed == compute_model_id(model_dir, cache=False)


def test_replaced_file_is_rehashed(model_dir: pathlib.Path, reads: list[str], tmp_path: pathlib.Path) -> None:
    first = compute_model_id(model_dir)
    other = tmp_path / "other.safetensors"
    shutil.copy2(model_dir / "model.safetensors", other)
    data = bytearray(other.read_bytes())
    data[-1] ^= 0xFF
    other.write_bytes(bytes(data))
    st = (model_dir / "extra.safetensors").stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, model_dir / "extra.safetensors")  # same name, size and mtime; a new inode
    reads.clear()
    assert compute_model_id(model_dir) != first
    assert reads == ["extra.safetensors"]


def test_corrupt_or_unwritable_cache_is_ignored(model_dir: pathlib.Path, reads: list[str],
                                                monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    first = compute_model_id(model_dir, cache=False)
    mid.cache_path().parent.mkdir(parents=True, exist_ok=True)
    mid.cache_path().write_text("{not json")
    assert compute_model_id(model_dir) == first
    reads.clear()
    assert compute_model_id(model_dir) == first and reads == []  # the corrupt file was replaced by a good one
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(mid.CACHE_ENV, str(blocker / "sub"))  # cannot be created: the id is still computed
    reads.clear()
    assert compute_model_id(model_dir) == first
    assert len(reads) == 2
