"""One backend for every fsspec object store: S3 (s3fs), GCS (gcsfs), Azure Blob (adlfs).

:class:`ObjectStoreBackend` speaks only fsspec's public async file-system API, one call per
backend operation and one request per call on the three services:

==================  ================================================================
backend operation   fsspec call (request sent)
==================  ================================================================
get                 ``_cat_file(path[, start=0, end=cap + 1])`` (one GET, ranged with a cap)
put / touch         ``_pipe_file(path, data)`` (one PUT)
put_if_absent       ``_pipe_file(path, data, mode="create")``: S3 ``If-None-Match: *``,
                    GCS ``ifGenerationMatch=0``, Azure ``If-None-Match: *``; an existing
                    object raises ``FileExistsError`` -> False. Atomic on all three.
list                ``_find(parent, prefix=name + "/", detail=True)`` (one paged LIST with
                    sizes and modification times; the ``prefix`` form never falls back to a
                    HEAD when the folder is empty)
list_prefixed       ``_find(folder, prefix=start, detail=True)`` (one paged LIST of the key
                    prefix ``<folder>/<start>``: a lookup's listing of one key's entries)
list_dir            ``_ls(folder)`` (one delimited LIST)
mtime               ``_info(path)`` (one HEAD; a missing object may cost a LIST too)
delete_many         ``_rm(paths)`` where the service deletes in bulk (S3: 1000 keys per
                    request, GCS: 100 per batch request), else concurrent ``_rm_file``
==================  ================================================================

What differs between services is configuration, kept in :class:`Service` (the file-system
class, how ``storage_options`` become its arguments, whether deletes go in bulk, where the
listing keeps the modification time) - no private calls into any client library. S3's
timeouts and retries, sized for a cache, live in :mod:`gamstore.store.s3`.

Options every service takes in ``storage_options`` besides its client's own (gamstore's, never
handed to the client):

``request_deadline``
    Wall-clock limit in seconds of one backend operation (a GET, a PUT, a LIST or one
    concurrent batch of them), retries included; None for none. Default 60.
``concurrency``
    Requests in flight per batch operation (``get_many``, ``put_many``, ...). Default 16.

``storage_options`` are never stored in reprs or messages; :attr:`ObjectStoreBackend.url` is
``<scheme>://<bucket>/<prefix>`` only.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib
import math
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import blake3

from gamstore._redact import redact_error
from gamstore.store.backend import Backend, ObjectInfo, check_path
from gamstore.store.errors import StoreError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_REQUEST_DEADLINE",
    "GAMSTORE_OPTIONS",
    "SERVICES",
    "ObjectStoreBackend",
    "Service",
    "service_for_scheme",
]

#: Requests in flight per batch operation unless ``storage_options["concurrency"]`` says.
DEFAULT_CONCURRENCY = 16
#: Wall-clock limit, in seconds, of one backend operation (a GET, a PUT, a LIST, or one
#: concurrent batch of them), retries included. Client timeouts bound a server that goes
#: silent; only a deadline bounds one that trickles its answer slower than one byte per read
#: timeout. Well above S3's 25.1 s request bound, so a healthy operation never meets it.
DEFAULT_REQUEST_DEADLINE = 60.0
#: ``storage_options`` keys gamstore consumes itself on every service (never the client's).
GAMSTORE_OPTIONS = ("request_deadline", "concurrency")

_FS_CACHE: dict[tuple[int, str, str], Any] = {}
_FS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Service:
    """What one object-storage service needs beyond fsspec's common API (configuration only).

    Attributes
    ----------
    name : str
        Service name in messages (``"S3"``, ``"GCS"``, ``"Azure Blob"``).
    schemes : tuple of str
        URL schemes served.
    filesystem : str
        ``"module:Class"`` of the fsspec async file system.
    package : str
        What to ``pip install`` when the module is missing.
    prepare : callable
        ``prepare(options) -> (fs_kwargs, settings)``: the client's keyword arguments from the
        user's ``storage_options`` (gamstore's own keys already removed) and service settings
        kept on the backend (:attr:`ObjectStoreBackend.settings`).
    configure : callable
        ``configure(fs, settings)``: adjust a new file-system instance (e.g. s3fs's retry loop).
    request_bound : callable or None
        ``request_bound(settings) -> seconds``: worst case of one unanswered request under the
        client's timeouts and retries, when the service documents one.
    bulk_delete : bool
        ``_rm(list)`` deletes many objects per request (S3, GCS); otherwise deletes are sent
        one object per request, concurrently (Azure: adlfs's ``_rm`` probes each path first).
    endpoint_keys : tuple of str
        Options naming the endpoint (part of the in-process cache identity, never secret).
    list_folder : callable or None
        ``await list_folder(fs, folder, start) -> {full_name: info}``: every object below
        ``folder`` whose path below it starts with ``start`` (``""``: all) in one paged
        LIST, where the file system's ``_find`` costs more requests (adlfs probes the path
        first). None: ``_find``.
    """

    name: str
    schemes: tuple[str, ...]
    filesystem: str
    package: str
    prepare: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]] = field(
        default=lambda opts: (opts, {})
    )
    configure: Callable[[Any, Mapping[str, Any]], None] = field(default=lambda fs, s: None)
    request_bound: Callable[[Mapping[str, Any]], float] | None = None
    bulk_delete: bool = True
    endpoint_keys: tuple[str, ...] = ("endpoint_url",)
    list_folder: Callable[[Any, str, str], Awaitable[dict[str, Any]]] | None = None


def _prepare_s3(opts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from gamstore.store import s3

    return s3.prepare_options(opts)


def _configure_s3(fs: Any, settings: Mapping[str, Any]) -> None:
    from gamstore.store import s3

    s3.configure_filesystem(fs, settings)


def _s3_bound(settings: Mapping[str, Any]) -> float:
    from gamstore.store import s3

    return s3.request_bound_seconds(settings["config"], settings["retries"])


def _prepare_gcs(opts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    # gcsfs talks to the emulator or a private endpoint through ``endpoint_url``; without
    # credentials in the options it looks them up the usual Google way.
    return opts, {}


def _prepare_azure(opts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return opts, {}


async def _azure_list_folder(fs: Any, folder: str, start: str = "") -> dict[str, Any]:
    """Every blob below ``folder`` with one paged List Blobs (the Azure SDK's public client).

    adlfs's ``_find`` first asks whether the path is a blob and, on an empty folder, whether
    it is one after all: up to four requests for what List Blobs answers alone.
    """
    container, _, key = folder.partition("/")
    out: dict[str, Any] = {}
    cc = fs.service_client.get_container_client(container)
    try:
        begin = f"{key}/{start}" if key else start
        async for b in cc.list_blobs(name_starts_with=begin or None):
            out[f"{container}/{b.name}"] = {
                "size": b.size,
                "last_modified": b.last_modified,
                "type": "file",
            }
    except Exception as exc:
        if type(exc).__name__ == "ResourceNotFoundError":  # the container is gone
            raise FileNotFoundError(container) from exc
        raise
    return out


S3 = Service(
    name="S3",
    schemes=("s3",),
    filesystem="s3fs:S3FileSystem",
    package="pip install 'gamstore[s3]' (needs s3fs)",
    prepare=_prepare_s3,
    configure=_configure_s3,
    request_bound=_s3_bound,
)
GCS = Service(
    name="GCS",
    schemes=("gs", "gcs"),
    # gcsfs.core's class, not the package default: that one probes every bucket over gRPC
    # for "zonal" buckets (one more request, and a hang on HTTP-only endpoints).
    filesystem="gcsfs.core:GCSFileSystem",
    package="pip install 'gamstore[gcs]' (needs gcsfs)",
    prepare=_prepare_gcs,
)
AZURE = Service(
    name="Azure Blob",
    schemes=("az", "abfs", "abfss"),
    filesystem="adlfs:AzureBlobFileSystem",
    package="pip install 'gamstore[azure]' (needs adlfs)",
    prepare=_prepare_azure,
    bulk_delete=False,
    endpoint_keys=("account_name", "account_host"),
    list_folder=_azure_list_folder,
)
#: The services served, one :class:`Service` each.
SERVICES: tuple[Service, ...] = (S3, GCS, AZURE)


def service_for_scheme(scheme: str) -> Service:
    """The :class:`Service` serving ``<scheme>://`` URLs."""
    for s in SERVICES:
        if scheme in s.schemes:
            return s
    raise ValueError(f"url: no object-store service for scheme {scheme!r}")


def _request_deadline(value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            "storage_options.request_deadline: expected a number of seconds > 0 (or None for "
            f"no deadline), got {value!r}"
        )
    return float(value)


def _concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1024:
        raise ValueError(
            f"storage_options.concurrency: expected an int in [1, 1024] (requests in flight), "
            f"got {value!r}"
        )
    return value


def _status(exc: BaseException) -> int | None:
    """HTTP status behind a client error (botocore, gcsfs, azure-core), if one is known."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        for attr in ("status_code", "code", "status"):  # azure-core, gcsfs, aiohttp
            v = getattr(e, attr, None)
            if isinstance(v, int) and not isinstance(v, bool) and 100 <= v < 600:
                return v
        response = getattr(e, "response", None)
        if isinstance(response, dict):  # botocore ClientError
            v = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(v, int):
                return v
        e = e.__cause__ or e.__context__
    return None


def _invalid_range(exc: BaseException) -> bool:
    """True for HTTP 416: a range on an object too short for it (an empty one)."""
    if _status(exc) == 416:
        return True
    text = str(exc)
    return "InvalidRange" in text or "range is not satisfiable" in text


def _conflict(exc: BaseException) -> bool:
    """True for HTTP 409 on a create-only write: a concurrent conditional write (S3)."""
    return _status(exc) == 409 or "ConditionalRequestConflict" in repr(exc.__cause__)


def _ns(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1e9)
    if isinstance(value, str):  # ISO 8601 (GCS's "updated")
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value * 1e9)
    return 0


def _info_mtime(info: Mapping[str, Any]) -> int:
    """Modification time (ns) of an fsspec info dict (s3fs, gcsfs and adlfs name it apart)."""
    for k in ("LastModified", "mtime", "last_modified", "updated"):
        v = info.get(k)
        if v:
            return _ns(v)
    return 0


def _endpoint_identity(fs_kwargs: Mapping[str, Any], keys: Sequence[str]) -> str:
    """Which service endpoint/account the options reach (never a credential).

    Part of the in-process cache identity: two accounts with a container of the same name
    must not share decoded entries. An Azure connection string contributes only its
    ``AccountName`` and ``BlobEndpoint`` (never its ``AccountKey`` or ``SharedAccessSignature``).
    """
    parts = [f"{k}={fs_kwargs[k]}" for k in keys if fs_kwargs.get(k) is not None]
    conn = fs_kwargs.get("connection_string")
    if isinstance(conn, str):
        for item in conn.split(";"):
            name, _, value = item.partition("=")
            if name.strip().lower() in ("accountname", "blobendpoint"):
                parts.append(f"{name.strip()}={value.strip()}")
    return ",".join(parts)


#: Programming errors are never wrapped: they are bugs, not storage failures.
_BUGS = (TypeError, AttributeError, NameError, AssertionError, NotImplementedError)


class ObjectStoreBackend(Backend):
    """Objects under ``<scheme>://<bucket>/<prefix>`` on any fsspec async object store.

    Parameters
    ----------
    scheme : str
        URL scheme (``"s3"``, ``"gs"``, ``"az"``, ...; see :data:`SERVICES`).
    bucket : str
        Bucket (S3, GCS) or container (Azure); must exist.
    prefix : str
        Key prefix of the root (``""`` for the bucket root).
    storage_options : mapping
        The client's options plus gamstore's (``request_deadline``, ``concurrency`` and,
        on S3, ``retries``); see the module docstring.
    """

    flat_listing = True

    def __init__(
        self, scheme: str, bucket: str, prefix: str, storage_options: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.service = service_for_scheme(scheme)
        self.scheme = scheme  # type: ignore[misc]  # one class serves several schemes
        if not bucket:
            raise ValueError(
                f"url: {scheme}:// URLs need a bucket, e.g. '{scheme}://bucket/prefix'"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        check_path(self.prefix)
        opts = dict(storage_options)
        self.request_deadline = _request_deadline(
            opts.pop("request_deadline", DEFAULT_REQUEST_DEADLINE)
        )
        self.concurrency = _concurrency(opts.pop("concurrency", DEFAULT_CONCURRENCY))
        fs_kwargs, self.settings = self.service.prepare(opts)
        self._endpoint = _endpoint_identity(fs_kwargs, self.service.endpoint_keys)
        self.fs = self._filesystem(fs_kwargs)

    def _filesystem(self, fs_kwargs: dict[str, Any]) -> Any:
        # One client per process and option set: creating one costs ~0.2-0.4 s on S3. The
        # cache key is a digest, so secrets are not kept as dict keys.
        ident = blake3.blake3(
            repr(sorted((k, repr(v)) for k, v in fs_kwargs.items())).encode()
            + repr(sorted((k, repr(v)) for k, v in self.settings.items())).encode()
        ).hexdigest()
        key = (os.getpid(), self.service.name, ident)
        with _FS_LOCK:
            fs = _FS_CACHE.get(key)
            if fs is None:
                module, _, cls = self.service.filesystem.partition(":")
                try:
                    fs_class = getattr(importlib.import_module(module), cls)
                except ImportError as exc:
                    raise ImportError(
                        f"backend for {self.scheme}:// is not installed: {self.service.package}"
                    ) from exc
                # No listings cache: other processes write the same store, and a cached
                # listing would hide their entries (and serve deleted ones).
                fs = fs_class(skip_instance_cache=True, use_listings_cache=False, **fs_kwargs)
                self.service.configure(fs, self.settings)
                _FS_CACHE[key] = fs
        return fs

    @property
    def request_bound(self) -> float | None:
        """Worst-case seconds of one request with this backend's settings.

        The service's timeout-and-retry bound (S3: :func:`gamstore.store.s3.request_bound_seconds`),
        capped by ``request_deadline`` when that is shorter; None when neither is known.
        """
        bound = self.service.request_bound(self.settings) if self.service.request_bound else None
        if self.request_deadline is not None:
            bound = self.request_deadline if bound is None else min(bound, self.request_deadline)
        return bound

    @property
    def url(self) -> str:
        base = f"{self.scheme}://{self.bucket}"
        return f"{base}/{self.prefix}" if self.prefix else base

    @property
    def cache_key(self) -> str:
        """Identity of the root for in-process caches (endpoint included, no credentials)."""
        return f"{self.url}@{self._endpoint}"

    # -- paths ---------------------------------------------------------------------------
    def _full(self, path: str) -> str:
        """``bucket/prefix/path`` as the file system names it."""
        check_path(path)
        parts = [p for p in (self.bucket, self.prefix, path) if p]
        return "/".join(parts)

    def _rel(self, full: str) -> str:
        cut = len(self._full("")) + 1
        return full[cut:]

    # -- running coroutines on the file system's loop --------------------------------------
    def _run(self, coro: Any) -> Any:
        from fsspec.asyn import sync
        from fsspec.exceptions import FSTimeoutError

        try:
            # past the deadline the operation is cancelled inside the event loop (its
            # requests are abandoned; a write abandoned there is cleaned up like any failed
            # save: the entry is only committed by its create-only marker)
            return sync(self.fs.loop, lambda: coro, timeout=self.request_deadline)
        except (FileNotFoundError, FileExistsError, PermissionError, StoreError, *_BUGS):
            raise
        except FSTimeoutError as exc:
            raise StoreError(
                f"{self.service.name} request on {self.url} exceeded its "
                f"{self.request_deadline:g} s deadline (storage_options.request_deadline)"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - every client failure becomes a StoreError
            # The client's text quotes the endpoint URL (a storage option, never shown) and
            # can carry credentials: masked, and the original is not chained for tracebacks.
            raise StoreError(
                f"{self.service.name} request on {self.url} failed: {redact_error(exc)}"
            ) from None

    async def _gather(self, coros: Sequence[Any]) -> builtins.list[Any]:
        sem = asyncio.Semaphore(self.concurrency)

        async def one(c: Any) -> Any:
            async with sem:
                return await c

        # Wait for every request (retries included) before raising the first error: a
        # failed save must not have writes still landing after it returned and cleaned up.
        results = await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return results

    # -- reads ---------------------------------------------------------------------------
    # Paths are checked (and made full) before any coroutine exists: a bad path is a
    # ValueError of the caller, never a storage failure.
    async def _get(self, full: str, max_bytes: int | None = None) -> bytes | None:
        self.requests["get"] += 1
        try:
            if max_bytes is None:
                data = await self.fs._cat_file(full)
            else:  # at most max_bytes + 1 bytes: an oversize object shows without loading it
                data = await self.fs._cat_file(full, start=0, end=max_bytes + 1)
        except FileNotFoundError:
            return None
        except Exception as exc:
            if max_bytes is not None and _invalid_range(exc):
                return b""  # a range on an empty object: it is empty
            raise
        return bytes(data)

    def get(self, path: str, max_bytes: int | None = None) -> bytes | None:
        return self._run(self._get(self._full(path), max_bytes))  # type: ignore[no-any-return]

    def get_many(
        self, paths: Sequence[str], max_bytes: Sequence[int | None] | None = None
    ) -> builtins.list[bytes | None]:
        if not paths:
            return []
        caps = max_bytes if max_bytes is not None else [None] * len(paths)
        fulls = [self._full(p) for p in paths]
        coros = [self._get(f, c) for f, c in zip(fulls, caps, strict=True)]
        return self._run(self._gather(coros))  # type: ignore[no-any-return]

    async def _mtime(self, full: str) -> int | None:
        self.requests["head"] += 1
        try:
            info = await self.fs._info(full)
        except FileNotFoundError:
            return None
        if info.get("type", "file") != "file":
            return None  # a "folder": objects below it, none at it
        return _info_mtime(info)

    def mtime(self, path: str) -> int | None:
        return self._run(self._mtime(self._full(path)))  # type: ignore[no-any-return]

    async def _list(self, folder: str, start: str = "") -> dict[str, Any]:
        self.requests["list"] += 1
        if self.service.list_folder is not None:
            return await self.service.list_folder(self.fs, folder, start)
        if start:
            # one paged LIST of the key prefix ``<folder>/<start>`` (s3fs, gcsfs)
            found = await self.fs._find(folder, prefix=start, detail=True)
            return dict(found) if isinstance(found, dict) else {}
        parent, _, name = folder.rpartition("/")
        if not parent:  # the bucket root itself
            return dict(await self.fs._find(folder, detail=True))
        # ``prefix=`` lists exactly ``<parent>/<name>/`` on s3fs and gcsfs: one paged LIST,
        # and no HEAD fallback when it is empty (they probe for a file otherwise). adlfs
        # widens it to ``<parent>/<name>*`` (filtered by the caller) and answers a file at
        # ``parent`` with a list of its name: nothing below the folder then.
        found = await self.fs._find(parent, prefix=f"{name}/", detail=True)
        return dict(found) if isinstance(found, dict) else {}

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        folder = self._full(prefix)
        found = self._run(self._list(folder))
        base = folder + "/"
        return [
            ObjectInfo(self._rel(k), int(v.get("size") or 0), _info_mtime(v))
            for k, v in found.items()
            if k.startswith(base) and v.get("type", "file") == "file" and not k.endswith("/")
        ]

    def list_prefixed(self, prefix: str, start: str) -> builtins.list[ObjectInfo]:
        if not start or "/" in start:
            raise ValueError(f"start: expected a partial name without '/', got {start!r}")
        folder = self._full(prefix)
        found = self._run(self._list(folder, start))
        base = f"{folder}/{start}"
        return [
            ObjectInfo(self._rel(k), int(v.get("size") or 0), _info_mtime(v))
            for k, v in found.items()
            if k.startswith(base) and v.get("type", "file") == "file" and not k.endswith("/")
        ]

    async def _list_dir(self, folder: str) -> builtins.list[str]:
        self.requests["list"] += 1
        try:
            return builtins.list(await self.fs._ls(folder, detail=False))
        except FileNotFoundError:
            return []

    def list_dir(self, prefix: str) -> builtins.list[str]:
        folder = self._full(prefix)
        found = self._run(self._list_dir(folder))
        base = folder + "/"
        names = {k[len(base) :].rstrip("/") for k in found if k.startswith(base)}
        return sorted(n for n in names if n and "/" not in n)

    # -- writes --------------------------------------------------------------------------
    async def _put(self, full: str, data: bytes, kind: str = "put") -> None:
        self.requests[kind] += 1
        await self.fs._pipe_file(full, data)

    def put(self, path: str, data: bytes) -> None:
        self._run(self._put(self._full(path), data))

    def put_many(self, items: Mapping[str, bytes]) -> None:
        fulls = {self._full(p): d for p, d in items.items()}
        self._run(self._gather([self._put(f, d) for f, d in fulls.items()]))

    async def _put_if_absent(self, full: str, data: bytes) -> bool:
        for attempt in range(4):
            self.requests["put_if_absent"] += 1
            try:
                await self.fs._pipe_file(full, data, mode="create")
                return True
            except FileExistsError:
                return False
            except Exception as exc:
                # 409 ConditionalRequestConflict (S3): a concurrent conditional write; retry.
                if not _conflict(exc) or attempt == 3:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        return False  # pragma: no cover

    def put_if_absent(self, path: str, data: bytes) -> bool:
        return self._run(self._put_if_absent(self._full(path), data))  # type: ignore[no-any-return]

    def put_many_if_absent(self, items: Mapping[str, bytes]) -> builtins.list[bool]:
        fulls = [(self._full(p), d) for p, d in items.items()]
        coros = [self._put_if_absent(f, d) for f, d in fulls]
        return list(self._run(self._gather(coros)))

    def touch(self, path: str) -> None:
        self._run(self._put(self._full(path), b"", "touch"))

    def touch_many(self, paths: Iterable[str]) -> None:
        fulls = [self._full(p) for p in paths]
        self._run(self._gather([self._put(f, b"", "touch") for f in fulls]))

    async def _delete(self, full: str) -> bool:
        self.requests["delete"] += 1
        try:
            await self.fs._rm_file(full)
        except FileNotFoundError:
            return False
        return True

    def delete(self, path: str) -> bool:
        """Delete one object. S3 does not say whether it existed: True there."""
        return self._run(self._delete(self._full(path)))  # type: ignore[no-any-return]

    async def _delete_many(self, fulls: builtins.list[str]) -> int:
        if not self.service.bulk_delete:
            done = await self._gather([self._delete(f) for f in fulls])
            return sum(1 for d in done if d)
        batch = 1000  # S3's limit per request; gcsfs splits further into its own batches
        for i in range(0, len(fulls), batch):
            chunk = fulls[i : i + batch]
            self.requests["delete"] += 1
            try:
                await self.fs._rm(chunk)
            except FileNotFoundError:
                pass  # none of them existed (gcsfs)
        return len(fulls)

    def delete_many(self, paths: Iterable[str]) -> int:
        """Delete several objects; return how many were requested (services don't say)."""
        fulls = [self._full(p) for p in paths]
        if not fulls:
            return 0
        return self._run(self._delete_many(fulls))  # type: ignore[no-any-return]

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("prefix: refusing to delete the whole root")
        return self.delete_many([o.path for o in self.list(prefix)])


def from_url(url: str, storage_options: dict[str, Any]) -> ObjectStoreBackend:
    """Open ``<scheme>://bucket/prefix`` (the registry's factory for every object store)."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket or ":" in bucket:
        raise ValueError(
            f"url: put credentials and accounts in storage_options, not in the {scheme}:// URL"
        )
    return ObjectStoreBackend(scheme, bucket, prefix, storage_options)
