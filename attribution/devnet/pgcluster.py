"""A throwaway PostgreSQL cluster (`initdb` + `pg_ctl`) in a temp dir on a free 127.0.0.1 port, for tests and the
indexer benchmark. PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user
(`runuser`). Not for production: fsync is off."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from attribution.devnet.processes import free_port
from attribution.errors import AttributionError

__all__ = ["PostgresUnavailable", "PostgresCluster", "available", "start_postgres", "stop_postgres"]


class PostgresUnavailable(AttributionError, RuntimeError):
    """PostgreSQL is not installed (no `initdb`/`pg_ctl` on PATH) or did not start; the message says which."""


def available() -> bool:
    """Whether `initdb` and `pg_ctl` are on PATH."""
    return shutil.which("initdb") is not None and shutil.which("pg_ctl") is not None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PostgresCluster:
    """A running throwaway cluster."""

    port: int
    root: Path
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        """URL of the default `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """Create a fresh empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


def start_postgres() -> PostgresCluster:
    """initdb + pg_ctl start in a new temp dir (fsync off)."""
    if not available():
        raise PostgresUnavailable("PostgreSQL is not installed: initdb and pg_ctl must be on PATH")
    root = Path(tempfile.mkdtemp(prefix="loraledger-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    init = subprocess.run(_as_postgres(["initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                        "--no-sync"]), capture_output=True, text=True, timeout=120)
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {(init.stdout + init.stderr)[-500:]}")
    last = ""
    for _ in range(3):
        port = free_port()
        proc = subprocess.run(_as_postgres([
            "pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off", "start"]), capture_output=True, text=True, timeout=90)
        if proc.returncode == 0:
            return PostgresCluster(port, root)
        last = proc.stdout + proc.stderr
    shutil.rmtree(root, ignore_errors=True)
    raise PostgresUnavailable(f"PostgreSQL did not start: {last[-500:]}")


def stop_postgres(cluster: PostgresCluster) -> None:
    """Stop the cluster (immediate) and delete its files."""
    subprocess.run(_as_postgres(["pg_ctl", "-D", str(cluster.root / "data"), "-m", "immediate", "stop"]),
                   capture_output=True, timeout=60)
    shutil.rmtree(cluster.root, ignore_errors=True)
