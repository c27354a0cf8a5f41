"""Certificate v3 end to end: a payload put to the real DA server over HTTP, its commitment posted on a real anvil,
an availability challenge on one of its chunks, and the chunk with the proof built in Python
(`attribution.da.chunks`) accepted by `BatchDisputes.resolveAvailability`, for a one-chunk payload and a
three-chunk one (the last chunk short); a chunk with one flipped byte is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from attribution.chain.disputes import BatchDisputes, DisputeStatus
from attribution.chain.reverts import error_class
from attribution.da.chunks import CHUNK_BYTES, chunk_count, chunk_proof
from attribution.da.client import DAClient
from attribution.da.codec import parse_commitment
from tests.fixtures.chain import AnvilNode, DeployedContracts
from tests.fixtures.da import DAServerFactory, DAServerProcess


@pytest.fixture(scope="module")
def da(da_server_factory: DAServerFactory) -> DAServerProcess:
    return da_server_factory.start(kzg=False)  # chunksRoot does not need KZG; it keeps the shared CPUs free


@pytest.fixture(scope="module")
def da_client(da: DAServerProcess) -> Iterator[DAClient]:
    with DAClient(da.url, timeout=60, max_retries=2, backoff=0.05, expected_operator=da.operator_address) as c:
        yield c


def _disputes(d: DeployedContracts) -> BatchDisputes:
    disputes = d.deployment.bind(d.client).disputes
    assert disputes is not None
    return disputes


def _post(d: DeployedContracts, anvil: AnvilNode, commitment: bytes) -> int:
    first = d.ledger.next_seq(d.node.address)
    now = int(anvil.w3.eth.get_block("latest")["timestamp"])
    posted = d.ledger.post_batch(first, 1, os.urandom(32), commitment, first_timestamp=now, last_timestamp=now)
    return posted.batch_id


@pytest.mark.parametrize("size", [1_000, 2 * CHUNK_BYTES + 777], ids=["one-chunk", "three-chunks-last-short"])
def test_python_chunk_proofs_resolve_on_chain(size: int, deployment: DeployedContracts, chain_snapshot: AnvilNode,
                                              da_client: DAClient) -> None:
    d = deployment
    disputes = _disputes(d)
    payload = os.urandom(size)
    commitment = da_client.put(payload)
    cert = parse_commitment(commitment)
    assert (cert.version, len(commitment), cert.payload_length) == (3, 419, size)
    assert da_client.get(commitment) == payload  # the client checks chunksRoot against what it reads
    batch_id = _post(d, chain_snapshot, commitment)
    griefer = d.accounts[6]
    n = chunk_count(size)
    for index in [*range(n), n]:  # every chunk, the short last one included, and one past the end
        opened = disputes.open_availability(batch_id, index, account=griefer)
        proof = chunk_proof(payload, index)
        if index < n - 1:
            assert len(proof.chunk) == CHUNK_BYTES
        elif index == n - 1:
            assert len(proof.chunk) == size - (n - 1) * CHUNK_BYTES
        else:
            assert proof.chunk == b""
        if proof.chunk:
            flipped = bytes([proof.chunk[0] ^ 1]) + proof.chunk[1:]
            with pytest.raises(error_class("DisputesBadChunkProof")):
                disputes.resolve_availability(opened.dispute_id, commitment, flipped, proof.proof)
        disputes.resolve_availability(opened.dispute_id, commitment, proof.chunk, proof.proof)
        assert disputes.dispute(opened.dispute_id).status is DisputeStatus.ANSWERED
    assert disputes.owed(d.node.address) == (n + 1) * disputes.availability_bond()
    assert not disputes.is_unavailable(batch_id) and disputes.open_availability_challenges(batch_id) == 0
