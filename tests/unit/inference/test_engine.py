"""Engine behaviour on the tiny Llama: streaming, stop strings, max_tokens, cancellation, overload, seeds, usage."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import Iterator

import pytest

from inference.adapters.cache import AdapterCache
from inference.adapters.weights import linear_shapes
from inference.engine import (
    ZERO_ID,
    Engine,
    EngineConfig,
    EngineOverloaded,
    EngineStopped,
    GenerationRequest,
    RequestInvalid,
    RequestTooLong,
)
from inference.lora import LoraPool
from inference.model import BaseModel, load_base_model
from inference.sampling import SamplingParams, SamplingParamsInvalid

PROMPT = "Decode a JSON document"


@pytest.fixture(scope="module")
def base(tiny_base_dir: pathlib.Path) -> BaseModel:
    return load_base_model(tiny_base_dir)


@pytest.fixture()
def engine(base: BaseModel, tiny_adapters: list[pathlib.Path]) -> Iterator[Engine]:
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    cache = AdapterCache(base.config, pool)
    for p in tiny_adapters[:4]:
        cache.add(p)
    eng = Engine(base, cache, EngineConfig(max_batch=8, max_queue=16, max_seq_len=128))
    yield eng
    eng.stop()
    cache.close()


def _run(eng: Engine, req: GenerationRequest) -> list[int]:
    h = eng.submit(req)
    eng.run_until_idle(timeout=60)
    return h.result().token_ids


def test_max_tokens_and_usage(engine: Engine, base: BaseModel, tiny_adapters: list[pathlib.Path]) -> None:
    h = engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=7, ignore_eos=True))
    ha = engine.submit(GenerationRequest(prompt=PROMPT, adapter=tiny_adapters[1].name, max_tokens=3,
                                         ignore_eos=True))
    engine.run_until_idle(timeout=60)
    c, ca = h.result(), ha.result()
    n_prompt = len(base.tokenizer.encode(PROMPT))
    assert c.finish_reason == "length" and len(c.token_ids) == 7
    u = c.usage
    assert (u.model_id, u.adapter_id, u.prompt_tokens, u.completion_tokens, u.cache_tier) == (
        base.model_id, ZERO_ID, n_prompt, 7, "base")
    assert u.queue_ms >= 0 and u.prefill_ms > 0 and u.decode_ms > 0
    assert ca.usage.adapter_id == engine.cache.resolve(tiny_adapters[1].name)  # type: ignore[union-attr]
    assert ca.usage.cache_tier == "host" and ca.usage.completion_tokens == 3
    assert c.text == base.tokenizer.decode(c.token_ids, skip_special_tokens=True)


def test_rows_leaving_at_different_times_match_solo(engine: Engine, tiny_adapters: list[pathlib.Path]) -> None:
    """Rows finish at different steps (the batch is compacted under the others); each keeps its own tokens."""
    reqs = [GenerationRequest(prompt=PROMPT[: 5 + 3 * i], adapter=(tiny_adapters[i % 4].name if i % 3 else None),
                              max_tokens=2 + 3 * i, ignore_eos=True) for i in range(8)]
    solo = [_run(engine, r) for r in reqs]
    handles = [engine.submit(r) for r in reqs]
    engine.run_until_idle(timeout=60)
    assert [h.result().token_ids for h in handles] == solo
    assert [len(s) for s in solo] == [r.max_tokens for r in reqs]


def test_stop_string_cuts_text_and_stream(engine: Engine) -> None:
    full = engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=24, ignore_eos=True))
    engine.run_until_idle(timeout=60)
    text = full.result().text
    assert len(text) > 8
    stop = text[5:8]
    cut = text[: text.find(stop)]
    h = engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=24, ignore_eos=True, stop=(stop, "\x00never")))
    engine.run_until_idle(timeout=60)
    events = list(h.events(timeout=5))
    c = events[-1].completion
    assert c is not None and c.finish_reason == "stop" and c.text == cut
    assert "".join(e.text for e in events) == cut  # the stream never showed the stop string
    assert len(c.token_ids) < 24


def test_async_streaming_yields_tokens_incrementally(engine: Engine) -> None:
    engine.start()

    async def go() -> tuple[list[int], str, object]:
        toks: list[int] = []
        text = ""
        final = None
        async for ev in engine.generate(GenerationRequest(prompt=PROMPT, max_tokens=10, ignore_eos=True)):
            if ev.token_id is not None:
                toks.append(ev.token_id)
            text += ev.text
            final = ev.completion
        return toks, text, final

    toks, text, final = asyncio.run(go())
    assert final is not None and len(toks) == 10
    assert final.token_ids == toks and final.text == text  # type: ignore[attr-defined]


def test_cancellation_running_and_queued(engine: Engine) -> None:
    engine.start()
    h = engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=100, ignore_eos=True))
    it = h.events(timeout=30)
    next(it)
    h.cancel()
    c = h.result(timeout=30)
    assert c.finish_reason == "cancelled" and 1 <= c.usage.completion_tokens < 100
    engine.stop()
    with pytest.raises(EngineStopped):  # a stopped engine refuses new work
        engine.submit(GenerationRequest(prompt=PROMPT))


def test_cancel_while_queued(engine: Engine) -> None:
    h = engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=5))
    h.cancel()
    engine.run_until_idle(timeout=30)
    c = h.result(timeout=5)
    assert c.finish_reason == "cancelled" and c.token_ids == []


def test_async_consumer_closing_cancels(engine: Engine) -> None:
    engine.start()

    async def go() -> int:
        n = 0
        gen = engine.generate(GenerationRequest(prompt=PROMPT, max_tokens=100, ignore_eos=True))
        async for _ in gen:
            n += 1
            if n == 2:
                break
        await gen.aclose()
        return n

    assert asyncio.run(go()) == 2
    for _ in range(200):
        if engine.running == 0 and engine.queued == 0:
            break
        time.sleep(0.01)
    assert engine.running == 0


def test_overload_is_named_with_limit_and_retry_hint(engine: Engine) -> None:
    for _ in range(16):
        engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=1))
    with pytest.raises(EngineOverloaded) as exc:
        engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=1))
    assert exc.value.queue_limit == 16 and exc.value.retry_after_s >= 1
    engine.run_until_idle(timeout=60)
    engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=1))  # room again


def test_seeded_sampling_is_reproducible(engine: Engine) -> None:
    def run(seed: int, top_p: float = 1.0) -> list[int]:
        return _run(engine, GenerationRequest(prompt=PROMPT, max_tokens=16, ignore_eos=True,
                                              sampling=SamplingParams(temperature=1.5, top_p=top_p, seed=seed)))

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    greedy = _run(engine, GenerationRequest(prompt=PROMPT, max_tokens=16, ignore_eos=True))
    assert run(3, top_p=1e-6) == greedy  # nucleus of one token is the argmax


def test_invalid_requests(engine: Engine) -> None:
    with pytest.raises(RequestTooLong):
        engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=200))
    with pytest.raises(RequestInvalid):
        engine.submit(GenerationRequest(prompt_ids=[], max_tokens=2))
    with pytest.raises(RequestInvalid):
        engine.submit(GenerationRequest(prompt=PROMPT, max_tokens=0))
    with pytest.raises(SamplingParamsInvalid):
        SamplingParams(top_p=0.0)
    assert engine.queued == 0


def test_stop_strings_refused_without_detokenizer(base: BaseModel) -> None:
    eng = Engine(base, None, EngineConfig(max_batch=2, max_seq_len=64, detokenize=False))
    with pytest.raises(RequestInvalid):
        eng.submit(GenerationRequest(prompt=PROMPT, stop=("x",)))
    h = eng.submit(GenerationRequest(prompt=PROMPT, max_tokens=3, ignore_eos=True))
    eng.run_until_idle(timeout=30)
    c = h.result()
    assert len(c.token_ids) == 3 and c.text == ""  # token ids only: the bench's mode


def test_serving_engine_statistics_stay_bounded(engine: Engine) -> None:
    """A serving engine keeps no per-forward record (the leak of `prefill_shapes`): only the bench switches it on."""
    for i in range(6):
        _run(engine, GenerationRequest(prompt=f"{PROMPT} {i}", max_tokens=2, ignore_eos=True))
    assert engine.prefill_shapes is None
    assert engine.decode_steps > 0 and set(engine.decode_batches) <= set(range(1, engine.config.max_batch + 1))
