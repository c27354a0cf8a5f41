"""The transaction manager on a real anvil: already known, nonce too low, bump rules, the fee cap, dev keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from attribution.chain.client import ChainClient
from attribution.chain.errors import DevKeyRefused
from attribution.chain.txmgr import FeeCapExceeded, NonceTooLow, TxManager, TxMgrConfig
from tests.fixtures.chain import AnvilNode, start_anvil, stop_process


@pytest.fixture(scope="module")
def chain() -> Iterator[AnvilNode]:
    node = start_anvil()
    try:
        yield node
    finally:
        stop_process(node.proc)


def _mgr(chain: AnvilNode, **cfg: object) -> TxManager:
    acct = Account.from_key(chain.dev_keys[7])
    return TxManager(ChainClient(chain.rpc_url, acct), acct, TxMgrConfig(**cfg))  # type: ignore[arg-type]


def test_already_known_is_sent_and_nonce_too_low_is_reported(chain: AnvilNode) -> None:
    mgr = _mgr(chain, poll_s=0.05)
    chain.rpc("evm_setAutomine", False)
    try:
        tx = mgr.prepare(Account.from_key(chain.dev_keys[8]).address, b"", gas=21_000)
        mgr.broadcast(tx)
        mgr.broadcast(tx)  # the same bytes again: "already known" is success
        assert mgr.receipt(tx.tx_hash) is None and mgr.is_known(tx.tx_hash)
    finally:
        chain.rpc("evm_setAutomine", True)
    chain.rpc("evm_mine")
    receipt = mgr.receipt(tx.tx_hash)
    assert receipt is not None and receipt["status"] == 1
    with pytest.raises(NonceTooLow):
        mgr.broadcast(mgr.bump(tx))  # its nonce is used on chain now
    assert mgr.reserve_nonce() == tx.nonce + 1  # the local owner moves on from the chain's count


def test_bump_raises_tip_and_cap_by_ten_percent_and_respects_the_fee_cap(chain: AnvilNode) -> None:
    mgr = _mgr(chain)
    tx = mgr.prepare(Account.from_key(chain.dev_keys[8]).address, b"", gas=21_000)
    bumped = mgr.bump(tx)
    assert bumped.nonce == tx.nonce and bumped.tx_hash != tx.tx_hash
    assert bumped.max_priority_fee_per_gas >= tx.max_priority_fee_per_gas * 110 // 100
    assert bumped.max_fee_per_gas >= tx.max_fee_per_gas * 110 // 100
    assert mgr.resubmissions == 1
    capped = _mgr(chain, fee_cap_multiple=1.0)
    with pytest.raises(FeeCapExceeded, match="above the cap"):
        capped.bump(bumped)
    with pytest.raises(ValueError, match="bump_percent"):
        TxMgrConfig(bump_percent=5)


def test_send_and_confirm_and_dev_keys_only_on_the_devnet(chain: AnvilNode) -> None:
    mgr = _mgr(chain, confirmations=1, poll_s=0.05)
    receipt, tx = mgr.send_and_confirm(Account.from_key(chain.dev_keys[8]).address, b"")
    assert receipt["status"] == 1 and bytes(receipt["transactionHash"]) == tx.tx_hash
    assert mgr.is_canonical(receipt) and mgr.confirmations(receipt) >= 1
    assert mgr.l1_fee(receipt, tx.raw) is None  # anvil has no l1Fee and no GasPriceOracle

    class OtherChain(ChainClient):
        @property
        def chain_id(self) -> int:
            return 10

    acct = Account.from_key(chain.dev_keys[7])
    with pytest.raises(DevKeyRefused):
        TxManager(OtherChain(chain.rpc_url, acct), acct)
