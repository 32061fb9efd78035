"""Content fingerprints: the keys layer of gamstore.

A :class:`Fingerprint` is a 32-byte BLAKE3 digest. A :class:`Fingerprinter` builds one from a
stream of typed values using the framing of the ``gam`` crate's Fingerprinter (SHA-256 there,
BLAKE3 here), so keys are a pure function of the values fed in:

Tagged ("absorb") frames
    Every ``absorb_*`` call writes a frame header, then a payload::

        type code (1 byte) | tag length (u32 LE) | tag (UTF-8) | payload

    Type codes (:data:`TYPE_TAG` ... :data:`TYPE_ARRAY`):

    ====  =========  ============================================================
    code  name       payload
    ====  =========  ============================================================
    0     TAG        none
    1     BYTES      u64 LE length, then the raw bytes
    2     STR        u64 LE UTF-8 length, then the UTF-8 bytes
    3     U64        8 bytes LE
    4     F64        IEEE-754 bits, 8 bytes LE (-0.0 written as +0.0, NaN bits as-is)
    5     ARRAY      the array encoding below
    ====  =========  ============================================================

    Different tags, or different types over the same payload, therefore never produce the
    same byte stream (and a bare tag differs from an empty-bytes frame).

Untagged ("write") calls
    ``write_*`` calls append their encoding with no type code and no tag; the caller frames
    the stream (conventionally with a leading namespace string). ``write_u64`` /
    ``write_usize`` are 8 bytes LE, ``write_u8`` / ``write_bool`` one byte, ``write_f64`` is
    the IEEE bits LE with -0.0 normalised to +0.0 but NaN payloads kept as they are (as the
    reference specification requires), ``write_str`` is the u64 UTF-8 length then the
    UTF-8 bytes, and ``write_bytes`` is the raw bytes with no length.

Array encoding (``write_array``, ``absorb_array`` payload, :func:`hash_array`)
    ``write_str(dtype string in little-endian form)`` (e.g. ``"<f8"``, ``"|b1"``), the number
    of dimensions as u64, each extent as u64, then every value in logical C order,
    little-endian. Floating values are canonicalised: -0.0 becomes +0.0 and every NaN becomes
    the one canonical quiet NaN of its width (``0x7ff8000000000000`` for float64). Integers
    and booleans are hashed as they are. Equal values in C order, F order, strided views or
    byte-swapped copies therefore hash equal, while a different dtype or shape does not.

    Three ways to the same bytes: an array up to 64 KiB is canonicalised in one temporary
    copy; a larger one is streamed through a reused per-thread scratch buffer of
    :data:`CHUNK_BYTES` bytes, never as a full copy (C-ordered input in flat chunks, anything
    else in blocks of leading-axis rows); :func:`hash_array` of a very large one uses every
    core (below). Each is checked against :func:`_array_encoding_reference`, the plain
    implementation (one canonical copy), by property tests. The bytes fed to BLAKE3 are
    exactly those of the whole canonical array, so **the digest does not depend on the chunk
    size or on where BLAKE3 updates split** and a design matrix of any size can simply be
    passed to ``write_array``
    (:meth:`Fingerprinter.write_matrix` adds a 2-D shape check). This replaces the
    reference's per-chunk ``(chunk_rows, ncols)`` headers: keys here never need to match the
    Rust ones.

:func:`hash_array` of a large array (16 MiB and more, C-contiguous or column-major 2-D) uses
every core: BLAKE3 spreads each update over its threads while one worker thread canonicalises
the next block into the other of two buffers (column-major input transposed back to row order
block by block). The byte stream, and so every key, is the one of the plain reference (a
property test compares them).

Everything here is pure computation: no I/O, no global state besides per-thread scratch
buffers.
"""

from __future__ import annotations

import cmath
import math
import re
import struct
import threading
from typing import Any, Final

import blake3
import numpy as np

__all__ = [
    "CHUNK_BYTES",
    "DIGEST_SIZE",
    "TYPE_ARRAY",
    "TYPE_BYTES",
    "TYPE_F64",
    "TYPE_STR",
    "TYPE_TAG",
    "TYPE_U64",
    "Fingerprint",
    "Fingerprinter",
    "hash_array",
    "key_fingerprint",
]

DIGEST_SIZE: Final = 32
"""Length of a :class:`Fingerprint` in bytes."""

TYPE_TAG: Final = 0
TYPE_BYTES: Final = 1
TYPE_STR: Final = 2
TYPE_U64: Final = 3
TYPE_F64: Final = 4
TYPE_ARRAY: Final = 5

CHUNK_BYTES: int = 1 << 20
"""Size of the scratch buffer that large arrays stream through (does not affect digests)."""

_U64_MAX: Final = (1 << 64) - 1
_U32_MAX: Final = (1 << 32) - 1
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_PACK_U64 = struct.Struct("<Q").pack
_PACK_F64 = struct.Struct("<d").pack
_PACK_FRAME = struct.Struct("<BI").pack  # type code + tag length
_ARRAY_DOMAIN: Final = "gamstore-array-v1"
_KEY_DOMAIN: Final = "gamstore-store-key-v1"
_ARRAY_PREFIX: Final = _PACK_U64(len(_ARRAY_DOMAIN)) + _ARRAY_DOMAIN.encode()
# Arrays up to this size are canonicalised in one temporary copy instead of streamed.
_SMALL_BYTES: int = 1 << 16
# Small pending writes are batched before they reach BLAKE3 (one update per batch).
_PENDING_LIMIT: Final = 1 << 16
# Intermediate BLAKE3 updates end at stream offsets that are multiples of this: an update that
# ends mid-subtree makes the next one restart with narrow SIMD batches (measured: three
# updates of 150 KB cost ~1.5x one of 450 KB, unless split at such offsets). Only the split
# points move; the bytes hashed are the same.
_ALIGN: Final = 1 << 16
# hash_array of arrays this large (C-contiguous, or column-major 2-D) uses every core: BLAKE3
# spreads each update over threads while one worker thread canonicalises the next block.
_THREADED_MIN_BYTES: int = 16 << 20
# Block size of that pipeline: large enough for BLAKE3's threads to pay, two blocks (plus
# their transposition scratch) stay within a shared L3 cache.
_THREADED_BLOCK_BYTES: int = 4 << 20


# --------------------------------------------------------------------------------------------
# Fingerprint
# --------------------------------------------------------------------------------------------


class Fingerprint:
    """A 32-byte BLAKE3 digest.

    Immutable and hashable; equality, hashing and ordering are byte-wise. The text and JSON
    form is 64 lowercase hex characters.

    Parameters
    ----------
    digest : bytes
        Exactly 32 bytes (``bytes``, ``bytearray`` or a byte ``memoryview``).

    Raises
    ------
    TypeError
        If ``digest`` is not bytes-like.
    ValueError
        If ``digest`` is not 32 bytes long.
    """

    __slots__ = ("_digest",)
    _digest: bytes

    def __init__(self, digest: bytes | bytearray | memoryview) -> None:
        if type(digest) is not bytes:
            if not isinstance(digest, bytes | bytearray | memoryview):
                raise TypeError(
                    f"Fingerprint digest: expected 32 bytes, got {type(digest).__name__}"
                )
            digest = bytes(digest)
        if len(digest) != DIGEST_SIZE:
            raise ValueError(f"Fingerprint digest: expected 32 bytes, got {len(digest)} bytes")
        object.__setattr__(self, "_digest", digest)

    @classmethod
    def _trusted(cls, digest: bytes) -> Fingerprint:
        # Skip validation for digests fresh from BLAKE3 (hot path: one key per fit).
        fp = object.__new__(cls)
        object.__setattr__(fp, "_digest", digest)
        return fp

    # -- immutability ------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Fingerprint is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Fingerprint is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._digest,))  # subclasses (newtypes) round-trip as themselves

    # -- accessors ---------------------------------------------------------------------------
    @property
    def digest(self) -> bytes:
        """The 32 raw digest bytes."""
        return self._digest

    def __bytes__(self) -> bytes:
        return self._digest

    def hex(self) -> str:
        """Return the digest as 64 lowercase hex characters, two per byte in byte order."""
        return self._digest.hex()

    def finish_u64(self) -> int:
        """Return the first 8 digest bytes read as a little-endian unsigned integer."""
        return int.from_bytes(self._digest[:8], "little")

    def finish_hex(self) -> str:
        """Return :meth:`finish_u64` as 16 lowercase zero-padded hex characters."""
        return f"{self.finish_u64():016x}"

    @classmethod
    def from_hex(cls, text: str) -> Fingerprint:
        """Parse exactly 64 hex characters (either case).

        Parameters
        ----------
        text : str
            The hex form, e.g. from :meth:`hex`.

        Returns
        -------
        Fingerprint

        Raises
        ------
        ValueError
            If ``text`` is not a string of exactly 64 ASCII hex digits (no whitespace,
            prefix or sign is accepted).
        """
        if not isinstance(text, str) or _HEX64.fullmatch(text) is None:
            shown = repr(text) if len(repr(text)) <= 80 else repr(text)[:77] + "..."
            raise ValueError(f"Fingerprint hex: expected exactly 64 hex characters, got {shown}")
        return cls._trusted(bytes.fromhex(text))

    def to_json(self) -> str:
        """Return the JSON value of this fingerprint: its 64-char lowercase hex string."""
        return self._digest.hex()

    @classmethod
    def from_json(cls, value: object) -> Fingerprint:
        """Inverse of :meth:`to_json`; raises ``ValueError`` on anything but valid hex."""
        return cls.from_hex(value)  # type: ignore[arg-type]  # from_hex validates the type

    # -- comparisons -------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Fingerprint):
            return self._digest == other._digest
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, Fingerprint):
            return self._digest != other._digest
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Fingerprint):
            return self._digest < other._digest
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, Fingerprint):
            return self._digest <= other._digest
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Fingerprint):
            return self._digest > other._digest
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Fingerprint):
            return self._digest >= other._digest
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._digest)

    def __str__(self) -> str:
        return self._digest.hex()

    def __repr__(self) -> str:
        return f"Fingerprint('{self._digest.hex()}')"


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


def _check_u64(value: object, what: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{what}: expected an integer in [0, 2**64), got {type(value).__name__}")
    v = int(value)
    if v < 0 or v > _U64_MAX:
        raise ValueError(f"{what}: expected an integer in [0, 2**64), got {v}")
    return v


def _f64_bytes(value: object, what: str) -> bytes:
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, float | int | np.floating | np.integer
    ):
        raise TypeError(f"{what}: expected a real number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"{what}: {value!r} does not fit in a float64") from None
    if v == 0.0:  # folds -0.0 into +0.0; NaN compares unequal and keeps its bits
        v = 0.0
    return _PACK_F64(v)


def _str_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what}: expected str, got {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what}: string is not encodable as UTF-8 ({exc.reason})") from None


def _bytes_view(value: object, what: str) -> bytes | bytearray | memoryview:
    if isinstance(value, bytes | bytearray):
        return value
    if isinstance(value, memoryview):
        if not value.c_contiguous:
            raise ValueError(f"{what}: memoryview must be C-contiguous")
        return value.cast("B") if value.format != "B" or value.ndim != 1 else value
    if isinstance(value, np.ndarray):
        raise TypeError(f"{what}: got a numpy array; use write_array/absorb_array for arrays")
    raise TypeError(f"{what}: expected bytes, bytearray or memoryview, got {type(value).__name__}")


# --------------------------------------------------------------------------------------------
# array canonicalisation and streaming
# --------------------------------------------------------------------------------------------

# dtype kind -> handled as float (canonicalised) or raw (integers, booleans)
_FLOAT_KINDS: Final = frozenset("fc")
_RAW_KINDS: Final = frozenset("biu")
# canonical quiet NaN bit patterns by float width, and the unsigned view to write them with
_CANON_NAN: Final[dict[int, tuple[np.dtype[Any], int]]] = {
    2: (np.dtype("<u2"), 0x7E00),
    4: (np.dtype("<u4"), 0x7FC00000),
    8: (np.dtype("<u8"), 0x7FF8000000000000),
}


class _Scratch(threading.local):
    """Per-thread reusable scratch buffers (hashing never re-enters within a thread)."""

    def __init__(self) -> None:
        self.bufs: list[np.ndarray] = [np.empty(0, np.uint8), np.empty(0, np.uint8)]

    def get(self, which: int, nbytes: int) -> np.ndarray:
        buf = self.bufs[which]
        if buf.size < nbytes:
            buf = np.empty(max(nbytes, CHUNK_BYTES), np.uint8)
            if nbytes <= 2 * CHUNK_BYTES:  # keep at most ~2 chunks per thread alive
                self.bufs[which] = buf
        return buf


_scratch = _Scratch()


class _ArrayPlan:
    """How one dtype is canonicalised: little-endian dtype, float component, NaN pattern."""

    __slots__ = (
        "dtype",
        "header",
        "is_float",
        "comp",
        "nan_view",
        "nan_bits",
        "zero",
    )
    dtype: np.dtype[Any]
    header: bytes
    is_float: bool
    comp: np.dtype[Any]
    nan_view: np.dtype[Any]
    nan_bits: int
    zero: Any

    def __init__(self, dtype: np.dtype[Any]) -> None:
        kind = dtype.kind
        if kind not in _FLOAT_KINDS and kind not in _RAW_KINDS:
            raise TypeError(
                f"array dtype {dtype.str!r} is not hashable: expected a boolean, integer, "
                "float or complex dtype"
            )
        le = dtype.newbyteorder("<")
        self.dtype = le
        enc = le.str.encode("ascii")
        self.header = _PACK_U64(len(enc)) + enc
        self.is_float = kind in _FLOAT_KINDS
        if self.is_float:
            comp = np.dtype(f"<f{le.itemsize // 2}") if kind == "c" else le
            if comp.itemsize not in _CANON_NAN:
                # long double has platform-specific padding bytes: no stable encoding
                raise TypeError(
                    f"array dtype {dtype.str!r} is not hashable: extended precision floats "
                    "have no portable byte encoding; convert to float64 first"
                )
            self.comp = comp
            self.nan_view, self.nan_bits = _CANON_NAN[comp.itemsize]
            self.zero = le.type(0)


_PLANS: dict[np.dtype[Any], _ArrayPlan] = {}


def _plan(dtype: np.dtype[Any]) -> _ArrayPlan:
    plan = _PLANS.get(dtype)
    if plan is None:
        plan = _ArrayPlan(dtype)
        if len(_PLANS) < 256:
            _PLANS[dtype] = plan
    return plan


def _as_array(value: object, what: str) -> np.ndarray:
    if type(value) is np.ndarray:
        return value
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{what}: masked arrays are not hashable; fill or compress them first")
    if isinstance(value, str | bytes | bytearray | memoryview) or value is None:
        raise TypeError(f"{what}: expected a numpy array, got {type(value).__name__}")
    try:
        return np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{what}: cannot convert {type(value).__name__} to an array") from exc


def _fix_nans(out: np.ndarray, plan: _ArrayPlan) -> None:
    """Replace every NaN in the flat float buffer ``out`` by the canonical quiet NaN."""
    comp = out.view(plan.comp) if out.dtype != plan.comp else out
    # A sum is NaN when any term is NaN, so a finite sum proves there is none; only a
    # non-finite sum (NaN, or infinities/overflow) pays for the elementwise scan.
    if math.isfinite(np.add.reduce(comp)):
        return
    mask = np.isnan(comp)
    if mask.any():
        comp.view(plan.nan_view)[mask] = plan.nan_bits


def _canon_into(out: np.ndarray, src: np.ndarray, plan: _ArrayPlan) -> None:
    """Copy ``src`` into ``out`` (same shape, little-endian dtype), canonicalising floats."""
    if plan.is_float:
        np.add(src, plan.zero, out=out)  # copy + byte order + (-0.0 + 0.0 == +0.0)
    else:
        np.copyto(out, src, casting="equiv")


def _stream(update: Any, a: np.ndarray, plan: _ArrayPlan) -> None:
    """Feed the canonical little-endian C-order bytes of ``a`` to ``update``."""
    n = a.size
    if n == 0:
        return
    isz = plan.dtype.itemsize
    if a.flags.c_contiguous:
        if not plan.is_float and a.dtype == plan.dtype:
            update(a.reshape(-1).view(np.uint8))  # integers already canonical: zero copy
            return
        flat = a.reshape(-1)
        step = max(1, CHUNK_BYTES // isz)
        buf = _scratch.get(0, min(n, step) * isz)
        for s in range(0, n, step):
            m = min(step, n - s)
            out = buf[: m * isz].view(plan.dtype)
            _canon_into(out, flat[s : s + m], plan)
            if plan.is_float:
                _fix_nans(out, plan)
            update(out.view(np.uint8))
        return
    if a.ndim == 1:
        _stream_rows(update, a, plan)
        return
    row_bytes = (n // a.shape[0]) * isz
    if row_bytes > CHUNK_BYTES:
        for i in range(a.shape[0]):  # one row exceeds the buffer: recurse into rows
            _stream(update, a[i], plan)
    else:
        _stream_rows(update, a, plan)


def _stream_rows(update: Any, a: np.ndarray, plan: _ArrayPlan) -> None:
    """Generic path: copy blocks of whole leading-axis rows through the scratch buffer."""
    isz = plan.dtype.itemsize
    row_el = a.size // a.shape[0]
    rows = max(1, CHUNK_BYTES // (row_el * isz))
    buf = _scratch.get(0, min(rows, a.shape[0]) * row_el * isz)
    for i in range(0, a.shape[0], rows):
        blk = a[i : i + rows]
        out = buf[: blk.size * isz].view(plan.dtype).reshape(blk.shape)
        _canon_into(out, blk, plan)
        flat = out.reshape(-1)
        if plan.is_float:
            _fix_nans(flat, plan)
        update(flat.view(np.uint8))


def _threaded_layout(a: np.ndarray) -> str | None:
    """ "C" or "F" when :func:`_stream_threaded` handles ``a``'s layout, else None."""
    if a.flags.c_contiguous:
        return "C"
    if a.ndim == 2 and a.flags.f_contiguous:
        return "F"
    return None


def _stream_threaded(hasher: Any, a: np.ndarray, plan: _ArrayPlan) -> None:
    """Feed the canonical C-order bytes of a large C-contiguous or column-major 2-D array to
    ``hasher`` (a multi-threaded BLAKE3), canonicalising block i+1 in a worker thread while
    block i is hashed. The bytes are exactly those of :func:`_stream`; only the update
    boundaries differ, and they never change a digest."""
    from concurrent.futures import ThreadPoolExecutor

    isz = plan.dtype.itemsize
    fill: Any
    if a.flags.c_contiguous and not plan.is_float and a.dtype == plan.dtype:
        hasher.update(a.reshape(-1).view(np.uint8))  # integers already canonical: zero copy
        return
    if a.flags.c_contiguous:
        flat = a.reshape(-1)
        step = max(1, _THREADED_BLOCK_BYTES // isz)
        starts = list(range(0, flat.size, step))
        bufs = [np.empty(min(step, flat.size) * isz, np.uint8) for _ in range(2)]

        def fill(i: int) -> np.ndarray:
            s = starts[i]
            out = bufs[i % 2][: min(step, flat.size - s) * isz].view(plan.dtype)
            with np.errstate(all="ignore"):  # signalling NaNs / inf sums are expected
                _canon_into(out, flat[s : s + out.size], plan)
                if plan.is_float:
                    _fix_nans(out, plan)
            return out.view(np.uint8)

    else:  # column-major 2-D: row blocks transposed back to row order
        nrow, ncol = a.shape
        rows = max(1, _THREADED_BLOCK_BYTES // max(1, ncol * isz))
        starts = list(range(0, nrow, rows))
        nb = min(rows, nrow) * ncol * isz
        tmps = [np.empty(nb, np.uint8) for _ in range(2)]
        bufs = [np.empty(nb, np.uint8) for _ in range(2)]

        def fill(i: int) -> np.ndarray:
            blk = a[starts[i] : starts[i] + rows]
            r = blk.shape[0]
            t = tmps[i % 2][: r * ncol * isz].view(a.dtype).reshape(ncol, r)
            np.copyto(t, blk.T)  # reads r contiguous values per column
            out = bufs[i % 2][: r * ncol * isz].view(plan.dtype).reshape(r, ncol)
            with np.errstate(all="ignore"):
                _canon_into(out, t.T, plan)
                flat_out = out.reshape(-1)
                if plan.is_float:
                    _fix_nans(flat_out, plan)
            return flat_out.view(np.uint8)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gamstore-hash") as pool:
        pending = pool.submit(fill, 0)
        for i in range(len(starts)):
            block = pending.result()
            if i + 1 < len(starts):
                # into the other buffer: block i-1, which used it, is hashed already
                pending = pool.submit(fill, i + 1)
            hasher.update(block)


# --------------------------------------------------------------------------------------------
# Fingerprinter
# --------------------------------------------------------------------------------------------


class Fingerprinter:
    """Incremental BLAKE3 hasher with typed, framed inputs (see the module docstring).

    All methods return ``self`` so calls can be chained::

        key = Fingerprinter().write_str("my-namespace").write_u64(3).finish_hex()

    :meth:`finalize`, :meth:`finish_u64` and :meth:`finish_hex` do not consume the state:
    more input may follow and they may be called again.
    """

    __slots__ = ("_hasher", "_pending", "_fed", "_threaded")

    def __init__(self) -> None:
        self._hasher = blake3.blake3()
        self._pending = bytearray()
        self._fed = 0  # bytes given to the hasher so far (only steers where updates split)
        self._threaded = False  # True: the hasher uses every core (see hash_array)

    def copy(self) -> Fingerprinter:
        """Return an independent copy of the current state (to reuse a common prefix)."""
        new = Fingerprinter.__new__(Fingerprinter)
        new._hasher = self._hasher.copy()
        new._pending = bytearray(self._pending)
        new._fed = self._fed
        new._threaded = self._threaded
        return new

    def _flush(self) -> None:
        if self._pending:
            self._hasher.update(self._pending)
            self._fed += len(self._pending)
            self._pending.clear()

    def _flush_aligned(self) -> None:
        """Hash the pending bytes up to the last :data:`_ALIGN` stream offset; keep the rest."""
        pend = self._pending
        cut = (self._fed + len(pend)) // _ALIGN * _ALIGN - self._fed
        if cut <= 0:
            return
        self._hasher.update(pend[:cut])
        del pend[:cut]
        self._fed += cut

    def _put(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) > _PENDING_LIMIT:
            self._flush()
            self._hasher.update(data)
            self._fed += len(data)
        else:
            self._pending += data
            if len(self._pending) > _PENDING_LIMIT:
                self._flush_aligned()

    def _frame(self, code: int, tag: object) -> None:
        enc = _str_bytes(tag, "tag")
        if len(enc) > _U32_MAX:
            raise ValueError(f"tag: longer than 2**32 - 1 bytes ({len(enc)})")
        self._pending += _PACK_FRAME(code, len(enc))
        self._pending += enc

    def _array(self, a: np.ndarray, plan: _ArrayPlan) -> None:
        pend = self._pending
        pend += plan.header
        pend += _PACK_U64(a.ndim)
        for d in a.shape:
            pend += _PACK_U64(d)
        if a.size == 0:
            return
        if a.size * plan.dtype.itemsize <= _SMALL_BYTES:
            # small arrays (the common per-fit case): one canonical copy, no scratch buffer
            if plan.is_float:
                with np.errstate(all="ignore"):  # signalling NaNs / inf sums are expected
                    c = np.add(a, plan.zero, dtype=plan.dtype)  # scalar when a is 0-d
                    if not cmath.isfinite(np.add.reduce(c, axis=None)):
                        c = np.array(c, dtype=plan.dtype, order="C", ndmin=1)
                        _fix_nans(c.reshape(-1), plan)
                data = c.tobytes()  # logical C order whatever the layout
            elif a.dtype == plan.dtype:
                data = a.tobytes()
            else:
                data = a.astype(plan.dtype).tobytes()
            pend += data  # header and values reach BLAKE3 in one call (faster than two)
            if len(pend) > _PENDING_LIMIT:
                self._flush_aligned()
            return
        self._flush()
        if (
            self._threaded
            and a.size * plan.dtype.itemsize >= _THREADED_MIN_BYTES
            and _threaded_layout(a) is not None
        ):
            _stream_threaded(self._hasher, a, plan)
            self._fed += a.size * plan.dtype.itemsize
            return
        if plan.is_float:
            with np.errstate(all="ignore"):  # signalling NaNs / inf sums are expected
                _stream(self._hasher.update, a, plan)
        else:
            _stream(self._hasher.update, a, plan)
        self._fed += a.size * plan.dtype.itemsize

    # -- tagged API --------------------------------------------------------------------------
    def absorb_tag(self, tag: str) -> Fingerprinter:
        """Absorb a bare tag frame (type code 0, no payload)."""
        self._frame(TYPE_TAG, tag)
        return self

    def absorb_bytes(self, tag: str, data: bytes | bytearray | memoryview) -> Fingerprinter:
        """Absorb a bytes frame (type code 1): u64 LE length, then the bytes."""
        view = _bytes_view(data, f"absorb_bytes({tag!r}) data")
        self._frame(TYPE_BYTES, tag)
        self._pending += _PACK_U64(len(view))
        self._put(view)
        return self

    def absorb_str(self, tag: str, value: str) -> Fingerprinter:
        """Absorb a string frame (type code 2): u64 LE UTF-8 length, then the UTF-8 bytes."""
        enc = _str_bytes(value, f"absorb_str({tag!r}) value")
        self._frame(TYPE_STR, tag)
        self._pending += _PACK_U64(len(enc))
        self._put(enc)
        return self

    def absorb_u64(self, tag: str, value: int) -> Fingerprinter:
        """Absorb an unsigned 64-bit integer frame (type code 3): 8 bytes LE."""
        packed = _PACK_U64(_check_u64(value, f"absorb_u64({tag!r}) value"))
        self._frame(TYPE_U64, tag)
        self._put(packed)
        return self

    def absorb_f64(self, tag: str, value: float) -> Fingerprinter:
        """Absorb a float64 frame (type code 4): IEEE bits LE, -0.0 as +0.0, NaN bits as-is."""
        packed = _f64_bytes(value, f"absorb_f64({tag!r}) value")
        self._frame(TYPE_F64, tag)
        self._put(packed)
        return self

    def absorb_array(self, tag: str, array: np.ndarray) -> Fingerprinter:
        """Absorb an array frame (type code 5) carrying the array encoding.

        Raises
        ------
        TypeError
            For object, string, void, datetime or extended-precision dtypes.
        """
        a = _as_array(array, f"absorb_array({tag!r}) array")
        plan = _plan(a.dtype)  # validate before the frame header is written
        self._frame(TYPE_ARRAY, tag)
        self._array(a, plan)
        return self

    # -- untagged API ------------------------------------------------------------------------
    def write_bytes(self, data: bytes | bytearray | memoryview) -> Fingerprinter:
        """Append raw bytes (no length prefix)."""
        self._put(_bytes_view(data, "write_bytes data"))
        return self

    def write_u8(self, value: int) -> Fingerprinter:
        """Append one byte, ``0 <= value <= 255``."""
        v = _check_u64(value, "write_u8 value")
        if v > 0xFF:
            raise ValueError(f"write_u8 value: expected an integer in [0, 255], got {v}")
        self._pending.append(v)
        return self

    def write_bool(self, value: bool) -> Fingerprinter:
        """Append one byte, 1 for True and 0 for False."""
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"write_bool value: expected bool, got {type(value).__name__}")
        self._pending.append(1 if value else 0)
        return self

    def write_u64(self, value: int) -> Fingerprinter:
        """Append an unsigned 64-bit integer as 8 bytes LE."""
        self._pending += _PACK_U64(_check_u64(value, "write_u64 value"))
        return self

    def write_usize(self, value: int) -> Fingerprinter:
        """Append a size (non-negative integer) widened to u64, 8 bytes LE."""
        self._pending += _PACK_U64(_check_u64(value, "write_usize value"))
        return self

    def write_f64(self, value: float) -> Fingerprinter:
        """Append a float64 as IEEE bits LE; -0.0 becomes +0.0, NaN payloads are kept."""
        self._pending += _f64_bytes(value, "write_f64 value")
        return self

    def write_str(self, value: str) -> Fingerprinter:
        """Append ``write_usize(len(utf8))`` then the UTF-8 bytes."""
        enc = _str_bytes(value, "write_str value")
        self._pending += _PACK_U64(len(enc))
        self._put(enc)
        return self

    def write_array(self, array: np.ndarray) -> Fingerprinter:
        """Append the array encoding (dtype, ndim, shape, canonical values), streamed.

        Large arrays pass through a reused scratch buffer in chunks; the digest is that of
        the whole canonical byte stream and does not depend on the chunk size, so design
        matrices of any size may be passed directly.

        Raises
        ------
        TypeError
            For object, string, void, datetime or extended-precision dtypes.
        """
        a = _as_array(array, "write_array array")
        self._array(a, _plan(a.dtype))
        return self

    def write_matrix(self, matrix: np.ndarray) -> Fingerprinter:
        """:meth:`write_array` for a design matrix, checking that it is 2-D.

        Raises
        ------
        ValueError
            If ``matrix`` is not two-dimensional (expected shape ``(n_rows, n_cols)``).
        """
        a = _as_array(matrix, "write_matrix matrix")
        if a.ndim != 2:
            raise ValueError(
                f"write_matrix matrix: expected a 2-D array of shape (n_rows, n_cols), "
                f"got shape {a.shape}"
            )
        self._array(a, _plan(a.dtype))
        return self

    # -- finalizers --------------------------------------------------------------------------
    def finalize(self) -> Fingerprint:
        """Return the 32-byte digest of everything written so far."""
        self._flush()
        return Fingerprint._trusted(self._hasher.digest())

    def finish_u64(self) -> int:
        """Return the first 8 digest bytes as a little-endian unsigned integer."""
        return self.finalize().finish_u64()

    def finish_hex(self) -> str:
        """Return :meth:`finish_u64` as 16 lowercase zero-padded hex characters."""
        return f"{self.finish_u64():016x}"


# --------------------------------------------------------------------------------------------
# convenience
# --------------------------------------------------------------------------------------------


def hash_array(array: np.ndarray) -> Fingerprint:
    """Fingerprint one array by its dtype, shape and canonical values.

    The digest is BLAKE3 over ``write_str("gamstore-array-v1")`` followed by the array
    encoding of :meth:`Fingerprinter.write_array`; equal values hash equal whatever the
    memory layout or byte order, and -0.0/NaN variants are folded (see module docstring).

    Parameters
    ----------
    array : numpy.ndarray
        Boolean, integer, float (16/32/64-bit) or complex array of any shape.

    Returns
    -------
    Fingerprint

    Raises
    ------
    TypeError
        If the dtype has no canonical encoding (object, strings, void, datetime, longdouble).
    """
    a = _as_array(array, "hash_array array")
    plan = _plan(a.dtype)
    f = Fingerprinter()
    if a.size * plan.dtype.itemsize >= _THREADED_MIN_BYTES and _threaded_layout(a) is not None:
        # a large array: BLAKE3 on every core, canonicalisation overlapped (same digest)
        f._hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        f._threaded = True
    f._pending += _ARRAY_PREFIX
    f._array(a, plan)
    return f.finalize()


def _hash_array_one_thread(array: np.ndarray) -> Fingerprint:
    """:func:`hash_array` without threads: the single-threaded stream (single-core figures)."""
    f = Fingerprinter()
    f._pending += _ARRAY_PREFIX
    a = _as_array(array, "hash_array array")
    f._array(a, _plan(a.dtype))
    return f.finalize()


def _array_encoding_reference(array: np.ndarray) -> bytes:
    """The array encoding the plain way: header, then ONE canonical little-endian C-order copy.

    The reference every fast path of :meth:`Fingerprinter.write_array` (tiny, small, staged,
    streamed in chunks, transposed, threaded) must reproduce byte for byte (property tests).
    """
    a = _as_array(array, "array")
    plan = _plan(a.dtype)
    out = bytearray(plan.header)
    out += _PACK_U64(a.ndim)
    for d in a.shape:
        out += _PACK_U64(d)
    c = np.array(a, dtype=plan.dtype, order="C", copy=True).reshape(-1)
    if plan.is_float:
        comp = c.view(plan.comp)
        with np.errstate(invalid="ignore"):
            comp[comp == 0] = 0.0  # -0.0 -> +0.0
        comp.view(plan.nan_view)[np.isnan(comp)] = plan.nan_bits
    out += c.tobytes()
    return bytes(out)


def _hash_array_reference(array: np.ndarray) -> Fingerprint:
    """:func:`hash_array` the plain way (one canonical copy, one BLAKE3 call), for tests."""
    data = _ARRAY_PREFIX + _array_encoding_reference(array)
    return Fingerprint._trusted(blake3.blake3(data).digest())


def key_fingerprint(keyspace: str, key: str) -> Fingerprint:
    """Map a caller's key string within a keyspace to the fingerprint naming its folder.

    Keyspaces are disjoint by construction: the keyspace name and the key are separate
    tagged frames, so the same key string under two keyspaces never maps to the same value.

    Parameters
    ----------
    keyspace : str
        ``"inner"``, ``"block"``, ``"outer"``, ``"artifact"``, ``"from"`` (not checked here).
    key : str
        The caller's key string.

    Returns
    -------
    Fingerprint
    """
    return (
        Fingerprinter()
        .absorb_tag(_KEY_DOMAIN)
        .absorb_str("keyspace", keyspace)
        .absorb_str("key", key)
        .finalize()
    )
