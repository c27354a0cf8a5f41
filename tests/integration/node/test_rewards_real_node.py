"""Rewards from two real nodes' answers: two `loraledger node run` processes (tiny Llama + peft adapters, dev
accounts 1 and 9) answer a few hundred requests over three adapters (three owners) trained on four datasets with
several contributors each; a `loraledger batcher run` per node posts their records until every batch is final;
the epoch is computed from the chain and DA, published, verified and claimed by every contributor, adapter owner
and node operator, and every balance equals a deliberately simple re-implementation of the rule in this test.
Then a few more answers make epoch 2: a claim against the stale epoch-1 root reverts, the new root pays the rest,
and a second claim pays nothing."""

from __future__ import annotations

import dataclasses
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from attribution.chain.assets import adapter_id_for, dataset_id_for
from attribution.chain.keys import dev_keys
from attribution.chain.reverts import error_class
from attribution.da.client import DAClient
from attribution.devnet.processes import free_port
from attribution.hashing import keccak256
from attribution.records import Record
from attribution.rewards import checksum
from attribution.rewards.epochs import RewardsChain
from attribution.rewards.tree import RewardTree
from tests.fixtures.batches import node_account
from tests.fixtures.chain import AnvilNode, DeployedContracts, own_anvil
from tests.fixtures.da import DAServerProcess
from tests.fixtures.rewards import Charge, reference_rewards, token_fee
from tests.integration.node.conftest import (
    API_KEY,
    NodeEnv,
    NodeProcess,
    run_batchers_until_final,
    second_node_env,
    start_node,
    write_config,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
SECOND_NODE = 9  # dev account of node b
N_PER_NODE = 110
ADAPTERS = ("ad-a", "ad-b", "ad-c")
# adapter -> (owner dev account, datasets, weights, price per M tokens)
SPECS = {"ad-a": (6, [0, 1], [6000, 4000], 1_000_000_007), "ad-b": (7, [1, 2, 3], [2000, 3000, 5000], 2_500_000_000),
         "ad-c": (8, [3], [10000], 7_000_000_003)}
MODELS = (*ADAPTERS, "tiny-llama")  # the bare base model earns nothing


def _contributor(i: int) -> str:
    return checksum(keccak256(b"rewards contributor" + bytes([i]))[:20])


# dataset -> (contributors, shares); contributor 1 is in two datasets
DATASETS = {0: ([_contributor(1), _contributor(2), _contributor(3)], [5000, 3000, 2000]),
            1: ([_contributor(4), _contributor(5)], [9000, 1000]), 2: ([_contributor(6)], [10000]),
            3: ([_contributor(7), _contributor(8), _contributor(1)], [3333, 3333, 3334])}


@dataclasses.dataclass
class Registered:
    """What this module registered, in plain dicts for the reference."""

    adapters: dict[bytes, tuple[str, list[bytes], list[int], int]]  # id -> owner, datasets, weights, price
    datasets: dict[bytes, tuple[list[str], list[int]]]


anvil = pytest.fixture(scope="module", name="anvil")(own_anvil)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, deployment: DeployedContracts, tiny_base_dir: Path,
          make_adapter: Any) -> tuple[NodeEnv, Registered]:
    from inference.adapters.identity import adapter_id_of
    from inference.model import compute_model_id

    d = deployment
    root = tmp_path_factory.mktemp("rewards-node")
    paths = {n: make_adapter(root / "adapters" / n, seed=700 + i, rank=4 + 4 * (i % 2))
             for i, n in enumerate(ADAPTERS)}
    a = d.assets
    model_id = compute_model_id(tiny_base_dir)
    if not a.base_model_exists(model_id):
        a.register_base_model(model_id, "test://tiny-llama", account=d.deployer)
    ds_ids = []
    datasets: dict[bytes, tuple[list[str], list[int]]] = {}
    for i, (cs, sh) in DATASETS.items():
        key = hashlib.sha256(b"rewards dataset %d" % i).digest()
        a.register_dataset(key, cs, sh, f"test://d{i}", account=d.deployer)
        ds_ids.append(dataset_id_for(d.deployer.address, key))
        datasets[ds_ids[-1]] = (cs, sh)
    adapters: dict[bytes, tuple[str, list[bytes], list[int], int]] = {}
    ids = {}
    for name, (acct, ds, w, price) in SPECS.items():
        who = d.accounts[acct]
        content = adapter_id_of(paths[name])
        reg = a.register_adapter(content, model_id, [ds_ids[i] for i in ds], w, price, f"test://{name}", account=who)
        ids[name] = adapter_id_for(who.address, content)
        assert reg.asset_id == ids[name]
        adapters[ids[name]] = (who.address, [ds_ids[i] for i in ds], w, price)
    d.deployment.save(root / "deployments" / f"{d.chain_id}.json")
    env = NodeEnv(root=root, config=root / "loraledger.toml", port=free_port(), base_dir=tiny_base_dir,
                  adapters=paths, adapter_ids=ids, deployment=d, extra_roots=root / "extra",
                  store_path=root / "records.db")
    owners = [d.accounts[SPECS[n][0]].address for n in ADAPTERS]
    env.settings_extra = {"dirs": [str(paths[n]) for n in ADAPTERS], "owners": owners}
    write_config(env, adapters=env.settings_extra)
    return env, Registered(adapters, datasets)


def _ask(url: str, i: int) -> Record:
    model = MODELS[i % len(MODELS)]
    if i % 5 == 0:
        body: dict[str, Any] = {"model": model, "max_tokens": 1 + i % 3, "seed": i,
                                "messages": [{"role": "user", "content": f"question {i}"}]}
        path = "/v1/chat/completions"
    else:
        body = {"model": model, "prompt": f"Count to {i}:" + " go" * (i % 7), "max_tokens": 1 + i % 4, "seed": i}
        path = "/v1/completions"
    r = httpx.post(url + path, json=body, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    return Record.from_json(r.json()["attribution"]["record"])


def _reference(reg: Registered, records: list[Record], credits: dict[str, int], shares: tuple[int, int],
               treasury: str) -> dict[str, int]:
    """The rule (tests/fixtures/rewards.py) over every record at its adapter's price; cumulative amounts."""
    charges: list[Charge] = []
    for r in records:
        a = reg.adapters.get(r.adapter_id)
        charges.append((checksum(r.node), 0 if a is None else token_fee(r, a[3]), None if a is None else a[:3]))
    return reference_rewards(charges, credits, shares, treasury, reg.datasets)[0]


def _advance(anvil: AnvilNode, seconds: int) -> None:
    latest = int(anvil.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    anvil.rpc("evm_setNextBlockTimestamp", latest + seconds)  # the chain's clock: other modules move it too
    anvil.rpc("evm_mine")


@pytest.mark.slow
def test_two_real_nodes_answers_are_paid_by_the_rule(world: tuple[NodeEnv, Registered], anvil: AnvilNode,
                                                      module_da: DAServerProcess, module_da_client: DAClient,
                                                      tmp_path: Path) -> None:
    env_a, reg = world
    da_url, dac = module_da.url, module_da_client
    d = env_a.deployment
    b_account = node_account(d, SECOND_NODE)  # bonded
    env_b = second_node_env(env_a, tmp_path / "node-b", SECOND_NODE, adapters=env_a.settings_extra)
    nodes: list[NodeProcess] = []
    try:
        with ThreadPoolExecutor(2) as starter:  # both load torch and the model at once
            started = [starter.submit(start_node, env) for env in (env_a, env_b)]
            nodes = [f.result() for f in started]
        _paid_by_the_rule(env_a, reg, anvil, da_url, dac, b_account.address, nodes)
    finally:
        for n in nodes:
            n.stop()


def _paid_by_the_rule(env_a: NodeEnv, reg: Registered, anvil: AnvilNode, da_url: str, dac: DAClient,
                      b_addr: str, nodes: list[NodeProcess]) -> None:
    d = env_a.deployment
    env_b = nodes[1].env
    with ThreadPoolExecutor(8) as pool:
        jobs = [(n.url, i) for i in range(N_PER_NODE) for n in nodes]
        records = list(pool.map(lambda job: _ask(*job), jobs))
    assert {checksum(r.node) for r in records} == {d.node.address, b_addr}
    assert {r.adapter_id for r in records} == {*reg.adapters, bytes(32)}
    run_batchers_until_final(anvil, da_url, [(env_a, None), (env_b, dev_keys()[SECOND_NODE])])

    b_account = node_account(d, SECOND_NODE)
    deposits = {d.node.address: 10**21, b_addr: 10**21}
    d.rewards.approve_and_deposit(d.token, d.node.address, deposits[d.node.address], account=d.node)
    d.rewards.approve_and_deposit(d.token, b_addr, deposits[b_addr], account=b_account.account)
    anvil.rpc("evm_mine")  # the epoch ends before the head: its end block must hold both deposits (creditAt)
    rc = RewardsChain(d.deployment.bind(d.client), dac)
    computed = rc.compute(rc.plan())
    treasury = d.rewards.roles()["treasury"]
    ref = _reference(reg, records, deposits, d.rewards.shares(), treasury)
    assert computed.result.records == len(records) == 2 * N_PER_NODE
    assert computed.result.amounts == ref
    # every kind of account is paid: both operators, the three owners, every contributor of the four datasets
    owners = {v[0] for v in reg.adapters.values()}
    contributors = {c for cs, _ in reg.datasets.values() for c in cs}
    assert {d.node.address, b_addr} | owners | contributors <= set(ref)

    p1 = rc.publish(computed, account=d.accounts[2])
    assert rc.verify(p1.epoch).ok
    _advance(anvil, 3600)
    before = {a: d.token.balance_of(a) for a in ref}
    for account in ref:
        assert rc.claim(account, sender=d.deployer) == ref[account]
    assert {a: d.token.balance_of(a) - before[a] for a in ref} == ref
    assert d.rewards.total_claimed() == sum(ref.values()) <= d.rewards.total_debited() <= sum(deposits.values())
    some = sorted(ref)[0]
    tree1 = RewardTree.build(d.chain_id, d.rewards.address, d.token.address, computed.result.cumulative)
    with pytest.raises(error_class("DistributorNothingToClaim")):
        d.rewards.claim(some, computed.result.cumulative[some], tree1.root, tree1.proof(some), account=d.deployer)

    # epoch 2: more answers of node a, posted by its batcher; the epoch-1 root is stale now
    with ThreadPoolExecutor(4) as pool:
        later = list(pool.map(lambda i: _ask(nodes[0].url, i), range(N_PER_NODE, N_PER_NODE + 12)))
    run_batchers_until_final(anvil, da_url, [(env_a, None)])
    computed2 = rc.compute(rc.plan())
    assert computed2.result.records == len(later)
    ref2 = _reference(reg, records + later, deposits, d.rewards.shares(), treasury)
    assert computed2.result.cumulative == ref2
    rc.publish(computed2, account=d.accounts[2])
    assert rc.verify(p1.epoch + 1).ok
    _advance(anvil, 3600)
    with pytest.raises(error_class("DistributorRootMismatch")):
        d.rewards.claim(some, computed.result.cumulative[some], tree1.root, tree1.proof(some), account=d.deployer)
    assert ref2[d.node.address] > ref[d.node.address] and ref2[b_addr] == ref[b_addr]  # only node a answered
    for account in ref2:
        if ref2[account] > ref[account]:
            assert rc.claim(account, sender=d.deployer) == ref2[account] - ref[account]
    assert set(ref2) == set(ref) and {a: d.token.balance_of(a) - before[a] for a in ref2} == ref2
    assert d.rewards.total_claimed() == sum(ref2.values()) <= d.rewards.total_debited() <= sum(deposits.values())
    _, _, cumulative, claimed = rc.claimable(some)  # a second claim would pay nothing
    assert cumulative == claimed == ref2[some]
