"""Scheduled changes and the registry history against a real anvil.

Prices, provenance, contributor shares, the active flag and ownership change several times (some changes are
cancelled, a pending reactivation is erased by a deactivation). At many moments (just before and at each
`effectiveAt`) the contract's own views are recorded; the history, rebuilt afterwards from the events through an
RPC that refuses wide `eth_getLogs` ranges, must give exactly those views at those timestamps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from attribution.chain.assets import AssetKind
from attribution.chain.client import ChainClient
from attribution.chain.contracts import AssetRegistry
from attribution.chain.history import HistoryNotSynced, RegistryHistory
from attribution.chain.reverts import error_class
from attribution.terms import AdapterTerms, DatasetTerms
from tests.fixtures.chain import AnvilNode, DeployedContracts, FaultyRpc

DELAY = 3600


def rand32() -> bytes:
    return os.urandom(32)


@dataclass
class Recorder:
    """Records the contract's views of the watched assets at chosen blocks."""

    d: DeployedContracts
    anvil: AnvilNode
    adapters: list[bytes] = field(default_factory=list)
    datasets: list[bytes] = field(default_factory=list)
    seen: list[tuple[int, int, dict[bytes, Any], dict[bytes, Any]]] = field(default_factory=list)

    def mine_at(self, timestamp: int) -> None:
        """Mine an empty block with exactly this timestamp."""
        self.anvil.rpc("evm_setNextBlockTimestamp", hex(timestamp))
        self.anvil.rpc("evm_mine")

    def now(self) -> int:
        return int(self.d.client.w3.eth.get_block("latest")["timestamp"])

    def record(self) -> None:
        """The contract's view of every watched asset at the latest block."""
        block = self.d.client.block_number()
        ts = int(self.d.client.w3.eth.get_block(block)["timestamp"])
        a = self.d.assets
        adapters = {i: a.client.call(a.fn("adapter", i), block=block) for i in self.adapters}
        datasets = {i: a.client.call(a.fn("dataset", i), block=block) for i in self.datasets}
        self.seen.append((block, ts, adapters, datasets))

    def around(self, effective_at: int) -> None:
        """Record one second before `effective_at` (when still ahead) and at it."""
        if effective_at - 1 > self.now():
            self.mine_at(effective_at - 1)
            self.record()
        if effective_at > self.now():
            self.mine_at(effective_at)
        self.record()


def _as_view(s: AdapterTerms) -> tuple[Any, ...]:
    return (s.owner, s.content_hash, s.base_model_id, tuple(s.dataset_ids), tuple(s.weights_bps),
            s.price_per_m_tokens, s.uri, s.active)


def _chain_view(v: Any) -> tuple[Any, ...]:
    owner, content, base, ds, w, price, uri, active, _active_from = v
    return (owner, bytes(content), bytes(base), tuple(bytes(x) for x in ds), tuple(int(x) for x in w), int(price),
            uri, bool(active))


def _ds_view(s: DatasetTerms) -> tuple[Any, ...]:
    return (s.owner, s.dataset_key, tuple(s.contributors), tuple(s.shares_bps), s.uri)


def _ds_chain_view(v: Any) -> tuple[Any, ...]:
    owner, key, contributors, shares, uri = v
    return (owner, bytes(key), tuple(contributors), tuple(int(x) for x in shares), uri)


@pytest.fixture(scope="module")
def story(deployment: DeployedContracts, anvil: AnvilNode) -> Iterator[Recorder]:
    """Register two datasets and an adapter, then change them many times, recording the views as we go.

    Every block is one second after the previous one (`anvil_setBlockTimestampInterval`), as on a real L2 where
    no two blocks share a timestamp (anvil otherwise stamps blocks mined in the same second alike).
    """
    anvil.rpc("anvil_setBlockTimestampInterval", 1)
    try:
        yield _play(deployment, anvil)
    finally:
        anvil.rpc("anvil_removeBlockTimestampInterval")


def _play(d: DeployedContracts, anvil: AnvilNode) -> Recorder:
    acc = d.accounts
    rec = Recorder(d, anvil)
    ds_a = d.assets.register_dataset(rand32(), [acc[5].address], [10000], "ds-a").asset_id
    ds_b = d.assets.register_dataset(rand32(), [acc[6].address, acc[7].address], [6000, 4000], "ds-b").asset_id
    model = rand32()
    d.assets.register_base_model(model, "m")
    adapter = d.assets.register_adapter(rand32(), model, [ds_a], [10000], 100, "v1").asset_id
    other = d.assets.register_adapter(rand32(), model, [], [], 7, "other").asset_id
    rec.adapters, rec.datasets = [adapter, other], [ds_a, ds_b]
    rec.record()

    # price 100 -> 200
    e1 = d.assets.schedule_price(adapter, 200).effective_at
    assert e1 == rec.now() + DELAY
    rec.record()
    rec.around(e1)
    # provenance + price scheduled, then cancelled: it never applies
    e2 = d.assets.schedule_adapter_change(adapter, [ds_a, ds_b], [5000, 5000], 300).effective_at
    d.assets.cancel_adapter_change(adapter)
    rec.around(e2)
    # provenance + price that does apply, and a uri change (immediate)
    e3 = d.assets.schedule_adapter_change(adapter, [ds_b], [10000], 400).effective_at
    d.assets.set_adapter_uri(adapter, "v2")
    rec.record()
    # dataset B's contributors change twice
    e4 = d.assets.schedule_dataset_change(ds_b, [acc[8].address], [10000]).effective_at
    rec.around(e3)
    rec.around(e4)
    e5 = d.assets.schedule_dataset_change(ds_b, [acc[6].address, acc[8].address], [2500, 7500]).effective_at
    rec.around(e5)
    # deactivate (immediate), schedule reactivation, deactivate again before it: the reactivation is erased
    d.assets.set_adapter_active(adapter, False)
    rec.record()
    e6 = d.assets.set_adapter_active(adapter, True).effective_at
    rec.record()
    d.assets.set_adapter_active(adapter, False)
    rec.around(e6)
    e7 = d.assets.set_adapter_active(adapter, True).effective_at
    e8 = d.assets.schedule_price(adapter, 50).effective_at  # price and reactivation one second apart
    rec.around(e7)
    rec.around(e8)
    # the adapter changes hands (two steps; immediate once accepted)
    d.assets.transfer_asset_ownership(AssetKind.ADAPTER, adapter, acc[9].address)
    rec.record()
    d.assets.accept_asset_ownership(AssetKind.ADAPTER, adapter, account=acc[9])
    rec.record()
    e9 = d.assets.schedule_price(adapter, 75, account=acc[9]).effective_at
    rec.around(e9)
    return rec


def test_scheduled_changes_apply_only_from_effective_at(story: Recorder) -> None:
    d = story.d
    adapter = story.adapters[0]
    prices = [int(adapters[adapter][5]) for _, _, adapters, _ in story.seen]
    assert prices[0] == 100 and 200 in prices and 400 in prices and 50 in prices and prices[-1] == 75
    assert 300 not in prices  # the cancelled change never applied
    for (_, ts, adapters, _), (_, next_ts, next_adapters, _) in zip(story.seen, story.seen[1:], strict=False):
        if int(adapters[adapter][5]) != int(next_adapters[adapter][5]):
            assert next_ts > ts  # a price never changes without time passing
    with pytest.raises(error_class("RegistryChangePending")):
        d.assets.schedule_price(story.adapters[1], 8)
        d.assets.schedule_price(story.adapters[1], 9)
    assert d.assets.pending_adapter_change(story.adapters[1]) is not None


def test_history_rebuilds_every_recorded_view(story: Recorder, rpc_proxy: Callable[..., FaultyRpc]) -> None:
    d = story.d
    proxy = rpc_proxy(max_log_range=4)  # a provider that refuses more than 4 blocks per eth_getLogs
    assets = AssetRegistry(ChainClient(proxy.url(), log_block_range=64), d.assets.address, d.assets.abi,
                           deploy_block=d.deployment.deploy_block)
    last_block = story.seen[-1][0]
    history = RegistryHistory.from_chain(assets, to_block=last_block)
    assert history.synced_block == last_block
    assert any(refused for *_, refused in proxy.log_calls())  # the paging was needed ...
    assert max(b - a + 1 for a, b, refused in proxy.log_calls() if not refused) <= 4  # ... and respected
    assert len(story.seen) > 20
    for block, ts, adapters, datasets in story.seen:
        state = history.at(ts)
        for adapter_id, view in adapters.items():
            assert _as_view(state.adapters[adapter_id]) == _chain_view(view), (block, ts)
            assert history.adapter_at(adapter_id, ts) == state.adapters[adapter_id]
        for dataset_id, view in datasets.items():
            assert _ds_view(state.datasets[dataset_id]) == _ds_chain_view(view), (block, ts)
    first_ts = story.seen[0][1]
    assert history.adapter_at(story.adapters[0], first_ts - 10**6) is None  # not registered yet
    a0 = history.adapter_at(story.adapters[0], story.seen[-1][1])
    assert a0 is not None and a0.owner == d.accounts[9].address and a0.fee(2_000_000) == 150
    times = history.change_times(story.adapters[0])
    assert times == sorted(times) and len(times) >= 7


def test_history_syncs_forward_and_refuses_the_unread_future(story: Recorder) -> None:
    d = story.d
    middle_block = story.seen[len(story.seen) // 2][0]
    history = RegistryHistory.from_chain(d.assets, to_block=middle_block)
    with pytest.raises(HistoryNotSynced, match="sync"):
        history.at(story.seen[-1][1])
    assert history.sync(story.seen[-1][0]) > 0
    full = RegistryHistory.from_chain(d.assets, to_block=story.seen[-1][0])
    for _, ts, _, _ in story.seen:
        assert history.at(ts) == full.at(ts)
    assert set(history.adapter_ids) >= set(story.adapters) and set(history.dataset_ids) >= set(story.datasets)
    # the pending change of `other` (scheduled by the previous test, or not) shows only with allow_future
    future = history.at(story.seen[-1][1] + 10 * DELAY, allow_future=True)
    assert future.adapters[story.adapters[0]].price_per_m_tokens == 75
