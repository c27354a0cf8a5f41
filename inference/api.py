"""The engine's request and response types: what callers (node/, the bench, tests) submit and receive.

Kept apart from the scheduler (`inference.engine`) so the HTTP layer and the engine loop can change independently;
`inference.engine` re-exports every name here.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from inference.errors import InferenceError
from inference.sampling import SamplingParams

__all__ = [
    "ZERO_ID",
    "Completion",
    "EngineConfigInvalid",
    "EngineOverloaded",
    "EngineStopped",
    "GenerationRequest",
    "RequestHandle",
    "RequestExceedsKVCache",
    "RequestFailed",
    "RequestInvalid",
    "RequestTooLong",
    "StreamEvent",
    "Usage",
]

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


class RequestHandle:
    """A submitted request: iterate `events()` (blocking), wait with `result()`, stop it with `cancel()`."""

    def __init__(self, request_id: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.request_id = request_id
        self._cancelled = False
        self._done = threading.Event()
        self._completion: Completion | None = None
        self._error: BaseException | None = None
        self._loop = loop
        self._sync: queue.SimpleQueue[StreamEvent] = queue.SimpleQueue()
        self._async: asyncio.Queue[StreamEvent] | None = asyncio.Queue() if loop is not None else None

    def cancel(self) -> None:
        """Ask the engine to stop this request at the next token boundary (finish_reason "cancelled")."""
        self._cancelled = True

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
