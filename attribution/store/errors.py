"""The record store's errors: `StoreError` and its kinds, each with the mix-in a caller may already catch."""

from __future__ import annotations

from attribution.errors import AttributionError


class StoreError(AttributionError):
    """A record-store operation failed."""


class StoreFullError(StoreError, OSError):
    """The store reached its disk bound (`max_bytes`) and refuses new records.

    Raise the bound (`store.max_bytes` in the settings), free disk, or let the batcher post and prune.
    """


class StoreClosedError(StoreError, RuntimeError):
    """The store was closed; open a new `RecordStore`."""


class StoreLockedError(StoreError, OSError):
    """Another process holds the store's write lock; only one node process may append to a store."""


class StoreReadOnlyError(StoreError, PermissionError):
    """The store was opened read-only (`readonly=True`); open it writable to append or change batches."""


class StoreTypeError(StoreError, TypeError):
    """A value of the wrong type or size was passed to the store; nothing was written. The message names it."""


class StoreDeadError(StoreError, RuntimeError):
    """The store's committer thread died; no append can complete. Restart the process (the log is intact)."""


class RecordNotFoundError(StoreError, LookupError):
    """No record with that seq is stored (yet); `next_seq()` says how far the log goes."""


class BatchError(StoreError, ValueError):
    """A batch does not fit the log: wrong first seq, empty, or past the stored records."""


class BatchStateError(BatchError):
    """A batch state change that is not allowed (states move forward: sealed, dispersed, submitted, posted, final;
    only a reorg sends a batch back to `dispersed`)."""
