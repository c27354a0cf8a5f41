"""Exceptions of the DA layer, all under `DAError` (itself an `AttributionError`)."""

from __future__ import annotations

from attribution.errors import AttributionError


class DAError(AttributionError):
    """Root of every error raised by the DA server, client, codec or storage."""


class DANotFound(DAError, LookupError):
    """The DA layer does not hold a payload for this commitment (HTTP 404)."""


class DAUnavailable(DAError, ConnectionError):
    """The DA layer could not be reached or kept failing (5xx, timeouts) after every retry; try again later."""


class DAPayloadMismatch(DAError, ValueError):
    """A payload or certificate does not match what the commitment promises (keccak, length, KZG or signer)."""


class DARequestRejected(DAError, ValueError):
    """The DA layer refused the request as invalid (4xx other than 404); retrying the same request cannot help."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class DACommitmentInvalid(DAError, ValueError):
    """A commitment or certificate is malformed: wrong prefix, bad hex, or undecodable certificate."""


class DAPayloadTooLarge(DAError, ValueError):
    """A payload exceeds the DA blob limit (16 MiB); split the batch into smaller payloads."""


class DAOperatorKeyError(DAError, ValueError):
    """The DA operator key could not be loaded: wrong keystore path, password or key file."""


class DAStorageError(DAError, OSError):
    """The blob store could not write or read durably (disk full, permissions); the put is not stored."""


class DAQuotaExceeded(DAStorageError):
    """Storing the payload would take the blob store past the operator's disk quota (`--quota-bytes`)."""
