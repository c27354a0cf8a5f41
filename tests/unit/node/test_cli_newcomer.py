"""The CLI as a newcomer met it: each user error is one `error:` line with exit code 2, never a traceback."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from node.cli import app
from node.errors import UsageError

runner = CliRunner()
COMMITMENT = "0x0100d0" + "00" * 40


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    for key in list(os.environ):
        if key.startswith("LORALEDGER_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def usage_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert isinstance(result.exception, UsageError), (result.exception, result.output)
    return str(result.exception)


def test_da_get_output_in_missing_dir() -> None:
    assert "does not exist" in usage_error(["da", "get", COMMITMENT, "-o", "/nonexistent/dir/out",
                                            "--url", "http://127.0.0.1:9"])


def test_da_get_non_commitment_hex_is_a_usage_error() -> None:
    assert "not an Alt-DA commitment" in usage_error(["da", "get", "deadbeef"])


def test_da_url_not_a_url() -> None:
    assert "not an http(s) URL" in usage_error(["da", "get", COMMITMENT, "--url", "notaurl"])
    assert "not an http(s) URL" in usage_error(["da", "put", "-", "--url", "notaurl"])


def test_da_operator_not_hex() -> None:
    assert "not an address" in usage_error(["da", "get", COMMITMENT, "--operator", "nothex"])


def test_records_show_db_is_a_directory(tmp_path: pathlib.Path) -> None:
    assert "is a directory" in usage_error(["records", "show", "0", "--db", str(tmp_path)])


def test_records_show_db_not_sqlite(tmp_path: pathlib.Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    assert "cannot open record store" in usage_error(["records", "show", "0", "--db", str(junk)])


@pytest.mark.parametrize("cmd", [["demo", "init"], ["demo", "synth", "--n", "1"]])
def test_demo_dir_is_a_file(tmp_path: pathlib.Path, cmd: list[str]) -> None:
    f = tmp_path / "README.md"
    f.write_text("hi")
    assert "is not a directory" in usage_error([*cmd, "--dir", str(f)])


def test_bad_setting_in_toml(tmp_path: pathlib.Path) -> None:
    (tmp_path / "loraledger.toml").write_text("[chain]\nrpc_url = 5\n")
    assert "chain.rpc_url" in usage_error(["records", "show", "0"])


def test_main_prints_one_error_line_and_exits_2(tmp_path: pathlib.Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "from node.cli import main; main()", "records", "show", "0", "--db",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr


_PROBE = ("import sys\nfrom node.cli import main\nsys.argv = ['loraledger', *sys.argv[1:]]\ntry:\n    main()\n"
          "except SystemExit:\n    pass\nprint('HEAVY', sorted(m for m in ('torch', 'web3', 'eth_account', 'ckzg') "
          "if m in sys.modules))")


@pytest.mark.parametrize("args", [["--help"], ["demo", "init", "--adapters", "99"], ["demo", "synth", "--n", "-1",
                                                                                    "--dir", "x"],
                                  ["da", "get", "0xzz"], ["devnet", "--help"]])
def test_help_and_argument_errors_import_no_heavy_library(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120)
    heavy = [ln for ln in proc.stdout.splitlines() if ln.startswith("HEAVY")]
    assert heavy == ["HEAVY []"], proc.stdout + proc.stderr


def test_lazy_constants_match_the_libraries() -> None:
    from attribution.chain.keys import ENV_KEYSTORE_PASSWORD
    from attribution.da.client import DEFAULT_URL
    from attribution.da.server import DEFAULT_PORT
    from inference.demo import ADAPTER_MODULES, PRESETS
    from node.commands import contracts, da, demo

    assert (da.DEFAULT_URL, da.DEFAULT_PORT) == (DEFAULT_URL, DEFAULT_PORT)
    assert contracts.ENV_KEYSTORE_PASSWORD == ENV_KEYSTORE_PASSWORD
    assert (demo.N_ADAPTER_TEXTS, demo.PRESET_NAMES) == (len(ADAPTER_MODULES), tuple(PRESETS))


def test_json_log_lines() -> None:
    import json
    import logging

    from node.commands.node import _JsonFormatter

    record = logging.LogRecord("node.services", logging.INFO, __file__, 1, "served seq=%d", (7,), None)
    line = json.loads(_JsonFormatter().format(record))
    assert line["msg"] == "served seq=7" and line["level"] == "INFO" and line["logger"] == "node.services"
