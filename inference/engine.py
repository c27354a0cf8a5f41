"""Continuous-batching engine: one base model, many LoRA adapters, every running row in one forward pass per step.

Layout (see docs/inference-engine.md), each part changeable on its own:
- `inference.api`: request/response types and the engine's errors (re-exported here);
- `inference.models.llama`: `LlamaForward`, the Llama-family forward over the Hugging Face weights;
- `inference.attention`: prefill and decode attention, torch SDPA or the native kernel (`inference.kernels` picks);
- `inference.kv`: `KVCache`, per-row preallocated K/V; the running batch is kept compact in rows ``0..B-1``;
- this module: the scheduler. `Engine.step()` admits queued requests whose adapter is ready (up to `max_batch` rows
  and a prefill token budget), prefills them packed in one forward, then decodes every running row in one forward;
  rows join and leave at token boundaries. Tokens stream through `RequestHandle` (sync) or `Engine.generate` (async
  iterator); each finished request carries a `Usage` (ids, token counts, timings, cache tier, finish reason).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from inference.api import (
    ZERO_ID,
    Completion,
    EngineConfigInvalid,
    EngineOverloaded,
    EngineStopped,
    GenerationRequest,
    RequestExceedsKVCache,
    RequestFailed,
    RequestHandle,
    RequestInvalid,
    RequestTooLong,
    StreamEvent,
    Usage,
    checked_prompt,
)
from inference.errors import InferenceError
from inference.kv import KVCache
from inference.lora import LoraPool, PoolSlot, Segment
from inference.models.llama import LlamaForward
from inference.sampling import RowGenerator, make_generator, sample

__all__ = [
    "ZERO_ID",
    "AdapterCacheLike",
    "Completion",
    "Engine",
    "EngineConfig",
    "EngineConfigInvalid",
    "EngineOverloaded",
    "EngineStopped",
    "GenerationRequest",
    "LlamaForward",
    "RequestExceedsKVCache",
    "RequestFailed",
    "RequestHandle",
    "RequestInvalid",
    "RequestTooLong",
    "StreamEvent",
    "Usage",
]

logger = logging.getLogger(__name__)

_ids = itertools.count(1)


class AdapterCacheLike(Protocol):
    """What the engine needs from the adapter cache (`inference.adapters.cache.AdapterCache`)."""

    pool: LoraPool

    def acquire(self, name_or_id: str | bytes) -> tuple[bytes, str]: ...
    def activate(self, adapter_id: bytes) -> PoolSlot | None: ...
    def deactivate(self, adapter_id: bytes) -> None: ...
    def release(self, adapter_id: bytes, tokens: int = 0) -> None: ...
    def set_ready_callback(self, fn: Callable[[], None]) -> None: ...


@dataclass
class EngineConfig:
    """Engine limits: running rows, admission queue, sequence length, prefill tokens per step."""

    max_batch: int = 64
    max_queue: int = 1024
    max_seq_len: int = 512
    prefill_token_budget: int = 1024
    detokenize: bool = True
    native_attention: bool = True  # attention in the fused C kernel when it applies (CPU, fp32, AVX-512) and
    # LORALEDGER_KERNELS allows it (inference.kernels); False forces the torch path for this engine
    kv_dtype: str | None = None  # K/V cache storage: None = the model's dtype; "float16" halves the cache bytes that
    # decode attention reads (native CPU kernel only; attention still computes in fp32, greedy output may differ)
    kv_cache_bytes: int | None = None  # K/V cache budget: as many rows of max_seq_len tokens as fit, at most
    # max_batch (one shorter row when not even one fits); None = max_batch full rows, whatever they take
    bench_stats: bool = False  # `Engine.prefill_shapes` grows by one per prefill: for the bench's roofline only


@dataclass(eq=False)
class _Seq:
    handle: RequestHandle
    req: GenerationRequest
    prompt: list[int]
    adapter_id: bytes
    tier: str
    generator: RowGenerator | None
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
        self.fwd.use_native = self.fwd.use_native and self.config.native_attention
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
        # K and V of every layer, per cached token
        self.kv_bytes_per_token = (2 * self.fwd.n_layers * self.fwd.n_kv * self.fwd.head_dim
                                   * torch.empty(0, dtype=kv_dtype).element_size())
        rows, max_len = self.config.max_batch, self.config.max_seq_len
        budget = self.config.kv_cache_bytes
        if budget is not None:
            tokens = budget // self.kv_bytes_per_token
            if tokens < 2:  # the smallest request: one prompt token and one new token
                raise EngineConfigInvalid(
                    f"kv_cache_bytes={budget} holds fewer than 2 tokens of K/V ({self.kv_bytes_per_token} bytes per "
                    f"token for this model): give at least {self.kv_bytes_per_token * max_len} bytes for one row of "
                    f"max_seq_len {max_len} tokens, or leave kv_cache_bytes unset")
            max_len = min(max_len, tokens)
            rows = min(rows, tokens // max_len)
        self.kv = KVCache(self.fwd.n_layers, rows, self.fwd.n_kv, max_len, self.fwd.head_dim, device=self.device,
                          dtype=kv_dtype)
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
        self.prefill_shapes: list[tuple[int, int]] | None = [] if self.config.bench_stats else None  # (tokens, rows)
        if cache is not None:
            cache.set_ready_callback(self._notify)

    # ---------------------------------------------------------------- submission

    def submit(self, req: GenerationRequest, *, loop: asyncio.AbstractEventLoop | None = None) -> RequestHandle:
        """Queue a request; raises RequestInvalid/RequestTooLong, AdapterNotFound, or EngineOverloaded."""
        if self._stopping:
            raise EngineStopped("the engine is stopped: start it before submitting")
        if req.stop and not self.config.detokenize:
            raise RequestInvalid("stop strings need text: this engine runs with detokenize=False")
        prompt = checked_prompt(req, self.tokenizer, self.fwd.vocab, self.config.max_seq_len)
        if len(prompt) + req.max_tokens > self.kv.max_len:
            raise RequestExceedsKVCache(
                f"prompt ({len(prompt)} tokens) + max_tokens ({req.max_tokens}) = {len(prompt) + req.max_tokens} "
                f"tokens of K/V, but this engine's kv_cache_bytes ({self.config.kv_cache_bytes} bytes, "
                f"{self.kv_bytes_per_token} per token) holds at most {self.kv.max_len} tokens per request: raise "
                "kv_cache_bytes, or shorten the prompt or lower max_tokens")
        adapter_id, tier = ZERO_ID, "base"
        if req.adapter is not None:
            if self.cache is None:
                raise RequestInvalid("this engine has no adapter cache: request the base model")
            adapter_id, tier = self.cache.acquire(req.adapter)
        rid = req.request_id or f"req-{next(_ids)}"
        seq = _Seq(handle=RequestHandle(rid, loop), req=req, prompt=prompt, adapter_id=adapter_id, tier=tier,
                   generator=make_generator(req.sampling), t_submit=time.perf_counter())
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
            retry = max(1.0, math.ceil(self.config.max_queue / self.kv.rows * self._req_s_ema))
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
            except Exception as e:  # forward faults are contained per row (_contained); this is outside them
                logger.exception("engine step failed outside any row's forward: failing every request")
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
            # longest prompt first: rows of similar length sit next to each other, so decode attention chunks stay
            # tight
            self._contained(sorted(admitted, key=lambda s: len(s.prompt), reverse=True), self._prefill,
                            self._prefilled)
            self._reap()
        if self._running:
            self._contained(list(self._running), self._decode, self._decoded)
            self._reap()
        return bool(admitted) or bool(self._running)

    # ---------------------------------------------------------------- fault containment

    def _contained(self, seqs: list[_Seq], forward: Callable[[list[_Seq]], list[int]],
                   commit: Callable[[_Seq, int], None]) -> None:
        """Run one forward over `seqs` and commit each row's next token, so that a fault fails only its own rows.

        If the forward raises, each half of the rows is retried alone, down to the single rows that still fail:
        those fail with `RequestFailed`, every other row gets the token it would have got (a row's math does not
        depend on the other rows; a retry rewrites the same K/V positions). A fault in one row's commit
        (detokenizer, stop strings) fails that row only. A fault that every row hits fails every row, each after
        its own attempt, and the engine goes on with the queue."""
        try:
            nxt = forward(seqs)
        except Exception as e:
            if len(seqs) == 1:
                logger.exception("request %s failed in the engine step", seqs[0].handle.request_id)
                self._fail_row(seqs[0], e)
                return
            logger.warning("engine step over %d rows failed (%s: %s): retrying each half alone", len(seqs),
                           type(e).__name__, e)
            mid = len(seqs) // 2
            self._contained(seqs[:mid], forward, commit)
            self._contained(seqs[mid:], forward, commit)
            return
        for s, t in zip(seqs, nxt, strict=True):
            try:
                commit(s, t)
            except Exception as e:
                logger.exception("request %s failed after its step", s.handle.request_id)
                self._fail_row(s, e)

    def _fail_row(self, s: _Seq, cause: Exception) -> None:
        """Fail one request with `RequestFailed`: a running row leaves at the next reap, a row whose prefill never
        completed (it is not in the running batch) gives back its adapter now."""
        s.error = RequestFailed(s.handle.request_id, s.adapter_id, cause)
        s.error.__cause__ = cause
        s.finish = "error"
        if 0 <= s.row < len(self._running) and self._running[s.row] is s:
            return
        s.row = -1
        if s.adapter_id != ZERO_ID and self.cache is not None:
            if s.slot is not None:
                self.cache.deactivate(s.adapter_id)
            self.cache.release(s.adapter_id)
        s.handle._push(StreamEvent(error=s.error))

    def _to_front(self, seqs: list[_Seq]) -> None:
        """Make `seqs` the running rows 0..len(seqs)-1 (decode runs on a prefix of the compact batch): a retry after
        a fault only, it copies the K/V of every running row."""
        if all(s.row == i for i, s in enumerate(seqs)):
            return
        chosen = {id(s) for s in seqs}
        order = seqs + [s for s in self._running if id(s) not in chosen]
        self.kv.permute_rows([s.row for s in order])
        for i, s in enumerate(order):
            s.row = i
        self._running = order

    def _admit(self) -> list[_Seq]:
        free = self.kv.rows - len(self._running)  # max_batch, or fewer where kv_cache_bytes holds fewer rows
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

    def _prefill(self, seqs: list[_Seq]) -> list[int]:
        """One packed forward over new prompts, placed as rows after the running ones; their first tokens."""
        dev = self.device
        first = len(self._running)
        for i, s in enumerate(seqs):
            s.row = first + i
        self._running.extend(seqs)
        try:
            lens = [len(s.prompt) for s in seqs]
            if self.prefill_shapes is not None:
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
            h = self.fwd.forward(tokens, pos, attend, lora, routing)  # [N, hidden]
            last = torch.tensor(list(itertools.accumulate(lens)), device=dev) - 1
            nxt: list[int] = sample(self.fwd.logits(h.index_select(0, last)), [s.req.sampling for s in seqs],
                                    [s.generator for s in seqs]).tolist()
        except Exception:  # the rows were never admitted to the batch: `_contained` retries or fails them
            del self._running[first:]
            for s in seqs:
                s.row = -1
            raise
        return nxt

    def _prefilled(self, s: _Seq, token: int) -> None:
        s.length = len(s.prompt)
        s.t_first = time.perf_counter()
        self._append(s, token)

    def _decode(self, seqs: list[_Seq]) -> list[int]:
        """One forward over running rows (all of them, or a subset on a retry): their next tokens."""
        self._to_front(seqs)
        dev = self.device
        b = len(seqs)
        tokens = torch.tensor([s.generated[-1] for s in seqs], dtype=torch.long, device=dev)
        pos_list = [s.length for s in seqs]
        pos = torch.tensor(pos_list, dtype=torch.long, device=dev)
        rows = torch.arange(b, device=dev)
        lora = self.cache.pool if self.cache is not None else None
        routing = lora.routing(self._segments(seqs, [1] * b)) if lora is not None else None
        attend = self.fwd.decode_attend(self.kv, rows, pos, max(pos_list) + 1, pos_list)
        h = self.fwd.forward(tokens, pos, attend, lora, routing)  # [B, hidden]
        nxt: list[int] = sample(self.fwd.logits(h), [s.req.sampling for s in seqs],
                                [s.generator for s in seqs]).tolist()
        self.decode_steps += 1
        self.decode_rows_total += b
        self.decode_batches[b] = self.decode_batches.get(b, 0) + 1
        return nxt

    def _decoded(self, s: _Seq, token: int) -> None:
        s.length += 1
        self._append(s, token)

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
        if s.error is not None:
            s.handle._push(StreamEvent(error=s.error))
            return
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
