"""Tiered adapter cache: exact byte budgets, LRU eviction order, pinning, prefetch, hot add/remove under load, and
invalid adapters refused with their named error while nothing else changes."""

from __future__ import annotations

import pathlib
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from inference.adapters.cache import AdapterBudgetExceeded, AdapterCache, AdapterNameTaken, CacheBudgets
from inference.adapters.errors import (
    AdapterNotFound,
    AdapterNotSafetensors,
    AdapterRankTooLarge,
    AdapterShapeMismatch,
    AdapterTargetModuleUnknown,
    AdapterTooLarge,
)
from inference.adapters.weights import linear_shapes, load_adapter
from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.lora import LoraPool
from inference.model import BaseModel, load_base_model

MakeAdapter = Callable[..., pathlib.Path]


@pytest.fixture(scope="module")
def base(tiny_base_dir: pathlib.Path) -> BaseModel:
    return load_base_model(tiny_base_dir)


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory, make_adapter: MakeAdapter) -> list[pathlib.Path]:
    """Six same-shape adapters (rank 8 on q,v): equal sizes make the budget arithmetic exact."""
    root = tmp_path_factory.mktemp("cache-adapters")
    return [make_adapter(root / f"a{i}", seed=50 + i, rank=8) for i in range(6)]


def _cache(base: BaseModel, budgets: CacheBudgets | None = None, **kw: object) -> AdapterCache:
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    return AdapterCache(base.config, pool, budgets, **kw)  # type: ignore[arg-type]


@pytest.fixture()
def sizes(base: BaseModel, adapters: list[pathlib.Path]) -> tuple[int, int]:
    """(host bytes, device bytes) of one of the `adapters`."""
    w = load_adapter(adapters[0], base.config)
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    return w.nbytes, pool.slot_nbytes(w.rank, w.target_modules)


def test_host_budget_exact_and_lru_order(base: BaseModel, adapters: list[pathlib.Path], sizes: tuple[int, int]
                                         ) -> None:
    host, _ = sizes
    with _cache(base, CacheBudgets(host_bytes=2 * host + host // 2)) as cache:
        a, b, c, d = (cache.add(p) for p in adapters[:4])
        assert cache.host_used == 2 * host  # only two fit; a was evicted when c came
        assert [cache.tier_of(x) for x in (a, b, c, d)] == ["disk", "disk", "host", "host"]
        cache.acquire(c)  # touch c: d becomes the least recently used
        cache.release(c)
        cache.preload(a)
        assert [cache.tier_of(x) for x in (a, c, d)] == ["host", "host", "disk"]
        assert cache.host_used == 2 * host <= cache.budgets.host_bytes  # type: ignore[operator]
        assert cache.evictions["host"] == 3


def test_host_count_budget(base: BaseModel, adapters: list[pathlib.Path]) -> None:
    with _cache(base, CacheBudgets(max_host_adapters=3)) as cache:
        ids = [cache.add(p) for p in adapters]
        assert cache.stats()["host_adapters"] == 3
        assert [cache.tier_of(x) for x in ids] == ["disk"] * 3 + ["host"] * 3


def test_device_budget_exact_busy_adapters_not_evicted(base: BaseModel, adapters: list[pathlib.Path],
                                                       sizes: tuple[int, int]) -> None:
    _, dev = sizes
    with _cache(base, CacheBudgets(device_bytes=2 * dev)) as cache:
        a, b, c = (cache.add(p) for p in adapters[:3])
        assert cache.activate(a) is not None and cache.activate(b) is not None
        assert cache.device_used == 2 * dev
        assert cache.activate(c) is None  # both residents are busy: c waits, nothing is evicted
        assert cache.tier_of(a) == cache.tier_of(b) == "device"
        cache.deactivate(b)
        cache.deactivate(a)
        cache.activate(a)  # a used most recently -> b is the LRU idle resident
        cache.deactivate(a)
        assert cache.activate(c) is not None
        assert [cache.tier_of(x) for x in (a, b, c)] == ["device", "host", "device"]
        assert cache.device_used == 2 * dev
        assert cache.evictions["device"] == 1


def test_adapter_larger_than_device_budget_is_named(base: BaseModel, adapters: list[pathlib.Path],
                                                    sizes: tuple[int, int]) -> None:
    _, dev = sizes
    with _cache(base, CacheBudgets(device_bytes=dev - 1)) as cache:
        a = cache.add(adapters[0])
        with pytest.raises(AdapterBudgetExceeded):
            cache.activate(a)


def test_pinned_adapter_never_evicted(base: BaseModel, adapters: list[pathlib.Path], sizes: tuple[int, int]) -> None:
    host, dev = sizes
    with _cache(base, CacheBudgets(host_bytes=2 * host, device_bytes=dev)) as cache:
        a = cache.add(adapters[0])
        cache.pin(a)
        for p in adapters[1:]:
            cache.add(p)
        assert cache.tier_of(a) == "host"  # the oldest, yet kept
        assert cache.host_used == 2 * host
        cache.activate(a)
        cache.deactivate(a)
        b = cache.resolve(adapters[-1].name)
        assert cache.activate(b) is None  # the only device slot holds pinned a
        cache.unpin(a)
        assert cache.activate(b) is not None
        assert cache.tier_of(a) == "host"


def test_prefetch_loads_on_the_loader_thread(base: BaseModel, adapters: list[pathlib.Path]) -> None:
    with _cache(base) as cache:
        ids = [cache.add(p, validate=False) for p in adapters[:3]]
        assert all(cache.tier_of(x) == "disk" for x in ids)
        for x in ids:
            cache.acquire(x)
        deadline = time.time() + 30
        while any(cache.tier_of(x) == "disk" for x in ids) and time.time() < deadline:
            time.sleep(0.01)
        assert all(cache.tier_of(x) == "host" for x in ids)
        assert all((cache.info(x).load_ms or 0) > 0 for x in ids)


def test_disk_budget_and_names(base: BaseModel, adapters: list[pathlib.Path]) -> None:
    one = sum(f.stat().st_size for f in adapters[0].iterdir())
    with _cache(base, CacheBudgets(disk_bytes=2 * one)) as cache:
        cache.add(adapters[0])
        cache.add(adapters[1])
        with pytest.raises(AdapterBudgetExceeded):
            cache.add(adapters[2])
        assert cache.stats()["disk_bytes"] == 2 * one
        assert cache.add(adapters[0]) == cache.resolve(adapters[0].name)  # same content: no-op
        with pytest.raises(AdapterNameTaken):
            cache.add(adapters[2], name=adapters[0].name)
        with pytest.raises(AdapterNotFound):
            cache.resolve("nope")
        with pytest.raises(AdapterNotFound):
            cache.remove("nope")


# ------------------------------------------------------------------------------------------ invalid adapters


def _copy(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture()
def invalid(tmp_path: pathlib.Path, adapters: list[pathlib.Path], make_adapter: MakeAdapter
            ) -> Iterator[list[tuple[pathlib.Path, type[Exception]]]]:
    src = adapters[0]
    pickled = _copy(src, tmp_path / "pickled")
    tensors = load_file(pickled / "adapter_model.safetensors")
    (pickled / "adapter_model.safetensors").unlink()
    torch.save(tensors, pickled / "adapter_model.bin")

    big_rank = make_adapter(tmp_path / "rank16", seed=7, rank=16)

    unknown = _copy(src, tmp_path / "unknown-layer")
    t = load_file(unknown / "adapter_model.safetensors")
    t = {k.replace("layers.1.", "layers.9."): v for k, v in t.items()}
    save_file(t, unknown / "adapter_model.safetensors")

    shape = _copy(src, tmp_path / "bad-shape")
    t = load_file(shape / "adapter_model.safetensors")
    t = {k: (v[:, :-1].contiguous() if "lora_A" in k else v) for k, v in t.items()}
    save_file(t, shape / "adapter_model.safetensors")

    yield [(pickled, AdapterNotSafetensors), (big_rank, AdapterRankTooLarge), (unknown, AdapterTargetModuleUnknown),
           (shape, AdapterShapeMismatch)]


def test_invalid_adapters_refused_nothing_disturbed(base: BaseModel, adapters: list[pathlib.Path],
                                                    invalid: list[tuple[pathlib.Path, type[Exception]]]) -> None:
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    with AdapterCache(base.config, pool, max_rank=8) as cache:
        good = cache.add(adapters[0])
        eng = Engine(base, cache, EngineConfig(max_batch=4, max_seq_len=64))
        before_tokens = eng.submit(GenerationRequest(prompt="json", adapter=good, max_tokens=6))
        eng.run_until_idle(timeout=60)
        ref = before_tokens.result().token_ids
        stats = cache.stats()
        infos = cache.list()
        for path, err in invalid:
            with pytest.raises(err) as exc:
                cache.add(path)
            assert str(path.name) in str(exc.value)  # the message names the adapter it refuses
            assert cache.stats() == stats
            assert [i.adapter_id for i in cache.list()] == [i.adapter_id for i in infos]
            assert path.name not in cache
        with pytest.raises(AdapterTooLarge):
            AdapterCache(base.config, pool, max_bytes=100).add(adapters[1])
        h = eng.submit(GenerationRequest(prompt="json", adapter=good, max_tokens=6))
        eng.run_until_idle(timeout=60)
        assert h.result().token_ids == ref


def test_invalid_adapter_found_at_load_fails_only_its_requests(base: BaseModel, adapters: list[pathlib.Path],
                                                               invalid: list[tuple[pathlib.Path, type[Exception]]]
                                                               ) -> None:
    """Registered without validation (catalogue mode), a broken adapter fails its own requests with its error."""
    with _cache(base) as cache:
        good = cache.add(adapters[0])
        bad_path, bad_err = invalid[2]
        bad = cache.add(bad_path, validate=False)
        eng = Engine(base, cache, EngineConfig(max_batch=4, max_seq_len=64))
        hg = eng.submit(GenerationRequest(prompt="json", adapter=good, max_tokens=5))
        hb = eng.submit(GenerationRequest(prompt="json", adapter=bad, max_tokens=5))
        eng.run_until_idle(timeout=60)
        assert hg.result().usage.completion_tokens == 5
        with pytest.raises(bad_err):
            hb.result()
        assert cache.info(bad).refs == 0


# ------------------------------------------------------------------------------------------ hot add / remove


def test_hot_add_and_remove_under_load(base: BaseModel, adapters: list[pathlib.Path], sizes: tuple[int, int]
                                       ) -> None:
    host, dev = sizes
    with _cache(base, CacheBudgets(host_bytes=3 * host, device_bytes=3 * dev)) as cache:
        a = cache.add(adapters[0])
        eng = Engine(base, cache, EngineConfig(max_batch=8, max_seq_len=128))
        eng.start()
        try:
            inflight = [eng.submit(GenerationRequest(prompt="json encoder", adapter=a, max_tokens=40,
                                                     ignore_eos=True)) for _ in range(4)]
            next(inflight[0].events(timeout=30))  # generation is under way
            assert cache.remove(a) is False  # deferred: requests are in flight
            with pytest.raises(AdapterNotFound):
                eng.submit(GenerationRequest(prompt="x", adapter=a, max_tokens=2))
            b = cache.add(adapters[1])  # hot add while the engine runs
            hb = eng.submit(GenerationRequest(prompt="json", adapter=b, max_tokens=5))
            for h in inflight:
                c = h.result(timeout=60)
                assert c.finish_reason == "length" and c.usage.completion_tokens == 40
            assert hb.result(timeout=60).usage.adapter_id == b
            deadline = time.time() + 10
            while a in [i.adapter_id for i in cache.list()] and time.time() < deadline:
                time.sleep(0.01)
            assert cache.stats()["adapters"] == 1
            assert cache.stats()["device_bytes"] == dev and cache.stats()["host_bytes"] == host
        finally:
            eng.stop()


def test_loader_crash_fails_only_that_adapter(base: BaseModel, adapters: list[pathlib.Path]) -> None:
    """A loader fault the real files cannot produce on demand (e.g. an I/O error mid-read) becomes an AdapterError."""
    from inference.adapters.errors import AdapterError

    def loader(p: pathlib.Path) -> Any:
        if p == adapters[1]:
            raise RuntimeError("disk went away")
        return load_adapter(p, base.config)

    with _cache(base, loader=loader) as cache:
        good = cache.add(adapters[0], validate=False)
        bad = cache.add(adapters[1], validate=False)
        eng = Engine(base, cache, EngineConfig(max_batch=4, max_seq_len=64))
        hb = eng.submit(GenerationRequest(prompt="json", adapter=bad, max_tokens=3))
        hg = eng.submit(GenerationRequest(prompt="json", adapter=good, max_tokens=3))
        eng.run_until_idle(timeout=60)
        with pytest.raises(AdapterError, match="disk went away"):
            hb.result()
        assert hg.result().usage.completion_tokens == 3


def test_device_full_of_busy_adapters_requests_wait_then_run(base: BaseModel, adapters: list[pathlib.Path],
                                                             sizes: tuple[int, int]) -> None:
    _, dev = sizes
    with _cache(base, CacheBudgets(device_bytes=dev)) as cache:
        ids = [cache.add(p) for p in adapters[:3]]
        eng = Engine(base, cache, EngineConfig(max_batch=8, max_seq_len=64))
        hs = [eng.submit(GenerationRequest(prompt="json", adapter=i, max_tokens=4, ignore_eos=True)) for i in ids]
        eng.run_until_idle(timeout=60)
        assert [h.result().usage.completion_tokens for h in hs] == [4, 4, 4]
        assert eng.decode_rows_total == eng.decode_steps  # one adapter on the device at a time: one row per step
        assert cache.device_used == dev
