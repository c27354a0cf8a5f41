"""The watcher's evidence check and state file without a chain: what a receipt must be to be held, and the state's
promises (a fault is claimed once, across a reopen; equivocations are found; a reorg forgets what it removed; a
file of another deployment is refused)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from attribution.records import Record
from attribution.records.receipt import sign_receipt
from attribution.watch import HeldReceipt, ReceiptRejected, WatchState, WatchStateError, parse_evidence

CHAIN = 31337
LEDGER = "0x" + "ab" * 20
NODE = Account.create()


def _record(seq: int = 7, **changes: Any) -> Record:
    rec = Record(CHAIN, bytes.fromhex(LEDGER[2:]), bytes.fromhex(NODE.address[2:]), seq, b"\x01" * 32, b"\x00" * 32,
                 (), (), 3, 4, 1_700_000_000, os.urandom(32))
    return dataclasses.replace(rec, **changes) if changes else rec


def _evidence(rec: Record, key: bytes | None = None) -> dict[str, object]:
    return {"record": rec.to_json(), "receipt": "0x" + sign_receipt(rec, key or NODE.key).hex()}


def test_bare_evidence_is_held_with_its_node_seq_and_leaf() -> None:
    rec = _record()
    held = parse_evidence(json.dumps(_evidence(rec)), CHAIN, LEDGER)
    assert (held.node, held.seq, held.leaf, held.record) == (NODE.address, 7, rec.leaf(), rec)


@pytest.mark.parametrize(("make", "problem"), [
    (lambda: _evidence(_record(), Account.create().key), "wrong_signer"),
    (lambda: {**_evidence(_record()), "receipt": "0x1234"}, "bad_receipt"),
    (lambda: {"record": {"seq": 1}, "receipt": "0x00"}, "bad_record"),
    (lambda: _evidence(_record(chain_id=CHAIN + 1)), "foreign_record"),
    (lambda: _evidence(_record(ledger=b"\xcd" * 20)), "foreign_record"),
    (lambda: "[1, 2]", "bad_json"),
    (lambda: "{nope", "bad_json"),
    (lambda: {"response": {"choices": []}}, "bad_answer"),
    (lambda: "x" * (2 << 20), "too_large"),
])
def test_evidence_that_is_not_a_receipt_of_this_deployment_is_refused(make: object, problem: str) -> None:
    body = make()  # type: ignore[operator]
    with pytest.raises(ReceiptRejected) as info:
        parse_evidence(body if isinstance(body, str) else json.dumps(body), CHAIN, LEDGER)
    assert info.value.problem == problem and str(info.value)


def test_a_high_s_receipt_is_refused() -> None:
    rec = _record()
    sig = bytearray(sign_receipt(rec, NODE.key))
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    sig[32:64] = (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
    sig[64] ^= 1  # 27 <-> 28
    with pytest.raises(ReceiptRejected) as info:
        parse_evidence({"record": rec.to_json(), "receipt": "0x" + bytes(sig).hex()}, CHAIN, LEDGER)
    assert info.value.problem == "bad_receipt" and "high s" in str(info.value)


def _state(path: Path, ledger: str = LEDGER) -> WatchState:
    return WatchState(path, chain_id=CHAIN, ledger=ledger, disputes="0x" + "cd" * 20, deploy_block=10)


def _held(rec: Record) -> HeldReceipt:
    return HeldReceipt(NODE.address, rec.seq, rec.leaf(), sign_receipt(rec, NODE.key), rec)


def test_a_fault_is_claimed_once_even_after_a_reopen(tmp_path: Path) -> None:
    st = _state(tmp_path / "w.db")
    assert st.claim("omission:n:1", "omission", NODE.address, 0, 1) is True
    assert st.claim("omission:n:1", "equivocation", NODE.address, 0, 1) is False
    st.update_challenge("omission:n:1", "open", dispute_id=4, deadline=99)
    st.close()
    st = _state(tmp_path / "w.db")
    assert st.claim("omission:n:1", "omission", NODE.address, 0, 1) is False
    row = st.challenge("omission:n:1")
    assert row is not None and (row.status, row.dispute_id, row.deadline, row.kind) == ("open", 4, 99, "omission")
    with pytest.raises(WatchStateError, match="one --state file per deployment"):
        _state(tmp_path / "w.db", ledger="0x" + "ef" * 20)


def test_receipts_two_leaves_for_one_seq_are_an_equivocation(tmp_path: Path) -> None:
    st = _state(tmp_path / "w.db")
    a, b = _record(seq=3), _record(seq=3)
    assert st.add_receipt(_held(a), "t") == (True, [])
    assert st.add_receipt(_held(a), "t") == (False, [])  # the same receipt again
    assert st.add_receipt(_held(b), "t") == (True, [a.leaf()])
    st.add_receipt(_held(_record(seq=4)), "t")
    assert st.equivocations() == [(NODE.address, 3)]
    assert {h.leaf for h in st.receipts_for(NODE.address, 3)} == {a.leaf(), b.leaf()}
    st.set_receipt_state(_held(a), "challenged", "x")
    assert st.receipt_counts() == {"challenged": 1, "held": 2}


def test_rollback_forgets_batches_and_blocks_above_the_ancestor(tmp_path: Path) -> None:
    st = _state(tmp_path / "w.db")
    assert st.cursor() == 9
    row = {"node": NODE.address, "count": 2, "root": b"r", "commitment": b"c", "first_ts": 1, "last_ts": 2,
           "posted_at": 5, "block_hash": b"h", "tx_hash": "0x", "log_index": 0}
    st.save_page(20, {15: b"a", 20: b"b"}, [{**row, "batch_id": 1, "first_seq": 0, "block_number": 15}])
    st.save_page(30, {25: b"c", 30: b"d"}, [{**row, "batch_id": 2, "first_seq": 2, "block_number": 25}])
    assert st.cursor() == 30 and st.top_block() == (30, b"d")
    found = st.batch_covering(NODE.address, 3)
    assert found is not None and found.batch_id == 2
    assert st.batch_covering(NODE.address, 4) is None
    assert st.rollback(20) == 1
    assert st.cursor() == 20 and st.top_block() == (20, b"b") and st.batch_covering(NODE.address, 3) is None
    assert [b.batch_id for b in st.batches_to_check()] == [1]
    st.set_verdict(1, "payload_missing", "404", missing_since=100)
    st.set_verdict(1, "payload_missing", "404", missing_since=200)  # the first miss is kept
    assert st.batches_to_check()[0].missing_since == 100
    st.set_verdict(1, "ok", "fine")
    assert st.batches_to_check() == [] and st.verdict_counts() == {"ok": 1}
