"""What another process needs to reopen a store: :class:`StoreSpec`.

An open :class:`~gamstore.store.Store` holds live fsspec/s3fs clients that do not survive
pickling or a fork, and its URL carries no credentials. Worker processes (a process pool, a
dask cluster) therefore receive a ``StoreSpec`` - the URL, the ``storage_options`` the store
was opened with, and its settings - and open their own store from it
(:meth:`StoreSpec.open`). Get one with :meth:`Store.spec() <gamstore.store.Store.spec>`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gamstore.store.core import Store

__all__ = ["StoreSpec"]


@dataclass(frozen=True, eq=False)
class StoreSpec:
    """How to reopen a store in another process: URL, ``storage_options`` and settings.

    It pickles (and travels to dask workers) with its ``storage_options``, credentials
    included - that is its purpose - so hand it only to your own workers. Its ``repr`` and
    ``str`` name the options' keys, never their values, so it is safe in logs, tracebacks
    and dask dashboards.

    Parameters
    ----------
    url : str
        The store's URL (credentials never live in it).
    storage_options : mapping, optional
        fsspec options the store was opened with (``endpoint_url``, ``key``, ``secret``, ...).
    read_only : bool
        Open the store read-only.
    budget_bytes : int
        Size budget of the reopened store.
    ttl : float
        Expiry of the reopened store in seconds (0 = never).

    Examples
    --------
    >>> import gamstore
    >>> spec = gamstore.open_store("memory://spec-doc").spec(read_only=True)
    >>> spec
    StoreSpec('memory://spec-doc', read-only, storage_options=<none>)
    >>> spec.open().read_only
    True

    A process pool or dask hands the spec to workers as an ordinary task argument (in
    memory, between processes); nothing of it is ever written to a store.
    """

    url: str
    storage_options: Mapping[str, Any] | None = field(default=None, repr=False)
    read_only: bool = False
    budget_bytes: int = 1 << 30
    ttl: float = 30 * 86400.0

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        keys = sorted(str(k) for k in (self.storage_options or {}))
        # keys only: their values may be credentials
        hidden = f"<{len(keys)} hidden: {', '.join(keys)}>" if keys else "<none>"
        return f"StoreSpec({self.url!r}, {mode}, storage_options={hidden})"

    __str__ = __repr__

    def open(self) -> Store:
        """Open the store this spec describes (a new store object with its own clients)."""
        from gamstore.store import open_store

        return open_store(
            self.url,
            storage_options=self.storage_options,
            read_only=self.read_only,
            budget_bytes=self.budget_bytes,
            ttl=self.ttl,
        )

    def cache_key(self) -> tuple[str, str, bool, int, float]:
        """A hashable identity, for caching one open store per spec in a process."""
        options = json.dumps(dict(self.storage_options or {}), sort_keys=True, default=repr)
        return (self.url, options, self.read_only, self.budget_bytes, self.ttl)
