"""HDF5 export/import: same hierarchy and attributes, byte-identical round trip, bad input."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from requires import require

try:  # the [hdf5] extra; missing -> skip, but fail under GAMSTORE_CI=1
    import h5netcdf
except ImportError:  # pragma: no cover - depends on the installed extras
    require(False, "h5netcdf (the hdf5 extra)", module_level=True)
    raise

import gamstore
from gamstore.store import codec
from gamstore.views.hdf5 import export_hdf5, import_hdf5
from gamstore.views.synthetic import populate, synthetic_fit


def _objects(store: Any) -> dict[str, bytes]:
    """Every entry object of the store (access touches and catalog excluded)."""
    be = store.backend
    return {o.path: be.get(o.path) for o in be.list("") if not o.path.startswith(".")}


@pytest.fixture
def source(tmp_path: Path) -> Any:
    store = gamstore.open_store(tmp_path / "src")
    populate(store, 3, seed=21)
    return store


def test_round_trip_is_byte_identical(source: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    report = export_hdf5(source, out)
    assert report.exported == 9 and report.skipped == ()
    target = gamstore.open_store(f"memory://h5-{uuid.uuid4().hex}")
    imported = import_hdf5(target, out)
    assert (imported.imported, imported.existing, imported.failed) == (9, 0, ())
    src_objects = _objects(source)
    dst_objects = {p: b for p, b in _objects(target).items() if p != "zarr.json"}
    assert dst_objects == {p: b for p, b in src_objects.items() if p != "zarr.json"}
    # identical entries: same ids, kinds, objectives and records
    for info in source.entries():
        a = source.read_entry(info)
        b = target.read_entry(info)
        assert b is not None
        assert (a.key, a.entry_id, a.kind, a.objective, a.iteration, a.created) == (
            b.key,
            b.entry_id,
            b.kind,
            b.objective,
            b.iteration,
            b.created,
        )
        assert a.record == b.record
    # a second import finds everything present and changes nothing
    again = import_hdf5(target, out)
    assert (again.imported, again.existing) == (0, 9)


def test_file_keeps_hierarchy_and_attrs(source: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    export_hdf5(source, out, keyspaces=["outer"])
    infos = sorted(source.entries("outer"), key=lambda i: i.created)
    with h5netcdf.File(out, "r") as h5:
        assert set(h5.groups) == {"outer"}
        assert json.loads(h5.attrs["gamstore_export"])["format"] == "gamstore-hdf5"
        group = h5[infos[0].path]
        marker = json.loads(group.attrs["gamstore"])
        assert marker == source.read_marker(infos[0])
        # the stored (packed) arrays, split at offsets as the marker's parts say
        parts = codec.group_parts(group)
        np.testing.assert_array_equal(parts["beta"], synthetic_fit(21, 0).beta_flat)
        assert marker["parts"]["beta"]["dims"] == ["coef"]
        assert json.loads(group["values"].attrs["dimension_names"]) == ["value"]
    # xarray reads the export as a plain netCDF-4 tree
    tree = xr.open_datatree(out, engine="h5netcdf")
    node = tree[infos[1].path]
    assert node["values"].dims == ("value",) and node["offsets"].dims == ("part_edge",)
    parts = codec.group_parts(node)
    np.testing.assert_array_equal(parts["beta"], synthetic_fit(21, 1).beta_flat)


def test_tampered_file_is_refused(source: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    export_hdf5(source, out, keyspaces=["block"])
    info = sorted(source.entries("block"), key=lambda i: i.created)[0]
    with h5netcdf.File(out, "a") as h5:
        var = h5[f"{info.path}/values"]  # the packed float64 arrays of the entry
        values = var[...]
        values[-1] += 1.0
        var[...] = values
    target = gamstore.open_store(tmp_path / "dst")
    report = import_hdf5(target, out)
    assert report.imported == 2
    assert [p for p, _ in report.failed] == [info.path]
    assert "digest" in report.failed[0][1]
    assert info.path not in {i.path for i in target.entries("block")}


def test_bad_files(tmp_path: Path) -> None:
    target = gamstore.open_store(tmp_path / "dst")
    with pytest.raises(FileNotFoundError):
        import_hdf5(target, tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        import_hdf5(target, junk)
    other = tmp_path / "other.h5"
    with h5netcdf.File(other, "w") as h5:
        h5.attrs["title"] = "someone else's file"
    with pytest.raises(ValueError, match="not a gamstore HDF5 export"):
        import_hdf5(target, other)
    with pytest.raises(PermissionError):
        import_hdf5(gamstore.open_store(tmp_path / "dst", read_only=True), other)
    with pytest.raises(ValueError, match="keyspace"):
        export_hdf5(target, tmp_path / "x.h5", keyspaces=["bogus"])


@pytest.mark.s3
def test_round_trip_s3(s3_store_url: str, s3_options: dict[str, Any], tmp_path: Path) -> None:
    src = gamstore.open_store(s3_store_url, storage_options=s3_options)
    populate(src, 2, seed=5, keyspaces=("artifact",))
    out = tmp_path / "s3.h5"
    assert export_hdf5(src, out).exported == 2
    dst = gamstore.open_store(tmp_path / "local")
    assert import_hdf5(dst, out).imported == 2
    a = gamstore.open_fits(src)
    b = gamstore.open_fits(dst)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    # and back into another prefix of the bucket: byte-identical objects
    back = gamstore.open_store(s3_store_url + "-copy", storage_options=s3_options)
    assert import_hdf5(back, out).imported == 2
    assert {p: b for p, b in _objects(back).items() if p != "zarr.json"} == {
        p: b for p, b in _objects(src).items() if p != "zarr.json"
    }


# ------------------------------------------------------------------ cost per entry
def _fixed_store(root: Path, n: int) -> Any:
    """A store of ``n`` block records of identical shape (so every entry costs the same)."""
    from gamstore.store.testing import block_record

    store = gamstore.open_store(root)
    for i in range(n):
        key = f"block/linear-{i}"
        assert store.save("block", key, block_record(key, seed=i, n_blocks=3, width=5))
    return store


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, counts: dict) -> None:
    original = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] = counts.get(name, 0) + 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


@pytest.mark.parametrize("direction", ["export", "import"])
def test_cost_per_entry_does_not_grow(
    direction: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linear in entries, counted (not timed): store requests and HDF5 object opens grow by
    the same amount from 4 to 8 entries as per 4 entries from 8 to 16, and nothing asks
    HDF5 for an object's path by address (``H5Iget_name`` searches the whole file:
    h5netcdf's dimension-scale lookups made export and import quadratic that way)."""
    import h5py

    costs: list[dict[str, int]] = []
    for n in (4, 8, 16):
        src = _fixed_store(tmp_path / f"src{n}", n)
        out = tmp_path / f"out{n}.h5"
        if direction == "import":
            export_hdf5(src, out)
        calls: dict[str, int] = {}
        with monkeypatch.context() as m:
            _count_calls(m, h5py.h5i, "get_name", calls)
            _count_calls(m, h5py.h5o, "open", calls)
            if direction == "export":
                before = src.backend.requests.copy()
                assert export_hdf5(src, out).exported == n
                requests = src.backend.requests - before
            else:
                dst = gamstore.open_store(tmp_path / f"dst{n}")
                before = dst.backend.requests.copy()
                assert import_hdf5(dst, out).imported == n
                requests = dst.backend.requests - before
        assert calls.get("get_name", 0) == 0, "an HDF5 path lookup by address (quadratic)"
        if direction == "import":
            assert requests["list"] == 0  # an import never lists the target store
        costs.append({**{f"store {k}": v for k, v in requests.items()}, **calls})
    c4, c8, c16 = costs
    for what in set(c4) | set(c8) | set(c16):
        step_small = c8.get(what, 0) - c4.get(what, 0)
        step_large = c16.get(what, 0) - c8.get(what, 0)
        assert step_large == 2 * step_small, (what, c4, c8, c16)


# ------------------------------------------------------------------ hostile export files
def _cli(*args: str, timeout: float = 120) -> Any:
    """Run the gamstore CLI in a subprocess: a hang fails the test through the timeout."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(gamstore.__file__).parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "gamstore", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _tamper(out: Path, paths: list[str], tmp_path: Path) -> dict[str, str]:
    """Turn the listed entries of an export into hostile ones; return path -> expected reason.

    Each attack hits ``values``, the entry's packed float64 array (entry format 2)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    want: dict[str, str] = {}
    with h5py_file(out, "a") as h5:
        g = h5[paths[0]]  # a gzip dataset of 2e9 elements in a file of a few KB
        del g["values"]
        g.create_dataset("values", shape=(2_000_000_000,), dtype="f8", chunks=(1 << 20,), **GZIP)
        want[paths[0]] = "shape"
        g = h5[paths[1]]  # the same, with the marker agreeing: refused from the shape alone
        marker = json.loads(g.attrs["gamstore"])
        marker["arrays"]["values"]["shape"] = [2_000_000_000]
        g.attrs["gamstore"] = json.dumps(marker)
        del g["values"]
        g.create_dataset("values", shape=(2_000_000_000,), dtype="f8", chunks=(1 << 20,), **GZIP)
        want[paths[1]] = "out of range"
        h5[paths[2]].attrs["gamstore"] = "[" * 10_000 + "]" * 10_000
        want[paths[2]] = "nesting"
        g = h5[paths[3]]
        text = g.attrs["gamstore"]
        g.attrs["gamstore"] = text.replace('"nbytes":', '"nbytes":1' + "0" * 400 + ',"x":', 1)
        want[paths[3]] = "int64"
        g = h5[paths[4]]  # an external link to a FIFO: HDF5 would block opening it
        del g["values"]
        g["values"] = h5py_module().ExternalLink(str(fifo), "/x")
        want[paths[4]] = "link"
        g = h5[paths[5]]  # data stored in an external raw file (the FIFO)
        n = len(g["values"])
        del g["values"]
        g.create_dataset("values", shape=(n,), dtype="f8", external=[(str(fifo), 0, 8 * n)])
        want[paths[5]] = "outside the file"
        g = h5[paths[6]]
        del g["values"]
        g["values"] = h5py_module().SoftLink(f"/{paths[0]}/offsets")
        want[paths[6]] = "link"
    return want


GZIP = {"compression": "gzip"}


def h5py_module() -> Any:
    import h5py

    return h5py


def h5py_file(path: Path, mode: str) -> Any:
    return h5py_module().File(path, mode)


def test_cli_import_refuses_hostile_entries(tmp_path: Path) -> None:
    src = gamstore.open_store(tmp_path / "src")
    populate(src, 9, seed=4, keyspaces=("block",))
    out = tmp_path / "out.h5"
    assert export_hdf5(src, out).exported == 9
    paths = sorted(i.path for i in src.entries("block"))
    want = _tamper(out, paths[:7], tmp_path)
    assert out.stat().st_size < 1_000_000  # the 2e9-element datasets are not allocated
    dst = tmp_path / "dst"
    res = _cli("import", str(dst), "--from", str(out), "--no-progress")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "imported 2 entries" in res.stdout
    for path, reason in want.items():
        line = next(ln for ln in res.stdout.splitlines() if path in ln)
        assert reason in line, line
    assert "Traceback" not in res.stderr
    # nothing of a refused entry reached the target store
    kept = {i.path for i in gamstore.open_store(dst).entries()}
    assert kept == set(paths[7:])
    assert not any(p.startswith(tuple(want)) for p in os.listdir(dst / "block"))


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device", "directory", "not-hdf5"])
def test_cli_import_refuses_bad_sources(kind: str, tmp_path: Path, source: Any) -> None:
    src_file = tmp_path / "in.h5"
    if kind == "fifo":
        os.mkfifo(src_file)  # opening it for reading would block forever
    elif kind == "symlink":
        real = tmp_path / "real.h5"
        export_hdf5(source, real)
        src_file.symlink_to(real)
    elif kind == "device":
        src_file = Path("/dev/zero")
    elif kind == "directory":
        src_file.mkdir()
    else:
        src_file.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    dst = tmp_path / "dst"
    res = _cli("import", str(dst), "--from", str(src_file), "--no-progress", timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Error:" in res.stderr and "--from" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not dst.exists()  # a refused file creates no target store
