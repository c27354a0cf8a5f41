"""A request that fails in the engine mid-stream: the client gets an `{"error": ...}` SSE event carrying the
attribution of the tokens already produced (recorded first), then `[DONE]`; the node keeps serving.

The engine cannot fail a request on demand, so the fault is injected: the handle of one request raises the engine's
own `RequestFailed` after three tokens (the real part, app, store and signer are all real)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from attribution.records import IO_KIND_COMPLETION, Record, io_hash_v3
from attribution.store import RecordStore
from inference.engine import RequestFailed
from tests.integration.node.conftest import serve_in_process


@pytest.fixture(scope="module")
def app_node(tiny_base_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with serve_in_process(tiny_base_dir, tmp_path_factory.mktemp("stream-errors")) as served:
        yield served


def _fail_after(services: Any, n_tokens: int) -> None:
    """The next submitted request fails with RequestFailed after `n_tokens` tokens."""
    engine = services.engine
    submit = engine.submit

    def failing_submit(req: Any, **kw: Any) -> Any:
        engine.submit = submit  # once
        handle = submit(req, **kw)
        real = handle.aevents

        async def aevents() -> AsyncIterator[Any]:
            seen = 0
            async for ev in real():
                if ev.token_id is not None:
                    seen += 1
                yield ev
                if seen >= n_tokens:
                    handle.cancel()
                    raise RequestFailed(handle.request_id, bytes(32), RuntimeError("injected fault"))

        handle.aevents = aevents
        return handle

    engine.submit = failing_submit


def test_mid_stream_error_event_carries_the_attribution(app_node: tuple[str, Any]) -> None:
    url, services = app_node
    _fail_after(services, 3)
    body = {"model": "tiny-llama", "prompt": "Encode", "max_tokens": 50, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as resp:
        assert resp.status_code == 200
        events = [ln[6:] for ln in resp.iter_lines() if ln.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    err = chunks[-1]["error"]
    assert err["code"] == "engine_request_failed" and err["type"] == "server_error" and "retry" in err["message"]
    text = "".join(c["choices"][0]["text"] for c in chunks[:-1])
    att = err["attribution"]
    record = Record.from_json(att["record"])
    assert record.completion_tokens == 3
    assert att["io_hash_version"] == 3
    assert record.io_hash == io_hash_v3(IO_KIND_COMPLETION, bytes.fromhex(att["salt"][2:]), b"Encode", text.encode())
    assert "0x" + services.store.get(att["seq"]).leaf().hex() == att["leaf"]
    # the node keeps serving
    ok = httpx.post(f"{url}/v1/completions", json={**body, "stream": False, "max_tokens": 4}, timeout=60)
    assert ok.status_code == 200 and ok.json()["attribution"]["seq"] == att["seq"] + 1


def test_non_streamed_engine_failure_is_an_openai_error(app_node: tuple[str, Any]) -> None:
    url, services = app_node
    _fail_after(services, 2)
    # greedy: a sampled first token could be EOS, and a request that ends before the fault never meets it
    body = {"model": "tiny-llama", "prompt": "x", "max_tokens": 20, "temperature": 0}
    r = httpx.post(f"{url}/v1/completions", json=body, timeout=60)
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["code"] == "engine_request_failed" and "Traceback" not in r.text
    with RecordStore(services.store.path, readonly=True) as st:  # the 2 tokens produced were recorded
        last = st.get(st.next_seq() - 1)
    assert last.completion_tokens == 2 and err["attribution"]["seq"] == last.seq
