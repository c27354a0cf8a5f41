"""node/settings.py: TOML + environment precedence and the dev-key guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from attribution.chain.keys import dev_keys
from node.errors import UsageError
from node.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LORALEDGER_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray ./loraledger.toml


def test_defaults_without_file() -> None:
    s = load_settings()
    assert s.chain.rpc_url == "http://127.0.0.1:8545" and s.chain.chain_id is None
    assert (s.devnet.anvil_port, s.devnet.da_port, s.devnet.state_dir) == (8545, 3100, Path(".devnet"))
    assert s.chain.deployment_path(10) == Path("deployments/10.json")


def test_toml_then_env_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "custom.toml"
    toml.write_text('[chain]\nrpc_url = "http://l2:8545"\nchain_id = 10\n[devnet]\nanvil_port = 9000\n')
    s = load_settings(toml)
    assert (s.chain.rpc_url, s.chain.chain_id, s.devnet.anvil_port) == ("http://l2:8545", 10, 9000)
    monkeypatch.setenv("LORALEDGER_DEVNET__ANVIL_PORT", "9001")
    assert load_settings(toml).devnet.anvil_port == 9001
    (tmp_path / "loraledger.toml").write_text('[devnet]\nda_port = 4000\n')
    assert load_settings().devnet.da_port == 4000  # ./loraledger.toml by default
    with pytest.raises(UsageError):
        load_settings(toml, devnet={"anvil_port": 0})


def test_private_key_is_secret_and_dev_keys_are_refused_off_devnet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORALEDGER_CHAIN__PRIVATE_KEY", dev_keys()[0])
    s = load_settings()  # chain id unknown: checked again when the signer is loaded
    assert dev_keys()[0] not in repr(s) and s.chain.private_key is not None
    monkeypatch.setenv("LORALEDGER_CHAIN__CHAIN_ID", "31337")
    assert load_settings().chain.chain_id == 31337
    monkeypatch.setenv("LORALEDGER_CHAIN__CHAIN_ID", "10")
    with pytest.raises(UsageError, match="public dev keys"):
        load_settings()
    monkeypatch.setenv("LORALEDGER_CHAIN__PRIVATE_KEY", "0x" + "77" * 32)
    assert load_settings().chain.chain_id == 10
