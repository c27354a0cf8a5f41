"""Data-availability layer: an OP Alt-DA HTTP server with EigenDA-style certificates, and its client.

`codec` (payload → field elements → blobs, certificate and commitment layout), `kzg` (KZG commitments in a worker
process pool), `operator` (the operator key that signs certificates), `storage` (durable content-addressed blobs),
`server` (the HTTP API), `client` (put/get with retries and verification). See docs/da.md.
"""

from attribution.da.errors import (
    DACommitmentInvalid,
    DAError,
    DANotFound,
    DAPayloadMismatch,
    DAPayloadTooLarge,
    DARequestRejected,
    DAUnavailable,
)

__all__ = [
    "DACommitmentInvalid",
    "DAError",
    "DANotFound",
    "DAPayloadMismatch",
    "DAPayloadTooLarge",
    "DARequestRejected",
    "DAUnavailable",
]
