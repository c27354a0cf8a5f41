"""The real DA server over HTTP: round trips at the boundary sizes, limits, bad commitments, restarts, CLI."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import ckzg
import httpx
import pytest
from typer.testing import CliRunner

from attribution.da import kzg
from attribution.da.chunks import chunks_root
from attribution.da.client import DAClient
from attribution.da.codec import MAX_PAYLOAD_BYTES, chunk_count, encode_payload, parse_commitment
from attribution.da.errors import DANotFound, DARequestRejected
from attribution.da.operator import recover_signer
from node.errors import UsageError
from tests.fixtures.da import DAServerFactory, DAServerProcess

MiB = 1024 * 1024


def _payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking bytes (fast for 16 MiB)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


@pytest.fixture(scope="module")
def server(da_server_factory: DAServerFactory) -> Iterator[DAServerProcess]:
    """One server for the module (starting one costs a few seconds of KZG setup); stopped after the module."""
    server = da_server_factory.start(wait_kzg=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server: DAServerProcess) -> Iterator[DAClient]:
    with DAClient(server.url, timeout=120.0, max_retries=2, backoff=0.05,
                  expected_operator=server.operator_address) as c:
        yield c


@pytest.mark.parametrize("size", [1, 31, 32, 4095 * 31, MiB])  # an empty body is a 400 (test_da_hardening)
def test_round_trip(client: DAClient, server: DAServerProcess, size: int) -> None:
    payload = _payload(size, seed=size)
    commitment = client.put(payload)
    assert commitment[:3] == b"\x01\x00\xd0"
    cert = parse_commitment(commitment)
    assert cert.payload_length == size
    assert cert.blob_count == chunk_count(size)
    assert cert.matches_commitments(kzg.payload_commitments(payload))
    assert recover_signer(cert) == server.operator_address
    assert cert.version == 3 and cert.chunks_root == chunks_root(payload)
    assert client.get(commitment) == payload


def test_round_trip_16_mib_and_one_more_byte_refused(client: DAClient, server: DAServerProcess) -> None:
    payload = _payload(MAX_PAYLOAD_BYTES, seed=16)
    commitment = client.put(payload)
    assert parse_commitment(commitment).payload_length == MAX_PAYLOAD_BYTES
    assert parse_commitment(commitment).blob_count == 133
    assert len(commitment) == 3 + 416  # constant size: as at one byte (certificate v3)
    assert client.get(commitment) == payload
    with pytest.raises(DARequestRejected) as excinfo:
        client.put(payload + b"\x00")
    assert excinfo.value.status_code == 413
    raw = httpx.post(f"{server.url}/put", content=payload + b"\x00", timeout=60)
    assert raw.status_code == 413
    assert "16 MiB" in raw.json()["error"]["message"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        view = memoryview(payload)
        for start in range(0, len(payload), MiB):
            yield bytes(view[start : start + MiB])
        yield b"\x00"

    streamed = httpx.post(f"{server.url}/put", content=chunked(), timeout=60)
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413


def test_kzg_commitments_in_certificate_verify_against_encoded_chunks(client: DAClient) -> None:
    payload = _payload(4095 * 31 + 5000, seed=99)  # crosses the one-blob boundary
    cert = parse_commitment(client.put(payload))
    blobs = encode_payload(payload)
    setup = kzg.trusted_setup()
    commitments = [bytes(ckzg.blob_to_kzg_commitment(blob, setup)) for blob in blobs]
    assert len(blobs) == cert.blob_count == 2 and cert.matches_commitments(commitments)
    assert not cert.matches_commitments(commitments[::-1])
    for blob, commitment in zip(blobs, commitments, strict=True):
        proof = ckzg.compute_blob_kzg_proof(blob, commitment, setup)
        assert ckzg.verify_blob_kzg_proof(blob, commitment, proof, setup)
    with DAClient(client.base_url, verify_kzg=True) as verifying:
        assert verifying.get(cert.commitment()) == payload


def test_same_payload_twice_returns_the_same_commitment(client: DAClient) -> None:
    payload = _payload(1000, seed=5)
    assert client.put(payload) == client.put(payload)


def test_unknown_commitment_is_404(client: DAClient, server: DAServerProcess) -> None:
    cert = parse_commitment(client.put(_payload(100, seed=6)))
    unknown = cert.__class__(**{**cert.__dict__, "payload_keccak": bytes(32)})
    with pytest.raises(DANotFound):
        client.get(unknown.commitment())
    # a certificate for a stored payload that this server never issued (other sequence) is unknown too
    forged = cert.__class__(**{**cert.__dict__, "da_sequence": cert.da_sequence + 1000})
    response = httpx.get(f"{server.url}/get/0x{forged.commitment().hex()}")
    assert response.status_code == 404
    assert "commitment" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["zz", "0x", "0x01", "0x0100d0", "0x0000" + "ab" * 32, "0x0100d0" + "00" * 40,
                                  "0x0100d1" + "00" * 400])
def test_garbage_commitments_are_400(server: DAServerProcess, path: str) -> None:
    response = httpx.get(f"{server.url}/get/{path}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_commitment"


def test_truncated_commitment_is_400(client: DAClient, server: DAServerProcess) -> None:
    commitment = client.put(_payload(64, seed=7))
    response = httpx.get(f"{server.url}/get/0x{commitment[:-1].hex()}")
    assert response.status_code == 400


def test_admin_faults_are_off_by_default(server: DAServerProcess) -> None:
    assert httpx.post(f"{server.url}/admin/faults", json={"get_404": True}).status_code == 404
    assert httpx.get(f"{server.url}/health").json()["faults_enabled"] is False


def test_blobs_survive_restart_and_sequence_continues(da_server_factory: DAServerFactory) -> None:
    # KZG off to keep this one quick: the SIGKILL tests restart a KZG server
    server = da_server_factory.start(kzg=False)
    with server, DAClient(server.url, max_retries=2, backoff=0.05, expected_operator=server.operator_address) as client:
        payloads = [_payload(n, seed=n) for n in (10, 5000, 200_000)]
        commitments = [client.put(p) for p in payloads]
        sequences = [parse_commitment(c).da_sequence for c in commitments]
        assert sequences == sorted(set(sequences))
        server.restart()
        for payload, commitment in zip(payloads, commitments, strict=True):
            assert client.get(commitment) == payload  # also checks the reused dev key signed them
        later = parse_commitment(client.put(_payload(77, seed=77)))
        assert later.da_sequence > max(sequences)


def test_cli_put_and_get(server: DAServerProcess, tmp_path: Path) -> None:
    from node.commands.da import app

    runner = CliRunner()
    source = tmp_path / "payload.bin"
    source.write_bytes(os.urandom(3000))
    put = runner.invoke(app, ["put", str(source), "--url", server.url])
    assert put.exit_code == 0, put.output
    commitment = put.stdout.strip()
    assert commitment.startswith("0x0100d0")
    target = tmp_path / "out.bin"
    got = runner.invoke(app, ["get", commitment, "--url", server.url, "-o", str(target),
                              "--operator", server.operator_address])
    assert got.exit_code == 0, got.output
    assert target.read_bytes() == source.read_bytes()
    cert = parse_commitment(bytes.fromhex(commitment[2:]))
    unknown = cert.__class__(**{**cert.__dict__, "payload_keccak": bytes(32)}).commitment()
    missing = runner.invoke(app, ["get", "0x" + unknown.hex(), "--url", server.url])
    assert missing.exit_code == 1
    assert "no payload" in missing.output
    bad = runner.invoke(app, ["get", "0xzz", "--url", server.url])
    assert isinstance(bad.exception, UsageError)  # main() turns it into exit code 2


def test_dead_kzg_worker_is_replaced_and_put_retried(
    server: DAServerProcess, client: DAClient, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    from pathlib import Path as P

    caplog.set_level(logging.WARNING, logger="attribution.da.client")

    def children(pid: int) -> list[int]:
        return [int(c) for t in P(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]

    forkserver = next(p for p in children(server.pid) if b"forkserver" in P(f"/proc/{p}/cmdline").read_bytes())
    workers = children(forkserver)
    assert workers
    os.kill(workers[0], 9)  # what the OOM killer would do
    payload = _payload(200_000, seed=42)
    commitment = client.put(payload)  # first attempt answers 503 (pool broken), a retry succeeds on a new pool
    assert client.get(commitment) == payload
    assert any("503" in r.getMessage() and "KZG workers" in r.getMessage() for r in caplog.records)
    assert httpx.get(f"{server.url}/health").json()["kzg_ready"]


def test_operator_key_from_keystore(tmp_path: Path) -> None:
    import json

    from eth_account import Account

    from attribution.da.operator import DEV_KEY_FILE, PASSWORD_ENV
    from attribution.devnet.da_process import DAServerProcess as Proc

    operator = Account.create()
    keystore = tmp_path / "operator.json"
    keystore.write_text(json.dumps(Account.encrypt(operator.key, "pw", kdf="pbkdf2", iterations=2)))
    data_dir = tmp_path / "da"
    with Proc(data_dir, kzg=False, operator_keystore=keystore, env={PASSWORD_ENV: "pw"}) as server:
        assert server.operator_address == operator.address
        with DAClient(server.url, expected_operator=operator.address) as client:
            assert client.get(client.put(b"signed by the keystore key")) == b"signed by the keystore key"
    assert not (data_dir / DEV_KEY_FILE).exists()
    wrong = Proc(data_dir, kzg=False, operator_keystore=keystore, env={PASSWORD_ENV: "nope"})
    with pytest.raises(RuntimeError, match="decrypt"):
        wrong.start(timeout=30)
    wrong.stop()
