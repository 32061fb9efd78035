"""Entry formats: format 2 packs a record's arrays (values/ints + offsets); stores written in
format 1 (one Zarr array per record array) keep reading, side by side with new entries."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore import open_store
from gamstore.records import BlockWarmStartRecord, InnerSummary, IteratePayload
from gamstore.store import codec

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OLD = FIXTURES / "store_format1"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = _load("gamstore_record_parts", FIXTURES / "record_parts" / "cases.py").cases()
ENTRIES = _load("gamstore_make_store_format1", FIXTURES / "make_store_format1.py").ENTRIES


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    root = tmp_path / "old"
    shutil.copytree(OLD, root)
    return root


def _markers(root: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted(root.glob("*/??/*/*/zarr.json")):
        out.append(json.loads(p.read_text(encoding="utf-8"))["attributes"]["gamstore"])
    return out


def test_fixture_is_format_1() -> None:
    formats = {m["format"] for m in _markers(OLD)}
    assert formats == {1} and len(_markers(OLD)) == len(ENTRIES)
    assert any(m["groups"] == ["active_sets", "block_beta", "inner"] for m in _markers(OLD))


@pytest.mark.parametrize(("keyspace", "key", "case", "kind"), ENTRIES)
def test_old_entries_read_with_todays_code(
    old_store: Path, keyspace: str, key: str, case: str, kind: str
) -> None:
    store = open_store(old_store)
    hit = store.lookup(keyspace, key)
    assert hit is not None and hit.record == CASES[case]
    assert hit.objective == 1.5 and hit.iteration == 3


def test_old_and_new_entries_side_by_side(old_store: Path) -> None:
    store = open_store(old_store)
    rec = CASES["block_full"]
    new = BlockWarmStartRecord(**{**rec.__dict__, "key": "cf-new"})
    assert store.save("block", "cf-new", new) is not None
    formats = sorted(m["format"] for m in _markers(old_store))
    assert formats == [1] * len(ENTRIES) + [2]
    hit = store.lookup("block", "cf-new")
    assert hit is not None and hit.record == new
    report = store.verify()
    assert report.corrupt == () and report.checked == len(ENTRIES) + 1


def test_old_store_keeps_layout_1_until_upgraded_then_reads_both(old_store: Path) -> None:
    from click.testing import CliRunner

    from gamstore.cli import EXIT_OK, main
    from gamstore.store.cache import clear_states

    store = open_store(old_store)
    assert store.layout == 1  # an older gamstore may share it: new entries in layout 1 too
    rec = CASES["block_full"]
    first = store.save("block", "cf-new", BlockWarmStartRecord(**{**rec.__dict__, "key": "cf-new"}))
    assert first is not None and len(list(old_store.glob(f"block/??/*/{first}"))) == 1
    res = CliRunner().invoke(main, ["upgrade", str(old_store), "--json"])
    assert res.exit_code == EXIT_OK, res.output
    assert json.loads(res.output) == {"layout_before": 1, "layout": 2}
    again = CliRunner().invoke(main, ["upgrade", str(old_store)])
    assert again.exit_code == EXIT_OK and "already layout 2" in again.output
    clear_states()  # a new process
    store = open_store(old_store)
    assert store.layout == 2
    second = store.save(
        "block", "cf-new", BlockWarmStartRecord(**{**rec.__dict__, "key": "cf-new"})
    )
    assert second is not None and len(list(old_store.glob(f"block/??/*.{second}"))) == 1
    # every old entry and both shapes under one key read; nothing was moved
    for keyspace, key, case, _kind in ENTRIES:
        hit = store.lookup(keyspace, key)
        assert hit is not None and hit.record == CASES[case]
    assert store.lookup_latest("block", "cf-new").entry_id == second  # type: ignore[union-attr]
    ids = {i.entry_id for i in store.entries("block")}
    assert {first, second} <= ids
    report = store.verify()
    assert report.corrupt == () and report.checked == len(ENTRIES) + 2
    gc = store.gc(grace=0)
    assert (gc.payloads, gc.temps, gc.access) == (0, 0, 0)
    assert len(list(store.entries())) == len(ENTRIES) + 2


def test_old_store_opens_in_the_views(old_store: Path) -> None:
    import gamstore

    ds = gamstore.open_fits(old_store, keyspace="block")
    assert ds.sizes["fit"] == 2
    blk = CASES["block_full"]
    row = [i for i, k in enumerate(ds["key"].values) if str(k) == "cf-fixture-block"]
    assert row, ds
    beta = ds["block_beta"].isel(fit=row[0]).values
    mask = ds["block_beta_mask"].isel(fit=row[0]).values
    for b, want in enumerate(blk.block_beta):
        np.testing.assert_array_equal(beta[b][mask[b]], want)


def test_a_packed_block_record_is_at_most_four_objects_and_its_marker(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    rec = BlockWarmStartRecord(
        key="k",
        n_rows=10,
        block_names=tuple(f"b{i}" for i in range(5)),
        block_dims=(3, 4, 5, 6, 7),
        rho=np.arange(5.0),
        block_beta=tuple(np.arange(float(d)) for d in (3, 4, 5, 6, 7)),
        active_sets=(None,) * 5,
    )
    entry_id = store.save("block", "k", rec)
    assert entry_id is not None
    entry = next(tmp_path.glob(f"block/??/*.{entry_id}"))  # layout 2: <key64>.<entry id>
    objects = sorted(p.relative_to(entry).as_posix() for p in entry.rglob("*") if p.is_file())
    assert objects == [
        "offsets/0",
        "offsets/zarr.json",
        "values/0",
        "values/zarr.json",
        "zarr.json",
    ]
    # plain zarr: the packs have dimension names; split at offsets as the marker's parts say
    g = zarr.open_group(str(entry), mode="r")
    assert g["values"].metadata.dimension_names == ("value",)  # type: ignore[union-attr]
    assert g["offsets"].metadata.dimension_names == ("part_edge",)  # type: ignore[union-attr]
    parts = g.attrs["gamstore"]["parts"]  # type: ignore[index]
    names = sorted(parts)
    edges = g["offsets"][:]  # type: ignore[index]
    values = g["values"][:]  # type: ignore[index]
    assert names[0] == "block_beta/0" and names[-1] == "rho"
    np.testing.assert_array_equal(values[edges[0] : edges[1]], rec.block_beta[0])
    np.testing.assert_array_equal(values[edges[-2] : edges[-1]], rec.rho)
    assert parts["block_beta/4"]["dims"] == ["coef_4"]


def test_offsets_that_disagree_with_the_parts_are_corrupt() -> None:
    rec = CASES["block_full"]
    enc = codec.encode_entry(
        record=rec, keyspace="block", key=rec.key, entry_id="0" * 16 + "-00000000-00000000",
        producer="p", created=1, objective=None, iteration=None, kind="checkpoint", schema="s",
    )  # fmt: skip
    marker = codec.parse_marker(
        enc.marker, keyspace="block", entry_id="0" * 16 + "-00000000-00000000"
    )
    assert marker.attrs["format"] == 2 and set(marker.attrs["arrays"]) == {
        "values",
        "ints",
        "offsets",
    }
    rel = codec.marker_object_paths(marker)
    blobs = {p: enc.payload[p] for p in rel}
    assert (
        codec.decode_record(marker, codec.decode_arrays(marker, blobs), lambda n: type(rec)) == rec
    )
    # a marker whose part shapes no longer add up to the stored offsets
    attrs = json.loads(enc.marker)["attributes"]["gamstore"]
    attrs["parts"]["rho"]["shape"] = [2]
    bad = codec.Marker(**{**marker.__dict__, "attrs": attrs})
    with pytest.raises(codec.CorruptEntryError, match="offsets"):
        codec.decode_arrays(bad, blobs)
    # a format-2 marker without its parts table
    del attrs["parts"]
    doc = {"attributes": {"gamstore": attrs}, "node_type": "group", "zarr_format": 3}
    with pytest.raises(codec.CorruptEntryError, match="parts"):
        codec.parse_marker(
            json.dumps(doc).encode(), keyspace="block", entry_id="0" * 16 + "-00000000-00000000"
        )


# ------------------------------------------------------------------ property: codec round trip
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_vec = st.lists(_finite, max_size=6).map(lambda v: np.array(v, dtype=np.float64))


@st.composite
def _block_records(draw: st.DrawFn) -> BlockWarmStartRecord:
    n = draw(st.integers(0, 5))
    betas = [draw(_vec) for _ in range(n)]
    sets = [
        draw(st.none() | st.lists(st.integers(0, 2**62), max_size=4).map(np.array))
        for _ in range(n)
    ]
    inner = draw(
        st.none()
        | st.builds(
            InnerSummary,
            _finite,
            _finite,
            st.integers(0, 9),
            st.booleans(),
            _finite,
            _finite,
            st.none() | st.floats(1e-12, 1.0),
            st.none() | _vec,
            st.none() | _vec,
        )  # fmt: skip
    )
    return BlockWarmStartRecord(
        key=draw(st.text(min_size=1, max_size=8)),
        n_rows=draw(st.integers(0, 10**6)),
        block_names=tuple(f"b{i}" for i in range(n)),
        block_dims=tuple(b.size for b in betas),
        rho=draw(_vec),
        block_beta=tuple(betas),
        active_sets=tuple(None if s is None else s.astype(np.int64) for s in sets),
        inner=inner,
        created_unix_secs=1,
        updated_unix_secs=2,
    )


def _through_codec(rec: Any, keyspace: str) -> Any:
    eid = "0" * 16 + "-00000000-00000000"
    enc = codec.encode_entry(
        record=rec, keyspace=keyspace, key="k", entry_id=eid, producer="p", created=1,
        objective=None, iteration=None, kind="checkpoint", schema="s",
    )  # fmt: skip
    marker = codec.parse_marker(enc.marker, keyspace=keyspace, entry_id=eid)
    rel = codec.marker_object_paths(marker)
    assert len(rel) <= 6  # values, offsets (+ ints): metadata + chunk each
    blobs = {p: enc.payload[p] for p in rel}
    arrays = codec.decode_arrays(marker, blobs)
    parts = rec.to_parts().arrays
    assert set(arrays) == set(parts)
    for name, part in parts.items():
        assert arrays[name].dtype == part.data.dtype and arrays[name].shape == part.data.shape
        assert marker.attrs["parts"][name]["dims"] == list(part.dims)
    return codec.decode_record(marker, arrays, lambda n: type(rec))


@settings(max_examples=60, deadline=None)
@given(rec=_block_records())
def test_block_records_round_trip_through_the_packed_codec(rec: BlockWarmStartRecord) -> None:
    assert _through_codec(rec, "block") == rec


@settings(max_examples=30, deadline=None)
@given(
    rho=_vec,
    beta=_vec,
    side=st.integers(0, 3),
    cost=_finite,
    data=st.data(),
)
def test_payloads_with_a_2d_hessian_round_trip(
    rho: np.ndarray, beta: np.ndarray, side: int, cost: float, data: st.DataObject
) -> None:
    h = np.array(data.draw(st.lists(_finite, min_size=side * side, max_size=side * side)))
    p = IteratePayload(rho=rho, cost=cost, eval_id=3, beta=beta, hessian=h.reshape(side, side))
    assert _through_codec(p, "outer") == p
