"""`GET /metrics` (Prometheus), `GET /healthz` (the process answers), `GET /readyz` (it can serve and record)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics (ours and the llm-d vllm:* names)")
async def metrics(request: Request) -> Response:
    """Text exposition format."""
    s = request.app.state.services
    return Response(s.metrics.render(s.engine, s.store), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """200 while the process answers."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness")
async def readyz(request: Request) -> Any:
    """200 when the node admits requests and can record them; 503 naming what is not ready."""
    s = request.app.state.services
    problems = []
    if not s.accepting:
        problems.append("shutting down")
    if not s.engine.ready:
        problems.append(f"engine {s.engine.status}")
    if s.store is not None and s.store.used_bytes >= s.store.max_bytes:
        problems.append("record store full")
    stats = s.engine.stats()
    body = {"status": "ready" if not problems else "not ready", "problems": problems,
            "engine": {"backend": s.engine.backend, "status": s.engine.status},
            "queued": stats.queued, "running": stats.running,
            "next_seq": s.store.next_seq() if s.store is not None else None}
    return JSONResponse(body, status_code=200 if not problems else 503)
