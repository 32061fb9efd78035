"""S3 settings for the generic object-store backend (``s3://bucket/prefix`` through s3fs).

S3 is served by :class:`gamstore.store.objectstore.ObjectStoreBackend` on s3fs's public async
API; every backend operation is one S3 request (no ``exists``/``info`` probes, no HEAD before a
GET): ``put_object``, ``put_object(IfNoneMatch="*")`` for create-only markers through
``_pipe_file(mode="create")`` (412 -> ``FileExistsError`` -> False), ``get_object``,
``list_objects_v2`` (sizes and LastModified come with the listing), ``delete_objects`` in
batches of 1000 through ``_rm``. This module holds only configuration: how
``storage_options`` become s3fs's arguments.

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
messages; the backend's ``url`` is ``s3://bucket/prefix`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gamstore.store.objectstore import DEFAULT_REQUEST_DEADLINE

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_REQUEST_DEADLINE",
    "DEFAULT_S3FS_RETRIES",
    "configure_filesystem",
    "prepare_options",
    "request_bound_seconds",
]

#: botocore client settings (``config_kwargs``) unless the caller overrides them.
DEFAULT_CONFIG: dict[str, Any] = {
    "connect_timeout": 2,
    "read_timeout": 10,
    "retries": {"total_max_attempts": 2, "mode": "standard"},
}
#: Passes of s3fs's own retry loop around each call (botocore already retries transient
#: errors, so one pass keeps a dead endpoint from multiplying the botocore cycle).
DEFAULT_S3FS_RETRIES = 1


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


def prepare_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """s3fs's keyword arguments and the S3 settings from ``storage_options``.

    :data:`DEFAULT_CONFIG` is merged under the caller's ``config_kwargs``; ``retries`` (s3fs's
    own loop, which s3fs would hand on to the botocore client, which rejects it) is taken out
    and set on the file system by :func:`configure_filesystem`; ``max_concurrency=1`` keeps
    s3fs from sending a HEAD before each GET.

    Returns
    -------
    tuple
        ``(fs_kwargs, settings)`` with settings ``{"config": ..., "retries": ...}``.
    """
    opts = dict(options)
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
    retries = _s3fs_retries(opts.pop("retries", DEFAULT_S3FS_RETRIES))
    opts.setdefault("max_concurrency", 1)  # no HEAD before GET in s3fs helpers
    opts["config_kwargs"] = config
    return opts, {"config": config, "retries": retries}


def configure_filesystem(fs: Any, settings: Mapping[str, Any]) -> None:
    """Set s3fs's retry loop on the instance (the class default of 5 stays untouched)."""
    fs.retries = settings["retries"]
