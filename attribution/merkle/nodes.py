"""The node layer of the OpenZeppelin `StandardMerkleTree` port (`attribution.merkle`): leaf and node hashes,
proof processing, OZ's tree array (`make_merkle_tree`) and the flat buffers the tree keeps (`MerkleNodes`,
`AllProofs`), built in the C extension `attribution._keccak` when it is there, else with numpy + safe-pysha3.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    "standard_leaf_hash",
    "standard_node_hash",
    "process_proof",
    "process_multi_proof",
    "make_merkle_tree",
    "MerkleNodes",
    "AllProofs",
    "check_node",
    "heap_depths",
    "hex0x",
    "jsonable",
    "node_bytes",
    "normalize",
    "sibling",
    "sort_order",
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

def node_bytes(node: str | bytes) -> bytes:
    if isinstance(node, str):
        try:
            return bytes.fromhex(node[2:] if node.startswith(("0x", "0X")) else node)
        except ValueError as e:
            raise MerkleTreeError(f"not a hex string: {node!r}") from e
    return bytes(node)


def hex0x(b: bytes) -> str:
    return "0x" + b.hex()


def normalize(typ: str, value: Any) -> Any:
    """Turn an OZ-style value (decimal strings, hex strings, lists) into what eth_abi encodes."""
    if typ.endswith("]"):
        inner = typ[: typ.rindex("[")]
        if not isinstance(value, (list, tuple)):
            raise MerkleTreeError(f"value for {typ} must be a list, got {type(value).__name__}")
        return [normalize(inner, v) for v in value]
    if typ.startswith(("uint", "int")):
        if isinstance(value, str):
            return int(value, 0)
        return int(value)
    if typ == "address":
        b = node_bytes(value)
        if len(b) != 20:
            raise MerkleTreeError(f"address must be 20 bytes, got {len(b)}")
        return b
    if typ.startswith("bytes"):
        return node_bytes(value)
    if typ == "bool":
        return bool(value)
    return value


def jsonable(typ: str, value: Any) -> Any:
    """The `standard-v1` JSON form of one value: uints as decimal strings, addresses checksummed, bytes as hex."""
    if typ.endswith("]"):
        inner = typ[: typ.rindex("[")]
        return [jsonable(inner, v) for v in value]
    if typ.startswith(("uint", "int")):
        return str(int(value, 0) if isinstance(value, str) else int(value))
    if typ == "address":
        return to_checksum_address(node_bytes(value))
    if typ.startswith("bytes"):
        return hex0x(node_bytes(value))
    return value


def standard_leaf_hash(types: Sequence[str], value: Sequence[Any]) -> bytes:
    """OZ `standardLeafHash`: `keccak256(keccak256(abi.encode(types, value)))`."""
    if len(types) != len(value):
        raise MerkleTreeError(f"leaf has {len(value)} values but the encoding has {len(types)} types")
    try:
        encoded = eth_abi.encode(list(types), [normalize(t, v) for t, v in zip(types, value, strict=True)])
    except (TypeError, ValueError, OverflowError) as e:
        raise MerkleTreeError(f"cannot ABI-encode leaf {value!r} as {list(types)}: {e}") from e
    return keccak256(keccak256(encoded))


def standard_node_hash(a: bytes, b: bytes) -> bytes:
    """OZ `standardNodeHash`: keccak256 of the two 32-byte nodes, smaller first."""
    return keccak256(a + b if a <= b else b + a)


def check_node(node: bytes) -> bytes:
    if len(node) != 32:
        raise MerkleTreeError("Merkle tree nodes must be 32 bytes")
    return node


def process_proof(leaf: str | bytes, proof: Sequence[str | bytes]) -> bytes:
    """Fold `proof` onto `leaf` with sorted-pair hashing; returns the implied root."""
    h = check_node(node_bytes(leaf))
    for p in proof:
        h = standard_node_hash(h, check_node(node_bytes(p)))
    return h


def process_multi_proof(
    leaves: Sequence[str | bytes], proof: Sequence[str | bytes], proof_flags: Sequence[bool]
) -> bytes:
    """OZ `processMultiProof`: the root implied by a multiproof over leaf hashes."""
    stack = [check_node(node_bytes(x)) for x in leaves]
    prf = [check_node(node_bytes(x)) for x in proof]
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


def sort_order(leaves: list[bytes]) -> list[int]:
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


def sibling(i: int) -> int:
    return i + 1 if i % 2 else i - 1


def heap_depths(idx: np.ndarray) -> np.ndarray:
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
        return [hex0x(p) for p in self.proof(i)]

    def __iter__(self) -> Iterator[tuple[bytes, ...]]:
        return map(self.__getitem__, range(len(self)))
