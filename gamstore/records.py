"""Persisted warm-start records and the record <-> store protocol.

Every stored type is an immutable dataclass with a ``RECORD_TYPE`` name, ``to_parts()``
(strict-JSON fields plus named float64/int64 arrays) and ``from_parts(fields, arrays)``
(validating, raising ``ValueError``/``TypeError`` naming the field). See
``docs/architecture.md`` for the contract and spec §4.2-§5 for the semantics.

Record types defined here:

* :class:`WarmStartRecord` (record A, keyspace ``inner``): one flat β vector.
* :class:`BlockWarmStartRecord` (record B, keyspace ``block``): per-block β, active sets and an
  optional :class:`InnerSummary`.
* :class:`IteratePayload` (keyspaces ``outer`` and ``from``): an outer iterate, schema 3, with
  :meth:`IteratePayload.classify` turning a loaded entry into :class:`ExactFinal`,
  :class:`Seed` or :class:`Discard`.

Records A and B (and :class:`gamstore.artifact.FitArtifact`) carry a ``rho_convention``:
which penalty matrix a stored ρ = log λ multiplies (:data:`RHO_CONVENTIONS`). A ρ is only
meaningful together with its convention; entries written before the field existed read as
:data:`DEFAULT_RHO_CONVENTION` (``"mgcv"``).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gamstore import _json
from gamstore._version import __version__

__all__ = [
    "CACHE_VERSION",
    "DEFAULT_RHO_CONVENTION",
    "ITERATE_PAYLOAD_SCHEMA",
    "MAX_ENTRY_BYTES",
    "RECORD_TYPES",
    "RHO_CONVENTIONS",
    "SCHEMA_TAG",
    "ArrayPart",
    "BlockWarmStartRecord",
    "Discard",
    "EntrySource",
    "ExactFinal",
    "InnerSummary",
    "IteratePayload",
    "RecordParts",
    "Seed",
    "WarmStartRecord",
    "as_rho_convention",
    "classify_entry",
    "get_record_type",
    "normalize_active_sets",
    "register_record_type",
]

#: Schema tag entering every key; bumping it walls off all old entries.
SCHEMA_TAG = "gamstore-schema-1"
#: ``version`` field of records A and B; must match on load.
CACHE_VERSION = 1
#: Schema of :class:`IteratePayload` (3: Hessians from the deleted FD path are invalid, #2253).
ITERATE_PAYLOAD_SCHEMA = 3
#: Per-record cap: a larger record is silently not stored, a larger loaded one is ignored.
MAX_ENTRY_BYTES = 16 * 1024 * 1024

#: The ρ conventions a stored ρ = log λ may be in, i.e. which S the λ multiplies
#: (reference fitter §4 item 1). Values of different conventions are never interchangeable.
RHO_CONVENTIONS: dict[str, str] = {
    "mgcv": "λ multiplies S = D'D / S_scale in the reduced basis; deviance D + Σ λ β'Sβ "
    "(gamstore's fitter; mgcv's sp)",
    "statsmodels-alpha": "λ = 2α on statsmodels' cov_der2 (GLMGam penalty weight α)",
    "pygam-lam": "λ is pyGAM's lam on its unscaled difference penalty D'D, deviance scale",
    "custom": "any other scaling known only to the writer",
}
#: Convention of records that do not say (everything written before the field existed).
DEFAULT_RHO_CONVENTION = "mgcv"

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Array names: fixed lower-case words and non-negative integers joined by "/".
_ARRAY_NAME = re.compile(r"[a-z][a-z0-9_]*(/([a-z][a-z0-9_]*|0|[1-9][0-9]*))*\Z")
_DIM_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_RECORD_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


# --------------------------------------------------------------------------------------------
# validation helpers (shared with artifact.py, gauge.py and transfer.py)
# --------------------------------------------------------------------------------------------


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _is_frozen_float64(arr: np.ndarray) -> bool:
    """An owned, read-only, native float64 C array: safe to share without copying."""
    return (
        arr.dtype == np.float64
        and arr.dtype.isnative
        and arr.base is None
        and not arr.flags.writeable
        and arr.flags.c_contiguous
    )


def _check_numeric_dtype(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind not in "fiu" or arr.dtype == np.float16:
        raise TypeError(f"{name}: expected real numbers (float64), got dtype {arr.dtype}")


def as_float_vector(
    value: ArrayLike, name: str, *, length: int | None = None, finite: bool = True
) -> FloatArray:
    """Copy ``value`` into a read-only 1-D float64 array, validating it.

    Parameters
    ----------
    value : array_like
        Real numbers (ints are converted; bools, complex and objects are rejected).
    name : str
        Field name used in error messages.
    length : int, optional
        Required length.
    finite : bool
        Whether every element must be finite.

    Returns
    -------
    numpy.ndarray
        A new read-only float64 array of shape ``(n,)``.
    """
    arr = np.asarray(value)
    _check_numeric_dtype(arr, name)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D vector, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name}: expected length {length}, got {arr.shape[0]}")
    if _is_frozen_float64(arr):
        out = arr  # already an owned read-only float64 copy (e.g. from another record)
    else:
        out = np.array(arr, dtype=np.float64, copy=True, order="C")
    if finite and not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise ValueError(f"{name}: expected finite values, {name}[{bad}] = {out[bad]!r}")
    return _readonly(out)


def as_float_matrix(
    value: ArrayLike, name: str, *, shape: tuple[int, int] | None = None, finite: bool = True
) -> FloatArray:
    """Copy ``value`` into a read-only C-ordered 2-D float64 array, validating it.

    An owned, read-only, native float64 C array is shared rather than copied (it cannot
    change under the caller), as in :func:`as_float_vector`.
    """
    arr = np.asarray(value)
    _check_numeric_dtype(arr, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D matrix, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    if _is_frozen_float64(arr):
        out = arr  # already an owned read-only float64 copy (e.g. a gauge's block slab)
    else:
        out = np.array(arr, dtype=np.float64, copy=True, order="C")
    if finite and not np.isfinite(out).all():
        raise ValueError(f"{name}: expected finite values")
    return _readonly(out)


def as_index_vector(value: ArrayLike, name: str) -> IntArray:
    """Copy ``value`` into a read-only 1-D int64 array of non-negative integers."""
    arr = np.asarray(value)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected non-negative integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D vector, got shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: index too large for int64")
    out = np.array(arr, dtype=np.int64, copy=True)
    if out.size and int(out.min()) < 0:
        raise ValueError(f"{name}: expected non-negative integers, got {int(out.min())}")
    return _readonly(out)


def as_count(value: Any, name: str) -> int:
    """Validate a non-negative integer that fits int64 (bools rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a non-negative int, got {type(value).__name__}")
    out = int(value)
    if not 0 <= out <= _json.INT_MAX:
        shown = out if abs(out) < 10**30 else f"an int of {len(str(abs(out)))} digits"
        raise ValueError(f"{name}: expected a non-negative int <= 2**63 - 1, got {shown}")
    return out


def as_bool(value: Any, name: str) -> bool:
    """Validate a bool (ints rejected)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def as_str(value: Any, name: str) -> str:
    """Validate a str (numpy ``str_`` becomes a plain ``str``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a str, got {type(value).__name__}")
    return str(value)


def _as_seq(value: Any, name: str) -> list[Any]:
    """Validate a sequence argument (so ``None`` or a number names the field)."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name}: expected a sequence, got {type(value).__name__}")
    return list(value)


def as_rho_convention(value: Any, name: str = "rho_convention") -> str:
    """Validate a ρ convention name against :data:`RHO_CONVENTIONS`.

    Raises
    ------
    TypeError
        If ``value`` is not a str.
    ValueError
        If it is not one of the known names.
    """
    text = as_str(value, name)
    if text not in RHO_CONVENTIONS:
        raise ValueError(f"{name}: expected one of {sorted(RHO_CONVENTIONS)}, got {text!r}")
    return text


def as_finite_float(value: Any, name: str) -> float:
    """Validate a finite real number and return it as ``float``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name}: expected a finite float, got {type(value).__name__}")
    try:
        out = float(value)
    except OverflowError:  # an int like 10**400 is not a float
        raise ValueError(
            f"{name}: expected a finite float, got an int beyond float range"
        ) from None
    if not math.isfinite(out):
        raise ValueError(f"{name}: expected a finite float, got {out!r}")
    return out


def as_opt_finite_float(value: Any, name: str) -> float | None:
    """Validate ``None`` or a finite real number."""
    return None if value is None else as_finite_float(value, name)


def _values_equal(a: Any, b: Any) -> bool:
    """Structural equality; arrays compare bitwise (dtype, shape and bytes)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, float) and isinstance(b, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b, strict=True))
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        return a == b
    return type(a) is type(b) and bool(a == b)


class FrozenArrays:
    """Mixin for frozen dataclasses holding arrays: bitwise ``==``, unhashable."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _values_equal(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )


# --------------------------------------------------------------------------------------------
# protocol
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ArrayPart:
    """One array of a record: float64 or int64 data and its dimension names.

    Parameters
    ----------
    data : numpy.ndarray
        float64 or int64 array (any byte order); zero-length arrays are allowed.
    dims : tuple of str
        One lower-case identifier per axis (Zarr ``dimension_names``).
    """

    data: np.ndarray
    dims: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.data, np.ndarray):
            raise TypeError(f"ArrayPart.data: expected numpy.ndarray, got {type(self.data)}")
        if self.data.dtype.kind not in "fi" or self.data.dtype.itemsize != 8:
            raise TypeError(f"ArrayPart.data: expected float64 or int64, got {self.data.dtype}")
        dims = tuple(self.dims)
        if len(dims) != self.data.ndim:
            raise ValueError(
                f"ArrayPart.dims: expected {self.data.ndim} names for shape "
                f"{self.data.shape}, got {dims}"
            )
        for d in dims:
            if not isinstance(d, str) or not _DIM_NAME.match(d):
                raise ValueError(f"ArrayPart.dims: {d!r} is not a lower-case identifier")
        object.__setattr__(self, "dims", dims)


class _NotPlain(Exception):
    """A value :func:`_plain_json` leaves to :func:`gamstore._json.canonical`."""


def _plain_json(value: Any, depth: int) -> Any:
    """What ``_json.canonical`` returns for a value made only of exact builtins (dict with
    str keys, list, tuple, str, int64-range int, finite float, bool, None) within the nesting
    limit;
    raises :class:`_NotPlain` on anything else (numpy scalars, non-finite floats, lone
    surrogates, other types, too deep), for the full check to convert or report."""
    t = type(value)
    if value is None or t is bool:
        return value
    if t is int:
        if _json.INT_MIN <= value <= _json.INT_MAX:
            return value
        raise _NotPlain
    if t is float:
        if math.isfinite(value):
            return value
        raise _NotPlain
    if t is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _NotPlain from None
        return value
    if depth >= _json.DEFAULT_MAX_DEPTH:
        raise _NotPlain
    if t is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise _NotPlain from None
            out[key] = _plain_json(item, depth + 1)
        return out
    if t is list or t is tuple:
        return [_plain_json(item, depth + 1) for item in value]
    raise _NotPlain


@dataclass(frozen=True)
class RecordParts:
    """What a record gives the store: strict-JSON ``fields`` and named ``arrays``.

    Parameters
    ----------
    fields : dict
        Strict-JSON values only (checked on construction, converted to plain builtins).
    arrays : dict of str to ArrayPart
        Names built from fixed words and integer indices (``"rho"``, ``"block_beta/0"``).
    """

    fields: dict[str, Any]
    arrays: dict[str, ArrayPart]

    def __post_init__(self) -> None:
        if not isinstance(self.fields, Mapping):
            raise TypeError("RecordParts.fields: expected a dict")
        try:  # the usual case: plain builtins only, checked without building error paths
            fields = _plain_json(dict(self.fields), 0)
        except _NotPlain:  # anything else: the full check (conversions, exact error paths)
            fields = _json.canonical(dict(self.fields), root="fields")
        object.__setattr__(self, "fields", fields)
        if not isinstance(self.arrays, Mapping):
            raise TypeError("RecordParts.arrays: expected a dict")
        for name, part in self.arrays.items():
            if not isinstance(name, str) or not _ARRAY_NAME.match(name):
                raise ValueError(
                    f"RecordParts.arrays: name {name!r} is not built from fixed lower-case "
                    "words and integer indices"
                )
            if not isinstance(part, ArrayPart):
                raise TypeError(f"RecordParts.arrays[{name!r}]: expected ArrayPart")

    @property
    def nbytes(self) -> int:
        """Approximate stored size: canonical fields JSON plus raw array bytes."""
        return len(_json.dumps_bytes(self.fields)) + sum(
            p.data.nbytes for p in self.arrays.values()
        )


class StoredRecord(Protocol):
    """Structural type of a persisted record (see ``docs/architecture.md``)."""

    RECORD_TYPE: ClassVar[str]

    def to_parts(self) -> RecordParts: ...

    @classmethod
    def from_parts(cls, fields: Mapping[str, Any], arrays: Mapping[str, Any]) -> Any: ...


# modules that register record types on import; imported on the first lookup miss so that
# ``RECORD_TYPES.get("fit_artifact")`` works without the caller importing them (layers stay
# one-way: records never imports artifact at module level)
_REGISTERING_MODULES = ("gamstore.artifact",)


class _Registry(dict[str, type]):
    """A dict that imports the registering model modules once, on the first lookup miss."""

    loaded = False
    # Re-entrant: the imports below register into this very dict from the same thread, while
    # other threads must wait until registration is complete (else they see a miss and a
    # healthy entry would be treated as corrupt).
    _lock = threading.RLock()

    def _load(self) -> None:
        if self.loaded:
            return
        with self._lock:
            if self.loaded:
                return
            for module in _REGISTERING_MODULES:
                importlib.import_module(module)
            self.loaded = True

    def __missing__(self, key: str) -> type:
        self._load()
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not dict.__contains__(self, key):
            self._load()
        return dict.__contains__(self, key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if not dict.__contains__(self, key):
            self._load()
        return dict.get(self, key, default)


#: ``RECORD_TYPE`` -> class, for every registered record type (lookups of a missing name
#: first import the model modules that register themselves, e.g. ``gamstore.artifact``).
RECORD_TYPES: dict[str, type] = _Registry()

_T = TypeVar("_T", bound=type)


def register_record_type(cls: _T) -> _T:
    """Register a record class under its ``RECORD_TYPE`` (usable as a decorator).

    Raises
    ------
    TypeError
        If the class lacks ``RECORD_TYPE``, ``to_parts`` or ``from_parts``.
    ValueError
        If the name is malformed or already taken by a different class.
    """
    name = getattr(cls, "RECORD_TYPE", None)
    if not isinstance(name, str) or not _RECORD_TYPE_NAME.match(name):
        raise ValueError(f"{cls.__name__}.RECORD_TYPE: expected a lower-case identifier")
    for method in ("to_parts", "from_parts"):
        if not callable(getattr(cls, method, None)):
            raise TypeError(f"{cls.__name__}: missing {method}()")
    existing = dict.get(RECORD_TYPES, name)  # plain lookup: never triggers lazy imports
    if existing is not None and (existing.__module__, existing.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise ValueError(f"record type {name!r} is already registered to {existing!r}")
    RECORD_TYPES[name] = cls
    return cls


def get_record_type(name: str) -> type:
    """Return the class registered under ``name`` (importing the model modules if needed).

    Raises
    ------
    ValueError
        If no class is registered under ``name``.
    """
    cls = RECORD_TYPES.get(name)
    if cls is None:
        raise ValueError(f"record type: unknown {name!r} (known: {sorted(RECORD_TYPES)})")
    return cls


class _Fields:
    """Typed access to decoded fields with errors naming ``<record>.<field>``."""

    def __init__(self, fields: Mapping[str, Any], record: str) -> None:
        if not isinstance(fields, Mapping):
            raise TypeError(f"{record}: fields must be a dict, got {type(fields).__name__}")
        self.fields = fields
        self.record = record

    def name(self, key: str) -> str:
        return f"{self.record}.{key}"

    def raw(self, key: str, default: Any = ...) -> Any:
        if key not in self.fields:
            if default is ...:
                raise ValueError(f"{self.name(key)}: missing field")
            return default
        return self.fields[key]

    def count(self, key: str, default: Any = ...) -> int:
        return as_count(self.raw(key, default), self.name(key))

    def string(self, key: str) -> str:
        return as_str(self.raw(key), self.name(key))

    def rho_convention(self) -> str:
        # optional: entries written before the field existed are mgcv-convention
        return as_rho_convention(
            self.raw("rho_convention", DEFAULT_RHO_CONVENTION), self.name("rho_convention")
        )

    def flag(self, key: str, default: Any = ...) -> bool:
        return as_bool(self.raw(key, default), self.name(key))

    def number(self, key: str) -> float:
        return as_finite_float(self.raw(key), self.name(key))

    def opt_number(self, key: str) -> float | None:
        return as_opt_finite_float(self.raw(key, None), self.name(key))

    def list_of(self, key: str, kind: type) -> list[Any]:
        value = self.raw(key)
        if not isinstance(value, list):
            raise TypeError(f"{self.name(key)}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            ok = isinstance(item, kind) and not (kind is int and isinstance(item, bool))
            if not ok:
                raise TypeError(
                    f"{self.name(key)}[{i}]: expected {kind.__name__}, got {type(item).__name__}"
                )
        return value


class _Arrays:
    """Checked access to decoded arrays; :meth:`finish` rejects names nobody asked for."""

    def __init__(self, arrays: Mapping[str, Any], record: str) -> None:
        if not isinstance(arrays, Mapping):
            raise TypeError(f"{record}: arrays must be a dict, got {type(arrays).__name__}")
        self.arrays = {k: (v.data if isinstance(v, ArrayPart) else v) for k, v in arrays.items()}
        self.record = record
        self.used: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.arrays

    def _get(self, key: str, kind: str, ndim: int) -> np.ndarray:
        full = f"{self.record}.{key}"
        if key not in self.arrays:
            raise ValueError(f"{full}: missing array")
        arr = self.arrays[key]
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{full}: expected numpy.ndarray, got {type(arr).__name__}")
        expected = "float64" if kind == "f" else "int64"
        if arr.dtype.kind != kind or arr.dtype.itemsize != 8:
            raise TypeError(f"{full}: expected {expected}, got {arr.dtype}")
        if arr.ndim != ndim:
            raise ValueError(f"{full}: expected {ndim}-D, got shape {arr.shape}")
        self.used.add(key)
        return arr

    def vector(self, key: str, *, finite: bool = True) -> FloatArray:
        return as_float_vector(self._get(key, "f", 1), f"{self.record}.{key}", finite=finite)

    def matrix(self, key: str) -> np.ndarray:
        arr = self._get(key, "f", 2)
        return _readonly(np.array(arr, dtype=np.float64, copy=True, order="C"))

    def indices(self, key: str) -> IntArray:
        return as_index_vector(self._get(key, "i", 1), f"{self.record}.{key}")

    def finish(self) -> None:
        extra = sorted(set(self.arrays) - self.used)
        if extra:
            raise ValueError(f"{self.record}: unexpected arrays {extra}")


def _vec(data: np.ndarray, dim: str) -> ArrayPart:
    return ArrayPart(data, (dim,))


def _now() -> int:
    return int(time.time())


def _check_version(fields: _Fields) -> int:
    return fields.count("version")


# --------------------------------------------------------------------------------------------
# record A
# --------------------------------------------------------------------------------------------


@register_record_type
@dataclass(frozen=True, eq=False)
class WarmStartRecord(FrozenArrays):
    """Record A: inner warm start with one flat β vector (spec §5.1).

    Parameters
    ----------
    key : str
        The full key string, compared on load (collision guard).
    n_rows, n_cols : int
        Shape of the problem the record was solved for.
    rho : array_like
        Log smoothing parameters (finite).
    beta : array_like
        Coefficients (finite); compatible records have ``len(beta) == n_cols``.
    prev_rho, prev_beta : array_like, optional
        The previous accepted iterate, when known.
    last_inner_iters : int
    last_inner_converged : bool
    last_pirls_lm_lambda, last_ift_prediction_residual, last_pirls_accept_rho : float, optional
        Finite diagnostics of the last inner solve, or None.
    version : int
        :data:`CACHE_VERSION` when written by this library.
    package_version : str
        Written, never compared (spec §5.0).
    created_unix_secs, updated_unix_secs : int
        Seconds since the epoch.
    rho_convention : str
        Which penalty ``rho`` multiplies, one of :data:`RHO_CONVENTIONS` (default
        ``"mgcv"``; also what an entry without the field reads as).
    """

    RECORD_TYPE: ClassVar[str] = "warm_start"

    key: str
    n_rows: int
    n_cols: int
    rho: FloatArray = field(default_factory=lambda: np.empty(0))
    beta: FloatArray = field(default_factory=lambda: np.empty(0))
    prev_rho: FloatArray | None = None
    prev_beta: FloatArray | None = None
    last_inner_iters: int = 0
    last_inner_converged: bool = False
    last_pirls_lm_lambda: float | None = None
    last_ift_prediction_residual: float | None = None
    last_pirls_accept_rho: float | None = None
    version: int = CACHE_VERSION
    package_version: str = __version__
    created_unix_secs: int = field(default_factory=_now)
    updated_unix_secs: int = field(default_factory=_now)
    rho_convention: str = DEFAULT_RHO_CONVENTION

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "key", as_str(self.key, "WarmStartRecord.key"))
        s(self, "n_rows", as_count(self.n_rows, "WarmStartRecord.n_rows"))
        s(self, "n_cols", as_count(self.n_cols, "WarmStartRecord.n_cols"))
        s(self, "rho", as_float_vector(self.rho, "WarmStartRecord.rho"))
        s(self, "beta", as_float_vector(self.beta, "WarmStartRecord.beta"))
        if self.prev_rho is not None:
            s(self, "prev_rho", as_float_vector(self.prev_rho, "WarmStartRecord.prev_rho"))
        if self.prev_beta is not None:
            s(self, "prev_beta", as_float_vector(self.prev_beta, "WarmStartRecord.prev_beta"))
        s(
            self,
            "last_inner_iters",
            as_count(self.last_inner_iters, "WarmStartRecord.last_inner_iters"),
        )
        s(
            self,
            "last_inner_converged",
            as_bool(self.last_inner_converged, "WarmStartRecord.last_inner_converged"),
        )
        for name in (
            "last_pirls_lm_lambda",
            "last_ift_prediction_residual",
            "last_pirls_accept_rho",
        ):
            s(self, name, as_opt_finite_float(getattr(self, name), f"WarmStartRecord.{name}"))
        s(self, "version", as_count(self.version, "WarmStartRecord.version"))
        s(
            self,
            "package_version",
            as_str(self.package_version, "WarmStartRecord.package_version"),
        )
        for name in ("created_unix_secs", "updated_unix_secs"):
            s(self, name, as_count(getattr(self, name), f"WarmStartRecord.{name}"))
        s(
            self,
            "rho_convention",
            as_rho_convention(self.rho_convention, "WarmStartRecord.rho_convention"),
        )

    @classmethod
    def new(cls, key: str, n_rows: int, n_cols: int) -> Self:
        """A fresh record: current version, both timestamps now, empty vectors, no options."""
        now = _now()
        return cls(key=key, n_rows=n_rows, n_cols=n_cols, created_unix_secs=now,
                   updated_unix_secs=now)  # fmt: skip

    def is_compatible(
        self, key: str, n_rows: int, n_cols: int, *, rho_convention: str | None = None
    ) -> bool:
        """Whether this record may seed a fit of ``(key, n_rows, n_cols)`` (spec §5.1).

        ``len(rho)`` is not checked here (callers check it); ``package_version`` is ignored.
        With ``rho_convention`` given, the record's convention must equal it.
        """
        return (
            self.version == CACHE_VERSION
            and (rho_convention is None or self.rho_convention == rho_convention)
            and self.key == key
            and self.n_rows == n_rows
            and self.n_cols == n_cols
            and bool(np.isfinite(self.rho).all())
            and self.beta.shape[0] == n_cols
            and bool(np.isfinite(self.beta).all())
            and (
                self.prev_rho is None
                or (
                    self.prev_rho.shape == self.rho.shape and bool(np.isfinite(self.prev_rho).all())
                )
            )
            and (
                self.prev_beta is None
                or (self.prev_beta.shape[0] == n_cols and bool(np.isfinite(self.prev_beta).all()))
            )
        )

    def to_parts(self) -> RecordParts:
        """Fields and arrays for the store (see ``docs/architecture.md``)."""
        fields = {
            "version": self.version,
            "key": self.key,
            "package_version": self.package_version,
            "created_unix_secs": self.created_unix_secs,
            "updated_unix_secs": self.updated_unix_secs,
            "n_rows": self.n_rows,
            "n_cols": self.n_cols,
            "has_prev_rho": self.prev_rho is not None,
            "has_prev_beta": self.prev_beta is not None,
            "last_inner_iters": self.last_inner_iters,
            "last_inner_converged": self.last_inner_converged,
            "last_pirls_lm_lambda": self.last_pirls_lm_lambda,
            "last_ift_prediction_residual": self.last_ift_prediction_residual,
            "last_pirls_accept_rho": self.last_pirls_accept_rho,
            "rho_convention": self.rho_convention,
        }
        arrays = {"rho": _vec(self.rho, "rho"), "beta": _vec(self.beta, "coef")}
        if self.prev_rho is not None:
            # share the "rho" dimension only when the lengths agree (xarray alignment)
            dim = "rho" if self.prev_rho.shape == self.rho.shape else "prev_rho"
            arrays["prev_rho"] = _vec(self.prev_rho, dim)
        if self.prev_beta is not None:
            dim = "coef" if self.prev_beta.shape == self.beta.shape else "prev_coef"
            arrays["prev_beta"] = _vec(self.prev_beta, dim)
        return RecordParts(fields, arrays)

    @classmethod
    def from_parts(cls, fields: Mapping[str, Any], arrays: Mapping[str, Any]) -> Self:
        """Rebuild a record from stored parts, validating every field and array."""
        f = _Fields(fields, "WarmStartRecord")
        a = _Arrays(arrays, "WarmStartRecord")
        has_prev_rho = f.flag("has_prev_rho")
        has_prev_beta = f.flag("has_prev_beta")
        out = cls(
            key=f.string("key"),
            n_rows=f.count("n_rows"),
            n_cols=f.count("n_cols"),
            rho=a.vector("rho"),
            beta=a.vector("beta"),
            prev_rho=a.vector("prev_rho") if has_prev_rho else None,
            prev_beta=a.vector("prev_beta") if has_prev_beta else None,
            last_inner_iters=f.count("last_inner_iters"),
            last_inner_converged=f.flag("last_inner_converged"),
            last_pirls_lm_lambda=f.opt_number("last_pirls_lm_lambda"),
            last_ift_prediction_residual=f.opt_number("last_ift_prediction_residual"),
            last_pirls_accept_rho=f.opt_number("last_pirls_accept_rho"),
            version=_check_version(f),
            package_version=f.string("package_version"),
            created_unix_secs=f.count("created_unix_secs"),
            updated_unix_secs=f.count("updated_unix_secs"),
            rho_convention=f.rho_convention(),
        )
        a.finish()
        return out


# --------------------------------------------------------------------------------------------
# record B
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class InnerSummary(FrozenArrays):
    """Cached inner-solve summary of record B (spec §5.2).

    Parameters
    ----------
    log_likelihood, penalty_value, block_logdet_h, block_logdet_s : float
        Finite values at the cached mode.
    cycles : int
        Inner cycles the solve took.
    converged : bool
        Whether the inner solve converged.
    solved_inner_tol : float, optional
        The (positive, finite) inner tolerance the mode was solved to.
    block_log_lambdas : array_like, optional
        Per-penalty log λ of the blocks the mode was solved at (#2615), flattened in block
        then penalty order.
    joint_log_lambdas : array_like, optional
        The outer (joint) log-λ vector the mode was solved at.

    Notes
    -----
    The Jeffreys/Firth strength is deliberately absent: it comes from the key (#2612). KKT
    residuals, active constraints and the joint workspace are never stored; the next solve
    rebuilds them. Use :meth:`persistable` to apply the write-side gate (non-finite -> None).
    """

    log_likelihood: float
    penalty_value: float
    cycles: int
    converged: bool
    block_logdet_h: float
    block_logdet_s: float
    solved_inner_tol: float | None = None
    block_log_lambdas: FloatArray | None = None
    joint_log_lambdas: FloatArray | None = None

    def __post_init__(self) -> None:
        s = object.__setattr__
        for name in ("log_likelihood", "penalty_value", "block_logdet_h", "block_logdet_s"):
            s(self, name, as_finite_float(getattr(self, name), f"InnerSummary.{name}"))
        s(self, "cycles", as_count(self.cycles, "InnerSummary.cycles"))
        s(self, "converged", as_bool(self.converged, "InnerSummary.converged"))
        tol = as_opt_finite_float(self.solved_inner_tol, "InnerSummary.solved_inner_tol")
        if tol is not None and tol <= 0.0:
            raise ValueError(f"InnerSummary.solved_inner_tol: expected > 0, got {tol!r}")
        s(self, "solved_inner_tol", tol)
        for name in ("block_log_lambdas", "joint_log_lambdas"):
            value = getattr(self, name)
            if value is not None:
                s(self, name, as_float_vector(value, f"InnerSummary.{name}"))

    def is_valid(self) -> bool:
        """Spec §5.2 validity: log-likelihood, penalty and both log-determinants finite."""
        return all(
            math.isfinite(v)
            for v in (self.log_likelihood, self.penalty_value, self.block_logdet_h,
                      self.block_logdet_s)
        )  # fmt: skip

    @classmethod
    def persistable(
        cls,
        log_likelihood: float,
        penalty_value: float,
        cycles: int,
        converged: bool,
        block_logdet_h: float,
        block_logdet_s: float,
        solved_inner_tol: float | None = None,
        block_log_lambdas: ArrayLike | None = None,
        joint_log_lambdas: ArrayLike | None = None,
    ) -> Self | None:
        """The write-side gate: a summary when the four core values are finite, else None.

        Optional extras that are non-finite are dropped (set to None) rather than blocking.
        """
        core = (log_likelihood, penalty_value, block_logdet_h, block_logdet_s)
        if not all(math.isfinite(float(v)) for v in core):
            return None
        tol = solved_inner_tol
        if tol is not None and not (math.isfinite(float(tol)) and float(tol) > 0.0):
            tol = None

        def _opt(v: ArrayLike | None) -> FloatArray | None:
            if v is None:
                return None
            arr = np.asarray(v, dtype=np.float64)
            return arr if arr.ndim == 1 and np.isfinite(arr).all() else None

        return cls(
            log_likelihood=log_likelihood,
            penalty_value=penalty_value,
            cycles=cycles,
            converged=converged,
            block_logdet_h=block_logdet_h,
            block_logdet_s=block_logdet_s,
            solved_inner_tol=tol,
            block_log_lambdas=_opt(block_log_lambdas),
            joint_log_lambdas=_opt(joint_log_lambdas),
        )

    def _fields(self) -> dict[str, Any]:
        return {
            "log_likelihood": self.log_likelihood,
            "penalty_value": self.penalty_value,
            "cycles": self.cycles,
            "converged": self.converged,
            "block_logdet_h": self.block_logdet_h,
            "block_logdet_s": self.block_logdet_s,
            "solved_inner_tol": self.solved_inner_tol,
            "has_block_log_lambdas": self.block_log_lambdas is not None,
            "has_joint_log_lambdas": self.joint_log_lambdas is not None,
        }


def normalize_active_sets(
    sets: Iterable[ArrayLike | None], name: str = "active_sets"
) -> tuple[IntArray | None, ...]:
    """Sort and deduplicate each active set; empty sets become None (spec §5.2).

    Parameters
    ----------
    sets : iterable of array_like or None
        One entry per block: constraint indices (non-negative ints) or None.
    name : str
        Field name used in error messages.

    Returns
    -------
    tuple
        Read-only int64 arrays (sorted, unique, non-empty) or None, one per block.
    """
    if isinstance(sets, (str, bytes, np.ndarray)):
        raise TypeError(f"{name}: expected a sequence with one entry per block")
    out: list[IntArray | None] = []
    for i, s in enumerate(sets):
        if s is None:
            out.append(None)
            continue
        idx = as_index_vector(s, f"{name}[{i}]")
        out.append(_readonly(np.unique(idx)) if idx.size else None)
    return tuple(out)


@register_record_type
@dataclass(frozen=True, eq=False)
class BlockWarmStartRecord(FrozenArrays):
    """Record B: per-block warm start of a blockwise (custom-family) fit (spec §5.2).

    Parameters
    ----------
    key : str
        The ``"cf-<16hex>"`` key string, compared on load.
    n_rows : int
        Rows of the first block's design (0 without blocks).
    block_names : sequence of str
    block_dims : sequence of int
        Reduced design widths per block.
    rho : array_like
        Outer log smoothing parameters (finite).
    block_beta : sequence of array_like
        Per-block coefficients (finite).
    active_sets : sequence of (array_like of int or None)
        Normalised on construction (sorted, deduplicated, empty -> None).
    inner : InnerSummary, optional
    version, package_version, created_unix_secs, updated_unix_secs, rho_convention
        As in :class:`WarmStartRecord`.
    """

    RECORD_TYPE: ClassVar[str] = "block_warm_start"

    key: str
    n_rows: int
    block_names: tuple[str, ...]
    block_dims: tuple[int, ...]
    rho: FloatArray = field(default_factory=lambda: np.empty(0))
    block_beta: tuple[FloatArray, ...] = ()
    active_sets: tuple[IntArray | None, ...] = ()
    inner: InnerSummary | None = None
    version: int = CACHE_VERSION
    package_version: str = __version__
    created_unix_secs: int = field(default_factory=_now)
    updated_unix_secs: int = field(default_factory=_now)
    rho_convention: str = DEFAULT_RHO_CONVENTION

    def __post_init__(self) -> None:
        s = object.__setattr__
        r = "BlockWarmStartRecord"
        s(self, "key", as_str(self.key, f"{r}.key"))
        s(self, "n_rows", as_count(self.n_rows, f"{r}.n_rows"))
        if isinstance(self.block_names, str):
            raise TypeError(f"{r}.block_names: expected a sequence of str, got a str")
        s(
            self,
            "block_names",
            tuple(
                as_str(n, f"{r}.block_names[{i}]")
                for i, n in enumerate(_as_seq(self.block_names, f"{r}.block_names"))
            ),
        )
        s(
            self,
            "block_dims",
            tuple(
                as_count(d, f"{r}.block_dims[{i}]")
                for i, d in enumerate(_as_seq(self.block_dims, f"{r}.block_dims"))
            ),
        )
        s(self, "rho", as_float_vector(self.rho, f"{r}.rho"))
        if isinstance(self.block_beta, np.ndarray) and self.block_beta.ndim != 2:
            raise ValueError(f"{r}.block_beta: expected a sequence of 1-D vectors")
        s(
            self,
            "block_beta",
            tuple(
                as_float_vector(b, f"{r}.block_beta[{i}]")
                for i, b in enumerate(_as_seq(self.block_beta, f"{r}.block_beta"))
            ),
        )
        s(self, "active_sets", normalize_active_sets(self.active_sets, f"{r}.active_sets"))
        if self.inner is not None and not isinstance(self.inner, InnerSummary):
            raise TypeError(f"{r}.inner: expected InnerSummary or None")
        s(self, "version", as_count(self.version, f"{r}.version"))
        s(self, "package_version", as_str(self.package_version, f"{r}.package_version"))
        for name in ("created_unix_secs", "updated_unix_secs"):
            s(self, name, as_count(getattr(self, name), f"{r}.{name}"))
        s(self, "rho_convention", as_rho_convention(self.rho_convention, f"{r}.rho_convention"))

    @classmethod
    def new(
        cls, key: str, n_rows: int, block_names: Sequence[str], block_dims: Sequence[int]
    ) -> Self:
        """A fresh record: current version, timestamps now, no ρ/β/active sets/summary."""
        now = _now()
        return cls(key=key, n_rows=n_rows, block_names=tuple(block_names),
                   block_dims=tuple(block_dims), created_unix_secs=now,
                   updated_unix_secs=now)  # fmt: skip

    def is_compatible(
        self,
        key: str,
        n_rows: int,
        block_names: Sequence[str],
        block_dims: Sequence[int],
        rho_len: int,
        *,
        rho_convention: str | None = None,
    ) -> bool:
        """Whether this record may seed the described fit (spec §5.2, checklist 53).

        Requires version, key, n_rows, names, dims and ρ length to match, finite ρ and β,
        one β of the right width and one active-set entry per block, and a valid summary
        when present. ``package_version`` is not compared. With ``rho_convention`` given,
        the record's convention must equal it.
        """
        dims = tuple(int(d) for d in block_dims)
        return (
            self.version == CACHE_VERSION
            and (rho_convention is None or self.rho_convention == rho_convention)
            and self.key == key
            and self.n_rows == n_rows
            and self.block_names == tuple(block_names)
            and self.block_dims == dims
            and self.rho.shape[0] == rho_len
            and bool(np.isfinite(self.rho).all())
            and len(self.block_beta) == len(dims)
            and all(
                b.shape[0] == d and bool(np.isfinite(b).all())
                for b, d in zip(self.block_beta, dims, strict=True)
            )
            and len(self.active_sets) == len(dims)
            and (self.inner is None or self.inner.is_valid())
        )

    def to_parts(self) -> RecordParts:
        """Fields and arrays for the store (see ``docs/architecture.md``)."""
        fields: dict[str, Any] = {
            "version": self.version,
            "key": self.key,
            "package_version": self.package_version,
            "created_unix_secs": self.created_unix_secs,
            "updated_unix_secs": self.updated_unix_secs,
            "n_rows": self.n_rows,
            "block_names": list(self.block_names),
            "block_dims": list(self.block_dims),
            "n_block_beta": len(self.block_beta),
            "active_set_present": [s is not None for s in self.active_sets],
            "inner": None if self.inner is None else self.inner._fields(),
            "rho_convention": self.rho_convention,
        }
        arrays = {"rho": _vec(self.rho, "rho")}
        for i, b in enumerate(self.block_beta):
            arrays[f"block_beta/{i}"] = _vec(b, f"coef_{i}")
        for i, a in enumerate(self.active_sets):
            if a is not None:
                arrays[f"active_sets/{i}"] = _vec(a, f"active_{i}")
        if self.inner is not None:
            if self.inner.block_log_lambdas is not None:
                arrays["inner/block_log_lambdas"] = _vec(
                    self.inner.block_log_lambdas, "block_log_lambda"
                )
            if self.inner.joint_log_lambdas is not None:
                arrays["inner/joint_log_lambdas"] = _vec(
                    self.inner.joint_log_lambdas, "joint_log_lambda"
                )
        return RecordParts(fields, arrays)

    @classmethod
    def from_parts(cls, fields: Mapping[str, Any], arrays: Mapping[str, Any]) -> Self:
        """Rebuild a record from stored parts, validating every field and array."""
        r = "BlockWarmStartRecord"
        f = _Fields(fields, r)
        a = _Arrays(arrays, r)
        n_beta = f.count("n_block_beta")
        present = f.list_of("active_set_present", bool)
        inner_raw = f.raw("inner", None)  # optional: older records may lack it (serde default)
        inner: InnerSummary | None = None
        if inner_raw is not None:
            fi = _Fields(inner_raw, f"{r}.inner")
            inner = InnerSummary(
                log_likelihood=fi.number("log_likelihood"),
                penalty_value=fi.number("penalty_value"),
                cycles=fi.count("cycles"),
                converged=fi.flag("converged"),
                block_logdet_h=fi.number("block_logdet_h"),
                block_logdet_s=fi.number("block_logdet_s"),
                solved_inner_tol=fi.opt_number("solved_inner_tol"),
                block_log_lambdas=a.vector("inner/block_log_lambdas")
                if fi.flag("has_block_log_lambdas", False)
                else None,
                joint_log_lambdas=a.vector("inner/joint_log_lambdas")
                if fi.flag("has_joint_log_lambdas", False)
                else None,
            )
        out = cls(
            key=f.string("key"),
            n_rows=f.count("n_rows"),
            block_names=tuple(f.list_of("block_names", str)),
            block_dims=tuple(f.list_of("block_dims", int)),
            rho=a.vector("rho"),
            block_beta=tuple(a.vector(f"block_beta/{i}") for i in range(n_beta)),
            active_sets=tuple(
                a.indices(f"active_sets/{i}") if p else None for i, p in enumerate(present)
            ),
            inner=inner,
            version=_check_version(f),
            package_version=f.string("package_version"),
            created_unix_secs=f.count("created_unix_secs"),
            updated_unix_secs=f.count("updated_unix_secs"),
            rho_convention=f.rho_convention(),
        )
        a.finish()
        return out


# --------------------------------------------------------------------------------------------
# outer iterate payload and its classification
# --------------------------------------------------------------------------------------------


class EntrySource(enum.Enum):
    """Where a loaded outer entry came from (spec §4.1)."""

    EXACT = "exact"
    #: historical near-match seed; its Final is never a terminal certificate
    PRELOADED = "preloaded"


@dataclass(frozen=True, eq=False)
class ExactFinal(FrozenArrays):
    """An own, exact-source Final: resume at ``rho`` and recertify (never ship cached values)."""

    rho: FloatArray
    beta: FloatArray
    iterations: int


@dataclass(frozen=True, eq=False)
class Seed(FrozenArrays):
    """A starting point: ρ, β (maybe empty) and an optional square outer Hessian."""

    rho: FloatArray
    beta: FloatArray
    hessian: FloatArray | None
    iteration: int


@dataclass(frozen=True)
class Discard:
    """A loaded entry that must not be used; ``reason`` is a short stable code."""

    reason: str


def _scrub_hessian(hessian: Any) -> FloatArray:
    """Keep a square, finite, real 2-D Hessian; anything else becomes an empty (0, 0) one."""
    empty = _readonly(np.zeros((0, 0), dtype=np.float64))
    if hessian is None:
        return empty
    try:
        arr = np.asarray(hessian)
    except (TypeError, ValueError):  # ragged or otherwise not an array
        return empty
    if arr.dtype.kind not in "fiu" or arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        return empty
    out = np.array(arr, dtype=np.float64, copy=True, order="C")
    if not np.isfinite(out).all():
        return empty
    return _readonly(out)


@register_record_type
@dataclass(frozen=True, eq=False)
class IteratePayload(FrozenArrays):
    """Outer-iterate payload, schema 3 (spec §4.2).

    Parameters
    ----------
    rho : array_like
        The outer iterate.
    cost : float
        Objective at ``rho``.
    eval_id : int
        Evaluation counter of the producing run.
    beta : array_like
        Coefficients produced at exactly ``rho``, or empty (ρ-only payload).
    hessian : array_like, optional
        Square outer Hessian. Anything non-square or non-finite is scrubbed to an empty
        ``(0, 0)`` matrix, never rejected.
    schema : int
        :data:`ITERATE_PAYLOAD_SCHEMA` when written by this library.

    Notes
    -----
    The constructor checks structure only (1-D vectors, ints), so that a payload read back
    from storage can be judged by :meth:`validate` / :meth:`classify` (wrong schema,
    dimension or non-finite values) instead of failing to load. Writers use :meth:`encode`,
    which also requires finite values. A non-finite ``cost`` is stored as JSON null and
    reads back as NaN.
    """

    RECORD_TYPE: ClassVar[str] = "iterate"

    rho: FloatArray
    cost: float
    eval_id: int
    beta: FloatArray = field(default_factory=lambda: np.empty(0))
    hessian: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    schema: int = ITERATE_PAYLOAD_SCHEMA

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "rho", as_float_vector(self.rho, "IteratePayload.rho", finite=False))
        s(self, "beta", as_float_vector(self.beta, "IteratePayload.beta", finite=False))
        if isinstance(self.cost, (bool, np.bool_)) or not isinstance(
            self.cost, (int, float, np.integer, np.floating)
        ):
            raise TypeError(f"IteratePayload.cost: expected a float, got {type(self.cost)}")
        try:
            s(self, "cost", float(self.cost))
        except OverflowError:  # an int like 10**400
            raise ValueError("IteratePayload.cost: int beyond the float64 range") from None
        s(self, "eval_id", as_count(self.eval_id, "IteratePayload.eval_id"))
        s(self, "hessian", _scrub_hessian(self.hessian))
        s(self, "schema", as_count(self.schema, "IteratePayload.schema"))

    @property
    def hessian_dim(self) -> int:
        """Side of the (scrubbed) Hessian; 0 when absent."""
        return int(self.hessian.shape[0])

    @classmethod
    def encode(
        cls,
        rho: ArrayLike,
        cost: float,
        eval_id: int,
        beta: ArrayLike | None = None,
        hessian: ArrayLike | None = None,
    ) -> Self:
        """Build a payload to write: finite ρ, β and cost required; Hessian scrubbed.

        Raises
        ------
        ValueError
            Naming the field when ρ, β or cost is not finite or not 1-D.
        """
        rho_v = as_float_vector(rho, "IteratePayload.rho")
        beta_v = as_float_vector([] if beta is None else beta, "IteratePayload.beta")
        cost_f = as_finite_float(cost, "IteratePayload.cost")
        return cls(
            rho=rho_v, cost=cost_f, eval_id=eval_id, beta=beta_v, hessian=_scrub_hessian(hessian)
        )

    def problems(self, expected_dim: int) -> tuple[str, str] | None:
        """First reason the payload fails decode (spec §4.2), as ``(code, message)``.

        Codes: ``"payload-shape-mismatch"`` (schema or ρ dimension) and
        ``"non-finite-payload"`` (ρ, cost or β not finite).
        """
        if self.schema != ITERATE_PAYLOAD_SCHEMA:
            return (
                "payload-shape-mismatch",
                f"IteratePayload.schema: expected {ITERATE_PAYLOAD_SCHEMA}, got {self.schema}",
            )
        if self.rho.shape[0] != expected_dim:
            return (
                "payload-shape-mismatch",
                f"IteratePayload.rho: expected length {expected_dim}, got {self.rho.shape[0]}",
            )
        if not np.isfinite(self.rho).all():
            return ("non-finite-payload", "IteratePayload.rho: expected finite values")
        if not math.isfinite(self.cost):
            return ("non-finite-payload", f"IteratePayload.cost: expected finite, got {self.cost}")
        if not np.isfinite(self.beta).all():
            return ("non-finite-payload", "IteratePayload.beta: expected finite values")
        return None

    def validate(self, expected_dim: int) -> Self:
        """Decode check against the expected ρ dimension; returns ``self``.

        Raises
        ------
        ValueError
            For a wrong schema, a wrong ρ length, or non-finite ρ, cost or β.
        """
        problem = self.problems(as_count(expected_dim, "expected_dim"))
        if problem is not None:
            raise ValueError(problem[1])
        return self

    def decode(self, expected_dim: int) -> Self | None:
        """Like :meth:`validate` but returns None instead of raising (spec §4.2)."""
        return self if self.problems(expected_dim) is None else None

    def classify(
        self,
        entry_kind: str,
        source: EntrySource | str,
        entry_objective: float | None,
        expected_dim: int,
        *,
        entry_iteration: int | None = None,
    ) -> ExactFinal | Seed | Discard:
        """Classify this payload as loaded from an entry (spec §4.3). See :func:`classify_entry`."""
        return classify_entry(
            self,
            entry_kind,
            source,
            entry_objective,
            expected_dim,
            entry_iteration=entry_iteration,
        )

    def to_parts(self) -> RecordParts:
        """Fields and arrays for the store (see ``docs/architecture.md``)."""
        fields = {
            "schema": self.schema,
            "cost": self.cost if math.isfinite(self.cost) else None,
            "eval_id": self.eval_id,
            "hessian_dim": self.hessian_dim,
        }
        arrays = {
            "rho": _vec(self.rho, "rho"),
            "beta": _vec(self.beta, "coef"),
            "hessian": ArrayPart(self.hessian, ("hess_row", "hess_col")),
        }
        return RecordParts(fields, arrays)

    @classmethod
    def from_parts(cls, fields: Mapping[str, Any], arrays: Mapping[str, Any]) -> Self:
        """Rebuild a payload; a malformed Hessian is scrubbed, not rejected."""
        r = "IteratePayload"
        f = _Fields(fields, r)
        a = _Arrays(arrays, r)
        cost_raw = f.raw("cost")
        cost = math.nan if cost_raw is None else as_finite_float(cost_raw, f"{r}.cost")
        hess_dim = f.count("hessian_dim", 0)
        hessian: Any = None
        if a.has("hessian"):
            arr = a.arrays["hessian"]
            a.used.add("hessian")
            # scrub rather than reject: wrong dtype/shape/size or non-finite -> empty
            if (
                isinstance(arr, np.ndarray)
                and arr.dtype.kind == "f"
                and arr.ndim == 2
                and arr.shape == (hess_dim, hess_dim)
            ):
                hessian = arr
        out = cls(
            rho=a.vector("rho", finite=False),
            cost=cost,
            eval_id=f.count("eval_id"),
            beta=a.vector("beta", finite=False) if a.has("beta") else np.empty(0),
            hessian=hessian,
            schema=f.count("schema"),
        )
        a.finish()
        return out


def classify_entry(
    payload: object,
    entry_kind: str,
    source: EntrySource | str,
    entry_objective: float | None,
    expected_dim: int,
    *,
    entry_iteration: int | None = None,
) -> ExactFinal | Seed | Discard:
    """Decide how a loaded outer entry may be used (spec §4.3, checklist 47).

    Parameters
    ----------
    payload : object
        The decoded record; anything that is not an :class:`IteratePayload` is discarded.
    entry_kind : {"final", "checkpoint"}
        The entry kind as read (foreign finals already read as checkpoints).
    source : EntrySource or {"exact", "preloaded"}
    entry_objective : float or None
        The entry-level objective from the store marker.
    expected_dim : int
        The current ρ dimension.
    entry_iteration : int, optional
        The entry-level iteration; falls back to ``payload.eval_id``.

    Returns
    -------
    ExactFinal, Seed or Discard
        ``Discard("payload-shape-mismatch")`` for a foreign type, wrong schema or wrong ρ
        dimension; ``Discard("non-finite-payload")`` for a non-finite entry objective, ρ,
        cost or β; ``ExactFinal`` for an exact-source Final; otherwise ``Seed`` (with the
        Hessian only when it is square, non-empty and finite). No clamping of ρ.
    """
    kind = as_str(entry_kind, "entry_kind").lower()
    if kind not in ("final", "checkpoint"):
        raise ValueError(f"entry_kind: expected 'final' or 'checkpoint', got {entry_kind!r}")
    src = EntrySource(source)
    dim = as_count(expected_dim, "expected_dim")
    if not isinstance(payload, IteratePayload):
        return Discard("payload-shape-mismatch")
    problem = payload.problems(dim)
    # spec order: a failed shape decode first, then the entry objective, then the values
    if problem is not None and problem[0] == "payload-shape-mismatch":
        return Discard(problem[0])
    if entry_objective is not None and not math.isfinite(float(entry_objective)):
        return Discard("non-finite-payload")
    if problem is not None:
        return Discard(problem[0])
    iteration = (
        payload.eval_id if entry_iteration is None else as_count(entry_iteration, "entry_iteration")
    )
    if src is EntrySource.EXACT and kind == "final":
        return ExactFinal(rho=payload.rho, beta=payload.beta, iterations=iteration)
    hessian = payload.hessian if payload.hessian_dim > 0 else None
    return Seed(rho=payload.rho, beta=payload.beta, hessian=hessian, iteration=iteration)
