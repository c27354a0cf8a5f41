"""`POST /v1/completions` and `POST /v1/chat/completions` (OpenAI-compatible, streamed or not)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from attribution.records.receipt import canonical_json
from inference.api import SamplingParams, SamplingParamsInvalid
from inference.chat import ChatTemplateRefused, render_chat
from node.api.auth import client_key
from node.api.errors import APIError, error_body, map_exception
from node.api.generate import Generation, Job
from node.api.schemas import ChatRequest, CompletionRequest, read_json
from node.catalogue import AdapterNotServable, Catalogue
from node.services import Services

__all__ = ["router"]

router = APIRouter(tags=["inference"])

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def _resolve(s: Services, model: str) -> Any:
    if model == s.model_name:
        return None
    entry = Catalogue.find(s.catalogue, model)
    if entry is None:
        raise APIError(404, f"the model {model!r} does not exist on this node: use the base model "
                       f"{s.model_name!r} or an adapter listed by GET /v1/models", param="model",
                       code="model_not_found")
    try:
        Catalogue.servable(entry)
    except AdapterNotServable as e:
        raise APIError(403, str(e), param="model", code="adapter_not_servable", type="permission_error") from e
    return entry


def _sampling(req: CompletionRequest | ChatRequest) -> SamplingParams:
    try:
        return SamplingParams(temperature=1.0 if req.temperature is None else req.temperature,
                              top_p=1.0 if req.top_p is None else req.top_p, seed=req.seed)
    except SamplingParamsInvalid as e:
        raise APIError(400, str(e), param="temperature", code="invalid_value") from e


def _base_url(s: Services, request: Request) -> str:
    return s.settings.node.public_url or str(request.base_url)


async def _serve(request: Request, s: Services, key: str, req: CompletionRequest | ChatRequest, job_kind: str,
                 prompt: str, prompt_bytes: bytes, max_tokens: int | None, chars: int) -> Any:
    limit = s.settings.node.max_prompt_chars
    if chars > limit:
        param = "messages" if job_kind == "chat" else "prompt"
        raise APIError(400, f"the {param} has {chars} characters; this node accepts at most {limit}: shorten "
                       "it", param=param, code="prompt_too_long")
    if not prompt.strip() and job_kind == "completion":
        raise APIError(400, "the prompt is empty: give at least one character", param="prompt",
                       code="invalid_value")
    entry = _resolve(s, req.model)
    mt = max_tokens or s.settings.engine.default_max_tokens
    cap = s.settings.engine.max_seq_len - 1
    if mt > cap:
        raise APIError(400, f"max_tokens {mt} exceeds this node's limit of {cap} (max_seq_len "
                       f"{s.settings.engine.max_seq_len} includes the prompt): lower it", param="max_tokens",
                       code="invalid_value")
    over = s.limits.check(key, len(prompt_bytes) // 4 + mt) if key else None  # "": a loopback client, keys off
    if over is not None:
        which, retry = over
        s.metrics.rejected.labels(f"rate_{which}").inc()
        raise APIError(429, f"rate limit on {which} per minute reached for this API key (or client address); "
                       f"retry after {retry} s",
                       type="rate_limit_error", code=f"rate_limit_{which}", headers={"Retry-After": str(retry)})
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    if req.stream_options is not None and not req.stream:
        raise APIError(400, "stream_options is only allowed with stream: true", param="stream_options",
                       code="invalid_value")
    job = Job(kind=job_kind, model=req.model, entry=entry, prompt=prompt, prompt_bytes=prompt_bytes,
              max_tokens=mt, sampling=_sampling(req), stops=req.stops(), stream=req.stream,
              include_usage=include_usage, base_url=_base_url(s, request))
    gen = Generation(s, job)
    gen.submit()
    if req.stream:
        return StreamingResponse(gen.sse(), media_type="text/event-stream", headers=_SSE_HEADERS)
    try:
        async for _ in gen.deltas():
            pass
        await gen.finish()
    except BaseException:
        if not gen.recorded:
            gen.detach()
        raise
    if gen.error is not None:  # failed in the engine after admission: tokens produced so far are attributed
        err = map_exception(gen.error)
        body = error_body(err.message, err.type, err.param, err.code)
        body["error"]["attribution"] = gen.attribution
        return JSONResponse(body, status_code=err.status, headers=err.headers)
    return JSONResponse(gen.body())


@router.post("/v1/completions", summary="Text completion (OpenAI-compatible)")
async def completions(request: Request, key: Annotated[str, Depends(client_key)]) -> Any:
    """A completion of `prompt` by the base model or an adapter (`model`); streamed with `stream: true`."""
    s = _services(request)
    req = await read_json(request, CompletionRequest, s.settings.node.max_body_bytes)
    prompt = req.prompt_text()
    return await _serve(request, s, key, req, "completion", prompt, prompt.encode(), req.max_tokens, len(prompt))


@router.post("/v1/chat/completions", summary="Chat completion (OpenAI-compatible)")
async def chat_completions(request: Request, key: Annotated[str, Depends(client_key)]) -> Any:
    """A chat answer to `messages`, rendered with the engine's chat template (the tokenizer's, or
    `inference.chat.CHAT_TEMPLATE`)."""
    s = _services(request)
    req = await read_json(request, ChatRequest, s.settings.node.max_body_bytes)
    if req.max_tokens is not None and req.max_completion_tokens is not None:
        raise APIError(400, "give max_tokens or max_completion_tokens, not both", param="max_completion_tokens",
                       code="invalid_value")
    plain = [{"role": m.role, "content": m.text()} for m in req.messages]
    chars = sum(len(m["content"]) for m in plain)
    try:
        prompt = render_chat(s.tokenizer, plain, s.engine.chat_template) if chars <= s.settings.node.max_prompt_chars \
            else ""
    except ChatTemplateRefused as e:
        raise APIError(400, str(e), param="messages", code="invalid_value") from e
    # ioHash covers the messages exactly as the client sent them (canonical JSON), not our template
    messages = request.state.json_body["messages"]
    return await _serve(request, s, key, req, "chat", prompt, canonical_json(messages),
                        req.max_completion_tokens or req.max_tokens, chars)
