"""The batcher after an outage (issue 25), on a real anvil, the real DA server over HTTP and a real SQLite store:

- a long backoff planned while the DA or the RPC was down ends as soon as that part answers again (the next
  pass runs at once), while a DA that answers /health but refuses puts keeps the backoff;
- a pass blocked on a slow DA is never "skipped" by the scheduler (no warning every poll).

Each is driven pass by pass (`run_once`) or by a state the store reaches, never by a clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attribution.chain.artifacts import ArtifactStore
from attribution.devnet.processes import free_port
from attribution.store import RecordStore
from tests.fixtures.chain import deploy_fixture_contracts, start_anvil, stop_process
from tests.fixtures.da import DAServerFactory
from tests.integration.test_batcher import Env, all_final, drive


@pytest.fixture
def env(tmp_path: Path, forge_artifacts: ArtifactStore, da_server_factory: DAServerFactory) -> Iterator[Env]:
    """A fresh anvil (restartable on its port, with state), the contracts, a DA server with faults on, a store."""
    anvil = start_anvil(port=free_port(), state=tmp_path / "anvil-state.json")
    try:
        deployed = deploy_fixture_contracts(anvil, forge_artifacts)
        da = da_server_factory.start(enable_faults=True, kzg=False)
        store = RecordStore(tmp_path / "records.db", bytes.fromhex(deployed.node.address[2:]))
        yield Env(anvil, deployed, da, store, tmp_path)
        store.close()
    finally:
        stop_process(anvil.proc)


LONG = {"backoff_initial_s": 600.0, "backoff_max_s": 600.0}  # a retry planned far beyond the test's life


def test_da_back_after_an_outage_ends_the_backoff_at_once(env: Env) -> None:
    env.append(12)
    b = env.batcher(**LONG)
    env.da.kill()
    b.run_once()  # the put fails: the next try is >= 300 s away
    assert b.status()["consecutive_failures"] == 1
    b.run_once()  # still down: the probe finds it so, nothing else happens
    assert b.status()["consecutive_failures"] == 1 and env.store.batch_counts()["dispersed"] == 0
    env.da.start()
    b.run_once()  # the probe answers: this pass runs now instead of in >= 300 s
    assert env.store.batch_counts()["sealed"] == 0, b.status()
    assert b.status()["consecutive_failures"] == 0 and b.status().get("outage") is None
    drive(b, all_final(env.store))


def test_rpc_back_after_an_outage_ends_the_backoff_at_once(env: Env) -> None:
    env.append(12)
    b = env.batcher(**LONG)
    drive(b, all_final(env.store))
    port = env.anvil.port
    stop_process(env.anvil.proc)  # SIGTERM: anvil writes its state file
    env.append(5)
    b.run_once()
    assert b.status()["consecutive_failures"] == 1
    b.run_once()  # still down
    restarted = start_anvil(port=port, state=env.tmp / "anvil-state.json")
    env.anvil.proc = restarted.proc
    b.run_once()  # the RPC answers: reconcile, seal, disperse, submit in this pass
    assert b.status()["consecutive_failures"] == 0, b.status()
    assert env.store.batches()[-1].state in ("submitted", "posted"), b.status()
    drive(b, all_final(env.store))


def test_da_that_answers_but_refuses_puts_keeps_the_backoff(env: Env) -> None:
    env.append(12)
    b = env.batcher(**LONG)
    env.da.set_faults(put_503=True)  # /health answers, every put is refused with 503
    b.run_once()
    assert b.status()["consecutive_failures"] == 1
    for _ in range(3):
        b.run_once()  # the DA never went silent: no retry before the backoff ends
    assert b.status()["consecutive_failures"] == 1 and env.store.batch_counts()["dispersed"] == 0


def test_a_pass_blocked_on_a_slow_da_is_not_skipped_by_the_scheduler(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.append(12)
    env.da.set_faults(latency_ms=1500)  # each put blocks the pass for 1.5 s, 30 polls of 0.05 s
    b = env.batcher()
    caplog.set_level(logging.WARNING, logger="apscheduler")
    b.start()
    try:
        deadline = time.monotonic() + 120
        while env.store.batch_counts()["dispersed"] + env.store.batch_counts()["submitted"] + \
                env.store.batch_counts()["posted"] + env.store.batch_counts()["final"] == 0:
            assert time.monotonic() < deadline, b.status()
            time.sleep(0.1)
    finally:
        b.stop()
    skipped = [r.getMessage() for r in caplog.records if "maximum number of running instances" in r.getMessage()]
    assert skipped == []
