"""Per-row KV cache for the continuous-batching engine: one preallocated tensor per K and V for all layers.

Layout ``[layers, rows, kv_heads, max_len, head_dim]``, in the model's dtype or fp16 (`EngineConfig.kv_dtype`). The
engine keeps the running batch compact (rows ``0..B-1``): the native CPU kernel reads each row's own prefix, the torch
path attends over the view ``k[layer, :B, :, :L]`` without any gather. A finished row is filled by moving the last
row into it (`move_row`, one copy of that row's prefix across all layers).
"""

from __future__ import annotations

import torch

__all__ = ["KVCache"]


class KVCache:
    """Preallocated K/V storage for `rows` sequences of up to `max_len` tokens each."""

    def __init__(self, n_layers: int, rows: int, n_kv_heads: int, max_len: int, head_dim: int, *,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        shape = (n_layers, rows, n_kv_heads, max_len, head_dim)
        # zeros, not empty: masked-out positions must hold finite values (0 * NaN would poison the softmax output)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.rows = rows
        self.max_len = max_len

    @property
    def nbytes(self) -> int:
        """Bytes held by K and V together."""
        return 2 * self.k.numel() * self.k.element_size()

    def move_row(self, src: int, dst: int, length: int) -> None:
        """Copy the first `length` positions of row `src` into row `dst` (all layers)."""
        if src == dst or length <= 0:
            return
        self.k[:, dst, :, :length].copy_(self.k[:, src, :, :length])
        self.v[:, dst, :, :length].copy_(self.v[:, src, :, :length])

    def permute_rows(self, order: list[int]) -> None:
        """Rows ``0..len(order)-1`` take the contents of rows ``order[0], order[1], ...`` (all layers, positions)."""
        idx = torch.tensor(order, dtype=torch.long, device=self.k.device)
        n = len(order)
        self.k[:, :n] = self.k.index_select(1, idx)
        self.v[:, :n] = self.v.index_select(1, idx)
