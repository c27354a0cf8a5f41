"""Record v1: validation, the hand-rolled ABI encoding against eth_abi, leaves, io_hash, JSON."""

from __future__ import annotations

import dataclasses

import eth_abi
import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.hashing import to_checksum_address
from attribution.records import (
    RECORD_TYPES,
    PendingRecord,
    Profile,
    Record,
    RecordValidationError,
    io_hash,
    record_leaves,
)
from tests.unit.attribution.factories import LEDGER, NODE, random_records, record_batches

BASE = random_records(1, seed=1)[0]


def _with(**changes: object) -> Record:
    fields = {f.name: getattr(BASE, f.name) for f in dataclasses.fields(BASE)}
    fields.update(changes)
    return Record(**fields)  # type: ignore[arg-type]


def test_abi_encode_matches_eth_abi_and_leaf_is_double_keccak() -> None:
    for r in random_records(30, seed=2):
        encoded = eth_abi.encode(RECORD_TYPES, r.abi_values())
        assert r.abi_encode() == encoded
        assert r.leaf() == keccak(keccak(encoded))


@settings(max_examples=60, deadline=None)
@given(record_batches(max_records=6))
def test_bulk_leaves_equal_single_leaves(records: list[Record]) -> None:
    assert record_leaves(records) == [r.leaf() for r in records]
    assert records[0].abi_encode() == eth_abi.encode(RECORD_TYPES, records[0].abi_values())


def test_bulk_leaves_mixed_domains() -> None:
    rs = random_records(5, seed=3) + random_records(5, seed=4, node=LEDGER, ledger=NODE, chain_id=10)
    assert record_leaves(rs) == [r.leaf() for r in rs]
    assert record_leaves([]) == []


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"dataset_ids": (b"\x01" * 32, b"\x02" * 32), "weights_bps": (5000, 4000)}, "sum to 10000"),
        ({"dataset_ids": (), "weights_bps": (10000,)}, "equal length"),
        ({"dataset_ids": (b"\x01" * 32,), "weights_bps": (10001,)}, "weightsBps[0]"),
        ({"dataset_ids": (b"\x01" * 32,) * 256, "weights_bps": (0,) * 255 + (10000,)}, "at most 255"),
        ({"prompt_tokens": 2**32}, "promptTokens"),
        ({"completion_tokens": -1}, "completionTokens"),
        ({"seq": 2**64}, "seq"),
        ({"timestamp": 2**64}, "timestamp"),
        ({"chain_id": 2**64}, "chainId"),
        ({"ledger": b"\x01" * 19}, "ledger must be 20 bytes"),
        ({"node": "0xzz"}, "node must be 0x-hex"),
        ({"model_id": b"\x01" * 31}, "modelId"),
        ({"io_hash": 5}, "ioHash"),
        ({"prompt_tokens": True}, "promptTokens must be an int"),
    ],
)
def test_validation_names_the_field(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(RecordValidationError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        _with(**changes)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=6))
def test_weights_rule(weights: list[int]) -> None:
    ids = tuple(bytes([i]) * 32 for i in range(len(weights)))
    if sum(weights) == 10_000:
        assert Profile(b"\x01" * 32, b"\x02" * 32, ids, tuple(weights)).weights_bps == tuple(weights)
    else:
        with pytest.raises(RecordValidationError, match="sum to 10000"):
            Profile(b"\x01" * 32, b"\x02" * 32, ids, tuple(weights))


def test_hex_inputs_are_normalised_and_json_round_trips() -> None:
    r = _with(ledger="0x" + LEDGER.hex(), model_id="0x" + BASE.model_id.hex(), dataset_ids=list(BASE.dataset_ids))
    assert r == BASE
    assert Record.from_json(BASE.to_json()) == BASE
    assert Record.from_abi_values(BASE.abi_values()) == BASE
    assert Record.from_abi_values(BASE.oz_values()) == BASE
    with pytest.raises(RecordValidationError, match="lacks field 'ioHash'"):
        Record.from_json({k: v for k, v in BASE.to_json().items() if k != "ioHash"})


def test_pending_with_seq() -> None:
    fields = {f.name: getattr(BASE, f.name) for f in dataclasses.fields(BASE) if f.name != "seq"}
    p = PendingRecord(**fields)  # type: ignore[arg-type]
    r = p.with_seq(BASE.seq)
    assert r == BASE and hash(r) == hash(BASE) and r.leaf() == BASE.leaf() and r.to_json() == BASE.to_json()
    assert p.profile == BASE.profile
    assert p.with_seq(2**64 - 1).seq == 2**64 - 1
    for bad in (-1, 2**64, "7"):  # only seq is new: it is checked like Record's
        with pytest.raises(RecordValidationError, match="seq"):
            p.with_seq(bad)  # type: ignore[arg-type]


def test_io_hash() -> None:
    salt = bytes(range(32))
    assert io_hash(salt, "héllo", b"world") == keccak(salt + "héllo".encode() + b"world")
    with pytest.raises(RecordValidationError, match="salt must be 32 bytes"):
        io_hash(b"short", "a", "b")


def test_checksum_address() -> None:
    assert to_checksum_address(NODE) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
