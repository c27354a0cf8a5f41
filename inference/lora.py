"""Batched multi-adapter LoRA: the device tier's weight pool and the per-step routing that applies it to a batch.

Math, per target linear ``y = x @ W.T`` of a row whose adapter sits in slot ``s``::

    y += (x @ A[s].T) @ (scale[s] * B[s]).T

The pool keeps one preallocated stack per rank bucket and per (layer, module): ``A.T [capacity, in, r]`` and
``B.T [capacity, r, out]``, the adapter's scaling folded into B at load time. Ranks are rounded up to a power of two
(min 4): ranks 8/16/64 pay no padding, other ranks pay the measured `padding_bytes`.

A step's routing is built once (`LoraPool.routing`): per bucket present in the batch, the LoRA rows sorted by slot.
Every layer and module then reuses it: one gather of the rows, two matmuls straight over the pool stacks (no per-row
weight copies) and one scatter-add back. The two matmuls are either a slot-major `torch.bmm` (rows padded to the
busiest slot's count; decode steps, where each slot has a row or two) or the segment matmul `torch._grouped_mm`
(SGMV, Punica-style; no padding; prefill and skewed popularity). No Python loop over adapters, and rows without an
adapter are never touched (a batch of base-only rows has no routing at all).

Rows are given as "segments": a decode row is a segment of one token, a prefill row a segment of its prompt tokens.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field

import torch

from inference.errors import InferenceError

__all__ = ["LoraPool", "LoraRouting", "PoolSlot", "Segment", "UnsupportedTargetModule", "bucket_rank"]

logger = logging.getLogger(__name__)

MIN_BUCKET = 4
PADDED_ROWS_PER_SLOT = 25  # slot-major bmm while its padding stays under this many rows per slot (see routing)


class UnsupportedTargetModule(InferenceError, ValueError):
    """The adapter targets a module the engine's forward does not apply LoRA to (only Llama linear layers)."""


def bucket_rank(rank: int) -> int:
    """The pool bucket of a rank: the next power of two, at least 4 (8, 16 and 64 stay exact)."""
    r = MIN_BUCKET
    while r < rank:
        r *= 2
    return r


@dataclass(frozen=True)
class PoolSlot:
    """Where one adapter lives in the device pool: its rank bucket and index in that bucket's stacks."""

    bucket: int
    index: int


@dataclass(frozen=True)
class Segment:
    """`length` consecutive rows of the step's flat activations, starting at `start`, all using `slot`."""

    slot: PoolSlot
    start: int
    length: int


@dataclass
class _Group:
    bucket: int
    n_groups: int  # G: slots 0..G-1 of the bucket's stacks take part (the highest slot used this step + 1)
    rows: torch.Tensor  # [n] long: rows of x using this bucket, sorted by slot
    offs: torch.Tensor | None  # [G] int32 end offsets of each slot's rows: segment matmul mode
    per_slot: int  # m: padded rows per slot (slot-major bmm mode)
    gidx: torch.Tensor | None  # [G * m] long: row of x for each padded position (padding repeats a real row)
    pos: torch.Tensor | None  # [n] long: padded position of each sorted row


@dataclass
class LoraRouting:
    """Which rows use which pool slots in this step; built once per step, used by every layer and module."""

    groups: list[_Group] = field(default_factory=list)
    lora_rows: int = 0
    padded_rows: int = 0  # rows computed and dropped by the slot-major bmm (the padding cost, measured)


@dataclass
class _Bucket:
    rank: int
    capacity: int
    a: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)  # [capacity, in, r] (A transposed)
    b: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)  # [capacity, r, out] (B transposed)
    free: list[int] = field(default_factory=list)
    used: int = 0


class LoraPool:
    """Preallocated per-bucket stacks of LoRA weights on the compute device (the cache's device tier storage)."""

    def __init__(
        self,
        shapes: dict[str, tuple[int, int]],
        n_layers: int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        initial_capacity: int = 8,
    ) -> None:
        self.shapes = dict(shapes)  # module -> (in_features, out_features)
        self.n_layers = n_layers
        self.device = torch.device(device)
        self.dtype = dtype
        self.initial_capacity = initial_capacity
        self._buckets: dict[int, _Bucket] = {}
        self.modules_present: set[str] = set()
        self.grouped = _grouped_mm_works(self.device, dtype)  # segment matmuls available (else slot-major bmm only)

    # ---------------------------------------------------------------- sizes

    def slot_nbytes(self, rank: int, target_modules: tuple[str, ...]) -> int:
        """Bytes one adapter occupies in the pool: bucket rank x (in + out) per targeted module and layer."""
        r = bucket_rank(rank)
        esize = torch.empty((), dtype=self.dtype).element_size()
        return sum(r * (self.shapes[m][0] + self.shapes[m][1]) for m in target_modules) * self.n_layers * esize

    def padding_bytes(self, rank: int, target_modules: tuple[str, ...]) -> int:
        """Bytes of zero padding an adapter of `rank` carries in the pool (0 for power-of-two ranks >= 4)."""
        esize = torch.empty((), dtype=self.dtype).element_size()
        exact = sum(rank * (self.shapes[m][0] + self.shapes[m][1]) for m in target_modules) * self.n_layers * esize
        return self.slot_nbytes(rank, target_modules) - exact

    @property
    def allocated_bytes(self) -> int:
        """Bytes of every stack the pool holds now (capacity, not occupancy)."""
        return sum(t.numel() * t.element_size() for bk in self._buckets.values()
                   for d in (bk.a, bk.b) for t in d.values())

    # ---------------------------------------------------------------- slots

    def alloc(self, rank: int, a: dict[tuple[int, str], torch.Tensor], b: dict[tuple[int, str], torch.Tensor],
              scaling: float, target_modules: tuple[str, ...]) -> PoolSlot:
        """Copy one adapter's A/B (B scaled) into a free slot of its bucket and return the slot."""
        for m in target_modules:
            if m not in self.shapes:
                raise UnsupportedTargetModule(f"LoRA on {m!r} is not supported by the engine: target only "
                                              f"{', '.join(self.shapes)}")
        r = bucket_rank(rank)
        bk = self._buckets.get(r)
        if bk is None:
            bk = self._buckets[r] = _Bucket(rank=r, capacity=0)
        if not bk.free:
            self._grow(bk, max(self.initial_capacity, 2 * bk.capacity))
        for m in target_modules:
            if m not in self.modules_present or (0, m) not in bk.a:
                self._add_module(bk, m)
        idx = heapq.heappop(bk.free)  # lowest free slot: keeps the slots a step touches (0..G-1) compact
        bk.used += 1
        for (layer, m), ta in bk.a.items():
            tb = bk.b[(layer, m)]
            key = (layer, m)
            if key in a:
                ta[idx].zero_()
                tb[idx].zero_()
                ta[idx, :, :rank].copy_(a[key].T)
                tb[idx, :rank].copy_((b[key] * scaling).T)
            else:
                ta[idx].zero_()
                tb[idx].zero_()
        return PoolSlot(bucket=r, index=idx)

    def reserve(self, rank: int, target_modules: tuple[str, ...], capacity: int) -> None:
        """Preallocate a bucket's stacks for `capacity` adapters (startup), so that no step pays for growth."""
        bk = self._buckets.get(bucket_rank(rank))
        if bk is None:
            bk = self._buckets[bucket_rank(rank)] = _Bucket(rank=bucket_rank(rank), capacity=0)
        if bk.capacity < capacity:
            self._grow(bk, capacity)
        for m in target_modules:
            if (0, m) not in bk.a:
                self._add_module(bk, m)

    def free(self, slot: PoolSlot) -> None:
        """Return a slot to its bucket (weights stay until overwritten; nothing routes to a free slot)."""
        bk = self._buckets[slot.bucket]
        heapq.heappush(bk.free, slot.index)
        bk.used -= 1

    def _grow(self, bk: _Bucket, capacity: int) -> None:
        old = bk.capacity
        for key, t in list(bk.a.items()):
            na = torch.zeros((capacity, *t.shape[1:]), device=self.device, dtype=self.dtype)
            na[:old].copy_(t)
            bk.a[key] = na
            tb = bk.b[key]
            nb = torch.zeros((capacity, *tb.shape[1:]), device=self.device, dtype=self.dtype)
            nb[:old].copy_(tb)
            bk.b[key] = nb
        for i in range(old, capacity):
            heapq.heappush(bk.free, i)
        bk.capacity = capacity
        logger.debug("lora pool bucket r=%d grown to %d slots", bk.rank, capacity)

    def _add_module(self, bk: _Bucket, module: str) -> None:
        self.modules_present.add(module)
        fin, fout = self.shapes[module]
        for layer in range(self.n_layers):
            if (layer, module) in bk.a:
                continue
            bk.a[(layer, module)] = torch.zeros((bk.capacity, fin, bk.rank), device=self.device, dtype=self.dtype)
            bk.b[(layer, module)] = torch.zeros((bk.capacity, bk.rank, fout), device=self.device, dtype=self.dtype)

    # ---------------------------------------------------------------- per step

    def routing(self, segments: list[Segment]) -> LoraRouting | None:
        """Sort this step's LoRA rows by (bucket, slot) into index tensors; None when no row uses an adapter.

        Per bucket it picks the cheaper kernel: a slot-major `bmm` straight over the pool stacks when padding every
        slot to its busiest slot's row count adds at most `PADDED_ROWS_PER_SLOT` rows per slot (decode steps), else
        the segment matmul `_grouped_mm` (prefill, skewed popularity), which has no padding but a per-slot cost.
        """
        if not segments:
            return None
        by_bucket: dict[int, list[Segment]] = {}
        for s in segments:
            by_bucket.setdefault(s.slot.bucket, []).append(s)
        out = LoraRouting()
        dev = self.device
        for r, segs in by_bucket.items():
            segs.sort(key=lambda s: s.slot.index)
            n_groups = segs[-1].slot.index + 1
            slot_idx = torch.tensor([s.slot.index for s in segs], dtype=torch.long)
            lens = torch.tensor([s.length for s in segs], dtype=torch.long)
            counts = torch.zeros(n_groups, dtype=torch.long).index_add_(0, slot_idx, lens)
            if all(s.length == 1 for s in segs):
                rows = torch.tensor([s.start for s in segs], dtype=torch.long)
            else:
                rows = torch.cat([torch.arange(s.start, s.start + s.length) for s in segs])
            n = rows.shape[0]
            per_slot = int(counts.max())
            # cost model measured on CPU (hidden 512, r 16): a segment matmul pays ~5 us per slot, the slot-major
            # bmm ~0.2 us per padded row, so padding up to ~25 rows per slot is still cheaper
            if self.grouped and n_groups * per_slot - n > PADDED_ROWS_PER_SLOT * n_groups:
                out.groups.append(_Group(bucket=r, n_groups=n_groups, rows=rows.to(dev),
                                         offs=torch.cumsum(counts, 0).to(torch.int32).to(dev), per_slot=0,
                                         gidx=None, pos=None))
            else:
                slot_of_row = torch.repeat_interleave(slot_idx, lens)  # [n], sorted
                first = torch.cumsum(counts, 0) - counts  # [G] first sorted row of each slot
                pos = slot_of_row * per_slot + (torch.arange(n) - first[slot_of_row])  # [n]
                gidx = torch.full((n_groups * per_slot,), int(rows[0]), dtype=torch.long)
                gidx[pos] = rows
                out.groups.append(_Group(bucket=r, n_groups=n_groups, rows=rows.to(dev), offs=None,
                                         per_slot=per_slot, gidx=gidx.to(dev), pos=pos.to(dev)))
                out.padded_rows += n_groups * per_slot - n
            out.lora_rows += n
        return out

    def apply(self, routing: LoraRouting | None, layer: int, module: str, x: torch.Tensor, y: torch.Tensor) -> None:
        """``y[rows] += lora(x[rows])`` for every routed row; x [N, in], y [N, out] (a view is fine)."""
        if routing is None or module not in self.modules_present:
            return
        for g in routing.groups:
            bk = self._buckets[g.bucket]
            a = bk.a.get((layer, module))  # [cap, in, r]
            if a is None:
                continue
            a = a[:g.n_groups]
            b = bk.b[(layer, module)][:g.n_groups]  # [G, r, out]
            if g.offs is not None:
                xs = x.index_select(0, g.rows)  # [n, in]
                t = torch._grouped_mm(xs, a, offs=g.offs)  # [n, r]
                u = torch._grouped_mm(t, b, offs=g.offs)  # [n, out]
            else:
                assert g.gidx is not None and g.pos is not None
                xs = x.index_select(0, g.gidx).view(g.n_groups, g.per_slot, x.shape[1])  # [G, m, in]
                t = torch.bmm(xs, a)  # [G, m, r]
                u = torch.bmm(t, b).view(g.n_groups * g.per_slot, -1).index_select(0, g.pos)  # [n, out]
            # rows are unique within a step, so an accumulating index_put is a scatter-add (faster than index_add_)
            y.index_put_((g.rows,), u.to(y.dtype), accumulate=True)


def _grouped_mm_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether `torch._grouped_mm` (private API, torch pinned in pyproject) runs for this device and dtype."""
    if not hasattr(torch, "_grouped_mm"):
        return False
    try:
        x = torch.ones(3, 16, device=device, dtype=dtype)
        w = torch.ones(2, 16, 8, device=device, dtype=dtype)
        y = torch._grouped_mm(x, w, offs=torch.tensor([1, 3], device=device, dtype=torch.int32))
        return bool(torch.allclose(y.float(), torch.full((3, 8), 16.0, device=device)))
    except (RuntimeError, NotImplementedError, TypeError):
        return False
