"""BatchDisputes against a real anvil: the deploy makes it the only slasher, receipts signed by the node's Python
code are accepted on-chain, and the omission and equivocation games run end to end through the wrapper."""

from __future__ import annotations

import dataclasses
import os

import pytest
from eth_account import Account

from attribution.chain import reverts
from attribution.chain.artifacts import DISPUTES_CONTRACT, ArtifactStore
from attribution.chain.disputes import BatchDisputes, DisputeKind, DisputeStatus
from attribution.chain.errors import ContractRevert
from attribution.chain.reverts import error_class
from attribution.records import Record
from attribution.records.receipt import ReceiptSigner, sign_receipt
from attribution.records.tree import record_tree
from tests.fixtures.chain import AnvilNode, DeployedContracts

COMMITMENT = b"\x01\x00\xd0" + b"cert"


def _disputes(d: DeployedContracts) -> BatchDisputes:
    c = d.deployment.bind(d.client)
    assert c.disputes is not None, "the deploy must deploy BatchDisputes"
    return c.disputes


def _records(d: DeployedContracts, first: int, n: int, ts: int) -> list[Record]:
    node = bytes.fromhex(d.node.address[2:])
    ledger = bytes.fromhex(d.ledger.address[2:])
    return [Record(d.chain_id, ledger, node, first + i, b"\x07" * 32, b"\x00" * 32, (), (), 10, 20, ts,
                   os.urandom(32)) for i in range(n)]


def _now(anvil: AnvilNode) -> int:
    return int(anvil.w3.eth.get_block("latest")["timestamp"])


def test_deploy_makes_batch_disputes_the_only_slasher(deployment: DeployedContracts) -> None:
    disputes = _disputes(deployment)
    assert deployment.nodes.slasher() == disputes.address
    assert disputes.omission_bond() == int(deployment.deployment.params["omissionBond"]) > 0
    assert disputes.windows()["MAX_POSTING_DELAY"] == 7 * 24 * 3600


def test_python_receipt_digest_matches_the_contract(deployment: DeployedContracts) -> None:
    d = deployment
    signer = ReceiptSigner(Account.from_key(d.node_key), d.chain_id, bytes.fromhex(d.ledger.address[2:]))
    leaf = os.urandom(32)
    assert _disputes(d).receipt_digest(d.node.address, 42, leaf) == signer.digest(42, leaf)


def test_omission_answered_pays_the_node(deployment: DeployedContracts, chain_snapshot: AnvilNode) -> None:
    d = deployment
    disputes = _disputes(d)
    first = d.ledger.next_seq(d.node.address)
    records = _records(d, first, 3, _now(chain_snapshot))
    tree = record_tree(records)
    posted = d.ledger.post_batch(first, 3, tree.root_bytes, COMMITMENT, first_timestamp=records[0].timestamp,
                                 last_timestamp=records[0].timestamp)
    receipt = sign_receipt(records[1], d.node_key)
    griefer = d.accounts[5]
    opened = disputes.open_omission(records[1].abi_values(), receipt, posted.batch_id, account=griefer)
    assert disputes.dispute(opened.dispute_id).status is DisputeStatus.OPEN
    answered = disputes.respond_omission(opened.dispute_id, tree.get_proof_bytes(1))
    assert answered.dispute_id == opened.dispute_id
    got = disputes.dispute(opened.dispute_id)
    assert (got.kind, got.status, got.batch_id, got.index) == (DisputeKind.OMISSION, DisputeStatus.ANSWERED,
                                                              posted.batch_id, first + 1)
    assert disputes.owed(d.node.address) == disputes.omission_bond()
    assert d.nodes.node(d.node.address).bonded > 0 and d.nodes.is_active(d.node.address)


def test_overdue_omission_slashes_and_not_yet_due_is_refused(deployment: DeployedContracts,
                                                             chain_snapshot: AnvilNode) -> None:
    d = deployment
    disputes = _disputes(d)
    first = d.ledger.next_seq(d.node.address)
    rec = _records(d, first, 1, _now(chain_snapshot))[0]
    receipt = sign_receipt(rec, d.node_key)
    watcher = d.accounts[6]
    with pytest.raises(error_class("DisputesNotYetDue")) as info:
        disputes.open_omission(rec.abi_values(), receipt, 0, account=watcher)
    assert isinstance(info.value, ContractRevert)
    assert info.value.args_by_name["dueAt"] == rec.timestamp + 7 * 24 * 3600
    chain_snapshot.rpc("evm_increaseTime", 7 * 24 * 3600)
    chain_snapshot.rpc("evm_mine")
    stake = d.nodes.node(d.node.address).bonded
    result = disputes.open_omission(rec.abi_values(), receipt, 0, account=watcher)
    assert result.slashed == stake // 2
    assert disputes.dispute(result.dispute_id).status is DisputeStatus.UPHELD
    assert d.token.balance_of(watcher.address) == stake // 4


def test_equivocation_slashes_at_once(deployment: DeployedContracts, chain_snapshot: AnvilNode) -> None:
    d = deployment
    disputes = _disputes(d)
    recs = _records(d, 999, 2, _now(chain_snapshot))
    a, b = recs[0], dataclasses.replace(recs[1], seq=999)
    assert a.seq == b.seq and a.leaf() != b.leaf()
    stake = d.nodes.node(d.node.address).bonded
    result = disputes.prove_equivocation(d.node.address, 999, a.leaf(), sign_receipt(a, d.node_key), b.leaf(),
                                         sign_receipt(b, d.node_key), account=d.accounts[6])
    assert result.slashed == stake // 2
    assert disputes.dispute(result.dispute_id).kind is DisputeKind.EQUIVOCATION


def test_every_disputes_error_is_decoded_and_a_bad_receipt_names_its_signer(
        deployment: DeployedContracts, forge_artifacts: ArtifactStore, chain_snapshot: AnvilNode) -> None:
    """Every BatchDisputes error decodes to its generated class (each is triggered by selector in the forge suite);
    one more is triggered here: a receipt signed by another key names that key."""
    names = {e["name"] for e in forge_artifacts.load(DISPUTES_CONTRACT).errors() if e["name"].startswith("Disputes")}
    assert len(names) == 26
    for name in names:
        cls = getattr(reverts, name)
        assert cls is error_class(name) and issubclass(cls, ContractRevert)
    d = deployment
    rec = _records(d, d.ledger.next_seq(d.node.address), 1, _now(chain_snapshot))[0]
    forged = sign_receipt(rec, d.accounts[7].key)
    with pytest.raises(error_class("DisputesBadReceipt")) as info:
        _disputes(d).open_omission(rec.abi_values(), forged, 0, account=d.accounts[6])
    assert info.value.args_by_name["signer"] == d.accounts[7].address
