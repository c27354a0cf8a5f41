"""Reward tree (leaf = RewardDistributor.claimLeaf), payload round trip, and the bench's smoke run."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from attribution.merkle import StandardMerkleTree, process_proof, standard_leaf_hash
from attribution.rewards import RewardsError, SharesSchedule, checksum, compute_rewards
from attribution.rewards.tree import (
    REWARD_LEAF_TYPES,
    RewardTree,
    build_payload,
    decode_payload,
    encode_payload,
    reward_leaf,
    tree_from_payload,
)
from node.bench.rewards import main as bench_main
from node.bench.rewards import synthetic_epoch

ROOT = Path(__file__).resolve().parents[4]
DIST, TOKEN = checksum("0x" + "d1" * 20), checksum("0x" + "70" * 20)


def _amounts(n: int, seed: int = 3) -> dict[str, int]:
    rng = random.Random(seed)
    return {checksum(rng.randbytes(20)): rng.randint(1, 2**200) for _ in range(n)}


def test_leaf_is_standard_leaf_and_proofs_verify() -> None:
    amounts = _amounts(37)
    tree = RewardTree.build(31337, DIST, TOKEN, amounts)
    for acct, amt in amounts.items():
        leaf = reward_leaf(31337, DIST, acct, TOKEN, amt)
        assert leaf == standard_leaf_hash(REWARD_LEAF_TYPES, [31337, DIST, acct, TOKEN, amt])
        assert process_proof(leaf, tree.proof(acct)) == tree.root
        assert tree.amount(acct) == amt
    other = next(iter(amounts))
    assert process_proof(reward_leaf(31337, DIST, other, TOKEN, amounts[other] + 1), tree.proof(other)) != tree.root
    with pytest.raises(RewardsError):
        tree.proof(checksum("0x" + "00" * 19 + "01"))
    with pytest.raises(RewardsError):
        RewardTree.build(31337, DIST, TOKEN, {})


def test_root_equals_npm_openzeppelin_merkle_tree() -> None:
    node = shutil.which("node")
    assert node, "node is required for the interop tests"
    amounts = _amounts(11)
    values = [[str(31337), DIST, a, TOKEN, str(v)] for a, v in amounts.items()]
    script = ("const {StandardMerkleTree}=require(process.cwd()+'/node_modules/@openzeppelin/merkle-tree');"
              "let d='';process.stdin.on('data',c=>d+=c);process.stdin.on('end',()=>{"
              "const t=StandardMerkleTree.of(JSON.parse(d),['uint256','address','address','address','uint256']);"
              "process.stdout.write(t.root)})")
    out = subprocess.run([node, "-e", script], input=json.dumps(values), capture_output=True, text=True, cwd=ROOT,
                         timeout=60, check=True).stdout
    assert out == "0x" + RewardTree.build(31337, DIST, TOKEN, amounts).root.hex()
    assert out == StandardMerkleTree.of(values, REWARD_LEAF_TYPES).root


def test_payload_round_trip_and_tamper_detection() -> None:
    batches, reg, credits, shares = synthetic_epoch(3000, adapters=20, datasets=10, contributors=50, nodes=3,
                                                    batch_size=500)
    res = compute_rewards(batches, reg, credits, shares, "0x" + "ee" * 20)
    tree = RewardTree.build(31337, DIST, TOKEN, res.cumulative)
    payload = build_payload(res, tree, epoch=1, from_block=0, to_block=99, shares=SharesSchedule.fixed(2000, 3000),
                            ledger="0x" + "01" * 20, previous_epoch=0, previous_root=bytes(32))
    data = encode_payload(payload)
    back = decode_payload(data)
    assert back == payload and encode_payload(back) == data
    assert tree_from_payload(back).root == tree.root
    assert int(back["total"]) == sum(int(a["cumulative"]) for a in back["accounts"]) == res.debits
    back["accounts"][0]["cumulative"] = str(int(back["accounts"][0]["cumulative"]) + 1)
    with pytest.raises(RewardsError, match="inconsistent"):
        tree_from_payload(back)
    with pytest.raises(RewardsError):
        decode_payload(b"LLB2 not json")


def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert bench_main(["--records", "20000", "--baseline-records", "2000", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["rewards_records"] == 20000 and figures["accounts"] > 1000 and figures["proofs"] == \
        figures["accounts"]
