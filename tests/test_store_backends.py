"""The packaged backend conformance suite on every backend: local, memory and the object
stores (S3 on moto, GCS on fake-gcs-server, Azure Blob on Azurite), all on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gamstore.store.backend import Backend
from gamstore.store.memory import clear_memory_roots
from gamstore.store.registry import open_backend
from gamstore.store.testing import BackendConformance


class TestLocalBackend(BackendConformance):
    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> Any:
        return lambda name="a": open_backend(str(tmp_path / name))


class TestMemoryBackend(BackendConformance):
    @pytest.fixture
    def make_backend(self) -> Iterator[Any]:
        tag = uuid.uuid4().hex
        yield lambda name="a": open_backend(f"memory://{tag}-{name}")
        clear_memory_roots(f"{tag}-a")
        clear_memory_roots(f"{tag}-b")


class TestObjectStoreBackend(BackendConformance):
    """S3, GCS and Azure through the one fsspec backend (``object_store`` fixture)."""

    @pytest.fixture
    def make_backend(self, object_store: Any) -> Any:
        def make(name: str = "a") -> Backend:
            return open_backend(f"{object_store.url_base}/{name}", object_store.options)

        return make

    @pytest.fixture
    def backend_secrets(self, object_store: Any) -> list[str]:
        return list(object_store.secrets)


def test_object_store_secrets_never_leak(
    object_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """No option value (account key, connection string) in logs, reprs, specs or errors."""
    import logging
    import traceback

    from gamstore.store import open_store
    from gamstore.store.testing import block_record

    opts = object_store.options
    missing = f"{object_store.url_base}-missing/root"
    with caplog.at_level(logging.DEBUG):
        store = open_store(object_store.url(), storage_options=opts)
        assert store.save("block", "k", block_record("k")) is not None
        assert store.lookup("block", "k") is not None
        # a storage error: the bucket does not exist
        bad = open_store(missing, storage_options=opts, read_only=True)
        assert bad.lookup("block", "k") is None
        with pytest.raises(Exception) as excinfo:
            open_store(missing, storage_options=opts)
    texts = [repr(store), str(store.url), repr(store.backend), repr(store.spec())]
    texts += [str(excinfo.value), "".join(traceback.format_exception(excinfo.value))]
    texts += [r.getMessage() for r in caplog.records]
    for secret in object_store.secrets:
        leaks = [t for t in texts if secret in t]
        assert leaks == [], leaks[0][:300]


def test_cache_identity_names_the_account_not_the_key() -> None:
    """Two Azure accounts with the same container must not share in-process caches."""
    from gamstore.store.objectstore import _endpoint_identity

    def conn(account: str, key: str) -> dict[str, str]:
        return {
            "connection_string": f"DefaultEndpointsProtocol=http;AccountName={account};"
            f"AccountKey={key};BlobEndpoint=http://127.0.0.1:1/{account};"
        }

    a = _endpoint_identity(conn("one", "S3CRETKEYA=="), ("account_name",))
    b = _endpoint_identity(conn("two", "S3CRETKEYA=="), ("account_name",))
    assert a != b and "one" in a and "S3CRETKEY" not in a + b
    assert _endpoint_identity({"endpoint_url": "http://h:9"}, ("endpoint_url",)) == (
        "endpoint_url=http://h:9"
    )
    assert _endpoint_identity({"token": "anon"}, ("endpoint_url",)) == ""
