"""LLB2 payloads: round trip, exact layout, strict decoder errors, record_at, size per record."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.records import Record
from attribution.records.payload import (
    HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    RECORD_SLOT_BYTES,
    PayloadError,
    PayloadMagicError,
    PayloadPaddingError,
    PayloadProfileError,
    PayloadProfileIndexError,
    PayloadTooLargeError,
    PayloadTrailingBytesError,
    PayloadTruncatedError,
    decode_batch,
    encode_batch,
    max_records_for,
    profile_bytes,
    record_at,
)
from attribution.records.tree import record_tree
from tests.unit.attribution.factories import CHAIN_ID, LEDGER, NODE, random_records, record_batches


def _encode(records: list[Record]) -> bytes:
    r = records[0]
    return encode_batch(r.chain_id, r.ledger, r.node, r.seq, records)


@settings(max_examples=80, deadline=None)
@given(record_batches(max_records=12), st.data())
def test_round_trip(records: list[Record], data: st.DataObject) -> None:
    payload = _encode(records)
    assert (len(payload) - HEADER_BYTES) % 31 == 0
    decoded = decode_batch(payload)
    assert decoded.records == records
    assert decoded.leaves() == [r.leaf() for r in records]
    i = data.draw(st.integers(0, len(records) - 1))
    assert record_at(payload, i) == records[i]


def test_layout_is_designs() -> None:
    recs = random_records(3, seed=5, first_seq=41, n_profiles=1)
    p = recs[0].profile
    payload = encode_batch(CHAIN_ID, LEDGER, NODE, 41, recs)
    assert payload[:4] == b"LLB2"
    assert struct.unpack(">Q20s20sQII", payload[4:68]) == (CHAIN_ID, LEDGER, NODE, 41, 3, 1)
    assert payload[68:93] == b"\x00" * 25
    n = len(p.dataset_ids)
    assert payload[93:157] == p.model_id + p.adapter_id and payload[157] == n
    slots = HEADER_BYTES + profile_bytes(p)
    assert len(payload) == slots + 3 * RECORD_SLOT_BYTES
    slot = payload[slots + RECORD_SLOT_BYTES: slots + 2 * RECORD_SLOT_BYTES]
    r = recs[1]
    assert slot == struct.pack(">IIIQ32s", 0, r.prompt_tokens, r.completion_tokens, r.timestamp, r.io_hash) + bytes(10)


def test_bytes_per_record_at_10k_over_8_adapters() -> None:
    recs = random_records(10_000, seed=6, n_profiles=8)
    payload = _encode(recs)
    assert len(payload) / len(recs) <= 64
    decoded = decode_batch(payload)
    assert decoded.leaves() == [r.leaf() for r in recs]
    assert record_tree(decoded.records).root == record_tree(recs).root


GOOD = _encode(random_records(4, seed=8, n_profiles=2))
N_PROFILES = struct.unpack(">I", GOOD[64:68])[0]
SLOTS = len(GOOD) - 4 * RECORD_SLOT_BYTES


def _patch(payload: bytes, offset: int, data: bytes) -> bytes:
    return payload[:offset] + data + payload[offset + len(data):]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"LLB1" + GOOD[4:], PayloadMagicError),
        (b"", PayloadTruncatedError),
        (GOOD[:50], PayloadTruncatedError),
        (GOOD[:HEADER_BYTES + 10], PayloadTruncatedError),
        (GOOD[:-1], PayloadTruncatedError),
        (GOOD + b"\x00" * 31, PayloadTrailingBytesError),
        (_patch(GOOD, 80, b"\x01"), PayloadPaddingError),  # header padding
        (_patch(GOOD, len(GOOD) - 1, b"\x01"), PayloadPaddingError),  # record slot padding
        (_patch(GOOD, SLOTS, struct.pack(">I", N_PROFILES)), PayloadProfileIndexError),
        (_patch(GOOD, 60, struct.pack(">I", 0)), PayloadError),  # count 0
        (b"LLB2" + bytes(MAX_PAYLOAD_BYTES), PayloadTooLargeError),
    ],
)
def test_strict_decoder(payload: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_batch(payload)
    if error is not PayloadError:  # record_at checks what it reads: header, profiles, its own slot
        with pytest.raises(error):
            record_at(payload, 0 if error is PayloadProfileIndexError else 3)


def test_profile_padding_and_weights_are_checked() -> None:
    base = random_records(1, seed=9)[0]
    one = Record(CHAIN_ID, LEDGER, NODE, 0, base.model_id, b"\x07" * 32, (b"\x08" * 32,), (10_000,), 1, 2, 3,
                 base.io_hash)
    payload = _encode([one])
    body_end = HEADER_BYTES + 65 + 34  # 192 bytes, padded to 217
    with pytest.raises(PayloadPaddingError):
        decode_batch(_patch(payload, body_end, b"\x01"))
    with pytest.raises(PayloadProfileError):  # weight 1 instead of 10000: the sum rule breaks
        decode_batch(_patch(payload, HEADER_BYTES + 65 + 32, b"\x00\x01"))
    with pytest.raises(PayloadProfileError):
        record_at(_patch(payload, HEADER_BYTES + 65 + 32, b"\x00\x01"), 0)


def test_encode_rejects_foreign_or_gapped_records() -> None:
    recs = random_records(3, seed=11)
    with pytest.raises(PayloadError, match="gap-free"):
        encode_batch(CHAIN_ID, LEDGER, NODE, 0, [recs[0], recs[2]])
    with pytest.raises(PayloadError, match="another chain"):
        encode_batch(CHAIN_ID + 1, LEDGER, NODE, 0, recs)
    with pytest.raises(PayloadError, match="at least one"):
        encode_batch(CHAIN_ID, LEDGER, NODE, 0, [])
    with pytest.raises(IndexError):
        record_at(_encode(recs), 3)


def test_max_records_for() -> None:
    n = max_records_for(31 * 8)
    assert HEADER_BYTES + 31 * 8 + n * RECORD_SLOT_BYTES <= MAX_PAYLOAD_BYTES
    assert HEADER_BYTES + 31 * 8 + (n + 1) * RECORD_SLOT_BYTES > MAX_PAYLOAD_BYTES
