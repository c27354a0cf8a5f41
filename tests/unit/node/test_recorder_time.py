"""Record timestamps never go back in seq order, even when the wall clock does (an NTP step): the ledger requires
each batch's record time range to start where the node's previous batch ended (contracts v3, N6)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from eth_account import Account

from attribution.records.receipt import ReceiptSigner
from attribution.store import RecordStore
from node.recorder import Recorder


def test_timestamps_never_go_back_when_the_clock_steps_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    acct = Account.create()
    node = bytes.fromhex(acct.address[2:])
    ledger = b"\x01" * 20
    clock = iter([1_800_000_100.0, 1_800_000_050.0, 1_800_000_101.0])  # the second reading steps back 50 s
    monkeypatch.setattr("node.recorder.time.time", lambda: next(clock))  # a fault the real clock cannot make on cue
    with RecordStore(tmp_path / "records.db", node) as store:
        rec = Recorder(store, ReceiptSigner(acct, 31337, ledger), 31337, ledger)

        async def answer() -> int:
            out = await rec.record(model_id=b"\x07" * 32, entry=None, prompt_tokens=3, completion_tokens=4,
                                   prompt_bytes=b"p", completion_text="c", base_url="http://x")
            return int(out["record"]["timestamp"])

        async def three() -> list[int]:
            return [await answer() for _ in range(3)]

        times = asyncio.run(three())
    assert times == [1_800_000_100, 1_800_000_100, 1_800_000_101]
