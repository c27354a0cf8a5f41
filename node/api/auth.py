"""API keys: clients send `Authorization: Bearer KEY`; the node stores only sha256 hashes of keys."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from fastapi import Request

from attribution.http_server import client_bucket
from node.api.errors import APIError

__all__ = ["admin_key", "client_key", "hash_key", "open_bucket"]


def hash_key(key: str) -> str:
    """The sha256 hex digest stored in settings instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if value is None:
        return None
    scheme, _, key = value.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise APIError(401, "malformed Authorization header: send `Authorization: Bearer YOUR_KEY`",
                       type="authentication_error", code="invalid_api_key")
    return key.strip()


def open_bucket(host: str | None) -> str:
    """The rate-limit bucket of a client when keys are off: its address (IPv6 by /64); "" (not limited) for
    loopback clients, which are the operator's own processes: one shared bucket for all of them throttled every
    local tool together, while the engine's bounded queue (429 overloaded) still protects the node."""
    bucket = client_bucket(host)
    try:
        if ipaddress.ip_address(bucket).is_loopback:
            return ""
    except ValueError:
        pass
    return "addr:" + bucket


def _matches(key: str, hashes: list[str]) -> bool:
    digest = hash_key(key)
    return any(hmac.compare_digest(digest, h.lower()) for h in hashes)


def client_key(request: Request) -> str:
    """The rate-limit identity of the caller; 401 when keys are configured and this one is missing or unknown."""
    services = request.app.state.services
    hashes = services.settings.node.api_key_hashes
    key = _bearer(request)
    if not hashes:
        # keys off: any Bearer would do, so it must not pick the bucket (a random one per request dodged the limit);
        # the client's address does (the peer, or what a trusted proxy forwarded), see `open_bucket`
        return open_bucket(request.client.host if request.client else None)
    if key is None:
        raise APIError(401, "missing API key: send `Authorization: Bearer YOUR_KEY`", type="authentication_error",
                       code="invalid_api_key")
    if not _matches(key, hashes):
        raise APIError(401, "incorrect API key: check the key you were given", type="authentication_error",
                       code="invalid_api_key")
    return "key:" + hash_key(key)[:16]


def admin_key(request: Request) -> None:
    """401 without a key, 403 with a wrong one (or when no admin key is configured)."""
    services = request.app.state.services
    expected = services.settings.node.admin_key_hash
    key = _bearer(request)
    if key is None:
        raise APIError(401, "the adapter admin routes need the admin key: send `Authorization: Bearer ADMIN_KEY`",
                       type="authentication_error", code="missing_admin_key")
    if expected is None:
        raise APIError(403, "adapter admin is disabled on this node: set node.admin_key_hash to enable it",
                       type="permission_error", code="admin_disabled")
    if not _matches(key, [expected]):
        raise APIError(403, "wrong admin key", type="permission_error", code="wrong_admin_key")
