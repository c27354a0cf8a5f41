"""One generation from admission to its attribution: submit to the engine, stream or collect, record, answer.

Invariant (DESIGN.md 1): the record is durably stored before the response (or the final SSE event) leaves. A client
that disconnects cancels its generation; the tokens already produced are still recorded (a detached task drains
the engine's last event and records it). A request past `node.request_timeout_s` is cut the same way and answered
with `finish_reason: "length"`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from inference.api import GenerationRequest, RequestHandle, SamplingParams
from node.api.errors import APIError, map_exception
from node.catalogue import CatalogueEntry
from node.services import Services

__all__ = ["Generation", "Job"]

logger = logging.getLogger(__name__)

_FINISH = {"stop": "stop", "length": "length", "cancelled": "length", "error": "error"}


@dataclass
class Job:
    """What a validated request asks for."""

    kind: str  # "completion" | "chat"
    model: str  # as the client named it
    entry: CatalogueEntry | None  # None: the base model
    prompt: str  # what the engine tokenizes (the chat template already applied)
    prompt_bytes: bytes  # what ioHash covers (DESIGN.md: prompt UTF-8, or canonical JSON of the messages)
    max_tokens: int
    sampling: SamplingParams
    stops: tuple[str, ...]
    stream: bool
    include_usage: bool
    base_url: str
    id: str = field(default_factory=lambda: secrets.token_hex(12))
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def label(self) -> str | None:
        """The adapter's name for metrics (None for the base model)."""
        return self.entry.name if self.entry is not None else None


class Generation:
    """A submitted job: iterate `deltas()`, then `finish()` returns the attribution (record stored first)."""

    def __init__(self, services: Services, job: Job) -> None:
        self.s = services
        self.job = job
        self.parts: list[str] = []
        self.tokens = 0
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.error: BaseException | None = None
        self.timed_out = False
        self.recorded = False
        self.attribution: dict[str, Any] | None = None
        self._t0 = time.perf_counter()
        self._t_first: float | None = None
        self._handle: RequestHandle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    # ---------------------------------------------------------------- admission

    def submit(self) -> None:
        """Hand the job to the engine; raises APIError (429 when the queue is full, 4xx for bad requests)."""
        s, job = self.s, self.job
        if not s.accepting:
            raise APIError(503, "the node is shutting down: retry on another node or in a moment",
                           type="service_unavailable", code="shutting_down", headers={"Retry-After": "5"})
        req = GenerationRequest(prompt=job.prompt, adapter=job.entry.content_hash if job.entry else None,
                                max_tokens=job.max_tokens, sampling=job.sampling, stop=job.stops,
                                request_id=job.id)
        try:
            self._handle = s.engine.submit(req, loop=asyncio.get_running_loop())
        except Exception as e:
            err = map_exception(e)
            s.metrics.rejected.labels(err.code or str(err.status)).inc()
            raise err from e
        s.inflight.add(self._handle)
        s.metrics.waiting(job.label)
        self._timer = asyncio.get_running_loop().call_later(s.settings.node.request_timeout_s, self._timeout)

    def _timeout(self) -> None:
        if self._handle is not None and not self._handle.done:
            self.timed_out = True
            self._handle.cancel()

    def cancel(self) -> None:
        """The client went away: stop generating (the produced tokens are still recorded by `detach`)."""
        if self._handle is not None:
            self._handle.cancel()

    # ---------------------------------------------------------------- tokens

    async def deltas(self) -> AsyncIterator[str]:
        """Text deltas as the engine produces them; ends after the final event (then `finish_reason` is set)."""
        assert self._handle is not None
        try:
            async for ev in self._handle.aevents():
                if ev.token_id is not None:
                    if self._t_first is None:
                        self._t_first = time.perf_counter()
                        self.s.metrics.started(self.job.label)
                    self.tokens += 1
                if ev.text:
                    self.parts.append(ev.text)
                    yield ev.text
                if ev.completion is not None:
                    self.finish_reason = _FINISH.get(ev.completion.finish_reason, "stop")
                    self.prompt_tokens = ev.completion.usage.prompt_tokens
                    self.tokens = ev.completion.usage.completion_tokens
                    self._observe(ev.completion.usage)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the engine failed this request mid-way
            self.error = e
            self.finish_reason = "error"

    def _observe(self, usage: Any) -> None:
        m, label = self.s.metrics, self.job.label or "base"
        m.tokens.labels(label, "prompt").inc(usage.prompt_tokens)
        m.tokens.labels(label, "completion").inc(usage.completion_tokens)
        m.tier_hits.labels(label, usage.cache_tier).inc()
        if self._t_first is not None:
            m.ttft.labels(label).observe(self._t_first - self._t0)
            if self.tokens > 1:
                m.tpot.labels(label).observe((time.perf_counter() - self._t_first) / (self.tokens - 1))

    @property
    def text(self) -> str:
        """The text produced so far."""
        return "".join(self.parts)

    # ---------------------------------------------------------------- the end

    async def finish(self) -> dict[str, Any] | None:
        """Record the answer durably and return its attribution (None when attribution is off or nothing ran)."""
        if not self._closed:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._handle is not None:
                self.s.inflight.discard(self._handle)
            self.s.metrics.finished(self.job.label, self._t_first is not None)
            self.s.metrics.requests.labels(self.job.label or "base", self.finish_reason or "error").inc()
        rec = self.s.recorder
        if rec is None or self.recorded:
            return self.attribution
        if self.finish_reason == "error" and self.tokens == 0:
            return None  # DESIGN.md: no record for a request that produced nothing
        if self.prompt_tokens is None:
            self.prompt_tokens = len(self.s.tokenizer.encode(self.job.prompt))
        self.recorded = True
        try:
            self.attribution = await rec.record(
                model_id=self.s.model_id, entry=self.job.entry, prompt_tokens=self.prompt_tokens,
                completion_tokens=self.tokens, prompt_bytes=self.job.prompt_bytes, completion_text=self.text,
                base_url=self.job.base_url, kind=self.job.kind)
        except Exception as e:  # alarm: an answer was computed but not recorded, so the client gets a 503 instead
            self.s.metrics.records_refused.labels(map_exception(e).code or "error").inc()
            raise
        return self.attribution

    def detach(self) -> None:
        """After a disconnect: drain the engine's remaining events in the background and record the answer."""
        self.cancel()

        async def drain() -> None:
            try:
                if self.finish_reason is None:
                    async for _ in self.deltas():
                        pass
                await self.finish()
            except Exception:  # noqa: BLE001 - logged; nothing else can be done for a gone client
                logger.exception("recording a cancelled request failed")

        task = asyncio.get_running_loop().create_task(drain())
        self.s.detached.add(task)
        task.add_done_callback(self.s.detached.discard)

    # ---------------------------------------------------------------- response bodies

    def usage(self) -> dict[str, int]:
        """OpenAI's usage object."""
        p = self.prompt_tokens or 0
        return {"prompt_tokens": p, "completion_tokens": self.tokens, "total_tokens": p + self.tokens}

    def body(self) -> dict[str, Any]:
        """The non-streamed response."""
        job = self.job
        if job.kind == "chat":
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": self.text},
                                      "logprobs": None, "finish_reason": self.finish_reason}
            obj, prefix = "chat.completion", "chatcmpl-"
        else:
            choice = {"index": 0, "text": self.text, "logprobs": None, "finish_reason": self.finish_reason}
            obj, prefix = "text_completion", "cmpl-"
        return {"id": prefix + job.id, "object": obj, "created": job.created, "model": job.model,
                "choices": [choice], "usage": self.usage(), "attribution": self.attribution}

    def chunk(self, delta: str | None, finish: str | None = None, *, first: bool = False) -> dict[str, Any]:
        """One streamed chunk."""
        job = self.job
        if job.kind == "chat":
            d: dict[str, Any] = {}
            if first:
                d["role"] = "assistant"
            if delta is not None:
                d["content"] = delta
            choice: dict[str, Any] = {"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}
            return {"id": "chatcmpl-" + job.id, "object": "chat.completion.chunk", "created": job.created,
                    "model": job.model, "choices": [choice]}
        choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
        return {"id": "cmpl-" + job.id, "object": "text_completion", "created": job.created, "model": job.model,
                "choices": [choice]}

    async def sse(self) -> AsyncIterator[bytes]:
        """The SSE stream: deltas, the finish chunk, the usage chunk (`choices: []`), `[DONE]`; the last JSON event
        carries `attribution`, sent only after the record is stored. Errors mid-stream are `{"error": ...}` events."""
        finished = False
        try:
            if self.job.kind == "chat":
                yield _event(self.chunk("", first=True))
            async for delta in self.deltas():
                yield _event(self.chunk(delta))
            try:
                attribution = await self.finish()
            except Exception as e:  # the record could not be stored: say so instead of a receipt
                finished = True
                err = map_exception(e)
                yield _event({"error": {"message": err.message, "type": err.type, "param": err.param,
                                        "code": err.code}})
                yield b"data: [DONE]\n\n"
                return
            finished = True
            if self.error is not None:
                err = map_exception(self.error) if not isinstance(self.error, APIError) else self.error
                body = {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code,
                                  "attribution": attribution}}
                yield _event(body)
            else:
                last = self.chunk(None if self.job.kind == "chat" else "", self.finish_reason)
                if self.job.include_usage:
                    yield _event(last)
                    last = {**self.chunk(None), "choices": [], "usage": self.usage()}
                last["attribution"] = attribution
                yield _event(last)
            yield b"data: [DONE]\n\n"
        except BaseException:
            if not finished:
                self.detach()
            raise


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"
