"""Storage layer: Zarr v3 entries on local disk, in memory or on an fsspec object store
(S3 via s3fs, GCS via gcsfs, Azure Blob via adlfs).

Use :func:`open_store`; ``docs/architecture.md`` has the Store API contract::

    store = open_store("s3://bucket/cache", storage_options={"endpoint_url": ...})
    entry_id = store.save("block", key, record, objective=reml, kind="final")
    entry = store.lookup("block", key)          # best entry or None; never raises on bad data

Modules: ``backend`` (the abstract object store), ``local`` / ``memory`` / ``objectstore``
(one per kind of backend; ``objectstore`` serves S3, GCS and Azure), ``s3`` (S3 timeouts and
retries), ``registry`` (URL scheme -> backend), ``codec`` (record <-> Zarr v3 group bytes),
``layout`` and ``ids`` (paths and entry ids), ``keyspaces`` (the keyspace registry),
``walk`` (the one walk of the entry folders), ``portable`` (entries as
portable data for export/import), ``ranking`` (which entry a lookup returns),
``eviction`` (TTL, budget, sweep policy), ``cache`` (per-root in-process caches), ``core``
(the :class:`Store` facade), ``spec`` (reopening a store in a worker), ``session``, ``maintenance`` (gc, verify), ``zarr_bridge`` (a zarr
store on the same root) and ``testing`` (the reusable store and backend conformance suites).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from gamstore.store.backend import Backend, ObjectInfo
from gamstore.store.codec import MAX_ENTRY_BYTES, CorruptEntryError
from gamstore.store.core import Store, check_store_options
from gamstore.store.errors import ReadOnlyStoreError, StoreError
from gamstore.store.ids import is_entry_id
from gamstore.store.keyspaces import REGISTRY, Keyspace, KeyspaceLayout, keyspace_info
from gamstore.store.layout import key_folder
from gamstore.store.layout import split_entry_path as entry_path_parts
from gamstore.store.portable import ExportedEntry, ImportResult
from gamstore.store.registry import open_backend, register_backend, resolve_url
from gamstore.store.session import Session
from gamstore.store.spec import StoreSpec
from gamstore.store.types import (
    KEYSPACES,
    Entry,
    EntryInfo,
    GcReport,
    Listing,
    StoreStats,
    VerifyReport,
)

__all__ = [
    "KEYSPACES",
    "REGISTRY",
    "is_entry_id",
    "MAX_ENTRY_BYTES",
    "Backend",
    "CorruptEntryError",
    "Entry",
    "ExportedEntry",
    "ImportResult",
    "EntryInfo",
    "GcReport",
    "Keyspace",
    "KeyspaceLayout",
    "Listing",
    "ObjectInfo",
    "ReadOnlyStoreError",
    "Session",
    "Store",
    "StoreError",
    "StoreSpec",
    "StoreStats",
    "VerifyReport",
    "entry_path_parts",
    "key_folder",
    "keyspace_info",
    "open_store",
    "register_backend",
]


def open_store(
    url: str | os.PathLike[str] | None = None,
    *,
    budget_bytes: int = 1 << 30,
    ttl: float = 30 * 86400.0,
    storage_options: Mapping[str, Any] | None = None,
    read_only: bool = False,
    **options: Any,
) -> Store:
    """Open (creating if needed) a gamstore store.

    Parameters
    ----------
    url : str or path-like, optional
        A directory path, ``file://...``, ``memory://<name>``, ``s3://bucket/prefix``,
        ``gs://bucket/prefix`` or ``az://container/prefix``.
        None means ``$GAMSTORE_URL``, else the user cache directory + ``gamstore``.
    budget_bytes : int
        Size budget (default 1 GiB), enforced by throttled eviction sweeps; an int in
        ``[0, 2**63 - 1]``. A save of an entry larger than the budget returns None.
    ttl : float
        Seconds since last access after which entries expire (default 30 days; 0 = never);
        at most 100 years.
    storage_options : mapping, optional
        Passed to the backend (for S3: ``endpoint_url``, ``key``, ``secret``,
        ``client_kwargs``, ...; GCS: ``project``, ``token``, ...; Azure: ``account_name``,
        ``account_key``, ``connection_string``, ...; every object store also takes
        ``request_deadline`` and ``concurrency``). Never shown in reprs, logs or errors.
    read_only : bool
        ``True`` or ``False`` (nothing else). Refuse writes (:class:`ReadOnlyStoreError`); lookups do not write access touches.
    **options
        Advanced :class:`Store` options: ``producer``, ``record_types``,
        ``touch_interval``, ``sweep_every``, ``checkpoint_interval``.

    Returns
    -------
    Store
        The store; its root ``zarr.json`` exists afterwards (unless read-only).
    """
    check_store_options(budget_bytes=budget_bytes, ttl=ttl, read_only=read_only)
    resolved = resolve_url(url)
    backend = open_backend(resolved, storage_options)
    return Store(
        backend,
        budget_bytes=budget_bytes,
        ttl=ttl,
        read_only=read_only,
        storage_options=storage_options,
        **options,
    )
