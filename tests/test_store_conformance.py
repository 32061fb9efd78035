"""The packaged conformance suite on every backend: local, memory and the object stores
(S3 on moto, GCS on fake-gcs-server, Azure Blob on Azurite; the ``object_store`` fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gamstore.store import Store, open_store
from gamstore.store.memory import clear_memory_roots
from gamstore.store.testing import StoreConformance


class TestLocalStore(StoreConformance):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Any:
        def make(name: str = "a", **options: Any) -> Store:
            return open_store(tmp_path / name, **options)

        return make


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def make_store(self) -> Iterator[Any]:
        tag = uuid.uuid4().hex

        def make(name: str = "a", **options: Any) -> Store:
            return open_store(f"memory://{tag}-{name}", **options)

        yield make
        clear_memory_roots(f"{tag}-a")
        clear_memory_roots(f"{tag}-b")


class TestObjectStore(StoreConformance):
    @pytest.fixture
    def make_store(self, object_store: Any) -> Any:
        def make(name: str = "a", **options: Any) -> Store:
            return open_store(
                object_store.url(name), storage_options=object_store.options, **options
            )

        return make
