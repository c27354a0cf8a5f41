"""Key files are created owner-only (0600) with O_EXCL: never with the mode of a file already there, never over
an existing key (before: `O_CREAT|O_TRUNC` kept an existing file's 0644)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from attribution.chain.errors import SignerError
from attribution.chain.keys import write_keystore
from attribution.da.operator import DEV_KEY_FILE, load_operator

KEY = "0x" + "42" * 32


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_keystore_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = write_keystore(tmp_path / "k.json", KEY, "pw", kdf="pbkdf2", iterations=2)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    existing = tmp_path / "taken.json"
    existing.write_text("the only copy of another key")
    existing.chmod(0o644)
    with pytest.raises(SignerError, match="already exists"):
        write_keystore(existing, KEY, "pw", kdf="pbkdf2", iterations=2)
    assert existing.read_text() == "the only copy of another key"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_dev_operator_key_is_0600_whatever_was_left_in_the_dir(tmp_path: Path) -> None:
    # what an interrupted older run (or anyone with write access) left where the key's temp file used to go
    leftover = tmp_path / DEV_KEY_FILE
    leftover = leftover.with_suffix(".tmp")
    leftover.write_text("x")
    leftover.chmod(0o644)
    account = load_operator(None, tmp_path)
    key_file = tmp_path / DEV_KEY_FILE
    assert _mode(key_file) == 0o600
    assert load_operator(None, tmp_path).address == account.address  # reused, not replaced
