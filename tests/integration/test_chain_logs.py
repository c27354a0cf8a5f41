"""Paged `eth_getLogs` and RPC URL redaction against a real anvil, behind a proxy that refuses what hosted
providers refuse (too wide a block range, too many results, HTTP errors)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from attribution.chain.client import ChainClient
from attribution.chain.contracts import Token
from attribution.chain.errors import RpcError, RpcUnavailable
from tests.fixtures.chain import AnvilNode, DeployedContracts, FaultyRpc

SECRET_PATH = "/v2/sEcReTkEy0123456789abcdef"
SECRET_QUERY = "apikey=QuErYsEcReT987654321"


@pytest.fixture(scope="module")
def spread_transfers(anvil: AnvilNode, deployment: DeployedContracts) -> tuple[int, int, list[tuple[str, int]]]:
    """20 DevToken mints to account 9, with empty blocks between them (0..5), so logs are spread unevenly over
    ~70 blocks; returns (first block, last block, [(tx hash, log index)] as anvil itself reports them)."""
    d = deployment
    start = d.client.block_number() + 1
    for i in range(20):
        anvil.rpc("anvil_mine", hex(i % 6))
        d.token.mint(d.accounts[9].address, i + 1, account=d.deployer)
    end = d.client.block_number()
    direct = d.client.w3.eth.get_logs({"address": d.token.address, "fromBlock": start, "toBlock": end})
    return start, end, [(e["transactionHash"].to_0x_hex(), int(e["logIndex"])) for e in direct]


def _paged(client: ChainClient, token: str, start: int, end: int, **kw: Any) -> list[tuple[str, int]]:
    return [(e["transactionHash"].to_0x_hex(), int(e["logIndex"]))
            for e in client.get_logs(address=token, from_block=start, to_block=end, **kw)]


def test_range_refusals_halve_the_page_and_lower_the_limit(
        deployment: DeployedContracts, spread_transfers: Any, rpc_proxy: Callable[..., FaultyRpc]) -> None:
    start, end, expected = spread_transfers
    assert len(expected) == 20 and end - start > 60
    proxy = rpc_proxy(max_log_range=7)
    client = ChainClient(proxy.url(), log_block_range=64)
    assert _paged(client, deployment.token.address, start, end) == expected
    calls = proxy.log_calls()
    assert any(refused for *_, refused in calls)  # the provider did refuse ...
    served = [(a, b) for a, b, refused in calls if not refused]
    assert all(b - a + 1 <= 7 for a, b in served)  # ... and every served page fits its limit
    assert [a for a, _ in served] == sorted(a for a, _ in served) and served[0][0] == start and served[-1][1] == end
    assert all(served[i][1] + 1 == served[i + 1][0] for i in range(len(served) - 1))  # no block skipped or re-read
    assert client.log_block_range <= 7  # learned: the next scan does not get refused again
    before = len(proxy.calls)
    assert _paged(client, deployment.token.address, start, end) == expected
    assert not any(refused for *_, refused in proxy.calls[before:])


def test_result_count_refusals_halve_and_grow_back(
        deployment: DeployedContracts, spread_transfers: Any, rpc_proxy: Callable[..., FaultyRpc]) -> None:
    start, end, expected = spread_transfers
    proxy = rpc_proxy(max_log_results=3)
    client = ChainClient(proxy.url(), log_block_range=32)
    assert _paged(client, deployment.token.address, start, end) == expected
    calls = proxy.log_calls()
    assert any(refused for *_, refused in calls)
    served = [(a, b) for a, b, refused in calls if not refused]
    assert all(b >= a for a, b in served) and len(served) > 1
    refused_at = next(i for i, c in enumerate(calls) if c[2])
    smallest = min(b - a + 1 for a, b, _ in calls[refused_at:] if not _)
    later_sizes = [b - a + 1 for a, b, refused in calls[refused_at:] if not refused]
    assert max(later_sizes[later_sizes.index(smallest):]) > smallest  # the page grew again after a small one
    assert client.log_block_range == 32  # a result-count refusal is not a range limit


def test_reverse_scan_yields_newest_first(deployment: DeployedContracts, spread_transfers: Any,
                                          rpc_proxy: Callable[..., FaultyRpc]) -> None:
    start, end, expected = spread_transfers
    proxy = rpc_proxy(max_log_range=10)
    client = ChainClient(proxy.url(), log_block_range=10)
    assert _paged(client, deployment.token.address, start, end, reverse=True) == expected[::-1]
    froms = [a for a, _, refused in proxy.log_calls() if not refused]
    assert froms == sorted(froms, reverse=True)


def test_single_block_still_refused_and_other_errors_are_not_retried(
        deployment: DeployedContracts, spread_transfers: Any, rpc_proxy: Callable[..., FaultyRpc]) -> None:
    start, end, _ = spread_transfers
    too_many = rpc_proxy(max_log_results=0)
    with pytest.raises(RpcError, match="refuses even the logs of block"):
        ChainClient(too_many.url(), log_block_range=16).get_logs(address=deployment.token.address,
                                                                  from_block=start, to_block=end)
    bad = rpc_proxy(refuse_logs_with="invalid params: unknown field `foo`")
    with pytest.raises(RpcError, match="invalid params"):
        ChainClient(bad.url(), log_block_range=16).get_logs(address=deployment.token.address, from_block=start,
                                                            to_block=end)
    assert len(bad.log_calls()) == 1  # halving cannot fix a bad request: no retries


def test_events_decode_filter_and_start_at_the_deploy_block(
        deployment: DeployedContracts, spread_transfers: Any, rpc_proxy: Callable[..., FaultyRpc]) -> None:
    start, end, expected = spread_transfers
    d = deployment
    proxy = rpc_proxy(max_log_range=50)
    token = Token(ChainClient(proxy.url()), d.token.address, d.token.abi, deploy_block=d.deployment.deploy_block)
    mints = list(token.events("Transfer", to=d.accounts[9].address, to_block=end))
    assert [(m.tx_hash, m.log_index) for m in mints if m.block_number >= start] == expected
    assert [m.args["value"] for m in mints if m.block_number >= start] == list(range(1, 21))
    assert all(m.name == "Transfer" and m.args["to"] == d.accounts[9].address for m in mints)
    assert min(a for a, _, _ in proxy.log_calls()) == d.deployment.deploy_block > 0  # never a scan from 0
    with pytest.raises(ValueError, match="from_block"):
        next(Token(d.client, d.token.address, d.token.abi).events("Transfer"))
    with pytest.raises(ValueError, match="no event"):
        next(token.events("Nope"))


# ----------------------------------------------------------------------------------------------------------------
# the RPC URL (it may carry a provider key) never reaches errors, reprs or logs
# ----------------------------------------------------------------------------------------------------------------


def _secrets_absent(text: str) -> None:
    assert "sEcReTkEy" not in text and "QuErYsEcReT" not in text, text


def test_rpc_url_with_a_key_is_never_logged(deployment: DeployedContracts, spread_transfers: Any,
                                            rpc_proxy: Callable[..., FaultyRpc],
                                            caplog: pytest.LogCaptureFixture) -> None:
    start, end, expected = spread_transfers
    proxy = rpc_proxy(max_log_range=30)
    client = ChainClient(proxy.url(f"{SECRET_PATH}?{SECRET_QUERY}"), deployment.deployer)
    caplog.set_level(logging.DEBUG)
    token = Token(client, deployment.token.address, deployment.token.abi)
    assert _paged(client, token.address, start, end) == expected  # the key still reaches the provider
    token.mint(deployment.accounts[8].address, 1)
    assert any("HTTP" in r.getMessage() or "http" in r.getMessage() for r in caplog.records)  # web3/urllib3 spoke
    _secrets_absent(caplog.text)
    _secrets_absent(repr(client))
    assert client.safe_url == f"http://127.0.0.1:{proxy.port}/***"


def test_rpc_errors_never_show_the_url(rpc_proxy: Callable[..., FaultyRpc]) -> None:
    unauthorized = rpc_proxy(http_status=401)
    client = ChainClient(unauthorized.url(SECRET_PATH))
    with pytest.raises(RpcError) as ei:
        client.block_number()
    assert "HTTP 401" in str(ei.value) and "API key" in str(ei.value)
    _secrets_absent("".join(traceback.format_exception(ei.value)))
    overloaded = rpc_proxy(http_status=503)
    with pytest.raises(RpcUnavailable, match="503"):
        ChainClient(overloaded.url(SECRET_PATH)).chain_id  # noqa: B018 - the property is the call
    down = ChainClient(f"http://127.0.0.1:1{SECRET_PATH}?{SECRET_QUERY}")
    with pytest.raises(RpcUnavailable) as ei2:
        down.block_number()
    _secrets_absent("".join(traceback.format_exception(ei2.value)))
    assert "127.0.0.1:1/***" in str(ei2.value)
