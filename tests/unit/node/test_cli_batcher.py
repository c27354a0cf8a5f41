"""`loraledger batcher status|run` against a real store file (no chain needed for these paths)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from attribution.store import RecordStore
from node.commands.batcher import app
from node.errors import UsageError
from tests.unit.attribution.factories import NODE, pending


def test_status_reports_backlog_states_and_pending(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    runner = CliRunner()
    with RecordStore(db, NODE) as s:
        s.append_many([pending() for _ in range(10)])
        b1 = s.create_batch(0, 4, root=b"\x05" * 32, payload=b"x")
        s.create_batch(4, 3, root=b"\x06" * 32, payload=b"y")
        s.set_batch_state(b1.batch_id, "final", info={"gas_used": 80_000, "gas_per_record": 20_000.0})
        out = runner.invoke(app, ["status", "--db", str(db), "--json"])
        assert out.exit_code == 0, out.output
        st = json.loads(out.stdout)
        assert (st["next_seq"], st["unbatched_records"], st["backlog_records"], st["last_final_seq"]) == (10, 3, 6, 3)
        assert st["batches"]["final"] == 1 and st["batches"]["sealed"] == 1
        assert [p["first_seq"] for p in st["pending"]] == [4]
        assert st["last_final"]["gas_used"] == 80_000
        text = runner.invoke(app, ["status", "--db", str(db)])
        assert text.exit_code == 0 and "3 not yet sealed" in text.stdout
        assert "batch 2: seqs [4, 7) sealed" in text.stdout


def test_status_and_run_refuse_a_missing_store(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["status", "--db", str(tmp_path / "none.db")])
    assert isinstance(out.exception, UsageError) and "no record store" in str(out.exception)
    out = runner.invoke(app, ["run", "--rpc-url", "http://127.0.0.1:9", "--db", str(tmp_path / "none.db")])
    assert isinstance(out.exception, UsageError) and "unreachable" in str(out.exception)
