"""S3 faults: a fault-injecting proxy in front of the moto server (issue 8).

Under each fault: a lookup returns the right value or a miss within a bounded time (never an
exception, never wrong numbers, never a deleted good entry); a save commits whole or not at
all, and an acknowledged save is really there; a LOSO run completes with the right numbers
(cold where the cache was unreachable); ``stats()`` counts what happened.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from faults.proxy import FaultProxy, Rule
from faults.s3 import (
    READ_TIMEOUT,
    S3FS_RETRIES,
    fault_options,
    open_fault_store,
    request_bound_seconds,
)

import gamstore
from gamstore.store.testing import block_record, record_values_ok

pytestmark = pytest.mark.s3

KEY, SECRET = "gamstore-test-key", "gamstore-test-secret"
KS = "block"

# A lookup is at most three rounds of requests: LIST, marker GETs, array GETs (concurrent).
LOOKUP_ROUNDS = 3


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_endpoint) as p:
        yield p


@pytest.fixture
def clean(s3_store_url: str, s3_options: dict[str, Any]) -> gamstore.Store:
    """A store on the same root that talks to moto directly (the ground truth)."""
    return gamstore.open_store(s3_store_url, storage_options=s3_options)


@pytest.fixture
def faulty(proxy: FaultProxy, s3_store_url: str, clean: gamstore.Store) -> gamstore.Store:
    """A store on the same root behind the fault proxy, short timeouts."""
    return open_fault_store(s3_store_url, fault_options(proxy.endpoint, KEY, SECRET))


def _matrix(names: list[str], fast: set[str]) -> list[Any]:
    """Every combination; those outside ``fast`` run only under ``-m stress``."""
    return [n if n in fast else pytest.param(n, marks=pytest.mark.stress) for n in sorted(names)]


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


# Where a lookup's fault lands: the key listing, the entry marker GET, an array chunk GET.
TARGETS = {
    "list": {"method": "GET", "query_contains": "list-type"},
    "marker": {"method": "GET", "path_contains": "zarr.json"},
    "chunk": {"method": "GET", "path_contains": "/values/0"},
}
READ_FAULTS = {
    "drop": {"fault": "drop"},
    "drop_after": {"fault": "drop_after"},
    "500": {"fault": "status", "status": 500},
    "503_slowdown": {"fault": "status", "status": 503},
    "truncate": {"fault": "truncate", "keep": 0.5},
    "delay": {"fault": "delay", "seconds": 2 * READ_TIMEOUT},
}
# One transient fault on one request is absorbed by the clients' retries, except a body
# truncated after the headers (read outside the retry loop): that one may be a miss.
MAY_MISS_ONCE = {"truncate"}


@pytest.mark.parametrize("target", _matrix(list(TARGETS), {"marker"}))
@pytest.mark.parametrize(
    "fault", _matrix(list(READ_FAULTS), {"drop_after", "503_slowdown", "truncate"})
)
def test_lookup_under_one_transient_fault(
    fault: str, target: str, proxy: FaultProxy, clean: gamstore.Store, faulty: gamstore.Store
) -> None:
    key = f"k-{fault}-{target}"
    clean.save(KS, key, block_record(key, 3))
    rule = proxy.add(Rule(times=1, **READ_FAULTS[fault], **TARGETS[target]))  # type: ignore[arg-type]
    entry, took = _timed(faulty.lookup, KS, key)
    assert rule.fired == 1
    assert took < LOOKUP_ROUNDS * request_bound_seconds(rule.seconds)
    if entry is None:
        assert fault in MAY_MISS_ONCE, f"{fault} on {target}: retries should absorb one fault"
        assert faulty.stats().misses == 1
    else:
        assert record_values_ok(entry.record, key, 3)
        assert faulty.stats().hits == 1
    # The fault is gone: the entry is intact and found (a transient fault deletes nothing).
    again = faulty.lookup(KS, key)
    assert again is not None and record_values_ok(again.record, key, 3)
    truth = clean.lookup(KS, key)
    assert truth is not None and record_values_ok(truth.record, key, 3)


@pytest.mark.parametrize("fault", _matrix(list(READ_FAULTS), {"drop", "truncate"}))
def test_lookup_under_persistent_fault_is_a_bounded_miss(
    fault: str, proxy: FaultProxy, clean: gamstore.Store, faulty: gamstore.Store
) -> None:
    key = f"k-persistent-{fault}"
    clean.save(KS, key, block_record(key, 4))
    rule = proxy.add(Rule(times=-1, **READ_FAULTS[fault]))  # type: ignore[arg-type]
    entry, took = _timed(faulty.lookup, KS, key)
    assert rule.fired >= 1
    assert entry is None  # never an exception, never wrong numbers
    assert took < LOOKUP_ROUNDS * request_bound_seconds(rule.seconds)
    s = faulty.stats()
    assert (s.misses, s.hits, s.corrupt) == (1, 0, 0)
    assert s.read_errors == 1  # an unreachable cache, not an empty one
    proxy.clear()
    # Nothing was deleted: an unreachable store is not a corrupt one.
    truth = clean.lookup(KS, key)
    assert truth is not None and record_values_ok(truth.record, key, 4)
    back = faulty.lookup(KS, key)
    assert back is not None and record_values_ok(back.record, key, 4)


SAVE_TARGETS = {
    "payload_put": {"method": "PUT", "path_contains": "/values/"},
    "marker_put": {"method": "PUT", "header": "If-None-Match"},
}
SAVE_FAULTS = {
    "drop": {"fault": "drop"},
    "drop_after": {"fault": "drop_after"},
    "500": {"fault": "status", "status": 500},
    "503_slowdown": {"fault": "status", "status": 503},
    "delay": {"fault": "delay", "seconds": 2 * READ_TIMEOUT},
}


def _assert_whole_or_nothing(
    clean: gamstore.Store, key: str, seed: int, entry_id: str | None
) -> None:
    committed = [i for i in clean.entries(KS) if i.folder == gamstore.store.key_folder(KS, key)]
    if entry_id is None:
        # Not acknowledged: usually nothing, but a request that timed out on the client may
        # still land later; then the entry must be whole (an unacknowledged commit).
        for info in committed:
            got = clean.read_entry(info)
            assert got is not None and record_values_ok(got.record, key, seed)
    else:
        assert [i.entry_id for i in committed] == [entry_id], "an acknowledged save is stored"
        got = clean.lookup_latest(KS, key)
        assert got is not None and got.entry_id == entry_id
        assert record_values_ok(got.record, key, seed)
    report = clean.verify()
    assert report.corrupt == ()
    clean.gc(grace=0.0)  # leftovers of a failed save are garbage, not entries
    assert clean.verify().uncommitted == 0


@pytest.mark.parametrize("target", sorted(SAVE_TARGETS))
@pytest.mark.parametrize("fault", _matrix(list(SAVE_FAULTS), {"drop", "drop_after"}))
def test_save_under_one_transient_fault_commits(
    fault: str, target: str, proxy: FaultProxy, clean: gamstore.Store, faulty: gamstore.Store
) -> None:
    key = f"s-{fault}-{target}"
    faulty.ensure_levels(KS, key)  # the key's level docs exist: the create-only PUT is the marker
    rule = proxy.add(Rule(times=1, **SAVE_FAULTS[fault], **SAVE_TARGETS[target]))  # type: ignore[arg-type]
    entry_id, took = _timed(faulty.save, KS, key, block_record(key, 5))
    assert rule.fired == 1
    assert took < 3 * request_bound_seconds(rule.seconds)
    # One lost request or response is retried; a create-only marker PUT whose first attempt
    # landed must be recognised as our own commit, not as a conflict.
    assert entry_id is not None
    assert faulty.stats().save_errors == 0
    _assert_whole_or_nothing(clean, key, 5, entry_id)


@pytest.mark.parametrize("target", _matrix([*SAVE_TARGETS, "all"], {"marker_put", "all"}))
@pytest.mark.parametrize("fault", _matrix(list(SAVE_FAULTS), {"drop"}))
def test_save_under_persistent_fault_is_whole_or_nothing(
    fault: str,
    target: str,
    proxy: FaultProxy,
    clean: gamstore.Store,
    faulty: gamstore.Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = f"p-{fault}-{target}"
    faulty.ensure_levels(KS, key)  # the key's level docs exist: the create-only PUT is the marker
    where = SAVE_TARGETS.get(target, {})
    rule = proxy.add(Rule(times=-1, **SAVE_FAULTS[fault], **where))  # type: ignore[arg-type]
    with caplog.at_level("WARNING", logger="gamstore"):
        entry_id, took = _timed(faulty.save, KS, key, block_record(key, 6))
    assert rule.fired >= 1
    assert took < 4 * request_bound_seconds(rule.seconds)
    proxy.clear()
    _assert_whole_or_nothing(clean, key, 6, entry_id)
    if entry_id is None:
        assert faulty.stats().save_errors == 1
        assert any("save to" in r.getMessage() for r in caplog.records)
    else:  # drop_after lets every request land: the save really happened
        assert fault == "drop_after"


def test_stats_count_requests_hits_misses_and_errors(
    proxy: FaultProxy, clean: gamstore.Store, s3_store_url: str
) -> None:
    opts = fault_options(proxy.endpoint, KEY, SECRET)
    opts["config_kwargs"]["retries"] = {"max_attempts": 1}  # counting, not retrying
    faulty = open_fault_store(s3_store_url, opts)
    clean.save(KS, "counted", block_record("counted", 1))
    assert faulty.lookup(KS, "counted") is not None
    with proxy.fault(Rule("drop", times=-1)):
        assert faulty.lookup(KS, "missing") is None
        assert faulty.save(KS, "lost", block_record("lost", 2)) is None
    assert faulty.lookup(KS, "absent") is None  # reachable again: a clean miss
    s = faulty.stats()
    assert (s.hits, s.misses, s.saves, s.save_errors) == (1, 2, 0, 1)
    assert s.read_errors == 1  # the miss under the fault, not the clean one
    # Logical requests by kind (client retries are not counted separately).
    assert s.requests["list"] >= 2 and s.requests["get"] >= 1 and s.requests["put"] >= 1


# -- LOSO through a faulty cache ---------------------------------------------------------------


@pytest.fixture(scope="module")
def loso_data() -> Any:
    from gamstore.loso import simulate

    return simulate("gaussian", n=600, n_subjects=3, seed=11)


def _model() -> Any:
    from gamstore.fit import GAM, s

    return GAM([s("x0"), s("x1")], family="gaussian")


@pytest.fixture(scope="module")
def loso_cold(loso_data: Any) -> Any:
    from gamstore.loso import run_loso

    return run_loso(loso_data, _model(), subject="subj", warm=False)


def _same_optimum(ds: Any, cold: Any, rtol: float) -> None:
    assert (ds["status"] == "ok").all()
    got = ds["reml"].sel(start="warm").values
    want = cold["reml"].sel(start="cold").values
    np.testing.assert_allclose(got, want, rtol=rtol)
    np.testing.assert_allclose(ds["full_reml"].item(), cold["full_reml"].item(), rtol=1e-12)


@pytest.mark.stress
def test_loso_completes_cold_when_cache_goes_away(
    proxy: FaultProxy, faulty: gamstore.Store, loso_data: Any, loso_cold: Any
) -> None:
    from gamstore.loso import run_loso

    proxy.add(Rule("drop", times=-1))  # unreachable after open
    ds = run_loso(loso_data, _model(), subject="subj", store=faulty)
    _same_optimum(ds, loso_cold, rtol=1e-10)
    assert set(ds["warm_source"].values.ravel()) == {"cold"}
    assert faulty.stats().saves == 0


def test_loso_completes_under_intermittent_faults(
    proxy: FaultProxy, faulty: gamstore.Store, loso_data: Any, loso_cold: Any
) -> None:
    from gamstore.loso import run_loso

    for skip, fault in ((2, "drop"), (5, "drop_after"), (9, "truncate"), (13, "status")):
        proxy.add(Rule(fault, times=2, skip=skip))
    ds = run_loso(loso_data, _model(), subject="subj", store=faulty)
    assert proxy.fired() >= 1
    _same_optimum(ds, loso_cold, rtol=1e-6)
    assert set(ds["warm_source"].values.ravel()) <= {"cold", "cross-fit", "session", "exact"}


def test_loso_completes_cold_when_cache_unreachable_from_start(
    proxy: FaultProxy,
    s3_store_url: str,
    loso_data: Any,
    loso_cold: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import s3fs

    from gamstore.loso import run_loso

    monkeypatch.setattr(s3fs.S3FileSystem, "retries", S3FS_RETRIES)  # run_loso opens the URL

    proxy.add(Rule("drop", times=-1))
    opts = fault_options(proxy.endpoint, KEY, SECRET)
    t0 = time.perf_counter()
    ds = run_loso(loso_data, _model(), subject="subj", store=s3_store_url, storage_options=opts)
    assert time.perf_counter() - t0 < 120
    _same_optimum(ds, loso_cold, rtol=1e-10)
    assert set(ds["warm_source"].values.ravel()) == {"cold"}


def test_late_marker_put_after_a_failed_save_never_leaves_a_torn_entry(
    proxy: FaultProxy, clean: gamstore.Store, faulty: gamstore.Store
) -> None:
    key = "late-marker"
    faulty.ensure_levels(KS, key)  # the key's level docs exist: the create-only PUT is the marker
    # Every create-only marker PUT is held 1 s (> read timeout), then still forwarded.
    proxy.add(Rule("delay", method="PUT", header="If-None-Match", seconds=1.0, times=-1))
    assert faulty.save(KS, key, block_record(key, 8)) is None
    time.sleep(1.5)  # the delayed PUTs land now, after the save gave up
    proxy.clear()
    report = clean.verify()
    assert report.corrupt == (), "a marker landed without its arrays"
    _assert_whole_or_nothing(clean, key, 8, None)


def test_failed_save_leaves_no_requests_in_flight(
    proxy: FaultProxy, clean: gamstore.Store, faulty: gamstore.Store
) -> None:
    # A few payload PUTs pass, the rest are dropped: the concurrent writes of put_many must
    # all have finished (retries included) before save() reports the failure and cleans up.
    proxy.add(Rule("drop", method="PUT", skip=3, times=-1))
    assert faulty.save(KS, "straggle", block_record("straggle", 1)) is None
    arrived = proxy.requests()
    time.sleep(2.0)  # longer than any client backoff (2 attempts, <= 1 s jitter)
    assert proxy.requests() == arrived, "requests of a failed save arrived after it returned"
    proxy.clear()
    report = clean.verify()
    assert report.corrupt == () and report.uncommitted == 0  # its cleanup saw every object


@pytest.mark.parametrize("target", ["marker", "chunk"])
def test_bytes_corrupted_in_transit_are_a_miss_not_a_deletion(
    target: str, proxy: FaultProxy, clean: gamstore.Store, faulty: gamstore.Store
) -> None:
    key = f"flip-{target}"
    clean.save(KS, key, block_record(key, 9))
    rule = proxy.add(Rule("corrupt", times=1, **TARGETS[target]))  # type: ignore[arg-type]
    entry = faulty.lookup(KS, key)
    assert rule.fired == 1
    assert entry is None or record_values_ok(entry.record, key, 9)  # never wrong numbers
    # One bad read in transit is not proof that the stored entry is bad: it must survive.
    truth = clean.lookup(KS, key)
    assert truth is not None and record_values_ok(truth.record, key, 9)


@pytest.mark.parametrize("fault", ["drop", "delay"])
def test_unreachable_store_raises_a_store_error_on_open(
    fault: str, proxy: FaultProxy, s3_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    from gamstore.store import StoreError

    # open_store talks to S3 before open_fault_store can cap s3fs's retry loop: cap it here
    monkeypatch.setattr(s3fs.S3FileSystem, "retries", S3FS_RETRIES)
    proxy.add(Rule(fault, seconds=2 * READ_TIMEOUT, times=-1))
    t0 = time.perf_counter()
    with pytest.raises(StoreError, match="s3://"):  # an OSError, not a raw client exception
        open_fault_store(f"{s3_store_url}-unreachable", fault_options(proxy.endpoint, KEY, SECRET))
    # one request round; x2 for a loaded machine (botocore's jittered backoff is not capped)
    assert time.perf_counter() - t0 < 2 * request_bound_seconds(2 * READ_TIMEOUT)


# -- default timeouts, read errors, the warm-start circuit breaker -------------------------------


def _default_options(endpoint: str, **extra: Any) -> dict[str, Any]:
    """storage_options with gamstore's default timeouts and retries (no config_kwargs)."""
    return {"endpoint_url": endpoint, "key": KEY, "secret": SECRET, **extra}


def test_black_holed_endpoint_is_a_miss_within_the_default_bound(
    proxy: FaultProxy, s3_store_url: str, clean: gamstore.Store
) -> None:
    from gamstore.store.s3 import DEFAULT_CONFIG, request_bound_seconds

    clean.save(KS, "held", block_record("held", 2))
    store = gamstore.open_store(s3_store_url, storage_options=_default_options(proxy.endpoint))
    # Every request is accepted and then held far beyond the read timeout: a black hole.
    rule = proxy.add(Rule("delay", seconds=35.0, times=-1))
    entry, took = _timed(store.lookup, KS, "held")
    assert entry is None and rule.fired == 2  # the LIST, tried twice; the lookup ends there
    bound = request_bound_seconds()  # 25.1 s: the documented per-request bound
    # the connection is accepted at once, so each try waits one read timeout
    assert 2 * DEFAULT_CONFIG["read_timeout"] - 0.5 <= took < bound
    s = store.stats()
    assert (s.misses, s.read_errors, s.corrupt) == (1, 1, 0)


@pytest.mark.parametrize(
    ("fault", "retries", "expected"),
    [
        ({"fault": "status", "status": 500}, None, 2),  # 2 botocore tries, 1 s3fs pass
        ({"fault": "status", "status": 503}, 2, 4),  # SlowDown: s3fs passes x botocore tries
    ],
)
def test_tries_per_request_are_what_the_bound_assumes(
    fault: dict[str, Any],
    retries: int | None,
    expected: int,
    proxy: FaultProxy,
    s3_store_url: str,
    clean: gamstore.Store,
) -> None:
    extra = {} if retries is None else {"retries": retries}
    store = gamstore.open_store(
        s3_store_url, storage_options=_default_options(proxy.endpoint, **extra)
    )
    proxy.clear()
    proxy.add(Rule(times=-1, **fault))  # type: ignore[arg-type]
    assert store.lookup(KS, "absent") is None
    assert proxy.requests() == expected
    assert store.stats().read_errors == 1


def test_dropped_connections_cost_little_with_the_defaults(
    proxy: FaultProxy, s3_store_url: str, clean: gamstore.Store
) -> None:
    store = gamstore.open_store(s3_store_url, storage_options=_default_options(proxy.endpoint))
    proxy.clear()
    proxy.add(Rule("drop", times=-1))
    entry, took = _timed(store.lookup, KS, "absent")
    assert entry is None and store.stats().read_errors == 1
    # 2 botocore tries; aiohttp itself retries an idempotent request once when a reused
    # keep-alive connection is closed under it, so up to 2 requests per try
    assert 2 <= proxy.requests() <= 4
    assert took < 5.0  # a cut is immediate: only botocore's backoff (<= 1 s) is paid


def test_breaker_stops_paying_the_retry_bound(
    proxy: FaultProxy,
    clean: gamstore.Store,
    faulty: gamstore.Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gamstore.warmstart.capability import WarmStartStore

    clean.save(KS, "bk", block_record("bk", 3))
    ws = WarmStartStore(store=faulty)
    now = [0.0]
    ws._clock = lambda: now[0]
    assert ws.lookup(KS, "bk") is not None  # reachable: a hit
    proxy.add(Rule("drop", times=-1))  # the cache goes away
    with caplog.at_level("WARNING", logger="gamstore"):
        for _ in range(3):
            assert ws.lookup(KS, "bk") is None
        sent = proxy.requests()
        t0 = time.perf_counter()
        for _ in range(20):  # e.g. the remaining folds of a LOSO run
            assert ws.lookup(KS, "bk") is None
            assert ws.lookup_latest(KS, "bk") is None
        took = time.perf_counter() - t0
    assert proxy.requests() == sent, "reads reached the store while the breaker was open"
    assert took < 0.5 and ws.reads_skipped == 40
    assert faulty.stats().read_errors == 3
    assert len([r for r in caplog.records if "consecutive reads failed" in r.getMessage()]) == 1
    proxy.clear()  # the cache comes back; after the cool-down one probe finds it
    now[0] += 61.0
    entry = ws.lookup(KS, "bk")
    assert entry is not None and record_values_ok(entry.record, "bk", 3)
    assert not ws.reads_paused


def test_loso_on_an_unreachable_read_only_cache_stops_reading(
    proxy: FaultProxy,
    s3_store_url: str,
    clean: gamstore.Store,
    loso_data: Any,
    loso_cold: Any,
) -> None:
    from gamstore.loso import run_loso
    from gamstore.warmstart.capability import BREAKER_FAILURES, WarmStartStore

    # Read-only: no save can fail and disable the capability; only the breaker stops reads.
    store = open_fault_store(
        s3_store_url, fault_options(proxy.endpoint, KEY, SECRET), read_only=True
    )
    ws = WarmStartStore(store=store)
    proxy.add(Rule("drop", times=-1))
    ds = run_loso(loso_data, _model(), subject="subj", store=ws)
    _same_optimum(ds, loso_cold, rtol=1e-10)
    assert set(ds["warm_source"].values.ravel()) == {"cold"}
    s = store.stats()
    assert s.read_errors == BREAKER_FAILURES  # then no read reached the store
    assert ws.reads_skipped >= 3 and ws.reads_paused and ws.available


# -- the wall-clock deadline per operation ------------------------------------------------------


def test_trickling_server_is_cut_by_the_request_deadline(
    proxy: FaultProxy, s3_store_url: str, clean: gamstore.Store
) -> None:
    from gamstore.store.s3 import DEFAULT_CONFIG

    clean.save(KS, "drip", block_record("drip", 3))
    deadline = 2.0
    store = gamstore.open_store(
        s3_store_url,
        storage_options=_default_options(proxy.endpoint, request_deadline=deadline),
    )
    # One byte every 50 ms: each socket read returns long before the 10 s read timeout, so
    # without a deadline the key listing alone (hundreds of bytes) would take many seconds.
    rule = proxy.add(Rule("drip", method="GET", seconds=0.05, chunk=1, times=-1))
    entry, took = _timed(store.lookup, KS, "drip")
    assert entry is None and rule.fired >= 1
    assert deadline - 0.2 <= took < deadline + 1.5
    assert took < DEFAULT_CONFIG["read_timeout"]  # the timeouts never fired: the deadline did
    s = store.stats()
    assert (s.misses, s.read_errors) == (1, 1)
    # the same store answers again once the server behaves
    proxy.clear()
    got = store.lookup(KS, "drip")
    assert got is not None and record_values_ok(got.record, "drip", 3)


def test_slow_but_healthy_reads_finish_inside_the_deadline(
    proxy: FaultProxy, s3_store_url: str, clean: gamstore.Store
) -> None:
    clean.save(KS, "slow", block_record("slow", 4))
    for deadline in (30.0, None):
        store = gamstore.open_store(
            s3_store_url,
            storage_options=_default_options(proxy.endpoint, request_deadline=deadline),
        )
        proxy.clear()
        rule = proxy.add(Rule("drip", method="GET", seconds=0.01, chunk=64, times=-1))
        got, took = _timed(store.lookup, KS, "slow")
        assert got is not None and record_values_ok(got.record, "slow", 4), deadline
        # at least the key listing trickled (entries already read may come from memory)
        assert rule.fired >= 1 and took < 20
        assert store.stats().read_errors == 0


def test_save_past_the_deadline_is_whole_or_nothing(
    proxy: FaultProxy, s3_store_url: str, clean: gamstore.Store
) -> None:
    key = "late-by-deadline"
    store = gamstore.open_store(
        s3_store_url, storage_options=_default_options(proxy.endpoint, request_deadline=1.5)
    )
    store.ensure_levels(KS, key)  # the key's level docs exist: the create-only PUT is the marker
    # the create-only marker PUT is held 3 s (inside the 10 s read timeout) and then forwarded
    proxy.add(Rule("delay", method="PUT", header="If-None-Match", seconds=3.0, times=-1))
    saved, took = _timed(store.save, KS, key, block_record(key, 8))
    assert saved is None and took < 3.0
    assert store.stats().save_errors == 1
    time.sleep(2.5)  # the held marker lands now, after the save gave up
    proxy.clear()
    _assert_whole_or_nothing(clean, key, 8, None)
