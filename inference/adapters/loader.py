"""The adapter cache's loader: moves an adapter disk -> host, in the background or on the caller's thread.

- Background loads are jobs on one loader thread (a min-heap by due time), started when the first job is queued.
- Loads belong to an entry, not to an adapter id: each job carries a token of the entry it was started for, and its
  result is dropped when that entry was removed (or re-added as a new entry) or another load superseded it. One load
  at a time per entry: a synchronous load (`pin`, `preload`, no prefetch) waits for a load in flight instead of
  starting a second one, and claims a queued job.
- A load that finds no host room parks its entry until room can be made (`kick_room_waiters`).
- Errors: an adapter's named content errors (`inference.adapters.errors`) stay until remove + add; transient ones
  (`OSError`, `MemoryError`) are retried with backoff, then fail the waiting requests with `AdapterLoadFailed`, and
  the next request tries again. The loader thread survives any exception and reports it on the adapter.

Every entry's state is guarded by the cache's lock: the loader shares the cache's condition and calls back into the
cache (entry still live? host room possible? insert on host) only with it held.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import pathlib
import threading
import time
from collections.abc import Callable

from inference.adapters.entry import AdapterLoadFailed, _Entry
from inference.adapters.errors import AdapterError, AdapterNotFound
from inference.adapters.weights import LoraWeights, verified

__all__ = ["DEFAULT_RETRY_DELAYS", "AdapterLoader"]

logger = logging.getLogger(__name__)

# seconds to wait before each retry of a load that failed with a transient error (then the requests fail)
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.05, 0.2, 1.0)
_TRANSIENT = (OSError, MemoryError)  # OSError covers TimeoutError, ConnectionError, a vanished network mount


class AdapterLoader:
    """Loads the adapters of one `AdapterCache` from disk to host: load jobs, retries and the loader thread."""

    def __init__(
        self,
        cond: threading.Condition,
        load: Callable[[pathlib.Path], LoraWeights],
        *,
        live: Callable[[_Entry], bool],
        host_room_possible: Callable[[_Entry, int], bool],
        insert_host: Callable[[_Entry, LoraWeights], bool],
        pin_host_memory: bool,
        prefetch: bool,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        self._cond = cond  # the cache's: signalled when a load finishes or a job is queued
        self._load = load
        self._live = live
        self._host_room_possible = host_room_possible
        self._insert_host = insert_host
        self.pin_host_memory = pin_host_memory
        self.prefetch = prefetch
        self.retry_delays = tuple(retry_delays)
        self.faults = 0  # exceptions the loader thread caught outside the loader itself (bugs, reported)
        self.ready: Callable[[], None] = lambda: None
        self.room_waiters: set[_Entry] = set()  # entries whose load waits for host room
        self._pending: list[tuple[float, int, _Entry, int]] = []  # (due, seq, entry, token): a min-heap of jobs
        self._seq = itertools.count()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def close(self) -> None:
        """Stop the loader thread (pending loads are dropped; a later request queues its load again)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join(10)
        with self._cond:
            for _, _, e, token in self._pending:
                if e.load == "queued" and e.load_token == token:
                    e.load = None
            self._pending.clear()
            self._stopping = False

    def load(self, path: pathlib.Path, expected_id: bytes | None, name: str) -> LoraWeights:
        """Load and verify an adapter on the calling thread, in the form the host tier keeps (pinned for CUDA)."""
        w = verified(self._load(path), expected_id, name)
        return w.pinned() if self.pin_host_memory else w

    def cancel(self, e: _Entry) -> None:
        """`e` was dropped from the cache (lock held): its queued job or running load is now stale."""
        self.room_waiters.discard(e)
        e.load, e.load_token = None, e.load_token + 1
        self._cond.notify_all()  # a pin/preload waiting on its load sees it gone
        self.kick_room_waiters()

    # ---------------------------------------------------------------- background loads

    def maybe_enqueue(self, e: _Entry) -> None:
        """Queue a background load of `e` unless one is queued or running, it failed, or no host room can be made."""
        if e.load is not None or e.load_error is not None or e.host is not None or e.slot is not None:
            return
        if e.room_for is not None and not self._host_room_possible(e, e.room_for):
            self.room_waiters.add(e)
            return
        self._enqueue(e)

    def kick_room_waiters(self) -> None:
        """Queue the loads that waited for host room, now that room may have been freed (lock held)."""
        if not self.room_waiters or not self.prefetch:
            return
        for e in list(self.room_waiters):
            if not self._live(e) or e.refs == 0:
                self.room_waiters.discard(e)
                e.room_for = None  # a later request loads it afresh
            elif e.room_for is None or self._host_room_possible(e, e.room_for):
                self._enqueue(e)

    def _enqueue(self, e: _Entry, delay: float = 0.0) -> None:
        self.room_waiters.discard(e)
        e.load = "queued"
        e.load_token += 1
        heapq.heappush(self._pending, (time.monotonic() + delay, next(self._seq), e, e.load_token))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._worker, name="adapter-loader", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    def _next_job(self) -> tuple[_Entry, int] | None:
        """The next due job (lock held); None when the cache closes."""
        while not self._stopping:
            now = time.monotonic()
            if self._pending and self._pending[0][0] <= now:
                _, _, e, token = heapq.heappop(self._pending)
                return e, token
            self._cond.wait(self._pending[0][0] - now if self._pending else None)
        return None

    def _worker(self) -> None:
        while True:
            with self._cond:
                job = self._next_job()
            if job is None:
                return
            e, token = job
            try:
                if not self._run_job(e, token):
                    continue
            except Exception as exc:  # a fault outside the loader (a bug): report it on the adapter, keep serving
                self.faults += 1
                logger.exception("adapter loader fault while loading 0x%s", e.adapter_id.hex())
                with self._cond:
                    if self._live(e) and e.load_token == token:
                        failed = AdapterLoadFailed(f"adapter {e.name} could not be loaded ({type(exc).__name__}: "
                                                   f"{exc}): an internal fault, logged; the next request for it "
                                                   "tries again", adapter=e.name)
                        failed.__cause__ = exc
                        e.load, e.load_error, e.error_sticky, e.attempts = None, failed, False, 0
                        self._cond.notify_all()
            try:
                self.ready()
            except Exception:
                logger.exception("adapter cache ready callback failed")

    def _run_job(self, e: _Entry, token: int) -> bool:
        """Run one queued load; False if it was stale or must wait for host room (nothing changed)."""
        with self._cond:
            # stale: the entry was removed or replaced, or a pin/preload claimed its load (a newer token)
            if not (self._live(e) and e.load == "queued" and e.load_token == token):
                return False
            if e.room_for is not None and not self._host_room_possible(e, e.room_for):
                e.load = None
                self.room_waiters.add(e)
                return False
            e.load = "running"
        t0 = time.perf_counter()
        w, err = self._call_loader(e)
        with self._cond:
            self._finish_load(e, token, w, err, t0, retry=True)
        return True

    # ---------------------------------------------------------------- one load

    def _call_loader(self, e: _Entry) -> tuple[LoraWeights | None, BaseException | None]:
        try:  # a reload re-checks the content hash: files swapped since add are never served under its id
            return self.load(e.path, e.adapter_id, e.name), None
        except Exception as exc:  # classified by _finish_load: the error belongs to this adapter's requests
            return None, exc

    def _finish_load(self, e: _Entry, token: int, w: LoraWeights | None, err: BaseException | None, t0: float,
                     *, retry: bool) -> AdapterError | None:
        """Apply a finished load (lock held). Returns the error the adapter's requests now fail with, if any."""
        if not (self._live(e) and e.load == "running" and e.load_token == token):
            logger.debug("stale load of 0x%s dropped (entry removed, replaced or superseded)", e.adapter_id.hex())
            return None
        e.load = None
        self._cond.notify_all()
        if err is None and w is not None:
            e.attempts = 0
            e.load_ms = (time.perf_counter() - t0) * 1e3
            e.rank = w.rank
            if e.host is None and e.slot is None:
                if self._insert_host(e, w):
                    self.room_waiters.discard(e)
                elif e.load_error is None:  # not refused for good: wait for room (and load again then)
                    e.room_for = w.nbytes
                    self.room_waiters.add(e)
            return e.load_error
        if isinstance(err, AdapterError):  # the content is bad (or too big): refused until remove + add
            e.attempts = 0
            e.load_error, e.error_sticky = err, True
            logger.warning("adapter 0x%s refused: %s", e.adapter_id.hex(), err)
            return err
        if retry and isinstance(err, _TRANSIENT) and e.attempts < len(self.retry_delays):
            delay = self.retry_delays[e.attempts]
            e.attempts += 1
            logger.warning("adapter 0x%s load failed (%s: %s), retry %d in %.2fs", e.adapter_id.hex(),
                           type(err).__name__, err, e.attempts, delay)
            self._enqueue(e, delay)
            return None
        tries = e.attempts + 1
        e.attempts = 0
        failed = AdapterLoadFailed(f"adapter {e.name} could not be loaded from {e.path} after {tries} attempt(s) "
                                   f"({type(err).__name__}: {err}): check the files and the disk; the next request "
                                   "for it tries again", adapter=e.name)
        failed.__cause__ = err
        e.load_error, e.error_sticky = failed, False
        logger.warning("adapter 0x%s failed to load: %s", e.adapter_id.hex(), failed)
        return failed

    def load_sync(self, e: _Entry) -> LoraWeights | None:
        """Load `e` on the calling thread (which must not hold the lock); returns the weights it loaded, or None
        when they were already resident (perhaps loaded by a load in flight, which this waits for)."""
        with self._cond:
            while True:
                if not self._live(e):
                    raise AdapterNotFound(f"adapter {e.name} was removed while loading: add it again",
                                          adapter=e.name)
                if e.host is not None or e.slot is not None:
                    return None
                if e.load_error is not None and e.error_sticky:
                    raise e.load_error
                if e.load != "running":
                    break
                self._cond.wait()
            self.room_waiters.discard(e)
            e.load, e.load_error = "running", None  # claims a queued job too: its token becomes stale
            e.load_token += 1
            token = e.load_token
        t0 = time.perf_counter()
        for attempt in range(len(self.retry_delays) + 1):
            w, err = self._call_loader(e)
            if not (isinstance(err, _TRANSIENT) and attempt < len(self.retry_delays)):
                break
            time.sleep(self.retry_delays[attempt])
        with self._cond:
            e.attempts = attempt
            failed = self._finish_load(e, token, w, err, t0, retry=False)
            if not self._live(e):
                raise AdapterNotFound(f"adapter {e.name} was removed while loading: add it again", adapter=e.name)
        if failed is not None:
            raise failed
        return w
