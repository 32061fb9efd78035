"""Local-directory specifics: plain zarr/xarray on the files, URLs, temps, storage errors,
sharded sweeps. Backend-neutral behaviour is in the conformance suite."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import gamstore
from gamstore.records import IteratePayload
from gamstore.store import ReadOnlyStoreError, codec, open_store
from gamstore.store import core as store_core
from gamstore.store.layout import MARKER, key_folder
from gamstore.store.testing import block_record, iterate_payload, record_values_ok


def _entry_dir(root: Path, store: gamstore.Store) -> Path:
    info = next(iter(store.entries()))
    return root / info.path


def test_plain_zarr_open_group_on_path_reads_every_value(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    rec = block_record("k", 3)
    s.save("block", "k", rec, objective=4.25, iteration=11, kind="final")
    g = zarr.open_group(str(_entry_dir(tmp_path, s)), mode="r")
    attrs = g.attrs.asdict()["gamstore"]
    assert attrs["kind"] == "final" and attrs["iteration"] == 11 and attrs["key"] == "k"
    assert attrs["record_type"] == "block_warm_start"
    parts = codec.group_parts(g)  # the packs split at offsets, with plain zarr reads
    np.testing.assert_array_equal(parts["rho"], rec.rho)
    for i, b in enumerate(rec.block_beta):
        np.testing.assert_array_equal(parts[f"block_beta/{i}"], b)
    # the chunk really is <name>/0 with crc32c, and the root is a gamstore group
    n_values = rec.rho.size + sum(b.size for b in rec.block_beta)
    assert (_entry_dir(tmp_path, s) / "values" / "0").stat().st_size == 8 * n_values + 4
    root = zarr.open_group(str(tmp_path), mode="r")
    assert root.attrs.asdict() == {"gamstore": {"layout": 2}}


def test_zero_length_and_2d_arrays_read_by_plain_zarr(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    h = np.arange(9.0).reshape(3, 3)
    p = IteratePayload(rho=np.arange(3.0), cost=1.0, eval_id=2, beta=np.zeros(0), hessian=h)
    s.save("outer", "k", p)
    d = _entry_dir(tmp_path, s)
    g = zarr.open_group(str(d), mode="r")
    parts = codec.group_parts(g)
    assert parts["beta"].shape == (0,) and parts["beta"].dtype == np.float64
    np.testing.assert_array_equal(parts["hessian"], h)  # 2-D, packed in C order
    # an entry whose every array is empty: "values" has no chunk object (empty chunk grid)
    s.save("outer", "empty", IteratePayload(rho=np.zeros(0), cost=1.0, eval_id=0))
    info = next(
        i for i in s.entries() if i.keyspace == "outer" and i.path != str(d.relative_to(tmp_path))
    )
    e_dir = tmp_path / info.path
    assert not (e_dir / "values" / "0").exists() and (e_dir / "values" / MARKER).exists()
    assert zarr.open_group(str(e_dir), mode="r")["values"].shape == (0,)  # type: ignore[union-attr]
    e = s.lookup("outer", "k")
    assert e is not None and e.record == p


def test_xarray_open_datatree_matches(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    rec = block_record("k", 1)
    s.save("block", "k", rec, objective=2.0)
    tree = xr.open_datatree(str(_entry_dir(tmp_path, s)), engine="zarr", consolidated=False)
    # the packs are plain variables with dimension names; the parts table says how to split
    assert tree["values"].dims == ("value",) and tree["offsets"].dims == ("part_edge",)
    parts = tree.attrs["gamstore"]["parts"]
    assert parts["rho"]["dims"] == ["rho"] and parts["block_beta/0"]["dims"] == ["coef_0"]
    edges = tree["offsets"].values
    names = sorted(parts)  # the "values" pack holds the float64 parts in name order
    i = names.index("rho")
    np.testing.assert_array_equal(tree["values"].values[edges[i] : edges[i + 1]], rec.rho)
    assert tree.attrs["gamstore"]["objective"] == 2.0


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = open_store(tmp_path / "a")
    assert a.url == (tmp_path / "a").as_uri()
    b = open_store((tmp_path / "a").as_uri())
    a.save("block", "k", block_record("k"))
    assert b.lookup("block", "k") is not None
    monkeypatch.setenv("GAMSTORE_URL", str(tmp_path / "env"))
    assert open_store().url == (tmp_path / "env").as_uri()
    monkeypatch.delenv("GAMSTORE_URL")
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    assert open_store().url == (tmp_path / "cache" / "gamstore").as_uri()


def test_bad_urls_and_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scheme"):
        open_store("ftp://host/x")
    with pytest.raises(ValueError, match="memory"):
        open_store("memory://")
    with pytest.raises(ValueError, match="storage_options"):
        open_store(tmp_path, storage_options={"key": "x"})
    with pytest.raises(ValueError, match="budget_bytes"):
        open_store(tmp_path, budget_bytes=-1)
    with pytest.raises(ValueError, match="ttl"):
        open_store(tmp_path, ttl=float("nan"))


def test_foreign_root_is_refused(tmp_path: Path) -> None:
    zarr.open_group(str(tmp_path), mode="w", attributes={"hello": 1})
    with pytest.raises(ValueError, match="not a gamstore root"):
        open_store(tmp_path)


def test_read_only_on_missing_root_creates_nothing(tmp_path: Path) -> None:
    s = open_store(tmp_path / "nothing", read_only=True)
    assert s.lookup("block", "k") is None
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(ReadOnlyStoreError):
        s.save("block", "k", block_record("k"))


def test_item33_stray_temps_removed_after_grace(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.save("block", "k", block_record("k"))
    d = _entry_dir(tmp_path, s)
    stale = d / f".{MARKER}.tmp.{12345:x}.deadbeef"
    fresh = d / f".{MARKER}.tmp.{os.getpid():x}.cafebabe"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    rep = s.gc(grace=3600)
    assert rep.temps == 1 and not stale.exists() and fresh.exists()
    e = s.lookup("block", "k")
    assert e is not None and record_values_ok(e.record, "k", 0)


def test_item18_shard_folder_removed_by_someone_else(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.save("block", "k", block_record("k", 1))
    shutil.rmtree(tmp_path / "block" / key_folder("block", "k")[:2])
    assert s.lookup("block", "k") is None
    assert s.save("block", "k", block_record("k", 2)) is not None
    e = s.lookup("block", "k")
    assert e is not None and record_values_ok(e.record, "k", 2)


def test_storage_error_on_save_returns_none_and_logs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s = open_store(tmp_path)
    s.save("block", "k", block_record("k", 1), objective=1.0)
    before = sorted(o.path for o in s.backend.list(""))

    real_put_many = s.backend.put_many

    def failing_put_many(items: dict[str, bytes]) -> None:
        real_put_many(dict(list(items.items())[:3]))  # part of the payload lands, then...
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(s.backend, "put_many", failing_put_many)
    with caplog.at_level(logging.DEBUG, logger="gamstore"):
        assert s.save("block", "k", block_record("k", 2), objective=0.5) is None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "No space left" in warnings[0].getMessage()
    assert sorted(o.path for o in s.backend.list("")) == before  # cleaned up, nothing torn
    e = s.lookup("block", "k")
    assert e is not None and e.objective == 1.0 and s.stats().save_errors == 1


def test_marker_failure_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = open_store(tmp_path)
    monkeypatch.setattr(s.backend, "put_if_absent", lambda path, data: False)
    # a first save under a key sends its level docs with the marker in one call
    monkeypatch.setattr(s.backend, "put_many_if_absent", lambda items: [False] * len(items))
    assert s.save("block", "k", block_record("k")) is None
    assert list(s.entries()) == []
    assert s.lookup("block", "k") is None


def test_item17_created_between_call_start_and_end(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    t0 = time.time_ns()
    s.save("block", "k", block_record("k"))
    t1 = time.time_ns()
    e = s.lookup("block", "k")
    assert e is not None and t0 <= e.created <= t1


def test_item37_estimate_resynced_after_sweep(tmp_path: Path) -> None:
    s = open_store(tmp_path, sweep_every=1000)
    for i in range(5):
        s.save("block", f"k{i}", block_record(f"k{i}"))
    s.evict()
    st = s._state
    assert st.shard_bytes is not None and st.shard_counts is not None
    assert sum(st.shard_bytes) == sum(i.nbytes for i in s.entries())
    assert sum(st.shard_counts) == 5


def test_sharded_sweeps_bound_listing_per_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_core, "FULL_SWEEP_MAX_ENTRIES", 4)
    s = open_store(tmp_path, sweep_every=2, budget_bytes=1 << 40)
    for i in range(40):
        s.save("outer", f"k{i}", iterate_payload(float(i)))
    st = s.stats()
    assert st.full_sweeps <= 3 and st.sweeps - st.full_sweeps >= 15
    # one shard sweep lists at most the shard folders of each keyspace plus their keys
    lists_before = s.stats().requests["list"]
    s._sweep(over=False)
    assert s.stats().requests["list"] - lists_before <= 5 * 3 + 40
    assert sum(i.nbytes for i in s.entries()) > 0


def test_sharded_sweep_evicts_over_budget_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_core, "FULL_SWEEP_MAX_ENTRIES", 4)
    s = open_store(tmp_path, sweep_every=1000, budget_bytes=1 << 40)
    for i in range(30):
        s.save("outer", f"k{i}", iterate_payload(float(i)))
    s.evict()  # full reconciliation: estimate = truth
    s.budget_bytes = 256 * 100  # ~100 bytes per shard: every listed shard must be emptied
    n_before = len(list(s.entries()))
    removed = s._sweep(over=True)  # picks the fullest shard
    assert removed >= 1
    assert len(list(s.entries())) == n_before - removed


def test_cache_at_capacity_sweeps_rarely_and_stays_near_budget(tmp_path: Path) -> None:
    s = open_store(tmp_path, sweep_every=1000)
    size = 0
    for i in range(40):
        s.save("outer", f"w{i}", iterate_payload(float(i)))
    size = max(i.nbytes for i in s.entries())
    s.budget_bytes = 20 * size
    s.evict()
    sweeps0 = s.stats().sweeps
    for i in range(100):
        s.save("outer", f"n{i}", iterate_payload(float(i)))
    sweeps = s.stats().sweeps - sweeps0
    assert sweeps <= 100 // 2  # low-water headroom: not one sweep per save
    total = sum(i.nbytes for i in s.entries())
    assert total <= s.budget_bytes + 2 * size
