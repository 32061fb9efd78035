"""S3 specifics on a moto server: requests per operation, create-only markers, secrets."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from gamstore.store import Store, codec, key_folder, open_store
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
    # entry format 2: values + offsets (zarr.json + chunk each); marker extra (format 1 wrote
    # 13: 6 arrays x (zarr.json + chunk) + block_beta/zarr.json)
    n_objects = 4
    # first save under a new key in a new shard: + the shard's level doc (layout 2 has no
    # key folder, so no key level doc)
    assert key_folder("block", "warm")[:2] != key_folder("block", "k")[:2]
    assert store.save("block", "k", block_record("k", 1), objective=2.0) is not None
    assert counter.conditional == 2  # If-None-Match: * on the marker and the shard doc
    # + one HEAD of a payload object after the commit (a concurrent gc may have taken it)
    assert counter.take() == Counter({"put_object": n_objects + 2, "head_object": 1})
    # first save under a new key in a known shard: exactly what a repeat save costs
    same = next(
        f"s{i}"
        for i in range(9999)
        if key_folder("block", f"s{i}")[:2] == key_folder("block", "k")[:2]
    )
    assert store.save("block", same, block_record(same, 1)) is not None
    assert counter.conditional == 1
    assert counter.take() == Counter({"put_object": n_objects + 1, "head_object": 1})
    assert store.save("block", "k", rec, objective=1.0) is not None
    assert counter.conditional == 1  # If-None-Match: * on the marker only
    save = counter.take()
    # a repeat save = one PUT per object, the marker create-only, one HEAD; no GET or LIST
    assert save == Counter({"put_object": n_objects + 1, "head_object": 1})

    store._state.decoded.clear()
    store._state.markers.clear()
    e = store.lookup("block", "k")
    assert e is not None and e.record == rec
    hit = counter.take()
    # hit = 1 LIST + the 2 markers' GETs + the best entry's array GETs, nothing else
    assert hit == Counter({"list_objects_v2": 1, "get_object": 2 + n_objects})

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


@pytest.mark.parametrize("extra", [{}, {"retries": 2, "request_deadline": 30}])
def test_zarr_store_on_s3_reads_entry(
    extra: dict[str, Any], s3_store_url: str, s3_options: dict[str, Any]
) -> None:
    import numpy as np
    import zarr

    # gamstore's own options (retries, request_deadline) must not reach zarr's s3fs client
    s = open_store(s3_store_url, storage_options={**s3_options, **extra})
    rec = block_record("k")
    s.save("block", "k", rec)
    info = next(iter(s.entries()))
    g = zarr.open_group(s.zarr_store(), path=info.path, mode="r", zarr_format=3)
    parts = codec.group_parts(g)  # entry format 2: the packs split at offsets
    np.testing.assert_array_equal(parts["block_beta/4"], rec.block_beta[4])


# -- timeouts and retries sized for a cache ------------------------------------------------------


def test_default_timeouts_and_retries_reach_the_client(
    s3_store_url: str, s3_options: dict[str, Any]
) -> None:
    import s3fs

    from gamstore.store.s3 import request_bound_seconds

    store = open_store(s3_store_url, storage_options=s3_options)
    fs = store.backend.fs  # type: ignore[attr-defined]
    conf = fs.s3.meta.config  # the botocore client actually built
    assert (conf.connect_timeout, conf.read_timeout) == (2, 10)
    assert conf.retries["mode"] == "standard" and conf.retries["total_max_attempts"] == 2
    assert fs.retries == 1  # one pass of s3fs's loop ...
    assert s3fs.S3FileSystem.retries == 5  # ... set on the instance, the class is untouched
    # 1 pass x (2 tries x (2 s + 10 s) + <= 1 s botocore backoff) + 0.1 s s3fs sleep
    assert store.backend.request_bound == pytest.approx(25.1)  # type: ignore[attr-defined]
    assert request_bound_seconds() == pytest.approx(25.1)


def test_s3fs_retries_through_storage_options(
    s3_store_url: str, s3_options: dict[str, Any]
) -> None:
    # used to crash inside aiobotocore (s3fs handed ``retries`` on to the client)
    store = open_store(s3_store_url, storage_options={**s3_options, "retries": 3})
    assert store.backend.fs.retries == 3  # type: ignore[attr-defined]
    assert store.save("block", "k", block_record("k")) is not None
    assert store.lookup("block", "k") is not None
    other = open_store(s3_store_url, storage_options=s3_options)  # not the same cached client
    assert other.backend.fs.retries == 1  # type: ignore[attr-defined]
    assert store.backend.request_bound > other.backend.request_bound  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [0, -1, 2.0, "3", True, None])
def test_bad_s3fs_retries_named(bad: object, s3_store_url: str, s3_options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"storage_options\.retries"):
        open_store(s3_store_url, storage_options={**s3_options, "retries": bad})


def test_config_kwargs_merge_over_the_defaults(
    s3_store_url: str, s3_options: dict[str, Any]
) -> None:
    opts = {**s3_options, "config_kwargs": {"read_timeout": 1.5}}
    store = open_store(s3_store_url, storage_options=opts)
    conf = store.backend.fs.s3.meta.config  # type: ignore[attr-defined]
    assert (conf.connect_timeout, conf.read_timeout) == (2, 1.5)
    assert conf.retries["total_max_attempts"] == 2
    with pytest.raises(TypeError, match=r"storage_options\.config_kwargs"):
        open_store(s3_store_url, storage_options={**s3_options, "config_kwargs": [1]})


def test_request_bound_follows_botocore_semantics() -> None:
    from gamstore.store.s3 import request_bound_seconds

    short = {"connect_timeout": 0.3, "read_timeout": 0.3}
    # botocore's ``max_attempts`` counts retries: 2 means 3 tries (backoff <= 1 s, then <= 2 s)
    three = request_bound_seconds({**short, "retries": {"max_attempts": 2, "mode": "standard"}})
    assert three == pytest.approx(3 * 0.6 + 1 + 2 + 0.1)
    total = {**short, "retries": {"total_max_attempts": 2, "mode": "standard"}}
    assert request_bound_seconds(total) == pytest.approx(2 * 0.6 + 1 + 0.1)
    # s3fs passes multiply the whole botocore cycle and add 0.1 s x 1.7**i sleeps
    assert request_bound_seconds(total, 3) == pytest.approx(3 * 2.2 + 0.1 * (1 + 1.7 + 1.7**2))
    # botocore's own defaults (legacy mode, 5 tries, 60 s timeouts) and s3fs's class default
    old = request_bound_seconds({}, 5)
    assert old > 5 * 5 * 120


def test_request_deadline_caps_the_bound(s3_store_url: str, s3_options: dict[str, Any]) -> None:
    from gamstore.store.s3 import DEFAULT_REQUEST_DEADLINE

    default = open_store(s3_store_url, storage_options=s3_options)
    assert default.backend.request_deadline == DEFAULT_REQUEST_DEADLINE  # type: ignore[attr-defined]
    assert default.backend.request_bound == pytest.approx(25.1)  # type: ignore[attr-defined]
    short = open_store(s3_store_url, storage_options={**s3_options, "request_deadline": 5})
    assert short.backend.request_bound == 5.0  # type: ignore[attr-defined]
    off = open_store(s3_store_url, storage_options={**s3_options, "request_deadline": None})
    assert off.backend.request_deadline is None  # type: ignore[attr-defined]
    assert off.backend.request_bound == pytest.approx(25.1)  # type: ignore[attr-defined]
    # gamstore's own option: the botocore client is the same cached one for every deadline
    assert short.backend.fs is default.backend.fs  # type: ignore[attr-defined]
    assert short.save("block", "k", block_record("k")) is not None
    assert off.lookup("block", "k") is not None


@pytest.mark.parametrize("bad", [0, -1.0, "3", True, float("nan"), float("inf"), [5]])
def test_bad_request_deadline_named(
    bad: object, s3_store_url: str, s3_options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"storage_options\.request_deadline"):
        open_store(s3_store_url, storage_options={**s3_options, "request_deadline": bad})
