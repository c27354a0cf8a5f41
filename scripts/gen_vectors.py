"""Write the golden vectors for attribution records: tests/vectors/records.json.

Deterministic records (incl. empty datasets with adapterId 0, one and three datasets), their ABI encodings, leaves,
the StandardMerkleTree root and dump, per-record proofs, the LLB2 payload and an ioHash example; and the v3 formats:
the batch header with its first/last record timestamps (and the `postBatch` calldata carrying it), the node's
receipt of record 0 (EIP-712 digest, its low-s signature and the high-s form that is refused) and a certificate-v3
commitment over the payload (docs/disputes.md: fields, signing digest, chunk root, operator signature). Pytest
regenerates them and compares with the committed file (so it cannot drift); the forge tests read the same file.

    .venv/bin/python scripts/gen_vectors.py            # rewrite tests/vectors/records.json
    .venv/bin/python scripts/gen_vectors.py --check    # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from eth_abi import encode as abi_encode  # noqa: E402
from eth_account import Account  # noqa: E402

from attribution.hashing import keccak256  # noqa: E402
from attribution.merkle import StandardMerkleTree  # noqa: E402
from attribution.records import RECORD_FIELDS, RECORD_TYPES, Record, io_hash  # noqa: E402
from attribution.records.payload import encode_batch  # noqa: E402
from attribution.records.receipt import ReceiptSigner  # noqa: E402
from attribution.records.tree import record_tree  # noqa: E402

DEFAULT_OUT = ROOT / "tests" / "vectors" / "records.json"
CHAIN_ID = 31337
# the first contract anvil's dev account 0 deploys, and dev account 0 itself (devnet only, chain 31337)
LEDGER = bytes.fromhex("5FbDB2315678afecb367f032d93F642f64180aa3")
NODE = bytes.fromhex("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
# anvil's public dev key 0 (the node above; devnet only) signs the receipt; the DA operator key is a throwaway
# derived from a public label
NODE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
OPERATOR_KEY = "0x" + keccak256(b"loraledger golden vectors DA operator").hex()
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CHUNK_BYTES = 126_976  # BatchDisputes.CHUNK_BYTES
POST_BATCH = "postBatch(uint64,uint32,uint64,uint64,bytes32,bytes)"
CERT_V3_TYPES = ["uint8", "bytes32", "uint32", "bytes32", "uint32", "uint64", "uint64", "bytes32", "bytes"]


def _h(label: str) -> bytes:
    return keccak256(label.encode())


def build_records() -> list[Record]:
    """The vector records: deterministic, covering the layout's edge cases."""
    model = _h("model:tiny-llama")
    specs: list[tuple[bytes, tuple[bytes, ...], tuple[int, ...]]] = [
        (b"\x00" * 32, (), ()),  # bare base model: adapterId 0, no datasets
        (_h("adapter:a"), (_h("dataset:x"),), (10_000,)),
        (_h("adapter:b"), (_h("dataset:x"), _h("dataset:y"), _h("dataset:z")), (5_000, 3_000, 2_000)),
        (_h("adapter:a"), (_h("dataset:x"),), (10_000,)),
        (_h("adapter:c"), (), ()),  # adapter without registered datasets
    ]
    out = []
    for i, (adapter, ds, ws) in enumerate(specs):
        out.append(Record(
            chain_id=CHAIN_ID, ledger=LEDGER, node=NODE, seq=i, model_id=model, adapter_id=adapter,
            dataset_ids=ds, weights_bps=ws, prompt_tokens=7 + i, completion_tokens=[0, 1, 255, 65_536, 2**32 - 1][i],
            timestamp=1_760_000_000 + 60 * i, io_hash=io_hash(_h(f"salt:{i}"), f"prompt {i}", f"completion {i}"),
        ))
    return out


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def certificate_v3(payload: bytes) -> dict[str, Any]:
    """A certificate v3 over `payload` as docs/disputes.md defines it (KZG off: no blobs, zero commitments hash)."""
    chunks = [payload[i:i + CHUNK_BYTES] for i in range(0, len(payload), CHUNK_BYTES)]
    chunk_tree = StandardMerkleTree.of([[i, keccak256(c)] for i, c in enumerate(chunks)], ["uint256", "bytes32"])
    payload_keccak = keccak256(payload)
    fields: list[Any] = [3, payload_keccak, len(payload), bytes(32), 0, 1, 1_760_000_300,
                         bytes.fromhex(chunk_tree.root[2:])]
    digest = keccak256(abi_encode(CERT_V3_TYPES[:-1], fields))
    signature = bytes(Account.from_key(OPERATOR_KEY).unsafe_sign_hash(digest).signature)
    cert = abi_encode(CERT_V3_TYPES, [*fields, signature])
    operator = Account.from_key(OPERATOR_KEY).address
    return {
        "version": 3, "payloadKeccak": _hex(payload_keccak), "payloadLength": len(payload),
        "kzgCommitmentsHash": _hex(bytes(32)), "blobCount": 0, "daSequence": 1, "storedAt": fields[6],
        "chunksRoot": chunk_tree.root, "chunkHashes": [_hex(keccak256(c)) for c in chunks],
        "chunkProofs": [chunk_tree.get_proof(i) for i in range(len(chunks))],
        "digest": _hex(digest), "operator": operator, "operatorSignature": _hex(signature),
        "commitment": _hex(b"\x01\x00\xd0" + cert),
    }


def receipt(record: Record) -> dict[str, Any]:
    """The node's receipt of `record`: the EIP-712 digest, the low-s signature it produces and the high-s form."""
    signer = ReceiptSigner(Account.from_key(NODE_KEY), record.chain_id, record.ledger)
    sig = signer.sign(record.seq, record.leaf())
    high = sig[:32] + (SECP256K1_N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes((55 - sig[64],))
    return {"seq": record.seq, "leaf": _hex(record.leaf()), "digest": _hex(signer.digest(record.seq, record.leaf())),
            "signature": _hex(sig), "highS": _hex(high)}


def header(records: list[Record], root: str, commitment: str) -> dict[str, Any]:
    """The v3 batch header of `records` and the `postBatch` calldata that posts it with `commitment`."""
    first, last = min(r.timestamp for r in records), max(r.timestamp for r in records)
    args = [records[0].seq, len(records), first, last, bytes.fromhex(root[2:]), bytes.fromhex(commitment[2:])]
    calldata = keccak256(POST_BATCH.encode())[:4] + abi_encode(
        ["uint64", "uint32", "uint64", "uint64", "bytes32", "bytes"], args)
    return {"firstSeq": records[0].seq, "count": len(records), "firstTimestamp": first, "lastTimestamp": last,
            "root": root, "postBatchCalldata": _hex(calldata)}


def build_vectors() -> dict[str, Any]:
    """The whole vectors document."""
    records = build_records()
    tree = record_tree(records)
    salt = _h("salt:0")
    payload = encode_batch(CHAIN_ID, LEDGER, NODE, 0, records)
    cert = certificate_v3(payload)
    return {
        "description": "loraledger golden vectors: attribution record v1, batch header, receipt and certificate v3; "
                       "regenerate with scripts/gen_vectors.py",
        "types": RECORD_TYPES,
        "fields": RECORD_FIELDS,
        "chainId": CHAIN_ID,
        "ledger": records[0].to_json()["ledger"],
        "node": records[0].to_json()["node"],
        "records": [
            {**r.to_json(), "abiEncoded": "0x" + r.abi_encode().hex(), "leaf": "0x" + r.leaf().hex(),
             "proof": tree.get_proof(i)}
            for i, r in enumerate(records)
        ],
        "root": tree.root,
        "tree": tree.dump(),
        "payload": "0x" + payload.hex(),
        "ioHashExample": {"salt": "0x" + salt.hex(), "prompt": "prompt 0", "completion": "completion 0",
                          "ioHash": "0x" + records[0].io_hash.hex()},
        "header": header(records, tree.root, cert["commitment"]),
        "receipt": receipt(records[0]),
        "certificateV3": cert,
    }


def render() -> str:
    """The file content (stable JSON, trailing newline)."""
    return json.dumps(build_vectors(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is stale: run scripts/gen_vectors.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
