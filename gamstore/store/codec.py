"""Entry codec: one record <-> the objects of one Zarr v3 group (DESIGN §3).

The bytes are built here directly (no zarr API on the hot path) and are standard Zarr v3:

* every array is 1-D or N-D ``float64``/``int64`` with ``dimension_names``, a single chunk,
  codecs ``bytes(little)`` + ``crc32c`` and chunk key encoding ``v2`` with separator ``"."``,
  so the chunk of a 1-D array is ``<name>/0``; a zero-length array gets chunk shape 1 and no
  chunk object (its chunk grid has no chunks; plain zarr reads it as empty);
* intermediate folders of array names (``beta`` in ``beta/0``) get a group ``zarr.json`` so
  zarr and xarray see an explicit hierarchy;
* the entry's own group ``zarr.json`` is the commit marker; its attributes hold, under
  ``attrs["gamstore"]``, the record type, schema, key string, producer, creation time,
  objective (null if non-finite), iteration, kind, each array's blake3 digest and sizes, and
  the record's strict-JSON fields.

Decoding verifies everything against the marker (sizes, digests, regenerated metadata) and
raises :class:`CorruptEntryError` on any mismatch: callers turn that into a miss.
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import blake3
import crc32c
import numpy as np

from gamstore import _json
from gamstore.store import zarr_v3
from gamstore.store.layout import LAYOUT_VERSION, MARKER, READABLE_LAYOUTS
from gamstore.store.provenance import check_provenance

__all__ = [
    "MAX_ENTRY_BYTES",
    "CorruptEntryError",
    "EncodedEntry",
    "Marker",
    "array_meta_bytes",
    "decode_arrays",
    "decode_record",
    "encode_entry",
    "group_meta_bytes",
    "group_parts",
    "marker_object_paths",
    "marker_object_sizes",
    "parse_marker",
]

#: Per-entry cap (the seed's ``MAX_ENTRY_BYTES``): larger records are refused on save.
MAX_ENTRY_BYTES = 16 * 1024 * 1024
#: Entry format written: 2 packs every array of a record into ``values``/``ints`` + ``offsets``.
MARKER_FORMAT = 2
#: Entry formats read: 1 (one Zarr array per record array, stores written before packing).
READABLE_FORMATS = (1, 2)
#: The packed arrays of format 2: name, dtype and dimension name; ``ints`` only when the
#: record has int64 arrays. ``offsets`` (int64, dimension ``part_edge``) holds, per pack in
#: this order, the edges ``[0, e1, ..., en]`` of its members (the record's arrays of that
#: dtype, in sorted name order, each flattened in C order).
PACKS = (("values", "float64", "value"), ("ints", "int64", "int_value"))
OFFSETS = "offsets"
OFFSETS_DIM = "part_edge"
_DTYPES: dict[str, tuple[str, Any]] = {"float64": ("<f8", 0.0), "int64": ("<i8", 0)}
_SEG = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\Z")
_DIM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_MAX_DEPTH = 4
#: Largest element count of one array, and of any one dimension (an empty array's other
#: dimensions included): what fits the entry cap. A stored shape beyond it is corrupt, so
#: no reader allocates (or asks numpy to build) an array the marker merely claims.
MAX_ARRAY_ELEMENTS = MAX_ENTRY_BYTES // 8
_MAX_NDIM = 32


class CorruptEntryError(ValueError):
    """An entry's objects do not match its marker (or the marker is not ours)."""


@dataclass(frozen=True)
class EncodedEntry:
    """The objects of one entry, relative to the entry folder.

    Attributes
    ----------
    payload : dict of str to bytes
        Every object except the marker (written first, in any order).
    marker : bytes
        The entry's group ``zarr.json`` (written last, create-only).
    nbytes : int
        Total bytes of payload and marker.
    attrs : dict
        The marker's ``attrs["gamstore"]``.
    """

    payload: dict[str, bytes]
    marker: bytes
    nbytes: int
    attrs: dict[str, Any]


@dataclass(frozen=True)
class Marker:
    """Parsed commit marker of one entry (``attrs["gamstore"]`` plus derived facts)."""

    attrs: dict[str, Any]
    record_type: str
    schema: str
    keyspace: str
    key: str
    entry_id: str
    producer: str
    created: int
    objective: float | None
    iteration: int | None
    kind: str
    nbytes: int
    provenance: dict[str, Any] | None = None


# Same canonical form as gamstore._json.dumps (one encoder, built once), for documents built
# here from values already checked (record fields go through _plain_fields first).
# The documents are trees built here (no cycles), so the encoder skips its cycle check.
_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    check_circular=False,
)


def _trusted_json(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode("utf-8")


def record_digest(fields: Any, parts: Any) -> str:
    """BLAKE3 of the marker's record fields and part table (entry format 2).

    The arrays carry their own digests; this covers what the marker says about them (field
    values, and each part's place and shape inside the packs), so a marker damaged in a way
    that still parses (a changed count, name or shape) is corrupt rather than another record.
    """
    return blake3.blake3(_trusted_json({"parts": parts, "record": fields})).hexdigest()


def _plain_fields(fields: Any) -> Any:
    """``_json.canonical(fields, root="record.fields")``, fast when fields are plain JSON."""
    return _json.canonical_fast(fields, root="record.fields")


_EMPTY_GROUP = _trusted_json(zarr_v3.group_metadata())


def group_meta_bytes(attributes: Mapping[str, Any] | None = None) -> bytes:
    """``zarr.json`` of a group with ``attributes`` (strict, canonical JSON)."""
    if not attributes:
        return _EMPTY_GROUP
    return _json.dumps_bytes(zarr_v3.group_metadata(attributes), root="group")


def _chunk_key(ndim: int) -> str:
    return zarr_v3.chunk_key(ndim, "v2")


@functools.lru_cache(maxsize=4096)
def array_meta_bytes(dtype: str, shape: tuple[int, ...], dims: tuple[str, ...]) -> bytes:
    """``zarr.json`` of a single-chunk array (deterministic, so readers can regenerate it)."""
    doc = zarr_v3.array_metadata(
        dtype,
        shape,
        dims,
        codecs=zarr_v3.CRC32C_CODECS,
        key_encoding="v2",
        fill_value=_DTYPES[dtype][1],
    )
    return _trusted_json(doc)


def placeholder_meta_bytes(attributes: Mapping[str, Any], dim: str) -> bytes:
    """``zarr.json`` of an empty ``int64`` array of shape ``(0,)`` with ``attributes``.

    Written at the top of a folder of non-Zarr objects (``.access``, ``.catalog``): a Zarr
    walk sees a leaf there (an array has no members) and never lists the objects below.
    """
    doc = _json.loads(array_meta_bytes("int64", (0,), (dim,)), root="placeholder")
    doc["attributes"] = dict(attributes)
    return _json.dumps_bytes(doc, root="placeholder")


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"arrays: array name must be str, got {type(name).__name__}")
    segs = name.split("/")
    if len(segs) > _MAX_DEPTH or not all(_SEG.match(s) for s in segs):
        raise ValueError(
            f"arrays[{name!r}]: array names must be fixed words and integer indices "
            f"joined by '/' (at most {_MAX_DEPTH} levels), e.g. 'rho' or 'beta/0'"
        )
    return name


def _shape_problem(shape: tuple[int, ...]) -> str | None:
    """Why ``shape`` cannot be stored (None when it can)."""
    if not 1 <= len(shape) <= _MAX_NDIM:
        return f"expected 1 to {_MAX_NDIM} dimensions"
    if any(n < 0 or n > MAX_ARRAY_ELEMENTS for n in shape):
        return f"every dimension must be in [0, {MAX_ARRAY_ELEMENTS}] (the entry cap)"
    if math.prod(n for n in shape if n) > MAX_ARRAY_ELEMENTS:
        return f"more than {MAX_ARRAY_ELEMENTS} elements (the entry cap)"
    return None


def _canonical_array(
    name: str, part: Any, *, check_finite: bool = True
) -> tuple[np.ndarray, str, tuple[str, ...]]:
    data = getattr(part, "data", None)
    dims = getattr(part, "dims", None)
    if not isinstance(data, np.ndarray):
        raise TypeError(f"arrays[{name!r}].data: expected numpy.ndarray, got {type(data).__name__}")
    if data.dtype.kind == "f" and data.dtype.itemsize == 8:
        dtype = "float64"
    elif data.dtype.kind == "i" and data.dtype.itemsize == 8:
        dtype = "int64"
    else:
        raise TypeError(f"arrays[{name!r}].data: dtype must be float64 or int64, got {data.dtype}")
    if not isinstance(dims, tuple) or not all(isinstance(d, str) and _DIM.match(d) for d in dims):
        raise ValueError(
            f"arrays[{name!r}].dims: expected a tuple of identifier strings, got {dims!r}"
        )
    if len(dims) != data.ndim:
        raise ValueError(
            f"arrays[{name!r}].dims: {len(dims)} dimension names for an array of shape {data.shape}"
        )
    if data.ndim == 0:
        raise ValueError(f"arrays[{name!r}]: 0-d arrays are not stored; use a field")
    bad = _shape_problem(data.shape)
    if bad:
        raise ValueError(f"arrays[{name!r}]: shape {data.shape}: {bad}")
    arr = np.ascontiguousarray(data, dtype=_DTYPES[dtype][0])
    if check_finite and dtype == "float64" and not np.isfinite(arr).all():
        raise ValueError(f"arrays[{name!r}]: contains non-finite values (NaN or inf)")
    return arr, dtype, dims


def _pack_layout(
    parts: Mapping[str, tuple[str, tuple[int, ...]]],
) -> tuple[list[tuple[str, str, str, list[str]]], list[int]]:
    """Members of each pack (from each part's dtype and shape) and the offsets array.

    Returns ``[(pack, dtype, dim, member names)]`` for the packs present and the edges.
    """
    packs: list[tuple[str, str, str, list[str]]] = []
    edges: list[int] = []
    for pack, dtype, dim in PACKS:
        members = sorted(n for n, (dt, _) in parts.items() if dt == dtype)
        if pack != "values" and not members:
            continue  # "values" always exists (maybe empty): readers find it by name
        packs.append((pack, dtype, dim, members))
        edge = 0
        edges.append(edge)
        for n in members:
            edge += math.prod(parts[n][1])
            edges.append(edge)
    return packs, edges


def _pack(
    canon: Mapping[str, tuple[np.ndarray, str, tuple[str, ...]]],
) -> dict[str, tuple[np.ndarray, str, tuple[str, ...]]]:
    """The physical arrays of format 2 from the record's checked arrays."""
    packs, edges = _pack_layout({n: (dt, a.shape) for n, (a, dt, _) in canon.items()})
    out: dict[str, tuple[np.ndarray, str, tuple[str, ...]]] = {}
    for pack, dtype, dim, members in packs:
        code = _DTYPES[dtype][0]
        if members:
            data = np.concatenate([canon[n][0].reshape(-1) for n in members]).astype(code)
        else:
            data = np.zeros(0, dtype=code)
        out[pack] = (data, dtype, (dim,))
    out[OFFSETS] = (np.array(edges, dtype="<i8"), "int64", (OFFSETS_DIM,))
    return out


def stored_arrays(attrs: Mapping[str, Any], arrays: Mapping[str, Any]) -> dict[str, Any]:
    """The arrays an entry stores (its marker's ``arrays``) from the record's arrays.

    Format 1 stores the record's arrays as they are; format 2 packs them (:data:`PACKS`).
    Used by export, which hands out the stored arrays so an import rebuilds the same bytes.
    """
    if attrs.get("format") == 1:
        return dict(arrays)
    from gamstore.records import ArrayPart  # the model layer's array type

    canon = {n: _canonical_array(n, arrays[n]) for n in sorted(arrays)}
    return {n: ArrayPart(a, dims) for n, (a, _, dims) in _pack(canon).items()}


def encode_entry(
    *,
    record: Any,
    keyspace: str,
    key: str,
    entry_id: str,
    producer: str,
    created: int,
    objective: float | None,
    iteration: int | None,
    kind: str,
    schema: str,
    max_bytes: int = MAX_ENTRY_BYTES,
    provenance: Mapping[str, Any] | None = None,
    layout: int = LAYOUT_VERSION,
) -> EncodedEntry:
    """Build every object of one entry from ``record.to_parts()``.

    ``layout`` is the layout of the store the entry goes into (its marker says so, so an
    older gamstore sharing a layout-1 store reads it).

    Raises
    ------
    ValueError, TypeError
        For bad input (naming the field): non-finite array values, wrong ``dims``,
        unsupported dtypes, invalid array names, non-JSON fields, records over ``max_bytes``.
    """
    record_type = getattr(type(record), "RECORD_TYPE", None)
    if not isinstance(record_type, str) or not hasattr(record, "to_parts"):
        raise TypeError(
            f"record: expected a record object with RECORD_TYPE and to_parts(), "
            f"got {type(record).__name__}"
        )
    parts = record.to_parts()
    fields = _plain_fields(parts.fields)
    arrays_in = parts.arrays
    if not isinstance(arrays_in, Mapping):
        raise TypeError("record.arrays: expected a mapping of name -> ArrayPart")
    names = sorted(_check_name(n) for n in arrays_in)
    name_set = set(names)
    for n in names:  # still paths to a reader of the parts: none may nest under another
        segs = n.split("/")
        for i in range(1, len(segs)):
            parent = "/".join(segs[:i])
            if parent in name_set:
                raise ValueError(f"arrays[{n!r}]: name nests under the array {parent!r}")
    # finiteness is checked once on the packed values below (one pass, not one per array)
    canon = {n: _canonical_array(n, arrays_in[n], check_finite=False) for n in names}
    size = sum(a.nbytes for a, _, _ in canon.values())
    if size > max_bytes:
        raise ValueError(f"record: encoded size exceeds the {max_bytes}-byte entry cap")
    parts = {
        n: {"dims": list(d), "dtype": dt, "shape": list(a.shape)} for n, (a, dt, d) in canon.items()
    }
    payload: dict[str, bytes] = {}
    specs: dict[str, Any] = {}
    total = 0
    packed = _pack(canon)
    if not np.isfinite(packed["values"][0]).all():
        bad = next(
            n for n, (a, dt, _) in canon.items() if dt == "float64" and not np.isfinite(a).all()
        )
        raise ValueError(f"arrays[{bad!r}]: contains non-finite values (NaN or inf)")
    for n, (arr, dtype, dims) in packed.items():
        meta = array_meta_bytes(dtype, arr.shape, dims)
        payload[f"{n}/{MARKER}"] = meta
        spec: dict[str, Any] = {
            "dims": list(dims),
            "dtype": dtype,
            "meta_nbytes": len(meta),
            "shape": list(arr.shape),
        }
        total += len(meta)
        if arr.size:
            raw = arr.tobytes()
            chunk = raw + struct.pack("<I", crc32c.crc32c(raw))
            payload[f"{n}/{_chunk_key(arr.ndim)}"] = chunk
            spec["digest"] = blake3.blake3(chunk).hexdigest()
            spec["nbytes"] = len(chunk)
            total += len(chunk)
        else:
            spec["digest"] = None
            spec["nbytes"] = 0
        specs[n] = spec
        if total > max_bytes:
            raise ValueError(f"record: encoded size exceeds the {max_bytes}-byte entry cap")
    if objective is not None and not math.isfinite(objective):
        objective = None  # non-finite objectives are stored as null (seed rule)
    attrs = {
        "arrays": specs,
        "created": int(created),
        "entry_id": entry_id,
        "format": MARKER_FORMAT,
        "groups": [],  # format 2 has no intermediate groups (format 1 did: "block_beta")
        "iteration": iteration,
        "key": key,
        "keyspace": keyspace,
        "kind": kind,
        "layout": int(layout),
        "nbytes": total,
        "objective": objective,
        "parts": parts,
        "producer": producer,
        "record": fields,
        "record_digest": record_digest(fields, parts),
        **({} if provenance is None else {"provenance": check_provenance(provenance)}),
        "record_type": record_type,
        "schema": schema,
    }
    marker = _trusted_json(zarr_v3.group_metadata({"gamstore": attrs}))
    total += len(marker)
    if total > max_bytes:
        raise ValueError(f"record: encoded size {total} exceeds the {max_bytes}-byte entry cap")
    return EncodedEntry(payload=payload, marker=marker, nbytes=total, attrs=attrs)


def _req(attrs: Mapping[str, Any], name: str, typ: type | tuple[type, ...]) -> Any:
    value = attrs.get(name)
    if not isinstance(value, typ) or isinstance(value, bool) and typ is int:
        raise CorruptEntryError(f"marker: field {name!r} missing or of wrong type")
    return value


def parse_marker(data: bytes, *, keyspace: str, entry_id: str) -> Marker:
    """Parse and check a commit marker.

    Raises
    ------
    CorruptEntryError
        If it is not strict JSON, not a Zarr v3 group, not a gamstore entry of this layout,
        or disagrees with where it was found.
    """
    try:
        doc = _json.loads(data, root="marker")
    except ValueError as exc:
        raise CorruptEntryError(str(exc)) from None
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3 or doc.get("node_type") != "group":
        raise CorruptEntryError("marker: not a Zarr v3 group document")
    attrs_all = doc.get("attributes")
    attrs = attrs_all.get("gamstore") if isinstance(attrs_all, dict) else None
    if not isinstance(attrs, dict):
        raise CorruptEntryError("marker: no attrs['gamstore']")
    fmt = attrs.get("format")
    layout = attrs.get("layout")
    if (
        fmt not in READABLE_FORMATS
        or type(fmt) is not int
        or type(layout) is not int
        or layout not in READABLE_LAYOUTS
    ):
        raise CorruptEntryError("marker: unknown format or layout version")
    if fmt == 2 and (not isinstance(attrs.get("parts"), dict) or attrs.get("groups") != []):
        raise CorruptEntryError("marker: format 2 without parts, or with groups")
    if _req(attrs, "keyspace", str) != keyspace or _req(attrs, "entry_id", str) != entry_id:
        raise CorruptEntryError("marker: keyspace or entry id disagree with the path")
    kind = _req(attrs, "kind", str)
    if kind not in ("checkpoint", "final"):
        raise CorruptEntryError(f"marker: unknown kind {kind!r}")
    objective = attrs.get("objective")
    if objective is not None and (
        isinstance(objective, bool) or not isinstance(objective, (int, float))
    ):
        raise CorruptEntryError("marker: objective is not a number or null")
    iteration = attrs.get("iteration")
    if iteration is not None and (isinstance(iteration, bool) or not isinstance(iteration, int)):
        raise CorruptEntryError("marker: iteration is not an integer or null")
    if not isinstance(attrs.get("arrays"), dict) or not isinstance(attrs.get("groups"), list):
        raise CorruptEntryError("marker: arrays/groups missing")
    for name in [*attrs["arrays"], *attrs["groups"]]:
        try:  # a hostile marker must not steer reads outside its entry ("..", "/abs")
            if len(_check_name(name)) > 200:
                raise ValueError("name too long")
        except (TypeError, ValueError):
            raise CorruptEntryError(f"marker: invalid array/group name {name!r:.80}") from None
    prov = attrs.get("provenance")
    if prov is not None:
        try:
            prov = check_provenance(prov)
        except (TypeError, ValueError) as exc:
            raise CorruptEntryError(f"marker: {exc}") from None
    return Marker(
        provenance=prov,
        attrs=attrs,
        record_type=_req(attrs, "record_type", str),
        schema=_req(attrs, "schema", str),
        keyspace=keyspace,
        key=_req(attrs, "key", str),
        entry_id=entry_id,
        producer=_req(attrs, "producer", str),
        created=_req(attrs, "created", int),
        objective=None if objective is None else float(objective),
        iteration=iteration,
        kind=kind,
        nbytes=_req(attrs, "nbytes", int) + len(data),
    )


def marker_object_paths(marker: Marker) -> list[str]:
    """Relative paths of every payload object the marker promises."""
    paths: list[str] = []
    for name, spec in marker.attrs["arrays"].items():
        paths.append(f"{name}/{MARKER}")
        if isinstance(spec, dict) and spec.get("nbytes"):
            shape = spec.get("shape")
            ndim = len(shape) if isinstance(shape, list) else 1
            paths.append(f"{name}/{_chunk_key(ndim)}")
    for g in marker.attrs["groups"]:
        paths.append(f"{g}/{MARKER}")
    return paths


def marker_object_sizes(marker: Marker) -> list[int]:
    """Expected size of each object of :func:`marker_object_paths` (same order).

    Used as read caps, so a planted oversize object is never loaded whole. Malformed specs
    give a cap of 0 (the read then fails verification).
    """
    sizes: list[int] = []
    for spec in marker.attrs["arrays"].values():
        ok = isinstance(spec, dict)
        meta = spec.get("meta_nbytes") if ok else None
        sizes.append(meta if isinstance(meta, int) and 0 <= meta <= MAX_ENTRY_BYTES else 0)
        n = spec.get("nbytes") if ok else None
        if n:
            sizes.append(n if isinstance(n, int) and 0 <= n <= MAX_ENTRY_BYTES else 0)
    sizes.extend(len(_EMPTY_GROUP) for _ in marker.attrs["groups"])
    return sizes


def decode_arrays(marker: Marker, blobs: Mapping[str, bytes | None]) -> dict[str, np.ndarray]:
    """Verify the payload objects against the marker and decode the arrays.

    ``blobs`` maps the paths of :func:`marker_object_paths` to their bytes (None = missing).
    """
    group_bytes = group_meta_bytes()
    for g in marker.attrs["groups"]:
        if not isinstance(g, str):
            raise CorruptEntryError(f"group {g!r:.80}: malformed name in marker")
        found = blobs.get(f"{g}/{MARKER}")
        if found != group_bytes:
            what = "missing" if found is None else "differs from a plain group's"
            raise CorruptEntryError(f"group {g!r}: object {g}/{MARKER} {what}")
    out: dict[str, np.ndarray] = {}
    for name, spec in marker.attrs["arrays"].items():
        try:
            _check_name(name)
            dtype = spec["dtype"]
            shape = spec["shape"]
            if not isinstance(shape, list) or not all(
                type(n) is int
                for n in shape  # noqa: E721 - bools and floats are corrupt
            ):
                raise ValueError("shape is not a list of ints")
            shape = tuple(shape)
            dims = tuple(spec["dims"])
            if dtype not in _DTYPES or _shape_problem(shape):
                raise ValueError("bad dtype or shape")
            meta = array_meta_bytes(dtype, shape, dims)
        except (KeyError, TypeError, ValueError):
            raise CorruptEntryError(f"array {name!r}: malformed spec in marker") from None
        found = blobs.get(f"{name}/{MARKER}")
        if found != meta:
            what = "missing" if found is None else "differs from the metadata the marker implies"
            raise CorruptEntryError(f"array {name!r}: object {name}/{MARKER} {what}")
        count = math.prod(shape)
        if count == 0:
            out[name] = np.zeros(shape, dtype=_DTYPES[dtype][0]).astype(dtype)
            continue
        obj = f"{name}/{_chunk_key(len(shape))}"
        chunk = blobs.get(obj)
        itemsize = 8
        if chunk is None:
            raise CorruptEntryError(f"array {name!r}: chunk {obj} missing")
        expected = count * itemsize + 4
        if len(chunk) != expected or len(chunk) != spec.get("nbytes"):
            # reads are capped at the expected size + 1: a longer chunk shows as "more than"
            size = f"more than {expected}" if len(chunk) > expected else str(len(chunk))
            raise CorruptEntryError(
                f"array {name!r}: chunk {obj} has {size} bytes, expected {expected} "
                f"(marker nbytes {spec.get('nbytes')!r:.20})"
            )
        digest = spec.get("digest")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise CorruptEntryError(f"array {name!r}: malformed digest in marker")
        if blake3.blake3(chunk).hexdigest() != digest:
            raise CorruptEntryError(f"array {name!r}: chunk {obj} fails its BLAKE3 digest check")
        arr = np.frombuffer(chunk, dtype=_DTYPES[dtype][0], count=count).reshape(shape)
        out[name] = arr.astype(dtype)  # native-endian, writable copy
    if marker.attrs.get("format") == 2:
        return _unpack(marker.attrs["parts"], out)
    return out


def group_parts(group: Any) -> dict[str, np.ndarray]:
    """A record's arrays from an entry opened with plain ``zarr`` (or any group-like object
    with ``attrs`` and arrays by name), in either entry format.

    Format 2 splits the packs at ``offsets`` as the marker's ``parts`` say; format 1 reads
    each array by its name. Nothing is verified here (that is what :class:`Store` does)::

        g = zarr.open_group("<root>/block/ab/<key64>.<entry id>", mode="r")
        codec.group_parts(g)["block_beta/0"]
    """
    attrs = group.attrs["gamstore"]
    if isinstance(attrs, (str, bytes)):  # an HDF5 export keeps the marker as JSON text
        attrs = _json.loads(attrs, root="marker")
    if attrs.get("format") == 1:
        return {n: np.asarray(group[n][...]) for n in attrs["arrays"]}
    specs = {n: (p["dtype"], tuple(p["shape"])) for n, p in attrs["parts"].items()}
    packs, edges = _pack_layout(specs)
    bounds = iter(edges)
    out: dict[str, np.ndarray] = {}
    for pack, _, _, members in packs:
        data = np.asarray(group[pack][...])
        start = next(bounds)
        for n in members:
            end = next(bounds)
            out[n] = data[start:end].reshape(specs[n][1])
            start = end
    return out


def _part_spec(name: Any, spec: Any) -> tuple[str, tuple[int, ...]]:
    """(dtype, shape) of one part of a format-2 marker, checked like a stored array's."""
    try:
        _check_name(name)
        dtype, shape, dims = spec["dtype"], spec["shape"], spec["dims"]
        if not isinstance(shape, list) or not all(type(n) is int for n in shape):  # noqa: E721
            raise ValueError("shape is not a list of ints")
        if not isinstance(dims, list) or len(dims) != len(shape):
            raise ValueError("dims do not match the shape")
        if not all(isinstance(d, str) and _DIM.match(d) for d in dims):
            raise ValueError("bad dimension name")
        if dtype not in _DTYPES or _shape_problem(tuple(shape)):
            raise ValueError("bad dtype or shape")
    except (KeyError, TypeError, ValueError):
        raise CorruptEntryError(f"part {name!r:.80}: malformed spec in marker") from None
    return dtype, tuple(shape)


def _unpack(parts: Mapping[str, Any], stored: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The record's arrays from the packs of a format-2 entry (offsets checked against the
    parts' shapes, so a reader of the plain Zarr arrays and gamstore agree)."""
    specs = {n: _part_spec(n, s) for n, s in parts.items()}
    packs, edges = _pack_layout(specs)
    if set(stored) != {OFFSETS, *(p for p, _, _, _ in packs)}:
        raise CorruptEntryError(f"packed arrays {sorted(stored)!r:.200} do not match the parts")
    offsets = stored[OFFSETS]
    if offsets.dtype.kind != "i" or offsets.ndim != 1 or offsets.tolist() != edges:
        raise CorruptEntryError("array 'offsets' does not match the parts' shapes")
    out: dict[str, np.ndarray] = {}
    for pack, _, _, members in packs:
        data = stored[pack]
        if data.ndim != 1 or data.shape[0] != sum(math.prod(specs[n][1]) for n in members):
            raise CorruptEntryError(f"array {pack!r}: length does not match the parts")
        start = 0
        for n in members:
            shape = specs[n][1]
            end = start + math.prod(shape)
            out[n] = data[start:end].reshape(shape)
            start = end
    return out


def decode_record(
    marker: Marker, arrays: dict[str, np.ndarray], resolve: Callable[[str], type | None]
) -> Any:
    """Build the record object from a verified marker and arrays.

    Raises
    ------
    CorruptEntryError
        If the record type is unknown or ``from_parts`` rejects the content.
    """
    cls = resolve(marker.record_type)
    if cls is None:
        raise CorruptEntryError(f"record type {marker.record_type!r} is not registered")
    fields = marker.attrs.get("record")
    if not isinstance(fields, dict):
        raise CorruptEntryError("marker: record fields missing")
    if marker.attrs.get("format") == 2:
        digest = marker.attrs.get("record_digest")
        try:
            ok = isinstance(digest, str) and digest == record_digest(
                fields, marker.attrs.get("parts")
            )
        except (TypeError, ValueError):  # not re-encodable: damaged
            ok = False
        if not ok:
            raise CorruptEntryError("marker: record fields or parts do not match record_digest")
    try:
        return cls.from_parts(fields, arrays)  # type: ignore[attr-defined]
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptEntryError(f"record {marker.record_type!r}: {exc}") from None
