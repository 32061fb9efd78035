"""The catalog: one consolidated Zarr data set of every entry, replaced atomically.

Layout under ``<root>/.catalog/`` (objects written through ``Store.put_raw``)::

    v<created ns, 16 hex>-<random 8 hex>/zarr.json      root group of one catalog version
    v.../<keyspace>/...                                  one padded Dataset per keyspace
                                                         (consolidated metadata, one chunk
                                                         per variable)
    current.json                                         pointer, written LAST

A rebuild writes a complete new version folder, then replaces the small pointer object (one
atomic PUT), then deletes older versions except the one it replaced, their objects and then
the folders left empty inside ``.catalog`` (a reader that just read
the old pointer can still finish). The pointer lists every object of the version with its size
and blake3 digest, so a reader needs no listing and detects torn or foreign objects; any
problem makes :func:`load_catalog` return None and the caller falls back to the listing.

The catalog is current for a keyspace when the keyspace's listing signature (see
:mod:`gamstore.views.listing`) equals the one recorded in the pointer and none of the entries
that were mid-save during the rebuild (recorded as ``pending``) has committed since.

Entries are immutable, so a rebuild reuses the rows of entries the previous catalog already
holds and reads only the new ones (``full=True`` re-reads everything).

A create-only ``writer.lock`` object keeps rebuilds single-writer; a lock older than
:data:`LOCK_STALE_SECONDS` (a crashed writer) is taken over.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import blake3
import numpy as np
import xarray as xr

from gamstore import _json
from gamstore.store import KEYSPACES, key_folder
from gamstore.views.assemble import (
    DEFAULT_MAX_BYTES,
    VIEW_SCHEMA,
    ViewTooLargeError,
    assemble_fits,
    dataset_rows,
)
from gamstore.views.listing import (
    ListingState,
    listing_state,
    pending_committed,
    read_rows,
)
from gamstore.views.rows import FitRow, layout_for
from gamstore.views.zarrio import decode_group, encode_groups

__all__ = [
    "CATALOG_FORMAT",
    "CatalogBusyError",
    "CatalogInfo",
    "LOCK_STALE_SECONDS",
    "POINTER",
    "dataset_from_objects",
    "dataset_to_objects",
    "load_catalog",
    "read_pointer",
    "write_catalog",
]

log = logging.getLogger("gamstore.views")

CATALOG_FORMAT = "gamstore-catalog"
CATALOG_VERSION = 1
POINTER = "current.json"
LOCK = "writer.lock"
LOCK_STALE_SECONDS = 600.0
_MAX_POINTER_BYTES = 8 * 1024 * 1024
_MAX_LOCK_BYTES = 4096
#: Largest catalog object read (the pointer promises each size; reads stop one byte past it).
_MAX_OBJECT_BYTES = 1 << 32


class CatalogBusyError(RuntimeError):
    """Another process is rebuilding the catalog of this store right now."""


@dataclass(frozen=True)
class CatalogInfo:
    """What one catalog version holds.

    Attributes
    ----------
    folder : str
        Version folder under ``.catalog/``.
    created : int
        When it was written, ns since the epoch.
    keyspaces : dict
        keyspace -> ``{"signature": hex, "listed": int, "fits": int}``.
    nbytes : int
        Total bytes of the version's objects.
    reused : int
        Rows taken from the previous catalog instead of reading their entries.
    """

    folder: str
    created: int
    keyspaces: dict[str, dict[str, Any]]
    nbytes: int
    reused: int = 0


# ------------------------------------------------------------------ Dataset <-> Zarr objects
def dataset_to_objects(datasets: Mapping[str, xr.Dataset]) -> dict[str, bytes]:
    """Encode one Dataset per keyspace as the objects of one Zarr v3 hierarchy.

    Each keyspace becomes a child group with inline consolidated metadata (also at the
    root). Object paths are relative to the hierarchy root.
    """
    for ks in datasets:
        layout_for(ks)
    return encode_groups(datasets, {"gamstore_catalog": CATALOG_VERSION})


def dataset_from_objects(objects: Mapping[str, bytes], keyspace: str) -> xr.Dataset:
    """Decode the Dataset of ``keyspace`` from objects made by :func:`dataset_to_objects`.

    Variables come back in the order :func:`~gamstore.views.assemble.assemble_fits` uses.
    """
    layout_for(keyspace)
    ds = decode_group(objects, keyspace)
    order = list(assemble_fits([], keyspace).data_vars)
    extra = [v for v in ds.data_vars if v not in order]
    return ds[[v for v in order if v in ds.data_vars] + extra]


# ------------------------------------------------------------------ pointer and lock
def read_pointer(store: Any) -> dict[str, Any] | None:
    """Return the parsed catalog pointer of ``store``, or None if absent or not ours."""
    try:
        blob = store.get_raw(POINTER, max_bytes=_MAX_POINTER_BYTES)
    except Exception as exc:  # noqa: BLE001 - an unreadable catalog is just "no catalog"
        log.debug("gamstore.views: catalog pointer unreadable: %s", exc)
        return None
    if blob is None:
        return None
    try:
        doc = _json.loads(blob, root="catalog", max_bytes=_MAX_POINTER_BYTES)
    except ValueError as exc:
        log.debug("gamstore.views: catalog pointer is not strict JSON: %s", exc)
        return None
    if (
        not isinstance(doc, dict)
        or doc.get("format") != CATALOG_FORMAT
        or doc.get("version") != CATALOG_VERSION
        or not isinstance(doc.get("folder"), str)
        or not isinstance(doc.get("keyspaces"), dict)
        or not isinstance(doc.get("objects"), dict)
    ):
        log.debug("gamstore.views: catalog pointer has an unknown format")
        return None
    return doc


def _acquire_lock(store: Any, now: int) -> bytes:
    token = _json.dumps_bytes({"created": now, "token": secrets.token_hex(8)}, root="lock")
    if store.put_raw(LOCK, token, if_absent=True):
        return token
    held = store.get_raw(LOCK, max_bytes=_MAX_LOCK_BYTES)
    age = None
    if held is not None:
        try:
            age = (now - int(_json.loads(held, root="lock")["created"])) / 1e9
        except (ValueError, KeyError, TypeError):
            age = None
    if age is not None and age < LOCK_STALE_SECONDS:
        raise CatalogBusyError(
            f"catalog of {store.url} is being rebuilt by another process "
            f"(lock {age:.0f} s old; it is taken over after {LOCK_STALE_SECONDS:.0f} s)"
        )
    log.info("gamstore.views: taking over a stale catalog lock of %s", store.url)
    store.delete_raw(LOCK)
    if not store.put_raw(LOCK, token, if_absent=True):
        raise CatalogBusyError(f"catalog of {store.url}: another writer took the lock")
    return token


def _release_lock(store: Any, token: bytes) -> None:
    try:
        if store.get_raw(LOCK, max_bytes=_MAX_LOCK_BYTES) == token:
            store.delete_raw(LOCK)
    except Exception as exc:  # noqa: BLE001 - a leftover lock goes stale, nothing breaks
        log.debug("gamstore.views: releasing the catalog lock failed: %s", exc)


# ------------------------------------------------------------------ write
def write_catalog(
    store: Any,
    *,
    keyspaces: Iterable[str] = KEYSPACES,
    full: bool = False,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> CatalogInfo:
    """Rebuild the catalog of ``store`` from a full listing and replace it atomically.

    Entries are immutable, so by default the rows of entries already in the current
    catalog are reused and only new entries are read; entries no longer listed drop out.

    Parameters
    ----------
    store : Store
        A writable store.
    keyspaces : iterable of str
        Keyspaces to include (default: all).
    full : bool
        Read every entry again instead of reusing the previous catalog's rows (e.g. after
        ``gamstore verify`` found damaged entries).
    progress : callable, optional
        Called with 1 per listed entry (read or reused), for progress bars.
    on_total : callable, optional
        Called once with the number of listed entries before reading starts.

    Returns
    -------
    CatalogInfo
        The version written.

    Raises
    ------
    CatalogBusyError
        If another process holds a fresh writer lock.
    gamstore.store.ReadOnlyStoreError
        If the store is read-only.
    """
    spaces = [layout_for(ks).keyspace for ks in keyspaces]
    store.require_root()  # never write a catalog into (or clean up) a folder that is not a store
    now = time.time_ns()
    token = _acquire_lock(store, now)
    try:
        previous = read_pointer(store)
        # signature first, then the committed listing: anything that commits in between is
        # either in the rows already or makes the signature differ later (never missed)
        states = {ks: listing_state(store, ks) for ks in spaces}
        listed = {ks: st.infos() for ks, st in states.items()}
        if on_total is not None:
            on_total(sum(len(v) for v in listed.values()))
        datasets: dict[str, xr.Dataset] = {}
        summary: dict[str, dict[str, Any]] = {}
        reused = 0
        for ks in spaces:
            known = {} if full or previous is None else _previous_rows(store, ks)
            keep_rows, to_read = [], []
            for info in listed[ks]:
                row = known.get(info.entry_id)
                # same id under the same key folder = the same immutable entry
                if row is not None and row.key and key_folder(ks, row.key) == info.folder:
                    keep_rows.append(row)
                    if progress is not None:
                        progress(1)
                else:
                    to_read.append(info)
            rows, _skipped = read_rows(store, to_read, progress=progress)
            rows.extend(keep_rows)
            reused += len(keep_rows)
            try:
                datasets[ks] = assemble_fits(rows, ks, max_bytes=DEFAULT_MAX_BYTES)
            except ViewTooLargeError as exc:
                # not catalogued: open_fits reads this keyspace's entries (ragged=True fits)
                log.warning("gamstore.views: keyspace %s left out of the catalog: %s", ks, exc)
                continue
            committed = {info.path for info in listed[ks]}
            summary[ks] = {
                "method": states[ks].method,
                "signature": states[ks].signature,
                "pending": sorted(set(states[ks].paths) - committed),
                "listed": len(listed[ks]),
                "fits": len(rows),
            }
        objects = dataset_to_objects(datasets)
        folder = f"v{now:016x}-{secrets.token_hex(4)}"
        manifest: dict[str, dict[str, Any]] = {}
        for rel, data in sorted(objects.items()):
            store.put_raw(f"{folder}/{rel}", data)
            manifest[rel] = {"size": len(data), "digest": blake3.blake3(data).hexdigest()}
        pointer = {
            "format": CATALOG_FORMAT,
            "version": CATALOG_VERSION,
            "view_schema": VIEW_SCHEMA,
            "folder": folder,
            "created": now,
            "keyspaces": summary,
            "objects": manifest,
        }
        store.put_raw(POINTER, _json.dumps_bytes(pointer, root="catalog"))  # the commit
        keep = {folder}
        if previous is not None:
            keep.add(previous["folder"])
        _delete_old_versions(store, keep)
    finally:
        _release_lock(store, token)
    return CatalogInfo(
        folder=folder,
        created=now,
        keyspaces=summary,
        nbytes=sum(int(m["size"]) for m in manifest.values()),
        reused=reused,
    )


def _previous_rows(store: Any, keyspace: str) -> dict[str, FitRow]:
    """Rows of the current catalog of ``keyspace`` by entry id (empty if none is usable)."""
    ds = load_catalog(store, keyspace)  # integrity-checked, currency not required
    if ds is None:
        return {}
    try:
        return {row.entry_id: row for row in dataset_rows(ds, keyspace)}
    except (TypeError, ValueError) as exc:
        log.debug("gamstore.views: previous catalog rows unusable: %s", exc)
        return {}


def _delete_old_versions(store: Any, keep: set[str]) -> None:
    try:
        for rel, _size, _mtime in store.list_raw():
            top = rel.split("/", 1)[0]
            if "/" in rel and top.startswith("v") and top not in keep:
                store.delete_raw(rel)
        # then the folder trees the deleted versions leave (object stores have none); also
        # those left by earlier versions of gamstore, which deleted objects only
        store.prune_raw()
    except Exception as exc:  # noqa: BLE001 - leftovers only cost space
        log.debug("gamstore.views: deleting old catalog versions failed: %s", exc)


# ------------------------------------------------------------------ read
def load_catalog(
    store: Any,
    keyspace: str,
    *,
    state: ListingState | None = None,
    max_bytes: int | None = None,
) -> xr.Dataset | None:
    """Return the catalog Dataset of ``keyspace`` if it is present, intact and current.

    Parameters
    ----------
    store : Store
    keyspace : str
    state : ListingState, optional
        The keyspace's current listing signature (see
        :func:`gamstore.views.listing.listing_state`); when given, a catalog recorded under
        another signature, or one whose pending entries have committed since, is stale and
        None is returned.
    max_bytes : int, optional
        None when the keyspace's catalog objects are larger than this (never read).

    Returns
    -------
    xarray.Dataset or None
        None when there is no usable catalog (the caller then walks the listing).
    """
    layout_for(keyspace)
    pointer = read_pointer(store)
    if pointer is None:
        return None
    if pointer.get("view_schema") != VIEW_SCHEMA:
        return None
    recorded = pointer["keyspaces"].get(keyspace)
    if not isinstance(recorded, dict):
        return None
    if state is not None:
        pending = recorded.get("pending", [])
        if (
            recorded.get("method") != state.method
            or recorded.get("signature") != state.signature
            or not isinstance(pending, list)
            or pending_committed(store, [str(p) for p in pending])
        ):
            log.debug("gamstore.views: catalog of %s is stale for %s", store.url, keyspace)
            return None
    folder = pointer["folder"]
    wanted = {
        rel: spec
        for rel, spec in pointer["objects"].items()
        if rel == "zarr.json" or rel.startswith(f"{keyspace}/")
    }
    sizes = [spec.get("size") if isinstance(spec, dict) else None for spec in wanted.values()]
    if max_bytes is not None and sum(s for s in sizes if isinstance(s, int)) > max_bytes:
        log.debug("gamstore.views: catalog of %s is larger than max_bytes", keyspace)
        return None
    objects: dict[str, bytes] = {}
    for rel, spec in wanted.items():
        size = spec.get("size") if isinstance(spec, dict) else None
        if (
            isinstance(size, bool)
            or not isinstance(size, int)
            or not 0 <= size <= _MAX_OBJECT_BYTES
        ):
            log.debug("gamstore.views: catalog object %s has no valid size", rel)
            return None
        try:
            data = store.get_raw(f"{folder}/{rel}", max_bytes=size)
        except Exception as exc:  # noqa: BLE001
            log.debug("gamstore.views: catalog object %s unreadable: %s", rel, exc)
            return None
        if (
            data is None
            or not isinstance(spec, dict)
            or len(data) != spec.get("size")
            or blake3.blake3(data).hexdigest() != spec.get("digest")
        ):
            log.debug("gamstore.views: catalog object %s missing or altered", rel)
            return None
        objects[rel] = data
    try:
        ds = dataset_from_objects(objects, keyspace)
    except Exception as exc:  # noqa: BLE001 - any decode problem means "no catalog"
        log.debug("gamstore.views: catalog of %s undecodable: %s", store.url, exc)
        return None
    if ds.sizes.get("fit", 0) != recorded.get("fits") or not np.all(ds["keyspace"] == keyspace):
        return None
    return ds
