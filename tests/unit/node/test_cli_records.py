"""`loraledger records show|export` against a real store file; exit code 2 through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from attribution.store import RecordStore
from node.commands.records import app
from node.errors import UsageError
from tests.unit.attribution.factories import NODE, pending


def test_show_and_export(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    runner = CliRunner()
    with RecordStore(db, NODE) as s:
        s.append_many([pending(prompt_tokens=i) for i in range(4)])
        s.create_batch(0, 2, root=b"\x05" * 32)
        expected = [s.get(i) for i in range(4)]
        out = runner.invoke(app, ["show", "1", "--db", str(db)])
        assert out.exit_code == 0, out.output
        shown = json.loads(out.stdout)
        assert shown["record"] == expected[1].to_json()
        assert shown["leaf"] == "0x" + expected[1].leaf().hex()
        assert shown["status"] == "sealed" and shown["batch"]["root"] == "0x" + "05" * 32
        assert json.loads(runner.invoke(app, ["show", "3", "--db", str(db)]).stdout)["status"] == "stored"
        out = runner.invoke(app, ["export", "--from", "1", "--to", "3", "--db", str(db)])
        assert out.exit_code == 0, out.output
        assert [json.loads(line) for line in out.stdout.splitlines()] == [r.to_json() for r in expected[1:3]]
        everything = runner.invoke(app, ["export", "--db", str(db)], env={"LORALEDGER_STORE__PATH": "/nonexistent"})
        assert len(everything.stdout.splitlines()) == 4
        via_env = runner.invoke(app, ["export"], env={"LORALEDGER_STORE__PATH": str(db)})
        assert len(via_env.stdout.splitlines()) == 4
        bad_range = runner.invoke(app, ["export", "--from", "3", "--to", "1", "--db", str(db)])
        assert isinstance(bad_range.exception, UsageError)


def test_unknown_seq_and_missing_store_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    with RecordStore(db, NODE) as s:
        s.append(pending())
    code = ("import sys; from node.cli import main; sys.argv = ['loraledger', *sys.argv[1:]]; main()")
    missing = subprocess.run([sys.executable, "-c", code, "records", "show", "9", "--db", str(db)],
                             capture_output=True, text=True, timeout=120, check=False)
    assert missing.returncode == 2 and "no record with seq 9" in missing.stderr
    nodb = CliRunner().invoke(app, ["show", "0", "--db", str(tmp_path / "none.db")])
    assert isinstance(nodb.exception, UsageError) and "cannot open record store" in str(nodb.exception)
