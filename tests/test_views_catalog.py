"""The consolidated catalog: atomic replacement, currency check, tamper fallback, locking."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import gamstore
from gamstore import _json
from gamstore.views import catalog as cat
from gamstore.views.assemble import assemble_fits
from gamstore.views.rows import FitRow
from gamstore.views.synthetic import populate, synthetic_fit


def _store(tmp_path: Path, n: int = 4) -> Any:
    store = gamstore.open_store(tmp_path / "store")
    populate(store, n, seed=7)
    return store


def _strip(ds: xr.Dataset) -> xr.Dataset:
    return ds.drop_attrs()


def test_catalog_matches_listing_and_is_used(tmp_path: Path) -> None:
    store = _store(tmp_path)
    walked = {
        ks: gamstore.open_fits(store, ks, catalog="never") for ks in ("artifact", "block", "outer")
    }
    info = cat.write_catalog(store)
    assert info.keyspaces["artifact"]["fits"] == 4 and info.keyspaces["inner"]["fits"] == 0
    for ks, expected in walked.items():
        got = gamstore.open_fits(store, ks)
        assert got.attrs["gamstore"]["source"] == "catalog"
        xr.testing.assert_identical(_strip(got), _strip(expected))
        assert got["fit"].dtype == object and got["created"].dtype == np.dtype("datetime64[ns]")
    # plain zarr and xarray read the catalog version folder (standard Zarr v3)
    root = zarr.open_group(store.zarr_store(), path=f".catalog/{info.folder}", mode="r")
    assert root["artifact"]["rho"].shape == walked["artifact"]["rho"].shape
    folder = tmp_path / "store" / ".catalog" / info.folder
    for consolidated in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # consolidated metadata is not in the v3 spec yet
            via = xr.open_zarr(
                folder, group="block", consolidated=consolidated, zarr_format=3
            ).load()
        for name in list(via.variables):
            if via[name].dtype.kind == "T":  # zarr returns numpy StringDType for text
                via[name] = via[name].astype(object)
        xr.testing.assert_equal(via, walked["block"])


def test_stale_catalog_falls_back_to_listing(tmp_path: Path) -> None:
    store = _store(tmp_path, 3)
    cat.write_catalog(store)
    populate(store, 1, seed=99, keyspaces=("outer",))
    outer = gamstore.open_fits(store, "outer")
    assert outer.attrs["gamstore"]["source"] == "listing" and outer.sizes["fit"] == 4
    # other keyspaces did not change: their catalog is still current
    assert gamstore.open_fits(store, "artifact").attrs["gamstore"]["source"] == "catalog"
    with pytest.raises(ValueError, match="no current catalog"):
        gamstore.open_fits(store, "outer", catalog="require")
    # a deleted entry also makes it stale
    cat.write_catalog(store)
    victim = next(iter(store.entries("block")))
    store.delete_entry(victim)
    block = gamstore.open_fits(store, "block")
    assert block.attrs["gamstore"]["source"] == "listing" and block.sizes["fit"] == 2


def test_entry_committing_after_the_rebuild_makes_it_stale(tmp_path: Path) -> None:
    from gamstore.store import codec, key_folder
    from gamstore.store.ids import new_entry_id
    from gamstore.views.synthetic import iterate_record

    store = _store(tmp_path, 2)
    # a save in progress: payload objects written, commit marker not yet
    key = "outer/mid-save"
    folder = key_folder("outer", key)
    eid = new_entry_id()
    path = f"outer/{folder[:2]}/{folder}.{eid}"  # layout 2
    enc = codec.encode_entry(
        record=iterate_record(synthetic_fit(50, 0), 0),
        keyspace="outer",
        key=key,
        entry_id=eid,
        producer=store.producer,
        created=int(eid[:16], 16),
        objective=1.0,
        iteration=0,
        kind="final",
        schema=gamstore.SCHEMA_TAG,
    )
    store.backend.put_many({f"{path}/{rel}": data for rel, data in enc.payload.items()})
    cat.write_catalog(store)
    pointer = cat.read_pointer(store)
    assert pointer["keyspaces"]["outer"]["pending"] == [path]
    assert pointer["keyspaces"]["outer"]["fits"] == 2
    assert gamstore.open_fits(store, "outer").attrs["gamstore"]["source"] == "catalog"
    assert store.backend.put_if_absent(f"{path}/zarr.json", enc.marker)  # the save commits
    outer = gamstore.open_fits(store, "outer")
    assert outer.attrs["gamstore"]["source"] == "listing" and eid in set(outer["fit"].values)


def test_rebuild_reuses_rows_of_unchanged_entries(tmp_path: Path) -> None:
    store = _store(tmp_path, 3)
    first = cat.write_catalog(store)
    assert first.reused == 0
    populate(store, 2, seed=77, keyspaces=("outer",))
    gone = sorted(store.entries("block"), key=lambda i: i.created)[0]
    store.delete_entry(gone)
    second = cat.write_catalog(store)
    assert second.reused == 3 + 2 + 3  # artifact + remaining block + old outer
    assert second.keyspaces["outer"]["fits"] == 5 and second.keyspaces["block"]["fits"] == 2
    incremental = {
        ks: gamstore.open_fits(store, ks, catalog="require")
        for ks in ("artifact", "block", "outer")
    }
    third = cat.write_catalog(store, full=True)
    assert third.reused == 0
    for ks, ds in incremental.items():
        rebuilt = gamstore.open_fits(store, ks, catalog="require")
        xr.testing.assert_identical(_strip(ds), _strip(rebuilt))
        xr.testing.assert_identical(
            _strip(ds), _strip(gamstore.open_fits(store, ks, catalog="never"))
        )


def test_rebuild_replaces_pointer_and_prunes_old_versions(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)
    first = cat.write_catalog(store)
    second = cat.write_catalog(store)
    third = cat.write_catalog(store)
    assert cat.read_pointer(store)["folder"] == third.folder
    folders = {p.split("/", 1)[0] for p, _s, _m in store.list_raw() if "/" in p}
    assert folders == {second.folder, third.folder}  # the replaced one is kept for readers
    assert first.folder not in folders
    assert store.get_raw(cat.LOCK) is None  # lock released


def test_tampered_catalog_is_ignored(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)
    info = cat.write_catalog(store)
    pointer = cat.read_pointer(store)
    rel = next(r for r in pointer["objects"] if r.startswith("artifact/rho/c"))
    path = tmp_path / "store" / ".catalog" / info.folder / rel
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    assert cat.load_catalog(store, "artifact") is None
    ds = gamstore.open_fits(store, "artifact")
    assert ds.attrs["gamstore"]["source"] == "listing" and ds.sizes["fit"] == 2
    # a pointer that is not strict JSON, or not ours, means "no catalog"
    store.put_raw(cat.POINTER, b'{"format": NaN}')
    assert cat.read_pointer(store) is None
    store.put_raw(cat.POINTER, _json.dumps_bytes({"format": "other"}))
    assert cat.load_catalog(store, "artifact") is None


def test_single_writer_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path, 1)
    import time

    fresh = _json.dumps_bytes({"created": time.time_ns(), "token": "other"})
    assert store.put_raw(cat.LOCK, fresh, if_absent=True)
    with pytest.raises(cat.CatalogBusyError, match="being rebuilt"):
        cat.write_catalog(store)
    assert store.get_raw(cat.LOCK) == fresh  # someone else's lock is left alone
    stale = _json.dumps_bytes(
        {"created": time.time_ns() - int(2 * cat.LOCK_STALE_SECONDS * 1e9), "token": "x"}
    )
    store.put_raw(cat.LOCK, stale)
    info = cat.write_catalog(store)  # a crashed writer's lock is taken over
    assert cat.read_pointer(store)["folder"] == info.folder
    assert store.get_raw(cat.LOCK) is None


def test_catalog_memory_and_readonly(tmp_path: Path) -> None:
    url = f"memory://catalog-{uuid.uuid4().hex}"
    store = gamstore.open_store(url)
    populate(store, 3, seed=2, keyspaces=("artifact",))
    cat.write_catalog(store, keyspaces=["artifact"])
    assert gamstore.open_fits(url).attrs["gamstore"]["source"] == "catalog"
    # keyspaces left out of the catalog are walked
    assert gamstore.open_fits(url, "block").attrs["gamstore"]["source"] == "listing"
    ro = gamstore.open_store(url, read_only=True)
    with pytest.raises(PermissionError):
        cat.write_catalog(ro)


names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


@settings(max_examples=25)
@given(
    st.lists(
        st.tuples(
            names,
            st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5),
            st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
            st.sampled_from(["checkpoint", "final"]),
        ),
        max_size=5,
    )
)
def test_objects_round_trip(rows: list[tuple[str, list[float], list[float], str]]) -> None:
    fit_rows = [
        FitRow(
            entry_id=f"e{i}",
            key=key or "k",
            keyspace="outer",
            created=1_700_000_000_000_000_000 + i,
            kind=kind,
            producer=key,
            flat={"rho": rho, "beta": beta},
        )
        for i, (key, beta, rho, kind) in enumerate(rows)
    ]
    ds = assemble_fits(fit_rows, "outer")
    back = cat.dataset_from_objects(cat.dataset_to_objects({"outer": ds}), "outer")
    xr.testing.assert_identical(back, ds)
    assert back.attrs["gamstore"] == ds.attrs["gamstore"]
