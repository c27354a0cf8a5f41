"""KZG commitments of encoded payload chunks with ckzg and the EIP-4844 trusted setup shipped in eth-account.

ckzg holds the GIL while it commits (two threads are no faster than one), so the server runs commitments in a
worker *process* pool (`KZGPool`); every worker loads the trusted setup once in its initializer. The in-process
helpers (`commit_blob`, `commit_payload`, `verify_payload`) are for clients and tests.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import ckzg

from attribution.da.codec import chunk_count, chunk_span, encode_chunk, encode_payload

logger = logging.getLogger(__name__)


def trusted_setup_path() -> Path:
    """The EIP-4844 trusted setup file inside the installed eth-account (nothing is downloaded)."""
    import eth_account

    path = Path(eth_account.__file__).parent / "typed_transactions" / "blob_transactions" / "kzg_trusted_setup.txt"
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


def _exit_with_parent(parent_pid: int) -> None:
    # a SIGKILLed server cannot shut its pool down; workers must not outlive it
    while True:
        time.sleep(0.25)
        if os.getppid() != parent_pid:
            os._exit(0)


def _worker_init(parent_pid: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    trusted_setup()


def _worker_ready() -> int:
    return os.getpid()


def _worker_commit_chunk(part: bytes, index: int, length: int) -> bytes:
    return commit_blob(encode_chunk(part, index, length))


class KZGPool:
    """Commit payload chunks in worker processes so the server's event loop (and GIL) stays free for reads."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
        # spawn: forking a process that already runs uvicorn's threads is unsafe
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )

    async def warm_up(self) -> None:
        """Start every worker and load its trusted setup, so the first put does not pay for it."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _worker_ready) for _ in range(self.workers)))
        logger.info("KZG pool ready with %d worker processes", self.workers)

    async def commit(self, payload: bytes) -> list[bytes]:
        """KZG commitments of every chunk of `payload`, computed in parallel by the workers."""
        loop = asyncio.get_running_loop()
        length = len(payload)
        view = memoryview(payload)
        futures = []
        for i in range(chunk_count(length)):
            start, end = chunk_span(length, i)
            part = bytes(view[start:end])
            futures.append(loop.run_in_executor(self._executor, _worker_commit_chunk, part, i, length))
        return list(await asyncio.gather(*futures))

    def shutdown(self) -> None:
        """Stop the worker processes (pending work is cancelled)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
