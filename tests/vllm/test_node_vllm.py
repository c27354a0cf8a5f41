"""The node on the vLLM backend (`engine.backend = "vllm"`), end to end: `loraledger node run` in a subprocess over
a real anvil with the adapters registered, answering the official `openai` client (completions, chat, streaming with
include_usage); every answer's record has the right adapter id and token counts; the records are posted (DA + L2)
and `loraledger verify answer` passes; a client that leaves mid-stream is still recorded; an unknown adapter is
404; a full queue is 429 with Retry-After; /readyz waits for vLLM; /metrics carries the llm-d names. One node (one
vLLM engine) for the module."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.integration.node.conftest import (  # noqa: F401 - node_env is a fixture used by name
    API_KEY,
    NodeEnv,
    NodeProcess,
    node_env,
    run_batchers_until_final,
    write_config,
)
from tests.integration.node.test_api import check_attribution

pytestmark = pytest.mark.timeout(1800)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
VLLM_ENGINE = {"backend": "vllm", "max_batch": 2, "max_queue": 2, "max_loras": 2, "max_cpu_loras": 4,
               "kv_cache_gib": 1.0}
SAVED: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def vllm_node(node_env: NodeEnv) -> Iterator[tuple[NodeProcess, list[dict[str, Any]]]]:  # noqa: F811
    """The node on vLLM; yields it and the /readyz bodies seen while vLLM was starting."""
    import os

    write_config(node_env, engine=VLLM_ENGINE)
    log = node_env.root / "node-vllm.log"
    out = open(log, "wb")  # noqa: SIM115 - the child writes it; closed with the process
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    environ["OMP_NUM_THREADS"] = "1"
    proc = subprocess.Popen([sys.executable, "-c", "from node.cli import main; main()", "node", "run", "--config",
                             str(node_env.config)], cwd=node_env.root, stdout=out, stderr=subprocess.STDOUT,
                            env=environ)
    node = NodeProcess(node_env, proc, log)
    starting: list[dict[str, Any]] = []
    deadline = time.monotonic() + 900
    try:
        while True:
            assert proc.poll() is None, f"node exited with {proc.returncode}:\n{node.log_text()[-3000:]}"
            assert time.monotonic() < deadline, f"node not ready:\n{node.log_text()[-3000:]}"
            try:
                r = httpx.get(f"{node_env.url}/readyz", timeout=5)
                if r.status_code == 200:
                    break
                starting.append(r.json())
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield node, starting
    finally:
        node.stop(signal.SIGTERM, timeout=120)


@pytest.fixture(scope="module")
def client(vllm_node: tuple[NodeProcess, list[dict[str, Any]]]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{vllm_node[0].url}/v1", api_key=API_KEY, max_retries=0, timeout=300)


def test_readyz_waits_for_vllm(vllm_node: tuple[NodeProcess, list[dict[str, Any]]]) -> None:
    node, starting = vllm_node
    assert starting, "the node listened only once vLLM was up: /readyz never answered 503 while it started"
    assert all(b["status"] == "not ready" and b["engine"]["backend"] == "vllm" for b in starting)
    assert any(p.startswith("engine starting (vllm") for b in starting for p in b["problems"])
    ready = httpx.get(f"{node.url}/readyz", timeout=10).json()
    assert ready["engine"] == {"backend": "vllm", "status": "ready"}
    assert "vLLM engine up in" in node.log_text()


def test_openai_client_completion_chat_stream(vllm_node: tuple[NodeProcess, list[dict[str, Any]]],
                                              client: openai.OpenAI) -> None:
    node = vllm_node[0]
    r = client.completions.create(model="tiny-llama", prompt="The json module", max_tokens=12, temperature=0)
    assert r.usage is not None and r.usage.completion_tokens >= 1
    check_attribution(node, (r.model_extra or {})["attribution"], b"The json module", r.choices[0].text, None,
                      r.usage.model_dump())
    r2 = client.completions.create(model="tiny-llama", prompt="The json module", max_tokens=12, temperature=0)
    assert r2.choices[0].text == r.choices[0].text  # greedy: the same text again

    messages = [{"role": "user", "content": "What does json.dumps do? ü"}]
    c = client.chat.completions.create(model="ad-a", messages=messages, max_tokens=10, temperature=0)  # type: ignore
    text = c.choices[0].message.content or ""
    assert c.usage is not None
    check_attribution(node, (c.model_extra or {})["attribution"],
                      json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
                      text, "ad-a", c.usage.model_dump())
    raw = {"model": "ad-a", "messages": messages, "max_tokens": 10, "temperature": 0}
    saved = httpx.post(f"{node.url}/v1/chat/completions", json=raw, headers=AUTH, timeout=300)
    assert saved.status_code == 200 and saved.json()["choices"][0]["message"]["content"] == text
    SAVED["chat"] = {"request": raw, "response": saved.json()}

    stream = client.chat.completions.create(model="ad-b", messages=messages, max_tokens=10, temperature=0,  # type: ignore
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    check_attribution(node, (usage_chunk.model_extra or {})["attribution"],
                      json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
                      streamed, "ad-b", usage_chunk.usage.model_dump())
    assert usage_chunk.usage.completion_tokens == 10 or chunks[-2].choices[0].finish_reason == "stop"


def test_unknown_adapter_is_404(vllm_node: tuple[NodeProcess, list[dict[str, Any]]]) -> None:
    r = httpx.post(f"{vllm_node[0].url}/v1/completions", headers=AUTH, timeout=30,
                   json={"model": "no-such-adapter", "prompt": "x", "max_tokens": 2})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_disconnect_mid_stream_still_recorded(vllm_node: tuple[NodeProcess, list[dict[str, Any]]]) -> None:
    url = vllm_node[0].url
    before = httpx.get(f"{url}/readyz", timeout=10).json()["next_seq"]
    body = {"model": "ad-a", "prompt": "Long answer", "max_tokens": 200, "stream": True, "temperature": 0}
    with httpx.stream("POST", f"{url}/v1/completions", json=body, headers=AUTH, timeout=120) as resp:
        seen = 0
        for line in resp.iter_lines():
            if line.startswith("data: "):
                seen += 1
                if seen >= 3:
                    break  # leave: closing the connection cancels the generation (vLLM aborts it)
    deadline = time.monotonic() + 60
    rec = None
    while time.monotonic() < deadline and rec is None:
        r = httpx.get(f"{url}/v1/attribution/records/{before}", timeout=10)
        rec = r.json()["record"] if r.status_code == 200 else None
        time.sleep(0.2)
    assert rec is not None, "the cancelled request's tokens were not recorded"
    assert 1 <= rec["completionTokens"] < 200
    assert rec["adapterId"] == "0x" + vllm_node[0].env.adapter_ids["ad-a"].hex()


def test_full_queue_is_429_with_retry_after(vllm_node: tuple[NodeProcess, list[dict[str, Any]]]) -> None:
    """max_batch 2 + max_queue 2: twelve long requests at once, the ones beyond four are refused."""
    url = vllm_node[0].url
    body = {"model": "tiny-llama", "prompt": "Long answer", "max_tokens": 120, "temperature": 0}

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{url}/v1/completions", json=body, headers=AUTH, timeout=600)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, range(12)))
    refused = [a for a in answers if a.status_code == 429]
    assert refused and {a.status_code for a in answers} <= {200, 429}
    assert all(int(a.headers["Retry-After"]) >= 1 and a.json()["error"]["code"] == "overloaded" for a in refused)
    assert sum(a.status_code == 200 for a in answers) >= 4


def test_metrics_carry_vllm_statistics(vllm_node: tuple[NodeProcess, list[dict[str, Any]]]) -> None:
    text = httpx.get(f"{vllm_node[0].url}/metrics", timeout=10).text
    for name in ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc",
                 "vllm:lora_requests_info", "loraledger_requests_total", "loraledger_records_stored_total"):
        assert name in text, name
    assert 'max_lora="2"' in text
    models = httpx.get(f"{vllm_node[0].url}/v1/models", headers=AUTH, timeout=10).json()["data"]
    assert {m["tier"] for m in models if m.get("parent")} == {"vllm"}


def test_records_posted_and_verify_answer(vllm_node: tuple[NodeProcess, list[dict[str, Any]]], anvil: Any,
                                          da_server_factory: Any, tmp_path: Path) -> None:
    assert "chat" in SAVED, "needs test_openai_client_completion_chat_stream first"
    node = vllm_node[0]
    env = node.env
    d = env.deployment
    da = da_server_factory.start(kzg=False)
    run_batchers_until_final(anvil, da.url, [(env, None)])
    (tmp_path / "chat.json").write_text(json.dumps(SAVED["chat"]))
    cli = [str(Path(sys.executable).parent / "loraledger"), "verify", "answer", str(tmp_path / "chat.json"),
           "--rpc-url", d.rpc_url, "--da-url", da.url, "--ledger", d.ledger.address, "--from-block",
           str(d.deployment.deploy_block)]
    ok = subprocess.run(cli, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout, ok.stdout + ok.stderr
