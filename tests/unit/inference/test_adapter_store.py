"""The content-addressed, read-only adapter copies an engine loads (`inference.adapters.store.ContentStore`)."""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

import pytest

from inference.adapters.identity import WEIGHTS_NAME, adapter_id_of
from inference.adapters.store import ContentStore
from inference.api import AdapterContentChanged


def test_put_copies_read_only_under_the_hash(tiny_adapters: list[pathlib.Path], tmp_path: pathlib.Path) -> None:
    store = ContentStore(tmp_path / "store")
    src = tiny_adapters[0]
    h = adapter_id_of(src)
    copy = store.put(src, h)
    assert copy == tmp_path / "store" / h.hex() and adapter_id_of(copy) == h
    assert all(not (f.stat().st_mode & 0o222) for f in copy.iterdir()) and not (copy.stat().st_mode & 0o222)
    assert store.put(src, h) == copy  # the same content again: the same copy
    store.drop(h)
    assert not copy.exists()


def test_changed_files_are_refused(tiny_adapters: list[pathlib.Path], tmp_path: pathlib.Path) -> None:
    """The hash the node checked is not the hash of the files now: nothing is stored."""
    src = tmp_path / "src"
    shutil.copytree(tiny_adapters[1], src)
    checked = adapter_id_of(src)
    data = bytearray((src / WEIGHTS_NAME).read_bytes())
    data[-1] ^= 1
    (src / WEIGHTS_NAME).write_bytes(bytes(data))
    store = ContentStore(tmp_path / "store")
    with pytest.raises(AdapterContentChanged, match="changed after their content hash was checked"):
        store.put(src, checked)
    assert not store.path_of(checked).exists()
    assert list((tmp_path / "store").iterdir()) == []  # no temporary copy left behind


def test_embedded_engine_serves_the_copy(tiny_base_dir: pathlib.Path, tiny_adapters: list[pathlib.Path],
                                         tmp_path: pathlib.Path) -> None:
    """Through the seam: `build_engine` -> our engine; an added adapter is served from its copy, and removing it
    removes the copy; a serving engine keeps no per-forward statistics."""
    from inference import build_engine
    from inference.api import EngineSpec, GenerationRequest

    eng: Any = build_engine(EngineSpec(model_dir=tiny_base_dir, adapter_store=tmp_path / "store", max_batch=4,
                                       max_seq_len=128))
    assert eng.backend == "loraledger" and not eng.ready
    eng.start()
    try:
        src = tiny_adapters[2]
        h = adapter_id_of(src)
        eng.add_adapter(h, src, "a2")
        info = eng.adapter_info(h)
        assert info is not None and info.path == tmp_path / "store" / h.hex() and eng.ready
        c = eng.submit(GenerationRequest(prompt="x", adapter=h, max_tokens=3, ignore_eos=True)).result(120)
        assert c.usage.adapter_id == h and c.usage.completion_tokens == 3
        assert eng.stats().running == 0 and eng.engine.prefill_shapes is None
        eng.remove_adapter(h)
        assert eng.adapter_info(h) is None and not (tmp_path / "store" / h.hex()).exists()
    finally:
        eng.stop()
    assert not eng.ready and eng.status == "stopped"
