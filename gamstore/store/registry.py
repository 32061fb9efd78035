"""Protocol registry: URL scheme -> backend factory (fsspec's ``known_implementations`` idea).

Factories are imported lazily so ``memory://`` and local paths never import s3fs, gcsfs or
adlfs. Every object store (S3, GCS, Azure Blob) is the one fsspec backend,
:class:`gamstore.store.objectstore.ObjectStoreBackend`; its services are listed in
:data:`gamstore.store.objectstore.SERVICES`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from gamstore.store.backend import Backend

__all__ = ["open_backend", "register_backend", "registered_schemes", "resolve_url"]

BackendFactory = Callable[[str, Mapping[str, Any]], Backend]

# scheme -> "module:function" (lazy) or a factory registered at run time
_KNOWN: dict[str, str | BackendFactory] = {
    "file": "gamstore.store.local:_from_url",
    "memory": "gamstore.store.memory:_from_url",
    "s3": "gamstore.store.objectstore:from_url",
    "gs": "gamstore.store.objectstore:from_url",
    "gcs": "gamstore.store.objectstore:from_url",
    "az": "gamstore.store.objectstore:from_url",
    "abfs": "gamstore.store.objectstore:from_url",
    "abfss": "gamstore.store.objectstore:from_url",
}


def register_backend(scheme: str, factory: BackendFactory, *, clobber: bool = False) -> None:
    """Register ``factory(url, storage_options) -> Backend`` for URLs ``<scheme>://...``."""
    if scheme in _KNOWN and not clobber:
        raise ValueError(f"scheme: {scheme!r} is already registered (pass clobber=True)")
    _KNOWN[scheme] = factory


def registered_schemes() -> list[str]:
    """Schemes that :func:`open_backend` understands."""
    return sorted(_KNOWN)


def resolve_url(url: str | os.PathLike[str] | None) -> str:
    """Apply the defaults: None -> ``$GAMSTORE_URL`` -> user cache dir / ``gamstore``."""
    if url is None:
        url = os.environ.get("GAMSTORE_URL") or None
    if url is None:
        import platformdirs

        url = os.path.join(platformdirs.user_cache_dir(), "gamstore")
    if not isinstance(url, (str, os.PathLike)):
        raise TypeError(f"url: expected a str or path-like, got {type(url).__name__}")
    text = os.fspath(url)
    if not isinstance(text, str) or not text.strip():
        # "" would be the current folder: a store must be named explicitly.
        raise ValueError(f"url: expected a non-empty path or URL, got {text!r}")
    return text


def _scheme(url: str) -> str:
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def open_backend(url: str, storage_options: Mapping[str, Any] | None = None) -> Backend:
    """Open the backend for ``url``: a path, ``file://``, ``memory://`` or an object store
    (``s3://``, ``gs://``/``gcs://``, ``az://``/``abfs://``/``abfss://``)."""
    scheme = _scheme(url)
    target = _KNOWN.get(scheme)
    if target is None:
        raise ValueError(
            f"url: unsupported scheme {scheme!r}; expected a path or one of "
            f"{[s + '://' for s in registered_schemes()]}"
        )
    if isinstance(target, str):
        module, _, func = target.partition(":")
        factory = getattr(importlib.import_module(module), func)
    else:
        factory = target
    return factory(url, dict(storage_options or {}))


def local_path_from_url(url: str) -> str:
    """Filesystem path of a plain path or ``file://`` URL."""
    if "://" not in url:
        return os.path.abspath(os.path.expanduser(url))
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"url: file:// URLs must be local, got host {parts.netloc!r}")
    return os.path.abspath(unquote(parts.path))
