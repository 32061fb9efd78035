"""Store I/O off the fit's critical path (issue 17): deferred saves, the bounded pool, and
stores opened lazily (an object store's root created by its first save).

Every test checks real behaviour on real stores (memory, a local directory, S3 on moto):
what lands in the store and when, the answers against the synchronous order and against
cold fits, failures that are logged and never reach a fit, the bound on threads and
pending saves, and that no worker thread outlives its work.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gamstore
from gamstore.fit import GAM, s
from gamstore.loso import run_loso, simulate
from gamstore.warmstart import background
from gamstore.warmstart.capability import WarmStartStore, clear_memo, open_lazily


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    clear_memo()
    yield
    assert background.flush(30.0)


@pytest.fixture
def quick_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle workers exit after 50 ms (the default is seconds): leak checks stay short."""
    monkeypatch.setattr(background.writes(), "idle_seconds", 0.05)
    monkeypatch.setattr(background.reads(), "idle_seconds", 0.05)


def _io_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(background.THREAD_PREFIX)]


def _wait_for(cond: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def _model() -> GAM:
    return GAM([s("x0"), s("x1")], family="poisson")


@pytest.fixture(scope="module")
def data() -> Any:
    return simulate("poisson", n=400, n_subjects=4, seed=3)


@pytest.fixture(params=["memory", "local"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://ws-bg-{uuid.uuid4().hex}"
    return str(tmp_path / "store")


# -- the pool ----------------------------------------------------------------------------------


def test_pool_is_bounded_and_its_threads_exit_when_idle() -> None:
    pool = background.IOPool("test", 2, max_pending=3, idle_seconds=0.05)
    running, peak, lock = [0], [0], threading.Lock()
    gate = threading.Event()

    def task(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(5)
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return i * i

    submitted: list[Any] = []
    feeder = threading.Thread(
        target=lambda: submitted.extend(pool.submit(lambda i=i: task(i)) for i in range(10))
    )
    feeder.start()
    # the fourth submit blocks while three tasks are in flight
    assert _wait_for(lambda: pool.high_water == 3)
    time.sleep(0.05)
    assert pool.high_water == 3 and len(submitted) == 3 and feeder.is_alive()
    gate.set()
    feeder.join(10)
    assert [f.result(10) for f in submitted] == [i * i for i in range(10)]
    assert peak[0] <= 2 and pool.high_water <= 3
    assert _wait_for(lambda: pool.threads() == 0), "idle workers must exit"


def test_pool_hands_errors_to_the_future() -> None:
    pool = background.IOPool("err", 1, idle_seconds=0.05)
    fut = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        fut.result(10)
    assert pool.submit(lambda: "ok").result(10) == "ok"  # the worker survived it
    with pytest.raises(ValueError, match="max_workers"):
        background.IOPool("bad", 0)
    with pytest.raises(ValueError, match="max_pending"):
        background.IOPool("bad", 1, max_pending=0)


def test_run_concurrently_keeps_order_and_waits_for_all_before_raising() -> None:
    done: list[int] = []

    def slow(i: int) -> int:
        time.sleep(0.02)
        done.append(i)
        return i

    assert background.run_concurrently([lambda i=i: slow(i) for i in range(4)]) == [0, 1, 2, 3]

    def fail() -> int:
        raise RuntimeError("read failed")

    done.clear()
    with pytest.raises(RuntimeError, match="read failed"):
        background.run_concurrently([fail, lambda: slow(1), lambda: slow(2)])
    assert sorted(done) == [1, 2]  # nothing left running behind the caller


def test_a_failing_background_save_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = background.stats().failed
    with caplog.at_level(logging.WARNING, logger="gamstore.warmstart"):
        fut = background.defer("test save", lambda: 1 / 0)
        assert background.flush(10)
    assert fut.result() is None  # resolved, never raised
    assert background.stats().failed == before + 1
    assert "background warm-start save (test save) failed: ZeroDivisionError" in caplog.text


def test_a_lookup_waits_only_for_the_saves_of_what_it_reads() -> None:
    gate = threading.Event()
    fut = background.defer("slow save", lambda: gate.wait(10), {("block", "cf-a")})
    try:
        t0 = time.monotonic()
        assert background.settle({("block", "cf-b")}, timeout=5)  # another key: no wait
        assert time.monotonic() - t0 < 1.0
        assert not background.settle({("block", "cf-a")}, timeout=0.05)  # its own: waits
        assert not background.settle(timeout=0.05)  # everything: waits
    finally:
        gate.set()
    assert background.settle({("block", "cf-a")}, timeout=10) and fut.result(10) is True


# -- deferred saves of real fits -------------------------------------------------------------


def test_deferred_saves_land_and_are_visible_after_the_flush(store_url: str, data: Any) -> None:
    store = gamstore.open_store(store_url)
    with background.deferred_saves():
        res = _model().fit(data, y="y", store=store, warm_policy="always")
        assert background.flush(30)
        assert {i.keyspace for i in store.entries()} == {"block", "outer", "artifact"}
    assert res.warm == "cold"
    # the next fit finds the record the background wrote: an exact hit, recertified
    again = _model().fit(data, y="y", store=store, warm_policy="always")
    assert again.warm == "exact"
    assert abs(again.reml - res.reml) <= 1e-8 * abs(res.reml)


def test_outside_the_block_saves_stay_synchronous(store_url: str, data: Any) -> None:
    store = gamstore.open_store(store_url)
    before = background.stats().deferred
    _model().fit(data, y="y", store=store, warm_policy="always")
    assert background.stats().deferred == before
    assert {i.keyspace for i in store.entries()} == {"block", "outer", "artifact"}


def test_a_lookup_reads_the_writes_deferred_before_it(store_url: str, data: Any) -> None:
    """Read your writes: inside the block the levels are those of the synchronous order."""
    store = gamstore.open_store(store_url)
    model = _model()
    with background.deferred_saves():
        first = model.fit(data, y="y", store=store, warm_policy="always")
        second = model.fit(data, y="y", store=store, warm_policy="always")
        fold = data[data.subj != 0]
        cross = model.fit(fold, y="y", store=store, knots=first.knots, warm_policy="always")
    cold = model.fit(fold, y="y", knots=first.knots)
    assert [first.warm, second.warm, cross.warm] == ["cold", "exact", "cross-fit"]
    assert abs(cross.reml - cold.reml) <= 1e-6 * abs(cold.reml)


def test_a_deferred_save_keeps_what_the_fit_returned(store_url: str, data: Any) -> None:
    """The arrays are copied and the provenance captured before the fit returns: changing
    the result afterwards, or leaving the provenance block, changes nothing stored."""
    from gamstore.warmstart.provenance import new_run_id, provenance

    store = gamstore.open_store(store_url)
    run_id = new_run_id()
    with background.deferred_saves():
        with provenance(run_id=run_id):
            res = _model().fit(data, y="y", store=store, warm_policy="always")
        rho = np.array(res.rho, copy=True)
        if res.rho.flags.writeable:
            res.rho[:] = 99.0
    infos = list(store.entries("block"))
    assert len(infos) == 1
    entry = store.read_entry(infos[0])
    assert entry is not None
    np.testing.assert_array_equal(entry.record.rho, rho)
    assert entry.provenance is not None and entry.provenance.get("run_id") == run_id


class _FailingSaves:
    """A memory store whose every save raises (an I/O failure in the background)."""

    def __init__(self) -> None:
        self.inner = gamstore.open_store(f"memory://ws-bg-fail-{uuid.uuid4().hex}")
        self.url = self.inner.url
        self.attempts = 0

    def save(self, *args: Any, **kwargs: Any) -> str | None:
        self.attempts += 1
        raise OSError("disk on fire")

    def lookup(self, keyspace: str, key: str) -> Any:
        return self.inner.lookup(keyspace, key)

    def lookup_latest(self, keyspace: str, key: str) -> Any:
        return self.inner.lookup_latest(keyspace, key)

    def session(self, key: str, keyspace: str = "outer") -> Any:
        return self.inner.session(key, keyspace=keyspace)


def test_a_save_failing_in_the_background_never_fails_the_fit(
    data: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bad = _FailingSaves()
    ws = WarmStartStore(store=bad)
    cold = _model().fit(data, y="y")
    with caplog.at_level(logging.INFO, logger="gamstore"):
        with background.deferred_saves():
            res = _model().fit(data, y="y", store=ws, warm_policy="always")
    assert bad.attempts >= 1
    assert res.reml == pytest.approx(cold.reml, rel=1e-10)
    assert not ws.available and "disk on fire" in (ws.disabled_reason or "")
    assert "disk on fire" in caplog.text
    assert list(bad.inner.entries()) == []  # nothing half-written became visible


# -- run_loso ----------------------------------------------------------------------------------


def _sync_saves(monkeypatch: pytest.MonkeyPatch) -> None:
    real = background.deferred_saves
    monkeypatch.setattr(background, "deferred_saves", lambda enabled=True: real(False))


@pytest.fixture(params=["memory", "local", pytest.param("s3", marks=pytest.mark.s3)])
def loso_target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[Callable[[], str], dict[str, Any] | None, bool]:
    """(new store URL, storage options, remote): a fresh store per call."""
    if request.param == "memory":
        return (lambda: f"memory://ws-bg-loso-{uuid.uuid4().hex}"), None, False
    if request.param == "local":
        return (lambda: str(tmp_path / uuid.uuid4().hex)), None, False
    bucket = request.getfixturevalue("s3_bucket")
    opts = request.getfixturevalue("s3_options")
    return (lambda: f"s3://{bucket}/{uuid.uuid4().hex}"), opts, True


@pytest.mark.parametrize("policy", ["always", "adaptive"])
def test_run_loso_with_deferred_saves_equals_the_synchronous_run(
    loso_target: tuple[Callable[[], str], dict[str, Any] | None, bool],
    data: Any,
    policy: str,
    monkeypatch: pytest.MonkeyPatch,
    quick_idle: None,
) -> None:
    """On an object store a serial run_loso defers its saves (a local or memory save is no
    round trip: synchronous); either way the run equals the synchronous one."""
    from gamstore.warmstart.policy import COSTS, set_default_policy

    new_url, opts, remote = loso_target
    url = new_url()
    old = set_default_policy(policy)
    try:
        COSTS.clear()
        before = background.stats().deferred
        fast = run_loso(
            data, _model(), subject="subj", store=url, storage_options=opts, compare_cold=True
        )
        deferred = background.stats().deferred - before
        # run_loso returned: everything it deferred has landed
        assert background.flush(0.0)
        store = gamstore.open_store(url, storage_options=opts)
        entries = sorted((i.keyspace, i.folder) for i in store.entries())
        COSTS.clear()
        with monkeypatch.context() as m:
            _sync_saves(m)
            before = background.stats().deferred
            sync = run_loso(
                data, _model(), subject="subj", store=new_url(), storage_options=opts,
                compare_cold=True,
            )  # fmt: skip
            assert background.stats().deferred == before
    finally:
        set_default_policy(old)
    if not remote:
        assert deferred == 0
    if policy == "always":
        if remote:
            assert deferred >= 1 + len(data.subj.unique())  # the full-data fit and every fold
        assert len(entries) >= 3
        np.testing.assert_array_equal(fast["warm_source"].values, sync["warm_source"].values)
    # the answers: warm = synchronous = cold
    np.testing.assert_allclose(fast["reml"].values, sync["reml"].values, rtol=1e-9)
    warm, cold = fast["reml"].sel(start="warm").values, fast["reml"].sel(start="cold").values
    np.testing.assert_allclose(warm, cold, rtol=1e-6)
    assert _wait_for(lambda: not _io_threads()), "no background thread outlives its work"


# -- stores opened lazily ------------------------------------------------------------------------


def test_open_lazily_on_an_existing_store_is_a_plain_open(store_url: str) -> None:
    gamstore.open_store(store_url)  # the root exists
    store, ws = open_lazily(store_url)
    assert isinstance(store, gamstore.Store) and store.root_exists and not store.read_only
    assert not ws.absent and ws.writable
    assert not ws.parallel_reads  # a local read is no round trip: reads stay in order


def test_open_lazily_local_false_opens_a_new_directory_now(tmp_path: Path) -> None:
    store, ws = open_lazily(str(tmp_path / "new"), local=False)
    assert store.root_exists and not store.read_only and not ws.absent
    assert (tmp_path / "new" / "zarr.json").exists()


def test_open_lazily_refuses_a_foreign_folder_up_front(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a store")
    with pytest.raises(ValueError, match="not empty"):
        open_lazily(str(tmp_path))


def test_a_new_local_or_memory_store_is_created_by_its_first_save(
    store_url: str, data: Any
) -> None:
    probe, ws = open_lazily(store_url)
    assert probe.read_only and not probe.root_exists
    assert ws.absent and ws.writable and not ws.remote
    assert ws.probe_seconds is None  # no round trip: its lookup phases are timed as they run
    local = not store_url.startswith("memory://")
    if local:
        assert not Path(store_url).exists()
    # lookups of an absent store are misses that touch nothing
    assert ws.lookup("block", "cf-0123456789abcdef") is None
    sess = ws.session("k", keyspace="outer")
    assert sess is not None and sess.load() is None
    assert ws.absent and not gamstore.open_store(store_url, read_only=True).root_exists
    if local:
        assert not Path(store_url).exists()
    # the first save opens the store and makes its root; a refit then finds its record
    res = _model().fit(data, y="y", store=ws, warm_policy="always")
    assert res.warm == "cold" and not ws.absent
    store = gamstore.open_store(store_url, read_only=True)
    assert store.root_exists
    assert {i.keyspace for i in store.entries()} == {"block", "outer", "artifact"}
    assert _model().fit(data, y="y", store=ws, warm_policy="always").warm == "exact"


@pytest.mark.parametrize("policy", ["always", "adaptive"])
@pytest.mark.parametrize("where", ["local", "memory"])
def test_a_loso_run_creates_its_store_only_when_it_saves(
    tmp_path: Path, data: Any, policy: str, where: str
) -> None:
    """A run's new store (a local directory, or the in-memory store of ``store=None``) is
    created by its first save: a run whose fits all skip their saves creates nothing."""
    from gamstore.warmstart.policy import COSTS, set_default_policy

    url = str(tmp_path / "new") if where == "local" else None
    old = set_default_policy(policy)
    try:
        COSTS.clear()  # no history: the adaptive policy skips the new store's lookups
        ds = run_loso(data, _model(), subject="subj", store=url, progress=False)
    finally:
        set_default_policy(old)
    assert (ds["status"] == "ok").all()
    decisions = f"{ds['full_warm_decision'].item()}; {ds.attrs.get('warm_decisions', '')}"
    saved = "saved" in decisions  # the record, or the artifact
    if url is None:
        url = ds.attrs["store_url"]
        assert url.startswith("memory://")
        created = gamstore.open_store(url, read_only=True).root_exists
    else:
        created = Path(url).exists()
    assert created == saved, decisions
    if policy == "always":
        assert saved


@pytest.mark.s3
def test_a_new_object_store_is_read_once_and_created_by_its_first_save(
    s3_store_url: str, s3_options: dict[str, Any], data: Any
) -> None:
    probe, ws = open_lazily(s3_store_url, storage_options=s3_options)
    assert probe.read_only and not probe.root_exists
    assert probe.backend.requests["get"] == 1 and sum(probe.backend.requests.values()) == 1
    assert ws.absent and ws.probe_seconds is not None and ws.probe_seconds > 0
    # lookups of an absent store are misses at no cost
    assert ws.lookup("block", "cf-0123456789abcdef") is None
    sess = ws.session("k", keyspace="outer")
    assert sess is not None and sess.load() is None
    assert sum(probe.backend.requests.values()) == 1
    assert not probe.backend.list_dir("")  # nothing written yet: no root either
    res = _model().fit(data, y="y", store=ws, warm_policy="always")
    assert res.warm == "cold" and not ws.absent
    assert ws.parallel_reads  # opened now: an object store, its reads go side by side
    store = gamstore.open_store(s3_store_url, storage_options=s3_options)
    assert store.root_exists
    assert {i.keyspace for i in store.entries()} == {"block", "outer", "artifact"}
    # an existing root: opened as usual, the root read once
    store2, ws2 = open_lazily(s3_store_url, storage_options=s3_options)
    assert not ws2.absent and not store2.read_only
    assert _model().fit(data, y="y", store=ws2, warm_policy="always").warm == "exact"
    # a fold: session and cross-fit artifact read side by side, the same start as in order
    full = _model().fit(data, y="y")
    fold = data[data.subj != 1]
    side = _model().fit(fold, y="y", store=ws2, knots=full.knots, warm_policy="always")
    local = gamstore.open_store(f"memory://ws-bg-order-{uuid.uuid4().hex}")
    _model().fit(data, y="y", store=local, warm_policy="always")
    ordered = _model().fit(fold, y="y", store=local, knots=full.knots, warm_policy="always")
    assert side.warm == ordered.warm == "cross-fit"
    assert side.n_outer == ordered.n_outer and side.reml == pytest.approx(ordered.reml, rel=1e-12)


@pytest.mark.s3
@pytest.mark.parametrize("policy", ["always", "adaptive"])
def test_run_loso_on_a_new_s3_store(
    s3_store_url: str, s3_options: dict[str, Any], data: Any, policy: str, quick_idle: None
) -> None:
    from gamstore.warmstart.policy import COSTS, set_default_policy

    old = set_default_policy(policy)
    try:
        COSTS.clear()
        ds = run_loso(
            data, _model(), subject="subj", store=s3_store_url, storage_options=s3_options,
            compare_cold=True,
        )  # fmt: skip
    finally:
        set_default_policy(old)
    assert (ds["status"] == "ok").all()
    assert ds.attrs["store_url"] == s3_store_url
    warm, cold = ds["reml"].sel(start="warm").values, ds["reml"].sel(start="cold").values
    np.testing.assert_allclose(warm, cold, rtol=1e-6)
    assert ds["full_warm_source"].item() == "cold"  # a new store holds nothing
    # did any fit (the full-data fit or a fold) save? ("saved ..." phrases, not "save skipped")
    decisions = f"{ds['full_warm_decision'].item()}; {ds.attrs.get('warm_decisions', '')}"
    saved = any(p.strip().startswith("saved") for p in decisions.split(";"))
    store = gamstore.open_store(s3_store_url, storage_options=s3_options, read_only=True)
    if policy == "always":
        assert set(ds["warm_source"].sel(start="warm").values) == {"cross-fit"}
        assert {i.keyspace for i in store.entries()} == {"block", "outer", "artifact"}
    elif not saved:
        assert list(store.entries()) == [], decisions
    assert _wait_for(lambda: not _io_threads())


# -- what a LOSO fold writes -----------------------------------------------------------------------


@pytest.mark.parametrize("deferred", [True, False])
def test_a_fold_that_fitted_cold_writes_no_artifact(data: Any, deferred: bool) -> None:
    """Folds whose lookups the policy skipped (cold) but which saved: before, each wrote its
    artifact, the newest parent of the later folds; a fold transferring from a sibling sees
    no dropped rows, and the start check let a worse basin through (REML 599.57 against the
    cold 599.16 on this data, fold 2, in about 1 run of 40 under the adaptive policy)."""
    from gamstore.warmstart.policy import COSTS, WarmPolicy, set_default_policy

    url = f"memory://ws-bg-folds-{uuid.uuid4().hex}"
    # no history: the full-data fit looks up and saves; every fold then skips its lookups
    # (any store time beats 1e-9 of a fit; with 4 subjects every fold's start check is
    # foreseen too) and saves (no save costs 1e9 fits, in a LOSO run: run_save_ratio)
    old = set_default_policy(WarmPolicy(lookup_ratio=1e-9, save_ratio=1e9, run_save_ratio=1e9))
    try:
        COSTS.clear()
        with background.deferred_saves(deferred):  # on memory run_loso itself saves in order
            ds = run_loso(data, _model(), subject="subj", store=url, compare_cold=True)
    finally:
        set_default_policy(old)
    assert set(ds["warm_source"].sel(start="warm").values) == {"cold"}
    store = gamstore.open_store(url)
    arts = [store.read_entry(i) for i in store.entries("artifact")]
    # no fold's artifact (the full-data fit's is not written either: every fold drops 25% of
    # the rows, so no fold starts from it)
    assert [(a.provenance or {}).get("held_out") for a in arts if a is not None] in ([None], [])
    # every fold still wrote its own block record (a repeated LOSO finds it: "exact")
    assert len(list(store.entries("block"))) == 1 + len(data.subj.unique())
