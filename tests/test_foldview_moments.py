"""A Gaussian LOSO fold built from the full data's moments (issue 17: p x p, not n x p).

``FoldRows.gaussian_design`` forms a Gaussian fold's design from the full data's
``Z'WZ``, ``Z'W(y - offset)`` and column sums minus the held-out rows' (its centring
constraints absorbed again on the p x p matrices), without its n x p model matrix, which is
formed only when read. It must be the design ``build_design`` makes from the fold's rows up
to rounding, and the fit the plain fit (REML within 1e-9 relative; ``reuse_designs=False`` in
``run_loso`` stays the plain reference path, tests/test_foldview_loso.py).
"""

from __future__ import annotations

import re
import tempfile
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gamstore.fit import GAM, s
from gamstore.fit.foldview import FullRawBases


def _data(n: int, n_subjects: int = 8, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(0.0, 1.0, n)
    x1 = rng.uniform(-3.0, 2.0, n)
    x2 = np.round(rng.uniform(0.0, 10.0, n), 1)
    z = rng.normal(size=n)
    eta = np.sin(2 * np.pi * x0) + 0.3 * x1 + 0.1 * z
    return pd.DataFrame(
        {
            "x0": x0,
            "x1": x1,
            "x2": x2,
            "z": z,
            "f": np.array(["a", "b", "c"])[rng.integers(0, 3, n)],
            "y": 5.0 + eta + rng.normal(scale=0.5, size=n),
            "w": 1.0 + (np.arange(n) % 3),
            "off": 0.25 * (np.arange(n) % 5),
            "subj": np.repeat(np.arange(n_subjects), n // n_subjects),
        }
    )


def _fold(df: pd.DataFrame, subject: int) -> tuple[pd.DataFrame, np.ndarray]:
    held = (df["subj"] == subject).to_numpy()
    return df.loc[~held].reset_index(drop=True), np.flatnonzero(~held)


def _close(a: np.ndarray, b: np.ndarray, rel: float = 1e-11) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.abs(a - b).max(initial=0.0) <= rel * max(np.abs(b).max(initial=0.0), 1.0)


MODEL = GAM([s("x0"), s("x1", k=7), s("x2")], linear=["z"])
RESPONSES = [("y", None, None), ("y", "w", "off")]


@pytest.mark.parametrize("dense_bytes", [1 << 30, 0], ids=["dense", "banded"])
@pytest.mark.parametrize("n", [600, 40_000])
@pytest.mark.parametrize("response", RESPONSES, ids=["plain", "weights+offset"])
def test_the_design_from_moments_is_the_built_design(
    n: int, dense_bytes: int, response: tuple[str, Any, Any]
) -> None:
    df = _data(n)
    y, w, off = response
    full = MODEL.fit(df, y=y, weights=w, offset=off)
    bases = FullRawBases(df, dense_bytes=dense_bytes)
    for subject in (0, 5):
        train, keep = _fold(df, subject)
        ref, _ = MODEL.prepare(train, y, w, off, full.knots)
        got, _ = MODEL.prepare(train, y, w, off, full.knots, bases.rows(keep, response))
        a, b = got.design, ref.design
        assert a.lazy is not None and not a.has_matrix  # no n x p matrix formed
        assert (a.n, a.p, a.block_names, a.block_cols) == (b.n, b.p, b.block_names, b.block_cols)
        for ba, bb in zip(a.smooths, b.smooths, strict=True):
            assert ba.basis.S_scale == bb.basis.S_scale  # the same largest row sum
            assert ba.basis.knots.tobytes() == bb.basis.knots.tobytes()
            for name in ("col_means", "T", "S"):
                _close(getattr(ba.basis, name), getattr(bb.basis, name))
            _close(ba.eig, bb.eig)
            assert abs(ba.logdet_S - bb.logdet_S) <= 1e-10 * abs(bb.logdet_S)
        _close(a.initial_rho, b.initial_rho)
        assert [str(x) for x in a.notes] == [str(x) for x in b.notes]
        (A, v), (A0, v0) = got.gaussian_gram(), ref.gaussian_gram()
        _close(A, A0, 1e-12)
        _close(v, v0, 1e-12)
        assert not a.has_matrix
        _close(a.X, b.X, 1e-12)  # formed on first read: the rebuilt matrix
        assert a.has_matrix


@pytest.mark.parametrize("response", RESPONSES, ids=["plain", "weights+offset"])
def test_the_fit_from_moments_is_the_plain_fit(response: tuple[str, Any, Any]) -> None:
    df = _data(24_000)
    y, w, off = response
    full = MODEL.fit(df, y=y, weights=w, offset=off)
    bases = FullRawBases(df, dense_bytes=0)
    test = df[df["subj"] == 3]
    train, keep = _fold(df, 3)
    got = MODEL.fit(train, y, w, off, full.knots, raw_rows=bases.rows(keep, response))
    ref = MODEL.fit(train, y, w, off, full.knots)
    prob = got._problem
    assert prob is not None and not prob.design.has_matrix  # fitted without X
    assert abs(got.reml - ref.reml) <= 1e-9 * abs(ref.reml)
    np.testing.assert_allclose(got.rho, ref.rho, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(got.coef, ref.coef, rtol=1e-7, atol=1e-9)
    assert abs(got.deviance - ref.deviance) <= 1e-9 * ref.deviance
    assert abs(got.scale - ref.scale) <= 1e-9 * ref.scale
    for block, e in ref.edf.items():
        assert abs(got.edf[block] - e) <= 1e-8
    # fitted values are formed when read, from the raw bases (still no model matrix)
    _close(got.fitted, ref.fitted, 1e-9)
    _close(got.linear_predictor, ref.linear_predictor, 1e-9)
    assert not prob.design.has_matrix
    p_got, se_got = got.predict(test, se_fit=True)
    p_ref, se_ref = ref.predict(test, se_fit=True)
    _close(p_got, p_ref, 1e-9)
    _close(se_got, se_ref, 1e-7)
    assert abs(got.loglik - ref.loglik) <= 1e-9 * abs(ref.loglik)
    assert abs(got.aic - ref.aic) <= 1e-9 * abs(ref.aic)
    _close(got.Vp, ref.Vp, 1e-6)


def test_a_basis_function_without_data_in_the_fold() -> None:
    """The held-out subject has every row under the first B-splines: in the fold their
    column sums are exactly zero (mgcv's unidentifiable-basis case), as a fresh build finds
    them, whatever rounding the full-minus-held-out sums leave."""
    df = _data(1600)
    first = (df["subj"] == 2).to_numpy()
    x0 = df["x0"].to_numpy().copy()
    x0[first] = np.linspace(0.0, 0.06, first.sum())
    x0[~first] = 0.2 + 0.8 * x0[~first]
    df["x0"] = x0
    full = MODEL.fit(df, y="y")
    bases = FullRawBases(df)
    train, keep = _fold(df, 2)
    ref, _ = MODEL.prepare(train, "y", knots=full.knots)
    got, _ = MODEL.prepare(train, "y", knots=full.knots, raw_rows=bases.rows(keep, RESPONSES[0]))
    assert got.design.lazy is not None
    ca, cb = got.design.smooths[0].basis.col_means, ref.design.smooths[0].basis.col_means
    assert (ca == 0.0).tolist() == (cb == 0.0).tolist() and (cb == 0.0).any()
    _close(got.design.smooths[0].basis.T, ref.design.smooths[0].basis.T)
    assert [str(x) for x in got.design.notes] == [str(x) for x in ref.design.notes]
    assert got.design.notes  # the unidentifiable-basis note
    _close(got.design.X, ref.design.X, 1e-12)


def test_only_plain_gaussian_folds_of_the_full_data_are_built_from_moments() -> None:
    df = _data(960)
    bases = FullRawBases(df)
    train, keep = _fold(df, 1)
    full = MODEL.fit(df, y="y")

    def from_moments(m: GAM, rows: Any, y: str = "y") -> bool:
        knots = full.knots if m is MODEL else m.fit(df, y=y).knots
        prob, _ = m.prepare(train, y, None, None, knots, rows)
        return prob.design.lazy is not None

    resp = RESPONSES[0]
    assert from_moments(MODEL, bases.rows(keep, resp))
    assert not from_moments(MODEL, bases.rows(keep))  # no response named
    assert not from_moments(MODEL, bases.rows(np.roll(keep, 1), resp))  # other rows
    assert not from_moments(GAM([s("x0")], linear=["f"]), bases.rows(keep, resp))  # a factor
    by = GAM([s("x0"), s("x1", by="z")])
    assert not from_moments(by, bases.rows(keep, resp))
    cr = GAM([s("x0"), s("x1", bs="cr")])
    assert not from_moments(cr, bases.rows(keep, resp))
    pois = GAM([s("x0"), s("x1")], family="poisson")
    df2 = df.assign(y=np.round(np.exp(df["y"] - 5.0)))
    b2 = FullRawBases(df2)
    prob, _ = pois.prepare(
        df2.iloc[keep].reset_index(drop=True), "y", None, None, None, b2.rows(keep, resp)
    )
    assert prob.design.lazy is None


def test_a_store_key_of_the_inputs_keeps_the_matrix_unformed() -> None:
    """With a store the fit keys its inputs: the design from moments stays p x p; only a
    fit keyed by its built design (no input key) forms X for the key."""
    from gamstore.fit.warm import WarmContext
    from gamstore.store import open_store

    df = _data(3000)
    full = MODEL.fit(df, y="y")
    bases = FullRawBases(df)
    train, keep = _fold(df, 4)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"{tmp}/store")
        first = MODEL.fit(
            train,
            "y",
            knots=full.knots,
            store=store,
            raw_rows=bases.rows(keep, RESPONSES[0]),
            warm_policy="always",
        )
        assert first._problem is not None and not first._problem.design.has_matrix
        again = MODEL.fit(
            train,
            "y",
            knots=full.knots,
            store=store,
            raw_rows=bases.rows(keep, RESPONSES[0]),
            warm_policy="always",
        )
        assert again.warm == "exact" and abs(again.reml - first.reml) <= 1e-12 * abs(first.reml)
        _close(again.fitted, first.fitted, 1e-9)  # the exact hit's deferred fields
        prob, _ = MODEL.prepare(
            train, "y", knots=full.knots, raw_rows=bases.rows(keep, RESPONSES[0])
        )
        assert not prob.design.has_matrix
        WarmContext(prob, store, MODEL.control, key=None)  # keys the built design
        assert prob.design.has_matrix


# -- a LOSO fold whose rows the pipeline vouches for (held given): its columns are not read --


def _vouched(
    bases: FullRawBases, df: pd.DataFrame, subject: int, response: tuple[str, Any, Any]
) -> Any:
    held = (df["subj"] == subject).to_numpy()
    return bases.rows(np.flatnonzero(~held), response, np.flatnonzero(held))


@pytest.mark.parametrize("response", RESPONSES, ids=["plain", "weights+offset"])
def test_a_vouched_fold_reads_none_of_its_own_rows_and_gives_the_plain_fit(
    response: tuple[str, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fold's frame carries no model column at all (only the subject): the fit cannot
    have read its rows, yet equals the plain fit of the fold's rows. The full data's
    columns are read and checked once for every fold (counted), and the fold's fitted
    values, formed from the full raw bases on first read, are the plain fit's."""
    from gamstore.fit import foldview

    df = _data(4000)
    y, w, off = response
    full = MODEL.fit(df, y=y, weights=w, offset=off)
    bases = FullRawBases(df)
    reads: list[str] = []
    plain_read = foldview.FullRawBases._column_range

    def counting(self: Any, name: str) -> Any:
        reads.append(name)
        return plain_read(self, name)

    monkeypatch.setattr(foldview.FullRawBases, "_column_range", counting)
    model = GAM([s("x0"), s("x1", k=7), s("x2")], linear=[])  # numeric columns only
    for subject in (0, 3, 7):
        train, keep = _fold(df, subject)
        ref = model.fit(train, y=y, weights=w, offset=off, knots=full.knots)
        bare = pd.DataFrame({"subj": train["subj"]})  # no response, weights or covariates
        got = model.fit(
            bare, y=y, weights=w, offset=off, knots=full.knots,
            raw_rows=_vouched(bases, df, subject, response),
        )  # fmt: skip
        assert got.deferred  # fitted values not formed yet
        assert abs(got.reml - ref.reml) <= 1e-9 * abs(ref.reml)
        _close(got.rho, ref.rho, 1e-6)
        for name, coef in ref.beta_raw.items():
            _close(got.beta_raw[name], coef, 1e-7)
        test = df.loc[df["subj"] == subject]
        _close(got.predict(test), ref.predict(test), 1e-8)
        _close(got.predict(test, se_fit=True)[1], ref.predict(test, se_fit=True)[1], 1e-7)
        assert got.deferred  # neither prediction nor Vp formed the fold's fitted values
        _close(got.fitted, ref.fitted, 1e-8)
    assert sorted(reads) == ["x0", "x1", "x2"]  # once per column, not once per fold


def test_a_vouched_fold_still_reports_bad_input() -> None:
    """Validation is hoisted, not removed: a held-out index that does not complement the
    fold is refused by name; a constant covariate or response on a fold, or non-finite full
    data, falls back to the plain build, whose error names the column."""
    df = _data(800)
    bases = FullRawBases(df)
    held = (df["subj"] == 0).to_numpy()
    with pytest.raises(ValueError, match="held: expected the 100 row positions"):
        bases.rows(np.flatnonzero(~held), ("y", None, None), np.flatnonzero(held)[:-1])
    with pytest.raises(ValueError, match="held"):
        bases.rows(np.flatnonzero(~held), ("y", None, None), np.flatnonzero(held) * 1.0)
    model = GAM([s("x0"), s("x1", k=7)])
    knots = model.fit(df).knots
    # the response constant on every row but subject 0's: that fold's fit reports it
    bad = df.copy()
    bad.loc[bad["subj"] != 0, "y"] = 1.0
    keep = np.flatnonzero(~held)
    rows = FullRawBases(bad).rows(keep, ("y", None, None), np.flatnonzero(held))
    assert rows.gaussian_fold(list(model.smooths), [], None, ("y", None, None), keep.size) is None
    with pytest.raises(ValueError, match="'y'.*constant"):
        model.fit(bad.iloc[keep].reset_index(drop=True), knots=knots, raw_rows=rows)
    # a non-finite covariate in the full data: nothing is vouched, the build reports it
    nan = df.copy()
    nan.loc[5, "x1"] = np.nan
    rows = FullRawBases(nan).rows(keep, ("y", None, None), np.flatnonzero(held))
    assert rows.gaussian_fold(list(model.smooths), [], None, ("y", None, None), keep.size) is None
    # the x1 covariate constant on the fold: the error of the plain fit of its rows
    const = df.copy()
    const.loc[const["subj"] != 0, "x1"] = 0.5
    train = const.iloc[keep].reset_index(drop=True)
    for kn in (None, {"x0": knots["x0"]}):
        with pytest.raises(ValueError) as plain:
            model.fit(train, knots=kn)
        rows = FullRawBases(const).rows(keep, ("y", None, None), np.flatnonzero(held))
        with pytest.raises(ValueError, match=re.escape(str(plain.value))):
            model.fit(train, knots=kn, raw_rows=rows)
