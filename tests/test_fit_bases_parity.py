"""Smooth bases beyond ``ps``: mgcv parity on real data and warm starts.

mgcv's default thin-plate regression spline ``bs="tp"``, cubic regression splines ``"cr"``,
cyclic cubic ``"cc"`` and cyclic P-splines ``"cp"`` (period from ``knots``), each on at least
two real data sets from R's ``datasets``. The data and mgcv 1.8-41's answers are in
tests/fixtures/bases/bases.json, written by
``Rscript tests/fixtures/parity_mgcv.R make bases tests/fixtures/bases``.

Criteria are the real-data parity suite's (``realdata.against_mgcv``). A ``tp`` basis is
mgcv's up to the signs of its columns (gamstore orients each eigenvector by a fixed rule,
mgcv by its Lanczos run; signs change neither the penalty scaling nor REML, fitted values or
edf), so ``tp`` coefficients are compared with mgcv's sign-aligned. Where the basis is not
identified beyond that (a regular grid's zero Householder pivots, discoveries' 100 years,
where mgcv picks the constrained columns by its rounding noise; volcano, whose null-space
columns mgcv's centring reorders), the smooth's fitted contribution ``X_j beta_j`` is
compared instead of its coefficients (``parity.Bases.contribution_failures``). The live test
refits every case with Rscript + mgcv on the fixture's bytes; it skips without R, but fails
instead under GAMSTORE_CI=1.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import parity
import pytest

import gamstore as gs
from gamstore.fit import GAM, s
from gamstore.fit.reml import evaluate

bs_fx = parity.suite("bases")
FX: dict[str, Any] = bs_fx.load()
CASES: dict[str, dict[str, Any]] = bs_fx.cases()
MGCV_CLASS = {"tp": "tprs.smooth", "cr": "cr.smooth", "cc": "cyclic.smooth",
              "cp": "cpspline.smooth", "ps": "pspline.smooth"}  # fmt: skip


def _compare(case: dict[str, Any], res: Any, recorded: dict[str, Any]) -> Any:
    """The parity criteria, tp coefficients sign-aligned (``parity.Bases.aligned``)."""
    return bs_fx.against_mgcv(case, bs_fx.frame(case), bs_fx.model(case), res, recorded)


def test_fixture_covers_every_basis_on_two_data_sets() -> None:
    assert FX["mgcv_version"] == "1.8.41"
    sources: dict[str, set[str]] = {}
    for c in CASES.values():
        assert c["mgcv"]["warnings"] == [], c["name"]
        assert c["mgcv"]["bs"] == [MGCV_CLASS[b] for b in c["bs"]], c["name"]
        for b in c["bs"]:
            sources.setdefault(b, set()).add(c["source"].split(" ")[0])
    for b in ("tp", "cr", "cc", "cp"):
        assert len(sources[b]) >= 2, (b, sources.get(b))


@pytest.mark.parametrize("name", list(CASES))
def test_basis_parity_with_recorded_mgcv(name: str) -> None:
    case = CASES[name]
    res = bs_fx.fit(case)
    cmp = _compare(case, res, case)
    assert cmp.ok, (name, cmp.reference, cmp.failures)
    if cmp.reference != "mgcv":
        assert res.reml < case["mgcv"]["reml"][0], name
    # mgcv's penalty scaling (smoothCon's S.scale) for every basis, tp included
    ours = [res.S_scale[lab] for lab in case["mgcv"]["labels"]]
    np.testing.assert_allclose(ours, case["mgcv"]["S_scale"], rtol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", list(CASES))
def test_reml_score_at_mgcv_rho(name: str) -> None:
    """The REML criterion on each basis equals mgcv's at mgcv's own (tightly converged)
    smoothing parameters, and its gradient there is ~0: the bases, their constraints and
    penalty scaling are mgcv's, not just the optimum."""
    case = CASES[name]
    prob, _ = bs_fx.model(case).prepare(bs_fx.frame(case), case["y"], None, None, bs_fx.knots(case))
    mg = case["mgcv_tight"]
    ev = evaluate(prob, np.asarray(mg["log_sp"], dtype=np.float64))
    assert ev.score == pytest.approx(mg["reml"][0], rel=1e-9, abs=1e-6), name
    assert np.max(np.abs(ev.grad)) < 1e-3, (name, ev.grad)


@pytest.mark.parametrize("name", list(CASES))
def test_summary_smooth_table_matches_mgcv(name: str) -> None:
    """summary.gam's smooth table: edf and Ref.df to 3 decimals, F / Chi.sq and p-values to
    1e-3 relative (or both < 1e-16), as the families suite. The cyclic smooths have no
    penalty null space after centring and are tested as mgcv's ``reTest`` does (integer
    Ref.df); the others by ``testStat``. Flat directions (mgcv stopped early): edf to 5e-3."""
    case = CASES[name]
    res = bs_fx.fit(case)
    cmp = _compare(case, res, case)
    mg = case[cmp.reference]
    tab = np.asarray(mg["s_table"], dtype=np.float64).reshape(-1, 4)
    ours = res.summary(show=False).smooth.to_numpy()
    tol = 5e-3 if cmp.flat else 1e-3
    np.testing.assert_allclose(ours[:, :2], tab[:, :2], atol=tol, err_msg=name)
    np.testing.assert_allclose(ours[:, 2], tab[:, 2], rtol=1e-2 if cmp.flat else 1e-3)
    for p_ours, p_mg in zip(ours[:, 3], tab[:, 3], strict=True):
        assert (p_ours < 1e-16 and p_mg < 1e-16) or p_ours == pytest.approx(
            p_mg, rel=1e-2 if cmp.flat else 1e-3
        ), (name, p_ours, p_mg)


def test_unidentified_tp_smooths_are_compared_by_their_contribution() -> None:
    """Only discoveries' regular grid (zero pivots) and volcano (reordered null space) leave
    tp coefficients out of the comparison; their contribution is compared instead, and a
    contribution off by 1e-4 of its range fails."""
    unidentified = {}
    for name, case in CASES.items():
        if "tp" in case["bs"]:
            unidentified[name] = bs_fx.unidentified(case, bs_fx.fit(case))
    assert {n for n, v in unidentified.items() if v} == {
        "discoveries_tp_poisson", "volcano_tp2d_maxknots"
    }, unidentified  # fmt: skip
    case = CASES["discoveries_tp_poisson"]
    res = bs_fx.fit(case)
    assert not res._design.smooths[0].basis.impl.identified
    data = bs_fx.frame(case)
    assert bs_fx.contribution_failures(case, data, res, case["mgcv"], False) == []
    eta = np.log(np.asarray(case["mgcv"]["fitted"]))
    f = eta - case["mgcv"]["coefficients"][0]
    moved = {**case["mgcv"], "coefficients": [case["mgcv"]["coefficients"][0] + 1e-4 * np.ptp(f)]}
    fail = bs_fx.contribution_failures(case, data, res, moved, False)
    assert fail and "s(year) contribution" in fail[0], fail


@pytest.mark.mgcv
def test_basis_parity_with_live_mgcv() -> None:
    """mgcv today, on the fixture's bytes, gives the recorded answers, and gamstore matches."""
    parity.require_mgcv()
    live = bs_fx.run_live(list(CASES))
    assert sorted(live) == sorted(CASES)
    failures = {}
    for name, case in CASES.items():
        np.testing.assert_allclose(live[name]["reml"], case["mgcv"]["reml"], rtol=1e-8)
        np.testing.assert_allclose(live[name]["S_scale"], case["mgcv"]["S_scale"], rtol=1e-10)
        res = bs_fx.fit(case)
        cmp = _compare(case, res, {**case, "mgcv": live[name]})
        if not cmp.ok:
            failures[name] = cmp.failures
    assert not failures, failures


# ------------------------------------------------------------------------- warm starts

_counter = itertools.count()


def _store() -> Any:
    return gs.open_store(f"memory://fit-bases-{next(_counter)}")


def _close(a: Any, b: Any, fitted_rtol: float = 1e-5) -> None:
    assert abs(a.reml - b.reml) <= 1e-6 * abs(b.reml)
    assert np.max(np.abs(a.fitted - b.fitted)) <= fitted_rtol * np.max(np.abs(b.fitted))


@pytest.mark.parametrize(
    "name", ["airquality_tp", "airquality_tp2d", "airquality_cr", "nottem_cc", "ldeaths_cp"]
)
def test_warm_refit_and_fold_equal_cold(name: str) -> None:
    """Exact record and cross-fit warm starts land on the cold optimum for every basis."""
    case = CASES[name]
    data = bs_fx.frame(case)
    store = _store()
    cold = bs_fx.fit(case)
    first = bs_fx.fit(case, store=store)
    again = bs_fx.fit(case, store=store)
    assert (first.warm, again.warm) == ("cold", "exact")
    _close(first, cold)
    _close(again, cold)
    fold = data.iloc[np.arange(len(data)) % 5 != 2].reset_index(drop=True)
    gam = bs_fx.model(case)
    fold_cold = gam.fit(fold, y=case["y"], knots=first.knots)
    for ks in list(store.entries("outer")):
        store.delete_entry(ks)
    fold_warm = gam.fit(fold, y=case["y"], knots=first.knots, store=store)
    assert fold_warm.warm == "cross-fit"
    # the surface's cold fold stops by the outer stopping rule at |g| = 2e-4 (rho 8e-5 short
    # of the optimum, fitted 1.3e-5 relative); the warm fold starts nearer and ends at 2e-5
    _close(fold_warm, fold_cold, 2e-5 if name.endswith("2d") else 1e-5)


def test_basis_is_part_of_the_warm_start_keys() -> None:
    """The same covariate with another basis never takes the other basis's record, session
    or cross-fit artifact (its block has another name in the keys)."""
    case = CASES["airquality_cr"]
    data = bs_fx.frame(case)
    store = _store()
    cr = GAM([s("Temp", 10, "cr"), s("Wind", 10, "cr")])
    ps = GAM([s("Temp", 10), s("Wind", 10)])
    assert cr.fit(data, y="Ozone", store=store).warm == "cold"
    assert ps.fit(data, y="Ozone", store=store).warm == "cold"
    assert cr.fit(data, y="Ozone", store=store).warm == "exact"
    fold = data.iloc[5:].reset_index(drop=True)
    full_ps = ps.fit(data, y="Ozone")
    store2 = _store()
    cr.fit(data, y="Ozone", store=store2)
    assert ps.fit(fold, y="Ozone", knots=full_ps.knots, store=store2).warm == "cold"


@pytest.mark.parametrize("name", ["airquality_cr", "airquality_tp"])
def test_loso_by_month_warm_equals_cold(name: str) -> None:
    """LOSO by month (5 subjects): every warm fold with cr (β transferred across the fold's
    constraint) or tp (ρ transferred: the tp columns are centred and scaled per fit) lands on
    its cold fold's optimum; the artifact view shows the basis of each term."""
    from gamstore.loso import run_loso

    case = CASES[name]
    data = bs_fx.frame(case)
    store = _store()
    ds = run_loso(data, bs_fx.model(case), subject="Month", y=case["y"], store=store,
                  compare_cold=True)  # fmt: skip
    assert (ds["status"] == "ok").all()
    assert list(ds["fold"].values) == [5, 6, 7, 8, 9]
    assert set(ds["warm_source"].sel(start="warm").values) <= {"cross-fit", "session"}
    warm, cold = ds.sel(start="warm"), ds.sel(start="cold")
    rel = np.abs(warm["reml"] - cold["reml"]) / np.abs(cold["reml"])
    assert float(rel.max()) <= 1e-6, rel.values
    full = bs_fx.fit(case)
    assert float(ds["full_reml"]) == pytest.approx(full.reml, rel=1e-9)
    view = gs.open_fits(store, "artifact")
    bases = {str(v) for v in np.asarray(view["term_basis"]).ravel() if str(v) not in ("", "nan")}
    assert bs_fx.model(case).smooths[0].bs in bases, bases


def test_every_covariate_of_a_term_is_in_its_key() -> None:
    """Changing the second covariate of ``s(x, z)``, a tensor margin or a numeric ``by``
    column is another fit: never an exact hit on the first one's record."""
    from gamstore.fit import te
    from gamstore.fit.design import SmoothTerm

    case = CASES["airquality_tp2d"]
    data = bs_fx.frame(case)
    other = data.copy()
    other["Wind"] = other["Wind"].to_numpy()[::-1].copy()
    models = [
        GAM([s(("Temp", "Wind"), k=12, bs="tp")]),
        GAM([te("Temp", "Wind")]),
        GAM([SmoothTerm("Temp", 8, "cr", by="Wind")]),
    ]
    for gam in models:
        store = _store()
        assert gam.fit(data, y="Ozone", store=store).warm == "cold"
        assert gam.fit(data, y="Ozone", store=store).warm == "exact"
        assert gam.fit(other, y="Ozone", store=store).warm != "exact", gam


def test_surface_knots_freeze_the_basis() -> None:
    """``FitResult.knots["s(Temp,Wind)"]`` holds the knot points (x, z pairs, row-major);
    passing them back rebuilds the same surface basis."""
    case = CASES["airquality_tp2d"]
    data = bs_fx.frame(case)
    gam = bs_fx.model(case)
    res = gam.fit(data, y="Ozone")
    kn = res.knots["s(Temp,Wind)"]
    pairs = {(float(a), float(b)) for a, b in zip(data["Temp"], data["Wind"], strict=True)}
    assert kn.size == 2 * len(pairs)
    again = gam.fit(data, y="Ozone", knots=res.knots)
    assert again.reml == pytest.approx(res.reml, rel=1e-10)
    assert res.formula == 'Ozone ~ s(Temp, Wind, bs = "tp", k = 30)'
    np.testing.assert_allclose(res.predict(data), res.fitted, rtol=1e-10)


def test_cli_loso_with_a_basis(tmp_path: Path) -> None:
    """``gamstore loso --bs cr`` fits the basis it names (the full fit is the model's)."""
    import xarray as xr
    from click.testing import CliRunner

    from gamstore.cli import main
    from gamstore.cli.loso import BASES
    from gamstore.fit.bases import basis_names

    assert sorted(BASES) == basis_names()
    case = CASES["airquality_cr"]
    data = bs_fx.frame(case)
    path = tmp_path / "air.csv"
    data.to_csv(path, index=False)
    out = tmp_path / "out.nc"
    args = ["loso", str(path), "--y", "Ozone", "--smooth", "Temp", "Wind", "--subject", "Month",
            "--bs", "cr", "--store", f"memory://cli-bases-{next(_counter)}", "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    full = bs_fx.fit(case)
    ds = xr.open_dataset(out, engine="h5netcdf")
    assert float(ds["full_reml"]) == pytest.approx(full.reml, rel=1e-9)
    assert float(ds["full_reml"]) != pytest.approx(
        GAM([s("Temp"), s("Wind")]).fit(data, y="Ozone").reml, rel=1e-6
    )
