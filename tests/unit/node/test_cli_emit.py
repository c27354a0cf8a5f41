"""`emit`, the one printer of the assets, fees and rewards commands: `--json` is the data as is, the table shows
every field with lists and dicts as JSON and folds a long value instead of cutting it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from node.commands._chain import emit

DATA: dict[str, Any] = {"adapterId": "0x" + "ab" * 32, "datasetIds": ["0x" + "01" * 32, "0x" + "02" * 32],
        "pending": {"effectiveAt": 1700000000}, "active": True, "uri": "ipfs://" + "x" * 300}


def test_json_is_the_data(capsys: pytest.CaptureFixture[str]) -> None:
    emit(DATA, True, "ignored title")
    out = capsys.readouterr().out
    assert json.loads(out) == DATA
    assert "ignored title" not in out


def test_table_shows_each_field_lists_and_dicts_as_json_long_values_whole(capsys: pytest.CaptureFixture[str]) -> None:
    emit(DATA, False, "adapter registered")
    out = capsys.readouterr().out
    assert "adapter registered" in out
    assert DATA["adapterId"] in out
    assert json.dumps(DATA["datasetIds"][:1])[1:-1] in out  # '"0x0101…"' as JSON, not Python's repr
    assert "'0x" not in out
    assert '{"effectiveAt": 1700000000}' in out
    assert "True" in out
    # folded over lines, never cut with an ellipsis: every character of the 300-long uri is printed
    assert "…" not in out
    assert DATA["uri"] in "".join(out.split()).replace("│", "")
