"""EigenDA-style payload encoding, the DA certificate and the Alt-DA commitment that wraps it.

Encoding (one payload → field elements → 4096-element blobs):

- field element 0 is a 32-byte header `00 00 len_be32 00…00` (payload length big-endian at bytes 2..6);
- payload unit k (bytes `31k .. 31k+31`, the last one zero-padded) is field element k+1, written as `00 ‖ unit`
  so every element is below the BLS12-381 modulus;
- elements are cut into chunks of 4096 (one EIP-4844 blob, 131072 bytes); the last chunk is zero-padded.

Commitment = `01 ‖ 00 ‖ d0 ‖ cert` (OP Alt-DA generic commitment, DA layer byte 0x00 = EigenDA, our cert version
byte 0xd0) with `cert = abi.encode(uint8 version, bytes32 payloadKeccak, uint32 payloadLength,
bytes32 kzgCommitmentsHash, uint32 blobCount, uint64 daSequence, uint64 storedAt, bytes32 chunksRoot,
bytes operatorSignature)`, version 3 (docs/disputes.md "Certificate v3 and chunks"). `kzgCommitmentsHash =
keccak256(commitment_0 ‖ … ‖ commitment_{n-1})` over the 48-byte KZG commitments of the `blobCount` blobs (zero
hash and count with KZG off). `chunksRoot` is the StandardMerkleTree root over `(uint256 i, bytes32 keccak256(
dispute chunk i))` (`attribution.da.chunks`): what `BatchDisputes.resolveAvailability` checks a published chunk
against. The certificate has a constant size (416 bytes), as an EigenDA certificate does, so posting it costs the
same at 1k or 270k records. The operator signs `keccak256(abi.encode(<the same fields without operatorSignature>))`
as a raw secp256k1 digest (not EIP-191).

Version 2 (the same without `chunksRoot`, 384 bytes) is still decoded and verified, so batches posted with it stay
readable; the server issues only v3, and a v2 certificate cannot answer an availability challenge (docs/da.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from attribution.da.errors import DACommitmentInvalid, DAPayloadTooLarge
from attribution.hashing import keccak256

UNIT_BYTES = 31
FIELD_ELEMENT_BYTES = 32
ELEMENTS_PER_BLOB = 4096
BLOB_BYTES = ELEMENTS_PER_BLOB * FIELD_ELEMENT_BYTES  # 131072
KZG_COMMITMENT_BYTES = 48
SIGNATURE_BYTES = 65
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
HEADER_BYTES = FIELD_ELEMENT_BYTES

COMMITMENT_PREFIX = b"\x01\x00\xd0"  # generic commitment, DA layer EigenDA, our devnet cert version
# 1 carried every KZG commitment (bytes[]): 128 calldata bytes per blob on every postBatch; 2 hashed them;
# 3 adds the dispute chunks' Merkle root (an availability challenge is answered against it)
CERT_VERSION = 3
CERT_V2 = 2
READABLE_VERSIONS = (CERT_V2, CERT_VERSION)

CERT_TYPES = ["uint8", "bytes32", "uint32", "bytes32", "uint32", "uint64", "uint64", "bytes32", "bytes"]
SIGNED_TYPES = CERT_TYPES[:-1]
CERT_V2_TYPES = [*CERT_TYPES[:7], "bytes"]



# ---------------------------------------------------------------------------------------------------------------
# payload encoding
# ---------------------------------------------------------------------------------------------------------------


def _check_length(length: int) -> None:
    if length < 0:
        raise ValueError(f"payload length must be >= 0, got {length}")
    if length > MAX_PAYLOAD_BYTES:
        raise DAPayloadTooLarge(
            f"payload is {length} bytes, above the DA limit of {MAX_PAYLOAD_BYTES} bytes (16 MiB); "
            "split it into smaller payloads"
        )


def element_count(length: int) -> int:
    """Field elements used by a payload of `length` bytes: the header plus one per 31-byte unit."""
    _check_length(length)
    return 1 + -(-length // UNIT_BYTES)


def chunk_count(length: int) -> int:
    """Blobs (4096-element chunks) a payload of `length` bytes is cut into; at least one."""
    return -(-element_count(length) // ELEMENTS_PER_BLOB)


def chunk_span(length: int, index: int) -> tuple[int, int]:
    """Payload byte range `[start, end)` whose units land in chunk `index` (chunk 0 also carries the header)."""
    n = chunk_count(length)
    if not 0 <= index < n:
        raise IndexError(f"chunk {index} out of range for a payload of {length} bytes ({n} chunks)")
    first_unit = max(index * ELEMENTS_PER_BLOB - 1, 0)  # element e holds unit e-1
    last_unit = (index + 1) * ELEMENTS_PER_BLOB - 1  # exclusive
    return min(first_unit * UNIT_BYTES, length), min(last_unit * UNIT_BYTES, length)


def encode_header(length: int) -> bytes:
    """Field element 0: `00 00 len_be32` then zeros."""
    _check_length(length)
    return b"\x00\x00" + length.to_bytes(4, "big") + bytes(HEADER_BYTES - 6)


def encode_chunk(part: bytes, index: int, length: int) -> bytes:
    """Encode chunk `index` of a `length`-byte payload from `part` = `payload[chunk_span(length, index)]`.

    Returns one full blob (131072 bytes). Chunks are independent, so worker processes encode their own.
    """
    start, end = chunk_span(length, index)
    if len(part) != end - start:
        raise ValueError(f"chunk {index} needs {end - start} payload bytes, got {len(part)}")
    elements: list[bytes] = [encode_header(length)] if index == 0 else []
    mv = memoryview(part)
    for off in range(0, len(part), UNIT_BYTES):
        unit = bytes(mv[off : off + UNIT_BYTES])
        if len(unit) < UNIT_BYTES:
            unit += bytes(UNIT_BYTES - len(unit))
        elements.append(b"\x00" + unit)
    blob = b"".join(elements)
    return blob + bytes(BLOB_BYTES - len(blob))


def encode_payload(payload: bytes) -> list[bytes]:
    """Encode a whole payload into its blobs (see the module docstring)."""
    length = len(payload)
    blobs = []
    for i in range(chunk_count(length)):
        start, end = chunk_span(length, i)
        blobs.append(encode_chunk(payload[start:end], i, length))
    return blobs


def decode_blobs(blobs: list[bytes]) -> bytes:
    """Inverse of `encode_payload`, strict: wrong sizes, a bad header, non-zero high bytes or padding raise."""
    if not blobs or any(len(b) != BLOB_BYTES for b in blobs):
        raise ValueError(f"need one or more blobs of exactly {BLOB_BYTES} bytes")
    data = b"".join(blobs)
    header = data[:HEADER_BYTES]
    if header[:2] != b"\x00\x00" or any(header[6:]):
        raise ValueError("blob header is not `00 00 len_be32 00..00`")
    length = int.from_bytes(header[2:6], "big")
    _check_length(length)
    if chunk_count(length) != len(blobs):
        raise ValueError(f"a {length}-byte payload needs {chunk_count(length)} blobs, got {len(blobs)}")
    units = []
    n_units = element_count(length) - 1
    for k in range(n_units):
        element = data[(k + 1) * FIELD_ELEMENT_BYTES : (k + 2) * FIELD_ELEMENT_BYTES]
        if element[0] != 0:
            raise ValueError(f"field element {k + 1} has a non-zero high byte")
        units.append(element[1:])
    payload = b"".join(units)
    if any(payload[length:]) or any(data[(n_units + 1) * FIELD_ELEMENT_BYTES :]):
        raise ValueError("non-zero bytes in the padding after the payload")
    return payload[:length]


# ---------------------------------------------------------------------------------------------------------------
# certificate and commitment
# ---------------------------------------------------------------------------------------------------------------


def kzg_commitments_hash(commitments: tuple[bytes, ...] | list[bytes]) -> bytes:
    """`keccak256` of the 48-byte commitments joined in blob order (32 zero bytes when there are none)."""
    return keccak256(b"".join(bytes(c) for c in commitments)) if commitments else bytes(32)


@dataclass(frozen=True)
class Certificate:
    """An EigenDA-style DA certificate: what was stored, its KZG commitments (hashed), its dispute chunks' root,
    where in the log, who attests. `chunks_root` is empty for a version 2 certificate."""

    payload_keccak: bytes
    payload_length: int
    kzg_commitments_hash: bytes
    blob_count: int
    da_sequence: int
    stored_at: int
    chunks_root: bytes = b""
    operator_signature: bytes = b""
    version: int = CERT_VERSION

    @classmethod
    def of(cls, *, payload_keccak: bytes, payload_length: int, kzg_commitments: tuple[bytes, ...] | list[bytes],
           da_sequence: int, stored_at: int, chunks_root: bytes) -> Certificate:
        """An unsigned v3 certificate over these blob commitments (none: KZG off) and this chunk root."""
        if any(len(c) != KZG_COMMITMENT_BYTES for c in kzg_commitments):
            raise DACommitmentInvalid(f"every KZG commitment must be {KZG_COMMITMENT_BYTES} bytes")
        if len(chunks_root) != 32:
            raise DACommitmentInvalid(f"chunksRoot must be 32 bytes, got {len(chunks_root)}")
        return cls(payload_keccak=payload_keccak, payload_length=payload_length,
                   kzg_commitments_hash=kzg_commitments_hash(kzg_commitments), blob_count=len(kzg_commitments),
                   da_sequence=da_sequence, stored_at=stored_at, chunks_root=bytes(chunks_root))

    def _types(self) -> list[str]:
        return CERT_V2_TYPES if self.version == CERT_V2 else CERT_TYPES

    def _signed_fields(self) -> list[object]:
        fields: list[object] = [
            self.version,
            self.payload_keccak,
            self.payload_length,
            self.kzg_commitments_hash,
            self.blob_count,
            self.da_sequence,
            self.stored_at,
        ]
        return fields if self.version == CERT_V2 else [*fields, self.chunks_root]

    def signing_digest(self) -> bytes:
        """`keccak256(abi.encode(version, payloadKeccak, payloadLength, kzgCommitmentsHash, blobCount, daSequence,
        storedAt, chunksRoot))` (v2: without chunksRoot)."""
        return keccak256(abi_encode(self._types()[:-1], self._signed_fields()))

    def with_signature(self, signature: bytes) -> Certificate:
        """A copy carrying `signature` as its operator signature."""
        return replace(self, operator_signature=signature)

    def encode(self) -> bytes:
        """The ABI-encoded certificate (the bytes after the 3-byte commitment prefix)."""
        return abi_encode(self._types(), [*self._signed_fields(), self.operator_signature])

    def commitment(self) -> bytes:
        """The Alt-DA commitment: `01 00 d0 ‖ cert`."""
        return COMMITMENT_PREFIX + self.encode()

    def matches_commitments(self, commitments: tuple[bytes, ...] | list[bytes]) -> bool:
        """True when these blob commitments (e.g. recomputed from the payload) are the certified ones."""
        return len(commitments) == self.blob_count and kzg_commitments_hash(commitments) == self.kzg_commitments_hash

    @property
    def resolvable(self) -> bool:
        """True when an availability challenge on a batch with this certificate can be answered (v3 and later)."""
        return self.version >= CERT_VERSION

    @classmethod
    def decode(cls, cert: bytes) -> Certificate:
        """Decode and sanity-check an ABI-encoded certificate (v3, or v2 as issued before); raise
        `DACommitmentInvalid` when malformed."""
        head = bytes(cert[:32])
        version = head[31] if len(head) == 32 and head[:31] == bytes(31) else None
        if version is not None and version not in READABLE_VERSIONS:
            raise DACommitmentInvalid(f"certificate version {version} is not supported (expected {CERT_VERSION}, or "
                                      f"{CERT_V2} for payloads stored before v3); re-put the payload to get a "
                                      "current certificate")
        types = CERT_V2_TYPES if version == CERT_V2 else CERT_TYPES
        try:
            fields = abi_decode(types, cert, strict=True)
        except Exception as e:  # eth-abi raises a zoo of decoding errors
            raise DACommitmentInvalid(f"certificate is not valid ABI for {types}: {e}") from e
        if version == CERT_V2:
            *head_fields, signature = fields
            root = b""
        else:
            *head_fields, root, signature = fields
        version, payload_keccak, payload_length, kzg_hash, blob_count, da_sequence, stored_at = head_fields
        certificate = cls(
            version=version,
            payload_keccak=bytes(payload_keccak),
            payload_length=payload_length,
            kzg_commitments_hash=bytes(kzg_hash),
            blob_count=blob_count,
            da_sequence=da_sequence,
            stored_at=stored_at,
            chunks_root=bytes(root),
            operator_signature=bytes(signature),
        )
        if certificate.encode() != bytes(cert):
            raise DACommitmentInvalid("certificate is not in canonical ABI encoding; use the bytes /put returned")
        certificate.check_shape()
        return certificate

    def check_shape(self) -> None:
        """Raise `DACommitmentInvalid` unless version, length, blob count, hashes and signature size fit."""
        if self.version not in READABLE_VERSIONS:
            raise DACommitmentInvalid(f"certificate version {self.version} is not supported (expected {CERT_VERSION})")
        if self.payload_length > MAX_PAYLOAD_BYTES:
            raise DACommitmentInvalid(f"certificate claims {self.payload_length} bytes, above the 16 MiB limit")
        n = self.blob_count
        # zero blobs: a server started with KZG disabled (dev/bench only); otherwise one commitment per blob
        if n not in (0, chunk_count(self.payload_length)):
            raise DACommitmentInvalid(
                f"certificate has {n} KZG commitments, a {self.payload_length}-byte payload needs "
                f"{chunk_count(self.payload_length)}"
            )
        if len(self.kzg_commitments_hash) != 32 or (n == 0) != (self.kzg_commitments_hash == bytes(32)):
            raise DACommitmentInvalid("kzgCommitmentsHash must be 32 bytes, zero exactly when blobCount is 0")
        if len(self.chunks_root) != (0 if self.version == CERT_V2 else 32):
            raise DACommitmentInvalid("chunksRoot must be 32 bytes in a v3 certificate (and absent from v2)")
        if len(self.operator_signature) not in (0, SIGNATURE_BYTES):
            raise DACommitmentInvalid(f"operator signature must be {SIGNATURE_BYTES} bytes")


def is_our_commitment(commitment: bytes) -> bool:
    """True when the commitment carries our certificate prefix (`01 00 d0`); others are opaque to us."""
    return bytes(commitment[:3]) == COMMITMENT_PREFIX


def parse_commitment(commitment: bytes) -> Certificate:
    """Decode `01 00 d0 ‖ cert` into a `Certificate`; raise `DACommitmentInvalid` for anything else."""
    if not is_our_commitment(commitment):
        raise DACommitmentInvalid(
            f"commitment must start with {COMMITMENT_PREFIX.hex()} (generic, EigenDA, cert v0xd0); "
            f"got {bytes(commitment[:3]).hex() or 'nothing'}"
        )
    return Certificate.decode(bytes(commitment[3:]))


def parse_commitment_hex(text: str) -> bytes:
    """`0x…` (or bare) hex → commitment bytes; raise `DACommitmentInvalid` on bad hex."""
    body = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        raw = bytes.fromhex(body)
    except ValueError as e:
        raise DACommitmentInvalid("commitment is not hex; pass the 0x-prefixed hex that /put returned") from e
    if not raw:
        raise DACommitmentInvalid("commitment is empty; pass the 0x-prefixed hex that /put returned")
    return raw
