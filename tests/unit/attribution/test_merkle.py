"""StandardMerkleTree port: interop with npm @openzeppelin/merkle-tree (through Node), proofs, dumps, errors."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.merkle import (
    InvalidMerkleTreeError,
    LeafNotInTreeError,
    MerkleTreeError,
    StandardMerkleTree,
    make_merkle_tree,
    process_multi_proof,
    process_proof,
    standard_leaf_hash,
)
from attribution.records import RECORD_TYPES
from attribution.records.tree import record_tree
from tests.unit.attribution.factories import random_records

ROOT = Path(__file__).resolve().parents[3]
REWARD_TYPES = ["uint256", "address", "address", "address", "uint256"]

# Runs every case through the npm library and returns its view of it.
_OZ_SCRIPT = r"""
const { StandardMerkleTree } = require(process.cwd() + '/node_modules/@openzeppelin/merkle-tree');
let data = '';
process.stdin.on('data', c => (data += c));
process.stdin.on('end', () => {
  const out = JSON.parse(data).map(c => {
    const t = StandardMerkleTree.of(c.values, c.types);
    const ours = StandardMerkleTree.load(c.ourDump);
    return {
      root: t.root,
      proofs: c.values.map((_, i) => t.getProof(i)),
      multi: t.getMultiProof(c.multi),
      dump: t.dump(),
      ourDumpRoot: ours.root,
      ourDumpProofs: c.values.map((_, i) => ours.getProof(i)),
      ourProofsVerify: c.values.every((v, i) => StandardMerkleTree.verify(t.root, c.types, v, c.ourProofs[i])),
    };
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def _oz(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is required for the interop tests"
    proc = subprocess.run([node, "-e", _OZ_SCRIPT], input=json.dumps(cases), capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _reward_values(rng: random.Random, n: int) -> list[list[Any]]:
    return [[str(31337), "0x" + rng.randbytes(20).hex(), "0x" + rng.randbytes(20).hex(),
             "0x" + rng.randbytes(20).hex(), str(rng.randint(0, 2**256 - 1))] for _ in range(n)]


def test_interop_with_openzeppelin_merkle_tree() -> None:
    rng = random.Random(7)
    cases, ours = [], []
    for n in (1, 2, 3, 5, 8, 13, 33):
        vals = _reward_values(rng, n)
        t = StandardMerkleTree.of(vals, REWARD_TYPES)
        multi = sorted(rng.sample(range(n), k=rng.randint(0, n)))
        cases.append({"types": REWARD_TYPES, "values": vals, "multi": multi, "ourDump": t.dump(),
                      "ourProofs": [t.get_proof(i) for i in range(n)]})
        ours.append((t, multi))
    for n, seed in ((1, 1), (4, 2), (17, 3), (64, 4)):
        recs = random_records(n, seed=seed)
        t = record_tree(recs)
        multi = sorted(rng.sample(range(n), k=min(n, 3)))
        cases.append({"types": RECORD_TYPES, "values": [r.oz_values() for r in recs], "multi": multi,
                      "ourDump": t.dump(), "ourProofs": [t.get_proof(i) for i in range(n)]})
        ours.append((t, multi))
    results = _oz(cases)
    for (t, multi), case, oz in zip(ours, cases, results, strict=True):
        assert t.root == oz["root"]
        assert [t.get_proof(i) for i in range(len(t))] == oz["proofs"]
        assert oz["ourDumpRoot"] == t.root and oz["ourDumpProofs"] == oz["proofs"]
        assert oz["ourProofsVerify"] is True
        mp = t.get_multi_proof(multi)
        assert mp["proof"] == oz["multi"]["proof"] and mp["proofFlags"] == oz["multi"]["proofFlags"]
        theirs = StandardMerkleTree.load(oz["dump"])  # their dump loads in ours
        assert theirs.root == t.root
        assert [theirs.get_proof(i) for i in range(len(t))] == oz["proofs"]
        assert StandardMerkleTree.verify_multi_proof(t.root, case["types"], oz["multi"])


def test_all_proofs_match_get_proof_and_verify() -> None:
    for n in [*range(1, 40), 64, 65, 100]:
        recs = random_records(n, seed=n)
        t = record_tree(recs)
        proofs = t.all_proofs()
        assert len(proofs) == n
        for i in range(n):
            assert list(proofs[i]) == t.get_proof_bytes(i)
            assert t.verify(i, list(proofs[i]))
            assert t.verify(recs[i], list(proofs[i]))
        assert t.get_proof(recs[n // 2]) == t.get_proof(n // 2)  # by value


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**256 - 1), st.binary(min_size=20, max_size=20)), min_size=1,
                max_size=24, unique=True), st.data())
def test_proofs_verify_and_break_on_any_bit_flip(values: list[tuple[int, bytes]], data: st.DataObject) -> None:
    types = ["uint256", "address"]
    vals = [[v, a] for v, a in values]
    t = StandardMerkleTree.of(vals, types)
    t.validate()
    i = data.draw(st.integers(0, len(vals) - 1))
    proof = t.get_proof(i)
    assert StandardMerkleTree.verify(t.root, types, vals[i], proof)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        raw = bytearray(bytes.fromhex(proof[k][2:]))
        raw[bit // 8] ^= 1 << (bit % 8)
        bad = [*proof[:k], "0x" + raw.hex(), *proof[k + 1:]]
        assert not StandardMerkleTree.verify(t.root, types, vals[i], bad)
    root = bytearray(t.root_bytes)
    root[data.draw(st.integers(0, 31))] ^= 1
    assert not StandardMerkleTree.verify(bytes(root), types, vals[i], proof)
    assert not t.verify([vals[i][0] ^ 1, vals[i][1]], proof)
    sub = data.draw(st.lists(st.integers(0, len(vals) - 1), unique=True))
    mp = t.get_multi_proof(sub)
    assert t.verify_multi_proof(mp)
    assert process_multi_proof([standard_leaf_hash(types, v) for v in mp["leaves"]], mp["proof"],
                               mp["proofFlags"]) == t.root_bytes


def test_tree_layout_is_openzeppelins() -> None:
    leaves = [bytes([i]) * 32 for i in range(5)]
    tree = make_merkle_tree(leaves)
    assert len(tree) == 9
    assert tree[8] == leaves[0] and tree[4] == leaves[4]  # leaf k at len - 1 - k
    assert process_proof(tree[8], [tree[7], tree[4], tree[2]]) == tree[0]


def test_load_rejects_tampering() -> None:
    t = StandardMerkleTree.of([["1"], ["2"], ["3"]], ["uint256"])
    dump = t.dump()
    assert StandardMerkleTree.load(json.dumps(dump)).root == t.root
    bad_value = json.loads(json.dumps(dump))
    bad_value["values"][0]["value"] = ["4"]
    with pytest.raises(InvalidMerkleTreeError):
        StandardMerkleTree.load(bad_value)
    bad_node = json.loads(json.dumps(dump))
    bad_node["tree"][0] = "0x" + "00" * 32
    with pytest.raises(InvalidMerkleTreeError):
        StandardMerkleTree.load(bad_node)
    with pytest.raises(MerkleTreeError, match="Unknown format"):
        StandardMerkleTree.load({**dump, "format": "simple-v1"})


def test_errors() -> None:
    with pytest.raises(MerkleTreeError, match="non-zero number of leaves"):
        StandardMerkleTree.of([], ["uint256"])
    t = StandardMerkleTree.of([["1"], ["2"]], ["uint256"])
    with pytest.raises(LeafNotInTreeError):
        t.get_proof(["3"])
    with pytest.raises(MerkleTreeError, match="out of bounds"):
        t.get_proof(2)
    with pytest.raises(MerkleTreeError, match="duplicated"):
        t.get_multi_proof([0, 0])
    assert t.at(1) == ["2"] and t.at(5) is None
    assert list(t.entries()) == [(0, ["1"]), (1, ["2"])]
    assert t.render().startswith("0) " + t.root)


def test_fast_leaf_sort_is_the_stable_byte_sort() -> None:
    from attribution.merkle.nodes import sort_order as _sort_order

    rng = random.Random(3)
    leaves = [rng.randbytes(32) for _ in range(3000)]
    assert _sort_order(leaves) == sorted(range(3000), key=leaves.__getitem__)
    same_prefix = [b"\x00" * 8 + rng.randbytes(24) for _ in range(1500)] + leaves[:10] + leaves[:10]  # ties, dups
    assert _sort_order(same_prefix) == sorted(range(len(same_prefix)), key=same_prefix.__getitem__)
