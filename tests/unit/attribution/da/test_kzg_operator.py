"""KZG commitments of encoded chunks verify with ckzg; certificates are signed and recovered correctly."""

from __future__ import annotations

import json
from pathlib import Path

import ckzg
import pytest
from eth_account import Account

from attribution.da import kzg
from attribution.da.chunks import chunks_root
from attribution.da.codec import Certificate, encode_payload
from attribution.da.errors import DAOperatorKeyError, DAPayloadMismatch
from attribution.da.operator import DEV_KEY_FILE, PASSWORD_ENV, load_operator, recover_signer, sign_certificate
from attribution.hashing import keccak256


def test_trusted_setup_comes_from_eth_account() -> None:
    path = kzg.trusted_setup_path()
    assert path.is_file() and "eth_account" in str(path)


def test_chunk_commitments_verify_with_ckzg() -> None:
    payload = bytes((i * 13) % 256 for i in range(4095 * 31 + 100))  # two blobs
    blobs = encode_payload(payload)
    commitments = kzg.commit_payload(payload)
    assert len(commitments) == len(blobs) == 2
    setup = kzg.trusted_setup()
    for blob, commitment in zip(blobs, commitments, strict=True):
        assert commitment == bytes(ckzg.blob_to_kzg_commitment(blob, setup))
        assert kzg.blob_proof_verifies(blob, commitment)
    # a proof for one blob does not verify another blob's commitment
    proof = ckzg.compute_blob_kzg_proof(blobs[0], commitments[0], setup)
    assert not ckzg.verify_blob_kzg_proof(blobs[1], commitments[0], proof, setup)
    assert kzg.verify_payload(payload, commitments)
    assert not kzg.verify_payload(payload[:-1] + b"\x00", commitments)
    assert not kzg.verify_payload(payload, commitments[:1])


def _cert() -> Certificate:
    return Certificate.of(payload_keccak=keccak256(b"p"), payload_length=1, kzg_commitments=(bytes(48),),
                          da_sequence=3, stored_at=1_700_000_000, chunks_root=chunks_root(b"p"))


def test_sign_and_recover(tmp_path: Path) -> None:
    account = load_operator(None, tmp_path)
    signed = sign_certificate(_cert(), account)
    assert len(signed.operator_signature) == 65 and signed.operator_signature[64] in (27, 28)
    assert recover_signer(signed) == account.address
    # the signature covers every field: change one and the recovered signer changes
    tampered = Certificate(**{**signed.__dict__, "da_sequence": 4})
    assert recover_signer(tampered) != account.address
    assert recover_signer(Certificate(**{**signed.__dict__, "chunks_root": bytes(32)})) != account.address
    with pytest.raises(DAPayloadMismatch):
        recover_signer(signed.with_signature(bytes(65)))


def test_dev_key_is_created_once_and_private(tmp_path: Path) -> None:
    first = load_operator(None, tmp_path)
    key_file = tmp_path / DEV_KEY_FILE
    assert key_file.stat().st_mode & 0o077 == 0
    assert load_operator(None, tmp_path).address == first.address
    key_file.write_text("not a key")
    with pytest.raises(DAOperatorKeyError, match="delete it"):
        load_operator(None, tmp_path)


def test_keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = Account.create()
    keystore = tmp_path / "operator.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "s3cret", kdf="pbkdf2", iterations=2)))
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(DAOperatorKeyError, match=PASSWORD_ENV):
        load_operator(keystore, tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(DAOperatorKeyError, match="decrypt"):
        load_operator(keystore, tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    assert load_operator(keystore, tmp_path).address == account.address
    assert not (tmp_path / DEV_KEY_FILE).exists()


def test_client_refuses_a_payload_that_differs_from_the_certificate(tmp_path: Path) -> None:
    """The client's own check, for servers (or proxies) that do not re-check before serving."""
    from attribution.da.client import _Verifier

    signed = sign_certificate(_cert(), load_operator(None, tmp_path))
    verifier = _Verifier(expected_operator=None, verify_kzg=False)
    verifier.check(signed.commitment(), b"p")
    with pytest.raises(DAPayloadMismatch, match="keccak"):
        verifier.check(signed.commitment(), b"q")
    with pytest.raises(DAPayloadMismatch, match="bytes"):
        verifier.check(signed.commitment(), b"pp")
    wrong_root = Certificate(**{**signed.__dict__, "chunks_root": keccak256(b"other")})
    with pytest.raises(DAPayloadMismatch, match="chunksRoot"):
        verifier.check(wrong_root.commitment(), b"p")
