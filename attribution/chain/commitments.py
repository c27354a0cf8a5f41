"""A posted batch's DA commitment, read from the calldata of the transaction that posted it.

Since issue 21 (gas) `BatchPosted` carries `keccak256(daCommitment)`, not the commitment's bytes: they are already
the `daCommitment` argument of the `postBatch` call in the same transaction, and logging them again cost ~3.9k gas
per batch (docs/contracts.md, "Reading a batch's commitment"). A reader fetches the transaction, decodes its input
with the ledger's ABI and accepts the bytes only when they hash to the event's (= the stored) commitment hash.
"""

from __future__ import annotations

from typing import Any, Protocol

from web3.contract import Contract

from attribution.chain.client import ChainClient
from attribution.chain.errors import ChainError, CommitmentNotFound
from attribution.hashing import keccak256, to_checksum_address

__all__ = ["NOT_IN_CALLDATA", "commitment_from_tx", "posted_commitment"]

#: Why a batch has no commitment to fetch: its transaction did not call postBatch directly.
NOT_IN_CALLDATA = "the DA commitment is not in the posting transaction's calldata (postBatch called by a contract)"


class Ledger(Protocol):
    """What is read of the ledger wrapper (`attribution.chain.contracts.Ledger`, which imports this module)."""

    @property
    def address(self) -> str:
        """The ledger's checksummed address."""

    @property
    def client(self) -> ChainClient:
        """The connection."""

    @property
    def contract(self) -> Contract:
        """The web3 contract (the ledger ABI decodes the calldata)."""


def commitment_from_tx(ledger: Ledger, tx: Any, commitment_hash: bytes) -> bytes:
    """The `daCommitment` argument of the `postBatch` call `tx` (a transaction as `eth_getTransactionByHash` returns
    it) made to `ledger`, checked against `commitment_hash`; raises `CommitmentNotFound` otherwise."""
    h = tx.get("hash")
    where = f"transaction {'0x' + bytes(h).hex() if isinstance(h, bytes | bytearray) else h}"
    to = tx.get("to")
    if to is None or to_checksum_address(to) != ledger.address:
        raise CommitmentNotFound(f"{where} calls {to}, not the ledger {ledger.address}: the node posted through a "
                                 "contract, so its commitment is not in the calldata")
    data = tx.get("input") or b""
    raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
    try:
        fn, args = ledger.contract.decode_function_input(raw)
    except (ValueError, TypeError) as e:
        raise CommitmentNotFound(f"{where} is not a postBatch call to the ledger ({e})") from e
    if fn.fn_name != "postBatch":
        raise CommitmentNotFound(f"{where} calls {fn.fn_name}, not postBatch")
    commitment = bytes(args["daCommitment"])
    if keccak256(commitment) != bytes(commitment_hash):
        raise CommitmentNotFound(f"{where}: keccak256 of its daCommitment argument is not the posted commitment hash "
                                 f"0x{bytes(commitment_hash).hex()} (RPC serving another transaction?)")
    return commitment


def posted_commitment(ledger: Ledger, tx_hash: str | bytes, commitment_hash: bytes) -> bytes:
    """The DA commitment posted in transaction `tx_hash` (see `commitment_from_tx`); RPC failures raise
    `ChainError`, a transaction without the commitment `CommitmentNotFound`."""
    tx = ledger.client.transaction(tx_hash)
    if tx is None:
        raise ChainError(f"the RPC does not know transaction {tx_hash!r}; is it an archive of this chain?")
    return commitment_from_tx(ledger, tx, commitment_hash)
