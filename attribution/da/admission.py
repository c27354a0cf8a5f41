"""Who may put or get at the DA server, and how much at once: per-address caps, the write key, spooled bodies.

Put bodies go to a temp file as they arrive (memory held per upload: one flush buffer), so stalled or slow uploads
cost disk that the receive caps bound, never memory; the payload is read back only inside a put slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from pathlib import Path

from starlette.requests import Request

from attribution.http_server import client_bucket

__all__ = ["BodyTooLarge", "authorized", "client_of", "give", "spool_body", "take"]

_SPOOL_FLUSH = 1 << 20


class BodyTooLarge(Exception):
    """The body passed the payload limit."""


async def spool_body(request: Request, limit: int, tmp_dir: Path) -> tuple[Path, int]:
    """Receive the body into a temp file under `tmp_dir` (memory held: one flush buffer); `(path, size)`.

    Raises `BodyTooLarge` past `limit` (checked on Content-Length first, then while streaming); the caller deletes
    the file.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    path = tmp_dir / f"upload.{uuid.uuid4().hex}.tmp"
    f = await asyncio.to_thread(open, path, "xb")
    try:
        size = 0
        buffered: list[bytes] = []
        pending = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            buffered.append(chunk)
            pending += len(chunk)
            if pending >= _SPOOL_FLUSH:
                await asyncio.to_thread(f.writelines, buffered)
                buffered, pending = [], 0
        if buffered:
            await asyncio.to_thread(f.writelines, buffered)
    except BaseException:
        f.close()
        path.unlink(missing_ok=True)
        raise
    f.close()
    return path, size


def client_of(request: Request) -> str:
    """The address `request` is counted under (`client_bucket`)."""
    return client_bucket(request.client.host if request.client else None)


def take(counts: dict[str, int], key: str, cap: int) -> bool:
    """Count one more for `key` unless it already has `cap`; False when refused."""
    n = counts.get(key, 0)
    if n >= cap:
        return False
    counts[key] = n + 1
    return True


def give(counts: dict[str, int], key: str) -> None:
    """Count one less for `key` (forgotten at zero, so the dict holds only addresses with work in flight)."""
    n = counts.get(key, 1) - 1
    if n > 0:
        counts[key] = n
    else:
        counts.pop(key, None)


def authorized(request: Request, expected: str | None) -> bool:
    """True when no key is set, or the request carries `Authorization: Bearer KEY` with sha256(KEY) == expected."""
    if expected is None:
        return True
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return False
    return hmac.compare_digest(hashlib.sha256(key.strip().encode()).hexdigest(), expected.lower())
