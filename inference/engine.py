"""Continuous-batching engine: one base model, many LoRA adapters, every running row in one forward pass per step.

Architecture (see docs/inference-engine.md):
- `LlamaForward`: a small gpt-fast style forward over the Hugging Face weights (fused qkv and gate/up matmuls,
  RoPE, RMSNorm, SDPA), applying the batched LoRA of `inference.lora` inside its linear layers.
- `KVCache` (`inference.kv`): per-row preallocated K/V; the running batch is kept compact in rows ``0..B-1``.
- `Engine.step()`: admit queued requests whose adapter is ready (up to `max_batch` rows and a prefill token
  budget), prefill them packed in one forward, then decode every running row in one forward; rows join and leave at
  token boundaries. Tokens stream through `RequestHandle` (sync) or `Engine.generate` (async iterator).
- On finish each request carries a `Usage` (model id, adapter id, token counts, queue/prefill/decode ms, the
  adapter's cache tier at admission, finish reason).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F  # noqa: N812
from transformers.activations import ACT2FN

from inference.errors import InferenceError
from inference.kv import KVCache
from inference.lora import LoraPool, LoraRouting, PoolSlot, Segment
from inference.sampling import SamplingParams, make_generator, sample

try:  # built by `pip install -e .` when a C compiler is present (optional extension, see inference/_kernels.c)
    import inference._kernels as _kernels
except ImportError:  # pragma: no cover - depends on the build; SDPA gives the same results, slower
    _kernels = None

__all__ = [
    "ZERO_ID",
    "Completion",
    "Engine",
    "EngineConfig",
    "EngineOverloaded",
    "EngineStopped",
    "GenerationRequest",
    "LlamaForward",
    "RequestHandle",
    "RequestInvalid",
    "RequestTooLong",
    "StreamEvent",
    "Usage",
]

logger = logging.getLogger(__name__)

ZERO_ID = bytes(32)  # adapterId of the bare base model (DESIGN.md)
_ids = itertools.count(1)

# ===================================================================================================== ERRORS


class EngineOverloaded(InferenceError):
    """The admission queue is full: retry after `retry_after_s` seconds (HTTP 429 with Retry-After)."""

    def __init__(self, queue_limit: int, retry_after_s: float) -> None:
        self.queue_limit = queue_limit
        self.retry_after_s = retry_after_s
        super().__init__(f"engine overloaded: {queue_limit} requests are already queued; retry after "
                         f"{retry_after_s:.0f} s or raise the engine's max_queue")


class RequestInvalid(InferenceError, ValueError):
    """The request itself is malformed (empty prompt, max_tokens < 1, unknown token ids): fix the request."""


class RequestTooLong(RequestInvalid):
    """Prompt tokens plus max_tokens exceed the engine's max_seq_len: shorten the prompt or lower max_tokens."""


class EngineStopped(InferenceError, RuntimeError):
    """The engine was stopped (or failed) before this request finished: resubmit it to a running engine."""


# ===================================================================================================== API TYPES


@dataclass(frozen=True)
class GenerationRequest:
    """One completion request. `adapter` is an adapter name or id (None: the bare base model)."""

    prompt: str | None = None
    prompt_ids: list[int] | None = None
    adapter: str | bytes | None = None
    max_tokens: int = 16
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    request_id: str = ""


@dataclass(frozen=True)
class Usage:
    """What one finished request used: the input of its attribution record."""

    model_id: bytes
    adapter_id: bytes  # 32 bytes, ZERO_ID for the base model
    prompt_tokens: int
    completion_tokens: int
    queue_ms: float
    prefill_ms: float
    decode_ms: float
    cache_tier: str  # tier of the adapter at admission: "device" | "host" | "disk" | "base"
    finish_reason: str  # "stop" | "length" | "cancelled" | "error"


@dataclass(frozen=True)
class Completion:
    """The final result of a request: text (stop string excluded), generated token ids, usage."""

    request_id: str
    text: str
    token_ids: list[int]
    finish_reason: str
    usage: Usage


@dataclass(frozen=True)
class StreamEvent:
    """One streamed step: a new token and its text delta, or (last event) the `completion`, or an `error`."""

    token_id: int | None = None
    text: str = ""
    completion: Completion | None = None
    error: BaseException | None = None


class AdapterCacheLike(Protocol):
    """What the engine needs from the adapter cache (`inference.adapters.cache.AdapterCache`)."""

    pool: LoraPool

    def acquire(self, name_or_id: str | bytes) -> tuple[bytes, str]: ...
    def activate(self, adapter_id: bytes) -> PoolSlot | None: ...
    def deactivate(self, adapter_id: bytes) -> None: ...
    def release(self, adapter_id: bytes, tokens: int = 0) -> None: ...
    def set_ready_callback(self, fn: Callable[[], None]) -> None: ...


class RequestHandle:
    """A submitted request: iterate `events()` (blocking), wait with `result()`, stop it with `cancel()`."""

    def __init__(self, request_id: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.request_id = request_id
        self._cancelled = False
        self._done = threading.Event()
        self._completion: Completion | None = None
        self._error: BaseException | None = None
        self._loop = loop
        self._sync: queue.SimpleQueue[StreamEvent] = queue.SimpleQueue()
        self._async: asyncio.Queue[StreamEvent] | None = asyncio.Queue() if loop is not None else None

    def cancel(self) -> None:
        """Ask the engine to stop this request at the next token boundary (finish_reason "cancelled")."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        """Whether cancel() was called."""
        return self._cancelled

    @property
    def done(self) -> bool:
        """Whether the request finished (completion or error)."""
        return self._done.is_set()

    def _push(self, ev: StreamEvent) -> None:
        if ev.completion is not None:
            self._completion = ev.completion
        if ev.error is not None:
            self._error = ev.error
        if self._loop is not None and self._async is not None:
            try:
                self._loop.call_soon_threadsafe(self._async.put_nowait, ev)
            except RuntimeError:  # the consumer's loop is closed: nobody listens any more
                self._cancelled = True
        else:
            self._sync.put(ev)
        if ev.completion is not None or ev.error is not None:
            self._done.set()

    def events(self, timeout: float | None = None) -> Iterator[StreamEvent]:
        """Blocking iterator over the stream; raises the request's error if it failed."""
        while True:
            ev = self._sync.get(timeout=timeout)
            if ev.error is not None:
                raise ev.error
            yield ev
            if ev.completion is not None:
                return

    def result(self, timeout: float | None = None) -> Completion:
        """Wait for the completion; raises the request's error if it failed, TimeoutError after `timeout`."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"request {self.request_id} did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._completion is not None
        return self._completion

    async def aevents(self) -> AsyncIterator[StreamEvent]:
        """Async iterator over the stream (handles created with a loop only)."""
        assert self._async is not None, "create the handle through Engine.generate for async streaming"
        while True:
            ev = await self._async.get()
            if ev.error is not None:
                raise ev.error
            yield ev
            if ev.completion is not None:
                return


@dataclass
class EngineConfig:
    """Engine limits: running rows, admission queue, sequence length, prefill tokens per step."""

    max_batch: int = 64
    max_queue: int = 1024
    max_seq_len: int = 512
    prefill_token_budget: int = 1024
    detokenize: bool = True
    native_attention: bool = True  # decode attention in the fused C kernel when it applies (CPU, fp32, AVX-512)
    kv_dtype: str | None = None  # K/V cache storage: None = the model's dtype; "float16" halves the cache bytes that
    # decode attention reads (native CPU kernel only; attention still computes in fp32, greedy output may differ)


# ===================================================================================================== FORWARD


def _rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    # same op order as transformers' LlamaRMSNorm (fp32 statistics), so greedy tokens match it exactly
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


@dataclass
class _LayerWeights:
    wqkv: torch.Tensor  # [(H + 2 Hkv) D, hidden]
    bqkv: torch.Tensor | None
    wo: torch.Tensor  # [hidden, H D]
    bo: torch.Tensor | None
    wgu: torch.Tensor  # [2 I, hidden]
    bgu: torch.Tensor | None
    wdown: torch.Tensor  # [hidden, I]
    bdown: torch.Tensor | None
    ln1: torch.Tensor
    ln2: torch.Tensor
    q_norm: torch.Tensor | None
    k_norm: torch.Tensor | None


def _bias(mod: Any) -> torch.Tensor | None:
    b = getattr(mod, "bias", None)
    return b.detach() if b is not None else None


def _cat_bias(*mods: Any) -> torch.Tensor | None:
    bs = [_bias(m) for m in mods]
    if all(b is None for b in bs):
        return None
    return torch.cat([b if b is not None else m.weight.new_zeros(m.weight.shape[0])
                      for b, m in zip(bs, mods, strict=True)])


DECODE_CHUNK_OVERHEAD_KEYS = 128  # one extra attention call (~20 µs on CPU) in row-keys read (~0.2 µs each, fp32)


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


class LlamaForward:
    """Minimal Llama-family forward over a transformers model's weights, for ragged batches and batched LoRA."""

    def __init__(self, model: Any, max_len: int) -> None:
        cfg = model.config
        self.hidden = int(cfg.hidden_size)
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(getattr(cfg, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or self.hidden // self.n_heads)
        self.inter = int(cfg.intermediate_size)
        self.eps = float(cfg.rms_norm_eps)
        self.act = ACT2FN[cfg.hidden_act]
        self.act_name = str(cfg.hidden_act)
        self.n_layers = int(cfg.num_hidden_layers)
        self.vocab = int(cfg.vocab_size)
        inner = model.model
        self.embed = inner.embed_tokens.weight.detach()  # [vocab, hidden]
        self.norm = inner.norm.weight.detach()
        self.lm_head = model.lm_head.weight.detach()  # [vocab, hidden]
        self.device = self.embed.device
        self.dtype = self.embed.dtype
        self.layers: list[_LayerWeights] = []
        with torch.no_grad():
            for layer in inner.layers:
                at, mlp = layer.self_attn, layer.mlp
                qn = getattr(at, "q_norm", None)
                kn = getattr(at, "k_norm", None)
                self.layers.append(_LayerWeights(
                    wqkv=torch.cat([at.q_proj.weight, at.k_proj.weight, at.v_proj.weight]).detach().contiguous(),
                    bqkv=_cat_bias(at.q_proj, at.k_proj, at.v_proj),
                    wo=at.o_proj.weight.detach(), bo=_bias(at.o_proj),
                    wgu=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach().contiguous(),
                    bgu=_cat_bias(mlp.gate_proj, mlp.up_proj),
                    wdown=mlp.down_proj.weight.detach(), bdown=_bias(mlp.down_proj),
                    ln1=layer.input_layernorm.weight.detach(), ln2=layer.post_attention_layernorm.weight.detach(),
                    q_norm=qn.weight.detach() if qn is not None else None,
                    k_norm=kn.weight.detach() if kn is not None else None,
                ))
            rot = inner.rotary_emb
            inv_freq = rot.inv_freq.float().to(self.device)  # [D/2]
            pos = torch.arange(max_len, device=self.device, dtype=torch.float32)
            freqs = pos[:, None] * inv_freq[None, :]  # [L, D/2]
            emb = torch.cat((freqs, freqs), dim=-1)  # [L, D]
            scaling = float(getattr(rot, "attention_scaling", 1.0))
            self.cos = (emb.cos() * scaling).to(self.dtype)
            self.sin = (emb.sin() * scaling).to(self.dtype)
        self.max_len = max_len
        self.use_native = True  # decode attention in inference/_kernels.c where it applies (see native_attention_ok)
        self.q_size = self.n_heads * self.head_dim
        self.kv_size = self.n_kv * self.head_dim

    def matmul_shapes(self) -> list[tuple[int, int]]:
        """(in, out) of every weight matmul of one token's forward, in order (the roofline's GEMMs)."""
        per_layer = [(self.hidden, self.q_size + 2 * self.kv_size), (self.q_size, self.hidden),
                     (self.hidden, 2 * self.inter), (self.inter, self.hidden)]
        return per_layer * self.n_layers + [(self.hidden, self.vocab)]

    def forward(
        self,
        tokens: torch.Tensor,  # [N] long
        positions: torch.Tensor,  # [N] long
        kv: KVCache,
        attend: _DecodeAttention | _PrefillAttention | Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor],
                                                                 torch.Tensor],
        lora: LoraPool | None,
        routing: LoraRouting | None,
    ) -> torch.Tensor:
        """Hidden states [N, hidden] after the final norm; `attend(layer, q, k, v)` stores K/V and attends."""
        fused = getattr(attend, "fused", None)
        if fused is not None and self.native_elementwise:
            return self._forward_native(tokens, fused, lora, routing)
        x = self.embed.index_select(0, tokens)  # [N, hidden]
        cos = self.cos.index_select(0, positions)[:, None, :]  # [N, 1, D]
        sin = self.sin.index_select(0, positions)[:, None, :]
        n = x.shape[0]
        qs, kvs = self.q_size, self.kv_size
        for li, w in enumerate(self.layers):
            h = _rms_norm(x, w.ln1, self.eps)
            qkv = F.linear(h, w.wqkv, w.bqkv)  # [N, (H + 2 Hkv) D]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "qkv", h, qkv)
            if fused is not None and w.q_norm is None:  # RoPE + K/V write + attention in one native call
                o = fused(li, qkv)
            else:
                v = qkv[:, qs + kvs:].view(n, self.n_kv, self.head_dim)
                if w.q_norm is not None and w.k_norm is not None:
                    q = _rms_norm(qkv[:, :qs].view(n, self.n_heads, self.head_dim), w.q_norm, self.eps)
                    k = _rms_norm(qkv[:, qs:qs + kvs].view(n, self.n_kv, self.head_dim), w.k_norm, self.eps)
                    q = q * cos + _rotate_half(q) * sin
                    k = k * cos + _rotate_half(k) * sin
                else:  # RoPE on q and k heads together: the same elementwise math in half the ops
                    qk = qkv[:, :qs + kvs].view(n, self.n_heads + self.n_kv, self.head_dim)  # [N, H + Hkv, D]
                    qk = qk * cos + _rotate_half(qk) * sin
                    q, k = qk[:, :self.n_heads], qk[:, self.n_heads:]
                o = attend(li, q, k, v)  # [N, H D]
            y = F.linear(o, w.wo, w.bo)  # [N, hidden]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "o", o, y)
            x = x + y
            h = _rms_norm(x, w.ln2, self.eps)
            gu = F.linear(h, w.wgu, w.bgu)  # [N, 2 I]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "gate_up", h, gu)
            m = self.act(gu[:, :self.inter]) * gu[:, self.inter:]  # [N, I]
            x = x + self._down(li, w, m, lora, routing)
        return _rms_norm(x, self.norm, self.eps)

    @property
    def native_elementwise(self) -> bool:
        """Whether the whole layer runs the native path: fused attention plus the native residual-add + RMSNorm and
        SiLU-gate kernels (Llama layers: no q/k norms, SiLU MLP)."""
        return (self.native_attention_ok and self.act_name == "silu"
                and all(w.q_norm is None for w in self.layers))

    def _forward_native(self, tokens: torch.Tensor, fused: Callable[[int, torch.Tensor], torch.Tensor],
                        lora: LoraPool | None, routing: LoraRouting | None) -> torch.Tensor:
        """The CPU fp32 forward with the native kernels: one call each for residual add + RMSNorm, attention (RoPE,
        K/V write, attention) and SiLU(gate) * up; the weight matmuls and LoRA are the same as `forward`'s."""
        assert _kernels is not None
        x = self.embed.index_select(0, tokens)  # [N, hidden], the residual stream (updated in place)
        n, d = x.shape
        h = torch.empty_like(x)
        m = x.new_empty(n, self.inter)
        y: torch.Tensor | None = None
        for li, w in enumerate(self.layers):
            _kernels.add_rmsnorm(x.data_ptr(), 0 if y is None else y.data_ptr(), w.ln1.data_ptr(), h.data_ptr(), n,
                                 d, self.eps)
            qkv = F.linear(h, w.wqkv, w.bqkv)  # [N, (H + 2 Hkv) D]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "qkv", h, qkv)
            o = fused(li, qkv)
            y = F.linear(o, w.wo, w.bo)  # [N, hidden]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "o", o, y)
            _kernels.add_rmsnorm(x.data_ptr(), y.data_ptr(), w.ln2.data_ptr(), h.data_ptr(), n, d, self.eps)
            gu = F.linear(h, w.wgu, w.bgu)  # [N, 2 I]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "gate_up", h, gu)
            _kernels.silu_mul(gu.data_ptr(), m.data_ptr(), n, self.inter)
            y = self._down(li, w, m, lora, routing)
        out = torch.empty_like(x)
        _kernels.add_rmsnorm(x.data_ptr(), 0 if y is None else y.data_ptr(), self.norm.data_ptr(), out.data_ptr(), n,
                             d, self.eps)
        return out

    def _down(self, li: int, w: _LayerWeights, m: torch.Tensor, lora: LoraPool | None,
              routing: LoraRouting | None) -> torch.Tensor:
        y = F.linear(m, w.wdown, w.bdown)
        if routing is not None and lora is not None:
            lora.apply(routing, li, "down", m, y)
        return y

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """[N, vocab] logits (fp32) of the given final hidden rows."""
        return F.linear(h, self.lm_head).float()

    # -------------------------------------------------------------- attention for the two step kinds

    @property
    def native_attention_ok(self) -> bool:
        """Whether decode and prefill attention run in the fused native kernel (`inference/_kernels.c`): CPU, fp32,
        AVX-512, head size a multiple of 16."""
        return (self.use_native and _kernels is not None and self.device.type == "cpu"
                and self.dtype == torch.float32 and bool(_kernels.simd(self.head_dim)))

    def decode_attend(self, kv: KVCache, rows: torch.Tensor, pos: torch.Tensor, length: int,
                      pos_list: list[int] | None = None) -> _DecodeAttention:
        """Attention for B decode rows (rows 0..B-1, one new token each at `pos`), keys 0..length-1.

        Decode attention is memory-bound on the K/V reads. With the native kernel each row reads exactly its own
        ``pos + 1`` keys and RoPE + the K/V write run in the same pass (`_DecodeAttention.fused`); otherwise, with
        `pos_list` (the rows' positions as a Python list) the batch is split into contiguous row chunks that each
        read keys only up to their own longest row (`decode_chunks`) for SDPA; without it, one call over all rows."""
        return _DecodeAttention(self, kv, rows, pos, length, pos_list)

    def prefill_attend(self, kv: KVCache, first_row: int, n_rows: int, seg_len: int, row_tok: torch.Tensor,
                       pos_tok: torch.Tensor, flat_pos: torch.Tensor) -> _PrefillAttention:
        """Causal attention for `n_rows` new prompts packed in N tokens (rows first_row.., padded to seg_len for
        SDPA; the native kernel reads each token's exact prefix)."""
        return _PrefillAttention(self, kv, first_row, n_rows, seg_len, row_tok, pos_tok, flat_pos)


class _PrefillAttention:
    """Prefill attention of one packed wave: `__call__(layer, q, k, v)` (SDPA over the padded block) and, when the
    native kernel applies, `fused(layer, qkv)` (RoPE, K/V write and each token's causal attention in one call)."""

    def __init__(self, fwd: LlamaForward, kv: KVCache, first_row: int, n_rows: int, seg_len: int,
                 row_tok: torch.Tensor, pos_tok: torch.Tensor, flat_pos: torch.Tensor) -> None:
        self.fwd, self.kv, self.first_row, self.n_rows, self.seg_len = fwd, kv, first_row, n_rows, seg_len
        self.row_tok, self.pos_tok, self.flat_pos = row_tok, pos_tok, flat_pos
        self.fused: Callable[[int, torch.Tensor], torch.Tensor] | None = None
        if (fwd.native_attention_ok and kv.k.is_contiguous() and row_tok.dtype == torch.long
                and pos_tok.dtype == torch.long and seg_len <= kv.max_len):
            self.row_tok, self.pos_tok = row_tok.contiguous(), pos_tok.contiguous()
            self.fused = self._native

    def _native(self, li: int, qkv: torch.Tensor) -> torch.Tensor:
        return _native_attention(self.fwd, self.kv, li, qkv, self.pos_tok, self.row_tok)

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


def _native_attention(f: LlamaForward, kv: KVCache, li: int, qkv: torch.Tensor, pos: torch.Tensor,
                      rows: torch.Tensor | None) -> torch.Tensor:
    """RoPE + K/V write + causal attention of N entries (decode rows, or packed prefill tokens in row/position order)
    in one call of the native kernel; qkv [N, (H + 2 Hkv) D] is the raw fused projection. Returns [N, H D]."""
    assert _kernels is not None and qkv.is_contiguous() and qkv.dtype == torch.float32
    n = qkv.shape[0]
    out = qkv.new_empty(n, f.n_heads, f.head_dim)
    esz = qkv.element_size()
    q = qkv.data_ptr()
    stride = qkv.stride(0)
    _kernels.decode(q, q + f.q_size * esz, q + (f.q_size + f.kv_size) * esz, stride, stride, stride,
                     kv.k[li].data_ptr(), kv.v[li].data_ptr(), kv.max_len, f.cos.data_ptr(), f.sin.data_ptr(),
                     pos.data_ptr(), 0 if rows is None else rows.data_ptr(), out.data_ptr(), 0, n, f.n_heads, f.n_kv,
                     f.head_dim, 1, 1.0 / math.sqrt(f.head_dim), kv.k.dtype == torch.float16)
    return out.view(n, f.q_size)


class _DecodeAttention:
    """Decode attention of one step: `__call__(layer, q, k, v)` (rotated q/k, SDPA) and, when the native kernel
    applies, `fused(layer, qkv)` (the raw fused qkv projection: RoPE, K/V write and attention in one call)."""

    def __init__(self, fwd: LlamaForward, kv: KVCache, rows: torch.Tensor, pos: torch.Tensor, length: int,
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
        return _native_attention(self.fwd, self.kv, li, qkv, self.pos, None)

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


# ===================================================================================================== ENGINE


@dataclass(eq=False)
class _Seq:
    handle: RequestHandle
    req: GenerationRequest
    prompt: list[int]
    adapter_id: bytes
    tier: str
    generator: torch.Generator | None
    t_submit: float
    t_admit: float = 0.0
    t_first: float = 0.0
    slot: PoolSlot | None = None
    row: int = -1
    length: int = 0  # tokens whose K/V are cached
    generated: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0  # chars of `text` already streamed
    prefix_offset: int = 0
    read_offset: int = 0
    finish: str | None = None
    error: BaseException | None = None


class Engine:
    """Continuous batching over one base model and an adapter cache; `step()` advances every running row by one token.

    Use it synchronously (`submit` + `run_until_idle`, as the bench does) or with a background thread
    (`start`/`stop`, `generate` for async streaming). `submit` is thread-safe; `step` runs on one thread only.
    """

    def __init__(self, base: Any, cache: AdapterCacheLike | None = None, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.model_id: bytes = base.model_id
        self.tokenizer = base.tokenizer
        self.fwd = LlamaForward(base.model, self.config.max_seq_len)
        self.fwd.use_native = self.config.native_attention
        self.cache = cache
        self.device = self.fwd.device
        kv_dtype = self.fwd.dtype
        if self.config.kv_dtype is not None:
            if self.config.kv_dtype not in ("float16", "float32", "bfloat16"):
                raise ValueError(f"kv_dtype must be float16, bfloat16 or float32, got {self.config.kv_dtype!r}")
            kv_dtype = getattr(torch, self.config.kv_dtype)
            if kv_dtype != self.fwd.dtype and not (kv_dtype == torch.float16 and self.fwd.native_elementwise):
                raise ValueError(f"kv_dtype {self.config.kv_dtype} with a {self.fwd.dtype} model needs the native CPU "
                                 "kernel (fp32 model on CPU with AVX-512, inference._kernels built, Llama layers): "
                                 "drop kv_dtype to store K/V in the model's dtype")
        self.kv = KVCache(self.fwd.n_layers, self.config.max_batch, self.fwd.n_kv, self.config.max_seq_len,
                          self.fwd.head_dim, device=self.device, dtype=kv_dtype)
        eos = getattr(base.model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = getattr(base.tokenizer, "eos_token_id", None)
        self.eos_ids: set[int] = set(eos if isinstance(eos, list) else ([eos] if eos is not None else []))
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[_Seq] = deque()
        self._running: list[_Seq] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._req_s_ema = 1.0  # seconds per request, for the overload retry hint
        self.steps = 0
        self.decode_rows_total = 0  # sum over decode steps of running rows (mean batch = this / decode_steps)
        self.decode_steps = 0
        self.decode_batches: dict[int, int] = {}  # running rows -> decode steps at that batch size (the roofline's)
        self.prefill_shapes: list[tuple[int, int]] = []  # (packed prompt tokens, rows) of every prefill forward
        if cache is not None:
            cache.set_ready_callback(self._notify)

    # ---------------------------------------------------------------- submission

    def submit(self, req: GenerationRequest, *, loop: asyncio.AbstractEventLoop | None = None) -> RequestHandle:
        """Queue a request; raises RequestInvalid/RequestTooLong, AdapterNotFound, or EngineOverloaded."""
        if self._stopping:
            raise EngineStopped("the engine is stopped: start it before submitting")
        if req.stop and not self.config.detokenize:
            raise RequestInvalid("stop strings need text: this engine runs with detokenize=False")
        if req.max_tokens < 1:
            raise RequestInvalid(f"max_tokens must be >= 1, got {req.max_tokens}")
        if req.prompt_ids is not None:
            prompt = list(req.prompt_ids)
        elif req.prompt is not None:
            prompt = list(self.tokenizer.encode(req.prompt))
        else:
            raise RequestInvalid("give a prompt (text) or prompt_ids")
        if not prompt:
            raise RequestInvalid("the prompt is empty: give at least one token")
        if min(prompt) < 0 or max(prompt) >= self.fwd.vocab:
            raise RequestInvalid(f"prompt token ids must be in [0, {self.fwd.vocab})")
        if len(prompt) + req.max_tokens > self.config.max_seq_len:
            raise RequestTooLong(f"prompt ({len(prompt)} tokens) + max_tokens ({req.max_tokens}) exceeds the "
                                 f"engine's max_seq_len {self.config.max_seq_len}: shorten the prompt or lower "
                                 "max_tokens")
        adapter_id, tier = ZERO_ID, "base"
        if req.adapter is not None:
            if self.cache is None:
                raise RequestInvalid("this engine has no adapter cache: request the base model")
            adapter_id, tier = self.cache.acquire(req.adapter)
        rid = req.request_id or f"req-{next(_ids)}"
        seq = _Seq(handle=RequestHandle(rid, loop), req=req, prompt=prompt, adapter_id=adapter_id, tier=tier,
                   generator=make_generator(req.sampling, self.device), t_submit=time.perf_counter())
        with self._lock:
            if len(self._queue) >= self.config.max_queue:
                overloaded = True
            else:
                overloaded = False
                self._queue.append(seq)
                self._wake.notify()
        if overloaded:
            if adapter_id != ZERO_ID and self.cache is not None:
                self.cache.release(adapter_id)
            retry = max(1.0, math.ceil(self.config.max_queue / self.config.max_batch * self._req_s_ema))
            raise EngineOverloaded(self.config.max_queue, retry)
        return seq.handle

    async def generate(self, req: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        """Submit and stream: yields one event per token, the last with the `completion`. Closing it cancels."""
        handle = self.submit(req, loop=asyncio.get_running_loop())
        try:
            async for ev in handle.aevents():
                yield ev
        finally:
            if not handle.done:
                handle.cancel()

    @property
    def queued(self) -> int:
        """Requests waiting for admission."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Rows in the running batch."""
        return len(self._running)

    # ---------------------------------------------------------------- thread

    def start(self) -> None:
        """Run steps on a background thread until `stop()`."""
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread; unfinished requests fail with EngineStopped."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._fail_all(EngineStopped("the engine stopped before this request finished: resubmit it"))

    def _notify(self) -> None:
        with self._lock:
            self._wake.notify_all()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not self._queue and not self._running:
                    self._wake.wait(0.5)
                if self._stopping:
                    return
            try:
                progressed = self.step()
            except Exception as e:  # a failed step fails its rows, the engine keeps serving
                logger.exception("engine step failed")
                self._fail_all(e)
                continue
            if not progressed:
                with self._lock:
                    self._wake.wait(0.002)

    def run_until_idle(self, timeout: float | None = None) -> None:
        """Step on the calling thread until nothing is queued or running (the bench's synchronous mode)."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        while self._queue or self._running:
            if not self.step():
                time.sleep(0.001)
            if deadline is not None and time.perf_counter() > deadline:
                raise TimeoutError(f"engine still busy after {timeout} s")

    # ---------------------------------------------------------------- one step

    @torch.inference_mode()
    def step(self) -> bool:
        """Admit + prefill new requests, decode every running row once; returns whether any work was done."""
        self.steps += 1
        admitted = self._admit()
        if admitted:
            self._prefill(admitted)
            self._reap()
        if self._running:
            self._decode()
            self._reap()
        return bool(admitted) or bool(self._running)

    def _admit(self) -> list[_Seq]:
        free = self.config.max_batch - len(self._running)
        with self._lock:
            waiting = list(self._queue)
        admitted: list[_Seq] = []
        dropped: list[_Seq] = []
        tokens = 0
        for seq in waiting:
            if seq.handle.cancelled:
                seq.finish = "cancelled"
                dropped.append(seq)
                continue
            if len(admitted) >= free:
                break
            if admitted and tokens + len(seq.prompt) > self.config.prefill_token_budget:
                break
            if seq.adapter_id != ZERO_ID:
                assert self.cache is not None
                try:
                    slot = self.cache.activate(seq.adapter_id)
                except InferenceError as e:  # the adapter failed to load: fail this request only
                    seq.error = e
                    dropped.append(seq)
                    continue
                if slot is None:  # still loading, or the device tier is full of in-use adapters
                    continue
                seq.slot = slot
            seq.t_admit = time.perf_counter()
            admitted.append(seq)
            tokens += len(seq.prompt)
        if admitted or dropped:
            gone = {id(s) for s in admitted} | {id(s) for s in dropped}
            with self._lock:
                self._queue = deque(s for s in self._queue if id(s) not in gone)
        for seq in dropped:
            self._finish_unadmitted(seq)
        return admitted

    def _segments(self, seqs: list[_Seq], lens: list[int]) -> list[Segment]:
        segs, start = [], 0
        for s, n in zip(seqs, lens, strict=True):
            if s.slot is not None:
                segs.append(Segment(slot=s.slot, start=start, length=n))
            start += n
        return segs

    def _prefill(self, seqs: list[_Seq]) -> None:
        dev = self.device
        first = len(self._running)
        # longest prompt first: rows of similar length sit next to each other, so decode attention chunks stay tight
        seqs = sorted(seqs, key=lambda s: len(s.prompt), reverse=True)
        for i, s in enumerate(seqs):
            s.row = first + i
        self._running.extend(seqs)
        lens = [len(s.prompt) for s in seqs]
        self.prefill_shapes.append((sum(lens), len(seqs)))
        t_max = max(lens)
        tokens = torch.tensor([t for s in seqs for t in s.prompt], dtype=torch.long, device=dev)
        local = torch.repeat_interleave(torch.arange(len(seqs)), torch.tensor(lens))  # [N]
        pos = torch.cat([torch.arange(n) for n in lens])  # [N]
        row_tok = (local + first).to(dev)
        flat_pos = (local * t_max + pos).to(dev)
        pos = pos.to(dev)
        lora = self.cache.pool if self.cache is not None else None
        routing = lora.routing(self._segments(seqs, lens)) if lora is not None else None
        attend = self.fwd.prefill_attend(self.kv, first, len(seqs), t_max, row_tok, pos, flat_pos)
        h = self.fwd.forward(tokens, pos, self.kv, attend, lora, routing)  # [N, hidden]
        last = torch.tensor(list(itertools.accumulate(lens)), device=dev) - 1
        nxt = sample(self.fwd.logits(h.index_select(0, last)), [s.req.sampling for s in seqs],
                     [s.generator for s in seqs]).tolist()
        now = time.perf_counter()
        for s, n, t in zip(seqs, lens, nxt, strict=True):
            s.length = n
            s.t_first = now
            self._append(s, t)

    def _decode(self) -> None:
        dev = self.device
        seqs = self._running
        b = len(seqs)
        tokens = torch.tensor([s.generated[-1] for s in seqs], dtype=torch.long, device=dev)
        pos_list = [s.length for s in seqs]
        pos = torch.tensor(pos_list, dtype=torch.long, device=dev)
        rows = torch.arange(b, device=dev)
        lora = self.cache.pool if self.cache is not None else None
        routing = lora.routing(self._segments(seqs, [1] * b)) if lora is not None else None
        attend = self.fwd.decode_attend(self.kv, rows, pos, max(pos_list) + 1, pos_list)
        h = self.fwd.forward(tokens, pos, self.kv, attend, lora, routing)  # [B, hidden]
        nxt = sample(self.fwd.logits(h), [s.req.sampling for s in seqs], [s.generator for s in seqs]).tolist()
        self.decode_steps += 1
        self.decode_rows_total += b
        self.decode_batches[b] = self.decode_batches.get(b, 0) + 1
        for s, t in zip(seqs, nxt, strict=True):
            s.length += 1
            self._append(s, t)

    # ---------------------------------------------------------------- tokens, stop, finish

    def _append(self, s: _Seq, token: int) -> None:
        if s.handle.cancelled:
            s.finish = "cancelled"
            return
        s.generated.append(token)
        is_eos = token in self.eos_ids and not s.req.ignore_eos
        delta = ""
        if self.config.detokenize and not is_eos:
            delta = self._detok(s)
            s.text += delta
        if is_eos:
            s.finish = "stop"
        elif s.req.stop and delta:
            longest = max(len(x) for x in s.req.stop)
            lo = max(0, len(s.text) - len(delta) - longest + 1)
            hits = [i for i in (s.text.find(x, lo) for x in s.req.stop) if i >= 0]
            if hits:
                s.text = s.text[:min(hits)]
                s.finish = "stop"
        if s.finish is None and len(s.generated) >= s.req.max_tokens:
            s.finish = "length"
        # hold back a possible stop-string prefix until the request finishes
        hold = 0 if s.finish is not None or not s.req.stop else max(len(x) for x in s.req.stop) - 1
        upto = max(s.emitted, len(s.text) - hold)
        s.handle._push(StreamEvent(token_id=token, text=s.text[s.emitted:upto]))
        s.emitted = upto

    def _detok(self, s: _Seq) -> str:
        ids = s.generated
        prefix = self.tokenizer.decode(ids[s.prefix_offset:s.read_offset], skip_special_tokens=True)
        full = self.tokenizer.decode(ids[s.prefix_offset:], skip_special_tokens=True)
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            s.prefix_offset, s.read_offset = s.read_offset, len(ids)
            return full[len(prefix):]
        return ""

    def _reap(self) -> None:
        """Finish rows that are done; keep the batch compact by moving the last row into each freed row."""
        for s in self._running:
            if s.finish is None and s.handle.cancelled:
                s.finish = "cancelled"
        done = [s for s in self._running if s.finish is not None]
        if not done:
            return
        for s in sorted(done, key=lambda x: x.row, reverse=True):
            last = self._running[-1]
            if last is not s:
                self.kv.move_row(last.row, s.row, last.length)
                self._running[s.row] = last
                last.row = s.row
            self._running.pop()
            self._complete(s)

    def _usage(self, s: _Seq, now: float) -> Usage:
        admit = s.t_admit or now
        first = s.t_first or now
        return Usage(model_id=self.model_id, adapter_id=s.adapter_id, prompt_tokens=len(s.prompt),
                     completion_tokens=len(s.generated), queue_ms=(admit - s.t_submit) * 1e3,
                     prefill_ms=(first - admit) * 1e3, decode_ms=(now - first) * 1e3, cache_tier=s.tier,
                     finish_reason=s.finish or "error")

    def _complete(self, s: _Seq) -> None:
        now = time.perf_counter()
        if s.adapter_id != ZERO_ID and self.cache is not None:
            if s.slot is not None:
                self.cache.deactivate(s.adapter_id)
            self.cache.release(s.adapter_id, tokens=len(s.prompt) + len(s.generated))
        self._req_s_ema = 0.9 * self._req_s_ema + 0.1 * (now - s.t_submit)
        assert s.finish is not None
        completion = Completion(request_id=s.handle.request_id, text=s.text, token_ids=list(s.generated),
                                finish_reason=s.finish, usage=self._usage(s, now))
        tail = s.text[s.emitted:]
        s.emitted = len(s.text)
        s.handle._push(StreamEvent(text=tail, completion=completion))

    def _finish_unadmitted(self, s: _Seq) -> None:
        if s.adapter_id != ZERO_ID and self.cache is not None:
            self.cache.release(s.adapter_id)
        if s.error is not None:
            s.handle._push(StreamEvent(error=s.error))
        else:
            self._complete_without_release(s)

    def _complete_without_release(self, s: _Seq) -> None:
        now = time.perf_counter()
        completion = Completion(request_id=s.handle.request_id, text="", token_ids=[],
                                finish_reason=s.finish or "cancelled", usage=self._usage(s, now))
        s.handle._push(StreamEvent(completion=completion))

    def _fail_all(self, err: BaseException) -> None:
        with self._lock:
            waiting = list(self._queue)
            self._queue.clear()
        running, self._running = self._running, []
        for s in running:
            if s.adapter_id != ZERO_ID and self.cache is not None:
                if s.slot is not None:
                    self.cache.deactivate(s.adapter_id)
                self.cache.release(s.adapter_id)
            s.handle._push(StreamEvent(error=err))
        for s in waiting:
            if s.adapter_id != ZERO_ID and self.cache is not None:
                self.cache.release(s.adapter_id)
            s.handle._push(StreamEvent(error=err))
