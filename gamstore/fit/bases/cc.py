"""``bs="cc"``: mgcv's cyclic cubic regression spline (``smooth.construct.cc.smooth.spec``).

``k`` knots, the first and last identified: ``k - 1`` coefficients (the values at the knots
but the last), a cubic spline whose value, slope and curvature match at the two ends. The
period is the knot range: ``knots={"x": (lo, hi)}`` gives it (e.g. months 0.5 to 12.5);
covariate values outside it are wrapped (mgcv's ``cwrap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from gamstore.fit.bases import Basis, as_vector, register


def place_knots(x: np.ndarray, nk: int) -> np.ndarray:
    """mgcv's ``place.knots``: ``nk`` knots spread evenly through the sorted unique values."""
    xs = np.unique(x)
    n = xs.size
    if nk > n:
        raise ValueError(f"s(bs='cc'): {nk} knots but only {n} unique covariate values: reduce k")
    if nk == 2:
        return np.array([xs[0], xs[-1]])
    delta = (n - 1) / (nk - 1)
    i = np.arange(1, nk - 1, dtype=np.float64)
    lbi = np.floor(delta * i).astype(np.intp) + 1  # 1-based, as R
    frac = delta * i + 1 - lbi
    knot = np.empty(nk)
    knot[0], knot[-1] = xs[0], xs[-1]
    knot[1:-1] = xs[lbi - 1] * (1 - frac) + xs[lbi] * frac
    return knot


def cwrap(x0: float, x1: float, x: np.ndarray) -> np.ndarray:
    """mgcv's ``cwrap``: map values outside ``[x0, x1]`` into it by the period ``x1 - x0``."""
    h = x1 - x0
    x = np.array(x, dtype=np.float64)
    hi = x > x1
    if hi.any():
        x[hi] = x0 + np.fmod(x[hi] - x1, h)  # R's %% of a positive number
    lo = x < x0
    if lo.any():
        x[lo] = x1 - np.fmod(x0 - x[lo], h)
    return x


def cc_matrices(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(BD, S)``: ``BD = B^{-1} D`` (values -> second derivatives) and ``S = D' B^{-1} D``
    of mgcv's ``getBD`` for the cyclic spline on knots ``k``."""
    h = np.diff(k)
    n = h.size
    B = np.zeros((n, n))
    D = np.zeros((n, n))
    for i in range(n):
        im, ip = (i - 1) % n, (i + 1) % n
        hm, hi = h[i - 1], h[i]  # h[-1] is h[n-1]: the wrap-around interval
        B[i, im] += hm / 6.0
        B[i, i] += (hm + hi) / 3.0
        B[i, ip] += hi / 6.0
        D[i, im] += 1.0 / hm
        D[i, i] += -(1.0 / hm + 1.0 / hi)
        D[i, ip] += 1.0 / hi
    BD = np.linalg.solve(B, D)
    S = D.T @ BD
    return BD, (S + S.T) / 2.0


def cc_design(x: np.ndarray, knots: np.ndarray, BD: np.ndarray) -> np.ndarray:
    """mgcv's ``Predict.matrix.cyclic.smooth`` (values outside the period wrapped)."""
    n = knots.size
    x = np.asarray(x, dtype=np.float64)
    if x.size and (x.max() > knots[-1] or x.min() < knots[0]):
        x = cwrap(float(knots[0]), float(knots[-1]), x)
    h = np.diff(knots)
    # j (1-based) = the smallest i >= 2 with x <= knots[i]; j1 = j - 1
    j = np.clip(np.searchsorted(knots, x, side="left"), 1, n - 1) + 1
    j1 = j - 1
    hj = h[j1 - 1]
    j = np.where(j == n, 1, j)
    a = knots[j1] - x  # knots[j1 + 1] in R's 1-based indexing
    b = x - knots[j1 - 1]
    eye = np.eye(n - 1)
    r1, r = j1 - 1, j - 1
    X = (
        BD[r1] * (a**3 / (6 * hj))[:, None]
        + BD[r] * (b**3 / (6 * hj))[:, None]
        - BD[r1] * (hj * a / 6)[:, None]
        - BD[r] * (hj * b / 6)[:, None]
        + eye[r1] * (a / hj)[:, None]
        + eye[r] * (b / hj)[:, None]
    )
    return X


@dataclass(frozen=True)
class CCBasis(Basis):
    """Cyclic cubic regression spline on ``k`` knots (period ``knots[-1] - knots[0]``)."""

    kind: ClassVar[str] = "cc"
    xk: np.ndarray

    @cached_property
    def _BDS(self) -> tuple[np.ndarray, np.ndarray]:
        return cc_matrices(self.xk)

    @property
    def width(self) -> int:
        return int(self.xk.size - 1)

    @property
    def penalty(self) -> np.ndarray:
        return self._BDS[1]

    @property
    def rank(self) -> int:
        return self.width - 1

    @property
    def knots(self) -> np.ndarray:
        return self.xk

    def raw_design(self, x: np.ndarray) -> np.ndarray:
        return cc_design(x, self.xk, self._BDS[0])

    def extrapolation_range(self, fitted: np.ndarray | None = None) -> None:
        return None  # periodic: nothing is extrapolated


class CCType:
    """``bs="cc"``: k >= 4; knots None (mgcv's ``place.knots``), a period (2 values) or k."""

    name = "cc"
    min_k = 4
    periodic = True

    def raw_width(self, k: int) -> int:
        return k - 1

    def construct(self, x: np.ndarray, k: int, knots: np.ndarray | None) -> CCBasis:
        kn = as_vector(knots, "s(bs='cc')")
        if kn is None:
            xk = place_knots(x, k)
        elif kn.size == 2:
            lo, hi = float(kn.min()), float(kn.max())
            xk = place_knots(np.concatenate([[lo, hi], x]), k)
        elif kn.size == k:
            xk = np.sort(kn)
        else:
            raise ValueError(
                f"s(bs='cc'): knots must have 2 values (the period) or k = {k}, got {kn.size}"
            )
        if not (np.diff(xk) > 0).all():
            raise ValueError("s(bs='cc'): knots must be distinct")
        return CCBasis(xk)


register(CCType())
