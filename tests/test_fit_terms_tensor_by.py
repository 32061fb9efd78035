"""``by=`` on tensor products (mgcv's ``te(x, z, by = f)`` / ``ti(x, z, by = z2)``).

A factor ``by`` gives one tensor product per level (its own block and one ρ per margin),
built, penalty-scaled and (te) centred on all rows before the level's indicator multiplies
it, as mgcv's ``smoothCon``; a numeric ``by`` multiplies the product, and a te then drops its
constraint. Parity with mgcv 1.8-41 is in tests/test_fit_terms.py (cases ``*_te_by_*`` and
``*_ti_by_*`` of tests/fixtures/terms/terms.json, iris, quakes and airquality); here: the
blocks, their knots and prediction, how a fold's blocks map to the full fit's, and LOSO
runs whose warm folds equal their cold ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import parity
import pytest

import gamstore
from gamstore.fit import GAM, s, te, ti
from gamstore.fit.warm import block_specs, structure_descriptor
from gamstore.loso import run_loso

sup = parity.suite("terms")
IRIS = sup.frame(sup.cases()["iris_te_by_Species"])
AIRQ = sup.frame(sup.cases()["airquality_te_by_SolarR"]).assign(
    Month=np.asarray(sup.frame(sup.cases()["airquality_te_re_Month"])["Month"])
)
LABEL = "te(Sepal.Width,Petal.Length)"


def _same_optimum(warm: float, cold: float) -> None:
    assert abs(warm - cold) <= 1e-8 * abs(cold), (warm, cold)


def test_factor_by_gives_one_centred_tensor_block_per_level() -> None:
    gam = GAM([te("Sepal.Width", "Petal.Length", k=4, by="Species")], linear=["Species"])
    res = gam.fit(IRIS, y="Sepal.Length")
    levels = ["setosa", "versicolor", "virginica"]
    assert res.block_names[1:] == [f"{LABEL}:Species{lv}" for lv in levels]
    assert res.rho.size == 6  # one rho per margin and level
    d = gam.prepare(IRIS, "Sepal.Length")[0].design
    species = IRIS["Species"].to_numpy()
    for b, lv in zip(d.smooths, levels, strict=True):
        assert b.cols.stop - b.cols.start == 15 and b.rank == 12  # 4 x 4 - 1; null 2 x 2 - 1
        assert len(b.pens) == 2
        # the level's indicator multiplies the design: zero rows elsewhere
        assert np.all(d.X[species != lv, b.cols] == 0.0)
        # centred on all rows before multiplying (smoothCon): the constraint row is the
        # unmultiplied tensor design's column means, the same for every level
        np.testing.assert_array_equal(b.basis.col_means, d.smooths[0].basis.col_means)
    # one basis for all levels: its margins' knots, keyed with the by column
    assert sorted(res.knots) == sorted(
        f"{LABEL}:Species[{m}]" for m in ("Sepal.Width", "Petal.Length")
    )
    np.testing.assert_allclose(res.predict(IRIS), res.fitted, rtol=1e-12, atol=1e-12)
    again = gam.fit(IRIS, y="Sepal.Length", knots=res.knots)
    assert again.reml == pytest.approx(res.reml, rel=1e-12)
    assert "by = Species" in res.formula and "by='Species'" in repr(gam)


def test_numeric_by_te_is_not_centred_ti_never_is() -> None:
    res = GAM([te("Temp", "Wind", k=4, by="Solar.R")]).fit(AIRQ, y="Ozone")
    (b,) = res._design.smooths
    assert b.label == "te(Temp,Wind):Solar.R"
    assert b.cols.stop - b.cols.start == 16 and b.rank == 12  # all 4 x 4; null space 2 x 2
    assert b.basis.col_means is None
    # a constant by keeps the constraint (mgcv: sd(by) > mean(by) eps 1000 drops it)
    const = AIRQ.assign(one=2.0)
    (c,) = GAM([te("Temp", "Wind", k=4, by="one")]).fit(const, y="Ozone")._design.smooths
    assert c.cols.stop - c.cols.start == 15
    (t,) = GAM([ti("Temp", "Wind", k=4, by="Solar.R")]).fit(AIRQ, y="Ozone")._design.smooths
    assert t.cols.stop - t.cols.start == 9 and t.rank == 8
    new = AIRQ.iloc[:7]
    np.testing.assert_allclose(res.predict(new), res.fitted[:7], rtol=1e-12)


def test_tensor_by_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="by must be another column than the margins"):
        te("Temp", "Wind", by="Wind")
    with pytest.raises(TypeError, match="by must be a column name"):
        te("Temp", "Wind", by="")
    with pytest.raises(ValueError, match="Month2"):
        GAM([te("Temp", "Wind", k=4, by="Month2")]).fit(AIRQ, y="Ozone")
    # the same tensor product with and without by is allowed (other keys)
    both = GAM([te("Temp", "Wind", k=4), te("Temp", "Wind", k=4, by="Solar.R")])
    assert both.fit(AIRQ, y="Ozone").block_names[1:] == ["te(Temp,Wind)", "te(Temp,Wind):Solar.R"]


def test_fold_without_a_level_has_one_tensor_block_fewer(tmp_path: Path) -> None:
    """A fold that lacks a level of the by factor: one tensor block (two ρ) fewer and one
    contrast fewer; the levels it keeps start at the full fit's ρ (and β, exactly the raw
    coordinates of the product of the margins' B-splines), the parametric block cold; the
    fold lands on its cold optimum."""
    gam = GAM([te("Sepal.Width", "Petal.Length", k=4, by="Species")], linear=["Species"])
    store = gamstore.open_store(str(tmp_path))
    full = gam.fit(IRIS, y="Sepal.Length", store=store)
    train = IRIS[IRIS["Species"] != "versicolor"].reset_index(drop=True)
    warm = gam.fit(train, y="Sepal.Length", knots=full.knots, store=store)
    cold = gam.fit(train, y="Sepal.Length", knots=full.knots)
    assert len(full.rho) == 6 and len(warm.rho) == 4
    assert f"{LABEL}:Speciesversicolor" not in warm.edf
    assert warm.warm == "cross-fit" and warm.start_check is not None
    np.testing.assert_array_equal(warm.start_check.rho_start, full.rho[[0, 1, 4, 5]])
    _same_optimum(warm.reml, cold.reml)
    np.testing.assert_allclose(
        warm.fitted, cold.fitted, rtol=0, atol=1e-5 * np.abs(cold.fitted).max()
    )
    # the structure key names the term once, without its levels: full fit and fold share it
    keys = []
    for data in (IRIS, train):
        prob, _ = gam.prepare(data, "Sepal.Length")
        keys.append(structure_descriptor("gaussian", prob.design, block_specs(prob)))
    assert keys[0].descriptor_key() == keys[1].descriptor_key()
    named = GAM([s("Petal.Length", k=4, by="Species")], linear=["Species"])
    prob, _ = named.prepare(IRIS, "Sepal.Length")
    assert len(keys[0].term_identities) == 2  # (parametric) and the term, once
    assert (
        len(structure_descriptor("gaussian", prob.design, block_specs(prob)).term_identities) == 2
    )


@pytest.mark.parametrize("case", ["quakes_te_by_factor", "airquality_te_by_numeric_Month"])
def test_loso_with_tensor_by_runs_warm_equal_cold(case: str, tmp_path: Path) -> None:
    """LOSO (quakes, Poisson, in 5 interleaved groups of events; airquality by month) with
    every fold warm-started from the full-data fit: each fold reaches its cold optimum.
    (Not iris: two of its three level surfaces are planes, ρ runs along a flat REML and
    warm and cold stop 2e-7 apart on it.)"""
    if case == "quakes_te_by_factor":
        qk = sup.frame(sup.cases()["quakes_te_by_deep_poisson"])
        data = qk.assign(group=np.arange(len(qk)) % 5)
        gam = GAM([te("lat", "long", k=4, by="deep")], family="poisson", linear=["deep"])
        y, subject = "stations", "group"
    else:
        data = AIRQ
        gam = GAM([te("Temp", "Wind", k=4, by="Solar.R")])
        y, subject = "Ozone", "Month"
    ds = run_loso(
        data, gam, subject=subject, y=y, store=str(tmp_path), compare_cold=True, progress=False
    )
    assert int(ds.attrs["n_failed"]) == 0
    assert (ds["warm_source"].sel(start="warm").values == "cross-fit").all()
    for fold in ds["fold"].values:
        w = float(ds["reml"].sel(fold=fold, start="warm"))
        c = float(ds["reml"].sel(fold=fold, start="cold"))
        _same_optimum(w, c)
    pw = ds["pred_response"].sel(start="warm").values
    pc = ds["pred_response"].sel(start="cold").values
    assert np.isfinite(pw).all()
    np.testing.assert_allclose(pw, pc, rtol=1e-4, atol=1e-6 * np.abs(pc).max())


def test_by_factor_and_plain_smooth_terms_still_build_as_before() -> None:
    """The factor-by s() and the plain te keep their blocks (the tensor by= path is apart)."""
    res = GAM([s("Temp", k=5, by="Month"), te("Wind", "Solar.R", k=4)], linear=["Month"]).fit(
        AIRQ, y="Ozone"
    )
    assert res.block_names[-1] == "te(Wind,Solar.R)"
    assert sum(n.startswith("s(Temp):Month") for n in res.block_names) == 5
    assert isinstance(res.fitted, np.ndarray) and isinstance(AIRQ, pd.DataFrame)


@pytest.mark.parametrize(
    ("terms", "dependent"),
    [
        ([s("Temp", k=6), te("Temp", "Wind", k=4)], "te(Temp,Wind): 3 of its 15 columns"),
        ([te("Temp", "Wind", k=4), s("Wind", k=5)], "te(Temp,Wind): 3 of its 15 columns"),
    ],
)
def test_nested_smooths_are_refused_where_mgcv_gam_side_deletes_columns(
    terms: list[object], dependent: str
) -> None:
    """mgcv 1.8-41 (airquality): ``s(Temp, k=6) + te(Temp, Wind, k=c(4,4))`` has 18
    coefficients and ``te(Temp, Wind) + s(Wind, k=5)`` 17, not 21 and 20: gam.side deleted 3
    te columns that the intercept and the 1-D smooth span. gamstore finds the same 3 columns
    and refuses the model with a clear error instead of deleting them."""
    with pytest.raises(ValueError, match=re.escape(dependent) + r".*gam.side would delete them"):
        GAM(terms).fit(AIRQ, y="Ozone")


@pytest.mark.parametrize(
    "terms",
    [
        [s("Temp", k=6), s("Wind", k=6), ti("Temp", "Wind", k=4)],  # mgcv: 20 = 1 + 5 + 5 + 9
        [s("Temp", k=6), te("Temp", "Wind", k=4, by="Solar.R")],  # 22: another variable name
        [s("Temp", k=6), s("Temp", k=6, by="Solar.R")],
    ],
)
def test_shared_covariates_without_dependence_fit(terms: list[object]) -> None:
    """Where mgcv's gam.side deletes nothing (a ti is not in the span of the main effects; a
    numeric by makes another variable), the model fits as before."""
    res = GAM(terms).fit(AIRQ, y="Ozone")
    assert res.converged
