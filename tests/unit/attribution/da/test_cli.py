"""`loraledger da` input validation: bad input is a UsageError (exit code 2 through `main()`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.commands.da import app
from node.errors import UsageError


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--data-dir", "{tmp}", "--port", "0"], "--port"),
        (["serve", "--data-dir", "{tmp}", "--kzg-workers", "0"], "--kzg-workers"),
        (["serve", "--data-dir", "{tmp}", "--operator-keystore", "{tmp}/missing.json"], "--operator-keystore"),
        (["put", "{tmp}/missing.bin"], "cannot read"),
        (["get", "0xnothex"], "not hex"),
        (["get", "0x"], "empty"),
        (["get", "0x0100d0", "--retries", "-1"], "--retries"),
        (["put", "{tmp}/missing.bin", "--timeout", "0"], "--timeout"),
    ],
)
def test_bad_input_is_a_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert isinstance(result.exception, UsageError)
    assert message in str(result.exception)


def test_put_to_a_dead_server_exits_1(tmp_path: Path) -> None:
    payload = tmp_path / "p.bin"
    payload.write_bytes(b"x")
    from attribution.devnet.processes import free_port

    result = CliRunner().invoke(app, ["put", str(payload), "--url", f"http://127.0.0.1:{free_port()}",
                                      "--timeout", "2", "--retries", "1"])
    assert result.exit_code == 1
    assert "DA layer is down" in result.output
