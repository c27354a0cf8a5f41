"""`StandardMerkleTree`: OpenZeppelin's (npm `@openzeppelin/merkle-tree` 1.0.x) with the same names and semantics,
over the node layer in `attribution.merkle.nodes` (see the package doc)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from attribution import safejson
from attribution.hashing import native_kernels
from attribution.merkle.nodes import (
    AllProofs,
    InvalidMerkleTreeError,
    LeafNotInTreeError,
    MerkleNodes,
    MerkleTreeError,
    heap_depths,
    hex0x,
    jsonable,
    make_merkle_tree,
    node_bytes,
    process_multi_proof,
    process_proof,
    sibling,
    sort_order,
    standard_leaf_hash,
    standard_node_hash,
)

__all__ = ["StandardMerkleTree"]

# --------------------------------------------------------------------------------------------------------------
# The tree
# --------------------------------------------------------------------------------------------------------------

class _ClassOrInstance:
    """Descriptor: `StandardMerkleTree.verify(root, types, leaf, proof)` on the class, `tree.verify(leaf, proof)`
    on an instance, as in OZ (which has a static and an instance method of the same name)."""

    def __init__(self, static: Callable[..., Any], bound: Callable[..., Any]) -> None:
        self._static = static
        self._bound = bound
        self.__doc__ = bound.__doc__

    def __get__(self, obj: Any, owner: Any = None) -> Callable[..., Any]:
        if obj is None:
            return self._static
        return self._bound.__get__(obj, owner)


class StandardMerkleTree:
    """OZ StandardMerkleTree: a Merkle tree over ABI-encoded values with double-hashed, sorted leaves.

    Build with `StandardMerkleTree.of(values, types)` (or `attribution.records.tree.record_tree(records)` for
    attribution records), or `StandardMerkleTree.load(dump)`. Internally the tree is a list of 32-byte `bytes`;
    the public API speaks 0x-hex like OZ. `get_proof_bytes`/`all_proofs` give raw bytes for hot paths.
    """

    def __init__(
        self,
        tree: Sequence[bytes],
        values: Sequence[Any],
        tree_indices: Sequence[int],
        leaf_encoding: Sequence[str],
        leaf_hash: Callable[[Any], bytes] | None = None,
        to_oz_value: Callable[[Any], Any] | None = None,
    ) -> None:
        self._tree = MerkleNodes.of(tree)
        self._values = values
        self._tree_indices = tree_indices
        self.leaf_encoding = list(leaf_encoding)
        types = self.leaf_encoding
        self._leaf_hash: Callable[[Any], bytes] = leaf_hash or (lambda v: standard_leaf_hash(types, v))
        self._to_oz = to_oz_value
        self._lookup: dict[bytes, int] | None = None

    # construction ------------------------------------------------------------------------------------------

    @classmethod
    def of(cls, values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str], sort_leaves: bool = True
           ) -> StandardMerkleTree:
        """Build the tree over `values` (each a sequence matching `leaf_encoding`), as OZ `StandardMerkleTree.of`."""
        if not values:
            raise MerkleTreeError("Expected non-zero number of leaves")
        types = list(leaf_encoding)
        vals = [list(v) for v in values]
        leaves = [standard_leaf_hash(types, v) for v in vals]
        tree, indices = cls._prepare(leaves, sort_leaves)
        return cls(tree, vals, indices, types)

    @staticmethod
    def _prepare(leaves: Sequence[bytes] | bytes, sort_leaves: bool) -> tuple[MerkleNodes, Sequence[int]]:
        """OZ `MerkleTreeImpl.prepare`: sort leaf hashes, build the tree, map value index -> tree index.

        `leaves` is a list of 32-byte hashes or all of them joined."""
        native = native_kernels()
        if native is not None:
            buf = leaves if isinstance(leaves, bytes) else b"".join(MerkleNodes.of(leaves))
            if not buf or len(buf) % 32:
                raise MerkleTreeError("Expected non-zero number of 32-byte leaves")
            tree, indices = native.build_tree(buf, sort_leaves)
            return MerkleNodes(tree), memoryview(indices).cast("q")  # indexing gives Python ints
        if isinstance(leaves, bytes):
            leaves = list(MerkleNodes(leaves))
        leaves = list(leaves)
        n = len(leaves)
        if sort_leaves:
            order = sort_order(leaves)
            ordered = list(map(leaves.__getitem__, order))
        else:
            order = list(range(n))
            ordered = leaves
        tree = make_merkle_tree(ordered)
        idx = np.empty(n, np.int64)
        idx[np.asarray(order, np.int64)] = np.arange(2 * n - 2, n - 2, -1, dtype=np.int64)
        return MerkleNodes.of(tree), idx.tolist()

    @classmethod
    def load(cls, data: dict[str, Any] | str) -> StandardMerkleTree:
        """Load a `standard-v1` dump (dict or JSON text) and validate it, as OZ `StandardMerkleTree.load`."""
        if isinstance(data, str):
            try:
                data = safejson.loads(data, what="the tree dump")
            except safejson.JSONInputError as e:
                raise MerkleTreeError(str(e)) from e
        if not isinstance(data, dict):
            raise MerkleTreeError("a standard-v1 tree dump is a JSON object")
        if data.get("format") != "standard-v1":
            raise MerkleTreeError(f"Unknown format {data.get('format')!r}")
        if data.get("leafEncoding") is None:
            raise MerkleTreeError("Expected leaf encoding")
        try:
            tree = [node_bytes(h) for h in data["tree"]]
            values = [v["value"] for v in data["values"]]
            indices = [int(v["treeIndex"]) for v in data["values"]]
        except (KeyError, TypeError) as e:
            raise MerkleTreeError(f"malformed standard-v1 dump: {e}") from e
        t = cls(tree, values, indices, data["leafEncoding"])
        t.validate()
        return t

    # OZ surface --------------------------------------------------------------------------------------------

    @property
    def root(self) -> str:
        """The root as 0x-hex."""
        return hex0x(self._tree[0])

    @property
    def root_bytes(self) -> bytes:
        """The root as 32 bytes."""
        return self._tree[0]

    @property
    def tree(self) -> list[str]:
        """The OZ tree array as 0x-hex strings."""
        return [hex0x(h) for h in self._tree]

    def __len__(self) -> int:
        return len(self._values)

    def at(self, index: int) -> Any:
        """The value at `index` (in the order given to `of`), or None past the end, like OZ `at`."""
        return self._values[index] if -len(self._values) <= index < len(self._values) else None

    def entries(self) -> Iterator[tuple[int, Any]]:
        """Yield `(index, value)` in input order."""
        yield from enumerate(self._values)

    def render(self) -> str:
        """Text drawing of the tree (OZ `render`)."""
        lines: list[str] = []
        stack: list[tuple[int, list[int]]] = [(0, [])]
        while stack:
            i, path = stack.pop()
            prefix = "".join(["   ", "│  "][p] for p in path[:-1]) + "".join(["└─ ", "├─ "][p] for p in path[-1:])
            lines.append(f"{prefix}{i}) {hex0x(self._tree[i])}")
            if 2 * i + 2 < len(self._tree):
                stack.append((2 * i + 2, [*path, 0]))
                stack.append((2 * i + 1, [*path, 1]))
        return "\n".join(lines)

    def leaf_hash(self, value: Any) -> str:
        """The leaf hash of a value (0x-hex)."""
        return hex0x(self._leaf_hash(value))

    def _value_index(self, leaf: int | Any) -> int:
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            return leaf
        if self._lookup is None:
            self._lookup = {self._tree[ti]: vi for vi, ti in enumerate(self._tree_indices)}
        h = self._leaf_hash(leaf)
        if h not in self._lookup:
            raise LeafNotInTreeError("Leaf is not in tree")
        return self._lookup[h]

    def _validate_value_at(self, index: int) -> None:
        if not 0 <= index < len(self._values):
            raise MerkleTreeError(f"Index out of bounds: {index} (tree has {len(self._values)} values)")
        if self._tree[self._tree_indices[index]] != self._leaf_hash(self._values[index]):
            raise InvalidMerkleTreeError("Merkle tree does not contain the expected value")

    def get_proof_bytes(self, leaf: int | Any) -> list[bytes]:
        """The proof for a value (by index into the values or by value) as raw 32-byte nodes."""
        vi = self._value_index(leaf)
        self._validate_value_at(vi)
        i = self._tree_indices[vi]
        proof = []
        while i > 0:
            proof.append(self._tree[sibling(i)])
            i = (i - 1) // 2
        return proof

    def get_proof(self, leaf: int | Any) -> list[str]:
        """OZ `getProof`: the proof for a value given by index or by value, as 0x-hex strings."""
        return [hex0x(p) for p in self.get_proof_bytes(leaf)]

    def all_proofs(self) -> AllProofs:
        """Proofs of every value, in value order, as one buffer (`AllProofs`; `proofs[i]` is a tuple of 32-byte
        nodes equal to `get_proof_bytes(i)`). One C call; without the extension, numpy gathers position by
        position (a leaf's proof length is its heap depth, so all proofs share positions 0..depth-1)."""
        indices = self._tree_indices
        native = native_kernels()
        if native is not None:
            idx_buf = indices if isinstance(indices, memoryview) else np.asarray(indices, np.int64)
            nodes, offsets = native.all_proofs(self._tree.buffer, idx_buf)
            return AllProofs(nodes, np.frombuffer(offsets, np.int64))
        idx = np.asarray(indices, np.int64)
        depth = heap_depths(idx)
        offsets = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(depth, out=offsets[1:])
        tree = np.frombuffer(self._tree.buffer, np.uint8).reshape(-1, 32)
        flat = np.empty((int(offsets[-1]), 32), np.uint8)
        cur = idx.copy()
        for k in range(int(depth.max()) if len(depth) else 0):
            live = np.flatnonzero(depth > k)
            c = cur[live]
            flat[offsets[live] + k] = tree[c + 1 - 2 * ((c + 1) % 2)]  # odd -> i + 1, even -> i - 1
            cur[live] = (c - 1) // 2
        return AllProofs(flat.tobytes(), offsets)

    def get_multi_proof(self, leaves: Sequence[int | Any]) -> dict[str, Any]:
        """OZ `getMultiProof`: `{"leaves": [values], "proof": [hex], "proofFlags": [bool]}`."""
        value_indices = [self._value_index(leaf) for leaf in leaves]
        for vi in value_indices:
            self._validate_value_at(vi)
        indices = sorted((self._tree_indices[vi] for vi in value_indices), reverse=True)
        if any(a == b for a, b in zip(indices, indices[1:], strict=False)):
            raise MerkleTreeError("Cannot prove duplicated index")
        stack = list(indices)
        proof: list[bytes] = []
        flags: list[bool] = []
        head = 0
        while head < len(stack) and stack[head] > 0:
            j = stack[head]
            head += 1
            s = sibling(j)
            p = (j - 1) // 2
            if head < len(stack) and s == stack[head]:
                flags.append(True)
                head += 1
            else:
                flags.append(False)
                proof.append(self._tree[s])
            stack.append(p)
        if not indices:
            proof.append(self._tree[0])
        by_tree_index = {ti: vi for vi, ti in enumerate(self._tree_indices)}
        return {
            "leaves": [self._values[by_tree_index[i]] for i in indices],
            "proof": [hex0x(p) for p in proof],
            "proofFlags": flags,
        }

    def _verify_instance(self, leaf: int | Any, proof: Sequence[str | bytes]) -> bool:
        """OZ instance `verify`: does `proof` prove `leaf` (a value, or an index into the values) in this tree?"""
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            if not 0 <= leaf < len(self._values):
                raise MerkleTreeError(f"Index out of bounds: {leaf}")
            leaf = self._values[leaf]
        return process_proof(self._leaf_hash(leaf), proof) == self._tree[0]

    @staticmethod
    def _verify_static(root: str | bytes, leaf_encoding: Sequence[str], leaf: Sequence[Any],
                       proof: Sequence[str | bytes]) -> bool:
        """OZ static `verify(root, leafEncoding, leaf, proof)`."""
        return node_bytes(root) == process_proof(standard_leaf_hash(leaf_encoding, leaf), proof)

    verify = _ClassOrInstance(_verify_static, _verify_instance)

    def _verify_multi_instance(self, multiproof: dict[str, Any]) -> bool:
        """OZ instance `verifyMultiProof`."""
        leaves = [self._values[x] if isinstance(x, int) and not isinstance(x, bool) else x
                  for x in multiproof["leaves"]]
        return process_multi_proof([self._leaf_hash(v) for v in leaves], multiproof["proof"],
                                   multiproof["proofFlags"]) == self._tree[0]

    @staticmethod
    def _verify_multi_static(root: str | bytes, leaf_encoding: Sequence[str], multiproof: dict[str, Any]) -> bool:
        """OZ static `verifyMultiProof(root, leafEncoding, multiproof)`."""
        hashes = [standard_leaf_hash(leaf_encoding, v) for v in multiproof["leaves"]]
        return node_bytes(root) == process_multi_proof(hashes, multiproof["proof"], multiproof["proofFlags"])

    verify_multi_proof = _ClassOrInstance(_verify_multi_static, _verify_multi_instance)

    def validate(self) -> None:
        """OZ `validate`: every value matches its leaf and every node hashes its children; raises otherwise."""
        for i in range(len(self._values)):
            if not 0 <= self._tree_indices[i] < len(self._tree):
                raise InvalidMerkleTreeError(f"treeIndex {self._tree_indices[i]} out of range")
            self._validate_value_at(i)
        t = self._tree
        if not t:
            raise InvalidMerkleTreeError("Merkle tree is invalid")
        if len(t) % 2 == 0:  # some node would have a left child only
            raise InvalidMerkleTreeError("Merkle tree is invalid")
        native = native_kernels()
        if native is not None:
            bad = native.check_tree(t.buffer)
            if bad >= 0:
                raise InvalidMerkleTreeError(f"Merkle tree is invalid at node {bad}")
            return
        for i in range(len(t)):
            left, right = 2 * i + 1, 2 * i + 2
            if right >= len(t):
                if left < len(t):
                    raise InvalidMerkleTreeError("Merkle tree is invalid")
            elif t[i] != standard_node_hash(t[left], t[right]):
                raise InvalidMerkleTreeError(f"Merkle tree is invalid at node {i}")

    def dump(self) -> dict[str, Any]:
        """The `standard-v1` JSON object (uints as decimal strings, addresses checksummed, bytes as 0x-hex)."""
        types = self.leaf_encoding
        if self._to_oz is not None:
            values = [self._to_oz(v) for v in self._values]
        else:
            values = [[jsonable(t, x) for t, x in zip(types, v, strict=True)] for v in self._values]
        return {
            "format": "standard-v1",
            "leafEncoding": list(types),
            "tree": self.tree,
            "values": [{"value": v, "treeIndex": ti} for v, ti in zip(values, self._tree_indices, strict=True)],
        }
