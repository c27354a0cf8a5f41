"""The node's API against the real app (uvicorn subprocess, real anvil, real SQLite), with the official `openai`
client and raw HTTP: answers for the base model and adapters, streamed and not, each carrying an attribution whose
leaf recomputes from its record, whose ioHash recomputes from salt + text, whose receipt recovers to the node."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from attribution.chain.assets import dataset_id_for
from attribution.hashing import to_checksum_address
from attribution.records import IO_KIND_CHAT, IO_KIND_COMPLETION, Record, io_hash_v3
from attribution.records.receipt import recover_receipt_signer
from node.services import engine_threads
from tests.integration.node.conftest import ADMIN_KEY, API_KEY, DATASET_A, DATASET_B, NodeProcess

pytestmark = pytest.mark.timeout(600)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def client(served_node: NodeProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served_node.url}/v1", api_key=API_KEY, max_retries=0, timeout=60)


def check_attribution(node: NodeProcess, att: dict[str, Any], prompt_bytes: bytes, text: str,
                      adapter: str | None, usage: dict[str, int] | None = None) -> Record:
    """Every property a client can check of an answer's attribution object."""
    assert set(att) == {"seq", "node", "record", "leaf", "salt", "io_hash_version", "receipt", "status_url"}
    assert att["io_hash_version"] == 3
    record = Record.from_json(att["record"])
    assert record.seq == att["seq"]
    assert "0x" + record.leaf().hex() == att["leaf"]
    salt = bytes.fromhex(att["salt"][2:])
    # chat answers hash the canonical JSON of the messages (a list of objects); completions the prompt text
    kind = IO_KIND_CHAT if prompt_bytes.startswith(b'[{"') else IO_KIND_COMPLETION
    assert record.io_hash == io_hash_v3(kind, salt, prompt_bytes, text.encode())
    d = node.env.deployment
    assert record.chain_id == d.chain_id
    assert to_checksum_address(record.ledger) == d.addresses["AttributionLedger"]
    assert att["node"] == d.node.address == to_checksum_address(record.node)
    signer = recover_receipt_signer(record.chain_id, record.ledger, record.node, record.seq, record.leaf(),
                                    att["receipt"])
    assert signer == d.node.address
    if adapter is None:
        assert record.adapter_id == bytes(32) and record.dataset_ids == ()
    else:
        assert record.adapter_id == node.env.adapter_ids[adapter]
    if usage is not None:
        assert (record.prompt_tokens, record.completion_tokens) == (usage["prompt_tokens"],
                                                                    usage["completion_tokens"])
    # the record route returns the same record, status `stored` (no batcher here)
    r = httpx.get(att["status_url"], timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["record"] == att["record"] and body["leaf"] == att["leaf"] and body["status"] == "stored"
    return record


def test_completion_base_model_openai_client(served_node: NodeProcess, client: openai.OpenAI) -> None:
    r = client.completions.create(model="tiny-llama", prompt="The json module", max_tokens=12, temperature=0)
    text = r.choices[0].text
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.completion_tokens >= 1
    att = (r.model_extra or {})["attribution"]
    check_attribution(served_node, att, b"The json module", text, None, r.usage.model_dump())
    # greedy is deterministic: the same request gives the same text, and a new seq
    r2 = client.completions.create(model="tiny-llama", prompt="The json module", max_tokens=12, temperature=0)
    assert r2.choices[0].text == text
    assert (r2.model_extra or {})["attribution"]["seq"] > att["seq"]


def test_chat_adapter_openai_client_nonstream(served_node: NodeProcess, client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Decode JSON"}]
    r = client.chat.completions.create(model="ad-b", messages=messages, max_tokens=10, temperature=0)
    text = r.choices[0].message.content or ""
    att = (r.model_extra or {})["attribution"]
    canonical = json.dumps(messages, sort_keys=True, separators=(",", ":")).encode()
    record = check_attribution(served_node, att, canonical, text, "ad-b", r.usage.model_dump() if r.usage else None)
    # the record carries the adapter's registered provenance
    owner = served_node.env.deployment.deployer.address
    assert record.dataset_ids == (dataset_id_for(owner, DATASET_A), dataset_id_for(owner, DATASET_B))
    assert record.weights_bps == (2500, 7500)
    # the adapter changes the answer against the base model (same prompt, greedy)
    base = client.chat.completions.create(model="tiny-llama", messages=messages, max_tokens=10, temperature=0)
    assert base.choices[0].message.content != text


def test_chat_stream_openai_client_with_usage(served_node: NodeProcess, client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "Write JSON"}]
    stream = client.chat.completions.create(model="ad-a", messages=messages, max_tokens=12, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    att = (last.model_extra or {})["attribution"]
    canonical = json.dumps(messages, sort_keys=True, separators=(",", ":")).encode()
    check_attribution(served_node, att, canonical, text, "ad-a", last.usage.model_dump())
    # streamed and non-streamed greedy answers agree
    full = client.chat.completions.create(model="ad-a", messages=messages, max_tokens=12, temperature=0)
    assert full.choices[0].message.content == text


def _sse(resp: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in resp.iter_lines() if line.startswith("data: ")]


def test_completion_stream_raw_http(served_node: NodeProcess) -> None:
    body = {"model": "ad-b", "prompt": "Serialize", "max_tokens": 9, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{served_node.url}/v1/completions", json=body, headers=AUTH, timeout=60) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = _sse(resp)
    assert events[-1] == "[DONE]"
    objs = [json.loads(e) for e in events[:-1]]
    assert all(o["object"] == "text_completion" for o in objs)
    text = "".join(o["choices"][0]["text"] for o in objs)
    assert objs[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert all("attribution" not in o for o in objs[:-1])  # only the last event carries it
    check_attribution(served_node, objs[-1]["attribution"], b"Serialize", text, "ad-b")
    # the same request without streaming gives the same text
    r = httpx.post(f"{served_node.url}/v1/completions", json={**body, "stream": False}, headers=AUTH, timeout=60)
    assert r.json()["choices"][0]["text"] == text


def test_chat_nonstream_raw_http_by_adapter_id(served_node: NodeProcess) -> None:
    aid = "0x" + served_node.env.adapter_ids["ad-a"].hex()
    messages = [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    r = httpx.post(f"{served_node.url}/v1/chat/completions", headers=AUTH, timeout=60,
                   json={"model": aid, "messages": messages, "max_completion_tokens": 5, "seed": 3,
                         "temperature": 0.8, "top_p": 0.9, "stop": ["\n\n"], "user": "u1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == aid
    canonical = json.dumps(messages, sort_keys=True, separators=(",", ":")).encode()
    check_attribution(served_node, body["attribution"], canonical, body["choices"][0]["message"]["content"], "ad-a",
                      body["usage"])


def test_models_lists_base_and_adapters(served_node: NodeProcess) -> None:
    r = httpx.get(f"{served_node.url}/v1/models", timeout=10)
    data = {m["id"]: m for m in r.json()["data"]}
    assert data["tiny-llama"]["parent"] is None
    for name in ("ad-a", "ad-b"):
        assert data[name]["parent"] == "tiny-llama"
        assert data[name]["adapter_id"] == "0x" + served_node.env.adapter_ids[name].hex()
        assert data[name]["tier"] in ("device", "host", "disk")


def test_admin_add_get_delete(served_node: NodeProcess) -> None:
    env = served_node.env
    url = f"{served_node.url}/v1/adapters"
    r = httpx.post(url, json={"path": str(env.adapters["ad-late"])}, headers=ADMIN, timeout=60)
    assert r.status_code == 201, r.text
    assert r.json()["adapter_id"] == "0x" + env.adapter_ids["ad-late"].hex()
    assert r.json()["dataset_ids"] == ["0x" + dataset_id_for(env.deployment.deployer.address, DATASET_B).hex()]
    c = httpx.post(f"{served_node.url}/v1/completions", headers=AUTH, timeout=60,
                   json={"model": "ad-late", "prompt": "x", "max_tokens": 3})
    assert c.status_code == 200 and c.json()["attribution"]["record"]["adapterId"] == r.json()["adapter_id"]
    info = httpx.get(f"{url}/ad-late", headers=ADMIN, timeout=10).json()
    assert info["hits"] >= 1 and info["tokens"] >= 1 and info["tier"] in ("device", "host")
    assert httpx.delete(f"{url}/ad-late", headers=ADMIN, timeout=10).status_code == 200
    gone = httpx.post(f"{served_node.url}/v1/completions", headers=AUTH, timeout=60,
                      json={"model": "ad-late", "prompt": "x", "max_tokens": 3})
    assert gone.status_code == 404 and gone.json()["error"]["param"] == "model"


def test_admin_refuses_unregistered_inactive_and_mismatched(served_node: NodeProcess) -> None:
    env = served_node.env
    url = f"{served_node.url}/v1/adapters"
    r = httpx.post(url, json={"path": str(env.adapters["ad-unreg"])}, headers=ADMIN, timeout=60)
    assert r.status_code == 400 and "not registered" in r.json()["error"]["message"]
    r = httpx.post(url, json={"path": str(env.adapters["ad-off"])}, headers=ADMIN, timeout=60)
    assert r.status_code == 400 and "inactive" in r.json()["error"]["message"]
    # claim another adapter's registered id for these bytes: the registry's contentHash differs
    r = httpx.post(url, json={"path": str(env.adapters["ad-unreg"]), "name": "imposter",
                              "adapter_id": "0x" + env.adapter_ids["ad-a"].hex()}, headers=ADMIN, timeout=60)
    assert r.status_code == 400 and "differs" in r.json()["error"]["message"]
    names = [m["id"] for m in httpx.get(f"{served_node.url}/v1/models", timeout=10).json()["data"]]
    assert "ad-unreg" not in names and "ad-off" not in names and "imposter" not in names


def test_deactivation_reaches_the_node(served_node: NodeProcess) -> None:
    env = served_node.env
    d = env.deployment
    assets = d.assets.with_account(d.deployer)
    url = f"{served_node.url}/v1/adapters"
    assets.set_adapter_active(env.adapter_ids["ad-off"], True)  # a reactivation applies after the change delay
    w3 = d.client.w3
    w3.provider.make_request("evm_increaseTime", [d.assets.change_delay()])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    try:
        r = httpx.post(url, json={"path": str(env.adapters["ad-off"])}, headers=ADMIN, timeout=60)
        assert r.status_code == 201, r.text
        assets.set_adapter_active(env.adapter_ids["ad-off"], False)
        deadline = time.monotonic() + 20
        status = 200
        while time.monotonic() < deadline and status == 200:
            time.sleep(0.5)
            status = httpx.post(f"{served_node.url}/v1/completions", headers=AUTH, timeout=60,
                                json={"model": "ad-off", "prompt": "x", "max_tokens": 2}).status_code
        assert status == 403
    finally:
        if assets.adapter(env.adapter_ids["ad-off"]).active:
            assets.set_adapter_active(env.adapter_ids["ad-off"], False)
        httpx.delete(f"{url}/ad-off", headers=ADMIN, timeout=10)


def test_disconnect_cancels_and_still_records(served_node: NodeProcess) -> None:
    before = httpx.get(f"{served_node.url}/readyz", timeout=10).json()["next_seq"]
    body = {"model": "tiny-llama", "prompt": "Long answer", "max_tokens": 200, "stream": True, "temperature": 0}
    with httpx.stream("POST", f"{served_node.url}/v1/completions", json=body, headers=AUTH, timeout=60) as resp:
        seen = 0
        for line in resp.iter_lines():
            if line.startswith("data: "):
                seen += 1
                if seen >= 3:
                    break  # leave: closing the connection cancels the generation
    deadline = time.monotonic() + 30
    rec = None
    while time.monotonic() < deadline and rec is None:
        r = httpx.get(f"{served_node.url}/v1/attribution/records/{before}", timeout=10)
        rec = r.json()["record"] if r.status_code == 200 else None
        time.sleep(0.2)
    assert rec is not None, "the cancelled request's tokens were not recorded"
    assert 1 <= rec["completionTokens"] < 200


def test_metrics_health_ready(served_node: NodeProcess) -> None:
    text = httpx.get(f"{served_node.url}/metrics", timeout=10).text
    for name in ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc",
                 "vllm:lora_requests_info", "loraledger_requests_total", "loraledger_records_stored_total",
                 "loraledger_time_to_first_token_seconds_bucket", "loraledger_queue_depth"):
        assert name in text, name
    assert 'max_lora="8"' in text
    stored = [ln for ln in text.splitlines() if ln.startswith("loraledger_records_stored_total")]
    assert float(stored[0].split()[-1]) >= 1
    # engine.threads unset: the cores the node may use (it inherits this process's affinity), minus one above two
    threads = [ln for ln in text.splitlines() if ln.startswith("loraledger_engine_threads ")]
    assert float(threads[0].split()[-1]) == engine_threads(None)
    assert httpx.get(f"{served_node.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{served_node.url}/readyz", timeout=10).status_code == 200
