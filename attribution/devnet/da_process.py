"""Run the DA server as a subprocess on a free 127.0.0.1 port: for tests, benchmarks and local tooling."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from attribution.devnet.processes import free_port

STARTUP_TIMEOUT_S = 90.0


class DAServerProcess:
    """One `python -m attribution.da.server` subprocess in its own session (so its KZG workers can be reaped).

    Attributes: `url`, `port`, `data_dir`, `operator_address` (from /health), `pid`. Methods: `start()`, `stop()`
    (SIGTERM, then SIGKILL of the whole process group), `kill()` (SIGKILL of the server process alone),
    `restart()`, `set_faults(...)` (needs `enable_faults`).
    """

    def __init__(self, data_dir: Path, *, enable_faults: bool = False, kzg: bool = True,
                 kzg_workers: int | None = None, port: int | None = None, operator_keystore: Path | None = None,
                 env: dict[str, str] | None = None, extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.operator_keystore = operator_keystore
        self.extra_args = list(extra_args or [])
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.enable_faults = enable_faults
        self.kzg = kzg
        self.kzg_workers = kzg_workers
        self.operator_address = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def pid(self) -> int:
        """The server's process id."""
        if self.proc is None:
            raise RuntimeError("DA server is not running; call start() first")
        return self.proc.pid

    def start(self, wait_kzg: bool = False, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Start the server and wait until /health answers (and, with `wait_kzg`, the KZG workers are ready)."""
        args = [sys.executable, "-m", "attribution.da.server", "--data-dir", str(self.data_dir),
                "--port", str(self.port)]
        if self.enable_faults:
            args.append("--enable-faults")
        if not self.kzg:
            args.append("--no-kzg")
        if self.kzg_workers is not None:
            args += ["--kzg-workers", str(self.kzg_workers)]
        if self.operator_keystore is not None:
            args += ["--operator-keystore", str(self.operator_keystore)]
        else:
            args.append("--dev")  # fixtures and benchmarks are local: a generated dev operator key
        args += self.extra_args
        env = {**os.environ, **self.env} if self.env else None
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"DA server exited with {self.proc.returncode}; log:\n{self.log()}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=2.0).json()
                self.operator_address = str(health["operator"])
                if not wait_kzg or not self.kzg or health.get("kzg_ready"):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"DA server did not become healthy in {timeout}s; log:\n{self.log()}")

    def log(self) -> str:
        """The tail of the server's combined stdout/stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL the server process alone (as the OOM killer would); its KZG workers exit by themselves."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL after 20 s, then reap anything left in the server's process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def restart(self, wait_kzg: bool = False) -> None:
        """Stop (if still running) and start again on the same port and data dir."""
        self.stop()
        self.start(wait_kzg=wait_kzg)

    def set_faults(self, **faults: object) -> dict[str, object]:
        """POST /admin/faults (server must run with enable_faults); returns the switches now in force."""
        response = httpx.post(f"{self.url}/admin/faults", json=faults, timeout=10.0)
        response.raise_for_status()
        body: dict[str, object] = response.json()
        return body

    def __enter__(self) -> DAServerProcess:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
