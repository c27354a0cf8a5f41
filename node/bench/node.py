"""`loraledger bench node` / `scripts/bench/bench_node.py`: the node's HTTP serving with attribution on vs off.

One node, one model, one load, measured in one run: a closed-loop load of non-streamed completions (base model and
an adapter, alternating) from a separate client process against the real app under uvicorn, more clients than the
engine's batch so the node stays saturated. Attribution is switched per round on the same node: on, every answer is
recorded durably (SQLite group commit + fsync) and signed (EIP-712) before it is sent; off, the recorder is absent.
Rounds run in back-to-back off/on pairs (off then on, then on then off, ...); the overhead is the median over pairs of
each pair's own ratio, so noise and drift of the machine hit both sides of every ratio alike.
The chain is not in the hot path (the node reads it only at start), so this bench uses a local record context
(chain id 31337, a random ledger address and node key) instead of an anvil.

Writes JSON with `attribution_overhead_pct` (throughput lost to attribution, %, median of the pairs), `p50_ms`,
`p99_ms`, `requests_per_s` (attribution on), `concurrency`, `engine_threads`, and both modes in full.
`--busy-neighbour` pairs rounds without and with a process spinning on one core instead (attribution on in both)
and writes `busy_vs_quiet` (median over pairs of busy / quiet throughput), `engine_threads`, both modes in full.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import logging
import multiprocessing
import pathlib
import statistics
import tempfile
import threading
import time
from typing import Any

from attribution.devnet.processes import free_port

__all__ = ["main"]

logger = logging.getLogger(__name__)


MODELS = {
    # the serving bench's "small" Llama (hidden 512, 8 layers), with a trained 2,048-token tokenizer: ~30 ms of CPU
    # per 16-token request, still far below any served LLM
    "small": {"hidden": 512, "layers": 8, "heads": 8, "kv_heads": 8, "intermediate": 1408, "vocab": 2048},
    # the test suites' toy (hidden 64, 2 layers): ~7 ms per request, nearly all of it HTTP and Python
    "tiny": {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 512},
}


def _local_model(root: pathlib.Path, size: str) -> tuple[pathlib.Path, pathlib.Path]:
    """A random-init Llama of `MODELS[size]` + one random rank-8 adapter, built here (no download)."""
    from inference.demo import build_llama, load_config, stdlib_docs, train_tokenizer, write_random_adapter

    spec = MODELS[size]
    tok = train_tokenizer([stdlib_docs("json", max_chars=20_000), stdlib_docs("email", max_chars=200_000)],
                          vocab_size=spec["vocab"])
    model = build_llama(tok, hidden=spec["hidden"], layers=spec["layers"], heads=spec["heads"],
                        kv_heads=spec["kv_heads"], intermediate=spec["intermediate"], seed=1234, max_positions=512,
                        initializer_range=0.1)
    base = root / f"{size}-llama"
    model.save_pretrained(base, safe_serialization=True)
    tok.save_pretrained(base)
    adapter = root / "bench-adapter"
    write_random_adapter(adapter, load_config(base), seed=7, rank=8)
    return base, adapter


def _services(settings: Any) -> Any:
    """The node's services with a local record context (chain id 31337, a random ledger address and node key) and
    the store of `settings.store`: attribution without a chain."""
    import secrets

    from eth_account import Account

    from attribution.records.receipt import ReceiptSigner
    from node.recorder import Recorder
    from node.services import build_services, open_store

    s = build_services(settings)  # attribution and registry checks off in `settings`: no chain needed
    signer = ReceiptSigner(Account.create(), 31337, secrets.token_bytes(20))
    s.store = open_store(settings, signer.node)
    s.recorder = Recorder(s.store, signer, 31337, signer.ledger, s.metrics.records_stored)
    return s


class _Server:
    """The app under uvicorn on a background thread."""

    def __init__(self, settings: Any, services: Any) -> None:
        import uvicorn

        from node.app import create_app

        self.server = uvicorn.Server(uvicorn.Config(create_app(settings, services=services), host="127.0.0.1",
                                                    port=settings.node.port, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the node did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)


async def _round(url: str, concurrency: int, requests: int, max_tokens: int, models: list[str]) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in counter:
            body = {"model": models[i % len(models)], "prompt": f"bench request {i}", "max_tokens": max_tokens,
                    "temperature": 0}
            t = time.perf_counter()
            r = await client.post(f"{url}/v1/completions", json=body)
            latencies.append((time.perf_counter() - t) * 1e3)
            if r.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    latencies.sort()
    return {"requests": requests, "errors": errors, "wall_s": round(wall, 3),
            "requests_per_s": round(requests / wall, 2),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2)}


def _client_round(url: str, concurrency: int, requests: int, max_tokens: int, models: list[str]) -> dict[str, Any]:
    """One round of the load generator (runs in its own process)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(_round(url, concurrency, requests, max_tokens, models))


def _measured_round(pool: concurrent.futures.Executor, url: str, concurrency: int, requests: int, max_tokens: int,
                    models: list[str]) -> dict[str, Any]:
    """A round driven from the load-generator process; adds the node's CPU per request (this process: the servers
    run here, the clients do not)."""
    c0 = time.process_time()
    res: dict[str, Any] = pool.submit(_client_round, url, concurrency, requests, max_tokens, models).result()
    res["cpu_ms_per_request"] = round((time.process_time() - c0) / requests * 1e3, 3)
    return res


def _spin() -> None:
    """The busy neighbour: one process spinning on one core (the last this process may use)."""
    import os

    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    while True:
        pass


class _Neighbour:
    """Starts the spinning process on enter, kills it on exit."""

    def __enter__(self) -> _Neighbour:
        self.proc = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
        self.proc.start()
        time.sleep(0.2)  # let it reach the loop
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.join(10)


def main(argv: list[str] | None = None) -> int:
    """Run the bench; print the table; write JSON with --json."""
    ap = argparse.ArgumentParser(prog="loraledger bench node", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="Fewer requests and rounds (under 3 minutes).")
    ap.add_argument("--json", type=pathlib.Path, help="Write the results here.")
    ap.add_argument("--concurrency", type=int, default=48,
                    help="Concurrent clients (closed loop); more than --max-batch keeps the node saturated.")
    ap.add_argument("--max-batch", type=int, default=16, help="The node's engine batch (max_batch).")
    ap.add_argument("--requests", type=int, default=None, help="Requests per round (default 400, quick 200).")
    ap.add_argument("--rounds", type=int, default=None,
                    help="Rounds per mode, interleaved in off/on pairs (default 12, quick 8).")
    ap.add_argument("--max-tokens", type=int, default=16, help="Completion tokens per request.")
    ap.add_argument("--model-dir", type=pathlib.Path,
                    help="Base model dir (default: a random Llama of --model size, built here).")
    ap.add_argument("--model", choices=sorted(MODELS), default="small",
                    help="Size of the locally built model when no --model-dir is given (default small).")
    ap.add_argument("--adapter-dir", type=pathlib.Path, help="An adapter for that model (alternates with base).")
    ap.add_argument("--threads", type=int, default=None,
                    help="engine.threads (default: the node's own default, the usable cores minus one above two).")
    ap.add_argument("--busy-neighbour", action="store_true",
                    help="Instead of attribution off/on, pairs of rounds without and with a neighbour process "
                         "spinning on one core (attribution on in both): the throughput kept under a busy core.")
    args = ap.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    if args.concurrency < 1 or args.max_tokens < 1 or args.max_batch < 1:
        ap.error("--concurrency, --max-batch and --max-tokens must be >= 1")
    for flag, d in (("--model-dir", args.model_dir), ("--adapter-dir", args.adapter_dir)):
        if d is not None and not d.is_dir():
            ap.error(f"{flag} {d} is not a directory: give a local model (or adapter) directory")
    if args.adapter_dir is not None and args.model_dir is None:
        ap.error("--adapter-dir needs --model-dir (the adapter must fit that model)")
    requests = args.requests or (200 if args.quick else 400)
    rounds = args.rounds or (8 if args.quick else 12)
    from rich.console import Console
    from rich.table import Table

    from node.settings import Settings

    console = Console()
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp:
        root = pathlib.Path(tmp)
        if args.model_dir is None:
            base, adapter = _local_model(root, args.model)
        else:
            base, adapter = args.model_dir, args.adapter_dir
        modes = ("quiet", "busy") if args.busy_neighbour else ("off", "on")
        results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        settings = Settings.model_validate({
            "node": {"port": free_port(), "attribution": False, "requests_per_minute": 10**9,
                     "tokens_per_minute": 10**9},
            "engine": {"model_dir": base, "model_name": "base", "max_batch": args.max_batch,
                       "max_queue": 4 * args.concurrency, "max_seq_len": 256, "threads": args.threads},
            "adapters": {"dirs": [adapter] if adapter else [], "manifest": None, "require_registered": False},
            "store": {"path": root / "records-on.db"}})
        # one node; attribution is switched per round (its recorder present or not), so both modes share the same
        # process, engine, threads and memory layout: two separate nodes differed by more than what is measured
        services = _services(settings)
        recorder = services.recorder
        url = f"http://127.0.0.1:{settings.node.port}"
        models = ["base"] + ([adapter.name] if adapter else [])
        # the clients run in a process of their own: in this one they would compete with the node for the GIL, and
        # their CPU would dilute the node's CPU per request
        pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        import torch

        threads = torch.get_num_threads()  # what engine.threads set before the engine started

        def measured(mode: str, n: int) -> dict[str, Any]:
            services.recorder = None if mode == "off" else recorder
            with _Neighbour() if mode == "busy" else contextlib.nullcontext():
                return _measured_round(pool, url, args.concurrency, n, args.max_tokens, models)

        with _Server(settings, services):
            try:
                for mode in modes:  # warm-up: first loads, allocator, kernels, the client process
                    measured(mode, 2 * args.concurrency)
                for r in range(rounds):
                    for mode in modes if r % 2 == 0 else modes[::-1]:
                        res = measured(mode, requests)
                        results[mode].append(res)
                        console.print(f"round {r + 1} {'neighbour' if args.busy_neighbour else 'attribution'} "
                                      f"{mode}: {res['requests_per_s']} req/s, p50 {res['p50_ms']} ms, "
                                      f"p99 {res['p99_ms']} ms")
            finally:
                services.recorder = recorder
                pool.shutdown()
        commits = services.store.commits
        best = {m: max(rs, key=lambda x: x["requests_per_s"]) for m, rs in results.items()}
        stored = None
        on_store = root / "records-on.db"
        if on_store.exists():
            from attribution.store import RecordStore

            with RecordStore(on_store, readonly=True) as st:
                stored = st.next_seq()
    if args.busy_neighbour:
        return _neighbour_report(args, results, best, threads, rounds, requests, console)
    # each round pairs an off and an on run back to back: the overhead is the median over pairs of the pair's own
    # ratio, so a drift of the machine (or of the process) over the run hits both sides of every ratio alike
    pairs = list(zip(results["off"], results["on"], strict=True))
    overhead = statistics.median(100.0 * (off["requests_per_s"] - on["requests_per_s"]) / off["requests_per_s"]
                                 for off, on in pairs)
    b_off, b_on = best["off"]["requests_per_s"], best["on"]["requests_per_s"]
    best_overhead = 100.0 * (b_off - b_on) / b_off
    # CPU time of the node (this process; the clients run in another) per request: on a machine shared with other
    # work this is steadier than wall-clock throughput
    cpu = {m: min(r["cpu_ms_per_request"] for r in rs) for m, rs in results.items()}
    cpu_overhead = statistics.median(100.0 * (on["cpu_ms_per_request"] - off["cpu_ms_per_request"])
                                     / off["cpu_ms_per_request"] for off, on in pairs)
    table = Table(title=f"node serving, {args.concurrency} concurrent clients, {requests} requests/round, "
                  f"max_tokens {args.max_tokens} (best of {rounds}; overhead: median of the pairs)")
    for col in ("attribution", "req/s", "p50 ms", "p99 ms", "CPU ms/request", "errors"):
        table.add_column(col)
    for m in ("off", "on"):
        b = best[m]
        table.add_row(m, str(b["requests_per_s"]), str(b["p50_ms"]), str(b["p99_ms"]), str(cpu[m]), str(b["errors"]))
    console.print(table)
    console.print(f"attribution overhead: {overhead:.2f}% of throughput (median of {rounds} off/on pairs; target "
                  f"<= 2%; best round against best round {best_overhead:.2f}%), {cpu_overhead:.2f}% CPU per request; "
                  f"records stored: {stored} in {commits} commits")
    out = {"attribution_overhead_pct": round(overhead, 2), "attribution_overhead_best_pct": round(best_overhead, 2),
           "attribution_cpu_overhead_pct": round(cpu_overhead, 2),
           "p50_ms": best["on"]["p50_ms"],
           "p99_ms": best["on"]["p99_ms"], "requests_per_s": best["on"]["requests_per_s"],
           "concurrency": args.concurrency, "max_tokens": args.max_tokens,
           "model": str(args.model_dir) if args.model_dir else args.model, "requests_per_round": requests,
           "rounds": rounds, "records_stored": stored, "engine_threads": threads,
           "records_per_commit": round(stored / commits, 2) if stored and commits else None,
           "off": best["off"], "on": best["on"], "all_rounds": results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    errors = best["on"]["errors"] + best["off"]["errors"]
    return 1 if errors else 0


def _neighbour_report(args: Any, results: dict[str, list[dict[str, Any]]], best: dict[str, dict[str, Any]],
                      threads: int, rounds: int, requests: int, console: Any) -> int:
    """Quiet vs busy-neighbour throughput: the median over pairs of each pair's busy / quiet ratio."""
    from rich.table import Table

    pairs = list(zip(results["quiet"], results["busy"], strict=True))
    kept = statistics.median(busy["requests_per_s"] / quiet["requests_per_s"] for quiet, busy in pairs)
    table = Table(title=f"node serving with {threads} engine threads, quiet vs a neighbour spinning on one core "
                  f"({args.concurrency} clients, {requests} requests/round, best of {rounds})")
    for col in ("neighbour", "req/s", "p50 ms", "p99 ms", "CPU ms/request", "errors"):
        table.add_column(col)
    for m in ("quiet", "busy"):
        b = best[m]
        table.add_row(m, str(b["requests_per_s"]), str(b["p50_ms"]), str(b["p99_ms"]), str(b["cpu_ms_per_request"]),
                      str(b["errors"]))
    console.print(table)
    console.print(f"busy / quiet throughput: {kept:.2f} (median of {rounds} pairs; target >= 0.45 at 2 threads)")
    out = {"busy_vs_quiet": round(kept, 3), "engine_threads": threads, "concurrency": args.concurrency,
           "max_tokens": args.max_tokens, "model": str(args.model_dir) if args.model_dir else args.model,
           "requests_per_round": requests, "rounds": rounds, "quiet": best["quiet"], "busy": best["busy"],
           "all_rounds": results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return 1 if best["quiet"]["errors"] + best["busy"]["errors"] else 0
