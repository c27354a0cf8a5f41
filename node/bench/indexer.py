"""Indexer benchmark: records verified per second while catching up (SQLite and PostgreSQL), beside the bare
verifier (DA fetch + strict decode + tree rebuild, no database) measured in the same run, before the first store
and again after each (a catch-up's ratio is to the mean of the verifier runs on either side of it); then query
latency p50/p99 through the HTTP API (in-process ASGI) on the whole index after its catch-up, beside a bare
primary-key SELECT. Every phase reports the 1-minute load average it ran under (min-max), and the run names the
CPU: on a shared machine the absolute rates move with the load, the ratios much less.

Setup (not timed): a fresh anvil, the DA server, the contracts; one node posts `--records` records in batches of
`--batch` (4 profiles, one with an adapter and two datasets). Full mode: 1,000,000 records; `--quick`: 100,000.

Run: `loraledger bench indexer [--quick] [--json PATH]` or `python scripts/bench/bench_indexer.py ...`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from eth_account import Account
from rich.console import Console
from rich.table import Table

from attribution.chain.artifacts import REPO_ROOT, ArtifactStore, ensure_built
from attribution.chain.client import ChainClient
from attribution.chain.deploy import ONE_TOKEN, bond_node, deploy_all, devnet_deploy_config
from attribution.chain.keys import DEV_ROLE_INDEX, dev_keys
from attribution.da.client import DAClient
from attribution.devnet import pgcluster
from attribution.devnet.da_process import DAServerProcess
from attribution.devnet.processes import start_anvil
from attribution.indexer.db import open_engine
from attribution.indexer.follower import Indexer
from attribution.indexer.schema import records as records_table
from attribution.records import Profile, RecordColumns
from attribution.records.payload import encode_batch
from attribution.records.tree import record_tree
from attribution.verify import Verifier, batch_events

log = logging.getLogger(__name__)


def machine() -> dict[str, Any]:
    """The CPU the figures came from: model, the flags that matter to the hashing and sorting here, cores."""
    model, flags = "unknown", set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
                break
    return {"cpu": model, "flags": [f for f in ("avx2", "fma", "sha_ni", "avx512f", "bmi2") if f in flags],
            "cores": os.cpu_count()}


class LoadSampler:
    """The 1-minute load average sampled every `every_s` seconds while a phase runs: on a shared machine the
    absolute rates move with it, so each phase reports the load it ran under."""

    def __init__(self, every_s: float = 2.0) -> None:
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every_s):
                break

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        """min / mean / max of the samples."""
        s = self.samples or [os.getloadavg()[0]]
        return {"min": min(s), "mean": sum(s) / len(s), "max": max(s)}


def _phase(fn: Any, *args: Any) -> dict[str, Any]:
    """Run one phase, adding the load average it ran under to its result."""
    with LoadSampler() as load:
        out: dict[str, Any] = fn(*args)
    out["load"] = load.summary()
    return out


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _profiles(rng: random.Random) -> tuple[Profile, ...]:
    model = rng.randbytes(32)
    ds = (rng.randbytes(32), rng.randbytes(32))
    return (Profile(model, rng.randbytes(32), ds, (6000, 4000)), Profile(model, rng.randbytes(32), ds[:1], (10000,)),
            Profile(model, rng.randbytes(32)), Profile(model, b"\x00" * 32))


def _publish(url: str, da: DAClient, n_records: int, batch: int, say: Any) -> dict[str, Any]:
    """Deploy, bond a node and post `n_records` records in batches; returns addresses and the profiles."""
    store = ArtifactStore(REPO_ROOT / "out")
    keys = dev_keys()
    deployer = Account.from_key(keys[DEV_ROLE_INDEX["deployer"]])
    node = Account.from_key(keys[DEV_ROLE_INDEX["node"]])
    dclient = ChainClient(url, deployer)
    dep = deploy_all(dclient, devnet_deploy_config(), store)
    bond_node(dep, dclient, node, mint=1_000_000 * ONE_TOKEN)
    ledger = dep.bind(ChainClient(url, node), store).ledger
    rng = random.Random(7)
    profiles = _profiles(rng)
    chain_id = dclient.chain_id
    ledger_b, node_b = bytes.fromhex(ledger.address[2:]), bytes.fromhex(node.address[2:])
    t0 = 1_760_000_000
    nprng = np.random.default_rng(7)
    for first in range(0, n_records, batch):
        m = min(batch, n_records - first)
        cols = RecordColumns(chain_id, ledger_b, node_b, profiles, np.arange(first, first + m, dtype=np.uint64),
                             nprng.integers(0, len(profiles), m), nprng.integers(1, 2000, m),
                             nprng.integers(1, 2000, m), t0 + np.arange(first, first + m, dtype=np.uint64),
                             nprng.integers(0, 256, (m, 32), dtype=np.uint8))
        payload = encode_batch(chain_id, ledger_b, node_b, first, cols)
        root = record_tree(cols, leaves=cols.leaf_bytes()).root_bytes
        ledger.post_batch(first, m, root, da.put(payload), first_timestamp=t0 + first,
                          last_timestamp=t0 + first + m - 1)
        say(f"posted {first + m:,}/{n_records:,} records")
    return {"ledger": ledger.address, "registry": dep.address("AssetRegistry"), "deploy_block": dep.deploy_block,
            "node": node.address, "profiles": profiles, "t0": t0}


def _catch_up(db_url: str, rpc: str, da_url: str, setup: dict[str, Any]) -> dict[str, float]:
    engine = open_engine(db_url)
    idx = Indexer(engine, ChainClient(rpc), setup["ledger"], DAClient(da_url, timeout=120), registry=setup["registry"],
                  deploy_block=setup["deploy_block"], confirmations=0, page_blocks=2000)
    started = time.perf_counter()
    indexed = 0
    while True:
        stats = idx.sync_once()
        indexed += stats.records_indexed
        if stats.cursor >= stats.head and stats.pending == 0:
            break
    elapsed = time.perf_counter() - started
    engine.dispose()
    return {"records": indexed, "seconds": elapsed, "records_per_s": indexed / elapsed}


def _verifier_only(rpc: str, da_url: str, setup: dict[str, Any]) -> dict[str, float]:
    """The bare verifier over the same batches: DA fetch, strict decode, tree rebuild; nothing stored."""
    client = ChainClient(rpc)
    from attribution.chain.contracts import Ledger

    ledger = Ledger(client, setup["ledger"])
    with DAClient(da_url, timeout=120) as da:
        v = Verifier(ledger, da, from_block=setup["deploy_block"])
        started = time.perf_counter()
        n = 0
        for ev in batch_events(ledger, setup["deploy_block"]):
            check = v.check_event(ev)
            if not check.ok:
                raise RuntimeError(f"batch {ev.batch_id} did not verify: {check.detail}")
            n += ev.count
        elapsed = time.perf_counter() - started
    return {"records": n, "seconds": elapsed, "records_per_s": n / elapsed}


def _queries(db_url: str, setup: dict[str, Any], n_records: int, n_queries: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from attribution.indexer.api import create_app

    engine = open_engine(db_url)
    # entered once: one event-loop thread for every request (a bare TestClient starts one per request, which is
    # the test client's cost, not the API's)
    stack = contextlib.ExitStack()
    client = stack.enter_context(TestClient(create_app(engine)))
    rng = random.Random(11)
    node = setup["node"]
    profiles: tuple[Profile, ...] = setup["profiles"]
    kinds: dict[str, Any] = {
        "record+proof": lambda: client.get(f"/v1/records/{node}/{rng.randrange(n_records)}"),
        "by adapter (100)": lambda: client.get("/v1/records", params={
            "adapter": "0x" + rng.choice(profiles[:3]).adapter_id.hex(), "limit": 100,
            "from_ts": setup["t0"] + rng.randrange(n_records)}),
        "by dataset (100)": lambda: client.get("/v1/records", params={
            "dataset": "0x" + profiles[0].dataset_ids[rng.randrange(2)].hex(), "limit": 100,
            "from_ts": setup["t0"] + rng.randrange(n_records)}),
        "time range (100)": lambda: client.get("/v1/records", params={
            "from_ts": (t := setup["t0"] + rng.randrange(n_records)), "to_ts": t + 100, "limit": 100}),
    }
    out: dict[str, Any] = {}
    all_ms: list[float] = []
    for name, fn in kinds.items():
        fn()  # warm caches (profiles, the first trees)
        ms = []
        for _ in range(n_queries):
            t = time.perf_counter()
            r = fn()
            ms.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{name}: HTTP {r.status_code} {r.text[:200]}")
        out[name] = {"p50_ms": _pct(ms, 0.5), "p99_ms": _pct(ms, 0.99)}
        all_ms += ms
    # baseline: the bare primary-key SELECT under the record+proof query
    node_b = bytes.fromhex(node[2:])
    base = []
    with engine.connect() as conn:
        for _ in range(n_queries):
            t = time.perf_counter()
            conn.execute(sa.select(records_table).where(records_table.c.node == node_b,
                                                        records_table.c.seq == rng.randrange(n_records))).all()
            base.append((time.perf_counter() - t) * 1000)
    out["baseline: PK select"] = {"p50_ms": _pct(base, 0.5), "p99_ms": _pct(base, 0.99)}
    stack.close()
    out["all"] = {"p50_ms": _pct(all_ms, 0.5), "p99_ms": _pct(all_ms, 0.99)}
    with engine.connect() as conn:
        out["indexed_records"] = int(conn.execute(sa.select(sa.func.count()).select_from(records_table)).scalar()
                                     or 0)
    engine.dispose()
    return out


def run(quick: bool, n_records: int | None, batch: int, postgres: bool, say: Any) -> dict[str, Any]:
    """Set up, catch up on each store, query; returns the results."""
    n = n_records or (100_000 if quick else 1_000_000)
    n_queries = 200 if quick else 1000
    ensure_built(REPO_ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="loraledger-bench-indexer-"))
    chain = start_anvil(gas_limit=1_000_000_000)
    anvil, rpc = chain.proc, chain.rpc_url
    da = DAServerProcess(tmp / "da", kzg=False)
    da.start()
    cluster = None
    results: dict[str, Any] = {"records": n, "batch": batch, "quick": quick, "machine": machine()}
    try:
        t = time.perf_counter()
        with DAClient(da.url, timeout=120) as dac:
            setup = _publish(rpc, dac, n, batch, say)
        results["setup_s"] = time.perf_counter() - t
        say("bare verifier ...")
        results["verifier_only"] = _phase(_verifier_only, rpc, da.url, setup)
        stores = {"sqlite": str(tmp / "indexer.db")}
        if postgres and pgcluster.available():
            cluster = pgcluster.start_postgres()
            stores["postgresql"] = cluster.new_database()
        for name, url in stores.items():
            say(f"catching up on {name} ...")
            results[f"catch_up_{name}"] = _phase(_catch_up, url, rpc, da.url, setup)
            say(f"bare verifier again, after {name} ...")
            results[f"verifier_after_{name}"] = _phase(_verifier_only, rpc, da.url, setup)
            say(f"queries on {name} ...")
            results[f"queries_{name}"] = _phase(_queries, url, setup, n, n_queries)
    finally:
        if cluster is not None:
            pgcluster.stop_postgres(cluster)
        da.stop()
        anvil.terminate()
        anvil.wait(timeout=10)
    results["verify_records_per_s"] = results["catch_up_sqlite"]["records_per_s"]
    results["query_p99_ms"] = results["queries_sqlite"]["all"]["p99_ms"]
    results["query_p50_ms"] = results["queries_sqlite"]["all"]["p50_ms"]
    results["indexed_records"] = results["queries_sqlite"]["indexed_records"]
    return results


def _neighbour_verifier(r: dict[str, Any], store: str) -> float:
    """The bare verifier's rate around a catch-up: the mean of the runs just before and just after it (the load of
    a shared machine moves, so a catch-up is compared with the verifier measured beside it)."""
    before = "verifier_only" if store == "sqlite" else "verifier_after_sqlite"
    rates = [r[k]["records_per_s"] for k in (before, f"verifier_after_{store}") if k in r]
    return sum(rates) / len(rates)


def _load(x: dict[str, Any]) -> str:
    load = x.get("load")
    return "" if not load else f"{load['mean']:.1f} ({load['min']:.1f}-{load['max']:.1f})"


def _print(r: dict[str, Any], console: Console) -> None:
    m = r.get("machine", {})
    t = Table(title=f"indexer catch-up: {r['records']:,} records in batches of {r['batch']:,} on {m.get('cpu', '?')} "
                    f"({m.get('cores', '?')} cores)")
    for col in ("what", "records", "seconds", "records/s", "vs bare verifier beside it", "load avg (min-max)"):
        t.add_column(col, justify="right" if col != "what" else "left")
    rows = (("verifier_only", "bare verifier (DA + decode + tree, no DB)"), ("catch_up_sqlite", "indexer, SQLite"),
            ("verifier_after_sqlite", "bare verifier again"), ("catch_up_postgresql", "indexer, PostgreSQL"),
            ("verifier_after_postgresql", "bare verifier again"))
    for key, label in rows:
        if key in r:
            x = r[key]
            ratio = "" if not key.startswith("catch_up_") else \
                f"{x['records_per_s'] / _neighbour_verifier(r, key.removeprefix('catch_up_')):.2f}x"
            t.add_row(label, f"{x['records']:,}", f"{x['seconds']:.1f}", f"{x['records_per_s']:,.0f}", ratio,
                      _load(x))
    console.print(t)
    for store in ("sqlite", "postgresql"):
        q = r.get(f"queries_{store}")
        if not q:
            continue
        qt = Table(title=f"query latency via the HTTP API on {q['indexed_records']:,} records ({store}), load avg "
                         f"{_load(q)}")
        for col in ("query", "p50 ms", "p99 ms"):
            qt.add_column(col, justify="right" if col != "query" else "left")
        for name, v in q.items():
            if isinstance(v, dict) and "p50_ms" in v:
                qt.add_row(name, f"{v['p50_ms']:.2f}", f"{v['p99_ms']:.2f}")
        console.print(qt)


def main(argv: list[str]) -> int:
    """Entry point of `loraledger bench indexer` and `scripts/bench/bench_indexer.py`."""
    parser = argparse.ArgumentParser(prog="loraledger bench indexer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 records, 200 queries each (under 3 minutes)")
    parser.add_argument("--records", type=int, default=None, help="records to index (default 1,000,000; quick "
                        "100,000)")
    parser.add_argument("--batch", type=int, default=10_000, help="records per batch (default 10,000)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the results as JSON here")
    args = parser.parse_args(argv)
    for noisy in ("httpx", "httpx2", "attribution.indexer.follower", "attribution.verify", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    console = Console()
    err = Console(stderr=True)
    started = time.perf_counter()
    results = run(args.quick, args.records, args.batch, not args.no_postgres, lambda m: err.log(m))
    results["wall_s"] = time.perf_counter() - started
    _print(results, console)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
        console.print(f"wrote {args.json}")
    return 0

