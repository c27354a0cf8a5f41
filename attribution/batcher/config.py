"""What the batcher is told (`BatcherConfig`) and how it stops (`BatcherError`, `BatcherInconsistent`)."""

from __future__ import annotations

from dataclasses import dataclass

from attribution.errors import AttributionError
from attribution.records.payload import max_records_for

__all__ = ["DEFAULT_MAX_BATCH_RECORDS", "BatcherConfig", "BatcherError", "BatcherInconsistent"]

#: Records per batch when the ledger does not say: what fits a 16 MiB payload next to one profile without
#: datasets (93 bytes); `_seal_one` lowers it further when a range has more or larger profiles.
DEFAULT_MAX_BATCH_RECORDS = max_records_for(93)


class BatcherError(AttributionError):
    """The batcher cannot go on; the message says why and what to do."""


class BatcherInconsistent(BatcherError):
    """The store and the chain disagree about this node's batches (wrong store, node key or ledger); the batcher
    stops instead of posting anything. Check `--db`, the node key and the ledger address."""


@dataclass(frozen=True)
class BatcherConfig:
    """When to seal, how deep is final, how to back off."""

    seal_interval_s: float = 10.0  # seal whatever waits at least this often
    seal_min_records: int = 10_000  # ... and as soon as this many records wait
    max_batch_records: int | None = None  # None: the ledger's MAX_BATCH_RECORDS, else what fits 16 MiB
    confirmations: int = 2  # blocks (receipt block included) before a posted batch is final
    poll_interval_s: float = 1.0
    resubmit_after_s: float = 20.0  # no receipt after this long: replace the tx with bumped fees
    retention_s: float | None = None  # prune records of final batches older than this (None: keep)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    start_block: int = 0  # first block to scan for BatchPosted events (the ledger's deploy block)

    def __post_init__(self) -> None:
        if self.seal_interval_s <= 0 or self.poll_interval_s <= 0:
            raise BatcherError("seal_interval_s and poll_interval_s must be > 0")
        if self.seal_min_records < 1 or self.confirmations < 1:
            raise BatcherError("seal_min_records and confirmations must be >= 1")
        if self.max_batch_records is not None and self.max_batch_records < 1:
            raise BatcherError(f"max_batch_records must be >= 1, got {self.max_batch_records}")
