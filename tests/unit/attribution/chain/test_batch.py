"""`PostedBatch`, the one type for an on-chain batch header: read from a `BatchPosted` log and from the ledger's
`batch(id)` view it is the same header; `check_payload` (verify, indexer) and `EpochBatch` (rewards) take it."""

from __future__ import annotations

import dataclasses

import pytest

from attribution.chain.batch import PostedBatch
from attribution.chain.commitments import NOT_IN_CALLDATA
from attribution.hashing import keccak256, to_checksum_address
from attribution.records.payload import encode_batch
from attribution.records.tree import record_tree
from attribution.rewards import EpochBatch, RewardsError
from attribution.verify import Verdict, VerifyError, check_payload, commitment_of, fetch_posted
from tests.unit.attribution.factories import CHAIN_ID, LEDGER, NODE, random_records

COMMITMENT = b"\x01\x00\xd0" + bytes(range(61))
ROOT = bytes(range(32))


def _log(**args: object) -> dict[str, object]:
    """A `BatchPosted` log as web3's `process_log` decodes it (lower-case node: the decoder's checksum is ours); it
    carries the commitment's hash, the bytes come from the posting transaction's calldata."""
    base: dict[str, object] = {"batchId": 7, "node": "0x" + NODE.hex(), "root": ROOT, "firstSeq": 40, "count": 3,
                               "firstTimestamp": 1_700_000_000, "lastTimestamp": 1_700_000_009,
                               "daCommitmentHash": keccak256(COMMITMENT)}
    return {"args": base | args, "blockNumber": 123, "blockHash": b"\xbb" * 32, "transactionHash": b"\xcc" * 32,
            "logIndex": 4}


def test_from_log_reads_the_header_and_where_it_was_posted() -> None:
    b = PostedBatch.from_log(_log(), COMMITMENT)
    assert (b.batch_id, b.root, b.first_seq, b.count, b.end_seq) == (7, ROOT, 40, 3, 43)
    assert b.node == to_checksum_address(NODE) and b.node != "0x" + NODE.hex()
    assert b.da_commitment == COMMITMENT and b.da_commitment_hash == keccak256(COMMITMENT)
    assert (b.first_timestamp, b.last_timestamp) == (1_700_000_000, 1_700_000_009)
    assert (b.block_number, b.block_hash, b.tx_hash, b.log_index) == (123, b"\xbb" * 32, "0x" + "cc" * 32, 4)
    assert b.posted_at is None  # a log does not carry its block's time


def test_the_stored_view_is_the_same_header() -> None:
    event = PostedBatch.from_log(_log(), COMMITMENT)
    stored = PostedBatch.from_stored(7, (ROOT, keccak256(COMMITMENT), to_checksum_address(NODE), 40, 3,
                                         1_700_000_010, 1_700_000_000, 1_700_000_009))
    assert stored.posted_at == 1_700_000_010 and stored.da_commitment is None and stored.block_number is None
    assert dataclasses.replace(event, da_commitment=None, block_number=None, block_hash=None, tx_hash=None,
                               log_index=None, posted_at=stored.posted_at) == stored


def _posted(records_seed: int = 3) -> tuple[PostedBatch, bytes]:
    records = random_records(5, seed=records_seed, first_seq=40)
    payload = encode_batch(CHAIN_ID, LEDGER, NODE, 40, records)
    times = [r.timestamp for r in records]
    event = PostedBatch.from_log(_log(root=record_tree(records).root_bytes, count=5, firstTimestamp=min(times),
                                      lastTimestamp=max(times)), COMMITMENT)
    return event, payload


def test_check_payload_compares_the_event_with_the_stored_header() -> None:
    event, payload = _posted()
    ledger = to_checksum_address(LEDGER)
    stored = dataclasses.replace(event, da_commitment=None, block_number=None, block_hash=None, tx_hash=None,
                                 log_index=None, posted_at=1)
    ok = check_payload(event, CHAIN_ID, ledger, payload, stored=stored)
    assert ok.verdict is Verdict.OK and ok.posted is event
    assert ok.to_json() == {"batchId": 7, "node": event.node, "firstSeq": 40, "count": 5, "verdict": "ok",
                            "detail": "5 records rebuild the posted root", "postedRoot": "0x" + event.root.hex(),
                            "rebuiltRoot": "0x" + event.root.hex(), "blockNumber": 123}
    other = dataclasses.replace(stored, da_commitment_hash=keccak256(b"another commitment"))
    assert check_payload(event, CHAIN_ID, ledger, payload, stored=other).verdict is Verdict.PAYLOAD_MISSING
    moved = dataclasses.replace(stored, first_seq=41)
    bad = check_payload(event, CHAIN_ID, ledger, payload, stored=moved)
    assert bad.verdict is Verdict.HEADER_MISMATCH and "firstSeq" in bad.detail
    flipped = dataclasses.replace(event, root=bytes([event.root[0] ^ 1]) + event.root[1:])
    assert check_payload(flipped, CHAIN_ID, ledger, payload).verdict is Verdict.ROOT_MISMATCH


def test_only_an_event_gives_the_commitment_to_fetch() -> None:
    event, _ = _posted()
    assert commitment_of(event) == COMMITMENT
    with pytest.raises(VerifyError, match="BatchPosted event"):
        commitment_of(dataclasses.replace(event, da_commitment=None))
    # a batch posted through a contract: no commitment in its transaction's calldata, nothing to fetch
    missing = PostedBatch.from_log(_log(), None, NOT_IN_CALLDATA)
    assert missing.da_commitment is None and missing.da_commitment_hash == keccak256(COMMITMENT)
    assert fetch_posted(None, missing) == (None, NOT_IN_CALLDATA)  # type: ignore[arg-type]


def test_the_rule_takes_a_posted_batch_with_its_time() -> None:
    event, _ = _posted()
    assert EpochBatch(dataclasses.replace(event, posted_at=5), "ok").posted.posted_at == 5
    with pytest.raises(RewardsError, match="postedAt"):
        EpochBatch(event, "ok")
