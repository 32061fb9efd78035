"""Fold designs from the full data's raw bases (gamstore/fit/foldview.py).

A fold's design made by selecting its rows of the full data's raw bases and absorbing the
fold's own centring constraints must be the design ``build_design`` makes from the fold's
covariates (the plain reference path), value for value; and rows are served only when they
are the right rows.
"""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gamstore.fit import GAM, foldview, s
from gamstore.fit.design import Design
from gamstore.fit.foldview import FullRawBases, release_raw_bases, shared_raw_bases


def _data(n: int, n_subjects: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(0.0, 1.0, n)
    x1 = rng.uniform(-3.0, 2.0, n)
    x2 = np.round(rng.uniform(0.0, 10.0, n), 1)  # ties, as real covariates have
    z = rng.normal(size=n)
    f = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    eta = np.sin(2 * np.pi * x0) + 0.3 * x1 + 0.1 * z + 0.2 * (f == "b")
    y_pois = rng.poisson(np.exp(0.5 * eta))
    return pd.DataFrame(
        {
            "x0": x0,
            "x1": x1,
            "x2": x2,
            "z": z,
            "f": f,
            "y": eta + rng.normal(scale=0.5, size=n),
            "count": y_pois.astype(np.float64),
            "subj": np.repeat(np.arange(n_subjects), n // n_subjects),
        }
    )


def _fold(df: pd.DataFrame, subject: int) -> tuple[pd.DataFrame, np.ndarray]:
    held = (df["subj"] == subject).to_numpy()
    return df.loc[~held].reset_index(drop=True), np.flatnonzero(~held)


def _same_design(a: Design, b: Design) -> None:
    """Bit for bit: the model matrix, every basis piece, initial.sp and the notes."""
    assert a.X.tobytes() == b.X.tobytes()
    assert a.initial_rho.tobytes() == b.initial_rho.tobytes()
    assert (a.n, a.p, a.block_names) == (b.n, b.p, b.block_names)
    for ba, bb in zip(a.smooths, b.smooths, strict=True):
        for name in ("knots", "T", "S_raw", "S", "col_means"):
            assert getattr(ba.basis, name).tobytes() == getattr(bb.basis, name).tobytes(), name
        assert ba.basis.S_scale == bb.basis.S_scale
        assert ba.U.tobytes() == bb.U.tobytes()
        assert ba.eig.tobytes() == bb.eig.tobytes()
        assert ba.logdet_S == bb.logdet_S
    assert [str(w) for w in a.notes] == [str(w) for w in b.notes]
    for term, x in a.covariates.items():
        assert x.tobytes() == b.covariates[term].tobytes()


class _Counting:
    """Wraps a FoldRows and counts the smooths it served rows for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.served = 0
        self.asked = 0

    def __call__(self, sm: Any, t: np.ndarray, x: np.ndarray) -> Any:
        self.asked += 1
        out = self.inner(sm, t, x)
        self.served += out is not None
        return out


CASES = [
    # (rows, family, smooths, linear): one row chunk (stacked groups) and several (>16384)
    (600, "gaussian", [s("x0"), s("x1")], []),
    (600, "poisson", [s("x0"), s("x1", k=7), s("x2")], ["z", "f"]),
    (40_000, "gaussian", [s("x0"), s("x1"), s("x2", k=12)], ["z"]),
    (40_000, "poisson", [s("x0", k=8), s("x1")], ["f"]),
]


@pytest.mark.parametrize("dense_bytes", [1 << 30, 0], ids=["dense", "banded"])
@pytest.mark.parametrize(("n", "family", "smooths", "linear"), CASES)
def test_row_selection_equals_a_fresh_build(
    n: int, family: str, smooths: list[Any], linear: list[str], dense_bytes: int
) -> None:
    """Dense full designs and, beyond the memory budget, their band values alike."""
    df = _data(n, 8)
    model = GAM(smooths, family=family, linear=linear)
    y = "y" if family == "gaussian" else "count"
    full = model.fit(df, y=y)
    bases = FullRawBases(df, dense_bytes=dense_bytes)
    for subject in (0, 5):
        train, keep = _fold(df, subject)
        ref, _ = model.prepare(train, y, knots=full.knots)
        rows = _Counting(bases.rows(keep))
        got, _ = model.prepare(train, y, knots=full.knots, raw_rows=rows)
        assert rows.served == rows.asked == len(smooths)  # the fast path ran
        _same_design(got.design, ref.design)
        # the fold's own centring constraint, not the full data's: C_fold T = 0
        for b, fb in zip(got.design.smooths, full._design.smooths, strict=True):
            assert not np.array_equal(b.basis.col_means, fb.basis.col_means)
            assert np.abs(b.basis.col_means @ b.basis.T).max() < 1e-15


def test_non_uniform_and_narrow_frozen_knots() -> None:
    """Knot vectors a user froze: unequally spaced (scipy's evaluation) and narrower than
    the data (the end polynomials are extrapolated): still the fresh build's design."""
    df = _data(900, 6)
    model = GAM([s("x0", k=6), s("x1", k=6)])
    knots = {
        "x0": np.array([-0.3, -0.2, -0.1, 0.0, 0.15, 0.5, 0.6, 1.0, 1.1, 1.2]),
        "x1": np.linspace(-2.5, 1.5, 10) + 0.0,  # covers less than the data: extrapolated
    }
    bases = FullRawBases(df, dense_bytes=0)  # x1 kept as band values, x0 dense (uneven)
    for subject in (1, 4):
        train, keep = _fold(df, subject)
        ref, _ = model.prepare(train, "y", knots=knots)
        rows = _Counting(bases.rows(keep))
        got, _ = model.prepare(train, "y", knots=knots, raw_rows=rows)
        assert rows.served == 2
        _same_design(got.design, ref.design)


def test_rows_are_served_only_for_their_own_data() -> None:
    df = _data(600, 6)
    model = GAM([s("x0"), s("x1")])
    full = model.fit(df, y="y")
    bases = FullRawBases(df)
    train, keep = _fold(df, 2)
    # the wrong rows (shifted by one): refused, the fit evaluates; same design as a rebuild
    wrong = _Counting(bases.rows(np.roll(keep, 1)))
    got, _ = model.prepare(train, "y", knots=full.knots, raw_rows=wrong)
    assert wrong.asked == 2 and wrong.served == 0
    ref, _ = model.prepare(train, "y", knots=full.knots)
    _same_design(got.design, ref.design)
    # other knots than the ones asked for are evaluated separately, never mixed up
    other = {k: v + 0.01 for k, v in full.knots.items()}
    rows = _Counting(bases.rows(keep))
    got, _ = model.prepare(train, "y", knots=other, raw_rows=rows)
    _same_design(got.design, model.prepare(train, "y", knots=other)[0].design)
    # a subset of fewer rows than the data it claims to be: refused
    short = _Counting(bases.rows(keep[:-1]))
    model.prepare(train, "y", knots=full.knots, raw_rows=short)
    assert short.served == 0


def test_bad_row_positions_are_refused() -> None:
    bases = FullRawBases(_data(60, 3))
    with pytest.raises(ValueError, match="keep"):
        bases.rows(np.array([0, 60]))
    with pytest.raises(ValueError, match="keep"):
        bases.rows(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="keep"):
        bases.rows(np.array([-1, 2]))


def test_fit_with_raw_rows_is_the_plain_fit() -> None:
    """The fast path's fit equals the reference path's fit: same optimum, bit for bit."""
    df = _data(800, 8)
    model = GAM([s("x0"), s("x1")], family="poisson", linear=["f"])
    full = model.fit(df, y="count")
    train, keep = _fold(df, 3)
    ref = model.fit(train, y="count", knots=full.knots)
    got = model.fit(train, y="count", knots=full.knots, raw_rows=FullRawBases(df).rows(keep))
    assert got.reml == ref.reml
    assert got.rho.tobytes() == ref.rho.tobytes()
    assert got.coef.tobytes() == ref.coef.tobytes()


def test_one_shared_copy_per_process_dropped_with_its_data() -> None:
    release_raw_bases()
    df = _data(300, 3)
    a = shared_raw_bases(df)
    assert shared_raw_bases(df) is a  # every fold of a run shares it
    model = GAM([s("x0")])
    full = model.fit(df, y="y")
    train, keep = _fold(df, 0)
    model.prepare(train, "y", knots=full.knots, raw_rows=a.rows(keep))
    assert a.nbytes == 300 * 10 * 8 + 300 * 8  # the dense (n, k) design and the row sums
    banded = FullRawBases(df, dense_bytes=0)  # no room for dense designs: the band values
    banded.rows(keep)(model.smooths[0], full.knots["x0"], train["x0"].to_numpy())
    assert banded.nbytes == 300 * (4 * 8 + 4 * 4 + 8)  # values, int32 columns, row sums
    other = _data(300, 3, seed=8)
    b = shared_raw_bases(other)
    assert b is not a and len(foldview._SHARED) == 1  # one data set per process
    del other, b
    gc.collect()
    assert not foldview._SHARED  # dropped with its data set
    # the cache never keeps the data set alive by itself
    assert a.rows(keep)(model.smooths[0], full.knots["x0"], train["x0"].to_numpy()) is not None
    release_raw_bases()
    assert not foldview._SHARED


def _weighted(n: int) -> pd.DataFrame:
    df = _data(n, 8)
    df["w"] = 1.0 + (np.arange(n) % 3)  # exact small integers: no regenerated floats
    df["off"] = 0.25 * (np.arange(n) % 5)
    return df


@pytest.mark.parametrize(("n", "dense_bytes"), [(600, 1 << 30), (40_000, 1 << 30), (600, 0)])
def test_gaussian_gram_downdated_from_the_full_data(n: int, dense_bytes: int) -> None:
    """X'WX and X'W(y - offset) of a Gaussian fold: the full data's minus the held-out
    rows', carried into the fold's own constrained basis, equal the sums over its rows."""
    df = _weighted(n)
    model = GAM([s("x0"), s("x1", k=7), s("x2")], linear=["z", "f"])
    full = model.fit(df, y="y", weights="w", offset="off")
    bases = FullRawBases(df, dense_bytes=dense_bytes)
    for subject in (0, 6):
        train, keep = _fold(df, subject)
        ref, _ = model.prepare(train, "y", "w", "off", full.knots)
        got, _ = model.prepare(
            train, "y", "w", "off", full.knots, bases.rows(keep, ("y", "w", "off"))
        )
        assert "gram" in got._cache  # seeded, not summed over the rows
        _same_design(got.design, ref.design)
        (A, b), (A0, b0) = got.gaussian_gram(), ref.gaussian_gram()
        assert np.abs(A - A0).max() <= 1e-13 * np.abs(A0).max()
        assert np.abs(b - b0).max() <= 1e-13 * np.abs(b0).max()
        fit = model.fit(
            train, "y", "w", "off", full.knots, raw_rows=bases.rows(keep, ("y", "w", "off"))
        )
        plain = model.fit(train, "y", "w", "off", full.knots)
        assert abs(fit.reml - plain.reml) <= 1e-12 * abs(plain.reml)
        np.testing.assert_allclose(fit.rho, plain.rho, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fit.coef, plain.coef, rtol=1e-8, atol=1e-10)


def test_gaussian_gram_only_for_its_own_rows_and_family() -> None:
    df = _weighted(600)
    model = GAM([s("x0"), s("x1")])
    full = model.fit(df, y="y", weights="w")
    bases = FullRawBases(df)
    train, keep = _fold(df, 1)

    def seeded(m: GAM, rows: Any, y: str = "y", w: str | None = "w") -> bool:
        prob, _ = m.prepare(train, y, w, None, full.knots, rows)
        return "gram" in prob._cache

    assert seeded(model, bases.rows(keep, ("y", "w", None)))
    assert not seeded(model, bases.rows(keep))  # no response named: no downdate
    assert not seeded(model, bases.rows(keep, ("y", None, None)))  # other weights
    assert not seeded(model, bases.rows(keep, ("count", "w", None)))  # another response
    assert not seeded(model, bases.rows(np.roll(keep, 1), ("y", "w", None)))  # other rows
    pois = GAM([s("x0"), s("x1")], family="poisson")
    assert not seeded(pois, bases.rows(keep, ("count", "w", None)), y="count")


def test_other_bases_and_by_terms_are_built_as_before() -> None:
    """A model mixing a P-spline with other bases, a by-smooth and a random effect: the
    P-spline's rows are reused, every other term is built from the covariates, the design
    is the rebuilt one, and a Gaussian fold sums its own X'WX (the raw layout differs)."""
    df = _weighted(960)
    smooths = [s("x0"), s("x1", k=6, bs="cr"), s("x2", k=5, by="f"), s("f", bs="re")]
    model = GAM(smooths, linear=["z"])
    full = model.fit(df, y="y")
    bases = FullRawBases(df)
    train, keep = _fold(df, 4)
    rows = _Counting(bases.rows(keep, ("y", None, None)))
    got, _ = model.prepare(train, "y", knots=full.knots, raw_rows=rows)
    ref, _ = model.prepare(train, "y", knots=full.knots)
    assert rows.served == 1  # s(x0) only
    assert got.design.X.tobytes() == ref.design.X.tobytes()
    assert got.design.initial_rho.tobytes() == ref.design.initial_rho.tobytes()
    assert "gram" not in got._cache
