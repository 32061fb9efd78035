"""The codec's fast path for record fields equals ``_json.canonical`` (value and errors).

Property test: for any value built from JSON types, numpy scalars, tuples, non-finite floats,
lone surrogates, non-str keys and deep nesting, ``codec._plain_fields`` returns exactly what
``_json.canonical(value, root="record.fields")`` returns, or raises the same error. Also: the
reused encoder writes the same bytes as ``_json.dumps_bytes``, and the cached key folder is
the fingerprint of the key.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore import _json
from gamstore.fingerprint import key_fingerprint
from gamstore.store import codec
from gamstore.store.layout import key_folder

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["\ud800", "ok\udfff", "é", "(parametric)", "s(x0)"]),
    st.builds(np.float64, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(np.int64, st.integers(min_value=-(2**62), max_value=2**62)),
    st.builds(np.bool_, st.booleans()),
    st.just(np.float64("nan")),
    st.just(b"bytes"),
)

_keys = st.one_of(st.text(max_size=6), st.integers(0, 3), st.just("\udc80"))


def _values() -> st.SearchStrategy[Any]:
    return st.recursive(
        _scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(_keys, inner, max_size=4),
        ),
        max_leaves=20,
    )


def _outcome(fn: Any, value: Any) -> tuple[str, Any]:
    try:
        out = fn(value)
    except (ValueError, TypeError) as exc:
        return ("error", f"{type(exc).__name__}: {exc}")
    return ("ok", out)


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


@settings(max_examples=300, deadline=None)
@given(_values())
def test_plain_fields_equals_canonical(value: Any) -> None:
    fast = _outcome(codec._plain_fields, value)
    slow = _outcome(lambda v: _json.canonical(v, root="record.fields"), value)
    assert fast[0] == slow[0]
    if fast[0] == "error":
        assert fast[1] == slow[1]
        return
    assert fast[1] == slow[1]
    assert _types(fast[1]) == _types(slow[1])  # plain builtins only, the same ones
    assert list(fast[1]) == list(slow[1]) if isinstance(slow[1], dict) else True
    assert codec._trusted_json(fast[1]) == _json.dumps_bytes(slow[1])


def _nest(depth: int) -> Any:
    v: Any = 1.0
    for _ in range(depth):
        v = {"a": [v]}
    return v


@pytest.mark.parametrize("depth", [30, 31, 32, 33, 40])
def test_depth_limit_is_the_same(depth: int) -> None:
    value = _nest(depth)  # 2 containers per level: crosses the 64 limit at 32
    fast = _outcome(codec._plain_fields, value)
    slow = _outcome(lambda v: _json.canonical(v, root="record.fields"), value)
    assert fast == slow


def test_fields_are_copied_not_aliased() -> None:
    inner = {"x": [1, 2]}
    fields = {"inner": inner, "names": ["a"]}
    out = codec._plain_fields(fields)
    assert out == fields and out["inner"] is not inner and out["names"] is not fields["names"]


def test_bad_field_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"record\.fields\.inner\.v: non-finite float"):
        codec._plain_fields({"inner": {"v": float("inf")}})
    with pytest.raises(ValueError, match=r"record\.fields: object key 3"):
        codec._plain_fields({3: 1})


def test_trusted_json_is_canonical() -> None:
    doc = {"b": [1.5, None, True], "a": {"z": "é", "y": 10**18}, "c": 0.1}
    assert codec._trusted_json(doc) == _json.dumps_bytes(doc)
    assert json.loads(codec._trusted_json(doc)) == doc


def test_key_folder_is_the_key_fingerprint() -> None:
    for ks, key in [("block", "cf-1"), ("outer", "cf-1"), ("block", "é" * 300)]:
        assert key_folder(ks, key) == key_fingerprint(ks, key).hex()
        assert key_folder(ks, key) == key_fingerprint(ks, key).hex()  # cached: same answer
    assert key_folder("block", "k") != key_folder("outer", "k")

    class Sub(str):
        pass

    assert key_folder("block", Sub("k")) == key_folder("block", "k")
    with pytest.raises(TypeError, match="key: expected str"):
        key_folder("block", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keyspace"):
        key_folder("nope", "k")
