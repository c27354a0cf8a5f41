"""The DA server: the OP Alt-DA HTTP API with EigenDA-style certificates, on Starlette + uvicorn.

- `POST /put` (body = payload) → 200 raw commitment bytes; 400 empty body; 408 body not complete within the body
  timeout; 413 above 16 MiB; 503 when busy or the disk fails. A put slot is taken only once the whole body has
  arrived, so slow uploads cannot starve real puts.
- `GET /get/0x<hex>` → 200 raw payload, streamed from disk after its keccak was re-checked against the
  certificate; 404 unknown; 400 malformed commitment; 503 past `max_inflight_gets` concurrent GETs.
- `GET /health` → JSON with the operator address.
- `GET|POST /admin/faults` → fault switches (latency, 503 on put, 404 on get), only with `--enable-faults`.

Hashing, fsync and file reads run in threads (they release the GIL); KZG runs in a worker process pool (ckzg holds
the GIL), so GETs stay fast while a 16 MiB put is being committed. Run: `loraledger da serve --data-dir DIR` or
`python -m attribution.da.server --data-dir DIR`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from eth_account.signers.local import LocalAccount
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from attribution.da.admission import BodyTooLarge, authorized, client_of, give, spool_body, take
from attribution.da.chunks import chunks_root
from attribution.da.codec import MAX_PAYLOAD_BYTES, Certificate, parse_commitment, parse_commitment_hex
from attribution.da.errors import (
    DACommitmentInvalid,
    DAError,
    DAOperatorKeyError,
    DAPayloadMismatch,
    DAQuotaExceeded,
    DAStorageError,
)
from attribution.da.kzg import KZGPool
from attribution.da.operator import load_operator, recover_signer, sign_certificate
from attribution.da.storage import BlobStore, open_blob
from attribution.hashing import keccak256
from attribution.http_server import HttpLimits, serve_config
from attribution.safejson import loads

logger = logging.getLogger(__name__)

DEFAULT_PORT = 3100
OCTET_STREAM = "application/octet-stream"
# a too-large body is read and discarded up to this size so the client sees the 413 instead of a reset
_DRAIN_LIMIT = 4 * MAX_PAYLOAD_BYTES


@dataclass
class DAServerConfig:
    """How to run the DA server."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    operator_keystore: Path | None = None
    enable_faults: bool = False
    kzg: bool = True
    kzg_workers: int | None = None
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    max_inflight_puts: int = 4
    max_inflight_gets: int = 64
    body_timeout_s: float = 60.0
    header_timeout_s: float = 10.0
    send_timeout_s: float = 30.0  # a GET whose client reads nothing for this long is cut off (slot released)
    max_gets_per_client: int = 8  # one address cannot take every GET slot
    max_uploads_per_client: int = 8  # put bodies being received at once from one address
    max_uploads: int = 64  # put bodies being received at once in all (each spooled to disk, not memory)
    max_connections_per_client: int = 64
    quota_bytes: int | None = None  # disk quota of the blob store; None: the disk's free space
    api_key_hash: str | None = None  # sha256 hex of the key puts must carry (`Authorization: Bearer KEY`)
    dev: bool = False  # a generated dev operator key is allowed (local devnets only)

    def http_limits(self) -> HttpLimits:
        """The connection-level limits of this server (timeouts, per-address connection cap)."""
        return HttpLimits(header_timeout_s=self.header_timeout_s, body_timeout_s=self.body_timeout_s + 5,
                          send_timeout_s=self.send_timeout_s,
                          max_connections_per_client=self.max_connections_per_client)


@dataclass
class Faults:
    """Fault switches for tests: `put_503` failures left (-1 = every put), `get_404`, added latency."""

    put_503: int = 0
    get_404: bool = False
    latency_ms: int = 0

    def as_json(self) -> dict[str, Any]:
        """The switches as the admin route shows them."""
        return {"put_503": self.put_503, "get_404": self.get_404, "latency_ms": self.latency_ms}


@dataclass
class _State:
    config: DAServerConfig
    operator: LocalAccount
    store: BlobStore
    pool: KZGPool | None = None
    faults: Faults = field(default_factory=Faults)
    inflight_puts: int = 0
    inflight_gets: int = 0
    receiving: int = 0
    gets_by_client: dict[str, int] = field(default_factory=dict)
    uploads_by_client: dict[str, int] = field(default_factory=dict)
    key_locks: dict[bytes, tuple[asyncio.Lock, int]] = field(default_factory=dict)
    warm_task: asyncio.Task[None] | None = None


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _too_large(limit: int) -> JSONResponse:
    return _error(
        413,
        "payload_too_large",
        f"payload exceeds the DA limit of {limit} bytes (16 MiB); split the batch into smaller payloads",
    )


def _unauthorized() -> JSONResponse:
    return _error(401, "unauthorized", "this DA server takes puts only with its API key: send `Authorization: "
                  "Bearer KEY` (the batcher's batcher.da_api_key, env LORALEDGER_BATCHER__DA_API_KEY)",
                  {"WWW-Authenticate": "Bearer"})


async def _discard_body(request: Request) -> None:
    """Read and drop the body (bounded), so the client gets our answer instead of a reset mid-upload."""
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > _DRAIN_LIMIT:
                return
    except RuntimeError:  # Starlette's "Stream consumed": the chunk past the limit was the body's last
        return


async def _fault_latency(state: _State) -> None:
    if state.faults.latency_ms > 0:
        await asyncio.sleep(state.faults.latency_ms / 1000)


async def put(request: Request) -> Response:
    """Store a payload; answer with the raw commitment bytes."""
    state: _State = request.app.state.da
    faults = state.faults
    if faults.put_503:
        if faults.put_503 > 0:
            faults.put_503 -= 1
        with contextlib.suppress(ClientDisconnect):
            await _discard_body(request)
        return _error(503, "fault_injected", "put refused by an injected fault; retry later", {"Retry-After": "0"})
    if not authorized(request, state.config.api_key_hash):
        return _unauthorized()
    # the body is spooled to disk before a put slot is taken, under a deadline: uploads that stall hold no slot
    # and no memory, are cut off after body_timeout_s, and are capped per address and in all
    client = client_of(request)
    cfg = state.config
    if state.receiving >= cfg.max_uploads or not take(state.uploads_by_client, client, cfg.max_uploads_per_client):
        return _error(503, "busy", f"too many uploads in progress (limit {cfg.max_uploads_per_client} per address, "
                      f"{cfg.max_uploads} in all); retry later", {"Retry-After": "1", "Connection": "close"})
    state.receiving += 1
    spooled: Path | None = None
    try:
        try:
            async with asyncio.timeout(cfg.body_timeout_s):
                spooled, size = await spool_body(request, cfg.max_payload_bytes, state.store.tmp_dir)
        except TimeoutError:
            return _error(408, "body_timeout", f"the request body did not arrive within {cfg.body_timeout_s:g} s; "
                          "send the whole payload promptly (check the Content-Length)", {"Connection": "close"})
        except BodyTooLarge:
            return _too_large(cfg.max_payload_bytes) if await _drained(request) else _too_large_close(cfg)
        except ClientDisconnect:
            logger.info("a put's client went away before its body was complete")
            return _error(400, "body_incomplete", "the request body ended early; send the whole payload")
        finally:
            state.receiving -= 1
            give(state.uploads_by_client, client)
        if size == 0:
            return _error(400, "empty_payload", "the body is empty; POST the payload bytes to /put")
        try:
            state.store.check_quota(size)
        except DAQuotaExceeded as e:
            logger.error("put refused: %s", e)
            return _error(507, "quota_exceeded", str(e), {"Retry-After": "60"})
        return await _put_spooled(state, spooled)
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)


async def _drained(request: Request) -> bool:
    """Read the rest of a too-large body (bounded), so the client sees the 413 instead of a reset."""
    try:
        await _discard_body(request)
    except ClientDisconnect:
        return False
    return True


def _too_large_close(cfg: DAServerConfig) -> JSONResponse:
    response = _too_large(cfg.max_payload_bytes)
    response.headers["Connection"] = "close"
    return response


async def _put_spooled(state: _State, spooled: Path) -> Response:
    if state.inflight_puts >= state.config.max_inflight_puts:
        return _error(
            503,
            "busy",
            f"{state.inflight_puts} puts are in flight (limit {state.config.max_inflight_puts}); retry later",
            {"Retry-After": "1"},
        )
    state.inflight_puts += 1
    try:
        await _fault_latency(state)  # inside the in-flight window: a slow DA also fills the put slots
        payload = await asyncio.to_thread(spooled.read_bytes)  # in memory only inside a put slot
        commitment = await _store(state, payload)
    except DAQuotaExceeded as e:
        logger.error("put refused: %s", e)
        return _error(507, "quota_exceeded", str(e), {"Retry-After": "60"})
    except DAStorageError as e:
        logger.error("put failed: %s", e)
        return _error(503, "storage_failed", f"{e}", {"Retry-After": "5"})
    except BrokenProcessPool:
        # a KZG worker died (e.g. the OOM killer): replace the pool; the client retries this put
        logger.error("KZG worker pool broke; starting a new one")
        _replace_pool(state)
        return _error(
            503, "kzg_workers_restarting", "KZG workers died and are being restarted; retry", {"Retry-After": "1"}
        )
    finally:
        state.inflight_puts -= 1
    return Response(commitment, media_type=OCTET_STREAM)


def _replace_pool(state: _State) -> None:
    broken = state.pool
    if broken is None or not broken.broken:
        return  # another put already replaced it
    state.pool = KZGPool(state.config.kzg_workers)
    state.warm_task = asyncio.create_task(state.pool.warm_up())
    threading.Thread(target=broken.shutdown, name="kzg-pool-shutdown", daemon=True).start()


async def _store(state: _State, payload: bytes) -> bytes:
    payload_keccak = await asyncio.to_thread(keccak256, payload)
    # puts of the same payload run one after the other; the second finds the first one's certificate
    lock, users = state.key_locks.get(payload_keccak, (asyncio.Lock(), 0))
    state.key_locks[payload_keccak] = (lock, users + 1)
    try:
        async with lock:
            existing = await asyncio.to_thread(state.store.find_certificate, payload_keccak)
            if existing is not None:
                stored = Certificate.decode(existing)
                if stored.resolvable:
                    # content-addressed: the same payload keeps its first certificate (idempotent put)
                    logger.info("put of already stored payload %s", payload_keccak.hex())
                    return stored.commitment()
                # stored under a v2 certificate, which cannot answer an availability challenge: certify it again
                # as v3 (the old commitment still reads, see `get`)
                logger.info("put of payload %s stored under certificate v%d: issuing a v3 certificate",
                            payload_keccak.hex(), stored.version)
            kzg = await state.pool.commit(payload) if state.pool is not None else []
            # signing is pure Python and slow (docs/da.md): in the thread with the fsyncs, not on the event loop
            certificate = await asyncio.to_thread(_certify_and_write, state, payload_keccak, payload, kzg)
            seq = certificate.da_sequence
            logger.info("stored payload %s: %d bytes, daSequence %d", payload_keccak.hex(), len(payload), seq)
            return certificate.commitment()
    finally:
        lock, users = state.key_locks[payload_keccak]
        if users == 1:
            del state.key_locks[payload_keccak]
        else:
            state.key_locks[payload_keccak] = (lock, users - 1)


def _certify_and_write(state: _State, payload_keccak: bytes, payload: bytes, kzg: list[bytes]) -> Certificate:
    certificate = sign_certificate(
        Certificate.of(
            payload_keccak=payload_keccak,
            payload_length=len(payload),
            kzg_commitments=tuple(kzg),
            da_sequence=state.store.allocate_sequence(),
            stored_at=int(time.time()),
            chunks_root=chunks_root(payload),
        ),
        state.operator,
    )
    state.store.write(payload_keccak, payload, certificate.encode())
    return certificate


async def get(request: Request) -> Response:
    """Serve the payload of a commitment this server issued."""
    state: _State = request.app.state.da
    await _fault_latency(state)
    try:
        commitment = parse_commitment_hex(request.path_params["commitment"])
        certificate = parse_commitment(commitment)
    except DACommitmentInvalid as e:
        return _error(400, "bad_commitment", str(e))
    if state.faults.get_404:
        return _error(404, "fault_injected", "get refused by an injected fault (404)")
    if state.inflight_gets >= state.config.max_inflight_gets:
        return _error(503, "busy", f"{state.inflight_gets} gets are in flight (limit "
                      f"{state.config.max_inflight_gets}); retry later", {"Retry-After": "1"})
    client = client_of(request)
    if not take(state.gets_by_client, client, state.config.max_gets_per_client):
        return _error(503, "busy", f"your address has {state.config.max_gets_per_client} gets in flight (the limit "
                      "per address); read those first, then retry", {"Retry-After": "1"})
    state.inflight_gets += 1
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            state.inflight_gets -= 1
            give(state.gets_by_client, client)

    try:
        opened = await asyncio.to_thread(open_blob, state.store.blob_dir, certificate.payload_keccak)
        if opened is None:
            release()
            return _not_found()
        f, stored_cert, length = opened
        if stored_cert != certificate.encode() and not await asyncio.to_thread(_earlier_certificate, state,
                                                                                certificate, stored_cert):
            f.close()
            release()
            return _not_found()
        digest = await asyncio.to_thread(_hash_rest, f)  # bounded memory: chunk by chunk
        if digest != certificate.payload_keccak or length != certificate.payload_length:
            f.close()
            release()
            logger.error("stored payload %s fails its certificate (keccak or length); refusing to serve it",
                         certificate.payload_keccak.hex())
            # not available here: a 404 (the client's DANotFound), never the damaged bytes
            return _error(404, "payload_corrupt", "the stored payload does not match its certificate (disk "
                          "corruption), so this server cannot serve it; the operator must restore it from a replica")
    except DAStorageError as e:
        release()
        logger.error("get failed: %s", e)
        return _error(503, "storage_failed", str(e), {"Retry-After": "5"})
    except BaseException:
        release()
        raise
    header_len = 4 + len(stored_cert)

    async def body() -> AsyncIterator[bytes]:
        try:
            await asyncio.to_thread(f.seek, header_len)
            while chunk := await asyncio.to_thread(f.read, _GET_CHUNK):
                yield chunk
        finally:
            f.close()
            release()

    return StreamingResponse(body(), media_type=OCTET_STREAM, headers={"Content-Length": str(length)})


_GET_CHUNK = 1 << 20


def _earlier_certificate(state: _State, certificate: Certificate, stored_cert: bytes) -> bool:
    """True for a v2 certificate this server's operator signed for a payload it has since certified again as v3:
    commitments posted before the upgrade keep reading."""
    if certificate.resolvable or not certificate.operator_signature:
        return False
    try:
        return recover_signer(certificate) == state.operator.address
    except DAPayloadMismatch:
        return False


def _not_found() -> JSONResponse:
    return _error(404, "not_found", "no payload stored for this commitment; check the commitment and DA server URL")


def _hash_rest(f: BinaryIO) -> bytes:
    import sha3

    h = sha3.keccak_256()
    while chunk := f.read(_GET_CHUNK):
        h.update(chunk)
    return bytes(h.digest())


async def health(request: Request) -> Response:
    """Liveness plus who signs certificates."""
    state: _State = request.app.state.da
    return JSONResponse(
        {
            "status": "ok",
            "operator": state.operator.address,
            "kzg": state.pool is not None,
            "kzg_ready": state.pool is not None and state.pool.ready,
            "faults_enabled": state.config.enable_faults,
            "max_payload_bytes": state.config.max_payload_bytes,
            "inflight_puts": state.inflight_puts,
            "inflight_gets": state.inflight_gets,
            "receiving": state.receiving,
            "stored_bytes": state.store.used_bytes,
            "quota_bytes": state.config.quota_bytes,
            "writes_need_key": state.config.api_key_hash is not None,
        }
    )


async def faults(request: Request) -> Response:
    """Read (GET) or replace (POST JSON `{"put_503": n|bool, "get_404": bool, "latency_ms": n}`) the faults."""
    state: _State = request.app.state.da
    if not state.config.enable_faults:
        return _error(404, "not_found", "fault switches are off; start the server with --enable-faults")
    if not authorized(request, state.config.api_key_hash):
        return _unauthorized()
    if request.method == "POST":
        try:
            raw = b""
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > 4096:
                    raise ValueError("body too large")
            body = loads(raw, what="the faults body")
            if not isinstance(body, dict) or set(body) - {"put_503", "get_404", "latency_ms"}:
                raise ValueError("unknown fields")
            put_503 = body.get("put_503", 0)
            put_503 = -1 if put_503 is True else int(put_503)
            latency_ms = int(body.get("latency_ms", 0))
            if latency_ms < 0 or put_503 < -1:
                raise ValueError("negative values")
            state.faults = Faults(put_503=put_503, get_404=bool(body.get("get_404", False)), latency_ms=latency_ms)
        except ValueError as e:
            return _error(
                400, "bad_faults",
                f"{e}: send JSON {{\"put_503\": int or bool, \"get_404\": bool, \"latency_ms\": int >= 0}}",
            )
        logger.warning("faults set: %s", state.faults.as_json())
    return JSONResponse(state.faults.as_json())


def create_app(config: DAServerConfig, operator: LocalAccount | None = None) -> Starlette:
    """Build the ASGI app (the KZG pool starts with the app's lifespan)."""
    if operator is None and config.operator_keystore is None and not config.dev:
        raise DAOperatorKeyError(
            "no operator keystore: outside a local devnet the DA server signs with a real key; pass "
            "--operator-keystore FILE (password in $LORALEDGER_DA__OPERATOR_PASSWORD), or --dev for a local devnet")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    operator = operator or load_operator(config.operator_keystore, config.data_dir)
    state = _State(config=config, operator=operator, store=BlobStore(config.data_dir, config.quota_bytes))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if config.kzg:
            state.pool = KZGPool(config.kzg_workers)
            state.warm_task = asyncio.create_task(state.pool.warm_up())
        logger.info(
            "DA server for operator %s on %s (kzg=%s, faults=%s)",
            operator.address, config.data_dir, config.kzg, config.enable_faults,
        )
        try:
            yield
        finally:
            if state.pool is not None:
                await asyncio.to_thread(state.pool.shutdown)

    app = Starlette(
        routes=[
            Route("/put", put, methods=["POST"]),
            Route("/put/", put, methods=["POST"]),
            Route("/get/{commitment}", get, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/admin/faults", faults, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
        # payloads are public by design: any page may read them (the explorer's verify page fetches them from the
        # browser); CORS only lets a page read GET answers, the put and admin routes allow no cross-origin method
        middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"])],
    )
    app.state.da = state
    return app


def serve(config: DAServerConfig) -> None:
    """Run the DA server until interrupted (SIGINT/SIGTERM)."""
    import uvicorn

    app = create_app(config)
    uvicorn.Server(serve_config(app, config.host, config.port, config.http_limits(), log_level="warning",
                                access_log=False)).run()


def build_parser() -> argparse.ArgumentParser:
    """The `python -m attribution.da.server` arguments (same as `loraledger da serve`)."""
    parser = argparse.ArgumentParser(description="Run the loraledger DA server (OP Alt-DA API).")
    parser.add_argument("--data-dir", type=Path, required=True, help="where blobs, certificates and the dev key live")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--operator-keystore", type=Path, default=None,
                        help="eth-account keyfile; password in $LORALEDGER_DA__OPERATOR_PASSWORD")
    parser.add_argument("--dev", action="store_true",
                        help="local devnet: without --operator-keystore, create/reuse a dev key in the data dir")
    parser.add_argument("--body-timeout", type=float, default=60.0,
                        help="seconds a put's whole body may take to arrive (default 60)")
    parser.add_argument("--max-inflight-gets", type=int, default=64, help="concurrent GETs before 503 (default 64)")
    parser.add_argument("--header-timeout", type=float, default=10.0,
                        help="seconds a request's headers may take to arrive (default 10)")
    parser.add_argument("--send-timeout", type=float, default=30.0,
                        help="seconds a reader may read nothing before its GET is cut off (default 30)")
    parser.add_argument("--max-gets-per-client", type=int, default=8,
                        help="concurrent GETs from one address before 503 (default 8)")
    parser.add_argument("--max-uploads-per-client", type=int, default=8,
                        help="put bodies received at once from one address before 503 (default 8)")
    parser.add_argument("--quota-bytes", type=int, default=None,
                        help="disk quota of the blob store; a put past it gets 507 (default: no quota)")
    parser.add_argument("--api-key-hash", default=None,
                        help="sha256 hex of the API key puts must send (or the key itself in $LORALEDGER_DA__API_KEY)")
    parser.add_argument("--max-payload-bytes", type=int, default=MAX_PAYLOAD_BYTES,
                        help="largest payload accepted, at most 16 MiB (default); above it 413")
    parser.add_argument("--enable-faults", action="store_true", help="enable /admin/faults (tests only)")
    parser.add_argument("--no-kzg", dest="kzg", action="store_false", help="skip KZG commitments (benchmarks only)")
    parser.add_argument("--kzg-workers", type=int, default=None, help="KZG worker processes (default min(2, CPUs))")
    return parser


API_KEY_ENV = "LORALEDGER_DA__API_KEY"


def api_key_hash(given_hash: str | None) -> str | None:
    """The write key's sha256 hex: `given_hash`, else the hash of $LORALEDGER_DA__API_KEY, else None (no key).

    The key itself is read from the environment only, never from argv (visible to every local user in `ps`)."""
    if given_hash:
        h = given_hash.lower().removeprefix("0x")
        if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise DAError(f"--api-key-hash must be 64 hex digits (sha256 of the key), got {len(h)} characters")
        return h
    key = os.environ.get(API_KEY_ENV, "").strip()
    return hashlib.sha256(key.encode()).hexdigest() if key else None


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m attribution.da.server`."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(
            DAServerConfig(
                data_dir=args.data_dir, host=args.host, port=args.port, operator_keystore=args.operator_keystore,
                enable_faults=args.enable_faults, kzg=args.kzg, kzg_workers=args.kzg_workers, dev=args.dev,
                body_timeout_s=args.body_timeout, max_inflight_gets=args.max_inflight_gets,
                max_payload_bytes=min(args.max_payload_bytes, MAX_PAYLOAD_BYTES),
                header_timeout_s=args.header_timeout, send_timeout_s=args.send_timeout,
                max_gets_per_client=args.max_gets_per_client, max_uploads_per_client=args.max_uploads_per_client,
                quota_bytes=args.quota_bytes, api_key_hash=api_key_hash(args.api_key_hash),
            )
        )
    except DAError as e:
        logger.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
