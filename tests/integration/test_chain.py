"""The chain layer against a real anvil: deploy, register assets, bond, post and read batches, verify records
with real Merkle proofs, and decode every custom error the contracts can be made to raise."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account

from attribution.chain import reverts
from attribution.chain.artifacts import CORE_CONTRACTS, DISPUTES_CONTRACT, ArtifactStore
from attribution.chain.client import ChainClient
from attribution.chain.commitments import commitment_from_tx
from attribution.chain.contracts import (
    AssetKind,
    NodeRegistry,
    Token,
    adapter_id_for,
    dataset_id_for,
)
from attribution.chain.deploy import Deployment
from attribution.chain.errors import CommitmentNotFound, ContractRevert, DeploymentError
from attribution.chain.reverts import error_class
from attribution.hashing import keccak256
from attribution.merkle import StandardMerkleTree
from attribution.records import Record
from attribution.records.tree import record_tree
from tests.fixtures.chain import AnvilNode, DeployedContracts

ZERO = "0x" + "00" * 20
ZERO32 = b"\x00" * 32
COMMITMENT = b"\x01\x00\xd0" + b"cert"


def rand32() -> bytes:
    return os.urandom(32)


def make_records(d: DeployedContracts, first_seq: int, n: int, adapter: bytes = ZERO32,
                 datasets: tuple[bytes, ...] = (), weights: tuple[int, ...] = ()) -> list[Record]:
    node = bytes.fromhex(d.node.address[2:])
    ledger = bytes.fromhex(d.ledger.address[2:])
    return [Record(d.chain_id, ledger, node, first_seq + i, b"\x07" * 32, adapter, datasets, weights, 10 + i, 20 + i,
                   1_790_000_000 + i, rand32()) for i in range(n)]


# ----------------------------------------------------------------------------------------------------------------
# deployment
# ----------------------------------------------------------------------------------------------------------------


def test_deploy_wires_roles_and_bonds_node(deployment: DeployedContracts, forge_artifacts: ArtifactStore) -> None:
    d = deployment
    accounts = d.accounts
    for name in CORE_CONTRACTS:
        assert d.client.has_code(d.addresses[name]), name
        assert d.deployment.contracts[name]["abiHash"] == forge_artifacts.load(name).abi_hash
    assert d.ledger.registry() == d.nodes.address
    assert d.nodes.stake_token() == d.token.address
    assert d.nodes.governance() == d.deployer.address
    assert d.rewards.token() == d.token.address
    assert d.rewards.roles() == {"governance": accounts[0].address, "poster": accounts[2].address,
                                 "guardian": accounts[3].address, "treasury": accounts[4].address}
    assert d.rewards.node_registry() == d.nodes.address
    assert d.assets.governance() == d.nodes.governance() == d.deployer.address
    assert d.assets.change_delay() == 3600 and d.assets.max_price_per_m_tokens() == 10_000 * 10**18
    assert d.rewards.shares() == (2000, 3000)
    assert d.rewards.challenge_window() == 3600 == d.rewards.limits()["MIN_CHALLENGE_WINDOW"]
    assert d.nodes.unbonding_delay() == 14 * 24 * 3600 == d.nodes.limits()["MIN_UNBONDING_DELAY"]
    assert d.ledger.limits() == {"MAX_BATCH_RECORDS": 270_598, "MAX_COMMITMENT_BYTES": 24_576}
    assert "TimelockController" not in d.deployment.contracts  # devnet mode: the deployer governs
    assert d.nodes.is_active(d.node.address)
    assert d.nodes.node(d.node.address).bonded == d.nodes.min_bond() == 1000 * 10**18
    assert not d.nodes.is_active(accounts[5].address)
    assert d.deployment.deploy_block == min(e["block"] for e in d.deployment.contracts.values())


def test_deployment_file_round_trip_and_checks(deployment: DeployedContracts, tmp_path: Any) -> None:
    d = deployment
    path = d.deployment.save(tmp_path / f"{d.chain_id}.json")
    raw = json.loads(path.read_text())
    assert raw["version"] == 3 and raw["chainId"] == d.chain_id
    assert set(raw["contracts"]) == {*CORE_CONTRACTS, DISPUTES_CONTRACT}
    assert raw["params"]["minBond"] == str(1000 * 10**18)  # big ints as strings
    assert raw["params"]["changeDelay"] == 3600 and raw["params"]["maxPricePerMTokens"] == str(10_000 * 10**18)
    loaded = Deployment.load(path)
    assert loaded.addresses == d.addresses and loaded.roles == d.deployment.roles
    assert loaded.check(d.client) == []
    # wrong chain and missing code are both fatal
    raw["chainId"] = 10
    wrong_chain = Deployment.from_json(raw)
    with pytest.raises(DeploymentError, match="chain 10"):
        wrong_chain.check(d.client)
    raw["chainId"] = d.chain_id
    raw["contracts"]["AttributionLedger"]["address"] = "0x" + "12" * 20
    with pytest.raises(DeploymentError, match="no code"):
        Deployment.from_json(raw).check(d.client)
    with pytest.raises(DeploymentError, match="no deployment file"):
        Deployment.load(tmp_path / "missing.json")


# ----------------------------------------------------------------------------------------------------------------
# assets, bonding, batches
# ----------------------------------------------------------------------------------------------------------------


def test_register_dataset_model_adapter_under_namespaced_ids(deployment: DeployedContracts) -> None:
    d = deployment
    a5, a6 = d.accounts[5].address, d.accounts[6].address
    key1, key2, model, content = rand32(), rand32(), rand32(), rand32()
    r1 = d.assets.register_dataset(key1, [a5, a6], [7000, 3000], "ipfs://ds1")
    r2 = d.assets.register_dataset(key2, [a6], [10000], "ipfs://ds2")
    ds1, ds2 = r1.asset_id, r2.asset_id
    assert ds1 == dataset_id_for(d.node.address, key1) == d.assets.dataset_id_of(d.node.address, key1) != key1
    d.assets.register_base_model(model, "hf://tiny")
    ra = d.assets.register_adapter(content, model, [ds1, ds2], [2500, 7500], 1_000_000, "file://adapter")
    adapter = ra.asset_id
    assert adapter == adapter_id_for(d.node.address, content) == d.assets.adapter_id_of(d.node.address, content)
    assert ra.effective_at == d.client.w3.eth.get_block(ra.tx.block_number)["timestamp"]

    ds = d.assets.dataset(ds1)
    assert (ds.owner, ds.dataset_key, ds.contributors, ds.shares_bps, ds.uri) == (
        d.node.address, key1, (a5, a6), (7000, 3000), "ipfs://ds1")
    assert d.assets.base_model(model).uri == "hf://tiny"
    ad = d.assets.adapter(adapter)
    assert ad.content_hash == content and ad.base_model_id == model and ad.dataset_ids == (ds1, ds2)
    assert ad.weights_bps == (2500, 7500) and ad.price_per_m_tokens == 1_000_000 and ad.owner == d.node.address
    assert ad.active and ad.active_from == ra.effective_at
    assert d.assets.asset_owner(AssetKind.ADAPTER, adapter) == d.node.address
    # the same files registered by someone else: another id, the author's adapter untouched (H1)
    copier = d.accounts[7]
    copy = d.assets.register_adapter(content, model, [], [], 1, account=copier).asset_id
    assert copy == adapter_id_for(copier.address, content) != adapter
    assert d.assets.adapter(adapter).owner == d.node.address and d.assets.adapter(copy).owner == copier.address
    off = d.assets.set_adapter_active(adapter, False)
    assert off.tx is not None and off.effective_at == d.client.w3.eth.get_block(off.tx.block_number)["timestamp"]
    assert not d.assets.adapter(adapter).active and d.assets.adapter(adapter).active_from == 0  # at once
    on = d.assets.set_adapter_active(adapter, True)
    assert on.tx is not None
    assert on.effective_at == d.client.w3.eth.get_block(on.tx.block_number)["timestamp"] + d.assets.change_delay()
    assert not d.assets.adapter(adapter).active  # reactivation is scheduled, not immediate
    assert d.assets.set_adapter_active(adapter, True) == type(on)(adapter, on.effective_at, None)  # no-op
    assert d.assets.adapter_exists(adapter) and not d.assets.adapter_exists(rand32())


def test_two_step_asset_ownership(deployment: DeployedContracts, chain_snapshot: AnvilNode) -> None:
    d = deployment
    new_owner = d.accounts[6]
    ds = d.assets.register_dataset(rand32(), [d.accounts[5].address], [10000]).asset_id
    d.assets.transfer_asset_ownership(AssetKind.DATASET, ds, new_owner.address)
    assert d.assets.dataset(ds).owner == d.node.address  # nothing moves before the new owner accepts
    assert d.assets.pending_asset_owner(AssetKind.DATASET, ds) == new_owner.address
    d.assets.accept_asset_ownership(AssetKind.DATASET, ds, account=new_owner)
    assert d.assets.dataset(ds).owner == new_owner.address == d.assets.asset_owner(AssetKind.DATASET, ds)
    with pytest.raises(error_class("RegistryNotOwner")):
        d.assets.set_dataset_uri(ds, "x")  # the old owner lost it


def test_second_node_bonds_and_becomes_active(deployment: DeployedContracts, chain_snapshot: AnvilNode) -> None:
    d = deployment
    op = d.accounts[7]
    min_bond = d.nodes.min_bond()
    d.token.mint(op.address, min_bond, account=d.deployer)
    assert not d.nodes.is_active(op.address)
    d.nodes.approve_and_bond(d.token, min_bond - 1, account=op)
    assert not d.nodes.is_active(op.address)  # below the minimum
    d.nodes.approve_and_bond(d.token, 1, account=op)
    assert d.nodes.is_active(op.address)
    assert d.token.balance_of(d.nodes.address) >= 2 * min_bond
    d.nodes.request_unbond(1, account=op)
    assert not d.nodes.is_active(op.address)  # stops being active at once


def test_post_batch_read_back_and_verify_records(deployment: DeployedContracts) -> None:
    d = deployment
    first = d.ledger.next_seq(d.node.address)
    count_before = d.ledger.batch_count()
    records = make_records(d, first, 5)
    tree = record_tree(records)
    posted = d.ledger.post_batch(first, len(records), tree.root_bytes, COMMITMENT)
    assert posted.batch_id == count_before + 1 == d.ledger.batch_count()
    assert d.ledger.next_seq(d.node.address) == first + 5

    b = d.ledger.batch(posted.batch_id)
    assert (b.root, b.node, b.first_seq, b.count) == (tree.root_bytes, d.node.address, first, 5)
    assert b.da_commitment_hash == keccak256(COMMITMENT)
    # one type for a posted batch: what post_batch read from its event is the header the ledger stored, plus the
    # commitment itself and where it was posted (the stored view has its time instead)
    assert replace(posted, da_commitment=None, block_number=None, block_hash=None, tx_hash=None, log_index=None,
                   posted_at=b.posted_at) == b
    assert posted.da_commitment == COMMITMENT and posted.log_index is not None and posted.tx_hash is not None
    events = d.ledger.batch_posted_events(from_block=posted.block_number, node=d.node.address)
    assert [(e["batchId"], e["firstSeq"], e["count"], bytes(e["daCommitment"])) for e in events] == [
        (posted.batch_id, first, 5, COMMITMENT)]

    # the event carries the commitment's hash; its bytes come from the posting transaction's calldata, accepted only
    # from a direct postBatch call to this ledger whose argument hashes to the event's hash
    (log,) = list(d.ledger.events("BatchPosted", from_block=posted.block_number, node=d.node.address))
    assert log.args["daCommitmentHash"] == keccak256(COMMITMENT) and "daCommitment" not in log.args
    assert posted.tx_hash is not None
    tx = d.client.transaction(posted.tx_hash)
    assert commitment_from_tx(d.ledger, tx, keccak256(COMMITMENT)) == COMMITMENT
    with pytest.raises(CommitmentNotFound, match="not the posted commitment hash"):
        commitment_from_tx(d.ledger, tx, keccak256(b"another commitment"))
    with pytest.raises(CommitmentNotFound, match="posted through a contract"):
        commitment_from_tx(d.ledger, {**tx, "to": d.rewards.address}, keccak256(COMMITMENT))
    approve = d.client.transaction(d.token.approve(d.nodes.address, 1).tx_hash)
    with pytest.raises(CommitmentNotFound):
        commitment_from_tx(d.ledger, {**approve, "to": d.ledger.address}, keccak256(COMMITMENT))

    for i, rec in enumerate(records):
        values = rec.abi_values()
        assert d.ledger.record_leaf(values) == rec.leaf()
        proof = tree.get_proof_bytes(i)
        assert d.ledger.verify_record(posted.batch_id, values, proof)
    # crash recovery: which batch covers a seq (None past nextSeq)
    assert d.ledger.batch_id_for(d.node.address, first + 4) == posted.batch_id
    assert d.ledger.batch_id_for(d.node.address, first + 5) is None
    assert d.ledger.batch_id_for(d.accounts[9].address, 0) is None
    # a flipped bit in the record, the proof, or the wrong batch: not attributed
    tampered = list(records[0].abi_values())
    tampered[9] += 1  # completionTokens
    assert not d.ledger.verify_record(posted.batch_id, tampered, tree.get_proof_bytes(0))
    bad_proof = [bytes([p[0] ^ 1]) + p[1:] for p in tree.get_proof_bytes(0)]
    assert not d.ledger.verify_record(posted.batch_id, records[0].abi_values(), bad_proof)


def test_post_batch_rejects_gap_and_replay(deployment: DeployedContracts) -> None:
    d = deployment
    first = d.ledger.next_seq(d.node.address)
    root = record_tree(make_records(d, first, 2)).root_bytes
    d.ledger.post_batch(first, 2, root, COMMITMENT)
    gap = error_class("LedgerSeqGap")
    with pytest.raises(gap) as ei:
        d.ledger.post_batch(first + 3, 1, root, COMMITMENT)
    assert ei.value.args_by_name == {"expected": first + 2, "got": first + 3}
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, ContractRevert)
    with pytest.raises(gap) as ei:  # exactly-once: the same batch again is a gap backwards
        d.ledger.post_batch(first, 2, root, COMMITMENT)
    assert ei.value.args_by_name == {"expected": first + 2, "got": first}
    assert d.ledger.next_seq(d.node.address) == first + 2


def test_post_batch_rejects_inactive_node(deployment: DeployedContracts) -> None:
    d = deployment
    stranger = d.accounts[8]
    with pytest.raises(error_class("LedgerNodeNotActive")) as ei:
        d.ledger.post_batch(0, 1, rand32(), COMMITMENT, account=stranger)
    assert ei.value.args_by_name == {"node": stranger.address}
    assert isinstance(ei.value, PermissionError)
    assert d.ledger.next_seq(stranger.address) == 0


def test_stale_nonce_from_another_client_is_recovered(deployment: DeployedContracts) -> None:
    d = deployment
    start = d.client.w3.eth.get_transaction_count(d.node.address)
    other = ChainClient(d.rpc_url, d.node)  # same key, its own nonce counter
    ids = [rand32() for _ in range(4)]
    txs = [d.assets.register_base_model(ids[0], "a"),  # advances the shared client's counter
           d.assets.register_base_model(ids[1], "b")]
    other_assets = type(d.assets)(other, d.assets.address, d.assets.abi)
    txs.append(other_assets.register_base_model(ids[2], "c"))  # fresh counter: reads pending nonce
    txs.append(d.assets.register_base_model(ids[3], "d"))  # shared counter is now stale: retried with the chain's nonce
    # all four mined, one nonce each, in order, none skipped or reused; every model is there with its uri
    assert d.client.w3.eth.get_transaction_count(d.node.address) == start + 4
    assert [d.client.w3.eth.get_transaction(t.tx_hash)["nonce"] for t in txs] == list(range(start, start + 4))
    assert all(t.receipt["status"] == 1 for t in txs)
    assert [d.assets.base_model(i).uri for i in ids] == ["a", "b", "c", "d"]


# ----------------------------------------------------------------------------------------------------------------
# every custom error, decoded with its arguments
# ----------------------------------------------------------------------------------------------------------------

Trigger = Callable[[DeployedContracts, AnvilNode], tuple[Callable[[], Any], dict[str, Any]]]
TRIGGERS: dict[str, Trigger] = {}

#: errors no external call can produce, with the reason.
UNTRIGGERABLE = {
    "ReentrancyGuardReentrantCall": "only a stake/fee token that calls back into the contract during a transfer "
                                    "can produce it (our DevToken cannot)",
    "ERC20InvalidSender": "OZ ERC20 raises it only for transfers from address(0), impossible externally",
    "ERC20InvalidApprover": "OZ ERC20 raises it only for approvals by address(0), impossible externally",
    "CheckpointUnorderedInsertion": "the distributor's deposit checkpoints are keyed by block number, which never "
                                    "goes back",
}


def trigger(name: str) -> Callable[[Trigger], Trigger]:
    def register(fn: Trigger) -> Trigger:
        TRIGGERS[name] = fn
        return fn
    return register


def _advance(anvil: AnvilNode, seconds: int) -> None:
    anvil.rpc("evm_increaseTime", seconds)
    anvil.rpc("evm_mine")


def _deploy(d: DeployedContracts, name: str, *args: Any) -> Callable[[], Any]:
    artifact = ArtifactStore().load(name)
    return lambda: d.client.deploy(artifact, *args, account=d.deployer)


# -- AttributionLedger --


@trigger("LedgerNodeNotActive")
def _t_not_active(d: DeployedContracts, a: AnvilNode) -> Any:
    x = d.accounts[9]
    return lambda: d.ledger.post_batch(0, 1, rand32(), COMMITMENT, account=x), {"node": x.address}


@trigger("LedgerSeqGap")
def _t_gap(d: DeployedContracts, a: AnvilNode) -> Any:
    n = d.ledger.next_seq(d.node.address)
    return lambda: d.ledger.post_batch(n + 1, 1, rand32(), COMMITMENT), {"expected": n, "got": n + 1}


@trigger("LedgerZeroCount")
def _t_zero_count(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.ledger.post_batch(0, 0, rand32(), COMMITMENT), {}


@trigger("LedgerZeroRoot")
def _t_zero_root(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.ledger.post_batch(0, 1, ZERO32, COMMITMENT), {}


@trigger("LedgerEmptyCommitment")
def _t_empty_commitment(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.ledger.post_batch(0, 1, rand32(), b""), {}


@trigger("LedgerCountTooLarge")
def _t_count_large(d: DeployedContracts, a: AnvilNode) -> Any:
    n = d.ledger.next_seq(d.node.address)
    return lambda: d.ledger.post_batch(n, 270_599, rand32(), COMMITMENT), {"count": 270_599, "max": 270_598}


@trigger("LedgerCommitmentTooLong")
def _t_commitment_long(d: DeployedContracts, a: AnvilNode) -> Any:
    n = d.ledger.next_seq(d.node.address)
    return (lambda: d.ledger.post_batch(n, 1, rand32(), b"\x01" * 24_577),
            {"length": 24_577, "max": 24_576})


@trigger("LedgerSeqOverflow")
def _t_seq_overflow(d: DeployedContracts, a: AnvilNode) -> Any:
    """nextSeq near 2**64 would take ~2**32 posts: find the node's storage slot and set it (anvil_setStorageAt)."""
    n = d.ledger.next_seq(d.node.address)
    d.ledger.post_batch(n, 3, rand32(), COMMITMENT)
    top = 2**64 - 2
    for mapping_slot in range(16):
        key = keccak256(bytes(12) + bytes.fromhex(d.node.address[2:]) + mapping_slot.to_bytes(32, "big"))
        word = int.from_bytes(d.client.w3.eth.get_storage_at(d.ledger.address, int.from_bytes(key, "big")), "big")
        if word & (2**64 - 1) == n + 3:
            new = (word >> 64 << 64) | top
            a.rpc("anvil_setStorageAt", d.ledger.address, "0x" + key.hex(), "0x" + new.to_bytes(32, "big").hex())
            break
    assert d.ledger.next_seq(d.node.address) == top, "the ledger's nextSeq slot was not found"
    return lambda: d.ledger.post_batch(top, 2, rand32(), COMMITMENT), {"firstSeq": top, "count": 2}


@trigger("LedgerTimestampsOutOfOrder")
def _t_ts_order(d: DeployedContracts, a: AnvilNode) -> Any:
    n = d.ledger.next_seq(d.node.address)
    t = d.ledger.last_record_timestamp(d.node.address) + 10
    return (lambda: d.ledger.post_batch(n, 1, rand32(), COMMITMENT, first_timestamp=t, last_timestamp=t - 1),
            {"firstTimestamp": t, "lastTimestamp": t - 1})


@trigger("LedgerTimestampInFuture")
def _t_ts_future(d: DeployedContracts, a: AnvilNode) -> Any:
    # N6: records are served before they are posted
    n = d.ledger.next_seq(d.node.address)
    t = int(d.client.w3.eth.get_block("latest")["timestamp"]) + 3600
    return (lambda: d.ledger.post_batch(n, 1, rand32(), COMMITMENT, first_timestamp=t, last_timestamp=t),
            {"lastTimestamp": t})


@trigger("LedgerTimestampBeforePrevious")
def _t_ts_before(d: DeployedContracts, a: AnvilNode) -> Any:
    # N6: a node can misdate a record only inside the gap since its previous batch
    n = d.ledger.next_seq(d.node.address)
    now = int(d.client.w3.eth.get_block("latest")["timestamp"])
    d.ledger.post_batch(n, 1, rand32(), COMMITMENT, first_timestamp=now - 10, last_timestamp=now - 5)
    return (lambda: d.ledger.post_batch(n + 1, 1, rand32(), COMMITMENT, first_timestamp=now - 6,
                                        last_timestamp=now - 5),
            {"firstTimestamp": now - 6, "previousLast": now - 5})


@trigger("LedgerUnknownBatch")
def _t_unknown_batch(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.ledger.batch(10**6), {"batchId": 10**6}


@trigger("LedgerZeroAddress")
def _t_ledger_zero(d: DeployedContracts, a: AnvilNode) -> Any:
    return _deploy(d, "AttributionLedger", ZERO), {}


# -- AssetRegistry --


def _adapter(d: DeployedContracts, price: int = 1) -> bytes:
    m = rand32()
    d.assets.register_base_model(m, "")
    return d.assets.register_adapter(rand32(), m, [], [], price).asset_id


def _dataset(d: DeployedContracts) -> bytes:
    return d.assets.register_dataset(rand32(), [d.accounts[5].address], [10000]).asset_id


@trigger("RegistryZeroId")
def _t_zero_id(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.assets.register_dataset(ZERO32, [d.accounts[5].address], [10000]), {}


@trigger("RegistryDatasetExists")
def _t_ds_exists(d: DeployedContracts, a: AnvilNode) -> Any:
    key = rand32()
    ds = d.assets.register_dataset(key, [d.accounts[5].address], [10000]).asset_id
    return lambda: d.assets.register_dataset(key, [d.accounts[5].address], [10000]), {"datasetId": ds}


@trigger("RegistryBaseModelExists")
def _t_model_exists(d: DeployedContracts, a: AnvilNode) -> Any:
    m = rand32()
    d.assets.register_base_model(m, "")
    return lambda: d.assets.register_base_model(m, ""), {"modelId": m}


@trigger("RegistryAdapterExists")
def _t_adapter_exists(d: DeployedContracts, a: AnvilNode) -> Any:
    m, content = rand32(), rand32()
    d.assets.register_base_model(m, "")
    ad = d.assets.register_adapter(content, m, [], [], 1).asset_id
    return lambda: d.assets.register_adapter(content, m, [], [], 1), {"adapterId": ad}


@trigger("RegistryUnknownDataset")
def _t_unknown_ds(d: DeployedContracts, a: AnvilNode) -> Any:
    ds = rand32()
    return lambda: d.assets.dataset(ds), {"datasetId": ds}


@trigger("RegistryUnknownBaseModel")
def _t_unknown_model(d: DeployedContracts, a: AnvilNode) -> Any:
    m = rand32()
    return lambda: d.assets.register_adapter(rand32(), m, [], [], 1), {"modelId": m}


@trigger("RegistryUnknownAdapter")
def _t_unknown_adapter(d: DeployedContracts, a: AnvilNode) -> Any:
    ad = rand32()
    return lambda: d.assets.adapter(ad), {"adapterId": ad}


@trigger("RegistryNotOwner")
def _t_not_owner(d: DeployedContracts, a: AnvilNode) -> Any:
    ds, other = _dataset(d), d.accounts[6]
    return (lambda: d.assets.schedule_dataset_change(ds, [other.address], [10000], account=other),
            {"id": ds, "caller": other.address})


@trigger("RegistryNotPendingOwner")
def _t_not_pending_owner(d: DeployedContracts, a: AnvilNode) -> Any:
    ds, other = _dataset(d), d.accounts[6]
    d.assets.transfer_asset_ownership(AssetKind.DATASET, ds, d.accounts[7].address)
    return (lambda: d.assets.accept_asset_ownership(AssetKind.DATASET, ds, account=other),
            {"id": ds, "caller": other.address})


@trigger("RegistryWeightsSum")
def _t_weights_sum(d: DeployedContracts, a: AnvilNode) -> Any:
    c = [d.accounts[5].address, d.accounts[6].address]
    return lambda: d.assets.register_dataset(rand32(), c, [5000, 4000]), {"sum": 9000}


@trigger("RegistryLengthMismatch")
def _t_length(d: DeployedContracts, a: AnvilNode) -> Any:
    c = [d.accounts[5].address, d.accounts[6].address]
    return lambda: d.assets.register_dataset(rand32(), c, [10000]), {"idsLength": 2, "weightsLength": 1}


@trigger("RegistryZeroWeight")
def _t_zero_weight(d: DeployedContracts, a: AnvilNode) -> Any:
    c = [d.accounts[5].address, d.accounts[6].address]
    return lambda: d.assets.register_dataset(rand32(), c, [10000, 0]), {"index": 1}


@trigger("RegistryZeroContributor")
def _t_zero_contributor(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.assets.register_dataset(rand32(), [ZERO], [10000]), {"index": 0}


@trigger("RegistryTooManyEntries")
def _t_too_many(d: DeployedContracts, a: AnvilNode) -> Any:
    c = [d.accounts[5].address] * 256
    return lambda: d.assets.register_dataset(rand32(), c, [1] * 256), {"count": 256, "max": 255}


@trigger("RegistryChangePending")
def _t_change_pending(d: DeployedContracts, a: AnvilNode) -> Any:
    ad = _adapter(d)
    at = d.assets.schedule_price(ad, 5).effective_at
    return lambda: d.assets.schedule_price(ad, 6), {"id": ad, "effectiveAt": at}


@trigger("RegistryNoPendingChange")
def _t_no_pending(d: DeployedContracts, a: AnvilNode) -> Any:
    ad = _adapter(d)
    return lambda: d.assets.cancel_adapter_change(ad), {"id": ad}


@trigger("RegistryPriceTooHigh")
def _t_price_high(d: DeployedContracts, a: AnvilNode) -> Any:
    ad, cap = _adapter(d), d.assets.max_price_per_m_tokens()
    return lambda: d.assets.schedule_price(ad, cap + 1), {"price": cap + 1, "max": cap}


@trigger("RegistryChangeDelayOutOfRange")
def _t_delay_range(d: DeployedContracts, a: AnvilNode) -> Any:
    return (lambda: d.assets.set_change_delay(59, account=d.deployer),
            {"delay": 59, "min": 3600, "max": 30 * 24 * 3600})


@trigger("RegistryMaxPriceTooHigh")
def _t_max_price(d: DeployedContracts, a: AnvilNode) -> Any:
    return (lambda: d.assets.set_max_price_per_m_tokens(2**128 + 1, account=d.deployer),
            {"maxPricePerMTokens": 2**128 + 1, "limit": 2**128})


# -- NodeRegistry --


@trigger("NodeRegistryZeroAmount")
def _t_nr_zero_amount(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.nodes.bond(0), {}


@trigger("NodeRegistryZeroAddress")
def _t_nr_zero_address(d: DeployedContracts, a: AnvilNode) -> Any:
    return _deploy(d, "NodeRegistry", ZERO, 1, 14 * 24 * 3600, d.deployer.address), {}


@trigger("NodeRegistryZeroMinBond")
def _t_nr_zero_min(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.nodes.set_min_bond(0, account=d.deployer), {}


@trigger("NodeRegistryDelayTooLong")
def _t_nr_delay(d: DeployedContracts, a: AnvilNode) -> Any:
    year = 365 * 24 * 3600
    return lambda: d.nodes.set_unbonding_delay(year + 1, account=d.deployer), {"delay": year + 1, "max": year}


@trigger("NodeRegistryDelayTooShort")
def _t_nr_delay_short(d: DeployedContracts, a: AnvilNode) -> Any:
    # M3: an unbonding delay below the longest dispute window would let a node post, unbond and leave unslashed
    return (lambda: d.nodes.set_unbonding_delay(3600, account=d.deployer),
            {"delay": 3600, "min": 14 * 24 * 3600})


@trigger("NodeRegistryInsufficientBond")
def _t_nr_insufficient(d: DeployedContracts, a: AnvilNode) -> Any:
    bonded = d.nodes.node(d.node.address).bonded
    return (lambda: d.nodes.request_unbond(bonded + 1),
            {"node": d.node.address, "requested": bonded + 1, "bonded": bonded})


@trigger("NodeRegistryNothingToWithdraw")
def _t_nr_nothing(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.nodes.withdraw(), {"node": d.node.address}


@trigger("NodeRegistryUnbondingNotElapsed")
def _t_nr_not_elapsed(d: DeployedContracts, a: AnvilNode) -> Any:
    d.nodes.request_unbond(1)
    at = d.nodes.node(d.node.address).unbondable_at
    return lambda: d.nodes.withdraw(), {"node": d.node.address, "unbondableAt": at}


@trigger("NodeRegistrySlashExceedsStake")
def _t_nr_slash(d: DeployedContracts, a: AnvilNode) -> Any:
    stake = d.nodes.node(d.node.address).bonded
    slasher = d.accounts[7]  # stands in for the disputes contract
    d.nodes.set_slasher(slasher.address, account=d.deployer)
    return (lambda: d.nodes.slash(d.node.address, stake + 1, d.deployer.address, account=slasher),
            {"node": d.node.address, "amount": stake + 1, "stake": stake})


@trigger("NodeRegistryNotSlasher")
def _t_nr_not_slasher(d: DeployedContracts, a: AnvilNode) -> Any:
    # N5: governance cannot slash; only the slasher (none is set on a fresh deployment)
    return (lambda: d.nodes.slash(d.node.address, 1, d.deployer.address, account=d.deployer),
            {"caller": d.deployer.address})


@trigger("OwnableUnauthorizedAccount")
def _t_unauthorized(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.nodes.set_min_bond(5), {"account": d.node.address}


@trigger("GovernanceRenounceDisabled")
def _t_renounce(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.client.call(d.nodes.fn("renounceOwnership"), sender=d.deployer.address), {}


@trigger("OwnableInvalidOwner")
def _t_invalid_owner(d: DeployedContracts, a: AnvilNode) -> Any:
    return _deploy(d, "DevToken", "T", "T", ZERO), {"owner": ZERO}


@trigger("SafeERC20FailedOperation")
def _t_safe_erc20(d: DeployedContracts, a: AnvilNode) -> Any:
    """A stake token whose code vanished (anvil_setCode): SafeERC20 refuses the withdrawal's transfer to it."""
    token_address, _ = _deploy(d, "DevToken", "T", "T", d.node.address)()
    token = Token(d.client, token_address, d.token.abi)
    address, _ = _deploy(d, "NodeRegistry", token_address, 1, 14 * 24 * 3600, d.deployer.address)()
    registry = NodeRegistry(d.client, address)
    token.mint(d.node.address, 5)
    registry.approve_and_bond(token, 5)
    registry.request_unbond(5)
    _advance(a, 14 * 24 * 3600 + 1)
    a.rpc("anvil_setCode", token_address, "0x")
    return lambda: registry.withdraw(), {"token": token_address}


# -- DevToken (OZ ERC20) --


@trigger("ERC20InsufficientBalance")
def _t_balance(d: DeployedContracts, a: AnvilNode) -> Any:
    poor = d.accounts[9]
    return (lambda: d.token.transfer(d.node.address, 5, account=poor),
            {"sender": poor.address, "balance": 0, "needed": 5})


@trigger("ERC20InsufficientAllowance")
def _t_allowance(d: DeployedContracts, a: AnvilNode) -> Any:
    x = d.accounts[9]
    return lambda: d.nodes.bond(7, account=x), {"spender": d.nodes.address, "allowance": 0, "needed": 7}


@trigger("ERC20InvalidReceiver")
def _t_receiver(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.token.mint(ZERO, 1, account=d.deployer), {"receiver": ZERO}


@trigger("ERC20InvalidSpender")
def _t_spender(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.token.approve(ZERO, 1), {"spender": ZERO}


# -- RewardDistributor --


def _poster(d: DeployedContracts) -> Any:
    return d.accounts[2]


def _guardian(d: DeployedContracts) -> Any:
    return d.accounts[3]


def _credit(d: DeployedContracts, amount: int) -> None:
    d.rewards.approve_and_deposit(d.token, d.node.address, amount)


def _end(d: DeployedContracts, a: AnvilNode) -> int:
    """An epoch end block: the block before the next one."""
    a.rpc("evm_mine")
    return d.client.block_number() - 1


def _propose(d: DeployedContracts, a: AnvilNode, debit: int = 0, root: bytes | None = None) -> int:
    """Open, page and seal the next epoch debiting `debit` from the node (credited first); returns the epoch."""
    epoch = d.rewards.current_epoch() + 1
    if debit:
        _credit(d, debit)
    end = _end(d, a)
    nodes, debits = ([d.node.address], [debit]) if debit else ([], [])
    d.rewards.propose_paged(epoch, end, root or rand32(), d.rewards.total_debited() + debit, b"", nodes, debits,
                            account=_poster(d))
    return epoch


def _open(d: DeployedContracts, a: AnvilNode, total: int = 0) -> int:
    """Open the next epoch without sealing it; returns the epoch."""
    epoch = d.rewards.current_epoch() + 1
    d.rewards.propose_root(epoch, _end(d, a), rand32(), total, account=_poster(d))
    return epoch


@trigger("DistributorNotPoster")
def _t_not_poster(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.rewards.propose_root(1, 1, rand32(), 0), {"caller": d.node.address}


@trigger("DistributorNotGuardian")
def _t_not_guardian(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.rewards.veto_root(1), {"caller": d.node.address}


@trigger("DistributorZeroAddress")
def _t_dist_zero(d: DeployedContracts, a: AnvilNode) -> Any:
    dep, g = d.deployer.address, d.accounts[3].address
    return _deploy(d, "RewardDistributor", d.token.address, d.nodes.address, d.ledger.address, dep, ZERO, g, dep,
                   3600), {}


@trigger("DistributorPosterIsGuardian")
def _t_poster_guardian(d: DeployedContracts, a: AnvilNode) -> Any:
    return (lambda: d.rewards.set_guardian(_poster(d).address, account=d.deployer),
            {"account": _poster(d).address})


@trigger("DistributorZeroAmount")
def _t_dist_zero_amount(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.rewards.deposit_fees(d.node.address, 0), {}


@trigger("DistributorZeroRoot")
def _t_dist_zero_root(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.rewards.propose_root(1, _end(d, a), ZERO32, 0, account=_poster(d)), {}


@trigger("DistributorEpochNotNext")
def _t_epoch(d: DeployedContracts, a: AnvilNode) -> Any:
    # N3: epochs are consecutive, so no far-future epoch can brick the distributor
    epoch = _propose(d, a)
    _advance(a, 3601)
    end = _end(d, a)
    big = 2**64 - 1
    return (lambda: d.rewards.propose_root(big, end, rand32(), d.rewards.total_debited(), account=_poster(d)),
            {"epoch": big, "expected": epoch + 1})


@trigger("DistributorWindowOpen")
def _t_window_open(d: DeployedContracts, a: AnvilNode) -> Any:
    epoch = _propose(d, a)
    at = d.rewards.proposal(epoch).claimable_at
    end = _end(d, a)
    return (lambda: d.rewards.propose_root(epoch + 1, end, rand32(), d.rewards.total_debited(),
                                           account=_poster(d)),
            {"epoch": epoch, "claimableAt": at})


@trigger("DistributorNotOpen")
def _t_not_open(d: DeployedContracts, a: AnvilNode) -> Any:
    epoch = _propose(d, a)
    return lambda: d.rewards.seal_root(epoch, account=_poster(d)), {"epoch": epoch}


@trigger("DistributorReleasePending")
def _t_release_pending(d: DeployedContracts, a: AnvilNode) -> Any:
    epoch = _propose(d, a, 5)
    d.rewards.veto_root(epoch, account=_guardian(d))
    end = _end(d, a)
    return (lambda: d.rewards.propose_root(epoch, end, rand32(), 0, account=_poster(d)),
            {"epoch": epoch, "releasedPages": 0, "pages": 1})


@trigger("DistributorBadRelease")
def _t_bad_release(d: DeployedContracts, a: AnvilNode) -> Any:
    epoch = _propose(d, a, 5)
    return (lambda: d.rewards.release_debits(epoch, 0, [d.node.address], [5]), {"epoch": epoch, "page": 0})


@trigger("DistributorBadEndBlock")
def _t_bad_end_block(d: DeployedContracts, a: AnvilNode) -> Any:
    head = d.client.block_number()
    return (lambda: d.rewards.propose_root(1, head + 5, rand32(), 0, account=_poster(d)),
            {"endBlock": head + 5, "previousEndBlock": 0})


@trigger("SafeCastOverflowedUintDowncast")
def _t_safecast(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.rewards.credit_at(d.node.address, 2**48), {"bits": 48, "value": 2**48}


@trigger("DistributorCreditLocked")
def _t_credit_locked(d: DeployedContracts, a: AnvilNode) -> Any:
    # N1: an exited node's credit stays until a settled epoch covers its last batch
    node = d.accounts[8]
    d.token.mint(node.address, d.nodes.min_bond() + 5, account=d.deployer)
    d.nodes.approve_and_bond(d.token, d.nodes.min_bond(), account=node)
    d.ledger.post_batch(0, 1, rand32(), b"\x01", account=node)
    post_block = d.ledger.last_post_block(node.address)
    d.rewards.approve_and_deposit(d.token, node.address, 5, account=node)
    d.nodes.request_unbond(d.nodes.node(node.address).bonded, account=node)
    _advance(a, d.nodes.unbonding_delay() + 1)
    return (lambda: d.rewards.withdraw_fee_credit(node.address, account=node),
            {"node": node.address, "lastPostBlock": post_block, "settledEndBlock": 0})


@trigger("DistributorWindowClosed")
def _t_window_closed(d: DeployedContracts, a: AnvilNode) -> Any:
    epoch = _propose(d, a)
    at = d.rewards.proposal(epoch).claimable_at
    _advance(a, 3601)
    return lambda: d.rewards.veto_root(epoch, account=_guardian(d)), {"epoch": epoch, "claimableAt": at}


@trigger("DistributorUnknownEpoch")
def _t_unknown_epoch(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.rewards.veto_root(77, account=_guardian(d)), {"epoch": 77}


@trigger("DistributorTotalMismatch")
def _t_total_mismatch(d: DeployedContracts, a: AnvilNode) -> Any:
    _credit(d, 100)
    expected = d.rewards.total_debited() + 100
    epoch = _open(d, a, expected + 1)
    d.rewards.add_debits(epoch, [d.node.address], [100], account=_poster(d))
    return (lambda: d.rewards.seal_root(epoch, account=_poster(d)), {"total": expected + 1, "expected": expected})


@trigger("DistributorLengthMismatch")
def _t_dist_length(d: DeployedContracts, a: AnvilNode) -> Any:
    epoch = _open(d, a)
    return (lambda: d.rewards.add_debits(epoch, [d.node.address], [], account=_poster(d)),
            {"nodesLength": 1, "debitsLength": 0})


@trigger("DistributorTooManyNodes")
def _t_too_many_nodes(d: DeployedContracts, a: AnvilNode) -> Any:
    epoch = _open(d, a)
    nodes = [d.node.address] * 201
    return (lambda: d.rewards.add_debits(epoch, nodes, [0] * 201, account=_poster(d)), {"count": 201, "max": 200})


@trigger("DistributorInsufficientCredit")
def _t_insufficient_credit(d: DeployedContracts, a: AnvilNode) -> Any:
    credit = d.rewards.fee_credit(d.node.address)
    epoch = _open(d, a)
    return (lambda: d.rewards.add_debits(epoch, [d.node.address], [credit + 1], account=_poster(d)),
            {"node": d.node.address, "debit": credit + 1, "credit": credit})


@trigger("DistributorNodeNotExited")
def _t_not_exited(d: DeployedContracts, a: AnvilNode) -> Any:
    _credit(d, 5)
    return lambda: d.rewards.withdraw_fee_credit(d.node.address), {"node": d.node.address}


@trigger("DistributorSharesTooHigh")
def _t_shares(d: DeployedContracts, a: AnvilNode) -> Any:
    return lambda: d.rewards.set_shares(6000, 5000, account=d.deployer), {"sum": 11000}


@trigger("DistributorWindowTooLong")
def _t_window_long(d: DeployedContracts, a: AnvilNode) -> Any:
    week = 7 * 24 * 3600
    return lambda: d.rewards.set_challenge_window(week + 1, account=d.deployer), {"window": week + 1, "max": week}


@trigger("DistributorWindowTooShort")
def _t_window_short(d: DeployedContracts, a: AnvilNode) -> Any:
    # M2: a zero window would make a root claimable in the block it is proposed
    return lambda: d.rewards.set_challenge_window(0, account=d.deployer), {"window": 0, "min": 3600}


@trigger("DistributorNoRoot")
def _t_no_root(d: DeployedContracts, a: AnvilNode) -> Any:
    assert d.rewards.current_root() == ZERO32
    return lambda: d.rewards.claim(d.node.address, 1, rand32(), []), {}


def _claimable_tree(d: DeployedContracts, a: AnvilNode, amounts: tuple[int, int] = (40, 60),
                    debit: int = 100) -> tuple[StandardMerkleTree, list[list[Any]]]:
    """Credit the node, propose a 2-account cumulative tree debiting `debit`, wait out the window."""
    values = [[d.chain_id, d.rewards.address, d.accounts[5].address, d.token.address, amounts[0]],
              [d.chain_id, d.rewards.address, d.accounts[6].address, d.token.address, amounts[1]]]
    tree = StandardMerkleTree.of(values, ["uint256", "address", "address", "address", "uint256"])
    _propose(d, a, debit, tree.root_bytes)
    _advance(a, 3601)
    assert d.rewards.current_root() == tree.root_bytes
    return tree, values


@trigger("DistributorRootMismatch")
def _t_root_mismatch(d: DeployedContracts, a: AnvilNode) -> Any:
    tree, values = _claimable_tree(d, a)
    other = rand32()
    return (lambda: d.rewards.claim(values[0][2], 40, other, tree.get_proof_bytes(0)),
            {"expected": other, "current": tree.root_bytes})


@trigger("DistributorInvalidProof")
def _t_invalid_proof(d: DeployedContracts, a: AnvilNode) -> Any:
    tree, values = _claimable_tree(d, a)
    return (lambda: d.rewards.claim(values[0][2], 41, tree.root_bytes, tree.get_proof_bytes(0)),
            {"account": values[0][2], "cumulativeAmount": 41})


@trigger("DistributorNothingToClaim")
def _t_nothing_to_claim(d: DeployedContracts, a: AnvilNode) -> Any:
    tree, values = _claimable_tree(d, a)
    account = values[1][2]
    assert d.rewards.claim_leaf(account, 60) == bytes.fromhex(tree.leaf_hash(values[1])[2:])
    before = d.token.balance_of(account)
    d.rewards.claim(account, 60, tree.root_bytes, tree.get_proof_bytes(1))
    assert d.token.balance_of(account) == before + 60 and d.rewards.claimed(account) == 60
    return (lambda: d.rewards.claim(account, 60, tree.root_bytes, tree.get_proof_bytes(1)),
            {"account": account, "cumulativeAmount": 60, "claimed": 60})


@trigger("DistributorClaimExceedsTotal")
def _t_claim_exceeds_total(d: DeployedContracts, a: AnvilNode) -> Any:
    # M1: a dishonest tree promising 80 + 70 against a total of 100 pays the first claim, never the second
    claimed = d.rewards.total_claimed()
    tree, values = _claimable_tree(d, a, amounts=(80, 70), debit=100)
    d.rewards.claim(values[0][2], 80, tree.root_bytes, tree.get_proof_bytes(0))
    total = d.rewards.proposal(d.rewards.current_epoch()).total
    return (lambda: d.rewards.claim(values[1][2], 70, tree.root_bytes, tree.get_proof_bytes(1)),
            {"totalClaimed": claimed + 80 + 70, "total": total})


def _abi_errors(store: ArtifactStore) -> set[str]:
    return {e["name"] for name in CORE_CONTRACTS for e in store.load(name).errors()}


def test_every_abi_error_has_a_trigger_or_a_reason(forge_artifacts: ArtifactStore) -> None:
    names = _abi_errors(forge_artifacts)
    missing = names - set(TRIGGERS) - set(UNTRIGGERABLE)
    assert not missing, f"custom errors without a test trigger: {sorted(missing)}"
    assert not set(TRIGGERS) & set(UNTRIGGERABLE)
    for name in names:
        cls = getattr(reverts, name)  # module __getattr__ gives the generated class
        assert cls is error_class(name) and issubclass(cls, ContractRevert) and cls.__name__ == name


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_custom_error_is_decoded(name: str, deployment: DeployedContracts, chain_snapshot: AnvilNode) -> None:
    action, expected = TRIGGERS[name](deployment, chain_snapshot)
    cls = error_class(name)
    with pytest.raises(cls) as ei:
        action()
    exc = ei.value
    assert type(exc) is cls and exc.error_name == name
    assert exc.signature.startswith(name + "(") and exc.selector == reverts.selector_of(exc.signature)
    for key, value in expected.items():
        assert exc.args_by_name[key] == value, (key, exc.args_by_name)
    assert name in str(exc)


def test_reverted_transaction_is_decoded_from_the_receipt(deployment: DeployedContracts,
                                                          chain_snapshot: AnvilNode) -> None:
    """A tx that reverts on-chain (gas given, so no estimate) still raises the decoded error with its tx hash."""
    d = deployment
    n = d.ledger.next_seq(d.node.address)
    with pytest.raises(error_class("LedgerSeqGap")) as ei:
        d.client.transact(d.ledger.fn("postBatch", n + 9, 1, 0, 0, rand32(), COMMITMENT), gas=200_000)
    assert ei.value.args_by_name == {"expected": n, "got": n + 9}
    assert ei.value.tx_hash is not None
    receipt = d.client.w3.eth.get_transaction_receipt(ei.value.tx_hash)  # type: ignore[arg-type]
    assert receipt["status"] == 0


def test_dev_key_is_refused_off_devnet(deployment: DeployedContracts) -> None:
    from attribution.chain.errors import DevKeyRefused
    from attribution.chain.keys import check_key_allowed, load_signer

    with pytest.raises(DevKeyRefused, match="chain 10"):
        check_key_allowed(Account.from_key(deployment.node_key), 10)
    with pytest.raises(DevKeyRefused):
        load_signer(8453, private_key=deployment.node_key)
    assert load_signer(31337, private_key=deployment.node_key).address == deployment.node.address


def test_non_revert_rpc_errors_are_chain_errors(deployment: DeployedContracts) -> None:
    """A sender without ETH: the node refuses (not a revert) and we raise RpcError, not a web3 exception."""
    from attribution.chain.errors import RpcError, RpcUnavailable

    broke = Account.create()
    with pytest.raises(RpcError, match="(?i)insufficient funds|funds"):
        deployment.assets.register_base_model(rand32(), "x", account=broke)
    with pytest.raises(RpcUnavailable, match="devnet up"):
        ChainClient("http://127.0.0.1:1").block_number()
