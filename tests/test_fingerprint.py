"""Tests for gamstore.fingerprint (keys layer): Fingerprint, Fingerprinter, hash_array.

Digests are checked against byte streams assembled by hand here (independent of the module's
encoder), so a framing change is caught, not just self-consistency.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import struct
import tracemalloc
import warnings
from collections.abc import Iterator

import blake3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gamstore.fingerprint as fpmod
from gamstore.fingerprint import (
    Fingerprint,
    Fingerprinter,
    hash_array,
    key_fingerprint,
)

# --------------------------------------------------------------------------------------------
# independent reference encoder
# --------------------------------------------------------------------------------------------

CANON_NAN = {2: 0x7E00, 4: 0x7FC00000, 8: 0x7FF8000000000000}


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def frame(code: int, tag: str) -> bytes:
    t = tag.encode()
    return bytes([code]) + struct.pack("<I", len(t)) + t


def b3(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def ref_array_encoding(a: np.ndarray) -> bytes:
    """Simple reference: dtype, ndim, shape, then one full canonical C-order LE copy."""
    le = a.dtype.newbyteorder("<")
    dt = le.str.encode()
    out = u64(len(dt)) + dt + u64(a.ndim) + b"".join(u64(d) for d in a.shape)
    c = np.array(a, dtype=le, order="C", copy=True).reshape(-1)
    if a.dtype.kind in "fc":
        comp = c.view(np.dtype(f"<f{le.itemsize // 2}")) if a.dtype.kind == "c" else c
        with np.errstate(invalid="ignore"):
            comp[comp == 0] = 0.0  # -0.0 -> +0.0
        nan = np.isnan(comp)
        comp.view(f"<u{comp.itemsize}")[nan] = CANON_NAN[comp.itemsize]
    return out + c.tobytes()


def ref_hash_array(a: np.ndarray) -> bytes:
    dom = b"gamstore-array-v1"
    return b3(u64(len(dom)) + dom + ref_array_encoding(a))


@contextlib.contextmanager
def chunk_bytes(n: int) -> Iterator[None]:
    """Force the streaming path with tiny chunks/blocks so small arrays span many of them."""
    names = ("CHUNK_BYTES", "_SMALL_BYTES")
    old = [getattr(fpmod, k) for k in names]
    for k, v in zip(names, (n, 0), strict=True):
        setattr(fpmod, k, v)
    try:
        yield
    finally:
        for k, v in zip(names, old, strict=True):
            setattr(fpmod, k, v)


def f64_from_bits(bits: int) -> float:
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


# --------------------------------------------------------------------------------------------
# 1-2. Fingerprint type, hex and JSON
# --------------------------------------------------------------------------------------------


def test_fingerprint_hex_round_trip_and_case() -> None:
    fp = Fingerprinter().write_str("x").finalize()
    h = fp.hex()
    assert len(h) == 64 and h == h.lower() and all(c in "0123456789abcdef" for c in h)
    assert h == fp.digest.hex()
    assert Fingerprint.from_hex(h) == fp
    assert Fingerprint.from_hex(h.upper()) == fp
    assert str(fp) == h
    assert repr(fp) == f"Fingerprint('{h}')"
    assert bytes(fp) == fp.digest and len(fp.digest) == 32


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0" * 63,
        "0" * 65,
        "g" + "0" * 63,
        " " + "0" * 63,
        "0" * 63 + " ",
        "0" * 64 + "\n",
        "0x" + "0" * 62,
        "+" + "0" * 63,
        "é" * 64,
        "٠" * 64,  # Arabic-Indic digit zero: a Unicode digit, not ASCII hex
        "0" * 32 + " " + "0" * 31,
        None,
        123,
        b"0" * 64,
    ],
)
def test_from_hex_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="64 hex"):
        Fingerprint.from_hex(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Fingerprint.from_json(bad)


def test_fingerprint_json_form_is_quoted_hex() -> None:
    fp = key_fingerprint("inner", "k")
    text = json.dumps({"key": fp.to_json()})
    assert text == '{"key": "' + fp.hex() + '"}'
    assert Fingerprint.from_json(json.loads(text)["key"]) == fp
    with pytest.raises(ValueError):
        Fingerprint.from_json(json.loads('"' + fp.hex()[:-1] + 'z"'))


def test_fingerprint_constructor_validates() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Fingerprint(b"\x00" * 31)
    with pytest.raises(ValueError, match="32 bytes"):
        Fingerprint(b"\x00" * 33)
    with pytest.raises(TypeError, match="32 bytes"):
        Fingerprint("0" * 32)  # type: ignore[arg-type]
    assert Fingerprint(bytearray(32)) == Fingerprint(memoryview(bytes(32)))


def test_fingerprint_immutable_hashable_ordered() -> None:
    fps = [Fingerprinter().write_u64(i).finalize() for i in range(50)]
    fp = fps[0]
    with pytest.raises(AttributeError):
        fp._digest = b"\x00" * 32  # type: ignore[misc]
    with pytest.raises(AttributeError):
        fp.other = 1  # type: ignore[attr-defined]
    assert {fp: 1}[Fingerprint(fp.digest)] == 1
    assert len(set(fps)) == 50
    assert [f.digest for f in sorted(fps)] == sorted(f.digest for f in fps)
    lo, hi = Fingerprint(b"\x00" * 32), Fingerprint(b"\x00" * 31 + b"\x01")
    assert lo < hi and lo <= hi and hi > lo and hi >= lo and lo != hi and not lo == hi
    assert lo != lo.digest  # no equality with raw bytes
    with pytest.raises(TypeError):
        _ = lo < lo.digest  # type: ignore[operator]
    assert pickle.loads(pickle.dumps(fp)) == fp


class _Newtype(Fingerprint):
    __slots__ = ()


def test_subclass_round_trips_as_itself() -> None:
    import copy

    fp = Fingerprinter().write_str("sub").finalize()
    sub = _Newtype.from_hex(fp.hex())
    assert type(sub) is _Newtype and type(_Newtype.from_json(fp.to_json())) is _Newtype
    assert type(pickle.loads(pickle.dumps(sub))) is _Newtype
    assert type(copy.deepcopy(sub)) is _Newtype
    assert sub == fp and hash(sub) == hash(fp)


# --------------------------------------------------------------------------------------------
# 3-4. tagged frames
# --------------------------------------------------------------------------------------------


def test_frames_match_hand_assembled_bytes() -> None:
    arr = np.array([[1.5, -0.0], [np.nan, 2.0]])
    f = (
        Fingerprinter()
        .absorb_tag("t0")
        .absorb_bytes("t1", b"ab")
        .absorb_str("t2", "hé")
        .absorb_u64("t3", 2**64 - 1)
        .absorb_f64("t4", -0.0)
        .absorb_array("t5", arr)
    )
    expected = (
        frame(0, "t0")
        + frame(1, "t1")
        + u64(2)
        + b"ab"
        + frame(2, "t2")
        + u64(3)
        + "hé".encode()
        + frame(3, "t3")
        + b"\xff" * 8
        + frame(4, "t4")
        + struct.pack("<d", 0.0)
        + frame(5, "t5")
        + ref_array_encoding(arr)
    )
    assert f.finalize().digest == b3(expected)
    assert (fpmod.TYPE_TAG, fpmod.TYPE_BYTES, fpmod.TYPE_STR) == (0, 1, 2)
    assert (fpmod.TYPE_U64, fpmod.TYPE_F64, fpmod.TYPE_ARRAY) == (3, 4, 5)


def test_same_tag_different_type_never_collides() -> None:
    bits = struct.unpack("<Q", struct.pack("<d", 1.25))[0]
    digests = {
        Fingerprinter().absorb_u64("v", bits).finalize(),
        Fingerprinter().absorb_f64("v", 1.25).finalize(),
        Fingerprinter().absorb_bytes("v", struct.pack("<d", 1.25)).finalize(),
        Fingerprinter().absorb_str("v", "abc").finalize(),
        Fingerprinter().absorb_bytes("v", b"abc").finalize(),
        Fingerprinter().absorb_array("v", np.array([1.25])).finalize(),
        Fingerprinter().absorb_tag("v").finalize(),
        Fingerprinter().absorb_bytes("v", b"").finalize(),
        Fingerprinter().absorb_str("v", "").finalize(),
    }
    assert len(digests) == 9
    # a bare tag differs from an empty-bytes frame of the same tag
    assert Fingerprinter().absorb_tag("x").finalize() != (
        Fingerprinter().absorb_bytes("x", b"").finalize()
    )


def test_tag_boundaries_are_framed() -> None:
    # moving bytes between tag and payload must not collide
    a = Fingerprinter().absorb_str("ab", "c").finalize()
    b = Fingerprinter().absorb_str("a", "bc").finalize()
    c = Fingerprinter().absorb_tag("ab").absorb_tag("c").finalize()
    d = Fingerprinter().absorb_tag("a").absorb_tag("bc").finalize()
    assert a != b and c != d


def test_failed_absorb_leaves_state_untouched() -> None:
    base = Fingerprinter().write_str("ns")
    expected = base.copy().finalize()
    with pytest.raises(TypeError):
        base.absorb_array("x", np.array(["s"]))
    with pytest.raises(TypeError):
        base.absorb_u64("x", 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        base.absorb_u64("x", -1)
    with pytest.raises(TypeError):
        base.absorb_str("x", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        base.absorb_tag(b"tag")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        base.absorb_bytes(1, b"")  # type: ignore[arg-type]
    assert base.finalize() == expected


# --------------------------------------------------------------------------------------------
# 5-6. untagged writes
# --------------------------------------------------------------------------------------------


def test_write_encodings_match_hand_assembled_bytes() -> None:
    f = (
        Fingerprinter()
        .write_bytes(b"\x01\x02")
        .write_u8(255)
        .write_bool(True)
        .write_bool(np.bool_(False))
        .write_u64(7)
        .write_usize(np.int64(9))
        .write_f64(2.5)
        .write_str("ü")
        .write_array(np.arange(3, dtype=np.int32))
    )
    expected = (
        b"\x01\x02"
        + b"\xff"
        + b"\x01\x00"
        + u64(7)
        + u64(9)
        + struct.pack("<d", 2.5)
        + u64(2)
        + "ü".encode()
        + ref_array_encoding(np.arange(3, dtype=np.int32))
    )
    assert f.finalize().digest == b3(expected)


def test_write_f64_normalises_negative_zero_but_keeps_nan_bits() -> None:
    assert Fingerprinter().write_f64(-0.0).finalize() == Fingerprinter().write_f64(0.0).finalize()
    assert Fingerprinter().write_f64(np.float64(-0.0)).finalize().digest == b3(u64(0))
    nan_a, nan_b = f64_from_bits(0x7FF8000000000000), f64_from_bits(0x7FF8000000000001)
    da = Fingerprinter().write_f64(nan_a).finalize()
    db = Fingerprinter().write_f64(nan_b).finalize()
    assert da != db
    assert db.digest == b3(u64(0x7FF8000000000001))
    assert Fingerprinter().write_f64(3).finalize() == Fingerprinter().write_f64(3.0).finalize()


def test_write_str_and_bytes_framing() -> None:
    # write_str carries a length; write_bytes does not
    assert Fingerprinter().write_str("ab").write_str("c").finalize() != (
        Fingerprinter().write_str("a").write_str("bc").finalize()
    )
    assert Fingerprinter().write_bytes(b"ab").write_bytes(b"c").finalize() == (
        Fingerprinter().write_bytes(b"a").write_bytes(b"bc").finalize()
    )
    mv = memoryview(np.arange(4, dtype=np.uint16).tobytes()).cast("H")
    assert Fingerprinter().write_bytes(mv).finalize().digest == b3(mv.tobytes())


def test_large_and_many_small_writes_are_batched_exactly() -> None:
    big = "x" * 200_000
    f = Fingerprinter()
    expected = bytearray()
    for i in range(20_000):
        f.write_u64(i)
        expected += u64(i)
    f.write_str(big).absorb_bytes("b", b"y" * 100_000).write_bytes(b"z" * 70_000)
    expected += u64(len(big)) + big.encode() + frame(1, "b") + u64(100_000) + b"y" * 100_000
    expected += b"z" * 70_000
    assert f.finalize().digest == b3(bytes(expected))


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda f: f.write_u64(-1), ValueError),
        (lambda f: f.write_u64(2**64), ValueError),
        (lambda f: f.write_u64(1.0), TypeError),
        (lambda f: f.write_u64(True), TypeError),
        (lambda f: f.write_u64("1"), TypeError),
        (lambda f: f.write_usize(-3), ValueError),
        (lambda f: f.write_u8(256), ValueError),
        (lambda f: f.write_u8(-1), ValueError),
        (lambda f: f.write_bool(1), TypeError),
        (lambda f: f.write_f64("1.0"), TypeError),
        (lambda f: f.write_f64(True), TypeError),
        (lambda f: f.write_f64(10**400), ValueError),
        (lambda f: f.write_str(b"x"), TypeError),
        (lambda f: f.write_str("\ud800"), ValueError),
        (lambda f: f.write_bytes("x"), TypeError),
        (lambda f: f.write_bytes(np.zeros(3)), TypeError),
        (lambda f: f.write_bytes(memoryview(np.zeros((3, 4))[:, 1])), ValueError),
        (lambda f: f.write_array(np.array([object()])), TypeError),
        (lambda f: f.write_array(np.array(["a", "b"])), TypeError),
        (lambda f: f.write_array(np.array([b"a"])), TypeError),
        (lambda f: f.write_array(np.array(["2020-01-01"], dtype="M8[D]")), TypeError),
        (lambda f: f.write_array(np.zeros(2, dtype=[("a", "f8")])), TypeError),
        (lambda f: f.write_array(np.ma.masked_array([1.0, 2.0], mask=[0, 1])), TypeError),
        (lambda f: f.write_array([[1.0], [2.0, 3.0]]), TypeError),
        (lambda f: f.write_array(None), TypeError),
        (lambda f: f.write_array("abc"), TypeError),
        (lambda f: f.write_matrix(np.zeros(3)), ValueError),
        (lambda f: f.write_matrix(np.zeros((2, 2, 2))), ValueError),
    ],
)
def test_bad_arguments_raise_clear_errors(call: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        call(Fingerprinter())  # type: ignore[operator]


def test_longdouble_has_no_padding_ambiguity() -> None:
    ld = np.zeros(2, dtype=np.longdouble)
    if ld.dtype.itemsize == 8:  # platforms where long double is plain float64
        assert hash_array(ld) == hash_array(np.zeros(2))
    else:  # x87 80-bit values in 12/16 bytes: padding bytes are undefined, so refused
        with pytest.raises(TypeError, match="extended precision"):
            hash_array(ld)
        with pytest.raises(TypeError, match="extended precision"):
            hash_array(ld.astype(np.clongdouble))


def test_error_messages_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"write_u64 value: expected an integer in \[0, 2\*\*64\)"):
        Fingerprinter().write_u64(-5)
    with pytest.raises(TypeError, match=r"absorb_str\('lbl'\) value: expected str"):
        Fingerprinter().absorb_str("lbl", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected a 2-D array of shape \(n_rows, n_cols\)"):
        Fingerprinter().write_matrix(np.zeros(4))
    with pytest.raises(TypeError, match="'<U1' is not hashable"):
        hash_array(np.array(["a"]))


# --------------------------------------------------------------------------------------------
# 7. finalizers
# --------------------------------------------------------------------------------------------


def test_finish_u64_and_hex() -> None:
    found_leading_zero = False
    for i in range(400):
        f = Fingerprinter().write_u64(i)
        d = f.finalize().digest
        u = f.finish_u64()
        assert u == int.from_bytes(d[:8], "little")
        h = f.finish_hex()
        assert len(h) == 16 and h == h.lower() and int(h, 16) == u
        assert h == f.finalize().finish_hex()
        found_leading_zero |= h.startswith("0")
    assert found_leading_zero  # zero padding exercised (P = 1 - (15/16)**400)


def test_finalize_is_not_consuming_and_copy_is_independent() -> None:
    f = Fingerprinter().write_str("a")
    first = f.finalize()
    assert f.finalize() == first
    g = f.copy()
    f.write_u8(1)
    assert g.finalize() == first
    assert f.finalize() != first
    assert f.finalize().digest == b3(u64(1) + b"a" + b"\x01")


# --------------------------------------------------------------------------------------------
# array encoding: canonicalisation, layouts, streaming
# --------------------------------------------------------------------------------------------


def test_hash_array_matches_reference_small_cases() -> None:
    cases = [
        np.array(3.0),
        np.zeros((0,)),
        np.zeros((3, 0)),
        np.array([True, False]),
        np.arange(12, dtype=np.int16).reshape(3, 4),
        np.array([1.0, -0.0, np.nan, np.inf, -np.inf]),
        np.array([1 + 2j, complex(-0.0, np.nan)]),
        np.array([-0.0, np.nan], dtype=np.float16),
        np.array([-0.0, np.nan], dtype=np.float32),
        np.arange(6, dtype=">u4").reshape(2, 3),
    ]
    for a in cases:
        assert hash_array(a).digest == ref_hash_array(a), a


def test_negative_zero_and_nan_payloads_fold() -> None:
    a = np.array([0.0, 1.0, np.nan])
    b = np.array([-0.0, 1.0, -f64_from_bits(0x7FF0000000000123)])  # signed, other payload
    assert np.isnan(b[2])
    assert hash_array(a) == hash_array(b)
    with np.errstate(invalid="ignore"):
        assert hash_array(a.astype(np.float32)) == hash_array(b.astype(np.float32))
    # ... but dtype still matters
    assert hash_array(a) != hash_array(a.astype(np.float32))


@pytest.mark.parametrize("n", [3, 40, 5000])  # Python path, numpy small path, streaming
def test_signalling_nans_fold_without_warnings(n: int) -> None:
    for width, snan, qnan in [
        (8, 0x7FF0000000000001, 0x7FF8000000000000),
        (4, 0x7F800001, 0x7FC00000),
    ]:
        bits = np.zeros(n, dtype=f"<u{width}")
        bits[n // 2] = snan
        bits[0] = 1 << (8 * width - 1)  # -0.0
        x = bits.view(f"<f{width}")
        y = np.zeros(n, dtype=f"<f{width}")
        y[n // 2] = np.array([qnan], dtype=f"<u{width}").view(f"<f{width}")[0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert hash_array(x) == hash_array(y)
            assert hash_array(x.astype(x.dtype.newbyteorder())) == hash_array(y)


def test_shape_and_dtype_enter_the_digest() -> None:
    a = np.arange(4, dtype=np.int64)
    assert hash_array(a) != hash_array(a.reshape(2, 2))
    assert hash_array(a) != hash_array(a.reshape(1, 4))
    assert hash_array(a) != hash_array(a.view(np.float64))  # same bytes, other dtype
    assert hash_array(np.zeros((0, 3))) != hash_array(np.zeros((3, 0)))
    assert hash_array(np.zeros(0, np.int8)) != hash_array(np.zeros(0, np.uint8))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_array_like_inputs_accepted() -> None:
    assert hash_array([1.0, 2.0]) == hash_array(np.array([1.0, 2.0]))  # type: ignore[arg-type]
    m = np.asmatrix(np.eye(2))
    assert hash_array(m) == hash_array(np.eye(2))


def _layout_variants(a: np.ndarray) -> list[np.ndarray]:
    """Equal-valued arrays in other layouts and byte orders."""
    out = [np.array(a, order="F"), a.astype(a.dtype.newbyteorder(), order="F")]
    out.append(a.astype(a.dtype.newbyteorder()))
    big = np.zeros(tuple(2 * d + 1 for d in a.shape), dtype=a.dtype)
    sl = tuple(slice(1, None, 2) for _ in a.shape)
    big[sl] = a
    out.append(big[sl])  # strided view
    if a.ndim >= 1:
        rev = np.ascontiguousarray(a[::-1])
        out.append(rev[::-1])  # negative strides
    if a.ndim >= 2:
        out.append(np.ascontiguousarray(a.T).T)  # transposed view
    return out


@pytest.mark.parametrize("chunk", [8, 24, 40, 1 << 12])
@pytest.mark.parametrize(
    "shape", [(1,), (7,), (5, 3), (3, 5), (64, 9), (2, 3, 4), (33, 1), (1, 33), (4, 3, 2, 3)]
)
@pytest.mark.parametrize("dtype", ["f8", "f4", "f2", "c16", "i8", "u2", "b1"])
def test_streaming_chunks_match_reference(chunk: int, shape: tuple[int, ...], dtype: str) -> None:
    rng = np.random.default_rng(hash((shape, dtype)) & 0xFFFF)
    a = (rng.standard_normal(shape) * 4).astype(dtype)
    if a.dtype.kind == "f":
        flat = a.reshape(-1)
        flat[:: max(1, flat.size // 3)] = -0.0
        flat[1 :: max(2, flat.size // 2)] = np.nan
    ref = ref_hash_array(a)
    with chunk_bytes(chunk):
        assert hash_array(a).digest == ref
        for v in _layout_variants(a):
            assert hash_array(v).digest == ref, (v.flags, v.strides, v.dtype)


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_chunk_boundaries(delta: int) -> None:
    with chunk_bytes(80):  # 10 float64 per flat chunk
        n = 10 + delta
        a = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
        a[a.shape[0] - 1, 2] = -0.0  # last element, last chunk
        a[3, 0] = np.nan  # first element of the second row block
        a.reshape(-1)[9] = -f64_from_bits(0x7FF8000000000042)  # last of the first flat chunk
        ref = ref_hash_array(a)
        for v in [a, np.asfortranarray(a), a.astype(">f8"), *_layout_variants(a)]:
            assert hash_array(v).digest == ref


@pytest.mark.parametrize("order", ["C", "F", "strided", "big", "bigF", "3d"])
def test_real_chunk_size_large_arrays(order: str) -> None:
    # bigger than several real chunks, with awkward row counts (not multiples of the block)
    rng = np.random.default_rng(7)
    base = rng.standard_normal((2731, 211))
    base[::101, 5] = -0.0
    base[3::211, 210] = np.nan
    assert base.nbytes > 4 * fpmod.CHUNK_BYTES
    ref = ref_hash_array(base)
    if order == "C":
        v = base.copy()
    elif order == "F":
        v = np.asfortranarray(base)
    elif order == "strided":
        v = np.repeat(base, 2, axis=1)[:, ::2]
    elif order == "big":
        v = base.astype(">f8")
    elif order == "bigF":
        v = base.astype(">f8", order="F")
    else:
        b3d = np.asfortranarray(base[:2730].reshape(91, 30, 211))
        assert hash_array(b3d).digest == ref_hash_array(b3d)
        return
    assert hash_array(v).digest == ref


def test_wide_column_major_matrix_real_blocks() -> None:
    # the min-rows floor makes blocks bigger than the chunk; rows not a multiple of 32
    a = np.random.default_rng(5).standard_normal((101, 3000))
    a[100, 2999] = -0.0
    a[32, 0] = np.nan
    for v in [np.asfortranarray(a), a.astype(">f8", order="F")]:
        assert hash_array(v).digest == ref_hash_array(a)


def test_wide_rows_larger_than_chunk() -> None:
    with chunk_bytes(64):  # a row (12 values = 96 bytes) exceeds the buffer
        a = np.arange(5 * 12, dtype=np.float64).reshape(5, 12)
        a[2, 7] = -0.0
        for v in [a, np.asfortranarray(a), a.astype(">f8", order="F"), *_layout_variants(a)]:
            assert hash_array(v).digest == ref_hash_array(a)


@pytest.mark.parametrize("order", ["C", "F", "big"])
def test_streaming_makes_no_full_copy(order: str) -> None:
    a = np.random.default_rng(1).standard_normal((4096, 256))  # 8 MiB
    if order == "F":
        a = np.asfortranarray(a)
    elif order == "big":
        a = a.astype(">f8")
    hash_array(a)  # warm the per-thread scratch buffers
    tracemalloc.start()
    try:
        hash_array(a)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < a.nbytes // 4, peak


def test_write_array_equals_write_matrix_and_streams_independent_of_chunk() -> None:
    a = np.random.default_rng(3).standard_normal((300, 7))
    d1 = Fingerprinter().write_matrix(a).finalize()
    with chunk_bytes(56):
        d2 = Fingerprinter().write_array(np.asfortranarray(a)).finalize()
    assert d1 == d2
    assert d1.digest == b3(ref_array_encoding(a))


# --------------------------------------------------------------------------------------------
# 10-12. frame-level guarantees used by term identities, descriptor keys and keyspaces
# --------------------------------------------------------------------------------------------


def _term_identity(
    role: int, name: str, labels: list[str | None], nulls: list[int], width: int
) -> Fingerprint:
    f = Fingerprinter().absorb_tag("fit-artifact-block-identity-v2")
    f.absorb_u64("role", role).absorb_str("block_name", name)
    f.absorb_u64("n_penalties", len(labels))
    for lab in labels:
        if lab is None:
            f.absorb_tag("label-none")
        else:
            f.absorb_str("label", lab)
    f.absorb_u64("n_nullspace", len(nulls))
    for d in nulls:
        f.absorb_u64("nullspace_dim", d)
    return f.absorb_u64("reduced_width", width).finalize()


def test_term_identity_frames_change_with_each_field() -> None:
    base = dict(role=1, name="s(x0)", labels=["ps", None], nulls=[1], width=9)
    ref = _term_identity(**base)  # type: ignore[arg-type]
    variants = [
        dict(base, role=2),
        dict(base, name="s(x1)"),
        dict(base, labels=["ps"]),
        dict(base, labels=["ps", "ps"]),
        dict(base, labels=[None, "ps"]),
        dict(base, labels=["ps", ""]),  # empty label differs from no label
        dict(base, nulls=[2]),
        dict(base, nulls=[1, 0]),
        dict(base, width=10),
    ]
    seen = {ref}
    for v in variants:
        fp = _term_identity(**v)  # type: ignore[arg-type]
        assert fp not in seen, v
        seen.add(fp)
    assert _term_identity(**base) == ref  # type: ignore[arg-type]


def _descriptor(family: str, terms: list[Fingerprint]) -> Fingerprint:
    f = Fingerprinter().absorb_tag("fit-artifact-descriptor-v1").absorb_str("family_kind", family)
    ordered = sorted(terms)  # ascending byte order
    f.absorb_u64("n_terms", len(ordered))
    for t in ordered:
        f.absorb_bytes("term", bytes(t))
    return f.finalize()


def test_descriptor_sorting_by_bytes_is_order_invariant() -> None:
    terms = [_term_identity(1, f"s(x{i})", ["ps"], [1], 9) for i in range(6)]
    rng = np.random.default_rng(0)
    d = _descriptor("poisson", terms)
    for _ in range(10):
        perm = [terms[i] for i in rng.permutation(len(terms))]
        assert _descriptor("poisson", perm) == d
    assert _descriptor("binomial", terms) != d
    assert _descriptor("poisson", terms + [terms[0]]) != d  # multiset, duplicates kept
    assert _descriptor("poisson", terms[:-1]) != d


def test_keyspaces_are_disjoint() -> None:
    spaces = ["inner", "block", "outer", "artifact", "from"]
    keys = ["cf-0123456789abcdef", "", "a/b", "inner"]
    seen = {key_fingerprint(s, k) for s in spaces for k in keys}
    assert len(seen) == len(spaces) * len(keys)
    assert key_fingerprint("inner", "x") == key_fingerprint("inner", "x")
    assert key_fingerprint("in", "nerx") != key_fingerprint("inner", "x")
    with pytest.raises(TypeError):
        key_fingerprint("inner", 3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Hypothesis properties
# --------------------------------------------------------------------------------------------

_DTYPES = st.sampled_from(
    [np.dtype(t) for t in ["<f8", "<f4", "<f2", "<c16", "<i8", "<i4", "<u1", "<i2", "?"]]
)
_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dt = draw(_DTYPES)
    shape = draw(_SHAPES)
    return draw(hnp.arrays(dt, shape))


_PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPS
@given(a=arrays(), chunk=st.sampled_from([0, 8, 16, 48]))
def test_prop_equal_values_any_layout_equal_digest(a: np.ndarray, chunk: int) -> None:
    ref = ref_hash_array(a)
    # chunk 0: the default settings (small-array paths); otherwise forced streaming
    with chunk_bytes(chunk) if chunk else contextlib.nullcontext():
        assert hash_array(a).digest == ref
        for v in _layout_variants(a):
            assert hash_array(v).digest == ref


def _bits_differ(x: np.ndarray, y: np.ndarray) -> bool:
    """True when two scalars of one dtype differ as canonical values."""
    if x.dtype.kind in "fc":
        xc = np.atleast_1d(x).view(f"f{x.dtype.itemsize // (2 if x.dtype.kind == 'c' else 1)}")
        yc = np.atleast_1d(y).view(xc.dtype)
        return not all((p == q) or (p != p and q != q) for p, q in zip(xc, yc, strict=True))
    return bool(x != y)


@_PROPS
@given(a=arrays().filter(lambda a: a.size > 0), data=st.data())
def test_prop_any_single_element_change_changes_digest(a: np.ndarray, data: st.DataObject) -> None:
    idx = data.draw(st.tuples(*[st.integers(0, d - 1) for d in a.shape]))
    new = data.draw(hnp.from_dtype(a.dtype))
    b = a.copy()
    b[idx] = new
    if _bits_differ(np.asarray(a[idx]), np.asarray(b[idx])):
        assert hash_array(a) != hash_array(b)
    else:
        assert hash_array(a) == hash_array(b)


@_PROPS
@given(a=arrays(), other=_DTYPES, reshape_seed=st.integers(0, 3))
def test_prop_dtype_or_shape_change_changes_digest(
    a: np.ndarray, other: np.dtype, reshape_seed: int
) -> None:
    h = hash_array(a)
    if other != a.dtype:
        with np.errstate(all="ignore"), warnings.catch_warnings():  # lossy casts are fine
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            cast = a.astype(other)
        assert hash_array(cast) != h
    shapes = [(a.size,), (1, a.size), (a.size, 1), a.shape + (1,)]
    s = shapes[reshape_seed]
    if s != a.shape:
        assert hash_array(a.reshape(s)) != h


_TAGS = st.text(max_size=8)
_PAYLOAD = st.binary(max_size=16)


def _absorb(kind: int, tag: str, payload: bytes) -> Fingerprint:
    f = Fingerprinter()
    if kind == 0:
        f.absorb_tag(tag)
    elif kind == 1:
        f.absorb_bytes(tag, payload)
    elif kind == 2:
        f.absorb_str(tag, payload.decode("latin-1"))
    elif kind == 3:
        f.absorb_u64(tag, int.from_bytes(payload[:8].ljust(8, b"\0"), "little"))
    elif kind == 4:
        f.absorb_f64(tag, struct.unpack("<d", payload[:8].ljust(8, b"\0"))[0])
    else:
        f.absorb_array(tag, np.frombuffer(payload, dtype=np.uint8))
    return f.finalize()


@_PROPS
@given(t1=_TAGS, t2=_TAGS, k1=st.integers(0, 5), k2=st.integers(0, 5), payload=_PAYLOAD)
def test_prop_different_tags_or_types_never_collide(
    t1: str, t2: str, k1: int, k2: int, payload: bytes
) -> None:
    if (t1, k1) == (t2, k2):
        assert _absorb(k1, t1, payload) == _absorb(k2, t2, payload)
    else:
        assert _absorb(k1, t1, payload) != _absorb(k2, t2, payload)


@_PROPS
@given(items=st.lists(st.tuples(st.integers(0, 5), _TAGS, _PAYLOAD), min_size=1, max_size=5))
def test_prop_tagged_stream_matches_hand_encoding(
    items: list[tuple[int, str, bytes]],
) -> None:
    f = Fingerprinter()
    expected = bytearray()
    for kind, tag, payload in items:
        expected += frame(kind, tag)
        if kind == 0:
            f.absorb_tag(tag)
        elif kind == 1:
            f.absorb_bytes(tag, payload)
            expected += u64(len(payload)) + payload
        elif kind == 2:
            s = payload.decode("latin-1")
            f.absorb_str(tag, s)
            expected += u64(len(s.encode())) + s.encode()
        elif kind == 3:
            v = int.from_bytes(payload[:8].ljust(8, b"\0"), "little")
            f.absorb_u64(tag, v)
            expected += u64(v)
        elif kind == 4:
            x = struct.unpack("<d", payload[:8].ljust(8, b"\0"))[0]
            f.absorb_f64(tag, x)
            expected += struct.pack("<d", 0.0 if x == 0.0 else x)
        else:
            arr = np.frombuffer(payload, dtype=np.uint8)
            f.absorb_array(tag, arr)
            expected += ref_array_encoding(arr)
    assert f.finalize().digest == b3(bytes(expected))


# --------------------------------------------------------------------------------------------
# robustness: inputs are never modified; odd buffers; threads
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [5, 50_000])  # small path and streaming path
def test_input_is_never_modified(n: int) -> None:
    a = np.arange(n, dtype=np.float64)
    a[0] = -0.0
    a[1] = f64_from_bits(0xFFF8000000000BAD)  # negative NaN with a payload
    before = a.view(np.uint64).copy()
    f = np.asfortranarray(np.tile(a[:, None], (1, 3)))
    f_before = f.view(np.uint64).copy()
    hash_array(a)
    hash_array(f)
    assert np.array_equal(a.view(np.uint64), before)
    assert np.array_equal(f.view(np.uint64), f_before)


def test_read_only_unaligned_and_memmap_like_inputs() -> None:
    a = np.random.default_rng(2).standard_normal(20_000)
    ref = ref_hash_array(a)
    ro = a.copy()
    ro.flags.writeable = False
    assert hash_array(ro).digest == ref
    raw = b"\x00" + a.tobytes()
    unaligned = np.frombuffer(raw, dtype="<f8", offset=1)
    assert not unaligned.flags.aligned
    assert hash_array(unaligned).digest == ref
    assert hash_array(unaligned[:10]).digest == ref_hash_array(a[:10])


def test_concurrent_threads_give_consistent_digests() -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal((3000, 40 + i)) for i in range(6)]
    arrays += [np.asfortranarray(x) for x in arrays]
    expected = [ref_hash_array(x) for x in arrays]
    with ThreadPoolExecutor(max_workers=4) as ex:
        for _ in range(3):
            got = list(ex.map(lambda x: hash_array(x).digest, arrays))
            assert got == expected


# --------------------------------------------------------------------------------------------
# Threaded hash_array (BLAKE3 on every core, canonicalisation in a worker): same digests
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def threaded_from(min_bytes: int, block_bytes: int) -> Iterator[None]:
    """Take the threaded path for arrays of ``min_bytes`` and more, in tiny blocks."""
    names = ("_THREADED_MIN_BYTES", "_THREADED_BLOCK_BYTES", "CHUNK_BYTES", "_SMALL_BYTES")
    old = [getattr(fpmod, k) for k in names]
    for k, v in zip(names, (min_bytes, block_bytes, 16, 0), strict=True):
        setattr(fpmod, k, v)
    try:
        yield
    finally:
        for k, v in zip(names, old, strict=True):
            setattr(fpmod, k, v)


_THREADED_DTYPES = st.sampled_from(
    [np.dtype(t) for t in ["<f8", ">f8", "<f4", "<f2", "<c16", "<i8", ">i8", "<i4", "?"]]
)


@st.composite
def threaded_cases(draw: st.DrawFn) -> np.ndarray:
    dt = draw(_THREADED_DTYPES)
    # up to 4096 values: with 8-byte blocks that is thousands of pipeline steps already
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=16))
    a = draw(hnp.arrays(dt, shape))
    if a.dtype.kind == "f" and a.size:  # values that need canonicalising, in any block
        flat = a.reshape(-1)
        flat[draw(st.integers(0, a.size - 1))] = -0.0
        flat[draw(st.integers(0, a.size - 1))] = np.nan
    if a.ndim == 2 and draw(st.booleans()):
        a = np.asfortranarray(a)  # the column-major path
    return a


@_PROPS
@given(a=threaded_cases(), block=st.sampled_from([8, 24, 56, 1000]))
def test_prop_threaded_hash_array_equals_the_plain_reference(a: np.ndarray, block: int) -> None:
    plain = fpmod._hash_array_reference(a)  # default settings, one thread
    assert plain.digest == ref_hash_array(a)
    with threaded_from(1, block):
        assert fpmod._threaded_layout(a) in ("C", "F")
        assert hash_array(a) == plain
        assert hash_array(np.ascontiguousarray(a)) == plain


def test_threaded_path_is_taken_for_large_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = fpmod._stream_threaded

    def spy(hasher: object, a: np.ndarray, plan: object) -> None:
        calls.append(a.nbytes)
        original(hasher, a, plan)  # type: ignore[arg-type]

    monkeypatch.setattr(fpmod, "_stream_threaded", spy)
    monkeypatch.setattr(fpmod, "_THREADED_MIN_BYTES", 1 << 21)
    rng = np.random.default_rng(3)
    big = rng.standard_normal((4096, 80))  # 2.5 MiB
    big[::7, 5] = -0.0
    for v in (big, np.asfortranarray(big), big.astype(">f8"), np.arange(400_000)):
        calls.clear()
        assert hash_array(v) == fpmod._hash_array_reference(v)
        assert calls == [v.nbytes]
    calls.clear()
    hash_array(big[:, ::2])  # a strided view keeps the single-threaded stream
    assert calls == []


# --------------------------------------------------------------------------------------------
# every path of write_array / hash_array equals the package's plain reference
# --------------------------------------------------------------------------------------------

_PATH_DTYPES = st.sampled_from(
    [np.dtype(t) for t in ["<f8", ">f8", "<f4", "<f2", "<c16", "<i8", ">i4", "<u1", "?"]]
)


@st.composite
def any_layout(draw: st.DrawFn) -> np.ndarray:
    """Arrays of every size class (tiny, small, streamed) in C, F, strided, reversed and
    byte-swapped layouts, with -0.0 and NaN payloads where floats allow."""
    dt = draw(_PATH_DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=30))
    a = draw(hnp.arrays(dt, shape))
    if a.dtype.kind == "f" and a.size:
        flat = a.reshape(-1)
        flat[draw(st.integers(0, a.size - 1))] = -0.0
        flat[draw(st.integers(0, a.size - 1))] = np.nan
    view = draw(st.sampled_from(["C", "F", "step", "rev", "T"]))
    if view == "F":
        a = np.asfortranarray(a)
    elif view == "step" and a.ndim:
        a = a[::2]
    elif view == "rev" and a.ndim:
        a = a[::-1]
    elif view == "T":
        a = a.T
    return a


@_PROPS
@given(a=any_layout(), prefix=st.text(max_size=20), chunk=st.sampled_from([0, 8, 64, 200]))
def test_prop_every_path_equals_the_package_reference(
    a: np.ndarray, prefix: str, chunk: int
) -> None:
    ref = fpmod._array_encoding_reference(a)
    assert ref == ref_array_encoding(a)  # the package's reference is the test's own
    head = u64(len(prefix.encode())) + prefix.encode()
    # chunk 0: the default sizes (one-copy path for these arrays); else forced streaming
    with chunk_bytes(chunk) if chunk else contextlib.nullcontext():
        got = Fingerprinter().write_str(prefix).write_array(a).finalize().digest
        assert got == b3(head + ref)
        assert hash_array(a) == fpmod._hash_array_reference(a)
        assert fpmod._hash_array_one_thread(a) == fpmod._hash_array_reference(a)
    with threaded_from(1, 64):  # the threaded pipeline for every C or column-major array
        assert hash_array(a) == fpmod._hash_array_reference(a)
