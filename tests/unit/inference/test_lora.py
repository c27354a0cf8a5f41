"""Batched multi-adapter LoRA against a per-row reference: mixed ranks, mixed targets, base rows, prefill segments."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from inference import kernels
from inference.lora import LoraPool, Segment, bucket_rank

NATIVE_OK, NATIVE_WHY_NOT = kernels.native_status()  # the machine can run the native kernel
NATIVE = kernels.native_enabled()  # ... and LORALEDGER_KERNELS selects it (a new CPU fp32 pool then uses it)

SHAPES = {"q_proj": (32, 32), "k_proj": (32, 8), "v_proj": (32, 16), "down_proj": (48, 32)}
LAYERS = 2


def _adapter(seed: int, rank: int, targets: tuple[str, ...]) -> tuple[dict, dict]:  # type: ignore[type-arg]
    g = torch.Generator().manual_seed(seed)
    a = {(li, m): torch.randn(rank, SHAPES[m][0], generator=g) for li in range(LAYERS) for m in targets}
    b = {(li, m): torch.randn(SHAPES[m][1], rank, generator=g) for li in range(LAYERS) for m in targets}
    return a, b


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The routing's kernel choice depends on torch's thread count (`BMM_THREADS_FACTOR`): these tests assert the
    choices at one thread (the xdist workers' count too), except where a test sets its own."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_bucket_rank() -> None:
    assert [bucket_rank(r) for r in (1, 4, 5, 8, 16, 17, 64)] == [4, 4, 8, 8, 16, 32, 64]


DTYPES = {"float32": (torch.float32, 1e-4), "bfloat16": (torch.bfloat16, 3e-2), "float16": (torch.float16, 4e-3)}


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("mode", ["native", "grouped", "bmm", "direct"],
                         ids=["native_kernel", "grouped_mm_allowed", "slot_major_bmm_only", "direct_segments"])
def test_apply_matches_per_row_reference_with_mixed_ranks_and_segments(mode: str, dtype_name: str) -> None:
    dtype, tol = DTYPES[dtype_name]
    if mode == "native" and not NATIVE_OK:
        pytest.skip(f"native kernel cannot run here: {NATIVE_WHY_NOT}")
    if mode == "native" and dtype != torch.float32:
        pytest.skip("the native kernel computes fp32 only (bf16/fp16 pools run the torch path)")
    pool = LoraPool(SHAPES, LAYERS, initial_capacity=2, dtype=dtype)  # small capacity: allocation grows the stacks
    assert pool.grouped  # torch 2.13 on CPU has the segment matmul, in every dtype
    if dtype == torch.float32:
        assert pool.native == NATIVE  # CPU fp32: the native kernel is the default where it runs and is selected
    else:
        assert not pool.native
    pool.native = mode == "native"
    pool.grouped = mode in ("grouped", "direct")
    pool.direct = mode == "direct"  # the default; off in the other modes so that each kernel sees the prefill rows
    grouped = mode != "bmm"
    # ranks 8/16/5/64/8/4/4: the two rank-4 adapters share a prefill with base rows (a bf16 rank-4 segment once
    # broke the segment matmul's 16-byte stride rule)
    specs = [(1, 8, ("q_proj", "v_proj"), 2.0), (2, 16, ("q_proj",), 0.5), (3, 5, ("v_proj", "down_proj"), 1.0),
             (4, 64, ("q_proj", "v_proj", "down_proj"), 0.25), (5, 8, ("down_proj",), 3.0),
             (6, 4, ("q_proj", "k_proj", "v_proj"), 1.5), (7, 4, ("q_proj", "v_proj", "down_proj"), 0.5)]
    adapters = []
    for seed, rank, targets, scale in specs:
        a, b = _adapter(seed, rank, targets)
        a = {k: v.to(dtype).float() for k, v in a.items()}  # the reference uses the values the pool can hold
        b = {k: (v * scale).to(dtype).float() / scale for k, v in b.items()}
        adapters.append((pool.alloc(rank, a, b, scale, targets), a, b, scale))
    # rows: prefill segments of 60 tokens, single-token decode rows, and base rows that must stay untouched
    layout = [(0, 60), (None, 3), (1, 1), (2, 1), (None, 1), (3, 4), (4, 1), (5, 60), (0, 1), (6, 1), (None, 5),
              (3, 1)]
    segments, start = [], 0
    owner: list[int | None] = []
    for idx, n in layout:
        if idx is not None:
            segments.append(Segment(slot=adapters[idx][0], start=start, length=n))
        owner += [idx] * n
        start += n
    routing = pool.routing(segments)
    assert routing is not None and routing.lora_rows == sum(n for i, n in layout if i is not None)
    # the prefill segments make the slot-major padding too costly: the grouped kernel is used when available; the
    # native kernel reads each slot's rows directly (no padding either)
    assert (routing.padded_rows == 0) == grouped
    assert all((g.slots is not None) == (mode == "native") for g in routing.groups)
    # the rank-8 bucket's rows are mostly one 60-token prompt: with direct segments allowed it takes that path
    assert any(g.direct is not None for g in routing.groups) == (mode == "direct")
    assert pool.groups == {"qkv": ("q_proj", "k_proj", "v_proj"), "down": ("down_proj",)}
    for li in range(LAYERS):
        for group, mods in pool.groups.items():
            x = torch.randn(start, SHAPES[mods[0]][0]).to(dtype)
            widths = [SHAPES[m][1] for m in mods]
            y0 = torch.randn(start, sum(widths)).to(dtype)  # the fused output of the group (e.g. [q | k | v])
            y = y0.clone()
            pool.apply(routing, li, group, x, y)
            assert y.dtype == dtype
            for row, idx in enumerate(owner):
                ref = y0[row].float()
                if idx is not None:
                    _, a, b, scale = adapters[idx]
                    col = 0
                    for m, w in zip(mods, widths, strict=True):
                        if (li, m) in a:
                            ref[col:col + w] += scale * (x[row].float() @ a[(li, m)].T) @ b[(li, m)].T
                        col += w
                else:
                    assert torch.equal(y[row], y0[row])  # base rows are never touched
                # a tolerance relative to the row's size: bf16 keeps 8 bits of mantissa, fp16 11
                torch.testing.assert_close(y[row].float(), ref, rtol=tol, atol=tol * float(ref.abs().max()))


def test_half_precision_pools_pad_small_ranks_to_16_bytes() -> None:
    """bf16/fp16 buckets start at rank 8 (16 bytes), fp32 at 4; widths off the 16-byte rule turn grouped mm off."""
    assert LoraPool(SHAPES, LAYERS).bucket(4) == 4
    for dtype in (torch.bfloat16, torch.float16):
        pool = LoraPool(SHAPES, LAYERS, dtype=dtype)
        assert [pool.bucket(r) for r in (1, 4, 8, 16, 64)] == [8, 8, 8, 16, 64]
        assert pool.padding_bytes(4, ("q_proj", "k_proj", "v_proj")) == pool.slot_nbytes(4, ("q_proj", "k_proj",
                                                                                                "v_proj")) // 2
    odd = {"q_proj": (36, 36), "k_proj": (36, 12), "v_proj": (36, 12)}  # 36 bf16 values = 72 bytes
    assert LoraPool(odd, 1, dtype=torch.float32).grouped
    pool = LoraPool(odd, 1, dtype=torch.bfloat16)
    assert not pool.grouped  # falls back to the slot-major bmm, which has no stride rule
    g = torch.Generator().manual_seed(0)
    a = {(0, m): torch.randn(4, 36, generator=g) for m in odd}
    b = {(0, m): torch.randn(odd[m][1], 4, generator=g) for m in odd}
    slot = pool.alloc(4, a, b, 1.0, tuple(odd))
    routing = pool.routing([Segment(slot=slot, start=0, length=70), Segment(slot=slot, start=75, length=1)])
    x, y = torch.randn(80, 36).to(torch.bfloat16), torch.zeros(80, 60, dtype=torch.bfloat16)
    pool.apply(routing, 0, "qkv", x, y)
    ref = torch.cat([x[0].float() @ a[(0, m)].to(torch.bfloat16).float().T
                     @ b[(0, m)].to(torch.bfloat16).float().T for m in odd])
    torch.testing.assert_close(y[0].float(), ref, rtol=3e-2, atol=3e-2 * float(ref.abs().max()))
    assert torch.count_nonzero(y[70:75]) == 0


def test_decode_routing_uses_slot_major_bmm_and_measures_padding() -> None:
    pool = LoraPool(SHAPES, LAYERS)
    pool.native = False  # the torch path (what CUDA and non-fp32 pools run)
    slots = [pool.alloc(8, *_adapter(i, 8, ("q_proj",)), 1.0, ("q_proj",)) for i in range(4)]
    # slot 1: 2 rows, slot 2: 1 row -> the window is slots 1..2 (0 and 3 are not read): 2 slots x m=2 rows = 4
    # computed for 3 real rows
    segs = [Segment(slot=slots[1], start=0, length=1), Segment(slot=slots[2], start=1, length=1),
            Segment(slot=slots[1], start=3, length=1)]
    routing = pool.routing(segs)
    assert routing is not None and routing.lora_rows == 3 and routing.padded_rows == 1
    (g,) = routing.groups
    assert (g.first, g.n_groups, g.per_slot) == (1, 2, 2) and g.gidx is not None
    x, y = torch.randn(4, 32), torch.zeros(4, 32 + 8 + 16)
    pool.apply(routing, 1, "qkv", x, y)
    assert torch.count_nonzero(y[:, 32:]) == 0  # k and v are not targeted: zero deltas there
    assert torch.count_nonzero(y[2]) == 0 and torch.count_nonzero(y[0]) > 0


def test_lora_cost_follows_the_batch_not_the_highest_slot() -> None:
    """Two adapters in slots 0 and 7 of a full bucket: the slot-major bmm runs over the two slots only (two runs, the
    six slots between them are never read); a third adapter next to one of them joins its run (reading a one-slot
    gap costs less than another call). Results match the per-row reference."""
    pool = LoraPool(SHAPES, LAYERS)
    pool.native = False
    ads = [_adapter(i, 8, ("q_proj", "v_proj")) for i in range(8)]
    slots = [pool.alloc(8, a, b, 1.0, ("q_proj", "v_proj")) for a, b in ads]
    segs = [Segment(slot=slots[7], start=0, length=1), Segment(slot=slots[0], start=1, length=1)]
    routing = pool.routing(segs)
    assert routing is not None
    (g,) = routing.groups
    assert g.offs is None and g.runs == [(0, 1, 0), (7, 1, 1)] and routing.padded_rows == 0
    x, y = torch.randn(2, 32), torch.zeros(2, 32 + 8 + 16)
    pool.apply(routing, 0, "qkv", x, y)
    for row, i in ((0, 7), (1, 0)):
        a, b = ads[i]
        torch.testing.assert_close(y[row, :32], x[row] @ a[(0, "q_proj")].T @ b[(0, "q_proj")].T, rtol=1e-4,
                                   atol=1e-4)
        torch.testing.assert_close(y[row, 40:], x[row] @ a[(0, "v_proj")].T @ b[(0, "v_proj")].T, rtol=1e-4,
                                   atol=1e-4)
    segs = [*segs, Segment(slot=slots[5], start=2, length=1)]
    routing = pool.routing(segs)
    assert routing is not None
    (g,) = routing.groups
    assert g.runs == [(0, 1, 0), (5, 3, 1)] and routing.padded_rows == 1  # slot 6 is read, its row dropped
    x, y = torch.randn(3, 32), torch.zeros(3, 32 + 8 + 16)
    pool.apply(routing, 0, "qkv", x, y)
    for row, i in ((0, 7), (1, 0), (2, 5)):
        a, b = ads[i]
        torch.testing.assert_close(y[row, :32], x[row] @ a[(0, "q_proj")].T @ b[(0, "q_proj")].T, rtol=1e-4,
                                   atol=1e-4)


def test_skewed_rows_take_the_segment_matmul() -> None:
    """One slot with 40 rows beside seven with one each: padding every slot to 40 rows costs more than a call per
    slot, so the routing takes the segment matmul (no padding)."""
    pool = LoraPool(SHAPES, LAYERS)
    pool.native = False
    pool.direct = False
    ads = [_adapter(i, 8, ("q_proj",)) for i in range(8)]
    slots = [pool.alloc(8, a, b, 1.0, ("q_proj",)) for a, b in ads]
    segs = [Segment(slot=slots[0], start=0, length=40)] + [Segment(slot=slots[i], start=39 + i, length=1)
                                                          for i in range(1, 8)]
    routing = pool.routing(segs)
    assert routing is not None
    (g,) = routing.groups
    assert g.offs is not None and g.runs == [] and routing.padded_rows == 0
    x, y = torch.randn(47, 32), torch.zeros(47, 32 + 8 + 16)
    pool.apply(routing, 0, "qkv", x, y)
    for row, i in ((0, 0), (39, 0), (40, 1), (46, 7)):
        a, b = ads[i]
        torch.testing.assert_close(y[row, :32], x[row] @ a[(0, "q_proj")].T @ b[(0, "q_proj")].T, rtol=1e-4,
                                   atol=1e-4)


def test_no_routing_without_adapter_rows_and_padding_measured() -> None:
    pool = LoraPool(SHAPES, LAYERS)
    assert pool.routing([]) is None
    qkv = (32 + 32) + (32 + 8) + (32 + 16)  # in + out of q, k, v
    assert pool.padding_bytes(8, ("q_proj", "k_proj", "v_proj")) == 0
    assert pool.slot_nbytes(8, ("q_proj", "v_proj")) == 8 * qkv * LAYERS * 4  # k's zeros are in the slot too
    assert pool.padding_bytes(8, ("q_proj", "v_proj")) == 8 * (32 + 8) * LAYERS * 4
    assert pool.padding_bytes(5, ("q_proj", "k_proj", "v_proj")) == 3 * qkv * LAYERS * 4


def test_freed_slot_is_reused_and_rezeroed() -> None:
    pool = LoraPool(SHAPES, LAYERS, initial_capacity=1)
    a, b = _adapter(1, 8, ("q_proj", "v_proj"))
    s1 = pool.alloc(8, a, b, 1.0, ("q_proj", "v_proj"))
    pool.free(s1)
    a2, b2 = _adapter(2, 8, ("q_proj",))
    s2 = pool.alloc(8, a2, b2, 1.0, ("q_proj",))
    assert s2 == s1
    routing = pool.routing([Segment(slot=s2, start=0, length=1)])
    y = torch.zeros(1, 32 + 8 + 16)
    pool.apply(routing, 0, "qkv", torch.randn(1, 32), y)
    assert torch.count_nonzero(y[:, :32]) > 0
    assert torch.count_nonzero(y[:, 32:]) == 0  # the old adapter's v_proj weights are gone


def test_uneven_decode_rows_take_the_bmm_at_two_threads() -> None:
    """8 slots with 1-6 decode rows each: at one thread the segment matmul is the cheaper (no padding to 6 rows), at
    two threads the bmm (it splits its batch over the threads, the segment matmul's small calls do not); both give
    the per-row reference."""
    pool = LoraPool(SHAPES, LAYERS)
    pool.native = False
    pool.direct = False
    ads = [_adapter(i, 8, ("q_proj",)) for i in range(8)]
    slots = [pool.alloc(8, a, b, 1.0, ("q_proj",)) for a, b in ads]
    owner = [i for i, c in enumerate((6, 1, 2, 3, 1, 2, 1, 1)) for _ in range(c)][::-1]  # 17 rows, slots mixed
    segs = [Segment(slot=slots[i], start=row, length=1) for row, i in enumerate(owner)]
    x = torch.randn(len(owner), 32)
    for threads, kind in ((1, "grouped"), (2, "bmm")):
        torch.set_num_threads(threads)
        routing = pool.routing(segs)
        assert routing is not None
        (g,) = routing.groups
        assert ("grouped" if g.offs is not None else "bmm") == kind
        y = torch.zeros(len(owner), 32 + 8 + 16)
        pool.apply(routing, 1, "qkv", x, y)
        for row, i in enumerate(owner):
            a, b = ads[i]
            torch.testing.assert_close(y[row, :32], x[row] @ a[(1, "q_proj")].T @ b[(1, "q_proj")].T, rtol=1e-4,
                                       atol=1e-4)
