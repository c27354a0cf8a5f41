"""Everyone sees disputes, and rewards obey them (issue 22), on a fresh anvil with the real DA server.

The world: a liar node posts a batch and does not publish a challenged chunk of it: the availability challenge
expires (`evm_increaseTime` past the response window) and `settleExpired` slashes it and marks the batch
unavailable. An honest node answers an omission challenge on one of its batches, and has an availability challenge
still open on another. Then:
- rewards: the epoch leaves the unavailable batch's usage out (the liar owes nothing), counts the batch whose
  challenge is still open at the end block, and `loraledger rewards verify` passes; an epoch ending before the mark
  would have counted the batch (the rule reads the chain at the end block);
- the indexer (SQLite and PostgreSQL) indexes every dispute event and serves them (list, by node, by batch, in the
  batch's and the node's JSON); a reorg that drops a dispute drops it from the index too;
- `loraledger verify batch` and `verify answer` show the disputes; a record in the unavailable batch earns nothing.

Its own anvil: the test moves the chain's clock two days ahead.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from attribution.chain.client import ChainClient
from attribution.chain.disputes import BatchDisputes, DisputeStatus
from attribution.da.client import DAClient
from attribution.indexer.api import create_app
from attribution.indexer.db import open_engine
from attribution.indexer.follower import Indexer
from attribution.indexer.schema import dispute_events
from attribution.records import Record
from attribution.records.receipt import sign_receipt
from attribution.records.tree import record_tree
from attribution.rewards.epochs import UNAVAILABLE, RewardsChain
from attribution.verify import Verifier
from attribution.verify.answers import load_answer, verify_answer
from attribution.verify.client import LedgerClient
from tests.fixtures.batches import PROFILES, NodeAccount, Published, make_answer, node_account, publish, register_assets
from tests.fixtures.chain import AnvilNode, DeployedContracts, own_anvil
from tests.fixtures.da import DAServerProcess

anvil = pytest.fixture(scope="module", name="anvil")(own_anvil)

CLI = str(Path(sys.executable).parent / "loraledger")
PRICE = 1_000  # register_assets' adapter: pricePerMTokens
TOKENS = 1_000_000  # prompt tokens per record: a fee of PRICE per adapter record


@dataclass
class World:
    honest: NodeAccount
    liar: NodeAccount
    gone: Published  # the liar's batch, marked unavailable
    kept: Published  # the honest node's batch whose omission challenge was answered
    pending: Published  # the honest node's batch with an availability challenge still open
    answer: dict[str, Any]  # a saved answer whose record is in `gone`
    unavailable_id: int
    answered_id: int
    open_id: int
    slashed: int
    before_mark: int  # the last block before the batch was marked unavailable


def _records(d: DeployedContracts, node: NodeAccount, n: int, first: int | None = None) -> list[Record]:
    """`n` records served now, alternating the priced adapter and the bare base model."""
    first = node.ledger.next_seq(node.address) if first is None else first
    now = int(d.client.w3.eth.get_block("latest")["timestamp"])
    ledger = bytes.fromhex(d.ledger.address[2:])
    out = []
    for i in range(n):
        p = PROFILES[i % 2]
        out.append(Record(d.chain_id, ledger, bytes.fromhex(node.address[2:]), first + i, p.model_id, p.adapter_id,
                          p.dataset_ids, p.weights_bps, TOKENS, 7 + i, now, bytes([first + i]) * 32))
    return out


def _fees(records: list[Record]) -> int:
    return sum((r.prompt_tokens + r.completion_tokens) * PRICE // 1_000_000 for r in records
               if r.adapter_id != bytes(32))


def _disputes(d: DeployedContracts) -> BatchDisputes:
    c = d.deployment.bind(d.client)
    assert c.disputes is not None
    return c.disputes


@pytest.fixture(scope="module")
def world(deployment: DeployedContracts, anvil: AnvilNode, module_da_client: DAClient) -> World:
    d = deployment
    register_assets(d)
    honest, liar = node_account(d, 1), node_account(d, 9)
    for n in (honest, liar):
        d.rewards.approve_and_deposit(d.token, n.address, 10**12, account=n.account)
    disputes = _disputes(d)
    challenger = d.accounts[5]

    first = liar.ledger.next_seq(liar.address)
    answer, record = make_answer(d, liar, first)
    gone = publish(d, liar, module_da_client, [record, *_records(d, liar, 3, first + 1)])
    kept = publish(d, honest, module_da_client, _records(d, honest, 3))

    withheld = disputes.open_availability(gone.batch_id, 0, account=challenger)
    asked = disputes.open_omission(kept.records[1].abi_values(), sign_receipt(kept.records[1], honest.account.key),
                                   kept.batch_id, account=challenger)
    disputes.respond_omission(asked.dispute_id, record_tree(kept.records).get_proof_bytes(1), account=honest.account)

    stake = d.nodes.node(liar.address).bonded
    anvil.rpc("evm_increaseTime", disputes.windows()["RESPONSE_WINDOW"] + 1)
    anvil.rpc("evm_mine")
    before_mark = d.client.block_number()
    settled = disputes.settle_expired(withheld.dispute_id, account=challenger)
    assert disputes.is_unavailable(gone.batch_id) and settled.slashed > 0
    assert d.nodes.node(liar.address).bonded < stake

    pending = publish(d, honest, module_da_client, _records(d, honest, 2))
    still = disputes.open_availability(pending.batch_id, 0, account=challenger)
    anvil.rpc("evm_mine")  # the plan's end block (head - 1) holds everything above
    return World(honest, liar, gone, kept, pending, answer, withheld.dispute_id, asked.dispute_id, still.dispute_id,
                 settled.slashed, before_mark)


# -- rewards ------------------------------------------------------------------------------------------------------

def test_epoch_leaves_the_unavailable_batch_out_and_rewards_verify_agrees(
        world: World, deployment: DeployedContracts, module_da: DAServerProcess, module_da_client: DAClient,
        tmp_path: Path) -> None:
    d, w = deployment, world
    rc = RewardsChain(d.deployment.bind(d.client), module_da_client)

    # the rule reads the chain at the end block: an epoch ending before the mark would still count the batch
    early = rc.compute(rc.plan(to_block=w.before_mark))
    assert {b.batch_id: b.counted for b in early.result.batches}[w.gone.batch_id] is True

    epoch = rc.compute(rc.plan())
    disputes = _disputes(d)
    assert disputes.fn("isUnavailable", w.gone.batch_id).call(block_identifier=epoch.plan.to_block) is True
    assert disputes.open_availability_challenges(w.pending.batch_id) == 1
    got = {b.batch_id: (b.verdict, b.counted) for b in epoch.result.batches}
    assert got == {w.gone.batch_id: (UNAVAILABLE, False), w.kept.batch_id: ("ok", True),
                   w.pending.batch_id: ("ok", True)}  # an open challenge at the end block does not stop a batch
    assert w.liar.address not in epoch.result.nodes  # its only batch earns nothing and costs nothing
    assert epoch.result.nodes[w.honest.address].debit == _fees(w.kept.records + w.pending.records) > 0
    assert epoch.result.debits == _fees(w.kept.records + w.pending.records)
    assert [b for b in epoch.payload["batches"] if b["batchId"] == w.gone.batch_id][0]["verdict"] == UNAVAILABLE

    proposal = rc.publish(epoch, account=d.accounts[2])
    assert dict(zip(proposal.nodes, proposal.debits, strict=True)) == {w.honest.address: epoch.result.debits}
    assert rc.verify(proposal.epoch).ok

    dep = d.deployment.save(tmp_path / "deployment.json")
    out = subprocess.run([CLI, "rewards", "verify", "--epoch", str(proposal.epoch), "--rpc-url", d.rpc_url,
                          "--da-url", module_da.url, "--deployment", str(dep)], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok" in out.stdout


def test_rewards_without_a_disputes_contract_count_every_verified_batch(
        world: World, deployment: DeployedContracts, module_da_client: DAClient) -> None:
    d, w = deployment, world
    contracts = dataclasses.replace(d.deployment.bind(d.client), disputes=None)  # a deployment before disputes
    rc = RewardsChain(contracts, module_da_client)
    assert rc.unavailable_batches(d.client.block_number()) == set()
    batches = rc.batches(d.deployment.deploy_block, w.pending.block_number)
    assert {b.posted.batch_id: b.verdict for b in batches}[w.gone.batch_id] == "ok"


# -- indexer ------------------------------------------------------------------------------------------------------

def _indexer(d: DeployedContracts, url: str, da_url: str, page_blocks: int = 5) -> Indexer:
    return Indexer(open_engine(url), ChainClient(d.rpc_url), d.ledger.address,
                   DAClient(da_url, timeout=30, max_retries=1, backoff=0.01), registry=d.assets.address,
                   deploy_block=d.deployment.deploy_block, confirmations=0, page_blocks=page_blocks,
                   disputes=_disputes(d).address)


def _catch_up(idx: Indexer) -> None:
    for _ in range(300):
        stats = idx.sync_once()
        if stats.cursor >= stats.head and stats.pending == 0:
            return
    raise AssertionError("indexer did not catch up")


def test_indexer_serves_every_dispute(world: World, deployment: DeployedContracts, module_da: DAServerProcess,
                                      index_db: str) -> None:
    d, w = deployment, world
    idx = _indexer(d, index_db, module_da.url)
    _catch_up(idx)
    api = TestClient(create_app(idx.engine))
    listed = api.get("/v1/disputes").json()["disputes"]
    by_id = {x["disputeId"]: x for x in listed}
    assert [x["disputeId"] for x in listed] == sorted(by_id, reverse=True)  # newest first
    contract = _disputes(d)
    for i, x in by_id.items():  # the folded status is the contract's own
        assert x["status"] == contract.dispute(i).status.name.lower()

    gone = by_id[w.unavailable_id]
    assert (gone["kind"], gone["status"], gone["node"], gone["batchId"], gone["index"]) == \
        ("availability", "upheld", w.liar.address, w.gone.batch_id, 0)
    assert gone["markedUnavailable"] and int(gone["slashed"]) == w.slashed > 0
    assert int(gone["toChallenger"]) + int(gone["toTreasury"]) == w.slashed
    assert gone["challenger"] == d.accounts[5].address and gone["opened"] and gone["closed"]
    answered = by_id[w.answered_id]
    assert (answered["kind"], answered["status"], answered["index"], answered["batchId"]) == \
        ("omission", "answered", w.kept.records[1].seq, w.kept.batch_id)
    assert answered["leaf"] == "0x" + w.kept.records[1].leaf().hex() and answered["slashed"] == "0"
    assert (by_id[w.open_id]["status"], by_id[w.open_id]["closed"]) == ("open", None)

    assert [x["disputeId"] for x in api.get(f"/v1/disputes?node={w.liar.address}").json()["disputes"]] == \
        [w.unavailable_id]
    assert [x["disputeId"] for x in api.get(f"/v1/disputes?batch={w.kept.batch_id}").json()["disputes"]] == \
        [w.answered_id]
    assert [x["disputeId"] for x in api.get("/v1/disputes?status=open").json()["disputes"]] == [w.open_id]
    assert api.get("/v1/disputes/" + str(w.answered_id)).json() == answered

    batch = api.get(f"/v1/batches/{w.gone.batch_id}").json()
    assert batch["unavailable"] is True and [x["disputeId"] for x in batch["disputes"]] == [w.unavailable_id]
    assert api.get(f"/v1/batches/{w.kept.batch_id}").json()["unavailable"] is False
    listing = {b["batchId"]: b["unavailable"] for b in api.get("/v1/batches").json()["batches"]}
    assert listing[w.gone.batch_id] is True and listing[w.kept.batch_id] is False
    node = api.get(f"/v1/nodes/{w.liar.address}/disputes").json()
    assert node["slashed"] == str(w.slashed) and node["unavailableBatches"] == [w.gone.batch_id]
    assert node["disputeCounts"] == {"open": 0, "answered": 0, "upheld": 1}
    honest = api.get(f"/v1/nodes/{w.honest.address}/disputes").json()
    assert honest["slashed"] == "0" and honest["disputeCounts"] == {"open": 1, "answered": 1, "upheld": 0}
    assert api.get("/v1/status").json()["disputes"] == {"open": 1, "answered": 1, "upheld": 1}

    bad = api.get("/v1/disputes?status=lost")
    assert bad.status_code == 400 and "status" in bad.json()["error"]["message"]
    assert api.get("/v1/disputes?node=0x12").status_code == 400
    missing = api.get("/v1/disputes/999")
    assert missing.status_code == 404 and "dispute 999" in missing.json()["error"]["message"]
    idx.engine.dispose()


def test_an_index_made_without_disputes_back_fills_them(world: World, deployment: DeployedContracts,
                                                        module_da: DAServerProcess, tmp_path: Path) -> None:
    d = deployment
    url = str(tmp_path / "old.db")
    old = Indexer(open_engine(url), ChainClient(d.rpc_url), d.ledger.address, DAClient(module_da.url, timeout=30),
                  registry=d.assets.address, deploy_block=d.deployment.deploy_block, confirmations=0, page_blocks=50)
    _catch_up(old)
    with old.engine.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(dispute_events)).scalar() == 0
    old.engine.dispose()
    again = _indexer(d, url, module_da.url)  # now with the BatchDisputes address: the passed blocks are back-filled
    fresh = _indexer(d, str(tmp_path / "fresh.db"), module_da.url)
    _catch_up(again)
    _catch_up(fresh)
    api = TestClient(create_app(again.engine))
    assert api.get("/v1/disputes").json() == TestClient(create_app(fresh.engine)).get("/v1/disputes").json()
    assert api.get("/v1/status").json()["disputes"] == {"open": 1, "answered": 1, "upheld": 1}
    again.engine.dispose()
    fresh.engine.dispose()


# -- verify -------------------------------------------------------------------------------------------------------

def test_verify_batch_and_answer_show_the_disputes(world: World, deployment: DeployedContracts,
                                                  module_da_client: DAClient, tmp_path: Path) -> None:
    d, w = deployment, world
    disputes = _disputes(d).address
    opts = ["--rpc-url", d.rpc_url, "--da-url", module_da_client.base_url, "--ledger", d.ledger.address,
            "--from-block", str(d.deployment.deploy_block), "--disputes", disputes]

    gone = subprocess.run([CLI, "verify", "batch", str(w.gone.batch_id), "--json", *opts], capture_output=True,
                          text=True, timeout=120, check=False)
    assert gone.returncode == 1, gone.stderr  # the payload verifies, but the chain marked the batch unavailable
    data = json.loads(gone.stdout)
    assert data["verdict"] == "ok" and data["disputes"]["unavailable"] is True
    assert data["disputes"]["earnsRewards"] is False
    assert [(x["disputeId"], x["status"], x["slashed"]) for x in data["disputes"]["disputes"]] == \
        [(w.unavailable_id, "upheld", str(w.slashed))]
    text = subprocess.run([CLI, "verify", "batch", str(w.gone.batch_id), *opts], capture_output=True, text=True,
                          timeout=120, check=False)
    assert "unavailable" in text.stdout and "earn nothing" in text.stdout and "availability of chunk 0" in text.stdout

    kept = subprocess.run([CLI, "verify", "batch", str(w.kept.batch_id), *opts], capture_output=True, text=True,
                          timeout=120, check=False)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "1 answered" in kept.stdout and "answered (the node was honest)" in kept.stdout
    pending = subprocess.run([CLI, "verify", "batch", str(w.pending.batch_id), "--json", *opts],
                             capture_output=True, text=True, timeout=120, check=False)
    assert pending.returncode == 0, pending.stderr
    assert [x["status"] for x in json.loads(pending.stdout)["disputes"]["disputes"]] == ["open"]

    # the saved answer whose record is in the unavailable batch: recorded and provable, but earning nothing
    verifier = Verifier(d.ledger, module_da_client, from_block=d.deployment.deploy_block, disputes=_disputes(d))
    report = verify_answer(load_answer(w.answer), verifier)
    step = next(s for s in report.steps if s.name == "batch available (BatchDisputes)")
    assert step.passed is False and "earns nothing" in step.detail and not report.ok
    assert report.disputes is not None and report.disputes.unavailable
    assert [s.passed for s in report.steps if s.name != step.name] == [True] * (len(report.steps) - 1)
    with LedgerClient(d.rpc_url, da_url=module_da_client.base_url, ledger=d.ledger.address,
                      from_block=d.deployment.deploy_block, disputes=_disputes(d).address) as sdk:
        via_sdk = sdk.verify_answer(w.answer)  # the dApp SDK reports the same
    assert via_sdk.disputes is not None and via_sdk.disputes.unavailable and not via_sdk.ok
    saved = tmp_path / "answer.json"
    saved.write_text(json.dumps(w.answer))
    out = subprocess.run([CLI, "verify", "answer", str(saved), *opts], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 1 and "earns nothing" in out.stdout and "NOT VERIFIED" in out.stdout, out.stdout
    js = subprocess.run([CLI, "verify", "answer", str(saved), "--json", *opts], capture_output=True, text=True,
                        timeout=120, check=False)
    assert json.loads(js.stdout)["disputes"]["earnsRewards"] is False


# -- reorg (last: it rewrites the chain's head) ----------------------------------------------------------------

def test_a_reorg_drops_the_dispute_it_removed(world: World, deployment: DeployedContracts, anvil: AnvilNode,
                                             module_da: DAServerProcess, index_db: str,
                                             request: pytest.FixtureRequest, tmp_path: Path) -> None:
    d, w = deployment, world
    idx = _indexer(d, index_db, module_da.url, page_blocks=50)
    _catch_up(idx)
    contract = _disputes(d)
    challenger = d.accounts[6]
    rec = w.kept.records[2]
    opened = contract.open_omission(rec.abi_values(), sign_receipt(rec, w.honest.account.key), w.kept.batch_id,
                                    account=challenger)
    _catch_up(idx)
    api = TestClient(create_app(idx.engine))
    assert api.get(f"/v1/disputes/{opened.dispute_id}").json()["status"] == "open"

    anvil.rpc("anvil_reorg", 1, [])  # the block holding the challenge is replaced by an empty one
    d.client.reset_nonce()
    contract.client.reset_nonce()
    assert contract.dispute(opened.dispute_id).status is DisputeStatus.NONE
    anvil.rpc("evm_mine")
    _catch_up(idx)
    assert api.get(f"/v1/disputes/{opened.dispute_id}").status_code == 404
    assert api.get(f"/v1/nodes/{w.honest.address}/disputes").json()["disputeCounts"]["open"] == 1

    fresh_url = str(tmp_path / "fresh.db") if index_db.endswith(".db") else \
        request.getfixturevalue("postgres_cluster").new_database()
    fresh = _indexer(d, fresh_url, module_da.url, page_blocks=500)
    _catch_up(fresh)

    def events(engine: Any) -> list[tuple[Any, ...]]:
        with engine.connect() as conn:
            return [tuple(bytes(x) if isinstance(x, memoryview) else x for x in r)
                    for r in conn.execute(sa.select(dispute_events).order_by(dispute_events.c.block_number,
                                                                             dispute_events.c.log_index))]

    assert events(idx.engine) == events(fresh.engine) and len(events(idx.engine)) >= 5
    idx.engine.dispose()
    fresh.engine.dispose()
