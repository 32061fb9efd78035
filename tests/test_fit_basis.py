"""P-spline basis, penalty scaling and the sum-to-zero constraint (mgcv bs="ps")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore.fit.basis import (
    bspline_design,
    build_smooth_basis,
    difference_penalty,
    fill_design,
    ps_knots,
    sum_to_zero_transform,
)


def test_knots_follow_mgcv_formula() -> None:
    # mgcv: xl, xu padded by 0.1% of the range; dx = (xu - xl)/(nk - 1) with nk = k - 2;
    # knots = seq(xl - 3 dx, xu + 3 dx, length = nk + 6)
    xl, xu, k = -1.0, 3.0, 10
    pad = 0.001 * (xu - xl)
    lo, hi = xl - pad, xu + pad
    nk = k - 2
    dx = (hi - lo) / (nk - 1)
    expected = np.linspace(lo - 3 * dx, hi + 3 * dx, nk + 6)
    np.testing.assert_allclose(ps_knots(xl, xu, k), expected, rtol=0, atol=1e-14)


def test_penalty_scale_is_16_for_cubic_second_differences() -> None:
    x = np.linspace(0, 1, 200)
    for k in (5, 10, 20):
        basis, _, _ = build_smooth_basis(x, k)
        assert basis.S_scale == pytest.approx(16.0, rel=1e-12)
        np.testing.assert_allclose(basis.S_raw * 16.0, difference_penalty(k), atol=1e-12)
    # k = 4: the widest column of D'D sums to 12, not 16
    basis4, _, _ = build_smooth_basis(x, 4)
    assert basis4.S_scale == pytest.approx(12.0, rel=1e-12)


def test_constraint_matrix_matches_explicit_householder() -> None:
    rng = np.random.default_rng(0)
    c = rng.uniform(size=7)
    T = sum_to_zero_transform(c)
    # Householder reflector mapping c to -sign(c1)|c| e1; its columns 2..k are T
    v = c.copy()
    v[0] += np.sign(c[0]) * np.linalg.norm(c)
    Hh = np.eye(7) - 2.0 * np.outer(v, v) / (v @ v)
    np.testing.assert_allclose(T, Hh[:, 1:], atol=1e-14)  # same matrix as mgcv, signs too


@settings(max_examples=40)
@given(
    n=st.integers(30, 300),
    k=st.integers(4, 16),
    seed=st.integers(0, 2**31 - 1),
    lo=st.floats(-1e3, 1e3),
    width=st.floats(1e-3, 1e4),
)
def test_basis_properties(n: int, k: int, seed: int, lo: float, width: float) -> None:
    rng = np.random.default_rng(seed)
    x = lo + width * rng.uniform(size=n)
    x[0], x[1] = lo, lo + width  # make the range exact
    basis, extrapolate, _ = build_smooth_basis(x, k)
    assert not extrapolate
    B = basis.raw_design(x)
    assert B.shape == (n, k)
    np.testing.assert_allclose(B.sum(axis=1), 1.0, atol=1e-12)  # partition of unity
    T = basis.T
    assert T.shape == (k, k - 1)
    np.testing.assert_allclose(T.T @ T, np.eye(k - 1), atol=1e-12)  # orthonormal columns
    C = B.mean(axis=0)
    assert np.max(np.abs(C @ T)) <= 1e-12  # sum-to-zero constraint holds
    vals = np.linalg.eigvalsh(basis.S)
    assert vals.min() > -1e-12  # positive semi-definite
    assert int(np.sum(vals > 1e-10 * vals.max())) == basis.rank == k - 2
    # chunked fill agrees with the direct product, and reports colSums of the reduced design
    out = np.empty((n, k - 1))
    ldxx = fill_design(out, x, basis, np.eye(k - 1), False)
    np.testing.assert_allclose(out, B @ T, atol=1e-12)
    np.testing.assert_allclose(ldxx, ((B @ T) ** 2).sum(axis=0), rtol=1e-10)
    # raw coefficients satisfying the constraint map to reduced ones exactly
    beta_red = rng.normal(size=k - 1)
    beta_raw = T @ beta_red
    assert abs(C @ beta_raw) <= 1e-10 * max(1.0, np.abs(beta_raw).max())
    np.testing.assert_allclose(T.T @ beta_raw, beta_red, atol=1e-12)


def test_range_knots_equal_data_knots_and_full_knots_are_frozen() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(2, 5, size=100)
    b0, _, _ = build_smooth_basis(x, 10)
    b1, _, _ = build_smooth_basis(x, 10, knots=np.array([x.min(), x.max()]))
    np.testing.assert_array_equal(b0.knots, b1.knots)
    sub = x[:40]
    b2, _, _ = build_smooth_basis(sub, 10, knots=b0.knots)
    np.testing.assert_array_equal(b2.knots, b0.knots)
    assert not np.allclose(b2.T, b0.T)  # the constraint follows the rows it is computed on


def test_knot_errors_are_clear() -> None:
    x = np.linspace(0, 1, 50)
    with pytest.raises(ValueError, match="does not include the data range"):
        build_smooth_basis(x, 10, knots=np.array([0.2, 1.0]))
    with pytest.raises(ValueError, match="2 values"):
        build_smooth_basis(x, 10, knots=np.arange(5.0))
    with pytest.raises(ValueError, match="strictly increasing"):
        build_smooth_basis(x, 4, knots=np.array([0, 1, 1, 2, 3, 4, 5, 6.0]))


def test_extrapolation_outside_frozen_knots_is_finite() -> None:
    x = np.linspace(0, 1, 60)
    basis, _, _ = build_smooth_basis(x, 8)
    out = bspline_design(np.array([-0.5, 1.5]), basis.knots, extrapolate=True)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-10)


@settings(max_examples=40)
@given(
    k=st.integers(4, 20),
    seed=st.integers(0, 2**31 - 1),
    lo=st.floats(-1e3, 1e3),
    width=st.floats(1e-3, 1e4),
)
def test_closed_form_uniform_basis_matches_scipy(
    k: int, seed: int, lo: float, width: float
) -> None:
    from scipy.interpolate import BSpline

    rng = np.random.default_rng(seed)
    t = ps_knots(lo, lo + width, k)
    x = np.concatenate([lo + width * rng.uniform(size=50), t[3 : k + 1], [t[3], t[k]]])
    ref = BSpline.design_matrix(x, t, 3).toarray()
    # knots far from 0 relative to their spacing are only uniform to rounding; both
    # evaluations then agree to that rounding
    tol = 1e-12 * max(1.0, abs(lo) / width)
    np.testing.assert_allclose(bspline_design(x, t), ref, rtol=0, atol=tol)
    xo = np.array([t[3] - 0.3 * width, t[k] + 0.2 * width])
    ref_o = BSpline.design_matrix(xo, t, 3, extrapolate=True).toarray()
    np.testing.assert_allclose(bspline_design(xo, t, extrapolate=True), ref_o, atol=1e3 * tol)
    with pytest.raises(ValueError):
        bspline_design(xo, t)
