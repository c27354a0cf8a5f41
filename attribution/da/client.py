"""Client of the OP Alt-DA HTTP API (our DA server or a real eigenda-proxy).

`DAClient.put(payload) -> commitment` and `DAClient.get(commitment) -> payload` with timeouts and bounded retries
(exponential backoff with jitter) on 5xx, timeouts and connection errors; 4xx are never retried. Commitments that
carry our certificate prefix (`01 00 d0`) are verified: payload keccak, length and (v3) `chunksRoot` always, the
operator signature against `expected_operator` when configured, the KZG commitments when `verify_kzg` is on. Other
commitments (e.g. a real EigenDA cert) are opaque bytes. `AsyncDAClient` is the same over `httpx.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

import httpx

from attribution.chain.redact import register_url, scrub
from attribution.da.chunks import chunks_root
from attribution.da.codec import Certificate, is_our_commitment, parse_commitment
from attribution.da.errors import (
    DACommitmentInvalid,
    DAError,
    DANotFound,
    DAPayloadMismatch,
    DARequestRejected,
    DAUnavailable,
)
from attribution.da.operator import recover_signer
from attribution.hashing import keccak256
from attribution.safejson import JSONInputError, loads

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:3100"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: attempt n (0-based) waits `backoff * 2**n`, capped, times a jitter factor in [0.5, 1.5)."""

    max_retries: int = 5
    backoff: float = 0.2
    max_backoff: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt + 1`; a server `Retry-After` is a lower bound."""
        base = min(self.max_backoff, self.backoff * (2**attempt)) * random.uniform(0.5, 1.5)
        return max(base, min(retry_after, self.max_backoff)) if retry_after is not None else base


class _Retry(Exception):
    """Internal: the attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _error_message(response: httpx.Response) -> str:
    try:
        body = loads(response.content, what="the DA error answer")
        return str(body["error"]["message"])
    except Exception:  # not our JSON error shape (e.g. a proxy's plain text)
        return response.text[:500] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _check_status(response: httpx.Response, what: str) -> None:
    """Map a non-200 status to a named error (4xx) or a retry (5xx)."""
    if response.status_code == 200:
        return
    message = _error_message(response)
    if response.status_code >= 500:
        raise _Retry(f"{what}: HTTP {response.status_code}: {message}", _retry_after(response))
    if response.status_code == 404:
        raise DANotFound(f"{what}: DA layer has no payload for this commitment ({message})")
    raise DARequestRejected(f"{what}: HTTP {response.status_code}: {message}", response.status_code)


class _Verifier:
    def __init__(self, expected_operator: str | None, verify_kzg: bool) -> None:
        self.expected_operator = expected_operator
        self.verify_kzg = verify_kzg

    def check(self, commitment: bytes, payload: bytes) -> None:
        """Raise `DAPayloadMismatch` unless `payload` is what our certificate in `commitment` attests."""
        if not is_our_commitment(commitment):
            return  # opaque: someone else's certificate (e.g. a real EigenDA cert)
        try:
            certificate = parse_commitment(commitment)
        except DACommitmentInvalid as e:
            raise DAPayloadMismatch(f"commitment carries our prefix but no valid certificate: {e}") from e
        self.check_certificate(certificate, payload)

    def check_certificate(self, certificate: Certificate, payload: bytes) -> None:
        if certificate.payload_length != len(payload):
            raise DAPayloadMismatch(
                f"payload is {len(payload)} bytes, the certificate says {certificate.payload_length}"
            )
        if keccak256(payload) != certificate.payload_keccak:
            raise DAPayloadMismatch("payload keccak differs from the certificate; the DA layer served wrong data")
        if certificate.resolvable and chunks_root(payload) != certificate.chunks_root:
            # a root the chunks do not rebuild would leave availability challenges unanswerable
            raise DAPayloadMismatch("chunksRoot in the certificate is not the root of the payload's chunks; the "
                                    "DA layer issued a wrong certificate")
        if self.expected_operator is not None:
            signer = recover_signer(certificate)
            if signer.lower() != self.expected_operator.lower():
                raise DAPayloadMismatch(
                    f"certificate signed by {signer}, expected DA operator {self.expected_operator}"
                )
        if self.verify_kzg and certificate.blob_count:
            from attribution.da.kzg import payload_commitments

            if not certificate.matches_commitments(payload_commitments(payload)):
                raise DAPayloadMismatch("KZG commitments in the certificate do not match the payload's chunks")


class _ClientConfig:
    """What both clients share: the base URL, the retry policy, the certificate verifier and the timeout."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.2,
        *,
        expected_operator: str | None = None,
        verify_kzg: bool = False,
        max_backoff: float = 10.0,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.safe_url = register_url(self.base_url)  # errors and logs name the server by this (no key in a URL)
        # sent on every request: a DA server with an API key refuses puts without it (401)
        self.headers = {"content-type": "application/octet-stream"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff, max_backoff=max_backoff)
        self._verifier = _Verifier(expected_operator, verify_kzg)
        self._open()

    def _open(self) -> None:
        raise NotImplementedError


class DAClient(_ClientConfig):
    """Synchronous Alt-DA client with retries and certificate verification."""

    _http: httpx.Client

    def _open(self) -> None:
        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout)

    def __enter__(self) -> DAClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _request(self, what: str, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        last = "no attempt made"
        for attempt in range(self.retry.max_retries + 1):
            try:
                response = self._http.request(
                    method, path, content=content, headers=self.headers
                )
                _check_status(response, what)
                return response
            except _Retry as e:
                last, retry_after = str(e), e.retry_after
            except httpx.TransportError as e:  # connection refused/reset, timeouts
                last, retry_after = scrub(f"{what}: {type(e).__name__}: {e}"), None
            if attempt < self.retry.max_retries:
                delay = self.retry.delay(attempt, retry_after)
                logger.warning("%s; retry %d/%d in %.2fs", last, attempt + 1, self.retry.max_retries, delay)
                time.sleep(delay)
        raise DAUnavailable(f"{last} (gave up after {self.retry.max_retries + 1} attempts); the DA layer is down")

    def put(self, payload: bytes) -> bytes:
        """Store `payload`; return its commitment (checked against the payload when it is one of ours)."""
        response = self._request("DA put", "POST", "/put", content=payload)
        commitment = response.content
        self._verifier.check(commitment, payload)
        return commitment

    def get(self, commitment: bytes) -> bytes:
        """Fetch the payload of `commitment`; raise `DANotFound` when unknown, `DAPayloadMismatch` when wrong."""
        if not commitment:
            raise DARequestRejected("commitment is empty; pass the bytes that put() returned")
        response = self._request("DA get", "GET", f"/get/0x{bytes(commitment).hex()}")
        payload = response.content
        self._verifier.check(commitment, payload)
        return payload

    def health(self, timeout: float | None = None) -> dict[str, object]:
        """The server's /health JSON (no retries; `timeout` in seconds, default the client's)."""
        try:
            response = self._http.get("/health", timeout=self.timeout if timeout is None else timeout)
        except httpx.TransportError as e:
            raise DAUnavailable(f"DA health: {type(e).__name__}; is the DA server running at "
                                f"{self.safe_url}?") from None
        try:
            _check_status(response, "DA health")
        except _Retry as e:
            raise DAUnavailable(str(e)) from e
        try:
            body = loads(response.content, what="the DA health answer")
        except JSONInputError as e:
            raise DAError(str(e)) from e
        if not isinstance(body, dict):
            raise DAError("DA health answered something other than a JSON object")
        return body


class AsyncDAClient(_ClientConfig):
    """Asynchronous twin of `DAClient` (same retries and verification, over `httpx.AsyncClient`)."""

    _http: httpx.AsyncClient

    def _open(self) -> None:
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)

    async def __aenter__(self) -> AsyncDAClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def _request(self, what: str, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        last = "no attempt made"
        for attempt in range(self.retry.max_retries + 1):
            try:
                response = await self._http.request(
                    method, path, content=content, headers=self.headers
                )
                _check_status(response, what)
                return response
            except _Retry as e:
                last, retry_after = str(e), e.retry_after
            except httpx.TransportError as e:
                last, retry_after = scrub(f"{what}: {type(e).__name__}: {e}"), None
            if attempt < self.retry.max_retries:
                delay = self.retry.delay(attempt, retry_after)
                logger.warning("%s; retry %d/%d in %.2fs", last, attempt + 1, self.retry.max_retries, delay)
                await asyncio.sleep(delay)
        raise DAUnavailable(f"{last} (gave up after {self.retry.max_retries + 1} attempts); the DA layer is down")

    async def put(self, payload: bytes) -> bytes:
        """Store `payload`; return its commitment (checked against the payload when it is one of ours)."""
        response = await self._request("DA put", "POST", "/put", content=payload)
        commitment = response.content
        await asyncio.to_thread(self._verifier.check, commitment, payload)
        return commitment

    async def get(self, commitment: bytes) -> bytes:
        """Fetch the payload of `commitment`; raise `DANotFound` when unknown, `DAPayloadMismatch` when wrong."""
        if not commitment:
            raise DARequestRejected("commitment is empty; pass the bytes that put() returned")
        response = await self._request("DA get", "GET", f"/get/0x{bytes(commitment).hex()}")
        payload = response.content
        await asyncio.to_thread(self._verifier.check, commitment, payload)
        return payload
