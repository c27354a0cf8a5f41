"""The cumulative reward tree and the rewards payload (what goes to DA beside each proposal).

Leaf (DESIGN.md "Contracts", `RewardDistributor.claimLeaf`): OZ StandardMerkleTree over
`(uint256 chainId, address distributor, address account, address token, uint256 cumulativeAmount)`, so the npm
`@openzeppelin/merkle-tree` and the contract's `MerkleProof` verify our proofs unchanged.

The payload is canonical JSON (sorted keys, no whitespace, amounts as decimal strings): the epoch's block range, the
split parameters, every batch with its verdict, every node's owed/credit/debit, every account's epoch amount and
cumulative amount, the root and total. Anyone can rebuild the tree from it (`tree_from_payload`) to get a proof,
and anyone can recompute it from the chain and DA to check it (`attribution.rewards_chain.verify_epoch`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attribution import safejson
from attribution.hashing import keccak256
from attribution.merkle import StandardMerkleTree
from attribution.rewards import EpochRewards, RewardsError, SharesSchedule, checksum

__all__ = [
    "REWARD_LEAF_TYPES",
    "PAYLOAD_VERSION",
    "RewardTree",
    "reward_leaf",
    "build_payload",
    "encode_payload",
    "decode_payload",
    "tree_from_payload",
]

REWARD_LEAF_TYPES = ["uint256", "address", "address", "address", "uint256"]
PAYLOAD_VERSION = "loraledger-rewards/1"


def _word(v: int) -> bytes:
    return v.to_bytes(32, "big")


def _addr_word(a: str) -> bytes:
    return bytes(12) + bytes.fromhex(a[2:])


def reward_leaf(chain_id: int, distributor: str, account: str, token: str, cumulative: int) -> bytes:
    """`RewardDistributor.claimLeaf(account, cumulative)`: keccak256(keccak256(abi.encode(...)))."""
    if not 0 <= cumulative < 2**256:
        raise RewardsError(f"cumulative amount {cumulative} does not fit a uint256")
    enc = _word(chain_id) + _addr_word(distributor) + _addr_word(account) + _addr_word(token) + _word(cumulative)
    return keccak256(keccak256(enc))


@dataclass
class RewardTree:
    """The tree over every account's cumulative amount, with proofs by account."""

    chain_id: int
    distributor: str
    token: str
    tree: StandardMerkleTree
    accounts: list[str]
    amounts: list[int]
    _index: dict[str, int]

    @classmethod
    def build(cls, chain_id: int, distributor: str, token: str, cumulative: Mapping[str, int]) -> RewardTree:
        """The tree over `cumulative` (account -> amount; zero amounts are left out). Needs one non-zero amount."""
        distributor, token = checksum(distributor), checksum(token)
        items = sorted((checksum(a), int(v)) for a, v in cumulative.items() if int(v) > 0)
        if not items:
            raise RewardsError("no account has a non-zero cumulative amount: there is no tree to propose")
        leaves = b"".join(reward_leaf(chain_id, distributor, a, token, v) for a, v in items)
        nodes, indices = StandardMerkleTree._prepare(leaves, True)
        values = [[chain_id, distributor, a, token, v] for a, v in items]
        tree = StandardMerkleTree(nodes, values, indices, REWARD_LEAF_TYPES)
        accounts = [a for a, _ in items]
        return cls(chain_id, distributor, token, tree, accounts, [v for _, v in items],
                   {a: i for i, a in enumerate(accounts)})

    @property
    def root(self) -> bytes:
        """The root as 32 bytes."""
        return self.tree.root_bytes

    def amount(self, account: str) -> int:
        """The account's cumulative amount in this tree (0 if absent)."""
        i = self._index.get(checksum(account))
        return 0 if i is None else self.amounts[i]

    def proof(self, account: str) -> list[bytes]:
        """The proof of the account's leaf."""
        i = self._index.get(checksum(account))
        if i is None:
            raise RewardsError(f"{account} has no cumulative amount in this tree; nothing to claim")
        return self.tree.get_proof_bytes(i)


def build_payload(result: EpochRewards, tree: RewardTree, *, epoch: int, from_block: int, to_block: int,
                  shares: SharesSchedule, ledger: str, previous_epoch: int, previous_root: bytes) -> dict[str, Any]:
    """The rewards payload of one epoch (see the module docstring)."""
    return {
        "version": PAYLOAD_VERSION, "chainId": tree.chain_id, "distributor": tree.distributor, "token": tree.token,
        "ledger": checksum(ledger), "epoch": epoch, "fromBlock": from_block, "toBlock": to_block,
        "previousEpoch": previous_epoch, "previousRoot": "0x" + previous_root.hex(), "shares": shares.to_json(),
        "treasury": result.treasury, "root": "0x" + tree.root.hex(), "total": str(result.total),
        "debits": str(result.debits), "dust": str(result.dust), "unassigned": str(result.unassigned),
        "records": result.records,
        "batches": [b.to_json() for b in result.batches],
        "nodes": [result.nodes[n].to_json() for n in sorted(result.nodes)],
        "accounts": [{"account": a, "amount": str(result.amounts.get(a, 0)), "cumulative": str(v)}
                     for a, v in sorted(result.cumulative.items())],
        "misattributed": [m.to_json() for m in result.misattributed],
    }


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes (sorted keys, no whitespace)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def decode_payload(data: bytes) -> dict[str, Any]:
    """Parse a rewards payload; raises `RewardsError` when it is not one."""
    try:
        payload = safejson.loads(data, what="the rewards payload")  # from DA: untrusted bytes
    except ValueError as e:
        raise RewardsError(f"the rewards payload is not JSON: {e}") from e
    if not isinstance(payload, dict) or payload.get("version") != PAYLOAD_VERSION:
        raise RewardsError(f"not a {PAYLOAD_VERSION} payload")
    return payload


def tree_from_payload(payload: Mapping[str, Any]) -> RewardTree:
    """Rebuild the reward tree from a payload's accounts; raises `RewardsError` if its root is not the payload's."""
    tree = RewardTree.build(int(payload["chainId"]), payload["distributor"], payload["token"],
                            {a["account"]: int(a["cumulative"]) for a in payload["accounts"]})
    if "0x" + tree.root.hex() != payload["root"]:
        raise RewardsError(f"the payload's accounts rebuild root 0x{tree.root.hex()}, not its root "
                           f"{payload['root']}: the payload is inconsistent")
    return tree
