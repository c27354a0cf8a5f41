"""The baselines the serving bench measures beside ours, in the same run: transformers `generate` in static
batches and its continuous batching, peft mixed-batch `generate` and peft one request at a time."""

from __future__ import annotations

import math
import pathlib
import time
from typing import Any

import torch

from node.bench.workload import Work

__all__ = ["peft_model", "run_hf_cb", "run_hf_static", "run_peft_sequential"]


def _left_pad(batch: list[Work], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    t = max(len(w.prompt) for w in batch)
    ids = torch.zeros(len(batch), t, dtype=torch.long)
    mask = torch.zeros(len(batch), t, dtype=torch.long)
    for i, w in enumerate(batch):
        ids[i, t - len(w.prompt):] = torch.tensor(w.prompt)
        mask[i, t - len(w.prompt):] = 1
    return ids.to(device), mask.to(device)


def run_hf_static(model: Any, work: list[Work], batch: int = 32, adapter_names: list[str] | None = None) -> float:
    """transformers/peft `generate` in static batches: each batch runs to its longest requested length."""
    useful = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(work), batch):
            chunk = work[i:i + batch]
            ids, mask = _left_pad(chunk, model.device)
            n = max(w.out for w in chunk)
            kw: dict[str, Any] = {"adapter_names": adapter_names[i:i + batch]} if adapter_names is not None else {}
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                 do_sample=False, pad_token_id=0, **kw)
            assert out.shape[1] == ids.shape[1] + n
            useful += sum(w.out for w in chunk)
    return useful / (time.perf_counter() - t0)


def run_hf_cb(model: Any, work: list[Work]) -> float:
    """transformers' own continuous batching (the manager behind `generate_batch`), per-request lengths."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig
    from transformers.generation.continuous_batching.utils import WorkloadHints

    gc = GenerationConfig(max_new_tokens=max(w.out for w in work), do_sample=False, eos_token_id=None,
                          pad_token_id=0)
    hints = WorkloadHints(max_prompt_length=max(len(w.prompt) for w in work),
                          max_generated_length=max(w.out for w in work), num_requests=len(work))
    # a cache sized to the workload: left alone, transformers sizes it from the machine's free memory, which on a
    # shared CPU machine can mean most of the RAM (a run was OOM-killed at 17.7 GB there)
    page = 256
    cb_config = ContinuousBatchingConfig(
        page_size=page, max_batch_tokens=2048,
        num_blocks=math.ceil(sum(len(w.prompt) + w.out for w in work) / page) + len(work))
    t0 = time.perf_counter()
    useful = 0
    with model.continuous_batching_context_manager(generation_config=gc, block=True, timeout=5,
                                                   workload_hints=hints,
                                                   continuous_batching_config=cb_config) as manager:
        for i, w in enumerate(work):
            manager.add_request(w.prompt, request_id=f"r{i}", max_new_tokens=w.out)
        finished = 0
        while finished < len(work):
            res = manager.get_result(timeout=1)
            if res is not None and res.is_finished():
                finished += 1
                useful += min(len(res.generated_tokens), work[int(res.request_id[1:])].out)
            elif res is None and not manager.is_running():
                raise RuntimeError("transformers continuous batching stopped early")
    return useful / (time.perf_counter() - t0)


def peft_model(model_factory: Any, paths: list[pathlib.Path]) -> Any:
    """A peft model with every adapter of `paths` loaded under its directory name."""
    from peft import PeftModel

    pm = PeftModel.from_pretrained(model_factory(), paths[0], adapter_name=paths[0].name)
    for p in paths[1:]:
        pm.load_adapter(p, adapter_name=p.name)
    return pm.eval()


def run_peft_sequential(pm: Any, work: list[Work], names: list[str]) -> float:
    """One request at a time, `set_adapter` before each (the naive way to serve many adapters with peft)."""
    useful = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for w, name in zip(work, names, strict=True):
            pm.set_adapter(name)
            ids = torch.tensor([w.prompt], device=pm.device)
            pm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=w.out,
                        min_new_tokens=w.out, do_sample=False, pad_token_id=0)
            useful += w.out
    return useful / (time.perf_counter() - t0)
