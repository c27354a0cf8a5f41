"""The engine seam: `EngineClient`, the protocol every backend implements, and the types and errors it speaks.

The node drives an engine only through `EngineClient` (built by `inference.build_engine(spec)` from an `EngineSpec`):
submit a `GenerationRequest` and iterate its `StreamEvent`s (the last carries the `Completion` with its `Usage`),
cancel it; add, remove and pin adapters by content hash and local path; read `EngineStats` for metrics; the
tokenizer and chat template; the model id. Backends: ours (`inference.backends.embedded`) and vLLM
(`inference.backends.vllm`). Kept apart from the scheduler (`inference.engine`) so the HTTP layer and the engine loop
can change independently; `inference.engine` re-exports the request and response types.
"""

from __future__ import annotations

import asyncio
import pathlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from inference.adapters.errors import (
    AdapterContentChanged,
    AdapterError,
    AdapterNotFound,
    AdapterRankTooLarge,
    AdapterUnsupportedFeature,
)
from inference.adapters.identity import CONFIG_NAME, PICKLE_WEIGHTS_NAME, WEIGHTS_NAME
from inference.adapters.identity import adapter_id_of as content_hash_of
from inference.errors import InferenceError
from inference.sampling import SamplingParams, SamplingParamsInvalid

__all__ = [
    "BACKENDS",
    "CONFIG_NAME",
    "PICKLE_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "ZERO_ID",
    "AdapterContentChanged",
    "AdapterError",
    "AdapterInfo",
    "AdapterNameTaken",
    "AdapterNotFound",
    "AdapterRankTooLarge",
    "AdapterUnsupportedFeature",
    "Completion",
    "EngineClient",
    "EngineConfigInvalid",
    "EngineOverloaded",
    "EngineSpec",
    "EngineStarting",
    "EngineStats",
    "EngineStopped",
    "GenerationRequest",
    "RequestExceedsKVCache",
    "RequestFailed",
    "RequestHandle",
    "RequestInvalid",
    "RequestTooLong",
    "SamplingParams",
    "SamplingParamsInvalid",
    "StreamEvent",
    "Usage",
    "content_hash_of",
]

BACKENDS = ("loraledger", "vllm", "auto")

ZERO_ID = bytes(32)  # adapterId of the bare base model (DESIGN.md)

# ===================================================================================================== ERRORS


class EngineOverloaded(InferenceError):
    """The admission queue is full: retry after `retry_after_s` seconds (HTTP 429 with Retry-After)."""

    def __init__(self, queue_limit: int, retry_after_s: float) -> None:
        self.queue_limit = queue_limit
        self.retry_after_s = retry_after_s
        super().__init__(f"engine overloaded: {queue_limit} requests are already queued; retry after "
                         f"{retry_after_s:.0f} s or raise the engine's max_queue")


class RequestInvalid(InferenceError, ValueError):
    """The request itself is malformed (empty prompt, max_tokens < 1, unknown token ids): fix the request."""


class RequestTooLong(RequestInvalid):
    """Prompt tokens plus max_tokens exceed the engine's max_seq_len: shorten the prompt or lower max_tokens."""


class EngineStopped(InferenceError, RuntimeError):
    """The engine was stopped (or failed) before this request finished: resubmit it to a running engine."""


class RequestExceedsKVCache(RequestTooLong):
    """Prompt plus max_tokens need more K/V than one row of the engine's `kv_cache_bytes` budget holds: the request
    can never run on this engine (raise the budget, or shorten the prompt / lower max_tokens)."""


class EngineStarting(EngineStopped):
    """The engine is still starting (vLLM takes tens of seconds): retry in a few seconds (HTTP 503)."""


class AdapterNameTaken(AdapterError, ValueError):
    """Another adapter already uses that name: remove it first or pick another name."""


class EngineConfigInvalid(InferenceError, ValueError):
    """An `EngineConfig` value the engine cannot run with (the message names the field and a value that works)."""


class RequestFailed(InferenceError, RuntimeError):
    """This request's own computation raised inside a step (the cause is chained); the other requests went on."""

    def __init__(self, request_id: str, adapter_id: bytes, cause: BaseException) -> None:
        self.request_id = request_id
        self.adapter_id = adapter_id
        what = "the base model" if adapter_id == ZERO_ID else f"adapter 0x{adapter_id.hex()}"
        super().__init__(f"request {request_id} failed in the engine ({type(cause).__name__}: {cause}); the other "
                         f"requests were not affected: retry it, and if it keeps failing check {what}")


# ===================================================================================================== API TYPES


@dataclass(frozen=True)
class GenerationRequest:
    """One completion request. `adapter` is an adapter name or id (None: the bare base model)."""

    prompt: str | None = None
    prompt_ids: list[int] | None = None
    adapter: str | bytes | None = None
    max_tokens: int = 16
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    request_id: str = ""


def checked_prompt(req: GenerationRequest, tokenizer: Any, vocab: int, max_seq_len: int) -> list[int]:
    """The request's prompt token ids, checked the same way by every backend: max_tokens >= 1, a prompt (text, through
    `tokenizer`, or ids), not empty, ids in [0, vocab), prompt + max_tokens <= max_seq_len."""
    if req.max_tokens < 1:
        raise RequestInvalid(f"max_tokens must be >= 1, got {req.max_tokens}")
    if req.prompt_ids is not None:
        prompt = list(req.prompt_ids)
    elif req.prompt is not None:
        prompt = list(tokenizer.encode(req.prompt))
    else:
        raise RequestInvalid("give a prompt (text) or prompt_ids")
    if not prompt:
        raise RequestInvalid("the prompt is empty: give at least one token")
    if min(prompt) < 0 or max(prompt) >= vocab:
        raise RequestInvalid(f"prompt token ids must be in [0, {vocab})")
    if len(prompt) + req.max_tokens > max_seq_len:
        raise RequestTooLong(f"prompt ({len(prompt)} tokens) + max_tokens ({req.max_tokens}) exceeds the engine's "
                             f"max_seq_len {max_seq_len}: shorten the prompt or lower max_tokens")
    return prompt


@dataclass(frozen=True)
class Usage:
    """What one finished request used: the input of its attribution record."""

    model_id: bytes
    adapter_id: bytes  # 32 bytes, ZERO_ID for the base model
    prompt_tokens: int
    completion_tokens: int
    queue_ms: float
    prefill_ms: float
    decode_ms: float
    cache_tier: str  # tier of the adapter at admission: "device" | "host" | "disk" | "base"
    finish_reason: str  # "stop" | "length" | "cancelled" | "error"


@dataclass(frozen=True)
class Completion:
    """The final result of a request: text (stop string excluded), generated token ids, usage."""

    request_id: str
    text: str
    token_ids: list[int]
    finish_reason: str
    usage: Usage


@dataclass(frozen=True)
class StreamEvent:
    """One streamed step: a new token and its text delta, or (last event) the `completion`, or an `error`."""

    token_id: int | None = None
    text: str = ""
    completion: Completion | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter's state in an engine (for `GET /v1/adapters/{id}`, `/v1/models` and metrics). `tier` is
    "device" | "host" | "disk" for ours; vLLM keeps its own LRU tiers, its backend reports "vllm"."""

    adapter_id: bytes  # the content hash
    name: str
    tier: str
    path: pathlib.Path  # what the engine loads: the content-addressed, read-only copy
    rank: int | None
    host_bytes: int
    device_bytes: int
    disk_bytes: int
    pinned: bool
    refs: int
    hits: int
    tokens: int
    load_ms: float | None  # last disk -> host load
    device_ms: float | None  # last host -> device copy (enqueue time for an asynchronous copy)
    loading: bool = False  # a disk -> host load is queued or running
    load_error: str | None = None  # why the last load failed (named error class: message), None if it did not


@dataclass(frozen=True)
class EngineStats:
    """What `/metrics` and `/readyz` read from an engine (the llm-d gauges among them)."""

    queued: int  # requests waiting for a row
    running: int  # requests in the running batch
    kv_cache_usage: float  # 0..1
    max_loras: int  # adapters one batch can mix (`vllm:lora_requests_info`'s max_lora)


@dataclass(frozen=True)
class EngineSpec:
    """What `inference.build_engine` builds: the backend, the base model, the limits and the adapter budgets.

    `backend`: "loraledger" (ours, the default: CPU, tests), "vllm" (vLLM's `AsyncLLM`), or "auto" (vLLM when CUDA
    and the vllm package are both present, else ours). The `max_loras` ... `kv_cache_gib` fields are vLLM's; ours
    budgets adapters in bytes (`device_bytes`, `host_bytes`)."""

    model_dir: pathlib.Path
    adapter_store: pathlib.Path  # the content-addressed, read-only copies of the adapters the engine loads
    model_name: str | None = None
    backend: str = "loraledger"
    device: str = "cpu"
    dtype: str = "float32"
    max_batch: int = 32
    max_queue: int = 256
    max_seq_len: int = 512
    device_bytes: int | None = None
    host_bytes: int | None = None
    max_loras: int = 8
    max_cpu_loras: int = 32
    max_lora_rank: int = 16
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    kv_cache_gib: float = 1.0  # vLLM on CPU: the K/V cache it reserves (its VLLM_CPU_KVCACHE_SPACE)
    seed: int = 0


class EngineClient(Protocol):
    """An engine the node can serve through: ours or vLLM (`inference.build_engine`)."""

    backend: str  # "loraledger" | "vllm"
    model_id: bytes  # sha256 over the base model's weight files (DESIGN.md "Identities")
    model_name: str
    tokenizer: Any  # a Hugging Face tokenizer: encode/decode, apply_chat_template
    chat_template: str  # the tokenizer's own, else `inference.chat.CHAT_TEMPLATE`

    @property
    def ready(self) -> bool:
        """Whether requests can be admitted now (vLLM: once its engine is up)."""

    @property
    def status(self) -> str:
        """One line for `/readyz` and logs: "ready", "starting (vllm, 12 s)", "stopped", "failed: ..."."""

    def start(self) -> None:
        """Start serving (ours: its step thread; vLLM: the engine, in the background: poll `ready`)."""

    def stop(self) -> None:
        """Stop; unfinished requests fail with `EngineStopped`."""

    def submit(self, req: GenerationRequest, *, loop: asyncio.AbstractEventLoop | None = None) -> RequestHandle:
        """Queue a request; raises RequestInvalid/RequestTooLong, AdapterNotFound, EngineOverloaded, EngineStopped."""

    def add_adapter(self, content_hash: bytes, path: pathlib.Path, name: str) -> None:
        """Serve the adapter at `path` whose content hash the caller checked: the engine loads a read-only,
        content-addressed copy and refuses (`AdapterContentChanged`) files whose hash is no longer `content_hash`,
        and adapters it cannot serve (named `AdapterError`s saying the limit and the setting)."""

    def remove_adapter(self, content_hash: bytes) -> None:
        """Stop serving it to new requests (in-flight ones finish)."""

    def pin_adapter(self, content_hash: bytes, pinned: bool = True) -> None:
        """Keep it loaded (never evicted) or make it evictable again."""

    def adapter_info(self, content_hash: bytes) -> AdapterInfo | None:
        """One adapter's state, None if it is not served."""

    def adapters(self) -> list[AdapterInfo]:
        """Every served adapter's state."""

    def stats(self) -> EngineStats:
        """Queue, running batch and K/V use now."""


class RequestHandle:
    """A submitted request: iterate `events()` (blocking), wait with `result()`, stop it with `cancel()`."""

    def __init__(self, request_id: str, loop: asyncio.AbstractEventLoop | None = None,
                 on_cancel: Callable[[], None] | None = None) -> None:
        self.request_id = request_id
        self._on_cancel = on_cancel  # a backend that stops requests itself (vLLM: abort) hooks in here
        self._cancelled = False
        self._done = threading.Event()
        self._completion: Completion | None = None
        self._error: BaseException | None = None
        self._loop = loop
        self._sync: queue.SimpleQueue[StreamEvent] = queue.SimpleQueue()
        self._async: asyncio.Queue[StreamEvent] | None = asyncio.Queue() if loop is not None else None

    def cancel(self) -> None:
        """Ask the engine to stop this request at the next token boundary (finish_reason "cancelled")."""
        first = not self._cancelled
        self._cancelled = True
        if first and self._on_cancel is not None and not self.done:
            self._on_cancel()

    @property
    def cancelled(self) -> bool:
        """Whether cancel() was called."""
        return self._cancelled

    @property
    def done(self) -> bool:
        """Whether the request finished (completion or error)."""
        return self._done.is_set()

    def _push(self, ev: StreamEvent) -> None:
        if ev.completion is not None:
            self._completion = ev.completion
        if ev.error is not None:
            self._error = ev.error
        if self._loop is not None and self._async is not None:
            try:
                self._loop.call_soon_threadsafe(self._async.put_nowait, ev)
            except RuntimeError:  # the consumer's loop is closed: nobody listens any more
                self._cancelled = True
        else:
            self._sync.put(ev)
        if ev.completion is not None or ev.error is not None:
            self._done.set()

    def events(self, timeout: float | None = None) -> Iterator[StreamEvent]:
        """Blocking iterator over the stream; raises the request's error if it failed."""
        while True:
            ev = self._sync.get(timeout=timeout)
            if ev.error is not None:
                raise ev.error
            yield ev
            if ev.completion is not None:
                return

    def result(self, timeout: float | None = None) -> Completion:
        """Wait for the completion; raises the request's error if it failed, TimeoutError after `timeout`."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"request {self.request_id} did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._completion is not None
        return self._completion

    async def aevents(self) -> AsyncIterator[StreamEvent]:
        """Async iterator over the stream (handles created with a loop only)."""
        assert self._async is not None, "create the handle through Engine.generate for async streaming"
        while True:
            ev = await self._async.get()
            if ev.error is not None:
                raise ev.error
            yield ev
            if ev.completion is not None:
                return
