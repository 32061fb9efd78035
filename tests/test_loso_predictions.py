"""LOSO held-out predictions per row and cross-validation totals (issue 18, item 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gamstore.data import airquality, co2
from gamstore.fit import GAM, s
from gamstore.loso import run_loso, simulate
from gamstore.loso.deviance import auc, deviance, log_density


def test_rows_equal_a_direct_fold_fit() -> None:
    d = co2()
    model = GAM([s("conc", 5)], linear=["Type", "Treatment"])
    ds = run_loso(d, model, subject="Plant", y="uptake", compare_cold=True)
    assert ds.sizes["row"] == len(d)
    full = model.fit(d, y="uptake")
    held = (d["Plant"] == "Qn2").to_numpy()
    fold = model.fit(d.loc[~held].reset_index(drop=True), y="uptake", knots=full.knots)
    test = d.loc[held].reset_index(drop=True)
    for kind in ("link", "response"):
        direct = fold.predict(test, type=kind, se_fit=True)
        got = ds.sel(start="cold").isel(row=np.flatnonzero(held))
        np.testing.assert_allclose(got[f"pred_{kind}"], direct.fit, rtol=1e-10)
        np.testing.assert_allclose(got[f"se_{kind}"], direct.se_fit, rtol=1e-8)
    assert (ds.row_subject.values[held] == "Qn2").all()
    # warm and cold folds reach the same optimum (to the outer tolerance): same predictions
    np.testing.assert_allclose(
        ds.pred_response.sel(start="warm"), ds.pred_response.sel(start="cold"), rtol=1e-4
    )


def test_totals_gaussian() -> None:
    d = co2()
    ds = run_loso(d, GAM([s("conc", 5)], linear=["Type"]), subject="Plant", y="uptake")
    w = ds.sel(start="warm")
    y, mu = ds.y_observed.values, w.pred_response.values
    assert float(w.cv_deviance) == pytest.approx(float(w.heldout_deviance.sum()), rel=1e-12)
    assert float(w.cv_deviance) == pytest.approx(float(np.sum((y - mu) ** 2)), rel=1e-12)
    assert float(w.cv_rmse) == pytest.approx(float(np.sqrt(np.mean((y - mu) ** 2))), rel=1e-12)
    scale = np.array([float(w.scale.sel(fold=p)) for p in ds.row_subject.values])
    expected = float(np.sum(stats.norm.logpdf(y, mu, np.sqrt(scale))))
    assert float(w.cv_log_score) == pytest.approx(expected, rel=1e-12)
    assert int(w.cv_n) == len(d) and np.isnan(float(w.cv_auc))


def test_totals_binomial_auc_and_log_score() -> None:
    data = simulate("binomial", n=450, n_subjects=3, seed=4)
    ds = run_loso(data, GAM([s("x0"), s("x1")], family="binomial"), subject="subj")
    w = ds.sel(start="warm")
    y, p = ds.y_observed.values, w.pred_response.values
    u = stats.mannwhitneyu(p[y == 1], p[y == 0]).statistic
    assert float(w.cv_auc) == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), rel=1e-12)
    assert float(w.cv_log_score) == pytest.approx(
        float(np.sum(stats.binom.logpmf(y, 1, p))), rel=1e-10
    )
    assert float(w.cv_deviance) == pytest.approx(-2.0 * float(w.cv_log_score), rel=1e-10)
    assert np.isnan(float(w.cv_rmse))


def test_rows_map_back_to_the_input_after_omitting_missing_values() -> None:
    aq = airquality()
    ds = run_loso(aq, GAM([s("Temp"), s("Wind")]), subject="Month", y="Ozone")
    assert ds.attrs["n_dropped"] == 37
    kept = aq["Ozone"].notna().to_numpy()
    np.testing.assert_array_equal(ds.input_row.values, np.flatnonzero(kept))
    np.testing.assert_array_equal(ds.y_observed.values, aq["Ozone"].to_numpy()[kept])


def test_unit_helpers() -> None:
    y = np.array([0.0, 1.0, 0.5, 1.0])
    wts = np.array([1.0, 1.0, 2.0, 3.0])
    score = np.array([0.1, 0.9, 0.5, 0.5])
    # expanded data: positives at 0.9, 0.5 (x1 from the 2 trials), 0.5 (x3); negatives at
    # 0.1, 0.5 (x1): pairs 5 * 2 = 10; wins: 0.9 beats both (2), each 0.5 positive beats 0.1
    # and ties 0.5 (1.5 each, x4) = 6 -> 8 / 10
    assert auc(y, score, wts) == pytest.approx(0.8)
    assert np.isnan(auc(np.ones(3), np.arange(3.0)))
    ld = log_density("poisson", [0.0, 3.0], [1.5, 2.0])
    np.testing.assert_allclose(ld, stats.poisson.logpmf([0, 3], [1.5, 2.0]), rtol=1e-12)
    assert deviance("gaussian", [1.0, 2.0], [1.5, 2.0]) == pytest.approx(0.25)


def test_cli_prints_and_writes_totals(tmp_path: Path) -> None:
    import xarray as xr
    from click.testing import CliRunner

    from gamstore.cli import main
    from gamstore.data import path

    out = tmp_path / "loso.nc"
    result = CliRunner().invoke(
        main,
        ["loso", str(path("co2")), "--y", "uptake", "--smooth", "conc", "-k", "5",
         "--linear", "Type", "--subject", "Plant", "--store", str(tmp_path / "st"),
         "--out", str(out), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cross-validation (warm, 84 held-out rows): deviance" in result.output
    assert "RMSE" in result.output
    with xr.open_dataset(out) as ds:
        assert ds.sizes["row"] == 84
        assert {"pred_link", "pred_response", "se_link", "se_response", "cv_rmse"} <= set(
            ds.data_vars
        )
        rmse = float(ds.cv_rmse.sel(start="warm"))
    assert f"RMSE {rmse:.4g}" in result.output


def test_binomial_counts_in_loso_and_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gamstore.cli import main

    rng = np.random.default_rng(11)
    n = 240
    x = rng.uniform(size=n)
    trials = rng.integers(1, 8, size=n).astype(float)
    succ = rng.binomial(trials.astype(int), 1.0 / (1.0 + np.exp(-np.sin(5 * x)))).astype(float)
    data = pd.DataFrame({"x": x, "s": succ, "n": trials, "subj": np.repeat([1, 2, 3, 4], 60)})
    model = GAM([s("x")], family="binomial")
    counts = run_loso(data, model, subject="subj", y=("s", "n"))
    prop = run_loso(data.assign(p=succ / trials), model, subject="subj", y="p", weights="n")
    for name in ("cv_deviance", "cv_log_score", "cv_auc"):
        assert float(counts[name].sel(start="warm")) == pytest.approx(
            float(prop[name].sel(start="warm")), rel=1e-8
        )
    np.testing.assert_allclose(counts.prior_weights, trials)
    csv = tmp_path / "counts.csv"
    data.to_csv(csv, index=False)
    result = CliRunner().invoke(
        main,
        ["loso", str(csv), "--y", "s", "--trials", "n", "--smooth", "x", "--subject", "subj",
         "--family", "binomial", "--store", str(tmp_path / "st"), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "AUC" in result.output
    bad = CliRunner().invoke(
        main,
        ["loso", str(csv), "--y", "s", "--trials", "n", "--smooth", "x", "--subject", "subj",
         "--store", str(tmp_path / "st"), "--no-progress"],
    )  # fmt: skip
    assert bad.exit_code == 2 and "--trials" in bad.output


def test_factor_level_only_in_the_held_out_subject_fails_that_fold_early() -> None:
    aq = airquality()
    model = GAM([s("Temp"), s("Wind")], linear=["Month"])
    ds = run_loso(aq, model, subject="Month", y="Ozone")
    assert (ds.status == "failed").all()
    err = str(ds.error.sel(fold="Aug", start="warm").values)
    assert "factor 'Month': level(s) ['Aug'] occur only in subject 'Aug'" in err
    assert int(ds.attempts.sel(fold="Aug", start="warm")) == 1  # deterministic: no retry
    assert np.isnan(ds.n_outer.where(ds.n_outer >= 0)).all()  # no fold was fitted


def test_heldout_predictions_match_mgcv_folds() -> None:
    # mgcv refits every fold with the full-data knots and predicts the held-out plant with
    # se.fit (tests/fixtures/inference/make_inference_fixtures.R, case co2)
    from inference_fixtures import frame, load, model_args, nan_array

    case = load()["cases"]["co2"]
    mg = case["mgcv"]["loso"]
    y, smooths, linear, family = model_args(case)
    model = GAM([s(t, k) for t, k in smooths], family=family, linear=linear)
    ds = run_loso(frame(case), model, subject=mg["subject"], y=y, compare_cold=True)
    fit_mg, se_mg = nan_array(mg["fit_link"]), nan_array(mg["se_link"])
    for start in ("warm", "cold"):
        got = ds.sel(start=start)
        np.testing.assert_allclose(got.se_link, se_mg, rtol=1e-5)
        np.testing.assert_allclose(got.pred_link, fit_mg, rtol=0, atol=1e-5 * np.abs(fit_mg).max())
