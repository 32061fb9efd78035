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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gamstore import _json
from gamstore._validate import (
    as_bool,
    as_count,
    as_finite_float,
    as_float_matrix,
    as_float_or_nan,
    as_float_vector,
    as_index_vector,
    as_opt_finite_float,
    as_opt_positive_float,
    as_seq,
    as_str,
    readonly,
)
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
    "ResultSummary",
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
# validation (the validators live in gamstore._validate; re-exported here for callers)
# --------------------------------------------------------------------------------------------

_readonly = readonly


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
        fields = _json.canonical_fast(dict(self.fields), root="fields")
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


_REQUIRED: Any = object()  # read default of a stored field that must be present


class _Fields:
    """Typed access to decoded fields with errors naming ``<record>.<field>``."""

    def __init__(self, fields: Mapping[str, Any], record: str) -> None:
        if not isinstance(fields, Mapping):
            raise TypeError(f"{record}: fields must be a dict, got {type(fields).__name__}")
        self.fields = fields
        self.record = record

    def name(self, key: str) -> str:
        return f"{self.record}.{key}"

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        if key not in self.fields:
            if default is _REQUIRED:
                raise ValueError(f"{self.name(key)}: missing field")
            return default
        return self.fields[key]

    def count(self, key: str, default: Any = _REQUIRED) -> int:
        return as_count(self.raw(key, default), self.name(key))

    def string(self, key: str) -> str:
        return as_str(self.raw(key), self.name(key))

    def rho_convention(self) -> str:
        # optional: entries written before the field existed are mgcv-convention
        return as_rho_convention(
            self.raw("rho_convention", DEFAULT_RHO_CONVENTION), self.name("rho_convention")
        )

    def flag(self, key: str, default: Any = _REQUIRED) -> bool:
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


def _now() -> int:
    return int(time.time())


# --------------------------------------------------------------------------------------------
# field tables: one declaration per field generates validation, to_parts and from_parts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    """Where a (nested) record's arrays live: path prefix, index for ``{i}`` in dimension
    names, and the enclosing record (whose arrays a dimension may be shared with)."""

    prefix: str = ""
    index: int | None = None
    parent: Any = None


class Kind:
    """How one field is checked (constructor), written (``to_parts``) and read back.

    The base kind is a strict-JSON scalar stored under the field's key: ``check`` validates
    and normalises (raising ``TypeError``/``ValueError`` naming the field), ``dump`` gives
    the JSON value, ``load`` (default: ``check``) reads it back, and ``missing`` is the value
    read when the stored field is absent (entries written before the field existed).
    """

    def __init__(
        self,
        check: Callable[[Any, str], Any] | None = None,
        *,
        missing: Any = _REQUIRED,
        dump: Callable[[Any], Any] | None = None,
        load: Callable[[Any, str], Any] | None = None,
    ) -> None:
        self._check = check
        self.missing = missing
        self._dump = dump
        self._load = load

    def check(self, value: Any, name: str) -> Any:
        return value if self._check is None else self._check(value, name)

    def write(self, value: Any, fd: Field, fields: dict[str, Any], arrays: dict[str, ArrayPart],
              obj: Any, ctx: _Ctx) -> None:  # fmt: skip
        fields[fd.key] = value if self._dump is None else self._dump(value)

    def read(self, fd: Field, f: _Fields, a: _Arrays, ctx: _Ctx) -> Any:
        raw = f.raw(fd.key, self.missing)
        return (self._load or self.check)(raw, f.name(fd.key))


@dataclass(frozen=True)
class Field:
    """One declared field of a record: attribute ``name``, its :class:`Kind` and the stored
    ``key`` (default: ``name``; e.g. ``global_`` is stored as ``"global"``)."""

    name: str
    kind: Kind
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)


class Seq(Kind):
    """A tuple of scalars stored as a JSON list (``item`` checks, dumps and loads each)."""

    def __init__(self, item: Kind) -> None:
        super().__init__()
        self.item = item

    def check(self, value: Any, name: str) -> Any:
        if isinstance(value, str):
            raise TypeError(f"{name}: expected a sequence, got a str")
        return tuple(self.item.check(v, f"{name}[{i}]") for i, v in enumerate(as_seq(value, name)))

    def write(self, value: Any, fd: Field, fields: dict[str, Any], arrays: dict[str, ArrayPart],
              obj: Any, ctx: _Ctx) -> None:  # fmt: skip
        dump = self.item._dump
        fields[fd.key] = [v if dump is None else dump(v) for v in value]

    def read(self, fd: Field, f: _Fields, a: _Arrays, ctx: _Ctx) -> Any:
        raw = f.raw(fd.key)
        name = f.name(fd.key)
        if not isinstance(raw, list):
            raise TypeError(f"{name}: expected a list, got {type(raw).__name__}")
        load = self.item._load or self.item.check
        return tuple(load(v, f"{name}[{i}]") for i, v in enumerate(raw))


def _dims_of(fd: Field, ctx: _Ctx) -> tuple[str, ...]:
    kind = fd.kind
    assert isinstance(kind, Array)
    if kind.static:  # no "{i}" in the names: the common case, no formatting
        return kind.dims
    return tuple(d.format(i=ctx.index) for d in kind.dims)


_FIELD_MAPS: dict[type, dict[str, Field]] = {}


def _field_map(cls: type) -> dict[str, Field]:
    found = _FIELD_MAPS.get(cls)
    if found is None:
        found = _FIELD_MAPS[cls] = {f.name: f for f in cls.FIELDS}  # type: ignore[attr-defined]
    return found


class Array(Kind):
    """A float64 vector or matrix stored as the array ``<prefix><key>``.

    ``dims`` are dimension-name templates (``"{i}"`` is the index of the enclosing list
    item). ``optional`` arrays may be None and write the flag field ``has_<key>`` (read as
    ``flag_missing`` when absent); ``share`` names a sibling array (of this record or the
    enclosing one) whose dimension names are reused when the shapes agree (xarray
    alignment); ``absent`` is the value read when the array is missing (no flag).
    """

    def __init__(
        self,
        *dims: str,
        finite: bool = True,
        optional: bool = False,
        flag_missing: Any = _REQUIRED,
        share: str | None = None,
        absent: Any = None,
        flag: bool = True,
    ) -> None:
        super().__init__()
        # flag=False (optional arrays only): no has_<key> field; None is written as nothing
        # and a missing array reads as None, so records without the value are unchanged
        self.flag = flag
        self.dims = dims
        self.static = not any("{" in d for d in dims)
        self.finite = finite
        self.optional = optional
        self.flag_missing = flag_missing
        self.share = share
        self.absent = absent

    def check(self, value: Any, name: str) -> Any:
        if value is None and self.optional:
            return None
        if len(self.dims) == 2:
            return as_float_matrix(value, name, finite=self.finite)
        return as_float_vector(value, name, finite=self.finite)

    def _dims(self, fd: Field, value: np.ndarray, obj: Any, ctx: _Ctx) -> tuple[str, ...]:
        if self.share is not None:
            for owner in (obj, ctx.parent):
                sibling = getattr(owner, self.share, None) if owner is not None else None
                if isinstance(sibling, np.ndarray):
                    if sibling.shape == value.shape:
                        return _dims_of(_field_map(type(owner))[self.share], ctx)
                    break
        return _dims_of(fd, ctx)

    def write(self, value: Any, fd: Field, fields: dict[str, Any], arrays: dict[str, ArrayPart],
              obj: Any, ctx: _Ctx) -> None:  # fmt: skip
        if self.optional and self.flag:
            fields[f"has_{fd.key}"] = value is not None
        if value is not None:
            arrays[ctx.prefix + fd.key] = ArrayPart(value, self._dims(fd, value, obj, ctx))

    def read(self, fd: Field, f: _Fields, a: _Arrays, ctx: _Ctx) -> Any:
        path = ctx.prefix + fd.key
        if self.optional and not self.flag and not a.has(path):
            return None
        if self.optional and self.flag and not f.flag(f"has_{fd.key}", self.flag_missing):
            return None
        if self.absent is not None and not a.has(path):
            return self.absent
        if len(self.dims) == 2:
            return a.matrix(path)
        return a.vector(path, finite=self.finite)


class VectorList(Kind):
    """A tuple of finite float64 vectors stored as arrays ``<key>/<j>``, their number in the
    field ``count_key``; ``dim`` is a template with ``{i}`` = j."""

    def __init__(self, dim: str, count_key: str) -> None:
        super().__init__()
        self.dim = dim
        self.count_key = count_key

    def check(self, value: Any, name: str) -> Any:
        if isinstance(value, np.ndarray) and value.ndim != 2:
            raise ValueError(f"{name}: expected a sequence of 1-D vectors")
        return tuple(as_float_vector(b, f"{name}[{i}]") for i, b in enumerate(as_seq(value, name)))

    def write(self, value: Any, fd: Field, fields: dict[str, Any], arrays: dict[str, ArrayPart],
              obj: Any, ctx: _Ctx) -> None:  # fmt: skip
        fields[self.count_key] = len(value)
        for j, v in enumerate(value):
            arrays[f"{ctx.prefix}{fd.key}/{j}"] = ArrayPart(v, (self.dim.format(i=j),))

    def read(self, fd: Field, f: _Fields, a: _Arrays, ctx: _Ctx) -> Any:
        n = f.count(self.count_key)
        return tuple(a.vector(f"{ctx.prefix}{fd.key}/{j}") for j in range(n))


class IndexSets(Kind):
    """Per-block sorted index sets or None (:func:`normalize_active_sets`), stored as int64
    arrays ``<key>/<j>`` for the present ones and the bool list ``present_key``."""

    def __init__(self, dim: str, present_key: str) -> None:
        super().__init__()
        self.dim = dim
        self.present_key = present_key

    def check(self, value: Any, name: str) -> Any:
        return normalize_active_sets(value, name)

    def write(self, value: Any, fd: Field, fields: dict[str, Any], arrays: dict[str, ArrayPart],
              obj: Any, ctx: _Ctx) -> None:  # fmt: skip
        fields[self.present_key] = [s is not None for s in value]
        for j, s in enumerate(value):
            if s is not None:
                arrays[f"{ctx.prefix}{fd.key}/{j}"] = ArrayPart(s, (self.dim.format(i=j),))

    def read(self, fd: Field, f: _Fields, a: _Arrays, ctx: _Ctx) -> Any:
        present = f.list_of(self.present_key, bool)
        return tuple(
            a.indices(f"{ctx.prefix}{fd.key}/{j}") if p else None for j, p in enumerate(present)
        )


class Nested(Kind):
    """A nested declared type (a :class:`Checked` class) stored as a JSON object; its arrays
    live under ``<prefix of the enclosing record><array_prefix>``."""

    def __init__(
        self, cls: type, *, optional: bool = False, array_prefix: str = "", omit_none: bool = False
    ) -> None:
        super().__init__(missing=None if optional else _REQUIRED)
        self.cls = cls
        self.optional = optional
        self.array_prefix = array_prefix
        # omit_none (optional only): None is written as nothing, so records without the value
        # are unchanged, and a missing field reads as None
        self.omit_none = omit_none

    def check(self, value: Any, name: str) -> Any:
        if not isinstance(value, self.cls) and not (value is None and self.optional):
            extra = " or None" if self.optional else ""
            raise TypeError(f"{name}: expected {self.cls.__name__}{extra}, got {type(value)}")
        return value

    def write(self, value: Any, fd: Field, fields: dict[str, Any], arrays: dict[str, ArrayPart],
              obj: Any, ctx: _Ctx) -> None:  # fmt: skip
        if value is None and self.omit_none:
            return
        sub = _Ctx(ctx.prefix + self.array_prefix, ctx.index, obj)
        fields[fd.key] = None if value is None else _write(value, arrays, sub)

    def read(self, fd: Field, f: _Fields, a: _Arrays, ctx: _Ctx) -> Any:
        raw = f.raw(fd.key, self.missing)
        if raw is None and self.optional:
            return None
        return _read(self.cls, raw, f.name(fd.key), a, _Ctx(ctx.prefix + self.array_prefix,
                                                             ctx.index))  # fmt: skip


class NestedList(Kind):
    """A tuple of nested declared types stored as a JSON list; item ``i`` keeps its arrays
    under ``<key>/<i>/`` and names its dimensions with ``{i}``."""

    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls

    def check(self, value: Any, name: str) -> Any:
        items = tuple(as_seq(value, name))
        for i, t in enumerate(items):
            if not isinstance(t, self.cls):
                raise TypeError(f"{name}[{i}]: expected {self.cls.__name__}")
        return items

    def write(self, value: Any, fd: Field, fields: dict[str, Any], arrays: dict[str, ArrayPart],
              obj: Any, ctx: _Ctx) -> None:  # fmt: skip
        fields[fd.key] = [
            _write(t, arrays, _Ctx(f"{ctx.prefix}{fd.key}/{i}/", i, obj))
            for i, t in enumerate(value)
        ]

    def read(self, fd: Field, f: _Fields, a: _Arrays, ctx: _Ctx) -> Any:
        raw = f.raw(fd.key)
        name = f.name(fd.key)
        if not isinstance(raw, list):
            raise TypeError(f"{name}: expected a list")
        return tuple(
            _read(self.cls, r, f"{name}[{i}]", a, _Ctx(f"{ctx.prefix}{fd.key}/{i}/", i))
            for i, r in enumerate(raw)
        )


def _write(obj: Any, arrays: dict[str, ArrayPart], ctx: _Ctx) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for fd in type(obj).FIELDS:
        fd.kind.write(getattr(obj, fd.name), fd, fields, arrays, obj, ctx)
    return fields


def _read(cls: type, raw: Any, name: str, a: _Arrays, ctx: _Ctx) -> Any:
    f = _Fields(raw, name)
    return cls(**{fd.name: fd.kind.read(fd, f, a, ctx) for fd in cls.FIELDS})  # type: ignore[attr-defined]


def to_fields(obj: Any) -> dict[str, Any]:
    """The JSON fields of a declared type that holds no arrays (e.g. a fit descriptor)."""
    arrays: dict[str, ArrayPart] = {}
    out = _write(obj, arrays, _Ctx())
    if arrays:
        raise ValueError(f"{type(obj).__name__}: holds arrays; use to_parts()")
    return out


def from_fields(cls: type, fields: Any, name: str) -> Any:
    """Read a declared type that holds no arrays from its JSON ``fields`` (errors name
    ``name``)."""
    a = _Arrays({}, name)
    return _read(cls, fields, name, a, _Ctx())


class Checked:
    """Mixin of a frozen dataclass declared by a field table ``FIELDS``: the constructor
    validates every field (errors name ``<Class>.<field>``), then runs :meth:`_extra_checks`."""

    FIELDS: ClassVar[tuple[Field, ...]] = ()

    def __post_init__(self) -> None:
        prefix = type(self).__name__
        for fd in self.FIELDS:
            value = fd.kind.check(getattr(self, fd.name), f"{prefix}.{fd.name}")
            object.__setattr__(self, fd.name, value)


class Record(Checked, FrozenArrays):
    """A stored record declared by ``FIELDS``: ``to_parts``/``from_parts`` come from the table."""

    RECORD_TYPE: ClassVar[str]

    def to_parts(self) -> RecordParts:
        """Fields and arrays for the store (see ``docs/architecture.md``)."""
        arrays: dict[str, ArrayPart] = {}
        fields = _write(self, arrays, _Ctx())
        return RecordParts(fields, arrays)

    @classmethod
    def from_parts(cls, fields: Mapping[str, Any], arrays: Mapping[str, Any]) -> Self:
        """Rebuild a record from stored parts, validating every field and array.

        Raises
        ------
        ValueError, TypeError
            Naming the field (``<Record>.<field>``, nested ``.inner.cycles``,
            ``.terms[0].role``) or the array (``<Record>.<array path>``).
        """
        name = cls.__name__
        f = _Fields(fields, name)
        a = _Arrays(arrays, name)
        out = cls(**{fd.name: fd.kind.read(fd, f, a, _Ctx()) for fd in cls.FIELDS})
        a.finish()
        return out


def _count() -> Kind:
    return Kind(as_count)


def _string() -> Kind:
    return Kind(as_str)


#: Fields every record A/B carries after its own (same order, same meaning).
_BOOKKEEPING: tuple[Field, ...] = (
    Field("version", _count()),
    Field("package_version", _string()),
    Field("created_unix_secs", _count()),
    Field("updated_unix_secs", _count()),
    # optional: entries written before the field existed are mgcv-convention
    Field("rho_convention", Kind(as_rho_convention, missing=DEFAULT_RHO_CONVENTION)),
)


# --------------------------------------------------------------------------------------------
# record A
# --------------------------------------------------------------------------------------------


@register_record_type
@dataclass(frozen=True, eq=False)
class WarmStartRecord(Record):
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

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("key", _string()),
        Field("n_rows", _count()),
        Field("n_cols", _count()),
        Field("rho", Array("rho")),
        Field("beta", Array("coef")),
        Field("prev_rho", Array("prev_rho", optional=True, share="rho")),
        Field("prev_beta", Array("prev_coef", optional=True, share="beta")),
        Field("last_inner_iters", _count()),
        Field("last_inner_converged", Kind(as_bool)),
        Field("last_pirls_lm_lambda", Kind(as_opt_finite_float, missing=None)),
        Field("last_ift_prediction_residual", Kind(as_opt_finite_float, missing=None)),
        Field("last_pirls_accept_rho", Kind(as_opt_finite_float, missing=None)),
        *_BOOKKEEPING,
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


# --------------------------------------------------------------------------------------------
# record B
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class InnerSummary(Checked, FrozenArrays):
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

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("log_likelihood", Kind(as_finite_float)),
        Field("penalty_value", Kind(as_finite_float)),
        Field("cycles", _count()),
        Field("converged", Kind(as_bool)),
        Field("block_logdet_h", Kind(as_finite_float)),
        Field("block_logdet_s", Kind(as_finite_float)),
        Field("solved_inner_tol", Kind(as_opt_positive_float, missing=None)),
        Field("block_log_lambdas", Array("block_log_lambda", optional=True, flag_missing=False)),
        Field("joint_log_lambdas", Array("joint_log_lambda", optional=True, flag_missing=False)),
    )

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


@dataclass(frozen=True, eq=False)
class ResultSummary(Checked, FrozenArrays):
    """What a converged fit reported at its optimum, for an exact refit that answers from the
    record without building the design (record B's optional ``result``).

    Parameters
    ----------
    reml : float
        REML score at the optimum (mgcv's ``gcv.ubre`` scale).
    scale, reml_scale : float
        The reported scale and the scale at the REML optimum (``FitResult.scale`` and
        ``FitResult.reml_scale``).
    block_labels : sequence of str
        The fit's coefficient blocks in model order (``FitResult.block_names``).
    edf : array_like
        Effective degrees of freedom per block, in ``block_labels`` order.
    warning_kinds, warning_messages : sequence of str
        The fit's data-determined warnings (design and boundary notes): class name and
        message, one pair per warning.

    Notes
    -----
    Written only by a converged fit of :mod:`gamstore.fit`; everything else a result holds
    (fitted values, covariances, coefficients per block) is recomputed from the data at the
    stored rho and beta when first read.
    """

    reml: float
    scale: float
    reml_scale: float
    block_labels: tuple[str, ...]
    edf: FloatArray
    warning_kinds: tuple[str, ...] = ()
    warning_messages: tuple[str, ...] = ()

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("reml", Kind(as_finite_float)),
        Field("scale", Kind(as_finite_float)),
        Field("reml_scale", Kind(as_finite_float)),
        Field("block_labels", Seq(Kind(as_str))),
        Field("edf", Array("result_block")),
        Field("warning_kinds", Seq(Kind(as_str))),
        Field("warning_messages", Seq(Kind(as_str))),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.edf.shape != (len(self.block_labels),):
            raise ValueError(
                f"ResultSummary.edf: expected shape ({len(self.block_labels)},) (one per "
                f"block label), got {self.edf.shape}"
            )
        if len(self.warning_kinds) != len(self.warning_messages):
            raise ValueError(
                "ResultSummary.warning_messages: expected one message per warning kind "
                f"({len(self.warning_kinds)}), got {len(self.warning_messages)}"
            )


@register_record_type
@dataclass(frozen=True, eq=False)
class BlockWarmStartRecord(Record):
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
    ext : array_like, optional
        Extended-family parameters estimated with rho (negative binomial: ``[log theta]``),
        warm-started like rho. Stored as the array ``ext`` only when present: records of the
        other families are unchanged, and records without it read as None.
    result : ResultSummary, optional
        What the converged fit that wrote the record reported (an exact refit answers from
        it without building the design). Stored only when present: records without it are
        unchanged and read as None.
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
    ext: FloatArray | None = None
    result: ResultSummary | None = None

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("key", _string()),
        Field("n_rows", _count()),
        Field("block_names", Seq(_string())),
        Field("block_dims", Seq(_count())),
        Field("rho", Array("rho")),
        Field("block_beta", VectorList("coef_{i}", count_key="n_block_beta")),
        Field("active_sets", IndexSets("active_{i}", present_key="active_set_present")),
        # optional: older records may lack it (serde default)
        Field("inner", Nested(InnerSummary, optional=True, array_prefix="inner/")),
        *_BOOKKEEPING,
        Field("ext", Array("ext", optional=True, flag=False)),
        Field(
            "result",
            Nested(ResultSummary, optional=True, array_prefix="result/", omit_none=True),
        ),
    )

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


class _HessianKind(Kind):
    """The outer Hessian: scrubbed, never rejected (a malformed one becomes ``(0, 0)``);
    its side is stored as the field ``hessian_dim``."""

    def check(self, value: Any, name: str) -> Any:
        return _scrub_hessian(value)

    def write(self, value: Any, fd: Field, fields: dict[str, Any], arrays: dict[str, ArrayPart],
              obj: Any, ctx: _Ctx) -> None:  # fmt: skip
        fields["hessian_dim"] = int(value.shape[0])
        arrays[fd.key] = ArrayPart(value, ("hess_row", "hess_col"))

    def read(self, fd: Field, f: _Fields, a: _Arrays, ctx: _Ctx) -> Any:
        dim = f.count("hessian_dim", 0)
        if not a.has(fd.key):
            return None
        arr = a.arrays[fd.key]
        a.used.add(fd.key)
        # scrub rather than reject: wrong dtype/shape/size or non-finite -> empty
        ok = isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and arr.shape == (dim, dim)
        return arr if ok else None


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


@register_record_type
@dataclass(frozen=True, eq=False)
class IteratePayload(Record):
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
    ext : array_like, optional
        Extended-family parameters at this iterate (negative binomial: ``[log theta]``),
        which a session start resumes with ρ. Stored as the array ``ext`` only when
        present (as in :class:`BlockWarmStartRecord`): other payloads are unchanged and
        payloads without it read as None.

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
    ext: FloatArray | None = None

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("rho", Array("rho", finite=False)),
        # a non-finite cost is stored as JSON null and reads back as NaN
        Field("cost", Kind(as_float_or_nan, dump=_json_float)),
        Field("eval_id", _count()),
        Field("beta", Array("coef", finite=False, absent=_readonly(np.empty(0)))),
        Field("hessian", _HessianKind()),
        Field("schema", _count()),
        Field("ext", Array("ext", optional=True, flag=False, finite=False)),
    )

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
        ext: ArrayLike | None = None,
    ) -> Self:
        """Build a payload to write: finite ρ, β and cost required; Hessian scrubbed; a
        non-finite ``ext`` is dropped (None), never blocking the write.

        Raises
        ------
        ValueError
            Naming the field when ρ, β or cost is not finite or not 1-D.
        """
        rho_v = as_float_vector(rho, "IteratePayload.rho")
        beta_v = as_float_vector([] if beta is None else beta, "IteratePayload.beta")
        cost_f = as_finite_float(cost, "IteratePayload.cost")
        ext_v = None
        if ext is not None:
            ext_v = as_float_vector(ext, "IteratePayload.ext", finite=False)
            if not np.isfinite(ext_v).all():
                ext_v = None
        return cls(
            rho=rho_v,
            cost=cost_f,
            eval_id=eval_id,
            beta=beta_v,
            hessian=_scrub_hessian(hessian),
            ext=ext_v,
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
