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

A Gaussian (identity link) fold also skips its one O(n p^2) product: given the response,
weights and offset columns (``rows(keep, response)``), :meth:`FoldRows.gaussian_gram` takes
the full data's ``Z'WZ`` in raw coordinates (computed once), subtracts the held-out rows'
share and carries the result into the fold's own constrained working basis; equal to the
sum over the fold's rows up to rounding (1e-13 relative in the tests).

A Gaussian fold goes further (:meth:`FoldRows.gaussian_design`, what ``GAM.prepare`` uses when
the rows name their response): its whole design is made p x p from the full data's moments,
the column sums and the largest row sums minus the held-out rows' (the centring constraints
absorbed again on the p x p matrices), and its fit needs no n x p model matrix (the deviance
from the moments, fitted values formed only when read); the matrix itself is formed on first
read (:class:`_FoldMatrix`). Equal to the built design up to rounding
(tests/test_foldview_moments.py); ``run_loso(reuse_designs=False)`` stays the plain path.

Inside a LOSO run a Gaussian fold does not read its own columns at all
(:meth:`FoldRows.gaussian_fold`): the pipeline builds the fold's data as the full data's rows
at ``keep`` and vouches for it by passing the held-out rows; the fold's checks then follow
from the full data's, made once (:meth:`FullRawBases.column_range`,
:meth:`FullRawBases.response_facts`), and from the held-out rows: O(held-out rows · p²) per
fold, plus the gathers of the response, weights and offset the fit holds.

Safety: rows are served only for the P-spline smooths this module knows to be row-wise, for
the same knot vector and only when the fold's covariate values are the full data's values
at the given rows; anything else (another basis type, other knots, other data) is evaluated
as usual.

Memory: per smooth a dense (n, k) array (one gather per fold) while they fit in
``dense_bytes`` (256 MiB by default), beyond it the 4 non-zero B-spline values of each row
with their columns (44 bytes a row), plus each row's absolute sum; shared by every fold of
a process. :func:`shared_raw_bases` keeps it for one data set per
process (a LOSO worker builds it on its first fold; nothing is pickled per fold) and drops it
when that data set is garbage collected or :func:`release_raw_bases` is called.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from gamstore.fit.basis import (
    _BAND_BLOCK,
    _BAND_OFFSET,
    DEGREE,
    RawSmoothBasis,
    RowBlock,
    _cubic_bands,
    _is_uniform,
    _penalty,
    bspline_design,
    col_sums,
    finish_smooth_bases,
    row_sums,
    smooth_knots,
    smooth_knots_range,
)
from gamstore.fit.data import get_column, n_rows, resolve_vector
from gamstore.fit.design import (
    Design,
    ParamTerm,
    SmoothBlock,
    SmoothTerm,
    _check_distinct,
    _initial_sp,
    _working_rotations,
    factor_levels,
)
from gamstore.fit.diagnostics import GamFitWarning, unidentifiable_note
from gamstore.fit.linalg import row_chunks

__all__ = ["FoldRows", "FullRawBases", "GaussianFold", "release_raw_bases", "shared_raw_bases"]


#: default memory for dense full raw designs (see FullRawBases): n = 100 000 rows of 30
#: smooths of k = 10, or n = 1e6 of 3; beyond it a smooth keeps its band values only
DENSE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class _FullBlock:
    """One smooth's raw design on every row of the full data.

    On equally spaced knots (what ``ps`` knots are) a cubic B-spline row has 4 non-zero
    values: they are kept with their columns (``cols``, ``vals``: 36 bytes a row instead of
    8 k) and scattered into zero rows on demand, the values the dense evaluation writes
    there (:func:`~gamstore.fit.basis._uniform_designs` does the same scatter). Other knot
    vectors keep the dense design ``B``.
    """

    x: np.ndarray  # covariate values, shape (n,)
    k: int
    row_abs: np.ndarray  # sum_j |B_ij| per row, as a fresh build forms it (the penalty scale)
    B: np.ndarray | None = None  # dense raw design (n, k), C order
    cols: np.ndarray | None = None  # (n, 4) int32: the columns of a row's 4 values
    vals: np.ndarray | None = None  # (n, 4) float64: the values
    # column sums, non-zero counts per column and the largest row_abs, over every row (a
    # Gaussian fold's column means and penalty scale are these minus its held-out rows')
    col_sum: np.ndarray | None = None
    nnz: np.ndarray | None = None
    abs_max: float = float("nan")
    abs_max_rows: int = 0  # how many rows attain it (B-spline rows inside the span all sum to 1)

    def with_stats(self) -> _FullBlock:
        """This block with ``col_sum``, ``nnz`` and ``abs_max`` filled in."""
        if self.B is not None:
            col_sum = col_sums(self.B)
            nnz = np.count_nonzero(self.B, axis=0).astype(np.int64)
        else:
            assert self.cols is not None and self.vals is not None
            c, v = self.cols.ravel(), self.vals.ravel()
            col_sum = np.bincount(c, weights=v, minlength=self.k)
            nnz = np.bincount(c[v != 0.0], minlength=self.k).astype(np.int64)
        abs_max = float(self.row_abs.max()) if self.row_abs.size else 0.0
        return dataclasses.replace(
            self,
            col_sum=col_sum,
            nnz=nnz,
            abs_max=abs_max,
            abs_max_rows=int(np.count_nonzero(self.row_abs == abs_max)),
        )

    def matvec(self, c: np.ndarray) -> np.ndarray:
        """``B c`` over every row, shape (n,)."""
        if self.B is not None:
            out = np.empty(self.B.shape[0])
            for sl in row_chunks(out.size):
                out[sl] = self.B[sl] @ c
            return out
        assert self.cols is not None and self.vals is not None
        return np.asarray(np.einsum("ij,ij->i", self.vals, c[self.cols]))

    @property
    def nbytes(self) -> int:
        """Bytes held (the covariate is the data's own column where it can be)."""
        parts = (self.B, self.cols, self.vals, self.row_abs)
        return sum(a.nbytes for a in parts if a is not None)

    def take(self, idx: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write the dense rows ``idx`` into ``out`` (shape (len(idx), k), C order)."""
        if self.B is not None:
            return np.asarray(self.B.take(idx, axis=0, out=out))
        assert self.cols is not None and self.vals is not None
        out.fill(0.0)
        flat = out.reshape(-1)
        flat[np.arange(0, idx.size * self.k, self.k)[:, None] + self.cols[idx]] = self.vals[idx]
        return out

    def dense(self, idx: np.ndarray) -> np.ndarray:
        """The dense rows ``idx``, a new (len(idx), k) array."""
        return self.take(idx, np.empty((idx.size, self.k)))


@dataclass(frozen=True)
class _Moments:
    """A Gaussian fit's n-sized products on the full data, in raw coordinates.

    ``Z = [parametric columns | raw design of each smooth]`` (n, q); ``G = Z' W Z`` and
    ``b = Z' W (y - offset)``: a fold's ``X'WX`` and ``X'W(y - offset)`` are these minus
    the held-out rows' share, carried into the fold's own constrained working basis.
    """

    par: np.ndarray  # (n, n_par) parametric columns
    blocks: tuple[_FullBlock, ...]
    y: np.ndarray
    w: np.ndarray
    off: np.ndarray
    G: np.ndarray
    b: np.ndarray

    def z_rows(self, rows: np.ndarray) -> np.ndarray:
        """``Z`` at the given rows, shape (len(rows), q)."""
        return np.concatenate(
            [self.par.take(rows, axis=0)] + [blk.dense(rows) for blk in self.blocks],
            axis=1,
        )


@dataclass(frozen=True)
class _Column:
    """A finite numeric column of the full data with its extremes and how many rows attain
    each: a subset's extremes follow from the rows left out (:meth:`fold_range`)."""

    x: np.ndarray
    lo: float
    hi: float
    n_lo: int
    n_hi: int

    @classmethod
    def of(cls, x: np.ndarray) -> _Column:
        lo, hi = float(x.min()), float(x.max())
        return cls(x, lo, hi, int(np.count_nonzero(x == lo)), int(np.count_nonzero(x == hi)))

    def fold_range(self, held: np.ndarray, keep: np.ndarray) -> tuple[float, float]:
        """min and max of ``x[keep]`` (``keep`` and ``held`` partition the rows): O(held)
        unless the held-out rows hold every row attaining an extreme (then O(kept)); exact
        either way."""
        if not keep.size:
            return float("nan"), float("nan")
        xh = self.x.take(held)
        if int(np.count_nonzero(xh == self.lo)) >= self.n_lo or (
            int(np.count_nonzero(xh == self.hi)) >= self.n_hi
        ):
            xk = self.x.take(keep)
            return float(xk.min()), float(xk.max())
        return self.lo, self.hi


@dataclass(frozen=True)
class _ResponseFacts:
    """What a Gaussian fold checks of its response and weights, on the full data."""

    n_pos: int  # rows with positive weight
    y_lo: float  # the response's range over those rows
    y_hi: float
    w_min: float  # the smallest weight
    w_one: bool  # every weight is 1
    off_zero: bool  # every offset is 0
    ztwz: float  # z'Wz, z = y - offset
    sum_log_w: float  # sum(log w) over positive weights


@dataclass(frozen=True)
class TakenRows:
    """A :class:`~gamstore.fit.basis.RowBlock`: rows ``keep`` of a full raw design."""

    block: _FullBlock
    keep: np.ndarray

    def __getitem__(self, rows: slice, /) -> np.ndarray:
        """Rows ``rows`` of the fold (positions in ``keep``), shape (len, k)."""
        return self.block.dense(self.keep[rows])

    def take(self, rows: slice, out: np.ndarray) -> None:
        """Write ``self[rows]`` into ``out``."""
        self.block.take(self.keep[rows], out)

    def abs_row_sum_max(self, rows: slice) -> float:
        """The largest absolute row sum over the fold's rows ``rows`` (max is exact)."""
        return float(self.block.row_abs.take(self.keep[rows]).max())


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
    dense_bytes : int
        Memory for dense (n, k) raw designs, the fastest to read (a fold's rows are one
        gather). A smooth that would take the total beyond it is kept as its 4 non-zero
        values per row instead (44 bytes a row; rebuilding the rows then costs about what
        evaluating them does, so only the memory is saved). None: ``DENSE_BYTES`` (256 MiB).
    """

    def __init__(self, data: Any, *, weak: bool = False, dense_bytes: int | None = None) -> None:
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
        self.dense_bytes = DENSE_BYTES if dense_bytes is None else int(dense_bytes)
        self._moments: dict[str, _Moments | None] = {}
        self._columns: dict[str, _Column | None] = {}
        self._facts: dict[int, tuple[_Moments, _ResponseFacts]] = {}
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held by the evaluated raw designs."""
        blocks = [b for b in self._blocks.values() if b is not None]
        return sum(b.nbytes for b in blocks)

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
        dense_now = sum(
            b.B.nbytes for b in self._blocks.values() if b is not None and b.B is not None
        )
        if not _is_uniform(t) or dense_now + x.size * sm.k * 8 <= self.dense_bytes:
            # extrapolate=True evaluates the end polynomials beyond the span, as a fit whose
            # rows reach there does; rows inside the span have the same values either way
            B = np.ascontiguousarray(bspline_design(x, t, DEGREE, extrapolate=True))
            absB = B if B.size == 0 or B.min() >= 0.0 else np.abs(B)
            return _FullBlock(x, sm.k, row_sums(absB), B=B).with_stats()
        n, k = x.size, sm.k
        cols = np.empty((n, 4), dtype=np.int32)
        vals = np.empty((n, 4))
        row_abs = np.empty(n)
        tt = t[None, :]
        for a in range(0, n, _BAND_BLOCK):
            b = min(n, a + _BAND_BLOCK)
            # the bands of the dense evaluation (bspline_design runs the same blocks)
            m, bands = _cubic_bands(x[None, a:b], tt)
            cols[a:b] = (m[0] - DEGREE)[:, None] + _BAND_OFFSET.reshape(1, 4)
            vals[a:b] = bands[:, 0, :].T
            # each row's sum depends on that row only, so the full data's serve every subset
            blk = _FullBlock(x, k, row_abs, cols=cols, vals=vals)
            dense = blk.dense(np.arange(a, b))
            row_abs[a:b] = row_sums(dense if dense.min() >= 0.0 else np.abs(dense))
        return _FullBlock(x, k, row_abs, cols=cols, vals=vals).with_stats()

    def gaussian_moments(
        self,
        linear: list[ParamTerm],
        smooths: list[tuple[SmoothTerm, np.ndarray]],
        response: tuple[str, str | None, str | None],
    ) -> _Moments | None:
        """``Z'WZ`` and ``Z'W(y - offset)`` of the full data (see :class:`_Moments`), once.

        ``response`` names the response, weights and offset columns (None: 1 and 0).
        """
        spec = repr(
            (
                [t.spec() for t in linear],
                [
                    (sm.term, int(sm.k), np.asarray(t, dtype=np.float64).tobytes())
                    for sm, t in smooths
                ],
                response,
            )
        )
        with self._lock:
            if spec not in self._moments:
                self._moments[spec] = self._gaussian_moments(linear, smooths, response)
            return self._moments[spec]

    def _gaussian_moments(
        self,
        linear: list[ParamTerm],
        smooths: list[tuple[SmoothTerm, np.ndarray]],
        response: tuple[str, str | None, str | None],
    ) -> _Moments | None:
        data = self._data if self._weak is None else self._weak()
        if data is None:
            return None
        blocks = []
        for sm, t in smooths:
            t = np.ascontiguousarray(t, dtype=np.float64)
            key = (sm.term, int(sm.k), t.tobytes())
            if key not in self._blocks:
                self._blocks[key] = self._evaluate(sm, t)
            blk = self._blocks[key]
            if blk is None:
                return None
            blocks.append(blk)
        n = self.n
        try:
            # as GAM.prepare reads them (the fold's are checked against these)
            y = get_column(data, response[0], role="response")
            w, _ = resolve_vector(data, response[1], n, role="weights", default=1.0)
            off, _ = resolve_vector(data, response[2], n, role="offset", default=0.0)
            par = np.empty((n, 1 + sum(t.width for t in linear)))
            par[:, 0] = 1.0
            j = 1
            for term in linear:
                par[:, j : j + term.width] = term.columns(data, n)
                j += term.width
        except (ValueError, TypeError, KeyError):
            return None
        if not (np.isfinite(y).all() and np.isfinite(w).all() and np.isfinite(off).all()):
            return None
        q = par.shape[1] + sum(blk.k for blk in blocks)
        G = np.zeros((q, q))
        b = np.zeros(q)
        mom = _Moments(par, tuple(blocks), y, w, off, G, b)
        for sl in row_chunks(n):
            rows = np.arange(sl.start, sl.stop)
            Z = mom.z_rows(rows)
            G += Z.T @ (Z * w[sl, None])
            b += Z.T @ (w[sl] * (y[sl] - off[sl]))
        return mom

    def rows(
        self,
        keep: np.ndarray,
        response: tuple[str, str | None, str | None] | None = None,
        held: np.ndarray | None = None,
    ) -> FoldRows:
        """The raw rows of a subset of the data (a fold), for ``GAM.fit(raw_rows=...)``.

        Parameters
        ----------
        keep : numpy.ndarray
            Positions (0-based) of the subset's rows in the full data, in the subset's order.
        response : (str, str or None, str or None), optional
            The response, weights and offset columns of the fit: a Gaussian (identity link)
            fit then also gets its ``X'WX`` and ``X'W(y - offset)`` downdated from the full
            data's instead of summed over its rows (:meth:`FoldRows.gaussian_gram`).
        held : numpy.ndarray, optional
            The full data's rows *not* in the subset. Given only by a caller that builds the
            fit's data itself as the full data's rows at ``keep`` (a LOSO fold,
            :func:`gamstore.loso.folds.run_fold`): a Gaussian fold is then built without
            reading its own columns (:meth:`FoldRows.gaussian_fold`); the full data's were
            checked once.
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
        hidx = None
        if held is not None:
            hidx = np.asarray(held)
            if (
                hidx.ndim != 1
                or hidx.dtype.kind not in "iu"
                or hidx.size + idx.size != self.n
                or (hidx.size and (int(hidx.min()) < 0 or int(hidx.max()) >= self.n))
            ):
                raise ValueError(
                    f"held: expected the {self.n - idx.size} row positions in [0, {self.n}) "
                    f"not in keep, got {hidx.dtype} {hidx.shape}"
                )
            hidx = hidx.astype(np.intp, copy=False)
        return FoldRows(self, idx.astype(np.intp, copy=False), response, hidx)

    def column_range(self, name: str) -> _Column | None:
        """A numeric covariate column of the full data, finite, with its min and max (read
        and checked once; None: not a finite numeric column, the fit reads it itself)."""
        with self._lock:
            if name not in self._columns:
                self._columns[name] = self._column_range(name)
            return self._columns[name]

    def _column_range(self, name: str) -> _Column | None:
        data = self._data if self._weak is None else self._weak()
        if data is None:
            return None
        try:
            x = get_column(data, name, role="covariate")
        except (ValueError, TypeError, KeyError):
            return None
        if x.ndim != 1 or x.size != self.n or not x.size or not np.isfinite(x).all():
            return None
        return _Column.of(x)

    def response_facts(self, mom: _Moments) -> _ResponseFacts:
        """The full data's response facts a Gaussian fold checks (once per moments)."""
        with self._lock:
            hit = self._facts.get(id(mom))
            if hit is None or hit[0] is not mom:
                used = mom.w > 0
                yu = mom.y[used]
                f = _ResponseFacts(
                    n_pos=int(np.count_nonzero(used)),
                    y_lo=float(yu.min()) if yu.size else float("nan"),
                    y_hi=float(yu.max()) if yu.size else float("nan"),
                    w_min=float(mom.w.min()) if mom.w.size else 0.0,
                    w_one=bool(np.all(mom.w == 1.0)),
                    off_zero=bool(np.all(mom.off == 0.0)),
                    ztwz=float(np.dot(mom.w * (mom.y - mom.off), mom.y - mom.off)),
                    sum_log_w=float(np.sum(np.log(mom.w[used]))),
                )
                hit = self._facts[id(mom)] = (mom, f)
            return hit[1]


class FoldRows:
    """``raw_rows`` for one fold: serves its rows of the full raw designs.

    Called by :func:`~gamstore.fit.design.build_design` per smooth with the resolved knots
    and the fold's covariate values; returns None (evaluate as usual) unless the smooth is a
    P-spline, the knots are the ones evaluated and the values are the full data's at
    ``keep``.
    """

    def __init__(
        self,
        full: FullRawBases,
        keep: np.ndarray,
        response: tuple[str, str | None, str | None] | None = None,
        held: np.ndarray | None = None,
    ) -> None:
        self.full = full
        self.keep = keep
        self.response = response
        #: the full data's rows not in the fold, given by a caller that vouches for the fit's
        #: data being the full data's rows at ``keep`` (see :meth:`gaussian_fold`)
        self.held = held
        self.served: set[tuple[str, int, bytes]] = set()

    def __call__(self, sm: SmoothTerm, knots: np.ndarray, x: np.ndarray) -> RowBlock | None:
        # only the plain P-spline term is known to be row-wise here; a new basis or term
        # type is evaluated by the fit itself until it says otherwise
        if not _plain_ps(sm):
            return None
        if x.shape != self.keep.shape:
            return None
        block = self.full.block(sm, knots)
        if block is None or not np.array_equal(block.x.take(self.keep), x):
            return None  # not these rows: evaluate
        self.served.add((sm.term, int(sm.k), np.asarray(knots, dtype=np.float64).tobytes()))
        return TakenRows(block, self.keep)

    def gaussian_gram(
        self, design: Design, y: np.ndarray, wt: np.ndarray, offset: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The fold's ``(X'WX, X'W(y - offset))`` from the full data's, or None.

        ``Z_f' W Z_f = Z' W Z - Z_h' W_h Z_h`` in raw coordinates (Z_h: the held-out rows), then
        carried into the fold's working basis by ``M = diag(I, T_j U_j)`` (the fold's own
        constraints and rotations): O(held-out rows) instead of O(n) per fold. Equal to the
        products over the fold's rows up to rounding (tests/test_foldview.py). None unless
        every smooth's rows came from here and the fold's response, weights, offset and
        parametric columns are the full data's at ``keep``.
        """
        if self.response is None or design.X.shape[0] != self.keep.size:
            return None
        if any(not _plain_ps(b.spec) or b.extra is not None for b in design.smooths):
            return None  # by-levels, random effects, other bases: the raw layout differs
        smooths = [(b.spec, b.basis.knots) for b in design.smooths]
        for sm, t in smooths:
            if (sm.term, int(sm.k), np.asarray(t, dtype=np.float64).tobytes()) not in self.served:
                return None
        mom = self.full.gaussian_moments(design.linear, smooths, self.response)
        if mom is None:
            return None
        keep = self.keep
        n_par = design.block_cols[0].stop
        same = (
            np.array_equal(mom.y.take(keep), y)
            and np.array_equal(mom.w.take(keep), wt)
            and np.array_equal(mom.off.take(keep), offset)
            and np.array_equal(mom.par.take(keep, axis=0), design.X[:, :n_par])
        )
        held_mask = np.ones(self.full.n, dtype=bool)
        held_mask[keep] = False
        held = np.flatnonzero(held_mask)
        if not same or held.size + keep.size != self.full.n:  # not the rows, or repeated rows
            return None
        Zh = mom.z_rows(held)
        G, b = _downdate(mom, held, Zh)
        return _carry(
            G, b, n_par, design.p, [(blk.basis.T @ blk.U, blk.cols) for blk in design.smooths]
        )

    def _held(self) -> np.ndarray | None:
        """The full data's rows not in the fold (None: ``keep`` repeats a row)."""
        held_mask = np.ones(self.full.n, dtype=bool)
        held_mask[self.keep] = False
        held = np.flatnonzero(held_mask)
        return None if held.size + self.keep.size != self.full.n else held

    def gaussian_design(
        self,
        data: Any,
        smooths: list[SmoothTerm],
        linear: list[str],
        knots: dict[str, Any] | None,
        y: np.ndarray,
        wt: np.ndarray,
        offset: np.ndarray,
    ) -> tuple[Design, np.ndarray, np.ndarray] | None:
        """A Gaussian fold's design from the full data's moments, without its n x p matrix.

        Everything a fit of an identity-link Gaussian needs is p x p: the fold's raw
        ``Z'WZ`` and ``Z'W(y - offset)`` (the full data's minus the held-out rows', as
        :meth:`gaussian_gram`), its column means (the full column sums minus the held-out
        rows'; a column left without data is exactly zero, as a fresh build finds it) and
        its penalty scale (the largest row sum over its rows, from the full data's), then
        the constraints, penalties and working rotations by the code of a fresh build
        (:func:`~gamstore.fit.basis.finish_smooth_bases`), mgcv's ``initial.sp`` from the
        diagonal of ``T' Z'WZ T`` and the fold's ``X'WX = M' Z'WZ M`` with
        ``M = diag(I, T_j U_j)``. The design's ``X`` is formed only if something reads it
        (:class:`_FoldMatrix`); the fit takes its deviance from the moments.

        Equal to the design built from the fold's covariates up to rounding (the sums are
        taken in another order; tests/test_foldview_moments.py). None (build as usual)
        unless every smooth is a plain P-spline with frozen knots served here, the linear
        terms are numeric, and the fold's covariates, response, weights and offset are the
        full data's at ``keep``; any check the build makes that fails here is left to it.
        """
        if self.response is None or not smooths:
            return None
        n = self.keep.size
        if n_rows(data) != n or any(not _plain_ps(sm) for sm in smooths):
            return None
        knots = dict(knots or {})
        keys = [sm.key for sm in smooths]
        names = [sm.term for sm in smooths]
        if set(knots) - {sm.knot_name for sm in smooths} or len(set(keys)) != len(keys):
            return None  # build_design reports it
        if len(set(linear)) != len(linear) or set(linear) & set(names):
            return None
        pterms = [ParamTerm(t, factor_levels(data, t)) for t in linear]
        if any(t.is_factor for t in pterms):
            return None  # a fold's levels may differ from the full data's
        n_par = 1 + sum(t.width for t in pterms)
        p = n_par + sum(sm.width for sm in smooths)
        if n <= p:
            return None
        xs, ts, extrap, dim_notes = [], [], [], []
        for sm in smooths:
            x = sm.values(data, role=f"covariate of {sm.label}")
            if x.ndim != 1:
                return None
            dim_notes.append(_check_distinct(x, sm))
            t, ext = smooth_knots(x, sm.k, knots.get(sm.term))
            if self(sm, t, x) is None:  # also checks x against the full data's at keep
                return None
            xs.append(x)
            ts.append(t)
            extrap.append(ext)
        mom = self.full.gaussian_moments(pterms, list(zip(smooths, ts, strict=True)), self.response)
        if mom is None:
            return None
        keep = self.keep
        par = mom.par.take(keep, axis=0)
        for j, term in enumerate(pterms):
            if not np.array_equal(par[:, 1 + j], term.columns(data, n)[:, 0]):
                return None
        if not (
            np.array_equal(mom.y.take(keep), y)
            and np.array_equal(mom.w.take(keep), wt)
            and np.array_equal(mom.off.take(keep), offset)
        ):
            return None
        held = self._held()
        if held is None:
            return None
        covariates = {sm.knot_name: x for sm, x in zip(smooths, xs, strict=True)}
        return _moment_design(
            mom, keep, held, pterms, smooths, ts, extrap, dim_notes, covariates, {}
        )

    def gaussian_fold(
        self,
        smooths: list[SmoothTerm],
        linear: list[str],
        knots: dict[str, Any] | None,
        response: tuple[str, str | None, str | None],
        n: int,
    ) -> GaussianFold | None:
        """A Gaussian fold's whole fit problem from the full data, its own rows never read.

        Only for a fold whose rows the caller vouches for (``held`` given to
        :meth:`FullRawBases.rows`: the fit's data are the full data's rows at ``keep``, a
        LOSO fold): the fold's columns are not read or compared with the full data's. What
        the checks of a fresh build need of them follows from the full data's, checked
        once per process (finite covariates, response, weights and offset; numeric linear
        terms), and the held-out rows: each covariate's range (the knots and their span),
        whether the response is constant on the rows with weight and whether any weight is
        positive, the first ``4 k`` values of each covariate (its distinct values, else all
        of them). The design is :meth:`gaussian_design`'s, the response, weights and offset
        are the full data's at ``keep``, and ``n_eff``, ``z'Wz`` and ``sum(log w)`` are the
        full data's minus the held-out rows' (:meth:`~gamstore.fit.reml.Problem.seed_sums`).

        None (build as usual, with every check of the fresh build) for anything else,
        including input the fresh build would refuse: its errors are the fit's.
        """
        held, keep = self.held, self.keep
        if held is None or self.response is None or tuple(response) != tuple(self.response):
            return None
        if not smooths or n != keep.size or any(not _plain_ps(sm) for sm in smooths):
            return None
        knots = dict(knots or {})
        keys = [sm.key for sm in smooths]
        names = [sm.term for sm in smooths]
        if set(knots) - {sm.knot_name for sm in smooths} or len(set(keys)) != len(keys):
            return None
        if len(set(linear)) != len(linear) or set(linear) & set(names):
            return None
        full = self.full
        data = full._data if full._weak is None else full._weak()
        if data is None:
            return None
        try:  # numeric or factor is the column's type: the fold's rows share it
            pterms = [ParamTerm(t, factor_levels(data, t)) for t in linear]
        except (ValueError, TypeError, KeyError):
            return None
        if any(t.is_factor for t in pterms):
            return None
        p = 1 + sum(t.width for t in pterms) + sum(sm.width for sm in smooths)
        if n <= p:
            return None
        ts: list[np.ndarray] = []
        extrap: list[bool] = []
        dim_notes: list[GamFitWarning | None] = []
        ranges: dict[str, np.ndarray] = {}
        for sm in smooths:
            col = full.column_range(sm.term)
            if col is None:
                return None
            x = col.x
            # the fresh build's own checks in its order (raising as it does): distinct
            # values (the first 4 k settle it as a rule, else all), then the knots on the
            # fold's covariate range
            head = x.take(keep[: 4 * sm.k])
            if len(set(head.tolist())) >= sm.k:
                dim_notes.append(None)
            else:
                dim_notes.append(_check_distinct(x.take(keep), sm))
            lo, hi = col.fold_range(held, keep)
            t, ext = smooth_knots_range(lo, hi, keep.size, sm.k, knots.get(sm.term))
            if full.block(sm, t) is None:
                return None
            ts.append(t)
            extrap.append(ext)
            ranges[sm.knot_name] = np.array([lo, hi])
        mom = full.gaussian_moments(pterms, list(zip(smooths, ts, strict=True)), self.response)
        if mom is None:
            return None
        facts = full.response_facts(mom)
        if facts.w_min < 0.0:
            return None  # the build reports negative weights
        wh = mom.w.take(held)
        pos_h = wh > 0.0
        n_eff = facts.n_pos - int(np.count_nonzero(pos_h))
        if n_eff <= 0:
            return None  # all weights zero: the build reports it
        yh = mom.y.take(held)[pos_h]
        if yh.size and (float(yh.min()) <= facts.y_lo or float(yh.max()) >= facts.y_hi):
            yk = mom.y.take(keep)[mom.w.take(keep) > 0.0]
            constant = float(yk.max()) == float(yk.min())
        else:
            constant = facts.y_lo == facts.y_hi
        if constant:
            return None  # a constant response: the build's family check reports it
        design, A, bw = _moment_design(
            mom, keep, held, pterms, smooths, ts, extrap, dim_notes, {}, ranges
        )
        zh = mom.y.take(held) - mom.off.take(held)
        ztwz = facts.ztwz - float(np.dot(wh * zh, zh))
        slw = facts.sum_log_w - float(np.sum(np.log(wh[pos_h])))
        return GaussianFold(
            design,
            A,
            bw,
            mom.y.take(keep),
            np.ones(keep.size) if facts.w_one else mom.w.take(keep),
            np.zeros(keep.size) if facts.off_zero else mom.off.take(keep),
            n_eff,
            ztwz,
            slw,
        )


@dataclass(frozen=True)
class GaussianFold:
    """A Gaussian LOSO fold's fit problem made by :meth:`FoldRows.gaussian_fold`."""

    design: Design
    XtWX: np.ndarray
    XtWz: np.ndarray
    y: np.ndarray
    wt: np.ndarray
    offset: np.ndarray
    n_eff: int  # rows with positive weight
    ztwz: float  # z'Wz, z = y - offset
    sum_log_wt: float  # sum(log w) over positive weights


def _moment_design(
    mom: _Moments,
    keep: np.ndarray,
    held: np.ndarray,
    pterms: list[ParamTerm],
    smooths: list[SmoothTerm],
    ts: list[np.ndarray],
    extrap: list[bool],
    dim_notes: list[GamFitWarning | None],
    covariates: dict[str, np.ndarray],
    ranges: dict[str, np.ndarray],
) -> tuple[Design, np.ndarray, np.ndarray]:
    """A fold's design from the full data's moments minus the held-out rows' (see
    :meth:`FoldRows.gaussian_design`): ``(design, X'WX, X'W(y - offset))``."""
    n = keep.size
    n_par = 1 + sum(t.width for t in pterms)
    p = n_par + sum(sm.width for sm in smooths)
    Zh = mom.z_rows(held)
    G, b = _downdate(mom, held, Zh)
    # per smooth: the fold's column means and penalty scale from the full data's
    raws: list[RawSmoothBasis] = []
    starts = []
    r = n_par
    for blk, t, ext in zip(mom.blocks, ts, extrap, strict=True):
        k = blk.k
        assert blk.col_sum is not None and blk.nnz is not None
        Zj = Zh[:, r : r + k]
        csum = blk.col_sum - Zj.sum(axis=0)
        csum[blk.nnz - np.count_nonzero(Zj, axis=0) == 0] = 0.0  # no data left: exact
        held_abs = blk.row_abs.take(held)
        if held_abs.size and int(np.count_nonzero(held_abs >= blk.abs_max)) >= blk.abs_max_rows:
            x_inf = float(blk.row_abs.take(keep).max())  # the largest row was held out
        else:
            x_inf = blk.abs_max
        s_scale = _penalty(k)[1] / x_inf**2
        raws.append(RawSmoothBasis(t, k, ext, csum / n, s_scale, None))
        starts.append(r)
        r += k
    # constraints, penalties and rotations, grouped by k as build_design does
    by_k: dict[int, list[int]] = {}
    for i, sm in enumerate(smooths):
        by_k.setdefault(sm.k, []).append(i)
    bases: list[Any] = [None] * len(smooths)
    rots: list[Any] = [None] * len(smooths)
    stacks = []
    for idx in by_k.values():
        group_bases, S_stack, _T = finish_smooth_bases([raws[i] for i in idx])
        stacks.append(S_stack)
        group_rots = _working_rotations(S_stack, group_bases[0].rank)
        for j, i in enumerate(idx):
            bases[i], rots[i] = group_bases[j], group_rots[j]
    blocks: list[SmoothBlock] = []
    ldxx = np.zeros(p)
    ldxx[:n_par] = np.diag(G)[:n_par]  # (not read: initial.sp looks at penalized columns)
    c0 = n_par
    carry = []
    for i, sm in enumerate(smooths):
        U, eig, logdet = rots[i]
        sl = slice(c0, c0 + sm.width)
        c0 += sm.width
        blocks.append(SmoothBlock(sm, bases[i], U, eig, sl, logdet))
        T = bases[i].T
        r = starts[i]
        Gjj = G[r : r + sm.k, r : r + sm.k]
        # colSums((B T)^2) over the fold's rows (weighted by wt: initial.spg)
        ldxx[sl] = np.einsum("ij,ji->i", T.T @ Gjj, T)
        carry.append((T @ U, sl))
    notes: list[GamFitWarning] = []
    for sb, note in zip(blocks, dim_notes, strict=True):
        empty = unidentifiable_note(sb.spec.label, sb.basis.col_means)
        notes.extend(w for w in (empty, note) if w is not None)
    S_all = stacks[0] if len(stacks) == 1 else None
    rho0 = _initial_sp(ldxx, [(blk.cols, blk.basis.S) for blk in blocks], S_all)
    A, bw = _carry(G, b, n_par, p, carry)
    lazy = _FoldMatrix(
        mom,
        keep,
        n_par,
        p,
        [(mb, T_U, sl) for mb, (T_U, sl) in zip(mom.blocks, carry, strict=True)],
    )
    design = Design(
        None,  # type: ignore[arg-type]  # formed on first read (lazy)
        pterms,
        blocks,
        n,
        p,
        rho0,
        ["(parametric)"] + [blk.label for blk in blocks],
        [slice(0, n_par)] + [blk.cols for blk in blocks],
        covariates=covariates,
        notes=notes,
        lazy=lazy,
    )
    design.covariate_ranges.update(ranges)
    return design, A, bw


def _downdate(mom: _Moments, held: np.ndarray, Zh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fold's raw ``(Z'WZ, Z'W(y - offset))``: the full data's minus the held-out rows'."""
    wh = mom.w[held]
    G = mom.G - Zh.T @ (Zh * wh[:, None])
    b = mom.b - Zh.T @ (wh * (mom.y[held] - mom.off[held]))
    return G, b


def _carry(
    G: np.ndarray, b: np.ndarray, n_par: int, p: int, blocks: list[tuple[np.ndarray, slice]]
) -> tuple[np.ndarray, np.ndarray]:
    """Raw moments carried into the working basis by ``M = diag(I, T_j U_j)``: ``(M'GM,
    M'b)`` (``blocks``: each smooth's ``T_j U_j`` and working columns, in raw order)."""
    M = np.zeros((G.shape[0], p))
    M[:n_par, :n_par] = np.eye(n_par)
    r = n_par
    for TU, cols in blocks:
        k = TU.shape[0]
        M[r : r + k, cols] = TU
        r += k
    A = M.T @ G @ M
    return (A + A.T) / 2.0, M.T @ b


class _FoldMatrix:
    """A fold design's model matrix as rows of the full data's raw bases (Design.lazy).

    ``X = [parametric columns | B_j T_j U_j]`` at the fold's rows: formed only when read
    (:meth:`matrix`); the fit's fitted values need ``X beta`` only (:meth:`linear_predictor`,
    one pass over each full raw design).
    """

    def __init__(
        self,
        mom: _Moments,
        keep: np.ndarray,
        n_par: int,
        p: int,
        blocks: list[tuple[_FullBlock, np.ndarray, slice]],
    ) -> None:
        self.mom = mom
        self.keep = keep
        self.n_par = n_par
        self.p = p
        self.blocks = blocks

    def matrix(self) -> np.ndarray:
        """The (n, p) working-basis model matrix."""
        keep = self.keep
        X = np.empty((keep.size, self.p))
        X[:, : self.n_par] = self.mom.par.take(keep, axis=0)
        for sl in row_chunks(keep.size):
            rows = keep[sl]
            for blk, TU, cols in self.blocks:
                X[sl, cols] = blk.dense(rows) @ TU
        return X

    def linear_predictor(self, beta: np.ndarray) -> np.ndarray:
        """``X beta`` (no offset), shape (n,), without forming X."""
        eta = self.mom.par @ beta[: self.n_par]
        for blk, TU, cols in self.blocks:
            eta += blk.matvec(TU @ beta[cols])
        return np.asarray(eta.take(self.keep))


def _plain_ps(sm: SmoothTerm) -> bool:
    """A plain P-spline smooth: its raw design rows are B-spline rows of its covariate."""
    return type(sm) is SmoothTerm and sm.bs == "ps" and sm.by is None


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
