"""Batched multi-adapter LoRA: the device tier's weight pool and the per-step routing that applies it to a batch.

Math, per target linear ``y = x @ W.T`` of a row whose adapter sits in slot ``s``::

    y += (x @ A[s].T) @ (scale[s] * B[s]).T

The pool keeps preallocated stacks per rank bucket: per (layer, group of linears sharing an input: qkv, o, gate_up,
down) ``A.T [capacity, in, k r]`` (the group's k modules' A concatenated, so one shrink matmul serves q, k and v) and
per (layer, module) ``B.T [capacity, r, out]``, the adapter's scaling folded into B at load time. Ranks are rounded up
to a power of two, at least 4 and at least 16 bytes of the pool's dtype (4 in fp32, 8 in bf16/fp16: the segment matmul,
like CUDA's grouped GEMM, needs every stride a multiple of 16 bytes): ranks 8/16/64 pay no rank padding; untargeted
modules of a touched group hold zeros. Both are reported by `padding_bytes`.

A step's routing is built once (`LoraPool.routing`): per bucket present in the batch, the LoRA rows sorted by slot.
Every layer and group then reuses it: one gather of the rows, one shrink matmul and one expand per module straight
over the pool stacks (no per-row weight copies), and one scatter-add of the concatenated deltas into the fused output.
The matmuls are either a slot-major `torch.bmm` (rows padded to the
busiest slot's count; decode steps, where each slot has a row or two) or the segment matmul `torch._grouped_mm`
(SGMV, Punica-style; no padding; skewed popularity), or, for long segments (prefill prompts), one shrink and expand
per segment straight on its slices of the input and output (no copies of the activations). No Python loop over
adapters in decode steps, and rows without an adapter are never touched (a batch of base-only rows has no routing at
all).

Rows are given as "segments": a decode row is a segment of one token, a prefill row a segment of its prompt tokens.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field

import torch

from inference import kernels
from inference.errors import InferenceError

__all__ = ["LoraPool", "LoraRouting", "PoolSlot", "Segment", "UnsupportedTargetModule", "bucket_rank"]

logger = logging.getLogger(__name__)

MIN_BUCKET = 4
STRIDE_ALIGN = 16  # bytes: torch._grouped_mm (CPU and CUDA) refuses operands whose strides are not multiples of this
# Cost model of the two torch kernels for rows that are not direct (decode steps; skewed popularity), in microseconds
# per layer for its q/k/v and o groups, fitted to `loraledger bench lora` (small model: hidden 512, rank 16, fp32,
# 1 thread, a 134 MB pool read from memory; docs/inference-engine.md). Only their ratios matter.
BMM_SLOT_US = 18.0  # slot-major bmm: each slot of a run (its weights read once)...
BMM_ROW_US = 7.4  # ...plus each (padded) row per slot
BMM_RUN_US = 56.0  # each further run of consecutive slots is its own set of bmm calls
GROUPED_SLOT_US = 30.0  # segment matmul: each used slot of the window (one mm call per slot)...
GROUPED_EMPTY_US = 13.0  # ...each unused slot of the window (its call has no rows)...
GROUPED_ROW_US = 8.0  # ...plus each row
# at 2 or more torch threads on CPU (`bench lora --threads 2`): the bmm splits its batch over the threads (0.7x the
# 1-thread time), the segment matmul's many small mm calls pay the threads' fork/join instead (1.2x and more)
BMM_THREADS_FACTOR = 0.7
GROUPED_THREADS_FACTOR = 1.2
# a step whose LoRA rows average at least this many per segment (prefill: a prompt per segment) runs each segment's
# matmuls straight on its slice of the activations, adding into the output in place: no gather, concatenation or
# scatter of [tokens, width] copies, which cost more than the matmuls at prefill sizes (docs/inference-engine.md)
DIRECT_MIN_ROWS = 16
# Linear layers that read the same input and write one fused output in the engine's forward: their LoRA shrinks run
# as one matmul over the concatenated A (and their expands write one concatenated delta).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qkv", ("q_proj", "k_proj", "v_proj")),
    ("o", ("o_proj",)),
    ("gate_up", ("gate_proj", "up_proj")),
    ("down", ("down_proj",)),
)


class UnsupportedTargetModule(InferenceError, ValueError):
    """The adapter targets a module the engine's forward does not apply LoRA to (only Llama linear layers)."""


def bucket_rank(rank: int, min_bucket: int = MIN_BUCKET) -> int:
    """The pool bucket of a rank: the next power of two, at least `min_bucket` (8, 16 and 64 stay exact)."""
    r = min_bucket
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
    # G: segment matmul: slots first..first+G-1 (lowest to highest slot this step); slot-major bmm: the slots its runs
    # read, in run order (the padded slot axis)
    n_groups: int
    rows: torch.Tensor | None  # [n] long: rows of x using this bucket, sorted by slot (not needed in direct mode)
    offs: torch.Tensor | None  # [G] int32 end offsets of each slot's rows: segment matmul mode
    per_slot: int  # m: padded rows per slot (slot-major bmm mode)
    gidx: torch.Tensor | None  # [G * m] long: row of x for each padded position (padding repeats a real row)
    pos: torch.Tensor | None  # [n] long: padded position of each sorted row
    slots: torch.Tensor | None = None  # [n] long: slot of each sorted row (native kernel mode, CPU fp32)
    native: tuple[int, int, int] | None = None  # (rows pointer, slots pointer, n): the native kernel's row arguments
    first: int = 0  # lowest slot of the step (torch path): slots below it are not read
    # slot-major bmm: [(first slot, slots, offset in the padded slot axis)], the runs of slots read (absent slots
    # between runs are skipped; a short gap is cheaper to read than another call and stays inside its run)
    runs: list[tuple[int, int, int]] = field(default_factory=list)
    direct: list[tuple[int, int, int]] | None = None  # [(start, stop, slot)]: per-segment matmuls on x/y slices


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
    a: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)  # (layer, group): [cap, in, k r] (A.T)
    b: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)  # (layer, module): [cap, r, out] (B.T)
    free: list[int] = field(default_factory=list)
    used: int = 0
    # (layer, group) -> the native kernel's weight arguments (A pointer, k r, rank, k, B pointers, widths, fp16);
    # rebuilt lazily after the stacks are reallocated (_grow, _add_group)
    native_args: dict[tuple[int, str], tuple[int, ...]] = field(default_factory=dict)


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
        storage_dtype: torch.dtype | None = None,
    ) -> None:
        self.shapes = dict(shapes)  # module -> (in_features, out_features)
        self.n_layers = n_layers
        self.device = torch.device(device)
        self.dtype = dtype  # compute dtype (the model's)
        self.storage_dtype = storage_dtype or dtype  # dtype of the weight stacks (float16 halves the bytes read)
        self.initial_capacity = initial_capacity
        self._buckets: dict[int, _Bucket] = {}
        self.groups: dict[str, tuple[str, ...]] = {}  # group -> its modules that this model has, in output order
        self.group_of: dict[str, str] = {}
        for g, mods in GROUPS:
            present = tuple(m for m in mods if m in self.shapes)
            if present:
                self.groups[g] = present
                self.group_of.update(dict.fromkeys(present, g))
        self.groups_present: set[str] = set()
        esize = torch.empty((), dtype=self.storage_dtype).element_size()
        # smallest bucket whose rank columns fill 16 bytes: a bf16 rank-4 slice (8 bytes) breaks the segment matmul
        self.min_bucket = max(MIN_BUCKET, STRIDE_ALIGN // esize)
        # segment matmuls available (else slot-major bmm only): the op exists here, and every in/out width of the
        # model keeps the 16-byte stride rule in this dtype (true of any real model; not of every toy shape)
        self.grouped = (_grouped_mm_works(self.device, dtype)
                        and all((n * esize) % STRIDE_ALIGN == 0 for shape in self.shapes.values() for n in shape))
        # long segments (prefill) run as per-segment matmuls straight on slices of x and y (see DIRECT_MIN_ROWS)
        self.direct = True
        # the native kernel (inference/_kernels.c) for every step: CPU fp32, where LORALEDGER_KERNELS selects it
        self.native = kernels.native_enabled() and self.device.type == "cpu" and dtype == torch.float32
        if self.storage_dtype != dtype and not (self.native and self.storage_dtype == torch.float16):
            raise ValueError(f"LoRA weights stored as {self.storage_dtype} with a {dtype} model need the native CPU "
                             "kernel (fp32 on CPU with AVX-512, inference._kernels built): drop the storage dtype")

    # ---------------------------------------------------------------- sizes

    def bucket(self, rank: int) -> int:
        """This pool's bucket for a rank (`bucket_rank` with the dtype's minimum, `min_bucket`)."""
        return bucket_rank(rank, self.min_bucket)

    def slot_nbytes(self, rank: int, target_modules: tuple[str, ...]) -> int:
        """Bytes one adapter occupies in the pool: bucket rank x (in + out) for every module of each group it
        touches (a q,v adapter also holds zero k_proj weights in its qkv group), per layer."""
        r = self.bucket(rank)
        esize = torch.empty((), dtype=self.storage_dtype).element_size()
        mods = [m for g in {self.group_of[t] for t in target_modules if t in self.group_of} for m in self.groups[g]]
        return sum(r * (self.shapes[m][0] + self.shapes[m][1]) for m in mods) * self.n_layers * esize

    def padding_bytes(self, rank: int, target_modules: tuple[str, ...]) -> int:
        """Bytes of zeros an adapter carries in the pool: rank rounded up to its bucket (0 for 8/16/64) plus the
        untargeted modules of the groups it touches."""
        esize = torch.empty((), dtype=self.storage_dtype).element_size()
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
        r = self.bucket(rank)
        bk = self._buckets.get(r)
        if bk is None:
            bk = self._buckets[r] = _Bucket(rank=r, capacity=0)
        if not bk.free:
            self._grow(bk, max(self.initial_capacity, 2 * bk.capacity))
        for g in {self.group_of[m] for m in target_modules}:
            if (0, g) not in bk.a:
                self._add_group(bk, g)
        idx = heapq.heappop(bk.free)  # lowest free slot: keeps the slots a step touches (0..G-1) compact
        bk.used += 1
        for (layer, g), ta in bk.a.items():
            for j, m in enumerate(self.groups[g]):
                tb = bk.b[(layer, m)]
                if (layer, m) not in a:  # untargeted module of the slot: zeros (the slot may hold a previous adapter)
                    ta[idx, :, j * r:(j + 1) * r].zero_()
                    tb[idx].zero_()
                    continue
                ta[idx, :, j * r:j * r + rank].copy_(a[(layer, m)].T, non_blocking=True)
                src = b[(layer, m)]
                if self.device.type == "cpu" or src.dtype != self.storage_dtype:
                    tb[idx, :rank].copy_((src * scaling).T)
                else:  # keep the source (pinned host memory) as it is: an asynchronous copy, scaled on the device
                    tb[idx, :rank].copy_(src.T, non_blocking=True).mul_(scaling)
                if rank < r:  # rank padding up to the bucket
                    ta[idx, :, j * r + rank:(j + 1) * r].zero_()
                    tb[idx, rank:].zero_()
        return PoolSlot(bucket=r, index=idx)

    def reserve(self, rank: int, target_modules: tuple[str, ...], capacity: int) -> None:
        """Preallocate a bucket's stacks for `capacity` adapters (startup), so that no step pays for growth."""
        r = self.bucket(rank)
        bk = self._buckets.get(r)
        if bk is None:
            bk = self._buckets[r] = _Bucket(rank=r, capacity=0)
        if bk.capacity < capacity:
            self._grow(bk, capacity)
        for g in {self.group_of[m] for m in target_modules}:
            if (0, g) not in bk.a:
                self._add_group(bk, g)

    def free(self, slot: PoolSlot) -> None:
        """Return a slot to its bucket (weights stay until overwritten; nothing routes to a free slot)."""
        bk = self._buckets[slot.bucket]
        heapq.heappush(bk.free, slot.index)
        bk.used -= 1

    def _grow(self, bk: _Bucket, capacity: int) -> None:
        bk.native_args.clear()
        old = bk.capacity
        for d in (bk.a, bk.b):
            for key, t in list(d.items()):
                nt = torch.zeros((capacity, *t.shape[1:]), device=self.device, dtype=self.storage_dtype)
                nt[:old].copy_(t)
                d[key] = nt
        for i in range(old, capacity):
            heapq.heappush(bk.free, i)
        bk.capacity = capacity
        logger.debug("lora pool bucket r=%d grown to %d slots", bk.rank, capacity)

    def _add_group(self, bk: _Bucket, group: str) -> None:
        bk.native_args.clear()
        self.groups_present.add(group)
        mods = self.groups[group]
        fin = self.shapes[mods[0]][0]
        for layer in range(self.n_layers):
            bk.a[(layer, group)] = torch.zeros((bk.capacity, fin, len(mods) * bk.rank), device=self.device,
                                               dtype=self.storage_dtype)
            for m in mods:
                bk.b[(layer, m)] = torch.zeros((bk.capacity, bk.rank, self.shapes[m][1]), device=self.device,
                                               dtype=self.storage_dtype)

    # ---------------------------------------------------------------- per step

    def routing(self, segments: list[Segment], kernel: str | None = None) -> LoraRouting | None:
        """Sort this step's LoRA rows by (bucket, slot) into index tensors; None when no row uses an adapter.

        Per bucket it picks the cheaper kernel by the measured cost model `BMM_*_US` / `GROUPED_*_US`: a slot-major
        `bmm` straight over the pool stacks, per run of used slots, with every slot padded to its busiest slot's row
        count (decode steps: a row or two per slot), or the segment matmul `_grouped_mm` over the window (skewed
        popularity), which has no padding but costs a call per slot of the window, used or not. Long segments
        (prefill) go direct. `kernel` ("bmm" or "grouped") forces one of the two on the torch path (tests, `bench
        lora`); "grouped" needs `self.grouped`.
        """
        if kernel not in (None, "bmm", "grouped") or (kernel == "grouped" and not self.grouped):
            raise ValueError(f"kernel {kernel!r}: choose bmm or grouped (grouped only where the pool probed "
                             f"torch._grouped_mm: {self.grouped})")
        if not segments:
            return None
        by_bucket: dict[int, list[Segment]] = {}
        for s in segments:
            by_bucket.setdefault(s.slot.bucket, []).append(s)
        out = LoraRouting()
        dev = self.device
        for r, segs in by_bucket.items():
            segs.sort(key=lambda s: s.slot.index)
            if self.native:
                # the native kernel reads each slot's A and B once and adds straight into the rows: no padding
                slot_idx = torch.tensor([s.slot.index for s in segs], dtype=torch.long)
                lens = torch.tensor([s.length for s in segs], dtype=torch.long)
                rows = _rows(segs)
                slots = torch.repeat_interleave(slot_idx, lens)
                out.groups.append(_Group(bucket=r, n_groups=segs[-1].slot.index + 1, rows=rows, offs=None,
                                         per_slot=0, gidx=None, pos=None, slots=slots,
                                         native=(rows.data_ptr(), slots.data_ptr(), rows.shape[0])))
                out.lora_rows += rows.shape[0]
                continue
            n_rows = sum(s.length for s in segs)
            # long segments (prefill): slices, in place
            if self.direct and kernel is None and n_rows >= DIRECT_MIN_ROWS * len(segs):
                out.groups.append(_Group(bucket=r, n_groups=0, rows=None, offs=None, per_slot=0, gidx=None,
                                         pos=None, direct=[(s.start, s.start + s.length, s.slot.index)
                                                           for s in segs]))
                out.lora_rows += n_rows
                continue
            # the torch path reads the stacks' slots lo..hi only: the cost follows the adapters in the batch, not
            # the highest slot the cache ever filled
            lo = segs[0].slot.index
            n_groups = segs[-1].slot.index - lo + 1
            counts_l = [0] * n_groups  # rows per slot of the window, on the host (no tensor round trip)
            for s in segs:
                counts_l[s.slot.index - lo] += s.length
            n = n_rows
            per_slot = max(counts_l)
            slot_idx = torch.tensor([s.slot.index - lo for s in segs], dtype=torch.long)
            lens = torch.tensor([s.length for s in segs], dtype=torch.long)
            counts = torch.tensor(counts_l, dtype=torch.long)
            rows = _rows(segs)
            # the slot-major bmm reads runs of consecutive slots: a gap of unused slots stays inside a run while
            # reading it costs less than one more call (`BMM_*_US`), a longer gap starts a new run
            slot_us = BMM_SLOT_US + BMM_ROW_US * per_slot
            spans: list[list[int]] = []  # [first, last] window-relative, inclusive
            present = 0  # used slots of the window
            for i, c in enumerate(counts_l):
                if not c:
                    continue
                present += 1
                if spans and (i - spans[-1][1] - 1) * slot_us <= BMM_RUN_US:
                    spans[-1][1] = i
                else:
                    spans.append([i, i])
            n_read = sum(b - a + 1 for a, b in spans)
            bmm_us = BMM_RUN_US * (len(spans) - 1) + slot_us * n_read  # the first call is paid by either kernel
            grouped_us = (GROUPED_SLOT_US * present + GROUPED_EMPTY_US * (n_groups - present)
                          + GROUPED_ROW_US * n)
            if dev.type == "cpu" and torch.get_num_threads() > 1:
                bmm_us *= BMM_THREADS_FACTOR
                grouped_us *= GROUPED_THREADS_FACTOR
            if kernel == "grouped" or (kernel is None and self.grouped and grouped_us < bmm_us):
                out.groups.append(_Group(bucket=r, n_groups=n_groups, rows=rows.to(dev),
                                         offs=torch.cumsum(counts, 0).to(torch.int32).to(dev), per_slot=0,
                                         gidx=None, pos=None, first=lo))
            else:
                padded_slot = [0] * n_groups  # window slot -> its index on the padded slot axis of the runs
                runs, off = [], 0
                for a_, b_ in spans:
                    for i in range(a_, b_ + 1):
                        padded_slot[i] = off + i - a_
                    runs.append((lo + a_, b_ - a_ + 1, off))
                    off += b_ - a_ + 1
                slot_of_row = torch.repeat_interleave(slot_idx, lens)  # [n] window slot of each sorted row
                first = torch.cumsum(counts, 0) - counts  # [window] first sorted row of each slot
                padded = torch.tensor(padded_slot, dtype=torch.long)[slot_of_row]
                pos = padded * per_slot + (torch.arange(n) - first[slot_of_row])  # [n]
                gidx = torch.full((n_read * per_slot,), segs[0].start, dtype=torch.long)
                gidx[pos] = rows
                out.groups.append(_Group(bucket=r, n_groups=n_read, rows=rows.to(dev), offs=None,
                                         per_slot=per_slot, gidx=gidx.to(dev), pos=pos.to(dev), first=lo,
                                         runs=runs))
                out.padded_rows += n_read * per_slot - n
            out.lora_rows += n
        return out

    def _native_weight_args(self, bk: _Bucket, layer: int, group: str) -> tuple[int, ...]:
        """The native kernel's weight arguments for one (layer, group): pointers into the whole stacks."""
        a = bk.a[(layer, group)]
        bs = [bk.b[(layer, m)] for m in self.groups[group]]
        k = len(bs)
        ptrs = [b.data_ptr() for b in bs] + [0] * (4 - k)
        outs = [b.shape[2] for b in bs] + [0] * (4 - k)
        assert a.is_contiguous() and all(b.is_contiguous() for b in bs)
        return (a.data_ptr(), a.shape[2], bk.rank, k, *ptrs, *outs, int(a.dtype == torch.float16))

    def apply(self, routing: LoraRouting | None, layer: int, group: str, x: torch.Tensor, y: torch.Tensor) -> None:
        """``y[rows] += lora(x[rows])`` for every routed row and every module of `group` (see `GROUPS`).

        x [N, in] is the group's shared input, y [N, sum of its modules' out] its fused output (a view is fine)."""
        if routing is None or group not in self.groups_present:
            return
        for g in routing.groups:
            bk = self._buckets[g.bucket]
            if g.native is not None:  # the native kernel over the whole stacks (slots index them directly)
                args = bk.native_args.get((layer, group))
                if args is None:
                    if (layer, group) not in bk.a:
                        continue
                    args = bk.native_args[(layer, group)] = self._native_weight_args(bk, layer, group)
                ext = kernels.ext
                assert ext is not None and x.stride(1) == 1 and y.stride(1) == 1
                ext.lora(x.data_ptr(), x.stride(0), x.shape[1], y.data_ptr(), y.stride(0), *g.native, *args)
                continue
            a = bk.a.get((layer, group))  # [cap, in, k r]
            if a is None:
                continue
            r = bk.rank
            bs_full = [bk.b[(layer, m)] for m in self.groups[group]]  # each [cap, r, out_m]
            if g.direct is not None:
                for start, stop, slot in g.direct:
                    t = x[start:stop] @ a[slot]  # [len, k r]
                    col = 0
                    for j, b in enumerate(bs_full):
                        w = b.shape[2]
                        y[start:stop, col:col + w].addmm_(t[:, j * r:(j + 1) * r], b[slot])
                        col += w
                continue
            assert g.rows is not None  # only direct groups go without
            if g.offs is not None:
                lo, hi = g.first, g.first + g.n_groups
                xs = x.index_select(0, g.rows)  # [n, in]
                t = torch._grouped_mm(xs, a[lo:hi], offs=g.offs)  # [n, k r]
                us = [torch._grouped_mm(t[:, j * r:(j + 1) * r].contiguous(), b[lo:hi], offs=g.offs)
                      for j, b in enumerate(bs_full)]  # each [n, out_m]
                u = us[0] if len(us) == 1 else torch.cat(us, dim=-1)
            else:
                assert g.gidx is not None and g.pos is not None
                xs = x.index_select(0, g.gidx).view(g.n_groups, g.per_slot, x.shape[1])  # [S, m, in]
                parts = []
                for first, ns, off in g.runs:  # each run: one shrink and one expand per module over its slots
                    t = torch.bmm(xs[off:off + ns], a[first:first + ns])  # [ns, m, k r]
                    us = [torch.bmm(t[:, :, j * r:(j + 1) * r], b[first:first + ns])
                          for j, b in enumerate(bs_full)]  # each [ns, m, out_m]
                    parts.append(us[0] if len(us) == 1 else torch.cat(us, dim=-1))
                u = (parts[0] if len(parts) == 1 else torch.cat(parts)).view(g.n_groups * g.per_slot, -1)
                if g.n_groups * g.per_slot == g.rows.shape[0]:  # no padding: gidx is the rows' order itself
                    _scatter_add(y, g.gidx, u)
                    continue
                u = u.index_select(0, g.pos)  # [n, sum out]
            _scatter_add(y, g.rows, u)


def _scatter_add(y: torch.Tensor, rows: torch.Tensor, u: torch.Tensor) -> None:
    """``y[rows] += u`` (rows are unique within a step). `index_add_` where y is contiguous (the engine's linear
    outputs: 24 us against 54 for [64, 1536] fp32 on CPU), an accumulating `index_put_` on a strided view (where
    `index_add_` is 5x slower)."""
    if y.is_contiguous():
        y.index_add_(0, rows, u.to(y.dtype))
    else:
        y.index_put_((rows,), u.to(y.dtype), accumulate=True)


def _rows(segs: list[Segment]) -> torch.Tensor:
    """[n] long: the activation rows of `segs`, in order."""
    if all(s.length == 1 for s in segs):
        return torch.tensor([s.start for s in segs], dtype=torch.long)
    return torch.cat([torch.arange(s.start, s.start + s.length) for s in segs])


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
