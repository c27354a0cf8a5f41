"""forge-lint stays quiet about truncating casts in the Solidity tests (each one is marked where it is safe)."""

from __future__ import annotations

import subprocess

from attribution.chain.artifacts import REPO_ROOT, find_foundry_tool


def test_no_unsafe_typecast_warnings_in_contract_tests() -> None:
    proc = subprocess.run([str(find_foundry_tool("forge")), "lint", "contracts/test"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert "unsafe-typecast" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[:2000]
