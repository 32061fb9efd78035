"""``bs="ps"``: mgcv's cubic P-spline with a second-order difference penalty.

The B-spline engine (knot rule, stacked closed-form designs) lives in
:mod:`gamstore.fit.basis`; this module puts it behind the :class:`~gamstore.fit.bases.Basis`
protocol (for tensor-product margins and generic code). Fits with ``ps`` smooths keep the
stacked fast path of :func:`gamstore.fit.design.build_design`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from gamstore.fit.bases import Basis, as_vector, register
from gamstore.fit.basis import DEGREE, DIFF_ORDER, _penalty, bspline_design, smooth_knots


@dataclass(frozen=True)
class PSBasis(Basis):
    """Cubic B-splines on ``k + 4`` equally spaced knots (or frozen ones)."""

    kind: ClassVar[str] = "ps"
    knot_vector: np.ndarray

    @property
    def width(self) -> int:
        return int(self.knot_vector.size - DEGREE - 1)

    @property
    def penalty(self) -> np.ndarray:
        return _penalty(self.width)[0]

    @property
    def rank(self) -> int:
        return self.width - DIFF_ORDER

    @property
    def knots(self) -> np.ndarray:
        return self.knot_vector

    def raw_design(self, x: np.ndarray) -> np.ndarray:
        # beyond the knot span (frozen knots narrower than the data) the end polynomials
        # continue, as the fit's design does
        return bspline_design(x, self.knot_vector, DEGREE, extrapolate=True)

    def predict_design(self, x: np.ndarray, fitted: np.ndarray | None = None) -> np.ndarray:
        return ps_predict_raw(self.knot_vector, x, fitted)

    def extrapolation_range(self, fitted: np.ndarray | None = None) -> tuple[float, float]:
        return ps_extrapolation_range(self.knot_vector, fitted)


def ps_extrapolation_range(t: np.ndarray, fitted: np.ndarray | None = None) -> tuple[float, float]:
    """The inner knot range ``[t_3, t_k]``, widened to the fitted covariate values when the
    fit itself reached outside it; ``predict`` is linear beyond it."""
    lo, hi = float(t[DEGREE]), float(t[-DEGREE - 1])
    if fitted is not None and fitted.size:
        lo, hi = min(lo, float(fitted.min())), max(hi, float(fitted.max()))
    return lo, hi


def ps_predict_raw(t: np.ndarray, x: np.ndarray, fitted: np.ndarray | None = None) -> np.ndarray:
    """Raw P-spline design for prediction, as mgcv's ``Predict.matrix.pspline.smooth``.

    Inside :func:`ps_extrapolation_range` the B-splines themselves; beyond it, linear
    extrapolation from the value and slope at the nearer end (mgcv's rule for P-splines).
    """
    lo, hi = ps_extrapolation_range(t, fitted)
    outside = (x < lo) | (x > hi)
    if not outside.any():
        return bspline_design(x, t, DEGREE, extrapolate=True)
    from scipy.interpolate import BSpline

    nb = t.size - DEGREE - 1
    spline = BSpline(t, np.eye(nb), DEGREE, extrapolate=True)
    slope = spline.derivative()
    raw = np.zeros((x.size, nb))
    inside = ~outside
    if inside.any():
        raw[inside] = bspline_design(x[inside], t, DEGREE, extrapolate=True)
    for mask, end in ((x < lo, lo), (x > hi, hi)):
        if mask.any():
            value, deriv = spline(end), slope(end)
            raw[mask] = value[None, :] + (x[mask] - end)[:, None] * deriv[None, :]
    return raw


class PSType:
    """``bs="ps"``: k >= 4; knots None, a range (2 values) or the full ``k + 4`` vector."""

    name = "ps"
    min_k = 4
    periodic = False

    def raw_width(self, k: int) -> int:
        return k

    def construct(self, x: np.ndarray, k: int, knots: np.ndarray | None) -> PSBasis:
        t, _ = smooth_knots(x, k, as_vector(knots, "s(bs='ps')"))
        return PSBasis(t)


register(PSType())
