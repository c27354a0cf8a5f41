"""Attribution core benchmark: durable appends/s, Merkle tree build + all proofs, payload bytes per record.

Every figure is printed beside a naive baseline measured in the same run (machines are shared and noisy; compare
ratios). `loraledger bench attribution [--quick] [--json PATH]` or `python scripts/bench/bench_attribution.py ...`.

- appends/s: `RecordStore.append_async` from many concurrent tasks (group commit, fsync'd WAL transactions)
  vs one fsync'd transaction per record (plain sqlite3, same row).
- tree: from record columns (what the store and the payload decoder hold), leaves + StandardMerkleTree build +
  every record's proof in the C extension `attribution._keccak` vs eth_abi + eth_hash per leaf and a per-node
  Python loop (measured on a subset and extrapolated linearly, as the table says); also the same tree without the
  extension (numpy + safe-pysha3) and from a list of `Record` objects, and the floor set by the keccak calls alone.
- payload: LLB2 bytes per record at 10,000 records over 8 adapters vs JSON lines and per-record `abi.encode`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from attribution import hashing as records_module
from attribution.records import RECORD_TYPES, PendingRecord, Profile, Record, RecordColumns
from attribution.records.payload import decode_batch, encode_batch
from attribution.records.tree import record_tree
from attribution.store import RecordStore

CHAIN_ID = 31337
LEDGER = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
NODE = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")


def _profiles(rng: random.Random, n: int) -> list[Profile]:
    out = []
    for k in range(n):
        ds = tuple(rng.randbytes(32) for _ in range(k % 3))
        ws = {0: (), 1: (10_000,), 2: (6_000, 4_000)}[len(ds)]
        out.append(Profile(rng.randbytes(32), b"\x00" * 32 if k == 0 else rng.randbytes(32), ds, ws))
    return out


def make_records(n: int, n_profiles: int = 8, seed: int = 0) -> list[Record]:
    """n records of one node over `n_profiles` adapters (the first is the bare base model)."""
    rng = random.Random(seed)
    ps = _profiles(rng, n_profiles)
    t0 = 1_760_000_000
    return [
        Record(CHAIN_ID, LEDGER, NODE, i, p.model_id, p.adapter_id, p.dataset_ids, p.weights_bps,
               rng.randrange(4096), rng.randrange(4096), t0 + i // 100, rng.randbytes(32))
        for i, p in ((i, ps[rng.randrange(n_profiles)]) for i in range(n))
    ]


# --------------------------------------------------------------------------------------------------------------
# appends
# --------------------------------------------------------------------------------------------------------------

def bench_appends(n: int, concurrency: int, tmp: Path) -> dict[str, float]:
    """Group-commit appends from `concurrency` asyncio tasks; returns appends/s and commits."""
    pending = [PendingRecord(CHAIN_ID, LEDGER, NODE, r.model_id, r.adapter_id, r.dataset_ids, r.weights_bps,
                             r.prompt_tokens, r.completion_tokens, r.timestamp, r.io_hash)
               for r in make_records(min(n, 10_000), seed=1)]
    store = RecordStore(tmp / "group.db", NODE, max_bytes=1 << 40)
    per_task = n // concurrency

    async def task(k: int) -> None:
        for i in range(per_task):
            await store.append_async(pending[(k * per_task + i) % len(pending)])

    async def run() -> None:
        await asyncio.gather(*(task(k) for k in range(concurrency)))

    try:
        t, c = time.perf_counter(), time.process_time()
        asyncio.run(run())
        dt, dc = time.perf_counter() - t, time.process_time() - c
        assert store.next_seq() == per_task * concurrency
        return {"appends_per_s": per_task * concurrency / dt, "appends_per_cpu_s": per_task * concurrency / dc,
                "commits": store.commits, "records": per_task * concurrency}
    finally:
        store.close()


def bench_appends_naive(n: int, tmp: Path) -> float:
    """One fsync'd WAL transaction per record (same row layout as the store)."""
    r = make_records(1, seed=2)[0]
    conn = sqlite3.connect(tmp / "naive.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, chain_id INTEGER, ledger BLOB, model_id BLOB, "
                 "adapter_id BLOB, dataset_ids BLOB, weights_bps BLOB, prompt_tokens INTEGER, "
                 "completion_tokens INTEGER, timestamp INTEGER, io_hash BLOB)")
    row = (r.chain_id, r.ledger, r.model_id, r.adapter_id, b"".join(r.dataset_ids), b"\x27\x10",
           r.prompt_tokens, r.completion_tokens, r.timestamp, r.io_hash)
    t = time.perf_counter()
    for seq in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?)", (seq, *row))
        conn.execute("COMMIT")
    dt = time.perf_counter() - t
    conn.close()
    return n / dt


# --------------------------------------------------------------------------------------------------------------
# tree
# --------------------------------------------------------------------------------------------------------------

class _Lap:
    """Wall and process-CPU seconds since the last lap."""

    def __init__(self) -> None:
        self.t, self.c = time.perf_counter(), time.process_time()

    def __call__(self) -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        wall, cpu = t - self.t, c - self.c
        self.t, self.c = t, c
        return wall, cpu


def bench_tree(columns: RecordColumns) -> dict[str, Any]:
    """Leaves, tree build and all proofs from record columns (C extension if built); returns the phase times."""
    lap = _Lap()
    leaves = columns.leaf_bytes()
    leaves_s, leaves_cpu = lap()
    tree = record_tree(columns, leaves)
    build_s, build_cpu = lap()
    proofs = tree.all_proofs()
    proofs_s, proofs_cpu = lap()
    n = len(columns)
    assert len(proofs) == n
    assert tree.verify(columns[n // 2], proofs.proof(n // 2))
    return {"leaves_s": leaves_s, "build_s": build_s, "proofs_s": proofs_s, "total_s": leaves_s + build_s + proofs_s,
            "cpu_s": leaves_cpu + build_cpu + proofs_cpu, "leaves_cpu_s": leaves_cpu, "build_cpu_s": build_cpu,
            "proofs_cpu_s": proofs_cpu, "root": tree.root, "proof_bytes": len(proofs.nodes)}


def bench_tree_fallback(columns: RecordColumns) -> tuple[float, float, str]:
    """The same tree and proofs without the C extension (numpy + safe-pysha3): wall, CPU seconds and root."""
    saved = records_module._native
    records_module._native = None  # type: ignore[assignment]
    try:
        lap = _Lap()
        tree = record_tree(columns)
        tree.all_proofs()
        wall, cpu = lap()
        return wall, cpu, tree.root
    finally:
        records_module._native = saved


def bench_tree_from_records(records: list[Record]) -> tuple[float, float, str]:
    """`record_tree(list of Record)` + all proofs: the columns are first pulled out of the objects in Python."""
    lap = _Lap()
    tree = record_tree(records)
    tree.all_proofs()
    wall, cpu = lap()
    return wall, cpu, tree.root


def naive_tree_and_proofs(records: list[Record]) -> tuple[bytes, list[list[bytes]]]:
    """A straightforward StandardMerkleTree: eth_abi + eth_hash per leaf, a Python loop per node and proof."""
    from eth_abi import encode
    from eth_hash.auto import keccak

    leaves = [keccak(keccak(encode(RECORD_TYPES, r.abi_values()))) for r in records]
    order = sorted(range(len(leaves)), key=lambda i: leaves[i])
    n = len(leaves)
    tree: list[bytes] = [b""] * (2 * n - 1)
    for k, i in enumerate(order):
        tree[2 * n - 2 - k] = leaves[i]
    for i in range(n - 2, -1, -1):
        a, b = tree[2 * i + 1], tree[2 * i + 2]
        tree[i] = keccak(a + b if a <= b else b + a)
    position = {i: 2 * n - 2 - k for k, i in enumerate(order)}
    proofs = []
    for v in range(n):
        j, proof = position[v], []
        while j > 0:
            proof.append(tree[j + 1 if j % 2 else j - 1])
            j = (j - 1) // 2
        proofs.append(proof)
    return tree[0], proofs


def bench_tree_naive(records: list[Record]) -> tuple[float, float]:
    """Wall and CPU seconds of the naive tree + proofs."""
    t, c = time.perf_counter(), time.process_time()
    naive_tree_and_proofs(records)
    return time.perf_counter() - t, time.process_time() - c


def bench_keccak_floor(columns: RecordColumns) -> tuple[float, float | None]:
    """CPU seconds that the keccak calls alone need for these records' leaves and tree nodes (same message sizes,
    scaled from an even sample of up to 50,000 records): one safe-pysha3 call per hash via `map`, and the C
    extension's batch kernel (None if not built)."""
    import sha3

    n = len(columns)
    k = min(n, 50_000)
    sample = [columns[i] for i in range(0, n, max(1, n // k))][:k]
    preimages = [r.abi_encode() for r in sample]
    pair = [b"\x01" * 64] * len(sample)
    keccak, digest = sha3.keccak_256, sha3.keccak_256.digest
    c = time.process_time()
    list(map(digest, map(keccak, map(digest, map(keccak, preimages)))))
    list(map(digest, map(keccak, pair)))
    pysha3 = (time.process_time() - c) * n / len(sample)
    native = records_module.native_kernels()
    if native is None:
        return pysha3, None
    by_size: dict[int, list[bytes]] = {}
    for p in preimages:
        by_size.setdefault(len(p), []).append(p)
    joined = [(size, b"".join(ps)) for size, ps in by_size.items()]
    inner, pairs = bytes(32 * len(sample)), bytes(64 * len(sample))
    c = time.process_time()
    for size, buf in joined:
        native.hash_rows(buf, size)
    native.hash_rows(inner, 32)
    native.hash_rows(pairs, 64)
    return pysha3, (time.process_time() - c) * n / len(sample)


# --------------------------------------------------------------------------------------------------------------
# payload
# --------------------------------------------------------------------------------------------------------------

def bench_payload(n: int) -> dict[str, float]:
    records = make_records(n, n_profiles=8, seed=3)
    t = time.perf_counter()
    payload = encode_batch(CHAIN_ID, LEDGER, NODE, 0, records)
    t_enc = time.perf_counter() - t
    t = time.perf_counter()
    decoded = decode_batch(payload)
    root = record_tree(decoded.records, decoded.leaves()).root
    t_verify = time.perf_counter() - t
    assert root == record_tree(records).root
    json_lines = sum(len(json.dumps(r.to_json(), separators=(",", ":"))) + 1 for r in records)
    abi = sum(len(r.abi_encode()) for r in records)
    return {"payload_bytes_per_record": len(payload) / n, "json_bytes_per_record": json_lines / n,
            "abi_bytes_per_record": abi / n, "encode_s": t_enc, "decode_and_root_s": t_verify}


# --------------------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    """Run the benchmark; prints a table, writes JSON with --json PATH. Returns 0 on success."""
    parser = argparse.ArgumentParser(prog="loraledger bench attribution", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (100,000-record tree), < 2 minutes")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    parser.add_argument("--tree-records", type=int, default=None, help="records in the tree (default 1,000,000)")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    tree_n = args.tree_records or (100_000 if args.quick else 1_000_000)
    naive_tree_n = min(tree_n, 20_000 if args.quick else 50_000)
    appends_n = 100_000 if args.quick else 300_000
    naive_appends_n = 1_000 if args.quick else 3_000

    with tempfile.TemporaryDirectory(prefix="llbench-") as d:
        tmp = Path(d)
        console.log(f"appends: {appends_n} group-commit vs {naive_appends_n} commit-per-record")
        appends = bench_appends(appends_n, concurrency=1000, tmp=tmp)
        naive_appends = bench_appends_naive(naive_appends_n, tmp)

    console.log(f"tree: generating {tree_n} records")
    records = make_records(tree_n, seed=4)
    lap = _Lap()
    columns = RecordColumns.from_records(records)
    columns_s, columns_cpu = lap()
    native = records_module.native_kernels()
    lanes = native.lanes() if native is not None else 0
    console.log(f"tree: from columns ({f'C extension, {lanes} lanes' if native else 'no C extension'})")
    tree = bench_tree(columns)
    console.log("tree: same without the C extension (numpy + safe-pysha3)")
    fallback_s, fallback_cpu, fallback_root = bench_tree_fallback(columns)
    assert fallback_root == tree["root"], "the C path and the fallback disagree"
    console.log("tree: from a list of Record objects")
    records_s, records_cpu, records_root = bench_tree_from_records(records)
    assert records_root == tree["root"]
    console.log(f"tree: naive baseline on {naive_tree_n} records")
    naive_sub, naive_sub_cpu = bench_tree_naive(records[:naive_tree_n])
    naive_tree = naive_sub * tree_n / naive_tree_n
    naive_tree_cpu = naive_sub_cpu * tree_n / naive_tree_n
    keccak_floor, keccak_floor_c = bench_keccak_floor(columns)
    del records, columns
    console.log("payload: 10,000 records over 8 adapters")
    payload = bench_payload(10_000)

    extrap = "" if naive_tree_n == tree_n else f" (measured on {naive_tree_n:,}, extrapolated linearly)"
    table = Table(title=f"attribution core ({os.cpu_count()} CPUs)")
    table.add_column("measure")
    table.add_column("ours", justify="right")
    table.add_column("naive baseline", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("target", justify="right")
    table.add_row("durable appends/s (group commit vs commit per record)", f"{appends['appends_per_s']:,.0f}",
                  f"{naive_appends:,.0f}", f"{appends['appends_per_s'] / naive_appends:.1f}x", ">= 100,000")
    table.add_row(f"  appends per CPU-second ({appends['records']:,} appends, {appends['commits']} commits)",
                  f"{appends['appends_per_cpu_s']:,.0f}", "", "", "")
    table.add_row(f"tree build + all proofs, {tree_n:,} records, from columns (s){extrap}", f"{tree['total_s']:.2f}",
                  f"{naive_tree:.2f}", f"{naive_tree / tree['total_s']:.1f}x", "<= 3 s at 1M")
    table.add_row("  same, CPU seconds of this process (the machine is shared)", f"{tree['cpu_s']:.2f}",
                  f"{naive_tree_cpu:.2f}", f"{naive_tree_cpu / tree['cpu_s']:.1f}x", "<= 3 s at 1M")
    table.add_row(f"  of which leaves: ABI + 2 keccak per record ({lanes} lanes) (wall / CPU s)",
                  f"{tree['leaves_s']:.2f} / {tree['leaves_cpu_s']:.2f}", "", "", "")
    table.add_row("  of which sort + internal nodes (wall / CPU s)",
                  f"{tree['build_s']:.2f} / {tree['build_cpu_s']:.2f}", "", "", "")
    table.add_row(f"  of which all proofs, {tree['proof_bytes'] / 1e6:,.0f} MB (wall / CPU s)",
                  f"{tree['proofs_s']:.2f} / {tree['proofs_cpu_s']:.2f}", "", "", "")
    table.add_row("  without the C extension: numpy + safe-pysha3 (CPU s)", f"{tree['cpu_s']:.2f}",
                  f"{fallback_cpu:.2f}", f"{fallback_cpu / tree['cpu_s']:.1f}x", "")
    table.add_row("  from a list of Record objects, columns pulled out in Python (CPU s)", f"{records_cpu:.2f}",
                  "", "", "")
    table.add_row("    (of which Record objects -> columns, CPU s)", f"{columns_cpu:.2f}", "", "", "")
    floor_c = f"{keccak_floor_c:.2f}" if keccak_floor_c is not None else "n/a"
    table.add_row("  floor: the keccak calls alone, same sizes (CPU s): C batch kernel vs safe-pysha3 per call",
                  floor_c, f"{keccak_floor:.2f}", "", "")
    table.add_row("payload bytes/record, 10k records / 8 adapters (vs JSON lines)",
                  f"{payload['payload_bytes_per_record']:.2f}", f"{payload['json_bytes_per_record']:.0f}",
                  f"{payload['json_bytes_per_record'] / payload['payload_bytes_per_record']:.1f}x", "<= 64")
    table.add_row("  (per-record abi.encode, for reference)", "", f"{payload['abi_bytes_per_record']:.0f}", "", "")
    table.add_row("payload decode + rebuild root, 10k records (s)", f"{payload['decode_and_root_s']:.3f}", "", "", "")
    console.print(table)

    result: dict[str, Any] = {
        "appends_per_s": appends["appends_per_s"],
        "appends_per_s_naive": naive_appends,
        "appends_records": appends["records"],
        "appends_commits": appends["commits"],
        "appends_per_cpu_s": appends["appends_per_cpu_s"],
        "tree_build_s": tree["total_s"],
        "tree_build_s_naive": naive_tree,
        "tree_build_s_naive_measured_records": naive_tree_n,
        "tree_records": tree_n,
        "tree_leaves_s": tree["leaves_s"],
        "tree_nodes_s": tree["build_s"],
        "tree_proofs_s": tree["proofs_s"],
        "tree_cpu_s": tree["cpu_s"],
        "tree_build_cpu_s_naive": naive_tree_cpu,
        "tree_leaves_cpu_s": tree["leaves_cpu_s"],
        "tree_nodes_cpu_s": tree["build_cpu_s"],
        "tree_proofs_cpu_s": tree["proofs_cpu_s"],
        "tree_keccak_floor_s": keccak_floor,
        "tree_keccak_floor_c_s": keccak_floor_c,
        "tree_lanes": lanes,
        "tree_proof_bytes": tree["proof_bytes"],
        "tree_fallback_s": fallback_s,
        "tree_fallback_cpu_s": fallback_cpu,
        "tree_from_records_s": records_s,
        "tree_from_records_cpu_s": records_cpu,
        "tree_columns_from_records_s": columns_s,
        "tree_columns_from_records_cpu_s": columns_cpu,
        "payload_bytes_per_record": payload["payload_bytes_per_record"],
        "payload_json_bytes_per_record": payload["json_bytes_per_record"],
        "payload_abi_bytes_per_record": payload["abi_bytes_per_record"],
        "payload_decode_and_root_s": payload["decode_and_root_s"],
        "quick": args.quick,
        "cpus": os.cpu_count(),
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
