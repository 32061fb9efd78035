"""Input validation: turn a DataFrame or a mapping of arrays into checked float64 columns.

Every problem is reported as a ValueError (or TypeError) that names the offending column, so
that a user fitting a 40-column frame knows where to look.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np


def n_rows(data: Any) -> int:
    """Number of rows of a DataFrame or of a mapping of equal-length arrays."""
    if hasattr(data, "columns") and hasattr(data, "__len__"):
        return len(data)
    if isinstance(data, Mapping):
        lengths = {np.asarray(v).shape[0] for v in data.values() if np.ndim(v) >= 1}
        if len(lengths) > 1:
            raise ValueError(f"data columns have different lengths: {sorted(lengths)}")
        return lengths.pop() if lengths else 0
    raise TypeError(
        f"data must be a pandas DataFrame or a mapping of column name -> array, "
        f"got {type(data).__name__}"
    )


def column_names(data: Any) -> list[str]:
    """Column names of ``data`` (for error messages)."""
    if hasattr(data, "columns"):
        return [str(c) for c in data.columns]
    if isinstance(data, Mapping):
        return [str(c) for c in data]
    return []


def get_column(data: Any, name: str, *, role: str = "covariate") -> np.ndarray:
    """Fetch one column as a finite float64 vector.

    Parameters
    ----------
    data : pandas.DataFrame or Mapping[str, array-like]
        The data.
    name : str
        Column name.
    role : str
        What the column is used for (in error messages): covariate, response, weights, offset.

    Returns
    -------
    numpy.ndarray
        Shape (n,), float64, all finite.
    """
    if not isinstance(name, str):
        raise TypeError(f"{role} column name must be a string, got {type(name).__name__}")
    n = n_rows(data)
    raw = _frame_column(data, name)
    if raw is None:
        try:
            raw = data[name]
        except (KeyError, IndexError):
            raise ValueError(
                f"unknown column {name!r} ({role}); available columns: {column_names(data)}"
            ) from None
    return as_vector(raw, name, n, role=role)


def _frame_column(data: Any, name: str) -> np.ndarray | None:
    """The numpy array behind ``data[name]`` for a plain DataFrame, else None.

    ``frame[name]`` builds a Series (several microseconds, paid per column per fit);
    pandas' ``_get_column_array`` hands out the column's values directly. It is private
    API, so anything unexpected (no such method, a duplicated or missing name, an
    extension dtype) returns None and the caller takes the public ``frame[name]`` path.
    The array is returned as a read-only view, as ``np.asarray(frame[name])`` is.
    """
    pd = sys.modules.get("pandas")  # a DataFrame implies pandas is already imported
    if pd is None or type(data) is not pd.DataFrame:
        return None
    getter = getattr(data, "_get_column_array", None)
    if getter is None:
        return None
    try:
        loc = data.columns.get_loc(name)
        if not isinstance(loc, (int, np.integer)):
            return None
        arr = getter(int(loc))
    except Exception:  # any surprise from private API: use the public path
        return None
    if not isinstance(arr, np.ndarray) or arr.ndim != 1:
        return None
    view = arr.view()
    view.flags.writeable = False
    return view


def as_vector(values: Any, name: str, n: int, *, role: str = "covariate") -> np.ndarray:
    """Check that ``values`` is a finite numeric vector of length ``n``."""
    arr = _as_array(values)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "iuf":
        # the caller's dtype (pandas `category`, `string`, ...), not numpy's `object` copy
        dtype = getattr(values, "dtype", None) or arr.dtype
        raise TypeError(
            f"column {name!r} ({role}) must be numeric, got dtype {dtype} "
            f"(expected shape ({n},) of float)"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"column {name!r} ({role}) must have shape ({n},), got {arr.shape}")
    if not np.isfinite(arr).all():  # one pass in the common case; details only on failure
        bad = ~np.isfinite(arr)
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"column {name!r} ({role}) has {int(bad.sum())} NaN/infinite value(s), "
            f"first at row {first}"
        )
    return arr


def _as_array(values: Any) -> np.ndarray:
    """``np.asarray(values)``, with a shortcut for numpy-backed pandas Series.

    ``np.asarray(series)`` ends in ``Series.__array__``, but numpy first probes the
    ``__array_interface__``/``__array_struct__`` protocols, which pandas answers through its
    slow ``__getattr__``; calling ``__array__`` directly gives the same (read-only view) array.
    Extension dtypes (nullable, categorical, ...) keep the generic path.
    """
    pd = sys.modules.get("pandas")  # a Series implies pandas is already imported
    if pd is not None and type(values) is pd.Series and isinstance(values.dtype, np.dtype):
        return np.asarray(values.__array__())
    return np.asarray(values)


def resolve_vector(
    data: Any, spec: Any, n: int, *, role: str, default: float
) -> tuple[np.ndarray, str | None]:
    """Resolve a ``weights=`` / ``offset=`` argument: None, a column name, or an array.

    Returns the vector and the column name it came from (None for arrays and defaults).
    """
    if spec is None:
        return np.full(n, default, dtype=np.float64), None
    if isinstance(spec, str):
        return get_column(data, spec, role=role), spec
    return as_vector(spec, role, n, role=role), None


NA_ACTIONS = ("omit", "raise")


def check_na_action(na_action: Any) -> str:
    """Validate ``na_action`` (``"omit"``: drop incomplete rows, as mgcv; ``"raise"``)."""
    if na_action not in NA_ACTIONS:
        raise ValueError(f"na_action must be one of {NA_ACTIONS}, got {na_action!r}")
    return str(na_action)


def _raw_column(data: Any, name: str, role: str) -> Any:
    raw = _frame_column(data, name)
    if raw is not None:
        return raw
    try:
        return data[name]
    except (KeyError, IndexError):
        raise ValueError(
            f"unknown column {name!r} ({role}); available columns: {column_names(data)}"
        ) from None


def missing_mask(data: Any, columns: Mapping[str, str]) -> np.ndarray | None:
    """Rows with a missing value (NaN, None, ``pd.NA``/``NaT``) in any of ``columns``.

    ``columns`` maps column name -> role (for error messages). Infinite values are not
    missing (as in R's ``na.omit``): they are reported by the column checks. Returns None
    when every row is complete, so the common case costs one ``isnan`` pass per column.
    """
    n = n_rows(data)
    bad: np.ndarray | None = None
    for name, role in columns.items():
        arr = _as_array(_raw_column(data, name, role))
        if arr.ndim != 1 or arr.shape[0] != n:
            continue  # the column checks report the shape
        if arr.dtype.kind == "f":
            miss = np.isnan(arr)
        elif arr.dtype.kind in "iub":
            continue
        else:
            pd = sys.modules.get("pandas")
            if pd is None:
                miss = np.array([v is None or v != v for v in arr.tolist()], dtype=bool)
            else:
                miss = np.asarray(pd.isna(arr), dtype=bool)
        if miss.any():
            bad = miss if bad is None else (bad | miss)
    return bad


def take_rows(data: Any, keep: np.ndarray) -> Any:
    """The rows ``keep`` (integer positions) of a DataFrame or of a mapping of arrays."""
    if hasattr(data, "iloc"):
        return data.iloc[keep].reset_index(drop=True)
    return {k: (np.asarray(v)[keep] if np.ndim(v) >= 1 else v) for k, v in data.items()}
