"""Payload encoding (field elements, chunks) and certificate/commitment layout."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.da import codec
from attribution.da.codec import (
    BLOB_BYTES,
    MAX_PAYLOAD_BYTES,
    Certificate,
    chunk_count,
    chunk_span,
    decode_blobs,
    encode_chunk,
    encode_payload,
    parse_commitment,
    parse_commitment_hex,
)
from attribution.da.errors import DACommitmentInvalid, DAPayloadTooLarge
from attribution.hashing import keccak256

ONE_BLOB_MAX = 4095 * 31  # 126,975 B: the header plus these fill exactly one blob


def _reference_encode(payload: bytes) -> bytes:
    """Straight from the spec, without chunks: header, then 0x00 + 31 bytes per unit, zero-padded to blobs."""
    out = b"\x00\x00" + len(payload).to_bytes(4, "big") + bytes(26)
    for k in range(0, len(payload), 31):
        out += b"\x00" + payload[k : k + 31].ljust(31, b"\x00")
    return out.ljust(-(-len(out) // BLOB_BYTES) * BLOB_BYTES, b"\x00")


@pytest.mark.parametrize(
    ("length", "chunks"),
    [(0, 1), (1, 1), (31, 1), (32, 1), (ONE_BLOB_MAX, 1), (ONE_BLOB_MAX + 1, 2), (ONE_BLOB_MAX + 4096 * 31, 2),
     (ONE_BLOB_MAX + 4096 * 31 + 1, 3), (MAX_PAYLOAD_BYTES, 133)],
)
def test_chunk_count_boundaries(length: int, chunks: int) -> None:
    assert chunk_count(length) == chunks


def test_header_and_unit_positions() -> None:
    payload = bytes(range(62)) + b"\xff"
    blob = encode_payload(payload)[0]
    assert blob[:32] == b"\x00\x00" + (63).to_bytes(4, "big") + bytes(26)
    # payload unit k is field element k+1, high byte zero
    assert blob[32:64] == b"\x00" + payload[0:31]
    assert blob[64:96] == b"\x00" + payload[31:62]
    assert blob[96:128] == b"\x00\xff" + bytes(30)
    assert not any(blob[128:])


@pytest.mark.parametrize("length", [0, 1, 31, 32, ONE_BLOB_MAX - 1, ONE_BLOB_MAX, ONE_BLOB_MAX + 1, 300_000])
def test_encoding_matches_reference_and_round_trips(length: int) -> None:
    payload = bytes((i * 7 + 3) % 256 for i in range(length))
    blobs = encode_payload(payload)
    assert all(len(b) == BLOB_BYTES for b in blobs)
    assert b"".join(blobs) == _reference_encode(payload)
    assert decode_blobs(blobs) == payload


def test_chunks_encode_independently() -> None:
    length = 2 * BLOB_BYTES
    payload = bytes(i % 251 for i in range(length))
    whole = encode_payload(payload)
    spans = [chunk_span(length, i) for i in range(chunk_count(length))]
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # contiguous, no overlap
    for i, (start, end) in enumerate(spans):
        assert encode_chunk(payload[start:end], i, length) == whole[i]
    with pytest.raises(ValueError, match="needs"):
        encode_chunk(payload[:10], 0, length)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_PAYLOAD_BYTES))
def test_chunk_spans_tile_the_payload(length: int) -> None:
    spans = [chunk_span(length, i) for i in range(chunk_count(length))]
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    # every chunk but the last is full: 4095 units in chunk 0 (header first), 4096 after
    assert all(end - start == (4095 if i == 0 else 4096) * 31 for i, (start, end) in enumerate(spans[:-1]))


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=5000))
def test_round_trip_property(payload: bytes) -> None:
    assert decode_blobs(encode_payload(payload)) == payload


def test_too_large_payload_is_refused() -> None:
    with pytest.raises(DAPayloadTooLarge, match="16 MiB"):
        chunk_count(MAX_PAYLOAD_BYTES + 1)


def test_decode_is_strict() -> None:
    blob = bytearray(encode_payload(b"hello world")[0])
    bad_high = bytearray(blob)
    bad_high[32] = 1
    with pytest.raises(ValueError, match="high byte"):
        decode_blobs([bytes(bad_high)])
    bad_pad = bytearray(blob)
    bad_pad[-1] = 1
    with pytest.raises(ValueError, match="padding"):
        decode_blobs([bytes(bad_pad)])
    bad_header = bytearray(blob)
    bad_header[10] = 1
    with pytest.raises(ValueError, match="header"):
        decode_blobs([bytes(bad_header)])
    with pytest.raises(ValueError, match="blobs"):
        decode_blobs([bytes(blob), bytes(BLOB_BYTES)])


def _cert(**overrides: object) -> Certificate:
    fields: dict[str, object] = {
        "payload_keccak": keccak256(b"x" * 40),
        "payload_length": 40,
        "kzg_commitments_hash": codec.kzg_commitments_hash((b"\xc0" + bytes(47),)),
        "blob_count": 1,
        "da_sequence": 7,
        "stored_at": 1_700_000_000,
        "chunks_root": keccak256(b"chunks"),
        "operator_signature": bytes(64) + b"\x1b",
    }
    fields.update(overrides)
    return Certificate(**fields)  # type: ignore[arg-type]


def test_certificate_layout_is_abi_encode_of_the_fields() -> None:
    cert = _cert()
    root = cert.chunks_root
    expected = abi_encode(
        ["uint8", "bytes32", "uint32", "bytes32", "uint32", "uint64", "uint64", "bytes32", "bytes"],
        [3, cert.payload_keccak, 40, cert.kzg_commitments_hash, 1, 7, 1_700_000_000, root, cert.operator_signature],
    )
    assert cert.encode() == expected
    assert cert.commitment() == b"\x01\x00\xd0" + expected
    assert parse_commitment(cert.commitment()) == cert
    digest_input = abi_encode(
        ["uint8", "bytes32", "uint32", "bytes32", "uint32", "uint64", "uint64", "bytes32"],
        [3, cert.payload_keccak, 40, cert.kzg_commitments_hash, 1, 7, 1_700_000_000, root],
    )
    assert cert.signing_digest() == keccak256(digest_input)
    assert cert.with_signature(b"").signing_digest() == cert.signing_digest()
    assert len(cert.encode()) == 416 and len(cert.commitment()) == 419  # constant: one hash however many blobs
    assert cert.matches_commitments([b"\xc0" + bytes(47)]) and not cert.matches_commitments([bytes(48)])
    # the contract reads head words 0 (version), 2 (payloadLength) and 7 (chunksRoot) after the 3-byte prefix
    c = cert.commitment()
    assert (c[3 + 31], int.from_bytes(c[3 + 64:3 + 96], "big"), c[3 + 224:3 + 256]) == (3, 40, root)
    assert cert.resolvable


def test_version_2_certificates_still_decode_but_cannot_be_resolved() -> None:
    v3 = _cert()
    fields = [2, v3.payload_keccak, 40, v3.kzg_commitments_hash, 1, 7, 1_700_000_000]
    raw = abi_encode(["uint8", "bytes32", "uint32", "bytes32", "uint32", "uint64", "uint64", "bytes"],
                     [*fields, v3.operator_signature])
    v2 = parse_commitment(b"\x01\x00\xd0" + raw)
    assert (v2.version, v2.chunks_root, v2.resolvable, len(raw)) == (2, b"", False, 384)
    assert v2.encode() == raw
    assert v2.signing_digest() == keccak256(abi_encode(
        ["uint8", "bytes32", "uint32", "bytes32", "uint32", "uint64", "uint64"], fields))
    with pytest.raises(DACommitmentInvalid, match="chunksRoot"):
        Certificate(**{**v3.__dict__, "chunks_root": b""}).check_shape()


@pytest.mark.parametrize(
    "mutation",
    [
        lambda c: b"\x01\x00\xd1" + c[3:],  # other cert version byte
        lambda c: b"\x00" + c[1:],  # keccak commitment type
        lambda c: c[:-1],  # truncated
        lambda c: c + b"\x00",  # trailing byte (non-canonical)
        lambda c: c[:3],  # prefix only
        lambda c: c[:3] + bytes(31) + b"\x01" + c[35:],  # version field 1 (per-blob commitments, retired)
        lambda c: c[:3] + bytes(31) + b"\x02" + c[35:],  # v2 field with a v3 body (a v2 cert is 32 bytes shorter)
        lambda c: c[:3] + bytes(31) + b"\x04" + c[35:],  # a version from the future
    ],
)
def test_malformed_commitments_are_refused(mutation: object) -> None:
    commitment = _cert().commitment()
    with pytest.raises(DACommitmentInvalid):
        parse_commitment(mutation(commitment))  # type: ignore[operator]


def test_certificate_shape_checks() -> None:
    with pytest.raises(DACommitmentInvalid, match="KZG commitments"):
        parse_commitment(_cert(blob_count=2).commitment())
    with pytest.raises(DACommitmentInvalid, match="zero exactly when"):
        parse_commitment(_cert(kzg_commitments_hash=bytes(32)).commitment())
    with pytest.raises(DACommitmentInvalid, match="48 bytes"):
        Certificate.of(payload_keccak=bytes(32), payload_length=1, kzg_commitments=(bytes(47),), da_sequence=0,
                       stored_at=0, chunks_root=bytes(32))
    with pytest.raises(DACommitmentInvalid, match="65 bytes"):
        parse_commitment(_cert(operator_signature=bytes(10)).commitment())
    # no KZG commitments at all is a server started with --no-kzg: allowed
    assert parse_commitment(_cert(kzg_commitments_hash=bytes(32), blob_count=0).commitment()).blob_count == 0


def test_parse_commitment_hex() -> None:
    assert parse_commitment_hex("0x0100d0") == b"\x01\x00\xd0"
    assert parse_commitment_hex("0100D0") == b"\x01\x00\xd0"
    for bad in ("0x", "", "0xzz", "0x123"):
        with pytest.raises(DACommitmentInvalid):
            parse_commitment_hex(bad)


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=0, max_value=MAX_PAYLOAD_BYTES),
    seq=st.integers(min_value=0, max_value=2**64 - 1),
    stored_at=st.integers(min_value=0, max_value=2**64 - 1),
    seed=st.binary(min_size=1, max_size=8),
    signed=st.booleans(),
)
def test_certificate_round_trip_property(length: int, seq: int, stored_at: int, seed: bytes, signed: bool) -> None:
    cert = Certificate.of(
        payload_keccak=keccak256(seed),
        payload_length=length,
        kzg_commitments=tuple(keccak256(seed + bytes([i % 256])) + bytes(16) for i in range(chunk_count(length))),
        da_sequence=seq,
        stored_at=stored_at,
        chunks_root=keccak256(seed + b"root"),
    ).with_signature((bytes(64) + b"\x1c") if signed else b"")
    assert parse_commitment(cert.commitment()) == cert
    # flipping any byte of the fixed-size head either fails to decode or decodes to a different certificate
    raw = bytearray(cert.commitment())
    raw[3 + 32 + 5] ^= 0x01  # inside payloadKeccak
    assert parse_commitment(bytes(raw)) != cert
