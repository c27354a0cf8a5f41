"""LORALEDGER_GEMM picks the base weight GEMMs (`inference.gemm`): oneDNN with packed weights, or plain `F.linear`.

- an unknown value is refused with the list of choices; ``onednn`` where it cannot run (a CUDA model, a torch build
  without oneDNN, a half-precision model on a CPU without native bf16/fp16) raises `GemmUnavailable` naming the
  fix, while ``auto`` falls back to `F.linear` there;
- a packed `Linear` computes `F.linear`'s result (with and without bias, at every row count the engine uses,
  zero rows included) to fp32 rounding;
- the engine on the tiny model in fp32, greedy, a mixed batch of LoRA rows (ranks 4/8/16) and base rows, prefill
  and decode: oneDNN gives the same tokens as plain `F.linear`, on the portable path and on the default path,
  and its logits differ from plain only by rounding; the packed copy is one copy of the GEMM weights, no more, and a
  second engine on the same model shares it.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from inference import gemm, kernels
from inference.adapters.cache import AdapterCache
from inference.adapters.weights import linear_shapes
from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.errors import InferenceError
from inference.lora import LoraPool
from inference.model import BaseModel, load_base_model

CPU = torch.device("cpu")
PROMPTS = ["Decode a JSON document", "def dumps(obj, *, skipkeys=False):", "indent",
           "If ensure_ascii is false, these characters will be output as-is."]

needs_onednn = pytest.mark.skipif(not gemm.onednn_status(CPU, torch.float32)[0],
                                  reason="this torch build has no oneDNN: only the plain GEMMs can run")


def test_mode_parses_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gemm.ENV, raising=False)
    assert gemm.mode() == "auto"
    for v, want in ((" oneDNN ", "onednn"), ("plain", "plain"), ("", "auto")):
        monkeypatch.setenv(gemm.ENV, v)
        assert gemm.mode() == want
    monkeypatch.setenv(gemm.ENV, "mkl")
    with pytest.raises(InferenceError, match="LORALEDGER_GEMM='mkl' is not a GEMM path: use one of auto, onednn, "
                                             "plain"):
        gemm.selected(CPU, torch.float32)


def test_onednn_where_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gemm.ENV, "auto")
    cuda = torch.device("cuda")  # a device object only: nothing is allocated on it
    assert gemm.selected(cuda, torch.bfloat16) == "plain"
    monkeypatch.setenv(gemm.ENV, "onednn")
    with pytest.raises(gemm.GemmUnavailable, match=re.escape("LORALEDGER_GEMM=onednn but the model is on cuda")):
        gemm.selected(cuda, torch.float32)
    # a torch built without oneDNN cannot be had on demand: its one query answers False
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    with pytest.raises(gemm.GemmUnavailable, match="no oneDNN.*set LORALEDGER_GEMM=plain"):
        gemm.selected(CPU, torch.float32)
    monkeypatch.setenv(gemm.ENV, "auto")
    assert gemm.selected(CPU, torch.float32) == "plain"
    monkeypatch.setenv(gemm.ENV, "plain")
    assert gemm.selected(CPU, torch.float32) == "plain"


def test_half_precision_only_where_the_cpu_computes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gemm.ENV, "auto")
    native_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and torch.backends.mkldnn.is_available()
    assert (gemm.selected(CPU, torch.bfloat16) == "onednn") is native_bf16
    if not native_bf16:
        monkeypatch.setenv(gemm.ENV, "onednn")
        with pytest.raises(gemm.GemmUnavailable, match="no native torch.bfloat16 GEMM"):
            gemm.selected(CPU, torch.bfloat16)


@needs_onednn
@pytest.mark.parametrize("rows", [0, 1, 7, 64, 300])
@pytest.mark.parametrize("with_bias", [False, True])
def test_packed_linear_computes_f_linear(rows: int, with_bias: bool) -> None:
    g = torch.Generator().manual_seed(rows)
    w = torch.randn(96, 80, generator=g)
    b = torch.randn(96, generator=g) if with_bias else None
    x = torch.randn(rows, 80, generator=g)
    lin = gemm.Linear(w, b, "onednn")
    assert lin.packed is not None and lin.packed_bytes >= w.numel() * w.element_size()
    y = lin(x)
    assert y.shape == (rows, 96) and y.dtype == torch.float32
    torch.testing.assert_close(y, F.linear(x, w, b), rtol=1e-5, atol=1e-5)
    # a non-contiguous input (a column slice, as a fused projection's output can be) gives the same result
    wide = torch.randn(rows, 160, generator=g)
    torch.testing.assert_close(lin(wide[:, ::2]), F.linear(wide[:, ::2], w, b), rtol=1e-5, atol=1e-5)
    plain = gemm.Linear(w, b, "plain")
    assert plain.packed is None and plain.packed_bytes == 0 and torch.equal(plain(x), F.linear(x, w, b))


@needs_onednn
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("extra", [None, 0, 44])
def test_plain_sgemm_at_the_measured_row_counts(threads: int, extra: int | None) -> None:
    """One row and prefill waves from PLAIN_ROWS_FROM go to plain sgemm (bit for bit `F.linear`), the rows between
    to the packed kernel; with the switch off (`by_rows`, what `bench gemm`'s ``onednn`` row measures) every row
    count runs packed, to within rounding."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = 1 if extra is None else gemm.plain_rows_from() + extra
        assert rows == 1 or rows >= (256 if threads == 1 else 512)
        g = torch.Generator().manual_seed(rows)
        w, x = torch.randn(192, 160, generator=g), torch.randn(rows, 160, generator=g)
        lin = gemm.Linear(w, None, "onednn")
        assert lin.by_rows and torch.equal(lin(x), F.linear(x, w))
        lin.by_rows = False
        torch.testing.assert_close(lin(x), F.linear(x, w), rtol=1e-5, atol=1e-5)
    finally:
        torch.set_num_threads(before)
    assert not gemm.Linear(w.to(torch.bfloat16), None, "plain").by_rows


def _run(tiny_base_dir: pathlib.Path, adapters: list[pathlib.Path]
         ) -> tuple[list[list[int]], torch.Tensor, Engine, BaseModel]:
    """Greedy tokens of a mixed batch (each adapter and base on two prompts), one prefill's last-token logits, the
    engine and its model."""
    base = load_base_model(tiny_base_dir)
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers)
    cache = AdapterCache(base.config, pool)
    for p in adapters:
        cache.add(p)
    eng = Engine(base, cache, EngineConfig(max_batch=8, max_seq_len=96))
    jobs = [(a.name if a is not None else None, p) for a in [*adapters, None] for p in PROMPTS[:2]]
    try:
        handles = [eng.submit(GenerationRequest(prompt=p, adapter=a, max_tokens=8, ignore_eos=True))
                   for a, p in jobs]
        eng.run_until_idle(timeout=300)
        ids = torch.tensor(base.tokenizer(PROMPTS[3])["input_ids"])
        with torch.inference_mode():
            h = eng.fwd.forward(ids, torch.arange(len(ids)), _causal_attention(eng), None, None)
            logits = eng.fwd.logits(h[-1:])
        return [h.result().token_ids for h in handles], logits, eng, base
    finally:
        cache.close()


def _causal_attention(eng: Engine) -> Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """A plain causal SDPA over one sequence (no K/V cache): enough to compare the two GEMM paths' logits."""
    f = eng.fwd

    def attend(_layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        rep = f.n_heads // f.n_kv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        o = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True)
        return o.transpose(0, 1).reshape(q.shape[0], -1)

    return attend


@needs_onednn
@pytest.mark.parametrize("kernel_path", ["torch", "auto"])
def test_engine_tokens_equal_plain(monkeypatch: pytest.MonkeyPatch, tiny_base_dir: pathlib.Path,
                                   tiny_adapters: list[pathlib.Path], kernel_path: str) -> None:
    adapters = tiny_adapters[:3]  # ranks 4, 8, 16
    monkeypatch.setenv(kernels.ENV, kernel_path)
    monkeypatch.setenv(gemm.ENV, "plain")
    plain_tokens, plain_logits, eng, _ = _run(tiny_base_dir, adapters)
    assert eng.fwd.gemm == "plain" and all(lin.packed is None for lin in eng.fwd.linears())
    monkeypatch.setenv(gemm.ENV, "auto")
    tokens, logits, eng, base = _run(tiny_base_dir, adapters)
    lins = eng.fwd.linears()
    assert eng.fwd.gemm == "onednn" and all(lin.packed is not None for lin in lins)
    assert tokens == plain_tokens and all(len(t) == 8 for t in tokens)
    torch.testing.assert_close(logits, plain_logits, rtol=1e-4, atol=1e-4)  # rounding, not a different product
    # one packed copy of each GEMM weight: at least its bytes, and no more than a blocked layout's padding adds
    dense = sum(lin.weight.numel() * lin.weight.element_size() for lin in lins)
    assert dense <= sum(lin.packed_bytes for lin in lins) <= 1.1 * dense
    # a second engine on the same model shares the packed copies instead of making more
    again = Engine(base, None, EngineConfig(max_batch=2, max_seq_len=32))
    assert all(a.packed is b.packed for a, b in zip(lins, again.fwd.linears(), strict=True))
