"""`loraledger devnet up|status|down` for real: detached anvil (+ DA server), state kept across restarts.

Runs the CLI in a subprocess on free ports with a tmp state dir, deployments dir and working directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from attribution.chain.assets import adapter_id_for, dataset_id_for
from attribution.chain.client import ChainClient
from attribution.chain.deploy import Deployment
from attribution.chain.errors import DevnetError
from attribution.chain.keys import dev_keys
from attribution.devnet.processes import free_port
from attribution.devnet.stack import DevnetConfig, down, register_demo_assets, status, up
from node.commands.devnet import da_server_argv, devnet_config
from node.errors import UsageError
from tests.fixtures.chain import AnvilNode, DeployedContracts

REPO = Path(__file__).resolve().parents[2]


def cli(cwd: Path, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for key in list(env):
        if key.startswith("LORALEDGER_"):
            del env[key]
    proc = subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"loraledger {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def devnet_env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Ports, dirs and CLI flags for one devnet; always brought down afterwards."""
    anvil_port, da_port = free_port(), free_port()
    while da_port == anvil_port:
        da_port = free_port()
    work = tmp_path / "work"
    (work / ".demo").mkdir(parents=True)
    flags = ["--state-dir", str(tmp_path / "state"), "--port", str(anvil_port), "--da-port", str(da_port)]
    config = DevnetConfig(state_dir=tmp_path / "state", anvil_port=anvil_port, da_port=da_port,
                          deployments_dir=tmp_path / "deployments", demo_dir=work / ".demo")
    env = {"work": work, "flags": flags, "state": tmp_path / "state", "deployments": tmp_path / "deployments",
           "rpc": config.rpc_url, "da": config.da_url, "config": config}
    try:
        yield env
    finally:
        down(dataclasses.replace(config, da_command=da_server_argv))


DEMO_CONTENT_HASH = "0x" + "ad" * 32


def _demo_manifest(path: Path) -> None:
    contributor = Account.from_key(dev_keys()[5]).address
    key, model = "0x" + "d1" * 32, "0x" + "a0" * 32
    path.write_text(json.dumps({
        "datasets": [{"datasetKey": key, "contributors": [contributor], "sharesBps": [10000], "uri": "demo://ds"}],
        "baseModels": [{"modelId": model, "uri": "demo://model"}],
        "adapters": [{"contentHash": DEMO_CONTENT_HASH, "baseModelId": model, "datasetKeys": [key],
                      "weightsBps": [10000], "pricePerMTokens": 1000, "uri": "demo://adapter"}],
    }))


def test_devnet_up_is_idempotent_and_state_survives_down_up(devnet_env: dict[str, Any]) -> None:
    env = devnet_env
    config: DevnetConfig = env["config"]
    _demo_manifest(env["work"] / ".demo" / "assets.json")

    out = cli(env["work"], "devnet", "up", *env["flags"], "--no-da", "--deployments-dir", str(env["deployments"]),
              "--json")
    first = json.loads(out.stdout)
    assert first["running"] and first["chainId"] == 31337 and first["deployed"]
    assert first["started"] == ["anvil"] and first["demoAssets"] == 3
    deployment_file = env["deployments"] / "31337.json"
    deployment = Deployment.load(deployment_file)
    assert deployment.addresses == first["contracts"]
    assert deployment.devnet["node"] == Account.from_key(dev_keys()[1]).address
    assert (env["state"] / "anvil.pid").is_file()
    deployer = Account.from_key(dev_keys()[0]).address
    adapter_id = "0x" + adapter_id_for(deployer, DEMO_CONTENT_HASH).hex()
    assert deployment.devnet["demo"]["adapters"] == {DEMO_CONTENT_HASH: adapter_id}
    assert deployment.devnet["demo"]["owner"] == deployer

    # second `up`: reports, changes nothing (no transaction sent, same file; the devnet mines an empty block every
    # devnet.block_time_s meanwhile)
    file_before = deployment_file.read_bytes()
    client = ChainClient(env["rpc"])
    sent_before = [client.w3.eth.get_transaction_count(Account.from_key(k).address) for k in dev_keys()[:3]]
    second = up(config)
    assert second.already_running and second.started == [] and not second.deployed and second.demo_assets == 0
    assert second.block_number is not None and second.block_number >= first["blockNumber"]
    assert [client.w3.eth.get_transaction_count(Account.from_key(k).address) for k in dev_keys()[:3]] == sent_before
    assert deployment_file.read_bytes() == file_before

    # post a batch as the bonded dev node
    node = Account.from_key(dev_keys()[1])
    contracts = deployment.bind(ChainClient(env["rpc"], node))
    assert contracts.nodes.is_active(node.address)
    adapter = contracts.assets.adapter(adapter_id)
    assert adapter.uri == "demo://adapter" and adapter.content_hash == bytes.fromhex("ad" * 32)
    assert adapter.owner == deployer and adapter.dataset_ids == (dataset_id_for(deployer, "0x" + "d1" * 32),)
    assert contracts.rewards.fee_credit(node.address) == int(deployment.devnet["feeCredit"]) == 100_000 * 10**18
    posted = contracts.ledger.post_batch(0, 4, b"\x42" * 32, b"\x01\x00\xd0demo")
    st = status(config)
    assert st.running and st.deployment is not None and st.deployment.addresses == first["contracts"]
    assert st.block_number is not None and st.block_number >= posted.block_number

    stopped = cli(env["work"], "devnet", "down", *env["flags"], "--no-da").stdout
    assert "stopped anvil" in stopped
    assert not (env["state"] / "anvil.pid").exists()
    assert not ChainClient(env["rpc"]).is_up()
    assert not status(config).running
    assert (env["state"] / "anvil-state.json").stat().st_size > 0

    third = up(config)  # state loaded back: nothing redeployed, the batch is still there
    assert not third.deployed and third.started == ["anvil"] and third.demo_assets == 0
    assert third.deployment is not None and third.deployment.addresses == first["contracts"]
    assert third.block_number is not None and third.block_number >= posted.block_number
    contracts = deployment.bind(ChainClient(env["rpc"], node))
    batch = contracts.ledger.batch(posted.batch_id)
    assert (batch.root, batch.first_seq, batch.count, batch.node) == (b"\x42" * 32, 0, 4, node.address)
    assert contracts.ledger.next_seq(node.address) == 4
    assert contracts.nodes.is_active(node.address)


def test_devnet_runs_the_da_server_and_status_reports_it(devnet_env: dict[str, Any]) -> None:
    env = devnet_env
    config = dataclasses.replace(env["config"], da_command=da_server_argv, demo_dir=None)
    st = up(config)
    assert st.started == ["anvil", "da"] and st.deployed
    assert st.deployment is not None and st.deployment.devnet["daUrl"] == env["da"]
    with urllib.request.urlopen(env["da"] + "/health", timeout=5) as resp:
        assert resp.status == 200
    services = {s.name: s for s in status(config).services}
    assert services["da"].running and services["anvil"].running
    assert (config.state_dir / "da").is_dir()  # its data dir lives under the devnet state dir
    again = up(config)
    assert again.already_running and again.started == []
    assert down(config) == ["da", "anvil"]
    services = {s.name: s for s in status(config).services}
    assert not services["da"].running and not services["anvil"].running
    assert not (config.state_dir / "da.pid").exists()



def test_watch_runs_on_the_devnet_with_the_defaults_make_run_uses(devnet_env: dict[str, Any]) -> None:
    """`make run` starts `loraledger watch --port P` in the working directory: the deployment from
    deployments/<chainId>.json, dev account 6, the state in .loraledger/watch.db. One round (`--once`) there."""
    env = devnet_env
    config = dataclasses.replace(env["config"], da_command=da_server_argv, demo_dir=None,
                                 deployments_dir=env["work"] / "deployments")
    assert up(config).deployed
    out = cli(env["work"], "watch", "--once", "--rpc-url", env["rpc"], "--da-url", env["da"])
    st = json.loads(out.stdout)
    assert st["address"] == Account.from_key(dev_keys()[6]).address and st["challenges"] == []
    assert st["cursor"] >= 0 and (env["work"] / ".loraledger" / "watch.db").is_file()

def test_devnet_refuses_a_port_held_by_someone_else(anvil: AnvilNode, tmp_path: Path) -> None:
    config = DevnetConfig(state_dir=tmp_path / "state", anvil_port=anvil.port, deployments_dir=tmp_path / "dep",
                          demo_dir=None)
    with pytest.raises(DevnetError, match="something else already answers"):
        up(config)
    assert down(config) == []  # nothing of ours to stop
    assert anvil.w3.eth.chain_id == 31337  # the other anvil is untouched


def test_devnet_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--port must be 1..65535"):
        devnet_config(tmp_path, 70000, None, None, False)
    with pytest.raises(UsageError, match="cannot share port"):
        devnet_config(tmp_path, 9100, 9100, None, False)
    config = devnet_config(tmp_path, 9100, 9101, None, True)
    assert (config.anvil_port, config.da_port, config.da_command) == (9100, 9101, None)
    assert config.state_dir == tmp_path.absolute()


def test_demo_manifest_of_the_inference_demo_is_registered_once(deployment: DeployedContracts,
                                                                 tmp_path: Path) -> None:
    """`.demo/manifest.json` as `loraledger demo init` writes it becomes base model, datasets and adapters under
    the deployer's namespaced ids, and each adapter entry learns its `registered_adapter_id`."""
    ids = {k: "0x" + os.urandom(32).hex() for k in ("model", "a1", "a2", "d1", "d2")}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({
        "version": 1, "preset": "demo",
        "model": {"name": "demo-llama", "path": "demo-llama", "model_id": ids["model"], "dataset_id": "0x" + "ee" * 32},
        "adapters": [
            {"name": "json-docs", "path": "adapters/json-docs", "adapter_id": ids["a1"], "dataset_id": ids["d1"],
             "dataset_description": "docstrings of json"},
            {"name": "csv-docs", "path": "adapters/csv-docs", "adapter_id": ids["a2"], "dataset_id": ids["d2"],
             "dataset_description": "docstrings of csv"},
        ]}))
    owner = deployment.deployer.address
    client = ChainClient(deployment.rpc_url, deployment.deployer)
    reg = register_demo_assets(deployment.deployment, client, tmp_path)
    assert reg.registered == 5 and reg.owner == owner
    assert reg.adapters == {ids[a]: "0x" + adapter_id_for(owner, ids[a]).hex() for a in ("a1", "a2")}
    written = json.loads(manifest.read_text())
    assert [a["registered_adapter_id"] for a in written["adapters"]] == [reg.adapters[ids["a1"]],
                                                                          reg.adapters[ids["a2"]]]
    assert written["adapters"][0]["adapter_id"] == ids["a1"]  # the content hash stays what it was
    mtime = manifest.stat().st_mtime_ns
    assert register_demo_assets(deployment.deployment, client, tmp_path).registered == 0  # idempotent
    assert manifest.stat().st_mtime_ns == mtime  # nothing changed: not rewritten
    adapter = deployment.assets.adapter(reg.adapters[ids["a2"]])
    assert adapter.base_model_id == bytes.fromhex(ids["model"][2:]) and adapter.weights_bps == (10000,)
    assert adapter.content_hash == bytes.fromhex(ids["a2"][2:]) and adapter.uri == "demo://adapters/csv-docs"
    assert adapter.dataset_ids == (dataset_id_for(owner, ids["d2"]),)
    assert adapter.price_per_m_tokens == 10**18 and adapter.owner == owner
    contributors = {deployment.assets.dataset(dataset_id_for(owner, ids[d])).contributors for d in ("d1", "d2")}
    assert contributors == {(deployment.accounts[5].address,), (deployment.accounts[6].address,)}
    assert register_demo_assets(deployment.deployment, client, tmp_path / "nothing-here").registered == 0


def test_damaged_state_file_is_reported_with_a_way_out(tmp_path: Path) -> None:
    config = DevnetConfig(state_dir=tmp_path / "state", anvil_port=free_port(), deployments_dir=tmp_path / "dep",
                          demo_dir=None)
    config.state_dir.mkdir()
    config.state_file.write_text('{"block": 12')  # what a torn write would leave
    with pytest.raises(DevnetError, match="move it away") as ei:
        up(config)
    assert "failed to parse" in str(ei.value)  # anvil's own message is shown
    assert not (config.state_dir / "anvil.pid").exists() and not status(config).running
