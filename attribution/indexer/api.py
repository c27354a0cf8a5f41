"""The indexer's query API (FastAPI; OpenAPI docs at `/docs`). One router per resource; errors are JSON
`{"error": {"code", "message"}}` with 400 for a bad parameter (integers above 2^63 - 1 included) and 404 for what
is not indexed.

    GET /v1/status                                   cursor, record count, verdict totals, disputes per status
    GET /v1/records/{node}/{seq}                     one record with its proof
    GET /v1/records?node=&adapter=&dataset=&from_ts=&to_ts=&limit=&offset=     records with proofs
    GET /v1/batches?node=&verdict=&limit=&offset=    batches with verdicts ("pending" = not verified yet)
    GET /v1/batches/{batch_id}                       with `unavailable` and its disputes
    GET /v1/disputes?node=&batch=&kind=&status=&limit=&offset=   disputes, newest first
    GET /v1/disputes/{dispute_id}
    GET /v1/nodes/{node}/disputes                    a node's disputes and the stake slashed in total
    GET /v1/usage/{by}?epoch_blocks=                by = adapter | dataset | contributor | node | epoch
    GET /v1/registry?at=UNIX_SECONDS                 registry state in effect at a time
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Connection, Engine

from attribution.hashing import to_checksum_address
from attribution.indexer.disputes import DisputeReader
from attribution.indexer.follower import Indexer
from attribution.indexer.queries import NotFound, QueryError, Reader, parse_bytes

__all__ = ["create_app"]


def _conn(request: Request) -> Iterator[Connection]:
    engine: Engine = request.app.state.engine
    with engine.connect() as conn:
        yield conn


def _reader(request: Request) -> Reader:
    reader: Reader = request.app.state.reader
    return reader


def _disputes(request: Request) -> DisputeReader:
    disputes: DisputeReader = request.app.state.disputes
    return disputes


Conn = Annotated[Connection, Depends(_conn)]
Read = Annotated[Reader, Depends(_reader)]
Disputes = Annotated[DisputeReader, Depends(_disputes)]
# every integer a client passes goes to SQL: SQLite and PostgreSQL BIGINT stop at 2^63 - 1 (above: a 500 before)
MAX_INT = 2**63 - 1
SeqPath = Annotated[int, Path(ge=0, le=MAX_INT)]
IdPath = Annotated[int, Path(ge=0, le=MAX_INT)]
TimeQuery = Annotated[int | None, Query(ge=0, le=MAX_INT)]

status_router = APIRouter(prefix="/v1", tags=["status"])
records_router = APIRouter(prefix="/v1/records", tags=["records"])
batches_router = APIRouter(prefix="/v1/batches", tags=["batches"])
usage_router = APIRouter(prefix="/v1/usage", tags=["usage"])
registry_router = APIRouter(prefix="/v1/registry", tags=["registry"])
disputes_router = APIRouter(prefix="/v1", tags=["disputes"])


@status_router.get("/status")
def status(conn: Conn, reader: Read, disputes: Disputes) -> dict[str, Any]:
    """Where the indexer stands: cursor block, records indexed, batches per verdict, disputes per status."""
    return {**reader.status(conn), "disputes": disputes.counts(conn)}


@records_router.get("/{node}/{seq}")
def get_record(node: str, seq: SeqPath, conn: Conn, reader: Read) -> dict[str, Any]:
    """Record `seq` of `node`, its batch, verdict and Merkle proof (null unless the batch verified ok)."""
    return reader.record(conn, node, seq)


@records_router.get("")
def list_records(conn: Conn, reader: Read, node: str | None = None, adapter: str | None = None,
                 dataset: str | None = None, from_ts: TimeQuery = None, to_ts: TimeQuery = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> dict[str, Any]:
    """Records by node, adapter id, dataset id and/or time range [from_ts, to_ts), each with its proof."""
    items = reader.records(conn, node=node, adapter=adapter, dataset=dataset, from_ts=from_ts, to_ts=to_ts,
                           limit=limit, offset=offset)
    return {"records": items, "limit": limit, "offset": offset}


@batches_router.get("")
def list_batches(conn: Conn, reader: Read, disputes: Disputes, node: str | None = None, verdict: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> dict[str, Any]:
    """Batches with their verdicts and whether BatchDisputes marked them unavailable."""
    found = reader.batches(conn, node=node, verdict=verdict, limit=limit, offset=offset)
    gone = disputes.unavailable(conn, [b["batchId"] for b in found])
    return {"batches": [{**b, "unavailable": b["batchId"] in gone} for b in found]}


@batches_router.get("/{batch_id}")
def get_batch(batch_id: IdPath, conn: Conn, reader: Read, disputes: Disputes) -> dict[str, Any]:
    """One batch with its verdict, whether it was marked unavailable and its disputes."""
    return {**reader.batch(conn, batch_id), **disputes.batch_summary(conn, batch_id)}


@disputes_router.get("/disputes")
def list_disputes(conn: Conn, disputes: Disputes, node: str | None = None,
                  batch: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None, kind: str | None = None,
                  status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> dict[str, Any]:
    """Disputes newest first, by node, batch, kind (omission|equivocation|commission|availability) and/or status
    (open|answered|upheld)."""
    raw = None if node is None else parse_bytes(node, 20, "node")
    items = disputes.disputes(conn, node=raw, batch_id=batch, kind=kind, status=status, limit=limit, offset=offset)
    return {"disputes": items, "limit": limit, "offset": offset}


@disputes_router.get("/disputes/{dispute_id}")
def get_dispute(dispute_id: IdPath, conn: Conn, disputes: Disputes) -> dict[str, Any]:
    """One dispute folded from its events."""
    found = disputes.dispute(conn, dispute_id)
    if found is None:
        raise NotFound(f"dispute {dispute_id} is not indexed (never opened, not yet confirmed, or this deployment "
                       "has no BatchDisputes)")
    return found


@disputes_router.get("/nodes/{node}/disputes")
def node_disputes(node: str, conn: Conn, disputes: Disputes) -> dict[str, Any]:
    """A node's disputes (newest first), per status, its unavailable batches and the stake slashed in total."""
    raw = parse_bytes(node, 20, "node")
    return {"node": to_checksum_address(raw), **disputes.node_summary(conn, raw)}


@usage_router.get("/{by}")
def usage(by: str, conn: Conn, reader: Read,
          epoch_blocks: Annotated[int, Query(ge=1, le=MAX_INT)] = 1000) -> dict[str, Any]:
    """Usage aggregates by adapter, dataset, contributor, node or epoch; batches not verified `ok` are excluded."""
    return {"by": by, "usage": reader.usage(conn, by, epoch_blocks=epoch_blocks)}


@registry_router.get("")
def registry(conn: Conn, reader: Read, at: TimeQuery = None) -> dict[str, Any]:
    """Datasets, base models and adapters in effect at unix time `at` (default: latest indexed)."""
    return reader.registry_state(conn, at)


def create_app(engine: Engine, indexer: Indexer | None = None, *, poll_s: float = 1.0,
               extend: Callable[[FastAPI], None] | None = None) -> FastAPI:
    """The query API on `engine`; with `indexer`, its follow loop runs in a thread for the app's lifetime;
    `extend` adds more routes (the explorer: `attribution.indexer.explorer.mount_explorer`)."""
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = None
        if indexer is not None:
            thread = threading.Thread(target=indexer.run, args=(stop, poll_s), name="indexer-follow", daemon=True)
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=30)

    app = FastAPI(title="loraledger indexer", version="1", lifespan=lifespan,
                  description="Attribution records, batches with verdicts, usage and registry state, verified "
                              "from the chain and DA.")
    app.state.engine = engine
    app.state.reader = Reader()
    app.state.disputes = DisputeReader()

    def handler(code: int, name: str) -> Callable[[Request, Exception], Any]:
        async def handle(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"error": {"code": name, "message": str(exc)}}, status_code=code)
        return handle

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("path", "query")) or "request"
        return JSONResponse({"error": {"code": "bad_request", "message": f"invalid {where}: "
                                       f"{first.get('msg', 'invalid value')}"}}, status_code=400)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(NotFound, handler(404, "not_found"))
    app.add_exception_handler(QueryError, handler(400, "bad_request"))
    for router in (status_router, records_router, batches_router, usage_router, registry_router, disputes_router):
        app.include_router(router)
    if extend is not None:
        extend(app)
    return app
