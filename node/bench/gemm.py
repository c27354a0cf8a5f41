"""`loraledger bench gemm`: the base model's weight GEMMs per kernel choice, at decode and prefill row counts.

One model size's weight matmuls (`node.bench.serving.MODELS`: every layer's fused q/k/v, o, fused gate/up and
down, with distinct weights per layer as in the model, then lm_head), run in forward order at M rows: decode
batches 1, 8, 32, 64 and a prefill wave of 256 tokens. Choices, all measured in the same run, interleaved:

- ``plain``: `F.linear` on the row-major fp32 weight (MKL sgemm in torch's x86 builds): the engine's path under
  ``LORALEDGER_GEMM=plain`` and the baseline every ratio is taken against;
- ``onednn``: oneDNN with the weight packed once (`torch.ops.mkldnn._reorder_linear_weight`, then
  `_linear_pointwise`) at every row count;
- ``engine``: the engine's `inference.gemm.Linear` on its default path: the packed oneDNN kernel, except at the row
  counts where plain sgemm measured faster (`gemm.PLAIN_ROWS_AT_MOST`, `gemm.PLAIN_ROWS_FROM`);
- ``mkldnn_linear``: `torch._C._nn.mkldnn_linear` on `to_mkldnn` weights, the input converted to and from the
  mkldnn layout on every call (what calling oneDNN from eager torch costs without the packed op);
- ``mkl_packed``: MKL's packed sgemm (`torch.ops.mkl._mkl_linear`), packed for exactly M rows (it falls back to
  plain sgemm at any other row count, so a serving engine would need one packed copy per batch size);
- ``compiled``: `torch.compile(mode="max-autotune-no-cudagraphs")` with `torch._inductor.config.freezing` (which
  packs the weights) over the same sequence of matmuls, one graph per M (its compile time is reported apart);
- ``bf16``: bf16 weights with fp32 accumulation (oneDNN), only where the CPU computes bf16 natively (AVX-512 BF16
  or AMX); elsewhere the row says it was skipped and why.

Prints µs per forward's GEMMs and each choice's speed-up over plain per M, and per-shape µs; `--json PATH` writes
the same. vLLM's CPU linear layers (`vllm.model_executor.layers.utils.dispatch_cpu_unquantized_gemm`) use oneDNN
matmuls with pre-packed weights from vLLM's own extension (`torch.ops._C.create_onednn_mm` / `onednn_mm`), which
exists only where vLLM is installed: the ``onednn`` row is the same kind of kernel through torch's own oneDNN.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from inference import gemm
from node.bench.machine import environment, run_cpu_bench
from node.bench.serving import MODELS

__all__ = ["main"]

ROWS = (1, 8, 32, 64, 256)
SHAPES = ("qkv", "o", "gate_up", "down", "lm_head")
CHOICES = ("plain", "onednn", "engine", "mkldnn_linear", "mkl_packed", "compiled", "bf16")

Call = Callable[[torch.Tensor], torch.Tensor]


def _weights(spec: dict[str, int], seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """(shape name, [out, in] fp32 weight) in forward order: every layer's four, then lm_head."""
    h, inter, vocab = spec["hidden"], spec["intermediate"], spec["vocab"]
    g = torch.Generator().manual_seed(seed)

    def w(out: int, inp: int) -> torch.Tensor:
        return torch.randn(out, inp, generator=g) * inp ** -0.5

    out: list[tuple[str, torch.Tensor]] = []
    for _ in range(spec["layers"]):
        out += [("qkv", w(3 * h, h)), ("o", w(h, h)), ("gate_up", w(2 * inter, h)), ("down", w(h, inter))]
    return out + [("lm_head", w(vocab, h))]


def _bf16_status() -> tuple[bool, str]:
    flags = set(environment("cpu")["cpu"]["flags"])
    if not ({"avx512_bf16", "amx_bf16"} & flags):
        return False, "skipped: this CPU has neither AVX-512 BF16 nor AMX (bf16 would be emulated, slower than fp32)"
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False, "skipped: torch's oneDNN reports no bf16 support here"
    return True, ""


class _Choice:
    """One GEMM choice's callables for the model's weights (built per M where the choice is M-specific)."""

    def __init__(self, name: str, weights: list[tuple[str, torch.Tensor]]) -> None:
        self.name = name
        self.weights = weights
        self.calls: list[Call] | None = None
        self.per_m = name in ("mkl_packed", "compiled")
        self.compile_s = 0.0
        self.whole: Callable[[dict[int, torch.Tensor]], list[torch.Tensor]] | None = None
        if not self.per_m:
            self.calls = [self._make(w, 0) for _, w in weights]

    def _make(self, w: torch.Tensor, m: int) -> Call:
        if self.name == "plain":
            return lambda x: F.linear(x, w)
        if self.name in ("onednn", "engine"):
            lin = gemm.Linear(w, None, "onednn")
            lin.by_rows = lin.by_rows and self.name == "engine"
            return lin
        if self.name == "mkldnn_linear":
            wm = w.to_mkldnn()
            return lambda x: torch._C._nn.mkldnn_linear(x.to_mkldnn(), wm, None).to_dense()
        if self.name == "mkl_packed":
            packed = torch.ops.mkl._mkl_reorder_linear_weight(w, m)
            return lambda x: torch.ops.mkl._mkl_linear(x, packed, w, None, m)
        if self.name == "bf16":
            packed = torch.ops.mkldnn._reorder_linear_weight(w.to(torch.bfloat16), 64)
            return lambda x: torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), packed, None, "none", [],
                                                                "").float()
        raise ValueError(self.name)

    def for_rows(self, m: int) -> list[Call]:
        """The callables at M rows (M-specific choices are rebuilt, the previous M's copies freed first)."""
        if not self.per_m:
            assert self.calls is not None
            return self.calls
        self.calls = None
        if self.name == "mkl_packed":
            self.calls = [self._make(w, m) for _, w in self.weights]
            return self.calls
        return self._compiled(m)

    def _compiled(self, m: int) -> list[Call]:
        """One graph over the whole sequence at M rows; reported as one call (per-shape times are not separable)."""
        import torch._inductor.config as inductor_config

        self.whole = None  # the previous M's graph and its frozen (packed) weights go first
        mods = torch.nn.ModuleList()
        for _, w in self.weights:
            mod = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, device="meta")
            mod.weight = torch.nn.Parameter(w, requires_grad=False)  # shares the weight, no copy
            mods.append(mod)
        mods.eval()

        dims = [w.shape[1] for _, w in self.weights]

        def seq(xs: dict[int, torch.Tensor]) -> list[torch.Tensor]:
            return [mod(xs[d]) for mod, d in zip(mods, dims, strict=True)]

        with inductor_config.patch(freezing=True):
            fn = torch.compile(seq, mode="max-autotune-no-cudagraphs", dynamic=False)
            xs = {w.shape[1]: torch.randn(m, w.shape[1]) for _, w in self.weights}
            t0 = time.perf_counter()
            with torch.no_grad():
                fn(xs)
            self.compile_s += time.perf_counter() - t0
        self.whole = fn
        return []


def _time_choice(choice: _Choice, m: int, xs: dict[int, torch.Tensor], reps: int) -> tuple[float, dict[str, float]]:
    """Best-of-`reps` wall seconds of the whole sequence at M rows, and that rep's seconds per shape name."""
    calls = choice.for_rows(m)
    best, best_parts = float("inf"), {}
    with torch.no_grad():
        for r in range(reps + 1):  # the first pass warms oneDNN's primitive cache and the weights into cache
            parts = dict.fromkeys(SHAPES, 0.0)
            t_all = time.perf_counter()
            if choice.whole is not None:
                choice.whole(xs)
            else:
                for (shape, w), call in zip(choice.weights, calls, strict=True):
                    t0 = time.perf_counter()
                    call(xs[w.shape[1]])
                    parts[shape] += time.perf_counter() - t0
            total = time.perf_counter() - t_all
            if r and total < best:
                best, best_parts = total, parts
    return best, best_parts


def _check(choice: _Choice, weights: list[tuple[str, torch.Tensor]]) -> float:
    """Max |difference| from plain over every shape at 8 rows (0 for plain and compiled)."""
    if choice.name in ("plain", "compiled"):
        return 0.0
    calls = choice.for_rows(8)
    worst = 0.0
    with torch.no_grad():
        for (_, w), call in zip(weights, calls, strict=True):
            x = torch.randn(8, w.shape[1])
            worst = max(worst, float((call(x) - F.linear(x, w)).abs().max()))
    return worst


def run(model: str, rows: tuple[int, ...], choices: list[str], reps: int, progress: Callable[[str], None]
        ) -> dict[str, Any]:
    """Every choice at every M; results keyed choice -> M."""
    weights = _weights(MODELS[model])
    skipped: dict[str, str] = {}
    if "bf16" in choices:
        ok, why = _bf16_status()
        if not ok:
            skipped["bf16"] = why
    built: dict[str, _Choice] = {}
    for name in choices:
        if name in skipped:
            continue
        progress(f"building {name}")
        try:
            built[name] = _Choice(name, weights)
        except RuntimeError as e:  # an op this torch build lacks is a row result, not a bench failure
            skipped[name] = f"failed: {str(e).splitlines()[0][:160]}"
    out: dict[str, Any] = {"model": model, "rows": list(rows), "skipped": skipped, "results": {},
                           "max_abs_diff_vs_plain": {}}
    for name, c in built.items():
        if name != "compiled":
            out["max_abs_diff_vs_plain"][name] = _check(c, weights)
    for m in rows:
        xs = {d: torch.randn(m, d) for d in {w.shape[1] for _, w in weights}}
        for name, c in built.items():  # interleaved: every choice at this M before the next M
            progress(f"M={m}: {name}")
            try:
                total, parts = _time_choice(c, m, xs, reps)
            except RuntimeError as e:
                skipped[name] = f"failed at M={m}: {str(e).splitlines()[0][:160]}"
                continue
            out["results"].setdefault(name, {})[str(m)] = {"us": total * 1e6,
                                                          "shape_us": {k: v * 1e6 for k, v in parts.items()}}
    for name in list(built):
        if name in skipped:
            out["results"].pop(name, None)
    if "compiled" in built:
        out["compile_s"] = built["compiled"].compile_s
    return out


def _print(out: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    res = out["results"]
    plain = res.get("plain", {})
    t = Table(title=f"{title}: µs per forward's weight GEMMs (x plain = speed-up over F.linear)")
    t.add_column("M")
    for name in res:
        t.add_column(f"{name} µs")
        if name != "plain":
            t.add_column(f"{name} x plain")
    for m in out["rows"]:
        cells = [str(m)]
        for name, by_m in res.items():
            r = by_m.get(str(m))
            cells.append("-" if r is None else f"{r['us']:.0f}")
            if name != "plain":
                p = plain.get(str(m))
                cells.append("-" if r is None or p is None else f"{p['us'] / r['us']:.2f}")
        t.add_row(*cells)
    console = Console(width=220)
    console.print(t)
    s = Table(title="µs per shape (summed over layers), plain / onednn")
    s.add_column("M")
    for shape in SHAPES:
        s.add_column(shape)
    for m in out["rows"]:
        pr, orow = plain.get(str(m)), res.get("onednn", {}).get(str(m))
        if pr is None or orow is None:
            continue
        s.add_row(str(m), *(f"{pr['shape_us'][k]:.0f} / {orow['shape_us'][k]:.0f}" for k in SHAPES))
    console.print(s)
    for name, why in out["skipped"].items():
        console.print(f"{name}: {why}")
    for name, d in out["max_abs_diff_vs_plain"].items():
        console.print(f"{name}: max |y - plain| = {d:.2e}")
    if "compile_s" in out:
        console.print(f"compiled: {out['compile_s']:.1f} s compiling (not in the timings)")


def main(argv: list[str]) -> int:
    """Run the GEMM bench; prints tables, writes JSON with --json PATH. Returns 0."""
    ap = argparse.ArgumentParser(prog="loraledger bench gemm", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="medium", choices=tuple(MODELS), help="model size (default medium)")
    ap.add_argument("--rows", default=",".join(map(str, ROWS)), help="comma list of M (rows per GEMM)")
    ap.add_argument("--choices", default=",".join(CHOICES), help=f"comma list of {','.join(CHOICES)}")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--reps", type=int, default=5, help="timed passes per choice and M (best kept)")
    ap.add_argument("--quick", action="store_true", help="M 1 and 64, 3 passes, no compiled row")
    ap.add_argument("--json", dest="json_path", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    choices = args.choices.split(",")
    bad = [c for c in choices if c not in CHOICES]
    if bad:
        ap.error(f"unknown choice {bad[0]!r}: choose from {', '.join(CHOICES)}")
    try:
        rows = tuple(int(r) for r in args.rows.split(","))
    except ValueError:
        ap.error(f"--rows {args.rows!r}: a comma list of positive integers, e.g. 1,8,32,64,256")
    if any(r < 1 for r in rows):
        ap.error(f"--rows {args.rows!r}: every M must be >= 1")
    if args.threads < 1:
        ap.error(f"--threads {args.threads} must be >= 1")
    if args.quick:
        rows, choices, args.reps = (1, 64), [c for c in choices if c != "compiled"], 3
    torch.set_num_threads(args.threads)
    return run_cpu_bench(lambda progress: run(args.model, rows, choices, args.reps, progress), _print,
                         f"{args.model} model", args.json_path)
