"""The :class:`Store` facade: commit protocol, lookup, access touches, eviction, gc, verify.

Save writes every payload object of a new entry, then its marker (``zarr.json``) last with
create-only semantics; readers only consider entries whose marker parses and whose objects
match it. Entries are immutable, which makes in-process caching simple: a parsed marker or a
decoded entry stays valid for as long as the entry is listed. Caches and throttle counters
are shared by every handle on the same root in one process (and never across roots).
"""

from __future__ import annotations

import atexit
import logging
import math
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gamstore import _json
from gamstore._version import __version__
from gamstore.store import codec, portable
from gamstore.store.backend import Backend
from gamstore.store.cache import state_for
from gamstore.store.codec import CorruptEntryError, Marker
from gamstore.store.errors import ReadOnlyStoreError
from gamstore.store.eviction import (
    FULL_EVERY,
    FULL_SWEEP_MAX_ENTRIES,
    LOW_WATER,
    N_SHARDS,
    is_expired,
    plan_eviction,
)
from gamstore.store.ids import new_entry_id, parse_created, producer_identity
from gamstore.store.layout import (
    ACCESS_DIR,
    CATALOG_DIR,
    LAYOUT_VERSION,
    MARKER,
    READABLE_LAYOUTS,
    access_path,
    bookkeeping_attrs,
    check_keyspace,
    entry_prefix,
    key_folder,
    key_prefix,
    level_attrs,
    split_entry_path,
)
from gamstore.store.portable import ExportedEntry, ImportResult
from gamstore.store.provenance import check_provenance, current_provenance
from gamstore.store.ranking import Candidate, rank
from gamstore.store.spec import StoreSpec
from gamstore.store.types import (
    KINDS,
    Entry,
    EntryInfo,
    GcReport,
    Listing,
    StoreStats,
    VerifyReport,
)
from gamstore.store.walk import EntryDir, touch_times, walk

if TYPE_CHECKING:
    from gamstore.store.session import Session

__all__ = ["DEFAULT_SCHEMA", "MAX_TTL", "Store", "check_store_options"]

log = logging.getLogger("gamstore.store")

DEFAULT_SCHEMA = "gamstore-schema-1"
_TOUCH_FLUSH_COUNT = 64
#: Largest marker ever read (a marker is part of an entry, so the entry cap bounds it).
MAX_MARKER_BYTES = codec.MAX_ENTRY_BYTES
#: Largest root ``zarr.json`` read (ours is about 100 bytes; a bigger one is not a gamstore root).
MAX_ROOT_BYTES = 64 * 1024
_TOUCH_FLUSH_AGE_NS = 5 * 10**9


def _schema_tag() -> str:
    try:
        from gamstore.records import SCHEMA_TAG
    except ImportError:
        return DEFAULT_SCHEMA
    return str(SCHEMA_TAG)


def _default_resolver(name: str) -> type | None:
    try:
        from gamstore.records import RECORD_TYPES
    except ImportError:
        return None
    cls = RECORD_TYPES.get(name)
    return cls if isinstance(cls, type) else None


_OPEN_STORES: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:  # pragma: no cover - runs at interpreter exit
    for store in list(_OPEN_STORES):
        try:
            store.flush()
        except Exception:  # noqa: BLE001 - never fail interpreter exit
            pass


#: Longest ``ttl`` accepted (100 years): ``ttl`` in ns must fit int64 (292 years).
MAX_TTL = 100 * 365.25 * 86400.0


def _is_seconds(value: object, upper: float) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and 0 <= value <= upper  # NaN and inf fail here
    )


def check_store_options(*, budget_bytes: object, ttl: object, read_only: object) -> None:
    """Validate the options of :func:`gamstore.open_store` before anything is opened.

    Raises
    ------
    ValueError, TypeError
        Naming the option and its accepted range.
    """
    if (
        isinstance(budget_bytes, bool)
        or not isinstance(budget_bytes, int)
        or not 0 <= budget_bytes <= _json.INT_MAX
    ):
        raise ValueError(
            f"budget_bytes: expected an int in [0, 2**63 - 1], got {budget_bytes!r:.40}"
        )
    if not _is_seconds(ttl, MAX_TTL):
        raise ValueError(
            f"ttl: expected seconds in [0, {MAX_TTL:g}] (0 disables expiry), got {ttl!r:.40}"
        )
    if not isinstance(read_only, bool):
        raise TypeError(f"read_only: expected True or False, got {type(read_only).__name__}")


class Store:
    """A gamstore store on one root (use :func:`gamstore.open_store` to create one).

    Parameters
    ----------
    backend : Backend
        Object storage under the root.
    budget_bytes : int
        Size budget enforced by eviction sweeps (approximate between sweeps).
    ttl : float
        Seconds since last activity after which an entry expires; 0 disables expiry.
    read_only : bool
        Refuse every write with :class:`ReadOnlyStoreError` (lookups do not touch).
    producer : str, optional
        Producer identity written into entries (default: this process's identity). A
        ``final`` by another producer reads as a ``checkpoint``.
    record_types : mapping, optional
        ``RECORD_TYPE -> class`` used to decode entries (default
        ``gamstore.records.RECORD_TYPES``).
    touch_interval : float, optional
        Minimum seconds between two access touches of one entry by this process (default
        ``clamp(ttl / 32, 1 s, 1 h)``).
    sweep_every : int
        Run an eviction sweep every this many saves (and on the first save).
    checkpoint_interval : float
        Rate limit of :meth:`Session.checkpoint` for non-improving objectives.
    storage_options : mapping, optional
        Kept only for :meth:`spec` (workers reopen the store with them); never logged or
        shown.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        budget_bytes: int = 1 << 30,
        ttl: float = 30 * 86400.0,
        read_only: bool = False,
        producer: str | None = None,
        record_types: Mapping[str, type] | None = None,
        touch_interval: float | None = None,
        sweep_every: int = 32,
        checkpoint_interval: float = 2.0,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        check_store_options(budget_bytes=budget_bytes, ttl=ttl, read_only=read_only)
        for name, value in (
            ("touch_interval", touch_interval),
            ("checkpoint_interval", checkpoint_interval),
        ):
            if value is not None and not _is_seconds(value, MAX_TTL):
                raise ValueError(f"{name}: expected seconds in [0, {MAX_TTL:g}], got {value!r:.40}")
        if not isinstance(sweep_every, int) or sweep_every < 1:
            raise ValueError(f"sweep_every: expected an int >= 1, got {sweep_every!r}")
        if producer is not None and (not isinstance(producer, str) or not producer):
            raise ValueError("producer: expected a non-empty string")
        self._backend = backend
        self.budget_bytes = int(budget_bytes)
        self.ttl = float(ttl)
        self.read_only = bool(read_only)
        self.producer = producer or producer_identity()
        self._record_types = dict(record_types) if record_types is not None else None
        if touch_interval is None:
            touch_interval = min(max(self.ttl / 32.0, 1.0), 3600.0) if self.ttl else 3600.0
        self.touch_interval = float(touch_interval)
        self.sweep_every = sweep_every
        self.checkpoint_interval = float(checkpoint_interval)
        self._storage_options = dict(storage_options or {})
        self._schema = _schema_tag()
        self._state = state_for(getattr(backend, "cache_key", backend.url))
        self._stats = StoreStats()
        self._clock: Callable[[], int] = time.time_ns
        self._init_root()
        _OPEN_STORES.add(self)

    # ------------------------------------------------------------------ basics
    @property
    def url(self) -> str:
        """Normalised root URL, credentials stripped."""
        return self._backend.url

    @property
    def backend(self) -> Backend:
        """The backend (for tests and tools; bypasses every check)."""
        return self._backend

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"Store({self.url!r}, {mode}, budget_bytes={self.budget_bytes}, ttl={self.ttl})"

    def spec(self, *, read_only: bool | None = None) -> StoreSpec:
        """What another process needs to reopen this store (URL, storage options, settings).

        Worker processes and dask workers cannot share this object's live clients, and the
        URL alone lacks the ``storage_options`` (endpoint, credentials) the store was
        opened with; the returned :class:`~gamstore.store.spec.StoreSpec` carries both,
        pickles, and never shows the options' values in its repr.

        Parameters
        ----------
        read_only : bool, optional
            Override the mode the worker opens the store in (default: this store's).

        Returns
        -------
        StoreSpec
            ``spec.open()`` opens an equivalent store.
        """
        return StoreSpec(
            url=self.url,
            storage_options=dict(self._storage_options) or None,
            read_only=self.read_only if read_only is None else bool(read_only),
            budget_bytes=self.budget_bytes,
            ttl=self.ttl,
        )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Write pending access touches and release the backend."""
        self.flush()
        _OPEN_STORES.discard(self)

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(f"store {self.url} is read-only")

    def _init_root(self) -> None:
        st = self._state
        if st.root_checked:
            return
        doc = codec.group_meta_bytes({"gamstore": {"layout": LAYOUT_VERSION}})
        existing = self._backend.get(MARKER, MAX_ROOT_BYTES)
        if existing is None and not self.read_only:
            # Never turn somebody's folder into a store: a root without zarr.json must be
            # empty (temp files of a concurrent opener aside) before we write ours.
            if self._has_foreign_content():
                existing = self._backend.get(MARKER, MAX_ROOT_BYTES)  # a concurrent opener
                if existing is None:
                    raise ValueError(
                        f"url: {self.url} is not empty and holds no gamstore root zarr.json; "
                        "refusing to turn it into a store (use an empty or new folder)"
                    )
            elif self._backend.put_if_absent(MARKER, doc):
                existing = doc
            else:
                existing = self._backend.get(MARKER, MAX_ROOT_BYTES)
                if existing is None:  # there, but unreadable: a symlink or a special file
                    raise ValueError(
                        f"url: {self.url} has a root zarr.json that is not a regular file"
                    )
        if existing is not None:
            st.layout = self._check_root_doc(existing)
            st.root_checked = True  # a missing root seen read-only is checked again later

    @property
    def root_exists(self) -> bool:
        """Whether the root ``zarr.json`` was found (or written) by this process. False only
        for a store opened read-only on a root that had none: it holds no entries."""
        return self._state.root_checked

    def _has_foreign_content(self) -> bool:
        names = self._backend.list_dir("")
        return any(n != MARKER and ".tmp." not in n for n in names)

    def require_root(self) -> None:
        """Raise ValueError unless the root holds a gamstore root ``zarr.json`` (read now).

        Maintenance (``gc``, ``verify(fix=True)``, ``evict``, the catalog) calls this before
        it deletes anything, so it never works on a folder that is not a gamstore store.
        """
        blob = self._backend.get(MARKER, MAX_ROOT_BYTES)
        if blob is None:
            raise ValueError(
                f"url: {self.url} holds no gamstore root zarr.json; refusing maintenance on a "
                "folder that is not a gamstore store"
            )
        self._state.layout = self._check_root_doc(blob)

    @property
    def layout(self) -> int:
        """Layout version of this store's root (1 or 2): the entry shape its saves write."""
        return self._state.layout or LAYOUT_VERSION

    def upgrade(self) -> tuple[int, int]:
        """Make a layout-1 store a layout-2 store (new entries flat inside their shard).

        Only the root doc changes (one write): the entries already stored stay where they
        are and read as before (every reader of this version walks both entry shapes), so
        nothing is copied and nothing is lost if this is interrupted. A gamstore that
        predates layout 2 refuses the store afterwards, with an error naming the layout,
        instead of missing the new entries.

        Returns
        -------
        tuple of int
            ``(layout before, layout after)``; equal when there was nothing to do.

        Raises
        ------
        ReadOnlyStoreError
            On a read-only store.
        ValueError
            If the root is not a gamstore store.
        """
        self._check_writable()
        self.require_root()
        before = self._state.layout
        if before < LAYOUT_VERSION:
            doc = codec.group_meta_bytes({"gamstore": {"layout": LAYOUT_VERSION}})
            self._backend.put(MARKER, doc)
            self._state.layout = LAYOUT_VERSION
        return before, self._state.layout

    def _entry_path(self, keyspace: str, folder: str, entry_id: str) -> str:
        """Where this store writes entry ``entry_id`` of key ``folder`` (its layout)."""
        return entry_prefix(keyspace, folder, entry_id, self.layout)

    def _check_root_doc(self, data: bytes) -> int:
        from gamstore import _json

        try:
            if len(data) > MAX_ROOT_BYTES:
                raise ValueError("oversize")
            doc = _json.loads(data, root="zarr.json")
            layout = doc["attributes"]["gamstore"]["layout"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"url: {self.url} holds a zarr.json that is not a gamstore root "
                f"(expected attrs {{'gamstore': {{'layout': {LAYOUT_VERSION}}}}})"
            ) from None
        if type(layout) is not int or layout not in READABLE_LAYOUTS:
            raise ValueError(
                f"url: {self.url} has gamstore layout {layout!r:.40}; this version reads "
                f"layouts {', '.join(map(str, READABLE_LAYOUTS))}"
            )
        return layout

    def _resolve(self, name: str) -> type | None:
        if self._record_types is not None and name in self._record_types:
            return self._record_types[name]
        return _default_resolver(name)

    def _effective_kind(self, kind: str, producer: str) -> str:
        return kind if kind != "final" or producer == self.producer else "checkpoint"

    # ------------------------------------------------------------------ save
    def save(
        self,
        keyspace: str,
        key: str,
        record: Any,
        *,
        objective: float | None = None,
        iteration: int | None = None,
        kind: str = "checkpoint",
        provenance: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Store ``record`` as a new immutable entry under ``(keyspace, key)``.

        Parameters
        ----------
        keyspace : str
            One of ``inner``, ``block``, ``outer``, ``artifact``, ``from``.
        key : str
            The caller's key string (stored in the attrs, hashed into the folder name).
        record : object
            A record implementing ``RECORD_TYPE`` and ``to_parts()``.
        objective : float, optional
            Objective value; non-finite values are stored as null.
        iteration : int, optional
            The caller's iteration counter (>= 0).
        kind : {"checkpoint", "final"}
            Entry kind.
        provenance : mapping, optional
            Provenance fields of this entry (see :mod:`gamstore.store.provenance`), over the
            ones set by enclosing :func:`~gamstore.store.provenance.provenance` blocks; the
            gamstore version is always recorded.

        Returns
        -------
        str or None
            The new entry id, or None when the storage failed (logged once; nothing that
            was already stored is affected) or when the entry is larger than
            ``budget_bytes`` (it is not written: the first sweep would remove it). The
            eviction sweep a save triggers never removes the entry it just wrote.

        Raises
        ------
        ReadOnlyStoreError
            On a read-only store.
        ValueError, TypeError
            For bad input (nothing is written).
        """
        self._check_writable()
        check_keyspace(keyspace)
        if not isinstance(kind, str) or kind not in KINDS:
            raise ValueError(f"kind: expected one of {list(KINDS)}, got {kind!r}")
        if objective is not None:
            if isinstance(objective, bool) or not isinstance(objective, (int, float)):
                raise TypeError(
                    f"objective: expected a float or None, got {type(objective).__name__}"
                )
            try:
                objective = float(objective)
            except OverflowError:  # an int like 10**400
                raise ValueError("objective: int beyond the float64 range") from None
            if not math.isfinite(objective):
                objective = None
        if iteration is not None and (
            isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0
        ):
            raise ValueError(f"iteration: expected an int >= 0 or None, got {iteration!r:.40}")
        if iteration is not None and iteration > _json.INT_MAX:
            # Readers keep iterations in int64 columns (views, catalog, HDF5).
            raise ValueError("iteration: expected an int in [0, 2**63 - 1], got a larger int")
        prov = {"gamstore_version": __version__, **current_provenance()}
        if provenance is not None:
            prov.update(check_provenance(provenance))
        folder = key_folder(keyspace, key)
        entry_id = new_entry_id(self.producer, self._clock())
        created = parse_created(entry_id)
        assert created is not None
        layout = self.layout
        enc = codec.encode_entry(
            layout=layout,
            record=record,
            keyspace=keyspace,
            key=key,
            entry_id=entry_id,
            producer=self.producer,
            created=created,
            objective=objective,
            iteration=iteration,
            kind=kind,
            schema=self._schema,
            provenance=prov,
        )
        path = entry_prefix(keyspace, folder, entry_id, layout)
        if enc.nbytes > self.budget_bytes:
            # The first sweep would evict it: never write (and acknowledge) such an entry.
            log.warning(
                "gamstore: entry of %d bytes not saved: it exceeds the store's budget of %d bytes",
                enc.nbytes,
                self.budget_bytes,
            )
            return None
        self._flush_touches()
        marker_sent = False
        try:
            self._backend.put_many({f"{path}/{p}": b for p, b in enc.payload.items()})
            levels = {}
            if self._innermost_level(keyspace, folder) not in self._state.level_docs:
                levels = self._level_docs(keyspace, folder, key)
            marker_sent = True
            if levels:
                # the level docs go with the marker: one round of requests (concurrent on
                # object stores; in order, docs first, in one folder walk locally)
                committed = self._backend.put_many_if_absent(
                    {**levels, f"{path}/{MARKER}": enc.marker}
                )[-1]
            else:
                committed = self._backend.put_if_absent(f"{path}/{MARKER}", enc.marker)
            if not committed:
                # A retried create-only PUT whose first attempt landed (response lost) finds
                # our own marker: entry ids are unique, so equal bytes mean it is committed.
                if self._backend.get(f"{path}/{MARKER}") != enc.marker:
                    raise FileExistsError(f"entry {path} already exists")
            self._check_payload(path, enc.payload)
        except Exception as exc:  # noqa: BLE001 - any storage failure is reported, not raised
            self._stats.save_errors += 1
            log.warning("gamstore: save to %s failed (%s: %s)", self.url, type(exc).__name__, exc)
            if marker_sent and self._backend.flat_listing and not isinstance(exc, FileExistsError):
                # A timed-out marker PUT may still land later: keep the payload so that makes
                # a whole (unacknowledged) entry, never a marker without arrays; gc removes it
                # after the grace period otherwise.
                return None
            try:
                self._backend.delete_prefix(path)
            except Exception:  # noqa: BLE001 - best effort; gc removes leftovers
                log.debug("gamstore: cleanup of failed save %s failed", path)
            return None
        if levels:
            self._state.remember_levels([p.rsplit("/", 1)[0] for p in levels])
        self._stats.saves += 1
        self._stats.bytes_written += enc.nbytes
        marker = Marker(
            attrs=enc.attrs,
            record_type=type(record).RECORD_TYPE,
            schema=self._schema,
            keyspace=keyspace,
            key=key,
            entry_id=entry_id,
            producer=self.producer,
            created=created,
            objective=objective,
            iteration=iteration,
            kind=kind,
            nbytes=enc.nbytes,
            provenance=enc.attrs["provenance"],
        )
        self._state.remember_marker(path, marker)
        self._after_save(folder, enc.nbytes, path)
        return entry_id

    def _check_payload(self, path: str, payload: Mapping[str, bytes]) -> None:
        """After the commit: put the payload back if a concurrent ``gc`` took it.

        ``gc`` deletes a markerless payload it listed; with a short grace it can meet ours
        between our last payload write and our marker. It checks for a marker after its
        deletes and puts the bytes back if one landed; a marker that lands after that check
        finds the payload gone here (gc's deletes all finished before its check), and we
        write it again. One HEAD (a ``stat`` locally) per save.
        """
        if not payload:
            return
        probe = next(iter(payload))
        if self._backend.mtime(f"{path}/{probe}") is not None:
            return
        log.warning("gamstore: the payload of %s was removed by a concurrent gc; rewriting", path)
        self._backend.put_many({f"{path}/{p}": b for p, b in payload.items()})

    def ensure_levels(self, keyspace: str, key: str) -> None:
        """Make the folders above ``key``'s entries Zarr groups (create-only): keyspace and
        shard (layout 1: and the key folder).

        :meth:`save` and :meth:`import_entry` do this themselves before committing. A no-op for folders this process already did.

        Raises
        ------
        ReadOnlyStoreError
            On a read-only store.
        """
        self._check_writable()
        folder = key_folder(keyspace, key)
        if self._innermost_level(keyspace, folder) not in self._state.level_docs:
            self._write_levels(keyspace, folder, key)

    def _innermost_level(self, keyspace: str, folder: str) -> str:
        """The deepest level folder above ``folder``'s entries (shard; layout 1: key)."""
        return key_prefix(keyspace, folder) if self.layout < 2 else f"{keyspace}/{folder[:2]}"

    def _level_docs(self, keyspace: str, folder: str, key: str) -> dict[str, bytes]:
        """``zarr.json`` of the level folders above ``folder``'s entries that this process
        has not written or met yet (path -> bytes): every level is a Zarr group."""
        st = self._state
        return {
            f"{p}/{MARKER}": codec.group_meta_bytes(a)
            for p, a in level_attrs(keyspace, folder, key, self.layout)
            if p not in st.level_docs
        }

    def _write_levels(self, keyspace: str, folder: str, key: str) -> None:
        """Write :meth:`_level_docs` create-only (once per folder per process)."""
        docs = self._level_docs(keyspace, folder, key)
        # An existing doc (another writer's, or ours from an earlier process) is fine as is.
        self._backend.put_many_if_absent(docs)
        self._state.remember_levels([p.rsplit("/", 1)[0] for p in docs])

    def _write_placeholder(self, top: str) -> None:
        """Create-only ``<top>/zarr.json`` that makes a bookkeeping folder a Zarr leaf."""
        doc = codec.placeholder_meta_bytes(bookkeeping_attrs(top), top.lstrip("."))
        self._backend.put_if_absent(f"{top}/{MARKER}", doc)
        self._state.remember_levels([top])

    # ------------------------------------------------------------------ lookup
    def lookup(self, keyspace: str, key: str) -> Entry | None:
        """Return the best entry under ``(keyspace, key)``, or None (a miss).

        A final beats any checkpoint; the newest final wins; checkpoints go by lowest
        objective (within 1e-12 the newer). Corrupt, partial or foreign entries are misses
        (and are cleaned up); the next-best valid entry is returned instead.
        """
        return self._lookup(keyspace, key, "best")

    def lookup_latest(self, keyspace: str, key: str) -> Entry | None:
        """Return the newest valid entry under ``(keyspace, key)``, or None."""
        return self._lookup(keyspace, key, "latest")

    def _lookup(self, keyspace: str, key: str, mode: str) -> Entry | None:
        check_keyspace(keyspace)
        folder = key_folder(keyspace, key)
        # I/O failures of this read (listing, markers, arrays): any makes it a read error.
        io_errors: list[BaseException] = []
        try:
            cands = self._scan_key(keyspace, folder)
        except Exception as exc:  # noqa: BLE001 - storage trouble on read is a miss
            log.debug("gamstore: listing %s failed: %s", keyspace, exc)
            io_errors.append(exc)
            cands = []
        now = self._clock()
        ttl_ns = int(self.ttl * 1e9)
        for cand in rank(cands, mode):
            marker = self._state.markers.get(cand.path)
            if marker is None:
                continue
            if marker.key != key or marker.schema != self._schema:
                continue  # folder collision or another schema: never returned
            if ttl_ns and self._expired(cand.path, marker.created, now, ttl_ns):
                self._stats.expired += 1
                if not self.read_only:
                    try:
                        self._delete_path(cand.path)
                    except Exception as exc:  # noqa: BLE001 - a read never raises on I/O
                        log.debug("gamstore: removing expired %s failed: %s", cand.path, exc)
                continue
            entry = self._load(cand.path, marker, io_errors)
            if entry is None:
                if io_errors:
                    # Storage trouble, not a bad entry: the next candidate would most likely
                    # pay the same retry bound again. Stop here (the lookup's deadline is
                    # three request rounds: listing, markers, arrays).
                    break
                continue
            self._stats.hits += 1
            self._note_access(cand.path, now)
            if cand.kind != entry.kind:
                entry = replace(entry, kind=cand.kind)
            return entry
        self._stats.misses += 1
        if io_errors:
            self._stats.read_errors += 1
        return None

    def _scan_key(self, keyspace: str, folder: str) -> list[Candidate]:
        """Committed entries of one key (one listing of its shard on the name prefix
        ``<key64>``, both layouts; markers from cache or GET)."""
        be = self._backend
        st = self._state
        # committed is None on a names-only walk: the marker GET below tells;
        # a names-only walk lists the whole shard: its level doc, if there, is seen for free
        # (a fold looks its key up, then saves under it: that save then writes no shard doc)
        seen: set[str] = set()
        dirs = [
            d for d in walk(be, keyspace, folder=folder, levels=seen) if d.committed is not False
        ]
        if seen - st.level_docs:
            st.remember_levels(sorted(seen))
        paths = [d.path for d in dirs]
        unknown = [d for d in dirs if d.path not in st.markers]
        if unknown:
            blobs = be.get_many(
                [f"{d.path}/{MARKER}" for d in unknown], [MAX_MARKER_BYTES] * len(unknown)
            )
            for d, blob in zip(unknown, blobs, strict=True):
                p = d.path
                if blob is None:
                    continue  # not committed (yet): being written, crashed or deleted
                self._stats.bytes_read += len(blob)
                try:
                    m = codec.parse_marker(blob, keyspace=keyspace, entry_id=d.entry_id)
                except CorruptEntryError as exc:
                    self._corrupt(p, exc)
                    continue
                if m.schema != self._schema:
                    self._corrupt(p, CorruptEntryError(f"schema {m.schema!r}"))
                    continue
                st.remember_marker(p, m)
        out: list[Candidate] = []
        markers = st.markers
        for p in paths:
            known = markers.get(p)
            if known is not None:
                out.append(
                    Candidate(
                        p,
                        known.entry_id,
                        known.created,
                        self._effective_kind(known.kind, known.producer),
                        known.objective,
                    )
                )
        return out

    def _expired(self, path: str, created: int, now: int, ttl_ns: int) -> bool:
        last = max(created, self._state.last_access.get(path, 0))
        if now - last < ttl_ns:
            return False
        # Another process may have read it since: its touch object knows.
        try:
            touched = self._backend.mtime(access_path(path))
        except Exception:  # noqa: BLE001
            touched = None
        if touched is not None and now - touched < ttl_ns:
            self._state.last_access[path] = touched
            return False
        return True

    def _load(
        self, path: str, marker: Marker, io_errors: list[BaseException] | None = None
    ) -> Entry | None:
        """Decode one entry, or None; a storage failure is appended to ``io_errors``."""
        st = self._state
        try:
            # A one-level listing cannot see whether the marker is still there (deletes
            # remove it first): check it. Entries are immutable, so any cached decode holds.
            if not self._backend.flat_listing and self._backend.mtime(f"{path}/{MARKER}") is None:
                st.forget(path)
                return None
            cached = st.decoded.get(path)
            if cached is not None:
                return cached
            rel = codec.marker_object_paths(marker)
            blobs = self._backend.get_many(
                [f"{path}/{r}" for r in rel], codec.marker_object_sizes(marker)
            )
        except Exception as exc:  # noqa: BLE001 - a read failure is a miss, nothing deleted
            log.debug("gamstore: reading %s failed: %s", path, exc)
            if io_errors is not None:
                io_errors.append(exc)
            return None
        self._stats.bytes_read += sum(len(b) for b in blobs if b is not None)
        try:
            arrays = codec.decode_arrays(marker, dict(zip(rel, blobs, strict=True)))
            record = codec.decode_record(marker, arrays, self._resolve)
        except CorruptEntryError as exc:
            # A concurrent delete removes the marker first: then this is just a miss.
            if self._backend.mtime(f"{path}/{MARKER}") is None:
                st.forget(path)
                return None
            self._corrupt(path, exc)
            return None
        entry = Entry(
            record=record,
            keyspace=marker.keyspace,
            key=marker.key,
            entry_id=marker.entry_id,
            kind=marker.kind,
            objective=marker.objective,
            iteration=marker.iteration,
            created=marker.created,
            producer=marker.producer,
            nbytes=marker.nbytes,
            provenance=None if marker.provenance is None else dict(marker.provenance),
            stored_kind=marker.kind,
        )
        st.remember_entry(path, entry)
        return entry

    def _corrupt(self, path: str, exc: Exception, cleanup: bool = True) -> None:
        self._stats.corrupt += 1
        log.debug("gamstore: corrupt entry %s: %s", path, exc)
        self._state.forget(path)
        if cleanup and not self.read_only:
            try:
                self._delete_path(path)
            except Exception as e:  # noqa: BLE001 - cleanup is best effort
                log.debug("gamstore: cleanup of %s failed: %s", path, e)

    # ------------------------------------------------------------------ access touches
    def _note_access(self, path: str, now: int) -> None:
        st = self._state
        st.last_access[path] = now
        if self.read_only:
            return
        last = st.touched.get(path)
        if last is not None and now - last < self.touch_interval * 1e9:
            return
        with st.lock:
            st.touched[path] = now
            st.pending[path] = now
            flush = (
                len(st.pending) >= _TOUCH_FLUSH_COUNT
                or now - min(st.pending.values()) >= _TOUCH_FLUSH_AGE_NS
            )
        if flush:
            self._flush_touches()

    def _flush_touches(self) -> None:
        st = self._state
        if not st.pending or self.read_only:
            return
        with st.lock:
            pending, st.pending = st.pending, {}
        try:
            self._backend.touch_many([access_path(p) for p in pending])
            if ACCESS_DIR not in st.level_docs:
                self._write_placeholder(ACCESS_DIR)
        except Exception as exc:  # noqa: BLE001 - a lost touch only ages the entry
            log.debug("gamstore: touching %d entries failed: %s", len(pending), exc)

    def flush(self) -> None:
        """Write the access touches that lookups deferred (so reads stay reads)."""
        self._flush_touches()

    # ------------------------------------------------------------------ listing
    def _iter_infos(
        self,
        keyspace: str | None = None,
        shard: str | None = None,
        *,
        uncommitted: list[str] | None = None,
        corrupt: list[str] | None = None,
    ) -> Iterator[EntryInfo]:
        """Committed entries (optionally one keyspace and/or one ``<kk>`` shard).

        Markerless entries are appended to ``uncommitted``; entries whose marker does not
        parse are cleaned up, or only appended to ``corrupt`` when that list is given.
        """
        be = self._backend
        if be.flat_listing and keyspace is None and shard is None:
            # one listing of the whole root gives marker presence, sizes and touch times
            seen: list[Any] = []
            dirs = list(walk(be, seen=seen))
            access = touch_times(be, listed=seen)
        else:
            access = touch_times(be, keyspace, shard=shard)
            dirs = list(walk(be, keyspace, shard=shard))
        yield from self._committed_infos(dirs, access, uncommitted, corrupt)

    def _committed_infos(
        self,
        dirs: list[EntryDir],
        access: Mapping[str, int],
        uncommitted: list[str] | None = None,
        corrupt: list[str] | None = None,
    ) -> Iterator[EntryInfo]:
        """:class:`EntryInfo` of the committed ones among walked entry folders.

        A flat listing already says which are committed and their sizes; after a names-only
        walk the markers say (read per key folder, unless cached).
        """
        st = self._state
        i = 0
        while i < len(dirs):
            d = dirs[i]
            if d.committed is not None:
                i += 1
                if not d.committed:
                    if uncommitted is not None:
                        uncommitted.append(d.path)
                    continue
                info = self._make_info(d, d.nbytes, access.get(d.path))
                if info is not None:
                    yield info
                continue
            # names-only walk: the entries of one key folder, their markers in one round
            j = i
            while j < len(dirs) and dirs[j].folder == d.folder and dirs[j].keyspace == d.keyspace:
                j += 1
            group = dirs[i:j]
            i = j
            unknown = [g for g in group if g.path not in st.markers]
            if unknown:
                blobs = self._backend.get_many(
                    [f"{g.path}/{MARKER}" for g in unknown], [MAX_MARKER_BYTES] * len(unknown)
                )
                for g, blob in zip(unknown, blobs, strict=True):
                    if blob is None:
                        if uncommitted is not None:
                            uncommitted.append(g.path)
                        continue
                    try:
                        m = codec.parse_marker(blob, keyspace=g.keyspace, entry_id=g.entry_id)
                    except CorruptEntryError as exc:
                        self._corrupt(g.path, exc, cleanup=corrupt is None)
                        if corrupt is not None:
                            corrupt.append(g.path)
                        continue
                    st.remember_marker(g.path, m)
            for g in group:
                known = st.markers.get(g.path)
                if known is None:
                    continue
                info = self._make_info(g, known.nbytes, access.get(g.path))
                if info is not None:
                    yield info

    def _make_info(self, d: EntryDir, nbytes: int, touched: int | None) -> EntryInfo | None:
        created = parse_created(d.entry_id)
        if created is None:
            return None
        known = self._state.last_access.get(d.path)
        if known is not None:
            touched = known if touched is None else max(known, touched)
        return EntryInfo(
            keyspace=d.keyspace,
            folder=d.folder,
            entry_id=d.entry_id,
            created=created,
            nbytes=nbytes,
            last_access=touched,
            path=d.path,
        )

    def entries(self, keyspace: str | None = None) -> Iterator[EntryInfo]:
        """Iterate over committed entries (listing only; nothing is decoded)."""
        if keyspace is not None:
            check_keyspace(keyspace)
        return self._iter_infos(keyspace)

    def listing(self, keyspace: str) -> Listing:
        """Walk ``keyspace`` once: its entry paths now, its committed entries on demand.

        On local disk and in memory this is a names-only walk (no marker read): a caller
        that only compares paths (the catalog's currency check) pays nothing more, and
        ``infos()`` later reads the markers without walking again. On object stores the one
        flat listing gives both.

        Parameters
        ----------
        keyspace : str
            One of the keyspaces (``gamstore.store.KEYSPACES``).

        Returns
        -------
        Listing
            ``method``, ``paths`` and ``infos()`` (see :class:`~gamstore.store.Listing`).

        Raises
        ------
        ValueError
            If ``keyspace`` is unknown.
        """
        check_keyspace(keyspace)
        be = self._backend
        dirs = list(walk(be, keyspace))
        if be.flat_listing:
            infos = list(self._committed_infos(dirs, touch_times(be, keyspace)))
            return Listing(keyspace, "entries", tuple(i.path for i in infos), lambda: infos)

        def load() -> list[EntryInfo]:
            return list(self._committed_infos(dirs, touch_times(be, keyspace)))

        return Listing(keyspace, "walk", tuple(d.path for d in dirs), load)

    def committed(self, path: str) -> bool:
        """Whether the entry at ``path`` has its marker now (one HEAD, nothing cached).

        Parameters
        ----------
        path : str
            An entry path (``EntryInfo.path`` or one of ``Listing.paths``).

        Returns
        -------
        bool

        Raises
        ------
        ValueError
            If ``path`` is not an entry path of the layout.
        Exception
            Storage failures propagate (the caller decides what unknown means).
        """
        if not isinstance(path, str) or split_entry_path(path) is None:
            raise ValueError(f"path: not an entry path: {path!r:.120}")
        return self._backend.mtime(f"{path}/{MARKER}") is not None

    @property
    def flat_listing(self) -> bool:
        """True on object stores: one listing says which entries are committed, and every
        read is a network round trip (worth running many at once). False on local disk and
        in memory."""
        return bool(self._backend.flat_listing)

    def read_marker(self, info: EntryInfo) -> dict[str, Any] | None:
        """Return ``attrs["gamstore"]`` of a listed entry (one GET), or None if unreadable."""
        m = self._marker(info)
        if m is None:
            return None
        import copy

        return copy.deepcopy(m.attrs)

    def _marker(self, info: EntryInfo) -> Marker | None:
        """The parsed marker of a listed entry (cached; one GET otherwise), or None."""
        m = self._state.markers.get(info.path)
        if m is None:
            try:
                blob = self._backend.get(f"{info.path}/{MARKER}", MAX_MARKER_BYTES)
            except Exception as exc:  # noqa: BLE001 - unreadable: None, counted
                log.debug("gamstore: reading the marker of %s failed: %s", info.path, exc)
                self._stats.read_errors += 1
                return None
            if blob is None:
                return None
            try:
                m = codec.parse_marker(blob, keyspace=info.keyspace, entry_id=info.entry_id)
            except CorruptEntryError:
                self._stats.corrupt += 1
                return None
            self._state.remember_marker(info.path, m)
        return m

    def read_entry(self, info: EntryInfo) -> Entry | None:
        """Fully decode and verify one listed entry (no access touch), or None."""
        m = self._marker(info)  # no copy of the attrs: nothing here hands them out
        if m is None or m.schema != self._schema:
            return None
        io_errors: list[BaseException] = []
        entry = self._load(info.path, m, io_errors)
        if entry is None:
            if io_errors:
                self._stats.read_errors += 1
            return None
        kind = self._effective_kind(entry.kind, entry.producer)
        return entry if kind == entry.kind else replace(entry, kind=kind)

    # ------------------------------------------------------------------ deletion
    def _delete_path(self, path: str) -> bool:
        """Delete one entry: marker first (it disappears atomically), then the payload."""
        self._state.forget(path)
        existed = self._backend.delete(f"{path}/{MARKER}")
        self._backend.delete_prefix(path)
        self._backend.delete(access_path(path))
        return existed

    def delete_entry(self, info: EntryInfo) -> bool:
        """Delete a listed entry; return False if its marker was already gone."""
        self._check_writable()
        if split_entry_path(info.path) is None:
            raise ValueError(f"info.path: not an entry path: {info.path!r}")
        return self._delete_path(info.path)

    # ------------------------------------------------------------------ export / import
    def export_entry(self, info: EntryInfo) -> ExportedEntry:
        """One listed entry as data: its marker attributes and its verified arrays.

        Parameters
        ----------
        info : EntryInfo
            A listed entry (from :meth:`entries`).

        Returns
        -------
        ExportedEntry
            ``attrs`` (a private copy of the marker's ``attrs["gamstore"]``) and ``arrays``
            (path in the entry -> :class:`~gamstore.records.ArrayPart`), every array
            checked against the marker's shape, dtype and digest.

        Raises
        ------
        ValueError
            If the entry is unreadable, corrupt or its arrays differ from its marker.
        """
        attrs = self.read_marker(info)
        entry = self.read_entry(info) if attrs is not None else None
        if attrs is None or entry is None:
            raise ValueError("unreadable or corrupt")
        # the arrays as stored (format 2 packs them), so an import rebuilds the same bytes
        arrays = codec.stored_arrays(attrs, entry.record.to_parts().arrays)
        specs = attrs.get("arrays", {})
        if set(arrays) != set(specs):
            raise ValueError("record arrays differ from the stored ones")
        for name, part in arrays.items():
            portable.check_against_marker(name, np.asarray(part.data), specs[name])
        return ExportedEntry(info=info, attrs=attrs, arrays=arrays)

    def import_entry(
        self,
        attrs: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        *,
        path: str | None = None,
    ) -> ImportResult:
        """Commit an exported entry under its own entry id (the inverse of :meth:`export_entry`).

        Everything is checked before anything is written: the keyspace, the entry id and
        its creation time, the key folder (against ``path`` if given), every number within
        int64, the sizes within the per-entry cap, every array against the marker's shape,
        dtype, dimension names and digest, and the rebuilt marker through the strict
        parser. Then the payload objects, the folder levels and, last and create-only, the
        marker are written, and the entry is re-read; one that does not verify is removed.
        Export then import gives byte-identical objects.

        Parameters
        ----------
        attrs : mapping
            The marker's ``attrs["gamstore"]`` (plain JSON values, as from a strict reader).
        arrays : mapping of str to numpy.ndarray
            Every array the marker declares, by its path in the entry.
        path : str, optional
            Where the entry came from (``<keyspace>/<kk>/<key64>.<entry id>``, or the layout-1
            ``<keyspace>/<kk>/<key64>/<entry id>``); refused
            unless it is where the entry belongs.

        Returns
        -------
        ImportResult
            ``status`` "imported", "exists" (already present, untouched) or "refused"
            (with ``reason``; nothing of the entry is left in the store).

        Raises
        ------
        ReadOnlyStoreError
            On a read-only store.
        """
        self._check_writable()
        try:
            ks, key, entry_id, entry_path = portable.check_import_attrs(attrs, path, self.layout)
            payload, marker = portable.entry_objects(attrs, arrays, ks, entry_id)
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            return ImportResult("refused", path or "", str(exc))
        backend = self._backend
        if backend.get(f"{entry_path}/{MARKER}") is not None:
            return ImportResult("exists", entry_path)
        backend.put_many({f"{entry_path}/{rel}": data for rel, data in payload.items()})
        # the keyspace, shard and key folders are Zarr groups too (as a save makes them)
        self.ensure_levels(ks, key)
        if not backend.put_if_absent(f"{entry_path}/{MARKER}", marker):
            return ImportResult("exists", entry_path)  # a concurrent import committed it
        folder = key_folder(ks, key)
        info = EntryInfo(
            keyspace=ks,
            folder=folder,
            entry_id=entry_id,
            created=int(attrs["created"]),
            nbytes=len(marker) + sum(len(b) for b in payload.values()),
            last_access=None,
            path=entry_path,
        )
        if self.read_entry(info) is None:
            self.delete_entry(info)
            return ImportResult("refused", entry_path, "did not verify in the target store")
        return ImportResult("imported", entry_path)

    # ------------------------------------------------------------------ eviction
    def _after_save(self, folder: str, nbytes: int, path: str) -> None:
        """Run the eviction sweep a save may trigger (it never evicts ``path``, the entry
        just saved: an acknowledged save is there for the next lookup)."""
        st = self._state
        with st.lock:
            n = st.save_counter
            st.save_counter += 1
            every = self.sweep_every
            if st.shard_bytes is not None and st.shard_counts is not None:
                st.shard_bytes[int(folder[:2], 16)] += nbytes
                st.shard_counts[int(folder[:2], 16)] += 1
                # A shard sweep lists about one shard's keys: space sweeps out as shards grow,
                # so the listings per save stay constant however big the store gets.
                every = max(every, sum(st.shard_counts) // N_SHARDS)
            over = st.shard_bytes is not None and sum(st.shard_bytes) > self.budget_bytes
            due = n == 0 or over or n - st.last_sweep_save >= every
            if due:
                st.last_sweep_save = n
        if due:
            try:
                self._sweep(over, hint=int(folder[:2], 16), keep=path)
            except Exception as exc:  # noqa: BLE001 - eviction errors are only logged
                log.warning("gamstore: eviction sweep on %s failed (%s)", self.url, exc)

    def _sweep(self, over: bool, hint: int = 0, keep: str | None = None) -> int:
        st = self._state
        self._stats.sweeps += 1
        shard_bytes, shard_counts = st.shard_bytes, st.shard_counts
        if shard_bytes is None or shard_counts is None:
            # First sweep of this root in this process: sample one shard before deciding,
            # so a new process on a big store does not walk all of it on its first save.
            sample = list(self._iter_infos(shard=f"{hint:02x}"))
            sample_bytes = sum(i.nbytes for i in sample)
            if len(sample) * N_SHARDS <= FULL_SWEEP_MAX_ENTRIES or self._budget_too_small(
                over, sample_bytes, len(sample)
            ):
                return self._full_sweep(over, keep)
            gone, kept = self._evict_among(sample, self._target(over) // N_SHARDS, keep)
            n_kept = len(sample) - len(gone)
            with st.lock:  # other shards: assume the sampled one is typical
                st.shard_bytes = [kept] * N_SHARDS
                st.shard_counts = [n_kept] * N_SHARDS
                st.sweeps_since_full = 0
            return len(gone)
        if (
            sum(shard_counts) <= FULL_SWEEP_MAX_ENTRIES
            or st.sweeps_since_full >= FULL_EVERY
            or self._budget_too_small(over, sum(shard_bytes), sum(shard_counts))
        ):
            return self._full_sweep(over, keep)
        with st.lock:
            if over:  # work where the bytes are
                k = max(range(N_SHARDS), key=shard_bytes.__getitem__)
            else:
                k = st.shard_cursor
                st.shard_cursor = (k + 1) % N_SHARDS
            st.sweeps_since_full += 1
        infos = list(self._iter_infos(shard=f"{k:02x}"))
        gone, kept = self._evict_among(infos, self._target(over) // N_SHARDS, keep)
        with st.lock:
            shard_bytes[k] = kept
            shard_counts[k] = len(infos) - len(gone)
        return len(gone)

    def _budget_too_small(self, over: bool, nbytes: int, count: int) -> bool:
        """True when one shard's share of the budget holds fewer than 4 typical entries.

        A shard sweep holds its shard to ``target / 256``; with entries that big against the
        budget, a shard holding one or two entries reads as over budget and they were evicted
        from a store far below it (measured: 1 of 60 entries of 1.1 KB under a 1 MiB budget,
        and the only entry of a new store under a 200 KB one). Such a store holds at most
        about 1 000 entries, so a full sweep stays cheap.
        """
        return count > 0 and self._target(over) // N_SHARDS < 4 * (nbytes / count)

    def _target(self, over: bool) -> int:
        # An overflow sweep frees LOW_WATER headroom, so a cache that sits at its budget
        # sweeps once per many saves instead of on every save.
        return int(self.budget_bytes * LOW_WATER) if over else self.budget_bytes

    def _full_sweep(self, over: bool = False, keep: str | None = None) -> int:
        st = self._state
        self._stats.full_sweeps += 1
        infos = list(self._iter_infos())
        gone, _kept = self._evict_among(infos, self._target(over), keep)
        shard_bytes = [0] * N_SHARDS
        shard_counts = [0] * N_SHARDS
        for info in infos:
            if info.path not in gone:
                k = int(info.folder[:2], 16)
                shard_bytes[k] += info.nbytes
                shard_counts[k] += 1
        with st.lock:
            st.shard_bytes = shard_bytes
            st.shard_counts = shard_counts
            st.sweeps_since_full = 0
        return len(gone)

    def _evict_among(
        self, infos: list[EntryInfo], budget: int, keep: str | None = None
    ) -> tuple[set[str], int]:
        """Drop expired entries, then evict to ``budget`` (never ``keep``, the entry a save
        just wrote); return (removed paths, bytes kept)."""
        now = self._clock()
        ttl_ns = int(self.ttl * 1e9)
        live: list[EntryInfo] = []
        gone: list[str] = []
        for info in infos:
            if is_expired(info, now, ttl_ns):
                self._delete_path(info.path)
                self._stats.expired += 1
                gone.append(info.path)
            else:
                live.append(info)
        victims = plan_eviction(live, budget, keep=keep)
        for info in victims:
            self._delete_path(info.path)
            self._stats.evictions += 1
            gone.append(info.path)
        kept = sum(i.nbytes for i in live) - sum(i.nbytes for i in victims)
        return set(gone), kept

    def evict(self) -> int:
        """Run a full eviction sweep now (TTL, then budget); return entries removed."""
        self._check_writable()
        self.require_root()
        self._flush_touches()
        return self._full_sweep()

    # ------------------------------------------------------------------ maintenance
    def gc(self, grace: float = 3600.0) -> GcReport:
        """Remove markerless payloads and stray temp files older than ``grace`` seconds,
        and touch objects of entries that no longer exist (see :func:`maintenance.gc`)."""
        from gamstore.store import maintenance

        if not _is_seconds(grace, MAX_TTL):  # inf, NaN, 10**400: a clear error, not OverflowError
            raise ValueError(f"grace: expected seconds in [0, {MAX_TTL:g}], got {grace!r:.40}")
        self._check_writable()
        self.require_root()
        self._flush_touches()
        return maintenance.gc(self._housekeeping(), grace)

    def verify(self, fix: bool = False) -> VerifyReport:
        """Fully decode every committed entry; with ``fix=True`` delete the corrupt ones."""
        from gamstore.store import maintenance

        if fix:
            self._check_writable()
        self.require_root()  # a folder that is not a store is an error, not "0 checked, ok"
        return maintenance.verify(self._housekeeping(), fix)

    def _housekeeping(self) -> Any:
        """The narrow part of this store that ``gc`` and ``verify`` use."""
        from gamstore.store.maintenance import Housekeeping

        return Housekeeping(
            backend=self._backend,
            state=self._state,
            clock=self._clock,
            resolve=self._resolve,
            committed_infos=self._iter_infos,
            delete_path=self._delete_path,
        )

    def stats(self) -> StoreStats:
        """Counters of this handle (requests as counted by the backend)."""
        s = replace(self._stats)
        s.requests = self._backend.requests.copy()
        s.foreign = int(getattr(self._backend, "foreign", 0))
        return s

    def error_count(self, counter: str) -> int:
        """``stats().read_errors`` or ``stats().save_errors``, without copying the stats.

        Parameters
        ----------
        counter : {"read_errors", "save_errors"}
            Which counter.

        Returns
        -------
        int
        """
        if counter not in ("read_errors", "save_errors"):
            raise ValueError(f"counter: expected 'read_errors' or 'save_errors', got {counter!r}")
        return int(getattr(self._stats, counter))

    # ------------------------------------------------------------------ sessions
    def session(self, key: str, keyspace: str = "outer") -> Session:
        """Open a checkpoint session: one logical slot for one in-flight fit."""
        from gamstore.store.session import Session

        check_keyspace(keyspace)
        key_folder(keyspace, key)  # validates the key
        return Session(self, keyspace, key)

    # ------------------------------------------------------------------ raw catalog objects
    def _catalog_path(self, path: str) -> str:
        from gamstore.store.backend import check_path

        if not path:
            raise ValueError("path: expected a non-empty relative path")
        if path == MARKER:
            raise ValueError(f"path: {MARKER!r} at the top of {CATALOG_DIR} is the store's own")
        return f"{CATALOG_DIR}/{check_path(path)}"

    def put_raw(self, path: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Write an object under ``<root>/.catalog/``; with ``if_absent`` create-only.

        Returns False only when ``if_absent`` and the object exists.
        """
        self._check_writable()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data: expected bytes, got {type(data).__name__}")
        full = self._catalog_path(path)
        if CATALOG_DIR not in self._state.level_docs:
            self._write_placeholder(CATALOG_DIR)
        if if_absent:
            return self._backend.put_if_absent(full, bytes(data))
        self._backend.put(full, bytes(data))
        return True

    def get_raw(self, path: str, max_bytes: int | None = None) -> bytes | None:
        """Read an object under ``<root>/.catalog/`` (None if missing).

        With ``max_bytes``, at most ``max_bytes + 1`` bytes are read (see
        :meth:`Backend.get`), so an oversize object is detected without loading it.
        """
        return self._backend.get(self._catalog_path(path), max_bytes)

    def list_raw(self, prefix: str = "") -> list[tuple[str, int, int]]:
        """List objects under ``<root>/.catalog/<prefix>`` as (path, size, mtime ns)."""
        base = f"{CATALOG_DIR}/{prefix}".rstrip("/") if prefix else CATALOG_DIR
        if prefix:
            self._catalog_path(prefix)
        cut = len(CATALOG_DIR) + 1
        return sorted(
            (o.path[cut:], o.size, o.mtime)
            for o in self._backend.list(base)
            if o.path != f"{CATALOG_DIR}/{MARKER}"  # the placeholder, not a catalog object
        )

    def delete_raw(self, path: str) -> bool:
        """Delete an object under ``<root>/.catalog/``."""
        self._check_writable()
        return self._backend.delete(self._catalog_path(path))

    def prune_raw(self, prefix: str = "") -> None:
        """Remove the empty folders at and below ``<root>/.catalog/<prefix>`` (never an
        object, never anything outside ``.catalog``, never through a symlink)."""
        self._check_writable()
        self._backend.prune_empty(self._catalog_path(prefix) if prefix else CATALOG_DIR)

    # ------------------------------------------------------------------ zarr interop
    def zarr_store(self, read_only: bool = True) -> Any:
        """A ``zarr.abc.store.Store`` on the same root, for plain zarr and xarray.

        Writing through it bypasses the commit protocol; it is read-only by default.
        """
        from gamstore.store.zarr_bridge import zarr_store_for

        if not read_only:
            self._check_writable()
        return zarr_store_for(self._backend, read_only=read_only)
