"""The batcher inside the node (issue 19 item 6): one `loraledger node run` process on a real anvil and the real DA
server over HTTP serves answers and takes their records to `final` with its own batcher; its `/metrics` carries
the batcher's metrics; a second batcher on the same store is refused while it runs (and a node refuses to start
beside one); SIGTERM stops it in order (answers, store, batcher) with exit 0.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

import httpx
import pytest

from tests.fixtures.da import DAServerFactory, DAServerProcess
from tests.integration.node.conftest import API_KEY, NodeEnv, second_node_env, start_node, write_config

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def da(da_server_factory: DAServerFactory) -> DAServerProcess:
    return da_server_factory.start(kzg=False)


def _with_batcher(env: NodeEnv, root: pathlib.Path, da: DAServerProcess) -> NodeEnv:
    """A node of its own (dev account 1: the bonded node, a fresh store) whose batcher runs inside it."""
    return second_node_env(env, root, 1, batcher={"enabled": True, "da_url": da.url, "seal_interval_s": 0.5,
                                                  "seal_min_records": 4, "poll_interval_s": 0.1,
                                                  "confirmations": 2})


def _status(url: str, seq: int) -> str:
    r = httpx.get(f"{url}/v1/attribution/records/{seq}", headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def test_one_node_process_takes_its_answers_to_final(node_env: NodeEnv, da: DAServerProcess, miner: None,
                                                      tmp_path: pathlib.Path) -> None:
    env = _with_batcher(node_env, tmp_path / "node", da)
    node = start_node(env)
    try:
        seqs = []
        for i in range(6):
            body = {"model": "ad-a" if i % 2 else "tiny-llama", "prompt": f"question {i}", "max_tokens": 3}
            r = httpx.post(f"{node.url}/v1/completions", json=body, headers=AUTH, timeout=120)
            assert r.status_code == 200, r.text
            seqs.append(r.json()["attribution"]["seq"])
        last_final = f"loraledger_batcher_last_final_seq {float(max(seqs))}"
        deadline = time.monotonic() + 180
        while any(_status(node.url, s) != "final" for s in seqs) or \
                last_final not in (metrics := httpx.get(f"{node.url}/metrics", timeout=30).text):
            assert node.proc.poll() is None and time.monotonic() < deadline, node.log_text()[-3000:]
            time.sleep(0.3)
        record = httpx.get(f"{node.url}/v1/attribution/records/{seqs[-1]}", headers=AUTH, timeout=30).json()
        assert record["batch"]["tx_hash"] and record["batch"]["onchain_batch_id"] and record["proof"] is not None
        assert 'loraledger_batcher_batches{state="final"}' in metrics
        assert "loraledger_requests_total" in metrics  # one registry: the node's and the batcher's names

        # one batcher per store: `loraledger batcher run` on this store is refused while the node runs
        cli = pathlib.Path(sys.executable).with_name("loraledger")
        d = env.deployment
        other = subprocess.run(
            [str(cli), "batcher", "run", "--db", str(env.store_path), "--rpc-url", d.rpc_url, "--da-url", da.url,
             "--deployment", str(env.root / "deployments" / f"{d.chain_id}.json")],
            capture_output=True, text=True, timeout=120, cwd=env.root)
        assert other.returncode == 2, other.stderr
        assert "another batcher runs on" in other.stderr and "batcher.enabled = false" in other.stderr
    finally:
        code = node.stop()
    assert code == 0, node.log_text()[-3000:]
    log = node.log_text()
    assert log.index("record store flushed") < log.index("batcher stopped"), log[-3000:]


def test_a_node_does_not_start_its_batcher_beside_another(node_env: NodeEnv, da: DAServerProcess,
                                                          tmp_path: pathlib.Path) -> None:
    env = _with_batcher(node_env, tmp_path / "node", da)
    env.store_path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(str(env.store_path) + ".batcher.lock", "w")  # noqa: SIM115 - held for the test
    import fcntl

    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running `loraledger batcher run` holds
    try:
        with pytest.raises(RuntimeError, match="another batcher runs on") as e:
            start_node(env, timeout=240)
        assert "exited with 2" in str(e.value)
        write_config(env, batcher={"enabled": False})
        node = start_node(env)  # with its batcher off it serves beside the other one
        try:
            r = httpx.post(f"{node.url}/v1/completions", json={"model": "tiny-llama", "prompt": "hi", "max_tokens": 2},
                           headers=AUTH, timeout=120)
            assert r.status_code == 200 and _status(node.url, r.json()["attribution"]["seq"]) == "stored"
            assert "loraledger_batcher_backlog_records" not in httpx.get(f"{node.url}/metrics", timeout=30).text
        finally:
            assert node.stop() == 0
    finally:
        lock.close()
