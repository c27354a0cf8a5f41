"""DA server hardening against the real server over HTTP: slow uploads, empty bodies, bounded streamed GETs,
payloads re-checked against their certificate, and no start without an operator key outside the devnet."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from attribution.da.client import DAClient
from attribution.da.codec import parse_commitment
from tests.fixtures.da import DAServerFactory, DAServerProcess


def _slow_upload(port: int, declared: int = 1000, sent: int = 2) -> socket.socket:
    """Open a put that declares `declared` body bytes and sends only `sent` (then stalls)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(f"POST /put HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
              f"Content-Length: {declared}\r\n\r\n".encode() + b"\x01" * sent)
    return s


def _status_of(s: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def server(da_server_factory: DAServerFactory) -> DAServerProcess:
    return da_server_factory.start(kzg=False, extra_args=["--body-timeout", "4", "--max-inflight-gets", "2"])


def test_slow_uploads_hold_no_put_slot_and_time_out(server: DAServerProcess) -> None:
    slow = [_slow_upload(server.port) for _ in range(4)]  # 4 = every put slot, under the old code
    try:
        time.sleep(0.3)
        assert httpx.get(f"{server.url}/health").json()["inflight_puts"] == 0
        for i in range(3):  # real puts go through while the slow ones stall
            r = httpx.post(f"{server.url}/put", content=os.urandom(1000 + i), timeout=10)
            assert r.status_code == 200, r.text
        statuses = [_status_of(s) for s in slow]  # the body timeout cuts them off
        assert statuses == [408] * 4
    finally:
        for s in slow:
            s.close()


def test_empty_body_is_400(server: DAServerProcess) -> None:
    r = httpx.post(f"{server.url}/put", content=b"", timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_payload"


def test_get_streams_with_a_bound_on_concurrent_gets(server: DAServerProcess) -> None:
    payload = os.urandom(16 * 1024 * 1024 - 64)
    with DAClient(server.url) as da:
        commitment = da.put(payload)
    url = f"{server.url}/get/0x{commitment.hex()}"
    stalled = []
    try:
        for _ in range(2):  # readers that never read: their streams block once the socket buffers are full
            s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(f"GET /get/0x{commitment.hex()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            stalled.append(s)
        deadline = time.monotonic() + 20
        while httpx.get(f"{server.url}/health").json()["inflight_gets"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        r = httpx.get(url, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy"
    finally:
        for s in stalled:
            s.close()
    deadline = time.monotonic() + 20
    while httpx.get(f"{server.url}/health").json()["inflight_gets"] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    r = httpx.get(url, timeout=60)
    assert r.status_code == 200 and r.content == payload
    assert int(r.headers["content-length"]) == len(payload)


def test_get_refuses_a_payload_damaged_on_disk(server: DAServerProcess) -> None:
    payload = os.urandom(5000)
    with DAClient(server.url) as da:
        commitment = da.put(payload)
    keccak = parse_commitment(commitment).payload_keccak
    blob = server.data_dir / "blobs" / f"{keccak.hex()}.blob"
    raw = bytearray(blob.read_bytes())
    raw[-10] ^= 0xFF  # a bit flip in the payload part, as a failing disk would leave it
    blob.write_bytes(bytes(raw))
    r = httpx.get(f"{server.url}/get/0x{commitment.hex()}", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "payload_corrupt"


def test_refuses_to_start_without_a_keystore_outside_the_devnet(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "attribution.da.server", "--data-dir", str(tmp_path / "d"),
                           "--port", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--operator-keystore" in proc.stderr and "--dev" in proc.stderr
    assert not (tmp_path / "d" / "operator-dev.key").exists()
