"""The Llama-family forward (Llama, Mistral, Qwen2, Qwen3) over a transformers model's weights.

Other architectures are refused (`check_architecture`), as is a sliding window shorter than the engine's
max_seq_len (`SlidingWindowUnsupported`).

A small gpt-fast style loop for ragged batches: fused q/k/v and gate/up matmuls, RoPE from the model's own rotary
embedding, RMSNorm with transformers' op order, optional q/k/v biases (Qwen2) and q/k RMSNorm (Qwen3), and the
batched LoRA of `inference.lora` applied inside each linear layer. Attention (and where its K/V live) is
`inference.attention`'s; the scheduler that drives this forward is `inference.engine`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers.activations import ACT2FN

from inference import compiled, gemm, kernels
from inference.attention import DecodeAttention, PrefillAttention
from inference.compiled import rms_norm, rotate_half
from inference.kv import KVCache
from inference.lora import LoraPool, LoraRouting
from inference.model import SUPPORTED_MODEL_TYPES, ModelArchitectureUnsupported

__all__ = ["LlamaForward", "SlidingWindowUnsupported", "check_architecture"]


class SlidingWindowUnsupported(ModelArchitectureUnsupported):
    """The model attends within a sliding window shorter than the engine's max_seq_len; this forward attends over
    the whole prefix, so it refuses rather than silently differ: set max_seq_len to at most the window."""


def sliding_window(cfg: Any) -> int | None:
    """The attention window of a config, or None when every layer attends to the whole prefix.

    Mistral: `sliding_window` (None in later releases). Qwen2/Qwen3: only with `use_sliding_window`, which
    transformers records as "sliding_attention" entries in `layer_types` (it sets `sliding_window` None otherwise)."""
    window = getattr(cfg, "sliding_window", None)
    layer_types = getattr(cfg, "layer_types", None)
    if layer_types is not None and "sliding_attention" not in layer_types:
        return None
    return int(window) if window is not None else None


def check_architecture(cfg: Any, max_len: int) -> None:
    """Refuse what this forward does not compute exactly like transformers: another model type, or a sliding
    window shorter than `max_len` (below it, every position's window holds its whole prefix)."""
    model_type = getattr(cfg, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelArchitectureUnsupported(
            f"model_type {model_type!r} is not supported by the engine (supported: "
            f"{', '.join(sorted(SUPPORTED_MODEL_TYPES))}): serve a model of one of these families")
    window = sliding_window(cfg)
    if window is not None and max_len > window:
        raise SlidingWindowUnsupported(
            f"this {model_type} model attends within a sliding window of {window} tokens, which the engine does not "
            f"implement, and max_seq_len {max_len} would let tokens attend beyond it: set max_seq_len <= {window}")


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
    qkv: gemm.Linear  # the four GEMMs over the weights above, packed once where LORALEDGER_GEMM picks oneDNN
    o: gemm.Linear
    gu: gemm.Linear
    down: gemm.Linear


def _bias(mod: Any) -> torch.Tensor | None:
    b = getattr(mod, "bias", None)
    return b.detach() if b is not None else None


def _back_to_back(ts: list[torch.Tensor]) -> bool:
    """Whether contiguous `ts` lie one after another in one storage (an earlier `_fuse` of the same modules)."""
    first = ts[0]
    at = first.data_ptr()
    for t in ts:
        if (not t.is_contiguous() or t.data_ptr() != at
                or t.untyped_storage().data_ptr() != first.untyped_storage().data_ptr()):
            return False
        at += t.numel() * t.element_size()
    return True


def _fuse(mods: list[Any], attr: str) -> torch.Tensor | None:
    """The `attr` ("weight" or "bias") of `mods` concatenated along the output dim, as ONE copy of the weights.

    The modules' own parameters are re-pointed at slices of the fused tensor and the originals freed, so the model
    (still usable as a transformers model: same values) and this forward share the memory instead of doubling it.
    A second forward over the same model finds the slices back to back and takes a view of them, copying nothing."""
    ts = [getattr(m, attr, None) for m in mods]
    if all(t is None for t in ts):
        return None
    if any(t is None for t in ts):  # a bias on some projections only: zeros for the others (a vector, copied)
        return torch.cat([t.detach() if t is not None else m.weight.new_zeros(m.weight.shape[0])
                          for t, m in zip(ts, mods, strict=True)])
    parts = [t.detach() for t in ts if t is not None]
    rows = sum(t.shape[0] for t in parts)
    if _back_to_back(parts):
        return torch.as_strided(parts[0], (rows, *parts[0].shape[1:]), parts[0].stride())
    fused = torch.cat(parts).contiguous()
    start = 0
    for t in ts:
        assert t is not None
        n = t.shape[0]
        t.data = fused[start:start + n]  # the model's parameter now views the fused tensor; its old storage is freed
        start += n
    return fused


class LlamaForward:
    """Minimal Llama-family forward over a transformers model's weights, for ragged batches and batched LoRA."""

    def __init__(self, model: Any, max_len: int) -> None:
        cfg = model.config
        check_architecture(cfg, max_len)
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
        self.gemm = gemm.selected(self.device, self.dtype)  # "onednn" (weights packed once) or "plain" (F.linear)
        # the packed copies live with the model: every forward over it (a second engine, the bench's runs) shares them
        packs: dict[Any, torch.Tensor] = model.__dict__.setdefault("_loraledger_gemm_packs", {})

        def linear(w: torch.Tensor, b: torch.Tensor | None) -> gemm.Linear:
            return gemm.Linear(w, b, self.gemm, packs)

        with torch.no_grad():
            for layer in inner.layers:
                at, mlp = layer.self_attn, layer.mlp
                qn = getattr(at, "q_norm", None)
                kn = getattr(at, "k_norm", None)
                qkv, gu = [at.q_proj, at.k_proj, at.v_proj], [mlp.gate_proj, mlp.up_proj]
                wqkv, wgu = _fuse(qkv, "weight"), _fuse(gu, "weight")
                assert wqkv is not None and wgu is not None
                bqkv, bgu = _fuse(qkv, "bias"), _fuse(gu, "bias")
                wo, bo = at.o_proj.weight.detach(), _bias(at.o_proj)
                wdown, bdown = mlp.down_proj.weight.detach(), _bias(mlp.down_proj)
                self.layers.append(_LayerWeights(
                    wqkv=wqkv, bqkv=bqkv, wo=wo, bo=bo, wgu=wgu, bgu=bgu, wdown=wdown, bdown=bdown,
                    ln1=layer.input_layernorm.weight.detach(), ln2=layer.post_attention_layernorm.weight.detach(),
                    q_norm=qn.weight.detach() if qn is not None else None,
                    k_norm=kn.weight.detach() if kn is not None else None,
                    qkv=linear(wqkv, bqkv), o=linear(wo, bo), gu=linear(wgu, bgu), down=linear(wdown, bdown),
                ))
            self.head = linear(self.lm_head, None)
            rot = inner.rotary_emb
            inv_freq = rot.inv_freq.float().to(self.device)  # [D/2]
            pos = torch.arange(max_len, device=self.device, dtype=torch.float32)
            freqs = pos[:, None] * inv_freq[None, :]  # [L, D/2]
            emb = torch.cat((freqs, freqs), dim=-1)  # [L, D]
            scaling = float(getattr(rot, "attention_scaling", 1.0))
            self.cos = (emb.cos() * scaling).to(self.dtype)
            self.sin = (emb.sin() * scaling).to(self.dtype)
        self.max_len = max_len
        # the machine-level choice (LORALEDGER_KERNELS); an engine may still turn it off (native_attention=False)
        self.use_native = kernels.native_enabled()
        # the portable path's fused pieces: torch.compile'd where LORALEDGER_KERNELS=compiled (for the forwards large
        # enough to repay a compiled call, `compiled.use_compiled`), else plain eager torch
        self.ops = compiled.ops(kernels.selected() == "compiled")
        self.eager_ops = compiled.ops(False)
        self.q_size = self.n_heads * self.head_dim
        self.kv_size = self.n_kv * self.head_dim

    def linears(self) -> list[gemm.Linear]:
        """Every weight GEMM of one token's forward, in order: each layer's q/k/v, o, gate/up, down, then lm_head."""
        return [lin for w in self.layers for lin in (w.qkv, w.o, w.gu, w.down)] + [self.head]

    def matmul_shapes(self) -> list[tuple[int, int]]:
        """(in, out) of every weight matmul of one token's forward, in order (the roofline's GEMMs)."""
        per_layer = [(self.hidden, self.q_size + 2 * self.kv_size), (self.q_size, self.hidden),
                     (self.hidden, 2 * self.inter), (self.inter, self.hidden)]
        return per_layer * self.n_layers + [(self.hidden, self.vocab)]

    def forward(
        self,
        tokens: torch.Tensor,  # [N] long
        positions: torch.Tensor,  # [N] long
        attend: DecodeAttention | PrefillAttention | Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor],
                                                               torch.Tensor],
        lora: LoraPool | None,
        routing: LoraRouting | None,
    ) -> torch.Tensor:
        """Hidden states [N, hidden] after the final norm; `attend(layer, q, k, v)` stores K/V and attends."""
        fused = getattr(attend, "fused", None)
        if fused is not None and self.native_elementwise:
            return self._forward_native(tokens, fused, lora, routing)
        x = self.embed.index_select(0, tokens)  # [N, hidden]
        ops = self.ops if compiled.use_compiled(self.device, x.shape[0], self.hidden) else self.eager_ops
        cos = self.cos.index_select(0, positions)[:, None, :]  # [N, 1, D]
        sin = self.sin.index_select(0, positions)[:, None, :]
        n = x.shape[0]
        qs, kvs = self.q_size, self.kv_size
        y: torch.Tensor | None = None  # the previous sublayer's output, added to the residual stream x
        for li, w in enumerate(self.layers):
            x, h = ops.add_norm(x, y, w.ln1, self.eps)
            qkv = w.qkv(h)  # [N, (H + 2 Hkv) D]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "qkv", h, qkv)
            if fused is not None and w.q_norm is None:  # RoPE + K/V write + attention in one native call
                o = fused(li, qkv)
            elif w.q_norm is not None and w.k_norm is not None:
                v = qkv[:, qs + kvs:].view(n, self.n_kv, self.head_dim)
                q = rms_norm(qkv[:, :qs].view(n, self.n_heads, self.head_dim), w.q_norm, self.eps)
                k = rms_norm(qkv[:, qs:qs + kvs].view(n, self.n_kv, self.head_dim), w.k_norm, self.eps)
                q = q * cos + rotate_half(q) * sin
                k = k * cos + rotate_half(k) * sin
                o = attend(li, q, k, v)  # [N, H D]
            else:
                q, k, v = ops.rope_qk(qkv, cos, sin, self.n_heads, self.n_kv, self.head_dim)
                o = attend(li, q, k, v)  # [N, H D]
            y = w.o(o)  # [N, hidden]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "o", o, y)
            x, h = ops.add_norm(x, y, w.ln2, self.eps)
            gu = w.gu(h)  # [N, 2 I]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "gate_up", h, gu)
            m = ops.gate_mul(gu, self.inter, self.act)  # [N, I]
            y = w.down(m)  # [N, hidden]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "down", m, y)
        return ops.add_norm(x, y, self.norm, self.eps)[1]  # the last residual add and the final norm

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
        ext = kernels.ext
        assert ext is not None
        x = self.embed.index_select(0, tokens)  # [N, hidden], the residual stream (updated in place)
        n, d = x.shape
        h = torch.empty_like(x)
        m = x.new_empty(n, self.inter)
        y: torch.Tensor | None = None
        for li, w in enumerate(self.layers):
            ext.add_rmsnorm(x.data_ptr(), 0 if y is None else y.data_ptr(), w.ln1.data_ptr(), h.data_ptr(), n, d,
                            self.eps)
            qkv = w.qkv(h)  # [N, (H + 2 Hkv) D]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "qkv", h, qkv)
            o = fused(li, qkv)
            y = w.o(o)  # [N, hidden]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "o", o, y)
            ext.add_rmsnorm(x.data_ptr(), y.data_ptr(), w.ln2.data_ptr(), h.data_ptr(), n, d, self.eps)
            gu = w.gu(h)  # [N, 2 I]
            if routing is not None and lora is not None:
                lora.apply(routing, li, "gate_up", h, gu)
            ext.silu_mul(gu.data_ptr(), m.data_ptr(), n, self.inter)
            y = self._down(li, w, m, lora, routing)
        out = torch.empty_like(x)
        ext.add_rmsnorm(x.data_ptr(), 0 if y is None else y.data_ptr(), self.norm.data_ptr(), out.data_ptr(), n,
                        d, self.eps)
        return out

    def _down(self, li: int, w: _LayerWeights, m: torch.Tensor, lora: LoraPool | None,
              routing: LoraRouting | None) -> torch.Tensor:
        y = w.down(m)
        if routing is not None and lora is not None:
            lora.apply(routing, li, "down", m, y)
        return y

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """[N, vocab] logits (fp32) of the given final hidden rows."""
        return self.head(h).float()

    # -------------------------------------------------------------- attention for the two step kinds

    @property
    def native_attention_ok(self) -> bool:
        """Whether decode and prefill attention run in the fused native kernel (`inference/_kernels.c`): CPU, fp32,
        AVX-512, head size a multiple of 16."""
        ext = kernels.ext
        return (self.use_native and ext is not None and self.device.type == "cpu"
                and self.dtype == torch.float32 and bool(ext.simd(self.head_dim)))

    def decode_attend(self, kv: KVCache, rows: torch.Tensor, pos: torch.Tensor, length: int,
                      pos_list: list[int] | None = None) -> DecodeAttention:
        """Attention for B decode rows (rows 0..B-1, one new token each at `pos`), keys 0..length-1.

        Decode attention is memory-bound on the K/V reads. With the native kernel each row reads exactly its own
        ``pos + 1`` keys and RoPE + the K/V write run in the same pass (`DecodeAttention.fused`); otherwise, with
        `pos_list` (the rows' positions as a Python list) the batch is split into contiguous row chunks that each
        read keys only up to their own longest row (`decode_chunks`) for SDPA; without it, one call over all rows."""
        return DecodeAttention(self, kv, rows, pos, length, pos_list)

    def prefill_attend(self, kv: KVCache, first_row: int, n_rows: int, seg_len: int, row_tok: torch.Tensor,
                       pos_tok: torch.Tensor, flat_pos: torch.Tensor) -> PrefillAttention:
        """Causal attention for `n_rows` new prompts packed in N tokens (rows first_row.., padded to seg_len for
        SDPA; the native kernel reads each token's exact prefix)."""
        return PrefillAttention(self, kv, first_row, n_rows, seg_len, row_tok, pos_tok, flat_pos)
