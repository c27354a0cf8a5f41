"""A price change scheduled during a DA outage (issue 21, N6) end to end, with real parts: a fresh anvil, the real DA
server as a process over HTTP (stopped and started again), the real batcher on a real SQLite store, and the
`loraledger rewards` CLI computing and proposing the epoch.

The node serves records at price P and they post; DA goes down; the node keeps serving at P; the adapter owner
schedules the registry's capped price P2, which takes effect while DA is still down; the node serves more records
(now at P2); DA comes back and the backlog posts after the change. The epoch the CLI proposes charges every record
at the price in effect when it was served (its own timestamp), not when its batch was posted: the records held
back by the outage are charged P, and the whole payout equals the simple reference rule in tests/fixtures/rewards.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from attribution.chain.artifacts import ArtifactStore
from attribution.chain.assets import adapter_id_for, dataset_id_for
from attribution.da.client import DAClient
from attribution.hashing import keccak256
from attribution.records import PendingRecord, Record
from attribution.rewards import checksum
from attribution.rewards.epochs import RewardsChain
from attribution.store import RecordStore
from tests.fixtures.chain import AnvilNode, DeployedContracts, deploy_fixture_contracts, own_anvil
from tests.fixtures.da import DAServerFactory
from tests.fixtures.rewards import Charge, reference_rewards, token_fee
from tests.integration.test_batcher import Env, all_final, drive

anvil = pytest.fixture(scope="module", name="anvil")(own_anvil)

CLI = [str(Path(sys.executable).parent / "loraledger"), "rewards"]
MODEL = keccak256(b"outage model")
PRICE = 1_000_000_000  # P, per million tokens
CONTRIBUTORS = ([checksum(keccak256(b"outage contributor %d" % i)[:20]) for i in range(2)], [7000, 3000])


def _now(d: DeployedContracts) -> int:
    return int(d.client.w3.eth.get_block("latest")["timestamp"])


def _serve(env: Env, adapter: tuple[bytes, tuple[bytes, ...], tuple[int, ...]], n: int, seed: int) -> None:
    """`n` answers of the adapter served now (the chain's clock, which the node's follows), appended to the store
    the way the node's recorder appends them."""
    d, now = env.deployed, _now(env.deployed)
    aid, ds, w = adapter
    env.store.append_many([
        PendingRecord(d.chain_id, bytes.fromhex(d.ledger.address[2:]), bytes.fromhex(d.node.address[2:]), MODEL,
                      aid, ds, w, 10 + (seed * 7 + i) % 90, 1 + (seed + i * 3) % 40, now,
                      keccak256(b"io %d %d" % (seed, i)))
        for i in range(n)])


def test_price_change_scheduled_during_a_da_outage_charges_the_backlog_the_old_price(
        anvil: AnvilNode, forge_artifacts: ArtifactStore, da_server_factory: DAServerFactory, tmp_path: Path) -> None:
    d = deploy_fixture_contracts(anvil, forge_artifacts)
    owner = d.accounts[6]
    d.assets.register_base_model(MODEL, "test://outage-model", account=d.deployer)
    key = keccak256(b"outage dataset")
    d.assets.register_dataset(key, *CONTRIBUTORS, "test://outage-dataset", account=d.deployer)
    ds = dataset_id_for(d.deployer.address, key)
    content = keccak256(b"outage adapter")
    reg = d.assets.register_adapter(content, MODEL, [ds], [10_000], PRICE, "test://outage-adapter", account=owner)
    aid = adapter_id_for(owner.address, content)
    adapter = (aid, (ds,), (10_000,))
    cap = d.assets.max_price_per_m_tokens()  # P2: the highest price the registry allows
    assert cap > PRICE

    da = da_server_factory.start(kzg=False)
    store = RecordStore(tmp_path / "records.db", bytes.fromhex(d.node.address[2:]))
    env = Env(anvil, d, da, store, tmp_path)
    b = env.batcher(backoff_initial_s=0.05, backoff_max_s=0.05)
    try:
        # served at P and posted while DA is up
        _serve(env, adapter, 12, 1)
        drive(b, all_final(store), mine=anvil)
        posted_before = d.ledger.next_seq(d.node.address)
        assert posted_before == 12

        # DA goes down (the process is stopped); the node keeps serving at P, and nothing posts
        da.kill()
        _serve(env, adapter, 9, 2)
        for _ in range(3):
            b.run_once()
        assert b.status()["consecutive_failures"] >= 1
        assert d.ledger.next_seq(d.node.address) == posted_before, "nothing can post while DA is down"

        # the owner schedules the capped price; it takes effect while DA is still down
        sched = d.assets.schedule_price(aid, cap, account=owner)
        anvil.rpc("evm_setNextBlockTimestamp", sched.effective_at)
        anvil.rpc("evm_mine")
        assert d.assets.adapter(aid).price_per_m_tokens == cap
        _serve(env, adapter, 7, 3)  # served after the change: P2
        b.run_once()
        assert d.ledger.next_seq(d.node.address) == posted_before

        # DA comes back: the backlog posts, after effectiveAt
        da.start()
        drive(b, all_final(store), mine=anvil)
    finally:
        b.stop()
    records: list[Record] = store.range(0, store.next_seq())
    backlog_batches = [bt.onchain_batch_id for bt in store.batches()
                       if bt.first_seq < 21 and bt.end_seq > 12 and bt.onchain_batch_id is not None]
    store.close()
    assert len(records) == 28 and d.ledger.next_seq(d.node.address) == 28
    backlog, after = records[12:21], records[21:]
    assert max(r.timestamp for r in backlog) < sched.effective_at <= min(r.timestamp for r in after)
    assert backlog_batches and all(d.ledger.batch(i).posted_at >= sched.effective_at
                                   for i in backlog_batches), "the backlog was posted after the change took effect"

    # the node's fee credit is in place before the epoch's end block
    deposit = 10**21  # 1,000 tokens: more than the epoch owes, so the node is not short
    d.rewards.approve_and_deposit(d.token, d.node.address, deposit, account=d.node)
    anvil.rpc("evm_mine")

    dep = d.deployment.save(tmp_path / "deployment.json")
    report = tmp_path / "report"
    out = subprocess.run([*CLI, "publish", "--out", str(report), "--json", "--rpc-url", d.rpc_url, "--da-url", da.url,
                          "--deployment", str(dep)], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    published = json.loads(out.stdout)
    assert published["proposal"]["epoch"] == 1 and published["records"] == 28

    def price_at(r: Record) -> int:
        return PRICE if r.timestamp < sched.effective_at else cap

    assert reg.effective_at <= records[0].timestamp
    owed = sum(token_fee(r, price_at(r)) for r in records)
    at_post_time = sum(token_fee(r, PRICE) for r in records[:12]) + sum(token_fee(r, cap) for r in records[12:])
    assert owed < at_post_time, "pricing at postedAt would charge the backlog the new price"
    with (report / "adapters.csv").open() as f:
        fees = {r["adapter_id"]: int(r["fees"]) for r in csv.DictReader(f)}
    assert fees == {"0x" + aid.hex(): owed}
    charges: list[Charge] = [(d.node.address, token_fee(r, price_at(r)), (owner.address, [ds], [10_000]))
                             for r in records]
    treasury = d.rewards.roles()["treasury"]
    ref, debits = reference_rewards(charges, {d.node.address: deposit}, d.rewards.shares(), treasury,
                                    {ds: CONTRIBUTORS})
    assert debits == {d.node.address: owed}
    with (report / "accounts.csv").open() as f:
        amounts = {r["account"]: int(r["epoch_amount"]) for r in csv.DictReader(f)}
    assert amounts == ref
    with DAClient(da.url) as dac:
        proposal = RewardsChain(d.deployment.bind(d.client), dac).proposal_of(1)
    assert dict(zip(proposal.nodes, proposal.debits, strict=True)) == {d.node.address: owed}
    verify = subprocess.run([*CLI, "verify", "--epoch", "1", "--rpc-url", d.rpc_url, "--da-url", da.url,
                             "--deployment", str(dep)], capture_output=True, text=True, timeout=300, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
