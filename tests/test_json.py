"""Canonical strict JSON (gamstore._json)."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore import _json
from gamstore._json import JSONValueError, canonical, dumps, dumps_bytes, loads

# strict-JSON values: finite floats (incl. -0.0 and subnormals), int64 ints, any valid text
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)  # beyond: see test_int64_range
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5)
    ),
    max_leaves=30,
)


def _bitwise_equal(a: Any, b: Any) -> bool:
    """Equality that distinguishes int from float and -0.0 from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_bitwise_equal, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_bitwise_equal(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_round_trip_is_exact(value: Any) -> None:
    text = dumps(value)
    assert _bitwise_equal(loads(text), value)
    assert _bitwise_equal(loads(text.encode("utf-8")), value)


@settings(max_examples=200, deadline=None)
@given(_values)
def test_encoding_is_canonical_and_idempotent(value: Any) -> None:
    text = dumps(value)
    assert dumps(loads(text)) == text
    assert dumps_bytes(value) == text.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=6), st.integers(-(2**63), 2**63 - 1), min_size=2, max_size=8)
)
def test_key_order_does_not_change_bytes(d: dict[str, int]) -> None:
    reversed_d = dict(reversed(list(d.items())))
    assert dumps(d) == dumps(reversed_d)


def test_format_sorted_compact_utf8() -> None:
    assert dumps({"b": [1, 2.5], "a": None, "é": "ü"}) == '{"a":null,"b":[1,2.5],"é":"ü"}'
    assert dumps_bytes({"é": 1}) == '{"é":1}'.encode()
    assert dumps(-0.0) == "-0.0"
    assert dumps(1.0) == "1.0"  # floats stay floats
    assert dumps((1, 2)) == "[1,2]"


def test_numpy_scalars_become_builtins() -> None:
    out = canonical({"a": np.float64(1.5), "b": np.int64(3), "c": np.bool_(True)})
    assert out == {"a": 1.5, "b": 3, "c": True}
    assert type(out["a"]) is float and type(out["b"]) is int and type(out["c"]) is bool


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_encoder_rejects_non_finite_naming_path(bad: float) -> None:
    with pytest.raises(JSONValueError, match=r"^record\.rho\[3\]: non-finite") as info:
        dumps({"rho": [0.0, 1.0, 2.0, bad]}, root="record")
    assert info.value.path == "record.rho[3]"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({1: "x"}, "value"),
        ({"a": {"b": {3, 4}}}, "value.a.b"),
        ({"a": b"bytes"}, "value.a"),
        ({"a": [np.zeros(2)]}, "value.a[0]"),
        ({"odd key": object()}, 'value["odd key"]'),
        ({"a": 1 + 2j}, "value.a"),
        ({"s": "\ud800"}, "value.s"),
    ],
)
def test_encoder_rejects_non_json_types_naming_path(value: Any, path: str) -> None:
    with pytest.raises(JSONValueError) as info:
        dumps(value)
    assert info.value.path == path
    assert str(info.value).startswith(path + ":")


def test_encoder_depth_limit() -> None:
    deep: Any = 0
    for _ in range(10):
        deep = [deep]
    assert loads(dumps(deep, max_depth=10), max_depth=10) == deep
    with pytest.raises(JSONValueError, match="nesting deeper than 9"):
        dumps(deep, max_depth=9)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ('{"a":NaN}', "NaN"),
        ("[Infinity]", "Infinity"),
        ("[-Infinity]", "-Infinity"),
        ("[1e400]", "non-finite"),
        ("[-1e400]", "non-finite"),
        ('{"a":1,"a":2}', "duplicate object key 'a'"),
        ('{"x":[{"k":1,"k":1}]}', "duplicate object key 'k'"),
        ("[1,]", "invalid JSON"),
        ('{"a":1} trailing', "invalid JSON"),
        ("", "invalid JSON"),
        ('"\\ud800"', "lone surrogate"),
        ("\ufeff[1]", "byte-order mark"),
    ],
)
def test_decoder_rejects(doc: str, message: str) -> None:
    with pytest.raises(JSONValueError, match=message):
        loads(doc)


def test_decoder_rejects_invalid_utf8() -> None:
    with pytest.raises(JSONValueError, match="not valid UTF-8"):
        loads(b'["\xff"]')


def test_decoder_depth_limit_is_enforced_without_recursion_error() -> None:
    hostile = "[" * 100_000 + "]" * 100_000
    with pytest.raises(JSONValueError, match="nesting deeper than 64"):
        loads(hostile)
    ok = "[" * 64 + "]" * 64
    assert loads(ok) is not None
    with pytest.raises(JSONValueError, match="nesting deeper"):
        loads("[" * 65 + "]" * 65)


def test_decoder_ignores_brackets_inside_strings_for_depth() -> None:
    doc = dumps({"s": "[[[[[[[[[[{{{{{{{{{{" * 20, "t": 'quote \\" [[[['})
    assert loads(doc, max_depth=2)["s"].startswith("[[[")


def test_decoder_size_limit() -> None:
    doc = dumps(["x" * 1000])
    assert loads(doc, max_bytes=len(doc)) == ["x" * 1000]
    with pytest.raises(JSONValueError, match="exceeds limit"):
        loads(doc.encode(), max_bytes=len(doc) - 1)
    with pytest.raises(JSONValueError, match="larger than"):
        loads(doc, max_bytes=10)
    assert _json.DEFAULT_MAX_BYTES == 16 * 1024 * 1024


def test_decoder_type_error_for_non_text() -> None:
    with pytest.raises(TypeError, match="expected str or bytes"):
        loads(123)  # type: ignore[arg-type]


def test_error_names_custom_root() -> None:
    with pytest.raises(JSONValueError, match=r"^marker: duplicate"):
        loads('{"a":1,"a":1}', root="marker")


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.integers(min_value=2**63, max_value=10**450),
        st.integers(min_value=-(10**450), max_value=-(2**63) - 1),
    )
)
def test_int64_range_both_directions(big: int) -> None:
    # A stored 2**63 or 10**400 crashed every int64/float reader (views, catalog, float()).
    with pytest.raises(JSONValueError, match=r"record\.n: .*int64 range"):
        dumps({"n": big}, root="record")
    with pytest.raises(JSONValueError, match="int64 range"):
        canonical([big])
    text = '{"n": ' + str(big) + "}"
    with pytest.raises(JSONValueError, match="int64 range"):
        loads(text)
    with pytest.raises(JSONValueError, match="int64 range"):
        loads(text.encode())


def test_int64_bounds_are_accepted() -> None:
    for edge in (_json.INT_MIN, _json.INT_MAX, 0, -1):
        assert loads(dumps([edge])) == [edge]
    assert loads("-9223372036854775808") == -(2**63)
    with pytest.raises(JSONValueError, match="int64 range"):
        loads("9223372036854775808")
    with pytest.raises(JSONValueError, match="int64 range"):
        loads("0" * 0 + "1" + "0" * 400)  # 10**400: never converted (digit count first)
