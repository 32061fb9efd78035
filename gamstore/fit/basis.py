"""mgcv-compatible cubic P-spline basis (``bs="ps"``) with its scaled difference penalty.

The knot rule, the penalty scaling and the sum-to-zero constraint follow mgcv's
``smooth.construct.ps.smooth.spec`` and ``smoothCon`` so that a log smoothing parameter here
means the same thing as mgcv's ``log(sp)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

import numpy as np
from scipy.interpolate import BSpline

if TYPE_CHECKING:  # pragma: no cover
    from gamstore.fit.bases import Basis

DEGREE = 3  # cubic B-splines (mgcv m[1] = 2)
DIFF_ORDER = 2  # second-order difference penalty (mgcv m[2] = 2)


def ps_knots(x_min: float, x_max: float, k: int, degree: int = DEGREE) -> np.ndarray:
    """Equally spaced knots of mgcv's ``ps`` basis for a covariate range.

    Parameters
    ----------
    x_min, x_max : float
        Covariate range the basis must cover (data range, or a user-supplied range).
    k : int
        Basis dimension.
    degree : int
        B-spline degree.

    Returns
    -------
    numpy.ndarray
        ``k + degree + 1`` knots; the range is padded by 0.1% each side as mgcv does.
    """
    if not (np.isfinite(x_min) and np.isfinite(x_max)) or x_max <= x_min:
        raise ValueError(f"knot range must be finite with max > min, got ({x_min}, {x_max})")
    span = x_max - x_min
    lo = x_min - 0.001 * span
    hi = x_max + 0.001 * span
    dx = (hi - lo) / (k - degree)
    return lo + dx * np.arange(-degree, k + 1, dtype=np.float64)


def bspline_design(
    x: np.ndarray, knots: np.ndarray, degree: int = DEGREE, extrapolate: bool = False
) -> np.ndarray:
    """Dense B-spline design matrix (rows sum to one inside the knot span).

    Parameters
    ----------
    x : numpy.ndarray
        Covariate values, shape (n,).
    knots : numpy.ndarray
        Full knot vector, shape (k + degree + 1,).
    degree : int
        B-spline degree.
    extrapolate : bool
        Evaluate the end polynomials outside ``[knots[degree], knots[k]]`` (prediction).

    Returns
    -------
    numpy.ndarray
        Shape (n, k).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    t = np.asarray(knots, dtype=np.float64)
    if degree == 3 and _is_uniform(t):
        return _uniform_cubic_design(x, t, extrapolate)
    return BSpline.design_matrix(x, t, degree, extrapolate=extrapolate).toarray()


def _is_uniform(t: np.ndarray) -> bool:
    return _knot_facts(np.ascontiguousarray(t, dtype=np.float64).tobytes())[1]


@lru_cache(maxsize=256)
def _knot_facts(t_bytes: bytes) -> tuple[bool, bool]:
    """(finite and strictly increasing, equally spaced) for a knot vector's bytes.

    A fit checks the same frozen knots again and again (every LOSO fold); the answer
    depends on the knot values only, so it is cached.
    """
    t = np.frombuffer(t_bytes, dtype=np.float64)
    valid = bool(np.isfinite(t).all() and (t[1:] > t[:-1]).all())
    d = t[1:] - t[:-1]  # np.diff without its wrapper
    uniform = bool(d.size > 0 and d[0] > 0 and d.max() - d.min() <= 1e-9 * d[0])
    return valid, uniform


def _uniform_cubic_design(x: np.ndarray, t: np.ndarray, extrapolate: bool) -> np.ndarray:
    """Cubic B-splines on equally spaced knots in closed form (what ``ps`` knots always are).

    On knot interval m with local coordinate u in [0, 1) the four non-zero basis functions
    are the uniform cubic B-spline pieces; outside the span the end pieces are extended,
    exactly as ``BSpline.design_matrix(..., extrapolate=True)`` does.
    """
    k = t.size - 4
    if not extrapolate and x.size and (x.min() < t[3] or x.max() > t[k]):
        raise ValueError(f"x values outside the knot span [{t[3]}, {t[k]}]")
    return _uniform_designs(x[None, :], t[None, :])[0][0]


# u^3, u^2 and constant coefficients of the two middle pieces (times 6): 3u^3 - 6u^2 + 4
# and -3u^3 + 3u^2 + 3u + 1 (its 3u added separately), summed term by term left to right
# as the textbook formula reads (a - b is exactly a + (-b))
_MID_COEF = np.array([[3.0, -3.0], [-6.0, 3.0], [4.0, 1.0]]).reshape(3, 2, 1, 1)
# bands are stored in the order (1-u)^3, u^3, middle left, middle right: columns +0, +3, +1, +2
_BAND_OFFSET = np.array([0, 3, 1, 2], dtype=np.intp).reshape(4, 1, 1)


def _cubic_bands(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero part of the uniform cubic designs of s smooths at once: ``(m, bands)``.

    ``x`` has shape (s, n) and ``t`` (s, k + 4), one uniform knot vector per row. Row i of
    smooth j's design is zero except columns ``m[j, i] - 3 + _BAND_OFFSET``, which hold
    ``bands[:, j, i]`` (bands has shape (4, s, n)). Every value is the same floating-point
    expression, in the same order, as evaluating one smooth and one piece at a time:
    ``((1-u)(1-u))(1-u)/6``, ``(3u^3 - 6u^2 + 4)/6``, ``(-3u^3 + 3u^2 + 3u + 1)/6`` and
    ``(u u) u / 6``. Stacking only shares numpy's per-call overhead.
    """
    s, nt = t.shape
    k = nt - 4
    h = (t[:, -1] - t[:, 0]) / (nt - 1)
    r = x - t[:, :1]
    r /= h[:, None]
    # clip to the intervals 3 .. k-1; truncating the clipped (non-negative) value is the
    # floor of the unclipped one clipped, as x is finite here
    np.clip(r, 3.0, k - 1.0, out=r)
    m = r.astype(np.intp)
    if s == 1:
        at, dt = t[0], t[0, 1:] - t[0, :-1]
        idx = m[0]
    else:
        dt = np.zeros((s, nt))
        np.subtract(t[:, 1:], t[:, :-1], out=dt[:, :-1])
        at, dt = t.reshape(-1), dt.reshape(-1)
        idx = m + np.arange(0, s * nt, nt)[:, None]
    # wu = (1 - u, u), with u the local coordinate from the interval's own knots (no
    # cancellation against t[0])
    wu = np.empty((2,) + x.shape)
    u = np.subtract(x, at.take(idx), out=wu[1])
    u /= dt.take(idx)
    np.subtract(1.0, u, out=wu[0])
    sq = wu * wu
    bands = np.empty((4,) + x.shape)
    np.multiply(sq, wu, out=bands[:2])  # (1-u)^3 and u^3
    mid = bands[2:]
    np.multiply(_MID_COEF[0], bands[1], out=mid)
    mid += _MID_COEF[1] * sq[1]
    mid[1] += 3.0 * u  # the left piece has no u term
    mid += _MID_COEF[2]
    bands /= 6.0
    return m, bands


# rows x smooths evaluated per _cubic_bands call: its ~10 temporaries then stay small
# (<= 128 KiB), so they are recycled by malloc instead of being fresh pages every call
_BAND_BLOCK = 8192


def _uniform_designs(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, bool]:
    """Dense designs of s smooths on uniform knots, shape (s, n, k), and whether all >= 0.

    ``x`` (s, n), ``t`` (s, k + 4). The bands are evaluated in row blocks and written into
    the zero matrix through flat indices (one fancy assignment per block).
    """
    s, n = x.shape
    k = t.shape[1] - 4
    B = np.zeros((s, n, k))
    flat = B.reshape(-1)
    step = max(1, _BAND_BLOCK // max(s, 1))
    nonneg = True
    for a in range(0, n, step):
        b = min(n, a + step)
        m, bands = _cubic_bands(x[:, a:b], t)
        start = np.arange(a * k - 3, b * k - 3, k) + np.arange(0, s * n * k, n * k)[:, None]
        start += m
        flat[start + _BAND_OFFSET] = bands
        # the zeros off the bands are >= 0 too
        nonneg = nonneg and bool(bands.min() >= 0.0)
    return B, nonneg


# Reductions over the rows or columns of narrow (n, k) or stacked (s, n, k) designs. einsum
# sums each output element in one loop whatever the stacking or the row chunk, so a design
# does not depend on how its smooths were grouped; ``B.sum(axis=-1)`` would be several
# times slower here (one inner-loop call per row of k values).


def col_sums(B: np.ndarray) -> np.ndarray:
    """Column sums of a (n, k) or stacked (s, n, k) array."""
    return np.asarray(np.einsum("...ij->...j", B))


def row_sums(B: np.ndarray) -> np.ndarray:
    """Row sums of a (n, k) or stacked (s, n, k) array."""
    return np.asarray(np.einsum("...ij->...i", B))


def sq_col_sums(X: np.ndarray) -> np.ndarray:
    """Column sums of squares, ``colSums(X^2)``, of a (n, k) or stacked (s, n, k) array."""
    return col_sums(X * X)


def difference_penalty(k: int, order: int = DIFF_ORDER) -> np.ndarray:
    """Unscaled difference penalty ``D'D`` (rank ``k - order``)."""
    d = np.diff(np.eye(k), n=order, axis=0)
    s = d.T @ d
    return (s + s.T) / 2.0


def sum_to_zero_transform(col_means: np.ndarray) -> np.ndarray:
    """Null-space basis T of the constraint ``C beta = 0`` with ``C`` the column means.

    The Householder QR of ``C'`` gives an orthogonal Q whose first column spans C'; the
    remaining columns are T (k x (k-1), orthonormal, C T = 0) — the same matrix mgcv builds.
    """
    c = np.asarray(col_means, dtype=np.float64).reshape(-1, 1)
    if not np.all(c):
        return _sparse_constraint_transform(c[:, 0])
    q, _ = np.linalg.qr(c, mode="complete")
    return np.ascontiguousarray(q[:, 1:])


def _sparse_constraint_transform(c: np.ndarray) -> np.ndarray:
    """mgcv ``smoothCon`` for a constraint with zero entries (basis functions with no data).

    mgcv applies the Householder QR only to the columns with a non-zero constraint entry
    (``indi``): those columns are rotated, the last of them dropped, and every other column
    is kept as it is. The constrained space is the same as with a QR of the whole vector;
    the reduced coordinates (reported coefficients, ``initial.sp``) are mgcv's.
    """
    k = c.size
    indi = np.flatnonzero(c)
    T = np.eye(k)
    if indi.size:
        q, _ = np.linalg.qr(c[indi].reshape(-1, 1), mode="complete")
        T[np.ix_(indi, indi[:-1])] = q[:, 1:]
        keep = np.ones(k, dtype=bool)
        keep[indi[-1]] = False
    else:  # no constraint at all: mgcv would not reach here; drop the last column
        keep = np.arange(k) < k - 1
    return np.ascontiguousarray(T[:, keep])


@lru_cache(maxsize=32)
def _penalty(k: int) -> tuple[np.ndarray, float]:
    """``D'D`` for width k (read-only, shared) and its 1-norm: data-independent, so cached."""
    S0 = difference_penalty(k, DIFF_ORDER)
    S0.setflags(write=False)
    return S0, float(np.max(np.abs(S0).sum(axis=0)))


@dataclass(frozen=True)
class SmoothBasis:
    """Everything needed to rebuild the reduced design of one smooth term.

    Attributes
    ----------
    knots : numpy.ndarray
        Full knot vector (k + 4 values).
    k : int
        Basis dimension before the constraint.
    T : numpy.ndarray
        Constraint null-space basis, shape (k, k-1); ``beta_raw = T @ beta_reduced``.
    S_raw : numpy.ndarray
        Scaled penalty in raw coordinates, ``D'D / S_scale``, shape (k, k).
    S : numpy.ndarray
        Scaled penalty in reduced coordinates ``T' S_raw T``, shape (k-1, k-1).
    S_scale : float
        mgcv's ``S.scale``: the factor the unscaled ``D'D`` was divided by.
    rank : int
        Penalty rank (``k - 2``).
    col_means : numpy.ndarray or None
        Column means of the raw design on the fit's rows: the constraint row C that T was
        built from (used to transport coefficients across a changed constraint).
    impl : Basis or None
        The constructed raw basis of a registered type (:mod:`gamstore.fit.bases`); None for
        the P-spline built by this module (``bs="ps"``).
    """

    knots: np.ndarray
    k: int
    T: np.ndarray
    S_raw: np.ndarray
    S: np.ndarray
    S_scale: float
    rank: int
    col_means: np.ndarray | None = None
    impl: Basis | None = None

    @property
    def kind(self) -> str:
        """The mgcv ``bs`` code of the basis."""
        return "ps" if self.impl is None else self.impl.kind

    def raw_design(self, x: np.ndarray, extrapolate: bool = False) -> np.ndarray:
        """Design in raw coordinates, shape (n, k)."""
        if self.impl is not None:
            return self.impl.raw_design(x)
        return bspline_design(x, self.knots, DEGREE, extrapolate=extrapolate)

    def design(self, x: np.ndarray, extrapolate: bool = False) -> np.ndarray:
        """Constrained design ``B T``, shape (n, k-1)."""
        return self.raw_design(x, extrapolate=extrapolate) @ self.T


def build_smooth_basis(
    x: np.ndarray, k: int, knots: np.ndarray | None = None
) -> tuple[SmoothBasis, bool, np.ndarray | None]:
    """Construct the basis of one smooth on its data.

    Parameters
    ----------
    x : numpy.ndarray
        Covariate values, shape (n,), finite.
    k : int
        Basis dimension (>= 4).
    knots : numpy.ndarray or None
        None: from the data range. Two values: a range (padded like mgcv). ``k + 4`` values:
        the full knot vector, used as is (frozen knots, e.g. from a previous fit).

    Returns
    -------
    (SmoothBasis, bool, numpy.ndarray or None)
        The basis; whether ``x`` reaches outside the knot span (frozen knots from another
        data set), in which case the end polynomials are extrapolated; and the raw design
        when the data fit in one row chunk (else None: it is rebuilt chunk by chunk).
    """
    raw = raw_smooth_basis(x, k, knots)
    return finish_smooth_basis(raw, sum_to_zero_transform(raw.col_means)), raw.extrapolate, raw.B


class RowBlock(Protocol):
    """Rows of a smooth's raw design evaluated elsewhere, e.g. a LOSO fold's rows of the
    full data's raw design (:mod:`gamstore.fit.foldview`): ``block[a:b]`` is the raw design
    of the data's rows ``a .. b-1``, shape (b - a, k), the same values an evaluation on those
    rows gives (every raw design row depends on its own covariate value only)."""

    def __getitem__(self, rows: slice, /) -> np.ndarray: ...

    def take(self, rows: slice, out: np.ndarray) -> None:
        """Write ``self[rows]`` into ``out`` (no temporary)."""

    def abs_row_sum_max(self, rows: slice) -> float:
        """``max_i sum_j |B_ij|`` over ``rows``, each row sum as :func:`row_sums` forms it."""
        ...


@dataclass(frozen=True)
class RawSmoothBasis:
    """The data-dependent part of a smooth basis, before the constraint transform T.

    Split from :func:`build_smooth_basis` so a design with several smooths can build
    their designs together (:func:`raw_smooth_bases`) and factor all their constraints in
    one call (:func:`finish_smooth_bases`).
    """

    knots: np.ndarray
    k: int
    extrapolate: bool
    col_means: np.ndarray
    S_scale: float
    B: np.ndarray | None  # the raw design when the rows fit in one chunk


def smooth_knots(x: np.ndarray, k: int, knots: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Resolve and check the knots of one smooth (see :func:`build_smooth_basis`).

    Returns
    -------
    (numpy.ndarray, bool)
        The full knot vector (k + 4 values) and whether ``x`` reaches outside its span.
    """
    x_lo, x_hi = (float(x.min()), float(x.max())) if x.size else (np.nan, np.nan)
    return smooth_knots_range(x_lo, x_hi, x.size, k, knots)


def smooth_knots_range(
    x_lo: float, x_hi: float, size: int, k: int, knots: np.ndarray | None = None
) -> tuple[np.ndarray, bool]:
    """:func:`smooth_knots` from the covariate's range (``size`` values, min ``x_lo``, max
    ``x_hi``) instead of its values: all it reads of them (a LOSO fold knows its range from
    the full data's, :mod:`gamstore.fit.foldview`)."""
    if knots is None:
        t = ps_knots(x_lo, x_hi, k)
    else:
        kn = np.asarray(knots, dtype=np.float64).ravel()
        if kn.size == 2:
            lo, hi = float(kn.min()), float(kn.max())
            if lo > x_lo or hi < x_hi:
                raise ValueError(f"knot range ({lo}, {hi}) does not include the data range")
            t = ps_knots(lo, hi, k)
        elif kn.size == k + DEGREE + 1:
            if not _knot_facts(kn.tobytes())[0]:
                raise ValueError("knots must be finite and strictly increasing")
            t = kn.copy()
        else:
            raise ValueError(
                f"knots must have 2 values (a range) or k + 4 = {k + DEGREE + 1} values, "
                f"got {kn.size}"
            )
    # rows outside [t[3], t[k]] would not sum to one; frozen knots may not cover new data
    extrapolate = bool(size) and not (x_lo >= t[DEGREE] and x_hi <= t[k])
    return t, extrapolate


def raw_smooth_basis(x: np.ndarray, k: int, knots: np.ndarray | None = None) -> RawSmoothBasis:
    """Knots, column means and penalty scale of one smooth (see :func:`build_smooth_basis`)."""
    t, extrapolate = smooth_knots(x, k, knots)
    return raw_smooth_bases([x], k, [t], [extrapolate])[0]


def raw_smooth_bases(
    xs: list[np.ndarray], k: int, ts: list[np.ndarray], extrapolate: list[bool]
) -> list[RawSmoothBasis]:
    """:func:`raw_smooth_basis` of several smooths of equal width k and equal length.

    Smooths on equally spaced knots (what ``ps`` knots always are) are evaluated together
    as rows of stacked arrays; the results are identical to one smooth at a time.
    ``ts``/``extrapolate`` come from :func:`smooth_knots`.
    """
    return raw_smooth_group(xs, k, ts, extrapolate)[0]


def raw_smooth_group(
    xs: list[np.ndarray],
    k: int,
    ts: list[np.ndarray],
    extrapolate: list[bool],
    given: Sequence[RowBlock | None] | None = None,
) -> tuple[list[RawSmoothBasis], np.ndarray | None]:
    """:func:`raw_smooth_bases`, plus all raw designs stacked (s, n, k) when one array
    holds them (every smooth on uniform knots, one row chunk), else None.

    ``given[i]``, when not None, holds smooth i's raw design rows already evaluated (a LOSO
    fold's rows of the full data's design): they are read instead of evaluated, and every
    statistic is then computed from them by the same code, so the result is the same.
    """
    xs = [np.ascontiguousarray(x, dtype=np.float64) for x in xs]
    have = list(given) if given is not None else [None] * len(xs)
    n = xs[0].shape[0] if xs else 0
    uni = [i for i, t in enumerate(ts) if _is_uniform(t)]
    other = [i for i in range(len(xs)) if i not in uni]
    col_sum = np.zeros((len(xs), k))
    x_inf = np.zeros(len(xs))
    B: list[np.ndarray | None] = [None] * len(xs)
    chunks = _chunks(n)
    # stacking pays off for small n (numpy's per-call overhead); with several row chunks
    # each smooth runs alone, so the chunk temporaries stay those of one smooth
    groups = [uni] if len(chunks) == 1 else [[i] for i in uni]
    stack: np.ndarray | None = None
    for grp in groups:
        if not grp:
            continue
        xu = xs[grp[0]][None, :] if len(grp) == 1 else np.stack([xs[i] for i in grp])
        tu = ts[grp[0]][None, :] if len(grp) == 1 else np.stack([ts[i] for i in grp])
        blocks = [have[i] for i in grp]
        for sl in chunks:
            if all(b is not None for b in blocks):
                # rows evaluated elsewhere: read them, and their row sums (formed row by row,
                # so the same numbers); the column sums are this subset's own
                Bu = np.empty((len(grp), sl.stop - sl.start, k))
                for j, b in enumerate(blocks):
                    assert b is not None
                    b.take(sl, Bu[j])
                col_sum[grp] += col_sums(Bu)
                sums = [b.abs_row_sum_max(sl) for b in blocks if b is not None]
                x_inf[grp] = np.maximum(x_inf[grp], sums)
            else:
                Bu, nonneg = _uniform_designs(xu[:, sl], tu)
                col_sum[grp] += col_sums(Bu)
                # B >= 0 inside the knot span, so |B| is B itself (skips a copy; a -0.0
                # entry sums like 0.0); extrapolated values take the |B| path
                absB = Bu if nonneg else np.abs(Bu)
                x_inf[grp] = np.maximum(x_inf[grp], row_sums(absB).max(axis=-1))
                del absB
            if len(chunks) == 1:
                for j, i in enumerate(grp):
                    B[i] = Bu[j]
                if len(grp) == len(xs):
                    stack = Bu
    for i in other:
        for sl in chunks:
            src = have[i]
            if src is not None:
                Bc = src[sl]
                col_sum[i] += col_sums(Bc)
                x_inf[i] = max(x_inf[i], src.abs_row_sum_max(sl))
            else:
                Bc = BSpline.design_matrix(xs[i][sl], ts[i], DEGREE, extrapolate=extrapolate[i])
                Bc = Bc.toarray()
                col_sum[i] += col_sums(Bc)
                absB = Bc if Bc.min() >= 0.0 else np.abs(Bc)
                x_inf[i] = max(x_inf[i], float(row_sums(absB).max()))
            if len(chunks) == 1:
                B[i] = Bc
    out = []
    s0_norm = _penalty(k)[1]
    for i in range(len(xs)):
        xi = float(x_inf[i]) if n else 1.0
        # mgcv smoothCon: S <- S / (norm(S, "O") / norm(X, "I")^2)
        s_scale = s0_norm / xi**2
        col_means = col_sum[i] / max(n, 1)
        out.append(RawSmoothBasis(ts[i], k, extrapolate[i], col_means, s_scale, B[i]))
    return out, stack


def finish_smooth_basis(raw: RawSmoothBasis, T: np.ndarray) -> SmoothBasis:
    """Scaled penalties in raw and reduced coordinates, given the constraint transform T."""
    S_raw = _penalty(raw.k)[0] / raw.S_scale
    S = T.T @ S_raw @ T
    S = (S + S.T) / 2.0
    return SmoothBasis(
        raw.knots, raw.k, T, S_raw, S, raw.S_scale, raw.k - DIFF_ORDER, raw.col_means
    )


def finish_smooth_bases(
    raws: list[RawSmoothBasis],
) -> tuple[list[SmoothBasis], np.ndarray, np.ndarray]:
    """Constraints and penalties of several smooths of one width k, as stacked arrays.

    The same as ``finish_smooth_basis(raw, sum_to_zero_transform(raw.col_means))`` per
    smooth, bit for bit: numpy factors and multiplies a stack matrix by matrix with the
    same LAPACK/BLAS calls; stacking only shares the per-call overhead. Returns the bases,
    their reduced penalties S stacked (s, k-1, k-1) and their transforms T (s, k, k-1).
    """
    k = raws[0].k
    q = np.linalg.qr(np.stack([r.col_means for r in raws])[:, :, None], mode="complete")[0]
    T = np.ascontiguousarray(q[:, :, 1:])
    for j, r in enumerate(raws):
        if not np.all(r.col_means):
            T[j] = _sparse_constraint_transform(r.col_means)  # mgcv's indi columns only
    S_raw = _penalty(k)[0] / np.array([r.S_scale for r in raws])[:, None, None]
    S = T.transpose(0, 2, 1) @ S_raw @ T
    S = (S + S.transpose(0, 2, 1)) / 2.0
    bases = [
        SmoothBasis(r.knots, k, T[j], S_raw[j], S[j], r.S_scale, k - DIFF_ORDER, r.col_means)
        for j, r in enumerate(raws)
    ]
    return bases, S, T


def _chunks(n: int, chunk: int = 16384) -> list[slice]:
    if 0 < n <= chunk:
        return [slice(0, n)]
    return [slice(i, min(n, i + chunk)) for i in range(0, n, chunk)]


def fill_design(
    out: np.ndarray,
    x: np.ndarray,
    basis: SmoothBasis,
    R: np.ndarray,
    extrapolate: bool,
    B: np.ndarray | RowBlock | None = None,
    w: np.ndarray | None = None,
    wsum: np.ndarray | None = None,
) -> np.ndarray:
    """Write ``B T R`` into ``out`` (n, k-1) chunk by chunk; return colSums((B T)^2).

    ``R`` is the reduced -> working rotation; the column sums of squares of the *reduced*
    design feed mgcv's ``initial.sp``. ``B`` is the raw design when already computed (an
    array, or a :class:`RowBlock` read chunk by chunk). With
    row weights ``w``, ``colSums(w (B T)^2)`` (mgcv's ``initial.spg``) is added into ``wsum``.
    """
    chunks = _chunks(x.shape[0])
    ldxx = np.zeros(basis.k - 1)
    for sl in chunks:
        Bc = B[sl] if B is not None else bspline_design(x[sl], basis.knots, DEGREE, extrapolate)
        Xr = Bc @ basis.T
        if len(chunks) == 1:
            ldxx = sq_col_sums(Xr)  # 0 + v is v: these sums of squares are >= +0
        else:
            ldxx += sq_col_sums(Xr)
        if w is not None and wsum is not None:
            wsum += w[sl] @ (Xr * Xr)
        dst = out[sl]
        if _gemm_writable(dst):
            np.matmul(Xr, R, out=dst)  # straight into the block: no temporary, same gemm
        else:
            dst[...] = Xr @ R
    return ldxx


def fill_designs(
    outs: list[np.ndarray],
    B: np.ndarray,
    T: np.ndarray,
    Rs: list[np.ndarray],
    w: np.ndarray | None = None,
    wsums: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """:func:`fill_design` for smooths whose raw designs are stacked in one array.

    ``B`` (s, n, k) and ``T`` (s, k, k-1); writes ``B[j] T[j] Rs[j]`` into ``outs[j]`` and
    returns colSums((B[j] T[j])^2) per smooth. The stacked product runs the same gemm per
    smooth, so every value equals the one-smooth result.
    """
    Xr = np.matmul(B, T)
    sq = list(sq_col_sums(Xr))
    if w is not None and wsums is not None:
        # mgcv's initial.spg: colSums(w (B T)^2), one pass over the products already made
        wsums.extend(w @ (a * a) for a in Xr)
    for j, (dst, R) in enumerate(zip(outs, Rs, strict=True)):
        if _gemm_writable(dst):
            np.matmul(Xr[j], R, out=dst)
        else:
            dst[...] = Xr[j] @ R
    return sq


def _gemm_writable(a: np.ndarray) -> bool:
    """Whether BLAS gemm can write ``a`` in place (float64, unit column stride).

    numpy's matmul calls gemm for such an ``out`` with a leading dimension; other layouts
    would switch it to its own loop, whose rounding differs, so those take a copy.
    """
    if a.dtype != np.float64 or a.ndim != 2:
        return False
    s0, s1 = a.strides
    return bool(s1 == 8 and s0 % 8 == 0 and s0 >= 8 * a.shape[1])
