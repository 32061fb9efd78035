"""Walk a store's listing: entry infos, the listing signature, and decoded rows.

The *listing signature* of a keyspace is a digest of the sorted paths of its entries.
Entries are immutable and their ids unique, so equal signatures mean the same entries with
the same contents: that is how the catalog knows it is still current. It is taken from one
:meth:`Store.listing <gamstore.store.Store.listing>`, the cheapest way the backend allows:

* ``"entries"`` (object stores, whose one flat listing already says which entries are
  committed): the paths of the committed entries;
* ``"walk"`` (local disk, memory): the entry folders found by a names-only walk, which reads
  no marker. A folder may hold an entry still being written (no marker yet); the catalog
  writer records those as *pending*, and a reader treats the catalog as stale once any
  pending entry has committed.

Either way the keyspace is walked once: the committed entries come from the same listing
(:meth:`ListingState.infos`) when the catalog is stale or not wanted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import blake3

from gamstore.views.extract import UnsupportedRecordError, row_from_entry
from gamstore.views.rows import FitRow, layout_for

__all__ = [
    "ListingState",
    "as_stored",
    "list_infos",
    "listing_signature",
    "listing_state",
    "pending_committed",
    "read_rows",
]

log = logging.getLogger("gamstore.views")

# reads overlap I/O waits: many for object stores (network latency), a few on local disk
_REMOTE_WORKERS = 16
_LOCAL_WORKERS = 4

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
    """The listing signature of one keyspace and the one listing it was taken from.

    Attributes
    ----------
    method : {"entries", "walk"}
    signature : str
    paths : tuple of str
        Entry paths the signature covers (for ``"walk"`` committed or not).
    listing : gamstore.store.Listing
        The store's listing, whose committed entries :meth:`infos` gives without
        walking again.
    """

    method: str
    signature: str
    paths: tuple[str, ...]
    listing: Any

    def infos(self) -> list[Any]:
        """Committed entries of the listing, sorted by path."""
        return list(self.listing.infos())


def listing_state(store: Any, keyspace: str) -> ListingState:
    """Walk ``keyspace`` once and take its listing signature (see the module notes)."""
    layout_for(keyspace)
    listing = store.listing(keyspace)
    paths = tuple(listing.paths)
    return ListingState(listing.method, listing_signature(paths), paths, listing)


def pending_committed(store: Any, pending: Sequence[str]) -> bool:
    """True if any entry that had no marker when the catalog was written has one now."""
    for path in pending:
        try:
            if store.committed(path):
                return True
        except Exception:  # noqa: BLE001 - unknown state (or not an entry path): stale
            return True
    return False


def as_stored(entry: Any) -> Any:
    """``entry`` with its kind as written.

    A store reads a ``final`` written by another process as a ``checkpoint`` (so it never
    certifies someone else's fit) and says what was written in ``stored_kind``; an
    inspection shows what was written.
    """
    stored = entry.stored_kind
    return entry if stored == entry.kind else replace(entry, kind=stored)


def _workers(store: Any) -> int:
    return _REMOTE_WORKERS if store.flat_listing else _LOCAL_WORKERS


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
        entry = as_stored(entry)
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
