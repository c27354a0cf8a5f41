"""Attribution record v1: the frozen dataclass, its canonical ABI values, its Merkle leaf and `io_hash_v3`.

A record is one finished request. Its leaf is the OpenZeppelin StandardMerkleTree leaf over the 12 values of
`RECORD_TYPES` (DESIGN.md, "Attribution record"):

    leaf = keccak256(keccak256(abi.encode(chainId, ledger, node, seq, modelId, adapterId, datasetIds, weightsBps,
                                          promptTokens, completionTokens, timestamp, ioHash)))

Inside Python every address is held as 20 raw bytes and every bytes32 as 32 raw bytes; constructors also accept
0x-hex strings and normalise them. The ABI encoding is hand-rolled for the fixed layout (12 head words, then the two
dynamic arrays), which is what makes building a tree over a million records fast. `RecordColumns` holds many
records as numpy columns (the form the store and the payload decoder have) and hashes all their leaves in one call
to the C extension `attribution._keccak` (several messages side by side, GIL released); without the extension the
same bytes come from numpy + safe-pysha3.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import sha3

from attribution.errors import AttributionError
from attribution.hashing import keccak256, native_kernels, to_checksum_address

__all__ = [
    "RECORD_TYPES",
    "RECORD_FIELDS",
    "MAX_DATASETS",
    "BPS_TOTAL",
    "RecordValidationError",
    "Profile",
    "PendingRecord",
    "Record",
    "io_hash",
    "io_hash_v3",
    "IO_HASH_VERSION",
    "IO_KIND_COMPLETION",
    "IO_KIND_CHAT",
    "record_leaves",
    "record_leaves_from_columns",
    "RecordColumns",
]

RECORD_TYPES: list[str] = [
    "uint256", "address", "address", "uint64", "bytes32", "bytes32",
    "bytes32[]", "uint16[]", "uint32", "uint32", "uint64", "bytes32",
]
"""The leaf encoding of a record, in field order (OZ `leafEncoding`)."""

RECORD_FIELDS: list[str] = [
    "chainId", "ledger", "node", "seq", "modelId", "adapterId",
    "datasetIds", "weightsBps", "promptTokens", "completionTokens", "timestamp", "ioHash",
]
"""The JSON / Solidity names of the record fields, in the same order as `RECORD_TYPES`."""

MAX_DATASETS = 255  # the payload stores the dataset count in one byte
BPS_TOTAL = 10_000
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1
_HEAD_BYTES = 12 * 32  # offset of the datasetIds tail in the ABI encoding
ZERO32 = b"\x00" * 32

_keccak = sha3.keccak_256
_digest = sha3.keccak_256.digest


class RecordValidationError(AttributionError, ValueError):
    """A record field is out of range or inconsistent; the message names the field and the rule broken."""


IO_HASH_VERSION = 3  # what the node writes; answers without `io_hash_version` are v1
IO_KIND_COMPLETION = 1
IO_KIND_CHAT = 2


def io_hash_v3(kind: int, salt: bytes, prompt: bytes | str, completion: bytes | str) -> bytes:
    """`keccak256(abi.encode(uint8 kind, bytes32 salt, bytes32 keccak256(prompt), bytes32 keccak256(completion)))`.

    `kind` is `IO_KIND_COMPLETION` (1) or `IO_KIND_CHAT` (2). Hashing each part separately fixes where the prompt
    ends and the completion begins, and the kind fixes which route answered: v1's plain concatenation let a salt
    holder move bytes from the prompt into the completion (or call a chat answer a completion) and still match.
    Strings are encoded as UTF-8; `salt` is 32 random bytes.
    """
    if kind not in (IO_KIND_COMPLETION, IO_KIND_CHAT):
        raise RecordValidationError(f"ioHash kind must be {IO_KIND_COMPLETION} (completion) or {IO_KIND_CHAT} "
                                    f"(chat), got {kind!r}")
    if len(salt) != 32:
        raise RecordValidationError(f"salt must be 32 bytes, got {len(salt)}; use secrets.token_bytes(32)")
    p = prompt.encode() if isinstance(prompt, str) else bytes(prompt)
    c = completion.encode() if isinstance(completion, str) else bytes(completion)
    return keccak256(kind.to_bytes(32, "big") + bytes(salt) + keccak256(p) + keccak256(c))


def io_hash(salt: bytes, prompt: bytes | str, completion: bytes | str) -> bytes:
    """v1 (legacy, records written before v3): `keccak256(salt ‖ prompt ‖ completion)`; new records use
    `io_hash_v3`. Kept so old answers stay verifiable; it cannot tell prompt bytes from completion bytes.

    Strings are encoded as UTF-8. Without the salt nobody can test a guess of the text against the record.
    """
    if len(salt) != 32:
        raise RecordValidationError(f"salt must be 32 bytes, got {len(salt)}; use secrets.token_bytes(32)")
    p = prompt.encode() if isinstance(prompt, str) else bytes(prompt)
    c = completion.encode() if isinstance(completion, str) else bytes(completion)
    return keccak256(bytes(salt) + p + c)


def _as_bytes(value: Any, size: int, field: str) -> bytes:
    if type(value) is bytes and len(value) == size:  # the common case, kept cheap
        return value
    if isinstance(value, str):
        s = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            b = bytes.fromhex(s)
        except ValueError as e:
            raise RecordValidationError(f"{field} must be 0x-hex of {size} bytes, got {value!r}") from e
    elif isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
    else:
        raise RecordValidationError(f"{field} must be bytes or 0x-hex of {size} bytes, got {type(value).__name__}")
    if len(b) != size:
        raise RecordValidationError(f"{field} must be {size} bytes, got {len(b)}")
    return b


def _as_uint(value: Any, bits_max: int, field: str) -> int:
    if type(value) is int and 0 <= value <= bits_max:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordValidationError(f"{field} must be an int, got {type(value).__name__}")
    if not 0 <= value <= bits_max:
        raise RecordValidationError(f"{field} must be in [0, {bits_max}], got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Profile:
    """The shared context of many records: model, adapter and the adapter's dataset provenance.

    `dataset_ids` and `weights_bps` have equal length, at most 255; the weights sum to 10000 unless both are
    empty (the bare base model or an adapter without registered datasets). `adapter_id` is 32 zero bytes for the
    bare base model.
    """

    model_id: bytes
    adapter_id: bytes
    dataset_ids: tuple[bytes, ...] = ()
    weights_bps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_id", _as_bytes(self.model_id, 32, "modelId"))
        object.__setattr__(self, "adapter_id", _as_bytes(self.adapter_id, 32, "adapterId"))
        ids = tuple(_as_bytes(d, 32, f"datasetIds[{i}]") for i, d in enumerate(self.dataset_ids))
        weights = tuple(_as_uint(w, BPS_TOTAL, f"weightsBps[{i}]") for i, w in enumerate(self.weights_bps))
        object.__setattr__(self, "dataset_ids", ids)
        object.__setattr__(self, "weights_bps", weights)
        if len(ids) != len(weights):
            raise RecordValidationError(
                f"datasetIds and weightsBps must have equal length, got {len(ids)} and {len(weights)}")
        if len(ids) > MAX_DATASETS:
            raise RecordValidationError(f"at most {MAX_DATASETS} datasets per adapter, got {len(ids)}")
        if ids and sum(weights) != BPS_TOTAL:
            raise RecordValidationError(
                f"weightsBps must sum to {BPS_TOTAL} (or both arrays be empty), got {sum(weights)}")

    def abi_tail(self) -> bytes:
        """The ABI tail of a record with this profile: both dynamic arrays, length-prefixed."""
        n = len(self.dataset_ids)
        nw = n.to_bytes(32, "big")
        return nw + b"".join(self.dataset_ids) + nw + b"".join(w.to_bytes(32, "big") for w in self.weights_bps)

    def abi_middle(self) -> bytes:
        """Head words 4..7 of a record with this profile: modelId, adapterId and the two array offsets."""
        n = len(self.dataset_ids)
        return (self.model_id + self.adapter_id + _HEAD_BYTES.to_bytes(32, "big")
                + (_HEAD_BYTES + 32 + 32 * n).to_bytes(32, "big"))


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A record before the store has made it durable: every field of `Record` except `seq`.

    `RecordStore.append` takes one of these and returns the `seq` it assigned at commit; `with_seq` makes the
    full `Record`. Fields and rules are those of `Record`.
    """

    chain_id: int
    ledger: bytes
    node: bytes
    model_id: bytes
    adapter_id: bytes
    dataset_ids: tuple[bytes, ...]
    weights_bps: tuple[int, ...]
    prompt_tokens: int
    completion_tokens: int
    timestamp: int
    io_hash: bytes

    def __post_init__(self) -> None:
        _validate_into(self)

    def with_seq(self, seq: int) -> Record:
        """The full record once the store assigned `seq`. Every other field was checked when this pending record was
        built (it is frozen), so only `seq` is: this runs once per answer on the node's hot path."""
        r = object.__new__(Record)
        s = object.__setattr__
        s(r, "seq", _as_uint(seq, _U64, "seq"))
        for name in _PENDING_FIELDS:
            s(r, name, getattr(self, name))
        return r

    @property
    def profile(self) -> Profile:
        """The (model, adapter, datasets, weights) part shared with other records."""
        return Profile(self.model_id, self.adapter_id, self.dataset_ids, self.weights_bps)


@dataclass(frozen=True, slots=True)
class Record:
    """Attribution record v1 (DESIGN.md): one per finished request, immutable once stored.

    Field order is the leaf's: `chain_id` (uint256, < 2**64 so it fits the payload header), `ledger` and `node`
    (20-byte addresses), `seq` (uint64, per node, gap-free from 0), `model_id` and `adapter_id` (bytes32; adapter
    0x0 = bare base model), `dataset_ids` and `weights_bps` (equal length, weights sum to 10000 or both empty),
    `prompt_tokens` and `completion_tokens` (uint32), `timestamp` (uint64 unix seconds), `io_hash` (bytes32).
    Hex strings are accepted for byte fields and lists for the arrays; they are normalised to bytes and tuples.
    """

    chain_id: int
    ledger: bytes
    node: bytes
    seq: int
    model_id: bytes
    adapter_id: bytes
    dataset_ids: tuple[bytes, ...]
    weights_bps: tuple[int, ...]
    prompt_tokens: int
    completion_tokens: int
    timestamp: int
    io_hash: bytes

    def __post_init__(self) -> None:
        _validate_into(self)
        object.__setattr__(self, "seq", _as_uint(self.seq, _U64, "seq"))

    @property
    def profile(self) -> Profile:
        """The (model, adapter, datasets, weights) part shared with other records."""
        return Profile(self.model_id, self.adapter_id, self.dataset_ids, self.weights_bps)

    def abi_values(self) -> tuple[Any, ...]:
        """The 12 values in `RECORD_TYPES` order as web3/eth_abi take them.

        Integers as `int`, addresses as EIP-55 checksum strings, bytes32 as 32-byte `bytes`, arrays as lists.
        This is what the chain wrappers `verify_record`/`record_leaf` pass to the contract.
        """
        return (
            self.chain_id, to_checksum_address(self.ledger), to_checksum_address(self.node), self.seq,
            self.model_id, self.adapter_id, list(self.dataset_ids), list(self.weights_bps),
            self.prompt_tokens, self.completion_tokens, self.timestamp, self.io_hash,
        )

    def oz_values(self) -> list[Any]:
        """The 12 values as JSON-friendly OZ `StandardMerkleTree` values (uints as decimal strings, 0x-hex)."""
        return [
            str(self.chain_id), to_checksum_address(self.ledger), to_checksum_address(self.node), str(self.seq),
            "0x" + self.model_id.hex(), "0x" + self.adapter_id.hex(),
            ["0x" + d.hex() for d in self.dataset_ids], [str(w) for w in self.weights_bps],
            str(self.prompt_tokens), str(self.completion_tokens), str(self.timestamp), "0x" + self.io_hash.hex(),
        ]

    def abi_encode(self) -> bytes:
        """`abi.encode` of the 12 values (as top-level arguments), without a general ABI encoder."""
        p = self.profile
        return (self.chain_id.to_bytes(32, "big") + ZERO32[:12] + self.ledger + ZERO32[:12] + self.node
                + self.seq.to_bytes(32, "big") + p.abi_middle()
                + self.prompt_tokens.to_bytes(32, "big") + self.completion_tokens.to_bytes(32, "big")
                + self.timestamp.to_bytes(32, "big") + self.io_hash + p.abi_tail())

    def leaf(self) -> bytes:
        """The StandardMerkleTree leaf: `keccak256(keccak256(abi.encode(values)))`."""
        return keccak256(keccak256(self.abi_encode()))

    def to_json(self) -> dict[str, Any]:
        """JSON object with the DESIGN.md field names; byte fields as 0x-hex, addresses checksummed."""
        return {
            "chainId": self.chain_id, "ledger": to_checksum_address(self.ledger),
            "node": to_checksum_address(self.node), "seq": self.seq,
            "modelId": "0x" + self.model_id.hex(), "adapterId": "0x" + self.adapter_id.hex(),
            "datasetIds": ["0x" + d.hex() for d in self.dataset_ids], "weightsBps": list(self.weights_bps),
            "promptTokens": self.prompt_tokens, "completionTokens": self.completion_tokens,
            "timestamp": self.timestamp, "ioHash": "0x" + self.io_hash.hex(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Record:
        """Inverse of `to_json`; raises `RecordValidationError` on a missing or bad field."""
        try:
            return cls(
                chain_id=obj["chainId"], ledger=obj["ledger"], node=obj["node"], seq=obj["seq"],
                model_id=obj["modelId"], adapter_id=obj["adapterId"], dataset_ids=tuple(obj["datasetIds"]),
                weights_bps=tuple(obj["weightsBps"]), prompt_tokens=obj["promptTokens"],
                completion_tokens=obj["completionTokens"], timestamp=obj["timestamp"], io_hash=obj["ioHash"],
            )
        except KeyError as e:
            raise RecordValidationError(f"record JSON lacks field {e.args[0]!r}") from e

    @classmethod
    def from_abi_values(cls, values: Sequence[Any]) -> Record:
        """Build a record from 12 values in `RECORD_TYPES` order (ints or decimal strings, bytes or 0x-hex)."""
        if len(values) != 12:
            raise RecordValidationError(f"a record has 12 values, got {len(values)}")
        ints = [int(values[i]) for i in (0, 3, 8, 9, 10)]
        return cls(
            chain_id=ints[0], ledger=values[1], node=values[2], seq=ints[1], model_id=values[4],
            adapter_id=values[5], dataset_ids=tuple(values[6]), weights_bps=tuple(int(w) for w in values[7]),
            prompt_tokens=ints[2], completion_tokens=ints[3], timestamp=ints[4], io_hash=values[11],
        )


@functools.lru_cache(maxsize=4096)
def _checked_profile_cached(model_id: Any, adapter_id: Any, dataset_ids: tuple[Any, ...],
                            weights_bps: tuple[Any, ...]) -> Profile:
    return Profile(model_id, adapter_id, dataset_ids, weights_bps)


def _checked_profile(model_id: Any, adapter_id: Any, dataset_ids: tuple[Any, ...],
                     weights_bps: tuple[Any, ...]) -> Profile:
    """Validated profile; records share a few profiles, so the check is cached (errors are not)."""
    try:
        return _checked_profile_cached(model_id, adapter_id, dataset_ids, weights_bps)
    except TypeError:  # unhashable input (e.g. a bytearray): validate without the cache
        return Profile(model_id, adapter_id, dataset_ids, weights_bps)


_PENDING_FIELDS = tuple(f.name for f in dataclasses.fields(PendingRecord))


def _validate_into(r: Record | PendingRecord) -> None:
    """Normalise and check every field except seq (shared by Record and PendingRecord)."""
    s = object.__setattr__
    s(r, "chain_id", _as_uint(r.chain_id, _U64, "chainId"))
    s(r, "ledger", _as_bytes(r.ledger, 20, "ledger"))
    s(r, "node", _as_bytes(r.node, 20, "node"))
    profile = _checked_profile(r.model_id, r.adapter_id, tuple(r.dataset_ids), tuple(r.weights_bps))
    s(r, "model_id", profile.model_id)
    s(r, "adapter_id", profile.adapter_id)
    s(r, "dataset_ids", profile.dataset_ids)
    s(r, "weights_bps", profile.weights_bps)
    s(r, "prompt_tokens", _as_uint(r.prompt_tokens, _U32, "promptTokens"))
    s(r, "completion_tokens", _as_uint(r.completion_tokens, _U32, "completionTokens"))
    s(r, "timestamp", _as_uint(r.timestamp, _U64, "timestamp"))
    s(r, "io_hash", _as_bytes(r.io_hash, 32, "ioHash"))


# --------------------------------------------------------------------------------------------------------------
# Bulk leaves: the fast path for trees over many records
# --------------------------------------------------------------------------------------------------------------

def _be_words(values: np.ndarray, nbytes: int) -> np.ndarray:
    """[m] unsigned ints -> [m, nbytes] big-endian bytes."""
    dtype = {4: ">u4", 8: ">u8"}[nbytes]
    return values.astype(dtype).view(np.uint8).reshape(-1, nbytes)


def _uint_column(values: Any, dtype: type[np.unsignedinteger[Any]], field: str) -> np.ndarray:
    """A C-contiguous native-endian column of `dtype`; refuses negative or too large values instead of wrapping."""
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "ui"):
        raise RecordValidationError(f"{field} must be a 1-D array of unsigned integers, got {arr.dtype}{arr.shape}")
    if arr.size and arr.dtype.kind == "i" and int(arr.min()) < 0:
        raise RecordValidationError(f"{field} holds a negative value ({int(arr.min())})")
    if arr.size and int(arr.max()) > int(np.iinfo(dtype).max):
        raise RecordValidationError(f"{field} holds {int(arr.max())}, above the {np.dtype(dtype).name} maximum")
    return np.ascontiguousarray(arr, dtype=dtype)


@dataclass(frozen=True, eq=False)
class RecordColumns(Sequence[Record]):
    """Many records of one (chainId, ledger, node) as columns: the hot-path form of a batch.

    `profiles` are the distinct (model, adapter, datasets, weights) contexts and `profile_idx[i]` picks record i's.
    Columns are numpy arrays of length m (`io_hashes` is [m, 32] uint8); they are converted to native-endian
    contiguous arrays of the documented dtypes and range-checked. Indexing builds a `Record` on demand, so a
    `RecordColumns` can stand in for a list of records (e.g. as the values of `record_tree`) without a million
    Python objects. `leaf_bytes()` hashes every leaf in one C call.
    """

    chain_id: int
    ledger: bytes
    node: bytes
    profiles: tuple[Profile, ...]
    seqs: np.ndarray  # [m] uint64
    profile_idx: np.ndarray  # [m] int64, index into profiles
    prompt_tokens: np.ndarray  # [m] uint32
    completion_tokens: np.ndarray  # [m] uint32
    timestamps: np.ndarray  # [m] uint64
    io_hashes: np.ndarray  # [m, 32] uint8

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "chain_id", _as_uint(self.chain_id, _U64, "chainId"))
        s(self, "ledger", _as_bytes(self.ledger, 20, "ledger"))
        s(self, "node", _as_bytes(self.node, 20, "node"))
        profiles = tuple(self.profiles)
        if not all(isinstance(p, Profile) for p in profiles):
            raise RecordValidationError("profiles must be Profile objects")
        s(self, "profiles", profiles)
        s(self, "seqs", _uint_column(self.seqs, np.uint64, "seqs"))
        m = len(self.seqs)
        s(self, "prompt_tokens", _uint_column(self.prompt_tokens, np.uint32, "promptTokens"))
        s(self, "completion_tokens", _uint_column(self.completion_tokens, np.uint32, "completionTokens"))
        s(self, "timestamps", _uint_column(self.timestamps, np.uint64, "timestamps"))
        pidx = _uint_column(self.profile_idx, np.uint64, "profile_idx")
        if pidx.size and int(pidx.max()) >= len(profiles):
            raise RecordValidationError(
                f"profile_idx holds {int(pidx.max())} but there are {len(profiles)} profiles")
        s(self, "profile_idx", pidx.astype(np.int64))
        io = np.ascontiguousarray(self.io_hashes, dtype=np.uint8)
        if io.size == 0 and m == 0:
            io = io.reshape(0, 32)
        if io.shape != (m, 32):
            raise RecordValidationError(f"io_hashes must be [{m}, 32] bytes, got shape {io.shape}")
        s(self, "io_hashes", io)
        lengths = {len(self.prompt_tokens), len(self.completion_tokens), len(self.timestamps), len(pidx), m}
        if len(lengths) != 1:
            raise RecordValidationError(f"record columns differ in length: {sorted(lengths)}")

    @classmethod
    def from_records(cls, records: Iterable[Record]) -> RecordColumns:
        """Columns of records that share chainId, ledger and node (profiles in order of first use)."""
        recs = list(records)
        if not recs:
            raise RecordValidationError("no records to put in columns")
        domain = operator.attrgetter("chain_id", "ledger", "node")
        domains = set(map(domain, recs))
        if len(domains) > 1:
            raise RecordValidationError(
                f"records span {len(domains)} (chainId, ledger, node) domains; columns hold one")
        chain_id, ledger, node = next(iter(domains))
        keyf = operator.attrgetter("model_id", "adapter_id", "dataset_ids", "weights_bps")
        keys = list(map(keyf, recs))
        table = {k: i for i, k in enumerate(dict.fromkeys(keys))}  # profiles in order of first use
        m = len(recs)
        return cls(
            chain_id, ledger, node, tuple(Profile(*k) for k in table),
            seqs=np.fromiter(map(operator.attrgetter("seq"), recs), np.uint64, m),
            profile_idx=np.fromiter(map(table.__getitem__, keys), np.int64, m),
            prompt_tokens=np.fromiter(map(operator.attrgetter("prompt_tokens"), recs), np.uint32, m),
            completion_tokens=np.fromiter(map(operator.attrgetter("completion_tokens"), recs), np.uint32, m),
            timestamps=np.fromiter(map(operator.attrgetter("timestamp"), recs), np.uint64, m),
            io_hashes=np.frombuffer(b"".join(map(operator.attrgetter("io_hash"), recs)), np.uint8).reshape(-1, 32),
        )

    def __len__(self) -> int:
        return len(self.seqs)

    @overload
    def __getitem__(self, i: int) -> Record: ...

    @overload
    def __getitem__(self, i: slice) -> list[Record]: ...

    def __getitem__(self, i: int | slice) -> Record | list[Record]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        m = len(self)
        if not -m <= i < m:
            raise IndexError(f"record index {i} out of range for {m} records")
        i %= m
        p = self.profiles[int(self.profile_idx[i])]
        return Record(
            chain_id=self.chain_id, ledger=self.ledger, node=self.node, seq=int(self.seqs[i]),
            model_id=p.model_id, adapter_id=p.adapter_id, dataset_ids=p.dataset_ids, weights_bps=p.weights_bps,
            prompt_tokens=int(self.prompt_tokens[i]), completion_tokens=int(self.completion_tokens[i]),
            timestamp=int(self.timestamps[i]), io_hash=self.io_hashes[i].tobytes(),
        )

    def __iter__(self) -> Iterator[Record]:
        return map(self.__getitem__, range(len(self)))

    def leaf_bytes(self) -> bytes:
        """Every record's StandardMerkleTree leaf, in record order, joined (32 bytes each)."""
        if len(self) == 0:
            return b""
        native = native_kernels()
        if native is not None:
            head = self.chain_id.to_bytes(32, "big") + ZERO32[:12] + self.ledger + ZERO32[:12] + self.node
            blobs = [p.abi_middle() + p.abi_tail() for p in self.profiles]
            offsets = np.zeros(len(blobs) + 1, np.int64)
            np.cumsum([len(b) for b in blobs], out=offsets[1:])
            leaves: bytes = native.record_leaves(
                head, b"".join(blobs), offsets, self.profile_idx, self.seqs, self.prompt_tokens,
                self.completion_tokens, self.timestamps, self.io_hashes)
            return leaves
        return b"".join(self._leaves_numpy())

    def leaves(self) -> list[bytes]:
        """Every record's leaf, in record order (same as `[r.leaf() for r in self]`)."""
        if native_kernels() is None:
            return self._leaves_numpy()
        buf = self.leaf_bytes()
        return list(map(buf.__getitem__, map(slice, range(0, len(buf), 32), range(32, len(buf) + 32, 32))))

    def _leaves_numpy(self) -> list[bytes]:
        """Fallback without the C extension: each profile's preimages laid out in one [k, L] byte matrix (constant
        parts broadcast) and hashed with safe-pysha3's C keccak via `map` (no per-record Python frame)."""
        m = len(self)
        leaves: list[bytes] = [b""] * m
        if m == 0:
            return leaves
        prefix = np.frombuffer(
            self.chain_id.to_bytes(32, "big") + ZERO32[:12] + self.ledger + ZERO32[:12] + self.node, np.uint8)
        order = np.argsort(self.profile_idx, kind="stable")
        sorted_idx = self.profile_idx[order]
        bounds = np.flatnonzero(np.diff(sorted_idx)) + 1
        starts = np.concatenate(([0], bounds))
        ends = np.concatenate((bounds, [m]))
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            rows = order[start:end]
            p = self.profiles[int(sorted_idx[start])]
            mid = np.frombuffer(p.abi_middle(), np.uint8)
            tail = np.frombuffer(p.abi_tail(), np.uint8)
            width = _HEAD_BYTES + len(tail)
            k = len(rows)
            buf = np.zeros((k, width), np.uint8)
            buf[:, 0:96] = prefix
            buf[:, 120:128] = _be_words(self.seqs[rows], 8)
            buf[:, 128:256] = mid
            buf[:, 284:288] = _be_words(self.prompt_tokens[rows], 4)
            buf[:, 316:320] = _be_words(self.completion_tokens[rows], 4)
            buf[:, 344:352] = _be_words(self.timestamps[rows], 8)
            buf[:, 352:384] = self.io_hashes[rows]
            buf[:, 384:] = tail
            raw = buf.reshape(-1).data  # keccak reads slices of the matrix in place, no per-record copy
            chunks = map(raw.__getitem__,
                         map(slice, range(0, k * width, width), range(width, k * width + width, width)))
            inner = map(_digest, map(_keccak, chunks))
            group = list(map(_digest, map(_keccak, inner)))
            if k == m:  # one profile: the stable argsort is the identity, so `group` is already in record order
                return group
            for pos, leaf in zip(rows.tolist(), group, strict=True):
                leaves[pos] = leaf
        return leaves


def record_leaves_from_columns(
    chain_id: int,
    ledger: bytes,
    node: bytes,
    profiles: Sequence[Profile],
    seqs: np.ndarray,
    profile_idx: np.ndarray,
    prompt_tokens: np.ndarray,
    completion_tokens: np.ndarray,
    timestamps: np.ndarray,
    io_hashes: np.ndarray,
) -> list[bytes]:
    """Leaves of many records given as columns (numpy arrays of length m; `io_hashes` is [m, 32] uint8), in record
    order. Same as `RecordColumns(...).leaves()`; use `RecordColumns.leaf_bytes()` to skip the list."""
    cols = RecordColumns(chain_id, ledger, node, tuple(profiles), seqs, profile_idx, prompt_tokens,
                         completion_tokens, timestamps, io_hashes)
    return cols.leaves()


def record_leaves(records: Iterable[Record]) -> list[bytes]:
    """Leaves of many records at once (same result as `[r.leaf() for r in records]`, many times faster).

    Records may mix chains, ledgers and nodes; each (chainId, ledger, node) group goes through the column path.
    """
    recs = list(records)
    if not recs:
        return []
    domain = operator.attrgetter("chain_id", "ledger", "node")
    domains = set(map(domain, recs))
    if len(domains) > 1:
        out: list[bytes] = [b""] * len(recs)
        for d in domains:
            pos = [i for i, r in enumerate(recs) if domain(r) == d]
            for i, leaf in zip(pos, record_leaves([recs[i] for i in pos]), strict=True):
                out[i] = leaf
        return out
    return RecordColumns.from_records(recs).leaves()
