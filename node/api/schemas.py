"""Request bodies of the OpenAI-compatible routes, and the strict parsing that names what is wrong.

Bodies are read and parsed here rather than by FastAPI so that every failure (too large, not UTF-8, not JSON,
wrong type, unknown field) becomes one OpenAI-shaped 4xx naming the parameter and the fix. Fields we do not
support are refused (`extra="forbid"`), never silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator
from starlette.requests import ClientDisconnect

from attribution.safejson import JSONInputError, loads
from node.api.errors import APIError

__all__ = ["AdapterAdd", "ChatMessage", "ChatRequest", "CompletionRequest", "read_json"]

M = TypeVar("M", bound=BaseModel)

MAX_STOP = 4
MAX_SEED = 2**63 - 1


class StreamOptions(BaseModel):
    """`stream_options`: only `include_usage` is supported."""

    model_config = ConfigDict(extra="forbid")

    include_usage: StrictBool = False


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, Field(min_length=1, max_length=256)]
    max_tokens: StrictInt | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: StrictInt | None = Field(None, ge=0, le=MAX_SEED)
    stop: str | list[str] | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    user: Annotated[str, Field(max_length=256)] | None = None
    n: StrictInt = Field(1, ge=1, le=1, description="Only n=1 is supported.")

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop strings")
        if any(not s for s in stops):
            raise ValueError("stop strings must be non-empty")
        return v

    def stops(self) -> tuple[str, ...]:
        """The stop strings as a tuple."""
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class CompletionRequest(_Common):
    """`POST /v1/completions`."""

    prompt: str | list[str]

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError("give one prompt (a string, or a list with exactly one string); batch prompts are "
                             "not supported")
        return v

    def prompt_text(self) -> str:
        """The single prompt string."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class TextPart(BaseModel):
    """A text part of a message's content list."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One chat message; content is text or a list of text parts."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]
    name: Annotated[str, Field(max_length=64)] | None = None

    def text(self) -> str:
        """The content as one string."""
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(_Common):
    """`POST /v1/chat/completions`."""

    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=256)]
    max_completion_tokens: StrictInt | None = Field(None, ge=1, le=1_000_000)


class AdapterAdd(BaseModel):
    """`POST /v1/adapters`: serve an adapter from a local directory."""

    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(min_length=1, max_length=4096)]
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] | None = None
    adapter_id: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")] | None = None


def _param(loc: tuple[Any, ...]) -> str:
    # pydantic locs of a union member carry the member's type name ("str", "list[str]"): drop those
    parts = [str(x) for x in loc if not (isinstance(x, str) and ("[" in x or x in ("str", "int", "float", "bool")))]
    return ".".join(parts) or "body"


async def read_json(request: Request, model: type[M], max_bytes: int) -> M:
    """Read, bound, decode and validate a JSON body; raises `APIError` 413/400 naming the problem."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise APIError(413, f"request body of {declared} bytes exceeds the node's limit of {max_bytes} bytes: "
                       "send a shorter prompt", code="body_too_large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise APIError(413, f"request body exceeds the node's limit of {max_bytes} bytes: send a shorter "
                               "prompt", code="body_too_large")
            chunks.append(chunk)
    except ClientDisconnect as e:
        # the client went away mid-body (or the body timeout cut it): nobody reads this answer, and a traceback
        # per aborted upload would flood the log
        raise APIError(400, "the request body ended before its Content-Length: send the whole body",
                       code="body_incomplete") from e
    raw = b"".join(chunks)
    if not raw.strip():
        raise APIError(400, "the request body is empty: send a JSON object", code="invalid_json")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise APIError(400, f"the request body is not valid UTF-8 (byte {e.start}): send UTF-8 JSON",
                       code="invalid_encoding") from e
    try:
        # depth-bounded: 100,000 nested brackets would overflow the C stack in json.loads (see attribution/safejson)
        obj = loads(raw, what="the request body")
    except JSONInputError as e:
        raise APIError(400, f"{e}", code="invalid_json") from e
    if not isinstance(obj, dict):
        raise APIError(400, f"the request body must be a JSON object, got {type(obj).__name__}", code="invalid_json")
    request.state.json_body = obj
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        err = e.errors()[0]
        param = _param(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            raise APIError(400, f"unsupported field {param!r}: this node does not implement it; remove it from the "
                           "request", param=param, code="unsupported_field") from e
        if err["type"] == "missing":
            raise APIError(400, f"missing required field {param!r}", param=param, code="missing_field") from e
        raise APIError(400, f"invalid {param}: {err['msg']}", param=param, code="invalid_value") from e
