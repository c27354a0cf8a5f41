"""Write the golden vectors for attribution records: tests/vectors/records.json.

Deterministic records (incl. empty datasets with adapterId 0, one and three datasets), their ABI encodings, leaves,
the StandardMerkleTree root and dump, per-record proofs, the LLB2 payload and an ioHash example. Pytest regenerates
them and compares with the committed file (so it cannot drift); the forge tests read the same file.

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

from attribution.hashing import keccak256  # noqa: E402
from attribution.records import RECORD_FIELDS, RECORD_TYPES, Record, io_hash  # noqa: E402
from attribution.records.payload import encode_batch  # noqa: E402
from attribution.records.tree import record_tree  # noqa: E402

DEFAULT_OUT = ROOT / "tests" / "vectors" / "records.json"
CHAIN_ID = 31337
# the first contract anvil's dev account 0 deploys, and dev account 0 itself (devnet only, chain 31337)
LEDGER = bytes.fromhex("5FbDB2315678afecb367f032d93F642f64180aa3")
NODE = bytes.fromhex("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266")


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


def build_vectors() -> dict[str, Any]:
    """The whole vectors document."""
    records = build_records()
    tree = record_tree(records)
    salt = _h("salt:0")
    return {
        "description": "loraledger attribution record v1 golden vectors; regenerate with scripts/gen_vectors.py",
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
        "payload": "0x" + encode_batch(CHAIN_ID, LEDGER, NODE, 0, records).hex(),
        "ioHashExample": {"salt": "0x" + salt.hex(), "prompt": "prompt 0", "completion": "completion 0",
                          "ioHash": "0x" + records[0].io_hash.hex()},
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
