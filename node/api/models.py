"""`GET /v1/models`: the base model and every served adapter (`parent` = the base, with its cache tier)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

__all__ = ["router"]

router = APIRouter(tags=["models"])


@router.get("/v1/models", summary="Served models (OpenAI-compatible)")
async def list_models(request: Request) -> dict[str, Any]:
    """The base model, then one entry per adapter with its registered id, contentHash and cache tier."""
    s = request.app.state.services
    created = int(s.started_at)
    data: list[dict[str, Any]] = [{"id": s.model_name, "object": "model", "created": created, "owned_by": "loraledger",
                                   "root": s.model_name, "parent": None, "model_id": "0x" + s.model_id.hex()}]
    tiers = {info.adapter_id: info.tier for info in s.engine.adapters()}
    for e in s.catalogue.entries():
        data.append({"id": e.name, "object": "model", "created": created, "owned_by": e.owner or "loraledger",
                     "root": e.name, "parent": s.model_name, "adapter_id": "0x" + e.adapter_id.hex(),
                     "content_hash": "0x" + e.content_hash.hex(), "tier": tiers.get(e.content_hash, "disk"),
                     "active": e.refused is None})
    return {"object": "list", "data": data}
