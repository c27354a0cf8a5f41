"""Adapter admin (admin key): `POST /v1/adapters` (add from a local directory), `DELETE /v1/adapters/{id}`,
`GET /v1/adapters/{id}` (tier, load ms, hits, tokens). Paths must resolve (symlinks followed) under
`adapters.allowed_roots`, so a request cannot make the node read arbitrary directories."""

from __future__ import annotations

import asyncio
import os
import pathlib
from typing import Any

from fastapi import APIRouter, Depends, Request

from inference.api import CONFIG_NAME, PICKLE_WEIGHTS_NAME, WEIGHTS_NAME
from node.api.auth import admin_key
from node.api.errors import APIError
from node.api.schemas import AdapterAdd, read_json
from node.catalogue import CatalogueEntry

__all__ = ["router"]

router = APIRouter(tags=["adapters"], dependencies=[Depends(admin_key)])


def _view(s: Any, e: CatalogueEntry) -> dict[str, Any]:
    info = s.engine.adapter_info(e.content_hash)  # None: removed meanwhile
    return {
        "name": e.name, "adapter_id": "0x" + e.adapter_id.hex(), "content_hash": "0x" + e.content_hash.hex(),
        "owner": e.owner, "dataset_ids": ["0x" + d.hex() for d in e.dataset_ids], "weights_bps": list(e.weights_bps),
        "active": e.refused is None, "refused": e.refused,
        "tier": info.tier if info else None, "rank": info.rank if info else None,
        "load_ms": info.load_ms if info else None, "hits": info.hits if info else 0,
        "tokens": info.tokens if info else 0, "pinned": info.pinned if info else False,
    }


def _checked_path(s: Any, raw: str) -> pathlib.Path:
    if "\x00" in raw:
        raise APIError(400, "path contains a NUL byte", param="path", code="invalid_path")
    p = pathlib.Path(raw)
    if not p.is_absolute():
        raise APIError(400, f"path {raw!r} must be absolute", param="path", code="invalid_path")
    real = pathlib.Path(os.path.realpath(p))
    roots = ", ".join(str(r) for r in s.allowed_roots) or "(none configured)"
    if not _inside(real, s.allowed_roots):
        raise APIError(400, f"path {raw!r} resolves outside the allowed adapter roots ({roots}): copy the adapter "
                       "there or add its root to adapters.allowed_roots", param="path", code="path_not_allowed")
    if not real.is_dir():
        raise APIError(400, f"path {raw!r} is not a directory: give the adapter directory (adapter_config.json + "
                       "adapter_model.safetensors)", param="path", code="invalid_path")
    # the files the node reads, not only their directory: a weights file symlinked to /etc/passwd would be hashed
    for name in (CONFIG_NAME, WEIGHTS_NAME, PICKLE_WEIGHTS_NAME):
        f = real / name
        if (f.exists() or f.is_symlink()) and not _inside(pathlib.Path(os.path.realpath(f)), s.allowed_roots):
            raise APIError(400, f"{name} in {raw!r} links outside the allowed adapter roots ({roots}): copy the file "
                           "itself into the adapter directory", param="path", code="path_not_allowed")
    return real


def _inside(real: pathlib.Path, roots: list[pathlib.Path]) -> bool:
    return any(real == root or root in real.parents for root in roots)


@router.post("/v1/adapters", status_code=201, summary="Serve an adapter from a local directory")
async def add_adapter(request: Request) -> dict[str, Any]:
    """Validate, check against the registry, load and serve; 400 with the reason otherwise."""
    s = request.app.state.services
    body = await read_json(request, AdapterAdd, s.settings.node.max_body_bytes)
    path = _checked_path(s, body.path)
    aid = bytes.fromhex(body.adapter_id[2:]) if body.adapter_id else None
    try:
        entry = await asyncio.to_thread(s.add_adapter, path, body.name, aid)
    except Exception as e:
        from node.api.errors import map_exception

        err = map_exception(e)
        if err.status == 403 or (err.status == 404 and err.param == "model"):
            err = APIError(400, err.message, param="path", code=err.code)
        raise err from e
    return _view(s, entry)


def _find(s: Any, adapter: str) -> CatalogueEntry:
    e = s.catalogue.find(adapter)
    if e is None:
        raise APIError(404, f"no served adapter {adapter!r}: see GET /v1/models", param="adapter",
                       code="adapter_not_found")
    return e  # type: ignore[no-any-return]


@router.get("/v1/adapters/{adapter}", summary="One adapter's state")
async def get_adapter(request: Request, adapter: str) -> dict[str, Any]:
    """Registry provenance, cache tier, load ms, hits and tokens of a served adapter (by name or id)."""
    s = request.app.state.services
    return _view(s, _find(s, adapter))


@router.delete("/v1/adapters/{adapter}", summary="Stop serving an adapter")
async def delete_adapter(request: Request, adapter: str) -> dict[str, Any]:
    """Hide it from new requests at once; in-flight requests finish (and are attributed)."""
    s = request.app.state.services
    e = _find(s, adapter)
    s.remove_adapter(e.name)
    return {"name": e.name, "adapter_id": "0x" + e.adapter_id.hex(), "deleted": True}
