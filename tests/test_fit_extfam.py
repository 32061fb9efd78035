"""Extended families: negative binomial with theta estimated (mgcv's ``nb()``).

mgcv estimates ``log(theta)`` jointly with the smoothing parameters; gamstore profiles the
REML score over ``log(theta)`` (:func:`gamstore.fit.newton.profile_theta`), which has the
same minimum. The data and mgcv 1.8-41's answers (with ``ext`` = ``family$getTheta()`` =
log theta) are in tests/fixtures/families/extended.json, written by
``Rscript tests/fixtures/parity_mgcv.R make extended tests/fixtures/families``.
Criteria are the families parity suite's, plus log theta within 1e-3 (as rho). The live test
refits every case with Rscript + mgcv on the fixture's bytes; it skips without R, but fails
instead under GAMSTORE_CI=1.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import parity
import pytest

import gamstore as gs
from gamstore.fit import GAM, s
from gamstore.fit.families import NegBin, get_family
from gamstore.fit.reml import evaluate

HERE = Path(__file__).parent / "fixtures"
THETA_ATOL = 1e-3  # log theta, as log smoothing parameters in the parity criteria


fs = parity.suite("extended")
FX: dict[str, Any] = fs.load()
CASES: dict[str, dict[str, Any]] = fs.cases()
_counter = itertools.count()


def _fit(name: str, **kw: Any) -> tuple[dict[str, Any], pd.DataFrame, GAM, Any]:
    case = CASES[name]
    data = fs.frame(case)
    gam = fs.model(case)
    return case, data, gam, gam.fit(data, y=case["y"], **kw)


def _check(name: str, res: Any, data: pd.DataFrame, gam: GAM, mg: dict[str, Any]) -> None:
    case = CASES[name]
    cmp = fs.against_mgcv(case, data, gam, res, {**case, "mgcv": mg})
    assert cmp.ok, (name, cmp.reference, cmp.failures)
    ref = case[cmp.reference] if cmp.reference != "mgcv" else mg
    assert res.ext is not None and res.ext.shape == (1,)
    assert abs(res.ext[0] - ref["ext"][0]) <= THETA_ATOL, (name, res.ext, ref["ext"])


def test_fixture_is_mgcv_nb_on_two_data_sets() -> None:
    assert FX["mgcv_version"] == "1.8.41"
    for link in ("log", "identity", "sqrt"):  # every link of nb() on two data sets
        sources = {
            c["source"].split(" ")[0]
            for c in CASES.values()
            if get_family(c["family"]).link == link
        }
        assert len(sources) >= 2, (link, sources)
    for c in CASES.values():
        assert c["mgcv"]["family"].startswith("Negative Binomial"), c["mgcv"]["family"]
        assert c["mgcv"]["link"] == get_family(c["family"]).link
        assert c["mgcv"]["warnings"] == [] and c["mgcv"]["outer_conv"] == "full convergence"


@pytest.mark.parametrize("name", list(CASES))
def test_nb_parity_with_recorded_mgcv(name: str) -> None:
    """REML, rho, log theta, fitted values, coefficients and edf against mgcv's nb()."""
    case, data, gam, res = _fit(name)
    _check(name, res, data, gam, case["mgcv"])
    assert res.family == "nb" and res.scale == 1.0
    assert isinstance(res._family, NegBin)
    assert res._family.theta == pytest.approx(np.exp(res.ext[0]), rel=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_reml_score_at_mgcv_rho_and_theta(name: str) -> None:
    """At mgcv's tightly converged (rho, theta) the score is mgcv's REML (the saturated
    log-likelihood ``ls`` of nb() included) and the rho gradient vanishes; moving log theta
    either way raises the profiled score (theta is at the REML minimum)."""
    case = CASES[name]
    data, gam = fs.frame(case), fs.model(case)
    prob, _ = gam.prepare(data, case["y"], None, None)
    mg = case["mgcv_tight"]
    link = get_family(case["family"]).link

    def nb(t: float) -> NegBin:
        return NegBin(link, theta=float(np.exp(t)))

    at = dataclasses.replace(prob, family=nb(mg["ext"][0]))
    ev = evaluate(at, np.asarray(mg["log_sp"], dtype=np.float64))
    assert ev.score == pytest.approx(mg["reml"][0], rel=1e-9, abs=1e-6), name
    assert np.max(np.abs(ev.grad)) < 1e-3, (name, ev.grad)
    for dt in (-0.05, 0.05):
        off = dataclasses.replace(prob, family=nb(mg["ext"][0] + dt))
        assert gam.run(off, np.asarray(mg["log_sp"]), None).final.score > ev.score - 1e-9


@pytest.mark.mgcv
def test_nb_parity_with_live_mgcv() -> None:
    """mgcv today, on the fixture's bytes, gives the recorded answers, and gamstore matches."""
    parity.require_mgcv()
    live = fs.run_live(list(CASES))
    assert sorted(live) == sorted(CASES)
    for name in CASES:
        case, data, gam, res = _fit(name)
        np.testing.assert_allclose(live[name]["reml"], case["mgcv"]["reml"], rtol=1e-8)
        np.testing.assert_allclose(live[name]["ext"], case["mgcv"]["ext"], atol=1e-8)
        _check(name, res, data, gam, live[name])


def test_nb_family_basics() -> None:
    fam = get_family("nb")
    assert fam.kind == "nb(log)" and fam.n_ext == 1 and fam.theta is None  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="theta is estimated"):
        fam.variance(np.ones(2))
    with pytest.raises(ValueError, match="theta must be a positive"):
        NegBin(theta=-1.0)
    with pytest.raises(ValueError, match="non-negative counts"):
        GAM([s("x")], family="nb").fit(
            pd.DataFrame({"x": np.arange(10.0), "y": np.r_[-1.0, np.arange(9.0)]}), y="y"
        )
    # deviance and log-likelihood agree with the saturated log-likelihood (mgcv's ls)
    f = NegBin(theta=2.5)
    y = np.array([0.0, 1.0, 4.0, 9.0])
    mu = np.array([0.5, 1.5, 3.0, 7.0])
    wt = np.ones(4)
    assert f.loglik(y, y, wt, 1.0) - f.loglik(y, mu, wt, 1.0) == pytest.approx(
        f.deviance(y, mu, wt) / 2, rel=1e-12
    )


# ------------------------------------------------------------------------- warm starts


def _store() -> Any:
    return gs.open_store(f"memory://fit-extfam-{next(_counter)}")


@pytest.mark.parametrize("name", ["discoveries_nb", "airquality_nb"])
def test_nb_warm_equals_cold(name: str) -> None:
    """Exact record and cross-fit (a fold) warm starts land on the cold optimum, theta
    included."""
    case = CASES[name]
    data, gam = fs.frame(case), fs.model(case)
    kw = {"y": case["y"]}
    store = _store()
    cold = gam.fit(data, **kw)
    first = gam.fit(data, store=store, **kw)
    again = gam.fit(data, store=store, **kw)
    assert again.warm == "exact"
    for r in (first, again):
        assert abs(r.reml - cold.reml) <= 1e-6 * abs(cold.reml)
        assert np.max(np.abs(r.fitted - cold.fitted)) <= 1e-5 * np.max(np.abs(cold.fitted))
        assert abs(r.ext[0] - cold.ext[0]) <= 1e-5
    fold = data.iloc[np.arange(len(data)) % 5 != 2].reset_index(drop=True)
    fold_cold = gam.fit(fold, knots=first.knots, **kw)
    for ks in list(store.entries("outer")):
        store.delete_entry(ks)
    fold_warm = gam.fit(fold, knots=first.knots, store=store, **kw)
    assert fold_warm.warm == "cross-fit"
    assert abs(fold_warm.reml - fold_cold.reml) <= 1e-6 * abs(fold_cold.reml)
    rel = np.max(np.abs(fold_warm.fitted - fold_cold.fitted)) / np.max(np.abs(fold_cold.fitted))
    assert rel <= 1e-5
    assert abs(fold_warm.ext[0] - fold_cold.ext[0]) <= 1e-5
    # the artifact carries the full fit's log theta, which starts the fold's theta search
    # (the answer is the cold fold's, checked above; the search is not always shorter)
    from gamstore.artifact import FitArtifact

    arts = [store.read_entry(i) for i in store.entries("artifact")]
    exts = [e.record.ext for e in arts if e is not None and isinstance(e.record, FitArtifact)]
    # (the exact refit searched theta again, so it wrote its own artifact too)
    assert exts and all(x is not None and x[0] in (first.ext[0], again.ext[0]) for x in exts)


def test_theta_is_stored_with_rho_and_starts_the_refit() -> None:
    """The block record of an nb fit holds ``ext = [log theta]`` next to rho; an exact refit
    starts its theta search there (fewer PIRLS calls than cold, same optimum). Records of the
    other families are unchanged (no ``ext`` array, no flag field), and a record without
    ``ext`` reads as None."""
    from gamstore.records import BlockWarmStartRecord

    case = CASES["quakes_nb"]
    data, gam = fs.frame(case), fs.model(case)
    store = _store()
    cold = gam.fit(data, y=case["y"])
    first = gam.fit(data, y=case["y"], store=store)
    from gamstore.warmstart.blocks import BLOCK_KEYSPACE

    entries = [store.read_entry(info) for info in store.entries(BLOCK_KEYSPACE)]
    recs = [e.record for e in entries if e is not None]
    recs = [r for r in recs if isinstance(r, BlockWarmStartRecord)]
    assert recs and all(r.ext is not None for r in recs)
    assert abs(recs[-1].ext[0] - first.ext[0]) == 0.0
    again = gam.fit(data, y=case["y"], store=store)
    assert again.warm == "exact"
    assert again.n_pirls_calls < cold.n_pirls_calls, (again.n_pirls_calls, cold.n_pirls_calls)
    assert abs(again.reml - cold.reml) <= 1e-9 * abs(cold.reml)
    assert abs(again.ext[0] - cold.ext[0]) <= 1e-5
    # the other families' records: byte-for-byte the old layout
    rec = dataclasses.replace(recs[-1], ext=None)
    parts = rec.to_parts()
    assert "ext" not in parts.arrays and "has_ext" not in parts.fields
    plain = {k: v.data for k, v in parts.arrays.items()}
    assert BlockWarmStartRecord.from_parts(parts.fields, plain).ext is None
    with_ext = recs[-1].to_parts()
    assert set(with_ext.arrays) - set(parts.arrays) == {"ext"}
    assert with_ext.fields == parts.fields
    back = BlockWarmStartRecord.from_parts(
        with_ext.fields, {k: v.data for k, v in with_ext.arrays.items()}
    )
    assert back.ext is not None and back.ext[0] == recs[-1].ext[0]


def test_theta_in_the_session_payload_starts_a_session_refit() -> None:
    """The session final of an nb fit carries ``ext = [log theta]`` with rho; a refit that
    finds only the session (block record gone) starts its theta search there: fewer PIRLS
    calls than cold, the cold optimum."""
    from gamstore.warmstart.blocks import BLOCK_KEYSPACE

    case = CASES["quakes_nb"]
    data, gam = fs.frame(case), fs.model(case)
    store = _store()
    cold = gam.fit(data, y=case["y"])
    first = gam.fit(data, y=case["y"], store=store)
    for info in list(store.entries(BLOCK_KEYSPACE)):
        store.delete_entry(info)
    finals = [store.read_entry(i) for i in store.entries("outer")]
    finals = [e for e in finals if e is not None and e.kind == "final"]
    assert finals and all(e.record.ext is not None for e in finals)
    assert finals[-1].record.ext[0] == first.ext[0]
    again = gam.fit(data, y=case["y"], store=store)
    assert again.warm == "session"
    assert again.n_pirls_calls < cold.n_pirls_calls, (again.n_pirls_calls, cold.n_pirls_calls)
    assert abs(again.reml - cold.reml) <= 1e-9 * abs(cold.reml)
    assert abs(again.ext[0] - cold.ext[0]) <= 1e-5


def test_session_checkpoints_round_trip_ext() -> None:
    """A checkpoint written with ``ext`` resumes with it; a payload without one (every other
    family) has no ``ext`` array and reads back as None; a non-finite ext is dropped, not
    the checkpoint."""
    from gamstore.records import IteratePayload
    from gamstore.warmstart.sessions import OuterSession

    store = _store()
    sess = OuterSession(store, "k-ext", None)
    assert sess.begin(2).kind == "cold"
    assert sess.on_evaluation(np.array([1.0, 2.0]), np.arange(3.0), 10.0, ext=np.array([0.7]))
    start = OuterSession(store, "k-ext", None).begin(2)
    assert start.kind == "seed" and start.ext is not None and start.ext.tolist() == [0.7]
    plain = IteratePayload.encode(np.array([1.0]), 1.0, 1)
    assert plain.ext is None and "ext" not in plain.to_parts().arrays
    assert IteratePayload.encode(np.array([1.0]), 1.0, 1, ext=[np.nan]).ext is None
    sess2 = OuterSession(store, "k-plain", None)
    sess2.begin(1)
    assert sess2.on_evaluation(np.array([1.0]), None, 3.0)
    assert OuterSession(store, "k-plain", None).begin(1).ext is None


def test_nb_deviance_and_density_at_a_given_theta() -> None:
    """The LOSO score of nb: mgcv's deviance and R's dnbinom at the fit's theta (scalar or
    per row); theta is required."""
    from scipy.stats import nbinom

    from gamstore.loso.deviance import deviance, log_density

    y = np.array([0.0, 1.0, 4.0, 9.0, 2.0])
    mu = np.array([0.5, 1.5, 3.0, 7.0, 2.5])
    wt = np.array([1.0, 2.0, 1.0, 0.5, 1.0])
    for th in (0.7, 2.5, 40.0):
        assert deviance("nb", y, mu, wt, theta=th) == pytest.approx(
            NegBin(theta=th).deviance(y, mu, wt), rel=1e-13
        )
        ref = nbinom.logpmf(y, th, th / (th + mu))
        np.testing.assert_allclose(log_density("nb", y, mu, None, theta=th), ref, rtol=1e-12)
    per_row = np.array([0.7, 2.5, 40.0, 1.0, 3.0])
    np.testing.assert_allclose(
        deviance("nb", y, mu, None, theta=per_row),
        sum(
            NegBin(theta=t).deviance(y[i : i + 1], mu[i : i + 1], np.ones(1))
            for i, t in enumerate(per_row)
        ),  # fmt: skip
        rtol=1e-13,
    )
    assert deviance("nb", y, np.r_[mu[:4], -0.1], None, theta=2.0) == float("inf")
    with pytest.raises(ValueError, match="theta: family 'nb' needs"):
        deviance("nb", y, mu)
    with pytest.raises(ValueError, match=r"theta: expected a scalar or shape \(5,\)"):
        deviance("nb", y, mu, theta=np.ones(3))


@pytest.mark.parametrize("family", ["nb", "nb(sqrt)"])
def test_loso_nb_scores_each_fold_at_its_own_theta(family: str) -> None:
    """``run_loso`` with nb: warm folds reach the cold folds' optimum (theta included), each
    fold's held-out deviance and log score are at that fold's theta, the totals sum them."""
    from gamstore.loso import run_loso
    from gamstore.loso.deviance import log_density

    case = CASES["airquality_nb"]
    data = fs.frame(case)
    gam = GAM([s("Temp", 10), s("Wind", 10)], family=family)
    ds = run_loso(data, gam, y="Ozone", subject="Month", compare_cold=True, progress=False)
    assert (ds.status == "ok").all() and ds.attrs["family"] == "nb"
    warm, cold = ds.sel(start="warm"), ds.sel(start="cold")
    np.testing.assert_allclose(warm.reml, cold.reml, rtol=1e-8)
    np.testing.assert_allclose(np.log(warm.theta), np.log(cold.theta), atol=1e-5)
    np.testing.assert_allclose(warm.heldout_deviance, cold.heldout_deviance, rtol=1e-5)
    full = gam.fit(data, y="Ozone")
    assert float(ds.full_theta) == pytest.approx(full.theta, rel=1e-12)
    y = ds.y_observed.values
    for month in ds.fold.values:
        rows = ds.row_subject.values == month
        fold = data[data["Month"] != month].reset_index(drop=True)
        res = gam.fit(fold, y="Ozone", knots=full.knots)
        th = float(cold.theta.sel(fold=month))
        assert th == pytest.approx(res.theta, rel=1e-6)
        mu = cold.pred_response.values[rows]
        np.testing.assert_allclose(mu, res.predict(data[data["Month"] == month]), rtol=1e-6)
        dev = NegBin(family.partition("(")[2].rstrip(")") or None, th).deviance(
            y[rows], mu, np.ones(rows.sum())
        )
        assert float(cold.heldout_deviance.sel(fold=month)) == pytest.approx(dev, rel=1e-12)
    assert float(cold.cv_deviance) == pytest.approx(float(cold.heldout_deviance.sum()), rel=1e-12)
    th_rows = np.array([float(cold.theta.sel(fold=m)) for m in ds.row_subject.values])
    mu_all = cold.pred_response.values
    assert float(cold.cv_log_score) == pytest.approx(
        float(np.sum(log_density("nb", y, mu_all, None, theta=th_rows))), rel=1e-12
    )


def test_cli_loso_nb_identity(tmp_path: Path) -> None:
    """``gamstore loso --family 'nb(identity)'`` fits nb with theta estimated and reports
    each fold's theta with its held-out deviance."""
    from click.testing import CliRunner

    from gamstore.cli import main

    case = CASES["quakes_nb"]
    data = fs.frame(case)
    data["subj"] = np.arange(len(data)) % 4 + 1
    path = tmp_path / "quakes.csv"
    data.to_csv(path, index=False)
    out = tmp_path / "out.nc"
    args = ["loso", str(path), "--y", "stations", "--smooth", "mag", "depth", "--subject", "subj",
            "--family", "nb(identity)", "--store", f"memory://cli-nb-{next(_counter)}",
            "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    full = GAM([s("mag"), s("depth")], family="nb(identity)").fit(data, y="stations")
    import xarray as xr

    ds = xr.open_dataset(out, engine="h5netcdf")
    assert float(ds["full_reml"]) == pytest.approx(full.reml, rel=1e-6)
    assert float(ds["full_theta"]) == pytest.approx(full.theta, rel=1e-5)
    assert np.isfinite(ds["theta"].values).all() and np.isfinite(ds["cv_deviance"].values).all()
