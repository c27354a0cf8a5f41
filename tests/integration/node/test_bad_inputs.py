"""The bad-input corpus (bad_inputs.json): every case gets its 4xx in OpenAI's error shape, never a 5xx or a
traceback, and the node keeps serving."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import httpx
import pytest

from tests.integration.node.conftest import ADMIN_KEY, API_KEY, NodeProcess

CORPUS = json.loads((pathlib.Path(__file__).parent / "bad_inputs.json").read_text())["cases"]
AUTH = {"key": f"Bearer {API_KEY}", "bad": "Bearer sk-wrong", "malformed": "Basic dXNlcjpwYXNz",
        "admin": f"Bearer {ADMIN_KEY}", "badadmin": "Bearer not-the-admin-key", "none": None}


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 89
    assert len({c["name"] for c in CORPUS}) == len(CORPUS)


@pytest.fixture(scope="module")
def prepared(served_node: NodeProcess) -> NodeProcess:
    extra = served_node.env.extra_roots
    link = extra / "evil-link"
    if not link.exists():
        os.symlink("/etc", link)
    pickle_only = extra / "pickle-only"
    pickle_only.mkdir(exist_ok=True)
    (pickle_only / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (pickle_only / "adapter_model.bin").write_bytes(b"\x80\x04not really a pickle")
    good = served_node.env.adapters["ad-late"]
    cases = {"bad-targets": json.dumps({"peft_type": "LORA", "r": 8, "target_modules": 5}),
             "deep-config": "[" * 100_000 + "]" * 100_000,
             "linked-weights": (good / "adapter_config.json").read_text(), "linked-config": None}
    for name, config in cases.items():
        d = extra / name
        d.mkdir(exist_ok=True)
        if config is not None and not (d / "adapter_config.json").exists():
            (d / "adapter_config.json").write_text(config)
        if name != "linked-weights" and not (d / "adapter_model.safetensors").exists():
            (d / "adapter_model.safetensors").write_bytes((good / "adapter_model.safetensors").read_bytes())
    for link, target in ((extra / "linked-weights" / "adapter_model.safetensors", "/etc/passwd"),
                         (extra / "linked-config" / "adapter_config.json", "/etc/hostname")):
        if not link.is_symlink():
            os.symlink(target, link)
    return served_node


def _fill(v: Any, extra: str) -> Any:
    if isinstance(v, str):
        return v.replace("{extra}", extra)
    if isinstance(v, list):
        return [_fill(x, extra) for x in v]
    if isinstance(v, dict):
        return {k: _fill(x, extra) for k, x in v.items()}
    return v


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_bad_input(prepared: NodeProcess, case: dict[str, Any]) -> None:
    headers = {"Content-Type": "application/json"}
    if AUTH[case["auth"]] is not None:
        headers["Authorization"] = AUTH[case["auth"]]
    content: bytes | None = None
    if "json" in case:
        content = json.dumps(_fill(case["json"], str(prepared.env.extra_roots))).encode()
    elif "raw" in case:
        content = case["raw"].encode()
    elif "raw_hex" in case:
        content = bytes.fromhex(case["raw_hex"])
    elif "parts" in case:
        content = "".join(text * times for text, times in case["parts"]).encode()
    elif "size" in case:
        content = json.dumps({"model": "tiny-llama", "prompt": "z" * case["size"], "max_tokens": 1}).encode()
    r = httpx.request(case["method"], prepared.url + case["path"], content=content, headers=headers, timeout=60)
    assert r.status_code == case["status"], r.text
    body = r.json()
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and len(err["message"]) > 10
    assert "Traceback" not in r.text and 'File "' not in r.text
    if "param" in case:
        assert err["param"] == case["param"], err
    if r.status_code == 429:
        assert "Retry-After" in r.headers


def test_node_still_serves_after_the_corpus(prepared: NodeProcess) -> None:
    r = httpx.post(prepared.url + "/v1/completions", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60,
                   json={"model": "tiny-llama", "prompt": "still alive", "max_tokens": 3})
    assert r.status_code == 200 and r.json()["attribution"]["seq"] >= 0
    assert httpx.get(prepared.url + "/healthz", timeout=10).status_code == 200
