"""Catalogue and local sources: listing, lookup by name or adapterId, hot add and remove on disk."""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Callable

import pytest

from inference.adapters.errors import AdapterConfigInvalid, AdapterNotFound, AdapterNotSafetensors
from inference.adapters.identity import adapter_id_of
from inference.adapters.source import CatalogueSource, LocalSource

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def catalogue(tmp_path: pathlib.Path, tiny_adapters: list[pathlib.Path]) -> CatalogueSource:
    root = tmp_path / "catalogue"
    root.mkdir()
    for d in tiny_adapters[:4]:
        shutil.copytree(d, root / d.name)
    (root / "not-an-adapter").mkdir()
    (root / "README.txt").write_text("a stray file")
    return CatalogueSource(root)


def test_list(catalogue: CatalogueSource) -> None:
    listed = catalogue.list()
    assert list(listed) == ["ad00", "ad01", "ad02", "ad03"]
    assert listed["ad02"] == catalogue.root / "ad02"


def test_lookup_by_name_and_id(catalogue: CatalogueSource) -> None:
    d = catalogue.root / "ad01"
    aid = adapter_id_of(d)
    assert catalogue.path_of("ad01") == d
    assert catalogue.path_of(aid.hex()) == d
    assert catalogue.path_of("0x" + aid.hex()) == d
    assert catalogue.id_of("ad01") == aid
    assert catalogue.ids()["ad01"] == aid
    assert "ad01" in catalogue and aid.hex() in catalogue and "ad99" not in catalogue


@pytest.mark.parametrize("missing", ["ad99", "../ad00", "00" * 32, "not-an-adapter"])
def test_not_found(catalogue: CatalogueSource, missing: str) -> None:
    with pytest.raises(AdapterNotFound, match="not in catalogue"):
        catalogue.path_of(missing)


def test_hot_add_and_remove(catalogue: CatalogueSource, tiny_adapters: list[pathlib.Path]) -> None:
    src = tiny_adapters[9]
    dest = catalogue.add(src, "late")
    assert dest == catalogue.root / "late"
    assert "late" in catalogue.list()
    assert catalogue.path_of(adapter_id_of(src).hex()) == dest
    assert not [p for p in catalogue.root.iterdir() if p.name.startswith(".")]  # no temp dir left
    with pytest.raises(AdapterConfigInvalid, match="already exists"):
        catalogue.add(src, "late")
    catalogue.remove("late")
    assert "late" not in catalogue.list()
    with pytest.raises(AdapterNotFound):
        catalogue.path_of(adapter_id_of(src).hex())
    # a plain copy into the directory is visible without any call
    shutil.copytree(src, catalogue.root / "dropped")
    assert catalogue.id_of("dropped") == adapter_id_of(src)


def test_id_cache_follows_file_changes(catalogue: CatalogueSource, tiny_adapters: list[pathlib.Path]) -> None:
    before = catalogue.id_of("ad00")
    shutil.copy2(tiny_adapters[5] / "adapter_model.safetensors", catalogue.root / "ad00" / "adapter_model.safetensors")
    shutil.copy2(tiny_adapters[5] / "adapter_config.json", catalogue.root / "ad00" / "adapter_config.json")
    after = catalogue.id_of("ad00")
    assert after != before and after == adapter_id_of(tiny_adapters[5])


def test_add_refuses_bad_input(catalogue: CatalogueSource, tmp_path: pathlib.Path,
                               tiny_adapters: list[pathlib.Path]) -> None:
    with pytest.raises(AdapterConfigInvalid, match="name"):
        catalogue.add(tiny_adapters[0], "../escape")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy2(tiny_adapters[0] / "adapter_config.json", pickled)
    (pickled / "adapter_model.bin").write_bytes(b"\x80")
    with pytest.raises(AdapterNotSafetensors):
        catalogue.add(pickled)
    assert "pickled" not in catalogue.list()


def test_missing_root(tmp_path: pathlib.Path) -> None:
    with pytest.raises(AdapterNotFound, match="does not exist"):
        CatalogueSource(tmp_path / "nope")
    assert CatalogueSource(tmp_path / "made", create=True).list() == {}


def test_local_source(tiny_adapters: list[pathlib.Path], make_adapter: Callable[..., pathlib.Path]) -> None:
    d = tiny_adapters[3]
    src = LocalSource(d)
    assert src.list() == {"ad03": d}
    assert src.path_of("ad03") == d == src.path_of(adapter_id_of(d).hex())
    with pytest.raises(AdapterNotFound):
        src.path_of("ad04")
    with pytest.raises(AdapterNotFound):
        LocalSource(d.parent / "missing")
