"""A full record store (its free-space floor above the disk's real free space): answers are refused with 503 in
OpenAI's error shape with `Retry-After`, an alarm metric counts them, the node keeps serving other routes, and every
record accepted before stays in the store. Also: a batcher run inside the node shows its metrics on `/metrics`.

The real app under uvicorn, the real store (the floor is the store's own check against `statvfs`), no chain."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from attribution.records import Record
from attribution.store import RecordStore
from tests.integration.node.conftest import serve_in_process

FLOOR = 256 * 2**20


@pytest.fixture(scope="module")
def app_node(tiny_base_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    root = tmp_path_factory.mktemp("store-full")
    with serve_in_process(tiny_base_dir, root, max_bytes=1 << 30, min_free_bytes=FLOOR,
                          archive_dir=root / "archive") as served:
        yield served


def _complete(url: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/completions", json={"model": "tiny-llama", "prompt": "hello", "max_tokens": 3},
                      timeout=60)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not on /metrics")


def test_store_settings_reach_the_record_store(app_node: tuple[str, Any]) -> None:
    _, services = app_node
    store = services.store
    assert (store.max_bytes, store.min_free_bytes) == (1 << 30, FLOOR)
    assert store.archive_dir is not None and store.archive_dir.name == "archive"


def test_full_store_is_503_and_nothing_accepted_is_lost(app_node: tuple[str, Any]) -> None:
    url, services = app_node
    store = services.store
    accepted = []
    for _ in range(3):
        r = _complete(url)
        assert r.status_code == 200, r.text
        accepted.append(r.json()["attribution"])
    floor = store.min_free_bytes
    store.min_free_bytes = 1 << 62  # more than any disk has free: the store's real free-space check refuses
    try:
        r = _complete(url)
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert err["code"] == "store_full" and err["type"] == "service_unavailable"
        assert "free disk" in err["message"] and "store.max_bytes" in err["message"]
        assert int(r.headers["Retry-After"]) > 0
        streamed = httpx.post(f"{url}/v1/completions", json={"model": "tiny-llama", "prompt": "hi", "max_tokens": 2,
                                                             "stream": True}, timeout=60)
        assert '"code": "store_full"' in streamed.text or '"code":"store_full"' in streamed.text
        assert "attribution" not in streamed.text
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 200
        m = httpx.get(f"{url}/metrics", timeout=10).text
        assert _metric(m, "loraledger_store_full") == 1
        assert _metric(m, 'loraledger_records_refused_total{code="store_full"}') == 2
        assert "Traceback" not in r.text
    finally:
        store.min_free_bytes = floor
    r = _complete(url)  # space again: the node records and answers without a restart
    assert r.status_code == 200, r.text
    accepted.append(r.json()["attribution"])
    assert _metric(httpx.get(f"{url}/metrics", timeout=10).text, "loraledger_store_full") == 0
    assert [a["seq"] for a in accepted] == list(range(accepted[0]["seq"], accepted[0]["seq"] + 4))
    with RecordStore(store.path, readonly=True) as st:  # every accepted record is there, none for the refused
        assert st.next_seq() == accepted[-1]["seq"] + 1
        for a in accepted:
            assert st.get(a["seq"]).to_json() == Record.from_json(a["record"]).to_json()


def test_in_process_batcher_metrics_are_on_the_node_metrics(app_node: tuple[str, Any]) -> None:
    url, services = app_node
    bm = services.metrics.batcher_metrics()  # what a batcher inside the node is given (same registry)
    assert services.metrics.batcher_metrics() is bm
    bm.store_full_rejections.set(7)
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for name in ("loraledger_batcher_backlog_records", "loraledger_batcher_batches", "loraledger_batcher_errors",
                 "loraledger_store_disk_alarm", "loraledger_requests_rejected"):
        assert name in text, name
    assert _metric(text, "loraledger_store_full_rejections") == 7


def test_startup_objects_are_frozen_out_of_the_collector(app_node: tuple[str, Any]) -> None:
    """The app's start-up freezes what it built (the model, its modules): a full collection then walks only what
    requests allocate, instead of stalling every request for the whole heap."""
    import gc

    url, _ = app_node
    assert _complete(url).status_code == 200
    assert gc.get_freeze_count() > 10_000  # torch, transformers and the model's modules at least
