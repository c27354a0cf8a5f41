"""Adapter cache races and load faults, each driven deterministically by an injected loader: the real
`load_adapter` behind a gate (`threading.Event`: a slow disk) or a scripted fault (an I/O error the real files cannot
produce on demand). Stale loads never touch a live entry, the loader thread survives faults, transient errors retry,
content errors stay, one load per adapter, loaded host bytes stay within the host budget, and host memory is pinned
only for a CUDA pool."""

from __future__ import annotations

import gc
import pathlib
import threading
import time
import weakref
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from inference.adapters.cache import AdapterCache, AdapterLoadFailed, CacheBudgets
from inference.adapters.errors import AdapterShapeMismatch
from inference.adapters.weights import LoraWeights, linear_shapes, load_adapter
from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.lora import LoraPool
from inference.model import BaseModel, load_base_model

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def base(tiny_base_dir: pathlib.Path) -> BaseModel:
    return load_base_model(tiny_base_dir)


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory, make_adapter: Callable[..., pathlib.Path]
             ) -> list[pathlib.Path]:
    root = tmp_path_factory.mktemp("race-adapters")
    return [make_adapter(root / f"r{i}", seed=80 + i, rank=8) for i in range(4)]


@pytest.fixture(scope="module")
def host_bytes(base: BaseModel, adapters: list[pathlib.Path]) -> int:
    return load_adapter(adapters[0], base.config).nbytes


class Loader:
    """The real loader, with fault injection: calls listed in `gate_calls` block until `gate` is set, and
    `faults` (popped per call) raise before loading. Counts calls and keeps weak references to what it returned."""

    def __init__(self, base: BaseModel, gate_calls: set[int] | None = None) -> None:
        self.base = base
        self.gate = threading.Event()
        self.gate_calls = gate_calls or set()
        self.started = threading.Event()  # set when a gated call is waiting at the gate
        self.calls: list[pathlib.Path] = []
        self.faults: list[BaseException | None] = []
        self.returned: list[weakref.ref[LoraWeights]] = []
        self.lock = threading.Lock()

    def __call__(self, path: pathlib.Path) -> LoraWeights:
        with self.lock:
            n = len(self.calls)
            self.calls.append(path)
            fault = self.faults.pop(0) if self.faults else None
        if n in self.gate_calls:
            self.started.set()
            assert self.gate.wait(30), "test gate never opened"
        if fault is not None:
            raise fault
        w = load_adapter(path, self.base.config)
        self.returned.append(weakref.ref(w))
        return w

    def alive_bytes(self) -> int:
        gc.collect()
        return sum(w.nbytes for r in self.returned if (w := r()) is not None)


def _cache(base: BaseModel, loader: Any, budgets: CacheBudgets | None = None, **kw: Any) -> AdapterCache:
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    return AdapterCache(base.config, pool, budgets, loader=loader, retry_delays=(0.01, 0.01, 0.01), **kw)


def _wait(pred: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class Ready:
    """Counts the cache's ready callbacks (one per load the loader thread finished)."""

    def __init__(self, cache: AdapterCache) -> None:
        self.n = 0
        cache.set_ready_callback(self)

    def __call__(self) -> None:
        self.n += 1


def test_stale_load_never_evicts_or_replaces_the_readded_entry(base: BaseModel, adapters: list[pathlib.Path],
                                                               host_bytes: int) -> None:
    """acquire -> cancel -> remove -> re-add while the first load still runs (the reported race)."""
    loader = Loader(base, gate_calls={0})
    with _cache(base, loader, CacheBudgets(host_bytes=host_bytes)) as cache:
        ready = Ready(cache)
        a = cache.add(adapters[0], validate=False)
        cache.acquire(a)  # the request's prefetch starts loading the first entry ...
        assert loader.started.wait(10)  # ... and is stuck in the loader
        cache.release(a)  # the request is cancelled
        assert cache.remove(a) is True
        assert cache.add(adapters[0]) == a  # re-added: validated and put on host (loader call 1, not gated)
        assert cache.tier_of(a) == "host" and cache.host_used == host_bytes
        loader.gate.set()  # the stale load finishes now
        assert _wait(lambda: ready.n == 1)
        assert cache.tier_of(a) == "host"  # the live entry was neither evicted nor replaced
        assert cache.host_used == host_bytes and cache.stats()["host_adapters"] == 1
        # the next eviction (a background load of b needs a's room) works, on a loader thread that is alive
        b = cache.add(adapters[1], validate=False)
        cache.acquire(b)
        assert _wait(lambda: cache.tier_of(b) == "host"), cache.info(b)
        assert cache.tier_of(a) == "disk" and cache.host_used == host_bytes
        assert cache.evictions["host"] == 1 and cache.loader_faults == 0
        assert cache.activate(b) is not None


def test_stale_load_of_a_removed_entry_is_dropped(base: BaseModel, adapters: list[pathlib.Path]) -> None:
    loader = Loader(base, gate_calls={0})
    with _cache(base, loader) as cache:
        ready = Ready(cache)
        a = cache.add(adapters[0], validate=False)
        cache.acquire(a)
        assert loader.started.wait(10)
        cache.release(a)
        cache.remove(a)
        loader.gate.set()
        assert _wait(lambda: ready.n == 1)
        assert cache.host_used == 0 and cache.stats()["host_adapters"] == 0 and a not in cache
        assert loader.alive_bytes() == 0  # the stale result was not kept anywhere


def test_loader_thread_survives_a_fault_and_reports_it(base: BaseModel, adapters: list[pathlib.Path]) -> None:
    """A fault after the loader returned (here: weights whose byte count cannot be read) used to kill the thread."""

    from inference.adapters.identity import adapter_id_of

    broken_id = adapter_id_of(adapters[0])  # its content hash checks out: the fault comes after

    class Broken:
        rank = 8
        adapter_id = broken_id

        @property
        def nbytes(self) -> int:
            raise RuntimeError("accounting fault")

    real = Loader(base)

    def loader(p: pathlib.Path) -> Any:
        return Broken() if p == adapters[0] else real(p)

    with _cache(base, loader) as cache:
        ready = Ready(cache)
        bad = cache.add(adapters[0], validate=False)
        good = cache.add(adapters[1], validate=False)
        cache.acquire(bad)
        assert _wait(lambda: ready.n == 1)
        assert cache.loader_faults == 1
        info = cache.info(bad)
        assert info.load_error is not None and "accounting fault" in info.load_error and not info.loading
        with pytest.raises(AdapterLoadFailed, match="accounting fault"):
            cache.activate(bad)
        cache.acquire(good)  # later loads still run
        assert _wait(lambda: cache.tier_of(good) == "host")


def test_transient_errors_retry_with_backoff(base: BaseModel, adapters: list[pathlib.Path]) -> None:
    loader = Loader(base)
    loader.faults = [OSError(5, "Input/output error"), TimeoutError("NFS timed out")]
    with _cache(base, loader) as cache:
        a = cache.add(adapters[0], validate=False)
        eng = Engine(base, cache, EngineConfig(max_batch=2, max_seq_len=64))
        h = eng.submit(GenerationRequest(prompt="json", adapter=a, max_tokens=3, ignore_eos=True))
        eng.run_until_idle(timeout=60)
        assert h.result().usage.completion_tokens == 3
        assert len(loader.calls) == 3  # two failures, then the load that worked
        assert cache.info(a).load_error is None


def test_transient_errors_past_the_retries_fail_requests_then_the_next_request_retries(
        base: BaseModel, adapters: list[pathlib.Path]) -> None:
    loader = Loader(base)
    loader.faults = [OSError(5, "Input/output error")] * 4  # the first try and all three retries
    with _cache(base, loader) as cache:
        a = cache.add(adapters[0], validate=False)
        eng = Engine(base, cache, EngineConfig(max_batch=2, max_seq_len=64))
        h = eng.submit(GenerationRequest(prompt="json", adapter=a, max_tokens=3))
        eng.run_until_idle(timeout=60)
        with pytest.raises(AdapterLoadFailed, match="after 4 attempt"):
            h.result()
        assert len(loader.calls) == 4 and "OSError" in (cache.info(a).load_error or "")
        h2 = eng.submit(GenerationRequest(prompt="json", adapter=a, max_tokens=3, ignore_eos=True))
        eng.run_until_idle(timeout=60)
        assert h2.result().usage.completion_tokens == 3  # the disk is back: no remove + add needed
        assert cache.info(a).load_error is None


def test_corrupt_adapter_stays_refused_without_retries(base: BaseModel, adapters: list[pathlib.Path],
                                                       tmp_path: pathlib.Path) -> None:
    loader = Loader(base)
    loader.faults = [AdapterShapeMismatch("r0: tensor ... has shape [8, 63], expected [8, 64]", adapter="r0")]
    with _cache(base, loader) as cache:
        a = cache.add(adapters[0], validate=False)
        eng = Engine(base, cache, EngineConfig(max_batch=2, max_seq_len=64))
        for _ in range(2):
            h = eng.submit(GenerationRequest(prompt="json", adapter=a, max_tokens=3))
            eng.run_until_idle(timeout=60)
            with pytest.raises(AdapterShapeMismatch):
                h.result()
        assert len(loader.calls) == 1  # a content error is not retried


def test_pin_waits_for_the_load_in_flight(base: BaseModel, adapters: list[pathlib.Path]) -> None:
    loader = Loader(base, gate_calls={0})
    with _cache(base, loader) as cache:
        a = cache.add(adapters[0], validate=False)
        cache.acquire(a)
        assert loader.started.wait(10)  # the prefetch load is in the loader
        pinner = threading.Thread(target=cache.pin, args=(a,))
        pinner.start()
        second = _wait(lambda: len(loader.calls) > 1, timeout=0.5)  # a duplicate load would start here
        loader.gate.set()
        pinner.join(20)
        assert not pinner.is_alive()
        assert not second and len(loader.calls) == 1
        assert cache.tier_of(a) == "host" and cache.info(a).pinned
        assert cache.host_used == cache.info(a).host_bytes


def test_preload_claims_a_queued_load_instead_of_duplicating_it(base: BaseModel, adapters: list[pathlib.Path]
                                                               ) -> None:
    loader = Loader(base, gate_calls={0})
    with _cache(base, loader) as cache:
        ready = Ready(cache)
        a, b = (cache.add(p, validate=False) for p in adapters[:2])
        cache.acquire(a)
        assert loader.started.wait(10)  # the loader thread is busy with a ...
        cache.acquire(b)  # ... so b's load is queued behind it
        cache.preload(b)  # loads b now on this thread; the queued job becomes stale
        assert cache.tier_of(b) == "host"
        loader.gate.set()
        assert _wait(lambda: ready.n == 1 and cache.tier_of(a) == "host")
        time.sleep(0.05)
        assert [p.name for p in loader.calls] == [adapters[0].name, adapters[1].name]


def test_loaded_host_bytes_stay_within_the_budget(base: BaseModel, adapters: list[pathlib.Path],
                                                  host_bytes: int) -> None:
    """With the host budget held by a pinned adapter, loads for other requests wait for room instead of keeping
    uncounted copies in memory; unpinning lets them through one at a time."""
    loader = Loader(base)
    with _cache(base, loader, CacheBudgets(host_bytes=host_bytes)) as cache:
        ready = Ready(cache)
        a, b, c = (cache.add(p, validate=False) for p in adapters[:3])
        cache.pin(a)
        cache.acquire(b)
        cache.acquire(c)
        assert _wait(lambda: ready.n == 2)
        assert loader.alive_bytes() <= host_bytes  # only pinned a: b's and c's loads found no room
        assert cache.activate(b) is None and cache.activate(c) is None  # they wait, like on a full device
        assert cache.stats()["waiting_for_host_room"] == 2 and cache.host_used == host_bytes
        cache.unpin(a)
        assert _wait(lambda: cache.tier_of(b) == "host" or cache.tier_of(c) == "host")
        first = b if cache.tier_of(b) == "host" else c
        other = c if first == b else b
        assert cache.tier_of(a) == "disk" and loader.alive_bytes() <= host_bytes
        assert cache.activate(first) is not None  # on the device now: its host copy may go
        assert _wait(lambda: cache.tier_of(other) == "host")
        assert cache.activate(other) is not None
        assert cache.host_used == host_bytes and loader.alive_bytes() <= host_bytes


def test_engine_serves_more_adapters_than_the_host_budget(base: BaseModel, adapters: list[pathlib.Path],
                                                          host_bytes: int) -> None:
    loader = Loader(base)
    with _cache(base, loader, CacheBudgets(host_bytes=host_bytes)) as cache:
        ids = [cache.add(p, validate=False) for p in adapters]
        eng = Engine(base, cache, EngineConfig(max_batch=8, max_seq_len=64))
        hs = [eng.submit(GenerationRequest(prompt="json", adapter=i, max_tokens=3, ignore_eos=True)) for i in ids]
        eng.run_until_idle(timeout=60)
        assert [h.result().usage.completion_tokens for h in hs] == [3] * len(ids)
        assert cache.host_used <= host_bytes


def test_host_memory_pinned_only_for_a_cuda_pool(base: BaseModel, adapters: list[pathlib.Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pinned: list[torch.Tensor] = []

    def fake_pin(t: torch.Tensor, *args: Any, **kw: Any) -> torch.Tensor:
        out = t.clone().as_strided(t.shape, t.stride())  # page-locking needs CUDA: keep the call and the layout
        pinned.append(out)
        return out

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    with _cache(base, None) as cpu_cache:
        assert not cpu_cache.pin_host_memory
        a = cpu_cache.add(adapters[0])
        cpu_cache.activate(a)
        assert pinned == []  # on CPU nothing changes
    # a CUDA pool cannot be built on this machine: a stand-in with the attributes the cache reads at load time
    cuda_pool = SimpleNamespace(device=torch.device("cuda"), dtype=torch.float32)
    cache = AdapterCache(base.config, cuda_pool)  # type: ignore[arg-type]
    assert cache.pin_host_memory
    a = cache.add(adapters[0])
    w = load_adapter(adapters[0], base.config)
    assert len(pinned) == len(w.a) + len(w.b)
    host = cache._entries[a].host
    assert host is not None and {id(t) for t in [*host.a.values(), *host.b.values()]} == {id(t) for t in pinned}
    assert all(host.a[k].stride() == w.a[k].stride() and torch.equal(host.a[k], w.a[k]) for k in w.a)
    cache.close()
