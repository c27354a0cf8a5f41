"""Golden vectors: tests/vectors/records.json equals what scripts/gen_vectors.py generates, and is consistent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account

from attribution.da.chunks import chunks_root
from attribution.da.codec import Certificate, parse_commitment
from attribution.hashing import keccak256, to_checksum_address
from attribution.merkle import StandardMerkleTree
from attribution.records import Record
from attribution.records.payload import decode_batch
from attribution.records.receipt import SECP256K1_HALF_N, ReceiptError, ReceiptSigner, recover_receipt_signer

ROOT = Path(__file__).resolve().parents[4]
VECTORS = ROOT / "tests" / "vectors" / "records.json"
DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's public dev key 0
CERT_V3 = ["uint8", "bytes32", "uint32", "bytes32", "uint32", "uint64", "uint64", "bytes32", "bytes"]


def _gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_vectors", ROOT / "scripts" / "gen_vectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vectors_file_is_up_to_date() -> None:
    assert VECTORS.read_text() == _gen().render(), "run: .venv/bin/python scripts/gen_vectors.py"


def test_vectors_are_self_consistent() -> None:
    v = json.loads(VECTORS.read_text())
    records = [Record.from_json(r) for r in v["records"]]
    assert any(r.adapter_id == b"\x00" * 32 and not r.dataset_ids for r in records)
    assert any(len(r.dataset_ids) == 3 for r in records)
    tree = StandardMerkleTree.load(v["tree"])
    assert tree.root == v["root"]
    for i, (r, raw) in enumerate(zip(records, v["records"], strict=True)):
        assert "0x" + r.leaf().hex() == raw["leaf"]
        assert StandardMerkleTree.verify(v["root"], v["types"], r.abi_values(), raw["proof"])
        assert tree.get_proof(i) == raw["proof"]
    assert decode_batch(bytes.fromhex(v["payload"][2:])).records == records


def test_v3_header_receipt_and_certificate_vectors() -> None:
    """The v3 formats in the vectors, checked with the code that produces and reads them (not the generator's)."""
    v = json.loads(VECTORS.read_text())
    records = [Record.from_json(r) for r in v["records"]]
    payload = bytes.fromhex(v["payload"][2:])

    # the batch header spans the records' own timestamps and travels in postBatch's calldata
    h = v["header"]
    assert (h["firstTimestamp"], h["lastTimestamp"]) == (min(r.timestamp for r in records),
                                                         max(r.timestamp for r in records))
    decoded = decode_batch(payload)
    assert all(h["firstTimestamp"] <= t <= h["lastTimestamp"] for t in decoded.timestamps)
    calldata = bytes.fromhex(h["postBatchCalldata"][2:])
    assert calldata[:4] == keccak256(b"postBatch(uint64,uint32,uint64,uint64,bytes32,bytes)")[:4]
    args = abi_decode(["uint64", "uint32", "uint64", "uint64", "bytes32", "bytes"], calldata[4:])
    assert list(args) == [h["firstSeq"], h["count"], h["firstTimestamp"], h["lastTimestamp"],
                          bytes.fromhex(v["root"][2:]), bytes.fromhex(v["certificateV3"]["commitment"][2:])]

    # the receipt of record 0: what the node's signer produces (low s), and its high-s twin refused
    rc = v["receipt"]
    r0 = records[0]
    node = to_checksum_address(v["node"])
    signer = ReceiptSigner(Account.from_key(DEV_KEY_0), r0.chain_id, r0.ledger)
    assert "0x" + signer.digest(r0.seq, r0.leaf()).hex() == rc["digest"]
    assert "0x" + signer.sign(r0.seq, r0.leaf()).hex() == rc["signature"]
    assert int(rc["signature"][66:130], 16) <= SECP256K1_HALF_N < int(rc["highS"][66:130], 16)
    assert recover_receipt_signer(r0.chain_id, r0.ledger, r0.node, r0.seq, r0.leaf(), rc["signature"]) == node
    with pytest.raises(ReceiptError, match="high s"):
        recover_receipt_signer(r0.chain_id, r0.ledger, r0.node, r0.seq, r0.leaf(), rc["highS"])

    # the certificate v3 over the payload: fields, digest, operator signature, chunk root (docs/disputes.md)
    c = v["certificateV3"]
    commitment = bytes.fromhex(c["commitment"][2:])
    assert commitment[:3] == b"\x01\x00\xd0" and len(commitment) == 419
    fields = abi_decode(CERT_V3, commitment[3:])
    assert list(fields[:8]) == [3, keccak256(payload), len(payload), bytes(32), 0, c["daSequence"], c["storedAt"],
                                bytes.fromhex(c["chunksRoot"][2:])]
    digest = keccak256(abi_encode(CERT_V3[:-1], list(fields[:8])))
    assert "0x" + digest.hex() == c["digest"]
    assert Account._recover_hash(digest, signature=fields[8]) == c["operator"]
    assert parse_commitment(commitment) == Certificate.of(  # the DA codec reads and would make the same certificate
        payload_keccak=keccak256(payload), payload_length=len(payload), kzg_commitments=[], da_sequence=c["daSequence"],
        stored_at=c["storedAt"], chunks_root=chunks_root(payload)).with_signature(fields[8])
    assert parse_commitment(commitment).signing_digest() == digest
    chunks = [payload[i:i + 126_976] for i in range(0, len(payload), 126_976)]
    tree = StandardMerkleTree.of([[i, keccak256(ch)] for i, ch in enumerate(chunks)], ["uint256", "bytes32"])
    assert tree.root == c["chunksRoot"] and c["chunkHashes"] == ["0x" + keccak256(ch).hex() for ch in chunks]
