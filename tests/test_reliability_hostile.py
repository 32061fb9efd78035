"""Hostile or damaged stores: a Hypothesis fuzzer mutating markers, attrs and chunks.

Property: whatever was done to a stored entry (wrong types, huge numbers, deep nesting,
enormous strings, dtype/shape lies, codec lies, names with ``..`` or ``/``, random bytes), the
reader never raises, never returns numbers other than the ones that were saved, and never
writes outside the store root; sizes are checked before anything big is allocated. Plus a
by-construction check that nothing in the package can unpickle or execute stored data.
"""

from __future__ import annotations

import ast
import json
import os
import stat
import tempfile
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gamstore
from gamstore.store.layout import MARKER
from gamstore.store.testing import block_record

KS = "block"
KEY = "hostile"
GOOD = block_record(KEY, 2, n_blocks=2, width=6)
PKG = Path(gamstore.__file__).parent


def _good_objects() -> dict[str, bytes]:
    """Every object of a store holding one good entry, by path."""
    store = gamstore.open_store(f"memory://hostile-src-{uuid.uuid4().hex}")
    store.save(KS, KEY, GOOD, objective=1.5)
    be = store.backend
    return {o.path: be.get(o.path) or b"" for o in be.list("")}


GOOD_OBJECTS = _good_objects()
ENTRY_MARKER = next(  # layout 2: <ks>/<kk>/<key64>.<entry id>/zarr.json
    p for p in GOOD_OBJECTS if p.startswith(f"{KS}/") and p.count("/") == 3 and p.endswith(MARKER)
)
ENTRY = ENTRY_MARKER.rsplit("/", 1)[0]
PAYLOAD = sorted(p for p in GOOD_OBJECTS if p.startswith(ENTRY + "/") and p != ENTRY_MARKER)


def _deep(n: int) -> Any:
    v: Any = 0
    for _ in range(n):
        v = [v]
    return v


hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, -1, 10**30, 0, 2**31, 1e308, -1e308, 5e-324, -0.0]),
    st.sampled_from([10**400, -(10**400), 2**64, -(2**63) - 1]),  # beyond int64 and float64
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["..", "../..", "/etc/passwd", "a/../../b", "x/" * 30, "\x00", "é/\\"]),
    st.just("A" * 2_000_000),  # enormous string
    st.builds(_deep, st.sampled_from([10, 60, 70, 500])),  # deep nesting
    st.sampled_from(["object", "|O", "<U10", "float32", "int8", "complex128", "V8", "S3"]),
    st.lists(st.integers(min_value=-(2**64), max_value=2**64), max_size=4),  # shape lies
    st.sampled_from([[2**40], [0, 2**70], [2**31, 2**31], [-1], [], [0], [10**12]]),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)

# Where in the marker attrs a hostile value goes (paths below attrs["gamstore"]).
ARRAY_NAMES = sorted(json.loads(GOOD_OBJECTS[ENTRY_MARKER])["attributes"]["gamstore"]["arrays"])
FIELD_PATHS = [
    ("arrays",),
    ("groups",),
    ("key",),
    ("keyspace",),
    ("kind",),
    ("objective",),
    ("iteration",),
    ("created",),
    ("record",),
    ("record_type",),
    ("schema",),
    ("format",),
    ("layout",),
    ("entry_id",),
    ("producer",),
    ("nbytes",),
] + [
    ("arrays", name, f)
    for name in ARRAY_NAMES
    for f in ("shape", "dtype", "dims", "digest", "nbytes", "meta_nbytes")
]
RECORD_FIELDS = sorted(json.loads(GOOD_OBJECTS[ENTRY_MARKER])["attributes"]["gamstore"]["record"])
FIELD_PATHS += [("record", f) for f in RECORD_FIELDS]
EVIL_NAMES = ["../../evil", "/abs", "a/../b", "..", "x" * 5000, "beta/0/../../..", "ok/zarr.json"]


@st.composite
def marker_mutation(draw: st.DrawFn) -> tuple[str, bytes]:
    doc = json.loads(GOOD_OBJECTS[ENTRY_MARKER])
    attrs = doc["attributes"]["gamstore"]
    how = draw(st.sampled_from(["set", "delete", "add_array", "add_group", "top"]))
    if how in ("set", "delete"):
        path = draw(st.sampled_from(FIELD_PATHS))
        node = attrs
        for p in path[:-1]:
            node = node[p]
        if how == "set":
            node[path[-1]] = draw(hostile_values)
        else:
            node.pop(path[-1], None)
    elif how == "add_array":
        name = draw(st.sampled_from(EVIL_NAMES))
        attrs["arrays"][name] = {
            "dims": ["i"],
            "dtype": draw(st.sampled_from(["float64", "int64", "object"])),
            "shape": draw(st.sampled_from([[3], [2**40], [0]])),
            "digest": "0" * 64,
            "nbytes": 28,
            "meta_nbytes": 10,
        }
    elif how == "add_group":
        attrs["groups"].append(draw(st.sampled_from(EVIL_NAMES)))
    else:
        key = draw(st.sampled_from(["zarr_format", "node_type", "attributes"]))
        doc[key] = draw(hostile_values)
    return ENTRY_MARKER, json.dumps(doc).encode()


@st.composite
def byte_mutation(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from([ENTRY_MARKER, *PAYLOAD]))
    data = GOOD_OBJECTS[path]
    how = draw(st.sampled_from(["truncate", "flip", "append", "replace", "empty", "json"]))
    if how == "truncate":
        return path, data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "flip":
        i = draw(st.integers(0, len(data) - 1))
        return path, data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    if how == "append":
        return path, data + draw(st.binary(min_size=1, max_size=64))
    if how == "replace":
        return path, draw(st.binary(max_size=256))
    if how == "empty":
        return path, b""
    return path, draw(
        st.sampled_from(
            [
                b"NaN",
                b'{"zarr_format": 3, "node_type": "group", "attributes": {"gamstore": NaN}}',
                b"[" * 100_000 + b"]" * 100_000,
                b'{"a": 1, "a": 2}',
                b'"' + b"x" * 3_000_000 + b'"',
                b"\xff\xfe\x00garbage",
                json.dumps(
                    {"zarr_format": 3, "node_type": "array", "data_type": "object"}
                ).encode(),
            ]
        )
    )


mutations = st.lists(st.one_of(marker_mutation(), byte_mutation()), min_size=1, max_size=3)


def _exercise(store: gamstore.Store) -> None:
    """Every read path must survive; a hit must carry exactly the saved numbers."""
    for how in ("lookup", "lookup_latest"):
        entry = getattr(store, how)(KS, KEY)
        if entry is not None:
            assert entry.record == GOOD, f"{how} returned numbers that were never saved"
            assert entry.key == KEY
    for info in store.entries():
        store.read_marker(info)
        entry = store.read_entry(info)
        assert entry is None or entry.record == GOOD
    report = store.verify()
    assert report.checked == report.ok + len(report.corrupt)


def _load_into(store: gamstore.Store, changes: list[tuple[str, bytes]]) -> None:
    be = store.backend
    for path, data in GOOD_OBJECTS.items():
        be.put(path, data)
    for path, data in changes:
        be.put(path, data)


@settings(
    max_examples=int(os.environ.get("GAMSTORE_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(changes=mutations)
def test_fuzzed_entry_never_crashes_or_lies(changes: list[tuple[str, bytes]]) -> None:
    store = gamstore.open_store(f"memory://hostile-{uuid.uuid4().hex}")
    _load_into(store, changes)
    _exercise(store)
    store.gc(grace=0.0)
    store.verify(fix=True)
    _exercise(store)  # after the cleanup pass too


def _tree(top: str) -> list[tuple[str, int]]:
    out = []
    for dirpath, _d, files in os.walk(top):
        for f in files:
            full = os.path.join(dirpath, f)
            out.append((full, os.path.getsize(full)))
    return sorted(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=mutations)
def test_fuzzed_local_store_never_writes_outside_root(changes: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as top:
        sibling = os.path.join(top, "sibling")
        os.makedirs(os.path.join(sibling, "block"))
        with open(os.path.join(sibling, "keep"), "wb") as f:
            f.write(b"precious")
        root = os.path.join(top, "root", "store")
        store = gamstore.open_store(root)
        _load_into(store, changes)
        outside = [p for p in _tree(top) if not p[0].startswith(root + os.sep)]
        _exercise(store)
        store.verify(fix=True)
        store.gc(grace=0.0)
        store.evict()
        store.flush()
        assert [p for p in _tree(top) if not p[0].startswith(root + os.sep)] == outside


def test_path_escapes_are_refused_by_the_backend(tmp_path: Path) -> None:
    store = gamstore.open_store(str(tmp_path / "store"))
    for bad in ("../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a\\..\\b", "a\x00b"):
        with pytest.raises(ValueError, match="path"):
            store.backend.get(bad)
        with pytest.raises(ValueError, match="path"):
            store.put_raw(bad, b"x")
    assert not (tmp_path / "x").exists()


# -- sizes are checked before reading -------------------------------------------------------------

BIG = 256 * 1024 * 1024


@pytest.mark.parametrize("which", ["chunk", "marker"])
def test_planted_huge_object_is_not_read_into_memory(which: str, tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = gamstore.open_store(str(root))
    store.save(KS, KEY, GOOD)
    path = ENTRY_MARKER if which == "marker" else next(p for p in PAYLOAD if p.endswith("/0"))
    folder = next(i.path for i in store.entries())
    full = root / folder / path[len(ENTRY) + 1 :]
    with open(full, "r+b") as f:
        f.truncate(BIG)  # sparse: costs no disk, 256 MiB if read
    fresh = gamstore.open_store(str(root))
    fresh._state.markers.clear()  # noqa: SLF001 - force the read path (same process)
    fresh._state.decoded.clear()  # noqa: SLF001
    tracemalloc.start()
    try:
        hit = fresh.lookup(KS, KEY)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert hit is None
    assert peak < 64 * 1024 * 1024, f"lookup allocated {peak / 2**20:.0f} MiB for a damaged entry"


def test_shape_lie_with_consistent_metadata_allocates_nothing(tmp_path: Path) -> None:
    from gamstore.store import codec

    doc = json.loads(GOOD_OBJECTS[ENTRY_MARKER])
    arrays = doc["attributes"]["gamstore"]["arrays"]
    name = ARRAY_NAMES[0]
    spec = arrays[name]
    spec["shape"] = [2**33]
    meta = codec.array_meta_bytes(spec["dtype"], tuple(spec["shape"]), tuple(spec["dims"]))
    store = gamstore.open_store(f"memory://shape-lie-{uuid.uuid4().hex}")
    _load_into(
        store, [(ENTRY_MARKER, json.dumps(doc).encode()), (f"{ENTRY}/{name}/zarr.json", meta)]
    )
    tracemalloc.start()
    try:
        assert store.lookup(KS, KEY) is None
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def test_object_dtype_entries_are_rejected() -> None:
    doc = json.loads(GOOD_OBJECTS[ENTRY_MARKER])
    name = ARRAY_NAMES[0]
    doc["attributes"]["gamstore"]["arrays"][name]["dtype"] = "object"
    store = gamstore.open_store(f"memory://objdtype-{uuid.uuid4().hex}")
    _load_into(store, [(ENTRY_MARKER, json.dumps(doc).encode())])
    assert store.verify().corrupt == (ENTRY,)
    assert store.lookup(KS, KEY) is None
    assert store.stats().corrupt >= 1


# -- no pickle, no code execution from stored data (by construction) -------------------------------

FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def _package_sources() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def test_package_never_imports_pickle_or_evaluates_code() -> None:
    problems = []
    for src in _package_sources():
        tree = ast.parse(src.read_text(), filename=str(src))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                names = []
            problems += [f"{src}: imports {n}" for n in names if n in FORBIDDEN_MODULES]
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
                owner_id = getattr(getattr(fn, "value", None), "id", "")
                builtin = isinstance(fn, ast.Name) or owner_id == "builtins"
                if name in FORBIDDEN_CALLS and builtin:
                    problems.append(f"{src}:{node.lineno}: calls {name}()")
                if name in ("load", "loads") and isinstance(fn, ast.Attribute):
                    owner = getattr(fn.value, "id", "")
                    if owner in ("np", "numpy", "pickle", "yaml"):
                        problems.append(f"{src}:{node.lineno}: calls {owner}.{name}()")
                for kw in node.keywords:
                    if kw.arg == "allow_pickle" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        problems.append(f"{src}:{node.lineno}: allow_pickle")
    assert problems == []


def test_grep_finds_a_planted_violation(tmp_path: Path) -> None:
    """The scanner above can fail: it flags a file that does the forbidden things."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nimport numpy as np\nnp.load('x', allow_pickle=True)\neval('1')\n"
    )
    tree = ast.parse(bad.read_text())
    kinds = {type(n).__name__ for n in ast.walk(tree)}
    assert {"Import", "Call"} <= kinds
    global _package_sources
    saved = _package_sources
    _package_sources = lambda: [bad]  # noqa: E731
    try:
        with pytest.raises(AssertionError):
            test_package_never_imports_pickle_or_evaluates_code()
    finally:
        _package_sources = saved


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=mutations)
def test_fuzzed_entry_through_the_xarray_views(changes: list[tuple[str, bytes]]) -> None:
    """The views (DataTree of one entry, the fits table) read hostile stores without crashing."""
    import numpy as np

    from gamstore.views.entry import EntryNotFoundError

    store = gamstore.open_store(f"memory://hostile-views-{uuid.uuid4().hex}")
    _load_into(store, changes)
    try:
        tree = gamstore.open_entry(store, KS, KEY)
    except EntryNotFoundError:
        tree = None
    if tree is not None:  # a readable entry shows exactly the saved numbers
        got = [n for n in tree.subtree if "rho" in n.data_vars]
        assert got and np.array_equal(got[0]["rho"].values, GOOD.rho)
    gamstore.open_fits(store)
    for ragged in (False, True):  # the keyspace of the fuzzed entry (the default is artifact)
        fits = gamstore.open_fits(store, keyspace=KS, ragged=ragged, catalog="never")
        assert fits.sizes["fit"] in (0, 1)


# -- the file system as the attacker's tool: symlinks, special files, odd names ------------------
#
# A local store is a folder anyone with write access can plant things in. Hypothesis picks up
# to three plants (where x what) on a store holding one good entry and a catalog, then runs
# every read path, view, maintenance command and CLI command. Properties: nothing raises out
# of a read, a hit carries exactly the saved numbers, nothing outside the root changes (bytes
# and mtimes), nothing hangs (a watchdog kills the run after 120 s), planted objects are left
# in place.

FS_WHERE = [
    "entry",  # the entry folder
    "array",  # an array folder inside the entry
    "chunk",
    "marker",
    "key",  # the key folder of layout 1 (walked for old entries)
    "sibling",  # a new name in the shard, shaped like an entry of the key
    "shard",
    "keyspace",
    "other_keyspace",  # a keyspace folder gamstore has not made yet
    "access",  # the entry's touch object
    "access_dir",  # the .access folder of the keyspace
    "catalog_dir",
    "pointer",
    "root_marker",
]
FS_WHAT = [
    "symlink_dir",  # to a user's folder outside the root
    "symlink_file",  # to a user's file outside the root
    "symlink_dangling",
    "symlink_devzero",
    "fifo",
    "socket",
    "file_for_dir",  # a regular file where a folder should be (or the reverse)
    "non_utf8",  # a non-UTF-8 name beside the target
]


def _fs_target(root: Path, entry: str, where: str) -> Path:
    shard, _, name = entry.rpartition("/")
    key64 = name.split(".", 1)[0]
    return {
        "entry": root / entry,
        "array": root / entry / "values",
        "chunk": root / entry / "values" / "0",
        "marker": root / entry / MARKER,
        # the key's folder of layout 1 (still walked: old entries live there)
        "key": root / shard / key64,
        "sibling": root / shard / f"{key64}.18eab8e5bcaa3fb8-f828973e-e9c66971",
        "shard": root / shard,
        "keyspace": root / KS,
        "other_keyspace": root / "outer",
        "access": root / ".access" / entry,
        "access_dir": root / ".access" / KS,
        "catalog_dir": root / ".catalog",
        "pointer": root / ".catalog" / "current.json",
        "root_marker": root / MARKER,
    }[where]


def _plant(target: Path, what: str, outside: Path) -> None:
    import shutil
    import socket

    if not _plain_folder_chain(target):
        return  # an earlier plant replaced a parent: planting through it could escape
    if what == "non_utf8":
        parent = target.parent if target.parent.exists() else target.parent.parent
        bad = os.path.join(os.fsencode(parent), b"\xff\xfe-" + os.fsencode(target.name))
        if what == "non_utf8" and not os.path.exists(bad):
            os.mkdir(bad)
            with open(os.path.join(bad, b"zarr.json"), "wb") as f:
                f.write(b"{}")
        return
    if os.path.lexists(target):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if what == "symlink_dir":
        target.symlink_to(outside / "data")
    elif what == "symlink_file":
        target.symlink_to(outside / "precious.txt")
    elif what == "symlink_dangling":
        target.symlink_to(outside / "missing")
    elif what == "symlink_devzero":
        target.symlink_to("/dev/zero")
    elif what == "fifo":
        os.mkfifo(target)
    elif what == "socket":
        cwd = os.getcwd()
        os.chdir(target.parent)  # a relative name: socket paths must be short
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.bind(target.name)
        finally:
            os.chdir(cwd)
    elif what == "file_for_dir":
        target.write_bytes(b"not what you expected")


def _plain_folder_chain(target: Path) -> bool:
    """True when every existing folder from the store root down to ``target``'s parent is a
    real folder (not a symlink, FIFO or file an earlier plant put there)."""
    root = target_root(target)
    p = target.parent
    while p != root:
        if os.path.lexists(p) and (p.is_symlink() or not p.is_dir()):
            return False
        p = p.parent
    return True


def target_root(target: Path) -> Path:
    """The store root above ``target`` (the folder named ``store``)."""
    for p in target.parents:
        if p.name == "store":
            return p
    raise AssertionError(target)


def _outside_tree(top: Path) -> Path:
    out = top / "outside"
    (out / "data" / "rho").mkdir(parents=True)
    (out / "data" / MARKER).write_text('{"zarr_format": 3, "node_type": "group"}')
    (out / "data" / "rho" / "0").write_bytes(b"\x07" * 32)
    (out / "precious.txt").write_text("keep me")
    old = 1_600_000_000
    for dirpath, dirs, files in os.walk(out):
        for n in dirs + files:
            os.utime(os.path.join(dirpath, n), (old, old))
    return out


def _tree_state(top: Path) -> list[tuple[str, bytes, int, int]]:
    out = []
    for dirpath, dirs, files in os.walk(top):
        for n in dirs + files:
            full = os.path.join(dirpath, n)
            st = os.lstat(full)
            data = Path(full).read_bytes() if stat.S_ISREG(st.st_mode) else b""
            out.append((full, data, st.st_mtime_ns, st.st_mode))
    return sorted(out)


def _every_command_and_view(root: Path, top: Path) -> None:
    from click.testing import CliRunner

    from gamstore.cli import main as cli
    from gamstore.views.entry import EntryNotFoundError
    from gamstore.views.hdf5 import export_hdf5

    for ro in (True, False):
        try:
            store = gamstore.open_store(root, read_only=ro)
        except ValueError:
            continue  # a root zarr.json that is not ours: refused, fine
        _exercise_fs(store)
        gamstore.open_fits(store)
        try:
            gamstore.open_entry(store, KS, KEY)
        except EntryNotFoundError:
            pass
        try:
            export_hdf5(store, top / f"out-{ro}.h5")
        except (OSError, ValueError):
            pass  # refused or storage trouble: reported, not a crash
        if not ro:
            _maintain(store)
            _exercise_fs(store)
    runner = CliRunner()
    for args in (
        ["ls", str(root)],
        ["du", str(root)],
        ["show", str(root), KS, KEY],
        ["verify", str(root)],
        ["verify", "--fix", str(root)],
        ["gc", "--grace", "0s", str(root)],
        ["evict", str(root)],
        ["catalog", str(root)],
        ["export", str(root), "--to", str(top / "cli.h5")],
    ):
        res = runner.invoke(cli, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), (
            args,
            res.output,
            res.exception,
        )


def _maintain(store: gamstore.Store) -> None:
    """Every write and maintenance path; a refusal (OSError, ValueError) is fine."""
    from gamstore.views.catalog import write_catalog

    for op in (
        lambda: store.save(KS, KEY, GOOD),
        lambda: store.save("outer", KEY, GOOD),
        store.flush,
        lambda: store.verify(fix=True),
        store.evict,
        lambda: store.gc(grace=0.0),
        lambda: write_catalog(store),
    ):
        try:
            op()
        except (OSError, ValueError):
            pass  # refused (not a store root, a catalog folder that is a symlink)


def _exercise_fs(store: gamstore.Store) -> None:
    for how in ("lookup", "lookup_latest"):
        entry = getattr(store, how)(KS, KEY)
        if entry is not None:
            assert entry.record == GOOD, f"{how} returned numbers that were never saved"
    for info in store.entries():
        store.read_marker(info)
        entry = store.read_entry(info)
        assert entry is None or entry.record == GOOD
    try:
        report = store.verify()
    except ValueError:
        return  # no gamstore root: refused
    assert report.checked == report.ok + len(report.corrupt)


fs_plants = st.lists(
    st.tuples(st.sampled_from(FS_WHERE), st.sampled_from(FS_WHAT)), min_size=1, max_size=3
)


@settings(
    max_examples=int(os.environ.get("GAMSTORE_FS_FUZZ_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plants=fs_plants)
def test_fuzzed_file_system_plants_never_escape_hang_or_lie(
    plants: list[tuple[str, str]],
) -> None:
    import faulthandler

    faulthandler.dump_traceback_later(180, exit=True)  # a hang fails the run, loudly
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _fs_example(Path(tmp), plants)
    finally:
        faulthandler.cancel_dump_traceback_later()


def _fs_example(top: Path, plants: list[tuple[str, str]]) -> None:
    from gamstore.views.catalog import write_catalog

    outside = _outside_tree(top)
    root = top / "store"
    store = gamstore.open_store(root)
    assert store.save(KS, KEY, GOOD, objective=1.5) is not None
    write_catalog(store)
    entry = next(iter(store.entries(KS))).path
    store.lookup(KS, KEY)
    store.close()  # writes the access touch
    for where, what in plants:
        _plant(_fs_target(root, entry, where), what, outside)
    before = _tree_state(outside)
    _every_command_and_view(root, top)
    assert _tree_state(outside) == before
    for where, what in plants:
        target = _fs_target(root, entry, where)
        planted = what.startswith("symlink") or what in ("fifo", "socket")
        if planted and _plain_folder_chain(target) and target.parent.is_dir():
            assert os.path.lexists(target)  # left in place, never followed or deleted


# -- a marker that still parses but says something else is corrupt, not another record ----------


@pytest.mark.parametrize(
    "change",
    [
        ("record", "package_version", "0.0.0-other"),  # a valid value, not the saved one
        ("record", "n_rows", 103),
        ("record", "created_unix_secs", 1),
        ("drop", "record_digest", None),
        ("swap_parts", None, None),  # the same sizes, another place in the packs
    ],
    ids=lambda c: f"{c[0]}-{c[1]}",
)
def test_marker_fields_are_covered_by_the_record_digest(change: tuple[str, Any, Any]) -> None:
    doc = json.loads(GOOD_OBJECTS[ENTRY_MARKER])
    attrs = doc["attributes"]["gamstore"]
    how, name, value = change
    if how == "record":
        assert attrs["record"][name] != value
        attrs["record"][name] = value
    elif how == "drop":
        attrs.pop(name)
    else:
        parts = attrs["parts"]
        # two parts of one shape trade their dimension names: same sizes, so the packs still
        # split, but the marker now describes another record
        names = sorted(parts)
        a, b = next(
            (m, n) for m in names for n in names if m < n and parts[m]["shape"] == parts[n]["shape"]
        )
        parts[a]["dims"], parts[b]["dims"] = parts[b]["dims"], parts[a]["dims"]
    store = gamstore.open_store(f"memory://digest-{uuid.uuid4().hex}")
    _load_into(store, [(ENTRY_MARKER, json.dumps(doc).encode())])
    assert store.lookup(KS, KEY) is None
    assert store.stats().corrupt >= 1
    # the untouched marker reads back exactly
    clean = gamstore.open_store(f"memory://digest-{uuid.uuid4().hex}")
    _load_into(clean, [])
    entry = clean.lookup(KS, KEY)
    assert entry is not None and entry.record == GOOD
