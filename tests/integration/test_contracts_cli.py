"""`loraledger contracts deploy` against a non-devnet chain id: keystore signer, dev keys refused, file written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from attribution.chain.artifacts import ArtifactStore
from attribution.chain.client import ChainClient
from attribution.chain.deploy import Deployment
from attribution.chain.keys import dev_keys, write_keystore
from tests.fixtures.chain import AnvilNode, start_anvil, stop_process

REPO = Path(__file__).resolve().parents[2]
CHAIN_ID = 4242
OPERATOR_KEY = "0x" + "3c" * 32


@pytest.fixture(scope="module")
def other_chain() -> Iterator[AnvilNode]:
    node = start_anvil(["--chain-id", str(CHAIN_ID)])
    node.rpc("anvil_setBalance", Account.from_key(OPERATOR_KEY).address, hex(10**20))
    try:
        yield node
    finally:
        stop_process(node.proc)


def run_cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    full_env.update(env, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", "from node.cli import main; main()", *args], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=180, check=False)


def test_deploy_with_keystore_writes_the_deployment_file(other_chain: AnvilNode, tmp_path: Path) -> None:
    keystore = write_keystore(tmp_path / "deployer.json", OPERATOR_KEY, "s3cret", kdf="pbkdf2", iterations=2)
    out = tmp_path / "deployments" / f"{CHAIN_ID}.json"
    safe, poster, guardian, treasury = (Account.from_key("0x" + c * 32).address for c in ("4a", "4b", "4c", "4d"))
    roles = ["--governance", safe, "--poster", poster, "--guardian", guardian, "--treasury", treasury]
    # an existing ERC-20 for stake and fees: off the devnet the deploy never mints its own (N7)
    token, _ = ChainClient(other_chain.rpc_url, Account.from_key(OPERATOR_KEY)).deploy(
        ArtifactStore().load("DevToken"), "Stake", "STK", safe)
    delay = str(14 * 24 * 3600 + 7200)  # unbonding delay + challenge window (N8)
    base = ["contracts", "deploy", "--rpc-url", other_chain.rpc_url, "--keystore", str(keystore), "--chain-id",
            str(CHAIN_ID), "--challenge-window", "7200"]
    args = [*base, *roles, "--token", token, "--timelock-delay", delay, "--out", str(out)]
    # a real chain refuses: no timelock, no --token, one key for several roles, a delay below unbonding + window
    for bad, why in (([*roles, "--token", token], "TimelockController"),
                     ([*roles, "--timelock-delay", delay], "--token"),
                     (["--governance", safe, "--poster", safe, "--guardian", guardian, "--treasury", treasury,
                       "--token", token, "--timelock-delay", delay], "one key for several roles"),
                     ([*roles, "--token", token, "--timelock-delay", "7200"], "below --unbonding-delay")):
        refused = run_cli(tmp_path, *base, *bad, "--out", str(out), LORALEDGER_KEYSTORE_PASSWORD="s3cret")
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
        assert not out.exists()
    proc = run_cli(tmp_path, *args, LORALEDGER_KEYSTORE_PASSWORD="s3cret")
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr
    deployment = Deployment.load(out)
    deployer = Account.from_key(OPERATOR_KEY).address
    assert deployment.chain_id == CHAIN_ID and deployment.deployer == deployer and not deployment.devnet
    timelock = deployment.address("GovernanceTimelock")
    assert deployment.roles == {"governance": timelock, "proposer": safe, "poster": poster, "guardian": guardian,
                                "treasury": treasury}
    assert deployment.address("AttributionLedger") in proc.stdout
    c = deployment.bind(ChainClient(other_chain.rpc_url))
    assert deployment.check(c.ledger.client) == []
    assert c.rewards.challenge_window() == 7200 and c.rewards.roles()["guardian"] == guardian
    assert c.assets.governance() == c.nodes.governance() == c.rewards.governance() == timelock != deployer
    assert c.timelock is not None and c.timelock.min_delay() == int(delay)
    assert json.loads(out.read_text())["params"]["timelockDelay"] == int(delay)

    again = run_cli(tmp_path, *args, LORALEDGER_KEYSTORE_PASSWORD="s3cret")
    assert again.returncode == 2 and "--force" in again.stderr  # a live deployment is not overwritten
    wrong = run_cli(tmp_path, *args[:-2], "--chain-id", "10", LORALEDGER_KEYSTORE_PASSWORD="s3cret")
    assert wrong.returncode == 2 and f"serves chain {CHAIN_ID}, not 10" in wrong.stderr


def test_deploy_refuses_dev_keys_off_devnet(other_chain: AnvilNode, tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "contracts", "deploy", "--rpc-url", other_chain.rpc_url, "--out",
                   str(tmp_path / "x.json"), LORALEDGER_PRIVATE_KEY=dev_keys()[0])
    assert proc.returncode == 1 and "refusing anvil's public dev key" in proc.stderr
    assert dev_keys()[0][2:] not in proc.stdout + proc.stderr
    assert not (tmp_path / "x.json").exists()
    no_key = run_cli(tmp_path, "contracts", "deploy", "--rpc-url", other_chain.rpc_url)
    assert no_key.returncode == 1 and "no signing key" in no_key.stderr
