"""Batched multi-adapter LoRA against a per-row reference: mixed ranks, mixed targets, base rows, prefill segments."""

from __future__ import annotations

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


def test_bucket_rank() -> None:
    assert [bucket_rank(r) for r in (1, 4, 5, 8, 16, 17, 64)] == [4, 4, 8, 8, 16, 32, 64]


@pytest.mark.parametrize("mode", ["native", "grouped", "bmm"],
                         ids=["native_kernel", "grouped_mm_allowed", "slot_major_bmm_only"])
def test_apply_matches_per_row_reference_with_mixed_ranks_and_segments(mode: str) -> None:
    if mode == "native" and not NATIVE_OK:
        pytest.skip(f"native kernel cannot run here: {NATIVE_WHY_NOT}")
    pool = LoraPool(SHAPES, LAYERS, initial_capacity=2)  # small capacity: allocation grows the stacks
    assert pool.grouped  # torch 2.13 on CPU has the segment matmul
    assert pool.native == NATIVE  # CPU fp32: the native kernel is the default where it runs and is selected
    pool.native = mode == "native"
    pool.grouped = mode == "grouped"
    grouped = mode != "bmm"
    specs = [(1, 8, ("q_proj", "v_proj"), 2.0), (2, 16, ("q_proj",), 0.5), (3, 5, ("v_proj", "down_proj"), 1.0),
             (4, 64, ("q_proj", "v_proj", "down_proj"), 0.25), (5, 8, ("down_proj",), 3.0)]
    adapters = []
    for seed, rank, targets, scale in specs:
        a, b = _adapter(seed, rank, targets)
        adapters.append((pool.alloc(rank, a, b, scale, targets), a, b, scale))
    # rows: a prefill segment of 60 tokens, single-token decode rows, and base rows that must stay untouched
    layout = [(0, 60), (None, 3), (1, 1), (2, 1), (None, 1), (3, 4), (4, 1), (0, 1), (3, 1)]
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
    assert pool.groups == {"qkv": ("q_proj", "k_proj", "v_proj"), "down": ("down_proj",)}
    for li in range(LAYERS):
        for group, mods in pool.groups.items():
            x = torch.randn(start, SHAPES[mods[0]][0])
            widths = [SHAPES[m][1] for m in mods]
            y0 = torch.randn(start, sum(widths))  # the fused output of the group (e.g. [q | k | v])
            y = y0.clone()
            pool.apply(routing, li, group, x, y)
            for row, idx in enumerate(owner):
                ref = y0[row].clone()
                if idx is not None:
                    _, a, b, scale = adapters[idx]
                    col = 0
                    for m, w in zip(mods, widths, strict=True):
                        if (li, m) in a:
                            ref[col:col + w] += scale * (x[row] @ a[(li, m)].T) @ b[(li, m)].T
                        col += w
                torch.testing.assert_close(y[row], ref, rtol=1e-4, atol=1e-4)


def test_decode_routing_uses_slot_major_bmm_and_measures_padding() -> None:
    pool = LoraPool(SHAPES, LAYERS)
    pool.native = False  # the torch path (what CUDA and non-fp32 pools run)
    slots = [pool.alloc(8, *_adapter(i, 8, ("q_proj",)), 1.0, ("q_proj",)) for i in range(3)]
    # slot 0: 2 rows, slot 1: none, slot 2: 1 row -> G=3 slots x m=2 rows = 6 computed for 3 real rows
    segs = [Segment(slot=slots[0], start=0, length=1), Segment(slot=slots[2], start=1, length=1),
            Segment(slot=slots[0], start=3, length=1)]
    routing = pool.routing(segs)
    assert routing is not None and routing.lora_rows == 3 and routing.padded_rows == 3
    x, y = torch.randn(4, 32), torch.zeros(4, 32 + 8 + 16)
    pool.apply(routing, 1, "qkv", x, y)
    assert torch.count_nonzero(y[:, 32:]) == 0  # k and v are not targeted: zero deltas there
    assert torch.count_nonzero(y[2]) == 0 and torch.count_nonzero(y[0]) > 0


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
