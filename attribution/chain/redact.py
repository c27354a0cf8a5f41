"""Keep RPC URLs out of errors and logs: providers put API keys in the path (`/v2/<key>`), the query
(`?apikey=`) or the userinfo (`https://user:key@host`).

`redact_url(url)` keeps what a user needs to recognise the endpoint (scheme, host, port) and hides the rest.
`register_url(url)` remembers the secret parts of a URL; `scrub(text)` replaces every remembered secret in a
string. A `logging.Filter` installed on the loggers that print request URLs (web3's HTTP provider and session
cache, urllib3's connection pool, requests) scrubs their records, so even `--verbose` never shows a key.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import unquote, urlsplit

HIDDEN = "***"

#: Loggers of third-party libraries that write the request URL (or its path) into DEBUG records.
URL_LOGGERS: tuple[str, ...] = (
    "web3.providers.HTTPProvider",
    "web3.providers.base.JSONBaseProvider",
    "web3.providers.base.BaseProvider",
    "web3._utils.http_session_manager.HTTPSessionManager",
    "web3.manager.RequestManager",
    "web3.RequestManager",
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "requests",
)

_LOCK = threading.Lock()
_SECRETS: set[str] = set()
_INSTALLED = False


def redact_url(url: str) -> str:
    """`scheme://host[:port]` plus `/***` when the URL had a path, query or fragment, `***@` for userinfo.

    A URL without any of those (the local devnet's `http://127.0.0.1:8545`) holds no key and is shown whole.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return HIDDEN
    if not parts.scheme or not host:
        return HIDDEN
    has_userinfo = "@" in parts.netloc
    has_tail = parts.path not in ("", "/") or bool(parts.query) or bool(parts.fragment)
    if not has_userinfo and not has_tail:
        return url
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    if has_userinfo:
        netloc = f"{HIDDEN}@{netloc}"
    return f"{parts.scheme}://{netloc}" + (f"/{HIDDEN}" if has_tail else "")


def _secret_parts(url: str) -> set[str]:
    """The substrings of `url` that may hold a key: the whole URL, its path+query, its userinfo, each path segment
    and query value of some length (short segments like `v2` are no secret and would scrub unrelated text)."""
    out = {url}
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    if redact_url(url) == url:
        return set()
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    if tail not in ("", "/"):
        out.add(tail)
    if "@" in parts.netloc:
        out.add(parts.netloc.rsplit("@", 1)[0])
    for segment in parts.path.split("/"):
        if len(segment) >= 8:
            out.update({segment, unquote(segment)})
    for pair in parts.query.split("&"):
        value = pair.split("=", 1)[-1]
        if len(value) >= 8:
            out.update({value, unquote(value)})
    return {s for s in out if s}


def register_url(url: str) -> str:
    """Remember `url`'s secret parts for `scrub` and the log filter; returns `redact_url(url)`."""
    secrets = _secret_parts(url)
    if secrets:
        with _LOCK:
            _SECRETS.update(secrets)
        install_log_redaction()
    return redact_url(url)


def scrub(text: str) -> str:
    """`text` with every registered URL secret replaced by `***` (longest first, so a URL goes as a whole)."""
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return text


class RedactingFilter(logging.Filter):
    """Formats the record's message once and scrubs registered URL secrets from it (and from exception text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        with _LOCK:
            empty = not _SECRETS
        if empty:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not break logging
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        return True


_FILTER = RedactingFilter()


def install_log_redaction(extra_loggers: tuple[str, ...] = ()) -> None:
    """Attach the filter to the URL-printing loggers (idempotent). Logger filters run where a record is created,
    whatever handlers the application configured."""
    global _INSTALLED
    with _LOCK:
        names = URL_LOGGERS + extra_loggers if not _INSTALLED or extra_loggers else ()
        _INSTALLED = True
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
