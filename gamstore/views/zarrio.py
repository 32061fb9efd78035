"""Write and read a flat :class:`xarray.Dataset` as standard Zarr v3 objects, by hand.

The Zarr v3 documents, chunk keys and chunk codecs come from :mod:`gamstore.store.zarr_v3`
(the one owner of what gamstore writes as Zarr, shared with the entry codec); this module maps
Datasets to arrays and back. Used for the catalog, which is read on every ``open_fits``: going through zarr's and xarray's
high-level APIs costs ~5-10 ms per array in event-loop round trips, so a catalog of a few
dozen arrays would take most of a second to open. The objects written here are plain
Zarr v3 (one chunk per array, ``bytes`` + ``gzip`` codecs, ``vlen-utf8`` for text, inline
consolidated metadata) with xarray's conventions (``dimension_names``, a CF ``coordinates``
attribute, datetimes as int64 with CF ``units``), so ``zarr.open_group`` and
``xarray.open_zarr`` read them too; :func:`decode_groups` reads them back without either.

Supported variable dtypes: float64, int64, bool, datetime64[ns] and object arrays of str.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from gamstore import _json
from gamstore.store.zarr_v3 import (
    ZarrFormatError,
    array_metadata,
    catalog_codecs,
    chunk_key,
    group_metadata,
    gunzip_limited,
    gzip_chunk,
    vlen_utf8_decode,
    vlen_utf8_encode,
)

__all__ = ["encode_groups", "decode_group", "ZarrFormatError"]

MARKER = "zarr.json"
_TIME_UNITS = "nanoseconds since 1970-01-01"
_GZIP_LEVEL = 1
_FILL: dict[str, Any] = {"string": "", "bool": False, "float64": "NaN", "int64": 0}

#: Largest decoded variable of a catalog group (the catalog writer refuses views over 1 GiB).
MAX_VARIABLE_BYTES = 1 << 30


def _json_bytes(doc: Any) -> bytes:
    return _json.dumps_bytes(doc, root="zarr.json")


def _chunk_key(ndim: int) -> str:
    return chunk_key(ndim, "default")


def _array_meta(
    data_type: str, shape: tuple[int, ...], dims: tuple[str, ...], attrs: dict[str, Any]
) -> dict[str, Any]:
    return array_metadata(
        data_type,
        shape,
        dims,
        codecs=catalog_codecs(data_type, _GZIP_LEVEL),
        key_encoding="default",
        fill_value=_FILL[data_type],
        attributes=attrs,
    )


def _encode_variable(var: xr.Variable) -> tuple[str, bytes | None, dict[str, Any]]:
    """Return (data_type, raw chunk bytes before compression or None if empty, extra attrs)."""
    data = np.asarray(var.values)
    extra: dict[str, Any] = {}
    if data.dtype == object or data.dtype.kind in ("U", "T"):
        return "string", (vlen_utf8_encode(data) if data.size else None), extra
    if data.dtype.kind == "M":
        extra = {"units": _TIME_UNITS, "calendar": "proleptic_gregorian"}
        data = data.astype("datetime64[ns]").view("<i8")
        kind = "int64"
    elif data.dtype == np.bool_:
        kind = "bool"
    elif data.dtype.kind == "f":
        data = data.astype("<f8", copy=False)
        kind = "float64"
    elif data.dtype.kind in ("i", "u"):
        data = data.astype("<i8", copy=False)
        kind = "int64"
    else:
        raise TypeError(f"variable {var.dims}: unsupported dtype {data.dtype}")
    return kind, (np.ascontiguousarray(data).tobytes() if data.size else None), extra


def encode_groups(
    datasets: Mapping[str, xr.Dataset], root_attrs: Mapping[str, Any]
) -> dict[str, bytes]:
    """Encode each Dataset as a child group ``<name>`` of one root group.

    Dataset and variable attributes must be strict-JSON values (a nested ``gamstore`` dict
    attribute is stored as JSON text). Returns object path -> bytes, relative to the root.
    """
    objects: dict[str, bytes] = {}
    root_consolidated: dict[str, Any] = {}
    for name, ds in datasets.items():
        if "/" in name or not name:
            raise ValueError(f"datasets: group names must be single path segments, got {name!r}")
        coord_names = [str(c) for c in ds.coords if c not in ds.dims]
        children: dict[str, Any] = {}
        for vname, var in ds.variables.items():
            vname = str(vname)
            kind, raw, extra = _encode_variable(var)
            attrs = {str(k): v for k, v in var.attrs.items()}
            attrs.update(extra)
            if vname in ds.data_vars and coord_names:
                attrs["coordinates"] = " ".join(coord_names)
            meta = _array_meta(kind, tuple(var.shape), tuple(str(d) for d in var.dims), attrs)
            objects[f"{name}/{vname}/{MARKER}"] = _json_bytes(meta)
            if raw is not None:
                objects[f"{name}/{vname}/{_chunk_key(var.ndim)}"] = gzip_chunk(raw, _GZIP_LEVEL)
            children[vname] = meta
        gattrs = {str(k): v for k, v in ds.attrs.items()}
        if isinstance(gattrs.get("gamstore"), dict):
            gattrs["gamstore"] = _json.dumps(gattrs["gamstore"], root="attrs.gamstore")
        group = group_metadata(gattrs, consolidated=children)
        objects[f"{name}/{MARKER}"] = _json_bytes(group)
        root_consolidated[name] = group_metadata(gattrs, consolidated={})
        for vname, meta in children.items():
            root_consolidated[f"{name}/{vname}"] = meta
    objects[MARKER] = _json_bytes(group_metadata(root_attrs, consolidated=root_consolidated))
    return objects


def _decode_array(path: str, meta: Mapping[str, Any], objects: Mapping[str, bytes]) -> np.ndarray:
    shape = tuple(int(n) for n in meta["shape"])
    kind = meta["data_type"]
    if any(n < 0 for n in shape) or len(shape) > 8:
        raise ZarrFormatError(f"{path}: bad shape {shape}")
    count = math.prod(shape)
    itemsize = {"float64": 8, "int64": 8, "bool": 1}.get(kind)
    # exact for numbers; a string chunk holds a 4-byte length per item plus the text
    limit = MAX_VARIABLE_BYTES if itemsize is None else count * itemsize
    if limit > MAX_VARIABLE_BYTES or count > MAX_VARIABLE_BYTES:
        raise ZarrFormatError(f"{path}: shape {shape} is larger than a catalog variable can be")
    if count == 0:
        empty_dtype: Any = (
            object if kind == "string" else {"float64": "<f8", "int64": "<i8", "bool": "?"}[kind]
        )
        return np.empty(shape, dtype=empty_dtype)
    blob = objects.get(f"{path}/{_chunk_key(len(shape))}")
    if blob is None:
        raise ZarrFormatError(f"{path}: chunk missing")
    try:
        raw = gunzip_limited(blob, limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise ZarrFormatError(f"{path}: chunk does not decompress ({exc})") from None
    if kind == "string":
        return vlen_utf8_decode(raw, count).reshape(shape)
    dtype = {"float64": "<f8", "int64": "<i8", "bool": "?"}.get(kind)
    if dtype is None:
        raise ZarrFormatError(f"{path}: unsupported data type {kind!r}")
    arr = np.frombuffer(raw, dtype=dtype)
    if arr.size != count:
        raise ZarrFormatError(f"{path}: {arr.size} values for shape {shape}")
    return arr.reshape(shape).astype(np.dtype(dtype).newbyteorder("="))


def decode_group(objects: Mapping[str, bytes], name: str) -> xr.Dataset:
    """Read child group ``name`` written by :func:`encode_groups` back into a Dataset.

    Raises
    ------
    ZarrFormatError
        If an object is missing or inconsistent with the metadata.
    """
    blob = objects.get(f"{name}/{MARKER}")
    if blob is None:
        raise ZarrFormatError(f"{name}: group metadata missing")
    try:
        group = _json.loads(blob, root="zarr.json")
        children = group["consolidated_metadata"]["metadata"]
        gattrs = dict(group["attributes"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ZarrFormatError(f"{name}: unreadable group metadata ({exc})") from None
    coords: dict[str, xr.Variable] = {}
    data: dict[str, xr.Variable] = {}
    coord_names: set[str] = set()
    for vname, meta in children.items():
        try:
            dims = tuple(meta["dimension_names"])
            attrs = dict(meta["attributes"])
            arr = _decode_array(f"{name}/{vname}", meta, objects)
        except (KeyError, TypeError, ValueError) as exc:
            raise ZarrFormatError(f"{name}/{vname}: {exc}") from None
        if attrs.get("units") == _TIME_UNITS and arr.dtype == np.int64:
            arr = arr.view("datetime64[ns]")
            attrs.pop("units")
            attrs.pop("calendar", None)
        coord_names.update(str(attrs.pop("coordinates", "")).split())
        var = xr.Variable(dims, arr, attrs=attrs)
        (coords if len(dims) == 1 and dims[0] == vname else data)[vname] = var
    for cname in coord_names:
        if cname in data:
            coords[cname] = data.pop(cname)
    if isinstance(gattrs.get("gamstore"), str):
        gattrs["gamstore"] = _json.loads(gattrs["gamstore"].encode("utf-8"), root="attrs.gamstore")
    return xr.Dataset(data, coords=coords, attrs=gattrs)
