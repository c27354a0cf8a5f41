"""Engine memory: fused weights share the model's storage, and the K/V cache is sized from a byte budget.

- `LlamaForward` fuses q/k/v and gate/up into one matrix each; the model's own q/k/v/gate/up weights then become
  views of those matrices, so the process holds each weight once (counted as distinct storage bytes), the model
  still computes the same logits, and a second engine on the same model reuses the fused matrices (the oneDNN
  GEMMs' packed copy of each weight, `LORALEDGER_GEMM`, is held by the forward apart from these: `test_gemm.py`);
- `EngineConfig.kv_cache_bytes`: the cache holds as many full-length rows as fit (never more bytes than the budget),
  the running batch never exceeds them, a budget below one row shortens the rows, and a request that can never fit
  is refused at submit with `RequestExceedsKVCache` naming the budget; a budget below one token is refused.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable

import pytest
import torch

from inference.engine import (
    Engine,
    EngineConfig,
    EngineConfigInvalid,
    GenerationRequest,
    RequestExceedsKVCache,
    RequestTooLong,
)
from inference.model import BaseModel, load_base_model


def _storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors` (views of one storage count once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def _fwd_tensors(eng: Engine) -> list[torch.Tensor]:
    f = eng.fwd
    out = [f.embed, f.norm, f.lm_head]
    for w in f.layers:
        out += [t for t in (w.wqkv, w.bqkv, w.wo, w.bo, w.wgu, w.bgu, w.wdown, w.bdown, w.ln1, w.ln2, w.q_norm,
                            w.k_norm) if t is not None]
    return out


@pytest.fixture()
def base(tiny_base_dir: pathlib.Path) -> BaseModel:
    return load_base_model(tiny_base_dir)  # a fresh model per test: the engine re-points its weights


def test_fused_weights_do_not_double_the_model(base: BaseModel) -> None:
    model = base.model
    params = list(model.parameters())
    before = _storage_bytes(params)
    ids = torch.tensor([[5, 17, 42, 7, 99]])
    with torch.inference_mode():
        logits_before = model(ids).logits
    eng = Engine(base, None, EngineConfig(max_batch=2, max_seq_len=32))
    # everything the model and the engine's forward hold: each weight once (the RoPE tables are the engine's own)
    assert _storage_bytes(list(model.parameters()) + _fwd_tensors(eng)) == before
    layer, w = model.model.layers[0], eng.fwd.layers[0]
    q, k, v = (layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight, layer.self_attn.v_proj.weight)
    assert q.data_ptr() == w.wqkv.data_ptr()  # the model's q/k/v are views of the fused matrix
    assert v.data_ptr() == w.wqkv.data_ptr() + (q.numel() + k.numel()) * q.element_size()
    assert layer.mlp.gate_proj.weight.data_ptr() == w.wgu.data_ptr()
    with torch.inference_mode():
        assert torch.equal(model(ids).logits, logits_before)  # the model itself is unchanged
    eng2 = Engine(base, None, EngineConfig(max_batch=2, max_seq_len=32))
    assert eng2.fwd.layers[0].wqkv.data_ptr() == w.wqkv.data_ptr()  # a second engine reuses the fused weights
    assert _storage_bytes(list(model.parameters()) + _fwd_tensors(eng) + _fwd_tensors(eng2)) == before
    h = eng2.submit(GenerationRequest(prompt_ids=[5, 17, 42], max_tokens=4, ignore_eos=True))
    eng2.run_until_idle(timeout=60)
    greedy = []
    seq = torch.tensor([[5, 17, 42]])
    with torch.inference_mode():
        for _ in range(4):
            t = model(seq).logits[0, -1].argmax()
            greedy.append(int(t))
            seq = torch.cat([seq, t.view(1, 1)], dim=1)
    assert h.result().token_ids == greedy


def test_kv_cache_sized_from_a_byte_budget(base: BaseModel) -> None:
    cfg = base.config
    per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads) * 4
    budget = 3 * 64 * per_token + per_token // 2  # three full rows of 64 tokens and change
    eng = Engine(base, None, EngineConfig(max_batch=8, max_seq_len=64, kv_cache_bytes=budget))
    assert eng.kv_bytes_per_token == per_token
    assert (eng.kv.rows, eng.kv.max_len) == (3, 64) and eng.kv.nbytes <= budget
    handles = [eng.submit(GenerationRequest(prompt_ids=[3 + i, 9, 11], max_tokens=5, ignore_eos=True))
               for i in range(5)]
    eng.run_until_idle(timeout=60)
    assert all(len(h.result().token_ids) == 5 for h in handles)
    assert max(eng.decode_batches) == 3  # never more running rows than the budget holds

    # a budget below one full row: one shorter row; a request longer than it can never run
    small = Engine(base, None, EngineConfig(max_batch=8, max_seq_len=64, kv_cache_bytes=40 * per_token))
    assert (small.kv.rows, small.kv.max_len) == (1, 40) and small.kv.nbytes == 40 * per_token
    with pytest.raises(RequestExceedsKVCache, match="kv_cache_bytes") as exc:
        small.submit(GenerationRequest(prompt_ids=[1] * 30, max_tokens=11))
    assert isinstance(exc.value, RequestTooLong) and "41 tokens" in str(exc.value) and "40" in str(exc.value)
    h = small.submit(GenerationRequest(prompt_ids=[1] * 30, max_tokens=10, ignore_eos=True))
    small.run_until_idle(timeout=60)
    assert len(h.result().token_ids) == 10
    with pytest.raises(EngineConfigInvalid, match="kv_cache_bytes"):
        Engine(base, None, EngineConfig(max_seq_len=64, kv_cache_bytes=per_token - 1))
