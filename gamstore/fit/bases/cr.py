"""``bs="cr"``: mgcv's cubic regression spline (``smooth.construct.cr.smooth.spec``).

Coefficients are the spline's values at ``k`` knots placed at quantiles of the unique
covariate values; between knots a natural cubic spline, beyond them linear (mgcv's
``crspl``). The penalty is the integrated squared second derivative ``D' B^{-1} D``
(Wood 2017, section 5.3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
from scipy.linalg import solve_banded

from gamstore.fit.bases import Basis, as_vector, register


def r_quantile7(xs: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """R's ``quantile(x, probs)`` (type 7) of sorted values, with R's interpolation formula."""
    n = xs.size
    index = 1.0 + (n - 1) * probs
    lo = np.floor(index).astype(np.intp)
    hi = np.ceil(index).astype(np.intp)
    qs = xs[lo - 1].copy()
    h = index - lo
    mix = (index > lo) & (xs[hi - 1] != qs)
    qs[mix] = (1.0 - h[mix]) * qs[mix] + h[mix] * xs[hi - 1][mix]
    return qs


def cr_knots(x: np.ndarray, k: int) -> np.ndarray:
    """mgcv's default ``cr`` knots: ``quantile(unique(x), seq(0, 1, length = k))``."""
    from gamstore.fit.bases import r_seq

    xu = np.unique(x)
    if xu.size < k:
        raise ValueError(
            f"s(bs='cr'): the covariate has {xu.size} unique values, fewer than k = {k} "
            "knots: reduce k"
        )
    return r_quantile7(xu, r_seq(0.0, 1.0, k))


def cr_matrices(xk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(F, S)`` of mgcv's ``getFS`` for ascending knots ``xk``.

    ``F`` (k, k) maps the values at the knots to the second derivatives there (rows 0 and
    k-1 zero: a natural spline); ``S = D' B^{-1} D`` is the wiggliness penalty.
    """
    n = xk.size
    h = np.diff(xk)
    D = np.zeros((n - 2, n))
    i = np.arange(n - 2)
    D[i, i] = 1.0 / h[:-1]
    D[i, i + 2] = 1.0 / h[1:]
    D[i, i + 1] = -D[i, i] - D[i, i + 2]
    # B: symmetric tridiagonal, diagonal (h_i + h_{i+1}) / 3, off-diagonal h_{i+1} / 6
    ab = np.zeros((3, n - 2))
    ab[1] = (h[:-1] + h[1:]) / 3.0
    ab[0, 1:] = h[1:-1] / 6.0
    ab[2, :-1] = h[1:-1] / 6.0
    BinvD = solve_banded((1, 1), ab, D)
    F = np.zeros((n, n))
    F[1:-1] = BinvD
    S = D.T @ BinvD
    return F, (S + S.T) / 2.0


def cr_design(x: np.ndarray, xk: np.ndarray, F: np.ndarray) -> np.ndarray:
    """mgcv's ``crspl`` design: natural cubic spline inside the knots, linear beyond."""
    x = np.asarray(x, dtype=np.float64)
    nk = xk.size
    X = np.zeros((x.size, nk))
    lo_k, hi_k = xk[0], xk[-1]
    inside = (x >= lo_k) & (x <= hi_k)
    xi = x[inside]
    # interval j with xk[j] <= x <= xk[j+1] (the lower interval at an interior knot)
    j = np.clip(np.searchsorted(xk, xi, side="left") - 1, 0, nk - 2)
    xj, xj1 = xk[j], xk[j + 1]
    hh = xj1 - xj
    ajm, ajp = xj1 - xi, xi - xj
    cjm = (ajm * (ajm * ajm / hh - hh)) / 6.0
    cjp = (ajp * (ajp * ajp / hh - hh)) / 6.0
    rows = np.flatnonzero(inside)
    X[rows] = cjm[:, None] * F[j] + cjp[:, None] * F[j + 1]
    X[rows, j] += ajm / hh
    X[rows, j + 1] += ajp / hh
    below = np.flatnonzero(x < lo_k)
    if below.size:
        hb = xk[1] - lo_k
        xik = x[below] - lo_k
        X[below] = (-xik * hb / 3.0)[:, None] * F[0] + (-xik * hb / 6.0)[:, None] * F[1]
        X[below, 0] += 1.0 - xik / hb
        X[below, 1] += xik / hb
    above = np.flatnonzero(x > hi_k)
    if above.size:
        ha = hi_k - xk[-2]
        xik = x[above] - hi_k
        X[above] = (xik * ha / 6.0)[:, None] * F[-2] + (xik * ha / 3.0)[:, None] * F[-1]
        X[above, -2] += -xik / ha
        X[above, -1] += 1.0 + xik / ha
    return X


@dataclass(frozen=True)
class CRBasis(Basis):
    """Cubic regression spline on ascending knots ``xk``."""

    kind: ClassVar[str] = "cr"
    xk: np.ndarray

    @cached_property
    def _FS(self) -> tuple[np.ndarray, np.ndarray]:
        return cr_matrices(self.xk)

    @property
    def width(self) -> int:
        return int(self.xk.size)

    @property
    def penalty(self) -> np.ndarray:
        return self._FS[1]

    @property
    def rank(self) -> int:
        return self.width - 2

    @property
    def knots(self) -> np.ndarray:
        return self.xk

    def raw_design(self, x: np.ndarray) -> np.ndarray:
        return cr_design(x, self.xk, self._FS[0])

    def extrapolation_range(self, fitted: np.ndarray | None = None) -> tuple[float, float]:
        lo, hi = float(self.xk[0]), float(self.xk[-1])
        if fitted is not None and fitted.size:
            lo, hi = min(lo, float(fitted.min())), max(hi, float(fitted.max()))
        return lo, hi


class CRType:
    """``bs="cr"``: k >= 3 knots at quantiles of the unique values, or exactly k given."""

    name = "cr"
    min_k = 3
    periodic = False

    def raw_width(self, k: int) -> int:
        return k

    def construct(self, x: np.ndarray, k: int, knots: np.ndarray | None) -> CRBasis:
        kn = as_vector(knots, "s(bs='cr')")
        if kn is None:
            xk = cr_knots(x, k)
        else:
            if kn.size != k:
                raise ValueError(f"s(bs='cr'): knots must have k = {k} values, got {kn.size}")
            xk = np.sort(kn)
            if not (np.diff(xk) > 0).all():
                raise ValueError("s(bs='cr'): knots must be distinct")
            # mgcv also refuses fewer unique values than k here; with the knots given (a
            # LOSO fold's frozen basis) the basis is defined anyway and the penalty
            # identifies the coefficients (a BasisDimensionWarning says so)
        return CRBasis(xk)


register(CRType())
