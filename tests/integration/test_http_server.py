"""The limits every HTTP server we run gets from attribution/http_server.py, on a real uvicorn over real sockets:
header, body and send timeouts, the per-address connection cap, and X-Forwarded-For trusted only from
configured proxies."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from attribution.devnet.processes import free_port
from attribution.http_server import HttpLimits, client_bucket, serve_config

BIG = 64 * 1024 * 1024  # far more than the socket buffers hold: a reader that never reads blocks the sender


def _app(state: dict[str, int]) -> Starlette:
    async def who(request: Request) -> Response:
        return JSONResponse({"client": request.client.host if request.client else None})

    async def echo(request: Request) -> Response:
        return Response(await request.body())

    async def big(request: Request) -> Response:
        async def body() -> Iterator[bytes]:  # type: ignore[misc]
            state["streaming"] += 1
            try:
                for _ in range(BIG // (1 << 20)):
                    yield b"x" * (1 << 20)
                    await asyncio.sleep(0)
            finally:
                state["streaming"] -= 1
        return StreamingResponse(body(), headers={"Content-Length": str(BIG)})

    return Starlette(routes=[Route("/who", who), Route("/echo", echo, methods=["POST"]), Route("/big", big)])


@pytest.fixture()
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, int]]]:
    limits: HttpLimits = getattr(request, "param", HttpLimits(header_timeout_s=1, body_timeout_s=1, send_timeout_s=1,
                                                              max_connections_per_client=8))
    state = {"streaming": 0}
    port = free_port()
    srv = uvicorn.Server(serve_config(_app(state), "127.0.0.1", port, limits, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", state
    srv.should_exit = True
    thread.join(timeout=10)


def _read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_headers_that_never_finish_get_408_and_close(server: tuple[str, dict[str, int]]) -> None:
    with socket.create_connection(("127.0.0.1", _port(server[0])), timeout=30) as s:
        s.sendall(b"GET /who HTTP/1.1\r\nHost: x\r\n")  # no blank line: the headers never end
        answer = _read_all(s)  # the server closes after its 408
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_body_that_never_finishes_gets_408_and_close(server: tuple[str, dict[str, int]]) -> None:
    with socket.create_connection(("127.0.0.1", _port(server[0])), timeout=30) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 408")
    assert httpx.post(server[0] + "/echo", content=b"still serving", timeout=10).content == b"still serving"


def test_a_reader_that_stops_reading_is_cut_off(server: tuple[str, dict[str, int]]) -> None:
    url, state = server
    s = socket.create_connection(("127.0.0.1", _port(url)), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        deadline = time.monotonic() + 30
        while state["streaming"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state["streaming"] == 1
        # without a send timeout the response stays blocked (and its slot held) for as long as the client waits
        deadline = time.monotonic() + 60
        while state["streaming"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert state["streaming"] == 0
    finally:
        s.close()


def test_connections_per_address_are_capped(server: tuple[str, dict[str, int]]) -> None:
    url = server[0]
    # connections from another local address (127.0.0.2), so the test's own requests come from a different one
    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", _port(url)), timeout=30, source_address=("127.0.0.2", 0))

    idle = [connect() for _ in range(8)]
    try:
        with connect() as extra:
            assert _read_all(extra).startswith(b"HTTP/1.1 503")
        assert httpx.get(url + "/who", timeout=10).status_code == 200  # another address is not affected
    finally:
        for s in idle:
            s.close()


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(server: tuple[str, dict[str, int]]) -> None:
    r = httpx.get(server[0] + "/who", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert r.json()["client"] == "127.0.0.1"


@pytest.mark.parametrize("server", [HttpLimits(trusted_proxies=("127.0.0.1",))], indirect=True)
def test_forwarded_for_from_a_trusted_proxy_is_the_client(server: tuple[str, dict[str, int]]) -> None:
    r = httpx.get(server[0] + "/who", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert r.json()["client"] == "203.0.113.9"


def test_client_bucket() -> None:
    assert client_bucket("2001:db8:1:2:3:4:5:6") == client_bucket("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert client_bucket("::ffff:10.0.0.1") == "10.0.0.1"
    assert client_bucket("10.0.0.1") != client_bucket("10.0.0.2")
