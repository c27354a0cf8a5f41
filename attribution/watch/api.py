"""The watcher's HTTP side (FastAPI): clients hand it receipts; operators read its status and metrics. Its round
loop runs in a thread for the app's lifetime; a receipt handed in wakes it. Errors are JSON
`{"error": {"code", "message"}}`, 4xx for what the client can fix.

    POST /receipts      a saved answer, or {"record": {...}, "receipt": "0x..."}: 201 held, 200 already held
    GET  /v1/status     cursor, batches by verdict, receipts by state, every challenge
    GET  /metrics       Prometheus
    GET  /healthz       200 while the process answers
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from attribution.chain.errors import ChainError
from attribution.errors import AttributionError
from attribution.watch.receipts import MAX_EVIDENCE_BYTES, ReceiptRejected
from attribution.watch.watcher import Watcher

__all__ = ["create_app", "run_loop"]

log = logging.getLogger(__name__)

#: refusals the client caused by sending something that is not evidence of this deployment
_STATUS = {"too_large": 413, "foreign_record": 409}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def run_loop(watcher: Watcher, stop: threading.Event, wake: threading.Event, poll_s: float) -> None:
    """Rounds until `stop`; a failed round is logged and retried (the RPC or DA may come back)."""
    while not stop.is_set():
        wake.clear()
        try:
            stats = watcher.run_once()
            for action in stats.actions:
                log.info("watch: %s", action)
        except (AttributionError, ChainError) as e:
            watcher.metrics.errors.labels(kind="round").inc()
            log.warning("watch round failed: %s; retrying in %.1fs", e, poll_s)
        except Exception:  # a bug must not end the watch: log it with its trace and go on
            watcher.metrics.errors.labels(kind="bug").inc()
            log.exception("watch round crashed; retrying in %.1fs", poll_s)
        wake.wait(poll_s)


def create_app(watcher: Watcher, *, poll_s: float = 2.0, loop: bool = True) -> FastAPI:
    """The watcher's app; with `loop`, its rounds run in a thread while the app runs."""
    stop, wake = threading.Event(), threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = None
        if loop:
            thread = threading.Thread(target=run_loop, args=(watcher, stop, wake, poll_s), name="watch-loop",
                                      daemon=True)
            thread.start()
        try:
            yield
        finally:
            stop.set()
            wake.set()
            if thread is not None:
                thread.join(timeout=60)

    app = FastAPI(title="loraledger watcher", version="1", lifespan=lifespan,
                  description="Takes clients' receipts and challenges nodes that lie about attribution.")

    @app.post("/receipts", status_code=201)
    async def receipts(request: Request) -> Any:
        """Hold a receipt: the node's saved answer (as `loraledger verify answer` reads it) or the bare
        `{"record", "receipt"}`. 201 held, 200 already held; `equivocation` is true when another leaf is held for
        the same node and seq (the watcher proves it)."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_EVIDENCE_BYTES:
            return _error(413, "too_large", f"body is {declared} bytes, more than {MAX_EVIDENCE_BYTES}: send one "
                          "saved answer per request")
        parts, size = [], 0
        async for part in request.stream():  # a chunked body has no Content-Length: count as it comes
            size += len(part)
            if size > MAX_EVIDENCE_BYTES:
                return _error(413, "too_large", f"body is more than {MAX_EVIDENCE_BYTES} bytes: send one saved "
                              "answer per request")
            parts.append(part)
        body = b"".join(parts)
        if not body:
            return _error(400, "empty_body", "send the saved answer as the JSON body (Content-Type: "
                          "application/json)")
        try:
            out = watcher.add_evidence(body, f"http:{request.client.host if request.client else '-'}")
        except ReceiptRejected as e:
            return _error(_STATUS.get(e.problem, 400), e.problem, str(e))
        wake.set()
        return JSONResponse(out, status_code=201 if out["status"] == "held" else 200)

    @app.get("/v1/status")
    def status() -> dict[str, Any]:
        """Cursor, batches by verdict, receipts by state, every challenge with its dispute id and status."""
        return watcher.status()

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics (`loraledger_watch_*`)."""
        return Response(generate_latest(watcher.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    return app
