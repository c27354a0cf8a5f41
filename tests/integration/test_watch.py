"""The watcher (`attribution.watch`) against a real anvil, the real contracts and a real DA server, each lie made
the way a node would make it (`tests.fixtures.batches.publish` signs, encodes, puts and posts with the library;
no contract is mocked): every lie is challenged or proven by `Watcher.run_once`, the node is slashed, the watcher
is paid (stake moved to it, bond withdrawn), and an honest node's batches and receipts cause nothing. The HTTP
intake answers JSON 4xx for what is not a receipt of this deployment; the state file keeps a fault from being
challenged twice, across a restart too; a reorg forgets the batches it removed.

This module moves its chain's clock (response windows, the maximum posting delay), so it has its own anvil.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attribution.chain.client import ChainClient
from attribution.chain.devclock import advance_clock
from attribution.chain.disputes import BatchDisputes, DisputeKind, DisputeStatus
from attribution.chain.txmgr import TxManager, TxMgrConfig
from attribution.da.client import DAClient
from attribution.records.payload import encode_batch
from attribution.records.receipt import sign_receipt
from attribution.records.tree import record_tree
from attribution.verify.client import ClientError, send_receipt
from attribution.watch import WatchConfig, Watcher, WatchState
from attribution.watch.api import create_app
from tests.fixtures.batches import make_answer, make_records, node_account, publish
from tests.fixtures.chain import AnvilNode, DeployedContracts, own_anvil
from tests.fixtures.cli import run_cli
from tests.fixtures.da import DAServerFactory, DAServerProcess

anvil = pytest.fixture(scope="module", name="anvil")(own_anvil)

WATCHER = 9  # dev account of the watcher
DAY = 24 * 3600


@pytest.fixture(scope="module")
def private_da(da_server_factory: DAServerFactory) -> DAServerProcess:
    """A DA server only the lying node uses: what it puts there, the watcher's DA never has."""
    return da_server_factory.start(kzg=False)


@dataclasses.dataclass
class World:
    d: DeployedContracts
    anvil: AnvilNode
    da: DAClient
    tmp: Path

    def disputes(self) -> BatchDisputes:
        c = self.d.deployment.bind(self.d.client)
        assert c.disputes is not None
        return c.disputes

    def watcher(self, name: str = "watch.db", *, since: int | None = None, da: DAClient | None = None,
                **config: Any) -> Watcher:
        """A watcher signing as dev account 9 through a TxManager, following from block `since` (default: the
        head now, so earlier tests' batches are not its business)."""
        acct = self.d.accounts[WATCHER]
        client = ChainClient(self.d.rpc_url, acct)
        disputes = self.d.deployment.bind(client).disputes
        assert disputes is not None
        disputes.use_txmgr(TxManager(client, acct, TxMgrConfig(poll_s=0.05)))
        start = client.block_number() if since is None else since
        state = WatchState(self.tmp / name, chain_id=self.d.chain_id, ledger=self.d.ledger.address,
                           disputes=disputes.address, deploy_block=start)
        cfg = WatchConfig(**{"confirmations": 0, "grace_s": 0, **config})
        return Watcher(self.d.ledger, disputes, da or self.da, state, deploy_block=start, config=cfg)

    def now(self) -> int:
        return int(self.anvil.w3.eth.get_block("latest")["timestamp"])

    def stake(self, node: str) -> int:
        return self.d.nodes.node(node).bonded

    def paid(self) -> int:
        return self.d.token.balance_of(self.d.accounts[WATCHER].address)


@pytest.fixture
def world(deployment: DeployedContracts, anvil: AnvilNode, module_da_client: DAClient, tmp_path: Path) -> World:
    return World(deployment, anvil, module_da_client, tmp_path)


def _withdrawn(w: World) -> int:
    return sum(int(e.args["amount"]) for e in w.disputes().events("Withdrawn",
                                                                  account=w.d.accounts[WATCHER].address))


def _only_challenge(watcher: Watcher) -> Any:
    rows = watcher.state.challenges()
    assert len(rows) == 1, [r.to_json() for r in rows]
    return rows[0]


def test_honest_batches_and_receipts_cause_nothing(world: World) -> None:
    node = node_account(world.d, 1)
    watcher = world.watcher()
    first = node.ledger.next_seq(node.address)
    answer, record = make_answer(world.d, node, first)
    records = [record, *make_records(world.d, node.address, first + 1, 4, seed=1)]
    pub = publish(world.d, node, world.da, records)
    assert watcher.add_evidence(answer, "test")["status"] == "held"
    count = world.disputes().dispute_count()
    watcher.run_once()
    watcher.run_once()
    assert watcher.state.verdict_counts() == {"ok": 1}
    assert watcher.state.receipt_counts() == {"in_batch": 1}
    assert watcher.state.challenges() == [] and world.disputes().dispute_count() == count
    covering = watcher.state.batch_covering(node.address, first)
    assert covering is not None and covering.batch_id == pub.batch_id


def test_cli_once_prints_the_status_and_bad_input_exits_2(world: World, module_da: DAServerProcess,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`loraledger watch --once` through the real entry point: one round, the status as JSON; a missing
    `--receipts` path exits 2 with one `error:` line. (Second in the module: it follows from the deploy block, and
    only the honest batch is there yet.)"""
    import os

    for key in [k for k in list(os.environ) if k.startswith("LORALEDGER_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(world.tmp)
    file = world.d.deployment.save(world.tmp / "deployment.json")
    node = node_account(world.d, 6)
    answer, _ = make_answer(world.d, node, node.ledger.next_seq(node.address) + 3000)
    (world.tmp / "answer.json").write_text(json.dumps(answer))

    def run(*args: str) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, "watch", "--rpc-url", world.d.rpc_url, "--deployment", str(file),
                       "--da-url", module_da.url, "--dev-account", str(WATCHER), "--state", str(world.tmp / "cli.db"),
                       *args)

    code, out, err = run("--once", "--receipts", str(world.tmp / "answer.json"))
    assert code == 0, err
    status = json.loads(out)
    assert status["receipts"] == {"held": 1} and status["address"] == world.d.accounts[WATCHER].address
    assert status["disputes"] == world.disputes().address and status["challenges"] == []
    code, out, err = run("--once", "--receipts", str(world.tmp / "nowhere"))
    assert code == 2 and err.strip().startswith("error: --receipts") and "does not exist" in err, err


def test_misplaced_record_is_proven_at_once(world: World) -> None:
    """The payload's header says seqs F+5.., the post says F..: the payload's records rebuild the posted root, so
    each is in the root outside the batch's range."""
    node = node_account(world.d, 2)
    watcher = world.watcher()
    first = node.ledger.next_seq(node.address)
    shifted = make_records(world.d, node.address, first + 5, 3, seed=2)
    ledger = bytes.fromhex(world.d.ledger.address[2:])
    commitment = world.da.put(encode_batch(world.d.chain_id, ledger, shifted[0].node, first + 5, shifted))
    ts = shifted[0].timestamp
    posted = node.ledger.post_batch(first, 3, record_tree(shifted).root_bytes, commitment, first_timestamp=ts,
                                    last_timestamp=ts)
    stake, paid = world.stake(node.address), world.paid()
    stats = watcher.run_once()
    assert watcher.state.verdict_counts() == {"header_mismatch": 1}
    ch = _only_challenge(watcher)
    assert (ch.kind, ch.status, ch.batch_id, ch.slashed) == ("commission", "upheld", posted.batch_id,
                                                             str(stake // 2)), stats.actions
    d = world.disputes().dispute(ch.dispute_id)  # type: ignore[arg-type]
    assert (d.kind, d.status) == (DisputeKind.COMMISSION, DisputeStatus.UPHELD)
    assert world.stake(node.address) == stake - stake // 2
    assert world.paid() - paid == stake // 4
    count = world.disputes().dispute_count()
    watcher.run_once()  # never twice
    assert world.disputes().dispute_count() == count


def test_leaf_conflicting_with_a_held_receipt_is_proven_at_once(world: World) -> None:
    """The node signed a receipt for seq F, then posted (in a batch that verifies) another record at F."""
    node = node_account(world.d, 3)
    watcher = world.watcher()
    first = node.ledger.next_seq(node.address)
    answer, signed = make_answer(world.d, node, first)
    replaced = dataclasses.replace(signed, completion_tokens=signed.completion_tokens + 100)
    publish(world.d, node, world.da, [replaced, *make_records(world.d, node.address, first + 1, 2, seed=3)])
    watcher.add_evidence(answer, "test")
    stake = world.stake(node.address)
    watcher.run_once()
    ch = _only_challenge(watcher)
    assert (ch.kind, ch.status, ch.idx, ch.slashed) == ("receipt_conflict", "upheld", first, str(stake // 2))
    assert watcher.state.verdict_counts() == {"ok": 1}
    assert world.disputes().dispute(ch.dispute_id).kind is DisputeKind.COMMISSION  # type: ignore[arg-type]


def test_two_receipts_for_one_seq_are_proven_equivocation(world: World) -> None:
    node = node_account(world.d, 5)
    watcher = world.watcher()
    seq = node.ledger.next_seq(node.address) + 40
    first, _ = make_answer(world.d, node, seq, text="one")
    second, _ = make_answer(world.d, node, seq, text="two")
    assert watcher.add_evidence(first, "a")["equivocation"] is False
    assert watcher.add_evidence(second, "b")["equivocation"] is True
    stake, paid = world.stake(node.address), world.paid()
    watcher.run_once()
    ch = _only_challenge(watcher)
    assert (ch.kind, ch.status, ch.slashed) == ("equivocation", "upheld", str(stake // 2))
    assert world.paid() - paid == stake // 4
    # a restart on the same state file proves nothing again
    again = world.watcher(since=watcher.deploy_block)
    count = world.disputes().dispute_count()
    again.run_once()
    assert world.disputes().dispute_count() == count
    assert watcher.state.receipt_counts() == {"challenged": 2}


def test_withheld_payload_is_challenged_and_slashed_when_unanswered(world: World, private_da: DAServerProcess
                                                                    ) -> None:
    node = node_account(world.d, 7)
    watcher = world.watcher(grace_s=60)
    with DAClient(private_da.url, timeout=30) as elsewhere:
        first = node.ledger.next_seq(node.address)
        pub = publish(world.d, node, elsewhere, make_records(world.d, node.address, first, 3, seed=7))
    watcher.run_once()
    assert watcher.state.verdict_counts() == {"payload_missing": 1}
    assert watcher.state.challenges() == []  # inside the grace period
    advance_clock(world.d.client, 61)
    bond = world.disputes().availability_bond()
    withdrawn = _withdrawn(world)
    watcher.run_once()
    ch = _only_challenge(watcher)
    assert (ch.kind, ch.status, ch.batch_id) == ("availability", "open", pub.batch_id)
    watcher.run_once()  # still inside the response window: nothing more
    assert _only_challenge(watcher).status == "open"
    advance_clock(world.d.client, 2 * DAY + 1)
    stake, paid = world.stake(node.address), world.paid()
    watcher.run_once()
    ch = _only_challenge(watcher)
    assert (ch.status, ch.slashed) == ("upheld", str(stake // 2))
    assert world.disputes().is_unavailable(pub.batch_id)
    assert world.paid() - paid == stake // 4
    assert _withdrawn(world) - withdrawn == bond  # the bond came back


def test_an_honest_node_resolves_the_availability_challenge_and_keeps_the_bond(world: World,
                                                                              private_da: DAServerProcess) -> None:
    """The watcher's DA endpoint lacks a payload the honest node did put (on another DA server): past the grace it
    challenges; the node's responder (`attribution.responder`, the chunk read back from DA under the certificate
    v3's chunk root) resolves it; the watcher records the challenge as answered. Nothing is slashed; the bond is
    the node's."""
    from attribution.chain.contracts import Ledger
    from attribution.responder import AnswerSource, Responder, ResponderConfig
    from attribution.store import RecordStore

    node = node_account(world.d, 6)
    with DAClient(private_da.url, timeout=30, max_retries=1) as blind:
        watcher = world.watcher(da=blind)
        pub = publish(world.d, node, world.da, make_records(world.d, node.address, node.ledger.next_seq(node.address),
                                                           4, seed=6))
        stake, owed = world.stake(node.address), world.disputes().owed(node.address)
        watcher.run_once()
        ch = _only_challenge(watcher)
        assert (ch.kind, ch.status, ch.batch_id) == ("availability", "open", pub.batch_id)
        client = ChainClient(world.d.rpc_url, node.account)
        disputes = world.d.deployment.bind(client).disputes
        assert disputes is not None
        store = RecordStore(world.tmp / "node-records.db", bytes.fromhex(node.address[2:]))  # empty: DA has it
        try:
            answers = AnswerSource(store, Ledger(client, world.d.ledger.address, world.d.ledger.abi), world.da,
                                   start_block=world.d.deployment.deploy_block)
            responder = Responder(disputes, TxManager(client, node.account, TxMgrConfig(poll_s=0.05)), answers,
                                  ResponderConfig(confirmations=1, start_block=world.d.deployment.deploy_block),
                                  state_path=world.tmp / "responder.json")
            for _ in range(4):
                responder.run_once()
                world.anvil.rpc("evm_mine")
        finally:
            store.close()
        watcher.run_once()
    ch = _only_challenge(watcher)
    assert ch.status == "answered"
    assert world.disputes().dispute(ch.dispute_id).status is DisputeStatus.ANSWERED  # type: ignore[arg-type]
    assert world.stake(node.address) == stake and not world.disputes().is_unavailable(pub.batch_id)
    assert world.disputes().owed(node.address) - owed == world.disputes().availability_bond()


def test_root_the_payload_does_not_rebuild_loses_the_omission_game(world: World) -> None:
    """The node posts a root that its payload does not rebuild; a client's receipt for a record of the payload is
    not in that root: the watcher opens an omission the node cannot answer and settles it after the window."""
    node = node_account(world.d, 8)
    watcher = world.watcher()
    first = node.ledger.next_seq(node.address)
    answer, record = make_answer(world.d, node, first + 1)
    records = [make_records(world.d, node.address, first, 1, seed=8)[0], record]
    pub = publish(world.d, node, world.da, records, root=b"\x42" * 32)
    watcher.add_evidence(answer, "test")
    watcher.run_once()
    assert watcher.state.verdict_counts() == {"root_mismatch": 1}
    ch = _only_challenge(watcher)
    assert (ch.kind, ch.status, ch.batch_id, ch.idx) == ("omission", "open", pub.batch_id, first + 1)
    advance_clock(world.d.client, 2 * DAY + 1)
    stake = world.stake(node.address)
    watcher.run_once()
    ch = _only_challenge(watcher)
    assert (ch.status, ch.slashed) == ("upheld", str(stake // 2))


def test_unposted_receipt_past_the_max_posting_delay_slashes_at_once(world: World) -> None:
    node = node_account(world.d, 1)
    seq = node.ledger.next_seq(node.address)
    answer, _ = make_answer(world.d, node, seq)
    (world.tmp / "answers").mkdir()
    (world.tmp / "answers" / "a.json").write_text(json.dumps(answer))
    (world.tmp / "answers" / "junk.json").write_text("{not json")
    watcher = world.watcher("watch2.db", receipts_path=world.tmp / "answers")
    watcher.run_once()
    assert watcher.state.receipt_counts() == {"held": 1} and watcher.state.challenges() == []
    advance_clock(world.d.client, 7 * DAY)
    stake, paid, withdrawn = world.stake(node.address), world.paid(), _withdrawn(world)
    watcher.run_once()
    ch = _only_challenge(watcher)
    assert (ch.kind, ch.status, ch.batch_id, ch.slashed) == ("omission", "upheld", 0, str(stake // 2))
    assert world.paid() - paid == stake // 4
    assert _withdrawn(world) - withdrawn == world.disputes().omission_bond()


def test_a_reorg_forgets_the_batches_it_removed(world: World) -> None:
    node = node_account(world.d, 6)  # a node with its whole stake (a slashed one is inactive: it cannot post)
    watcher = world.watcher()
    snap = world.anvil.rpc("evm_snapshot")
    publish(world.d, node, world.da, make_records(world.d, node.address, node.ledger.next_seq(node.address), 2))
    watcher.run_once()
    assert watcher.state.verdict_counts() == {"ok": 1}
    world.anvil.rpc("evm_revert", snap)
    world.d.client.reset_nonce()
    node.ledger.client.reset_nonce()
    world.anvil.rpc("anvil_mine", 3)
    stats = watcher.run_once()
    assert stats.rolled_back_to is not None
    assert watcher.state.verdict_counts() == {}


def _post(client: TestClient, body: Any) -> Any:
    return client.post("/receipts", content=body if isinstance(body, (str, bytes)) else json.dumps(body),
                       headers={"Content-Type": "application/json"})


def test_http_intake_holds_receipts_and_refuses_the_rest_with_json_4xx(world: World) -> None:
    node = node_account(world.d, 1)
    watcher = world.watcher()
    seq = node.ledger.next_seq(node.address) + 1000
    answer, record = make_answer(world.d, node, seq)
    changed: dict[str, Any] = json.loads(json.dumps(answer))
    changed["response"]["choices"][0]["text"] += "!"
    other_record = dataclasses.replace(record, chain_id=record.chain_id + 1)
    foreign = {"record": other_record.to_json(), "receipt": "0x" + sign_receipt(other_record,
                                                                               node.account.key).hex()}
    forged = {"record": record.to_json(), "receipt": "0x" + sign_receipt(record, world.d.accounts[4].key).hex()}
    with TestClient(create_app(watcher, loop=False)) as client:
        r = _post(client, answer)
        assert r.status_code == 201 and r.json()["status"] == "held" and r.json()["seq"] == seq
        assert _post(client, answer).status_code == 200  # already held
        bare = {"record": record.to_json(), "receipt": answer["response"]["attribution"]["receipt"]}
        assert _post(client, bare).json()["status"] == "duplicate"
        for body, status, code in ((b"", 400, "empty_body"), (b"{nope", 400, "bad_json"), ([1], 400, "bad_json"),
                                   (changed, 400, "answer_does_not_verify"), (forged, 400, "wrong_signer"),
                                   ({"record": {"seq": 1}, "receipt": "0x00"}, 400, "bad_record"),
                                   (foreign, 409, "foreign_record"), (b"x" * (2 << 20), 413, "too_large")):
            r = _post(client, body)
            assert r.status_code == status and r.json()["error"]["code"] == code, (code, r.text)
            assert r.json()["error"]["message"]
        chunked = client.post("/receipts", content=iter([b"x" * (1 << 20), b"y" * 10]))  # no Content-Length
        assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "too_large"
        status_body = client.get("/v1/status").json()
        assert status_body["receipts"] == {"held": 1} and status_body["address"] == watcher.address
        metrics = client.get("/metrics").text
        assert 'loraledger_watch_receipts_received_total{result="held"} 1.0' in metrics
        assert 'loraledger_watch_receipts_received_total{result="wrong_signer"} 1.0' in metrics


def test_sdk_hands_a_receipt_to_a_watcher(world: World) -> None:
    """`send_receipt` posts to a watcher's `/receipts` (here the real app under uvicorn in a thread)."""
    import threading

    import uvicorn

    from attribution.devnet.processes import free_port

    node = node_account(world.d, 1)
    watcher = world.watcher()
    answer, _ = make_answer(world.d, node, node.ledger.next_seq(node.address) + 2000)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(watcher, loop=False), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        out = send_receipt(f"http://127.0.0.1:{port}", answer)
        assert out["status"] == "held"
        with pytest.raises(ClientError, match="wrong_signer|recovers"):
            bad = {"record": answer["response"]["attribution"]["record"],
                   "receipt": "0x" + sign_receipt(_record(answer), world.d.accounts[4].key).hex()}
            send_receipt(f"http://127.0.0.1:{port}", bad)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert watcher.state.receipt_counts() == {"held": 1}


def _record(answer: dict[str, Any]) -> Any:
    from attribution.records import Record

    return Record.from_json(answer["response"]["attribution"]["record"])


