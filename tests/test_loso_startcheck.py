"""Warm never worse than cold: the start check on a real grouped data set (issue 15, item 2).

airquality (complete rows, 111), Poisson ``Ozone ~ s(Temp) + s(Wind) + s(Solar.R)``, LOSO
by Month (5 subjects, each fold drops 8-26% of the rows; Temp and Wind are concurve). Fold
"May" started from the full-data fit converges to a local REML optimum (463.013) while
mgcv, with the same frozen knots, finds 462.796. Data and mgcv's fold answers are fixtures
(tests/fixtures/robust/airquality_loso.json).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gamstore.fit import GAM, GamFitWarning, UnidentifiableBasisWarning, s
from gamstore.fit.startcheck import StartCheckPolicy
from gamstore.loso import run_loso

CASE = json.loads(
    (Path(__file__).parent / "fixtures" / "robust" / "airquality_loso.json").read_text()
)
FRAME = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in CASE["data"].items()})
MAY = 5.0


def model(start_check: Any = "auto") -> GAM:
    return GAM([s("Temp"), s("Wind"), s("Solar.R")], family="poisson", start_check=start_check)


def loso(start_check: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GamFitWarning)
        return run_loso(
            FRAME, model(start_check), subject="Month", y="Ozone", compare_cold=True, progress=False
        )


def test_full_fit_and_knots_are_mgcvs() -> None:
    res = model().fit(FRAME, y="Ozone")
    assert abs(res.reml - CASE["full"]["reml"][0]) <= 1e-6 * abs(res.reml)
    for term, kn in CASE["knots"].items():
        np.testing.assert_allclose(res.knots[term], kn, rtol=1e-13)


def test_warm_folds_never_worse_than_cold_and_disagreement_reported() -> None:
    ds = loso("auto")
    assert (ds["status"] == "ok").all()
    warm, cold = ds.sel(start="warm"), ds.sel(start="cold")
    assert (warm["warm_source"] == "cross-fit").all()
    # the promise: warm REML <= cold REML (1e-6 relative) on every fold
    assert bool((warm["reml"] <= cold["reml"] + 1e-6 * np.abs(cold["reml"])).all())
    # and every fold is mgcv's fit with the same frozen knots
    for month, mg in CASE["folds"].items():
        r = float(warm["reml"].sel(fold=float(month)))
        assert abs(r - mg["mgcv"]["reml"][0]) <= 1e-6 * abs(r), (month, r, mg["mgcv"]["reml"])
        np.testing.assert_allclose(
            warm["rho"].sel(fold=float(month)).values, mg["mgcv"]["log_sp"], atol=1e-3
        )
    # May: the warm run stayed in the full-data fit's basin; the cold check found better
    may = warm.sel(fold=MAY)
    assert bool(may["cold_checked"]) and bool(may["start_disagree"])
    assert str(may["kept"].values) == "cold"
    assert "rows" in str(may["check_reasons"].values)
    assert float(may["warm_reml"]) == pytest.approx(463.0131, abs=1e-3)
    assert float(may["cold_check_reml"]) == pytest.approx(CASE["folds"]["5"]["mgcv"]["reml"][0])
    assert float(may["rho_moved"]) < 1.0  # close to its start: distance alone would miss it
    assert ds.attrs["n_start_disagree"] == 1
    # June drops 8% of the rows and moves 1.6: trusted, no check
    june = warm.sel(fold=6.0)
    assert not bool(june["cold_checked"]) and str(june["check_reasons"].values) == ""
    # mgcv warns "no information about some basis coefficients" on May's fold; so do we
    assert CASE["folds"]["5"]["warnings"]
    assert "UnidentifiableBasisWarning" in str(may["fit_warnings"].values)
    assert not bool(cold["cold_checked"].any())  # cold folds have nothing to check


def test_without_the_check_the_warm_fold_is_worse_and_says_nothing() -> None:
    # what the policy removes: with start_check="never" May's warm fold is worse than cold
    ds = loso("never")
    warm, cold = ds.sel(start="warm", fold=MAY), ds.sel(start="cold", fold=MAY)
    assert float(warm["reml"]) > float(cold["reml"]) + 0.2
    assert not bool(warm["cold_checked"]) and not bool(warm["start_disagree"])


def test_always_checks_every_fold() -> None:
    ds = loso(StartCheckPolicy(mode="always"))
    assert bool(ds.sel(start="warm")["cold_checked"].all())
    assert ds.attrs["n_cold_checked"] == 5


def test_cli_summary_flags_disagreeing_folds(capsys: pytest.CaptureFixture[str]) -> None:
    from gamstore.cli.loso import print_summary

    print_summary(loso("auto"), "airquality")
    out = capsys.readouterr().out
    assert "fold 5.0 (warm): warm start (cross-fit) and cold check disagree" in out
    assert "kept cold" in out
    assert "start check: 4 fold fit(s) also fitted cold" in out


def test_fold_fit_warns_unidentifiable_basis() -> None:
    full = model().fit(FRAME, y="Ozone")
    with pytest.warns(UnidentifiableBasisWarning, match=r"s\(Temp\)"):
        model().fit(FRAME[FRAME.Month != MAY], y="Ozone", knots=full.knots)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"mode": "sometimes"}, "start_check mode"),
        ({"max_move": -1.0}, "max_move"),
        ({"max_drop_share": float("nan")}, "max_drop_share"),
    ],
)
def test_policy_validation(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StartCheckPolicy(**kw)
    with pytest.raises(TypeError, match="start_check must be"):
        GAM([s("Temp")], start_check=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(("mode", "flagged"), [("auto", True), ("never", False)])
def test_cli_start_check_option(tmp_path: Path, mode: str, flagged: bool) -> None:
    import xarray as xr
    from click.testing import CliRunner

    from gamstore.cli import main

    csv = tmp_path / "airquality.csv"
    FRAME.to_csv(csv, index=False, float_format="%.17g")
    out = tmp_path / "loso.nc"
    args = ["loso", str(csv), "--y", "Ozone", "--smooth", "Temp", "Wind", "Solar.R"]
    args += ["--subject", "Month", "--family", "poisson", "--store", str(tmp_path / "store")]
    args += ["--start-check", mode, "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert ("cold check disagree" in result.output) is flagged
    ds = xr.load_dataset(out)
    assert int(ds["start_disagree"].sum()) == int(flagged)
    assert int(ds["cold_checked"].sum()) == (4 if flagged else 0)


def _run(rho: list[float], score: float, *, indefinite: int = 0, converged: bool = True) -> Any:
    from types import SimpleNamespace

    final = SimpleNamespace(rho=np.asarray(rho, dtype=np.float64), score=score)
    return SimpleNamespace(final=final, n_indefinite=indefinite, converged=converged)


@pytest.mark.parametrize(
    ("policy", "warm", "rows", "parent", "reasons"),
    [
        (StartCheckPolicy(), _run([0.5, 1.0], 10.0), 95, 100, ()),
        (StartCheckPolicy(), _run([0.5, 1.0], 10.0), 80, 100, ("rows",)),
        (StartCheckPolicy(), _run([0.5, 1.0], 10.0), 95, None, ("rows",)),  # unknown parent
        (StartCheckPolicy(), _run([0.5, 3.5], 10.0), 95, 100, ("moved",)),
        (StartCheckPolicy(), _run([0.5, 1.0], 10.0, indefinite=1), 95, 100, ("indefinite",)),
        (StartCheckPolicy(), _run([0.5, 1.0], 10.0, converged=False), 95, 100, ("not-converged",)),
        (StartCheckPolicy(mode="never"), _run([0.5, 9.0], 10.0), 10, 100, ()),
        (StartCheckPolicy(mode="always"), _run([0.5, 1.0], 10.0), 99, 100, ("always",)),
    ],
)
def test_policy_triggers(
    policy: StartCheckPolicy, warm: Any, rows: int, parent: int | None, reasons: tuple[str, ...]
) -> None:
    from gamstore.fit.startcheck import check_start

    cold_runs: list[Any] = []

    def run_cold() -> Any:
        cold_runs.append(_run([3.0, 0.0], 10.0))
        return cold_runs[-1]

    kept, rec = check_start(policy, "cross-fit", warm, np.array([0.0, 1.0]), rows, parent, run_cold)
    assert rec.reasons == reasons
    assert rec.cold_checked == bool(reasons) == bool(cold_runs)
    assert kept is warm and rec.kept == "warm"  # a tie keeps the warm run
    assert not rec.disagree


@pytest.mark.parametrize(("cold_score", "kept_cold"), [(9.0, True), (11.0, False)])
def test_the_lower_reml_is_kept_and_the_disagreement_recorded(
    cold_score: float, kept_cold: bool
) -> None:
    from gamstore.fit.startcheck import check_start

    warm, cold = _run([0.5, 1.0], 10.0), _run([3.0, 0.0], cold_score)
    kept, rec = check_start(
        StartCheckPolicy(mode="always"), "cross-fit", warm, np.zeros(2), 50, 100, lambda: cold
    )
    assert rec.disagree and rec.cold_checked
    assert (kept is cold) == kept_cold and rec.kept == ("cold" if kept_cold else "warm")
    assert (rec.warm_reml, rec.cold_reml) == (10.0, cold_score)
    np.testing.assert_array_equal(rec.cold_rho, [3.0, 0.0])


def test_starts_from_the_same_fit_are_never_checked() -> None:
    from gamstore.fit.startcheck import check_start

    warm = _run([0.5, 9.0], 10.0, indefinite=3)
    for level in ("exact", "session", "cold", "explicit"):
        kept, rec = check_start(
            StartCheckPolicy(mode="always"), level, warm, np.zeros(2), 1, 100, lambda: 1 / 0
        )
        assert kept is warm and not rec.cold_checked and rec.reasons == ()
