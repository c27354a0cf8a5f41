"""F2: an adapter whose files are swapped after it was added is never served under its id. The cache hashes the
bytes it loads in the same read as the weights, on the first load and on every reload from disk."""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Callable

import pytest

from inference.adapters.cache import AdapterCache, CacheBudgets
from inference.adapters.errors import AdapterContentChanged
from inference.adapters.weights import linear_shapes
from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.lora import LoraPool
from inference.model import BaseModel, load_base_model

MakeAdapter = Callable[..., pathlib.Path]


@pytest.fixture(scope="module")
def base(tiny_base_dir: pathlib.Path) -> BaseModel:
    return load_base_model(tiny_base_dir)


def _cache(base: BaseModel, budgets: CacheBudgets | None = None) -> AdapterCache:
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    return AdapterCache(base.config, pool, budgets)


def test_reload_of_a_swapped_file_is_refused(base: BaseModel, tmp_path: pathlib.Path,
                                             make_adapter: MakeAdapter) -> None:
    a = make_adapter(tmp_path / "a", seed=1, rank=8)
    b = make_adapter(tmp_path / "b", seed=2, rank=8)
    with _cache(base, CacheBudgets(max_host_adapters=1)) as cache:
        aid = cache.add(a)
        cache.add(b)  # one host slot: a goes back to disk
        assert cache.tier_of(aid) == "disk"
        shutil.copy(b / "adapter_model.safetensors", a / "adapter_model.safetensors")  # swapped under the node
        eng = Engine(base, cache, EngineConfig(max_batch=2, max_seq_len=64))
        h = eng.submit(GenerationRequest(prompt="json", adapter=aid, max_tokens=3))
        eng.run_until_idle(timeout=60)
        with pytest.raises(AdapterContentChanged, match="swapped or edited"):
            h.result()
        assert cache.tier_of(aid) == "disk"  # nothing of the other weights was kept under a's id


def test_add_refuses_files_that_changed_since_they_were_checked(base: BaseModel, tmp_path: pathlib.Path,
                                                               make_adapter: MakeAdapter) -> None:
    from inference.adapters.identity import adapter_id_of

    a = make_adapter(tmp_path / "a", seed=3, rank=8)
    checked = adapter_id_of(a)  # what the node checked against the registry
    shutil.copy(make_adapter(tmp_path / "b", seed=4, rank=8) / "adapter_model.safetensors",
                a / "adapter_model.safetensors")
    with _cache(base) as cache:
        with pytest.raises(AdapterContentChanged):
            cache.add(a, expected_id=checked)
        assert cache.stats()["adapters"] == 0
        assert cache.add(a, expected_id=adapter_id_of(a)) == adapter_id_of(a)
