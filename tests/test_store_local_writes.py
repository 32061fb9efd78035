"""The local backend's write path: folders made once, no existence checks, same results.

Every path is walked one folder at a time from the root's descriptor (``openat`` with
``O_NOFOLLOW``, see ``gamstore/store/local.py``), so the calls below are relative names.

These pin the file-system calls a save issues (counted with wrappers around ``os``; the
numbers are a property of the code, not a timing) and the behaviour of the helpers on the
awkward cases (missing root, pre-existing folders, files at the root, concurrent removal).
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from gamstore.store import codec, local, open_store
from gamstore.store.layout import MARKER, entry_prefix, key_folder, key_prefix
from gamstore.store.local import LocalBackend
from gamstore.store.testing import block_record, record_values_ok

_COUNTED = ("mkdir", "makedirs", "stat", "lstat", "open", "link", "unlink", "replace", "utime")


@contextmanager
def counting_os(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, str]]]:
    """Record (call, first argument, outcome) of the os functions the backend uses."""
    calls: list[tuple[str, str, str]] = []

    def wrap(name: str, fn: Any) -> Any:
        def counted(*a: Any, **k: Any) -> Any:
            arg = str(a[0]) if a else ""
            if name == "open" and len(a) > 1 and a[1] & os.O_DIRECTORY:
                arg += "/"  # a folder walked through, not a file
            try:
                out = fn(*a, **k)
            except OSError as exc:
                calls.append((name, arg, type(exc).__name__))
                raise
            calls.append((name, arg, "ok"))
            return out

        return counted

    with monkeypatch.context() as m:
        for name in _COUNTED:
            m.setattr(os, name, wrap(name, getattr(os, name)))
        m.setattr(os.path, "exists", wrap("exists", os.path.exists))
        m.setattr(os.path, "lexists", wrap("lexists", os.path.lexists))
        m.setattr(os.path, "isdir", wrap("isdir", os.path.isdir))
        yield calls


def kinds_of(calls: list[tuple[str, str, str]]) -> Counter[str]:
    return Counter(c for c, _, _ in calls)


def _folders_below(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if p.is_dir()}


def test_save_makes_each_folder_once_and_never_stats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    s = open_store(root, sweep_every=10**9)
    s.save("block", "warm", block_record("warm", 0))  # root, keyspace folder exist now
    rec = block_record("fold", 3, n_blocks=4)
    before = _folders_below(root)
    files_before = {p for p in root.rglob("*") if p.is_file()}
    with counting_os(monkeypatch) as calls:
        entry_id = s.save("block", "fold", rec)
    assert entry_id is not None
    made = _folders_below(root) - before
    kinds = Counter(c for c, _, _ in calls)
    # no existence probes before the commit: the create-only link is the existence test;
    # after it, one stat of a payload object (a concurrent gc may have taken the payload)
    assert not {"lstat", "exists", "lexists", "isdir", "makedirs"} & set(kinds)
    assert kinds["stat"] == 1
    ok_mkdirs = [a for c, a, r in calls if c == "mkdir" and r == "ok"]
    # every new folder made exactly once (mkdir takes names relative to the parent folder)
    assert sorted(ok_mkdirs) == sorted(os.path.basename(m) for m in made)
    # below the known key folder nothing is probed and nothing fails but the entry folder's
    # own first open (it does not exist yet); below a fresh folder mkdir comes first
    fails = [(c, a, r) for c, a, r in calls if r != "ok"]
    assert all(c == "open" and a.endswith("/") and r == "FileNotFoundError" for c, a, r in fails)
    assert len(fails) <= 2  # at most the shard and entry folders of a new key
    path = entry_prefix("block", key_folder("block", "fold"), entry_id)
    files = {p for p in root.rglob("*") if p.is_file()} - files_before
    levels = sorted(str(p.relative_to(root)) for p in files if (root / path) not in p.parents)
    kp = key_prefix("block", key_folder("block", "fold"))
    assert key_folder("block", "warm")[:2] != key_folder("block", "fold")[:2]  # a new shard
    # the new shard folder gets its level doc; the keyspace already has one, and layout 2
    # has no key folder: the entry folder <key64>.<entry id> sits in the shard
    assert levels == [f"{kp.rsplit('/', 1)[0]}/{MARKER}"]
    assert path == f"{kp}.{entry_id}"
    file_opens = [a for c, a, r in calls if c == "open" and not a.endswith("/")]
    # payload objects + the temp files of the marker and the level docs, each once
    assert len(file_opens) == len(files)
    # marker and level docs: create-only link, then drop the temp
    assert kinds["link"] == 1 + len(levels) and kinds["unlink"] == 1 + len(levels)
    hit = s.lookup("block", "fold")
    assert hit is not None and record_values_ok(hit.record, "fold", 3)


def test_second_save_under_a_key_makes_only_its_entry_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = open_store(tmp_path, sweep_every=10**9)
    s.save("block", "k", block_record("k", 1, n_blocks=2))
    with counting_os(monkeypatch) as calls:
        assert s.save("block", "k", block_record("k", 2, n_blocks=2)) is not None
    mkdirs = [(a, r) for c, a, r in calls if c == "mkdir"]
    assert all(r == "ok" for _, r in mkdirs)  # the key folder exists: nothing fails
    # entry, values, offsets (format 2 packs the arrays; format 1 made 5: entry, rho,
    # block_beta, block_beta/0, block_beta/1)
    assert len(mkdirs) == 3
    # the level docs were written by the first save of this process: only the marker links
    assert kinds_of(calls)["link"] == 1


def test_new_key_in_a_known_shard_costs_what_a_known_key_costs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # layout 2 (issue 17 item 3): a first save under a key makes no key folder and no level
    # doc once its shard exists, so it issues the very calls of a repeat save under a key
    s = open_store(tmp_path, sweep_every=10**9)
    s.save("block", "k", block_record("k", 1, n_blocks=2))
    kk = key_folder("block", "k")[:2]
    new = next(f"n{i}" for i in range(9999) if key_folder("block", f"n{i}")[:2] == kk)
    with counting_os(monkeypatch) as known:
        assert s.save("block", "k", block_record("k", 2, n_blocks=2)) is not None
    before = _folders_below(tmp_path)
    with counting_os(monkeypatch) as fresh:
        assert s.save("block", new, block_record(new, 3, n_blocks=2)) is not None
    assert kinds_of(fresh) == kinds_of(known)
    made = sorted(os.path.relpath(p, tmp_path) for p in _folders_below(tmp_path) - before)
    entry = f"block/{kk}/{key_folder('block', new)}."
    assert len(made) == 3 and all(m.startswith(entry) for m in made)  # entry, values, offsets
    assert kinds_of(fresh)["link"] == 1  # the marker only
    hit = s.lookup("block", new)
    assert hit is not None and record_values_ok(hit.record, new, 3)


def test_a_lookup_before_the_save_spares_the_shard_doc_in_a_new_process(tmp_path: Path) -> None:
    from gamstore.store.cache import clear_states

    s = open_store(tmp_path, sweep_every=10**9)
    s.save("block", "k", block_record("k", 1, n_blocks=2))
    kk = key_folder("block", "k")[:2]
    new = next(f"n{i}" for i in range(9999) if key_folder("block", f"n{i}")[:2] == kk)
    clear_states()  # a new process: no level doc known yet
    t = open_store(tmp_path, sweep_every=10**9)
    assert t.lookup("block", new) is None  # a fold looks up first (a miss) ...
    before = t.backend.requests["put_if_absent"]
    assert t.save("block", new, block_record(new, 2, n_blocks=2)) is not None  # ... then saves
    # the marker only: the lookup's listing of the shard showed the shard's doc, so no
    # create-only attempt for it (nor for the keyspace's, written before it)
    assert t.backend.requests["put_if_absent"] - before == 1


def test_saved_entry_still_opens_with_plain_zarr(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    rec = block_record("k", 5, n_blocks=3)
    entry_id = s.save("block", "k", rec, objective=2.5, kind="final")
    assert entry_id is not None
    path = entry_prefix("block", key_folder("block", "k"), entry_id)
    g = zarr.open_group(str(tmp_path / path), mode="r")
    assert g.attrs["gamstore"]["entry_id"] == entry_id
    parts = rec.to_parts().arrays
    read = codec.group_parts(g)
    assert set(read) == set(parts)
    for name, part in parts.items():
        np.testing.assert_array_equal(read[name], part.data)
    assert not [p for p in tmp_path.rglob("*") if ".tmp." in p.name]


def test_put_many_creates_a_missing_root_and_nested_folders(tmp_path: Path) -> None:
    be = LocalBackend(tmp_path / "a" / "b" / "root")
    items = {
        "top.json": b"0",
        "x/y/z/deep": b"1",  # x and x/y hold no file of their own
        "x/w/f": b"2",
        "q/r": b"",
    }
    be.put_many(items)
    for p, data in items.items():
        assert be.get(p) == data
    assert sorted(o.path for o in be.list("")) == sorted(items)


def test_put_many_into_an_existing_folder_replaces_files(tmp_path: Path) -> None:
    be = LocalBackend(tmp_path)
    be.put_many({"e/a/0": b"old", "e/b/0": b"old"})
    be.put_many({"e/a/0": b"new-longer", "e/c/0": b"c"})  # common folder "e" exists
    assert be.get("e/a/0") == b"new-longer"
    assert be.get("e/b/0") == b"old"
    assert be.get("e/c/0") == b"c"


def test_put_many_single_folder_and_bad_paths(tmp_path: Path) -> None:
    be = LocalBackend(tmp_path)
    be.put_many({"k/e/v/zarr.json": b"m", "k/e/v/0": b"c"})
    assert be.get("k/e/v/0") == b"c"
    for bad in ("../x", "a//b", "/abs", "a/./b"):
        with pytest.raises(ValueError, match="invalid storage path"):
            be.put_many({"ok/1": b"1", bad: b"2"})
    assert not (tmp_path / "ok").exists()  # paths are checked before anything is written


def test_put_many_recovers_when_a_fresh_folder_is_removed_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    be = LocalBackend(tmp_path)
    real_mkdir = os.mkdir
    removed = []

    def racing_mkdir(path: Any, *a: Any, **k: Any) -> None:
        real_mkdir(path, *a, **k)
        if str(path) == "e" and not removed:
            os.rmdir(path, dir_fd=k["dir_fd"])  # a cleaner removes the folder we just made
            removed.append(path)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    be.put_many({"e/a/0": b"1", "e/b/0": b"2"})
    monkeypatch.undo()
    assert removed and be.get("e/a/0") == b"1" and be.get("e/b/0") == b"2"


def test_touch_creates_parents_then_bumps_mtime(tmp_path: Path) -> None:
    be = LocalBackend(tmp_path)
    be.touch(".access/block/ab/f/e")
    full = tmp_path / ".access" / "block" / "ab" / "f" / "e"
    assert full.is_file() and full.stat().st_size == 0
    old = time.time() - 3600
    os.utime(full, (old, old))
    be.touch(".access/block/ab/f/e")
    assert full.stat().st_mtime > old + 1800


def test_put_if_absent_is_create_only_and_leaves_no_temp(tmp_path: Path) -> None:
    be = LocalBackend(tmp_path)
    assert be.put_if_absent("a/b/zarr.json", b"first")
    assert not be.put_if_absent("a/b/zarr.json", b"second")
    assert be.get("a/b/zarr.json") == b"first"
    assert sorted(o.path for o in be.list("")) == ["a/b/zarr.json"]


def test_put_replaces_atomically_and_makes_parents(tmp_path: Path) -> None:
    be = LocalBackend(tmp_path)
    be.put("c/d/current.json", b"1")
    be.put("c/d/current.json", b"22")
    assert be.get("c/d/current.json") == b"22"
    assert sorted(o.path for o in be.list("")) == ["c/d/current.json"]


def test_marker_temp_is_written_create_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags_seen: list[int] = []
    real = local._write_file

    def spy(full: str, data: bytes, *a: Any) -> None:
        if ".tmp." in full:
            flags_seen.append(a[0] if a else local._WRITE_FLAGS)
        real(full, data, *a)

    monkeypatch.setattr(local, "_write_file", spy)
    s = open_store(tmp_path)
    entry_id = s.save("block", "k", block_record("k"))
    assert entry_id is not None
    assert flags_seen and all(f & os.O_EXCL for f in flags_seen)
    entry = tmp_path / entry_prefix("block", key_folder("block", "k"), entry_id)
    assert sorted(os.listdir(entry)) == sorted(["offsets", "values", MARKER])


def test_folders_removed_by_someone_else_are_made_again(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    assert s.save("block", "a", block_record("a", 1)) is not None
    s.lookup("block", "a")
    shutil.rmtree(tmp_path / "block")  # the whole keyspace, behind the backend's back
    shutil.rmtree(tmp_path / ".access", ignore_errors=True)
    assert s.save("block", "b", block_record("b", 2)) is not None
    assert s.save("block", "a", block_record("a", 3)) is not None
    s.flush()
    for key, seed in (("a", 3), ("b", 2)):
        hit = s.lookup("block", key)
        assert hit is not None and record_values_ok(hit.record, key, seed)


def test_first_touch_in_a_known_folder_is_one_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    be = LocalBackend(tmp_path)
    be.touch(".access/block/ab/f1/e1")
    with counting_os(monkeypatch) as calls:
        be.touch(".access/block/ab/f1/e2")  # parent exists: no probe, no mkdir
        be.touch(".access/block/ab/f2/e3")  # new key folder: one mkdir, then the file
    # utime works on the open descriptor (its argument is a number): no path is re-resolved
    assert [(c, a if c != "utime" else "fd", r) for c, a, r in calls if not a.endswith("/")] == [
        ("open", "e2", "ok"),
        ("utime", "fd", "ok"),
        ("mkdir", "f2", "ok"),
        ("open", "e3", "ok"),
        ("utime", "fd", "ok"),
    ]
    assert not [c for c, _, _ in calls if c in ("stat", "lstat")]
    assert [a for c, a, r in calls if r != "ok"] == ["f2/"]  # the new key folder's probe
    assert (tmp_path / ".access/block/ab/f2/e3").is_file()


def test_writes_into_a_folder_deleted_after_it_was_made(tmp_path: Path) -> None:
    # the backend remembers folders it made; deleting them must not break later writes
    be = LocalBackend(tmp_path)
    be.put_many({"k/e/v/zarr.json": b"m", "k/e/v/0": b"c"})
    be.put("k/e/v/0", b"c2")
    for _ in range(2):
        be.delete_prefix("k/e")
        assert not (tmp_path / "k" / "e").exists()
        be.put("k/e/v/0", b"again")  # parent chain known but gone: made again
        assert be.get("k/e/v/0") == b"again"
        be.delete_prefix("k/e")
        be.put_many({"k/e/v/zarr.json": b"m", "k/e/v/0": b"c"})  # single folder, known
        assert be.get("k/e/v/zarr.json") == b"m"
        assert be.put_if_absent("k/e/zarr.json", b"marker")
