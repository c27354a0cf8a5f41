"""Attention for the engine's two step kinds, on either kernel path (`inference.kernels`).

- `PrefillAttention`: causal attention of newly admitted prompts packed in one forward;
- `DecodeAttention`: one new token per running row;
- each is a callable `(layer, q, k, v) -> [N, H D]` for the torch path (SDPA), and offers `fused(layer, qkv)` when
  the native kernel applies (RoPE, K/V write and attention in one call over the raw fused q/k/v projection).

Model code builds them through its `prefill_attend`/`decode_attend` and never touches the K/V cache layout itself, so
attention can change (paged K/V, another kernel) without touching a model's forward.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F  # noqa: N812

from inference import kernels
from inference.kv import KVCache

__all__ = ["DECODE_CHUNK_OVERHEAD_KEYS", "AttentionShape", "DecodeAttention", "PrefillAttention", "decode_chunks",
           "native_attention"]


class AttentionShape(Protocol):
    """What attention needs from a model forward: head layout, RoPE tables, whether the native kernel applies."""

    n_heads: int
    n_kv: int
    head_dim: int
    q_size: int
    kv_size: int
    cos: torch.Tensor
    sin: torch.Tensor

    @property
    def native_attention_ok(self) -> bool: ...


# the fixed cost of one more attention call, expressed in row-keys read (ratio measured in docs/inference-engine.md)
DECODE_CHUNK_OVERHEAD_KEYS = 128


def decode_chunks(pos: list[int]) -> list[tuple[int, int, int]]:
    """Split decode rows 0..B-1 (row i's new token at `pos[i]`) into contiguous ``(lo, hi, keys)`` chunks.

    Each chunk attends over keys ``0..keys-1`` (its longest row), so short rows stop paying for the batch's
    longest one. Tries equal chunks of B, 32, 16, 8 and 4 rows and keeps the cheapest by key reads plus the fixed
    per-call overhead `DECODE_CHUNK_OVERHEAD_KEYS` (the engine places each prefill wave longest-first, so rows of
    similar length are neighbours)."""
    b = len(pos)
    best: list[tuple[int, int, int]] = [(0, b, max(pos) + 1)] if pos else []
    best_cost = b * (max(pos) + 1) if pos else 0
    for size in (32, 16, 8, 4):
        if size >= b:
            continue
        chunks = [(lo, min(b, lo + size), max(pos[lo:lo + size]) + 1) for lo in range(0, b, size)]
        cost = sum((hi - lo) * n + DECODE_CHUNK_OVERHEAD_KEYS for lo, hi, n in chunks)
        if cost < best_cost:
            best, best_cost = chunks, cost
    return best


class PrefillAttention:
    """Prefill attention of one packed wave: `__call__(layer, q, k, v)` (SDPA over the padded block) and, when the
    native kernel applies, `fused(layer, qkv)` (RoPE, K/V write and each token's causal attention in one call)."""

    def __init__(self, fwd: AttentionShape, kv: KVCache, first_row: int, n_rows: int, seg_len: int,
                 row_tok: torch.Tensor, pos_tok: torch.Tensor, flat_pos: torch.Tensor) -> None:
        self.fwd, self.kv, self.first_row, self.n_rows, self.seg_len = fwd, kv, first_row, n_rows, seg_len
        self.row_tok, self.pos_tok, self.flat_pos = row_tok, pos_tok, flat_pos
        self.fused: Callable[[int, torch.Tensor], torch.Tensor] | None = None
        if (fwd.native_attention_ok and kv.k.is_contiguous() and row_tok.dtype == torch.long
                and pos_tok.dtype == torch.long and seg_len <= kv.max_len):
            self.row_tok, self.pos_tok = row_tok.contiguous(), pos_tok.contiguous()
            self.fused = self._native

    def _native(self, li: int, qkv: torch.Tensor) -> torch.Tensor:
        return native_attention(self.fwd, self.kv, li, qkv, self.pos_tok, self.row_tok)

    def __call__(self, li: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        f, kv, p, t = self.fwd, self.kv, self.n_rows, self.seg_len
        kv.k[li][self.row_tok, :, self.pos_tok] = k  # [N, Hkv, D]
        kv.v[li][self.row_tok, :, self.pos_tok] = v
        qp = q.new_zeros(p * t, f.n_heads, f.head_dim)
        qp.index_copy_(0, self.flat_pos, q)
        qp = qp.view(p, t, f.n_heads, f.head_dim).transpose(1, 2)  # [P, H, T, D]
        keys = kv.k[li, self.first_row:self.first_row + p, :, :t]  # [P, Hkv, T, D]
        vals = kv.v[li, self.first_row:self.first_row + p, :, :t]
        # padding sits after each prompt, so causality alone keeps real queries off padded keys
        o = F.scaled_dot_product_attention(qp, keys, vals, is_causal=True,
                                           enable_gqa=f.n_kv != f.n_heads)  # [P, H, T, D]
        o = o.transpose(1, 2).reshape(p * t, f.q_size)
        return o.index_select(0, self.flat_pos)  # [N, H D]


def native_attention(f: AttentionShape, kv: KVCache, li: int, qkv: torch.Tensor, pos: torch.Tensor,
                     rows: torch.Tensor | None) -> torch.Tensor:
    """RoPE + K/V write + causal attention of N entries (decode rows, or packed prefill tokens in row/position order)
    in one call of the native kernel; qkv [N, (H + 2 Hkv) D] is the raw fused projection. Returns [N, H D]."""
    ext = kernels.ext
    assert ext is not None and qkv.is_contiguous() and qkv.dtype == torch.float32
    n = qkv.shape[0]
    out = qkv.new_empty(n, f.n_heads, f.head_dim)
    esz = qkv.element_size()
    q = qkv.data_ptr()
    stride = qkv.stride(0)
    ext.decode(q, q + f.q_size * esz, q + (f.q_size + f.kv_size) * esz, stride, stride, stride,
               kv.k[li].data_ptr(), kv.v[li].data_ptr(), kv.max_len, f.cos.data_ptr(), f.sin.data_ptr(),
               pos.data_ptr(), 0 if rows is None else rows.data_ptr(), out.data_ptr(), 0, n, f.n_heads, f.n_kv,
               f.head_dim, 1, 1.0 / math.sqrt(f.head_dim), kv.k.dtype == torch.float16)
    return out.view(n, f.q_size)


class DecodeAttention:
    """Decode attention of one step: `__call__(layer, q, k, v)` (rotated q/k, SDPA) and, when the native kernel
    applies, `fused(layer, qkv)` (the raw fused qkv projection: RoPE, K/V write and attention in one call)."""

    def __init__(self, fwd: AttentionShape, kv: KVCache, rows: torch.Tensor, pos: torch.Tensor, length: int,
                 pos_list: list[int] | None) -> None:
        self.fwd, self.kv, self.rows, self.pos, self.length = fwd, kv, rows, pos, length
        self.b = rows.shape[0]
        self._mask: torch.Tensor | None = None
        self.fused: Callable[[int, torch.Tensor], torch.Tensor] | None = None
        if fwd.native_attention_ok and kv.k.is_contiguous() and pos.dtype == torch.long and length <= kv.max_len:
            self.pos = pos.contiguous()
            self.fused = self._native
            self.chunks: list[tuple[int, int, int]] = []  # unused: every row reads exactly its own keys
        else:
            self.chunks = decode_chunks(pos_list) if pos_list is not None else [(0, self.b, length)]

    def _native(self, li: int, qkv: torch.Tensor) -> torch.Tensor:
        return native_attention(self.fwd, self.kv, li, qkv, self.pos, None)

    def __call__(self, li: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        f, kv, b = self.fwd, self.kv, self.b
        if not self.chunks:  # a model layer the fused path does not cover (q/k norms): SDPA over all rows
            self.chunks = [(0, b, self.length)]
        if self._mask is None:
            self._mask = (torch.arange(self.length, device=self.pos.device)[None, :]
                          <= self.pos[:, None])[:, None, None, :]  # [B,1,1,L]
        mask = self._mask
        kv.k[li][self.rows, :, self.pos] = k  # k: [B, Hkv, D]
        kv.v[li][self.rows, :, self.pos] = v
        q4 = q[:, :, None, :]
        gqa = f.n_kv != f.n_heads
        if len(self.chunks) == 1:
            _, _, n = self.chunks[0]
            o = F.scaled_dot_product_attention(q4, kv.k[li, :b, :, :n], kv.v[li, :b, :, :n],
                                               attn_mask=mask[..., :n], enable_gqa=gqa)  # [B, H, 1, D]
            return o.reshape(b, f.q_size)
        out = q.new_empty(b, f.n_heads, 1, f.head_dim)
        for lo, hi, n in self.chunks:
            out[lo:hi] = F.scaled_dot_product_attention(
                q4[lo:hi], kv.k[li, lo:hi, :, :n], kv.v[li, lo:hi, :, :n], attn_mask=mask[lo:hi, ..., :n],
                enable_gqa=gqa)
        return out.reshape(b, f.q_size)
