"""The dispute chunks of a payload and their Merkle tree (certificate v3's `chunksRoot`, docs/disputes.md).

An availability challenge names one chunk of a batch's payload; the node answers by publishing that chunk's bytes
on-chain with a proof under the certificate's `chunksRoot`. Chunk i is `payload[i·CHUNK_BYTES : (i+1)·CHUNK_BYTES]`
(the last one shorter), `CHUNK_BYTES` = 126,976 = 31 × 4096 so that a full chunk's resolve fits one transaction.
The tree is OpenZeppelin's StandardMerkleTree over `(uint256 index, bytes32 keccak256(chunk))`, so
`BatchDisputes.resolveAvailability` checks our proofs with `MerkleProof` unchanged.
"""

from __future__ import annotations

from attribution.hashing import keccak256
from attribution.merkle import StandardMerkleTree

__all__ = ["CHUNK_BYTES", "CHUNK_LEAF_TYPES", "ChunkProof", "chunk_count", "chunk_of", "chunks_root", "chunks_tree",
           "chunk_proof"]

#: Bytes per dispute chunk: `BatchDisputes.CHUNK_BYTES` (a full-chunk resolve stays under 128 KiB of calldata).
CHUNK_BYTES = 126_976
#: The StandardMerkleTree leaf types of the chunk tree.
CHUNK_LEAF_TYPES = ("uint256", "bytes32")


def chunk_count(length: int) -> int:
    """Chunks of a `length`-byte payload: ceil(length / CHUNK_BYTES) (0 for an empty payload)."""
    if length < 0:
        raise ValueError(f"payload length must be >= 0, got {length}")
    return -(-length // CHUNK_BYTES)


def chunk_of(payload: bytes, index: int) -> bytes:
    """Chunk `index` of `payload`; empty past the payload's end (what the contract takes for such an index)."""
    if index < 0:
        raise ValueError(f"chunk index must be >= 0, got {index}")
    return bytes(payload[index * CHUNK_BYTES:(index + 1) * CHUNK_BYTES])


def chunks_tree(payload: bytes) -> StandardMerkleTree:
    """The StandardMerkleTree over `(i, keccak256(chunk i))` of every chunk of a non-empty payload."""
    n = chunk_count(len(payload))
    if n == 0:
        raise ValueError("an empty payload has no chunks; the DA layer refuses empty payloads")
    view = memoryview(payload)
    values = [[i, keccak256(bytes(view[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES]))] for i in range(n)]
    return StandardMerkleTree.of(values, list(CHUNK_LEAF_TYPES))


def chunks_root(payload: bytes) -> bytes:
    """The certificate v3 `chunksRoot` of a payload (32 bytes)."""
    return chunks_tree(payload).root_bytes


class ChunkProof:
    """What `resolveAvailability` takes for chunk `index`: the chunk's bytes and its proof (both empty past the
    payload's end)."""

    __slots__ = ("chunk", "index", "proof")

    def __init__(self, index: int, chunk: bytes, proof: list[bytes]) -> None:
        self.index = index
        self.chunk = chunk
        self.proof = proof


def chunk_proof(payload: bytes, index: int, tree: StandardMerkleTree | None = None) -> ChunkProof:
    """Chunk `index` of `payload` with its proof under `chunks_root(payload)` (`tree`: the chunk tree if built)."""
    chunk = chunk_of(payload, index)
    if not chunk:
        return ChunkProof(index, b"", [])
    tree = tree if tree is not None else chunks_tree(payload)
    return ChunkProof(index, chunk, tree.get_proof_bytes(index))
