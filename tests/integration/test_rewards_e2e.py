"""Rewards end to end on anvil + DA: two nodes, three adapters over four datasets, batches posted the way a node
posts them, an epoch computed from the chain and DA, published, verified, claimed by everyone; the balances equal
a deliberately simple re-implementation of the rule inside this test. Adversarial cases: a price change in
mid-epoch, a backlog held while the price changed (charged the price of when it was served), a deposit landing
between compute and propose (nothing changes), a node short of credit, a flagged batch, misreported provenance, a
tampered proposal vetoed and its pages released, a stale root, a second claim."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attribution.chain.assets import adapter_id_for, dataset_id_for
from attribution.chain.reverts import error_class
from attribution.da.client import DAClient
from attribution.hashing import keccak256
from attribution.records import Profile, Record
from attribution.rewards import checksum
from attribution.rewards.epochs import RewardsChain
from attribution.rewards.tree import RewardTree, encode_payload
from tests.fixtures.batches import NodeAccount, node_account, publish
from tests.fixtures.chain import AnvilNode, DeployedContracts
from tests.fixtures.da import DAServerProcess
from tests.fixtures.rewards import Charge, reference_rewards, token_fee

MODEL = bytes.fromhex("77" * 32)
WINDOW = 3600
CLI = [str(Path(sys.executable).parent / "loraledger"), "rewards"]


def _addr(i: int) -> str:
    return checksum(keccak256(b"contributor" + bytes([i]))[:20])


def _advance(anvil: AnvilNode, seconds: int) -> None:
    """Mine a block `seconds` after the latest one (from the chain's own clock: the session anvil is shared and
    other modules move its time too)."""
    latest = int(anvil.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    anvil.rpc("evm_setNextBlockTimestamp", latest + seconds)
    anvil.rpc("evm_mine")


class World:
    """What the test registered, kept in plain dicts for the simple reference."""

    def __init__(self, d: DeployedContracts) -> None:
        self.d = d
        owner = d.deployer
        self.datasets: dict[bytes, tuple[list[str], list[int]]] = {}
        members = {0: ([_addr(1), _addr(2), _addr(3)], [5000, 3000, 2000]), 1: ([_addr(4), _addr(5)], [9000, 1000]),
                   2: ([_addr(6)], [10000]), 3: ([_addr(7), _addr(8), _addr(1)], [3333, 3333, 3334])}
        d.assets.register_base_model(MODEL, "ipfs://m", account=owner)
        self.ds_ids = []
        for i, (cs, sh) in members.items():
            key = bytes([0xE0 + i]) * 32
            d.assets.register_dataset(key, cs, sh, f"ipfs://d{i}", account=owner)
            ds = dataset_id_for(owner.address, key)
            self.ds_ids.append(ds)
            self.datasets[ds] = (cs, sh)
        # adapter -> (owner, datasets, weights, [(effectiveAt, price)])
        self.adapters: dict[bytes, tuple[str, list[bytes], list[int], list[tuple[int, int]]]] = {}
        specs = [(5, [0, 1], [6000, 4000], 1_000_000), (6, [1, 2, 3], [2000, 3000, 5000], 2_500_000),
                 (7, [3], [10000], 7_000_000)]
        self.profiles = []
        for k, (acct, ds, w, price) in enumerate(specs):
            who = d.accounts[acct]
            content = bytes([0xC0 + k]) * 32
            reg = d.assets.register_adapter(content, MODEL, [self.ds_ids[i] for i in ds], w, price, f"ipfs://a{k}",
                                            account=who)
            aid = adapter_id_for(who.address, content)
            assert reg.asset_id == aid
            self.adapters[aid] = (who.address, [self.ds_ids[i] for i in ds], w, [(reg.effective_at, price)])
            self.profiles.append(Profile(MODEL, aid, tuple(self.ds_ids[i] for i in ds), tuple(w)))
        self.profiles.append(Profile(MODEL, bytes(32)))  # the bare base model: no fee
        # misreported provenance: adapter 0 claiming dataset 2 only
        self.lying = Profile(MODEL, self.profiles[0].adapter_id, (self.ds_ids[2],), (10000,))
        self.posted: list[tuple[int, str, int, list[Record], bool]] = []  # batch id, node, postedAt, records, ok

    def records(self, node: NodeAccount, n: int, seed: int, profiles: list[Profile] | None = None,
                first: int | None = None) -> list[Record]:
        """`n` records served now (the chain's latest block time: records are priced at their own time)."""
        first = node.ledger.next_seq(node.address) if first is None else first
        now = int(self.d.client.w3.eth.get_block("latest")["timestamp"])
        ps = profiles or self.profiles
        out = []
        for i in range(n):
            p = ps[(i * 7 + seed) % len(ps)]
            h = keccak256(bytes([seed]) + i.to_bytes(4, "big"))
            ledger = bytes.fromhex(self.d.ledger.address[2:])
            out.append(Record(self.d.chain_id, ledger, bytes.fromhex(node.address[2:]), first + i, p.model_id,
                              p.adapter_id, p.dataset_ids, p.weights_bps, 1 + h[0] * 3,
                              1 + h[1] * 2, now, h))
        return out

    def post(self, node: NodeAccount, da: DAClient, records: list[Record], *, ok: bool = True) -> int:
        root = None if ok else keccak256(b"not the root")
        pub = publish(self.d, node, da, records, root=root)
        posted_at = self.d.ledger.batch(pub.batch_id).posted_at
        self.posted.append((pub.batch_id, node.address, posted_at, records, ok))
        return pub.batch_id

    def reference(self, batches: list[tuple[int, str, int, list[Record], bool]], credits: dict[str, int],
                  shares: tuple[int, int], treasury: str) -> tuple[dict[str, int], dict[str, int]]:
        """The rule (tests/fixtures/rewards.py) over the batches that count, at each adapter's price in effect
        when each record was served (its own timestamp, not its batch's postedAt)."""
        charges: list[Charge] = []
        for _, node, _, records, ok in batches:
            if not ok:
                continue
            for r in records:
                a = self.adapters.get(r.adapter_id)
                price = 0 if a is None else [p for at, p in a[3] if at <= r.timestamp][-1]
                charges.append((node, token_fee(r, price), None if a is None else a[:3]))
        return reference_rewards(charges, credits, shares, treasury, self.datasets)


def _cli(dep: Path, d: DeployedContracts, da: DAServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--rpc-url", d.rpc_url, "--da-url", da.url, "--deployment", str(dep)],
                          capture_output=True, text=True, timeout=300, check=False)


def test_epochs_end_to_end(deployment: DeployedContracts, anvil: AnvilNode, module_da: DAServerProcess,
                           module_da_client: DAClient, tmp_path: Path) -> None:
    d = deployment
    dep = d.deployment.save(tmp_path / "deployment.json")
    contracts = d.deployment.bind(d.client)
    rc = RewardsChain(contracts, module_da_client)
    poster, guardian, treasury = d.accounts[2], d.accounts[3], d.accounts[4].address
    w = World(d)
    n1, n2 = node_account(d, 1), node_account(d, 9)
    d.rewards.approve_and_deposit(d.token, n1.address, 10**15, account=n1.account)
    d.rewards.approve_and_deposit(d.token, n2.address, 40_000, account=n2.account)  # short
    deposits = d.rewards.total_deposited()

    w.post(n1, module_da_client, w.records(n1, 60, 1))
    w.post(n2, module_da_client, w.records(n2, 50, 2))
    w.post(n1, module_da_client, w.records(n1, 40, 3), ok=False)  # root mismatch: earns nothing, costs nothing
    lying_batch = w.post(n1, module_da_client, w.records(n1, 20, 4, [w.lying, w.profiles[0]]))
    a3 = w.profiles[2].adapter_id
    # n2's next records are served now but held back (as the batcher holds them while DA is down) ...
    backlog = w.records(n2, 30, 5)
    # ... while the owner schedules a price rise ...
    sched = d.assets.schedule_price(a3, 9_000_000, account=d.accounts[7])
    w.adapters[a3][3].append((sched.effective_at, 9_000_000))
    _advance(anvil, WINDOW)
    # ... that is in effect when the backlog is finally posted: it is still charged the price of when it was served
    w.post(n2, module_da_client, backlog)
    w.post(n1, module_da_client, w.records(n1, 70, 6))  # served after effectiveAt: the new price
    w.post(n2, module_da_client, w.records(n2, 40, 7))
    assert sum(len(b[3]) for b in w.posted) == 310

    anvil.rpc("evm_mine")  # an epoch ends before the head block: let the last batch's block be final
    computed = rc.compute(rc.plan())
    res = computed.result
    credits = {n1.address: 10**15, n2.address: 40_000}
    ref, debits = w.reference(w.posted, credits, d.rewards.shares(), treasury)
    assert res.amounts == ref
    assert {n: x.debit for n, x in res.nodes.items()} == debits
    assert res.nodes[n2.address].short and not res.nodes[n1.address].short
    assert [b.counted for b in res.batches] == [b[4] for b in w.posted]
    assert {m.batch_id for m in res.misattributed} == {lying_batch}
    assert all(m.registry == tuple(zip(w.profiles[0].dataset_ids, w.profiles[0].weights_bps, strict=True))
               for m in res.misattributed)
    # the backlog was posted after effectiveAt but served before it; batch 5 was served after it
    assert max(r.timestamp for r in backlog) < sched.effective_at <= w.posted[4][2]
    assert min(r.timestamp for r in w.posted[5][3]) >= sched.effective_at

    def fee_at(b: int, a3_price: int) -> int:
        prices = {aid: v[3][0][1] for aid, v in w.adapters.items()} | {a3: a3_price}
        return sum(token_fee(r, prices.get(r.adapter_id, 0)) for r in w.posted[b][3])
    assert res.batches[4].fees == fee_at(4, 7_000_000) and res.batches[5].fees == fee_at(5, 9_000_000)
    assert fee_at(5, 9_000_000) > fee_at(5, 7_000_000)

    # a deposit lands between compute and propose (an honest top-up, or an attacker's 1 wei): nothing changes, the
    # epoch debits the credit as it stood at its end block (N4)
    d.rewards.approve_and_deposit(d.token, n2.address, 1, account=n2.account)
    p1 = rc.publish(computed, account=poster)
    assert d.rewards.fee_credit(n2.address) == 1, "the late wei counts from the next epoch"
    assert p1.end_block == computed.plan.to_block and dict(zip(p1.nodes, p1.debits, strict=True)) == debits
    check = rc.verify(1)
    assert check.ok, check.differences
    assert _cli(dep, d, module_da, "verify", "--epoch", "1").returncode == 0
    never = _cli(dep, d, module_da, "verify", "--epoch", "99")
    assert never.returncode == 2 and never.stderr.startswith("error:") and "never proposed" in never.stderr
    _advance(anvil, WINDOW)
    assert d.rewards.current_root() == p1.root

    before = {a: d.token.balance_of(a) for a in res.cumulative}
    for account in res.cumulative:
        assert rc.claim(account, sender=d.deployer) == ref[account]
    for account, amount in ref.items():
        assert d.token.balance_of(account) - before[account] == amount
    total_paid = d.rewards.total_claimed()
    assert total_paid == sum(ref.values()) <= d.rewards.total_debited() <= deposits
    # a second claim pays nothing
    some = next(iter(res.cumulative))
    tree = RewardTree.build(d.chain_id, d.rewards.address, d.token.address, res.cumulative)
    with pytest.raises(error_class("DistributorNothingToClaim")):
        d.rewards.claim(some, res.cumulative[some], tree.root, tree.proof(some), account=d.deployer)

    # epoch 2: a tampered proposal (one amount moved between two accounts, same total) fails verify; veto
    w.post(n1, module_da_client, w.records(n1, 30, 8))
    anvil.rpc("evm_mine")
    honest = rc.compute(rc.plan())
    bad_cum = dict(honest.result.cumulative)
    a, b = sorted(bad_cum)[:2]
    bad_cum[a] -= 1
    bad_cum[b] += 1
    bad_tree = RewardTree.build(d.chain_id, d.rewards.address, d.token.address, bad_cum)
    bad_payload = dict(honest.payload, root="0x" + bad_tree.root.hex(), accounts=[
        {**x, "cumulative": str(bad_cum[x["account"]])} for x in honest.payload["accounts"]])
    commitment = module_da_client.put(encode_payload(bad_payload))
    credit_before = d.rewards.fee_credit(n1.address)
    nodes, debits2 = honest.proposal_args
    d.rewards.propose_paged(2, honest.plan.to_block, bad_tree.root, honest.result.total, commitment, nodes, debits2,
                            account=poster)
    assert d.rewards.fee_credit(n1.address) == credit_before - debits2[0]
    bad = rc.verify(2)
    assert not bad.ok and any("root" in x for x in bad.differences) and any(a in x for x in bad.differences)
    out = _cli(dep, d, module_da, "verify", "--epoch", "2")
    assert out.returncode == 1 and "root" in out.stdout + out.stderr
    d.rewards.veto_root(2, account=guardian)
    assert d.rewards.fee_credit(n1.address) == credit_before - debits2[0], "reserved until its pages are released"
    assert d.rewards.release_all(2) == sum(debits2)
    assert d.rewards.fee_credit(n1.address) == credit_before

    # the honest epoch 2 through the CLI (report files), then a claim with the stale epoch-1 root reverts
    report = tmp_path / "report"
    out = _cli(dep, d, module_da, "publish", "--out", str(report), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    published = json.loads(out.stdout)
    assert published["proposal"]["epoch"] == 2 and rc.verify(2).ok
    with (report / "accounts.csv").open() as f:
        rows = {r["account"]: r for r in csv.DictReader(f)}
    assert {a: int(r["cumulative"]) for a, r in rows.items()} == rc.compute(rc.plan(2, published["toBlock"])
                                                                            ).result.cumulative
    assert all(int(r["node"]) + int(r["adapter"]) + int(r["dataset"]) + int(r["treasury"]) == int(r["epoch_amount"])
               for r in rows.values())
    _advance(anvil, WINDOW)
    old = RewardTree.build(d.chain_id, d.rewards.address, d.token.address, res.cumulative)
    acct = sorted(res.cumulative)[0]
    with pytest.raises(error_class("DistributorRootMismatch")):
        d.rewards.claim(acct, res.cumulative[acct], old.root, old.proof(acct), account=d.deployer)
    status = json.loads(_cli(dep, d, module_da, "status", "--account", acct, "--json").stdout)
    assert status["currentEpoch"] == 2 and [e["state"] for e in status["epochs"]] == [
        "superseded", "vetoed", "claimable"]
    claimable = int(status["account"]["claimable"])
    before_acct = d.token.balance_of(acct)
    out = _cli(dep, d, module_da, "claim", "--account", acct, "--dev-account", "0", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert int(json.loads(out.stdout)["paid"]) == claimable > 0
    assert d.token.balance_of(acct) == before_acct + claimable
    again = _cli(dep, d, module_da, "claim", "--account", acct, "--dev-account", "0")
    assert again.returncode == 2 and again.stderr.startswith("error:") and "nothing to claim" in again.stderr

    # scheduling: `rewards run --once` proposes the next epoch only when --epoch-blocks final blocks are there
    w.post(n1, module_da_client, w.records(n1, 10, 9))
    assert _cli(dep, d, module_da, "run", "--once", "--epoch-blocks", "1000000").returncode == 0
    assert d.rewards.latest_epoch() == 2
    out = _cli(dep, d, module_da, "run", "--once", "--epoch-blocks", "1")
    assert out.returncode == 0 and d.rewards.latest_epoch() == 3, out.stdout + out.stderr
    p3 = rc.proposal_of(3)
    payload3 = rc.payload_of(p3)
    assert payload3["fromBlock"] == published["toBlock"] + 1 == payload3["toBlock"]  # one block, right after
    assert rc.verify(3).ok

    # the scheduler itself: `rewards run` proposes epoch 4 once epoch 3's window is over, and stops on SIGTERM
    _advance(anvil, WINDOW)
    proc = subprocess.Popen([*CLI, "run", "--interval", "0.5", "--epoch-blocks", "1", "--rpc-url", d.rpc_url,
                             "--da-url", module_da.url, "--deployment", str(dep)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while d.rewards.latest_epoch() < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert d.rewards.latest_epoch() == 4
        time.sleep(2)  # still in epoch 4's window: nothing more is proposed
        assert d.rewards.latest_epoch() == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        out_s, err_s = proc.communicate(timeout=60)
    assert proc.returncode == 0, err_s
    assert "epoch 4" in out_s and rc.verify(4).ok
    assert d.rewards.total_claimed() <= d.rewards.total_debited() <= d.rewards.total_deposited()
