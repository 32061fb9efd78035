"""LOSO fold designs from the full data's raw bases: a row selection, not a rebuild.

A leave-one-subject-out fold fits the full data minus one subject's rows, with the knots
frozen at the full-data knots (:func:`gamstore.loso.run_loso`). A raw B-spline design row
depends only on its own covariate value and the knots, so a fold's raw design *is* the full
data's raw design without the held-out rows. :class:`FullRawBases` evaluates each smooth's
raw design on the full data once; :meth:`FullRawBases.rows` hands a fold's rows to
``GAM.fit(..., raw_rows=...)`` (:func:`~gamstore.fit.design.build_design`), which then reads
them instead of evaluating the splines.

Only the evaluation is reused. Everything that depends on *which* rows a fit has is
recomputed from the fold's rows by the same code as a fresh build: the column means
(mgcv's sum-to-zero centring constraint, absorbed again through
:func:`~gamstore.fit.basis.finish_smooth_bases`), the penalty scale, the working-basis
rotation, the model matrix and ``initial.sp``. The fold design is therefore the design
``build_design`` makes from the fold's covariates, value for value (tests/test_foldview.py).

Safety: rows are served only for the P-spline smooths this module knows to be row-wise, for
the same knot vector and only when the fold's covariate values are the full data's values
at the given rows; anything else (another basis type, other knots, other data) is evaluated
as usual.

Memory: one (n, k) float64 array per smooth, about the size of the model matrix itself,
shared by every fold of a process. :func:`shared_raw_bases` keeps it for one data set per
process (a LOSO worker builds it on its first fold; nothing is pickled per fold) and drops it
when that data set is garbage collected or :func:`release_raw_bases` is called.
"""

from __future__ import annotations

import functools
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from gamstore.fit.basis import DEGREE, RowBlock, bspline_design
from gamstore.fit.data import get_column, n_rows
from gamstore.fit.design import SmoothTerm

__all__ = ["FoldRows", "FullRawBases", "release_raw_bases", "shared_raw_bases"]


@dataclass(frozen=True)
class _FullBlock:
    """One smooth's raw design on every row of the full data."""

    x: np.ndarray  # covariate values, shape (n,)
    B: np.ndarray  # raw design, shape (n, k), C order
    nonneg: bool


@dataclass(frozen=True)
class TakenRows:
    """A :class:`~gamstore.fit.basis.RowBlock`: rows ``keep`` of a full raw design."""

    B: np.ndarray
    keep: np.ndarray
    nonneg: bool

    def __getitem__(self, rows: slice, /) -> np.ndarray:
        """Rows ``rows`` of the fold (positions in ``keep``), shape (len, k)."""
        return np.asarray(self.B.take(self.keep[rows], axis=0))


class FullRawBases:
    """Raw designs of a data set's smooths, evaluated once and shared by row selections.

    Parameters
    ----------
    data : pandas.DataFrame or Mapping[str, array-like]
        The full data (a LOSO run's rows). A design is evaluated on first request per
        (smooth, knot vector).
    weak : bool
        Hold ``data`` by a weak reference where it allows one (the process-wide cache of
        :func:`shared_raw_bases` must not keep a data set alive); once it is gone nothing
        new is evaluated and the fits evaluate their bases themselves.
    """

    def __init__(self, data: Any, *, weak: bool = False) -> None:
        self._data: Any = data
        self._weak: weakref.ref[Any] | None = None
        if weak:
            try:
                self._weak = weakref.ref(data)
                self._data = None
            except TypeError:  # not weak-referenceable (a dict): hold it
                pass
        self.n = n_rows(data)
        self._blocks: dict[tuple[str, int, bytes], _FullBlock | None] = {}
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held by the evaluated raw designs."""
        return sum(b.B.nbytes + b.x.nbytes for b in self._blocks.values() if b is not None)

    def block(self, sm: SmoothTerm, knots: np.ndarray) -> _FullBlock | None:
        """The full raw design of ``sm`` on ``knots`` (None: cannot be evaluated here)."""
        t = np.ascontiguousarray(knots, dtype=np.float64)
        key = (sm.term, int(sm.k), t.tobytes())
        with self._lock:  # dask runs folds in threads: evaluate once
            if key not in self._blocks:
                self._blocks[key] = self._evaluate(sm, t)
            return self._blocks[key]

    def _evaluate(self, sm: SmoothTerm, t: np.ndarray) -> _FullBlock | None:
        data = self._data if self._weak is None else self._weak()
        if data is None or t.size != sm.k + DEGREE + 1:
            return None
        try:
            x = get_column(data, sm.term, role=f"covariate of {sm.label}")
        except (ValueError, TypeError, KeyError):
            return None  # the fit reports the problem itself
        if x.ndim != 1 or x.size != self.n or not np.isfinite(x).all():
            return None  # rows a fit would omit or refuse: nothing to share
        # extrapolate=True evaluates the end polynomials beyond the span, as a fit whose rows
        # reach there does; rows inside the span have the same values either way
        B = np.ascontiguousarray(bspline_design(x, t, DEGREE, extrapolate=True))
        return _FullBlock(x, B, bool(B.min() >= 0.0) if B.size else True)

    def rows(self, keep: np.ndarray) -> FoldRows:
        """The raw rows of a subset of the data (a fold), for ``GAM.fit(raw_rows=...)``.

        Parameters
        ----------
        keep : numpy.ndarray
            Positions (0-based) of the subset's rows in the full data, in the subset's order.
        """
        idx = np.asarray(keep)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ValueError(
                f"keep: expected 1-D integer row positions, got {idx.dtype} {idx.shape}"
            )
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.n):
            raise ValueError(
                f"keep: row positions must lie in [0, {self.n}), got {idx.min()}..{idx.max()}"
            )
        return FoldRows(self, idx.astype(np.intp, copy=False))


class FoldRows:
    """``raw_rows`` for one fold: serves its rows of the full raw designs.

    Called by :func:`~gamstore.fit.design.build_design` per smooth with the resolved knots
    and the fold's covariate values; returns None (evaluate as usual) unless the smooth is a
    P-spline, the knots are the ones evaluated and the values are the full data's at
    ``keep``.
    """

    def __init__(self, full: FullRawBases, keep: np.ndarray) -> None:
        self.full = full
        self.keep = keep

    def __call__(self, sm: SmoothTerm, knots: np.ndarray, x: np.ndarray) -> RowBlock | None:
        # only the plain P-spline term is known to be row-wise here; a new basis or term
        # type is evaluated by the fit itself until it says otherwise
        if type(sm) is not SmoothTerm or getattr(sm, "bs", "ps") != "ps":
            return None
        if x.shape != self.keep.shape:
            return None
        block = self.full.block(sm, knots)
        if block is None or not np.array_equal(block.x.take(self.keep), x):
            return None  # not these rows: evaluate
        return TakenRows(block.B, self.keep, block.nonneg)


# one data set per process (a LOSO run's frame): workers build it on their first fold
_SHARED: dict[int, tuple[weakref.ref[Any] | None, FullRawBases]] = {}
_SHARED_LOCK = threading.RLock()  # a weakref callback may run inside (GC)


def shared_raw_bases(data: Any) -> FullRawBases:
    """The process's :class:`FullRawBases` for ``data`` (the same object), made on first use.

    Only the most recent data set is kept (a new one replaces it), and it is dropped when
    ``data`` is garbage collected, so a long-lived worker holds at most one.
    """
    key = id(data)
    with _SHARED_LOCK:
        hit = _SHARED.get(key)
        if hit is not None and (hit[0] is None or hit[0]() is data):
            return hit[1]
        _SHARED.clear()
        full = FullRawBases(data, weak=True)
        try:
            ref: weakref.ref[Any] | None = weakref.ref(data, functools.partial(_drop, key))
        except TypeError:  # not weak-referenceable (a dict): held, so its id stays its own
            ref = None
        _SHARED[key] = (ref, full)
        return full


def _drop(key: int, _ref: Any = None) -> None:
    with _SHARED_LOCK:
        _SHARED.pop(key, None)


def release_raw_bases(data: Any = None) -> None:
    """Drop the shared raw designs of ``data`` (None: of any data set)."""
    with _SHARED_LOCK:
        if data is None:
            _SHARED.clear()
        else:
            _SHARED.pop(id(data), None)
