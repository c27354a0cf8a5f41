"""The C kernels (`attribution._keccak`) against safe-pysha3, the Python tree code and the numpy fallback path.

Every kernel is run with each lane count this CPU supports (1 always; 4 with AVX2; 8 with AVX-512), and the whole
tree API is run once more with the extension switched off: both paths must give the same bytes.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import sha3
from hypothesis import given, settings
from hypothesis import strategies as st

import attribution.hashing as records_mod
from attribution.merkle import (
    AllProofs,
    InvalidMerkleTreeError,
    MerkleNodes,
    MerkleTreeError,
    StandardMerkleTree,
    make_merkle_tree,
)
from attribution.merkle.nodes import sort_order
from attribution.records import RECORD_TYPES, Profile, Record, RecordColumns, RecordValidationError, record_leaves
from attribution.records.payload import decode_batch, encode_batch
from attribution.records.tree import record_tree
from tests.unit.attribution.factories import CHAIN_ID, LEDGER, NODE, random_records, split_bps

K = pytest.importorskip("attribution._keccak", reason="the C extension was not built (pip install -e .)")


def _supported_lanes() -> list[int]:
    out = []
    previous = K.lanes()
    for lanes in (1, 4, 8):
        try:
            K.set_lanes(lanes)
            out.append(lanes)
        except ValueError:
            pass
    K.set_lanes(previous)
    return out


LANES = _supported_lanes()


@pytest.fixture(params=LANES, ids=[f"lanes{n}" for n in LANES])
def lanes(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = K.set_lanes(request.param)
    try:
        yield request.param
    finally:
        K.set_lanes(previous)


@pytest.fixture
def no_native(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the pure numpy + safe-pysha3 path, as on a machine where the extension did not build."""
    monkeypatch.setattr(records_mod, "_native", None)


def _keccak(data: bytes) -> bytes:
    return sha3.keccak_256(data).digest()


# --------------------------------------------------------------------------------------------------------------
# hashes
# --------------------------------------------------------------------------------------------------------------

def test_keccak256_matches_safe_pysha3_at_every_block_boundary(lanes: int) -> None:
    rng = random.Random(lanes)
    sizes = [*range(0, 300), 407, 408, 409, 543, 544, 545, 4096, 16_768]
    for size in sizes:
        data = rng.randbytes(size)
        assert K.keccak256(data) == _keccak(data), size
        if size:
            rows = rng.randbytes(size * 11)  # 11 rows: whole lane groups plus a ragged end
            want = b"".join(_keccak(rows[i * size:(i + 1) * size]) for i in range(11))
            assert K.hash_rows(rows, size) == want, size
    assert K.keccak256(b"") == bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    assert K.keccak256(np.frombuffer(b"abc", np.uint8)) == _keccak(b"abc")  # numpy buffers work too


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="whole number"):
        K.hash_rows(b"x" * 10, 3)
    with pytest.raises(ValueError, match="positive"):
        K.hash_rows(b"", 0)
    with pytest.raises(TypeError, match="bytes-like"):
        K.keccak256("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n \\* 32"):
        K.build_tree(b"x" * 33)
    with pytest.raises(ValueError, match="n \\* 32"):
        K.build_tree(b"")
    tree, idx = K.build_tree(bytes(96))
    with pytest.raises(ValueError, match="outside the tree"):
        K.all_proofs(tree, np.array([0, 99], np.int64))
    with pytest.raises(ValueError, match="1 always works"):
        K.set_lanes(3)


# --------------------------------------------------------------------------------------------------------------
# record leaves
# --------------------------------------------------------------------------------------------------------------

def _wide_profiles(rng: random.Random) -> list[Profile]:
    """Profiles with 0, 1, 3 and 255 datasets: preimages of 4, 4, 6 and 123 Keccak blocks."""
    out = [Profile(rng.randbytes(32), b"\x00" * 32)]
    for n in (1, 3, 255):
        out.append(Profile(rng.randbytes(32), rng.randbytes(32), tuple(rng.randbytes(32) for _ in range(n)),
                           split_bps(rng, n)))
    return out


def _records_over(profiles: list[Profile], n: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    return [Record(CHAIN_ID, LEDGER, NODE, 1000 + i, p.model_id, p.adapter_id, p.dataset_ids, p.weights_bps,
                   rng.randint(0, 2**32 - 1), rng.randint(0, 2**32 - 1), rng.randint(0, 2**64 - 1), rng.randbytes(32))
            for i, p in ((i, profiles[rng.randrange(len(profiles))]) for i in range(n))]


def test_record_leaves_match_record_leaf(lanes: int) -> None:
    rng = random.Random(11)
    for n in (1, 7, 8, 9, 61):
        recs = _records_over(_wide_profiles(rng), n, seed=n)
        cols = RecordColumns.from_records(recs)
        assert cols.leaf_bytes() == b"".join(r.leaf() for r in recs)
        assert cols.leaves() == [r.leaf() for r in recs]


def test_record_leaves_fallback_is_the_same(no_native: None) -> None:
    rng = random.Random(12)
    recs = _records_over(_wide_profiles(rng), 40, seed=1)
    assert records_mod.native_kernels() is None
    assert RecordColumns.from_records(recs).leaf_bytes() == b"".join(r.leaf() for r in recs)
    assert record_leaves(recs) == [r.leaf() for r in recs]


def test_record_leaves_kernel_checks_its_inputs() -> None:
    cols = RecordColumns.from_records(random_records(3, seed=1))
    p = cols.profiles[0]
    blob = p.abi_middle() + p.abi_tail()
    good = [bytes(96), blob, np.array([0, len(blob)], np.int64), np.zeros(3, np.int64), cols.seqs,
            cols.prompt_tokens, cols.completion_tokens, cols.timestamps, cols.io_hashes]
    assert len(K.record_leaves(*good)) == 96
    for i, bad, msg in [
        (0, bytes(95), "head must be 96"),
        (3, np.array([0, 1, 0], np.int64), "out of range"),
        (4, cols.seqs[:2], "differ in length"),
        (2, np.array([0, len(blob) - 1], np.int64), "profile_offsets"),
        (1, blob[:100], "profile_offsets"),
    ]:
        args = list(good)
        args[i] = bad
        with pytest.raises(ValueError, match=msg):
            K.record_leaves(*args)


def test_record_columns_validate_and_index() -> None:
    recs = random_records(20, seed=5)
    cols = RecordColumns.from_records(recs)
    assert len(cols) == 20 and list(cols) == recs and cols[-1] == recs[-1] and cols[2:4] == recs[2:4]
    with pytest.raises(IndexError):
        cols[20]
    fields = {"chain_id": CHAIN_ID, "ledger": LEDGER, "node": NODE, "profiles": cols.profiles, "seqs": cols.seqs,
              "profile_idx": cols.profile_idx, "prompt_tokens": cols.prompt_tokens,
              "completion_tokens": cols.completion_tokens, "timestamps": cols.timestamps,
              "io_hashes": cols.io_hashes}
    for name, value, msg in [
        ("seqs", np.arange(-1, 19), "negative"),
        ("prompt_tokens", np.full(20, 2**32, np.int64), "above the uint32 maximum"),
        ("timestamps", np.zeros(19, np.uint64), "differ in length"),
        ("profile_idx", np.full(20, len(cols.profiles)), "profiles"),
        ("io_hashes", np.zeros((20, 31), np.uint8), "io_hashes"),
        ("seqs", np.zeros(20, np.float64), "unsigned integers"),
        ("ledger", b"\x01" * 19, "ledger"),
    ]:
        with pytest.raises(RecordValidationError, match=msg):
            RecordColumns(**{**fields, name: value})
    mixed = [*random_records(2, seed=1), *random_records(2, seed=2, chain_id=10)]
    with pytest.raises(RecordValidationError, match="domains"):
        RecordColumns.from_records(mixed)
    assert record_leaves(mixed) == [r.leaf() for r in mixed]  # mixed domains still work record by record
    assert record_tree(mixed).root == StandardMerkleTree.of([r.oz_values() for r in mixed], RECORD_TYPES).root


# --------------------------------------------------------------------------------------------------------------
# trees and proofs: C path == Python/numpy path
# --------------------------------------------------------------------------------------------------------------

def _tree_bytes(t: StandardMerkleTree) -> tuple[bytes, list[int], bytes, list[int]]:
    proofs = t.all_proofs()
    return (b"".join(t._tree), list(t._tree_indices), proofs.nodes, proofs.offsets.tolist())


def _both_paths(monkeypatch: pytest.MonkeyPatch, build: object) -> tuple[object, object]:
    assert callable(build)
    native = build()
    with monkeypatch.context() as m:
        m.setattr(records_mod, "_native", None)
        fallback = build()
    return native, fallback


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 9, 16, 17, 33, 100, 1025])
def test_record_tree_c_path_equals_fallback(n: int, lanes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = random_records(n, seed=n)
    native, fallback = _both_paths(monkeypatch, lambda: record_tree(recs))
    assert isinstance(native, StandardMerkleTree) and isinstance(fallback, StandardMerkleTree)
    assert native.root == fallback.root
    assert _tree_bytes(native) == _tree_bytes(fallback)
    assert native.dump() == fallback.dump()
    proofs = native.all_proofs()
    for i in range(0, n, max(1, n // 20)):
        assert list(proofs[i]) == native.get_proof_bytes(i) == proofs.proof(i)
        assert proofs.hex(i) == native.get_proof(i)
        assert native.verify(i, proofs.proof(i))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=80), st.booleans())
def test_generic_tree_c_path_equals_fallback(leaves: list[bytes], dup: bool) -> None:
    if dup:
        leaves = leaves + leaves[: len(leaves) // 2]  # equal leaves: the sort must stay stable
    with pytest.MonkeyPatch.context() as m:
        native = StandardMerkleTree._prepare(leaves, True)
        native_plain = make_merkle_tree(leaves)
        m.setattr(records_mod, "_native", None)
        fallback = StandardMerkleTree._prepare(leaves, True)
        fallback_plain = make_merkle_tree(leaves)
    assert native[0].buffer == fallback[0].buffer
    assert list(native[1]) == list(fallback[1])
    assert native_plain == fallback_plain


def test_sort_handles_shared_prefixes_and_duplicates() -> None:
    rng = random.Random(3)
    leaves = [b"\x00\x00" + rng.randbytes(30) for _ in range(2000)]  # one bucket of 2000: the qsort branch
    leaves += [rng.randbytes(32) for _ in range(3000)]
    leaves += leaves[:50] + leaves[2500:2550]
    rng.shuffle(leaves)
    want = sorted(range(len(leaves)), key=leaves.__getitem__)  # Python's sort is stable
    assert sort_order(leaves) == want
    assert np.frombuffer(K.sort_order(b"".join(leaves)), np.int64).tolist() == want


def test_columns_tree_equals_records_tree_and_payload_tree() -> None:
    recs = random_records(300, seed=9, first_seq=40)
    cols = RecordColumns.from_records(recs)
    by_cols = record_tree(cols)
    by_records = record_tree(recs)
    assert by_cols.root == by_records.root
    assert by_cols.dump() == by_records.dump()
    assert by_cols.get_proof(recs[17]) == by_records.get_proof(17)  # lookup by value on a columns tree
    decoded = decode_batch(encode_batch(CHAIN_ID, LEDGER, NODE, 40, recs))
    assert record_tree(decoded.records, decoded.leaves()).root == by_cols.root
    assert record_tree(cols, cols.leaf_bytes()).root == by_cols.root
    with pytest.raises(MerkleTreeError, match="different number"):
        record_tree(cols, cols.leaf_bytes()[:-32])


@pytest.mark.parametrize("native", [True, False], ids=["c", "fallback"])
def test_validate_names_the_first_bad_node(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not native:
        monkeypatch.setattr(records_mod, "_native", None)
    t = StandardMerkleTree.of([[str(i)] for i in range(37)], ["uint256"])
    t.validate()
    dump = t.dump()
    # a changed node no longer hashes to its parent (checked first) nor from its children; a changed leaf
    # (tree indices 36..72) fails its value check before the nodes are looked at
    for node, message in ((0, "at node 0"), (5, "at node 2"), (35, "at node 17"), (60, "expected value")):
        bad = {**dump, "tree": list(dump["tree"])}
        bad["tree"][node] = "0x" + "11" * 32
        with pytest.raises(InvalidMerkleTreeError, match=message):
            StandardMerkleTree.load(bad)
    short = {**dump, "tree": [*dump["tree"][:-1], "0x1234"]}
    with pytest.raises(InvalidMerkleTreeError):
        StandardMerkleTree.load(short)


def test_all_proofs_and_nodes_containers() -> None:
    t = record_tree(random_records(13, seed=2))
    proofs = t.all_proofs()
    assert isinstance(proofs, AllProofs) and len(proofs) == 13
    assert list(proofs) == [tuple(t.get_proof_bytes(i)) for i in range(13)]
    assert proofs[-1] == proofs[12] and proofs[1:3] == [proofs[1], proofs[2]]
    assert len(proofs.nodes) == 32 * int(proofs.offsets[-1])
    with pytest.raises(IndexError):
        proofs.proof(13)
    nodes = t._tree
    assert isinstance(nodes, MerkleNodes) and len(nodes) == 25
    assert nodes[-1] == nodes[24] and list(nodes)[3] == nodes[3] and nodes[:2] == [nodes[0], nodes[1]]
    with pytest.raises(IndexError):
        nodes[25]
    with pytest.raises(MerkleTreeError):
        MerkleNodes(b"x" * 33)
    single = record_tree(random_records(1, seed=3))
    assert single.all_proofs().proof(0) == [] and single.all_proofs().nodes == b""


# --------------------------------------------------------------------------------------------------------------
# the GIL is released while the kernels run
# --------------------------------------------------------------------------------------------------------------

def test_kernels_release_the_gil() -> None:
    """The main thread makes progress while a worker thread is inside a long C call.

    The switch interval is raised so that the worker never hands the GIL over on its own: if the kernel held
    the GIL, the main thread could not run between the worker's two reads of the counter (it would read 0).
    """
    data = bytes(13_600 * 2_000)  # 200,000 permutations on one lane
    started, done = threading.Event(), threading.Event()
    counter = [0]
    progress: list[int] = []

    def work() -> None:
        previous = K.set_lanes(1)
        try:
            started.set()
            before = counter[0]
            K.hash_rows(data, 13_600)
            progress.append(counter[0] - before)
        finally:
            K.set_lanes(previous)
            done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    try:
        thread = threading.Thread(target=work)
        thread.start()
        started.wait()
        while not done.is_set():
            counter[0] += 1
            time.sleep(0)  # hand the GIL back as soon as the worker wants it
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert progress and progress[0] > 0, "the main thread could not run while the kernel hashed"
