"""Secrets stay out of argv: `node hash-key` reads the key from a pipe, a file or a prompt (a key in argv still
works, with a warning), and an `--rpc-url` carrying a key warns to use the environment instead; public URLs pass
silently."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys

import pytest

KEY = "sk-live-0123456789"
WANT = hashlib.sha256(KEY.encode()).hexdigest()
SECRET_URL = "https://user:PWPWPWPW@127.0.0.1:1/v2/KEYKEYKEYKEY?apikey=QQQQQQQQQQ"


def _cli(*args: str, stdin: str = "", cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def test_hash_key_from_a_pipe_and_a_file(tmp_path: pathlib.Path) -> None:
    piped = _cli("node", "hash-key", stdin=KEY + "\n")
    assert piped.returncode == 0 and piped.stdout.strip() == WANT and "warning" not in piped.stderr
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    from_file = _cli("node", "hash-key", "--key-file", str(key_file))
    assert from_file.returncode == 0 and from_file.stdout.strip() == WANT


def test_hash_key_in_argv_still_works_but_warns() -> None:
    r = _cli("node", "hash-key", KEY)
    assert r.returncode == 0 and r.stdout.strip() == WANT
    assert "visible to every local user" in r.stderr


def test_empty_key_is_a_usage_error() -> None:
    assert _cli("node", "hash-key", stdin="\n").returncode == 2


@pytest.mark.parametrize("url, warns", [(SECRET_URL, True), ("http://127.0.0.1:1", False)])
def test_rpc_url_with_a_key_warns(tmp_path: pathlib.Path, url: str, warns: bool) -> None:
    r = _cli("indexer", "sync", "--rpc-url", url, "--db", str(tmp_path / "i.db"), cwd=tmp_path)
    assert r.returncode != 0  # nothing listens there
    assert ("carries a key or password" in r.stderr) is warns
    for secret in ("PWPWPWPW", "KEYKEYKEYKEY", "QQQQQQQQQQ"):
        assert secret not in r.stdout + r.stderr
