"""The harness that tests, benchmarks and the devnet share: a free port, anvil's command line and start-up, and
stopping a child process. (The DA server process is `da_process`, a throwaway PostgreSQL `pgcluster`.)"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attribution.chain.artifacts import REPO_ROOT, find_foundry_tool
from attribution.chain.client import ChainClient

__all__ = ["AnvilProcess", "anvil_argv", "free_port", "start_anvil", "stop_process"]

ANVIL_START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def anvil_argv(port: int, *, host: str = "127.0.0.1", state: Path | None = None, chain_id: int | None = None,
               gas_limit: int | None = None, silent: bool = True, extra_args: Sequence[str] = (),
               repo_root: Path = REPO_ROOT) -> list[str]:
    """`anvil --network optimism` (OP-Stack mode: L1 fees, deposit txs) on `host:port`; with `state`, its state
    is loaded from and saved to that file every second."""
    argv = [str(find_foundry_tool("anvil", repo_root)), "--network", "optimism", "--host", host, "--port", str(port)]
    if silent:
        argv.append("--silent")
    if state is not None:
        argv += ["--state", str(state), "--state-interval", "1"]
    if chain_id is not None:
        argv += ["--chain-id", str(chain_id)]
    if gas_limit is not None:
        argv += ["--gas-limit", str(gas_limit)]
    return [*argv, *extra_args]


@dataclass
class AnvilProcess:
    """A running anvil started by `start_anvil`: its process, port, URL and chain id (the caller stops it)."""

    proc: subprocess.Popen[bytes] = field(repr=False)
    port: int
    rpc_url: str
    chain_id: int


def start_anvil(port: int | None = None, *, state: Path | None = None, gas_limit: int | None = None,
                extra_args: Sequence[str] = (), attempts: int = 3,
                timeout_s: float = ANVIL_START_TIMEOUT_S) -> AnvilProcess:
    """Start a silent anvil on `port` (default: a free one, tried `attempts` times since another process may take
    it first) and wait until it answers `eth_chainId`. Raises RuntimeError with anvil's last words."""
    last_error = ""
    for _ in range(attempts if port is None else 1):
        p = free_port() if port is None else port
        proc = subprocess.Popen(anvil_argv(p, state=state, gas_limit=gas_limit, extra_args=extra_args),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{p}"
        client = ChainClient(url, timeout_s=5.0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            if client.is_up():
                return AnvilProcess(proc, p, url, client.chain_id)
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
        last_error = err.decode(errors="replace")[-500:]
    raise RuntimeError(f"anvil did not start ({attempts if port is None else 1} attempt(s)): {last_error}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate (SIGTERM) and reap, SIGKILL after `timeout` seconds; closes its stderr pipe."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()
