"""The warm-start store capability: lazy open, memoization, error policy, entry cap
(spec §3.9, §5.9; checklist 43, 44, 55)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from test_warmstart_fakes import FakeEntry, FakeStore

from gamstore.records import MAX_ENTRY_BYTES, WarmStartRecord
from gamstore.store.errors import StoreError
from gamstore.warmstart.capability import WarmStartStore, clear_memo, warm_store


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    clear_memo()


def _rec(key: str = "k", n: int = 3) -> WarmStartRecord:
    return WarmStartRecord(key=key, n_rows=10, n_cols=n, rho=[0.5], beta=np.arange(float(n)))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_none_is_disk_silent() -> None:
    assert warm_store(None) is None


def test_url_memoized_per_root(tmp_path: Path) -> None:
    a = warm_store(str(tmp_path / "s"))
    b = warm_store(f"file://{tmp_path}/s/")
    c = warm_store(tmp_path / "s")
    assert a is not None and a is b is c
    assert warm_store(str(tmp_path / "other")) is not a
    assert warm_store(str(tmp_path / "s"), read_only=True) is not a
    assert warm_store(a) is a
    # constructing touches nothing on disk (lazy open, checklist 44)
    assert not (tmp_path / "s").exists()


def test_store_object_wrapped_once() -> None:
    fake = FakeStore()
    a = warm_store(fake)
    assert a is warm_store(fake)
    assert a is not None and a.store() is fake
    assert warm_store(FakeStore()) is not a


def test_bad_argument_type() -> None:
    with pytest.raises(TypeError, match="store: expected None, a URL"):
        warm_store(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly one"):
        WarmStartStore()


def test_lazy_open_and_memoized_open_failure(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def opener() -> FakeStore:
        calls.append(1)
        raise PermissionError("denied")

    ws = WarmStartStore(opener=opener)
    assert calls == []  # nothing opened until used
    with caplog.at_level(logging.INFO, logger="gamstore"):
        assert ws.lookup("inner", "k") is None
        assert ws.save("inner", "k", _rec()) is None
        assert ws.session("s") is None
        assert ws.lookup_latest("inner", "k") is None
    assert calls == [1]  # never retried
    assert not ws.available and "open failed" in (ws.disabled_reason or "")
    assert len(_warnings(caplog)) == 1


def test_io_error_disables_every_later_operation(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    assert ws.save("inner", "k", _rec()) is not None
    sess = ws.session("sess-key")
    assert sess is not None
    fake.fail_lookup = StoreError("connection reset")
    with caplog.at_level(logging.INFO, logger="gamstore"):
        assert ws.lookup("inner", "k") is None
        fake.fail_lookup = None  # storage "comes back": still disabled (no retry)
        assert ws.lookup("inner", "k") is None
        assert ws.save("inner", "k", _rec()) is None
        assert sess.load() is None
        assert sess.checkpoint(_rec(), 1.0, 1) is False
        assert sess.finalize(_rec(), 1.0, 1) is False
    assert not ws.available
    assert fake.calls == ["save:inner", "lookup:inner"]  # nothing reached the store after
    assert len(_warnings(caplog)) == 1


def test_failed_save_disables(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeStore()
    fake.save_returns_none = True  # the store's way of reporting a storage error
    ws = WarmStartStore(store=fake)
    assert ws.save("inner", "k", _rec()) is None
    assert not ws.available
    fake2 = FakeStore()
    fake2.fail_save = OSError(28, "No space left on device")
    ws2 = WarmStartStore(store=fake2)
    assert ws2.save("inner", "k", _rec()) is None
    assert not ws2.available


def test_codec_error_does_not_disable(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeStore()
    fake.fail_save = ValueError("fields.x: not strict JSON")
    ws = WarmStartStore(store=fake)
    with caplog.at_level(logging.INFO, logger="gamstore"):
        assert ws.save("inner", "k", _rec()) is None
    assert ws.available and ws.writable
    assert any("skipped" in r.getMessage() for r in caplog.records)
    fake.fail_save = None
    assert ws.save("inner", "k", _rec()) is not None
    fake.fail_lookup = TypeError("bad attrs")
    assert ws.lookup("inner", "k") is None
    assert ws.available


def test_read_only_refusal_keeps_reads() -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    assert ws.save("inner", "k", _rec()) is not None
    fake.read_only = True
    assert ws.save("inner", "k", _rec()) is None
    assert ws.available and not ws.writable
    assert ws.lookup("inner", "k") is not None
    n = len(fake.calls)
    assert ws.save("inner", "k", _rec()) is None
    assert len(fake.calls) == n  # no further write attempts


def test_oversize_record_skipped_with_log(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    n = MAX_ENTRY_BYTES // 8 + 16
    big = WarmStartRecord(key="big", n_rows=1, n_cols=n, beta=np.zeros(n))
    with caplog.at_level(logging.INFO, logger="gamstore"):
        assert ws.save("inner", "big", big) is None
    assert fake.calls == []  # never sent to the store
    assert any("entry cap" in r.getMessage() for r in caplog.records)
    assert ws.available  # a skip is not an error


def test_oversize_entry_on_load_is_a_miss() -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    fake.fake_nbytes = MAX_ENTRY_BYTES + 1
    assert ws.save("inner", "k", _rec()) is not None
    assert ws.lookup("inner", "k") is None
    assert ws.lookup_latest("inner", "k") is None
    fake.fake_nbytes = MAX_ENTRY_BYTES
    assert ws.save("inner", "k2", _rec("k2")) is not None
    assert ws.lookup("inner", "k2") is not None


def test_pickles_as_the_capability_for_its_root(tmp_path: Path) -> None:
    import pickle

    ws = warm_store(str(tmp_path / "p"))
    assert ws is not None
    assert ws.save("inner", "k", _rec()) is not None
    back = pickle.loads(pickle.dumps(ws))
    assert back is ws  # same process: the memoized handle for that root
    clear_memo()
    fresh = pickle.loads(pickle.dumps(ws))  # as in a worker process
    assert fresh is not ws and fresh is not None
    assert fresh.lookup("inner", "k") is not None
    from gamstore.store import open_store

    wrapped = WarmStartStore(store=open_store(str(tmp_path / "q")))
    clone = pickle.loads(pickle.dumps(wrapped))
    assert clone is not None and clone.url == wrapped.url
    with pytest.raises(TypeError, match="custom opener"):
        pickle.dumps(WarmStartStore(opener=FakeStore))


def test_store_enforced_cap_is_a_logged_skip(caplog: pytest.LogCaptureFixture) -> None:
    # array bytes just under the cap: the warm-start pre-check passes, the store's exact
    # encoded size (metadata + checksums) exceeds it -> a skip, not an error
    from gamstore.store import open_store

    ws = WarmStartStore(store=open_store("memory://ws-cap-edge"))
    n = MAX_ENTRY_BYTES // 8 - 2
    rec = WarmStartRecord(key="edge", n_rows=1, n_cols=n, beta=np.zeros(n), rho=[0.0])
    with caplog.at_level(logging.INFO, logger="gamstore"):
        assert ws.save("inner", "edge", rec) is None
    assert ws.available and ws.writable
    assert any("cap" in r.getMessage() for r in caplog.records)
    assert ws.save("inner", "small", _rec("small")) is not None


def test_record_errors_logged_once_per_operation(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeStore()
    fake.fail_save = ValueError("fields.x: not strict JSON")
    ws = WarmStartStore(store=fake)
    with caplog.at_level(logging.INFO, logger="gamstore"):
        for _ in range(5):
            assert ws.save("block", "k", _rec()) is None
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "skipped" in r.getMessage()]
    assert len(infos) == 1
    assert ws.available


def test_concurrent_first_use_opens_once(tmp_path: Path) -> None:
    import threading

    from gamstore.store import open_store

    opened: list[int] = []

    def opener() -> object:
        opened.append(1)
        return open_store(str(tmp_path / "c"))

    ws = WarmStartStore(opener=opener)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            barrier.wait()
            for j in range(3):
                key = f"k{i}-{j}"
                assert ws.save("inner", key, _rec(key)) is not None
                entry = ws.lookup("inner", key)
                assert entry is not None and entry.record.key == key
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert opened == [1]
    assert ws.available


# -- read circuit breaker ------------------------------------------------------------------------


class _Stats:
    def __init__(self, read_errors: int) -> None:
        self.read_errors = read_errors


class UnreachableStore(FakeStore):
    """A FakeStore whose reads, while ``down``, behave like a real Store's on I/O failure:
    a miss (None) plus one ``stats().read_errors``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.read_errors = 0

    def stats(self) -> _Stats:
        return _Stats(self.read_errors)

    def lookup(self, keyspace: str, key: str) -> FakeEntry | None:
        if self.down:
            self.calls.append(f"lookup:{keyspace}")
            self.read_errors += 1
            return None
        return super().lookup(keyspace, key)

    def lookup_latest(self, keyspace: str, key: str) -> FakeEntry | None:
        if self.down:
            self.calls.append(f"lookup_latest:{keyspace}")
            self.read_errors += 1
            return None
        return super().lookup_latest(keyspace, key)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(store: FakeStore, **kwargs: object) -> tuple[WarmStartStore, Clock]:
    ws = WarmStartStore(store=store, **kwargs)  # type: ignore[arg-type]
    clock = Clock()
    ws._clock = clock
    return ws, clock


def _reads(store: FakeStore) -> int:
    return sum(c.startswith("lookup") for c in store.calls)


def test_breaker_opens_after_three_failed_reads(caplog: pytest.LogCaptureFixture) -> None:
    from gamstore.warmstart.capability import BREAKER_COOLDOWN, BREAKER_FAILURES

    assert (BREAKER_FAILURES, BREAKER_COOLDOWN) == (3, 60.0)  # the documented defaults
    fake = UnreachableStore()
    ws, _clock = _breaker(fake)
    assert ws.save("inner", "k", _rec()) is not None
    fake.down = True
    with caplog.at_level(logging.INFO, logger="gamstore"):
        assert ws.lookup("inner", "k") is None
        assert ws.lookup_latest("inner", "k") is None
        assert not ws.reads_paused  # two failures: still reading
        assert ws.lookup("inner", "k") is None
        assert ws.reads_paused and "reads paused" in repr(ws)
        for _ in range(5):  # skipped: the store is not asked again
            assert ws.lookup("inner", "k") is None
            assert ws.lookup_latest("inner", "k") is None
    assert _reads(fake) == 3 and ws.reads_skipped == 10
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "3 consecutive reads failed" in warnings[0]
    assert "60 s" in warnings[0]
    # reads are paused, not the capability: saves still go to the store
    assert ws.available and ws.writable
    assert ws.save("inner", "k2", _rec("k2")) is not None


def test_misses_are_not_failures() -> None:
    fake = UnreachableStore()
    ws, _clock = _breaker(fake)
    for i in range(10):  # an empty cache: clean misses never open the breaker
        assert ws.lookup("inner", f"absent-{i}") is None
    assert not ws.reads_paused and _reads(fake) == 10


def test_success_resets_the_consecutive_count() -> None:
    fake = UnreachableStore()
    ws, _clock = _breaker(fake)
    assert ws.save("inner", "k", _rec()) is not None
    for _ in range(4):
        fake.down = True
        assert ws.lookup("inner", "k") is None
        assert ws.lookup("inner", "k") is None
        fake.down = False
        assert ws.lookup("inner", "k") is not None  # a hit in between: count back to zero
        fake.down = True
        assert ws.lookup("inner", "absent") is None  # a failure ...
        fake.down = False
        assert ws.lookup("inner", "absent") is None  # ... then a clean miss also resets
    assert not ws.reads_paused and ws.reads_skipped == 0


def test_breaker_probes_after_the_cooldown(caplog: pytest.LogCaptureFixture) -> None:
    fake = UnreachableStore()
    ws, clock = _breaker(fake, failure_threshold=2, cooldown=30.0)
    assert ws.save("inner", "k", _rec()) is not None
    fake.down = True
    with caplog.at_level(logging.DEBUG, logger="gamstore"):
        for _ in range(2):
            assert ws.lookup("inner", "k") is None
        assert ws.reads_paused
        clock.now += 29.0
        assert ws.lookup("inner", "k") is None and _reads(fake) == 2  # still cooling down
        clock.now += 1.5
        assert ws.lookup("inner", "k") is None  # the probe: reaches the store, fails
        assert _reads(fake) == 3 and ws.reads_paused
        assert ws.lookup("inner", "k") is None and _reads(fake) == 3  # open again
        clock.now += 31.0
        fake.down = False
        entry = ws.lookup("inner", "k")  # the store came back: the probe is a hit
        assert entry is not None and entry.record.key == "k"
        assert not ws.reads_paused
        assert ws.lookup("inner", "k") is not None and _reads(fake) == 5
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # logged once; the re-opening after the probe is DEBUG
    assert any("reads resumed" in r.getMessage() for r in caplog.records)


def test_breaker_for_the_rest_of_the_process(caplog: pytest.LogCaptureFixture) -> None:
    fake = UnreachableStore()
    ws, clock = _breaker(fake, cooldown=None)
    fake.down = True
    with caplog.at_level(logging.WARNING, logger="gamstore"):
        for _ in range(3):
            assert ws.lookup("inner", "k") is None
    fake.down = False
    clock.now += 1e9
    assert ws.lookup("inner", "k") is None and ws.reads_paused
    assert _reads(fake) == 3
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "for the rest of the process" in warnings[0]


def test_session_loads_go_through_the_breaker() -> None:
    fake = UnreachableStore()
    ws, _clock = _breaker(fake)
    sess = ws.session("sess-key")
    assert sess is not None
    fake.down = True
    for _ in range(3):
        assert sess.load() is None
    assert ws.reads_paused
    assert sess.load() is None and ws.lookup("outer", "sess-key") is None
    assert _reads(fake) == 3
    assert sess.checkpoint(_rec(), 1.0, 1) is True  # writes unaffected


def test_stores_without_read_error_counts_never_trip() -> None:
    fake = FakeStore()  # no stats(): misses cannot be told from failures, so none count
    ws, _clock = _breaker(fake, failure_threshold=1)
    for _ in range(5):
        assert ws.lookup("inner", "absent") is None
    assert not ws.reads_paused


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": 2.5}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"cooldown": -1.0}, "cooldown"),
        ({"cooldown": float("inf")}, "cooldown"),
        ({"cooldown": "60"}, "cooldown"),
    ],
)
def test_breaker_settings_validated(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        WarmStartStore(store=FakeStore(), **kwargs)  # type: ignore[arg-type]


def test_breaker_on_a_real_store_with_failing_reads(tmp_path: Path) -> None:
    # A real local store whose listings fail (permission lost, disk gone): lookups are misses
    # counted as read errors, and the breaker stops asking after three.
    from gamstore.store import open_store

    store = open_store(str(tmp_path / "r"))
    ws, _clock = _breaker(store)  # type: ignore[arg-type]
    assert ws.save("inner", "k", _rec()) is not None
    calls: list[str] = []

    def broken(*_a: object, **_k: object) -> list[str]:
        calls.append("list")
        raise PermissionError(13, "Permission denied")

    store.backend.list = broken  # type: ignore[method-assign]
    store.backend.list_dir = broken  # type: ignore[method-assign]
    for _ in range(6):
        assert ws.lookup("inner", "k") is None
    assert store.stats().read_errors == 3 and len(calls) == 3
    assert ws.reads_paused and ws.available


def test_failed_session_write_disables_but_rate_limit_does_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Session.checkpoint returns False both when rate-limited and when the store failed the
    # write; only the store's save_errors counter tells them apart.
    from gamstore.store import open_store

    store = open_store(str(tmp_path / "w"))
    ws = WarmStartStore(store=store)
    sess = ws.session("fit-1", keyspace="inner")
    assert sess is not None
    assert sess.checkpoint(_rec(), 5.0, 1) is True
    assert sess.checkpoint(_rec(), 6.0, 2) is False  # no improvement within 2 s: rate-limited
    assert ws.available and store.stats().save_errors == 0

    def broken(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    store.backend.put_many = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="gamstore"):
        assert sess.checkpoint(_rec(), 1.0, 3) is False  # improving, so really written: fails
    assert store.stats().save_errors == 1
    assert not ws.available and "session checkpoint inner failed" in (ws.disabled_reason or "")
    assert sess.finalize(_rec(), 1.0, 4) is False
    assert store.stats().save_errors == 1  # nothing more was attempted
