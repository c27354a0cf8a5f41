"""The explorer's pages: one HTML shell for every stable URL (`/explorer/record/{node}/{seq}`, `/batch/{id}`,
`/node/{address}`, `/adapter/{id}`, `/dataset/{id}`, `/account/{address}`, `/verify`, `/claim`), the bundle built
from `web/` by `make setup`, the search redirect, and a strict Content-Security-Policy: scripts and styles from
this origin only, no inline code, no eval, no frames; connections to this origin and to the RPC and DA origins the
page verifies against (the suggested ones, or those in its `rpc`/`da` query parameters)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from attribution.indexer.explorer.chainview import ChainView
from attribution.indexer.explorer.config import ExplorerConfig, origin_of
from attribution.indexer.explorer.routes import router
from attribution.indexer.explorer.search import resolve

__all__ = ["DIST", "mount_explorer", "content_security_policy"]

DIST = Path(__file__).parent / "web" / "dist"
PREFIX = "/explorer"


def content_security_policy(config: ExplorerConfig, rpc: str | None = None, da: str | None = None) -> str:
    """The page's CSP; `rpc`/`da` are URLs the user chose on the verify page (ignored unless http(s))."""
    origins = dict.fromkeys(o for o in (origin_of(config.rpc_url), origin_of(config.da_url),
                                        origin_of(rpc or ""), origin_of(da or "")) if o)
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {' '.join(origins)}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def mount_explorer(app: FastAPI, config: ExplorerConfig, view: ChainView, dist: Path = DIST) -> None:
    """Add the explorer's pages and JSON routes to the indexer app."""
    app.state.explorer = config
    app.state.chain_view = view
    app.include_router(router)
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    def shell(request: Request, status: int = 200) -> Response:
        index = dist / "index.html"
        if not index.is_file():
            return JSONResponse({"error": {"code": "not_built", "message": f"the explorer is not built ({dist} is "
                                           "missing): run `make setup`"}}, status_code=503)
        return FileResponse(index, status_code=status, media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path == "/" or request.url.path.startswith(PREFIX):
            q = request.query_params
            response.headers["Content-Security-Policy"] = content_security_policy(config, q.get("rpc"), q.get("da"))
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.get(f"{PREFIX}/search", include_in_schema=False)
    def search(request: Request, q: str = "") -> Response:
        engine = request.app.state.engine
        with engine.connect() as conn:
            path = resolve(conn, q) if q else None
        return RedirectResponse(path, status_code=303) if path else shell(request, 404)

    if dist.is_dir():
        app.mount(f"{PREFIX}/static", StaticFiles(directory=dist), name="explorer-static")

    @app.get(PREFIX, include_in_schema=False)
    @app.get(PREFIX + "/{page:path}", include_in_schema=False)
    def page(request: Request, page: str = "") -> Response:
        return shell(request)
