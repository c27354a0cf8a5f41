"""The `BatchDisputes` wrapper: open, answer and settle the dispute games of docs/disputes.md.

State-changing methods return a `DisputeTx` (the dispute id the transaction opened, answered or upheld, plus the
`TxResult`); reverts raise the decoded custom error (`reverts.error_class("DisputesNotYetDue")`, ...).
`use_txmgr(txmgr)` sends them through a `TxManager` (nonces, fee bumps, resubmission) instead of the client's
plain send: what a long-running process (the watcher, the node's responder) does.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount

from attribution.chain.base import BoundContract, TxResult, b32, checksum
from attribution.chain.contracts import record_tuple
from attribution.chain.errors import ChainError

if TYPE_CHECKING:
    from attribution.chain.txmgr import TxManager

__all__ = ["BatchDisputes", "Dispute", "DisputeKind", "DisputeStatus", "DisputeTx"]


class DisputeKind(enum.IntEnum):
    """`IBatchDisputes.Kind`."""

    OMISSION = 0
    EQUIVOCATION = 1
    COMMISSION = 2
    AVAILABILITY = 3


class DisputeStatus(enum.IntEnum):
    """`IBatchDisputes.Status`: OPEN waits for an answer; ANSWERED (the node was honest); UPHELD (at fault)."""

    NONE = 0
    OPEN = 1
    ANSWERED = 2
    UPHELD = 3


@dataclass(frozen=True)
class Dispute:
    """One dispute as stored (`index` is the seq, or the chunk index for availability)."""

    dispute_id: int
    kind: DisputeKind
    status: DisputeStatus
    node: str
    deadline: int
    challenger: str
    bond: int
    batch_id: int
    index: int
    leaf: bytes

    def as_json(self) -> dict[str, Any]:
        """JSON-ready view (names as the CLI prints them)."""
        return {"dispute_id": self.dispute_id, "kind": self.kind.name.lower(), "status": self.status.name.lower(),
                "node": self.node, "deadline": self.deadline, "challenger": self.challenger, "bond": str(self.bond),
                "batch_id": self.batch_id, "index": self.index, "leaf": "0x" + self.leaf.hex()}


@dataclass(frozen=True)
class DisputeTx:
    """A dispute transaction: the dispute it concerns and whether it slashed (`slashed` = stake taken)."""

    dispute_id: int
    tx: TxResult
    slashed: int = 0


def _proof(proof: Sequence[bytes | str]) -> list[bytes]:
    return [b32(p) for p in proof]


class BatchDisputes(BoundContract):
    """The disputes contract: the NodeRegistry's only slasher."""

    artifact_name = "BatchDisputes"

    # -- games ----------------------------------------------------------------------------------------------

    def open_omission(self, record_values: Sequence[Any], receipt: bytes, batch_id: int = 0, *,
                      account: LocalAccount | None = None) -> DisputeTx:
        """Challenge the record's node with its receipt (sends `omission_bond()`); `batch_id` = the batch holding
        the seq, 0 when unposted (then an overdue record slashes at once)."""
        return self._result(self._tx("openOmission", record_tuple(record_values), bytes(receipt), int(batch_id),
                                     account=account, value=self.omission_bond()))

    def respond_omission(self, dispute_id: int, proof: Sequence[bytes | str], *,
                         account: LocalAccount | None = None) -> DisputeTx:
        """Answer an omission challenge with the leaf's proof in the batch root (the bond goes to the node)."""
        return self._result(self._tx("respondOmission", int(dispute_id), _proof(proof), account=account))

    def open_availability(self, batch_id: int, chunk_index: int, *,
                          account: LocalAccount | None = None) -> DisputeTx:
        """Challenge a batch's node to publish chunk `chunk_index` of its payload (sends `availability_bond()`)."""
        return self._result(self._tx("openAvailability", int(batch_id), int(chunk_index), account=account,
                                     value=self.availability_bond()))

    def resolve_availability(self, dispute_id: int, commitment: bytes, chunk: bytes, proof: Sequence[bytes | str],
                             *, account: LocalAccount | None = None) -> DisputeTx:
        """Publish the challenged chunk with its proof under the certificate v3's chunk root."""
        return self._result(self._tx("resolveAvailability", int(dispute_id), bytes(commitment), bytes(chunk),
                                     _proof(proof), account=account))

    def settle_expired(self, dispute_id: int, *, account: LocalAccount | None = None) -> DisputeTx:
        """Uphold an unanswered challenge after its deadline (slash, refund, unavailable batch)."""
        return self._result(self._tx("settleExpired", int(dispute_id), account=account))

    def prove_equivocation(self, node: str, seq: int, leaf_a: bytes, receipt_a: bytes, leaf_b: bytes,
                           receipt_b: bytes, *, account: LocalAccount | None = None) -> DisputeTx:
        """Two receipts of `node` for `seq` with different leaves: slashes at once."""
        return self._result(self._tx("proveEquivocation", checksum(node), int(seq), b32(leaf_a), bytes(receipt_a),
                                     b32(leaf_b), bytes(receipt_b), account=account))

    def prove_misplaced_record(self, batch_id: int, record_values: Sequence[Any], proof: Sequence[bytes | str], *,
                               account: LocalAccount | None = None) -> DisputeTx:
        """A record in the batch's root for another chain/ledger/node or outside its range: slashes at once."""
        return self._result(self._tx("proveMisplacedRecord", int(batch_id), record_tuple(record_values),
                                     _proof(proof), account=account))

    def prove_receipt_conflict(self, batch_id: int, record_values: Sequence[Any], proof: Sequence[bytes | str],
                               receipt_leaf: bytes, receipt: bytes, *,
                               account: LocalAccount | None = None) -> DisputeTx:
        """A record in the batch's root whose seq the node signed with another leaf: slashes at once."""
        return self._result(self._tx("proveReceiptConflict", int(batch_id), record_tuple(record_values),
                                     _proof(proof), b32(receipt_leaf), bytes(receipt), account=account))

    def withdraw(self, *, account: LocalAccount | None = None) -> TxResult:
        """Send the caller the bonds and refunds owed to it."""
        return self._tx("withdraw", account=account)

    # -- views ----------------------------------------------------------------------------------------------

    def dispute(self, dispute_id: int) -> Dispute:
        """Dispute `dispute_id` (status NONE for an unknown id)."""
        kind, status, node, deadline, challenger, bond, batch_id, index, leaf = self._call("dispute",
                                                                                           int(dispute_id))
        return Dispute(int(dispute_id), DisputeKind(kind), DisputeStatus(status), node, int(deadline), challenger,
                       int(bond), int(batch_id), int(index), bytes(leaf))

    def dispute_count(self) -> int:
        """The latest dispute id."""
        return int(self._call("disputeCount"))

    def is_unavailable(self, batch_id: int) -> bool:
        """Whether the batch was found unavailable (it earns nothing)."""
        return bool(self._call("isUnavailable", int(batch_id)))

    def open_availability_challenges(self, batch_id: int) -> int:
        """Availability challenges on the batch still open."""
        return int(self._call("openAvailabilityChallenges", int(batch_id)))

    def owed(self, account: str) -> int:
        """Native currency `account` can withdraw."""
        return int(self._call("owed", checksum(account)))

    def receipt_digest(self, node: str, seq: int, leaf: bytes) -> bytes:
        """The EIP-712 digest the node signs for (this chain, ledger, node, seq, leaf)."""
        return bytes(self._call("receiptDigest", checksum(node), int(seq), b32(leaf)))

    def omission_bond(self) -> int:
        """Wei sent with an omission challenge."""
        return int(self._call("omissionBond"))

    def availability_bond(self) -> int:
        """Wei sent with an availability challenge."""
        return int(self._call("availabilityBond"))

    def windows(self) -> dict[str, int]:
        """MAX_POSTING_DELAY, FUTURE_TOLERANCE, CHALLENGE_WINDOW, RESPONSE_WINDOW (seconds)."""
        return {n: int(self._call(n)) for n in ("MAX_POSTING_DELAY", "FUTURE_TOLERANCE", "CHALLENGE_WINDOW",
                                                 "RESPONSE_WINDOW")}

    # -- internals ------------------------------------------------------------------------------------------

    txmgr: TxManager | None = None

    def use_txmgr(self, txmgr: TxManager) -> BatchDisputes:
        """Send every later transaction of this wrapper (without an explicit `account`) through `txmgr`."""
        self.txmgr = txmgr
        return self

    def _tx(self, name: str, *args: Any, account: LocalAccount | None = None, value: int = 0) -> TxResult:
        if self.txmgr is None or account is not None:
            return TxResult.of(self.client.transact(self.fn(name, *args), account=account, value=value))
        from attribution.chain.txmgr import TxFailed

        data = bytes.fromhex(self.contract.encode_abi(name, args=list(args))[2:])
        try:  # the estimate inside raises a decoded custom error before anything is signed
            receipt, _ = self.txmgr.send_and_confirm(self.address, data, value=value)
        except TxFailed as e:  # reverted when mined (the state moved since the estimate): the decoded error
            if e.revert is not None:
                raise e.revert from e
            raise
        return TxResult.of(receipt)

    def _result(self, tx: TxResult) -> DisputeTx:
        for name in ("ChallengeOpened", "ChallengeAnswered", "FaultProven"):
            found = self.receipt_events(tx, name)
            if found:
                slashed = sum(int(e["slashed"]) for e in self.receipt_events(tx, "FaultProven"))
                return DisputeTx(dispute_id=int(found[0]["disputeId"]), tx=tx, slashed=slashed)
        raise ChainError(f"tx {tx.tx_hash} emitted no dispute event; is {self.address} the BatchDisputes?")
