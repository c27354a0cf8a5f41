"""Errors as HTTP responses, in one place: OpenAI's JSON shape `{"error": {message, type, param, code}}`.

Every exception a route can meet maps to a status here; anything unexpected becomes a 500 with a fixed message and
no traceback (the traceback goes to the log). Bad input is never a 500.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from attribution.store import StoreClosedError, StoreDeadError, StoreError, StoreFullError
from inference.api import (
    AdapterContentChanged,
    AdapterError,
    AdapterNotFound,
    EngineOverloaded,
    EngineStarting,
    EngineStopped,
    RequestFailed,
    RequestInvalid,
    RequestTooLong,
    SamplingParamsInvalid,
)
from inference.chat import ChatTemplateRefused
from node.catalogue import AdapterNotServable
from node.errors import NodeError

__all__ = ["APIError", "error_body", "install_error_handlers", "map_exception"]

logger = logging.getLogger(__name__)


class APIError(NodeError):
    """An error answer: HTTP status, OpenAI error type, the offending parameter, a code, extra headers."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The OpenAI error object."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def map_exception(e: BaseException) -> APIError:
    """The APIError for an exception raised while serving (engine, adapters, store, catalogue)."""
    if isinstance(e, APIError):
        return e
    if isinstance(e, EngineOverloaded):
        retry = max(1, math.ceil(e.retry_after_s))
        return APIError(429, f"the node is overloaded ({e.queue_limit} requests queued); retry after {retry} s",
                        type="rate_limit_error", code="overloaded", headers={"Retry-After": str(retry)})
    if isinstance(e, RequestTooLong):
        return APIError(400, str(e), param="max_tokens", code="context_length_exceeded")
    if isinstance(e, SamplingParamsInvalid):
        param = "top_p" if "top_p" in str(e) else "temperature"
        return APIError(400, str(e), param=param, code="invalid_value")
    if isinstance(e, RequestInvalid):
        return APIError(400, str(e), param="prompt", code="invalid_value")
    if isinstance(e, ChatTemplateRefused):
        return APIError(400, str(e), param="messages", code="invalid_value")
    if isinstance(e, AdapterNotServable):
        return APIError(403, str(e), param="model", code="adapter_not_servable", type="permission_error")
    if isinstance(e, AdapterNotFound):
        return APIError(404, f"{e}: list the served models with GET /v1/models", param="model",
                        code="model_not_found")
    if isinstance(e, AdapterContentChanged):  # the operator's files changed under the node: not the client's fault
        return APIError(409, str(e), param="model", code="adapter_content_changed")
    if isinstance(e, AdapterError):
        return APIError(400, str(e), param="path", code="adapter_invalid")
    if isinstance(e, RequestFailed):  # this request's own computation failed; the engine serves on
        return APIError(500, str(e), type="server_error", code="engine_request_failed")
    if isinstance(e, EngineStarting):
        return APIError(503, f"{e}", type="service_unavailable", code="engine_starting", headers={"Retry-After": "5"})
    if isinstance(e, EngineStopped):
        return APIError(503, "the node is shutting down: retry on another node or in a moment",
                        type="service_unavailable", code="shutting_down", headers={"Retry-After": "5"})
    if isinstance(e, StoreFullError):  # the answer was not recorded, so it is not sent: nothing unattributed leaves
        return APIError(503, "the node cannot record answers now: its record store is full (store.max_bytes or "
                        "store.min_free_bytes reached); the operator must free disk, raise store.max_bytes, or let "
                        "the batcher post and prune; retry later or on another node", type="service_unavailable",
                        code="store_full", headers={"Retry-After": "30"})
    if isinstance(e, StoreDeadError):
        return APIError(503, "the node cannot record answers: its record store stopped; the operator must restart "
                        "the node (stored records are safe); retry on another node", type="service_unavailable",
                        code="store_dead", headers={"Retry-After": "60"})
    if isinstance(e, (StoreClosedError, StoreError)):
        return APIError(503, "the node cannot record answers now; retry later", type="service_unavailable",
                        code="store_unavailable", headers={"Retry-After": "5"})
    logger.error("unexpected error while serving", exc_info=e)
    return APIError(500, "internal error: the node logged the details", type="server_error", code="internal_error")


def _response(err: APIError) -> JSONResponse:
    return JSONResponse(error_body(err.message, err.type, err.param, err.code), status_code=err.status,
                        headers=err.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into an OpenAI-shaped JSON error."""

    async def api_error(_: Request, e: Exception) -> JSONResponse:
        return _response(map_exception(e))

    async def http_error(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, StarletteHTTPException)
        if e.status_code == 404:
            msg = "no such route: see /docs for the API (OpenAI-compatible routes live under /v1)"
            return _response(APIError(404, msg, code="not_found"))
        if e.status_code == 405:
            return _response(APIError(405, f"method not allowed here: {e.detail}", code="method_not_allowed"))
        return _response(APIError(e.status_code, str(e.detail), code="http_error"))

    async def validation_error(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, RequestValidationError)
        first = e.errors()[0] if e.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "path", "query")]
        param = ".".join(loc) or None
        return _response(APIError(400, f"invalid {param or 'request'}: {first.get('msg', 'invalid value')}",
                                  param=param, code="invalid_value"))

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, api_error)
