"""Values that break readers (issue 14): numbers out of range, from the API and in stored bytes.

Every number is range-checked where it is parsed. Through the public API an out-of-range
value is a ``ValueError``/``TypeError`` naming the field and its range, before anything is
written; in stored bytes it makes that one entry corrupt (a miss, counted, removable by
``verify --fix`` and by eviction), never an exception in a lookup, a listing, a view or a
maintenance command, and never a crash of the rest of the keyspace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requires import require_module

import gamstore
from gamstore.cli import EXIT_OK, EXIT_PROBLEM, main
from gamstore.records import IteratePayload
from gamstore.store.cache import clear_states
from gamstore.store.codec import array_meta_bytes
from gamstore.store.layout import MARKER
from gamstore.store.testing import block_record
from gamstore.views.catalog import write_catalog
from gamstore.views.synthetic import populate

BIG = 10**400  # no float64, no int64
N_FITS = 3


def _cli(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# ------------------------------------------------------------------------------------ API
def test_iteration_beyond_int64_is_refused_at_save(tmp_path: Path) -> None:
    store = gamstore.open_store(tmp_path / "s")
    rec = block_record("k", 1, n_blocks=1, width=3)
    for bad in (2**63, 10**30):
        with pytest.raises(ValueError, match=r"iteration: .*2\*\*63 - 1"):
            store.save("block", "k", rec, iteration=bad)
    with pytest.raises(ValueError, match="objective: int beyond the float64 range"):
        store.save("block", "k", rec, objective=BIG)
    assert list(store.entries()) == []
    assert store.save("block", "k", rec, iteration=2**63 - 1) is not None  # the bound itself


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"eval_id": 10**30}, r"IteratePayload\.eval_id: .*2\*\*63 - 1"),
        ({"eval_id": 2**63}, r"IteratePayload\.eval_id: .*2\*\*63 - 1"),
        ({"cost": BIG}, r"IteratePayload\.cost: .*float64 range"),
        ({"schema": 2**64}, r"IteratePayload\.schema: .*2\*\*63 - 1"),
    ],
)
def test_payload_numbers_beyond_range_are_refused(kwargs: dict[str, Any], pattern: str) -> None:
    args: dict[str, Any] = {"rho": np.ones(2), "cost": 1.0, "eval_id": 1, "beta": np.ones(3)}
    with pytest.raises(ValueError, match=pattern):
        IteratePayload(**{**args, **kwargs})


def test_record_fields_beyond_int64_are_refused() -> None:
    with pytest.raises(ValueError, match=r"n_rows: .*2\*\*63 - 1"):
        block_record("k", 1).__class__(
            key="k",
            n_rows=2**63,
            block_names=("a",),
            block_dims=(1,),
            rho=np.ones(1),
            block_beta=(np.ones(1),),
        )


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"ttl": float("inf")}, ValueError, "ttl: expected seconds in"),
        ({"ttl": float("nan")}, ValueError, "ttl: expected seconds in"),
        ({"ttl": 1e300}, ValueError, "ttl: expected seconds in"),
        ({"ttl": -1.0}, ValueError, "ttl: expected seconds in"),
        (
            {"budget_bytes": 2**63},
            ValueError,
            r"budget_bytes: expected an int in \[0, 2\*\*63 - 1\]",
        ),
        ({"budget_bytes": -1}, ValueError, "budget_bytes"),
        ({"budget_bytes": 1.5}, ValueError, "budget_bytes"),
        ({"read_only": "no"}, TypeError, "read_only: expected True or False, got str"),
        ({"read_only": 0}, TypeError, "read_only: expected True or False, got int"),
        ({"touch_interval": float("inf")}, ValueError, "touch_interval"),
        ({"checkpoint_interval": float("nan")}, ValueError, "checkpoint_interval"),
    ],
)
def test_open_store_options_are_range_checked(
    tmp_path: Path, kwargs: dict[str, Any], exc: type, pattern: str
) -> None:
    with pytest.raises(exc, match=pattern):
        gamstore.open_store(tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()  # refused before anything is created


def test_gc_grace_is_range_checked(tmp_path: Path) -> None:
    store = gamstore.open_store(tmp_path / "s")
    for bad in (float("inf"), float("nan"), -1.0, BIG, 1e300):
        with pytest.raises(ValueError, match="grace: expected seconds in"):
            store.gc(grace=bad)  # before: OverflowError for inf, 1e300 and 10**400
    assert store.gc(grace=0).payloads == 0


def test_ttl_at_its_bound_works(tmp_path: Path) -> None:
    # Before: ttl=inf was accepted and every lookup raised (int(inf * 1e9)).
    store = gamstore.open_store(tmp_path / "s", ttl=gamstore.store.core.MAX_TTL)
    rec = block_record("k", 1, n_blocks=1, width=3)
    assert store.save("block", "k", rec) is not None
    assert store.lookup("block", "k") is not None


def test_empty_url_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("", "   "):
        with pytest.raises(ValueError, match="url: expected a non-empty path or URL"):
            gamstore.open_store(url)
    assert os.listdir(tmp_path) == []  # before: a zarr.json in the current folder


def test_budget_zero_or_too_small_never_acknowledges_a_save(tmp_path: Path) -> None:
    rec = block_record("k", 1, n_blocks=2, width=20)
    for budget in (0, 100):
        store = gamstore.open_store(tmp_path / f"b{budget}", budget_bytes=budget)
        assert store.save("block", "k", rec) is None  # before: an entry id, entry gone
        assert list(store.entries()) == []
        assert store.lookup("block", "k") is None
        assert store.stats().save_errors == 0  # not a storage failure
    roomy = gamstore.open_store(tmp_path / "roomy", budget_bytes=1 << 20)
    assert roomy.save("block", "k", rec) is not None


def test_a_save_is_never_evicted_by_its_own_sweep(tmp_path: Path) -> None:
    """Before: an acknowledged save could be gone at once. Never-accessed entries are evicted
    first, so in a full store whose entries had been read, the new entry was the first victim
    of the sweep its own save triggered (the entry id returned, the lookup a miss)."""

    def rec(key: str) -> Any:
        return block_record(key, 1, n_blocks=2, width=20)

    probe = gamstore.open_store(tmp_path / "probe")
    assert probe.save("block", "ka", rec("ka")) is not None
    size = next(iter(probe.entries())).nbytes
    # One entry fits the budget, two do not.
    store = gamstore.open_store(tmp_path / "s", budget_bytes=size + 10)
    first = store.save("block", "ka", rec("ka"))
    assert first is not None and [i.entry_id for i in store.entries()] == [first]
    assert store.lookup("block", "ka") is not None  # accessed: later in eviction order
    store.flush()
    second = store.save("block", "kb", rec("kb"))
    assert second is not None
    assert [i.entry_id for i in store.entries()] == [second]  # the older one made room
    assert store.lookup("block", "kb") is not None


def test_small_budget_keeps_a_small_store_whole(tmp_path: Path) -> None:
    """Before: the shard sweeps held each of 256 shards to budget / 256, so a shard with a
    few entries of a store far below its budget was evicted (60 entries of 1.1 KB under
    1 MiB: one evicted; a new store under 200 KB: its first entry evicted)."""
    for budget in (200_000, 1 << 20):
        store = gamstore.open_store(tmp_path / f"s{budget}", budget_bytes=budget, sweep_every=1)
        for i in range(60):
            eid = store.save("block", f"k{i}", block_record(f"k{i}", 1, n_blocks=1, width=40))
            assert eid is not None
        assert store.stats().evictions == 0
        assert len(list(store.entries())) == 60


# ------------------------------------------------------------------------- stored bytes
def _entry_markers(root: Path, keyspace: str) -> list[Path]:
    return sorted(root.glob(f"{keyspace}/*/*.*/{MARKER}"))  # layout 2: <kk>/<key64>.<id>


def _attrs(marker: Path) -> dict[str, Any]:
    return json.loads(marker.read_text())


def _big_objective(doc: dict[str, Any], marker: Path) -> str:
    doc["attributes"]["gamstore"]["objective"] = "@BIG@"
    return json.dumps(doc).replace('"@BIG@"', str(BIG))


def _big_iteration(doc: dict[str, Any], marker: Path) -> str:
    doc["attributes"]["gamstore"]["iteration"] = 2**63
    return json.dumps(doc)


def _big_created(doc: dict[str, Any], marker: Path) -> str:
    doc["attributes"]["gamstore"]["created"] = 2**64 + 5
    return json.dumps(doc)


def _big_cost(doc: dict[str, Any], marker: Path) -> str:
    doc["attributes"]["gamstore"]["record"]["cost"] = "@BIG@"
    return json.dumps(doc).replace('"@BIG@"', str(BIG))


def _empty_part_shape(doc: dict[str, Any], shape: tuple[int, int]) -> str:
    # entry format 2: the record's arrays are described by the marker's parts table (their
    # bytes are packed into "values"); an empty part may claim any shape with a 0 in it
    parts = doc["attributes"]["gamstore"]["parts"]
    name = next(n for n, spec in sorted(parts.items()) if 0 in spec["shape"])
    parts[name].update(shape=list(shape), dims=["a", "b"])
    return json.dumps(doc)


def _huge_empty_shape(doc: dict[str, Any], marker: Path) -> str:
    return _empty_part_shape(doc, (0, 10**30))


def _big_empty_shape_in_range(doc: dict[str, Any], marker: Path) -> str:
    return _empty_part_shape(doc, (0, 2**62))  # int64, but numpy cannot build it


MUTATIONS: dict[str, tuple[str, Callable[[dict[str, Any], Path], str]]] = {
    "objective=10**400": ("block", _big_objective),
    "iteration=2**63": ("block", _big_iteration),
    "created=2**64": ("artifact", _big_created),
    "cost=10**400": ("outer", _big_cost),
    "shape=[0,10**30]": ("outer", _huge_empty_shape),
    "shape=[0,2**62]": ("outer", _big_empty_shape_in_range),
}


def _all_keys(root: Path) -> dict[str, dict[str, str]]:
    """keyspace -> entry id -> key, from the markers as written."""
    return {
        ks: {
            m.parent.name: _attrs(m)["attributes"]["gamstore"]["key"]
            for m in _entry_markers(root, ks)
        }
        for ks in ("artifact", "block", "outer")
    }


BadStore = tuple[Path, str, str, dict[str, dict[str, str]]]


@pytest.fixture(params=sorted(MUTATIONS))
def bad_store(request: pytest.FixtureRequest, tmp_path: Path) -> BadStore:
    """A store of 3 synthetic fits where one marker carries an out-of-range number."""
    root = tmp_path / "store"
    populate(gamstore.open_store(root), N_FITS, seed=7)
    keys = _all_keys(root)
    keyspace, mutate = MUTATIONS[request.param]
    marker = _entry_markers(root, keyspace)[0]
    marker.write_text(mutate(_attrs(marker), marker))
    clear_states()  # a fresh process: nothing cached from the writes
    return root, keyspace, marker.parent.name, keys


def test_out_of_range_marker_is_one_corrupt_entry_everywhere(bad_store: BadStore) -> None:
    root, keyspace, bad_id, keys = bad_store
    ro = gamstore.open_store(root, read_only=True)
    # lookups of every key: the bad one misses, the others hit, none raises
    for ks, by_id in keys.items():
        for eid, key in by_id.items():
            assert (ro.lookup(ks, key) is None) == (eid == bad_id), (ks, key)
    listed = [i.entry_id for i in ro.entries()]
    assert len(listed) in (3 * N_FITS, 3 * N_FITS - 1)  # a marker that parses is listed
    # the views read the rest of the keyspace
    for ks in keys:
        fits = gamstore.open_fits(ro, keyspace=ks)
        assert fits.sizes["fit"] == (N_FITS - 1 if ks == keyspace else N_FITS)
        assert bad_id not in [str(e) for e in fits.fit.values]
    # verify reports it corrupt, read-only: nothing deleted
    report = ro.verify()
    assert any(bad_id in p for p in report.corrupt)
    assert ro.stats().corrupt >= 1
    # the CLI commands over the whole store
    assert _cli("ls", root, "--json").exit_code == EXIT_OK
    assert _cli("du", root).exit_code == EXIT_OK
    assert _cli("verify", root).exit_code == EXIT_PROBLEM
    fixed = _cli("verify", root, "--fix")
    assert fixed.exit_code == EXIT_OK, fixed.output
    assert _cli("verify", root).exit_code == EXIT_OK
    assert not any(bad_id in str(p) for p in root.rglob("*"))  # removed, with its payload


def test_out_of_range_marker_does_not_stop_eviction(tmp_path: Path) -> None:
    """Before: one marker with objective 10**400 failed every sweep (144 KB vs 20 KB)."""
    root = tmp_path / "s"
    budget = 20_000
    store = gamstore.open_store(root, budget_bytes=budget, sweep_every=1)
    store.save("block", "k-bad", block_record("k-bad", 1, n_blocks=1, width=40), objective=1.0)
    marker = _entry_markers(root, "block")[0]
    marker.write_text(_big_objective(_attrs(marker), marker))
    clear_states()
    store = gamstore.open_store(root, budget_bytes=budget, sweep_every=1)
    for i in range(60):
        rec = block_record(f"k{i}", 1, n_blocks=1, width=40)
        assert store.save("block", f"k{i}", rec, objective=float(i)) is not None
    assert sum(i.nbytes for i in store.entries()) <= budget  # before: 144 KB
    assert store.evict() >= 0
    assert store.lookup("block", "k59") is not None


def test_export_and_catalog_survive_an_out_of_range_marker(tmp_path: Path) -> None:
    root = tmp_path / "store"
    populate(gamstore.open_store(root), N_FITS, seed=3)
    marker = _entry_markers(root, "artifact")[0]
    marker.write_text(_big_objective(_attrs(marker), marker))
    clear_states()
    out = tmp_path / "out.h5"
    require_module("h5py")
    res = _cli("export", root, "--to", out)
    assert res.exit_code in (EXIT_OK, EXIT_PROBLEM), res.output
    assert out.exists()
    assert _cli("catalog", root).exit_code == EXIT_OK
    fits = gamstore.open_fits(root)
    assert fits.sizes["fit"] == N_FITS - 1


# ------------------------------------------------------------------------ folder names
def test_non_utf8_folder_names_are_not_entries(tmp_path: Path) -> None:
    """Before: a key folder named with non-UTF-8 bytes crashed open_fits (listing digest)
    and, 64 such bytes long, every eviction sweep (int(name[:2], 16))."""
    root = tmp_path / "store"
    store = gamstore.open_store(root)
    populate(store, N_FITS, seed=5, keyspaces=("block",))
    write_catalog(store)
    good = _entry_markers(root, "block")[0]
    eid = good.parent.name.encode()
    broot = os.fsencode(root / "block")
    for parts in ((b"\xff", b"\xfe"), (b"ab", b"\xfe"), (b"\xff\xff", b"\xff" * 64)):
        folder = os.path.join(broot, *parts, eid)
        os.makedirs(folder)
        with open(os.path.join(folder, b"zarr.json"), "wb") as fh:
            fh.write(good.read_bytes())
    clear_states()
    store = gamstore.open_store(root)
    assert len(list(store.entries())) == N_FITS
    assert gamstore.open_fits(root, keyspace="block").sizes["fit"] == N_FITS
    assert gamstore.open_fits(store, keyspace="block").sizes["fit"] == N_FITS
    assert store.verify().corrupt == ()
    assert store.evict() == 0
    assert _cli("ls", root, "--json").exit_code == EXIT_OK


# ----------------------------------------------------------------- shapes (property)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.lists(
        st.one_of(
            st.integers(0, 4),
            st.sampled_from([0, 2**21, 2**21 + 1, 2**31, 2**62, 2**63 - 1]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_claimed_shape_is_a_miss_or_the_record_without_big_allocations(
    shape: list[int],
) -> None:
    """Shapes in a marker (with array metadata consistent with them) are checked against the
    entry cap before numpy sees them: a lookup returns the saved record or misses, never
    raises, and never allocates what the shape claims."""
    import tracemalloc
    import uuid

    from gamstore.store.codec import decode_arrays, marker_object_paths, parse_marker

    store = gamstore.open_store(f"memory://shape-{uuid.uuid4().hex}")
    payload = IteratePayload(rho=np.ones(2), cost=1.0, eval_id=1, beta=np.ones(3))
    eid = store.save("outer", "k", payload)
    assert eid is not None
    be = store.backend
    marker_path = next(o.path for o in be.list("outer") if o.path.endswith(f"{eid}/{MARKER}"))
    doc = json.loads(be.get(marker_path) or b"")
    arrays = doc["attributes"]["gamstore"]["arrays"]
    name = "hessian" if "hessian" in arrays else sorted(arrays)[0]
    dims = tuple(f"d{i}" for i in range(len(shape)))
    meta = array_meta_bytes("float64", tuple(shape), dims)
    base = marker_path.rsplit("/", 1)[0]
    be.put(f"{base}/{name}/{MARKER}", meta)
    arrays[name].update(shape=shape, dims=list(dims), meta_nbytes=len(meta))
    be.put(marker_path, json.dumps(doc).encode())
    clear_states()
    tracemalloc.start()
    try:
        entry = gamstore.open_store(store.url).lookup("outer", "k")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20
    if entry is not None:  # only a shape that is the stored one can decode
        assert entry.record == payload
    # the codec's own answer for the same bytes: CorruptEntryError or the arrays, nothing else
    m = parse_marker(json.dumps(doc).encode(), keyspace="outer", entry_id=eid)
    blobs = {p: be.get(f"{base}/{p}") for p in marker_object_paths(m)}
    try:
        decode_arrays(m, blobs)
    except ValueError as exc:
        assert type(exc).__name__ == "CorruptEntryError"
