"""Validators of the model layer: one place that says what a count, a float, a vector is.

Each ``as_*`` function checks one value and returns it normalised (plain ``int``/``float``/
``str``, read-only float64/int64 arrays), or raises ``TypeError`` (wrong kind of value) or
``ValueError`` (right kind, wrong range or shape) with a message that starts with the field
name and says what was expected, e.g. ``"WarmStartRecord.rho: expected a 1-D vector, got
shape (2, 2)"``. Records (:mod:`gamstore.records`, :mod:`gamstore.artifact`), the warm-start
specs (:mod:`gamstore.warmstart.specs`) and the gam-crate importer
(:mod:`gamstore.adapters.gamcrate`) all use these; the importer wraps the errors in its own
skip reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gamstore import _json

__all__ = [
    "as_bool",
    "as_count",
    "as_finite_float",
    "as_float_matrix",
    "as_float_or_nan",
    "as_float_vector",
    "as_index_vector",
    "as_int_at_least",
    "as_opt_count",
    "as_opt_finite_float",
    "as_opt_positive_float",
    "as_opt_str",
    "as_seq",
    "as_str",
    "is_finite_number",
    "readonly",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def readonly(arr: np.ndarray) -> np.ndarray:
    """Mark ``arr`` read-only and return it."""
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
        A new read-only float64 array of shape ``(n,)`` (an owned read-only float64 array is
        shared: it cannot change under the caller).
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
    return readonly(out)


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
    return readonly(out)


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
    return readonly(out)


def as_count(value: Any, name: str, *, maximum: int = _json.INT_MAX) -> int:
    """Validate a non-negative integer up to ``maximum`` (default: int64; bools rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a non-negative int, got {type(value).__name__}")
    out = int(value)
    if not 0 <= out <= maximum:
        shown = out if abs(out) < 10**30 else f"an int of {len(str(abs(out)))} digits"
        limit = "2**63 - 1" if maximum == _json.INT_MAX else str(maximum)
        raise ValueError(f"{name}: expected a non-negative int <= {limit}, got {shown}")
    return out


def as_opt_count(value: Any, name: str) -> int | None:
    """``None`` or :func:`as_count`."""
    return None if value is None else as_count(value, name)


def as_int_at_least(value: Any, name: str, low: int) -> int:
    """An ``int`` (not a bool, not a numpy scalar) ``>= low``; anything else is a ValueError.

    For options whose every bad value is "out of range" to the user (an iteration budget).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return value


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


def as_opt_str(value: Any, name: str) -> str | None:
    """``None`` or :func:`as_str`."""
    return None if value is None else as_str(value, name)


def as_seq(value: Any, name: str) -> list[Any]:
    """Validate a sequence argument (so ``None``, a str or a number names the field)."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name}: expected a sequence, got {type(value).__name__}")
    return list(value)


def _real(value: Any, name: str, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:  # an int like 10**400 is not a float
        raise ValueError(f"{name}: expected {what}, got an int beyond the float64 range") from None


def as_finite_float(value: Any, name: str) -> float:
    """Validate a finite real number and return it as ``float``."""
    out = _real(value, name, "a finite float")
    if not math.isfinite(out):
        raise ValueError(f"{name}: expected a finite float, got {out!r}")
    return out


def as_opt_finite_float(value: Any, name: str) -> float | None:
    """Validate ``None`` or a finite real number."""
    return None if value is None else as_finite_float(value, name)


def as_opt_positive_float(value: Any, name: str) -> float | None:
    """Validate ``None`` or a finite real number ``> 0``."""
    out = as_opt_finite_float(value, name)
    if out is not None and out <= 0.0:
        raise ValueError(f"{name}: expected > 0, got {out!r}")
    return out


def as_float_or_nan(value: Any, name: str) -> float:
    """A real number, non-finite allowed; ``None`` (stored JSON null) reads as NaN."""
    return math.nan if value is None else _real(value, name, "a float")


def is_finite_number(value: Any) -> bool:
    """True for a real number (not a bool) that converts to a finite float (10**400 does not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False
