"""One owner of the Zarr v3 format gamstore writes (issue 16: "two hand-written Zarr v3
writers"): the entry codec and the catalog build their documents, chunk keys and chunk
codecs with ``gamstore.store.zarr_v3``, and the bytes are the ones written before it existed
(digests below were taken from the two separate writers: entry format 2 at commit 646177d,
the catalog at 4dccc3a; entry format 1 was checked the same way at 4dccc3a)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import blake3
import numpy as np
import pytest
import xarray as xr

from gamstore.records import BlockWarmStartRecord, IteratePayload
from gamstore.store import codec, zarr_v3
from gamstore.views.zarrio import decode_group, encode_groups

PKG = Path(__file__).resolve().parents[1] / "gamstore"


def _digest(objects: dict[str, bytes]) -> str:
    h = blake3.blake3()
    for path in sorted(objects):
        h.update(path.encode())
        h.update(b"\0")
        h.update(objects[path])
        h.update(b"\0")
    return h.hexdigest()


def _before_record_digest(objects: dict[str, bytes]) -> dict[str, bytes]:
    """The objects as written before the marker gained ``record_digest`` (the only change).

    Checks the digest first: it is BLAKE3 of the marker's record fields and part table.
    """
    doc = json.loads(objects["zarr.json"])
    attrs = doc["attributes"]["gamstore"]
    digest = attrs.pop("record_digest")
    assert digest == codec.record_digest(attrs["record"], attrs["parts"])
    marker = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {**objects, "zarr.json": marker.encode()}


def _entry(record: object, keyspace: str, entry_id: str, **kw: object) -> dict[str, bytes]:
    enc = codec.encode_entry(
        record=record,
        keyspace=keyspace,
        key="k",
        entry_id=entry_id,
        producer="p",
        created=1776000000000000000,
        schema="gamstore-schema-1",
        **kw,  # type: ignore[arg-type]
    )
    return {**enc.payload, "zarr.json": enc.marker}


def test_entry_bytes_unchanged() -> None:
    rec = IteratePayload(rho=np.array([0.5, -1.25, 3.0]), cost=2.5, eval_id=7)
    objs = _entry(
        rec,
        "outer",
        "18eab8e5bcaa3fb8-f828973e-e9c66971",
        objective=2.5,
        iteration=3,
        kind="final",
        provenance={"gamstore_version": "0.0.0"},
        layout=1,  # the bytes pinned before layout 2 (an entry of a layout-1 store)
    )
    old = _before_record_digest(objs)
    assert _digest(old) == "3eaf85700e9eb85d31b56f0abb58177516ed65d2bd4cd3105388aa92d7393873"
    # layout 2 (the default) changes the marker's "layout" field and nothing else
    new = _entry(
        rec,
        "outer",
        "18eab8e5bcaa3fb8-f828973e-e9c66971",
        objective=2.5,
        iteration=3,
        kind="final",
        provenance={"gamstore_version": "0.0.0"},
    )
    assert {k: v for k, v in new.items() if k != "zarr.json"} == {
        k: v for k, v in objs.items() if k != "zarr.json"
    }
    assert new["zarr.json"] == objs["zarr.json"].replace(b'"layout":1', b'"layout":2')
    assert objs["zarr.json"].count(b'"layout":1') == 1
    block = BlockWarmStartRecord(
        key="k",
        n_rows=12,
        block_names=("(parametric)", "s(x0)"),
        block_dims=(2, 3),
        rho=np.array([0.125, -4.0]),
        block_beta=(np.array([1.0, -0.5]), np.array([0.0, 2.25, -3.5])),
        created_unix_secs=1700000000,
        updated_unix_secs=1700000001,
    )
    objs = _entry(
        block,
        "block",
        "18eab8e5bcaa3fb8-f828973e-e9c66972",
        objective=None,
        iteration=None,
        kind="checkpoint",
        layout=1,
    )
    assert sorted(objs) == [  # entry format 2: the arrays packed into values + offsets
        "offsets/0",
        "offsets/zarr.json",
        "values/0",
        "values/zarr.json",
        "zarr.json",
    ]
    old = _before_record_digest(objs)
    assert _digest(old) == "73d48a10b6b8a930c93c1c04b172cb06483c0027f73c8055492508d1cbfd5cd6"
    group = codec.group_meta_bytes({"gamstore": {"level": "key"}})
    assert blake3.blake3(group).hexdigest() == (
        "6676c3311cd7af26287af4907904c948126301a64acac2aba347c8ddb3f69aeb"
    )
    placeholder = codec.placeholder_meta_bytes({"gamstore": {"level": "access"}}, "access")
    assert blake3.blake3(placeholder).hexdigest() == (
        "fd94e498bdd97493bef102f8f8ec6982b6025780727ffa120a34aaf946579f54"
    )


def _catalog_dataset() -> xr.Dataset:
    ds = xr.Dataset(
        {
            "objective": ("fit", np.array([1.5, np.nan])),
            "n_rows": ("fit", np.array([10, -1], dtype=np.int64)),
            "converged": ("fit", np.array([True, False])),
            "rho": (("fit", "penalty"), np.array([[0.25, -2.0], [1.0, np.nan]])),
            "empty": (("fit", "coef"), np.zeros((2, 0))),
        },
        coords={
            "fit": ("fit", np.array(["a", "b"], dtype=object)),
            "created": (
                "fit",
                np.array([1776000000000000000, 1776000000000000001], dtype="datetime64[ns]"),
            ),
            "family": ("fit", np.array(["poisson", "gaussian"], dtype=object)),
        },
        attrs={"title": "t", "gamstore": {"view_schema": 1}},
    )
    ds["objective"].attrs["long_name"] = "objective"
    return ds


def test_catalog_bytes_unchanged_and_read_back() -> None:
    ds = _catalog_dataset()
    objs = encode_groups({"artifact": ds}, {"gamstore_catalog": 1})
    assert _digest(objs) == "f2834feac93cf605c0b84af0b1038d7a63f5457fa7ef5f412cdde557c3d9ce97"
    back = decode_group(objs, "artifact")
    xr.testing.assert_identical(back, ds)


def test_format_helpers() -> None:
    assert [zarr_v3.chunk_key(n, "v2") for n in (0, 1, 2)] == ["0", "0", "0.0"]
    assert [zarr_v3.chunk_key(n, "default") for n in (0, 1, 2)] == ["c", "c/0", "c/0/0"]
    with pytest.raises(ValueError, match="encoding"):
        zarr_v3.chunk_key(1, "v3")
    meta = zarr_v3.array_metadata(
        "float64", (0, 3), ("a", "b"), codecs=zarr_v3.CRC32C_CODECS, key_encoding="v2",
        fill_value=0.0,
    )  # fmt: skip
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [1, 3]
    assert meta["codecs"] == [dict(c) for c in zarr_v3.CRC32C_CODECS]
    meta["chunk_key_encoding"]["configuration"]["separator"] = "x"  # a fresh document
    again = zarr_v3.array_metadata(
        "int64", (2,), ("a",), codecs=(), key_encoding="v2", fill_value=0
    )
    assert again["chunk_key_encoding"]["configuration"]["separator"] == "."
    values = np.array(["", "é", "abc"], dtype=object)
    raw = zarr_v3.vlen_utf8_encode(values)
    assert list(zarr_v3.vlen_utf8_decode(raw, 3)) == list(values)
    for bad, count in ((raw[:-1], 3), (raw + b"x", 3), (raw, 2)):
        with pytest.raises(zarr_v3.ZarrFormatError, match="vlen-utf8"):
            zarr_v3.vlen_utf8_decode(bad, count)
    blob = zarr_v3.gzip_chunk(b"\0" * 1000, 1)
    assert zarr_v3.gzip_chunk(b"\0" * 1000, 1) == blob  # deterministic (mtime 0)
    assert zarr_v3.gunzip_limited(blob, 1000) == b"\0" * 1000
    with pytest.raises(zarr_v3.ZarrFormatError, match="inflates past"):
        zarr_v3.gunzip_limited(blob, 999)


def test_plain_zarr_reads_both(tmp_path: Path) -> None:
    import zarr

    objs = encode_groups({"artifact": _catalog_dataset()}, {"gamstore_catalog": 1})
    rec = IteratePayload(rho=np.array([0.5, -1.25, 3.0]), cost=2.5, eval_id=7)
    entry = _entry(
        rec, "outer", "18eab8e5bcaa3fb8-f828973e-e9c66971", objective=2.5, iteration=3,
        kind="final",
    )  # fmt: skip
    for top, found in (("catalog", objs), ("entry", entry)):
        for rel, data in found.items():
            path = tmp_path / top / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    cat = zarr.open_group(str(tmp_path / "catalog"), mode="r", zarr_format=3)
    np.testing.assert_array_equal(cat["artifact/n_rows"][:], [10, -1])
    ent = zarr.open_group(str(tmp_path / "entry"), mode="r", zarr_format=3)
    values = ent["values"][:]  # entry format 2: every float array packed into values
    assert {0.5, -1.25, 3.0} <= set(values.tolist())


def test_no_other_zarr_v3_writer() -> None:
    """Outside zarr_v3.py nobody spells out a Zarr v3 document's codec or key encoding."""
    for path in PKG.rglob("*.py"):
        if path.name == "zarr_v3.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        consts = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        spelled = consts & {"chunk_key_encoding", "crc32c", "vlen-utf8", "consolidated_metadata"}
        # readers may look documents up by key; only writers build them
        if path.name == "zarrio.py":
            spelled -= {"consolidated_metadata"}
        assert not spelled, f"{path.relative_to(PKG)} spells {spelled}"
