"""Walk a store's listing: entry infos, the listing signature, and decoded rows.

The *listing signature* of a keyspace is a digest of the sorted paths of its entries.
Entries are immutable and their ids unique, so equal signatures mean the same entries with
the same contents: that is how the catalog knows it is still current. It is computed the
cheapest way the backend allows:

* ``"entries"`` (object stores, whose one flat listing already says which entries are
  committed): the paths of ``store.entries(keyspace)``;
* ``"walk"`` (local disk, memory): the entry folders found by a names-only walk of
  ``<keyspace>/<kk>/<key>/``, which reads no marker. A folder may hold an entry still being
  written (no marker yet); the catalog writer records those as *pending*, and a reader
  treats the catalog as stale once any pending entry has committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import blake3

from gamstore.store import is_entry_id
from gamstore.store.layout import is_folder_name, is_shard_name
from gamstore.views.extract import UnsupportedRecordError, row_from_entry
from gamstore.views.rows import FitRow, layout_for

__all__ = [
    "ListingState",
    "list_infos",
    "listing_signature",
    "listing_state",
    "pending_committed",
    "read_rows",
    "with_stored_kind",
]

log = logging.getLogger("gamstore.views")

# reads overlap I/O waits: many for object stores (network latency), a few on local disk
_REMOTE_WORKERS = 16
_LOCAL_WORKERS = 4
_MARKER = "zarr.json"

Progress = Callable[[int], None]


def list_infos(store: Any, keyspace: str) -> list[Any]:
    """Committed entries of ``keyspace`` (listing only), sorted by path.

    Raises
    ------
    ValueError
        If ``keyspace`` is unknown.
    """
    layout_for(keyspace)  # clear error before any I/O
    return sorted(store.entries(keyspace), key=lambda info: info.path)


def listing_signature(paths: Iterable[str]) -> str:
    """64-hex digest of a set of entry paths (order does not matter)."""
    h = blake3.blake3(b"gamstore-listing-v1\n")
    for path in sorted(paths):
        h.update(path.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class ListingState:
    """The listing signature of one keyspace and how it was taken.

    Attributes
    ----------
    method : {"entries", "walk"}
    signature : str
    paths : tuple of str
        Entry paths the signature covers (for ``"walk"`` committed or not).
    infos : list or None
        The committed :class:`~gamstore.store.EntryInfo` list when the method produced it
        (``"entries"``), so a caller that needs it does not list twice.
    """

    method: str
    signature: str
    paths: tuple[str, ...]
    infos: list[Any] | None = None


def _walk_paths(backend: Any, keyspace: str) -> list[str]:
    paths: list[str] = []
    for kk in filter(is_shard_name, backend.list_dir(keyspace)):
        for folder in filter(is_folder_name, backend.list_dir(f"{keyspace}/{kk}")):
            prefix = f"{keyspace}/{kk}/{folder}"
            paths.extend(f"{prefix}/{n}" for n in backend.list_dir(prefix) if is_entry_id(n))
    return paths


def listing_state(store: Any, keyspace: str) -> ListingState:
    """Take the cheapest listing signature of ``keyspace`` (see the module notes)."""
    layout_for(keyspace)
    backend = getattr(store, "backend", None)
    if backend is not None and not getattr(backend, "flat_listing", True):
        paths = _walk_paths(backend, keyspace)
        return ListingState("walk", listing_signature(paths), tuple(sorted(paths)))
    infos = list_infos(store, keyspace)
    paths = [info.path for info in infos]
    return ListingState("entries", listing_signature(paths), tuple(paths), infos)


def pending_committed(store: Any, pending: Sequence[str]) -> bool:
    """True if any entry that had no marker when the catalog was written has one now."""
    backend = getattr(store, "backend", None)
    if backend is None:
        return bool(pending)
    for path in pending:
        try:
            if backend.mtime(f"{path}/{_MARKER}") is not None:
                return True
        except Exception:  # noqa: BLE001 - unknown state: do not trust the catalog
            return True
    return False


def with_stored_kind(store: Any, info: Any, entry: Any) -> Any:
    """``entry`` with its kind as stored.

    A store reads a ``final`` written by another process as a ``checkpoint`` (so it never
    certifies someone else's fit); an inspection shows what was written.
    """
    if entry.kind == "final" or entry.producer == getattr(store, "producer", None):
        return entry  # only a foreign final is ever read differently from how it was stored
    marker = store.read_marker(info)
    kind = marker.get("kind") if isinstance(marker, dict) else None
    if kind in ("checkpoint", "final") and kind != entry.kind:
        return replace(entry, kind=kind)
    return entry


def _workers(store: Any) -> int:
    backend = getattr(store, "backend", None)
    return _REMOTE_WORKERS if getattr(backend, "flat_listing", False) else _LOCAL_WORKERS


def _load_record_types() -> None:
    # The record registry imports its registering modules (gamstore.artifact) on the first
    # lookup, and a lookup racing that import from another thread misses the type (the
    # entry would read as corrupt). Finish the import here, before any worker starts.
    try:
        from gamstore.records import RECORD_TYPES
    except ImportError:  # pragma: no cover - the model layer is part of the package
        return
    RECORD_TYPES.get("")


def read_rows(
    store: Any, infos: Sequence[Any], *, progress: Progress | None = None
) -> tuple[list[FitRow], int]:
    """Decode every listed entry into a row.

    Entries that vanished, fail verification or hold a record the views cannot tabulate are
    skipped (logged at DEBUG), exactly as a lookup would treat them as misses.

    Returns
    -------
    rows : list of FitRow
    skipped : int
        How many listed entries gave no row.
    """

    def one(info: Any) -> FitRow | None:
        entry = store.read_entry(info)
        if entry is None:
            log.debug("gamstore.views: entry %s unreadable, skipped", info.path)
            return None
        entry = with_stored_kind(store, info, entry)
        try:
            return row_from_entry(entry)
        except UnsupportedRecordError as exc:
            log.debug("gamstore.views: entry %s skipped: %s", info.path, exc)
            return None

    rows: list[FitRow] = []
    skipped = 0
    _load_record_types()
    with ThreadPoolExecutor(max_workers=max(1, min(_workers(store), len(infos)))) as pool:
        results: Iterable[FitRow | None] = pool.map(one, infos)
        for row in results:
            if row is None:
                skipped += 1
            else:
                rows.append(row)
            if progress is not None:
                progress(1)
    return rows, skipped
