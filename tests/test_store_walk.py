"""The store owns its layout (issue 16): one walk of the entry folders, one listing per view.

* every listing, lookup scan, sweep, gc and verify takes its entries from
  ``gamstore.store.walk.walk``; a folder backend (local, memory) and an object store
  (flat listing; here the memory backend told it lists flat) yield the same entries;
* ``open_fits`` on a local store walks the keyspace once (each folder listed once) and,
  with a current catalog, reads no marker;
* a foreign ``final`` reads as ``checkpoint`` for lookups, and the views show the stored kind
  from the entry itself (no second marker read).
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

import gamstore
from gamstore.store import Listing, Store
from gamstore.store.memory import MemoryBackend, clear_memory_roots
from gamstore.store.testing import block_record, iterate_payload
from gamstore.store.walk import walk
from gamstore.views.catalog import write_catalog
from gamstore.views.entry import find_entry
from gamstore.views.synthetic import populate


class FlatMemoryBackend(MemoryBackend):
    """The memory backend, listed as an object store is (one recursive listing)."""

    flat_listing = True


def _counting(store: Store) -> collections.Counter[tuple[str, str]]:
    """Count (method, path) of the listing calls of ``store``'s backend from now on."""
    calls: collections.Counter[tuple[str, str]] = collections.Counter()
    be: Any = store.backend
    for name in ("list", "list_dir"):
        orig = getattr(be, name)

        def wrapped(prefix: str, _orig: Any = orig, _name: str = name) -> Any:
            calls[(_name, prefix)] += 1
            return _orig(prefix)

        setattr(be, name, wrapped)
    return calls


def _marker_gets(store: Store) -> list[str]:
    got: list[str] = []
    be: Any = store.backend
    orig_many = be.get_many
    orig_get = be.get

    def get_many(paths: Any, caps: Any = None) -> Any:
        got.extend(
            p
            for p in paths
            if p.endswith("/zarr.json") and p.count("/") == 3 and len(p.split("/")[2]) > 64
        )
        return orig_many(paths, caps)

    def get(path: str, cap: Any = None) -> Any:
        if path.endswith("/zarr.json") and path.count("/") == 3 and len(path.split("/")[2]) > 64:
            got.append(path)
        return orig_get(path, cap)

    be.get_many, be.get = get_many, get
    return got


def _stores(name: str) -> tuple[Store, Store]:
    clear_memory_roots(name)
    return Store(MemoryBackend(name)), Store(FlatMemoryBackend(name))


def test_folder_and_flat_walks_yield_the_same_entries() -> None:
    plain, flat = _stores("walk-same")
    for i in range(6):
        plain.save("block", f"k{i % 3}", block_record(f"k{i % 3}", i), objective=float(i))
    plain.save("outer", "s", block_record("s", 9))
    # junk that is no entry of the layout: never yielded by either walk
    be: Any = plain.backend
    be.put("block/zz/" + "a" * 64 + "/18eab8e5bcaa3fb8-f828973e-e9c66971/zarr.json", b"{}")
    be.put("block/aa/" + "b" * 64 + "/18eab8e5bcaa3fb8-f828973e-e9c66971/zarr.json", b"{}")
    be.put("block/aa/" + "a" * 64 + "/not-an-entry-id/zarr.json", b"{}")
    be.put("nokeyspace/aa/" + "a" * 64 + "/18eab8e5bcaa3fb8-f828973e-e9c66971/x", b"1")
    names = [d.path for d in walk(plain.backend)]
    objs = list(walk(flat.backend))
    assert names == [d.path for d in objs] and len(names) == 7
    assert names == sorted(names)
    assert all(d.committed is None for d in walk(plain.backend))  # names only: unknown
    assert all(d.committed and d.nbytes > 0 for d in objs)
    # one keyspace, one shard, one key folder
    first = objs[0]
    assert [d.path for d in walk(plain.backend, "outer")] == [
        d.path for d in walk(flat.backend, "outer")
    ]
    assert [d.path for d in walk(flat.backend, "block", shard=first.folder[:2])] == [
        d.path for d in objs if d.keyspace == "block" and d.folder[:2] == first.folder[:2]
    ]
    assert {d.path for d in walk(plain.backend, first.keyspace, folder=first.folder)} == {
        d.path for d in objs if d.folder == first.folder
    }
    with pytest.raises(ValueError, match="keyspace"):
        list(walk(plain.backend, folder=first.folder))
    # the listings the store builds on the walk agree too
    assert [i.path for i in plain.entries()] == [i.path for i in flat.entries()] == names
    a, b = plain.listing("block"), flat.listing("block")
    assert (a.method, b.method) == ("walk", "entries")
    assert a.paths == b.paths == tuple(p for p in names if p.startswith("block/"))
    assert [i.path for i in a.infos()] == [i.path for i in b.infos()] == list(a.paths)
    assert [i.nbytes for i in a.infos()] == [i.nbytes for i in b.infos()]


def test_walk_with_objects_finds_markerless_and_empty_entry_folders(tmp_path: Path) -> None:
    store = gamstore.open_store(tmp_path / "s")
    eid = store.save("block", "k", block_record("k", 1), objective=1.0)
    assert eid is not None
    (info,) = store.entries("block")
    kp = f"{info.path.rsplit('/', 1)[0]}/{info.folder}."  # layout 2: <shard>/<key64>.<id>
    empty = tmp_path / "s" / f"{kp}18eab8e5bcaa3fb8-f828973e-e9c66971"
    empty.mkdir()
    half = tmp_path / "s" / f"{kp}18eab8e5bcaa3fb9-f828973e-e9c66971" / "rho"
    half.mkdir(parents=True)
    (half / "zarr.json").write_bytes(b"{}")
    dirs = {d.entry_id: d for d in walk(store.backend, objects=True)}
    assert dirs[info.entry_id].committed and dirs[info.entry_id].nbytes == info.nbytes
    assert dirs["18eab8e5bcaa3fb8-f828973e-e9c66971"].committed is False
    assert dirs["18eab8e5bcaa3fb8-f828973e-e9c66971"].newest is None  # holds no object
    assert dirs["18eab8e5bcaa3fb9-f828973e-e9c66971"].committed is False
    assert dirs["18eab8e5bcaa3fb9-f828973e-e9c66971"].nbytes == 2
    listing = store.listing("block")
    assert listing.method == "walk" and len(listing.paths) == 3  # committed or not
    assert [i.entry_id for i in listing.infos()] == [info.entry_id]
    assert store.verify().uncommitted == 2
    report = store.gc(grace=0)
    assert report.payloads == 2
    assert [d.entry_id for d in walk(store.backend)] == [info.entry_id]


def test_open_fits_walks_a_local_store_once(tmp_path: Path) -> None:
    url = tmp_path / "s"
    populate(gamstore.open_store(url), 2, seed=1, keyspaces=("artifact",))
    gamstore.store.cache.clear_states()  # a new session: nothing cached
    store = gamstore.open_store(url, read_only=True)
    calls = _counting(store)
    ds = gamstore.open_fits(store)
    assert ds.sizes["fit"] == 2 and ds.attrs["gamstore"]["source"] == "listing"
    walked = {k: n for k, n in calls.items() if k[0] == "list_dir"}
    # one list_dir per folder level: the keyspace, each shard, each key folder; none twice
    assert walked and set(walked.values()) == {1}, calls
    assert ("list_dir", "artifact") in walked
    # and one listing of the touch objects (for EntryInfo.last_access), nothing else
    assert {k for k in calls if k[0] == "list"} == {("list", ".access/artifact")}
    assert sum(calls.values()) == len(walked) + 1


def test_open_fits_with_a_current_catalog_walks_once_and_reads_no_marker(
    tmp_path: Path,
) -> None:
    url = tmp_path / "s"
    writer = gamstore.open_store(url)
    populate(writer, 2, seed=1, keyspaces=("artifact",))
    write_catalog(writer, keyspaces=["artifact"])
    gamstore.store.cache.clear_states()
    store = gamstore.open_store(url, read_only=True)
    calls = _counting(store)
    markers = _marker_gets(store)
    ds = gamstore.open_fits(store)
    assert ds.attrs["gamstore"]["source"] == "catalog" and ds.sizes["fit"] == 2
    assert set(calls.values()) == {1} and all(k[0] == "list_dir" for k in calls), calls
    assert markers == []


def test_open_fits_on_an_object_store_lists_once() -> None:
    _, flat = _stores("walk-flat-view")
    populate(flat, 2, seed=1, keyspaces=("artifact",))
    gamstore.store.cache.clear_states()
    store = Store(FlatMemoryBackend("walk-flat-view"), read_only=True)
    calls = _counting(store)
    ds = gamstore.open_fits(store)
    assert ds.sizes["fit"] == 2
    # the keyspace and its touch objects, one recursive listing each
    assert dict(calls) == {("list", "artifact"): 1, ("list", ".access/artifact"): 1}


def test_listing_type_and_committed() -> None:
    plain, _flat = _stores("walk-listing")
    plain.save("block", "k", block_record("k", 1))
    listing = plain.listing("block")
    assert isinstance(listing, Listing) and "1 paths" in repr(listing)
    (path,) = listing.paths
    assert plain.committed(path)
    assert not plain.committed(path[:-8] + "00000000")
    for bad in ("block/zz", "../x", "nokeyspace/aa/" + "a" * 64 + "/x"):
        with pytest.raises(ValueError, match="path"):
            plain.committed(bad)
    with pytest.raises(ValueError, match="keyspace"):
        plain.listing("nope")
    assert plain.flat_listing is False and _flat.flat_listing is True


def test_foreign_final_keeps_its_stored_kind_without_a_marker_read(tmp_path: Path) -> None:
    url = tmp_path / "s"
    other = gamstore.open_store(url, producer="someone-else")
    other.save("outer", "k", iterate_payload(3.0), objective=3.0, kind="final")
    mine = gamstore.open_store(url, read_only=True)
    (info,) = mine.entries("outer")
    entry = mine.read_entry(info)
    assert entry is not None
    # lookups rank it as a checkpoint; the entry still says what was written
    assert (entry.kind, entry.stored_kind) == ("checkpoint", "final")
    looked = mine.lookup("outer", "k")
    assert looked is not None and (looked.kind, looked.stored_kind) == ("checkpoint", "final")
    own = other.lookup("outer", "k")
    assert own is not None and (own.kind, own.stored_kind) == ("final", "final")

    def no_marker_read(info: Any) -> Any:
        raise AssertionError("the views read the marker again")

    mine.read_marker = no_marker_read  # type: ignore[method-assign]
    assert find_entry(mine, "outer", "k").kind == "final"
    assert find_entry(mine, None, entry_id=info.entry_id).kind == "final"
    ds = gamstore.open_fits(mine, "outer", catalog="never")
    assert list(ds["kind"].values) == ["final"]
