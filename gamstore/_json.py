"""Canonical strict JSON: the only text format gamstore writes into storage.

Encoding is canonical (keys sorted by code point, no whitespace, UTF-8, shortest round-trip
float repr), so equal values always give equal bytes. Both directions are strict: non-finite
floats, non-string keys, non-JSON types, duplicate keys and the ``NaN``/``Infinity`` literals
are errors, and the decoder enforces size and nesting limits so hostile input cannot exhaust
memory or the stack. Errors are :class:`JSONValueError` (a ``ValueError``) naming the offending
path, e.g. ``record.rho[3]``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "INT_MAX",
    "INT_MIN",
    "JSONValueError",
    "canonical",
    "canonical_fast",
    "dumps",
    "dumps_bytes",
    "loads",
]

#: Default cap on the size of a document accepted by :func:`loads` (16 MiB, the record cap).
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: Default cap on container nesting (objects and arrays) in either direction.
DEFAULT_MAX_DEPTH = 64
#: Integers must fit int64 in both directions: every reader (numpy columns, xarray, HDF5,
#: ``float()``) handles them, so a stored ``10**400`` or ``2**63`` never crashes one.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
# Longest decimal text of an int64 ("-9223372036854775808"); longer literals are rejected
# before int() converts them (no quadratic conversion of a 4 000-digit literal).
_INT_MAX_DIGITS = 20

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A JSON string literal (escapes included); used to blank strings out before counting brackets.
_STRING_LITERAL = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class JSONValueError(ValueError):
    """A value that is not strict JSON, or a document that is not acceptable.

    Attributes
    ----------
    path : str
        Where the problem is, in ``root.key[index]`` notation (the root name alone for
        document-level problems).
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def _child_key(path: str, key: str) -> str:
    if _IDENT.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=True)}]"


def canonical(value: Any, *, root: str = "value", max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Check that ``value`` is strict JSON and return it as plain Python builtins.

    Accepted: ``None``, ``bool``, ``int`` in the int64 range, finite ``float``, ``str`` (valid Unicode, no lone
    surrogates), lists/tuples and mappings with ``str`` keys of those, and numpy scalar
    numbers/bools (converted to the Python equivalents). Tuples become lists.

    Parameters
    ----------
    value : Any
        The value to check.
    root : str
        Name of the value used at the start of error paths.
    max_depth : int
        Maximum container nesting.

    Returns
    -------
    Any
        An equal value built only from ``dict``, ``list``, ``str``, ``int``, ``float``,
        ``bool`` and ``None``.

    Raises
    ------
    JSONValueError
        Naming the path of the first offending element.
    """
    return _canon(value, root, 0, max_depth)


class _NotPlain(Exception):
    """A value :func:`_plain` leaves to :func:`canonical` (conversion or an exact error)."""


def _plain(value: Any, depth: int) -> Any:
    # Exact builtin types only; anything else (numpy scalars, mappings that are not dicts,
    # non-finite floats, ints beyond int64, lone surrogates, non-str keys, deep nesting)
    # leaves the fast path, so the result and every error are exactly those of canonical().
    t = type(value)
    if t is str:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _NotPlain from None
        return value
    if t is bool or value is None:
        return value
    if t is int:
        if not INT_MIN <= value <= INT_MAX:
            raise _NotPlain
        return value
    if t is float:
        if not math.isfinite(value):
            raise _NotPlain
        return value
    if depth >= DEFAULT_MAX_DEPTH:
        raise _NotPlain
    if t is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _NotPlain
            out[_plain(k, depth)] = _plain(v, depth + 1)
        return out
    if t is list or t is tuple:
        return [_plain(v, depth + 1) for v in value]
    raise _NotPlain


def canonical_fast(value: Any, *, root: str = "value") -> Any:
    """:func:`canonical` with the default depth, fast when ``value`` is made of exact builtins.

    The one exact-type fast path of the package (record fields on every save and load): a
    value of plain ``dict``/``list``/``tuple``/``str``/``int``/``float``/``bool``/``None`` is
    copied without building error paths; anything else goes through :func:`canonical`, so
    results and errors are identical (a property test in tests/test_store_codec_fastpath.py).
    """
    try:
        return _plain(value, 0)
    except _NotPlain:
        return canonical(value, root=root)


def _canon(value: Any, path: str, depth: int, max_depth: int) -> Any:
    # bool before int: bool is an int subclass.
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise JSONValueError(path, "string is not valid Unicode (lone surrogate)") from None
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        i = int(value)
        if not INT_MIN <= i <= INT_MAX:
            raise JSONValueError(path, _int_range_message(i))
        return i
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if not math.isfinite(f):
            raise JSONValueError(path, f"non-finite float {f!r} is not allowed in strict JSON")
        return f
    if isinstance(value, Mapping):
        if depth >= max_depth:
            raise JSONValueError(path, f"nesting deeper than {max_depth} levels")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise JSONValueError(
                    path, f"object key {key!r} has type {type(key).__name__}, expected str"
                )
            child = _child_key(path, key)
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise JSONValueError(child, "key is not valid Unicode") from None
            out[key] = _canon(item, child, depth + 1, max_depth)
        return out
    if isinstance(value, (list, tuple)):
        if depth >= max_depth:
            raise JSONValueError(path, f"nesting deeper than {max_depth} levels")
        return [_canon(item, f"{path}[{i}]", depth + 1, max_depth) for i, item in enumerate(value)]
    raise JSONValueError(
        path,
        f"type {type(value).__name__} is not a JSON type "
        "(expected None, bool, int, finite float, str, list or dict)",
    )


def dumps(value: Any, *, root: str = "value", max_depth: int = DEFAULT_MAX_DEPTH) -> str:
    """Encode ``value`` as canonical strict JSON text.

    Parameters
    ----------
    value : Any
        A strict-JSON value (see :func:`canonical`).
    root : str
        Name used at the start of error paths.
    max_depth : int
        Maximum container nesting.

    Returns
    -------
    str
        Sorted keys, separators ``","`` and ``":"``, non-ASCII characters kept as is.

    Raises
    ------
    JSONValueError
        If ``value`` is not strict JSON.
    """
    plain = _canon(value, root, 0, max_depth)
    return json.dumps(
        plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def dumps_bytes(value: Any, *, root: str = "value", max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode ``value`` as canonical strict JSON, UTF-8 bytes (see :func:`dumps`)."""
    return dumps(value, root=root, max_depth=max_depth).encode("utf-8")


def _int_range_message(value: int) -> str:
    text = str(value) if abs(value) < 10**30 else f"with {len(str(abs(value)))} digits"
    return f"integer {text} is outside the int64 range [-2**63, 2**63 - 1]"


def _int64(text: str) -> int:
    if len(text) > _INT_MAX_DIGITS:
        raise ValueError(f"integer literal of {len(text)} digits is outside the int64 range")
    i = int(text)
    if not INT_MIN <= i <= INT_MAX:
        raise ValueError(_int_range_message(i))
    return i


def _reject_constant(name: str) -> Any:
    raise ValueError(f"literal {name} is not allowed in strict JSON")


def _finite_float(text: str) -> float:
    f = float(text)
    if not math.isfinite(f):
        raise ValueError(f"number {text} overflows to a non-finite float")
    return f


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in pairs:
        if key in out:
            raise ValueError(f"duplicate object key {key!r}")
        out[key] = item
    return out


def _nesting_depth(data: bytes) -> int:
    """Maximum bracket nesting of a JSON document (brackets inside strings ignored)."""
    stripped = _STRING_LITERAL.sub(b'""', data)
    codes = np.frombuffer(stripped, dtype=np.uint8)
    step = (np.isin(codes, (ord("["), ord("{")))).astype(np.int64) - np.isin(
        codes, (ord("]"), ord("}"))
    ).astype(np.int64)
    if step.size == 0:
        return 0
    return int(np.cumsum(step).max())


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def loads(
    data: str | bytes | bytearray | memoryview,
    *,
    root: str = "document",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Decode strict JSON with limits.

    Parameters
    ----------
    data : str or bytes-like
        The document; bytes must be UTF-8 (no byte-order mark).
    root : str
        Name used in error messages.
    max_bytes : int
        Largest accepted document, in UTF-8 bytes.
    max_depth : int
        Deepest accepted nesting of objects/arrays.

    Returns
    -------
    Any
        The decoded value (dict, list, str, int, float, bool or None).

    Raises
    ------
    JSONValueError
        For oversize or too deep documents, invalid UTF-8, syntax errors, ``NaN``/``Infinity``
        literals, numbers that overflow to infinity, integers outside the int64 range,
        duplicate keys and escaped lone surrogates.
    """
    if isinstance(data, str):
        if len(data) > max_bytes:  # cheap pre-check; every char is >= 1 byte
            raise JSONValueError(root, f"document larger than {max_bytes} bytes")
        raw = data.encode("utf-8", errors="surrogatepass")
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        raise TypeError(f"{root}: expected str or bytes, got {type(data).__name__}")
    if len(raw) > max_bytes:
        raise JSONValueError(root, f"document of {len(raw)} bytes exceeds limit {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONValueError(root, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise JSONValueError(root, "byte-order mark is not allowed")
    # Fast path: fewer opening brackets than the limit cannot nest deeper than it.
    if raw.count(b"[") + raw.count(b"{") > max_depth and _nesting_depth(raw) > max_depth:
        raise JSONValueError(root, f"nesting deeper than {max_depth} levels")
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_int64,
            object_pairs_hook=_no_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise JSONValueError(root, f"invalid JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise JSONValueError(root, "nesting too deep") from None
    except ValueError as exc:
        raise JSONValueError(root, str(exc)) from None
    if "\\u" in text.lower() and _has_lone_surrogate(value):
        raise JSONValueError(root, "string contains an escaped lone surrogate")
    return value
