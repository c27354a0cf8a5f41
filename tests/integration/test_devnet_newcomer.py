"""The devnet and DA CLI as a newcomer met them: status on another port exits 3, `status --json` says whether a
deployment is live, a failed `devnet up` leaves no anvil behind, `da serve` on a busy port writes nothing."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from attribution.chain.client import ChainClient
from attribution.devnet.processes import free_port
from attribution.devnet.stack import status
from node.cli import app
from node.errors import UsageError
from tests.integration.test_devnet import cli, devnet_env  # noqa: F401 - the fixture is used by name


def test_status_on_another_port_exits_3_and_json_says_deployed(devnet_env: dict[str, Any]) -> None:  # noqa: F811
    env = devnet_env
    cli(env["work"], "devnet", "up", *env["flags"], "--no-da", "--deployments-dir", str(env["deployments"]))
    out = cli(env["work"], "devnet", "status", *env["flags"], "--deployments-dir", str(env["deployments"]), "--json")
    body = json.loads(out.stdout)
    assert body["running"] and body["deployed"] is True and body["contracts"]
    other = cli(env["work"], "devnet", "status", "--state-dir", str(env["state"]), "--port", str(free_port()),
                check=False)
    assert other.returncode == 3, other.stdout + other.stderr
    assert "stopped" in other.stdout


def test_failed_up_leaves_no_anvil_running(devnet_env: dict[str, Any]) -> None:  # noqa: F811
    env = devnet_env
    blocker = env["work"] / "deployments-is-a-file"
    blocker.write_text("not a directory")
    proc = cli(env["work"], "devnet", "up", *env["flags"], "--no-da", "--deployments-dir", str(blocker), check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in proc.stderr
    assert not ChainClient(env["rpc"]).is_up()
    assert not status(env["config"]).running


def test_da_serve_on_a_busy_port_writes_no_key(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = tmp_path / "da"
        result = CliRunner().invoke(app, ["da", "serve", "--data-dir", str(data), "--port", str(port), "--dev"])
    assert isinstance(result.exception, UsageError) and "cannot listen" in str(result.exception)
    assert not data.exists() or not any(data.iterdir())
