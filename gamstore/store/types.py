"""Plain value types returned by :class:`gamstore.store.Store`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gamstore.store.keyspaces import KEYSPACES

__all__ = [
    "KEYSPACES",
    "KINDS",
    "Entry",
    "EntryInfo",
    "Listing",
    "GcReport",
    "StoreStats",
    "VerifyReport",
]

#: Entry kinds as written. A ``final`` from another producer reads back as ``checkpoint``.
KINDS: tuple[str, ...] = ("checkpoint", "final")


@dataclass(frozen=True)
class Entry:
    """One committed, verified entry as returned by a lookup.

    Attributes
    ----------
    record : Any
        The decoded record object (``RECORD_TYPES[record_type].from_parts(...)``).
    keyspace, key : str
        Where it was stored; ``key`` is the caller's key string read back from the attrs.
    entry_id : str
        Sortable id: creation ns (16 hex) ``-`` producer short id ``-`` random suffix.
    kind : str
        ``"checkpoint"`` or ``"final"`` as read: a ``final`` written by another producer
        reads as ``"checkpoint"`` (it never certifies somebody else's fit); lookups rank by
        this kind.
    objective : float or None
        Finite objective, or None.
    iteration : int or None
        The caller's iteration counter.
    created : int
        Creation time, ns since the epoch.
    producer : str
        Identity of the process that wrote the entry.
    nbytes : int
        Total bytes of the entry's objects.
    provenance : dict or None
        Which fit on which data wrote it (``response``, ``covariates``, ``n_rows``,
        ``subject_column``, ``held_out``, ``run_id``, ``gamstore_version``; see
        :mod:`gamstore.store.provenance`); None for entries written before it existed.
    stored_kind : str
        The kind as written (what an inspection shows); equal to ``kind`` except for a
        foreign ``final``. Defaults to ``kind``.
    """

    record: Any
    keyspace: str
    key: str
    entry_id: str
    kind: str
    objective: float | None
    iteration: int | None
    created: int
    producer: str
    nbytes: int
    provenance: dict[str, Any] | None = None
    stored_kind: str = ""

    def __post_init__(self) -> None:
        if not self.stored_kind:
            object.__setattr__(self, "stored_kind", self.kind)


@dataclass(frozen=True)
class EntryInfo:
    """One listed entry (committed: its marker exists), known without reading it.

    Attributes
    ----------
    keyspace : str
        The keyspace.
    folder : str
        64-hex folder of the key.
    entry_id : str
        The entry id (sortable by creation time).
    created : int
        Creation ns parsed from the entry id.
    nbytes : int
        Total bytes of the entry's objects.
    last_access : int or None
        ns of the last recorded access (touch object mtime), None if never accessed.
    path : str
        ``"<keyspace>/<kk>/<folder>.<entry_id>"`` relative to the store root (layout 1:
        ``"<keyspace>/<kk>/<folder>/<entry_id>"``).
    """

    keyspace: str
    folder: str
    entry_id: str
    created: int
    nbytes: int
    last_access: int | None
    path: str


class Listing:
    """One walk of one keyspace: every entry folder it found, and the committed entries.

    Made by :meth:`Store.listing <gamstore.store.Store.listing>`; the catalog compares
    ``paths`` with the ones it was built from, and reads ``infos()`` only when it is stale,
    so a current catalog costs one walk and no marker read.

    Attributes
    ----------
    keyspace : str
        The keyspace walked.
    method : {"entries", "walk"}
        ``"entries"`` on object stores: their one flat listing already says which entries
        are committed, and ``paths`` are the committed ones. ``"walk"`` on local disk and in
        memory: a names-only walk that read no marker, so ``paths`` may include entries still
        being written (no marker yet).
    paths : tuple of str
        Entry paths found (``EntryInfo.path``), sorted.
    """

    __slots__ = ("_infos", "_load", "keyspace", "method", "paths")

    def __init__(
        self,
        keyspace: str,
        method: str,
        paths: tuple[str, ...],
        load: Callable[[], list[EntryInfo]],
    ) -> None:
        self.keyspace = keyspace
        self.method = method
        self.paths = paths
        self._load = load
        self._infos: list[EntryInfo] | None = None

    def infos(self) -> list[EntryInfo]:
        """The committed entries of the walk, sorted by path (computed once).

        After a ``"walk"`` this reads the markers not cached yet (one round per key folder)
        and lists the touch objects; no folder is walked again.
        """
        if self._infos is None:
            self._infos = self._load()
        return list(self._infos)

    def __repr__(self) -> str:
        return f"Listing({self.keyspace!r}, {self.method!r}, {len(self.paths)} paths)"


@dataclass
class StoreStats:
    """Counters of one :class:`~gamstore.store.Store` handle since it was opened.

    ``requests`` counts backend requests by kind (``get``, ``put``, ``put_if_absent``,
    ``list``, ``delete``, ``touch``, ``head``); on S3 each is one HTTP request.

    ``read_errors`` counts reads (``lookup``, ``lookup_latest``, ``read_entry``,
    ``read_marker``, session loads) that met a storage failure (unreachable, timed out,
    refused, cut off): each returned None, and a failed lookup is also one of ``misses``. So
    ``misses`` with ``read_errors == 0`` is an empty cache, ``read_errors`` close to
    ``misses`` an unreachable one.

    ``foreign`` counts symlinks and special files (FIFOs, devices, sockets) the backend met
    below the root and refused to follow or open (local stores; always 0 elsewhere).
    """

    hits: int = 0
    misses: int = 0
    saves: int = 0
    save_errors: int = 0
    read_errors: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    evictions: int = 0
    expired: int = 0
    corrupt: int = 0
    sweeps: int = 0
    full_sweeps: int = 0
    foreign: int = 0
    requests: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as plain JSON-compatible builtins."""
        out = asdict(self)
        out["requests"] = dict(sorted(self.requests.items()))
        return out


@dataclass(frozen=True)
class GcReport:
    """What :meth:`Store.gc` removed.

    Attributes
    ----------
    payloads : int
        Markerless entry payloads older than the grace period that were removed.
    temps : int
        Stray temporary files removed.
    access : int
        Touch objects whose entry no longer exists, removed.
    bytes_freed : int
        Sum of the sizes of removed objects (as listed).
    level_docs : int
        Zarr level docs (``zarr.json`` of keyspace, shard and key folders, and the
        ``.access``/``.catalog`` placeholders) written because the folder lacked one: a store
        of the previous layout becomes one Zarr hierarchy.
    """

    payloads: int = 0
    temps: int = 0
    access: int = 0
    bytes_freed: int = 0
    level_docs: int = 0


@dataclass(frozen=True)
class VerifyReport:
    """Result of :meth:`Store.verify`.

    Attributes
    ----------
    checked : int
        Committed entries fully decoded.
    ok : int
        Entries that verified.
    corrupt : tuple of str
        Paths of entries that failed verification.
    uncommitted : int
        Markerless payloads seen (``gc`` removes them after the grace period).
    fixed : int
        Corrupt entries deleted (only with ``fix=True``).
    vanished : int
        Entries listed but deleted before they were read (evicted or expired by a
        concurrent process): neither ok nor corrupt, not counted in ``checked``.
    reasons : tuple of str
        Why each entry of ``corrupt`` failed, in the same order: which object or array and
        which check (e.g. ``"array 'values': chunk values/0 fails its BLAKE3 digest check"``).
    """

    checked: int = 0
    ok: int = 0
    corrupt: tuple[str, ...] = ()
    uncommitted: int = 0
    fixed: int = 0
    vanished: int = 0
    reasons: tuple[str, ...] = ()
