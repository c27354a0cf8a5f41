"""The dispute chunks of a payload and their tree (certificate v3's chunksRoot), against a reference built here
from the rule in docs/disputes.md: leaf = keccak256(keccak256(abi.encode(uint256 i, bytes32 keccak256(chunk i)))),
sorted-pair inner nodes."""

from __future__ import annotations

import os
import random

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.da.chunks import CHUNK_BYTES, chunk_count, chunk_of, chunk_proof, chunks_root, chunks_tree
from attribution.hashing import keccak256


def _leaf(i: int, chunk: bytes) -> bytes:
    return keccak256(keccak256(abi_encode(["uint256", "bytes32"], [i, keccak256(chunk)])))


def _walk(leaf: bytes, proof: list[bytes]) -> bytes:
    node = leaf
    for sibling in proof:
        node = keccak256(min(node, sibling) + max(node, sibling))
    return node


def test_chunk_size_is_the_contracts_and_chunks_cut_the_payload_bytes() -> None:
    assert CHUNK_BYTES == 126_976 == 31 * 4096
    assert [chunk_count(n) for n in (0, 1, CHUNK_BYTES, CHUNK_BYTES + 1, 16 * 1024 * 1024)] == [0, 1, 1, 2, 133]
    payload = os.urandom(2 * CHUNK_BYTES + 5)
    assert chunk_of(payload, 0) + chunk_of(payload, 1) + chunk_of(payload, 2) == payload
    assert len(chunk_of(payload, 2)) == 5 and chunk_of(payload, 3) == b""
    with pytest.raises(ValueError, match="empty payload"):
        chunks_tree(b"")


def test_one_chunk_root_is_its_leaf() -> None:
    payload = b"\x07" * 100
    assert chunks_root(payload) == _leaf(0, payload)
    p = chunk_proof(payload, 0)
    assert (p.chunk, p.proof) == (payload, [])
    past = chunk_proof(payload, 1)  # an index past the payload is answered with nothing
    assert (past.chunk, past.proof) == (b"", [])


@settings(max_examples=25, deadline=None)
@given(extra=st.integers(min_value=1, max_value=CHUNK_BYTES), full=st.integers(min_value=0, max_value=4),
       seed=st.binary(min_size=1, max_size=4))
def test_every_chunk_proof_walks_to_the_root(extra: int, full: int, seed: bytes) -> None:
    payload = random.Random(seed).randbytes(full * CHUNK_BYTES + extra)
    root = chunks_root(payload)
    tree = chunks_tree(payload)
    n = chunk_count(len(payload))
    for i in range(n):
        p = chunk_proof(payload, i, tree)
        assert p.chunk == payload[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES]
        assert _walk(_leaf(i, p.chunk), p.proof) == root
        # the chunk at another index, or one flipped byte, does not walk to the root
        assert _walk(_leaf(i + 1, p.chunk), p.proof) != root
        flipped = bytes([p.chunk[0] ^ 1]) + p.chunk[1:]
        assert _walk(_leaf(i, flipped), p.proof) != root
