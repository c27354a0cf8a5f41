"""`loraledger assets …` and `loraledger fees …` against a real anvil, run through the real entry point
(`node.cli.main`) in-process: outputs, namespaced ids, scheduled prices, and one `error:` line with exit code 2
for every user error."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from attribution.chain.assets import adapter_id_for, dataset_id_for
from tests.fixtures.chain import DeployedContracts
from tests.fixtures.cli import run_cli


class Cli:
    """Runs `loraledger ARGS` with the deployment file and RPC of the module's contracts."""

    def __init__(self, d: DeployedContracts, tmp: Path, capsys: pytest.CaptureFixture[str],
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.d, self.capsys, self.monkeypatch = d, capsys, monkeypatch
        self.file = d.deployment.save(tmp / "deployment.json")
        monkeypatch.chdir(tmp)
        for key in [k for k in list(os.environ) if k.startswith("LORALEDGER_")]:
            monkeypatch.delenv(key)

    def __call__(self, *args: str, chain: bool = True) -> tuple[int, str, str]:
        extra = ["--rpc-url", self.d.rpc_url, "--deployment", str(self.file)] if chain else []
        return run_cli(self.monkeypatch, self.capsys, *args, *extra)

    def json(self, *args: str) -> dict[str, Any]:
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return dict(json.loads(out))

    def fails(self, *args: str, chain: bool = True) -> str:
        code, out, err = self(*args, chain=chain)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, out, err)
        return lines[0]


@pytest.fixture
def cli(deployment: DeployedContracts, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(deployment, tmp_path, capsys, monkeypatch)


def test_owner_registers_schedules_and_shows(cli: Cli, deployment: DeployedContracts, tmp_path: Path) -> None:
    d = deployment
    owner = d.accounts[0].address  # dev account 0 signs by default on the devnet
    manifest = tmp_path / "dataset-manifest.json"
    manifest.write_text('{"files": ["a.txt"]}')
    ds = cli.json("assets", "register-dataset", "--key-file", str(manifest), "--contributor",
                  f"{d.accounts[5].address}:7000", "--contributor", f"{d.accounts[6].address}:3000", "--uri", "d")
    key = hashlib.sha256(manifest.read_bytes()).digest()
    assert ds["datasetId"] == "0x" + dataset_id_for(owner, key).hex() and ds["owner"] == owner
    model = "0x" + "5e" * 32
    assert cli.json("assets", "register-model", "--model-id", model)["modelId"] == model
    content = "0x" + "c0" * 32
    ad = cli.json("assets", "register-adapter", "--content-hash", content, "--base-model", model, "--dataset",
                  f"{ds['datasetId']}:10000", "--price", "1e18")
    assert ad["adapterId"] == "0x" + adapter_id_for(owner, content).hex() != content

    shown = cli.json("assets", "show", ad["adapterId"])
    assert (shown["kind"], shown["contentHash"], shown["pricePerMTokens"], shown["active"]) == (
        "adapter", content, str(10**18), True)
    assert shown["datasetIds"] == [ds["datasetId"]] and "pending" not in shown
    sched = cli.json("assets", "schedule-price", ad["adapterId"], "2e18")
    assert sched["effectiveAt"] >= ad["effectiveAt"] + d.assets.change_delay()
    shown = cli.json("assets", "show", ad["adapterId"])
    assert shown["pricePerMTokens"] == str(10**18)  # not yet
    assert shown["pending"] == {"datasetIds": [ds["datasetId"]], "weightsBps": [10000],
                                "pricePerMTokens": str(2 * 10**18), "effectiveAt": sched["effectiveAt"]}
    shown_ds = cli.json("assets", "show", ds["datasetId"])
    assert shown_ds["contributors"] == [d.accounts[5].address, d.accounts[6].address]
    code, out, _ = cli("assets", "show", ad["adapterId"])
    assert code == 0 and content in out  # the table form

    # user errors: one line, exit 2, naming the problem
    assert "RegistryNotOwner" in cli.fails("assets", "schedule-price", ad["adapterId"], "5", "--dev-account", "5")
    assert "RegistryChangePending" in cli.fails("assets", "schedule-price", ad["adapterId"], "5")
    assert "not the contentHash" in cli.fails("assets", "show", content)
    assert "sum to 9000" in cli.fails("assets", "register-dataset", "--key", "0x" + "01" * 32, "--contributor",
                                      f"{d.accounts[5].address}:9000")
    assert "whole number" in cli.fails("assets", "schedule-price", ad["adapterId"], "1.5")
    assert "32 bytes" in cli.fails("assets", "show", "0x1234")
    assert "RegistryAdapterExists" in cli.fails("assets", "register-adapter", "--content-hash", content,
                                                "--base-model", model, "--price", "1")


def test_operator_deposits_and_shows_fee_credit(cli: Cli, deployment: DeployedContracts) -> None:
    d = deployment
    node = d.node.address  # dev account 1 signs `fees deposit` by default on the devnet
    before = d.rewards.fee_credit(node)
    dep = cli.json("fees", "deposit", "1e21")
    assert (dep["node"], dep["credited"], dep["credit"]) == (node, str(10**21), str(before + 10**21))
    shown = cli.json("fees", "show", "--node", node)
    assert shown["feeCredit"] == str(before + 10**21) and shown["active"] and not shown["exited"]
    assert int(shown["totalDeposited"]) >= 10**21
    sponsor = d.accounts[7]
    d.token.mint(sponsor.address, 5, account=d.deployer)
    assert cli.json("fees", "deposit", "5", "--node", node, "--dev-account", "7")["credit"] == str(before + 10**21 + 5)
    assert "less than" in cli.fails("fees", "deposit", "1e40")
    assert "must be > 0" in cli.fails("fees", "deposit", "0")
    assert "--node" in cli.fails("fees", "show")  # the fixture's deployment file names no devnet node


def test_tables_print_token_amounts_with_the_symbol(cli: Cli, deployment: DeployedContracts) -> None:
    """`fees show` reads `1,000.000034 LLDEV`, not `1000000034000000000000`; `--json` keeps the raw integer."""
    d = deployment
    node = d.accounts[8].address
    d.token.mint(d.deployer.address, 10**21 + 34 * 10**12, account=d.deployer)
    d.rewards.approve_and_deposit(d.token, node, 10**21 + 34 * 10**12, account=d.deployer)
    symbol = d.token.contract.functions.symbol().call()
    code, out, err = cli("fees", "show", "--node", node)
    assert code == 0, err
    assert f"1,000.000034 {symbol}" in out and "1000000034000000000000" not in out
    assert cli.json("fees", "show", "--node", node)["feeCredit"] == str(10**21 + 34 * 10**12)


def test_devnet_advance_moves_anvils_clock(cli: Cli, deployment: DeployedContracts) -> None:
    port = deployment.rpc_url.rsplit(":", 1)[1]
    before = deployment.client.w3.eth.get_block("latest")
    code, out, err = cli("devnet", "advance", "--seconds", "3601", "--port", port, "--json", chain=False)
    assert code == 0, err
    moved = json.loads(out)
    after = deployment.client.w3.eth.get_block("latest")
    assert moved["timestamp"] == after["timestamp"] >= before["timestamp"] + 3601
    assert moved["blockNumber"] == after["number"] == before["number"] + 1
    code, _, err = cli("devnet", "advance", "--seconds", "0", "--port", port, chain=False)
    assert code == 2 and "--seconds" in err


def test_rpc_key_never_printed(cli: Cli, deployment: DeployedContracts) -> None:
    # since --rpc-url warns when it carries a key (secrets out of argv), stderr has that warning before the error
    code, out, err = cli("fees", "show", "--node", deployment.node.address, "--rpc-url",
                         "http://127.0.0.1:1/v3/TOPSECRETKEY0123456789", chain=False)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and lines[-1].startswith("error: ") and "127.0.0.1:1/***" in lines[-1]
    assert all(line.startswith("warning: ") for line in lines[:-1])
    assert "TOPSECRETKEY" not in out + err


def test_cli_constants_match_the_chain_layer() -> None:
    """The CLI keeps web3 out of `--help` by repeating two constants; they must stay equal."""
    from attribution.chain import keys
    from node import chain, settings

    assert (settings.DEVNET_CHAIN_ID, chain.ENV_KEYSTORE_PASSWORD) == (keys.DEVNET_CHAIN_ID,
                                                                        keys.ENV_KEYSTORE_PASSWORD)
