"""Under CI=true a missing C extension or PostgreSQL fails the run instead of skipping (issue 25): the session
check in tests/conftest.py, its pieces (`tests.fixtures.ci`), and where `pgcluster` finds the server binaries."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from attribution.devnet import pgcluster
from tests.fixtures.ci import EXTENSIONS, ci_strict, missing_prerequisites

ROOT = Path(__file__).resolve().parents[2]


def _exe(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_ci_strict_only_when_ci_is_true() -> None:
    assert ci_strict({"CI": "true"}) is True
    assert ci_strict({"CI": "TRUE "}) is True
    assert ci_strict({"CI": "false"}) is False
    assert ci_strict({}) is False


def test_missing_prerequisites_names_each_missing_part() -> None:
    missing = missing_prerequisites(extensions=("attribution._keccak", "attribution._no_such_ext"),
                                    postgres_available=lambda: False)
    assert len(missing) == 2
    assert missing[0].startswith("the C extension attribution._no_such_ext was not built")
    assert "pip install -e ." in missing[0]
    assert missing[1].startswith("PostgreSQL is not installed")


def test_missing_prerequisites_is_empty_when_all_are_there() -> None:
    assert missing_prerequisites(extensions=("json",), postgres_available=lambda: True) == []


def test_server_bin_finds_the_newest_debian_major_off_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for major in ("9", "15", "13"):
        _exe(tmp_path / major / "bin" / "initdb")
    (tmp_path / "16" / "bin").mkdir(parents=True)  # a newer major without the server package
    glob = str(tmp_path / "*" / "bin")
    assert pgcluster.server_bin("initdb", glob) == str(tmp_path / "15" / "bin" / "initdb")  # 15 > 13 > 9, numerically
    assert pgcluster.server_bin("pg_ctl", glob) is None


def test_server_bin_prefers_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _exe(tmp_path / "onpath" / "initdb")
    _exe(tmp_path / "15" / "bin" / "initdb")
    monkeypatch.setenv("PATH", str(tmp_path / "onpath"))
    assert pgcluster.server_bin("initdb", str(tmp_path / "*" / "bin")) == str(tmp_path / "onpath" / "initdb")


def _pytest_with_keccak_blocked(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    """A pytest run (collect only, one small file) in which `attribution._keccak` cannot be imported, as after a
    failed optional build: a plugin loaded before conftest.py blocks the module."""
    (tmp_path / "block_keccak.py").write_text('import sys\nsys.modules["attribution._keccak"] = None\n')
    env = {**os.environ, "CI": ci, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "block_keccak", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "tests/unit/test_safejson.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_ci_run_stops_when_an_extension_was_not_built(tmp_path: Path) -> None:
    assert "attribution._keccak" in EXTENSIONS
    ci = _pytest_with_keccak_blocked(tmp_path, "true")
    assert ci.returncode == pytest.ExitCode.USAGE_ERROR, ci.stdout + ci.stderr
    assert "the C extension attribution._keccak was not built" in ci.stdout + ci.stderr
    assert "test_safejson" not in ci.stdout  # stopped before collecting anything
    local = _pytest_with_keccak_blocked(tmp_path, "false")  # the same build off CI: tests skip, the run goes on
    assert local.returncode == pytest.ExitCode.OK, local.stdout + local.stderr
    assert "test_safejson" in local.stdout
