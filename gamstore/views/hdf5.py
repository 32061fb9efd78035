"""Export a store to one HDF5 file (through h5netcdf) and import it back, entry for entry.

The file keeps the store's hierarchy and attributes::

    /                                   attrs: gamstore_export = JSON {"format", "version", ...}
    /<keyspace>/<kk>/<key64>/<entry>    one group per entry; attrs: gamstore = the entry's
                                        commit-marker attributes as strict JSON text
        <array path>                    each stored array as a variable at the same path
                                        (``terms/0/raw_beta``), with its dimension names;
                                        attrs: dimension_names = JSON list

HDF5 has no nested attributes, so the marker travels as one JSON string (strict, canonical).
The marker holds the blake3 digest of every stored array chunk: export checks the arrays it
writes against it, and import rebuilds the exact Zarr objects of the entry, checks them
against it, commits them with the same entry id (marker last, create-only) and re-reads the
entry through the store. Export then import therefore gives byte-identical entries.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import blake3
import numpy as np

from gamstore import _json
from gamstore.views.rows import KEYSPACES, layout_for

__all__ = ["EXPORT_FORMAT", "ExportReport", "ImportReport", "export_hdf5", "import_hdf5"]

log = logging.getLogger("gamstore.views")

EXPORT_FORMAT = "gamstore-hdf5"
EXPORT_VERSION = 1
_ROOT_ATTR = "gamstore_export"


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


def _require_h5netcdf() -> Any:
    try:
        import h5netcdf
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "HDF5 export/import needs h5netcdf: pip install 'gamstore[hdf5]'"
        ) from exc
    return h5netcdf


def _chunk_digest(arr: np.ndarray) -> str:
    import crc32c

    raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return blake3.blake3(raw + struct.pack("<I", crc32c.crc32c(raw))).hexdigest()


def _check_against_marker(name: str, arr: np.ndarray, spec: Mapping[str, Any]) -> None:
    if list(arr.shape) != list(spec.get("shape", [])):
        raise ValueError(f"array {name!r}: shape {arr.shape} != marker {spec.get('shape')}")
    dtype = spec.get("dtype")
    if dtype not in ("float64", "int64") or arr.dtype != np.dtype(dtype):
        raise ValueError(f"array {name!r}: dtype {arr.dtype} != marker {dtype}")
    if arr.size and _chunk_digest(arr) != spec.get("digest"):
        raise ValueError(f"array {name!r}: values differ from the stored digest")


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


def _write_entry(h5: Any, path: str, marker: dict[str, Any], arrays: Mapping[str, Any]) -> None:
    group = h5.create_group(path)
    group.attrs["gamstore"] = _json.dumps(marker, root="marker")
    leaves_by_parent: dict[str, set[str]] = {}
    for name in arrays:
        parent, _, leaf = name.rpartition("/")
        leaves_by_parent.setdefault(parent, set()).add(leaf)
    for name in sorted(arrays):
        part = arrays[name]
        data = np.asarray(part.data)
        parent, _, leaf = name.rpartition("/")
        target = group
        for seg in parent.split("/") if parent else []:
            target = target.groups[seg] if seg in target.groups else target.create_group(seg)
        dims = tuple(part.dims)
        known = {k: int(v.size) for k, v in target.dimensions.items()}
        hdims = _hdf5_dims(known, leaf, dims, data.shape, leaves_by_parent[parent])
        for d, n in zip(hdims, data.shape, strict=True):
            if d not in target.dimensions:
                target.dimensions[d] = int(n)
        var = target.create_variable(leaf, hdims, data=data, dtype=data.dtype)
        var.attrs["dimension_names"] = json.dumps(list(dims))


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
    h5netcdf = _require_h5netcdf()
    spaces = [layout_for(ks).keyspace for ks in keyspaces]
    infos = [info for ks in spaces for info in sorted(store.entries(ks), key=lambda i: i.path)]
    if on_total is not None:
        on_total(len(infos))
    out = os.fspath(path)
    tmp = f"{out}.tmp.{os.getpid()}"
    exported = 0
    skipped: list[str] = []
    try:
        with h5netcdf.File(tmp, "w") as h5:
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
                    marker = store.read_marker(info)
                    entry = store.read_entry(info) if marker is not None else None
                    if marker is None or entry is None:
                        raise ValueError("unreadable or corrupt")
                    arrays = entry.record.to_parts().arrays
                    specs = marker.get("arrays", {})
                    if set(arrays) != set(specs):
                        raise ValueError("record arrays differ from the stored ones")
                    for name, part in arrays.items():
                        _check_against_marker(name, np.asarray(part.data), specs[name])
                    _write_entry(h5, info.path, marker, arrays)
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
def _iter_entry_groups(h5: Any) -> Iterable[tuple[str, Any]]:
    for ks in KEYSPACES:
        if ks not in h5.groups:
            continue
        for kk, g_kk in h5.groups[ks].groups.items():
            for folder, g_key in g_kk.groups.items():
                for entry_id, g_entry in g_key.groups.items():
                    yield f"{ks}/{kk}/{folder}/{entry_id}", g_entry


def _entry_objects(path: str, group: Any) -> tuple[dict[str, Any], dict[str, bytes], bytes]:
    """Rebuild (marker attrs, payload objects, marker bytes) of one exported entry."""
    import crc32c

    from gamstore.store import codec
    from gamstore.store.ids import parse_created
    from gamstore.store.layout import MARKER, key_folder, split_entry_path

    raw = group.attrs.get("gamstore")
    if not isinstance(raw, str):
        raise ValueError("group has no 'gamstore' attribute")
    attrs = _json.loads(raw.encode("utf-8"), root="marker")
    if not isinstance(attrs, dict):
        raise ValueError("marker attribute is not a JSON object")
    split = split_entry_path(path)
    if split is None:
        raise ValueError("not an entry path")
    ks, folder, entry_id = split
    key = attrs.get("key")
    if attrs.get("keyspace") != ks or attrs.get("entry_id") != entry_id or not isinstance(key, str):
        raise ValueError("marker keyspace/entry id/key disagree with the group path")
    if parse_created(entry_id) is None:
        raise ValueError("invalid entry id")
    if key_folder(ks, key) != folder:
        raise ValueError("key folder does not match the key string")
    specs = attrs.get("arrays")
    groups = attrs.get("groups")
    if not isinstance(specs, dict) or not isinstance(groups, list):
        raise ValueError("marker has no arrays/groups")
    payload: dict[str, bytes] = {}
    for name, spec in specs.items():
        if not isinstance(spec, dict) or not isinstance(name, str):
            raise ValueError(f"array {name!r}: malformed spec")
        try:
            var = group[name]
        except KeyError:
            raise ValueError(f"array {name!r}: missing from the file") from None
        dtype = spec.get("dtype")
        if dtype not in ("float64", "int64"):
            raise ValueError(f"array {name!r}: unsupported dtype {dtype!r}")
        arr = np.asarray(var[...]).astype(dtype, copy=False)
        dims = tuple(json.loads(var.attrs.get("dimension_names", "[]")))
        if list(dims) != list(spec.get("dims", [])):
            raise ValueError(f"array {name!r}: dimension names differ from the marker")
        _check_against_marker(name, arr, spec)
        payload[f"{name}/{MARKER}"] = codec.array_meta_bytes(dtype, tuple(arr.shape), dims)
        if arr.size:
            chunk = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
            key_name = ".".join(["0"] * arr.ndim)
            payload[f"{name}/{key_name}"] = chunk + struct.pack("<I", crc32c.crc32c(chunk))
    for g in groups:
        if not isinstance(g, str):
            raise ValueError("marker groups must be strings")
        payload[f"{g}/{MARKER}"] = codec.group_meta_bytes()
    marker_bytes = codec.group_meta_bytes({"gamstore": attrs})
    # the rebuilt marker must parse exactly like the original one
    codec.parse_marker(marker_bytes, keyspace=ks, entry_id=entry_id)
    return attrs, payload, marker_bytes


def _levels_match(keyspace: str, folder: str, key: object) -> bool:
    from gamstore.store.layout import key_folder

    try:
        return isinstance(key, str) and key_folder(keyspace, key) == folder
    except ValueError:
        return False


def import_hdf5(
    store: Any,
    path: str | os.PathLike[str],
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the entries of an HDF5 export into ``store`` (same ids, same bytes).

    Entries already present are left alone; each imported entry is re-read through the
    store and removed again if it does not verify.

    Parameters
    ----------
    store : Store
        A writable store.
    path : str or path-like
        A file written by :func:`export_hdf5`.
    progress, on_total : callable, optional
        Progress hooks (1 per entry; total entries in the file).

    Raises
    ------
    ValueError
        If the file is not a gamstore HDF5 export (or not HDF5 at all).
    FileNotFoundError
        If the file does not exist.
    """
    h5netcdf = _require_h5netcdf()
    from gamstore.store import EntryInfo
    from gamstore.store.layout import MARKER

    if store.read_only:
        from gamstore.store import ReadOnlyStoreError

        raise ReadOnlyStoreError(f"store {store.url} is read-only")
    src = os.fspath(path)
    if not os.path.isfile(src):
        raise FileNotFoundError(f"path: no such file {src!r}")
    try:
        h5 = h5netcdf.File(src, "r")
    except OSError as exc:
        raise ValueError(f"path: {src!r} is not an HDF5 file ({exc})") from None
    imported = existing = 0
    failed: list[tuple[str, str]] = []
    backend = store.backend
    with h5:
        header = h5.attrs.get(_ROOT_ATTR)
        try:
            meta = _json.loads(str(header).encode("utf-8"), root="export")
            ok = meta.get("format") == EXPORT_FORMAT and meta.get("version") == EXPORT_VERSION
        except (ValueError, AttributeError):
            ok = False
        if header is None or not ok:
            raise ValueError(f"path: {src!r} is not a gamstore HDF5 export")
        groups = list(_iter_entry_groups(h5))
        if on_total is not None:
            on_total(len(groups))
        for entry_path, group in groups:
            try:
                attrs, payload, marker = _entry_objects(entry_path, group)
            except (ValueError, TypeError) as exc:
                failed.append((entry_path, str(exc)))
                if progress is not None:
                    progress(1)
                continue
            if backend.get(f"{entry_path}/{MARKER}") is not None:
                existing += 1
            else:
                backend.put_many({f"{entry_path}/{rel}": data for rel, data in payload.items()})
                ks, _, folder, _ = entry_path.split("/")
                if _levels_match(ks, folder, attrs.get("key")):
                    store.ensure_levels(ks, attrs["key"])
                if not backend.put_if_absent(f"{entry_path}/{MARKER}", marker):
                    existing += 1  # a concurrent import committed it first
                else:
                    ks, _, folder, entry_id = entry_path.split("/")
                    info = EntryInfo(
                        keyspace=ks,
                        folder=folder,
                        entry_id=entry_id,
                        created=int(attrs["created"]),
                        nbytes=len(marker) + sum(len(b) for b in payload.values()),
                        last_access=None,
                        path=entry_path,
                    )
                    if store.read_entry(info) is None:
                        store.delete_entry(info)
                        failed.append((entry_path, "did not verify in the target store"))
                    else:
                        imported += 1
            if progress is not None:
                progress(1)
    return ImportReport(imported=imported, existing=existing, failed=tuple(failed))
