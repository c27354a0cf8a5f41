"""Every stop and fault path of the batcher's state machine (issue 25), on the session anvil (reverted after each
test), the real DA server over HTTP and a real SQLite store per test:

- `BatcherInconsistent` (the batcher stops, `fatal`, posts nothing): wrong key, records of another ledger, a posted
  root that is not the store's, `nextSeq` inside a local batch, the chain ahead of the store, a landed batch
  without its `BatchPosted` event in the scanned range;
- `nextSeq` moved before the submit (the same batch landed another way) -> reconciled as posted;
- the postBatch estimate reverts, and a receipt with status 0 (the node was deactivated in between);
- a transaction signed and stored but never broadcast (a crash) is rebroadcast byte for byte;
- a replacement above the fee cap (`FeeCapExceeded`): the batcher keeps waiting for the first transaction;
- a DA rejection other than 413 (a fault the real server cannot produce for a valid payload: a client that raises
  it) is an error with backoff, never a re-split.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from attribution.batcher import Batcher, BatcherConfig, BatcherInconsistent
from attribution.chain.client import ChainClient
from attribution.chain.contracts import Ledger
from attribution.chain.deploy import ONE_TOKEN
from attribution.chain.txmgr import TxManager, TxMgrConfig
from attribution.da.client import DAClient
from attribution.da.errors import DARequestRejected
from attribution.records import PendingRecord
from attribution.store import Batch, RecordStore
from tests.fixtures.chain import AnvilNode, DeployedContracts
from tests.fixtures.da import DAServerProcess
from tests.integration.test_batcher import all_final, drive


@pytest.fixture
def store(tmp_path: Path, deployment: DeployedContracts, chain_snapshot: AnvilNode) -> Iterator[RecordStore]:
    """A fresh store of the deployment's node; the chain is reverted after the test."""
    with RecordStore(tmp_path / "records.db", bytes.fromhex(deployment.node.address[2:])) as s:
        yield s


def pending(d: DeployedContracts, i: int, ledger: str | None = None) -> PendingRecord:
    return PendingRecord(d.chain_id, bytes.fromhex((ledger or d.ledger.address)[2:]), bytes.fromhex(d.node.address[2:]),
                         b"\x01" * 32, b"\x07" * 32, (), (), 10 + i, 20 + i, 1_760_000_000 + i, os.urandom(32))


def append(d: DeployedContracts, store: RecordStore, n: int, ledger: str | None = None) -> None:
    store.append_many([pending(d, store.next_seq() + i, ledger) for i in range(n)])


def make(d: DeployedContracts, store: RecordStore, da: DAServerProcess | DAClient, *, account: Any = None,
         tx: TxMgrConfig | None = None, hook: Callable[[str, Batch], None] | None = None, **cfg: Any) -> Batcher:
    account = account or d.node
    client = ChainClient(d.rpc_url, account)
    ledger = Ledger(client, d.ledger.address, d.ledger.abi)
    defaults: dict[str, Any] = {"seal_interval_s": 0.05, "seal_min_records": 1, "max_batch_records": 40,
                                "confirmations": 1, "poll_interval_s": 0.05, "backoff_initial_s": 0.0001,
                                "backoff_max_s": 0.0001, "resubmit_after_s": 1.0,
                                "start_block": d.deployment.deploy_block}
    da_client = da if isinstance(da, DAClient) else DAClient(da.url, max_retries=0)
    return Batcher(store, da_client, ledger, TxManager(client, account, tx or TxMgrConfig(resubmit_after_s=1.0)),
                   BatcherConfig(**{**defaults, **cfg}), on_transition=hook)


def post_first(d: DeployedContracts, store: RecordStore, da: DAServerProcess, n: int) -> None:
    """`n` records of `store` posted (the chain's nextSeq is then `n`)."""
    append(d, store, n)
    b = make(d, store, da)
    drive(b, lambda: store.batch_counts()["posted"] + store.batch_counts()["final"] == 1)


def stopped(b: Batcher, match: str) -> None:
    """One pass stops the batcher for good with `match` in the reason, and a later pass does nothing."""
    b.run_once()
    assert b.fatal is not None and match in str(b.fatal), b.status()
    assert isinstance(b.fatal, BatcherInconsistent) and b.status()["fatal"] == str(b.fatal)
    before = b.store.batch_counts()
    b.run_once()
    assert b.store.batch_counts() == before


# -- BatcherInconsistent ----------------------------------------------------------------------------------------


def test_a_key_that_is_not_the_store_node_is_refused(deployment: DeployedContracts, store: RecordStore,
                                                     module_da: DAServerProcess) -> None:
    with pytest.raises(BatcherInconsistent, match="use that node's key"):
        make(deployment, store, module_da, account=deployment.accounts[5])


def test_records_of_another_ledger_stop_the_batcher(deployment: DeployedContracts, store: RecordStore,
                                                     module_da: DAServerProcess) -> None:
    append(deployment, store, 3, ledger="0x" + "ab" * 20)
    stopped(make(deployment, store, module_da), "run the batcher of that deployment")
    assert store.batch_counts()["sealed"] == 0


def test_a_posted_root_that_is_not_this_store_stops_the_batcher(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess, tmp_path: Path) -> None:
    post_first(deployment, store, module_da, 5)
    with RecordStore(tmp_path / "other.db", store.node) as other:  # same node, other records: another root
        append(deployment, other, 5)
        b = make(deployment, other, module_da)
        b.seal(force=True)
        stopped(b, "this store is not the one that posted")


def test_next_seq_inside_a_local_batch_stops_the_batcher(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess, tmp_path: Path) -> None:
    post_first(deployment, store, module_da, 5)
    with RecordStore(tmp_path / "other.db", store.node) as other:
        append(deployment, other, 8)
        b = make(deployment, other, module_da)
        b.seal(force=True)  # one local batch [0, 8), the chain is at 5
        stopped(b, "falls inside local batch")


def test_the_chain_ahead_of_the_store_stops_the_batcher(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess, tmp_path: Path) -> None:
    post_first(deployment, store, module_da, 5)
    with RecordStore(tmp_path / "other.db", store.node) as other:
        append(deployment, other, 2)  # nothing sealed: the reconcile before the seal sees the chain at 5
        stopped(make(deployment, other, module_da), "wrong store or node key")
        assert other.batch_counts()["sealed"] == 0


def test_a_landed_batch_without_its_event_in_range_stops_the_batcher(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess,
        chain_snapshot: AnvilNode) -> None:
    append(deployment, store, 4)
    b = make(deployment, store, module_da)
    b.run_once()  # sealed, dispersed, submitted and (automine) mined; the store still says submitted
    assert store.batch_counts()["submitted"] == 1
    head = deployment.client.block_number()
    stopped(make(deployment, store, module_da, start_block=head + 1), "set start_block to the ledger's deploy block")


# -- chain faults -----------------------------------------------------------------------------------------------


def test_next_seq_moved_before_the_submit_is_reconciled_as_posted(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess) -> None:
    append(deployment, store, 6)
    b = make(deployment, store, module_da)
    (sealed,) = b.seal(force=True)
    assert b._disperse(store.get_batch(sealed.batch_id))
    local = store.get_batch(sealed.batch_id)
    assert local.root is not None and local.commitment is not None
    # the same batch lands another way (e.g. an earlier run's transaction): nextSeq is 6 when the batcher submits
    landed = deployment.ledger.post_batch(0, 6, local.root, local.commitment)
    b._need_reconcile = False
    b.run_once()
    now = store.get_batch(sealed.batch_id)
    assert now.state in ("posted", "final") and now.onchain_batch_id == landed.batch_id
    assert now.info.get("txs") in (None, [])  # no transaction of its own was sent


def test_estimate_revert_and_reverted_receipt_then_drain(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess,
        caplog: pytest.LogCaptureFixture) -> None:
    gov = deployment.nodes.with_account(deployment.deployer)
    min_bond = deployment.nodes.min_bond()
    high = 10**12 * ONE_TOKEN  # above the node's bond: the node is inactive, postBatch reverts
    hooked: list[str] = []

    def deactivate_before_broadcast(event: str, b: Batch) -> None:
        if event == "submitted" and not hooked:
            hooked.append(event)
            gov.set_min_bond(high)

    append(deployment, store, 5)
    b = make(deployment, store, module_da, hook=deactivate_before_broadcast)
    b.run_once()  # signed with a good estimate, then mined after the node became inactive: status 0
    b.run_once()  # the receipt has status 0: back to dispersed, reconciled
    assert "postBatch of batch 1 reverted" in caplog.text
    b.run_once()  # the next submit's estimate reverts: an error with backoff, nothing sent
    st = b.status()
    assert hooked and store.batch_counts()["dispersed"] == 1, st
    assert "would revert" in (st["last_error"] or "") and b.fatal is None
    assert store.get_batch(1).info.get("reorgs", 0) == 0 and store.get_batch(1).tx_hash is None
    gov.set_min_bond(min_bond)
    drive(b, all_final(store), mine=None)
    assert deployment.ledger.next_seq(deployment.node.address) == 5


def test_a_stored_but_never_broadcast_transaction_is_rebroadcast(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess) -> None:
    class Crash(Exception):
        pass

    def crash_after_persist(event: str, b: Batch) -> None:
        if event == "submitted":
            raise Crash  # the process dies between persisting the signed tx and broadcasting it

    append(deployment, store, 3)
    b = make(deployment, store, module_da, hook=crash_after_persist)
    with pytest.raises(Crash):
        b.run_once()
    stored = store.batches("submitted")[0]
    assert not b.txmgr.is_known(stored.tx_hash)
    again = make(deployment, store, module_da)
    drive(again, all_final(store))
    assert store.get_batch(stored.batch_id).tx_hash == stored.tx_hash  # the same bytes landed


def test_a_replacement_above_the_fee_cap_keeps_waiting(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess, anvil: AnvilNode,
        caplog: pytest.LogCaptureFixture) -> None:
    tx = TxMgrConfig(tip_wei=1, min_tip_wei=1, resubmit_after_s=0.2, fee_cap_multiple=1.0)
    append(deployment, store, 3)
    b = make(deployment, store, module_da, tx=tx, resubmit_after_s=0.2)
    anvil.rpc("evm_setAutomine", False)
    try:
        drive(b, lambda: store.batch_counts()["submitted"] == 1)
        first = store.batches("submitted")[0]
        drive(b, lambda: "above the cap" in caplog.text, timeout=30)
        assert len(store.get_batch(first.batch_id).info["txs"]) == 1  # no replacement above the cap
    finally:
        anvil.rpc("evm_setAutomine", True)
    anvil.rpc("evm_mine")
    drive(b, all_final(store))
    assert store.get_batch(first.batch_id).tx_hash == first.tx_hash


def test_a_da_rejection_other_than_413_is_retried_not_resplit(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess) -> None:
    class Refusing(DAClient):
        def put(self, payload: bytes) -> bytes:
            raise DARequestRejected("DA put: 400 bad request", status_code=400)

    append(deployment, store, 10)
    b = make(deployment, store, Refusing(module_da.url, max_retries=0))
    b.run_once()
    b.run_once()
    assert b.status()["consecutive_failures"] >= 1 and "DARequestRejected" in (b.status()["last_error"] or "")
    assert [x.count for x in store.batches()] == [10] and store.batch_counts()["sealed"] == 1
    assert b.metrics.registry.get_sample_value("loraledger_batcher_resplits_total") == 0


def test_a_nonce_taken_by_another_transaction_is_signed_again_with_a_fresh_one(
        deployment: DeployedContracts, store: RecordStore, module_da: DAServerProcess,
        caplog: pytest.LogCaptureFixture) -> None:
    """The node key sends something else with the nonce the batcher had signed with (NonceTooLow at broadcast):
    the batch is signed again with the next nonce instead of rebroadcasting a dead transaction for ever."""
    other = ChainClient(deployment.rpc_url, deployment.node)
    taken: list[int] = []

    def use_the_nonce_first(event: str, b: Batch) -> None:
        if event == "submitted" and not taken:
            taken.append(int(b.nonce or 0))
            other.send({"to": deployment.node.address, "value": 0, "nonce": b.nonce})

    append(deployment, store, 4)
    b = make(deployment, store, module_da, hook=use_the_nonce_first)
    drive(b, all_final(store), timeout=60)
    assert taken and "was used by another transaction" in caplog.text
    final = store.batches()[0]
    assert final.nonce is not None and final.nonce > taken[0]
    assert deployment.ledger.next_seq(deployment.node.address) == 4
