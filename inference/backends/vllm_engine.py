"""vLLM behind `EngineClient`: vLLM's public async API (`AsyncLLM`, the V1 engine) with one `LoRARequest` per
adapter, answering with our types (`StreamEvent`, `Completion`, `Usage`) and our errors.

- vLLM runs on its own thread and event loop (`_loop`), so the node's loop, the bench and tests (synchronous
  `RequestHandle.result()`) all submit the same way; events cross back through `RequestHandle`.
- `start()` returns at once; the engine starts in the background (tens of seconds: model load, K/V cache
  profiling) and `ready` turns true when it is up; until then `submit` raises `EngineStarting` (HTTP 503) and the
  progress is logged every few seconds.
- Cancel: `RequestHandle.cancel()` cancels the request's task, which makes vLLM's `generate` abort it in the engine;
  the tokens produced so far come back as a completion with finish_reason "cancelled".
- Admission: at most `max_batch` running plus `max_queue` waiting requests, beyond that `EngineOverloaded` (429).
- Usage: prompt tokens are the ids we tokenized and sent (the same tokenizer and ids as our engine), completion
  tokens the ids vLLM returned. vLLM does not report queue time apart from prefill, so `queue_ms` is 0 and
  `prefill_ms` is submit -> first token.
- Stats for `/metrics` come from vLLM's own scheduler statistics (a stat logger of ours receives them).
- Base-model rows on CPU run through an all-zero adapter (one extra LoRA slot): vLLM's CPU LoRA ops
  (`vllm/lora/ops/torch_ops`, `bgmv_shrink`/`bgmv_expand`) index the adapter stacks with the row's LoRA index, and a
  base row's index -1 picks the last slot, so in a batch that mixes adapters a base row got the last slot's adapter
  applied (found by tests/vllm/test_differential.py: every base row of a mixed batch differed). A zero adapter's delta
  is exactly 0.0; the GPU kernels skip index -1 and need no such row routing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import math
import pathlib
import threading
import time
from typing import Any

from inference.adapters.store import ContentStore
from inference.api import (
    ZERO_ID,
    AdapterError,
    AdapterInfo,
    Completion,
    EngineConfigInvalid,
    EngineOverloaded,
    EngineSpec,
    EngineStarting,
    EngineStats,
    EngineStopped,
    GenerationRequest,
    RequestFailed,
    RequestHandle,
    RequestInvalid,
    StreamEvent,
    Usage,
    checked_prompt,
)
from inference.backends.vllm_lora import ZERO_LORA_ID, VllmAdapters, _Adapter, write_zero_adapter
from inference.chat import chat_template_of
from inference.model import ModelNotFound, compute_model_id

__all__ = ["VllmEngine", "vllm_available"]

logger = logging.getLogger(__name__)

_ids = itertools.count(1)
_FINISH = {"stop": "stop", "length": "length", "abort": "cancelled"}
_PROGRESS_S = 5.0


def vllm_available() -> bool:
    """Whether the vllm package imports here (`make setup-vllm` installs it in `.venv-vllm`)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VllmEngine:
    """`EngineClient` over vLLM's `AsyncLLM`."""

    backend = "vllm"

    def __init__(self, spec: EngineSpec, *, lora: bool = True) -> None:
        """`lora=False` starts vLLM with LoRA disabled (base model only, requests naming an adapter are refused):
        what `loraledger bench serving --vllm-no-lora` measures as vLLM's fastest base-only reference."""
        import transformers

        if not vllm_available():
            raise EngineConfigInvalid("engine.backend = \"vllm\" but the vllm package is not installed here: run "
                                      "`make setup-vllm` and use .venv-vllm (or set engine.backend = \"loraledger\")")
        d = pathlib.Path(spec.model_dir)
        if not (d / "config.json").is_file():
            raise ModelNotFound(f"{d} has no config.json: pass a local Hugging Face model directory "
                                "(or run `loraledger demo init` for the demo model)")
        self.spec = spec
        self.model_id: bytes = compute_model_id(d)
        self.model_name: str = spec.model_name or d.name
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
        self.chat_template = chat_template_of(self.tokenizer)
        self.config = transformers.AutoConfig.from_pretrained(d, local_files_only=True)
        self.vocab = int(self.config.vocab_size)
        self.adapters_ = VllmAdapters(ContentStore(spec.adapter_store), self.config, spec.max_lora_rank)
        self._zero: Any = None  # the LoRARequest of base rows on CPU (module docstring)
        self._extra_slots = 0
        self.lora = lora
        if spec.device == "cpu" and lora:
            from vllm.lora.request import LoRARequest

            z = write_zero_adapter(pathlib.Path(spec.adapter_store), self.config)
            self._zero = LoRARequest(lora_name="loraledger-base-zero", lora_int_id=ZERO_LORA_ID,
                                     lora_path=str(z))
            self._extra_slots = 1
        self.startup_s: float | None = None  # how long the engine took to come up
        self._llm: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._t_start = 0.0
        self._state = "not started"
        self._up = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._tasks: dict[str, concurrent.futures.Future[None]] = {}
        self._sched: Any = None  # vLLM's last SchedulerStats
        self._req_s_ema = 1.0

    # ---------------------------------------------------------------- lifecycle

    @property
    def ready(self) -> bool:
        """Whether vLLM's engine is up and not stopped."""
        return self._up.is_set() and not self._stopping

    @property
    def status(self) -> str:
        """"ready", "starting (vllm, 12 s)", "stopped", "failed: ..."."""
        if self._state == "starting":
            return f"starting (vllm, {time.monotonic() - self._t_start:.0f} s)"
        return self._state

    def start(self) -> None:
        """Start vLLM's engine on a background thread; `ready` turns true when it is up."""
        if self._thread is not None:
            return
        self._t_start = time.monotonic()
        self._state = "starting"
        self._thread = threading.Thread(target=self._run, name="vllm-engine", daemon=True)
        self._thread.start()
        threading.Thread(target=self._progress, name="vllm-progress", daemon=True).start()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the engine is up; raises EngineStopped if it failed to start, TimeoutError after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._up.wait(0.2):
            if self._state.startswith("failed") or self._state == "stopped":
                raise EngineStopped(f"vLLM did not start: {self._state}")
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"vLLM not up after {timeout} s ({self.status})")

    def _progress(self) -> None:
        while not self._up.wait(_PROGRESS_S) and self._state == "starting":
            logger.info("vLLM engine %s", self.status)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._boot())
        except BaseException as e:  # noqa: BLE001 - reported through status and /readyz
            logger.exception("vLLM engine failed to start")
            self._state = f"failed: {type(e).__name__}: {e}"
            loop.close()
            return
        self.startup_s = time.monotonic() - self._t_start
        self._state = "ready"
        self._up.set()
        logger.info("vLLM engine up in %.1f s (%s, max_loras %d, max_cpu_loras %d, max_lora_rank %d)",
                    self.startup_s, self.model_name, self.spec.max_loras, self.spec.max_cpu_loras,
                    self.spec.max_lora_rank)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def engine_args(self) -> Any:
        """vLLM's `AsyncEngineArgs` for this spec (fp32/bf16 as asked, our limits, LoRA on unless `lora=False`).
        On CPU with LoRA on it runs eager (vLLM's CPU LoRA layers are not compiled); without LoRA vLLM's own default
        (its torch.compile'd model) applies."""
        from vllm.engine.arg_utils import AsyncEngineArgs

        s = self.spec
        cpu = s.device == "cpu"
        extra: dict[str, Any] = {"kv_cache_memory_bytes": int(s.kv_cache_gib * 2**30)} if cpu else \
            {"gpu_memory_utilization": s.gpu_memory_utilization}
        if self.lora:
            extra.update(enable_lora=True, max_loras=s.max_loras + self._extra_slots, max_lora_rank=s.max_lora_rank,
                         max_cpu_loras=s.max_cpu_loras + self._extra_slots)
        return AsyncEngineArgs(
            model=str(s.model_dir), tokenizer=str(s.model_dir), served_model_name=self.model_name, dtype=s.dtype,
            max_model_len=s.max_seq_len, max_num_seqs=s.max_batch, seed=s.seed,
            tensor_parallel_size=s.tensor_parallel_size, enforce_eager=cpu and self.lora, disable_log_stats=True,
            **extra)

    async def _boot(self) -> None:
        from vllm.v1.engine.async_llm import AsyncLLM
        from vllm.v1.metrics.loggers import StatLoggerBase

        owner = self

        class _SchedulerStats(StatLoggerBase):
            """Keeps vLLM's last scheduler statistics for `stats()` (the llm-d gauges)."""

            def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
                pass

            def record(self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None,
                       engine_idx: int = 0) -> None:
                if scheduler_stats is not None:
                    owner._sched = scheduler_stats

            def log_engine_initialized(self) -> None:
                pass

        self._llm = AsyncLLM.from_engine_args(self.engine_args(), stat_loggers=[_SchedulerStats])
        if self._zero is not None:  # loaded now; never pinned (see `pin_adapter`)
            await self._llm.add_lora(self._zero)

    def stop(self) -> None:
        """Stop: unfinished requests fail with EngineStopped; vLLM's engine process is shut down."""
        if self._stopping:
            return
        self._stopping = True
        with self._lock:
            tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        loop, llm = self._loop, self._llm
        if loop is not None and not loop.is_closed():
            async def shutdown() -> None:
                await asyncio.sleep(0.05)  # let the cancelled requests push their errors
                if llm is not None:
                    llm.shutdown()
                loop.stop()

            try:
                asyncio.run_coroutine_threadsafe(shutdown(), loop)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if self._thread is not None:
            self._thread.join(60)
        self._state = "stopped"

    # ---------------------------------------------------------------- requests

    def submit(self, req: GenerationRequest, *, loop: asyncio.AbstractEventLoop | None = None) -> RequestHandle:
        """Queue a request on vLLM; raises RequestInvalid/RequestTooLong, AdapterNotFound, EngineOverloaded,
        EngineStarting (still starting) or EngineStopped."""
        if self._stopping:
            raise EngineStopped("the engine is stopped: resubmit to a running node")
        if not self._up.is_set():
            if self._state.startswith("failed"):
                raise EngineStopped(f"vLLM failed to start ({self._state}): the operator must fix and restart")
            raise EngineStarting(f"the vLLM engine is still starting ({self.status}): retry in a few seconds")
        prompt = self._prompt(req)
        if req.adapter is not None and not self.lora:
            raise RequestInvalid(f"adapter {req.adapter!r}: this vLLM engine runs with LoRA disabled (base model "
                                 "only): send the request without an adapter")
        entry = self.adapters_.acquire(req.adapter) if req.adapter is not None else None
        with self._lock:
            if len(self._tasks) >= self.spec.max_batch + self.spec.max_queue:
                overloaded = True
            else:
                overloaded = False
                rid = req.request_id or f"vllm-{next(_ids)}"
                if rid in self._tasks:
                    rid = f"{rid}-{next(_ids)}"
                handle = RequestHandle(rid, loop, on_cancel=lambda: self._cancel(rid))
                assert self._loop is not None
                fut = asyncio.run_coroutine_threadsafe(self._generate(handle, prompt, req, entry), self._loop)
                self._tasks[rid] = fut
        if overloaded:
            if entry is not None:
                self.adapters_.release(entry, 0)
            retry = max(1.0, math.ceil(self.spec.max_queue / self.spec.max_batch * self._req_s_ema))
            raise EngineOverloaded(self.spec.max_queue, retry)
        return handle

    def _prompt(self, req: GenerationRequest) -> list[int]:
        return checked_prompt(req, self.tokenizer, self.vocab, self.spec.max_seq_len)

    def _cancel(self, rid: str) -> None:
        with self._lock:
            fut = self._tasks.get(rid)
        if fut is not None:
            fut.cancel()  # cancels the task on vLLM's loop: generate() aborts the request in the engine

    def _params(self, req: GenerationRequest) -> Any:
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        s = req.sampling
        return SamplingParams(max_tokens=req.max_tokens, temperature=s.temperature, top_p=s.top_p, seed=s.seed,
                              stop=list(req.stop) or None, ignore_eos=req.ignore_eos, skip_special_tokens=True,
                              output_kind=RequestOutputKind.DELTA)

    async def _generate(self, handle: RequestHandle, prompt: list[int], req: GenerationRequest,
                        entry: _Adapter | None) -> None:
        from vllm.exceptions import VLLMClientError
        from vllm.v1.engine.exceptions import EngineDeadError

        rid = handle.request_id
        adapter_id = entry.content_hash if entry is not None else ZERO_ID
        t_submit = time.perf_counter()
        t_first: float | None = None
        ids: list[int] = []
        text: list[str] = []
        finish: str | None = None
        error: BaseException | None = None
        try:
            lora = entry.lora_request() if entry is not None else self._zero
            async for out in self._llm.generate({"prompt_token_ids": prompt}, self._params(req), rid,
                                                lora_request=lora):
                c = out.outputs[0]
                new = list(c.token_ids)
                if new and t_first is None:
                    t_first = time.perf_counter()
                for i, t in enumerate(new):
                    handle._push(StreamEvent(token_id=t, text=c.text if i == len(new) - 1 else ""))
                if c.text and not new:
                    handle._push(StreamEvent(text=c.text))
                ids += new
                text.append(c.text)
                if out.finished:
                    finish = _FINISH.get(c.finish_reason or "", "stop")
        except asyncio.CancelledError:  # cancel() or stop(): vLLM's generate aborted the request
            finish = "cancelled"
            if self._stopping:
                error = EngineStopped("the engine stopped before this request finished: resubmit it")
        except EngineDeadError as e:
            error = EngineStopped(f"vLLM's engine died ({e}): the operator must restart the node")
            error.__cause__ = e
        except VLLMClientError as e:
            error = RequestInvalid(f"vLLM refused the request: {e}")
            error.__cause__ = e
        except Exception as e:  # noqa: BLE001 - this request failed; the engine serves on
            logger.exception("request %s failed in vLLM", rid)
            error = RequestFailed(rid, adapter_id, e)
            error.__cause__ = e
        finally:
            now = time.perf_counter()
            with self._lock:
                self._tasks.pop(rid, None)
                self._req_s_ema = 0.9 * self._req_s_ema + 0.1 * (now - t_submit)
            if entry is not None and self.adapters_.release(entry, len(prompt) + len(ids)) and self.ready:
                await self._llm.remove_lora(entry.int_id)
        if error is not None:
            handle._push(StreamEvent(error=error))
            return
        first = t_first or now
        usage = Usage(model_id=self.model_id, adapter_id=adapter_id, prompt_tokens=len(prompt),
                      completion_tokens=len(ids), queue_ms=0.0, prefill_ms=(first - t_submit) * 1e3,
                      decode_ms=(now - first) * 1e3, cache_tier="vllm" if entry is not None else "base",
                      finish_reason=finish or "stop")
        handle._push(StreamEvent(completion=Completion(request_id=rid, text="".join(text), token_ids=ids,
                                                       finish_reason=usage.finish_reason, usage=usage)))

    # ---------------------------------------------------------------- adapters

    def _call(self, coro: Any, timeout: float = 120) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def add_adapter(self, content_hash: bytes, path: pathlib.Path, name: str) -> None:
        """Check and register the adapter; once vLLM is up it also loads it now (into its host LRU), so whatever
        vLLM itself refuses is refused here, not on a request."""
        if not self.lora:
            raise AdapterError(f"adapter {name}: this vLLM engine runs with LoRA disabled (base model only)",
                               adapter=name)
        entry = self.adapters_.add(content_hash, path, name)
        if self.ready:
            try:
                self._call(self._llm.add_lora(entry.lora_request()))
            except Exception as e:
                self.adapters_.remove(content_hash)
                raise AdapterError(f"vLLM refused adapter {name}: {e}", adapter=name) from e

    def remove_adapter(self, content_hash: bytes) -> None:
        """Hide it; vLLM drops it (and its copy goes) when its last in-flight request ends."""
        gone = self.adapters_.remove(content_hash)
        if gone is not None and self.ready:
            self._call(self._llm.remove_lora(gone.int_id))

    def pin_adapter(self, content_hash: bytes, pinned: bool = True) -> None:
        """Pin: loads it into vLLM's host LRU now. vLLM's own `pin_lora` is not used: it also holds a device slot
        that vLLM 0.32's scheduler does not count (it admits `max_loras` other adapters into one batch, and the
        worker then fails the step with a KeyError in `convert_mapping`, killing the engine)."""
        a = self.adapters_.get(content_hash)
        if a is None:
            raise AdapterError(f"no adapter 0x{content_hash.hex()} on this node", adapter=content_hash.hex())
        if pinned and self.ready:
            self._call(self._llm.add_lora(a.lora_request()))
        a.pinned = pinned

    def adapter_info(self, content_hash: bytes) -> AdapterInfo | None:
        """One adapter's state (tier "vllm": vLLM keeps its own tiers)."""
        a = self.adapters_.get(content_hash)
        return self.adapters_.info(a) if a is not None else None

    def adapters(self) -> list[AdapterInfo]:
        """Every served adapter."""
        return [self.adapters_.info(a) for a in self.adapters_.list()]

    # ---------------------------------------------------------------- stats

    def stats(self) -> EngineStats:
        """vLLM's own scheduler statistics (waiting, running, K/V use); zero while nothing is in flight (its last
        statistics were taken before the last request finished)."""
        with self._lock:
            inflight = len(self._tasks)
        sched = self._sched
        if inflight == 0 or sched is None:
            return EngineStats(queued=0, running=0, kv_cache_usage=0.0, max_loras=self.spec.max_loras)
        return EngineStats(queued=int(sched.num_waiting_reqs + sched.num_skipped_waiting_reqs),
                           running=int(sched.num_running_reqs), kv_cache_usage=float(sched.kv_cache_usage),
                           max_loras=self.spec.max_loras)
