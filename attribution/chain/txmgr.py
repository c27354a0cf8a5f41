"""A transaction manager for one sender, after the OP Stack's `op-service/txmgr`.

- **One nonce owner.** Only this object picks nonces for its key; it tracks them locally and takes
  `max(local, chain pending)` for each new transaction, so a restart or another tool's transaction cannot make it
  reuse a nonce.
- **EIP-1559 with an explicit tip** (`tip_wei`, or the node's suggestion, at least `min_tip_wei`) and
  `maxFeePerGas = 2 × base fee + tip`. A fee cap: a transaction is never signed with a fee cap above
  `fee_cap_multiple ×` the currently suggested one (`FeeCapExceeded`).
- **Sign, persist, then broadcast.** `prepare()` returns a signed `PreparedTx` (raw bytes, hash, nonce, fees)
  that the caller stores before `broadcast()`, so a crash in between leaves a transaction it can rebroadcast
  byte for byte. "already known" is success; "nonce too low" raises `NonceTooLow` (the caller then asks the
  chain whether one of its hashes landed).
- **Resubmission.** `bump()` re-signs the same nonce with tip and fee cap raised by at least `bump_percent`
  (≥ 10%, what geth and anvil require of a replacement) and at least the current suggestion.
- **Receipts** by polling (`receipt()`), `confirmations()` for the depth, `is_canonical()` for reorgs, and on OP
  chains the L1 data fee (`l1_fee()`: the receipt's `l1Fee`, else `GasPriceOracle.getL1Fee`).

The batcher drives these steps itself (it persists between them); `send_and_confirm()` runs the whole loop for
simple callers such as the benchmark.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import requests
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import TxParams, TxReceipt, Wei

from attribution.chain.client import ChainClient, revert_from
from attribution.chain.errors import ChainError, RpcError, RpcUnavailable
from attribution.chain.keys import check_key_allowed
from attribution.chain.redact import scrub
from attribution.hashing import keccak256, to_checksum_address

__all__ = [
    "GAS_PRICE_ORACLE",
    "FeeCapExceeded",
    "NonceTooLow",
    "PreparedTx",
    "TxFailed",
    "TxManager",
    "TxMgrConfig",
    "TxTimeout",
]

logger = logging.getLogger(__name__)

#: The OP Stack predeploy that prices the L1 data of an L2 transaction.
GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
_GET_L1_FEE = keccak256(b"getL1Fee(bytes)")[:4]


class FeeCapExceeded(ChainError):
    """The fee needed is above `fee_cap_multiple ×` the suggested fee; raise the multiple or wait for lower fees."""


class NonceTooLow(ChainError):
    """The node says the nonce is used: one of our transactions with it landed, or another sender used our key."""


class TxTimeout(ChainError, TimeoutError):
    """No receipt within the timeout, resubmissions included; check the node and the fees."""


class TxFailed(ChainError):
    """The transaction was mined with status 0 (reverted); `revert` holds the decoded error when known."""

    def __init__(self, message: str, receipt: TxReceipt, revert: ChainError | None = None) -> None:
        super().__init__(message)
        self.receipt = receipt
        self.revert = revert


@dataclass(frozen=True)
class TxMgrConfig:
    """Fee and timing policy of a `TxManager`."""

    tip_wei: int | None = None  # explicit priority fee; None = the node's suggestion
    min_tip_wei: int = 1_000_000  # 0.001 gwei floor for the tip
    fee_cap_multiple: float = 10.0  # never sign maxFeePerGas above this × the suggested maxFeePerGas
    bump_percent: int = 10  # a replacement raises tip and fee cap by at least this much (geth requires 10)
    resubmit_after_s: float = 20.0  # no receipt after this long: bump and resubmit
    receipt_timeout_s: float = 300.0  # give up waiting (send_and_confirm only)
    poll_s: float = 0.2
    confirmations: int = 1  # receipt depth for `send_and_confirm`
    gas_margin: float = 1.2  # gas limit = estimate × margin

    def __post_init__(self) -> None:
        if self.bump_percent < 10:
            raise ValueError(f"bump_percent must be >= 10 (nodes reject smaller replacements), got {self.bump_percent}")
        if self.fee_cap_multiple < 1:
            raise ValueError(f"fee_cap_multiple must be >= 1, got {self.fee_cap_multiple}")


@dataclass(frozen=True)
class PreparedTx:
    """A signed transaction: what the caller persists before broadcasting."""

    raw: bytes
    tx_hash: bytes
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas: int
    to: str
    data: bytes
    sent_at: float = field(default=0.0, compare=False)
    value: int = 0  # wei sent with the call (a dispute bond); 0 for the batcher's postBatch

    def info(self) -> dict[str, Any]:
        """JSON-friendly fields for the store (big ints as decimal strings)."""
        return {"nonce": self.nonce, "max_fee_per_gas": str(self.max_fee_per_gas),
                "max_priority_fee_per_gas": str(self.max_priority_fee_per_gas), "gas": self.gas,
                "tx_hash": "0x" + self.tx_hash.hex(), "raw": "0x" + self.raw.hex()}


class TxManager:
    """Sends transactions from one local key; see the module doc."""

    def __init__(self, client: ChainClient, account: LocalAccount, config: TxMgrConfig | None = None) -> None:
        self.client = client
        self.w3 = client.w3
        self.account = account
        self.config = config or TxMgrConfig()
        check_key_allowed(account, client.chain_id)  # dev keys only on the devnet chain id
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self.resubmissions = 0  # metric
        self._has_oracle: bool | None = None

    # -- RPC ----------------------------------------------------------------------------------------------------

    def _rpc(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except (requests.ConnectionError, requests.Timeout, OSError) as e:
            # requests' own messages carry the full URL (with any key in it): `from None`, the redacted URL only
            raise RpcUnavailable(f"{what}: RPC {self.client.safe_url} unreachable ({type(e).__name__}); the batcher "
                                 "retries with backoff") from None
        except Web3RPCError as e:
            raise RpcError(scrub(f"{what}: {e}")) from e

    # -- fees and nonces ----------------------------------------------------------------------------------------

    def suggested_fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas) as suggested now: 2 × base fee + tip."""
        block = self._rpc("eth_getBlock", lambda: self.w3.eth.get_block("latest"))
        base = int(block.get("baseFeePerGas", 0) or 0)
        tip = self.config.tip_wei
        if tip is None:
            try:
                tip = int(self._rpc("eth_maxPriorityFeePerGas", lambda: self.w3.eth.max_priority_fee))
            except RpcError:
                tip = self.config.min_tip_wei
        tip = max(tip, self.config.min_tip_wei)
        return 2 * base + tip, tip

    def _fee_cap(self, suggested_max_fee: int) -> int:
        return int(suggested_max_fee * self.config.fee_cap_multiple)

    def chain_nonce(self, block: str = "pending") -> int:
        """The sender's transaction count at `block` ("pending" includes the node's pool)."""
        return int(self._rpc("eth_getTransactionCount",
                             lambda: self.w3.eth.get_transaction_count(self.account.address, block)))  # type: ignore[arg-type]

    def reserve_nonce(self) -> int:
        """The next nonce for a new transaction: max(local counter, chain pending)."""
        with self._lock:
            chain = self.chain_nonce("pending")
            nonce = chain if self._next_nonce is None else max(self._next_nonce, chain)
            self._next_nonce = nonce + 1
            return nonce

    def reset_nonce(self) -> None:
        """Forget the local counter (after a reorg or "nonce too low"); the next nonce comes from the chain."""
        with self._lock:
            self._next_nonce = None

    # -- building, signing, sending -----------------------------------------------------------------------------

    def estimate_gas(self, to: str, data: bytes, value: int = 0) -> int:
        """Gas estimate × margin; a revert raises the decoded custom error."""
        params: TxParams = {"from": self.account.address, "to": to_checksum_address(to), "data": HexBytes(data),
                            "value": Wei(value)}
        try:
            estimate = int(self._rpc("eth_estimateGas", lambda: self.w3.eth.estimate_gas(params)))
        except ContractLogicError as e:
            raise revert_from(e) from e
        return int(estimate * self.config.gas_margin)

    def _sign(self, to: str, data: bytes, nonce: int, gas: int, max_fee: int, tip: int, value: int = 0) -> PreparedTx:
        tx: dict[str, Any] = {"type": 2, "chainId": self.client.chain_id, "nonce": nonce,
                              "to": to_checksum_address(to), "data": HexBytes(data), "value": value, "gas": gas,
                              "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
        signed = self.account.sign_transaction(tx)
        return PreparedTx(raw=bytes(signed.raw_transaction), tx_hash=bytes(signed.hash), nonce=nonce,
                          max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip, gas=gas, to=tx["to"], data=data,
                          value=value)

    def prepare(self, to: str, data: bytes, *, gas: int | None = None, nonce: int | None = None,
                value: int = 0) -> PreparedTx:
        """Estimate (unless `gas`), price and sign a new transaction with the next nonce (or `nonce`), sending
        `value` wei with it."""
        gas = gas if gas is not None else self.estimate_gas(to, data, value)
        max_fee, tip = self.suggested_fees()
        return self._sign(to, data, self.reserve_nonce() if nonce is None else nonce, gas, max_fee, tip, value)

    def bump(self, prev: PreparedTx) -> PreparedTx:
        """The same nonce, tip and fee cap raised ≥ `bump_percent` (and at least the current suggestion)."""
        suggested_max, suggested_tip = self.suggested_fees()
        pct = self.config.bump_percent
        tip = max(prev.max_priority_fee_per_gas * (100 + pct) // 100 + 1, suggested_tip)
        max_fee = max(prev.max_fee_per_gas * (100 + pct) // 100 + 1, suggested_max, tip)
        cap = self._fee_cap(suggested_max)
        if max_fee > cap:
            raise FeeCapExceeded(f"replacing nonce {prev.nonce} needs maxFeePerGas {max_fee}, above the cap {cap} "
                                 f"({self.config.fee_cap_multiple}× the suggested {suggested_max}); waiting instead")
        self.resubmissions += 1
        return self._sign(prev.to, prev.data, prev.nonce, prev.gas, max_fee, tip, prev.value)

    def broadcast(self, tx: PreparedTx) -> PreparedTx:
        """Send a signed transaction; "already known" counts as sent. Returns it with `sent_at` set."""
        try:
            self._rpc("eth_sendRawTransaction", lambda: self.w3.eth.send_raw_transaction(tx.raw))
        except ContractLogicError as e:
            raise revert_from(e) from e
        except RpcError as e:
            msg = str(e).lower()
            if "already known" in msg or "already imported" in msg or "known transaction" in msg:
                logger.info("tx %s already known to the node", "0x" + tx.tx_hash.hex())
            elif "nonce too low" in msg or "nonce is too low" in msg or "already used" in msg:
                raise NonceTooLow(f"nonce {tx.nonce} of {self.account.address} is used on chain: {e}") from e
            elif "underpriced" in msg:
                raise FeeCapExceeded(f"the node refused tx nonce {tx.nonce} as underpriced: {e}") from e
            else:
                raise
        logger.info("sent tx %s nonce %d tip %d maxFee %d", "0x" + tx.tx_hash.hex(), tx.nonce,
                    tx.max_priority_fee_per_gas, tx.max_fee_per_gas)
        return replace(tx, sent_at=time.time())

    # -- receipts -----------------------------------------------------------------------------------------------

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt, or None while the transaction is not mined (or was dropped by a reorg)."""
        try:
            return cast(TxReceipt, self._rpc("eth_getTransactionReceipt",
                                             lambda: self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))))
        except TransactionNotFound:
            return None
        except RpcError as e:  # anvil answers an unknown hash with an error instead of null
            if "not found" in str(e).lower():
                return None
            raise

    def is_known(self, tx_hash: bytes) -> bool:
        """True when the node knows the transaction (in its pool or mined)."""
        try:
            self._rpc("eth_getTransactionByHash", lambda: self.w3.eth.get_transaction(HexBytes(tx_hash)))
        except TransactionNotFound:
            return False
        except RpcError as e:
            if "not found" in str(e).lower():
                return False
            raise
        return True

    def first_receipt(self, hashes: Sequence[bytes]) -> TxReceipt | None:
        """The receipt of whichever of these (same-nonce) transactions was mined, or None."""
        for h in reversed(hashes):
            r = self.receipt(h)
            if r is not None:
                return r
        return None

    def head(self) -> int:
        """The latest block number."""
        return int(self._rpc("eth_blockNumber", lambda: self.w3.eth.block_number))

    def confirmations(self, receipt: Mapping[str, Any], head: int | None = None) -> int:
        """Blocks on top of (and including) the receipt's block."""
        head = self.head() if head is None else head
        return max(0, head - int(receipt["blockNumber"]) + 1)

    def is_canonical(self, receipt: Mapping[str, Any]) -> bool:
        """True when the receipt's block is still the chain's block at that height (no reorg since)."""
        try:
            block = self._rpc("eth_getBlock", lambda: self.w3.eth.get_block(int(receipt["blockNumber"])))
        except Exception as e:  # noqa: BLE001 - a missing block means not canonical
            if isinstance(e, RpcUnavailable):
                raise
            return False
        return bytes(block["hash"]) == bytes(receipt["blockHash"])

    def l1_fee(self, receipt: Mapping[str, Any], raw: bytes | None = None) -> int | None:
        """The L1 data fee (wei) of a mined tx on an OP chain: the receipt's `l1Fee`, else GasPriceOracle."""
        fee = receipt.get("l1Fee")
        if fee is not None:
            return int(fee, 16) if isinstance(fee, str) else int(fee)
        if raw is None:
            return None
        if self._has_oracle is None:
            code = self._rpc("eth_getCode", lambda: self.w3.eth.get_code(to_checksum_address(GAS_PRICE_ORACLE)))
            self._has_oracle = len(code) > 0
        if not self._has_oracle:
            return None
        from eth_abi import encode as abi_encode

        data = _GET_L1_FEE + abi_encode(["bytes"], [raw])
        try:
            out = self._rpc("getL1Fee", lambda: self.w3.eth.call(
                {"to": to_checksum_address(GAS_PRICE_ORACLE), "data": HexBytes(data)},
                block_identifier=int(receipt["blockNumber"])))
        except (ContractLogicError, RpcError):
            return None
        return int.from_bytes(bytes(out)[-32:], "big") if out else None

    def revert_of(self, receipt: Mapping[str, Any], tx: PreparedTx) -> ChainError | None:
        """Replay a reverted transaction one block earlier to decode its custom error."""
        try:
            self.w3.eth.call({"from": self.account.address, "to": to_checksum_address(tx.to),
                              "data": HexBytes(tx.data), "gas": tx.gas, "value": Wei(tx.value)},
                             block_identifier=int(receipt["blockNumber"]) - 1)
        except ContractLogicError as e:
            return revert_from(e)
        except Exception:  # noqa: BLE001 - best effort only
            return None
        return None

    # -- the whole loop -----------------------------------------------------------------------------------------

    def send_and_confirm(self, to: str, data: bytes, *, gas: int | None = None,
                         value: int = 0) -> tuple[TxReceipt, PreparedTx]:
        """Prepare, broadcast, resubmit with bumps after `resubmit_after_s`, wait for `confirmations`."""
        tx = self.broadcast(self.prepare(to, data, gas=gas, value=value))
        hashes = [tx.tx_hash]
        deadline = time.monotonic() + self.config.receipt_timeout_s
        last_send = time.monotonic()
        while True:
            receipt = self.first_receipt(hashes)
            if receipt is not None:
                if int(receipt["status"]) != 1:
                    raise TxFailed(f"tx {receipt['transactionHash'].to_0x_hex()} reverted", receipt,
                                   self.revert_of(receipt, tx))
                if self.confirmations(receipt) >= self.config.confirmations:
                    return receipt, tx
            elif time.monotonic() - last_send > self.config.resubmit_after_s:
                try:
                    tx = self.broadcast(self.bump(tx))
                    hashes.append(tx.tx_hash)
                except FeeCapExceeded as e:
                    logger.warning("%s", e)
                except NonceTooLow:
                    pass  # one of ours landed: the next receipt lookup finds it
                last_send = time.monotonic()
            if time.monotonic() > deadline:
                raise TxTimeout(f"no receipt for nonce {tx.nonce} within {self.config.receipt_timeout_s:.0f}s "
                                f"({len(hashes)} submissions)")
            time.sleep(self.config.poll_s)
