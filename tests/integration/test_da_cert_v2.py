"""Certificates v2 issued before v3 (docs/da.md "Version 2 certificates"): a payload stored under a v2 certificate
keeps reading by its v2 commitment, a new put of it returns a v3 certificate (so a batch posted after the upgrade
can answer availability challenges), and both commitments read afterwards; a v2 certificate signed by another key
is not served."""

from __future__ import annotations

import os
import time
from pathlib import Path

from eth_account import Account

from attribution.da.client import DAClient
from attribution.da.codec import CERT_V2, Certificate, parse_commitment
from attribution.da.errors import DANotFound
from attribution.da.operator import load_operator, sign_certificate
from attribution.da.storage import BlobStore
from attribution.hashing import keccak256
from tests.fixtures.da import DAServerFactory


def _v2(payload: bytes, key: object) -> Certificate:
    cert = Certificate(payload_keccak=keccak256(payload), payload_length=len(payload),
                       kzg_commitments_hash=bytes(32), blob_count=0, da_sequence=0, stored_at=int(time.time()),
                       version=CERT_V2)
    return sign_certificate(cert, key)  # type: ignore[arg-type]


def test_a_v2_payload_reads_and_is_certified_again_as_v3(da_server_factory: DAServerFactory,
                                                         tmp_path: Path) -> None:
    data_dir = tmp_path / "da"
    operator = load_operator(None, data_dir)  # the dev key the server will load from the same dir
    payload = os.urandom(5_000)
    v2 = _v2(payload, operator)
    BlobStore(data_dir).write(v2.payload_keccak, payload, v2.encode())  # what a v2 server left on disk
    stranger = _v2(payload, Account.create())  # the same payload, "certified" by a key that is not the server's

    server = da_server_factory.start(kzg=False, data_dir=data_dir)
    try:
        with DAClient(server.url, timeout=30, max_retries=1, backoff=0.05,
                      expected_operator=operator.address) as da:
            assert da.get(v2.commitment()) == payload
            again = da.put(payload)
            cert = parse_commitment(again)
            assert cert.version == 3 and cert.resolvable and cert.payload_keccak == v2.payload_keccak
            assert again != v2.commitment() and da.put(payload) == again  # idempotent from now on
            assert da.get(again) == payload and da.get(v2.commitment()) == payload
        with DAClient(server.url, timeout=30, max_retries=1, backoff=0.05) as da:
            try:
                da.get(stranger.commitment())
                raise AssertionError("a v2 certificate of another operator was served")
            except DANotFound:
                pass
    finally:
        server.stop()
