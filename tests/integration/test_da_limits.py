"""F3/F4 against the real DA server over HTTP: idle readers cannot hold every GET slot (per-address cap, send
timeout), stalled uploads are spooled to disk instead of memory, an operator quota and an optional write key,
and aborted or malformed bodies get a JSON answer and no traceback in the log."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from attribution.da.client import DAClient
from attribution.da.errors import DARequestRejected
from tests.fixtures.da import DAServerFactory, DAServerProcess

SIXTEEN_MIB = 16 * 1024 * 1024 - 64


def _connect(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))


def _health(server: DAServerProcess) -> dict[str, object]:
    r = httpx.get(f"{server.url}/health", timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(da_server_factory: DAServerFactory) -> DAServerProcess:
    return da_server_factory.start(kzg=False, enable_faults=True,
                                   extra_args=["--send-timeout", "3", "--body-timeout", "30"])


def test_sixteen_idle_readers_do_not_block_other_gets(server: DAServerProcess) -> None:
    payload = os.urandom(SIXTEEN_MIB)
    with DAClient(server.url) as da:
        commitment = da.put(payload)
    request = f"GET /get/0x{commitment.hex()} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    idle = []
    try:
        for _ in range(16):  # one other host opening 16 reads of 16 MiB and reading nothing
            s = _connect(server.port, "127.0.0.2")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(request)
            idle.append(s)
        deadline = time.monotonic() + 30
        while _health(server)["inflight_gets"] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 0 < int(_health(server)["inflight_gets"]) <= 8  # the per-address cap, not all 16
        r = httpx.get(f"{server.url}/get/0x{commitment.hex()}", timeout=60)  # everyone else is still served
        assert r.status_code == 200 and r.content == payload
        # and the idle readers lose their slots once they read nothing for --send-timeout
        deadline = time.monotonic() + 60
        while _health(server)["inflight_gets"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _health(server)["inflight_gets"] == 0
    finally:
        for s in idle:
            s.close()


def _stalled_upload(port: int, source: str, declared: int, sent: int, started: threading.Barrier) -> socket.socket:
    s = _connect(port, source)
    s.sendall(f"POST /put HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
              f"Content-Length: {declared}\r\n\r\n".encode())
    chunk = b"\x07" * (1 << 20)
    for _ in range(sent // len(chunk)):
        s.sendall(chunk)
    started.wait(120)
    return s


def test_forty_stalled_uploads_do_not_grow_memory(server: DAServerProcess) -> None:
    """40 uploads from 40 addresses, each 12 MiB of a declared 16 MiB sent and then stalled: spooled to disk (and
    capped in number), not held in memory (before: +480 MB resident)."""
    before = _rss_bytes(server.pid)
    n, sent = 40, 12 * 1024 * 1024
    barrier = threading.Barrier(n + 1)
    sockets: list[socket.socket] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            s = _stalled_upload(server.port, f"127.0.1.{i + 1}", SIXTEEN_MIB, sent, barrier)
        except OSError:  # refused with 503 + close while still sending: counted as not held
            barrier.wait(120)
            return
        with lock:
            sockets.append(s)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    try:
        barrier.wait(120)
        time.sleep(1)  # let the server read what the kernel buffered
        grown = _rss_bytes(server.pid) - before
        assert grown < 96 * 1024 * 1024, f"resident memory grew by {grown / 2**20:.0f} MiB"
        assert int(_health(server)["receiving"]) <= 40
        with DAClient(server.url) as da:  # real puts still go through
            assert da.get(da.put(b"after the stalls")) == b"after the stalls"
    finally:
        for s in sockets:
            s.close()
        for t in threads:
            t.join(30)


def test_partial_bodies_get_no_traceback(server: DAServerProcess) -> None:
    for _ in range(20):
        with _connect(server.port, "127.0.0.3") as s:
            s.sendall(b"POST /put HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"\x01" * 100)
    with DAClient(server.url) as da:
        assert da.get(da.put(b"still serving")) == b"still serving"
    assert "Traceback" not in server.log()


def test_deeply_nested_faults_body_is_400(server: DAServerProcess) -> None:
    r = httpx.post(f"{server.url}/admin/faults", content=b"[" * 100_000 + b"]" * 100_000, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_faults"
    assert _health(server)["status"] == "ok"


def test_quota_refuses_puts_past_it_with_507(da_server_factory: DAServerFactory) -> None:
    quota = da_server_factory.start(kzg=False, extra_args=["--quota-bytes", "40000"])
    with DAClient(quota.url, max_retries=0) as da:
        first = da.put(os.urandom(20_000))
        r = httpx.post(f"{quota.url}/put", content=os.urandom(20_000), timeout=30)
        assert r.status_code == 507 and r.json()["error"]["code"] == "quota_exceeded"
        assert "--quota-bytes" in r.json()["error"]["message"]
        assert len(da.get(first)) == 20_000  # reads go on
    assert int(_health(quota)["stored_bytes"]) <= 40_000


@pytest.fixture()
def keyed(tmp_path: Path) -> Iterator[DAServerProcess]:
    server = DAServerProcess(tmp_path / "da", kzg=False, env={"LORALEDGER_DA__API_KEY": "da-write-key"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_write_key_is_required_for_puts_only(keyed: DAServerProcess) -> None:
    r = httpx.post(f"{keyed.url}/put", content=b"no key", timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    with DAClient(keyed.url, max_retries=0, api_key="wrong") as da, pytest.raises(DARequestRejected):
        da.put(b"wrong key")
    with DAClient(keyed.url, max_retries=0, api_key="da-write-key") as da:
        commitment = da.put(b"with the key")
    assert httpx.get(f"{keyed.url}/get/0x{commitment.hex()}", timeout=30).content == b"with the key"  # reads: open
    assert _health(keyed)["writes_need_key"] is True
    assert hashlib.sha256(b"da-write-key").hexdigest() not in keyed.log()
