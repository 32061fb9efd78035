"""The local store never touches anything outside its root (issue 14, "Escapes from the root").

Each case plants a symlink (or a non-store folder) the way a hostile store or a careless user
would, runs every command and read path on it, and checks byte for byte and mtime for mtime
that nothing outside the root changed. On the code before the fix each of these deleted,
created or re-timed files outside the root.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import gamstore
from gamstore.cli import main as cli
from gamstore.store.ids import new_entry_id
from gamstore.store.layout import key_folder, key_prefix
from gamstore.store.testing import block_record, record_values_ok
from gamstore.views.catalog import write_catalog

KS = "block"
OLD = time.time() - 3 * 3600  # older than gc's default grace


def _outside(top: Path) -> Path:
    """A user's folder outside the store: a small Zarr data set and loose files, all old."""
    out = top / "outside"
    (out / "data" / "beta").mkdir(parents=True)
    (out / "data" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    (out / "data" / "beta" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array"}')
    (out / "data" / "beta" / "0").write_bytes(b"\x01" * 64)
    (out / "precious.txt").write_text("keep me")
    for deep in ("a/b/c/d", "a/b/x"):
        (out / deep).mkdir(parents=True)
        (out / deep / "f").write_text(deep)
    _age(out)
    return out


def _age(top: Path) -> None:
    for dirpath, dirs, files in os.walk(top):
        for n in dirs + files:
            os.utime(os.path.join(dirpath, n), (OLD, OLD), follow_symlinks=False)


def _snapshot(top: Path) -> list[tuple[str, bytes, int]]:
    out = []
    for dirpath, dirs, files in os.walk(top):
        for n in dirs + files:
            full = os.path.join(dirpath, n)
            st = os.lstat(full)
            data = Path(full).read_bytes() if n in files else b""
            out.append((os.path.relpath(full, top), data, st.st_mtime_ns))
    return sorted(out)


def _store(top: Path) -> tuple[Path, gamstore.Store]:
    root = top / "store"
    store = gamstore.open_store(root)
    assert store.save(KS, "k", block_record("k", 1), objective=1.0) is not None
    return root, store


def _every_command(store: gamstore.Store, root: Path) -> None:
    """Every read path, write path and maintenance command, in-process and through the CLI."""
    store.lookup(KS, "k")
    store.lookup_latest(KS, "k")
    store.save(KS, "k", block_record("k", 2))
    store.save(KS, "other", block_record("other", 3))
    store.flush()
    for info in list(store.entries()):
        store.read_entry(info)
    store.verify()
    store.verify(fix=True)
    store.evict()
    store.gc()
    store.gc(grace=0.0)
    try:
        write_catalog(store)
    except OSError:
        pass  # refused (the catalog folder is not a real folder): fine, nothing escaped
    gamstore.open_fits(store)
    runner = CliRunner()
    for args in (
        ["ls", str(root)],
        ["du", str(root)],
        ["verify", "--fix", str(root)],
        ["gc", "--grace", "0s", str(root)],
        ["evict", str(root)],
        ["catalog", str(root)],
    ):
        res = runner.invoke(cli, args)
        assert res.exit_code in (0, 1, 3), (args, res.output, res.exception)


def _entry_id_folder(root: Path, key: str) -> Path:
    kp = root / key_prefix(KS, key_folder(KS, key))
    kp.mkdir(parents=True, exist_ok=True)
    return kp / new_entry_id("evil", int((OLD - 60) * 1e9))


def test_symlink_named_like_an_entry_inside_a_key_folder(tmp_path: Path) -> None:
    out = _outside(tmp_path)
    root, store = _store(tmp_path)
    link = _entry_id_folder(root, "k")
    link.symlink_to(out / "data")  # looks like an entry whose marker does not parse
    # a second entry-id-shaped link, to the outside folder itself (the last hex digit
    # changed, never to the one the first link already has: that was a 1-in-16 flake)
    twin = link.name[:-1] + ("e" if link.name.endswith("f") else "f")
    (link.parent / twin).symlink_to(out)
    before = _snapshot(out)
    _every_command(store, root)
    assert _snapshot(out) == before
    assert link.is_symlink()  # refused and left alone, never followed
    assert store.stats().foreign > 0
    hit = store.lookup(KS, "k")
    assert hit is not None and record_values_ok(hit.record, "k", 1)


def test_keyspace_folder_that_is_a_symlink(tmp_path: Path) -> None:
    out = _outside(tmp_path)
    root, store = _store(tmp_path)
    (root / "outer").symlink_to(out)
    (root / "inner").symlink_to(out / "a")
    before = _snapshot(out)
    _every_command(store, root)
    assert _snapshot(out) == before
    assert (root / "outer").is_symlink()


def test_catalog_folder_that_is_a_symlink(tmp_path: Path) -> None:
    out = _outside(tmp_path)
    root, store = _store(tmp_path)
    (root / ".catalog").symlink_to(out)
    before = _snapshot(out)
    with pytest.raises(OSError, match="not a folder"):
        write_catalog(store)
    res = CliRunner().invoke(cli, ["catalog", str(root)])
    assert res.exit_code == 3, res.output
    assert _snapshot(out) == before
    _every_command(store, root)
    assert _snapshot(out) == before


def test_access_symlinks_are_never_touched_through(tmp_path: Path) -> None:
    out = _outside(tmp_path)
    root, store = _store(tmp_path)
    info = next(iter(store.entries(KS)))
    acc = root / ".access" / info.path
    acc.parent.mkdir(parents=True, exist_ok=True)
    acc.symlink_to(out / "precious.txt")  # the touch object of a live entry
    # a whole .access keyspace folder pointing outside
    (root / ".access" / "outer").symlink_to(out / "a")
    before = _snapshot(out)
    for _ in range(3):
        fresh = gamstore.open_store(root, touch_interval=0.0)
        assert fresh.lookup(KS, "k") is not None
        fresh.flush()
    fresh.save("outer", "s", block_record("s", 1))
    _every_command(store, root)
    assert _snapshot(out) == before


def test_symlinked_key_folder_is_skipped_and_a_save_never_writes_through_it(
    tmp_path: Path,
) -> None:
    # layout 2 writes no key folder, but walks one (layout-1 entries live there): a symlink
    # planted where it would be is skipped by every reader and never written through
    out = _outside(tmp_path)
    root, store = _store(tmp_path)
    kp = root / key_prefix(KS, key_folder(KS, "victim"))
    kp.parent.mkdir(parents=True, exist_ok=True)
    kp.symlink_to(out / "a")
    before = _snapshot(out)
    eid = store.save(KS, "victim", block_record("victim", 1))
    assert eid is not None and (kp.parent / f"{kp.name}.{eid}").is_dir()
    hit = store.lookup(KS, "victim")
    assert hit is not None and hit.entry_id == eid
    assert store.stats().foreign >= 1
    _every_command(store, root)
    assert _snapshot(out) == before
    assert kp.is_symlink()  # left in place


def test_symlinked_shard_folder_save_and_lookup_stay_inside(tmp_path: Path) -> None:
    out = _outside(tmp_path)
    root, store = _store(tmp_path)
    assert key_folder(KS, "victim")[:2] != key_folder(KS, "k")[:2]  # a shard not made yet
    kp = root / KS / key_folder(KS, "victim")[:2]
    kp.symlink_to(out / "a")
    acc = root / ".access" / key_prefix(KS, key_folder(KS, "k"))
    fresh = gamstore.open_store(root, touch_interval=0.0)
    assert fresh.lookup(KS, "k") is not None
    fresh.flush()
    acc_kp = acc.parent.parent / key_folder(KS, "victim")[:2]
    acc_kp.symlink_to(out / "a" / "b")
    before = _snapshot(out)
    assert store.save(KS, "victim", block_record("victim", 1)) is None  # refused, reported
    assert store.stats().save_errors == 1
    assert store.lookup(KS, "victim") is None
    _every_command(store, root)
    assert _snapshot(out) == before


def test_shard_folder_and_entry_subfolder_symlinks(tmp_path: Path) -> None:
    out = _outside(tmp_path)
    root, store = _store(tmp_path)
    info = next(iter(store.entries(KS)))
    entry = root / info.path
    # an array folder of a committed entry replaced by a symlink to the user's data set
    os.rename(entry / "values", tmp_path / "values-moved")
    (entry / "values").symlink_to(out / "data" / "beta")
    (root / KS / "zz").symlink_to(out)  # a shard folder
    before = _snapshot(out)
    _every_command(store, root)
    assert _snapshot(out) == before


# -- maintenance refuses a folder that is not a gamstore root ------------------------------


def _users_folder(tmp_path: Path) -> Path:
    d = tmp_path / "mine"
    for sub in ("artifact/ab/cd", "inner/x"):
        (d / sub).mkdir(parents=True)
        (d / sub / "notes.txt").write_text("mine")
    (d / "inner" / "report.csv").write_text("a,b\n")
    _age(d)
    return d


@pytest.mark.parametrize(
    "args",
    [["gc"], ["gc", "--grace", "0s"], ["verify", "--fix"], ["evict"], ["catalog"], ["verify"]],
)
def test_maintenance_refuses_a_folder_that_is_not_a_store(args: list[str], tmp_path: Path) -> None:
    d = _users_folder(tmp_path)
    before = _snapshot(d)
    res = CliRunner().invoke(cli, [*args, str(d)])
    assert res.exit_code != 0, res.output
    assert _snapshot(d) == before
    assert not (d / "zarr.json").exists()


def test_open_store_refuses_a_non_empty_non_store_folder(tmp_path: Path) -> None:
    d = _users_folder(tmp_path)
    before = _snapshot(d)
    with pytest.raises(ValueError, match="not empty and holds no gamstore root"):
        gamstore.open_store(d)
    ro = gamstore.open_store(d, read_only=True)  # reading is harmless: an empty view
    assert list(ro.entries()) == []
    assert _snapshot(d) == before
    # an empty folder or a new path still becomes a store
    (tmp_path / "empty").mkdir()
    assert gamstore.open_store(tmp_path / "empty").save(KS, "k", block_record("k")) is not None
    assert gamstore.open_store(tmp_path / "new" / "store").url.endswith("store")


def test_maintenance_refuses_once_the_root_marker_is_gone(tmp_path: Path) -> None:
    root, store = _store(tmp_path)
    (root / "zarr.json").unlink()
    for op in (store.gc, store.evict, lambda: store.verify(fix=True), lambda: write_catalog(store)):
        with pytest.raises(ValueError, match="not a gamstore store"):
            op()
    assert next(iter(store.entries(KS))) is not None  # nothing was deleted


def test_root_marker_that_is_a_symlink_or_oversize(tmp_path: Path) -> None:
    out = _outside(tmp_path)
    root = tmp_path / "s1"
    root.mkdir()
    (root / "zarr.json").symlink_to(out / "data" / "zarr.json")
    with pytest.raises(ValueError, match="not a regular file"):
        gamstore.open_store(root)
    root2 = tmp_path / "s2"  # never opened in this process: nothing cached
    root2.mkdir()
    with open(root2 / "zarr.json", "wb") as f:
        f.write(b'{"zarr_format": 3, "node_type": "group", "attributes": {"gamstore": ')
        f.truncate(3 << 30)  # sparse 3 GiB
    import tracemalloc

    tracemalloc.start()
    try:
        for ro in (True, False):
            with pytest.raises(ValueError, match="not a gamstore root"):
                gamstore.open_store(root2, read_only=ro)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_backend_counts_and_logs_foreign_objects_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from gamstore.store.local import LocalBackend

    be = LocalBackend(tmp_path)
    be.put("a/real", b"1")
    (tmp_path / "a" / "link").symlink_to(tmp_path / "a" / "real")
    os.mkfifo(tmp_path / "a" / "fifo")
    with caplog.at_level("WARNING", logger="gamstore"):
        for _ in range(3):
            assert [o.path for o in be.list("")] == ["a/real"]
            assert sorted(be.list_dir("a")) == ["real"]
            assert be.get("a/link") is None and be.get("a/fifo") is None
            assert be.mtime("a/link") is None and be.mtime("a/fifo") is None
            assert not be.delete("a/link") and not be.delete("a/fifo")
    assert (tmp_path / "a" / "link").is_symlink() and (tmp_path / "a" / "fifo").exists()
    assert be.foreign >= 6
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2 and all("never followed" in m for m in logged)
    with pytest.raises(OSError):
        be.put_many({"a/link": b"x"})
    assert (tmp_path / "a" / "real").read_bytes() == b"1"
    json.dumps(be.foreign)


# -- special files never block a reader (issue 14, "Readers that hang") -------------------

_READERS = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from click.testing import CliRunner
import gamstore
from gamstore.cli import main as cli
for root in sys.argv[1:]:
    out = root + ".h5"
    for ro in (True, False):
        try:
            s = gamstore.open_store(root, read_only=ro)
        except ValueError:
            continue  # refused (a root zarr.json that is not a regular file): fine, no hang
        s.lookup("block", "k0"); s.lookup_latest("block", "k1")
        for info in list(s.entries()):
            s.read_entry(info)
        gamstore.open_fits(s)
        gamstore.open_fits(s, catalog="never")
        try:
            s.verify()
            if not ro:
                s.verify(fix=True)
        except ValueError:
            pass  # not a gamstore root: refused
    runner = CliRunner()
    codes = []
    for args in (["ls", root], ["du", root], ["show", root, "block", "k0"], ["verify", root],
                 ["verify", "--fix", root], ["export", root, "--to", out], ["catalog", root]):
        res = runner.invoke(cli, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.output)
        codes.append(res.exit_code)
    print(json.dumps([root, codes]), flush=True)
"""

_PLACES = {
    "chunk": lambda e: f"{e}/values/0",
    "marker": lambda e: f"{e}/zarr.json",
    "root": lambda e: "zarr.json",
    "pointer": lambda e: ".catalog/current.json",
}
_KINDS = ("fifo", "devzero", "socket")


def _filled_store(root: Path) -> str:
    store = gamstore.open_store(root)
    for i in range(2):
        assert store.save(KS, f"k{i}", block_record(f"k{i}", i), kind="final") is not None
    write_catalog(store)
    store.close()
    return next(iter(store.entries(KS))).path


def _plant(target: Path, kind: str) -> None:
    import socket

    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "devzero":
        target.symlink_to("/dev/zero")  # a symlink to an endless device
    else:
        cwd = os.getcwd()
        os.chdir(target.parent)  # bind a relative name: socket paths must be short
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.bind(target.name)
        finally:
            os.chdir(cwd)


def test_special_files_never_block_a_reader(tmp_path: Path) -> None:
    """A FIFO, a socket or a symlink to /dev/zero where a chunk, a marker, the root
    zarr.json or the catalog pointer should be: every read path and command finishes."""
    import subprocess
    import sys

    roots: dict[str, tuple[str, str, Path]] = {}
    for place in sorted(_PLACES):
        for kind in _KINDS:
            root = tmp_path / f"{place}-{kind}"
            entry = _filled_store(root)
            target = root / _PLACES[place](entry)
            _plant(target, kind)
            roots[str(root)] = (place, kind, target)
    env = {**os.environ, "PYTHONPATH": str(Path(gamstore.__file__).parents[1])}
    try:
        res = subprocess.run(
            [sys.executable, "-c", _READERS, *roots],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        done = [json.loads(line)[0] for line in (exc.stdout or b"").decode().splitlines()]
        stuck = next((roots[r][:2] for r in roots if r not in done), None)
        raise AssertionError(f"a reader blocked on a special file: {stuck}") from exc
    assert res.returncode == 0, res.stderr[-3000:]
    done = {json.loads(line)[0]: json.loads(line)[1] for line in res.stdout.splitlines()}
    assert sorted(done) == sorted(roots)
    for root, (place, _kind, target) in roots.items():
        assert os.path.lexists(target)  # left alone
        if place in ("chunk", "marker"):  # a miss for that entry only: the other is found
            ro = gamstore.open_store(root, read_only=True)
            assert [ro.lookup(KS, k) is not None for k in ("k0", "k1")].count(True) == 1


def test_sparse_catalog_pointer_is_not_read_whole(tmp_path: Path) -> None:
    import tracemalloc

    from gamstore.views.catalog import read_pointer

    root = tmp_path / "store"
    _filled_store(root)
    with open(root / ".catalog" / "current.json", "r+b") as f:
        f.truncate(3 << 30)  # sparse 3 GiB
    store = gamstore.open_store(root, read_only=True)
    tracemalloc.start()
    try:
        assert read_pointer(store) is None
        gamstore.open_fits(store)  # falls back to the entries
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_non_utf8_names_are_skipped_by_every_reader(tmp_path: Path) -> None:
    """Folder and file names that are not UTF-8 (made by another tool) crashed ``open_fits``."""
    root, store = _store(tmp_path)
    write_catalog(store)
    info = next(iter(store.entries(KS)))
    shard_dir = os.fsencode(root / info.path.rsplit("/", 1)[0])  # layout 2: entries in it
    for parent in (os.fsencode(root), os.fsencode(root / KS), shard_dir):
        bad = os.path.join(parent, b"\xff\xfe-x")
        os.mkdir(bad)
        with open(os.path.join(bad, b"zarr.json"), "wb") as f:
            f.write(b'{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    # a name shaped like an entry of the same key, but not UTF-8
    name = os.fsencode(info.folder) + b".18eab8e5bcaa3fb8-f828973e-e9c6697\xff"
    with open(os.path.join(shard_dir, name), "wb") as f:
        f.write(b"x")
    fresh = gamstore.open_store(root)
    fits = gamstore.open_fits(fresh, keyspace=KS, catalog="never")
    assert fits.sizes["fit"] == 1
    assert gamstore.open_fits(fresh, keyspace=KS).sizes["fit"] == 1
    assert fresh.verify().ok == 1
    fresh.gc(grace=0.0)
    assert fresh.lookup(KS, "k") is not None
    runner = CliRunner()
    for args in (["ls", str(root)], ["du", str(root)], ["verify", str(root)]):
        res = runner.invoke(cli, args)
        assert res.exit_code == 0, (args, res.output, res.exception)
    assert fresh.stats().foreign >= 4


def test_xarray_engine_probe_never_blocks_on_a_fifo(tmp_path: Path) -> None:
    """xarray asks every engine whether it can open a path: a FIFO root zarr.json hung it."""
    import threading

    from gamstore.views.backend import GamstoreBackendEntrypoint

    root, _store_ = _store(tmp_path)
    (root / "zarr.json").unlink()
    os.mkfifo(root / "zarr.json")
    link = tmp_path / "linked"
    link.mkdir()
    (link / "zarr.json").symlink_to("/dev/zero")
    got: list[bool] = []

    def probe() -> None:
        got.extend(GamstoreBackendEntrypoint().guess_can_open(str(p)) for p in (root, link))

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(30)
    assert got == [False, False], "the engine probe blocked on a FIFO or read /dev/zero"
