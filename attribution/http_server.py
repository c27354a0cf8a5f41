"""uvicorn with the limits every HTTP server we run needs (node, DA server, indexer): one `serve_config`.

uvicorn (its h11 protocol: httptools is not installed) alone waits forever for a request's headers or body and
for a client that stops reading, and accepts any number of connections from one address, so a handful of idle
sockets can hold a server's slots (16 DA readers that never read blocked every other GET).
`HardenedProtocol` adds, per connection:

- header timeout: the request line and headers must arrive within `header_timeout_s` of the connection opening
  or of the previous response (408, then close);
- body timeout: the whole body within `body_timeout_s` of the headers (408 if no answer started yet, then close;
  the app sees a disconnect);
- send timeout: a response write blocked (client not reading) for `send_timeout_s` aborts the connection, so the
  app's `send` returns and its slot is released;
- a per-client cap on open connections (`max_connections_per_client`; extra connections get 503 and are closed)
  and a server-wide cap (`limit_concurrency`, uvicorn's own 503);
- keep-alive idle timeout (uvicorn's `timeout_keep_alive`).

Forwarded headers (`X-Forwarded-For`) are trusted only from `trusted_proxies` (default: none), so a client cannot
pick the address its rate limit is counted under.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HttpLimits", "HardenedProtocol", "client_bucket", "protocol_for", "serve_config"]


@dataclass(frozen=True)
class HttpLimits:
    """Timeouts (seconds) and connection caps of one server."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    send_timeout_s: float = 30.0
    keep_alive_s: int = 5
    max_connections_per_client: int = 256
    max_connections: int = 2048
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)


def client_bucket(host: str | None) -> str:
    """The address a client is counted under: the IP, an IPv6 address by its /64 (one host's usual share)."""
    if not host:
        return "-"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _close_with(transport: asyncio.Transport, status: bytes, message: bytes) -> None:
    if transport.is_closing():
        return
    body = b'{"error":{"code":"%s","message":"%s"}}' % (status.split(b" ", 1)[1].lower().replace(b" ", b"_"),
                                                        message)
    transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
    transport.close()


class HardenedProtocol(H11Protocol):
    """uvicorn's h11 protocol with header/body/send timeouts and a per-client connection cap."""

    limits: HttpLimits = HttpLimits()
    per_client: dict[str, int] = {}  # replaced per server by `protocol_for`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._send_deadline: asyncio.TimerHandle | None = None
        self._bucket: str | None = None
        self._tracked: Any = None  # the request cycle the deadline was armed for
        self._waiting_body = False

    def _arm(self, seconds: float, fn: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, fn)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._bucket = client_bucket(self.client[0] if self.client else None)
        n = self.per_client.get(self._bucket, 0) + 1
        self.per_client[self._bucket] = n
        if n > self.limits.max_connections_per_client:
            _close_with(transport, b"503 Service Unavailable",
                        b"too many connections from your address; close idle ones and retry")
            return
        self._arm(self.limits.header_timeout_s, self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None
        if self._bucket is not None:
            left = self.per_client.get(self._bucket, 1) - 1
            if left > 0:
                self.per_client[self._bucket] = left
            else:
                self.per_client.pop(self._bucket, None)
            self._bucket = None
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        if cycle is not self._tracked:  # a new request's headers arrived: now its body has a deadline
            self._tracked = cycle
            self._waiting_body = cycle.more_body
            if self._waiting_body:
                self._arm(self.limits.body_timeout_s, self._body_timeout)
            else:
                self._disarm()
        elif self._waiting_body and not cycle.more_body:  # the body is complete
            self._waiting_body = False
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._waiting_body = False
            self._arm(self.limits.header_timeout_s, self._header_timeout)

    def _header_timeout(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete:
            _close_with(self.transport, b"408 Request Timeout",
                        b"the request headers did not arrive in time; send the whole request promptly")

    def _body_timeout(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.response_complete:
            return
        started = cycle.response_started
        cycle.disconnected = True  # the app's receive() answers http.disconnect, its sends are dropped
        cycle.message_event.set()
        if started:
            self.transport.close()
        else:
            _close_with(self.transport, b"408 Request Timeout",
                        b"the request body did not arrive in time; send the whole body promptly")

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_deadline is None:
            self._send_deadline = self.loop.call_later(self.limits.send_timeout_s, self._send_timeout)

    def resume_writing(self) -> None:
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None
        super().resume_writing()

    def _send_timeout(self) -> None:
        # the client has not read for send_timeout_s: drop it (connection_lost marks the cycle disconnected and
        # resumes the app's blocked send, which then returns)
        self._send_deadline = None
        self.transport.abort()


def protocol_for(limits: HttpLimits) -> type[HardenedProtocol]:
    """A protocol class bound to `limits`, with its own per-client connection counts (one per server)."""
    return type("BoundHardenedProtocol", (HardenedProtocol,), {"limits": limits, "per_client": {}})


def serve_config(app: Any, host: str, port: int, limits: HttpLimits, **kwargs: Any) -> Any:
    """A `uvicorn.Config` running `app` with `limits` (timeouts, caps, trusted proxies)."""
    import uvicorn

    proxies = list(limits.trusted_proxies)
    return uvicorn.Config(app, host=host, port=port, http=protocol_for(limits), timeout_keep_alive=limits.keep_alive_s,
                          limit_concurrency=limits.max_connections, proxy_headers=bool(proxies),
                          forwarded_allow_ips=proxies or [], **kwargs)
