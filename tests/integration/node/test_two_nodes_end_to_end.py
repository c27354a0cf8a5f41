"""End to end on the devnet parts with two nodes: two `loraledger node run` processes (tiny Llama + peft adapters,
dev accounts 1 and 5, each its own record store) answer a few hundred requests; a `loraledger batcher run` per
node posts their records until every batch is final; then, trusting only the chain and DA:

- `verify node` is ok for both nodes (every batch rebuilds its posted root, seqs gap-free);
- the indexer has verified every batch (`ok`) and indexed every record;
- a saved answer of each node verifies step by step (a chat answer also through `loraledger verify answer`,
  which before the batcher ran said WAIT and fails at ioHash once the text is changed);
- an answer's record is found through the indexer API by adapter and by dataset, with a proof `verifyRecord`
  accepts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from attribution.chain.assets import dataset_id_for
from attribution.chain.client import ChainClient
from attribution.chain.contracts import Ledger
from attribution.chain.keys import dev_keys
from attribution.da.client import DAClient
from attribution.indexer.api import create_app
from attribution.indexer.db import open_engine
from attribution.indexer.follower import Indexer
from attribution.records import Record
from attribution.verify import Verifier
from attribution.verify.answers import load_answer, verify_answer
from tests.fixtures.batches import node_account
from tests.fixtures.chain import AnvilNode
from tests.fixtures.da import DAServerFactory
from tests.integration.node.conftest import (
    API_KEY,
    DATASET_A,
    NodeEnv,
    run_batchers_until_final,
    second_node_env,
    start_node,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
N_PER_NODE = 100
SECOND_NODE = 5  # dev account of node b


def _ask(url: str, i: int) -> dict[str, Any]:
    if i % 3 == 0:
        body: dict[str, Any] = {"model": "ad-b", "max_tokens": 3, "seed": i,
                                "messages": [{"role": "system", "content": "Be brief, ü."},
                                             {"role": "user", "content": f"question {i}"}]}
        path = "/v1/chat/completions"
    else:
        body = {"model": "ad-a" if i % 3 == 1 else "tiny-llama", "prompt": f"prompt number {i}", "max_tokens": 3,
                "seed": i}
        path = "/v1/completions"
    r = httpx.post(url + path, json=body, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    return {"request": body, "response": r.json()}


@pytest.mark.slow
def test_two_nodes_answers_to_final_batches_verified_and_indexed(
        node_env: NodeEnv, anvil: AnvilNode, da_server_factory: DAServerFactory, tmp_path: Path) -> None:
    d = node_env.deployment
    b_account = node_account(d, SECOND_NODE)  # bonded
    env_b = second_node_env(node_env, tmp_path / "node-b", SECOND_NODE)
    nodes = [start_node(node_env), start_node(env_b)]
    try:
        with ThreadPoolExecutor(8) as pool:
            saved = [list(pool.map(lambda i, u=n.url: _ask(u, i), range(N_PER_NODE))) for n in nodes]
    finally:
        for n in nodes:
            n.stop()
    a_addr, b_addr = d.node.address, b_account.address
    assert {s["response"]["attribution"]["node"] for s in saved[0]} == {a_addr}
    assert {s["response"]["attribution"]["node"] for s in saved[1]} == {b_addr}

    da = da_server_factory.start(kzg=False)
    chat = next(s for s in saved[1] if "messages" in s["request"])
    cli = [str(Path(sys.executable).parent / "loraledger"), "verify", "answer"]
    opts = ["--rpc-url", d.rpc_url, "--da-url", da.url, "--ledger", d.ledger.address, "--from-block",
            str(d.deployment.deploy_block)]
    (tmp_path / "chat.json").write_text(json.dumps(chat))
    changed = json.loads(json.dumps(chat))
    changed["response"]["choices"][0]["message"]["content"] += "!"
    (tmp_path / "changed.json").write_text(json.dumps(changed))
    # before the batcher ran: the offline steps pass, the chain step waits (exit 1, WAIT)
    early = subprocess.run([*cli, str(tmp_path / "chat.json"), *opts], capture_output=True, text=True, timeout=120)
    assert early.returncode == 1 and "[WAIT] posted in a batch" in early.stdout and "FAIL" not in early.stdout, \
        early.stdout + early.stderr

    run_batchers_until_final(anvil, da.url, [(node_env, None), (env_b, dev_keys()[SECOND_NODE])])

    with DAClient(da.url, timeout=30, max_retries=1, backoff=0.01) as dac:
        verifier = Verifier(Ledger(ChainClient(d.rpc_url), d.ledger.address), dac,
                            from_block=d.deployment.deploy_block)
        reports = {addr: verifier.verify_node(addr) for addr in (a_addr, b_addr)}
        for report in reports.values():
            assert report.ok, report.to_json()
            assert len(report.checks) >= 3 and report.next_seq >= N_PER_NODE
        for answers in saved:
            report = verify_answer(load_answer(answers[7]), verifier)
            assert report.ok, report.text()
    # the CLI on the saved chat answer (messages as canonical JSON, non-ASCII); the changed text fails at ioHash
    ok = subprocess.run([*cli, str(tmp_path / "chat.json"), *opts], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout, ok.stdout + ok.stderr
    nope = subprocess.run([*cli, str(tmp_path / "changed.json"), *opts], capture_output=True, text=True, timeout=120)
    assert nope.returncode == 1 and "[FAIL] ioHash" in nope.stdout, nope.stdout

    idx = Indexer(open_engine(tmp_path / "indexer.db"), ChainClient(d.rpc_url), d.ledger.address,
                  DAClient(da.url, timeout=30), registry=d.assets.address, deploy_block=d.deployment.deploy_block,
                  confirmations=0)
    for _ in range(50):
        stats = idx.sync_once()
        if stats.cursor >= stats.head and stats.pending == 0:
            break
    client = TestClient(create_app(idx.engine))
    status = client.get("/v1/status").json()
    n_batches = sum(len(r.checks) for r in reports.values())
    assert status["batches"] == {"ok": n_batches}
    assert status["records"] == sum(r.next_seq for r in reports.values())

    # an answer of node b on adapter ad-a (dataset A): found by adapter and by dataset, with a working proof
    answer = next(s for s in saved[1] if s["request"].get("model") == "ad-a")
    record = Record.from_json(answer["response"]["attribution"]["record"])
    dataset_a = dataset_id_for(d.deployer.address, DATASET_A)  # registered by the deployer: namespaced id
    assert record.dataset_ids == (dataset_a,)
    for params in ({"adapter": "0x" + record.adapter_id.hex()}, {"dataset": "0x" + dataset_a.hex()}):
        hits = [x for x in client.get("/v1/records", params={**params, "node": b_addr, "limit": 1000,
                                                             "from_ts": record.timestamp,
                                                             "to_ts": record.timestamp + 1}).json()["records"]
                if x["record"]["seq"] == record.seq]
        assert len(hits) == 1, params
        assert Record.from_json(hits[0]["record"]) == record
        assert d.ledger.verify_record(hits[0]["batchId"], record.abi_values(), hits[0]["proof"])
    idx.engine.dispose()
