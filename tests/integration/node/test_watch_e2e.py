"""The four lies of issue 22, end to end with real processes: anvil, the DA server, `loraledger node run` (tiny
Llama + peft adapters, real receipts), `loraledger batcher run`, and `loraledger watch`, with no governance
transaction. Clients hand their saved answers to the watcher (the SDK's `send_receipt` to `POST /receipts`, and a
`--receipts` directory); each lying node is challenged by the watcher (or `loraledger dispute open --receipt`)
and slashed, and the challenger is paid (stake moved to it, bonds withdrawn).

How each node lies, honestly built (nothing here mocks the contract or the node):

- **equivocation** (node C, dev account 7): C answers, loses its record store, restarts and signs another leaf for
  seq 0. Nothing but deleting the store file between two runs of the real node.
- **bad root, misplaced record** (node B, dev account 8): B answers; its first batch is posted honestly by the real
  batcher (the watcher holds receipts for it and does nothing). Then B's key posts, with the library's encoder, DA
  client and ledger wrapper (`_post_lie`), a batch whose root its payload does not rebuild (seq 4 changed in the
  root), and a batch for seqs [6, 9) whose payload holds B's records 9..11 (rebuilding the posted root: records
  outside the batch's range).
- **withheld payload** (node B): its batch [9, 12) goes to a private DA server only B reads.
- **dropped records** (node A, dev account 1): A answers, loses its store before posting, never posts them; past
  the maximum posting delay the watcher's omission slashes at once (and `loraledger dispute open --receipt` of a
  client does the same for another seq).

Windows are passed by moving this module's own anvil's clock (`advance_clock`, what `loraledger devnet advance`
does). The watcher runs with `--grace 30 --confirmations 0`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from attribution.chain.devclock import advance_clock
from attribution.chain.disputes import BatchDisputes
from attribution.chain.keys import dev_keys
from attribution.da.client import DAClient
from attribution.da.codec import CERT_VERSION, parse_commitment
from attribution.devnet.processes import free_port, stop_process
from attribution.records import Record
from attribution.records.payload import encode_batch
from attribution.records.tree import record_tree
from attribution.store import RecordStore
from attribution.verify.client import send_receipt
from tests.fixtures.batches import NodeAccount, node_account
from tests.fixtures.chain import AnvilNode, DeployedContracts, own_anvil
from tests.fixtures.da import DAServerFactory, DAServerProcess
from tests.integration.node.conftest import (
    API_KEY,
    NodeEnv,
    run_batchers_until_final,
    second_node_env,
    start_node,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

anvil = pytest.fixture(scope="module", name="anvil")(own_anvil)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
NODE_B, NODE_C, WATCHER, CLIENT = 8, 7, 9, 5  # dev accounts (node A is the deployment's node, account 1)
DAY = 24 * 3600
CLI = str(Path(sys.executable).parent / "loraledger")


def _ask(url: str, i: int) -> dict[str, Any]:
    body = {"model": "ad-a", "prompt": f"question {i}", "max_tokens": 3, "seed": i}
    r = httpx.post(url + "/v1/completions", json=body, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    return {"request": body, "response": r.json()}


def _serve(env: NodeEnv, n: int, first: int = 0) -> list[dict[str, Any]]:
    """Start the node, ask `n` questions one by one (seqs in order), stop it."""
    node = start_node(env)
    try:
        return [_ask(node.url, first + i) for i in range(n)]
    finally:
        node.stop()


def _wipe(env: NodeEnv) -> None:
    """The node loses its record store (what it signed is gone from its disk)."""
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(env.store_path) + suffix).unlink(missing_ok=True)


@dataclass
class WatcherProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    receipts: Path

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/v1/status", timeout=10).json())

    def wait(self, what: str, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 180) -> list[Any]:
        """Poll `/v1/status` until `pred(challenges)` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            challenges = self.status()["challenges"]
            if pred(challenges):
                return challenges
            time.sleep(0.3)
        raise AssertionError(f"watcher never got to: {what}\n{json.dumps(self.status(), indent=1)}\n"
                             f"{self.log.read_text()[-3000:]}")


def _of(challenges: list[dict[str, Any]], node: str, kind: str, status: str | None = None) -> list[dict[str, Any]]:
    return [c for c in challenges if c["node"].lower() == node.lower() and c["kind"] == kind
            and (status is None or c["status"] == status)]


@dataclass
class World:
    d: DeployedContracts
    anvil: AnvilNode
    da: DAServerProcess
    private_da: DAServerProcess
    watcher: WatcherProcess
    a: NodeEnv
    b: NodeEnv
    c: NodeEnv
    node_b: NodeAccount
    node_c: NodeAccount
    tmp: Path

    @property
    def disputes(self) -> BatchDisputes:
        c = self.d.deployment.bind(self.d.client)
        assert c.disputes is not None
        return c.disputes

    def faults(self, node: str) -> list[dict[str, Any]]:
        """`FaultProven` events against `node`."""
        return [e.args for e in self.disputes.events("FaultProven", node=node)]

    def watcher_address(self) -> str:
        return str(self.d.accounts[WATCHER].address)

    def paid(self, who: str) -> int:
        return self.d.token.balance_of(who)

    def withdrawn(self, who: str) -> int:
        return sum(int(e.args["amount"]) for e in self.disputes.events("Withdrawn", account=who))


@pytest.fixture(scope="module")
def world(node_env: NodeEnv, deployment: DeployedContracts, anvil: AnvilNode, da_server_factory: DAServerFactory,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("watch-e2e")
    node_b, node_c = node_account(deployment, NODE_B), node_account(deployment, NODE_C)
    # B lies five times and must stay active (stake >= the minimum bond) to post its last lie: bond more than the
    # minimum (every slash takes half)
    deployment.nodes.approve_and_bond(deployment.token, 200 * deployment.nodes.min_bond(), account=node_b.account)
    env_b = second_node_env(node_env, tmp / "node-b", NODE_B)
    env_c = second_node_env(node_env, tmp / "node-c", NODE_C)
    da, private_da = da_server_factory.start(kzg=False), da_server_factory.start(kzg=False)
    receipts = tmp / "receipts"
    receipts.mkdir()
    port = free_port()
    log = tmp / "watch.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [CLI, "watch", "--rpc-url", deployment.rpc_url, "--da-url", da.url, "--deployment",
             str(node_env.root / "deployments" / f"{deployment.chain_id}.json"), "--state", str(tmp / "watch.db"),
             "--receipts", str(receipts), "--dev-account", str(WATCHER), "--port", str(port), "--grace", "30",
             "--confirmations", "0", "--poll", "0.3"], cwd=tmp, stdout=out, stderr=subprocess.STDOUT, env=environ)
    watcher = WatcherProcess(proc, f"http://127.0.0.1:{port}", log, receipts)
    try:
        for _ in range(300):
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(watcher.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield World(deployment, anvil, da, private_da, watcher, node_env, env_b, env_c, node_b, node_c, tmp)
    finally:
        stop_process(proc, timeout=30)


@pytest.fixture(scope="module")
def answers(world: World) -> dict[str, list[dict[str, Any]]]:
    """Every node's first life, the three at once: A answers 3, B answers 3 (posted honestly by the batcher), C
    answers 2; then C loses its store and answers 1 more (seq 0 again) and B answers 9 more."""
    with ThreadPoolExecutor(3) as pool:
        a, b, c = pool.map(lambda args: _serve(*args), [(world.a, 3), (world.b, 3), (world.c, 2)])
    _wipe(world.a)  # A drops what it signed before any of it was posted
    _wipe(world.c)
    run_batchers_until_final(world.anvil, world.da.url, [(world.b, dev_keys()[NODE_B])])
    with ThreadPoolExecutor(2) as pool:
        c2, b2 = pool.map(lambda args: _serve(*args), [(world.c, 1, 100), (world.b, 9, 3)])
    return {"a": a, "b": b + b2, "c": c, "c2": c2}


def test_equivocation_two_leaves_for_one_seq(world: World, answers: dict[str, list[dict[str, Any]]]) -> None:
    c = world.node_c.address
    first, again = answers["c"][0], answers["c2"][0]
    assert first["response"]["attribution"]["seq"] == again["response"]["attribution"]["seq"] == 0
    assert first["response"]["attribution"]["leaf"] != again["response"]["attribution"]["leaf"]
    # C's first-life answers as files in the watcher's --receipts directory; the second through the SDK
    for i, saved in enumerate(answers["c"]):
        (world.watcher.receipts / f"c-{i}.json").write_text(json.dumps(saved))
    stake, paid = world.d.nodes.node(c).bonded, world.paid(world.watcher_address())
    assert send_receipt(world.watcher.url, again)["status"] == "held"
    found = world.watcher.wait("equivocation proven", lambda ch: bool(_of(ch, c, "equivocation", "upheld")))
    proven = _of(found, c, "equivocation")[0]
    assert proven["index"] == 0 and int(proven["slashed"]) == stake // 2
    faults = world.faults(c)
    assert len(faults) == 1 and faults[0]["challenger"] == world.watcher_address()
    assert world.paid(world.watcher_address()) - paid == int(faults[0]["toChallenger"]) == stake // 4
    assert world.d.nodes.node(c).bonded == stake - stake // 2


def _records(env: NodeEnv, start: int, end: int) -> list[Record]:
    store = RecordStore(env.store_path, readonly=True)
    try:
        return store.range(start, end)
    finally:
        store.close()


def _post_lie(w: World, da_url: str, first: int, count: int, payload_records: list[Record],
              root_records: list[Record], times: list[int]) -> int:
    """B's key posts batch [first, first + count) with the payload of `payload_records` put on DA at `da_url`,
    the root of `root_records` and the header times of `times` (the library's encoder, DA client and ledger)."""
    ledger = bytes.fromhex(w.d.ledger.address[2:])
    payload = encode_batch(w.d.chain_id, ledger, payload_records[0].node, payload_records[0].seq, payload_records)
    with DAClient(da_url, timeout=30) as da:
        commitment = da.put(payload)
    # a certificate v3 (chunk root): an honest node could publish any chunk of this payload on-chain
    assert parse_commitment(commitment).version == CERT_VERSION
    root = record_tree(root_records).root_bytes
    return w.node_b.ledger.post_batch(first, count, root, commitment, first_timestamp=min(times),
                                      last_timestamp=max(times)).batch_id


def test_bad_root_and_misplaced_records(world: World, answers: dict[str, list[dict[str, Any]]],
                                        tmp_path: Path) -> None:
    b, w = world.node_b.address, world.watcher
    assert world.d.ledger.next_seq(b) == 3  # the real batcher posted B's first life
    for saved in answers["b"]:
        send_receipt(w.url, saved)
    w.wait("B's honest receipts checked", lambda ch: w.status()["receipts"].get("in_batch", 0) >= 3)
    assert _of(w.status()["challenges"], b, "omission") == []  # the honest batch: nothing to challenge
    records = _records(world.b, 3, 12)
    assert [r.seq for r in records] == list(range(3, 12))
    stake = world.d.nodes.node(b).bonded
    # a root its payload does not rebuild: seq 4 changed in the root only
    changed = [records[0], replace(records[1], completion_tokens=records[1].completion_tokens + 50), records[2]]
    bad_root = _post_lie(world, world.da.url, 3, 3, records[0:3], changed, [r.timestamp for r in records[0:3]])
    # records 9..11 in the root of batch [6, 9): outside its range
    misplaced = _post_lie(world, world.da.url, 6, 3, records[6:9], records[6:9],
                          [r.timestamp for r in records[3:6]])
    found = w.wait("misplaced record proven and omissions opened",
                   lambda ch: bool(_of(ch, b, "commission", "upheld")) and len(_of(ch, b, "omission", "open")) == 6)
    commission = _of(found, b, "commission")[0]
    assert commission["batchId"] == misplaced and int(commission["slashed"]) == stake // 2
    opened = {c["index"]: c for c in _of(found, b, "omission")}
    assert sorted(opened) == [3, 4, 5, 6, 7, 8] and opened[4]["batchId"] == bad_root
    # B answers the seqs its root really holds (3 and 5) with `loraledger dispute respond`: the bonds go to B
    tree = record_tree(changed)
    for seq, index in ((3, 0), (5, 2)):
        proof = tmp_path / f"proof-{seq}.json"
        proof.write_text(json.dumps(["0x" + p.hex() for p in tree.get_proof_bytes(index)]))
        done = subprocess.run([CLI, "dispute", "respond", str(opened[seq]["disputeId"]), "--proof", str(proof),
                               "--rpc-url", world.d.rpc_url, "--deployment", str(world.b.root / "deployments" /
                                                                                 f"{world.d.chain_id}.json"),
                               "--dev-account", str(NODE_B), "--json"], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path, env={k: v for k, v in os.environ.items()
                                                 if not k.startswith("LORALEDGER_")})
        assert done.returncode == 0 and json.loads(done.stdout)["status"] == "answered", done.stderr
    # past the response window the rest are settled by the watcher: slashed
    advance_clock(world.d.client, 2 * DAY + 1)
    world.anvil.rpc("anvil_mine", 1)
    found = w.wait("unanswered omissions settled", lambda ch: len(_of(ch, b, "omission", "upheld")) == 4
                   and len(_of(ch, b, "omission", "answered")) == 2)
    assert sorted(c["index"] for c in _of(found, b, "omission", "upheld")) == [4, 6, 7, 8]
    assert all(int(c["slashed"]) > 0 for c in _of(found, b, "omission", "upheld"))
    assert world.disputes.owed(b) == 2 * world.disputes.omission_bond()  # B's two answers earned the bonds


def test_withheld_payload(world: World, answers: dict[str, list[dict[str, Any]]]) -> None:
    b, w = world.node_b.address, world.watcher
    records = _records(world.b, 9, 12)
    stake = world.d.nodes.node(b).bonded
    withheld = _post_lie(world, world.private_da.url, 9, 3, records, records, [r.timestamp for r in records])
    bond = world.disputes.availability_bond()
    withdrawn = world.withdrawn(world.watcher_address())
    advance_clock(world.d.client, 31)  # past --grace 30
    found = w.wait("availability challenge opened", lambda ch: bool(_of(ch, b, "availability", "open")))
    assert _of(found, b, "availability")[0]["batchId"] == withheld
    advance_clock(world.d.client, 2 * DAY + 1)
    found = w.wait("availability upheld", lambda ch: bool(_of(ch, b, "availability", "upheld")))
    assert int(_of(found, b, "availability")[0]["slashed"]) == stake // 2
    assert world.disputes.is_unavailable(withheld)
    deadline = time.monotonic() + 60
    while world.withdrawn(world.watcher_address()) - withdrawn < bond and time.monotonic() < deadline:
        time.sleep(0.3)
    assert world.withdrawn(world.watcher_address()) - withdrawn >= bond  # the bond came back


def test_dropped_records_past_the_max_posting_delay(world: World, answers: dict[str, list[dict[str, Any]]],
                                                    tmp_path: Path) -> None:
    a, w = world.d.node.address, world.watcher
    for saved in answers["a"][:2]:
        assert send_receipt(w.url, saved)["status"] == "held"
    time.sleep(2)
    assert _of(w.status()["challenges"], a, "omission") == []  # not due yet
    assert world.d.ledger.next_seq(a) == 0
    advance_clock(world.d.client, 7 * DAY)
    paid = world.paid(world.watcher_address())
    found = w.wait("omissions of A upheld", lambda ch: len(_of(ch, a, "omission", "upheld")) == 2)
    assert sorted(c["index"] for c in _of(found, a, "omission")) == [0, 1]
    assert all(c["batchId"] == 0 and int(c["slashed"]) > 0 for c in _of(found, a, "omission"))
    # (>=: C's overdue seq 1 below may be settled in the same moment)
    assert world.paid(world.watcher_address()) - paid >= sum(int(f["toChallenger"]) for f in world.faults(a)) > 0
    # a client with the third saved answer challenges with the CLI: slashed at once, the client is paid
    answer_file = tmp_path / "answer.json"
    answer_file.write_text(json.dumps(answers["a"][2]))
    client = world.d.accounts[CLIENT].address
    before = world.paid(client)
    done = subprocess.run([CLI, "dispute", "open", "--receipt", str(answer_file), "--rpc-url", world.d.rpc_url,
                           "--deployment", str(world.a.root / "deployments" / f"{world.d.chain_id}.json"), "--json"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["status"], out["index"]) == ("upheld", 2) and int(out["slashed"]) > 0
    assert world.paid(client) - before == int(out["slashed"]) // 2
    # C's first-life receipt for seq 1 was never posted either: overdue now, the watcher slashes C for it too
    c = world.node_c.address
    w.wait("C's unposted seq 1 upheld", lambda ch: any(x["index"] == 1 for x in _of(ch, c, "omission", "upheld")))
