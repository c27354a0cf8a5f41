"""JSON-RPC connection and transaction sending: build -> estimate gas -> sign -> send -> receipt.

Local keys only (never `eth_sendTransaction`). Nonces are tracked per sender inside the client, so several
transactions can be sent back to back without waiting for the node's pending pool; any send error resets the
counter to the chain's pending nonce. Reverts surface as the decoded custom error (`attribution.chain.errors`)
whether they happen in `eth_call`, in gas estimation or in a mined transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import BlockIdentifier, FilterParams, LogReceipt, TxParams, TxReceipt

from attribution.chain.artifacts import Artifact
from attribution.chain.errors import (
    ChainError,
    ContractRevert,
    RpcError,
    RpcUnavailable,
    SignerError,
    TransactionFailed,
    UnknownRevert,
)
from attribution.chain.logs import DEFAULT_LOG_BLOCK_RANGE, TopicFilter, iter_logs
from attribution.chain.redact import register_url, scrub
from attribution.chain.reverts import registry
from attribution.hashing import to_checksum_address

log = logging.getLogger(__name__)

T = TypeVar("T")

GAS_MARGIN_NUM, GAS_MARGIN_DEN = 6, 5  # estimate * 1.2


def revert_from(exc: ContractLogicError) -> ContractRevert:
    """Turn web3's revert exception into our decoded `ContractRevert` subclass."""
    data = exc.data
    if isinstance(data, Mapping):
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return registry().decode(data)
    message = exc.message or str(exc)
    if isinstance(data, str) and data.startswith("0x"):
        return UnknownRevert(f"execution reverted ({message})", data=bytes.fromhex(data[2:]))
    return UnknownRevert(f"execution reverted ({message})")


def transport_error(what: str, safe_url: str, e: Exception) -> ChainError:
    """Map a requests/OS error to `RpcUnavailable` (down, overloaded: retry later) or `RpcError` (refused).

    The message names the endpoint only by its redacted URL, and the caller raises it `from None`: requests'
    own messages carry the full URL (with any API key in it) and must not reach a traceback.
    """
    if isinstance(e, requests.HTTPError) and e.response is not None:
        code = int(e.response.status_code)
        if code == 429 or code >= 500:
            return RpcUnavailable(f"{what}: RPC {safe_url} answered HTTP {code} (overloaded or down); retry later")
        return RpcError(f"{what}: RPC {safe_url} answered HTTP {code}; check the URL and its API key")
    return RpcUnavailable(f"{what}: RPC {safe_url} unreachable ({type(e).__name__}); check the URL or run "
                          "`loraledger devnet up`")


class ChainClient:
    """One RPC endpoint plus an optional default signer.

    `rpc_url` may carry a provider key: it is kept for connecting only; errors, logs and `repr` use `safe_url`.
    """

    def __init__(self, rpc_url: str, account: LocalAccount | None = None, *, timeout_s: float = 30.0,
                 receipt_timeout_s: float = 120.0, poll_s: float = 0.05,
                 log_block_range: int = DEFAULT_LOG_BLOCK_RANGE) -> None:
        self.rpc_url = rpc_url
        self.safe_url = register_url(rpc_url)
        self.account = account
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
        self.receipt_timeout_s = receipt_timeout_s
        self.poll_s = poll_s
        #: largest `eth_getLogs` page in blocks; lowered when the provider refuses a range (`logs.iter_logs`).
        self.log_block_range = log_block_range
        self._chain_id: int | None = None
        self._nonces: dict[str, int] = {}
        self._nonce_lock = threading.Lock()

    def __repr__(self) -> str:
        signer = self.account.address if self.account is not None else None
        return f"ChainClient({self.safe_url!r}, signer={signer})"

    # -- connection -------------------------------------------------------------------------------------------

    def _rpc(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (requests.RequestException, OSError) as e:  # requests' messages hold the full URL: `from None`
            raise transport_error(what, self.safe_url, e) from None
        except Web3RPCError as e:
            raise RpcError(scrub(f"{what}: the node answered with an error: {e}")) from e

    @property
    def chain_id(self) -> int:
        """The chain id (asked once)."""
        if self._chain_id is None:
            self._chain_id = int(self._rpc("eth_chainId", lambda: self.w3.eth.chain_id))
        return self._chain_id

    def is_up(self) -> bool:
        """True when the endpoint answers `eth_chainId`."""
        try:
            self.w3.eth.chain_id  # noqa: B018 - the call is the probe
        except Exception:  # noqa: BLE001 - any failure means "not up"
            return False
        return True

    def block_number(self) -> int:
        """The latest block number."""
        return int(self._rpc("eth_blockNumber", lambda: self.w3.eth.block_number))

    def has_code(self, address: str) -> bool:
        """True when `address` holds contract code."""
        return len(self._rpc("eth_getCode", lambda: self.w3.eth.get_code(to_checksum_address(address)))) > 0

    def block_timestamp(self, block: BlockIdentifier = "latest") -> int:
        """The timestamp (unix seconds) of a block, by number or tag."""
        return int(self._rpc("eth_getBlockByNumber", lambda: self.w3.eth.get_block(block))["timestamp"])

    def transaction(self, tx_hash: str | bytes) -> Any:
        """A mined or pending transaction by hash (`eth_getTransactionByHash`: `to`, `input`, ...)."""
        h = tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex()
        return self._rpc("eth_getTransactionByHash", lambda: self.w3.eth.get_transaction(h))  # type: ignore[arg-type]

    def get_logs(self, *, address: str | Sequence[str], from_block: int, to_block: int | str = "latest",
                 topics: Sequence[TopicFilter] = (), reverse: bool = False) -> list[LogReceipt]:
        """`eth_getLogs` paged over block ranges (`logs.iter_logs`): start at the deployment block, never 0."""
        return list(iter_logs(self, address=address, from_block=from_block, to_block=to_block, topics=topics,
                              reverse=reverse))

    def fetch_logs(self, params: FilterParams) -> list[LogReceipt]:
        """One `eth_getLogs` request, unpaged (`logs.LogSource`); use `get_logs` for a range of any size."""
        return list(self._rpc("eth_getLogs", lambda: self.w3.eth.get_logs(params)))

    def contract(self, address: str, abi: list[dict[str, Any]]) -> Contract:
        """A web3 contract object bound to this client's connection."""
        return self.w3.eth.contract(address=to_checksum_address(address), abi=abi)

    # -- calls ------------------------------------------------------------------------------------------------

    def call(self, fn: ContractFunction, *, sender: str | None = None, block: Any = "latest") -> Any:
        """`eth_call` a contract function; a revert raises the decoded `ContractRevert`."""
        params: TxParams = {}
        if sender is not None:
            params["from"] = to_checksum_address(sender)
        try:
            return self._rpc(f"call {fn.fn_name}", lambda: fn.call(params, block_identifier=block))
        except ContractLogicError as e:
            raise revert_from(e) from e

    # -- transactions -----------------------------------------------------------------------------------------

    def _signer(self, account: LocalAccount | None) -> LocalAccount:
        acct = account or self.account
        if acct is None:
            raise SignerError("this client has no signing key; pass --keystore FILE or set LORALEDGER_PRIVATE_KEY")
        return acct

    def _next_nonce(self, address: str) -> int:
        with self._nonce_lock:
            if address not in self._nonces:
                self._nonces[address] = int(self._rpc(
                    "eth_getTransactionCount", lambda: self.w3.eth.get_transaction_count(
                    to_checksum_address(address), "pending")))
            nonce = self._nonces[address]
            self._nonces[address] = nonce + 1
            return nonce

    def reset_nonce(self, address: str | None = None) -> None:
        """Forget cached nonces (all, or one sender's); the next send asks the chain."""
        with self._nonce_lock:
            if address is None:
                self._nonces.clear()
            else:
                self._nonces.pop(to_checksum_address(address), None)

    def _fees(self) -> dict[str, int]:
        latest = self._rpc("eth_getBlock", lambda: self.w3.eth.get_block("latest"))
        base = int(latest.get("baseFeePerGas", 0) or 0)
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except (Web3RPCError, ValueError):
            tip = 1_000_000
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def send(self, tx_in: Mapping[str, Any], account: LocalAccount | None = None) -> TxReceipt:
        """Fill (chain id, nonce, fees, gas), sign, send and wait for the receipt; revert -> `ContractRevert`."""
        acct = self._signer(account)
        tx: dict[str, Any] = dict(tx_in)
        tx["from"] = acct.address
        tx.setdefault("chainId", self.chain_id)
        tx.setdefault("value", 0)
        if "maxFeePerGas" not in tx and "gasPrice" not in tx:
            tx.update(self._fees())
        if "gas" not in tx:
            try:
                estimate = self._rpc("eth_estimateGas", lambda: self.w3.eth.estimate_gas(cast(TxParams, tx)))
            except ContractLogicError as e:
                raise revert_from(e) from e
            tx["gas"] = estimate * GAS_MARGIN_NUM // GAS_MARGIN_DEN
        for attempt in (1, 2):
            tx["nonce"] = self._next_nonce(acct.address)
            raw = bytes(acct.sign_transaction(tx).raw_transaction)
            try:
                tx_hash = self._send_raw(raw)
                break
            except ContractLogicError as e:
                self.reset_nonce(acct.address)
                raise revert_from(e) from e
            except RpcError as e:
                self.reset_nonce(acct.address)
                # Another client with the same key moved the nonce on: refetch it and try once more.
                if attempt == 1 and "nonce" in str(e).lower():
                    log.info("nonce of %s was stale; retrying with the chain's pending nonce", acct.address)
                    continue
                raise RpcError(scrub(f"node rejected the transaction from {acct.address}: {e}")) from e
            except RpcUnavailable:
                self.reset_nonce(acct.address)
                raise
        return self.wait(tx_hash.to_0x_hex(), tx)

    def _send_raw(self, raw: bytes) -> Any:
        return self._rpc("eth_sendRawTransaction", lambda: self.w3.eth.send_raw_transaction(raw))

    def wait(self, tx_hash: str, tx: Mapping[str, Any] | None = None) -> TxReceipt:
        """Wait for a receipt; for status 0 replay the call to recover and raise the revert reason."""
        try:
            receipt = self._rpc("receipt", lambda: self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout_s, poll_latency=self.poll_s))  # type: ignore[arg-type]
        except TimeExhausted as e:
            raise ChainError(f"transaction {tx_hash} not mined within {self.receipt_timeout_s:.0f}s; check the "
                             "node and fees, then look the hash up before resending") from e
        if receipt["status"] == 1:
            log.debug("tx %s mined in block %d (gas %d)", tx_hash, receipt["blockNumber"], receipt["gasUsed"])
            return receipt
        err: ChainError = TransactionFailed(f"transaction {tx_hash} reverted", tx_hash=tx_hash)
        if tx is not None:
            replay = {k: v for k, v in dict(tx).items() if k in ("from", "to", "data", "value", "gas")}
            try:
                self.w3.eth.call(cast(TxParams, replay), block_identifier=receipt["blockNumber"] - 1)
            except ContractLogicError as e:
                err = revert_from(e)
                err.tx_hash = tx_hash  # type: ignore[attr-defined]
            except (requests.RequestException, OSError, Web3RPCError):
                pass  # the replay only improves the message; the failure itself is known
        raise err

    def transact(self, fn: ContractFunction, *, account: LocalAccount | None = None, value: int = 0,
                 gas: int | None = None) -> TxReceipt:
        """Send a state-changing contract call signed by `account` (default: the client's)."""
        acct = self._signer(account)
        params: dict[str, Any] = {"from": acct.address, "value": value}
        if gas is not None:
            params["gas"] = gas
        try:
            tx: dict[str, Any] = dict(fn.build_transaction(cast(TxParams, params)))
        except ContractLogicError as e:
            raise revert_from(e) from e
        except (requests.RequestException, OSError) as e:
            raise transport_error(f"preparing {fn.fn_name}", self.safe_url, e) from None
        except Web3RPCError as e:
            raise RpcError(scrub(f"preparing {fn.fn_name} from {acct.address}: the node answered with an error: "
                                 f"{e}")) from e
        # build_transaction filled fees and the gas estimate (reverts surfaced above); the nonce is ours.
        tx.pop("nonce", None)
        if gas is None and "gas" in tx:
            tx["gas"] = int(tx["gas"]) * GAS_MARGIN_NUM // GAS_MARGIN_DEN
        return self.send(tx, acct)

    def deploy(self, artifact: Artifact, *args: Any, account: LocalAccount | None = None) -> tuple[str, TxReceipt]:
        """Deploy `artifact` with constructor `args`; returns (address, receipt)."""
        if not artifact.deployable:
            raise ChainError(f"{artifact.name} has no creation code (interface or abstract contract)")
        registry().add_abi(artifact.abi)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self.send({"data": data}, account)
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deploying {artifact.name} produced no contract address (tx "
                             f"{receipt['transactionHash'].to_0x_hex()})")
        log.info("deployed %s at %s", artifact.name, address)
        return str(address), receipt
