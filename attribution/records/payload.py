"""`LLB2` batch payloads: what a node sends to DA for one batch (DESIGN.md, "Batch payload").

Everything is built from 31-byte units (one DA field element each); integers are big-endian; each section is
zero-padded to whole units.

    header   3 units = 93 B : "LLB2" | chainId u64 | ledger (20) | node (20) | firstSeq u64 | count u32
                              | profileCount u32   (68 B, then 25 zero bytes)
    profiles profileCount entries, each padded to whole units:
                              modelId (32) | adapterId (32) | n u8 | n x (datasetId (32) | weightBps u16)
    records  count slots of 2 units = 62 B: profileIdx u32 | promptTokens u32 | completionTokens u32
                              | timestamp u64 | ioHash (32) | 10 zero bytes        (record i has seq firstSeq+i)

The decoder is strict: every deviation raises a named `PayloadError` subclass. A payload is at most 16 MiB.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from attribution.errors import AttributionError
from attribution.records import Profile, Record, RecordColumns, RecordValidationError, record_leaves_from_columns

__all__ = [
    "MAGIC",
    "UNIT",
    "HEADER_BYTES",
    "RECORD_SLOT_BYTES",
    "MAX_PAYLOAD_BYTES",
    "PayloadError",
    "PayloadMagicError",
    "PayloadTruncatedError",
    "PayloadPaddingError",
    "PayloadProfileIndexError",
    "PayloadProfileError",
    "PayloadTrailingBytesError",
    "PayloadTooLargeError",
    "DecodedBatch",
    "encode_batch",
    "decode_batch",
    "record_at",
    "profile_bytes",
    "max_records_for",
]

MAGIC = b"LLB2"
UNIT = 31
HEADER_BYTES = 3 * UNIT  # 93
RECORD_SLOT_BYTES = 2 * UNIT  # 62
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
_HEADER = struct.Struct(">4sQ20s20sQII")  # 68 bytes
_SLOT = struct.Struct(">IIIQ32s10s")  # 62 bytes
_SLOT_DTYPE = np.dtype([("pidx", ">u4"), ("pt", ">u4"), ("ct", ">u4"), ("ts", ">u8"), ("io", "u1", (32,)),
                        ("pad", "u1", (10,))])
assert _SLOT_DTYPE.itemsize == RECORD_SLOT_BYTES == _SLOT.size


class PayloadError(AttributionError, ValueError):
    """A batch payload is malformed or cannot be built."""


class PayloadMagicError(PayloadError):
    """The payload does not start with `LLB2`: not a batch payload, or a different version."""


class PayloadTruncatedError(PayloadError):
    """The payload ends before its header, profiles or record slots do; it was cut short in transit or storage."""


class PayloadPaddingError(PayloadError):
    """A padding byte is not zero; the payload is not canonical and is refused."""


class PayloadProfileIndexError(PayloadError, IndexError):
    """A record slot names a profile index that the payload's profile table does not have."""


class PayloadProfileError(PayloadError):
    """A profile entry breaks the record rules (e.g. weights that do not sum to 10000)."""


class PayloadTrailingBytesError(PayloadError):
    """Bytes follow the last record slot; a payload is exactly header + profiles + count slots."""


class PayloadTooLargeError(PayloadError):
    """The payload exceeds 16 MiB (EigenDA's max blob); seal smaller batches (`max_records_for`)."""


def _pad_to_unit(n: int) -> int:
    return -(-n // UNIT) * UNIT


def profile_bytes(profile: Profile) -> int:
    """Bytes one profile entry takes in a payload (padded to whole units)."""
    return _pad_to_unit(65 + 34 * len(profile.dataset_ids))


def max_records_for(profiles_total_bytes: int) -> int:
    """How many records fit in one payload next to profile entries of this total size (see `profile_bytes`)."""
    return max(0, (MAX_PAYLOAD_BYTES - HEADER_BYTES - profiles_total_bytes) // RECORD_SLOT_BYTES)


def _encode_profile(p: Profile) -> bytes:
    body = p.model_id + p.adapter_id + bytes([len(p.dataset_ids)]) + b"".join(
        d + w.to_bytes(2, "big") for d, w in zip(p.dataset_ids, p.weights_bps, strict=True))
    return body + b"\x00" * (_pad_to_unit(len(body)) - len(body))


def encode_batch(chain_id: int, ledger: bytes, node: bytes, first_seq: int, records: Sequence[Record]) -> bytes:
    """Encode records `first_seq, first_seq+1, ...` (all of this chain, ledger and node) as an `LLB2` payload.

    Profiles are deduplicated in order of first use. Raises `PayloadError` if a record does not belong to the
    batch, and `PayloadTooLargeError` past 16 MiB.
    """
    if not records:
        raise PayloadError("a batch payload needs at least one record")
    table: dict[tuple[bytes, bytes, tuple[bytes, ...], tuple[int, ...]], int] = {}
    slots = np.zeros(len(records), _SLOT_DTYPE)
    pidx = np.empty(len(records), np.int64)
    for i, r in enumerate(records):
        if r.seq != first_seq + i:
            raise PayloadError(f"record {i} has seq {r.seq}, expected {first_seq + i}: batches are gap-free")
        if r.chain_id != chain_id or r.ledger != ledger or r.node != node:
            raise PayloadError(f"record seq {r.seq} belongs to another chain, ledger or node than the batch")
        pidx[i] = table.setdefault((r.model_id, r.adapter_id, r.dataset_ids, r.weights_bps), len(table))
    profiles = b"".join(_encode_profile(Profile(*key)) for key in table)
    size = HEADER_BYTES + len(profiles) + RECORD_SLOT_BYTES * len(records)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"payload would be {size} bytes, max {MAX_PAYLOAD_BYTES}; use at most "
                                   f"{max_records_for(len(profiles))} records per batch")
    slots["pidx"] = pidx
    slots["pt"] = [r.prompt_tokens for r in records]
    slots["ct"] = [r.completion_tokens for r in records]
    slots["ts"] = [r.timestamp for r in records]
    slots["io"] = np.frombuffer(b"".join(r.io_hash for r in records), np.uint8).reshape(-1, 32)
    header = _HEADER.pack(MAGIC, chain_id, ledger, node, first_seq, len(records), len(table))
    header += b"\x00" * (HEADER_BYTES - len(header))
    return header + profiles + slots.tobytes()


def payload_size(profiles: Sequence[Profile], count: int) -> int:
    """Bytes of the payload of `count` records over these profiles."""
    return HEADER_BYTES + sum(profile_bytes(p) for p in profiles) + RECORD_SLOT_BYTES * count


def encode_columns(cols: RecordColumns) -> bytes:
    """`encode_batch` from `RecordColumns` with consecutive seqs (the sealing path: no `Record` objects).

    Only the profiles the records use are written, in order of first use, so the bytes equal `encode_batch` of
    the same records.
    """
    m = len(cols)
    if m == 0:
        raise PayloadError("a batch payload needs at least one record")
    first_seq = int(cols.seqs[0])
    if not np.array_equal(cols.seqs, np.arange(first_seq, first_seq + m, dtype=np.uint64)):
        raise PayloadError("record seqs are not consecutive: batches are gap-free")
    # renumber profiles in order of first use, as encode_batch does
    uniq, first_pos = np.unique(cols.profile_idx, return_index=True)
    order = uniq[np.argsort(first_pos)]
    remap = np.empty(len(cols.profiles), np.int64)
    remap[order] = np.arange(len(order))
    profiles = [cols.profiles[int(i)] for i in order]
    size = payload_size(profiles, m)
    if size > MAX_PAYLOAD_BYTES:
        used = sum(profile_bytes(p) for p in profiles)
        raise PayloadTooLargeError(f"payload would be {size} bytes, max {MAX_PAYLOAD_BYTES}; use at most "
                                   f"{max_records_for(used)} records per batch")
    slots = np.zeros(m, _SLOT_DTYPE)
    slots["pidx"] = remap[cols.profile_idx]
    slots["pt"] = cols.prompt_tokens
    slots["ct"] = cols.completion_tokens
    slots["ts"] = cols.timestamps
    slots["io"] = cols.io_hashes
    header = _HEADER.pack(MAGIC, cols.chain_id, cols.ledger, cols.node, first_seq, m, len(profiles))
    header += b"\x00" * (HEADER_BYTES - len(header))
    return header + b"".join(_encode_profile(p) for p in profiles) + slots.tobytes()


@dataclass(frozen=True)
class DecodedBatch:
    """A decoded payload: header fields, the profile table and the record columns.

    `records` builds `Record` objects (with `seq = first_seq + i`); `leaves()` hashes straight from the columns,
    which is how a verifier rebuilds the root of a large batch quickly.
    """

    chain_id: int
    ledger: bytes
    node: bytes
    first_seq: int
    count: int
    profiles: tuple[Profile, ...]
    profile_idx: np.ndarray  # [count] int
    prompt_tokens: np.ndarray  # [count] uint32
    completion_tokens: np.ndarray  # [count] uint32
    timestamps: np.ndarray  # [count] uint64
    io_hashes: np.ndarray  # [count, 32] uint8

    @cached_property
    def records(self) -> list[Record]:
        """All records of the batch, seq order."""
        return [self.record(i) for i in range(self.count)]

    def record(self, i: int) -> Record:
        """Record i of the batch (seq `first_seq + i`)."""
        p = self.profiles[int(self.profile_idx[i])]
        return Record(
            chain_id=self.chain_id, ledger=self.ledger, node=self.node, seq=self.first_seq + i,
            model_id=p.model_id, adapter_id=p.adapter_id, dataset_ids=p.dataset_ids, weights_bps=p.weights_bps,
            prompt_tokens=int(self.prompt_tokens[i]), completion_tokens=int(self.completion_tokens[i]),
            timestamp=int(self.timestamps[i]), io_hash=self.io_hashes[i].tobytes(),
        )

    def leaves(self) -> list[bytes]:
        """StandardMerkleTree leaves of all records, seq order, from the columns (no Record objects)."""
        seqs = np.arange(self.first_seq, self.first_seq + self.count, dtype=np.uint64)
        return record_leaves_from_columns(
            self.chain_id, self.ledger, self.node, self.profiles, seqs, self.profile_idx, self.prompt_tokens,
            self.completion_tokens, self.timestamps, self.io_hashes)


def _parse_header(payload: bytes) -> tuple[int, bytes, bytes, int, int, int]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"payload is {len(payload)} bytes, max {MAX_PAYLOAD_BYTES}")
    if len(payload) < len(MAGIC) or payload[:4] != MAGIC:
        if len(payload) < len(MAGIC) and MAGIC.startswith(bytes(payload)):
            raise PayloadTruncatedError(f"payload is {len(payload)} bytes, shorter than its magic")
        raise PayloadMagicError(f"payload starts with {bytes(payload[:4])!r}, expected {MAGIC!r}")
    if len(payload) < HEADER_BYTES:
        raise PayloadTruncatedError(f"payload is {len(payload)} bytes, shorter than the {HEADER_BYTES}-byte header")
    _, chain_id, ledger, node, first_seq, count, n_profiles = _HEADER.unpack_from(payload, 0)
    if any(payload[_HEADER.size:HEADER_BYTES]):
        raise PayloadPaddingError("non-zero padding after the header")
    if count == 0:
        raise PayloadError("payload holds no records (count = 0)")
    return chain_id, ledger, node, first_seq, count, n_profiles


def _parse_profiles(payload: bytes, n_profiles: int, full: bool) -> tuple[list[Profile], int]:
    """Profiles from offset 93; returns them (or [] when not `full`) and the offset of the first record slot."""
    off = HEADER_BYTES
    profiles: list[Profile] = []
    for k in range(n_profiles):
        if off + 65 > len(payload):
            raise PayloadTruncatedError(f"payload ends inside profile {k}")
        n = payload[off + 64]
        body = 65 + 34 * n
        size = _pad_to_unit(body)
        if off + size > len(payload):
            raise PayloadTruncatedError(f"payload ends inside profile {k} ({n} datasets)")
        if any(payload[off + body: off + size]):
            raise PayloadPaddingError(f"non-zero padding after profile {k}")
        if full:
            ds = payload[off + 65: off + body]
            try:
                profiles.append(Profile(
                    model_id=bytes(payload[off: off + 32]), adapter_id=bytes(payload[off + 32: off + 64]),
                    dataset_ids=tuple(bytes(ds[j * 34: j * 34 + 32]) for j in range(n)),
                    weights_bps=tuple(int.from_bytes(ds[j * 34 + 32: j * 34 + 34], "big") for j in range(n))))
            except RecordValidationError as e:
                raise PayloadProfileError(f"profile {k} is invalid: {e}") from e
        off += size
    return profiles, off


def decode_batch(payload: bytes) -> DecodedBatch:
    """Decode an `LLB2` payload strictly; raises a `PayloadError` subclass naming what is wrong."""
    payload = bytes(payload)
    chain_id, ledger, node, first_seq, count, n_profiles = _parse_header(payload)
    profiles, off = _parse_profiles(payload, n_profiles, full=True)
    end = off + count * RECORD_SLOT_BYTES
    if len(payload) < end:
        raise PayloadTruncatedError(f"payload is {len(payload)} bytes; {count} record slots need {end}")
    if len(payload) > end:
        raise PayloadTrailingBytesError(f"{len(payload) - end} bytes after the last of {count} record slots")
    slots = np.frombuffer(payload, _SLOT_DTYPE, count=count, offset=off)
    if slots["pad"].any():
        bad = int(np.flatnonzero(slots["pad"].any(axis=1))[0])
        raise PayloadPaddingError(f"non-zero padding in record slot {bad}")
    pidx = slots["pidx"].astype(np.int64)
    if count and int(pidx.max()) >= n_profiles:
        bad = int(np.flatnonzero(pidx >= n_profiles)[0])
        raise PayloadProfileIndexError(f"record {bad} uses profile {int(pidx[bad])} but only {n_profiles} exist")
    if first_seq + count - 1 >= 1 << 64:
        raise PayloadError("firstSeq + count overflows uint64")
    return DecodedBatch(
        chain_id=chain_id, ledger=ledger, node=node, first_seq=first_seq, count=count, profiles=tuple(profiles),
        profile_idx=pidx, prompt_tokens=slots["pt"].astype(np.uint32), completion_tokens=slots["ct"].astype(np.uint32),
        timestamps=slots["ts"].astype(np.uint64), io_hashes=np.ascontiguousarray(slots["io"]))


def record_at(payload: bytes, i: int) -> Record:
    """Record i of a payload without decoding the other records (header and profile table are still checked)."""
    chain_id, ledger, node, first_seq, count, n_profiles = _parse_header(payload)
    if not 0 <= i < count:
        raise IndexError(f"record index {i} out of range; the payload holds {count} records")
    _, off = _parse_profiles(payload, n_profiles, full=False)
    end = off + count * RECORD_SLOT_BYTES
    if len(payload) < end:
        raise PayloadTruncatedError(f"payload is {len(payload)} bytes; {count} record slots need {end}")
    if len(payload) > end:
        raise PayloadTrailingBytesError(f"{len(payload) - end} bytes after the last of {count} record slots")
    pidx, pt, ct, ts, ioh, pad = _SLOT.unpack_from(payload, off + i * RECORD_SLOT_BYTES)
    if any(pad):
        raise PayloadPaddingError(f"non-zero padding in record slot {i}")
    if pidx >= n_profiles:
        raise PayloadProfileIndexError(f"record {i} uses profile {pidx} but only {n_profiles} exist")
    profiles, _ = _parse_profiles(payload, pidx + 1, full=True)
    p = profiles[pidx]
    return Record(chain_id=chain_id, ledger=ledger, node=node, seq=first_seq + i, model_id=p.model_id,
                  adapter_id=p.adapter_id, dataset_ids=p.dataset_ids, weights_bps=p.weights_bps,
                  prompt_tokens=pt, completion_tokens=ct, timestamp=ts, io_hash=ioh)
