"""A port of OpenZeppelin's `StandardMerkleTree` (npm `@openzeppelin/merkle-tree` 1.0.x), same names and semantics.

- leaf = `keccak256(keccak256(abi.encode(types, value)))`, node = `keccak256(sort(a, b))`;
- leaves sorted by hash, tree stored as OZ's array (`makeMerkleTree`): `tree[i] = H(tree[2i+1], tree[2i+2])`,
  sorted leaf k at `tree[len(tree) - 1 - k]`;
- `of`, `root`, `get_proof`, `get_multi_proof`, `verify`, `verify_multi_proof`, `validate`, `render`, `entries`,
  `dump()`/`load()` in the `standard-v1` JSON format. Roots, proofs and hashes are 0x-hex strings, as in OZ.

Values are given as OZ takes them: ints (or decimal strings) for uints, 0x-hex strings or bytes for addresses and
bytesN, lists for arrays. Leaves are encoded with eth_abi unless the caller passes its own leaf hashes; this module
knows no record type (`attribution.records.tree.record_tree` is the fast path for attribution records).

Internally the tree is one flat buffer of 32-byte nodes (`MerkleNodes`), sorting, building, proving and
validating run in the C extension `attribution._keccak` when it is built (one call each, GIL released), and
`all_proofs()` returns every proof as one buffer (`AllProofs`). Without the extension the same bytes come from
numpy and safe-pysha3.
"""

from attribution.merkle.nodes import (
    AllProofs,
    InvalidMerkleTreeError,
    LeafNotInTreeError,
    MerkleNodes,
    MerkleTreeError,
    make_merkle_tree,
    process_multi_proof,
    process_proof,
    standard_leaf_hash,
    standard_node_hash,
)
from attribution.merkle.tree import StandardMerkleTree

__all__ = [
    "MerkleTreeError",
    "InvalidMerkleTreeError",
    "LeafNotInTreeError",
    "StandardMerkleTree",
    "standard_leaf_hash",
    "standard_node_hash",
    "process_proof",
    "process_multi_proof",
    "make_merkle_tree",
    "MerkleNodes",
    "AllProofs",
]
