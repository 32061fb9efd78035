"""run_loso with the reference fitter, in process: warm against cold, failures, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gamstore.fit import GAM, s
from gamstore.loso import deviance, run_loso, simulate
from gamstore.store import open_store


@pytest.fixture(scope="module")
def poisson_data() -> pd.DataFrame:
    return simulate("poisson", n=1200, n_subjects=6, seed=7)


def _model(family: str = "poisson") -> GAM:
    return GAM([s("x0"), s("x1"), s("x2")], family=family)


def test_warm_folds_match_cold_optimum(poisson_data: pd.DataFrame) -> None:
    store = open_store("memory://loso-warm-vs-cold")
    ds = run_loso(poisson_data, _model(), subject="subj", store=store, compare_cold=True)
    assert dict(ds.sizes) == {"fold": 6, "start": 2, "term": 3, "penalty": 3, "row": 1200}
    assert list(ds["fold"].values) == [0, 1, 2, 3, 4, 5]
    assert list(ds["start"].values) == ["warm", "cold"]
    assert list(ds["term"].values) == ["s(x0)", "s(x1)", "s(x2)"]
    assert (ds["status"] == "ok").all()
    assert (ds["attempts"] == 1).all()
    assert set(ds["warm_source"].sel(start="cold").values) == {"cold"}
    assert set(ds["warm_source"].sel(start="warm").values) <= {"cross-fit", "session"}
    assert ds["full_warm_source"].item() == "cold"
    warm, cold = ds.sel(start="warm"), ds.sel(start="cold")
    rel = np.abs(warm["reml"] - cold["reml"]) / np.abs(cold["reml"])
    assert float(rel.max()) <= 1e-6
    assert int(warm["n_outer"].sum()) < int(cold["n_outer"].sum())
    assert (ds["heldout_n"] == 200).all()
    assert np.isfinite(ds["full_rho"]).all() and ds["full_n_outer"].item() >= 1


def test_fold_equals_a_direct_fit_with_frozen_knots(poisson_data: pd.DataFrame) -> None:
    ds = run_loso(poisson_data, _model(), subject="subj", warm=False)
    assert list(ds["start"].values) == ["cold"]
    full = _model().fit(poisson_data, y="y")
    np.testing.assert_allclose(ds["full_rho"].values, full.rho, rtol=1e-10)
    held = poisson_data["subj"] == 4
    direct = _model().fit(poisson_data[~held], y="y", knots=full.knots)
    fold = ds.sel(fold=4, start="cold")
    assert float(fold["reml"]) == pytest.approx(direct.reml, rel=1e-10)
    np.testing.assert_allclose(fold["rho"].values, direct.rho, rtol=1e-8)
    mu = direct.predict(poisson_data[held], type="response")
    expected = deviance("poisson", poisson_data.loc[held, "y"], mu)
    assert float(fold["heldout_deviance"]) == pytest.approx(expected, rel=1e-10)
    assert int(fold["n_outer"]) == direct.n_outer


def test_second_run_on_same_store_hits_exact_records(tmp_path: Path) -> None:
    data = simulate("gaussian", n=600, n_subjects=3, seed=11)
    store = open_store(str(tmp_path / "store"))
    first = run_loso(data, _model("gaussian"), subject="subj", store=store)
    second = run_loso(data, _model("gaussian"), subject="subj", store=str(tmp_path / "store"))
    assert (second["status"] == "ok").all()
    assert second["full_warm_source"].item() == "exact"
    assert set(second["warm_source"].values.ravel()) == {"exact"}
    assert int(second["n_outer"].sum()) < int(first["n_outer"].sum())
    rel = np.abs(second["reml"] - first["reml"]) / np.abs(first["reml"])
    assert float(rel.max()) <= 1e-6


@pytest.mark.parametrize("reuse", [False, True], ids=["rebuilt", "reused"])
def test_unidentifiable_fold_is_reported_not_raised(reuse: bool) -> None:
    """Also with reused designs, where a numeric column's constancy on a fold follows from
    the full data's extremes and the held-out rows (no scan of the fold)."""
    data = simulate("gaussian", n=600, n_subjects=3, seed=5)
    # z varies only within subject 1: without it the linear term is a constant column
    rng = np.random.default_rng(1)
    data["z"] = np.where(data["subj"] == 1, rng.normal(size=len(data)), 0.5)
    model = GAM([s("x0"), s("x1")], linear=["z"])
    ds = run_loso(data, model, subject="subj", warm=False, reuse_designs=reuse)
    bad = ds.sel(fold=1, start="cold")
    assert bad["status"].item() == "failed"
    assert bad["attempts"].item() == 1  # deterministic: a retry would only repeat it
    assert "term z is unidentifiable without subject 1" in bad["error"].item()
    assert np.isnan(bad["reml"].item()) and np.isnan(bad["rho"]).all()
    good = ds.sel(fold=[0, 2])
    assert (good["status"] == "ok").all() and (good["error"] == "").all()
    assert ds.attrs["n_failed"] == 1


class _FlakyGAM(GAM):
    """Fails the first fit of one fold (a transient problem), then works."""

    def __init__(self, *args: object, flaky_subject: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.flaky_subject = flaky_subject
        self.failed_once = False

    def fit(self, data, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        if self.flaky_subject not in set(data["subj"]) and not self.failed_once:
            self.failed_once = True
            raise ConnectionResetError("transient")
        return super().fit(data, *args, **kwargs)


def test_failed_fold_is_retried_once() -> None:
    data = simulate("gaussian", n=600, n_subjects=3, seed=5)
    model = _FlakyGAM([s("x0"), s("x1")], flaky_subject=2)
    ds = run_loso(data, model, subject="subj", warm=False)
    assert (ds["status"] == "ok").all()
    assert list(ds["attempts"].sel(start="cold").values) == [1, 1, 2]


def test_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    data = simulate("gaussian", n=400, n_subjects=2, seed=3)
    run_loso(data, GAM([s("x0")]), subject="subj", warm=False, progress=True)
    captured = capsys.readouterr()
    assert "LOSO folds" in captured.err and captured.out == ""
    run_loso(data, GAM([s("x0")]), subject="subj", warm=False)  # stderr is not a TTY here: no bar
    assert "LOSO folds" not in capsys.readouterr().err


def test_dataset_survives_netcdf(tmp_path: Path, poisson_data: pd.DataFrame) -> None:
    import xarray as xr

    ds = run_loso(poisson_data.iloc[:400], _model(), subject="subj", compare_cold=True)
    path = tmp_path / "loso.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    back = xr.open_dataset(path, engine="h5netcdf").load()
    xr.testing.assert_identical(back, ds)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"subject": "nope"}, ValueError, "subject: column 'nope' not in data"),
        ({"subject": "one"}, ValueError, "at least 2 distinct subjects"),
        ({"subject": "subj", "y": "yy"}, ValueError, "y: response column 'yy'"),
        ({"subject": "subj", "executor": "threads"}, TypeError, "executor"),
        (
            {"subject": "subj", "executor": "processes", "store": "memory://x"},
            ValueError,
            "lives in this process only",
        ),
    ],
)
def test_bad_input(kwargs: dict[str, object], exc: type[Exception], match: str) -> None:
    data = simulate("gaussian", n=400, n_subjects=2, seed=3)
    data["one"] = 1
    with pytest.raises(exc, match=match):
        run_loso(data, GAM([s("x0")]), **kwargs)  # type: ignore[arg-type]


def test_bad_data_type() -> None:
    with pytest.raises(TypeError, match="data: expected a pandas.DataFrame"):
        run_loso([1, 2, 3], GAM([s("x0")]), subject="subj")
    with pytest.raises(ValueError, match="missing labels"):
        run_loso(
            {"x0": [0.1, 0.2, 0.3], "y": [1.0, 2.0, 3.0], "subj": [1.0, np.nan, 2.0]},
            GAM([s("x0")]),
            subject="subj",
        )


def test_save_folds_false_reads_only_the_full_fit(tmp_path: Path) -> None:
    data = simulate("poisson", n=800, n_subjects=4, seed=8)
    url = str(tmp_path / "store")
    store = open_store(url)
    _model().fit(data, y="y", store=store)  # what the full-data fit of run_loso writes
    before = sorted(info.path for info in store.entries())
    ds = run_loso(data, _model(), subject="subj", store=url, save_folds=False)
    assert (ds["status"] == "ok").all()
    assert set(ds["warm_source"].values.ravel()) == {"cross-fit"}
    assert ds.attrs["save_folds"] == 0
    # the folds wrote nothing (the full-data fit was an exact hit and rewrote nothing either)
    assert ds["full_warm_source"].item() == "exact"
    assert sorted(info.path for info in store.entries()) == before
    # every fold started from the same parent: the folds do not depend on each other
    again = run_loso(data.iloc[::-1], _model(), subject="subj", store=url, save_folds=False)
    np.testing.assert_array_equal(again["n_outer"].values, ds["n_outer"].values)


def test_string_subject_labels_and_mapping_input() -> None:
    data = simulate("gaussian", n=600, n_subjects=3, seed=9)
    labels = np.array(["anna", "ben", "cleo"])[data["subj"].to_numpy()]
    columns = {"x0": data["x0"].to_numpy(), "y": data["y"].to_numpy(), "who": labels}
    ds = run_loso(columns, GAM([s("x0")]), subject="who", warm=False)
    assert list(ds["fold"].values) == ["anna", "ben", "cleo"]
    assert (ds["status"] == "ok").all() and (ds["heldout_n"] == 200).all()
    assert ds.sel(fold="ben")["reml"].item() > 0


def test_weights_and_offset_columns_reach_every_fit() -> None:
    rng = np.random.default_rng(4)
    data = simulate("poisson", n=600, n_subjects=3, seed=4)
    data["exposure"] = rng.uniform(0.5, 2.0, size=len(data))
    data["y"] = rng.poisson(data["exposure"] * np.exp(np.sin(2 * np.pi * data["x0"]))).astype(float)
    data["logexp"] = np.log(data["exposure"])
    data["w"] = rng.integers(1, 4, size=len(data)).astype(float)
    model = GAM([s("x0")], family="poisson")
    ds = run_loso(data, model, subject="subj", warm=False, weights="w", offset="logexp")
    full = model.fit(data, y="y", weights="w", offset="logexp")
    assert float(ds["full_reml"]) == pytest.approx(full.reml, rel=1e-10)
    held = data["subj"] == 2
    direct = model.fit(data[~held], y="y", weights="w", offset="logexp", knots=full.knots)
    fold = ds.sel(fold=2, start="cold")
    assert float(fold["reml"]) == pytest.approx(direct.reml, rel=1e-10)
    mu = direct.predict(data[held], type="response")  # uses the offset column of new data
    expected = deviance("poisson", data.loc[held, "y"], mu, data.loc[held, "w"])
    assert float(fold["heldout_deviance"]) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="weights: expected the name of a column"):
        run_loso(data, model, subject="subj", weights="nope")
