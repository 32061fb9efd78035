"""Shared test fixtures: a moto S3 server on loopback (session-scoped) and per-test buckets.

Usage in any test module::

    def test_something(s3_store_url, s3_options):
        store = gamstore.open_store(s3_store_url, storage_options=s3_options)

Credentials are dummy test values passed through ``storage_options``; nothing is read from
the environment. Without moto the S3 fixtures skip, except under ``GAMSTORE_CI=1`` where a
missing tool must fail the run.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from requires import require

# Tests count store traffic (exact hits, entries written): they run the warm-start layer
# with policy "always" (every lookup and save), here and in the worker processes they start.
# The adaptive policy's own tests inject a cost model with a fake clock
# (tests/test_warmstart_policy.py); it never changes an answer, only what is looked up.
os.environ["GAMSTORE_WARM_POLICY"] = "always"

#: Dummy credentials for the loopback moto server (never real secrets).
S3_TEST_KEY = "gamstore-test-key"
S3_TEST_SECRET = "gamstore-test-secret"


def _need(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        require(False, module)
        raise


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Endpoint URL of a moto S3 server on 127.0.0.1 (random free port) for the session."""
    server_mod = _need("moto.moto_server.threaded_moto_server")
    _need("s3fs")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_options(moto_endpoint: str) -> dict[str, Any]:
    """storage_options for the moto server (dummy credentials, no environment lookup)."""
    return {"endpoint_url": moto_endpoint, "key": S3_TEST_KEY, "secret": S3_TEST_SECRET}


def _client(endpoint: str) -> Any:
    import botocore.session

    session = botocore.session.Session()
    return session.create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_TEST_KEY,
        aws_secret_access_key=S3_TEST_SECRET,
    )


@pytest.fixture(scope="session")
def _s3_admin(moto_endpoint: str) -> Any:
    return _client(moto_endpoint)


@pytest.fixture
def s3_bucket(_s3_admin: Any) -> Iterator[str]:
    """A fresh, empty bucket on the moto server, emptied and removed after the test."""
    name = f"gamstore-{uuid.uuid4().hex[:12]}"
    client = _s3_admin
    client.create_bucket(Bucket=name)
    yield name
    try:  # keep the shared server small; a failure here must not mask the test result
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=name)
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)
    except Exception:  # noqa: BLE001
        pass


@pytest.fixture
def s3_store_url(s3_bucket: str) -> str:
    """``s3://<fresh bucket>/root`` on the moto server."""
    return f"s3://{s3_bucket}/root"
