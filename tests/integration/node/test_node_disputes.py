"""The honest node's side of the disputes (docs/disputes.md "Node side"), with real processes: `loraledger node run`
(engine, batcher and dispute responder in one process) on its own anvil, the real DA server over HTTP.

- A griefer opens 100 challenges against the honest node (omission challenges of posted seqs and availability
  challenges, mixed): the node answers every one by itself, is never slashed, the griefer loses every bond and the
  node is owed them all (and withdraws them).
- A DA outage (the DA server process stopped) and an L2 outage (its RPC answering 503) shorter than
  MAX_POSTING_DELAY (6 days of chain time, by anvil's clock): receipts signed during the outage cannot be challenged
  yet; once the parts return the backlog posts, the challenges opened then (after the clock jump) are all answered,
  and nothing is slashed.
"""

from __future__ import annotations

import pathlib
import re
import time
from typing import Any

import httpx
import pytest

from attribution.chain.disputes import BatchDisputes, DisputeKind, DisputeStatus
from attribution.chain.reverts import error_class
from attribution.verify.answers import SavedAnswer, load_answer
from tests.fixtures.batches import node_account
from tests.fixtures.chain import AnvilNode, DeployedContracts, FaultyRpc, own_anvil
from tests.fixtures.da import DAServerFactory, DAServerProcess
from tests.integration.node.conftest import API_KEY, NodeEnv, NodeProcess, second_node_env, start_node

anvil = pytest.fixture(scope="module", name="anvil")(own_anvil)  # this module moves its chain's clock by days

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DAY = 24 * 3600

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _env(env: NodeEnv, root: pathlib.Path, da: DAServerProcess, dev_index: int, rpc_url: str | None = None
         ) -> NodeEnv:
    """Bonded node `dev_index` with a fresh store (so each test needs its own node: seqs restart at 0), its batcher
    and dispute responder inside it."""
    chain = {"rpc_url": rpc_url} if rpc_url else {}
    return second_node_env(env, root, dev_index, chain=chain,
                           batcher={"enabled": True, "da_url": da.url, "seal_interval_s": 0.5, "seal_min_records": 4,
                                    "poll_interval_s": 0.1, "confirmations": 2},
                           disputes={"respond": True, "poll_interval_s": 0.2, "confirmations": 1})


def _disputes(d: DeployedContracts) -> BatchDisputes:
    disputes = d.deployment.bind(d.client).disputes
    assert disputes is not None
    return disputes


def _serve(node: NodeProcess, n: int, tag: str) -> list[SavedAnswer]:
    answers = []
    for i in range(n):
        body = {"model": "tiny-llama", "prompt": f"{tag} question {i}", "max_tokens": 2}
        r = httpx.post(f"{node.url}/v1/completions", json=body, headers=AUTH, timeout=120)
        assert r.status_code == 200, r.text
        answers.append(load_answer({"request": body, "response": r.json()}))
    return answers


def _wait_final(node: NodeProcess, seqs: list[int], timeout: float = 240) -> dict[int, int]:
    """seq -> on-chain batch id, once every seq's batch is final."""
    deadline = time.monotonic() + timeout
    while True:
        records = [httpx.get(f"{node.url}/v1/attribution/records/{s}", headers=AUTH, timeout=30).json() for s in seqs]
        if all(r["status"] == "final" for r in records):
            return {s: int(r["batch"]["onchain_batch_id"]) for s, r in zip(seqs, records, strict=True)}
        assert node.proc.poll() is None and time.monotonic() < deadline, node.log_text()[-3000:]
        time.sleep(0.3)


def _wait_answered(node: NodeProcess, disputes: BatchDisputes, ids: list[int], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        statuses = [disputes.dispute(i).status for i in ids]
        assert DisputeStatus.UPHELD not in statuses
        if all(s is DisputeStatus.ANSWERED for s in statuses):
            return
        assert node.proc.poll() is None and time.monotonic() < deadline, \
            f"{statuses.count(DisputeStatus.OPEN)} still open\n{node.log_text()[-3000:]}"
        time.sleep(0.5)


def _metric(text: str, name: str, kind: str) -> float:
    m = re.search(rf'^{name}{{kind="{kind}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def _open_omission(disputes: BatchDisputes, answer: SavedAnswer, batch_id: int, account: Any) -> int:
    return disputes.open_omission(answer.record.abi_values(), answer.receipt, batch_id, account=account).dispute_id


def test_an_honest_node_challenged_100_times_is_never_slashed(node_env: NodeEnv, da_server_factory: DAServerFactory,
                                                              miner: None, tmp_path: pathlib.Path) -> None:
    d = node_env.deployment
    disputes = _disputes(d)
    da = da_server_factory.start(kzg=False)
    node = start_node(_env(node_env, tmp_path / "node", da, 1))  # the deployment's node
    griefer = d.accounts[6]
    try:
        answers = _serve(node, 8, "grief")
        batch_of = _wait_final(node, [a.seq for a in answers])
        stake = d.nodes.node(d.node.address)
        owed_before = disputes.owed(d.node.address)
        balance_before = d.client.w3.eth.get_balance(griefer.address)
        ids, kinds = [], []
        batches = sorted(set(batch_of.values()))
        for i in range(100):
            if i % 3 == 2:  # availability: chunk 0 (the whole small payload) or 1 (past its end: an empty answer)
                ids.append(disputes.open_availability(batches[i % len(batches)], (i // 3) % 2,
                                                      account=griefer).dispute_id)
                kinds.append(DisputeKind.AVAILABILITY)
            else:
                a = answers[i % len(answers)]
                ids.append(_open_omission(disputes, a, batch_of[a.seq], griefer))
                kinds.append(DisputeKind.OMISSION)
        _wait_answered(node, disputes, ids)
        deadline = time.monotonic() + 60  # the node counts an answer in its round after the answer's receipt
        while "loraledger_disputes_answer_seconds_count 100.0" not in (
                metrics := httpx.get(f"{node.url}/metrics", timeout=30).text):
            assert time.monotonic() < deadline, metrics[-3000:]
            time.sleep(0.3)
    finally:
        assert node.stop() == 0, node.log_text()[-3000:]
    n_av = kinds.count(DisputeKind.AVAILABILITY)
    bonds = (100 - n_av) * disputes.omission_bond() + n_av * disputes.availability_bond()
    assert [disputes.dispute(i).kind for i in ids] == kinds
    assert d.nodes.node(d.node.address) == stake and d.nodes.is_active(d.node.address)  # never slashed
    assert disputes.owed(d.node.address) - owed_before == bonds  # the node is owed every bond
    assert disputes.owed(griefer.address) == 0
    assert balance_before - d.client.w3.eth.get_balance(griefer.address) > bonds  # bonds plus the griefer's gas
    assert _metric(metrics, "loraledger_disputes_challenges_seen_total", "omission") == 100 - n_av
    assert _metric(metrics, "loraledger_disputes_challenges_answered_total", "availability") == n_av
    assert _metric(metrics, "loraledger_disputes_unanswerable_total", "omission") == 0
    assert "loraledger_disputes_alarm 0.0" in metrics
    owed = disputes.owed(d.node.address)
    balance = d.client.w3.eth.get_balance(d.node.address)
    withdrawn = disputes.withdraw(account=d.node)
    assert disputes.receipt_events(withdrawn, "Withdrawn")[0]["amount"] == owed
    assert disputes.owed(d.node.address) == 0 and d.client.w3.eth.get_balance(d.node.address) > balance


def test_outages_shorter_than_the_max_posting_delay_never_slash(node_env: NodeEnv, anvil: AnvilNode,
                                                                da_server_factory: DAServerFactory, miner: None,
                                                                tmp_path: pathlib.Path) -> None:
    d = node_env.deployment
    disputes = _disputes(d)
    da = da_server_factory.start(kzg=False)
    rpc = FaultyRpc(anvil.rpc_url).start()  # the node's only way to the L2
    operator = node_account(d, 8).account.address  # another bonded node: the first test's node has posted seqs
    node = start_node(_env(node_env, tmp_path / "node", da, 8, rpc.url()))
    challenger = d.accounts[7]
    try:
        before = _serve(node, 2, "before")
        _wait_final(node, [a.seq for a in before])
        stake = d.nodes.node(operator)

        da.stop()  # DA outage: records keep being stored and signed, nothing can be dispersed
        during = _serve(node, 3, "da down")
        rpc.http_status = 503  # and the L2 goes too
        during += _serve(node, 3, "da and l2 down")
        anvil.rpc("evm_increaseTime", 6 * DAY)  # the outage lasts six days of chain time (MAX_POSTING_DELAY: 7)
        anvil.rpc("evm_mine")
        for a in during[::2]:  # an honest node cannot be slashed for what the outage kept from the chain
            with pytest.raises(error_class("DisputesNotYetDue")):
                _open_omission(disputes, a, 0, challenger)
        assert d.ledger.next_seq(operator) == len(before)  # nothing of the outage's records is on-chain
        assert {_status(node, a.seq) for a in during} <= {"stored", "sealed"}

        da.start()
        rpc.http_status = None
        batch_of = _wait_final(node, [a.seq for a in during])  # the backlog posts once the parts return
        ids = [_open_omission(disputes, a, batch_of[a.seq], challenger) for a in during]
        ids += [disputes.open_availability(b, 0, account=challenger).dispute_id for b in sorted(set(batch_of.values()))]
        _wait_answered(node, disputes, ids)  # answered after the clock jump, well inside the response window
    finally:
        code = node.stop()
        rpc.stop()
    assert code == 0, node.log_text()[-3000:]
    assert d.nodes.node(operator) == stake and d.nodes.is_active(operator)
    assert all(disputes.dispute(i).status is DisputeStatus.ANSWERED for i in ids)


def _status(node: NodeProcess, seq: int) -> str:
    r = httpx.get(f"{node.url}/v1/attribution/records/{seq}", headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])
