"""vLLM's rows of `loraledger bench serving --backends loraledger,vllm`: the same weights, adapters and workload as
our rows, through the vLLM backend (`inference.backends.vllm_engine.VllmEngine`, the `EngineClient` the node uses).

Rows: vLLM base only and vLLM with 1/8/32/256 distinct adapters (r16), keyed like ours; JSON keys
`vllm_base_tok_s`, `vllm_mixed_tok_s` (by adapter count, like `mixed_tok_s`) and `vllm_startup_s`. vLLM runs in
.venv-vllm (`make setup-vllm`); where it is missing the bench says so and skips these rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["json_keys", "save_model", "started", "vllm_rows"]

MIXED = (1, 8, 32, 256)


def save_model(model: Any, root: pathlib.Path) -> pathlib.Path:
    """The bench's in-memory model as a Hugging Face directory vLLM can load, with a word-level tokenizer of the
    model's vocabulary (the bench sends token ids; vLLM still wants a tokenizer to start)."""
    import transformers
    from tokenizers import Tokenizer, models

    d = root / "vllm-model"
    if (d / "config.json").is_file():
        return d
    vocab = int(model.config.vocab_size)
    model.to("cpu").save_pretrained(d, safe_serialization=True)
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="t0", pad_token="t0",
                                                bos_token="t1", eos_token="t2")
    fast.save_pretrained(d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["max_position_embeddings"] = max(int(cfg.get("max_position_embeddings", 512)), 512)
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    return d


def _run(eng: Any, work: list[Any], adapters: list[pathlib.Path | None]) -> float:
    """Every request submitted at once; tokens/s of the requested (forced) tokens."""
    from inference.api import GenerationRequest

    t0 = time.perf_counter()
    handles = [eng.submit(GenerationRequest(prompt_ids=w.prompt, max_tokens=w.out, ignore_eos=True,
                                            adapter=None if a is None else a.name))
               for w, a in zip(work, adapters, strict=True)]
    tokens = sum(h.result(timeout=3600).usage.completion_tokens for h in handles)
    assert tokens == sum(w.out for w in work), "every request must produce exactly its forced length"
    return tokens / (time.perf_counter() - t0)


@contextlib.contextmanager
def started(res: Any, model: Any, work: list[Any], path_of: Callable[[int], pathlib.Path], *, device: str,
            dtype: str, root: pathlib.Path, step: Callable[[str], None], mixed: tuple[int, ...] = MIXED
            ) -> Iterator[Callable[[list[pathlib.Path | None]], float] | None]:
    """vLLM up on the bench's model with the adapters `mixed` will use, warmed up: yields `run(adapters)` -> tok/s
    of the workload (adapters[i] for request i, None = base), or None where vLLM is not installed."""
    from inference.api import EngineSpec, content_hash_of
    from inference.backends.vllm_engine import VllmEngine, vllm_available

    if not vllm_available():
        step("vLLM: not installed here (make setup-vllm, then run the bench from .venv-vllm): rows skipped")
        res.extra["vllm_startup_s"] = None
        yield None
        return
    n = len(work)
    step("vLLM: start-up")
    if device == "cpu":
        _same_threads(res)
    spec = EngineSpec(model_dir=save_model(model, root), adapter_store=root / "vllm-store", backend="vllm",
                      device=device, dtype=dtype, max_batch=64, max_queue=100_000, max_seq_len=256, max_loras=32,
                      max_cpu_loras=256, max_lora_rank=16)
    eng = VllmEngine(spec)
    eng.start()
    try:
        eng.wait_ready(1800)
        res.extra["vllm_startup_s"] = eng.startup_s
        for i in sorted({i % k for k in mixed for i in range(n)}):
            p = path_of(i)
            eng.add_adapter(content_hash_of(p), p, p.name)
        _run(eng, work[:4], [None] * 4)  # warm-up
        yield lambda adapters: _run(eng, work, adapters)
    finally:
        eng.stop()


def vllm_rows(res: Any, model: Any, work: list[Any], path_of: Callable[[int], pathlib.Path], *, device: str,
              dtype: str, root: pathlib.Path, step: Callable[[str], None]) -> None:
    """Add vLLM's rows to `res` (a serving-bench `Result`): base only and 1/8/32/256 adapters, plus its start-up."""
    n = len(work)
    with started(res, model, work, path_of, device=device, dtype=dtype, root=root, step=step) as run:
        if run is None:
            return
        step("vLLM: base only")
        res.add("vllm_base", "vLLM, base only", run([None] * n), f"{n} req, startup "
                f"{res.extra['vllm_startup_s']:.0f} s")
        for k in MIXED:
            step(f"vLLM: {k} adapters")
            res.add(f"vllm_mixed_{k}", f"vLLM, {k} adapters (r16)", run([path_of(i % k) for i in range(n)]),
                    f"max_loras 32, max_cpu_loras 256, {min(k, n)} distinct used")


def _same_threads(res: Any) -> None:
    """vLLM's CPU worker on as many OpenMP threads as our rows use (`torch.get_num_threads()`, the bench's
    --threads), unpinned like ours: its default (VLLM_CPU_OMP_THREADS_BIND=auto) pins one thread per physical core
    and keeps one core back for its scheduler, so on a 2-core machine it would run 1 thread whatever --threads says.
    An explicit VLLM_CPU_OMP_THREADS_BIND in the environment is kept (then vLLM decides)."""
    import torch

    if "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = "nobind"
        os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())  # read by the worker process at start
    res.extra["vllm_threads"] = os.environ.get("OMP_NUM_THREADS") if os.environ["VLLM_CPU_OMP_THREADS_BIND"] == \
        "nobind" else f"bound: {os.environ['VLLM_CPU_OMP_THREADS_BIND']}"


def json_keys(tok: Callable[[str], float | None], extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON keys of vLLM's rows (None where they did not run)."""
    return {"vllm_base_tok_s": tok("vllm_base"), "vllm_mixed_tok_s": {str(k): tok(f"vllm_mixed_{k}") for k in MIXED},
            "vllm_startup_s": extra.get("vllm_startup_s"), "vllm_threads": extra.get("vllm_threads")}
