"""Outsider findings against a real `loraledger node run` process with keys off and the default body limit (1 MiB):
the 100,000-deep JSON body (F1: SIGSEGV before), aborted bodies (a traceback each before), and the rate limit that
a random Bearer token or a forged X-Forwarded-For used to dodge."""

from __future__ import annotations

import pathlib
import secrets
import socket
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from attribution.devnet.processes import free_port
from tests.integration.node.conftest import NodeEnv, NodeProcess, start_node, write_config

pytestmark = pytest.mark.timeout(600)

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture(scope="module")
def open_node(node_env: NodeEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """Keys off, 1 MiB bodies, 3 requests a minute per client address, 127.0.0.1 a trusted proxy (so a test can
    be a non-loopback client by its X-Forwarded-For)."""
    root: pathlib.Path = tmp_path_factory.mktemp("open-node")
    (root / "deployments").mkdir()
    d = node_env.deployment
    d.deployment.save(root / "deployments" / f"{d.chain_id}.json")
    env = replace(node_env, root=root, config=root / "loraledger.toml", port=free_port(), store_path=root / "r.db")
    write_config(env, node={"api_key_hashes": [], "max_body_bytes": 1 << 20, "requests_per_minute": 3,
                            "trusted_proxies": ["127.0.0.1"], "body_timeout_s": 5.0})
    node = start_node(env)
    try:
        yield node
    finally:
        node.stop()


def _alive(node: NodeProcess) -> None:
    assert node.proc.poll() is None, node.log_text()[-3000:]
    assert httpx.get(node.url + "/healthz", timeout=10).status_code == 200


def test_100k_nested_body_is_400_and_the_node_lives(open_node: NodeProcess) -> None:
    for path in ("/v1/completions", "/v1/chat/completions"):
        r = httpx.post(open_node.url + path, content=DEEP, headers={"Content-Type": "application/json"}, timeout=60)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_json" and "deep" in err["message"]
    _alive(open_node)


def test_aborted_bodies_write_no_traceback(open_node: NodeProcess) -> None:
    port = int(open_node.url.rsplit(":", 1)[1])
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"model\": \"tiny-")
    _alive(open_node)
    assert "Traceback" not in open_node.log_text()


def test_random_bearer_does_not_dodge_the_rate_limit(open_node: NodeProcess) -> None:
    client = {"X-Forwarded-For": "203.0.113.7"}  # through the trusted proxy: one outside client
    statuses = []
    for _ in range(5):
        headers = {**client, "Authorization": f"Bearer {secrets.token_hex(8)}"}
        r = httpx.post(open_node.url + "/v1/completions", headers=headers, timeout=60,
                       json={"model": "tiny-llama", "prompt": "hi", "max_tokens": 1})
        statuses.append(r.status_code)
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    # another outside address has its own bucket, and local clients (loopback) are not throttled as one
    other = httpx.post(open_node.url + "/v1/completions", headers={"X-Forwarded-For": "203.0.113.8"}, timeout=60,
                       json={"model": "tiny-llama", "prompt": "hi", "max_tokens": 1})
    assert other.status_code == 200
    local = [httpx.post(open_node.url + "/v1/completions", timeout=60,
                        json={"model": "tiny-llama", "prompt": "hi", "max_tokens": 1}).status_code for _ in range(5)]
    assert local == [200] * 5
