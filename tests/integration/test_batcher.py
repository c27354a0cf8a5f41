"""The batcher end to end, in process: a real `anvil --network optimism`, the real DA server over HTTP, a real
SQLite store. Records → batches final on-chain → each root equals the root rebuilt from the DA payload; DA and
RPC outages, a stuck transaction replaced, a reorg that drops a posted batch."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from attribution.batcher import Batcher, BatcherConfig, BatcherError
from attribution.chain.artifacts import ArtifactStore
from attribution.chain.client import ChainClient
from attribution.chain.contracts import Ledger
from attribution.chain.txmgr import TxManager, TxMgrConfig
from attribution.da.client import DAClient
from attribution.devnet.processes import free_port
from attribution.records import PendingRecord
from attribution.records.payload import decode_batch
from attribution.records.tree import record_tree
from attribution.store import RecordStore
from tests.fixtures.chain import (
    AnvilNode,
    DeployedContracts,
    deploy_fixture_contracts,
    start_anvil,
    stop_process,
)
from tests.fixtures.da import DAServerFactory, DAServerProcess


@dataclass
class Env:
    anvil: AnvilNode
    deployed: DeployedContracts
    da: DAServerProcess
    store: RecordStore
    tmp: Path

    def pending(self, i: int) -> PendingRecord:
        d = self.deployed
        return PendingRecord(d.chain_id, bytes.fromhex(d.ledger.address[2:]), bytes.fromhex(d.node.address[2:]),
                             bytes([1 + i % 3]) * 32, bytes([7 + i % 2]) * 32 if i % 4 else b"\x00" * 32, (), (),
                             10 + i, 20 + i, 1_760_000_000 + i, os.urandom(32))

    def append(self, n: int) -> None:
        start = self.store.next_seq()
        self.store.append_many([self.pending(start + i) for i in range(n)])

    def batcher(self, rpc_url: str | None = None, tx: TxMgrConfig | None = None, **cfg: Any) -> Batcher:
        client = ChainClient(rpc_url or self.anvil.rpc_url, self.deployed.node)
        ledger = Ledger(client, self.deployed.ledger.address, self.deployed.ledger.abi)
        txmgr = TxManager(client, self.deployed.node, tx or TxMgrConfig(resubmit_after_s=1.0))
        defaults: dict[str, Any] = {"seal_interval_s": 0.05, "seal_min_records": 1, "max_batch_records": 40,
                                    "confirmations": 1, "poll_interval_s": 0.05, "backoff_initial_s": 0.05,
                                    "backoff_max_s": 0.5, "resubmit_after_s": 1.0,
                                    "start_block": self.deployed.deployment.deploy_block}
        return Batcher(self.store, DAClient(self.da.url, max_retries=1, backoff=0.05), ledger, txmgr,
                       BatcherConfig(**{**defaults, **cfg}))


def drive(b: Batcher, done: Callable[[], bool], timeout: float = 60.0, mine: AnvilNode | None = None) -> None:
    """Run pipeline passes until `done()` (mining a block per pass when asked, for confirmations)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout}s: {b.status()}")
        b.run_once()
        if mine is not None:
            mine.rpc("evm_mine")
        time.sleep(0.02)


def all_final(store: RecordStore) -> Callable[[], bool]:
    def check() -> bool:
        bs = store.batches()
        return bool(bs) and bs[-1].end_seq == store.next_seq() and all(b.state == "final" for b in bs)
    return check


def check_ledger_matches(env: Env, expect_records: int) -> None:
    """Invariants 2 and 4: every record in exactly one posted batch, gap-free, roots rebuilt from DA."""
    ledger = env.deployed.ledger
    assert ledger.next_seq(env.deployed.node.address) == expect_records
    events = ledger.batch_posted_events(from_block=env.deployed.deployment.deploy_block,
                                        node=env.deployed.node.address)
    seqs = 0
    with DAClient(env.da.url) as da:
        for ev in events:
            assert int(ev["firstSeq"]) == seqs  # gap-free, no overlap: each record in exactly one batch
            seqs += int(ev["count"])
            decoded = decode_batch(da.get(bytes(ev["daCommitment"])))
            assert (decoded.first_seq, decoded.count) == (int(ev["firstSeq"]), int(ev["count"]))
            rebuilt = record_tree(decoded.records, decoded.leaves()).root
            assert rebuilt == "0x" + bytes(ev["root"]).hex()
            assert ledger.batch(int(ev["batchId"])).root == bytes(ev["root"])
    assert seqs == expect_records
    local = env.store.batches()
    assert [(b.first_seq, b.count, b.onchain_batch_id) for b in local] == [
        (int(e["firstSeq"]), int(e["count"]), int(e["batchId"])) for e in events]
    for b in local:  # every stored record equals its copy in the DA payload
        assert env.store.range(b.first_seq, b.end_seq) == decode_batch(env.store.batch_payload(b.batch_id)).records


@pytest.fixture
def env(tmp_path: Path, forge_artifacts: ArtifactStore, da_server_factory: DAServerFactory) -> Iterator[Env]:
    anvil = start_anvil(port=free_port(), state=tmp_path / "anvil-state.json")
    try:
        deployed = deploy_fixture_contracts(anvil, forge_artifacts)
        da = da_server_factory.start(enable_faults=True, kzg_workers=1)
        store = RecordStore(tmp_path / "records.db", bytes.fromhex(deployed.node.address[2:]))
        e = Env(anvil, deployed, da, store, tmp_path)
        yield e
        store.close()
    finally:
        stop_process(anvil.proc)


def test_records_become_final_batches_whose_roots_match_da(env: Env) -> None:
    env.append(95)
    b = env.batcher(confirmations=3)
    drive(b, all_final(env.store), mine=env.anvil)
    assert [x.count for x in env.store.batches()] == [40, 40, 15]
    check_ledger_matches(env, 95)
    b.start()  # one batcher per store: a second one is refused
    try:
        with pytest.raises(BatcherError, match="another batcher"):
            env.batcher().start()
    finally:
        b.stop()
    st = b.status()
    assert st["backlog_records"] == 0 and st["batches"]["final"] == 3 and st["fatal"] is None
    final = env.store.batches()[-1]
    assert final.info["gas_used"] > 0 and final.info["gas_per_record"] == final.info["gas_used"] / 15
    m = b.metrics.registry
    assert m.get_sample_value("loraledger_batcher_batches", {"state": "final"}) == 3
    assert m.get_sample_value("loraledger_batcher_last_final_seq") == 94
    assert m.get_sample_value("loraledger_batcher_backlog_records") == 0
    assert m.get_sample_value("loraledger_batcher_da_put_seconds_count") == 3
    # more records later: sealed after the earlier batches, never a different range
    env.append(5)
    drive(b, all_final(env.store), mine=env.anvil)
    check_ledger_matches(env, 100)


def test_payload_the_da_refuses_for_size_is_resplit(env: Env, da_server_factory: DAServerFactory) -> None:
    env.da = da_server_factory.start(kzg=False, extra_args=["--max-payload-bytes", "2600"])  # 20 records fit
    env.append(70)
    b = env.batcher(max_batch_records=40)  # 40 records = 3.4 KB (9 profiles): 413, re-split to 20
    drive(b, all_final(env.store))
    assert [x.count for x in env.store.batches()] == [20, 20, 20, 10]
    assert b.metrics.registry.get_sample_value("loraledger_batcher_resplits_total") == 1
    check_ledger_matches(env, 70)


def test_da_outage_and_503_then_drain(env: Env) -> None:
    env.append(30)
    b = env.batcher()
    env.da.set_faults(put_503=True)  # the DA answers 503 to every put
    for _ in range(20):
        b.run_once()
        time.sleep(0.03)
    assert b.status()["consecutive_failures"] > 0 and env.store.batch_counts()["dispersed"] == 0
    env.da.kill()  # and then it is down altogether
    for _ in range(10):
        b._next_try = 0.0
        b.run_once()
    assert b.metrics.registry.get_sample_value("loraledger_batcher_backlog_records") == 30
    env.append(10)  # serving goes on: the store takes records while DA is down
    env.da.start()
    env.da.set_faults(put_503=0)
    drive(b, all_final(env.store))
    check_ledger_matches(env, 40)
    errors = b.metrics.registry.get_sample_value("loraledger_batcher_errors_total", {"kind": "DAUnavailable"})
    assert errors is not None and errors > 0


def test_anvil_stopped_and_restarted_with_state(env: Env) -> None:
    env.append(50)
    b = env.batcher()
    drive(b, lambda: env.store.batch_counts()["final"] >= 1)
    port = env.anvil.port
    stop_process(env.anvil.proc)  # SIGTERM: anvil writes its state file
    env.append(30)
    for _ in range(10):
        b._next_try = 0.0
        b.run_once()
    assert b.status()["last_error"] is not None  # RPC down: backing off, nothing lost
    restarted = start_anvil(port=port, state=env.tmp / "anvil-state.json")  # the same port: a restart
    env.anvil.proc = restarted.proc
    drive(b, all_final(env.store))
    check_ledger_matches(env, 80)


def test_stuck_transaction_is_replaced_with_bumped_fees(env: Env) -> None:
    env.append(10)
    b = env.batcher(tx=TxMgrConfig(tip_wei=1, min_tip_wei=1, resubmit_after_s=0.5), resubmit_after_s=0.5)
    env.anvil.rpc("evm_setAutomine", False)
    try:
        drive(b, lambda: env.store.batch_counts()["submitted"] == 1)
        first = env.store.batches("submitted")[0]
        deadline = time.monotonic() + 30
        while len(env.store.get_batch(first.batch_id).info.get("txs", [])) < 2:
            assert time.monotonic() < deadline, b.status()
            b.run_once()
            time.sleep(0.1)
        txs = env.store.get_batch(first.batch_id).info["txs"]
        assert txs[1]["nonce"] == txs[0]["nonce"]
        assert int(txs[1]["max_priority_fee_per_gas"]) >= int(txs[0]["max_priority_fee_per_gas"]) * 110 // 100
    finally:
        env.anvil.rpc("evm_setAutomine", True)
    env.anvil.rpc("evm_mine")
    drive(b, all_final(env.store))
    final = env.store.get_batch(first.batch_id)
    assert final.tx_hash is not None and final.tx_hash.hex() != txs[0]["tx_hash"][2:]  # the replacement landed
    assert env.deployed.client.w3.eth.get_transaction_receipt(final.tx_hash)["status"] == 1
    assert b.metrics.registry.get_sample_value("loraledger_batcher_tx_resubmissions_total") >= 1
    check_ledger_matches(env, 10)


def test_reorg_that_drops_a_posted_batch_reposts_it(env: Env) -> None:
    env.append(20)
    b = env.batcher(confirmations=4)
    snap = env.anvil.rpc("evm_snapshot")
    drive(b, lambda: env.store.batch_counts()["posted"] == 1)
    posted = env.store.batches("posted")[0]
    assert env.deployed.ledger.next_seq(env.deployed.node.address) == 20
    env.anvil.rpc("evm_revert", snap)  # the block with the postBatch is gone
    env.anvil.rpc("evm_mine")
    env.anvil.rpc("evm_mine")
    assert env.deployed.ledger.next_seq(env.deployed.node.address) == 0
    drive(b, all_final(env.store), mine=env.anvil)
    assert b.metrics.registry.get_sample_value("loraledger_batcher_reorged_batches_total") == 1
    assert env.store.get_batch(posted.batch_id).info["reorgs"] == 1
    check_ledger_matches(env, 20)
