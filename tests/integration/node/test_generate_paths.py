"""The edges of one generation (`node/api/generate.py`, issue 25) on the real app, engine, store and signer:

- while the node shuts down a request gets 503 `shutting_down` with `Retry-After`, and no record;
- a request still generating at `node.request_timeout_s` is cut: `finish_reason: "length"`, its tokens recorded;
- an engine failure before the first token answers 500 and stores no record (DESIGN: none for requests that
  produced nothing);
- when the engine's final usage never comes (a failure mid-way), the record's prompt tokens are counted by the
  tokenizer, and equal what the engine reports for the same prompt.

A slow or failing engine is injected around the real engine's handle (it cannot be made slow or fail on demand).
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from attribution.records import Record
from inference.engine import RequestFailed
from tests.integration.node.conftest import serve_in_process


@pytest.fixture(scope="module")
def app_node(tiny_base_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with serve_in_process(tiny_base_dir, tmp_path_factory.mktemp("generate-paths")) as served:
        yield served


def _wrap_next(services: Any, wrap: Any) -> None:
    """The next submitted request's `aevents` becomes `wrap(handle, real_aevents)`."""
    engine = services.engine
    submit = engine.submit

    def wrapped_submit(req: Any, **kw: Any) -> Any:
        engine.submit = submit  # once
        handle = submit(req, **kw)
        handle.aevents = wrap(handle, handle.aevents)
        return handle

    engine.submit = wrapped_submit


def test_shutting_down_is_503_with_retry_after_and_no_record(app_node: tuple[str, Any]) -> None:
    url, services = app_node
    before = services.store.next_seq()
    services.accepting = False
    try:
        r = httpx.post(f"{url}/v1/completions", json={"model": "tiny-llama", "prompt": "hi", "max_tokens": 3},
                       timeout=60)
    finally:
        services.accepting = True
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json()["error"]["code"] == "shutting_down"
    assert services.store.next_seq() == before


def test_request_timeout_cuts_and_records_the_tokens_produced(app_node: tuple[str, Any]) -> None:
    url, services = app_node

    engine = services.engine.engine  # our engine behind the EngineClient seam: the slow model is injected there
    real_decode = engine._decode

    def slow_decode(seqs: Any) -> Any:  # a slow model: 0.1 s per decode step, 100 tokens would take 10 s
        time.sleep(0.1)
        return real_decode(seqs)

    node = services.settings.node
    old = node.request_timeout_s
    node.request_timeout_s = 1.0
    engine._decode = slow_decode
    try:
        body = {"model": "tiny-llama", "prompt": "Encode", "max_tokens": 100, "temperature": 0}
        r = httpx.post(f"{url}/v1/completions", json=body, timeout=120)
    finally:
        node.request_timeout_s = old
        del engine._decode
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["choices"][0]["finish_reason"] == "length"
    produced = out["usage"]["completion_tokens"]
    assert produced < 100
    record = Record.from_json(out["attribution"]["record"])
    assert record.completion_tokens == produced
    assert services.store.get(out["attribution"]["seq"]).leaf() == record.leaf()


def test_engine_failure_before_the_first_token_stores_no_record(app_node: tuple[str, Any]) -> None:
    url, services = app_node

    def fail_at_once(handle: Any, real: Any) -> Any:
        async def aevents() -> AsyncIterator[Any]:
            handle.cancel()
            raise RequestFailed(handle.request_id, bytes(32), RuntimeError("injected fault"))
            yield  # an async generator
        return aevents

    before = services.store.next_seq()
    _wrap_next(services, fail_at_once)
    r = httpx.post(f"{url}/v1/completions", json={"model": "tiny-llama", "prompt": "x", "max_tokens": 5},
                   timeout=60)
    assert r.status_code == 500 and r.json()["error"]["code"] == "engine_request_failed"
    assert r.json()["error"].get("attribution") is None
    assert services.store.next_seq() == before
    ok = httpx.post(f"{url}/v1/completions", json={"model": "tiny-llama", "prompt": "x", "max_tokens": 2},
                    timeout=60)
    assert ok.status_code == 200 and ok.json()["attribution"]["seq"] == before  # no seq was used up


def test_prompt_tokens_without_the_engine_usage_are_counted_like_the_engine(app_node: tuple[str, Any]) -> None:
    url, services = app_node
    prompt = "The json module encodes and decodes"
    body = {"model": "tiny-llama", "prompt": prompt, "max_tokens": 8, "temperature": 0}
    normal = httpx.post(f"{url}/v1/completions", json=body, timeout=60)
    assert normal.status_code == 200
    engine_count = normal.json()["usage"]["prompt_tokens"]

    def fail_after_two(handle: Any, real: Any) -> Any:
        async def aevents() -> AsyncIterator[Any]:
            seen = 0
            async for ev in real():
                if ev.completion is not None:
                    break  # the final usage never arrives
                yield ev
                seen += ev.token_id is not None
                if seen >= 2:
                    handle.cancel()
                    raise RequestFailed(handle.request_id, bytes(32), RuntimeError("injected fault"))
        return aevents

    _wrap_next(services, fail_after_two)
    r = httpx.post(f"{url}/v1/completions", json=body, timeout=60)
    assert r.status_code == 500
    seq = r.json()["error"]["attribution"]["seq"]
    record = services.store.get(seq)
    assert record.completion_tokens == 2
    assert record.prompt_tokens == engine_count == len(services.tokenizer.encode(prompt))
