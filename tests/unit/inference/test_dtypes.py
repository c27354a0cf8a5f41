"""bf16 and fp16 end to end: a mixed batch (LoRA ranks 4/8/16/64 and base rows in one prefill) against peft.

Our forward and peft round differently in half precision (peft even upcasts its LoRA weights to fp32), so greedy
tokens can legitimately part after a near-tie. The check is teacher-forced: peft, in the same dtype, scores every
token our engine chose, and each must be within `LOGIT_TOL` of peft's best logit at that position; the first token
must be peft's argmax exactly, and 90% of all tokens too. A LoRA delta applied to the wrong row or slot, or lost,
moves logits by whole units, not by rounding, so these bounds still catch it.
"""

from __future__ import annotations

import pathlib

import pytest
import torch

from inference import lora as lora_mod
from inference.adapters.cache import AdapterCache
from inference.adapters.weights import linear_shapes
from inference.engine import Engine, EngineConfig, GenerationRequest
from inference.lora import LoraPool
from inference.model import BaseModel, load_base_model
from tests.fixtures.models import MakeAdapter

PROMPTS = ["Decode a JSON document", "def dumps(obj, *, skipkeys=False):", "indent",
           "If ensure_ascii is false, these characters will be output as-is."]
MAX_TOKENS = 8
# logits of this model span about ±3: one bf16 ulp there is 0.016, one fp16 ulp 0.002; the tolerance is 8 ulps
LOGIT_TOL = {torch.bfloat16: 0.125, torch.float16: 0.016}


@pytest.fixture(scope="module")
def rank64(tmp_path_factory: pytest.TempPathFactory, make_adapter: MakeAdapter) -> pathlib.Path:
    return make_adapter(tmp_path_factory.mktemp("r64") / "r64", seed=77, rank=64,
                        targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                        alpha=32)


def _jobs(adapters: list[pathlib.Path]) -> list[tuple[pathlib.Path | None, str]]:
    # ad00 and ad03 are rank 4, ad01 rank 8, ad02 rank 16: the two rank-4 rows and a base row share the prefill
    ad = adapters
    return [(ad[0], PROMPTS[3]), (ad[3], PROMPTS[0]), (None, PROMPTS[1]), (ad[1], PROMPTS[2]), (ad[2], PROMPTS[3]),
            (ad[-1], PROMPTS[0]), (ad[0], PROMPTS[1]), (None, PROMPTS[3])]


@pytest.mark.parametrize(("dtype", "lora_kernel"), [(torch.bfloat16, "grouped"), (torch.float16, "grouped"),
                                                   (torch.bfloat16, "bmm")], ids=["bf16-grouped", "fp16-grouped",
                                                                                  "bf16-bmm"])
def test_half_precision_mixed_batch_matches_peft(dtype: torch.dtype, lora_kernel: str, tiny_base_dir: pathlib.Path,
                                                 tiny_adapters: list[pathlib.Path], rank64: pathlib.Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers
    from peft import PeftModel

    base: BaseModel = load_base_model(tiny_base_dir, dtype=dtype)
    adapters = [*tiny_adapters[:4], rank64]
    pool = LoraPool(linear_shapes(base.config), base.config.num_hidden_layers, dtype=dtype)
    if lora_kernel == "grouped":  # every prefill bucket takes the segment matmul (where the bf16 crash was)
        assert pool.grouped
        monkeypatch.setattr(lora_mod, "GROUPED_SLOT_US", 0.0)  # the segment matmul costs nothing: always taken
        monkeypatch.setattr(lora_mod, "GROUPED_EMPTY_US", 0.0)
        monkeypatch.setattr(lora_mod, "GROUPED_ROW_US", 0.0)
    else:
        pool.grouped = False
    cache = AdapterCache(base.config, pool)
    for p in adapters:
        cache.add(p)
    eng = Engine(base, cache, EngineConfig(max_batch=16, max_seq_len=128, bench_stats=True))
    jobs = _jobs(adapters)
    handles = [eng.submit(GenerationRequest(prompt=p, adapter=None if a is None else a.name, max_tokens=MAX_TOKENS,
                                            ignore_eos=True)) for a, p in jobs]
    eng.run_until_idle(timeout=120)
    ours = [h.result().token_ids for h in handles]
    cache.close()
    # one prefill wave: every row, base included, in one forward
    assert eng.prefill_shapes is not None and eng.prefill_shapes[0][1] == len(jobs)

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_base_dir, dtype=dtype).eval()
    pm = PeftModel.from_pretrained(model, adapters[0], adapter_name=adapters[0].name)
    for a in adapters[1:]:
        pm.load_adapter(a, adapter_name=a.name)
    pm.eval()
    exact = total = 0
    with torch.inference_mode():
        for (ad, text), toks in zip(jobs, ours, strict=True):
            prompt = base.tokenizer.encode(text)
            ids = torch.tensor([prompt + toks[:-1]])
            if ad is None:
                with pm.disable_adapter():
                    logits = pm(input_ids=ids).logits[0, len(prompt) - 1:].float()
            else:
                pm.set_adapter(ad.name)
                logits = pm(input_ids=ids).logits[0, len(prompt) - 1:].float()
            chosen = logits.gather(1, torch.tensor(toks)[:, None])[:, 0]
            gap = logits.max(dim=1).values - chosen  # 0 where we picked peft's argmax
            assert int(logits[0].argmax()) == toks[0], (ad, text)
            assert float(gap.max()) <= LOGIT_TOL[dtype], (ad, text, gap.tolist())
            exact += int((gap == 0).sum())
            total += len(toks)
    assert exact >= 0.9 * total  # measured: all but one of 64 tokens are peft's argmax, the other 0.016 off
    # the adapters really steer the output: an adapter row differs from the base row on the same prompt
    assert ours[0] != ours[-1] or ours[4] != ours[-1]


def test_default_dtype_is_bf16_on_cuda_and_fp32_on_cpu() -> None:
    from inference.model import default_dtype

    assert default_dtype("cpu") == torch.float32
    assert default_dtype("cuda:0") == torch.bfloat16
