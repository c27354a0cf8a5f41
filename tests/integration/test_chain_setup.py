"""The one chain set-up (`attribution.chain.setup.connect`) on a real anvil: chain id check, deployment file,
code check, signer, bound wrappers; and the error a wrong setting gets (the RPC URL redacted)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from attribution.chain.errors import DeploymentError, DevKeyRefused, SignerError
from attribution.chain.keys import DEV_ROLE_INDEX
from attribution.chain.setup import ChainMismatch, SignerParams, connect
from tests.fixtures.chain import AnvilNode, DeployedContracts, FaultyRpc


def _deployments_dir(tmp_path: Path, deployment: DeployedContracts) -> Path:
    deployment.deployment.save(tmp_path / f"{deployment.chain_id}.json")
    return tmp_path


def test_connect_loads_checks_binds_and_signs(tmp_path: Path, deployment: DeployedContracts) -> None:
    ctx = connect(deployment.rpc_url, expected_chain_id=deployment.chain_id,
                  deployments_dir=_deployments_dir(tmp_path, deployment), check_code=True,
                  signer=SignerParams(dev_index=DEV_ROLE_INDEX["node"]))
    assert ctx.chain_id == deployment.chain_id
    assert ctx.deployment_file == tmp_path / f"{deployment.chain_id}.json"
    assert ctx.need_deployment().addresses == deployment.deployment.addresses
    assert ctx.contracts.ledger.address == deployment.ledger.address  # bound on first use, on ctx.client
    assert ctx.contracts.ledger.client is ctx.client
    assert ctx.sender == deployment.node.address


def test_a_wrong_chain_id_names_both_ids_and_redacts_the_url(
        anvil: AnvilNode, rpc_proxy: Callable[..., FaultyRpc]) -> None:
    url = rpc_proxy().url("/v2/SECRET-API-KEY")
    with pytest.raises(ChainMismatch) as e:
        connect(url, expected_chain_id=10, load_deployment=False)
    assert f"serves chain {anvil.chain_id}, not 10" in str(e.value)
    assert "SECRET-API-KEY" not in str(e.value) and "/***" in str(e.value)


def test_deployment_files(tmp_path: Path, deployment: DeployedContracts) -> None:
    with pytest.raises(DeploymentError, match="no deployment file"):
        connect(deployment.rpc_url, deployments_dir=tmp_path)
    optional = connect(deployment.rpc_url, deployments_dir=tmp_path, require_deployment=False)
    assert optional.deployment is None
    with pytest.raises(DeploymentError, match="no deployment loaded"):
        optional.need_deployment()
    (tmp_path / "other.json").write_text(json.dumps({**deployment.deployment.to_json(), "chainId": 10}))
    with pytest.raises(ChainMismatch, match="is for chain 10 but the RPC"):
        connect(deployment.rpc_url, deployment_file=tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{}")
    with pytest.raises(DeploymentError, match="malformed deployment file"):
        connect(deployment.rpc_url, deployment_file=tmp_path / "broken.json")


def test_signer_errors(deployment: DeployedContracts, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LORALEDGER_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("LORALEDGER_KEYSTORE_PASSWORD", raising=False)
    with pytest.raises(SignerError, match="no signing key"):
        connect(deployment.rpc_url, load_deployment=False, signer=SignerParams())
    unsigned = connect(deployment.rpc_url, load_deployment=False)
    with pytest.raises(SignerError, match="signs a transaction"):
        _ = unsigned.sender


def test_an_explicit_dev_account_is_refused_off_the_devnet(tmp_path: Path) -> None:
    from tests.fixtures.chain import start_anvil, stop_process

    node = start_anvil(["--chain-id", "10"])
    try:
        with pytest.raises(DevKeyRefused, match="--dev-account 1 is for the local devnet"):
            connect(node.rpc_url, load_deployment=False,
                    signer=SignerParams(private_key="0x" + "11" * 32, dev_index=1, dev_index_required=True))
    finally:
        stop_process(node.proc)
