"""Turn the ``url_or_store`` argument of the views into an open store handle."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["resolve_store", "is_store"]

_STORE_METHODS = ("entries", "read_entry", "read_marker")


def is_store(obj: object) -> bool:
    """True when ``obj`` looks like a :class:`gamstore.store.Store` (duck-typed)."""
    return all(callable(getattr(obj, name, None)) for name in _STORE_METHODS)


def resolve_store(
    url_or_store: Any,
    *,
    storage_options: Mapping[str, Any] | None = None,
    read_only: bool = True,
    must_exist: bool = True,
) -> Any:
    """Return a store for ``url_or_store``.

    Parameters
    ----------
    url_or_store : str, os.PathLike or Store
        An open store (returned as is) or a URL/path given to :func:`gamstore.open_store`.
    storage_options : mapping, optional
        fsspec options for remote URLs (e.g. ``{"endpoint_url": ...}``).
    read_only : bool, default True
        Open read-only (the views never write entries).
    must_exist : bool, default True
        For local paths, refuse a directory that does not exist instead of creating an
        empty store there (a typo should be an error, not an empty view).

    Raises
    ------
    TypeError
        If ``url_or_store`` is neither a store nor a str/path.
    ValueError
        If the URL is empty, or a local store directory does not exist.
    """
    if is_store(url_or_store):
        if storage_options:
            raise ValueError("storage_options: only valid with a URL, not with an open store")
        return url_or_store
    if isinstance(url_or_store, os.PathLike):
        url_or_store = os.fspath(url_or_store)
    if not isinstance(url_or_store, str):
        raise TypeError(
            "url_or_store: expected a store URL (str or path) or an open gamstore Store, "
            f"got {type(url_or_store).__name__}"
        )
    url = url_or_store.strip()
    if not url:
        raise ValueError("url_or_store: empty store URL")
    if must_exist:
        local = _local_path(url)
        if local is not None and not os.path.isdir(local):
            raise ValueError(f"url_or_store: no store directory at {url!r}")
    from gamstore.store import open_store  # storage layer is imported only when used

    # ttl=0: an inspection shows every committed entry, expired or not, and never deletes
    return open_store(
        url, storage_options=dict(storage_options or {}), read_only=read_only, ttl=0.0
    )


def _local_path(url: str) -> str | None:
    if url.startswith("file://"):
        return url[len("file://") :]
    if "://" in url:
        return None
    return os.path.expanduser(url)
