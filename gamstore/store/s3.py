"""S3 backend (``s3://bucket/prefix``) on s3fs/aiobotocore.

Every operation is a single direct S3 call (no ``exists``/``info`` probes, no HEAD before a
GET): ``put_object``, ``put_object(IfNoneMatch="*")`` for create-only markers (412 ->
``FileExistsError`` -> False), ``get_object``, ``list_objects_v2`` (sizes and LastModified
come with the listing), ``delete_objects`` in batches of 1000. Multi-object reads and writes
run concurrently on s3fs's event loop.

Timeouts and retries are sized for a cache (a dead endpoint must cost seconds, not minutes):
botocore connect timeout 2 s, read timeout 10 s, ``standard`` retries with 2 attempts in all
(``total_max_attempts``; botocore's ``max_attempts`` counts *retries*), and one pass of s3fs's
own retry loop (its class default is 5 passes, each one a full botocore retry cycle). Override
them through ``storage_options``: ``config_kwargs={"connect_timeout": ..., "read_timeout": ...,
"retries": {...}}`` (merged over the defaults) and ``retries=<int >= 1>`` (s3fs's loop; popped
here and set on the filesystem, since s3fs would hand it on to the botocore client, which
rejects it). :func:`request_bound_seconds` is the resulting worst case of one request.
Timeouts only bound a server that goes silent; a wall-clock deadline per operation
(``request_deadline=<seconds or None>``, default :data:`DEFAULT_REQUEST_DEADLINE`, popped here
too) also bounds one that trickles its answer, by cancelling the operation on the event loop.

``storage_options`` go to :class:`s3fs.S3FileSystem` (``endpoint_url``, ``key``, ``secret``,
``token``, ``client_kwargs``, ``config_kwargs``, ...). They are never stored in reprs or
messages; :attr:`S3Backend.url` is ``s3://bucket/prefix`` only.
"""

from __future__ import annotations

import asyncio
import builtins
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import blake3

from gamstore._redact import redact_error
from gamstore.store.backend import Backend, ObjectInfo, check_path
from gamstore.store.errors import StoreError

__all__ = ["DEFAULT_CONFIG", "DEFAULT_S3FS_RETRIES", "S3Backend", "request_bound_seconds"]

_CONCURRENCY = 16
_FS_CACHE: dict[tuple[int, str], Any] = {}
_FS_LOCK = threading.Lock()
#: botocore client settings (``config_kwargs``) unless the caller overrides them.
DEFAULT_CONFIG: dict[str, Any] = {
    "connect_timeout": 2,
    "read_timeout": 10,
    "retries": {"total_max_attempts": 2, "mode": "standard"},
}
#: Passes of s3fs's own retry loop around each call (botocore already retries transient
#: errors, so one pass keeps a dead endpoint from multiplying the botocore cycle).
DEFAULT_S3FS_RETRIES = 1
#: Wall-clock limit, in seconds, of one backend operation (a GET, a PUT, a LIST, or one
#: concurrent batch of them), retries included. The timeouts above bound a server that goes
#: silent; only a deadline bounds one that trickles its answer slower than one byte per read
#: timeout. Well above the 25.1 s request bound, so a healthy operation never meets it.
DEFAULT_REQUEST_DEADLINE = 60.0


def _total_attempts(retries: Mapping[str, Any] | None) -> int:
    """Tries per call under botocore's ``retries`` config (its default: legacy mode, 5)."""
    if not retries:
        return 5
    if "total_max_attempts" in retries:
        return max(1, int(retries["total_max_attempts"]))
    if "max_attempts" in retries:
        return max(1, int(retries["max_attempts"]) + 1)  # botocore: max_attempts = retries
    return 3 if retries.get("mode") == "standard" else 5


def request_bound_seconds(
    config: Mapping[str, Any] | None = None, s3fs_retries: int = DEFAULT_S3FS_RETRIES
) -> float:
    """Worst-case seconds of one S3 request that never gets an answer.

    ``s3fs_retries x (attempts x (connect + read timeout) + botocore backoff) + s3fs sleeps``,
    with botocore's ``standard`` backoff at most ``2 ** (i - 1)`` s before try ``i + 1`` and
    s3fs's sleep ``min(1.7 ** i x 0.1, 15)`` s after its pass ``i``. A server that trickles
    bytes slower than one per read timeout is not bounded by this (the read timeout is per
    socket read).

    Parameters
    ----------
    config : mapping, optional
        botocore ``config_kwargs`` (default :data:`DEFAULT_CONFIG`).
    s3fs_retries : int
        Passes of s3fs's retry loop.

    Returns
    -------
    float
        The bound in seconds.
    """
    cfg = dict(DEFAULT_CONFIG if config is None else config)
    connect = float(cfg.get("connect_timeout", 60))
    read = float(cfg.get("read_timeout", 60))
    attempts = _total_attempts(cfg.get("retries"))
    backoff = sum(min(2.0 ** (i - 1), 20.0) for i in range(1, attempts))
    cycle = attempts * (connect + read) + backoff
    sleeps = sum(min(1.7**i * 0.1, 15.0) for i in range(s3fs_retries))
    return s3fs_retries * cycle + sleeps


def _s3fs_retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"storage_options.retries: expected an int >= 1 (passes of s3fs's retry loop), "
            f"got {value!r}"
        )
    return value


#: ``storage_options`` keys that gamstore consumes itself and never hands to s3fs.
GAMSTORE_OPTIONS = ("retries", "request_deadline")


def s3fs_options(storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``storage_options`` for a plain :class:`s3fs.S3FileSystem` (e.g. zarr's FsspecStore).

    Drops gamstore's own keys (:data:`GAMSTORE_OPTIONS`: s3fs would hand them on to the
    botocore client, which rejects them) and merges :data:`DEFAULT_CONFIG` under the caller's
    ``config_kwargs``, so plain-zarr reads get the same cache-sized timeouts.
    """
    opts = {k: v for k, v in dict(storage_options or {}).items() if k not in GAMSTORE_OPTIONS}
    user_config = opts.get("config_kwargs") or {}
    if isinstance(user_config, Mapping):
        opts["config_kwargs"] = {**DEFAULT_CONFIG, **user_config}
    return opts


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


def _invalid_range(exc: BaseException) -> bool:
    """True for S3's 416 InvalidRange (s3fs turns it into a plain OSError)."""
    cause = exc.__cause__ or exc.__context__
    response = getattr(cause, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code == "InvalidRange" or "range is not satisfiable" in str(exc)


def _ns(dt: Any) -> int:
    return int(dt.timestamp() * 1e9)


class S3Backend(Backend):
    """Objects under ``s3://bucket/prefix``.

    Parameters
    ----------
    bucket : str
        Bucket name (must exist).
    prefix : str
        Key prefix of the root ("" for the bucket root).
    storage_options : mapping
        Passed to :class:`s3fs.S3FileSystem`.
    """

    scheme = "s3"
    flat_listing = True

    def __init__(self, bucket: str, prefix: str, storage_options: Mapping[str, Any]) -> None:
        super().__init__()
        import s3fs
        from fsspec.asyn import sync

        self._sync = sync
        # Client-side transport failures that are not OSErrors (a dropped connection is a
        # botocore ConnectionClosedError, a cut body an aiohttp ClientPayloadError).
        import aiohttp
        from botocore.exceptions import BotoCoreError

        self._transport_errors: tuple[type[Exception], ...] = (
            OSError,
            BotoCoreError,
            aiohttp.ClientError,
        )
        if not bucket:
            raise ValueError("url: s3:// URLs need a bucket, e.g. 's3://bucket/prefix'")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        opts = dict(storage_options)
        config = dict(DEFAULT_CONFIG)
        user_config = opts.pop("config_kwargs", None) or {}
        if not isinstance(user_config, Mapping):
            raise TypeError(
                "storage_options.config_kwargs: expected a mapping of botocore Config "
                f"arguments, got {type(user_config).__name__}"
            )
        config.update(user_config)
        if isinstance(config.get("retries"), Mapping):  # botocore edits it in place
            config["retries"] = dict(config["retries"])
        # s3fs keeps unknown keyword arguments for the botocore client, which rejects
        # ``retries``: it is s3fs's own loop count, set on the filesystem below.
        retries = _s3fs_retries(opts.pop("retries", DEFAULT_S3FS_RETRIES))
        # gamstore's own option (not the client's): taken out before the client cache key
        self.request_deadline = _request_deadline(
            opts.pop("request_deadline", DEFAULT_REQUEST_DEADLINE)
        )
        opts.setdefault("max_concurrency", 1)  # no HEAD before GET in s3fs helpers
        self._endpoint = str(opts.get("endpoint_url") or "")
        self.config = config
        self.s3fs_retries = retries
        # One client per process and option set: creating an aiobotocore client costs
        # ~0.2-0.4 s. The cache key is a digest, so secrets are not kept as dict keys.
        ident = blake3.blake3(repr(sorted((k, repr(v)) for k, v in opts.items())).encode())
        cache_key = (
            os.getpid(),
            ident.hexdigest() + repr(sorted(config.items())) + f"/retries={retries}",
        )
        with _FS_LOCK:
            fs = _FS_CACHE.get(cache_key)
            if fs is None:
                fs = s3fs.S3FileSystem(skip_instance_cache=True, config_kwargs=config, **opts)
                fs.retries = retries  # instance attribute: the class default stays 5
                _FS_CACHE[cache_key] = fs
        self.fs = fs

    @property
    def request_bound(self) -> float:
        """Worst-case seconds of one request with this backend's settings.

        The timeout-and-retry bound of :func:`request_bound_seconds`, capped by
        ``request_deadline`` when that is shorter.
        """
        bound = request_bound_seconds(self.config, self.s3fs_retries)
        if self.request_deadline is not None:
            bound = min(bound, self.request_deadline)
        return bound

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def cache_key(self) -> str:
        """Identity of the root for in-process caches (endpoint included, no credentials)."""
        return f"{self.url}@{self._endpoint}"

    def _key(self, path: str) -> str:
        check_path(path)
        if not self.prefix:
            return path
        return f"{self.prefix}/{path}" if path else self.prefix

    def _folder_key(self, prefix: str) -> str:
        k = self._key(prefix)
        return f"{k}/" if k else ""

    def _run(self, coro: Any) -> Any:
        from fsspec.exceptions import FSTimeoutError

        try:
            # past the deadline the operation is cancelled inside the event loop (its
            # requests are abandoned; a write abandoned there is cleaned up like any failed
            # save: the entry is only committed by its create-only marker)
            return self._sync(self.fs.loop, lambda: coro, timeout=self.request_deadline)
        except (FileNotFoundError, FileExistsError, PermissionError, StoreError):
            raise
        except FSTimeoutError as exc:
            raise StoreError(
                f"S3 request on {self.url} exceeded its {self.request_deadline:g} s deadline "
                "(storage_options.request_deadline)"
            ) from exc
        except self._transport_errors as exc:
            # The client's text quotes the endpoint URL (a storage option, never shown) and
            # can carry credentials: masked, and the original is not chained for tracebacks.
            raise StoreError(f"S3 request on {self.url} failed: {redact_error(exc)}") from None

    async def _gather(self, coros: Sequence[Any]) -> builtins.list[Any]:
        sem = asyncio.Semaphore(_CONCURRENCY)

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

    async def _call(self, kind: str, method: str, **kwargs: Any) -> Any:
        self.requests[kind] += 1
        return await self.fs._call_s3(method, Bucket=self.bucket, **kwargs)

    # -- reads ---------------------------------------------------------------------------
    async def _get(self, path: str, max_bytes: int | None = None) -> bytes | None:
        kwargs: dict[str, Any] = {"Key": self._key(path)}
        if max_bytes is not None:
            kwargs["Range"] = f"bytes=0-{max_bytes}"  # inclusive: at most max_bytes + 1
        try:
            resp = await self._call("get", "get_object", **kwargs)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if max_bytes is not None and _invalid_range(exc):
                return b""  # a range on an empty object: it is empty
            raise
        body = resp["Body"]
        try:
            data = await body.read()
        finally:
            body.close()
        return bytes(data)

    def get(self, path: str, max_bytes: int | None = None) -> bytes | None:
        return self._run(self._get(path, max_bytes))  # type: ignore[no-any-return]

    def get_many(
        self, paths: Sequence[str], max_bytes: Sequence[int | None] | None = None
    ) -> builtins.list[bytes | None]:
        if not paths:
            return []
        caps = max_bytes if max_bytes is not None else [None] * len(paths)
        coros = [self._get(p, c) for p, c in zip(paths, caps, strict=True)]
        return self._run(self._gather(coros))  # type: ignore[no-any-return]

    async def _mtime(self, path: str) -> int | None:
        try:
            resp = await self._call("head", "head_object", Key=self._key(path))
        except FileNotFoundError:
            return None
        return _ns(resp["LastModified"])

    def mtime(self, path: str) -> int | None:
        return self._run(self._mtime(path))  # type: ignore[no-any-return]

    async def _list(
        self, prefix: str, delimiter: bool
    ) -> tuple[builtins.list[Any], builtins.list[str]]:
        base = self._folder_key(prefix)
        contents: builtins.list[Any] = []
        dirs: builtins.list[str] = []
        kwargs: dict[str, Any] = {"Prefix": base}
        if delimiter:
            kwargs["Delimiter"] = "/"
        while True:
            resp = await self._call("list", "list_objects_v2", **kwargs)
            contents.extend(resp.get("Contents", []))
            dirs.extend(p["Prefix"] for p in resp.get("CommonPrefixes", []))
            if not resp.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = resp["NextContinuationToken"]
        return contents, dirs

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        contents, _ = self._run(self._list(prefix, False))
        cut = len(self.prefix) + 1 if self.prefix else 0
        return [
            ObjectInfo(c["Key"][cut:], int(c["Size"]), _ns(c["LastModified"])) for c in contents
        ]

    def list_dir(self, prefix: str) -> builtins.list[str]:
        contents, dirs = self._run(self._list(prefix, True))
        cut = len(self._folder_key(prefix))
        names = [d[cut:].rstrip("/") for d in dirs]
        names.extend(c["Key"][cut:] for c in contents)
        return [n for n in names if n]

    # -- writes --------------------------------------------------------------------------
    async def _put(self, path: str, data: bytes, kind: str = "put") -> None:
        await self._call(kind, "put_object", Key=self._key(path), Body=data)

    def put(self, path: str, data: bytes) -> None:
        self._run(self._put(path, data))

    def put_many(self, items: Mapping[str, bytes]) -> None:
        self._run(self._gather([self._put(p, d) for p, d in items.items()]))

    async def _put_if_absent(self, path: str, data: bytes) -> bool:
        for attempt in range(4):
            try:
                await self._call(
                    "put_if_absent", "put_object", Key=self._key(path), Body=data, IfNoneMatch="*"
                )
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                # 409 ConditionalRequestConflict: a concurrent conditional write; retry.
                if "Conflict" not in str(exc) or attempt == 3:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        return False  # pragma: no cover

    def put_if_absent(self, path: str, data: bytes) -> bool:
        return self._run(self._put_if_absent(path, data))  # type: ignore[no-any-return]

    def put_many_if_absent(self, items: Mapping[str, bytes]) -> builtins.list[bool]:
        coros = [self._put_if_absent(p, d) for p, d in items.items()]
        return list(self._run(self._gather(coros)))

    def touch(self, path: str) -> None:
        self._run(self._put(path, b"", "touch"))

    def touch_many(self, paths: Iterable[str]) -> None:
        self._run(self._gather([self._put(p, b"", "touch") for p in paths]))

    async def _delete(self, path: str) -> None:
        await self._call("delete", "delete_object", Key=self._key(path))

    def delete(self, path: str) -> bool:
        """Delete one object. S3 does not say whether it existed: always True."""
        try:
            self._run(self._delete(path))
        except FileNotFoundError:
            return False
        return True

    async def _delete_keys(self, keys: builtins.list[str]) -> int:
        done = 0
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            resp = await self._call(
                "delete",
                "delete_objects",
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            done += len(batch) - len(resp.get("Errors", []))
        return done

    def delete_many(self, paths: Iterable[str]) -> int:
        keys = [self._key(p) for p in paths]
        if not keys:
            return 0
        return self._run(self._delete_keys(keys))  # type: ignore[no-any-return]

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("prefix: refusing to delete the whole root")
        return self.delete_many([o.path for o in self.list(prefix)])


def _from_url(url: str, storage_options: dict[str, Any]) -> S3Backend:
    rest = url.split("://", 1)[1]
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket or ":" in bucket:
        raise ValueError("url: put credentials in storage_options, not in the s3:// URL")
    return S3Backend(bucket, prefix, storage_options)
