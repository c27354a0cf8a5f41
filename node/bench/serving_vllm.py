"""vLLM's rows of `loraledger bench serving --backends loraledger,vllm`: the same weights, adapters and workload as
our rows, through the vLLM backend (`inference.backends.vllm_engine.VllmEngine`, the `EngineClient` the node uses).

Rows: vLLM base only and vLLM with 1/8/32/256 distinct adapters (r16), keyed like ours; JSON keys
`vllm_base_tok_s`, `vllm_mixed_tok_s` (by adapter count, like `mixed_tok_s`) and `vllm_startup_s`. vLLM runs in
.venv-vllm (`make setup-vllm`); where it is missing the bench says so and skips these rows.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

__all__ = ["json_keys", "peer_rows", "save_model", "vllm_rows"]

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


def _start(model: Any, root: pathlib.Path, *, device: str, dtype: str, threads: int | None, lora: bool = True) -> Any:
    """A started vLLM engine on the bench's weights (None where vLLM is not installed). On CPU its worker's OpenMP
    threads are bound to the first `threads` cores, so both backends use the same number of cores. `lora=False`:
    LoRA disabled (base model only, vLLM's default compilation)."""
    from inference.api import EngineSpec
    from inference.backends.vllm_engine import VllmEngine, vllm_available

    if not vllm_available():
        return None
    if device == "cpu" and threads:
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = "0" if threads == 1 else f"0-{threads - 1}"
    spec = EngineSpec(model_dir=save_model(model, root), adapter_store=root / "vllm-store", backend="vllm",
                      device=device, dtype=dtype, max_batch=64, max_queue=100_000, max_seq_len=256, max_loras=32,
                      max_cpu_loras=256, max_lora_rank=16)
    eng = VllmEngine(spec, lora=lora)
    eng.start()
    eng.wait_ready(1800)
    return eng


def _skipped(res: Any, step: Callable[[str], None]) -> None:
    step("vLLM: not installed here (make setup-vllm, then run the bench from .venv-vllm): rows skipped")
    res.extra["vllm_startup_s"] = None


def peer_rows(res: Any, model: Any, work: list[Any], path_of: Callable[[int], pathlib.Path],
              ours: Callable[[list[pathlib.Path | None]], float], *, device: str, dtype: str, root: pathlib.Path,
              step: Callable[[str], None], threads: int | None, rounds: int = 3, gemm: str = "",
              plain: Callable[[list[pathlib.Path | None]], float] | None = None, no_lora: bool = False) -> None:
    """`--peers`: only the rows the backends are compared on (base only and 32 adapters, ours and vLLM's), run
    interleaved round by round with both engines loaded, each row the best of `rounds` (co-tenants on a shared
    machine only ever slow a run down). `ours(paths)` runs our engine on the workload and returns tokens/s; `gemm`
    names its GEMM path in the labels; `plain(paths)`, where given, runs ours on plain `F.linear` GEMMs, a
    `base_plain` row after each round (the GEMM choice's own effect, same run). `no_lora`: then a second vLLM engine
    with LoRA disabled (vLLM's fastest base-only configuration, which no multi-adapter node can run: its base rows
    here otherwise go through the LoRA layers, see `inference.backends.vllm_engine`), `rounds` more rounds of its
    base-only row interleaved with ours (`vllm_base_nolora`; ours keeps its best over all rounds)."""
    from inference.api import content_hash_of

    n = len(work)
    paths32: list[pathlib.Path | None] = [path_of(i % 32) for i in range(n)]
    step("vLLM: start-up")
    eng = _start(model, root, device=device, dtype=dtype, threads=threads)
    if eng is None:
        _skipped(res, step)
    try:
        if eng is not None:
            res.extra["vllm_startup_s"] = eng.startup_s
            for i in range(32):
                p = path_of(i)
                eng.add_adapter(content_hash_of(p), p, p.name)
            _run(eng, work[:4], [None] * 4)  # warm-up
        rows: list[tuple[str, str, list[pathlib.Path | None]]] = [("base", "base only", [None] * n),
                                                                  ("mixed_32", "32 adapters (r16)", paths32)]
        for r in range(rounds):
            for key, label, paths in rows:
                step(f"round {r + 1}/{rounds}: ours, {label} (load {os.getloadavg()[0]:.1f})")
                tok = ours(paths)
                if r == 0:
                    res.add(key, f"ours, {label}" + (f", GEMM {gemm}" if gemm else ""), tok,
                            f"{n} req, best of {rounds}, interleaved with vLLM")
                else:
                    res.best(key, tok)
                if eng is None:
                    continue
                step(f"round {r + 1}/{rounds}: vLLM, {label}")
                tok = _run(eng, work, paths)
                vkey = "vllm_base" if key == "base" else "vllm_mixed_32"
                if r == 0:
                    res.add(vkey, f"vLLM, {label}", tok, f"{n} req, best of {rounds}, startup {eng.startup_s:.0f} s")
                else:
                    res.best(vkey, tok)
            if plain is not None:
                step(f"round {r + 1}/{rounds}: ours, base only, GEMM plain (load {os.getloadavg()[0]:.1f})")
                tok = plain([None] * n)
                if r == 0:
                    res.add("base_plain", "ours, base only, GEMM plain", tok, f"{n} req, best of {rounds}")
                else:
                    res.best("base_plain", tok)
    finally:
        if eng is not None:
            eng.stop()
    if no_lora and eng is not None:
        _no_lora_rows(res, model, work, ours, device=device, dtype=dtype, root=root, step=step, threads=threads,
                      rounds=rounds)
    res.extra["loadavg_end"] = list(os.getloadavg())


def _no_lora_rows(res: Any, model: Any, work: list[Any], ours: Callable[[list[pathlib.Path | None]], float], *,
                  device: str, dtype: str, root: pathlib.Path, step: Callable[[str], None], threads: int | None,
                  rounds: int) -> None:
    """vLLM base only with LoRA disabled, interleaved with ours base only (`--vllm-no-lora`)."""
    n = len(work)
    step("vLLM, LoRA disabled: start-up")
    eng = _start(model, root, device=device, dtype=dtype, threads=threads, lora=False)
    try:
        res.extra["vllm_nolora_startup_s"] = eng.startup_s
        _run(eng, work[:4], [None] * 4)  # warm-up
        for r in range(rounds):
            step(f"LoRA-off round {r + 1}/{rounds}: ours, base only (load {os.getloadavg()[0]:.1f})")
            res.best("base", ours([None] * n))
            step(f"LoRA-off round {r + 1}/{rounds}: vLLM, LoRA disabled, base only")
            tok = _run(eng, work, [None] * n)
            if r == 0:
                res.add("vllm_base_nolora", "vLLM, base only, LoRA disabled", tok,
                        f"{n} req, best of {rounds}, startup {eng.startup_s:.0f} s")
            else:
                res.best("vllm_base_nolora", tok)
    finally:
        eng.stop()


def vllm_rows(res: Any, model: Any, work: list[Any], path_of: Callable[[int], pathlib.Path], *, device: str,
              dtype: str, root: pathlib.Path, step: Callable[[str], None], threads: int | None = None) -> None:
    """Add vLLM's rows to `res` (a serving-bench `Result`): base only and 1/8/32/256 adapters, plus its start-up."""
    from inference.api import content_hash_of

    n = len(work)
    step("vLLM: start-up")
    eng = _start(model, root, device=device, dtype=dtype, threads=threads)
    if eng is None:
        _skipped(res, step)
        return
    try:
        res.extra["vllm_startup_s"] = eng.startup_s
        used = sorted({i % k for k in MIXED for i in range(n)})
        for i in used:
            p = path_of(i)
            eng.add_adapter(content_hash_of(p), p, p.name)
        _run(eng, work[:4], [None] * 4)  # warm-up
        step("vLLM: base only")
        res.add("vllm_base", "vLLM, base only", _run(eng, work, [None] * n), f"{n} req, startup "
                f"{eng.startup_s:.0f} s")
        for k in MIXED:
            step(f"vLLM: {k} adapters")
            res.add(f"vllm_mixed_{k}", f"vLLM, {k} adapters (r16)", _run(eng, work, [path_of(i % k) for i in range(n)]),
                    f"max_loras 32, max_cpu_loras 256, {min(k, n)} distinct used")
    finally:
        eng.stop()


def json_keys(tok: Callable[[str], float | None], extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON keys of vLLM's rows (None where they did not run)."""
    return {"vllm_base_tok_s": tok("vllm_base"), "vllm_mixed_tok_s": {str(k): tok(f"vllm_mixed_{k}") for k in MIXED},
            "vllm_startup_s": extra.get("vllm_startup_s"), "vllm_base_nolora_tok_s": tok("vllm_base_nolora"),
            "vllm_nolora_startup_s": extra.get("vllm_nolora_startup_s")}
