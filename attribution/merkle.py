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

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import eth_abi
import numpy as np
import sha3

from attribution.errors import AttributionError
from attribution.hashing import keccak256, native_kernels, to_checksum_address

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
    native = native_kernels()
    if native is not None:
        return list(MerkleNodes(native.build_tree(b"".join(leaves), False)[0]))
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
    native = native_kernels()
    if native is not None:
        native_order: list[int] = np.frombuffer(native.sort_order(b"".join(leaves)), np.int64).tolist()
        return native_order
    prefix = np.frombuffer(b"".join(leaves), dtype=">u8").reshape(n, 4)[:, 0]
    order = np.argsort(prefix, kind="stable")
    ranked = prefix[order]
    if bool(np.any(ranked[1:] == ranked[:-1])):
        return sorted(range(n), key=leaves.__getitem__)
    result: list[int] = order.tolist()
    return result


def _sibling(i: int) -> int:
    return i + 1 if i % 2 else i - 1


def _heap_depths(idx: np.ndarray) -> np.ndarray:
    """floor(log2(i + 1)) of int64 tree indices: a leaf's proof length."""
    depth = np.floor(np.log2(idx + 1)).astype(np.int64)
    # float log2 is exact for these sizes except right at powers of two; fix up with integer checks
    depth -= ((1 << depth) - 1 > idx).astype(np.int64)
    depth += ((1 << (depth + 1)) - 1 <= idx).astype(np.int64)
    return depth


class MerkleNodes(Sequence[bytes]):
    """The OZ tree array as one buffer of 32-byte nodes; `nodes[i]` is node i (`bytes`), `buffer` all of them.

    A million-leaf tree is two million nodes: one 64 MB buffer instead of two million `bytes` objects.
    """

    __slots__ = ("buffer", "_n")

    def __init__(self, buffer: bytes) -> None:
        if len(buffer) % 32:
            raise MerkleTreeError(f"a node buffer holds whole 32-byte nodes, got {len(buffer)} bytes")
        self.buffer = buffer
        self._n = len(buffer) // 32

    @classmethod
    def of(cls, nodes: Sequence[bytes]) -> MerkleNodes:
        """From a list of 32-byte nodes; raises `InvalidMerkleTreeError` if one is not 32 bytes."""
        if isinstance(nodes, MerkleNodes):
            return nodes
        if any(len(h) != 32 for h in nodes):
            raise InvalidMerkleTreeError("Merkle tree is invalid")
        return cls(b"".join(nodes))

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...

    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"node {i} out of range for a tree of {self._n} nodes")
        return self.buffer[32 * i: 32 * i + 32]

    def __iter__(self) -> Iterator[bytes]:
        b = self.buffer
        return map(b.__getitem__, map(slice, range(0, len(b), 32), range(32, len(b) + 32, 32)))


class AllProofs(Sequence[tuple[bytes, ...]]):
    """Every value's proof, in value order, as one buffer: proof i is the 32-byte nodes
    `nodes[32 * offsets[i]: 32 * offsets[i + 1]]` (leaf to root), `offsets` int64 of length n + 1.

    Indexing gives a tuple of 32-byte `bytes` (made on access); `proof(i)` a list, `hex(i)` 0x-hex as `get_proof`.
    Write `nodes` and `offsets` to serve proofs from disk without rebuilding the tree.
    """

    __slots__ = ("nodes", "offsets", "_offsets")

    def __init__(self, nodes: bytes, offsets: np.ndarray) -> None:
        self.nodes = nodes
        self.offsets = offsets
        self._offsets = np.ascontiguousarray(offsets, np.int64).data.cast("B").cast("q")

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, i: int) -> tuple[bytes, ...]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[bytes, ...]]: ...

    def __getitem__(self, i: int | slice) -> tuple[bytes, ...] | list[tuple[bytes, ...]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return tuple(self.proof(i))

    def proof(self, i: int) -> list[bytes]:
        """Proof of value i as 32-byte nodes (what `get_proof_bytes(i)` returns)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"value {i} out of range for {n} proofs")
        i %= n
        a, b = 32 * self._offsets[i], 32 * self._offsets[i + 1]
        nodes = self.nodes
        return list(map(nodes.__getitem__, map(slice, range(a, b, 32), range(a + 32, b + 32, 32))))

    def hex(self, i: int) -> list[str]:
        """Proof of value i as 0x-hex strings (what `get_proof(i)` returns)."""
        return [_hex(p) for p in self.proof(i)]

    def __iter__(self) -> Iterator[tuple[bytes, ...]]:
        return map(self.__getitem__, range(len(self)))


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
            order = _sort_order(leaves)
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
        depth = _heap_depths(idx)
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
            values = [[_jsonable(t, x) for t, x in zip(types, v, strict=True)] for v in self._values]
        return {
            "format": "standard-v1",
            "leafEncoding": list(types),
            "tree": self.tree,
            "values": [{"value": v, "treeIndex": ti} for v, ti in zip(values, self._tree_indices, strict=True)],
        }
