"""The independent verifier against a real anvil and the real DA server over HTTP.

Honest batches posted from real payloads verify `ok` and every record opens with a proof `verifyRecord` accepts.
Each failing verdict is produced the way it happens in the field: a node posting a root its DA payload does not
rebuild (`root_mismatch`), a payload deleted from DA or altered on the DA server's disk (`payload_missing`), a
payload whose header names another node (`header_mismatch`), garbage bytes (`malformed`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attribution.da.client import DAClient
from attribution.hashing import keccak256
from attribution.records.payload import encode_batch
from attribution.verify import RecordNotPostedError, Verdict, Verifier
from attribution.verify.answers import load_answer, verify_answer
from attribution.verify.client import LedgerClient, RecordNotFinal, RecordProof
from tests.fixtures.batches import NodeAccount, make_answer, make_records, node_account, publish, publish_next
from tests.fixtures.chain import AnvilNode, DeployedContracts
from tests.fixtures.da import DAServerProcess

CLI = [str(Path(sys.executable).parent / "loraledger"), "verify"]


@pytest.fixture(scope="module")
def nodes(deployment: DeployedContracts) -> tuple[NodeAccount, NodeAccount]:
    return node_account(deployment, 1), node_account(deployment, 5)


@pytest.fixture(scope="module")
def verifier(deployment: DeployedContracts, module_da_client: DAClient) -> Verifier:
    return Verifier(deployment.ledger, module_da_client, from_block=deployment.deployment.deploy_block, page_blocks=3)


def _blob(da: DAServerProcess, payload: bytes) -> Path:
    return Path(da.data_dir) / "blobs" / f"{keccak256(payload).hex()}.blob"


def test_honest_batches_verify_and_records_prove_on_chain(
        deployment: DeployedContracts, nodes: tuple[NodeAccount, NodeAccount], module_da_client: DAClient,
        verifier: Verifier) -> None:
    a, b = nodes
    posted = [publish_next(deployment, a, module_da_client, 7, seed=1),
              publish_next(deployment, b, module_da_client, 5, seed=2),
              publish_next(deployment, a, module_da_client, 4, seed=3)]
    for p in posted:
        check = verifier.verify_batch(p.batch_id)
        assert check.verdict is Verdict.OK, check.detail
        assert check.rebuilt_root == check.posted_root
    # paging (3 blocks a page) still finds every event, and each node's seqs are gap-free
    for n in (a, b):
        report = verifier.verify_node(n.address)
        assert report.ok, report.to_json()
        assert report.next_seq == n.ledger.next_seq(n.address)
    rec = posted[2].records[1]
    opened = verifier.verify_record(a.address, rec.seq)
    assert opened.ok and opened.record == rec
    assert opened.batch.batch_id == posted[2].batch_id
    # the proof is for this record only: the ledger refuses it for the neighbour
    other = posted[2].records[2]
    assert not deployment.ledger.verify_record(posted[2].batch_id, other.abi_values(), opened.proof)
    with pytest.raises(RecordNotPostedError):
        verifier.verify_record(a.address, a.ledger.next_seq(a.address))


def test_each_bad_batch_gets_its_verdict(
        deployment: DeployedContracts, nodes: tuple[NodeAccount, NodeAccount], module_da: DAServerProcess,
        module_da_client: DAClient, verifier: Verifier) -> None:
    d = deployment
    a, b = nodes
    ledger = bytes.fromhex(d.ledger.address[2:])

    # root_mismatch: one ioHash altered in the payload put on DA; the root posted is the honest one
    recs = make_records(d, a.address, a.ledger.next_seq(a.address), 6, seed=10)
    honest = encode_batch(d.chain_id, ledger, recs[0].node, recs[0].seq, recs)
    forged = bytearray(honest)
    forged[-20] ^= 0x01  # inside the last record's ioHash
    root_bad = publish(d, a, module_da_client, recs, payload=bytes(forged))

    # payload_missing: deleted from DA; and altered on the DA server's disk (DA serves bytes it did not certify)
    deleted = publish_next(d, a, module_da_client, 3, seed=11)
    deleted_payload = encode_batch(d.chain_id, ledger, deleted.records[0].node, deleted.records[0].seq,
                                   deleted.records)
    _blob(module_da, deleted_payload).unlink()
    altered = publish_next(d, a, module_da_client, 3, seed=12)
    altered_payload = encode_batch(d.chain_id, ledger, altered.records[0].node, altered.records[0].seq,
                                   altered.records)
    blob = _blob(module_da, altered_payload)
    raw = bytearray(blob.read_bytes())
    raw[-5] ^= 0xFF
    blob.write_bytes(bytes(raw))

    # header_mismatch: node a posts a payload whose header names node b (same seqs, same root)
    first = a.ledger.next_seq(a.address)
    theirs = make_records(d, b.address, first, 4, seed=13)
    header_bad = publish(d, a, module_da_client, make_records(d, a.address, first, 4, seed=13),
                         payload=encode_batch(d.chain_id, ledger, theirs[0].node, first, theirs))

    # malformed: garbage instead of an LLB2 payload; and a payload with a trailing byte
    garbage = publish_next(d, a, module_da_client, 2, seed=14, payload=b"not a batch payload at all")
    nxt = make_records(d, a.address, a.ledger.next_seq(a.address), 2, seed=15)
    trailing = publish(d, a, module_da_client, nxt,
                       payload=encode_batch(d.chain_id, ledger, nxt[0].node, nxt[0].seq, nxt) + b"\x00")

    expected = {root_bad.batch_id: Verdict.ROOT_MISMATCH, deleted.batch_id: Verdict.PAYLOAD_MISSING,
                altered.batch_id: Verdict.PAYLOAD_MISSING, header_bad.batch_id: Verdict.HEADER_MISMATCH,
                garbage.batch_id: Verdict.MALFORMED, trailing.batch_id: Verdict.MALFORMED}
    for batch_id, verdict in expected.items():
        check = verifier.verify_batch(batch_id)
        assert check.verdict is verdict, (batch_id, check.detail)
    assert "node" in verifier.verify_batch(header_bad.batch_id).detail
    assert "PayloadTrailingBytesError" in verifier.verify_batch(trailing.batch_id).detail

    report = verifier.verify_node(a.address)
    assert not report.ok
    assert {c.batch_id: c.verdict for c in report.checks if not c.ok} == expected
    assert verifier.verify_node(b.address).ok  # b's batches are untouched

    # the CLI: JSON verdicts, exit 1 on a failing batch, 0 on an ok one, 2 with one `error:` line on bad input
    opts = ["--rpc-url", d.rpc_url, "--da-url", module_da_client.base_url, "--ledger", d.ledger.address,
            "--from-block", str(d.deployment.deploy_block)]
    bad = subprocess.run([*CLI, "batch", str(root_bad.batch_id), "--json", *opts], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 1, bad.stderr
    assert json.loads(bad.stdout)["verdict"] == "root_mismatch"
    good = subprocess.run([*CLI, "node", b.address, *opts], capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok" in good.stdout
    usage = subprocess.run([*CLI, "node", "0x1234", *opts], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and usage.stderr.startswith("error:"), usage.stderr


def test_saved_answer_verifies_step_by_step(
        deployment: DeployedContracts, nodes: tuple[NodeAccount, NodeAccount], module_da_client: DAClient,
        verifier: Verifier, tmp_path: Path) -> None:
    d = deployment
    a, b = nodes
    seq = b.ledger.next_seq(b.address)
    saved, record = make_answer(d, b, seq)

    # before the batch is posted: every offline step passes, the chain step waits
    pending = verify_answer(load_answer(saved), verifier)
    assert pending.pending and not pending.ok
    assert [s.passed for s in pending.steps[:5]] == [True] * 5

    recs = [record, *make_records(d, b.address, seq + 1, 3, seed=20)]
    published = publish(d, b, module_da_client, recs)
    report = verify_answer(load_answer(saved), verifier)
    assert report.ok, report.text()
    assert report.batch_id == published.batch_id
    assert d.ledger.verify_record(published.batch_id, record.abi_values(), report.proof)

    # a different text, a receipt signed by another key, a record moved to another seq: each fails its step
    changed = json.loads(json.dumps(saved))
    changed["response"]["choices"][0]["text"] = "5"
    r = verify_answer(load_answer(changed), verifier)
    assert not r.ok and r.steps[0].name == "ioHash" and r.steps[0].passed is False

    forged, _ = make_answer(d, a, seq)  # signed by node a over a record naming a
    forged["response"]["attribution"]["node"] = b.address
    r = verify_answer(load_answer(forged), verifier)
    failed = {s.name for s in r.steps if s.passed is False}
    assert "receipt signed by the node" in failed

    # the CLI prints the steps and exits 0 for the good answer, 1 for the changed one
    good_file, bad_file = tmp_path / "answer.json", tmp_path / "changed.json"
    good_file.write_text(json.dumps(saved))
    bad_file.write_text(json.dumps(changed))
    opts = ["--rpc-url", d.rpc_url, "--da-url", module_da_client.base_url, "--ledger", d.ledger.address,
            "--from-block", str(d.deployment.deploy_block)]
    ok = subprocess.run([*CLI, "answer", str(good_file), *opts], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VERIFIED" in ok.stdout and "verifyRecord" in ok.stdout
    bad = subprocess.run([*CLI, "answer", str(bad_file), *opts], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "FAIL" in bad.stdout


def test_sdk_gets_checks_and_waits(
        deployment: DeployedContracts, nodes: tuple[NodeAccount, NodeAccount], module_da_client: DAClient,
        anvil: AnvilNode, tmp_path: Path) -> None:
    d = deployment
    a, _ = nodes
    saved, record = make_answer(d, a, a.ledger.next_seq(a.address), prompt="hi", text="hello")
    with LedgerClient(d.rpc_url, da_url=module_da_client.base_url, ledger=d.ledger.address,
                      from_block=d.deployment.deploy_block) as client:
        with pytest.raises(RecordNotFinal):
            client.wait_final(a.address, record.seq, confirmations=1, timeout_s=0.3, poll_s=0.1)
        published = publish(d, a, module_da_client, [record, *make_records(d, a.address, record.seq + 1, 2, seed=40)])
        with pytest.raises(RecordNotFinal):  # posted, but not 3 blocks deep yet
            client.wait_final(a.address, record.seq, confirmations=3, timeout_s=0.3, poll_s=0.1)
        anvil.rpc("anvil_mine", 2)
        final = client.wait_final(a.address, record.seq, confirmations=3, timeout_s=30, poll_s=0.1)
        assert final.record == record and final.batch_id == published.batch_id
        rp = client.record(record.seq, node=a.address)
        assert rp == final
        assert client.verify_offchain(rp) and client.verify_onchain(rp)
        flipped = RecordProof(rp.record, rp.batch_id, (bytes(32),) + rp.proof[1:], "test")
        assert not client.verify_offchain(flipped) and not client.verify_onchain(flipped)
        other = RecordProof(published.records[1], rp.batch_id, rp.proof, "test")
        assert not client.verify_offchain(other) and not client.verify_onchain(other)
        # the node's record route nests its batch; only the on-chain id may be used, never the node-local one
        node_json = {"seq": record.seq, "record": record.to_json(), "status": "final",
                     "batch": {"batch_id": rp.batch_id + 1000, "onchain_batch_id": rp.batch_id},
                     "proof": ["0x" + p.hex() for p in rp.proof]}
        from_node = RecordProof.from_json(node_json, "node")
        assert from_node.batch_id == rp.batch_id and client.verify_onchain(from_node)
        with pytest.raises(RecordNotPostedError):
            RecordProof.from_json({**node_json, "status": "sealed", "batch": {"batch_id": 3}}, "node")
        path = tmp_path / "answer.json"
        path.write_text(json.dumps(saved))
        assert client.verify_answer(str(path)).ok
        assert client.verify_answer(saved).ok
