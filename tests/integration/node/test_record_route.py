"""The record route builds a sealed batch's Merkle tree off the event loop and once per batch: while a tree is
being built, the node answers other requests (before: the build ran on the loop and stalled every request)."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import attribution.merkle as merkle
import attribution.records.tree as record_trees
from tests.integration.node.conftest import serve_in_process


@pytest.fixture(scope="module")
def app_node(tiny_base_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with serve_in_process(tiny_base_dir, tmp_path_factory.mktemp("record-route")) as served:
        yield served


def test_tree_build_runs_off_the_loop_and_once_per_batch(app_node: tuple[str, Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url, services = app_node
    for i in range(3):
        r = httpx.post(url + "/v1/completions", json={"model": "tiny-llama", "prompt": f"p{i}", "max_tokens": 2},
                       timeout=60)
        assert r.status_code == 200, r.text
    store = services.store
    root = record_trees.record_tree(store.range(0, 3)).root_bytes
    store.create_batch(0, 3, root=root)

    real = record_trees.record_tree
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_tree(records: Any) -> Any:  # holds the build until the test lets it go
        calls.append(len(records))
        entered.set()
        assert release.wait(60)
        return real(records)

    monkeypatch.setattr(record_trees, "record_tree", slow_tree)
    answers: list[httpx.Response] = []
    readers = [threading.Thread(target=lambda s=s: answers.append(
        httpx.get(f"{url}/v1/attribution/records/{s}", timeout=120))) for s in (0, 1, 2, 0)]
    for t in readers:
        t.start()
    try:
        assert entered.wait(60)
        # the tree is being built: the loop still answers (before the fix this timed out)
        assert httpx.get(url + "/healthz", timeout=20).status_code == 200
    finally:
        release.set()
        for t in readers:
            t.join(120)
    assert [a.status_code for a in answers] == [200] * 4
    assert calls == [3]  # one build for the four reads of the batch
    for a in answers:
        body = a.json()
        leaf = bytes.fromhex(body["leaf"][2:])
        assert merkle.process_proof(leaf, body["proof"]) == root
