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
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from inference import compiled, kernels
from inference.adapters.cache import AdapterCache, CacheBudgets
from inference.adapters.weights import linear_shapes
from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.errors import InferenceError
from inference.lora import LoraPool
from node.bench.baselines import peft_model, run_hf_cb, run_hf_static, run_peft_sequential
from node.bench.serving_vllm import json_keys
from node.bench.workload import SEED, Work, build_model, workload, zipf_choices

__all__ = ["MODELS", "main"]

logger = logging.getLogger(__name__)

MODELS: dict[str, dict[str, int]] = {
    "small": {"hidden": 512, "layers": 8, "heads": 8, "intermediate": 1408, "vocab": 8192},
    "medium": {"hidden": 2048, "layers": 4, "heads": 16, "intermediate": 5632, "vocab": 32000},
}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass
class Result:
    """Measured rows of one model."""

    model: str
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, label: str, tok_s: float | None, note: str = "") -> None:
        self.rows[key] = {"label": label, "tok_s": tok_s, "note": note}

    def best(self, key: str, tok_s: float) -> None:
        """Keep the faster of two measurements of a row."""
        row = self.rows[key]
        row["tok_s"] = max(row["tok_s"] or 0.0, tok_s)

    def tok(self, key: str) -> float | None:
        row = self.rows.get(key)
        return None if row is None else row["tok_s"]


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


_CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "avx512_fp16", "amx_bf16", "amx_tile", "asimd", "sve")


def environment(device: str) -> dict[str, Any]:
    """What ran: the kernel path, the CPU (model, the SIMD flags that matter here, torch's dispatch level), torch."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() in ("flags", "Features"):  # x86 / arm64 spelling; the first CPU stands for all
                flags = set(value.split())
                break
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    env: dict[str, Any] = {
        "kernels": kernels.selected(),
        "kernels_requested": kernels.mode(),
        "cpu": {"model": model, "flags": [f for f in _CPU_FLAGS if f in flags], "torch_capability": capability,
                "cores": os.cpu_count()},
        "torch_version": torch.__version__,
    }
    if device.startswith("cuda"):
        env["cuda"] = {"device": torch.cuda.get_device_name(), "version": torch.version.cuda}
    return env


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

    fwd = LlamaForward(base.model, 8)
    dev, dt = fwd.device, fwd.dtype
    layer_w = [w for lw in fwd.layers for w in (lw.wqkv, lw.wo, lw.wgu, lw.wdown)]
    memo: dict[tuple[int, bool], float] = {}

    def gemm_s(rows: int, head: bool) -> float:
        """Best of `reps` for the layer GEMMs (head=False) or lm_head alone (head=True) at `rows` rows."""
        if (rows, head) in memo:
            return memo[(rows, head)]
        weights = [fwd.lm_head] if head else layer_w
        xs = {w.shape[1]: torch.randn(rows, w.shape[1], device=dev, dtype=dt) for w in weights}
        best = float("inf")
        with torch.inference_mode():
            for _ in range(reps):
                _sync(dev)
                t0 = time.perf_counter()
                for w in weights:
                    F.linear(xs[w.shape[1]], w)
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
                threads: int | None = None) -> Result:
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
        peer_rows(res, model, work, lambda i: fac.path("u", i, 16), lambda p: run_ours(base, work, p, dtype=dtype)
                  ["tok_s"], device=device, dtype=str(dtype)[6:], root=root / name, step=step, threads=threads)
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


# ===================================================================================================== REPORT


def _targets(res: Result) -> list[tuple[str, str, float | None, float, bool | None]]:
    """(row key, description, measured ratio, needed, pass) for the issue's targets (small model)."""
    m32 = res.tok("mixed_32")

    def ratio(key: str) -> float | None:
        other = res.tok(key)
        return None if m32 is None or not other else m32 / other

    zipf, base = res.tok("zipf1000"), res.tok("base")
    out: list[tuple[str, str, float | None, float, bool | None]] = []
    for key, desc, need in (("hf_static", "32 adapters / transformers static", 2.0),
                            ("peft_mixed", "32 adapters / peft mixed", 3.5),
                            ("base", "32 adapters / ours base", 0.9),
                            ("roofline", "32 adapters / roofline", 0.6)):
        r = ratio(key)
        out.append(("mixed_32", desc, r, need, None if r is None else r >= need))
    m32h, baseh, roof = res.tok("mixed_32_half"), res.tok("base_half"), res.tok("roofline")
    if m32h is not None:  # the fp16-storage variant (not the fp32 targets; reported beside them)
        for other, desc, need in ((baseh, "fp16 storage: 32 adapters / its base", 0.9),
                                  (roof, "fp16 storage: 32 adapters / roofline", 0.6)):
            r = None if not other else m32h / other
            out.append(("mixed_32_half", desc, r, need, None if r is None else r >= need))
    zr = None if zipf is None or not base else zipf / base
    out.append(("zipf1000", "Zipf-1000 / ours base", zr, 0.8, None if zr is None else zr >= 0.8))
    cl = res.extra.get("cold_load_ms_p50")
    out.append(("cold_load", "cold load p50 ms <= 20", cl, 20.0, None if cl is None else cl <= 20.0))
    return out


def _print(res: Result, device: str) -> None:
    from rich.console import Console
    from rich.table import Table

    base, hf = res.tok("base"), res.tok("hf_static")
    targets = _targets(res) if res.model == "small" else []
    tt = Table(title=f"targets: {res.model} model")
    for col in ("check", "measured", "needed", "pass"):
        tt.add_column(col)
    for _, d, r, n, ok in targets:
        tt.add_row(d, "-" if r is None else f"{r:.2f}", f"{n}", "-" if ok is None else ("PASS" if ok else "FAIL"))
    t = Table(title=f"serving bench: {res.model} model on {device}")
    for col in ("row", "tok/s", "x base-only", "x hf static", "target (>= x of)", "pass", "note"):
        t.add_column(col)
    for key, row in res.rows.items():
        v = row["tok_s"]
        tgt = [(d, r, n, ok) for k, d, r, n, ok in targets if k == key]
        target = "; ".join(f"{d.split(' / ')[1]} x{n}" for d, _, n, _ in tgt if " / " in d)
        passed = "" if not tgt else " ".join("PASS" if ok else "FAIL" for *_, ok in tgt)
        t.add_row(row["label"], "-" if v is None else f"{v:.1f}",
                  "-" if v is None or not base else f"{v / base:.2f}",
                  "-" if v is None or not hf else f"{v / hf:.2f}", target, passed, row["note"])
    Console(width=200).print(t)
    if targets:
        Console(width=200).print(tt)
    e = res.extra
    if "ttft_ms_p50" not in e:  # --peers: no latency rows
        return
    extra = Table(title=f"latency and memory: {res.model}")
    for col in ("metric", "value", "target", "pass"):
        extra.add_column(col)
    extra.add_row("TTFT p50 / p99 ms (online, Poisson at 80% capacity)",
                  f"{e['ttft_ms_p50']:.1f} / {e['ttft_ms_p99']:.1f} ({e['online_n']} req, {e['rate_rps']:.2f} req/s)",
                  "", "")
    cl_ok = e["cold_load_ms_p50"] <= 20.0
    extra.add_row("cold load ms p50 / p99 (disk -> device)",
                  f"{e['cold_load_ms_p50']:.1f} / {e['cold_load_ms_p99']:.1f} ({e['cold_n']} adapters)",
                  "p50 <= 20" if res.model == "small" else "", ("PASS" if cl_ok else "FAIL") if res.model == "small"
                  else "")
    extra.add_row("bytes per resident adapter (device / host / disk)",
                  f"{e['bytes_per_adapter']} / {e['host_bytes_per_adapter']} / {e['disk_bytes_per_adapter']}", "", "")
    extra.add_row("rank padding bytes per adapter (r16)", str(e["padding_bytes_per_adapter"]), "", "")
    Console(width=200).print(extra)


def _json(results: dict[str, Result], device: str, quick: bool) -> dict[str, Any]:
    def flat(res: Result) -> dict[str, Any]:
        tk = res.tok
        return {
            "roofline_tok_s": tk("roofline"), "base_tok_s": tk("base"),
            "mixed_tok_s": {str(k): tk(f"mixed_{k}") for k in (1, 8, 32, 256)},
            "mixed_rank_32_tok_s": tk("mixed_rank_32"), "zipf1000_tok_s": tk("zipf1000"),
            "base_half_storage_tok_s": tk("base_half"), "mixed32_half_storage_tok_s": tk("mixed_32_half"),
            "hf_static_base_tok_s": tk("hf_static"), "hf_cb_base_tok_s": tk("hf_cb"),
            "peft_mixed_tok_s": tk("peft_mixed"), "peft_sequential_tok_s": tk("peft_sequential"),
            "ttft_ms_p50": res.extra.get("ttft_ms_p50"), "ttft_ms_p99": res.extra.get("ttft_ms_p99"),
            "cold_load_ms_p50": res.extra.get("cold_load_ms_p50"),
            "cold_load_ms_p99": res.extra.get("cold_load_ms_p99"),
            "bytes_per_adapter": res.extra.get("bytes_per_adapter"),
            "host_bytes_per_adapter": res.extra.get("host_bytes_per_adapter"),
            "padding_bytes_per_adapter": res.extra.get("padding_bytes_per_adapter"),
            "rows": res.rows,
        } | (json_keys(tk, res.extra) if "vllm_startup_s" in res.extra else {})

    first = results.get("small") or next(iter(results.values()))
    out = flat(first)
    out.update({
        "device": device, "quick": quick, "torch_threads": torch.get_num_threads(),
        "model": first.model,
        "targets": [{"row": k, "check": d, "value": r, "need": n, "pass": ok} for k, d, r, n, ok in _targets(first)],
        "models": {name: flat(r) for name, r in results.items()},
    })
    return out


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
    ap.add_argument("--backends", default="loraledger",
                    help="comma list of loraledger,vllm: vllm adds vLLM's rows on the same weights and workload "
                         "(run from .venv-vllm, `make setup-vllm`); our rows always run")
    ap.add_argument("--peers", action="store_true", help="only base and 32 adapters, ours and vLLM's (with "
                    "--backends loraledger,vllm) interleaved, best of 3: the backend comparison, much shorter")
    ap.add_argument("--kernels", default=None, choices=kernels.CHOICES,
                    help=f"kernel path (sets {kernels.ENV}; default: its value, else auto = native where the CPU "
                         "has AVX-512 and the extension was built, else torch); compiled = torch.compile of the "
                         "portable path, its compile time reported apart")
    args = ap.parse_args(argv)
    if args.kernels is not None:
        os.environ[kernels.ENV] = args.kernels
    try:
        env = environment(args.device)
    except InferenceError as e:  # a bad LORALEDGER_KERNELS value, or native asked for where it cannot run
        ap.error(str(e))
    threads = args.threads if args.threads is not None else (1 if args.device == "cpu" else 0)
    if threads:
        torch.set_num_threads(threads)
    dtype = getattr(torch, args.dtype)
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
    dev_desc += f", {args.dtype}, {torch.get_num_threads()} threads, kernels {env['kernels']}"

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
                                     requests=args.requests, vllm="vllm" in backends,
                                     peers=args.peers, threads=threads)
            _print(results[m], dev_desc)
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    out = _json(results, dev_desc, args.quick)
    out.update(env)
    out["compile_s"] = compiled.compile_seconds() if env["kernels"] == "compiled" else None
    out["wall_s"] = time.perf_counter() - t_start
    if args.json_path:
        pathlib.Path(args.json_path).write_text(json.dumps(out, indent=2, default=str))
        console.log(f"wrote {args.json_path}")
    failed = [t for t in out["targets"] if t["pass"] is False]
    return 1 if args.strict and failed else 0
