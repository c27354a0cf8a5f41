"""Batch Keccak-256 and OpenZeppelin StandardMerkleTree kernels (C extension `attribution/_keccak.c`).

Buffers are any C-contiguous bytes-like objects (bytes, numpy arrays); integers are native-endian. Every function
releases the GIL while it hashes.
"""

from typing import Any, TypeAlias

from numpy.typing import NDArray
from typing_extensions import Buffer

_Buf: TypeAlias = Buffer | NDArray[Any]  # numpy arrays are buffers; its stubs say so only for Python >= 3.12

def keccak256(data: _Buf, /) -> bytes:
    """Keccak-256 (Ethereum's) of `data`."""

def hash_rows(data: _Buf, width: int, /) -> bytes:
    """Keccak-256 of each `width`-byte row of `data`, digests joined."""

def record_leaves(
    head: _Buf,
    profiles: _Buf,
    profile_offsets: _Buf,
    profile_idx: _Buf,
    seqs: _Buf,
    prompt_tokens: _Buf,
    completion_tokens: _Buf,
    timestamps: _Buf,
    io_hashes: _Buf,
    /,
) -> bytes:
    """Leaves `keccak256(keccak256(abi.encode(record)))` of m records, joined in record order.

    head: the 96 bytes of words 0..2 (chainId, ledger, node); profiles: per profile, head words 4..7 (128 bytes)
    then the ABI tail (both arrays), joined; profile_offsets: int64 [P + 1] byte offsets into profiles;
    profile_idx int64 [m]; seqs uint64 [m]; prompt_tokens, completion_tokens uint32 [m]; timestamps uint64 [m];
    io_hashes [m, 32] bytes.
    """

def sort_order(leaves: _Buf, /) -> bytes:
    """int64 [n]: the order of a stable byte-wise sort of n 32-byte leaves."""

def build_tree(leaves: _Buf, sort: bool = True, /) -> tuple[bytes, bytes]:
    """(tree, tree_indices): the OZ tree array of 2n - 1 nodes joined, and int64 [n] value index -> tree index."""

def all_proofs(tree: _Buf, tree_indices: _Buf, /) -> tuple[bytes, bytes]:
    """(nodes, offsets): every value's proof joined in value order; offsets int64 [n + 1], counted in nodes."""

def check_tree(tree: _Buf, /) -> int:
    """The smallest node index that is not the sorted-pair hash of its children, or -1."""

def lanes() -> int:
    """How many messages are hashed side by side: 8 (AVX-512), 4 (AVX2) or 1."""

def set_lanes(lanes: int, /) -> int:
    """Use 1, 4 or 8 lanes (ValueError if this CPU cannot); returns the previous value. For tests and benchmarks."""
