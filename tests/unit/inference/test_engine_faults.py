"""Fault containment: an exception inside a step fails only the requests it belongs to.

A hook makes one adapter's LoRA forward raise (the real pool and cache otherwise; a broken adapter kernel cannot be
produced on demand), in the prefill of a mixed wave or in a later decode step. The other rows of the same batch must
finish with exactly the tokens of a fault-free run, the faulty request gets a `RequestFailed` error event (after the
tokens it had already streamed), every adapter reference is released, and later requests, also for the same adapter
once it works again, are served.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from inference.adapters.cache import AdapterCache
from inference.adapters.weights import linear_shapes
from inference.engine import Engine, EngineConfig, GenerationRequest, RequestFailed
from inference.lora import LoraPool, LoraRouting, PoolSlot, Segment
from inference.model import BaseModel, load_base_model

PROMPTS = ["Decode a JSON document", "def dumps(obj, *, skipkeys=False):", "indent", "The object_hook is"]


class PoisonedAdapter(RuntimeError):
    """The injected fault."""


class Poison:
    """Makes the LoRA forward raise whenever `adapter_id`'s slot is routed in a step of the armed kind.

    phase "prefill": in every prefill that includes it; phase "decode": from its `after`-th decode step on."""

    def __init__(self, cache: AdapterCache, adapter_id: bytes, phase: str, after: int = 0) -> None:
        self.adapter_id, self.phase, self.after = adapter_id, phase, after
        self.armed = True
        self.slot: PoolSlot | None = None
        self.decode_steps = 0
        self.raised = 0
        pool = cache.pool
        activate, routing, apply = cache.activate, pool.routing, pool.apply

        def activate_hook(aid: bytes) -> PoolSlot | None:
            slot = activate(aid)
            if aid == self.adapter_id and slot is not None:
                self.slot = slot
            return slot

        def routing_hook(segments: list[Segment]) -> LoraRouting | None:
            r = routing(segments)
            mine = [s for s in segments if s.slot == self.slot]
            poisoned = False
            if mine and self.armed:
                if all(s.length == 1 for s in segments):  # a decode step
                    self.decode_steps += 1
                    poisoned = self.phase == "decode" and self.decode_steps > self.after
                else:
                    poisoned = self.phase == "prefill"
            if r is not None:
                r.poisoned = poisoned  # type: ignore[attr-defined]
            return r

        def apply_hook(r: LoraRouting | None, layer: int, group: str, x: Any, y: Any) -> None:
            apply(r, layer, group, x, y)
            if getattr(r, "poisoned", False) and layer == 1 and group == "o":  # mid-forward: some K/V written
                self.raised += 1
                raise PoisonedAdapter("injected fault in the adapter's forward")

        cache.activate = activate_hook  # type: ignore[method-assign]
        pool.routing = routing_hook  # type: ignore[method-assign]
        pool.apply = apply_hook  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def base(tiny_base_dir: pathlib.Path) -> BaseModel:
    return load_base_model(tiny_base_dir)


@pytest.fixture()
def setup(base: BaseModel, tiny_adapters: list[pathlib.Path]) -> Iterator[tuple[Engine, AdapterCache]]:
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    cache = AdapterCache(base.config, pool)
    for p in tiny_adapters[:6]:
        cache.add(p)
    eng = Engine(base, cache, EngineConfig(max_batch=16, max_seq_len=96))
    yield eng, cache
    eng.stop()
    cache.close()


def _jobs(adapters: list[pathlib.Path]) -> list[GenerationRequest]:
    # adapters 0..5 (ranks 4/8/16, shared buckets), two base rows; adapters[2] is the one the tests poison
    names: list[str | None] = [a.name for a in adapters[:6]] + [None, None]
    return [GenerationRequest(prompt=PROMPTS[i % len(PROMPTS)], adapter=n, max_tokens=6 + i, ignore_eos=True)
            for i, n in enumerate(names)]


def _run(eng: Engine, reqs: list[GenerationRequest]) -> list[Any]:
    handles = [eng.submit(r) for r in reqs]
    eng.run_until_idle(timeout=120)
    return handles


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_fault_in_one_adapter_fails_only_its_request(setup: tuple[Engine, AdapterCache], phase: str,
                                                     tiny_adapters: list[pathlib.Path]) -> None:
    eng, cache = setup
    jobs = _jobs(tiny_adapters)
    bad = 2
    reference = [h.result().token_ids for h in _run(eng, jobs)]  # fault-free, same batch
    assert all(len(t) == r.max_tokens for t, r in zip(reference, jobs, strict=True))

    poison = Poison(cache, cache.resolve(tiny_adapters[bad].name), phase, after=2)
    handles = _run(eng, jobs)  # must not raise: the engine contains the fault
    assert poison.raised >= 1
    for i, (h, want) in enumerate(zip(handles, reference, strict=True)):
        if i == bad:
            continue
        c = h.result(timeout=5)
        assert c.finish_reason == "length" and c.token_ids == want, f"row {i} changed by another row's fault"
    events = []
    with pytest.raises(RequestFailed) as exc:
        for ev in handles[bad].events(timeout=5):
            events.append(ev)
    assert isinstance(exc.value.__cause__, PoisonedAdapter)
    assert handles[bad].request_id in str(exc.value) and "not affected" in str(exc.value)
    streamed = [ev.token_id for ev in events]
    if phase == "decode":  # it failed in its third decode step: the prefill token and two decode tokens came first
        assert streamed == reference[bad][:3]
    else:
        assert streamed == []
    assert eng.running == 0 and eng.queued == 0
    assert all(info.refs == 0 for info in cache.list())  # the failed row released its adapter too

    # the engine keeps serving: other adapters at once, the faulty adapter again once it stops raising
    later = _run(eng, [jobs[0], jobs[bad], jobs[6]])
    assert later[0].result().token_ids == reference[0] and later[2].result().token_ids == reference[6]
    with pytest.raises(RequestFailed):
        later[1].result()
    poison.armed = False
    again = _run(eng, [jobs[bad]])
    assert again[0].result().token_ids == reference[bad]


def test_background_engine_survives_a_fault(setup: tuple[Engine, AdapterCache],
                                            tiny_adapters: list[pathlib.Path]) -> None:
    """The serving thread: the faulty request fails, the others (running and queued alike) finish."""
    eng, cache = setup
    jobs = _jobs(tiny_adapters)
    reference = [h.result().token_ids for h in _run(eng, jobs)]
    Poison(cache, cache.resolve(tiny_adapters[2].name), "decode", after=1)
    eng.start()
    handles = [eng.submit(r) for r in jobs]
    with pytest.raises(RequestFailed):
        handles[2].result(timeout=60)
    for i, h in enumerate(handles):
        if i != 2:
            assert h.result(timeout=60).token_ids == reference[i]
    assert eng.submit(jobs[7]).result(timeout=60).token_ids == reference[7]
