"""Export a store to one HDF5 (netCDF-4) file and import it back, entry for entry.

The file keeps the store's hierarchy and attributes::

    /                                   attrs: gamstore_export = JSON {"format", "version", ...}
    /<entry path>                       one group per entry, at its path in the store
                                        (``<keyspace>/<kk>/<key64>.<entry>``; from a layout-1
                                        store ``<keyspace>/<kk>/<key64>/<entry>``); attrs:
                                        gamstore = the entry's commit-marker attributes as
                                        strict JSON text
        <array path>                    each stored array as a variable at the same path
                                        (``terms/0/raw_beta``), with its dimension names;
                                        attrs: dimension_names = JSON list

HDF5 has no nested attributes, so the marker travels as one JSON string (strict, canonical).
The marker holds the blake3 digest of every stored array chunk: export checks the arrays it
writes against it (``Store.export_entry``), and import hands each entry to
``Store.import_entry``, which checks the arrays against it, rebuilds the exact Zarr objects,
commits them with the same entry id (marker last, create-only) and re-reads the entry. Export then import therefore gives byte-identical entries.

The file is written and read with h5py directly, in the netCDF-4 data model (dimension
scales with ``_Netcdf4Dimid``), so ``xarray.open_datatree(path, engine="h5netcdf")`` reads
it. h5netcdf itself is not used on this path: it resolves every dimension scale by asking
HDF5 for the scale's path (``H5Iget_name`` on a dereferenced object, which searches the whole
file), which made export and import quadratic in the number of entries. Here every HDF5
operation touches one entry's objects only, so both directions are linear.

An export file is untrusted input: import refuses a source that is a symlink or not a
regular file, follows no soft or external HDF5 link, reads no dataset stored outside the file
(external or virtual storage), checks every dataset's shape, dtype and chunk shape against
the entry's marker and the per-entry cap before reading it, and parses the marker with the
strict, size- and depth-limited JSON reader. A refused entry writes nothing to the store.
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gamstore import _json
from gamstore.store import KEYSPACES, MAX_ENTRY_BYTES, ReadOnlyStoreError, entry_path_parts
from gamstore.store.portable import check_import_attrs, spec_shape
from gamstore.views.rows import layout_for

__all__ = [
    "EXPORT_FORMAT",
    "ExportReport",
    "ImportReport",
    "check_export_file",
    "export_hdf5",
    "import_hdf5",
]

log = logging.getLogger("gamstore.views")

EXPORT_FORMAT = "gamstore-hdf5"
EXPORT_VERSION = 1
_ROOT_ATTR = "gamstore_export"
#: Largest accepted text attribute (the marker JSON, the export header), in bytes.
_MAX_ATTR_BYTES = 16 * 1024 * 1024
#: Largest accepted ``dimension_names`` attribute, in bytes.
_MAX_DIMS_BYTES = 4096
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# netCDF-4's marker for a dimension that has no coordinate variable of its own
_PHONY_NAME = "This is a netCDF dimension but not a netCDF variable.%10d"


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_hdf5` wrote.

    Attributes
    ----------
    exported : int
        Entries written.
    skipped : tuple of str
        Paths of listed entries that could not be read or verified (not written).
    """

    exported: int
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_hdf5` did.

    Attributes
    ----------
    imported : int
        Entries committed into the store.
    existing : int
        Entries already present (same path), left untouched.
    failed : tuple of (str, str)
        ``(entry path, reason)`` of entries refused.
    """

    imported: int = 0
    existing: int = 0
    failed: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _require_h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("HDF5 export/import needs h5py: pip install 'gamstore[hdf5]'") from exc
    return h5py


# ------------------------------------------------------------------ export
def _hdf5_dims(
    group_dims: Mapping[str, int],
    leaf: str,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    sibling_leaves: set[str],
) -> tuple[str, ...]:
    # netCDF-4: a dimension is shared by a group's variables and a variable named like a
    # dimension is its coordinate; rename a dimension only when it would clash
    out = []
    for d, n in zip(dims, shape, strict=True):
        clash = (d in group_dims and group_dims[d] != n) or (
            d in sibling_leaves and not (d == leaf and len(dims) == 1)
        )
        out.append(f"{leaf}__{d}" if clash else d)
    return tuple(out)


class _NetCDF4Writer:
    """Writes entries as netCDF-4 groups with h5py's low-level API (file-wide dim ids).

    Every call touches the objects of one entry only: cost per entry is constant however
    many entries the file already holds. The low-level calls skip the high-level API's
    per-call type and space construction (3x faster on small arrays).
    """

    def __init__(self, h5py: Any, h5: Any) -> None:
        self._h5py = h5py
        self._fid = h5.id
        self._next_dimid = 0
        h5t, h5s, h5p = h5py.h5t, h5py.h5s, h5py.h5p
        self._dcpl = h5p.create(h5p.DATASET_CREATE)
        self._dcpl.set_obj_track_times(False)  # same bytes for the same entries
        self._types = {"f": h5t.IEEE_F64LE, "i": h5t.STD_I64LE}
        self._str_type = h5t.py_create(h5py.string_dtype(), logical=True)
        self._scalar = h5s.create(h5s.SCALAR)
        self._str_dtype = h5py.string_dtype()
        h5.attrs["_NCProperties"] = np.bytes_(
            f"version=2,gamstore=1,hdf5={h5py.version.hdf5_version},h5py={h5py.version.version}"
        )

    def _dimid(self) -> np.ndarray:
        d = self._next_dimid
        self._next_dimid += 1
        return np.array(d, dtype="<i4")

    def _attr(self, oid: Any, name: bytes, value: np.ndarray) -> None:
        h5t, h5s, h5a = self._h5py.h5t, self._h5py.h5s, self._h5py.h5a
        if value.dtype == self._str_dtype:
            tid, space = self._str_type, self._scalar
        else:
            tid = h5t.STD_I32LE
            space = self._scalar if value.ndim == 0 else h5s.create_simple(value.shape)
        h5a.create(oid, name, tid, space).write(value)

    def _text(self, oid: Any, name: bytes, text: str) -> None:
        self._attr(oid, name, np.array(text, dtype=self._str_dtype))

    def _dataset(self, gid: Any, name: str, data: np.ndarray, dtype: Any) -> Any:
        h5s, h5d = self._h5py.h5s, self._h5py.h5d
        dsid = h5d.create(gid, name.encode(), dtype, h5s.create_simple(data.shape), dcpl=self._dcpl)
        if data.size:
            dsid.write(h5s.ALL, h5s.ALL, data)
        return dsid

    def _group(self, path: str) -> Any:
        h5g, h5p = self._h5py.h5g, self._h5py.h5p
        lcpl = h5p.create(h5p.LINK_CREATE)
        lcpl.set_create_intermediate_group(True)
        return h5g.create(self._fid, path.encode(), lcpl=lcpl)

    def write_entry(self, path: str, marker: Mapping[str, Any], arrays: Mapping[str, Any]) -> None:
        h5ds = self._h5py.h5ds
        gid = self._group(path)
        # the marker was parsed by the strict reader (plain JSON): the C encoder gives the
        # canonical text _json.dumps would, without its per-value Python walk
        self._text(gid, b"gamstore", _CANONICAL.encode(marker))
        leaves_by_parent: dict[str, set[str]] = {}
        for name in arrays:
            parent, _, leaf = name.rpartition("/")
            leaves_by_parent.setdefault(parent, set()).add(leaf)
        groups: dict[str, Any] = {"": gid}
        # per group: dimension name -> (size, scale dataset, dim id)
        scales: dict[str, dict[str, tuple[int, Any, np.ndarray]]] = {}
        for name in sorted(arrays):
            part = arrays[name]
            data = np.ascontiguousarray(part.data)
            parent, _, leaf = name.rpartition("/")
            target = self._subgroup(groups, parent)
            own = scales.setdefault(parent, {})
            dims = tuple(part.dims)
            known = {d: n for d, (n, _, _) in own.items()}
            hdims = _hdf5_dims(known, leaf, dims, data.shape, leaves_by_parent[parent])
            var = self._dataset(target, leaf, data, self._types[data.dtype.kind])
            if data.ndim == 1 and hdims[0] == leaf:
                # a coordinate variable: the variable itself is the dimension scale
                dimid = self._dimid()
                h5ds.set_scale(var, leaf.encode())
                self._attr(var, b"_Netcdf4Dimid", dimid)
                own[leaf] = (int(data.shape[0]), var, dimid)
            else:
                for axis, (d, n) in enumerate(zip(hdims, data.shape, strict=True)):
                    if d not in own:
                        dimid = self._dimid()
                        scale = self._scale(target, d, int(n))
                        self._attr(scale, b"_Netcdf4Dimid", dimid)
                        own[d] = (int(n), scale, dimid)
                    _, scale, dimid = own[d]
                    h5ds.attach_scale(var, scale, axis)
            self._text(var, b"dimension_names", json.dumps(list(dims)))

    def _subgroup(self, groups: dict[str, Any], path: str) -> Any:
        # each level is created once per entry (``groups`` caches the open ids)
        gid = groups.get(path)
        if gid is None:
            up, _, seg = path.rpartition("/")
            gid = groups[path] = self._h5py.h5g.create(self._subgroup(groups, up), seg.encode())
        return gid

    def _scale(self, gid: Any, name: str, n: int) -> Any:
        h5s, h5d, h5t = self._h5py.h5s, self._h5py.h5d, self._h5py.h5t
        sid = h5d.create(
            gid, name.encode(), h5t.IEEE_F32BE, h5s.create_simple((n,)), dcpl=self._dcpl
        )
        self._h5py.h5ds.set_scale(sid, (_PHONY_NAME % n).encode())
        return sid


def export_hdf5(
    store: Any,
    path: str | os.PathLike[str],
    *,
    keyspaces: Iterable[str] = KEYSPACES,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write every committed, verified entry of ``store`` to the HDF5 file ``path``.

    Parameters
    ----------
    store : Store
    path : str or path-like
        Output file; replaced atomically (written to a temporary name, then renamed).
    keyspaces : iterable of str
        Keyspaces to export (default: all).
    progress, on_total : callable, optional
        Progress hooks (1 per entry; total entries listed).

    Returns
    -------
    ExportReport
    """
    h5py = _require_h5py()
    spaces = [layout_for(ks).keyspace for ks in keyspaces]
    infos = [info for ks in spaces for info in sorted(store.entries(ks), key=lambda i: i.path)]
    if on_total is not None:
        on_total(len(infos))
    out = os.fspath(path)
    tmp = f"{out}.tmp.{os.getpid()}"
    exported = 0
    skipped: list[str] = []
    try:
        with h5py.File(tmp, "w") as h5:
            writer = _NetCDF4Writer(h5py, h5)
            h5.attrs[_ROOT_ATTR] = _json.dumps(
                {
                    "format": EXPORT_FORMAT,
                    "version": EXPORT_VERSION,
                    "created": time.time_ns(),
                    "keyspaces": spaces,
                },
                root="export",
            )
            h5.attrs["title"] = "gamstore export"
            for info in infos:
                try:
                    exported_entry = store.export_entry(info)
                    writer.write_entry(info.path, exported_entry.attrs, exported_entry.arrays)
                    exported += 1
                except ValueError as exc:
                    log.warning("gamstore: export skipped entry %s (%s)", info.path, exc)
                    skipped.append(info.path)
                if progress is not None:
                    progress(1)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ExportReport(exported=exported, skipped=tuple(skipped))


# ------------------------------------------------------------------ import
class _Refused(ValueError):
    """One entry (or the whole file) of an export is refused; the message says why."""


class _Reader:
    """Read-side checks on an open export, through h5py's low-level API.

    Every object is reached by a hard link from its parent (soft and external links are
    refused unresolved: an external link could make HDF5 open another file, a FIFO or a
    device), and nothing is read before its size is known to be within the caps.
    """

    def __init__(self, h5py: Any) -> None:
        self._h5py = h5py

    def child(self, gid: Any, name: str, kind: str) -> Any:
        """The object ``name`` of group ``gid``: a hard link to a ``kind`` ("group"/"dataset")."""
        h5py = self._h5py
        bname = name.encode("utf-8")
        try:
            info = gid.links.get_info(bname)
        except KeyError:
            raise _Refused(f"{name!r}: missing from the file") from None
        if info.type != h5py.h5l.TYPE_HARD:
            raise _Refused(f"{name!r}: is a soft or external link, expected a plain HDF5 object")
        oid = h5py.h5o.open(gid, bname)
        want = h5py.h5g.GroupID if kind == "group" else h5py.h5d.DatasetID
        if not isinstance(oid, want):
            raise _Refused(f"{name!r}: expected an HDF5 {kind}")
        return oid

    def names(self, gid: Any, where: str) -> list[str]:
        """Link names of group ``gid`` (UTF-8, else refused)."""
        try:
            return [n.decode("utf-8") for n in gid]
        except UnicodeDecodeError:
            raise _Refused(f"{where}: a link name is not UTF-8") from None

    def text_attr(self, oid: Any, name: str, max_bytes: int) -> str | None:
        """A scalar string attribute of at most ``max_bytes`` bytes, or None if absent."""
        h5py = self._h5py
        bname = name.encode("utf-8")
        if not h5py.h5a.exists(oid, bname):
            return None
        aid = h5py.h5a.open(oid, bname)
        if aid.shape != ():
            raise _Refused(f"attribute {name!r} is not a scalar")
        tid = aid.get_type()
        if not isinstance(tid, h5py.h5t.TypeStringID):
            raise _Refused(f"attribute {name!r} is not a string")
        if not tid.is_variable_str() and tid.get_size() > max_bytes:
            raise _Refused(f"attribute {name!r} larger than {max_bytes} bytes")
        buf = np.zeros((), dtype=aid.dtype)  # zeros: h5py frees old objects when reading
        aid.read(buf)
        value = buf[()]
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise _Refused(f"attribute {name!r} is not UTF-8") from None
        if not isinstance(value, str) or len(value) > max_bytes:
            raise _Refused(f"attribute {name!r} is not a string of at most {max_bytes} bytes")
        return value

    def array(self, gid: Any, name: str, spec: Mapping[str, Any]) -> np.ndarray:
        """Read array ``name`` of an entry after checking it against its marker spec."""
        h5py = self._h5py
        segs = name.split("/")
        for seg in segs[:-1]:
            gid = self.child(gid, seg, "group")
        dsid = self.child(gid, segs[-1], "dataset")
        shape = spec_shape(name, spec)
        dtype = spec.get("dtype")
        if dtype not in ("float64", "int64"):
            raise _Refused(f"array {name!r}: unsupported dtype {dtype!r:.40}")
        # shape, type and storage are checked before a single element is read
        if tuple(dsid.shape) != shape:
            raise _Refused(f"array {name!r}: dataset shape {dsid.shape} != marker {list(shape)}")
        tid = dsid.get_type()
        cls = h5py.h5t.FLOAT if dtype == "float64" else h5py.h5t.INTEGER
        if tid.get_class() != cls or tid.get_size() != 8:
            raise _Refused(f"array {name!r}: dataset type is not {dtype}")
        if cls == h5py.h5t.INTEGER and tid.get_sign() != h5py.h5t.SGN_2:
            raise _Refused(f"array {name!r}: dataset type is not {dtype}")
        dcpl = dsid.get_create_plist()
        layout = dcpl.get_layout()
        if layout not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
            raise _Refused(f"array {name!r}: virtual datasets are not read")
        if dcpl.get_external_count():
            raise _Refused(f"array {name!r}: data stored outside the file is not read")
        if layout == h5py.h5d.CHUNKED and math.prod(dcpl.get_chunk()) > MAX_ENTRY_BYTES // 8:
            raise _Refused(f"array {name!r}: chunk shape exceeds the entry cap")
        arr = np.empty(shape, dtype=np.dtype(dtype))
        if arr.size:
            dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, arr)
        dims = spec.get("dims")
        text = self.text_attr(dsid, "dimension_names", _MAX_DIMS_BYTES)
        # export writes exactly json.dumps(dims): compare the text, no parsing needed
        if not isinstance(dims, list) or text != json.dumps(dims):
            raise _Refused(f"array {name!r}: dimension names differ from the marker")
        return arr


def _entry_arrays(
    reader: _Reader, path: str, gid: Any
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(marker attrs, arrays) of one exported entry; the marker is checked before any read."""
    raw = reader.text_attr(gid, "gamstore", _MAX_ATTR_BYTES)
    if raw is None:
        raise _Refused("group has no 'gamstore' attribute")
    try:
        attrs = _json.loads(raw, root="marker", max_bytes=_MAX_ATTR_BYTES)
        # path, ids, key folder, numbers and the size caps, before a single array is read
        check_import_attrs(attrs, path)
    except ValueError as exc:
        raise _Refused(str(exc)) from None
    arrays: dict[str, np.ndarray] = {}
    for name, spec in attrs["arrays"].items():
        try:
            arrays[name] = reader.array(gid, name, spec)
        except (KeyError, OSError, RuntimeError, TypeError) as exc:
            raise _Refused(f"array {name!r:.80}: unreadable ({exc})") from None
    return attrs, arrays


def _open_source(h5py: Any, path: str | os.PathLike[str]) -> Any:
    """Open an export file read-only: a regular file, not a symlink, never blocking.

    Raises FileNotFoundError for a missing file and ValueError for anything else refused.
    """
    src = os.fspath(path)
    try:
        st = os.lstat(src)
    except FileNotFoundError:
        raise FileNotFoundError(f"path: no such file {src!r}") from None
    if stat.S_ISLNK(st.st_mode):
        raise ValueError(f"path: {src!r} is a symlink; give the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"path: {src!r} is not a regular file")
    try:
        h5 = h5py.File(src, "r", locking=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"path: {src!r} is not an HDF5 file ({exc})") from None
    try:
        # the file opened must be the one checked (not swapped for another since)
        handle = h5.id.get_vfd_handle()
        if isinstance(handle, int):
            opened = os.fstat(handle)
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                raise _Refused(f"path: {src!r} changed while it was opened")
        header = _Reader(h5py).text_attr(h5.id, _ROOT_ATTR, 4096)
        meta = _json.loads(header, root="export", max_bytes=4096) if header is not None else None
    except _Refused as exc:
        h5.close()
        if "changed while" in str(exc):
            raise
        meta = None
    except (ValueError, OSError, KeyError, RuntimeError):
        h5.close()
        meta = None
    if (
        isinstance(meta, dict)
        and meta.get("format") == EXPORT_FORMAT
        and meta.get("version") == EXPORT_VERSION
    ):
        return h5
    h5.close()
    raise ValueError(f"path: {src!r} is not a gamstore HDF5 export")


def check_export_file(path: str | os.PathLike[str]) -> None:
    """Check that ``path`` is a readable gamstore HDF5 export, without importing anything.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is a symlink, not a regular file, not HDF5 or not a gamstore export.
    """
    _open_source(_require_h5py(), path).close()


def _iter_entry_groups(reader: _Reader, fid: Any) -> Iterator[tuple[str, Any, str | None]]:
    """(entry path, parent group id, entry name) of every entry; only hard links are followed.

    A level that cannot be walked yields ``(its path, the refusal, None)`` instead.
    """

    def walk(gid: Any, path: str, depth: int) -> Iterator[tuple[str, Any, str | None]]:
        try:
            names = reader.names(gid, path)
        except (_Refused, KeyError, OSError, RuntimeError) as exc:
            yield path, exc if isinstance(exc, _Refused) else _Refused(f"{path}: {exc}"), None
            return
        for name in names:
            # an entry group: <ks>/<kk>/<key64>.<entry id> (layout 2) at depth 1, or
            # <ks>/<kk>/<key64>/<entry id> (layout 1) at depth 2
            if depth == 2 or (depth == 1 and entry_path_parts(f"{path}/{name}") is not None):
                yield f"{path}/{name}", gid, name
                continue
            try:
                child = reader.child(gid, name, "group")
            except (_Refused, KeyError, OSError, RuntimeError) as exc:
                err = exc if isinstance(exc, _Refused) else _Refused(f"{name!r}: {exc}")
                yield f"{path}/{name}", err, None
                continue
            yield from walk(child, f"{path}/{name}", depth + 1)

    for ks in KEYSPACES:
        if not fid.links.exists(ks.encode()):
            continue
        try:
            top = reader.child(fid, ks, "group")
        except (_Refused, KeyError, OSError, RuntimeError) as exc:
            yield ks, exc if isinstance(exc, _Refused) else _Refused(f"{ks}: {exc}"), None
            continue
        yield from walk(top, ks, 0)


def import_hdf5(
    store: Any,
    path: str | os.PathLike[str],
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the entries of an HDF5 export into ``store`` (same ids, same bytes).

    Entries already present are left alone; each imported entry is re-read through the
    store and removed again if it does not verify. A refused entry writes nothing.

    Parameters
    ----------
    store : Store
        A writable store.
    path : str or path-like
        A file written by :func:`export_hdf5` (a regular file, not a symlink).
    progress, on_total : callable, optional
        Progress hooks (1 per entry; total entries in the file).

    Raises
    ------
    ValueError
        If the file is not a gamstore HDF5 export (or not HDF5 at all, or not a regular
        file).
    FileNotFoundError
        If the file does not exist.
    """
    h5py = _require_h5py()
    if store.read_only:
        raise ReadOnlyStoreError(f"store {store.url} is read-only")
    h5 = _open_source(h5py, path)
    reader = _Reader(h5py)
    imported = existing = 0
    failed: list[tuple[str, str]] = []
    with h5:
        if on_total is not None:
            on_total(sum(1 for _ in _iter_entry_groups(reader, h5.id)))
        for entry_path, parent, entry_id in _iter_entry_groups(reader, h5.id):
            try:
                if entry_id is None:
                    raise parent
                gid = reader.child(parent, entry_id, "group")
                attrs, arrays = _entry_arrays(reader, entry_path, gid)
            except (ValueError, ArithmeticError, TypeError, KeyError, OSError, RuntimeError) as exc:
                # only the file was read so far: a bad entry is refused, the store untouched
                failed.append((entry_path, str(exc)))
            else:
                result = store.import_entry(attrs, arrays, path=entry_path)
                if result.status == "imported":
                    imported += 1
                elif result.status == "exists":
                    existing += 1
                else:
                    failed.append((entry_path, result.reason))
            if progress is not None:
                progress(1)
    return ImportReport(imported=imported, existing=existing, failed=tuple(failed))
