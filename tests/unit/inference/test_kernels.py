"""The optional native kernels (inference/_kernels.c) against torch references, fp32 on CPU.

- `decode`: RoPE + K/V cache write + exact-length attention, decode rows (scrambled cache rows, or row = entry) and
  packed causal prefill; MHA and GQA; head sizes that are multiples of 16 (including the 1-3 column tails of the
  value pass); only the written cache entries change; other head sizes are refused (the engine runs torch);
- `lora`: y[rows] += (x[rows] A[s]) B_j[s] per module, strided x/y views, 1..9 rows per slot, widths off the 16 grid;
- `add_rmsnorm` / `silu_mul` against transformers' op order;
- the engine: greedy tokens with the native kernels == the torch path, on a mixed adapter + base batch;
- bad shape arguments raise ValueError.

The whole module is skipped, with the reason, when the extension was not built or this CPU has no AVX-512 (the engine
then runs the torch path), and under LORALEDGER_KERNELS=torch (the run that tests the portable path).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from inference import kernels as kernels_mod
from tests.fixtures.kernels import CountingKernels

_native_ok, _why_not = kernels_mod.native_status()
if not _native_ok:
    pytest.skip(f"native kernels cannot run here: {_why_not} (the engine uses the torch path)",
                allow_module_level=True)
if kernels_mod.mode() == "torch":
    pytest.skip(f"{kernels_mod.ENV}=torch: this run tests the portable path only", allow_module_level=True)
_kernels: Any = kernels_mod.ext

ATOL = 1e-5


# ----------------------------------------------------------------------------------------------------- helpers


def _cos_sin(max_len: int, d: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """[max_len, D] cos/sin tables in the engine's layout (cat(freqs, freqs), fp32, contiguous)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    freqs = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().contiguous(), emb.sin().contiguous()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' RoPE: x [..., D], cos/sin [D]."""
    return x * cos + _rotate_half(x) * sin


def _qkv(n: int, h: int, hkv: int, d: int, pad: int, q_scale: float = 1.0) -> torch.Tensor:
    """A fused projection [n, (H + 2 Hkv) D + pad] (row stride larger than the q/k/v it holds)."""
    qkv = torch.randn(n, (h + 2 * hkv) * d + pad)
    qkv[:, :h * d] *= q_scale
    return qkv


def _call_decode(qkv: torch.Tensor, h: int, hkv: int, d: int, kc: torch.Tensor, vc: torch.Tensor, cos: torch.Tensor,
                 sin: torch.Tensor, pos: torch.Tensor, row: torch.Tensor | None, out: torch.Tensor,
                 lo: int = 0, hi: int | None = None, rope: bool = True) -> None:
    """`_kernels.decode` the way attention.native_attention calls it (q, k, v inside one fused qkv row)."""
    assert qkv.stride(1) == 1 and kc.is_contiguous() and vc.is_contiguous() and out.is_contiguous()
    assert pos.dtype == torch.long and pos.is_contiguous()
    esz = qkv.element_size()
    q = qkv.data_ptr()
    s = qkv.stride(0)
    _kernels.decode(q, q + h * d * esz, q + (h + hkv) * d * esz, s, s, s, kc.data_ptr(), vc.data_ptr(), kc.shape[2],
                    cos.data_ptr(), sin.data_ptr(), pos.data_ptr(), 0 if row is None else row.data_ptr(),
                    out.data_ptr(), lo, qkv.shape[0] if hi is None else hi, h, hkv, d, int(rope), 1.0 / math.sqrt(d))


def _reference_decode(qkv: torch.Tensor, h: int, hkv: int, d: int, kc: torch.Tensor, vc: torch.Tensor,
                      cos: torch.Tensor, sin: torch.Tensor, pos: list[int], row: list[int],
                      rope: bool = True) -> torch.Tensor:
    """Entries in order: RoPE q/k at pos, write k/v into kc/vc (in place) at (row, pos), softmax attention over
    positions 0..pos of that row (float64 math). Returns [n, H, D] fp32."""
    n = qkv.shape[0]
    gs = h // hkv
    out = torch.empty(n, h, d)
    for b in range(n):
        p, r = pos[b], row[b]
        q = qkv[b, :h * d].view(h, d)
        k = qkv[b, h * d:(h + hkv) * d].view(hkv, d)
        v = qkv[b, (h + hkv) * d:(h + 2 * hkv) * d].view(hkv, d)
        if rope:
            q, k = _rope(q, cos[p], sin[p]), _rope(k, cos[p], sin[p])
        kc[r, :, p] = k
        vc[r, :, p] = v
        keys = kc[r, :, :p + 1].double().repeat_interleave(gs, dim=0)  # [H, p+1, D]
        vals = vc[r, :, :p + 1].double().repeat_interleave(gs, dim=0)
        scores = torch.einsum("hd,htd->ht", q.double(), keys) / math.sqrt(d)
        out[b] = torch.einsum("ht,htd->hd", scores.softmax(-1), vals).float()
    return out


def _written_mask(kc: torch.Tensor, row: list[int], pos: list[int]) -> torch.Tensor:
    m = torch.zeros(kc.shape[0], kc.shape[2], dtype=torch.bool)
    m[torch.tensor(row), torch.tensor(pos)] = True
    return m[:, None, :, None].expand_as(kc)


# ----------------------------------------------------------------------------------------------------- decode


def test_simd_selection() -> None:
    """`decode` needs a head size that is a multiple of 16 (<= 256); other sizes are refused with ValueError."""
    assert _kernels.simd(40) is False and _kernels.simd(24) is False and _kernels.simd(272) is False
    assert _kernels.simd(16) is _kernels.simd(64) is _kernels.simd(128) is _kernels.simd(256) is True
    kc = torch.zeros(2, 1, 8, 40)
    qkv, cos, sin = _qkv(1, 1, 1, 40, pad=0), *_cos_sin(8, 40)
    with pytest.raises(ValueError, match="head_dim"):
        _call_decode(qkv, 1, 1, 40, kc, kc.clone(), cos, sin, torch.zeros(1, dtype=torch.long), None,
                     torch.empty(1, 1, 40))


# (H, Hkv, D): MHA and GQA (groups of 2 and 4); D = 16/48/64/80/128 cover the AVX-512 value pass with 1, 3, 4, 4+1
# and 4+4 column blocks
DECODE_CASES = [
    (4, 4, 64), (8, 2, 64), (4, 2, 64),
    (4, 4, 128), (8, 2, 128), (4, 2, 128),
    (2, 2, 16), (4, 1, 48), (4, 2, 80),
]


@pytest.mark.parametrize("h,hkv,d", DECODE_CASES, ids=[f"H{h}-Hkv{k}-D{d}" for h, k, d in DECODE_CASES])
@pytest.mark.parametrize("row_mode", ["scrambled", "identity"])
def test_decode_matches_reference(h: int, hkv: int, d: int, row_mode: str) -> None:
    torch.manual_seed(1000 + h * 7 + hkv * 3 + d)
    n_rows, max_len = 7, 37
    cos, sin = _cos_sin(max_len, d)
    # scrambled: entries point at cache rows in a shuffled order (some rows unused); identity: row array NULL
    row = [4, 0, 6, 2, 5, 1] if row_mode == "scrambled" else list(range(6))
    pos = [0, max_len - 1, 3, 16, 1, 21]  # lengths 1 .. max_len, across the 4-key and 16-key blocks
    n = len(row)
    qkv = _qkv(n, h, hkv, d, pad=5, q_scale=3.0)  # sharper softmax than plain randn
    kc = torch.randn(n_rows, hkv, max_len, d)  # stale entries everywhere: only 0..pos of each row may be read
    vc = torch.randn(n_rows, hkv, max_len, d)
    kc0, vc0 = kc.clone(), vc.clone()
    ref_k, ref_v = kc.clone(), vc.clone()
    expected = _reference_decode(qkv, h, hkv, d, ref_k, ref_v, cos, sin, pos, row)
    out = torch.full((n, h, d), float("nan"))
    pos_t = torch.tensor(pos, dtype=torch.long)
    row_t = torch.tensor(row, dtype=torch.long) if row_mode == "scrambled" else None
    _call_decode(qkv, h, hkv, d, kc, vc, cos, sin, pos_t, row_t, out)

    torch.testing.assert_close(out, expected, atol=ATOL, rtol=1e-5)
    written = _written_mask(kc, row, pos)
    # the new entries: rotated k (same products as torch, summed possibly with an FMA) and the raw v, bit for bit
    torch.testing.assert_close(kc[written], ref_k[written], atol=1e-6, rtol=1e-6)
    assert torch.equal(vc[written], ref_v[written])
    for b, (r, p) in enumerate(zip(row, pos, strict=True)):
        assert torch.equal(vc[r, :, p], qkv[b, (h + hkv) * d:(h + 2 * hkv) * d].view(hkv, d))
    # nothing else in the cache changed
    assert torch.equal(kc[~written], kc0[~written])
    assert torch.equal(vc[~written], vc0[~written])


@pytest.mark.parametrize("d", [64, 48])
def test_decode_lo_hi_and_no_rope(d: int) -> None:
    """Only entries lo..hi-1 are processed (others' outputs and cache entries untouched); rope=0 copies k as is."""
    torch.manual_seed(7 + d)
    h, hkv, n_rows, max_len = 4, 2, 5, 20
    cos, sin = _cos_sin(max_len, d)
    row, pos = [3, 1, 4, 0, 2], [5, 0, 19, 7, 12]
    qkv = _qkv(len(row), h, hkv, d, pad=0)
    kc, vc = torch.randn(n_rows, hkv, max_len, d), torch.randn(n_rows, hkv, max_len, d)
    kc0, vc0 = kc.clone(), vc.clone()
    ref_k, ref_v = kc.clone(), vc.clone()
    expected = _reference_decode(qkv[1:4], h, hkv, d, ref_k, ref_v, cos, sin, pos[1:4], row[1:4], rope=False)
    out = torch.full((len(row), h, d), -123.0)
    _call_decode(qkv, h, hkv, d, kc, vc, cos, sin, torch.tensor(pos), torch.tensor(row), out, lo=1, hi=4, rope=False)
    torch.testing.assert_close(out[1:4], expected, atol=ATOL, rtol=1e-5)
    assert bool((out[0] == -123.0).all()) and bool((out[4] == -123.0).all())
    written = _written_mask(kc, row[1:4], pos[1:4])
    assert torch.equal(kc[written], ref_k[written])  # no RoPE: k copied bit for bit
    assert torch.equal(vc[written], ref_v[written])
    assert torch.equal(kc[~written], kc0[~written]) and torch.equal(vc[~written], vc0[~written])


PREFILL_CASES = [(4, 4, 64), (8, 2, 64), (4, 2, 128), (4, 1, 48), (4, 4, 80), (8, 2, 16)]


@pytest.mark.parametrize("h,hkv,d", PREFILL_CASES, ids=[f"H{h}-Hkv{k}-D{d}" for h, k, d in PREFILL_CASES])
def test_packed_prefill_equals_causal_attention_per_prompt(h: int, hkv: int, d: int) -> None:
    """Several prompts packed token after token (row = each token's cache row, pos = 0..len-1) through `decode`."""
    torch.manual_seed(2000 + h + hkv + d)
    max_len = 24
    prompts = [(2, 9), (0, 1), (4, 17), (1, 4), (3, 6)]  # (cache row, prompt length), rows out of order
    n_rows = 5
    row = [r for r, n in prompts for _ in range(n)]
    pos = [p for _, n in prompts for p in range(n)]
    n = len(row)
    cos, sin = _cos_sin(max_len, d)
    qkv = _qkv(n, h, hkv, d, pad=3, q_scale=2.0)
    kc, vc = torch.randn(n_rows, hkv, max_len, d), torch.randn(n_rows, hkv, max_len, d)  # garbage beyond prompts
    kc0, vc0 = kc.clone(), vc.clone()
    out = torch.empty(n, h, d)
    _call_decode(qkv, h, hkv, d, kc, vc, cos, sin, torch.tensor(pos), torch.tensor(row), out)

    # reference: per prompt, RoPE over its positions then causal SDPA (float64), independent of the cache
    start = 0
    for r, length in prompts:
        blk = qkv[start:start + length]
        c, s = cos[:length, None, :], sin[:length, None, :]
        q = _rope(blk[:, :h * d].view(length, h, d), c, s)
        k = _rope(blk[:, h * d:(h + hkv) * d].view(length, hkv, d), c, s)
        v = blk[:, (h + hkv) * d:(h + 2 * hkv) * d].view(length, hkv, d)
        o = F.scaled_dot_product_attention(q.transpose(0, 1).double(), k.transpose(0, 1).double(),
                                           v.transpose(0, 1).double(), is_causal=True,
                                           enable_gqa=h != hkv)  # [H, len, D]
        torch.testing.assert_close(out[start:start + length], o.transpose(0, 1).float(), atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(kc[r, :, :length], k.transpose(0, 1), atol=1e-6, rtol=1e-6)
        assert torch.equal(vc[r, :, :length], v.transpose(0, 1))
        # the rest of the row is untouched
        assert torch.equal(kc[r, :, length:], kc0[r, :, length:]) and torch.equal(vc[r, :, length:], vc0[r, :, length:])
        start += length


# ----------------------------------------------------------------------------------------------------- lora


LORA_CASES = [(1, 4, (24,)), (1, 16, (40,)), (3, 4, (24, 8, 40)), (3, 16, (24, 8, 40)), (2, 16, (72, 8)),
              (3, 32, (24, 8, 40)), (1, 64, (16,))]


@pytest.mark.parametrize("fin", [36, 37], ids=["in36", "in37-odd"])
@pytest.mark.parametrize("k,r,outs", LORA_CASES,
                         ids=[f"k{k}-r{r}-out{'-'.join(map(str, o))}" for k, r, o in LORA_CASES])
def test_lora_matches_per_row_reference(k: int, r: int, outs: tuple[int, ...], fin: int) -> None:
    torch.manual_seed(3000 + 10 * k + r)
    cap, n_total = 6, 40
    width = sum(outs)
    a = torch.randn(cap, fin, k * r)  # [cap, in, k r]: the k modules' A side by side
    bs = [torch.randn(cap, r, o) for o in outs]  # per module [cap, r, out_j]
    # x and y are column slices of wider tensors: row stride larger than the width
    x_wide = torch.randn(n_total, fin + 11)
    x = x_wide[:, 5:5 + fin]
    y_wide = torch.randn(n_total, width + 13)
    y = y_wide[:, 7:7 + width]
    assert x.stride(0) > fin and y.stride(0) > width
    # rows sorted by slot, 1..9 rows per slot (beyond the kernel's 4-row chunk), rows scrambled within the batch
    counts = {0: 1, 2: 9, 3: 4, 4: 5, 5: 2}
    perm = torch.randperm(n_total).tolist()
    slots_l = [s for s, c in counts.items() for _ in range(c)]
    rows_l = perm[:len(slots_l)]
    rows, slots = torch.tensor(rows_l, dtype=torch.long), torch.tensor(slots_l, dtype=torch.long)
    y_before = y_wide.clone()

    _kernels.lora(x.data_ptr(), x.stride(0), fin, y.data_ptr(), y.stride(0), rows.data_ptr(), slots.data_ptr(),
                  len(rows_l), a.data_ptr(), k * r, r, k, *([b.data_ptr() for b in bs] + [0] * (4 - k)),
                  *(list(outs) + [0] * (4 - k)))

    expected = y_before.clone()
    for row, s in zip(rows_l, slots_l, strict=True):
        t = x[row].double() @ a[s].double()  # [k r]
        delta = torch.cat([t[j * r:(j + 1) * r] @ bs[j][s].double() for j in range(k)])
        expected[row, 7:7 + width] += delta.float()
    routed = torch.zeros(n_total, dtype=torch.bool)
    routed[rows] = True
    # fp32 sums of up to in x r products of N(0, 1) values against a float64 reference: scale the tolerance with r
    torch.testing.assert_close(y_wide[routed], expected[routed], atol=ATOL * max(1, r // 8), rtol=1e-5)
    assert torch.equal(y_wide[~routed], y_before[~routed])  # unrouted rows untouched
    assert torch.equal(y_wide[:, :7], y_before[:, :7]) and torch.equal(y_wide[:, 7 + width:], y_before[:, 7 + width:])
    assert not torch.equal(y_wide[routed], y_before[routed])  # the update did happen


def test_lora_no_rows_is_a_no_op() -> None:
    x, y = torch.randn(3, 8), torch.randn(3, 16)
    y0 = y.clone()
    a, b = torch.randn(1, 8, 4), torch.randn(1, 4, 16)
    rows = torch.zeros(0, dtype=torch.long)
    _kernels.lora(x.data_ptr(), 8, 8, y.data_ptr(), 16, rows.data_ptr(), rows.data_ptr(), 0, a.data_ptr(), 4, 4, 1,
                  b.data_ptr(), 0, 0, 0, 16, 0, 0, 0)
    assert torch.equal(y, y0)


def test_pool_native_path_matches_reference_on_strided_output() -> None:
    """LoraPool.apply's native call site (cached stack pointers) on a strided fused output, after the stacks grew."""
    from inference.lora import LoraPool, Segment

    torch.manual_seed(11)
    shapes = {"q_proj": (32, 32), "k_proj": (32, 8), "v_proj": (32, 16)}
    pool = LoraPool(shapes, 1, initial_capacity=1)
    assert pool.native
    adapters = []
    for _ in range(3):  # the third alloc grows the stacks: cached pointers must follow
        a = {(0, m): torch.randn(8, 32) for m in shapes}
        b = {(0, m): torch.randn(shapes[m][1], 8) for m in shapes}
        adapters.append((pool.alloc(8, a, b, 0.5, tuple(shapes)), a, b))
        x = torch.randn(10, 32)
        y_wide = torch.randn(10, 56 + 4)
        y = y_wide[:, :56]
        y0, tail = y.clone(), y_wide[:, 56:].clone()
        rows = {6: 0, 1: 0, 9: len(adapters) - 1, 2: len(adapters) - 1}
        routing = pool.routing([Segment(slot=adapters[i][0], start=row, length=1) for row, i in rows.items()])
        pool.apply(routing, 0, "qkv", x, y)
        for row in range(10):
            if row not in rows:
                assert torch.equal(y[row], y0[row])
                continue
            _, a, b = adapters[rows[row]]
            ref = y0[row] + torch.cat([0.5 * (x[row] @ a[(0, m)].T) @ b[(0, m)].T for m in shapes])
            torch.testing.assert_close(y[row], ref, atol=ATOL, rtol=1e-5)
        assert torch.equal(y_wide[:, 56:], tail)  # columns beyond the fused output are never written


# ----------------------------------------------------------------------------------------------------- elementwise


def _llama_rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' LlamaRMSNorm.forward (fp32)."""
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


@pytest.mark.parametrize("d", [512, 40])
@pytest.mark.parametrize("with_res", [False, True])
def test_add_rmsnorm_matches_llama_rmsnorm(d: int, with_res: bool) -> None:
    torch.manual_seed(4000 + d + with_res)
    n, eps = 7, 1e-6
    x = torch.randn(n, d) * 3.0
    res = torch.randn(n, d)
    w = torch.randn(d)
    out = torch.full((n, d), float("nan"))
    x0 = x.clone()
    _kernels.add_rmsnorm(x.data_ptr(), res.data_ptr() if with_res else 0, w.data_ptr(), out.data_ptr(), n, d, eps)
    xs = x0 + res if with_res else x0
    assert torch.equal(x, xs)  # the residual stream is updated in place (or left alone)
    torch.testing.assert_close(out, _llama_rms_norm(xs, w, eps), atol=ATOL, rtol=1e-5)


@pytest.mark.parametrize("inter", [1408, 40])
def test_silu_mul_matches_torch(inter: int) -> None:
    torch.manual_seed(5000 + inter)
    n = 5
    gu = torch.randn(n, 2 * inter) * 4.0
    gu[0, :3] = torch.tensor([-90.0, 0.0, 90.0])  # saturated gates
    out = torch.full((n, inter), float("nan"))
    gu0 = gu.clone()
    _kernels.silu_mul(gu.data_ptr(), out.data_ptr(), n, inter)
    assert torch.equal(gu, gu0)
    torch.testing.assert_close(out, F.silu(gu[:, :inter]) * gu[:, inter:], atol=1e-6, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------- bad args


def test_bad_arguments_raise_value_error() -> None:
    def decode(h: int, hkv: int, d: int, lo: int = 0, hi: int = 1, max_len: int = 8, rope: int = 1) -> None:
        _kernels.decode(0, 0, 0, 1, 1, 1, 0, 0, max_len, 0, 0, 0, 0, 0, lo, hi, h, hkv, d, rope, 1.0)

    bad_decode: list[Callable[[], None]] = [
        lambda: decode(6, 4, 16),  # H not a multiple of Hkv
        lambda: decode(4, 0, 16),  # no kv heads
        lambda: decode(4, 2, 0),  # no head dim
        lambda: decode(4, 2, 15),  # odd head dim with RoPE
        lambda: decode(4, 2, 16, lo=3, hi=2),  # hi < lo
        lambda: decode(4, 2, 16, lo=-1, hi=2),
        lambda: decode(4, 2, 16, max_len=0),
    ]
    for call in bad_decode:
        with pytest.raises(ValueError, match="decode"):
            call()

    def lora(k: int, r: int, kr: int, outs: tuple[int, int, int, int] = (8, 8, 8, 8), fin: int = 8,
             n: int = 1) -> None:
        _kernels.lora(0, 8, fin, 0, 8, 0, 0, n, 0, kr, r, k, 0, 0, 0, 0, *outs)

    bad_lora: list[Callable[[], None]] = [
        lambda: lora(0, 4, 0),  # k = 0
        lambda: lora(5, 4, 20),  # k > 4
        lambda: lora(2, 4, 4),  # kr != k r
        lambda: lora(1, 0, 0),  # r = 0
        lambda: lora(1, 4, 4, fin=0),
        lambda: lora(1, 4, 4, n=-1),
        lambda: lora(2, 4, 8, outs=(8, 0, 8, 8)),  # a module of width 0
    ]
    for call in bad_lora:
        with pytest.raises(ValueError, match="lora"):
            call()

    for bad in (lambda: _kernels.add_rmsnorm(0, 0, 0, 0, 1, 0, 1e-6),
                lambda: _kernels.add_rmsnorm(0, 0, 0, 0, -1, 8, 1e-6)):
        with pytest.raises(ValueError, match="add_rmsnorm"):
            bad()
    for bad in (lambda: _kernels.silu_mul(0, 0, 1, 0), lambda: _kernels.silu_mul(0, 0, -1, 8)):
        with pytest.raises(ValueError, match="silu_mul"):
            bad()


# ----------------------------------------------------------------------------------------------------- engine


@pytest.fixture(scope="module")
def kernel_adapters(tmp_path_factory: pytest.TempPathFactory, make_adapter: Any) -> list[pathlib.Path]:
    root = tmp_path_factory.mktemp("kernel-adapters")
    specs = [(4, ("q_proj", "v_proj")), (8, ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                              "down_proj")), (16, ("o_proj", "down_proj"))]
    return [make_adapter(root / f"kad{i}", seed=7000 + i, rank=rank, targets=t, alpha=2 * rank)
            for i, (rank, t) in enumerate(specs)]


def test_engine_native_and_torch_paths_give_identical_tokens(
        tiny_base_dir: pathlib.Path, kernel_adapters: list[pathlib.Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from inference.adapters.cache import AdapterCache
    from inference.adapters.weights import linear_shapes
    from inference.engine import Engine, EngineConfig, GenerationRequest
    from inference.lora import LoraPool
    from inference.model import load_base_model

    base = load_base_model(tiny_base_dir)
    head_dim = base.config.hidden_size // base.config.num_attention_heads
    if not _kernels.simd(head_dim):
        pytest.skip(f"no AVX-512 decode path for head_dim {head_dim} on this CPU: the engine runs torch")
    counter = CountingKernels(_kernels)
    monkeypatch.setattr(kernels_mod, "ext", counter)  # every native call in the package goes through kernels.ext
    prompts = ["Decode a JSON document", "def dumps(obj, *, skipkeys=False):", "indent",
               "If ensure_ascii is false, these characters will be output as-is."]
    jobs: list[tuple[str | None, str]] = [(a.name, prompts[i % len(prompts)]) for i, a in enumerate(kernel_adapters)]
    jobs += [(kernel_adapters[1].name, prompts[3]), (None, prompts[0]), (kernel_adapters[0].name, prompts[2]),
             (None, prompts[3])]

    def run(native: bool) -> list[list[int]]:
        pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
        assert pool.native  # CPU fp32 with the extension built
        pool.native = native
        cache = AdapterCache(base.config, pool)
        for p in kernel_adapters:
            cache.add(p)
        eng = Engine(base, cache, EngineConfig(max_batch=16, max_seq_len=96, native_attention=native))
        assert eng.fwd.native_attention_ok is native and eng.fwd.native_elementwise is native
        try:
            handles = [eng.submit(GenerationRequest(prompt=p, adapter=a, max_tokens=16)) for a, p in jobs]
            eng.run_until_idle(timeout=120)
            return [h.result().token_ids for h in handles]
        finally:
            eng.stop()
            cache.close()

    native_tokens = run(True)
    native_calls = dict(counter.calls)
    counter.calls.clear()
    torch_tokens = run(False)
    assert counter.calls.get("decode", 0) == counter.calls.get("lora", 0) == 0  # the torch run stayed in torch
    assert counter.calls.get("add_rmsnorm", 0) == counter.calls.get("silu_mul", 0) == 0
    # the native run really took every native path (prefill + decode attention, LoRA, elementwise)
    assert all(native_calls.get(f, 0) > 0 for f in ("decode", "lora", "add_rmsnorm", "silu_mul")), native_calls
    assert sum(len(t) for t in torch_tokens) > 2 * len(jobs)  # real decode steps, not just one token each
    assert native_tokens == torch_tokens


# ----------------------------------------------------------------------------- fp16 storage (K/V cache, LoRA stacks)


def test_lora_pool_fp16_storage_halves_bytes_and_stays_close() -> None:
    from inference.lora import LoraPool, Segment

    if not _kernels.available():
        pytest.skip("no AVX-512BW/VL: fp16 LoRA stacks are refused on this CPU")
    shapes = {"q_proj": (64, 64), "k_proj": (64, 24), "v_proj": (64, 24), "o_proj": (64, 64)}
    g = torch.Generator().manual_seed(3)
    a = {(0, m): torch.randn(8, shapes[m][0], generator=g) for m in shapes}
    b = {(0, m): torch.randn(shapes[m][1], 8, generator=g) for m in shapes}
    pools = [LoraPool(shapes, 1), LoraPool(shapes, 1, storage_dtype=torch.float16)]
    assert pools[1].slot_nbytes(8, tuple(shapes)) * 2 == pools[0].slot_nbytes(8, tuple(shapes))
    x = torch.randn(5, 64, generator=g)
    outs = []
    for pool in pools:
        slot = pool.alloc(8, a, b, 0.5, tuple(shapes))
        routing = pool.routing([Segment(slot=slot, start=1, length=3)])
        y = torch.zeros(5, 64 + 24 + 24)
        pool.apply(routing, 0, "qkv", x, y)
        outs.append(y)
    assert pools[1].allocated_bytes * 2 == pools[0].allocated_bytes
    assert torch.count_nonzero(outs[1][[0, 4]]) == 0 and torch.count_nonzero(outs[1][1:4]) > 0
    torch.testing.assert_close(outs[1], outs[0], rtol=2e-3, atol=2e-2)  # fp16 weights, fp32 math
    with pytest.raises(ValueError, match="native CPU kernel"):
        LoraPool(shapes, 1, dtype=torch.float64, storage_dtype=torch.float16)


def test_engine_fp16_kv_cache(tiny_base_dir: pathlib.Path) -> None:
    from inference.engine import Engine, EngineConfig, GenerationRequest
    from inference.model import load_base_model

    base = load_base_model(tiny_base_dir)
    if not _kernels.simd(base.config.hidden_size // base.config.num_attention_heads):
        pytest.skip("no AVX-512 decode path on this CPU: fp16 K/V is refused")
    with pytest.raises(ValueError, match="kv_dtype"):
        Engine(base, None, EngineConfig(max_seq_len=64, kv_dtype="int8"))
    with pytest.raises(ValueError, match="native CPU kernel"):
        Engine(base, None, EngineConfig(max_seq_len=64, kv_dtype="float16", native_attention=False))
    tokens = []
    for kv_dtype in (None, "float16"):
        eng = Engine(base, None, EngineConfig(max_batch=4, max_seq_len=64, kv_dtype=kv_dtype))
        assert eng.kv.k.dtype == (torch.float16 if kv_dtype else torch.float32)
        h = eng.submit(GenerationRequest(prompt="def dumps(obj, *, skipkeys=False):", max_tokens=12, ignore_eos=True))
        eng.run_until_idle(timeout=60)
        tokens.append(h.result().token_ids)
        assert torch.count_nonzero(eng.kv.k) > 0  # the cache really was written in its dtype
    assert len(tokens[0]) == len(tokens[1]) == 12
    assert tokens[1][:4] == tokens[0][:4]  # half-precision K/V: the first greedy tokens agree
