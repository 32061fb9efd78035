"""S3 specifics on a moto server: requests per operation, create-only markers, secrets."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from gamstore.store import Store, open_store
from gamstore.store.testing import block_record

pytestmark = pytest.mark.s3


class CallCounter:
    """Counts every S3 API call s3fs makes (wraps ``S3FileSystem._call_s3``)."""

    def __init__(self, store: Store) -> None:
        self.fs = store.backend.fs  # type: ignore[attr-defined]
        self.calls: Counter[str] = Counter()
        self.conditional = 0
        self._orig = self.fs._call_s3

        async def counting(method: str, *args: Any, **kwargs: Any) -> Any:
            self.calls[method] += 1
            if kwargs.get("IfNoneMatch") == "*":
                self.conditional += 1
            return await self._orig(method, *args, **kwargs)

        self.fs._call_s3 = counting

    def take(self) -> Counter[str]:
        out, self.calls = self.calls, Counter()
        self.conditional = 0
        return out

    def restore(self) -> None:
        self.fs._call_s3 = self._orig


@pytest.fixture
def counted(s3_store_url: str, s3_options: dict[str, Any]) -> Iterator[tuple[Store, CallCounter]]:
    store = open_store(s3_store_url, storage_options=s3_options, sweep_every=10**6)
    counter = CallCounter(store)
    yield store, counter
    counter.restore()


def test_request_counts_save_hit_miss(counted: tuple[Store, CallCounter]) -> None:
    store, counter = counted
    store.save("block", "warm", block_record("warm"))  # first save of the process sweeps
    counter.take()
    rec = block_record("k")
    assert store.save("block", "k", rec, objective=1.0) is not None
    assert counter.conditional == 1  # If-None-Match: * on the marker only
    save = counter.take()
    n_objects = 13  # 6 arrays x (zarr.json + chunk) + block_beta/zarr.json; marker extra
    # save = one PUT per object, the marker create-only; no HEAD, GET or LIST
    assert set(save) == {"put_object"}
    assert save["put_object"] == n_objects + 1

    store._state.decoded.clear()
    store._state.markers.clear()
    e = store.lookup("block", "k")
    assert e is not None and e.record == rec
    hit = counter.take()
    # hit = 1 LIST + 1 marker GET + the array GETs, nothing else
    assert hit == Counter({"list_objects_v2": 1, "get_object": 1 + n_objects})

    e2 = store.lookup("block", "k")  # repeated hit: validated by the listing alone
    assert e2 is e
    assert counter.take() == Counter({"list_objects_v2": 1})

    assert store.lookup("block", "absent") is None
    assert counter.take() == Counter({"list_objects_v2": 1})  # miss = 1 LIST


def test_marker_is_create_only(counted: tuple[Store, CallCounter]) -> None:
    store, _ = counted
    be = store.backend
    assert be.put_if_absent("x/zarr.json", b"first")
    assert not be.put_if_absent("x/zarr.json", b"second")
    assert be.get("x/zarr.json") == b"first"


def test_secrets_never_leak(
    s3_bucket: str, s3_options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    secret = s3_options["secret"]
    with caplog.at_level(logging.DEBUG):
        store = open_store(f"s3://{s3_bucket}/root", storage_options=s3_options)
        store.save("block", "k", block_record("k"))
        assert store.lookup("block", "k") is not None
        info = next(iter(store.entries()))
        attrs = store.read_marker(info)
        # a storage error: the bucket disappears under the store
        bad = open_store(
            f"s3://{s3_bucket}-missing/root",
            storage_options=s3_options,
            read_only=True,
        )
        assert bad.lookup("block", "k") is None
        with pytest.raises(Exception) as excinfo:
            open_store(f"s3://{s3_bucket}-missing/root", storage_options=s3_options)
    texts = [repr(store), store.url, repr(store.backend), str(attrs), str(excinfo.value)]
    texts += [r.getMessage() for r in caplog.records]
    for text in texts:
        assert secret not in text
    assert store.url == f"s3://{s3_bucket}/root"


def test_credentials_in_url_refused(s3_bucket: str, s3_options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="storage_options"):
        open_store(f"s3://user:pw@{s3_bucket}/root", storage_options=s3_options)


def test_read_only_s3_reads_without_writing(s3_store_url: str, s3_options: dict[str, Any]) -> None:
    w = open_store(s3_store_url, storage_options=s3_options)
    w.save("block", "k", block_record("k"))
    ro = open_store(s3_store_url, storage_options=s3_options, read_only=True)
    counter = CallCounter(ro)
    assert ro.lookup("block", "k") is not None
    ro.flush()
    calls = counter.take()
    counter.restore()
    assert "put_object" not in calls and "delete_object" not in calls


def test_zarr_store_on_s3_reads_entry(s3_store_url: str, s3_options: dict[str, Any]) -> None:
    import numpy as np
    import zarr

    s = open_store(s3_store_url, storage_options=s3_options)
    rec = block_record("k")
    s.save("block", "k", rec)
    info = next(iter(s.entries()))
    g = zarr.open_group(s.zarr_store(), path=info.path, mode="r", zarr_format=3)
    np.testing.assert_array_equal(g["block_beta/4"][:], rec.block_beta[4])  # type: ignore[index]
