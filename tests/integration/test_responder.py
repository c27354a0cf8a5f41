"""The dispute responder in process, on a fresh anvil with the real DA server over HTTP and a real record store whose
batches the real batcher posted: it answers omission and availability challenges through the batcher's tx manager,
answers again when a reorg drops its answer, resumes from its persisted cursor after a restart, and raises its
alarm for a challenge it cannot answer (a batch whose commitment is not a certificate v3)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from attribution.batcher import Batcher, BatcherConfig
from attribution.chain.artifacts import ArtifactStore
from attribution.chain.client import ChainClient
from attribution.chain.contracts import Ledger
from attribution.chain.disputes import BatchDisputes, DisputeStatus
from attribution.chain.txmgr import TxManager, TxMgrConfig
from attribution.da.client import DAClient
from attribution.devnet.processes import free_port
from attribution.records import PendingRecord
from attribution.records.receipt import sign_receipt
from attribution.responder import AnswerSource, Responder, ResponderConfig
from attribution.store import RecordStore
from tests.fixtures.chain import AnvilNode, DeployedContracts, deploy_fixture_contracts, start_anvil, stop_process
from tests.fixtures.da import DAServerFactory, DAServerProcess


@dataclass
class Env:
    anvil: AnvilNode
    d: DeployedContracts
    da: DAServerProcess
    store: RecordStore
    batcher: Batcher
    disputes: BatchDisputes
    tmp: Path

    def responder(self, **cfg: object) -> Responder:
        ledger = Ledger(self.batcher.txmgr.client, self.d.ledger.address, self.d.ledger.abi)
        answers = AnswerSource(self.store, ledger, DAClient(self.da.url, max_retries=1, backoff=0.05),
                               start_block=self.d.deployment.deploy_block)
        config = ResponderConfig(**{"confirmations": 1, "start_block": self.d.deployment.deploy_block, **cfg})
        return Responder(self.disputes, self.batcher.txmgr, answers, config, state_path=self.tmp / "responder.json")


@pytest.fixture
def env(tmp_path: Path, forge_artifacts: ArtifactStore, da_server_factory: DAServerFactory) -> Iterator[Env]:
    anvil = start_anvil(port=free_port())
    try:
        d = deploy_fixture_contracts(anvil, forge_artifacts)
        da = da_server_factory.start(kzg=False)
        store = RecordStore(tmp_path / "records.db", bytes.fromhex(d.node.address[2:]))
        now = int(anvil.w3.eth.get_block("latest")["timestamp"])
        store.append_many([PendingRecord(d.chain_id, bytes.fromhex(d.ledger.address[2:]),
                                         bytes.fromhex(d.node.address[2:]), b"\x01" * 32, b"\x00" * 32, (), (), 10, 20,
                                         now, os.urandom(32)) for _ in range(12)])
        client = ChainClient(anvil.rpc_url, d.node)
        batcher = Batcher(store, DAClient(da.url, max_retries=1, backoff=0.05),
                          Ledger(client, d.ledger.address, d.ledger.abi),
                          TxManager(client, d.node, TxMgrConfig(resubmit_after_s=1.0)),
                          BatcherConfig(seal_interval_s=0.05, seal_min_records=1, max_batch_records=5,
                                        confirmations=1, poll_interval_s=0.05, backoff_initial_s=0.05,
                                        backoff_max_s=0.5, start_block=d.deployment.deploy_block))
        for _ in range(200):
            batcher.run_once()
            anvil.rpc("evm_mine")
            if [b.state for b in store.batches()] == ["final"] * 3:
                break
        assert [b.count for b in store.batches()] == [5, 5, 2] and store.batches()[-1].state == "final"
        disputes = d.deployment.bind(d.client).disputes
        assert disputes is not None
        yield Env(anvil, d, da, store, batcher, disputes, tmp_path)
        store.close()
    finally:
        stop_process(anvil.proc)


def _omission(env: Env, seq: int) -> int:
    record = env.store.get(seq)
    batch = env.store.batch_of(seq)
    assert batch is not None and batch.onchain_batch_id is not None
    return env.disputes.open_omission(record.abi_values(), sign_receipt(record, env.d.node_key),
                                      batch.onchain_batch_id, account=env.d.accounts[6]).dispute_id


def _sample(r: Responder, name: str, kind: str | None = None) -> float | None:
    return r.metrics.registry.get_sample_value(f"loraledger_disputes_{name}", {"kind": kind} if kind else None)


def _rounds(r: Responder, env: Env, n: int = 4) -> None:
    for _ in range(n):
        r.run_once()
        env.anvil.rpc("evm_mine")


def test_answers_both_kinds_again_after_a_reorg_and_resumes_after_a_restart(env: Env) -> None:
    last_batch = env.store.batches()[-1].onchain_batch_id
    assert last_batch is not None
    ids = [_omission(env, 0), _omission(env, 11),
           env.disputes.open_availability(last_batch, 0, account=env.d.accounts[6]).dispute_id]
    snapshot = env.anvil.rpc("evm_snapshot")
    r = env.responder(confirmations=20)  # the reorg below is shallower than 20 blocks
    _rounds(r, env)
    assert [env.disputes.dispute(i).status for i in ids] == [DisputeStatus.ANSWERED] * 3
    assert _sample(r, "challenges_answered_total", "omission") == 2
    assert _sample(r, "challenges_answered_total", "availability") == 1

    env.anvil.rpc("evm_revert", snapshot)  # a reorg drops the three answers: the challenges read open again
    env.anvil.rpc("anvil_mine", 3)
    assert [env.disputes.dispute(i).status for i in ids] == [DisputeStatus.OPEN] * 3
    _rounds(r, env)
    assert [env.disputes.dispute(i).status for i in ids] == [DisputeStatus.ANSWERED] * 3
    _rounds(r, env, 25)  # 20 blocks deep: settled, and the cursor moves past them
    assert _sample(r, "open") == 0 and _sample(r, "alarm") == 0
    r.answers.da.close()

    # a restart: a new responder reads on from the persisted cursor and answers what was opened meanwhile
    later = _omission(env, 7)
    restarted = env.responder(confirmations=20)
    _rounds(restarted, env)
    assert env.disputes.dispute(later).status is DisputeStatus.ANSWERED
    assert _sample(restarted, "challenges_seen_total", "omission") == 1  # the old challenges are not read again
    assert env.disputes.owed(env.d.node.address) == 3 * env.disputes.omission_bond() + \
        env.disputes.availability_bond()
    restarted.answers.da.close()


def test_a_challenge_it_cannot_answer_raises_the_alarm(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    d = env.d
    first = d.ledger.next_seq(d.node.address)
    now = int(env.anvil.w3.eth.get_block("latest")["timestamp"])
    junk = d.ledger.post_batch(first, 1, os.urandom(32), b"\x01\x00\xd0" + b"not a certificate",
                               first_timestamp=now, last_timestamp=now)
    env.batcher.txmgr.reset_nonce()  # the test sent from the node's key beside its tx manager
    dispute_id = env.disputes.open_availability(junk.batch_id, 0, account=d.accounts[6]).dispute_id
    r = env.responder()
    with caplog.at_level(logging.CRITICAL, logger="attribution.responder.machine"):
        _rounds(r, env, 2)
    assert env.disputes.dispute(dispute_id).status is DisputeStatus.OPEN
    assert _sample(r, "unanswerable_total", "availability") == 1
    assert _sample(r, "alarm") == 1
    assert any("ALARM" in m and str(dispute_id) in m for m in caplog.messages)
    r.answers.da.close()
