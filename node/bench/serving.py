"""`loraledger bench serving`: multi-adapter serving throughput against its baselines, all in one run.

Models are built from random init (no download), adapters are written synthetically (seeded, non-zero A and B), the
workload is fixed by a seed. Every baseline is measured in the same run on the same machine, and throughput counts
only the requested completion tokens (EOS ignored, forced lengths). Rows:

- roofline: the workload's weight matmuls alone at the engine's actual shapes (every decode step's GEMMs at its own
  running batch size, every prefill forward's GEMMs at its packed token count, as recorded by the 32-adapter run):
  the useful tokens/s if nothing but those matmuls cost time;
- ours: base only; 1, 8, 32, 256 distinct rank-16 adapters (uniform); 32 adapters of mixed ranks 8/16/64;
  1,000 adapters with Zipf(1.0) popularity, a host budget of 64 adapters, starting cold on disk; and a variant of
  base-only / 32 adapters with fp16 storage of the K/V cache and LoRA stacks (fp32 compute; CPU native kernels),
  reported beside the fp32 rows (the issue's targets are checked on the fp32 rows);
- transformers `generate`, static batches of 32 (base); transformers continuous batching (`generate_batch`'s
  manager, base); peft mixed-batch `generate(adapter_names=...)`, static batches of 32, 32 adapters; peft one request
  at a time with `set_adapter` (8 requests);
- online: Poisson arrivals at 80% of the measured 32-adapter capacity, time to first token p50/p99;
- cold load: disk -> host -> device milliseconds per adapter, p50/p99; bytes per resident adapter;
- `--backends loraledger,vllm`: vLLM's rows on the same weights, adapters and workload (`node.bench.serving_vllm`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import pathlib
import random
import shutil
import statistics
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from inference import compiled, gemm, kernels
from inference.adapters.cache import AdapterCache, CacheBudgets
from inference.adapters.weights import linear_shapes
from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.errors import InferenceError
from inference.lora import LoraPool
from node.bench.baselines import peft_model, run_hf_cb, run_hf_static, run_peft_sequential
from node.bench.machine import environment
from node.bench.serving_report import Result, print_model, to_json
from node.bench.workload import SEED, Work, build_model, workload, zipf_choices

__all__ = ["MODELS", "main"]

logger = logging.getLogger(__name__)

MODELS: dict[str, dict[str, int]] = {
    "small": {"hidden": 512, "layers": 8, "heads": 8, "intermediate": 1408, "vocab": 8192},
    "medium": {"hidden": 2048, "layers": 4, "heads": 16, "intermediate": 5632, "vocab": 32000},
}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


# ===================================================================================================== SETUP


@dataclass
class _Base:
    model: Any
    tokenizer: Any
    model_id: bytes


class AdapterFactory:
    """Writes synthetic peft adapters on demand (only those a row really uses are materialized)."""

    def __init__(self, root: pathlib.Path, config: Any) -> None:
        self.root = root
        self.config = config

    def path(self, prefix: str, i: int, rank: int) -> pathlib.Path:
        from inference.demo import write_random_adapter

        p = self.root / f"{prefix}{i:04d}"
        if not (p / "adapter_model.safetensors").exists():
            write_random_adapter(p, self.config, seed=zlib.crc32(f"{prefix}{i}".encode()), rank=rank, targets=TARGETS)
        return p


# ===================================================================================================== OUR ENGINE


def _make_cache(base: _Base, dtype: torch.dtype, budgets: CacheBudgets | None, reserve: list[int],
                storage_dtype: torch.dtype | None = None) -> AdapterCache:
    cfg = base.model.config
    pool = LoraPool(linear_shapes(cfg), cfg.num_hidden_layers, device=base.model.device, dtype=dtype,
                    storage_dtype=storage_dtype)
    for r in reserve:  # startup preallocation of the device tier, as a server does once
        pool.reserve(r, TARGETS, 64)
    return AdapterCache(cfg, pool, budgets)


def run_ours(base: _Base, work: list[Work], adapters: list[pathlib.Path | None], *, dtype: torch.dtype,
             budgets: CacheBudgets | None = None, validate: bool = True, max_batch: int = 64,
             reserve: tuple[int, ...] = (16,), half_storage: bool = False) -> dict[str, Any]:
    """Serve `work` (request i uses adapters[i], None = base) all submitted at once; tokens/s of requested tokens.
    `half_storage`: K/V cache and LoRA weight stacks stored as fp16 (compute stays fp32; native CPU kernel only)."""
    cache = _make_cache(base, dtype, budgets, list(reserve), torch.float16 if half_storage else None)
    kv_dtype = "float16" if half_storage else None
    names: dict[pathlib.Path, bytes] = {}
    for p in adapters:
        if p is not None and p not in names:
            names[p] = cache.add(p, validate=validate)
    eng = Engine(base, cache, EngineConfig(max_batch=max_batch, max_queue=100_000, max_seq_len=256,
                                           prefill_token_budget=1024, detokenize=False, kv_dtype=kv_dtype,
                                           bench_stats=True))
    try:
        t0 = time.perf_counter()
        handles = [eng.submit(GenerationRequest(prompt_ids=w.prompt, max_tokens=w.out, ignore_eos=True,
                                                adapter=names[a] if a is not None else None))
                   for w, a in zip(work, adapters, strict=True)]
        eng.run_until_idle()
        wall = time.perf_counter() - t0
        done = [h.result() for h in handles]
        tokens = sum(c.usage.completion_tokens for c in done)
        assert tokens == sum(w.out for w in work), "every request must produce exactly its forced length"
        return {"tok_s": tokens / wall, "wall_s": wall, "mean_batch": eng.decode_rows_total / max(1, eng.decode_steps),
                "decode_batches": dict(eng.decode_batches), "prefill_shapes": list(eng.prefill_shapes or []),
                "distinct_adapters": len(names), "tiers": _count(c.usage.cache_tier for c in done),
                "evictions": dict(cache.evictions), "stats": cache.stats()}
    finally:
        cache.close()


def _half_storage_ok(base: _Base, dtype: torch.dtype) -> bool:
    """Whether the fp16-storage variant can run here (native CPU kernels selected, fp32 model, AVX-512)."""
    k = kernels.ext
    return (kernels.selected() == "native" and base.model.device.type == "cpu" and dtype == torch.float32
            and k is not None and bool(k.simd(base.model.config.hidden_size // base.model.config.num_attention_heads)))


def _count(items: Iterator[str] | Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def run_online(base: _Base, work: list[Work], adapters: list[pathlib.Path], rate_rps: float, *,
               dtype: torch.dtype) -> dict[str, Any]:
    """Poisson arrivals at `rate_rps` on a background engine; time to first token = queue + prefill."""
    cache = _make_cache(base, dtype, None, [16])
    ids = [cache.add(p) for p in dict.fromkeys(adapters)]
    by_path = dict(zip(dict.fromkeys(adapters), ids, strict=True))
    eng = Engine(base, cache, EngineConfig(max_batch=64, max_queue=100_000, max_seq_len=256, detokenize=False))
    rng = random.Random(SEED + 2)
    eng.start()
    try:
        handles = []
        t_next = time.perf_counter()
        for w, a in zip(work, adapters, strict=True):
            t_next += rng.expovariate(rate_rps)
            delay = t_next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            handles.append(eng.submit(GenerationRequest(prompt_ids=w.prompt, max_tokens=w.out, ignore_eos=True,
                                                        adapter=by_path[a])))
        ttft = sorted(h.result(timeout=600).usage.queue_ms + h.result().usage.prefill_ms for h in handles)
    finally:
        eng.stop()
        cache.close()
    return {"ttft_ms_p50": _pct(ttft, 50), "ttft_ms_p99": _pct(ttft, 99), "rate_rps": rate_rps, "online_n": len(work)}


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    k = min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def cold_loads(base: _Base, paths: list[pathlib.Path], *, dtype: torch.dtype) -> dict[str, Any]:
    """Milliseconds from a registered adapter on disk to ready in the device pool (validation included)."""
    cache = _make_cache(base, dtype, None, [16])
    try:
        ids = [cache.add(p, validate=False) for p in paths]
        ms = [cache.preload(i, device=True) for i in ids]
        info = cache.info(ids[0])
        return {"cold_load_ms_p50": statistics.median(ms), "cold_load_ms_p99": _pct(ms, 99), "cold_n": len(ms),
                "bytes_per_adapter": info.device_bytes, "host_bytes_per_adapter": info.host_bytes,
                "disk_bytes_per_adapter": info.disk_bytes,
                "padding_bytes_per_adapter": cache.pool.padding_bytes(16, TARGETS)}
    finally:
        cache.close()


def roofline(base: _Base, work: list[Work], decode_batches: dict[int, int], prefill_shapes: list[tuple[int, int]],
             reps: int = 3) -> float:
    """Tokens/s if the workload cost only its weight matmuls, at the engine's actual shapes (same run, same threads):
    every decode step's layer GEMMs + lm_head at that step's running rows (`decode_batches`: rows -> steps), every
    prefill forward's layer GEMMs at its packed token count plus lm_head on its rows' last tokens (`prefill_shapes`).
    The numerator is the same requested completion tokens that the engine rows count."""
    from inference.engine import LlamaForward

    fwd = LlamaForward(base.model, 8)  # the engine's GEMM path (LORALEDGER_GEMM): packed oneDNN or F.linear
    dev, dt = fwd.device, fwd.dtype
    layer_w = fwd.linears()[:-1]
    memo: dict[tuple[int, bool], float] = {}

    def gemm_s(rows: int, head: bool) -> float:
        """Best of `reps` for the layer GEMMs (head=False) or lm_head alone (head=True) at `rows` rows."""
        if (rows, head) in memo:
            return memo[(rows, head)]
        weights = [fwd.head] if head else layer_w
        xs = {w.weight.shape[1]: torch.randn(rows, w.weight.shape[1], device=dev, dtype=dt) for w in weights}
        best = float("inf")
        with torch.inference_mode():
            for _ in range(reps):
                _sync(dev)
                t0 = time.perf_counter()
                for w in weights:
                    w(xs[w.weight.shape[1]])
                _sync(dev)
                best = min(best, time.perf_counter() - t0)
        memo[(rows, head)] = best
        return best

    decode_s = sum(steps * (gemm_s(b, False) + gemm_s(b, True)) for b, steps in decode_batches.items())
    prefill_s = sum(gemm_s(n, False) + gemm_s(rows, True) for n, rows in prefill_shapes)
    return sum(w.out for w in work) / (decode_s + prefill_s)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# ===================================================================================================== ONE MODEL


def bench_model(name: str, *, quick: bool, device: str, dtype: torch.dtype, root: pathlib.Path,
                progress: Any, requests: int | None = None, vllm: bool = False, peers: bool = False,
                threads: int | None = None, rounds: int = 3, vllm_no_lora: bool = False) -> Result:
    """Every row for one model size (+ vLLM's rows with `vllm`); `peers`: only `serving_vllm.peer_rows`."""
    spec = MODELS[name]
    res = Result(name)
    n_req = requests or (64 if quick else 256)
    n_base_subset = min(32, n_req) if quick else n_req  # slow baselines: one static batch in quick mode
    model = build_model(spec, device, dtype)
    base = _Base(model=model, tokenizer=None, model_id=hashlib.sha256(f"bench-{name}".encode()).digest())
    work = workload(n_req, spec["vocab"])
    fac = AdapterFactory(root / name, model.config)

    def step(msg: str) -> None:
        progress(f"[{name}] {msg}")

    step("warm-up")
    run_ours(base, work[:4], [None] * 4, dtype=dtype)
    if peers:
        from node.bench.serving_vllm import peer_rows

        chosen = gemm.selected(base.model.device, dtype)
        peer_rows(res, model, work, lambda i: fac.path("u", i, 16), lambda p: _ours_on(chosen, base, work, p, dtype),
                  device=device, dtype=str(dtype)[6:], root=root / name, step=step, threads=threads, rounds=rounds,
                  gemm=chosen, plain=None if chosen == "plain" else lambda p: _ours_on("plain", base, work, p, dtype),
                  no_lora=vllm_no_lora)
        return res

    # the rows the targets compare run more than once, interleaved with the others, and keep their best (co-tenants
    # on a shared machine only ever slow a run down): base-only and 32 adapters 3 times, the others twice
    step("ours: base only")
    r = run_ours(base, work, [None] * n_req, dtype=dtype)
    res.add("base", "ours, base only", r["tok_s"], f"{n_req} req, mean batch {r['mean_batch']:.1f}, best of 3")
    for k in (1, 8, 32, 256):
        step(f"ours: {k} adapters")
        paths: list[pathlib.Path | None] = [fac.path("u", i % k, 16) for i in range(n_req)]
        r = run_ours(base, work, paths, dtype=dtype)
        res.add(f"mixed_{k}", f"ours, {k} adapters (r16)", r["tok_s"],
                f"{r['distinct_adapters']} distinct used, mean batch {r['mean_batch']:.1f}"
                + (", best of 3" if k == 32 else ""))
        if k == 32:
            shapes32 = r  # the roofline uses the 32-adapter row's own step shapes
    paths32: list[pathlib.Path | None] = [fac.path("u", i % 32, 16) for i in range(n_req)]
    step("ours: 32 adapters, ranks 8/16/64")
    ranks = (8, 16, 64)
    paths = [fac.path(f"m{ranks[i % 32 % 3]}_", i % 32, ranks[i % 32 % 3]) for i in range(n_req)]
    r = run_ours(base, work, paths, dtype=dtype, reserve=ranks)
    res.add("mixed_rank_32", "ours, 32 adapters (r 8/16/64)", r["tok_s"], "rank buckets 8/16/64: no padding")
    step("ours: Zipf(1.0) over 1,000 adapters, host budget 64")
    z = zipf_choices(n_req, 1000)
    paths = [fac.path("u", i, 16) for i in z]
    r = run_ours(base, work, paths, dtype=dtype, validate=False,
                 budgets=CacheBudgets(max_host_adapters=64, max_device_adapters=64))
    res.add("zipf1000", "ours, Zipf(1.0) over 1,000 adapters", r["tok_s"],
            f"{r['distinct_adapters']} distinct drawn (only those written to disk), start cold, host 64, "
            f"tiers at submit {r['tiers']}, best of 2")
    res.extra["zipf_distinct"] = r["distinct_adapters"]

    half = _half_storage_ok(base, dtype)
    if half:
        step("ours: fp16 K/V + LoRA storage (fp32 compute), base only and 32 adapters")
        r = run_ours(base, work, [None] * n_req, dtype=dtype, half_storage=True)
        res.add("base_half", "ours, base only, fp16 K/V storage", r["tok_s"], "fp32 compute, best of 2")
        r = run_ours(base, work, paths32, dtype=dtype, half_storage=True)
        res.add("mixed_32_half", "ours, 32 adapters, fp16 K/V + LoRA storage", r["tok_s"], "fp32 compute, best of 2")

    step("roofline")
    res.add("roofline", "GEMM roofline (matmuls alone)",
            roofline(base, work, shapes32["decode_batches"], shapes32["prefill_shapes"]),
            f"the 32-adapter run's {sum(shapes32['decode_batches'].values())} decode steps at their own batch sizes "
            f"(mean {shapes32['mean_batch']:.1f}) + its {len(shapes32['prefill_shapes'])} prefill forwards")

    step("online TTFT (Poisson at 80% capacity)")
    cap_rps = len(work) / (sum(w.out for w in work) / (res.tok("mixed_32") or 1.0))
    n_online = min(len(work), 32 if quick else 128)
    online = run_online(base, work[:n_online], [fac.path("u", i % 32, 16) for i in range(n_online)],
                        0.8 * cap_rps, dtype=dtype)
    res.extra.update(online)

    step("cold loads")
    n_cold = 16 if quick else 64  # distinct adapters, each loaded once from disk
    res.extra.update(cold_loads(base, [fac.path("c", i, 16) for i in range(n_cold)], dtype=dtype))

    sub = work[:n_base_subset]
    step(f"transformers generate, static batches of 32 ({len(sub)} req)")
    res.add("hf_static", "transformers generate, static 32 (base)", run_hf_static(model, sub),
            f"{len(sub)} req, best of 2")
    step("second runs: ours base, ours 32 adapters, transformers static, Zipf")
    for _ in range(2):  # base-only and 32 adapters: best of 3, interleaved (their ratio is a target)
        res.best("base", run_ours(base, work, [None] * n_req, dtype=dtype)["tok_s"])
        res.best("mixed_32", run_ours(base, work, paths32, dtype=dtype)["tok_s"])
    res.best("hf_static", run_hf_static(model, sub))
    if half:
        res.best("base_half", run_ours(base, work, [None] * n_req, dtype=dtype, half_storage=True)["tok_s"])
        res.best("mixed_32_half", run_ours(base, work, paths32, dtype=dtype, half_storage=True)["tok_s"])
    res.best("zipf1000", run_ours(base, work, [fac.path("u", i, 16) for i in z], dtype=dtype, validate=False,
                                  budgets=CacheBudgets(max_host_adapters=64, max_device_adapters=64))["tok_s"])
    # ~6x slower than static generate on CPU: the first 16 requests in quick mode, 64 in full mode
    sub_cb = sub[:16] if quick else sub[:64]
    step(f"transformers continuous batching ({len(sub_cb)} req)")
    try:
        res.add("hf_cb", "transformers generate_batch (base)", run_hf_cb(model, sub_cb), f"{len(sub_cb)} req")
    except Exception as e:  # an upstream failure is a row result, not a bench failure
        logger.warning("transformers continuous batching failed: %s", e)
        res.add("hf_cb", "transformers generate_batch (base)", None, f"failed: {type(e).__name__}")

    step(f"peft mixed batch, 32 adapters ({len(sub)} req)")
    p32 = [fac.path("u", i, 16) for i in range(32)]
    pm = peft_model(lambda: build_model(spec, device, dtype), p32)
    res.add("peft_mixed", "peft mixed-batch generate, static 32", run_hf_static(
        pm, sub, adapter_names=[p32[i % 32].name for i in range(len(sub))]), f"{len(sub)} req, 32 adapters")
    step("peft one request at a time (8 req)")
    res.add("peft_sequential", "peft set_adapter, one at a time", run_peft_sequential(
        pm, work[:8], [p32[i].name for i in range(8)]), "8 req")
    del pm
    if vllm:
        from node.bench.serving_vllm import vllm_rows

        vllm_rows(res, model, work, lambda i: fac.path("u", i, 16), device=device, dtype=str(dtype).split(".")[-1],
                  root=root / name, step=step, threads=threads)
    return res


def _ours_on(path: str, base: _Base, work: list[Work], adapters: list[pathlib.Path | None],
             dtype: torch.dtype) -> float:
    """Tokens/s of our engine on `work` with LORALEDGER_GEMM=`path` (read when the run's engine builds its forward),
    the variable put back after."""
    before = os.environ.get(gemm.ENV)
    os.environ[gemm.ENV] = path
    try:
        return float(run_ours(base, work, adapters, dtype=dtype)["tok_s"])
    finally:
        os.environ.pop(gemm.ENV, None)
        if before is not None:
            os.environ[gemm.ENV] = before


def main(argv: list[str]) -> int:
    """Run the serving benchmark; prints rich tables, writes JSON with --json PATH. Returns 0, or 1 with --strict
    when a target fails."""
    ap = argparse.ArgumentParser(prog="loraledger bench serving", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 requests, small model only (< 5 min on 2 cores)")
    ap.add_argument("--json", dest="json_path", default=None, help="write the results as JSON here")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    ap.add_argument("--models", default=None, help="comma list of small,medium (default: small; full adds medium)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default 1 on CPU: stable ratios on a shared machine; 0 = torch's "
                         "choice)")
    ap.add_argument("--workdir", default=None, help="keep the synthetic adapters here (default: a temp dir)")
    ap.add_argument("--requests", type=int, default=None, help="override the number of requests (debugging)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    ap.add_argument("--rounds", type=int, default=3, help="--peers: interleaved rounds, each row keeps its best "
                    "(default 3)")
    ap.add_argument("--backends", default="loraledger",
                    help="comma list of loraledger,vllm: vllm adds vLLM's rows on the same weights and workload "
                         "(run from .venv-vllm, `make setup-vllm`); our rows always run")
    ap.add_argument("--kernels", default=None, choices=kernels.CHOICES,
                    help=f"kernel path (sets {kernels.ENV}; default: its value, else auto = native where the CPU "
                         "has AVX-512 and the extension was built, else torch); compiled = torch.compile of the "
                         "portable path, its compile time reported apart")
    ap.add_argument("--gemm", default=None, choices=gemm.CHOICES,
                    help=f"base weight GEMMs (sets {gemm.ENV}; default: its value, else auto = oneDNN with packed "
                         "weights where it runs, else plain F.linear)")
    ap.add_argument("--peers", action="store_true",
                    help="only base and 32 adapters, ours and vLLM's (with --backends loraledger,vllm) interleaved, "
                         "plus ours base-only on plain F.linear GEMMs: the backend comparison, much shorter")
    ap.add_argument("--vllm-no-lora", action="store_true",
                    help="--peers: then vLLM with LoRA disabled (base model only, vLLM's own default compilation), "
                         "its base-only row interleaved with ours: vLLM's fastest base, a reference no multi-adapter "
                         "node can run")
    args = ap.parse_args(argv)
    if args.vllm_no_lora and not args.peers:
        ap.error("--vllm-no-lora goes with --peers (and --backends loraledger,vllm)")
    if args.kernels is not None:
        os.environ[kernels.ENV] = args.kernels
    if args.gemm is not None:
        os.environ[gemm.ENV] = args.gemm
    dtype = getattr(torch, args.dtype)
    try:
        env = environment(args.device, dtype)
    except InferenceError as e:  # a bad LORALEDGER_KERNELS/GEMM value, or a path asked for where it cannot run
        ap.error(str(e))
    threads = args.threads if args.threads is not None else (1 if args.device == "cpu" else 0)
    if threads:
        torch.set_num_threads(threads)
    models = args.models.split(",") if args.models else (["small"] if args.quick else ["small", "medium"])
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}: choose from {', '.join(MODELS)}")
    backends = set(args.backends.split(","))
    if not backends <= {"loraledger", "vllm"}:
        ap.error(f"--backends {args.backends}: choose from loraledger,vllm")
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda but no CUDA device is available")
    dev_desc = device if not device.startswith("cuda") else f"{device} ({torch.cuda.get_device_name()})"
    dev_desc += f", {args.dtype}, {torch.get_num_threads()} threads, kernels {env['kernels']}, GEMM {env['gemm']}"

    from rich.console import Console

    console = Console(stderr=True)
    t_start = time.perf_counter()
    results: dict[str, Result] = {}
    with contextlib.ExitStack() as stack:
        if args.workdir:
            root = pathlib.Path(args.workdir)
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="serving-bench-")))
        lock = threading.Lock()

        def progress(msg: str) -> None:
            with lock:
                console.log(f"{time.perf_counter() - t_start:6.1f}s {msg}")

        for m in models:
            results[m] = bench_model(m, quick=args.quick, device=device, dtype=dtype, root=root, progress=progress,
                                     requests=args.requests, vllm="vllm" in backends, peers=args.peers,
                                     threads=threads, rounds=args.rounds, vllm_no_lora=args.vllm_no_lora)
            print_model(results[m], dev_desc)
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    out = to_json(results, dev_desc, args.quick)
    out.update(env)
    out["compile_s"] = compiled.compile_seconds() if env["kernels"] == "compiled" else None
    out["wall_s"] = time.perf_counter() - t_start
    if args.json_path:
        pathlib.Path(args.json_path).write_text(json.dumps(out, indent=2, default=str))
        console.log(f"wrote {args.json_path}")
    failed = [t for t in out["targets"] if t["pass"] is False]
    return 1 if args.strict and failed else 0
