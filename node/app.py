"""The node's FastAPI app: `create_app(settings)` wires one router per resource to the node's services.

Services (model, engine, store, chain) are built in the lifespan, not at import, and taken down in order on
shutdown: stop admitting, let in-flight requests finish within `node.shutdown_deadline_s`, record what was cut,
stop the engine, flush and close the store.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from node.api import adapters, attribution, inference, models, ops
from node.api.errors import install_error_handlers
from node.services import Services, build_services
from node.settings import Settings

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(settings: Settings, *, services: Services | Callable[[Settings], Services] | None = None) -> FastAPI:
    """The ASGI app. `services` may be prebuilt (tests, benchmarks) or a factory; default `build_services`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if isinstance(services, Services):
            s = services
        else:
            s = (services or build_services)(settings)
        s.started_at = time.time()
        app.state.services = s
        # what start-up built (model, modules, imports) lives as long as the process: frozen out of the collector's
        # view, so a full collection walks only what requests allocate. Unfrozen, each one held the GIL long enough
        # to stall every request at once (docs/node.md; vLLM freezes its heap after start-up the same way).
        gc.collect()
        gc.freeze()
        logger.info("node serving %s with %d adapters", s.model_name, len(s.catalogue.entries()))
        try:
            yield
        finally:
            await s.drain(settings.node.shutdown_deadline_s)
            s.close()

    app = FastAPI(title="loraledger node", version="1",
                  description="OpenAI-compatible LoRA serving; every answer carries its attribution record.",
                  lifespan=lifespan)
    install_error_handlers(app)
    for module in (inference, models, adapters, attribution, ops):
        app.include_router(module.router)
    return app
