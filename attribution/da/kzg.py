"""KZG commitments of encoded payload chunks with ckzg and the EIP-4844 trusted setup shipped in eth-account.

ckzg holds the GIL while it commits (two threads are no faster than one), so the server runs commitments in a
worker *process* pool (`KZGPool`); every worker loads the trusted setup once in its initializer. The in-process
helpers (`commit_blob`, `commit_payload`, `verify_payload`) are for clients and tests.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import ckzg

from attribution.da.codec import chunk_count, chunk_span, encode_chunk, encode_payload

logger = logging.getLogger(__name__)


def trusted_setup_path() -> Path:
    """The EIP-4844 trusted setup file inside the installed eth-account (nothing is downloaded)."""
    spec = importlib.util.find_spec("eth_account")  # locate without importing it (workers stay light)
    if spec is None or spec.origin is None:
        raise FileNotFoundError("eth-account is not installed; it ships the KZG trusted setup")
    path = Path(spec.origin).parent / "typed_transactions" / "blob_transactions" / "kzg_trusted_setup.txt"
    if not path.is_file():
        raise FileNotFoundError(f"KZG trusted setup not found at {path}; reinstall eth-account>=0.14")
    return path


@functools.cache
def trusted_setup() -> Any:
    """The loaded trusted setup, once per process (loading takes about two seconds)."""
    return ckzg.load_trusted_setup(str(trusted_setup_path()), 0)


def commit_blob(blob: bytes) -> bytes:
    """The 48-byte KZG commitment of one 131072-byte blob."""
    return bytes(ckzg.blob_to_kzg_commitment(blob, trusted_setup()))


def commit_payload(payload: bytes) -> list[bytes]:
    """KZG commitments of every encoded chunk of `payload`, in this process."""
    return [commit_blob(blob) for blob in encode_payload(payload)]


def payload_commitments(payload: bytes) -> list[bytes]:
    """The KZG commitment of each blob of `payload` (what the certificate's `kzgCommitmentsHash` covers)."""
    return [commit_blob(blob) for blob in encode_payload(payload)]


def verify_payload(payload: bytes, commitments: list[bytes] | tuple[bytes, ...]) -> bool:
    """Recompute the chunk commitments of `payload` and compare them with `commitments`."""
    blobs = encode_payload(payload)
    if len(blobs) != len(commitments):
        return False
    return all(commit_blob(blob) == bytes(c) for blob, c in zip(blobs, commitments, strict=True))


def blob_proof_verifies(blob: bytes, commitment: bytes) -> bool:
    """Prove `blob` against `commitment` with a blob KZG proof and verify it (the EIP-4844 check)."""
    setup = trusted_setup()
    proof = ckzg.compute_blob_kzg_proof(blob, commitment, setup)
    return bool(ckzg.verify_blob_kzg_proof(blob, commitment, proof, setup))


# ---------------------------------------------------------------------------------------------------------------
# worker process pool
# ---------------------------------------------------------------------------------------------------------------


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed server its parent has not reaped yet is a zombie: gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _exit_with_server(server_pid: int) -> None:
    # A SIGKILLed server cannot shut its pool down, and the forkserver stays up while any worker lives (workers
    # hold its liveness pipe), so each worker watches the server itself and exits when it is gone.
    while True:
        time.sleep(0.25)
        if _process_gone(server_pid):
            os._exit(0)


def _worker_init(server_pid: int) -> None:
    threading.Thread(target=_exit_with_server, args=(server_pid,), daemon=True, name="server-watch").start()
    trusted_setup()  # already loaded by the forkserver preload, so workers share it copy-on-write


def _worker_ready() -> int:
    return os.getpid()


def _worker_commit_chunk(part: bytes, index: int, length: int) -> bytes:
    return commit_blob(encode_chunk(part, index, length))


class KZGPool:
    """Commit payload chunks in worker processes so the server's event loop (and GIL) stays free for reads."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
        # forkserver, not fork: forking a process that already runs uvicorn's threads is unsafe. The forkserver
        # loads the trusted setup once (preload) and workers fork from it, instead of each loading it (docs/da.md).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["attribution.da._kzg_preload"])
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_worker_init, initargs=(os.getpid(),)
        )
        self._ready: asyncio.Future[None] | None = None

    def _launch(self) -> None:
        # starting the forkserver blocks until its preload has loaded the trusted setup: keep that off the loop
        futures = [self._executor.submit(_worker_ready) for _ in range(self.workers)]
        for future in futures:
            future.result()
        logger.info("KZG pool ready with %d worker processes", self.workers)

    @property
    def ready(self) -> bool:
        """True once every worker is up with the trusted setup loaded."""
        return self._ready is not None and self._ready.done() and self._ready.exception() is None

    async def warm_up(self) -> None:
        """Start the forkserver and every worker; commits wait for this, so the event loop never blocks on it."""
        if self._ready is None:
            self._ready = asyncio.ensure_future(asyncio.to_thread(self._launch))
        await asyncio.shield(self._ready)

    def _submit_all(self, payload: bytes) -> list[Future[bytes]]:
        # slicing 16 MiB into chunks copies it; done in a thread so the event loop keeps serving reads
        length = len(payload)
        view = memoryview(payload)
        futures = []
        for i in range(chunk_count(length)):
            start, end = chunk_span(length, i)
            futures.append(self._executor.submit(_worker_commit_chunk, bytes(view[start:end]), i, length))
        return futures

    async def commit(self, payload: bytes) -> list[bytes]:
        """KZG commitments of every chunk of `payload`, computed in parallel by the workers."""
        await self.warm_up()
        futures = await asyncio.to_thread(self._submit_all, payload)
        try:
            return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))
        finally:
            for future in futures:
                future.cancel()  # a failed chunk or a cancelled put must not leave work queued

    @property
    def broken(self) -> bool:
        """True once a worker died abruptly: the pool refuses work and must be replaced."""
        return bool(getattr(self._executor, "_broken", False))

    def shutdown(self) -> None:
        """Stop the worker processes (pending work is cancelled)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
