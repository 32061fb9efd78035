"""The packaged conformance suite on the local, memory and S3 (moto) backends."""

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


@pytest.mark.s3
class TestS3Store(StoreConformance):
    @pytest.fixture
    def make_store(self, s3_bucket: str, s3_options: dict[str, Any]) -> Any:
        def make(name: str = "a", **options: Any) -> Store:
            return open_store(f"s3://{s3_bucket}/{name}", storage_options=s3_options, **options)

        return make
