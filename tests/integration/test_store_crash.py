"""Crash safety of the record store: SIGKILL a process appending under load, many times, at random moments.

The child appends from several threads and reports `seq tag` on stdout (flushed) only after `append` returned.
After each kill the parent reopens the store and checks: every reported seq is present with the record that was
appended for it, seqs are gap-free from 0, and SQLite's integrity check passes.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from attribution.store import RecordStore

KILLS = 24

CHILD = r"""
import os, sys, threading
from attribution.records import PendingRecord
from attribution.store import RecordStore

path, node, run = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
store = RecordStore(path, node)

def worker(t):
    i = 0
    while True:
        tag = run * 1_000_000 + t * 100_000 + i  # fits uint32; identifies the appended record
        rec = PendingRecord(31337, b"\x11" * 20, node, b"\x22" * 32, b"\x00" * 32, (), (), tag, 1, 1, os.urandom(32))
        seq = store.append(rec) if i % 5 else store.append_many([rec])[0]
        os.write(1, f"{seq} {tag}\n".encode())  # reported only after append returned, i.e. after commit
        i += 1

for t in range(8):
    threading.Thread(target=worker, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_sigkill_loses_no_returned_seq(tmp_path: Path) -> None:
    path = tmp_path / "records.db"
    node = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")
    rng = random.Random(1234)
    reported: dict[int, int] = {}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for run in range(1, KILLS + 1):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), node.hex(), str(run)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        lines: list[bytes] = []
        assert child.stdout is not None
        first = child.stdout.readline()  # the child is appending
        assert first, child.stderr.read().decode() if child.stderr else "child died"
        lines.append(first)
        drain = threading.Thread(target=lines.extend, args=(child.stdout,))
        drain.start()
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        drain.join(timeout=30)
        if child.stderr is not None:
            child.stderr.close()
        for line in lines:
            seq, tag = map(int, line.split())
            assert seq not in reported, f"seq {seq} returned twice"
            reported[seq] = tag

        with RecordStore(path, node) as store:  # opens cleanly (replays the WAL) and takes the write lock
            n = store.next_seq()
            assert all(seq < n for seq in reported), "a returned seq is missing"
            for seq in rng.sample(sorted(reported), k=min(50, len(reported))):
                assert store.get(seq).prompt_tokens == reported[seq]
        conn = sqlite3.connect(path)
        try:
            count, lo, hi = conn.execute("SELECT COUNT(*), MIN(seq), MAX(seq) FROM records").fetchone()
            assert (lo, hi, count) == (0, n - 1, n), "seqs are not gap-free"
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    assert len(reported) > KILLS  # the children did real work between kills
    with RecordStore(path, node) as store:  # and every reported record is there at the end, field by field
        tags = {r.seq: r.prompt_tokens for r in store.iter_range(0, store.next_seq())}
    assert all(tags[seq] == tag for seq, tag in reported.items())
