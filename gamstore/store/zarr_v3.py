"""Zarr v3 objects by hand: the one owner of the format details gamstore writes.

gamstore writes Zarr v3 bytes in two places, both without zarr-python on the path (its
high-level API costs ~5-10 ms per array in event-loop round trips):

* the entry codec (:mod:`gamstore.store.codec`): single-chunk ``float64``/``int64`` arrays,
  codecs ``bytes(little)`` + ``crc32c``, chunk key encoding ``v2`` with ``"."`` (the chunk
  of a 1-D array is ``<name>/0``), fill value 0;
* the catalog (:mod:`gamstore.views.zarrio`): single-chunk ``float64``/``int64``/``bool``/
  ``string`` arrays, codecs ``bytes`` or ``vlen-utf8`` + ``gzip``, the default chunk key
  encoding with ``"/"`` (``<name>/c/0``), inline consolidated metadata.

Both build their metadata documents, chunk keys and chunk bytes with the functions here, so
what a Zarr v3 document looks like is decided once. Serialising a document is the caller's
(both use gamstore's canonical strict JSON: sorted keys, no spaces), and so are the bytes:
the documents are equal to what each writer wrote before this module existed.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CRC32C_CODECS",
    "ZarrFormatError",
    "array_metadata",
    "catalog_codecs",
    "chunk_key",
    "group_metadata",
    "gunzip_limited",
    "gzip_chunk",
    "vlen_utf8_decode",
    "vlen_utf8_encode",
]

#: Codecs of an entry array: little-endian bytes, then a CRC32C checksum.
CRC32C_CODECS: tuple[Mapping[str, Any], ...] = (
    {"configuration": {"endian": "little"}, "name": "bytes"},
    {"name": "crc32c"},
)

_KEY_ENCODINGS: dict[str, dict[str, Any]] = {
    "v2": {"configuration": {"separator": "."}, "name": "v2"},
    "default": {"configuration": {"separator": "/"}, "name": "default"},
}


class ZarrFormatError(ValueError):
    """Objects that are not what the writer here made (or are damaged)."""


def chunk_key(ndim: int, encoding: str) -> str:
    """Key of the single chunk of an ``ndim``-D array, relative to the array folder.

    ``"v2"``: ``"0"``, ``"0.0"``, ...; ``"default"``: ``"c"``, ``"c/0"``, ``"c/0/0"``, ...
    """
    if encoding == "v2":
        return ".".join(["0"] * ndim) if ndim else "0"
    if encoding == "default":
        return "c/" + "/".join(["0"] * ndim) if ndim else "c"
    raise ValueError(f"encoding: expected 'v2' or 'default', got {encoding!r}")


def array_metadata(
    data_type: str,
    shape: Sequence[int],
    dims: Sequence[str],
    *,
    codecs: Sequence[Mapping[str, Any]],
    key_encoding: str,
    fill_value: Any,
    attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``zarr.json`` document of a single-chunk array (a zero-length dimension gets chunk 1).

    Parameters
    ----------
    data_type : str
        Zarr v3 data type (``"float64"``, ``"int64"``, ``"bool"``, ``"string"``).
    shape, dims : sequence
        Shape and ``dimension_names``.
    codecs : sequence of mapping
        The codec pipeline (e.g. :data:`CRC32C_CODECS` or :func:`catalog_codecs`).
    key_encoding : {"v2", "default"}
        Chunk key encoding (see :func:`chunk_key`).
    fill_value : object
        The fill value as JSON (``0``, ``0.0``, ``"NaN"``, ``False``, ``""``).
    attributes : mapping, optional
        The array's attributes.
    """
    return {
        "attributes": dict(attributes or {}),
        "chunk_grid": {
            "configuration": {"chunk_shape": [max(int(n), 1) for n in shape]},
            "name": "regular",
        },
        "chunk_key_encoding": {
            "configuration": dict(_KEY_ENCODINGS[key_encoding]["configuration"]),
            "name": key_encoding,
        },
        "codecs": [dict(c) for c in codecs],
        "data_type": data_type,
        "dimension_names": list(dims),
        "fill_value": fill_value,
        "node_type": "array",
        "shape": [int(n) for n in shape],
        "storage_transformers": [],
        "zarr_format": 3,
    }


def catalog_codecs(data_type: str, level: int) -> list[dict[str, Any]]:
    """Codecs of a catalog array: ``vlen-utf8`` (strings) or ``bytes``, then ``gzip``."""
    if data_type == "string":
        first: dict[str, Any] = {"configuration": {}, "name": "vlen-utf8"}
    elif data_type == "bool":
        first = {"name": "bytes"}
    else:
        first = {"configuration": {"endian": "little"}, "name": "bytes"}
    return [first, {"configuration": {"level": level}, "name": "gzip"}]


def group_metadata(
    attributes: Mapping[str, Any] | None = None,
    consolidated: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``zarr.json`` document of a group; with ``consolidated``, inline consolidated
    metadata (child path -> its document)."""
    doc: dict[str, Any] = {
        "attributes": dict(attributes or {}),
        "node_type": "group",
        "zarr_format": 3,
    }
    if consolidated is not None:
        doc["consolidated_metadata"] = {
            "kind": "inline",
            "metadata": dict(consolidated),
            "must_understand": False,
        }
    return doc


def gzip_chunk(raw: bytes, level: int) -> bytes:
    """gzip chunk bytes (mtime 0, so equal input gives equal bytes).

    The standard library's zlib, not numcodecs: importing numcodecs scans every installed
    package's entry points (~1 s), more than reading a whole 10 000-fit catalog.
    """
    return gzip.compress(raw, compresslevel=level, mtime=0)


def gunzip_limited(blob: bytes, limit: int) -> bytes:
    """gzip-decompress at most ``limit`` bytes (a small bomb never inflates past it).

    Raises
    ------
    ZarrFormatError
        If the data would inflate past ``limit``.
    OSError, EOFError, zlib.error
        If ``blob`` is not gzip data.
    """
    d = zlib.decompressobj(wbits=31)  # gzip container
    out = d.decompress(blob, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise ZarrFormatError(f"chunk inflates past the {limit} bytes its shape allows")
    return out + d.flush() if not d.eof else out


def vlen_utf8_encode(values: np.ndarray) -> bytes:
    """Zarr's ``vlen-utf8`` layout: item count, then (length, UTF-8 bytes) per item (LE u32)."""
    parts = [struct.pack("<I", values.size)]
    for v in values.reshape(-1):
        b = str(v).encode("utf-8")
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def vlen_utf8_decode(raw: bytes, count: int) -> np.ndarray:
    """Inverse of :func:`vlen_utf8_encode`: ``count`` strings as an object array.

    Raises
    ------
    ZarrFormatError
        On a count mismatch, truncation or trailing bytes.
    """
    if len(raw) < 4 or struct.unpack_from("<I", raw, 0)[0] != count:
        raise ZarrFormatError("vlen-utf8: item count does not match the shape")
    out = np.empty(count, dtype=object)
    pos = 4
    for i in range(count):
        if pos + 4 > len(raw):
            raise ZarrFormatError("vlen-utf8: truncated")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise ZarrFormatError("vlen-utf8: truncated")
        out[i] = raw[pos : pos + n].decode("utf-8")
        pos += n
    if pos != len(raw):
        raise ZarrFormatError("vlen-utf8: trailing bytes")
    return out
