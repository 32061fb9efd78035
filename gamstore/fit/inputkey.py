"""The store key of a ``GAM.fit``, from the fit's inputs (issue 17 item 1).

A fit's exact key (the block record's ``"cf-<16 hex>"``, from which the session keys are
derived) is :func:`gamstore.warmstart.keys.input_block_key` of

* the **data**: every column the fit reads (response and trials, smooth and linear
  covariates, weight and offset columns, weight/offset arrays passed as arguments), hashed
  per row block (:class:`~gamstore.warmstart.keys.RowBlockDigests`); a plain fit is one block,
* the **model**: terms (their full spec: covariate, basis, k), linear terms, family and link,
  ``na_action``, the response/weights/offset roles, how each column was encoded (factor
  categories), the frozen ``knots`` by value,
* the **fitter**: every setting of :class:`~gamstore.fit.newton.NewtonControl` and the fitter
  tag (:data:`gamstore.fit.warm.FITTER_TAG`, bumped when the design construction or the
  stopping rule changes, since the key no longer sees the built design).

The built design is never hashed, so building it need not be bit-identical from one release
to the next. Columns are hashed as the fitter reads them: numeric and boolean columns by value
(dtype, shape, values), a pandas ``category`` column as its integer codes (the categories and
their order go into the model part), any other column (strings) as pandas' 64-bit per-value
hashes (``pandas.util.hash_array``).

Row blocks and the canonical order (LOSO)
-----------------------------------------
With ``groups=<column>`` (:meth:`GAM.row_block_digests`) the rows are hashed per group, the
groups in **canonical order**: labels sorted (order of first appearance when labels of
different types cannot be sorted), each group's rows in their order in the data. A fit given
those digests (``fit(..., row_blocks=...)``) must read its rows in exactly that order: the
concatenation of the groups in canonical order. ``run_loso`` fits the full data and every fold
that way, so a fold's key, the full data's digests minus one subject, costs O(subjects). A
plain ``fit`` of the same rows without ``row_blocks`` is keyed as one block and so gets a
*different* key from the fold (its data digest is not the fold's): plain fits and LOSO folds
never share an exact record, which only costs a warm start, never an answer.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gamstore.fit.data import _as_array, _raw_column, n_rows

if TYPE_CHECKING:  # pragma: no cover
    from gamstore.fit.model import GAM
    from gamstore.warmstart.keys import RowBlockDigests

__all__ = [
    "DeferredRowBlocks",
    "canonical_blocks",
    "data_digests",
    "fit_key",
    "input_columns",
    "subject_order",
]

#: prefix of a column read from the data, and of an array passed as an argument: a data
#: column named like an argument can never take its place in the digest
_COLUMN = "column:"
_ARGUMENT = "argument:"


def _hashable(raw: Any, name: str) -> tuple[np.ndarray, Any]:
    """(array hashed per row, what the model part records about the column's encoding)."""
    pd = sys.modules.get("pandas")
    dtype = getattr(raw, "dtype", None)
    if pd is not None and isinstance(dtype, pd.CategoricalDtype):
        codes = raw.cat.codes if hasattr(raw, "cat") else raw.codes
        from gamstore.warmstart.keys import label_text

        cats = [label_text(c) for c in dtype.categories]
        return np.asarray(codes, dtype=np.int64), {
            "categories": cats,
            "ordered": bool(dtype.ordered),
        }
    arr = _as_array(raw)
    if arr.ndim != 1:
        raise ValueError(f"column {name!r}: expected shape (n,), got {arr.shape}")
    if arr.dtype.kind in "biuf":
        return arr, None
    import pandas

    # strings and other objects: one 64-bit siphash per value (vectorised, stable)
    hashed = pandas.util.hash_array(np.asarray(arr, dtype=object), categorize=False)
    return np.asarray(hashed), "hash"


def _roles(y: Any, weights: Any, offset: Any) -> dict[str, Any]:
    from gamstore.fit.model import response_columns

    def role(spec: Any) -> Any:
        if spec is None:
            return None
        return {"column": spec} if isinstance(spec, str) else "argument"

    return {"y": list(response_columns(y)), "weights": role(weights), "offset": role(offset)}


def input_columns(
    model: GAM, data: Any, y: Any, weights: Any = None, offset: Any = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every column the fit reads, as hashable 1-D arrays, and how each was encoded.

    Returns
    -------
    (dict, dict)
        ``{"column:<name>" or "argument:weights"/"argument:offset": array}`` and, per key,
        the encoding note the model part of the key records (None for numbers).
    """
    from gamstore.fit.model import response_columns

    # every column the model reads (by variables, tensor margins and the other covariates of
    # s(x, z) too); for smooths of one covariate the order is response, smooth covariates,
    # linear terms, weights/offset columns, as before, so their keys are unchanged
    names: list[str] = list(response_columns(y))
    names += list(model.model_columns(y, weights, offset))
    cols: dict[str, np.ndarray] = {}
    notes: dict[str, Any] = {}
    for name in dict.fromkeys(names):  # each column once, first-use order
        key = _COLUMN + name
        cols[key], notes[key] = _hashable(_raw_column(data, name, "column"), name)
    for role, spec in (("weights", weights), ("offset", offset)):
        if spec is not None and not isinstance(spec, str):
            key = _ARGUMENT + role
            cols[key] = np.asarray(spec, dtype=np.float64).reshape(-1)
            notes[key] = None
    return cols, notes


def subject_order(column: Any) -> list[Any]:
    """The canonical order of a group column's labels: sorted, else order of first appearance.

    numpy scalars become Python values (as ``run_loso`` reports subjects).
    """
    import pandas as pd

    labels = [v.item() if isinstance(v, np.generic) else v for v in pd.unique(_as_array(column))]
    try:
        return sorted(labels)
    except TypeError:  # labels of different types: keep the order of first appearance
        return labels


def canonical_blocks(
    column: Any, order: list[Any] | None = None
) -> tuple[list[tuple[Any, slice | np.ndarray]], np.ndarray | None]:
    """Row blocks of a group column in canonical order.

    Parameters
    ----------
    column : array-like
        The group label of every row.
    order : list, optional
        The labels in canonical order (default :func:`subject_order` of ``column``).

    Returns
    -------
    (list of (label, rows), ndarray or None)
        Per label its rows (a slice when the rows of every group are contiguous and the
        groups already in canonical order, else an index array); and the permutation that
        puts the rows in canonical order, None when they already are.
    """
    import pandas as pd

    labels = subject_order(column) if order is None else list(order)
    codes = pd.Index(labels).get_indexer(_as_array(column))
    if codes.size and codes.min() < 0:
        raise ValueError("group column: a row's label is not among the labels of the order")
    counts = np.bincount(codes, minlength=len(labels)) if codes.size else np.zeros(len(labels), int)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    if codes.size < 2 or bool(np.all(codes[1:] >= codes[:-1])):
        perm = None
        rows: list[slice | np.ndarray] = [
            slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
    else:
        perm = np.argsort(codes, kind="stable")
        rows = [perm[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return list(zip(labels, rows, strict=True)), perm


def data_digests(
    model: GAM,
    data: Any,
    y: Any,
    weights: Any = None,
    offset: Any = None,
    *,
    groups: str | None = None,
) -> RowBlockDigests:
    """:meth:`GAM.row_block_digests` (see there)."""
    from gamstore.warmstart.keys import row_block_digests

    cols, _ = input_columns(model, data, y, weights, offset)
    if groups is None:
        return row_block_digests(cols)
    if not isinstance(groups, str):
        raise TypeError(f"groups: expected a column name (str), got {type(groups).__name__}")
    blocks, _ = canonical_blocks(_raw_column(data, groups, "groups"))
    return row_block_digests(cols, blocks)


class DeferredRowBlocks:
    """Row-block digests made on first use: what ``run_loso`` hands its folds.

    A LOSO fold's store key is the full data's per-subject digests minus its own subject
    (:meth:`~gamstore.warmstart.keys.RowBlockDigests.without`); hashing the full data costs
    about a millisecond on a small set, which a run whose folds never look up nor save
    (the adaptive policy skipped both) need not pay. ``make`` runs once, on the first
    :meth:`resolve` of this object or of any :meth:`without` view of it; the digests, and so
    every key, are the ones ``make`` returns (the same as computing them up front).

    Parameters
    ----------
    make : callable
        Zero-argument callable returning the digests, or None when they cannot be made (the
        fit then hashes its own data). An exception it raises is raised by :meth:`resolve`
        every time (the fit reports it and keys its built design).

    Notes
    -----
    Thread-safe (``make`` runs once under a lock). Pickles as the digests themselves (made
    then): a worker process receives plain :class:`~gamstore.warmstart.keys.RowBlockDigests`.
    """

    __slots__ = ("_drop", "_error", "_lock", "_make", "_parent", "_value", "computed")

    def __init__(self, make: Callable[[], RowBlockDigests | None]) -> None:
        if not callable(make):
            raise TypeError(f"make: expected a callable, got {type(make).__name__}")
        self._make: Callable[[], RowBlockDigests | None] | None = make
        self._parent: DeferredRowBlocks | None = None
        self._drop: object = None
        self._lock = threading.Lock()
        self._value: RowBlockDigests | None = None
        self._error: BaseException | None = None
        #: True once ``make`` ran (on this object, or on the one a view was taken of).
        self.computed = False

    def without(self, label: object) -> DeferredRowBlocks:
        """A deferred view of the same digests minus the block ``label`` (nothing computed
        now; :meth:`resolve` raises KeyError if there is no such block)."""
        view = DeferredRowBlocks.__new__(DeferredRowBlocks)
        view._make = None
        view._parent = self
        view._drop = label
        view._lock = self._lock
        view._value = None
        view._error = None
        view.computed = False
        return view

    def resolve(self) -> RowBlockDigests | None:
        """The digests (made now on first use), or None when they cannot be made."""
        if self._parent is not None:
            full = self._parent.resolve()
            return None if full is None else full.without(self._drop)
        if not self.computed:
            with self._lock:
                if not self.computed:
                    assert self._make is not None
                    try:
                        self._value = self._make()
                    except Exception as exc:  # kept: raised again on every resolve
                        self._error = exc
                    self._make = None  # its data need not be kept alive
                    self.computed = True
        if self._error is not None:
            raise self._error
        return self._value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_resolved, (self.resolve(),))

    def __repr__(self) -> str:
        root = self
        while root._parent is not None:
            root = root._parent
        state = "made" if root.computed else "not made yet"
        drop = "" if self._parent is None else f" without {self._drop!r}"
        return f"DeferredRowBlocks({state}{drop})"


def _resolved(value: RowBlockDigests | None) -> RowBlockDigests | None:
    return value


def fit_key(
    model: GAM,
    data: Any,
    y: Any,
    weights: Any,
    offset: Any,
    knots: Mapping[str, Any] | None,
    row_blocks: RowBlockDigests | DeferredRowBlocks | None,
) -> str:
    """The fit's exact block key from its inputs (see the module docstring).

    ``row_blocks``: digests of ``data`` computed before (e.g. the full data's minus one
    subject), or a :class:`DeferredRowBlocks` (resolved now); None, or deferred digests that
    cannot be made, hashes ``data`` now, as one block.

    Raises
    ------
    ValueError
        If ``row_blocks`` does not describe ``data`` (other columns or row count).
    """
    from gamstore._json import dumps
    from gamstore.fit.warm import fit_options
    from gamstore.warmstart.keys import input_block_key, row_block_digests

    if isinstance(row_blocks, DeferredRowBlocks):
        row_blocks = row_blocks.resolve()
    cols, notes = input_columns(model, data, y, weights, offset)
    if row_blocks is None:
        digests = row_block_digests(cols)
    else:
        expected = tuple(sorted(cols))
        if row_blocks.columns != expected:
            raise ValueError(
                f"row_blocks: digests of columns {list(row_blocks.columns)}, but this fit reads "
                f"{list(expected)} (make them with model.row_block_digests(data, y, weights, "
                "offset, groups=...))"
            )
        if row_blocks.n_rows != n_rows(data):
            raise ValueError(
                f"row_blocks: digests of {row_blocks.n_rows} rows, but data has {n_rows(data)}"
            )
        digests = row_blocks
    spec = {
        "family": model.family.kind,
        "family_repr": repr(model.family),
        "smooths": [repr(sm) for sm in model.smooths],
        "linear": list(model.linear),
        "na_action": model.na_action,
        "roles": _roles(y, weights, offset),
        "encodings": {k: v for k, v in sorted(notes.items()) if v is not None},
        "knots": None if knots is None else sorted(str(k) for k in knots),
    }
    arrays = {}
    for name, value in (knots or {}).items():
        arrays[f"knots/{name}"] = np.asarray(value, dtype=np.float64).reshape(-1)
    return input_block_key(
        model.family.kind, dumps(spec), digests, fit_options(model.control), arrays
    )
