"""What `BatchDisputes` says about a batch or a record, for `verify batch` and `verify answer` (docs/disputes.md).

Disputes are found by their events' indexed arguments (`ChallengeOpened` and `FaultProven` name the batch and the
node) and read back with the `dispute(id)` view, so the status shown is the contract's own (open, answered,
upheld); `isUnavailable(batchId)` says whether the batch earns nothing in rewards (docs/rewards.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attribution.chain.disputes import BatchDisputes, Dispute, DisputeKind, DisputeStatus
from attribution.chain.errors import ChainError
from attribution.verify.batches import VerifyError

__all__ = ["DisputeReport", "batch_disputes", "record_disputes"]

_RECORD_KINDS = (DisputeKind.OMISSION, DisputeKind.EQUIVOCATION, DisputeKind.COMMISSION)


@dataclass
class DisputeReport:
    """The disputes about one batch (and, for an answer, about its record's seq) and whether the batch is
    unavailable."""

    batch_id: int | None
    unavailable: bool
    disputes: list[Dispute] = field(default_factory=list)
    slashed: dict[int, int] = field(default_factory=dict)  # dispute id -> stake taken

    @property
    def open(self) -> list[Dispute]:
        """Challenges still waiting for the node's answer."""
        return [d for d in self.disputes if d.status is DisputeStatus.OPEN]

    def summary(self) -> str:
        """One line: counts per status and what they mean for rewards."""
        if not self.disputes:
            return "no disputes"
        counts = {s: sum(d.status is s for d in self.disputes) for s in (DisputeStatus.OPEN, DisputeStatus.ANSWERED,
                                                                          DisputeStatus.UPHELD)}
        text = ", ".join(f"{n} {s.name.lower()}" for s, n in counts.items() if n)
        return f"{len(self.disputes)} dispute{'s' * (len(self.disputes) != 1)}: {text}"

    def lines(self) -> list[str]:
        """One line per dispute, for the text output."""
        out = []
        for d in self.disputes:
            about = f"chunk {d.index}" if d.kind is DisputeKind.AVAILABILITY else f"seq {d.index}"
            what = {DisputeStatus.OPEN: f"open, answer due by {d.deadline}",
                    DisputeStatus.ANSWERED: "answered (the node was honest)",
                    DisputeStatus.UPHELD: f"upheld, {self.slashed.get(d.dispute_id, 0)} of the node's stake slashed"}
            out.append(f"dispute {d.dispute_id}: {d.kind.name.lower()} of {about}, challenger {d.challenger}: "
                       f"{what.get(d.status, d.status.name.lower())}")
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON view (`earnsRewards` false when the batch is unavailable)."""
        return {"batchId": self.batch_id, "unavailable": self.unavailable, "earnsRewards": not self.unavailable,
                "disputes": [{"disputeId": d.dispute_id, "kind": d.kind.name.lower(), "status": d.status.name.lower(),
                              "node": d.node, "batchId": d.batch_id or None, "index": d.index,
                              "leaf": "0x" + d.leaf.hex(), "challenger": d.challenger, "bond": str(d.bond),
                              "deadline": d.deadline, "slashed": str(self.slashed.get(d.dispute_id, 0))}
                             for d in self.disputes]}


def _slashed(contract: BatchDisputes, ids: set[int], **indexed: Any) -> dict[int, int]:
    out: dict[int, int] = {}
    for e in contract.events("FaultProven", **indexed):
        if int(e.args["disputeId"]) in ids:
            out[int(e.args["disputeId"])] = int(e.args["slashed"])
    return out


def batch_disputes(contract: BatchDisputes, batch_id: int) -> DisputeReport:
    """Every dispute naming `batch_id`, with the stake each upheld one took, and `isUnavailable`."""
    try:
        ids = {int(e.args["disputeId"]) for name in ("ChallengeOpened", "FaultProven")
               for e in contract.events(name, batchId=batch_id)}
        found = [contract.dispute(i) for i in sorted(ids)]
        return DisputeReport(batch_id, contract.is_unavailable(batch_id), found,
                             _slashed(contract, ids, batchId=batch_id))
    except (ChainError, ValueError) as e:
        raise VerifyError(f"cannot read the disputes of batch {batch_id} from {contract.address}: {e}") from e


def record_disputes(contract: BatchDisputes, node: str, seq: int, batch_id: int | None) -> DisputeReport:
    """The disputes of the record's batch (when posted) plus those about `seq` of `node` that name no batch
    (an omission of an unposted seq, an equivocation)."""
    report = batch_disputes(contract, batch_id) if batch_id else DisputeReport(None, False)
    have = {d.dispute_id for d in report.disputes}
    try:
        ids = {int(e.args["disputeId"]) for name in ("ChallengeOpened", "FaultProven")
               for e in contract.events(name, node=node)
               if int(e.args["index"]) == seq and DisputeKind(int(e.args["kind"])) in _RECORD_KINDS} - have
        extra = [contract.dispute(i) for i in sorted(ids)]
        slashed = _slashed(contract, ids, node=node)
    except (ChainError, ValueError) as e:
        raise VerifyError(f"cannot read the disputes of seq {seq} of {node} from {contract.address}: {e}") from e
    report.disputes = sorted(report.disputes + extra, key=lambda d: d.dispute_id)
    report.slashed.update(slashed)
    return report
