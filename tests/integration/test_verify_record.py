"""On a real anvil, `AttributionLedger.verifyRecord` accepts proofs made in Python and rejects every one-bit change.

Records (mixed profiles: bare model with adapterId 0, one and several datasets) go through our fast tree; the
batch is posted with `postBatch`; every record verifies on-chain with its Python proof and its on-chain leaf equals
ours. Then one bit is flipped in each field of the record, in each proof element and in the root (a batch posted
with a flipped root), and each change must be rejected.
"""

from __future__ import annotations

import random
from typing import Any

from attribution.records import RECORD_TYPES, Profile, Record
from attribution.records.payload import decode_batch, encode_batch
from attribution.records.tree import record_tree
from tests.fixtures.chain import AnvilNode, DeployedContracts
from tests.unit.attribution.factories import random_profile

COMMITMENT = b"\x01\x00\xd0" + b"verify-record-test"
BITS = {"uint256": 256, "uint64": 64, "uint32": 32, "uint16": 16}


def _records(d: DeployedContracts, first_seq: int, n: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    node = bytes.fromhex(d.node.address[2:])
    ledger = bytes.fromhex(d.ledger.address[2:])
    profiles = [Profile(rng.randbytes(32), b"\x00" * 32)] + [random_profile(rng) for _ in range(4)]
    out = []
    for i in range(n):
        p = profiles[i % len(profiles)]
        out.append(Record(d.chain_id, ledger, node, first_seq + i, p.model_id, p.adapter_id, p.dataset_ids,
                          p.weights_bps, rng.randrange(2**32), rng.randrange(2**32), rng.randrange(2**40),
                          rng.randbytes(32)))
    return out


def _flip_bytes(b: bytes, bit: int) -> bytes:
    raw = bytearray(b)
    raw[bit // 8] ^= 1 << (bit % 8)
    return bytes(raw)


def _flip_field(values: tuple[Any, ...], field: int, rng: random.Random) -> list[Any] | None:
    """The 12 values with one bit flipped in `field` (None for an empty array: it has no bit to flip)."""
    out = list(values)
    typ = RECORD_TYPES[field]
    v = out[field]
    if typ.endswith("[]"):
        if not v:
            return None
        items = list(v)
        k = rng.randrange(len(items))
        inner = typ[:-2]
        items[k] = _flip_bytes(items[k], rng.randrange(256)) if inner == "bytes32" else items[k] ^ (
            1 << rng.randrange(BITS[inner]))
        out[field] = items
    elif typ == "address":
        raw = _flip_bytes(bytes.fromhex(v[2:]), rng.randrange(160))
        out[field] = "0x" + raw.hex()
    elif typ == "bytes32":
        out[field] = _flip_bytes(v, rng.randrange(256))
    else:
        out[field] = v ^ (1 << rng.randrange(BITS[typ] if field != 0 else 64))
    return out


def test_verify_record_accepts_python_proofs_and_rejects_one_bit_changes(
    deployment: DeployedContracts, chain_snapshot: AnvilNode
) -> None:
    d = deployment
    rng = random.Random(99)
    first = d.ledger.next_seq(d.node.address)

    # a batch posted under a root with one flipped bit: no record of it verifies with the true proofs
    bad_records = _records(d, first, 9, seed=1)
    bad_tree = record_tree(bad_records)
    bad_root = _flip_bytes(bad_tree.root_bytes, rng.randrange(256))
    bad_batch = d.ledger.post_batch(first, len(bad_records), bad_root, COMMITMENT).batch_id
    for i, rec in enumerate(bad_records):
        assert not d.ledger.verify_record(bad_batch, rec.abi_values(), bad_tree.get_proof_bytes(i))

    # the real batch: the tree is rebuilt from the DA payload, as a verifier does
    records = _records(d, first + len(bad_records), 23, seed=2)
    payload = encode_batch(d.chain_id, records[0].ledger, records[0].node, records[0].seq, records)
    decoded = decode_batch(payload)
    tree = record_tree(decoded.records, decoded.leaves())
    assert tree.root_bytes == record_tree(records).root_bytes
    batch_id = d.ledger.post_batch(records[0].seq, len(records), tree.root_bytes, COMMITMENT).batch_id
    proofs = tree.all_proofs()
    assert any(r.adapter_id == b"\x00" * 32 and not r.dataset_ids for r in records)
    assert len({len(r.dataset_ids) for r in records}) >= 2
    checked_fields = 0
    for i, rec in enumerate(records):
        values = rec.abi_values()
        proof = list(proofs[i])
        assert d.ledger.record_leaf(values) == rec.leaf()
        assert d.ledger.verify_record(batch_id, values, proof)
        assert d.ledger.verify_record(batch_id, values, tree.get_proof(i))  # hex form too
        if i % 4:
            continue  # every fourth record gets the full set of flips (keeps the test quick)
        for field in range(12):
            flipped = _flip_field(values, field, rng)
            if flipped is None:
                continue
            checked_fields += 1
            assert not d.ledger.verify_record(batch_id, flipped, proof), f"flip in {RECORD_TYPES[field]} #{field}"
        for k in range(len(proof)):
            bad = [*proof[:k], _flip_bytes(proof[k], rng.randrange(256)), *proof[k + 1:]]
            assert not d.ledger.verify_record(batch_id, values, bad), f"flip in proof[{k}]"
        assert not d.ledger.verify_record(batch_id, values, proof[:-1])  # a shortened proof
        assert not d.ledger.verify_record(bad_batch, values, proof)  # the right proof, the wrong batch
    assert checked_fields >= 6 * 10
