"""Answers of a real node (`loraledger node run`, tiny Llama + peft adapters) verify end to end with the
independent verifier: completions and chat (canonical JSON of the messages), through `verify_answer`, the SDK and
`loraledger verify answer`. The node's records are published the way the batcher does (encode the stored records,
DA put, `postBatch` with the node's key) so the test does not depend on the batcher's schedule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from attribution.answer import load_answer, verify_answer
from attribution.chain.client import ChainClient
from attribution.chain.contracts import Ledger
from attribution.client import LedgerClient
from attribution.da.client import DAClient
from attribution.merkle import record_tree
from attribution.payload import encode_batch
from attribution.records import Record
from attribution.store import RecordStore
from attribution.verify import RecordNotPostedError, Verifier
from tests.fixtures.da import DAServerFactory
from tests.integration.node.conftest import API_KEY, NodeProcess

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_real_node_answers_verify_after_their_batch_is_posted(
        served_node: NodeProcess, da_server_factory: DAServerFactory, tmp_path: Path) -> None:
    d = served_node.env.deployment
    url = served_node.url
    requests = [
        ("/v1/completions", {"model": "ad-a", "prompt": "Once upon a time", "max_tokens": 6, "seed": 1}),
        ("/v1/chat/completions", {"model": "ad-b", "max_tokens": 6, "seed": 2,
                                  "messages": [{"role": "system", "content": "Be brief, ü."},
                                               {"role": "user", "content": "Name a colour."}]}),
        ("/v1/completions", {"model": "tiny-llama", "prompt": "2 + 2 =", "max_tokens": 4, "seed": 3}),
    ]
    saved = []
    for path, body in requests:
        r = httpx.post(url + path, json=body, headers=AUTH, timeout=120)
        assert r.status_code == 200, r.text
        saved.append({"request": body, "response": r.json()})
    seqs = [s["response"]["attribution"]["seq"] for s in saved]

    da = da_server_factory.start(kzg=False)
    with DAClient(da.url, timeout=30, max_retries=1, backoff=0.01) as dac:
        verifier = Verifier(Ledger(ChainClient(d.rpc_url), d.ledger.address), dac,
                            from_block=d.deployment.deploy_block)
        # not posted yet: the offline steps pass, the chain step waits
        early = verify_answer(load_answer(saved[0]), verifier)
        assert early.pending and all(s.passed for s in early.steps[:5]), early.text()

        # publish every stored record up to the last answer, as the batcher would
        ledger = Ledger(ChainClient(d.rpc_url, d.node), d.ledger.address)
        first = ledger.next_seq(d.node.address)
        store = RecordStore(served_node.env.store_path, readonly=True)
        try:
            records: list[Record] = store.range(first, max(seqs) + 1)
        finally:
            store.close()
        assert [r.seq for r in records] == list(range(first, max(seqs) + 1))
        payload = encode_batch(d.chain_id, records[0].ledger, records[0].node, first, records)
        posted = ledger.post_batch(first, len(records), record_tree(records).root_bytes, dac.put(payload))

        for s in saved:
            report = verify_answer(load_answer(s), verifier)
            assert report.ok, report.text()
            assert report.batch_id == posted.batch_id

    # the SDK: the node itself only knows the record as stored (no batcher here), so it has no proof yet
    with LedgerClient(d.rpc_url, da_url=da.url, ledger=d.ledger.address, node_url=url,
                      from_block=d.deployment.deploy_block) as sdk:
        assert sdk.verify_answer(saved[1]).ok
        with pytest.raises(RecordNotPostedError):
            sdk.record(seqs[1])

    # the CLI on a saved chat answer; and the same file with the text changed fails at ioHash
    good, bad = tmp_path / "chat.json", tmp_path / "changed.json"
    good.write_text(json.dumps(saved[1]))
    changed = json.loads(json.dumps(saved[1]))
    changed["response"]["choices"][0]["message"]["content"] += "!"
    bad.write_text(json.dumps(changed))
    cli = [str(Path(sys.executable).parent / "loraledger"), "verify", "answer"]
    opts = ["--rpc-url", d.rpc_url, "--da-url", da.url, "--ledger", d.ledger.address, "--from-block",
            str(d.deployment.deploy_block)]
    ok = subprocess.run([*cli, str(good), *opts], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout, ok.stdout + ok.stderr
    nope = subprocess.run([*cli, str(bad), *opts], capture_output=True, text=True, timeout=120)
    assert nope.returncode == 1 and "[FAIL] ioHash" in nope.stdout, nope.stdout
