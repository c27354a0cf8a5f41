"""`loraledger bench soak`: does a serving node grow? 20,000 requests through one running node, its resident memory
sampled every 2,000.

Everything is real and local, in a throwaway directory: `loraledger devnet up` (anvil + DA + contracts, the node
bonded) on free ports, a random-init Llama (`--model tiny|small`, as `bench node`) with one adapter, and
`loraledger node run` with its record store and its own batcher on. Closed-loop clients (`--concurrency`) send
short non-streamed completions (`--max-tokens`), alternating the base model and the adapter. After every
`--sample-every` requests the node process's resident memory (VmRSS from /proc) is read; growth is measured from
the sample taken after `--warmup` requests (start-up, first allocations, caches filling) to the last one. At the
end the batcher must have taken every record to `final` (`--drain-timeout`).

Prints the curve and writes JSON (`--json PATH`): `samples` [{requests, rss_mib, records_final, seconds}],
`growth_pct` (last vs warm-up sample), `target_pct` (5), `ok`, `requests_per_s`, `backlog_after_drain`.
Not part of `make test`: at the defaults it runs for minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

__all__ = ["main"]

TARGET_PCT = 5.0


def _rss_kib(pid: int) -> int:
    """Resident set size of `pid` in KiB (Linux /proc)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def _config(root: pathlib.Path, base: pathlib.Path, adapter: pathlib.Path, max_tokens: int) -> pathlib.Path:
    from attribution.devnet.processes import free_port

    ports = {"anvil": free_port(), "da": free_port(), "node": free_port()}
    text = f"""
[devnet]
state_dir = "{root / 'devnet'}"
anvil_port = {ports['anvil']}
da_port = {ports['da']}
demo_dir = "{root / 'no-demo'}"
block_time_s = 1

[chain]
rpc_url = "http://127.0.0.1:{ports['anvil']}"
deployments_dir = "{root / 'deployments'}"

[store]
path = "{root / 'records.db'}"

[batcher]
da_url = "http://127.0.0.1:{ports['da']}"
seal_interval_s = 5.0
confirmations = 2

[node]
port = {ports['node']}
requests_per_minute = 100000000
tokens_per_minute = 1000000000
shutdown_deadline_s = 10.0

[engine]
model_dir = "{base}"
model_name = "soak-llama"
max_batch = 8
max_queue = 256
max_seq_len = 256
default_max_tokens = {max_tokens}

[adapters]
dirs = ["{adapter}"]
manifest = "{root / 'no-manifest.json'}"
require_registered = false
"""
    path = root / "loraledger.toml"
    path.write_text(text)
    return path


def _cli(root: pathlib.Path, *args: str, **kw: Any) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORALEDGER_")}
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    return subprocess.Popen([sys.executable, "-c", "from node.cli import main; main()", *args], cwd=root, env=env,
                            **kw)


def _load(url: str, n: int, concurrency: int, max_tokens: int, counter: list[int], lock: threading.Lock,
          errors: list[str]) -> None:
    import httpx

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    if counter[0] >= n:
                        return
                    counter[0] += 1
                    i = counter[0]
                body = {"model": "soak-llama" if i % 2 else "bench-adapter", "prompt": f"soak request {i} of {k}",
                        "max_tokens": max_tokens, "temperature": 0}
                r = http.post("/v1/completions", json=body)
                if r.status_code != 200:
                    with lock:
                        errors.append(f"{r.status_code}: {r.text[:200]}")

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak; returns the JSON-ready result."""
    import httpx

    from node.bench.node import _local_model

    root = pathlib.Path(tempfile.mkdtemp(prefix="loraledger-soak-"))
    base, adapter = _local_model(root, args.model)
    config = _config(root, base, adapter, args.max_tokens)
    up = _cli(root, "devnet", "up", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = up.communicate(timeout=600)
    if up.returncode:
        raise RuntimeError(f"devnet up failed: {err.decode(errors='replace')[-2000:]}")
    log = open(root / "node.log", "wb")  # noqa: SIM115 - the child writes it; closed below
    node = _cli(root, "node", "run", "--config", str(config), stdout=log, stderr=subprocess.STDOUT)
    port = int(next(line.split("=")[1] for line in config.read_text().splitlines() if line.startswith("port =")))
    url = f"http://127.0.0.1:{port}"
    samples: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        deadline = time.monotonic() + 600
        while True:
            if node.poll() is not None:
                raise RuntimeError(f"node exited {node.returncode}: {(root / 'node.log').read_text()[-3000:]}")
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("node not ready after 600 s")
            time.sleep(0.5)
        counter, lock = [0], threading.Lock()
        t0 = time.monotonic()
        for done in range(args.sample_every, args.requests + 1, args.sample_every):
            _load(url, done, args.concurrency, args.max_tokens, counter, lock, errors)
            m = httpx.get(url + "/metrics", timeout=30).text
            samples.append({"requests": done, "rss_mib": round(_rss_kib(node.pid) / 1024, 1),
                            "records_final": int((_metric(m, "loraledger_batcher_last_final_seq") or -1) + 1),
                            "seconds": round(time.monotonic() - t0, 1)})
            print(f"{done:>7} requests  rss {samples[-1]['rss_mib']:8.1f} MiB  final {samples[-1]['records_final']:>7}"  # noqa: T201
                  f"  {samples[-1]['seconds']:7.1f} s", flush=True)
        elapsed = time.monotonic() - t0
        backlog = None
        end = time.monotonic() + args.drain_timeout
        while time.monotonic() < end:
            backlog = _metric(httpx.get(url + "/metrics", timeout=30).text, "loraledger_batcher_backlog_records")
            if backlog == 0:
                break
            time.sleep(1)
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=120)
        except subprocess.TimeoutExpired:
            node.kill()
        log.close()
        _cli(root, "devnet", "down", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait(timeout=120)
    warm = next((s for s in samples if s["requests"] >= args.warmup), samples[0])
    growth = 100.0 * (samples[-1]["rss_mib"] - warm["rss_mib"]) / warm["rss_mib"]
    return {"model": args.model, "requests": args.requests, "concurrency": args.concurrency,
            "max_tokens": args.max_tokens, "warmup": warm["requests"], "samples": samples,
            "growth_pct": round(growth, 2), "target_pct": TARGET_PCT,
            "ok": growth <= TARGET_PCT and not errors and backlog == 0, "errors": errors[:20],
            "error_count": len(errors), "requests_per_s": round(args.requests / elapsed, 1),
            "backlog_after_drain": backlog, "node_exit_code": node.returncode, "dir": str(root)}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit 1 when memory grew past the target, a request failed or the backlog did not drain."""
    p = argparse.ArgumentParser(prog="loraledger bench soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--sample-every", type=int, default=2_000)
    p.add_argument("--warmup", type=int, default=2_000, help="growth is measured from the sample at this count")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=4)
    p.add_argument("--model", choices=("tiny", "small"), default="tiny")
    p.add_argument("--drain-timeout", type=float, default=300.0)
    p.add_argument("--quick", action="store_true", help="2,000 requests sampled every 400")
    p.add_argument("--json", type=pathlib.Path)
    args = p.parse_args(argv)
    if args.quick:
        args.requests, args.sample_every, args.warmup = 2_000, 400, 400
    if args.sample_every < 1 or args.requests < args.sample_every:
        p.error("--requests must be >= --sample-every >= 1")
    res = run(args)
    print(f"resident memory growth after {res['warmup']} requests: {res['growth_pct']:+.2f} % "  # noqa: T201
          f"(target <= {TARGET_PCT} %), {res['requests_per_s']} req/s, {res['error_count']} errors, backlog after "
          f"drain {res['backlog_after_drain']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0 if res["ok"] else 1
