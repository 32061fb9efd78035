"""Store I/O off the fit's critical path (issue 17): deferred saves and concurrent reads.

A fit needs its warm start *before* it runs, but never the result of a save: what a fit
writes is for the next fit. Inside :func:`deferred_saves` (``run_loso`` opens one around its
serial run on an object store, where a save is round trips of waiting) the writes after a fit
are handed to a background writer and the fit returns at once; the block record, session final and artifact reach the store while the next fit
builds its design and runs. Outside it every save is synchronous, as before: a plain
``GAM.fit(store=...)`` returns with its state stored.

Rules:

* **Bounded.** At most :data:`WRITE_WORKERS` writer threads and :data:`MAX_PENDING` saves
  waiting or running; a fit that would exceed it waits for a slot (it then pays the save's
  time, never memory). Reads run on at most :data:`READ_WORKERS` threads. Idle threads exit
  after :data:`IDLE_SECONDS`; none outlives its work for long, and none keeps the
  interpreter alive (daemon threads, flushed at exit).
* **Flushed.** :func:`deferred_saves` waits for every save it deferred before it returns
  (``run_loso`` therefore returns with everything stored, as before); :func:`flush` waits for
  all of them (also registered with :mod:`atexit`, bounded by :data:`EXIT_FLUSH_SECONDS`).
* **Read your writes.** A lookup waits for the saves deferred before it that write what it
  reads (:func:`settle`: the same block key, session or artifact family), so a fit never
  misses what an earlier fit of the same process wrote: the lookups and the answers are
  those of the synchronous order. A LOSO fold does not wait for its siblings' records.
* **Never raised.** A save that fails in the background is logged (``gamstore.warmstart``,
  WARNING) and counted (:func:`stats`); it never reaches a fit. A failed save leaves the
  store consistent: an entry is committed by its create-only marker, written last, so a
  partial write is invisible to every reader (and removed by ``gc``).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "EXIT_FLUSH_SECONDS",
    "IDLE_SECONDS",
    "MAX_PENDING",
    "READ_WORKERS",
    "WRITE_WORKERS",
    "BackgroundStats",
    "IOPool",
    "defer",
    "deferred_saves",
    "deferring",
    "flush",
    "settle",
    "stats",
    "threads",
]

_log = logging.getLogger("gamstore.warmstart")

T = TypeVar("T")

#: Writer threads (saves of different fits run side by side; one fit's writes in order).
WRITE_WORKERS = 2
#: Saves waiting or running at most; a fit that would exceed it waits for a slot.
MAX_PENDING = 8
#: Reader threads (concurrent lookups of one fit on an object store).
READ_WORKERS = 4
#: Seconds an idle worker waits for work before its thread exits.
IDLE_SECONDS = 2.0
#: Longest wait for deferred saves at interpreter exit.
EXIT_FLUSH_SECONDS = 60.0

#: Prefix of every worker thread's name (tests count them).
THREAD_PREFIX = "gamstore-io"


class IOPool:
    """A small bounded thread pool whose idle threads exit (no thread outlives its work).

    Parameters
    ----------
    name : str
        Thread name suffix (``gamstore-io-<name>-<n>``).
    max_workers : int
        Threads at most.
    max_pending : int, optional
        Tasks waiting or running at most: :meth:`submit` blocks while the pool is full.
        None: unbounded (the caller bounds what it submits).
    idle_seconds : float
        Seconds an idle thread waits for work before it exits.
    """

    def __init__(
        self,
        name: str,
        max_workers: int,
        *,
        max_pending: int | None = None,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers: expected an int >= 1, got {max_workers!r}")
        if max_pending is not None and (not isinstance(max_pending, int) or max_pending < 1):
            raise ValueError(f"max_pending: expected an int >= 1 or None, got {max_pending!r}")
        self.name = name
        self.max_workers = max_workers
        self.max_pending = max_pending
        self.idle_seconds = float(idle_seconds)
        self._tasks: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_pending) if max_pending else None
        self._threads: set[threading.Thread] = set()
        self._idle = 0  # workers waiting for a task
        self._serial = 0
        #: Most tasks ever waiting or running at once (tests check the bound).
        self.high_water = 0
        self._in_flight = 0

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn()`` on a worker; blocks while ``max_pending`` tasks are in flight."""
        if self._slots is not None:
            self._slots.acquire()
        fut: Future[T] = Future()
        thread = None
        with self._lock:
            self._in_flight += 1
            self.high_water = max(self.high_water, self._in_flight)
            # queued under the lock: an idle worker that times out checks the queue under it
            self._tasks.put((fn, fut))
            if self._tasks.qsize() > self._idle and len(self._threads) < self.max_workers:
                self._serial += 1
                thread = threading.Thread(
                    target=self._work,
                    name=f"{THREAD_PREFIX}-{self.name}-{self._serial}",
                    daemon=True,
                )
                self._threads.add(thread)
        if thread is not None:
            thread.start()
        return fut

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                self._idle += 1
            try:
                item = self._tasks.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._tasks.empty():
                        self._threads.discard(me)
                        return
                continue
            with self._lock:
                self._idle -= 1
            if item is None:  # pragma: no cover - not sent today
                with self._lock:
                    self._threads.discard(me)
                return
            fn, fut = item
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the future
                    fut.set_exception(exc)
            with self._lock:
                self._in_flight -= 1
            if self._slots is not None:
                self._slots.release()

    def threads(self) -> int:
        """Live worker threads of this pool."""
        with self._lock:
            return len(self._threads)


@dataclass
class BackgroundStats:
    """Counters of the deferred saves of this process (never reset but by tests)."""

    deferred: int = 0
    done: int = 0
    failed: int = 0


_WRITES = IOPool("write", WRITE_WORKERS, max_pending=MAX_PENDING)
_READS = IOPool("read", READ_WORKERS)
_STATS = BackgroundStats()
_pending_lock = threading.Lock()
#: deferred saves not yet finished, with what each writes (None: anything)
_pending: dict[Future[Any], frozenset[Any] | None] = {}
_defer_depth = contextvars.ContextVar("gamstore_defer_saves", default=0)


def writes() -> IOPool:
    """The writer pool (tests read its bound and high-water mark)."""
    return _WRITES


def reads() -> IOPool:
    """The reader pool."""
    return _READS


def stats() -> BackgroundStats:
    """Counters of the deferred saves (deferred, done, failed)."""
    return _STATS


def threads() -> int:
    """Live background worker threads (readers and writers)."""
    return _WRITES.threads() + _READS.threads()


def deferring() -> bool:
    """True inside :func:`deferred_saves` (in this thread or task)."""
    return _defer_depth.get() > 0


@contextlib.contextmanager
def deferred_saves(enabled: bool = True) -> Iterator[None]:
    """Within this block, warm-start saves run in the background; on exit, wait for them.

    Nested blocks defer to the outermost one (which flushes). ``enabled=False`` is a plain
    block (saves stay synchronous).
    """
    if not enabled:
        yield
        return
    token = _defer_depth.set(_defer_depth.get() + 1)
    outer = _defer_depth.get() == 1
    try:
        yield
    finally:
        _defer_depth.reset(token)
        if outer:
            flush()


def _snapshot(tags: frozenset[Any] | set[Any] | None = None) -> set[Future[Any]]:
    """The pending saves (those whose tags meet ``tags``; a save without tags always)."""
    with _pending_lock:
        if tags is None:
            return set(_pending)
        return {f for f, t in _pending.items() if t is None or not t.isdisjoint(tags)}


def defer(
    what: str, fn: Callable[[], Any], tags: frozenset[Any] | set[Any] | None = None
) -> Future[Any]:
    """Run the save ``fn()`` in the background (never raises into the caller); ``what`` names
    it in the log, ``tags`` say what it writes (e.g. ``("block", key)``: a lookup settles only
    the saves that write what it reads, :func:`settle`; None: anything).

    The caller's context (provenance of the entries) travels with it. An error is logged at
    WARNING and counted; the future always resolves to ``fn()``'s result or None.
    """
    ctx = contextvars.copy_context()

    def run() -> Any:
        try:
            out = ctx.run(fn)
        except Exception as exc:  # noqa: BLE001 - a background save never fails a fit
            _STATS.failed += 1
            _log.warning(
                "background warm-start save (%s) failed: %s: %s", what, type(exc).__name__, exc
            )
            return None
        _STATS.done += 1
        return out

    _STATS.deferred += 1
    fut = _WRITES.submit(run)
    with _pending_lock:
        _pending[fut] = None if tags is None else frozenset(tags)

    def forget(f: Future[Any]) -> None:
        with _pending_lock:
            _pending.pop(f, None)

    fut.add_done_callback(forget)
    return fut


def _wait(futures: set[Future[Any]], timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    for f in futures:
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            f.result(timeout=left)
        except Exception:  # noqa: BLE001 - logged by the task; a timeout: not flushed
            if not f.done():
                return False
    return True


def settle(tags: frozenset[Any] | set[Any] | None = None, timeout: float | None = None) -> bool:
    """Wait, before a lookup, for the saves deferred so far that write what it reads (read
    your writes): those whose tags meet ``tags`` (None: every one). Tags name keys, not
    stores, so any handle on the same root sees the writes (a read-only twin included), and
    a LOSO fold does not wait for its siblings' records. True when none is left."""
    left = _snapshot(None if tags is None else frozenset(tags))
    return _wait(left, timeout) if left else True


def flush(timeout: float | None = None) -> bool:
    """Wait for every deferred save of this process; True when all finished in time."""
    return _wait(_snapshot(), timeout)


def run_concurrently(fns: list[Callable[[], Any]]) -> list[Any]:
    """Run independent reads side by side (the first in this thread); their results in order.

    An exception of one read is raised here, after every read finished (none is left
    running behind the caller).
    """
    if len(fns) <= 1:
        return [fn() for fn in fns]
    ctx = contextvars.copy_context()

    def in_context(fn: Callable[[], Any]) -> Callable[[], Any]:
        return lambda: ctx.copy().run(fn)

    futs = [_READS.submit(in_context(fn)) for fn in fns[1:]]
    first: list[Any] = []
    err: BaseException | None = None
    try:
        first.append(fns[0]())
    except BaseException as exc:  # noqa: BLE001 - re-raised once the others finished
        err = exc
    rest = []
    for f in futs:
        try:
            rest.append(f.result())
        except BaseException as exc:  # noqa: BLE001
            err = err or exc
            rest.append(None)
    if err is not None:
        raise err
    return first + rest


@atexit.register
def _flush_at_exit() -> None:  # pragma: no cover - runs at interpreter exit
    try:
        if not flush(EXIT_FLUSH_SECONDS):
            _log.warning("warm-start saves still running at exit were abandoned")
    except Exception:  # noqa: BLE001 - never fail interpreter exit
        pass
