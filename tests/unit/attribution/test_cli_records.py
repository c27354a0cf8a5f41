"""`loraledger records show|export` against a real store file, through the real entry point (exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from attribution.store import RecordStore
from tests.unit.attribution.factories import NODE, pending


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_show_and_export(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    with RecordStore(db, NODE) as s:
        s.append_many([pending(prompt_tokens=i) for i in range(4)])
        s.create_batch(0, 2, root=b"\x05" * 32)
        expected = [s.get(i) for i in range(4)]
        out = _cli("records", "show", "1", "--db", str(db))
        assert out.returncode == 0, out.stderr
        shown = json.loads(out.stdout)
        assert shown["record"] == expected[1].to_json()
        assert shown["leaf"] == "0x" + expected[1].leaf().hex()
        assert shown["status"] == "sealed" and shown["batch"]["root"] == "0x" + "05" * 32
        out = _cli("records", "export", "--from", "1", "--to", "3", "--db", str(db))
        assert out.returncode == 0, out.stderr
        assert [json.loads(line) for line in out.stdout.splitlines()] == [r.to_json() for r in expected[1:3]]
        missing = _cli("records", "show", "9", "--db", str(db))
        assert missing.returncode == 2 and "no record with seq 9" in missing.stderr
    nodb = _cli("records", "show", "0", "--db", str(tmp_path / "none.db"))
    assert nodb.returncode == 2 and "cannot open record store" in nodb.stderr
