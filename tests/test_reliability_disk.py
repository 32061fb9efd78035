"""Disk full and read-only storage: saves fail cleanly, lookups keep working, fits never fail.

Disk full is real where possible (a 1 MiB tmpfs, needs root and ``mount``) and simulated
everywhere by making the local backend's file writes raise ``OSError(ENOSPC)`` at each write
of a save in turn. Read-only is ``open_store(read_only=True)`` and, for a store opened
read-write on storage that turned read-only, writes raising ``OSError(EROFS)``.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from requires import require

import gamstore
from gamstore.store import ReadOnlyStoreError, local
from gamstore.store.testing import block_record, record_values_ok

KS = "block"


def _visible(store: gamstore.Store) -> list[str]:
    return sorted(i.path for i in store.entries())


def _assert_clean(store: gamstore.Store) -> None:
    report = store.verify()
    assert report.corrupt == ()
    assert report.uncommitted == 0  # the failed save cleaned up after itself


def _fit_data(seed: int) -> Any:
    from gamstore.loso import simulate

    return simulate("gaussian", n=300, n_subjects=3, seed=seed)


def _fit(store: Any, seed: int) -> Any:
    from gamstore.fit import GAM, s

    return GAM([s("x0"), s("x1")], family="gaussian").fit(_fit_data(seed), y="y", store=store)


def _same_fit(a: Any, b: Any) -> None:
    np.testing.assert_allclose(a.rho, b.rho, rtol=1e-10)
    assert a.reml == pytest.approx(b.reml, rel=1e-12)


# -- real disk full ---------------------------------------------------------------------------


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root + mount needed; GAMSTORE_CI=1 makes a missing one a failure)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mount = shutil.which("mount")
    ok = mount is not None and os.geteuid() == 0
    if ok:
        res = subprocess.run(
            [str(mount), "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
            capture_output=True,
            check=False,
        )
        ok = res.returncode == 0
    # without root + mount there is no real full disk; the simulated ENOSPC tests still run
    require(ok, "a 1 MiB tmpfs (root + mount)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_real_disk_full(tiny_fs: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = gamstore.open_store(str(tiny_fs / "store"))
    acked: dict[str, str] = {}
    with caplog.at_level(logging.WARNING, logger="gamstore"):
        for i in range(200):
            key = f"full-{i}"
            eid = store.save(KS, key, block_record(key, 1, width=2000))
            if eid is None:
                break
            acked[key] = eid
    assert eid is None, "the 1 MiB file system never filled up"
    assert 0 < len(acked) < 200
    assert store.stats().save_errors == 1
    assert any("No space left" in r.getMessage() for r in caplog.records)
    # No partial entry visible; every acknowledged entry is intact.
    assert len(_visible(store)) == len(acked)
    _assert_clean(store)
    for key in acked:
        hit = store.lookup(KS, key)
        assert hit is not None and record_values_ok(hit.record, key, 1)
    # A fit on the full store runs (cold) and gets the same numbers as without a store.
    _same_fit(_fit(store, seed=3), _fit(None, seed=3))
    # Freeing space makes saves work again.
    for info in list(store.entries())[: len(acked) // 2]:
        store.delete_entry(info)
    assert store.save(KS, "after", block_record("after", 2)) is not None


# -- simulated ENOSPC at every write of a save -----------------------------------------------


def _writes_per_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    calls = []
    real = local._write_file

    def counting(full: str, data: bytes, *a: Any) -> None:
        calls.append(full)
        real(full, data, *a)

    store = gamstore.open_store(str(tmp_path / "count"))
    store.save(KS, "warmup", block_record("warmup", 0, n_blocks=2))
    store.flush()
    monkeypatch.setattr(local, "_write_file", counting)
    store.save(KS, "count", block_record("count", 0, n_blocks=2))
    monkeypatch.setattr(local, "_write_file", real)
    return len(calls)


def _failing_at(n: int, err: int) -> Any:
    real = local._write_file
    count = [0]

    def write(full: str, data: bytes, *a: Any) -> None:
        count[0] += 1
        if count[0] == n:
            raise OSError(err, os.strerror(err), full)
        real(full, data, *a)

    return write


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
def test_write_error_at_every_point_of_a_save(
    err: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    n_writes = _writes_per_save(tmp_path, monkeypatch)
    assert n_writes >= 5  # payload objects + marker
    store = gamstore.open_store(str(tmp_path / "store"))
    assert store.save(KS, "kept", block_record("kept", 7, n_blocks=2)) is not None
    before = _visible(store)
    for n in range(1, n_writes + 1):
        store.flush()  # pending access touches are writes too: count only the save's own
        monkeypatch.setattr(local, "_write_file", _failing_at(n, err))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="gamstore"):
            got = store.save(KS, f"victim-{n}", block_record(f"victim-{n}", 1, n_blocks=2))
        monkeypatch.undo()
        assert got is None, f"write {n} of {n_writes} failed but the save was acknowledged"
        assert _visible(store) == before
        assert store.lookup(KS, f"victim-{n}") is None
        msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(msgs) == 1 and os.strerror(err) in msgs[0]  # one clear line per failure
        hit = store.lookup(KS, "kept")
        assert hit is not None and record_values_ok(hit.record, "kept", 7)
    assert store.stats().save_errors == n_writes
    _assert_clean(store)


def test_fit_survives_a_store_that_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = gamstore.open_store(str(tmp_path / "store"))

    def no_space(full: str, data: bytes, *a: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), full)

    monkeypatch.setattr(local, "_write_file", no_space)
    res = _fit(store, seed=4)
    _same_fit(res, _fit(None, seed=4))
    assert res.warm == "cold"
    assert _visible(store) == []
    monkeypatch.undo()
    _assert_clean(store)


# -- read-only ---------------------------------------------------------------------------------


@pytest.fixture
def filled(tmp_path: Path) -> str:
    url = str(tmp_path / f"ro-{uuid.uuid4().hex[:6]}")
    rw = gamstore.open_store(url)
    for i in range(3):
        rw.save(KS, f"ro-{i}", block_record(f"ro-{i}", i))
    rw.close()
    return url


def _snapshot(url: str) -> list[tuple[str, int, int]]:
    out = []
    for dirpath, _dirs, files in os.walk(url):
        for f in files:
            st = os.stat(os.path.join(dirpath, f))
            out.append((os.path.join(dirpath, f), st.st_size, st.st_mtime_ns))
    return sorted(out)


def test_read_only_store_reads_and_never_writes(filled: str) -> None:
    before = _snapshot(filled)
    ro = gamstore.open_store(filled, read_only=True)
    for i in range(3):
        hit = ro.lookup(KS, f"ro-{i}")
        assert hit is not None and record_values_ok(hit.record, f"ro-{i}", i)
    with pytest.raises(ReadOnlyStoreError, match="read-only"):
        ro.save(KS, "new", block_record("new", 1))
    for op in (ro.evict, lambda: ro.gc(grace=0.0), lambda: ro.verify(fix=True)):
        with pytest.raises(ReadOnlyStoreError):
            op()
    ro.close()
    writes = {k: v for k, v in ro.stats().requests.items() if k not in ("get", "list", "head")}
    assert writes == {}
    assert _snapshot(filled) == before
    # A fit with the read-only store works (exact warm start impossible: nothing matches).
    _same_fit(_fit(ro, seed=5), _fit(None, seed=5))
    assert _snapshot(filled) == before


def test_storage_turned_read_only_under_a_read_write_store(
    filled: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = gamstore.open_store(filled)
    before = _visible(store)

    def erofs(*a: Any, **k: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(local, "_write_file", erofs)
    monkeypatch.setattr(os, "utime", erofs)
    with caplog.at_level(logging.WARNING, logger="gamstore"):
        assert store.save(KS, "blocked", block_record("blocked", 1)) is None
    assert any("Read-only file system" in r.getMessage() for r in caplog.records)
    for i in range(3):
        hit = store.lookup(KS, f"ro-{i}")
        assert hit is not None and record_values_ok(hit.record, f"ro-{i}", i)
    store.flush()  # touches fail quietly
    _same_fit(_fit(store, seed=6), _fit(None, seed=6))
    monkeypatch.undo()
    assert _visible(store) == before
    _assert_clean(store)
