"""SIGKILL the DA server in the middle of a 16 MiB put: earlier blobs survive, nothing partial is ever served."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from attribution.da.client import DAClient
from attribution.da.codec import MAX_PAYLOAD_BYTES, Certificate
from attribution.da.storage import BlobStore
from attribution.hashing import keccak256
from tests.fixtures.da import DAServerProcess


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (the KZG forkserver, its workers, the resource tracker)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            for child in (int(c) for c in (task / "children").read_text().split()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]


def _payload_tmp_files(data_dir: Path) -> list[str]:
    # blob temp files are named <keccak hex>.blob.<uuid>.tmp; the daSequence one is sequence.<uuid>.tmp
    return [n for n in os.listdir(data_dir / "tmp") if len(n.split(".")[0]) == 64]


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["kzg", "write"])
def test_sigkill_during_16_mib_put(da_server: DAServerProcess, da_client: DAClient, phase: str) -> None:
    earlier = {os.urandom(n): b"" for n in (1, 4096, 300_000)}
    for payload in earlier:
        earlier[payload] = da_client.put(payload)
    workers = _descendants(da_server.pid)
    assert workers, "the server should run KZG worker processes"

    big = os.urandom(MAX_PAYLOAD_BYTES)
    big_key = keccak256(big).hex()
    outcome: dict[str, object] = {}

    def put_big() -> None:
        try:
            outcome["status"] = httpx.post(f"{da_server.url}/put", content=big, timeout=300).status_code
        except httpx.TransportError as e:
            outcome["error"] = e

    thread = threading.Thread(target=put_big)
    thread.start()
    deadline = time.monotonic() + 240
    if phase == "kzg":
        # wait until the body is in and chunks are being committed: no payload temp file yet, workers busy
        time.sleep(1.5)
    else:
        while not _payload_tmp_files(da_server.data_dir) and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)
    da_server.kill()
    thread.join(timeout=60)
    assert "status" not in outcome or phase == "write", f"put finished before the kill: {outcome}"

    # the KZG workers notice the server died and exit on their own; so do the forkserver and resource tracker
    wait_until = time.monotonic() + 15
    while any(_alive(w) for w in workers) and time.monotonic() < wait_until:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)

    da_server.start()
    assert list((da_server.data_dir / "tmp").iterdir()) == []
    for payload, commitment in earlier.items():
        assert da_client.get(commitment) == payload
    store = BlobStore(da_server.data_dir)
    stored_big = store.read(bytes.fromhex(big_key))
    if outcome.get("status") == 200:
        assert stored_big is not None, "a put that answered 200 must be durable"
    if stored_big is not None:
        # killed after the rename but before the 200 (or it finished): the blob is complete, never partial
        assert da_client.get(Certificate.decode(stored_big[0]).commitment()) == big
    # every visible blob serves its full payload (the client checks keccak, length and signer)
    assert store.count() == len(earlier) + (stored_big is not None)
    for blob in (da_server.data_dir / "blobs").glob("*.blob"):
        certificate = store.find_certificate(bytes.fromhex(blob.stem))
        assert certificate is not None
        da_client.get(Certificate.decode(certificate).commitment())
    assert da_client.get(da_client.put(b"after the crash")) == b"after the crash"
