"""Fault injection: `loraledger batcher run` SIGKILLed right after each state transition and at random points,
restarted each time, against a real anvil, the real DA server and a store the test process keeps appending to.

At the end every record is in exactly one posted batch, seqs are gap-free on-chain, every root equals the root
rebuilt from DA, and no postBatch transaction reverted.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attribution.chain.artifacts import ArtifactStore
from attribution.devnet.processes import free_port
from attribution.store import RecordStore
from node.commands.batcher import KILL_ENV
from tests.fixtures.chain import deploy_fixture_contracts, start_anvil, stop_process
from tests.fixtures.da import DAServerFactory
from tests.integration.test_batcher import Env, check_ledger_matches

EVENTS = ("sealed", "dispersed", "submitted", "broadcast", "posted", "final")


@pytest.fixture
def env(tmp_path: Path, forge_artifacts: ArtifactStore, da_server_factory: DAServerFactory) -> Iterator[Env]:
    anvil = start_anvil(port=free_port())
    try:
        deployed = deploy_fixture_contracts(anvil, forge_artifacts)
        deployed.deployment.save(tmp_path / "deployment.json")
        da = da_server_factory.start(kzg_workers=1)
        store = RecordStore(tmp_path / "records.db", bytes.fromhex(deployed.node.address[2:]))
        yield Env(anvil, deployed, da, store, tmp_path)
        store.close()
    finally:
        stop_process(anvil.proc)


def _batcher(env: Env, kill_at: str | None, log: Path) -> subprocess.Popen[bytes]:
    cli = Path(sys.executable).with_name("loraledger")
    args = [str(cli), "batcher", "run", "--db", str(env.tmp / "records.db"), "--rpc-url", env.anvil.rpc_url,
            "--da-url", env.da.url, "--deployment", str(env.tmp / "deployment.json"), "--seal-interval", "0.1",
            "--seal-records", "1", "--max-batch-records", "6", "--confirmations", "1", "--poll-interval", "0.05",
            "--resubmit-after", "3", "--until-drained", "--timeout", "60"]
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    if kill_at:
        run_env[KILL_ENV] = kill_at
    with open(log, "ab") as f:
        return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=run_env)


def _batch_progress(env: Env) -> tuple[tuple[int, str], ...]:
    return tuple(sorted((b.batch_id, b.state) for b in env.store.batches()))


def _kill_once_working(env: Env, proc: subprocess.Popen[bytes], rng: random.Random) -> None:
    """SIGKILL at a random moment after the batcher started moving batches (CLI start-up time varies by machine)."""
    before = _batch_progress(env)
    deadline = time.monotonic() + 60
    while proc.poll() is None and _batch_progress(env) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.6))
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)


def test_sigkill_after_every_transition_and_at_random_points(env: Env) -> None:
    rng = random.Random(12)
    log = env.tmp / "batcher.log"
    plan = [f"{ev}:{n}" for n in (1, 2) for ev in EVENTS] + [None] * 8  # 12 exact points + 8 random ones
    kills = {"exact": 0, "random": 0}
    outcomes: list[tuple[str | None, int]] = []
    for kill_at in plan:
        for _attempt in range(5):  # a kill point not reached in a run (it drained first) is tried again
            # >= 2 batches of 6 per run (more for a random kill, so work is in flight); the node appends between runs
            env.append(rng.randint(7, 14) if kill_at else rng.randint(24, 36))
            proc = _batcher(env, kill_at, log)
            if kill_at is None:
                _kill_once_working(env, proc, rng)
            rc = proc.wait(timeout=90)
            outcomes.append((kill_at, rc))
            assert rc in (0, -signal.SIGKILL), f"batcher exited {rc} ({kill_at}); log:\n{log.read_text()[-3000:]}"
            if rc == -signal.SIGKILL:
                kills["exact" if kill_at else "random"] += 1
            if rc == -signal.SIGKILL:
                break
    assert kills["exact"] == 12, outcomes  # each exact point was reached
    assert kills["exact"] + kills["random"] >= 20, outcomes
    proc = _batcher(env, None, log)  # a clean run drains everything
    assert proc.wait(timeout=90) == 0, log.read_text()[-3000:]
    n = env.store.next_seq()
    check_ledger_matches(env, n)
    # no unhandled revert: every transaction the node sent succeeded
    w3 = env.anvil.w3
    node = env.deployed.node.address
    sent = 0
    for number in range(env.deployed.deployment.deploy_block, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == node and tx["to"] == env.deployed.ledger.address:
                sent += 1
                assert w3.eth.get_transaction_receipt(tx["hash"])["status"] == 1
    assert sent == len(env.store.batches())  # one landed postBatch per batch: no duplicates, none reverted
    assert "Traceback" not in log.read_text()
