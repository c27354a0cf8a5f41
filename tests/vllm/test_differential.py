"""Our engine and the vLLM backend on the same weights (fp32, tiny Llama, peft adapters), both through
`EngineClient`: greedy tokens identical for the base model and mixed adapters in one batch, and for 64 adapters with
vLLM holding 8 on the device and 16 in host memory; add-time refusals; streaming, cancel, stats. One vLLM engine
for the module."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from inference.api import (
    AdapterNotFound,
    AdapterRankTooLarge,
    AdapterUnsupportedFeature,
    EngineClient,
    EngineSpec,
    GenerationRequest,
    RequestTooLong,
    content_hash_of,
)
from inference.backends import build_engine
from tests.fixtures.models import _TARGET_SETS

pytestmark = pytest.mark.timeout(1800)

PROMPTS = [
    "Decode a JSON document",
    "def dumps(obj, *, skipkeys=False):",
    "The object_hook is an optional function",
    "indent",
    "If ensure_ascii is false, these characters will be output as-is.",
]
MAX_TOKENS = 12
N_ADAPTERS = 64
DEVICE = os.environ.get("LORALEDGER_TEST_DEVICE", "cpu")  # scripts/gpu_vllm.sh runs it on cuda (still fp32)


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory, make_adapter: Any) -> list[pathlib.Path]:
    """64 adapters, ranks 8 and 16, four target sets."""
    root = tmp_path_factory.mktemp("vllm-adapters")
    return [make_adapter(root / f"v{i:02d}", seed=2000 + i, rank=(8, 16)[i % 2], targets=_TARGET_SETS[i % 4],
                         alpha=(16, 32)[i % 2]) for i in range(N_ADAPTERS)]


def _spec(base: pathlib.Path, store: pathlib.Path, backend: str) -> EngineSpec:
    return EngineSpec(model_dir=base, adapter_store=store, backend=backend, device=DEVICE, dtype="float32",
                      max_batch=32, max_queue=1024, max_seq_len=256, max_loras=8, max_cpu_loras=16, max_lora_rank=16)


def _serve(eng: EngineClient, adapters: list[pathlib.Path]) -> EngineClient:
    for p in adapters:
        eng.add_adapter(content_hash_of(p), p, p.name)
    return eng


@pytest.fixture(scope="module")
def vllm_engine(tiny_base_dir: pathlib.Path, adapters: list[pathlib.Path],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    eng: Any = build_engine(_spec(tiny_base_dir, tmp_path_factory.mktemp("vllm-store"), "vllm"))
    eng.start()
    try:
        eng.wait_ready(900)
        yield _serve(eng, adapters)
    finally:
        eng.stop()


@pytest.fixture(scope="module")
def ours(tiny_base_dir: pathlib.Path, adapters: list[pathlib.Path],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineClient]:
    eng = build_engine(_spec(tiny_base_dir, tmp_path_factory.mktemp("ours-store"), "loraledger"))
    eng.start()
    try:
        yield _serve(eng, adapters)
    finally:
        eng.stop()


def _run(eng: EngineClient, jobs: list[tuple[pathlib.Path | None, str]]) -> list[list[int]]:
    """All jobs submitted at once (one mixed batch), greedy, forced length."""
    handles = [eng.submit(GenerationRequest(prompt=p, adapter=None if a is None else a.name, max_tokens=MAX_TOKENS,
                                            ignore_eos=True)) for a, p in jobs]
    out = []
    for h in handles:
        c = h.result(timeout=600)
        assert c.usage.completion_tokens == MAX_TOKENS and c.finish_reason == "length"
        out.append(c.token_ids)
    return out


def test_vllm_backend_is_vllm(vllm_engine: Any, ours: EngineClient) -> None:
    assert vllm_engine.backend == "vllm" and ours.backend == "loraledger"
    assert vllm_engine.model_id == ours.model_id and vllm_engine.ready
    assert vllm_engine.startup_s is not None and vllm_engine.startup_s > 0


def test_greedy_tokens_equal_base_and_mixed_adapters(vllm_engine: Any, ours: EngineClient,
                                                     adapters: list[pathlib.Path]) -> None:
    jobs: list[tuple[pathlib.Path | None, str]] = [(None, p) for p in PROMPTS]
    jobs += [(a, PROMPTS[i % len(PROMPTS)]) for i, a in enumerate(adapters[:16])]
    theirs, mine = _run(vllm_engine, jobs), _run(ours, jobs)
    diff = [(a.name if a else "base", p) for (a, p), x, y in zip(jobs, theirs, mine, strict=True) if x != y]
    assert not diff, f"{len(diff)} of {len(jobs)} rows differ: {diff[:5]}"
    # the adapters change the tokens (else the comparison would not test them)
    assert sum(x != theirs[i % len(PROMPTS)] for i, x in enumerate(theirs[len(PROMPTS):])) >= 8


def test_64_adapters_over_max_loras_all_answer_their_own(vllm_engine: Any, ours: EngineClient,
                                                         adapters: list[pathlib.Path]) -> None:
    """More adapters in flight than vLLM holds (8 device slots, 16 host): every answer is its own adapter's."""
    jobs: list[tuple[pathlib.Path | None, str]] = [(a, PROMPTS[i % 2]) for i, a in enumerate(adapters)]
    jobs += [(None, p) for p in PROMPTS[:2]]
    theirs, mine = _run(vllm_engine, jobs), _run(ours, jobs)
    assert sum(x == y for x, y in zip(theirs, mine, strict=True)) == len(jobs)
    assert len({tuple(x) for x in theirs}) > N_ADAPTERS // 2  # distinct adapters, distinct answers
    served = {i.name: i for i in vllm_engine.adapters()}
    assert all(served[a.name].hits >= 1 and served[a.name].tier == "vllm" for a in adapters)


def test_add_refuses_what_vllm_cannot_take(vllm_engine: Any, make_adapter: Any, tmp_path: pathlib.Path) -> None:
    big = make_adapter(tmp_path / "rank32", seed=7, rank=32)
    with pytest.raises(AdapterRankTooLarge, match="engine.max_lora_rank") as e:
        vllm_engine.add_adapter(content_hash_of(big), big, "rank32")
    assert e.value.rank == 32 and e.value.max_rank == 16
    emb = make_adapter(tmp_path / "emb", seed=8, rank=8, targets=("q_proj", "embed_tokens"))
    with pytest.raises(AdapterUnsupportedFeature, match="embed_tokens"):
        vllm_engine.add_adapter(content_hash_of(emb), emb, "emb")
    assert vllm_engine.adapter_info(content_hash_of(big)) is None


def test_content_addressed_read_only_copy(vllm_engine: Any, adapters: list[pathlib.Path]) -> None:
    info = vllm_engine.adapter_info(content_hash_of(adapters[0]))
    assert info is not None and info.path.name == content_hash_of(adapters[0]).hex()
    assert info.path != adapters[0] and content_hash_of(info.path) == info.adapter_id
    assert all(not (f.stat().st_mode & 0o222) for f in info.path.iterdir())


def test_stream_cancel_errors_and_stats(vllm_engine: Any, adapters: list[pathlib.Path]) -> None:
    h = vllm_engine.submit(GenerationRequest(prompt="Long answer", adapter=adapters[3].name, max_tokens=200,
                                             ignore_eos=True))
    tokens = 0
    for ev in h.events(timeout=300):
        if ev.token_id is not None:
            tokens += 1
            if tokens == 3:
                assert vllm_engine.stats().running + vllm_engine.stats().queued >= 1
                h.cancel()
        if ev.completion is not None:
            c = ev.completion
    assert c.finish_reason == "cancelled" and 3 <= c.usage.completion_tokens < 200
    assert c.usage.adapter_id == content_hash_of(adapters[3])
    with pytest.raises(AdapterNotFound):
        vllm_engine.submit(GenerationRequest(prompt="x", adapter="no-such-adapter"))
    with pytest.raises(RequestTooLong):
        vllm_engine.submit(GenerationRequest(prompt="x", max_tokens=300))
    stop = vllm_engine.submit(GenerationRequest(prompt=PROMPTS[0], max_tokens=40, stop=("e",))).result(300)
    assert "e" not in stop.text
