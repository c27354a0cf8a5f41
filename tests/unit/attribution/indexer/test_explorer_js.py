"""The explorer's browser code (attribution/indexer/explorer/web/src) against Python: vectors written here from
the reference implementations (LLB2 payload, record leaves, tree and proofs, ioHash v1 and v3, receipts, chat
prompt bytes) are checked by `node --test` on the same modules the page bundles, and the tree code against
@openzeppelin/merkle-tree."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode

from attribution.chain.keys import dev_keys
from attribution.hashing import to_checksum_address
from attribution.records.payload import encode_batch
from attribution.records.receipt import prompt_bytes, sign_receipt
from attribution.records.record import Record, io_hash, io_hash_v3, keccak256
from attribution.records.tree import record_tree

ROOT = Path(__file__).resolve().parents[4]
WEB = ROOT / "attribution" / "indexer" / "explorer" / "web"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None or not (ROOT / "node_modules" / "viem").is_dir(),
                                reason="node and the npm packages (`make setup`) are needed")


def abi_v3(kind: int, salt: bytes, prompt: bytes, completion: bytes) -> bytes:
    """DESIGN.md v3 spelled with eth_abi: keccak256(abi.encode(uint8 kind, bytes32 salt, keccak256(prompt),
    keccak256(completion))); must equal `io_hash_v3`."""
    return keccak256(encode(["uint8", "bytes32", "bytes32", "bytes32"], [kind, salt, keccak256(prompt),
                                                                       keccak256(completion)]))


def _answer(rng: random.Random, key: str, base: Record, seq: int, version: int, chat: bool) -> dict[str, Any]:
    salt = rng.randbytes(32)
    request: dict[str, Any] = ({"messages": [{"role": "user", "content": "Grüße, ça va? 日本 \"quotes\"\n",
                                              "name": "z", "a": [1, {"y": 2, "b": None}]}]} if chat
                               else {"prompt": f"Count to {seq}:"})
    text = "Ünïcode answer ✓" if chat else " one two three"
    pb = prompt_bytes(prompt=request.get("prompt"), messages=request.get("messages"))
    kind = 2 if chat else 1
    ioh = io_hash_v3(kind, salt, pb, text) if version == 3 else io_hash(salt, pb, text)
    assert version != 3 or ioh == abi_v3(kind, salt, pb, text.encode())
    record = Record(base.chain_id, base.ledger, base.node, seq, base.model_id, base.adapter_id, base.dataset_ids,
                    base.weights_bps, 12, 3, 1_760_000_000 + seq, ioh)
    choice = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
    attribution: dict[str, Any] = {"seq": seq, "node": to_checksum_address(base.node), "record": record.to_json(),
                                   "leaf": "0x" + record.leaf().hex(), "salt": "0x" + salt.hex(),
                                   "receipt": "0x" + sign_receipt(record, key).hex()}
    if version == 3:
        attribution["io_hash_version"] = 3
    return {"name": f"v{version} {'chat' if chat else 'completion'}", "version": version, "ioHash": "0x" + ioh.hex(),
            "saved": {"request": request, "response": {"choices": [choice], "attribution": attribution}}}


def test_browser_code_matches_python(tmp_path: Path) -> None:
    rng = random.Random(23)
    key = dev_keys()[1]
    from eth_account import Account

    node = bytes.fromhex(Account.from_key(key).address[2:])
    ledger = rng.randbytes(20)
    ds = [rng.randbytes(32) for _ in range(3)]
    profiles = [(rng.randbytes(32), rng.randbytes(32), (ds[0], ds[1]), (2500, 7500)),
                (rng.randbytes(32), bytes(32), (), ()), (rng.randbytes(32), rng.randbytes(32), (ds[2],), (10000,))]
    first = 40
    records = [Record(31337, ledger, node, first + i, *profiles[rng.randrange(3)], rng.randint(1, 900),
                      rng.randint(0, 900), 1_760_000_000 + i, rng.randbytes(32)) for i in range(11)]
    tree = record_tree(records)
    base = records[0]
    vectors = {
        "payload": "0x" + encode_batch(31337, ledger, node, first, records).hex(), "firstSeq": first,
        "leaves": ["0x" + r.leaf().hex() for r in records], "root": "0x" + tree.root_bytes.hex(),
        "proofs": [["0x" + p.hex() for p in tree.get_proof_bytes(i)] for i in range(len(records))],
        "distributor": to_checksum_address(rng.randbytes(20)), "token": to_checksum_address(rng.randbytes(20)),
        "rewards": [{"account": to_checksum_address(rng.randbytes(20)), "cumulative": str(rng.randint(1, 10**24))}
                    for _ in range(6)],
        "answers": [_answer(rng, key, base, 100 + i, v, chat) for i, (v, chat) in
                    enumerate([(1, False), (1, True), (3, False), (3, True)])],
    }
    path = tmp_path / "vectors.json"
    path.write_text(json.dumps(vectors))
    assert NODE is not None
    run = subprocess.run([NODE, "--test", str(WEB / "test" / "vectors.test.mjs")], env={"VECTORS": str(path),
                         "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 5" in run.stdout, run.stdout[-2000:]
