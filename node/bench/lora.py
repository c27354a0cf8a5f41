"""`loraledger bench lora`: the torch LoRA kernels of one decode step, each forced, against the routing's own choice.

A `LoraPool` with the small serving model's shapes (`node.bench.serving.MODELS`, q/k/v/o targeted, rank 16, 8
layers, 64 adapters loaded) applies one step's LoRA (every layer's q/k/v and o groups) to a batch, for step shapes
a serving engine meets:

- ``full``: 32 slots side by side, 2 rows each (the 32-adapter workload's early decode steps);
- ``one_row``: the same 32 slots, 1 row each;
- ``tail``: 12 used slots spread over a window of 32 (requests that finished left gaps);
- ``far``: 2 slots at the two ends of the window;
- ``skewed``: 1 slot with 32 rows beside 15 slots with 1 row each;
- ``uneven``: 64 rows over 28 of 32 slots, 1 to 6 rows each (a decode step of 256 queued requests over 32 adapters).

Per shape, µs per step of the slot-major bmm (over runs of used slots) and of the segment matmul (`_grouped_mm`
over the window), both forced; which one the routing picks (the cost model `inference.lora.BMM_*_US` /
`GROUPED_*_US`), and whether that was the faster. Interleaved, best of `--reps`. The pool's 64 slots hold 134 MB
(more than the last-level cache) and every step walks all 8 layers, so the bigger shapes read their stacks from
memory as the engine does; `far` and small steps can stay in cache. CPU native kernels are off here: this is the
torch path (CUDA and the portable CPU path).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

from inference.lora import LoraPool, LoraRouting, PoolSlot, Segment
from node.bench.machine import run_cpu_bench
from node.bench.serving import MODELS

__all__ = ["SHAPES", "main"]

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
RANK = 16
CAPACITY = 64
# shape -> (slot index, rows) per used slot
SHAPES: dict[str, list[tuple[int, int]]] = {
    "full": [(i, 2) for i in range(32)],
    "one_row": [(i, 1) for i in range(32)],
    "tail": [(i, 1) for i in (0, 1, 4, 7, 8, 12, 15, 19, 22, 26, 29, 31)],
    "far": [(0, 1), (31, 1)],
    "skewed": [(0, 32)] + [(i, 1) for i in range(1, 16)],
    # 64 rows of 256 queued requests over 32 adapters: 1-6 rows per slot, 4 slots unused (placed by a fixed shuffle)
    "uneven": sorted(((i * 7) % 32, n) for i, n in enumerate(
        (6, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1))),
}


def _pool(model: str, device: torch.device) -> tuple[LoraPool, int]:
    spec = MODELS[model]
    h, layers = spec["hidden"], spec["layers"]
    shapes = dict.fromkeys(TARGETS, (h, h))
    pool = LoraPool(shapes, layers, device=device, initial_capacity=CAPACITY)
    pool.native = False  # the torch path
    g = torch.Generator().manual_seed(0)
    for _ in range(CAPACITY):
        a = {(li, m): torch.randn(RANK, h, generator=g) * 0.02 for li in range(layers) for m in TARGETS}
        b = {(li, m): torch.randn(h, RANK, generator=g) * 0.02 for li in range(layers) for m in TARGETS}
        pool.alloc(RANK, a, b, 1.0, TARGETS)
    return pool, layers


def _segments(pool: LoraPool, used: list[tuple[int, int]]) -> list[Segment]:
    """Decode rows: one single-token segment per row, rows of a slot interleaved with the others' (as a batch is)."""
    bucket = pool.bucket(RANK)
    segs, row = [], 0
    depth = max(n for _, n in used)
    for k in range(depth):
        for slot, n in used:
            if k < n:
                segs.append(Segment(slot=PoolSlot(bucket=bucket, index=slot), start=row, length=1))
                row += 1
    return segs


def _kind(routing: LoraRouting) -> str:
    (g,) = routing.groups
    return "grouped" if g.offs is not None else "bmm"


@torch.inference_mode()
def run(model: str, reps: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Every shape, both kernels forced, interleaved; µs per step, best of `reps`."""
    device = torch.device("cpu")
    pool, layers = _pool(model, device)
    h = MODELS[model]["hidden"]
    out: dict[str, Any] = {"model": model, "layers": layers, "rank": RANK, "capacity": CAPACITY,
                           "pool_mb": pool.allocated_bytes / 1e6, "shapes": {}}
    for name, used in SHAPES.items():
        segs = _segments(pool, used)
        n = len(segs)
        x = torch.randn(n, h)
        y_qkv, y_o = torch.zeros(n, 3 * h), torch.zeros(n, h)
        routings = {k: pool.routing(segs, kernel=k) for k in ("bmm", "grouped")}
        chosen = pool.routing(segs)
        assert chosen is not None
        best = {k: float("inf") for k in routings}
        progress(f"{name}: {len(used)} slots, {n} rows")
        for _ in range(reps):
            for k, rt in routings.items():  # interleaved: both kernels each pass
                t0 = time.perf_counter()
                for li in range(layers):
                    pool.apply(rt, li, "qkv", x, y_qkv)
                    pool.apply(rt, li, "o", x, y_o)
                best[k] = min(best[k], time.perf_counter() - t0)
        rt_bmm = routings["bmm"]
        assert rt_bmm is not None
        picked = _kind(chosen)
        faster = min(best, key=lambda k: best[k])
        out["shapes"][name] = {"slots": len(used), "rows": n, "bmm_us": best["bmm"] * 1e6,
                               "grouped_us": best["grouped"] * 1e6, "runs": len(rt_bmm.groups[0].runs),
                               "padded_rows": rt_bmm.padded_rows, "picked": picked, "faster": faster,
                               "picked_is_faster": picked == faster,
                               "picked_over_faster": best[picked] / best[faster]}
    return out


def _print(out: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{title}: µs per decode step's LoRA (q/k/v and o of every layer), torch path")
    for col in ("shape", "slots", "rows", "bmm runs", "bmm padded rows", "bmm µs", "grouped µs", "routing picks",
                "faster", "picked ÷ faster"):
        t.add_column(col)
    for name, r in out["shapes"].items():
        t.add_row(name, str(r["slots"]), str(r["rows"]), str(r["runs"]), str(r["padded_rows"]), f"{r['bmm_us']:.0f}",
                  f"{r['grouped_us']:.0f}", r["picked"], r["faster"], f"{r['picked_over_faster']:.2f}")
    Console(width=200).print(t)


def main(argv: list[str]) -> int:
    """Run the LoRA kernel bench; prints a table, writes JSON with --json PATH. Returns 0."""
    ap = argparse.ArgumentParser(prog="loraledger bench lora", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="small", choices=tuple(MODELS), help="model size (default small)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--reps", type=int, default=20, help="timed passes per kernel and shape (best kept)")
    ap.add_argument("--quick", action="store_true", help="5 passes")
    ap.add_argument("--json", dest="json_path", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error(f"--threads {args.threads} must be >= 1")
    if args.reps < 1:
        ap.error(f"--reps {args.reps} must be >= 1")
    if args.quick:
        args.reps = 5
    torch.set_num_threads(args.threads)
    return run_cpu_bench(lambda progress: run(args.model, args.reps, progress), _print,
                         f"{args.model} model", args.json_path)
