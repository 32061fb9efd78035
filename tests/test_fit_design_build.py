"""The fast design build is the plain one-smooth-at-a-time build, bit for bit.

``build_design`` evaluates smooths of equal k as stacked arrays, in row chunks for large n.
The store keys no longer hash the built design (they hash the fit's inputs), but a design
that depends on how its smooths were grouped or chunked would make a fit's answer depend on
them, and LOSO fold designs reused from the full data (``gamstore.fit.foldview``) rely on it.
``_reference_design`` below is the straightforward build (one smooth at a time, the same
public reductions: ``einsum`` sums, ``np.mean``, ``np.linalg``); every array of the fast build
must equal it byte for byte.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gamstore.fit.basis as basis_mod
from gamstore.fit import GAM, s
from gamstore.fit.basis import (
    DEGREE,
    SmoothBasis,
    bspline_design,
    build_smooth_basis,
    difference_penalty,
    ps_knots,
    raw_smooth_bases,
    smooth_knots,
)
from gamstore.fit.data import get_column
from gamstore.fit.design import SmoothTerm, build_design
from gamstore.fit.simulate import simulate

# ----------------------------------------------------------------------------------------
# reference: the plain build (what the fitter computed before the stacked fast path)


def _ref_uniform_design(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    k = t.size - 4
    h = (t[-1] - t[0]) / (t.size - 1)
    m = np.clip(np.floor((x - t[0]) / h), 3, k - 1).astype(np.int64)
    u = (x - t[m]) / (t[m + 1] - t[m])
    u2 = u * u
    u3 = u2 * u
    B = np.zeros((x.shape[0], k))
    flat = B.reshape(-1)
    idx = np.arange(x.shape[0]) * k + m
    w = 1.0 - u
    flat[idx - 3] = w * w * w / 6.0
    flat[idx - 2] = (3.0 * u3 - 6.0 * u2 + 4.0) / 6.0
    flat[idx - 1] = (-3.0 * u3 + 3.0 * u2 + 3.0 * u + 1.0) / 6.0
    flat[idx] = u3 / 6.0
    return B


def _ref_raw_design(x: np.ndarray, t: np.ndarray, extrapolate: bool) -> np.ndarray:
    from scipy.interpolate import BSpline

    d = np.diff(t)
    if d[0] > 0 and np.ptp(d) <= 1e-9 * d[0]:
        return _ref_uniform_design(x, t)
    return BSpline.design_matrix(x, t, DEGREE, extrapolate=extrapolate).toarray()


def _ref_basis(x: np.ndarray, k: int, knots: Any) -> tuple[SmoothBasis, bool]:
    t, extrapolate = smooth_knots(x, k, knots)
    chunks = [slice(i, min(x.size, i + 16384)) for i in range(0, x.size, 16384)]
    col_sum = np.zeros(k)
    x_inf = 0.0
    for sl in chunks:
        B = _ref_raw_design(x[sl], t, extrapolate)
        col_sum += np.einsum("ij->j", B)
        absB = B if B.min() >= 0.0 else np.abs(B)
        x_inf = max(x_inf, float(np.max(np.einsum("ij->i", absB))))
    S0 = difference_penalty(k)
    s_scale = float(np.max(np.abs(S0).sum(axis=0))) / x_inf**2
    S_raw = S0 / s_scale
    col_means = col_sum / x.size
    q, _ = np.linalg.qr(col_means.reshape(-1, 1), mode="complete")
    T = np.ascontiguousarray(q[:, 1:])
    S = T.T @ S_raw @ T
    S = (S + S.T) / 2.0
    return SmoothBasis(t, k, T, S_raw, S, s_scale, k - 2, col_means), extrapolate


def _ref_initial_sp(ldxx: np.ndarray, pen_blocks: list[tuple[slice, np.ndarray]]) -> np.ndarray:
    p = ldxx.size
    ldss = np.zeros(p)
    pen = np.zeros(p, dtype=bool)
    sp = np.zeros(len(pen_blocks))
    for i, (cols, S) in enumerate(pen_blocks):
        absS = np.abs(S)
        thresh = np.finfo(float).eps ** 0.8 * absS.max()
        ind = (absS.mean(axis=1) > thresh) & (absS.mean(axis=0) > thresh) & (np.diag(absS) > thresh)
        xx = ldxx[cols][ind]
        ss = np.diag(S)[ind]
        pen[cols] |= ind
        sp[i] = xx.mean() / ss.mean()
        ldss[cols] += sp[i] * np.diag(S)
    ind = (ldss > 0) & pen & (ldxx > 0)
    lx, ls = ldxx[ind], ldss[ind]
    if lx.size:
        while np.mean(lx / (lx + ls)) > 0.4:
            sp *= 10.0
            ls = ls * 10.0
        while np.mean(lx / (lx + ls)) < 0.4:
            sp /= 10.0
            ls = ls / 10.0
    return np.log(sp)


def _reference_design(
    data: Any, smooths: list[SmoothTerm], linear: list[str], knots: dict[str, Any]
) -> dict[str, np.ndarray]:
    n = len(np.asarray(get_column(data, smooths[0].term)))
    p = 1 + len(linear) + sum(sm.k - 1 for sm in smooths)
    X = np.empty((n, p))
    X[:, 0] = 1.0
    for i, name in enumerate(linear):
        X[:, 1 + i] = get_column(data, name)
    L = 1 + len(linear)
    ldxx = np.empty(p)
    ldxx[:L] = np.einsum("ij->j", X[:, :L] * X[:, :L])
    out: dict[str, np.ndarray] = {}
    pen_blocks = []
    start = L
    for sm in smooths:
        x = get_column(data, sm.term)
        b, extrapolate = _ref_basis(x, sm.k, knots.get(sm.term))
        sl = slice(start, start + sm.k - 1)
        pen_blocks.append((sl, b.S))
        vals, vecs = np.linalg.eigh(b.S)
        order = np.argsort(vals)[::-1]
        vals, vecs = vals[order], vecs[:, order]
        eig = vals.copy()
        eig[b.rank :] = 0.0
        logdet = float(np.sum(np.log(vals[: b.rank])))
        chunks = [slice(i, min(n, i + 16384)) for i in range(0, n, 16384)]
        acc = np.zeros(sm.k - 1)
        for c in chunks:
            Xr = _ref_raw_design(x[c], b.knots, extrapolate) @ b.T
            acc += np.einsum("ij->j", Xr * Xr)
            X[c, sl] = Xr @ vecs
        ldxx[sl] = acc
        for name in ("knots", "T", "S_raw", "S", "col_means"):
            out[f"{sm.label}.{name}"] = getattr(b, name)
        out[f"{sm.label}.S_scale"] = np.float64(b.S_scale)
        out[f"{sm.label}.U"] = vecs
        out[f"{sm.label}.eig"] = eig
        out[f"{sm.label}.logdet"] = np.float64(logdet)
        start = sl.stop
    out["X"] = X
    out["initial_rho"] = _ref_initial_sp(ldxx, pen_blocks)
    return out


def _fast_design(
    data: Any, smooths: list[SmoothTerm], linear: list[str], knots: dict[str, Any]
) -> dict[str, np.ndarray]:
    d = build_design(data, smooths, linear, knots)
    out = {"X": d.X, "initial_rho": d.initial_rho}
    for blk in d.smooths:
        b = blk.basis
        for name in ("knots", "T", "S_raw", "S", "col_means"):
            out[f"{blk.spec.label}.{name}"] = getattr(b, name)
        out[f"{blk.spec.label}.S_scale"] = np.float64(b.S_scale)
        out[f"{blk.spec.label}.U"] = blk.U
        out[f"{blk.spec.label}.eig"] = blk.eig
        out[f"{blk.spec.label}.logdet"] = np.float64(blk.logdet_S)
    return out


def _assert_same_bits(fast: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    assert fast.keys() == ref.keys()
    for key, want in ref.items():
        got = fast[key]
        assert got.shape == want.shape and got.dtype == want.dtype, key
        assert got.tobytes() == want.tobytes(), (key, float(np.max(np.abs(got - want))))


# ----------------------------------------------------------------------------------------
# whole designs


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x0": rng.uniform(size=n),
            "x1": rng.normal(size=n) * 3.0 + 7.0,
            "x2": np.round(rng.uniform(-1, 1, size=n), 2),  # ties
            "z": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )


def test_loso_fold_with_frozen_knots_matches_reference() -> None:
    df = simulate("gaussian")
    model = GAM([s("x0"), s("x1"), s("x2")])
    knots = model.fit(df, y="y").knots
    fold = df[df.subj != 3].reset_index(drop=True)
    _assert_same_bits(
        _fast_design(fold, model.smooths, [], dict(knots)),
        _reference_design(fold, model.smooths, [], dict(knots)),
    )


@pytest.mark.parametrize(
    ("n", "ks", "linear"),
    [
        (300, (10, 10, 10), []),
        (500, (6, 10, 6), ["z"]),  # two k groups, interleaved
        (257, (4, 5, 12), []),
        (3000, (25, 25, 8), ["z"]),  # several row blocks per band evaluation
        (20_000, (10, 7, 10), []),  # two row chunks: smooths one at a time
    ],
)
def test_designs_match_reference(n: int, ks: tuple[int, ...], linear: list[str]) -> None:
    df = _frame(n, seed=n)
    smooths = [SmoothTerm(t, k) for t, k in zip(("x0", "x1", "x2"), ks, strict=True)]
    _assert_same_bits(
        _fast_design(df, smooths, linear, {}), _reference_design(df, smooths, linear, {})
    )


def test_extrapolated_ranges_and_non_uniform_knots_match_reference() -> None:
    df = _frame(800, seed=3)
    smooths = [SmoothTerm("x0", 8), SmoothTerm("x1", 10), SmoothTerm("x2", 10)]
    x1 = df["x1"].to_numpy()
    knots: dict[str, Any] = {
        # frozen knots from a narrower range: rows outside take the extrapolation path
        "x0": ps_knots(0.2, 0.7, 8),
        # a range wider than the data
        "x1": np.array([x1.min() - 1.0, x1.max() + 2.0]),
        # unequally spaced knots: scipy's evaluation path
        "x2": np.array(
            [-2.0, -1.6, -1.3, -1.01, -0.7, -0.3, 0.0, 0.1, 0.4, 0.9, 1.01, 1.2, 1.5, 2.0]
        ),
    }
    _assert_same_bits(
        _fast_design(df, smooths, ["z"], knots), _reference_design(df, smooths, ["z"], knots)
    )


def test_mapping_input_matches_frame_input() -> None:
    df = _frame(400, seed=11)
    smooths = [SmoothTerm("x0"), SmoothTerm("x1")]
    mapping = {c: df[c].to_numpy() for c in df.columns}
    _assert_same_bits(_fast_design(mapping, smooths, [], {}), _fast_design(df, smooths, [], {}))


# ----------------------------------------------------------------------------------------
# the building blocks


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3000),
    k=st.integers(4, 30),
    n_smooths=st.integers(1, 4),
    lo=st.floats(-1e3, 1e3),
    width=st.floats(1e-3, 1e4),
    outside=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_stacked_uniform_designs_equal_plain_evaluation(
    n: int, k: int, n_smooths: int, lo: float, width: float, outside: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    ts = []
    xs = []
    for j in range(n_smooths):
        t = ps_knots(lo + j, lo + j + width, k)
        x = lo + j + width * rng.uniform(-0.3 if outside else 0.0, 1.3 if outside else 1.0, n)
        ts.append(t)
        xs.append(x)
    B, nonneg = basis_mod._uniform_designs(np.stack(xs), np.stack(ts))
    for j in range(n_smooths):
        ref = _ref_uniform_design(xs[j], ts[j])
        assert B[j].tobytes() == ref.tobytes()
        if basis_mod._is_uniform(ts[j]):  # far from 0, ps knots may only be near-uniform
            assert bspline_design(xs[j], ts[j], extrapolate=True).tobytes() == ref.tobytes()
    assert nonneg == bool(
        min(_ref_uniform_design(x, t).min() for x, t in zip(xs, ts, strict=True)) >= 0
    )


def test_raw_bases_of_a_group_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(2)
    xs = [rng.uniform(size=900), rng.normal(size=900), rng.exponential(size=900)]
    fitted = [smooth_knots(x, 9) for x in xs]
    group = raw_smooth_bases(xs, 9, [f[0] for f in fitted], [f[1] for f in fitted])
    for x, raw in zip(xs, group, strict=True):
        alone, _, B = build_smooth_basis(x, 9)
        ref, _ = _ref_basis(x, 9, None)
        assert raw.col_means.tobytes() == alone.col_means.tobytes() == ref.col_means.tobytes()
        assert raw.S_scale == alone.S_scale == ref.S_scale
        assert raw.B is not None and B is not None and raw.B.tobytes() == B.tobytes()
        assert alone.T.tobytes() == ref.T.tobytes() and alone.S.tobytes() == ref.S.tobytes()


# ----------------------------------------------------------------------------------------
# column access


def test_frame_columns_are_read_only_views_like_numpy_asarray() -> None:
    df = _frame(50, seed=1)
    df["i"] = np.arange(50)
    df["b"] = np.arange(50) % 2 == 0
    for name in ("x0", "i", "b"):
        got = get_column(df, name)
        want = np.ascontiguousarray(np.asarray(df[name]), dtype=np.float64)
        assert got.dtype == np.float64 and got.tobytes() == want.tobytes()
        assert got.flags.writeable == want.flags.writeable
    assert not get_column(df, "x0").flags.writeable  # a view of the frame, not writable


def test_frame_column_fallbacks_keep_their_errors() -> None:
    df = _frame(20, seed=2)
    df["nullable"] = pd.array([1.5] * 19 + [None], dtype="Float64")
    with pytest.raises(ValueError, match="nullable"):
        get_column(df, "nullable")
    df["ok"] = pd.array([1] * 20, dtype="Int64")
    assert get_column(df, "ok").tobytes() == np.ones(20).tobytes()
    dup = pd.concat([df[["x0"]], df[["x0"]]], axis=1)
    with pytest.raises(ValueError, match=r"must have shape \(20,\)"):
        get_column(dup, "x0")
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        get_column(df, "nope")


def test_working_rotations_with_and_without_tied_eigenvalues() -> None:
    """Strictly increasing eigenvalues take the plain reversal, ties the argsort path;
    both equal sorting each matrix on its own (as the reference build does)."""
    from gamstore.fit.design import _working_rotations

    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 7, 7))
    distinct = a @ a.transpose(0, 2, 1)
    tied = np.stack([np.diag([0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 5.0]), np.eye(7)])
    for stack in (distinct, tied):
        got = _working_rotations(stack, 5)
        for S, (U, eig, logdet) in zip(stack, got, strict=True):
            vals, vecs = np.linalg.eigh(S)
            order = np.argsort(vals)[::-1]
            vals, vecs = vals[order], vecs[:, order]
            want_eig = vals.copy()
            want_eig[5:] = 0.0
            assert U.tobytes() == vecs.tobytes() and U.flags.c_contiguous
            assert eig.tobytes() == want_eig.tobytes()
            assert logdet == float(np.sum(np.log(vals[:5])))
