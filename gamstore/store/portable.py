"""Entries as portable data: what :meth:`Store.export_entry` hands out and what
:meth:`Store.import_entry` checks and turns back into the exact Zarr objects of a save.

An exported entry is its marker attributes plus its arrays (each checked against the
marker's blake3 digest). Importing rebuilds the single-chunk objects and the marker
document byte for byte as :func:`gamstore.store.codec.encode_entry` wrote them, so export
then import gives identical entries under the same entry id.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import blake3
import crc32c
import numpy as np

from gamstore.store import codec
from gamstore.store.ids import parse_created
from gamstore.store.layout import (
    LAYOUT_VERSION,
    MARKER,
    check_keyspace,
    entry_prefix,
    key_folder,
    split_entry_path,
)
from gamstore.store.types import EntryInfo

__all__ = [
    "ExportedEntry",
    "ImportResult",
    "check_against_marker",
    "check_import_attrs",
    "chunk_digest",
    "spec_shape",
]

_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_INT64 = 2**63
#: Most arrays and groups one imported entry may declare; a saved record has a few dozen.
MAX_ARRAYS = 10_000


@dataclass(frozen=True)
class ExportedEntry:
    """One committed entry as data (from :meth:`Store.export_entry`).

    Attributes
    ----------
    info : EntryInfo
        The listed entry.
    attrs : dict
        The commit marker's ``attrs["gamstore"]`` (a private copy; strict JSON values).
    arrays : mapping of str to ArrayPart
        Every stored array by its path in the entry (``terms/0/raw_beta``), each verified
        against the marker's digest.
    """

    info: EntryInfo
    attrs: dict[str, Any]
    arrays: Mapping[str, Any]


@dataclass(frozen=True)
class ImportResult:
    """What :meth:`Store.import_entry` did with one entry.

    Attributes
    ----------
    status : {"imported", "exists", "refused"}
        Committed; already present (left untouched); or refused (nothing left behind).
    path : str
        The entry's path in the store ("" if refused before it was known).
    reason : str
        Why it was refused ("" otherwise).
    """

    status: Literal["imported", "exists", "refused"]
    path: str = ""
    reason: str = ""


def chunk_digest(arr: np.ndarray) -> str:
    """The marker digest of a single-chunk array (blake3 of little-endian bytes + crc32c)."""
    raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return blake3.blake3(raw + struct.pack("<I", crc32c.crc32c(raw))).hexdigest()


def spec_shape(name: str, spec: Mapping[str, Any]) -> tuple[int, ...]:
    """The marker's shape of array ``name``, range-checked (no overflow, within the cap)."""
    cap = codec.MAX_ENTRY_BYTES // 8
    shape = spec.get("shape")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 32:
        raise ValueError(f"array {name!r}: marker shape must be a list of 1 to 32 sizes")
    if not all(type(n) is int and 0 <= n <= cap for n in shape):
        raise ValueError(f"array {name!r}: marker shape {shape!r:.80} out of range")
    if math.prod(shape) > cap:
        raise ValueError(f"array {name!r}: marker shape {shape!r:.80} exceeds the entry cap")
    return tuple(shape)


def check_against_marker(name: str, arr: np.ndarray, spec: Mapping[str, Any]) -> None:
    """Refuse an array whose shape, dtype or values differ from its marker spec."""
    if arr.shape != spec_shape(name, spec):
        raise ValueError(f"array {name!r}: shape {arr.shape} != marker {spec.get('shape')}")
    dtype = spec.get("dtype")
    if dtype not in ("float64", "int64") or arr.dtype != np.dtype(dtype):
        raise ValueError(f"array {name!r}: dtype {arr.dtype} != marker {dtype}")
    if arr.size and chunk_digest(arr) != spec.get("digest"):
        raise ValueError(f"array {name!r}: values differ from the stored digest")


def check_numbers(value: Any, path: str = "marker") -> None:
    """Refuse integers outside int64 anywhere in parsed marker attributes.

    Nothing gamstore writes comes close; a ``10**400`` would overflow later readers.
    """
    if type(value) is int and not -_INT64 <= value < _INT64:
        raise ValueError(f"{path}: integer out of the int64 range")
    if isinstance(value, dict):
        for k, v in value.items():
            check_numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_numbers(v, f"{path}[{i}]")


def check_import_attrs(
    attrs: Mapping[str, Any], path: str | None, layout: int = LAYOUT_VERSION
) -> tuple[str, str, str, str]:
    """Check imported marker attributes; return (keyspace, key, entry id, entry path).

    ``path``, if given, is where the entry came from (either layout's entry path); it must
    be where it belongs. The returned entry path is in ``layout``, the target store's.
    """
    if not isinstance(attrs, Mapping):
        raise ValueError("marker attribute is not a JSON object")
    check_numbers(attrs)
    ks, key, entry_id = attrs.get("keyspace"), attrs.get("key"), attrs.get("entry_id")
    if not isinstance(ks, str) or not isinstance(key, str) or not isinstance(entry_id, str):
        raise ValueError("marker keyspace/entry id/key disagree with the group path")
    try:
        check_keyspace(ks)
    except (TypeError, ValueError):
        raise ValueError("marker keyspace/entry id/key disagree with the group path") from None
    where = None
    if path is not None:
        where = split_entry_path(path) if isinstance(path, str) else None
        if where is None:
            raise ValueError("not an entry path")
        if where[0] != ks or where[2] != entry_id:
            raise ValueError("marker keyspace/entry id/key disagree with the group path")
    created = parse_created(entry_id)
    if created is None or attrs.get("created") != created:
        raise ValueError("invalid entry id or creation time")
    folder = key_folder(ks, key)
    if where is not None and where[1] != folder:
        raise ValueError("key folder does not match the key string")
    marker_layout = attrs.get("layout")
    if isinstance(marker_layout, int) and marker_layout > layout:
        raise ValueError(
            f"marker of layout {marker_layout} into a store of layout {layout}: "
            "upgrade the store first (gamstore upgrade)"
        )
    specs, groups = attrs.get("arrays"), attrs.get("groups")
    if not isinstance(specs, dict) or not isinstance(groups, list):
        raise ValueError("marker has no arrays/groups")
    if len(specs) + len(groups) > MAX_ARRAYS:
        raise ValueError(f"marker declares more than {MAX_ARRAYS} arrays and groups")
    if not all(isinstance(s, dict) for s in specs.values()):
        raise ValueError("marker has a malformed array spec")
    total = sum(math.prod(spec_shape(n, s)) for n, s in specs.items())
    if total > codec.MAX_ENTRY_BYTES // 8:
        raise ValueError(f"arrays exceed the entry cap of {codec.MAX_ENTRY_BYTES} bytes")
    return ks, key, entry_id, entry_prefix(ks, folder, entry_id, layout)


def entry_objects(
    attrs: Mapping[str, Any], arrays: Mapping[str, np.ndarray], keyspace: str, entry_id: str
) -> tuple[dict[str, bytes], bytes]:
    """The payload objects (relative path -> bytes) and marker bytes of an imported entry,
    exactly as a save writes them; every array is checked against the marker first."""
    specs: Mapping[str, Any] = attrs["arrays"]
    if set(arrays) != set(specs):
        raise ValueError("arrays differ from the marker's")
    payload: dict[str, bytes] = {}
    for name, spec in specs.items():
        arr = arrays[name]
        check_against_marker(name, arr, spec)
        dims = spec.get("dims")
        if (
            not isinstance(dims, list)
            or len(dims) != arr.ndim
            or not all(isinstance(d, str) for d in dims)
        ):
            raise ValueError(f"array {name!r}: dimension names differ from the marker")
        payload[f"{name}/{MARKER}"] = codec.array_meta_bytes(
            spec["dtype"], tuple(arr.shape), tuple(dims)
        )
        if arr.size:
            chunk = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
            key_name = ".".join(["0"] * arr.ndim)
            payload[f"{name}/{key_name}"] = chunk + struct.pack("<I", crc32c.crc32c(chunk))
    for g in attrs["groups"]:
        if not isinstance(g, str):
            raise ValueError("marker groups must be strings")
        payload[f"{g}/{MARKER}"] = codec.group_meta_bytes()
    # the marker document exactly as a save writes it; ``attrs`` is plain JSON (checked
    # by the caller's strict reader), so the C encoder gives the canonical bytes
    doc = {"attributes": {"gamstore": attrs}, "node_type": "group", "zarr_format": 3}
    try:
        marker = _CANONICAL.encode(doc).encode("utf-8")
        # the rebuilt marker must parse exactly like the original one (names, kinds, numbers)
        codec.parse_marker(marker, keyspace=keyspace, entry_id=entry_id)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ValueError(str(exc)) from None
    return payload, marker
