"""Batched multi-adapter LoRA: the device tier's weight pool and the per-step routing that applies it to a batch.

Math, per target linear ``y = x @ W.T`` of a row whose adapter sits in slot ``s``::

    y += ((x @ A[s].T) @ (scale[s] * B[s]).T)

The pool keeps one preallocated stack per rank bucket and per (layer, module): ``A [capacity, r, in]`` and
``B [capacity, out, r]`` with the adapter's scaling folded into B at load time. Ranks are rounded up to a power of
two (min 4): ranks 8/16/64 pay no padding, other ranks pay the measured `padding_bytes`. A step's routing is built
once (`LoraPool.routing`) and then every layer and module reuses it: per bucket present in the batch, one gather of
the rows' A/B (`index_select` over slots), two `torch.bmm` and one `index_add_` — no Python loop over adapters, and
rows without an adapter are never gathered (a batch of base-only rows has no routing at all).

Rows are "segments": a decode row is a segment of one token, a prefill row a segment of its prompt tokens. Segments
are padded to the longest one in their bucket for the bmm (padding rows are computed and dropped, never added).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from inference.errors import InferenceError

__all__ = ["LoraPool", "LoraRouting", "PoolSlot", "Segment", "UnsupportedTargetModule", "bucket_rank"]

logger = logging.getLogger(__name__)

MIN_BUCKET = 4


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
    slots: torch.Tensor  # [S] long: slot index per segment
    gather: torch.Tensor  # [S * T] long: flat row of x for every padded position (padding repeats a valid row)
    seg_len: int  # T
    valid: torch.Tensor | None  # [n_valid] long positions in the padded [S * T] that are real rows; None: all
    dest: torch.Tensor  # [n_valid] long: flat row of y each real position adds into


@dataclass
class LoraRouting:
    """Which rows use which pool slots in this step; built once per step, used by every layer and module."""

    groups: list[_Group] = field(default_factory=list)
    lora_rows: int = 0


@dataclass
class _Bucket:
    rank: int
    capacity: int
    a: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)  # [capacity, r, in]
    b: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)  # [capacity, out, r]
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
        idx = bk.free.pop()
        bk.used += 1
        for (layer, m), ta in bk.a.items():
            tb = bk.b[(layer, m)]
            key = (layer, m)
            if key in a:
                ta[idx].zero_()
                tb[idx].zero_()
                ta[idx, :rank].copy_(a[key])
                tb[idx, :, :rank].copy_(b[key] * scaling)
            else:
                ta[idx].zero_()
                tb[idx].zero_()
        return PoolSlot(bucket=r, index=idx)

    def free(self, slot: PoolSlot) -> None:
        """Return a slot to its bucket (weights stay until overwritten; nothing routes to a free slot)."""
        bk = self._buckets[slot.bucket]
        bk.free.append(slot.index)
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
        bk.free.extend(range(capacity - 1, old - 1, -1))
        bk.capacity = capacity
        logger.debug("lora pool bucket r=%d grown to %d slots", bk.rank, capacity)

    def _add_module(self, bk: _Bucket, module: str) -> None:
        self.modules_present.add(module)
        fin, fout = self.shapes[module]
        for layer in range(self.n_layers):
            if (layer, module) in bk.a:
                continue
            bk.a[(layer, module)] = torch.zeros((bk.capacity, bk.rank, fin), device=self.device, dtype=self.dtype)
            bk.b[(layer, module)] = torch.zeros((bk.capacity, fout, bk.rank), device=self.device, dtype=self.dtype)

    # ---------------------------------------------------------------- per step

    def routing(self, segments: list[Segment]) -> LoraRouting | None:
        """Group this step's LoRA segments by bucket into index tensors; None when no row uses an adapter."""
        if not segments:
            return None
        by_bucket: dict[int, list[Segment]] = {}
        for s in segments:
            by_bucket.setdefault(s.slot.bucket, []).append(s)
        out = LoraRouting()
        dev = self.device
        for r, segs in by_bucket.items():
            t = max(s.length for s in segs)
            slots = torch.tensor([s.slot.index for s in segs], dtype=torch.long)
            if t == 1:
                gather = torch.tensor([s.start for s in segs], dtype=torch.long)
                out.groups.append(_Group(bucket=r, slots=slots.to(dev), gather=gather.to(dev), seg_len=1,
                                         valid=None, dest=gather.to(dev)))
            else:
                # positions inside each padded segment; padding re-reads the segment's first row and is dropped
                offs = torch.arange(t)
                lens = torch.tensor([s.length for s in segs])
                starts = torch.tensor([s.start for s in segs])
                mask = offs[None, :] < lens[:, None]  # [S, T]
                gather = torch.where(mask, starts[:, None] + offs[None, :], starts[:, None]).reshape(-1)
                valid = mask.reshape(-1).nonzero().squeeze(1)
                dest = gather.index_select(0, valid)
                out.groups.append(_Group(bucket=r, slots=slots.to(dev), gather=gather.to(dev), seg_len=t,
                                         valid=valid.to(dev), dest=dest.to(dev)))
            out.lora_rows += sum(s.length for s in segs)
        return out

    def apply(self, routing: LoraRouting | None, layer: int, module: str, x: torch.Tensor, y: torch.Tensor) -> None:
        """``y[rows] += lora(x[rows])`` for every routed row; x [N, in], y [N, out] (a view is fine)."""
        if routing is None or module not in self.modules_present:
            return
        for g in routing.groups:
            bk = self._buckets[g.bucket]
            a = bk.a.get((layer, module))
            if a is None:
                continue
            n_seg = g.slots.shape[0]
            a_g = a.index_select(0, g.slots)  # [S, r, in]
            b_g = bk.b[(layer, module)].index_select(0, g.slots)  # [S, out, r]
            xs = x.index_select(0, g.gather).view(n_seg, g.seg_len, x.shape[1])  # [S, T, in]
            t = torch.bmm(xs, a_g.transpose(1, 2))  # [S, T, r]
            u = torch.bmm(t, b_g.transpose(1, 2)).view(n_seg * g.seg_len, -1)  # [S*T, out]
            if g.valid is not None:
                u = u.index_select(0, g.valid)
            y.index_add_(0, g.dest, u.to(y.dtype))
