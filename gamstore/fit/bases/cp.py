"""``bs="cp"``: mgcv's cyclic P-spline (``smooth.construct.cp.smooth.spec``).

``k`` cubic B-splines wrapped onto a period of ``k + 1`` equally spaced knots (mgcv's
``cSplineDes``) with a cyclic second-order difference penalty. The period is the knot range:
``knots={"x": (lo, hi)}`` gives it, else the data range.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from gamstore.fit.bases import Basis, as_vector, r_seq, register
from gamstore.fit.bases.cc import cwrap

ORDER = 4  # cubic B-splines (mgcv m[1] + 2 with m[1] = 2)
PEN_ORDER = 2


def bspline_values(t: np.ndarray, x: np.ndarray, order: int) -> np.ndarray:
    """All ``t.size - order`` B-splines of an order on knots ``t`` at ``x`` (Cox-de Boor).

    Exact B-spline values anywhere in ``[t_0, t_last]`` (zero outside each support), as R's
    ``splineDesign(outer.ok = TRUE)`` gives them; the right end belongs to the last interval.
    """
    m = t.size
    x = np.asarray(x, dtype=np.float64)
    N = np.zeros((x.size, m - 1))
    # the interval of each x (right end closed on the last non-empty interval)
    j = np.searchsorted(t, x, side="right") - 1
    last = int(np.flatnonzero(t[1:] > t[:-1])[-1])
    j = np.where(x >= t[-1], last, j)
    ok = (j >= 0) & (j < m - 1)
    N[np.flatnonzero(ok), j[ok]] = 1.0
    for p in range(1, order):
        nb = m - 1 - p
        out = np.zeros((x.size, nb))
        for i in range(nb):
            d1 = t[i + p] - t[i]
            d2 = t[i + p + 1] - t[i + 1]
            if d1 > 0:
                out[:, i] += (x - t[i]) / d1 * N[:, i]
            if d2 > 0:
                out[:, i] += (t[i + p + 1] - x) / d2 * N[:, i + 1]
        N = out
    return N


def csplinedes(x: np.ndarray, knots: np.ndarray, order: int = ORDER) -> np.ndarray:
    """mgcv's ``cSplineDes``: cyclic B-spline design on the period ``[knots[0], knots[-1]]``."""
    nk = knots.size
    k1 = knots[0]
    xc = knots[nk - order]
    ext = np.concatenate([k1 - (knots[-1] - knots[nk - order : nk - 1]), knots])
    X = bspline_values(ext, x, order)
    ind = x > xc
    if ind.any():
        X[ind] += bspline_values(ext, x[ind] - ext.max() + k1, order)
    return X


def cyclic_penalty(np_: int, order: int = PEN_ORDER) -> np.ndarray:
    """``D'D`` of the cyclic difference matrix (mgcv's ``cp`` penalty)."""
    De = np.eye(np_ + order)
    for _ in range(order):
        De = np.diff(De, axis=0)
    D = De[:, order:].copy()
    D[:, np_ - order :] += De[:, :order]
    S = D.T @ D
    return (S + S.T) / 2.0


@dataclass(frozen=True)
class CPBasis(Basis):
    """Cyclic cubic P-spline on ``k + 1`` knots (period ``knots[-1] - knots[0]``)."""

    kind: ClassVar[str] = "cp"
    xk: np.ndarray

    @cached_property
    def _S(self) -> np.ndarray:
        return cyclic_penalty(self.width)

    @property
    def width(self) -> int:
        return int(self.xk.size - 1)

    @property
    def penalty(self) -> np.ndarray:
        return self._S

    @property
    def rank(self) -> int:
        return self.width - 1

    @property
    def knots(self) -> np.ndarray:
        return self.xk

    def raw_design(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        k0, k1 = float(self.xk[0]), float(self.xk[-1])
        if x.size and (x.min() < k0 or x.max() > k1):
            x = cwrap(k0, k1, x)
        return csplinedes(x, self.xk)

    def extrapolation_range(self, fitted: np.ndarray | None = None) -> None:
        return None  # periodic: nothing is extrapolated


class CPType:
    """``bs="cp"``: k >= 4; knots None (data range), a period (2 values) or ``k + 1``."""

    name = "cp"
    min_k = 4
    periodic = True

    def raw_width(self, k: int) -> int:
        return k

    def construct(self, x: np.ndarray, k: int, knots: np.ndarray | None) -> CPBasis:
        kn = as_vector(knots, "s(bs='cp')")
        nk = k + 1
        if kn is None or kn.size == 2:
            if kn is None:
                lo, hi = float(x.min()), float(x.max())
            else:
                lo, hi = float(kn.min()), float(kn.max())
                if lo > float(x.min()) or hi < float(x.max()):
                    raise ValueError(
                        f"s(bs='cp'): knot range ({lo}, {hi}) does not include the data range"
                    )
            xk = r_seq(lo, hi, nk)
        elif kn.size == nk:
            xk = np.sort(kn)
        else:
            raise ValueError(
                f"s(bs='cp'): knots must have 2 values (the period) or k + 1 = {nk}, got {kn.size}"
            )
        if not (np.diff(xk) > 0).all():
            raise ValueError("s(bs='cp'): knots must be distinct and span a positive period")
        return CPBasis(xk)


register(CPType())
