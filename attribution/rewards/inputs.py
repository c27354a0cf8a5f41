"""The reward rule's inputs and outputs: the registry as it stood at time t (`RegistryView`; `ScheduledRegistry` in
memory, `attribution.chain.history.RegistryHistory` from chain events), the split parameters over time
(`SharesSchedule`), an epoch's batches (`EpochBatch`: a `PostedBatch` with its verdict and payload) and what the rule
gives (`EpochRewards` and its parts). The rule itself is in `reference` (record by record) and `rule` (the fast
path)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Protocol

from attribution.chain.batch import PostedBatch
from attribution.errors import AttributionError
from attribution.hashing import to_checksum_address
from attribution.records.payload import DecodedBatch
from attribution.terms import AdapterTerms, DatasetTerms

__all__ = [
    "BPS",
    "RewardsError",
    "RegistryView",
    "AdapterTerms",
    "DatasetTerms",
    "ScheduledRegistry",
    "SharesSchedule",
    "EpochBatch",
    "NodeDebit",
    "Misattribution",
    "BatchSummary",
    "EpochRewards",
    "checksum",
]

BPS = 10_000


class RewardsError(AttributionError):
    """The reward inputs are inconsistent (a share schedule that does not cover a batch, bad credit, bad shares)."""


def checksum(address: str | bytes) -> str:
    """EIP-55 form of a 20-byte address given as bytes or hex (any case); `RewardsError` for anything else."""
    try:
        return to_checksum_address(address)
    except ValueError as e:
        raise RewardsError(f"{e}: {address!r:.80}") from e


# --------------------------------------------------------------------------------------------------------------
# Registry at time t
# --------------------------------------------------------------------------------------------------------------

class RegistryView(Protocol):
    """The registry state in effect at a time (`RegistryHistory` implements it)."""

    def adapter_at(self, adapter_id: bytes, t: int) -> AdapterTerms | None:
        """The adapter's terms in effect at `t`, None if it was not registered by then."""
        ...

    def dataset_at(self, dataset_id: bytes, t: int) -> DatasetTerms | None:
        """The dataset's contributors and shares in effect at `t`, None if not registered by then."""
        ...


class ScheduledRegistry:
    """An in-memory registry history: terms per asset, each in effect from a time (tests, benches, offline runs)."""

    def __init__(self) -> None:
        self._adapters: dict[bytes, tuple[list[int], list[AdapterTerms]]] = {}
        self._datasets: dict[bytes, tuple[list[int], list[DatasetTerms]]] = {}

    @staticmethod
    def _put(table: dict[bytes, Any], key: bytes, effective_at: int, value: Any) -> None:
        times, values = table.setdefault(bytes(key), ([], []))
        i = bisect.bisect_right(times, effective_at)
        times.insert(i, effective_at)
        values.insert(i, value)

    def set_adapter(self, adapter_id: bytes, effective_at: int, terms: AdapterTerms) -> None:
        """Put `terms` in effect for `adapter_id` from `effective_at`."""
        self._put(self._adapters, adapter_id, effective_at, terms)

    def set_dataset(self, dataset_id: bytes, effective_at: int, terms: DatasetTerms) -> None:
        """Put `terms` in effect for `dataset_id` from `effective_at`."""
        self._put(self._datasets, dataset_id, effective_at, terms)

    @staticmethod
    def _at(table: dict[bytes, Any], key: bytes, t: int) -> Any:
        entry = table.get(bytes(key))
        if entry is None:
            return None
        i = bisect.bisect_right(entry[0], t)
        return entry[1][i - 1] if i else None

    def adapter_at(self, adapter_id: bytes, t: int) -> AdapterTerms | None:
        """The adapter's terms in effect at `t`."""
        return self._at(self._adapters, adapter_id, t)  # type: ignore[no-any-return]

    def dataset_at(self, dataset_id: bytes, t: int) -> DatasetTerms | None:
        """The dataset's terms in effect at `t`."""
        return self._at(self._datasets, dataset_id, t)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SharesSchedule:
    """The RewardDistributor's split parameters over time: `(effectiveAt, nodeShareBps, adapterShareBps)` entries.

    `SharesSchedule.fixed(2000, 3000)` is one setting in effect since time 0.
    """

    entries: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        entries = tuple(sorted(((int(t), int(n), int(a)) for t, n, a in self.entries), key=lambda e: e[0]))
        for t, n, a in entries:
            if n < 0 or a < 0 or n + a > BPS:
                raise RewardsError(f"shares at {t}: nodeShareBps {n} + adapterShareBps {a} must be in [0, {BPS}]")
        object.__setattr__(self, "entries", entries)

    @classmethod
    def fixed(cls, node_share_bps: int, adapter_share_bps: int) -> SharesSchedule:
        """One setting, in effect from time 0."""
        return cls(((0, node_share_bps, adapter_share_bps),))

    def at(self, t: int) -> tuple[int, int]:
        """(nodeShareBps, adapterShareBps) in effect at `t`."""
        i = bisect.bisect_right([e[0] for e in self.entries], t)
        if not i:
            raise RewardsError(f"no share parameters in effect at {t}; the schedule starts at "
                               f"{self.entries[0][0] if self.entries else 'never'}")
        return self.entries[i - 1][1], self.entries[i - 1][2]

    def to_json(self) -> list[list[int]]:
        """JSON view."""
        return [list(e) for e in self.entries]


# --------------------------------------------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EpochBatch:
    """One posted batch of the epoch as the rule takes it: the batch (with its `posted_at`), its verdict
    (`attribution.verify.Verdict` value) and decoded payload."""

    posted: PostedBatch
    verdict: str
    decoded: DecodedBatch | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.posted.posted_at is None:
            raise RewardsError(f"batch {self.posted.batch_id} has no postedAt: read it with the ledger's batch(id) "
                               "or from its block")


@dataclass
class NodeDebit:
    """What one node owes for the epoch and what is debited from its credit."""

    node: str
    records: int
    owed: int
    credit: int
    debit: int

    @property
    def short(self) -> bool:
        """True when the credit did not cover the fees (they were scaled by debit/owed)."""
        return self.debit < self.owed

    def to_json(self) -> dict[str, Any]:
        """JSON view (amounts as decimal strings)."""
        return {"node": self.node, "records": self.records, "owed": str(self.owed), "credit": str(self.credit),
                "debit": str(self.debit)}


@dataclass(frozen=True)
class Misattribution:
    """Records of one batch profile whose provenance differs from the registry at `postedAt` (or that name an
    adapter the registry did not have then). They are paid by the registry (or not at all, when unregistered)."""

    batch_id: int
    node: str
    adapter_id: bytes
    reason: str
    seqs: tuple[int, ...]
    reported: tuple[tuple[bytes, int], ...]
    registry: tuple[tuple[bytes, int], ...] | None

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        def prov(p: tuple[tuple[bytes, int], ...] | None) -> Any:
            return None if p is None else [["0x" + d.hex(), w] for d, w in p]
        return {"batchId": self.batch_id, "node": self.node, "adapterId": "0x" + self.adapter_id.hex(),
                "reason": self.reason, "records": len(self.seqs), "seqs": list(self.seqs),
                "reported": prov(self.reported), "registry": prov(self.registry)}


@dataclass(frozen=True)
class BatchSummary:
    """One batch of the epoch: counted or not, and its records' fees before scaling."""

    batch_id: int
    node: str
    verdict: str
    counted: bool
    records: int
    fees: int

    def to_json(self) -> dict[str, Any]:
        """JSON view."""
        return {"batchId": self.batch_id, "node": self.node, "verdict": self.verdict, "counted": self.counted,
                "records": self.records, "fees": str(self.fees)}


@dataclass
class EpochRewards:
    """The result of the rule for one epoch.

    `amounts` are this epoch's payouts per account (treasury included); `cumulative` = previous + amounts for every
    account with a non-zero cumulative amount; `total` = sum(cumulative). `roles[account]` splits an account's
    epoch amount by why it was paid (`node`, `adapter`, `dataset`, `treasury`). `adapters`/`datasets` hold
    per-asset totals for the report.
    """

    amounts: dict[str, int]
    cumulative: dict[str, int]
    nodes: dict[str, NodeDebit]
    batches: list[BatchSummary]
    misattributed: list[Misattribution]
    treasury: str
    dust: int
    unassigned: int
    roles: dict[str, dict[str, int]]
    adapters: dict[bytes, dict[str, int]]
    datasets: dict[bytes, int]
    records: int

    @property
    def debits(self) -> int:
        """Sum of the debits taken from node credit this epoch."""
        return sum(n.debit for n in self.nodes.values())

    @property
    def total(self) -> int:
        """Sum of all cumulative amounts (what `proposeRoot` takes as `total`)."""
        return sum(self.cumulative.values())

    @property
    def paid(self) -> int:
        """Sum of this epoch's amounts to accounts other than as treasury (dust and unassigned excluded)."""
        return sum(v for r in self.roles.values() for k, v in r.items() if k != "treasury")
