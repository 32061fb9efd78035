"""``stats().read_errors``: reads that failed on I/O are told apart from an empty cache."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from gamstore.store import Store, open_store
from gamstore.store.testing import block_record, record_values_ok


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return open_store(f"memory://read-errors-{uuid.uuid4().hex}")
    return open_store(str(tmp_path / "store"))


def _fail(*_a: Any, **_k: Any) -> Any:
    raise OSError(5, "Input/output error")


def _cold(store: Store) -> None:
    """Forget in-process caches, as a new process would."""
    store._state.decoded.clear()
    store._state.markers.clear()


def test_clean_miss_is_not_a_read_error(store: Store) -> None:
    assert store.lookup("block", "absent") is None
    assert store.lookup_latest("block", "absent") is None
    s = store.stats()
    assert (s.misses, s.read_errors) == (2, 0)
    assert s.as_dict()["read_errors"] == 0


def test_failed_listing_is_a_counted_miss(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save("block", "k", block_record("k", 1))
    monkeypatch.setattr(store.backend, "list", _fail)
    monkeypatch.setattr(store.backend, "list_dir", _fail)
    assert store.lookup("block", "k") is None
    assert store.lookup_latest("block", "k") is None
    assert store.session("k", keyspace="block").load() is None
    s = store.stats()
    assert (s.hits, s.misses, s.read_errors, s.corrupt) == (0, 3, 3, 0)


def test_failed_marker_reads_are_a_counted_miss_and_delete_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("block", "k", block_record("k", 2))
    _cold(store)  # a new process: the marker has to be read (get_many) after the listing
    with monkeypatch.context() as m:
        m.setattr(store.backend, "get_many", _fail)
        assert store.lookup("block", "k") is None
    s = store.stats()
    assert (s.misses, s.read_errors, s.corrupt) == (1, 1, 0)
    entry = store.lookup("block", "k")  # unreachable is not corrupt: nothing was deleted
    assert entry is not None and record_values_ok(entry.record, "k", 2)
    assert store.stats().read_errors == 1


def test_array_failure_with_a_cached_marker(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save("block", "k", block_record("k", 3))
    store._state.decoded.clear()  # marker known (from the save), arrays not decoded
    with monkeypatch.context() as m:
        m.setattr(store.backend, "get_many", _fail)
        assert store.lookup("block", "k") is None
    assert store.stats().read_errors == 1
    assert store.lookup("block", "k") is not None


def test_read_entry_and_read_marker_count_failures(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("block", "k", block_record("k", 4))
    info = next(iter(store.entries("block")))
    _cold(store)
    with monkeypatch.context() as m:
        m.setattr(store.backend, "get", _fail)
        assert store.read_marker(info) is None
        assert store.read_entry(info) is None
    assert store.stats().read_errors == 2
    assert store.read_marker(info) is not None  # marker now cached
    with monkeypatch.context() as m:
        m.setattr(store.backend, "get_many", _fail)
        assert store.read_entry(info) is None
    assert store.stats().read_errors == 3
    got = store.read_entry(info)
    assert got is not None and record_values_ok(got.record, "k", 4)
    assert store.stats().read_errors == 3 and store.stats().corrupt == 0


def test_io_failure_on_the_best_entry_stops_the_lookup(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Storage trouble is not a bad entry: the lookup does not go on to pay the retry bound
    # again for the next candidate (a corrupt best entry still falls back, see conformance).
    store.save("block", "k", block_record("k", 5), objective=2.0)
    best = store.save("block", "k", block_record("k", 6), objective=1.0)
    assert best is not None
    store._state.decoded.clear()
    real = store.backend.get_many
    reads: list[str] = []

    def fail_best(paths: Any, *args: Any) -> Any:
        reads.extend(paths)
        if any(best in p for p in paths):
            raise OSError(5, "Input/output error")
        return real(paths, *args)

    monkeypatch.setattr(store.backend, "get_many", fail_best)
    assert store.lookup("block", "k") is None
    assert all(best in p for p in reads)  # the other entry was never read
    s = store.stats()
    assert (s.hits, s.misses, s.read_errors, s.corrupt) == (0, 1, 1, 0)
    monkeypatch.setattr(store.backend, "get_many", real)
    entry = store.lookup("block", "k")  # both entries intact
    assert entry is not None and entry.entry_id == best and record_values_ok(entry.record, "k", 6)


def test_failed_removal_of_an_expired_entry_is_still_a_miss(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("block", "k", block_record("k", 7))
    store.flush()
    store._clock = lambda: 10**19  # far beyond the TTL: the entry has expired
    monkeypatch.setattr(store.backend, "delete", _fail)
    assert store.lookup("block", "k") is None  # never raises
    assert store.stats().expired == 1
