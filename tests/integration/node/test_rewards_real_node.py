"""Rewards from a real node's answers: `loraledger node run` (tiny Llama + peft adapters) answers a hundred-odd
requests, its stored records are posted the way the batcher posts them, a second node posts records too; the epoch
is computed from the chain and DA, published, verified and claimed by every account, and every balance equals a
deliberately simple re-implementation of the rule in this test."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest

from attribution.chain.client import ChainClient
from attribution.chain.contracts import Ledger
from attribution.da.client import DAClient
from attribution.merkle import record_tree
from attribution.payload import encode_batch
from attribution.records import Record, keccak256
from attribution.rewards_chain import RewardsChain
from attribution.store import RecordStore
from tests.fixtures.batches import node_account, publish
from tests.fixtures.chain import AnvilNode
from tests.fixtures.da import DAServerFactory
from tests.integration.node.conftest import API_KEY, NodeProcess

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PRICE = 10**18  # what the node fixture registers for every adapter


@pytest.fixture(scope="module")
def da_client(da_server_factory: DAServerFactory) -> Iterator[DAClient]:
    da = da_server_factory.start(kzg=False)
    with DAClient(da.url, timeout=30, max_retries=1, backoff=0.01) as client:
        yield client


def test_real_node_answers_are_paid_by_the_rule(served_node: NodeProcess, da_client: DAClient,
                                                anvil: AnvilNode) -> None:
    env = served_node.env
    d = env.deployment
    models = ["ad-a", "ad-b", "tiny-llama"]
    seqs = []
    with httpx.Client(base_url=served_node.url, headers=AUTH, timeout=120) as http:
        for i in range(120):
            r = http.post("/v1/completions", json={"model": models[i % 3], "prompt": f"Count to {i}:",
                                                   "max_tokens": 1 + i % 4, "seed": i})
            assert r.status_code == 200, r.text
            seqs.append(r.json()["attribution"]["seq"])

    # post the node's stored records in three batches, as the batcher would
    ledger = Ledger(ChainClient(d.rpc_url, d.node), d.ledger.address)
    first = ledger.next_seq(d.node.address)
    store = RecordStore(env.store_path, readonly=True)
    try:
        records: list[Record] = store.range(first, max(seqs) + 1)
    finally:
        store.close()
    assert len(records) >= 120
    posted: list[tuple[str, int, list[Record]]] = []
    for part in (records[:40], records[40:90], records[90:]):
        payload = encode_batch(d.chain_id, part[0].ledger, part[0].node, part[0].seq, part)
        res = ledger.post_batch(part[0].seq, len(part), record_tree(part).root_bytes, da_client.put(payload))
        posted.append((d.node.address, d.ledger.batch(res.batch_id).posted_at, part))

    # a second node posts records of the same adapters
    other = node_account(d, 9)
    ad_a = next(r for r in records if r.adapter_id == env.adapter_ids["ad-a"])
    mine = [Record(d.chain_id, ad_a.ledger, bytes.fromhex(other.address[2:]), s, ad_a.model_id, ad_a.adapter_id,
                   ad_a.dataset_ids, ad_a.weights_bps, 10 + s, 3 * s + 1, 1_760_000_000 + s,
                   keccak256(s.to_bytes(4, "big"))) for s in range(other.ledger.next_seq(other.address), 60)]
    pub = publish(d, other, da_client, mine)
    posted.append((other.address, d.ledger.batch(pub.batch_id).posted_at, mine))

    for who in (d.node, other.account):
        d.rewards.approve_and_deposit(d.token, who.address, 10**21, account=who)
    rc = RewardsChain(d.deployment.bind(d.client), da_client)
    computed = rc.compute(rc.plan())

    # the simple reference: every registered adapter costs PRICE per M tokens; ad-a's data is dataset A (100 %
    # contributor account 5), ad-b's 25 % A + 75 % B (both account 5); owner = deployer; shares 2000 / 3000
    adapter_owner, contributor = d.deployer.address, d.accounts[5].address
    out: dict[str, int] = defaultdict(int)
    owed: dict[str, int] = defaultdict(int)
    for node, _, recs in posted:
        for r in recs:
            fee = (r.prompt_tokens + r.completion_tokens) * PRICE // 10**6 if any(
                r.adapter_id == env.adapter_ids[n] for n in ("ad-a", "ad-b")) else 0
            owed[node] += fee
            if not fee:
                continue
            to_node, to_owner = fee * 2000 // 10000, fee * 3000 // 10000
            rest = fee - to_node - to_owner
            out[node] += to_node
            out[adapter_owner] += to_owner
            if r.adapter_id == env.adapter_ids["ad-a"]:
                out[contributor] += rest
            else:
                out[contributor] += rest * 2500 // 10000 + rest * 7500 // 10000
    out[d.rewards.roles()["treasury"]] += sum(owed.values()) - sum(out.values())
    ref = {k: v for k, v in out.items() if v}
    assert computed.result.amounts == ref and computed.result.records == len(records) + len(mine)

    rc.publish(computed, account=d.accounts[2])
    assert rc.verify(computed.plan.epoch).ok
    latest = int(anvil.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    anvil.rpc("evm_setNextBlockTimestamp", latest + 3600)  # from the chain's clock: other modules move it too
    anvil.rpc("evm_mine")
    before = {a: d.token.balance_of(a) for a in ref}
    for account in ref:
        rc.claim(account, sender=d.deployer)
    assert {a: d.token.balance_of(a) - before[a] for a in ref} == ref
    assert d.rewards.total_claimed() <= d.rewards.total_debited() <= d.rewards.total_deposited()
