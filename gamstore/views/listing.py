"""Walk a store's listing: entry infos, the listing signature, and decoded rows.

The *listing signature* of a keyspace is a digest of the sorted paths of its committed
entries. Entries are immutable and their ids unique, so equal signatures mean the same set
of entries with the same contents: that is how the catalog knows it is still current.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import blake3

from gamstore.views.extract import UnsupportedRecordError, row_from_entry
from gamstore.views.rows import FitRow, layout_for

__all__ = ["list_infos", "listing_signature", "read_rows", "with_stored_kind"]

log = logging.getLogger("gamstore.views")

# concurrent reads only pay off on object stores (network latency); local disk is CPU-bound
_REMOTE_WORKERS = 16

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


def listing_signature(infos: Iterable[Any]) -> str:
    """64-hex digest of the sorted entry paths of ``infos``."""
    h = blake3.blake3(b"gamstore-listing-v1\n")
    for path in sorted(info.path for info in infos):
        h.update(path.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def with_stored_kind(store: Any, info: Any, entry: Any) -> Any:
    """``entry`` with its kind as stored.

    A store reads a ``final`` written by another process as a ``checkpoint`` (so it never
    certifies someone else's fit); an inspection shows what was written.
    """
    marker = store.read_marker(info)
    kind = marker.get("kind") if isinstance(marker, dict) else None
    if kind in ("checkpoint", "final") and kind != entry.kind:
        return replace(entry, kind=kind)
    return entry


def _is_remote(store: Any) -> bool:
    backend = getattr(store, "backend", None)
    return bool(getattr(backend, "flat_listing", False))


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
    if _is_remote(store) and len(infos) > 1:
        with ThreadPoolExecutor(max_workers=_REMOTE_WORKERS) as pool:
            results: Iterable[FitRow | None] = pool.map(one, infos)
            for row in results:
                if row is None:
                    skipped += 1
                else:
                    rows.append(row)
                if progress is not None:
                    progress(1)
    else:
        for info in infos:
            row = one(info)
            if row is None:
                skipped += 1
            else:
                rows.append(row)
            if progress is not None:
                progress(1)
    return rows, skipped
