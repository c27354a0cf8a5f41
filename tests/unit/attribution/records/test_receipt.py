"""Receipts: EIP-712 signatures recover to the signing node and to nobody else once any signed field changes;
canonical JSON of chat messages is byte-stable (sorted keys, no whitespace, UTF-8)."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from attribution.records.receipt import (
    SECP256K1_HALF_N,
    ReceiptError,
    ReceiptSigner,
    canonical_json,
    prompt_bytes,
    recover_receipt_signer,
    sign_receipt,
)
from tests.unit.attribution.factories import random_records


def test_receipt_recovers_the_node_and_breaks_on_any_change() -> None:
    acct = Account.create()
    rec = dataclasses.replace(random_records(1, seed=3)[0], node=bytes.fromhex(acct.address[2:]))
    sig = sign_receipt(rec, acct.key)
    assert len(sig) == 65
    args = (rec.chain_id, rec.ledger, rec.node, rec.seq, rec.leaf())
    assert recover_receipt_signer(*args, sig) == acct.address
    assert recover_receipt_signer(*args, "0x" + sig.hex()) == acct.address
    changed = [(rec.chain_id + 1, *args[1:]), (args[0], b"\x01" * 20, *args[2:]), (*args[:3], rec.seq + 1, args[4]),
               (*args[:4], bytes(32))]
    for other in changed:
        assert recover_receipt_signer(*other, sig) != acct.address
    with pytest.raises(ReceiptError):
        recover_receipt_signer(*args, sig[:64])


def test_chat_prompt_bytes_are_canonical_json() -> None:
    messages = [{"role": "user", "content": "héllo \"you\""}, {"content": "x", "role": "assistant"}]
    assert prompt_bytes(messages=messages) == (
        '[{"content":"héllo \\"you\\"","role":"user"},{"content":"x","role":"assistant"}]').encode()
    assert canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
    assert prompt_bytes(prompt="héllo") == "héllo".encode()
    with pytest.raises(ReceiptError):
        prompt_bytes(prompt="a", messages=[])
    with pytest.raises(ReceiptError):
        canonical_json({"x": float("nan")})


def test_receipt_signer_matches_sign_receipt() -> None:
    from attribution.records.receipt import ReceiptSigner

    vs = set()
    for i in range(16):  # the direct libsecp256k1 path: byte-equal to eth-account's, both recovery ids seen
        acct = Account.create()
        rec = dataclasses.replace(random_records(1, seed=5 + i)[0], node=bytes.fromhex(acct.address[2:]))
        signer = ReceiptSigner(acct, rec.chain_id, rec.ledger)
        assert signer.node == rec.node
        sig = signer.sign(rec.seq, rec.leaf())
        assert sig == sign_receipt(rec, acct.key)  # RFC 6979: deterministic signatures
        assert recover_receipt_signer(rec.chain_id, rec.ledger, rec.node, rec.seq, rec.leaf(), sig) == acct.address
        vs.add(sig[64])
    assert vs == {27, 28}


def test_receipt_signer_without_a_raw_key_signs_through_the_account() -> None:
    from attribution.records.receipt import ReceiptSigner

    acct = Account.create()

    class RemoteSigner:  # an account object that signs but does not expose its key (e.g. an HSM-backed signer)
        address = acct.address
        calls = 0

        def unsafe_sign_hash(self, digest: bytes) -> object:
            RemoteSigner.calls += 1
            return acct.unsafe_sign_hash(digest)

    rec = dataclasses.replace(random_records(1, seed=3)[0], node=bytes.fromhex(acct.address[2:]))
    sig = ReceiptSigner(RemoteSigner(), rec.chain_id, rec.ledger).sign(rec.seq, rec.leaf())
    assert RemoteSigner.calls == 1
    assert sig == sign_receipt(rec, acct.key)


def test_receipt_signer_digest_is_the_eip712_digest() -> None:
    from eth_account.messages import _hash_eip191_message

    from attribution.records.receipt import ReceiptSigner, receipt_message

    acct = Account.create()
    rec = dataclasses.replace(random_records(1, seed=9)[0], node=bytes.fromhex(acct.address[2:]))
    signer = ReceiptSigner(acct, rec.chain_id, rec.ledger)
    for seq in (0, rec.seq, 2**64 - 1):
        expected = _hash_eip191_message(receipt_message(rec.chain_id, rec.ledger, rec.node, seq, rec.leaf()))
        assert signer.digest(seq, rec.leaf()) == expected
    with pytest.raises(ReceiptError):
        signer.digest(2**64, rec.leaf())


def test_high_s_receipt_is_refused_and_only_low_s_is_produced() -> None:
    """Issue 21 (info): the second, high-s form (n - s, v flipped) of a valid receipt recovered the same node on v2;
    now only the low-s form is accepted, and both signers produce it."""
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    acct = Account.create()
    for seed in range(8):
        rec = dataclasses.replace(random_records(1, seed=seed)[0], node=bytes.fromhex(acct.address[2:]))
        sig = sign_receipt(rec, acct.key)
        r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
        assert s <= SECP256K1_HALF_N, "sign_receipt produces low s"
        signer_sig = ReceiptSigner(acct, rec.chain_id, rec.ledger).sign(rec.seq, rec.leaf())
        assert int.from_bytes(signer_sig[32:64], "big") <= SECP256K1_HALF_N, "ReceiptSigner produces low s"
        high = r + (n - s).to_bytes(32, "big") + bytes([v ^ 1])  # 27 <-> 28
        args = (rec.chain_id, rec.ledger, rec.node, rec.seq, rec.leaf())
        assert recover_receipt_signer(*args, sig) == acct.address
        with pytest.raises(ReceiptError, match="high s"):
            recover_receipt_signer(*args, high)
