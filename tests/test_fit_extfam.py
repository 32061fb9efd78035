"""Extended families: negative binomial with theta estimated (mgcv's ``nb()``).

mgcv estimates ``log(theta)`` jointly with the smoothing parameters; gamstore profiles the
REML score over ``log(theta)`` (:func:`gamstore.fit.newton.profile_theta`), which has the
same minimum. The data and mgcv 1.8-41's answers (with ``ext`` = ``family$getTheta()`` =
log theta) are in tests/fixtures/families/extended.json, written by
``Rscript tests/fixtures/families/families_mgcv.R make-ext tests/fixtures/families``.
Criteria are the families parity suite's, plus log theta within 1e-3 (as rho). The live test
refits every case with Rscript + mgcv on the fixture's bytes; it skips without R, but fails
instead under GAMSTORE_CI=1.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from requires import require

import gamstore as gs
from gamstore.fit import GAM, s
from gamstore.fit.families import NegBin, get_family
from gamstore.fit.reml import evaluate

HERE = Path(__file__).parent / "fixtures"
THETA_ATOL = 1e-3  # log theta, as log smoothing parameters in the parity criteria


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


rd = _load("gamstore_realdata", HERE / "realdata.py")
fs = _load("gamstore_families", HERE / "families" / "support.py")
FX: dict[str, Any] = json.loads((HERE / "families" / "extended.json").read_text())
CASES: dict[str, dict[str, Any]] = fs.extended_cases()
_counter = itertools.count()


def _fit(name: str, **kw: Any) -> tuple[dict[str, Any], pd.DataFrame, GAM, Any]:
    case = CASES[name]
    data = fs.frame(case)
    gam = fs.model(case)
    return case, data, gam, gam.fit(data, y=case["y"], **kw)


def _check(name: str, res: Any, data: pd.DataFrame, gam: GAM, mg: dict[str, Any]) -> None:
    case = CASES[name]
    cmp = rd.against_mgcv(fs.suite_case(case), data, gam, res, {**case, "mgcv": mg})
    assert cmp.ok, (name, cmp.reference, cmp.failures)
    ref = case[cmp.reference] if cmp.reference != "mgcv" else mg
    assert res.ext is not None and res.ext.shape == (1,)
    assert abs(res.ext[0] - ref["ext"][0]) <= THETA_ATOL, (name, res.ext, ref["ext"])


def test_fixture_is_mgcv_nb_on_two_data_sets() -> None:
    assert FX["mgcv_version"] == "1.8.41"
    sources = {c["source"].split(" ")[0] for c in CASES.values() if c["family"] == "nb"}
    assert len(sources) >= 2
    for c in CASES.values():
        assert c["mgcv"]["family"].startswith("Negative Binomial"), c["mgcv"]["family"]
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
    at = dataclasses.replace(prob, family=NegBin(theta=float(np.exp(mg["ext"][0]))))
    ev = evaluate(at, np.asarray(mg["log_sp"], dtype=np.float64))
    assert ev.score == pytest.approx(mg["reml"][0], rel=1e-9, abs=1e-6), name
    assert np.max(np.abs(ev.grad)) < 1e-3, (name, ev.grad)
    for dt in (-0.05, 0.05):
        off = dataclasses.replace(prob, family=NegBin(theta=float(np.exp(mg["ext"][0] + dt))))
        assert gam.run(off, np.asarray(mg["log_sp"]), None).final.score > ev.score - 1e-9


@pytest.mark.mgcv
def test_nb_parity_with_live_mgcv() -> None:
    """mgcv today, on the fixture's bytes, gives the recorded answers, and gamstore matches."""
    require(fs.rscript() is not None, "Rscript with mgcv")
    live = fs.run_live(list(CASES), table=CASES)
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
