"""The explicit, opt-in warm-start store capability (spec §3.9, the seed's
``ConfiguredWarmStartStore``).

:func:`warm_store` turns what a user passes as ``store=`` (None, a URL/path, an open
:class:`gamstore.store.Store`, or a :class:`WarmStartStore`) into one memoized
:class:`WarmStartStore` per root per process, or None (disk-silent: every warm-start call is
a no-op). There is no hidden global root.

A :class:`WarmStartStore` never raises into a fit:

* opening is lazy (constructing one touches nothing); an open failure is memoized, logged
  once, and makes the capability unavailable for good;
* the first I/O error (``OSError``: storage unreachable, permission denied, a save the store
  reports as failed) disables every later operation through it and its sessions, logged once;
* a record/codec error (``ValueError``/``TypeError``, e.g. a record that is not strict JSON)
  is logged and returns None/False but does not disable anything;
* a write to a read-only store disables writes only; reads keep working;
* a read that the store reports as failed on I/O (a real :class:`~gamstore.store.Store`
  never raises on lookup: it returns a miss and counts ``stats().read_errors``) feeds a
  circuit breaker: after :data:`BREAKER_FAILURES` (3) consecutive failed reads, reads are
  skipped (a miss at no cost) for :data:`BREAKER_COOLDOWN` (60 s; ``cooldown=None``: for the
  rest of the process), logged once at WARNING. After the cool-down one read probes the
  store: a success (a hit or a clean miss) closes the breaker, a failure opens it again.
  Saves are not affected (a failed save, including a session checkpoint or finalize that
  the store counts in ``stats().save_errors``, disables the capability, above);
* records whose parts exceed :data:`MAX_ENTRY_BYTES` (16 MiB) are skipped with a log line,
  and a loaded entry over the cap is a miss.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from gamstore.records import MAX_ENTRY_BYTES

__all__ = [
    "BREAKER_COOLDOWN",
    "BREAKER_FAILURES",
    "MAX_ENTRY_BYTES",
    "StoreArg",
    "WarmStartStore",
    "clear_memo",
    "open_lazily",
    "warm_store",
]

_log = logging.getLogger("gamstore.warmstart")

#: Consecutive failed reads (I/O errors, not misses) that open the read circuit breaker.
BREAKER_FAILURES = 3
#: Seconds reads stay skipped once the breaker opened (then one read probes the store).
BREAKER_COOLDOWN = 60.0


class _StoreLike(Protocol):
    """The part of :class:`gamstore.store.Store` the warm-start layer uses."""

    @property
    def url(self) -> str: ...

    def save(
        self,
        keyspace: str,
        key: str,
        record: Any,
        *,
        objective: float | None = None,
        iteration: int | None = None,
        kind: str = "checkpoint",
    ) -> str | None: ...

    def lookup(self, keyspace: str, key: str) -> Any: ...

    def lookup_latest(self, keyspace: str, key: str) -> Any: ...

    def session(self, key: str, keyspace: str = "outer") -> Any: ...


def _is_io_error(exc: BaseException) -> bool:
    # OSError covers StoreError, ReadOnlyStoreError (PermissionError), ConnectionError and
    # TimeoutError; everything else (ValueError/TypeError from codecs) is a record problem.
    return isinstance(exc, OSError)


def _error_count(store: Any, counter: str) -> int | None:
    """``stats().<counter>`` of a store, or None when it does not report it.

    A store with ``error_count(counter)`` (gamstore's :class:`~gamstore.store.Store`) answers
    without copying its stats: every guarded read asks twice.
    """
    live = getattr(store, "error_count", None)
    if callable(live):
        try:
            value = live(counter)
        except Exception:  # noqa: BLE001 - counters are advisory
            value = None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    stats = getattr(store, "stats", None)
    if not callable(stats):
        return None
    try:
        value = getattr(stats(), counter, None)
    except Exception:  # noqa: BLE001 - counters are advisory
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_error_count(store: Any) -> int | None:
    """``stats().read_errors`` of a store, or None when it does not report them."""
    return _error_count(store, "read_errors")


def _is_read_only_error(exc: BaseException) -> bool:
    try:
        from gamstore.store.errors import ReadOnlyStoreError
    except ImportError:  # pragma: no cover - the storage layer is part of the package
        return False
    return isinstance(exc, ReadOnlyStoreError)


def _record_array_bytes(record: Any) -> int:
    """Bytes of the arrays a record holds (a cheap lower bound of its stored size).

    Walks dataclass fields, tuples and lists; no encoding happens here (the store encodes
    once and enforces the exact cap itself).
    """
    total = 0
    stack: list[Any] = [record]
    seen = 0
    while stack and seen < 100_000:  # bounded walk: records are shallow
        obj = stack.pop()
        seen += 1
        if isinstance(obj, np.ndarray):
            total += int(obj.nbytes)
        elif isinstance(obj, tuple | list):
            stack.extend(obj)
        elif hasattr(obj, "__dataclass_fields__"):
            stack.extend(getattr(obj, name) for name in obj.__dataclass_fields__)
    return total


class WarmStartStore:
    """A lazily opened store shared by every warm-start operation on one root.

    Parameters
    ----------
    url : str or os.PathLike, optional
        Store root (``"path/dir"``, ``"file://..."``, ``"memory://name"``,
        ``"s3://bucket/prefix"``). Exactly one of ``url``, ``store`` and ``opener``.
    store : gamstore.store.Store, optional
        An already open store to wrap.
    opener : callable, optional
        Zero-argument callable returning the store on first use (tests, custom setups).
    storage_options : mapping, optional
        Passed to :func:`gamstore.open_store` (e.g. an S3 endpoint). Never logged.
    read_only : bool
        Open the store read-only: loads work, stores are no-ops.
    open_kwargs : dict, optional
        Further keyword arguments of :func:`gamstore.open_store` (``budget_bytes``, ``ttl``).
    failure_threshold : int
        Consecutive failed reads (I/O errors reported by the store, not misses) after which
        reads are skipped (default :data:`BREAKER_FAILURES`).
    cooldown : float or None
        Seconds reads stay skipped before one read probes the store again (default
        :data:`BREAKER_COOLDOWN`); None skips them for the rest of the process.

    Notes
    -----
    Thread-safe: the open happens once under a lock; the availability flags are plain
    booleans that only ever go from True to False; the breaker state changes under the lock.
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        store: _StoreLike | None = None,
        opener: Callable[[], _StoreLike] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        read_only: bool = False,
        open_kwargs: Mapping[str, Any] | None = None,
        failure_threshold: int = BREAKER_FAILURES,
        cooldown: float | None = BREAKER_COOLDOWN,
        absent: bool = False,
        probe_seconds: float | None = None,
    ) -> None:
        given = sum(x is not None for x in (url, store, opener))
        if given != 1:
            raise ValueError("WarmStartStore: expected exactly one of url, store or opener")
        if (
            isinstance(failure_threshold, bool)
            or not isinstance(failure_threshold, int)
            or failure_threshold < 1
        ):
            raise ValueError(f"failure_threshold: expected an int >= 1, got {failure_threshold!r}")
        if cooldown is not None and (
            isinstance(cooldown, bool)
            or not isinstance(cooldown, int | float)
            or not 0 <= cooldown < math.inf
        ):
            raise ValueError(
                f"cooldown: expected finite seconds >= 0 or None (rest of the process), "
                f"got {cooldown!r}"
            )
        self.failure_threshold = failure_threshold
        self.cooldown = None if cooldown is None else float(cooldown)
        self._read_failures = 0  # consecutive
        self._paused_until: float | None = None  # monotonic s; inf: for good
        self._breaker_logged = False
        self._clock: Callable[[], float] = time.monotonic
        #: Reads skipped while the breaker was open (each one a miss at no cost).
        self.reads_skipped = 0
        self._url = None if url is None else os.fspath(url)
        self._url_cache: str | None = None
        self._store: _StoreLike | None = store
        self._opener = opener
        self._storage_options = dict(storage_options or {})
        self._read_only = bool(read_only)
        self._open_kwargs = dict(open_kwargs or {})
        self._lock = threading.Lock()
        self._opened = store is not None
        self._available = True
        self._writable = True
        self._disabled_reason: str | None = None
        self._logged_ops: set[str] = set()
        # the root was probed missing (open_lazily): nothing to read until this capability
        # opens the store, which its first write does (creating the root)
        self._absent = bool(absent) and url is not None and store is None
        #: Seconds of the probe that found the root missing (None: not probed).
        self.probe_seconds = probe_seconds

    # -- pickling (process pools, dask workers) -----------------------------------------------
    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as "the capability for this root": a worker re-resolves it with
        :func:`warm_store` (one memoized handle per root per worker process). A wrapped open
        store is re-opened from its URL (storage options of an open store are not carried:
        pass a URL and ``storage_options`` when workers need credentials)."""
        if self._url is not None:
            return (
                _restore,
                (self._url, self._storage_options, self._read_only, self._open_kwargs),
            )
        if self._store is not None and isinstance(getattr(self._store, "url", None), str):
            read_only = bool(getattr(self._store, "read_only", False))
            return (_restore, (self._store.url, {}, read_only, {}))
        raise TypeError(
            "WarmStartStore built from a custom opener cannot be pickled; pass a URL instead"
        )

    # -- state -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        state = "available" if self._available else f"disabled ({self._disabled_reason})"
        if self._available and self._paused_until is not None:
            state += ", reads paused"
        return f"WarmStartStore({self.url!r}, {state})"

    @property
    def reads_paused(self) -> bool:
        """True while the read circuit breaker is open (reads are skipped as misses)."""
        until = self._paused_until
        return until is not None and self._clock() < until

    @property
    def url(self) -> str:
        """The store URL (normalised by the store once open; credentials never included)."""
        if self._url_cache is not None:
            return self._url_cache
        if self._store is not None:
            # an open store's URL never changes: read once (every fit's policy asks for it)
            self._url_cache = str(getattr(self._store, "url", "<store>"))
            return self._url_cache
        if self._url is not None:
            return self._url
        return "<custom opener>"

    @property
    def absent(self) -> bool:
        """True while the store does not exist for this capability: it was probed without a
        root (:func:`open_lazily`) and nothing has been written through it since. Reads are
        misses at no cost; the first write opens the store and creates its root."""
        return self._absent and not self._opened

    @property
    def remote(self) -> bool:
        """True for an object store (each request a round trip, worth taking off a fit's
        critical path): told by the open store, or by the URL scheme before it is opened."""
        if self._opened:
            return bool(getattr(self._store, "flat_listing", False))
        return self._url is not None and _object_store_url(self._url)

    @property
    def parallel_reads(self) -> bool:
        """True when the open store is an object store (each read a round trip: independent
        reads are worth sending side by side); False for a local or memory store, or one not
        open yet."""
        return bool(self._opened and getattr(self._store, "flat_listing", False))

    @property
    def available(self) -> bool:
        """False once opening failed or an I/O error disabled the capability."""
        return self._available

    @property
    def writable(self) -> bool:
        """False when unavailable, read-only, or after a read-only refusal."""
        if not (self._available and self._writable and not self._read_only):
            return False
        # a wrapped store opened read-only: known without a refused write (callers skip
        # building records nobody can save)
        return getattr(self._store, "read_only", False) is not True

    @property
    def disabled_reason(self) -> str | None:
        """Why the capability is unavailable (None while available)."""
        return self._disabled_reason

    def disable(self, reason: str) -> None:
        """Mark the capability unavailable for good (logged once)."""
        with self._lock:
            if not self._available:
                return
            self._available = False
            self._disabled_reason = reason
        _log.warning(
            "warm-start store %s disabled for this process: %s (fits continue cold)",
            self.url,
            reason,
        )

    def report_error(self, op: str, exc: BaseException) -> None:
        """Route an error of ``op`` here: I/O disables (once), a record error is only logged."""
        if _is_read_only_error(exc):
            if self._writable:
                self._writable = False
                _log.info("warm-start store %s is read-only; %s skipped from now on", self.url, op)
            return
        if _is_io_error(exc):
            self.disable(f"{op} failed: {type(exc).__name__}: {exc}")
            return
        # a record problem repeats on every evaluation: INFO once per operation, then DEBUG
        level = logging.DEBUG if op in self._logged_ops else logging.INFO
        self._logged_ops.add(op)
        _log.log(
            level, "warm-start %s on %s skipped: %s: %s", op, self.url, type(exc).__name__, exc
        )

    def store(self) -> _StoreLike | None:
        """The underlying store, opening it on first use; None when unavailable."""
        if not self._available:
            return None
        if self._opened:
            return self._store
        with self._lock:
            if not self._opened:
                try:
                    if self._opener is not None:
                        self._store = self._opener()
                    else:
                        from gamstore.store import open_store

                        self._store = open_store(
                            self._url,
                            storage_options=self._storage_options or None,
                            read_only=self._read_only,
                            **self._open_kwargs,
                        )
                except Exception as exc:  # memoized: never retried
                    self._store = None
                    self._available = False
                    self._disabled_reason = f"open failed: {type(exc).__name__}: {exc}"
                    _log.warning(
                        "warm-start store %s could not be opened (%s: %s); fits run cold",
                        self._url if self._url is not None else "<custom opener>",
                        type(exc).__name__,
                        exc,
                    )
                finally:
                    self._opened = True
        return self._store if self._available else None

    # -- operations ----------------------------------------------------------------------------
    def save(
        self,
        keyspace: str,
        key: str,
        record: Any,
        *,
        objective: float | None = None,
        iteration: int | None = None,
        kind: str = "checkpoint",
    ) -> str | None:
        """Best-effort save; the entry id, or None when skipped or failed (never raises)."""
        if not self.writable:
            return None
        nbytes = _record_array_bytes(record)
        if nbytes > MAX_ENTRY_BYTES:
            _log.info(
                "warm-start %s record skipped: %d bytes exceeds the %d-byte entry cap",
                keyspace,
                nbytes,
                MAX_ENTRY_BYTES,
            )
            return None
        st = self.store()
        if st is None or not self.writable:
            return None
        try:
            entry_id = st.save(
                keyspace, key, record, objective=objective, iteration=iteration, kind=kind
            )
        except Exception as exc:
            self.report_error(f"save {keyspace}", exc)
            return None
        if entry_id is None:
            # the store returns None when storage failed or it has no room for the entry
            # (an entry over its whole budget); it logged the details either way
            self.disable(f"save {keyspace} failed")
        return entry_id

    # -- read circuit breaker -----------------------------------------------------------------
    def _read_allowed(self) -> bool:
        """False while the breaker is open; after the cool-down, let one probe through."""
        if self._paused_until is None:
            return True
        with self._lock:
            until = self._paused_until
            if until is None:
                return True
            now = self._clock()
            if now < until:
                self.reads_skipped += 1
                return False
            # Cool-down over: this read probes the store; others keep skipping meanwhile.
            self._paused_until = now + (self.cooldown or 0.0)
            return True

    def _read_done(self, op: str, failed: bool) -> None:
        """Feed one read outcome (``failed``: an I/O error, not a miss) to the breaker."""
        if not failed:
            if self._read_failures or self._paused_until is not None:
                with self._lock:
                    was_open = self._paused_until is not None
                    self._read_failures = 0
                    self._paused_until = None
                if was_open:
                    _log.info("warm-start store %s reachable again; reads resumed", self.url)
            return
        with self._lock:
            self._read_failures += 1
            if self._read_failures < self.failure_threshold:
                return
            pause = math.inf if self.cooldown is None else self.cooldown
            self._paused_until = self._clock() + pause
            first = not self._breaker_logged
            self._breaker_logged = True
        span = "for the rest of the process" if self.cooldown is None else f"for {pause:g} s"
        _log.log(
            logging.WARNING if first else logging.DEBUG,
            "warm-start store %s: %d consecutive reads failed (last: %s); reads skipped %s "
            "(fits continue cold)",
            self.url,
            self._read_failures,
            op,
            span,
        )

    def _guarded_read(self, op: str, st: Any, read: Callable[[], Any]) -> Any:
        """Run one read of ``st`` under the breaker; raises only what ``read`` raises."""
        if not self._read_allowed():
            return None
        before = _read_error_count(st)
        entry = read()  # a raised error goes to report_error (an I/O one disables for good)
        failed = False
        if entry is None and before is not None:
            after = _read_error_count(st)
            failed = after is not None and after > before
        self._read_done(op, failed)
        return entry

    def _lookup(self, how: str, keyspace: str, key: str) -> Any:
        if self.absent:
            return None  # no root, nothing written through us since: nothing to find
        st = self.store()
        if st is None:
            return None
        op = f"{how} {keyspace}"
        try:
            entry = self._guarded_read(op, st, lambda: getattr(st, how)(keyspace, key))
        except Exception as exc:
            self.report_error(op, exc)
            return None
        if entry is None:
            return None
        nbytes = getattr(entry, "nbytes", 0) or 0
        if nbytes > MAX_ENTRY_BYTES:
            _log.info(
                "warm-start %s entry ignored: %d bytes exceeds the %d-byte entry cap",
                keyspace,
                nbytes,
                MAX_ENTRY_BYTES,
            )
            return None
        return entry

    def lookup(self, keyspace: str, key: str) -> Any:
        """Best entry under ``key`` (Entry) or None; never raises."""
        return self._lookup("lookup", keyspace, key)

    def lookup_latest(self, keyspace: str, key: str) -> Any:
        """Newest entry under ``key`` (Entry) or None; never raises."""
        return self._lookup("lookup_latest", keyspace, key)

    def session(self, key: str, keyspace: str = "outer") -> CapabilitySession | None:
        """A session on ``key`` that reports errors here, or None when unavailable."""
        if self.absent:
            # opened on its first write; its loads miss until then
            return CapabilitySession(self, None, keyspace, key=key) if self._available else None
        inner = self._open_session(key, keyspace)
        return None if inner is None else CapabilitySession(self, inner, keyspace)

    def _open_session(self, key: str, keyspace: str) -> Any:
        st = self.store()
        if st is None:
            return None
        try:
            return st.session(key, keyspace=keyspace)
        except Exception as exc:
            self.report_error(f"open session {keyspace}", exc)
            return None


class CapabilitySession:
    """A store session guarded by its :class:`WarmStartStore`.

    Checks availability before each operation; after any I/O refusal every later load,
    checkpoint and finalize through any session of the capability is a no-op returning
    None/False (spec §3.9).
    """

    def __init__(
        self, owner: WarmStartStore, inner: Any, keyspace: str, *, key: str | None = None
    ) -> None:
        self._owner = owner
        self._inner = inner
        self._keyspace = keyspace
        self._key = key  # the key of a session opened on first write (an absent store)

    @property
    def key(self) -> str:
        """The session key string."""
        if self._inner is None:
            return self._key or ""
        return str(getattr(self._inner, "key", ""))

    def load(self) -> Any:
        """Best entry of the session key, or None."""
        if not self._owner.available or self._owner.absent:
            return None
        if self._inner is None and not self._open():
            return None
        op = f"session load {self._keyspace}"
        st = getattr(self._inner, "store", None)
        try:
            entry = self._owner._guarded_read(op, st, self._inner.load)
        except Exception as exc:
            self._owner.report_error(op, exc)
            return None
        if entry is not None and (getattr(entry, "nbytes", 0) or 0) > MAX_ENTRY_BYTES:
            return None
        return entry

    def _open(self) -> bool:
        if self._inner is None and self._key is not None:
            self._inner = self._owner._open_session(self._key, self._keyspace)
        return self._inner is not None

    def _write(self, op: str, payload: Any, objective: float | None, iteration: int | None) -> bool:
        if not self._owner.writable or not self._open():
            return False
        st = getattr(self._inner, "store", None)
        before = _error_count(st, "save_errors")
        try:
            result = getattr(self._inner, op)(payload, objective, iteration)
        except Exception as exc:
            self._owner.report_error(f"session {op} {self._keyspace}", exc)
            return False
        if not result and before is not None:
            # False is also a rate-limited checkpoint; only the store's save_errors counter
            # tells a failed write, which disables like a failed save() does
            after = _error_count(st, "save_errors")
            if after is not None and after > before:
                self._owner.disable(f"session {op} {self._keyspace} failed")
        return bool(result)

    def checkpoint(self, payload: Any, objective: float | None, iteration: int | None) -> bool:
        """Rate-limited checkpoint (the store's rule); True when written."""
        return self._write("checkpoint", payload, objective, iteration)

    def finalize(self, payload: Any, objective: float | None, iteration: int | None) -> bool:
        """Write the ``final`` entry; True when written."""
        return self._write("finalize", payload, objective, iteration)


StoreArg = WarmStartStore | _StoreLike | str | os.PathLike[str] | None

_memo_lock = threading.Lock()
_by_url: dict[tuple[str, bool, str], WarmStartStore] = {}
_by_store: weakref.WeakKeyDictionary[Any, WarmStartStore] = weakref.WeakKeyDictionary()
_by_store_id: dict[int, tuple[Any, WarmStartStore]] = {}


def _url_memo_key(
    url: str | os.PathLike[str], read_only: bool, storage_options: Mapping[str, Any] | None
) -> tuple[str, bool, str]:
    text = os.fspath(url)
    if "://" not in text:
        text = "file://" + os.path.abspath(os.path.expanduser(text))
    elif text.startswith("file://"):
        text = "file://" + os.path.abspath(text[len("file://") :])
    # options only distinguish handles in memory; they are never logged or stored
    opts = repr(sorted((str(k), repr(v)) for k, v in (storage_options or {}).items()))
    return text.rstrip("/") or text, bool(read_only), opts


def warm_store(
    url_or_store: StoreArg,
    *,
    storage_options: Mapping[str, Any] | None = None,
    read_only: bool = False,
    **open_kwargs: Any,
) -> WarmStartStore | None:
    """Resolve a user's ``store=`` argument to the process-wide capability for that root.

    Parameters
    ----------
    url_or_store : None, str, os.PathLike, Store or WarmStartStore
        None gives None (disk-silent). A URL/path gives one memoized, lazily opened
        :class:`WarmStartStore` per (root, read_only, storage options). An open store is
        wrapped once (memoized per store object); a :class:`WarmStartStore` is returned as
        is.
    storage_options : mapping, optional
        For URLs: passed to :func:`gamstore.open_store`.
    read_only : bool
        For URLs: open read-only.
    **open_kwargs
        For URLs: further :func:`gamstore.open_store` arguments (``budget_bytes``, ``ttl``),
        used by the first call for a root only.

    Returns
    -------
    WarmStartStore or None

    Raises
    ------
    TypeError
        If ``url_or_store`` is none of the accepted types.
    """
    if url_or_store is None:
        return None
    if isinstance(url_or_store, WarmStartStore):
        return url_or_store
    if isinstance(url_or_store, str | os.PathLike):
        key = _url_memo_key(url_or_store, read_only, storage_options)
        with _memo_lock:
            ws = _by_url.get(key)
            if ws is None:
                ws = WarmStartStore(
                    url_or_store,
                    storage_options=storage_options,
                    read_only=read_only,
                    open_kwargs=open_kwargs,
                )
                _by_url[key] = ws
            return ws
    if all(callable(getattr(url_or_store, m, None)) for m in ("save", "lookup", "session")):
        with _memo_lock:
            try:
                ws = _by_store.get(url_or_store)
                if ws is None:
                    ws = WarmStartStore(store=url_or_store)
                    _by_store[url_or_store] = ws
                return ws
            except TypeError:  # not weak-referenceable: memoize by id, keeping it alive
                held = _by_store_id.get(id(url_or_store))
                if held is not None and held[0] is url_or_store:
                    return held[1]
                ws = WarmStartStore(store=url_or_store)
                _by_store_id[id(url_or_store)] = (url_or_store, ws)
                return ws
    raise TypeError(
        "store: expected None, a URL or path, a gamstore Store or a WarmStartStore, got "
        f"{type(url_or_store).__name__}"
    )


def _restore(
    url: str, storage_options: dict[str, Any], read_only: bool, open_kwargs: dict[str, Any]
) -> WarmStartStore | None:
    return warm_store(
        url, storage_options=storage_options or None, read_only=read_only, **open_kwargs
    )


def _object_store_url(url: str) -> bool:
    scheme, sep, _ = url.partition("://")
    if not sep:
        return False
    from gamstore.store.objectstore import SERVICES

    return any(scheme.lower() in svc.schemes for svc in SERVICES)


def open_lazily(
    url: str, *, storage_options: Mapping[str, Any] | None = None, local: bool = True
) -> tuple[Any, WarmStartStore]:
    """Open ``url`` for a run of fits, creating an object store's root only when written.

    On an object store (``s3://``, ``gs://``, ``az://`` ...) creating a new root costs three
    round trips (read the root ``zarr.json``, list the folder, create-only write) before
    the first fit could look anything up - in a store that holds nothing. Here the root is
    read once, read-only: when it exists the store is opened as usual (its root is checked
    already, no further request); when it does not, the returned capability is *absent*:
    every lookup through it is a miss at no cost, and its first save opens the store and
    creates the root. A local directory that does not exist yet and a ``memory://`` store
    are probed the same way (creating them costs a fraction of a millisecond to a few,
    which a small run that never saves need not pay, and a run that never saves leaves
    nothing on disk); an existing local directory is opened as :func:`gamstore.open_store`
    does (a folder that is not a store is refused up front).

    Parameters
    ----------
    url : str
        The store URL.
    storage_options : mapping, optional
        As for :func:`gamstore.open_store`.
    local : bool
        False: a new local directory or ``memory://`` store is opened (created) now, as
        :func:`gamstore.open_store` does (``run_loso`` does so when its full-data fit's
        lookups must measure the store's round trip for its in-run artifact decision).

    Returns
    -------
    (Store, WarmStartStore)
        A store on the root for its URL and :meth:`~gamstore.store.Store.spec` (read-only
        while the root is absent) and the capability the fits use.

    Raises
    ------
    ValueError, TypeError, ImportError
        As :func:`gamstore.open_store` (a bad URL, a missing extra, a foreign root).
    OSError
        When the store cannot be reached.
    """
    from gamstore.store import open_store

    if not (_object_store_url(url) or (local and _new_local_or_memory(url))):
        # an existing local directory: opened (and checked) as usual, so a foreign folder
        # is refused up front
        store = open_store(url, storage_options=storage_options)
        return store, _wrapped(store)
    t0 = time.perf_counter()
    probe = open_store(url, storage_options=storage_options, read_only=True)
    seconds = time.perf_counter() - t0
    if probe.root_exists:
        # the root check is cached per root: this open sends no request
        store = open_store(url, storage_options=storage_options)
        return store, _wrapped(store)
    # a local or memory read is no round trip: its lookup phases are timed as they run (the
    # input key dominates them, as when the store exists), not estimated from the probe
    remote = _object_store_url(url)
    ws = WarmStartStore(
        probe.url,
        storage_options=storage_options,
        absent=True,
        probe_seconds=seconds if remote else None,
    )
    return probe, ws


def _new_local_or_memory(url: str) -> bool:
    """A ``memory://`` URL, or a local directory (path or ``file://``) that does not exist:
    worth opening lazily (its root is made by the first save)."""
    scheme, sep, rest = url.partition("://")
    if sep:
        if scheme.lower() == "memory":
            return True
        if scheme.lower() != "file":
            return False
        url = rest
    return bool(url) and not os.path.lexists(os.path.expanduser(url))


def _wrapped(store: Any) -> WarmStartStore:
    ws = warm_store(store)
    assert ws is not None
    return ws


def clear_memo() -> None:
    """Forget every memoized capability (tests; a new process starts empty anyway)."""
    with _memo_lock:
        _by_url.clear()
        _by_store.clear()
        _by_store_id.clear()
