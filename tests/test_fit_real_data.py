"""Real data with missing values, factors and binomial counts against mgcv 1.8-41 (issue 18).

The fixture tests/fixtures/inference/mgcv_inference.json holds the data exactly as fitted and
mgcv's results; it is made by make_inference_fixtures.R (base R datasets only). The live test
re-runs that script and fails instead of skipping under GAMSTORE_CI=1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from inference_fixtures import FIXTURE, R_SCRIPT, frame, live, load, model_args, require_mgcv

import gamstore
from gamstore.fit import GAM, s

FX = load()
CASES = sorted(FX["cases"])


def fit_case(case: dict[str, Any], **kw: Any) -> Any:
    y, smooths, linear, family = model_args(case)
    model = GAM([s(t, k) for t, k in smooths], family=family, linear=linear, **kw)
    return model.fit(frame(case), y=y)


def assert_fit_parity(name: str, case: dict[str, Any]) -> Any:
    mg = case["mgcv"]
    res = fit_case(case)
    assert res.converged
    assert res._design.coef_labels == mg["coef_names"]
    assert res.n == int(mg["n"][0])
    assert res.n_dropped == len(mg["na_action"])
    np.testing.assert_array_equal(res.dropped_rows, np.asarray(mg["na_action"], dtype=int))
    assert abs(res.reml - mg["reml"][0]) <= 1e-6 * abs(mg["reml"][0]), name
    coef = np.asarray(mg["coefficients"])
    assert np.max(np.abs(res.coef - coef)) <= 1e-4 * np.max(np.abs(coef)), name
    return res


def test_fixture_cases_cover_the_issue() -> None:
    fams = {c["family"] for c in FX["cases"].values()}
    assert fams == {"gaussian", "poisson", "binomial"}
    assert all(c["mgcv"]["mgcv_version"] == "1.8.41" for c in FX["cases"].values())
    assert len(FX["cases"]["airquality"]["mgcv"]["na_action"]) == 42


@pytest.mark.parametrize("name", CASES)
def test_fit_parity_recorded(name: str) -> None:
    assert_fit_parity(name, FX["cases"][name])


@pytest.mark.mgcv
def test_live_mgcv_reproduces_the_fixture() -> None:
    require_mgcv()
    live_fixture = live()
    # the shipped numbers are what R + mgcv computes from the shipped script today
    for name in CASES:
        live_case, rec = live_fixture["cases"][name], FX["cases"][name]
        assert live_case["data"] == rec["data"]
        for key in ("coefficients", "Vp", "edf", "reml"):
            np.testing.assert_allclose(
                live_case["mgcv"][key], rec["mgcv"][key], rtol=1e-8, atol=1e-12
            )
        if rec["mgcv"]["loso"] is not None:
            for key in ("fit_link", "se_link"):
                np.testing.assert_allclose(
                    live_case["mgcv"]["loso"][key], rec["mgcv"]["loso"][key], rtol=1e-8
                )
        assert_fit_parity(name, live_case)


# -- 1. missing values ------------------------------------------------------------------------
def test_na_raise_names_the_column() -> None:
    case = FX["cases"]["airquality"]
    with pytest.raises(ValueError, match="'Ozone' \\(response\\) has 37 NaN"):
        fit_case(case, na_action="raise")
    with pytest.raises(ValueError, match="na_action must be one of"):
        GAM([s("x")], na_action="drop")


def test_na_omit_equals_fitting_the_complete_rows() -> None:
    case = FX["cases"]["airquality"]
    df = frame(case)
    res = fit_case(case)
    complete = df.dropna(subset=["Ozone", "Temp", "Wind", "Solar.R", "Month"])
    y, smooths, linear, fam = model_args(case)
    model = GAM([s(t, k) for t, k in smooths], family=fam, linear=linear, na_action="raise")
    ref = model.fit(complete.reset_index(drop=True), y=y)
    np.testing.assert_array_equal(res.coef, ref.coef)
    assert res.n_dropped == 42 and ref.n_dropped == 0
    # a column the model does not use never drops a row
    df2 = df.assign(unused=np.nan)
    assert GAM([s("Temp")]).fit(df2, y="Ozone").n_dropped == 37


def test_na_omit_mapping_input_and_array_weights() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(size=80)
    y = np.sin(5 * x) + rng.normal(scale=0.2, size=80)
    y[[4, 9]] = np.nan
    w = np.ones(80)
    res = GAM([s("x")]).fit({"x": x, "y": y}, y="y", weights=w)
    assert res.n == 78 and list(res.dropped_rows) == [4, 9]


# -- 2. factors -------------------------------------------------------------------------------
def test_factor_labels_and_reference_levels_as_r() -> None:
    from gamstore.data import airquality
    from gamstore.data import co2 as load_co2

    d = load_co2()
    res = GAM([s("conc", 5)], linear=["Type", "Treatment"]).fit(d, y="uptake")
    assert res._design.param_labels == ["(Intercept)", "TypeMississippi", "Treatmentchilled"]
    # the same columns as strings: R sorts the levels, so Mississippi becomes the reference
    plain = d.assign(Type=d["Type"].astype(str), Treatment=d["Treatment"].astype(str))
    res2 = GAM([s("conc", 5)], linear=["Type", "Treatment"]).fit(plain, y="uptake")
    assert res2._design.param_labels == ["(Intercept)", "TypeQuebec", "Treatmentnonchilled"]
    assert res2.reml == pytest.approx(res.reml, rel=1e-9)
    aq = airquality()
    res3 = GAM([s("Temp")], linear=["Month"]).fit(aq, y="Ozone")
    assert res3._design.param_labels[1:] == ["MonthJul", "MonthJun", "MonthMay", "MonthSep"]


def test_bool_factor_and_integer_column_stay_as_r() -> None:
    rng = np.random.default_rng(5)
    n = 120
    df = pd.DataFrame(
        {
            "x": rng.uniform(size=n),
            "flag": rng.uniform(size=n) > 0.5,
            "dose": rng.integers(0, 4, size=n),
        }
    )
    df["y"] = np.sin(4 * df.x) + 0.3 * df.flag + 0.1 * df.dose + rng.normal(scale=0.2, size=n)
    res = GAM([s("x")], linear=["flag", "dose"]).fit(df, y="y")
    assert res._design.param_labels == ["(Intercept)", "flagTRUE", "dose"]


def test_factor_prediction_levels() -> None:
    from gamstore.data import co2

    d = co2()
    res = GAM([s("conc", 5)], linear=["Type", "Treatment"]).fit(d, y="uptake")
    np.testing.assert_allclose(res.predict(d), res.fitted, rtol=1e-12)
    bad = d.head(3).assign(Type=["Quebec", "Ontario", "Quebec"])
    with pytest.raises(ValueError, match="'Type'.*Ontario"):
        res.predict(bad)


def test_factor_with_one_level_is_refused() -> None:
    df = pd.DataFrame({"x": np.linspace(0, 1, 50), "g": ["a"] * 50})
    df["y"] = np.sin(3 * df.x) + np.cos(20 * df.x)
    with pytest.raises(ValueError, match="'g' \\(factor\\) has 1 level"):
        GAM([s("x")], linear=["g"]).fit(df, y="y")


# -- 3. binomial counts -----------------------------------------------------------------------
def test_binomial_counts_equal_proportion_with_weights() -> None:
    case = FX["cases"]["esoph"]
    df = frame(case)
    counts = fit_case(case)
    df["prop"] = df["ncases"] / df["ntotal"]
    y, smooths, linear, fam = model_args(case)
    model = GAM([s(t, k) for t, k in smooths], family=fam, linear=linear)
    prop = model.fit(df, y="prop", weights="ntotal")
    np.testing.assert_allclose(counts.coef, prop.coef, rtol=1e-12, atol=1e-14)
    assert counts.reml == pytest.approx(prop.reml, rel=1e-14)


def test_binomial_counts_checks() -> None:
    df = pd.DataFrame({"x": np.linspace(0, 1, 40), "s": np.arange(40) % 6, "n": np.full(40, 4)})
    with pytest.raises(ValueError, match="'s' \\(successes\\) exceeds 'n'"):
        GAM([s("x")], family="binomial").fit(df, y=("s", "n"))
    with pytest.raises(ValueError, match="needs family='binomial'"):
        GAM([s("x")], family="poisson").fit(df, y=("s", "n"))
    with pytest.raises(TypeError, match="successes, trials"):
        GAM([s("x")], family="binomial").fit(df, y=("s", "n", "x"))  # type: ignore[arg-type]


# -- 6. warm-start keys -----------------------------------------------------------------------
def test_reference_level_and_na_pattern_never_share_records(tmp_path: Path) -> None:
    from gamstore.data import co2

    store = gamstore.open_store(str(tmp_path / "st"))
    d = co2()
    model = GAM([s("conc", 5)], linear=["Type", "Treatment"])
    first = model.fit(d, y="uptake", store=store)
    assert first.warm == "cold"
    assert model.fit(d, y="uptake", store=store).warm == "exact"
    # another reference level: same widths, other columns; not even a cross-fit parent (the
    # structure key of changing-block transfer keeps a parametric factor's reference level)
    other = d.assign(Type=pd.Categorical(d["Type"], categories=["Mississippi", "Quebec"]))
    again = model.fit(other, y="uptake", store=store)
    assert again.warm == "cold"
    cold = model.fit(other, y="uptake")
    assert again.reml == pytest.approx(cold.reml, rel=1e-9)
    np.testing.assert_allclose(again.predict(other), cold.predict(other), rtol=1e-7, atol=1e-9)
    assert again.reml == pytest.approx(first.reml, rel=1e-9)  # same model, reparametrised
    # the NA pattern: the same values with a different row missing is a different data set
    a = d.copy()
    a.loc[5, "uptake"] = np.nan
    b = d.copy()
    b.loc[6, "uptake"] = np.nan
    ra = model.fit(a, y="uptake", store=store)
    rb = model.fit(b, y="uptake", store=store)
    assert ra.warm in ("cold", "cross-fit") and rb.warm in ("cold", "cross-fit")
    assert rb.warm != "exact"
    assert model.fit(b, y="uptake", store=store).warm == "exact"


# -- LOSO and CLI -----------------------------------------------------------------------------
def test_loso_omits_incomplete_rows_and_counts_them() -> None:
    from gamstore.data import airquality
    from gamstore.loso import run_loso

    aq = airquality()
    ds = run_loso(aq, GAM([s("Temp"), s("Wind")]), subject="Month", y="Ozone")
    assert ds.attrs["n_dropped"] == 37
    assert ds.attrs["n_rows"] == 116
    assert (ds.status == "ok").all()
    with pytest.raises(ValueError, match="'Ozone'"):
        run_loso(aq, GAM([s("Temp"), s("Wind")], na_action="raise"), subject="Month", y="Ozone")


def test_cli_loso_na_and_factor(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gamstore.cli import main
    from gamstore.data import path

    runner = CliRunner()
    args = [
        "loso",
        str(path("airquality")),
        "--y",
        "Ozone",
        "--smooth",
        "Temp",
        "Wind",
        "--subject",
        "Month",
        "--store",
        str(tmp_path / "st"),
        "--no-progress",
    ]
    ok = runner.invoke(main, args)
    assert ok.exit_code == 0, ok.output
    assert "37 row(s) with missing values omitted" in " ".join(ok.output.split())
    bad = runner.invoke(main, [*args, "--na", "raise"])
    assert bad.exit_code == 2 and "Ozone" in bad.output
    fac = runner.invoke(
        main,
        [
            "loso",
            str(path("co2")),
            "--y",
            "uptake",
            "--smooth",
            "conc",
            "-k",
            "5",
            "--linear",
            "Type",
            "Treatment",
            "--subject",
            "Plant",
            "--store",
            str(tmp_path / "st"),
            "--no-progress",
        ],
    )
    assert fac.exit_code == 0, fac.output
    png = tmp_path / "smooths.png"
    both = runner.invoke(main, [*args, "--summary", "--plot-smooths", str(png)])
    assert both.exit_code == 0, both.output
    assert "Approximate significance of smooth terms:" in both.output
    assert "n = 116" in both.output and png.stat().st_size > 10_000


def test_fixture_file_is_the_shipped_one() -> None:
    assert FIXTURE.exists() and R_SCRIPT.exists()
