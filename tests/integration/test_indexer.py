"""The indexer on a real anvil, the real DA server and a real SQLite file or PostgreSQL cluster (same tests).

One module-wide scenario: two nodes post honest batches, node a also posts one batch of each failing kind, the
registry gets a model, two datasets and an adapter. The indexer must give every batch the verifier's verdict,
serve records by node/seq, adapter, dataset and time with proofs `verifyRecord` accepts, exclude flagged batches
from usage, and fold the registry. Then the `indexer serve` process is SIGKILLed mid-way and restarted, anvil
reorgs the chain under it (`anvil_reorg`), and its database must equal a fresh re-index.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from attribution.chain.client import ChainClient
from attribution.da.client import DAClient
from attribution.devnet.processes import free_port
from attribution.hashing import keccak256
from attribution.indexer.api import create_app
from attribution.indexer.db import head_revision, open_engine
from attribution.indexer.follower import Indexer
from attribution.indexer.schema import batches, metadata, profile_datasets, profiles, records, registry_events
from attribution.records import Record
from attribution.records.payload import encode_batch
from attribution.records.tree import record_tree
from attribution.verify import RecordNotPostedError, Verdict, Verifier
from attribution.verify.client import LedgerClient
from tests.fixtures.batches import (
    ADAPTER_ID,
    CONTRIBUTOR_SHARES,
    DATASETS,
    NodeAccount,
    make_records,
    node_account,
    publish,
    publish_next,
    register_assets,
)
from tests.fixtures.chain import AnvilNode, DeployedContracts
from tests.fixtures.da import DAServerProcess

CLI = str(Path(sys.executable).parent / "loraledger")


@dataclass
class Scenario:
    a: NodeAccount
    b: NodeAccount
    expected: dict[int, Verdict]
    ok_records: list[Record]
    bad_records: list[Record]
    assets: dict[str, Any]


@pytest.fixture(scope="module")
def scenario(deployment: DeployedContracts, anvil: AnvilNode, module_da: DAServerProcess,
             module_da_client: DAClient) -> Scenario:
    d = deployment
    a, b = node_account(d, 1), node_account(d, 5)
    assets = register_assets(d)
    ledger = bytes.fromhex(d.ledger.address[2:])
    expected: dict[int, Verdict] = {}
    ok_records: list[Record] = []
    for node, n, seed in ((a, 9, 1), (b, 6, 2), (a, 5, 3)):
        p = publish_next(d, node, module_da_client, n, seed=seed)
        expected[p.batch_id] = Verdict.OK
        ok_records += p.records
    recs = make_records(d, a.address, a.ledger.next_seq(a.address), 4, seed=4)
    forged = bytearray(encode_batch(d.chain_id, ledger, recs[0].node, recs[0].seq, recs))
    forged[-20] ^= 1
    expected[publish(d, a, module_da_client, recs, payload=bytes(forged)).batch_id] = Verdict.ROOT_MISMATCH
    gone = publish_next(d, a, module_da_client, 3, seed=5)
    payload = encode_batch(d.chain_id, ledger, gone.records[0].node, gone.records[0].seq, gone.records)
    (Path(module_da.data_dir) / "blobs" / f"{keccak256(payload).hex()}.blob").unlink()
    expected[gone.batch_id] = Verdict.PAYLOAD_MISSING
    first = a.ledger.next_seq(a.address)
    theirs = make_records(d, b.address, first, 2, seed=6)
    expected[publish(d, a, module_da_client, make_records(d, a.address, first, 2, seed=6),
                     payload=encode_batch(d.chain_id, ledger, theirs[0].node, first, theirs)).batch_id] = \
        Verdict.HEADER_MISMATCH
    expected[publish_next(d, a, module_da_client, 2, seed=7, payload=b"garbage").batch_id] = Verdict.MALFORMED
    # a scheduled change: dataset 2 goes to another contributor after the change delay; time moves past it
    sched = d.assets.schedule_dataset_change(DATASETS[1], [d.accounts[9].address], [10_000], account=d.deployer)
    anvil.rpc("evm_increaseTime", sched.effective_at - d.client.w3.eth.get_block("latest")["timestamp"] + 1)
    anvil.rpc("evm_mine")
    assets.update(effective_at=sched.effective_at, dataset2_new_contributor=d.accounts[9].address)
    return Scenario(a, b, expected, ok_records, recs, assets)


def _indexer(d: DeployedContracts, url: str, da_url: str, page_blocks: int = 7) -> Indexer:
    return Indexer(open_engine(url), ChainClient(d.rpc_url), d.ledger.address,
                   DAClient(da_url, timeout=30, max_retries=1, backoff=0.01), registry=d.assets.address,
                   deploy_block=d.deployment.deploy_block, confirmations=0, page_blocks=page_blocks)


def _catch_up(idx: Indexer) -> None:
    for _ in range(200):
        stats = idx.sync_once()
        if stats.cursor >= stats.head and stats.pending == 0:
            return
    raise AssertionError("indexer did not catch up")


def _b(x: Any) -> Any:
    return bytes(x) if isinstance(x, (memoryview, bytearray)) else x


def snapshot(url: str) -> dict[str, Any]:
    """Everything the index says, in a canonical form (block bookkeeping and cursor left out)."""
    engine = open_engine(url)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table, order in ((batches, [batches.c.batch_id]), (records, [records.c.node, records.c.seq]),
                             (registry_events, [registry_events.c.block_number, registry_events.c.log_index]),
                             (profiles, [profiles.c.profile_id]),
                             (profile_datasets, [profile_datasets.c.profile_id, profile_datasets.c.position])):
            h = hashlib.sha256()
            n = 0
            for row in conn.execute(sa.select(table).order_by(*order)):
                h.update(repr(tuple(_b(x) for x in row)).encode())
                n += 1
            out[table.name] = (n, h.hexdigest())
    engine.dispose()
    return out


def test_migrations_create_exactly_the_schema(index_db: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = open_engine(index_db)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()
    open_engine(index_db).dispose()  # migrating again is a no-op


def test_indexer_verifies_every_batch_and_serves_queries(
        deployment: DeployedContracts, scenario: Scenario, module_da: DAServerProcess, module_da_client: DAClient,
        index_db: str) -> None:
    d, s = deployment, scenario
    idx = _indexer(d, index_db, module_da.url)
    _catch_up(idx)
    verifier = Verifier(d.ledger, module_da_client, from_block=d.deployment.deploy_block)
    client = TestClient(create_app(idx.engine))

    got = {b["batchId"]: b["verdict"] for b in client.get("/v1/batches").json()["batches"]}
    assert got == {k: v.value for k, v in s.expected.items()}
    for batch_id in s.expected:  # the same verdicts as the standalone verifier
        assert got[batch_id] == verifier.verify_batch(batch_id).verdict.value

    # by adapter: exactly the adapter's records of ok batches, each with a proof the ledger accepts
    by_adapter = client.get("/v1/records", params={"adapter": "0x" + ADAPTER_ID.hex(), "limit": 1000}).json()
    ok_adapter = sorted((r for r in s.ok_records if r.adapter_id == ADAPTER_ID), key=lambda r: (r.node, r.seq))
    mine = [x for x in by_adapter["records"] if x["verdict"] == "ok"]
    for x in by_adapter["records"]:  # the reader builds the JSON from columns: exactly `Record.to_json` and leaf
        rec = Record.from_json(x["record"])
        assert rec.to_json() == x["record"] and x["leaf"] == "0x" + rec.leaf().hex()
    assert sorted((Record.from_json(x["record"]) for x in mine), key=lambda r: (r.node, r.seq)) == ok_adapter
    for x in mine[:4]:
        rec = Record.from_json(x["record"])
        assert d.ledger.verify_record(x["batchId"], rec.abi_values(), x["proof"])
    # by dataset and by time range
    by_ds = client.get("/v1/records", params={"dataset": "0x" + DATASETS[1].hex(), "limit": 1000}).json()["records"]
    assert {x["leaf"] for x in by_ds if x["verdict"] == "ok"} == {"0x" + r.leaf().hex() for r in ok_adapter}
    t0 = min(r.timestamp for r in s.ok_records)
    window = client.get("/v1/records", params={"from_ts": t0, "to_ts": t0 + 2, "node": s.a.address}).json()
    assert {x["record"]["timestamp"] for x in window["records"]} <= {t0, t0 + 1} and window["records"]
    # one record by node/seq; a root-mismatch record is listed with its verdict but without a proof
    one = s.ok_records[3]
    hit = client.get(f"/v1/records/{s.a.address}/{one.seq}").json()
    assert Record.from_json(hit["record"]) == one and d.ledger.verify_record(hit["batchId"], one.abi_values(),
                                                                             hit["proof"])
    bad = client.get(f"/v1/records/{s.a.address}/{s.bad_records[0].seq}").json()
    assert bad["verdict"] == "root_mismatch" and bad["proof"] is None

    # usage: flagged batches excluded (their records are indexed, so this is a real filter)
    usage = {u["adapter"]: u for u in client.get("/v1/usage/adapter").json()["usage"]}
    want = sum(r.prompt_tokens + r.completion_tokens for r in ok_adapter)
    assert usage["0x" + ADAPTER_ID.hex()]["tokens"] == want
    assert usage["0x" + ADAPTER_ID.hex()]["records"] == len(ok_adapter)
    nodes = {u["node"]: u["records"] for u in client.get("/v1/usage/node").json()["usage"]}
    a_node = bytes.fromhex(s.a.address[2:])
    assert nodes == {s.a.address: sum(r.node == a_node for r in s.ok_records),
                     s.b.address: sum(r.node != a_node for r in s.ok_records)}
    epochs = client.get("/v1/usage/epoch", params={"epoch_blocks": 3}).json()["usage"]
    assert sum(e["records"] for e in epochs) == len(s.ok_records)
    datasets = {u["dataset"]: u["tokens"] for u in client.get("/v1/usage/dataset").json()["usage"]}
    assert datasets == {"0x" + DATASETS[0].hex(): want * 6000 // 10_000,
                        "0x" + DATASETS[1].hex(): want * 4000 // 10_000}
    contributors = {u["contributor"]: u["tokens"] for u in client.get("/v1/usage/contributor").json()["usage"]}
    first, second = s.assets["contributors"]
    assert contributors == {first: want * 6000 * CONTRIBUTOR_SHARES[0] // 10**8,
                            second: want * 6000 * CONTRIBUTOR_SHARES[1] // 10**8,
                            s.assets["dataset2_contributor"]: want * 4000 // 10_000}  # shares at postedAt

    # registry state: now, and before anything was registered
    reg = client.get("/v1/registry").json()
    entry = reg["datasets"]["0x" + DATASETS[0].hex()]
    assert entry["contributors"] == s.assets["contributors"] and entry["sharesBps"] == list(CONTRIBUTOR_SHARES)
    assert reg["adapters"]["0x" + ADAPTER_ID.hex()]["active"] is True
    assert client.get("/v1/registry", params={"at": 1}).json()["datasets"] == {}
    # the scheduled change: the old contributor until effectiveAt - 1, the new one from effectiveAt
    ds2 = "0x" + DATASETS[1].hex()
    before = client.get("/v1/registry", params={"at": s.assets["effective_at"] - 1}).json()["datasets"][ds2]
    after = client.get("/v1/registry", params={"at": s.assets["effective_at"]}).json()["datasets"][ds2]
    assert before["contributors"] == [s.assets["dataset2_contributor"]]
    assert after["contributors"] == [s.assets["dataset2_new_contributor"]]
    assert client.get("/v1/registry", params={"at": 2**40}).status_code == 400  # past the indexed head

    # the SDK gets the record from the indexer over HTTP and checks it against the chain, not the indexer
    with _http_server(create_app(idx.engine)) as url, LedgerClient(
            d.rpc_url, da_url=module_da.url, ledger=d.ledger.address, indexer_url=url) as sdk:
        rp = sdk.record(one.seq, node=s.a.address)
        assert rp.record == one and rp.source == "indexer"
        assert sdk.verify_offchain(rp) and sdk.verify_onchain(rp)
        with pytest.raises(RecordNotPostedError):
            sdk.record(99999, node=s.b.address)

    # errors: 400 naming the parameter, 404 for what is not indexed
    r = client.get("/v1/records", params={"adapter": "0x12"})
    assert r.status_code == 400 and "adapter" in r.json()["error"]["message"]
    assert client.get(f"/v1/records/{s.b.address}/99999").status_code == 404
    assert client.get("/v1/usage/planet").status_code == 400
    idx.engine.dispose()


def _answers(client: TestClient, s: Scenario) -> list[Any]:
    """What a dApp asks the index: listings by adapter, dataset, time and node, one record, usage, status."""
    t0 = min(r.timestamp for r in s.ok_records)
    out = [client.get("/v1/records", params={"adapter": "0x" + ADAPTER_ID.hex(), "limit": 1000}).json(),
           client.get("/v1/records", params={"dataset": "0x" + DATASETS[0].hex(), "limit": 1000}).json(),
           client.get("/v1/records", params={"from_ts": t0, "to_ts": t0 + 3, "limit": 1000}).json(),
           client.get("/v1/records", params={"node": s.b.address, "limit": 3, "offset": 2}).json(),
           client.get(f"/v1/records/{s.a.address}/{s.ok_records[3].seq}").json(),
           client.get(f"/v1/records/{s.a.address}/{s.bad_records[0].seq}").json(),
           client.get("/v1/batches").json()]
    out += [client.get(f"/v1/usage/{by}").json() for by in ("adapter", "dataset", "contributor", "node", "epoch")]
    status = client.get("/v1/status").json()
    return out + [status["records"], status["batches"]]


def test_bulk_catch_up_with_deferred_indexes_answers_like_the_row_path(
        deployment: DeployedContracts, scenario: Scenario, module_da: DAServerProcess, index_db: str,
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from attribution.indexer.bulk import DEFER_INDEXES_KEY, defer_indexes, deferred_indexes
    from attribution.indexer.db import migrate

    d = deployment
    row_url = str(tmp_path / "rows.db") if index_db.endswith(".db") else \
        request.getfixturevalue("postgres_cluster").new_database()
    row = _indexer(d, row_url, module_da.url)
    row.bulk, row.defer_indexes_at = False, None
    _catch_up(row)
    bulk = _indexer(d, index_db, module_da.url)
    bulk.defer_indexes_at = 1  # the whole scenario counts as far behind: indexes dropped, then rebuilt
    bulk.sync_once(verify=False)  # every batch pending
    bulk._maybe_defer_indexes(1)
    with bulk.engine.connect() as conn:
        assert deferred_indexes(conn) and not sa.inspect(conn).get_indexes("records")
    _catch_up(bulk)
    with bulk.engine.connect() as conn:
        assert deferred_indexes(conn) == []
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert snapshot(index_db) == snapshot(row_url)
    assert _answers(TestClient(create_app(bulk.engine)), scenario) == _answers(TestClient(create_app(row.engine)),
                                                                               scenario)

    # killed while deferred: migrating first rebuilds them from the statements kept in meta
    with bulk.engine.begin() as conn:
        assert defer_indexes(conn) and conn.execute(sa.select(sa.func.count()).select_from(records)).scalar()
        assert conn.execute(sa.text(f"SELECT count(*) FROM meta WHERE key = '{DEFER_INDEXES_KEY}'")).scalar() == 1
    migrate(bulk.engine, head_revision() or "head")
    with bulk.engine.connect() as conn:
        assert deferred_indexes(conn) == [] and compare_metadata(MigrationContext.configure(conn), metadata) == []
    for idx in (bulk, row):
        idx.engine.dispose()


@contextlib.contextmanager
def _http_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _serve(d: DeployedContracts, url: str, da_url: str, dep: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CLI, "indexer", "serve", "--db", url, "--rpc-url", d.rpc_url, "--da-url", da_url,
                             "--deployment", str(dep), "--confirmations", "0", "--page-blocks", "2", "--port",
                             str(port), "--poll", "0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _status(port: int) -> dict[str, Any] | None:
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=5).json())
    except (httpx.HTTPError, ValueError):
        return None


def _wait(port: int, done: Any, proc: subprocess.Popen[bytes], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"indexer exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        st = _status(port)
        if st is not None and done(st):
            return st
        time.sleep(0.1)
    raise AssertionError(f"indexer did not get there: {_status(port)}")


def test_kill_restart_and_reorg_leave_the_index_equal_to_a_fresh_one(
        deployment: DeployedContracts, scenario: Scenario, anvil: AnvilNode, module_da: DAServerProcess,
        module_da_client: DAClient, index_db: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    d, s = deployment, scenario
    dep = d.deployment.save(tmp_path / "deployment.json")
    port = free_port()
    proc = _serve(d, index_db, module_da.url, dep, port)
    try:
        # SIGKILL once the first pages are in (2 blocks a page: the scenario spans many)
        _wait(port, lambda st: (st["cursor"] or 0) > d.deployment.deploy_block + 4, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        more = publish_next(d, s.b, module_da_client, 3, seed=30)
        proc = _serve(d, index_db, module_da.url, dep, port)
        head = d.client.block_number()
        _wait(port, lambda st: st["cursor"] >= head and "pending" not in st["batches"], proc)

        # reorg: the last two blocks (b's batch `more`, a's batch `gone`) are replaced; b posts other records
        gone = publish_next(d, s.a, module_da_client, 2, seed=31)
        reorged_head = d.client.block_number()
        _wait(port, lambda st: st["cursor"] >= reorged_head and "pending" not in st["batches"], proc)
        anvil.rpc("anvil_reorg", 2, [])
        for n in (s.a, s.b):
            n.ledger.client.reset_nonce()
        replacement = publish_next(d, s.b, module_da_client, 4, seed=32)
        head = d.client.block_number()
        st = _wait(port, lambda st: st["cursor"] >= head and "pending" not in st["batches"], proc)
        assert st["batches"]["ok"] >= 4
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()

    fresh_url = str(tmp_path / "fresh.db") if index_db.endswith(".db") else \
        request.getfixturevalue("postgres_cluster").new_database()
    fresh = _indexer(d, fresh_url, module_da.url, page_blocks=50)
    _catch_up(fresh)
    fresh.engine.dispose()
    assert snapshot(index_db) == snapshot(fresh_url)
    engine = open_engine(index_db)
    with engine.connect() as conn:
        roots = {bytes(r) for r in conn.execute(sa.select(batches.c.root)).scalars()}
    engine.dispose()
    assert record_tree(replacement.records).root_bytes in roots
    assert record_tree(more.records).root_bytes not in roots and record_tree(gone.records).root_bytes not in roots
