"""A port of OpenZeppelin's `StandardMerkleTree` (npm `@openzeppelin/merkle-tree` 1.0.x), same names and semantics.

- leaf = `keccak256(keccak256(abi.encode(types, value)))`, node = `keccak256(sort(a, b))`;
- leaves sorted by hash, tree stored as OZ's array (`makeMerkleTree`): `tree[i] = H(tree[2i+1], tree[2i+2])`,
  sorted leaf k at `tree[len(tree) - 1 - k]`;
- `of`, `root`, `get_proof`, `get_multi_proof`, `verify`, `verify_multi_proof`, `validate`, `render`, `entries`,
  `dump()`/`load()` in the `standard-v1` JSON format. Roots, proofs and hashes are 0x-hex strings, as in OZ.

Values are given as OZ takes them: ints (or decimal strings) for uints, 0x-hex strings or bytes for addresses and
bytesN, lists for arrays. The general case encodes leaves with eth_abi; `record_tree` is the fast path for
attribution records (hand-rolled fixed-layout encoding, C keccak, tree levels built with `map` over lists of
32-byte `bytes`, proofs by index arithmetic).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import eth_abi
import numpy as np
import sha3

from attribution.errors import AttributionError
from attribution.records import RECORD_TYPES, Record, keccak256, record_leaves, to_checksum_address

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
    "record_tree",
]

_keccak = sha3.keccak_256
_digest = sha3.keccak_256.digest


class MerkleTreeError(AttributionError, ValueError):
    """Bad input to a Merkle tree operation (no leaves, index out of bounds, malformed proof or dump)."""


class InvalidMerkleTreeError(MerkleTreeError):
    """A loaded tree is inconsistent: a node is not the hash of its children or a value does not match its leaf."""


class LeafNotInTreeError(MerkleTreeError, LookupError):
    """The value asked for is not a leaf of this tree; check the value's fields and types."""


# --------------------------------------------------------------------------------------------------------------
# Hashes and value normalisation
# --------------------------------------------------------------------------------------------------------------

def _to_bytes(node: str | bytes) -> bytes:
    if isinstance(node, str):
        try:
            return bytes.fromhex(node[2:] if node.startswith(("0x", "0X")) else node)
        except ValueError as e:
            raise MerkleTreeError(f"not a hex string: {node!r}") from e
    return bytes(node)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _normalize(typ: str, value: Any) -> Any:
    """Turn an OZ-style value (decimal strings, hex strings, lists) into what eth_abi encodes."""
    if typ.endswith("]"):
        inner = typ[: typ.rindex("[")]
        if not isinstance(value, (list, tuple)):
            raise MerkleTreeError(f"value for {typ} must be a list, got {type(value).__name__}")
        return [_normalize(inner, v) for v in value]
    if typ.startswith(("uint", "int")):
        if isinstance(value, str):
            return int(value, 0)
        return int(value)
    if typ == "address":
        b = _to_bytes(value)
        if len(b) != 20:
            raise MerkleTreeError(f"address must be 20 bytes, got {len(b)}")
        return b
    if typ.startswith("bytes"):
        return _to_bytes(value)
    if typ == "bool":
        return bool(value)
    return value


def _jsonable(typ: str, value: Any) -> Any:
    """The `standard-v1` JSON form of one value: uints as decimal strings, addresses checksummed, bytes as hex."""
    if typ.endswith("]"):
        inner = typ[: typ.rindex("[")]
        return [_jsonable(inner, v) for v in value]
    if typ.startswith(("uint", "int")):
        return str(int(value, 0) if isinstance(value, str) else int(value))
    if typ == "address":
        return to_checksum_address(_to_bytes(value))
    if typ.startswith("bytes"):
        return _hex(_to_bytes(value))
    return value


def standard_leaf_hash(types: Sequence[str], value: Sequence[Any]) -> bytes:
    """OZ `standardLeafHash`: `keccak256(keccak256(abi.encode(types, value)))`."""
    if len(types) != len(value):
        raise MerkleTreeError(f"leaf has {len(value)} values but the encoding has {len(types)} types")
    try:
        encoded = eth_abi.encode(list(types), [_normalize(t, v) for t, v in zip(types, value, strict=True)])
    except (TypeError, ValueError, OverflowError) as e:
        raise MerkleTreeError(f"cannot ABI-encode leaf {value!r} as {list(types)}: {e}") from e
    return keccak256(keccak256(encoded))


def standard_node_hash(a: bytes, b: bytes) -> bytes:
    """OZ `standardNodeHash`: keccak256 of the two 32-byte nodes, smaller first."""
    return keccak256(a + b if a <= b else b + a)


def _check_node(node: bytes) -> bytes:
    if len(node) != 32:
        raise MerkleTreeError("Merkle tree nodes must be 32 bytes")
    return node


def process_proof(leaf: str | bytes, proof: Sequence[str | bytes]) -> bytes:
    """Fold `proof` onto `leaf` with sorted-pair hashing; returns the implied root."""
    h = _check_node(_to_bytes(leaf))
    for p in proof:
        h = standard_node_hash(h, _check_node(_to_bytes(p)))
    return h


def process_multi_proof(
    leaves: Sequence[str | bytes], proof: Sequence[str | bytes], proof_flags: Sequence[bool]
) -> bytes:
    """OZ `processMultiProof`: the root implied by a multiproof over leaf hashes."""
    stack = [_check_node(_to_bytes(x)) for x in leaves]
    prf = [_check_node(_to_bytes(x)) for x in proof]
    if len(prf) < sum(1 for f in proof_flags if not f):
        raise MerkleTreeError("Invalid multiproof format")
    if len(stack) + len(prf) != len(proof_flags) + 1:
        raise MerkleTreeError("Provided leaves and multiproof are not compatible")
    si = pi = 0
    for flag in proof_flags:
        a = stack[si]
        si += 1
        if flag:
            b = stack[si]
            si += 1
        else:
            b = prf[pi]
            pi += 1
        stack.append(standard_node_hash(a, b))
    if (len(stack) - si) + (len(prf) - pi) != 1:
        raise MerkleTreeError("multiproof does not reduce to a single root")
    if si < len(stack):
        return stack[-1]
    return prf[pi]


def make_merkle_tree(leaves: Sequence[bytes]) -> list[bytes]:
    """OZ `makeMerkleTree` over already-ordered leaf hashes; returns the tree array of 2n-1 32-byte nodes.

    Internal nodes are computed a heap depth at a time: the children of depth d are one contiguous slice, so a
    whole depth is hashed with `map` (sorted pairs via `min`/`max`, C keccak) without a Python frame per node.
    """
    n = len(leaves)
    if n == 0:
        raise MerkleTreeError("Expected non-zero number of leaves")
    for leaf in leaves:
        if len(leaf) != 32:
            raise MerkleTreeError("Merkle tree nodes must be 32 bytes")
    tree: list[bytes] = [b""] * (n - 1)
    tree.extend(reversed(leaves))
    last_internal = n - 2
    if last_internal < 0:
        return tree
    # depth of index i is floor(log2(i + 1)); the deepest internal node is n - 2
    depth = (last_internal + 1).bit_length() - 1
    for d in range(depth, -1, -1):
        lo = (1 << d) - 1
        hi = min((1 << (d + 1)) - 2, last_internal)
        children = tree[2 * lo + 1: 2 * hi + 3]
        left = children[0::2]
        right = children[1::2]
        pairs = map(bytes.__add__, map(min, left, right), map(max, left, right))
        tree[lo: hi + 1] = map(_digest, map(_keccak, pairs))
    return tree


def _sort_order(leaves: list[bytes]) -> list[int]:
    """Stable order of 32-byte leaves by value (as OZ's sort). numpy sorts on the first 8 bytes (big-endian); if
    any two leaves share them (duplicate values, or a 2^-64 coincidence) the exact Python sort decides instead."""
    n = len(leaves)
    if n < 1024:
        return sorted(range(n), key=leaves.__getitem__)
    prefix = np.frombuffer(b"".join(leaves), dtype=">u8").reshape(n, 4)[:, 0]
    order = np.argsort(prefix, kind="stable")
    ranked = prefix[order]
    if bool(np.any(ranked[1:] == ranked[:-1])):
        return sorted(range(n), key=leaves.__getitem__)
    result: list[int] = order.tolist()
    return result


def _sibling(i: int) -> int:
    return i + 1 if i % 2 else i - 1


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

    Build with `StandardMerkleTree.of(values, types)` (or `record_tree(records)` for attribution records), or
    `StandardMerkleTree.load(dump)`. Internally the tree is a list of 32-byte `bytes`; the public API speaks 0x-hex
    like OZ. `get_proof_bytes`/`all_proofs` give raw bytes for hot paths.
    """

    def __init__(
        self,
        tree: list[bytes],
        values: Sequence[Any],
        tree_indices: Sequence[int],
        leaf_encoding: Sequence[str],
        leaf_hash: Callable[[Any], bytes] | None = None,
        to_oz_value: Callable[[Any], Any] | None = None,
    ) -> None:
        self._tree = tree
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
    def _prepare(leaves: list[bytes], sort_leaves: bool) -> tuple[list[bytes], list[int]]:
        """OZ `MerkleTreeImpl.prepare`: sort leaf hashes, build the tree, map value index -> tree index."""
        n = len(leaves)
        if sort_leaves:
            order = _sort_order(leaves)
            ordered = list(map(leaves.__getitem__, order))
        else:
            order = list(range(n))
            ordered = leaves
        tree = make_merkle_tree(ordered)
        idx = np.empty(n, np.int64)
        idx[np.asarray(order, np.int64)] = np.arange(2 * n - 2, n - 2, -1, dtype=np.int64)
        return tree, idx.tolist()

    @classmethod
    def load(cls, data: dict[str, Any] | str) -> StandardMerkleTree:
        """Load a `standard-v1` dump (dict or JSON text) and validate it, as OZ `StandardMerkleTree.load`."""
        if isinstance(data, str):
            data = json.loads(data)
        assert isinstance(data, dict)
        if data.get("format") != "standard-v1":
            raise MerkleTreeError(f"Unknown format {data.get('format')!r}")
        if data.get("leafEncoding") is None:
            raise MerkleTreeError("Expected leaf encoding")
        try:
            tree = [_to_bytes(h) for h in data["tree"]]
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
        return _hex(self._tree[0])

    @property
    def root_bytes(self) -> bytes:
        """The root as 32 bytes."""
        return self._tree[0]

    @property
    def tree(self) -> list[str]:
        """The OZ tree array as 0x-hex strings."""
        return [_hex(h) for h in self._tree]

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
            lines.append(f"{prefix}{i}) {_hex(self._tree[i])}")
            if 2 * i + 2 < len(self._tree):
                stack.append((2 * i + 2, [*path, 0]))
                stack.append((2 * i + 1, [*path, 1]))
        return "\n".join(lines)

    def leaf_hash(self, value: Any) -> str:
        """The leaf hash of a value (0x-hex)."""
        return _hex(self._leaf_hash(value))

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
            proof.append(self._tree[_sibling(i)])
            i = (i - 1) // 2
        return proof

    def get_proof(self, leaf: int | Any) -> list[str]:
        """OZ `getProof`: the proof for a value given by index or by value, as 0x-hex strings."""
        return [_hex(p) for p in self.get_proof_bytes(leaf)]

    def all_proofs(self) -> list[tuple[bytes, ...]]:
        """Proofs of every value, in value order, as tuples of 32-byte nodes (index arithmetic in numpy).

        Leaves sit at most at two heap depths; within a depth every proof has the same length, so the sibling
        indices of all leaves are computed one proof position at a time and gathered with `map`.
        """
        n = len(self._values)
        idx = np.asarray(self._tree_indices, np.int64)
        depth = np.floor(np.log2(idx + 1)).astype(np.int64)
        # float log2 is exact for these sizes except right at powers of two; fix up with integer checks
        depth -= ((1 << depth) - 1 > idx).astype(np.int64)
        depth += ((1 << (depth + 1)) - 1 <= idx).astype(np.int64)
        out: list[tuple[bytes, ...]] = [()] * n
        get = self._tree.__getitem__
        for d in np.unique(depth).tolist():
            pos = np.flatnonzero(depth == d)
            cur = idx[pos]
            cols = []
            for _ in range(d):
                sib = cur + 1 - 2 * ((cur + 1) % 2)  # odd -> i + 1, even -> i - 1
                cols.append(list(map(get, sib.tolist())))
                cur = (cur - 1) // 2
            proofs: list[tuple[bytes, ...]] = list(zip(*cols, strict=True)) if cols else [()] * len(pos)
            if len(pos) == n:
                return proofs
            list(map(out.__setitem__, pos.tolist(), proofs))  # scatter into value order without a Python loop
        return out

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
            s = _sibling(j)
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
            "proof": [_hex(p) for p in proof],
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
        return _to_bytes(root) == process_proof(standard_leaf_hash(leaf_encoding, leaf), proof)

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
        return _to_bytes(root) == process_multi_proof(hashes, multiproof["proof"], multiproof["proofFlags"])

    verify_multi_proof = _ClassOrInstance(_verify_multi_static, _verify_multi_instance)

    def validate(self) -> None:
        """OZ `validate`: every value matches its leaf and every node hashes its children; raises otherwise."""
        for i in range(len(self._values)):
            if not 0 <= self._tree_indices[i] < len(self._tree):
                raise InvalidMerkleTreeError(f"treeIndex {self._tree_indices[i]} out of range")
            self._validate_value_at(i)
        t = self._tree
        if not t or any(len(h) != 32 for h in t):
            raise InvalidMerkleTreeError("Merkle tree is invalid")
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
            values = [[_jsonable(t, x) for t, x in zip(types, v, strict=True)] for v in self._values]
        return {
            "format": "standard-v1",
            "leafEncoding": list(types),
            "tree": self.tree,
            "values": [{"value": v, "treeIndex": ti} for v, ti in zip(values, self._tree_indices, strict=True)],
        }


# --------------------------------------------------------------------------------------------------------------
# Fast path for attribution records
# --------------------------------------------------------------------------------------------------------------

def _record_leaf_hash(value: Any) -> bytes:
    if isinstance(value, Record):
        return value.leaf()
    return Record.from_abi_values(value).leaf()


def record_tree(records: Sequence[Record], leaves: list[bytes] | None = None) -> StandardMerkleTree:
    """The StandardMerkleTree over attribution records (types `RECORD_TYPES`), built on the fast path.

    Values are the `Record` objects themselves; `get_proof` also takes a `Record` (or its 12 values) to look up,
    and `dump()` writes them as OZ values. Pass `leaves` if already computed (e.g. from a decoded payload).
    """
    if not records:
        raise MerkleTreeError("Expected non-zero number of leaves")
    hashes = leaves if leaves is not None else record_leaves(records)
    tree, indices = StandardMerkleTree._prepare(hashes, True)
    return StandardMerkleTree(tree, records, indices, RECORD_TYPES, leaf_hash=_record_leaf_hash,
                              to_oz_value=Record.oz_values)
