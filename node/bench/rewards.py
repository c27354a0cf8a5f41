"""Rewards benchmark (`loraledger bench rewards`, `scripts/bench/bench_rewards.py`).

One synthetic epoch: N records (default 1,000,000) in batches of 10,000 over 1,000 adapters, 2,000 datasets and
10,000 contributors, 8 nodes (one short of credit), a price change for a tenth of the adapters in mid-epoch.
Measures `compute_rewards`, the reward tree and a proof for every account, and as the baseline in the same run a
plain per-record Python loop of the same rule over a slice of the records (records/s of both, and their ratio).
Target: compute of 1,000,000 records <= 30 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np

from attribution.chain.batch import PostedBatch
from attribution.records import Profile
from attribution.records.payload import DecodedBatch
from attribution.rewards import (
    AdapterTerms,
    DatasetTerms,
    EpochBatch,
    ScheduledRegistry,
    SharesSchedule,
    checksum,
    compute_rewards,
)
from attribution.rewards.tree import RewardTree

MODEL = b"\x11" * 32


def _addr(tag: int, i: int) -> str:
    return checksum(bytes([tag]) + i.to_bytes(19, "big"))


def synthetic_epoch(records: int, *, adapters: int = 1000, datasets: int = 2000, contributors: int = 10_000,
                    nodes: int = 8, batch_size: int = 10_000, seed: int = 1
                    ) -> tuple[list[EpochBatch], ScheduledRegistry, dict[str, int], SharesSchedule]:
    """A random epoch of `records` records (see the module docstring)."""
    rng = np.random.default_rng(seed)
    reg = ScheduledRegistry()
    per_ds = contributors // datasets
    for d in range(datasets):
        cuts = np.sort(rng.choice(np.arange(1, 10_000), per_ds - 1, replace=False))
        shares = np.diff(np.r_[0, cuts, 10_000]).tolist()
        reg.set_dataset(d.to_bytes(32, "big"), 0, DatasetTerms(
            tuple(_addr(1, d * per_ds + j) for j in range(per_ds)), tuple(int(s) for s in shares)))
    profiles = [Profile(MODEL, bytes(32))]
    for a in range(adapters):
        # every dataset is some adapter's (2a, 2a+1 mod datasets), so every contributor earns; 0-2 more at random
        ds = list(dict.fromkeys([(2 * a) % datasets, (2 * a + 1) % datasets,
                                 *rng.choice(datasets, int(rng.integers(0, 3)), replace=False).tolist()]))
        k = len(ds)
        cuts = np.sort(rng.choice(np.arange(1, 10_000), k - 1, replace=False))
        w = tuple(int(x) for x in np.diff(np.r_[0, cuts, 10_000]))
        ids = tuple(int(x).to_bytes(32, "big") for x in ds)
        adapter_id = (10**6 + a).to_bytes(32, "big")
        owner = _addr(2, a % 300)
        reg.set_adapter(adapter_id, 0, AdapterTerms(owner, int(rng.integers(100_000, 20_000_000)), ids, w))
        if a % 10 == 0:
            reg.set_adapter(adapter_id, 500, AdapterTerms(owner, int(rng.integers(100_000, 20_000_000)), ids, w))
        profiles.append(Profile(MODEL, adapter_id, ids, w))
    node_names = [_addr(3, i) for i in range(nodes)]
    batches = []
    seq = dict.fromkeys(node_names, 0)
    for b in range(-(-records // batch_size)):
        n = min(batch_size, records - b * batch_size)
        node = node_names[b % nodes]
        pidx = rng.integers(0, len(profiles), n)
        posted_at = 1000 * b // max(1, records // batch_size)
        # records are priced at their own time (v3): here each batch's records were served at its postedAt
        dec = DecodedBatch(31337, b"\x01" * 20, bytes.fromhex(node[2:]), seq[node], n, tuple(profiles), pidx,
                           rng.integers(1, 2048, n).astype(np.uint32), rng.integers(1, 1024, n).astype(np.uint32),
                           np.full(n, posted_at, np.uint64), np.zeros((n, 32), np.uint8))
        batches.append(EpochBatch(PostedBatch(b + 1, node, bytes(32), seq[node], n, bytes(32), posted_at=posted_at),
                                  "ok", dec))
        seq[node] += n
    credits = dict.fromkeys(node_names, 10**18)
    credits[node_names[-1]] = 10**6  # short: its fees are scaled
    return batches, reg, credits, SharesSchedule.fixed(2000, 3000)


def reference_loop(batches: list[EpochBatch], reg: ScheduledRegistry, credits: dict[str, int],
                   shares: SharesSchedule, limit: int) -> int:
    """The rule record by record in plain Python over the first `limit` records (the baseline); returns records."""
    done = 0
    owed: dict[str, int] = defaultdict(int)
    rows = []
    for b in batches:
        dec = b.decoded
        assert dec is not None
        for i in range(dec.count):
            if done >= limit:
                break
            p = dec.profiles[int(dec.profile_idx[i])]
            t = int(dec.timestamps[i])  # the record's own time
            a = reg.adapter_at(p.adapter_id, t) if p.adapter_id != bytes(32) else None
            fee = (int(dec.prompt_tokens[i]) + int(dec.completion_tokens[i])) * (
                a.price_per_m_tokens if a is not None and a.active else 0) // 1_000_000
            owed[b.posted.node] += fee
            rows.append((b.posted.node, fee, a, t))
            done += 1
    out: dict[str, int] = defaultdict(int)
    debit = {n: min(o, credits.get(n, 0)) for n, o in owed.items()}
    for node, fee, a, t in rows:
        if debit[node] < owed[node]:
            fee = fee * debit[node] // owed[node]
        if not fee or a is None:
            continue
        nb, ab = shares.at(t)
        out[node] += fee * nb // 10_000
        out[a.owner] += fee * ab // 10_000
        rest = fee - fee * nb // 10_000 - fee * ab // 10_000
        for d_id, w in zip(a.dataset_ids, a.weights_bps, strict=True):
            d = reg.dataset_at(d_id, t)
            assert d is not None
            for c, s in zip(d.contributors, d.shares_bps, strict=True):
                out[c] += rest * w // 10_000 * s // 10_000
    return done


def run(records: int, baseline_records: int) -> dict[str, Any]:
    """Run the benchmark; returns the figures."""
    t0 = time.perf_counter()
    batches, reg, credits, shares = synthetic_epoch(records)
    gen_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    res = compute_rewards(batches, reg, credits, shares, _addr(0xEE, 0))
    compute_s, compute_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    assert sum(res.amounts.values()) == res.debits  # the rule's identity holds on the bench data too
    t0 = time.perf_counter()
    tree = RewardTree.build(31337, _addr(4, 1), _addr(4, 2), res.cumulative)
    tree_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    proofs = tree.tree.all_proofs()
    proof_bytes = sum(len(p) for p in proofs) * 32
    proofs_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    done = reference_loop(batches, reg, credits, shares, baseline_records)
    ref_s = time.perf_counter() - t0
    rate, ref_rate = records / compute_s, done / ref_s
    return {"rewards_compute_s": round(compute_s, 3), "rewards_compute_cpu_s": round(compute_cpu_s, 3),
            "rewards_records": records, "accounts": len(tree.accounts),
            "tree_s": round(tree_s, 3), "proofs_s": round(proofs_s, 3), "proofs": len(proofs),
            "proof_bytes": proof_bytes, "generate_s": round(gen_s, 3), "records_per_s": round(rate),
            "baseline_records": done, "baseline_s": round(ref_s, 3), "baseline_records_per_s": round(ref_rate),
            "speedup_vs_baseline": round(rate / ref_rate, 1), "nodes_short": sum(n.short for n in res.nodes.values()),
            "target_s": 30.0, "target_met": records < 1_000_000 or compute_s <= 30.0}


def main(argv: list[str]) -> int:
    """CLI entry: prints a table, writes JSON with --json PATH."""
    ap = argparse.ArgumentParser(prog="loraledger bench rewards", description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="records in the epoch (default 1,000,000)")
    ap.add_argument("--baseline-records", type=int, default=50_000,
                    help="records the per-record Python baseline runs over (default 50,000)")
    ap.add_argument("--quick", action="store_true", help="200,000 records, 20,000 baseline records (< 3 min)")
    ap.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    records = 200_000 if args.quick else args.records
    baseline = 20_000 if args.quick else args.baseline_records
    r = run(records, min(baseline, records))
    rows = [("records", f"{r['rewards_records']:,}"), ("accounts", f"{r['accounts']:,}"),
            ("compute_rewards s (wall)", f"{r['rewards_compute_s']:.2f}  (target <= 30 s at 1M)"),
            ("compute_rewards s (CPU)", f"{r['rewards_compute_cpu_s']:.2f}"),
            ("records/s", f"{r['records_per_s']:,}"),
            ("baseline (per-record loop) records/s", f"{r['baseline_records_per_s']:,} over "
             f"{r['baseline_records']:,} records"),
            ("speedup vs baseline", f"{r['speedup_vs_baseline']}x"),
            ("reward tree s", f"{r['tree_s']:.3f}"), ("all proofs s", f"{r['proofs_s']:.3f} "
                                                      f"({r['proofs']:,} proofs)")]
    width = max(len(k) for k, _ in rows)
    out = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    sys.stdout.write(out + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0 if r["target_met"] else 1
