"""Golden vectors: tests/vectors/records.json equals what scripts/gen_vectors.py generates, and is consistent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from attribution.merkle import StandardMerkleTree
from attribution.records import Record
from attribution.records.payload import decode_batch

ROOT = Path(__file__).resolve().parents[4]
VECTORS = ROOT / "tests" / "vectors" / "records.json"


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
