"""Helpers for S3 fault tests: short client timeouts and a proxy-fronted store."""

from __future__ import annotations

from typing import Any

import gamstore
from gamstore.store.core import Store

#: Client settings for fault tests: short timeouts so a black hole costs seconds, not minutes.
CONNECT_TIMEOUT = 0.3
READ_TIMEOUT = 0.3
BOTO_ATTEMPTS = 2
S3FS_RETRIES = 1


def fault_options(endpoint: str, key: str, secret: str) -> dict[str, Any]:
    """storage_options for a client that talks to ``endpoint`` with short timeouts."""
    return {
        "endpoint_url": endpoint,
        "key": key,
        "secret": secret,
        "config_kwargs": {
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
            "retries": {"max_attempts": BOTO_ATTEMPTS, "mode": "standard"},
        },
    }


def open_fault_store(url: str, options: dict[str, Any], **kwargs: Any) -> Store:
    """Open ``url`` with ``options`` and cap s3fs's own retry loop (a class default of 5)."""
    store = gamstore.open_store(url, storage_options=options, **kwargs)
    fs = getattr(store.backend, "fs", None)
    if fs is not None:
        fs.retries = S3FS_RETRIES
    return store


def request_bound_seconds(delay: float = 0.0) -> float:
    """Worst case of one S3 call: s3fs retries x botocore attempts x (timeouts + backoff)."""
    per_attempt = CONNECT_TIMEOUT + READ_TIMEOUT + delay + 1.0  # + standard-mode backoff
    return S3FS_RETRIES * BOTO_ATTEMPTS * per_attempt
