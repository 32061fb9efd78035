"""mgcv-compatible cubic P-spline basis (``bs="ps"``) with its scaled difference penalty.

The knot rule, the penalty scaling and the sum-to-zero constraint follow mgcv's
``smooth.construct.ps.smooth.spec`` and ``smoothCon`` so that a log smoothing parameter here
means the same thing as mgcv's ``log(sp)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

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
    d = np.diff(t)
    return bool(d.size > 0 and d[0] > 0 and np.ptp(d) <= 1e-9 * d[0])


def _uniform_cubic_design(x: np.ndarray, t: np.ndarray, extrapolate: bool) -> np.ndarray:
    """Cubic B-splines on equally spaced knots in closed form (what ``ps`` knots always are).

    On knot interval m with local coordinate u in [0, 1) the four non-zero basis functions
    are the uniform cubic B-spline pieces; outside the span the end pieces are extended,
    exactly as ``BSpline.design_matrix(..., extrapolate=True)`` does.
    """
    k = t.size - 4
    if not extrapolate and x.size and (x.min() < t[3] or x.max() > t[k]):
        raise ValueError(f"x values outside the knot span [{t[3]}, {t[k]}]")
    h = (t[-1] - t[0]) / (t.size - 1)
    m = np.clip(np.floor((x - t[0]) / h), 3, k - 1).astype(np.int64)
    # local coordinate from the interval's own knots: no cancellation against t[0]
    u = (x - t[m]) / (t[m + 1] - t[m])
    u2 = u * u
    u3 = u2 * u
    n = x.shape[0]
    B = np.zeros((n, k))
    flat = B.reshape(-1)  # a view: write the four bands through flat indices
    idx = np.arange(n) * k + m
    w = 1.0 - u
    flat[idx - 3] = w * w * w / 6.0
    flat[idx - 2] = (3.0 * u3 - 6.0 * u2 + 4.0) / 6.0
    flat[idx - 1] = (-3.0 * u3 + 3.0 * u2 + 3.0 * u + 1.0) / 6.0
    flat[idx] = u3 / 6.0
    return B


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
    q, _ = np.linalg.qr(c, mode="complete")
    return np.ascontiguousarray(q[:, 1:])


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
    """

    knots: np.ndarray
    k: int
    T: np.ndarray
    S_raw: np.ndarray
    S: np.ndarray
    S_scale: float
    rank: int
    col_means: np.ndarray | None = None

    def raw_design(self, x: np.ndarray, extrapolate: bool = False) -> np.ndarray:
        """B-spline design in raw coordinates, shape (n, k)."""
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
    x_lo, x_hi = (float(np.min(x)), float(np.max(x))) if x.size else (np.nan, np.nan)
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
            if not np.all(np.isfinite(kn)) or np.any(np.diff(kn) <= 0):
                raise ValueError("knots must be finite and strictly increasing")
            t = kn.copy()
        else:
            raise ValueError(
                f"knots must have 2 values (a range) or k + 4 = {k + DEGREE + 1} values, "
                f"got {kn.size}"
            )
    # rows outside [t[3], t[k]] would not sum to one; frozen knots may not cover new data
    extrapolate = bool(x.size) and not (x_lo >= t[DEGREE] and x_hi <= t[k])
    # first pass over row chunks: column means (the constraint) and the max row sum of |B|
    col_sum = np.zeros(k)
    x_inf = 0.0
    chunks = _chunks(x.shape[0])
    Bc = np.zeros((0, k))
    for sl in chunks:
        Bc = bspline_design(x[sl], t, DEGREE, extrapolate=extrapolate)
        col_sum += Bc.sum(axis=0)
        # B >= 0 inside the knot span, so |B| is B itself (skips a copy; a -0.0 entry sums
        # like 0.0); extrapolated or rounding-negative values take the |B| path
        absB = Bc if Bc.min() >= 0.0 else np.abs(Bc)
        x_inf = max(x_inf, float(np.max(absB.sum(axis=1))))
    if x.shape[0] == 0:
        x_inf = 1.0
    S0 = difference_penalty(k, DIFF_ORDER)
    # mgcv smoothCon: S <- S / (norm(S, "O") / norm(X, "I")^2)
    s_scale = float(np.max(np.abs(S0).sum(axis=0))) / x_inf**2
    S_raw = S0 / s_scale
    col_means = col_sum / max(x.shape[0], 1)
    T = sum_to_zero_transform(col_means)
    S = T.T @ S_raw @ T
    S = (S + S.T) / 2.0
    basis = SmoothBasis(t, k, T, S_raw, S, s_scale, k - DIFF_ORDER, col_means)
    return basis, extrapolate, (Bc if len(chunks) == 1 else None)


def _chunks(n: int, chunk: int = 16384) -> list[slice]:
    return [slice(i, min(n, i + chunk)) for i in range(0, n, chunk)]


def fill_design(
    out: np.ndarray,
    x: np.ndarray,
    basis: SmoothBasis,
    R: np.ndarray,
    extrapolate: bool,
    B: np.ndarray | None = None,
) -> np.ndarray:
    """Write ``B T R`` into ``out`` (n, k-1) chunk by chunk; return colSums((B T)^2).

    ``R`` is the reduced -> working rotation; the column sums of squares of the *reduced*
    design feed mgcv's ``initial.sp``. ``B`` is the raw design when already computed.
    """
    ldxx = np.zeros(basis.k - 1)
    for sl in _chunks(x.shape[0]):
        Bc = B[sl] if B is not None else bspline_design(x[sl], basis.knots, DEGREE, extrapolate)
        Xr = Bc @ basis.T
        ldxx += np.einsum("ij,ij->j", Xr, Xr)
        out[sl] = Xr @ R
    return ldxx
