"""The serving bench's report: measured rows (`Result`), the issue's targets, the tables and the JSON.

With vLLM's rows present, one more table gives the ratios issue 24 sets targets on: ours base-only / vLLM base-only,
ours 32 adapters / vLLM 32 adapters, ours 32 adapters / ours base-only (and vLLM's own), plus ours base-only on
plain `F.linear` GEMMs against the selected GEMM path where `--peers` measured both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from node.bench.serving_vllm import json_keys

__all__ = ["Result", "peer_ratios", "print_model", "targets", "to_json"]


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


def targets(res: Result) -> list[tuple[str, str, float | None, float, bool | None]]:
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


def print_model(res: Result, device: str) -> None:
    from rich.console import Console
    from rich.table import Table

    """The rows of one model, its targets (small model), the vLLM ratios where vLLM ran, latency and memory."""
    base, hf = res.tok("base"), res.tok("hf_static")
    tgts = targets(res) if res.model == "small" else []
    tt = Table(title=f"targets: {res.model} model")
    for col in ("check", "measured", "needed", "pass"):
        tt.add_column(col)
    for _, d, r, n, ok in tgts:
        tt.add_row(d, "-" if r is None else f"{r:.2f}", f"{n}", "-" if ok is None else ("PASS" if ok else "FAIL"))
    t = Table(title=f"serving bench: {res.model} model on {device}")
    for col in ("row", "tok/s", "x base-only", "x hf static", "target (>= x of)", "pass", "note"):
        t.add_column(col)
    for key, row in res.rows.items():
        v = row["tok_s"]
        tgt = [(d, r, n, ok) for k, d, r, n, ok in tgts if k == key]
        target = "; ".join(f"{d.split(' / ')[1]} x{n}" for d, _, n, _ in tgt if " / " in d)
        passed = "" if not tgt else " ".join("PASS" if ok else "FAIL" for *_, ok in tgt)
        t.add_row(row["label"], "-" if v is None else f"{v:.1f}",
                  "-" if v is None or not base else f"{v / base:.2f}",
                  "-" if v is None or not hf else f"{v / hf:.2f}", target, passed, row["note"])
    Console(width=200).print(t)
    if tgts:
        Console(width=200).print(tt)
    ratios = peer_ratios(res)
    if ratios:
        pt = Table(title=f"ours vs vLLM: {res.model} model (issue 24)")
        for col in ("ratio", "value"):
            pt.add_column(col)
        for k, v in ratios.items():
            pt.add_row(k, "-" if v is None else f"{v:.2f}")
        Console(width=200).print(pt)
    e = res.extra
    if "ttft_ms_p50" not in e:  # --peers: no latency or memory rows
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


def peer_ratios(res: Result) -> dict[str, float | None]:
    """Issue 24's ratios where vLLM's rows ran (empty otherwise); None where a row is missing."""
    if res.tok("vllm_base") is None:
        return {}

    def r(a: str, b: str) -> float | None:
        x, y = res.tok(a), res.tok(b)
        return None if x is None or not y else x / y

    out = {"ours base / vLLM base": r("base", "vllm_base"),
           "ours 32 adapters / vLLM 32 adapters": r("mixed_32", "vllm_mixed_32"),
           "ours 32 adapters / ours base": r("mixed_32", "base"),
           "vLLM 32 adapters / vLLM base": r("vllm_mixed_32", "vllm_base")}
    if res.tok("base_plain") is not None:
        out |= {"ours base, plain F.linear / vLLM base": r("base_plain", "vllm_base"),
                "ours base: selected GEMM / plain F.linear": r("base", "base_plain")}
    if res.tok("vllm_base_nolora") is not None:
        out |= {"ours base / vLLM base, LoRA disabled": r("base", "vllm_base_nolora"),
                "vLLM base, LoRA on / LoRA disabled": r("vllm_base", "vllm_base_nolora")}
    return out


def to_json(results: dict[str, Result], device: str, quick: bool) -> dict[str, Any]:
    """The JSON of a run: the first model's keys at the top level (small when it ran), every model under `models`."""

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
            "rows": res.rows, "peer_ratios": peer_ratios(res),
        } | (json_keys(tk, res.extra) if "vllm_startup_s" in res.extra else {})

    first = results.get("small") or next(iter(results.values()))
    out = flat(first)
    out.update({
        "device": device, "quick": quick, "torch_threads": torch.get_num_threads(),
        "model": first.model,
        "targets": [{"row": k, "check": d, "value": r, "need": n, "pass": ok} for k, d, r, n, ok in targets(first)],
        "models": {name: flat(r) for name, r in results.items()},
    })
    return out
